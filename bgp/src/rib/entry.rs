//! The entries of the RIB's prefix tables ([`DestSlot`]): one prefix and its
//! candidate paths ([`Dest`]) stored as one unit in a [`ShardedTable`].
//!
//! IPv4 ([`V4Entry`]): a prefix with one path from a peer whose id fits 16
//! bits, the common case, is 16 bytes: the path's `Arc`, the prefix's address
//! and length, the path's flags and its source. Any other prefix (two or more
//! paths, or a source id above 16 bits) keeps its key and [`Dest`] behind a
//! box. A 24-byte `(key, Dest)` entry touched 6 cache lines per run of 16
//! prefixes, this one 4 (lab/bench/README.md, session 9 rib lane).
//!
//! IPv6 ([`V6Table`]): three tables of `(key, Dest)` entries by prefix length.
//!
//! Changes go through [`DestSlot::update`], which hands the paths to the
//! table code as a `Dest` and stores what it leaves in the entry's own form;
//! reads get a [`DestRef`] (for a 16-byte entry, a `Dest` with its own `Arc`
//! clone), or the next hops alone ([`DestSlot::next_hops`], no clone).

use std::net::{IpAddr, Ipv4Addr};
use std::ops::Deref;
use std::sync::Arc;

use super::HopList;
use super::changes::{lone_hops, next_hops_for};
use super::keys::{Ipv6Marked, RibKey};
use super::shard::{ShardedTable, Slot};
use super::stored::StoredAttrs;
use super::table::{Dest, LOCAL_SOURCE, Path, STALE};
use crate::types::{Ipv4Prefix, Ipv6Prefix, Ipv6Short};

/// A prefix table entry that holds a prefix's paths.
pub(crate) trait DestSlot: Slot<Key: RibKey> {
    /// A new entry: `key` with its one path.
    fn new(key: Self::Key, path: Path) -> Self;
    /// The paths, to read.
    fn dest(&self) -> DestRef<'_>;
    /// Runs `f` on the paths and keeps what it leaves.
    fn update<R>(&mut self, f: impl FnOnce(&mut Dest) -> R) -> R;
    /// Sets STALE on `source`'s path; how many paths changed (0 or 1).
    fn mark_stale(&mut self, source: u32) -> usize;
    /// The ECMP set to install ([`next_hops_for`]); `nh` is scratch.
    fn next_hops(&self, nh: &mut Vec<IpAddr>) -> HopList {
        next_hops_for(self.dest().paths(), nh)
    }
    /// Whether `source` has a path here (a stale one, if `stale_only`).
    fn has_path(&self, source: u32, stale_only: bool) -> bool {
        self.dest()
            .paths()
            .iter()
            .any(|p| p.source == source && (!stale_only || p.is_stale()))
    }
}

/// A prefix's paths as read from its entry: borrowed, or rebuilt from a
/// 16-byte IPv4 entry (an `Arc` clone).
pub(crate) enum DestRef<'a> {
    Ref(&'a Dest),
    Own(Dest),
}

impl Deref for DestRef<'_> {
    type Target = Dest;
    fn deref(&self) -> &Dest {
        match self {
            DestRef::Ref(d) => d,
            DestRef::Own(d) => d,
        }
    }
}

/// Every entry of `t` as its key and paths.
pub(crate) fn dests<E: DestSlot>(
    t: &ShardedTable<E>,
) -> impl Iterator<Item = (E::Key, DestRef<'_>)> {
    t.iter().map(|e| (e.key(), e.dest()))
}

fn mark_in(d: &mut Dest, source: u32) -> usize {
    let mut n = 0;
    for p in d.paths_mut() {
        if p.source == source && !p.is_stale() {
            p.flags |= STALE;
            n += 1;
        }
    }
    n
}

