//! One ingest run: one feeder, one DUT, one mode, in a fresh pair of
//! namespaces (feeder ↔ DUT over a veth), measured the same way whichever
//! the DUT and the feeder are (see [`crate::ingest`] for the method).
//!
//! IPv6 runs carry IPv6 /48s over the same IPv4 session (MP-BGP, both
//! families negotiated on both DUTs), next hop the feeder's IPv6 address on
//! the link (no DAD); the DUTs' kernel routes and the monitor are IPv6.
//!
//! Data flow: namespaces → packet capture on the feeder's veth
//! ([`crate::capture`]) → feeder (BIRD with a disabled static protocol, or
//! the pre-built writer) on the feeder CPUs → kernel monitor (end-to-end
//! only) → DUT spawned on the DUT CPUs ([`crate::pin`]) → session
//! Established → baselines → load started (`enable` the static protocol, or
//! `go`) → first UPDATE on the wire = t0 → the end event: the kernel
//! monitor (end-to-end; the DUT is not asked anything) or the DUT's RIB
//! count polled every 10 ms, every 1 ms once it is due (control plane);
//! the BIRD feeder poked every 10 ms → the feeder's last UPDATE from the
//! capture → figures. CPU seconds from the processes' CPU clocks (ns).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tortie_lab::bird::{Bird, BirdConfig, BirdNeighbor};
use tortie_lab::netns::{Netns, linked_pair};
use tortie_lab::tortie::{TortieConfig, TortieNode, TortiePeer};

use crate::bins::{BirdCtl, agent_routes_received};
use crate::capture::{Wire, WireStats};
use crate::feeder::{self, FeedEvent, Shape, Workload};
use crate::nl::{self, Family};
use crate::pin::{self, CpuSet};
use crate::report::{CpuTimes, ThreadLoad, proc_kb, process_cpu, thread_cpu, thread_load};

pub const FEEDER_ASN: u32 = 65001;
pub const DUT_ASN: u32 = 64512;
pub const FEEDER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const DUT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The two ends' IPv6 addresses on the link (a /64), for IPv6 runs: the
/// feeder's is the next hop of every IPv6 route.
pub const FEEDER_IP6: Ipv6Addr = Ipv6Addr::new(0xfd12, 0x18, 0, 0, 0, 0, 0, 1);
pub const DUT_IP6: Ipv6Addr = Ipv6Addr::new(0xfd12, 0x18, 0, 0, 0, 0, 0, 2);
/// rtm_protocol of BIRD's kernel routes (RTPROT_BIRD).
pub(crate) const PROTO_BIRD: u8 = 12;
pub(crate) const PROTO_TORTIE: u8 = 149;
/// Name of the live feeder's static protocol and of the DUT's BGP protocol
/// towards the feeder (BIRD DUT).
pub(crate) const STATIC: &str = "originated";
pub(crate) const FEEDER_PROTO: &str = "feeder";
const DUT_PROTO: &str = "dut";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dut {
    Bird,
    Tortie,
}

impl Dut {
    pub fn name(self) -> &'static str {
        match self {
            Dut::Bird => "BIRD",
            Dut::Tortie => "tortie",
        }
    }
}

/// Who sends the routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// BIRD 2 with the routes in a static protocol, enabled once the session
    /// is up: a real peer's process, competing for CPU as one would.
    Live,
    /// The bench's pre-built UPDATE bytes written in 256 KiB chunks: a burst
    /// that costs the feeder almost nothing.
    Burst,
}

impl Feed {
    pub fn name(self) -> &'static str {
        match self {
            Feed::Live => "live (BIRD static)",
            Feed::Burst => "burst (pre-built)",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Feed::Live => "live",
            Feed::Burst => "burst",
        }
    }
}

/// Kernel install on (end-to-end) or off on both DUTs (control plane).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    EndToEnd,
    ControlPlane,
}

impl Mode {
    pub fn key(self) -> &'static str {
        match self {
            Mode::EndToEnd => "end_to_end",
            Mode::ControlPlane => "control_plane",
        }
    }
}

/// How long a run idles where the method waits for a steady state.
#[derive(Clone, Copy, Debug)]
pub struct Waits {
    /// After Established, before the baselines.
    pub settle: Duration,
    /// After the load, before the steady-state RSS.
    pub steady: Duration,
    /// After every route left the kernel, before the RSS kept.
    pub withdrawn: Duration,
}

