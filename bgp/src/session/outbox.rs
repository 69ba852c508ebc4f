//! The RIB task's outbox: the one place between the speaker and the kernel
//! where route changes are coalesced (last state per prefix wins), kept
//! compact so that an owner slower than the RIB (the agent programming a
//! million kernel routes) costs a few bytes per changed prefix instead of a
//! queued [`SpeakerEvent`] per change. The owner takes events at its own
//! pace (the agent: when the route table has taken the previous batch), the
//! way BIRD feeds its kernel protocol from the table's latest state; nothing
//! after this point de-duplicates or re-orders changes.
//!
//! Data flow: the RIB task hands every best-path change
//! ([`Outbox::push_change`]) and every other event ([`Outbox::push`]) to
//! [`Outbox`]. A change's next hops are interned here ([`NextHopSets`], the
//! one interner of next-hop sets on the speaker side), so every change with
//! the same ECMP set carries the same [`NextHops`] allocation. While nothing
//! is waiting and the channel has room, events go straight out. Otherwise a
//! best-path change only marks its prefix as changed (8 bytes for IPv4, 9
//! for IPv6 up to /64, 17 for a longer one; no event is made) in the open
//! [`Segment::Changed`] set, and other events (`PeerStateChanged`,
//! `Converged`) queue as ordering barriers behind it. When the channel has
//! room again, [`Outbox::deliver`] reports each marked prefix with its
//! Loc-RIB state *at that moment* ([`Rib::best`](crate::rib::Rib::best)),
//! then the barrier, and so on. While a backlog waits and the RIB task has
//! messages queued (a bulk load still arriving), delivery waits too, for
//! at most [`HOLD_MAX`] ([`Outbox::hold`]), so the backlog leaves in one
//! order for the kernel (see [`ChangeSet`]); a change made while nothing
//! waits still goes straight out.
//!
//! Semantics: the owner sees, for every prefix whose best path changed, a
//! `BestPathChanged` carrying the current best path (RFC 4271 §9.1.2: only
//! the latest Loc-RIB state is meaningful to install), before any barrier
//! queued after that change; intermediate states of a prefix that changed
//! again meanwhile are skipped. A state reported before a barrier is never
//! older than the prefix's state when the barrier was queued, so `Converged`
//! still comes after every route learned before it. A change made behind
//! a barrier may be reported before it: while the first change set (the
//! pass being delivered) has fewer than [`COMPACT_MIN`] prefixes marked
//! since its last sort — they leave last in, first out, ahead of the
//! sorted rest — a new change joins it rather than waiting behind the
//! barrier for the whole pass (a bulk load's End-of-RIB queues `Converged`
//! behind its backlog; a new /32 from another peer then waited for the
//! rest of a 1M pass, seconds, session 15 loadlat lane). With more there,
//! it waits behind the barrier, so a stream of changes cannot put a
//! barrier off for ever. Those fresh tails leave before the sorted pass
//! in either family: an IPv4 one first, then a short IPv6 one ahead of the
//! sorted IPv4 rest (an IPv6 change made during a 1M IPv4 pass otherwise
//! waited for all of it, 4–11 s; session 16 loadlat6 lane).
//! A change that leaves from such a tail — marked after the pass began
//! while the tail was short ([`ChangeSet::takes_express`], the one reading
//! of the rule, which the express channel below asks too), not yet sorted
//! into it — is reported with `express` set (the owner may
//! let it overtake what it received before; docs/design.md, "Express
//! changes"); the pass's own changes and those handed out at once are not.
//!
//! The express channel ([`Outbox::set_express`], the owner's second, small
//! channel, which it polls ahead of the first): a change that would leave
//! marked `express` — made while the RIB task had nothing else queued,
//! the first change set's pass begun and its fresh tail short, at most
//! [`EXPRESS_PER_DELIVERY`] between two deliveries — is handed out there
//! at once, with its state as made, instead of waiting for room
//! in the event channel behind a channel's worth of the backlog, unless an
//! event of its prefix may not have been ordered by the owner yet
//! ([`Unordered`]: still in that channel, or taken and not yet ordered —
//! the owner counts what it ordered, [`crate::ExpressEvents::ordered`]) or the
//! express channel is full; then it is marked as above. Order holds: the
//! events of the prefix handed out before it have been taken from the
//! event channel (the owner orders what it took against this one: the
//! agent by its batches' order, docs/design.md, "Express changes"), a
//! mark of the prefix still in the outbox leaves later with a state at
//! least as new, and every event handed out after it goes through the
//! event channel, which the owner takes only after the express channel.
//!
//! Why a second Loc-RIB lookup at delivery rather than keeping each marked
//! prefix's state: the state would cost a next-hop handle and an attribute
//! handle per prefix (24 more bytes for IPv4) for a backlog that reaches the
//! whole table in a bulk load; the lookup is one probe of the table the RIB
//! task owns (docs/design.md §2, "Speaker to kernel").

