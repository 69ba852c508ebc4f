//! Randomised consistency check of the RIB against a model of what each peer
//! and the kernel were told.
//!
//! The RIB does not store Adj-RIBs-Out: it sends diffs of the export of the old
//! and the new best path. This test replays thousands of random operations
//! (announce, withdraw, session loss with and without graceful restart,
//! End-of-RIB, sweep, origination) and checks after each one that
//! - every up peer's view, built only from the UPDATEs the RIB emitted, equals
//!   a fresh full export (route refresh) and the advertised counter;
//! - the kernel view, built only from the emitted best-path changes, equals
//!   the Loc-RIB;
//! - the best path does not depend on the order the candidates arrived in;
//! - a RIB that builds no best-path changes (`RibConfig::best_path_feed`
//!   off), given the same operations, sends the same UPDATEs and keeps the
//!   same counters;
//! - a RIB with the next-hops-only feed (`BestPathFeed::NextHops`) reports
//!   changes without attributes that install exactly the Loc-RIB's next hops.

mod rib_common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use rib_common::*;
use tortie_bgp::rib::{BestPathFeed, PeerId, PeerInfo, Rib, RibConfig, RibOutput};
use tortie_bgp::types::AddressFamily as Family;
use tortie_bgp::types::{AddressFamily, Origin, PathAttributes, Prefix};
use tortie_bgp::wire::Update;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

type View = HashMap<Prefix, Arc<PathAttributes>>;
type KernelView = HashMap<Prefix, (Vec<IpAddr>, Option<Arc<PathAttributes>>)>;

struct Harness {
    rib: Rib,
    /// The same RIB with best-path changes off, fed the same operations.
    quiet: Rib,
    /// The same RIB with the next-hops-only feed, and what its changes installed.
    hops: Rib,
    installed: HashMap<Prefix, Vec<IpAddr>>,
    infos: HashMap<u32, PeerInfo>,
    up: HashMap<u32, bool>,
    views: HashMap<u32, View>,
    kernel: KernelView,
    /// (announcements, withdrawals, best changes) seen, to prove the run did something.
    seen: (usize, usize, usize),
}

type Send = (
    u32,
    u8,
    Option<Prefix>,
    Option<Family>,
    Option<Arc<PathAttributes>>,
);

/// What `out` sends, one entry per withdrawn or announced prefix or
/// End-of-RIB, sorted (the order of peers and of a full export's prefixes
/// follows each RIB's own hash seeds).
fn sends(out: &RibOutput) -> Vec<Send> {
    let mut v: Vec<Send> = Vec::new();
    for (peer, u) in &out.outbound {
        v.extend(
            u.withdrawn
                .iter()
                .map(|p| (peer.0, 0, Some(*p), None, None)),
        );
        let a = &u.attributes;
        v.extend(
            u.announced
                .iter()
                .map(|p| (peer.0, 1, Some(*p), None, a.clone())),
        );
        v.extend(u.end_of_rib.map(|f| (peer.0, 2, None, Some(f), None)));
    }
    v.sort_by_key(|s| (s.0, s.1, s.2, s.3));
    v
}

fn infos() -> HashMap<u32, PeerInfo> {
    let mut m = HashMap::new();
    m.insert(1, peer_info(1, 65001));
    m.insert(2, peer_info(2, 65001)); // same neighbour AS as 1: MED and ECMP apply
    m.insert(3, peer_info(3, 65002));
    let mut c = peer_info(4, LOCAL_AS);
    c.rr_client = true;
    m.insert(4, c);
    m.insert(5, peer_info(5, LOCAL_AS));
    let mut c = peer_info(6, LOCAL_AS);
    c.rr_client = true;
    c.next_hop_self = true;
    m.insert(6, c);
    for i in m.values_mut() {
        i.families = vec![AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST];
        i.alternate_next_hop = Some(ip("2001:db8::254"));
    }
    m
}

fn prefixes() -> Vec<Prefix> {
    let mut v: Vec<Prefix> = (0..24).map(|i| pfx(&format!("10.0.{i}.0/24"))).collect();
    v.extend((0..6).map(|i| pfx(&format!("2001:db8:{i}::/48"))));
    v
}