impl Waits {
    /// The method's waits (lab/bench/README.md).
    pub const FULL: Waits = Waits {
        settle: Duration::from_millis(300),
        steady: Duration::from_secs(1),
        withdrawn: Duration::from_secs(2),
    };
    /// The CI smoke's: it checks that every path runs, not the figures.
    pub const SMOKE: Waits = Waits {
        settle: Duration::from_millis(300),
        steady: Duration::from_millis(200),
        withdrawn: Duration::from_millis(300),
    };
}

/// What one run needs besides its DUT, feeder and mode.
pub struct Inputs {
    /// The workload (its `family` decides the run's family).
    pub work: Arc<Workload>,
    /// The live feeder's static routes (one `route … blackhole …;` a line).
    pub static_routes: std::path::PathBuf,
    pub dut_cpus: CpuSet,
    pub waits: Waits,
}

/// The control plane's end event: the DUT's RIB count is polled every
/// `POLL` (each poll is work for the DUT: its cost is measured); between
/// polls the bench samples the DUT's CPU clock every `SAMPLE` (no work for
/// the DUT), which places the end inside the last interval ([`refine`]).
const POLL: Duration = Duration::from_millis(10);
const SAMPLE: Duration = Duration::from_micros(500);
/// How often the live BIRD feeder's control socket is poked during the
/// load (BIRD 2.0.12's end-of-export stall, BENCH-NOTES).
pub(crate) const POKE: Duration = Duration::from_millis(10);
/// Polls timed back to back once the DUT is idle after the load, for one
/// poll's DUT CPU cost.
const POLL_COST_SAMPLES: u32 = 50;
/// The withdrawal after an end-to-end run fails when no route left the
/// kernel for this long …
const WITHDRAW_STALL: Duration = Duration::from_secs(30);
/// … or when the whole wait passed this plus `WITHDRAW_US_PER_ROUTE` µs
/// per route (1M: 260 s).
const WITHDRAW_BASE: Duration = Duration::from_secs(60);
const WITHDRAW_US_PER_ROUTE: u64 = 200;

/// One DUT's figures for one run.
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// First UPDATE on the wire → all N in the DUT's RIB (control plane;
    /// end-to-end runs do not ask the DUT, unless `TORTIE_BENCH_TRACE`).
    pub rib: Option<Duration>,
    /// The control plane's end lies between the send of the last poll that
    /// saw fewer than N and the answer that saw N: this window's width.
    pub end_window: Option<Duration>,
    /// t0 → the answer that saw N (control plane): `rib` before [`refine`].
    pub rib_polled: Option<Duration>,
    /// DUT polls during the load (control plane).
    pub polls: u32,
    /// One poll's DUT CPU time, measured on the idle DUT after the load
    /// (control plane): `polls` × this is what the polling cost the DUT.
    pub poll_cpu: Option<Duration>,
    /// t0 → the feeder's last segment with UPDATE content left (the
    /// capture): the feeder-bound floor of the run.
    pub feeder_done: Option<Duration>,
    /// What else the capture saw: the feeder's data segments, the DUT's
    /// zero-window advertisements, packets the capture dropped.
    pub wire: WireStats,
    /// First UPDATE → all N in the DUT's kernel table (end-to-end only).
    pub kernel: Option<Duration>,
    /// The figure of the run's mode (kernel end-to-end, RIB otherwise).
    pub time: Duration,
    pub rss_before: u64,
    pub hwm: u64,
    /// VmRSS [`Waits::steady`] after the load.
    pub rss_after: u64,
    /// VmRSS [`Waits::withdrawn`] after every route was withdrawn
    /// (end-to-end runs).
    pub rss_withdrawn: Option<u64>,
    /// DUT CPU seconds (all threads, user + system) during the load.
    pub cpu: f64,
    /// The feeder's CPU seconds during the load (BIRD process, or the
    /// pre-built writer's thread), also from its CPU clock.
    pub feeder_cpu: f64,
    /// The DUT's threads during the load, by name (those alive at the
    /// end): CPU and context switches, where `cpu` has the process total.
    pub threads: Vec<ThreadLoad>,
    /// The DUT's CPUs during the load, by kind ([`CpuTimes`]): beside
    /// `cpu`, what else ran there, idled or was stolen.
    pub dut_cpu_times: Option<CpuTimes>,
    pub dut_cpus: String,
    pub feeder_cpus: String,
    pub monitor_fell_back: bool,
}

