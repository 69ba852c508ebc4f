//! The Speaker API over loopback: convergence, route refresh, reconfigure.

mod session_common;

use std::time::Duration;

use session_common::*;
use tortie_bgp::{BgpError, SessionState, Speaker, SpeakerEvent};

#[tokio::test]
async fn no_peers_converges_at_once() {
    let (s, mut rx) = Speaker::start(config(65001, ip(10, 1), false))
        .await
        .unwrap();
    wait_for(&mut rx, 2, "Converged", |e| {
        matches!(e, SpeakerEvent::Converged)
    })
    .await;
    assert!(matches!(
        s.route_refresh(ip(10, 9)).await,
        Err(BgpError::UnknownPeer(_))
    ));
    s.shutdown(false).await;
}

#[tokio::test]
async fn end_of_rib_from_every_peer_converges() {
    let (a_ip, b_ip) = (ip(11, 1), ip(11, 2));
    let mut a_cfg = config(65001, a_ip, true);
    a_cfg.graceful_restart = Some(tortie_bgp::GracefulRestartConfig {
        restart_time: 60,
        forwarding_preserved: Vec::new(),
    });
    let a_port = a_cfg.listen.unwrap().port();
    a_cfg.peers.push(peer(b_ip, 65002, 179, true));
    let mut b_cfg = config(65002, b_ip, false);
    b_cfg.graceful_restart = a_cfg.graceful_restart.clone();
    b_cfg.peers.push(peer(a_ip, 65001, a_port, false));
    let (a, mut a_rx) = Speaker::start(a_cfg).await.unwrap();
    let (b, _b_rx) = Speaker::start(b_cfg).await.unwrap();
    wait_established(&mut a_rx, b_ip).await;
    // Well before the 60 s restart timer: End-of-RIB did it.
    wait_for(&mut a_rx, 5, "Converged", |e| {
        matches!(e, SpeakerEvent::Converged)
    })
    .await;
    a.shutdown(false).await;
    b.shutdown(false).await;
}

