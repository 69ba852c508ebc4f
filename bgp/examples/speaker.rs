//! A minimal BGP speaker on top of `tortie_bgp::Speaker`, for interop tests
//! and poking at peers by hand. No config file: everything is a flag.
//!
//! ```text
//! speaker --asn 65001 --router-id 192.0.2.1 [--local 192.0.2.1] [--listen 0.0.0.0:179]
//!         [--hold 90] [--connect-retry 5] [--gr RESTART_SECS] [--gr-preserved] [--graceful-exit]
//!         --peer ADDR,ASN[,passive][,md5=KEY][,port=N][,ttl=HOPS][,rrclient][,hold=N][,max=N] ...
//!         --originate PREFIX[,NEXTHOP] ...
//! ```
//!
//! Prints one JSON object per line on stdout: every `SpeakerEvent`, and a
//! `{"status":[...]}` / `{"routes":[...]}` dump on SIGUSR1 or the stdin
//! commands `status` / `routes`. Other stdin commands: `originate PREFIX
//! [NEXTHOP]`, `withdraw PREFIX`, `refresh PEER`, `quit`. SIGTERM/SIGINT (or
//! stdin EOF) stop it: with `--graceful-exit`, without a NOTIFICATION (peers
//! keep our routes through graceful restart), else with Cease/2.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use tokio::signal::unix::{SignalKind, signal};
use tortie_bgp::{
    GracefulRestartConfig, PeerConfig, PeerStatus, Prefix, RouteInfo, Speaker, SpeakerConfig,
    SpeakerEvent,
};

fn usage() -> &'static str {
    "usage: speaker --asn N --router-id A.B.C.D [--local ADDR] [--listen ADDR:PORT] [--hold N] [--connect-retry SECS] \
     [--gr SECS] [--gr-preserved] [--graceful-exit] --peer ADDR,ASN[,passive][,md5=KEY][,port=N][,ttl=N][,rrclient][,hold=N][,max=N] \
     [--originate PREFIX[,NEXTHOP]]"
}

struct Args {
    cfg: SpeakerConfig,
    originate: Vec<(Prefix, Option<IpAddr>)>,
    graceful_exit: bool,
}

fn parse_peer(s: &str) -> Result<PeerConfig, String> {
    let mut it = s.split(',');
    let addr: IpAddr = it
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|e| format!("--peer {s}: address: {e}"))?;
    let asn: u32 = it
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|e| format!("--peer {s}: ASN: {e}"))?;
    let mut p = PeerConfig::new(addr, asn);
    for opt in it {
        let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
        let num = |v: &str| {
            v.parse::<u32>()
                .map_err(|e| format!("--peer {s}: {k}: {e}"))
        };
        match k {
            "passive" => p.passive = true,
            "rrclient" => p.route_reflector_client = true,
            "md5" => p.password = Some(v.as_bytes().to_vec()),
            "port" => {
                p.port = u16::try_from(num(v)?).map_err(|e| format!("--peer {s}: port: {e}"))?
            }
            "ttl" => {
                p.ttl_security =
                    Some(u8::try_from(num(v)?).map_err(|e| format!("--peer {s}: ttl: {e}"))?)
            }
            "hold" => {
                p.hold_time =
                    Some(u16::try_from(num(v)?).map_err(|e| format!("--peer {s}: hold: {e}"))?)
            }
            "max" => p.max_prefixes = Some(num(v)?),
            "name" => p.name = v.to_string(),
            _ => return Err(format!("--peer {s}: unknown option {k:?}")),
        }
    }
    Ok(p)
}

fn parse_originate(s: &str) -> Result<(Prefix, Option<IpAddr>), String> {
    let (p, nh) = match s.split_once(',') {
        Some((p, nh)) => (
            p,
            Some(
                nh.parse::<IpAddr>()
                    .map_err(|e| format!("--originate {s}: next hop: {e}"))?,
            ),
        ),
        None => (s, None),
    };
    Ok((p.parse::<Prefix>()?, nh))
}

