//! Per-prefix state of the reconciler in one map: the desired route and
//! the route of ours the kernel holds, each an interned [`Shared`] or
//! absent. One slot per prefix instead of a desired map and a kernel map
//! (which kept two hash slots per installed route); a slot with neither is
//! removed.

use ipnetwork::Ipv4Network;

use std::sync::Arc;

use super::hash::{FastMap, Interner, Shared};
use crate::types::KernelRoute;

#[derive(Default)]
struct Slot {
    desired: Option<Shared>,
    kernel: Option<Shared>,
}

/// A changed desire (see [`Slots::desire`]).
pub(crate) struct Desired<'a> {
    /// The previous desire.
    pub(crate) old: Option<Shared>,
    /// The new one.
    pub(crate) new: &'a Shared,
    /// The slot's kernel side.
    pub(crate) kernel: &'a mut Option<Shared>,
}

/// Desired and kernel routes by prefix.
#[derive(Default)]
pub(crate) struct Slots {
    map: FastMap<Ipv4Network, Slot>,
    desired: usize,
}

impl Slots {
    /// The desired route for `p`.
    pub(crate) fn desired(&self, p: &Ipv4Network) -> Option<&Shared> {
        self.map.get(p).and_then(|s| s.desired.as_ref())
    }

    /// Our route for `p` in the kernel, as last seen.
    pub(crate) fn kernel(&self, p: &Ipv4Network) -> Option<&Shared> {
        self.map.get(p).and_then(|s| s.kernel.as_ref())
    }

    pub(crate) fn is_desired(&self, p: &Ipv4Network) -> bool {
        self.desired(p).is_some()
    }

    pub(crate) fn in_kernel(&self, p: &Ipv4Network) -> bool {
        self.kernel(p).is_some()
    }

    /// Desire `r` for `p`; returns the previous desire.
    #[cfg(test)]
    pub(crate) fn set_desired(&mut self, p: Ipv4Network, r: Shared) -> Option<Shared> {
        let old = self.map.entry(p).or_default().desired.replace(r);
        if old.is_none() {
            self.desired += 1;
        }
        old
    }

