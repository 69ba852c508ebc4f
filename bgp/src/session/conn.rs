//! One TCP connection of a session: buffered, non-blocking reads and writes
//! so the peer task's `select!` loop never waits on a slow peer.
//!
//! Bytes read are framed with the wire codec; messages to send are encoded
//! into `out` and written as the socket accepts them (writes are batched:
//! everything queued goes out in as few `write` calls as the kernel allows).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::wire::{self, CodecContext, DecodeError, Message, Update};

/// Stop reading from the socket while this much is queued for writing.
pub(crate) const OUT_HIGH_WATER: usize = 4 << 20;

/// What [`Conn::io`] did.
pub(crate) enum IoDone {
    /// Bytes read (0: the peer closed).
    Read(io::Result<usize>),
    Wrote(io::Result<()>),
}

pub(crate) struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    inbuf: BytesMut,
    out: Vec<u8>,
    /// How much of `out` was already written.
    out_pos: usize,
    pub(crate) locally_initiated: bool,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) ctx: CodecContext,
    decoder: wire::Decoder,
    scratch: Vec<Vec<u8>>,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream, locally_initiated: bool) -> io::Result<Conn> {
        let local = stream.local_addr()?;
        let remote = stream.peer_addr()?;
        let (rd, wr) = stream.into_split();
        Ok(Conn {
            rd,
            wr,
            inbuf: BytesMut::with_capacity(64 * 1024),
            out: Vec::with_capacity(64 * 1024),
            out_pos: 0,
            locally_initiated,
            local,
            remote,
            scratch: Vec::new(),
            ctx: CodecContext::default(),
            decoder: wire::Decoder::new(),
        })
    }

    /// The next complete message in the read buffer, if any.
    pub(crate) fn next_message(&mut self) -> Option<Result<Message, DecodeError>> {
        let max = self.ctx.max_message_len();
        match wire::frame(&self.inbuf, max) {
            Ok(Some(len)) => {
                let frame = self.inbuf.split_to(len);
                Some(self.decoder.decode(&frame, &self.ctx))
            }
            Ok(None) => None,
            Err(e) => {
                // The stream cannot be resynchronised: drop what is buffered.
                self.inbuf.clear();
                Some(Err(e))
            }
        }
    }

    pub(crate) fn queue(&mut self, msg: &Message) -> Result<(), wire::EncodeError> {
        wire::encode(msg, &self.ctx, &mut self.out)
    }

    /// Queues an UPDATE split into as many messages as the negotiated
    /// maximum length needs; returns how many.
    pub(crate) fn queue_update(&mut self, u: &Update) -> Result<usize, wire::EncodeError> {
        self.scratch.clear();
        let n = wire::encode_updates(u, &self.ctx, &mut self.scratch)?;
        for m in self.scratch.drain(..) {
            self.out.extend_from_slice(&m);
        }
        Ok(n)
    }

    pub(crate) fn pending_out(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Waits for the socket to take bytes (`write`) or give some (`read`),
    /// whichever comes first. Cancel-safe.
    pub(crate) async fn io(&mut self, read: bool, write: bool) -> IoDone {
        if self.inbuf.capacity() - self.inbuf.len() < 4096 {
            self.inbuf.reserve(64 * 1024);
        }
        let write = write && self.pending_out() > 0;
        tokio::select! {
            r = self.rd.read_buf(&mut self.inbuf), if read => IoDone::Read(r),
            w = self.wr.write(&self.out[self.out_pos..]), if write => IoDone::Wrote(self.wrote(w)),
            () = std::future::pending::<()>(), if !read && !write => IoDone::Read(Ok(1)),
        }
    }

    /// Writes some of the queued bytes. Cancel-safe.
    pub(crate) async fn write_some(&mut self) -> io::Result<()> {
        let n = self.wr.write(&self.out[self.out_pos..]).await;
        self.wrote(n)
    }

    fn wrote(&mut self, n: io::Result<usize>) -> io::Result<()> {
        let n = n?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "peer stopped accepting data",
            ));
        }
        self.out_pos += n;
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos > (1 << 20) {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        Ok(())
    }

    /// Flushes what is queued (bounded by `limit`) and closes the connection.
    pub(crate) async fn close(mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            while self.pending_out() > 0 {
                if self.write_some().await.is_err() {
                    break;
                }
            }
            let _ = self.wr.shutdown().await;
        })
        .await;
    }

    /// Drops the connection at once (RST-free close without flushing).
    pub(crate) fn abort(self) {
        drop(self);
    }
}
