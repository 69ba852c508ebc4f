//! Tests of the outbox ([`super::Outbox`]): order, backlog, compaction and
//! the events handed to the owner, fed by a real RIB.

use super::*;
use std::net::IpAddr;

use crate::fsm::SessionState;
use crate::rib::RibConfig;

mod express;

fn pfx(s: &str) -> Prefix {
    s.parse().unwrap()
}

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

/// The event channel's bound in bytes (`session::EVENT_CHANNEL`, "about
/// 80 KB when full") depends on this size.
#[test]
fn a_queued_event_is_at_most_80_bytes() {
    assert!(std::mem::size_of::<SpeakerEvent>() <= 80);
}

fn rib() -> Rib {
    Rib::new(RibConfig::new(64512, Ipv4Addr::new(192, 0, 2, 1)))
}

/// Local originations stand in for learned routes: a prefix is either
/// present (attributes) or gone.
fn add(rib: &mut Rib, ob: &mut Outbox, tx: &mpsc::Sender<SpeakerEvent>, p: &str) {
    for c in rib.originate(pfx(p), None).best_changes {
        ob.push_change(c, tx);
    }
}

/// `n` /24s in `first`.0.0.0/8, one after the other.
fn add_24s(rib: &mut Rib, ob: &mut Outbox, tx: &mpsc::Sender<SpeakerEvent>, first: u8, n: u32) {
    for i in 0..n {
        add(rib, ob, tx, &format!("{first}.{}.{}.0/24", i >> 8, i & 255));
    }
}

fn del(rib: &mut Rib, ob: &mut Outbox, tx: &mpsc::Sender<SpeakerEvent>, p: &str) {
    for c in rib.withdraw_local(pfx(p)).best_changes {
        ob.push_change(c, tx);
    }
}

/// (prefix, present?) of a route change.
fn state(ev: &SpeakerEvent) -> (Prefix, bool) {
    match ev {
        SpeakerEvent::BestPathChanged {
            prefix, attributes, ..
        } => (*prefix, attributes.is_some()),
        other => panic!("expected a route change, got {other:?}"),
    }
}

fn sorted(evs: &[SpeakerEvent]) -> Vec<(Prefix, bool)> {
    let mut v: Vec<_> = evs.iter().map(state).collect();
    v.sort();
    v
}

/// Takes everything: delivers into the channel and drains it, repeatedly.
fn take_all(
    ob: &mut Outbox,
    tx: &mpsc::Sender<SpeakerEvent>,
    rx: &mut mpsc::Receiver<SpeakerEvent>,
    rib: &Rib,
) -> Vec<SpeakerEvent> {
    let mut got = Vec::new();
    loop {
        while let Ok(ev) = rx.try_recv() {
            got.push(ev);
        }
        if ob.is_empty() {
            return got;
        }
        let permits = tx.try_reserve_many(1).unwrap();
        ob.deliver(permits, tx, rib);
    }
}

#[test]
fn goes_straight_out_while_the_channel_has_room() {
    let (tx, mut rx) = mpsc::channel(8);
    let mut rib = rib();
    let mut ob = Outbox::default();
    add(&mut rib, &mut ob, &tx, "10.0.0.0/24");
    del(&mut rib, &mut ob, &tx, "10.0.0.0/24");
    assert!(ob.is_empty());
    assert_eq!(state(&rx.try_recv().unwrap()), (pfx("10.0.0.0/24"), true));
    assert_eq!(state(&rx.try_recv().unwrap()), (pfx("10.0.0.0/24"), false));
}

