//! The sockets of single-hop BFD (RFC 5881): one receive socket per address
//! family on UDP port 3784 that reports each datagram's TTL / hop limit, and
//! one transmit socket per session bound to a source port in 49152–65535
//! that sends with TTL 255 (§4, §5).
//!
//! Thin wrappers over `socket2` and `recvmsg(2)`; the only unsafe code is the
//! control-message walk of [`recv_with_ttl`].

use std::io;
use std::mem::{MaybeUninit, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

/// Destination port of single-hop Control packets (RFC 5881 §4).
pub const CONTROL_PORT: u16 = 3784;
/// Source ports (RFC 5881 §4).
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// TTL / hop limit sent and required (RFC 5881 §5, without authentication).
pub const TTL: u8 = 255;

/// Binds the receive socket of a family on `port` (normally 3784), asking
/// the kernel for every datagram's TTL (IP_RECVTTL / IPV6_RECVHOPLIMIT).
pub fn bind_receiver(v6: bool, port: u16) -> io::Result<UdpSocket> {
    let (domain, addr) = if v6 {
        (
            Domain::IPV6,
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        )
    } else {
        (
            Domain::IPV4,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        )
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if v6 {
        s.set_only_v6(true)?;
        s.set_recv_hoplimit_v6(true)?;
    } else {
        crate::session::socket::setsockopt_int(
            s.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_RECVTTL,
            1,
        )?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// A transmit socket for one session: bound to `local` (or any address) and
/// a free port of 49152–65535 starting at `first`, sending with TTL 255.
pub fn bind_sender(peer: IpAddr, local: Option<IpAddr>, first: u16) -> io::Result<UdpSocket> {
    let v6 = peer.is_ipv6();
    let s = Socket::new(
        Domain::for_address(SocketAddr::new(peer, 0)),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if v6 {
        s.set_unicast_hops_v6(u32::from(TTL))?;
    } else {
        s.set_ttl_v4(u32::from(TTL))?;
    }
    s.set_nonblocking(true)?;
    let ip = match local {
        Some(l) if l.is_ipv6() == v6 => l,
        _ if v6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    let span = u32::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
    let start =
        u32::from(first.clamp(*SOURCE_PORTS.start(), *SOURCE_PORTS.end()) - SOURCE_PORTS.start());
    let mut last = None;
    for i in 0..span {
        let port = SOURCE_PORTS.start() + ((start + i) % span) as u16;
        match s.bind(&SocketAddr::new(ip, port).into()) {
            Ok(()) => return Ok(s.into()),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free BFD source port")))
}

/// One datagram: its length (at most `buf.len()`), source and TTL / hop
/// limit (`None` when the kernel gave none). Non-blocking.
pub fn recv_with_ttl(
    sock: &impl AsRawFd,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<u8>)> {
    let fd = sock.as_raw_fd();
    let mut name = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    // Room for one int-sized control message of either family, aligned.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid; every pointer set below points to
    // a live buffer of the stated length for the duration of the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = name.as_mut_ptr().cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: fd is an open UDP socket; msg is fully initialised above.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ttl = None;
    // SAFETY: the CMSG_* helpers walk the control buffer the kernel filled,
    // bounded by msg_controllen; the data of an IP_TTL / IPV6_HOPLIMIT
    // message is one c_int, read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let h = &*c;
            let is_ttl = (h.cmsg_level == libc::IPPROTO_IP && h.cmsg_type == libc::IP_TTL)
                || (h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_HOPLIMIT);
            if is_ttl
                && h.cmsg_len as usize >= libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as usize
            {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                ttl = u8::try_from(v).ok();
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    // SAFETY: the storage was zeroed and the kernel wrote a sockaddr of the
    // socket's family into it; it is read as that family's struct only.
    let from = unsafe {
        let st = name.assume_init();
        match i32::from(st.ss_family) {
            libc::AF_INET => {
                let a = &*(&st as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr))),
                    u16::from_be(a.sin_port),
                )
            }
            libc::AF_INET6 => {
                let a = &*(&st as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
                SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)),
                    u16::from_be(a.sin6_port),
                )
            }
            _ => {
                return Err(io::Error::other(
                    "BFD datagram without an IP source address",
                ));
            }
        }
    };
    Ok(((n as usize).min(buf.len()), from, ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receiver_sees_the_ttl_of_each_datagram() {
        // Loopback keeps the TTL: 255 from a BFD sender, 1 from a plain one.
        let rx = bind_receiver(false, 0).expect("receiver");
        let port = rx.local_addr().expect("addr").port();
        let to = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let tx = bind_sender(lo, Some(lo), 60000).expect("sender");
        let src = tx.local_addr().expect("addr");
        assert!(SOURCE_PORTS.contains(&src.port()), "{src}");
        tx.send_to(b"bfd", to).expect("send");
        let plain = UdpSocket::bind("127.0.0.1:0").expect("plain");
        plain.set_ttl(1).expect("ttl");
        plain.send_to(b"ttl1", to).expect("send");
        rx.set_nonblocking(false).expect("blocking");
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        let (n, from, ttl) = recv_with_ttl(&rx, &mut buf).expect("recv");
        assert_eq!((&buf[..n], from, ttl), (&b"bfd"[..], src, Some(TTL)));
        let (n, _, ttl) = recv_with_ttl(&rx, &mut buf).expect("recv");
        assert_eq!((&buf[..n], ttl), (&b"ttl1"[..], Some(1)));
    }

    #[test]
    fn ipv6_hop_limit_is_seen_too() {
        let rx = bind_receiver(true, 0).expect("receiver");
        let port = rx.local_addr().expect("addr").port();
        let lo = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let tx = bind_sender(lo, Some(lo), 50000).expect("sender");
        tx.send_to(b"v6", SocketAddr::new(lo, port)).expect("send");
        rx.set_nonblocking(false).expect("blocking");
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        let (n, from, ttl) = recv_with_ttl(&rx, &mut buf).expect("recv");
        assert_eq!(&buf[..n], b"v6");
        assert_eq!(from, tx.local_addr().expect("addr"));
        assert_eq!(ttl, Some(TTL));
    }

    #[test]
    fn senders_take_distinct_source_ports() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let a = bind_sender(lo, Some(lo), 65535).expect("a");
        let b = bind_sender(lo, Some(lo), a.local_addr().expect("a").port()).expect("b");
        let (pa, pb) = (
            a.local_addr().expect("a").port(),
            b.local_addr().expect("b").port(),
        );
        assert_ne!(pa, pb);
        assert!(SOURCE_PORTS.contains(&pa) && SOURCE_PORTS.contains(&pb));
    }
}
