//! The differential oracle: tortie's one netlink layer against the
//! rtnetlink crates' codec (`netlink-packet-route`, a dev-dependency only).
//!
//! - encoder: [`RouteEncoder`]'s bytes equal the serializer's for every
//!   route shape of both families (and literal byte vectors, independent
//!   of any codec);
//! - parser: on kernel-shaped messages (route, link, address, neighbour,
//!   error; with the attributes the kernel adds that we skip), every field
//!   the views read equals what `netlink-packet-route` decodes;
//! - hostility: every truncation and thousands of corruptions of a
//!   datagram go through every view, the route decoder and the dump reader
//!   without a panic.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netlink_packet_core::{NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkInfo as NprLinkInfo, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::build::{Writer, ifaddrmsg, ifinfomsg, ndmsg, rtmsg};
use super::consts::*;
use super::*;
use crate::types::{KernelRoute, NextHop};

fn route_address(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

/// The message that installs `route` for `prefix`, built with
/// `netlink-packet-route`: the reference the hand encoder must equal.
fn route_message(
    prefix: IpNetwork,
    route: &KernelRoute,
    protocol: u8,
    table: u32,
    ifindex: &dyn Fn(&str) -> Option<u32>,
) -> Result<RouteMessage, String> {
    let mut msg = base_message(prefix, protocol, table);
    let index_of = |dev: &str| ifindex(dev).ok_or_else(|| format!("device {dev} does not exist"));
    match route {
        KernelRoute::Blackhole => {
            msg.header.kind = RouteType::BlackHole;
        }
        KernelRoute::Local { dev } => {
            msg.header.scope = RouteScope::Link;
            msg.attributes.push(RouteAttribute::Oif(index_of(dev)?));
        }
        KernelRoute::Unicast { next_hops } => match next_hops.as_slice() {
            [] => return Err("unicast route without next hops".into()),
            [nh] => {
                msg.attributes
                    .push(RouteAttribute::Gateway(route_address(nh.gateway)));
                if let Some(dev) = &nh.dev {
                    msg.attributes.push(RouteAttribute::Oif(index_of(dev)?));
                }
                if nh.onlink {
                    msg.header.flags |= RouteFlags::Onlink;
                }
            }
            many => {
                let mut hops = Vec::with_capacity(many.len());
                for nh in many {
                    let mut hop = RouteNextHop::default();
                    if let Some(dev) = &nh.dev {
                        hop.interface_index = index_of(dev)?;
                    }
                    if nh.onlink {
                        hop.flags |= RouteNextHopFlags::Onlink;
                    }
                    hop.attributes
                        .push(RouteAttribute::Gateway(route_address(nh.gateway)));
                    hops.push(hop);
                }
                msg.attributes.push(RouteAttribute::MultiPath(hops));
            }
        },
    }
    Ok(msg)
}

/// The reference delete (protocol set, so the kernel never matches a route
/// of another protocol).
fn delete_message(prefix: IpNetwork, protocol: u8, table: u32) -> RouteMessage {
    let mut msg = base_message(prefix, protocol, table);
    msg.header.scope = RouteScope::NoWhere;
    msg.header.kind = RouteType::Unspec;
    msg
}

fn base_message(prefix: IpNetwork, protocol: u8, table: u32) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = if prefix.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    msg.header.destination_prefix_length = prefix.prefix();
    msg.header.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    msg.header.protocol = RouteProtocol::from(protocol);
    msg.header.scope = RouteScope::Universe;
    msg.header.kind = RouteType::Unicast;
    if prefix.prefix() > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(route_address(prefix.network())));
    }
    msg.attributes.push(RouteAttribute::Table(table));
    msg
}

/// Serialize a reference message as the kernel would send it.
fn serialize(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut nl = NetlinkMessage::from(msg);
    nl.header.flags = flags;
    nl.header.sequence_number = seq;
    nl.finalize();
    let mut b = vec![0; nl.buffer_len()];
    nl.serialize(&mut b);
    b
}

