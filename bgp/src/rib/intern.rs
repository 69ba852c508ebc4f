//! Interning of path attribute sets.
//!
//! Every attribute set the RIB stores (received, after import normalisation,
//! or built for export) goes through [`Interner`], so equal sets share one
//! `Arc<PathAttributes>`: a million routes with a thousand distinct sets cost a
//! thousand attribute allocations, and "same attributes" is a pointer compare.
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
    /// The shared copy of `attrs` (possibly `attrs` itself).
    pub(crate) fn intern(&mut self, attrs: &Arc<PathAttributes>) -> Arc<PathAttributes> {
        if let Some(existing) = self.set.get(&**attrs) {
            return existing.clone();
        }
        self.set.insert(attrs.clone());
        attrs.clone()
    }

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
        let a = Arc::new(PathAttributes {
            med: Some(1),
            ..Default::default()
        });
        let b = Arc::new(PathAttributes {
            med: Some(1),
            ..Default::default()
        });
        let ia = i.intern(&a);
        let ib = i.intern(&b);
        assert!(Arc::ptr_eq(&ia, &ib));
        let c = i.intern_value(PathAttributes {
            med: Some(1),
            ..Default::default()
        });
        assert!(Arc::ptr_eq(&ia, &c));
        let d = i.intern_value(PathAttributes {
            med: Some(2),
            ..Default::default()
        });
        assert_eq!(i.len(), 2);
        drop((a, b, ia, ib, c));
        i.purge();
        assert_eq!(i.len(), 1);
        drop(d);
        i.purge();
        assert_eq!(i.len(), 0);
    }
}