#[test]
fn a_full_channel_keeps_one_entry_per_prefix_with_the_latest_state() {
    let (tx, mut rx) = mpsc::channel(1);
    let mut rib = rib();
    let mut ob = Outbox::default();
    add(&mut rib, &mut ob, &tx, "10.0.0.0/24");
    add(&mut rib, &mut ob, &tx, "10.0.1.0/24");
    del(&mut rib, &mut ob, &tx, "10.0.0.0/24");
    add(&mut rib, &mut ob, &tx, "10.0.2.0/24");
    del(&mut rib, &mut ob, &tx, "10.0.1.0/24");
    add(&mut rib, &mut ob, &tx, "10.0.1.0/24");
    // The first went out; the rest wait as prefixes.
    assert_eq!(ob.len(), 5);
    let got = take_all(&mut ob, &tx, &mut rx, &rib);
    assert_eq!(state(&got[0]), (pfx("10.0.0.0/24"), true));
    let mut rest = sorted(&got[1..]);
    rest.dedup();
    assert_eq!(
        rest,
        vec![
            (pfx("10.0.0.0/24"), false),
            (pfx("10.0.1.0/24"), true),
            (pfx("10.0.2.0/24"), true),
        ]
    );
    assert!(ob.is_empty());
    // Empty again: straight out.
    del(&mut rib, &mut ob, &tx, "10.0.2.0/24");
    assert!(ob.is_empty());
    assert_eq!(state(&rx.try_recv().unwrap()), (pfx("10.0.2.0/24"), false));
}

#[test]
fn other_events_are_barriers() {
    let (tx, mut rx) = mpsc::channel(1);
    let mut rib = rib();
    let mut ob = Outbox::default();
    // Fill the channel so that everything after waits.
    ob.push(SpeakerEvent::Converged, &tx);
    add(&mut rib, &mut ob, &tx, "10.0.0.0/24");
    add(&mut rib, &mut ob, &tx, "10.0.1.0/24");
    ob.push(
        SpeakerEvent::PeerStateChanged {
            peer: PEER,
            state: SessionState::Idle,
            reason: "test".into(),
        },
        &tx,
    );
    del(&mut rib, &mut ob, &tx, "10.0.1.0/24");
    add(&mut rib, &mut ob, &tx, "10.0.2.0/24");
    let got = take_all(&mut ob, &tx, &mut rx, &rib);
    assert!(matches!(got[0], SpeakerEvent::Converged));
    let barrier = got
        .iter()
        .position(|e| matches!(e, SpeakerEvent::PeerStateChanged { .. }))
        .unwrap();
    // Both prefixes changed before the barrier are reported before it,
    // with their state now (10.0.1.0/24 is already withdrawn again); the
    // two changes made behind it went ahead of it, into the first change
    // set (few changes there: see the next test; a prefix marked twice
    // between passes is reported twice).
    let mut before = sorted(&got[1..barrier]);
    before.dedup();
    assert_eq!(
        before,
        vec![
            (pfx("10.0.0.0/24"), true),
            (pfx("10.0.1.0/24"), false),
            (pfx("10.0.2.0/24"), true)
        ]
    );
    assert_eq!(barrier, got.len() - 1);
}

#[test]
fn many_changes_to_few_prefixes_stay_small() {
    let (tx, mut rx) = mpsc::channel(1);
    let mut rib = rib();
    let mut ob = Outbox::default();
    ob.push(SpeakerEvent::Converged, &tx);
    for _ in 0..50_000 {
        add(&mut rib, &mut ob, &tx, "10.0.0.0/24");
        del(&mut rib, &mut ob, &tx, "10.0.0.0/24");
        add(&mut rib, &mut ob, &tx, "10.0.1.0/24");
    }
    del(&mut rib, &mut ob, &tx, "10.0.1.0/24");
    assert!(ob.len() <= COMPACT_MIN, "{}", ob.len());
    let got = take_all(&mut ob, &tx, &mut rx, &rib);
    let mut set = sorted(&got[1..]);
    set.dedup();
    assert_eq!(
        set,
        vec![(pfx("10.0.0.0/24"), false), (pfx("10.0.1.0/24"), false)]
    );
}

/// Letters for the prefixes of the event table.
fn letter(p: Prefix) -> char {
    match p {
        Prefix::V4(p4) => char::from(b'a' + p4.addr().octets()[2]),
        Prefix::V6(_) => '6',
    }
}