/// A key and its paths: the IPv6 tables' entries.
impl<K: RibKey> DestSlot for (K, Dest) {
    fn new(key: K, path: Path) -> Self {
        (key, Dest::One(path))
    }
    fn dest(&self) -> DestRef<'_> {
        DestRef::Ref(&self.1)
    }
    fn update<R>(&mut self, f: impl FnOnce(&mut Dest) -> R) -> R {
        f(&mut self.1)
    }
    fn mark_stale(&mut self, source: u32) -> usize {
        mark_in(&mut self.1, source)
    }
}

/// The 16-bit form of [`LOCAL_SOURCE`].
const LOCAL16: u16 = u16::MAX;

/// A source id in 16 bits, if it fits.
fn narrow(source: u32) -> Option<u16> {
    if source == LOCAL_SOURCE {
        return Some(LOCAL16);
    }
    u16::try_from(source).ok().filter(|&s| s != LOCAL16)
}

fn widen(source: u16) -> u32 {
    if source == LOCAL16 {
        LOCAL_SOURCE
    } else {
        u32::from(source)
    }
}

/// An IPv4 prefix table entry; see the module doc. 16 bytes: `Wide`'s box
/// takes the null value of `One`'s `Arc` as its tag.
#[derive(Debug)]
pub(crate) enum V4Entry {
    /// One path from a source that fits 16 bits ([`LOCAL_SOURCE`] is `u16::MAX`).
    One {
        attrs: Arc<StoredAttrs>,
        addr: u32,
        len: u8,
        flags: u8,
        source: u16,
    },
    /// Any other prefix.
    Wide(Box<(Ipv4Prefix, Dest)>),
}

impl V4Entry {
    fn of(key: Ipv4Prefix, dest: Dest) -> V4Entry {
        match dest {
            Dest::One(p) => match narrow(p.source) {
                Some(source) => V4Entry::One {
                    attrs: p.attrs,
                    addr: u32::from(key.addr()),
                    len: key.len(),
                    flags: p.flags,
                    source,
                },
                None => V4Entry::Wide(Box::new((key, Dest::One(p)))),
            },
            d @ Dest::Many(_) => V4Entry::Wide(Box::new((key, d))),
        }
    }
}

impl Slot for V4Entry {
    type Key = Ipv4Prefix;
    fn key(&self) -> Ipv4Prefix {
        match self {
            // Stored from a prefix, so always one.
            V4Entry::One { addr, len, .. } => Ipv4Prefix::new(Ipv4Addr::from(*addr), *len)
                .unwrap_or_else(|| unreachable!("/{len}")),
            V4Entry::Wide(w) => w.0,
        }
    }
    fn is(&self, key: &Ipv4Prefix) -> bool {
        match self {
            V4Entry::One { addr, len, .. } => *addr == u32::from(key.addr()) && *len == key.len(),
            V4Entry::Wide(w) => w.0 == *key,
        }
    }
}

impl DestSlot for V4Entry {
    fn new(key: Ipv4Prefix, path: Path) -> Self {
        V4Entry::of(key, Dest::One(path))
    }
    fn dest(&self) -> DestRef<'_> {
        match self {
            V4Entry::One {
                attrs,
                flags,
                source,
                ..
            } => DestRef::Own(Dest::One(Path {
                attrs: attrs.clone(),
                source: widen(*source),
                flags: *flags,
            })),
            V4Entry::Wide(w) => DestRef::Ref(&w.1),
        }
    }
    fn update<R>(&mut self, f: impl FnOnce(&mut Dest) -> R) -> R {
        let key = self.key();
        let (r, dest) = match self {
            V4Entry::Wide(w) => {
                let r = f(&mut w.1);
                match &w.1 {
                    // Back to the narrow form when it fits (the box goes).
                    Dest::One(p) if narrow(p.source).is_some() => (r, Dest::One(p.clone())),
                    _ => return r,
                }
            }
            V4Entry::One {
                attrs,
                flags,
                source,
                ..
            } => {
                let mut d = Dest::One(Path {
                    attrs: attrs.clone(),
                    source: widen(*source),
                    flags: *flags,
                });
                (f(&mut d), d)
            }
        };
        *self = V4Entry::of(key, dest);
        r
    }
    fn mark_stale(&mut self, source: u32) -> usize {
        match self {
            V4Entry::One {
                flags, source: s, ..
            } => {
                if widen(*s) != source || *flags & STALE != 0 {
                    return 0;
                }
                *flags |= STALE;
                1
            }
            V4Entry::Wide(w) => mark_in(&mut w.1, source),
        }
    }
    fn next_hops(&self, nh: &mut Vec<IpAddr>) -> HopList {
        match self {
            V4Entry::One {
                attrs,
                flags,
                source,
                ..
            } => lone_hops(attrs, widen(*source), *flags),
            V4Entry::Wide(w) => next_hops_for(w.1.paths(), nh),
        }
    }
    fn has_path(&self, source: u32, stale_only: bool) -> bool {
        match self {
            V4Entry::One {
                flags, source: s, ..
            } => widen(*s) == source && (!stale_only || *flags & STALE != 0),
            V4Entry::Wide(w) => {
                w.1.paths()
                    .iter()
                    .any(|p| p.source == source && (!stale_only || p.is_stale()))
            }
        }
    }
}

