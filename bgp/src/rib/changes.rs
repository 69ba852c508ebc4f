//! Building the Loc-RIB's changes for the kernel ([`BestPathChange`]):
//! the ECMP set's next hops of a prefix's paths ([`next_hops_for`]) and the
//! best path's attributes in their public form ([`full_attrs`]: from the
//! set just imported ([`Imported`]), a cache of recent conversions
//! ([`FullCache`]), or converted). `table.rs` calls these when a prefix's
//! forwarding view changes; `ops.rs` for the Loc-RIB's reads.

use std::net::IpAddr;
use std::sync::Arc;

use super::stored::{StoredAttrs, same};
use super::table::{ECMP, LOCAL_SOURCE, Path};
use super::{BestPathChange, BestPathFeed, HopList};
use crate::types::{PathAttributes, Prefix};

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

/// The ECMP set to install for `paths` (best first); `nh` is scratch.
pub(crate) fn next_hops_for(paths: &[Path], nh: &mut Vec<IpAddr>) -> HopList {
    match paths {
        [p] => lone_hops(&p.attrs, p.source, p.flags),
        _ => {
            collect_next_hops(paths, nh);
            HopList::from(nh.as_slice())
        }
    }
}

/// The ECMP set to install for a prefix's only path, given as its parts
/// (a 16-byte entry's, read without an `Arc` clone): its next hop as it is,
/// none for a locally originated path (as [`collect_next_hops`]).
pub(crate) fn lone_hops(attrs: &StoredAttrs, source: u32, flags: u8) -> HopList {
    if flags & ECMP != 0 && source != LOCAL_SOURCE {
        HopList::from(attrs.next_hop().as_slice())
    } else {
        HopList::default()
    }
}

/// The Loc-RIB entry of `paths` as a [`BestPathChange`].
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

/// Where the decision process reports best-path changes, and how much of
/// them ([`BestPathFeed::NextHops`] or [`BestPathFeed::Full`]; none is made
/// for [`BestPathFeed::Off`]).
pub(crate) struct Changes<'a> {
    out: &'a mut Vec<BestPathChange>,
    /// Convert the best path's attributes ([`BestPathFeed::Full`]).
    pub(crate) attributes: bool,
}

impl<'a> Changes<'a> {
    /// Changes appended to `out` as `feed` asks; `None` when it is off.
    pub(crate) fn new(feed: BestPathFeed, out: &'a mut Vec<BestPathChange>) -> Option<Self> {
        let attributes = match feed {
            BestPathFeed::Off => return None,
            BestPathFeed::NextHops => false,
            BestPathFeed::Full => true,
        };
        Some(Changes { out, attributes })
    }

    /// Reports `prefix`'s forwarding view: `next_hops`, from `best` (None:
    /// the prefix is gone), whose attributes are converted only when wanted
    /// (from `hint` or through `cache`, [`full_attrs`]).
    pub(crate) fn push(
        &mut self,
        prefix: Prefix,
        next_hops: HopList,
        best: Option<&Path>,
        hint: Option<&Imported>,
        cache: &mut FullCache,
    ) {
        let attributes = match best {
            Some(p) if self.attributes => Some(full_attrs(p, hint, Some(cache))),
            _ => None,
        };
        self.out.push(BestPathChange {
            prefix,
            next_hops,
            attributes,
            locally_originated: best.is_some_and(|p| p.source == LOCAL_SOURCE),
        });
    }
}