fn prefix_of(c: char) -> String {
    format!("10.0.{}.0/24", u32::from(c) - u32::from('a'))
}

/// What an owner applying every event in order holds at each barrier
/// ("C" Converged, "P" a peer state change) and at the end.
fn replay(evs: &[SpeakerEvent]) -> Vec<String> {
    let mut held = std::collections::BTreeSet::new();
    let mut seen = Vec::new();
    let show = |held: &std::collections::BTreeSet<char>| held.iter().collect::<String>();
    for ev in evs {
        match ev {
            SpeakerEvent::BestPathChanged {
                prefix, attributes, ..
            } => {
                if attributes.is_some() {
                    held.insert(letter(*prefix));
                } else {
                    held.remove(&letter(*prefix));
                }
            }
            SpeakerEvent::Converged => seen.push(format!("C {}", show(&held))),
            SpeakerEvent::PeerStateChanged { .. } => seen.push(format!("P {}", show(&held))),
        }
    }
    seen.push(format!("end {}", show(&held)));
    seen
}

/// The one coalescing stage as an event table: channel capacity, what
/// the RIB task does ("+a" a best path for prefix a, "-a" it is gone,
/// "C"/"P" barriers, "~" the owner takes everything now), and what the
/// owner then holds at each barrier and at the end. Last state wins; a
/// barrier comes after every change queued before it, reported in a
/// state never older than when the barrier was queued (it may be newer:
/// the fifth row reports `a` gone at C), and changes marked behind a
/// barrier may come before it (the third and fourth rows).
#[test]
fn event_table() {
    #[rustfmt::skip]
    let table: &[(usize, &[&str], &[&str])] = &[
        // Room in the channel: every change goes out as made.
        (8, &["+a", "C", "-a"], &["C a", "end "]),
        (8, &["+a", "+b", "-a", "P", "+c"], &["P b", "end bc"]),
        // A full channel (the first event fills it): prefixes are marked.
        // A change marked behind a barrier goes ahead of it, into the
        // first change set (its unsorted tail is short).
        (1, &["P", "+a", "+b", "-a", "C", "+c"], &["P ", "C bc", "end bc"]),
        (1, &["P", "+a", "C", "+b", "P", "-a"], &["P ", "C b", "P b", "end b"]),
        (1, &["P", "+a", "C", "-a"], &["P ", "C ", "end "]),
        (1, &["P", "+a", "-a", "+a", "-a", "+a"], &["P ", "end a"]),
        (1, &["P", "+a", "~", "-a", "+b", "C"], &["P ", "C b", "end b"]),
        // Barriers in a row keep their order.
        (1, &["C", "+a", "P", "P", "-a", "C"], &["C ", "P ", "P ", "C ", "end "]),
    ];
    for (cap, ops, want) in table {
        let (tx, mut rx) = mpsc::channel(*cap);
        let mut rib = rib();
        let mut ob = Outbox::default();
        let mut got = Vec::new();
        for op in *ops {
            let mut chars = op.chars();
            match (chars.next(), chars.next()) {
                (Some('+'), Some(c)) => add(&mut rib, &mut ob, &tx, &prefix_of(c)),
                (Some('-'), Some(c)) => del(&mut rib, &mut ob, &tx, &prefix_of(c)),
                (Some('C'), None) => ob.push(SpeakerEvent::Converged, &tx),
                (Some('P'), None) => ob.push(
                    SpeakerEvent::PeerStateChanged {
                        peer: PEER,
                        state: SessionState::Idle,
                        reason: "test".into(),
                    },
                    &tx,
                ),
                (Some('~'), None) => got.extend(take_all(&mut ob, &tx, &mut rx, &rib)),
                _ => panic!("bad op {op}"),
            }
            assert!(ob.len() <= 8, "{ops:?}: at most one entry per change");
        }
        got.extend(take_all(&mut ob, &tx, &mut rx, &rib));
        assert_eq!(replay(&got), *want, "capacity {cap}, {ops:?}");
    }
}

