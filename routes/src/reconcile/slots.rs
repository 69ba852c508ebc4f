//! Per-prefix state of the reconciler in one map: the desired route and
//! the route of ours the kernel holds, each an interned [`Shared`] or
//! absent. One slot per prefix instead of a desired map and a kernel map
//! (which kept two hash slots per installed route); a slot with neither is
//! removed.

use ipnetwork::Ipv4Network;

use super::hash::{FastMap, Shared};

#[derive(Default)]
struct Slot {
    desired: Option<Shared>,
    kernel: Option<Shared>,
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

    /// Both at once (one lookup).
    pub(crate) fn both(&self, p: &Ipv4Network) -> (Option<&Shared>, Option<&Shared>) {
        match self.map.get(p) {
            Some(s) => (s.desired.as_ref(), s.kernel.as_ref()),
            None => (None, None),
        }
    }

    pub(crate) fn is_desired(&self, p: &Ipv4Network) -> bool {
        self.desired(p).is_some()
    }

    pub(crate) fn in_kernel(&self, p: &Ipv4Network) -> bool {
        self.kernel(p).is_some()
    }

    /// Desire `r` for `p`; returns the previous desire.
    pub(crate) fn set_desired(&mut self, p: Ipv4Network, r: Shared) -> Option<Shared> {
        let old = self.map.entry(p).or_default().desired.replace(r);
        if old.is_none() {
            self.desired += 1;
        }
        old
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
}
