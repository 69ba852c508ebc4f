//! Routes both ways between [`KernelRoute`] and the kernel's messages.
//!
//! Out: one [`KernelRoute`] for one prefix as an `RTM_NEWROUTE` (replace)
//! or `RTM_DELROUTE`, encoded straight into a send buffer — no message
//! structs, no allocation per route — for the reconciler's bulk path and
//! the benchmark's raw writer alike: every shape without ECMP in one fixed
//! layout built on the stack, ECMP field by field with the [`Writer`]; a
//! request of the fixed layout without a device can be kept as a
//! [`RouteTemplate`] and written again for other prefixes of its family
//! (the reconciler's bulk path). The bytes
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
    ///
    /// Every shape but ECMP (a delete, a blackhole, a device route, one
    /// next hop) takes the fixed layout (`encode_fixed`); ECMP and
    /// the malformed unicast without next hops take the general
    /// [`Writer`] path. Both write the same bytes (a unit test compares them
    /// for every shape and option).
    pub fn encode(
        &self,
        out: &mut Vec<u8>,
        seq: u32,
        prefix: IpNetwork,
        route: Option<&KernelRoute>,
        ifindex: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<(), String> {
        let hop = match route {
            Some(KernelRoute::Unicast { next_hops }) => match next_hops.as_slice() {
                [nh] => Some(nh),
                _ => return self.encode_general(out, seq, prefix, route, ifindex),
            },
            _ => None,
        };
        self.encode_fixed(out, seq, prefix, route, hop, None, ifindex)
    }

    /// Append one `RTM_NEWNEXTHOP` replace of `prefix` with the learned
    /// route `route` (one next hop) through nexthop object `nh_id`
    /// ([`super::nexthop`]): `RTA_NH_ID` in place of `RTA_GATEWAY` and
    /// `RTA_OIF` (the fixed layout; the object holds the gateway, device
    /// and `onlink`).
    pub fn encode_nh(
        &self,
        out: &mut Vec<u8>,
        seq: u32,
        prefix: IpNetwork,
        route: &KernelRoute,
        nh_id: u32,
    ) -> Result<(), String> {
        self.encode_fixed(out, seq, prefix, Some(route), None, Some(nh_id), &|_| None)
    }

    /// The fixed layout of a request without nests: `nlmsghdr`, `rtmsg`,
    /// then `RTA_DST` (unless /0), `RTA_TABLE`, `RTA_GATEWAY` (a single
    /// hop's), `RTA_OIF` (a device's), each at an offset known once the
    /// families are: the whole message is built in one stack array and
    /// appended with one copy (the general path's per-field appends,
    /// capacity checks and padding cost ≈ 430 instructions a route). `hop`
    /// is the single next hop of a unicast `route`; `nh_id`, the nexthop
    /// object it goes through instead (`RTA_NH_ID`, no gateway or device).
    #[allow(clippy::too_many_arguments)]
    fn encode_fixed(
        &self,
        out: &mut Vec<u8>,
        seq: u32,
        prefix: IpNetwork,
        route: Option<&KernelRoute>,
        hop: Option<&NextHop>,
        nh_id: Option<u32>,
        ifindex: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<(), String> {
        // Everything that can fail comes before a byte is written.
        let (gateway, dev) = match (route, hop) {
            _ if nh_id.is_some() => (None, None),
            (Some(KernelRoute::Local { dev }), _) => (None, Some(dev)),
            (Some(KernelRoute::Unicast { .. }), Some(nh)) => {
                (Some(nh.in_kernel().0), nh.dev.as_ref())
            }
            (Some(KernelRoute::Unicast { .. }), None) => {
                return self.encode_general(out, seq, prefix, route, ifindex);
            }
            (None | Some(KernelRoute::Blackhole), _) => (None, None),
        };
        let oif = match dev {
            Some(dev) => Some(device_index(ifindex, dev)?),
            None => None,
        };
        let (kind, flags, header) = self.header(prefix, route, nh_id.is_some());
        let mut b = [0u8; FIXED_MAX];
        b[4..6].copy_from_slice(&kind.to_ne_bytes());
        b[6..8].copy_from_slice(&flags.to_ne_bytes());
        b[8..12].copy_from_slice(&seq.to_ne_bytes());
        // b[12..16]: port id 0, the kernel fills it in.
        b[16..28].copy_from_slice(&header);
        let mut n = NLMSG_HDRLEN + RTMSG_LEN;
        if prefix.prefix() > 0 {
            n = put_ip(&mut b, n, RTA_DST, prefix.network());
        }
        n = put_u32(&mut b, n, RTA_TABLE, self.table);
        if let Some(gateway) = gateway {
            n = put_ip(&mut b, n, RTA_GATEWAY, gateway);
        }
        if let Some(oif) = oif {
            n = put_u32(&mut b, n, RTA_OIF, oif);
        }
        if let Some(id) = nh_id {
            n = put_u32(&mut b, n, RTA_NH_ID, id);
        }
        b[0..4].copy_from_slice(&(n as u32).to_ne_bytes());
        out.extend_from_slice(&b[..n]);
        Ok(())
    }

    /// The message type, header flags and `rtmsg` of the request for
    /// `route` (`None`: a delete; `nh`: through a nexthop object, whose
    /// flags hold `onlink`), shared by both paths.
    fn header(
        &self,
        prefix: IpNetwork,
        route: Option<&KernelRoute>,
        nh: bool,
    ) -> (u16, u16, [u8; RTMSG_LEN]) {
        let (kind, flags) = match route {
            Some(_) => (RTM_NEWROUTE, NLM_F_REQUEST | REPLACE_FLAGS),
            None => (RTM_DELROUTE, NLM_F_REQUEST),
        };
        let (scope, rtype, rflags) = match route {
            None => (RT_SCOPE_NOWHERE, RTN_UNSPEC, 0u32),
            Some(KernelRoute::Blackhole) => (RT_SCOPE_UNIVERSE, RTN_BLACKHOLE, 0),
            Some(KernelRoute::Local { .. }) => (RT_SCOPE_LINK, RTN_UNICAST, 0),
            Some(KernelRoute::Unicast { next_hops }) => match next_hops.as_slice() {
                [hop] if !nh && hop.in_kernel().1 => (RT_SCOPE_UNIVERSE, RTN_UNICAST, RTM_F_ONLINK),
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
        (kind, flags | self.extra_flags, header)
    }

    /// The general path: any shape, appended field by field with the
    /// [`Writer`] (nests for `RTA_MULTIPATH`).
    fn encode_general(
        &self,
        out: &mut Vec<u8>,
        seq: u32,
        prefix: IpNetwork,
        route: Option<&KernelRoute>,
        ifindex: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<(), String> {
        let index_of = |dev: &str| device_index(ifindex, dev);
        let (kind, flags, header) = self.header(prefix, route, false);
        let mut w = Writer::begin(out, kind, flags, seq, &header);
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

/// The index of device `dev`, or the error both paths give.
fn device_index(ifindex: &dyn Fn(&str) -> Option<u32>, dev: &str) -> Result<u32, String> {
    ifindex(dev).ok_or_else(|| format!("device {dev} does not exist"))
}

/// Where the fixed layout puts what differs between two prefixes of one
/// family: `rtm_dst_len` (in the `rtmsg`) and `RTA_DST`'s payload (right
/// after the `rtmsg`, whenever the prefix is longer than /0).
const DST_LEN_AT: usize = NLMSG_HDRLEN + 1;
const DST_AT: usize = NLMSG_HDRLEN + RTMSG_LEN + 4;
/// Where the header's sequence number is.
const SEQ_AT: usize = 8;

/// A request of the fixed layout encoded once ([`RouteEncoder::template`])
/// and written again for any prefix of its family longer than /0, with
/// three stores: the same bytes [`RouteEncoder::encode`] writes for it (a
/// unit test compares them over every shape, length and sequence number),
/// for a fraction of the work. The reconciler's bulk path: a burst repeats
/// one route over many prefixes.
#[derive(Debug, Clone)]
pub struct RouteTemplate {
    bytes: [u8; FIXED_MAX],
    len: usize,
    v6: bool,
}

impl RouteEncoder {
    /// The request for `route` (`None`: a delete) as [`encode`](Self::encode)
    /// writes it for prefixes of `prefix`'s family, to be written again by
    /// [`RouteTemplate::encode`]. `None` for shapes that need more than the
    /// fixed layout's stores per prefix: ECMP, a route naming a device
    /// (its index is looked up per request), or a /0 `prefix`.
    pub fn template(
        &self,
        prefix: IpNetwork,
        route: Option<&KernelRoute>,
    ) -> Option<RouteTemplate> {
        let hop = match route {
            Some(KernelRoute::Unicast { next_hops }) => match next_hops.as_slice() {
                [nh] if nh.dev.is_none() => Some(nh),
                _ => return None,
            },
            Some(KernelRoute::Local { .. }) => return None,
            _ => None,
        };
        self.template_of(prefix, route, hop, None)
    }

    /// [`template`](Self::template) of [`encode_nh`](Self::encode_nh)'s
    /// request: `route` through nexthop object `nh_id`.
    pub fn template_nh(
        &self,
        prefix: IpNetwork,
        route: &KernelRoute,
        nh_id: u32,
    ) -> Option<RouteTemplate> {
        self.template_of(prefix, Some(route), None, Some(nh_id))
    }

    fn template_of(
        &self,
        prefix: IpNetwork,
        route: Option<&KernelRoute>,
        hop: Option<&NextHop>,
        nh_id: Option<u32>,
    ) -> Option<RouteTemplate> {
        if prefix.prefix() == 0 {
            return None;
        }
        let mut out = Vec::with_capacity(FIXED_MAX);
        self.encode_fixed(&mut out, 0, prefix, route, hop, nh_id, &|_| None)
            .ok()?;
        let mut bytes = [0u8; FIXED_MAX];
        bytes.get_mut(..out.len())?.copy_from_slice(&out);
        let attr = u16::from_ne_bytes([*bytes.get(DST_AT - 4)?, *bytes.get(DST_AT - 3)?]);
        let kind = u16::from_ne_bytes([*bytes.get(DST_AT - 2)?, *bytes.get(DST_AT - 1)?]);
        let alen = if prefix.is_ipv6() { 16 } else { 4 };
        (attr == 4 + alen && kind == RTA_DST).then_some(RouteTemplate {
            bytes,
            len: out.len(),
            v6: prefix.is_ipv6(),
        })
    }
}

impl RouteTemplate {
    /// Append the request for `prefix` with sequence number `seq`: `false`
    /// (nothing written) for a prefix of the other family or a /0.
    pub fn encode(&self, out: &mut Vec<u8>, seq: u32, prefix: IpNetwork) -> bool {
        let mut b = self.bytes;
        match prefix {
            IpNetwork::V4(n) if !self.v6 && n.prefix() > 0 => {
                b[DST_AT..DST_AT + 4].copy_from_slice(&n.network().octets());
            }
            IpNetwork::V6(n) if self.v6 && n.prefix() > 0 => {
                b[DST_AT..DST_AT + 16].copy_from_slice(&n.network().octets());
            }
            _ => return false,
        }
        b[DST_LEN_AT] = prefix.prefix();
        b[SEQ_AT..SEQ_AT + 4].copy_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(b.get(..self.len).unwrap_or_default());
        true
    }
}

/// Longest fixed-layout request: header, rtmsg, an IPv6 `RTA_DST`,
/// `RTA_TABLE`, an IPv6 `RTA_GATEWAY`, `RTA_OIF` (a request through a
/// nexthop object, `RTA_NH_ID` instead of both, is shorter).
const FIXED_MAX: usize = NLMSG_HDRLEN + RTMSG_LEN + 20 + 8 + 20 + 8;

/// Write an attribute with an `N`-byte payload (4 or 16: never padded) at
/// `at` in a fixed-layout request; returns the offset after it.
fn put<const N: usize>(b: &mut [u8; FIXED_MAX], at: usize, kind: u16, payload: [u8; N]) -> usize {
    let len = 4 + N;
    if let Some(slot) = b.get_mut(at..at + len) {
        slot[0..2].copy_from_slice(&(len as u16).to_ne_bytes());
        slot[2..4].copy_from_slice(&kind.to_ne_bytes());
        slot[4..].copy_from_slice(&payload);
    }
    at + len
}

fn put_u32(b: &mut [u8; FIXED_MAX], at: usize, kind: u16, v: u32) -> usize {
    put(b, at, kind, v.to_ne_bytes())
}

/// An address attribute (4 or 16 bytes).
fn put_ip(b: &mut [u8; FIXED_MAX], at: usize, kind: u16, ip: IpAddr) -> usize {
    match ip {
        IpAddr::V4(a) => put(b, at, kind, a.octets()),
        IpAddr::V6(a) => put(b, at, kind, a.octets()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encap::VXLAN6_DEV;

    fn hop(gateway: &str, dev: Option<&str>, onlink: bool) -> NextHop {
        NextHop {
            gateway: gateway.parse().unwrap(),
            dev: dev.map(str::to_string),
            onlink,
        }
    }

    /// The fixed layout writes exactly the general path's bytes (and the
    /// same errors, leaving the buffer as it was) for every shape it
    /// takes, both families, /0 to host prefixes, and every option.
    #[test]
    fn fixed_layout_equals_general_path() {
        let ifindex = |dev: &str| match dev {
            "eth0" => Some(2),
            "cali1" => Some(0x0102_0304),
            d if d == VXLAN6_DEV => Some(77),
            _ => None,
        };
        let prefixes: Vec<IpNetwork> = [
            "0.0.0.0/0",
            "10.1.2.0/24",
            "10.1.2.3/32",
            "::/0",
            "2001:db8::/48",
            "2001:db8::7/128",
        ]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
        let unicast = |nh: NextHop| KernelRoute::Unicast {
            next_hops: vec![nh],
        };
        let routes = [
            None,
            Some(KernelRoute::Blackhole),
            Some(KernelRoute::Local {
                dev: "cali1".into(),
            }),
            Some(KernelRoute::Local { dev: "gone".into() }),
            Some(unicast(hop("192.0.2.1", None, false))),
            Some(unicast(hop("192.0.2.1", Some("eth0"), false))),
            Some(unicast(hop("192.0.2.1", Some("eth0"), true))),
            Some(unicast(hop("192.0.2.1", Some("gone"), true))),
            Some(unicast(hop("fe80::1", Some("cali1"), false))),
            Some(unicast(hop("2001:db8::1", None, true))),
            Some(unicast(hop("2001:db8::9", Some(VXLAN6_DEV), true))),
        ];
        let mut shapes = 0;
        for protocol in [149, 2] {
            for table in [254, 0, 255, 256, 0x1_0000] {
                for extra_flags in [0, NLM_F_ACK] {
                    let enc = RouteEncoder {
                        protocol,
                        table,
                        extra_flags,
                    };
                    for prefix in &prefixes {
                        for route in &routes {
                            let hop = match route {
                                Some(KernelRoute::Unicast { next_hops }) => next_hops.first(),
                                _ => None,
                            };
                            // After other bytes, as in a batch.
                            let (mut fixed, mut general) = (vec![9u8; 3], vec![9u8; 3]);
                            let seq = 0x0a0b_0c0d;
                            let f = enc.encode_fixed(
                                &mut fixed,
                                seq,
                                *prefix,
                                route.as_ref(),
                                hop,
                                None,
                                &ifindex,
                            );
                            let g = enc.encode_general(
                                &mut general,
                                seq,
                                *prefix,
                                route.as_ref(),
                                &ifindex,
                            );
                            assert_eq!(f, g, "{enc:?} {prefix} {route:?}");
                            assert_eq!(fixed, general, "{enc:?} {prefix} {route:?}");
                            if f.is_ok() {
                                assert!(general.len() > 3 + MIN_ROUTE_REQUEST - 1);
                                shapes += 1;
                            } else {
                                assert_eq!(general, [9u8; 3]);
                            }
                            // `encode` itself takes the same bytes.
                            let mut via = vec![9u8; 3];
                            let e = enc.encode(&mut via, seq, *prefix, route.as_ref(), &ifindex);
                            assert_eq!((e, via), (g, general));
                        }
                    }
                }
            }
        }
        assert_eq!(shapes, 2 * 5 * 2 * 6 * 9);
    }

    /// A template writes for every prefix of its family, length and
    /// sequence number the bytes `encode` writes; shapes that need a device
    /// lookup or more than the fixed layout, and /0, have none.
    #[test]
    fn templates_write_what_encode_writes() {
        let unicast = |nh: NextHop| KernelRoute::Unicast {
            next_hops: vec![nh],
        };
        let ifindex = |dev: &str| (dev == "eth0").then_some(2);
        let enc = RouteEncoder {
            protocol: 149,
            table: 254,
            extra_flags: 0,
        };
        let v4: IpNetwork = "10.1.2.3/32".parse().unwrap();
        let v6: IpNetwork = "2001:db8::7/128".parse().unwrap();
        let mut checked = 0;
        for (route, sample) in [
            (None, v4),
            (None, v6),
            (Some(KernelRoute::Blackhole), v4),
            (Some(KernelRoute::Blackhole), v6),
            (Some(unicast(hop("192.0.2.1", None, false))), v4),
            (Some(unicast(hop("192.0.2.1", None, true))), v4),
            (Some(unicast(hop("2001:db8::1", None, false))), v6),
            (Some(unicast(hop("2001:db8::1", None, true))), v6),
        ] {
            let t = enc.template(sample, route.as_ref()).expect("a template");
            let (bits, base): (u8, IpNetwork) = match sample {
                IpNetwork::V4(_) => (32, "10.200.0.0/9".parse().unwrap()),
                IpNetwork::V6(_) => (128, "2001:db8:1:2:3:4:5:6/16".parse().unwrap()),
            };
            for len in 1..=bits {
                for (i, seq) in [0u32, 1, 0x0a0b_0c0d, u32::MAX].into_iter().enumerate() {
                    let p = IpNetwork::new(base.ip(), len).unwrap();
                    let (mut a, mut b) = (vec![9u8; i], vec![9u8; i]);
                    assert!(t.encode(&mut a, seq, p));
                    enc.encode(&mut b, seq, p, route.as_ref(), &ifindex)
                        .unwrap();
                    assert_eq!(a, b, "{route:?} {p} {seq}");
                    checked += 1;
                }
            }
            // The other family and /0: nothing written.
            let other: IpNetwork = if sample.is_ipv4() { v6 } else { v4 };
            let default = IpNetwork::new(sample.ip(), 0).unwrap();
            for p in [other, default] {
                let mut a = vec![9u8; 3];
                assert!(!t.encode(&mut a, 1, p));
                assert_eq!(a, [9u8; 3]);
            }
        }
        assert_eq!(checked, 4 * (2 * 32 + 2 * 128) + 4 * (2 * 32 + 2 * 128));
        for route in [
            KernelRoute::Local { dev: "eth0".into() },
            unicast(hop("192.0.2.1", Some("eth0"), false)),
            KernelRoute::Unicast {
                next_hops: vec![hop("192.0.2.1", None, false), hop("192.0.2.2", None, false)],
            },
        ] {
            assert!(enc.template(v4, Some(&route)).is_none(), "{route:?}");
        }
        assert!(enc.template("0.0.0.0/0".parse().unwrap(), None).is_none());
    }
}
