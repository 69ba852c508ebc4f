//! [`InlineOne`]: a list that holds one item in place and spills two or more
//! to a `Vec`, for the lists a decoded UPDATE almost always holds one of: an
//! AS_PATH's segments ([`super::Segments`]) and an UPDATE's prefixes
//! ([`super::Prefixes`]; one-prefix UPDATEs are what a peer sends for a
//! table of routes with distinct attributes). With a `Vec` each such list
//! costs a heap block, allocated by the session's decoder and freed after
//! the RIB has applied the UPDATE, and its first read is a cache miss.
//!
//! It reads as a slice (`Deref`); equality, hashing and `Debug` are the
//! slice's, whatever the storage. A list of [`super::Prefix`] (18 bytes) is
//! 32 bytes, a `Vec`'s 24 and a tag: 8 bytes more in the `Update` than a
//! `Vec` for the 32-byte heap block (and its `malloc`/`free`) it saves.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};

/// One item inline, more (or none) in a `Vec`. Reads as `&[T]`.
#[derive(Clone)]
pub struct InlineOne<T>(Repr<T>);

#[derive(Clone)]
enum Repr<T> {
    One(T),
    /// Empty (no heap block), two items and more, or what `retain` left.
    Many(Vec<T>),
}

impl<T> InlineOne<T> {
    /// No items, no heap block.
    pub const fn new() -> Self {
        InlineOne(Repr::Many(Vec::new()))
    }
    /// Room for `n` items: inline for one, a `Vec` of exactly `n` beyond.
    pub fn with_capacity(n: usize) -> Self {
        InlineOne(Repr::Many(if n > 1 {
            Vec::with_capacity(n)
        } else {
            Vec::new()
        }))
    }
    pub fn as_slice(&self) -> &[T] {
        match &self.0 {
            Repr::One(s) => std::slice::from_ref(s),
            Repr::Many(v) => v,
        }
    }
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        match &mut self.0 {
            Repr::One(s) => std::slice::from_mut(s),
            Repr::Many(v) => v,
        }
    }
    /// True when the items are in a heap block (two or more were held).
    pub fn spilled(&self) -> bool {
        matches!(&self.0, Repr::Many(v) if v.capacity() > 0)
    }
    /// Inserts `item` at `index` (≤ len).
    pub fn insert(&mut self, index: usize, item: T) {
        match &mut self.0 {
            Repr::Many(v) if v.is_empty() && v.capacity() == 0 => {
                assert!(index == 0, "InlineOne::insert index {index} > len 0");
                self.0 = Repr::One(item);
            }
            Repr::Many(v) => v.insert(index, item),
            Repr::One(_) => {
                let mut v = Vec::with_capacity(2);
                if let Repr::One(old) = std::mem::replace(&mut self.0, Repr::Many(Vec::new())) {
                    v.push(old);
                }
                v.insert(index, item);
                self.0 = Repr::Many(v);
            }
        }
    }
    /// Appends `item`.
    pub fn push(&mut self, item: T) {
        match &mut self.0 {
            Repr::Many(v) if v.capacity() > 0 => v.push(item),
            _ => self.insert(self.len(), item),
        }
    }
    /// Moves every item of `other` to the end of this list, leaving `other` empty.
    pub fn append(&mut self, other: &mut Self) {
        let taken = std::mem::take(other);
        match taken.0 {
            Repr::One(item) => self.push(item),
            Repr::Many(mut v) => match &mut self.0 {
                Repr::Many(mine) if !mine.is_empty() || mine.capacity() > 0 => mine.append(&mut v),
                _ => self.extend(v),
            },
        }
    }
    /// Keeps the items for which `keep` is true, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        match &mut self.0 {
            Repr::One(s) if !keep(s) => *self = InlineOne::new(),
            Repr::One(_) => {}
            Repr::Many(v) => v.retain(|s| keep(s)),
        }
    }
    /// The items as a `Vec` (a heap block unless empty).
    pub fn into_vec(self) -> Vec<T> {
        match self.0 {
            Repr::One(s) => vec![s],
            Repr::Many(v) => v,
        }
    }
}

