//! Helpers shared by the RIB integration tests (bgp/tests/rib_*.rs).
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use tortie_bgp::rib::{PeerId, PeerInfo, Rib, RibConfig, RibOutput};
use tortie_bgp::types::{AsPath, PathAttributes, Prefix};
use tortie_bgp::wire::Update;

pub const LOCAL_AS: u32 = 65000;
pub const ROUTER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// A RIB with eBGP-to-eBGP transit allowed: these tests are about the
/// RFC 4271 / 4456 export rules between several external peers. The
/// default (no transit without a filter) is tested in rib_policy.rs.
pub fn rib() -> Rib {
    let mut cfg = RibConfig::new(LOCAL_AS, ROUTER_ID);
    cfg.ebgp_requires_policy = false;
    Rib::new(cfg)
}

pub fn pfx(s: &str) -> Prefix {
    s.parse().unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Attributes with an AS_SEQUENCE and a NEXT_HOP.
pub fn attrs(path: &[u32], nh: &str) -> PathAttributes {
    PathAttributes {
        as_path: AsPath::sequence(path),
        next_hop: Some(ip(nh)),
        ..Default::default()
    }
}

pub fn announce(prefixes: &[&str], a: PathAttributes) -> Update {
    Update {
        attributes: Some(Arc::new(a)),
        announced: prefixes.iter().map(|p| pfx(p)).collect(),
        ..Default::default()
    }
}

pub fn withdraw(prefixes: &[&str]) -> Update {
    Update {
        withdrawn: prefixes.iter().map(|p| pfx(p)).collect(),
        ..Default::default()
    }
}

/// A peer at 192.0.2.N (router id 10.255.0.N), our side 192.0.2.254.
pub fn peer_info(n: u8, asn: u32) -> PeerInfo {
    PeerInfo::new(
        ip(&format!("192.0.2.{n}")),
        asn,
        Ipv4Addr::new(10, 255, 0, n),
        ip("192.0.2.254"),
    )
}

pub fn up(rib: &mut Rib, id: u32, info: PeerInfo) -> RibOutput {
    rib.peer_up(PeerId(id), info).unwrap()
}

pub fn apply(rib: &mut Rib, id: u32, u: Update) -> RibOutput {
    rib.apply_update(PeerId(id), &u).unwrap()
}

/// The UPDATEs of `out` addressed to `id`.
pub fn sent_to(out: &RibOutput, id: u32) -> Vec<Update> {
    out.outbound
        .iter()
        .filter(|(p, _)| *p == PeerId(id))
        .map(|(_, u)| u.clone())
        .collect()
}

/// The single announcement of `prefix` to `id` in `out`, with its attributes.
pub fn announced_to(out: &RibOutput, id: u32, prefix: &str) -> Option<Arc<PathAttributes>> {
    let p = pfx(prefix);
    sent_to(out, id)
        .into_iter()
        .find(|u| u.announced.contains(&p))
        .and_then(|u| u.attributes)
}

pub fn withdrawn_to(out: &RibOutput, id: u32, prefix: &str) -> bool {
    let p = pfx(prefix);
    sent_to(out, id).iter().any(|u| u.withdrawn.contains(&p))
}
