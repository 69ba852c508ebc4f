//! Helpers for the loopback session tests: speaker configs on distinct
//! 127.0.0.0/8 addresses (one pair per test, so parallel tests never meet),
//! listener ports no other socket can take first, and waiting for events
//! with a deadline.

#![allow(dead_code)]

pub mod raw;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::Receiver;
use tortie_bgp::{
    GracefulRestartConfig, PeerConfig, SessionState, Speaker, SpeakerConfig, SpeakerEvent,
};

pub fn ip(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, a, b))
}

/// A port for a listener (or a refused connect) on `addr` that nothing else
/// takes before the test binds it. Asking the kernel for port 0 and closing
/// the socket raced: the kernel could hand the same port to another socket
/// (another test's connect, as its ephemeral source port) before the test
/// bound it (AddrInUse in CI). So the port comes from outside the kernel's
/// ephemeral range (`ip_local_port_range`), which neither `connect` nor a
/// bind to port 0 ever picks; each port is handed out once per process
/// (tests run in parallel threads), from an offset derived from the process
/// id (the same tests may run in another process at the same time), and only
/// if it is free on `addr` now.
pub fn free_port(addr: IpAddr) -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (lo, span) = *TEST_PORTS.get_or_init(test_port_range);
    let start = std::process::id().wrapping_mul(2_654_435_761) % span;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < span, "no free test port left on {addr}");
        let port = lo + (start + n) % span;
        let port = u16::try_from(port).expect("test port range is within u16");
        if std::net::TcpListener::bind((addr, port)).is_ok() {
            return port;
        }
    }
}

static TEST_PORTS: OnceLock<(u32, u32)> = OnceLock::new();

/// (first port, count) of the larger block of unprivileged ports outside the
/// kernel's ephemeral range (32768-60999 by default: 1024-32767).
fn test_port_range() -> (u32, u32) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap_or_else(|_| "32768 60999".into());
    let mut it = text.split_whitespace().map(|v| v.parse::<u32>());
    let (Some(Ok(low)), Some(Ok(high))) = (it.next(), it.next()) else {
        panic!("unreadable ip_local_port_range: {text:?}");
    };
    let below = (1024, low.saturating_sub(1024));
    let above = (high + 1, 65535u32.saturating_sub(high));
    let best = if below.1 >= above.1 { below } else { above };
    assert!(
        best.1 >= 1000,
        "too few ports outside the ephemeral range {low}-{high}"
    );
    best
}

pub fn config(asn: u32, addr: IpAddr, listen: bool) -> SpeakerConfig {
    let id = match addr {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(_) => Ipv4Addr::new(10, 0, 0, 1),
    };
    SpeakerConfig {
        local_asn: asn,
        router_id: id,
        local_addresses: vec![addr],
        listen: listen.then(|| SocketAddr::new(addr, free_port(addr))),
        hold_time: 90,
        connect_retry: Duration::from_millis(500),
        graceful_restart: None,
        cluster_id: None,
        guard: Default::default(),
        ebgp_requires_policy: true,
        best_path_feed: tortie_bgp::BestPathFeed::Full,
        peers: Vec::new(),
    }
}

pub fn peer(addr: IpAddr, asn: u32, port: u16, passive: bool) -> PeerConfig {
    let mut p = PeerConfig::new(addr, asn);
    p.port = port;
    p.passive = passive;
    p
}

pub fn gr(restart_time: u16) -> Option<GracefulRestartConfig> {
    Some(GracefulRestartConfig {
        restart_time,
        forwarding_preserved: tortie_bgp::fsm::UNICAST_FAMILIES.to_vec(),
    })
}

/// Waits for an event matching `pred`, skipping others; panics on timeout.
pub async fn wait_for(
    rx: &mut Receiver<SpeakerEvent>,
    secs: u64,
    what: &str,
    pred: impl Fn(&SpeakerEvent) -> bool,
) -> SpeakerEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) if pred(&ev) => return ev,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("event channel closed while waiting for {what}"),
            Err(_) => panic!("timed out after {secs}s waiting for {what}"),
        }
    }
}

pub async fn wait_established(rx: &mut Receiver<SpeakerEvent>, peer: IpAddr) {
    wait_for(rx, 20, &format!("{peer} Established"), |e| {
        matches!(e, SpeakerEvent::PeerStateChanged { peer: p, state: SessionState::Established, .. } if *p == peer)
    })
    .await;
}

/// eBGP pair: A (AS 65001, listening, passive toward B) and B (AS 65002,
/// connecting to A), both Established; `tweak_b` adjusts B's config first.
pub async fn ebgp_pair(
    a_ip: IpAddr,
    b_ip: IpAddr,
    tweak_b: impl FnOnce(&mut SpeakerConfig),
) -> (
    Speaker,
    Receiver<SpeakerEvent>,
    Speaker,
    Receiver<SpeakerEvent>,
) {
    let mut a_cfg = config(65001, a_ip, true);
    let a_port = a_cfg.listen.expect("A listens").port();
    a_cfg.peers.push(peer(b_ip, 65002, 179, true));
    let mut b_cfg = config(65002, b_ip, false);
    b_cfg.peers.push(peer(a_ip, 65001, a_port, false));
    tweak_b(&mut b_cfg);
    let (a, mut a_rx) = Speaker::start(a_cfg).await.expect("A starts");
    let (b, mut b_rx) = Speaker::start(b_cfg).await.expect("B starts");
    wait_established(&mut a_rx, b_ip).await;
    wait_established(&mut b_rx, a_ip).await;
    (a, a_rx, b, b_rx)
}

pub async fn state_of(s: &Speaker, peer: IpAddr) -> SessionState {
    s.peers()
        .await
        .into_iter()
        .find(|p| p.address == peer)
        .map(|p| p.state)
        .expect("peer configured")
}

/// Drains whatever events are queued (so later waits see fresh ones).
pub fn drain(rx: &mut Receiver<SpeakerEvent>) -> Vec<SpeakerEvent> {
    let mut v = Vec::new();
    while let Ok(e) = rx.try_recv() {
        v.push(e);
    }
    v
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// Root-only tests: fail in CI when not root, skip (with a message) otherwise.
pub fn require_root() -> bool {
    if is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("this test needs root and CI is set");
    }
    eprintln!("skipped: needs root");
    false
}
