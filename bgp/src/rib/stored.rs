//! The compact form in which the RIB stores attribute sets.
//!
//! The codec and the public API speak `Arc<PathAttributes>` (every attribute
//! RFC 4271 §5 and its extensions define, as plain fields: ~200 bytes plus
//! the AS_PATH's allocations). Most routes carry far less: ORIGIN, an AS_PATH
//! that is one short AS_SEQUENCE, an IPv4 NEXT_HOP, maybe MULTI_EXIT_DISC and
//! LOCAL_PREF. [`StoredAttrs::Small`] holds exactly such a set in 24 bytes
//! (the values in five 32-bit slots). [`StoredAttrs::Small6`] is the same
//! for a set whose next hop is IPv6 (MP_REACH_NLRI's, RFC 4760 §3: a global
//! address and maybe a link-local one, RFC 2545 §3) in the same 24 bytes:
//! three slots and a pointer to the next hops, which one peer's routes share
//! ([`StoredCache`] keeps the recent ones), so a unique IPv6 path costs what
//! an IPv4 one does. Anything else is kept as [`StoredAttrs::Full`], the
//! shared `Arc<PathAttributes>` itself. The form is canonical: a set that
//! fits `Small` or `Small6` is always stored so, so equal sets compare and
//! hash equal in every form.
//!
//! Data flow: import turns the decoder's `Arc<PathAttributes>` into a
//! `StoredAttrs` and shares it through [`StoredCache::store`]; the decision process
//! and export read the fields through accessors; whoever needs the public
//! form back (best-path changes, `explain`, export) gets it from
//! [`StoredAttrs::to_full`] (an allocation for `Small`, an `Arc` clone for
//! `Full`), or from the caller's own `Arc` when the path was just imported.
//!
//! [`StoredCache`] shares equal sets between routes without an entry per
//! set: a fixed direct-mapped table of recently seen sets indexed by hash.
//! UPDATEs repeating one set (the decoder shares them already) and peers
//! announcing the same sets in the same order share one allocation; equal
//! sets far apart in time may be stored twice, which costs no more than a
//! set of its own. Code comparing paths therefore compares sets by content
//! ([`same`]), with the pointer compare as the fast path. A slot keeps its
//! set's hash tag, and a set new to an occupied slot takes it only when
//! its tag was the last one to miss there (its second sighting): so a set
//! of its own per route (a peer with one AS_PATH per prefix) never reads
//! or releases the old set in the slot, which is long out of the cache —
//! that miss was a sixth of the agent's CPU in a 100k one-prefix-per-UPDATE
//! load (lab/bench/README.md, session 12 cpfix lane).

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::hash::RibBuildHasher;
use crate::types::{AsPath, AsPathSegment, Origin, PathAttributes};

/// Slots of a `Small` set: NEXT_HOP, MED, LOCAL_PREF (each if present), then the ASNs.
const SLOTS: usize = 5;
/// Slots of a `Small6` set: MED, LOCAL_PREF (each if present), then the ASNs.
const SLOTS6: usize = 3;
const HAS_NEXT_HOP: u8 = 1;
const HAS_MED: u8 = 2;
const HAS_LOCAL_PREF: u8 = 4;
const ATOMIC_AGGREGATE: u8 = 8;
/// The number of ASNs (0..=5) is kept in bits 4..7 of `flags`.
const ASN_SHIFT: u8 = 4;

/// An attribute set as the RIB stores it; see the module doc.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum StoredAttrs {
    /// ORIGIN, ATOMIC_AGGREGATE, an optional IPv4 NEXT_HOP, MED and
    /// LOCAL_PREF, and an AS_PATH that is empty or one AS_SEQUENCE; nothing
    /// else. `slots` holds the present values in that order, then the ASNs;
    /// unused slots are zero.
    Small {
        origin: Origin,
        flags: u8,
        slots: [u32; SLOTS],
    },
    /// As `Small` with an IPv6 next hop (`flags` has `HAS_NEXT_HOP`) kept in
    /// `next_hops`, and three slots.
    Small6 {
        origin: Origin,
        flags: u8,
        slots: [u32; SLOTS6],
        next_hops: Arc<NextHops6>,
    },
    /// Everything else.
    Full(Arc<PathAttributes>),
}

