//! Benchmark 6, scale (issue 16): a generated topology
//! ([`tortie_lab::scale`]) of N tortie nodes in one AS, full mesh or route
//! reflectors (tortie, BIRD or FRR), played by the netns runner; measured
//! from kernel route events in every node ([`crate::scale_watch`]):
//!
//! - **cold start**: first daemon started → every tortie node has every
//!   tortie node's block (/26, protocol 149) in its kernel;
//! - **new route**: a container attached on a node (advertise = "hosts") →
//!   its /32 in every other node's kernel, from the moment the /32 appeared
//!   on its own node (p50/p99 over every (sample, node) pair; and the time
//!   to reach all nodes, worst sample);
//! - **node down**: a node's link set down (no FIN: peers notice by their
//!   hold timer) → its block gone from every other node's kernel;
//! - agent RSS (max, total), CPU seconds, BGP messages per node (from each
//!   agent's `GET /v1/status`).
//!
//! Everything is torn down at the end, on failure and on SIGINT
//! ([`interrupt`]), and checked: a leftover namespace fails the run.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tortie_lab::netns::Netns;
use tortie_lab::runner::Lab;
use tortie_lab::scale::{self, Mode, ScaleSpec};
use tortie_lab::topology::Topology;

use crate::bins::agent_get;
use crate::report::{Section, cpu_seconds, own_and_reaped_cpu_seconds, percentile, proc_kb};
use crate::scale_watch::{Key, Tables, Watch};

const PROTO_TORTIE: u8 = 149;

/// One scale configuration to run.
#[derive(Clone, Debug)]
pub struct Case {
    pub nodes: usize,
    pub mode: Mode,
    pub containers: usize,
    pub samples: usize,
    /// BFD on every session: node down found in ≤ 0.9 s, not by the hold timer.
    pub bfd: bool,
    pub fabric: scale::Fabric,
}

fn mode_key(m: Mode) -> String {
    match m {
        Mode::Mesh => "mesh".into(),
        Mode::Rr { .. } => "rr".into(),
    }
}

fn reflector_key(m: Mode) -> String {
    match m {
        Mode::Mesh => "-".into(),
        Mode::Rr { count, kind } => format!("{count} × {}", kind.name()),
    }
}

/// The lab being run, for the SIGINT handler's teardown.
static CURRENT: Mutex<Option<(PathBuf, PathBuf, String)>> = Mutex::new(None);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Host neighbour-table thresholds as they were before this run raised them.
static SAVED_HOST: Mutex<tortie_lab::limits::Saved> = Mutex::new(Vec::new());

/// Restores the host's settings when dropped.
struct RestoreHost;

impl Drop for RestoreHost {
    fn drop(&mut self) {
        restore_host();
    }
}

/// Puts the host's neighbour-table thresholds back (end of a case, SIGINT).
fn restore_host() {
    if let Ok(mut saved) = SAVED_HOST.lock() {
        tortie_lab::limits::restore_neigh_thresholds(&saved);
        saved.clear();
    }
}
/// Set by the benchmark thread once it stopped touching the lab after SIGINT.
static STOPPED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT: a flag set by the handler; a thread sees it, tears down the lab
/// being run (from its state file, then every namespace named after it) and
/// exits 130.
pub fn interrupt() -> Result<()> {
    // SAFETY: the handler only stores to an atomic.
    let prev = unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
    if prev == libc::SIG_ERR {
        bail!("installing the SIGINT handler");
    }
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(Duration::from_millis(50));
            if INTERRUPTED.load(Ordering::SeqCst) {
                eprintln!("tortie-bench: interrupted, tearing the lab down …");
                // Stop the runner at its next step, and wait (bounded) for
                // the benchmark thread to let go of the lab.
                tortie_lab::runner::INTERRUPT.store(true, Ordering::SeqCst);
                let t = std::time::Instant::now();
                while !STOPPED.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(20) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let cur = CURRENT.lock().map(|c| c.clone()).unwrap_or(None);
                if let Some((topo, root, name)) = cur {
                    teardown(&topo, &root, &name);
                    // The temp dirs' guards will not run: exit skips them.
                    let _ = std::fs::remove_dir_all(&root);
                    if let Some(gen_dir) = topo.parent() {
                        let _ = std::fs::remove_dir_all(gen_dir);
                    }
                    sweep(&name);
                }
                restore_host();
                std::process::exit(130);
            }
        }
    });
    Ok(())
}

