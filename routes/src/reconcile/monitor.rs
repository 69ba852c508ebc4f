//! The netlink monitor half of the reconciler: notifications about links,
//! IPv4 and IPv6 addresses and routes caused by anyone but us (our own writes are
//! filtered in the kernel, see [`crate::wire::NlSocket::ignore_sender`]).
//!
//! - route of ours deleted or changed → put back (counted as restored);
//! - route of another protocol at the same prefix and metric → never fought
//!   (the prefix becomes a conflict until it goes away);
//! - link deleted or down → forget our routes naming it; re-dump if gateway
//!   routes could have resolved through it (it had an address);
//! - link up or new → retry routes waiting for it;
//! - lost notifications (ENOBUFS) or an address removed → re-dump;
//! - a neighbour or FDB entry on a VXLAN device of ours changed, or the
//!   device appeared → sync the VTEP entries (`super::vteps`).

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::RouteMessage;
use rtnetlink::packet_core::NetlinkPayload;
use tokio::time::Instant;

use super::{Link, RESYNC_DELAY, Reconciler, devs_of};
use crate::wire::{self, Drain, Received};

/// (ifindex, address, prefix length) of an IPv4 or IPv6 address message.
/// IPv6 link-local addresses (every veth has one) are left out: a gateway
/// route never resolves through them without naming the device, and a
/// device route is handled by name, so their link going away needs no
/// re-dump.
pub(super) fn addr_key(a: &AddressMessage) -> Option<(u32, IpAddr, u8)> {
    a.attributes.iter().find_map(|attr| match attr {
        AddressAttribute::Local(ip) | AddressAttribute::Address(ip) => {
            let link_local = matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
            (!link_local).then_some((a.header.index, *ip, a.header.prefix_len))
        }
        _ => None,
    })
}

impl Reconciler {
    /// Read queued notifications and apply the ones others caused.
    pub(super) fn drain_monitor(&mut self) {
        let mut msgs = Vec::new();
        let skip = self.cmd.portid();
        loop {
            msgs.clear();
            match self.mon.drain_filtered(&mut msgs, skip) {
                Ok(Drain::Empty) => {
                    for m in msgs.drain(..) {
                        self.event(m);
                    }
                    return;
                }
                Ok(Drain::Overrun) => {
                    // Lost notifications: apply what we have, re-dump soon.
                    for m in msgs.drain(..) {
                        self.event(m);
                    }
                    self.resync_at = Some(Instant::now());
                }
                Err(e) => {
                    tracing::warn!("route monitor receive failed: {e}");
                    self.resync_at = Some(Instant::now() + RESYNC_DELAY);
                    return;
                }
            }
        }
    }

    fn event(&mut self, m: Received) {
        let NetlinkPayload::InnerMessage(msg) = m.payload else {
            return;
        };
        match msg {
            RouteNetlinkMessage::NewLink(l) => self.link_event(&l, false),
            RouteNetlinkMessage::DelLink(l) => self.link_event(&l, true),
            RouteNetlinkMessage::NewAddress(a) => {
                if let Some(key) = addr_key(&a)
                    && self.addressed.insert(key)
                {
                    // A new connected subnet may make refused gateways reachable.
                    self.dirty.extend(self.failed.keys().copied());
                }
            }
            RouteNetlinkMessage::DelAddress(a) => {
                if let Some(key) = addr_key(&a) {
                    self.addressed.remove(&key);
                    // Routes through the address's subnet may be gone.
                    self.resync_at.get_or_insert(Instant::now() + RESYNC_DELAY);
                }
            }
            RouteNetlinkMessage::NewRoute(r) => self.route_event(&r, false),
            RouteNetlinkMessage::DelRoute(r) => self.route_event(&r, true),
            RouteNetlinkMessage::NewNeighbour(n) | RouteNetlinkMessage::DelNeighbour(n) => {
                self.neigh_event(&n)
            }
            _ => {}
        }
    }

    fn link_event(&mut self, l: &LinkMessage, deleted: bool) {
        let index = l.header.index;
        let name = l.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        });
        let up = l.header.flags.contains(LinkFlags::Up);
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

    fn route_event(&mut self, r: &RouteMessage, deleted: bool) {
        let links = &self.links;
        let Some(d) = wire::decode_route(r, &|i| links.get(&i).map(|l| l.name.clone())) else {
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
                // taken our route's place; we never fight it.
                self.foreign.insert(p);
                if let Some(route) = self.slots.take_kernel(&p)
                    && self
                        .slots
                        .desired(&p)
                        .is_some_and(|want| want.satisfied_by(&route))
                {
                    self.dirty.push(p);
                }
            }
            return;
        }
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
                let differs = self
                    .slots
                    .desired(&p)
                    .is_some_and(|want| !want.satisfied_by(&route));
                if !self.slots.is_desired(&p) {
                    // Not ours to delete until a sweep: e.g. attach's host
                    // route before the caller sets it here.
                    self.adopted.insert(p);
                }
                let route = self.routes.intern(route);
                self.slots.set_kernel(p, route);
                if differs {
                    self.restoring.insert(p);
                    self.dirty.push(p);
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
