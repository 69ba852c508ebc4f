//! Batching of speaker events before they reach the route table.
//!
//! The event loop drains every event the speaker has queued (up to
//! [`MAX_BATCH`]) into a [`Coalescer`] and hands the resulting [`Step`]s to
//! [`super::agent::Agent::apply_steps`]. Each event is folded in and dropped
//! at once (its next-hop `Vec` and its `Arc<PathAttributes>` are freed while
//! draining), so the backlog the speaker keeps in memory while the kernel is
//! programmed shrinks to one compact entry per distinct prefix.
//!
//! Semantics: for `BestPathChanged` only the latest state of a prefix matters
//! (the Loc-RIB's current best, RFC 4271 §9.1.2), so the last event for a
//! prefix wins and route changes inside a run are order-independent. Events
//! that are not route changes (`PeerStateChanged`, `Converged`) are ordering
//! barriers: the route changes received before them are emitted as one
//! [`Step::Routes`] ahead of them, so `Converged` (which triggers the sweep
//! of adopted kernel routes) sees every route learned before it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, Ipv4Addr};

use ipnetwork::Ipv4Network;
use tortie_bgp::{Prefix, SpeakerEvent};

/// Most events drained into one batch before it is applied.
pub const MAX_BATCH: usize = 65_536;

/// One thing to do, in order.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// The latest IPv4 next hops per prefix; empty = nothing to install
    /// (remove ours). Order inside is unspecified.
    Routes(Vec<(Ipv4Network, Vec<Ipv4Addr>)>),
    /// A non-route event, after every route change received before it.
    Event(SpeakerEvent),
}

/// Folds speaker events into [`Step`]s (see the module doc).
#[derive(Default)]
pub struct Coalescer {
    /// Index into `run` by prefix, for the current run of route changes.
    index: HashMap<Ipv4Network, usize>,
    run: Vec<(Ipv4Network, Vec<Ipv4Addr>)>,
    steps: Vec<Step>,
    /// Events folded in so far (route changes included).
    events: usize,
    /// IPv6 route changes seen (not installed yet).
    pub ignored_v6: usize,
}

impl Coalescer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Events folded in so far.
    pub fn len(&self) -> usize {
        self.events
    }

    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    pub fn push(&mut self, ev: SpeakerEvent) {
        self.events += 1;
        match ev {
            SpeakerEvent::BestPathChanged {
                prefix: Prefix::V4(p),
                next_hops,
                ..
            } => {
                let Ok(net) = Ipv4Network::new(p.addr(), p.len()) else {
                    return;
                };
                let hops: Vec<Ipv4Addr> = next_hops
                    .iter()
                    .filter_map(|h| match h {
                        IpAddr::V4(a) => Some(*a),
                        IpAddr::V6(_) => None,
                    })
                    .collect();
                match self.index.entry(net) {
                    Entry::Occupied(e) => {
                        if let Some(slot) = self.run.get_mut(*e.get()) {
                            slot.1 = hops;
                        }
                    }
                    Entry::Vacant(e) => {
                        e.insert(self.run.len());
                        self.run.push((net, hops));
                    }
                }
            }
            SpeakerEvent::BestPathChanged {
                prefix: Prefix::V6(_),
                ..
            } => self.ignored_v6 += 1,
            other => {
                self.close_run();
                self.steps.push(Step::Event(other));
            }
        }
    }

    fn close_run(&mut self) {
        if !self.run.is_empty() {
            self.index.clear();
            self.steps.push(Step::Routes(std::mem::take(&mut self.run)));
        }
    }

    /// The steps, in order; the coalescer is empty afterwards.
    pub fn finish(&mut self) -> Vec<Step> {
        self.close_run();
        self.index = HashMap::new();
        self.events = 0;
        std::mem::take(&mut self.steps)
    }
}