/// Our decoder on the bytes of one route message.
fn decode_bytes(b: &[u8], ifname: &dyn Fn(u32) -> Option<String>) -> Option<DecodedRoute> {
    let m = messages(b).next()?;
    match decode(&m).ok()? {
        Decoded::Route { route, .. } => DecodedRoute::decode(&route, ifname),
        _ => None,
    }
}

/// Reference message → our decoder.
fn roundtrip(prefix: IpNetwork, route: &KernelRoute) -> Option<KernelRoute> {
    let msg = route_message(prefix, route, 149, RT_TABLE_MAIN, &|d| {
        (d == "tunl0").then_some(7)
    })
    .ok()?;
    let b = serialize(RouteNetlinkMessage::NewRoute(msg), 0, 0);
    let d = decode_bytes(&b, &|i| (i == 7).then(|| "tunl0".to_string()))?;
    assert_eq!(d.prefix, prefix);
    d.route
}

fn encode_route(
    out: &mut Vec<u8>,
    seq: u32,
    prefix: IpNetwork,
    route: Option<&KernelRoute>,
    ifindex: &dyn Fn(&str) -> Option<u32>,
) -> Result<(), String> {
    RouteEncoder {
        protocol: 149,
        table: 254,
        extra_flags: 0,
    }
    .encode(out, seq, prefix, route, ifindex)
}

fn hop(g: &str, dev: Option<&str>, onlink: bool) -> NextHop {
    NextHop {
        gateway: g.parse().unwrap(),
        dev: dev.map(str::to_string),
        onlink,
    }
}

/// Every shape of route, with gateways `a`, `b`, `c` of one family.
fn shapes(a: &str, b: &str, c: &str) -> Vec<KernelRoute> {
    vec![
        KernelRoute::Blackhole,
        KernelRoute::Local {
            dev: "tunl0".into(),
        },
        KernelRoute::Unicast {
            next_hops: vec![hop(a, None, false)],
        },
        KernelRoute::Unicast {
            next_hops: vec![hop(a, Some("tunl0"), true)],
        },
        KernelRoute::Unicast {
            next_hops: vec![
                hop(a, None, false),
                hop(b, Some("tunl0"), true),
                hop(c, Some("tunl0"), false),
            ],
        },
    ]
}

#[test]
fn encode_decode_roundtrip_both_families() {
    for (prefix, gws) in [
        ("10.1.0.0/24", ["192.0.2.1", "192.0.2.2", "192.0.2.3"]),
        (
            "2001:db8:57::/48",
            ["2001:db8::1", "2001:db8::2", "fe80::3"],
        ),
    ] {
        let prefix: IpNetwork = prefix.parse().unwrap();
        for r in shapes(gws[0], gws[1], gws[2]) {
            assert_eq!(
                roundtrip(prefix, &r),
                Some(r.clone().normalized()),
                "{prefix} {r:?}"
            );
        }
    }
}

