//! RFC 7606 classification of every malformed attribute the codec knows,
//! the zettabgp "killer" inputs, RFC 6793 AS4_PATH/AS4_AGGREGATOR merging,
//! and the 4096/65535 length limits on decode and encode.

mod wire_support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use tortie_bgp::types::*;
use tortie_bgp::wire::*;
use wire_support::*;

const NLRI: &[u8] = &[24, 198, 51, 100, 16, 10, 1];

fn dec(bytes: &[u8], ctx: &CodecContext) -> Update {
    match decode(bytes, ctx) {
        Ok(Message::Update(u)) => u,
        other => panic!("expected an UPDATE, got {other:?}"),
    }
}

fn reset(bytes: &[u8], ctx: &CodecContext) -> Notification {
    decode(bytes, ctx)
        .expect_err("expected a session reset")
        .notification
}

/// Decodes basic attributes plus `extra` with the NLRI above; returns the update.
fn with_extra(extra: &[u8], ctx: &CodecContext) -> Update {
    dec(
        &update(&[], &[basic_attrs(), extra.to_vec()].concat(), NLRI),
        ctx,
    )
}

fn assert_withdrawn(u: &Update, type_code: u8) {
    assert!(u.attributes.is_none(), "attributes kept: {u:?}");
    assert!(u.announced.is_empty(), "prefixes still announced: {u:?}");
    assert_eq!(u.withdrawn, vec![p("198.51.100.0/24"), p("10.1.0.0/16")]);
    assert!(
        u.malformed
            .iter()
            .any(|m| m.type_code == type_code && m.action == Rfc7606Action::TreatAsWithdraw),
        "no treat-as-withdraw event for type {type_code}: {:?}",
        u.malformed
    );
}

fn assert_discarded(u: &Update, type_code: u8) -> Arc<PathAttributes> {
    assert_eq!(u.announced.len(), 2, "{u:?}");
    assert!(
        u.malformed
            .iter()
            .any(|m| m.type_code == type_code && m.action == Rfc7606Action::AttributeDiscard),
        "no attribute-discard event for type {type_code}: {:?}",
        u.malformed
    );
    assert!(
        u.malformed
            .iter()
            .all(|m| m.action == Rfc7606Action::AttributeDiscard)
    );
    u.attributes.clone().expect("attributes")
}

/// Replaces one attribute of the basic set.
fn replace(type_code: u8, with: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for a in [
        origin(0),
        as_path4(&[65001, 65002]),
        next_hop([192, 0, 2, 1]),
    ] {
        if a[1] == type_code {
            v.extend_from_slice(with);
        } else {
            v.extend_from_slice(&a);
        }
    }
    v
}

fn replaced(type_code: u8, with: &[u8], ctx: &CodecContext) -> Update {
    dec(&update(&[], &replace(type_code, with), NLRI), ctx)
}

#[test]
fn origin_rfc7606_7_1() {
    assert_withdrawn(&replaced(1, &attr(0x40, 1, &[0, 0]), &ctx4()), 1);
    assert_withdrawn(&replaced(1, &attr(0x40, 1, &[3]), &ctx4()), 1);
    assert_withdrawn(&replaced(1, &attr(0x40, 1, &[]), &ctx4()), 1);
}

#[test]
fn as_path_rfc7606_7_2() {
    // One trailing byte after a good segment (the input that made zettabgp loop).
    let trailing = attr(0x40, 2, &[2, 1, 0, 0, 0xfd, 0xe9, 2]);
    assert_withdrawn(&replaced(2, &trailing, &ctx4()), 2);
    // Only one byte.
    assert_withdrawn(&replaced(2, &attr(0x40, 2, &[2]), &ctx4()), 2);
    // Segment length 0.
    assert_withdrawn(&replaced(2, &attr(0x40, 2, &[2, 0]), &ctx4()), 2);
    // Segment overruns the attribute.
    assert_withdrawn(
        &replaced(2, &attr(0x40, 2, &[2, 3, 0, 0, 0, 1]), &ctx4()),
        2,
    );
    // Unknown segment type.
    assert_withdrawn(
        &replaced(2, &attr(0x40, 2, &[9, 1, 0, 0, 0, 1]), &ctx4()),
        2,
    );
    // 2-octet path on a 4-octet session: 2 ASNs of 2 bytes read as 1 of 4 + trailing.
    assert_withdrawn(&replaced(2, &as_path2(&[65001, 65002, 65003]), &ctx4()), 2);
    // Confederation segments from an external peer; fine from an internal one.
    let confed = attr(0x40, 2, &[3, 1, 0, 0, 0, 9, 2, 1, 0, 0, 0xfd, 0xe9]);
    assert_withdrawn(&replaced(2, &confed, &ctx4()), 2);
    let ibgp = CodecContext {
        ibgp: true,
        ..ctx4()
    };
    let u = replaced(2, &confed, &ibgp);
    assert_eq!(u.announced.len(), 2);
    assert!(u.malformed.is_empty());
    // Leftmost AS check (RFC 4271 §6.3) when enabled.
    let strict = CodecContext {
        enforce_first_as: true,
        peer_asn: 65099,
        ..ctx4()
    };
    assert_withdrawn(&with_extra(&[], &strict), 2);
    let strict_ok = CodecContext {
        enforce_first_as: true,
        peer_asn: 65001,
        ..ctx4()
    };
    assert!(with_extra(&[], &strict_ok).malformed.is_empty());
    // An empty AS_PATH is well-formed (iBGP originations).
    let u = replaced(2, &attr(0x40, 2, &[]), &ibgp);
    assert_eq!(u.attributes.unwrap().as_path, AsPath::default());
}

