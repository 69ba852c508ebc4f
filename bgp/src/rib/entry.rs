//! The entries of the RIB's prefix tables ([`DestSlot`]): one prefix and its
//! candidate paths ([`Dest`]) stored as one unit in a [`ShardedTable`].
//!
//! A prefix with one path, the common case, is a 16-byte [`Narrow`] entry
//! when the prefix, the path's flags and its source fit 8 bytes beside the
//! path's `Arc` ([`Packed`]); any other prefix (two or more paths, or what
//! does not fit) keeps its key and [`Dest`] behind a box. A 24-byte
//! `(key, Dest)` entry touched 6 cache lines per run of 16 prefixes, this one
//! 4 (lab/bench/README.md, session 9 rib lane); a table growing to 1M IPv6
//! /48s faults in 30 % fewer pages (session 14 rib6 lane).
//!
//! - IPv4 ([`V4Entry`]): address, length, flags and a 16-bit source, each in
//!   a field of [`V4Packed`].
//! - IPv6 up to /48 ([`V6Entry`], the first of [`V6Table`]'s four tables by
//!   prefix length): an 8-byte [`Ipv6Marked`] key and an 8-byte `Arc` leave
//!   no byte for flags and source. Where else they could live: the `Arc`'s
//!   alignment bits (3: the flags but not the source, and only through
//!   `unsafe` pointer tagging), a pointer's unused high bits (x86-64 only),
//!   or the key's own zero bits — a marked key of at most /48 has its 15 low
//!   bits zero (the marker is bit `63 − len`). [`V6Packed`] takes the last:
//!   3 flag bits (STALE, ECMP, BEST) and a 12-bit source id (the session
//!   layer numbers peers from 0, one per neighbour address, so 4094 fit; the
//!   local source is 0xfff; a source past that is boxed, as a 17-bit one is
//!   for IPv4), in safe, portable Rust. /48 is the commonest length
//!   of the global IPv6 table and the longest most operators accept; /32 to
//!   /48 hold nearly all of it. Longer prefixes keep their `(key, Dest)`
//!   entries of 24, 32 or 40 bytes in the three other tables.
//!
//! Changes go through [`DestSlot::update`], which hands the paths to the
//! table code as a `Dest` and stores what it leaves in the entry's own form;
//! reads get a [`DestRef`] (for a 16-byte entry, a `Dest` with its own `Arc`
//! clone), or the next hops alone ([`DestSlot::next_hops`], no clone).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Deref;
use std::sync::Arc;

use super::HopList;
use super::changes::{lone_hops, next_hops_for};
use super::keys::{Ipv6Marked, MARKED_SPARE, MARKED_SPARE_MAX_LEN, RibKey};
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

/// `source` in `bits` bits, if it fits ([`LOCAL_SOURCE`] is all ones).
fn narrow(source: u32, bits: u32) -> Option<u32> {
    let local = (1u32 << bits) - 1;
    if source == LOCAL_SOURCE {
        Some(local)
    } else {
        (source < local).then_some(source)
    }
}

/// The source id [`narrow`] made.
fn widen(source: u32, bits: u32) -> u32 {
    if source == (1u32 << bits) - 1 {
        LOCAL_SOURCE
    } else {
        source
    }
}

/// What a 16-byte entry ([`Narrow`]) keeps beside its path's `Arc`, in 8
/// bytes: the prefix, the path's flags and its source; made only when they
/// fit.
pub(crate) trait Packed: Copy + fmt::Debug {
    type Key: RibKey + fmt::Debug;
    /// `key` with one path of `source` and `flags`; `None` if they do not fit.
    fn pack(key: Self::Key, source: u32, flags: u8) -> Option<Self>;
    fn key(self) -> Self::Key;
    /// Whether this is `key` (without building the key).
    fn is(self, key: &Self::Key) -> bool;
    fn source(self) -> u32;
    fn flags(self) -> u8;
    /// The same with [`STALE`] set.
    fn stale(self) -> Self;
}

/// An IPv4 prefix, flags and a 16-bit source ([`LOCAL_SOURCE`] is
/// `u16::MAX`): each has a field.
#[derive(Clone, Copy, Debug)]
pub(crate) struct V4Packed {
    addr: u32,
    len: u8,
    flags: u8,
    source: u16,
}

impl Packed for V4Packed {
    type Key = Ipv4Prefix;
    #[inline]
    fn pack(key: Ipv4Prefix, source: u32, flags: u8) -> Option<V4Packed> {
        let source = narrow(source, 16)?;
        Some(V4Packed {
            addr: u32::from(key.addr()),
            len: key.len(),
            flags,
            // Below 2^16, so it fits.
            source: source as u16,
        })
    }
    fn key(self) -> Ipv4Prefix {
        // Stored from a prefix, so always one.
        Ipv4Prefix::new(Ipv4Addr::from(self.addr), self.len)
            .unwrap_or_else(|| unreachable!("/{}", self.len))
    }
    fn is(self, key: &Ipv4Prefix) -> bool {
        self.addr == u32::from(key.addr()) && self.len == key.len()
    }
    fn source(self) -> u32 {
        widen(u32::from(self.source), 16)
    }
    fn flags(self) -> u8 {
        self.flags
    }
    fn stale(self) -> V4Packed {
        V4Packed {
            flags: self.flags | STALE,
            ..self
        }
    }
}