    /// Desire `r` for `p` with one hash operation (the bulk-load hot path):
    /// `None` if `r` was already desired, else the change, with the slot's
    /// kernel side writable (for write-through). `r` is interned only when
    /// it changes something.
    pub(crate) fn desire(
        &mut self,
        p: Ipv4Network,
        r: KernelRoute,
        routes: &mut Interner,
    ) -> Option<Desired<'_>> {
        let slot = self.map.entry(p).or_default();
        if slot.desired.as_deref() == Some(&r) {
            return None;
        }
        let old = slot.desired.replace(routes.intern(r));
        if old.is_none() {
            self.desired += 1;
        }
        let Slot { desired, kernel } = slot;
        Some(Desired {
            old,
            new: desired.as_ref()?,
            kernel,
        })
    }

    /// The desired route and a writable kernel side of `p`'s slot (one hash
    /// operation; the reconciler's write path). A slot left with neither
    /// side must be dropped with [`remove_if_empty`](Self::remove_if_empty).
    pub(crate) fn sides_mut(
        &mut self,
        p: &Ipv4Network,
    ) -> Option<(Option<&Shared>, &mut Option<Shared>)> {
        self.map
            .get_mut(p)
            .map(|s| (s.desired.as_ref(), &mut s.kernel))
    }

    /// Drop `p`'s slot if it holds neither a desired nor a kernel route.
    pub(crate) fn remove_if_empty(&mut self, p: &Ipv4Network) {
        if self
            .map
            .get(p)
            .is_some_and(|s| s.desired.is_none() && s.kernel.is_none())
        {
            self.map.remove(p);
        }
    }

    /// Undo an optimistic update of `p`'s kernel side: back to `prev`,
    /// unless something (a notification) changed it since `wrote` (the
    /// route the request wrote, `None` for a delete) was recorded.
    pub(crate) fn undo_kernel(
        &mut self,
        p: Ipv4Network,
        wrote: Option<&Shared>,
        prev: Option<Shared>,
    ) {
        let unchanged = match (self.kernel(&p), wrote) {
            (Some(now), Some(w)) => Arc::ptr_eq(now, w),
            (None, None) => true,
            _ => false,
        };
        if !unchanged {
            return;
        }
        match prev {
            Some(r) => {
                self.set_kernel(p, r);
            }
            None => {
                self.take_kernel(&p);
            }
        }
    }

    /// Stop desiring `p`; returns the previous desire.
    pub(crate) fn take_desired(&mut self, p: &Ipv4Network) -> Option<Shared> {
        let slot = self.map.get_mut(p)?;
        let old = slot.desired.take();
        if slot.kernel.is_none() {
            self.map.remove(p);
        }
        if old.is_some() {
            self.desired -= 1;
        }
        old
    }

    /// Record that the kernel holds `r` (ours) for `p`.
    pub(crate) fn set_kernel(&mut self, p: Ipv4Network, r: Shared) -> Option<Shared> {
        self.map.entry(p).or_default().kernel.replace(r)
    }

    /// Record that the kernel holds no route of ours for `p`.
    pub(crate) fn take_kernel(&mut self, p: &Ipv4Network) -> Option<Shared> {
        let slot = self.map.get_mut(p)?;
        let old = slot.kernel.take();
        if slot.desired.is_none() {
            self.map.remove(p);
        }
        old
    }

    /// Number of desired prefixes.
    pub(crate) fn desired_len(&self) -> usize {
        self.desired
    }

    /// Desired routes.
    pub(crate) fn desired_iter(&self) -> impl Iterator<Item = (&Ipv4Network, &Shared)> {
        self.map
            .iter()
            .filter_map(|(p, s)| s.desired.as_ref().map(|d| (p, d)))
    }

    /// Our routes in the kernel.
    pub(crate) fn kernel_iter(&self) -> impl Iterator<Item = (&Ipv4Network, &Shared)> {
        self.map
            .iter()
            .filter_map(|(p, s)| s.kernel.as_ref().map(|k| (p, k)))
    }

    /// Every prefix with its desired and kernel route.
    pub(crate) fn iter(
        &self,
    ) -> impl Iterator<Item = (&Ipv4Network, Option<&Shared>, Option<&Shared>)> {
        self.map
            .iter()
            .map(|(p, s)| (p, s.desired.as_ref(), s.kernel.as_ref()))
    }

    /// Replace the whole kernel view (after a re-dump).
    pub(crate) fn replace_kernel(&mut self, mut kernel: FastMap<Ipv4Network, Shared>) {
        self.map.retain(|p, s| {
            s.kernel = kernel.remove(p);
            s.desired.is_some() || s.kernel.is_some()
        });
        for (p, k) in kernel {
            self.map.insert(
                p,
                Slot {
                    desired: None,
                    kernel: Some(k),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::KernelRoute;
    use std::sync::Arc;

    #[test]
    fn slots_track_both_sides_and_drop_empty_ones() {
        let p: Ipv4Network = "10.0.0.0/24".parse().unwrap();
        let q: Ipv4Network = "10.0.1.0/24".parse().unwrap();
        let r: Shared = Arc::new(KernelRoute::Blackhole);
        let mut s = Slots::default();
        assert!(s.set_desired(p, r.clone()).is_none());
        assert!(s.set_kernel(p, r.clone()).is_none());
        assert_eq!(s.desired_len(), 1);
        assert!(s.take_desired(&p).is_some());
        assert_eq!(s.desired_len(), 0);
        assert!(s.in_kernel(&p) && !s.is_desired(&p));
        assert!(s.take_kernel(&p).is_some());
        assert_eq!(s.map.len(), 0, "empty slot removed");

        s.set_desired(p, r.clone());
        s.set_kernel(p, r.clone());
        let mut fresh = FastMap::default();
        fresh.insert(q, r.clone());
        s.replace_kernel(fresh);
        assert!(s.is_desired(&p) && !s.in_kernel(&p));
        assert!(s.in_kernel(&q) && !s.is_desired(&q));
        assert_eq!(s.kernel_iter().count(), 1);
        assert_eq!(s.desired_iter().count(), 1);
        assert_eq!(s.iter().count(), 2);
    }

    #[test]
    fn desire_and_write_side_in_one_lookup() {
        let p: Ipv4Network = "10.0.0.0/24".parse().unwrap();
        let mut routes = Interner::default();
        let mut s = Slots::default();
        let ch = s.desire(p, KernelRoute::Blackhole, &mut routes).unwrap();
        assert!(ch.old.is_none() && ch.kernel.is_none());
        assert_eq!(**ch.new, KernelRoute::Blackhole);
        assert!(s.desire(p, KernelRoute::Blackhole, &mut routes).is_none());
        assert_eq!(s.desired_len(), 1);
        let (d, k) = s.sides_mut(&p).unwrap();
        assert!(d.is_some() && k.is_none());
        let wrote = d.cloned().unwrap();
        *k = Some(wrote.clone());
        assert!(s.in_kernel(&p));
        // Changed since (a notification): the undo leaves it alone.
        let other = Arc::new(KernelRoute::Blackhole);
        s.set_kernel(p, other.clone());
        s.undo_kernel(p, Some(&wrote), None);
        assert!(s.in_kernel(&p));
        s.set_kernel(p, wrote.clone());
        s.undo_kernel(p, Some(&wrote), None);
        assert!(!s.in_kernel(&p) && s.is_desired(&p));
        s.take_desired(&p);
        s.undo_kernel(p, None, Some(other));
        let (_, k) = s.sides_mut(&p).unwrap();
        *k = None;
        s.remove_if_empty(&p);
        assert_eq!(s.map.len(), 0);
    }
}
