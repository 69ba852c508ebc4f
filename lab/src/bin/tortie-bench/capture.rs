//! The feeder's side of an ingest run, seen on the wire: a packet socket
//! (`AF_PACKET`) on the feeder's veth, inside its namespace, reports
//!
//! - **t0**: the first outgoing TCP segment (by its kernel timestamp) whose
//!   payload holds a BGP UPDATE with content (RFC 4271 §4.3; an
//!   End-of-RIB, RFC 4724 §2 — IPv4's empty UPDATE or another family's
//!   UPDATE with only an empty MP_UNREACH_NLRI — does not count);
//! - **the feeder-bound floor**: when the feeder's last segment with UPDATE
//!   content left (segments of KEEPALIVEs and End-of-RIBs only do not
//!   count) — no DUT can have every route before that;
//! - how often the DUT advertised a **zero receive window** (it held the
//!   feeder back: the floor is then partly the DUT's own reading).
//!
//! The same for every feeder, whether it is BIRD or the bench's own
//! pre-built writer, so both DUTs and both feeders are timed the same way.
//!
//! Data flow: [`Wire::start`] spawns a thread that enters the namespace,
//! opens and binds the socket, says it is ready, reads one packet at a time
//! until it sees the first UPDATE (sent at once to [`Wire::first_update`]),
//! then takes whatever is queued in batches (`recvmmsg`, at most 512 bytes
//! of each packet: the headers and the first messages) and naps 1 ms when
//! nothing is, so the load's packets wake it at most once a millisecond;
//! every packet carries its kernel timestamp, so the naps do not blur the
//! times. [`Wire::finish`] stops it after one last drain and returns the
//! [`WireStats`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

/// What the capture saw after t0.
#[derive(Clone, Debug, Default)]
pub struct WireStats {
    /// When the feeder's last segment with UPDATE content left (kernel
    /// timestamp): the feeder-bound floor of the run.
    pub last_update: Option<Instant>,
    /// The feeder's outgoing segments with payload after t0.
    pub segments: u64,
    /// The DUT's segments that advertised a zero receive window.
    pub zero_windows: u64,
    /// Packets the socket dropped (`PACKET_STATISTICS`); non-zero means the
    /// last segment may have been missed (the JSON says so).
    pub drops: u64,
}

/// Watches one interface: the first outgoing UPDATE, then the rest.
pub struct Wire {
    first: mpsc::Receiver<Result<Instant, String>>,
    stop: Arc<AtomicBool>,
    join: Option<std::thread::JoinHandle<Result<WireStats>>>,
}

impl Wire {
    /// Starts watching `ifname` in namespace `ns`; returns once the socket
    /// is bound (packets sent after that are seen).
    pub fn start(ns: &str, ifname: &str) -> Result<Wire> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (tx, first) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let ns = ns.to_string();
        let ifname = ifname.to_string();
        let join = std::thread::spawn(move || {
            let tx2 = tx.clone();
            let r = crate::nl::in_netns(&ns, move || watch(&ifname, &ready_tx, &tx2, &stop2));
            if let Err(e) = &r {
                let _ = tx.send(Err(format!("{e:#}")));
            }
            r
        });
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(()) => {}
            Err(_) => {
                let msg = first
                    .recv_timeout(Duration::from_secs(1))
                    .ok()
                    .and_then(|r| r.err())
                    .unwrap_or_else(|| "no answer".into());
                bail!("packet capture did not start: {msg}");
            }
        }
        Ok(Wire {
            first,
            stop,
            join: Some(join),
        })
    }

    /// When the first UPDATE left (t0), waiting up to `timeout`.
    pub fn first_update(&self, timeout: Duration) -> Result<Instant> {
        match self.first.recv_timeout(timeout) {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => bail!("packet capture: {e}"),
            Err(_) => bail!("no UPDATE seen on the feeder's interface within {timeout:?}"),
        }
    }

    /// Stops watching (after taking what is queued) and returns what it saw.
    pub fn finish(mut self) -> Result<WireStats> {
        self.stop.store(true, Ordering::Relaxed);
        match self.join.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => bail!("packet capture panicked"),
            None => Ok(WireStats::default()),
        }
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// A file descriptor closed on drop.
struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

