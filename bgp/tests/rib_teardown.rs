//! A full-table peer teardown in steps (`Rib::peer_down_steps` +
//! `Rib::remove_step`, as the RIB task runs it) keeps the heap low — a few
//! bytes per prefix, not a `BestPathChange` and a withdrawal per prefix at
//! once — and changes exactly what the one-shot `Rib::peer_down` changes.
//! Live heap is counted by a global allocator; this file holds a single
//! test, so nothing else allocates meanwhile.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use tortie_bgp::heap;
use tortie_bgp::rib::{PeerId, PeerInfo, Rib, RibConfig, RibOutput};
use tortie_bgp::types::{AsPath, Ipv4Prefix, PathAttributes, Prefix};
use tortie_bgp::wire::Update;

#[global_allocator]
static GLOBAL: tortie_bgp::heap::CountingAlloc = tortie_bgp::heap::CountingAlloc;

const N: u32 = 40_000;
const STEP: usize = 1024;
const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);

fn prefix_of(i: u32) -> Prefix {
    Prefix::V4(Ipv4Prefix::new(Ipv4Addr::from(0x0a00_0000 + (i << 4)), 28).unwrap())
}

fn up(rib: &mut Rib, id: u32, asn: u32) {
    let a = Ipv4Addr::new(198, 18, 0, id as u8);
    drop(
        rib.peer_up(
            PeerId(id),
            PeerInfo::new(IpAddr::V4(a), asn, a, IpAddr::V4(LOCAL)),
        )
        .unwrap(),
    );
}

/// Peer `id` announces prefixes `range` with AS_PATH `asn` (`asn 65099` on
/// odd prefixes when `mixed`, so those lose to another peer's shorter path).
fn announce(rib: &mut Rib, id: u32, asn: u32, range: std::ops::Range<u32>, mixed: bool) {
    let attrs = |long: bool| {
        let mut path = vec![asn];
        if long {
            path.push(65099);
        }
        Arc::new(PathAttributes {
            as_path: AsPath::sequence(path),
            next_hop: Some(IpAddr::V4(Ipv4Addr::new(198, 18, 0, id as u8))),
            ..PathAttributes::default()
        })
    };
    let (short, long) = (attrs(false), attrs(true));
    for i in range {
        let u = Update {
            attributes: Some(if mixed && i % 2 == 1 {
                long.clone()
            } else {
                short.clone()
            }),
            announced: vec![prefix_of(i)].into(),
            ..Update::default()
        };
        drop(rib.apply_update(PeerId(id), &u).unwrap());
    }
}

/// Peer 1 has N prefixes, peer 3 half of them (a shorter path on odd ones),
/// peer 2 has none and receives exports.
fn build() -> Rib {
    let mut cfg = RibConfig::new(64512, LOCAL);
    // Three external peers that hear each other's routes (transit allowed).
    cfg.ebgp_requires_policy = false;
    let mut rib = Rib::new(cfg);
    up(&mut rib, 1, 65001);
    up(&mut rib, 2, 65002);
    up(&mut rib, 3, 65003);
    announce(&mut rib, 1, 65001, 0..N, false);
    announce(&mut rib, 3, 65003, 0..N / 2, true);
    rib
}

/// A prefix's reported state: its next hops and best path, or gone.
type State = Option<(Vec<IpAddr>, Arc<PathAttributes>)>;

/// Everything observable of a teardown: per prefix its reported state, per
/// peer the prefixes withdrawn and announced (with the attributes).
#[derive(Default, PartialEq, Debug)]
struct Seen {
    best: BTreeMap<Prefix, State>,
    withdrawn: BTreeMap<(PeerId, Prefix), usize>,
    announced: BTreeMap<(PeerId, Prefix), Arc<PathAttributes>>,
}

