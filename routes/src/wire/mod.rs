//! The reconciler's netlink plumbing on top of [`crate::nl`]: decode a
//! dumped or notified route into a [`KernelRoute`] (with the rtnetlink
//! crates' codec, `netlink-packet-route`), and [`NlSocket`], an
//! [`nl::Socket`] driven by tokio that sends many requests in one
//! `sendmsg` (the kernel processes the whole buffer synchronously, so the
//! errors are queued by the time `sendmsg` returns) and reads dumps and
//! multicast notifications. Route requests are encoded by
//! [`nl::RouteEncoder`] straight into the send buffer and sent without
//! `NLM_F_ACK`: the kernel only answers failures, each answer carrying the
//! request's sequence number.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteNextHopFlags, RouteScope,
    RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use tokio::io::unix::AsyncFd;

use crate::nl::{self, consts::NLM_F_DUMP_INTR};
use crate::types::{KernelRoute, NextHop};

pub use crate::nl::consts::RT_TABLE_MAIN;

/// A decoded route of either family: what the reconciler needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodedRoute {
    pub prefix: IpNetwork,
    pub table: u32,
    pub protocol: u8,
    pub priority: u32,
    pub tos: u8,
    /// `None` for route types we never install (local, broadcast, ...).
    pub route: Option<KernelRoute>,
    /// Output interfaces referenced (for link-down handling).
    pub oifs: Vec<u32>,
}

/// The metric the kernel gives a route added without `RTA_PRIORITY`: 0 for
/// IPv4, 1024 for IPv6 (`IP6_RT_PRIO_USER`). Our routes carry it.
const IP6_RT_PRIO_USER: u32 = 1024;

impl DecodedRoute {
    /// Whether the route has the family's default metric, as ours do (the
    /// only metric at which a route of another protocol can collide).
    pub(crate) fn default_metric(&self) -> bool {
        match self.prefix {
            IpNetwork::V4(_) => self.priority == 0,
            IpNetwork::V6(_) => self.priority == IP6_RT_PRIO_USER || self.priority == 0,
        }
    }
}

fn addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// Decode an IPv4 or IPv6 route message. `ifname` maps an ifindex to its
/// name. IPv6 routes are dumped with scope universe whatever was asked, so
/// a device route without gateway is a [`KernelRoute::Local`] there at any
/// scope; an IPv4 one only at scope link.
pub(crate) fn decode_route(
    msg: &RouteMessage,
    ifname: &dyn Fn(u32) -> Option<String>,
) -> Option<DecodedRoute> {
    let v6 = match msg.header.address_family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return None,
    };
    let mut dst = if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let mut table = u32::from(msg.header.table);
    let mut gateway = None;
    let mut oif = None;
    let mut priority = 0;
    let mut multipath = None;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(a) => dst = addr(a).unwrap_or(dst),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Gateway(g) => gateway = addr(g),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => priority = *p,
            RouteAttribute::MultiPath(hops) => multipath = Some(hops),
            _ => {}
        }
    }
    if dst.is_ipv6() != v6 {
        return None;
    }
    let prefix = IpNetwork::new(dst, msg.header.destination_prefix_length).ok()?;
    let name = |i: u32| ifname(i).unwrap_or_else(|| format!("#{i}"));
    let mut oifs = Vec::new();
    let route = match msg.header.kind {
        RouteType::BlackHole => Some(KernelRoute::Blackhole),
        RouteType::Unicast => {
            if let Some(hops) = multipath {
                let mut next_hops = Vec::with_capacity(hops.len());
                for hop in hops {
                    let gw = hop.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Gateway(g) => addr(g),
                        _ => None,
                    });
                    if hop.interface_index != 0 {
                        oifs.push(hop.interface_index);
                    }
                    let unspecified = if v6 {
                        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                    } else {
                        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                    };
                    next_hops.push(NextHop {
                        gateway: gw.unwrap_or(unspecified),
                        dev: (hop.interface_index != 0).then(|| name(hop.interface_index)),
                        onlink: hop.flags.contains(RouteNextHopFlags::Onlink),
                    });
                }
                Some(KernelRoute::Unicast { next_hops })
            } else if let Some(gateway) = gateway {
                oifs.extend(oif);
                Some(KernelRoute::Unicast {
                    next_hops: vec![NextHop {
                        gateway,
                        dev: oif.map(name),
                        onlink: msg.header.flags.contains(RouteFlags::Onlink),
                    }],
                })
            } else if let Some(i) = oif.filter(|_| v6 || msg.header.scope == RouteScope::Link) {
                oifs.push(i);
                Some(KernelRoute::Local { dev: name(i) })
            } else {
                oifs.extend(oif);
                None
            }
        }
        _ => None,
    };
    Some(DecodedRoute {
        prefix,
        table,
        protocol: u8::from(msg.header.protocol),
        priority,
        tos: msg.header.tos,
        route: route.map(KernelRoute::normalized),
        oifs,
    })
}

