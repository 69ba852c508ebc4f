//! A small synchronous `NETLINK_ROUTE` socket for attach: requests are
//! encoded by hand ([`Msg`]), sent several to one `sendmsg` (the kernel
//! processes rtnetlink requests synchronously inside `sendmsg`, so by the
//! time it returns every answer is queued), and answered one `NLMSG_ERROR`
//! (ACK or errno, with the kernel's extended-ack message) per request.
//! `RTM_NEWLINK` messages that arrive meanwhile, unicast replies to
//! `RTM_GETLINK` and `RTMGRP_LINK` notifications alike, update a small table
//! of link flags, which is what the oper-up wait reads: subscribing before
//! the links are brought up means no transition can be missed (on an
//! overrun the caller asks again with `RTM_GETLINK`).
//!
//! Used by one attach thread at a time; nothing here is shared. Every reply
//! is bounds-checked: a short or odd message is an error, never a panic.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

pub(crate) const RTM_NEWLINK: u16 = 16;
pub(crate) const RTM_DELLINK: u16 = 17;
pub(crate) const RTM_GETLINK: u16 = 18;
pub(crate) const RTM_SETLINK: u16 = 19;
pub(crate) const RTM_NEWADDR: u16 = 20;
pub(crate) const RTM_NEWROUTE: u16 = 24;
pub(crate) const RTM_NEWNEIGH: u16 = 28;
pub(crate) const RTM_SETNEIGHTBL: u16 = 67;

pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_REPLACE: u16 = 0x100;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSG_ERROR: u16 = 2;
const NLMSGERR_ATTR_MSG: u16 = 1;

pub(crate) const IFF_UP: u32 = 0x1;
pub(crate) const IFF_RUNNING: u32 = 0x40;
pub(crate) const IFF_LOWER_UP: u32 = 0x1_0000;

pub(crate) const IFLA_ADDRESS: u16 = 1;
pub(crate) const IFLA_IFNAME: u16 = 3;
pub(crate) const IFLA_MTU: u16 = 4;
pub(crate) const IFLA_LINKINFO: u16 = 18;
pub(crate) const IFLA_AF_SPEC: u16 = 26;
pub(crate) const IFLA_NET_NS_FD: u16 = 28;
pub(crate) const IFLA_EXT_MASK: u16 = 29;
pub(crate) const IFLA_INFO_KIND: u16 = 1;
pub(crate) const IFLA_INFO_DATA: u16 = 2;
pub(crate) const VETH_INFO_PEER: u16 = 1;
pub(crate) const IFLA_INET_CONF: u16 = 1;
pub(crate) const IPV4_DEVCONF_FORWARDING: u16 = 1;
pub(crate) const IPV4_DEVCONF_PROXY_ARP: u16 = 3;
pub(crate) const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
pub(crate) const IFA_ADDRESS: u16 = 1;
pub(crate) const IFA_LOCAL: u16 = 2;
pub(crate) const RTA_DST: u16 = 1;
pub(crate) const RTA_OIF: u16 = 4;
pub(crate) const RTA_GATEWAY: u16 = 5;
pub(crate) const NDA_DST: u16 = 1;
pub(crate) const NDA_LLADDR: u16 = 2;
pub(crate) const NUD_PERMANENT: u16 = 0x80;
pub(crate) const NDTA_NAME: u16 = 1;
pub(crate) const NDTA_PARMS: u16 = 6;
pub(crate) const NDTPA_IFINDEX: u16 = 1;
pub(crate) const NDTPA_PROXY_DELAY: u16 = 13;
pub(crate) const RTMGRP_LINK: u32 = 1;
pub(crate) const RT_SCOPE_UNIVERSE: u8 = 0;
pub(crate) const RT_SCOPE_LINK: u8 = 253;
pub(crate) const RTN_UNICAST: u8 = 1;
pub(crate) const RTPROT_BOOT: u8 = 3;
const AF_INET: u8 = libc::AF_INET as u8;

