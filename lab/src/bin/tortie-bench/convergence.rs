//! Benchmark 4, convergence in the two-nodes lab: two tortie agents (iBGP,
//! one veth between their namespaces, the lab harness's guards) each with
//! a container; attach a container on node A through the agent's API, and
//! time until a container on node B gets its first ICMP echo reply from it.
//!
//! Run twice: `advertise = "block"` (B already routes A's block: the figure
//! is attach + datapath readiness) and `advertise = "hosts"` (each /32 goes
//! through BGP and B's kernel first: the figure includes BGP convergence).
//!
//! Then the `leaf-spine` lab (lab/topologies, played by the netns runner:
//! BIRD ToRs as route reflectors, an FRR spine): attach on rack 1's node
//! `r1n1` with the runner (`tortie attach` CLI in the node), first reply at
//! container `c1` of rack 2's node `r2n2` — three BGP hops for the block.

use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tortie_lab::netns::{Netns, linked_pair, unique_name};
use tortie_lab::runner::LabGuard;
use tortie_lab::tortie::{TortieConfig, TortieNode, TortiePeer};
use tortie_lab::wait_for;

use crate::bins::agent_post;
use crate::report::{Section, ms, percentile};

const ASN: u32 = 64512;

struct Mode {
    advertise: &'static str,
    attach: Vec<Duration>,
    ping: Vec<Duration>,
}

fn one_mode(advertise: &'static str, count: u32) -> Result<Mode> {
    let (a, b) = linked_pair("tbv", "198.18.0.1/24", "198.18.0.2/24")?;
    let da = tempfile::Builder::new()
        .prefix("tortie-bench-conv-a")
        .tempdir()?;
    let db = tempfile::Builder::new()
        .prefix("tortie-bench-conv-b")
        .tempdir()?;
    let mut ca = TortieConfig::new("node-a", "198.18.0.1/24", ASN, "10.244.1.0/24", da.path());
    let mut cb = TortieConfig::new("node-b", "198.18.0.2/24", ASN, "10.244.2.0/24", db.path());
    for (c, peer) in [(&mut ca, "198.18.0.2"), (&mut cb, "198.18.0.1")] {
        c.advertise = advertise.to_string();
        c.metrics_listen = String::new();
        c.peers.push(TortiePeer::new(peer.parse()?, ASN));
    }
    let node_a = TortieNode::start(&a, da.path(), &ca)?;
    let node_b = TortieNode::start(&b, db.path(), &cb)?;
    wait_for("both agents Established", Duration::from_secs(30), || {
        node_a.all_established() && node_b.all_established()
    })
    .context("two-nodes lab did not come up")?;
    // The probing container on B.
    let cont_b = Netns::create(&unique_name("tbvb"))?;
    node_b.attach(&cont_b.path(), "probe", None)?;
    let mut attach_t = Vec::new();
    let mut ping_t = Vec::new();
    // One warm-up attach proves the path before timing (30 s budget).
    for i in 0..=count {
        let warm = i == 0;
        let ns = Netns::create(&unique_name("tbva"))?;
        let ip = Ipv4Addr::new(10, 244, 1, (10 + i % 200) as u8);
        let id = format!("conv{i}");
        let (tx, rx) = mpsc::channel();
        let budget = if warm {
            Duration::from_secs(30)
        } else {
            Duration::from_secs(10)
        };
        let cb_name = cont_b.name().to_string();
        // The prober starts first and probes until the first reply.
        let prober = std::thread::spawn(move || {
            crate::nl::in_netns(&cb_name, move || {
                let _ = tx.send(());
                crate::ping::first_reply(ip, Instant::now() + budget)
            })
        });
        rx.recv_timeout(Duration::from_secs(5))
            .context("prober did not start")?;
        let t0 = Instant::now();
        agent_post(
            &node_a.socket,
            "/v1/attach",
            &json!({ "id": id, "netns": ns.path().to_string_lossy(), "ip": ip.to_string() }),
        )?;
        let t_attached = Instant::now();
        let replied = prober
            .join()
            .map_err(|_| anyhow::anyhow!("prober panicked"))?
            .with_context(|| format!("{advertise}: container {ip} on A never answered B"))?;
        if !warm {
            attach_t.push(t_attached - t0);
            ping_t.push(replied.saturating_duration_since(t0));
        }
        if std::env::var_os("TORTIE_BENCH_TRACE").is_some() {
            eprintln!(
                "  {advertise} {ip}: first reply after {:?} (wall {:?})",
                replied.saturating_duration_since(t0),
                std::time::SystemTime::now()
            );
        }
        agent_post(&node_a.socket, "/v1/detach", &json!({ "id": id }))?;
        drop(ns);
    }
    if ping_t.len() != count as usize {
        bail!("only {} of {count} samples", ping_t.len());
    }
    attach_t.sort();
    ping_t.sort();
    drop(node_a);
    drop(node_b);
    drop(cont_b);
    Ok(Mode {
        advertise,
        attach: attach_t,
        ping: ping_t,
    })
}