use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::rib::{BestPathChange, BestPathFeed, FullCache, Rib};
use crate::speaker::{NextHops, SpeakerEvent};
use crate::types::{Ipv4Prefix, Ipv6Prefix, Ipv6Short, Prefix};
use unordered::Unordered;

/// Most events handed to the channel per wake-up, so that UPDATE processing
/// and API calls interleave with delivery.
const DELIVER_PER_WAKE: usize = 1024;
/// Free slots the channel must have before delivery resumes ([`Outbox::chunk`]):
/// the owner and the RIB task then wake each other once per this many events,
/// not once per event (a futex wake-up each when the other thread is parked).
pub(crate) const DELIVER_CHUNK: usize = 256;
/// A change set is sorted and de-duplicated once it has grown to twice its
/// size after the last pass (and at least this long); an IPv4 tail this long
/// added since is sorted before it is delivered.
const COMPACT_MIN: usize = 4096;
/// An IPv4 tail (prefixes marked since the last full pass) at least
/// 1 / this of the de-duplicated head is merged with it before delivery
/// goes on, so a bulk load's backlog reaches the kernel in one order, not
/// as stretches each sorted on its own.
const MERGE_SHARE: usize = 8;
/// How long delivery of a backlog waits at most while the RIB task has
/// messages queued ([`Outbox::hold`]).
const HOLD_MAX: Duration = Duration::from_millis(500);
/// A list's capacity under which [`release`] keeps it as it is.
const RELEASE_MIN: usize = 1 << 16;
/// Room of the owner's express channel ([`Outbox::set_express`]): a few
/// changes at a time (the agent takes them as they come).
pub(crate) const EXPRESS_CHANNEL: usize = 16;
/// Most changes handed to the express channel between two deliveries to
/// the event channel: a bulk load's own changes made while the RIB task
/// is idle (a feeder slower than the RIB) would otherwise leave there one
/// by one, a second bulk path.
const EXPRESS_PER_DELIVERY: u8 = 4;

/// The prefix of a route change (what [`Unordered`] notes).
fn changed(ev: &SpeakerEvent) -> Option<Prefix> {
    match ev {
        SpeakerEvent::BestPathChanged { prefix, .. } => Some(*prefix),
        _ => None,
    }
}

