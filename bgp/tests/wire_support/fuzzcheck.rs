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
    let mut w = u.withdrawn.clone();
    w.sort();
    let mut a = u.announced.clone();
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
