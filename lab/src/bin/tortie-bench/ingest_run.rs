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
//! `go`) → first UPDATE on the wire = t0 → poll the DUT's RIB count (and
//! poke the BIRD feeder) → kernel monitor → figures.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tortie_lab::bird::{Bird, BirdConfig, BirdNeighbor};
use tortie_lab::netns::{Netns, linked_pair};
use tortie_lab::tortie::{TortieConfig, TortieNode, TortiePeer};
use tortie_routes::IpNetwork;

use crate::bins::{BirdCtl, agent_routes_received};
use crate::capture::FirstUpdate;
use crate::feeder::{self, FeedEvent, Shape, Workload};
use crate::nl::{self, Family};
use crate::pin::{self, CpuSet};
use crate::report::{cpu_seconds, proc_kb};

pub const FEEDER_ASN: u32 = 65001;
pub const DUT_ASN: u32 = 64512;
pub const FEEDER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const DUT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The two ends' IPv6 addresses on the link (a /64), for IPv6 runs: the
/// feeder's is the next hop of every IPv6 route.
pub const FEEDER_IP6: Ipv6Addr = Ipv6Addr::new(0xfd12, 0x18, 0, 0, 0, 0, 0, 1);
pub const DUT_IP6: Ipv6Addr = Ipv6Addr::new(0xfd12, 0x18, 0, 0, 0, 0, 0, 2);
/// rtm_protocol of BIRD's kernel routes (RTPROT_BIRD).
const PROTO_BIRD: u8 = 12;
const PROTO_TORTIE: u8 = 149;
/// Name of the live feeder's static protocol and of the DUT's BGP protocol
/// towards the feeder (BIRD DUT).
const STATIC: &str = "originated";
const FEEDER_PROTO: &str = "feeder";
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

/// One DUT's figures for one run.
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// First UPDATE on the wire → all N in the DUT's RIB.
    pub rib: Duration,
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
    /// pre-built writer's thread).
    pub feeder_cpu: f64,
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

enum Feeder {
    Burst(feeder::Feeder),
    Live(Bird, BirdCtl),
}