/// The hand encoder writes exactly what netlink-packet-route would.
#[test]
fn encode_route_matches_the_message_serializer() {
    let ifindex = |d: &str| (d == "tunl0").then_some(7);
    let reference =
        |msg: RouteNetlinkMessage, flags: u16, seq: u32| serialize(msg, NLM_F_REQUEST | flags, seq);
    let v4 = shapes("192.0.2.1", "192.0.2.2", "192.0.2.3");
    let v6 = shapes("2001:db8::1", "2001:db8::2", "fe80::3");
    for (i, prefix) in [
        "10.1.0.0/24",
        "10.9.8.7/32",
        "0.0.0.0/0",
        "2001:db8:57::/48",
        "fd00:10:244:1::7/128",
        "::/0",
    ]
    .iter()
    .enumerate()
    {
        let prefix: IpNetwork = prefix.parse().unwrap();
        let routes = if prefix.is_ipv4() { &v4 } else { &v6 };
        for (j, r) in routes.iter().enumerate() {
            let seq = (i * 10 + j) as u32;
            // An odd offset: the encoder aligns relative to the message.
            let mut ours = vec![0xee];
            encode_route(&mut ours, seq, prefix, Some(r), &ifindex).unwrap();
            let m = route_message(prefix, r, 149, 254, &ifindex).unwrap();
            let want = reference(RouteNetlinkMessage::NewRoute(m), REPLACE_FLAGS, seq);
            assert_eq!(ours[1..], want[..], "{prefix} {r:?}");
        }
        let mut ours = Vec::new();
        encode_route(&mut ours, 5, prefix, None, &ifindex).unwrap();
        let want = reference(
            RouteNetlinkMessage::DelRoute(delete_message(prefix, 149, 254)),
            0,
            5,
        );
        assert_eq!(ours, want, "delete {prefix}");
    }
    // A missing device leaves the buffer untouched.
    let mut buf = vec![1, 2, 3];
    let err = encode_route(
        &mut buf,
        1,
        "10.0.0.0/8".parse().unwrap(),
        Some(&v4[4]),
        &|_| None,
    )
    .unwrap_err();
    assert_eq!(err, "device tunl0 does not exist");
    assert_eq!(buf, [1, 2, 3]);
}

/// Native-endian u16/u32 as the kernel reads them (tests run little- and
/// big-endian alike).
fn ne16(v: u16) -> [u8; 2] {
    v.to_ne_bytes()
}
fn ne32(v: u32) -> [u8; 4] {
    v.to_ne_bytes()
}

