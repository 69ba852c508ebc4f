//! RIB memory per route with policy in play (issue 13): routes carrying
//! communities (stored in the full form, not the 24-byte one), routes refused
//! on import (kept aside as filtered), and routes through an import filter.
//! Like rib_memory.rs, one test in this file, so that nothing else allocates
//! while the global allocator counts.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use tortie_bgp::heap;
use tortie_bgp::policy::{Action, Filter, ImportGuard, Matches, Modifiers, Rule};
use tortie_bgp::rib::{PeerId, PeerInfo, Rib, RibConfig};
use tortie_bgp::types::{AsPath, Ipv4Prefix, PathAttributes, Prefix};
use tortie_bgp::wire::Update;

#[global_allocator]
static GLOBAL: tortie_bgp::heap::CountingAlloc = tortie_bgp::heap::CountingAlloc;

/// Routes per row: 20,000 in CI; `TORTIE_RIB_ROUTES=1000000` (at most
/// 2^20, so the /29s stay inside their /9) gives the full-size figure.
fn routes() -> u32 {
    std::env::var("TORTIE_RIB_ROUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
        .clamp(1, 1 << 20)
}

/// The i-th /29 from `base` (2^20 of them fill a /9).
fn prefix_of(base: u32, i: u32) -> Prefix {
    Prefix::V4(Ipv4Prefix::new(Ipv4Addr::from(base + (i << 3)), 29).unwrap())
}

fn attrs(path: Vec<u32>, communities: Vec<u32>) -> Arc<PathAttributes> {
    Arc::new(PathAttributes {
        as_path: AsPath::sequence(path),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1))),
        communities,
        ..PathAttributes::default()
    })
}

/// `unique`: one UPDATE per prefix with its own AS_PATH; else ~500 prefixes
/// per UPDATE sharing one set.
fn updates(base: u32, unique: bool, communities: &[u32]) -> Vec<Update> {
    let n = routes();
    if unique {
        (0..n)
            .map(|i| Update {
                attributes: Some(attrs(vec![65001, 4_200_000_000 + i], communities.to_vec())),
                announced: vec![prefix_of(base, i)].into(),
                ..Update::default()
            })
            .collect()
    } else {
        let shared = attrs(vec![65001], communities.to_vec());
        (0..n.div_ceil(500))
            .map(|c| Update {
                attributes: Some(shared.clone()),
                announced: (c * 500..((c + 1) * 500).min(n))
                    .map(|i| prefix_of(base, i))
                    .collect(),
                ..Update::default()
            })
            .collect()
    }
}

fn rib(import: Option<Arc<Filter>>) -> Rib {
    let mut cfg = RibConfig::new(64512, Ipv4Addr::new(198, 18, 0, 2));
    cfg.guard = ImportGuard::new(
        vec!["10.128.0.0/9".parse().unwrap()],
        vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2))],
        vec![],
    );
    let mut r = Rib::new(cfg);
    let peer = Ipv4Addr::new(198, 18, 0, 1);
    let mut info = PeerInfo::new(
        IpAddr::V4(peer),
        65001,
        peer,
        IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
    );
    info.import_filter = import;
    drop(r.peer_up(PeerId(1), info).unwrap());
    r
}

/// Live heap per prefix after applying the updates (and dropping them).
fn bytes_per_route(
    base: u32,
    unique: bool,
    communities: &[u32],
    import: Option<Arc<Filter>>,
) -> (f64, usize, usize) {
    let before = heap::live_bytes();
    let ups = updates(base, unique, communities);
    let mut r = rib(import);
    for u in &ups {
        drop(r.apply_update(PeerId(1), u).unwrap());
    }
    drop(ups);
    let bytes = heap::live_bytes() - before;
    let c = r.peer_counters(PeerId(1)).unwrap();
    drop(r);
    (bytes as f64 / f64::from(routes()), c.received, c.filtered)
}

#[test]
fn memory_per_route_with_communities_filters_and_filtered_routes() {
    let comms = [(65001 << 16) | 1, (65001 << 16) | 2];
    let learned = 0x0a00_0000; // 10.0.0.0/28s: accepted
    let own = 0x0a80_0000; // 10.128.0.0/28s: inside our block, filtered
    let filter = Arc::new(Filter {
        name: "in".into(),
        rules: vec![Rule {
            matches: Matches {
                as_path_contains: vec![64666],
                ..Default::default()
            },
            action: Action::Reject,
            modifiers: Modifiers::default(),
        }],
    });
    let mut rows = Vec::new();
    for (what, base, unique, c, f) in [
        ("packed, no communities", learned, false, &[][..], None),
        ("unique, no communities", learned, true, &[][..], None),
        ("packed, 2 communities", learned, false, &comms[..], None),
        ("unique, 2 communities", learned, true, &comms[..], None),
        (
            "packed, import filter",
            learned,
            false,
            &[][..],
            Some(filter.clone()),
        ),
        (
            "unique, import filter",
            learned,
            true,
            &[][..],
            Some(filter.clone()),
        ),
        ("packed, filtered by the guard", own, false, &[][..], None),
        ("unique, filtered by the guard", own, true, &[][..], None),
    ] {
        let (b, received, filtered) = bytes_per_route(base, unique, c, f);
        eprintln!("{what}: {b:.1} B/route ({received} received, {filtered} filtered)");
        rows.push((what, b, received, filtered));
    }
    // Without communities the 24-byte stored form still holds, filter or not.
    for (what, b, received, _) in &rows[..2].iter().chain(&rows[4..6]).collect::<Vec<_>>() {
        assert_eq!(*received, routes() as usize, "{what}");
        assert!(*b <= 100.0, "{what}: {b:.1} B/route");
    }
    // Shared sets with communities cost the same per route; unique ones pay
    // for a full attribute set each.
    assert!(rows[2].1 <= 100.0, "{}: {:.1}", rows[2].0, rows[2].1);
    assert!(rows[3].1 <= 400.0, "{}: {:.1}", rows[3].0, rows[3].1);
    // Refused routes are kept aside for `tortie routes --filtered` (a map
    // entry keyed by peer and prefix, with the set and a compact reason):
    // 56/96 B at 20k, 69/109 B at 1M (the map's load factor at that size).
    for (what, b, received, filtered) in &rows[6..] {
        assert_eq!((*received, *filtered), (0, routes() as usize), "{what}");
        assert!(*b <= 120.0, "{what}: {b:.1} B/route");
    }
}