/// Bits of a [`V6Packed`]'s flags (STALE, ECMP, BEST).
const V6_FLAG_BITS: u32 = 3;
/// Bits of a [`V6Packed`]'s source: the rest of [`MARKED_SPARE`].
const V6_SOURCE_BITS: u32 = MARKED_SPARE - V6_FLAG_BITS;

/// An IPv6 prefix of at most /48 with flags and a 12-bit source
/// ([`LOCAL_SOURCE`] is 0xfff): the prefix's [`Ipv6Marked`] form with the
/// source and the flags in the 15 low bits it leaves zero
/// ([`Ipv6Marked::with_low`]: source in bits 3..15, flags in 0..3).
#[derive(Clone, Copy, Debug)]
pub(crate) struct V6Packed(u64);

impl V6Packed {
    fn low(self) -> u16 {
        Ipv6Marked::split_low(self.0).1
    }
}

impl Packed for V6Packed {
    type Key = Ipv6Marked;
    #[inline]
    fn pack(key: Ipv6Marked, source: u32, flags: u8) -> Option<V6Packed> {
        let source = narrow(source, V6_SOURCE_BITS)?;
        if u32::from(flags) >> V6_FLAG_BITS != 0 {
            return None;
        }
        // Both fit, so below 2^15.
        let low = ((source << V6_FLAG_BITS) | u32::from(flags)) as u16;
        key.with_low(low).map(V6Packed)
    }
    fn key(self) -> Ipv6Marked {
        Ipv6Marked::split_low(self.0).0
    }
    fn is(self, key: &Ipv6Marked) -> bool {
        self.key() == *key
    }
    fn source(self) -> u32 {
        widen(u32::from(self.low() >> V6_FLAG_BITS), V6_SOURCE_BITS)
    }
    fn flags(self) -> u8 {
        // Below 2^3, so it fits.
        (self.low() & ((1 << V6_FLAG_BITS) - 1)) as u8
    }
    fn stale(self) -> V6Packed {
        V6Packed(self.0 | u64::from(STALE))
    }
}

/// A prefix table entry of 16 bytes for a prefix with one path whose
/// source and flags fit beside the prefix ([`Packed`]), the box otherwise;
/// see the module doc. `Wide`'s box takes the null value of `One`'s `Arc`
/// as its tag.
#[derive(Debug)]
pub(crate) enum Narrow<P: Packed> {
    /// One path, packed.
    One { attrs: Arc<StoredAttrs>, packed: P },
    /// Any other prefix.
    Wide(Box<(P::Key, Dest)>),
}

/// The IPv4 tables' entry.
pub(crate) type V4Entry = Narrow<V4Packed>;
/// The IPv6 entry of a prefix of at most /48 ([`V6Table::narrow`]).
pub(crate) type V6Entry = Narrow<V6Packed>;

impl<P: Packed> Narrow<P> {
    fn of(key: P::Key, dest: Dest) -> Narrow<P> {
        match dest {
            Dest::One(p) => Narrow::one(key, p),
            d @ Dest::Many(_) => Narrow::Wide(Box::new((key, d))),
        }
    }
    #[inline]
    fn one(key: P::Key, p: Path) -> Narrow<P> {
        match P::pack(key, p.source, p.flags) {
            Some(packed) => Narrow::One {
                attrs: p.attrs,
                packed,
            },
            None => Narrow::Wide(Box::new((key, Dest::One(p)))),
        }
    }
    /// The packed path, rebuilt (an `Arc` clone).
    fn path(attrs: &Arc<StoredAttrs>, packed: P) -> Path {
        Path {
            attrs: attrs.clone(),
            source: packed.source(),
            flags: packed.flags(),
        }
    }
}

impl<P: Packed> Slot for Narrow<P> {
    type Key = P::Key;
    fn key(&self) -> P::Key {
        match self {
            Narrow::One { packed, .. } => packed.key(),
            Narrow::Wide(w) => w.0,
        }
    }
    fn is(&self, key: &P::Key) -> bool {
        match self {
            Narrow::One { packed, .. } => packed.is(key),
            Narrow::Wide(w) => w.0 == *key,
        }
    }
}