#[test]
fn next_hop_rfc7606_7_3() {
    assert_withdrawn(&replaced(3, &attr(0x40, 3, &[192, 0, 2, 1, 0]), &ctx4()), 3);
    assert_withdrawn(&replaced(3, &attr(0x40, 3, &[192, 0, 2]), &ctx4()), 3);
    assert_withdrawn(&replaced(3, &next_hop([0, 0, 0, 0]), &ctx4()), 3);
    assert_withdrawn(&replaced(3, &next_hop([224, 0, 0, 1]), &ctx4()), 3);
}

#[test]
fn med_local_pref_rfc7606_7_4_7_5() {
    assert_withdrawn(&with_extra(&attr(0x80, 4, &[0, 0, 1]), &ctx4()), 4);
    // LOCAL_PREF from an external peer: discarded whatever it holds.
    let a = assert_discarded(&with_extra(&attr(0x40, 5, &[0, 0, 0, 100]), &ctx4()), 5);
    assert_eq!(a.local_pref, None);
    assert_discarded(&with_extra(&attr(0x40, 5, &[0, 0, 100]), &ctx4()), 5);
    // From an internal peer: kept, or treat-as-withdraw when malformed.
    let ibgp = CodecContext {
        ibgp: true,
        ..ctx4()
    };
    let u = with_extra(&attr(0x40, 5, &[0, 0, 0, 100]), &ibgp);
    assert_eq!(u.attributes.unwrap().local_pref, Some(100));
    assert_withdrawn(&with_extra(&attr(0x40, 5, &[0, 0, 100]), &ibgp), 5);
    // Absent LOCAL_PREF on iBGP is not an error.
    let u = with_extra(&[], &ibgp);
    assert!(u.malformed.is_empty() && u.attributes.is_some());
}

#[test]
fn atomic_aggregate_and_aggregator_are_attribute_discard() {
    let a = assert_discarded(&with_extra(&attr(0x40, 6, &[1]), &ctx4()), 6);
    assert!(!a.atomic_aggregate);
    let a = assert_discarded(
        &with_extra(&attr(0xc0, 7, &[0, 0, 1, 192, 0, 2, 1]), &ctx4()),
        7,
    );
    assert_eq!(a.aggregator, None);
    // 6 bytes is right only on a 2-octet session.
    assert_discarded(
        &with_extra(&attr(0xc0, 7, &[0, 1, 192, 0, 2, 1]), &ctx4()),
        7,
    );
    let u = with_extra(&attr(0xc0, 7, &[0, 0, 0, 1, 192, 0, 2, 1]), &ctx4());
    assert_eq!(
        u.attributes.unwrap().aggregator,
        Some((1, Ipv4Addr::new(192, 0, 2, 1)))
    );
}

