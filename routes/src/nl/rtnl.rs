//! The request/answer mode of the socket: requests built with [`Msg`], sent several to one `sendmsg` (the kernel
//! processes rtnetlink requests synchronously inside `sendmsg`, so by the
//! time it returns every answer is queued). Only a batch's last request
//! asks for an ACK (`NLM_F_ACK`): the kernel processes the batch in order
//! and answers every refusal with an `NLMSG_ERROR` (errno and its
//! extended-ack message) whether asked or not, so when the last request's
//! answer is read every refusal before it has been too, and a request
//! without one succeeded — unless the socket overflowed meanwhile
//! (ENOBUFS), which fails the batch. What is queued is read several
//! datagrams to a `recvmmsg`.
//! `RTM_NEWLINK` messages that arrive meanwhile, unicast replies to
//! `RTM_GETLINK` and `RTMGRP_LINK` notifications alike, update a small table
//! of link flags, which is what the oper-up wait reads: subscribing before
//! the links are brought up means no transition can be missed (on an
//! overrun the caller asks again with `RTM_GETLINK`).
//!
//! Used by attach (one attach thread at a time; its host-side sockets are
//! kept between attaches by `attach::Attacher`, one user at a time, made
//! ready again by [`Rtnl::clear`]), detach, the tunnel and VXLAN devices and
//! the reconciler's VTEP entries; nothing here is shared.
//! Every reply is read by the one parser ([`super::view`]): a short or odd
//! message is an error, never a panic.

use std::io;
use std::time::Instant;

pub(crate) use crate::nl::build::{Msg, ifaddrmsg, ifinfomsg, ndtmsg, rtmsg};
pub(crate) use crate::nl::consts::*;
use crate::nl::{Socket, error_msg, messages};

pub(crate) use crate::nl::LinkInfo;

/// One message of a received datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `NLMSG_ERROR`: errno 0 is an ACK; `message` is the extended ack text.
    Ack {
        seq: u32,
        errno: i32,
        message: Option<String>,
    },
    /// `RTM_NEWLINK` (a `RTM_GETLINK` answer or a notification; `pid` is
    /// the port id of the request that caused it, 0 for the kernel's own).
    Link { seq: u32, pid: u32, link: LinkInfo },
    /// Anything else (ignored).
    Other,
}

/// Parses every message of one datagram.
pub(crate) fn parse(datagram: &[u8]) -> Result<Vec<Reply>, String> {
    let mut out = Vec::new();
    let mut it = messages(datagram);
    for m in it.by_ref() {
        let (seq, pid) = (m.header.seq, m.header.pid);
        match m.header.kind {
            NLMSG_ERROR => {
                let e = error_msg(m.header.flags, m.body).ok_or("short NLMSG_ERROR")?;
                out.push(Reply::Ack {
                    seq,
                    errno: e.errno,
                    message: e.message,
                });
            }
            RTM_NEWLINK => {
                let link = LinkInfo::parse(m.body).map_err(|e| e.to_string())?;
                out.push(Reply::Link { seq, pid, link });
            }
            _ => out.push(Reply::Other),
        }
    }
    if it.malformed() {
        return Err(format!(
            "malformed netlink message in a datagram of {} bytes",
            datagram.len()
        ));
    }
    Ok(out)
}

/// What one request came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done; for `RTM_GETLINK`, the link.
    Ok(Option<LinkInfo>),
    /// The kernel refused it: positive errno and its extended-ack message.
    Err(i32, Option<String>),
}

/// Attach's requests on one [`Socket`] in the namespace of the thread
/// that opened it: batches with one answer each, and the link table.
pub(crate) struct Rtnl {
    sock: Socket,
    seq: u32,
    /// Latest flags seen per link index (replies and notifications).
    links: Vec<LinkInfo>,
    /// Notifications were lost (ENOBUFS): `links` may be stale.
    pub overrun: bool,
    /// [`SLOTS`]' buffers, one after the other.
    buf: Vec<u8>,
    /// The last read filled every slot: more may be queued.
    full: bool,
    /// ENOBUFS reports seen (answers may have been dropped).
    enobufs: u64,
}