/// Literal bytes, independent of any codec: `10.1.0.0/24 via 192.0.2.1`
/// and `2001:db8:57::/48` over two next hops.
#[test]
fn route_requests_as_byte_vectors() {
    let mut v4 = Vec::new();
    encode_route(
        &mut v4,
        9,
        "10.1.0.0/24".parse().unwrap(),
        Some(&KernelRoute::Unicast {
            next_hops: vec![hop("192.0.2.1", None, false)],
        }),
        &|_| None,
    )
    .unwrap();
    let mut want: Vec<u8> = Vec::new();
    want.extend(ne32(52)); // nlmsg_len
    want.extend(ne16(24)); // RTM_NEWROUTE
    want.extend(ne16(0x0501)); // REQUEST | CREATE | REPLACE
    want.extend(ne32(9)); // seq
    want.extend(ne32(0)); // pid
    want.extend([2, 24, 0, 0, 254, 149, 0, 1]); // AF_INET /24 main proto 149 universe unicast
    want.extend(ne32(0)); // rtm_flags
    want.extend(ne16(8));
    want.extend(ne16(1)); // RTA_DST
    want.extend([10, 1, 0, 0]);
    want.extend(ne16(8));
    want.extend(ne16(15)); // RTA_TABLE
    want.extend(ne32(254));
    want.extend(ne16(8));
    want.extend(ne16(5)); // RTA_GATEWAY
    want.extend([192, 0, 2, 1]);
    assert_eq!(v4, want);

    let mut v6 = Vec::new();
    encode_route(
        &mut v6,
        10,
        "2001:db8:57::/48".parse().unwrap(),
        Some(&KernelRoute::Unicast {
            next_hops: vec![
                hop("2001:db8::1", None, false),
                hop("fe80::2", Some("tunl0"), true),
            ],
        }),
        &|_| Some(7),
    )
    .unwrap();
    let gw1: [u8; 16] = "2001:db8::1"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    let gw2: [u8; 16] = "fe80::2".parse::<std::net::Ipv6Addr>().unwrap().octets();
    let mut want: Vec<u8> = Vec::new();
    // 16 + 12 + DST 20 + TABLE 8 + MULTIPATH (4 + 2 × (8 + 20)) = 116.
    want.extend(ne32(116));
    want.extend(ne16(24));
    want.extend(ne16(0x0501));
    want.extend(ne32(10));
    want.extend(ne32(0));
    want.extend([10, 48, 0, 0, 254, 149, 0, 1]); // AF_INET6 /48
    want.extend(ne32(0));
    want.extend(ne16(20));
    want.extend(ne16(1)); // RTA_DST
    want.extend([
        0x20, 0x01, 0x0d, 0xb8, 0, 0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    want.extend(ne16(8));
    want.extend(ne16(15));
    want.extend(ne32(254));
    want.extend(ne16(60));
    want.extend(ne16(9)); // RTA_MULTIPATH
    want.extend(ne16(28)); // rtnexthop: len
    want.extend([0, 0]); // flags, hops
    want.extend(ne32(0)); // ifindex
    want.extend(ne16(20));
    want.extend(ne16(5));
    want.extend(gw1);
    want.extend(ne16(28));
    want.extend([4, 0]); // RTNH_F_ONLINK
    want.extend(ne32(7));
    want.extend(ne16(20));
    want.extend(ne16(5));
    want.extend(gw2);
    assert_eq!(v6, want);

    // The delete: no next hops, scope nowhere, type unspec.
    let mut del = Vec::new();
    encode_route(&mut del, 11, "fd00::7/128".parse().unwrap(), None, &|_| {
        None
    })
    .unwrap();
    assert_eq!(del.len(), 16 + 12 + 20 + 8);
    assert_eq!(&del[4..6], &ne16(25)); // RTM_DELROUTE
    assert_eq!(&del[6..8], &ne16(1)); // REQUEST only
    assert_eq!(&del[16..24], &[10, 128, 0, 0, 254, 149, 255, 0]);
}

#[test]
fn ipv6_metric_and_device_routes_decode() {
    // The kernel dumps IPv6 routes at scope universe and metric 1024.
    let mut m = route_message(
        "fd00::7/128".parse().unwrap(),
        &KernelRoute::Local { dev: "tt1".into() },
        149,
        254,
        &|_| Some(3),
    )
    .unwrap();
    m.header.scope = RouteScope::Universe;
    m.attributes.push(RouteAttribute::Priority(1024));
    let b = serialize(RouteNetlinkMessage::NewRoute(m), 0, 0);
    let d = decode_bytes(&b, &|i| (i == 3).then(|| "tt1".to_string())).unwrap();
    assert_eq!(d.route, Some(KernelRoute::Local { dev: "tt1".into() }));
    assert!(d.default_metric());
    // The same at IPv4 scope universe is not a device route of ours.
    let mut m4 = route_message(
        "10.0.0.7/32".parse().unwrap(),
        &KernelRoute::Local { dev: "tt1".into() },
        149,
        254,
        &|_| Some(3),
    )
    .unwrap();
    m4.header.scope = RouteScope::Universe;
    m4.attributes.push(RouteAttribute::Priority(1024));
    let b4 = serialize(RouteNetlinkMessage::NewRoute(m4), 0, 0);
    let d4 = decode_bytes(&b4, &|_| None).unwrap();
    assert_eq!(d4.route, None);
    assert!(!d4.default_metric());
}

// ---- The parser against netlink-packet-route, on kernel-shaped messages.

/// A message as the kernel sends it: header, family header, attributes
/// (given as (kind, payload); a nest is pre-built bytes).
fn kernel_msg(kind: u16, flags: u16, seq: u32, header: &[u8], attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = Writer::begin(&mut out, kind, flags, seq, header);
    for (k, p) in attrs {
        w.attr(*k, p);
    }
    w.finish();
    out
}

fn nest(attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, p) in attrs {
        super::build::put_attr(&mut out, *k, p);
    }
    out
}

fn ip(s: &str) -> Vec<u8> {
    match s.parse::<IpAddr>().unwrap() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn u32b(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// `struct rtnexthop` + nested attributes.
fn rtnexthop(flags: u8, ifindex: u32, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let inner = nest(attrs);
    let mut h = ((8 + inner.len()) as u16).to_ne_bytes().to_vec();
    h.extend([flags, 0]);
    h.extend(ifindex.to_ne_bytes());
    h.extend(inner);
    h
}

const AF4: u8 = libc::AF_INET as u8;
const AF6: u8 = libc::AF_INET6 as u8;
const RTA_CACHEINFO: u16 = 12;
const RTA_PREF: u16 = 20;
const RTA_PREFSRC: u16 = 7;

/// Route, link, address and neighbour messages shaped as the kernel dumps
/// them (extra attributes we skip included).
fn kernel_messages() -> Vec<Vec<u8>> {
    let cacheinfo = vec![0u8; 32];
    vec![
        // 10.128.0.7/32 via 10.200.0.2 dev 3 proto 149, as dumped (IPv4).
        kernel_msg(
            RTM_NEWROUTE,
            0x2,
            7,
            &rtmsg(AF4, 32, 254, 149, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0),
            &[
                (RTA_TABLE, u32b(254)),
                (RTA_DST, ip("10.128.0.7")),
                (RTA_GATEWAY, ip("10.200.0.2")),
                (RTA_OIF, u32b(3)),
            ],
        ),
        // A connected route with a preferred source, scope link, table 10.
        kernel_msg(
            RTM_NEWROUTE,
            0x2,
            7,
            &rtmsg(AF4, 24, 10, 2, RT_SCOPE_LINK, RTN_UNICAST, 0),
            &[
                (RTA_TABLE, u32b(10)),
                (RTA_DST, ip("10.200.0.0")),
                (RTA_PREFSRC, ip("10.200.0.1")),
                (RTA_OIF, u32b(3)),
            ],
        ),
        // IPv6 ECMP over two next hops (one on-link), metric 1024, pref, cacheinfo.
        kernel_msg(
            RTM_NEWROUTE,
            0,
            0,
            &rtmsg(AF6, 48, 254, 149, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0),
            &[
                (RTA_TABLE, u32b(254)),
                (RTA_DST, ip("2001:db8:57::")),
                (RTA_PRIORITY, u32b(1024)),
                (RTA_PREF, vec![0]),
                (
                    RTA_MULTIPATH,
                    [
                        rtnexthop(0, 4, &[(RTA_GATEWAY, ip("2001:db8::1"))]),
                        rtnexthop(RTNH_F_ONLINK, 5, &[(RTA_GATEWAY, ip("fe80::2"))]),
                    ]
                    .concat(),
                ),
                (RTA_CACHEINFO, cacheinfo),
            ],
        ),
        // A blackhole of ours being deleted; an IPv4 on-link gateway.
        kernel_msg(
            RTM_DELROUTE,
            0,
            0,
            &rtmsg(AF4, 26, 254, 149, RT_SCOPE_UNIVERSE, RTN_BLACKHOLE, 0),
            &[(RTA_TABLE, u32b(254)), (RTA_DST, ip("10.244.1.0"))],
        ),
        kernel_msg(
            RTM_NEWROUTE,
            0,
            0,
            &rtmsg(
                AF4,
                32,
                254,
                149,
                RT_SCOPE_UNIVERSE,
                RTN_UNICAST,
                RTM_F_ONLINK,
            ),
            &[
                (RTA_TABLE, u32b(254)),
                (RTA_DST, ip("10.9.8.7")),
                (RTA_GATEWAY, ip("198.51.100.13")),
                (RTA_OIF, u32b(9)),
            ],
        ),
        // A VXLAN link, up and running, with the attributes ip-link shows.
        kernel_msg(
            RTM_NEWLINK,
            0x2,
            8,
            &ifinfomsg(9, IFF_UP | IFF_RUNNING | IFF_LOWER_UP, 0),
            &[
                (IFLA_IFNAME, b"tortie.vxlan\0".to_vec()),
                (13, u32b(1000)), // IFLA_TXQLEN
                (16, vec![6]),    // IFLA_OPERSTATE
                (IFLA_MTU, u32b(1450)),
                (6, b"noqueue\0".to_vec()), // IFLA_QDISC
                (IFLA_ADDRESS, vec![0x0e, 0x76, 1, 2, 3, 4]),
                (
                    IFLA_LINKINFO,
                    nest(&[
                        (IFLA_INFO_KIND, b"vxlan\0".to_vec()),
                        (
                            IFLA_INFO_DATA,
                            nest(&[(IFLA_VXLAN_ID, u32b(4097)), (IFLA_VXLAN_LEARNING, vec![0])]),
                        ),
                    ]),
                ),
            ],
        ),
        // A link going away (no attributes but the name).
        kernel_msg(
            RTM_DELLINK,
            0,
            0,
            &ifinfomsg(12, 0, 0),
            &[(IFLA_IFNAME, b"tta9993e36470\0".to_vec())],
        ),
        // Addresses: IPv4 with label and cacheinfo, IPv6 with flags.
        kernel_msg(
            RTM_NEWADDR,
            0x2,
            9,
            &ifaddrmsg(AF4, 24, 0, 3),
            &[
                (IFA_ADDRESS, ip("10.200.0.1")),
                (IFA_LOCAL, ip("10.200.0.1")),
                (3, b"rt0\0".to_vec()), // IFA_LABEL
                (IFA_FLAGS, u32b(0x80)),
                (6, vec![0; 16]), // IFA_CACHEINFO
            ],
        ),
        kernel_msg(
            RTM_DELADDR,
            0,
            0,
            &ifaddrmsg(AF6, 64, 0, 4),
            &[(IFA_ADDRESS, ip("2001:db8:1::11")), (IFA_FLAGS, u32b(0x80))],
        ),
        // Neighbours: an IPv4 permanent entry, an FDB entry (AF_BRIDGE).
        kernel_msg(
            RTM_NEWNEIGH,
            0x2,
            10,
            &ndmsg(AF4, 9, NUD_PERMANENT),
            &[
                (NDA_DST, ip("198.51.100.13")),
                (NDA_LLADDR, vec![0x0e, 0x76, 198, 51, 100, 13]),
                (3, vec![0; 16]), // NDA_CACHEINFO
                (4, u32b(0)),     // NDA_PROBES
            ],
        ),
        kernel_msg(
            RTM_NEWNEIGH,
            0x2,
            10,
            &{
                let mut h = ndmsg(AF_BRIDGE, 9, NUD_PERMANENT);
                h[10] = NTF_SELF;
                h
            },
            &[
                (NDA_LLADDR, vec![0x0e, 0x76, 198, 51, 100, 13]),
                (NDA_DST, ip("198.51.100.13")),
            ],
        ),
    ]
}

fn npr_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// netlink-packet-route's reading of a route, as our view's fields.
fn npr_route(m: &RouteMessage) -> (RouteView<'static>, Vec<HopFields>) {
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
                    .map(|n| HopFields {
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

type HopFields = super::view::HopView;

fn npr_link(m: &LinkMessage) -> LinkInfo {
    let mut l = LinkInfo {
        index: m.header.index,
        flags: m.header.flags.bits(),
        mac: Vec::new(),
        name: String::new(),
        mtu: 0,
        kind: String::new(),
        info_data: Vec::new(),
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::Address(mac) => l.mac = mac.clone(),
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::Mtu(mtu) => l.mtu = *mtu,
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let NprLinkInfo::Kind(k) = i {
                        l.kind = k.to_string();
                    }
                }
            }
            _ => {}
        }
    }
    l
}

fn npr_addr(m: &AddressMessage) -> AddrView {
    let mut v = AddrView {
        family: u8::from(m.header.family),
        prefix_len: m.header.prefix_len,
        scope: u8::from(m.header.scope),
        index: m.header.index,
        local: None,
        address: None,
    };
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => v.local = Some(*ip),
            AddressAttribute::Address(ip) => v.address = Some(*ip),
            _ => {}
        }
    }
    v
}

fn npr_neigh(m: &NeighbourMessage) -> (u8, u32, u16, u8, Option<IpAddr>, Option<Vec<u8>>) {
    let h = &m.header;
    let mut dst = None;
    let mut mac = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => dst = Some((*a).into()),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => dst = Some((*a).into()),
            NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => dst = view::ip_of(b),
            NeighbourAttribute::LinkLayerAddress(m) => mac = Some(m.clone()),
            _ => {}
        }
    }
    (
        u8::from(h.family),
        h.ifindex,
        u16::from(h.state),
        h.flags.bits(),
        dst,
        mac,
    )
}