/// Packets taken per `recvmmsg` after t0.
const BATCH: usize = 64;
/// Bytes of each packet copied after t0: Ethernet, IP and TCP headers and
/// the first BGP messages.
const SNAP: usize = 512;
/// How long the reader sleeps when nothing was queued.
const NAP: Duration = Duration::from_millis(1);
/// Receive buffer (`SO_RCVBUFFORCE`): a packet socket's queue holds clones
/// charged at their full size, and a nap must not overflow it.
const RCVBUF: libc::c_int = 64 << 20;

fn setsockopt<T>(fd: libc::c_int, level: libc::c_int, name: libc::c_int, v: &T) {
    // SAFETY: `v` is a live value of the option's type and size.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as u32,
        );
    }
}

fn watch(
    ifname: &str,
    ready: &mpsc::Sender<()>,
    first: &mpsc::Sender<Result<Instant, String>>,
    stop: &AtomicBool,
) -> Result<WireStats> {
    // Outgoing packets reach only ETH_P_ALL taps (dev_queue_xmit_nit).
    const ETH_P_ALL: u16 = 0x0003;
    // SAFETY: plain syscalls with valid arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            libc::c_int::from(ETH_P_ALL.to_be()),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("AF_PACKET socket");
    }
    let fd = Fd(fd);
    let cname = std::ffi::CString::new(ifname).context("interface name")?;
    // SAFETY: a valid C string.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("interface {ifname}"));
    }
    // SAFETY: an all-zero sockaddr_ll is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ETH_P_ALL.to_be();
    sll.sll_ifindex = index as i32;
    // SAFETY: binding our socket to a sockaddr_ll we own.
    if unsafe {
        libc::bind(
            fd.0,
            (&raw const sll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error()).context("binding the packet socket");
    }
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    setsockopt(fd.0, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv);
    setsockopt(fd.0, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &RCVBUF);
    // Kernel receive timestamps (CLOCK_REALTIME), so a late wake-up of this
    // thread on a busy CPU does not move the times.
    setsockopt(
        fd.0,
        libc::SOL_SOCKET,
        libc::SO_TIMESTAMPNS,
        &1 as &libc::c_int,
    );
    let _ = ready.send(());
    let mut slots = vec![0u8; BATCH * SNAP];
    let mut ctrl = vec![0u64; BATCH * 8];
    // Until t0: one packet at a time (the socket sees little before the load).
    loop {
        if stop.load(Ordering::Relaxed) {
            bail!("stopped before any UPDATE");
        }
        let mut batch = Batch::new(&mut slots[..SNAP], &mut ctrl[..8]);
        let got = match batch.recv(fd.0, 0) {
            Ok(g) => g,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e).context("reading the packet socket"),
        };
        if let Some(p) = batch.packets(got).next()
            && p.outgoing
            && carries_update(p.frame)
        {
            let _ = first.send(Ok(p.at));
            break;
        }
    }
    // After t0: batches and naps until stopped, then one last drain.
    let mut stats = WireStats::default();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let mut batch = Batch::new(&mut slots, &mut ctrl);
        let got = match batch.recv(fd.0, libc::MSG_DONTWAIT) {
            Ok(g) => g,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e).context("reading the packet socket"),
        };
        for p in batch.packets(got) {
            count(&mut stats, &p);
        }
        if got == 0 {
            if stopping {
                break;
            }
            std::thread::sleep(NAP);
        }
    }
    stats.drops = drops(fd.0);
    Ok(stats)
}

/// One packet of a [`Batch`].
struct Packet<'a> {
    /// Sent by this host (the feeder), not received.
    outgoing: bool,
    /// The first [`SNAP`] bytes of the frame.
    frame: &'a [u8],
    /// The kernel's timestamp.
    at: Instant,
}

