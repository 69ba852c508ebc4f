//! `tortie-cni`: the CNI plugin, a transport. The runtime sets `CNI_*`
//! variables and writes the network config on stdin; the plugin forwards
//! both to the agent's `POST /v1/cni` (the protocol: docs/cni.md, "How an invocation flows")
//! and copies the agent's answer to stdout and its exit code. The agent does
//! the CNI work (`tortie_agent::cni`); the plugin answers only VERSION
//! itself, and writes the CNI errors of the transport (agent unreachable,
//! socket path too long, a non-CNI answer).
//!
//! The runtime execs the plugin for every ADD and DEL, so its start-up is on
//! the attach path. With the `nolibc` feature on x86_64 it is a `no_std`,
//! `no_main` static ELF without libc (`sys.rs`: `_start`, raw system calls),
//! built with `cargo build --profile cni -p tortie-agent --bin tortie-cni
//! --features nolibc --locked`: no C runtime start-up (glibc's 68 trapped
//! `CPUID`s on a VM, lab/bench/README.md). Without it (tests, other
//! architectures) the same code runs under std (`sys_std.rs`).
//!
//! Data flow: envp and stdin → one fixed buffer (the request: head room,
//! `CNI_*` entries, the config; no heap) → [`json::scan`] finds `socket` and
//! `cniVersion` → one write to the socket → the answer, read into the same
//! buffer, [`http::parse_response`], [`http::parse_answer`] → stdout, exit.

#![cfg_attr(all(feature = "nolibc", target_arch = "x86_64"), no_std, no_main)]

#[cfg(all(feature = "nolibc", target_arch = "x86_64", not(panic = "abort")))]
compile_error!(
    "the `nolibc` tortie-cni needs panic = \"abort\": build it with \
     `cargo build --profile cni -p tortie-agent --bin tortie-cni --features nolibc --locked`"
);

mod http;
mod json;
#[cfg(all(feature = "nolibc", target_arch = "x86_64"))]
mod sys;
#[cfg(not(all(feature = "nolibc", target_arch = "x86_64")))]
#[path = "sys_std.rs"]
mod sys;

use json::Field;

/// The request body's limit: the agent API's `MAX_BODY`.
const MAX_BODY: usize = 1 << 20;
/// The one buffer: request head room and body; the answer reuses it.
pub const BUFFER_LEN: usize = http::HEAD_ROOM + MAX_BODY;
/// `sun_path`'s size; a path needs its NUL too.
const SUN_PATH: usize = 108;
/// SO_RCVTIMEO / SO_SNDTIMEO on the agent socket.
const TIMEOUT_SECS: u64 = 60;

/// `api::DEFAULT_SOCKET` (test-asserted equal).
const DEFAULT_SOCKET: &[u8] = b"/run/tortie/tortie.sock";
/// `cni::SUPPORTED_VERSIONS` (test-asserted equal).
const SUPPORTED_VERSIONS: [&[u8]; 5] = [b"0.3.0", b"0.3.1", b"0.4.0", b"1.0.0", b"1.1.0"];
/// `cni::LATEST`.
const LATEST: &[u8] = b"1.1.0";
/// The VERSION answer: `cni::version_result()` and `\n` (test-asserted equal).
const VERSION_RESULT: &[u8] =
    br#"{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}
"#;
/// What a panic prints (the no-libc build's panic handler).
#[cfg(all(feature = "nolibc", target_arch = "x86_64"))]
const PANIC_JSON: &[u8] = br#"{"cniVersion":"1.1.0","code":5,"msg":"tortie-cni panicked"}
"#;

/// CNI error codes (`cni::code`, test-asserted equal).
mod code {
    pub const IO_FAILURE: u32 = 5;
    pub const DECODE_FAILURE: u32 = 6;
    pub const INVALID_NETWORK_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const PLUGIN_NOT_AVAILABLE: u32 = 50;
    pub const AGENT_ERROR: u32 = 103;
}

