//! Tests of the outbox's express channel ([`super::super::Outbox::set_express`]).

use super::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// With an express channel set, a change made while the RIB task is quiet
/// and a backlog's pass is delivered leaves there at once, in its state as
/// made, `express` set; it is marked as before (and leaves through the
/// event channel) when an event of its prefix may still be in the event
/// channel, when the express channel is full, or when the RIB task has
/// more queued.
#[test]
fn a_quiet_change_behind_a_backlog_takes_the_express_channel() {
    let (tx, mut rx) = mpsc::channel(4);
    let (etx, mut erx) = mpsc::channel(1);
    let mut rib = rib();
    let mut ob = Outbox::default();
    ob.set_express(etx, Arc::new(AtomicU64::new(0)), &tx);
    let n = 3 * COMPACT_MIN as u32;
    // 10.0.0.0/24 … 10.0.3.0/24 go straight out; the rest wait.
    add_24s(&mut rib, &mut ob, &tx, 10, n);
    assert!(erx.try_recv().is_err(), "a busy RIB's changes stay marked");
    let mut got = vec![rx.try_recv().unwrap()];
    // The pass begins; 10.0.1.0/24 … 10.0.3.0/24 are still in the channel.
    ob.deliver(tx.try_reserve_many(1).unwrap(), &tx, &rib);
    ob.quiet = true;
    del(&mut rib, &mut ob, &tx, "10.0.2.0/24");
    assert!(
        erx.try_recv().is_err(),
        "its older event may be in the channel"
    );
    add(&mut rib, &mut ob, &tx, "198.19.0.1/32");
    add(&mut rib, &mut ob, &tx, "198.19.0.2/32");
    ob.quiet = false;
    add(&mut rib, &mut ob, &tx, "198.19.0.3/32");
    let ev = erx.try_recv().expect("the first quiet change went express");
    assert_eq!(state(&ev), (pfx("198.19.0.1/32"), true));
    assert!(matches!(
        ev,
        SpeakerEvent::BestPathChanged { express: true, .. }
    ));
    assert!(erx.try_recv().is_err(), "the express channel was full");
    got.extend(take_all(&mut ob, &tx, &mut rx, &rib));
    let probes: Vec<_> = got
        .iter()
        .map(state)
        .filter(|(p, _)| p.len() == 32)
        .map(|(p, _)| p)
        .collect();
    let mut probes = probes;
    probes.sort_unstable();
    assert_eq!(probes, [pfx("198.19.0.2/32"), pfx("198.19.0.3/32")]);
    // Every /24 once, 10.0.2.0/24 gone too, and two of the probes.
    assert!(got.iter().any(|e| state(e) == (pfx("10.0.2.0/24"), false)));
    assert_eq!(got.len(), n as usize + 3);
}

/// At most [`EXPRESS_PER_DELIVERY`] changes take the express channel
/// between two deliveries; the rest are marked (a bulk load's own changes
/// made while the RIB task is idle must not make a second bulk path).
#[test]
fn the_express_channel_takes_a_few_changes_per_delivery() {
    let (tx, mut rx) = mpsc::channel(4);
    let (etx, mut erx) = mpsc::channel(EXPRESS_CHANNEL);
    let mut rib = rib();
    let mut ob = Outbox::default();
    ob.set_express(etx, Arc::new(AtomicU64::new(0)), &tx);
    add_24s(&mut rib, &mut ob, &tx, 10, 3 * COMPACT_MIN as u32);
    rx.try_recv().unwrap();
    ob.deliver(tx.try_reserve_many(1).unwrap(), &tx, &rib);
    let express =
        |erx: &mut mpsc::Receiver<SpeakerEvent>| std::iter::from_fn(|| erx.try_recv().ok()).count();
    ob.quiet = true;
    for i in 1..=6 {
        add(&mut rib, &mut ob, &tx, &format!("198.19.0.{i}/32"));
    }
    assert_eq!(express(&mut erx), usize::from(EXPRESS_PER_DELIVERY));
    rx.try_recv().unwrap();
    ob.deliver(tx.try_reserve_many(1).unwrap(), &tx, &rib);
    add(&mut rib, &mut ob, &tx, "198.19.1.1/32");
    assert_eq!(express(&mut erx), 1, "a delivery renews the budget");
}

