//! Per-prefix state of the reconciler in one map: the desired route and
//! the route of ours the kernel holds, each an [`Id`] of a route the
//! slots' [`Handles`] hold, or none. One slot per prefix instead of a
//! desired map and a kernel map (which kept two hash slots per installed
//! route); a slot with neither is removed. A slot is two 3-byte ids of
//! alignment 1 (not two 8-byte `Arc`s: an IPv4 map entry is 11 bytes
//! instead of 24, the largest item of the agent's peak at 1M packed routes).
//! Keyed by [`IpNetwork`]; stored in one map per family, so an IPv4 slot
//! keeps its 5-byte key (an `IpNetwork` key would be 18 bytes), and IPv6
//! prefixes of up to 64 bits (nearly all of an IPv6 table) under a 9-byte
//! [`Short6`] key instead of the 17-byte [`Ipv6Network`]: a 15-byte entry
//! instead of 23. Longer IPv6 prefixes (and any with bits set past the
//! 64th) have a map of their own. The IPv4 and short-IPv6 maps are each a
//! directory ([`Dir`]) of 16 tables chosen by address bits, with unequal
//! shares so that they double at different sizes. The IPv4 and short IPv6 keys hash by run
//! ([`RunSeeded`](super::hash::RunSeeded)): bulk loads arrive in address
//! order, and neighbours then share cache lines instead of missing once
//! each.
//!
//! Data flow: a desire arrives as an interned [`Shared`]; the slot takes
//! its id ([`Handles::hold`]); readers get the route back by reference;
//! the write path ([`Sides`]) moves the kernel side to the desired id.
//! Every change of a side also keeps the count of installed routes
//! ([`Installed`]: desired and held by the kernel as desired) up to date,
//! so the reconciler's stats never rescan the table.

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

use std::sync::Arc;

use super::hash::{FastMap, Handles, Id, Shared, run_of};

mod dir;
use crate::types::{KernelRoute, RouteKind};
use dir::{Dir, Leaf, SHRINK_OVER, leaf_of, shrink_if_sparse, update_slot};
#[cfg(test)]
use dir::{LEAF_OF_SLICE, LEAVES, SLICE_STARTS};

/// An IPv6 prefix of at most 64 bits with nothing set past the 64th bit:
/// the upper 8 address bytes (network order) and the length.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Short6 {
    hi: [u8; 8],
    len: u8,
}

impl Leaf for Short6 {
    fn leaf(&self) -> usize {
        leaf_of(u64::from_be_bytes(self.hi), self.len, 64)
    }
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

impl Leaf for Near4 {
    fn leaf(&self) -> usize {
        leaf_of(u64::from(u32::from(self.0.ip())), self.0.prefix(), 32)
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

/// A prefix's two sides, each an [`Id`] in [`Handles`]: 6 bytes of
/// alignment 1.
#[derive(Clone, Copy, Default)]
struct Slot {
    desired: Id,
    kernel: Id,
}

impl Slot {
    /// Neither side: the slot is to be dropped.
    fn is_empty(&self) -> bool {
        !self.desired.is_some() && !self.kernel.is_some()
    }
}

/// The kind of `s`'s desired route if the kernel holds it as desired (the
/// same route, or one that satisfies it), else `None`.
fn installed_kind(routes: &Handles, s: &Slot) -> Option<RouteKind> {
    let want = routes.get(s.desired)?;
    if s.kernel == s.desired {
        return Some(want.kind());
    }
    let k = routes.get(s.kernel)?;
    (Arc::ptr_eq(want, k) || want.satisfied_by(k)).then(|| want.kind())
}

/// Installed routes (desired and held by the kernel as desired) by kind:
/// learned, local, blackhole; all and IPv6 only. Kept by [`Slots`] at
/// every change of a side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Installed {
    pub(crate) all: [u64; 3],
    pub(crate) ipv6: [u64; 3],
}

impl Installed {
    fn index(kind: RouteKind) -> usize {
        match kind {
            RouteKind::Learned => 0,
            RouteKind::Local => 1,
            RouteKind::Blackhole => 2,
        }
    }