#[test]
fn list_attributes_rfc7606_7_8_to_7_14_and_rfc8092() {
    assert_withdrawn(&with_extra(&attr(0xc0, 8, &[0, 0, 1]), &ctx4()), 8);
    assert_withdrawn(&with_extra(&attr(0xc0, 8, &[]), &ctx4()), 8);
    assert_withdrawn(&with_extra(&attr(0x80, 9, &[1, 2, 3, 4, 5]), &ctx4()), 9);
    assert_withdrawn(
        &with_extra(&attr(0x80, 10, &[1, 2, 3, 4, 5, 6]), &ctx4()),
        10,
    );
    assert_withdrawn(&with_extra(&attr(0x80, 10, &[]), &ctx4()), 10);
    assert_withdrawn(&with_extra(&attr(0xc0, 16, &[0; 7]), &ctx4()), 16);
    assert_withdrawn(&with_extra(&attr(0xc0, 32, &[0; 11]), &ctx4()), 32);
    assert_withdrawn(&with_extra(&attr(0xc0, 32, &[]), &ctx4()), 32);
    let u = with_extra(
        &[attr(0xc0, 8, &[0, 1, 0, 2]), attr(0xc0, 32, &[0; 24])].concat(),
        &ctx4(),
    );
    let a = u.attributes.unwrap();
    assert_eq!(a.communities, vec![0x0001_0002]);
    assert_eq!(a.large_communities, vec![[0; 3], [0; 3]]);
}

#[test]
fn flags_conflict_is_treat_as_withdraw_rfc7606_3c() {
    // ORIGIN marked optional; MED marked transitive well-known; COMMUNITIES non-transitive.
    assert_withdrawn(&replaced(1, &attr(0x80, 1, &[0]), &ctx4()), 1);
    assert_withdrawn(&with_extra(&attr(0x40, 4, &[0, 0, 0, 1]), &ctx4()), 4);
    assert_withdrawn(&with_extra(&attr(0x80, 8, &[0, 0, 0, 1]), &ctx4()), 8);
    // The Partial and Extended Length bits are not errors (RFC 7606 §3 c).
    let u = with_extra(&attr(0xc0 | 0x20 | 0x10, 8, &[0, 0, 0, 1]), &ctx4());
    assert!(u.malformed.is_empty(), "{:?}", u.malformed);
    assert_eq!(u.attributes.unwrap().communities, vec![1]);
}

#[test]
fn duplicates_rfc7606_3g() {
    // A second MED is discarded; the first is used.
    let u = with_extra(
        &[attr(0x80, 4, &[0, 0, 0, 1]), attr(0x80, 4, &[0, 0, 0, 2])].concat(),
        &ctx4(),
    );
    let a = assert_discarded(&u, 4);
    assert_eq!(a.med, Some(1));
    // A second MP_REACH_NLRI or MP_UNREACH_NLRI is Malformed Attribute List.
    let un = attr(0x80, 15, &[0, 2, 1]);
    let n = reset(&update(&[], &[un.clone(), un].concat(), &[]), &ctx4());
    assert_eq!((n.code, n.subcode), (3, 1));
    let mp = attr(0x80, 14, &[0, 1, 1, 4, 192, 0, 2, 1, 0, 8, 10]);
    let n = reset(
        &update(&[], &[basic_attrs(), mp.clone(), mp].concat(), &[]),
        &ctx4(),
    );
    assert_eq!((n.code, n.subcode), (3, 1));
}

#[test]
fn mp_reach_errors_reset_rfc7606_7_11() {
    // Next-hop length 5 for IPv6.
    let bad_nh = attr(0x80, 14, &[0, 2, 1, 5, 1, 2, 3, 4, 5, 0, 16, 0x20, 0x01]);
    let n = reset(
        &update(&[], &[basic_attrs(), bad_nh.clone()].concat(), &[]),
        &ctx4(),
    );
    assert_eq!((n.code, n.subcode), (3, 9));
    assert_eq!(n.data, bad_nh);
    // Next hop overrunning the attribute; missing Reserved octet.
    for v in [
        &[0u8, 2, 1, 16, 1][..],
        &[0, 1, 1, 4, 1, 2, 3, 4][..],
        &[0, 2][..],
    ] {
        let n = reset(
            &update(&[], &[basic_attrs(), attr(0x80, 14, v)].concat(), &[]),
            &ctx4(),
        );
        assert_eq!((n.code, n.subcode), (3, 9), "{v:?}");
    }
    // Prefix length 129 in MP_REACH, 33 in MP_UNREACH for IPv4.
    let mut mp = vec![0, 2, 1, 16];
    mp.extend_from_slice(&[
        0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 129,
    ]);
    mp.extend_from_slice(&[0xff; 17]);
    assert_eq!(
        reset(
            &update(&[], &[basic_attrs(), attr(0x80, 14, &mp)].concat(), &[]),
            &ctx4()
        )
        .code,
        3
    );
    let n = reset(
        &update(&[], &attr(0x80, 15, &[0, 1, 1, 33, 1, 2, 3, 4, 5]), &[]),
        &ctx4(),
    );
    assert_eq!((n.code, n.subcode), (3, 9));
    // A prefix running past MP_UNREACH.
    let n = reset(
        &update(&[], &attr(0x80, 15, &[0, 2, 1, 64, 0x20, 0x01]), &[]),
        &ctx4(),
    );
    assert_eq!((n.code, n.subcode), (3, 9));
    // Unknown AFI/SAFI (e.g. VPNv4, SAFI 128) is skipped, not an error.
    let vpn = attr(
        0x80,
        14,
        &[
            0, 1, 128, 12, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1, 0, 1, 2, 3,
        ],
    );
    let u = dec(&update(&[], &[basic_attrs(), vpn].concat(), &[]), &ctx4());
    assert!(u.announced.is_empty() && u.malformed.is_empty());
    // MP_REACH with wrong flags: treat-as-withdraw of its prefixes.
    let mp6 = attr(0x40, 14, &[0, 1, 1, 4, 192, 0, 2, 1, 0, 8, 10]);
    let u = dec(
        &update(&[], &[origin(0), as_path4(&[65001]), mp6].concat(), &[]),
        &ctx4(),
    );
    assert_eq!(u.withdrawn, vec![p("10.0.0.0/8")]);
    assert!(u.announced.is_empty() && u.attributes.is_none());
}

