//! Byte-vector tests of the wire codec, both directions: framing, OPEN and
//! capabilities, KEEPALIVE, NOTIFICATION, ROUTE-REFRESH, UPDATE and End-of-RIB.

mod wire_support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use tortie_bgp::types::*;
use tortie_bgp::wire::*;
use wire_support::*;

#[test]
fn keepalive_both_ways() {
    let bytes = msg(4, &[]);
    assert_eq!(
        decode(&bytes, &CodecContext::default()).unwrap(),
        Message::Keepalive
    );
    let mut out = Vec::new();
    encode(&Message::Keepalive, &CodecContext::default(), &mut out).unwrap();
    assert_eq!(out, bytes);
}

#[test]
fn frame_needs_whole_message() {
    let bytes = msg(4, &[]);
    assert_eq!(frame(&bytes[..10], 4096).unwrap(), None);
    assert_eq!(frame(&bytes[..18], 4096).unwrap(), None);
    assert_eq!(frame(&bytes, 4096).unwrap(), Some(19));
    let mut two = bytes.clone();
    two.extend_from_slice(&bytes);
    assert_eq!(frame(&two, 4096).unwrap(), Some(19));
    let upd = update(&[], &basic_attrs(), &[24, 10, 0, 0]);
    assert_eq!(frame(&upd[..upd.len() - 1], 4096).unwrap(), None);
    assert_eq!(frame(&upd, 4096).unwrap(), Some(upd.len()));
}

#[test]
fn frame_header_errors() {
    // RFC 4271 §6.1: marker -> Connection Not Synchronized.
    let mut bad = msg(4, &[]);
    bad[3] = 0;
    let e = frame(&bad, 4096).unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (1, 1));
    // Length below 19 and above the maximum -> Bad Message Length with the length as data.
    let mut short = msg(4, &[]);
    short[17] = 18;
    let e = frame(&short, 4096).unwrap_err();
    assert_eq!(
        (
            e.notification.code,
            e.notification.subcode,
            e.notification.data.clone()
        ),
        (1, 2, vec![0, 18])
    );
    let mut long = msg(2, &[0, 0, 0, 0]);
    long[16..18].copy_from_slice(&4097u16.to_be_bytes());
    let e = frame(&long, 4096).unwrap_err();
    assert_eq!(
        (
            e.notification.code,
            e.notification.subcode,
            e.notification.data.clone()
        ),
        (1, 2, vec![0x10, 0x01])
    );
    assert_eq!(
        frame(&long, 65535).unwrap(),
        None,
        "4097 is fine with extended messages"
    );
    // Unknown type -> Bad Message Type with the type as data.
    let e = frame(&msg(9, &[]), 4096).unwrap_err();
    assert_eq!(
        (
            e.notification.code,
            e.notification.subcode,
            e.notification.data.clone()
        ),
        (1, 3, vec![9])
    );
    // Per-type lengths: KEEPALIVE must be 19, OPEN at least 29.
    let e = frame(&msg(4, &[0]), 4096).unwrap_err();
    assert_eq!(
        (
            e.notification.code,
            e.notification.subcode,
            e.notification.data.clone()
        ),
        (1, 2, vec![0, 20])
    );
    let e = frame(&msg(1, &[4, 0, 1]), 4096).unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (1, 2));
}

/// An OPEN as FRR sends it: AS 65001, hold 180, id 192.0.2.1, capabilities
/// MP IPv4/IPv6, route refresh (2 and Cisco 128), 4-octet AS, GR, in several
/// optional parameters (one capability each, as FRR and BIRD do).
fn frr_like_open() -> Vec<u8> {
    let caps: Vec<Vec<u8>> = vec![
        vec![1, 4, 0, 1, 0, 1],
        vec![1, 4, 0, 2, 0, 1],
        vec![128, 0],
        vec![2, 0],
        vec![65, 4, 0, 0, 0xfd, 0xe9],
        vec![64, 6, 0x80 | 0x40, 120, 0, 1, 1, 0x80],
    ];
    let mut params = Vec::new();
    for c in &caps {
        params.push(2);
        params.push(c.len() as u8);
        params.extend_from_slice(c);
    }
    let mut body = vec![4, 0xfd, 0xe9, 0, 180, 192, 0, 2, 1, params.len() as u8];
    body.extend_from_slice(&params);
    msg(1, &body)
}

