//! The one netlink message builder: append a request (`nlmsghdr`, a family
//! header, attributes, nests) to a byte buffer, 4-byte aligned as the kernel
//! wants. [`Writer`] writes into a buffer the caller owns (the reconciler's
//! batch buffer: no allocation per message); [`Msg`] owns its buffer and
//! chains (attach's requests). Lengths are patched when a nest or message
//! ends, so nothing is built twice.

use std::net::IpAddr;

use super::consts::{
    NDA_DST, NDA_LLADDR, NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, NLMSG_HDRLEN,
    NUD_PERMANENT, RTM_NEWNEIGH,
};

pub(crate) fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The address family byte of `ip` (`AF_INET` or `AF_INET6`).
pub fn family_of(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

/// The address bytes of `ip` (4 or 16), as attributes carry them.
pub fn ip_bytes(ip: &IpAddr, out: &mut [u8; 16]) -> usize {
    match ip {
        IpAddr::V4(a) => {
            out[..4].copy_from_slice(&a.octets());
            4
        }
        IpAddr::V6(a) => {
            out.copy_from_slice(&a.octets());
            16
        }
    }
}

/// One message being appended to a caller's buffer. Dropping it without
/// [`finish`](Self::finish) leaves a message with a zero length: callers
/// either finish or [`abandon`](Self::abandon) it.
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> Writer<'a> {
    /// Start a message of `kind` with exactly `flags`, sequence number
    /// `seq`, and the family header `header` (padded to 4 bytes).
    pub fn begin(out: &'a mut Vec<u8>, kind: u16, flags: u16, seq: u32, header: &[u8]) -> Self {
        let start = out.len();
        out.extend_from_slice(&[0; 4]); // length, set by `finish`
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&[0; 4]); // port id: the kernel fills it in
        out.extend_from_slice(header);
        pad(out, header.len());
        Writer { out, start }
    }

    /// Append an attribute (`struct rtattr` + payload, padded).
    pub fn attr(&mut self, kind: u16, payload: &[u8]) -> &mut Self {
        put_attr(self.out, kind, payload);
        self
    }

    pub fn u32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.attr(kind, &v.to_ne_bytes())
    }

    /// An address attribute (4 or 16 bytes).
    pub fn ip(&mut self, kind: u16, ip: IpAddr) -> &mut Self {
        let mut b = [0u8; 16];
        let n = ip_bytes(&ip, &mut b);
        self.attr(kind, &b[..n])
    }

    /// Open a nested attribute; returns its position for [`end`](Self::end).
    pub fn nest(&mut self, kind: u16) -> usize {
        let at = self.out.len();
        self.out.extend_from_slice(&[0, 0]);
        self.out.extend_from_slice(&kind.to_ne_bytes());
        at
    }

    /// Raw bytes (a family header inside a nest, a `struct rtnexthop`),
    /// padded to 4; returns their position.
    pub fn raw(&mut self, data: &[u8]) -> usize {
        let at = self.out.len();
        self.out.extend_from_slice(data);
        pad(self.out, data.len());
        at
    }

    /// Close the nest (or raw structure with a leading u16 length) opened at `at`.
    pub fn end(&mut self, at: usize) {
        let len = self.out.len() - at;
        if let Some(slot) = self.out.get_mut(at..at + 2) {
            slot.copy_from_slice(&(len as u16).to_ne_bytes());
        }
    }

    /// Set the message length; the message is complete.
    pub fn finish(self) {
        let len = (self.out.len() - self.start) as u32;
        if let Some(slot) = self.out.get_mut(self.start..self.start + 4) {
            slot.copy_from_slice(&len.to_ne_bytes());
        }
    }

    /// Remove the partial message from the buffer.
    pub fn abandon(self) {
        self.out.truncate(self.start);
    }
}

/// Append a 4-byte-aligned attribute to `out`.
pub fn put_attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    pad(out, len);
}

/// Zero bytes after a piece of `len` bytes up to 4-byte alignment (relative
/// to the piece: the buffer may hold anything before the message).
fn pad(out: &mut Vec<u8>, len: usize) {
    out.resize(out.len() + (align4(len) - len), 0);
}

