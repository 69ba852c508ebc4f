//! Interning of the attribute sets built for export.
//!
//! Every set [`super::export`] builds goes through [`Interner`], so equal sets
//! share one `Arc<PathAttributes>` and pack into one UPDATE per peer: a
//! million routes with a thousand distinct sets cost a thousand allocations.
//! (Received sets are stored compactly instead, see [`super::stored`].)
//! Sets no route refers to any more (only the interner holds them) are purged
//! when the table has doubled since the last purge.

use std::sync::Arc;

use super::hash::FastSet;
use crate::types::PathAttributes;

const MIN_PURGE_LEN: usize = 1024;

/// The set of live attribute sets; see the module doc.
#[derive(Debug)]
pub(crate) struct Interner {
    set: FastSet<Arc<PathAttributes>>,
    purge_at: usize,
}

impl Default for Interner {
    fn default() -> Self {
        Interner {
            set: FastSet::default(),
            purge_at: MIN_PURGE_LEN,
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

    /// Number of distinct attribute sets held.
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }

    /// True when enough sets were added since the last purge that one is due.
    pub(crate) fn purge_due(&self) -> bool {
        self.set.len() >= self.purge_at
    }

    /// Drops the sets nobody but the interner refers to.
    pub(crate) fn purge(&mut self) {
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
}
