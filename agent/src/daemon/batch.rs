//! Batching of speaker events before they reach the route table.
//!
//! The event loop drains the events the speaker has ready (up to
//! [`MAX_BATCH`]) into a [`Coalescer`] and hands the resulting [`Step`]s to
//! [`super::agent::Agent::apply_steps`]; while a batch is written it prepares
//! the next one, at most [`MAX_BATCH`] events ahead. Each event is folded in
//! and dropped at once (its next-hop `Vec` and its `Arc<PathAttributes>` are
//! freed while draining). A longer backlog stays in the speaker, as one
//! compact entry per changed prefix (`tortie_bgp` session outbox), and comes
//! out with each prefix's latest best path when we take it.
//!
//! Semantics: for `BestPathChanged` only the latest state of a prefix matters
//! (the Loc-RIB's current best, RFC 4271 §9.1.2), so the last event for a
//! prefix wins and route changes inside a run are order-independent. Events
//! that are not route changes (`PeerStateChanged`, `Converged`) are ordering
//! barriers: the route changes received before them are emitted as one
//! [`Step::Routes`] ahead of them, so `Converged` (which triggers the sweep
//! of adopted kernel routes) sees every route learned before it.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use tortie_bgp::{Prefix, SpeakerEvent};

/// Most events drained into one batch before it is applied.
pub const MAX_BATCH: usize = 65_536;

/// Interned next-hop sets kept from one batch to the next.
const MAX_SETS: usize = 1024;

/// One thing to do, in order.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// The latest next hops per prefix (IPv4 and IPv6 alike), once per
    /// prefix, sorted by prefix. Each entry names a next-hop set in `hops`
    /// by index; a set holds only next hops of the prefix's family that we
    /// can install (see [`usable_next_hop`]); an empty set = nothing to
    /// install (remove ours).
    Routes {
        routes: Vec<(IpNetwork, u32)>,
        hops: Vec<Vec<IpAddr>>,
    },
    /// A non-route event, after every route change received before it.
    Event(SpeakerEvent),
}

impl Step {
    /// The routes of a [`Step::Routes`] with their next hops resolved
    /// (empty for other steps).
    pub fn resolved(&self) -> Vec<(IpNetwork, Vec<IpAddr>)> {
        match self {
            Step::Routes { routes, hops } => routes
                .iter()
                .map(|(n, h)| {
                    let set = hops.get(*h as usize).cloned().unwrap_or_default();
                    (*n, set)
                })
                .collect(),
            Step::Event(_) => Vec::new(),
        }
    }
}

/// Whether `nh` can be the gateway of a kernel route for a prefix of the
/// family `v6`: same family (IPv4 over an IPv6 next hop, RFC 8950, is not
/// negotiated), and not IPv6 link-local (fe80::/10): such a gateway needs
/// an output device, and a speaker event carries only the address. The
/// speaker's next hop is the global address of MP_REACH_NLRI (RFC 2545 §3
/// sends the link-local one second, alongside), so a link-local one here
/// means the peer sent nothing else: that route is not installed.
pub fn usable_next_hop(nh: IpAddr, v6: bool) -> bool {
    match nh {
        IpAddr::V4(_) => !v6,
        IpAddr::V6(a) => v6 && !a.is_unicast_link_local(),
    }
}

/// Folds speaker events into [`Step`]s (see the module doc). Per event it
/// stores 24 bytes (prefix, next-hop set id) and allocates nothing: the
/// next-hop sets are interned, deduplication happens at the end of a run.
#[derive(Default)]
pub struct Coalescer {
    /// Route changes of the current run, in arrival order.
    run: Vec<(IpNetwork, u32)>,
    /// Interned next-hop sets, by id.
    sets: Vec<Vec<IpAddr>>,
    ids: HashMap<Vec<IpAddr>, u32>,
    scratch: Vec<IpAddr>,
    steps: Vec<Step>,
    /// Events folded in so far (route changes included).
    events: usize,
    /// IPv6 route changes whose only next hops were link-local (not
    /// installed: no output device known), since the last [`Coalescer::finish`].
    pub link_local_only: usize,
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

