//! Route requests: one [`KernelRoute`] for one prefix as an `RTM_NEWROUTE`
//! (replace) or `RTM_DELROUTE`, encoded straight into a send buffer with the
//! [`Writer`] — no message structs, no allocation per route — for the
//! reconciler's bulk path and the benchmark's raw writer alike. The bytes
//! equal what the rtnetlink crates' codec (`netlink-packet-route`) writes
//! for the same route (unit-tested against it in `crate::wire`).

use ipnetwork::IpNetwork;

use super::build::{Writer, family_of, rtmsg};
use super::consts::*;
use crate::types::KernelRoute;

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
