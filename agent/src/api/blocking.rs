//! A blocking client for the local API, for `tortie-cni`: one
//! `std::os::unix::net::UnixStream` per call and a small hand-written
//! HTTP/1.1 exchange, no async runtime. The plugin is a short-lived process
//! exec'd per CNI command, so its start-up cost is part of every container
//! attach: building a tokio runtime and a hyper connection cost more than the
//! request itself (lab/bench, "Container attach").
//!
//! Data flow: the typed request is encoded as JSON and written as one
//! `POST`/`GET` with `Content-Length` and `Connection: close`; the answer's
//! head is parsed by [`parse_head`] (status, `Content-Length` or chunked
//! framing), the body read accordingly ([`decode_chunked`] for chunked) and
//! decoded into the typed result or the server's [`ApiError`]. Errors are the
//! async client's [`ClientError`], so callers map both the same way. Every
//! read and write is bounded by the call's deadline; nothing here panics on
//! what the socket returns.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client::ClientError;
use super::{
    ApiError, AttachRequest, AttachResult, CheckRequest, DetachRequest, DetachResult, GcRequest,
    GcResult, Health,
};

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Largest response body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// How the response body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body runs until the server closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// HTTP status code.
    pub status: u16,
    /// Bytes of the head, the blank line included (the body starts there).
    pub len: usize,
    pub framing: Framing,
}

/// Parses an HTTP/1.x response head from the start of `buf`. `Ok(None)`:
/// the head is not complete yet. `Err`: not an HTTP/1.x response we accept.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(format!("response head longer than {MAX_HEAD} bytes"));
        }
        return Ok(None);
    };
    let text =
        std::str::from_utf8(&buf[..end]).map_err(|_| "response head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x response: {status_line:?}"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut framing = Framing::UntilClose;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line {line:?}"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            if value.eq_ignore_ascii_case("chunked") {
                framing = Framing::Chunked;
            } else {
                return Err(format!("unsupported transfer-encoding {value:?}"));
            }
        } else if name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let n = value
                .parse::<usize>()
                .map_err(|_| format!("bad content-length {value:?}"))?;
            if n > MAX_BODY {
                return Err(format!("response body of {n} bytes is too large"));
            }
            if let Framing::Length(prev) = framing
                && prev != n
            {
                return Err("conflicting content-length headers".to_string());
            }
            framing = Framing::Length(n);
        }
    }
    Ok(Some(Head {
        status,
        len: end + 4,
        framing,
    }))
}

/// Decodes a complete chunked body (RFC 9112 §7.1). `Ok(None)`: incomplete,
/// read more. Trailers are skipped.
pub fn decode_chunked(buf: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    loop {
        let rest = buf.get(at..).unwrap_or_default();
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            if rest.len() > 1024 {
                return Err("chunk size line too long".to_string());
            }
            return Ok(None);
        };
        let line = std::str::from_utf8(&rest[..eol]).map_err(|_| "bad chunk size".to_string())?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(hex, 16).map_err(|_| format!("bad chunk size {hex:?}"))?;
        at += eol + 2;
        if size == 0 {
            // Trailer section: lines until an empty one.
            loop {
                let rest = buf.get(at..).unwrap_or_default();
                let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                at += eol + 2;
                if eol == 0 {
                    return Ok(Some(out));
                }
            }
        }
        if out.len().saturating_add(size) > MAX_BODY {
            return Err("chunked response body is too large".to_string());
        }
        let Some(data) = buf.get(at..at.saturating_add(size)) else {
            return Ok(None);
        };
        if at + size + 2 > buf.len() {
            return Ok(None);
        }
        if buf.get(at + size..at + size + 2) != Some(b"\r\n".as_slice()) {
            return Err("chunk not followed by CRLF".to_string());
        }
        out.extend_from_slice(data);
        at += size + 2;
    }
}

/// A blocking client for one socket path.
#[derive(Clone, Debug)]
pub struct BlockingClient {
    path: PathBuf,
    timeout: Duration,
}