/// One request under construction: `nlmsghdr`, the family header, attributes.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl Msg {
    /// A request of `kind` with `flags` (`NLM_F_REQUEST | NLM_F_ACK` are
    /// always added) and the family header `header` (padded to 4 bytes).
    pub(crate) fn new(kind: u16, flags: u16, header: &[u8]) -> Msg {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&[0; 4]); // length, set by `finish`
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&[0; 8]); // seq, pid
        buf.extend_from_slice(header);
        buf.resize(align4(buf.len()), 0);
        Msg {
            buf,
            nests: Vec::new(),
        }
    }

    pub(crate) fn attr(mut self, kind: u16, data: &[u8]) -> Msg {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    pub(crate) fn u32(self, kind: u16, v: u32) -> Msg {
        self.attr(kind, &v.to_ne_bytes())
    }

    /// A NUL-terminated string attribute.
    pub(crate) fn str(self, kind: u16, s: &str) -> Msg {
        let mut b = Vec::with_capacity(s.len() + 1);
        b.extend_from_slice(s.as_bytes());
        b.push(0);
        self.attr(kind, &b)
    }

    pub(crate) fn ipv4(self, kind: u16, a: Ipv4Addr) -> Msg {
        self.attr(kind, &a.octets())
    }

    /// Opens a nested attribute; `raw` bytes (a family header) may follow
    /// with [`Msg::raw`]; closed by [`Msg::end`].
    pub(crate) fn nest(mut self, kind: u16) -> Msg {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self
    }

    /// Raw bytes inside the current nest (padded to 4).
    pub(crate) fn raw(mut self, data: &[u8]) -> Msg {
        self.buf.extend_from_slice(data);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    pub(crate) fn end(mut self) -> Msg {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// The finished bytes with sequence number `seq`.
    pub(crate) fn finish(mut self, seq: u32) -> Vec<u8> {
        while !self.nests.is_empty() {
            self = self.end();
        }
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// `struct ifinfomsg`.
pub(crate) fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// `struct ifaddrmsg` (AF_INET).
pub(crate) fn ifaddrmsg(prefix_len: u8, scope: u8, index: u32) -> [u8; 8] {
    let mut h = [AF_INET, prefix_len, 0, scope, 0, 0, 0, 0];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h
}

/// `struct rtmsg` (AF_INET, unicast).
pub(crate) fn rtmsg(dst_len: u8, table: u8, protocol: u8, scope: u8) -> [u8; 12] {
    [
        AF_INET,
        dst_len,
        0,
        0,
        table,
        protocol,
        scope,
        RTN_UNICAST,
        0,
        0,
        0,
        0,
    ]
}

/// `struct ndmsg` (AF_INET).
pub(crate) fn ndmsg(index: u32, state: u16) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0] = AF_INET;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..10].copy_from_slice(&state.to_ne_bytes());
    h
}

/// `struct ndtmsg` (AF_INET).
pub(crate) fn ndtmsg() -> [u8; 4] {
    [AF_INET, 0, 0, 0]
}

/// A link as an `RTM_NEWLINK` message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkInfo {
    pub index: u32,
    pub flags: u32,
    pub mac: Vec<u8>,
    pub name: String,
}

impl LinkInfo {
    /// Operationally up: carrier (`IFF_LOWER_UP`) and `IFF_RUNNING`, which
    /// the kernel's linkwatch sets together with attaching the real qdisc.
    pub(crate) fn oper_up(&self) -> bool {
        self.flags & (IFF_RUNNING | IFF_LOWER_UP) == IFF_RUNNING | IFF_LOWER_UP
    }
}

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

fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Iterates `(kind, payload)` of the attributes in `b`; stops at the first
/// malformed one.
fn attrs(b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let len = ne_u16(b, at)? as usize;
        let kind = ne_u16(b, at + 2)? & 0x3fff;
        let payload = b.get(at + 4..at.checked_add(len)?)?;
        if len < 4 {
            return None;
        }
        at += align4(len);
        Some((kind, payload))
    })
}

