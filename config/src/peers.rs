//! `[[peer]]` tables: defaults, per-peer checks and the checks that need the
//! whole file (duplicates, addresses inside the pod block, passive peers on a
//! node that does not listen, route reflection only for iBGP).
//!
//! Data flow: `validate::resolve` calls [`resolve`] with the raw peers and the
//! already resolved node (None when it was invalid: the cross checks that need
//! it are then skipped, its own problems are already reported).

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use crate::Policy;
use crate::error::Locator;
use crate::model::{Bgp, Node, Peer, defaults};
use crate::raw::{RawConfig, RawPeer, TtlSecurity};
use crate::validate::{HOLD_TIME_HINT, asn, check_name, hold_time_ok, int};
use crate::values;

/// Linux TCP_MD5SIG_MAXKEYLEN (RFC 2385 keys).
const MD5_KEY_MAX: usize = 80;

pub(crate) fn resolve(
    loc: &mut Locator<'_>,
    raw: &RawConfig,
    node: Option<&Node>,
    bgp: &Bgp,
    policy: &Policy,
) -> Vec<Peer> {
    let mut peers = Vec::new();
    let mut by_address: HashMap<IpAddr, usize> = HashMap::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (header, rp) in &raw.peers {
        let Some(peer) = peer(loc, header, rp, node, bgp, policy) else {
            continue;
        };
        let line = loc.position(header.start).0;
        let address_span = rp.address.as_ref().map_or(header.clone(), |v| v.span());
        let duplicate = by_address.insert(peer.address, line);
        if let Some(first) = duplicate {
            loc.at(
                address_span.clone(),
                format!("peer {} is listed twice", peer.address),
                &format!(
                    "it is first configured by the [[peer]] at line {first}; keep one of them"
                ),
            );
        }
        if let (Some(node), Some(rid)) = (node, &raw.node.router_id)
            && peer.address == IpAddr::V4(node.router_id)
        {
            loc.at(
                rid.span(),
                format!(
                    "node.router_id {} is the address of peer `{}`",
                    node.router_id, peer.name
                ),
                "that peer would refuse our OPEN: its own BGP Identifier comes back (RFC 4271 §6.2, Bad BGP Identifier); use this node's own address",
            );
        }
        let name_span = rp.name.as_ref().map_or(address_span, |v| v.span());
        // A duplicate address already explains a duplicate default name.
        if let Some(first) = by_name.insert(peer.name.clone(), line)
            && duplicate.is_none()
        {
            loc.at(
                name_span,
                format!("peer name `{}` is used twice", peer.name),
                &format!("the [[peer]] at line {first} has it too; names label status output and must be unique"),
            );
        }
        peers.push(peer);
    }
    peers
}

fn peer(
    loc: &mut Locator<'_>,
    header: &Range<usize>,
    rp: &RawPeer,
    node: Option<&Node>,
    bgp: &Bgp,
    policy: &Policy,
) -> Option<Peer> {
    let address = match &rp.address {
        None => {
            loc.missing(
                header.clone(),
                "address",
                "[[peer]] has no address".into(),
                "add the neighbour's IP, e.g. address = \"192.0.2.1\"",
            );
            None
        }
        Some(v) => check_address(loc, v, node),
    };
    let asn = asn(loc, &rp.asn, "peer.asn", header);
    let label = address.map_or_else(|| "peer".to_string(), |a| format!("peer {a}"));
    let name = match &rp.name {
        Some(v) => {
            check_name(loc, v, "peer.name");
            v.get_ref().clone()
        }
        None => address.map(|a| a.to_string()).unwrap_or_default(),
    };
    let port = int(
        loc,
        &rp.port,
        defaults::PEER_PORT,
        |n| (1..=65535).contains(&n),
        |n| format!("{label}: port {n} is out of range"),
        "1 to 65535; BGP's port is 179",
    );
    let password = password(loc, rp, &label);
    let passive = rp.passive.as_ref().is_some_and(|v| *v.get_ref());
    if passive
        && bgp.listen_port == 0
        && let Some(v) = &rp.passive
    {
        loc.at(
            v.span(),
            format!("{label} is passive but bgp.listen_port = 0: no session can ever come up"),
            "set passive = false, or let the node listen (bgp.listen_port = 179)",
        );
    }
    // Only `::` serves both families (IPV6_V6ONLY off); 0.0.0.0 or an IPv4
    // address takes IPv4 connections only, an IPv6 address IPv6 only.
    let any6 = bgp.listen_address == IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);
    if passive
        && bgp.listen_port != 0
        && !any6
        && let (Some(v), Some(a)) = (&rp.passive, address)
        && a.is_ipv4() != bgp.listen_address.is_ipv4()
    {
        loc.at(
            v.span(),
            format!(
                "{label} is passive but bgp.listen_address {} takes no connection from an {} address: the session can never come up",
                bgp.listen_address,
                if a.is_ipv4() { "IPv4" } else { "IPv6" }
            ),
            "leave bgp.listen_address out (the default \"::\" listens on both families), or set passive = false",
        );
    }
    let ttl_security = match &rp.ttl_security {
        None => None,
        Some(v) => match *v.get_ref() {
            TtlSecurity::Bool(false) => None,
            TtlSecurity::Bool(true) => Some(1),
            TtlSecurity::Hops(n) => match u8::try_from(n) {
                Ok(h) if (1..=254).contains(&h) => Some(h),
                _ => {
                    loc.at(
                        v.span(),
                        format!("{label}: ttl_security hop count {n} cannot be met"),
                        "GTSM (RFC 5082) accepts packets with TTL >= 256 - hops: give 1 (directly connected) to 254 hops, true for 1, or false",
                    );
                    None
                }
            },
        },
    };
    let route_reflector_client = rp
        .route_reflector_client
        .as_ref()
        .is_some_and(|v| *v.get_ref());
    if route_reflector_client
        && let (Some(v), Some(peer_asn), Some(node)) = (&rp.route_reflector_client, asn, node)
        && peer_asn != node.asn
    {
        loc.at(
            v.span(),
            format!("{label} is eBGP (AS {peer_asn}, node AS {}): it cannot be a route reflector client", node.asn),
            "route reflection (RFC 4456) is between iBGP peers of the same AS; remove the key",
        );
    }
    let max_prefixes = rp.max_prefixes.as_ref().and_then(|v| {
        let n = *v.get_ref();
        match u32::try_from(n) {
            Ok(m) if m >= 1 => Some(m),
            _ => {
                loc.at(
                    v.span(),
                    format!("{label}: max_prefixes {n} is out of range"),
                    "1 to 4294967295; leave the key out for no limit",
                );
                None
            }
        }
    });
    let hold_time = rp.hold_time.as_ref().and_then(|v| {
        let n = *v.get_ref();
        match u16::try_from(n) {
            Ok(h) if hold_time_ok(n) => Some(h),
            _ => {
                loc.at(
                    v.span(),
                    format!("{label}: hold_time {n} is not a valid hold time"),
                    HOLD_TIME_HINT,
                );
                None
            }
        }
    });
    let transport = crate::peer_transport::resolve(loc, rp, address, &label);
    let families = crate::peer_families::resolve(loc, rp, node, transport.source_address, &label);
    let (import_filter, export_filter, max_prefixes_restart) =
        crate::policy::peer_keys(loc, rp, policy);
    Some(Peer {
        address: address?,
        asn: asn?,
        name,
        port,
        password,
        passive,
        ttl_security,
        route_reflector_client,
        max_prefixes,
        hold_time,
        source_address: transport.source_address,
        multihop: transport.multihop,
        bfd: transport.bfd,
        import_filter,
        export_filter,
        max_prefixes_restart,
        families,
    })
}