/// The next hops of an IPv6 MP_REACH_NLRI (RFC 4760 §3): the global address
/// and, when the peer sent 32 bytes, the link-local one (RFC 2545 §3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct NextHops6 {
    global: Ipv6Addr,
    link_local: Option<Ipv6Addr>,
}

/// Same attribute set: the same allocation, or equal content.
pub(crate) fn same(a: &Arc<StoredAttrs>, b: &Arc<StoredAttrs>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

impl StoredAttrs {
    /// The stored form of `a`, unshared (tests; the RIB uses [`StoredCache::store`]).
    #[cfg(test)]
    pub(crate) fn new(a: &Arc<PathAttributes>) -> StoredAttrs {
        Self::small(a, &mut Arc::new).unwrap_or_else(|| StoredAttrs::Full(a.clone()))
    }

    /// The stored form of a set built here, unshared (tests; the RIB uses
    /// [`StoredCache::store_value`]).
    #[cfg(test)]
    pub(crate) fn from_value(a: PathAttributes) -> StoredAttrs {
        match Self::small(&a, &mut Arc::new) {
            Some(s) => s,
            None => StoredAttrs::Full(Arc::new(a)),
        }
    }

    /// The `Small` or `Small6` form of `a` if it fits; `nh6` gives the
    /// (shared) next hops of a `Small6`.
    fn small(
        a: &PathAttributes,
        nh6: &mut impl FnMut(NextHops6) -> Arc<NextHops6>,
    ) -> Option<StoredAttrs> {
        let PathAttributes {
            origin,
            as_path,
            next_hop,
            link_local_next_hop,
            med,
            local_pref,
            atomic_aggregate,
            aggregator,
            communities,
            extended_communities,
            large_communities,
            originator_id,
            cluster_list,
            unknown,
        } = a;
        if aggregator.is_some()
            || originator_id.is_some()
            || !communities.is_empty()
            || !extended_communities.is_empty()
            || !large_communities.is_empty()
            || !cluster_list.is_empty()
            || !unknown.is_empty()
        {
            return None;
        }
        let asns: &[u32] = match as_path.segments.as_slice() {
            [] => &[],
            [AsPathSegment::Sequence(v)] if !v.is_empty() => v,
            _ => return None,
        };
        // The next hop's slot (IPv4) or pointer (IPv6), then MED, LOCAL_PREF
        // and the ASNs in the slots.
        let mut slots = [0u32; SLOTS];
        let mut n = 0;
        let mut flags = 0u8;
        let v6 = match (next_hop, link_local_next_hop) {
            (None, None) => None,
            (Some(IpAddr::V4(nh)), None) => {
                slots[n] = u32::from(*nh);
                n += 1;
                flags |= HAS_NEXT_HOP;
                None
            }
            (Some(IpAddr::V6(global)), link_local) => {
                flags |= HAS_NEXT_HOP;
                Some(NextHops6 {
                    global: *global,
                    link_local: *link_local,
                })
            }
            _ => return None,
        };
        for (v, bit) in [(med, HAS_MED), (local_pref, HAS_LOCAL_PREF)] {
            if let Some(v) = v {
                slots[n] = *v;
                n += 1;
                flags |= bit;
            }
        }
        let room = if v6.is_some() { SLOTS6 } else { SLOTS };
        if n + asns.len() > room {
            return None;
        }
        slots[n..n + asns.len()].copy_from_slice(asns);
        if *atomic_aggregate {
            flags |= ATOMIC_AGGREGATE;
        }
        // asns.len() <= SLOTS here, so it fits the 4 high bits.
        flags |= (asns.len() as u8) << ASN_SHIFT;
        let origin = *origin;
        Some(match v6 {
            None => StoredAttrs::Small {
                origin,
                flags,
                slots,
            },
            Some(nh) => StoredAttrs::Small6 {
                origin,
                flags,
                slots: [slots[0], slots[1], slots[2]],
                next_hops: nh6(nh),
            },
        })
    }

    /// The slot of the value flagged `bit` (NEXT_HOP, MED or LOCAL_PREF);
    /// `bits` are the values kept in slots, in order.
    fn slot(flags: u8, slots: &[u32], bits: &[u8], bit: u8) -> Option<u32> {
        if flags & bit == 0 {
            return None;
        }
        let before = bits
            .iter()
            .take_while(|b| **b != bit)
            .filter(|b| flags & **b != 0)
            .count();
        slots.get(before).copied()
    }

    /// The flags and value slots of a `Small` or `Small6` set, with the
    /// flags of the values kept in the slots; `None` for `Full`.
    fn small_view(&self) -> Option<(u8, &[u32], &'static [u8])> {
        match self {
            StoredAttrs::Small { flags, slots, .. } => {
                Some((*flags, slots, &[HAS_NEXT_HOP, HAS_MED, HAS_LOCAL_PREF]))
            }
            StoredAttrs::Small6 { flags, slots, .. } => {
                Some((*flags, slots, &[HAS_MED, HAS_LOCAL_PREF]))
            }
            StoredAttrs::Full(_) => None,
        }
    }

    /// The value of a `Small`/`Small6` slot flagged `bit`; `None` for `Full`.
    fn small_slot(&self, bit: u8) -> Option<Option<u32>> {
        self.small_view()
            .map(|(flags, slots, bits)| Self::slot(flags, slots, bits, bit))
    }

    /// The ASNs of a `Small` or `Small6` set's AS_SEQUENCE; `None` for `Full`.
    fn small_asns(&self) -> Option<&[u32]> {
        self.small_view().map(|(flags, slots, bits)| {
            let fixed = bits.iter().filter(|b| flags & **b != 0).count();
            let n_asn = usize::from(flags >> ASN_SHIFT);
            slots.get(fixed..fixed + n_asn).unwrap_or(&[])
        })
    }

    pub(crate) fn origin(&self) -> Origin {
        match self {
            StoredAttrs::Small { origin, .. } | StoredAttrs::Small6 { origin, .. } => *origin,
            StoredAttrs::Full(a) => a.origin,
        }
    }

    pub(crate) fn next_hop(&self) -> Option<IpAddr> {
        match self {
            StoredAttrs::Small6 { next_hops, .. } => Some(IpAddr::V6(next_hops.global)),
            StoredAttrs::Full(a) => a.next_hop,
            s => s
                .small_slot(HAS_NEXT_HOP)
                .flatten()
                .map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        }
    }

    /// The link-local next hop beside an IPv6 global one (RFC 2545 §3).
    pub(crate) fn link_local_next_hop(&self) -> Option<Ipv6Addr> {
        match self {
            StoredAttrs::Small6 { next_hops, .. } => next_hops.link_local,
            StoredAttrs::Small { .. } => None,
            StoredAttrs::Full(a) => a.link_local_next_hop,
        }
    }

    pub(crate) fn med(&self) -> Option<u32> {
        match self {
            StoredAttrs::Full(a) => a.med,
            s => s.small_slot(HAS_MED).flatten(),
        }
    }

    pub(crate) fn local_pref(&self) -> Option<u32> {
        match self {
            StoredAttrs::Full(a) => a.local_pref,
            s => s.small_slot(HAS_LOCAL_PREF).flatten(),
        }
    }

    pub(crate) fn originator_id(&self) -> Option<Ipv4Addr> {
        match self {
            StoredAttrs::Full(a) => a.originator_id,
            _ => None,
        }
    }

    /// COMMUNITIES (RFC 1997); a `Small`/`Small6` set has none.
    pub(crate) fn communities(&self) -> &[u32] {
        match self {
            StoredAttrs::Full(a) => &a.communities,
            _ => &[],
        }
    }

    pub(crate) fn cluster_list(&self) -> &[Ipv4Addr] {
        match self {
            StoredAttrs::Full(a) => &a.cluster_list,
            _ => &[],
        }
    }

    /// AS_PATH length for the decision process (see [`AsPath::path_len`]).
    pub(crate) fn path_len(&self) -> usize {
        match self {
            StoredAttrs::Full(a) => a.as_path.path_len(),
            s => s.small_asns().map_or(0, <[u32]>::len),
        }
    }

    /// `asn` appears in the AS_PATH (see [`AsPath::contains`]).
    pub(crate) fn as_path_contains(&self, asn: u32) -> bool {
        match self {
            StoredAttrs::Full(a) => a.as_path.contains(asn),
            s => s.small_asns().is_some_and(|v| v.contains(&asn)),
        }
    }

    /// The AS_PATH has no segments.
    pub(crate) fn as_path_is_empty(&self) -> bool {
        match self {
            StoredAttrs::Full(a) => a.as_path.segments.is_empty(),
            s => s.small_asns().is_some_and(<[u32]>::is_empty),
        }
    }

    /// See [`AsPath::neighbor_as`].
    pub(crate) fn neighbor_as(&self) -> Option<u32> {
        match self {
            StoredAttrs::Full(a) => a.as_path.neighbor_as(),
            s => s.small_asns().and_then(|v| v.first().copied()),
        }
    }

    /// The public form: a new `Arc` for `Small`/`Small6`, the shared one for `Full`.
    pub(crate) fn to_full(&self) -> Arc<PathAttributes> {
        let flags = match self {
            StoredAttrs::Full(a) => return a.clone(),
            StoredAttrs::Small { flags, .. } | StoredAttrs::Small6 { flags, .. } => *flags,
        };
        let asns = self.small_asns().unwrap_or(&[]);
        // `AsPath::sequence` gives the empty path for no ASNs.
        let as_path = AsPath::sequence(asns);
        Arc::new(PathAttributes {
            origin: self.origin(),
            as_path,
            next_hop: self.next_hop(),
            link_local_next_hop: self.link_local_next_hop(),
            med: self.med(),
            local_pref: self.local_pref(),
            atomic_aggregate: flags & ATOMIC_AGGREGATE != 0,
            ..PathAttributes::default()
        })
    }
}

impl crate::policy::RouteAttrs for StoredAttrs {
    fn communities(&self) -> &[u32] {
        StoredAttrs::communities(self)
    }
    fn large_communities(&self) -> &[[u32; 3]] {
        match self {
            StoredAttrs::Full(a) => &a.large_communities,
            _ => &[],
        }
    }
    fn as_path_contains(&self, asn: u32) -> bool {
        StoredAttrs::as_path_contains(self, asn)
    }
    fn origin_as(&self) -> Option<u32> {
        match self {
            StoredAttrs::Full(a) => crate::policy::RouteAttrs::origin_as(&**a),
            s => s.small_asns().and_then(|v| v.last().copied()),
        }
    }
}

/// Direct-mapped slots of the share cache (a power of two): 64 KiB of
/// [`Slot`]s.
const CACHE_SLOTS: usize = 4096;

/// Direct-mapped slots of the IPv6 next-hop cache (a power of two): a
/// few per peer sending IPv6 routes.
const NEXT_HOP_SLOTS: usize = 256;

/// Shares equal stored sets between routes, and the IPv6 next hops of
/// `Small6` sets; see the module doc.
#[derive(Debug, Default)]
pub(crate) struct StoredCache {
    slots: Vec<Slot<StoredAttrs>>,
    next_hops: Vec<Slot<NextHops6>>,
    hasher: RibBuildHasher,
}

/// One slot of a direct-mapped share table: the value it holds with its
/// hash tag (the hash's upper 32 bits), and the tag of the last value that
/// missed here and was not let in.
#[derive(Debug)]
struct Slot<T> {
    held: Option<Arc<T>>,
    tag: u32,
    missed: u32,
}

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Slot {
            held: self.held.clone(),
            tag: self.tag,
            missed: self.missed,
        }
    }
}

