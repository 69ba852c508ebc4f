//! [`ShardedTable`]: the RIB's prefix tables (entries that hold a prefix
//! and its paths, see `table.rs` and `entry.rs`), split into [`SHARDS`]
//! hash tables that grow and shrink one at a time.
//!
//! Each shard is a `hashbrown::HashTable` of one stored type ([`Slot`]:
//! key and value together, found by its key), so an entry can be laid out
//! as one unit: an IPv4 prefix with one path is 16 bytes, where a
//! `HashMap<Ipv4Prefix, Dest>` entry is 24 (`entry.rs`).
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

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::LazyLock;

use hashbrown::HashTable;
pub(crate) use hashbrown::hash_table::Entry;

use super::hash::RunBuildHasher;

/// A key that belongs to a run of up to sixteen neighbours.
pub trait RunKey: Copy + Eq {
    /// The key's run as an address and a length (the same for all its
    /// neighbours) and its place in the run, 0..16.
    fn run(&self) -> (u128, u8, u8);
}

/// A key as the shards hash it: by [`RunKey::run`].
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

/// What a [`ShardedTable`] stores: one entry that knows its key.
pub(crate) trait Slot {
    type Key: RunKey;
    fn key(&self) -> Self::Key;
    /// Whether this is `key`'s entry (a cheaper compare may override it).
    fn is(&self, key: &Self::Key) -> bool {
        self.key() == *key
    }
}

/// A key and its value as one entry.
impl<K: RunKey, V> Slot for (K, V) {
    type Key = K;
    fn key(&self) -> K {
        self.0
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

/// A hash table split into [`SHARDS`] tables; see the module doc.
#[derive(Debug, Clone)]
pub(crate) struct ShardedTable<E> {
    /// Empty until the first insert, then [`SHARDS`] tables.
    shards: Vec<HashTable<E>>,
    hasher: RunBuildHasher,
}

impl<E> Default for ShardedTable<E> {
    fn default() -> Self {
        ShardedTable {
            shards: Vec::new(),
            hasher: RunBuildHasher::default(),
        }
    }
}

impl<E: Slot> ShardedTable<E> {
    fn hash(&self, key: &E::Key) -> u64 {
        self.hasher.hash_one(Run(*key))
    }

    /// The shard of a key's hash.
    fn pick(h: u64) -> usize {
        let slice = (h >> PICK_SHIFT) as usize & ((1 << PICK_BITS) - 1);
        PICK.get(slice).map_or(0, |&s| s as usize)
    }

    pub(crate) fn get(&self, key: &E::Key) -> Option<&E> {
        let h = self.hash(key);
        self.shards.get(Self::pick(h))?.find(h, |e| e.is(key))
    }

    #[cfg(test)]
    pub(crate) fn get_mut(&mut self, key: &E::Key) -> Option<&mut E> {
        let h = self.hash(key);
        self.shards
            .get_mut(Self::pick(h))?
            .find_mut(h, |e| e.is(key))
    }

    /// The entry of `key` in its shard (the shards are made on first use).
    pub(crate) fn entry(&mut self, key: E::Key) -> Entry<'_, E> {
        if self.shards.is_empty() {
            self.shards = (0..SHARDS).map(|_| HashTable::new()).collect();
        }
        let h = self.hash(&key);
        let hasher = self.hasher;
        // `pick` is always below SHARDS, the length of `shards` here.
        let last = self.shards.len() - 1;
        let shard = &mut self.shards[Self::pick(h).min(last)];
        shard.entry(h, |e| e.is(&key), move |e| hasher.hash_one(Run(e.key())))
    }

    /// Rebuilds `key`'s shard at its size when under a quarter of its
    /// capacity is used: O(shard) once after many removals from it,
    /// amortised over them; never during a load (a shard being filled is at
    /// least 7/16 full). Call after removing `key`.
    pub(crate) fn shrink_if_sparse(&mut self, key: &E::Key) {
        let i = Self::pick(self.hash(key));
        let hasher = self.hasher;
        let Some(s) = self.shards.get_mut(i) else {
            return;
        };
        if s.capacity() > SHRINK_ABOVE && s.len() < s.capacity() / 4 {
            s.shrink_to_fit(|e| hasher.hash_one(Run(e.key())));
        }
        if s.is_empty() && self.shards.iter().all(HashTable::is_empty) {
            self.shards = Vec::new();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(HashTable::len).sum()
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.shards.iter().map(HashTable::capacity).sum()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &E> {
        self.shards.iter().flat_map(HashTable::iter)
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut E> {
        self.shards.iter_mut().flat_map(HashTable::iter_mut)
    }
}

#[cfg(test)]
impl<K: RunKey, V> ShardedTable<(K, V)> {
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.entry(key) {
            Entry::Occupied(mut o) => Some(std::mem::replace(&mut o.get_mut().1, value)),
            Entry::Vacant(v) => {
                v.insert((key, value));
                None
            }
        }
    }

    /// Removes `key`; its shard is rebuilt smaller when left mostly empty.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let h = self.hash(key);
        let shard = self.shards.get_mut(Self::pick(h))?;
        let v = match shard.find_entry(h, |e| e.is(key)) {
            Ok(o) => Some(o.remove().0.1),
            Err(_) => None,
        };
        self.shrink_if_sparse(key);
        v
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
        let mut m: ShardedTable<(u32, u32)> = ShardedTable::default();
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
            .map(|&(k, v)| {
                assert_eq!(v, k * 2);
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
        for (_, v) in m.iter_mut() {
            *v += 1;
        }
        assert_eq!(m.get(&5), Some(&(5, 11)));
        if let Some(e) = m.get_mut(&5) {
            e.1 = 0;
        }
        assert_eq!(m.get(&5), Some(&(5, 0)));
        // Remove all but every 16th key, from the top down.
        for i in (0..N).rev().filter(|i| i % 16 != 0) {
            assert!(m.remove(&i).is_some(), "{i}");
        }
        assert_eq!(m.len(), (N / 16) as usize);
        assert!(m.capacity() < (N / 16) as usize * 4, "{}", m.capacity());
        assert_eq!(m.get(&17), None);
        assert_eq!(m.get(&32), Some(&(32, 65)));
        for i in (0..N).filter(|i| i % 16 != 0) {
            assert!(matches!(m.entry(i), Entry::Vacant(_)));
        }
        // Back to empty: no tables kept.
        for i in (0..N).step_by(16) {
            match m.entry(i) {
                Entry::Occupied(o) => {
                    let _ = o.remove();
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
        let mut m: ShardedTable<(u32, ())> = ShardedTable::default();
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
