//! Unit tests of IPAM persistence that need the store's internals: failed
//! appends, journal-full compaction, and a model test (replay == memory).

use super::*;

/// Reopens after a drop. Another test thread that forks (a child process)
/// in the same instant briefly holds a copy of the lock file's descriptor,
/// until its exec closes it (O_CLOEXEC): `Locked` then is not a bug here.
fn reopen(dir: &std::path::Path, pools: &[IpNetwork], reserved: &[IpAddr]) -> Ipam {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Ipam::open(dir, pools, reserved) {
            Err(IpamError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            r => return r.expect("reopen"),
        }
    }
}

fn pool() -> Vec<IpNetwork> {
    vec!["10.244.1.0/26".parse().expect("pool")]
}

/// The durable part of the in-memory state.
fn state(ipam: &Ipam) -> (BTreeMap<IpAddr, String>, [u128; 2]) {
    (ipam.by_addr.clone(), ipam.cursors)
}

#[test]
fn a_failed_append_allocates_nothing_and_the_next_change_compacts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ipam = Ipam::open(dir.path(), &pool(), &[]).expect("open");
    let a = ipam.allocate("a", Family::V4).expect("a");
    ipam.store.fail_next_append = true;
    let err = ipam
        .allocate("b", Family::V4)
        .expect_err("append must fail");
    assert!(err.to_string().contains("ipam.journal"), "{err}");
    assert_eq!(ipam.get("b", Family::V4), None);
    let b = ipam.allocate("b", Family::V4).expect("b");
    assert_ne!(a, b);
    ipam.store.fail_next_append = true;
    assert!(ipam.release("a").is_err());
    assert_eq!(
        ipam.get("a", Family::V4),
        Some(a),
        "a failed release freed the address"
    );
    let c = ipam.allocate("c", Family::V4).expect("c");
    let expected = state(&ipam);
    drop(ipam);
    let ipam = reopen(dir.path(), &pool(), &[]);
    assert_eq!(state(&ipam), expected);
    assert_eq!(
        (
            ipam.get("a", Family::V4),
            ipam.get("b", Family::V4),
            ipam.get("c", Family::V4)
        ),
        (Some(a), Some(b), Some(c))
    );
}

#[test]
fn a_full_journal_is_compacted_and_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ipam = Ipam::open(dir.path(), &pool(), &[]).expect("open");
    let generation = ipam.store.generation;
    // 64-character ids, like CNI's: each record takes 88 bytes.
    let per_cycle = 2 * journal::encode(&Record::Release {
        id: format!("{:064x}", 0),
        address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    })
    .len();
    let cycles = usize::try_from(journal::CAPACITY).unwrap_or(0) / per_cycle * 3 / 2;
    let mut kept = Vec::new();
    for i in 0..cycles {
        let id = format!("{i:064x}");
        let addr = ipam.allocate(&id, Family::V4).expect("alloc");
        if i % 60 == 0 {
            kept.push((id, addr));
        } else {
            ipam.release(&id).expect("release");
        }
    }
    assert!(
        ipam.store.generation > generation,
        "the journal never filled up: generation {} → {}, {cycles} cycles",
        generation,
        ipam.store.generation
    );
    let journal_len = std::fs::metadata(dir.path().join(store::JOURNAL_FILE))
        .expect("journal")
        .len();
    assert_eq!(journal_len, journal::CAPACITY, "the journal grew");
    let expected = state(&ipam);
    drop(ipam);
    let ipam = reopen(dir.path(), &pool(), &[]);
    assert_eq!(state(&ipam), expected);
    for (id, addr) in kept {
        assert_eq!(ipam.get(&id, Family::V4), Some(addr));
    }
}

#[test]
fn replaying_random_operations_gives_the_in_memory_state() {
    let mut seed = 0x853c_49e6_748f_ea9b_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let v6: IpAddr = "fd00::3".parse().expect("ip");
    let reserved = [IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)), v6];
    for round in 0..20 {
        let dir = tempfile::tempdir().expect("tempdir");
        // Two IPv4 blocks and one IPv6 block: small enough to exhaust.
        let small: Vec<IpNetwork> = ["10.0.0.0/29", "fd00::/124", "10.0.1.0/30"]
            .iter()
            .map(|b| b.parse().expect("pool"))
            .collect();
        let mut ipam = Ipam::open(dir.path(), &small, &reserved).expect("open");
        let mut handed_out: BTreeMap<IpAddr, String> = BTreeMap::new();
        for _ in 0..300 {
            let id = format!("c{}", next(24));
            let family = if next(2) == 0 { Family::V4 } else { Family::V6 };
            match next(10) {
                0..=4 => {
                    if let Ok(a) = ipam.allocate(&id, family) {
                        assert_eq!(Family::of(a), family);
                        assert_ne!(
                            a,
                            "fd00::".parse::<IpAddr>().expect("ip"),
                            "anycast handed out"
                        );
                        handed_out.insert(a, id);
                    }
                }
                5 => {
                    let wanted: IpAddr = match (family, next(2)) {
                        (Family::V4, 0) => "10.0.0.7".parse().expect("ip"),
                        (Family::V4, _) => "10.0.1.7".parse().expect("ip"),
                        (Family::V6, 0) => "fd00::7".parse().expect("ip"),
                        (Family::V6, _) => "fd00:1::7".parse().expect("ip"),
                    };
                    if let Ok(a) = ipam.allocate(&id, wanted) {
                        handed_out.insert(a, id);
                    }
                }
                6..=8 => {
                    for a in ipam.release(&id).expect("release") {
                        handed_out.remove(&a);
                    }
                }
                _ => {
                    // Reopen mid-sequence: replay, then compaction.
                    let expected = state(&ipam);
                    drop(ipam);
                    ipam = reopen(dir.path(), &small, &reserved);
                    assert_eq!(state(&ipam), expected, "round {round}");
                }
            }
            let owners: BTreeMap<IpAddr, String> = ipam
                .allocations()
                .map(|(i, a)| (a, i.to_string()))
                .collect();
            assert_eq!(owners, handed_out, "round {round}");
        }
        // Reload without compaction in between: snapshot + journal replay.
        let expected = (state(&ipam), ipam.store.generation);
        let locked = Store::open(dir.path()).expect_err("still locked");
        assert!(matches!(locked, IpamError::Locked { .. }), "{locked:?}");
        drop(ipam);
        let mut fresh = Store::open(dir.path()).expect("store");
        let snap = fresh.load().expect("load").expect("saved");
        assert_eq!(
            (snap.allocations, snap.cursors),
            expected.0,
            "round {round}"
        );
        assert_eq!(fresh.generation, expected.1);
    }
}