impl Run {
    /// Peak RSS growth per route: (VmHWM − RSS before the load) / N.
    pub fn bytes_per_route(&self, n: u32) -> f64 {
        self.hwm.saturating_sub(self.rss_before) as f64 / f64::from(n.max(1))
    }
}

/// The feeder's next hop for `family`: its address of that family on the link.
pub fn feeder_next_hop(family: Family) -> IpAddr {
    match family {
        Family::V4 => FEEDER_IP.into(),
        Family::V6 => FEEDER_IP6.into(),
    }
}

/// The live feeder's static routes for a workload: `shape` decides whether
/// every route carries its own AS_PATH (BIRD prepends its ASN on export:
/// `65001 4200000000+i`, as the pre-built unique workload).
pub fn write_static_routes(path: &Path, shape: Shape, family: Family, n: u32) -> Result<()> {
    use std::io::Write;
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    for i in 0..n {
        let p = feeder::nth_prefix(family, i);
        match shape {
            Shape::Packed => writeln!(w, "route {p} blackhole;")?,
            Shape::Unique => writeln!(
                w,
                "route {p} blackhole {{ bgp_path.prepend({}); }};",
                4_200_000_000u32 + i
            )?,
        }
    }
    w.flush()?;
    Ok(())
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
            Control::Bird(_, ctl) => ctl.imported(DUT_PROTO),
            Control::Tortie(t) => agent_routes_received(&t.socket),
        }
    }
}

fn start_dut(dut: Dut, mode: Mode, family: Family, ns: &Netns, dir: &Path) -> Result<Control> {
    let v6 = family == Family::V6;
    match dut {
        Dut::Bird => {
            let mut cfg = BirdConfig::new(DUT_IP, DUT_ASN);
            cfg.kernel_export = mode == Mode::EndToEnd;
            let mut nb = BirdNeighbor::new(DUT_PROTO, FEEDER_IP.into(), FEEDER_ASN);
            // IPv6 runs: an ipv6 channel beside the ipv4 one.
            nb.ipv6_next_hop = v6.then_some(DUT_IP6);
            cfg.neighbors.push(nb);
            let bird = Bird::start(ns, dir, &cfg)?;
            let ctl = BirdCtl::connect(&bird.socket)?;
            Ok(Control::Bird(bird, ctl))
        }
        Dut::Tortie => {
            let address = if v6 {
                format!("{DUT_IP}/24,{DUT_IP6}/64")
            } else {
                format!("{DUT_IP}/24")
            };
            let mut cfg = TortieConfig::new("dut", &address, DUT_ASN, "172.31.0.0/26", dir);
            cfg.hold_time = 90;
            // The feeder's routes go when its session does (withdrawal row).
            cfg.graceful_restart = false;
            cfg.metrics_listen = String::new();
            // Explicit, so the DUT and the floors' raw writer agree.
            cfg.dataplane_extra = format!("nexthop_objects = {}\n", crate::kernel_nh::on());
            let mut peer = TortiePeer::new(FEEDER_IP.into(), FEEDER_ASN);
            if v6 {
                // Both families, as the BIRD DUT's two channels.
                peer.families = vec!["ipv4".into(), "ipv6".into()];
            }
            cfg.peers.push(peer);
            let args: &[&str] = match mode {
                Mode::EndToEnd => &[],
                Mode::ControlPlane => &["--no-kernel"],
            };
            Ok(Control::Tortie(TortieNode::start_with_args(
                ns, dir, &cfg, args,
            )?))
        }
    }
}

pub(crate) enum Feeder {
    Burst(feeder::Feeder),
    Live(Bird, BirdCtl),
}

/// The burst feeder in namespace `f`, listening.
pub(crate) fn start_burst(f: &Netns, work: Arc<Workload>) -> Result<Feeder> {
    let fd = feeder::start(
        f.name(),
        SocketAddr::new(FEEDER_IP.into(), 179),
        FEEDER_ASN,
        FEEDER_IP,
        work,
    )?;
    listening(&fd.events, "feeder")?;
    Ok(Feeder::Burst(fd))
}

