//! Outbound coalescing (the "few-ms window" of MRAI 0): small RIB outputs for
//! one peer are merged for a short window so that a burst of single-prefix
//! changes (containers starting, a peer's one-prefix-per-UPDATE feed) leaves
//! as a few UPDATEs packed per attribute set, not one message per prefix.
//!
//! Merging keeps the Adj-RIB-Out semantics: per prefix the last change wins
//! (announce then withdraw within a window sends just the withdrawal), and
//! End-of-RIB markers stay behind every prefix queued before them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::types::{AddressFamily, PathAttributes, Prefix};
use crate::wire::Update;

/// How long small changes wait for company.
pub(crate) const WINDOW: Duration = Duration::from_millis(2);
/// A batch at least this large is already packed: send it as it is.
pub(crate) const DIRECT: usize = 512;
/// Flush early once this many prefixes are pending.
const MAX_PENDING: usize = 16_384;

#[derive(Default)]
pub(crate) struct Coalescer {
    /// Prefix → index into `changes` (last write wins, first position kept).
    index: HashMap<Prefix, usize>,
    changes: Vec<(Prefix, Option<Arc<PathAttributes>>)>,
    eor: Vec<AddressFamily>,
    deadline: Option<Instant>,
}

/// Prefixes an output batch touches.
pub(crate) fn batch_size(updates: &[Update]) -> usize {
    updates
        .iter()
        .map(|u| u.withdrawn.len() + u.announced.len())
        .sum()
}

impl Coalescer {
    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.eor.is_empty()
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    pub(crate) fn due(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| d <= now) || self.changes.len() >= MAX_PENDING
    }

    pub(crate) fn clear(&mut self) {
        *self = Coalescer::default();
    }

    pub(crate) fn add(&mut self, updates: Vec<Update>) {
        if self.deadline.is_none() {
            self.deadline = Some(Instant::now() + WINDOW);
        }
        for u in updates {
            for p in u.withdrawn {
                self.set(p, None);
            }
            for p in u.announced {
                self.set(p, u.attributes.clone());
            }
            if let Some(f) = u.end_of_rib
                && !self.eor.contains(&f)
            {
                self.eor.push(f);
            }
        }
    }

    fn set(&mut self, p: Prefix, a: Option<Arc<PathAttributes>>) {
        match self.index.get(&p) {
            Some(&i) => {
                if let Some(slot) = self.changes.get_mut(i) {
                    slot.1 = a;
                }
            }
            None => {
                self.index.insert(p, self.changes.len());
                self.changes.push((p, a));
            }
        }
    }

    /// The pending changes as UPDATEs: withdrawals, one per attribute set
    /// (in first-seen order), then End-of-RIB markers. Empties the coalescer.
    pub(crate) fn take(&mut self) -> Vec<Update> {
        let mut withdrawn = Vec::new();
        let mut groups: Vec<(Arc<PathAttributes>, Vec<Prefix>)> = Vec::new();
        // Equal sets are normally one interned Arc; compare by value only once
        // per distinct pointer in case they are not.
        let mut by_ptr: HashMap<*const PathAttributes, usize> = HashMap::new();
        let mut by_value: HashMap<Arc<PathAttributes>, usize> = HashMap::new();
        for (p, a) in self.changes.drain(..) {
            let Some(a) = a else {
                withdrawn.push(p);
                continue;
            };
            let key = Arc::as_ptr(&a);
            let i = match by_ptr.get(&key) {
                Some(&i) => i,
                None => {
                    let i = *by_value.entry(a.clone()).or_insert_with(|| {
                        groups.push((a.clone(), Vec::new()));
                        groups.len() - 1
                    });
                    by_ptr.insert(key, i);
                    i
                }
            };
            if let Some(g) = groups.get_mut(i) {
                g.1.push(p);
            }
        }
        let mut out = Vec::with_capacity(groups.len() + 2);
        if !withdrawn.is_empty() {
            out.push(Update {
                withdrawn: withdrawn.into(),
                ..Update::default()
            });
        }
        for (a, announced) in groups {
            out.push(Update {
                attributes: Some(a),
                announced: announced.into(),
                ..Update::default()
            });
        }
        for f in self.eor.drain(..) {
            out.push(Update {
                end_of_rib: Some(f),
                ..Update::default()
            });
        }
        self.index.clear();
        self.deadline = None;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn last_change_wins_and_sets_are_packed() {
        let a1 = Arc::new(PathAttributes::default());
        let a2 = Arc::new(PathAttributes {
            med: Some(5),
            ..PathAttributes::default()
        });
        let mut c = Coalescer::default();
        c.add(vec![Update {
            attributes: Some(a1.clone()),
            announced: vec![p("10.0.0.0/24")].into(),
            ..Update::default()
        }]);
        c.add(vec![Update {
            attributes: Some(a2.clone()),
            announced: vec![p("10.0.1.0/24")].into(),
            ..Update::default()
        }]);
        c.add(vec![Update {
            attributes: Some(a1.clone()),
            announced: vec![p("10.0.2.0/24")].into(),
            ..Update::default()
        }]);
        c.add(vec![Update {
            withdrawn: vec![p("10.0.0.0/24")].into(),
            ..Update::default()
        }]);
        c.add(vec![Update {
            end_of_rib: Some(AddressFamily::IPV4_UNICAST),
            ..Update::default()
        }]);
        let out = c.take();
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!(out[0].withdrawn[..], [p("10.0.0.0/24")]);
        assert_eq!(out[1].announced[..], [p("10.0.1.0/24")]);
        assert_eq!(out[2].announced[..], [p("10.0.2.0/24")]);
        assert_eq!(out[3].end_of_rib, Some(AddressFamily::IPV4_UNICAST));
        assert!(c.is_empty() && c.deadline().is_none());
    }

    #[test]
    fn withdraw_then_announce_sends_the_announcement() {
        let a = Arc::new(PathAttributes::default());
        let mut c = Coalescer::default();
        c.add(vec![Update {
            withdrawn: vec![p("10.0.0.0/24")].into(),
            ..Update::default()
        }]);
        c.add(vec![Update {
            attributes: Some(a),
            announced: vec![p("10.0.0.0/24")].into(),
            ..Update::default()
        }]);
        let out = c.take();
        assert_eq!(out.len(), 1);
        assert!(out[0].withdrawn.is_empty());
        assert_eq!(out[0].announced[..], [p("10.0.0.0/24")]);
    }
}