fn random_attrs(rng: &mut Rng, peer: u32, asn: u32, v6: bool) -> PathAttributes {
    let first = if asn == LOCAL_AS {
        65100 + rng.below(3) as u32
    } else {
        asn
    };
    let mut path = vec![first];
    for _ in 0..rng.below(3) {
        path.push(65200 + rng.below(4) as u32);
    }
    if rng.below(20) == 0 {
        path.push(LOCAL_AS); // a loop: must be rejected
    }
    let nh = if v6 {
        format!("2001:db8::{}", peer + rng.below(2) as u32 * 16)
    } else {
        format!("192.0.2.{}", peer + rng.below(2) as u32 * 16)
    };
    let mut a = attrs(
        if rng.below(6) == 0 && asn == LOCAL_AS {
            &[]
        } else {
            &path
        },
        &nh,
    );
    a.med = (rng.below(3) > 0).then(|| rng.below(3) as u32);
    a.origin = if rng.below(5) == 0 {
        Origin::Incomplete
    } else {
        Origin::Igp
    };
    if asn == LOCAL_AS {
        a.local_pref = Some(if rng.below(4) == 0 { 200 } else { 100 });
        if rng.below(5) == 0 {
            a.originator_id = Some(v4(&format!("10.254.0.{}", rng.below(3))));
            a.cluster_list = vec![v4("10.253.0.1")];
        }
    }
    a
}

impl Harness {
    fn new() -> Harness {
        Harness {
            rib: rib(),
            quiet: {
                let mut cfg = RibConfig::new(LOCAL_AS, ROUTER_ID);
                cfg.ebgp_requires_policy = false;
                cfg.best_path_feed = BestPathFeed::Off;
                Rib::new(cfg)
            },
            hops: {
                let mut cfg = RibConfig::new(LOCAL_AS, ROUTER_ID);
                cfg.ebgp_requires_policy = false;
                cfg.best_path_feed = BestPathFeed::NextHops;
                Rib::new(cfg)
            },
            installed: HashMap::new(),
            infos: infos(),
            up: HashMap::new(),
            views: HashMap::new(),
            kernel: HashMap::new(),
            seen: (0, 0, 0),
        }
    }

    /// Runs `f` on the three RIBs; the quiet one must report no best-path
    /// change, the next-hops one none with attributes, and both send the same
    /// UPDATEs (peers and prefixes in any order).
    fn both(&mut self, f: impl Fn(&mut Rib) -> RibOutput) -> RibOutput {
        let out = f(&mut self.rib);
        let quiet = f(&mut self.quiet);
        assert!(quiet.best_changes.is_empty(), "{:?}", quiet.best_changes);
        assert_eq!(sends(&quiet), sends(&out));
        let hops = f(&mut self.hops);
        assert_eq!(sends(&hops), sends(&out));
        for c in hops.best_changes {
            assert!(c.attributes.is_none(), "{c:?}");
            if c.next_hops.is_empty() {
                self.installed.remove(&c.prefix);
            } else {
                self.installed.insert(c.prefix, c.next_hops.to_vec());
            }
        }
        out
    }

    fn absorb(&mut self, out: RibOutput) {
        for (peer, u) in out.outbound {
            assert_eq!(
                self.up.get(&peer.0),
                Some(&true),
                "UPDATE to a peer that is not up: {u:?}"
            );
            self.seen.0 += u.announced.len();
            self.seen.1 += u.withdrawn.len();
            let view = self.views.entry(peer.0).or_default();
            for p in &u.withdrawn {
                assert!(
                    view.remove(p).is_some(),
                    "{peer}: withdrawal of {p} it was never sent"
                );
            }
            for p in &u.announced {
                let a = u
                    .attributes
                    .clone()
                    .expect("announcement without attributes");
                if let Some(old) = view.get(p) {
                    assert!(**old != *a, "{peer}: {p} re-announced unchanged");
                }
                view.insert(*p, a);
            }
        }
        let mut seen = std::collections::HashSet::new();
        self.seen.2 += out.best_changes.len();
        for c in out.best_changes {
            assert!(
                seen.insert(c.prefix),
                "two best changes for {} in one output",
                c.prefix
            );
            match c.attributes {
                None => {
                    assert!(
                        self.kernel.remove(&c.prefix).is_some(),
                        "gone {} that was never there",
                        c.prefix
                    );
                }
                Some(a) => {
                    let new = (c.next_hops.to_vec(), Some(a));
                    assert_ne!(
                        self.kernel.get(&c.prefix),
                        Some(&new),
                        "no-op best change for {}",
                        c.prefix
                    );
                    self.kernel.insert(c.prefix, new);
                }
            }
        }
    }

