//! Per-prefix state of the reconciler in one map: the desired route and
//! the route of ours the kernel holds, each an interned [`Shared`] or
//! absent. One slot per prefix instead of a desired map and a kernel map
//! (which kept two hash slots per installed route); a slot with neither is
//! removed. Keyed by [`IpNetwork`]; stored in one map per family, so an
//! IPv4 slot keeps its 5-byte key (an `IpNetwork` key would be 18 bytes
//! and cost ~16 more bytes per IPv4 route), and IPv6 prefixes of up to 64
//! bits (nearly all of an IPv6 table) under a 9-byte [`Short6`] key instead
//! of the 17-byte [`Ipv6Network`]: a 32-byte table entry instead of 40.
//! Longer IPv6 prefixes (and any with bits set past the 64th) have a map of
//! their own. The IPv4 and short IPv6 keys hash by run ([`RunSeeded`]):
//! bulk loads arrive in address order, and neighbours then share cache
//! lines instead of missing once each.

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

use std::sync::Arc;

use super::hash::{FastMap, RunMap, Shared, run_of};

/// Rebuilds `m` at its size once under a quarter of its capacity is used:
/// the map never shrinks on removal, so after a full table was withdrawn its
/// capacity would stay resident (issue 10). O(len), amortised over the
/// removals that emptied it; a table being filled is at least half full.
fn shrink_if_sparse<K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher>(
    m: &mut std::collections::HashMap<K, V, S>,
) {
    if m.capacity() > 4096 && m.len() < m.capacity() / 4 {
        m.shrink_to_fit();
    }
}

/// An IPv6 prefix of at most 64 bits with nothing set past the 64th bit:
/// the upper 8 address bytes (network order) and the length.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Short6 {
    hi: [u8; 8],
    len: u8,
}

/// Hashes by run ([`RunSeeded`](super::hash::RunSeeded)): the run of its
/// upper 64 bits, its length, then its place.
impl std::hash::Hash for Short6 {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let (run, place) = run_of(u64::from_be_bytes(self.hi), self.len, 64);
        state.write_u64(run);
        state.write_u64(u64::from(self.len));
        state.write_u8(place);
    }
}

/// An IPv4 slot key (the same 5 bytes as the network), hashed by run:
/// its run and length in one word, then its place.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
struct Near4(Ipv4Network);

impl std::hash::Hash for Near4 {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let (run, place) = run_of(u64::from(u32::from(self.0.ip())), self.0.prefix(), 32);
        state.write_u64(run << 8 | u64::from(self.0.prefix()));
        state.write_u8(place);
    }
}

/// An IPv6 key as stored: short when it fits, else the whole network.
enum Key6 {
    Short(Short6),
    Long(Ipv6Network),
}

fn key6(n: &Ipv6Network) -> Key6 {
    let o = n.ip().octets();
    match (<[u8; 8]>::try_from(&o[..8]), o[8..].iter().all(|b| *b == 0)) {
        (Ok(hi), true) if n.prefix() <= 64 => Key6::Short(Short6 {
            hi,
            len: n.prefix(),
        }),
        _ => Key6::Long(*n),
    }
}

fn network6(k: &Short6) -> IpNetwork {
    let mut o = [0u8; 16];
    o[..8].copy_from_slice(&k.hi);
    // A stored key came from a valid network, so its length is valid.
    Ipv6Network::new(o.into(), k.len).map_or_else(
        |_| IpNetwork::V6(Ipv6Network::from(std::net::Ipv6Addr::from(o))),
        IpNetwork::V6,
    )
}

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
    maps: Maps,
    desired: usize,
}

/// The slots by key form (see the module doc).
#[derive(Default)]
struct Maps {
    v4: RunMap<Near4, Slot>,
    v6: RunMap<Short6, Slot>,
    v6_long: FastMap<Ipv6Network, Slot>,
}

