//! The netlink layer of tortie-routes, the only one: everything that
//! speaks rtnetlink here (attach, detach and the attachment listing, the
//! route reconciler and its monitor, the VXLAN entries, the tunnels) and
//! the benchmark's raw writer (`tortie-bench`) go through it.
//!
//! - [`consts`]: the kernel's numbers, named as in its headers;
//! - [`build`]: one message builder (a [`Writer`] into a caller's buffer,
//!   or an owned, chained [`Msg`]) and the family headers;
//! - [`parse`]: one parser (datagram → messages → attributes, and the
//!   `NLMSG_ERROR` with the kernel's extended-ack text), and [`view`]: the
//!   typed views of route, link, address and neighbour messages on top of
//!   it ([`decode`]);
//! - [`nexthop`]: nexthop objects both ways (learned routes' `RTA_NH_ID`);
//! - [`route`]: routes both ways ([`RouteEncoder`] writes requests,
//!   [`DecodedRoute`] reads dumps and notifications);
//! - [`socket`]: one socket type ([`Socket`]: request batches in one
//!   `sendmsg`, answers, multicast groups), with [`dump`] (multi-part
//!   answers, `NLM_F_DUMP_INTR` restarts) and a tokio mode ([`aio`],
//!   [`AsyncSocket`]) for the reconciler.
//!
//! Requests are encoded by hand into a send buffer, not through the
//! rtnetlink crates' message structs: the same bytes (unit-tested), but
//! ~18 ns per route request instead of ~180-340 ns (`netlink-packet-route`
//! builds a `RouteMessage` with a `Vec` of attributes per route), measured
//! in one run alternating both; the kernel's own work (~3-5 µs per route)
//! dominates either way, so kernel throughput was within noise, while the
//! user CPU of a 100k-route load doubled (docs/design.md §4).
//!
//! Dumps and notifications are read by the same hand parser ([`view`]),
//! not by `netlink-packet-route`, for the same reason, measured the same
//! way (`examples/nl_decode_bench.rs`: 1M IPv4 /32 + 1M IPv6 /64 routes in
//! the kernel's dump format, 32 KiB datagrams, both parsers alternating in
//! one run, best of 5; 2 shared cores at load ~13, so CPU time is the
//! figure): parse to a typed route 33 ns/route CPU here vs 256 ns with
//! `NetlinkMessage<RouteNetlinkMessage>` (7.7x: it allocates a `Vec` of
//! attributes per message), and the reconciler's whole step to a
//! `DecodedRoute` 101 vs 324 ns (3.2x; the `KernelRoute` and its device
//! name, allocated either way, are the rest). A resync of 1M routes spends
//! ~0.1 s decoding instead of ~0.3 s.
//!
//! `netlink-packet-route` is a dev-dependency only: the differential oracle
//! of the tests (`oracle_routes`, `oracle_views`): the encoder's bytes
//! equal its serializer's, and the views read what its parser reads from
//! kernel-shaped messages; a fuzz-style test feeds the parser every
//! truncation and 20k corruptions of a datagram (errors, never a panic).

pub mod aio;
pub mod build;
pub mod consts;
pub mod dump;
pub mod nexthop;
pub mod parse;
pub mod route;
pub(crate) mod rtnl;
pub mod socket;
pub mod view;

#[cfg(test)]
mod npr_route;
#[cfg(test)]
mod oracle_routes;
#[cfg(test)]
mod oracle_views;

pub use aio::{AsyncSocket, Drain};
pub use build::{Msg, Writer, family_of};
pub use dump::Part;
pub use parse::{ErrorMsg, Header, Message, attrs, error_msg, messages};
pub use route::{DecodedRoute, MIN_ROUTE_REQUEST, REPLACE_FLAGS, RouteEncoder, RouteTemplate};
pub use socket::{Socket, poll_readable};
pub use view::{AddrView, Decoded, HopView, LinkInfo, NeighView, ParseError, RouteView, decode};
