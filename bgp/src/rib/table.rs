//! Storage of the Adj-RIBs-In and the Loc-RIB: hash tables of prefix →
//! [`Dest`], the candidate paths of that prefix; one for IPv4, two for IPv6
//! ([`V6Table`]: prefixes of at most 64 bits under a 9-byte key, the rest
//! under the full 17-byte one). Every change goes through [`apply_op`] on a
//! [`PrefixTable`], which picks the table of the key.
//!
//! RFC 4271 §3.2 lets the three conceptual RIBs share storage. Here each path
//! stored under a prefix is one peer's Adj-RIB-In entry (an `Arc` to a shared
//! [`StoredAttrs`], the source peer and flags: 16 bytes); the Loc-RIB is the
//! first path of each `Dest` (kept first by [`reorder`]) together with the
//! paths flagged ECMP. A prefix with a single path, the common case, stores it
//! inline, and a `Dest` is 16 bytes either way. Every change of a `Dest` goes
//! through [`apply_op`], which reruns the decision process and reports how the
//! best path changed.

use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::Arc;

use super::decision::{Decision, DecisionCtx, decide};
use super::keys::{Ipv6Marked, RibKey};
use super::shard::ShardedMap;
use super::stored::{StoredAttrs, same};
use super::{BestPathChange, HopList};
use crate::types::{Ipv6Prefix, Ipv6Short, PathAttributes, Prefix};

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

/// An imported attribute set in both forms: what the table stores and the
/// public `Arc` it was made from, handed out for best-path changes of the
/// paths that carry it (so those need no conversion back).
pub(crate) struct Imported {
    pub stored: Arc<StoredAttrs>,
    pub full: Arc<PathAttributes>,
}

/// The public form of `p`'s attribute set: from `hint` when it is that set,
/// else converted (through `cache` when given).
pub(crate) fn full_attrs(
    p: &Path,
    hint: Option<&Imported>,
    cache: Option<&mut FullCache>,
) -> Arc<PathAttributes> {
    match (hint, cache) {
        (Some(h), _) if same(&h.stored, &p.attrs) => h.full.clone(),
        (_, Some(c)) => c.get(&p.attrs),
        _ => p.attrs.to_full(),
    }
}

/// Slots of [`FullCache`] (a power of two).
const FULL_CACHE_SLOTS: usize = 1024;

/// Recently converted sets, direct-mapped by the stored set's address, so a
/// burst of best-path changes onto paths that share a few sets (a peer going
/// down, a withdrawal of many prefixes) converts each set once. Holding the
/// stored `Arc` keeps its address from being reused while cached.
#[derive(Debug, Default)]
pub(crate) struct FullCache {
    slots: Vec<Option<(Arc<StoredAttrs>, Arc<PathAttributes>)>>,
}

