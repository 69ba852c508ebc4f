//! Container attach / detach on a veth pair.
//!
//! `attach` creates the pair in one request: the host end (`tt` + 11 hex
//! chars of sha1(container id)) in the caller's namespace and the container
//! end created directly inside the container's namespace (`IFLA_NET_NS_FD`
//! on the peer, never created then moved), with a MAC we choose and one TX
//! and one RX queue per end (see `setup`). On the host, in one batch: no
//! kernel-made IPv6 link-local address (`addr_gen_mode` none), the end set
//! up, `proxy_arp=1` and `forwarding=1` on the veth
//! (`IFLA_INET_CONF`), neighbour `proxy_delay=0` (`RTM_SETNEIGHTBL`), a
//! permanent neighbour entry `<ip> lladdr <container MAC> dev ttX`; and
//! `ip_forward=1`. Inside the container (a netlink socket opened after the
//! attach thread entered the namespace, see `crate::netns`), in one batch:
//! `eth0` and `lo` up, the /32, `169.254.1.1 dev eth0 scope link`,
//! `default via 169.254.1.1 dev eth0` and a permanent neighbour entry
//! `169.254.1.1 lladdr <host veth MAC>`. Then the kernel's pending linkwatch
//! work for both ends runs on the attach thread (`ETHTOOL_GLINK`, see
//! `setup`), not later on a kworker, and a wait (bounded, 200 ms) checks
//! both ends are operationally up, driven by link notifications (both
//! sockets subscribe to `RTMGRP_LINK` before the links come up).
//!
//! The host route `<ip>/32 dev ttX scope link proto <ours>` (`/128` for
//! IPv6) belongs to the route table ([`crate::RouteTable`], the owner of
//! every route with our protocol). When the request carries the table's
//! [`HostRoutes`] (the agent's attaches), the attach writes it itself, at
//! the end of the host batch (the same `sendmsg`, created exclusively: it
//! never replaces a route that is there, ours or another protocol's), and
//! reports it in [`Attachment::routed`]; the caller told the table before
//! ([`crate::RouteTable::expect`]), so the table takes the route as its own
//! without writing it. A refused write is not an error: the caller
//! installs that address's route through the table instead
//! ([`crate::RouteTable::install`], which knows conflicts and reasons).
//! Without [`HostRoutes`] the caller installs every host route there;
//! [`attach_then`] tells the caller when the host end is up, so that
//! install can run on the table's thread while the container side is
//! configured here.
//!
//! Data flow: [`attach()`] (or [`Attacher::attach`], which keeps the
//! host-side socket, the `ip_forward` file and the namespace descriptor
//! between attaches, see `attacher`) validates, opens the namespace file and
//! runs `setup` off the runtime's workers (`worker`: the caller's thread inside
//! `block_in_place`, or a thread of its own), there
//! (`crate::nl::rtnl` sockets, requests batched
//! several to a `sendmsg`, one ACK each, errors with the kernel's
//! extended-ack text); the awaiting task gets the [`Attachment`]. Each step
//! is timed (debug log `attached … veth_us= container_us= …`).
//!
//! Why a permanent neighbour entry for the gateway: proxy ARP only answers
//! for 169.254.1.1 when the host has an ordinary route to that address out of
//! another interface (BENCH-NOTES), which a host without a default route does
//! not have, and adding a `169.254.1.1/32` route to the host would touch the
//! host's own table and could collide with other software. With the static
//! entry the container never has to ARP for its gateway, whatever the host's
//! routing looks like; `proxy_arp=1` stays on (as Calico does) for anything
//! else the container might ARP for on that link.
//!
//! A container with an IPv6 address (one per family at most) gets the
//! IPv6 half described in `v6`: the host veth takes the fixed MAC
//! `ee:ee:ee:ee:ee:ee`, the container a /128 and a default route via the
//! host veth's link-local address [`GATEWAY6`], no DAD, no NDP.
//!
//! Any failure after the veth exists deletes it again (which removes the
//! peer, its addresses and routes): a failed attach leaves nothing behind.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use sha1::{Digest, Sha1};

