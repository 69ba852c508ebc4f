//! Hashing and interning for the reconciler's per-prefix state.
//!
//! - [`Seeded`]: a fast keyed hash for the maps keyed by prefix (a folded
//!   128-bit multiply per word, seeded per map from the standard library's
//!   random keys, so a peer choosing prefixes cannot predict collisions).
//!   SipHash, the default, was a visible share of the bulk-load profile.
//! - [`RunSeeded`]: the same hash for the slot maps' keys, taken by *run*
//!   (docs/design.md, "Prefix maps that keep neighbours near"; here B = 4):
//!   the 16 prefixes of one length that differ only in their last 4 network
//!   bits take consecutive buckets, so an address-ordered bulk load touches
//!   each run's control group and slots once instead of two random cache
//!   lines per prefix. Where a run lands is still the seeded hash.
//! - [`Interner`]: one shared [`KernelRoute`] per distinct route. A million
//!   learned routes usually use a handful of next-hop sets, interned once
//!   by the route table's handles and the task.
//! - [`Handles`]: the reconciler's slots' routes by a 3-byte [`Id`]. The
//!   table holds one [`Shared`] per distinct route a slot uses, with a plain
//!   count of the slot sides using it; a slot side is an `Id`, not an 8-byte
//!   pointer with an atomic count (an IPv4 slot: 11 bytes instead of 24).
//!   Arcs handed in (one per command) are dropped in bursts
//!   ([`SPENT_BURST`]): the route table's callers clone the same `Arc`s on
//!   another thread, and a drop per command would pull the count's cache
//!   line across cores once per route.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;

use crate::types::KernelRoute;

/// A route shared by every prefix (in `desired` and `kernel`) that uses it.
pub(crate) type Shared = Arc<KernelRoute>;

/// Map keyed by prefix with the fast keyed hash.
pub(crate) type FastMap<K, V> = HashMap<K, V, Seeded>;
/// Set of prefixes with the fast keyed hash.
pub(crate) type FastSet<K> = HashSet<K, Seeded>;

const K: u64 = 0x9e37_79b9_7f4a_7c15;

fn fold(a: u64, b: u64) -> u64 {
    let m = u128::from(a) * u128::from(b);
    (m as u64) ^ ((m >> 64) as u64)
}

/// Random per-map seed; see the module docs.
#[derive(Clone)]
pub(crate) struct Seeded(u64);

impl Default for Seeded {
    fn default() -> Self {
        Seeded(RandomState::new().build_hasher().finish())
    }
}

impl BuildHasher for Seeded {
    type Hasher = Fast;
    fn build_hasher(&self) -> Fast {
        Fast(self.0)
    }
}

/// The hasher state of [`Seeded`].
pub(crate) struct Fast(u64);

impl Hasher for Fast {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (w, b) in word.iter_mut().zip(chunk) {
                *w = *b;
            }
            self.write_u64(u64::from_le_bytes(word));
        }
        self.write_u64(bytes.len() as u64);
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = fold(self.0 ^ i, K);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        fold(self.0, K.rotate_left(32))
    }
}

/// Network bits that pick a prefix's place in its run (B in docs/design.md).
pub(crate) const RUN_BITS: u32 = 4;

/// A prefix of `len` bits whose network number is right-aligned in the low
/// `width` bits of `net`: its run (the network with its last [`RUN_BITS`]
/// bits cleared) and its place in the run (those bits). A prefix shorter
/// than `RUN_BITS` (or longer than `width`) is a run of its own.
pub(crate) fn run_of(net: u64, len: u8, width: u32) -> (u64, u8) {
    let len32 = u32::from(len);
    if len32 < RUN_BITS || len32 > width {
        return (net, 0);
    }
    let shift = width - len32;
    let mask = (1u64 << RUN_BITS) - 1;
    ((net & !(mask << shift)), ((net >> shift) & mask) as u8)
}

/// Keyed hash by run for the slot maps (see the module docs). A key's
/// `Hash` feeds its run as words (`write_u64`) and then its place with
/// `write_u8` (slots.rs).
#[derive(Clone, Default)]
pub(crate) struct RunSeeded(Seeded);

impl BuildHasher for RunSeeded {
    type Hasher = RunFast;
    fn build_hasher(&self) -> RunFast {
        RunFast {
            inner: self.0.build_hasher(),
            place: 0,
        }
    }
}