#[test]
fn equal_next_hop_sets_share_one_allocation() {
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let b: IpAddr = "192.0.2.2".parse().unwrap();
    let mut sets = NextHopSets::default();
    let x = sets.intern(&[a]);
    let y = sets.intern(&[a, b]);
    assert_eq!(x.ptr(), sets.intern(&[a]).ptr());
    assert_eq!(y.ptr(), sets.intern(&[a, b]).ptr());
    assert_ne!(x.ptr(), y.ptr());
    assert_eq!(x, vec![a]);
    // Sets nobody holds go when the interner has grown enough.
    drop(y);
    for n in 0..200u32 {
        sets.intern(&[IpAddr::from(std::net::Ipv4Addr::from(n))]);
    }
    assert!(sets.len() < 200, "{}", sets.len());
    assert_eq!(x.ptr(), sets.intern(&[a]).ptr(), "a held set stays");
}

#[test]
fn v4_and_v6_keys_round_trip() {
    let all = [
        "10.0.0.0/8",
        "0.0.0.0/0",
        "128.0.0.0/1",
        "224.0.0.0/3",
        "240.0.0.0/4",
        "10.1.2.48/28",
        "255.255.255.255/32",
        "2001:db8::/32",
    ];
    let mut c = ChangeSet::default();
    for p in all {
        c.insert(pfx(p));
    }
    let mut got = Vec::new();
    while let Some(p) = c.pop() {
        got.push(p);
    }
    got.sort();
    let mut want: Vec<Prefix> = all.iter().map(|p| pfx(p)).collect();
    want.sort();
    assert_eq!(got, want);
    assert!(c.is_empty());
}

/// Indices of the workload's /28s (`10.0.0.0 + 16·i`) as they leave `c`.
fn drain_v4(c: &mut ChangeSet) -> Vec<u32> {
    let index = |p: Prefix| match p {
        Prefix::V4(p) => (u32::from(p.addr()) - 0x0a00_0000) >> 4,
        Prefix::V6(_) => u32::MAX,
    };
    std::iter::from_fn(|| c.pop()).map(index).collect()
}

fn nth_v4(i: u32) -> Prefix {
    Prefix::V4(Ipv4Prefix::new(Ipv4Addr::from(0x0a00_0000 + (i << 4)), 28).unwrap())
}

/// A place's tier (the visit of its run that takes it): 4 for place 0,
/// then 3 (8), 2 (4, 12), 1 (2, 6, 10, 14), 0 (odd places).
fn tier_of(i: u32) -> u32 {
    match i % 16 {
        0 => 4,
        8 => 3,
        4 | 12 => 2,
        p if p % 2 == 0 => 1,
        _ => 0,
    }
}

/// A backlog of neighbouring IPv4 prefixes leaves tier by tier (every
/// run's place 0, then every run's place 8, then 4 and 12, …), each tier
/// visiting the runs (sixteen neighbours) far apart in bit-reversed order,
/// a run's places of the tier together, every prefix once — whether it
/// was compacted, merged or sorted on its own after the last pass.
#[test]
fn ipv4_backlog_leaves_tier_by_tier_runs_spread_bit_reversed() {
    // 4096, compacted at the last insert; 12288: 8192 compacted and a
    // tail of 4096 (≥ 1/MERGE_SHARE of them: merged into one order).
    for n in [4096u32, 12288] {
        let mut c = ChangeSet::default();
        for i in 0..n {
            c.insert(nth_v4(i));
        }
        let got = drain_v4(&mut c);
        let tiers: Vec<u32> = got.iter().map(|&i| tier_of(i)).collect();
        assert!(
            tiers.windows(2).all(|w| w[0] >= w[1]),
            "n = {n}: tiers in order"
        );
        let runs = n / 16;
        assert_eq!(tiers.iter().filter(|&&t| t == 4).count() as u32, runs);
        // Tier 4: one prefix per run, consecutive ones far apart.
        assert!(got[..runs as usize].iter().all(|i| i % 16 == 0));
        assert!(
            got[0].abs_diff(got[1]) > 256,
            "n = {n}: {} {}",
            got[0],
            got[1]
        );
        // Tier 1: each run's four places together, descending.
        let t1 = &got[(runs * 4) as usize..(runs * 8) as usize];
        for run in t1.chunks(4) {
            assert_eq!(run[0] % 16, 14, "n = {n}: {run:?}");
            assert!(run.windows(2).all(|w| w[1] + 4 == w[0]), "n = {n}: {run:?}");
        }
        let mut all = got.clone();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>(), "each once");
    }
}

