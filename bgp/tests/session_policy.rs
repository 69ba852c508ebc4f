//! Policy at the session level: the Cease a non-graceful-restart peer gets on
//! shutdown (RFC 8203 text), the idle wait after a max-prefix Cease, and
//! filter changes applied with no session reset.

mod session_common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use session_common::raw::read_until;
use session_common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tortie_bgp::policy::{Action, Filter, Matches, Modifiers, PrefixMatch, Rule};
use tortie_bgp::wire::{
    self, Capability, CodecContext, GracefulRestartCapability, Message, Open, Update,
};
use tortie_bgp::{AddressFamily, AsPath, PathAttributes, Prefix, RouteQuery, Speaker};

fn open_msg(id: Ipv4Addr, gr: bool) -> Vec<u8> {
    let mut capabilities = vec![Capability::FourOctetAs(65002)];
    if gr {
        capabilities.push(Capability::GracefulRestart(GracefulRestartCapability {
            restart_state: false,
            notification: false,
            restart_time: 60,
            families: vec![(AddressFamily::IPV4_UNICAST, true)],
        }));
    }
    let o = Open {
        version: 4,
        my_as: 65002,
        hold_time: 90,
        bgp_identifier: id,
        capabilities,
    };
    let mut out = Vec::new();
    wire::encode(&Message::Open(o), &CodecContext::default(), &mut out).unwrap();
    out
}

/// A raw peer at `r_ip` connecting to `to` and completing the OPEN exchange.
async fn raw_session(r_ip: std::net::IpAddr, to: SocketAddr, gr: bool) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(r_ip, 0)).unwrap();
    let mut s = sock.connect(to).await.unwrap();
    let std::net::IpAddr::V4(id) = r_ip else {
        unreachable!()
    };
    s.write_all(&open_msg(id, gr)).await.unwrap();
    let mut out = Vec::new();
    wire::encode(&Message::Keepalive, &CodecContext::default(), &mut out).unwrap();
    s.write_all(&out).await.unwrap();
    read_until(&mut s, "KEEPALIVE", |m| matches!(m, Message::Keepalive)).await;
    s
}

/// Reads until EOF; returns whether a NOTIFICATION came first.
async fn closed_without_notification(s: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let mut rest = buf.as_slice();
    while let Ok(Some(len)) = wire::frame(rest, 4096) {
        if let Ok(Message::Notification(_)) = wire::decode(&rest[..len], &CodecContext::default()) {
            return false;
        }
        rest = &rest[len..];
    }
    true
}

#[tokio::test]
async fn graceful_shutdown_sends_cease_with_text_to_peers_without_graceful_restart() {
    let (a_ip, r_ip, g_ip) = (ip(60, 1), ip(60, 2), ip(60, 3));
    let mut a_cfg = config(65001, a_ip, true);
    a_cfg.graceful_restart = gr(60);
    let a_addr = a_cfg.listen.unwrap();
    a_cfg.peers.push(peer(r_ip, 65002, 179, true));
    a_cfg.peers.push(peer(g_ip, 65002, 179, true));
    let (a, _rx) = Speaker::start(a_cfg).await.unwrap();
    let mut plain = raw_session(r_ip, a_addr, false).await;
    let mut with_gr = raw_session(g_ip, a_addr, true).await;
    // SIGTERM's path: graceful shutdown.
    a.shutdown(true).await;
    let m = read_until(&mut plain, "Cease/2", |m| {
        matches!(m, Message::Notification(_))
    })
    .await;
    let Message::Notification(n) = m else {
        unreachable!()
    };
    assert_eq!((n.code, n.subcode), (6, 2));
    // RFC 8203: length octet, then the UTF-8 text.
    let text = "tortie agent stopping";
    assert_eq!(n.data.first().copied(), Some(text.len() as u8));
    assert_eq!(&n.data[1..], text.as_bytes());
    assert!(
        closed_without_notification(&mut with_gr).await,
        "a graceful-restart peer keeps our routes: no NOTIFICATION"
    );
}

fn routes(prefixes: &[&str]) -> Vec<u8> {
    let ctx = CodecContext {
        four_octet_as: true,
        local_asn: 65002,
        peer_asn: 65001,
        ..CodecContext::default()
    };
    let attrs = Arc::new(PathAttributes {
        as_path: AsPath::sequence(vec![65002]),
        next_hop: Some("127.0.61.2".parse().unwrap()),
        ..PathAttributes::default()
    });
    let mut msgs = Vec::new();
    wire::encode_updates(
        &Update {
            attributes: Some(attrs),
            announced: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
            ..Update::default()
        },
        &ctx,
        &mut msgs,
    )
    .unwrap();
    msgs.concat()
}

