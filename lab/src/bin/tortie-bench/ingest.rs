//! Benchmark 1, BGP ingest: one feeder peer pushes N IPv4 prefixes to BIRD 2
//! and to the tortie agent, one after the other in the same run, each in a
//! fresh pair of namespaces (feeder ↔ DUT over a veth), both exporting to
//! the kernel.
//!
//! Measured from the first UPDATE byte: time until the DUT holds all N in
//! its RIB (BIRD: `show route count` on its control socket; tortie:
//! `routes_received` from `GET /v1/status`, both polled every 10 ms — the
//! polling also works around BIRD's end-of-load stall, BENCH-NOTES), time
//! until all N are in the DUT namespace's kernel table (a route-event
//! monitor), the DUT's peak RSS (VmHWM) and CPU time.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tortie_lab::bird::{Bird, BirdConfig, BirdNeighbor};
use tortie_lab::netns::{Netns, linked_pair};
use tortie_lab::tortie::{TortieConfig, TortieNode, TortiePeer};

use crate::bins::{BirdCtl, agent_routes_received};
use crate::feeder::{self, FeedEvent, Shape, Workload};
use crate::nl;
use crate::report::{Section, mib, proc_kb, ratio, secs};

const FEEDER_ASN: u32 = 65001;
const DUT_ASN: u32 = 64512;
const FEEDER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const DUT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// rtm_protocol of BIRD's kernel routes (RTPROT_BIRD).
const PROTO_BIRD: u8 = 12;
const PROTO_TORTIE: u8 = 149;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dut {
    Bird,
    Tortie,
}

impl Dut {
    fn name(self) -> &'static str {
        match self {
            Dut::Bird => "BIRD",
            Dut::Tortie => "tortie",
        }
    }
}

/// One DUT's figures for one (shape, size).
#[derive(Clone, Debug, Default)]
struct Run {
    rib: Duration,
    kernel: Duration,
    written: Duration,
    rss_before: u64,
    hwm: u64,
    /// VmRSS 1 s after the last route reached the kernel.
    rss_after: u64,
    cpu: f64,
    monitor_fell_back: bool,
}

enum Control {
    Bird(Bird, BirdCtl),
    Tortie(TortieNode),
}

impl Control {
    fn pid(&mut self) -> i32 {
        match self {
            Control::Bird(b, _) => b.daemon().pid(),
            Control::Tortie(t) => t.daemon().map(|d| d.pid()).unwrap_or(0),
        }
    }

    fn rib_count(&mut self) -> Result<u64> {
        match self {
            Control::Bird(_, ctl) => ctl.imported("feeder"),
            Control::Tortie(t) => agent_routes_received(&t.socket),
        }
    }
}

fn start_dut(dut: Dut, ns: &Netns, dir: &Path) -> Result<Control> {
    match dut {
        Dut::Bird => {
            let mut cfg = BirdConfig::new(DUT_IP, DUT_ASN);
            cfg.kernel_export = true;
            cfg.neighbors
                .push(BirdNeighbor::new("feeder", FEEDER_IP.into(), FEEDER_ASN));
            let bird = Bird::start(ns, dir, &cfg)?;
            let ctl = BirdCtl::connect(&bird.socket)?;
            Ok(Control::Bird(bird, ctl))
        }
        Dut::Tortie => {
            let mut cfg = TortieConfig::new(
                "dut",
                &format!("{DUT_IP}/24"),
                DUT_ASN,
                "172.31.0.0/26",
                dir,
            );
            cfg.hold_time = 90;
            cfg.metrics_listen = String::new();
            cfg.peers
                .push(TortiePeer::new(FEEDER_IP.into(), FEEDER_ASN));
            Ok(Control::Tortie(TortieNode::start(ns, dir, &cfg)?))
        }
    }
}