#[test]
fn open_decodes_capabilities_across_parameters() {
    let m = decode(&frr_like_open(), &CodecContext::default()).unwrap();
    let Message::Open(o) = m else {
        panic!("not an OPEN")
    };
    assert_eq!((o.version, o.my_as, o.hold_time), (4, 65001, 180));
    assert_eq!(o.bgp_identifier, Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(o.asn(), 65001);
    assert_eq!(
        o.capabilities,
        vec![
            Capability::Multiprotocol(AddressFamily::IPV4_UNICAST),
            Capability::Multiprotocol(AddressFamily::IPV6_UNICAST),
            Capability::Unknown {
                code: 128,
                value: vec![]
            },
            Capability::RouteRefresh,
            Capability::FourOctetAs(65001),
            Capability::GracefulRestart(GracefulRestartCapability {
                restart_state: true,
                notification: true,
                restart_time: 120,
                families: vec![(AddressFamily::IPV4_UNICAST, true)],
            }),
        ]
    );
}

#[test]
fn open_several_capabilities_in_one_parameter_round_trip() {
    let open = Open {
        version: 4,
        my_as: AS_TRANS,
        hold_time: 90,
        bgp_identifier: Ipv4Addr::new(10, 0, 0, 1),
        capabilities: vec![
            Capability::Multiprotocol(AddressFamily::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::EnhancedRouteRefresh,
            Capability::ExtendedMessage,
            Capability::FourOctetAs(4_200_000_000),
            Capability::GracefulRestart(GracefulRestartCapability {
                restart_state: false,
                notification: false,
                restart_time: 4095,
                families: vec![
                    (AddressFamily::IPV4_UNICAST, false),
                    (AddressFamily::IPV6_UNICAST, true),
                ],
            }),
            Capability::Unknown {
                code: 73,
                value: b"host".to_vec(),
            },
        ],
    };
    let mut out = Vec::new();
    encode(
        &Message::Open(open.clone()),
        &CodecContext::default(),
        &mut out,
    )
    .unwrap();
    // One Capabilities parameter holding all of them.
    assert_eq!(out[29], 2);
    assert_eq!(out[28] as usize, out.len() - 29);
    assert_eq!(
        decode(&out, &CodecContext::default()).unwrap(),
        Message::Open(open.clone())
    );
    assert_eq!(open.asn(), 4_200_000_000);
}

#[test]
fn open_extended_optional_parameters_rfc9072() {
    let caps: Vec<Capability> = (0..60)
        .map(|i| Capability::Unknown {
            code: 200,
            value: vec![i; 3],
        })
        .collect();
    let open = Open {
        version: 4,
        my_as: 1,
        hold_time: 3,
        bgp_identifier: Ipv4Addr::new(1, 1, 1, 1),
        capabilities: caps,
    };
    let mut out = Vec::new();
    encode(
        &Message::Open(open.clone()),
        &CodecContext::default(),
        &mut out,
    )
    .unwrap();
    assert_eq!((out[28], out[29]), (255, 255), "RFC 9072 marker");
    assert_eq!(
        decode(&out, &CodecContext::default()).unwrap(),
        Message::Open(open)
    );
}

fn open_err(body: &[u8]) -> Notification {
    decode(&msg(1, body), &CodecContext::default())
        .unwrap_err()
        .notification
}

#[test]
fn open_errors() {
    // RFC 4271 §6.2: unsupported version, data = largest supported version.
    let n = open_err(&[3, 0, 1, 0, 90, 1, 1, 1, 1, 0]);
    assert_eq!((n.code, n.subcode, n.data), (2, 1, vec![0, 4]));
    // Hold time 1 and 2 are unacceptable; 0 and 3 are fine.
    for h in [1u8, 2] {
        let n = open_err(&[4, 0, 1, 0, h, 1, 1, 1, 1, 0]);
        assert_eq!((n.code, n.subcode), (2, 6));
    }
    for h in [0u8, 3] {
        assert!(
            decode(
                &msg(1, &[4, 0, 1, 0, h, 1, 1, 1, 1, 0]),
                &CodecContext::default()
            )
            .is_ok()
        );
    }
    // BGP identifier 0 -> Bad BGP Identifier.
    let n = open_err(&[4, 0, 1, 0, 90, 0, 0, 0, 0, 0]);
    assert_eq!((n.code, n.subcode), (2, 3));
    // Optional parameter other than capabilities -> Unsupported Optional Parameter.
    let n = open_err(&[4, 0, 1, 0, 90, 1, 1, 1, 1, 3, 1, 1, 0]);
    assert_eq!((n.code, n.subcode), (2, 4));
    // Parameter length inconsistent with the message.
    let n = open_err(&[4, 0, 1, 0, 90, 1, 1, 1, 1, 5, 2, 2, 2, 0]);
    assert_eq!(n.code, 2);
    // Capability overrunning its parameter.
    let n = open_err(&[4, 0, 1, 0, 90, 1, 1, 1, 1, 4, 2, 2, 65, 4]);
    assert_eq!(n.code, 2);
}

#[test]
fn notification_and_route_refresh() {
    let n = Message::Notification(Notification {
        code: 6,
        subcode: 2,
        data: b"bye".to_vec(),
    });
    let mut out = Vec::new();
    encode(&n, &CodecContext::default(), &mut out).unwrap();
    assert_eq!(out, msg(3, &[6, 2, b'b', b'y', b'e']));
    assert_eq!(decode(&out, &CodecContext::default()).unwrap(), n);

    let rr = Message::RouteRefresh(RouteRefresh {
        family: AddressFamily::IPV6_UNICAST,
        subtype: 1,
    });
    out.clear();
    encode(&rr, &CodecContext::default(), &mut out).unwrap();
    assert_eq!(out, msg(5, &[0, 2, 1, 1]));
    assert_eq!(decode(&out, &CodecContext::default()).unwrap(), rr);
    // RFC 7313 §5: bad length -> 7/1 with the message as data.
    let bad = msg(5, &[0, 1, 0, 1, 0]);
    let e = decode(&bad, &CodecContext::default()).unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (7, 1));
    assert_eq!(e.notification.data, bad);
    // Unknown AFI and unknown subtype are ignored, not session resets.
    assert!(
        decode(&msg(5, &[0, 25, 0, 70]), &CodecContext::default())
            .unwrap_err()
            .is_ignorable()
    );
    assert!(
        decode(&msg(5, &[0, 1, 7, 1]), &CodecContext::default())
            .unwrap_err()
            .is_ignorable()
    );
}

#[test]
fn update_ipv4_decodes() {
    let bytes = update(&[16, 10, 9], &basic_attrs(), &[16, 10, 1, 24, 192, 168, 1]);
    let Message::Update(u) = decode(&bytes, &ctx4()).unwrap() else {
        panic!()
    };
    assert_eq!(u.withdrawn[..], [p("10.9.0.0/16")]);
    assert_eq!(u.announced[..], [p("10.1.0.0/16"), p("192.168.1.0/24")]);
    let a = u.attributes.unwrap();
    assert_eq!(a.origin, Origin::Igp);
    assert_eq!(
        a.as_path.segments[..],
        [AsPathSegment::Sequence(vec![65001, 65002].into())]
    );
    assert_eq!(a.next_hop, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
    assert!(u.malformed.is_empty());
    assert_eq!(u.end_of_rib, None);
}

#[test]
fn update_all_attributes_round_trip() {
    let attrs = PathAttributes {
        origin: Origin::Incomplete,
        as_path: AsPath {
            segments: vec![
                AsPathSegment::Sequence(vec![65001, 4_200_000_001].into()),
                AsPathSegment::Set(vec![7, 8].into()),
            ]
            .into(),
        },
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9))),
        med: Some(50),
        local_pref: Some(200),
        atomic_aggregate: true,
        aggregator: Some((4_200_000_001, Ipv4Addr::new(192, 0, 2, 99))),
        communities: vec![0xfde9_0001, 0xffff_ff01],
        extended_communities: vec![[0, 2, 0xfd, 0xe9, 0, 0, 0, 1]],
        large_communities: vec![[4_200_000_001, 1, 2]],
        originator_id: Some(Ipv4Addr::new(10, 0, 0, 5)),
        cluster_list: vec![Ipv4Addr::new(10, 0, 0, 6)],
        unknown: vec![RawAttribute {
            flags: 0xc0 | 0x20,
            type_code: 99,
            value: vec![1, 2, 3],
        }],
        ..PathAttributes::default()
    };
    let u = Update {
        withdrawn: vec![p("10.9.0.0/16")].into(),
        attributes: Some(Arc::new(attrs)),
        announced: vec![p("10.1.0.0/16"), p("0.0.0.0/0"), p("10.1.2.3/32")].into(),
        ..Update::default()
    };
    for four in [true, false] {
        let ctx = CodecContext {
            four_octet_as: four,
            ibgp: true,
            ..ctx4()
        };
        let mut out = Vec::new();
        encode(&Message::Update(u.clone()), &ctx, &mut out).unwrap();
        let Message::Update(back) = decode(&out, &ctx).unwrap() else {
            panic!()
        };
        assert_eq!(back, u, "four_octet_as={four}");
    }
}