impl Maps {
    fn get(&self, p: &IpNetwork) -> Option<&Slot> {
        match p {
            IpNetwork::V4(n) => self.v4.get(&Near4(*n)),
            IpNetwork::V6(n) => match key6(n) {
                Key6::Short(k) => self.v6.get(&k),
                Key6::Long(n) => self.v6_long.get(&n),
            },
        }
    }

    fn get_mut(&mut self, p: &IpNetwork) -> Option<&mut Slot> {
        match p {
            IpNetwork::V4(n) => self.v4.get_mut(&Near4(*n)),
            IpNetwork::V6(n) => match key6(n) {
                Key6::Short(k) => self.v6.get_mut(&k),
                Key6::Long(n) => self.v6_long.get_mut(&n),
            },
        }
    }

    fn entry(&mut self, p: IpNetwork) -> &mut Slot {
        match p {
            IpNetwork::V4(n) => self.v4.entry(Near4(n)).or_default(),
            IpNetwork::V6(n) => match key6(&n) {
                Key6::Short(k) => self.v6.entry(k).or_default(),
                Key6::Long(n) => self.v6_long.entry(n).or_default(),
            },
        }
    }

    fn remove(&mut self, p: &IpNetwork) {
        match p {
            IpNetwork::V4(n) => {
                self.v4.remove(&Near4(*n));
                shrink_if_sparse(&mut self.v4);
            }
            IpNetwork::V6(n) => match key6(n) {
                Key6::Short(k) => {
                    self.v6.remove(&k);
                    shrink_if_sparse(&mut self.v6);
                }
                Key6::Long(n) => {
                    self.v6_long.remove(&n);
                    shrink_if_sparse(&mut self.v6_long);
                }
            },
        }
    }

    /// Every slot with its prefix.
    fn slots(&self) -> impl Iterator<Item = (IpNetwork, &Slot)> {
        let v4 = self.v4.iter().map(|(p, s)| (IpNetwork::V4(p.0), s));
        let v6 = self.v6.iter().map(|(k, s)| (network6(k), s));
        let long = self.v6_long.iter().map(|(p, s)| (IpNetwork::V6(*p), s));
        v4.chain(v6).chain(long)
    }

    /// Keeps the slots for which `f` returns true.
    fn retain(&mut self, mut f: impl FnMut(IpNetwork, &mut Slot) -> bool) {
        self.v4.retain(|p, s| f(IpNetwork::V4(p.0), s));
        self.v6.retain(|k, s| f(network6(k), s));
        self.v6_long.retain(|p, s| f(IpNetwork::V6(*p), s));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.v4.len() + self.v6.len() + self.v6_long.len()
    }
}

impl Slots {
    fn get(&self, p: &IpNetwork) -> Option<&Slot> {
        self.maps.get(p)
    }

    fn get_mut(&mut self, p: &IpNetwork) -> Option<&mut Slot> {
        self.maps.get_mut(p)
    }

    fn entry(&mut self, p: IpNetwork) -> &mut Slot {
        self.maps.entry(p)
    }

    fn remove(&mut self, p: &IpNetwork) {
        self.maps.remove(p);
    }

    fn slots(&self) -> impl Iterator<Item = (IpNetwork, &Slot)> {
        self.maps.slots()
    }

    /// The desired route for `p`.
    pub(crate) fn desired(&self, p: &IpNetwork) -> Option<&Shared> {
        self.get(p).and_then(|s| s.desired.as_ref())
    }

    /// Our route for `p` in the kernel, as last seen.
    pub(crate) fn kernel(&self, p: &IpNetwork) -> Option<&Shared> {
        self.get(p).and_then(|s| s.kernel.as_ref())
    }

    pub(crate) fn is_desired(&self, p: &IpNetwork) -> bool {
        self.desired(p).is_some()
    }

    pub(crate) fn in_kernel(&self, p: &IpNetwork) -> bool {
        self.kernel(p).is_some()
    }

