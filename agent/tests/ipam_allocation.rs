//! IPAM allocation rules: idempotency, round robin, static addresses,
//! exhaustion, reservation, counts, concurrent callers.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ipnetwork::IpNetwork;
use tortie_agent::ipam::{Family, Ipam, IpamError, TUNNEL_ID};

fn net(s: &str) -> Vec<IpNetwork> {
    vec![s.parse().expect("test network")]
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

#[test]
fn same_id_same_address_and_distinct_ids_distinct_addresses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ipam = Ipam::open(dir.path(), &net("10.244.1.0/28"), &[]).expect("open");
    let a = ipam.allocate("a", Family::V4).expect("a");
    let b = ipam.allocate("b", Family::V4).expect("b");
    assert_ne!(a, b);
    assert_eq!(ipam.allocate("a", Family::V4).expect("a again"), a);
    assert_eq!(ipam.allocate("a", a).expect("a with its own address"), a);
    assert!(matches!(
        ipam.allocate("a", b),
        Err(IpamError::Conflict { current, requested, .. }) if current == a && requested == b
    ));
    assert_eq!(ipam.get("a", Family::V4), Some(a));
    assert_eq!(ipam.owner(b), Some("b"));
    let all: Vec<_> = ipam.allocations().collect();
    assert_eq!(all, vec![("a", a), ("b", b)]);
    // The block's network address is a usable /32 (routed design, like Calico).
    assert_eq!(a, ip("10.244.1.0"));
}

#[test]
fn release_is_idempotent_and_released_addresses_are_not_reused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ipam = Ipam::open(dir.path(), &net("10.244.1.0/29"), &[]).expect("open");
    let a = ipam.allocate("a", Family::V4).expect("a");
    assert_eq!(ipam.release("a").expect("release"), [a]);
    assert!(ipam.release("a").expect("release again").is_empty());
    assert!(ipam.release("never").expect("release unknown").is_empty());
    // Round robin: the 7 other addresses of the /29 go first.
    let mut seen = Vec::new();
    for i in 0..8 {
        seen.push(ipam.allocate(&format!("c{i}"), Family::V4).expect("alloc"));
    }
    assert!(!seen[..7].contains(&a), "{a} re-used early: {seen:?}");
    assert_eq!(seen[7], a, "only the released address is left");
    assert_eq!(
        ipam.release_address(seen[3]).expect("by address"),
        Some("c3".into())
    );
    assert_eq!(ipam.get("c3", Family::V4), None);
}

