//! Session behaviour checked byte-exactly against a scripted raw peer.

mod session_common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use session_common::raw::{open, read_until};
use session_common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;
use tortie_bgp::wire::{self, CodecContext, Message, Update};
use tortie_bgp::{AsPath, PathAttributes, Prefix, Speaker};

#[tokio::test]
async fn max_prefix_notification_carries_afi_safi_and_limit() {
    let (a_ip, r_ip) = (ip(19, 1), ip(19, 2));
    let mut a_cfg = config(65001, a_ip, true);
    let a_addr = a_cfg.listen.unwrap();
    let mut p = peer(r_ip, 65002, 179, true);
    p.max_prefixes = Some(2);
    a_cfg.peers.push(p);
    let (a, _rx) = Speaker::start(a_cfg).await.unwrap();

    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(r_ip, 0)).unwrap();
    let mut s = sock.connect(a_addr).await.unwrap();
    s.write_all(&open("127.0.19.2".parse().unwrap()))
        .await
        .unwrap();
    let mut out = Vec::new();
    wire::encode(&Message::Keepalive, &CodecContext::default(), &mut out).unwrap();
    s.write_all(&out).await.unwrap();
    read_until(&mut s, "KEEPALIVE", |m| matches!(m, Message::Keepalive)).await;

    // Our OPEN has no MP capability: IPv4 unicast only, 4-octet AS.
    let ctx = CodecContext {
        four_octet_as: true,
        local_asn: 65002,
        peer_asn: 65001,
        ..CodecContext::default()
    };
    let attrs = Arc::new(PathAttributes {
        as_path: AsPath::sequence(vec![65002]),
        next_hop: Some(IpAddr::from([127, 0, 19, 2])),
        ..PathAttributes::default()
    });
    let announced: Vec<Prefix> = ["10.19.0.0/24", "10.19.1.0/24", "10.19.2.0/24"]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    let mut msgs = Vec::new();
    wire::encode_updates(
        &Update {
            attributes: Some(attrs),
            announced: announced.into(),
            ..Update::default()
        },
        &ctx,
        &mut msgs,
    )
    .unwrap();
    s.write_all(&msgs.concat()).await.unwrap();

    let m = read_until(&mut s, "Cease/1", |m| matches!(m, Message::Notification(_))).await;
    let Message::Notification(n) = m else {
        unreachable!()
    };
    // RFC 4486 §4: AFI 1, SAFI 1, upper bound 2.
    assert_eq!(
        (n.code, n.subcode, n.data),
        (6, 1, vec![0, 1, 1, 0, 0, 0, 2])
    );
    let st = &a.peers().await[0];
    assert_eq!(st.state, tortie_bgp::SessionState::Idle);
    assert_eq!(
        st.routes_received, 0,
        "the offending UPDATE was not applied"
    );
    a.shutdown(false).await;
}

#[tokio::test]
async fn bad_peer_as_in_open_is_notified_2_2() {
    let (a_ip, r_ip) = (ip(20, 1), ip(20, 2));
    let mut a_cfg = config(65001, a_ip, true);
    let a_addr = a_cfg.listen.unwrap();
    a_cfg.peers.push(peer(r_ip, 65099, 179, true));
    let (a, _rx) = Speaker::start(a_cfg).await.unwrap();
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(r_ip, 0)).unwrap();
    let mut s = sock.connect(a_addr).await.unwrap();
    // `open` claims AS 65002; A expects 65099.
    s.write_all(&open("127.0.20.2".parse().unwrap()))
        .await
        .unwrap();
    let m = read_until(&mut s, "NOTIFICATION", |m| {
        matches!(m, Message::Notification(_))
    })
    .await;
    assert!(
        matches!(&m, Message::Notification(n) if (n.code, n.subcode) == (2, 2)),
        "{m:?}"
    );
    let st = &a.peers().await[0];
    assert!(
        st.last_error.as_deref().unwrap_or("").contains("2/2"),
        "{:?}",
        st.last_error
    );
    a.shutdown(false).await;
}