fn start_live(ns: &Netns, dir: &Path, routes: &Path, family: Family) -> Result<Feeder> {
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

type Monitor = std::thread::JoinHandle<Result<(Instant, bool)>>;

/// The kernel monitor of a run ([`nl::wait_for_routes`]) in namespace `d`,
/// subscribed when this returns: it ends when `n` benchmark prefixes of
/// `family` with protocol `proto` are in the kernel.
fn start_monitor(
    d: &Netns,
    family: Family,
    proto: u8,
    n: u64,
    budget: Duration,
) -> Result<Monitor> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let dname = d.name().to_string();
    let len = feeder::prefix_len(family);
    let h = std::thread::spawn(move || {
        nl::in_netns(&dname, move || {
            nl::wait_for_routes(family, proto, Some(len), n, Instant::now() + budget, || {
                let _ = ready_tx.send(());
            })
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .context("kernel monitor did not start")?;
    Ok(h)
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
    let capture = FirstUpdate::start(f.name(), "eth1")?;
    let mut feeder = match feed {
        Feed::Burst => {
            let fd = feeder::start(
                f.name(),
                SocketAddr::new(FEEDER_IP.into(), 179),
                FEEDER_ASN,
                FEEDER_IP,
                inp.work.clone(),
            )?;
            match fd.events.recv_timeout(Duration::from_secs(10)) {
                Ok(FeedEvent::Listening) => {}
                Ok(FeedEvent::Failed(e)) => bail!("feeder: {e}"),
                other => bail!("feeder did not start listening: {other:?}"),
            }
            Feeder::Burst(fd)
        }
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
    let cpu_before = cpu_seconds(pid).unwrap_or(0.0);
    let fcpu_before = feeder_pid.and_then(cpu_seconds).unwrap_or(0.0);
    match &mut feeder {
        Feeder::Burst(fd) => fd.go(),
        Feeder::Live(_, fctl) => {
            fctl.cmd(&format!("enable {STATIC}"))?;
        }
    }
    let t0 = capture.wait(budget)?;
    drop(capture);
    let deadline = t0 + budget;
    let trace = std::env::var_os("TORTIE_BENCH_TRACE").is_some();
    let mut burst_cpu = None;
    let rib_at = loop {
        match &mut feeder {
            Feeder::Burst(fd) => {
                if let Ok(ev) = fd.events.try_recv() {
                    match ev {
                        FeedEvent::Written(c) => burst_cpu = Some(c),
                        FeedEvent::Failed(e) => bail!("feeder: {e}"),
                        _ => {}
                    }
                }
            }
            // BIRD 2.0.12 stalls near the end of a large export until its
            // control socket is poked (BENCH-NOTES).
            Feeder::Live(_, fctl) => {
                fctl.cmd("show status")?;
            }
        }
        let c = ctl.rib_count()?;
        if trace {
            eprintln!(
                "  {} +{:?}: {c} in the RIB, CPU {:.2} s",
                dut.name(),
                t0.elapsed(),
                cpu_seconds(pid).unwrap_or(0.0) - cpu_before
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
    let (kernel_at, fell_back) = match monitor {
        Some(h) => {
            let (at, fb) = h
                .join()
                .map_err(|_| anyhow::anyhow!("kernel monitor panicked"))??;
            (Some(at), fb)
        }
        None => (None, false),
    };
    let hwm = proc_kb(pid, "VmHWM").unwrap_or(0);
    let cpu = cpu_seconds(pid).unwrap_or(0.0) - cpu_before;
    let feeder_cpu = match (&mut feeder, feeder_pid) {
        (Feeder::Live(..), Some(fp)) => cpu_seconds(fp).unwrap_or(0.0) - fcpu_before,
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
            let end = Instant::now() + Duration::from_secs(60) + Duration::from_micros(n * 20);
            loop {
                let left = nl::count_routes(family, proto, Some(len))?;
                if left == 0 {
                    return Ok(());
                }
                if Instant::now() > end {
                    bail!("{left} routes still in the kernel after the feeder left");
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
    let rib = rib_at.saturating_duration_since(t0);
    let kernel = kernel_at.map(|k| k.saturating_duration_since(t0));
    Ok(Run {
        rib,
        kernel,
        time: kernel.unwrap_or(rib),
        rss_before,
        hwm,
        rss_after,
        rss_withdrawn,
        cpu,
        feeder_cpu,
        dut_cpus,
        feeder_cpus,
        monitor_fell_back: fell_back,
    })
}

/// rtm_protocol of the kernel floor's routes.
const PROTO_FLOOR: u8 = 150;

/// The order in which the kernel floor writes the workload's prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloorOrder {
    /// Ascending address order, as the feeder sends them.
    Address,
    /// IPv4 addresses sorted by their bit-reversed value: the order the
    /// kernel's LC-trie takes fastest (lab/bench/README.md, session 6 e2e).
    BitReversed,
    /// Runs of sixteen neighbours (a prefix's last four bits) in address
    /// order, the runs in bit-reversed order: the speaker outbox's IPv4
    /// delivery order.
    Runs,
}

impl FloorOrder {
    pub fn name(self) -> &'static str {
        match self {
            FloorOrder::Address => "address order",
            FloorOrder::BitReversed => "bit-reversed order",
            FloorOrder::Runs => "runs of 16, runs bit-reversed",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            FloorOrder::Address => "floor_address",
            FloorOrder::BitReversed => "floor_bit_reversed",
            FloorOrder::Runs => "floor_runs_bit_reversed",
        }
    }

    /// The workload's `n` prefixes of `family` in this order.
    fn prefixes(self, family: Family, n: u32) -> Result<Vec<IpNetwork>> {
        let mut v = (0..n)
            .map(|i| {
                let p = feeder::nth_prefix(family, i);
                IpNetwork::new(p.addr(), p.len()).context("benchmark prefix")
            })
            .collect::<Result<Vec<_>>>()?;
        let bits = |p: &IpNetwork| match p.ip() {
            IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
            IpAddr::V6(a) => u128::from(a),
        };
        match self {
            FloorOrder::Address => {}
            FloorOrder::BitReversed => v.sort_by_key(|p| bits(p).reverse_bits()),
            FloorOrder::Runs => v.sort_by_key(|p| {
                let run = !0xf_u128
                    .checked_shl(128 - u32::from(p.prefix()))
                    .unwrap_or(0);
                ((bits(p) & run).reverse_bits(), bits(p))
            }),
        }
        Ok(v)
    }
}

/// The kernel floor of an end-to-end run: no BGP and no DUT process, the
/// reference pipelined writer ([`nl::install_in_order`], batches of
/// [`crate::kernel::REF_BATCH`], one ack) installs the workload's N
/// prefixes via the feeder's address in a fresh namespace pair, from a
/// thread pinned to the DUT CPUs, with the same kernel monitor attached.
/// `time` = first write → the monitor saw all N; `cpu` = the writer
/// thread's CPU seconds (the kernel's insert and notification work is
/// charged to it, as to a DUT). Whatever a DUT does beyond its kernel
/// writes comes on top of this.
pub fn floor_run(order: FloorOrder, inp: &Inputs) -> Result<Run> {
    let family = inp.work.family;
    let n = inp.work.prefixes;
    let (f, d) = linked_pair("tbi", &format!("{FEEDER_IP}/24"), &format!("{DUT_IP}/24"))?;
    if family == Family::V6 {
        for (ns, a) in [(&f, FEEDER_IP6), (&d, DUT_IP6)] {
            ns.add_address_nodad("eth1", &format!("{a}/64"))?;
        }
    }
    let prefixes = order.prefixes(family, n)?;
    let budget = Duration::from_secs(60) + Duration::from_micros(u64::from(n) * 100);
    let monitor = start_monitor(&d, family, PROTO_FLOOR, u64::from(n), budget)?;
    let gw = feeder_next_hop(family);
    let cpus = inp.dut_cpus.clone();
    let (t0, pass, cpu) = nl::in_netns(d.name(), move || {
        pin::set_current(&cpus)?;
        let cpu0 = nl::thread_cpu();
        let t0 = Instant::now();
        let pass = nl::install_in_order(&prefixes, gw, PROTO_FLOOR, crate::kernel::REF_BATCH)?;
        Ok((t0, pass, nl::thread_cpu().saturating_sub(cpu0)))
    })?;
    let (at, fell_back) = monitor
        .join()
        .map_err(|_| anyhow::anyhow!("kernel monitor panicked"))??;
    if pass.errors != 0 {
        bail!("kernel floor: {} of {n} writes failed", pass.errors);
    }
    drop(d);
    drop(f);
    let kernel = at.saturating_duration_since(t0);
    Ok(Run {
        rib: Duration::ZERO,
        kernel: Some(kernel),
        time: kernel,
        cpu: cpu.as_secs_f64(),
        dut_cpus: inp.dut_cpus.list(),
        monitor_fell_back: fell_back,
        ..Run::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Indices of the workload's IPv4 /28s (`10.0.0.0 + 16·i`).
    fn indices(v: &[IpNetwork]) -> Vec<u32> {
        v.iter()
            .map(|p| match p.ip() {
                IpAddr::V4(a) => (u32::from(a) - 0x0a00_0000) >> 4,
                IpAddr::V6(_) => u32::MAX,
            })
            .collect()
    }

    #[test]
    fn floor_orders_are_the_workloads_prefixes() {
        let addr = FloorOrder::Address.prefixes(Family::V4, 8).unwrap();
        assert_eq!(indices(&addr), [0, 1, 2, 3, 4, 5, 6, 7]);
        assert!(addr.iter().all(|p| p.prefix() == 28));
        let rev = FloorOrder::BitReversed.prefixes(Family::V4, 8).unwrap();
        assert_eq!(indices(&rev), [0, 4, 2, 6, 1, 5, 3, 7]);
        let runs = FloorOrder::Runs.prefixes(Family::V4, 64).unwrap();
        let want: Vec<u32> = [0u32, 32, 16, 48]
            .into_iter()
            .flat_map(|r| r..r + 16)
            .collect();
        assert_eq!(indices(&runs), want);
        let v6 = FloorOrder::Address.prefixes(Family::V6, 3).unwrap();
        assert_eq!(v6[2].to_string(), "fd00:0:2::/48");
    }
}
