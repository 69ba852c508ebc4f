//! Two (or more) in-process speakers talking BGP over loopback addresses.

mod session_common;

use std::time::Duration;

use session_common::*;
use tortie_bgp::{Prefix, SessionState, Speaker, SpeakerEvent};

fn pfx(s: &str) -> Prefix {
    s.parse().unwrap()
}

#[tokio::test]
async fn establish_exchange_and_withdraw() {
    // A listens (passive toward B); B connects to A.
    let (a_ip, b_ip) = (ip(1, 1), ip(1, 2));
    let (a, _a_rx, b, mut b_rx) = ebgp_pair(a_ip, b_ip, |_| {}).await;

    a.originate(pfx("10.1.0.0/24"), None).await.unwrap();
    let ev = wait_for(&mut b_rx, 10, "route from A", |e| matches!(e, SpeakerEvent::BestPathChanged { prefix, .. } if *prefix == pfx("10.1.0.0/24"))).await;
    let SpeakerEvent::BestPathChanged {
        next_hops,
        attributes,
        ..
    } = ev
    else {
        unreachable!()
    };
    assert_eq!(next_hops, vec![a_ip], "eBGP next-hop self");
    let attrs = attributes.expect("attributes");
    assert_eq!(attrs.as_path.to_string(), "65001");

    let routes = b.routes().await;
    let r = routes
        .iter()
        .find(|r| r.prefix == pfx("10.1.0.0/24"))
        .expect("in Loc-RIB");
    assert_eq!(r.candidates.len(), 1);
    assert!(r.candidates[0].best && r.candidates[0].peer == Some(a_ip));
    // Covering prefixes of an address, longest first, with the best path's
    // peer (None: originated here).
    b.originate(pfx("10.0.0.0/8"), None).await.unwrap();
    let inside: std::net::IpAddr = "10.1.0.9".parse().unwrap();
    assert_eq!(
        b.covering(inside).await,
        vec![(pfx("10.1.0.0/24"), Some(a_ip)), (pfx("10.0.0.0/8"), None)]
    );
    assert_eq!(
        b.covering("10.2.0.1".parse().unwrap()).await,
        vec![(pfx("10.0.0.0/8"), None)]
    );
    assert!(b.covering("192.0.2.77".parse().unwrap()).await.is_empty());
    b.withdraw(pfx("10.0.0.0/8")).await.unwrap();

    let st = b.peers().await;
    assert_eq!(st[0].state, SessionState::Established);
    assert_eq!(st[0].routes_received, 1);
    assert!(st[0].messages_received.update >= 1 && st[0].messages_received.open == 1);
    assert_eq!(st[0].established_transitions, 1);
    assert_eq!(st[0].hold_time, Some(90));
    let a_st = a.peers().await;
    assert_eq!(a_st[0].routes_advertised, 1);

    a.withdraw(pfx("10.1.0.0/24")).await.unwrap();
    wait_for(&mut b_rx, 10, "withdrawal from A", |e| {
        matches!(e, SpeakerEvent::BestPathChanged { prefix, next_hops, attributes: None, .. } if *prefix == pfx("10.1.0.0/24") && next_hops.is_empty())
    })
    .await;

    // Administrative shutdown: B sees Cease/2.
    a.shutdown(false).await;
    let ev = wait_for(&mut b_rx, 10, "session down", |e| {
        matches!(
            e,
            SpeakerEvent::PeerStateChanged {
                state: SessionState::Idle,
                ..
            }
        )
    })
    .await;
    let SpeakerEvent::PeerStateChanged { reason, .. } = ev else {
        unreachable!()
    };
    assert!(reason.contains("6/2"), "{reason}");
    b.shutdown(false).await;
}