/// An UPDATE for 10.21.0.0/24 from AS 65002 (4-octet AS_PATH) with `origin`.
fn update_bytes(origin: u8) -> Vec<u8> {
    let attrs: Vec<u8> = [
        vec![0x40, 1, 1, origin],
        vec![0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea],
        vec![0x40, 3, 4, 127, 0, 21, 2],
    ]
    .concat();
    let nlri = [24u8, 10, 21, 0];
    let body_len = 2 + 2 + attrs.len() + nlri.len();
    let len = u16::try_from(19 + body_len).unwrap();
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&len.to_be_bytes());
    m.push(2);
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&u16::try_from(attrs.len()).unwrap().to_be_bytes());
    m.extend_from_slice(&attrs);
    m.extend_from_slice(&nlri);
    m
}

#[tokio::test]
async fn rfc7606_malformed_origin_withdraws_without_reset() {
    use tortie_bgp::{SessionState, SpeakerEvent};
    let (a_ip, r_ip) = (ip(21, 1), ip(21, 2));
    let mut a_cfg = config(65001, a_ip, true);
    let a_addr = a_cfg.listen.unwrap();
    a_cfg.peers.push(peer(r_ip, 65002, 179, true));
    let (a, mut rx) = Speaker::start(a_cfg).await.unwrap();
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(r_ip, 0)).unwrap();
    let mut s = sock.connect(a_addr).await.unwrap();
    s.write_all(&open("127.0.21.2".parse().unwrap()))
        .await
        .unwrap();
    let mut ka = Vec::new();
    wire::encode(&Message::Keepalive, &CodecContext::default(), &mut ka).unwrap();
    s.write_all(&ka).await.unwrap();
    wait_established(&mut rx, r_ip).await;

    let p: Prefix = "10.21.0.0/24".parse().unwrap();
    s.write_all(&update_bytes(0)).await.unwrap();
    wait_for(&mut rx, 5, "route learned", |e| {
        matches!(e, SpeakerEvent::BestPathChanged { prefix, next_hops, .. } if *prefix == p && !next_hops.is_empty())
    })
    .await;
    // ORIGIN 5 is malformed: RFC 7606 §7.1 treat-as-withdraw, no NOTIFICATION.
    s.write_all(&update_bytes(5)).await.unwrap();
    wait_for(&mut rx, 5, "route withdrawn", |e| {
        matches!(e, SpeakerEvent::BestPathChanged { prefix, next_hops, attributes: None, .. } if *prefix == p && next_hops.is_empty())
    })
    .await;
    // The session is still up and still answers.
    s.write_all(&ka).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let st = &a.peers().await[0];
    assert_eq!(st.state, SessionState::Established);
    assert_eq!(
        (st.messages_sent.notification, st.established_transitions),
        (0, 1)
    );
    a.shutdown(false).await;
}

#[tokio::test]
async fn garbage_gets_a_header_error_and_a_close() {
    let (a_ip, r_ip) = (ip(23, 1), ip(23, 2));
    let mut a_cfg = config(65001, a_ip, true);
    let a_addr = a_cfg.listen.unwrap();
    a_cfg.peers.push(peer(r_ip, 65002, 179, true));
    let (a, _rx) = Speaker::start(a_cfg).await.unwrap();
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(r_ip, 0)).unwrap();
    let mut s = sock.connect(a_addr).await.unwrap();
    // A header whose marker is not all ones (RFC 4271 §6.1: 1/1).
    let mut junk = vec![0xffu8; 16];
    junk[3] = 0;
    junk.extend_from_slice(&[0, 19, 4]);
    s.write_all(&junk).await.unwrap();
    let m = read_until(&mut s, "NOTIFICATION", |m| {
        matches!(m, Message::Notification(_))
    })
    .await;
    assert!(
        matches!(&m, Message::Notification(n) if (n.code, n.subcode) == (1, 1)),
        "{m:?}"
    );
    let st = &a.peers().await[0];
    assert!(
        st.last_error.as_deref().unwrap_or("").contains("1/1"),
        "{:?}",
        st.last_error
    );
    a.shutdown(false).await;
}
