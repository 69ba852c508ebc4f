//! Benchmark 7, one route under load (`loadlat`): how long a single
//! unrelated route takes to reach the kernel — and to leave it — while a
//! bulk load from another peer is being programmed, tortie vs BIRD 2 the
//! same way in the same run. What a node lives with when a new container
//! /32 (or IPv6 /128) appears on another node (or one goes away: a
//! failover) while a table is loading. The load is IPv4 /28s or IPv6 /48s
//! (the ingest's packed workload), the probe route an IPv4 /32 or an IPv6
//! /128, any combination (an IPv6 route behind an IPv4 load and the
//! reverse: one family's backlog in front of the other's change).
//!
//! Per run, three namespaces: the load's feeder (peer A, 65001, the
//! ingest's live BIRD or burst feeder, [`crate::ingest_run`]) and the
//! probe peer (B, 65002, [`crate::probe`]) each on its own veth to the DUT
//! (64512, kernel install on; BIRD exporting BGP routes to the kernel and
//! nothing to either peer, as tortie's default `ebgp_requires_policy`;
//! both families on a session that carries IPv6, next hops on IPv6
//! addresses of the links as in the ingest).
//! Data flow: the route-event monitor ([`nl::route_events`], subscribed
//! before the DUT starts) counts the load's /28s in the DUT's main table
//! and times the probe's /32 events → load started (`go` / `enable`), t0 =
//! its first UPDATE on A's wire ([`Wire`]) → once `at` % of the load is in
//! the kernel, B announces the /32 (its UPDATE's moment on B's wire) → the
//! /32's RTM_NEWROUTE = the **announce latency** → once that was seen and
//! the load reached the half-way point between `at` % and 100 %, B
//! withdraws it → the /32's RTM_DELROUTE = the **withdraw latency** →
//! the load's last /28 in the kernel. Each latency says whether it ended
//! inside the load. Nothing polls either DUT.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tortie_bgp::{Ipv4Prefix, Ipv6Prefix, Prefix};
use tortie_lab::bird::{Bird, BirdConfig, BirdNeighbor};
use tortie_lab::netns::{Netns, linked_pair, veth};
use tortie_lab::tortie::{TortieConfig, TortieNode, TortiePeer};

use crate::capture::Wire;
use crate::feeder::{self, FeedEvent, Shape, Workload};
use crate::ingest_run::{
    self, DUT_ASN, DUT_IP, DUT_IP6, Dut, FEEDER_ASN, FEEDER_IP, FEEDER_IP6, Feed, Feeder, Waits,
};
use crate::nl::{self, Family};
use crate::pin::{self, CpuSet, Pinning};
use crate::probe::{self, Step};
use crate::report::{Section, process_cpu, ratio, ratio_cell, secs};
use crate::stats::spread;

/// The probe peer's side of its link, its ASN, and the DUT's side.
pub const PROBE_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
const PROBE_DUT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
pub const PROBE_ASN: u32 = 65002;
/// The probe's route: a /32 outside the load's 10.0.0.0/8 (an odd last
/// octet: the last visit of its run in the outbox's IPv4 order).
pub const PROBE_PREFIX: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
/// The IPv6 probe's route (a /128 outside the load's fd00::/28) and the
/// two ends' IPv6 addresses on the probe's link: the probe's is its next
/// hop.
pub const PROBE_PREFIX6: Ipv6Addr = Ipv6Addr::new(0xfd13, 0x19, 0, 0, 0, 0, 0, 1);
const PROBE_IP6: Ipv6Addr = Ipv6Addr::new(0xfd12, 0x18, 0, 2, 0, 0, 0, 1);
const PROBE_DUT_IP6: Ipv6Addr = Ipv6Addr::new(0xfd12, 0x18, 0, 2, 0, 0, 0, 2);
/// BIRD's name for the probe's session.
const PROBE_PROTO: &str = "probe";

