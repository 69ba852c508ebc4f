//! AS_PATH (RFC 4271 §4.3, §5.1.2): the path, its segments, and the small
//! containers that hold them without a heap block in the common case.
//!
//! Almost every path a speaker receives is one AS_SEQUENCE of a few ASNs. With
//! `Vec`s that cost two heap blocks per UPDATE (the segment list and the ASNs),
//! allocated by the session's decoder and freed after the RIB has stored the
//! route. [`Segments`] keeps one segment inline and [`Asns`] up to
//! [`INLINE_ASNS`] ASNs inline; longer paths spill to a `Vec`. Both read as
//! slices (`Deref`), so users match `AsPathSegment::Sequence(v)` and read `v` as
//! `&[u32]`, and read `path.segments` as `&[AsPathSegment]`. Equality and
//! hashing are those of the slices, whatever the storage. [`Segments`] is
//! `smallvec`'s `SmallVec<[_; 1]>` (with its `union` layout, the inline
//! segment and the heap pointer share their bytes: a list is its item and one
//! word); [`Asns`] is this module's own, for its wider inline array.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};

/// The impls that make a list type read as a slice of `$item`: `Default`
/// (`$ty::new()`), `Deref`/`DerefMut`, iteration by reference, and equality,
/// hashing and `Debug` of the slice, so the storage never shows in a value.
macro_rules! slice_like {
    ($ty:ident, $item:ty) => {
        impl Default for $ty {
            fn default() -> Self {
                $ty::new()
            }
        }
        impl Deref for $ty {
            type Target = [$item];
            fn deref(&self) -> &[$item] {
                self.as_slice()
            }
        }
        impl DerefMut for $ty {
            fn deref_mut(&mut self) -> &mut [$item] {
                self.as_mut_slice()
            }
        }
        impl<'a> IntoIterator for &'a $ty {
            type Item = &'a $item;
            type IntoIter = std::slice::Iter<'a, $item>;
            fn into_iter(self) -> Self::IntoIter {
                self.as_slice().iter()
            }
        }
        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                self.as_slice() == other.as_slice()
            }
        }
        impl Eq for $ty {}
        impl PartialEq<Vec<$item>> for $ty {
            fn eq(&self, other: &Vec<$item>) -> bool {
                self.as_slice() == other.as_slice()
            }
        }
        impl Hash for $ty {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_slice().hash(state)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_slice(), f)
            }
        }
    };
}

/// How many ASNs a segment holds without a heap block (a 32-byte [`Asns`]).
pub const INLINE_ASNS: usize = 6;

/// The ASNs of one segment, 4-octet values (RFC 6793): inline up to
/// [`INLINE_ASNS`], in a `Vec` beyond. Reads as `&[u32]`.
#[derive(Clone)]
pub struct Asns(AsnsRepr);

#[derive(Clone)]
enum AsnsRepr {
    /// `buf[..len]` are the ASNs; `len <= INLINE_ASNS`.
    Inline {
        len: u8,
        buf: [u32; INLINE_ASNS],
    },
    Heap(Vec<u32>),
}

impl Asns {
    /// No ASNs, no heap block.
    pub const fn new() -> Self {
        Asns(AsnsRepr::Inline {
            len: 0,
            buf: [0; INLINE_ASNS],
        })
    }
    pub fn as_slice(&self) -> &[u32] {
        match &self.0 {
            AsnsRepr::Inline { len, buf } => &buf[..usize::from(*len)],
            AsnsRepr::Heap(v) => v,
        }
    }
    pub fn as_mut_slice(&mut self) -> &mut [u32] {
        match &mut self.0 {
            AsnsRepr::Inline { len, buf } => &mut buf[..usize::from(*len)],
            AsnsRepr::Heap(v) => v,
        }
    }
    /// Inserts `asn` at `index` (≤ len), spilling to the heap when full.
    pub fn insert(&mut self, index: usize, asn: u32) {
        match &mut self.0 {
            AsnsRepr::Inline { len, buf } if usize::from(*len) < INLINE_ASNS => {
                let n = usize::from(*len);
                assert!(index <= n, "Asns::insert index {index} > len {n}");
                buf.copy_within(index..n, index + 1);
                buf[index] = asn;
                *len += 1;
            }
            AsnsRepr::Inline { .. } => {
                let mut v = Vec::with_capacity(INLINE_ASNS * 2);
                v.extend_from_slice(self.as_slice());
                v.insert(index, asn);
                self.0 = AsnsRepr::Heap(v);
            }
            AsnsRepr::Heap(v) => v.insert(index, asn),
        }
    }
    /// Appends `asn`, spilling to the heap when full.
    pub fn push(&mut self, asn: u32) {
        self.insert(self.len(), asn);
    }
}