/// Every field our views read equals netlink-packet-route's decode.
#[test]
fn views_read_what_netlink_packet_route_reads() {
    let msgs = kernel_messages();
    let datagram = msgs.concat();
    let ours: Vec<Message> = messages(&datagram).collect();
    assert_eq!(ours.len(), msgs.len());
    for (bytes, m) in msgs.iter().zip(&ours) {
        let theirs = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes).unwrap();
        assert_eq!(theirs.header.message_type, m.header.kind);
        assert_eq!(theirs.header.flags, m.header.flags);
        assert_eq!(theirs.header.sequence_number, m.header.seq);
        assert_eq!(theirs.header.port_number, m.header.pid);
        let NetlinkPayload::InnerMessage(inner) = theirs.payload else {
            panic!("not an inner message: {:?}", theirs.payload);
        };
        match (inner, decode(m).unwrap()) {
            (
                RouteNetlinkMessage::NewRoute(r) | RouteNetlinkMessage::DelRoute(r),
                Decoded::Route { route, .. },
            ) => {
                let (want, hops) = npr_route(&r);
                assert_eq!(
                    RouteView {
                        multipath: None,
                        ..route
                    },
                    want
                );
                assert_eq!(route.next_hops().collect::<Vec<_>>(), hops);
            }
            (
                RouteNetlinkMessage::NewLink(l) | RouteNetlinkMessage::DelLink(l),
                Decoded::Link { link, .. },
            ) => {
                assert_eq!(
                    LinkInfo {
                        info_data: Vec::new(),
                        ..link.clone()
                    },
                    npr_link(&l)
                );
                if link.kind == "vxlan" {
                    let data: Vec<_> = attrs(&link.info_data).map(|(k, _)| k).collect();
                    assert_eq!(data, [IFLA_VXLAN_ID, IFLA_VXLAN_LEARNING]);
                }
            }
            (
                RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a),
                Decoded::Addr { addr, .. },
            ) => assert_eq!(addr, npr_addr(&a)),
            (
                RouteNetlinkMessage::NewNeighbour(n) | RouteNetlinkMessage::DelNeighbour(n),
                Decoded::Neigh { neigh, .. },
            ) => assert_eq!(
                (
                    neigh.family,
                    neigh.ifindex,
                    neigh.state,
                    neigh.flags,
                    neigh.dst,
                    neigh.lladdr.map(<[u8]>::to_vec)
                ),
                npr_neigh(&n)
            ),
            (theirs, ours) => panic!("{theirs:?} read as {ours:?}"),
        }
    }
}

