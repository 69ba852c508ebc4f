//! Properties checked on arbitrary input, shared by the cargo-fuzz targets
//! (bgp/fuzz, via `#[path]`) and the deterministic fuzz-smoke test:
//! nothing panics, framing agrees with decoding, the cached decoder agrees
//! with a fresh one, and decode -> encode -> decode gives the same content.
#![allow(dead_code)]

use tortie_bgp::types::{AddressFamily, PathAttributes, Prefix};
use tortie_bgp::wire::{
    CodecContext, Decoder, EncodeError, Message, Update, decode, encode, encode_updates, frame,
};

/// A context chosen by the bits of one selector byte.
pub fn ctx_from(sel: u8) -> CodecContext {
    CodecContext {
        four_octet_as: sel & 1 != 0,
        extended_message: sel & 2 != 0,
        ibgp: sel & 4 != 0,
        enforce_first_as: sel & 8 != 0,
        families: vec![AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST],
        local_asn: 65000,
        peer_asn: if sel & 16 != 0 { 65001 } else { 0 },
    }
}

pub fn wrap(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    let len = u16::try_from(19 + body.len()).unwrap_or(u16::MAX);
    m.extend_from_slice(&len.to_be_bytes());
    m.push(ty);
    m.extend_from_slice(body);
    m
}

/// `frame` on arbitrary bytes: a reported length is within the buffer and
/// decoding exactly that frame does not fail on the header.
pub fn check_frame(data: &[u8]) {
    for max in [4096usize, 65535] {
        if let Ok(Some(len)) = frame(data, max) {
            assert!((19..=max).contains(&len) && len <= data.len());
            let ctx = CodecContext {
                extended_message: max > 4096,
                ..CodecContext::default()
            };
            if let Err(e) = decode(&data[..len], &ctx) {
                assert!(
                    e.notification.code != 1 || data[18] == 1,
                    "frame accepted a header decode rejects: {e}"
                );
            }
        }
    }
}

/// Decodes a whole message under the context of `sel`; a per-session decoder
/// used twice must agree with the stateless one.
pub fn check_message(sel: u8, msg: &[u8]) -> &'static str {
    let ctx = ctx_from(sel);
    let fresh = decode(msg, &ctx);
    let mut d = Decoder::new();
    let first = d.decode(msg, &ctx);
    let second = d.decode(msg, &ctx);
    assert_eq!(fresh, first);
    assert_eq!(first, second, "cached decode differs");
    match fresh {
        Ok(Message::Update(u)) => {
            round_trip_update(&u, &ctx);
            if !u.malformed.is_empty() {
                "update with RFC 7606 events"
            } else if !u.announced.is_empty() {
                "update announcing"
            } else if u.end_of_rib.is_some() {
                "end-of-rib"
            } else {
                "update withdrawing"
            }
        }
        Ok(m) => {
            round_trip_other(&m, &ctx);
            m.message_type().name()
        }
        Err(e) if e.notification.code == 1 => "header error",
        Err(_) => "body error",
    }
}

fn round_trip_other(m: &Message, ctx: &CodecContext) {
    let mut out = Vec::new();
    if encode(m, ctx, &mut out).is_ok() {
        let back = decode(&out, ctx).expect("our own encoding must decode");
        assert_eq!(&back, m);
    }
}

fn norm_attrs(a: &PathAttributes, ctx: &CodecContext) -> PathAttributes {
    let mut a = a.clone();
    for u in &mut a.unknown {
        u.flags |= 0x20;
    }
    if !ctx.ibgp {
        a.local_pref = None;
        a.originator_id = None;
        a.cluster_list.clear();
    }
    a
}

type Content = (
    Vec<Prefix>,
    Vec<Prefix>,
    Option<PathAttributes>,
    Option<AddressFamily>,
);

fn content(u: &Update, ctx: &CodecContext) -> Content {
    let mut w = u.withdrawn.to_vec();
    w.sort();
    let mut a = u.announced.to_vec();
    a.sort();
    (
        w,
        a,
        u.attributes.as_deref().map(|x| norm_attrs(x, ctx)),
        u.end_of_rib,
    )
}