slice_like!(Asns, u32);

impl From<&[u32]> for Asns {
    fn from(s: &[u32]) -> Self {
        if s.len() <= INLINE_ASNS {
            let mut buf = [0; INLINE_ASNS];
            buf[..s.len()].copy_from_slice(s);
            // INLINE_ASNS < 256: the length fits.
            Asns(AsnsRepr::Inline {
                len: s.len() as u8,
                buf,
            })
        } else {
            Asns(AsnsRepr::Heap(s.to_vec()))
        }
    }
}
impl<const N: usize> From<[u32; N]> for Asns {
    fn from(a: [u32; N]) -> Self {
        Asns::from(&a[..])
    }
}
impl From<Vec<u32>> for Asns {
    fn from(v: Vec<u32>) -> Self {
        if v.len() <= INLINE_ASNS {
            Asns::from(&v[..])
        } else {
            Asns(AsnsRepr::Heap(v))
        }
    }
}
impl FromIterator<u32> for Asns {
    /// Fills the inline buffer, and moves to a `Vec` only at the first ASN past it.
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut it = iter.into_iter();
        let mut buf = [0; INLINE_ASNS];
        for (n, slot) in buf.iter_mut().enumerate() {
            match it.next() {
                Some(asn) => *slot = asn,
                // n < INLINE_ASNS < 256.
                None => return Asns(AsnsRepr::Inline { len: n as u8, buf }),
            }
        }
        let Some(next) = it.next() else {
            return Asns(AsnsRepr::Inline {
                len: INLINE_ASNS as u8,
                buf,
            });
        };
        let mut v = Vec::with_capacity(INLINE_ASNS + 1 + it.size_hint().0);
        v.extend_from_slice(&buf);
        v.push(next);
        v.extend(it);
        Asns(AsnsRepr::Heap(v))
    }
}

/// One AS_PATH segment (RFC 4271 §4.3, RFC 5065 for the confederation types).
/// ASNs are always held as 4-octet values; the codec narrows/widens (RFC 6793).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AsPathSegment {
    Set(Asns),
    Sequence(Asns),
    ConfedSequence(Asns),
    ConfedSet(Asns),
}

impl AsPathSegment {
    /// The segment's ASNs, whatever its type.
    pub fn asns(&self) -> &[u32] {
        match self {
            AsPathSegment::Set(v)
            | AsPathSegment::Sequence(v)
            | AsPathSegment::ConfedSequence(v)
            | AsPathSegment::ConfedSet(v) => v,
        }
    }
}

/// The segments of a path: one inline, more in a heap block. Reads as `&[AsPathSegment]`.
pub type Segments = smallvec::SmallVec<[AsPathSegment; 1]>;

/// AS_PATH (RFC 4271 §5.1.2), after any RFC 6793 AS4_PATH merge.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Segments,
}

impl AsPath {
    /// A path of one AS_SEQUENCE holding `asns`; the empty path when `asns` is empty.
    pub fn sequence(asns: impl Into<Asns>) -> AsPath {
        let asns = asns.into();
        let mut segments = Segments::new();
        if !asns.is_empty() {
            segments.push(AsPathSegment::Sequence(asns));
        }
        AsPath { segments }
    }
    /// Path length for the decision process (RFC 4271 §9.1.2.2 a): an AS_SET
    /// counts 1 whatever its size; confederation segments count 0 (RFC 5065 §5.3).
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                AsPathSegment::Sequence(v) => v.len(),
                AsPathSegment::Set(_) => 1,
                AsPathSegment::ConfedSequence(_) | AsPathSegment::ConfedSet(_) => 0,
            })
            .sum()
    }
    /// True when `asn` appears anywhere in the path (loop detection, RFC 4271 §9.1.2).
    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns().contains(&asn))
    }
    /// The neighbouring AS: the first AS of the first AS_SEQUENCE segment, used
    /// to scope MED comparison (RFC 4271 §9.1.2.2 c).
    pub fn neighbor_as(&self) -> Option<u32> {
        match self.segments.first() {
            Some(AsPathSegment::Sequence(v)) => v.first().copied(),
            _ => None,
        }
    }
    /// Prepends `asn` as RFC 4271 §5.1.2 says when advertising to an external peer.
    /// A leading sequence that is already full (255 ASNs) gets a new segment in front.
    pub fn prepend(&mut self, asn: u32) {
        match self.segments.first_mut() {
            Some(AsPathSegment::Sequence(v)) if v.len() < 255 => v.insert(0, asn),
            _ => self
                .segments
                .insert(0, AsPathSegment::Sequence(Asns::from([asn]))),
        }
    }
}