/// The hasher state of [`RunSeeded`].
pub(crate) struct RunFast {
    inner: Fast,
    place: u64,
}

impl Hasher for RunFast {
    fn write(&mut self, bytes: &[u8]) {
        self.inner.write(bytes);
    }
    /// The key's place in its run.
    fn write_u8(&mut self, place: u8) {
        self.place = u64::from(place) & ((1 << RUN_BITS) - 1);
    }
    fn write_u64(&mut self, i: u64) {
        self.inner.write_u64(i);
    }
    /// The run's hash with the place in its low bits (hashbrown's bucket
    /// index: consecutive buckets) and in bits 59.. (hashbrown's 7-bit
    /// control tag: distinct within a run). The run is the folded state of
    /// its words as written, without [`Fast::finish`]'s extra fold: every
    /// bit of a folded multiply already depends on every bit of the word
    /// (its high half does), and a slot key is one or two words, so the
    /// second multiply only lengthened the chain the probe's address
    /// waits on (and the rehash of every key when a table doubles).
    fn finish(&self) -> u64 {
        let x = self.inner.0;
        let low = (1u64 << RUN_BITS) - 1;
        ((x & !low) | self.place) ^ (self.place << 59)
    }
}

/// Map hashed by run ([`RunSeeded`]).
pub(crate) type RunMap<K, V> = HashMap<K, V, RunSeeded>;

/// Arcs handed to [`Handles::hold`] that are dropped together (see the
/// module docs); 32 KiB.
const SPENT_BURST: usize = 4096;

/// A slot side: 1 + the index of its route in [`Handles`], 0 for none, in
/// 3 bytes (up to [`Id::MAX`] distinct routes held at once). Bytes, so a
/// slot (two sides) has alignment 1 and its map entry no padding.
///
/// Why 3: every held route is used by at least one slot side, so running
/// out takes more than 8M prefixes that each have routes of their own
/// (a table's routes share a handful of next-hop sets); a 4th byte cost
/// 2 bytes in every bucket of the slot maps (~3.4 B/route at 1M).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Id([u8; 3]);

impl Id {
    /// No route.
    pub(crate) const NONE: Id = Id([0; 3]);

    /// Distinct routes [`Handles`] can hold at once.
    pub(crate) const MAX: usize = (1 << 24) - 1;

    pub(crate) fn is_some(self) -> bool {
        self != Id::NONE
    }

    fn index(self) -> Option<usize> {
        let [a, b, c] = self.0;
        (u32::from_le_bytes([a, b, c, 0]) as usize).checked_sub(1)
    }

    fn of(index: usize) -> Option<Id> {
        let n = u32::try_from(index + 1)
            .ok()
            .filter(|n| *n as usize <= Id::MAX)?;
        let [a, b, c, _] = n.to_le_bytes();
        Some(Id([a, b, c]))
    }
}

struct Held {
    route: Option<Shared>,
    /// Slot sides using `route`.
    uses: usize,
}

/// The routes the slots use, by [`Id`] (see the module docs). Each id's
/// route is kept while a slot side uses it; a freed id is reused.
#[derive(Default)]
pub(crate) struct Handles {
    held: Vec<Held>,
    free: Vec<usize>,
    /// Index in `held` by the route's address (routes arrive interned: one
    /// `Arc` per distinct route, whose address is stable while held here).
    by_addr: FastMap<usize, usize>,
    /// The last route held and its id: bulk loads repeat the same route.
    last: Option<(usize, Id)>,
    spent: Vec<Shared>,
}

impl Handles {
    /// The route of `id` (none for [`Id::NONE`]).
    pub(crate) fn get(&self, id: Id) -> Option<&Shared> {
        self.held.get(id.index()?)?.route.as_ref()
    }