/// Parses every message of one datagram.
pub(crate) fn parse(datagram: &[u8]) -> Result<Vec<Reply>, String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 16 <= datagram.len() {
        let len = ne_u32(datagram, at).unwrap_or(0) as usize;
        if len < 16 || at + len > datagram.len() {
            return Err(format!(
                "malformed netlink message (length {len} at {at} of {})",
                datagram.len()
            ));
        }
        let kind = ne_u16(datagram, at + 4).unwrap_or(0);
        let flags = ne_u16(datagram, at + 6).unwrap_or(0);
        let seq = ne_u32(datagram, at + 8).unwrap_or(0);
        let pid = ne_u32(datagram, at + 12).unwrap_or(0);
        let body = &datagram[at + 16..at + len];
        match kind {
            NLMSG_ERROR => {
                let code = ne_u32(body, 0).ok_or("short NLMSG_ERROR")? as i32;
                let mut message = None;
                if flags & NLM_F_ACK_TLVS != 0 {
                    // The original request's header follows (capped: no payload).
                    let orig_len = ne_u32(body, 4).unwrap_or(0) as usize;
                    let skip = if flags & 0x100 != 0 {
                        4 + 16 // NLM_F_CAPPED
                    } else {
                        4 + align4(orig_len)
                    };
                    if let Some(tlvs) = body.get(skip..) {
                        message =
                            attrs(tlvs)
                                .find(|(k, _)| *k == NLMSGERR_ATTR_MSG)
                                .map(|(_, v)| {
                                    String::from_utf8_lossy(v)
                                        .trim_end_matches('\0')
                                        .to_string()
                                });
                    }
                }
                out.push(Reply::Ack {
                    seq,
                    errno: code.saturating_neg(),
                    message,
                });
            }
            RTM_NEWLINK => {
                let index = ne_u32(body, 4).ok_or("short RTM_NEWLINK")?;
                let flags = ne_u32(body, 8).ok_or("short RTM_NEWLINK")?;
                let mut link = LinkInfo {
                    index,
                    flags,
                    mac: Vec::new(),
                    name: String::new(),
                };
                for (k, v) in attrs(body.get(16..).unwrap_or_default()) {
                    match k {
                        IFLA_ADDRESS => link.mac = v.to_vec(),
                        IFLA_IFNAME => {
                            link.name = String::from_utf8_lossy(v).trim_end_matches('\0').into()
                        }
                        _ => {}
                    }
                }
                out.push(Reply::Link { seq, pid, link });
            }
            _ => out.push(Reply::Other),
        }
        at += align4(len);
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

/// A raw `NETLINK_ROUTE` socket in the namespace of the thread that opened it.
pub(crate) struct Rtnl {
    fd: OwnedFd,
    /// Our port id (the kernel's answers to our requests carry it).
    portid: u32,
    seq: u32,
    /// Latest flags seen per link index (replies and notifications).
    links: Vec<LinkInfo>,
    /// Notifications were lost (ENOBUFS): `links` may be stale.
    pub overrun: bool,
    buf: Vec<u8>,
}

impl Rtnl {
    /// Opens a socket subscribed to the multicast `groups` (`RTMGRP_LINK` or 0).
    pub(crate) fn open(groups: u32) -> io::Result<Rtnl> {
        // SAFETY: plain socket(2); the fd is owned right away.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        for opt in [libc::NETLINK_EXT_ACK, libc::NETLINK_CAP_ACK] {
            // Best effort: older kernels answer without the text.
            // SAFETY: valid fd, pointer to a c_int of the given size.
            unsafe {
                libc::setsockopt(
                    raw,
                    libc::SOL_NETLINK,
                    opt,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        if groups != 0 {
            let size: libc::c_int = 1 << 20;
            // Room for bursts of link notifications (best effort).
            // SAFETY: as above.
            unsafe {
                libc::setsockopt(
                    raw,
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        // SAFETY: zeroed sockaddr_nl is a valid value.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        sa.nl_groups = groups;
        // SAFETY: valid fd and a sockaddr_nl of the stated size.
        let rc = unsafe {
            libc::bind(
                raw,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: valid fd; `sa` and `len` describe a sockaddr_nl.
        let rc =
            unsafe { libc::getsockname(raw, (&mut sa as *mut libc::sockaddr_nl).cast(), &mut len) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Rtnl {
            fd,
            portid: sa.nl_pid,
            seq: 0,
            links: Vec::new(),
            overrun: false,
            buf: vec![0; 64 * 1024],
        })
    }

    pub(crate) fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
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

    /// Sends `msgs` in one `sendmsg`; returns their sequence numbers.
    pub(crate) fn send(&mut self, msgs: Vec<Msg>) -> io::Result<Vec<u32>> {
        let mut out = Vec::with_capacity(msgs.len() * 64);
        let mut seqs = Vec::with_capacity(msgs.len());
        for m in msgs {
            self.seq = self.seq.wrapping_add(1).max(1);
            seqs.push(self.seq);
            out.extend_from_slice(&m.finish(self.seq));
        }
        // SAFETY: zeroed sockaddr_nl (pid 0 = the kernel) is valid.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: valid fd, buffer and address of the stated sizes.
            let n = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    out.as_ptr().cast(),
                    out.len(),
                    0,
                    (&sa as *const libc::sockaddr_nl).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if n >= 0 {
                return if n as usize == out.len() {
                    Ok(seqs)
                } else {
                    Err(io::Error::other(format!(
                        "netlink sendto wrote {n} of {} bytes",
                        out.len()
                    )))
                };
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Waits (until `deadline`) for one datagram and handles it: link
    /// messages update the link table; ACKs are returned. `Ok(None)` on
    /// timeout.
    pub(crate) fn recv(&mut self, deadline: Instant) -> io::Result<Option<Vec<Reply>>> {
        loop {
            // SAFETY: valid fd and buffer; MSG_TRUNC reports the real size.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            if n >= 0 {
                let n = n as usize;
                if n > self.buf.len() {
                    return Err(io::Error::other(format!(
                        "netlink message of {n} bytes does not fit the {}-byte buffer",
                        self.buf.len()
                    )));
                }
                let replies = parse(&self.buf[..n]).map_err(io::Error::other)?;
                for r in &replies {
                    if let Reply::Link { link, .. } = r {
                        self.note_link(link.clone());
                    }
                }
                return Ok(Some(replies));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ENOBUFS) => {
                    // Notifications were dropped; the socket goes on.
                    self.overrun = true;
                    continue;
                }
                Some(libc::EAGAIN) => {
                    if !poll_readable(&[self.fd.as_raw_fd()], deadline)? {
                        return Ok(None);
                    }
                }
                _ => return Err(e),
            }
        }
    }

    /// Sends `msgs` in one `sendmsg` and collects one [`Outcome`] per
    /// request, in order. An unanswered request by `deadline` is an error.
    pub(crate) fn transact(
        &mut self,
        msgs: Vec<Msg>,
        deadline: Instant,
    ) -> io::Result<Vec<Outcome>> {
        let seqs = self.send(msgs)?;
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
                        }
                    }
                    Reply::Link { seq, pid, link } => {
                        // Another process's request may carry the same seq.
                        if pid == self.portid
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

/// `poll(2)` for readability of any of `fds` until `deadline`; false on timeout.
pub(crate) fn poll_readable(fds: &[i32], deadline: Instant) -> io::Result<bool> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: valid pollfd array of the stated length.
        let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if rc > 0 {
            return Ok(true);
        }
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