impl FullCache {
    fn get(&mut self, s: &Arc<StoredAttrs>) -> Arc<PathAttributes> {
        if let StoredAttrs::Full(a) = &**s {
            return a.clone();
        }
        if self.slots.is_empty() {
            self.slots.resize(FULL_CACHE_SLOTS, None);
        }
        // Stored sets are 40-byte allocations: the low 4 address bits carry nothing.
        let i = (Arc::as_ptr(s) as usize >> 4) & (FULL_CACHE_SLOTS - 1);
        let Some(slot) = self.slots.get_mut(i) else {
            return s.to_full();
        };
        if let Some((k, v)) = slot
            && Arc::ptr_eq(k, s)
        {
            return v.clone();
        }
        let v = s.to_full();
        *slot = Some((s.clone(), v.clone()));
        v
    }
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
    fn paths_mut(&mut self) -> &mut [Path] {
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
    fn dests_mut(&mut self) -> impl Iterator<Item = &mut Dest>;
}

impl<K: RibKey> PrefixTable for ShardedMap<K, Dest> {
    type Key = K;
    fn apply(&mut self, key: K, op: PathOp, cx: OpCx<'_, '_>) -> OpResult {
        apply_in(self, key, op, cx)
    }
    fn dests_mut(&mut self) -> impl Iterator<Item = &mut Dest> {
        self.values_mut()
    }
}

/// The IPv6 prefix table, three hash tables by prefix length. A prefix of
/// at most 63 bits (most of an IPv6 table: /48s, /56s) is kept under its
/// 8-byte [`Ipv6Marked`] form, a 24-byte entry; a /64 under its 9-byte
/// [`Ipv6Short`] form, a 32-byte entry; a longer one under the full
/// [`Ipv6Prefix`], a 40-byte entry. A prefix is in exactly one of the
/// three, chosen by its length alone ([`V6Key::of`]).
#[derive(Debug, Default)]
pub(crate) struct V6Table {
    marked: ShardedMap<Ipv6Marked, Dest>,
    short: ShardedMap<Ipv6Short, Dest>,
    long: ShardedMap<Ipv6Prefix, Dest>,
}

/// An IPv6 prefix as the key of its table in [`V6Table`].
enum V6Key {
    Marked(Ipv6Marked),
    Short(Ipv6Short),
    Long(Ipv6Prefix),
}

impl V6Key {
    fn of(p: &Ipv6Prefix) -> V6Key {
        match (Ipv6Marked::new(p), p.short()) {
            (Some(m), _) => V6Key::Marked(m),
            (None, Some(s)) => V6Key::Short(s),
            (None, None) => V6Key::Long(*p),
        }
    }
}

impl V6Table {
    pub(crate) fn get(&self, key: &Ipv6Prefix) -> Option<&Dest> {
        match V6Key::of(key) {
            V6Key::Marked(m) => self.marked.get(&m),
            V6Key::Short(s) => self.short.get(&s),
            V6Key::Long(p) => self.long.get(&p),
        }
    }
    pub(crate) fn len(&self) -> usize {
        self.marked.len() + self.short.len() + self.long.len()
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Ipv6Prefix, &Dest)> {
        let marked = self.marked.iter().map(|(k, d)| (Ipv6Prefix::from(k), d));
        let short = self.short.iter().map(|(k, d)| (Ipv6Prefix::from(k), d));
        marked.chain(short).chain(self.long.iter())
    }
}

impl PrefixTable for V6Table {
    type Key = Ipv6Prefix;
    fn apply(&mut self, key: Ipv6Prefix, op: PathOp, cx: OpCx<'_, '_>) -> OpResult {
        match V6Key::of(&key) {
            V6Key::Marked(m) => apply_in(&mut self.marked, m, op, cx),
            V6Key::Short(s) => apply_in(&mut self.short, s, op, cx),
            V6Key::Long(p) => apply_in(&mut self.long, p, op, cx),
        }
    }
    fn dests_mut(&mut self) -> impl Iterator<Item = &mut Dest> {
        let marked = self.marked.values_mut();
        marked
            .chain(self.short.values_mut())
            .chain(self.long.values_mut())
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
    best_changes: Option<&'a mut Vec<BestPathChange>>,
}

impl OpResult {
    const NOTHING: OpResult = OpResult {
        received_delta: 0,
        stale_delta: 0,
        moved: None,
    };
}

/// Applies one path change to `key`'s destination, reruns the decision process,
/// and appends a [`BestPathChange`] to `best_changes` when the forwarding view
/// changed (`None`: no one wants them, [`RibConfig::best_path_changes`]).
/// `others` says whether any peer but the op's source is known: without one,
/// a prefix's first path is exported to nobody (never back to its source), so
/// its [`BestMove`] is not made.
///
/// [`RibConfig::best_path_changes`]: super::RibConfig::best_path_changes
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply_op<T: PrefixTable>(
    map: &mut T,
    key: T::Key,
    op: PathOp,
    hint: Option<&Imported>,
    others: bool,
    ctx: &DecisionCtx<'_>,
    scratch: &mut Scratch,
    best_changes: Option<&mut Vec<BestPathChange>>,
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
fn apply_in<K: RibKey>(
    map: &mut ShardedMap<K, Dest>,
    key: K,
    op: PathOp,
    cx: OpCx<'_, '_>,
) -> OpResult {
    let OpCx {
        hint,
        others,
        ctx,
        scratch,
        best_changes,
    } = cx;
    let prefix = key.prefix();
    let mut occupied = match map.entry(key) {
        Entry::Vacant(v) => {
            let PathOp::Upsert(mut path) = op else {
                return OpResult::NOTHING;
            };
            path.flags = BEST | ECMP;
            if let Some(changes) = best_changes {
                changes.push(change_for(
                    prefix,
                    std::slice::from_ref(&path),
                    hint,
                    Some(&mut scratch.full),
                    &mut scratch.new_nh,
                ));
            }
            let moved = others.then(|| BestMove {
                prefix,
                old_best: None,
                new_best: Some(path.clone()),
            });
            v.insert(Dest::One(path));
            return OpResult {
                received_delta: 1,
                stale_delta: 0,
                moved,
            };
        }
        Entry::Occupied(o) => o,
    };
    let dest = occupied.get_mut();
    let Some(old_best) = dest.best().cloned() else {
        occupied.remove();
        return OpResult::NOTHING;
    };
    if best_changes.is_some() {
        collect_next_hops(dest.paths(), &mut scratch.old_nh);
    }
    let stale_only = matches!(op, PathOp::RemoveStale(_));
    let (received_delta, stale_delta) = match op {
        PathOp::Upsert(path) => match dest.position(path.source) {
            Some(i) => {
                let Some(slot) = dest.paths_mut().get_mut(i) else {
                    return OpResult::NOTHING;
                };
                // A re-learned stale path stops being stale (RFC 4724 §4.2).
                let stale_delta = if slot.is_stale() { -1 } else { 0 };
                slot.flags &= !STALE;
                if same(&slot.attrs, &path.attrs) {
                    return OpResult {
                        stale_delta,
                        ..OpResult::NOTHING
                    };
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
                return OpResult::NOTHING;
            };
            let was_stale = dest.paths().get(i).is_some_and(Path::is_stale);
            if stale_only && !was_stale {
                return OpResult::NOTHING;
            }
            let stale_delta = if was_stale { -1 } else { 0 };
            let mut v = dest.take_vec();
            v.remove(i);
            match Dest::from_vec(v) {
                Some(d) => *dest = d,
                None => {
                    occupied.remove();
                    map.shrink_if_sparse(&key);
                    if let Some(changes) = best_changes {
                        changes.push(BestPathChange::gone(prefix));
                    }
                    let moved = BestMove {
                        prefix,
                        old_best: Some(old_best),
                        new_best: None,
                    };
                    return OpResult {
                        received_delta: -1,
                        stale_delta,
                        moved: Some(moved),
                    };
                }
            }
            (-1, stale_delta)
        }
    };
    let moved = rerun(prefix, dest, old_best, hint, ctx, scratch, best_changes);
    OpResult {
        received_delta,
        stale_delta,
        moved,
    }
}

/// Sets STALE on the paths `select` picks; returns how many changed.
pub(crate) fn mark_stale(map: &mut impl PrefixTable, select: impl Fn(&Path) -> bool) -> usize {
    let mut n = 0;
    for dest in map.dests_mut() {
        for p in dest.paths_mut() {
            if select(p) && !p.is_stale() {
                p.flags |= STALE;
                n += 1;
            }
        }
    }
    n
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
    best_changes: Option<&mut Vec<BestPathChange>>,
) -> Option<BestMove> {
    decide(dest.paths(), ctx, &mut scratch.decision);
    reorder(dest.paths_mut(), &scratch.decision);
    let new_best = dest.best()?.clone();
    if let Some(changes) = best_changes {
        collect_next_hops(dest.paths(), &mut scratch.new_nh);
        let forwarding_changed = !same(&old_best.attrs, &new_best.attrs)
            || (old_best.source == LOCAL_SOURCE) != (new_best.source == LOCAL_SOURCE)
            || scratch.old_nh != scratch.new_nh;
        if forwarding_changed {
            changes.push(BestPathChange {
                prefix,
                next_hops: HopList::from(scratch.new_nh.as_slice()),
                attributes: Some(full_attrs(&new_best, hint, Some(&mut scratch.full))),
                locally_originated: new_best.source == LOCAL_SOURCE,
            });
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

/// The distinct next hops of the ECMP set, sorted; empty for a locally
/// originated best path (nothing to install).
pub(crate) fn collect_next_hops(paths: &[Path], out: &mut Vec<IpAddr>) {
    out.clear();
    if paths.first().is_some_and(|p| p.source == LOCAL_SOURCE) {
        return;
    }
    for p in paths.iter().take_while(|p| p.flags & ECMP != 0) {
        if let Some(nh) = p.attrs.next_hop() {
            out.push(nh);
        }
    }
    out.sort_unstable();
    out.dedup();
}

/// The Loc-RIB entry of `paths` as a [`BestPathChange`].
/// The ECMP set to install for `paths` (best first); `nh` is scratch.
pub(crate) fn next_hops_for(paths: &[Path], nh: &mut Vec<IpAddr>) -> HopList {
    match paths {
        // A lone ECMP path (a new prefix): its next hop as it is, not read
        // back from `nh` right after being stored there.
        [p] if p.flags & ECMP != 0 && p.source != LOCAL_SOURCE => {
            HopList::from(p.attrs.next_hop().as_slice())
        }
        _ => {
            collect_next_hops(paths, nh);
            HopList::from(nh.as_slice())
        }
    }
}

pub(crate) fn change_for(
    prefix: Prefix,
    paths: &[Path],
    hint: Option<&Imported>,
    cache: Option<&mut FullCache>,
    nh: &mut Vec<IpAddr>,
) -> BestPathChange {
    let next_hops = next_hops_for(paths, nh);
    let best = paths.first();
    BestPathChange {
        prefix,
        next_hops,
        attributes: best.map(|p| full_attrs(p, hint, cache)),
        locally_originated: best.is_some_and(|p| p.source == LOCAL_SOURCE),
    }
}

#[cfg(test)]
mod tests {
    use super::super::hash::FastMap;
    use super::super::peer::PeerState;
    use super::*;
    use crate::types::Ipv4Prefix;

    fn test_ctx(peers: &FastMap<u32, PeerState>) -> DecisionCtx<'_> {
        DecisionCtx {
            local_asn: 65000,
            router_id: std::net::Ipv4Addr::new(10, 0, 0, 1),
            max_paths: 16,
            peers,
        }
    }

    /// Memory per route is a tracked figure: keep these from growing unnoticed.
    #[test]
    fn compact_layout() {
        assert_eq!(std::mem::size_of::<Path>(), 16);
        assert_eq!(std::mem::size_of::<Dest>(), 16);
        assert_eq!(std::mem::size_of::<ManyPaths>(), 32);
        assert_eq!(std::mem::size_of::<(Ipv4Prefix, Dest)>(), 24);
        assert_eq!(std::mem::size_of::<(Ipv6Marked, Dest)>(), 24);
        assert_eq!(std::mem::size_of::<(Ipv6Short, Dest)>(), 32);
        assert_eq!(std::mem::size_of::<(Ipv6Prefix, Dest)>(), 40);
    }

    /// The share cache is best-effort, so one set may live in two allocations:
    /// re-announcing an equal set in another allocation is no change at all.
    #[test]
    fn equal_sets_in_two_allocations_are_the_same_route() {
        use crate::types::{AsPath, AsPathSegment};
        let peers = FastMap::default();
        let ctx = test_ctx(&peers);
        let attrs = || {
            Arc::new(StoredAttrs::from_value(PathAttributes {
                as_path: AsPath {
                    segments: vec![AsPathSegment::Sequence(vec![65001, 65002])],
                },
                next_hop: Some("192.0.2.1".parse().unwrap()),
                ..PathAttributes::default()
            }))
        };
        let (a, b) = (attrs(), attrs());
        assert!(!Arc::ptr_eq(&a, &b));
        let mut map: ShardedMap<Ipv4Prefix, Dest> = ShardedMap::default();
        let key = Ipv4Prefix::new("10.0.0.0".parse().unwrap(), 8).unwrap();
        let mut scratch = Scratch::default();
        let mut changes = Vec::new();
        let r = apply_op(
            &mut map,
            key,
            PathOp::Upsert(Path::new(a, 1)),
            None,
            true,
            &ctx,
            &mut scratch,
            Some(&mut changes),
        );
        assert_eq!((r.received_delta, changes.len()), (1, 1));
        assert!(r.moved.is_some());
        let r = apply_op(
            &mut map,
            key,
            PathOp::Upsert(Path::new(b, 1)),
            None,
            true,
            &ctx,
            &mut scratch,
            Some(&mut changes),
        );
        assert_eq!((r.received_delta, changes.len()), (0, 1));
        assert!(r.moved.is_none());
        // A second source makes a two-path destination; removing it goes back to one.
        let r = apply_op(
            &mut map,
            key,
            PathOp::Upsert(Path::new(attrs(), 2)),
            None,
            true,
            &ctx,
            &mut scratch,
            Some(&mut changes),
        );
        assert_eq!(r.received_delta, 1);
        assert!(matches!(map.get(&key), Some(Dest::Many(m)) if matches!(**m, ManyPaths::Two(_))));
        apply_op(
            &mut map,
            key,
            PathOp::Remove(2),
            None,
            true,
            &ctx,
            &mut scratch,
            Some(&mut changes),
        );
        assert!(matches!(map.get(&key), Some(Dest::One(p)) if p.source == 1));
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
            Some(&mut changes),
        );
        assert_eq!((r.received_delta, changes.len()), (1, 1));
        assert!(r.moved.is_none());
        assert_eq!(changes[0].next_hops, vec!["192.0.2.1".parse().unwrap()]);
    }

    /// An IPv6 prefix of at most 63 bits goes to the marked-key table, a /64
    /// to the short-key one, a longer one to the third; either way it is
    /// found, listed, marked and removed as itself.
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
            apply_op(t, k, op, None, true, &ctx, &mut scratch, Some(&mut changes)).received_delta
        };
        for k in keys {
            assert_eq!(
                op(&mut t, k, PathOp::Upsert(Path::new(attrs.clone(), 1))),
                1
            );
        }
        assert_eq!(
            (t.marked.len(), t.short.len(), t.long.len(), t.len()),
            (3, 1, 2, 6)
        );
        assert!(
            keys.iter()
                .all(|k| t.get(k).is_some_and(|d| d.paths().len() == 1))
        );
        let mut listed: Vec<Ipv6Prefix> = t.iter().map(|(k, _)| k).collect();
        listed.sort();
        keys.sort();
        assert_eq!(listed, keys);
        assert_eq!(mark_stale(&mut t, |p| p.source == 1), 6);
        for k in keys {
            assert_eq!(op(&mut t, k, PathOp::RemoveStale(1)), -1);
            assert!(t.get(&k).is_none());
        }
        assert_eq!(t.len(), 0);
        let prefixes: Vec<Prefix> = changes.iter().map(|c| c.prefix).collect();
        assert_eq!(prefixes.len(), 12);
        assert!(
            keys.iter()
                .all(|k| prefixes.iter().filter(|p| **p == Prefix::V6(*k)).count() == 2)
        );
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
