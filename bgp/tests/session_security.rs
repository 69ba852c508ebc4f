//! TCP MD5 (RFC 2385) and GTSM (RFC 5082) between in-process speakers over
//! loopback. Setting TCP_MD5SIG needs root (CAP_NET_ADMIN is not needed, but
//! CI runs these as root and they must never skip there).

mod session_common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use session_common::*;
use tortie_bgp::{SessionState, Speaker};

#[tokio::test]
async fn md5_right_key_connects_wrong_key_does_not() {
    if !require_root() {
        return;
    }
    let (a_ip, good_ip, bad_ip) = (ip(7, 1), ip(7, 2), ip(7, 3));
    let mut a_cfg = config(65001, a_ip, true);
    let a_port = a_cfg.listen.unwrap().port();
    let mut good = peer(good_ip, 65002, 179, true);
    good.password = Some(b"s3cret".to_vec());
    let mut bad = peer(bad_ip, 65003, 179, true);
    bad.password = Some(b"s3cret".to_vec());
    a_cfg.peers = vec![good, bad];

    let mut g_cfg = config(65002, good_ip, false);
    let mut p = peer(a_ip, 65001, a_port, false);
    p.password = Some(b"s3cret".to_vec());
    g_cfg.peers.push(p);
    let mut b_cfg = config(65003, bad_ip, false);
    let mut p = peer(a_ip, 65001, a_port, false);
    p.password = Some(b"wrong".to_vec());
    b_cfg.peers.push(p);

    let (a, mut a_rx) = Speaker::start(a_cfg).await.unwrap();
    let (g, _g_rx) = Speaker::start(g_cfg).await.unwrap();
    let (b, _b_rx) = Speaker::start(b_cfg).await.unwrap();
    wait_established(&mut a_rx, good_ip).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(state_of(&a, good_ip).await, SessionState::Established);
    assert_ne!(state_of(&a, bad_ip).await, SessionState::Established);
    assert!(matches!(
        state_of(&b, a_ip).await,
        SessionState::Connect | SessionState::Active | SessionState::Idle
    ));
    let a_status = a.peers().await;
    assert_eq!(
        a_status[1].messages_received.open, 0,
        "no OPEN got through with a wrong key"
    );
    a.shutdown(false).await;
    g.shutdown(false).await;
    b.shutdown(false).await;
}

/// RFC 5082 between A, which requires GTSM of its peer, and B (IPv4:
/// IP_TTL 255 and IP_MINTTL; IPv6: IPV6_UNICAST_HOPS 255 and
/// IPV6_MINHOPCOUNT, on the outgoing, listening and accepted sockets). On
/// loopback a B sending with GTSM arrives with TTL/hop limit 255 and comes
/// up (the options are set without error on every socket); a B sending the
/// default (64) has its segments dropped once A has set the minimum on the
/// accepted socket (an OPEN queued before that may slip through, as in
/// BIRD), so the session never gets past OpenSent.
async fn gtsm(a_ip: IpAddr, b_ip: IpAddr, b_sends_gtsm: bool) {
    let mut a_cfg = config(65001, a_ip, true);
    let a_port = a_cfg.listen.unwrap().port();
    let mut p = peer(b_ip, 65002, 179, true);
    p.ttl_security = Some(1);
    a_cfg.peers.push(p);
    let mut b_cfg = config(65002, b_ip, false);
    // Distinct router ids even when both sit on ::1.
    b_cfg.router_id = Ipv4Addr::new(10, 0, 0, 2);
    let mut p = peer(a_ip, 65001, a_port, false);
    p.ttl_security = b_sends_gtsm.then_some(1);
    b_cfg.peers.push(p);
    let (a, mut a_rx) = Speaker::start(a_cfg).await.unwrap();
    let (b, _b_rx) = Speaker::start(b_cfg).await.unwrap();
    if b_sends_gtsm {
        wait_established(&mut a_rx, b_ip).await;
    } else {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let st = &a.peers().await[0];
        assert_ne!(st.state, SessionState::Established, "{a_ip}");
        assert_eq!(
            (st.established_transitions, st.messages_received.keepalive),
            (0, 0),
            "{st:?}"
        );
    }
    a.shutdown(false).await;
    b.shutdown(false).await;
}

const LO6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

#[tokio::test]
async fn gtsm_one_hop_on_loopback_connects() {
    for (a_ip, b_ip) in [(ip(8, 1), ip(8, 2)), (LO6, LO6)] {
        gtsm(a_ip, b_ip, true).await;
    }
}

#[tokio::test]
async fn gtsm_drops_a_peer_sending_with_a_low_ttl() {
    // Both families at once: one 3 s wait.
    tokio::join!(gtsm(ip(9, 1), ip(9, 2), false), gtsm(LO6, LO6, false));
}

#[tokio::test]
async fn dual_stack_listener_with_md5_for_an_ipv4_peer() {
    if !require_root() {
        return;
    }
    // A listens on [::]: the IPv4 peer arrives as ::ffff:a.b.c.d, its MD5 key
    // is installed v4-mapped and dispatch uses the canonical address.
    let (a_ip, b_ip) = (ip(18, 1), ip(18, 2));
    let any6: std::net::IpAddr = "::".parse().unwrap();
    let port = free_port(any6);
    let mut a_cfg = config(65001, a_ip, false);
    a_cfg.listen = Some(std::net::SocketAddr::new(any6, port));
    let mut p = peer(b_ip, 65002, 179, true);
    p.password = Some(b"k".to_vec());
    a_cfg.peers.push(p);
    let (a, mut a_rx) = Speaker::start(a_cfg).await.unwrap();
    let mut b_cfg = config(65002, b_ip, false);
    let mut p = peer(a_ip, 65001, port, false);
    p.password = Some(b"k".to_vec());
    b_cfg.peers.push(p);
    let (b, _b_rx) = Speaker::start(b_cfg).await.unwrap();
    wait_established(&mut a_rx, b_ip).await;
    a.shutdown(false).await;
    b.shutdown(false).await;
}
