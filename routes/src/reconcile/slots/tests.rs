//! Tests of the slots (slots.rs): sides, key forms, the directory's leaves.

use super::*;
use crate::types::KernelRoute;
use std::hash::BuildHasher;
use std::sync::Arc;

#[test]
fn emptied_maps_give_their_capacity_back() {
    let r: Shared = Arc::new(KernelRoute::Blackhole);
    let mut s = Slots::default();
    let nets: Vec<IpNetwork> = (0..100_000u32)
        .map(|i| IpNetwork::V4(Ipv4Network::new((0x0a00_0000 + i).into(), 32).unwrap()))
        .collect();
    for p in &nets {
        s.set_desired(*p, r.clone());
    }
    let full = s.maps.v4.capacity();
    assert!(full >= 100_000);
    for p in &nets[..99_000] {
        s.take_desired(p);
    }
    assert_eq!(s.maps.v4.len(), 1000);
    let cap = s.maps.v4.capacity();
    assert!(cap < full / 8, "{cap} of {full}");
}

#[test]
fn entries_are_small_and_routes_go_with_their_last_use() {
    use std::mem::size_of;
    assert_eq!(size_of::<(Near4, Slot)>(), 11);
    assert_eq!(size_of::<(Short6, Slot)>(), 15);
    assert_eq!(size_of::<(Ipv6Network, Slot)>(), 23);
    let (a, b): (Shared, Shared) = (
        Arc::new(KernelRoute::Blackhole),
        Arc::new(KernelRoute::Blackhole),
    );
    let p: IpNetwork = "10.0.0.0/24".parse().unwrap();
    let q: IpNetwork = "10.0.1.0/24".parse().unwrap();
    let mut s = Slots::default();
    s.set_desired(p, a.clone());
    s.set_desired(q, a.clone());
    s.set_kernel(p, b.clone());
    assert_eq!(s.routes_held(), 2);
    assert!(Arc::ptr_eq(s.kernel(&p).unwrap(), &b));
    let mut sides = s.sides_mut(&p).unwrap();
    assert!(sides.settled(), "an equal route satisfies");
    let (wrote, prev) = sides.write_desired();
    assert!(Arc::ptr_eq(s.routes.get(prev).unwrap(), &b));
    assert!(Arc::ptr_eq(s.routes.get(wrote).unwrap(), &a));
    assert!(Arc::ptr_eq(s.kernel(&p).unwrap(), &a));
    assert_eq!(s.routes_held(), 2, "the request holds b until settled");
    s.settled(prev);
    assert_eq!(s.routes_held(), 1, "b has no use left");
    s.routes.drop_spent();
    assert_eq!(Arc::strong_count(&b), 1, "and is dropped");
    s.take_desired(&q);
    s.take_desired(&p);
    s.take_kernel(&p);
    assert_eq!((s.maps.len(), s.routes_held()), (0, 0));
    s.routes.drop_spent();
    assert_eq!(Arc::strong_count(&a), 1);
    // A freed id is reused.
    s.set_desired(q, b.clone());
    assert_eq!(s.routes.ids(), 2);
    assert_eq!(s.routes_held(), 1);
}