    fn intern(&mut self) -> u32 {
        if let Some(id) = self.ids.get(self.scratch.as_slice()) {
            return *id;
        }
        let id = u32::try_from(self.sets.len()).unwrap_or(u32::MAX);
        self.sets.push(self.scratch.clone());
        self.ids.insert(self.scratch.clone(), id);
        id
    }

    pub fn push(&mut self, ev: SpeakerEvent) {
        self.events += 1;
        match ev {
            SpeakerEvent::BestPathChanged {
                prefix, next_hops, ..
            } => {
                let net: IpNetwork = match prefix {
                    Prefix::V4(p) => match Ipv4Network::new(p.addr(), p.len()) {
                        Ok(n) => n.into(),
                        Err(_) => return,
                    },
                    Prefix::V6(p) => match Ipv6Network::new(p.addr(), p.len()) {
                        Ok(n) => n.into(),
                        Err(_) => return,
                    },
                };
                let v6 = net.is_ipv6();
                self.scratch.clear();
                self.scratch.extend(
                    next_hops
                        .iter()
                        .copied()
                        .filter(|h| usable_next_hop(*h, v6)),
                );
                if v6
                    && self.scratch.is_empty()
                    && next_hops
                        .iter()
                        .any(|h| matches!(h, IpAddr::V6(a) if a.is_unicast_link_local()))
                {
                    self.link_local_only += 1;
                }
                let id = self.intern();
                self.run.push((net, id));
            }
            other => {
                self.close_run();
                self.steps.push(Step::Event(other));
            }
        }
    }

    /// Ends the current run: one entry per prefix, the last one received.
    fn close_run(&mut self) {
        if self.run.is_empty() {
            return;
        }
        let mut routes = std::mem::take(&mut self.run);
        // Newest first, stable sort by prefix, keep the first of each prefix.
        routes.reverse();
        routes.sort_by_key(|(n, _)| *n);
        routes.dedup_by_key(|(n, _)| *n);
        routes.shrink_to_fit();
        self.steps.push(Step::Routes {
            routes,
            hops: self.sets.clone(),
        });
    }

    /// The steps, in order; the coalescer is empty afterwards (interned
    /// next-hop sets are kept for the next batch).
    pub fn finish(&mut self) -> Vec<Step> {
        self.close_run();
        self.run = Vec::new();
        self.events = 0;
        if self.link_local_only > 0 {
            tracing::warn!(
                prefixes = self.link_local_only,
                "IPv6 routes not installed: their only next hop is link-local (fe80::/10) and no output device is known; have the peer send a global next hop"
            );
            self.link_local_only = 0;
        }
        // Next-hop sets are few (one per ECMP group); forget them if a
        // churning peer made many, the steps own their copy.
        if self.sets.len() > MAX_SETS {
            self.sets = Vec::new();
            self.ids = HashMap::new();
        }
        std::mem::take(&mut self.steps)
    }
}