/// Changed prefixes, each reported once (duplicates are dropped by
/// occasional sort passes; one left over only costs a repeated report).
/// The lists give their memory back as they drain ([`release`]).
///
/// Delivery order of an IPv4 backlog: the runs of sixteen neighbours (the
/// prefixes of one length differing only in their last four bits, the
/// RIB's hash runs) are visited five times, once per tier of places in
/// bit-reversed order — every run's place 0, then every run's place 8,
/// then 4 and 12, then 2, 6, 10 and 14, then the odd places — each visit
/// going through the runs in bit-reversed order of their address, a run's
/// places of the tier together ([`v4_key`]). The kernel's IPv4 FIB (the
/// LC-trie) resizes least when the upper levels of the trie are filled
/// before any of them gets its neighbours (every inflation of a node
/// splits its full children again): the raw writer alone, 1M /28s on a
/// 2-vCPU EPYC host, median kernel CPU 3.2 s in tiers, 3.5 s fully
/// bit-reversed, 4.5 s in whole runs of sixteen (session 14 bulk lane,
/// lab/bench/README.md). Five visits per run instead of sixteen keep most
/// of the Loc-RIB probes and reconciler slots of a visit on shared cache
/// lines (fully bit-reversed cost the agent 2.6–4.8 % CPU, session 9). The
/// order pays off only as one pass over the backlog: a tail marked since
/// the last de-duplication pass is merged into it once it is a sizeable
/// share ([`MERGE_SHARE`]), and delivery waits while the RIB task is busy
/// ([`Outbox::hold`]), so a bulk load's stretches are not each sorted and
/// delivered on their own (a subtree filled before its neighbour is split
/// again when the neighbour comes). A streamed 1M unique load delivered in
/// arrival (= address) order gained nothing inside the agent (session 11
/// e2e lane). IPv6 prefixes leave in (descending) address order: fib6 takes
/// ascending and descending neighbours alike, only scattered orders cost it
/// more (session 14 v6e2e and session 15 v6order lanes).
#[derive(Default)]
struct ChangeSet {
    /// IPv4 prefixes as [`v4_key`].
    v4: Vec<u64>,
    /// IPv6 prefixes of at most 64 bits, nearly all of them, in 9 bytes
    /// each (the RIB's key for them).
    v6: Vec<Ipv6Short>,
    /// Longer IPv6 prefixes (17 bytes each; a `Prefix` would take 20).
    v6_long: Vec<Ipv6Prefix>,
    /// Length of `v4` / `v6` / `v6_long` after their last de-duplication pass.
    clean_v4: usize,
    clean_v6: usize,
    clean_v6_long: usize,
    /// Length of `v4` sorted in stretches (a de-duplicated head, then tails
    /// sorted before delivery); `clean_v4 <= sorted_v4`.
    sorted_v4: usize,
    /// Once delivery of this set has begun (its pass), the lowest length of
    /// `v4` / `v6` / `v6_long` since (reset to the length when a list is
    /// sorted, or a prefix is marked in it while the fresh tail is long):
    /// a prefix above it was marked during the pass while
    /// [`ChangeSet::takes_express`] held, and leaves marked `express`
    /// ([`ChangeSet::pop_marked`]).
    pass: Option<[usize; 3]>,
}

/// Where an IPv4 prefix's place in its run of sixteen sits in its address
/// (`shift`), and the place; `None` for a prefix shorter than /4 (a run of
/// its own).
fn v4_place(addr: u32, len: u8) -> Option<(u32, u32)> {
    if len < 4 {
        return None;
    }
    let shift = 32u32.checked_sub(u32::from(len))?;
    Some((shift, (addr >> shift) & 0xf))
}

/// A place's tier: which visit of its run takes it. Delivery (descending
/// keys) takes every run's place 0 first (tier 4), then place 8 (3), then
/// 4 and 12 (2), then 2, 6, 10, 14 (1), then the odd places (0): the
/// places in bit-reversed order, those of one tier together.
fn v4_tier(place: u32) -> u32 {
    if place == 0 {
        4
    } else {
        place.trailing_zeros()
    }
}

/// An IPv4 prefix as `tier(place) << 44 | reverse(run address) << 12 |
/// place << 8 | len`: sorted by this key, the runs are visited once per
/// tier, each visit in bit-reversed order of the runs' addresses, the
/// run's prefixes of that tier together (see [`ChangeSet`]). A bijection.
fn v4_key(p: Ipv4Prefix) -> u64 {
    let addr = u32::from(p.addr());
    let (run, place) = match v4_place(addr, p.len()) {
        Some((shift, place)) => (addr & !(0xf << shift), place),
        None => (addr, 0),
    };
    (u64::from(v4_tier(place)) << 44)
        | (u64::from(run.reverse_bits()) << 12)
        | (u64::from(place) << 8)
        | u64::from(p.len())
}

fn v4_prefix(key: u64) -> Option<Prefix> {
    let run = u32::try_from((key >> 12) & 0xffff_ffff)
        .ok()?
        .reverse_bits();
    let len = (key & 0xff) as u8;
    let addr = match v4_place(0, len) {
        Some((shift, _)) => run | ((((key >> 8) & 0xf) as u32) << shift),
        None => run,
    };
    Ipv4Prefix::new(Ipv4Addr::from(addr), len).map(Prefix::V4)
}

/// Sorts (by `key`) and de-duplicates `v` once it has doubled since the
/// last pass (`clean`).
fn compact<T: PartialEq, K: Ord>(v: &mut Vec<T>, clean: &mut usize, key: impl Fn(&T) -> K) {
    if v.len() >= COMPACT_MIN.max(clean.saturating_mul(2)) {
        v.sort_unstable_by_key(key);
        v.dedup();
        *clean = v.len();
    }
}

