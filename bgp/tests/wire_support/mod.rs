//! Shared byte builders for the wire tests (included with `mod`).
#![allow(dead_code)]

pub mod fuzzcheck;

pub fn msg(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    let len = (19 + body.len()) as u16;
    m.extend_from_slice(&len.to_be_bytes());
    m.push(ty);
    m.extend_from_slice(body);
    m
}

pub fn attr(flags: u8, type_code: u8, value: &[u8]) -> Vec<u8> {
    let mut a = vec![flags, type_code];
    if flags & 0x10 != 0 {
        a.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        a.push(value.len() as u8);
    }
    a.extend_from_slice(value);
    a
}

pub fn update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut b = (withdrawn.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(attrs);
    b.extend_from_slice(nlri);
    msg(2, &b)
}

pub fn origin(o: u8) -> Vec<u8> {
    attr(0x40, 1, &[o])
}

/// AS_PATH with one AS_SEQUENCE of 4-octet ASNs.
pub fn as_path4(asns: &[u32]) -> Vec<u8> {
    let mut v = vec![2, asns.len() as u8];
    for a in asns {
        v.extend_from_slice(&a.to_be_bytes());
    }
    attr(0x40, 2, &v)
}

/// AS_PATH with one AS_SEQUENCE of 2-octet ASNs.
pub fn as_path2(asns: &[u16]) -> Vec<u8> {
    let mut v = vec![2, asns.len() as u8];
    for a in asns {
        v.extend_from_slice(&a.to_be_bytes());
    }
    attr(0x40, 2, &v)
}

pub fn next_hop(ip: [u8; 4]) -> Vec<u8> {
    attr(0x40, 3, &ip)
}

/// ORIGIN IGP, AS_PATH 65001 65002 (4-octet), NEXT_HOP 192.0.2.1.
pub fn basic_attrs() -> Vec<u8> {
    [
        origin(0),
        as_path4(&[65001, 65002]),
        next_hop([192, 0, 2, 1]),
    ]
    .concat()
}

pub fn ctx4() -> tortie_bgp::wire::CodecContext {
    use tortie_bgp::types::AddressFamily;
    tortie_bgp::wire::CodecContext {
        four_octet_as: true,
        families: vec![AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST],
        local_asn: 65000,
        peer_asn: 65001,
        ..Default::default()
    }
}

pub fn p(s: &str) -> tortie_bgp::types::Prefix {
    s.parse().unwrap()
}