/// Waits for a feeder thread's [`FeedEvent::Listening`].
pub(crate) fn listening(events: &mpsc::Receiver<FeedEvent>, who: &str) -> Result<()> {
    match events.recv_timeout(Duration::from_secs(10)) {
        Ok(FeedEvent::Listening) => Ok(()),
        Ok(FeedEvent::Failed(e)) => bail!("{who}: {e}"),
        other => bail!("{who} did not start listening: {other:?}"),
    }
}

pub(crate) fn start_live(ns: &Netns, dir: &Path, routes: &Path, family: Family) -> Result<Feeder> {
    // IPv4 runs: the ipv4 channel alone, as before; IPv6 runs: both
    // channels, the routes on the ipv6 one with our link address as next
    // hop (IPv6 over an IPv4 session needs it spelt out).
    let (static_family, channels) = match family {
        Family::V4 => (
            "ipv4",
            "ipv4 { import none; export where source = RTS_STATIC; };".to_string(),
        ),
        Family::V6 => (
            "ipv6",
            format!(
                "ipv4 {{ import none; export none; }};\n  \
                 ipv6 {{ import none; export where source = RTS_STATIC; next hop address {FEEDER_IP6}; }};"
            ),
        ),
    };
    let conf = format!(
        "router id {FEEDER_IP};\nlog stderr all;\nprotocol device {{ scan time 10; }}\n\
         protocol static {STATIC} {{\n  {static_family};\n  disabled;\ninclude \"{}\";\n}}\n\
         protocol bgp {FEEDER_PROTO} {{\n  local {FEEDER_IP} as {FEEDER_ASN};\n  neighbor {DUT_IP} as {DUT_ASN};\n  \
         hold time 240;\n  connect delay time 1;\n  connect retry time 2;\n  error wait time 1, 5;\n  \
         {channels}\n}}\n",
        routes.display()
    );
    let path = dir.join("feeder-bird.conf");
    std::fs::write(&path, conf).with_context(|| format!("writing {}", path.display()))?;
    let fdir = dir.join("feeder");
    std::fs::create_dir_all(&fdir)?;
    let bird = Bird::start_with_file(ns, &fdir, &path)?;
    let ctl = BirdCtl::connect(&bird.socket)?;
    Ok(Feeder::Live(bird, ctl))
}

/// A kernel monitor thread; its answer (when all N were in the kernel,
/// whether it fell back to dumps) comes on `done` as it ends.
pub(crate) struct Monitor {
    done: mpsc::Receiver<Result<(Instant, bool)>>,
}

impl Monitor {
    /// Its answer, waiting up to `timeout` (`None`: not done yet).
    pub(crate) fn wait(&self, timeout: Duration) -> Result<Option<(Instant, bool)>> {
        match self.done.recv_timeout(timeout) {
            Ok(r) => r.map(Some),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("kernel monitor panicked"),
        }
    }
}