#[test]
fn packed_prefixes_fill_the_leaves_by_share_and_any_length_has_one() {
    let r: Shared = Arc::new(KernelRoute::Blackhole);
    let mut s = Slots::default();
    // 4096 consecutive /28s and /48s: 256 runs of 16, one in each slice.
    for i in 0..4096u32 {
        let v4 = Ipv4Network::new((0x0a00_0000 + (i << 4)).into(), 28).unwrap();
        let o = (0xfd00_0000_0000_u128 + u128::from(i)) << 80;
        let v6 = Ipv6Network::new(o.into(), 48).unwrap();
        s.set_desired(v4.into(), r.clone());
        s.set_desired(v6.into(), r.clone());
    }
    let shares: Vec<usize> = SLICE_STARTS
        .windows(2)
        .map(|w| 16 * usize::from(w[1] - w[0]))
        .collect();
    assert_eq!(s.maps.v4.leaf_lens(), shares);
    assert_eq!(s.maps.v6.leaf_lens(), shares);
    let leaf =
        |i: u32| Near4(Ipv4Network::new((0x0a00_0000 + (i << 4)).into(), 28).unwrap()).leaf();
    assert!((0..16).all(|i| leaf(i) == leaf(0)), "a run in one leaf");
    // Every length, /0 and /32 or /64 included, finds its slot again.
    let ends = [
        "0.0.0.0/0",
        "10.0.0.0/1",
        "255.255.255.255/32",
        "::/0",
        "ff00::/8",
        "2001:db8:0:ffff::/64",
    ];
    for n in ends {
        s.set_desired(n.parse().unwrap(), r.clone());
    }
    for n in ends {
        assert!(s.is_desired(&n.parse().unwrap()), "{n}");
        s.take_desired(&n.parse().unwrap());
    }
    assert_eq!(s.maps.len(), 8192);
}

#[test]
fn leaf_shares_span_one_octave() {
    for (j, start) in SLICE_STARTS.iter().enumerate() {
        let want = (256.0 * ((j as f64 / LEAVES as f64).exp2() - 1.0)).round();
        assert_eq!(f64::from(*start), want, "leaf {j}");
    }
    assert_eq!(LEAF_OF_SLICE[10], 0);
    assert_eq!(LEAF_OF_SLICE[11], 1);
    assert_eq!(LEAF_OF_SLICE[255], 15);
}

#[test]
fn the_directory_keeps_its_load_at_every_size() {
    // Equal leaves double together: 16 x 7/16 of their capacity just
    // after (2.29 buckets per prefix). Unequal ones double at sizes
    // spread over an octave: at most ~1.75 buckets (capacity 7/8 of
    // them) per prefix, at every size of a packed table.
    let r: Shared = Arc::new(KernelRoute::Blackhole);
    let mut s = Slots::default();
    let mut worst = 0.0f64;
    for i in 0..(18u32 << 12) {
        let p = Ipv4Network::new((0x0a00_0000 + (i << 4)).into(), 28).unwrap();
        s.set_desired(p.into(), r.clone());
        let n = i as usize + 1;
        if n >= 6 << 12 && n.is_multiple_of(1 << 12) {
            let per = s.maps.v4.capacity() as f64 * 8.0 / 7.0 / n as f64;
            worst = worst.max(per);
        }
    }
    assert!(worst > 1.4 && worst < 1.8, "{worst} buckets per prefix");
}

#[test]
fn prefixes_aimed_at_one_leaf_cost_one_table() {
    // Every run in slice 0 (the 8 bits above each /32's run are zero):
    // one leaf holds them all, as one ordinary table would.
    let r: Shared = Arc::new(KernelRoute::Blackhole);
    let mut s = Slots::default();
    let mut one = std::collections::HashMap::new();
    for i in 0..20_000u32 {
        let a = (i >> 4) << 12 | (i & 0xf);
        s.set_desired(Ipv4Network::new(a.into(), 32).unwrap().into(), r.clone());
        one.insert(a, ());
    }
    let lens = s.maps.v4.leaf_lens();
    assert_eq!(lens[0], 20_000);
    assert_eq!(s.maps.v4.capacity(), one.capacity());
}

