//! RIB benchmark: 1M IPv4 routes from one eBGP peer with ~1000 distinct
//! attribute sets, then the same 1M from a second peer; then a third peer
//! coming up (full Adj-RIB-Out export) and the first going down.
//!
//! Run: `cargo run -p tortie-bgp --release --example rib_bench [-- ROUTES [PREFIXES_PER_UPDATE]]`
//! Reports routes/s per phase and RIB memory per route, counted by a global
//! allocator (live heap bytes) and cross-checked with the RSS from /proc/self/statm.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use tortie_bgp::heap;
use tortie_bgp::rib::{PeerId, PeerInfo, Rib, RibConfig};
use tortie_bgp::types::{AsPath, Ipv4Prefix, PathAttributes, Prefix};
use tortie_bgp::wire::Update;

#[global_allocator]
static GLOBAL: tortie_bgp::heap::CountingAlloc = tortie_bgp::heap::CountingAlloc;

const ATTR_SETS: usize = 1000;

fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn updates(routes: usize, per_update: usize, peer_as: u32, next_hop: Ipv4Addr) -> Vec<Update> {
    let sets: Vec<Arc<PathAttributes>> = (0..ATTR_SETS as u32)
        .map(|k| {
            Arc::new(PathAttributes {
                as_path: AsPath::sequence(vec![peer_as, 64512 + k % 400, 4_200_000_000 + k]),
                next_hop: Some(IpAddr::V4(next_hop)),
                med: Some(k % 7),
                communities: vec![(peer_as << 16) | (k & 0xffff)],
                ..Default::default()
            })
        })
        .collect();
    (0..routes.div_ceil(per_update))
        .map(|chunk| {
            let start = chunk * per_update;
            let end = (start + per_update).min(routes);
            let announced = (start..end)
                .map(|i| {
                    let addr = Ipv4Addr::from(0x1000_0000u32.wrapping_add((i as u32) << 8));
                    Prefix::V4(Ipv4Prefix::new(addr, 24).unwrap_or_else(|| unreachable!()))
                })
                .collect();
            Update {
                attributes: Some(sets[(start / 500) % ATTR_SETS].clone()),
                announced,
                ..Default::default()
            }
        })
        .collect()
}

fn peer(n: u8, asn: u32) -> PeerInfo {
    PeerInfo::new(
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)),
        asn,
        Ipv4Addr::new(10, 255, 0, n),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254)),
    )
}

fn main() {
    let routes: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let per_update: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(500)
        .max(1);
    let mut rib = Rib::new(RibConfig::new(65000, Ipv4Addr::new(10, 0, 0, 1)));
    rib.peer_up(PeerId(1), peer(1, 65001)).expect("peer 1 up");
    rib.peer_up(PeerId(2), peer(2, 65002)).expect("peer 2 up");

    let mut sent = 0usize;
    let mut changes = 0usize;
    for (id, asn, nh) in [
        (1u32, 65001u32, Ipv4Addr::new(192, 0, 2, 1)),
        (2, 65002, Ipv4Addr::new(192, 0, 2, 2)),
    ] {
        let input = updates(routes, per_update, asn, nh);
        let (heap0, rss0) = (heap::live_bytes(), rss_bytes());
        let t = Instant::now();
        for u in &input {
            let out = rib.apply_update(PeerId(id), u).expect("apply");
            changes += out.best_changes.len();
            sent += out
                .outbound
                .iter()
                .map(|(_, u)| u.announced.len() + u.withdrawn.len())
                .sum::<usize>();
        }
        let dt = t.elapsed();
        let (heap1, rss1) = (heap::live_bytes(), rss_bytes());
        println!(
            "peer {id}: {routes} routes in {:.3}s = {:.0} routes/s; RIB heap +{:.1} B/route (RSS +{:.1} B/route); \
             {} UPDATEs of {per_update}",
            dt.as_secs_f64(),
            routes as f64 / dt.as_secs_f64(),
            (heap1 as f64 - heap0 as f64) / routes as f64,
            (rss1 as f64 - rss0 as f64) / routes as f64,
            input.len(),
        );
    }
    println!(
        "total: {} prefixes, {} paths, {} export attribute sets, {} best changes, {} prefixes sent; RIB heap {:.1} B/prefix",
        rib.loc_rib_len(),
        rib.received_count(PeerId(1)) + rib.received_count(PeerId(2)),
        rib.attribute_sets(),
        changes,
        sent,
        heap::live_bytes() as f64 / rib.loc_rib_len().max(1) as f64,
    );

    let t = Instant::now();
    let out = rib.peer_up(PeerId(3), peer(3, 65003)).expect("peer 3 up");
    let n: usize = out.outbound.iter().map(|(_, u)| u.announced.len()).sum();
    println!(
        "peer 3 up: initial Adj-RIB-Out of {n} prefixes in {} UPDATE groups, {:.3}s",
        out.outbound.len(),
        t.elapsed().as_secs_f64()
    );
    drop(out);

    let t = Instant::now();
    let out = rib.peer_down(PeerId(1), false);
    println!(
        "peer 1 down: {} best changes, {} outbound UPDATE groups, {:.3}s",
        out.best_changes.len(),
        out.outbound.len(),
        t.elapsed().as_secs_f64()
    );
}