/// A change made while a barrier waits behind a backlog's pass (a new
/// container /32 from another peer while a bulk load that already sent its
/// End-of-RIB is being programmed) leaves ahead of the rest of the pass and
/// of the barrier, while the pass's unsorted tail is short; once
/// [`COMPACT_MIN`] changes went ahead, the next waits behind the barrier
/// again (a stream of changes cannot put the barrier off for ever).
#[test]
fn a_change_behind_a_barrier_leaves_ahead_of_the_pass_while_few_do() {
    // An IPv6 change too: ahead of the IPv4 pass, not after all of it.
    for (many, probe) in [
        (false, "198.19.0.1/32"),
        (true, "198.19.0.1/32"),
        (false, "fd13:19::1/128"),
        (true, "fd13:19::1/128"),
    ] {
        let (tx, mut rx) = mpsc::channel(1);
        let mut rib = rib();
        let mut ob = Outbox::default();
        ob.push(SpeakerEvent::Converged, &tx);
        let n = 3 * COMPACT_MIN as u32;
        add_24s(&mut rib, &mut ob, &tx, 10, n);
        // The pass starts: the first delivery sorts the backlog.
        assert!(matches!(rx.try_recv(), Ok(SpeakerEvent::Converged)));
        ob.deliver(tx.try_reserve_many(1).unwrap(), &tx, &rib);
        let first = state(&rx.try_recv().unwrap());
        assert!(first.1 && first != (pfx(probe), true));
        ob.push(SpeakerEvent::Converged, &tx);
        if many {
            add_24s(&mut rib, &mut ob, &tx, 11, COMPACT_MIN as u32);
        }
        add(&mut rib, &mut ob, &tx, probe);
        let got = take_all(&mut ob, &tx, &mut rx, &rib);
        let barrier = got
            .iter()
            .position(|e| matches!(e, SpeakerEvent::Converged));
        let at = got
            .iter()
            .position(|e| !matches!(e, SpeakerEvent::Converged) && state(e).0 == pfx(probe));
        let (Some(barrier), Some(at)) = (barrier, at) else {
            panic!("{probe}, many {many}: barrier {barrier:?}, probe {at:?}");
        };
        assert_eq!(
            at < barrier,
            !many,
            "{probe}, many {many}: probe {at}, barrier {barrier}"
        );
        if !many {
            assert_eq!(at, 0, "{probe} ahead of the rest of the pass");
            assert_eq!(barrier, n as usize, "after the whole pass");
        }
    }
}