/// An [`nl::Socket`] driven by tokio.
pub(crate) struct NlSocket {
    fd: AsyncFd<nl::Socket>,
    seq: u32,
    rbuf: Vec<u8>,
}

/// One received netlink message, with the header fields we route on.
pub(crate) struct Received {
    pub header: NetlinkHeader,
    pub payload: NetlinkPayload<RouteNetlinkMessage>,
}

/// Result of reading everything that is queued.
pub(crate) enum Drain {
    /// All queued messages were read.
    Empty,
    /// The kernel dropped messages (ENOBUFS): state must be re-dumped.
    Overrun,
}

impl NlSocket {
    /// Open a socket in the calling thread's network namespace, joined to
    /// `groups` (a bitmask of RTMGRP_* values, 0 for none). Buffers are made
    /// large: big batches of failures, and bursts of notifications, must fit.
    pub(crate) fn open(groups: u32, rcvbuf: usize) -> io::Result<NlSocket> {
        let sock = nl::Socket::open(groups)?;
        sock.set_rcvbuf(rcvbuf)?;
        sock.set_sndbuf(4 << 20)?;
        Ok(NlSocket {
            // SAFETY: the socket is moved into the AsyncFd and owned by it, so
            // the descriptor stays open for as long as it is registered.
            fd: unsafe { AsyncFd::register(sock) }?,
            seq: 1,
            rbuf: vec![0; 1 << 20],
        })
    }

    /// See [`nl::Socket::ignore_sender`].
    pub(crate) fn ignore_sender(&self, portid: u32) -> io::Result<()> {
        self.fd.get_ref().ignore_sender(portid)
    }

    /// Our netlink port id: notifications caused by our requests carry it.
    pub(crate) fn portid(&self) -> u32 {
        self.fd.get_ref().portid()
    }

    /// Next sequence number.
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Reserve `n` consecutive sequence numbers; returns the first.
    pub(crate) fn reserve_seqs(&mut self, n: usize) -> u32 {
        let base = self.next_seq();
        self.seq = base.wrapping_add(u32::try_from(n).unwrap_or(u32::MAX));
        base
    }

    /// Serialize one request into `out`. `replace` adds CREATE|REPLACE.
    pub(crate) fn encode(
        &self,
        out: &mut Vec<u8>,
        seq: u32,
        msg: RouteNetlinkMessage,
        extra_flags: u16,
    ) {
        let mut nl = NetlinkMessage::from(msg);
        nl.header.flags = NLM_F_REQUEST | extra_flags;
        nl.header.sequence_number = seq;
        nl.finalize();
        let start = out.len();
        out.resize(start + nl.buffer_len(), 0);
        if let Some(slot) = out.get_mut(start..) {
            nl.serialize(slot);
        }
    }

    /// Send a buffer of requests in one `sendmsg`.
    pub(crate) async fn send(&self, buf: &[u8]) -> io::Result<()> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|s| s.get_ref().send(buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Read every message already queued, without waiting.
    pub(crate) fn drain(&mut self, out: &mut Vec<Received>) -> io::Result<Drain> {
        loop {
            match self.recv_once(out, false) {
                Ok(true) => continue,
                Ok(false) => return Ok(Drain::Empty),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(Drain::Overrun),
                Err(e) => return Err(e),
            }
        }
    }

    /// Like [`drain`](Self::drain) but only parses messages not sent by
    /// `skip_portid`; the others are counted and dropped unparsed (cheap).
    pub(crate) fn drain_filtered(
        &mut self,
        out: &mut Vec<Received>,
        skip_portid: u32,
    ) -> io::Result<Drain> {
        loop {
            match self.recv_filtered(out, skip_portid) {
                Ok(true) => continue,
                Ok(false) => return Ok(Drain::Empty),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(Drain::Overrun),
                Err(e) => return Err(e),
            }
        }
    }

    /// Wait until the socket is readable.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        let mut guard = self.fd.readable().await?;
        guard.clear_ready_matching(tokio::io::Ready::READABLE);
        Ok(())
    }