#[test]
fn nlri_errors_reset_rfc7606_5_3() {
    // Prefix length 33 in the NLRI field.
    let n = reset(&update(&[], &basic_attrs(), &[33, 1, 2, 3, 4, 5]), &ctx4());
    assert_eq!((n.code, n.subcode), (3, 10));
    // Truncated prefix in NLRI and in Withdrawn Routes.
    assert_eq!(
        reset(&update(&[], &basic_attrs(), &[24, 10, 0]), &ctx4()).subcode,
        10
    );
    assert_eq!(reset(&update(&[24, 10], &[], &[]), &ctx4()).subcode, 10);
}

#[test]
fn length_fields_rfc4271_6_3() {
    // Withdrawn Routes Length past the end of the message.
    let mut m = update(&[], &[], &[]);
    m[19..21].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(reset(&m, &ctx4()).subcode, 1);
    // Total Path Attribute Length past the end.
    let mut m = update(&[], &basic_attrs(), &[]);
    m[21..23].copy_from_slice(&200u16.to_be_bytes());
    let n = reset(&m, &ctx4());
    assert_eq!((n.code, n.subcode), (3, 1));
}

#[test]
fn attribute_overrun_is_treat_as_withdraw_rfc7606_4() {
    // Last attribute claims more bytes than the attribute field holds.
    let mut attrs = basic_attrs();
    attrs.extend_from_slice(&[0xc0, 8, 40, 0, 0, 0, 1]);
    assert_withdrawn(&dec(&update(&[], &attrs, NLRI), &ctx4()), 0);
    // Fewer than three bytes remain.
    let mut attrs = basic_attrs();
    attrs.extend_from_slice(&[0xc0, 8]);
    assert_withdrawn(&dec(&update(&[], &attrs, NLRI), &ctx4()), 0);
    // Extended length header cut short.
    let mut attrs = basic_attrs();
    attrs.extend_from_slice(&[0xd0, 8, 0]);
    assert_withdrawn(&dec(&update(&[], &attrs, NLRI), &ctx4()), 0);
}

#[test]
fn missing_mandatory_attributes_rfc7606_3d() {
    let u = dec(
        &update(
            &[],
            &[as_path4(&[65001]), next_hop([192, 0, 2, 1])].concat(),
            NLRI,
        ),
        &ctx4(),
    );
    assert_withdrawn(&u, 1);
    let u = dec(
        &update(&[], &[origin(0), next_hop([192, 0, 2, 1])].concat(), NLRI),
        &ctx4(),
    );
    assert_withdrawn(&u, 2);
    let u = dec(
        &update(&[], &[origin(0), as_path4(&[65001])].concat(), NLRI),
        &ctx4(),
    );
    assert_withdrawn(&u, 3);
    // NEXT_HOP is not needed without IPv4 NLRI (RFC 4760 §3).
    let mut mp = vec![0, 2, 1, 16];
    mp.extend_from_slice(&[
        0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 32, 0x20, 1, 0xd, 0xb8,
    ]);
    let u = dec(
        &update(
            &[],
            &[attr(0x80, 14, &mp), origin(0), as_path4(&[65001])].concat(),
            &[],
        ),
        &ctx4(),
    );
    assert_eq!(u.announced, vec![p("2001:db8::/32")]);
    assert!(u.malformed.is_empty());
    // Withdraw-only UPDATEs need no attributes at all.
    let u = dec(&update(&[8, 10], &[], &[]), &ctx4());
    assert_eq!(u.withdrawn, vec![p("10.0.0.0/8")]);
    assert!(u.malformed.is_empty());
}