fn one_run(dut: Dut, work: &Arc<Workload>) -> Result<Run> {
    let n = u64::from(work.prefixes);
    let (f, d) = linked_pair("tbi", &format!("{FEEDER_IP}/24"), &format!("{DUT_IP}/24"))?;
    let dir = tempfile::Builder::new()
        .prefix("tortie-bench-ingest")
        .tempdir()
        .context("creating a work dir")?;
    let feeder = feeder::start(
        f.name(),
        SocketAddr::new(FEEDER_IP.into(), 179),
        FEEDER_ASN,
        FEEDER_IP,
        work.clone(),
    )?;
    match feeder.events.recv_timeout(Duration::from_secs(10)) {
        Ok(FeedEvent::Listening) => {}
        Ok(FeedEvent::Failed(e)) => bail!("feeder: {e}"),
        other => bail!("feeder did not start listening: {other:?}"),
    }
    let proto = match dut {
        Dut::Bird => PROTO_BIRD,
        Dut::Tortie => PROTO_TORTIE,
    };
    let budget = Duration::from_secs(60) + Duration::from_micros(n * 100);
    // The kernel monitor subscribes before the DUT starts.
    let (ready_tx, ready_rx) = mpsc::channel();
    let dname = d.name().to_string();
    let monitor = std::thread::spawn(move || {
        nl::in_netns(&dname, move || {
            nl::wait_for_routes(
                proto,
                Some(feeder::PREFIX_LEN),
                n,
                Instant::now() + budget,
                || {
                    let _ = ready_tx.send(());
                },
            )
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .context("kernel monitor did not start")?;
    let mut ctl = start_dut(dut, &d, dir.path())?;
    let pid = ctl.pid();
    match feeder.events.recv_timeout(Duration::from_secs(60)) {
        Ok(FeedEvent::Established) => {}
        Ok(FeedEvent::Failed(e)) => bail!("feeder: {e}"),
        other => bail!(
            "{} did not establish a session with the feeder: {other:?}",
            dut.name()
        ),
    }
    // Let the DUT settle after Established (its own advertisements, timers).
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = proc_kb(pid, "VmRSS").unwrap_or(0);
    let cpu_before = crate::report::cpu_seconds(pid).unwrap_or(0.0);
    feeder.go();
    let t0 = match feeder.events.recv_timeout(Duration::from_secs(10)) {
        Ok(FeedEvent::Started(t)) => t,
        Ok(FeedEvent::Failed(e)) => bail!("feeder: {e}"),
        other => bail!("feeder did not start sending: {other:?}"),
    };
    let deadline = t0 + budget;
    let trace = std::env::var_os("TORTIE_BENCH_TRACE").is_some();
    let mut written = None;
    let rib_at = loop {
        if let Ok(ev) = feeder.events.try_recv() {
            match ev {
                FeedEvent::Written(t) => written = Some(t),
                FeedEvent::Failed(e) => bail!("feeder: {e}"),
                _ => {}
            }
        }
        let c = ctl.rib_count()?;
        if trace {
            eprintln!(
                "  {} +{:?}: {c} in the RIB, CPU {:.2} s",
                dut.name(),
                t0.elapsed(),
                crate::report::cpu_seconds(pid).unwrap_or(0.0) - cpu_before
            );
        }
        if c >= n {
            break Instant::now();
        }
        if Instant::now() > deadline {
            bail!(
                "{}: only {c} of {n} prefixes in the RIB after {budget:?}",
                dut.name()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (kernel_at, fell_back) = monitor
        .join()
        .map_err(|_| anyhow::anyhow!("kernel monitor panicked"))??;
    if written.is_none()
        && let Ok(FeedEvent::Written(t)) = feeder.events.recv_timeout(Duration::from_secs(5))
    {
        written = Some(t);
    }
    let hwm = proc_kb(pid, "VmHWM").unwrap_or(0);
    let cpu = crate::report::cpu_seconds(pid).unwrap_or(0.0) - cpu_before;
    // Steady state: queues drained, the RIB and the kernel view remain.
    std::thread::sleep(Duration::from_secs(1));
    let rss_after = proc_kb(pid, "VmRSS").unwrap_or(0);
    drop(feeder);
    drop(ctl);
    drop(d);
    drop(f);
    Ok(Run {
        rib: rib_at.saturating_duration_since(t0),
        kernel: kernel_at.saturating_duration_since(t0),
        written: written
            .map(|w| w.saturating_duration_since(t0))
            .unwrap_or_default(),
        rss_before,
        hwm,
        rss_after,
        cpu,
        monitor_fell_back: fell_back,
    })
}

/// Runs every (shape, size) against BIRD then tortie.
/// The run with the median RIB time.
fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by_key(|r| r.rib);
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

/// Runs every (shape, size) against BIRD then tortie, `repeat` times each
/// (alternating), and reports the median run of each.
pub fn run(sizes: &[u32], shapes: &[Shape], repeat: u32) -> Result<Section> {
    let mut sec = Section::new(
        "BGP ingest (feeder → DUT, kernel export on)",
        "One eBGP feeder (tortie's own encoder, pre-built UPDATEs over a veth) sends N /28s to BIRD 2 and then to the tortie agent, each in fresh namespaces. RIB = first UPDATE → all N in the RIB (BIRD: routes imported by the feeder protocol, `show protocols all`, on its control socket; tortie: `routes_received` from GET /v1/status; both polled every 10 ms); kernel = first UPDATE → all N in the DUT's kernel table (netlink route events); RSS = peak (VmHWM) of the DUT process, and VmRSS 1 s after the load; RSS B/route = (VmHWM − RSS before the load) / N, which includes the kernel-sync state and allocator slack. RIB-only = the same bytes decoded and applied to tortie's `Rib` inside the bench process (no IO, no kernel), its live heap counted by a global allocator: the \"bytes per route in the RIB\" figure.",
    );
    sec.header = [
        "shape",
        "N",
        "feeder rate",
        "DUT",
        "RIB",
        "kernel",
        "peak RSS",
        "RSS after",
        "RSS B/route",
        "CPU s",
        "RIB ratio",
        "kernel ratio",
        "RSS ratio",
        "RIB-only (in-process)",
    ]
    .map(String::from)
    .to_vec();
    sec.sizes = json!({
        "prefixes": sizes,
        "shapes": shapes.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "repeat": repeat,
    });
    if repeat > 1 {
        sec.notes.push(format!(
            "each DUT ran {repeat} times, alternating; the run with the median RIB time is shown"
        ));
    }
    let mut figures = Vec::new();
    let mut ratios = Vec::new();
    for &shape in shapes {
        for &n in sizes {
            let work = Arc::new(Workload::build(shape, n, FEEDER_ASN, FEEDER_IP)?);
            let feeder_rate = feeder::self_rate(&work)?;
            let rib_only = crate::rib::ingest(&work, DUT_ASN, FEEDER_ASN, FEEDER_IP)?;
            // BIRD, tortie, BIRD, tortie, …: drift on a shared host hits both.
            let mut birds = Vec::new();
            let mut torties = Vec::new();
            for _ in 0..repeat.max(1) {
                birds.push(one_run(Dut::Bird, &work).context("BIRD run")?);
                torties.push(one_run(Dut::Tortie, &work).context("tortie run")?);
            }
            let bird = median(birds);
            let tortie = median(torties);
            let per_route = |r: &Run| r.hwm.saturating_sub(r.rss_before) as f64 / f64::from(n);
            let rib_r = ratio(tortie.rib.as_secs_f64(), bird.rib.as_secs_f64());
            let kern_r = ratio(tortie.kernel.as_secs_f64(), bird.kernel.as_secs_f64());
            let rss_r = ratio(tortie.hwm as f64, bird.hwm as f64);
            for (dut, r) in [(Dut::Bird, &bird), (Dut::Tortie, &tortie)] {
                let is_t = dut == Dut::Tortie;
                sec.rows.push(vec![
                    shape.name().into(),
                    n.to_string(),
                    format!("{:.2} M/s", feeder_rate / 1e6),
                    dut.name().into(),
                    secs(r.rib),
                    secs(r.kernel),
                    mib(r.hwm),
                    mib(r.rss_after),
                    format!("{:.0}", per_route(r)),
                    format!("{:.2}", r.cpu),
                    if is_t {
                        format!("{rib_r:.2}×")
                    } else {
                        String::new()
                    },
                    if is_t {
                        format!("{kern_r:.2}×")
                    } else {
                        String::new()
                    },
                    if is_t {
                        format!("{rss_r:.2}×")
                    } else {
                        String::new()
                    },
                    if is_t {
                        format!(
                            "{}, {:.0} B/route",
                            secs(rib_only.elapsed),
                            rib_only.bytes_per_route()
                        )
                    } else {
                        String::new()
                    },
                ]);
                figures.push(json!({
                    "shape": shape.name(), "prefixes": n, "dut": dut.name(),
                    "feeder_prefixes_per_s": feeder_rate,
                    "feeder_updates": work.messages, "feeder_bytes": work.bytes.len(), "feeder_build_s": work.build_time.as_secs_f64(),
                    "rib_s": r.rib.as_secs_f64(), "kernel_s": r.kernel.as_secs_f64(),
                    "all_written_s": r.written.as_secs_f64(),
                    "rss_before_bytes": r.rss_before, "peak_rss_bytes": r.hwm, "rss_after_1s_bytes": r.rss_after,
                    "bytes_per_route": per_route(r), "cpu_s": r.cpu,
                    "kernel_monitor_fell_back_to_dumps": r.monitor_fell_back,
                }));
            }
            ratios.push(json!({
                "shape": shape.name(), "prefixes": n,
                "rib_time_tortie_over_bird": rib_r,
                "kernel_time_tortie_over_bird": kern_r,
                "peak_rss_tortie_over_bird": rss_r,
            }));
            figures.push(json!({
                "shape": shape.name(), "prefixes": n, "dut": "tortie RIB in-process",
                "rib_s": rib_only.elapsed.as_secs_f64(), "rib_heap_bytes": rib_only.bytes,
                "bytes_per_route": rib_only.bytes_per_route(),
            }));
            sec.target(
                &format!("RIB time {} {n}", shape.name()),
                "≤ 0.5× BIRD",
                format!("{rib_r:.2}×"),
                rib_r <= 0.5,
            );
            sec.target(
                &format!("RIB memory per route {} {n}", shape.name()),
                "≤ 100 B (live heap of decoder + RIB / N)",
                format!("{:.0} B", rib_only.bytes_per_route()),
                rib_only.bytes_per_route() <= 100.0,
            );
            if feeder_rate
                < 3.0 * f64::from(n)
                    / bird
                        .rib
                        .as_secs_f64()
                        .min(tortie.rib.as_secs_f64())
                        .max(1e-9)
            {
                sec.notes.push(format!(
                    "{} {n}: the feeder's own rate is under 3× the fastest DUT's: it may be a bottleneck",
                    shape.name()
                ));
            }
        }
    }
    sec.figures = Value::Array(figures);
    sec.ratios = Value::Array(ratios);
    Ok(sec)
}