impl<P: Packed> DestSlot for Narrow<P> {
    fn new(key: P::Key, path: Path) -> Self {
        Narrow::one(key, path)
    }
    fn dest(&self) -> DestRef<'_> {
        match self {
            Narrow::One { attrs, packed } => DestRef::Own(Dest::One(Self::path(attrs, *packed))),
            Narrow::Wide(w) => DestRef::Ref(&w.1),
        }
    }
    fn update<R>(&mut self, f: impl FnOnce(&mut Dest) -> R) -> R {
        let key = self.key();
        let (r, dest) = match self {
            Narrow::Wide(w) => {
                let r = f(&mut w.1);
                match &w.1 {
                    // Back to the packed form when it fits (the box goes).
                    Dest::One(p) if P::pack(key, p.source, p.flags).is_some() => {
                        (r, Dest::One(p.clone()))
                    }
                    _ => return r,
                }
            }
            Narrow::One { attrs, packed } => {
                let mut d = Dest::One(Self::path(attrs, *packed));
                (f(&mut d), d)
            }
        };
        *self = Narrow::of(key, dest);
        r
    }
    fn mark_stale(&mut self, source: u32) -> usize {
        match self {
            Narrow::One { packed, .. } => {
                if packed.source() != source || packed.flags() & STALE != 0 {
                    return 0;
                }
                *packed = packed.stale();
                1
            }
            Narrow::Wide(w) => mark_in(&mut w.1, source),
        }
    }
    fn next_hops(&self, nh: &mut Vec<IpAddr>) -> HopList {
        match self {
            Narrow::One { attrs, packed } => lone_hops(attrs, packed.source(), packed.flags()),
            Narrow::Wide(w) => next_hops_for(w.1.paths(), nh),
        }
    }
    fn has_path(&self, source: u32, stale_only: bool) -> bool {
        match self {
            Narrow::One { packed, .. } => {
                packed.source() == source && (!stale_only || packed.flags() & STALE != 0)
            }
            Narrow::Wide(w) => {
                w.1.paths()
                    .iter()
                    .any(|p| p.source == source && (!stale_only || p.is_stale()))
            }
        }
    }
}

/// The IPv6 prefix table, four hash tables by prefix length. A prefix of
/// at most /48 (most of an IPv6 table) is a [`V6Entry`], 16 bytes with one
/// path; one of /49 to /63 is kept under its 8-byte [`Ipv6Marked`] form, a
/// 24-byte entry; a /64 under its 9-byte [`Ipv6Short`] form, a 32-byte
/// entry; a longer one under the full [`Ipv6Prefix`], a 40-byte entry. A
/// prefix is in exactly one of the four, chosen by its length alone
/// ([`V6Key::of`]).
#[derive(Debug, Default)]
pub(crate) struct V6Table {
    pub(super) narrow: ShardedTable<V6Entry>,
    pub(super) marked: ShardedTable<(Ipv6Marked, Dest)>,
    pub(super) short: ShardedTable<(Ipv6Short, Dest)>,
    pub(super) long: ShardedTable<(Ipv6Prefix, Dest)>,
}

/// An IPv6 prefix as the key of its table in [`V6Table`].
pub(super) enum V6Key {
    Narrow(Ipv6Marked),
    Marked(Ipv6Marked),
    Short(Ipv6Short),
    Long(Ipv6Prefix),
}

impl V6Key {
    pub(super) fn of(p: &Ipv6Prefix) -> V6Key {
        match (Ipv6Marked::new(p), p.short()) {
            (Some(m), _) if p.len() <= MARKED_SPARE_MAX_LEN => V6Key::Narrow(m),
            (Some(m), _) => V6Key::Marked(m),
            (None, Some(s)) => V6Key::Short(s),
            (None, None) => V6Key::Long(*p),
        }
    }
}

impl V6Table {
    pub(crate) fn get(&self, key: &Ipv6Prefix) -> Option<DestRef<'_>> {
        match V6Key::of(key) {
            V6Key::Narrow(m) => self.narrow.get(&m).map(DestSlot::dest),
            V6Key::Marked(m) => self.marked.get(&m).map(DestSlot::dest),
            V6Key::Short(s) => self.short.get(&s).map(DestSlot::dest),
            V6Key::Long(p) => self.long.get(&p).map(DestSlot::dest),
        }
    }
    pub(crate) fn len(&self) -> usize {
        self.narrow.len() + self.marked.len() + self.short.len() + self.long.len()
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Ipv6Prefix, DestRef<'_>)> {
        let narrow = dests(&self.narrow).map(|(k, d)| (Ipv6Prefix::from(k), d));
        let marked = dests(&self.marked).map(|(k, d)| (Ipv6Prefix::from(k), d));
        let short = dests(&self.short).map(|(k, d)| (Ipv6Prefix::from(k), d));
        narrow.chain(marked).chain(short).chain(dests(&self.long))
    }
    /// The prefixes where `source` has a path (a stale one, if `stale_only`).
    pub(crate) fn keys_with(
        &self,
        source: u32,
        stale_only: bool,
    ) -> impl Iterator<Item = Ipv6Prefix> + '_ {
        fn with<E: DestSlot>(
            t: &ShardedTable<E>,
            source: u32,
            stale_only: bool,
        ) -> impl Iterator<Item = E::Key> + '_ {
            t.iter()
                .filter(move |e| e.has_path(source, stale_only))
                .map(Slot::key)
        }
        let narrow = with(&self.narrow, source, stale_only).map(Ipv6Prefix::from);
        let marked = with(&self.marked, source, stale_only).map(Ipv6Prefix::from);
        let short = with(&self.short, source, stale_only).map(Ipv6Prefix::from);
        let long = with(&self.long, source, stale_only);
        narrow.chain(marked).chain(short).chain(long)
    }
}
