//! [`ShardedMap`]: the RIB's prefix tables (prefix → [`Dest`](super::table::Dest)),
//! split into [`SHARDS`] hash tables that grow and shrink one at a time.
//!
//! One big open-addressing table doubles in one step: while it rehashes,
//! the old table and the new one (twice its size) are alive together, so a
//! table of N routes peaks at three times the memory of the table it
//! outgrew (at 1M IPv4 routes: ~78 MB for a ~52 MB table). Here a key's
//! hash picks its shard (bits [`PICK_SHIFT`]..+12, apart from the low bits
//! and the top 7 bits hashbrown uses inside a table), and only that shard
//! grows, so the transient is one shard's old table.
//!
//! The shards' shares of the hash space are not equal: shard `j` gets a
//! share ∝ 2^(j/SHARDS), spanning one octave. Equal shares would have every
//! shard double at the same table size, so the whole map's load would still
//! swing between 7/16 and 7/8 (between 1.14 and 2.29 buckets per entry;
//! 2.1 at 1M routes). With the shares spread over an octave, the shards'
//! loads are spread evenly (in log scale) over that range at any size, and
//! the map holds ~1.65 buckets per entry whatever the number of routes.
//!
//! Every shard uses the same seeded hasher, so a peer can no more aim its
//! prefixes at one shard than at one bucket; if it could, the map would
//! degrade to one ordinary table, never worse. Iteration visits the shards
//! in turn; its order is unspecified, as for a `HashMap`.
//!
//! Keys are hashed by run ([`RunKey`], [`RunHasher`](super::hash::RunHasher)):
//! the sixteen prefixes of one length that differ only in their last four
//! bits share a shard and take consecutive buckets in it. Peers send full
//! tables in address order, so a load touches each run's control group and
//! slots once rather than two random cache lines per prefix (1M /28s in
//! order: lab/bench/README.md, session 6 cprib lane). Where a run lands is
//! still the seeded hash of the run.

use std::collections::hash_map::{Entry, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::LazyLock;

use super::hash::RunBuildHasher;

/// A key that belongs to a run of up to sixteen neighbours.
pub trait RunKey: Copy + Eq {
    /// The key's run as an address and a length (the same for all its
    /// neighbours) and its place in the run, 0..16.
    fn run(&self) -> (u128, u8, u8);
}

/// A key as the shards store it: hashed by [`RunKey::run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct Run<K>(pub K);

impl<K: RunKey> Hash for Run<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (run, len, place) = self.0.run();
        state.write_u128(run);
        state.write_u64(u64::from(len));
        state.write_u8(place);
    }
}

/// Number of shards.
pub(crate) const SHARDS: usize = 64;
/// Hash bits that pick a shard (through [`PICK`]).
const PICK_BITS: u32 = 12;
/// Where those bits start in the 64-bit hash.
const PICK_SHIFT: u32 = 40;
/// A shard is rebuilt at its size when under a quarter of its capacity is
/// used and the capacity is above this.
const SHRINK_ABOVE: usize = 128;

/// Shard of each `PICK_BITS`-bit hash slice: slice `u` (as a fraction of
/// the slice space) goes to shard `⌊SHARDS · log2(1 + u)⌋`, which gives
/// shard `j` the share 2^((j+1)/SHARDS) − 2^(j/SHARDS) ∝ 2^(j/SHARDS).
static PICK: LazyLock<[u8; 1 << PICK_BITS]> = LazyLock::new(|| {
    let mut t = [0u8; 1 << PICK_BITS];
    let n = t.len() as f64;
    for (i, s) in t.iter_mut().enumerate() {
        let u = (i as f64 + 0.5) / n;
        let j = (SHARDS as f64 * (1.0 + u).log2()) as usize;
        *s = j.min(SHARDS - 1) as u8;
    }
    t
});

