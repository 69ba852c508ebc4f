//! The netlink layer of tortie-routes, the only one: everything that
//! speaks rtnetlink here (attach, the route reconciler) and the
//! benchmark's raw writer (`tortie-bench`) go through it.
//!
//! - [`consts`]: the kernel's numbers, named as in its headers;
//! - [`build`]: one message builder (a [`Writer`] into a caller's buffer,
//!   or an owned, chained [`Msg`]) and the family headers;
//! - [`parse`]: one parser (datagram → messages → attributes, and the
//!   `NLMSG_ERROR` with the kernel's extended-ack text);
//! - [`route`]: route requests for both families ([`RouteEncoder`]);
//! - [`socket`]: one socket type ([`Socket`]).
//!
//! Requests are encoded by hand into a send buffer, not through the
//! rtnetlink crates' message structs: the same bytes (unit-tested), but
//! ~18 ns per route request instead of ~180-340 ns (`netlink-packet-route`
//! builds a `RouteMessage` with a `Vec` of attributes per route), measured
//! in one run alternating both; the kernel's own work (~3-5 µs per route)
//! dominates either way, so kernel throughput was within noise, while the
//! user CPU of a 100k-route load doubled (docs/design.md §4). Dumps and
//! notifications the reconciler reads are still decoded with
//! `netlink-packet-route` (`crate::wire`), off the write path.

pub mod build;
pub mod consts;
pub mod parse;
pub mod route;
pub mod socket;

pub use build::{Msg, Writer, family_of};
pub use parse::{ErrorMsg, Header, Message, attrs, error_msg, messages};
pub use route::{MIN_ROUTE_REQUEST, REPLACE_FLAGS, RouteEncoder};
pub use socket::{Socket, poll_readable};
