//! The compact form in which the RIB stores attribute sets.
//!
//! The codec and the public API speak `Arc<PathAttributes>` (every attribute
//! RFC 4271 §5 and its extensions define, as plain fields: ~200 bytes plus
//! the AS_PATH's allocations). Most routes carry far less: ORIGIN, an AS_PATH
//! that is one short AS_SEQUENCE, an IPv4 NEXT_HOP, maybe MULTI_EXIT_DISC and
//! LOCAL_PREF. [`StoredAttrs::Small`] holds exactly such a set in 24 bytes
//! (the values in five 32-bit slots); anything else is kept as
//! [`StoredAttrs::Full`], the shared `Arc<PathAttributes>` itself. The form is
//! canonical: a set that fits `Small` is always stored as `Small`, so equal
//! sets compare and hash equal in either form.
//!
//! Data flow: import turns the decoder's `Arc<PathAttributes>` into a
//! `StoredAttrs` and shares it through [`StoredCache`]; the decision process
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
//! ([`same`]), with the pointer compare as the fast path.

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::hash::RibBuildHasher;
use crate::types::{AsPath, AsPathSegment, Origin, PathAttributes};

/// Slots of a `Small` set: NEXT_HOP, MED, LOCAL_PREF (each if present), then the ASNs.
const SLOTS: usize = 5;
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
    /// Everything else.
    Full(Arc<PathAttributes>),
}