#[test]
fn slots_track_both_sides_and_drop_empty_ones() {
    let p: IpNetwork = "10.0.0.0/24".parse().unwrap();
    let q: IpNetwork = "2001:db8::/64".parse().unwrap();
    let r: Shared = Arc::new(KernelRoute::Blackhole);
    let mut s = Slots::default();
    assert!(s.set_desired(p, r.clone()).is_none());
    assert!(s.set_kernel(p, r.clone()).is_none());
    assert_eq!(s.desired_len(), 1);
    assert!(s.take_desired(&p).is_some());
    assert_eq!(s.desired_len(), 0);
    assert!(s.in_kernel(&p) && !s.is_desired(&p));
    assert!(s.take_kernel(&p).is_some());
    assert_eq!(s.maps.len(), 0, "empty slot removed");

    s.set_desired(p, r.clone());
    s.set_kernel(p, r.clone());
    let mut fresh = FastMap::default();
    fresh.insert(q, r.clone());
    s.replace_kernel(fresh);
    assert!(s.is_desired(&p) && !s.in_kernel(&p));
    assert!(s.in_kernel(&q) && !s.is_desired(&q));
    assert_eq!(s.kernel_iter().count(), 1);
    assert_eq!(s.desired_iter().count(), 1);
    assert_eq!(s.iter().count(), 2);
}

#[test]
fn ipv6_keys_short_and_long_round_trip() {
    let r: Shared = Arc::new(KernelRoute::Blackhole);
    let mut s = Slots::default();
    let nets: Vec<IpNetwork> = [
        "2001:db8::/64",
        "2001:db8:1::/48",
        "::/0",
        "2001:db8::1/128",
    ]
    .iter()
    .chain(&["2001:db8::1/64", "2001:db8::8000:0:0:0/65"])
    .map(|n| n.parse().unwrap())
    .collect();
    for p in &nets {
        s.set_desired(*p, r.clone());
    }
    assert_eq!((s.maps.v6.len(), s.maps.v6_long.len()), (3, 3));
    let n: Ipv6Network = "2001:db8::/64".parse().unwrap();
    let Key6::Short(k) = key6(&n) else {
        panic!("{n} is short")
    };
    // Hashed by run: its neighbour /64 (the next one) has the next bucket.
    let h = crate::reconcile::hash::RunSeeded::default();
    let Key6::Short(next) = key6(&"2001:db8:0:1::/64".parse().unwrap()) else {
        panic!("short")
    };
    assert_eq!(h.hash_one(next) & 0xf, (h.hash_one(k) & 0xf) + 1);
    let mut seen: Vec<IpNetwork> = s.desired_iter().map(|(p, _)| p).collect();
    let mut want = nets.clone();
    seen.sort();
    want.sort();
    assert_eq!(seen, want, "every prefix comes back exactly");
    for p in &nets {
        assert!(s.is_desired(p));
        s.take_desired(p);
    }
    assert_eq!(s.maps.len(), 0);
}

#[test]
fn desire_and_write_side_in_one_lookup() {
    let p: IpNetwork = "10.0.0.0/24".parse().unwrap();
    let mut s = Slots::default();
    let Desire::Changed(ch) = s.desire(p, Arc::new(KernelRoute::Blackhole), None, never) else {
        panic!("a new desire is a change");
    };
    assert!(ch.old.is_none() && ch.sides.kernel().is_none());
    assert_eq!(**ch.sides.desired().unwrap(), KernelRoute::Blackhole);
    assert!(matches!(
        s.desire(p, Arc::new(KernelRoute::Blackhole), None, never),
        Desire::Same
    ));
    assert_eq!(s.desired_len(), 1);
    let mut sides = s.sides_mut(&p).unwrap();
    assert!(sides.desired().is_some() && sides.kernel().is_none());
    let (wrote, prev) = sides.write_desired();
    assert!(wrote.is_some() && !prev.is_some());
    assert!(s.in_kernel(&p));
    // The installed count follows every side (one blackhole, IPv4).
    let one = Installed {
        all: [0, 0, 1],
        ipv6: [0; 3],
    };
    assert_eq!((s.installed(), s.count_installed()), (one, one));
    // Changed since (a notification): the undo leaves it alone.
    let other = Arc::new(KernelRoute::Blackhole);
    s.set_kernel(p, other.clone());
    assert_eq!(s.installed(), one, "an equal route satisfies");
    s.undo_kernel(p, wrote, prev);
    assert!(Arc::ptr_eq(s.kernel(&p).unwrap(), &other));
    // Unchanged: back to the route before.
    let (wrote, prev) = s.sides_mut(&p).unwrap().write_desired();
    assert!(!Arc::ptr_eq(s.kernel(&p).unwrap(), &other));
    s.undo_kernel(p, wrote, prev);
    assert!(Arc::ptr_eq(s.kernel(&p).unwrap(), &other));
    assert_eq!((s.installed(), s.count_installed()), (one, one));
    // A refused delete of a slot it emptied puts the slot back.
    s.take_desired(&p);
    let mut sides = s.sides_mut(&p).unwrap();
    let prev = sides.take_kernel();
    assert!(prev.is_some() && sides.is_empty());
    s.remove_emptied(&p);
    s.undo_kernel(p, Id::NONE, prev);
    assert!(Arc::ptr_eq(s.kernel(&p).unwrap(), &other) && !s.is_desired(&p));
    // Applied this time: nothing is left, no use held.
    let mut sides = s.sides_mut(&p).unwrap();
    let prev = sides.take_kernel();
    assert!(sides.is_empty());
    s.remove_emptied(&p);
    s.settled(prev);
    assert_eq!((s.maps.len(), s.routes_held()), (0, 0));
    assert_eq!(s.installed(), s.count_installed());
}