/// A hash map split into [`SHARDS`] tables; see the module doc.
#[derive(Debug, Clone)]
pub(crate) struct ShardedMap<K, V> {
    /// Empty until the first insert, then [`SHARDS`] tables.
    shards: Vec<HashMap<Run<K>, V, RunBuildHasher>>,
    hasher: RunBuildHasher,
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap {
            shards: Vec::new(),
            hasher: RunBuildHasher::default(),
        }
    }
}

impl<K: RunKey, V> ShardedMap<K, V> {
    fn pick(&self, key: &K) -> usize {
        let h = self.hasher.hash_one(Run(*key));
        let slice = (h >> PICK_SHIFT) as usize & ((1 << PICK_BITS) - 1);
        PICK.get(slice).map_or(0, |&s| s as usize)
    }

    fn shard(&self, key: &K) -> Option<&HashMap<Run<K>, V, RunBuildHasher>> {
        self.shards.get(self.pick(key))
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.shard(key)?.get(&Run(*key))
    }

    #[cfg(test)]
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.pick(key);
        self.shards.get_mut(i)?.get_mut(&Run(*key))
    }

    /// The entry of `key` in its shard (the shards are made on first use).
    pub(crate) fn entry(&mut self, key: K) -> Entry<'_, Run<K>, V> {
        if self.shards.is_empty() {
            let h = self.hasher;
            self.shards = (0..SHARDS).map(|_| HashMap::with_hasher(h)).collect();
        }
        let i = self.pick(&key);
        // `pick` is always below SHARDS, the length of `shards` here.
        let last = self.shards.len() - 1;
        let shard = &mut self.shards[i.min(last)];
        shard.entry(Run(key))
    }

    #[cfg(test)]
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.entry(key) {
            Entry::Occupied(mut o) => Some(o.insert(value)),
            Entry::Vacant(v) => {
                v.insert(value);
                None
            }
        }
    }

    /// Removes `key`; its shard is rebuilt smaller when left mostly empty.
    #[cfg(test)]
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let v = self.get_mut_shard(key)?.remove(&Run(*key));
        self.shrink_if_sparse(key);
        v
    }

    fn get_mut_shard(&mut self, key: &K) -> Option<&mut HashMap<Run<K>, V, RunBuildHasher>> {
        let i = self.pick(key);
        self.shards.get_mut(i)
    }

    /// Rebuilds `key`'s shard at its size when under a quarter of its
    /// capacity is used: O(shard) once after many removals from it,
    /// amortised over them; never during a load (a shard being filled is at
    /// least 7/16 full). Call after removing `key`.
    pub(crate) fn shrink_if_sparse(&mut self, key: &K) {
        let Some(s) = self.get_mut_shard(key) else {
            return;
        };
        if s.capacity() > SHRINK_ABOVE && s.len() < s.capacity() / 4 {
            s.shrink_to_fit();
        }
        if s.is_empty() && self.shards.iter().all(HashMap::is_empty) {
            self.shards = Vec::new();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.shards.iter().map(HashMap::capacity).sum()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, &V)> {
        self.shards
            .iter()
            .flat_map(HashMap::iter)
            .map(|(k, v)| (k.0, v))
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.shards.iter_mut().flat_map(HashMap::values_mut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    impl RunKey for u32 {
        fn run(&self) -> (u128, u8, u8) {
            (u128::from(self & !0xf), 0, (self & 0xf) as u8)
        }
    }

    #[test]
    fn shares_span_one_octave() {
        let mut n = [0usize; SHARDS];
        for &s in PICK.iter() {
            n[s as usize] += 1;
        }
        let (min, max) = (n.iter().min().copied(), n.iter().max().copied());
        let (Some(min), Some(max)) = (min, max) else {
            unreachable!()
        };
        assert!(min > 0, "{n:?}");
        // Shard 0 gets ~1/(SHARDS ln 2) of 4096 (~92), the last twice that.
        assert!(
            (40..=50).contains(&min) && (85..=95).contains(&max),
            "{n:?}"
        );
        assert!(n.windows(2).all(|w| w[0] <= w[1] + 1), "{n:?}");
    }

    /// Grows across every shard's resize points, removes in another order,
    /// re-inserts, and checks contents, length, iteration (each key once)
    /// and that capacity is given back.
    #[test]
    fn grow_remove_iterate() {
        let mut m: ShardedMap<u32, u32> = ShardedMap::default();
        assert_eq!((m.len(), m.iter().count()), (0, 0));
        assert_eq!(m.get(&1), None);
        assert_eq!(m.remove(&1), None);
        const N: u32 = 200_000;
        for i in 0..N {
            assert_eq!(m.insert(i, i * 2), None);
            if i % 9973 == 0 {
                assert_eq!(m.len(), i as usize + 1);
            }
        }
        assert_eq!(m.insert(7, 1), Some(14));
        assert_eq!(m.insert(7, 14), Some(1));
        assert_eq!(m.len(), N as usize);
        let seen: HashSet<u32> = m
            .iter()
            .map(|(k, v)| {
                assert_eq!(*v, k * 2);
                k
            })
            .collect();
        assert_eq!(seen.len(), N as usize);
        // Every shard is used, and none holds more than ~3x its fair share.
        assert!(m.shards.iter().all(|s| !s.is_empty()));
        let fair = N as usize / SHARDS;
        assert!(m.shards.iter().all(|s| s.len() < 3 * fair));
        // Capacity per entry stays inside one table's range (1 to 2).
        let per = m.capacity() as f64 / N as f64;
        assert!(
            (1.0..=2.0).contains(&per),
            "capacity {} for {N}",
            m.capacity()
        );
        for v in m.values_mut() {
            *v += 1;
        }
        assert_eq!(m.get(&5), Some(&11));
        if let Some(v) = m.get_mut(&5) {
            *v = 0;
        }
        assert_eq!(m.get(&5), Some(&0));
        // Remove all but every 16th key, from the top down.
        for i in (0..N).rev().filter(|i| i % 16 != 0) {
            assert!(m.remove(&i).is_some(), "{i}");
        }
        assert_eq!(m.len(), (N / 16) as usize);
        assert!(m.capacity() < (N / 16) as usize * 4, "{}", m.capacity());
        assert_eq!(m.get(&17), None);
        assert_eq!(m.get(&32), Some(&65));
        for i in (0..N).filter(|i| i % 16 != 0) {
            assert!(matches!(m.entry(i), Entry::Vacant(_)));
        }
        // Back to empty: no tables kept.
        for i in (0..N).step_by(16) {
            match m.entry(i) {
                Entry::Occupied(o) => {
                    o.remove();
                    m.shrink_if_sparse(&i);
                }
                Entry::Vacant(_) => panic!("{i} missing"),
            }
        }
        assert_eq!((m.len(), m.capacity(), m.shards.len()), (0, 0, 0));
        assert_eq!(m.insert(3, 3), None);
        assert_eq!(m.len(), 1);
    }

    /// At any size the map holds fewer buckets per entry than one table at
    /// its worst, and its shards do not all double at once.
    #[test]
    fn load_is_smoothed() {
        let mut m: ShardedMap<u32, ()> = ShardedMap::default();
        let (mut worst, mut best): (f64, f64) = (0.0, 2.0);
        for i in 0..300_000u32 {
            m.insert(i, ());
            if i > 20_000 && i % 1000 == 0 {
                let per = m.capacity() as f64 / m.len() as f64;
                (worst, best) = (worst.max(per), best.min(per));
            }
        }
        // One table swings between 1 and 2 (capacity is 7/8 of the buckets,
        // and doubles when full); spread over an octave the map stays near
        // 1/(2 ln 2 · 7/8) · 7/8 ≈ 1.44 (a little wider than for single keys:
        // the test keys come in runs of 16, and a run goes to one shard).
        assert!(worst < 1.6 && best > 1.25, "capacity/len {best}..{worst}");
    }
}