fn parse_args() -> Result<Args, String> {
    let mut cfg = SpeakerConfig {
        local_asn: 0,
        router_id: Ipv4Addr::UNSPECIFIED,
        local_addresses: Vec::new(),
        listen: None,
        hold_time: 90,
        connect_retry: Duration::from_secs(5),
        graceful_restart: None,
        cluster_id: None,
        guard: Default::default(),
        ebgp_requires_policy: true,
        best_path_feed: tortie_bgp::BestPathFeed::Full,
        peers: Vec::new(),
    };
    let mut originate = Vec::new();
    let mut graceful_exit = false;
    let mut preserved = false;
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let mut val = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--asn" => cfg.local_asn = val()?.parse().map_err(|e| format!("--asn: {e}"))?,
            "--router-id" => {
                cfg.router_id = val()?.parse().map_err(|e| format!("--router-id: {e}"))?
            }
            "--local" => {
                cfg.local_addresses = vec![val()?.parse().map_err(|e| format!("--local: {e}"))?]
            }
            "--listen" => {
                cfg.listen = Some(
                    val()?
                        .parse::<SocketAddr>()
                        .map_err(|e| format!("--listen: {e}"))?,
                )
            }
            "--hold" => cfg.hold_time = val()?.parse().map_err(|e| format!("--hold: {e}"))?,
            "--connect-retry" => {
                cfg.connect_retry = Duration::from_secs_f64(
                    val()?
                        .parse()
                        .map_err(|e| format!("--connect-retry: {e}"))?,
                )
            }
            "--gr" => {
                let t = val()?.parse().map_err(|e| format!("--gr: {e}"))?;
                cfg.graceful_restart = Some(GracefulRestartConfig {
                    restart_time: t,
                    forwarding_preserved: Vec::new(),
                })
            }
            "--gr-preserved" => preserved = true,
            "--graceful-exit" => graceful_exit = true,
            "--peer" => cfg.peers.push(parse_peer(&val()?)?),
            "--originate" => originate.push(parse_originate(&val()?)?),
            "-h" | "--help" => return Err(usage().to_string()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    if let Some(g) = cfg.graceful_restart.as_mut()
        && preserved
    {
        g.forwarding_preserved = tortie_bgp::fsm::UNICAST_FAMILIES.to_vec();
    }
    Ok(Args {
        cfg,
        originate,
        graceful_exit,
    })
}

/// A JSON string literal.
fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn list<T>(v: &[T], f: impl Fn(&T) -> String) -> String {
    format!("[{}]", v.iter().map(f).collect::<Vec<_>>().join(","))
}

fn event_json(ev: &SpeakerEvent) -> String {
    match ev {
        SpeakerEvent::BestPathChanged {
            prefix,
            next_hops,
            attributes,
            ..
        } => {
            let attrs = match attributes {
                Some(a) => format!(
                    "{{\"as_path\":{},\"origin\":{},\"next_hop\":{},\"med\":{},\"local_pref\":{},\"communities\":{}}}",
                    js(&a.as_path.to_string()),
                    js(&format!("{:?}", a.origin)),
                    a.next_hop.map_or("null".into(), |n| js(&n.to_string())),
                    a.med.map_or("null".into(), |m| m.to_string()),
                    a.local_pref.map_or("null".into(), |m| m.to_string()),
                    list(&a.communities, |c| js(&format!(
                        "{}:{}",
                        c >> 16,
                        c & 0xffff
                    ))),
                ),
                None => "null".into(),
            };
            format!(
                "{{\"event\":\"best_path\",\"prefix\":{},\"next_hops\":{},\"attributes\":{attrs}}}",
                js(&prefix.to_string()),
                list(next_hops, |n| js(&n.to_string()))
            )
        }
        SpeakerEvent::PeerStateChanged {
            peer,
            state,
            reason,
        } => format!(
            "{{\"event\":\"peer_state\",\"peer\":{},\"state\":{},\"reason\":{}}}",
            js(&peer.to_string()),
            js(state.name()),
            js(reason)
        ),
        SpeakerEvent::Converged => "{\"event\":\"converged\"}".into(),
    }
}

fn status_json(peers: &[PeerStatus]) -> String {
    let one = |p: &PeerStatus| {
        let counters = |c: &tortie_bgp::MessageCounters| {
            format!(
                "{{{}}}",
                c.by_type()
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", js(k)))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        format!(
            "{{\"address\":{},\"name\":{},\"asn\":{},\"state\":{},\"since\":{},\"routes_received\":{},\"routes_advertised\":{},\
             \"messages_received\":{},\"messages_sent\":{},\"established_transitions\":{},\"last_error\":{},\"hold_time\":{}}}",
            js(&p.address.to_string()),
            js(&p.name),
            p.remote_asn,
            js(p.state.name()),
            p.since
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            p.routes_received,
            p.routes_advertised,
            counters(&p.messages_received),
            counters(&p.messages_sent),
            p.established_transitions,
            p.last_error.as_deref().map_or("null".into(), js),
            p.hold_time.map_or("null".into(), |h| h.to_string()),
        )
    };
    format!("{{\"status\":{}}}", list(peers, one))
}

fn routes_json(routes: &[RouteInfo]) -> String {
    let one = |r: &RouteInfo| {
        let cands = list(&r.candidates, |c| {
            format!(
                "{{\"peer\":{},\"next_hop\":{},\"as_path\":{},\"best\":{},\"ecmp\":{},\"stale\":{},\"reason\":{}}}",
                c.peer.map_or("null".into(), |p| js(&p.to_string())),
                c.attributes
                    .next_hop
                    .map_or("null".into(), |n| js(&n.to_string())),
                js(&c.attributes.as_path.to_string()),
                c.best,
                c.ecmp,
                c.stale,
                c.reason.as_deref().map_or("null".into(), js)
            )
        });
        format!(
            "{{\"prefix\":{},\"candidates\":{cands}}}",
            js(&r.prefix.to_string())
        )
    };
    format!("{{\"routes\":{}}}", list(routes, one))
}

async fn command(s: &Speaker, line: &str) -> Result<bool, String> {
    let mut w = line.split_whitespace();
    match (w.next(), w.next(), w.next()) {
        (None, ..) => {}
        (Some("status"), ..) => println!("{}", status_json(&s.peers().await)),
        (Some("routes"), ..) => println!("{}", routes_json(&s.routes().await)),
        (Some("originate"), Some(p), nh) => {
            let nh = nh
                .map(|n| n.parse::<IpAddr>())
                .transpose()
                .map_err(|e| e.to_string())?;
            s.originate(p.parse()?, nh)
                .await
                .map_err(|e| e.to_string())?
        }
        (Some("withdraw"), Some(p), _) => {
            s.withdraw(p.parse()?).await.map_err(|e| e.to_string())?
        }
        (Some("refresh"), Some(p), _) => s
            .route_refresh(p.parse().map_err(|e| format!("{e}"))?)
            .await
            .map_err(|e| e.to_string())?,
        (Some("quit"), ..) => return Ok(false),
        _ => return Err(format!("unknown command {line:?}")),
    }
    Ok(true)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let (speaker, mut events) = match Speaker::start(args.cfg).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("speaker: {e}");
            return ExitCode::from(1);
        }
    };
    for (p, nh) in args.originate {
        if let Err(e) = speaker.originate(p, nh).await {
            eprintln!("originate {p}: {e}");
        }
    }
    let (Ok(mut usr1), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::user_defined1()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("speaker: cannot install signal handlers");
        return ExitCode::from(1);
    };
    // Stdin lines through a plain thread (tokio's io-std is not enabled).
    let (line_tx, mut lines) = tokio::sync::mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if line_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let mut stdin_open = true;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => println!("{}", event_json(&ev)),
                None => break,
            },
            _ = usr1.recv() => {
                println!("{}", status_json(&speaker.peers().await));
                println!("{}", routes_json(&speaker.routes().await));
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            line = lines.recv(), if stdin_open => match line {
                Some(l) => match command(&speaker, &l).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => println!("{{\"error\":{}}}", js(&e)),
                },
                // EOF: keep running until a signal (daemon use with </dev/null).
                None => stdin_open = false,
            },
        }
    }
    speaker.shutdown(args.graceful_exit).await;
    ExitCode::SUCCESS
}
