//! Benchmark 5, idle cost: one agent with three established BIRD peers
//! (each in its own namespace, one veth each) and C attached containers,
//! left alone for D seconds; its RSS and CPU% over that window (from
//! `/proc/PID/stat` and `status`), with the BIRD peers' for scale.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use tortie_lab::bird::{Bird, BirdConfig, BirdNeighbor};
use tortie_lab::netns::{Netns, unique_name, veth};
use tortie_lab::tortie::{TortieConfig, TortieNode, TortiePeer};
use tortie_lab::wait_for;

use crate::bins::agent_post;
use crate::report::{Section, mib, proc_kb, thread_cpu, thread_cpu_between};

const ASN: u32 = 64512;

pub fn run(containers: u32, duration: Duration) -> Result<Section> {
    let node = Netns::create(&unique_name("tbn"))?;
    let dir = tempfile::Builder::new()
        .prefix("tortie-bench-idle")
        .tempdir()?;
    let mut peers = Vec::new();
    let mut birds = Vec::new();
    for k in 1..=3u8 {
        let ns = Netns::create(&unique_name("tbp"))?;
        let nif = format!("eth{k}");
        veth(&node, &nif, &ns, "eth1")?;
        node.add_address(&nif, &format!("198.18.{k}.2/24"))?;
        ns.add_address("eth1", &format!("198.18.{k}.1/24"))?;
        let bdir = dir.path().join(format!("bird{k}"));
        std::fs::create_dir_all(&bdir)?;
        let mut cfg = BirdConfig::new(Ipv4Addr::new(198, 18, k, 1), 65000 + u32::from(k));
        cfg.neighbors.push(BirdNeighbor::new(
            "agent",
            format!("198.18.{k}.2").parse()?,
            ASN,
        ));
        // Something to hold: each peer originates a few prefixes.
        cfg.static_routes = (0..10).map(|i| format!("10.{k}.{i}.0/24")).collect();
        birds.push(Bird::start(&ns, &bdir, &cfg)?);
        peers.push(ns);
    }
    let mut cfg = TortieConfig::new("idle", "198.18.1.2/24", ASN, "10.244.0.0/22", dir.path());
    cfg.metrics_listen = "127.0.0.1:9642".into();
    for k in 1..=3u8 {
        cfg.peers.push(TortiePeer::new(
            format!("198.18.{k}.1").parse()?,
            65000 + u32::from(k),
        ));
    }
    let mut agent = TortieNode::start(&node, dir.path(), &cfg)?;
    wait_for("3 established peers", Duration::from_secs(30), || {
        agent.all_established()
    })
    .context("idle: peers did not establish")?;
    let mut conts = Vec::new();
    for i in 0..containers {
        let c = Netns::create(&unique_name("tbnc"))?;
        agent_post(
            &agent.socket,
            "/v1/attach",
            &json!({ "id": format!("idle{i}"), "netns": c.path().to_string_lossy() }),
        )?;
        conts.push(c);
    }
    std::thread::sleep(Duration::from_secs(2));
    let pid = agent.daemon().map(|d| d.pid()).unwrap_or(0);
    let bird_pids: Vec<i32> = birds.iter_mut().map(|b| b.daemon().pid()).collect();
    let c0 = thread_cpu(pid).context("reading the agent's CPU time")?;
    let b0: Vec<_> = bird_pids.iter().map(|p| thread_cpu(*p)).collect();
    let t0 = Instant::now();
    std::thread::sleep(duration);
    let el = t0.elapsed().as_secs_f64();
    let c1 = thread_cpu(pid).context("reading the agent's CPU time")?;
    let cpu = thread_cpu_between(&c0, &c1) / el * 100.0;
    let bird_cpu = bird_pids
        .iter()
        .zip(&b0)
        .filter_map(|(p, b0)| Some(thread_cpu_between(b0.as_ref()?, &thread_cpu(*p)?)))
        .sum::<f64>()
        / el
        * 100.0
        / 3.0;
    let rss = proc_kb(pid, "VmRSS").unwrap_or(0);
    let hwm = proc_kb(pid, "VmHWM").unwrap_or(0);
    let bird_rss = bird_pids
        .iter()
        .filter_map(|p| proc_kb(*p, "VmRSS"))
        .sum::<u64>()
        / 3;
    let established = agent.all_established();
    let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().to_string()))
        })
        .unwrap_or_default();
    drop(conts);
    drop(agent);
    drop(birds);
    drop(peers);
    drop(node);
    let mut sec = Section::new(
        "Idle cost",
        &format!(
            "One agent with 3 established eBGP peers (BIRD, 10 prefixes each) and {containers} attached containers, left alone for {:.0} s: agent RSS and CPU (on-CPU time of its threads from schedstat, each thread's time since the start of the window, over wall time; a thread that exits in the window counts nothing); a BIRD peer's figures for scale.",
            duration.as_secs_f64()
        ),
    );
    sec.header = ["process", "RSS", "peak RSS", "CPU", "threads"]
        .map(String::from)
        .to_vec();
    sec.rows.push(vec![
        "tortie agent".into(),
        mib(rss),
        mib(hwm),
        format!("{cpu:.3} %"),
        threads,
    ]);
    sec.rows.push(vec![
        "BIRD peer (mean)".into(),
        mib(bird_rss),
        String::new(),
        format!("{bird_cpu:.3} %"),
        "1".into(),
    ]);
    sec.sizes = json!({ "containers": containers, "peers": 3, "seconds": duration.as_secs() });
    sec.figures = json!({
        "agent_rss_bytes": rss, "agent_peak_rss_bytes": hwm, "agent_cpu_percent": cpu,
        "bird_mean_rss_bytes": bird_rss, "bird_mean_cpu_percent": bird_cpu,
        "peers_established_at_end": established,
    });
    if !established {
        sec.notes
            .push("a peer was not Established at the end of the window".into());
    }
    Ok(sec)
}
