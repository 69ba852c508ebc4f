//! The netlink monitor half of the reconciler: notifications about links,
//! IPv4 and IPv6 addresses and routes caused by anyone but us (our own writes are
//! filtered in the kernel, see [`crate::nl::Socket::ignore_sender`]), read
//! with the one netlink parser ([`crate::nl::decode`]).
//!
//! - route of ours deleted or changed → put back (counted as restored);
//!   one of ours that is as desired (another writer of our protocol: an
//!   attach's host route the table expects) ends the prefix's failure or
//!   wait, if it had one;
//! - route of another protocol at the same prefix and metric → never fought
//!   (the prefix becomes a conflict until it goes away);
//! - link deleted or down → forget our routes naming it; re-dump if gateway
//!   routes could have resolved through it (it had an address);
//! - link up or new → retry routes waiting for it;
//! - lost notifications (ENOBUFS) or an address removed → re-dump;
//! - a nexthop object of ours deleted or changed by someone else (or
//!   flushed with its link) → forgotten, re-dump (`super::nexthops`);
//! - a neighbour or FDB entry on a VXLAN device of ours changed, or the
//!   device appeared → sync the VTEP entries (`super::vteps`).

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use tokio::time::Instant;

use super::{Link, RESYNC_DELAY, Reconciler, devs_of};
use crate::nl::consts::{RTM_DELNEXTHOP, RTM_NEWNEXTHOP};
use crate::nl::{self, AddrView, Decoded, DecodedRoute, Drain, LinkInfo, RouteView};

/// (ifindex, address, prefix length) of an IPv4 or IPv6 address message.
/// IPv6 link-local addresses (every veth has one) are left out: a gateway
/// route never resolves through them without naming the device, and a
/// device route is handled by name, so their link going away needs no
/// re-dump.
pub(super) fn addr_key(a: &AddrView) -> Option<(u32, IpAddr, u8)> {
    let ip = a.ip()?;
    let link_local = matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
    (!link_local).then_some((a.index, ip, a.prefix_len))
}