/// An errno from a failed system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    fn name(self) -> &'static [u8] {
        match self.0 {
            1 => b"EPERM",
            2 => b"ENOENT (no such file)",
            5 => b"EIO",
            11 => b"EAGAIN (timed out)",
            13 => b"EACCES (permission denied)",
            20 => b"ENOTDIR",
            32 => b"EPIPE (the agent closed the connection)",
            36 => b"ENAMETOOLONG",
            104 => b"ECONNRESET",
            110 => b"ETIMEDOUT",
            111 => b"ECONNREFUSED (nobody listens)",
            _ => b"errno",
        }
    }
}

#[cfg(not(all(feature = "nolibc", target_arch = "x86_64")))]
fn main() {
    sys::main()
}

/// One CNI error the plugin writes itself.
struct CniError<'a> {
    code: u32,
    msg: &'a [u8],
    /// Concatenated into `details`.
    details: [&'a [u8]; 4],
    errno: Option<Errno>,
}

impl<'a> CniError<'a> {
    fn new(code: u32, msg: &'a [u8]) -> Self {
        CniError {
            code,
            msg,
            details: [b""; 4],
            errno: None,
        }
    }
    fn details(mut self, parts: [&'a [u8]; 4]) -> Self {
        self.details = parts;
        self
    }
    fn errno(mut self, e: Errno) -> Self {
        self.errno = Some(e);
        self
    }

    /// `{"cniVersion","code","msg","details"}` and `\n` into `out`.
    fn to_json<'o>(&self, version: &[u8], out: &'o mut Out) -> &'o [u8] {
        out.raw(b"{\"cniVersion\":\"");
        out.escaped(version, out.len + 32);
        out.raw(b"\",\"code\":");
        out.number(u64::from(self.code));
        out.raw(b",\"msg\":\"");
        out.escaped(self.msg, out.len + Out::MSG);
        out.raw(b"\"");
        if self.details.iter().any(|d| !d.is_empty()) || self.errno.is_some() {
            out.raw(b",\"details\":\"");
            let limit = out.len + Out::DETAILS;
            for d in self.details {
                out.escaped(d, limit);
            }
            if let Some(e) = self.errno {
                out.escaped(b": ", limit);
                out.escaped(e.name(), limit);
                out.escaped(b", errno ", limit);
                out.number(e.0.unsigned_abs().into());
            }
            out.raw(b"\"");
        }
        out.raw(b"}\n");
        out.buf.get(..out.len).unwrap_or_default()
    }
}

/// A fixed output buffer for one error JSON: `msg` and `details` each have
/// a budget (longer text is cut on a character boundary), so the JSON
/// around them always fits.
pub struct Out {
    buf: [u8; 2048],
    len: usize,
}

impl Out {
    const MSG: usize = 512;
    const DETAILS: usize = 1280;
    fn new() -> Self {
        Out {
            buf: [0; 2048],
            len: 0,
        }
    }
    /// Appends `s` if it fits before `limit` (and the buffer's end).
    fn push(&mut self, s: &[u8], limit: usize) -> bool {
        let end = self.len + s.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) if end <= limit => {
                dst.copy_from_slice(s);
                self.len = end;
                true
            }
            _ => false,
        }
    }
    fn raw(&mut self, s: &[u8]) {
        self.push(s, usize::MAX);
    }
    fn number(&mut self, v: u64) {
        let mut d = [0u8; 20];
        let n = http::decimal(v, &mut d);
        self.raw(d.get(..n).unwrap_or_default());
    }
    /// A JSON string's contents (RFC 8259 §7) up to `limit`; bytes that
    /// are not UTF-8 become U+FFFD.
    fn escaped(&mut self, s: &[u8], limit: usize) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for chunk in s.utf8_chunks() {
            for c in chunk.valid().chars() {
                let mut utf8 = [0u8; 4];
                let ok = match c {
                    '"' => self.push(b"\\\"", limit),
                    '\\' => self.push(b"\\\\", limit),
                    '\n' => self.push(b"\\n", limit),
                    '\r' => self.push(b"\\r", limit),
                    '\t' => self.push(b"\\t", limit),
                    c if (c as u32) < 0x20 => {
                        let b = c as usize;
                        self.push(&[b'\\', b'u', b'0', b'0', HEX[b >> 4], HEX[b & 15]], limit)
                    }
                    c => self.push(c.encode_utf8(&mut utf8).as_bytes(), limit),
                };
                if !ok {
                    return;
                }
            }
            if !chunk.invalid().is_empty() && !self.push("\u{fffd}".as_bytes(), limit) {
                return;
            }
        }
    }
}