#[test]
fn exhaustion_is_a_clear_error_and_release_makes_room() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reserved = [ip("10.244.1.1")];
    let mut ipam = Ipam::open(dir.path(), &net("10.244.1.0/30"), &reserved).expect("open");
    let got: BTreeSet<_> = (0..3)
        .map(|i| ipam.allocate(&format!("c{i}"), Family::V4).expect("alloc"))
        .collect();
    assert_eq!(got.len(), 3);
    assert!(!got.contains(&reserved[0]), "reserved address handed out");
    let err = ipam.allocate("c3", Family::V4).expect_err("pool is full");
    assert!(
        matches!(
            err,
            IpamError::Exhausted {
                size: 4,
                allocated: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "address pool 10.244.1.0/30 is exhausted: all 4 addresses are allocated or reserved (3 addresses allocated)"
    );
    assert_eq!(ipam.get("c3", Family::V4), None);
    assert_eq!(ipam.counts(), (3, 0));
    let freed = ipam.release("c1").expect("release")[0];
    assert_eq!(ipam.allocate("c3", Family::V4).expect("room again"), freed);
}

#[test]
fn static_addresses_inside_outside_and_conflicting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reserved = [ip("10.244.1.5")];
    let mut ipam = Ipam::open(dir.path(), &net("10.244.1.0/29"), &reserved).expect("open");
    // Inside the pool, free: honoured, and the dynamic allocator steps over it.
    assert_eq!(
        ipam.allocate("s1", ip("10.244.1.0")).expect("inside"),
        ip("10.244.1.0")
    );
    assert_eq!(
        ipam.allocate("d1", Family::V4).expect("dynamic"),
        ip("10.244.1.1")
    );
    // Outside the pool: honoured (the agent advertises it as a /32).
    assert_eq!(
        ipam.allocate("s2", ip("10.99.0.7")).expect("outside"),
        ip("10.99.0.7")
    );
    // Taken by someone else.
    let err = ipam.allocate("s3", ip("10.244.1.1")).expect_err("in use");
    assert!(
        matches!(&err, IpamError::InUse { owner, .. } if owner == "d1"),
        "{err:?}"
    );
    let err = ipam
        .allocate("s3", ip("10.99.0.7"))
        .expect_err("in use outside");
    assert!(
        matches!(&err, IpamError::InUse { owner, .. } if owner == "s2"),
        "{err:?}"
    );
    // Reserved, and never usable.
    assert!(matches!(
        ipam.allocate("s3", reserved[0]),
        Err(IpamError::Reserved { .. })
    ));
    for bad in ["0.0.0.0", "127.0.0.1", "224.0.0.5", "255.255.255.255"] {
        assert!(
            matches!(
                ipam.allocate("s3", ip(bad)),
                Err(IpamError::Unusable { .. })
            ),
            "{bad}"
        );
    }
    assert_eq!(
        ipam.get("s3", Family::V4),
        None,
        "failed requests allocate nothing"
    );
    // 8 in the pool, 1 reserved, 2 allocated inside, 1 outside.
    assert_eq!(ipam.counts(), (3, 5));
}

#[test]
fn container_ids_are_checked_and_the_system_namespace_is_the_agents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ipam = Ipam::open(dir.path(), &net("10.244.1.0/29"), &[]).expect("open");
    for bad in [
        String::new(),
        "a\nb".into(),
        "x".repeat(257),
        TUNNEL_ID.into(),
    ] {
        assert!(
            matches!(
                ipam.allocate(&bad, Family::V4),
                Err(IpamError::InvalidId { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        ipam.release(TUNNEL_ID),
        Err(IpamError::InvalidId { .. })
    ));
    let tunnel = ipam.allocate_tunnel().expect("tunnel");
    assert_eq!(
        IpAddr::V4(tunnel),
        ip("10.244.1.0"),
        "tunl0 takes the block's first address"
    );
    assert_eq!(ipam.allocate_tunnel().expect("tunnel again"), tunnel);
    assert!(matches!(
        ipam.release_address(tunnel.into()),
        Err(IpamError::InUse { .. })
    ));
    assert_eq!(
        ipam.release_tunnel().expect("release tunnel"),
        [IpAddr::V4(tunnel)]
    );
}

#[test]
fn concurrent_callers_get_one_address_per_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ipam = Ipam::open(dir.path(), &net("10.244.0.0/24"), &[]).expect("open");
    let ipam = Arc::new(Mutex::new(ipam));
    let ids: Vec<String> = (0..40).map(|i| format!("container-{i}")).collect();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let ipam = Arc::clone(&ipam);
            let mut ids = ids.clone();
            // Each thread asks in a different order, every id twice.
            ids.rotate_left(t * 10);
            std::thread::spawn(move || {
                let mut got = BTreeMap::new();
                for id in ids.iter().chain(ids.iter().rev()) {
                    let a = ipam
                        .lock()
                        .expect("lock")
                        .allocate(id, Family::V4)
                        .expect("alloc");
                    if let Some(prev) = got.insert(id.clone(), a) {
                        assert_eq!(prev, a, "{id} changed address");
                    }
                }
                got
            })
        })
        .collect();
    let results: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    for r in &results[1..] {
        assert_eq!(r, &results[0], "threads disagree");
    }
    let distinct: BTreeSet<_> = results[0].values().collect();
    assert_eq!(distinct.len(), ids.len(), "an address was given twice");
    assert_eq!(ipam.lock().expect("lock").counts(), (40, 216));
}