use crate::error::RoutesError;
use crate::netns;

mod attacher;
mod detach;
mod listing;
mod setup;
mod v6;
mod worker;

pub use attacher::Attacher;
pub use detach::{delete_host_veth, detach, link_exists};
pub use listing::{list_attachments, list_host_veths};
pub use v6::{GATEWAY6, HOST_MAC};

/// The gateway address every container routes through.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// Whose the container's host routes are, for an attach that writes them
/// ([`AttachRequest::host_routes`]): the route table's protocol and table
/// ([`crate::RouteTable::host_routes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostRoutes {
    /// `rtm_protocol` of the table's routes.
    pub protocol: u8,
    /// The routing table (main = 254).
    pub table: u32,
}

/// What to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachRequest {
    /// Container id (hashed into the host veth name).
    pub container_id: String,
    /// Network namespace: `/run/netns/X` or `/proc/PID/ns/net`.
    pub netns: PathBuf,
    /// Interface name inside the container (`eth0`).
    pub ifname: String,
    /// The container's addresses (a /32, a /128): one or two, at most one
    /// per family.
    pub addresses: Vec<IpAddr>,
    /// MTU for both ends.
    pub mtu: u32,
    /// Host veth name prefix (`tt`).
    pub veth_prefix: String,
    /// Write each address's host route in the host batch, as the route
    /// table's (see the module docs); `None`: the caller installs them.
    pub host_routes: Option<HostRoutes>,
}

/// What `attach` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Container id.
    pub container_id: String,
    /// Host veth name.
    pub host_ifname: String,
    /// Host veth ifindex.
    pub host_ifindex: u32,
    /// MAC of the host veth, `aa:bb:cc:dd:ee:ff` (the container's gateways
    /// resolve to it; `ee:ee:ee:ee:ee:ee` with an IPv6 address).
    pub host_mac: String,
    /// Interface name inside the container.
    pub container_ifname: String,
    /// MAC of the container's interface, `aa:bb:cc:dd:ee:ff`.
    pub container_mac: String,
    /// The container's addresses, as requested.
    pub addresses: Vec<IpAddr>,
    /// MTU set on both ends.
    pub mtu: u32,
    /// The namespace path attached into.
    pub netns: PathBuf,
    /// The addresses whose host route this attach wrote (with
    /// [`AttachRequest::host_routes`]; empty without); the others' the
    /// kernel refused, and the caller installs them through the table.
    pub routed: Vec<IpAddr>,
}

/// Host veth name: `prefix` + the first 11 hex characters of sha1(id).
pub fn host_ifname(prefix: &str, container_id: &str) -> String {
    let digest = Sha1::digest(container_id.as_bytes());
    let mut name = String::with_capacity(prefix.len() + 11);
    name.push_str(prefix);
    for b in digest.iter() {
        name.push_str(&format!("{b:02x}"));
    }
    name.truncate(prefix.len() + 11);
    name
}

