//! Helpers for the loopback session tests: speaker configs on distinct
//! 127.0.0.0/8 addresses (one pair per test, so parallel tests never meet),
//! free ports, and waiting for events with a deadline.

#![allow(dead_code)]

pub mod raw;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::sync::mpsc::Receiver;
use tortie_bgp::{
    GracefulRestartConfig, PeerConfig, SessionState, Speaker, SpeakerConfig, SpeakerEvent,
};

pub fn ip(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, a, b))
}

/// A port that was free a moment ago on `addr`.
pub fn free_port(addr: IpAddr) -> u16 {
    std::net::TcpListener::bind((addr, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
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
        best_path_events: true,
        best_path_attributes: true,
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