    /// Desire `r` for `p`; returns the previous desire.
    #[cfg(test)]
    pub(crate) fn set_desired(&mut self, p: IpNetwork, r: Shared) -> Option<Shared> {
        let old = self.entry(p).desired.replace(r);
        if old.is_none() {
            self.desired += 1;
        }
        old
    }

    /// Desire `r` (interned by the route table's one interner) for `p` with
    /// one hash operation (the bulk-load hot path): `None` if `r` was
    /// already desired, else the change, with the slot's kernel side
    /// writable (for write-through).
    pub(crate) fn desire(&mut self, p: IpNetwork, r: Shared) -> Option<Desired<'_>> {
        let slot = self.maps.entry(p);
        if slot
            .desired
            .as_ref()
            .is_some_and(|d| Arc::ptr_eq(d, &r) || **d == *r)
        {
            return None;
        }
        let old = slot.desired.replace(r);
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
        p: &IpNetwork,
    ) -> Option<(Option<&Shared>, &mut Option<Shared>)> {
        self.get_mut(p).map(|s| (s.desired.as_ref(), &mut s.kernel))
    }

    /// Drop `p`'s slot if it holds neither a desired nor a kernel route.
    pub(crate) fn remove_if_empty(&mut self, p: &IpNetwork) {
        if self
            .get(p)
            .is_some_and(|s| s.desired.is_none() && s.kernel.is_none())
        {
            self.remove(p);
        }
    }

    /// Undo an optimistic update of `p`'s kernel side: back to `prev`,
    /// unless something (a notification) changed it since `wrote` (the
    /// route the request wrote, `None` for a delete) was recorded.
    pub(crate) fn undo_kernel(
        &mut self,
        p: IpNetwork,
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
    pub(crate) fn take_desired(&mut self, p: &IpNetwork) -> Option<Shared> {
        let slot = self.get_mut(p)?;
        let old = slot.desired.take();
        if slot.kernel.is_none() {
            self.remove(p);
        }
        if old.is_some() {
            self.desired -= 1;
        }
        old
    }

    /// Record that the kernel holds `r` (ours) for `p`.
    pub(crate) fn set_kernel(&mut self, p: IpNetwork, r: Shared) -> Option<Shared> {
        self.entry(p).kernel.replace(r)
    }

    /// Record that the kernel holds no route of ours for `p`.
    pub(crate) fn take_kernel(&mut self, p: &IpNetwork) -> Option<Shared> {
        let slot = self.get_mut(p)?;
        let old = slot.kernel.take();
        if slot.desired.is_none() {
            self.remove(p);
        }
        old
    }

    /// Number of desired prefixes.
    pub(crate) fn desired_len(&self) -> usize {
        self.desired
    }

    /// Desired routes.
    pub(crate) fn desired_iter(&self) -> impl Iterator<Item = (IpNetwork, &Shared)> {
        self.slots()
            .filter_map(|(p, s)| s.desired.as_ref().map(|d| (p, d)))
    }

    /// Our routes in the kernel.
    pub(crate) fn kernel_iter(&self) -> impl Iterator<Item = (IpNetwork, &Shared)> {
        self.slots()
            .filter_map(|(p, s)| s.kernel.as_ref().map(|k| (p, k)))
    }

    /// Every prefix with its desired and kernel route.
    pub(crate) fn iter(
        &self,
    ) -> impl Iterator<Item = (IpNetwork, Option<&Shared>, Option<&Shared>)> {
        self.slots()
            .map(|(p, s)| (p, s.desired.as_ref(), s.kernel.as_ref()))
    }

    /// Replace the whole kernel view (after a re-dump).
    pub(crate) fn replace_kernel(&mut self, mut kernel: FastMap<IpNetwork, Shared>) {
        self.maps.retain(|p, s| {
            s.kernel = kernel.remove(&p);
            s.desired.is_some() || s.kernel.is_some()
        });
        for (p, k) in kernel {
            self.entry(p).kernel = Some(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::KernelRoute;
    use std::hash::BuildHasher;
    use std::sync::Arc;

    #[test]
    fn emptied_maps_give_their_capacity_back() {
        let r: Shared = Arc::new(KernelRoute::Blackhole);
        let mut s = Slots::default();
        let nets: Vec<IpNetwork> = (0..100_000u32)
            .map(|i| IpNetwork::V4(Ipv4Network::new((0x0a00_0000 + i).into(), 32).unwrap()))
            .collect();
        for p in &nets {
            s.set_desired(*p, r.clone());
        }
        let full = s.maps.v4.capacity();
        assert!(full >= 100_000);
        for p in &nets[..99_000] {
            s.take_desired(p);
        }
        assert_eq!(s.maps.v4.len(), 1000);
        let cap = s.maps.v4.capacity();
        assert!(cap < full / 8, "{cap} of {full}");
    }

    #[test]
    fn slots_track_both_sides_and_drop_empty_ones() {
        let p: IpNetwork = "10.0.0.0/24".parse().unwrap();
        let q: IpNetwork = "2001:db8::/64".parse().unwrap();
        let r: Shared = Arc::new(KernelRoute::Blackhole);
        let mut s = Slots::default();
        assert!(s.set_desired(p, r.clone()).is_none());
        assert!(s.set_kernel(p, r.clone()).is_none());
        assert_eq!(s.desired_len(), 1);
        assert!(s.take_desired(&p).is_some());
        assert_eq!(s.desired_len(), 0);
        assert!(s.in_kernel(&p) && !s.is_desired(&p));
        assert!(s.take_kernel(&p).is_some());
        assert_eq!(s.maps.len(), 0, "empty slot removed");

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
    fn ipv6_keys_short_and_long_round_trip() {
        let r: Shared = Arc::new(KernelRoute::Blackhole);
        let mut s = Slots::default();
        let nets: Vec<IpNetwork> = [
            "2001:db8::/64",
            "2001:db8:1::/48",
            "::/0",
            "2001:db8::1/128",
        ]
        .iter()
        .chain(&["2001:db8::1/64", "2001:db8::8000:0:0:0/65"])
        .map(|n| n.parse().unwrap())
        .collect();
        for p in &nets {
            s.set_desired(*p, r.clone());
        }
        assert_eq!((s.maps.v6.len(), s.maps.v6_long.len()), (3, 3));
        let n: Ipv6Network = "2001:db8::/64".parse().unwrap();
        let Key6::Short(k) = key6(&n) else {
            panic!("{n} is short")
        };
        // Hashed by run: its neighbour /64 (the next one) has the next bucket.
        let h = crate::reconcile::hash::RunSeeded::default();
        let Key6::Short(next) = key6(&"2001:db8:0:1::/64".parse().unwrap()) else {
            panic!("short")
        };
        assert_eq!(h.hash_one(next) & 0xf, (h.hash_one(k) & 0xf) + 1);
        let mut seen: Vec<IpNetwork> = s.desired_iter().map(|(p, _)| p).collect();
        let mut want = nets.clone();
        seen.sort();
        want.sort();
        assert_eq!(seen, want, "every prefix comes back exactly");
        for p in &nets {
            assert!(s.is_desired(p));
            s.take_desired(p);
        }
        assert_eq!(s.maps.len(), 0);
    }

    #[test]
    fn desire_and_write_side_in_one_lookup() {
        let p: IpNetwork = "10.0.0.0/24".parse().unwrap();
        let mut s = Slots::default();
        let ch = s.desire(p, Arc::new(KernelRoute::Blackhole)).unwrap();
        assert!(ch.old.is_none() && ch.kernel.is_none());
        assert_eq!(**ch.new, KernelRoute::Blackhole);
        assert!(s.desire(p, Arc::new(KernelRoute::Blackhole)).is_none());
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
        assert_eq!(s.maps.len(), 0);
    }
}