#[test]
fn update_ipv6_mp_reach_and_unreach() {
    let mut mp = vec![0, 2, 1, 32];
    mp.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    mp.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
    mp.push(0);
    mp.extend_from_slice(&[32, 0x20, 0x01, 0x0d, 0xb8, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 1]);
    let unreach = attr(0x80, 15, &[0, 2, 1, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 9]);
    let attrs = [attr(0x80, 14, &mp), unreach, origin(0), as_path4(&[65001])].concat();
    let Message::Update(u) = decode(&update(&[], &attrs, &[]), &ctx4()).unwrap() else {
        panic!()
    };
    assert_eq!(u.announced[..], [p("2001:db8::/32"), p("2001:db8:1::/48")]);
    assert_eq!(u.withdrawn[..], [p("2001:db8:0:9::/64")]);
    let a = u.attributes.clone().unwrap();
    assert_eq!(a.next_hop, Some("2001:db8::1".parse().unwrap()));
    assert_eq!(a.link_local_next_hop, Some("fe80::1".parse().unwrap()));
    assert!(u.malformed.is_empty(), "{:?}", u.malformed);
    // Round trip through the single-message encoder and the packer.
    let mut out = Vec::new();
    encode(&Message::Update(u.clone()), &ctx4(), &mut out).unwrap();
    assert_eq!(decode(&out, &ctx4()).unwrap(), Message::Update(u.clone()));
    let mut msgs = Vec::new();
    encode_updates(&u, &ctx4(), &mut msgs).unwrap();
    assert_eq!(msgs.len(), 2);
}