/// The IPv6 prefix table, three hash tables by prefix length. A prefix of
/// at most 63 bits (most of an IPv6 table: /48s, /56s) is kept under its
/// 8-byte [`Ipv6Marked`] form, a 24-byte entry; a /64 under its 9-byte
/// [`Ipv6Short`] form, a 32-byte entry; a longer one under the full
/// [`Ipv6Prefix`], a 40-byte entry. A prefix is in exactly one of the
/// three, chosen by its length alone ([`V6Key::of`]).
#[derive(Debug, Default)]
pub(crate) struct V6Table {
    pub(super) marked: ShardedTable<(Ipv6Marked, Dest)>,
    pub(super) short: ShardedTable<(Ipv6Short, Dest)>,
    pub(super) long: ShardedTable<(Ipv6Prefix, Dest)>,
}

/// An IPv6 prefix as the key of its table in [`V6Table`].
pub(super) enum V6Key {
    Marked(Ipv6Marked),
    Short(Ipv6Short),
    Long(Ipv6Prefix),
}

impl V6Key {
    pub(super) fn of(p: &Ipv6Prefix) -> V6Key {
        match (Ipv6Marked::new(p), p.short()) {
            (Some(m), _) => V6Key::Marked(m),
            (None, Some(s)) => V6Key::Short(s),
            (None, None) => V6Key::Long(*p),
        }
    }
}

impl V6Table {
    pub(crate) fn get(&self, key: &Ipv6Prefix) -> Option<DestRef<'_>> {
        match V6Key::of(key) {
            V6Key::Marked(m) => self.marked.get(&m).map(DestSlot::dest),
            V6Key::Short(s) => self.short.get(&s).map(DestSlot::dest),
            V6Key::Long(p) => self.long.get(&p).map(DestSlot::dest),
        }
    }
    pub(crate) fn len(&self) -> usize {
        self.marked.len() + self.short.len() + self.long.len()
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Ipv6Prefix, DestRef<'_>)> {
        let marked = dests(&self.marked).map(|(k, d)| (Ipv6Prefix::from(k), d));
        let short = dests(&self.short).map(|(k, d)| (Ipv6Prefix::from(k), d));
        marked.chain(short).chain(dests(&self.long))
    }
    /// The prefixes where `source` has a path (a stale one, if `stale_only`).
    pub(crate) fn keys_with(
        &self,
        source: u32,
        stale_only: bool,
    ) -> impl Iterator<Item = Ipv6Prefix> + '_ {
        let marked = self
            .marked
            .iter()
            .filter(move |e| e.has_path(source, stale_only));
        let short = self
            .short
            .iter()
            .filter(move |e| e.has_path(source, stale_only));
        let long = self
            .long
            .iter()
            .filter(move |e| e.has_path(source, stale_only));
        let marked = marked.map(|e| Ipv6Prefix::from(e.0));
        let short = short.map(|e| Ipv6Prefix::from(e.0));
        let long = long.map(|e| e.0);
        marked.chain(short).chain(long)
    }
}