/// Route changes in `steps` (one per prefix and run).
pub fn route_count(steps: &[Step]) -> usize {
    steps
        .iter()
        .map(|s| match s {
            Step::Routes { routes, .. } => routes.len(),
            Step::Event(_) => 0,
        })
        .sum()
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
    use std::net::{Ipv4Addr, Ipv6Addr};
    use tortie_bgp::{Ipv4Prefix, Ipv6Prefix, SessionState};

    fn best(a: [u8; 4], len: u8, hops: &[IpAddr]) -> SpeakerEvent {
        SpeakerEvent::BestPathChanged {
            prefix: Prefix::V4(Ipv4Prefix::new(Ipv4Addr::from(a), len).unwrap()),
            next_hops: hops.to_vec(),
            attributes: None,
        }
    }

    fn net(a: [u8; 4], len: u8) -> IpNetwork {
        Ipv4Network::new(Ipv4Addr::from(a), len).unwrap().into()
    }

    fn best6(p: &str, hops: &[IpAddr]) -> SpeakerEvent {
        let n: Ipv6Network = p.parse().unwrap();
        SpeakerEvent::BestPathChanged {
            prefix: Prefix::V6(Ipv6Prefix::new(n.ip(), n.prefix()).unwrap()),
            next_hops: hops.to_vec(),
            attributes: None,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
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
        let [r @ Step::Routes { .. }] = &steps[..] else {
            panic!("expected one routes step, got {steps:?}");
        };
        assert_eq!(
            r.resolved(),
            vec![
                (net([10, 1, 0, 0], 24), vec![H2]),
                (net([10, 2, 0, 0], 24), vec![H1, H2]),
                (net([10, 3, 0, 0], 24), vec![]),
            ]
        );
    }

    #[test]
    fn v6_prefixes_get_their_v6_next_hops_in_the_same_run() {
        let g1 = ip("2001:db8:1::1");
        let g2 = ip("2001:db8:1::2");
        let mut c = Coalescer::new();
        // A v6 hop is no gateway for an IPv4 prefix, and vice versa.
        c.push(best([10, 1, 0, 0], 24, &[H6, H1]));
        c.push(best6("2001:db8:57::/48", &[g2, g1, H1]));
        c.push(best6("2001:db8:58::/48", &[g1]));
        c.push(best6("2001:db8:58::/48", &[]));
        assert_eq!(c.len(), 4);
        let steps = c.finish();
        assert!(c.is_empty());
        assert_eq!(route_count(&steps), 3);
        let [r @ Step::Routes { .. }] = &steps[..] else {
            panic!("expected one routes step, got {steps:?}");
        };
        assert_eq!(
            r.resolved(),
            vec![
                (net([10, 1, 0, 0], 24), vec![H1]),
                ("2001:db8:57::/48".parse().unwrap(), vec![g2, g1]),
                ("2001:db8:58::/48".parse().unwrap(), vec![]),
            ]
        );
    }

    #[test]
    fn v6_link_local_next_hops_are_not_installable() {
        let ll = ip("fe80::1");
        let g = ip("2001:db8:1::1");
        assert!(!usable_next_hop(ll, true));
        assert!(usable_next_hop(g, true));
        assert!(!usable_next_hop(g, false));
        assert!(!usable_next_hop(H1, true));
        let mut c = Coalescer::new();
        c.push(best6("2001:db8:57::/48", &[ll]));
        c.push(best6("2001:db8:58::/48", &[ll, g]));
        assert_eq!(c.link_local_only, 1);
        let steps = c.finish();
        assert_eq!(c.link_local_only, 0, "counted per batch");
        assert_eq!(
            steps[0].resolved(),
            vec![
                ("2001:db8:57::/48".parse().unwrap(), vec![]),
                ("2001:db8:58::/48".parse().unwrap(), vec![g]),
            ]
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
        let (h1, h2) = (H1, H2);
        assert_eq!(steps.len(), 5, "{steps:?}");
        assert_eq!(route_count(&steps), 4);
        assert_eq!(
            steps[0].resolved(),
            vec![(net([10, 1, 0, 0], 24), vec![h1])]
        );
        assert!(matches!(
            &steps[1],
            Step::Event(SpeakerEvent::PeerStateChanged { peer: p, .. }) if *p == peer
        ));
        assert!(matches!(steps[2], Step::Routes { .. }), "{:?}", steps[2]);
        assert_eq!(
            steps[2].resolved(),
            vec![
                (net([10, 1, 0, 0], 24), vec![h2]),
                (net([10, 2, 0, 0], 24), vec![h2]),
            ]
        );
        assert!(matches!(steps[3], Step::Event(SpeakerEvent::Converged)));
        assert_eq!(steps[4].resolved(), vec![(net([10, 1, 0, 0], 24), vec![])]);
    }

    #[test]
    fn finish_resets_for_the_next_batch() {
        let mut c = Coalescer::new();
        c.push(best([10, 1, 0, 0], 24, &[H1]));
        assert_eq!(c.finish().len(), 1);
        assert!(c.finish().is_empty());
        c.push(best([10, 1, 0, 0], 24, &[H2]));
        let steps = c.finish();
        assert_eq!(steps.len(), 1);
        assert_eq!(
            steps[0].resolved(),
            vec![(net([10, 1, 0, 0], 24), vec![H2])]
        );
    }
}