/// MP_REACH_NLRI for IPv6 with a 16-byte next hop and `nlri` after the Reserved octet.
fn mp_reach6(nlri: &[u8]) -> Vec<u8> {
    let mut mp = vec![0, 2, 1, 16];
    mp.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    mp.push(0);
    mp.extend_from_slice(nlri);
    attr(0x80, 14, &mp)
}

#[test]
fn one_prefix_updates_hold_the_prefix_inline() {
    // The shape of a table with one attribute set per route: one IPv6 /48
    // per UPDATE. Its prefix lists take no heap block.
    let attrs = [
        mp_reach6(&[48, 0x20, 0x01, 0x0d, 0xb8, 0, 7]),
        origin(0),
        as_path4(&[65001]),
    ]
    .concat();
    let Message::Update(u) = decode(&update(&[], &attrs, &[]), &ctx4()).unwrap() else {
        panic!()
    };
    assert_eq!(u.announced[..], [p("2001:db8:7::/48")]);
    assert!(!u.announced.spilled() && !u.withdrawn.spilled());
    assert!(u.withdrawn.is_empty() && u.malformed.is_empty());
    // One withdrawn IPv4 prefix and one announced.
    let bytes = update(&[16, 10, 9], &basic_attrs(), &[24, 192, 168, 1]);
    let Message::Update(u) = decode(&bytes, &ctx4()).unwrap() else {
        panic!()
    };
    assert_eq!(
        (u.withdrawn.as_slice(), u.announced.as_slice()),
        (&[p("10.9.0.0/16")][..], &[p("192.168.1.0/24")][..])
    );
    assert!(!u.announced.spilled() && !u.withdrawn.spilled());
    // One in MP_UNREACH_NLRI.
    let unreach = attr(0x80, 15, &[0, 2, 1, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 7]);
    let Message::Update(u) = decode(&update(&[], &unreach, &[]), &ctx4()).unwrap() else {
        panic!()
    };
    assert_eq!(u.withdrawn[..], [p("2001:db8:7::/48")]);
    assert!(!u.withdrawn.spilled() && u.attributes.is_none());
    // Two prefixes: one exact heap block, in wire order.
    let attrs = [
        mp_reach6(&[48, 0x20, 0x01, 0x0d, 0xb8, 0, 7, 32, 0x20, 0x01, 0x0d, 0xb9]),
        origin(0),
        as_path4(&[65001]),
    ]
    .concat();
    let Message::Update(u) = decode(&update(&[], &attrs, &[]), &ctx4()).unwrap() else {
        panic!()
    };
    assert_eq!(u.announced[..], [p("2001:db8:7::/48"), p("2001:db9::/32")]);
    assert!(u.announced.spilled());
    // The encoder takes them back to the same bytes' meaning.
    let mut out = Vec::new();
    encode(&Message::Update(u.clone()), &ctx4(), &mut out).unwrap();
    assert_eq!(decode(&out, &ctx4()).unwrap(), Message::Update(u));
}