/// The sizes of the buffers one read fills, one datagram each: a first
/// large one, then smaller ones (an ACK is 36 bytes, a veth's link message
/// 1.1–1.5 KiB), 64 KiB in all as before — the answers to a batch of
/// attach's requests (up to 8 datagrams with their notifications) in one
/// `recvmmsg`.
const SLOTS: [usize; 9] = [32 * 1024, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096];

impl Rtnl {
    /// Opens a socket subscribed to the multicast `groups` (`RTMGRP_LINK` or 0).
    /// The socket's default receive buffer (`net.core.rmem_default`) is
    /// left as it is: room for one namespace's few links (the container
    /// side of an attach); see [`open_for_groups`](Self::open_for_groups)
    /// for a host's.
    pub(crate) fn open(groups: u32) -> io::Result<Rtnl> {
        let sock = Socket::open(groups)?;
        Ok(Rtnl {
            sock,
            seq: 0,
            links: Vec::new(),
            overrun: false,
            buf: vec![0; SLOTS.iter().sum()],
            full: false,
            enobufs: 0,
        })
    }

    /// Opens a socket in no group with room (1 MiB) for bursts of link
    /// notifications of a host's many links, for one that joins a group
    /// later ([`membership`](Self::membership)).
    pub(crate) fn open_for_groups() -> io::Result<Rtnl> {
        let r = Rtnl::open(0)?;
        let _ = r.sock.set_rcvbuf(1 << 20);
        Ok(r)
    }

    /// Joins or leaves multicast group `group` (`RTNLGRP_*`; see
    /// [`Socket::membership`]).
    pub(crate) fn membership(&self, group: u32, join: bool) -> io::Result<()> {
        self.sock.membership(group, join)
    }