/// Leaf-spine: attach on r1n1 via the runner, probe from r2n2/c1.
fn leaf_spine(count: u32) -> Result<Mode> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/leaf-spine.clab.yml");
    let name = unique_name("tbls");
    let mut guard = LabGuard::up(&path, &name).context("bringing up the leaf-spine lab")?;
    let lab = &mut guard.lab;
    let probe_ns = lab
        .state
        .containers
        .iter()
        .find(|c| c.node == "r2n2" && c.id == "c1")
        .map(|c| c.netns.clone())
        .context("leaf-spine: no container c1 on r2n2")?;
    let node = lab
        .topo
        .node("r1n1")
        .cloned()
        .context("leaf-spine: no node r1n1")?;
    let mut attach_t = Vec::new();
    let mut ping_t = Vec::new();
    for i in 0..=count {
        let warm = i == 0;
        let ip = Ipv4Addr::new(10, 244, 11, (20 + i % 40) as u8);
        let id = format!("conv{i}");
        let (tx, rx) = mpsc::channel();
        // The warm-up also waits for the fabric to converge after `up`.
        let budget = if warm {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(10)
        };
        let pns = probe_ns.clone();
        let prober = std::thread::spawn(move || {
            crate::nl::in_netns(&pns, move || {
                let _ = tx.send(());
                crate::ping::first_reply(ip, Instant::now() + budget)
            })
        });
        rx.recv_timeout(Duration::from_secs(5))
            .context("prober did not start")?;
        let t0 = Instant::now();
        lab.add_container(&node, &id, Some(&ip.to_string()))?;
        let t_attached = Instant::now();
        let replied = prober
            .join()
            .map_err(|_| anyhow::anyhow!("prober panicked"))?
            .with_context(|| {
                format!("leaf-spine: container {ip} on r1n1 never answered r2n2/c1")
            })?;
        if !warm {
            attach_t.push(t_attached - t0);
            ping_t.push(replied.saturating_duration_since(t0));
        }
        lab.detach_container("r1n1", &id)?;
    }
    attach_t.sort();
    ping_t.sort();
    drop(guard);
    Ok(Mode {
        advertise: "block",
        attach: attach_t,
        ping: ping_t,
    })
}

pub fn run(count: u32) -> Result<Section> {
    let mut sec = Section::new(
        "Convergence (two nodes)",
        &format!(
            "Two agents in iBGP over a veth (the two-nodes lab's shape, built with the lab harness). {count} times: a container is attached on node A through the API (POST /v1/attach with a static address); a container on node B sends ICMP echo requests to it every 1 ms from just before the attach; figure = attach request → first reply. Fresh namespace per attach; one warm-up attach not counted. Then the leaf-spine lab played by the netns runner (BIRD ToRs as route reflectors per rack, FRR spine): attach on r1n1 with the runner (`tortie attach` CLI run in the node, so the attach column includes the CLI), probe from r2n2/c1 in the other rack."
        ),
    );
    sec.header = [
        "lab",
        "advertise",
        "attach p50",
        "attach → first ping p50",
        "p99",
        "max",
    ]
    .map(String::from)
    .to_vec();
    sec.sizes = json!({ "attaches": count });
    let mut figures = serde_json::Map::new();
    for (lab, adv) in [
        ("two-nodes", "block"),
        ("two-nodes", "hosts"),
        ("leaf-spine", "block"),
    ] {
        let m = if lab == "leaf-spine" {
            leaf_spine(count)?
        } else {
            one_mode(adv, count)?
        };
        let f = |d: Duration| format!("{:.1} ms", ms(d));
        sec.rows.push(vec![
            lab.into(),
            m.advertise.into(),
            f(percentile(&m.attach, 0.5)),
            f(percentile(&m.ping, 0.5)),
            f(percentile(&m.ping, 0.99)),
            f(m.ping.last().copied().unwrap_or_default()),
        ]);
        figures.insert(
            format!("{lab}/{adv}"),
            json!({
                "attach_api_p50_ms": ms(percentile(&m.attach, 0.5)),
                "first_ping_p50_ms": ms(percentile(&m.ping, 0.5)),
                "first_ping_p99_ms": ms(percentile(&m.ping, 0.99)),
                "first_ping_max_ms": ms(m.ping.last().copied().unwrap_or_default()),
            }),
        );
    }
    sec.figures = Value::Object(figures);
    sec.notes
        .push("no anchor in this benchmark: absolute figures only".into());
    Ok(sec)
}