#[test]
fn an_id_too_long_for_a_record_goes_through_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = "x".repeat(300);
    std::fs::write(
        dir.path().join(store::STATE_FILE),
        format!(
            r#"{{"version":1,"pool":"10.244.1.0/26","cursor":0,"allocations":[{{"id":"{long}","address":"10.244.1.9"}}]}}"#
        ),
    )
    .expect("write");
    let mut ipam = Ipam::open(dir.path(), &pool(), &[]).expect("open");
    let generation = ipam.store.generation;
    let addr = "10.244.1.9".parse().expect("addr");
    assert_eq!(ipam.release_address(addr).expect("release"), Some(long));
    assert_eq!(ipam.store.generation, generation + 1, "not compacted");
    drop(ipam);
    let ipam = reopen(dir.path(), &pool(), &[]);
    assert_eq!(ipam.owner(addr), None);
}

#[test]
fn a_pending_allocation_is_taken_at_once_and_durable_once_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ipam = Ipam::open(dir.path(), &pool(), &[]).expect("open");
    let pending = ipam.allocate_pending("a", Family::V4).expect("a");
    let a = pending.address();
    // Taken in memory before the sync: nobody else gets it meanwhile.
    assert_eq!(ipam.get("a", Family::V4), Some(a));
    let synced = std::thread::spawn(move || pending.sync())
        .join()
        .expect("sync thread");
    assert_eq!(ipam.commit(synced).expect("commit"), a);
    // An uncommitted one is synced before the next record is written.
    let b = ipam.allocate_pending("b", Family::V4).expect("b").address();
    let c = ipam.allocate("c", Family::V4).expect("c");
    // A repeat is already durable.
    let again = ipam.allocate_pending("a", Family::V4).expect("a again");
    assert_eq!(ipam.commit(again).expect("commit again"), a);
    let expected = state(&ipam);
    drop(ipam);
    let ipam = reopen(dir.path(), &pool(), &[]);
    assert_eq!(state(&ipam), expected);
    assert_eq!(
        (
            ipam.get("a", Family::V4),
            ipam.get("b", Family::V4),
            ipam.get("c", Family::V4)
        ),
        (Some(a), Some(b), Some(c))
    );
}

#[test]
fn a_failed_sync_undoes_the_allocation_and_the_next_change_compacts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ipam = Ipam::open(dir.path(), &pool(), &[]).expect("open");
    let a = ipam.allocate("a", Family::V4).expect("a");
    let before = state(&ipam);
    let generation = ipam.store.generation;
    let pending = ipam.allocate_pending("b", Family::V4).expect("b");
    ipam.store.fail_next_sync = true;
    let err = ipam.commit(pending.sync()).expect_err("sync must fail");
    assert!(err.to_string().contains("ipam.journal"), "{err}");
    assert_eq!(state(&ipam), before, "a failed sync left the allocation");
    let b = ipam.allocate("b", Family::V4).expect("b");
    assert_eq!(ipam.store.generation, generation + 1, "no compaction");
    let expected = state(&ipam);
    drop(ipam);
    let ipam = reopen(dir.path(), &pool(), &[]);
    assert_eq!(state(&ipam), expected);
    assert_eq!(
        (ipam.get("a", Family::V4), ipam.get("b", Family::V4)),
        (Some(a), Some(b))
    );
}

#[test]
fn a_failed_sync_of_an_answered_allocation_keeps_it_and_compacts_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ipam = Ipam::open(dir.path(), &pool(), &[]).expect("open");
    let a = ipam.allocate("a", Family::V4).expect("a");
    let generation = ipam.store.generation;
    let pending = ipam.allocate_pending("b", Family::V4).expect("b");
    ipam.store.fail_next_sync = true;
    let b = ipam.settle(pending.sync()).expect("kept, as a snapshot");
    assert_eq!(
        ipam.get("b", Family::V4),
        Some(b),
        "the answered address stays"
    );
    assert_eq!(ipam.store.generation, generation + 1, "no snapshot written");
    let expected = state(&ipam);
    drop(ipam);
    let ipam = reopen(dir.path(), &pool(), &[]);
    assert_eq!(state(&ipam), expected);
    assert_eq!(
        (ipam.get("a", Family::V4), ipam.get("b", Family::V4)),
        (Some(a), Some(b))
    );
}
