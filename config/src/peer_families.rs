//! `peer.families`: the unicast families one BGP session carries (the
//! Multiprotocol capabilities of its OPEN, RFC 4760 §8), independent of the
//! session's own family: IPv6 routes over an IPv4 session and IPv4 routes
//! over an IPv6 session both work, with the node's address of the route's
//! family as next hop.
//!
//! Data flow: `peers::peer` calls [`resolve`] with the raw peer, the resolved
//! node (None when it was invalid) and the peer's `source_address`; the
//! result goes into `Peer::families`. The default is the families the node
//! has blocks for. A family needs a next hop of its own family to be
//! advertised (RFC 4271 §5.1.3, RFC 2545 §3): the node's address of that
//! family or the peer's `source_address`; asking for one without it is
//! refused at the entry's file:line:column.

use std::net::IpAddr;

use tortie_bgp::AddressFamily;

use crate::error::Locator;
use crate::model::Node;
use crate::raw::{RawPeer, suggest};

const NAMES: [(&str, AddressFamily); 2] = [
    ("ipv4", AddressFamily::IPV4_UNICAST),
    ("ipv6", AddressFamily::IPV6_UNICAST),
];

/// The families the node has blocks for (IPv4 first); both when the node is
/// unknown (its own problems are reported already).
pub(crate) fn default_families(node: Option<&Node>) -> Vec<AddressFamily> {
    let Some(node) = node else {
        return NAMES.iter().map(|(_, f)| *f).collect();
    };
    let v4 = node.pod_cidrs.iter().any(|b| b.is_ipv4());
    let v6 = node.pod_cidrs.iter().any(|b| b.is_ipv6());
    NAMES
        .iter()
        .filter(|(_, f)| {
            if *f == AddressFamily::IPV6_UNICAST {
                v6
            } else {
                v4
            }
        })
        .map(|(_, f)| *f)
        .collect()
}

/// Whether this node has a next hop of family `f` for this peer: its
/// address of that family, or the peer's `source_address` when of it.
fn has_next_hop(node: &Node, source: Option<IpAddr>, f: AddressFamily) -> bool {
    let v6 = f == AddressFamily::IPV6_UNICAST;
    let node_has = if v6 {
        node.addresses.v6().is_some()
    } else {
        node.addresses.v4().is_some()
    };
    node_has || source.is_some_and(|s| s.is_ipv6() == v6)
}

pub(crate) fn resolve(
    loc: &mut Locator<'_>,
    rp: &RawPeer,
    node: Option<&Node>,
    source_address: Option<IpAddr>,
    label: &str,
) -> Vec<AddressFamily> {
    let Some(list) = &rp.families else {
        return default_families(node);
    };
    let mut out: Vec<AddressFamily> = Vec::new();
    for entry in list.get_ref() {
        let word = entry.get_ref().as_str();
        let Some((_, f)) = NAMES.iter().find(|(n, _)| *n == word) else {
            let hint = match suggest(word, &["ipv4", "ipv6"]) {
                Some(s) => format!("did you mean \"{s}\"?"),
                None => "\"ipv4\" (IPv4 unicast) or \"ipv6\" (IPv6 unicast)".to_string(),
            };
            loc.at(
                entry.span(),
                format!("{label}: families entry `{word}` is not one of \"ipv4\", \"ipv6\""),
                &hint,
            );
            continue;
        };
        if out.contains(f) {
            loc.at(
                entry.span(),
                format!("{label}: families lists \"{word}\" twice"),
                "list each family once",
            );
            continue;
        }
        if let Some(node) = node
            && !has_next_hop(node, source_address, *f)
        {
            let (family, add) = if *f == AddressFamily::IPV6_UNICAST {
                ("IPv6", "\"2001:db8:1::11/64\"")
            } else {
                ("IPv4", "\"192.0.2.11/24\"")
            };
            loc.at(
                entry.span(),
                format!("{label}: families has \"{word}\" but this node has no {family} address"),
                &format!(
                    "routes of a family are advertised with this node's address of that family as next hop (RFC 4271 §5.1.3, RFC 2545 §3): add one to node.address, e.g. {add}, or remove \"{word}\""
                ),
            );
            continue;
        }
        out.push(*f);
    }
    if list.get_ref().is_empty() {
        loc.at(
            list.span(),
            format!("{label}: families is empty"),
            "a session carries at least one family: \"ipv4\", \"ipv6\" or both; leave the key out for the node's block families",
        );
    }
    if out.is_empty() {
        // Problems reported above; keep the model total.
        return default_families(node);
    }
    // IPv4 first, as the OPEN lists them.
    out.sort_by_key(|f| *f == AddressFamily::IPV6_UNICAST);
    out
}