/// Gives back most of a draining list's memory (a bulk load's backlog
/// drains while the reconciler's slots fill: holding its whole capacity
/// until the last prefix leaves would add it to the peak).
fn release<T>(v: &mut Vec<T>) {
    if v.capacity() >= RELEASE_MIN && v.len() < v.capacity() / 4 {
        v.shrink_to(v.len() * 2);
    }
}

/// Orders [`Ipv6Short`]s as the [`Ipv6Prefix`]es they stand for.
fn short_key(s: &Ipv6Short) -> (u64, u8) {
    (s.hi(), s.len())
}

/// The speaker's one interner of next-hop sets: one [`NextHops`] per
/// distinct set; sets no change in flight or owner holds any more are
/// dropped when the interner has doubled since its last purge.
#[derive(Default)]
pub(crate) struct NextHopSets {
    set: HashSet<NextHops>,
    /// The last set interned: bulk loads repeat the same set.
    last: Option<NextHops>,
    /// Size after the last purge.
    kept: usize,
}

impl NextHopSets {
    /// The shared copy of `hops`.
    pub(crate) fn intern(&mut self, hops: &[IpAddr]) -> NextHops {
        if let Some(last) = &self.last
            && **last == *hops
        {
            return last.clone();
        }
        let shared = match self.set.get(hops) {
            Some(s) => s.clone(),
            None => {
                self.purge();
                let s = NextHops::new(hops);
                self.set.insert(s.clone());
                s
            }
        };
        self.last = Some(shared.clone());
        shared
    }

    fn purge(&mut self) {
        if self.set.len() < 2 * self.kept + 64 {
            return;
        }
        self.last = None;
        self.set.retain(|s| s.shared_count() > 1);
        self.set.shrink_to_fit();
        self.kept = self.set.len();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.set.len()
    }
}

impl ChangeSet {
    /// The one reading of the express rule: a prefix marked now leaves
    /// marked `express`, from a fresh tail ahead of the rest — the set's
    /// pass has begun and its fresh tail is short. [`Outbox::mark`] keeps
    /// the answer for the prefix it marks (what [`Self::pop_marked`]
    /// reports); [`Outbox::express_now`] asks it before a change is marked.
    fn takes_express(&self) -> bool {
        self.pass.is_some() && self.fresh() < COMPACT_MIN
    }

    /// Adds `p` to its list; which list (`v4`, `v6`, `v6_long`). Marked
    /// during the pass it leaves marked `express` unless the list is sorted
    /// first or [`Self::unmarked`] says otherwise ([`Outbox::mark`] does
    /// when [`Self::takes_express`] did not hold). Inlined into both of
    /// `mark`'s calls, as it was before it returned the list (left to the
    /// compiler it became a call per marked change).
    #[inline(always)]
    fn insert(&mut self, p: Prefix) -> usize {
        match p {
            Prefix::V4(p4) => {
                self.v4.push(v4_key(p4));
                compact(&mut self.v4, &mut self.clean_v4, |k| *k);
                if self.clean_v4 == self.v4.len() {
                    self.sorted_v4 = self.clean_v4;
                    self.unmarked(0);
                }
                0
            }
            Prefix::V6(p6) => match p6.short() {
                Some(s) => {
                    self.v6.push(s);
                    compact(&mut self.v6, &mut self.clean_v6, short_key);
                    if self.clean_v6 == self.v6.len() {
                        self.unmarked(1);
                    }
                    1
                }
                None => {
                    self.v6_long.push(p6);
                    compact(&mut self.v6_long, &mut self.clean_v6_long, |p| *p);
                    if self.clean_v6_long == self.v6_long.len() {
                        self.unmarked(2);
                    }
                    2
                }
            },
        }
    }

    #[cfg(test)]
    fn pop(&mut self) -> Option<Prefix> {
        self.pop_marked().map(|(p, _)| p)
    }

    /// The next prefix, and whether it left from a fresh tail (marked while
    /// [`Self::takes_express`] held, and not sorted into the rest since:
    /// [`SpeakerEvent::BestPathChanged`]'s `express`).
    fn pop_marked(&mut self) -> Option<(Prefix, bool)> {
        let popped = self.pop_any();
        let lens = [self.v4.len(), self.v6.len(), self.v6_long.len()];
        let pass = self.pass.get_or_insert(lens);
        for (m, len) in pass.iter_mut().zip(lens) {
            *m = (*m).min(len);
        }
        popped
    }

