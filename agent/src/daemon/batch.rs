//! Speaker events → route-table desires, one batch at a time, in order.
//!
//! Data flow: the event loop takes what the speaker has ready (up to
//! [`MAX_BATCH`] events) while at most one converted batch waits for the
//! route table to take it; [`Learned::steps`] turns the batch into [`Step`]s (sync, no
//! waiting) and [`super::agent::Agent::apply_steps`] queues them on the route
//! table. A longer backlog stays in the speaker's outbox, the one coalescing
//! stage between the speaker and the kernel (`tortie_bgp` session outbox: one
//! compact entry per changed prefix, reported with the prefix's latest best
//! path when we take it). Nothing here de-duplicates, sorts or holds events:
//! each route change becomes one desire, in the order received, and the
//! route table's slots keep the last desire per prefix — except express
//! changes (the speaker's `express` mark, at most [`EXPRESS_MAX`] a batch):
//! they lead the batch as [`Step::Express`], queued on the table ahead of
//! the bulk, and an older change of their prefix in the same batch is
//! dropped (the table drops one of an earlier batch; docs/design.md,
//! "Express changes").
//!
//! Next hops: the speaker interns each ECMP set ([`tortie_bgp::NextHops`]);
//! [`Learned`] converts a set to a kernel route once (per family, with the
//! encapsulation model `tortie_routes::route_for_learned`) and has the route
//! table intern that route ([`super::kernel::Routes::intern`], the table's one
//! interner), so a million changes over one set cost a pointer lookup and a
//! reference count each, not a `Vec` of next hops.
//!
//! Semantics: events that are not route changes (`PeerStateChanged`,
//! `Converged`) are ordering barriers: the route changes received before them
//! are queued on the route table first, so `Converged` (which triggers the
//! sweep of adopted kernel routes) sees every route learned before it. A
//! learned route for the node's own block or for a container address the
//! registry holds is ignored; with `--no-kernel` (`install_learned` off)
//! route changes are dropped and only the barriers are kept.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use tortie_bgp::{NextHops, Prefix, SpeakerEvent};
use tortie_config::Config;

/// Most events taken from the speaker into one batch.
pub const MAX_BATCH: usize = 8192;

/// Most changes of one batch sent ahead of it as express changes
/// ([`Step::Express`]); more stay in the batch, in order. The speaker marks
/// a change express when it left its outbox ahead of the backlog there,
/// which a bulk load's own late changes do too: this keeps them from
/// turning the express path into a second bulk path.
pub const EXPRESS_MAX: usize = 16;

/// Next-hop sets whose kernel route is remembered; more (a churning peer)
/// and the memo starts again.
const MAX_SETS: usize = 1024;