/// An event the owner took from the event channel but has not ordered yet
/// (it converts a batch on another thread) still keeps a change of its
/// prefix off the express channel: counting only what the channel holds,
/// the change would overtake the older event and be undone by it.
#[test]
fn a_taken_but_unordered_event_keeps_its_prefix_off_the_express_channel() {
    let (tx, mut rx) = mpsc::channel(4);
    let (etx, mut erx) = mpsc::channel(EXPRESS_CHANNEL);
    let ordered = Arc::new(AtomicU64::new(0));
    let mut rib = rib();
    let mut ob = Outbox::default();
    ob.set_express(etx, ordered.clone(), &tx);
    add_24s(&mut rib, &mut ob, &tx, 10, 3 * COMPACT_MIN as u32);
    // The owner takes the four events sent straight out (10.0.0.0/24 …
    // 10.0.3.0/24): the channel is empty, none of them ordered yet.
    let taken = std::iter::from_fn(|| rx.try_recv().ok()).count();
    assert_eq!(taken, 4);
    ob.deliver(tx.try_reserve_many(1).unwrap(), &tx, &rib);
    ob.quiet = true;
    del(&mut rib, &mut ob, &tx, "10.0.1.0/24");
    assert!(
        erx.try_recv().is_err(),
        "its older event is not ordered yet"
    );
    ordered.fetch_add(taken as u64, Ordering::Release);
    del(&mut rib, &mut ob, &tx, "10.0.2.0/24");
    let ev = erx.try_recv().expect("ordered: the change goes express");
    assert_eq!(state(&ev), (pfx("10.0.2.0/24"), false));
}

/// The `express` mark and the express channel read one rule
/// ([`ChangeSet::takes_express`]): a prefix marked while the set being
/// delivered has long fresh tails (here an IPv6 one, and a short IPv4 one)
/// does not leave marked, and nothing leaves marked that was marked while
/// the rule did not hold — the IPv4 tail alone being short is not enough.
#[test]
fn a_prefix_marked_while_the_fresh_tail_is_long_leaves_unmarked() {
    let (tx, mut rx) = mpsc::channel(4);
    let mut rib = rib();
    let mut ob = Outbox::default();
    // 10.0.0.0/24 … 10.0.3.0/24 go straight out, four wait; the pass begins.
    add_24s(&mut rib, &mut ob, &tx, 10, 8);
    let mut got = vec![rx.try_recv().unwrap()];
    ob.deliver(tx.try_reserve_many(1).unwrap(), &tx, &rib);
    let rule = |ob: &Outbox| match ob.segments.front() {
        Some(Segment::Changed(c)) => c.takes_express(),
        _ => false,
    };
    let mut ruled = Vec::new();
    let mut mark = |ob: &mut Outbox, rib: &mut Rib, p: String| {
        ruled.push((pfx(&p), rule(ob)));
        add(rib, ob, &tx, &p);
    };
    for i in 1..=10 {
        mark(&mut ob, &mut rib, format!("198.19.0.{i}/32"));
    }
    for i in 0..COMPACT_MIN - 5 {
        mark(&mut ob, &mut rib, format!("2001:db8:{i:x}::/48"));
    }
    assert!(!rule(&ob), "the fresh tails are long");
    let late = pfx("198.19.1.1/32");
    mark(&mut ob, &mut rib, late.to_string());
    got.extend(take_all(&mut ob, &tx, &mut rx, &rib));
    let marked =
        |ev: &SpeakerEvent| matches!(ev, SpeakerEvent::BestPathChanged { express: true, .. });
    let late_ev = got.iter().find(|e| state(e).0 == late).expect("delivered");
    assert!(!marked(late_ev), "marked with the tail long");
    for ev in &got {
        let p = state(ev).0;
        let held = ruled.iter().find(|(q, _)| *q == p).is_some_and(|r| r.1);
        assert!(
            !marked(ev) || held,
            "{p} left marked, the rule did not hold"
        );
    }
    assert_eq!(got.len(), 8 + 10 + COMPACT_MIN - 5 + 1);
}
