//! The slots' directory: a map split by address bits into [`LEAVES`]
//! tables of unequal shares that grow one at a time ([`Dir`]), and the
//! one-lookup update of a slot that may empty it ([`update_slot`]). Keys
//! say their leaf ([`Leaf`]); the slots' maps (`super::Maps`) hold one
//! directory per key form.

use super::Slot;
use crate::reconcile::hash::{RUN_BITS, RunMap};

/// Rebuilds `m` at its size once under a quarter of its capacity is used:
/// the map never shrinks on removal, so after a full table was withdrawn its
/// capacity would stay resident (issue 10). O(len), amortised over the
/// removals that emptied it; a table being filled is at least half full.
pub(super) fn shrink_if_sparse<K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher>(
    m: &mut std::collections::HashMap<K, V, S>,
    over: usize,
) {
    if m.capacity() > over && m.len() < m.capacity() / 4 {
        m.shrink_to_fit();
    }
}

/// Capacity past which a map shrinks when sparse; a leaf of a [`Dir`] its
/// share of it.
pub(super) const SHRINK_OVER: usize = 4096;

/// Runs `f` on `k`'s slot in `m`, then drops the slot if `f` left it with
/// neither side: one lookup, through the slot's entry (a delete's
/// `undesire` then `remove` looked it up twice). `None` without a slot.
/// `entry` reserves room for an insert when it finds no slot, which would
/// grow a full table on a miss: a full table is looked up by `get_mut`,
/// and an emptied slot removed by a second lookup.
pub(super) fn update_slot<K: Eq + std::hash::Hash, S: std::hash::BuildHasher, R>(
    m: &mut std::collections::HashMap<K, Slot, S>,
    k: K,
    over: usize,
    f: impl FnOnce(&mut Slot) -> Option<R>,
) -> Option<R> {
    use std::collections::hash_map::Entry;
    let r = if m.len() < m.capacity() {
        let Entry::Occupied(mut o) = m.entry(k) else {
            return None;
        };
        let r = f(o.get_mut());
        if o.get().is_empty() {
            o.remove();
        }
        r
    } else {
        let slot = m.get_mut(&k)?;
        let r = f(slot);
        if slot.is_empty() {
            m.remove(&k);
        }
        r
    };
    shrink_if_sparse(m, over);
    r
}

/// Leaves of a [`Dir`]. With 16, a leaf of a 1M-route table is ~1 MB: its
/// tables are their own mappings (over the allocator's mmap threshold,
/// agent/src/daemon/memory.rs), so an outgrown one goes back to the kernel.
pub(super) const LEAVES: usize = 16;

/// Network bits just above a prefix's run that choose its leaf ([`leaf_of`]).
const SLICE_BITS: u32 = 8;

/// First slice (value of the [`SLICE_BITS`] bits) of each leaf, and the end:
/// leaf `j` takes the slices `u` with 2^(j/16) ≤ 1 + u/256 < 2^((j+1)/16),
/// rounded to whole slices (`round(256 · (2^(j/16) − 1))`; a test checks
/// them), so its share of the address space is ∝ 2^(j/16), from 11 slices
/// to 22. Equal shares would have every leaf double at the same table size,
/// and the whole directory swing with one table between 1.14 and 2.29
/// buckets per prefix (2.1 at 1M); with the shares spread over one octave
/// the leaves double at sizes spread over it, ~1.7 buckets per prefix at
/// any size.
pub(super) const SLICE_STARTS: [u16; LEAVES + 1] = [
    0, 11, 23, 36, 48, 62, 76, 91, 106, 122, 139, 156, 175, 194, 214, 234, 256,
];

/// The leaf of each slice (from [`SLICE_STARTS`]).
pub(super) const LEAF_OF_SLICE: [u8; 1 << SLICE_BITS] = {
    let mut t = [0u8; 1 << SLICE_BITS];
    let mut leaf = 0;
    let mut u = 0;
    while u < t.len() {
        while u >= SLICE_STARTS[leaf + 1] as usize {
            leaf += 1;
        }
        t[u] = leaf as u8;
        u += 1;
    }
    t
};

/// Which leaf of a [`Dir`] holds a key ([`leaf_of`]).
pub(super) trait Leaf {
    fn leaf(&self) -> usize;
}

/// The leaf of a prefix of `len` bits whose network number is right-aligned
/// in the low `width` bits of `net`: the [`SLICE_BITS`] network bits just
/// above its run ([`run_of`](crate::reconcile::hash::run_of)) through [`LEAF_OF_SLICE`]. A run stays in one
/// leaf (its neighbours keep sharing cache lines), and a packed table
/// spreads over the slices evenly, so each leaf holds its share.
pub(super) fn leaf_of(net: u64, len: u8, width: u32) -> usize {
    let shift = (width + RUN_BITS).saturating_sub(u32::from(len));
    let slice = net.checked_shr(shift).unwrap_or(0) as u8;
    usize::from(LEAF_OF_SLICE[usize::from(slice)])
}

/// A map split by address bits ([`Leaf`]) into [`LEAVES`] tables of unequal
/// shares ([`SLICE_STARTS`]) that grow one at a time. One table doubles in
/// one step, with the old and the new (twice its size) alive together: at
/// 1M routes the slots peaked at three times the table they outgrew; here
/// only one leaf's old table is alive beside the rest. The leaves are
/// ordinary seeded tables hashed by run: a peer that aims every prefix at
/// one leaf (the same bits above every run) gets one ordinary table, as
/// before the directory, never worse; one that fills the slices unevenly
/// gets leaves of other sizes, each an ordinary table.
pub(super) struct Dir<K> {
    leaves: [RunMap<K, Slot>; LEAVES],
}

impl<K> Default for Dir<K> {
    fn default() -> Self {
        Dir {
            leaves: std::array::from_fn(|_| RunMap::default()),
        }
    }
}

impl<K: Leaf + Eq + std::hash::Hash> Dir<K> {
    // `Leaf::leaf` is below `LEAVES`: indexing cannot fail.
    pub(super) fn get(&self, k: &K) -> Option<&Slot> {
        self.leaves[k.leaf()].get(k)
    }

    pub(super) fn get_mut(&mut self, k: &K) -> Option<&mut Slot> {
        self.leaves[k.leaf()].get_mut(k)
    }

    pub(super) fn entry(&mut self, k: K) -> &mut Slot {
        self.leaves[k.leaf()].entry(k).or_default()
    }

    pub(super) fn remove(&mut self, k: &K) {
        let l = &mut self.leaves[k.leaf()];
        l.remove(k);
        shrink_if_sparse(l, SHRINK_OVER / LEAVES);
    }

    pub(super) fn update<R>(&mut self, k: K, f: impl FnOnce(&mut Slot) -> Option<R>) -> Option<R> {
        update_slot(&mut self.leaves[k.leaf()], k, SHRINK_OVER / LEAVES, f)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&K, &Slot)> {
        self.leaves.iter().flatten()
    }

    pub(super) fn retain(&mut self, mut f: impl FnMut(&K, &mut Slot) -> bool) {
        for l in &mut self.leaves {
            l.retain(|k, s| f(k, s));
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.leaves.iter().map(|l| l.len()).sum()
    }

    #[cfg(test)]
    pub(super) fn leaf_lens(&self) -> Vec<usize> {
        self.leaves.iter().map(|l| l.len()).collect()
    }

    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.leaves.iter().map(|l| l.capacity()).sum()
    }
}