/// One thing to do, in order.
#[derive(Debug, PartialEq)]
pub enum Step<S> {
    /// Changes the speaker marked `express` (up to [`EXPRESS_MAX`] per
    /// batch), first of the batch's steps: queued on the route table at
    /// once, ahead of everything it still has queued, with the batch's
    /// order ([`Learned::order`]); an older change of the same prefix in
    /// the batch is dropped here, and one of an earlier batch still queued
    /// there is dropped by the table (docs/design.md, "Express changes").
    Express(Vec<(IpNetwork, Option<S>)>),
    /// Desires in the order received: the route table's interned route for
    /// the prefix, or `None` = nothing to install (remove ours).
    Routes(Vec<(IpNetwork, Option<S>)>),
    /// A non-route event, after every route change received before it.
    Event(SpeakerEvent),
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

/// What the conversion needs from the agent (its config and registry).
pub trait Context {
    /// The route table's interned route.
    type Route: Clone;
    /// The table's shared copy of `route` (its one interner).
    fn intern(&self, route: tortie_routes::KernelRoute) -> Self::Route;
    /// A learned route for `net` must be ignored (our block, a container).
    fn own(&self, net: &IpNetwork) -> bool;
}

/// The per-set conversion (see the module doc), kept across batches.
pub struct Learned<S> {
    /// (speaker's set, IPv6 prefix) → the table's route, `None` when no next
    /// hop of the set is usable for that family. The set is held, so its
    /// address stays its own while it is a key.
    memo: HashMap<(usize, bool), (NextHops, Option<S>)>,
    /// The memo's last hit: a bulk load repeats one set (no hashing then).
    last: Option<((usize, bool), Option<S>)>,
    /// The config the memo was made with (encapsulation, node subnets).
    cfg: Option<Arc<Config>>,
    /// IPv6 route changes whose only next hops were link-local (not
    /// installed: no output device known), since the last warning.
    pub link_local_only: usize,
    /// Batches converted: the order of the last one ([`Self::order`]).
    order: u64,
}

impl<S> Default for Learned<S> {
    fn default() -> Self {
        Learned {
            memo: HashMap::new(),
            last: None,
            cfg: None,
            link_local_only: 0,
            order: 0,
        }
    }
}

impl<S> Learned<S> {
    /// The order of the batch [`Self::steps`] converted last (rising by one
    /// a batch): what the route table orders its changes by
    /// (`RouteTable::apply_in_order`, `RouteTable::express`).
    pub fn order(&self) -> u64 {
        self.order
    }
}

impl<S: Clone> Learned<S> {
    /// `events` as steps (see the module doc); route changes only when
    /// `install` (else just the barriers).
    pub fn steps<C: Context<Route = S>>(
        &mut self,
        cx: &C,
        cfg: &Arc<Config>,
        install: bool,
        events: impl IntoIterator<Item = SpeakerEvent>,
    ) -> Vec<Step<S>> {
        if !self.cfg.as_ref().is_some_and(|c| Arc::ptr_eq(c, cfg)) || self.memo.len() > MAX_SETS {
            self.memo.clear();
            self.last = None;
            self.cfg = Some(cfg.clone());
        }
        self.order += 1;
        let events = events.into_iter();
        let mut steps = Vec::new();
        let mut express = Vec::new();
        // Sized once: growing it by doubling costs a large allocation each
        // time, and each one has glibc consolidate its free lists (perf,
        // 1M unique).
        let mut run = Vec::with_capacity(events.size_hint().0);
        for ev in events {
            match ev {
                SpeakerEvent::BestPathChanged {
                    prefix,
                    next_hops,
                    express: ahead,
                    ..
                } => {
                    if !install {
                        continue;
                    }
                    let Some(net) = network(prefix) else { continue };
                    if cx.own(&net) {
                        tracing::debug!(prefix = %net, "ignoring a learned route for our own block or container");
                        continue;
                    }
                    let change = (net, self.route(cx, cfg, &next_hops, net.is_ipv6()));
                    if ahead && express.len() < EXPRESS_MAX {
                        // An older change of it earlier in the batch would
                        // be queued after this one: it is superseded.
                        drop_older(&mut steps, &mut run, net);
                        express.push(change);
                    } else {
                        run.push(change);
                    }
                }
                other => {
                    if !run.is_empty() {
                        steps.push(Step::Routes(std::mem::take(&mut run)));
                    }
                    steps.push(Step::Event(other));
                }
            }
        }
        if !run.is_empty() {
            steps.push(Step::Routes(run));
        }
        if !express.is_empty() {
            steps.insert(0, Step::Express(express));
        }
        if self.link_local_only > 0 {
            tracing::warn!(
                prefixes = self.link_local_only,
                "IPv6 routes not installed: their only next hop is link-local (fe80::/10) and no output device is known; have the peer send a global next hop"
            );
            self.link_local_only = 0;
        }
        steps
    }

    /// The table's route for `hops` toward a prefix of family `v6`.
    fn route<C: Context<Route = S>>(
        &mut self,
        cx: &C,
        cfg: &Config,
        hops: &NextHops,
        v6: bool,
    ) -> Option<S> {
        if hops.is_empty() {
            return None;
        }
        let key = (hops.ptr() as usize, v6);
        let hit = match &self.last {
            Some((k, r)) if *k == key => Some(r.clone()),
            _ => self.memo.get(&key).map(|(_, r)| r.clone()),
        };
        if let Some(r) = hit {
            if self.last.as_ref().is_none_or(|(k, _)| *k != key) {
                self.last = Some((key, r.clone()));
            }
            if r.is_none() && v6 {
                self.count_link_local(hops);
            }
            return r;
        }
        let usable: Vec<IpAddr> = hops
            .iter()
            .copied()
            .filter(|h| usable_next_hop(*h, v6))
            .collect();
        let route = (!usable.is_empty()).then(|| {
            let subnets = super::dataplane::node_subnets(cfg);
            cx.intern(tortie_routes::route_for_learned(
                &usable,
                cfg.dataplane.encapsulation,
                &subnets,
            ))
        });
        if route.is_none() && v6 {
            self.count_link_local(hops);
        }
        self.memo.insert(key, (hops.clone(), route.clone()));
        self.last = Some((key, route.clone()));
        route
    }