impl fmt::Display for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.segments {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let (open, close) = match seg {
                AsPathSegment::Sequence(_) => ("", ""),
                AsPathSegment::Set(_) => ("{", "}"),
                AsPathSegment::ConfedSequence(_) => ("(", ")"),
                AsPathSegment::ConfedSet(_) => ("[", "]"),
            };
            f.write_str(open)?;
            for (i, a) in seg.asns().iter().enumerate() {
                if i > 0 {
                    f.write_str(if open == "{" || open == "[" { "," } else { " " })?;
                }
                write!(f, "{a}")?;
            }
            f.write_str(close)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The common path takes no heap block and both containers stay small.
    #[test]
    fn sizes_and_inline_limits() {
        assert_eq!(std::mem::size_of::<Asns>(), 32);
        assert_eq!(std::mem::size_of::<AsPathSegment>(), 40);
        assert_eq!(std::mem::size_of::<AsPath>(), 48);
        let short = AsPath::sequence([1, 2, 3, 4, 5, 6]);
        assert!(!short.segments.spilled());
        assert!(matches!(
            short.segments[0],
            AsPathSegment::Sequence(Asns(AsnsRepr::Inline { len: 6, .. }))
        ));
        let long = AsPath::sequence(vec![1, 2, 3, 4, 5, 6, 7]);
        assert!(matches!(
            long.segments[0],
            AsPathSegment::Sequence(Asns(AsnsRepr::Heap(_)))
        ));
        assert_eq!(AsPath::sequence(Vec::new()), AsPath::default());
        for n in [0, 5, 6, 7, 300] {
            let a: Asns = (0..n).collect();
            assert_eq!(a.len(), n as usize);
            assert!(a.iter().copied().eq(0..n));
            assert_eq!(matches!(a.0, AsnsRepr::Heap(_)), n as usize > INLINE_ASNS);
        }
    }

    /// Inline and heap forms of the same ASNs are equal and hash equal; inserts
    /// across the inline limit keep the order.
    #[test]
    fn storage_does_not_change_value() {
        use std::collections::hash_map::DefaultHasher;
        let h = |a: &Asns| {
            let mut s = DefaultHasher::new();
            a.hash(&mut s);
            s.finish()
        };
        let mut grown = Asns::new();
        for x in (1..=9).rev() {
            grown.insert(0, x);
        }
        let want: Vec<u32> = (1..=9).collect();
        assert_eq!(&grown[..], &want[..]);
        let heap = Asns(AsnsRepr::Heap(vec![1, 2, 3]));
        let inline = Asns::from([1, 2, 3]);
        assert_eq!(heap, inline);
        assert_eq!(h(&heap), h(&inline));
        let mut v: Vec<u32> = vec![1, 2, 3];
        let mut hs = DefaultHasher::new();
        v.hash(&mut hs);
        assert_eq!(h(&inline), hs.finish(), "hashes as the Vec did");
        v.push(4);
        let mut mid = Asns::from([1, 2, 4]);
        mid.insert(2, 3);
        assert_eq!(&mid[..], &v[..]);
    }

    #[test]
    fn segments_grow_and_read_as_a_slice() {
        let mut p = AsPath::sequence([65001]);
        p.segments.push(AsPathSegment::Set(Asns::from([2, 3])));
        p.segments
            .insert(0, AsPathSegment::ConfedSequence(Asns::from([7])));
        assert_eq!(p.to_string(), "(7) 65001 {2,3}");
        assert_eq!(p.path_len(), 2);
        assert!(p.contains(3) && !p.contains(4));
        assert_eq!(p.neighbor_as(), None);
        let from_vec: Segments = vec![AsPathSegment::Sequence(Asns::from([1]))].into();
        assert!(!from_vec.spilled());
        let mut q = AsPath::default();
        q.prepend(5);
        q.prepend(4);
        assert_eq!(q, AsPath::sequence([4, 5]));
        assert_eq!(q.neighbor_as(), Some(4));
    }
}
