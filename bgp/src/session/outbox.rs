//! The RIB task's outbox: what the speaker's owner has not taken off the
//! event channel yet, kept compact so that an owner slower than the RIB (the
//! agent programming a million kernel routes) costs a few bytes per changed
//! prefix instead of a queued [`SpeakerEvent`] per change.
//!
//! Data flow: the RIB task hands every best-path change and every other event
//! to [`Outbox`]. While nothing is waiting and the channel has room, events go
//! straight out. Otherwise a best-path change only marks its prefix as
//! changed (8 bytes for IPv4) in the open [`Segment::Changed`] set, and other
//! events (`PeerStateChanged`, `Converged`) queue as ordering barriers behind
//! it. When the channel has room again, [`Outbox::deliver`] reports each
//! marked prefix with its Loc-RIB state *at that moment*
//! ([`Rib::best`](crate::rib::Rib::best)), then the barrier, and so on.
//!
//! Semantics: the owner sees, for every prefix whose best path changed, a
//! `BestPathChanged` carrying the current best path (RFC 4271 §9.1.2: only
//! the latest Loc-RIB state is meaningful to install), before any barrier
//! queued after that change; intermediate states of a prefix that changed
//! again meanwhile are skipped. A state reported before a barrier is never
//! older than the prefix's state when the barrier was queued, so `Converged`
//! still comes after every route learned before it.

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use tokio::sync::mpsc;

use crate::rib::{FullCache, Rib};
use crate::speaker::SpeakerEvent;
use crate::types::{Ipv4Prefix, Prefix};

/// Most events handed to the channel per wake-up, so that UPDATE processing
/// and API calls interleave with delivery.
const DELIVER_PER_WAKE: usize = 1024;
/// Free slots the channel must have before delivery resumes ([`Outbox::chunk`]):
/// the owner and the RIB task then wake each other once per this many events,
/// not once per event (a futex wake-up each when the other thread is parked).
pub(crate) const DELIVER_CHUNK: usize = 256;
/// A change set is sorted and de-duplicated once it has grown to twice its
/// size after the last pass (and at least this long).
const COMPACT_MIN: usize = 4096;

/// Changed prefixes, each reported once (duplicates are dropped by
/// occasional sort passes; one left over only costs a repeated report).
#[derive(Default)]
struct ChangeSet {
    /// IPv4 prefixes as `addr << 8 | len`.
    v4: Vec<u64>,
    v6: Vec<Prefix>,
    /// Length of `v4` / `v6` after their last de-duplication pass.
    clean_v4: usize,
    clean_v6: usize,
}

fn v4_key(p: Ipv4Prefix) -> u64 {
    (u64::from(u32::from(p.addr())) << 8) | u64::from(p.len())
}

fn v4_prefix(key: u64) -> Option<Prefix> {
    let addr = Ipv4Addr::from(u32::try_from(key >> 8).ok()?);
    Ipv4Prefix::new(addr, (key & 0xff) as u8).map(Prefix::V4)
}

fn compact<T: Ord>(v: &mut Vec<T>, clean: &mut usize) {
    if v.len() >= COMPACT_MIN.max(clean.saturating_mul(2)) {
        v.sort_unstable();
        v.dedup();
        *clean = v.len();
    }
}

impl ChangeSet {
    fn insert(&mut self, p: Prefix) {
        match p {
            Prefix::V4(p4) => {
                self.v4.push(v4_key(p4));
                compact(&mut self.v4, &mut self.clean_v4);
            }
            Prefix::V6(_) => {
                self.v6.push(p);
                compact(&mut self.v6, &mut self.clean_v6);
            }
        }
    }

    fn pop(&mut self) -> Option<Prefix> {
        while let Some(k) = self.v4.pop() {
            self.clean_v4 = self.clean_v4.min(self.v4.len());
            // Keys are made from valid prefixes; skip one that is not.
            if let Some(p) = v4_prefix(k) {
                return Some(p);
            }
        }
        let p = self.v6.pop();
        self.clean_v6 = self.clean_v6.min(self.v6.len());
        p
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

enum Segment {
    /// Prefixes whose best path changed, reported with their state at delivery.
    Changed(ChangeSet),
    /// Any other event: an ordering barrier.
    Event(SpeakerEvent),
}

/// See the module doc.
#[derive(Default)]
pub(crate) struct Outbox {
    /// Oldest first; only the last one takes new changes.
    segments: VecDeque<Segment>,
    /// The owner dropped its receiver: nothing is kept any more.
    closed: bool,
    /// Attribute sets converted for delivery, shared by the prefixes using them.
    full: FullCache,
}

impl Outbox {
    pub(crate) fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Changed prefixes and events waiting (duplicates not yet dropped
    /// included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Changed(c) => c.len(),
                Segment::Event(_) => 1,
            })
            .sum()
    }