    /// List `i`'s (`v4`, `v6`, `v6_long`) entries so far leave unmarked,
    /// in the pass's order: the list was sorted whole, or a prefix was
    /// marked in it while the fresh tail was long ([`Outbox::mark`]).
    fn unmarked(&mut self, i: usize) {
        if self.pass.is_none() {
            return;
        }
        let len = [self.v4.len(), self.v6.len(), self.v6_long.len()][i];
        if let Some(pass) = &mut self.pass {
            pass[i] = len;
        }
    }

    /// Whether the last entry of list `i` was marked during the pass.
    fn marked_in_pass(&self, i: usize, len: usize) -> bool {
        self.pass.is_some_and(|m| len > m[i])
    }

    fn pop_any(&mut self) -> Option<(Prefix, bool)> {
        // A long tail that came after the last pass leaves in the kernel's
        // order too: merged with the rest into one order once it is a
        // sizeable share of the backlog (the end of a bulk load: one pass
        // over everything left, [`MERGE_SHARE`]), else sorted on its own.
        let fresh = self.v4.len() - self.sorted_v4;
        if fresh >= COMPACT_MIN {
            if (self.v4.len() - self.clean_v4).saturating_mul(MERGE_SHARE) >= self.clean_v4 {
                // Stable sort: the sorted stretches are runs it merges.
                self.v4.sort();
                self.v4.dedup();
                self.clean_v4 = self.v4.len();
            } else {
                self.v4[self.sorted_v4..].sort_unstable();
            }
            self.sorted_v4 = self.v4.len();
            self.unmarked(0);
        }
        // Fresh tails first: IPv4's (below, last in, first out), then a
        // short IPv6 tail marked since its last de-duplication pass (a
        // change made while an IPv4 pass is delivered) ahead of the sorted
        // IPv4 rest rather than after all of it; the families' FIBs are
        // apart, so neither order is broken (session 16 loadlat6 lane).
        if self.sorted_v4 == self.v4.len()
            && !self.v4.is_empty()
            && (1..COMPACT_MIN).contains(&self.fresh_v6())
        {
            return self.pop_v6(true);
        }
        loop {
            let fresh = self.marked_in_pass(0, self.v4.len());
            let Some(k) = self.v4.pop() else { break };
            release(&mut self.v4);
            self.clean_v4 = self.clean_v4.min(self.v4.len());
            self.sorted_v4 = self.sorted_v4.min(self.v4.len());
            // Keys are made from valid prefixes; skip one that is not.
            if let Some(p) = v4_prefix(k) {
                return Some((p, fresh));
            }
        }
        self.pop_v6(false)
    }

    /// The next IPv6 prefix: with `fresh`, from a list with a tail marked
    /// since its last pass (last in, first out); else the larger of the two
    /// lists' last — sorted heads leave in descending address order,
    /// whichever form they are kept in.
    fn pop_v6(&mut self, fresh: bool) -> Option<(Prefix, bool)> {
        let short = self.v6.last().map(|s| Ipv6Prefix::from(*s));
        let from_short = if fresh {
            self.v6.len() > self.clean_v6
        } else {
            match (short, self.v6_long.last()) {
                (Some(s), Some(l)) => *l < s,
                (Some(_), None) => true,
                (None, _) => false,
            }
        };
        let (p, marked) = if from_short {
            let marked = self.marked_in_pass(1, self.v6.len());
            (self.v6.pop().map(Ipv6Prefix::from), marked)
        } else {
            let marked = self.marked_in_pass(2, self.v6_long.len());
            (self.v6_long.pop(), marked)
        };
        release(&mut self.v6);
        release(&mut self.v6_long);
        self.clean_v6 = self.clean_v6.min(self.v6.len());
        self.clean_v6_long = self.clean_v6_long.min(self.v6_long.len());
        p.map(|p| (Prefix::V6(p), marked))
    }

    /// Prefixes marked since the last sort (IPv4) or de-duplication pass
    /// (IPv6): they leave last in, first out, ahead of the sorted rest
    /// (a family's, and an IPv6 tail ahead of IPv4's too), while there are
    /// fewer than [`COMPACT_MIN`] of them ([`Self::pop_marked`]).
    fn fresh(&self) -> usize {
        self.v4.len().saturating_sub(self.sorted_v4) + self.fresh_v6()
    }

    fn fresh_v6(&self) -> usize {
        self.v6.len().saturating_sub(self.clean_v6)
            + self.v6_long.len().saturating_sub(self.clean_v6_long)
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty() && self.v6_long.is_empty()
    }

