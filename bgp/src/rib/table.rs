//! Storage of the Adj-RIBs-In and the Loc-RIB: tables of prefix → [`Dest`],
//! the candidate paths of that prefix, one for IPv4 and four for IPv6
//! (entries and tables: `entry.rs`). Every change goes through [`apply_op`]
//! on a [`PrefixTable`], which picks the table of the key.
//!
//! RFC 4271 §3.2 lets the three conceptual RIBs share storage. Here each path
//! stored under a prefix is one peer's Adj-RIB-In entry (an `Arc` to a shared
//! [`StoredAttrs`], the source peer and flags: 16 bytes); the Loc-RIB is the
//! first path of each `Dest` (kept first by [`reorder`]) together with the
//! paths flagged ECMP. A prefix with a single path, the common case, stores it
//! inline, and a `Dest` is 16 bytes either way. Every change of a `Dest` goes
//! through [`apply_op`], which reruns the decision process and reports how the
//! best path changed (the change for the kernel is built in `changes.rs`).

use std::net::IpAddr;
use std::sync::Arc;

use super::HopList;
use super::changes::{Changes, FullCache, Imported, collect_next_hops, next_hops_for};
use super::decision::{Decision, DecisionCtx, decide};
use super::entry::{DestSlot, V6Key, V6Table};
use super::keys::RibKey;
use super::shard::{Entry, ShardedTable};
use super::stored::{StoredAttrs, same};
use crate::types::{Ipv6Prefix, Prefix};

/// The `source` of a locally originated path.
pub(crate) const LOCAL_SOURCE: u32 = u32::MAX;

/// Path flag: kept across a graceful restart, not yet re-learned (RFC 4724 §4.2).
pub(crate) const STALE: u8 = 1;
/// Path flag: member of the ECMP set (the best path included).
pub(crate) const ECMP: u8 = 2;
/// Path flag: the best path (always at index 0).
pub(crate) const BEST: u8 = 4;

/// One candidate path: a peer's Adj-RIB-In entry for a prefix.
#[derive(Clone, Debug)]
pub(crate) struct Path {
    pub attrs: Arc<StoredAttrs>,
    pub source: u32,
    pub flags: u8,
}

impl Path {
    pub(crate) fn new(attrs: Arc<StoredAttrs>, source: u32) -> Path {
        Path {
            attrs,
            source,
            flags: 0,
        }
    }
    /// Same source and the same attribute set.
    pub(crate) fn same_route(&self, other: &Path) -> bool {
        self.source == other.source && same(&self.attrs, &other.attrs)
    }
    pub(crate) fn is_stale(&self) -> bool {
        self.flags & STALE != 0
    }
}

/// The candidate paths of one prefix; never empty (an empty one is removed).
/// `Many` holds two or more behind one thin pointer, so a `Dest` is as small
/// as a `Path`.
#[derive(Debug)]
pub(crate) enum Dest {
    One(Path),
    Many(Box<ManyPaths>),
}

/// Two or more paths. Two, the usual multi-path case (a prefix from two
/// peers), cost exactly their 32 bytes: the `Vec` fits around the niche of
/// the first path's `Arc`, so no tag is needed.
#[derive(Debug)]
pub(crate) enum ManyPaths {
    Two([Path; 2]),
    More(Vec<Path>),
}

impl Dest {
    pub(crate) fn paths(&self) -> &[Path] {
        match self {
            Dest::One(p) => std::slice::from_ref(p),
            Dest::Many(m) => match &**m {
                ManyPaths::Two(a) => a,
                ManyPaths::More(v) => v,
            },
        }
    }
    pub(crate) fn paths_mut(&mut self) -> &mut [Path] {
        match self {
            Dest::One(p) => std::slice::from_mut(p),
            Dest::Many(m) => match &mut **m {
                ManyPaths::Two(a) => a,
                ManyPaths::More(v) => v,
            },
        }
    }
    pub(crate) fn best(&self) -> Option<&Path> {
        self.paths().first()
    }
    fn position(&self, source: u32) -> Option<usize> {
        self.paths().iter().position(|p| p.source == source)
    }
    fn take_vec(&mut self) -> Vec<Path> {
        // A clone of the best path (an `Arc` increment) holds the place.
        let Some(placeholder) = self.best().cloned() else {
            return Vec::new();
        };
        match std::mem::replace(self, Dest::One(placeholder)) {
            Dest::One(p) => {
                let mut v = Vec::with_capacity(2);
                v.push(p);
                v
            }
            Dest::Many(m) => match *m {
                ManyPaths::Two(a) => Vec::from(a),
                ManyPaths::More(v) => v,
            },
        }
    }
    /// Rebuilds from a list; `None` when it is empty.
    fn from_vec(mut v: Vec<Path>) -> Option<Dest> {
        match v.len() {
            0 => None,
            1 => v.pop().map(Dest::One),
            _ => Some(Dest::Many(Box::new(match <[Path; 2]>::try_from(v) {
                Ok(two) => ManyPaths::Two(two),
                Err(mut v) => {
                    v.shrink_to_fit();
                    ManyPaths::More(v)
                }
            }))),
        }
    }
}