impl Reconciler {
    /// Read queued notifications and apply the ones others caused.
    pub(super) fn drain_monitor(&mut self) {
        // A notification may change what an encoded request was planned on
        // (see `Reconciler::run`): those are sent first.
        debug_assert_eq!(
            self.out.len(),
            0,
            "notifications applied over encoded requests"
        );
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let got = self.mon.drain_into(&mut buf);
            self.events(&buf);
            match got {
                Ok(Drain::Empty) => break,
                // Lost notifications: apply what we have, re-dump soon.
                Ok(Drain::Overrun) => self.resync_at = Some(Instant::now()),
                Err(e) => {
                    tracing::warn!("route monitor receive failed: {e}");
                    self.resync_at = Some(Instant::now() + RESYNC_DELAY);
                    break;
                }
            }
        }
    }

    /// Apply every notification in `buf` that we did not cause (our own
    /// are filtered in the kernel; skipped here too if that filter could
    /// not be attached).
    fn events(&mut self, buf: &[u8]) {
        let skip = self.cmd.portid();
        for m in nl::messages(buf) {
            if m.header.pid == skip && skip != 0 {
                continue;
            }
            if matches!(m.header.kind, RTM_NEWNEXTHOP | RTM_DELNEXTHOP) {
                self.nexthop_event(m.body);
                continue;
            }
            match nl::decode(&m) {
                Ok(d) => self.event(d),
                Err(e) => tracing::debug!("undecodable netlink notification: {e}"),
            }
        }
    }

    fn event(&mut self, d: Decoded<'_>) {
        match d {
            Decoded::Link { new, link } => self.link_event(&link, !new),
            Decoded::Addr { new: true, addr } => {
                if let Some(key) = addr_key(&addr)
                    && self.addressed.insert(key)
                {
                    // A new connected subnet may make refused gateways reachable.
                    self.dirty.extend(self.failed.keys().copied());
                }
            }
            Decoded::Addr { new: false, addr } => {
                if let Some(key) = addr_key(&addr) {
                    self.addressed.remove(&key);
                    // Routes through the address's subnet may be gone.
                    self.resync_at.get_or_insert(Instant::now() + RESYNC_DELAY);
                }
            }
            Decoded::Route { new, route } => self.route_event(&route, !new),
            Decoded::Neigh { neigh, .. } => self.neigh_event(&neigh),
            _ => {}
        }
    }

    fn link_event(&mut self, l: &LinkInfo, deleted: bool) {
        let index = l.index;
        let name = (!l.name.is_empty()).then(|| l.name.clone());
        let up = l.up();
        let old = self.links.remove(&index);
        if let Some(o) = &old
            && self.by_name.get(&o.name) == Some(&index)
        {
            self.by_name.remove(&o.name);
        }
        let was_up = old.as_ref().is_some_and(|o| o.up);
        let name = name.or(old.map(|o| o.name));
        if deleted || (was_up && !up) {
            // The kernel drops routes through the link without telling us:
            // forget ours that name it, and re-dump if gateway routes may
            // have resolved through it (only links with an address).
            if let Some(n) = &name {
                let gone: Vec<IpNetwork> = self
                    .slots
                    .kernel_iter()
                    .filter(|(_, r)| devs_of(r).any(|d| d == n))
                    .map(|(p, _)| p)
                    .collect();
                for p in gone {
                    self.slots.take_kernel(&p);
                    if self.slots.is_desired(&p) {
                        self.dirty.push(p);
                    }
                }
                if let Some(set) = self.by_dev.get(n) {
                    self.dirty.extend(set.iter().copied());
                }
            }
            if self.addressed.iter().any(|(i, _, _)| *i == index) {
                self.resync_at.get_or_insert(Instant::now() + RESYNC_DELAY);
            }
        }
        if deleted {
            return;
        }
        let Some(name) = name else { return };
        if up && !was_up {
            if let Some(set) = self.by_dev.get(&name) {
                self.dirty.extend(set.iter().copied());
            }
            self.dirty.extend(self.failed.keys().copied());
        }
        if name == crate::encap::VXLAN_DEV || name == crate::encap::VXLAN6_DEV {
            // Ours (re)appeared: its entries may be missing.
            self.vteps.dirty = true;
        }
        self.by_name.insert(name.clone(), index);
        self.links.insert(index, Link { name, up });
    }

    fn route_event(&mut self, r: &RouteView<'_>, deleted: bool) {
        let links = &self.links;
        let Some(d) = DecodedRoute::decode(r, &|i| links.get(&i).map(|l| l.name.clone())) else {
            return;
        };
        if d.table != self.table || !d.default_metric() || d.tos != 0 {
            return;
        }
        let p = d.prefix;
        if d.protocol != self.proto {
            if deleted {
                if self.foreign.remove(&p) && self.slots.is_desired(&p) {
                    self.dirty.push(p);
                }
            } else {
                // Same prefix and metric: a replace by someone else may have
                // taken our route's place; we never fight it. A desired
                // prefix is looked at, installed or not, so that the
                // conflict is recorded before `flush` or `install` answers.
                self.foreign.insert(p);
                self.slots.take_kernel(&p);
                if self.slots.is_desired(&p) {
                    self.dirty.push(p);
                }
            }
            return;
        }
        // Ours: whatever it says changes the slot's kernel side.
        if deleted {
            self.slots.take_kernel(&p);
            if self.slots.is_desired(&p) {
                self.restoring.insert(p);
                self.dirty.push(p);
            }
            return;
        }
        match d.route {
            Some(route) => {
                let satisfies = self.slots.desired(&p).map(|want| want.satisfied_by(&route));
                let route = self.routes.intern(route);
                self.slots.set_kernel(p, route);
                match satisfies {
                    // Not ours to delete until a sweep: e.g. attach's host
                    // route before the caller sets it here.
                    None => {
                        self.adopted.insert(p);
                    }
                    Some(false) => {
                        self.restoring.insert(p);
                        self.dirty.push(p);
                    }
                    // Another writer of our protocol installed what we
                    // failed to: not failed any more.
                    Some(true) => {
                        if !self.failed.is_empty() {
                            self.failed.remove(&p);
                        }
                        if !self.expected.is_empty() {
                            self.expected.remove(&p);
                        }
                    }
                }
            }
            None => {
                self.slots.take_kernel(&p);
                if self.slots.is_desired(&p) {
                    self.restoring.insert(p);
                    self.dirty.push(p);
                }
            }
        }
    }
}