    fn len(&self) -> usize {
        self.v4.len() + self.v6.len() + self.v6_long.len()
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
    sets: NextHopSets,
    /// The feed this outbox delivers (the RIB task's, one setting for the
    /// whole path): with any but [`BestPathFeed::Full`], events carry no
    /// attributes and a waiting change is reported from the Loc-RIB's next
    /// hops alone.
    feed: BestPathFeed,
    /// Since when delivery has waited for the RIB task's queued messages.
    held_since: Option<Instant>,
    /// The owner's express channel, once it asked for one.
    express: Option<mpsc::Sender<SpeakerEvent>>,
    /// What the owner may not have ordered yet (prefixes kept while
    /// `express` is set; every event counted).
    unordered: Unordered,
    /// The RIB task has no other message queued (set before each one it
    /// handles): a change made now may take the express channel.
    pub(crate) quiet: bool,
    /// Express changes handed out since the last delivery.
    express_sent: u8,
}

impl Outbox {
    /// An outbox for `feed`'s events (it gets none when the feed is off).
    pub(crate) fn new(feed: BestPathFeed) -> Outbox {
        Outbox {
            feed,
            ..Outbox::default()
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Changed prefixes and events waiting (duplicates not yet dropped
    /// included); a walk over the segments (tests, the probe trace).
    pub(crate) fn len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Changed(c) => c.len(),
                Segment::Event(_) => 1,
            })
            .sum()
    }

    /// A RIB best-path change as an event (its next hops interned), handed
    /// out or kept as [`Self::push`] does.
    pub(crate) fn push_change(&mut self, c: BestPathChange, tx: &mpsc::Sender<SpeakerEvent>) {
        if !self.segments.is_empty() {
            if self.express_now(&c) {
                return;
            }
            // Waits behind others: only the prefix is kept (no event made).
            self.mark(c.prefix);
            return;
        }
        let ev = SpeakerEvent::BestPathChanged {
            prefix: c.prefix,
            next_hops: self.sets.intern(&c.next_hops),
            attributes: c.attributes,
            express: false,
        };
        self.push(ev, tx);
    }

