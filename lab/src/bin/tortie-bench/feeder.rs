//! The BGP feeder: a minimal speaker built on tortie's own encoder
//! (`tortie_bgp::wire`) that pushes pre-built UPDATE bytes at the device
//! under test, so the feeder costs one `write` per 256 KiB and is never the
//! bottleneck ([`self_rate`] measures it against a discarding reader).
//! IPv4 workloads are /28s in NLRI with NEXT_HOP; IPv6 workloads are /48s
//! in MP_REACH_NLRI with an IPv6 next hop (RFC 4760 §3), over the same IPv4
//! session (both families negotiated, RFC 4760 §8).
//!
//! Data flow: [`Workload::build`] encodes every UPDATE up front; [`start`]
//! runs a thread inside the feeder's namespace that listens, accepts the
//! DUT's connection, does OPEN/KEEPALIVE (RFC 4271 §8), then writes the
//! workload, an End-of-RIB (RFC 4724 §2) and keepalives until stopped,
//! reporting the moment of the first UPDATE through a channel. A second
//! thread drains whatever the DUT sends back.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tortie_bgp::wire::{self, Capability, CodecContext, Message, Open, Update};
use tortie_bgp::{AddressFamily, AsPath, Ipv4Prefix, Ipv6Prefix, Origin, PathAttributes, Prefix};

use crate::nl::{self, Family};

/// How prefixes are spread over UPDATEs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// ~500 prefixes per UPDATE sharing one attribute set.
    Packed,
    /// One prefix per UPDATE, every one with its own AS_PATH.
    Unique,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Packed => "packed",
            Shape::Unique => "unique",
        }
    }
}

/// Prefix length of the benchmark prefixes of `family`: /28s in
/// 10.0.0.0/8, /48s in fd00::/28 (2^20 of each).
pub fn prefix_len(family: Family) -> u8 {
    match family {
        Family::V4 => 28,
        Family::V6 => 48,
    }
}

/// Most prefixes a workload can hold (2^20 of either family).
pub const MAX_PREFIXES: u32 = 1 << 20;

/// The i-th benchmark prefix of `family` (i < [`MAX_PREFIXES`]):
/// `10.0.0.0 + 16·i`/28, or `fd00:<i / 2^16>:<i mod 2^16>::/48`.
pub fn nth_prefix(family: Family, i: u32) -> Prefix {
    let len = prefix_len(family);
    // i < 2^20 keeps both in their block with a valid length.
    match family {
        Family::V4 => {
            let a = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + (i << 4));
            Prefix::V4(Ipv4Prefix::new(a, len).unwrap_or_else(|| unreachable!()))
        }
        Family::V6 => {
            let a = Ipv6Addr::new(0xfd00, (i >> 16) as u16, i as u16, 0, 0, 0, 0, 0);
            Prefix::V6(Ipv6Prefix::new(a, len).unwrap_or_else(|| unreachable!()))
        }
    }
}

/// Pre-built UPDATE bytes, cut at message boundaries into write chunks.
pub struct Workload {
    pub family: Family,
    pub bytes: Vec<u8>,
    /// End offsets of the write chunks.
    pub chunks: Vec<usize>,
    pub prefixes: u32,
    pub messages: usize,
    pub build_time: Duration,
}

/// The families the feeder offers (and the DUTs are configured with):
/// IPv4 and IPv6 unicast, whichever the workload carries.
pub const FAMILIES: [AddressFamily; 2] = [AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST];

/// The codec context both ends negotiate: 4-octet ASNs, IPv4 and IPv6
/// unicast, eBGP.
pub fn context(local_asn: u32) -> CodecContext {
    CodecContext {
        four_octet_as: true,
        families: FAMILIES.to_vec(),
        local_asn,
        ..CodecContext::default()
    }
}