#[tokio::test]
async fn route_refresh_makes_the_peer_resend() {
    let (a_ip, b_ip) = (ip(12, 1), ip(12, 2));
    let mut a_cfg = config(65001, a_ip, true);
    let a_port = a_cfg.listen.unwrap().port();
    a_cfg.peers.push(peer(b_ip, 65002, 179, true));
    let mut b_cfg = config(65002, b_ip, false);
    b_cfg.peers.push(peer(a_ip, 65001, a_port, false));
    let (a, mut a_rx) = Speaker::start(a_cfg).await.unwrap();
    a.originate("10.12.0.0/24".parse().unwrap(), None)
        .await
        .unwrap();
    let (b, mut b_rx) = Speaker::start(b_cfg).await.unwrap();
    wait_established(&mut a_rx, b_ip).await;
    wait_for(&mut b_rx, 10, "route", |e| {
        matches!(e, SpeakerEvent::BestPathChanged { .. })
    })
    .await;
    let before = b.peers().await[0].messages_received.update;
    b.route_refresh(a_ip).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let a_st = &a.peers().await[0];
        let b_st = &b.peers().await[0];
        if a_st.messages_received.route_refresh >= 2 && b_st.messages_received.update > before {
            // One ROUTE-REFRESH per negotiated family (IPv4 and IPv6 unicast).
            assert_eq!(b_st.messages_sent.route_refresh, 2);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no refresh: A {a_st:?} B {b_st:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.shutdown(false).await;
    b.shutdown(false).await;
}

#[tokio::test]
async fn reconfigure_touches_only_changed_peers() {
    let (a_ip, b_ip, c_ip) = (ip(13, 1), ip(13, 2), ip(13, 3));
    let mut a_cfg = config(65001, a_ip, true);
    let a_port = a_cfg.listen.unwrap().port();
    let pb = peer(b_ip, 65002, 179, true);
    let pc = peer(c_ip, 65003, 179, true);
    a_cfg.peers = vec![pb.clone(), pc.clone()];
    let mut b_cfg = config(65002, b_ip, false);
    b_cfg.peers.push(peer(a_ip, 65001, a_port, false));
    let mut c_cfg = config(65003, c_ip, false);
    c_cfg.peers.push(peer(a_ip, 65001, a_port, false));
    let (a, mut a_rx) = Speaker::start(a_cfg).await.unwrap();
    let (b, _b_rx) = Speaker::start(b_cfg).await.unwrap();
    let (c, mut c_rx) = Speaker::start(c_cfg).await.unwrap();
    wait_established(&mut a_rx, b_ip).await;
    wait_established(&mut c_rx, a_ip).await;

    // Remove C, keep B unchanged.
    a.reconfigure(vec![pb.clone()]).await.unwrap();
    let ev = wait_for(&mut c_rx, 10, "C dropped", |e| {
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
    assert!(reason.contains("6/3"), "Peer De-configured: {reason}");
    let st = a.peers().await;
    assert_eq!(st.len(), 1);
    assert_eq!(
        (st[0].address, st[0].state, st[0].established_transitions),
        (b_ip, SessionState::Established, 1)
    );

    // Change B (hold time): reset with Cease/6, then it comes back.
    let before = a.peers().await.remove(0);
    let mut pb2 = pb.clone();
    pb2.hold_time = Some(30);
    a.reconfigure(vec![pb2]).await.unwrap();
    wait_established(&mut a_rx, b_ip).await;
    let st = a.peers().await;
    assert_eq!(st[0].hold_time, Some(30));
    // The peer's counters carry on across the reset (metrics never go back).
    assert_eq!(st[0].established_transitions, 2);
    assert_eq!(
        st[0].messages_sent.notification,
        before.messages_sent.notification + 1
    );
    assert!(st[0].messages_sent.open > before.messages_sent.open);
    assert!(st[0].messages_received.keepalive >= before.messages_received.keepalive);
    let sent = st[0].notification_sent.as_ref().map(|n| n.text.as_str());
    assert!(sent.is_some_and(|t| t.starts_with("6/6")), "{sent:?}");
    let down = st[0].down_reason.as_ref().map(|d| d.text.as_str());
    assert!(down.is_some_and(|t| t.contains("6/6")), "{down:?}");
    assert!(st[0].established_change > before.established_change);
    assert!(st[0].local_endpoint.is_some_and(|e| e.ip() == a_ip));
    assert!(
        st[0]
            .remote_endpoint
            .is_some_and(|e| e.ip() == b_ip && e.port() != 0)
    );
    assert_eq!(st[0].keepalive_time, Some(10));
    a.shutdown(false).await;
    b.shutdown(false).await;
    c.shutdown(false).await;
}

/// `established_change` ("Since" in `tortie status`) is when the session
/// last came up or went down: connection retries do not move it.
#[tokio::test]
async fn connect_retries_do_not_move_the_up_down_time() {
    let (a_ip, b_ip) = (ip(23, 1), ip(23, 2));
    let mut a_cfg = config(65001, a_ip, false);
    // Nothing listens there: every attempt is refused, every 0.5 s.
    a_cfg.peers.push(peer(b_ip, 65002, free_port(b_ip), false));
    let (a, _rx) = Speaker::start(a_cfg).await.unwrap();
    let first = a.peers().await.remove(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = a.peers().await.remove(0);
        if now.since > first.since && now.last_error.is_some() {
            assert_eq!(now.established_change, first.established_change);
            assert!(now.last_error_at.is_some());
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no retry: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.shutdown(false).await;
}

#[tokio::test]
async fn api_calls_answer_while_the_owner_is_not_draining_events() {
    let (a_ip, b_ip) = (ip(22, 1), ip(22, 2));
    let mut a_cfg = config(65001, a_ip, true);
    let a_port = a_cfg.listen.unwrap().port();
    a_cfg.peers.push(peer(b_ip, 65002, 179, true));
    let mut b_cfg = config(65002, b_ip, false);
    b_cfg.peers.push(peer(a_ip, 65001, a_port, false));
    let (a, mut a_rx) = Speaker::start(a_cfg).await.unwrap();
    // B's events are never read: far more than the channel holds arrive.
    let (b, _b_rx_unread) = Speaker::start(b_cfg).await.unwrap();
    wait_established(&mut a_rx, b_ip).await;
    for i in 0..3000u32 {
        let p =
            tortie_bgp::Prefix::new(std::net::Ipv4Addr::from(0x0a16_0000 + (i << 8)).into(), 24)
                .unwrap();
        a.originate(p, None).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let routes = tokio::time::timeout(Duration::from_secs(5), b.routes())
            .await
            .expect("routes() answered");
        if routes.len() == 3000 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} routes at B",
            routes.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.shutdown(false).await;
    b.shutdown(false).await;
}