    /// Ready for a new user: drops every queued datagram (notifications of
    /// a group it has left; an ENOBUFS is only counted past), the link
    /// table and the overrun flag. A socket whose last request went
    /// unanswered must not be reused (its answer could still arrive).
    pub(crate) fn clear(&mut self) -> io::Result<()> {
        loop {
            match self.sock.recv(&mut self.buf) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(e) => return Err(e),
            }
        }
        self.links.clear();
        self.overrun = false;
        Ok(())
    }

    pub(crate) fn raw_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.sock.as_raw_fd()
    }

    /// The latest state seen of link `index`.
    pub(crate) fn link(&self, index: u32) -> Option<&LinkInfo> {
        self.links.iter().find(|l| l.index == index)
    }

    fn note_link(&mut self, link: LinkInfo) {
        match self.links.iter_mut().find(|l| l.index == link.index) {
            Some(l) => *l = link,
            None => self.links.push(link),
        }
    }

    /// Sends `msgs` in one `sendmsg`, the last one only asking for an ACK
    /// (see the module docs); returns their sequence numbers.
    pub(crate) fn send(&mut self, msgs: Vec<Msg>, deadline: Instant) -> io::Result<Vec<u32>> {
        let mut out = Vec::with_capacity(msgs.len() * 64);
        let mut seqs = Vec::with_capacity(msgs.len());
        let last = msgs.len().saturating_sub(1);
        for (i, m) in msgs.into_iter().enumerate() {
            self.seq = self.seq.wrapping_add(1).max(1);
            seqs.push(self.seq);
            m.finish_into(self.seq, i == last, &mut out);
        }
        self.sock.send_blocking(&out, deadline)?;
        Ok(seqs)
    }

    /// Waits (until `deadline`) for datagrams and handles what is queued
    /// then, up to [`SLOTS`] datagrams in one `recvmmsg`: link messages
    /// update the link table; every reply is returned. `Ok(None)` on
    /// timeout. A notification too large for its slot is counted as lost
    /// (`overrun`: the caller asks for the link again); an answer to our
    /// own request that does not fit is an error.
    pub(crate) fn recv(&mut self, deadline: Instant) -> io::Result<Option<Vec<Reply>>> {
        loop {
            if let Some(replies) = self.recv_queued()? {
                return Ok(Some(replies));
            }
            if !crate::nl::poll_readable(&[self.raw_fd()], deadline)? {
                return Ok(None);
            }
        }
    }

    /// Reads (and handles) what is queued now, without waiting; returns
    /// once the queue is empty (a read that did not fill every slot).
    pub(crate) fn drain(&mut self) -> io::Result<()> {
        while self.recv_queued()?.is_some() && self.full {}
        Ok(())
    }

    /// One `recvmmsg` of what is queued (see [`recv`](Self::recv)).
    fn recv_queued(&mut self) -> io::Result<Option<Vec<Reply>>> {
        let mut lens = [0usize; SLOTS.len()];
        let got = loop {
            let mut rest = self.buf.as_mut_slice();
            let mut bufs: Vec<&mut [u8]> = Vec::with_capacity(SLOTS.len());
            for size in SLOTS {
                let (slot, tail) = rest.split_at_mut(size.min(rest.len()));
                bufs.push(slot);
                rest = tail;
            }
            match self.sock.recv_many(&mut bufs, &mut lens) {
                Ok(n) => break n,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // Notifications (or answers) were dropped; the socket
                    // goes on.
                    self.overrun = true;
                    self.enobufs += 1;
                }
                Err(e) => return Err(e),
            }
        };
        self.full = got == SLOTS.len();
        if got == 0 {
            return Ok(None);
        }
        let mut replies = Vec::new();
        let mut at = 0;
        for (size, len) in SLOTS.into_iter().zip(lens).take(got) {
            let slot = self.buf.get(at..at + size).unwrap_or_default();
            at += size;
            if len > size {
                // Cut: only its header is certain. Ours (our port id) is an
                // error; a notification is lost, as with ENOBUFS.
                let pid = slot
                    .get(12..16)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_ne_bytes);
                if pid == Some(self.sock.portid()) {
                    return Err(io::Error::other(format!(
                        "netlink message of {len} bytes does not fit the {size}-byte buffer"
                    )));
                }
                self.overrun = true;
                continue;
            }
            replies.extend(parse(slot.get(..len).unwrap_or_default()).map_err(io::Error::other)?);
        }
        for r in &replies {
            if let Reply::Link { link, .. } = r {
                self.note_link(link.clone());
            }
        }
        Ok(Some(replies))
    }

    /// Sends `msgs` in one `sendmsg` and collects one [`Outcome`] per
    /// request, in order: a refusal as the kernel sent it, every request
    /// before the last that was not refused by the time the last one's
    /// answer arrives as done (see the module docs). An unanswered last
    /// request by `deadline` is an error, and so is an overflow (ENOBUFS)
    /// before it: a refusal may have been lost.
    pub(crate) fn transact(
        &mut self,
        msgs: Vec<Msg>,
        deadline: Instant,
    ) -> io::Result<Vec<Outcome>> {
        let enobufs = self.enobufs;
        let seqs = self.send(msgs, deadline)?;
        let last = seqs.len().saturating_sub(1);
        let mut outcomes: Vec<Option<Outcome>> = vec![None; seqs.len()];
        let mut got: Vec<Option<LinkInfo>> = vec![None; seqs.len()];
        let slot = |seq: u32| seqs.iter().position(|s| *s == seq);
        while outcomes.iter().any(Option::is_none) {
            let Some(replies) = self.recv(deadline)? else {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the kernel did not answer a netlink request in time",
                ));
            };
            for r in replies {
                match r {
                    Reply::Ack {
                        seq,
                        errno,
                        message,
                    } => {
                        if let Some(i) = slot(seq) {
                            outcomes[i] = Some(if errno == 0 {
                                Outcome::Ok(got[i].take())
                            } else {
                                Outcome::Err(errno, message)
                            });
                            if i == last {
                                if self.enobufs != enobufs {
                                    return Err(io::Error::other(
                                        "netlink answers were lost (ENOBUFS) during a batch",
                                    ));
                                }
                                for (o, g) in outcomes.iter_mut().zip(got.iter_mut()) {
                                    if o.is_none() {
                                        *o = Some(Outcome::Ok(g.take()));
                                    }
                                }
                            }
                        }
                    }
                    Reply::Link { seq, pid, link } => {
                        // Another process's request may carry the same seq.
                        if pid == self.sock.portid()
                            && let Some(i) = slot(seq)
                            && outcomes[i].is_none()
                        {
                            got[i] = Some(link);
                        }
                    }
                    Reply::Other => {}
                }
            }
        }
        Ok(outcomes.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nl::attrs;
    use crate::nl::parse::{ne_u16, ne_u32};

    #[test]
    fn encodes_nested_attributes_with_lengths_and_padding() {
        let m = Msg::new(RTM_NEWLINK, NLM_F_CREATE, &ifinfomsg(0, IFF_UP, IFF_UP))
            .str(IFLA_IFNAME, "tt1")
            .nest(IFLA_LINKINFO)
            .str(IFLA_INFO_KIND, "veth")
            .nest(IFLA_INFO_DATA)
            .nest(VETH_INFO_PEER)
            .raw(&ifinfomsg(0, 0, 0))
            .u32(IFLA_MTU, 1500)
            .finish(7);
        // nlmsghdr 16 + ifinfomsg 16 + IFNAME 8 + LINKINFO (4 + KIND 12 +
        // DATA (4 + PEER (4 + ifinfomsg 16 + MTU 8))) = 16 + 16 + 8 + 48 = 88.
        assert_eq!(m.len(), 88);
        assert_eq!(ne_u32(&m, 0), Some(88));
        assert_eq!(ne_u16(&m, 4), Some(RTM_NEWLINK));
        assert_eq!(
            ne_u16(&m, 6),
            Some(NLM_F_CREATE | NLM_F_REQUEST | NLM_F_ACK)
        );
        assert_eq!(ne_u32(&m, 8), Some(7));
        // IFNAME: len 8 ("tt1\0"), no padding needed.
        assert_eq!(&m[32..40], &[8, 0, 3, 0, b't', b't', b'1', 0]);
        // LINKINFO nest length covers everything after it.
        assert_eq!(ne_u16(&m, 40), Some(48));
        // KIND "veth\0": len 9, padded to 12.
        assert_eq!(ne_u16(&m, 44), Some(9));
        assert_eq!(ne_u16(&m, 56), Some(32)); // INFO_DATA
        assert_eq!(ne_u16(&m, 60), Some(28)); // VETH_INFO_PEER
        let peer_attrs: Vec<_> = attrs(&m[80..]).collect();
        assert_eq!(peer_attrs, vec![(IFLA_MTU, &1500u32.to_ne_bytes()[..])]);
    }

    /// Root only, in a namespace of its own (this test's thread): more
    /// notifications than one `recvmmsg` has slots for are all read by
    /// `drain`, and the link table holds the last state.
    #[test]
    fn drain_reads_every_queued_datagram() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root");
            return;
        }
        std::thread::spawn(|| {
            // SAFETY: moves only this thread into a new network namespace.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            let mut other = Rtnl::open(0).expect("socket");
            let mut s = Rtnl::open(RTMGRP_LINK).expect("subscribed socket");
            // lo is index 1 in a new namespace; each toggle is notified.
            let toggles = 2 * SLOTS.len() + 1;
            for i in 0..toggles {
                let flags = if i % 2 == 0 { IFF_UP } else { 0 };
                let m = Msg::new(RTM_SETLINK, 0, &ifinfomsg(1, flags, IFF_UP));
                let r = other
                    .transact(vec![m], Instant::now() + std::time::Duration::from_secs(5))
                    .expect("set lo");
                assert_eq!(r, vec![Outcome::Ok(None)]);
            }
            s.drain().expect("drain");
            assert!(
                s.recv_queued().expect("read").is_none(),
                "notifications left after drain"
            );
            assert!(!s.overrun);
            let lo = s.link(1).expect("lo seen");
            assert_ne!(lo.flags & IFF_UP, 0, "the last state (up) is kept");
        })
        .join()
        .expect("the test thread");
    }

    /// Root only, in a namespace of its own (this test's thread): a batch
    /// is answered by one ACK (its last request's) when nothing is
    /// refused, a refusal anywhere in it is reported for its own request
    /// and the others are done.
    #[test]
    fn a_batch_is_acked_once_and_a_refusal_inside_it_is_reported() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root");
            return;
        }
        std::thread::spawn(|| {
            // SAFETY: moves only this thread into a new network namespace.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            let deadline = || Instant::now() + std::time::Duration::from_secs(5);
            let mut s = Rtnl::open(0).expect("socket");
            // lo is index 1 in a new namespace; index 9999 does not exist.
            let lo = |flags| Msg::new(RTM_SETLINK, 0, &ifinfomsg(1, flags, IFF_UP));
            let missing = || Msg::new(RTM_SETLINK, 0, &ifinfomsg(9999, IFF_UP, IFF_UP));

            s.send(vec![lo(IFF_UP), lo(0), lo(IFF_UP)], deadline())
                .expect("send");
            let mut acks = 0;
            while let Some(replies) = s.recv(Instant::now()).expect("recv") {
                acks += replies
                    .iter()
                    .filter(|r| matches!(r, Reply::Ack { .. }))
                    .count();
            }
            assert_eq!(acks, 1, "one ACK for a batch of three");

            let ok = Outcome::Ok(None);
            let r = s
                .transact(vec![lo(IFF_UP), missing(), lo(0)], deadline())
                .expect("batch");
            assert_eq!(r.len(), 3);
            assert_eq!(r[0], ok);
            assert!(matches!(r[1], Outcome::Err(libc::ENODEV, _)), "{r:?}");
            assert_eq!(r[2], ok);
            let r = s
                .transact(vec![missing(), lo(IFF_UP), missing()], deadline())
                .expect("batch");
            assert!(matches!(r[0], Outcome::Err(libc::ENODEV, _)), "{r:?}");
            assert_eq!(r[1], ok);
            assert!(matches!(r[2], Outcome::Err(libc::ENODEV, _)), "{r:?}");
            // A lookup before the last request keeps its answer.
            let get = Msg::new(RTM_GETLINK, 0, &ifinfomsg(1, 0, 0));
            let r = s.transact(vec![get, lo(0)], deadline()).expect("batch");
            assert!(
                matches!(&r[0], Outcome::Ok(Some(l)) if l.index == 1),
                "{r:?}"
            );
            assert_eq!(r[1], ok);
        })
        .join()
        .expect("the test thread");
    }

    fn header(len: u32, kind: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&len.to_ne_bytes());
        h.extend_from_slice(&kind.to_ne_bytes());
        h.extend_from_slice(&flags.to_ne_bytes());
        h.extend_from_slice(&seq.to_ne_bytes());
        h.extend_from_slice(&0u32.to_ne_bytes());
        h
    }

    #[test]
    fn parses_acks_errors_with_text_and_links() {
        // An error with NLM_F_CAPPED | NLM_F_ACK_TLVS and a message TLV.
        let mut e = header(0, NLMSG_ERROR, 0x100 | 0x200, 5);
        e.extend_from_slice(&(-17i32).to_ne_bytes());
        e.extend_from_slice(&header(40, RTM_NEWLINK, 0x605, 5));
        let text = b"File exists\0";
        e.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
        e.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        e.extend_from_slice(text);
        let len = e.len() as u32;
        e[0..4].copy_from_slice(&len.to_ne_bytes());
        // A link with an address and a name.
        let mut l = header(0, RTM_NEWLINK, 0, 0);
        l.extend_from_slice(&ifinfomsg(9, IFF_UP | IFF_RUNNING | IFF_LOWER_UP, 0));
        l.extend_from_slice(&[10, 0, 1, 0, 1, 2, 3, 4, 5, 6, 0, 0]);
        l.extend_from_slice(&[8, 0, 3, 0, b'e', b't', b'h', 0]);
        let len = l.len() as u32;
        l[0..4].copy_from_slice(&len.to_ne_bytes());
        let mut both = e.clone();
        both.extend_from_slice(&l);
        let r = parse(&both).unwrap();
        assert_eq!(
            r[0],
            Reply::Ack {
                seq: 5,
                errno: 17,
                message: Some("File exists".into())
            }
        );
        match &r[1] {
            Reply::Link { seq: 0, link, .. } => {
                assert_eq!(link.index, 9);
                assert!(link.oper_up());
                assert_eq!(link.mac, vec![1, 2, 3, 4, 5, 6]);
                assert_eq!(link.name, "eth");
            }
            other => panic!("{other:?}"),
        }
        // Every truncation is an error or fewer messages, never a panic.
        for cut in 0..both.len() {
            let _ = parse(&both[..cut]);
        }
        // A length field pointing past the end is an error.
        let mut bad = l.clone();
        bad[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(parse(&bad).is_err());
        let mut tiny = l;
        tiny[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(parse(&tiny).is_err());
    }
}
