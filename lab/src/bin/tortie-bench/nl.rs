//! Raw rtnetlink for the benchmarks: the reference pipelined route writer
//! (the "ceiling" the kernel benchmark compares `tortie_routes::RouteTable`
//! against), route counting by dump, and a route-event monitor that tells
//! when N routes of a protocol have reached a namespace's kernel table.
//!
//! Data flow: requests are packed back to back into one buffer and handed to
//! the kernel in batches (one `send` carries hundreds of RTM_NEWROUTE); only
//! the last request of a pass asks for an ACK (failures are answered
//! anyway), or, for the "acked" variant, every request, its acks drained
//! between batches. Each pass reports wall and process CPU time. Everything acts
//! in the calling thread's network namespace: [`in_netns`] runs a closure on
//! a fresh thread that entered a named namespace with `setns`.

use std::collections::HashSet;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const NLMSG_HDR: usize = 16;
const RTMSG_LEN: usize = 12;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const RTA_DST: u16 = 1;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;
const RT_TABLE_MAIN: u8 = 254;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const SOL_NETLINK: i32 = 270;
const NETLINK_GET_STRICT_CHK: i32 = 12;

/// Runs `f` on a new thread that first entered network namespace
/// `/run/netns/<name>` (never on a runtime worker: DESIGN §4).
pub fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let path = format!("/run/netns/{name}");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    let h = std::thread::spawn(move || -> Result<T> {
        // SAFETY: plain syscall on a valid fd; only this thread changes namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(io::Error::last_os_error()).context(format!("setns into {path}"));
        }
        f()
    });
    h.join()
        .map_err(|_| anyhow::anyhow!("thread in namespace {name} panicked"))?
}

/// A NETLINK_ROUTE socket.
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    /// Opens a socket in the calling thread's namespace, subscribed to
    /// `groups`, with large forced buffers (we are root).
    pub fn open(groups: u32) -> Result<Socket> {
        // SAFETY: socket(2) returns a new fd or -1.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error()).context("opening a netlink socket");
        }
        // SAFETY: raw is a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let buf: libc::c_int = 256 << 20;
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE] {
            setsockopt(&fd, libc::SOL_SOCKET, opt, buf).context("sizing netlink buffers")?;
        }
        // SAFETY: zeroed sockaddr_nl is valid; fields set below.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        sa.nl_groups = groups;
        // SAFETY: sa is a valid sockaddr_nl of the given size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error()).context("binding a netlink socket");
        }
        Ok(Socket { fd, seq: 1 })
    }

    fn send(&self, buf: &[u8]) -> Result<()> {
        // SAFETY: buf is valid for len bytes; pid 0 = the kernel.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error()).context("sending netlink requests");
        }
        Ok(())
    }

    /// One datagram (possibly many messages); `Ok(None)` on timeout.
    fn recv(&self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<Option<usize>> {
        if let Some(t) = timeout {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = i32::try_from(t.as_millis()).unwrap_or(i32::MAX);
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            if rc == 0 {
                return Ok(None);
            }
        }
        // SAFETY: buf is valid for len bytes.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Some(n as usize))
    }
}

fn setsockopt(fd: &OwnedFd, level: i32, opt: i32, val: libc::c_int) -> io::Result<()> {
    // SAFETY: val is a valid c_int for the option.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&val as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The i-th benchmark /32 in 10.128.0.0/9 (i < 2^23).
pub fn nth_host(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + i)
}