    /// Hands `ev` out now when nothing waits before it and the channel has
    /// room; keeps it (compactly, for a best-path change) otherwise.
    pub(crate) fn push(&mut self, ev: SpeakerEvent, tx: &mpsc::Sender<SpeakerEvent>) {
        if self.closed {
            return;
        }
        let ev = if self.segments.is_empty() {
            let p = changed(&ev);
            match tx.try_send(ev) {
                Ok(()) => {
                    self.unordered.note(p);
                    return;
                }
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
            SpeakerEvent::BestPathChanged { prefix, .. } => self.mark(prefix),
            other => self.segments.push_back(Segment::Event(other)),
        }
    }

    /// The owner's express channel (see the module doc); from now on the
    /// prefixes handed to `tx` (the event channel) are noted, and
    /// `ordered` counts those the owner has taken and ordered.
    pub(crate) fn set_express(
        &mut self,
        express: mpsc::Sender<SpeakerEvent>,
        ordered: Arc<AtomicU64>,
        tx: &mpsc::Sender<SpeakerEvent>,
    ) {
        self.express = Some(express);
        self.unordered.start(tx.max_capacity(), ordered);
    }

    /// Hands `c` to the express channel if it would leave marked `express`
    /// and nothing older of its prefix may be unordered by the owner.
    fn express_now(&mut self, c: &BestPathChange) -> bool {
        let Some(express) = &self.express else {
            return false;
        };
        if !self.quiet || self.closed || self.express_sent >= EXPRESS_PER_DELIVERY {
            return false;
        }
        let first = self.segments.iter().find_map(|s| match s {
            Segment::Changed(c) => Some(c),
            Segment::Event(_) => None,
        });
        if !first.is_some_and(ChangeSet::takes_express) {
            return false;
        }
        if self.unordered.may_hold(c.prefix) {
            return false;
        }
        let Ok(permit) = express.try_reserve() else {
            // Full (it then waits as a mark) or closed.
            if express.is_closed() {
                self.express = None;
            }
            return false;
        };
        let ev = SpeakerEvent::BestPathChanged {
            prefix: c.prefix,
            next_hops: self.sets.intern(&c.next_hops),
            attributes: c.attributes.clone(),
            express: true,
        };
        if crate::probe_traced(c.prefix) {
            tracing::trace!(target: crate::PROBE_TRACE, prefix = %c.prefix, "outbox: change out, express channel");
        }
        permit.send(ev);
        self.express_sent += 1;
        true
    }

    /// Marks `prefix` as changed in the open change set.
    fn mark(&mut self, prefix: Prefix) {
        if self.closed {
            return;
        }
        // Ahead of the barriers: into the first change set, the pass being
        // delivered, while its unsorted tail is short (see the module doc).
        let first = self.segments.iter_mut().find_map(|s| match s {
            Segment::Changed(c) => Some(c),
            Segment::Event(_) => None,
        });
        // Its tail short, [`ChangeSet::takes_express`] holds there once the
        // pass has begun: the prefix leaves marked.
        if let Some(c) = first
            && c.fresh() < COMPACT_MIN
        {
            c.insert(prefix);
            return;
        }
        if !matches!(self.segments.back(), Some(Segment::Changed(_))) {
            self.segments
                .push_back(Segment::Changed(ChangeSet::default()));
        }
        if let Some(Segment::Changed(c)) = self.segments.back_mut() {
            // The first set itself when nothing follows it, its tail long:
            // marked now, the prefix leaves in the pass's order, not ahead
            // (nor does its list's tail before it).
            let express = c.takes_express();
            let list = c.insert(prefix);
            if !express {
                c.unmarked(list);
            }
        }
    }

    /// Whether delivery of the backlog waits because the RIB task has
    /// messages queued (`busy`): a bulk load's backlog then leaves in one
    /// order once the RIB is done with it, instead of part by part while
    /// it is still growing; at most [`HOLD_MAX`] per busy stretch.
    pub(crate) fn hold(&mut self, busy: bool, now: Instant) -> bool {
        if !busy {
            self.held_since = None;
            return false;
        }
        let since = *self.held_since.get_or_insert(now);
        now.saturating_duration_since(since) < HOLD_MAX
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
        self.express_sent = 0;
        let traced = tracing::enabled!(target: crate::PROBE_TRACE, tracing::Level::TRACE);
        for permit in first {
            let Some(ev) = self.next(rib) else { return };
            if traced {
                trace_out(&ev, tx);
            }
            self.unordered.note(changed(&ev));
            permit.send(ev);
            sent += 1;
        }
        while sent < DELIVER_PER_WAKE {
            let Ok(permit) = tx.try_reserve() else { return };
            let Some(ev) = self.next(rib) else { return };
            if traced {
                trace_out(&ev, tx);
            }
            self.unordered.note(changed(&ev));
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
                Segment::Changed(c) => match c.pop_marked() {
                    Some((prefix, express)) => {
                        let full = (self.feed == BestPathFeed::Full).then_some(&mut self.full);
                        return Some(current(rib, prefix, express, full, &mut self.sets));
                    }
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

/// The probe trace's step out of the outbox ([`crate::PROBE_TRACE`]): the
/// events already in the channel ahead of `ev` (its own slot reserved).
fn trace_out(ev: &SpeakerEvent, tx: &mpsc::Sender<SpeakerEvent>) {
    if let SpeakerEvent::BestPathChanged { prefix, .. } = ev
        && crate::probe_traced(*prefix)
    {
        let ahead = tx.max_capacity() - tx.capacity();
        tracing::trace!(target: crate::PROBE_TRACE, prefix = %prefix, channel = ahead, "outbox: change out");
    }
}

/// `prefix`'s Loc-RIB state now, as an event: with its best path's
/// attributes converted through `full`, or (None: the owner reads next
/// hops only) from the next hops alone.
fn current(
    rib: &Rib,
    prefix: Prefix,
    express: bool,
    full: Option<&mut FullCache>,
    sets: &mut NextHopSets,
) -> SpeakerEvent {
    let (hops, attributes) = match full {
        Some(cache) => match rib.best_cached(prefix, cache) {
            Some(b) => (b.next_hops, b.attributes),
            None => (Default::default(), None),
        },
        None => (rib.best_next_hops(prefix).unwrap_or_default(), None),
    };
    SpeakerEvent::BestPathChanged {
        prefix,
        next_hops: sets.intern(&hops),
        attributes,
        express,
    }
}

mod unordered;

#[cfg(test)]
mod tests;