#[test]
fn unknown_attributes() {
    // Unrecognized well-known: session reset with the attribute as data.
    let bad = attr(0x40, 99, &[1, 2]);
    let n = reset(
        &update(&[], &[basic_attrs(), bad.clone()].concat(), NLRI),
        &ctx4(),
    );
    assert_eq!((n.code, n.subcode, n.data), (3, 2, bad));
    // Unrecognized optional non-transitive: ignored silently.
    let u = with_extra(&attr(0x80, 99, &[1]), &ctx4());
    assert!(u.malformed.is_empty() && u.attributes.unwrap().unknown.is_empty());
}

#[test]
fn strongest_action_wins_rfc7606_3h() {
    // Attribute discard (ATOMIC_AGGREGATE) plus treat-as-withdraw (MED): withdraw.
    let u = with_extra(
        &[attr(0x40, 6, &[1]), attr(0x80, 4, &[1])].concat(),
        &ctx4(),
    );
    assert_withdrawn(&u, 4);
    assert_eq!(u.malformed.len(), 2);
}

#[test]
fn as4_path_merge_rfc6793_4_2_3() {
    let ctx2 = CodecContext {
        four_octet_as: false,
        ..ctx4()
    };
    let as4 = |asns: &[u32]| {
        let mut v = vec![2, asns.len() as u8];
        for a in asns {
            v.extend_from_slice(&a.to_be_bytes());
        }
        attr(0xc0, 17, &v)
    };
    let path2 = as_path2(&[65001, 23456, 23456]);
    let attrs = [
        origin(0),
        path2.clone(),
        next_hop([192, 0, 2, 1]),
        as4(&[4_200_000_001, 4_200_000_002]),
    ]
    .concat();
    let u = dec(&update(&[], &attrs, NLRI), &ctx2);
    assert_eq!(
        u.attributes.unwrap().as_path.segments,
        vec![
            AsPathSegment::Sequence(vec![65001]),
            AsPathSegment::Sequence(vec![4_200_000_001, 4_200_000_002])
        ]
    );
    // AS4_PATH longer than AS_PATH: ignored.
    let attrs = [
        origin(0),
        as_path2(&[23456]),
        next_hop([192, 0, 2, 1]),
        as4(&[1, 2]),
    ]
    .concat();
    let u = dec(&update(&[], &attrs, NLRI), &ctx2);
    assert_eq!(
        u.attributes.unwrap().as_path.segments,
        vec![AsPathSegment::Sequence(vec![23456])]
    );
    // AGGREGATOR = AS_TRANS: AS4_AGGREGATOR gives the real aggregator.
    let agg = attr(0xc0, 7, &[0x5b, 0xa0, 10, 0, 0, 1]);
    let agg4 = attr(0xc0, 18, &[0xfa, 0x56, 0xea, 0x01, 10, 0, 0, 1]);
    let attrs = [
        origin(0),
        path2.clone(),
        next_hop([192, 0, 2, 1]),
        agg,
        agg4.clone(),
        as4(&[7]),
    ]
    .concat();
    let a = dec(&update(&[], &attrs, NLRI), &ctx2).attributes.unwrap();
    assert_eq!(
        a.aggregator,
        Some((4_200_000_001, Ipv4Addr::new(10, 0, 0, 1)))
    );
    assert_eq!(a.as_path.path_len(), 3);
    // AGGREGATOR with a real 2-octet AS: AS4_AGGREGATOR and AS4_PATH are ignored.
    let agg = attr(0xc0, 7, &[0xfd, 0xe9, 10, 0, 0, 1]);
    let attrs = [
        origin(0),
        path2.clone(),
        next_hop([192, 0, 2, 1]),
        agg,
        agg4,
        as4(&[7]),
    ]
    .concat();
    let a = dec(&update(&[], &attrs, NLRI), &ctx2).attributes.unwrap();
    assert_eq!(a.aggregator, Some((65001, Ipv4Addr::new(10, 0, 0, 1))));
    assert_eq!(
        a.as_path.segments,
        vec![AsPathSegment::Sequence(vec![65001, 23456, 23456])]
    );
    // Malformed AS4_PATH / AS4_AGGREGATOR: attribute discard (RFC 6793 §6).
    let attrs = [
        origin(0),
        path2.clone(),
        next_hop([192, 0, 2, 1]),
        attr(0xc0, 17, &[2, 2, 0, 0, 0, 1]),
    ]
    .concat();
    assert_discarded(&dec(&update(&[], &attrs, NLRI), &ctx2), 17);
    let confed4 = attr(0xc0, 17, &[3, 1, 0, 0, 0, 1]);
    let attrs = [origin(0), path2.clone(), next_hop([192, 0, 2, 1]), confed4].concat();
    assert_discarded(&dec(&update(&[], &attrs, NLRI), &ctx2), 17);
    let attrs = [
        origin(0),
        path2,
        next_hop([192, 0, 2, 1]),
        attr(0xc0, 18, &[0; 7]),
    ]
    .concat();
    assert_discarded(&dec(&update(&[], &attrs, NLRI), &ctx2), 18);
    // On a 4-octet session AS4_PATH is discarded.
    assert_discarded(&with_extra(&as4(&[1]), &ctx4()), 17);
}