impl StoredCache {
    /// The shared stored form of `a`.
    pub(crate) fn store(&mut self, a: &Arc<PathAttributes>) -> Arc<StoredAttrs> {
        let s = StoredAttrs::small(a, &mut |nh| self.next_hops(nh))
            .unwrap_or_else(|| StoredAttrs::Full(a.clone()));
        self.share(s)
    }

    /// The shared stored form of a set built here.
    pub(crate) fn store_value(&mut self, a: PathAttributes) -> Arc<StoredAttrs> {
        let s = match StoredAttrs::small(&a, &mut |nh| self.next_hops(nh)) {
            Some(s) => s,
            None => StoredAttrs::Full(Arc::new(a)),
        };
        self.share(s)
    }

    /// The cached copy of `nh`, or `nh` (which then takes its slot).
    fn next_hops(&mut self, nh: NextHops6) -> Arc<NextHops6> {
        direct_mapped(&mut self.next_hops, NEXT_HOP_SLOTS, &self.hasher, nh)
    }

    /// The shared copy of `s`: the cached one when an equal set sits in its
    /// slot, else `s` (which then takes the slot).
    pub(crate) fn share(&mut self, s: StoredAttrs) -> Arc<StoredAttrs> {
        direct_mapped(&mut self.slots, CACHE_SLOTS, &self.hasher, s)
    }
}

