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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tortie_routes::nl::consts::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_ERROR, RTM_GETROUTE, RTMGRP_IPV4_ROUTE,
    RTMGRP_IPV6_ROUTE,
};
use tortie_routes::nl::{self, Decoded, Part, RouteEncoder, RouteView, Writer, messages};
use tortie_routes::{IpNetwork, KernelRoute, NextHop};

const RT_TABLE_MAIN: u8 = 254;

/// Moves the calling thread (only it) into the network namespace open as
/// `file` (`what` names it in the error): for threads of the benchmark's
/// own, never a runtime worker.
pub fn enter_netns(file: &std::fs::File, what: &str) -> Result<()> {
    // SAFETY: plain syscall on a descriptor we hold open; only this thread
    // changes namespace.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error()).context(format!("setns into {what}"));
    }
    Ok(())
}

/// Runs `f` on a new thread that first entered network namespace
/// `/run/netns/<name>` (never on a runtime worker: DESIGN §4).
pub fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let path = format!("/run/netns/{name}");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    let h = std::thread::spawn(move || -> Result<T> {
        enter_netns(&file, &path)?;
        f()
    });
    h.join()
        .map_err(|_| anyhow::anyhow!("thread in namespace {name} panicked"))?
}

/// A NETLINK_ROUTE socket of the product's netlink layer, with large
/// forced buffers (we are root), and our sequence numbers.
pub struct Socket {
    sock: nl::Socket,
    seq: u32,
}

/// Longer than any pass: "wait for ever" for the blocking reads.
const FOREVER: Duration = Duration::from_secs(3600);

impl Socket {
    /// Opens a socket in the calling thread's namespace, subscribed to `groups`.
    pub fn open(groups: u32) -> Result<Socket> {
        let sock = nl::Socket::open(groups).context("opening a netlink socket")?;
        sock.set_rcvbuf(256 << 20)
            .context("sizing netlink buffers")?;
        sock.set_sndbuf(256 << 20)
            .context("sizing netlink buffers")?;
        Ok(Socket { sock, seq: 1 })
    }

    fn send(&self, buf: &[u8]) -> Result<()> {
        self.sock
            .send_blocking(buf, Instant::now() + FOREVER)
            .context("sending netlink requests")
    }

    /// One datagram (possibly many messages); `Ok(None)` on timeout.
    fn recv(&self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<Option<usize>> {
        self.sock
            .recv_until(buf, Instant::now() + timeout.unwrap_or(FOREVER))
    }
}

/// The address family of a benchmark pass: which prefixes it writes, which
/// rtmsg family it dumps and counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// /32s in 10.128.0.0/9.
    V4,
    /// /64s in 2001:db8::/32 (RFC 3849 documentation space).
    V6,
}

impl Family {
    /// The rtmsg family byte (`AF_INET` / `AF_INET6`).
    pub fn af(self) -> u8 {
        match self {
            Family::V4 => libc::AF_INET as u8,
            Family::V6 => libc::AF_INET6 as u8,
        }
    }

    /// Prefix length of the benchmark's routes.
    pub fn prefix_len(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 64,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    /// The multicast group of this family's route events.
    fn route_group(self) -> u32 {
        match self {
            Family::V4 => RTMGRP_IPV4_ROUTE,
            Family::V6 => RTMGRP_IPV6_ROUTE,
        }
    }

    /// The i-th benchmark prefix: `10.128.0.0 + i`/32 (i < 2^23), or
    /// `2001:db8:<i / 2^16>:<i mod 2^16>::/64` (any u32 i).
    pub fn nth(self, i: u32) -> Result<IpNetwork> {
        let addr = match self {
            Family::V4 => IpAddr::V4(nth_host(i)),
            Family::V6 => IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                (i >> 16) as u16,
                (i & 0xffff) as u16,
                0,
                0,
                0,
                0,
            )),
        };
        IpNetwork::new(addr, self.prefix_len()).context("benchmark prefix")
    }
}

/// The i-th benchmark /32 in 10.128.0.0/9 (i < 2^23).
pub fn nth_host(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + i)
}

/// `dst via gw`, the benchmark's route.
pub fn via(gw: IpAddr) -> KernelRoute {
    KernelRoute::Unicast {
        next_hops: vec![NextHop {
            gateway: gw,
            dev: None,
            onlink: false,
        }],
    }
}

