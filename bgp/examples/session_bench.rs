//! End-to-end session throughput over loopback: speaker A originates N
//! prefixes (one API call each, like containers coming up); measures how long
//! until speaker B has them all as best paths, and the UPDATE messages used.
//!
//! With `feed`, a scripted raw peer instead sends N prefixes in UPDATEs of
//! PER prefixes each (inbound path: framing, decode, RIB, events); with
//! `unique`, one prefix per UPDATE, each with its own AS_PATH
//! (`65002 4200000000+i`, the ingest benchmark's unique shape). After
//! them, `v6`: IPv6 /48s in MP_REACH_NLRI instead of IPv4 /24s;
//! `express`: the owner takes the express channel too, as the agent does
//! (`Speaker::express_events`, each batch reported ordered once counted).
//!
//! `cargo run --release -p tortie-bgp --example session_bench -- [N]`
//! `cargo run --release -p tortie-bgp --example session_bench -- feed N PER`
//! `cargo run --release -p tortie-bgp --example session_bench -- feed N unique [v6] [express]`

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tortie_bgp::{PeerConfig, Prefix, Speaker, SpeakerConfig, SpeakerEvent};

fn cfg(asn: u32, ip: Ipv4Addr, listen: Option<u16>) -> SpeakerConfig {
    SpeakerConfig {
        local_asn: asn,
        router_id: ip,
        local_addresses: vec![IpAddr::V4(ip)],
        listen: listen.map(|p| SocketAddr::new(IpAddr::V4(ip), p)),
        hold_time: 90,
        connect_retry: Duration::from_millis(200),
        graceful_restart: None,
        cluster_id: None,
        guard: Default::default(),
        ebgp_requires_policy: true,
        best_path_feed: tortie_bgp::BestPathFeed::Full,
        peers: Vec::new(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("feed") {
        let n = args
            .get(1)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(1_000_000);
        let unique = args.get(2).map(String::as_str) == Some("unique");
        let per = match args.get(2) {
            Some(_) if unique => 1,
            a => a.map(|s| s.parse()).transpose()?.unwrap_or(500),
        };
        let flag = |f: &str| args.iter().skip(3).any(|a| a == f);
        return feed(n, per, unique, flag("v6"), flag("express")).await;
    }
    let n: u32 = args
        .first()
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

/// A raw peer feeds `n` /24s (`v6`: /48s) in UPDATEs of `per` prefixes to
/// a speaker; `unique`: each with its own AS_PATH (one per UPDATE);
/// `express`: the owner takes the express channel too.
async fn feed(
    n: u32,
    per: usize,
    unique: bool,
    v6: bool,
    express: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tortie_bgp::wire::{self, Capability, CodecContext, Message, Open, Update};
    use tortie_bgp::{AddressFamily, AsPath, PathAttributes};

    let (a_ip, r_ip) = (Ipv4Addr::new(127, 0, 98, 1), Ipv4Addr::new(127, 0, 98, 2));
    let port = std::net::TcpListener::bind((a_ip, 0))?.local_addr()?.port();
    let mut a_cfg = cfg(65001, a_ip, Some(port));
    let mut p = PeerConfig::new(IpAddr::V4(r_ip), 65002);
    p.passive = true;
    a_cfg.peers.push(p);
    let (a, mut a_rx) = Speaker::start(a_cfg).await?;
    let mut a_express = if express {
        Some(a.express_events().await?)
    } else {
        None
    };

    let ctx = CodecContext {
        four_octet_as: true,
        families: vec![AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST],
        local_asn: 65002,
        peer_asn: 65001,
        ..CodecContext::default()
    };
    let mut bytes = Vec::new();
    let open = Open {
        version: 4,
        my_as: 65002,
        hold_time: 90,
        bgp_identifier: r_ip,
        capabilities: vec![
            Capability::Multiprotocol(AddressFamily::IPV4_UNICAST),
            Capability::Multiprotocol(AddressFamily::IPV6_UNICAST),
            Capability::FourOctetAs(65002),
        ],
    };
    wire::encode(&Message::Open(open), &CodecContext::default(), &mut bytes)?;
    wire::encode(&Message::Keepalive, &CodecContext::default(), &mut bytes)?;
    let attrs = |second: u32| {
        Arc::new(PathAttributes {
            as_path: AsPath::sequence(vec![65002, second]),
            next_hop: Some(if v6 {
                IpAddr::V6(std::net::Ipv6Addr::new(
                    0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 2,
                ))
            } else {
                IpAddr::V4(r_ip)
            }),
            ..PathAttributes::default()
        })
    };
    let shared = attrs(65100);
    let prefixes: Vec<Prefix> = (0..n)
        .filter_map(|i| {
            if v6 {
                let a = (0x2001u128 << 112) | (u128::from(i) << 80);
                Prefix::new(IpAddr::V6(std::net::Ipv6Addr::from(a)), 48)
            } else {
                Prefix::new(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + (i << 8))), 24)
            }
        })
        .collect();
    let mut msgs = Vec::new();
    for (i, chunk) in (0u32..).zip(prefixes.chunks(per.max(1))) {
        let u = Update {
            attributes: Some(if unique {
                attrs(4_200_000_000u32.wrapping_add(i))
            } else {
                shared.clone()
            }),
            announced: chunk.into(),
            ..Update::default()
        };
        wire::encode_updates(&u, &ctx, &mut msgs)?;
    }
    let updates = msgs.len();
    let body: Vec<u8> = msgs.concat();

    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(IpAddr::V4(r_ip), 0))?;
    let mut s = sock
        .connect(SocketAddr::new(IpAddr::V4(a_ip), port))
        .await?;
    s.write_all(&bytes).await?;
    // Drain what A sends (OPEN, KEEPALIVEs, its End-of-RIB) in the background.
    let (mut rd, mut wr) = s.into_split();
    tokio::spawn(async move {
        let mut b = vec![0u8; 65536];
        while matches!(rd.read(&mut b).await, Ok(n) if n > 0) {}
    });
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
    let (t0, cpu0) = (Instant::now(), cpu_seconds());
    // The writer half is kept until the end: dropping it closes the
    // connection, and the session would go down with routes still arriving.
    let writer = tokio::spawn(async move { wr.write_all(&body).await.map(|_| wr) });
    // The owner's loop runs as a task on the runtime's workers, as the
    // agent's does (`tortie run`), not on the thread blocked in `main`.
    let owner = tokio::spawn(async move {
        let mut got = 0u32;
        let mut batch = Vec::new();
        let best = |ev: &SpeakerEvent| matches!(ev, SpeakerEvent::BestPathChanged { next_hops, .. } if !next_hops.is_empty());
        while got < n {
            let taken = tokio::select! {
                // As the agent: the express channel first, at any time.
                biased;
                Some(ev) = async {
                    match &mut a_express {
                        Some(x) => x.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    got += u32::from(best(&ev));
                    continue;
                }
                taken = a_rx.recv_many(&mut batch, 1024) => taken,
            };
            if taken == 0 {
                break;
            }
            // Express changes sent before this batch are taken before it;
            // the batch is reported ordered once counted.
            if let Some(x) = &mut a_express {
                batch.extend(std::iter::from_fn(|| x.try_recv()));
            }
            for ev in batch.drain(..) {
                got += u32::from(best(&ev));
            }
            if let Some(x) = &a_express {
                x.ordered(taken);
            }
        }
        (t0.elapsed(), a_rx)
    });
    let (el, _a_rx) = owner.await?;
    let _wr = writer.await??;
    let cpu = cpu_seconds() - cpu0;
    println!(
        "feed: {n} prefixes in {updates} UPDATEs ({per}/UPDATE): all best after {:.3}s ({:.0} prefixes/s), process CPU {cpu:.2}s (feeder included)",
        el.as_secs_f64(),
        f64::from(n) / el.as_secs_f64()
    );
    a.shutdown(false).await;
    Ok(())
}

/// This process's user + system CPU seconds (all threads; clock-tick
/// resolution), from `/proc/self/stat` (fields 14 and 15).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which ends with the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}