impl Workload {
    /// `n` prefixes of `family` announced by `asn` with `next_hop` (of
    /// that family: NEXT_HOP for IPv4, MP_REACH_NLRI's for IPv6).
    pub fn build(
        shape: Shape,
        family: Family,
        n: u32,
        asn: u32,
        next_hop: IpAddr,
    ) -> Result<Workload> {
        if n > MAX_PREFIXES {
            bail!("at most {MAX_PREFIXES} prefixes");
        }
        if next_hop.is_ipv6() != (family == Family::V6) {
            bail!("next hop {next_hop} is not of the workload's family");
        }
        let nth = |i| nth_prefix(family, i);
        let t = Instant::now();
        let ctx = context(asn);
        let mut msgs: Vec<Vec<u8>> = Vec::new();
        let attrs = |path: Vec<u32>| {
            Arc::new(PathAttributes {
                origin: Origin::Igp,
                as_path: AsPath::sequence(path),
                next_hop: Some(next_hop),
                ..PathAttributes::default()
            })
        };
        match shape {
            Shape::Packed => {
                let shared = attrs(vec![asn]);
                let mut i = 0;
                while i < n {
                    let end = (i + 500).min(n);
                    let u = Update {
                        attributes: Some(shared.clone()),
                        announced: (i..end).map(nth).collect(),
                        ..Update::default()
                    };
                    wire::encode_updates(&u, &ctx, &mut msgs).context("encoding UPDATEs")?;
                    i = end;
                }
            }
            Shape::Unique => {
                for i in 0..n {
                    // Private 4-octet ASNs (RFC 6996) make every AS_PATH distinct.
                    let u = Update {
                        attributes: Some(attrs(vec![asn, 4_200_000_000 + i])),
                        announced: vec![nth(i)].into(),
                        ..Update::default()
                    };
                    wire::encode_updates(&u, &ctx, &mut msgs).context("encoding UPDATEs")?;
                }
            }
        }
        let messages = msgs.len();
        let total: usize = msgs.iter().map(Vec::len).sum();
        let mut bytes = Vec::with_capacity(total);
        let mut chunks = Vec::new();
        for m in msgs {
            bytes.extend_from_slice(&m);
            if bytes.len() - chunks.last().copied().unwrap_or(0) >= 256 << 10 {
                chunks.push(bytes.len());
            }
        }
        if chunks.last().copied() != Some(bytes.len()) {
            chunks.push(bytes.len());
        }
        Ok(Workload {
            family,
            bytes,
            chunks,
            prefixes: n,
            messages,
            build_time: t.elapsed(),
        })
    }
}

/// Events from the feeder thread.
#[derive(Debug)]
pub enum FeedEvent {
    /// Listening; the DUT may be started.
    Listening,
    /// Session Established; waiting for [`Feeder::go`] before sending.
    Established,
    /// Session up; the first UPDATE byte is about to be written.
    Started,
    /// The last UPDATE byte was accepted by the socket; the feeder thread's
    /// CPU time spent writing.
    Written(Duration),
    Failed(String),
}

/// A running feeder; stops (and closes the session) on drop.
pub struct Feeder {
    pub events: mpsc::Receiver<FeedEvent>,
    go: mpsc::Sender<()>,
    stop: Arc<AtomicBool>,
    join: Option<std::thread::JoinHandle<()>>,
}