    fn check(&mut self, step: usize) {
        let loc: KernelView = self
            .rib
            .loc_rib()
            .map(|c| (c.prefix, (c.next_hops.to_vec(), c.attributes)))
            .collect();
        assert_eq!(
            loc, self.kernel,
            "step {step}: kernel view drifted from the Loc-RIB"
        );
        assert_eq!(self.quiet.loc_rib_len(), self.rib.loc_rib_len());
        let to_install: HashMap<Prefix, Vec<IpAddr>> = self
            .rib
            .loc_rib()
            .filter(|c| !c.next_hops.is_empty())
            .map(|c| (c.prefix, c.next_hops.to_vec()))
            .collect();
        assert_eq!(
            self.installed, to_install,
            "step {step}: next-hops feed drifted from the Loc-RIB"
        );
        for id in 1..=6 {
            let (q, r) = (
                self.quiet.peer_counters(PeerId(id)),
                self.rib.peer_counters(PeerId(id)),
            );
            assert_eq!(q, r, "step {step}: peer {id}'s counters");
        }
        // Counters against a walk of every candidate.
        let mut walk: HashMap<u32, (usize, usize)> = HashMap::new();
        for p in prefixes() {
            for c in self.rib.explain(p) {
                if let Some(id) = c.peer {
                    let e = walk.entry(id.0).or_default();
                    e.0 += 1;
                    e.1 += c.stale as usize;
                }
            }
        }
        for id in 1..=6u32 {
            let (received, stale) = walk.get(&id).copied().unwrap_or_default();
            let c = self.rib.peer_counters(PeerId(id)).unwrap_or_default();
            assert_eq!(
                (c.received, c.stale),
                (received, stale),
                "step {step}: peer {id} counters"
            );
        }
        for (&id, &is_up) in &self.up.clone() {
            if !is_up {
                continue;
            }
            let mut full: View = HashMap::new();
            for f in [AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST] {
                for (_, u) in self.rib.route_refresh(PeerId(id), f).outbound {
                    for p in u.announced {
                        full.insert(p, u.attributes.clone().unwrap());
                    }
                }
            }
            let view = self.views.entry(id).or_default();
            assert_eq!(
                full.len(),
                view.len(),
                "step {step}: peer {id} was sent a different set of prefixes than it should have"
            );
            for (p, a) in &full {
                assert_eq!(
                    view.get(p).map(|x| &**x),
                    Some(&**a),
                    "step {step}: peer {id} prefix {p}"
                );
            }
            assert_eq!(
                self.rib.advertised_count(PeerId(id)),
                view.len(),
                "step {step}: peer {id} counter"
            );
        }
    }
}