/// The copy of `v` in its slot of the direct-mapped table `slots` (`len`
/// slots, a power of two, allocated on first use) when equal, else a new
/// `Arc` of `v`. The new one takes the slot when the slot is empty, holds a
/// value of the same tag (a hash collision) or saw `v`'s tag miss last time;
/// otherwise the slot only remembers the tag. The held value is read only
/// when the tags match and released only when a value seen twice replaces
/// it: a stream of values each seen once (one set per route) touches the
/// slot alone, not the old value behind it (see the module doc).
fn direct_mapped<T: std::hash::Hash + Eq>(
    slots: &mut Vec<Slot<T>>,
    len: usize,
    hasher: &RibBuildHasher,
    v: T,
) -> Arc<T> {
    if slots.is_empty() {
        slots.resize(
            len,
            Slot {
                held: None,
                tag: 0,
                missed: 0,
            },
        );
    }
    let h = hasher.hash_one(&v);
    let tag = (h >> 32) as u32;
    let Some(slot) = slots.get_mut((h as usize) & (len - 1)) else {
        return Arc::new(v);
    };
    match &slot.held {
        Some(e) if slot.tag == tag && **e == v => return e.clone(),
        Some(_) if slot.tag != tag && slot.missed != tag => {
            slot.missed = tag;
            return Arc::new(v);
        }
        _ => {}
    }
    let a = Arc::new(v);
    slot.held = Some(a.clone());
    slot.tag = tag;
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::RawAttribute;

    fn seq(v: &[u32]) -> AsPath {
        AsPath::sequence(v)
    }

    #[test]
    fn small_layout() {
        assert_eq!(std::mem::size_of::<StoredAttrs>(), 24);
    }

    /// Every set survives the trip through the stored form unchanged, and the
    /// accessors agree with the public fields.
    #[test]
    fn round_trip_and_accessors() {
        let v4 = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        let v6 = Some(IpAddr::V6("2001:db8::1".parse().unwrap()));
        let cases = vec![
            PathAttributes::default(),
            PathAttributes {
                origin: Origin::Incomplete,
                as_path: seq(&[65001, 4_200_000_000]),
                next_hop: v4,
                ..Default::default()
            },
            PathAttributes {
                as_path: seq(&[1, 2, 3, 4, 5]),
                ..Default::default()
            },
            PathAttributes {
                as_path: seq(&[1, 2]),
                next_hop: v4,
                med: Some(0),
                local_pref: Some(200),
                atomic_aggregate: true,
                ..Default::default()
            },
            // Too many values for the slots: Full.
            PathAttributes {
                as_path: seq(&[1, 2, 3]),
                next_hop: v4,
                med: Some(7),
                local_pref: Some(200),
                ..Default::default()
            },
            PathAttributes {
                as_path: seq(&[]),
                ..Default::default()
            },
            PathAttributes {
                as_path: AsPath {
                    segments: vec![
                        AsPathSegment::Sequence(vec![1].into()),
                        AsPathSegment::Set(vec![2, 3].into()),
                    ]
                    .into(),
                },
                next_hop: v4,
                ..Default::default()
            },
            PathAttributes {
                next_hop: v6,
                ..Default::default()
            },
            // IPv6 next hops (Small6): global and link-local, three slots used.
            PathAttributes {
                as_path: seq(&[65001]),
                next_hop: v6,
                link_local_next_hop: Some("fe80::1".parse().unwrap()),
                med: Some(5),
                local_pref: Some(100),
                atomic_aggregate: true,
                ..Default::default()
            },
            PathAttributes {
                origin: Origin::Egp,
                as_path: seq(&[65001, 4_200_000_000, 3]),
                next_hop: v6,
                ..Default::default()
            },
            // Too many values for Small6's three slots: Full.
            PathAttributes {
                as_path: seq(&[1, 2, 3]),
                next_hop: v6,
                med: Some(7),
                ..Default::default()
            },
            // A link-local next hop without an IPv6 global one: Full.
            PathAttributes {
                next_hop: v4,
                link_local_next_hop: Some("fe80::1".parse().unwrap()),
                ..Default::default()
            },
            PathAttributes {
                link_local_next_hop: Some("fe80::1".parse().unwrap()),
                ..Default::default()
            },
            PathAttributes {
                communities: vec![1],
                originator_id: Some(Ipv4Addr::new(10, 0, 0, 1)),
                cluster_list: vec![Ipv4Addr::new(10, 0, 0, 2)],
                unknown: vec![RawAttribute {
                    flags: 0xc0,
                    type_code: 99,
                    value: vec![1],
                }],
                ..Default::default()
            },
        ];
        for (i, pa) in cases.into_iter().enumerate() {
            let a = Arc::new(pa);
            let s = StoredAttrs::new(&a);
            assert_eq!(*s.to_full(), *a, "case {i}");
            assert_eq!(StoredAttrs::from_value((*a).clone()), s, "case {i}");
            assert_eq!(s.origin(), a.origin);
            assert_eq!(s.next_hop(), a.next_hop);
            assert_eq!(s.link_local_next_hop(), a.link_local_next_hop);
            assert_eq!(s.med(), a.med);
            assert_eq!(s.local_pref(), a.local_pref);
            assert_eq!(s.originator_id(), a.originator_id);
            assert_eq!(s.cluster_list(), a.cluster_list.as_slice());
            assert_eq!(s.communities(), a.communities.as_slice());
            {
                use crate::policy::RouteAttrs;
                assert_eq!(RouteAttrs::origin_as(&s), RouteAttrs::origin_as(&*a));
                assert_eq!(s.large_communities(), a.large_communities.as_slice());
            }
            assert_eq!(s.path_len(), a.as_path.path_len());
            assert_eq!(s.neighbor_as(), a.as_path.neighbor_as());
            assert_eq!(s.as_path_is_empty(), a.as_path.segments.is_empty());
            for asn in [1, 2, 3, 65001, 4_200_000_000] {
                assert_eq!(s.as_path_contains(asn), a.as_path.contains(asn));
            }
        }
        let unique = Arc::new(PathAttributes {
            as_path: seq(&[65001, 4_200_000_000]),
            next_hop: v4,
            ..Default::default()
        });
        assert!(matches!(
            StoredAttrs::new(&unique),
            StoredAttrs::Small { .. }
        ));
    }

    /// The benchmark's unique IPv6 paths (issue 15): each set is `Small6`
    /// (24 bytes, as an IPv4 `Small`), and the next hops are one allocation
    /// shared by every set with the same ones.
    #[test]
    fn ipv6_sets_are_small_and_share_their_next_hops() {
        let set = |ll: Option<Ipv6Addr>, i: u32| PathAttributes {
            as_path: seq(&[65001, 4_200_000_000 + i]),
            next_hop: Some(IpAddr::V6("fd12:18::1".parse().unwrap())),
            link_local_next_hop: ll,
            ..Default::default()
        };
        let mut c = StoredCache::default();
        for ll in [None, Some("fe80::1".parse().unwrap())] {
            let sets: Vec<_> = (0..3).map(|i| c.store(&Arc::new(set(ll, i)))).collect();
            let hops: Vec<&Arc<NextHops6>> = sets
                .iter()
                .map(|s| match &**s {
                    StoredAttrs::Small6 { next_hops, .. } => next_hops,
                    other => panic!("not Small6: {other:?}"),
                })
                .collect();
            assert!(!same(&sets[0], &sets[1]));
            assert!(hops.iter().all(|h| Arc::ptr_eq(h, hops[0])));
            // The three sets and the cache's slot hold the one copy.
            assert_eq!(Arc::strong_count(hops[0]), 4);
            assert_eq!(*sets[2].to_full(), set(ll, 2));
            // Built sets (originate_with) share them too.
            let built = c.store_value(set(ll, 7));
            assert!(
                matches!(&*built, StoredAttrs::Small6 { next_hops, .. } if Arc::ptr_eq(next_hops, hops[0]))
            );
        }
    }

    /// A value seen once does not take an occupied slot, so the old value
    /// in it is neither read nor released (the miss that cost a sixth of
    /// the agent's CPU with one set per route); its second sighting does.
    #[test]
    fn a_slot_is_taken_only_by_a_value_seen_twice() {
        let hasher = RibBuildHasher::default();
        // One slot: every value maps to it.
        let mut slots = Vec::new();
        let first = direct_mapped(&mut slots, 1, &hasher, 1u32);
        assert_eq!(Arc::strong_count(&first), 2, "an empty slot takes it");
        let seen_once = direct_mapped(&mut slots, 1, &hasher, 2u32);
        assert_eq!(Arc::strong_count(&seen_once), 1, "not let in");
        assert_eq!(Arc::strong_count(&first), 2, "the held value stays");
        assert!(Arc::ptr_eq(
            &first,
            &direct_mapped(&mut slots, 1, &hasher, 1u32)
        ));
        // 2 missed, then 1 hit: 2's next sighting is still its second miss.
        let seen_twice = direct_mapped(&mut slots, 1, &hasher, 2u32);
        assert_eq!(Arc::strong_count(&seen_twice), 2, "let in");
        assert_eq!(Arc::strong_count(&first), 1, "released");
        assert!(Arc::ptr_eq(
            &seen_twice,
            &direct_mapped(&mut slots, 1, &hasher, 2u32)
        ));
    }

    #[test]
    fn cache_shares_equal_sets() {
        let mut c = StoredCache::default();
        let a = |m| {
            StoredAttrs::from_value(PathAttributes {
                med: Some(m),
                ..Default::default()
            })
        };
        let x = c.share(a(1));
        let y = c.share(a(1));
        assert!(Arc::ptr_eq(&x, &y));
        let z = c.share(a(2));
        assert!(!same(&x, &z));
        assert!(same(&x, &Arc::new(a(1))));
    }
}