#[tokio::test]
async fn after_a_max_prefix_cease_the_peer_waits_max_prefixes_restart() {
    let (a_ip, r_ip) = (ip(61, 1), ip(61, 2));
    let mut a_cfg = config(65001, a_ip, true);
    let a_addr = a_cfg.listen.unwrap();
    let mut p = peer(r_ip, 65002, 179, true);
    p.max_prefixes = Some(1);
    p.max_prefixes_restart = Duration::from_secs(2);
    a_cfg.peers.push(p);
    let (a, _rx) = Speaker::start(a_cfg).await.unwrap();
    let mut s = raw_session(r_ip, a_addr, false).await;
    s.write_all(&routes(&["10.61.0.0/24", "10.61.1.0/24"]))
        .await
        .unwrap();
    read_until(&mut s, "Cease/1", |m| matches!(m, Message::Notification(_))).await;
    let down_at = tokio::time::Instant::now();
    // Reconnecting at once is refused (closed without an OPEN) ...
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(r_ip, 0)).unwrap();
    let mut s2 = sock.connect(a_addr).await.unwrap();
    s2.write_all(&open_msg(Ipv4Addr::new(127, 0, 61, 2), false))
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s2.read(&mut buf))
        .await
        .expect("closed promptly")
        .unwrap_or(0);
    assert_eq!(n, 0, "refused while idle");
    // ... and accepted once max_prefixes_restart has passed.
    tokio::time::sleep_until(down_at + Duration::from_millis(2300)).await;
    let _s3 = raw_session(r_ip, a_addr, false).await;
    a.shutdown(false).await;
}

fn exact(p: &str) -> PrefixMatch {
    PrefixMatch {
        prefix: p.parse().unwrap(),
        ge: None,
        le: None,
    }
}

fn reject(p: &str) -> Option<Arc<Filter>> {
    Some(Arc::new(Filter {
        name: "f".into(),
        rules: vec![Rule {
            matches: Matches {
                prefixes: vec![exact(p)],
                ..Default::default()
            },
            action: Action::Reject,
            modifiers: Modifiers::default(),
        }],
    }))
}

async fn has_route(s: &Speaker, p: &str) -> bool {
    let p: Prefix = p.parse().unwrap();
    s.routes().await.iter().any(|r| r.prefix == p)
}

async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out: {what}");
}

#[tokio::test]
async fn filter_changes_apply_without_a_session_reset() {
    let (a_ip, b_ip) = (ip(62, 1), ip(62, 2));
    let mut a_cfg = config(65001, a_ip, true);
    let a_port = a_cfg.listen.unwrap().port();
    a_cfg.peers.push(peer(b_ip, 65002, 179, true));
    let mut b_cfg = config(65002, b_ip, false);
    b_cfg.peers.push(peer(a_ip, 65001, a_port, false));
    let a_peers = a_cfg.peers.clone();
    let b_peers = b_cfg.peers.clone();
    let (a, mut a_rx) = Speaker::start(a_cfg).await.unwrap();
    let (b, _b_rx) = Speaker::start(b_cfg).await.unwrap();
    for p in ["10.62.1.0/24", "10.62.2.0/24"] {
        a.originate(p.parse().unwrap(), None).await.unwrap();
    }
    wait_established(&mut a_rx, b_ip).await;
    eventually("both routes at B", async || {
        has_route(&b, "10.62.1.0/24").await && has_route(&b, "10.62.2.0/24").await
    })
    .await;

    // Export: A stops sending 10.62.1.0/24.
    let mut p = a_peers[0].clone();
    p.export_filter = reject("10.62.1.0/24");
    a.reconfigure(vec![p]).await.unwrap();
    eventually("10.62.1.0/24 withdrawn at B", async || {
        !has_route(&b, "10.62.1.0/24").await
    })
    .await;
    assert!(has_route(&b, "10.62.2.0/24").await);

    // Import: B refuses 10.62.2.0/24 (route refresh brings it back filtered).
    let mut p = b_peers[0].clone();
    p.import_filter = reject("10.62.2.0/24");
    b.reconfigure(vec![p.clone()]).await.unwrap();
    eventually("10.62.2.0/24 filtered at B", async || {
        !has_route(&b, "10.62.2.0/24").await
    })
    .await;
    let f = b.query_routes(RouteQuery::Filtered).await;
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].prefix, "10.62.2.0/24".parse::<Prefix>().unwrap());
    assert!(f[0].candidates.is_empty());
    assert_eq!(f[0].filtered[0].peer, a_ip);
    assert_eq!(f[0].filtered[0].reason, "filter \"f\" rule 1");
    let one = b
        .query_routes(RouteQuery::Prefix("10.62.2.0/24".parse().unwrap()))
        .await;
    assert_eq!(one, f);
    // And back: no filter, the route returns.
    p.import_filter = None;
    b.reconfigure(vec![p]).await.unwrap();
    eventually("10.62.2.0/24 back at B", async || {
        has_route(&b, "10.62.2.0/24").await
    })
    .await;

    for s in [&a, &b] {
        let st = &s.peers().await[0];
        assert_eq!(st.established_transitions, 1, "no session reset");
        assert_eq!(st.state, tortie_bgp::SessionState::Established);
    }
    a.shutdown(false).await;
    b.shutdown(false).await;
}
