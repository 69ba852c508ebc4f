//! Socket options and socket creation for sessions: TCP MD5 signatures
//! (RFC 2385), GTSM (RFC 5082), the listener and outgoing connections.
//!
//! Everything here is a thin wrapper over `setsockopt` through `socket2`/`libc`;
//! errors say which option failed for which peer.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::BgpError;

/// Longest key the kernel accepts (TCP_MD5SIG_MAXKEYLEN).
pub const MD5_MAX_KEY_LEN: usize = 80;

/// `struct tcp_md5sig` from linux/tcp.h (not in the libc crate).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; MD5_MAX_KEY_LEN],
}

/// Installs (or, with `key` None/empty, removes) the TCP MD5 key for `peer`
/// on `fd` (RFC 2385). On a listener this is one entry per peer; accepted
/// connections inherit it.
pub fn set_md5(fd: RawFd, peer: IpAddr, key: Option<&[u8]>) -> io::Result<()> {
    let key = key.unwrap_or(&[]);
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "TCP MD5 key is {} bytes, at most {MD5_MAX_KEY_LEN} allowed",
                key.len()
            ),
        ));
    }
    // SAFETY: an all-zero tcp_md5sig is a valid value (plain C struct).
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    let sa = SockAddr::from(SocketAddr::new(peer, 0));
    let sa_len = (sa.len() as usize).min(size_of::<libc::sockaddr_storage>());
    // SAFETY: copies sa_len <= sizeof(sockaddr_storage) bytes from a valid
    // sockaddr into the zeroed storage; the regions do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sa.as_ptr().cast::<u8>(),
            (&mut sig.addr as *mut libc::sockaddr_storage).cast::<u8>(),
            sa_len,
        );
    }
    sig.keylen = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: fd is a TCP socket owned by the caller; sig is a properly sized
    // and initialised tcp_md5sig.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            (&sig as *const TcpMd5Sig).cast(),
            size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub(crate) fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: plain integer socket option on a socket owned by the caller.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// GTSM (RFC 5082 §3): send with TTL/hop limit 255 and drop anything that
/// arrives with less than 256 - `hops`.
pub fn set_gtsm(fd: RawFd, v6: bool, hops: u8) -> io::Result<()> {
    let min = 256 - i32::from(hops.max(1));
    if v6 {
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, 255)?;
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, min)
    } else {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TTL, 255)?;
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_MINTTL, min)
    }
}

/// Sends with TTL / hop limit 255 from this socket (a GTSM listener: its
/// SYN-ACKs must arrive with TTL 255 at a peer that set IP_MINTTL).
pub fn set_ttl_255(fd: RawFd, v6: bool) -> io::Result<()> {
    if v6 {
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, 255)?;
        // Also covers IPv4 peers on a dual-stack socket.
        let _ = setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TTL, 255);
        Ok(())
    } else {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TTL, 255)
    }
}

/// Binds the session listener (SO_REUSEADDR; IPV6_V6ONLY off on `[::]` so one
/// socket serves both families).
pub fn bind_listener(addr: SocketAddr) -> Result<TcpListener, BgpError> {
    let ctx = |what: &str| format!("BGP listener on {addr}: {what}");
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| BgpError::io(ctx("socket"), e))?;
    sock.set_reuse_address(true)
        .map_err(|e| BgpError::io(ctx("SO_REUSEADDR"), e))?;
    if addr.is_ipv6() {
        sock.set_only_v6(false)
            .map_err(|e| BgpError::io(ctx("IPV6_V6ONLY"), e))?;
    }
    sock.set_nonblocking(true)
        .map_err(|e| BgpError::io(ctx("O_NONBLOCK"), e))?;
    sock.bind(&addr.into())
        .map_err(|e| BgpError::io(ctx("bind"), e))?;
    sock.listen(128)
        .map_err(|e| BgpError::io(ctx("listen"), e))?;
    TcpListener::from_std(sock.into()).map_err(|e| BgpError::io(ctx("register with tokio"), e))
}

/// Options for one outgoing connection.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub remote: SocketAddr,
    pub local: Option<IpAddr>,
    pub password: Option<Vec<u8>>,
    pub ttl_security: Option<u8>,
    /// TTL of the session's packets when GTSM is off (eBGP multihop).
    pub ttl: Option<u8>,
}

/// Opens an outgoing session connection with MD5/GTSM set before the SYN.
pub async fn connect(opts: &ConnectOptions) -> io::Result<TcpStream> {
    let remote = opts.remote;
    let sock = if remote.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    let fd = sock.as_raw_fd();
    if let Some(local) = opts.local
        && local.is_ipv4() == remote.is_ipv4()
    {
        sock.bind(SocketAddr::new(local, 0))?;
    }
    if let Some(key) = opts.password.as_deref() {
        set_md5(fd, remote.ip(), Some(key))?;
    }
    if let Some(h) = opts.ttl_security {
        set_gtsm(fd, remote.is_ipv6(), h)?;
    } else if let Some(t) = opts.ttl {
        set_ttl(fd, remote.is_ipv6(), t)?;
    }
    let stream = sock.connect(remote).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sends with this TTL / hop limit (eBGP multihop; 1: directly connected).
pub fn set_ttl(fd: RawFd, v6: bool, ttl: u8) -> io::Result<()> {
    let ttl = i32::from(ttl.max(1));
    if v6 {
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, ttl)
    } else {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TTL, ttl)
    }
}

/// Prepares an accepted connection for `peer`'s GTSM or TTL setting.
pub fn prepare_accepted(
    stream: &TcpStream,
    ttl_security: Option<u8>,
    ttl: Option<u8>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    // A v4-mapped peer on a dual-stack socket travels as IPv4: IP_* options.
    let v6 = match stream.peer_addr()?.ip() {
        IpAddr::V6(a) => a.to_ipv4_mapped().is_none(),
        IpAddr::V4(_) => false,
    };
    if let Some(h) = ttl_security {
        set_gtsm(stream.as_raw_fd(), v6, h)?;
    } else if let Some(t) = ttl {
        set_ttl(stream.as_raw_fd(), v6, t)?;
    }
    Ok(())
}