#[test]
fn emitted_diffs_reproduce_the_adj_ribs_out_and_the_loc_rib() {
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut h = Harness::new();
        let pool = prefixes();
        for id in 1..=6u32 {
            h.up.insert(id, true);
            h.views.insert(id, HashMap::new());
            let info = h.infos[&id].clone();
            let out = h.both(|r| r.peer_up(PeerId(id), info.clone()).unwrap());
            h.absorb(out);
        }
        for step in 0..600 {
            let id = 1 + rng.below(6) as u32;
            let is_up = h.up[&id];
            let op = rng.below(100);
            let out = if !is_up && op < 60 {
                h.up.insert(id, true);
                h.views.insert(id, HashMap::new());
                let info = h.infos[&id].clone();
                h.both(|r| r.peer_up(PeerId(id), info.clone()).unwrap())
            } else if !is_up {
                h.both(|r| r.sweep_stale(PeerId(id)))
            } else if op < 55 {
                let n = 1 + rng.below(6) as usize;
                let v6 = rng.below(4) == 0;
                let chosen: Vec<Prefix> = (0..n)
                    .map(|_| pool[rng.below(pool.len() as u64) as usize])
                    .filter(|p| matches!(p, Prefix::V6(_)) == v6)
                    .collect();
                let a = random_attrs(&mut rng, id, h.infos[&id].remote_asn, v6);
                let u = Update {
                    attributes: Some(Arc::new(a)),
                    announced: chosen.into(),
                    ..Default::default()
                };
                h.both(|r| r.apply_update(PeerId(id), &u).unwrap())
            } else if op < 75 {
                let n = 1 + rng.below(6) as usize;
                let w: Vec<Prefix> = (0..n)
                    .map(|_| pool[rng.below(pool.len() as u64) as usize])
                    .collect();
                let u = Update {
                    withdrawn: w.into(),
                    ..Default::default()
                };
                h.both(|r| r.apply_update(PeerId(id), &u).unwrap())
            } else if op < 80 {
                let f = if rng.below(2) == 0 {
                    AddressFamily::IPV4_UNICAST
                } else {
                    AddressFamily::IPV6_UNICAST
                };
                let u = Update {
                    end_of_rib: Some(f),
                    ..Default::default()
                };
                h.both(|r| r.apply_update(PeerId(id), &u).unwrap())
            } else if op < 86 {
                h.up.insert(id, false);
                h.views.remove(&id);
                let retain = rng.below(2) == 0;
                h.both(|r| r.peer_down(PeerId(id), retain))
            } else if op < 93 {
                let p = pool[rng.below(pool.len() as u64) as usize];
                let nh = (rng.below(2) == 0)
                    .then(|| ip("192.0.2.200"))
                    .filter(|_| matches!(p, Prefix::V4(_)));
                h.both(|r| r.originate(p, nh))
            } else {
                let p = pool[rng.below(pool.len() as u64) as usize];
                h.both(|r| r.withdraw_local(p))
            };
            h.absorb(out);
            h.check(step);
        }
        let (a, w, b) = h.seen;
        assert!(
            a > 500 && w > 200 && b > 300,
            "seed {seed}: too little happened: {:?}",
            h.seen
        );
    }
}

#[test]
fn the_best_path_does_not_depend_on_arrival_order() {
    let mut rng = Rng(0x5eed);
    for round in 0..200 {
        let mut attrs: Vec<(u32, PathAttributes)> = Vec::new();
        for id in 1..=6u32 {
            if rng.below(3) == 0 {
                continue;
            }
            let asn = infos()[&id].remote_asn;
            let mut a = random_attrs(&mut rng, id, asn, false);
            a.as_path.segments.retain(
                |s| !matches!(s, tortie_bgp::types::AsPathSegment::Sequence(v) if v.contains(&LOCAL_AS)),
            );
            attrs.push((id, a));
        }
        if attrs.is_empty() {
            continue;
        }
        let mut results = Vec::new();
        for rotation in 0..attrs.len() {
            let mut h = Harness::new();
            for id in 1..=6u32 {
                h.rib.peer_up(PeerId(id), h.infos[&id].clone()).unwrap();
            }
            let mut order: Vec<&(u32, PathAttributes)> = attrs.iter().collect();
            order.rotate_left(rotation);
            if rotation % 2 == 1 {
                order.reverse();
            }
            for (id, a) in order {
                h.rib
                    .apply_update(PeerId(*id), &announce(&["10.0.0.0/24"], a.clone()))
                    .unwrap();
            }
            let best = h.rib.best(pfx("10.0.0.0/24"));
            let explained: Vec<_> = h
                .rib
                .explain(pfx("10.0.0.0/24"))
                .into_iter()
                .map(|c| (c.peer, c.best, c.ecmp, c.lost_because))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            results.push((best, explained));
        }
        assert!(
            results.windows(2).all(|w| w[0] == w[1]),
            "round {round}: {results:#?}"
        );
    }
}
