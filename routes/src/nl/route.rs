//! Routes both ways between [`KernelRoute`] and the kernel's messages.
//!
//! Out: one [`KernelRoute`] for one prefix as an `RTM_NEWROUTE` (replace)
//! or `RTM_DELROUTE`, encoded straight into a send buffer with the
//! [`Writer`] — no message structs, no allocation per route — for the
//! reconciler's bulk path and the benchmark's raw writer alike. The bytes
//! equal what the rtnetlink crates' codec (`netlink-packet-route`) writes
//! for the same route (the differential tests in `super::oracle_routes`).
//!
//! In: a dumped or notified route ([`RouteView`]) as a [`DecodedRoute`]:
//! the prefix, table, protocol, metric and the [`KernelRoute`] it is, if it
//! is one tortie could have written.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;

use super::build::{Writer, family_of, rtmsg};
use super::consts::*;
use super::view::RouteView;
use crate::types::{KernelRoute, NextHop};

/// Fixed parts of the route requests one writer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteEncoder {
    /// `rtm_protocol` (ours: 149 by default).
    pub protocol: u8,
    /// Routing table id (main = 254; ids above 255 go in `RTA_TABLE` only).
    pub table: u32,
    /// Header flags added to every request (`NLM_F_ACK` for a writer that
    /// wants every answer; 0 for the reconciler, which hears failures only).
    pub extra_flags: u16,
}

/// Header flags of a route replace.
pub const REPLACE_FLAGS: u16 = NLM_F_CREATE | NLM_F_REPLACE;

/// Smallest request [`RouteEncoder::encode`] writes (a delete of the IPv4
/// default route: header, rtmsg, RTA_TABLE).
pub const MIN_ROUTE_REQUEST: usize = NLMSG_HDRLEN + RTMSG_LEN + 8;

impl RouteEncoder {
    /// Append one `RTM_NEWROUTE` replace (`route` is `Some`) or
    /// `RTM_DELROUTE` of our route for `prefix` to `out`. A delete carries
    /// the protocol, so the kernel never deletes a route of another one.
    /// `ifindex` resolves device names; on error (a device it does not
    /// know) `out` is left as it was.
    pub fn encode(
        &self,
        out: &mut Vec<u8>,
        seq: u32,
        prefix: IpNetwork,
        route: Option<&KernelRoute>,
        ifindex: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<(), String> {
        let index_of =
            |dev: &str| ifindex(dev).ok_or_else(|| format!("device {dev} does not exist"));
        let (kind, flags) = match route {
            Some(_) => (RTM_NEWROUTE, NLM_F_REQUEST | REPLACE_FLAGS),
            None => (RTM_DELROUTE, NLM_F_REQUEST),
        };
        let (scope, rtype, rflags) = match route {
            None => (RT_SCOPE_NOWHERE, RTN_UNSPEC, 0u32),
            Some(KernelRoute::Blackhole) => (RT_SCOPE_UNIVERSE, RTN_BLACKHOLE, 0),
            Some(KernelRoute::Local { .. }) => (RT_SCOPE_LINK, RTN_UNICAST, 0),
            Some(KernelRoute::Unicast { next_hops }) => match next_hops.as_slice() {
                [nh] if nh.in_kernel().1 => (RT_SCOPE_UNIVERSE, RTN_UNICAST, RTM_F_ONLINK),
                _ => (RT_SCOPE_UNIVERSE, RTN_UNICAST, 0),
            },
        };
        let header = rtmsg(
            family_of(prefix.ip()),
            prefix.prefix(),
            u8::try_from(self.table).unwrap_or(0),
            self.protocol,
            scope,
            rtype,
            rflags,
        );
        let mut w = Writer::begin(out, kind, flags | self.extra_flags, seq, &header);
        if prefix.prefix() > 0 {
            w.ip(RTA_DST, prefix.network());
        }
        w.u32(RTA_TABLE, self.table);
        let body = (|| {
            match route {
                None | Some(KernelRoute::Blackhole) => {}
                Some(KernelRoute::Local { dev }) => {
                    w.u32(RTA_OIF, index_of(dev)?);
                }
                Some(KernelRoute::Unicast { next_hops }) => match next_hops.as_slice() {
                    [] => return Err("unicast route without next hops".to_string()),
                    [nh] => {
                        w.ip(RTA_GATEWAY, nh.in_kernel().0);
                        if let Some(dev) = &nh.dev {
                            w.u32(RTA_OIF, index_of(dev)?);
                        }
                    }
                    many => {
                        let mp = w.nest(RTA_MULTIPATH);
                        for nh in many {
                            let index = match &nh.dev {
                                Some(dev) => index_of(dev)?,
                                None => 0,
                            };
                            // struct rtnexthop (length patched) + a nested RTA_GATEWAY.
                            let i = index.to_ne_bytes();
                            let (gateway, onlink) = nh.in_kernel();
                            let flags = if onlink { RTNH_F_ONLINK } else { 0 };
                            let hop = w.raw(&[0, 0, flags, 0, i[0], i[1], i[2], i[3]]);
                            w.ip(RTA_GATEWAY, gateway);
                            w.end(hop);
                        }
                        w.end(mp);
                    }
                },
            }
            Ok(())
        })();
        match body {
            Ok(()) => {
                w.finish();
                Ok(())
            }
            Err(e) => {
                w.abandon();
                Err(e)
            }
        }
    }
}

/// A decoded route of either family: what the reconciler needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRoute {
    pub prefix: IpNetwork,
    pub table: u32,
    pub protocol: u8,
    pub priority: u32,
    pub tos: u8,
    /// `None` for route types we never install (local, broadcast, ...).
    pub route: Option<KernelRoute>,
    /// Output interfaces referenced (for link-down handling).
    pub oifs: Vec<u32>,
}