/// decode -> encode (single message and packer) -> decode gives the same content.
pub fn round_trip_update(u: &Update, ctx: &CodecContext) {
    let want = content(u, ctx);
    let mut out = Vec::new();
    match encode(&Message::Update(u.clone()), ctx, &mut out) {
        Ok(()) => {
            assert!(out.len() <= ctx.max_message_len());
            let Ok(Message::Update(back)) = decode(&out, ctx) else {
                panic!(
                    "our own UPDATE does not decode: {u:?} -> {out:x?} -> {:?}",
                    decode(&out, ctx)
                )
            };
            assert!(
                back.malformed.is_empty(),
                "our own UPDATE is malformed: {:?}",
                back.malformed
            );
            assert_eq!(content(&back, ctx), want, "single-message round trip");
        }
        Err(EncodeError::EmptyUpdate) => assert!(u.is_empty()),
        Err(_) => return,
    }
    let mut msgs = Vec::new();
    if encode_updates(u, ctx, &mut msgs).is_err() {
        return;
    }
    let mut d = Decoder::new();
    let (mut w, mut a, mut attrs, mut eor) = (Vec::new(), Vec::new(), None, None);
    for m in &msgs {
        assert!(m.len() <= ctx.max_message_len());
        let Ok(Message::Update(x)) = d.decode(m, ctx) else {
            panic!("packed UPDATE does not decode")
        };
        assert!(x.malformed.is_empty());
        w.extend(x.withdrawn);
        a.extend(x.announced.iter().copied());
        if let Some(at) = x.attributes {
            attrs = Some(norm_attrs(&at, ctx));
        }
        eor = eor.or(x.end_of_rib);
    }
    w.sort();
    a.sort();
    assert_eq!((w, a, attrs, eor), want, "packer round trip");
}

/// An UPDATE body under every interesting context.
pub fn check_update_body(sel: u8, body: &[u8]) {
    if body.len() <= 65535 - 19 {
        check_message(sel, &wrap(2, body));
    }
}

pub fn check_open_body(body: &[u8]) {
    if body.len() <= 4096 - 19 {
        check_message(0, &wrap(1, body));
    }
}

/// Reads bytes from fuzz input, then a deterministic filler once it runs out.
struct Source<'a> {
    data: &'a [u8],
    pos: usize,
    filler: u64,
}

impl Source<'_> {
    fn u8(&mut self) -> u8 {
        if let Some(b) = self.data.get(self.pos) {
            self.pos += 1;
            return *b;
        }
        self.filler ^= self.filler << 13;
        self.filler ^= self.filler >> 7;
        self.filler ^= self.filler << 17;
        self.filler as u8
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
}