/// Appends one RTM_NEWROUTE (replace) or RTM_DELROUTE for `prefix via gw`
/// with the product's encoder (`RTA_TABLE` included, as the reconciler
/// writes it; through nexthop object `nh` when given).
fn route_msg(
    out: &mut Vec<u8>,
    del: bool,
    seq: u32,
    prefix: IpNetwork,
    route: &KernelRoute,
    enc: &RouteEncoder,
    nh: Option<u32>,
) -> Result<()> {
    match nh {
        Some(id) if !del => enc.encode_nh(out, seq, prefix, route, id),
        _ => enc.encode(out, seq, prefix, (!del).then_some(route), &|_| None),
    }
    .map_err(anyhow::Error::msg)
}

/// The route messages (new: true, deleted: false) of one datagram, read
/// by the product's parser.
fn route_messages(buf: &[u8], mut f: impl FnMut(bool, &RouteView<'_>)) {
    for m in messages(buf) {
        if let Ok(Decoded::Route { new, route }) = nl::decode(&m) {
            f(new, &route);
        }
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

/// CPU time (user + system) of the calling thread only: a writer thread's
/// own cost in a process that runs other threads too.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// User-mode CPU time of the whole process (`getrusage`): the part of
/// [`cpu_time`] spent outside the kernel — a writer's own per-route work,
/// which the kernel's route insertion (system time) does not dilute.
pub fn user_time() -> Duration {
    // SAFETY: zeroed rusage is a valid value; getrusage fills the one we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a local rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ru.ru_utime.tv_sec).unwrap_or(0),
        u32::try_from(ru.ru_utime.tv_usec).unwrap_or(0) * 1000,
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
    /// Its user-mode part ([`user_time`]).
    pub user: Duration,
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

/// Diagnostic (lab/bench/README.md §2): with this variable set, the
/// reference writer deletes in a scattered order ([`scattered`]), as a
/// writer walking a hash table would, instead of in prefix order.
pub const SCATTERED_DELETES: &str = "TORTIE_BENCH_SCATTERED_DELETES";

/// A fixed permutation of `0..n` that scatters neighbours:
/// `k × 2654435761 mod n` (a prime multiplier, so a bijection for every n
/// it does not divide).
fn scattered(k: u32, n: u32) -> u32 {
    ((u64::from(k) * 2_654_435_761) % u64::from(n.max(1))) as u32
}

/// The reference writer: installs (or deletes) `n` prefixes of `family`
/// ([`Family::nth`]) via `gw` with protocol `proto`, `batch` requests per `send`. With `ack_each`, every
/// request asks for an ACK and the acks are drained between batches; without
/// it only the last request does (the kernel still reports every failure,
/// RFC 3549 §2.3.2.2 semantics of NLM_F_ACK): the ceiling.
pub fn pipelined(
    family: Family,
    n: u32,
    gw: IpAddr,
    proto: u8,
    del: bool,
    batch: u32,
    ack_each: bool,
) -> Result<PassResult> {
    let scatter = del && std::env::var_os(SCATTERED_DELETES).is_some();
    let w = Pipeline {
        gw,
        proto,
        del,
        batch,
        ack_each,
    };
    w.run(n, |k| family.nth(if scatter { scattered(k, n) } else { k }))
}

/// The reference writer installing `prefixes` in the given order (the
/// ingest benchmark's kernel floor: the workload's own prefixes, no BGP),
/// `batch` requests per `send`, only the last one acked.
pub fn install_in_order(
    prefixes: &[IpNetwork],
    gw: IpAddr,
    proto: u8,
    batch: u32,
) -> Result<PassResult> {
    let w = Pipeline {
        gw,
        proto,
        del: false,
        batch,
        ack_each: false,
    };
    let n = u32::try_from(prefixes.len()).context("too many prefixes")?;
    w.run(n, |k| {
        prefixes
            .get(k as usize)
            .copied()
            .context("prefix index out of range")
    })
}

/// One pipelined pass's parameters (see [`pipelined`]).
struct Pipeline {
    gw: IpAddr,
    proto: u8,
    del: bool,
    batch: u32,
    ack_each: bool,
}

impl Pipeline {
    /// Writes the `n` prefixes `prefix(0..n)` in that order.
    fn run(&self, n: u32, prefix: impl Fn(u32) -> Result<IpNetwork>) -> Result<PassResult> {
        let Pipeline {
            gw,
            proto,
            del,
            batch,
            ack_each,
        } = *self;
        let mut sock = Socket::open(0)?;
        let route = via(gw);
        // The format RouteTable writes (`crate::kernel_nh`): adds through
        // one nexthop object, made before the pass.
        let nh = match !del && crate::kernel_nh::on() {
            true => Some(crate::kernel_nh::make_object(gw, proto)?),
            false => None,
        };
        let quiet = RouteEncoder {
            protocol: proto,
            table: u32::from(RT_TABLE_MAIN),
            extra_flags: 0,
        };
        let acked_enc = RouteEncoder {
            extra_flags: NLM_F_ACK,
            ..quiet
        };
        let mut out = Vec::with_capacity(batch as usize * 56);
        let mut rx = vec![0u8; 1 << 20];
        let mut acked = 0u32;
        let mut errors = 0u32;
        let mut last_seen = false;
        let cpu = cpu_time();
        let user = user_time();
        let t = Instant::now();
        let mut i = 0u32;
        let mut last_seq = 0;
        while i < n {
            out.clear();
            let end = (i + batch).min(n);
            for k in i..end {
                let enc = if ack_each || k + 1 == n {
                    &acked_enc
                } else {
                    &quiet
                };
                route_msg(&mut out, del, sock.seq, prefix(k)?, &route, enc, nh)?;
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
                for m in messages(buf) {
                    if m.header.kind == NLMSG_ERROR
                        && let Some(e) = nl::error_msg(m.header.flags, m.body)
                    {
                        acked += 1;
                        if e.errno != 0 {
                            errors += 1;
                        }
                        if e.request_seq == Some(last_seq) {
                            last_seen = true;
                        }
                    }
                }
            }
        }
        let elapsed = t.elapsed();
        Ok(PassResult {
            routes: n,
            elapsed,
            cpu: cpu_time().saturating_sub(cpu),
            user: user_time().saturating_sub(user),
            errors,
        })
    }
}

/// Counts routes of `family` in the main table with protocol `proto` (and
/// prefix length `len` when given) by dumping the table.
pub fn count_routes(family: Family, proto: u8, len: Option<u8>) -> Result<u64> {
    let sock = Socket::open(0)?;
    // Let the kernel filter by table and protocol (Linux ≥ 4.20); we filter
    // again below in case it does not.
    let _ = sock.sock.set_strict_check();
    let mut req = Vec::with_capacity(40);
    let header = nl::build::rtmsg(family.af(), 0, RT_TABLE_MAIN, proto, 0, 0, 0);
    let mut w = Writer::begin(
        &mut req,
        RTM_GETROUTE,
        NLM_F_REQUEST | NLM_F_DUMP,
        sock.seq,
        &header,
    );
    w.u32(nl::consts::RTA_TABLE, u32::from(RT_TABLE_MAIN));
    w.finish();
    let mut rx = vec![0u8; 1 << 20];
    let mut count = 0u64;
    // The product's dump: multi-part answer, NLM_F_DUMP_INTR restarts.
    sock.sock
        .dump(
            &req,
            sock.seq,
            Instant::now() + FOREVER,
            &mut rx,
            &mut |part| {
                let m = match part {
                    Part::Restart => return count = 0,
                    Part::Msg(m) => m,
                };
                if let Ok(Decoded::Route { new: true, route }) = nl::decode(&m)
                    && is_ours(&route, family, proto)
                    && len.is_none_or(|l| route.dst_len == l)
                {
                    count += 1;
                }
            },
        )
        .context("reading a route dump")?;
    Ok(count)
}

fn is_ours(r: &RouteView<'_>, family: Family, proto: u8) -> bool {
    r.family == family.af() && r.table == u32::from(RT_TABLE_MAIN) && r.protocol == proto
}

/// `(dst, dst_len)` of a route (IPv4 or IPv6 `RTA_DST`), for the monitor's set.
fn route_key(r: &RouteView<'_>) -> (u128, u8) {
    let dst = match r.dst {
        Some(IpAddr::V4(a)) => u128::from(u32::from(a)),
        Some(IpAddr::V6(a)) => u128::from(a),
        None => 0,
    };
    (dst, r.dst_len)
}

/// Datagrams taken per `recvmmsg` by the monitor ([`read_events`]).
const EVENT_BATCH: usize = 64;
/// Room for one datagram: a route notification is one message of a few
/// hundred bytes; a larger datagram is reported, not cut.
const EVENT_SLOT: usize = 8 << 10;
/// How long the monitor sleeps when it found nothing queued.
const EVENT_NAP: Duration = Duration::from_millis(1);

/// Reads every datagram queued on `sock` without waiting, `EVENT_BATCH` per
/// `recvmmsg` (`nl::Socket::recv_many`), handing each to `f`; the number
/// read (0: nothing queued). ENOBUFS is returned as the error it is.
fn read_events(sock: &Socket, slots: &mut [u8], mut f: impl FnMut(&[u8])) -> io::Result<usize> {
    let mut total = 0;
    let mut lens = vec![0usize; slots.len().div_ceil(EVENT_SLOT)];
    loop {
        let got = {
            let mut bufs: Vec<&mut [u8]> = slots.chunks_mut(EVENT_SLOT).collect();
            sock.sock.recv_many(&mut bufs, &mut lens)?
        };
        for (len, slot) in lens.iter().zip(slots.chunks(EVENT_SLOT)).take(got) {
            let Some(event) = slot.get(..*len) else {
                return Err(io::Error::other("route event larger than its slot"));
            };
            f(event);
        }
        total += got;
        if got < lens.len() {
            return Ok(total);
        }
    }
}

/// Watches the calling thread's namespace until `n` routes of `family` and
/// `proto` (and prefix length `len` when given) are in the main table;
/// returns when that happened (`Instant`). Event driven, but never waiting
/// on the socket: it takes everything queued in batches ([`read_events`]),
/// then naps 1 ms, so the DUT's writes never have a reader to wake (a
/// wake-up per event charged to whichever DUT runs) and a 1M load costs
/// ~16k reads instead of 1M. If the event socket overflows it falls back to
/// polling dumps every 50 ms (the `bool`). `ready` is called once the
/// subscription is in place.
pub fn wait_for_routes(
    family: Family,
    proto: u8,
    len: Option<u8>,
    n: u64,
    deadline: Instant,
    ready: impl FnOnce(),
) -> Result<(Instant, bool)> {
    let sock = Socket::open(family.route_group())?;
    ready();
    let mut seen: HashSet<(u128, u8)> = HashSet::with_capacity(n as usize);
    let mut order = crate::order_log::OrderLog::from_env(family, proto, n);
    let mut slots = vec![0u8; EVENT_BATCH * EVENT_SLOT];
    let mut overflow = false;
    // Routes installed before the subscription (none in a fresh run).
    if count_routes(family, proto, len)? >= n {
        return Ok((Instant::now(), false));
    }
    while !overflow {
        if Instant::now() > deadline {
            bail!(
                "timed out: {} of {n} routes of protocol {proto} in the kernel",
                seen.len()
            );
        }
        let read = read_events(&sock, &mut slots, |dgram| {
            route_messages(dgram, |new, r| {
                if !is_ours(r, family, proto) || len.is_some_and(|l| r.dst_len != l) {
                    return;
                }
                if new {
                    if let Some(o) = &mut order {
                        o.push(route_key(r).0, r.dst_len);
                    }
                    seen.insert(route_key(r));
                } else {
                    seen.remove(&route_key(r));
                }
            })
        });
        match read {
            Ok(_) if seen.len() as u64 >= n => {
                let at = Instant::now();
                if let Some(o) = order {
                    o.write(crate::order_log::monotonic_ns())?;
                }
                return Ok((at, false));
            }
            Ok(0) => std::thread::sleep(EVENT_NAP),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => overflow = true,
            Err(e) => return Err(e).context("reading route events"),
        }
    }
    loop {
        if count_routes(family, proto, len)? >= n {
            return Ok((Instant::now(), true));
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {n} routes of protocol {proto} in the kernel");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every route event of `families` and protocol `proto` in the main table
/// of the calling thread's namespace, as `f(family, new, (dst, dst_len))`, taken as
/// [`wait_for_routes`] takes them (batches, 1 ms naps: the DUT's writes
/// never have a reader to wake) until `f` returns `false`, `stop` is set
/// or `deadline` passes. `ready` is called once the subscription is in
/// place. An overflowing socket (events lost) is an error.
pub fn route_events(
    families: &[Family],
    proto: u8,
    deadline: Instant,
    stop: &AtomicBool,
    ready: impl FnOnce(),
    mut f: impl FnMut(Family, bool, (u128, u8)) -> bool,
) -> Result<()> {
    let groups = families.iter().fold(0, |g, f| g | f.route_group());
    let sock = Socket::open(groups)?;
    ready();
    let mut slots = vec![0u8; EVENT_BATCH * EVENT_SLOT];
    let mut more = true;
    while more && !stop.load(Ordering::Relaxed) {
        if Instant::now() > deadline {
            bail!("timed out watching route events");
        }
        let read = read_events(&sock, &mut slots, |dgram| {
            route_messages(dgram, |new, r| {
                for &family in families {
                    if more && is_ours(r, family, proto) {
                        more = f(family, new, route_key(r));
                    }
                }
            })
        });
        match read {
            Ok(0) => std::thread::sleep(EVENT_NAP),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                bail!("the route-event socket overflowed (events lost)")
            }
            Err(e) => return Err(e).context("reading route events"),
        }
    }
    Ok(())
}

/// A route-event listener of `family` in the calling thread's namespace,
/// reading (and counting) every event until `stop` — what the reconciler's
/// monitor costs the kernel and a reader (diagnostic, [`crate::kernel`]).
pub fn listen_until(family: Family, stop: Arc<AtomicBool>) -> Result<u64> {
    let sock = Socket::open(family.route_group())?;
    let mut rx = vec![0u8; 4 << 20];
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match sock.recv(&mut rx, Some(Duration::from_millis(20))) {
            Ok(Some(got)) => n += messages(&rx[..got]).count() as u64,
            Ok(None) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_message_layout() {
        let mut out = Vec::new();
        let enc = RouteEncoder {
            protocol: 151,
            table: 254,
            extra_flags: NLM_F_ACK,
        };
        let route = via(Ipv4Addr::new(10, 200, 0, 2).into());
        route_msg(
            &mut out,
            false,
            7,
            Family::V4.nth(1).unwrap(),
            &route,
            &enc,
            None,
        )
        .unwrap();
        // nlmsghdr 16 + rtmsg 12 + RTA_DST 8 + RTA_TABLE 8 + RTA_GATEWAY 8.
        assert_eq!(out.len(), 52);
        // Through a nexthop object (`crate::kernel_nh`): RTA_NH_ID 8 instead
        // of the gateway; a delete is the same either way.
        let mut nh = Vec::new();
        let p = Family::V4.nth(1).unwrap();
        route_msg(&mut nh, false, 7, p, &route, &enc, Some(0x7462_0097)).unwrap();
        assert_eq!(nh.len(), 52);
        assert_ne!(nh, out);
        assert_eq!(nh[44..52], [8, 0, 30, 0, 0x97, 0, 0x62, 0x74]);
        let (mut d0, mut d1) = (Vec::new(), Vec::new());
        route_msg(&mut d0, true, 7, p, &route, &enc, None).unwrap();
        route_msg(&mut d1, true, 7, p, &route, &enc, Some(0x7462_0097)).unwrap();
        assert_eq!(d0, d1);
        let mut seen = Vec::new();
        route_messages(&out, |new, r| {
            seen.push((new, route_key(r)));
            assert!(is_ours(r, Family::V4, 151));
            assert!(!is_ours(r, Family::V6, 151));
        });
        assert_eq!(seen, [(true, (0x0a80_0001, 32))]);
    }

    #[test]
    fn scattered_is_a_permutation() {
        for n in [1u32, 2, 10, 1000, 100_000] {
            let mut seen = vec![false; n as usize];
            for k in 0..n {
                let i = scattered(k, n) as usize;
                assert!(!seen[i], "n {n}: {i} twice");
                seen[i] = true;
            }
        }
        // Neighbours land far apart.
        assert!(scattered(1, 100_000).abs_diff(scattered(2, 100_000)) > 1000);
    }

    #[test]
    fn ipv6_route_message_layout() {
        let mut out = Vec::new();
        let enc = RouteEncoder {
            protocol: 151,
            table: 254,
            extra_flags: 0,
        };
        let route = via("fd00:200::2".parse().unwrap());
        let p = Family::V6.nth(0x1_0002).unwrap();
        assert_eq!(p.to_string(), "2001:db8:1:2::/64");
        route_msg(&mut out, false, 7, p, &route, &enc, None).unwrap();
        // nlmsghdr 16 + rtmsg 12 + RTA_DST 20 + RTA_TABLE 8 + RTA_GATEWAY 20.
        assert_eq!(out.len(), 76);
        let mut seen = Vec::new();
        route_messages(&out, |_, r| {
            assert!(is_ours(r, Family::V6, 151));
            seen.push(route_key(r));
        });
        assert_eq!(seen, [(0x2001_0db8_0001_0002_0000_0000_0000_0000, 64)]);
        // Distinct prefixes for distinct indices, across the 2^16 boundary.
        assert_ne!(
            Family::V6.nth(0xffff).unwrap(),
            Family::V6.nth(0x1_0000).unwrap()
        );
        assert_eq!(Family::V4.nth(1).unwrap().to_string(), "10.128.0.1/32");
    }
}