#[test]
fn as_path_encoding_sequence_split_and_as_trans() {
    let path: Vec<u32> = (1..=300).collect();
    let attrs = PathAttributes {
        as_path: AsPath {
            segments: vec![AsPathSegment::Sequence(path.clone())],
        },
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        ..PathAttributes::default()
    };
    let u = Update {
        attributes: Some(Arc::new(attrs)),
        announced: vec![p("10.0.0.0/8")],
        ..Update::default()
    };
    let mut out = Vec::new();
    encode(&Message::Update(u.clone()), &ctx4(), &mut out).unwrap();
    // ORIGIN (4 bytes) then AS_PATH with extended length: 2+255*4 + 2+45*4 = 1204 bytes.
    assert_eq!(&out[27..31], &[0x50, 2, 0x04, 0xb4]);
    assert_eq!(&out[31..33], &[2, 255], "AS_SEQUENCE (type 2) of 255");
    assert_eq!(&out[31 + 2 + 1020..31 + 2 + 1020 + 2], &[2, 45]);
    let back = dec(&out, &ctx4()).attributes.unwrap();
    assert_eq!(back.as_path.path_len(), 300);
    let flat: Vec<u32> = back
        .as_path
        .segments
        .iter()
        .flat_map(|s| match s {
            AsPathSegment::Sequence(v) => v.clone(),
            other => panic!("not a sequence: {other:?}"),
        })
        .collect();
    assert_eq!(flat, path);

    // 2-octet session: AS_TRANS in AS_PATH, the real path in AS4_PATH.
    let attrs = PathAttributes {
        as_path: AsPath {
            segments: vec![AsPathSegment::Sequence(vec![65001, 4_200_000_001])],
        },
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        ..PathAttributes::default()
    };
    let u = Update {
        attributes: Some(Arc::new(attrs)),
        announced: vec![p("10.0.0.0/8")],
        ..Update::default()
    };
    let ctx2 = CodecContext {
        four_octet_as: false,
        ..ctx4()
    };
    out.clear();
    encode(&Message::Update(u.clone()), &ctx2, &mut out).unwrap();
    let as_path_attr = [0x40, 2, 6, 2, 2, 0xfd, 0xe9, 0x5b, 0xa0];
    assert!(
        out.windows(as_path_attr.len()).any(|w| w == as_path_attr),
        "{out:x?}"
    );
    let as4_attr = [0xc0, 17, 10, 2, 2, 0, 0, 0xfd, 0xe9, 0xfa, 0x56, 0xea, 0x01];
    assert!(
        out.windows(as4_attr.len()).any(|w| w == as4_attr),
        "{out:x?}"
    );
    assert_eq!(dec(&out, &ctx2), u);
}