#[test]
fn mp_reach_ipv4_with_4_byte_next_hop() {
    let mp = [0, 1, 1, 4, 192, 0, 2, 7, 0, 24, 198, 51, 100];
    let attrs = [origin(0), as_path4(&[65001]), attr(0x80, 14, &mp)].concat();
    let Message::Update(u) = decode(&update(&[], &attrs, &[]), &ctx4()).unwrap() else {
        panic!()
    };
    assert_eq!(u.announced[..], [p("198.51.100.0/24")]);
    assert_eq!(
        u.attributes.unwrap().next_hop,
        Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)))
    );
}

#[test]
fn end_of_rib_both_families() {
    let v4 = update(&[], &[], &[]);
    let Message::Update(u) = decode(&v4, &ctx4()).unwrap() else {
        panic!()
    };
    assert_eq!(u.end_of_rib, Some(AddressFamily::IPV4_UNICAST));
    assert!(u.announced.is_empty() && u.withdrawn.is_empty());
    let v6 = update(&[], &attr(0x80, 15, &[0, 2, 1]), &[]);
    let Message::Update(u) = decode(&v6, &ctx4()).unwrap() else {
        panic!()
    };
    assert_eq!(u.end_of_rib, Some(AddressFamily::IPV6_UNICAST));
    // Encoding gives the same bytes.
    for (fam, bytes) in [
        (AddressFamily::IPV4_UNICAST, v4),
        (AddressFamily::IPV6_UNICAST, v6),
    ] {
        let eor = Update {
            end_of_rib: Some(fam),
            ..Update::default()
        };
        let mut msgs = Vec::new();
        encode_updates(&eor, &ctx4(), &mut msgs).unwrap();
        assert_eq!(msgs, vec![bytes.clone()]);
        let mut out = Vec::new();
        encode(&Message::Update(eor), &ctx4(), &mut out).unwrap();
        assert_eq!(out, bytes);
    }
    // An MP_UNREACH with prefixes is a withdrawal, not End-of-RIB.
    let w = update(&[], &attr(0x80, 15, &[0, 2, 1, 16, 0x20, 0x01]), &[]);
    let Message::Update(u) = decode(&w, &ctx4()).unwrap() else {
        panic!()
    };
    assert_eq!(u.end_of_rib, None);
    assert_eq!(u.withdrawn[..], [p("2001::/16")]);
    // An empty update that is not End-of-RIB refuses to encode.
    let mut out = Vec::new();
    assert_eq!(
        encode(&Message::Update(Update::default()), &ctx4(), &mut out),
        Err(EncodeError::EmptyUpdate)
    );
    assert!(out.is_empty());
}