/// The kernel monitor of a run ([`nl::wait_for_routes`]) in namespace `d`,
/// subscribed when this returns: it ends when `n` benchmark prefixes of
/// `family` with protocol `proto` are in the kernel.
pub(crate) fn start_monitor(
    d: &Netns,
    family: Family,
    proto: u8,
    n: u64,
    budget: Duration,
) -> Result<Monitor> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let dname = d.name().to_string();
    let len = feeder::prefix_len(family);
    std::thread::spawn(move || {
        let r = nl::in_netns(&dname, move || {
            nl::wait_for_routes(family, proto, Some(len), n, Instant::now() + budget, || {
                let _ = ready_tx.send(());
            })
        });
        let _ = done_tx.send(r);
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .context("kernel monitor did not start")?;
    Ok(Monitor { done })
}

/// Runs `dut` against `feed` in `mode`; the calling thread must already be
/// on the feeder CPUs (what it spawns inherits them).
pub fn one_run(dut: Dut, feed: Feed, mode: Mode, inp: &Inputs) -> Result<Run> {
    let n = u64::from(inp.work.prefixes);
    let family = inp.work.family;
    let len = feeder::prefix_len(family);
    let (f, d) = linked_pair("tbi", &format!("{FEEDER_IP}/24"), &format!("{DUT_IP}/24"))?;
    if family == Family::V6 {
        // Usable at once (no DAD): the IPv6 next hop must resolve.
        for (ns, a) in [(&f, FEEDER_IP6), (&d, DUT_IP6)] {
            ns.add_address_nodad("eth1", &format!("{a}/64"))?;
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("tortie-bench-ingest")
        .tempdir()
        .context("creating a work dir")?;
    let wire = Wire::start(f.name(), "eth1")?;
    let mut feeder = match feed {
        Feed::Burst => start_burst(&f, inp.work.clone())?,
        Feed::Live => start_live(&f, dir.path(), &inp.static_routes, family)?,
    };
    let proto = match dut {
        Dut::Bird => PROTO_BIRD,
        Dut::Tortie => PROTO_TORTIE,
    };
    let budget = Duration::from_secs(60) + Duration::from_micros(n * 100);
    // The kernel monitor subscribes before the DUT starts.
    let monitor = if mode == Mode::EndToEnd {
        Some(start_monitor(&d, family, proto, n, budget)?)
    } else {
        None
    };
    let dut_dir = dir.path().join("dut");
    std::fs::create_dir_all(&dut_dir)?;
    let mut ctl = pin::spawn_on(&inp.dut_cpus, || start_dut(dut, mode, family, &d, &dut_dir))?;
    let pid = ctl.pid();
    let established = Instant::now() + Duration::from_secs(60);
    match &mut feeder {
        Feeder::Burst(fd) => match fd.events.recv_timeout(Duration::from_secs(60)) {
            Ok(FeedEvent::Established) => {}
            Ok(FeedEvent::Failed(e)) => bail!("feeder: {e}"),
            other => bail!(
                "{} did not establish with the feeder: {other:?}",
                dut.name()
            ),
        },
        Feeder::Live(_, fctl) => loop {
            let st = fctl.bgp_state(FEEDER_PROTO)?;
            if st == "Established" {
                break;
            }
            if Instant::now() > established {
                bail!(
                    "{} did not establish with the BIRD feeder ({st})",
                    dut.name()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        },
    }
    // Let the DUT settle after Established (its own advertisements, timers).
    std::thread::sleep(inp.waits.settle);
    let feeder_pid = match &mut feeder {
        Feeder::Live(b, _) => Some(b.daemon().pid()),
        Feeder::Burst(_) => None,
    };
    let rss_before = proc_kb(pid, "VmRSS").unwrap_or(0);
    let cpu_before = process_cpu(pid).unwrap_or_default();
    let threads_before = thread_cpu(pid).unwrap_or_default();
    let fcpu_before = feeder_pid.and_then(process_cpu).unwrap_or_default();
    match &mut feeder {
        Feeder::Burst(fd) => fd.go(),
        Feeder::Live(_, fctl) => {
            fctl.cmd(&format!("enable {STATIC}"))?;
        }
    }
    let t0 = wire.first_update(budget)?;
    // The DUT's CPUs from t0 on (the feeder's start before it is not the
    // load's): ms after t0, at 10 ms resolution.
    let times_before = CpuTimes::read(&inp.dut_cpus.0);
    let deadline = t0 + budget;
    let trace = std::env::var_os("TORTIE_BENCH_TRACE").is_some();
    let mut burst_cpu = None;
    let mut poke_at = Instant::now();
    let mut polls = 0u32;
    let mut poll_at = Instant::now();
    // Send time of the last poll that saw fewer than N, and the DUT's CPU
    // clock sampled since.
    let mut below_sent = t0;
    let mut samples: Vec<(Instant, Duration)> = Vec::with_capacity(64);
    let mut fell_back = false;
    let end = loop {
        match &mut feeder {
            Feeder::Burst(fd) => {
                while let Ok(ev) = fd.events.try_recv() {
                    match ev {
                        FeedEvent::Written(c) => burst_cpu = Some(c),
                        FeedEvent::Failed(e) => bail!("feeder: {e}"),
                        _ => {}
                    }
                }
            }
            Feeder::Live(_, fctl) => {
                if Instant::now() >= poke_at {
                    fctl.cmd("show status")?;
                    poke_at = Instant::now() + POKE;
                }
            }
        }
        if let Some(m) = &monitor {
            // End-to-end: the kernel monitor's event is the end; the DUT
            // is not asked anything.
            if trace {
                let c = ctl.rib_count()?;
                eprintln!("  {} +{:?}: {c} in the RIB", dut.name(), t0.elapsed());
            }
            if let Some((at, fb)) = m.wait(POKE)? {
                fell_back = fb;
                break at;
            }
        } else {
            let now = Instant::now();
            let cpu_now = process_cpu(pid).unwrap_or_default();
            if now >= poll_at {
                let c = ctl.rib_count()?;
                let got = Instant::now();
                let cpu_got = process_cpu(pid).unwrap_or_default();
                polls += 1;
                if trace {
                    eprintln!("  {} +{:?}: {c} in the RIB", dut.name(), got - t0);
                }
                if c >= n {
                    samples.push((got, cpu_got));
                    break got;
                }
                // Only the last interval matters: the end is after this
                // poll was sent.
                below_sent = now;
                samples.clear();
                samples.push((now, cpu_now));
                poll_at = now + POLL;
            } else {
                samples.push((now, cpu_now));
            }
            std::thread::sleep(SAMPLE);
        }
        if Instant::now() > deadline {
            let c = ctl.rib_count()?;
            bail!(
                "{}: {c} of {n} prefixes in the RIB, not all in the {} after {budget:?}",
                dut.name(),
                if mode == Mode::EndToEnd {
                    "kernel"
                } else {
                    "RIB"
                }
            );
        }
    };
    let cpu = process_cpu(pid)
        .unwrap_or_default()
        .saturating_sub(cpu_before)
        .as_secs_f64();
    let threads = thread_load(&threads_before, &thread_cpu(pid).unwrap_or_default());
    let dut_cpu_times = CpuTimes::read(&inp.dut_cpus.0)
        .zip(times_before)
        .map(|(now, before)| now.since(&before));
    let hwm = proc_kb(pid, "VmHWM").unwrap_or(0);
    let feeder_cpu = match (&mut feeder, feeder_pid) {
        (Feeder::Live(..), Some(fp)) => process_cpu(fp)
            .unwrap_or_default()
            .saturating_sub(fcpu_before)
            .as_secs_f64(),
        (Feeder::Burst(fd), _) => {
            if burst_cpu.is_none()
                && let Ok(FeedEvent::Written(c)) = fd.events.recv_timeout(Duration::from_secs(5))
            {
                burst_cpu = Some(c);
            }
            burst_cpu.map(|c| c.as_secs_f64()).unwrap_or(f64::NAN)
        }
        _ => f64::NAN,
    };
    let wire = wire.finish()?;
    if mode == Mode::ControlPlane {
        // Kernel install really was off: none of the N in the kernel.
        let dn = d.name().to_string();
        let installed = nl::in_netns(&dn, move || nl::count_routes(family, proto, Some(len)))?;
        if installed != 0 {
            bail!(
                "{} in control-plane mode installed {installed} routes into the kernel",
                dut.name()
            );
        }
    }
    // Steady state: queues drained, the RIB (and the kernel view) remain.
    std::thread::sleep(inp.waits.steady);
    let rss_after = proc_kb(pid, "VmRSS").unwrap_or(0);
    // What one poll costs the now idle DUT (control plane, where it was
    // polled during the load).
    let poll_cpu = if mode == Mode::ControlPlane {
        let c0 = process_cpu(pid).unwrap_or_default();
        for _ in 0..POLL_COST_SAMPLES {
            ctl.rib_count()?;
        }
        Some(process_cpu(pid).unwrap_or_default().saturating_sub(c0) / POLL_COST_SAMPLES)
    } else {
        None
    };
    let dut_cpus = pin::allowed_list(pid);
    let feeder_cpus = feeder_pid
        .map(pin::allowed_list)
        .unwrap_or_else(|| pin::current().map(|c| c.list()).unwrap_or_default());
    // Memory after the peer went away (issue 10), end-to-end runs: the
    // session closes, every route leaves the kernel, the DUT idles
    // `waits.withdrawn` (2 s).
    let rss_withdrawn = if mode == Mode::EndToEnd {
        match &mut feeder {
            Feeder::Live(_, fctl) => {
                fctl.cmd(&format!("disable {FEEDER_PROTO}"))?;
            }
            Feeder::Burst(_) => {}
        }
        drop(feeder);
        let dn = d.name().to_string();
        nl::in_netns(&dn, move || {
            // Either DUT may take long to empty a big IPv6 table (BIRD's
            // kernel protocol deleted 1M unique /48s slower than 80 s in
            // session 18): wait while routes keep leaving, fail only when
            // none left for WITHDRAW_STALL or the whole wait passed
            // WITHDRAW_BASE + N × WITHDRAW_US_PER_ROUTE.
            let start = Instant::now();
            let end = start + WITHDRAW_BASE + Duration::from_micros(n.saturating_mul(WITHDRAW_US_PER_ROUTE));
            let (mut last, mut moved) = (u64::MAX, start);
            loop {
                let left = nl::count_routes(family, proto, Some(len))?;
                if left == 0 {
                    return Ok(());
                }
                let now = Instant::now();
                if left < last {
                    (last, moved) = (left, now);
                }
                if now > end || now.duration_since(moved) > WITHDRAW_STALL {
                    bail!(
                        "{left} routes still in the kernel {:.0} s after the feeder left (none left in the last {:.0} s)",
                        now.duration_since(start).as_secs_f64(),
                        now.duration_since(moved).as_secs_f64()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .with_context(|| format!("{}: withdrawal", dut.name()))?;
        std::thread::sleep(inp.waits.withdrawn);
        Some(proc_kb(pid, "VmRSS").unwrap_or(0))
    } else {
        drop(feeder);
        None
    };
    drop(ctl);
    drop(d);
    drop(f);
    let (rib, kernel, time) = match mode {
        Mode::EndToEnd => {
            let k = end.saturating_duration_since(t0);
            (None, Some(k), k)
        }
        Mode::ControlPlane => {
            let at = refine(&samples, poll_cpu.unwrap_or_default(), below_sent, end);
            let r = at.saturating_duration_since(t0);
            (Some(r), None, r)
        }
    };
    Ok(Run {
        rib,
        rib_polled: rib.map(|_| end.saturating_duration_since(t0)),
        kernel,
        time,
        end_window: rib.map(|_| end.saturating_duration_since(below_sent)),
        polls,
        poll_cpu,
        feeder_done: wire.last_update.map(|l| l.saturating_duration_since(t0)),
        wire,
        rss_before,
        hwm,
        rss_after,
        rss_withdrawn,
        cpu,
        feeder_cpu,
        threads,
        dut_cpu_times,
        dut_cpus,
        feeder_cpus,
        monitor_fell_back: fell_back,
    })
}

/// Where in the last poll interval the DUT finished (control plane): the
/// moment its CPU clock reached what it read when it answered N, less one
/// poll's cost — the work it did after the last route went into its RIB is
/// that answer. `samples` = (time, DUT CPU) from the send of the last poll
/// that saw fewer than N (`lo`) to the answer that saw N (`hi`), taken
/// every [`SAMPLE`]; linear between two samples; within `[lo, hi]`. Its
/// precision is the sampling period and how often the kernel brings a
/// running thread's CPU time up to date (every context switch and tick).
fn refine(
    samples: &[(Instant, Duration)],
    poll_cpu: Duration,
    lo: Instant,
    hi: Instant,
) -> Instant {
    let Some(&(_, last)) = samples.last() else {
        return hi;
    };
    let target = last.saturating_sub(poll_cpu);
    let Some(i) = samples.iter().position(|&(_, c)| c >= target) else {
        return hi;
    };
    let at = match i.checked_sub(1).map(|p| samples[p]) {
        None => samples[i].0,
        Some((t0, c0)) => {
            let (t1, c1) = samples[i];
            let f = (target - c0).as_secs_f64() / (c1 - c0).as_secs_f64().max(1e-12);
            t0 + (t1 - t0).mul_f64(f.clamp(0.0, 1.0))
        }
    };
    at.clamp(lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_is_where_the_dut_cpu_reached_its_answer_less_one_poll() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let us = Duration::from_micros;
        // Busy 2 ms, idle 1 ms, then 0.2 ms answering the poll.
        let s = [
            (t, ms(0)),
            (t + ms(1), ms(1)),
            (t + ms(2), ms(2)),
            (t + ms(3), ms(2)),
            (t + ms(4), us(2200)),
        ];
        assert_eq!(refine(&s, us(200), t, t + ms(4)), t + ms(2));
        // Half way between two samples.
        assert_eq!(refine(&s, us(700), t, t + ms(4)), t + us(1500));
        // Never outside the interval, and the answer itself without samples.
        assert_eq!(refine(&s, ms(5), t + ms(1), t + ms(4)), t + ms(1));
        assert_eq!(refine(&[], us(200), t, t + ms(4)), t + ms(4));
    }
}