    /// Hands `ev` out now when nothing waits before it and the channel has
    /// room; keeps it (compactly, for a best-path change) otherwise.
    pub(crate) fn push(&mut self, ev: SpeakerEvent, tx: &mpsc::Sender<SpeakerEvent>) {
        if self.closed {
            return;
        }
        let ev = if self.segments.is_empty() {
            match tx.try_send(ev) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(ev)) => ev,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.closed = true;
                    return;
                }
            }
        } else {
            ev
        };
        match ev {
            SpeakerEvent::BestPathChanged { prefix, .. } => {
                if !matches!(self.segments.back(), Some(Segment::Changed(_))) {
                    self.segments
                        .push_back(Segment::Changed(ChangeSet::default()));
                }
                if let Some(Segment::Changed(c)) = self.segments.back_mut() {
                    c.insert(prefix);
                }
            }
            other => self.segments.push_back(Segment::Event(other)),
        }
    }

    /// How many free slots to wait for before [`Self::deliver`]: a chunk,
    /// or the whole channel if it is smaller.
    pub(crate) fn chunk(tx: &mpsc::Sender<SpeakerEvent>) -> usize {
        DELIVER_CHUNK.min(tx.max_capacity()).max(1)
    }

    /// Fills the channel from the front of the outbox: the slots in `first`
    /// (already reserved), then more while the channel has room, up to
    /// [`DELIVER_PER_WAKE`] events. Changed prefixes are reported with their
    /// current Loc-RIB state.
    pub(crate) fn deliver(
        &mut self,
        first: mpsc::PermitIterator<'_, SpeakerEvent>,
        tx: &mpsc::Sender<SpeakerEvent>,
        rib: &Rib,
    ) {
        let mut sent = 0;
        for permit in first {
            let Some(ev) = self.next(rib) else { return };
            permit.send(ev);
            sent += 1;
        }
        while sent < DELIVER_PER_WAKE {
            let Ok(permit) = tx.try_reserve() else { return };
            let Some(ev) = self.next(rib) else { return };
            permit.send(ev);
            sent += 1;
        }
    }

    /// The owner is gone: forget everything, keep nothing from now on.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        self.segments = VecDeque::new();
    }

    fn next(&mut self, rib: &Rib) -> Option<SpeakerEvent> {
        loop {
            match self.segments.front_mut()? {
                Segment::Changed(c) => match c.pop() {
                    Some(prefix) => return Some(current(rib, prefix, &mut self.full)),
                    None => {
                        self.segments.pop_front();
                    }
                },
                Segment::Event(_) => match self.segments.pop_front() {
                    Some(Segment::Event(ev)) => return Some(ev),
                    _ => return None,
                },
            }
        }
    }
}

/// `prefix`'s Loc-RIB state now, as an event.
fn current(rib: &Rib, prefix: Prefix, full: &mut FullCache) -> SpeakerEvent {
    match rib.best_cached(prefix, full) {
        Some(b) => SpeakerEvent::BestPathChanged {
            prefix,
            next_hops: b.next_hops,
            attributes: b.attributes,
        },
        None => SpeakerEvent::BestPathChanged {
            prefix,
            next_hops: Vec::new(),
            attributes: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    use crate::fsm::SessionState;
    use crate::rib::RibConfig;

    fn pfx(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    /// The event channel's bound in bytes (`session::EVENT_CHANNEL`, "about
    /// 0.7 MB when full") depends on this size.
    #[test]
    fn a_queued_event_is_at_most_80_bytes() {
        assert!(std::mem::size_of::<SpeakerEvent>() <= 80);
    }

    fn rib() -> Rib {
        Rib::new(RibConfig::new(64512, Ipv4Addr::new(192, 0, 2, 1)))
    }

    fn changes(out: crate::rib::RibOutput) -> Vec<SpeakerEvent> {
        out.best_changes
            .into_iter()
            .map(|c| SpeakerEvent::BestPathChanged {
                prefix: c.prefix,
                next_hops: c.next_hops,
                attributes: c.attributes,
            })
            .collect()
    }

    /// Local originations stand in for learned routes: a prefix is either
    /// present (attributes) or gone.
    fn add(rib: &mut Rib, ob: &mut Outbox, tx: &mpsc::Sender<SpeakerEvent>, p: &str) {
        for ev in changes(rib.originate(pfx(p), None)) {
            ob.push(ev, tx);
        }
    }

    fn del(rib: &mut Rib, ob: &mut Outbox, tx: &mpsc::Sender<SpeakerEvent>, p: &str) {
        for ev in changes(rib.withdraw_local(pfx(p))) {
            ob.push(ev, tx);
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
        // with their state now (10.0.1.0/24 is already withdrawn again).
        assert_eq!(
            sorted(&got[1..barrier]),
            vec![(pfx("10.0.0.0/24"), true), (pfx("10.0.1.0/24"), false)]
        );
        assert_eq!(
            sorted(&got[barrier + 1..]),
            vec![(pfx("10.0.1.0/24"), false), (pfx("10.0.2.0/24"), true)]
        );
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

    #[test]
    fn v4_and_v6_keys_round_trip() {
        let all = [
            "10.0.0.0/8",
            "0.0.0.0/0",
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

    #[test]
    fn a_dropped_receiver_keeps_nothing() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let mut ob = Outbox::default();
        ob.push(SpeakerEvent::Converged, &tx);
        ob.push(SpeakerEvent::Converged, &tx);
        assert!(ob.is_empty());
    }
}
