//! Hashing and interning for the reconciler's per-prefix state.
//!
//! - [`Seeded`]: a fast keyed hash for the maps keyed by prefix (a folded
//!   128-bit multiply per word, seeded per map from the standard library's
//!   random keys, so a peer choosing prefixes cannot predict collisions).
//!   SipHash, the default, was a visible share of the bulk-load profile.
//! - [`Interner`]: one shared [`KernelRoute`] per distinct route. A million
//!   learned routes usually use a handful of next-hop sets; the desired and
//!   kernel maps then hold 8-byte pointers to shared routes instead of a
//!   `Vec<NextHop>` (with its heap block) per prefix per map.

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