/// `recvmmsg` headers over slots of [`SNAP`] bytes, each with room for its
/// timestamp.
struct Batch<'a> {
    slots: &'a mut [u8],
    ctrl: &'a mut [u64],
    from: Vec<libc::sockaddr_ll>,
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl<'a> Batch<'a> {
    fn new(slots: &'a mut [u8], ctrl: &'a mut [u64]) -> Batch<'a> {
        let n = slots.len() / SNAP;
        // SAFETY: all-zero sockaddr_ll and mmsghdr are valid values.
        let from = vec![unsafe { std::mem::zeroed::<libc::sockaddr_ll>() }; n];
        let hdrs = (0..n)
            .map(|_| unsafe { std::mem::zeroed::<libc::mmsghdr>() })
            .collect();
        Batch {
            slots,
            ctrl,
            from,
            iov: Vec::with_capacity(n),
            hdrs,
        }
    }

    /// One `recvmmsg`; the number of packets read.
    fn recv(&mut self, fd: libc::c_int, flags: libc::c_int) -> std::io::Result<usize> {
        self.iov = self
            .slots
            .chunks_mut(SNAP)
            .map(|c| libc::iovec {
                iov_base: c.as_mut_ptr().cast(),
                iov_len: c.len(),
            })
            .collect();
        for ((h, iov), (from, ctrl)) in self
            .hdrs
            .iter_mut()
            .zip(self.iov.iter_mut())
            .zip(self.from.iter_mut().zip(self.ctrl.chunks_mut(8)))
        {
            h.msg_hdr.msg_name = (from as *mut libc::sockaddr_ll).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = ctrl.as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = std::mem::size_of_val(ctrl);
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: every header points at its own name, iovec (over a
        // distinct slot) and control buffer, all alive for the call.
        let got = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(got as usize)
    }

    /// The first `got` packets read, with their times.
    fn packets(&self, got: usize) -> impl Iterator<Item = Packet<'_>> {
        let now = Instant::now();
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        self.hdrs
            .iter()
            .zip(self.slots.chunks(SNAP))
            .zip(self.from.iter())
            .take(got)
            .map(move |((h, slot), from)| {
                // SAFETY: the header was filled by a successful recvmmsg
                // whose control buffer is still live.
                let stamped = unsafe { stamp(&h.msg_hdr) };
                let at = stamped.map_or(now, |s| now - wall.saturating_sub(s));
                Packet {
                    outgoing: from.sll_pkttype == libc::PACKET_OUTGOING,
                    frame: &slot[..(h.msg_len as usize).min(slot.len())],
                    at,
                }
            })
    }
}

/// The kernel's timestamp of a received packet (SCM_TIMESTAMPNS, real
/// time), as time since the epoch.
///
/// # Safety
/// `msg` must come from a successful `recvmsg`/`recvmmsg` whose control
/// buffer is live.
unsafe fn stamp(msg: &libc::msghdr) -> Option<Duration> {
    // SAFETY: walking the control messages the kernel filled in.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                return Some(Duration::new(
                    u64::try_from(ts.tv_sec).ok()?,
                    u32::try_from(ts.tv_nsec).ok()?,
                ));
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
        None
    }
}

/// Packets the socket dropped since it was opened.
fn drops(fd: libc::c_int) -> u64 {
    let mut st = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: getsockopt fills the tpacket_stats we own.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&raw mut st).cast(),
            &mut len,
        )
    };
    if rc == 0 { u64::from(st.tp_drops) } else { 0 }
}

/// Adds one packet seen after t0 to `stats`.
fn count(stats: &mut WireStats, p: &Packet<'_>) {
    let Some(seg) = Segment::parse(p.frame) else {
        return;
    };
    if p.outgoing {
        if seg.payload_len > 0 {
            stats.segments += 1;
            if !housekeeping_only(seg.payload, seg.payload_len) {
                stats.last_update = Some(p.at);
            }
        }
    } else if seg.window == 0 && seg.flags & (TCP_SYN | TCP_RST) == 0 {
        stats.zero_windows += 1;
    }
}

const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;

/// The TCP fields of an IPv4 frame the capture needs.
struct Segment<'a> {
    /// The payload bytes copied (up to [`SNAP`]).
    payload: &'a [u8],
    /// The payload's length on the wire (from the IP header).
    payload_len: usize,
    window: u16,
    flags: u8,
}