    /// A slot of the family `v6` went from `before` to `after` ([`installed_kind`]).
    fn change(&mut self, v6: bool, before: Option<RouteKind>, after: Option<RouteKind>) {
        if before == after {
            return;
        }
        if let Some(k) = before {
            let i = Self::index(k);
            self.all[i] = self.all[i].saturating_sub(1);
            if v6 {
                self.ipv6[i] = self.ipv6[i].saturating_sub(1);
            }
        }
        if let Some(k) = after {
            let i = Self::index(k);
            self.all[i] += 1;
            if v6 {
                self.ipv6[i] += 1;
            }
        }
    }
}

/// What [`Slots::desire`] did.
pub(crate) enum Desire<'a> {
    /// The route was desired already (or could not be recorded): nothing
    /// changed.
    Same,
    /// The bulk-load fast path: the prefix held no route on either side;
    /// the route is desired and, if `write` encoded its replace, recorded
    /// as the kernel's (both sides one id, counted installed).
    New { written: bool },
    /// The desire changed: the change, with the kernel side writable.
    Changed(Desired<'a>),
}

/// A changed desire (see [`Slots::desire`]).
pub(crate) struct Desired<'a> {
    /// The previous desire.
    pub(crate) old: Option<Shared>,
    /// The slot, its new desire and its writable kernel side.
    pub(crate) sides: Sides<'a>,
}

/// One slot's desired route and writable kernel side (the reconciler's
/// write path; see [`Slots::sides_mut`]).
pub(crate) struct Sides<'a> {
    slot: &'a mut Slot,
    routes: &'a mut Handles,
    installed: &'a mut Installed,
    v6: bool,
}

impl Sides<'_> {
    pub(crate) fn desired(&self) -> Option<&Shared> {
        self.routes.get(self.slot.desired)
    }

    pub(crate) fn kernel(&self) -> Option<&Shared> {
        self.routes.get(self.slot.kernel)
    }

    /// The desired route, if it is held by the kernel (the same route or
    /// one that satisfies it).
    pub(crate) fn settled(&self) -> bool {
        match (self.desired(), self.kernel()) {
            (Some(d), Some(k)) => Arc::ptr_eq(d, k) || d.satisfied_by(k),
            _ => false,
        }
    }

    /// Record the desired route as the kernel's (a replace was encoded).
    /// Returns the request's two ids: the route written and the kernel
    /// side before, whose use moves from the slot to the request until it
    /// is settled ([`Slots::settled`] or [`Slots::undo_kernel`]). The route
    /// written takes no use of the request's: it is the slot's kernel side,
    /// which only a later request of the same buffer changes (notifications
    /// wait for the buffer, `Reconciler::run`), and that request's `prev`
    /// then holds it, so its id is not reused before the request is settled.
    /// Plain counts, no `Arc` clone per request.
    pub(crate) fn write_desired(&mut self) -> (Id, Id) {
        let before = installed_kind(self.routes, self.slot);
        let new = self.routes.hold_id(self.slot.desired);
        let prev = std::mem::replace(&mut self.slot.kernel, new);
        let after = installed_kind(self.routes, self.slot);
        self.installed.change(self.v6, before, after);
        (new, prev)
    }

    /// Record the kernel side as empty (a delete was encoded); returns it,
    /// its use moved to the request (see [`write_desired`](Self::write_desired)).
    pub(crate) fn take_kernel(&mut self) -> Id {
        let before = installed_kind(self.routes, self.slot);
        self.installed.change(self.v6, before, None);
        std::mem::replace(&mut self.slot.kernel, Id::NONE)
    }

    /// Neither side holds a route: the slot is to be dropped
    /// ([`Slots::remove_if_empty`]).
    pub(crate) fn is_empty(&self) -> bool {
        self.slot.is_empty()
    }
}

/// Desired and kernel routes by prefix.
#[derive(Default)]
pub(crate) struct Slots {
    maps: Maps,
    /// The routes the slots' sides name.
    routes: Handles,
    desired: usize,
    installed: Installed,
}

