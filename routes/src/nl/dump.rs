//! Dumps (`NLM_F_DUMP`): the request, and the reading of its multi-part
//! answer, shared by the synchronous [`Socket::dump`] and the tokio-driven
//! [`super::AsyncSocket::dump`].
//!
//! Data flow: the request goes out with a sequence number; every datagram
//! that comes back is fed to a `DumpReader`, which hands each message of
//! that sequence number to the caller's callback as [`Part::Msg`] until
//! `NLMSG_DONE`. When the kernel flags a part `NLM_F_DUMP_INTR` (the table
//! changed while it was being dumped), the rest of that dump is read and
//! dropped, the callback gets [`Part::Restart`] (forget what you collected)
//! and the dump is asked again, at most [`ATTEMPTS`] times. An
//! `NLMSG_ERROR` ends the dump with the errno and the kernel's text.

use std::io;
use std::time::Instant;

use super::build::{FLAGS_AT, Writer};
use super::consts::{NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR};
use super::parse::{Message, error_msg, messages};
use super::socket::Socket;

/// How often a dump is asked again after the kernel flagged it interrupted.
pub const ATTEMPTS: usize = 5;

/// What a dump hands its caller.
#[derive(Debug, Clone, Copy)]
pub enum Part<'a> {
    /// One message of the answer (`RTM_NEWROUTE`, `RTM_NEWLINK`, ...).
    Msg(Message<'a>),
    /// The dump was interrupted and starts over: drop what was collected.
    Restart,
}

/// A dump request of `kind` (`RTM_GETROUTE`, ...) with the family header
/// `header`; its sequence number is set by the socket that sends it.
pub fn request(kind: u16, header: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + header.len() + 8);
    Writer::begin(&mut out, kind, NLM_F_REQUEST | NLM_F_DUMP, 0, header).finish();
    out
}

/// Set the sequence number of an encoded request.
pub(crate) fn set_seq(req: &mut [u8], seq: u32) {
    if let Some(s) = req.get_mut(8..12) {
        s.copy_from_slice(&seq.to_ne_bytes());
    }
}

/// Whether a request asks for a dump (its flags carry `NLM_F_DUMP`).
fn is_dump(req: &[u8]) -> bool {
    super::parse::ne_u16(req, FLAGS_AT).is_some_and(|f| f & NLM_F_DUMP == NLM_F_DUMP)
}

/// Where a dump stands after a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// More parts to come.
    More,
    /// `NLMSG_DONE` of a complete dump.
    Done,
    /// `NLMSG_DONE` of an interrupted dump (the callback had
    /// [`Part::Restart`]): ask again.
    Interrupted,
}

/// Reads the datagrams of one dump (see the module doc).
pub(crate) struct DumpReader {
    seq: u32,
    interrupted: bool,
}

impl DumpReader {
    pub(crate) fn new(seq: u32) -> DumpReader {
        DumpReader {
            seq,
            interrupted: false,
        }
    }

    /// Handle one datagram; messages of other sequence numbers are skipped.
    pub(crate) fn feed(
        &mut self,
        datagram: &[u8],
        f: &mut dyn FnMut(Part<'_>),
    ) -> io::Result<Step> {
        let mut it = messages(datagram);
        for m in it.by_ref() {
            if m.header.seq != self.seq {
                continue;
            }
            if m.header.flags & NLM_F_DUMP_INTR != 0 {
                self.interrupted = true;
            }
            match m.header.kind {
                NLMSG_DONE if self.interrupted => {
                    f(Part::Restart);
                    return Ok(Step::Interrupted);
                }
                NLMSG_DONE => return Ok(Step::Done),
                NLMSG_ERROR => {
                    let e = error_msg(m.header.flags, m.body)
                        .ok_or_else(|| io::Error::other("short NLMSG_ERROR in a dump"))?;
                    if e.errno == 0 {
                        return Ok(Step::Done);
                    }
                    return Err(match e.message {
                        Some(text) => Refused::error(e.errno, text),
                        None => io::Error::from_raw_os_error(e.errno),
                    });
                }
                _ if !self.interrupted => f(Part::Msg(m)),
                _ => {}
            }
        }
        if it.malformed() {
            return Err(io::Error::other(format!(
                "malformed netlink message in a dump datagram of {} bytes",
                datagram.len()
            )));
        }
        Ok(Step::More)
    }
}

/// A dump the kernel refused with an extended-ack text: the errno and the
/// text together, so the error reads "Invalid argument (os error 22):
/// Invalid header for dump" and [`crate::RoutesError::errno`] still finds
/// the errno (an `io::Error` holds either a raw errno or a custom payload).
#[derive(Debug)]
pub(crate) struct Refused {
    /// Positive errno.
    pub errno: i32,
    /// The kernel's `NLMSGERR_ATTR_MSG`.
    pub text: String,
}

impl Refused {
    fn error(errno: i32, text: impl Into<String>) -> io::Error {
        let kind = io::Error::from_raw_os_error(errno).kind();
        io::Error::new(
            kind,
            Refused {
                errno,
                text: text.into(),
            },
        )
    }