/// A table of one family's prefixes that [`apply_op`] changes.
pub(crate) trait PrefixTable {
    type Key;
    /// [`apply_op`] on this table.
    fn apply(&mut self, key: Self::Key, op: PathOp, cx: OpCx<'_, '_>) -> OpResult;
    /// Sets STALE on every path of `source`; returns how many changed.
    fn mark_stale(&mut self, source: u32) -> usize;
}

impl<E: DestSlot> PrefixTable for ShardedTable<E> {
    type Key = E::Key;
    fn apply(&mut self, key: E::Key, op: PathOp, cx: OpCx<'_, '_>) -> OpResult {
        apply_in(self, key, op, cx)
    }
    fn mark_stale(&mut self, source: u32) -> usize {
        self.iter_mut().map(|e| e.mark_stale(source)).sum()
    }
}

impl PrefixTable for V6Table {
    type Key = Ipv6Prefix;
    fn apply(&mut self, key: Ipv6Prefix, op: PathOp, cx: OpCx<'_, '_>) -> OpResult {
        match V6Key::of(&key) {
            V6Key::Narrow(m) => apply_in(&mut self.narrow, m, op, cx),
            V6Key::Marked(m) => apply_in(&mut self.marked, m, op, cx),
            V6Key::Short(s) => apply_in(&mut self.short, s, op, cx),
            V6Key::Long(p) => apply_in(&mut self.long, p, op, cx),
        }
    }
    fn mark_stale(&mut self, source: u32) -> usize {
        self.narrow.mark_stale(source)
            + self.marked.mark_stale(source)
            + self.short.mark_stale(source)
            + self.long.mark_stale(source)
    }
}

/// A change to one path of a prefix.
pub(crate) enum PathOp {
    /// Add or replace the path of `path.source` (a re-learned stale path loses its stale flag).
    Upsert(Path),
    /// Remove the path of this source.
    Remove(u32),
    /// Remove the path of this source if it is stale (graceful-restart sweep).
    RemoveStale(u32),
}

impl PathOp {
    pub(crate) fn source(&self) -> u32 {
        match self {
            PathOp::Upsert(p) => p.source,
            PathOp::Remove(s) | PathOp::RemoveStale(s) => *s,
        }
    }
}

/// How a prefix's best path changed; `old_best`/`new_best` are `None` when there
/// was / is no route. Only produced when the best path differs.
#[derive(Debug)]
pub(crate) struct BestMove {
    pub prefix: Prefix,
    pub old_best: Option<Path>,
    pub new_best: Option<Path>,
}

/// Scratch space reused between prefixes.
#[derive(Default, Debug)]
pub(crate) struct Scratch {
    pub decision: Decision,
    full: FullCache,
    old_nh: Vec<IpAddr>,
    new_nh: Vec<IpAddr>,
}

/// Result of [`apply_op`]: the change in the op's source's Adj-RIB-In size
/// (+1 added, -1 removed) and stale count, and the best-path move if any.
pub(crate) struct OpResult {
    pub received_delta: i64,
    pub stale_delta: i64,
    pub moved: Option<BestMove>,
}

/// What [`apply_op`] needs besides the table, the key and the op.
pub(crate) struct OpCx<'a, 'c> {
    hint: Option<&'a Imported>,
    others: bool,
    ctx: &'a DecisionCtx<'c>,
    scratch: &'a mut Scratch,
    best_changes: Option<Changes<'a>>,
}

