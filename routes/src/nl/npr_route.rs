//! netlink-packet-route's decoded route message as the fields of our
//! [`RouteView`]: how the differential oracle (`oracle_views`) and the decode
//! measurement (`examples/nl_decode_bench.rs`, which includes this file)
//! read the reference parser's result. Test and benchmark code only.

use std::net::IpAddr;

use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};

use super::{HopView, RouteView};

fn npr_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// netlink-packet-route's reading of a route, as our view's fields (and
/// its next hops).
pub fn npr_route(m: &RouteMessage) -> (RouteView<'static>, Vec<HopView>) {
    let h = &m.header;
    let mut v = RouteView {
        family: u8::from(h.address_family),
        dst_len: h.destination_prefix_length,
        tos: h.tos,
        table: u32::from(h.table),
        protocol: u8::from(h.protocol),
        scope: u8::from(h.scope),
        kind: u8::from(h.kind),
        flags: h.flags.bits(),
        dst: None,
        gateway: None,
        oif: None,
        priority: 0,
        multipath: None,
    };
    let mut hops = Vec::new();
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => v.dst = npr_ip(d),
            RouteAttribute::Gateway(g) => v.gateway = npr_ip(g),
            RouteAttribute::Oif(i) => v.oif = Some(*i),
            RouteAttribute::Priority(p) => v.priority = *p,
            RouteAttribute::Table(t) => v.table = *t,
            RouteAttribute::MultiPath(nh) => {
                hops = nh
                    .iter()
                    .map(|n| HopView {
                        flags: n.flags.bits(),
                        ifindex: n.interface_index,
                        gateway: n.attributes.iter().find_map(|a| match a {
                            RouteAttribute::Gateway(g) => npr_ip(g),
                            _ => None,
                        }),
                    })
                    .collect()
            }
            _ => {}
        }
    }
    (v, hops)
}
