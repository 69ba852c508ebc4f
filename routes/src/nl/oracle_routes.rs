//! The differential oracle of the netlink layer, routes both ways: tortie's
//! [`RouteEncoder`] against the rtnetlink crates' codec
//! (`netlink-packet-route`, a dev-dependency only) — the same bytes for
//! every route shape of both families, and literal byte vectors
//! independent of any codec — and the reference's serialized messages read
//! back by [`DecodedRoute`]. The parser's own oracle and hostility tests
//! are in `super::oracle_views`.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netlink_packet_core::{NLM_F_REQUEST, NetlinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

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

/// A learned route through a nexthop object: the same bytes as
/// `netlink-packet-route`'s message with `RTA_NH_ID` (and no gateway, no
/// device, no `onlink`: the object holds them), both families, from the
/// encoder and from its template at other prefixes and sequence numbers.
#[test]
fn routes_through_nexthop_objects_equal_the_reference() {
    let encoder = RouteEncoder {
        protocol: 149,
        table: 254,
        extra_flags: 0,
    };
    for (prefixes, gw) in [
        (["10.1.0.0/24", "10.9.8.7/32"], "192.0.2.1"),
        (["2001:db8:57::/48", "2001:db8:1:2::/64"], "2001:db8::1"),
    ] {
        let route = KernelRoute::Unicast {
            next_hops: vec![hop(gw, None, false)],
        };
        let template = encoder
            .template_nh(prefixes[0].parse().unwrap(), &route, 0x7470_0003)
            .expect("a template");
        for (seq, p) in prefixes.iter().enumerate() {
            let prefix: IpNetwork = p.parse().unwrap();
            let mut msg = base_message(prefix, 149, 254);
            msg.attributes.push(RouteAttribute::NhId(0x7470_0003));
            let want = serialize(
                RouteNetlinkMessage::NewRoute(msg),
                NLM_F_REQUEST | REPLACE_FLAGS,
                seq as u32 + 9,
            );
            let mut got = Vec::new();
            encoder
                .encode_nh(&mut got, seq as u32 + 9, prefix, &route, 0x7470_0003)
                .unwrap();
            assert_eq!(got, want, "{p}");
            let mut from_template = Vec::new();
            assert!(template.encode(&mut from_template, seq as u32 + 9, prefix));
            assert_eq!(from_template, want, "{p} (template)");
        }
    }
}