impl BlockingClient {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        BlockingClient {
            path: path.into(),
            timeout: Duration::from_secs(60),
        }
    }
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn health(&self) -> Result<Health, ClientError> {
        self.call("GET", "/v1/health", None::<&()>)
    }
    pub fn attach(&self, req: &AttachRequest) -> Result<AttachResult, ClientError> {
        self.call("POST", "/v1/attach", Some(req))
    }
    pub fn detach(&self, req: &DetachRequest) -> Result<DetachResult, ClientError> {
        self.call("POST", "/v1/detach", Some(req))
    }
    pub fn check(&self, req: &CheckRequest) -> Result<AttachResult, ClientError> {
        self.call("POST", "/v1/check", Some(req))
    }
    pub fn gc(&self, req: &GcRequest) -> Result<GcResult, ClientError> {
        self.call("POST", "/v1/gc", Some(req))
    }

    fn proto(&self, message: String) -> ClientError {
        ClientError::Protocol {
            path: self.path.clone(),
            message,
        }
    }

    /// Maps an I/O error of a read or write: a timeout is [`ClientError::Timeout`].
    fn io(&self, what: &str, e: std::io::Error) -> ClientError {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                ClientError::Timeout(self.timeout)
            }
            _ => self.proto(format!("{what}: {e}")),
        }
    }

    fn call<Q: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        uri: &str,
        body: Option<&Q>,
    ) -> Result<R, ClientError> {
        let deadline = Instant::now() + self.timeout;
        let payload = match body {
            Some(b) => {
                serde_json::to_vec(b).map_err(|e| self.proto(format!("encoding request: {e}")))?
            }
            None => Vec::new(),
        };
        let mut stream =
            UnixStream::connect(&self.path).map_err(|source| ClientError::Unreachable {
                path: self.path.clone(),
                source,
            })?;
        let mut req = format!(
            "{method} {uri} HTTP/1.1\r\nHost: tortie\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            payload.len()
        )
        .into_bytes();
        req.extend_from_slice(&payload);
        self.set_deadline(&stream, deadline)?;
        stream
            .write_all(&req)
            .map_err(|e| self.io("sending request", e))?;

        let mut buf = Vec::with_capacity(4096);
        let head = loop {
            if let Some(h) = parse_head(&buf).map_err(|e| self.proto(e))? {
                break h;
            }
            if self.read_more(&mut stream, &mut buf, deadline)? == 0 {
                return Err(self.proto(format!(
                    "connection closed before a complete response ({} bytes)",
                    buf.len()
                )));
            }
        };
        let body = match head.framing {
            Framing::Length(n) => {
                let want = head.len + n;
                while buf.len() < want {
                    if self.read_more(&mut stream, &mut buf, deadline)? == 0 {
                        return Err(self.proto(format!(
                            "connection closed after {} of {n} body bytes",
                            buf.len() - head.len
                        )));
                    }
                }
                buf.get(head.len..want).unwrap_or_default().to_vec()
            }
            Framing::Chunked => loop {
                let rest = buf.get(head.len..).unwrap_or_default();
                if let Some(b) = decode_chunked(rest).map_err(|e| self.proto(e))? {
                    break b;
                }
                if self.read_more(&mut stream, &mut buf, deadline)? == 0 {
                    return Err(self.proto("connection closed inside a chunked body".into()));
                }
            },
            Framing::UntilClose => {
                while self.read_more(&mut stream, &mut buf, deadline)? > 0 {
                    if buf.len() - head.len > MAX_BODY {
                        return Err(self.proto("response body is too large".into()));
                    }
                }
                buf.get(head.len..).unwrap_or_default().to_vec()
            }
        };
        if (200..300).contains(&head.status) {
            serde_json::from_slice(&body).map_err(|e| self.proto(format!("decoding response: {e}")))
        } else {
            match serde_json::from_slice::<ApiError>(&body) {
                Ok(e) => Err(ClientError::Api(e)),
                Err(_) => Err(self.proto(format!(
                    "HTTP {}: {}",
                    head.status,
                    String::from_utf8_lossy(&body)
                ))),
            }
        }
    }

    fn set_deadline(&self, s: &UnixStream, deadline: Instant) -> Result<(), ClientError> {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(ClientError::Timeout(self.timeout))?;
        s.set_read_timeout(Some(left))
            .and_then(|_| s.set_write_timeout(Some(left)))
            .map_err(|e| self.proto(format!("setting socket timeouts: {e}")))
    }

    /// Reads once into `buf` (before the deadline); 0 is end of stream.
    fn read_more(
        &self,
        s: &mut UnixStream,
        buf: &mut Vec<u8>,
        deadline: Instant,
    ) -> Result<usize, ClientError> {
        self.set_deadline(s, deadline)?;
        let mut chunk = [0u8; 8192];
        loop {
            match s.read(&mut chunk) {
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io("reading response", e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_with_length_chunked_or_close() {
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{}",
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, Framing::Length(12));
        assert_eq!(h.len, 71);
        let h =
            parse_head(b"HTTP/1.1 507 Insufficient Storage\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!((h.status, h.framing), (507, Framing::Chunked));
        let h = parse_head(b"HTTP/1.0 404 Not Found\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.status, h.framing), (404, Framing::UntilClose));
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), None);
    }

    #[test]
    fn bad_heads_are_errors_not_panics() {
        for bad in [
            &b"SSH-2.0-x\r\n\r\n"[..],
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\xff: x\r\n\r\n",
        ] {
            assert!(
                parse_head(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_head(&vec![b'a'; MAX_HEAD + 1]).is_err());
        // Every prefix of a good head is "incomplete" or an error, never a panic.
        let good = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        for cut in 0..good.len() {
            let _ = parse_head(&good[..cut]);
        }
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            decode_chunked(b"4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n").unwrap(),
            Some(b"{\"a\":1}".to_vec())
        );
        assert_eq!(
            decode_chunked(b"2\r\n{}\r\n0\r\nX-T: 1\r\n\r\n").unwrap(),
            Some(b"{}".to_vec())
        );
        let whole = b"4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        for cut in 0..whole.len() {
            assert_eq!(decode_chunked(&whole[..cut]).unwrap(), None, "cut {cut}");
        }
        assert!(decode_chunked(b"zz\r\n").is_err());
        assert!(decode_chunked(b"2\r\n{}XX0\r\n\r\n").is_err());
        assert!(decode_chunked(b"fffffffffffffff\r\n").is_err());
    }
}