    /// The errno of an `io::Error` made by a refused dump.
    pub(crate) fn errno_of(e: &io::Error) -> Option<i32> {
        e.get_ref()?.downcast_ref::<Refused>().map(|r| r.errno)
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let os = io::Error::from_raw_os_error(self.errno);
        write!(f, "{os}: {}", self.text)
    }
}

impl std::error::Error for Refused {}

pub(crate) fn interrupted_too_often() -> io::Error {
    io::Error::other(format!(
        "netlink dump interrupted {ATTEMPTS} times in a row"
    ))
}

impl Socket {
    /// Send the dump `request` (see [`request`]) and hand every part of
    /// the answer to `f`, waiting until `deadline`. Attempt `i` carries
    /// sequence number `seq + i`. `buf` is the receive buffer (a dump's
    /// datagrams are at most 32 KiB; 64 KiB is plenty).
    pub fn dump(
        &self,
        request: &[u8],
        seq: u32,
        deadline: Instant,
        buf: &mut [u8],
        f: &mut dyn FnMut(Part<'_>),
    ) -> io::Result<()> {
        if !is_dump(request) {
            return Err(io::Error::other("not a dump request"));
        }
        let mut req = request.to_vec();
        for attempt in 0..ATTEMPTS {
            let seq = seq.wrapping_add(attempt as u32);
            set_seq(&mut req, seq);
            self.send_blocking(&req, deadline)?;
            let mut reader = DumpReader::new(seq);
            loop {
                let Some(n) = self.recv_until(buf, deadline)? else {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the kernel did not finish a netlink dump in time",
                    ));
                };
                match reader.feed(buf.get(..n).unwrap_or_default(), f)? {
                    Step::More => {}
                    Step::Done => return Ok(()),
                    Step::Interrupted => break,
                }
            }
        }
        Err(interrupted_too_often())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nl::build::{ifinfomsg, put_attr};
    use crate::nl::consts::{IFLA_IFNAME, NLMSGERR_ATTR_MSG, RTM_NEWLINK};

    fn part(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Writer::begin(&mut out, kind, flags, seq, body).finish();
        out
    }

    fn link(seq: u32, flags: u16, name: &str) -> Vec<u8> {
        let mut body = ifinfomsg(1, 0, 0).to_vec();
        put_attr(&mut body, IFLA_IFNAME, name.as_bytes());
        part(RTM_NEWLINK, flags, seq, &body)
    }

    /// Feeds datagrams; returns the steps and what the callback saw.
    fn run(datagrams: &[Vec<u8>]) -> (Vec<io::Result<Step>>, Vec<String>) {
        let mut reader = DumpReader::new(7);
        let mut seen = Vec::new();
        let steps = datagrams
            .iter()
            .map(|d| {
                reader.feed(d, &mut |p| match p {
                    Part::Msg(m) => seen.push(format!("{}", m.header.kind)),
                    Part::Restart => seen.push("restart".into()),
                })
            })
            .collect();
        (steps, seen)
    }

    /// Table: multi-part answers, other sequence numbers skipped, an
    /// interrupted dump read to its end and restarted, an error with the
    /// kernel's text, a malformed datagram.
    #[test]
    fn dump_parts_interruptions_and_errors() {
        let done = |flags| part(NLMSG_DONE, flags, 7, &0u32.to_ne_bytes());
        // Two parts, a stranger's message in between, then DONE.
        let (steps, seen) = run(&[
            [link(7, 2, "a"), link(8, 2, "x")].concat(),
            [link(7, 2, "b"), done(2)].concat(),
        ]);
        assert!(matches!(steps[..], [Ok(Step::More), Ok(Step::Done)]));
        assert_eq!(seen, ["16", "16"]);
        // Interrupted mid-way: later parts dropped, restart at DONE.
        let (steps, seen) = run(&[
            [link(7, 2, "a"), link(7, 2 | NLM_F_DUMP_INTR, "b")].concat(),
            [link(7, 2 | NLM_F_DUMP_INTR, "c"), done(2 | NLM_F_DUMP_INTR)].concat(),
        ]);
        assert!(matches!(steps[..], [Ok(Step::More), Ok(Step::Interrupted)]));
        assert_eq!(seen, ["16", "restart"]);
        // A refusal, with the kernel's text.
        let mut body = (-libc::EINVAL).to_ne_bytes().to_vec();
        body.extend_from_slice(&link(7, 0x301, "q")[..16]);
        put_attr(&mut body, NLMSGERR_ATTR_MSG, b"Invalid header for dump\0");
        let err = part(NLMSG_ERROR, 0x300, 7, &body);
        let (steps, _) = run(&[err]);
        let e = steps[0].as_ref().unwrap_err();
        assert_eq!(Refused::errno_of(e), Some(libc::EINVAL));
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("Invalid header for dump"), "{e}");
        let routes =
            crate::RoutesError::io("dumping routes", io::Error::new(e.kind(), e.to_string()));
        assert_eq!(routes.errno(), None, "a plain text error has no errno");
        let e = Refused::error(libc::EINVAL, "Invalid header for dump");
        let routes = crate::RoutesError::io("dumping routes", e);
        assert_eq!(routes.errno(), Some(libc::EINVAL));
        assert!(routes.to_string().contains("Invalid argument"), "{routes}");
        assert!(
            routes.to_string().contains("Invalid header for dump"),
            "{routes}"
        );
        // A length past the end of the datagram.
        let mut bad = link(7, 2, "a");
        bad[0] = 200;
        let (steps, _) = run(&[bad]);
        assert!(steps[0].is_err());
        // Not a dump request.
        assert!(!is_dump(&part(RTM_NEWLINK, NLM_F_REQUEST, 1, &[0; 16])));
        assert!(is_dump(&request(RTM_NEWLINK, &[0; 16])));
    }
}
