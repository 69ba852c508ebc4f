//! Nexthop objects (`RTM_NEWNEXTHOP` / `RTM_DELNEXTHOP` / `RTM_GETNEXTHOP`,
//! Linux ≥ 5.3) both ways, for the reconciler's learned routes
//! (`crate::reconcile`'s nexthops): a route then carries `RTA_NH_ID`
//! ([`super::RouteEncoder::encode_nh`]) instead of its own gateway, and
//! the kernel sets the next hop up once per object instead of once per
//! route (IPv6: a `fib6_nh` with its per-CPU route cache per route).
//!
//! Out: a create-or-replace of one gateway object (`struct nhmsg`, `NHA_ID`,
//! `NHA_GATEWAY`, `NHA_OIF`, the attributes `ip nexthop replace id N via G
//! dev D proto P` sends), a delete by id, a dump request. In: a dumped or
//! notified object as a [`NexthopView`]. `netlink-packet-route` 0.34 has no
//! nexthop messages: the tests compare with the bytes iproute2 sends.

use std::net::IpAddr;

use super::build::{Writer, family_of};
use super::consts::*;
use super::parse::{attrs, ne_u32};
use super::view::{ParseError, ip_of};

/// `struct nhmsg`: family, scope, protocol, reserved, flags.
pub fn nhmsg(family: u8, protocol: u8, flags: u32) -> [u8; NHMSG_LEN] {
    let mut h = [0u8; NHMSG_LEN];
    h[0] = family;
    h[2] = protocol;
    h[4..8].copy_from_slice(&flags.to_ne_bytes());
    h
}

/// Append an `RTM_NEWNEXTHOP` that creates or replaces object `id`: gateway
/// `gateway` on device `oif` (`onlink`: `RTNH_F_ONLINK`), owned by
/// `protocol`. `extra_flags` as [`super::RouteEncoder::extra_flags`].
#[allow(clippy::too_many_arguments)]
pub fn encode_new(
    out: &mut Vec<u8>,
    seq: u32,
    extra_flags: u16,
    id: u32,
    protocol: u8,
    gateway: IpAddr,
    oif: u32,
    onlink: bool,
) {
    let flags = if onlink { u32::from(RTNH_F_ONLINK) } else { 0 };
    let header = nhmsg(family_of(gateway), protocol, flags);
    let kind = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE | extra_flags;
    let mut w = Writer::begin(out, RTM_NEWNEXTHOP, kind, seq, &header);
    w.u32(NHA_ID, id).ip(NHA_GATEWAY, gateway).u32(NHA_OIF, oif);
    w.finish();
}

/// Append an `RTM_DELNEXTHOP` of object `id` (the kernel also deletes every
/// route that still uses it: callers delete only unused objects).
pub fn encode_del(out: &mut Vec<u8>, seq: u32, extra_flags: u16, id: u32) {
    let header = nhmsg(0, 0, 0);
    let mut w = Writer::begin(
        out,
        RTM_DELNEXTHOP,
        NLM_F_REQUEST | extra_flags,
        seq,
        &header,
    );
    w.u32(NHA_ID, id);
    w.finish();
}

/// Append an `RTM_GETROUTE` of `gateway`: the kernel answers with the
/// route it would use for it, whose `RTA_OIF` is the device an object for
/// that gateway needs (the kernel resolves an inline gateway the same way).
pub fn route_get(out: &mut Vec<u8>, seq: u32, gateway: IpAddr) {
    let full = if gateway.is_ipv4() { 32 } else { 128 };
    let header = super::build::rtmsg(family_of(gateway), full, 0, 0, 0, 0, 0);
    let mut w = Writer::begin(out, RTM_GETROUTE, NLM_F_REQUEST, seq, &header);
    w.ip(RTA_DST, gateway);
    w.finish();
}

/// The kernel's answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `NLMSG_ERROR`: 0 is an ack.
    Errno(i32),
    /// A route (the answer to [`route_get`]) and its output device.
    Route(Option<u32>),
}

/// The answer to request `seq` in `datagram`, if it holds one.
pub fn answer_to(datagram: &[u8], seq: u32) -> Option<Answer> {
    for m in super::parse::messages(datagram) {
        if m.header.seq != seq {
            continue;
        }
        match m.header.kind {
            NLMSG_ERROR => {
                let errno = super::parse::error_msg(m.header.flags, m.body)
                    .map_or(libc::EBADMSG, |e| e.errno);
                return Some(Answer::Errno(errno));
            }
            RTM_NEWROUTE => {
                let oif = super::view::RouteView::parse(m.body)
                    .ok()
                    .and_then(|r| r.oif);
                return Some(Answer::Route(oif));
            }
            _ => {}
        }
    }
    None
}

