//! RFC 7606 classification of every malformed attribute the codec knows and
//! the zettabgp "killer" inputs.

mod wire_support;

use std::net::Ipv4Addr;
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
    assert_eq!(u.withdrawn[..], [p("198.51.100.0/24"), p("10.1.0.0/16")]);
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
    assert_eq!(u.withdrawn[..], [p("10.0.0.0/8")]);
    assert!(u.announced.is_empty() && u.attributes.is_none());
}

#[test]
fn one_prefix_updates_keep_the_rfc7606_outcomes() {
    // Treat-as-withdraw of a one-prefix UPDATE that also withdraws one: both
    // prefixes are withdrawn, the withdrawn one first.
    let bad_origin = replace(1, &attr(0x40, 1, &[3]));
    let u = dec(
        &update(&[16, 10, 9], &bad_origin, &[24, 198, 51, 100]),
        &ctx4(),
    );
    assert_eq!(u.withdrawn[..], [p("10.9.0.0/16"), p("198.51.100.0/24")]);
    assert!(u.announced.is_empty() && u.attributes.is_none());
    // Alone, the prefix is withdrawn in place.
    let u = dec(&update(&[], &bad_origin, &[24, 198, 51, 100]), &ctx4());
    assert_eq!(u.withdrawn[..], [p("198.51.100.0/24")]);
    assert!(!u.withdrawn.spilled());
    // An MP_REACH_NLRI next hop that is not unicast: its one prefix withdrawn.
    let mut mp = vec![0, 2, 1, 16];
    mp.extend_from_slice(&[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    mp.extend_from_slice(&[48, 0x20, 0x01, 0x0d, 0xb8, 0, 7]);
    let attrs = [origin(0), as_path4(&[65001]), attr(0x80, 14, &mp)].concat();
    let u = dec(&update(&[], &attrs, &[]), &ctx4());
    assert_eq!(u.withdrawn[..], [p("2001:db8:7::/48")]);
    assert!(u.announced.is_empty());
    // The one prefix cut short: a session reset, as for longer lists
    // (RFC 7606 §5.3, §7.11).
    let cut = mp.len() - 1;
    let attrs = [origin(0), as_path4(&[65001]), attr(0x80, 14, &mp[..cut])].concat();
    let n = reset(&update(&[], &attrs, &[]), &ctx4());
    assert_eq!((n.code, n.subcode), (3, 9));
    let n = reset(&update(&[], &basic_attrs(), &[24, 198, 51]), &ctx4());
    assert_eq!((n.code, n.subcode), (3, 10));
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
    assert_eq!(u.announced[..], [p("2001:db8::/32")]);
    assert!(u.malformed.is_empty());
    // Withdraw-only UPDATEs need no attributes at all.
    let u = dec(&update(&[8, 10], &[], &[]), &ctx4());
    assert_eq!(u.withdrawn[..], [p("10.0.0.0/8")]);
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
