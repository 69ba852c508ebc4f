//! The differential oracle of the netlink parser: on kernel-shaped messages
//! (route, link, address, neighbour, error, done; with the attributes the
//! kernel adds that we skip), every field the typed views read equals what
//! the rtnetlink crates' codec (`netlink-packet-route`, a dev-dependency
//! only) decodes. And hostility: every truncation and thousands of
//! corruptions of a datagram go through every view, the route decoder and
//! the dump reader without a panic.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkInfo as NprLinkInfo, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};

use super::build::{Writer, ifaddrmsg, ifinfomsg, ndmsg, rtmsg};
use super::consts::*;
use super::npr_route::npr_route;
use super::*;

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