/// What to run.
pub struct Options {
    pub sizes: Vec<u32>,
    /// The load's family (IPv4 /28s, IPv6 /48s); one row set each.
    pub families: Vec<Family>,
    /// The probe route's family (IPv4 /32, IPv6 /128); one row set each.
    pub probes: Vec<Family>,
    pub feeds: Vec<Feed>,
    /// Load progress (% of its routes in the kernel) at which the probe is
    /// announced; one row each.
    pub at: Vec<u32>,
    pub repeat: u32,
    pub pinning: Pinning,
    pub waits: Waits,
}

/// Where the withdrawal goes: half-way between the announcement's point
/// and the load's end, in routes of the load in the kernel.
pub fn set_points(n: u32, at_percent: u32) -> (u64, u64) {
    let at = u64::from(at_percent.min(100));
    let n = u64::from(n);
    let announce = n * at / 100;
    let withdraw = n * (at + (100 - at) / 2) / 100;
    (announce, withdraw)
}

/// The probe's route of `family`, its next hop (the probe's address on its
/// link) and its key in the monitor (`(dst, dst_len)`).
fn probe_route(family: Family) -> Result<(Prefix, IpAddr, (u128, u8))> {
    Ok(match family {
        Family::V4 => (
            Prefix::V4(Ipv4Prefix::new(PROBE_PREFIX, 32).context("the probe prefix")?),
            PROBE_IP.into(),
            (u128::from(u32::from(PROBE_PREFIX)), 32),
        ),
        Family::V6 => (
            Prefix::V6(Ipv6Prefix::new(PROBE_PREFIX6, 128).context("the probe prefix")?),
            PROBE_IP6.into(),
            (u128::from(PROBE_PREFIX6), 128),
        ),
    })
}

/// One run's figures (seconds from t0, the load's first UPDATE on the wire).
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// t0 → all N of the load in the kernel.
    pub load: f64,
    /// t0 → the probe's announcement / withdrawal on B's wire.
    pub announced_at: f64,
    pub withdrawn_at: f64,
    /// The probe's UPDATE on the wire → its RTM_NEWROUTE / RTM_DELROUTE.
    pub add: f64,
    pub del: f64,
    /// The load's routes in the kernel when the probe's event came.
    pub count_at_add: u64,
    pub count_at_del: u64,
    /// DUT CPU seconds (all threads) from before the load to its end or
    /// the probe's withdrawal, whichever was later.
    pub cpu: f64,
}

impl Run {
    fn add_in_load(&self) -> bool {
        self.announced_at + self.add < self.load
    }
    fn del_in_load(&self) -> bool {
        self.withdrawn_at + self.del < self.load
    }
}

/// What the monitor thread reports.
enum Seen {
    /// The probe's /32 arrived (`true`) or left, and the load's count then.
    Probe(bool, Instant, u64),
    /// All N of the load in the kernel.
    Loaded(Instant),
    Failed(String),
}

/// What the monitor watches: the load's `n` routes of `load`, the probe's
/// route of `probe`, and the DUT's route protocol.
#[derive(Clone, Copy)]
struct Watch {
    load: Family,
    n: u64,
    probe: Family,
    proto: u8,
}