/// A tail marked after the last pass is merged with the head into one
/// order once it is ≥ 1/[`MERGE_SHARE`] of it, and leaves first, sorted on
/// its own, while it is smaller.
#[test]
fn an_ipv4_tail_is_merged_once_it_is_a_share_of_the_backlog() {
    let head = 65536u32;
    for (tail, merged) in [(head / 8, true), (head / 16, false)] {
        let mut c = ChangeSet::default();
        for i in 0..head + tail {
            c.insert(nth_v4(i));
        }
        assert_eq!(c.clean_v4, head as usize, "compacted at the head");
        let got = drain_v4(&mut c);
        let first_tail = got[..tail as usize].iter().all(|&i| i >= head);
        assert_eq!(first_tail, !merged, "tail {tail}: merged {merged}");
        if merged {
            let tiers: Vec<u32> = got.iter().map(|&i| tier_of(i)).collect();
            assert!(tiers.windows(2).all(|w| w[0] >= w[1]), "one order");
        }
    }
}
/// A short IPv6 tail marked while an IPv4 backlog is delivered leaves
/// ahead of that backlog (last in, first out); a tail of [`COMPACT_MIN`]
/// or more, and a de-duplicated IPv6 head, wait for it as before; an IPv4
/// change marked while an IPv6 backlog's tail is fresh leaves first.
#[test]
fn a_short_ipv6_tail_leaves_ahead_of_an_ipv4_backlog() {
    let v6 = |i: u32, len: u8| {
        let a = std::net::Ipv6Addr::from((0xfd13_0019_u128 << 96) | (u128::from(i) << 64));
        Prefix::V6(Ipv6Prefix::new(a, len).unwrap())
    };
    let n = 2 * COMPACT_MIN;
    let m = COMPACT_MIN as u32;
    // (IPv6 head, de-duplicated before the pass; tail marked during it)
    for (head, tail, len, ahead) in [
        (0, 1, 128, true),
        (0, 3, 64, true),
        (0, m - 1, 128, true),
        (2 * m, m - 1, 64, true),
        (2 * m, m, 64, false),
        (2 * m, 0, 64, false),
    ] {
        let mut c = ChangeSet::default();
        for i in 0..head {
            c.insert(v6(i, len));
        }
        for i in 0..n as u32 {
            c.insert(nth_v4(i));
        }
        // The pass starts (sorted), then the IPv6 changes are marked.
        assert!(matches!(c.pop(), Some(Prefix::V4(_))));
        for i in head..head + tail {
            c.insert(v6(i, len));
        }
        let got: Vec<Prefix> = std::iter::from_fn(|| c.pop()).collect();
        let first6 = got.iter().position(|p| matches!(p, Prefix::V6(_)));
        let want = if ahead { 0 } else { n - 1 };
        assert_eq!(first6, Some(want), "head {head}, tail {tail} /{len}");
        if ahead {
            assert_eq!(got[0], v6(head + tail - 1, len), "last in, first out");
        }
        assert_eq!(got.len(), n - 1 + (head + tail) as usize);
    }
    let mut c = ChangeSet::default();
    for i in 0..100 {
        c.insert(v6(i, 48));
    }
    c.insert(nth_v4(7));
    assert_eq!(c.pop(), Some(nth_v4(7)), "a fresh IPv4 change first");
    assert!(matches!(c.pop(), Some(Prefix::V6(_))));
}

/// An IPv6 backlog leaves in descending address order, whether its
/// prefixes are kept in 9 bytes (up to /64) or 17 (longer).
#[test]
fn ipv6_backlog_leaves_in_descending_order_in_both_forms() {
    // Each inserted twice: both lists reach COMPACT_MIN at the last
    // insert and are de-duplicated then.
    let n = u16::try_from(COMPACT_MIN / 2).unwrap();
    let mut want: Vec<Prefix> = (0..n)
        .flat_map(|i| {
            let a = std::net::Ipv6Addr::new(0xfd00, i, 0, 0, 0, 0, 0, 0);
            let long = std::net::Ipv6Addr::new(0xfd00, i, 0, 0, 0, 0, 0, 1);
            [
                Prefix::V6(Ipv6Prefix::new(a, 48).unwrap()),
                Prefix::V6(Ipv6Prefix::new(long, 128).unwrap()),
            ]
        })
        .collect();
    let mut c = ChangeSet::default();
    for _ in 0..2 {
        for p in &want {
            c.insert(*p);
        }
    }
    assert_eq!(c.len(), want.len(), "each once after the pass");
    let got: Vec<Prefix> = std::iter::from_fn(|| c.pop()).collect();
    want.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(got, want);
}