impl OpResult {
    const NOTHING: OpResult = OpResult {
        received_delta: 0,
        stale_delta: 0,
        moved: None,
    };
}

/// Applies one path change to `key`'s destination, reruns the decision process,
/// and reports a [`BestPathChange`] to `best_changes` when the forwarding view
/// changed (`None`: no one wants them, [`RibConfig::best_path_feed`]).
/// `others` says whether any peer but the op's source is known: without one,
/// a prefix's first path is exported to nobody (never back to its source), so
/// its [`BestMove`] is not made.
///
/// [`RibConfig::best_path_feed`]: super::RibConfig::best_path_feed
/// [`BestPathChange`]: super::BestPathChange
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply_op<T: PrefixTable>(
    map: &mut T,
    key: T::Key,
    op: PathOp,
    hint: Option<&Imported>,
    others: bool,
    ctx: &DecisionCtx<'_>,
    scratch: &mut Scratch,
    best_changes: Option<Changes<'_>>,
) -> OpResult {
    let cx = OpCx {
        hint,
        others,
        ctx,
        scratch,
        best_changes,
    };
    map.apply(key, op, cx)
}

/// [`apply_op`] in one hash table.
fn apply_in<E: DestSlot>(
    map: &mut ShardedTable<E>,
    key: E::Key,
    op: PathOp,
    cx: OpCx<'_, '_>,
) -> OpResult {
    let prefix = key.prefix();
    let mut occupied = match map.entry(key) {
        Entry::Vacant(v) => {
            let PathOp::Upsert(mut path) = op else {
                return OpResult::NOTHING;
            };
            path.flags = BEST | ECMP;
            if let Some(mut changes) = cx.best_changes {
                let hops = next_hops_for(std::slice::from_ref(&path), &mut cx.scratch.new_nh);
                changes.push(prefix, hops, Some(&path), cx.hint, &mut cx.scratch.full);
            }
            let moved = cx.others.then(|| BestMove {
                prefix,
                old_best: None,
                new_best: Some(path.clone()),
            });
            v.insert(E::new(key, path));
            return OpResult {
                received_delta: 1,
                stale_delta: 0,
                moved,
            };
        }
        Entry::Occupied(o) => o,
    };
    let (r, emptied) = occupied
        .get_mut()
        .update(|dest| change_dest(prefix, dest, op, cx));
    if emptied {
        let _ = occupied.remove();
        map.shrink_if_sparse(&key);
    }
    r
}

/// [`apply_op`] on a prefix that has paths; `true` when it has none left
/// (the caller removes its entry).
fn change_dest(prefix: Prefix, dest: &mut Dest, op: PathOp, cx: OpCx<'_, '_>) -> (OpResult, bool) {
    let OpCx {
        hint,
        ctx,
        scratch,
        best_changes,
        ..
    } = cx;
    let Some(old_best) = dest.best().cloned() else {
        return (OpResult::NOTHING, true);
    };
    if best_changes.is_some() {
        collect_next_hops(dest.paths(), &mut scratch.old_nh);
    }
    let stale_only = matches!(op, PathOp::RemoveStale(_));
    let (received_delta, stale_delta) = match op {
        PathOp::Upsert(path) => match dest.position(path.source) {
            Some(i) => {
                let Some(slot) = dest.paths_mut().get_mut(i) else {
                    return (OpResult::NOTHING, false);
                };
                // A re-learned stale path stops being stale (RFC 4724 §4.2).
                let stale_delta = if slot.is_stale() { -1 } else { 0 };
                slot.flags &= !STALE;
                if same(&slot.attrs, &path.attrs) {
                    let r = OpResult {
                        stale_delta,
                        ..OpResult::NOTHING
                    };
                    return (r, false);
                }
                slot.attrs = path.attrs;
                (0, stale_delta)
            }
            None => {
                let mut v = dest.take_vec();
                v.push(path);
                if let Some(d) = Dest::from_vec(v) {
                    *dest = d;
                }
                (1, 0)
            }
        },
        PathOp::Remove(source) | PathOp::RemoveStale(source) => {
            let Some(i) = dest.position(source) else {
                return (OpResult::NOTHING, false);
            };
            let was_stale = dest.paths().get(i).is_some_and(Path::is_stale);
            if stale_only && !was_stale {
                return (OpResult::NOTHING, false);
            }
            let stale_delta = if was_stale { -1 } else { 0 };
            // A prefix's only path (the usual case in a bulk withdrawal):
            // the prefix leaves the table with its `Dest`, no list is built.
            let rest = match dest {
                Dest::One(_) => None,
                Dest::Many(_) => {
                    let mut v = dest.take_vec();
                    v.remove(i);
                    Dest::from_vec(v)
                }
            };
            match rest {
                Some(d) => *dest = d,
                None => {
                    if let Some(mut changes) = best_changes {
                        changes.push(prefix, HopList::default(), None, None, &mut scratch.full);
                    }
                    let moved = BestMove {
                        prefix,
                        old_best: Some(old_best),
                        new_best: None,
                    };
                    let r = OpResult {
                        received_delta: -1,
                        stale_delta,
                        moved: Some(moved),
                    };
                    return (r, true);
                }
            }
            (-1, stale_delta)
        }
    };
    let moved = rerun(prefix, dest, old_best, hint, ctx, scratch, best_changes);
    let r = OpResult {
        received_delta,
        stale_delta,
        moved,
    };
    (r, false)
}