/// The metric the kernel gives a route added without `RTA_PRIORITY`: 0 for
/// IPv4, 1024 for IPv6 (`IP6_RT_PRIO_USER`). Our routes carry it.
const IP6_RT_PRIO_USER: u32 = 1024;

impl DecodedRoute {
    /// Whether the route has the family's default metric, as ours do (the
    /// only metric at which a route of another protocol can collide).
    pub fn default_metric(&self) -> bool {
        match self.prefix {
            IpNetwork::V4(_) => self.priority == 0,
            IpNetwork::V6(_) => self.priority == IP6_RT_PRIO_USER || self.priority == 0,
        }
    }

    /// Decode an IPv4 or IPv6 route message (`None` for other families, or
    /// a destination of the wrong family or length). `ifname` maps an
    /// ifindex to its name. IPv6 routes are dumped with scope universe
    /// whatever was asked, so a device route without gateway is a
    /// [`KernelRoute::Local`] there at any scope; an IPv4 one only at scope
    /// link.
    pub fn decode(r: &RouteView<'_>, ifname: &dyn Fn(u32) -> Option<String>) -> Option<Self> {
        let unspecified = match i32::from(r.family) {
            libc::AF_INET => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            libc::AF_INET6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            _ => return None,
        };
        let v6 = unspecified.is_ipv6();
        let dst = r.dst.unwrap_or(unspecified);
        if dst.is_ipv6() != v6 {
            return None;
        }
        let prefix = IpNetwork::new(dst, r.dst_len).ok()?;
        let name = |i: u32| ifname(i).unwrap_or_else(|| format!("#{i}"));
        let mut oifs = Vec::new();
        let route = match r.kind {
            RTN_BLACKHOLE => Some(KernelRoute::Blackhole),
            RTN_UNICAST => {
                if r.multipath.is_some() {
                    let next_hops = r
                        .next_hops()
                        .map(|hop| {
                            if hop.ifindex != 0 {
                                oifs.push(hop.ifindex);
                            }
                            NextHop {
                                gateway: hop.gateway.unwrap_or(unspecified),
                                dev: (hop.ifindex != 0).then(|| name(hop.ifindex)),
                                onlink: hop.flags & RTNH_F_ONLINK != 0,
                            }
                        })
                        .collect();
                    Some(KernelRoute::Unicast { next_hops })
                } else if let Some(gateway) = r.gateway {
                    oifs.extend(r.oif);
                    Some(KernelRoute::Unicast {
                        next_hops: vec![NextHop {
                            gateway,
                            dev: r.oif.map(name),
                            onlink: r.flags & RTM_F_ONLINK != 0,
                        }],
                    })
                } else if let Some(i) = r.oif.filter(|_| v6 || r.scope == RT_SCOPE_LINK) {
                    oifs.push(i);
                    Some(KernelRoute::Local { dev: name(i) })
                } else {
                    oifs.extend(r.oif);
                    None
                }
            }
            _ => None,
        };
        Some(DecodedRoute {
            prefix,
            table: r.table,
            protocol: r.protocol,
            priority: r.priority,
            tos: r.tos,
            route: route.map(KernelRoute::normalized),
            oifs,
        })
    }
}