    /// One more slot side uses `route`: its id, [`Id::NONE`] only if
    /// [`Id::MAX`] distinct routes are held.
    pub(crate) fn hold(&mut self, route: Shared) -> Id {
        let addr = Arc::as_ptr(&route).addr();
        let known = match self.last {
            Some((a, id)) if a == addr => id.index(),
            _ => self.by_addr.get(&addr).copied(),
        };
        if let Some(i) = known
            && let Some(h) = self.held.get_mut(i)
            && let Some(id) = Id::of(i)
        {
            h.uses += 1;
            self.last = Some((addr, id));
            self.spend(route);
            return id;
        }
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.held.push(Held {
                    route: None,
                    uses: 0,
                });
                self.held.len() - 1
            }
        };
        let Some(id) = Id::of(i) else {
            tracing::error!(
                max = Id::MAX,
                "too many distinct routes held: route not recorded"
            );
            self.free.push(i);
            return Id::NONE;
        };
        if let Some(h) = self.held.get_mut(i) {
            *h = Held {
                route: Some(route),
                uses: 1,
            };
        }
        self.by_addr.insert(addr, i);
        self.last = Some((addr, id));
        id
    }

    /// The id of `route` if it is the route last held (the bulk case: a
    /// burst repeats one route), without taking a use. `last` is cleared
    /// when its id is freed, and a held route's address is not reused, so
    /// a match is `route` itself.
    pub(crate) fn last_held(&self, route: &Shared) -> Option<Id> {
        match self.last {
            Some((addr, id)) if addr == Arc::as_ptr(route).addr() => Some(id),
            _ => None,
        }
    }

    /// `n` more slot sides use `id`'s route, handed in again as `route`
    /// (dropped in a burst, [`SPENT_BURST`]): [`hold`](Self::hold) without
    /// the lookup, for an id from [`last_held`](Self::last_held).
    pub(crate) fn hold_n(&mut self, id: Id, route: Shared, n: usize) {
        if let Some(h) = id.index().and_then(|i| self.held.get_mut(i))
            && h.route.is_some()
        {
            h.uses += n;
        }
        self.spend(route);
    }

    /// Drop an `Arc` handed in with the others of its burst (module docs).
    fn spend(&mut self, route: Shared) {
        self.spent.push(route);
        if self.spent.len() >= SPENT_BURST {
            self.spent.clear();
        }
    }

    /// [`hold`](Self::hold) of a route already held, by its id.
    pub(crate) fn hold_id(&mut self, id: Id) -> Id {
        match id.index().and_then(|i| self.held.get_mut(i)) {
            Some(h) if h.route.is_some() => {
                h.uses += 1;
                id
            }
            _ => Id::NONE,
        }
    }

    /// One slot side less uses `id`'s route; returns the route.
    pub(crate) fn release(&mut self, id: Id) -> Option<Shared> {
        let i = id.index()?;
        let h = self.held.get_mut(i)?;
        h.uses = h.uses.saturating_sub(1);
        if h.uses > 0 {
            return h.route.clone();
        }
        let route = h.route.take()?;
        self.by_addr.remove(&Arc::as_ptr(&route).addr());
        if self.last.is_some_and(|(_, l)| l == id) {
            self.last = None;
        }
        self.free.push(i);
        Some(route)
    }

    /// [`release`](Self::release) without the route.
    pub(crate) fn drop_use(&mut self, id: Id) {
        if let Some(h) = id.index().and_then(|i| self.held.get_mut(i))
            && h.uses > 1
        {
            h.uses -= 1;
            return;
        }
        self.release(id);
    }

    /// The distinct routes held (by slot sides or requests in flight).
    pub(crate) fn routes(&self) -> impl Iterator<Item = &Shared> {
        self.held.iter().filter_map(|h| h.route.as_ref())
    }

    /// Distinct routes held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.held.len() - self.free.len()
    }

    /// Uses of all held routes (checked in debug builds against the slot
    /// sides and the requests in flight that hold them).
    pub(crate) fn uses(&self) -> usize {
        self.held
            .iter()
            .filter(|h| h.route.is_some())
            .map(|h| h.uses)
            .sum()
    }

    /// Ids ever handed out (held or free).
    #[cfg(test)]
    pub(crate) fn ids(&self) -> usize {
        self.held.len()
    }

    /// Drop the Arcs waiting to be dropped in a burst now.
    #[cfg(test)]
    pub(crate) fn drop_spent(&mut self) {
        self.spent.clear();
    }
}

/// One [`Shared`] per distinct route; routes nobody uses any more are
/// dropped by [`Interner::purge`].
#[derive(Default)]
pub(crate) struct Interner {
    set: HashSet<Shared>,
    /// The last route interned: bulk loads repeat the same route.
    last: Option<Shared>,
    /// Size after the last purge (purge again when it has doubled).
    kept: usize,
}

