//! The forwarder's operating-system layer through std: the build without
//! the `nolibc` feature (dev, test, release builds, every architecture).
//! Same functions as `sys.rs`, so `forward` and its tests are one code.
//!
//! Data flow: `main` collects the environment (envp order) and a buffer and
//! calls `crate::forward`, then exits with its code.

use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::Errno;

/// EIO, for an error std reports without an errno.
const EIO: i32 = 5;

fn errno(e: std::io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap_or(EIO))
}

pub fn main() -> ! {
    let env: Vec<Vec<u8>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k.as_bytes().to_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        })
        .collect();
    let mut buf = vec![0u8; crate::BUFFER_LEN];
    exit(crate::forward(env.iter().map(Vec::as_slice), &mut buf))
}

/// `read(2)` on stdin (unbuffered: std's buffer is bypassed for reads
/// larger than it).
pub fn read_stdin(buf: &mut [u8]) -> Result<usize, Errno> {
    std::io::stdin().lock().read(buf).map_err(errno)
}

/// Writes all of `buf` to stdout.
pub fn write_stdout(buf: &[u8]) -> Result<(), Errno> {
    let mut out = std::io::stdout().lock();
    out.write_all(buf).and_then(|_| out.flush()).map_err(errno)
}

pub fn exit(code: i32) -> ! {
    std::process::exit(code)
}

/// A connected unix stream socket.
pub struct Conn(UnixStream);

impl Conn {
    pub fn connect(path: &[u8], timeout_secs: u64) -> Result<Conn, Errno> {
        let s = UnixStream::connect(std::ffi::OsStr::from_bytes(path)).map_err(errno)?;
        let t = Some(Duration::from_secs(timeout_secs));
        s.set_read_timeout(t).map_err(errno)?;
        s.set_write_timeout(t).map_err(errno)?;
        Ok(Conn(s))
    }

    pub fn send_all(&mut self, buf: &[u8]) -> Result<(), Errno> {
        self.0.write_all(buf).map_err(errno)
    }

    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.0.read(buf).map_err(errno)
    }
}
