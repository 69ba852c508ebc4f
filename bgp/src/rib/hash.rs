//! A fast, non-cryptographic hasher for the RIB's tables (prefix → paths,
//! attribute interning, export caches).
//!
//! The state is combined Fx-style per word and finished with the MurmurHash3
//! 64-bit finaliser, so every input bit reaches the low bits hashbrown uses to
//! pick a bucket (plain Fx leaves them weak for keys like /24 prefixes whose
//! low address bits are all zero). Each table starts from a random seed (taken
//! from std's `RandomState`), so a peer cannot precompute prefixes that all
//! land in one bucket; for a given prefix length, distinct addresses never
//! collide on the full 64-bit hash (every step is a bijection).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

const SEED_MUL: u64 = 0xf135_7aea_2e62_a9c5;

/// The RIB's hasher; see the module doc.
#[derive(Clone, Copy, Default, Debug)]
pub struct RibHasher {
    state: u64,
}

impl RibHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(SEED_MUL);
    }
}

impl Hasher for RibHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // MurmurHash3 fmix64.
        let mut x = self.state;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^= x >> 33;
        x
    }
}

/// `BuildHasher` for [`RibHasher`], with a per-table random seed.
#[derive(Clone, Copy, Debug)]
pub struct RibBuildHasher {
    seed: u64,
}

impl Default for RibBuildHasher {
    fn default() -> Self {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        RibBuildHasher { seed }
    }
}

impl BuildHasher for RibBuildHasher {
    type Hasher = RibHasher;
    #[inline]
    fn build_hasher(&self) -> RibHasher {
        RibHasher { state: self.seed }
    }
}
/// The RIB's hasher for keys that come in runs of neighbours (the prefix
/// tables, `shard.rs`): fed one key's run through `write_u128`/`write_u64`
/// (seeded and mixed as [`RibHasher`] does) and its place in the run (0..16)
/// through `write_u8`, it puts that place into the hash's low 4 bits and
/// its top bits. The sixteen keys of a run then get consecutive buckets in
/// a hashbrown table (bucket = hash & mask), one 16-byte control group and
/// adjacent slots, so keys inserted or looked up in address order share
/// cache lines; and distinct control tags (top 7 bits), so a lookup does not
/// compare against the run's other keys. A peer still cannot aim runs at
/// buckets: where a run lands is the seeded hash of the run.
#[derive(Clone, Copy, Default, Debug)]
pub struct RunHasher {
    inner: RibHasher,
    place: u64,
}

impl Hasher for RunHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.inner.write(bytes);
    }
    #[inline]
    fn write_u8(&mut self, place: u8) {
        self.place = u64::from(place & 0xf);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.inner.add(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.inner.write_u128(i);
    }
    #[inline]
    fn finish(&self) -> u64 {
        let x = self.inner.finish();
        ((x & !0xf) | self.place) ^ (self.place << 59)
    }
}

/// `BuildHasher` for [`RunHasher`], with a per-table random seed.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunBuildHasher(RibBuildHasher);

impl BuildHasher for RunBuildHasher {
    type Hasher = RunHasher;
    #[inline]
    fn build_hasher(&self) -> RunHasher {
        RunHasher {
            inner: self.0.build_hasher(),
            place: 0,
        }
    }
}

/// A `HashMap` with the RIB's hasher.
pub type FastMap<K, V> = HashMap<K, V, RibBuildHasher>;
/// A `HashSet` with the RIB's hasher.
pub type FastSet<K> = HashSet<K, RibBuildHasher>;

/// Rebuilds `m` at its size when under a quarter of its capacity is used
/// (and the capacity is worth it): O(len) once after a large removal,
/// amortised over the removals that emptied it; never during a load, where
/// a table is at least half full.
pub(crate) fn shrink_if_sparse<K: Eq + std::hash::Hash, V>(m: &mut FastMap<K, V>) {
    if m.capacity() > 4096 && m.len() < m.capacity() / 4 {
        m.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    #[test]
    fn slash24_prefixes_spread_over_low_bits() {
        let b = RibBuildHasher::default();
        let mut buckets = [0u32; 256];
        for i in 0u32..65536 {
            let mut h = b.build_hasher();
            (i << 8).hash(&mut h);
            24u8.hash(&mut h);
            buckets[(h.finish() & 0xff) as usize] += 1;
        }
        // 65536 keys over 256 buckets: 256 each on average; a weak low-bit hash
        // would put them all in one bucket.
        assert!(buckets.iter().all(|&n| n > 150 && n < 380), "{buckets:?}");
    }

    /// A run's sixteen keys differ only in the low 4 bits (their place) and
    /// in four tag bits; runs spread like the plain hasher's keys.
    #[test]
    fn runs_take_consecutive_buckets() {
        let b = RunBuildHasher::default();
        let h = |run: u128, place: u8| {
            let mut s = b.build_hasher();
            s.write_u128(run);
            s.write_u64(28);
            s.write_u8(place);
            s.finish()
        };
        let mut buckets = [0u32; 256];
        let mut tags = std::collections::HashSet::new();
        for r in 0u128..4096 {
            let base = h(r << 8, 0);
            assert_eq!(base & 0xf, 0);
            tags.clear();
            for place in 0..16u8 {
                let x = h(r << 8, place);
                assert_eq!(x & !0xf & !(0xf << 59), base & !(0xf << 59), "{r} {place}");
                assert_eq!(x & 0xf, u64::from(place));
                tags.insert(x >> 57);
            }
            assert_eq!(tags.len(), 16);
            buckets[((base >> 4) & 0xff) as usize] += 1;
        }
        // 4096 runs over 256 blocks of 16 buckets: 16 each on average.
        assert!(buckets.iter().all(|&n| n > 0 && n < 48), "{buckets:?}");
    }
}