impl<T> Default for InlineOne<T> {
    fn default() -> Self {
        InlineOne::new()
    }
}
impl<T> Deref for InlineOne<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}
impl<T> DerefMut for InlineOne<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}
impl<'a, T> IntoIterator for &'a InlineOne<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}
impl<T> IntoIterator for InlineOne<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}
impl<T: PartialEq> PartialEq for InlineOne<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}
impl<T: Eq> Eq for InlineOne<T> {}
impl<T: PartialEq> PartialEq<Vec<T>> for InlineOne<T> {
    fn eq(&self, other: &Vec<T>) -> bool {
        self.as_slice() == other.as_slice()
    }
}
impl<T: PartialEq, const N: usize> PartialEq<[T; N]> for InlineOne<T> {
    fn eq(&self, other: &[T; N]) -> bool {
        self.as_slice() == other.as_slice()
    }
}
impl<T: Hash> Hash for InlineOne<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}
impl<T: fmt::Debug> fmt::Debug for InlineOne<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

impl<T> From<Vec<T>> for InlineOne<T> {
    fn from(mut v: Vec<T>) -> Self {
        match (v.len(), v.pop()) {
            (1, Some(s)) => InlineOne(Repr::One(s)),
            (_, last) => {
                v.extend(last);
                InlineOne(Repr::Many(v))
            }
        }
    }
}
impl<T: Clone> From<&[T]> for InlineOne<T> {
    fn from(s: &[T]) -> Self {
        s.iter().cloned().collect()
    }
}
impl<T> FromIterator<T> for InlineOne<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut s = InlineOne::new();
        s.extend(iter);
        s
    }
}
impl<T> Extend<T> for InlineOne<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        let (lower, _) = iter.size_hint();
        if lower > 1 && self.is_empty() {
            *self = InlineOne::with_capacity(lower);
        }
        for item in iter {
            self.push(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_item_stays_inline_two_spill() {
        let mut l = InlineOne::new();
        assert!(l.is_empty() && !l.spilled());
        l.push(1u32);
        assert_eq!(l.as_slice(), [1]);
        assert!(!l.spilled(), "one item holds no heap block");
        l.push(2);
        l.insert(0, 0);
        assert_eq!(l.as_slice(), [0, 1, 2]);
        assert!(l.spilled());
        l.retain(|&x| x != 1);
        assert_eq!(l, vec![0, 2]);
        let one: InlineOne<u32> = vec![7].into();
        assert!(!one.spilled());
        assert_eq!(one.into_vec(), vec![7]);
    }

    #[test]
    fn with_capacity_and_collect_fill_in_order() {
        let l = InlineOne::<u8>::with_capacity(1);
        assert!(!l.spilled(), "room for one is the inline slot");
        let mut l = InlineOne::<u8>::with_capacity(3);
        l.push(1);
        assert_eq!(l.as_slice(), [1], "a reserved Vec takes the first item");
        l.extend([2, 3]);
        assert_eq!(l.as_slice(), [1, 2, 3]);
        let c: InlineOne<u8> = (0..5).collect();
        assert_eq!(c.as_slice(), [0, 1, 2, 3, 4]);
        let c: InlineOne<u8> = std::iter::once(9).collect();
        assert!(!c.spilled());
    }

    #[test]
    fn append_moves_every_item_whatever_the_storage() {
        for (a, b) in [
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 1),
            (1, 3),
            (3, 1),
            (2, 2),
            (0, 3),
        ] {
            let mut x: InlineOne<usize> = (0..a).collect();
            let mut y: InlineOne<usize> = (a..a + b).collect();
            x.append(&mut y);
            assert_eq!(x.as_slice(), (0..a + b).collect::<Vec<_>>(), "{a} + {b}");
            assert!(y.is_empty());
        }
    }

    #[test]
    fn a_prefix_list_is_a_vec_and_a_tag() {
        assert_eq!(
            size_of::<InlineOne<crate::types::Prefix>>(),
            size_of::<Vec<crate::types::Prefix>>() + 8
        );
    }
}