/// Sets STALE on every path of `source`; returns how many changed.
pub(crate) fn mark_stale(map: &mut impl PrefixTable, source: u32) -> usize {
    map.mark_stale(source)
}

/// Reruns the decision process on `dest` after a change and reports what
/// moved; `scratch.old_nh` holds the next hops before the change when
/// `best_changes` is given.
fn rerun(
    prefix: Prefix,
    dest: &mut Dest,
    old_best: Path,
    hint: Option<&Imported>,
    ctx: &DecisionCtx<'_>,
    scratch: &mut Scratch,
    best_changes: Option<Changes<'_>>,
) -> Option<BestMove> {
    decide(dest.paths(), ctx, &mut scratch.decision);
    reorder(dest.paths_mut(), &scratch.decision);
    let new_best = dest.best()?.clone();
    if let Some(mut changes) = best_changes {
        collect_next_hops(dest.paths(), &mut scratch.new_nh);
        // Attributes alone matter only to an owner that reads them.
        let forwarding_changed = (changes.attributes && !same(&old_best.attrs, &new_best.attrs))
            || (old_best.source == LOCAL_SOURCE) != (new_best.source == LOCAL_SOURCE)
            || scratch.old_nh != scratch.new_nh;
        if forwarding_changed {
            let hops = HopList::from(scratch.new_nh.as_slice());
            changes.push(prefix, hops, Some(&new_best), hint, &mut scratch.full);
        }
    }
    if old_best.same_route(&new_best) {
        None
    } else {
        Some(BestMove {
            prefix,
            old_best: Some(old_best),
            new_best: Some(new_best),
        })
    }
}

/// Puts the best path first, then the rest of the ECMP set, then the losers,
/// and sets the BEST/ECMP flags accordingly.
fn reorder(paths: &mut [Path], d: &Decision) {
    for (i, p) in paths.iter_mut().enumerate() {
        p.flags &= STALE;
        if i == d.best {
            p.flags |= BEST;
        }
        if d.ecmp.get(i).copied().unwrap_or(false) {
            p.flags |= ECMP;
        }
    }
    paths.sort_by_key(|p| (p.flags & BEST == 0, p.flags & ECMP == 0));
}

#[cfg(test)]
mod tests {
    use super::super::entry::{DestRef, Narrow, Packed, V4Entry, V4Packed, V6Entry, V6Packed};
    use super::super::hash::FastMap;
    use super::super::keys::Ipv6Marked;
    use super::super::peer::PeerState;
    use super::super::shard::Slot;
    use super::super::{BestPathChange, BestPathFeed};
    use super::*;
    use crate::types::{Ipv4Prefix, Ipv6Short, PathAttributes};