/// Error messages (ACK, refusal with extended-ack text) and DONE read as
/// netlink-packet-route reads them.
#[test]
fn errors_and_done_read_as_netlink_packet_route_reads_them() {
    let request = kernel_msg(
        RTM_NEWROUTE,
        NLM_F_REQUEST | NLM_F_ACK,
        77,
        &rtmsg(AF4, 32, 254, 149, 0, RTN_UNICAST, 0),
        &[(RTA_DST, ip("10.0.0.1"))],
    );
    // A refusal, capped (the request's header only), with a text TLV.
    let mut body = (-libc::ENETUNREACH).to_ne_bytes().to_vec();
    body.extend_from_slice(&request[..16]);
    super::build::put_attr(
        &mut body,
        NLMSGERR_ATTR_MSG,
        b"Nexthop has invalid gateway\0",
    );
    let mut refusal = Vec::new();
    Writer::begin(
        &mut refusal,
        NLMSG_ERROR,
        NLM_F_CAPPED | NLM_F_ACK_TLVS,
        77,
        &body,
    )
    .finish();
    // An ACK echoing the whole request.
    let mut body = 0i32.to_ne_bytes().to_vec();
    body.extend_from_slice(&request);
    let mut ack = Vec::new();
    Writer::begin(&mut ack, NLMSG_ERROR, 0, 77, &body).finish();
    let mut done = Vec::new();
    Writer::begin(&mut done, NLMSG_DONE, 0x2, 77, &0u32.to_ne_bytes()).finish();

    let theirs = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&refusal).unwrap();
    let NetlinkPayload::Error(e) = theirs.payload else {
        panic!("{:?}", theirs.payload)
    };
    let m = messages(&refusal).next().unwrap();
    let Decoded::Error(ours) = decode(&m).unwrap() else {
        panic!()
    };
    assert_eq!(ours.errno, -e.raw_code());
    assert_eq!(ours.errno, libc::ENETUNREACH);
    assert_eq!(ours.request_seq, Some(77));
    assert_eq!(ours.message.as_deref(), Some("Nexthop has invalid gateway"));

    let theirs = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&ack).unwrap();
    assert!(matches!(theirs.payload, NetlinkPayload::Error(ref e) if e.code.is_none()));
    let m = messages(&ack).next().unwrap();
    assert_eq!(
        decode(&m).unwrap(),
        Decoded::Error(ErrorMsg {
            errno: 0,
            request_seq: Some(77),
            message: None
        })
    );
    let theirs = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&done).unwrap();
    assert!(matches!(theirs.payload, NetlinkPayload::Done(_)));
    assert_eq!(
        decode(&messages(&done).next().unwrap()).unwrap(),
        Decoded::Done
    );
}