/// A draining backlog gives its memory back as it goes, not only once
/// its last prefix has left.
#[test]
fn a_draining_backlog_gives_memory_back() {
    let mut c = ChangeSet::default();
    let n = 4 * RELEASE_MIN as u32;
    for i in 0..n {
        c.insert(Prefix::V4(
            Ipv4Prefix::new(Ipv4Addr::from(i << 4), 28).unwrap(),
        ));
    }
    let full = c.v4.capacity();
    let mut left = c.len();
    while left > RELEASE_MIN / 2 {
        assert!(c.pop().is_some());
        left -= 1;
    }
    let (cap, len) = (c.v4.capacity(), c.v4.len());
    assert!(
        cap <= full / 2 && cap <= 4 * (len + 1),
        "{cap} of {full} for {len}"
    );
    assert_eq!(std::iter::from_fn(|| c.pop()).count(), left);
}

/// Delivery waits while the RIB task is busy, at most [`HOLD_MAX`] per
/// busy stretch; an idle RIB task ends the stretch.
#[test]
fn delivery_holds_while_the_rib_is_busy_for_a_bounded_time() {
    let mut ob = Outbox::default();
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    assert!(!ob.hold(false, t0), "idle: deliver");
    assert!(ob.hold(true, t0), "busy: hold");
    assert!(ob.hold(true, t0 + HOLD_MAX / 2));
    assert!(!ob.hold(true, t0 + HOLD_MAX), "held long enough");
    assert!(!ob.hold(true, t0 + HOLD_MAX * 3), "until the RIB is idle");
    assert!(!ob.hold(false, at(1) + HOLD_MAX * 3));
    assert!(ob.hold(true, at(2) + HOLD_MAX * 3), "a new busy stretch");
}

#[test]
fn a_dropped_receiver_keeps_nothing() {
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let mut ob = Outbox::default();
    ob.push(SpeakerEvent::Converged, &tx);
    ob.push(SpeakerEvent::Converged, &tx);
    assert!(ob.is_empty());
}