/// The slots by key form (see the module doc).
#[derive(Default)]
struct Maps {
    v4: Dir<Near4>,
    v6: Dir<Short6>,
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
            IpNetwork::V4(n) => self.v4.entry(Near4(n)),
            IpNetwork::V6(n) => match key6(&n) {
                Key6::Short(k) => self.v6.entry(k),
                Key6::Long(n) => self.v6_long.entry(n).or_default(),
            },
        }
    }

    fn remove(&mut self, p: &IpNetwork) {
        match p {
            IpNetwork::V4(n) => {
                self.v4.remove(&Near4(*n));
            }
            IpNetwork::V6(n) => match key6(n) {
                Key6::Short(k) => {
                    self.v6.remove(&k);
                }
                Key6::Long(n) => {
                    self.v6_long.remove(&n);
                    shrink_if_sparse(&mut self.v6_long, SHRINK_OVER);
                }
            },
        }
    }

    /// [`update_slot`] in `p`'s map.
    fn update<R>(&mut self, p: &IpNetwork, f: impl FnOnce(&mut Slot) -> Option<R>) -> Option<R> {
        match p {
            IpNetwork::V4(n) => self.v4.update(Near4(*n), f),
            IpNetwork::V6(n) => match key6(n) {
                Key6::Short(k) => self.v6.update(k, f),
                Key6::Long(n) => update_slot(&mut self.v6_long, n, SHRINK_OVER, f),
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

    fn remove(&mut self, p: &IpNetwork) {
        self.maps.remove(p);
    }

    fn slots(&self) -> impl Iterator<Item = (IpNetwork, &Slot)> {
        self.maps.slots()
    }

    /// The desired route for `p`.
    pub(crate) fn desired(&self, p: &IpNetwork) -> Option<&Shared> {
        self.routes.get(self.get(p)?.desired)
    }

    /// Our route for `p` in the kernel, as last seen.
    pub(crate) fn kernel(&self, p: &IpNetwork) -> Option<&Shared> {
        self.routes.get(self.get(p)?.kernel)
    }

    pub(crate) fn is_desired(&self, p: &IpNetwork) -> bool {
        self.get(p).is_some_and(|s| s.desired.is_some())
    }

    pub(crate) fn in_kernel(&self, p: &IpNetwork) -> bool {
        self.get(p).is_some_and(|s| s.kernel.is_some())
    }

    /// `p` is desired and the kernel holds it as desired (counted in
    /// [`installed`](Self::installed)).
    pub(crate) fn is_installed(&self, p: &IpNetwork) -> bool {
        self.get(p)
            .is_some_and(|s| installed_kind(&self.routes, s).is_some())
    }

    /// Desire `r` for `p`; returns the previous desire.
    #[cfg(test)]
    pub(crate) fn set_desired(&mut self, p: IpNetwork, r: Shared) -> Option<Shared> {
        let id = self.routes.hold(r);
        let slot = self.maps.entry(p);
        let before = installed_kind(&self.routes, slot);
        let old = std::mem::replace(&mut slot.desired, id);
        let after = installed_kind(&self.routes, slot);
        self.installed.change(p.is_ipv6(), before, after);
        if !old.is_some() {
            self.desired += 1;
        }
        self.routes.release(old)
    }

    /// Desire `r` (interned by the route table's one interner) for `p` with
    /// one hash operation (the bulk-load hot path).
    ///
    /// `new`: the caller's fast path for `r` (its kind; the caller vouches
    /// that `r` names no device and that `p` is free of conflicts). If `p`
    /// holds no route on either side and `r` is the route last held
    /// ([`Handles::last_held`]: a burst of one route), `write` is asked to
    /// encode the replace with `r`'s id and both sides take that id at once:
    /// [`Desire::New`], no `installed_kind` lookups, no second use count.
    /// Otherwise [`Desire::Same`] if `r` was already desired, else the
    /// change, with the slot's kernel side writable (for write-through).
    pub(crate) fn desire(
        &mut self,
        p: IpNetwork,
        r: Shared,
        new: Option<RouteKind>,
        write: impl FnOnce(Id, &KernelRoute) -> bool,
    ) -> Desire<'_> {
        let Slots {
            maps,
            routes,
            desired,
            installed,
        } = self;
        let slot = maps.entry(p);
        let v6 = p.is_ipv6();
        if let Some(kind) = new
            && !slot.desired.is_some()
            && !slot.kernel.is_some()
            && let Some(id) = routes.last_held(&r)
        {
            let written = write(id, &r);
            routes.hold_n(id, r, 1 + usize::from(written));
            slot.desired = id;
            *desired += 1;
            if written {
                slot.kernel = id;
                installed.change(v6, None, Some(kind));
            }
            return Desire::New { written };
        }
        if routes
            .get(slot.desired)
            .is_some_and(|d| Arc::ptr_eq(d, &r) || **d == *r)
        {
            return Desire::Same;
        }
        let id = routes.hold(r);
        if !id.is_some() {
            // Not recorded (see `Handles::hold`). A slot this leaves empty
            // stays until its prefix is next removed; every reader skips
            // empty sides.
            return Desire::Same;
        }
        let before = installed_kind(routes, slot);
        let old = std::mem::replace(&mut slot.desired, id);
        installed.change(v6, before, installed_kind(routes, slot));
        if !old.is_some() {
            *desired += 1;
        }
        Desire::Changed(Desired {
            old: routes.release(old),
            sides: Sides {
                slot,
                routes,
                installed,
                v6,
            },
        })
    }

    /// The desired route and a writable kernel side of `p`'s slot (one hash
    /// operation; the reconciler's write path). A slot left with neither
    /// side ([`Sides::is_empty`]) must be dropped with
    /// [`remove_if_empty`](Self::remove_if_empty).
    pub(crate) fn sides_mut(&mut self, p: &IpNetwork) -> Option<Sides<'_>> {
        let slot = self.maps.get_mut(p)?;
        Some(Sides {
            slot,
            routes: &mut self.routes,
            installed: &mut self.installed,
            v6: p.is_ipv6(),
        })
    }

    /// Drop `p`'s slot if it holds neither a desired nor a kernel route.
    pub(crate) fn remove_if_empty(&mut self, p: &IpNetwork) {
        if self
            .get(p)
            .is_some_and(|s| !s.desired.is_some() && !s.kernel.is_some())
        {
            self.remove(p);
        }
    }

    /// Drop `p`'s slot, which its [`Sides`] found empty ([`Sides::is_empty`]):
    /// one hash operation (the delete path of a write).
    pub(crate) fn remove_emptied(&mut self, p: &IpNetwork) {
        debug_assert!(
            self.get(p)
                .is_none_or(|s| !s.desired.is_some() && !s.kernel.is_some()),
            "only an empty slot is dropped"
        );
        self.remove(p);
    }

    /// A request the kernel applied: give back the use its `prev` held
    /// ([`Sides::write_desired`], [`Sides::take_kernel`]; [`Id::NONE`] for
    /// a new prefix). No lookup.
    pub(crate) fn settled(&mut self, prev: Id) {
        self.routes.drop_use(prev);
    }

    /// A request refused or never sent: `p`'s kernel side goes back to
    /// `prev`, unless a later request of its buffer changed it since
    /// `wrote` was recorded; then the request's use is given back.
    /// Requests are undone last first, and `wrote` is held (by the kernel
    /// side or by that later request's `prev`) until its own request is
    /// undone ([`Sides::write_desired`]), so an id equal to `wrote` is the
    /// very route written (never a reused id).
    pub(crate) fn undo_kernel(&mut self, p: IpNetwork, wrote: Id, prev: Id) {
        let now = self.get(&p).map_or(Id::NONE, |s| s.kernel);
        if now != wrote {
            self.settled(prev);
            return;
        }
        // `prev`'s use moves back into the slot; the slot's use of `now` goes.
        let slot = self.maps.entry(p);
        let before = installed_kind(&self.routes, slot);
        slot.kernel = prev;
        let after = installed_kind(&self.routes, slot);
        self.installed.change(p.is_ipv6(), before, after);
        self.remove_if_empty(&p);
        self.routes.drop_use(now);
    }

    /// Stop desiring `p` and run `f` on the previous desire and the slot's
    /// writable sides (`unset`'s write-through delete), then drop the slot
    /// if `f` left it with neither side ([`Sides::is_empty`]): one hash
    /// lookup ([`update_slot`]). `None`, and nothing changed, when `p` is
    /// not desired.
    pub(crate) fn undesire<R>(
        &mut self,
        p: &IpNetwork,
        f: impl FnOnce(Shared, &mut Sides<'_>) -> R,
    ) -> Option<R> {
        let Slots {
            maps,
            routes,
            desired,
            installed,
        } = self;
        let v6 = p.is_ipv6();
        maps.update(p, |slot| {
            if !slot.desired.is_some() {
                return None;
            }
            let before = installed_kind(routes, slot);
            installed.change(v6, before, None);
            let old = std::mem::replace(&mut slot.desired, Id::NONE);
            *desired -= 1;
            let old = routes.release(old)?;
            let mut sides = Sides {
                slot,
                routes,
                installed,
                v6,
            };
            Some(f(old, &mut sides))
        })
    }

    /// Stop desiring `p`, dropping its slot if the kernel side is empty;
    /// returns the previous desire ([`undesire`](Self::undesire) without a
    /// write: the tests' shorthand).
    #[cfg(test)]
    pub(crate) fn take_desired(&mut self, p: &IpNetwork) -> Option<Shared> {
        self.undesire(p, |old, _| old)
    }

    /// Record that the kernel holds `r` (ours) for `p`.
    pub(crate) fn set_kernel(&mut self, p: IpNetwork, r: Shared) -> Option<Shared> {
        let id = self.routes.hold(r);
        let slot = self.maps.entry(p);
        let before = installed_kind(&self.routes, slot);
        let old = std::mem::replace(&mut slot.kernel, id);
        let after = installed_kind(&self.routes, slot);
        self.installed.change(p.is_ipv6(), before, after);
        let old = self.routes.release(old);
        self.remove_if_empty(&p);
        old
    }

    /// Record that the kernel holds no route of ours for `p`.
    pub(crate) fn take_kernel(&mut self, p: &IpNetwork) -> Option<Shared> {
        let slot = self.maps.get_mut(p)?;
        let before = installed_kind(&self.routes, slot);
        self.installed.change(p.is_ipv6(), before, None);
        let old = std::mem::replace(&mut slot.kernel, Id::NONE);
        if !slot.desired.is_some() {
            self.remove(p);
        }
        self.routes.release(old)
    }

    /// Number of desired prefixes.
    pub(crate) fn desired_len(&self) -> usize {
        self.desired
    }

    /// The installed routes, as kept at every change of a side.
    pub(crate) fn installed(&self) -> Installed {
        self.installed
    }

    /// The installed routes counted afresh (O(slots): what [`installed`](Self::installed)
    /// must equal; checked in debug builds).
    pub(crate) fn count_installed(&self) -> Installed {
        let mut n = Installed::default();
        for (p, s) in self.slots() {
            n.change(p.is_ipv6(), None, installed_kind(&self.routes, s));
        }
        n
    }

    /// The uses [`Handles`] holds and the slot sides that name a route
    /// (O(slots)): equal but for the uses of requests in flight (checked in
    /// debug builds, [`super::Reconciler::publish`]).
    pub(crate) fn uses_and_sides(&self) -> (usize, usize) {
        let sides = self
            .slots()
            .map(|(_, s)| usize::from(s.desired.is_some()) + usize::from(s.kernel.is_some()))
            .sum();
        (self.routes.uses(), sides)
    }

    /// Desired routes.
    pub(crate) fn desired_iter(&self) -> impl Iterator<Item = (IpNetwork, &Shared)> {
        self.slots()
            .filter_map(|(p, s)| self.routes.get(s.desired).map(|d| (p, d)))
    }

    /// Our routes in the kernel.
    pub(crate) fn kernel_iter(&self) -> impl Iterator<Item = (IpNetwork, &Shared)> {
        self.slots()
            .filter_map(|(p, s)| self.routes.get(s.kernel).map(|k| (p, k)))
    }

    /// Every prefix with its desired and kernel route.
    pub(crate) fn iter(
        &self,
    ) -> impl Iterator<Item = (IpNetwork, Option<&Shared>, Option<&Shared>)> {
        self.slots()
            .map(|(p, s)| (p, self.routes.get(s.desired), self.routes.get(s.kernel)))
    }

    /// Replace the whole kernel view (after a re-dump).
    pub(crate) fn replace_kernel(&mut self, mut kernel: FastMap<IpNetwork, Shared>) {
        let Slots { maps, routes, .. } = self;
        maps.retain(|p, s| {
            let now = kernel.remove(&p).map_or(Id::NONE, |k| routes.hold(k));
            routes.drop_use(std::mem::replace(&mut s.kernel, now));
            s.desired.is_some() || s.kernel.is_some()
        });
        for (p, k) in kernel {
            let now = routes.hold(k);
            let s = maps.entry(p);
            routes.drop_use(std::mem::replace(&mut s.kernel, now));
        }
        // A re-dump is O(table) anyway: count afresh.
        self.installed = self.count_installed();
    }

    /// The distinct routes the slots' sides (and requests in flight) use.
    pub(crate) fn routes(&self) -> impl Iterator<Item = &Shared> {
        self.routes.routes()
    }

    /// Distinct routes the slots hold.
    #[cfg(test)]
    fn routes_held(&self) -> usize {
        self.routes.len()
    }
}

#[cfg(test)]
mod tests;