/// encode -> decode: builds an UPDATE from the bytes (any attribute values the
/// encoder accepts), packs it and checks every message decodes, without RFC
/// 7606 events, to the same prefixes and attributes.
pub fn check_encode_from_bytes(data: &[u8]) {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::sync::Arc;
    use tortie_bgp::types::{AsPath, AsPathSegment, Origin, RawAttribute};

    let mut s = Source {
        data,
        pos: 0,
        filler: 0x9e37_79b9_7f4a_7c15 ^ data.len() as u64,
    };
    let sel = s.u8();
    let ctx = CodecContext {
        enforce_first_as: false,
        ..ctx_from(sel)
    };
    let v6 = sel & 0x20 != 0;
    let mut pa = PathAttributes {
        origin: [Origin::Igp, Origin::Egp, Origin::Incomplete][usize::from(s.u8() % 3)],
        ..PathAttributes::default()
    };
    let mut expected_path = Vec::new();
    let nseg = s.u8() % 4;
    for i in 0..nseg {
        let kind = s.u8() % 4;
        // Confederation segments only toward internal peers, and only leading.
        let confed = ctx.ibgp && i == 0 && kind >= 2;
        let count = usize::from(s.u16() % 301);
        let asns: Vec<u32> = (0..count)
            .map(|_| {
                let a = s.u32();
                if confed && !ctx.four_octet_as {
                    a & 0xffff
                } else {
                    a
                }
            })
            .collect();
        let seg = |v: Vec<u32>| match (confed, kind % 2) {
            (true, 0) => AsPathSegment::ConfedSequence(v.into()),
            (true, _) => AsPathSegment::ConfedSet(v.into()),
            (false, 0) => AsPathSegment::Sequence(v.into()),
            (false, _) => AsPathSegment::Set(v.into()),
        };
        for chunk in asns.chunks(255) {
            expected_path.push(seg(chunk.to_vec()));
        }
        pa.as_path.segments.push(seg(asns));
    }
    if v6 {
        let mut g = [0u8; 16];
        g.iter_mut().for_each(|b| *b = s.u8());
        g[0] = 0x20;
        pa.next_hop = Some(IpAddr::V6(Ipv6Addr::from(g)));
        if s.u8() & 1 == 1 {
            pa.link_local_next_hop = Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, s.u16()));
        }
    } else {
        pa.next_hop = Some(IpAddr::V4(Ipv4Addr::new(10, s.u8(), s.u8(), s.u8())));
    }
    let flags = s.u8();
    pa.med = (flags & 1 != 0).then(|| s.u32());
    pa.local_pref = (flags & 2 != 0).then(|| s.u32());
    pa.atomic_aggregate = flags & 4 != 0;
    pa.aggregator = (flags & 8 != 0).then(|| (s.u32(), Ipv4Addr::from(s.u32())));
    pa.communities = (0..s.u8() % 40).map(|_| s.u32()).collect();
    pa.extended_communities = (0..s.u8() % 10)
        .map(|_| s.u32().to_be_bytes().repeat(2).try_into().unwrap())
        .collect();
    pa.large_communities = (0..s.u8() % 10)
        .map(|_| [s.u32(), s.u32(), s.u32()])
        .collect();
    pa.originator_id = (flags & 16 != 0).then(|| Ipv4Addr::from(s.u32()));
    pa.cluster_list = (0..s.u8() % 5).map(|_| Ipv4Addr::from(s.u32())).collect();
    for _ in 0..s.u8() % 3 {
        let t = 19 + s.u8() % 12; // 19..=30: not a type the codec interprets
        let value: Vec<u8> = (0..s.u8() % 40).map(|_| s.u8()).collect();
        pa.unknown.push(RawAttribute {
            flags: 0xc0,
            type_code: t,
            value,
        });
    }
    let prefix = |s: &mut Source<'_>| -> Prefix {
        if v6 {
            let mut a = [0u8; 16];
            a.iter_mut().for_each(|b| *b = s.u8());
            Prefix::new(IpAddr::V6(Ipv6Addr::from(a)), s.u8() % 129).unwrap()
        } else {
            Prefix::new(IpAddr::V4(Ipv4Addr::from(s.u32())), s.u8() % 33).unwrap()
        }
    };
    let announced: Vec<Prefix> = (0..s.u16() % 2500).map(|_| prefix(&mut s)).collect();
    let withdrawn: Vec<Prefix> = (0..s.u16() % 2500).map(|_| prefix(&mut s)).collect();
    let u = Update {
        withdrawn: withdrawn.into(),
        attributes: Some(Arc::new(pa.clone())),
        announced: announced.into(),
        ..Update::default()
    };

    let mut msgs = Vec::new();
    if encode_updates(&u, &ctx, &mut msgs).is_err() {
        // Only oversized attribute sets may be refused.
        let mut one = Vec::new();
        assert!(encode(&Message::Update(u), &ctx, &mut one).is_err());
        return;
    }
    let mut expected = pa;
    expected.as_path = AsPath {
        segments: expected_path.into(),
    };
    let mut seen = std::collections::HashSet::new();
    expected.unknown.retain(|x| seen.insert(x.type_code));
    for x in &mut expected.unknown {
        x.flags |= 0x20;
    }
    if !ctx.ibgp {
        expected.local_pref = None;
        expected.originator_id = None;
        expected.cluster_list.clear();
    }
    let mut d = Decoder::new();
    let (mut w, mut a) = (Vec::new(), Vec::new());
    for m in &msgs {
        assert!(m.len() <= ctx.max_message_len());
        let Ok(Message::Update(x)) = d.decode(m, &ctx) else {
            panic!("packed UPDATE does not decode: {m:x?}")
        };
        assert!(x.malformed.is_empty(), "{:?}", x.malformed);
        if let Some(at) = &x.attributes {
            assert_eq!(**at, expected);
        }
        w.extend(x.withdrawn);
        a.extend(x.announced);
    }
    let (mut ew, mut ea) = (u.withdrawn.to_vec(), u.announced.to_vec());
    for v in [&mut w, &mut a, &mut ew, &mut ea] {
        v.sort();
    }
    assert_eq!(w, ew);
    assert_eq!(a, ea);
}