/// A `write` for [`Slots::desire`] that must not be asked.
fn never(_: Id, _: &KernelRoute) -> bool {
    panic!("write asked outside the fast path")
}

/// Uses held by the slots' sides and by `requests` (their `prev`s) add up
/// to the uses [`Handles`] counts, and the installed count is right.
fn balanced(s: &Slots, requests: &[Id]) -> bool {
    let (uses, sides) = s.uses_and_sides();
    uses == sides + requests.iter().filter(|p| p.is_some()).count()
        && s.installed() == s.count_installed()
}

#[test]
fn a_new_prefix_of_the_last_route_is_desired_and_written_in_one_step() {
    let r: Shared = Arc::new(KernelRoute::Blackhole);
    let other: Shared = Arc::new(KernelRoute::Blackhole);
    let p: IpNetwork = "10.0.0.0/24".parse().unwrap();
    let q: IpNetwork = "2001:db8::/64".parse().unwrap();
    let mut s = Slots::default();
    // Not the last route held: the general path (the change).
    let kind = Some(RouteKind::Blackhole);
    assert!(matches!(
        s.desire(p, r.clone(), kind, never),
        Desire::Changed(_)
    ));
    // Now it is: `q` is new, written at once with `r`'s id.
    let mut asked = None;
    let got = s.desire(q, r.clone(), kind, |id, route| {
        asked = Some(id);
        *route == KernelRoute::Blackhole
    });
    assert!(matches!(got, Desire::New { written: true }));
    let id = asked.expect("write asked");
    assert!(Arc::ptr_eq(s.kernel(&q).unwrap(), &r) && Arc::ptr_eq(s.desired(&q).unwrap(), &r));
    assert_eq!(s.desired_len(), 2);
    assert!(s.is_installed(&q) && !s.is_installed(&p));
    assert!(balanced(&s, &[]), "the request holds no use");
    // Refused: the kernel side goes back to none, the desire stays.
    s.undo_kernel(q, id, Id::NONE);
    assert!(!s.in_kernel(&q) && s.is_desired(&q));
    assert!(balanced(&s, &[]));
    // A prefix that holds a route takes the general path, as does
    // another route, or no fast path asked for.
    assert!(matches!(s.desire(q, r.clone(), kind, never), Desire::Same));
    let n: IpNetwork = "10.0.1.0/24".parse().unwrap();
    assert!(matches!(
        s.desire(n, other.clone(), kind, never),
        Desire::Changed(_)
    ));
    let m: IpNetwork = "10.0.2.0/24".parse().unwrap();
    assert!(matches!(
        s.desire(m, r.clone(), None, never),
        Desire::Changed(_)
    ));
    // Not written (the encoding failed): desired only.
    let k: IpNetwork = "10.0.3.0/24".parse().unwrap();
    s.desire(k, r.clone(), None, never);
    let l: IpNetwork = "10.0.4.0/24".parse().unwrap();
    assert!(matches!(
        s.desire(l, r.clone(), kind, |_, _| false),
        Desire::New { written: false }
    ));
    assert!(s.is_desired(&l) && !s.in_kernel(&l));
    assert!(balanced(&s, &[]));
    for x in [p, q, n, m, k, l] {
        s.take_desired(&x);
    }
    s.routes.drop_spent();
    assert_eq!((s.maps.len(), s.routes_held()), (0, 0));
    assert_eq!((Arc::strong_count(&r), Arc::strong_count(&other)), (1, 1));
}