/// A dump request of every nexthop object (both families).
pub fn dump_request() -> Vec<u8> {
    super::dump::request(RTM_GETNEXTHOP, &nhmsg(0, 0, 0))
}

/// A dumped or notified nexthop object: what the reconciler needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NexthopView {
    pub id: u32,
    pub family: u8,
    pub protocol: u8,
    pub flags: u32,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    /// A group, blackhole or FDB object (never one of ours).
    pub special: bool,
}

impl NexthopView {
    /// Read the body (after `nlmsghdr`) of an `RTM_NEWNEXTHOP` or
    /// `RTM_DELNEXTHOP`.
    pub fn parse(body: &[u8]) -> Result<NexthopView, ParseError> {
        let short = ParseError("nexthop message shorter than struct nhmsg");
        let h = body.get(..NHMSG_LEN).ok_or(short)?;
        let mut v = NexthopView {
            id: 0,
            family: h[0],
            protocol: h[2],
            flags: ne_u32(h, 4).ok_or(short)?,
            gateway: None,
            oif: None,
            special: false,
        };
        for (kind, p) in attrs(body.get(NHMSG_LEN..).unwrap_or_default()) {
            match kind {
                NHA_ID => v.id = ne_u32(p, 0).unwrap_or(v.id),
                NHA_GATEWAY => v.gateway = ip_of(p).or(v.gateway),
                NHA_OIF => v.oif = ne_u32(p, 0).or(v.oif),
                NHA_GROUP | NHA_BLACKHOLE | NHA_FDB => v.special = true,
                _ => {}
            }
        }
        if v.id == 0 {
            return Err(ParseError("nexthop message without NHA_ID"));
        }
        Ok(v)
    }

    /// Whether the object has `RTNH_F_ONLINK`.
    pub fn onlink(&self) -> bool {
        self.flags & u32::from(RTNH_F_ONLINK) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ip nexthop replace id 7 via 10.0.0.2 dev va proto 149` (va: index
    /// 3) and the IPv6 one with `via 2001:db8::2`, and `ip nexthop del id
    /// 7`, as iproute2 6.x sends them (strace), sequence number 1.
    const V4: &[u8] = b"\x30\x00\x00\x00\x68\x00\x05\x05\x01\x00\x00\x00\x00\x00\x00\x00\
\x02\x00\x95\x00\x00\x00\x00\x00\x08\x00\x01\x00\x07\x00\x00\x00\x08\x00\x06\x00\x0a\x00\x00\x02\
\x08\x00\x05\x00\x03\x00\x00\x00";
    const V6: &[u8] = b"\x3c\x00\x00\x00\x68\x00\x05\x05\x01\x00\x00\x00\x00\x00\x00\x00\
\x0a\x00\x95\x00\x00\x00\x00\x00\x08\x00\x01\x00\x08\x00\x00\x00\x14\x00\x06\x00\
\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x08\x00\x05\x00\x03\x00\x00\x00";
    const DEL: &[u8] = b"\x20\x00\x00\x00\x69\x00\x05\x00\x01\x00\x00\x00\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x08\x00\x01\x00\x07\x00\x00\x00";

    #[test]
    fn requests_equal_what_iproute2_sends() {
        let mut b = Vec::new();
        encode_new(
            &mut b,
            1,
            NLM_F_ACK,
            7,
            149,
            "10.0.0.2".parse().unwrap(),
            3,
            false,
        );
        assert_eq!(b, V4);
        b.clear();
        encode_new(
            &mut b,
            1,
            NLM_F_ACK,
            8,
            149,
            "2001:db8::2".parse().unwrap(),
            3,
            false,
        );
        assert_eq!(b, V6);
        b.clear();
        encode_del(&mut b, 1, NLM_F_ACK, 7);
        assert_eq!(b, DEL);
    }

    #[test]
    fn objects_read_back() {
        for (bytes, id, gw) in [(V4, 7, "10.0.0.2"), (V6, 8, "2001:db8::2")] {
            let v = NexthopView::parse(&bytes[16..]).unwrap();
            assert_eq!((v.id, v.protocol, v.oif), (id, 149, Some(3)));
            assert_eq!(v.gateway, Some(gw.parse().unwrap()));
            assert!(!v.special && !v.onlink());
        }
        let mut b = Vec::new();
        encode_new(&mut b, 1, 0, 9, 149, "10.0.0.2".parse().unwrap(), 3, true);
        assert!(NexthopView::parse(&b[16..]).unwrap().onlink());
        // Every truncation is an error or a shorter read, never a panic.
        for n in 0..V6.len() - 16 {
            let _ = NexthopView::parse(&V6[16..16 + n]);
        }
        assert!(NexthopView::parse(&DEL[16..20]).is_err());
    }
}
