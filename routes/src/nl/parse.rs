//! The one netlink parser: split a datagram into messages, walk a message's
//! attributes, read an `NLMSG_ERROR` (errno, the request's sequence number,
//! the kernel's extended-ack text). Every read is bounds-checked: a short or
//! odd message ends the walk or is an error, never a panic.

use super::build::align4;
use super::consts::{NLM_F_ACK_TLVS, NLM_F_CAPPED, NLMSG_HDRLEN, NLMSGERR_ATTR_MSG};

pub fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// `struct nlmsghdr` of a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    /// Port id of the socket whose request caused the message (0: the kernel).
    pub pid: u32,
}

/// One message of a datagram: its header, its body (after `nlmsghdr`) and
/// its whole bytes.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub header: Header,
    pub body: &'a [u8],
    pub bytes: &'a [u8],
}

/// The messages of one datagram. Stops at the first malformed length;
/// [`Messages::malformed`] tells whether that happened.
pub struct Messages<'a> {
    buf: &'a [u8],
    at: usize,
    malformed: bool,
}

/// Iterate the messages of `datagram`.
pub fn messages(datagram: &[u8]) -> Messages<'_> {
    Messages {
        buf: datagram,
        at: 0,
        malformed: false,
    }
}

impl Messages<'_> {
    /// Whether the walk stopped at a length that does not fit.
    pub fn malformed(&self) -> bool {
        self.malformed
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Message<'a>;

    fn next(&mut self) -> Option<Message<'a>> {
        let b = self.buf;
        let at = self.at;
        if at + NLMSG_HDRLEN > b.len() {
            return None;
        }
        let len = ne_u32(b, at)? as usize;
        if len < NLMSG_HDRLEN || at + len > b.len() {
            self.malformed = true;
            self.at = b.len();
            return None;
        }
        let header = Header {
            kind: ne_u16(b, at + 4)?,
            flags: ne_u16(b, at + 6)?,
            seq: ne_u32(b, at + 8)?,
            pid: ne_u32(b, at + 12)?,
        };
        let bytes = b.get(at..at + len)?;
        self.at = at + align4(len);
        Some(Message {
            header,
            body: bytes.get(NLMSG_HDRLEN..)?,
            bytes,
        })
    }
}

/// Iterates `(kind, payload)` of the attributes in `b` (nested-flag bits
/// masked off); stops at the first malformed one.
pub fn attrs(b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let len = ne_u16(b, at)? as usize;
        let kind = ne_u16(b, at + 2)? & 0x3fff;
        if len < 4 {
            return None;
        }
        let payload = b.get(at + 4..at.checked_add(len)?)?;
        at += align4(len);
        Some((kind, payload))
    })
}

/// An `NLMSG_ERROR` message: an ACK (`errno` 0) or a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMsg {
    /// Positive errno; 0 for an ACK.
    pub errno: i32,
    /// Sequence number of the request it answers (from the echoed header).
    pub request_seq: Option<u32>,
    /// The kernel's extended-ack text, when it sent one.
    pub message: Option<String>,
}

/// Read the body of an `NLMSG_ERROR` whose header flags are `flags`.
pub fn error_msg(flags: u16, body: &[u8]) -> Option<ErrorMsg> {
    let code = ne_u32(body, 0)? as i32;
    let request_seq = ne_u32(body, 4 + 8);
    let mut message = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        // The original request follows (capped: only its header).
        let orig_len = ne_u32(body, 4).unwrap_or(0) as usize;
        let skip = if flags & NLM_F_CAPPED != 0 {
            4 + NLMSG_HDRLEN
        } else {
            4 + align4(orig_len)
        };
        if let Some(tlvs) = body.get(skip..) {
            message = attrs(tlvs)
                .find(|(k, _)| *k == NLMSGERR_ATTR_MSG)
                .map(|(_, v)| {
                    String::from_utf8_lossy(v)
                        .trim_end_matches('\0')
                        .to_string()
                });
        }
    }
    Some(ErrorMsg {
        errno: code.saturating_neg(),
        request_seq,
        message,
    })
}
