//! Interning of the attribute sets built for export, and the export memo.
//!
//! Every set [`super::export`] builds goes through [`Interner`], so equal sets
//! share one `Arc<PathAttributes>` and pack into one UPDATE per peer: a
//! million routes with a thousand distinct sets cost a thousand allocations.
//! (Received sets are stored compactly instead, see [`super::stored`].)
//!
//! The memo maps (stored set, source, AFI, what the target peer changes) to
//! the built set. Its key holds everything the attribute rewrite reads of the
//! target peer (external or internal, the NEXT_HOP it gets), not the peer
//! itself, so peers that get the same attributes — every client of a route
//! reflector, every eBGP peer on one subnet — share one entry: a set is built
//! once, not once per peer, and the memo grows with distinct sets, not with
//! peers × sets (issue 16, the role of BIRD's and FRR's update groups).
//!
//! Sets no route refers to any more (only the interner holds them) are purged
//! when the table has doubled since the last purge; the memo, which holds
//! references to them, is emptied first (it refills on demand).

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use super::hash::{FastMap, FastSet};
use super::stored::StoredAttrs;
use crate::types::{Afi, PathAttributes};

/// Export memo key: (stored set pointer, source peer, AFI, toward an
/// external peer, NEXT_HOP rewritten to (`None`: kept) with the link-local
/// address beside it). The entry keeps the stored `Arc` alive so the pointer
/// cannot be reused while memoised.
pub(crate) type ExportKey = (usize, u32, Afi, bool, Option<(IpAddr, Option<Ipv6Addr>)>);

const MIN_PURGE_LEN: usize = 1024;

/// The set of live attribute sets; see the module doc.
#[derive(Debug)]
pub(crate) struct Interner {
    set: FastSet<Arc<PathAttributes>>,
    purge_at: usize,
    exports: FastMap<ExportKey, (Arc<StoredAttrs>, Arc<PathAttributes>)>,
}

impl Default for Interner {
    fn default() -> Self {
        Interner {
            set: FastSet::default(),
            purge_at: MIN_PURGE_LEN,
            exports: FastMap::default(),
        }
    }
}

impl Interner {
    /// The shared copy of a freshly built set.
    pub(crate) fn intern_value(&mut self, attrs: PathAttributes) -> Arc<PathAttributes> {
        if let Some(existing) = self.set.get(&attrs) {
            return existing.clone();
        }
        let a = Arc::new(attrs);
        self.set.insert(a.clone());
        a
    }

    /// The set built for `key` earlier, or `build`'s (interned and memoised).
    pub(crate) fn export(
        &mut self,
        key: ExportKey,
        stored: &Arc<StoredAttrs>,
        build: impl FnOnce() -> PathAttributes,
    ) -> Arc<PathAttributes> {
        if let Some((_, out)) = self.exports.get(&key) {
            return out.clone();
        }
        let out = self.intern_value(build());
        self.exports.insert(key, (stored.clone(), out.clone()));
        out
    }

    /// Forgets the memoised exports of routes from `source` (a peer coming
    /// back may have another router id or client status).
    pub(crate) fn forget_source(&mut self, source: u32) {
        self.exports.retain(|k, _| k.1 != source);
    }

    /// Memoised exports held.
    #[cfg(test)]
    pub(crate) fn memo_len(&self) -> usize {
        self.exports.len()
    }

    /// Number of distinct attribute sets held.
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }

    /// True when enough sets were added since the last purge that one is due.
    pub(crate) fn purge_due(&self) -> bool {
        self.set.len() >= self.purge_at
    }

    /// Empties the memo, then drops the sets nobody but the interner refers to.
    pub(crate) fn purge(&mut self) {
        self.exports.clear();
        self.set.retain(|a| Arc::strong_count(a) > 1);
        self.purge_at = (self.set.len() * 2).max(MIN_PURGE_LEN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sets_share_one_arc_and_unused_ones_are_purged() {
        let mut i = Interner::default();
        let a = i.intern_value(PathAttributes {
            med: Some(1),
            ..Default::default()
        });
        let c = i.intern_value(PathAttributes {
            med: Some(1),
            ..Default::default()
        });
        assert!(Arc::ptr_eq(&a, &c));
        let d = i.intern_value(PathAttributes {
            med: Some(2),
            ..Default::default()
        });
        assert_eq!(i.len(), 2);
        drop((a, c));
        i.purge();
        assert_eq!(i.len(), 1);
        drop(d);
        i.purge();
        assert_eq!(i.len(), 0);
    }

    #[test]
    fn exports_are_built_once_per_key_and_forgotten_per_source() {
        let mut i = Interner::default();
        let stored = Arc::new(StoredAttrs::new(&Arc::new(PathAttributes::default())));
        let ptr = Arc::as_ptr(&stored) as usize;
        let key = |source: u32, nh: Option<(IpAddr, Option<Ipv6Addr>)>| {
            (ptr, source, Afi::Ipv4, false, nh)
        };
        let mut built = 0;
        let mut build = || {
            built += 1;
            PathAttributes {
                local_pref: Some(100),
                ..Default::default()
            }
        };
        // Two peers with the same key (e.g. two reflector clients): one build.
        let a = i.export(key(1, None), &stored, &mut build);
        let b = i.export(key(1, None), &stored, &mut build);
        assert!(Arc::ptr_eq(&a, &b));
        // Another NEXT_HOP rewrite is another key; the equal result is shared.
        let nh = Some((IpAddr::from([192, 0, 2, 1]), None));
        let c = i.export(key(1, nh), &stored, &mut build);
        assert!(Arc::ptr_eq(&a, &c));
        let _ = i.export(key(2, None), &stored, &mut build);
        assert_eq!((built, i.memo_len(), i.len()), (3, 3, 1));
        i.forget_source(1);
        assert_eq!(i.memo_len(), 1);
        drop((a, b, c));
        i.purge();
        assert_eq!((i.memo_len(), i.len()), (0, 0));
    }
}