impl Feeder {
    /// Lets the feeder start sending (after [`FeedEvent::Established`]).
    pub fn go(&self) {
        let _ = self.go.send(());
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// Runs `serve` on a thread of its own inside namespace `ns` (the feeder's
/// and the probe peer's thread): a failure to enter the namespace or
/// `serve`'s error reaches `tx` as [`FeedEvent::Failed`].
pub fn spawn_in_netns<F>(
    ns: &str,
    tx: mpsc::Sender<FeedEvent>,
    serve: F,
) -> Result<std::thread::JoinHandle<()>>
where
    F: FnOnce(&mpsc::Sender<FeedEvent>) -> Result<()> + Send + 'static,
{
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    Ok(std::thread::spawn(move || {
        let run = crate::nl::enter_netns(&file, &path).and_then(|()| serve(&tx));
        if let Err(e) = run {
            let _ = tx.send(FeedEvent::Failed(format!("{e:#}")));
        }
    }))
}

/// Starts the feeder in namespace `ns`, listening on `listen`.
pub fn start(
    ns: &str,
    listen: SocketAddr,
    asn: u32,
    router_id: Ipv4Addr,
    work: Arc<Workload>,
) -> Result<Feeder> {
    let (tx, rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let join = spawn_in_netns(ns, tx, move |tx| {
        serve(listen, asn, router_id, &work, tx, &go_rx, &stop2)
    })?;
    Ok(Feeder {
        events: rx,
        go: go_tx,
        stop,
        join: Some(join),
    })
}

fn serve(
    listen: SocketAddr,
    asn: u32,
    router_id: Ipv4Addr,
    work: &Workload,
    tx: &mpsc::Sender<FeedEvent>,
    go: &mpsc::Receiver<()>,
    stop: &AtomicBool,
) -> Result<()> {
    let Some(mut stream) = accept(listen, tx, stop)? else {
        return Ok(());
    };
    handshake(&mut stream, asn, router_id)?;
    let reader = stream.try_clone()?;
    let drain = std::thread::spawn(move || drain(reader));
    let ctx = context(asn);
    let mut keepalive = Vec::new();
    wire::encode(&Message::Keepalive, &ctx, &mut keepalive)?;
    let _ = tx.send(FeedEvent::Established);
    let mut last_ka = Instant::now();
    loop {
        match go.recv_timeout(Duration::from_secs(5)) {
            Ok(()) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                stream.write_all(&keepalive)?;
                last_ka = Instant::now();
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
    }
    let cpu0 = nl::thread_cpu();
    let _ = tx.send(FeedEvent::Started);
    let mut from = 0;
    for &end in &work.chunks {
        stream
            .write_all(&work.bytes[from..end])
            .context("writing UPDATEs")?;
        from = end;
        if last_ka.elapsed() > Duration::from_secs(10) {
            stream.write_all(&keepalive)?;
            last_ka = Instant::now();
        }
    }
    let _ = tx.send(FeedEvent::Written(nl::thread_cpu().saturating_sub(cpu0)));
    // End-of-RIB for each family (RFC 4724 §2): an empty UPDATE for IPv4,
    // an empty MP_UNREACH_NLRI for IPv6.
    let mut eor = Vec::new();
    for f in FAMILIES {
        wire::encode(
            &Message::Update(Update {
                end_of_rib: Some(f),
                ..Update::default()
            }),
            &ctx,
            &mut eor,
        )?;
    }
    stream.write_all(&eor)?;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if last_ka.elapsed() > Duration::from_secs(10) {
            if stream.write_all(&keepalive).is_err() {
                break;
            }
            last_ka = Instant::now();
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = drain.join();
    Ok(())
}

/// Listens on `listen` (says so on `tx`), takes the DUT's connection
/// (within 60 s; `None` when `stop` came first), then OPEN/KEEPALIVE
/// ([`handshake`]).
pub(crate) fn accept(
    listen: SocketAddr,
    tx: &mpsc::Sender<FeedEvent>,
    stop: &AtomicBool,
) -> Result<Option<TcpStream>> {
    let listener = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    listener.set_nonblocking(true)?;
    let _ = tx.send(FeedEvent::Listening);
    let deadline = Instant::now() + Duration::from_secs(60);
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                if Instant::now() > deadline {
                    bail!("no BGP connection to {listen} within 60 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e).context("accepting"),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    Ok(Some(stream))
}

/// OPEN out, OPEN in, KEEPALIVE out, KEEPALIVE in (RFC 4271 §8.2.2).
pub(crate) fn handshake(s: &mut TcpStream, asn: u32, router_id: Ipv4Addr) -> Result<()> {
    let ctx = context(asn);
    let open = Message::Open(Open {
        version: wire::BGP_VERSION,
        my_as: u16::try_from(asn).unwrap_or(wire::AS_TRANS),
        hold_time: 240,
        bgp_identifier: router_id,
        capabilities: vec![
            Capability::Multiprotocol(FAMILIES[0]),
            Capability::Multiprotocol(FAMILIES[1]),
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ],
    });
    let mut out = Vec::new();
    wire::encode(&open, &ctx, &mut out)?;
    s.write_all(&out)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut buf = Vec::new();
    let mut got_open = false;
    loop {
        let msg = read_message(s, &mut buf)?;
        match wire::decode(&msg, &ctx) {
            Ok(Message::Open(_)) => {
                got_open = true;
                let mut ka = Vec::new();
                wire::encode(&Message::Keepalive, &ctx, &mut ka)?;
                s.write_all(&ka)?;
            }
            Ok(Message::Keepalive) if got_open => {
                s.set_read_timeout(None)?;
                return Ok(());
            }
            Ok(Message::Notification(n)) => {
                bail!("peer sent NOTIFICATION {}/{}", n.code, n.subcode)
            }
            Ok(_) => {}
            Err(e) => bail!("decoding the peer's message: {e:?}"),
        }
    }
}

fn read_message(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Vec<u8>> {
    loop {
        if let Some(len) = wire::frame(buf, 4096).map_err(|e| anyhow::anyhow!("framing: {e:?}"))? {
            let msg: Vec<u8> = buf.drain(..len).collect();
            return Ok(msg);
        }
        let mut tmp = [0u8; 4096];
        let n = s.read(&mut tmp).context("reading from the peer")?;
        if n == 0 {
            bail!("peer closed the connection during the handshake");
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

pub(crate) fn drain(mut s: TcpStream) {
    let mut buf = vec![0u8; 64 << 10];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

/// The feeder's own rate: the workload written over loopback TCP (in the
/// calling thread's namespace) to a reader that discards it. Prefixes/s.
pub fn self_rate(work: &Workload) -> Result<f64> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let total = work.bytes.len();
    let done = Arc::new(Mutex::new(0usize));
    let d2 = done.clone();
    let r = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = l.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0;
        while got < total {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            got += n;
        }
        if let Ok(mut g) = d2.lock() {
            *g = got;
        }
        Ok(())
    });
    let mut s = TcpStream::connect(addr)?;
    let t = Instant::now();
    let mut from = 0;
    for &end in &work.chunks {
        s.write_all(&work.bytes[from..end])?;
        from = end;
    }
    r.join()
        .map_err(|_| anyhow::anyhow!("discard reader panicked"))??;
    let el = t.elapsed();
    let got = done.lock().map(|g| *g).unwrap_or(0);
    if got != total {
        bail!("discard reader got {got} of {total} bytes");
    }
    Ok(f64::from(work.prefixes) / el.as_secs_f64().max(1e-9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_decode_back() {
        let nh4: IpAddr = Ipv4Addr::new(198, 18, 0, 1).into();
        let nh6: IpAddr = "fd12:18::1".parse().unwrap();
        for (family, nh) in [(Family::V4, nh4), (Family::V6, nh6)] {
            for shape in [Shape::Packed, Shape::Unique] {
                let w = Workload::build(shape, family, 1200, 65001, nh).unwrap();
                let ctx = context(65002);
                let mut off = 0;
                let mut seen = std::collections::HashSet::new();
                let mut msgs = 0;
                while off < w.bytes.len() {
                    let len = wire::frame(&w.bytes[off..], 4096).unwrap().unwrap();
                    match wire::decode(&w.bytes[off..off + len], &ctx).unwrap() {
                        Message::Update(u) => {
                            let a = u.attributes.as_deref().unwrap();
                            assert_eq!(a.next_hop, Some(nh), "{family:?} {shape:?}");
                            for p in u.announced {
                                assert_eq!(matches!(p, Prefix::V6(_)), family == Family::V6);
                                assert_eq!(p.len(), prefix_len(family));
                                seen.insert(p);
                            }
                        }
                        m => panic!("unexpected {m:?}"),
                    }
                    off += len;
                    msgs += 1;
                }
                assert_eq!(seen.len(), 1200, "{family:?} {shape:?}: unique prefixes");
                assert_eq!(msgs, w.messages);
                if shape == Shape::Packed {
                    // ~500 a message for both families (/48s: 7 bytes each).
                    assert_eq!(msgs, 3, "{family:?}");
                }
                assert_eq!(w.chunks.last().copied(), Some(w.bytes.len()));
            }
        }
        assert!(Workload::build(Shape::Packed, Family::V6, 10, 65001, nh4).is_err());
        assert_eq!(nth_prefix(Family::V4, 1).to_string(), "10.0.0.16/28");
        assert_eq!(
            nth_prefix(Family::V6, 0x1_0002).to_string(),
            "fd00:1:2::/48"
        );
        assert_eq!(
            nth_prefix(Family::V6, MAX_PREFIXES - 1).to_string(),
            "fd00:f:ffff::/48"
        );
    }
}