impl Interner {
    /// The shared copy of `route`.
    pub(crate) fn intern(&mut self, route: KernelRoute) -> Shared {
        if let Some(last) = &self.last
            && **last == route
        {
            return last.clone();
        }
        let shared = match self.set.get(&route) {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(route);
                self.set.insert(s.clone());
                s
            }
        };
        self.last = Some(shared.clone());
        shared
    }

    /// Drop routes only the interner holds, when it has grown enough since
    /// the last purge that the scan pays for itself.
    pub(crate) fn purge(&mut self) {
        if self.set.len() < 2 * self.kept + 64 {
            return;
        }
        self.last = None;
        self.set.retain(|s| Arc::strong_count(s) > 1);
        self.set.shrink_to_fit();
        self.kept = self.set.len();
    }

    /// Distinct routes held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NextHop;

    fn via(last: u8) -> KernelRoute {
        KernelRoute::Unicast {
            next_hops: vec![NextHop {
                gateway: std::net::Ipv4Addr::new(192, 0, 2, last).into(),
                dev: None,
                onlink: false,
            }],
        }
    }

    #[test]
    fn equal_routes_share_one_allocation_and_unused_ones_go() {
        let mut i = Interner::default();
        let a = i.intern(via(1));
        let b = i.intern(via(2));
        let a2 = i.intern(via(1));
        assert!(Arc::ptr_eq(&a, &a2));
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(i.len(), 2);
        drop(b);
        let keep: Vec<Shared> = (10..80).map(|n| i.intern(via(n))).collect();
        drop(keep);
        i.purge();
        assert_eq!(i.len(), 1, "only the route still used is kept");
        assert!(Arc::ptr_eq(&a, &i.intern(via(1))));
    }

    #[test]
    fn ids_take_three_bytes_up_to_their_limit() {
        assert_eq!(std::mem::size_of::<Id>(), 3);
        for i in [0, 1, 255, 256, 65_536, Id::MAX - 1] {
            let id = Id::of(i).unwrap();
            assert!(id.is_some());
            assert_eq!(id.index(), Some(i));
        }
        assert!(Id::of(Id::MAX).is_none(), "one past the last id");
        assert_eq!(Id::NONE.index(), None);
    }

    #[test]
    fn runs_take_consecutive_buckets_and_distinct_tags() {
        let s = RunSeeded::default();
        let h = |net: u64, len: u8| {
            let (run, place) = run_of(net, len, 32);
            let mut st = s.build_hasher();
            st.write_u64(run << 8 | u64::from(len));
            st.write_u8(place);
            st.finish()
        };
        // The /32s 10.0.0.16..31: one run, places 0..16.
        let base = h(0x0a00_0010, 32);
        for i in 0..16u64 {
            let x = h(0x0a00_0010 + i, 32);
            assert_eq!(x & !0xf, (base & !0xf) ^ (i << 59), "{i}");
            assert_eq!(x & 0xf, i);
        }
        // The next run lands elsewhere; a /24's run is its sixteen /24s.
        assert_ne!(h(0x0a00_0020, 32) & !0xf, base & !0xf);
        assert_eq!(run_of(0x0a01_0500, 24, 32), (0x0a01_0000, 5));
        assert_eq!(run_of(0x0a00_0000, 3, 32), (0x0a00_0000, 0));
        // Runs spread as the plain keyed hash's keys do, over the bucket
        // index and over the 7-bit tag (one folded multiply, no finishing one).
        let mut seen = HashSet::new();
        let mut tags = HashSet::new();
        for n in 0u64..10_000 {
            seen.insert(h(n << 4, 32) & 0xff0);
            tags.insert(h(n << 4, 32) >> 57);
        }
        assert_eq!(seen.len(), 256);
        assert_eq!(tags.len(), 128);
    }

    #[test]
    fn seeded_hash_spreads_prefixes() {
        let s = Seeded::default();
        let mut seen = HashSet::new();
        for n in 0u32..10_000 {
            let p = ipnetwork::Ipv4Network::new(std::net::Ipv4Addr::from(n << 8), 24).unwrap();
            // Low 12 bits (the bucket index of a 4096-bucket table) and top 7.
            seen.insert(s.hash_one(p) & 0xfff);
        }
        assert!(
            seen.len() > 3500,
            "only {} of 4096 buckets used",
            seen.len()
        );
    }
}
