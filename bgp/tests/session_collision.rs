//! Connection collision (RFC 4271 §6.8) against a scripted raw peer: both
//! sides connect, the BGP Identifiers decide which connection survives, and
//! the other is closed with Cease/7.

mod session_common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use session_common::raw::{open, read_until};
use session_common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tortie_bgp::Speaker;
use tortie_bgp::wire::Message;

fn is_cease7(m: &Message) -> bool {
    matches!(m, Message::Notification(n) if n.code == 6 && n.subcode == 7)
}

/// Sets up A (active toward R, listening) and both connections; returns
/// (A, connection A initiated as seen by R, connection R initiated).
async fn collide(net: u8) -> (Speaker, TcpStream, TcpStream) {
    let (a_ip, r_ip) = (ip(net, 1), ip(net, 2));
    let r_listener = TcpListener::bind((r_ip, 0)).await.unwrap();
    let r_port = r_listener.local_addr().unwrap().port();
    let mut a_cfg = config(65001, a_ip, true);
    let a_addr = a_cfg.listen.unwrap();
    a_cfg.peers.push(peer(r_ip, 65002, r_port, false));
    let (a, _rx) = Speaker::start(a_cfg).await.unwrap();
    // A's outgoing connection: it sends its OPEN first.
    let (mut from_a, _) = tokio::time::timeout(Duration::from_secs(10), r_listener.accept())
        .await
        .unwrap()
        .unwrap();
    read_until(&mut from_a, "OPEN on A's connection", |m| {
        matches!(m, Message::Open(_))
    })
    .await;
    // R's own connection to A: A answers with an OPEN too (candidate).
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(r_ip, 0)).unwrap();
    let mut to_a = sock.connect(a_addr).await.unwrap();
    read_until(&mut to_a, "OPEN on R's connection", |m| {
        matches!(m, Message::Open(_))
    })
    .await;
    (a, from_a, to_a)
}

#[tokio::test]
async fn higher_remote_id_keeps_the_remote_connection() {
    let (a, mut from_a, mut to_a) = collide(15).await;
    // R's identifier 127.0.15.200 > A's 127.0.15.1: R's connection wins.
    to_a.write_all(&open(Ipv4Addr::new(127, 0, 15, 200)))
        .await
        .unwrap();
    read_until(&mut from_a, "Cease/7 on A's connection", is_cease7).await;
    read_until(&mut to_a, "KEEPALIVE on R's connection", |m| {
        matches!(m, Message::Keepalive)
    })
    .await;
    a.shutdown(false).await;
}

#[tokio::test]
async fn lower_remote_id_keeps_the_local_connection() {
    let (a, mut from_a, mut to_a) = collide(16).await;
    // R's identifier 1.1.1.1 < A's 127.0.16.1: A's connection wins.
    to_a.write_all(&open(Ipv4Addr::new(1, 1, 1, 1)))
        .await
        .unwrap();
    read_until(&mut to_a, "Cease/7 on R's connection", is_cease7).await;
    from_a
        .write_all(&open(Ipv4Addr::new(1, 1, 1, 1)))
        .await
        .unwrap();
    read_until(&mut from_a, "KEEPALIVE on A's connection", |m| {
        matches!(m, Message::Keepalive)
    })
    .await;
    a.shutdown(false).await;
}
