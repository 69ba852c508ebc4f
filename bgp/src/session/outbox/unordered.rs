//! Which prefixes the owner may not have ordered yet: the events handed
//! to the event channel that the owner has not yet taken *and ordered*
//! against its express changes (an outbox with an express channel only,
//! [`super::Outbox::set_express`]).
//!
//! Data flow: the outbox notes the prefix of every event it hands to the
//! event channel ([`Unordered::note`], `None` for an event that is not a
//! route change); the owner adds to a shared counter the number of events
//! it took from that channel once they are ordered
//! ([`crate::ExpressEvents::ordered`]). The difference is what may still
//! be in the channel or taken but not yet ordered, the newest of the ring.
//! Counting only what is in the channel is not enough: the owner may have
//! taken an event (so the channel looks empty) and not yet ordered it
//! while an express change of its prefix leaves — it would then be
//! ordered before the older event.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::types::Prefix;

/// The prefixes of the last events handed to the event channel, and how
/// many of them the owner has ordered.
#[derive(Default)]
pub(super) struct Unordered {
    /// `None` for an event that is not a route change; empty until the
    /// owner asks for an express channel.
    ring: Vec<Option<Prefix>>,
    /// Where the next one goes.
    next: usize,
    /// Events handed to the event channel, all told (from its first, as
    /// the owner counts them).
    noted: u64,
    /// `noted` when the ring began: older events' prefixes are unknown.
    known_from: u64,
    /// Events the owner has taken and ordered, all told (its side).
    ordered: Arc<AtomicU64>,
}

impl Unordered {
    /// Keeps the prefixes from now on, in a ring for an event channel of
    /// `capacity`, with `ordered` the owner's counter: as much again as
    /// the channel holds is what the owner may have taken and not yet
    /// ordered (it takes at most a channel's worth at once).
    pub(super) fn start(&mut self, capacity: usize, ordered: Arc<AtomicU64>) {
        self.ring = vec![None; 2 * capacity.max(1)];
        self.next = 0;
        self.known_from = self.noted;
        self.ordered = ordered;
    }

    /// An event handed to the event channel (every one, from the first).
    pub(super) fn note(&mut self, p: Option<Prefix>) {
        self.noted += 1;
        if let Some(slot) = self.ring.get_mut(self.next) {
            *slot = p;
            // Wrapped by a compare, not a division: once per event handed out.
            self.next += 1;
            if self.next == self.ring.len() {
                self.next = 0;
            }
        }
    }

    /// Whether an event of `p` may be one the owner has not ordered yet
    /// (also when more are unordered than the ring remembers, or some
    /// came before it began).
    pub(super) fn may_hold(&self, p: Prefix) -> bool {
        let n = self.ring.len();
        let ordered = self.ordered.load(Ordering::Acquire);
        if ordered < self.known_from {
            return true;
        }
        let pending = self.noted.saturating_sub(ordered);
        let Ok(pending) = usize::try_from(pending) else {
            return true;
        };
        if pending > n {
            return true;
        }
        (1..=pending).any(|i| self.ring[(self.next + n - i) % n] == Some(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pfx(s: &str) -> Prefix {
        s.parse().expect("prefix")
    }

    /// An event taken from the channel but not yet ordered by the owner is
    /// still held; once ordered it is not; more unordered than the ring
    /// remembers, or any from before the ring began, holds everything.
    #[test]
    fn a_taken_event_is_held_until_the_owner_ordered_it() {
        let ordered = Arc::new(AtomicU64::new(0));
        let mut u = Unordered::default();
        // One event before the ring began: unknown until ordered.
        u.note(None);
        u.start(2, ordered.clone());
        assert!(u.may_hold(pfx("10.9.0.0/24")), "an event before the ring");
        ordered.fetch_add(1, Ordering::Release);
        assert!(!u.may_hold(pfx("10.9.0.0/24")));
        let (a, b) = (pfx("10.0.0.0/24"), pfx("10.0.1.0/24"));
        u.note(Some(a));
        u.note(None);
        u.note(Some(b));
        assert!(u.may_hold(a) && u.may_hold(b));
        ordered.fetch_add(1, Ordering::Release);
        assert!(!u.may_hold(a), "the owner ordered a");
        assert!(u.may_hold(b));
        ordered.fetch_add(2, Ordering::Release);
        assert!(!u.may_hold(b));
        for _ in 0..5 {
            u.note(None);
        }
        assert!(
            u.may_hold(pfx("192.0.2.0/24")),
            "more than the ring: unknown"
        );
    }
}