fn check_address(
    loc: &mut Locator<'_>,
    v: &Spanned<String>,
    node: Option<&Node>,
) -> Option<IpAddr> {
    let a = match values::ip("peer.address", v.get_ref()) {
        Ok(a) => a,
        Err((m, h)) => {
            loc.at(v.span(), m, &h);
            return None;
        }
    };
    if !values::unicast(a) {
        loc.at(
            v.span(),
            format!("peer.address {a} cannot be a BGP neighbour"),
            "give the neighbour's unicast address",
        );
        return None;
    }
    if let Some(node) = node {
        if node.addresses.is_own(a) {
            loc.at(
                v.span(),
                format!("peer {a} is this node's own address"),
                "a node does not peer with itself; remove this [[peer]]",
            );
        } else if let Some(block) = node.pod_cidrs.iter().find(|b| b.contains(a)) {
            loc.at(
                v.span(),
                format!("peer {a} is inside node.pod_cidr {block}"),
                "the block holds container addresses and is routed to local veths: the neighbour would be unreachable; check the address or the block",
            );
        }
    }
    Some(a)
}

/// The TCP MD5 key from `password` or `password_file` (RFC 2385).
fn password(loc: &mut Locator<'_>, rp: &RawPeer, label: &str) -> Option<Vec<u8>> {
    let key = match (&rp.password, &rp.password_file) {
        (Some(_), Some(f)) => {
            loc.at(
                f.span(),
                format!("{label}: password and password_file are both set"),
                "keep one: password_file keeps the key out of the config file",
            );
            return None;
        }
        (Some(p), None) => (p.span(), p.get_ref().clone().into_bytes()),
        (None, Some(f)) => {
            let path = match values::absolute_path(
                "peer.password_file",
                f.get_ref(),
                "/etc/tortie/tor1.key",
            ) {
                Ok(p) => p,
                Err((m, h)) => {
                    loc.at(f.span(), m, &h);
                    return None;
                }
            };
            match read_key(&path) {
                Ok(k) => (f.span(), k),
                Err(e) => {
                    loc.at(
                        f.span(),
                        format!("{label}: cannot read password_file {}: {e}", path.display()),
                        "create it with the key on one line, readable by tortie only (chmod 0600)",
                    );
                    return None;
                }
            }
        }
        (None, None) => return None,
    };
    let (span, bytes) = key;
    if bytes.is_empty() || bytes.len() > MD5_KEY_MAX {
        loc.at(
            span,
            format!(
                "{label}: the TCP MD5 password is {} bytes long",
                bytes.len()
            ),
            &format!("RFC 2385 keys on Linux have 1 to {MD5_KEY_MAX} bytes"),
        );
        return None;
    }
    Some(bytes)
}

/// The file's bytes without one trailing newline (as `echo key > file` writes).
fn read_key(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = std::fs::read(path)?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    Ok(bytes)
}