#[test]
fn killer_inputs_never_panic() {
    // Inputs that panicked or looped zettabgp 0.6, and friends.
    let cases: Vec<Vec<u8>> = vec![
        update(&[], &attr(0x40, 2, &[2, 1, 0, 1, 2]), NLRI),
        update(&[], &attr(0x40, 2, &[2]), NLRI),
        update(&[], &attr(0x40, 2, &[2, 255]), NLRI),
        update(&[], &[0x40, 2, 255], NLRI),
        update(&[], &[0x50, 2, 0xff, 0xff], NLRI),
        update(&[], &attr(0x80, 14, &[0, 2, 1, 255]), &[]),
        update(&[], &attr(0x80, 14, &[0, 2, 1, 32, 0]), &[]),
        update(&[], &attr(0x80, 15, &[0, 2]), &[]),
        update(&[], &attr(0x80, 15, &[0, 2, 1, 200]), &[]),
        update(&[255], &[], &[]),
        update(&[], &[], &[0]),
        update(&[], &[], &[255, 1]),
        update(&[0, 0, 0], &[], &[]),
        msg(1, &[4, 0, 1, 0, 90, 1, 1, 1, 1, 255, 255, 0, 0]),
        msg(1, &[4, 0, 1, 0, 90, 1, 1, 1, 1, 2, 2, 200]),
        msg(1, &[4, 0, 1, 0, 90, 1, 1, 1, 1, 4, 2, 2, 64, 1]),
        msg(1, &[4, 0, 1, 0, 90, 1, 1, 1, 1, 4, 2, 2, 1, 4]),
        msg(3, &[6]),
        msg(5, &[]),
    ];
    for c in &cases {
        for ctx in [ctx4(), CodecContext::default()] {
            let _ = decode(c, &ctx);
            for cut in 0..c.len() {
                let _ = frame(&c[..cut], 4096);
                let _ = decode(&c[..cut], &ctx);
            }
        }
    }
    // The one-trailing-byte AS_PATH is treat-as-withdraw, not a loop.
    let u = dec(&cases[0], &ctx4());
    assert!(u.announced.is_empty() && u.malformed[0].type_code == 2);
}

#[test]
fn length_limits_decode() {
    // An UPDATE of 4097 bytes: rejected without Extended Message, fine with it.
    let n = (4097 - 23 - basic_attrs().len()) / 4;
    let mut nlri = Vec::new();
    for i in 0..n {
        nlri.extend_from_slice(&[24, 10, (i >> 8) as u8, i as u8]);
    }
    let extra = 4097 - 23 - basic_attrs().len() - nlri.len();
    nlri.extend_from_slice(&vec![8, 11][..extra.min(2)]);
    let m = update(
        &[],
        &basic_attrs(),
        &nlri[..nlri.len() - (23 + basic_attrs().len() + nlri.len() - 4097)],
    );
    assert_eq!(m.len(), 4097);
    let e = decode(&m, &ctx4()).unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (1, 2));
    let ext = CodecContext {
        extended_message: true,
        ..ctx4()
    };
    assert!(decode(&m, &ext).is_ok());
    // OPEN is never larger than 4096 (RFC 8654 §4).
    let mut body = vec![4, 0, 1, 0, 90, 1, 1, 1, 1, 255, 255];
    body.extend_from_slice(&4083u16.to_be_bytes());
    body.extend_from_slice(&vec![0; 4083]);
    assert_eq!(
        decode(&msg(1, &body), &ext)
            .unwrap_err()
            .notification
            .subcode,
        2
    );
}

