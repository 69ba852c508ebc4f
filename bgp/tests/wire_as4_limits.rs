//! RFC 6793 AS4_PATH/AS4_AGGREGATOR merging and AS_TRANS encoding, AS_SEQUENCE
//! splitting, the 4096/65535 length limits on decode and encode, family checks
//! and attribute-set sharing in the per-session decoder.

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

fn with_extra(extra: &[u8], ctx: &CodecContext) -> Update {
    dec(
        &update(&[], &[basic_attrs(), extra.to_vec()].concat(), NLRI),
        ctx,
    )
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
    u.attributes.clone().expect("attributes")
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
        u.attributes.unwrap().as_path.segments[..],
        [
            AsPathSegment::Sequence(vec![65001].into()),
            AsPathSegment::Sequence(vec![4_200_000_001, 4_200_000_002].into())
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
        u.attributes.unwrap().as_path.segments[..],
        [AsPathSegment::Sequence(vec![23456].into())]
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
        a.as_path.segments[..],
        [AsPathSegment::Sequence(vec![65001, 23456, 23456].into())]
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
        as_path: AsPath::sequence(path.clone()),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        ..PathAttributes::default()
    };
    let u = Update {
        attributes: Some(Arc::new(attrs)),
        announced: vec![p("10.0.0.0/8")].into(),
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
            AsPathSegment::Sequence(v) => v.to_vec(),
            other => panic!("not a sequence: {other:?}"),
        })
        .collect();
    assert_eq!(flat, path);

    // 2-octet session: AS_TRANS in AS_PATH, the real path in AS4_PATH.
    let attrs = PathAttributes {
        as_path: AsPath::sequence(vec![65001, 4_200_000_001]),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        ..PathAttributes::default()
    };
    let u = Update {
        attributes: Some(Arc::new(attrs)),
        announced: vec![p("10.0.0.0/8")].into(),
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
        as_path: AsPath::sequence(vec![65001]),
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
            withdrawn: announced.clone().into(),
            attributes: Some(attrs.clone()),
            announced: [announced.clone(), v6.clone()].concat().into(),
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
        announced: vec![p("10.0.0.0/8")].into(),
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
        announced: vec![p("10.0.0.0/8")].into(),
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
        withdrawn: vec![p("2001:db8::/32")].into(),
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

/// The cache's slots are reused round-robin once all eight are taken: a set
/// that went into a reused slot is found there again (its key and the hash
/// compared before it are both the new set's).
#[test]
fn decoder_finds_a_set_in_a_reused_cache_slot() {
    let mut d = Decoder::new();
    let with_med = |med: u8| {
        update(
            &[],
            &[basic_attrs(), attr(0x80, 4, &[0, 0, 0, med])].concat(),
            &[24, 10, 0, med],
        )
    };
    for med in 0..9 {
        d.decode(&with_med(med), &ctx4()).unwrap();
    }
    assert_eq!(d.stats().attribute_cache_hits, 0);
    let Message::Update(again) = d.decode(&with_med(8), &ctx4()).unwrap() else {
        panic!()
    };
    assert_eq!(
        d.stats().attribute_cache_hits,
        1,
        "the ninth set, in slot 0"
    );
    assert_eq!(again.attributes.as_ref().unwrap().med, Some(8));
}