impl Seen {
    fn absorb(&mut self, out: RibOutput) {
        for c in out.best_changes {
            let prev = self
                .best
                .insert(c.prefix, c.attributes.map(|a| (c.next_hops.to_vec(), a)));
            assert!(prev.is_none(), "{} reported twice", c.prefix);
        }
        for (peer, u) in out.outbound {
            for p in u.withdrawn {
                *self.withdrawn.entry((peer, p)).or_default() += 1;
            }
            for p in u.announced {
                let a = u.attributes.clone().unwrap();
                assert!(self.announced.insert((peer, p), a).is_none());
            }
        }
    }
}

/// Peak heap above the RIB's during a stepped teardown that keeps nothing
/// of the output (the RIB task hands each step on before the next).
fn stepped_peak_bytes_per_prefix() -> f64 {
    let mut rib = build();
    let before = heap::reset_peak();
    let mut r = rib.peer_down_steps(PeerId(1), false);
    let mut steps = 0;
    while let Some(out) = rib.remove_step(&mut r, STEP) {
        drop(out);
        steps += 1;
    }
    let peak = heap::peak_bytes() - before;
    assert_eq!(steps, (N as usize).div_ceil(STEP));
    assert_eq!(rib.loc_rib_len(), (N / 2) as usize);
    peak as f64 / f64::from(N)
}

fn one_shot_peak_bytes_per_prefix() -> f64 {
    let mut rib = build();
    let before = heap::reset_peak();
    drop(rib.peer_down(PeerId(1), false));
    let peak = heap::peak_bytes() - before;
    peak as f64 / f64::from(N)
}

#[test]
fn stepped_teardown_is_small_and_changes_what_the_one_shot_changes() {
    let stepped = stepped_peak_bytes_per_prefix();
    let one_shot = one_shot_peak_bytes_per_prefix();
    eprintln!("teardown peak: stepped {stepped:.1} B/prefix, one-shot {one_shot:.1} B/prefix");
    // The prefix list (8 B per IPv4 prefix) plus one step's output (~7 B
    // per prefix at this N: 1024 changes of 80 B and withdrawals of 32 B);
    // anything holding a record per prefix (a withdrawal alone is 32 B) is
    // far above. The one-shot output is ~80 B per change plus 32 per
    // withdrawal per peer.
    assert!(stepped <= 20.0, "stepped teardown: {stepped:.1} B/prefix");
    assert!(one_shot >= 4.0 * stepped, "one-shot {one_shot:.1} B/prefix");

    // Same observable result, step by step or at once.
    let mut a = build();
    let mut whole = Seen::default();
    whole.absorb(a.peer_down(PeerId(1), false));
    let mut b = build();
    let mut stepped = Seen::default();
    let mut r = b.peer_down_steps(PeerId(1), false);
    assert_eq!(r.remaining(), N as usize);
    while let Some(out) = b.remove_step(&mut r, STEP) {
        stepped.absorb(out);
    }
    assert!(r.is_done());
    assert_eq!(whole.best.len(), N as usize);
    // Peer 2 loses the prefixes only peer 1 had and gets peer 3's path for
    // the rest; peer 3 had peer 1's path everywhere (it won every tie or
    // was shorter) and loses all: gone, or its own is now best.
    let to = |s: &Seen, id: u32| s.withdrawn.keys().filter(|(p, _)| p.0 == id).count();
    assert_eq!(to(&whole, 2), (N / 2) as usize);
    assert_eq!(to(&whole, 3), N as usize);
    assert_eq!(whole.announced.len(), (N / 2) as usize);
    assert_eq!(whole, stepped);
    let loc = |r: &Rib| {
        let mut v: Vec<_> = r.loc_rib().collect();
        v.sort_by_key(|c| c.prefix);
        v
    };
    assert_eq!(loc(&a), loc(&b));
    assert_eq!(a.peer_counters(PeerId(1)), None);
    assert_eq!(b.peer_counters(PeerId(1)), None);
    assert_eq!(a.peer_counters(PeerId(2)), b.peer_counters(PeerId(2)));
    assert_eq!(a.peer_counters(PeerId(3)), b.peer_counters(PeerId(3)));
    // Nothing left to do.
    assert!(b.remove_step(&mut r, STEP).is_none());
}