    fn recv_raw(&mut self) -> io::Result<Option<usize>> {
        self.fd.get_ref().recv(&mut self.rbuf)
    }

    fn recv_filtered(&mut self, out: &mut Vec<Received>, skip: u32) -> io::Result<bool> {
        let Some(n) = self.recv_raw()? else {
            return Ok(false);
        };
        parse_buffer(self.rbuf.get(..n).unwrap_or(&[]), Some(skip), out);
        Ok(true)
    }

    fn recv_once(&mut self, out: &mut Vec<Received>, _wait: bool) -> io::Result<bool> {
        let Some(n) = self.recv_raw()? else {
            return Ok(false);
        };
        parse_buffer(self.rbuf.get(..n).unwrap_or(&[]), None, out);
        Ok(true)
    }

    /// Dump a table (`RTM_GETROUTE` or `RTM_GETLINK` request given as
    /// `request`); returns the inner messages. Retries when the kernel flags
    /// the dump as interrupted.
    pub(crate) async fn dump(
        &mut self,
        request: RouteNetlinkMessage,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        'again: for _attempt in 0..5 {
            let seq = self.next_seq();
            let mut buf = Vec::new();
            self.encode(&mut buf, seq, request.clone(), NLM_F_DUMP);
            self.send(&buf).await?;
            let mut result = Vec::new();
            let mut msgs = Vec::new();
            loop {
                msgs.clear();
                let got = self.recv_once(&mut msgs, true);
                match got {
                    Ok(true) => {}
                    Ok(false) => {
                        self.readable().await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                for m in msgs.drain(..) {
                    if m.header.sequence_number != seq {
                        continue;
                    }
                    if m.header.flags & NLM_F_DUMP_INTR != 0 {
                        // Drain the rest of this dump, then start over.
                        if matches!(m.payload, NetlinkPayload::Done(_)) {
                            continue 'again;
                        }
                    }
                    match m.payload {
                        NetlinkPayload::Done(_) => return Ok(result),
                        NetlinkPayload::Error(e) => {
                            if let Some(code) = e.code {
                                return Err(io::Error::from_raw_os_error(-code.get()));
                            }
                        }
                        NetlinkPayload::InnerMessage(inner) => result.push(inner),
                        _ => {}
                    }
                }
            }
        }
        Err(io::Error::other(
            "netlink dump interrupted five times in a row",
        ))
    }
}

/// Split a datagram into netlink messages. With `skip`, messages whose
/// header port id equals it are not parsed.
fn parse_buffer(mut buf: &[u8], skip: Option<u32>, out: &mut Vec<Received>) {
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < 16 || len > buf.len() {
            return;
        }
        let pid = u32::from_ne_bytes([buf[12], buf[13], buf[14], buf[15]]);
        let this = &buf[..len];
        if skip != Some(pid) || pid == 0 {
            match NetlinkMessage::<RouteNetlinkMessage>::deserialize(this) {
                Ok(m) => out.push(Received {
                    header: m.header,
                    payload: m.payload,
                }),
                Err(e) => tracing::debug!("undecodable netlink message: {e}"),
            }
        }
        let step = (len + 3) & !3;
        buf = buf.get(step..).unwrap_or(&[]);
    }
}

/// The kernel's extended-ack text of an error message (`flags`: its
/// netlink header's), when it sent one.
pub(crate) fn error_text(flags: u16, e: &rtnetlink::packet_core::ErrorMessage) -> Option<String> {
    let mut body = e.raw_code().to_ne_bytes().to_vec();
    body.extend_from_slice(&e.header);
    nl::error_msg(flags, &body)?.message
}

/// The sequence number of the request an error message answers.
pub(crate) fn error_seq(e: &rtnetlink::packet_core::ErrorMessage) -> Option<u32> {
    let h = e.header.get(8..12)?;
    Some(u32::from_ne_bytes([h[0], h[1], h[2], h[3]]))
}

#[cfg(test)]
mod tests;
