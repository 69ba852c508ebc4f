//! The socket's tokio mode: an [`nl::Socket`](super::Socket) registered
//! with tokio's reactor (`AsyncFd`), for the reconciler — its command
//! socket (pipelined route batches, dumps) and its multicast subscription
//! (notifications of links, addresses, routes, neighbours) — and for the
//! listings that run on the runtime (attach's start-up listing).
//!
//! Sends many requests in one `sendmsg` (the kernel processes the whole
//! buffer synchronously, so its answers are queued by the time `sendmsg`
//! returns); [`AsyncSocket::drain_into`] copies every queued datagram into
//! the caller's buffer, which the caller then walks with
//! [`messages`](super::messages) and [`decode`](super::decode), so a
//! datagram is parsed where it is used, with the caller's state at hand.

use std::io;

use tokio::io::unix::AsyncFd;

use super::build::align4;
use super::dump::{DumpReader, Part, Step, interrupted_too_often, set_seq};
use super::socket::Socket;

/// Result of reading everything that is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// All queued datagrams were read.
    Empty,
    /// The kernel dropped messages (ENOBUFS): state must be re-dumped.
    Overrun,
}

/// A [`Socket`] driven by tokio, with its sequence numbers and receive
/// buffer.
pub struct AsyncSocket {
    fd: AsyncFd<Socket>,
    seq: u32,
    rbuf: Vec<u8>,
}

impl AsyncSocket {
    /// Open a socket in the calling thread's network namespace, joined to
    /// `groups` (`RTMGRP_*` bits, 0 for none), with a receive buffer of
    /// `rcvbuf` bytes and a 4 MiB send buffer (big batches of failures, and
    /// bursts of notifications, must fit). Needs a tokio runtime.
    pub fn open(groups: u32, rcvbuf: usize) -> io::Result<AsyncSocket> {
        let sock = Socket::open(groups)?;
        sock.set_rcvbuf(rcvbuf)?;
        sock.set_sndbuf(4 << 20)?;
        Ok(AsyncSocket {
            // SAFETY: the socket is moved into the AsyncFd and owned by it, so
            // the descriptor stays open for as long as it is registered.
            fd: unsafe { AsyncFd::register(sock) }?,
            seq: 1,
            rbuf: vec![0; 1 << 20],
        })
    }

    /// The synchronous socket underneath.
    pub fn get_ref(&self) -> &Socket {
        self.fd.get_ref()
    }

    /// Our netlink port id: notifications caused by our requests carry it.
    pub fn portid(&self) -> u32 {
        self.get_ref().portid()
    }

    /// Next sequence number.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Reserve `n` consecutive sequence numbers; returns the first.
    pub fn reserve_seqs(&mut self, n: usize) -> u32 {
        let base = self.next_seq();
        self.seq = base.wrapping_add(u32::try_from(n).unwrap_or(u32::MAX));
        base
    }

    /// Send a buffer of requests in one `sendmsg`.
    pub async fn send(&self, buf: &[u8]) -> io::Result<()> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|s| s.get_ref().send(buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Wait until the socket is readable.
    pub async fn readable(&self) -> io::Result<()> {
        let mut guard = self.fd.readable().await?;
        guard.clear_ready_matching(tokio::io::Ready::READABLE);
        Ok(())
    }

    /// Append every datagram already queued to `out` (each padded to 4
    /// bytes, so `out` walks as one run of messages), without waiting.
    pub fn drain_into(&mut self, out: &mut Vec<u8>) -> io::Result<Drain> {
        loop {
            match self.fd.get_ref().recv(&mut self.rbuf) {
                Ok(Some(n)) => {
                    out.extend_from_slice(self.rbuf.get(..n).unwrap_or_default());
                    out.resize(out.len() + (align4(n) - n), 0);
                }
                Ok(None) => return Ok(Drain::Empty),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(Drain::Overrun),
                Err(e) => return Err(e),
            }
        }
    }

    /// Send the dump `request` ([`super::dump::request`]) and hand every
    /// part of the answer to `f` (see [`Part`]); asked again when the
    /// kernel flags it interrupted.
    pub async fn dump(
        &mut self,
        request: &[u8],
        f: &mut (dyn FnMut(Part<'_>) + Send),
    ) -> io::Result<()> {
        let mut req = request.to_vec();
        for _ in 0..super::dump::ATTEMPTS {
            let seq = self.next_seq();
            set_seq(&mut req, seq);
            self.send(&req).await?;
            let mut reader = DumpReader::new(seq);
            loop {
                let n = match self.fd.get_ref().recv(&mut self.rbuf)? {
                    Some(n) => n,
                    None => {
                        self.readable().await?;
                        continue;
                    }
                };
                match reader.feed(self.rbuf.get(..n).unwrap_or_default(), f)? {
                    Step::More => {}
                    Step::Done => return Ok(()),
                    Step::Interrupted => break,
                }
            }
        }
        Err(interrupted_too_often())
    }
}
