//! tortie-routes: the Linux dataplane. Knows nothing of BGP.
//!
//! Data flow: intents (a container to attach; a desired set of kernel routes)
//! come in; netlink requests go out; a monitor restores what others remove.
//!
//! - [`attach()`] / [`detach`] / [`list_attachments`]: container veths
//!   ([`attach`](mod@attach)); attach writes a container's host routes
//!   only for the route table, which owns them ([`RouteTable::expect`]).
//! - [`RouteTable`]: the desired-state reconciler, the only writer of routes
//!   of our protocol, IPv4 and IPv6 alike (container host routes through
//!   [`RouteTable::install`]; refusals and their reasons through
//!   [`RouteTable::not_installed`]) ([`table`]; internals in the private
//!   `reconcile` module).
//! - [`nl`]: the one netlink layer (constants, builder, parser and typed
//!   views, socket with batches, dumps and a tokio mode) everything above
//!   uses, public for the benchmark's raw writer.
//! - [`ensure_tunl0`], [`release_tunl0`], [`underlay_mtu`]: IP-in-IP and link requests ([`tunnel`]).
//! - [`vxlan::ensure_vxlan`], [`vxlan::vtep_mac`]: VXLAN devices and the VTEP
//!   MAC derivation ([`vxlan`]); their FDB/neighbour entries are the
//!   [`RouteTable`]'s.
//! - [`set_sysctl`]: kernel parameters ([`sysctl`]).
//! - [`Encapsulation`], [`route_for_learned`]: the one encapsulation model,
//!   pure: from BGP next hops to a kernel route ([`encap`]).
//!
//! Everything acts on the network namespace of the calling thread, except
//! the container side of `attach`, which uses a dedicated thread that entered
//! the container's namespace (private `netns` module).

pub mod attach;
pub mod encap;
pub mod error;
pub mod nat;
mod netns;
pub mod nl;
mod reconcile;
pub mod sysctl;
pub mod table;
pub mod tunnel;
pub mod types;
pub mod vxlan;

pub use attach::{
    AttachRequest, Attacher, Attachment, GATEWAY, GATEWAY6, HOST_MAC, HostRoutes, attach,
    attach_then, delete_host_veth, detach, host_ifname, link_exists, list_attachments,
    list_host_veths,
};
pub use encap::{
    Carrier, Encapsulation, IPIP_OVERHEAD, TUNNEL_DEV, VXLAN_DEV, VXLAN6_DEV, route_for_learned,
};
pub use error::RoutesError;
pub use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
pub use nl::consts::RT_TABLE_MAIN;
pub use sysctl::{get_sysctl, set_sysctl};
pub use table::{RouteTable, SharedRoute, TableOptions};
pub use tunnel::{ensure_tunl0, release_tunl0, underlay_mtu};
pub use types::{KernelRoute, NextHop, RouteKind, RouteStats};

/// Default protocol number of our routes (`proto 149` in `ip route`).
pub const DEFAULT_ROUTE_PROTOCOL: u8 = 149;
/// Default host veth prefix.
pub const DEFAULT_VETH_PREFIX: &str = "tt";