/// Convenience: fold a whole sequence.
pub fn coalesce(events: impl IntoIterator<Item = SpeakerEvent>) -> Vec<Step> {
    let mut c = Coalescer::new();
    for ev in events {
        c.push(ev);
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;
    use tortie_bgp::{Ipv4Prefix, Ipv6Prefix, SessionState};

    fn best(a: [u8; 4], len: u8, hops: &[IpAddr]) -> SpeakerEvent {
        SpeakerEvent::BestPathChanged {
            prefix: Prefix::V4(Ipv4Prefix::new(Ipv4Addr::from(a), len).unwrap()),
            next_hops: hops.to_vec(),
            attributes: None,
        }
    }

    fn net(a: [u8; 4], len: u8) -> Ipv4Network {
        Ipv4Network::new(Ipv4Addr::from(a), len).unwrap()
    }

    fn sorted(mut v: Vec<(Ipv4Network, Vec<Ipv4Addr>)>) -> Vec<(Ipv4Network, Vec<Ipv4Addr>)> {
        v.sort();
        v
    }

    const H1: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const H2: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    const H6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

    #[test]
    fn last_event_per_prefix_wins() {
        let steps = coalesce([
            best([10, 1, 0, 0], 24, &[H1]),
            best([10, 2, 0, 0], 24, &[H1, H6]),
            best([10, 1, 0, 0], 24, &[H2]),
            best([10, 3, 0, 0], 24, &[H1]),
            best([10, 3, 0, 0], 24, &[]),
            best([10, 2, 0, 0], 24, &[H1, H2]),
        ]);
        let [Step::Routes(r)] = &steps[..] else {
            panic!("expected one routes step, got {steps:?}");
        };
        assert_eq!(
            sorted(r.clone()),
            vec![
                (net([10, 1, 0, 0], 24), vec![Ipv4Addr::new(192, 0, 2, 2)]),
                (
                    net([10, 2, 0, 0], 24),
                    vec![Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)]
                ),
                (net([10, 3, 0, 0], 24), vec![]),
            ]
        );
    }

    #[test]
    fn v6_hops_are_dropped_and_v6_prefixes_counted() {
        let mut c = Coalescer::new();
        c.push(best([10, 1, 0, 0], 24, &[H6]));
        c.push(SpeakerEvent::BestPathChanged {
            prefix: Prefix::V6(Ipv6Prefix::new(Ipv6Addr::LOCALHOST, 128).unwrap()),
            next_hops: vec![H6],
            attributes: None,
        });
        assert_eq!(c.len(), 2);
        assert_eq!(c.ignored_v6, 1);
        let steps = c.finish();
        assert!(c.is_empty());
        assert_eq!(
            steps,
            vec![Step::Routes(vec![(net([10, 1, 0, 0], 24), vec![])])]
        );
    }

    #[test]
    fn non_route_events_are_barriers() {
        let peer = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
        let steps = coalesce([
            best([10, 1, 0, 0], 24, &[H1]),
            SpeakerEvent::PeerStateChanged {
                peer,
                state: SessionState::Established,
                reason: "up".to_string(),
            },
            best([10, 1, 0, 0], 24, &[H2]),
            best([10, 2, 0, 0], 24, &[H2]),
            SpeakerEvent::Converged,
            best([10, 1, 0, 0], 24, &[]),
        ]);
        let h1 = Ipv4Addr::new(192, 0, 2, 1);
        let h2 = Ipv4Addr::new(192, 0, 2, 2);
        assert_eq!(steps.len(), 5, "{steps:?}");
        assert_eq!(
            steps[0],
            Step::Routes(vec![(net([10, 1, 0, 0], 24), vec![h1])])
        );
        assert!(matches!(
            &steps[1],
            Step::Event(SpeakerEvent::PeerStateChanged { peer: p, .. }) if *p == peer
        ));
        let Step::Routes(r) = &steps[2] else {
            panic!("expected routes before Converged, got {:?}", steps[2]);
        };
        assert_eq!(
            sorted(r.clone()),
            vec![
                (net([10, 1, 0, 0], 24), vec![h2]),
                (net([10, 2, 0, 0], 24), vec![h2]),
            ]
        );
        assert!(matches!(steps[3], Step::Event(SpeakerEvent::Converged)));
        assert_eq!(
            steps[4],
            Step::Routes(vec![(net([10, 1, 0, 0], 24), vec![])])
        );
    }

    #[test]
    fn finish_resets_for_the_next_batch() {
        let mut c = Coalescer::new();
        c.push(best([10, 1, 0, 0], 24, &[H1]));
        assert_eq!(c.finish().len(), 1);
        assert!(c.finish().is_empty());
        c.push(best([10, 1, 0, 0], 24, &[H2]));
        assert_eq!(
            c.finish(),
            vec![Step::Routes(vec![(
                net([10, 1, 0, 0], 24),
                vec![Ipv4Addr::new(192, 0, 2, 2)]
            )])]
        );
    }
}