fn put_attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// Appends one RTM_NEWROUTE (replace) or RTM_DELROUTE for `dst/32 via gw`.
fn route_msg(out: &mut Vec<u8>, del: bool, seq: u32, dst: Ipv4Addr, gw: Ipv4Addr, proto: u8) {
    let start = out.len();
    let (kind, flags) = if del {
        (RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK)
    } else {
        (
            RTM_NEWROUTE,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        )
    };
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    let scope = if del { 255 } else { 0 };
    out.extend_from_slice(&[
        libc::AF_INET as u8,
        32,
        0,
        0,
        RT_TABLE_MAIN,
        proto,
        scope,
        1,
    ]);
    out.extend_from_slice(&0u32.to_ne_bytes());
    put_attr(out, RTA_DST, &dst.octets());
    put_attr(out, RTA_GATEWAY, &gw.octets());
    let len = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// Walks the messages of one datagram: `(type, flags, payload)`.
fn messages(buf: &[u8], mut f: impl FnMut(u16, u16, &[u8])) {
    let mut off = 0;
    while off + NLMSG_HDR <= buf.len() {
        let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
        if len < NLMSG_HDR || off + len > buf.len() {
            return;
        }
        let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
        let flags = u16::from_ne_bytes([buf[off + 6], buf[off + 7]]);
        f(kind, flags, &buf[off + NLMSG_HDR..off + len]);
        off += (len + 3) & !3;
    }
}

/// CPU time (user + system) of the whole process: the benchmarks' second
/// clock. Unlike wall time it does not count time spent waiting for a CPU,
/// so on a shared host it moves much less; kernel work done inside
/// `sendmsg` is charged to the sending thread. The whole process, not the
/// calling thread, so that a writer handing work to other threads pays
/// for it too.
pub fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Result of one pipelined pass.
#[derive(Clone, Copy, Debug, Default)]
pub struct PassResult {
    pub routes: u32,
    /// Wall time.
    pub elapsed: Duration,
    /// CPU time of the process during the pass ([`cpu_time`]).
    pub cpu: Duration,
    pub errors: u32,
}

impl PassResult {
    /// Routes per wall-clock second.
    pub fn rate(&self) -> f64 {
        f64::from(self.routes) / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Routes per CPU second.
    pub fn cpu_rate(&self) -> f64 {
        f64::from(self.routes) / self.cpu.as_secs_f64().max(1e-9)
    }
}

/// The reference writer: installs (or deletes) `n` /32s via `gw` with
/// protocol `proto`, `batch` requests per `send`. With `ack_each`, every
/// request asks for an ACK and the acks are drained between batches; without
/// it only the last request does (the kernel still reports every failure,
/// RFC 3549 §2.3.2.2 semantics of NLM_F_ACK): the ceiling.
pub fn pipelined(
    n: u32,
    gw: Ipv4Addr,
    proto: u8,
    del: bool,
    batch: u32,
    ack_each: bool,
) -> Result<PassResult> {
    let mut sock = Socket::open(0)?;
    let mut out = Vec::with_capacity(batch as usize * 48);
    let mut rx = vec![0u8; 1 << 20];
    let mut acked = 0u32;
    let mut errors = 0u32;
    let mut last_seen = false;
    let cpu = cpu_time();
    let t = Instant::now();
    let mut i = 0u32;
    let mut last_seq = 0;
    while i < n {
        out.clear();
        let end = (i + batch).min(n);
        for k in i..end {
            let start = out.len();
            route_msg(&mut out, del, sock.seq, nth_host(k), gw, proto);
            if !ack_each && k + 1 != n {
                let f = u16::from_ne_bytes([out[start + 6], out[start + 7]]) & !NLM_F_ACK;
                out[start + 6..start + 8].copy_from_slice(&f.to_ne_bytes());
            }
            last_seq = sock.seq;
            sock.seq = sock.seq.wrapping_add(1);
        }
        sock.send(&out)?;
        i = end;
        // The kernel handled the whole batch inside send(); drain its acks.
        let want = if ack_each { i } else { 0 };
        while acked < want || (i == n && !last_seen) {
            let got = sock.recv(&mut rx, None).context("reading netlink acks")?;
            let Some(len) = got else { continue };
            let buf = &rx[..len];
            messages(buf, |kind, _, payload| {
                if kind == NLMSG_ERROR {
                    acked += 1;
                    let code = payload
                        .get(..4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .unwrap_or(0);
                    if code != 0 {
                        errors += 1;
                    }
                    // The echoed request header: its sequence number.
                    let seq = payload
                        .get(12..16)
                        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    if seq == Some(last_seq) {
                        last_seen = true;
                    }
                }
            });
        }
    }
    let elapsed = t.elapsed();
    Ok(PassResult {
        routes: n,
        elapsed,
        cpu: cpu_time().saturating_sub(cpu),
        errors,
    })
}

/// Counts IPv4 routes of the main table with protocol `proto` (and prefix
/// length `len` when given) by dumping the table.
pub fn count_routes(proto: u8, len: Option<u8>) -> Result<u64> {
    let mut sock = Socket::open(0)?;
    // Let the kernel filter by table and protocol (Linux ≥ 4.20); we filter
    // again below in case it does not.
    let _ = setsockopt(&sock.fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
    let mut req = Vec::with_capacity(40);
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(&RTM_GETROUTE.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&sock.seq.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(&[libc::AF_INET as u8, 0, 0, 0, RT_TABLE_MAIN, proto, 0, 0]);
    req.extend_from_slice(&0u32.to_ne_bytes());
    put_attr(&mut req, RTA_TABLE, &u32::from(RT_TABLE_MAIN).to_ne_bytes());
    let req_len = req.len() as u32;
    req[..4].copy_from_slice(&req_len.to_ne_bytes());
    sock.seq += 1;
    sock.send(&req)?;
    let mut rx = vec![0u8; 1 << 20];
    let mut count = 0u64;
    let mut done = false;
    while !done {
        let Some(got) = sock.recv(&mut rx, None).context("reading a route dump")? else {
            continue;
        };
        let mut err = None;
        messages(&rx[..got], |kind, _, payload| match kind {
            NLMSG_DONE => done = true,
            NLMSG_ERROR => {
                let code = payload
                    .get(..4)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(0);
                if code != 0 {
                    err = Some(code);
                }
                done = true;
            }
            RTM_NEWROUTE
                if is_ours(payload, proto) && len.is_none_or(|l| payload.get(1) == Some(&l)) =>
            {
                count += 1;
            }
            _ => {}
        });
        if let Some(code) = err {
            bail!("route dump failed: errno {}", -code);
        }
    }
    Ok(count)
}

fn is_ours(rtmsg: &[u8], proto: u8) -> bool {
    rtmsg.len() >= RTMSG_LEN
        && rtmsg[0] == libc::AF_INET as u8
        && rtmsg[4] == RT_TABLE_MAIN
        && rtmsg[5] == proto
}

/// `(dst, dst_len)` of a route message, for the monitor's set.
fn route_key(rtmsg: &[u8]) -> Option<u64> {
    let dst_len = *rtmsg.get(1)?;
    let mut off = RTMSG_LEN;
    let mut dst = 0u32;
    while off + 4 <= rtmsg.len() {
        let len = u16::from_ne_bytes([rtmsg[off], rtmsg[off + 1]]) as usize;
        let kind = u16::from_ne_bytes([rtmsg[off + 2], rtmsg[off + 3]]);
        if len < 4 || off + len > rtmsg.len() {
            break;
        }
        if kind == RTA_DST && len == 8 {
            dst = u32::from_be_bytes([
                rtmsg[off + 4],
                rtmsg[off + 5],
                rtmsg[off + 6],
                rtmsg[off + 7],
            ]);
        }
        off += (len + 3) & !3;
    }
    Some((u64::from(dst) << 8) | u64::from(dst_len))
}

/// Watches the calling thread's namespace until `n` routes of `proto` are in
/// the main table; returns when that happened (`Instant`). Event driven; if
/// the event socket overflows it falls back to polling dumps every 50 ms.
/// `ready` is called once the subscription is in place.
pub fn wait_for_routes(
    proto: u8,
    len: Option<u8>,
    n: u64,
    deadline: Instant,
    ready: impl FnOnce(),
) -> Result<(Instant, bool)> {
    let sock = Socket::open(RTMGRP_IPV4_ROUTE)?;
    ready();
    let mut seen: HashSet<u64> = HashSet::with_capacity(n as usize);
    let mut rx = vec![0u8; 4 << 20];
    let mut overflow = false;
    // Routes installed before the subscription (none in a fresh run).
    if count_routes(proto, len)? >= n {
        return Ok((Instant::now(), false));
    }
    while !overflow {
        if Instant::now() > deadline {
            bail!(
                "timed out: {} of {n} routes of protocol {proto} in the kernel",
                seen.len()
            );
        }
        match sock.recv(&mut rx, Some(Duration::from_millis(100))) {
            Ok(None) => continue,
            Ok(Some(got)) => {
                messages(&rx[..got], |kind, _, payload| {
                    if !is_ours(payload, proto) || len.is_some_and(|l| payload.get(1) != Some(&l)) {
                        return;
                    }
                    if let Some(k) = route_key(payload) {
                        if kind == RTM_NEWROUTE {
                            seen.insert(k);
                        } else if kind == RTM_DELROUTE {
                            seen.remove(&k);
                        }
                    }
                });
                if seen.len() as u64 >= n {
                    return Ok((Instant::now(), false));
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => overflow = true,
            Err(e) => return Err(e).context("reading route events"),
        }
    }
    loop {
        if count_routes(proto, len)? >= n {
            return Ok((Instant::now(), true));
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {n} routes of protocol {proto} in the kernel");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_message_layout() {
        let mut out = Vec::new();
        route_msg(
            &mut out,
            false,
            7,
            Ipv4Addr::new(10, 128, 0, 1),
            Ipv4Addr::new(10, 200, 0, 2),
            151,
        );
        assert_eq!(out.len(), 44);
        let mut seen = Vec::new();
        messages(&out, |k, f, p| seen.push((k, f, p.len(), route_key(p))));
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, RTM_NEWROUTE);
        assert_eq!(seen[0].2, 28);
        assert_eq!(seen[0].3, Some((u64::from(0x0a80_0001u32) << 8) | 32));
        assert!(is_ours(&out[16..], 151));
    }
}