/// Same attribute set: the same allocation, or equal content.
pub(crate) fn same(a: &Arc<StoredAttrs>, b: &Arc<StoredAttrs>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

impl StoredAttrs {
    /// The stored form of `a`.
    pub(crate) fn new(a: &Arc<PathAttributes>) -> StoredAttrs {
        Self::small(a).unwrap_or_else(|| StoredAttrs::Full(a.clone()))
    }

    /// The stored form of a set built here (`Arc` only when it does not fit `Small`).
    pub(crate) fn from_value(a: PathAttributes) -> StoredAttrs {
        match Self::small(&a) {
            Some(s) => s,
            None => StoredAttrs::Full(Arc::new(a)),
        }
    }

    fn small(a: &PathAttributes) -> Option<StoredAttrs> {
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
        if link_local_next_hop.is_some()
            || aggregator.is_some()
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
        let mut slots = [0u32; SLOTS];
        let mut n = 0;
        let mut flags = 0u8;
        match next_hop {
            None => {}
            Some(IpAddr::V4(nh)) => {
                slots[n] = u32::from(*nh);
                n += 1;
                flags |= HAS_NEXT_HOP;
            }
            Some(IpAddr::V6(_)) => return None,
        }
        for (v, bit) in [(med, HAS_MED), (local_pref, HAS_LOCAL_PREF)] {
            if let Some(v) = v {
                slots[n] = *v;
                n += 1;
                flags |= bit;
            }
        }
        let dst = slots.get_mut(n..n + asns.len())?;
        dst.copy_from_slice(asns);
        if *atomic_aggregate {
            flags |= ATOMIC_AGGREGATE;
        }
        // asns.len() <= SLOTS here, so it fits the 4 high bits.
        flags |= (asns.len() as u8) << ASN_SHIFT;
        Some(StoredAttrs::Small {
            origin: *origin,
            flags,
            slots,
        })
    }

    /// The value slots in use, in order, and the ASNs (`Small` only).
    fn small_parts(flags: u8, slots: &[u32; SLOTS]) -> (usize, &[u32]) {
        let fixed = [HAS_NEXT_HOP, HAS_MED, HAS_LOCAL_PREF]
            .iter()
            .filter(|b| flags & **b != 0)
            .count();
        let n_asn = usize::from(flags >> ASN_SHIFT);
        (fixed, slots.get(fixed..fixed + n_asn).unwrap_or(&[]))
    }

    /// The slot of the value flagged `bit` (NEXT_HOP, MED or LOCAL_PREF).
    fn slot(flags: u8, slots: &[u32; SLOTS], bit: u8) -> Option<u32> {
        if flags & bit == 0 {
            return None;
        }
        let before = [HAS_NEXT_HOP, HAS_MED, HAS_LOCAL_PREF]
            .iter()
            .take_while(|b| **b != bit)
            .filter(|b| flags & **b != 0)
            .count();
        slots.get(before).copied()
    }

    /// The ASNs of a `Small` set's AS_SEQUENCE; `None` for `Full`.
    fn small_asns(&self) -> Option<&[u32]> {
        match self {
            StoredAttrs::Small { flags, slots, .. } => Some(Self::small_parts(*flags, slots).1),
            StoredAttrs::Full(_) => None,
        }
    }

    pub(crate) fn origin(&self) -> Origin {
        match self {
            StoredAttrs::Small { origin, .. } => *origin,
            StoredAttrs::Full(a) => a.origin,
        }
    }

    pub(crate) fn next_hop(&self) -> Option<IpAddr> {
        match self {
            StoredAttrs::Small { flags, slots, .. } => {
                Self::slot(*flags, slots, HAS_NEXT_HOP).map(|v| IpAddr::V4(Ipv4Addr::from(v)))
            }
            StoredAttrs::Full(a) => a.next_hop,
        }
    }

    pub(crate) fn med(&self) -> Option<u32> {
        match self {
            StoredAttrs::Small { flags, slots, .. } => Self::slot(*flags, slots, HAS_MED),
            StoredAttrs::Full(a) => a.med,
        }
    }

    pub(crate) fn local_pref(&self) -> Option<u32> {
        match self {
            StoredAttrs::Small { flags, slots, .. } => Self::slot(*flags, slots, HAS_LOCAL_PREF),
            StoredAttrs::Full(a) => a.local_pref,
        }
    }

    pub(crate) fn originator_id(&self) -> Option<Ipv4Addr> {
        match self {
            StoredAttrs::Small { .. } => None,
            StoredAttrs::Full(a) => a.originator_id,
        }
    }

    /// COMMUNITIES (RFC 1997); a `Small` set has none.
    pub(crate) fn communities(&self) -> &[u32] {
        match self {
            StoredAttrs::Small { .. } => &[],
            StoredAttrs::Full(a) => &a.communities,
        }
    }

    pub(crate) fn cluster_list(&self) -> &[Ipv4Addr] {
        match self {
            StoredAttrs::Small { .. } => &[],
            StoredAttrs::Full(a) => &a.cluster_list,
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

    /// The public form: a new `Arc` for `Small`, the shared one for `Full`.
    pub(crate) fn to_full(&self) -> Arc<PathAttributes> {
        match self {
            StoredAttrs::Full(a) => a.clone(),
            StoredAttrs::Small {
                origin,
                flags,
                slots,
            } => {
                let (_, asns) = Self::small_parts(*flags, slots);
                let as_path = if asns.is_empty() {
                    AsPath::default()
                } else {
                    AsPath {
                        segments: vec![AsPathSegment::Sequence(asns.to_vec())],
                    }
                };
                Arc::new(PathAttributes {
                    origin: *origin,
                    as_path,
                    next_hop: self.next_hop(),
                    med: self.med(),
                    local_pref: self.local_pref(),
                    atomic_aggregate: flags & ATOMIC_AGGREGATE != 0,
                    ..PathAttributes::default()
                })
            }
        }
    }
}

impl crate::policy::RouteAttrs for StoredAttrs {
    fn communities(&self) -> &[u32] {
        StoredAttrs::communities(self)
    }
    fn large_communities(&self) -> &[[u32; 3]] {
        match self {
            StoredAttrs::Small { .. } => &[],
            StoredAttrs::Full(a) => &a.large_communities,
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

/// Direct-mapped slots of the share cache (a power of two): 32 KiB of pointers.
const CACHE_SLOTS: usize = 4096;

/// Shares equal stored sets between routes; see the module doc.
#[derive(Debug, Default)]
pub(crate) struct StoredCache {
    slots: Vec<Option<Arc<StoredAttrs>>>,
    hasher: RibBuildHasher,
}

impl StoredCache {
    /// The shared copy of `s`: the cached one when an equal set sits in its
    /// slot, else `s` (which then takes the slot).
    pub(crate) fn share(&mut self, s: StoredAttrs) -> Arc<StoredAttrs> {
        if self.slots.is_empty() {
            self.slots.resize(CACHE_SLOTS, None);
        }
        let i = (self.hasher.hash_one(&s) as usize) & (CACHE_SLOTS - 1);
        let Some(slot) = self.slots.get_mut(i) else {
            return Arc::new(s);
        };
        if let Some(e) = slot
            && **e == s
        {
            return e.clone();
        }
        let a = Arc::new(s);
        *slot = Some(a.clone());
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::RawAttribute;

    fn seq(v: &[u32]) -> AsPath {
        AsPath {
            segments: vec![AsPathSegment::Sequence(v.to_vec())],
        }
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
                        AsPathSegment::Sequence(vec![1]),
                        AsPathSegment::Set(vec![2, 3]),
                    ],
                },
                next_hop: v4,
                ..Default::default()
            },
            PathAttributes {
                next_hop: v6,
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