    fn test_ctx(peers: &FastMap<u32, PeerState>) -> DecisionCtx<'_> {
        DecisionCtx {
            local_asn: 65000,
            router_id: std::net::Ipv4Addr::new(10, 0, 0, 1),
            max_paths: 16,
            peers,
        }
    }

    /// [`apply_op`] as most tests call it: no import hint, other peers
    /// known, full best-path changes appended to `changes`.
    fn full_op<T: PrefixTable>(
        map: &mut T,
        key: T::Key,
        op: PathOp,
        ctx: &DecisionCtx<'_>,
        scratch: &mut Scratch,
        changes: &mut Vec<BestPathChange>,
    ) -> OpResult {
        apply_op(
            map,
            key,
            op,
            None,
            true,
            ctx,
            scratch,
            Changes::new(BestPathFeed::Full, changes),
        )
    }
    /// Memory per route is a tracked figure: keep these from growing unnoticed.
    #[test]
    fn compact_layout() {
        assert_eq!(std::mem::size_of::<Path>(), 16);
        assert_eq!(std::mem::size_of::<Dest>(), 16);
        assert_eq!(std::mem::size_of::<ManyPaths>(), 32);
        assert_eq!(std::mem::size_of::<V4Entry>(), 16);
        assert_eq!(std::mem::size_of::<V6Entry>(), 16);
        assert_eq!(std::mem::size_of::<(Ipv6Marked, Dest)>(), 24);
        assert_eq!(std::mem::size_of::<(Ipv6Short, Dest)>(), 32);
        assert_eq!(std::mem::size_of::<(Ipv6Prefix, Dest)>(), 40);
    }

    /// The share cache is best-effort, so one set may live in two allocations:
    /// re-announcing an equal set in another allocation is no change at all.
    #[test]
    fn equal_sets_in_two_allocations_are_the_same_route() {
        use crate::types::AsPath;
        let peers = FastMap::default();
        let ctx = test_ctx(&peers);
        let attrs = || {
            Arc::new(StoredAttrs::from_value(PathAttributes {
                as_path: AsPath::sequence(vec![65001, 65002]),
                next_hop: Some("192.0.2.1".parse().unwrap()),
                ..PathAttributes::default()
            }))
        };
        let (a, b) = (attrs(), attrs());
        assert!(!Arc::ptr_eq(&a, &b));
        let mut map: ShardedTable<V4Entry> = ShardedTable::default();
        let key = Ipv4Prefix::new("10.0.0.0".parse().unwrap(), 8).unwrap();
        let mut scratch = Scratch::default();
        let mut changes = Vec::new();
        let r = full_op(
            &mut map,
            key,
            PathOp::Upsert(Path::new(a, 1)),
            &ctx,
            &mut scratch,
            &mut changes,
        );
        assert_eq!((r.received_delta, changes.len()), (1, 1));
        assert!(r.moved.is_some());
        let r = full_op(
            &mut map,
            key,
            PathOp::Upsert(Path::new(b, 1)),
            &ctx,
            &mut scratch,
            &mut changes,
        );
        assert_eq!((r.received_delta, changes.len()), (0, 1));
        assert!(r.moved.is_none());
        // A second source makes a two-path destination; removing it goes back to one.
        let r = full_op(
            &mut map,
            key,
            PathOp::Upsert(Path::new(attrs(), 2)),
            &ctx,
            &mut scratch,
            &mut changes,
        );
        assert_eq!(r.received_delta, 1);
        fn dest(map: &ShardedTable<V4Entry>, key: Ipv4Prefix) -> Option<DestRef<'_>> {
            map.get(&key).map(DestSlot::dest)
        }
        assert!(matches!(map.get(&key), Some(V4Entry::Wide(_))));
        assert!(
            matches!(dest(&map, key).as_deref(), Some(Dest::Many(m)) if matches!(**m, ManyPaths::Two(_)))
        );
        full_op(
            &mut map,
            key,
            PathOp::Remove(2),
            &ctx,
            &mut scratch,
            &mut changes,
        );
        assert!(matches!(
            map.get(&key),
            Some(V4Entry::One { packed, .. }) if packed.source() == 1
        ));
        assert!(matches!(dest(&map, key).as_deref(), Some(Dest::One(p)) if p.source == 1));
        // With no other peer known a new prefix still changes the Loc-RIB
        // (and the kernel view) but makes no move to export.
        let lone = Ipv4Prefix::new("10.1.0.0".parse().unwrap(), 16).unwrap();
        changes.clear();
        let r = apply_op(
            &mut map,
            lone,
            PathOp::Upsert(Path::new(attrs(), 1)),
            None,
            false,
            &ctx,
            &mut scratch,
            Changes::new(BestPathFeed::Full, &mut changes),
        );
        assert_eq!((r.received_delta, changes.len()), (1, 1));
        assert!(r.moved.is_none());
        assert_eq!(changes[0].next_hops, vec!["192.0.2.1".parse().unwrap()]);
    }

    /// An IPv6 prefix of at most 48 bits goes to the 16-byte entries' table,
    /// one of at most 63 to the marked-key table, a /64 to the short-key one,
    /// a longer one to the fourth; either way it is found, listed, marked and
    /// removed as itself.
    #[test]
    fn v6_table_short_and_long_keys() {
        let peers = FastMap::default();
        let ctx = test_ctx(&peers);
        let attrs = Arc::new(StoredAttrs::from_value(PathAttributes {
            next_hop: Some("2001:db8::1".parse().unwrap()),
            ..PathAttributes::default()
        }));
        let v6 = |s: &str| match s.parse::<Prefix>().unwrap() {
            Prefix::V6(p) => p,
            Prefix::V4(_) => unreachable!(),
        };
        let mut keys = [
            "fd00:1::/48",
            "fd00:1::/49",
            "fd00:1::/63",
            "fd00:1::/64",
            "::/0",
            "fd00:1::/65",
            "2001:db8::1/128",
        ]
        .map(v6);
        let (mut t, mut scratch, mut changes) =
            (V6Table::default(), Scratch::default(), Vec::new());
        let mut op = |t: &mut V6Table, k, op| {
            full_op(t, k, op, &ctx, &mut scratch, &mut changes).received_delta
        };
        for k in keys {
            assert_eq!(
                op(&mut t, k, PathOp::Upsert(Path::new(attrs.clone(), 1))),
                1
            );
        }
        let lens = (t.narrow.len(), t.marked.len(), t.short.len(), t.long.len());
        assert_eq!((lens, t.len()), ((2, 2, 1, 2), 7));
        assert!(
            keys.iter()
                .all(|k| t.get(k).is_some_and(|d| d.paths().len() == 1))
        );
        let mut listed: Vec<Ipv6Prefix> = t.iter().map(|(k, _)| k).collect();
        listed.sort();
        keys.sort();
        assert_eq!(listed, keys);
        assert_eq!(mark_stale(&mut t, 1), 7);
        for k in keys {
            assert_eq!(op(&mut t, k, PathOp::RemoveStale(1)), -1);
            assert!(t.get(&k).is_none());
        }
        assert_eq!(t.len(), 0);
        let prefixes: Vec<Prefix> = changes.iter().map(|c| c.prefix).collect();
        assert_eq!(prefixes.len(), 14);
        assert!(
            keys.iter()
                .all(|k| prefixes.iter().filter(|p| **p == Prefix::V6(*k)).count() == 2)
        );
    }

    /// A prefix with one path is a 16-byte entry when its source fits (16
    /// bits for IPv4, 12 for IPv6 up to /48; the local source included),
    /// else the boxed one; either way it reads, updates, goes stale, takes a
    /// second path and loses it, and goes away the same.
    #[test]
    fn entries_narrow_and_wide() {
        let v4 = |i: u32| Ipv4Prefix::new(std::net::Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24);
        narrow_and_wide::<V4Packed>(|i| v4(i).unwrap(), 16, ["192.0.2.1", "192.0.2.2"]);
        let v6 = |i: u32| {
            let a = std::net::Ipv6Addr::from((0xfd00_0000_0000_u128 + u128::from(i)) << 80);
            Ipv6Prefix::new(a, 48).and_then(|p| Ipv6Marked::new(&p))
        };
        narrow_and_wide::<V6Packed>(|i| v6(i).unwrap(), 12, ["fd12::1", "fd12::2"]);
        // Past /48, or with a flag past the three, an IPv6 entry is boxed.
        let m = |s: &str| match s.parse::<Prefix>() {
            Ok(Prefix::V6(p)) => Ipv6Marked::new(&p).unwrap(),
            _ => unreachable!(),
        };
        assert!(V6Packed::pack(m("fd00:1::/48"), 1, BEST | ECMP | STALE).is_some());
        assert!(V6Packed::pack(m("fd00:1::/49"), 1, 0).is_none());
        assert!(V6Packed::pack(m("fd00:1::/48"), 1, 8).is_none());
    }

    fn narrow_and_wide<P: Packed>(key: impl Fn(u32) -> P::Key, bits: u32, nh: [&str; 2]) {
        let peers = FastMap::default();
        let ctx = test_ctx(&peers);
        let attrs = |nh: &str| {
            Arc::new(StoredAttrs::from_value(PathAttributes {
                next_hop: Some(nh.parse().unwrap()),
                ..PathAttributes::default()
            }))
        };
        let (mut map, mut scratch, mut changes) = (
            ShardedTable::<Narrow<P>>::default(),
            Scratch::default(),
            Vec::new(),
        );
        let max = (1u32 << bits) - 1;
        let mut sources = vec![1, max - 1, max, 0xfffe, 0xffff, 70_000, LOCAL_SOURCE];
        sources.sort_unstable();
        sources.dedup();
        for (i, &src) in sources.iter().enumerate() {
            let k = key(i as u32);
            let mut op = |map: &mut ShardedTable<Narrow<P>>, op| {
                full_op(map, k, op, &ctx, &mut scratch, &mut changes).received_delta
            };
            assert_eq!(
                op(&mut map, PathOp::Upsert(Path::new(attrs(nh[0]), src))),
                1
            );
            let narrow = src < max || src == LOCAL_SOURCE;
            let is_one =
                |map: &ShardedTable<Narrow<P>>| matches!(map.get(&k), Some(Narrow::One { .. }));
            assert_eq!(is_one(&map), narrow, "{src}");
            // A second path boxes it; without it, it is back as it was.
            let other = if src == 1 { 2 } else { 1 };
            assert_eq!(
                op(&mut map, PathOp::Upsert(Path::new(attrs(nh[0]), other))),
                1
            );
            assert!(!is_one(&map));
            assert_eq!(op(&mut map, PathOp::Remove(other)), -1);
            assert_eq!(is_one(&map), narrow, "{src}");
            // A changed set, in place.
            assert_eq!(
                op(&mut map, PathOp::Upsert(Path::new(attrs(nh[1]), src))),
                0
            );
            let e = map.get(&k).unwrap();
            assert!(e.is(&k) && e.key() == k);
            let d = e.dest();
            assert_eq!(d.paths().len(), 1);
            assert_eq!(
                (d.paths()[0].source, d.paths()[0].flags),
                (src, BEST | ECMP)
            );
            assert_eq!(d.paths()[0].attrs.next_hop(), Some(nh[1].parse().unwrap()));
            assert!(e.has_path(src, false) && !e.has_path(src, true));
            // Next hops read from the entry itself, as from its paths.
            let hops = e.next_hops(&mut Vec::new());
            assert_eq!(hops, next_hops_for(d.paths(), &mut Vec::new()));
            let want: &[IpAddr] = match src {
                LOCAL_SOURCE => &[],
                _ => &[nh[1].parse().unwrap()],
            };
            assert_eq!(&*hops, want, "{src}");
            assert_eq!(map.len(), i + 1);
        }
        for (i, &src) in sources.iter().enumerate() {
            let k = key(i as u32);
            assert_eq!(mark_stale(&mut map, src), 1);
            assert_eq!(mark_stale(&mut map, src), 0);
            let e = map.get(&k).unwrap();
            assert!(e.has_path(src, true) && !e.has_path(2, false));
            let flags = e.dest().paths()[0].flags;
            assert_eq!(flags, STALE | BEST | ECMP);
            let r = full_op(
                &mut map,
                k,
                PathOp::RemoveStale(src),
                &ctx,
                &mut scratch,
                &mut changes,
            );
            assert_eq!((r.received_delta, r.stale_delta), (-1, -1));
            assert!(map.get(&k).is_none());
        }
        assert_eq!(map.len(), 0);
    }

    /// The next-hop list reads back as the slice it was made from, in each form.
    #[test]
    fn hop_lists() {
        let ips: Vec<IpAddr> = ["192.0.2.1", "192.0.2.2", "2001:db8::1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        for n in 0..=ips.len() {
            let l = HopList::from(&ips[..n]);
            assert_eq!(&*l, &ips[..n]);
            assert_eq!(l, ips[..n].to_vec());
            assert_eq!(format!("{l:?}"), format!("{:?}", &ips[..n]));
        }
        assert_eq!(HopList::default().len(), 0);
        assert_ne!(HopList::from(&ips[..1]), HopList::from(&ips[1..2]));
    }
}