/// Subscribes in `d` and counts the load's routes (in `count`) while timing
/// the probe's, until the load is in and the probe has come and gone.
fn start_monitor(
    d: &Netns,
    w: Watch,
    count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    budget: Duration,
) -> Result<mpsc::Receiver<Seen>> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    let dname = d.name().to_string();
    let (_, _, probe) = probe_route(w.probe)?;
    let len = feeder::prefix_len(w.load);
    let n = w.n;
    std::thread::spawn(move || {
        let tx2 = tx.clone();
        let r = nl::in_netns(&dname, move || {
            let mut seen = std::collections::HashSet::with_capacity(n as usize);
            let (mut loaded, mut gone) = (false, false);
            let families = if w.load == w.probe {
                vec![w.load]
            } else {
                vec![w.load, w.probe]
            };
            nl::route_events(
                &families,
                w.proto,
                Instant::now() + budget,
                &stop,
                || {
                    let _ = ready_tx.send(());
                },
                |family, new, key| {
                    if family == w.probe && key == probe {
                        let _ = tx2.send(Seen::Probe(new, Instant::now(), seen.len() as u64));
                        gone |= !new;
                    } else if family == w.load && key.1 == len {
                        if new {
                            seen.insert(key.0);
                        } else {
                            seen.remove(&key.0);
                        }
                        count.store(seen.len() as u64, Ordering::Relaxed);
                        if !loaded && seen.len() as u64 >= n {
                            loaded = true;
                            let _ = tx2.send(Seen::Loaded(Instant::now()));
                        }
                    }
                    !(loaded && gone)
                },
            )
        });
        if let Err(e) = r {
            let _ = tx.send(Seen::Failed(format!("{e:#}")));
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .context("route monitor did not start")?;
    Ok(rx)
}

enum Control {
    Bird(Bird),
    Tortie(TortieNode),
}

impl Control {
    fn pid(&mut self) -> i32 {
        match self {
            Control::Bird(b) => b.daemon().pid(),
            Control::Tortie(t) => t.daemon().map(|d| d.pid()).unwrap_or(0),
        }
    }
}

/// The DUT with two peers (the load's feeder, the probe), kernel install
/// on; a peer whose routes are IPv6 (`load` / `probe`) gets both families,
/// as in the ingest (the BIRD DUT: an ipv6 channel beside the ipv4 one).
fn start_dut(dut: Dut, ns: &Netns, dir: &Path, load: Family, probe: Family) -> Result<Control> {
    let peers = [
        ("dut", FEEDER_IP, FEEDER_ASN, load, DUT_IP6),
        (PROBE_PROTO, PROBE_IP, PROBE_ASN, probe, PROBE_DUT_IP6),
    ];
    match dut {
        Dut::Bird => {
            let mut cfg = BirdConfig::new(DUT_IP, DUT_ASN);
            cfg.kernel_export = true;
            for (name, ip, asn, family, ip6) in peers {
                let mut nb = BirdNeighbor::new(name, ip.into(), asn);
                nb.export_none = true;
                nb.ipv6_next_hop = (family == Family::V6).then_some(ip6);
                cfg.neighbors.push(nb);
            }
            Ok(Control::Bird(Bird::start(ns, dir, &cfg)?))
        }
        Dut::Tortie => {
            // An IPv6 node address on a link that carries IPv6.
            let address = match (load, probe) {
                (Family::V6, _) => format!("{DUT_IP}/24,{DUT_IP6}/64"),
                (_, Family::V6) => format!("{DUT_IP}/24,{PROBE_DUT_IP6}/64"),
                _ => format!("{DUT_IP}/24"),
            };
            let mut cfg = TortieConfig::new("dut", &address, DUT_ASN, "172.31.0.0/26", dir);
            cfg.hold_time = 90;
            cfg.graceful_restart = false;
            cfg.metrics_listen = String::new();
            // The product's default, unless `TORTIE_BENCH_NEXTHOP_OBJECTS=0`.
            cfg.dataplane_extra = format!("nexthop_objects = {}\n", crate::kernel_nh::on());
            for (name, ip, asn, family, _) in peers {
                let mut peer = TortiePeer::new(ip.into(), asn);
                if name == PROBE_PROTO {
                    // The probe's session from the DUT's address on the
                    // probe's link (BIRD picks it by itself for a direct
                    // neighbour).
                    peer.source_address = Some(PROBE_DUT_IP.into());
                }
                if family == Family::V6 {
                    peer.families = vec!["ipv4".into(), "ipv6".into()];
                }
                cfg.peers.push(peer);
            }
            Ok(Control::Tortie(TortieNode::start_with_args(
                ns,
                dir,
                &cfg,
                &[],
            )?))
        }
    }
}

fn established(events: &mpsc::Receiver<FeedEvent>, who: &str) -> Result<()> {
    match events.recv_timeout(Duration::from_secs(60)) {
        Ok(FeedEvent::Established) => Ok(()),
        Ok(FeedEvent::Failed(e)) => bail!("{who}: {e}"),
        other => bail!("{who}: no session with the DUT: {other:?}"),
    }
}

/// What one run needs besides its DUT and feeder.
pub struct Inputs {
    pub work: Arc<Workload>,
    pub static_routes: std::path::PathBuf,
    pub dut_cpus: CpuSet,
    pub waits: Waits,
    pub at: u32,
    /// The probe route's family.
    pub probe: Family,
}

/// One run; the calling thread must already be on the feeder CPUs.
pub fn one_run(dut: Dut, feed: Feed, inp: &Inputs) -> Result<Run> {
    let n = u64::from(inp.work.prefixes);
    let load = inp.work.family;
    let (f, d) = linked_pair("tbl", &format!("{FEEDER_IP}/24"), &format!("{DUT_IP}/24"))?;
    let b = Netns::create(&tortie_lab::netns::unique_name("tblp"))?;
    veth(&b, "eth1", &d, "eth2")?;
    b.add_address("eth1", &format!("{PROBE_IP}/24"))?;
    d.add_address("eth2", &format!("{PROBE_DUT_IP}/24"))?;
    // Usable at once (no DAD): an IPv6 next hop must resolve.
    if load == Family::V6 {
        for (ns, a) in [(&f, FEEDER_IP6), (&d, DUT_IP6)] {
            ns.add_address_nodad("eth1", &format!("{a}/64"))?;
        }
    }
    if inp.probe == Family::V6 {
        b.add_address_nodad("eth1", &format!("{PROBE_IP6}/64"))?;
        d.add_address_nodad("eth2", &format!("{PROBE_DUT_IP6}/64"))?;
    }
    let dir = tempfile::Builder::new()
        .prefix("tortie-bench-loadlat")
        .tempdir()
        .context("creating a work dir")?;
    let wire = Wire::start(f.name(), "eth1")?;
    let mut probe_wire = Some(Wire::start(b.name(), "eth1")?);
    let mut feeder = match feed {
        Feed::Burst => ingest_run::start_burst(&f, inp.work.clone())?,
        Feed::Live => ingest_run::start_live(&f, dir.path(), &inp.static_routes, load)?,
    };
    let (prefix, hop, _) = probe_route(inp.probe)?;
    let pr = probe::start(
        b.name(),
        SocketAddr::new(PROBE_IP.into(), 179),
        PROBE_ASN,
        probe::updates(prefix, PROBE_ASN, hop)?,
    )?;
    ingest_run::listening(&pr.events, "probe peer")?;
    let proto = match dut {
        Dut::Bird => ingest_run::PROTO_BIRD,
        Dut::Tortie => ingest_run::PROTO_TORTIE,
    };
    let budget = Duration::from_secs(60) + Duration::from_micros(n * 100);
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let watch = Watch {
        load,
        n,
        probe: inp.probe,
        proto,
    };
    let seen = start_monitor(&d, watch, count.clone(), stop.clone(), budget)?;
    let result = (|| {
        let dut_dir = dir.path().join("dut");
        std::fs::create_dir_all(&dut_dir)?;
        let mut ctl = pin::spawn_on(&inp.dut_cpus, || {
            start_dut(dut, &d, &dut_dir, load, inp.probe)
        })?;
        let pid = ctl.pid();
        match &mut feeder {
            Feeder::Burst(fd) => established(&fd.events, "feeder")?,
            Feeder::Live(_, fctl) => {
                let end = Instant::now() + Duration::from_secs(60);
                while fctl.bgp_state(ingest_run::FEEDER_PROTO)? != "Established" {
                    if Instant::now() > end {
                        bail!("{} did not establish with the BIRD feeder", dut.name());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        established(&pr.events, "probe peer")?;
        std::thread::sleep(inp.waits.settle);
        let cpu_before = process_cpu(pid).unwrap_or_default();
        match &mut feeder {
            Feeder::Burst(fd) => fd.go(),
            Feeder::Live(_, fctl) => {
                fctl.cmd(&format!("enable {}", ingest_run::STATIC))?;
            }
        }
        let t0 = wire.first_update(budget)?;
        let (announce_point, withdraw_point) = set_points(inp.work.prefixes, inp.at);
        let deadline = t0 + budget;
        let mut poke_at = Instant::now();
        let (mut announced, mut withdrawn) = (None::<Instant>, None::<Instant>);
        let (mut added, mut deleted, mut loaded) = (None, None, None);
        loop {
            if let Feeder::Live(_, fctl) = &mut feeder
                && Instant::now() >= poke_at
            {
                fctl.cmd("show status")?;
                poke_at = Instant::now() + ingest_run::POKE;
            }
            while let Ok(s) = seen.try_recv() {
                match s {
                    // The first event after each UPDATE (a repeat changes nothing).
                    Seen::Probe(true, at, c) if announced.is_some() => {
                        added = added.or(Some((at, c)));
                    }
                    Seen::Probe(false, at, c) if withdrawn.is_some() => {
                        deleted = deleted.or(Some((at, c)));
                    }
                    Seen::Probe(new, ..) => bail!(
                        "the probe's route {} out of turn",
                        if new { "arrived" } else { "left" }
                    ),
                    Seen::Loaded(at) => loaded = Some(at),
                    Seen::Failed(e) => bail!("route monitor: {e}"),
                }
            }
            let c = count.load(Ordering::Relaxed);
            if announced.is_none() && (c >= announce_point || loaded.is_some()) {
                pr.send(Step::Announce)?;
                let w = probe_wire.take().context("the probe's capture")?;
                announced = Some(w.first_update(Duration::from_secs(10))?);
            }
            if withdrawn.is_none() && added.is_some() && (c >= withdraw_point || loaded.is_some()) {
                let w = Wire::start(b.name(), "eth1")?;
                pr.send(Step::Withdraw)?;
                withdrawn = Some(w.first_update(Duration::from_secs(10))?);
            }
            if let (Some(l), Some(_)) = (loaded, deleted) {
                let cpu = process_cpu(pid)
                    .unwrap_or_default()
                    .saturating_sub(cpu_before)
                    .as_secs_f64();
                let (a, (ad, ca)) = (announced.unwrap_or(t0), added.unwrap_or((t0, 0)));
                let (w, (de, cd)) = (withdrawn.unwrap_or(t0), deleted.unwrap_or((t0, 0)));
                let since = |x: Instant| x.saturating_duration_since(t0).as_secs_f64();
                drop(ctl);
                if let Some(keep) = std::env::var_os(PROBE_TRACE_ENV) {
                    let times = [
                        ("update_in", a),
                        ("kernel_in", ad),
                        ("update_out", w),
                        ("kernel_out", de),
                    ];
                    keep_trace(Path::new(&keep), &dut_dir, dut, &times)?;
                }
                return Ok(Run {
                    load: since(l),
                    announced_at: since(a),
                    withdrawn_at: since(w),
                    add: ad.saturating_duration_since(a).as_secs_f64(),
                    del: de.saturating_duration_since(w).as_secs_f64(),
                    count_at_add: ca,
                    count_at_del: cd,
                    cpu,
                });
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: {c} of {n} loaded, probe announced {} / in {} / withdrawn {} / out {} after {budget:?}",
                    dut.name(),
                    announced.is_some(),
                    added.is_some(),
                    withdrawn.is_some(),
                    deleted.is_some()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    })();
    stop.store(true, Ordering::Relaxed);
    drop(pr);
    drop(feeder);
    let _ = wire.finish();
    drop(d);
    drop(b);
    drop(f);
    result
}

/// Env: a directory to keep each tortie run's probe trace in (its log with
/// `RUST_LOG=info,tortie_probe=trace`, see `tortie_bgp::PROBE_TRACE`, and the
/// probe's UPDATE and kernel times as Unix seconds, one `name seconds` a line).
const PROBE_TRACE_ENV: &str = "TORTIE_BENCH_PROBE_TRACE";

/// Copies the DUT's log to the `PROBE_TRACE_ENV` directory and writes the
/// run's probe times beside it, as the log's clock (Unix time) reads them.
fn keep_trace(keep: &Path, dut_dir: &Path, dut: Dut, times: &[(&str, Instant)]) -> Result<()> {
    let (now, wall) = (Instant::now(), std::time::SystemTime::now());
    let unix = wall
        .duration_since(std::time::UNIX_EPOCH)
        .context("clock before 1970")?
        .as_secs_f64();
    let stem = keep.join(format!("{}-{unix:.0}", dut.name()));
    std::fs::create_dir_all(keep)?;
    if dut == Dut::Tortie {
        std::fs::copy(dut_dir.join("tortie.log"), stem.with_extension("log"))
            .context("keeping the DUT's log")?;
    }
    let mut out = String::new();
    for (name, at) in times {
        let t = unix - now.saturating_duration_since(*at).as_secs_f64();
        out.push_str(&format!("{name} {t:.6}\n"));
    }
    std::fs::write(stem.with_extension("times"), out).context("writing the probe's times")?;
    Ok(())
}

/// A latency cell: median (min–max) in ms, and how many of the runs ended
/// inside the load.
fn cell(runs: &[Run], f: impl Fn(&Run) -> f64, inside: impl Fn(&Run) -> bool) -> String {
    if runs.is_empty() {
        return String::new();
    }
    let [lo, m, hi] = spread(runs.iter().map(&f).collect());
    let k = runs.iter().filter(|r| inside(r)).count();
    let range = if runs.len() > 1 {
        format!(" ({:.1}–{:.1})", lo * 1e3, hi * 1e3)
    } else {
        String::new()
    };
    format!("{:.1} ms{range}, {k}/{} in load", m * 1e3, runs.len())
}

fn median(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    spread(runs.iter().map(f).collect())[1]
}

fn run_json(n: u32, feed: Feed, at: u32, inp: &Inputs, dut: Dut, seq: usize, r: &Run) -> Value {
    json!({
        "family": inp.work.family.name(), "probe_family": inp.probe.name(), "prefixes": n, "feeder": feed.key(), "announce_at_percent": at, "dut": dut.name(),
        "sequence": seq, "load_s": r.load, "announced_at_s": r.announced_at, "withdrawn_at_s": r.withdrawn_at,
        "announce_latency_s": r.add, "withdraw_latency_s": r.del,
        "announce_inside_load": r.add_in_load(), "withdraw_inside_load": r.del_in_load(),
        "load_in_kernel_at_announce_event": r.count_at_add, "load_in_kernel_at_withdraw_event": r.count_at_del,
        "dut_cpu_s": r.cpu,
    })
}

/// Which DUTs `TORTIE_BENCH_ONLY` lets run (`tortie`, `BIRD`; unset: both).
fn duts() -> Vec<Dut> {
    let only = std::env::var(crate::ingest::ONLY).ok();
    [Dut::Bird, Dut::Tortie]
        .into_iter()
        .filter(|d| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|w| w.trim() == d.name()))
        })
        .collect()
}

pub fn run(opts: &Options) -> Result<Section> {
    let mut sec = Section::new(
        "One route under load (tortie vs BIRD, like for like)",
        "A bulk load of N IPv4 /28s or IPv6 /48s (packed, ~500 per UPDATE; **load**) from peer A (65001: the live BIRD feeder or the burst feeder, as in the ingest) while a second peer B (65002, the bench's own speaker, on its own veth) announces one route (**probe**: IPv4 198.19.0.1/32 or IPv6 fd13:19::1/128) once `at` % of the load is in the DUT's kernel, and withdraws it once its route was seen and the load reached half-way between `at` % and 100 %. Both DUTs install into the kernel (BIRD's kernel protocol exports BGP routes; neither DUT exports anything to A or B). **announce / withdraw** = the probe's UPDATE leaving B (a packet socket on B's veth) → its route's RTM_NEWROUTE / RTM_DELROUTE in the DUT's namespace (a route-event monitor subscribed before the DUT starts, batched reads, 1 ms naps); `k/R in load` = in how many runs the event came before the load's last route reached the kernel. **load** = the load's first UPDATE on A's wire → all N in the kernel. Nothing polls either DUT. Medians (min–max) of R runs per DUT, the first DUT alternating.",
    );
    sec.header = [
        "N",
        "load",
        "probe",
        "feeder",
        "at",
        "measure",
        "BIRD",
        "tortie",
        "tortie / BIRD",
    ]
    .map(String::from)
    .to_vec();
    let all = pin::current()?;
    let (feeder_cpus, dut_cpus) = pin::layout(opts.pinning, &all);
    sec.sizes = json!({
        "prefixes": opts.sizes, "families": opts.families.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "probes": opts.probes.iter().map(|f| f.name()).collect::<Vec<_>>(), "feeders": opts.feeds.iter().map(|f| f.key()).collect::<Vec<_>>(),
        "announce_at_percent": opts.at, "repeat": opts.repeat, "pinning": opts.pinning.name(),
        "feeder_cpus": feeder_cpus.list(), "dut_cpus": dut_cpus.list(),
    });
    sec.notes.push(format!(
        "pinning `{}`: feeders, probe peer and the bench's threads on CPU {}, DUT on CPU {}",
        opts.pinning.name(),
        feeder_cpus.list(),
        dut_cpus.list()
    ));
    let tmp = tempfile::Builder::new()
        .prefix("tortie-bench-loadlat-routes")
        .tempdir()
        .context("creating a temp dir")?;
    pin::set_current(&feeder_cpus)?;
    let r = measure(opts, &mut sec, tmp.path(), &dut_cpus);
    pin::set_current(&all)?;
    r?;
    Ok(sec)
}

fn measure(opts: &Options, sec: &mut Section, tmp: &Path, dut_cpus: &CpuSet) -> Result<()> {
    let mut figures = Vec::new();
    let mut seq = 0usize;
    let duts = duts();
    for &n in &opts.sizes {
        for &family in &opts.families {
            let work = Arc::new(Workload::build(
                Shape::Packed,
                family,
                n,
                FEEDER_ASN,
                match family {
                    Family::V4 => IpAddr::V4(FEEDER_IP),
                    Family::V6 => IpAddr::V6(FEEDER_IP6),
                },
            )?);
            let static_routes = tmp.join(format!("routes-{n}-{}.conf", family.name()));
            ingest_run::write_static_routes(&static_routes, Shape::Packed, family, n)?;
            for &probe in &opts.probes {
                for &feed in &opts.feeds {
                    for &at in &opts.at {
                        let inp = Inputs {
                            work: work.clone(),
                            static_routes: static_routes.clone(),
                            dut_cpus: dut_cpus.clone(),
                            waits: opts.waits,
                            at,
                            probe,
                        };
                        let key = [
                            n.to_string(),
                            family.name().to_string(),
                            probe.name().to_string(),
                            feed.name().to_string(),
                            format!("{at} %"),
                        ];
                        one_row_set(
                            &inp,
                            feed,
                            &key,
                            &duts,
                            opts.repeat,
                            &mut seq,
                            &mut figures,
                            sec,
                        )?;
                    }
                }
            }
        }
    }
    sec.figures = Value::Array(figures);
    Ok(())
}

/// `repeat` runs per DUT of one (size, load, probe, feeder, at) point, the
/// first DUT alternating, and its three rows.
#[allow(clippy::too_many_arguments)]
fn one_row_set(
    inp: &Inputs,
    feed: Feed,
    key: &[String],
    duts: &[Dut],
    repeat: u32,
    seq: &mut usize,
    figures: &mut Vec<Value>,
    sec: &mut Section,
) -> Result<()> {
    let (n, at) = (inp.work.prefixes, inp.at);
    let (load, probe) = (inp.work.family.name(), inp.probe.name());
    let mut runs: [Vec<Run>; 2] = Default::default();
    for i in 0..repeat.max(1) as usize {
        let mut order = duts.to_vec();
        if i % 2 == 1 {
            order.reverse();
        }
        for dut in order {
            *seq += 1;
            let r = one_run(dut, feed, inp).with_context(|| {
                format!(
                    "{} {n} {load} load, {probe} probe, {} at {at} %",
                    dut.name(),
                    feed.key()
                )
            })?;
            eprintln!(
                "  loadlat {} {n} {load} load, {probe} probe, {} at {at} %: announce {:.1} ms, withdraw {:.1} ms, load {:.2} s",
                dut.name(),
                feed.key(),
                r.add * 1e3,
                r.del * 1e3,
                r.load
            );
            figures.push(run_json(n, feed, at, inp, dut, *seq, &r));
            runs[usize::from(dut == Dut::Tortie)].push(r);
        }
    }
    let [bird, tortie] = &runs;
    let mut row = |measure: &str, f: &dyn Fn(&Run) -> f64, inside: &dyn Fn(&Run) -> bool| {
        let (b, t) = (median(bird, f), median(tortie, f));
        let mut r = key.to_vec();
        r.extend([
            measure.to_string(),
            cell(bird, f, inside),
            cell(tortie, f, inside),
            ratio_cell(ratio(t, b)),
        ]);
        sec.rows.push(r);
    };
    row("announce: B's UPDATE → RTM_NEWROUTE", &|r| r.add, &|r| {
        r.add_in_load()
    });
    row("withdraw: B's UPDATE → RTM_DELROUTE", &|r| r.del, &|r| {
        r.del_in_load()
    });
    let load_cell = |v: &[Run]| {
        if v.is_empty() {
            return String::new();
        }
        format!(
            "{}, CPU {:.2} s",
            secs(Duration::from_secs_f64(median(v, |r| r.load))),
            median(v, |r| r.cpu)
        )
    };
    let mut r = key.to_vec();
    r.extend([
        "load: t0 → all N in the kernel".to_string(),
        load_cell(bird),
        load_cell(tortie),
        ratio_cell(ratio(median(tortie, |r| r.load), median(bird, |r| r.load))),
    ]);
    sec.rows.push(r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_withdrawal_goes_half_way_to_the_end() {
        assert_eq!(set_points(1_000_000, 20), (200_000, 600_000));
        assert_eq!(set_points(1000, 50), (500, 750));
        assert_eq!(set_points(1000, 0), (0, 500));
        assert_eq!(set_points(1000, 100), (1000, 1000));
        assert_eq!(set_points(1000, 250), (1000, 1000));
    }

    #[test]
    fn latencies_inside_the_load_are_told_apart() {
        let r = Run {
            load: 2.0,
            announced_at: 0.5,
            add: 0.2,
            withdrawn_at: 1.9,
            del: 0.3,
            ..Run::default()
        };
        assert!(r.add_in_load());
        assert!(!r.del_in_load());
        let c = cell(&[r.clone(), r], |r| r.add, |r| r.add_in_load());
        assert_eq!(c, "200.0 ms (200.0–200.0), 2/2 in load");
    }
}