#[test]
fn length_limits_encode() {
    let attrs = Arc::new(PathAttributes {
        as_path: AsPath {
            segments: vec![AsPathSegment::Sequence(vec![65001])],
        },
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        ..PathAttributes::default()
    });
    let announced: Vec<Prefix> = (0..5000u32)
        .map(|i| Prefix::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8))), 24).unwrap())
        .collect();
    let v6: Vec<Prefix> = (0..3000u32)
        .map(|i| Prefix::new(IpAddr::V6(format!("2001:db8:{i:x}::").parse().unwrap()), 48).unwrap())
        .collect();
    for ext in [false, true] {
        let ctx = CodecContext {
            extended_message: ext,
            ..ctx4()
        };
        let max = ctx.max_message_len();
        let u = Update {
            withdrawn: announced.clone(),
            attributes: Some(attrs.clone()),
            announced: [announced.clone(), v6.clone()].concat(),
            ..Update::default()
        };
        let mut msgs = Vec::new();
        let n = encode_updates(&u, &ctx, &mut msgs).unwrap();
        assert_eq!(n, msgs.len());
        let (mut w, mut a) = (Vec::new(), Vec::new());
        let mut dec_ = Decoder::new();
        for m in &msgs {
            assert!(m.len() <= max, "{} > {max}", m.len());
            assert_eq!(frame(m, max).unwrap(), Some(m.len()));
            let Message::Update(x) = dec_.decode(m, &ctx).unwrap() else {
                panic!()
            };
            assert!(x.malformed.is_empty());
            w.extend(x.withdrawn);
            a.extend(x.announced);
        }
        assert_eq!(w, announced);
        assert_eq!(a, [announced.clone(), v6.clone()].concat());
        // Packed tightly: 5000 /24s (4 bytes each) need ceil(20000 / (max - 23)) withdraw messages.
        let expect_w = 20000usize.div_ceil(max - 23);
        let n_w = msgs.iter().filter(|m| m[19..21] != [0, 0]).count();
        assert_eq!(n_w, expect_w);
        if !ext {
            assert!(msgs.len() > 10);
        }
    }
    // Attributes too large for one message: an error, never a wrapped length.
    let huge = Arc::new(PathAttributes {
        communities: (0..1100).collect(),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        ..PathAttributes::default()
    });
    let u = Update {
        attributes: Some(huge.clone()),
        announced: vec![p("10.0.0.0/8")],
        ..Update::default()
    };
    let mut msgs = Vec::new();
    assert!(matches!(
        encode_updates(&u, &ctx4(), &mut msgs),
        Err(EncodeError::TooLong { .. })
    ));
    let mut out = vec![1, 2, 3];
    assert!(matches!(
        encode(&Message::Update(u.clone()), &ctx4(), &mut out),
        Err(EncodeError::TooLong { .. })
    ));
    assert_eq!(out, vec![1, 2, 3], "output untouched on error");
    let ext = CodecContext {
        extended_message: true,
        ..ctx4()
    };
    assert_eq!(encode_updates(&u, &ext, &mut msgs).unwrap(), 1);
    let bigger = Arc::new(PathAttributes {
        communities: (0..17000).collect(),
        ..(*huge).clone()
    });
    let u = Update {
        attributes: Some(bigger),
        announced: vec![p("10.0.0.0/8")],
        ..Update::default()
    };
    assert!(encode_updates(&u, &ext, &mut msgs).is_err());
    assert!(encode(&Message::Update(u), &ext, &mut out).is_err());
    // A NOTIFICATION too large is refused as well.
    let n = Message::Notification(Notification {
        code: 6,
        subcode: 2,
        data: vec![0; 5000],
    });
    assert!(encode(&n, &ctx4(), &mut out).is_err());
}

#[test]
fn families_must_be_negotiated_to_encode() {
    let ctx = CodecContext {
        families: vec![AddressFamily::IPV4_UNICAST],
        ..ctx4()
    };
    let u = Update {
        withdrawn: vec![p("2001:db8::/32")],
        ..Update::default()
    };
    let mut msgs = Vec::new();
    assert!(matches!(
        encode_updates(&u, &ctx, &mut msgs),
        Err(EncodeError::Unencodable(_))
    ));
}

#[test]
fn decoder_shares_attribute_sets() {
    let mut d = Decoder::new();
    let a = update(&[], &basic_attrs(), &[24, 10, 0, 1]);
    let b = update(&[], &basic_attrs(), &[24, 10, 0, 2]);
    let Message::Update(ua) = d.decode(&a, &ctx4()).unwrap() else {
        panic!()
    };
    let Message::Update(ub) = d.decode(&b, &ctx4()).unwrap() else {
        panic!()
    };
    assert!(Arc::ptr_eq(
        ua.attributes.as_ref().unwrap(),
        ub.attributes.as_ref().unwrap()
    ));
    assert_eq!(d.stats().attribute_cache_hits, 1);
    // A different context must not reuse entries parsed under another one.
    let Message::Update(uc) = d
        .decode(
            &b,
            &CodecContext {
                ibgp: true,
                ..ctx4()
            },
        )
        .unwrap()
    else {
        panic!()
    };
    assert!(!Arc::ptr_eq(
        ua.attributes.as_ref().unwrap(),
        uc.attributes.as_ref().unwrap()
    ));
    // A malformed set served from the cache is still treat-as-withdraw.
    let bad = update(
        &[],
        &[basic_attrs(), attr(0x80, 4, &[1])].concat(),
        &[24, 10, 0, 1],
    );
    for _ in 0..2 {
        let Message::Update(u) = d.decode(&bad, &ctx4()).unwrap() else {
            panic!()
        };
        assert!(u.announced.is_empty() && u.withdrawn.len() == 1);
    }
}