/// `best_path_feed: Off` (`tortie run --no-kernel`): learned routes
/// reach the Loc-RIB and are queryable, but the owner gets no
/// `BestPathChanged` for them; other events (session state) still come.
#[tokio::test]
async fn best_path_feed_off_learns_without_feeding_the_owner() {
    let (a_ip, b_ip) = (ip(24, 1), ip(24, 2));
    let (a, mut a_rx, b, mut b_rx) = ebgp_pair(a_ip, b_ip, |b| {
        b.best_path_feed = tortie_bgp::BestPathFeed::Off
    })
    .await;

    a.originate(pfx("10.1.0.0/24"), None).await.unwrap();
    b.originate(pfx("10.2.0.0/24"), None).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !b
        .routes()
        .await
        .iter()
        .any(|r| r.prefix == pfx("10.1.0.0/24"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "route from A never reached B's Loc-RIB"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The RIB task hands events on before it answers a query, so any
    // best-path event for either route would be queued by now.
    while let Ok(ev) = b_rx.try_recv() {
        assert!(
            !matches!(ev, SpeakerEvent::BestPathChanged { .. }),
            "best-path event with the best-path feed off: {ev:?}"
        );
    }
    // The peer still gets B's own route: advertisements are unchanged.
    wait_for(&mut a_rx, 10, "B's route at A", |e| {
        matches!(e, SpeakerEvent::BestPathChanged { prefix, .. } if *prefix == pfx("10.2.0.0/24"))
    })
    .await;
    a.shutdown(false).await;
    b.shutdown(false).await;
}

#[tokio::test]
async fn both_active_collision_settles_on_one_session() {
    let (a_ip, b_ip) = (ip(2, 1), ip(2, 2));
    let mut a_cfg = config(65001, a_ip, true);
    let mut b_cfg = config(65001, b_ip, true);
    let (a_port, b_port) = (a_cfg.listen.unwrap().port(), b_cfg.listen.unwrap().port());
    a_cfg.peers.push(peer(b_ip, 65001, b_port, false));
    b_cfg.peers.push(peer(a_ip, 65001, a_port, false));
    let (a, mut a_rx) = Speaker::start(a_cfg).await.unwrap();
    let (b, mut b_rx) = Speaker::start(b_cfg).await.unwrap();
    wait_established(&mut a_rx, b_ip).await;
    wait_established(&mut b_rx, a_ip).await;
    // Stays up: give a lost collision time to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(state_of(&a, b_ip).await, SessionState::Established);
    assert_eq!(state_of(&b, a_ip).await, SessionState::Established);
    a.originate(pfx("10.2.0.0/24"), None).await.unwrap();
    wait_for(&mut b_rx, 10, "iBGP route", |e| matches!(e, SpeakerEvent::BestPathChanged { prefix, .. } if *prefix == pfx("10.2.0.0/24"))).await;
    a.shutdown(false).await;
    b.shutdown(false).await;
}

#[tokio::test]
async fn hold_timer_expiry_with_small_hold_time() {
    // B stops reading/writing without closing: simulated by a raw peer that
    // completes the OPEN exchange and then goes silent.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tortie_bgp::wire::{self, Capability, CodecContext, Message, Open};
    let (a_ip, b_ip) = (ip(3, 1), ip(3, 2));
    let mut a_cfg = config(65001, a_ip, true);
    a_cfg.hold_time = 3;
    let a_addr = a_cfg.listen.unwrap();
    a_cfg.peers.push(peer(b_ip, 65002, 179, true));
    let (a, mut a_rx) = Speaker::start(a_cfg).await.unwrap();

    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(std::net::SocketAddr::new(b_ip, 0)).unwrap();
    let mut s = sock.connect(a_addr).await.unwrap();
    let ctx = CodecContext::default();
    let mut out = Vec::new();
    let open = Open {
        version: 4,
        my_as: 65002,
        hold_time: 3,
        bgp_identifier: "127.0.3.2".parse().unwrap(),
        capabilities: vec![Capability::FourOctetAs(65002)],
    };
    wire::encode(&Message::Open(open), &ctx, &mut out).unwrap();
    wire::encode(&Message::Keepalive, &ctx, &mut out).unwrap();
    s.write_all(&out).await.unwrap();
    wait_established(&mut a_rx, b_ip).await;
    let t0 = std::time::Instant::now();
    // Read everything A sends until it closes; the last message is 4/0.
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let elapsed = t0.elapsed();
    assert!(
        elapsed >= Duration::from_millis(2500) && elapsed < Duration::from_secs(6),
        "{elapsed:?}"
    );
    let mut msgs = Vec::new();
    let mut rest = &buf[..];
    while let Ok(Some(len)) = wire::frame(rest, 4096) {
        msgs.push(wire::decode(&rest[..len], &ctx).unwrap());
        rest = &rest[len..];
    }
    let last = msgs.last().expect("messages");
    assert!(
        matches!(last, Message::Notification(n) if n.code == 4 && n.subcode == 0),
        "{msgs:?}"
    );
    let st = a.peers().await;
    assert!(
        st[0].last_error.as_deref().unwrap_or("").contains("4/0"),
        "{:?}",
        st[0].last_error
    );
    a.shutdown(false).await;
}

#[tokio::test]
async fn max_prefix_sends_cease_1() {
    let (a_ip, b_ip) = (ip(4, 1), ip(4, 2));
    let mut a_cfg = config(65001, a_ip, true);
    let a_port = a_cfg.listen.unwrap().port();
    a_cfg.peers.push(peer(b_ip, 65002, 179, true));
    let mut b_cfg = config(65002, b_ip, false);
    let mut p = peer(a_ip, 65001, a_port, false);
    p.max_prefixes = Some(2);
    b_cfg.peers.push(p);
    let (a, mut a_rx) = Speaker::start(a_cfg).await.unwrap();
    for i in 0..3 {
        a.originate(pfx(&format!("10.4.{i}.0/24")), None)
            .await
            .unwrap();
    }
    let (b, mut b_rx) = Speaker::start(b_cfg).await.unwrap();
    wait_established(&mut b_rx, a_ip).await;
    let ev = wait_for(&mut a_rx, 10, "Cease/1 at A", |e| {
        matches!(e, SpeakerEvent::PeerStateChanged { state: SessionState::Idle, reason, .. } if reason.contains("6/1"))
    })
    .await;
    drop(ev);
    let st = b.peers().await;
    assert!(
        st[0].last_error.as_deref().unwrap_or("").contains("6/1"),
        "{:?}",
        st[0].last_error
    );
    a.shutdown(false).await;
    b.shutdown(false).await;
}

#[tokio::test]
async fn unconfigured_source_is_refused() {
    use tokio::io::AsyncReadExt;
    let (a_ip, b_ip, stranger) = (ip(5, 1), ip(5, 2), ip(5, 3));
    let mut a_cfg = config(65001, a_ip, true);
    let a_addr = a_cfg.listen.unwrap();
    a_cfg.peers.push(peer(b_ip, 65002, 179, true));
    let (a, _a_rx) = Speaker::start(a_cfg).await.unwrap();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(std::net::SocketAddr::new(stranger, 0)).unwrap();
    let mut s = sock.connect(a_addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("closed promptly");
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "connection should be closed, got {n:?}"
    );
    assert_eq!(state_of(&a, b_ip).await, SessionState::Active);
    a.shutdown(false).await;
}

#[tokio::test]
async fn graceful_restart_keeps_stale_routes_then_end_of_rib_sweeps() {
    let (a_ip, b_ip) = (ip(6, 1), ip(6, 2));
    let mut a_cfg = config(65001, a_ip, true);
    a_cfg.graceful_restart = gr(30);
    a_cfg.peers.push(peer(b_ip, 65002, 179, true));
    let mut b_cfg = config(65002, b_ip, false);
    b_cfg.graceful_restart = gr(30);
    b_cfg
        .peers
        .push(peer(a_ip, 65001, a_cfg.listen.unwrap().port(), false));

    let (a, mut a_rx) = Speaker::start(a_cfg.clone()).await.unwrap();
    let (b, mut b_rx) = Speaker::start(b_cfg).await.unwrap();
    wait_established(&mut a_rx, b_ip).await;
    a.originate(pfx("10.6.1.0/24"), None).await.unwrap();
    a.originate(pfx("10.6.2.0/24"), None).await.unwrap();
    for p in ["10.6.1.0/24", "10.6.2.0/24"] {
        wait_for(&mut b_rx, 10, p, |e| matches!(e, SpeakerEvent::BestPathChanged { prefix, next_hops, .. } if *prefix == pfx(p) && !next_hops.is_empty())).await;
    }

    // A restarts: closes TCP without NOTIFICATION.
    a.shutdown(true).await;
    wait_for(&mut b_rx, 10, "B sees A down", |e| matches!(e, SpeakerEvent::PeerStateChanged { peer, state, .. } if *peer == a_ip && *state != SessionState::Established)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let routes = b.routes().await;
    assert_eq!(routes.len(), 2, "routes kept: {routes:?}");
    assert!(
        routes.iter().all(|r| r.candidates[0].stale),
        "marked stale: {routes:?}"
    );
    for e in drain(&mut b_rx) {
        assert!(
            !matches!(e, SpeakerEvent::BestPathChanged { .. }),
            "no route change while stale: {e:?}"
        );
    }

    // A comes back and only re-originates one prefix: after its End-of-RIB,
    // B sweeps the other.
    let (a2, mut a2_rx) = Speaker::start(a_cfg).await.unwrap();
    a2.originate(pfx("10.6.1.0/24"), None).await.unwrap();
    wait_established(&mut a2_rx, b_ip).await;
    wait_for(&mut b_rx, 15, "stale 10.6.2.0/24 swept after End-of-RIB", |e| {
        matches!(e, SpeakerEvent::BestPathChanged { prefix, next_hops, .. } if *prefix == pfx("10.6.2.0/24") && next_hops.is_empty())
    })
    .await;
    let routes = b.routes().await;
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert!(!routes[0].candidates[0].stale);
    // B's own convergence: End-of-RIB from its only peer.
    a2.shutdown(false).await;
    b.shutdown(false).await;
}