/// [`BestPathFeed::NextHops`] (the agent): the RIB's changes and the events
/// carry no attributes, and a change that waited in the outbox is reported
/// with the Loc-RIB's next hops as the same change sent at once would be; a
/// withdrawal as empty. A change of attributes alone is not reported.
#[test]
fn bare_events_carry_next_hops_without_attributes() {
    use crate::rib::PeerId;
    use crate::types::{AsPath, PathAttributes};
    use crate::wire::Update;
    let rib_for = |feed| {
        let mut cfg = RibConfig::new(64512, Ipv4Addr::new(192, 0, 2, 1));
        cfg.best_path_feed = feed;
        let mut rib = Rib::new(cfg);
        // An iBGP peer: accepted without an import policy (RFC 8212 is eBGP's).
        let local = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254));
        let peer = crate::rib::PeerInfo::new(PEER, 64512, Ipv4Addr::new(10, 255, 0, 2), local);
        rib.peer_up(PeerId(1), peer).unwrap();
        rib
    };
    let mut rib = rib_for(BestPathFeed::NextHops);
    let learn_as = |rib: &mut Rib, p: &str, nh: &str, asn: u32| {
        let u = Update {
            attributes: Some(std::sync::Arc::new(PathAttributes {
                as_path: AsPath::sequence(vec![asn]),
                local_pref: Some(100),
                next_hop: Some(nh.parse().unwrap()),
                ..Default::default()
            })),
            announced: vec![pfx(p)].into(),
            ..Default::default()
        };
        let changes = rib.apply_update(PeerId(1), &u).unwrap().best_changes;
        if rib.config().best_path_feed == BestPathFeed::NextHops {
            assert!(
                changes.iter().all(|c| c.attributes.is_none()),
                "{changes:?}"
            );
        }
        changes
    };
    let learn = |rib: &mut Rib, p: &str, nh: &str| learn_as(rib, p, nh, 65001);
    let hops = |ev: &SpeakerEvent| match ev {
        SpeakerEvent::BestPathChanged {
            prefix,
            next_hops,
            attributes,
            ..
        } => {
            assert!(attributes.is_none(), "{ev:?}");
            (
                *prefix,
                next_hops
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
        }
        other => panic!("expected a route change, got {other:?}"),
    };
    // Room in the channel: straight out, without attributes.
    let (tx, mut rx) = mpsc::channel(8);
    let mut ob = Outbox::new(BestPathFeed::NextHops);
    for c in learn(&mut rib, "10.0.0.0/24", "192.0.2.2") {
        ob.push_change(c, &tx);
    }
    let ev = rx.try_recv().unwrap();
    assert_eq!(
        hops(&ev),
        (pfx("10.0.0.0/24"), vec!["192.0.2.2".to_string()])
    );
    // A full channel: marked, then reported from the Loc-RIB at delivery.
    let (tx, mut rx) = mpsc::channel(1);
    ob.push(SpeakerEvent::Converged, &tx);
    for c in learn(&mut rib, "10.0.1.0/24", "192.0.2.3") {
        ob.push_change(c, &tx);
    }
    let u = Update {
        withdrawn: vec![pfx("10.0.0.0/24")].into(),
        ..Default::default()
    };
    for c in rib.apply_update(PeerId(1), &u).unwrap().best_changes {
        ob.push_change(c, &tx);
    }
    let got = take_all(&mut ob, &tx, &mut rx, &rib);
    assert_eq!(got[0], SpeakerEvent::Converged);
    let mut rest: Vec<_> = got[1..].iter().map(hops).collect();
    rest.sort();
    assert_eq!(
        rest,
        vec![
            (pfx("10.0.0.0/24"), vec![]),
            (pfx("10.0.1.0/24"), vec!["192.0.2.3".to_string()]),
        ]
    );
    // New attributes, same next hop: nothing to install, nothing reported.
    assert!(learn_as(&mut rib, "10.0.1.0/24", "192.0.2.3", 65002).is_empty());
    // The full feed keeps the attributes, and reports the same change.
    let mut rib = rib_for(BestPathFeed::Full);
    let (tx, mut rx) = mpsc::channel(8);
    let mut full = Outbox::new(BestPathFeed::Full);
    assert_eq!(learn(&mut rib, "10.0.1.0/24", "192.0.2.3").len(), 1);
    assert_eq!(
        learn_as(&mut rib, "10.0.1.0/24", "192.0.2.3", 65002).len(),
        1
    );
    for c in learn(&mut rib, "10.0.2.0/24", "192.0.2.2") {
        full.push_change(c, &tx);
    }
    assert!(matches!(
        rx.try_recv().unwrap(),
        SpeakerEvent::BestPathChanged {
            attributes: Some(_),
            ..
        }
    ));
}

/// `express` marks the changes that leave from a fresh tail ahead of the
/// pass being delivered (a probe marked during it), and nothing else: not
/// the pass, not a change handed out at once; IPv4 and IPv6.
#[test]
fn a_fresh_tail_leaves_marked_express_and_nothing_else_does() {
    let express = |ev: &SpeakerEvent| match ev {
        SpeakerEvent::BestPathChanged { express, .. } => *express,
        other => panic!("expected a route change, got {other:?}"),
    };
    for probe in ["198.19.0.1/32", "fd13:19::1/128"] {
        let (tx, mut rx) = mpsc::channel(1);
        let mut rib = rib();
        let mut ob = Outbox::default();
        add(&mut rib, &mut ob, &tx, "10.255.0.0/24");
        assert!(!express(&rx.try_recv().unwrap()), "handed out at once");
        let n = 3 * COMPACT_MIN as u32;
        add_24s(&mut rib, &mut ob, &tx, 10, n);
        // The first went straight out; the second starts the pass.
        let mut got = vec![rx.try_recv().unwrap()];
        ob.deliver(tx.try_reserve_many(1).unwrap(), &tx, &rib);
        got.push(rx.try_recv().unwrap());
        add(&mut rib, &mut ob, &tx, probe);
        got.extend(take_all(&mut ob, &tx, &mut rx, &rib));
        assert_eq!(got.len(), n as usize + 1);
        let marked: Vec<Prefix> = got
            .iter()
            .filter(|e| express(e))
            .map(|e| state(e).0)
            .collect();
        assert_eq!(marked, [pfx(probe)], "{probe}");
    }
}