impl<'a> Segment<'a> {
    fn parse(frame: &'a [u8]) -> Option<Segment<'a>> {
        if frame.get(12..14) != Some(&[0x08, 0x00]) {
            return None;
        }
        let ip = frame.get(14..)?;
        if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 6 {
            return None;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let tcp = ip.get(ihl..)?;
        if tcp.len() < 20 {
            return None;
        }
        let doff = usize::from(tcp[12] >> 4) * 4;
        Some(Segment {
            payload: tcp.get(doff..).unwrap_or_default(),
            // A GSO segment over 64 KiB (BIG TCP) says 0 in the IP header.
            payload_len: if total == 0 {
                usize::MAX
            } else {
                total.saturating_sub(ihl + doff)
            },
            window: u16::from_be_bytes([tcp[14], tcp[15]]),
            flags: tcp[13],
        })
    }
}

/// Whether a segment's payload (`len` bytes on the wire, `visible` of them
/// copied) is nothing but KEEPALIVEs and End-of-RIBs, whole messages from
/// its first byte: a segment that starts inside a message (a large write
/// split anywhere) or is cut before its end counts as UPDATE content.
fn housekeeping_only(visible: &[u8], len: usize) -> bool {
    if visible.len() < len {
        return false;
    }
    let mut p = visible;
    while !p.is_empty() {
        if p.len() < 19 || !p[..16].iter().all(|&b| b == 0xff) {
            return false;
        }
        let mlen = usize::from(u16::from_be_bytes([p[16], p[17]]));
        if mlen < 19 || mlen > p.len() {
            return false;
        }
        let keepalive = p[18] == 4 && mlen == 19;
        let end_of_rib = p[18] == 2 && is_end_of_rib(&p[19..mlen]);
        if !(keepalive || end_of_rib) {
            return false;
        }
        p = &p[mlen..];
    }
    true
}

/// Whether an UPDATE body is an End-of-RIB (RFC 4724 §2): no withdrawn
/// routes and either no attributes (IPv4 unicast) or only an MP_UNREACH_NLRI
/// holding just its AFI/SAFI (RFC 4760 §4).
fn is_end_of_rib(body: &[u8]) -> bool {
    let [0, 0, al0, al1, attrs @ ..] = body else {
        return false;
    };
    if usize::from(u16::from_be_bytes([*al0, *al1])) != attrs.len() {
        return false;
    }
    match attrs {
        [] => true,
        [flags, 15, rest @ ..] => {
            let (len, value) = if flags & 0x10 != 0 {
                match rest {
                    [a, b, value @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), value),
                    _ => return false,
                }
            } else {
                match rest {
                    [l, value @ ..] => (usize::from(*l), value),
                    _ => return false,
                }
            };
            len == 3 && value.len() == 3
        }
        _ => false,
    }
}

/// Whether an Ethernet frame (what a `SOCK_RAW` packet socket on a veth
/// gives) carries IPv4 TCP with a BGP UPDATE that is not an End-of-RIB
/// ([`is_end_of_rib`]: neither IPv4's empty one nor IPv6's, which the live
/// BIRD feeder sends as soon as the session is up, before the load) at a
/// message boundary of its payload. Until session 14 an UPDATE longer
/// than IPv4's End-of-RIB counted, so IPv6's set t0 of the live IPv6 rows
/// (lab/bench/README.md, session 14 v6e2e lane).
fn carries_update(frame: &[u8]) -> bool {
    // Ethernet: EtherType IPv4.
    if frame.get(12..14) != Some(&[0x08, 0x00]) {
        return false;
    }
    let Some(ip) = frame.get(14..) else {
        return false;
    };
    if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 6 {
        return false;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let Some(tcp) = ip.get(ihl..) else {
        return false;
    };
    if tcp.len() < 20 {
        return false;
    }
    let doff = usize::from(tcp[12] >> 4) * 4;
    let Some(mut payload) = tcp.get(doff..) else {
        return false;
    };
    // Walk the BGP messages from the start of the segment.
    while payload.len() >= 19 && payload[..16].iter().all(|&b| b == 0xff) {
        let len = usize::from(u16::from_be_bytes([payload[16], payload[17]]));
        if payload[18] == 2 && len > 23 {
            match payload.get(19..len) {
                Some(body) if is_end_of_rib(body) => {}
                // An UPDATE with content, or one cut by the segment or
                // the snapshot (longer than any End-of-RIB).
                _ => return true,
            }
        }
        if len < 19 || len > payload.len() {
            return false;
        }
        payload = &payload[len..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let mut ip = vec![0u8; 20];
        ip[0] = 0x45;
        ip[9] = 6;
        let mut tcp = vec![0u8; 20];
        tcp[12] = 5 << 4;
        f.extend(ip);
        f.extend(tcp);
        f.extend_from_slice(payload);
        f
    }

    fn msg(kind: u8, body: usize) -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend(((19 + body) as u16).to_be_bytes());
        m.push(kind);
        m.extend(vec![0u8; body]);
        m
    }

    #[test]
    fn finds_updates_but_not_keepalives_or_end_of_rib() {
        assert!(!carries_update(&frame(&msg(4, 0))));
        assert!(!carries_update(&frame(&msg(2, 4))), "End-of-RIB");
        assert!(carries_update(&frame(&msg(2, 30))));
        let mut two = msg(4, 0);
        two.extend(msg(2, 30));
        assert!(carries_update(&frame(&two)), "after a KEEPALIVE");
        // IPv6's End-of-RIB (an empty MP_UNREACH_NLRI, RFC 4760 §4), alone
        // or before an UPDATE.
        let mut eor6 = vec![0xff; 16];
        eor6.extend([0, 29, 2, 0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1]);
        assert!(!carries_update(&frame(&eor6)), "IPv6 End-of-RIB");
        let mut then = eor6.clone();
        then.extend(msg(2, 30));
        assert!(carries_update(&frame(&then)), "after an IPv6 End-of-RIB");
        assert!(!carries_update(&frame(&[1, 2, 3])));
        assert!(!carries_update(&[0u8; 10]));
    }

    /// A frame with the IP total length set, TCP window `window`.
    fn segment(payload: &[u8], window: u16) -> Vec<u8> {
        let mut f = frame(payload);
        f[16..18].copy_from_slice(&((40 + payload.len()) as u16).to_be_bytes());
        f[14 + 20 + 14..14 + 20 + 16].copy_from_slice(&window.to_be_bytes());
        f
    }

    fn seen(frame: &[u8], outgoing: bool, stats: &mut WireStats) -> Instant {
        let at = Instant::now();
        count(
            stats,
            &Packet {
                outgoing,
                frame,
                at,
            },
        );
        at
    }

    #[test]
    fn the_last_update_not_keepalives_or_end_of_ribs() {
        let mut st = WireStats::default();
        let update = seen(&segment(&msg(2, 30), 100), true, &mut st);
        assert_eq!(st.last_update, Some(update));
        // A segment starting inside a message is UPDATE content.
        let inside = seen(&segment(&[0u8; 40], 100), true, &mut st);
        assert_eq!(st.last_update, Some(inside));
        // KEEPALIVE, the IPv4 End-of-RIB, the IPv6 one (MP_UNREACH_NLRI
        // with AFI 2 / SAFI 1 only): not content.
        let mut eor6 = vec![0xff; 16];
        eor6.extend([0, 29, 2, 0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1]);
        let mut tail = msg(4, 0);
        tail.extend(msg(2, 4));
        tail.extend(&eor6);
        seen(&segment(&tail, 100), true, &mut st);
        assert_eq!(st.last_update, Some(inside));
        assert_eq!(st.segments, 3);
        // The same bytes with another attribute type: content.
        let mut not_eor = eor6.clone();
        not_eor[24] = 14;
        let late = seen(&segment(&not_eor, 100), true, &mut st);
        assert_eq!(st.last_update, Some(late));
        // The DUT's zero windows; pure ACKs of the feeder are not segments.
        seen(&segment(&[], 0), false, &mut st);
        seen(&segment(&[], 512), false, &mut st);
        seen(&segment(&[], 512), true, &mut st);
        assert_eq!((st.zero_windows, st.segments), (1, 4));
    }
}
