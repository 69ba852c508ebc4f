//! `[node]`: name, addresses (at most one per family), AS number, router id,
//! pod blocks of either family, cluster id — the raw table in, a [`Node`] out.
//!
//! Data flow: `validate::resolve` hands the raw `[node]` table and whether any
//! `[[peer]]` exists; every value is parsed and checked here, each refusal
//! recorded at the offending entry's span (an array entry's own position).
//! `node.address` and `node.pod_cidr` are a string or an array of strings
//! ([`RawList`]); a single string is a one-entry list.
//!
//! Rules: one IPv4 and one IPv6 address at most; `router_id` is required when
//! there is no IPv4 address to take it from; blocks are unicast ranges of
//! their own (not reserved, not the node's subnet, not overlapping each other,
//! also through the IPv4-mapped form); with peers, every block's family needs
//! a node address of that family (the next hop BGP advertises it with).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use ipnetwork::{IpNetwork, Ipv4Network};
use serde::Deserialize;
use toml::Spanned;

use crate::error::Locator;
use crate::model::{Node, NodeAddresses};
use crate::raw::{Field, RawNode};
use crate::values;

/// A string, or an array of strings each with its own span.
#[derive(Debug, Clone)]
pub(crate) enum RawList {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for RawList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E>(self, v: &str) -> Result<RawList, E> {
                Ok(RawList::One(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<RawList, E> {
                Ok(RawList::One(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    items.push(item);
                }
                Ok(RawList::Many(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// Each entry with its span (a single string has the field's span).
fn entries(field: &Spanned<RawList>) -> Vec<(Range<usize>, &str)> {
    match field.get_ref() {
        RawList::One(s) => vec![(field.span(), s.as_str())],
        RawList::Many(items) => items
            .iter()
            .map(|i| (i.span(), i.get_ref().as_str()))
            .collect(),
    }
}

const ADDRESS_EXAMPLE: &str = "\"192.0.2.11/24\" or [\"192.0.2.11/24\", \"2001:db8:1::11/64\"]";
const BLOCK_EXAMPLE: &str = "\"10.244.1.0/26\" or [\"10.244.1.0/26\", \"fd00:10:244:1::/120\"]";

pub(crate) fn resolve(
    loc: &mut Locator<'_>,
    raw: &RawNode,
    section: Range<usize>,
    hostname: &dyn Fn() -> Option<String>,
    has_peers: bool,
) -> Option<Node> {
    let name = match &raw.name {
        Some(v) => {
            crate::validate::check_name(loc, v, "node.name");
            Some(v.get_ref().clone())
        }
        None => {
            let h = hostname();
            if h.is_none() {
                loc.at(
                    section.clone(),
                    "node.name is not set and the hostname cannot be read",
                    "set [node] name = \"…\"",
                );
            }
            h
        }
    };
    let (addresses, all_parsed) = addresses(loc, &raw.address, &section);
    let asn = crate::validate::asn(loc, &raw.asn, "node.asn", &section);
    let router_id = match &raw.router_id {
        Some(v) => router_id_like(loc, v, "node.router_id"),
        None => match addresses.and_then(|a| a.v4()) {
            Some(a) => Some(a.ip()),
            // "node.address is missing" (or its type error) says it.
            None if raw.address.is_none() => None,
            None if !all_parsed => {
                loc.at(
                    section.clone(),
                    "node.router_id is not set and node.address gives no usable address to take it from",
                    "fix node.address, or set router_id = \"192.0.2.11\" (a unique, non-zero IPv4 address)",
                );
                None
            }
            None => {
                loc.at(
                    section.clone(),
                    "node.router_id is required: node.address has no IPv4 address to take it from",
                    "set router_id = \"192.0.2.11\": BGP identifiers are 32 bits written as an IPv4 address, unique among the peers and non-zero (RFC 6286 §2.1)",
                );
                None
            }
        },
    };
    let cluster_id = match &raw.cluster_id {
        Some(v) => router_id_like(loc, v, "node.cluster_id"),
        None => router_id,
    };
    let pod_cidrs = blocks(loc, &raw.pod_cidr, section, addresses, has_peers);
    Some(Node {
        name: name?,
        addresses: addresses?,
        asn: asn?,
        router_id: router_id?,
        pod_cidrs: pod_cidrs?,
        cluster_id: cluster_id?,
    })
}

/// `node.address`; the flag says whether every entry parsed (a bad entry is
/// already reported, and no address is derived from a half-read list).
fn addresses(
    loc: &mut Locator<'_>,
    field: &Field<RawList>,
    section: &Range<usize>,
) -> (Option<NodeAddresses>, bool) {
    let Some(field) = field else {
        loc.missing(
            section.clone(),
            "address",
            "node.address is missing".into(),
            &format!("add the node's IPs with their subnets' prefix lengths, e.g. address = {ADDRESS_EXAMPLE}"),
        );
        return (None, false);
    };
    let list = entries(field);
    if list.is_empty() {
        loc.at(
            field.span(),
            "node.address is an empty array",
            &format!(
                "give at most one IPv4 and one IPv6 address, e.g. address = {ADDRESS_EXAMPLE}"
            ),
        );
        return (None, false);
    }
    let (mut v4, mut v6) = (None, None);
    let mut ok = true;
    for (span, s) in list {
        let net = match values::ip_cidr("node.address", s, "\"192.0.2.11/24\"") {
            Ok(net) => net,
            Err((m, h)) => {
                loc.at(span, m, &h);
                ok = false;
                continue;
            }
        };
        if let Some(m) = address_problem(s, net) {
            loc.at(
                span,
                m,
                "write the node's own IP with its subnet's prefix length, e.g. \"192.0.2.11/24\" or \"2001:db8:1::11/64\"",
            );
            ok = false;
            continue;
        }
        let first = match net {
            IpNetwork::V4(n) => v4.replace((n, s)).map(|(_, f)| ("IPv4", f)),
            IpNetwork::V6(n) => v6.replace((n, s)).map(|(_, f)| ("IPv6", f)),
        };
        if let Some((family, first)) = first {
            loc.at(
                span,
                format!("node.address lists a second {family} address `{s}` (the first is `{first}`)"),
                "a node has at most one IPv4 and one IPv6 address: BGP uses it as the session source and next hop of that family",
            );
            ok = false;
        }
    }
    if !ok {
        return (None, false);
    }
    (
        NodeAddresses::new(v4.map(|(n, _)| n), v6.map(|(n, _)| n)),
        true,
    )
}

/// Why `net` cannot be a node's address, if it cannot.
fn address_problem(s: &str, net: IpNetwork) -> Option<String> {
    if net.prefix() == 0 {
        return Some(format!("node.address `{s}` has prefix length 0"));
    }
    match net {
        IpNetwork::V4(n) => {
            let ip = n.ip();
            if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
                Some(format!("node.address {ip} cannot be a node's address"))
            } else if n.prefix() <= 30 && (ip == n.network() || ip == n.broadcast()) {
                let which = if ip == n.network() {
                    "network"
                } else {
                    "broadcast"
                };
                Some(format!(
                    "node.address `{s}` is the subnet's {which} address, not a node's"
                ))
            } else {
                None
            }
        }
        IpNetwork::V6(n) => {
            let ip = n.ip();
            if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() {
                Some(format!("node.address {ip} cannot be a node's address"))
            } else if is_link_local(ip) {
                Some(format!(
                    "node.address {ip} is link-local: BGP needs a global address as next hop (RFC 2545 §3)"
                ))
            } else if ip.to_ipv4_mapped().is_some() {
                Some(format!(
                    "node.address {ip} is IPv4-mapped: write the IPv4 address as such"
                ))
            } else if n.prefix() <= 126 && ip == n.network() {
                Some(format!(
                    "node.address `{s}` is the subnet-router anycast address (RFC 4291 §2.6.1), not a node's"
                ))
            } else {
                None
            }
        }
    }
}

fn is_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// Ranges a container block must not take (RFC 6890, RFC 4291 §2.4): the node
/// would route them to veths and lose its own loopback, "this network",
/// multicast, the reserved space or the link-local range that holds the
/// containers' gateway.
const FORBIDDEN_BLOCKS: &[(&str, &str)] = &[
    ("0.0.0.0/8", "\"this network\" (RFC 6890)"),
    ("127.0.0.0/8", "loopback"),
    (
        "169.254.0.0/16",
        "link-local, where the containers' gateway 169.254.1.1 lives",
    ),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (and the broadcast address)"),
    ("::/128", "the unspecified address (RFC 4291 §2.5.2)"),
    ("::1/128", "loopback (RFC 4291 §2.5.3)"),
    ("::ffff:0:0/96", "IPv4-mapped addresses (RFC 4291 §2.5.5.2)"),
    (
        "fe80::/10",
        "link-local (RFC 4291 §2.5.6), where the containers' gateway fe80::ecee:eeff:feee:eeee lives",
    ),
    ("ff00::/8", "multicast (RFC 4291 §2.7)"),
];

/// Whether two networks share an address (different families never do).
fn overlaps(a: IpNetwork, b: IpNetwork) -> bool {
    a.is_ipv4() == b.is_ipv4() && (a.contains(b.network()) || b.contains(a.network()))
}

/// An IPv4-mapped IPv6 block as the IPv4 block it covers (`::ffff:10.0.0.0/120`
/// → `10.0.0.0/24`): the mixed-family overlap test compares these.
fn as_v4(block: IpNetwork) -> Option<Ipv4Network> {
    match block {
        IpNetwork::V4(n) => Some(n),
        IpNetwork::V6(n) if n.prefix() >= 96 => {
            let v4 = n.network().to_ipv4_mapped()?;
            Ipv4Network::new(v4, n.prefix() - 96).ok()
        }
        IpNetwork::V6(_) => None,
    }
}

/// `node.pod_cidr`; `None` when missing, empty or an entry did not parse.
fn blocks(
    loc: &mut Locator<'_>,
    field: &Field<RawList>,
    section: Range<usize>,
    addresses: Option<NodeAddresses>,
    has_peers: bool,
) -> Option<Vec<IpNetwork>> {
    let Some(field) = field else {
        loc.missing(
            section,
            "pod_cidr",
            "node.pod_cidr is missing".into(),
            &format!(
                "add this node's blocks of container addresses, e.g. pod_cidr = {BLOCK_EXAMPLE}"
            ),
        );
        return None;
    };
    let list = entries(field);
    if list.is_empty() {
        loc.at(
            field.span(),
            "node.pod_cidr is an empty array",
            &format!("give at least one block, e.g. pod_cidr = {BLOCK_EXAMPLE}"),
        );
        return None;
    }
    let mut blocks: Vec<(IpNetwork, &str)> = Vec::new();
    let mut ok = true;
    for (span, s) in list {
        let net = match values::ip_cidr("node.pod_cidr", s, "\"10.244.1.0/26\"") {
            Ok(net) => net,
            Err((m, h)) => {
                loc.at(span, m, &h);
                ok = false;
                continue;
            }
        };
        if net.ip() != net.network() {
            loc.at(
                span,
                format!("node.pod_cidr `{s}` has host bits set"),
                &format!("did you mean \"{}\"?", values::ip_network_of(net)),
            );
            ok = false;
            continue;
        }
        // Each problem is reported; the block is kept so the cross checks run.
        check_block(loc, &span, net, addresses, has_peers);
        for (earlier, text) in &blocks {
            let mixed = as_v4(net).zip(as_v4(*earlier));
            if overlaps(net, *earlier) || mixed.is_some_and(|(a, b)| overlaps(a.into(), b.into())) {
                let how = if net.is_ipv4() == earlier.is_ipv4() {
                    String::new()
                } else {
                    " (an IPv4-mapped IPv6 block covers the same IPv4 addresses)".into()
                };
                loc.at(
                    span.clone(),
                    format!("node.pod_cidr block {net} overlaps block `{text}`{how}"),
                    "the IPAM fills the blocks in order and each address must belong to one block: make them disjoint",
                );
            }
        }
        blocks.push((net, s));
    }
    ok.then(|| blocks.into_iter().map(|(n, _)| n).collect())
}

/// One block against the reserved ranges, the node's own addresses and the
/// family of the next hop BGP would advertise it with.
fn check_block(
    loc: &mut Locator<'_>,
    span: &Range<usize>,
    net: IpNetwork,
    addresses: Option<NodeAddresses>,
    has_peers: bool,
) {
    let example = if net.is_ipv4() {
        "\"10.244.1.0/26\""
    } else {
        "\"fd00:10:244:1::/120\""
    };
    for (range, what) in FORBIDDEN_BLOCKS {
        let Ok(range) = range.parse::<IpNetwork>() else {
            continue;
        };
        if overlaps(net, range) {
            loc.at(
                span.clone(),
                format!("node.pod_cidr {net} overlaps {range}, {what}"),
                &format!("give the node a block of private unicast addresses, e.g. {example}"),
            );
            return;
        }
    }
    if let IpNetwork::V6(n) = net
        && n.prefix() == 128
    {
        loc.at(
            span.clone(),
            format!("node.pod_cidr {net} leaves no address for containers: its only address is the subnet-router anycast address (RFC 4291 §2.6.1)"),
            &format!("use a larger block, e.g. {example}"),
        );
    }
    let Some(addresses) = addresses else {
        return;
    };
    match addresses.of_family(net.ip()) {
        Some(a) => {
            let subnet = values::ip_network_of(a);
            let problem = if net.contains(a.ip()) {
                Some(format!(
                    "node.pod_cidr {net} contains the node's own address {}",
                    a.ip()
                ))
            } else if overlaps(net, subnet) {
                Some(format!(
                    "node.pod_cidr {net} overlaps the node's subnet {subnet}"
                ))
            } else {
                None
            };
            if let Some(m) = problem {
                loc.at(
                    span.clone(),
                    m,
                    "the block is for containers only: pick a range outside the node's subnet",
                );
            }
        }
        None if has_peers => {
            let (family, rfc, add) = if net.is_ipv4() {
                ("IPv4", "RFC 4271 §5.1.3", "\"192.0.2.11/24\"")
            } else {
                ("IPv6", "RFC 2545 §3", "\"2001:db8:1::11/64\"")
            };
            loc.at(
                span.clone(),
                format!("node.pod_cidr {net} is an {family} block but node.address has no {family} address"),
                &format!("BGP advertises the block with this node's {family} address as next hop ({rfc}): add one to node.address, e.g. {add}"),
            );
        }
        // No peers: nothing is advertised, the block only serves local containers.
        None => {}
    }
}

/// Router id and cluster id: a non-zero IPv4 address (RFC 6286 §2.1).
fn router_id_like(loc: &mut Locator<'_>, v: &Spanned<String>, key: &str) -> Option<Ipv4Addr> {
    match values::ipv4(key, v.get_ref()) {
        Ok(a) if a.is_unspecified() => {
            loc.at(
                v.span(),
                format!("{key} must not be 0.0.0.0"),
                "BGP identifiers are non-zero (RFC 6286 §2.1); use the node's address",
            );
            None
        }
        Ok(a) => Some(a),
        Err((m, h)) => {
            loc.at(v.span(), m, &h);
            None
        }
    }
}