/// A request that owns its bytes, built by chaining (attach's batches).
/// The sequence number is set when it is sent ([`Msg::finish`]).
#[derive(Debug, Clone)]
pub struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    /// A request of `kind` with `flags` (`NLM_F_REQUEST | NLM_F_ACK` are
    /// always added) and the family header `header`.
    pub fn new(kind: u16, flags: u16, header: &[u8]) -> Msg {
        let mut buf = Vec::with_capacity(128);
        Writer::begin(&mut buf, kind, flags | NLM_F_REQUEST | NLM_F_ACK, 0, header);
        Msg {
            buf,
            nests: Vec::new(),
        }
    }

    /// Adds (or replaces) the permanent neighbour entry `dst` → `lladdr` on
    /// link `index`: attach's static entries for a container's address on
    /// the host end and for the gateway inside the container.
    pub fn permanent_neighbour(index: u32, dst: IpAddr, lladdr: &[u8]) -> Msg {
        Msg::new(
            RTM_NEWNEIGH,
            NLM_F_CREATE | NLM_F_REPLACE,
            &ndmsg(family_of(dst), index, NUD_PERMANENT),
        )
        .ip(NDA_DST, dst)
        .attr(NDA_LLADDR, lladdr)
    }

    /// A request already encoded by a [`Writer`] (its sequence number is
    /// set again when it is sent).
    pub fn from_bytes(buf: Vec<u8>) -> Msg {
        Msg {
            buf,
            nests: Vec::new(),
        }
    }

    pub fn attr(mut self, kind: u16, data: &[u8]) -> Msg {
        put_attr(&mut self.buf, kind, data);
        self
    }

    pub fn u32(self, kind: u16, v: u32) -> Msg {
        self.attr(kind, &v.to_ne_bytes())
    }

    /// A NUL-terminated string attribute.
    pub fn str(self, kind: u16, s: &str) -> Msg {
        let mut b = Vec::with_capacity(s.len() + 1);
        b.extend_from_slice(s.as_bytes());
        b.push(0);
        self.attr(kind, &b)
    }

    /// An address attribute (4 or 16 bytes).
    pub fn ip(self, kind: u16, a: IpAddr) -> Msg {
        let mut b = [0u8; 16];
        let n = ip_bytes(&a, &mut b);
        self.attr(kind, &b[..n])
    }

    /// Opens a nested attribute; `raw` bytes may follow; closed by [`Msg::end`].
    pub fn nest(mut self, kind: u16) -> Msg {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self
    }

    /// Raw bytes inside the current nest (padded to 4).
    pub fn raw(mut self, data: &[u8]) -> Msg {
        self.buf.extend_from_slice(data);
        pad(&mut self.buf, data.len());
        self
    }

    pub fn end(mut self) -> Msg {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// The finished bytes with sequence number `seq`, asking for an ACK.
    pub fn finish(self, seq: u32) -> Vec<u8> {
        let mut out = Vec::new();
        self.finish_into(seq, true, &mut out);
        out
    }

    /// Appends the finished request to `out` with sequence number `seq`,
    /// asking for an ACK (`NLM_F_ACK`) only if `ack`: a batch asks for one
    /// on its last request, and the kernel answers a refusal either way.
    pub fn finish_into(mut self, seq: u32, ack: bool, out: &mut Vec<u8>) {
        while !self.nests.is_empty() {
            self = self.end();
        }
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        if !ack {
            let flags = u16::from_ne_bytes([self.buf[FLAGS_AT], self.buf[FLAGS_AT + 1]]);
            self.buf[FLAGS_AT..FLAGS_AT + 2].copy_from_slice(&(flags & !NLM_F_ACK).to_ne_bytes());
        }
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&self.buf);
    }
}

/// `struct ifinfomsg` (AF_UNSPEC).
pub fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// `struct ifaddrmsg`.
pub fn ifaddrmsg(family: u8, prefix_len: u8, scope: u8, index: u32) -> [u8; 8] {
    let mut h = [family, prefix_len, 0, scope, 0, 0, 0, 0];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h
}

/// `struct rtmsg`.
#[allow(clippy::too_many_arguments)]
pub fn rtmsg(
    family: u8,
    dst_len: u8,
    table: u8,
    protocol: u8,
    scope: u8,
    kind: u8,
    flags: u32,
) -> [u8; RTMSG_BYTES] {
    let f = flags.to_ne_bytes();
    [
        family, dst_len, 0, 0, table, protocol, scope, kind, f[0], f[1], f[2], f[3],
    ]
}

const RTMSG_BYTES: usize = super::consts::RTMSG_LEN;

/// `struct ndmsg`.
pub fn ndmsg(family: u8, index: u32, state: u16) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0] = family;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..10].copy_from_slice(&state.to_ne_bytes());
    h
}

/// `struct ndtmsg`.
pub fn ndtmsg(family: u8) -> [u8; 4] {
    [family, 0, 0, 0]
}

/// Offset of `nlmsg_flags` in a message (patching flags of an encoded request).
pub const FLAGS_AT: usize = 6;
const _: () = assert!(FLAGS_AT + 2 <= NLMSG_HDRLEN);

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(b: &[u8]) -> u16 {
        u16::from_ne_bytes([b[FLAGS_AT], b[FLAGS_AT + 1]])
    }

    #[test]
    fn finish_into_asks_for_an_ack_only_when_told_and_keeps_the_other_flags() {
        let msg =
            || Msg::new(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, &ndmsg(2, 3, 0)).u32(1, 7);
        let mut out = Vec::new();
        msg().finish_into(5, false, &mut out);
        let first = out.len();
        msg().finish_into(6, true, &mut out);
        assert_eq!(out.len(), 2 * first, "both appended whole");
        let (a, b) = out.split_at(first);
        assert_eq!(flags(a), NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE);
        assert_eq!(
            flags(b),
            NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK
        );
        assert_eq!(u32::from_ne_bytes([a[0], a[1], a[2], a[3]]) as usize, first);
        assert_eq!(u32::from_ne_bytes([a[8], a[9], a[10], a[11]]), 5);
        assert_eq!(u32::from_ne_bytes([b[8], b[9], b[10], b[11]]), 6);
        assert_eq!(msg().finish(6), b, "finish = finish_into with an ACK");
    }
}