/// `undesire` as `unset` uses it: the closure's delete empties the slot
/// and the slot is dropped in the same lookup; a slot the closure leaves a
/// side in stays. A miss changes nothing and never grows a full table
/// (`entry` would reserve room for an insert).
#[test]
fn undesire_drops_the_slot_it_empties_in_one_lookup_and_a_miss_grows_nothing() {
    let r: Shared = Arc::new(KernelRoute::Blackhole);
    let mut s = Slots::default();
    let net = |i: u32| IpNetwork::V4(Ipv4Network::new((0x0a00_0000 + i).into(), 32).unwrap());
    let (a, b) = (net(1), net(2));
    for p in [a, b] {
        s.set_desired(p, r.clone());
        s.sides_mut(&p).unwrap().write_desired();
    }
    // Deleted by the closure: gone, its kernel use given back once settled.
    let prev = s
        .undesire(&a, |old, sides| {
            assert!(Arc::ptr_eq(&old, &r));
            sides.take_kernel()
        })
        .unwrap();
    s.settled(prev);
    assert!(s.get(&a).is_none(), "an emptied slot is dropped");
    // Left in the kernel (an adopted route, say): kept, no longer desired.
    assert!(s.undesire(&b, |_, sides| sides.is_empty()) == Some(false));
    assert!(s.in_kernel(&b) && !s.is_desired(&b));
    // Not desired any more: nothing run, nothing changed.
    assert!(s.undesire(&b, |_, _| ()).is_none() && s.in_kernel(&b));
    assert_eq!(s.installed(), s.count_installed());

    // A full table: a miss leaves its capacity as it was.
    let mut m: std::collections::HashMap<u32, Slot> = std::collections::HashMap::new();
    m.insert(0, Slot::default());
    let mut k = 1;
    while m.len() < m.capacity() {
        m.insert(k, Slot::default());
        k += 1;
    }
    let full = m.capacity();
    assert!(update_slot(&mut m, u32::MAX, 0, |_| Some(())).is_none());
    assert_eq!(m.capacity(), full, "a miss grew a full table");
    // Hit in a full table: emptied (it was), dropped.
    assert_eq!(update_slot(&mut m, 0, usize::MAX, |_| Some(7)), Some(7));
    assert!(!m.contains_key(&0) && m.len() == k as usize - 1);
    // With room (the entry path): a slot left a side is kept, an emptied
    // one dropped.
    let kept = Slot {
        desired: Id::NONE,
        kernel: s.get(&b).unwrap().kernel,
    };
    let mut m: std::collections::HashMap<u32, Slot> = std::collections::HashMap::with_capacity(8);
    m.extend([(0, kept), (1, Slot::default())]);
    assert!(m.len() < m.capacity());
    assert_eq!(update_slot(&mut m, 0, usize::MAX, |_| Some(())), Some(()));
    assert_eq!(update_slot(&mut m, 1, usize::MAX, |_| Some(())), Some(()));
    assert!(m.contains_key(&0) && !m.contains_key(&1));
}