/// Whether SIGINT arrived (long waits give up).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// `down` from the state file, then any namespace of the lab left over.
fn teardown(topo: &Path, root: &Path, name: &str) {
    if let Ok(t) = Topology::load(topo, Some(name))
        && let Ok(mut lab) = Lab::open(t, root)
        && let Err(e) = lab.down()
    {
        eprintln!("tortie-bench: lab down: {e}");
    }
    sweep(name);
    let _ = std::fs::remove_dir_all(root.join(name));
}

/// Deletes every namespace named after lab `name`, killing what runs in it.
fn sweep(name: &str) {
    let prefix = format!("clab-{name}-");
    for ns in tortie_lab::netns::list_namespaces() {
        if ns.starts_with(&prefix) {
            let _ = tortie_lab::netns::delete_namespace(&ns);
        }
    }
}

#[derive(Debug, Default)]
struct Figures {
    lab_up_s: f64,
    lab_up_cpu_s: f64,
    cold_start_s: f64,
    new_route: Vec<Duration>,
    new_route_all: Vec<Duration>,
    attach_cli: Vec<Duration>,
    node_down_s: f64,
    rss_kib: Vec<u64>,
    cpu_s: Vec<f64>,
    msgs_rx: Vec<u64>,
    msgs_tx: Vec<u64>,
    updates_rx: Vec<u64>,
    overflowed: usize,
    host_changes: Vec<String>,
}

/// The block key of client node `name` (`nI`).
fn block_of(name: &str) -> Option<Key> {
    let i: usize = name.strip_prefix('n')?.parse().ok()?;
    let b = scale::node_block(i);
    let (a, _) = b.split_once('/')?;
    Some((a.parse().ok()?, 26))
}

fn count_blocks(t: &Tables, i: usize) -> usize {
    t.present[i].keys().filter(|(_, l)| *l == 26).count()
}

fn run_case(case: &Case, seq: usize) -> Result<Figures> {
    let name = format!("sc{}x{seq}", std::process::id() % 100_000);
    let spec = ScaleSpec {
        name: name.clone(),
        nodes: case.nodes,
        containers: case.containers,
        mode: case.mode,
        hold_time: 9,
        bfd: case.bfd,
        fabric: case.fabric,
    };
    let gen_dir = tempfile::Builder::new()
        .prefix("tortie-scale")
        .tempdir()
        .context("temp dir")?;
    let path = scale::generate(&spec, gen_dir.path())?;
    let root = tempfile::Builder::new()
        .prefix("tortie-scale-lab")
        .tempdir()
        .context("temp dir")?;
    let mut f = Figures::default();
    let tortie_nodes = spec.tortie_nodes();
    let (changes, saved) =
        tortie_lab::limits::raise_neigh_thresholds(tortie_lab::limits::neigh_entries_needed(
            case.nodes + spec.reflectors(),
            // A routed fabric's VXLAN keeps a neighbour entry per remote VTEP.
            case.mode == Mode::Mesh || case.fabric == scale::Fabric::Routed,
            case.containers,
        ))?;
    f.host_changes = changes;
    if let Ok(mut s) = SAVED_HOST.lock() {
        s.extend(saved);
    }
    // Puts them back on every way out of this case (errors included).
    let _restore = RestoreHost;
    f.host_changes
        .extend(tortie_lab::limits::check_host(tortie_nodes.len()));
    *CURRENT.lock().map_err(|_| anyhow::anyhow!("lock"))? =
        Some((path.clone(), root.path().to_path_buf(), name.clone()));
    let topo = Topology::load(&path, Some(&name))?;
    let mut lab = Lab::open(topo, root.path())?;
    let result = measure(&spec, &mut lab, &tortie_nodes, case.samples, &mut f);
    if INTERRUPTED.load(Ordering::SeqCst) {
        // The SIGINT thread tears down and exits; do not race it.
        drop(lab);
        STOPPED.store(true, Ordering::SeqCst);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    drop(lab);
    teardown(&path, root.path(), &name);
    restore_host();
    if let Ok(mut c) = CURRENT.lock() {
        *c = None;
    }
    let left: Vec<String> = tortie_lab::netns::list_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&format!("clab-{name}-")))
        .collect();
    result?;
    if !left.is_empty() {
        bail!("left behind after the run: {left:?}");
    }
    Ok(f)
}