#[test]
fn unknown_optional_transitive_kept_with_partial_bit() {
    let attrs = [basic_attrs(), attr(0xc0, 42, &[9, 9]), attr(0x80, 43, &[1])].concat();
    let Message::Update(u) = decode(&update(&[], &attrs, &[8, 10]), &ctx4()).unwrap() else {
        panic!()
    };
    let a = u.attributes.clone().unwrap();
    assert_eq!(
        a.unknown,
        vec![RawAttribute {
            flags: 0xc0,
            type_code: 42,
            value: vec![9, 9]
        }]
    );
    let mut out = Vec::new();
    encode(&Message::Update(u), &ctx4(), &mut out).unwrap();
    let tail = &out[out.len() - 2 - 5..out.len() - 2];
    assert_eq!(
        tail,
        &[0xe0, 42, 2, 9, 9],
        "Partial bit set, non-transitive one dropped"
    );
}

#[test]
fn encode_updates_to_one_buffer_and_atomic_on_error() {
    let attrs = Arc::new(PathAttributes {
        as_path: AsPath::sequence(vec![65001]),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        ..PathAttributes::default()
    });
    let announced: Vec<Prefix> = (0..3000u32)
        .map(|i| Prefix::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8))), 24).unwrap())
        .collect();
    let u = Update {
        attributes: Some(attrs.clone()),
        announced: announced.into(),
        ..Update::default()
    };
    let mut msgs = Vec::new();
    let n = encode_updates(&u, &ctx4(), &mut msgs).unwrap();
    let mut flat = vec![9];
    assert_eq!(encode_updates_to(&u, &ctx4(), &mut flat).unwrap(), n);
    assert_eq!(flat[1..], msgs.concat()[..]);
    // Walk the flat buffer with `frame`.
    let mut rest = &flat[1..];
    let mut count = 0;
    while let Some(len) = frame(rest, 4096).unwrap() {
        rest = &rest[len..];
        count += 1;
    }
    assert_eq!((count, rest.len()), (n, 0));
    // IPv4 is encodable but IPv6 is not negotiated: nothing is appended at all.
    let ctx = CodecContext {
        families: vec![AddressFamily::IPV4_UNICAST],
        ..ctx4()
    };
    let mixed = Update {
        withdrawn: vec![p("10.0.0.0/8"), p("2001:db8::/32")].into(),
        ..Update::default()
    };
    let mut flat = vec![1, 2];
    assert!(encode_updates_to(&mixed, &ctx, &mut flat).is_err());
    assert_eq!(flat, vec![1, 2]);
    let mut msgs = vec![vec![7]];
    assert!(encode_updates(&mixed, &ctx, &mut msgs).is_err());
    assert_eq!(msgs, vec![vec![7]]);
}