/// Everything a datagram can go through, exercised for hostility.
fn chew(b: &[u8]) -> usize {
    let mut n = 0;
    for m in messages(b) {
        if let Ok(d) = decode(&m) {
            n += 1;
            if let Decoded::Route { route, .. } = d {
                n += route.next_hops().count();
                let _ = DecodedRoute::decode(&route, &|i| Some(format!("if{i}")));
            }
        }
        let _ = error_msg(m.header.flags, m.body);
    }
    let mut reader = super::dump::DumpReader::new(7);
    let _ = reader.feed(b, &mut |_| n += 1);
    n
}

/// The parser never panics: every truncation of a datagram, every single
/// byte set to hostile values, and 20k pseudo-random corruptions (a fixed
/// xorshift seed, so a failure reproduces).
#[test]
fn parser_never_panics_on_truncated_or_odd_bytes() {
    let datagram = kernel_messages().concat();
    for cut in 0..=datagram.len() {
        chew(&datagram[..cut]);
        chew(&datagram[cut..]);
    }
    for at in 0..datagram.len() {
        for v in [0u8, 1, 3, 4, 7, 0x7f, 0x80, 0xff] {
            let mut b = datagram.clone();
            b[at] = v;
            chew(&b);
        }
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let mut b = datagram.clone();
        for _ in 0..(next() % 8 + 1) {
            let at = (next() as usize) % b.len();
            b[at] = next() as u8;
        }
        let cut = (next() as usize) % (b.len() + 1);
        chew(&b[..cut]);
    }
    // Short family headers are errors, not panics or defaults.
    for kind in [RTM_NEWROUTE, RTM_NEWLINK, RTM_NEWADDR, RTM_NEWNEIGH] {
        let mut b = Vec::new();
        Writer::begin(&mut b, kind, 0, 0, &[1, 2]).finish();
        let m = messages(&b).next().unwrap();
        assert!(decode(&m).is_err(), "kind {kind}");
    }
}