fn measure(
    spec: &ScaleSpec,
    lab: &mut Lab,
    tortie_nodes: &[String],
    samples: usize,
    f: &mut Figures,
) -> Result<()> {
    let namespaces: Vec<String> = tortie_nodes.iter().map(|n| lab.topo.namespace(n)).collect();
    let mut watch = None;
    let mut t_daemons = Instant::now();
    let t_up = Instant::now();
    let cpu_up = own_and_reaped_cpu_seconds();
    lab.up_with(|_| {
        watch = Some(
            Watch::start(&namespaces, PROTO_TORTIE)
                .map_err(|e| tortie_lab::LabError::Invalid(format!("{e:#}")))?,
        );
        t_daemons = Instant::now();
        Ok(())
    })?;
    f.lab_up_s = t_up.elapsed().as_secs_f64();
    // The runner and the commands it ran (ip, sh, `tortie attach`); not the agents.
    f.lab_up_cpu_s = own_and_reaped_cpu_seconds() - cpu_up;
    let watch = watch.context("route watch not started")?;
    let n = namespaces.len();
    let budget = Duration::from_secs(120) + Duration::from_millis(500 * n as u64);
    watch
        .wait(budget, |t| (0..n).all(|i| count_blocks(t, i) >= n))
        .context("cold start: not every node has every block")?;
    f.cold_start_s = watch.with(|t| {
        (0..n)
            .filter_map(|i| {
                t.present[i]
                    .iter()
                    .filter(|((_, l), _)| *l == 26)
                    .map(|(_, at)| *at)
                    .max()
            })
            .max()
            .map(|at| at.saturating_duration_since(t_daemons).as_secs_f64())
            .unwrap_or(f64::NAN)
    });
    // New routes: containers attached one at a time.
    let clients = spec.node_names();
    for j in 0..samples {
        let node_name = &clients[(j * 7 + 1) % clients.len()];
        let node = lab.topo.node(node_name).cloned().context("sample node")?;
        let home = tortie_nodes
            .iter()
            .position(|x| x == node_name)
            .context("home index")?;
        let t0 = Instant::now();
        let addr = lab.add_container(&node, &format!("s{j}"), None)?;
        f.attach_cli.push(t0.elapsed());
        let key: Key = (addr.parse().context("container address")?, 32);
        watch
            .wait(Duration::from_secs(60), |t| {
                (0..n).all(|i| t.present[i].contains_key(&key))
            })
            .with_context(|| format!("new route {addr}: not on every node"))?;
        watch.with(|t| {
            let Some(&start) = t.present[home].get(&key) else {
                return;
            };
            let mut worst = Duration::ZERO;
            for i in (0..n).filter(|&i| i != home) {
                if let Some(at) = t.present[i].get(&key) {
                    let d = at.saturating_duration_since(start);
                    worst = worst.max(d);
                    f.new_route.push(d);
                }
            }
            f.new_route_all.push(worst);
        });
    }
    // Node down: link down, peers notice through BFD or their hold timers.
    let victim = &clients[clients.len() / 2];
    let vi = tortie_nodes
        .iter()
        .position(|x| x == victim)
        .context("victim index")?;
    let vkey = block_of(victim).context("victim block")?;
    let t0 = Instant::now();
    Netns::existing(&lab.topo.namespace(victim)).run(&["ip", "link", "set", "eth1", "down"])?;
    watch
        .wait(
            Duration::from_secs(u64::from(spec.hold_time) * 4 + 30),
            |t| {
                (0..n)
                    .filter(|&i| i != vi)
                    .all(|i| !t.present[i].contains_key(&vkey))
            },
        )
        .context("node down: its block was not withdrawn everywhere")?;
    f.node_down_s = watch.with(|t| {
        (0..n)
            .filter(|&i| i != vi)
            .filter_map(|i| t.removed[i].get(&vkey))
            .map(|at| at.saturating_duration_since(t0).as_secs_f64())
            .fold(0.0, f64::max)
    });
    f.overflowed = watch.with(|t| t.overflowed.iter().filter(|o| **o).count());
    // Cost of every agent.
    for d in lab.state.daemons.iter().filter(|d| d.name == "tortie") {
        f.rss_kib.push(proc_kb(d.pid, "VmRSS").unwrap_or(0) / 1024);
        f.cpu_s.push(cpu_seconds(d.pid).unwrap_or(0.0));
        let sock = lab.node_dir(&d.node).join("run/tortie/tortie.sock");
        if let Ok(st) = agent_get(&sock, "/v1/status") {
            let sum = |field: &str, only: Option<&str>| -> u64 {
                st["peers"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .flat_map(|p| p[field].as_object().into_iter().flatten())
                            .filter(|(k, _)| only.is_none_or(|o| k.eq_ignore_ascii_case(o)))
                            .filter_map(|(_, v)| v.as_u64())
                            .sum()
                    })
                    .unwrap_or(0)
            };
            f.msgs_rx.push(sum("messages_received", None));
            f.msgs_tx.push(sum("messages_sent", None));
            f.updates_rx.push(sum("messages_received", Some("update")));
        }
    }
    Ok(())
}