/// Writes `err` (in the config's version) and returns the exit code 1.
fn fail(err: &CniError, version: &[u8]) -> i32 {
    let mut out = Out::new();
    let _ = sys::write_stdout(err.to_json(version, &mut out));
    1
}

/// The whole invocation: `env` (`NAME=VALUE` entries, envp order) and
/// stdin → the agent → stdout; returns the exit code. `buf` is
/// [`BUFFER_LEN`] bytes.
pub fn forward<'e>(env: impl Iterator<Item = &'e [u8]>, buf: &mut [u8]) -> i32 {
    let Some((room, body)) = buf.split_first_chunk_mut::<{ http::HEAD_ROOM }>() else {
        return fail(&CniError::new(code::IO_FAILURE, b"no buffer"), LATEST);
    };
    let body = match body.get_mut(..MAX_BODY) {
        Some(b) => b,
        None => body,
    };
    // The CNI_* entries, each NUL-terminated, then an empty one.
    let mut len = 0;
    let mut command: Option<&[u8]> = None;
    let mut too_large = false;
    for entry in env.filter(|e| e.starts_with(b"CNI_")) {
        if command.is_none() {
            command = entry.strip_prefix(b"CNI_COMMAND=");
        }
        match body.get_mut(len..len + entry.len() + 1) {
            Some(dst) => {
                let (text, nul) = dst.split_at_mut(entry.len());
                text.copy_from_slice(entry);
                nul[0] = 0;
                len += entry.len() + 1;
            }
            None => too_large = true,
        }
    }
    match body.get_mut(len) {
        Some(slot) => {
            *slot = 0;
            len += 1;
        }
        None => too_large = true,
    }
    // Read stdin to its end (also for VERSION and on errors: the runtime
    // writing the config must not hit a closed pipe).
    let conf_start = len;
    let mut read_error = None;
    loop {
        let (dst, n) = match body.get_mut(len..) {
            Some(rest) if !rest.is_empty() => {
                let n = sys::read_stdin(rest);
                (true, n)
            }
            _ => {
                let mut spill = [0u8; 512];
                (false, sys::read_stdin(&mut spill))
            }
        };
        match n {
            Ok(0) => break,
            Ok(n) if dst => len += n,
            Ok(_) => too_large = true,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    if command == Some(b"VERSION") {
        return match sys::write_stdout(VERSION_RESULT) {
            Ok(()) => 0,
            Err(_) => 1,
        };
    }
    let conf = body.get(conf_start..len).unwrap_or_default();
    // The errors' version: the config's, if it is one we speak.
    let scanned = json::scan::<SUN_PATH>(conf);
    let version = match &scanned {
        Ok(json::Config {
            cni_version: Field::Str(v),
            ..
        }) if SUPPORTED_VERSIONS.contains(&v.as_bytes()) => v.as_bytes(),
        _ => LATEST,
    };
    if let Some(e) = read_error {
        let err = CniError::new(
            code::IO_FAILURE,
            b"reading the network config from stdin failed",
        );
        return fail(&err.details([b"stdin", b"", b"", b""]).errno(e), version);
    }
    if too_large {
        let err = CniError::new(code::IO_FAILURE, b"network config larger than 1 MiB");
        return fail(&err, version);
    }
    let socket = match &scanned {
        Err(why) => {
            let err = CniError::new(code::DECODE_FAILURE, b"cannot decode the network config");
            return fail(&err.details([why.as_bytes(), b"", b"", b""]), version);
        }
        Ok(c) => match &c.socket {
            Field::Absent => DEFAULT_SOCKET,
            Field::NotString => {
                let err = CniError::new(code::DECODE_FAILURE, b"\"socket\" is not a string");
                return fail(&err, version);
            }
            Field::Str(s) => {
                let path = s.as_bytes();
                let why: &[u8] = if s.overflow || path.len() >= SUN_PATH {
                    b"the socket path is longer than 107 bytes"
                } else if path.is_empty() {
                    b"\"socket\" must not be empty"
                } else if path.contains(&0) {
                    b"the socket path contains a NUL byte"
                } else {
                    b""
                };
                if !why.is_empty() {
                    let err = CniError::new(code::INVALID_NETWORK_CONFIG, why);
                    return fail(&err.details([b"socket ", path, b"", b""]), version);
                }
                path
            }
        },
    };
    let unreachable = if command == Some(b"STATUS") {
        code::PLUGIN_NOT_AVAILABLE
    } else {
        code::TRY_AGAIN_LATER
    };
    let down = |what: &'static [u8], e: Errno| {
        let err = CniError::new(unreachable, b"the tortie agent is not reachable");
        fail(&err.details([what, socket, b"", b""]).errno(e), version)
    };
    let mut conn = match sys::Conn::connect(socket, TIMEOUT_SECS) {
        Ok(c) => c,
        Err(e) => return down(b"connecting to ", e),
    };
    let head = http::request_head(len, room);
    let request = buf.get(head..http::HEAD_ROOM + len).unwrap_or_default();
    if let Err(e) = conn.send_all(request) {
        return down(b"sending the request to ", e);
    }
    // The answer, into the same buffer.
    let mut got = 0;
    let response = loop {
        let (n, eof) = match buf.get_mut(got..) {
            Some(rest) if !rest.is_empty() => match conn.recv(rest) {
                Ok(n) => (n, n == 0),
                Err(e) => return down(b"reading the answer from ", e),
            },
            _ => {
                let err = CniError::new(code::IO_FAILURE, b"the agent's answer is too large");
                return fail(&err, version);
            }
        };
        got += n;
        match http::parse_response(buf.get(..got).unwrap_or_default(), eof) {
            Ok(Some(r)) => break r,
            Ok(None) => {}
            Err(why) => return malformed(why.as_bytes(), socket, version),
        }
    };
    drop(conn);
    match response.status {
        200 => match http::parse_answer(response.body) {
            Ok((exit, stdout)) => match sys::write_stdout(stdout) {
                Ok(()) => exit,
                Err(_) => 1,
            },
            Err(why) => malformed(why.as_bytes(), socket, version),
        },
        status => {
            let (code, msg): (u32, &[u8]) = match status {
                503 => (unreachable, b"the tortie agent is not ready"),
                404 => (
                    code::AGENT_ERROR,
                    b"the agent does not serve /v1/cni: upgrade the agent",
                ),
                _ => (code::AGENT_ERROR, b"the tortie agent refused the request"),
            };
            let mut d = [0u8; 20];
            let n = http::decimal(status.into(), &mut d);
            let body = response.body.get(..256).unwrap_or(response.body);
            let err = CniError::new(code, msg).details([
                b"HTTP ",
                d.get(..n).unwrap_or_default(),
                b": ",
                body,
            ]);
            fail(&err, version)
        }
    }
}

fn malformed(why: &[u8], socket: &[u8], version: &[u8]) -> i32 {
    let err = CniError::new(
        code::IO_FAILURE,
        b"a malformed answer from the tortie agent",
    )
    .details([why, b" (", socket, b")"]);
    fail(&err, version)
}

#[cfg(test)]
mod tests;