fn mac_string(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn validate(req: &AttachRequest, ctx: &str) -> Result<(), RoutesError> {
    if req.container_id.is_empty() {
        return Err(RoutesError::invalid(ctx, "empty container id"));
    }
    if req.ifname.is_empty() || req.ifname.len() > 15 || req.ifname.contains(['/', ' ', ':']) {
        return Err(RoutesError::invalid(
            ctx,
            format!("invalid interface name {:?}", req.ifname),
        ));
    }
    if req.veth_prefix.len() > 4 || req.veth_prefix.contains(['/', ' ', ':', '.']) {
        return Err(RoutesError::invalid(
            ctx,
            format!(
                "veth prefix {:?} must be at most 4 plain characters",
                req.veth_prefix
            ),
        ));
    }
    let v4s = req.addresses.iter().filter(|a| a.is_ipv4()).count();
    if req.addresses.is_empty() || v4s > 1 || req.addresses.len() - v4s > 1 {
        return Err(RoutesError::invalid(
            ctx,
            format!(
                "addresses {:?}: one or two, at most one per family",
                req.addresses
            ),
        ));
    }
    if !(68..=65535).contains(&req.mtu) {
        return Err(RoutesError::invalid(
            ctx,
            format!("MTU {} out of range 68..65535", req.mtu),
        ));
    }
    Ok(())
}

impl AttachRequest {
    /// The IPv4 address, if any.
    pub fn v4(&self) -> Option<Ipv4Addr> {
        self.addresses.iter().find_map(|a| match a {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        })
    }

    /// The IPv6 address, if any.
    pub fn v6(&self) -> Option<Ipv6Addr> {
        self.addresses.iter().find_map(|a| match a {
            IpAddr::V6(a) => Some(*a),
            IpAddr::V4(_) => None,
        })
    }
}

/// Attach a container. See the module docs for exactly what is created.
///
/// The work blocks (it enters the container's namespace; netlink round
/// trips, the oper-up wait), so it never runs on a runtime worker: on a
/// multi-threaded runtime the caller's thread does it inside
/// `block_in_place`, else a fresh thread (see `worker`). A caller that
/// attaches many containers keeps an [`Attacher`] instead.
pub async fn attach(req: &AttachRequest) -> Result<Attachment, RoutesError> {
    attach_then(req, |_| {}).await
}

/// [`attach()`], calling `on_host_up(host_ifname)` as soon as the host end
/// is up and configured — before the container side is made and the
/// oper-up wait — so that the caller can start the host route's install in
/// the route table ([`crate::RouteTable::install`]; a route via a device
/// that is up is accepted before it has a carrier) while the attach goes
/// on (the table's task runs on another thread). On a multi-threaded
/// runtime it runs on the attach thread, in the caller's namespace; on a
/// current-thread runtime, once the attach has succeeded. Not called when
/// the attach fails before the host end is up; called at most once. A
/// caller that started an install from it and then sees the attach fail
/// removes the route again (the veth is gone, so nothing was routed).
pub async fn attach_then(
    req: &AttachRequest,
    on_host_up: impl FnOnce(&str) + Send,
) -> Result<Attachment, RoutesError> {
    Attacher::new()?.attach_then(req, on_host_up).await
}

impl Attacher {
    /// [`attach()`] with this attacher's kept socket, sysctl file and
    /// namespace (its host end goes into the namespace the attacher was
    /// made in; call it from a thread in that namespace).
    pub async fn attach(&self, req: &AttachRequest) -> Result<Attachment, RoutesError> {
        self.attach_then(req, |_| {}).await
    }

    /// [`attach_then()`] with this attacher's kept resources (see
    /// [`Attacher::attach`]).
    pub async fn attach_then(
        &self,
        req: &AttachRequest,
        on_host_up: impl FnOnce(&str) + Send,
    ) -> Result<Attachment, RoutesError> {
        let ctx = format!("attach {}", req.container_id);
        validate(req, &ctx)?;
        // Open the namespace first: a missing namespace fails before anything exists.
        let ns = netns::open_netns(&req.netns, &ctx)?;
        worker::run(self, req.clone(), ns, &ctx, on_host_up).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ifname_is_prefix_plus_11_hex() {
        // sha1("abc") = a9993e364706816aba3e25717850c26c9cd0d89d
        assert_eq!(host_ifname("tt", "abc"), "tta9993e36470");
        assert_eq!(host_ifname("tt", "abc").len(), 13);
    }

    #[test]
    fn mac_formatting() {
        assert_eq!(
            mac_string(&[0xaa, 0xbb, 0, 1, 2, 0xff]),
            "aa:bb:00:01:02:ff"
        );
    }
}