    fn count_link_local(&mut self, hops: &[IpAddr]) {
        if hops
            .iter()
            .any(|h| matches!(h, IpAddr::V6(a) if a.is_unicast_link_local()))
        {
            self.link_local_only += 1;
        }
    }
}

/// Drops the changes of `net` in `steps` and `run` (the batch so far).
fn drop_older<S>(steps: &mut [Step<S>], run: &mut Vec<(IpNetwork, Option<S>)>, net: IpNetwork) {
    run.retain(|(n, _)| *n != net);
    for s in steps {
        if let Step::Routes(r) = s {
            r.retain(|(n, _)| *n != net);
        }
    }
}

/// The speaker's prefix as a network.
fn network(prefix: Prefix) -> Option<IpNetwork> {
    match prefix {
        Prefix::V4(p) => Ipv4Network::new(p.addr(), p.len()).ok().map(Into::into),
        Prefix::V6(p) => Ipv6Network::new(p.addr(), p.len()).ok().map(Into::into),
    }
}

/// The probe trace's step into the agent ([`tortie_bgp::PROBE_TRACE`]):
/// each traced change in a batch just taken, with its place in the batch
/// and whether the batch before is still being queued on the route table.
pub fn trace_taken(taken: &[SpeakerEvent], busy: bool) {
    for (at, ev) in taken.iter().enumerate() {
        if let SpeakerEvent::BestPathChanged { prefix, .. } = ev
            && tortie_bgp::probe_traced(*prefix)
        {
            tracing::trace!(target: tortie_bgp::PROBE_TRACE, prefix = %prefix, at,
                batch = taken.len(), busy, "agent: event taken");
        }
    }
}

/// The first host-length route of a burst (a traced one, see
/// [`tortie_bgp::PROBE_TRACE`]) and its place in the burst.
pub fn traced_route<S>(routes: &[(IpNetwork, Option<S>)]) -> Option<(IpNetwork, usize)> {
    routes.iter().enumerate().find_map(|(at, (net, _))| {
        let host = if net.is_ipv4() { 32 } else { 128 };
        (net.prefix() == host).then_some((*net, at))
    })
}

/// Route changes in `steps`.
pub fn route_count<S>(steps: &[Step<S>]) -> usize {
    steps
        .iter()
        .map(|s| match s {
            Step::Routes(r) | Step::Express(r) => r.len(),
            Step::Event(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use tortie_bgp::{Ipv4Prefix, Ipv6Prefix, SessionState};
    use tortie_routes::{KernelRoute, NextHop};

    /// Interns by value and counts the calls; `own` is a fixed list.
    #[derive(Default)]
    struct Cx {
        interned: RefCell<usize>,
        own: Vec<IpNetwork>,
    }

    impl Context for Cx {
        type Route = KernelRoute;
        fn intern(&self, route: KernelRoute) -> KernelRoute {
            *self.interned.borrow_mut() += 1;
            route.normalized()
        }
        fn own(&self, net: &IpNetwork) -> bool {
            self.own.contains(net)
        }
    }

    fn cfg() -> Arc<Config> {
        let text = r#"
[node]
name = "n1"
address = "192.0.2.11/24"
asn = 64512
pod_cidr = "10.244.1.0/26"
"#;
        Arc::new(tortie_config::parse(text, "t.toml").unwrap())
    }

    fn best(sets: &mut HashMap<Vec<IpAddr>, NextHops>, p: &str, hops: &[IpAddr]) -> SpeakerEvent {
        let n: IpNetwork = p.parse().unwrap();
        let prefix = match n {
            IpNetwork::V4(n) => Prefix::V4(Ipv4Prefix::new(n.ip(), n.prefix()).unwrap()),
            IpNetwork::V6(n) => Prefix::V6(Ipv6Prefix::new(n.ip(), n.prefix()).unwrap()),
        };
        // As the speaker does: one allocation per distinct set.
        let next_hops = sets
            .entry(hops.to_vec())
            .or_insert_with(|| NextHops::new(hops))
            .clone();
        SpeakerEvent::BestPathChanged {
            prefix,
            next_hops,
            attributes: None,
            express: false,
        }
    }

    fn via(hops: &[IpAddr]) -> Option<KernelRoute> {
        Some(KernelRoute::Unicast {
            next_hops: hops
                .iter()
                .map(|g| NextHop {
                    gateway: *g,
                    dev: None,
                    onlink: false,
                })
                .collect(),
        })
    }

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    const H1: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const H2: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    const H6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

    /// Event table: what the speaker reports → the route-table steps, in
    /// order, one desire per change (no de-duplication: the speaker's
    /// outbox is the coalescing stage), barriers after the changes before
    /// them, own block and containers ignored, next hops of the prefix's
    /// family only, one conversion per set and family.
    #[test]
    fn event_table() {
        let mut sets = HashMap::new();
        let g1: IpAddr = "2001:db8:1::1".parse().unwrap();
        let ll: IpAddr = "fe80::1".parse().unwrap();
        let peer = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
        let events = vec![
            best(&mut sets, "10.1.0.0/24", &[H1]),
            best(&mut sets, "10.2.0.0/24", &[H1, H2]),
            best(&mut sets, "10.1.0.0/24", &[H2]),
            // Our block and a container of ours: ignored.
            best(&mut sets, "10.244.1.0/26", &[H1]),
            best(&mut sets, "10.244.1.5/32", &[H1]),
            SpeakerEvent::PeerStateChanged {
                peer,
                state: SessionState::Established,
                reason: "up".into(),
            },
            // A v6 hop is no gateway for an IPv4 prefix, and vice versa.
            best(&mut sets, "10.3.0.0/24", &[H6, H1]),
            best(&mut sets, "2001:db8:57::/48", &[g1, H1]),
            best(&mut sets, "2001:db8:58::/48", &[ll]),
            best(&mut sets, "10.1.0.0/24", &[]),
            SpeakerEvent::Converged,
            best(&mut sets, "10.2.0.0/24", &[H1, H2]),
        ];
        let cx = Cx {
            own: vec![net("10.244.1.0/26"), net("10.244.1.5/32")],
            ..Cx::default()
        };
        let cfg = cfg();
        let mut l = Learned::default();
        let steps = l.steps(&cx, &cfg, true, events.clone());
        let want = vec![
            Step::Routes(vec![
                (net("10.1.0.0/24"), via(&[H1])),
                (net("10.2.0.0/24"), via(&[H1, H2])),
                (net("10.1.0.0/24"), via(&[H2])),
            ]),
            Step::Event(events[5].clone()),
            Step::Routes(vec![
                (net("10.3.0.0/24"), via(&[H1])),
                (net("2001:db8:57::/48"), via(&[g1])),
                (net("2001:db8:58::/48"), None),
                (net("10.1.0.0/24"), None),
            ]),
            Step::Event(SpeakerEvent::Converged),
            Step::Routes(vec![(net("10.2.0.0/24"), via(&[H1, H2]))]),
        ];
        assert_eq!(steps, want);
        assert_eq!(route_count(&steps), 8);
        // [H1] (own ones included), [H1,H2], [H2], [H6,H1] and [g1,H1]
        // once each; the link-local-only set has no route to intern.
        assert_eq!(*cx.interned.borrow(), 5);
        // Next batch: the sets are remembered.
        let again = l.steps(&cx, &cfg, true, events.clone());
        assert_eq!(again, want);
        assert_eq!(*cx.interned.borrow(), 5);
        // A new config (SIGHUP) starts the memo again.
        let cfg2 = Arc::new((*cfg).clone());
        l.steps(&cx, &cfg2, true, events.clone());
        assert_eq!(*cx.interned.borrow(), 10);
        // --no-kernel: only the barriers.
        assert_eq!(
            l.steps(&cx, &cfg2, false, events.clone()),
            vec![
                Step::Event(events[5].clone()),
                Step::Event(SpeakerEvent::Converged)
            ]
        );
    }

    #[test]
    fn v6_link_local_next_hops_are_not_installable() {
        let ll: IpAddr = "fe80::1".parse().unwrap();
        let g: IpAddr = "2001:db8:1::1".parse().unwrap();
        assert!(!usable_next_hop(ll, true));
        assert!(usable_next_hop(g, true));
        assert!(!usable_next_hop(g, false));
        assert!(!usable_next_hop(H1, true));
        let mut sets = HashMap::new();
        let mut l = Learned::default();
        let cx = Cx::default();
        let steps = l.steps(
            &cx,
            &cfg(),
            true,
            [
                best(&mut sets, "2001:db8:57::/48", &[ll]),
                best(&mut sets, "2001:db8:58::/48", &[ll, g]),
            ],
        );
        assert_eq!(l.link_local_only, 0, "counted and reported per batch");
        assert_eq!(
            steps,
            vec![Step::Routes(vec![
                (net("2001:db8:57::/48"), None),
                (net("2001:db8:58::/48"), via(&[g])),
            ])]
        );
    }

    /// The probe trace follows a burst's first host-length route, IPv4 or
    /// IPv6, at its place; a burst of shorter prefixes has none.
    #[test]
    fn the_probe_trace_finds_a_bursts_host_route() {
        let r = |p: &str| (net(p), None::<()>);
        let load = [r("10.0.0.0/28"), r("10.0.0.16/28"), r("2001:db8::/48")];
        assert_eq!(traced_route(&load), None);
        let v4 = [r("10.0.0.0/28"), r("198.19.0.1/32"), r("10.0.0.16/28")];
        assert_eq!(traced_route(&v4), Some((net("198.19.0.1/32"), 1)));
        let v6 = [r("2001:db8::/48"), r("2001:db8::/64"), r("fd13:19::1/128")];
        assert_eq!(traced_route(&v6), Some((net("fd13:19::1/128"), 2)));
        assert_eq!(traced_route(&[r("0.0.0.0/0")]), None);
    }

    /// Changes marked `express` come first, as their own step, with no
    /// older change of their prefix left in the batch; at most
    /// [`EXPRESS_MAX`] a batch (the rest stay in order); the batch's order
    /// rises by one a batch.
    #[test]
    fn express_changes_lead_the_batch_without_older_ones_behind() {
        let mut sets = HashMap::new();
        let fast = |sets: &mut HashMap<_, _>, p: &str, hops: &[IpAddr]| match best(sets, p, hops) {
            SpeakerEvent::BestPathChanged {
                prefix, next_hops, ..
            } => SpeakerEvent::BestPathChanged {
                prefix,
                next_hops,
                attributes: None,
                express: true,
            },
            other => other,
        };
        let events = vec![
            best(&mut sets, "10.1.0.0/24", &[H1]),
            best(&mut sets, "198.19.0.1/32", &[H1]),
            SpeakerEvent::Converged,
            best(&mut sets, "10.2.0.0/24", &[H1]),
            fast(&mut sets, "198.19.0.1/32", &[]),
            best(&mut sets, "10.3.0.0/24", &[H1]),
        ];
        let cx = Cx::default();
        let cfg = cfg();
        let mut l = Learned::default();
        let steps = l.steps(&cx, &cfg, true, events.clone());
        assert_eq!(l.order(), 1);
        assert_eq!(
            steps,
            vec![
                Step::Express(vec![(net("198.19.0.1/32"), None)]),
                Step::Routes(vec![(net("10.1.0.0/24"), via(&[H1]))]),
                Step::Event(SpeakerEvent::Converged),
                Step::Routes(vec![
                    (net("10.2.0.0/24"), via(&[H1])),
                    (net("10.3.0.0/24"), via(&[H1])),
                ]),
            ]
        );
        let many: Vec<_> = (0..EXPRESS_MAX + 2)
            .map(|i| fast(&mut sets, &format!("198.19.1.{i}/32"), &[H1]))
            .collect();
        let steps = l.steps(&cx, &cfg, true, many);
        assert_eq!(l.order(), 2);
        let [Step::Express(ahead), Step::Routes(rest)] = &steps[..] else {
            panic!("{steps:?}");
        };
        assert_eq!(ahead.len(), EXPRESS_MAX);
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[0].0, net(&format!("198.19.1.{EXPRESS_MAX}/32")));
    }
}