fn mean(v: &[u64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<u64>() as f64 / v.len() as f64
}

pub fn run(cases: &[Case]) -> Result<Section> {
    let mut sec = Section::new(
        "Scale (generated topology, netns runner)",
        "N tortie nodes in one AS on one subnet over switch bridges, or (fabric routed) a /24 per rack router with vxlan-cross-subnet (lab/src/scale.rs), K containers each (attached through the agent), full iBGP mesh or R route reflectors (tortie with route_reflector_client peers, BIRD `rr client`, or FRR); advertise = hosts, hold time 9 s, graceful restart off. lab up = the runner's whole `up` (namespaces, links, exec lines and containers on up to 16 threads, TORTIE_LAB_JOBS), CPU = its own and its reaped commands' CPU seconds (not the agents'). Times from netlink route events in every tortie node. cold start = first daemon started → every node has every block in its kernel; new route = a container's /32 on its node → on each other node (p50/p99 over all sample × node pairs; 'all' = worst sample's time to reach every node); node down = the node's link down → its block gone everywhere (hold timer 9 s, or BFD 300 ms × 3 where BFD is on); RSS/CPU of every agent after those; BGP messages = received + sent per node (all peers, all types).",
    );
    sec.header = [
        "nodes",
        "mode",
        "reflectors",
        "fabric",
        "BFD",
        "lab up (CPU)",
        "cold start",
        "new route p50 / p99",
        "all nodes (worst)",
        "node down",
        "agent RSS max / total",
        "agent CPU s (sum)",
        "BGP msgs / node",
        "UPDATEs rx / node",
    ]
    .map(String::from)
    .to_vec();
    let mut figures = Vec::new();
    for (seq, case) in cases.iter().enumerate() {
        eprintln!(
            "tortie-bench: scale {} nodes, {} {}, {} fabric{}",
            case.nodes,
            mode_key(case.mode),
            reflector_key(case.mode),
            case.fabric.name(),
            if case.bfd { ", BFD" } else { "" }
        );
        let mut f = run_case(case, seq)?;
        f.new_route.sort();
        f.new_route_all.sort();
        let p50 = percentile(&f.new_route, 0.5).as_secs_f64() * 1e3;
        let p99 = percentile(&f.new_route, 0.99).as_secs_f64() * 1e3;
        let all_max = f
            .new_route_all
            .last()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3;
        let rss_max = f.rss_kib.iter().copied().max().unwrap_or(0);
        let rss_total: u64 = f.rss_kib.iter().sum();
        let cpu: f64 = f.cpu_s.iter().sum();
        let msgs: Vec<u64> = f
            .msgs_rx
            .iter()
            .zip(&f.msgs_tx)
            .map(|(a, b)| a + b)
            .collect();
        sec.rows.push(vec![
            case.nodes.to_string(),
            mode_key(case.mode),
            reflector_key(case.mode),
            case.fabric.name().to_string(),
            if case.bfd { "on" } else { "off" }.to_string(),
            format!("{:.1} s ({:.1} CPU s)", f.lab_up_s, f.lab_up_cpu_s),
            format!("{:.2} s", f.cold_start_s),
            format!("{p50:.0} / {p99:.0} ms"),
            format!("{all_max:.0} ms"),
            format!("{:.2} s", f.node_down_s),
            format!(
                "{:.1} / {:.0} MiB",
                rss_max as f64 / 1024.0,
                rss_total as f64 / 1024.0
            ),
            format!("{cpu:.1}"),
            format!("{:.0}", mean(&msgs)),
            format!("{:.0}", mean(&f.updates_rx)),
        ]);
        if f.overflowed > 0 {
            sec.notes.push(format!("{} nodes {}: {} route-event sockets overflowed (figures of those nodes may be late)", case.nodes, mode_key(case.mode), f.overflowed));
        }
        for c in &f.host_changes {
            sec.notes.push(format!("host: {c}"));
        }
        figures.push(json!({
            "nodes": case.nodes,
            "mode": mode_key(case.mode),
            "reflector": match case.mode { Mode::Mesh => Value::Null, Mode::Rr { kind, .. } => json!(kind.name()) },
            "reflectors": match case.mode { Mode::Mesh => 0, Mode::Rr { count, .. } => count },
            "containers_per_node": case.containers,
            "bfd": case.bfd,
            "fabric": case.fabric.name(),
            "lab_up_s": f.lab_up_s,
            "lab_up_cpu_s": f.lab_up_cpu_s,
            "cold_start_converged_s": f.cold_start_s,
            "new_route_p50_ms": p50,
            "new_route_p99_ms": p99,
            "new_route_all_nodes_worst_ms": all_max,
            "new_route_samples": f.new_route_all.len(),
            "attach_cli_ms": f.attach_cli.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>(),
            "node_down_withdrawn_s": f.node_down_s,
            "agent_rss_kib_max": rss_max,
            "agents_rss_kib_total": rss_total,
            "agents": f.rss_kib.len(),
            "agents_cpu_s_total": cpu,
            "agent_cpu_s_max": f.cpu_s.iter().copied().fold(0.0, f64::max),
            "bgp_messages_per_node": mean(&msgs),
            "bgp_updates_received_per_node": mean(&f.updates_rx),
            "route_event_overflows": f.overflowed,
            "host_changes": f.host_changes,
        }));
    }
    sec.sizes = json!({ "cases": cases.iter().map(|c| json!({"nodes": c.nodes, "mode": mode_key(c.mode), "reflectors": reflector_key(c.mode), "containers": c.containers, "samples": c.samples, "bfd": c.bfd, "fabric": c.fabric.name()})).collect::<Vec<_>>() });
    sec.figures = Value::Array(figures);
    Ok(sec)
}
