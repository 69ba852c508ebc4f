//! End-to-end session throughput over loopback: speaker A originates N
//! prefixes (one API call each, like containers coming up); measures how long
//! until speaker B has them all as best paths, and the UPDATE messages used.
//!
//! `cargo run --release -p tortie-bgp --example session_bench -- [N]`

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tortie_bgp::{PeerConfig, Prefix, Speaker, SpeakerConfig, SpeakerEvent};

fn cfg(asn: u32, ip: Ipv4Addr, listen: Option<u16>) -> SpeakerConfig {
    SpeakerConfig {
        local_asn: asn,
        router_id: ip,
        local_address: Some(IpAddr::V4(ip)),
        listen: listen.map(|p| SocketAddr::new(IpAddr::V4(ip), p)),
        hold_time: 90,
        connect_retry: Duration::from_millis(200),
        graceful_restart: None,
        cluster_id: None,
        peers: Vec::new(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let (a_ip, b_ip) = (Ipv4Addr::new(127, 0, 99, 1), Ipv4Addr::new(127, 0, 99, 2));
    let port = std::net::TcpListener::bind((a_ip, 0))?.local_addr()?.port();
    let mut a_cfg = cfg(65001, a_ip, Some(port));
    let mut p = PeerConfig::new(IpAddr::V4(b_ip), 65002);
    p.passive = true;
    a_cfg.peers.push(p);
    let mut b_cfg = cfg(65002, b_ip, None);
    let mut p = PeerConfig::new(IpAddr::V4(a_ip), 65001);
    p.port = port;
    b_cfg.peers.push(p);
    let (a, mut a_rx) = Speaker::start(a_cfg).await?;
    let (b, mut b_rx) = Speaker::start(b_cfg).await?;
    while let Some(ev) = a_rx.recv().await {
        if matches!(
            ev,
            SpeakerEvent::PeerStateChanged {
                state: tortie_bgp::SessionState::Established,
                ..
            }
        ) {
            break;
        }
    }
    tokio::spawn(async move { while a_rx.recv().await.is_some() {} });
    let t0 = Instant::now();
    let originate = async {
        for i in 0..n {
            let addr = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i);
            a.originate(Prefix::new(IpAddr::V4(addr), 32).ok_or("prefix")?, None)
                .await?;
        }
        Ok::<Duration, Box<dyn std::error::Error>>(t0.elapsed())
    };
    let receive = async {
        let mut got = 0u32;
        while got < n {
            match b_rx.recv().await {
                Some(SpeakerEvent::BestPathChanged { next_hops, .. }) if !next_hops.is_empty() => {
                    got += 1
                }
                Some(_) => {}
                None => break,
            }
        }
        t0.elapsed()
    };
    let (orig, recv) = tokio::join!(originate, receive);
    let orig = orig?;
    let st = b.peers().await;
    println!(
        "{n} prefixes: originated in {:.3}s, all best at B after {:.3}s ({:.0} prefixes/s), {} UPDATE messages",
        orig.as_secs_f64(),
        recv.as_secs_f64(),
        f64::from(n) / recv.as_secs_f64(),
        st.first().map_or(0, |s| s.messages_received.update)
    );
    a.shutdown(false).await;
    b.shutdown(false).await;
    Ok(())
}
