//! The one `NETLINK_ROUTE` socket type: non-blocking, bound to multicast
//! groups, optional large buffers, `NETLINK_CAP_ACK` (refusals echo only the
//! request's header) and `NETLINK_EXT_ACK` (the kernel's reason as text), a
//! kernel-side filter that drops notifications caused by a given port id.
//! Sends many requests in one `sendmsg` (the kernel processes rtnetlink
//! requests synchronously inside it, so every answer is queued by the time
//! it returns). Synchronous; the reconciler wraps it in tokio's `AsyncFd`,
//! attach and the benchmark wait with [`poll_readable`]. Everything acts in
//! the network namespace of the thread that opened it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    opt: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: plain setsockopt on a valid fd with a pointer to a local int.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A raw, non-blocking `NETLINK_ROUTE` socket.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    portid: u32,
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Socket {
    /// Open and bind a socket subscribed to `groups` (`RTMGRP_*` bits, 0
    /// for none), with `NETLINK_CAP_ACK` and `NETLINK_EXT_ACK` on (best
    /// effort: older kernels answer without the text).
    pub fn open(groups: u32) -> io::Result<Socket> {
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
        for opt in [libc::NETLINK_EXT_ACK, libc::NETLINK_CAP_ACK] {
            let _ = setsockopt_int(raw, libc::SOL_NETLINK, opt, 1);
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
        Ok(Socket {
            fd,
            portid: sa.nl_pid,
        })
    }

    /// Our port id: the kernel's answers, and notifications caused by our
    /// requests, carry it.
    pub fn portid(&self) -> u32 {
        self.portid
    }

    /// Receive buffer of `bytes`: `SO_RCVBUFFORCE` (needs CAP_NET_ADMIN),
    /// else the capped `SO_RCVBUF`.
    pub fn set_rcvbuf(&self, bytes: usize) -> io::Result<()> {
        let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        let fd = self.as_raw_fd();
        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v)
            .or_else(|_| setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, v))
    }

    /// Send buffer of `bytes`, as [`set_rcvbuf`](Self::set_rcvbuf).
    pub fn set_sndbuf(&self, bytes: usize) -> io::Result<()> {
        let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        let fd = self.as_raw_fd();
        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, v)
            .or_else(|_| setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, v))
    }

    /// Joins (`join`) or leaves the multicast group `group` (an
    /// `RTNLGRP_*` number, not a bit): what binding with `groups` does, on
    /// a socket that is already open. Leaving keeps what is queued.
    pub fn membership(&self, group: u32, join: bool) -> io::Result<()> {
        let opt = if join {
            libc::NETLINK_ADD_MEMBERSHIP
        } else {
            libc::NETLINK_DROP_MEMBERSHIP
        };
        let g = libc::c_int::try_from(group).map_err(io::Error::other)?;
        setsockopt_int(self.as_raw_fd(), libc::SOL_NETLINK, opt, g)
    }

    /// Ask the kernel to apply dump filters strictly (Linux ≥ 4.20).
    pub fn set_strict_check(&self) -> io::Result<()> {
        setsockopt_int(
            self.as_raw_fd(),
            libc::SOL_NETLINK,
            super::consts::NETLINK_GET_STRICT_CHK,
            1,
        )
    }

    /// Drop, in the kernel, every notification whose sender port id is
    /// `portid` (another socket's own writes), so they are neither queued
    /// nor read: a classic BPF filter on the first message header of each
    /// datagram (notifications carry one message each).
    pub fn ignore_sender(&self, portid: u32) -> io::Result<()> {
        // BPF_ABS loads are big-endian; nlmsg_pid is in host order.
        let key = if cfg!(target_endian = "little") {
            portid.swap_bytes()
        } else {
            portid
        };
        // pid == key → drop, else keep.
        self.filter_by_sender(key, 0, 1)
    }

    /// Drop, in the kernel, every notification a request caused (sender
    /// port id ≠ 0), keeping the kernel's own: the same filter as
    /// [`ignore_sender`](Self::ignore_sender) run for every event, for a
    /// listener that must cost the kernel what the reconciler's monitor
    /// costs (the kernel benchmark's like-for-like reference writer).
    pub fn ignore_requests(&self) -> io::Result<()> {
        // pid == 0 → keep, else drop.
        self.filter_by_sender(0, 1, 0)
    }

    /// Attach `ld [nlmsg_pid]; jeq #key, jt, jf; ret 0 (drop); ret all`.
    fn filter_by_sender(&self, key: u32, jt: u8, jf: u8) -> io::Result<()> {
        let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        };
        let mut prog = [
            op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 12),
            op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, jt, jf, key),
            op(libc::BPF_RET | libc::BPF_K, 0, 0, 0),
            op(libc::BPF_RET | libc::BPF_K, 0, 0, u32::MAX),
        ];
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_mut_ptr(),
        };
        // SAFETY: the program outlives the call; the kernel copies it.
        let rc = unsafe {
            libc::setsockopt(
                self.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&fprog as *const libc::sock_fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// One `sendto` of `buf` to the kernel (retried on EINTR). A short send
    /// is an error; `WouldBlock` is returned as is (the caller waits for
    /// writability).
    pub fn send(&self, buf: &[u8]) -> io::Result<()> {
        // SAFETY: zeroed sockaddr_nl (pid 0 = the kernel) is valid.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: valid fd, buffer and address of the stated sizes.
            let n = unsafe {
                libc::sendto(
                    self.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    0,
                    (&sa as *const libc::sockaddr_nl).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if n >= 0 {
                return if n as usize == buf.len() {
                    Ok(())
                } else {
                    Err(io::Error::other(format!(
                        "short netlink send: {n} of {} bytes",
                        buf.len()
                    )))
                };
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Send, waiting (until `deadline`) while the socket's buffer is full.
    pub fn send_blocking(&self, buf: &[u8], deadline: Instant) -> io::Result<()> {
        loop {
            match self.send(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !poll(&[self.as_raw_fd()], libc::POLLOUT, deadline)? {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "netlink send buffer stayed full",
                        ));
                    }
                }
                r => return r,
            }
        }
    }

    /// Read one queued datagram into `buf` without waiting: `Ok(None)` when
    /// nothing is queued. ENOBUFS (the kernel dropped notifications) is
    /// returned as an error for the caller to handle; a datagram larger
    /// than `buf` is an error.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            // SAFETY: recv into the caller's buffer of the given length;
            // MSG_TRUNC reports the real size.
            let n = unsafe {
                libc::recv(
                    self.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                )
            };
            if n >= 0 {
                let n = n as usize;
                if n > buf.len() {
                    return Err(io::Error::other(format!(
                        "netlink message of {n} bytes does not fit the {}-byte buffer",
                        buf.len()
                    )));
                }
                return Ok(Some(n));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(None),
                _ => return Err(e),
            }
        }
    }

    /// Reads up to `bufs.len()` queued datagrams in one `recvmmsg`, the
    /// `i`th into `bufs[i]`, without waiting: how many (0 when nothing is
    /// queued; fewer than `bufs.len()` means the queue was empty then).
    /// `lens[i]` gets the `i`th datagram's real size (`MSG_TRUNC`): larger
    /// than `bufs[i]` when it did not fit and was cut. ENOBUFS, as
    /// [`recv`](Self::recv). The answers to one batch of requests are all
    /// queued when its `sendmsg` returns, so one call reads them (was one
    /// `recvfrom` each, lab/bench/README.md, session 17, cniadd2 lane).
    pub fn recv_many(&self, bufs: &mut [&mut [u8]], lens: &mut [usize]) -> io::Result<usize> {
        let n = bufs.len().min(lens.len());
        let mut iov: Vec<libc::iovec> = bufs
            .iter_mut()
            .take(n)
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = iov
            .iter_mut()
            .map(|v| {
                // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_iov = v;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        loop {
            // SAFETY: `msgs` holds `msgs.len()` headers, each pointing at
            // one iovec over a caller's buffer of the stated length, all
            // alive for the call; no timeout.
            let got = unsafe {
                libc::recvmmsg(
                    self.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    msgs.len() as libc::c_uint,
                    libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                    std::ptr::null_mut(),
                )
            };
            if got >= 0 {
                let got = (got as usize).min(msgs.len());
                for (l, m) in lens.iter_mut().zip(&msgs).take(got) {
                    *l = m.msg_len as usize;
                }
                return Ok(got);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(0),
                _ => return Err(e),
            }
        }
    }

    /// [`recv`](Self::recv), waiting until `deadline` for a datagram.
    pub fn recv_until(&self, buf: &mut [u8], deadline: Instant) -> io::Result<Option<usize>> {
        loop {
            if let Some(n) = self.recv(buf)? {
                return Ok(Some(n));
            }
            if !poll_readable(&[self.as_raw_fd()], deadline)? {
                return Ok(None);
            }
        }
    }
}

/// `poll(2)` for readability of any of `fds` until `deadline`; false on timeout.
pub fn poll_readable(fds: &[RawFd], deadline: Instant) -> io::Result<bool> {
    poll(fds, libc::POLLIN, deadline)
}

fn poll(fds: &[RawFd], events: libc::c_short, deadline: Instant) -> io::Result<bool> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events,
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
