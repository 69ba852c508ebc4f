//! `tortie-bench`: tortie side by side with its anchors, in one run, on one
//! machine, so the ratios hold on a noisy shared host (issue 6).
//!
//! `tortie-bench <ingest|kernel|attach|convergence|idle|all> [--size N]…
//! [--smoke] [--out FILE]` prints a markdown table per benchmark and writes
//! the whole run (machine, versions, sizes, figures, ratios, targets) as
//! JSON. Every benchmark builds its own namespaces (removed on drop, on
//! failure too) and only starts processes it stops itself, by PID. See
//! lab/bench/README.md for how to run and read each one.
//!
//! Modules: [`report`] (tables, JSON, /proc figures), [`nl`] (raw
//! rtnetlink: the reference writer, counting, monitoring), [`feeder`] (the
//! BGP feeder), [`bins`] (binaries, agent API and BIRD control socket),
//! [`ping`] (ICMP probe), [`rib`] (in-process RIB memory), one module per
//! benchmark.

mod attach;
mod bins;
mod capture;
mod convergence;
mod feeder;
mod idle;
mod ingest;
mod ingest_floor;
mod ingest_run;

mod kernel;
mod kernel_nh;
mod loadlat;
mod nl;
mod order_log;
mod pin;
mod ping;
mod probe;
mod report;
mod rib;
mod scale_bench;
mod scale_watch;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};

use crate::feeder::Shape;
use crate::report::Report;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Which {
    /// BGP ingest vs BIRD 2 (RIB, kernel, memory).
    Ingest,
    /// Kernel route programming vs a pipelined netlink writer.
    Kernel,
    /// CNI attach+detach: tortie-cni vs ptp + host-local.
    Attach,
    /// Two nodes: attach on A → first ping from a container on B.
    Convergence,
    /// Agent RSS and CPU with 3 peers and containers, idle.
    Idle,
    /// All of the above, in that order.
    All,
    /// Hundreds of nodes: full mesh vs route reflectors (not part of `all`).
    Scale,
    /// One route's latency to the kernel while a bulk load from another
    /// peer is programmed, vs BIRD 2 (not part of `all`).
    Loadlat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ScaleMode {
    Rr,
    Mesh,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FabricArg {
    /// One broadcast domain (switch bridges, core bridge).
    L2,
    /// A /24 per rack router, racks joined by a core router; VXLAN across racks.
    Routed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BfdArg {
    /// Node failures found by the hold timer.
    Off,
    /// BFD on every session (300 ms × 3).
    On,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ReflectorArg {
    Tortie,
    Bird,
    Frr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ShapeArg {
    Packed,
    Unique,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FamilyArg {
    Ipv4,
    Ipv6,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FeederArg {
    /// BIRD 2 with the routes in a static protocol (a real peer's process).
    Live,
    /// The bench's pre-built UPDATE bytes.
    Burst,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PinArg {
    /// Feeder on the first CPU, DUT on the others.
    Split,
    /// Every process on every CPU.
    Shared,
}

#[derive(Parser)]
#[command(
    name = "tortie-bench",
    version,
    about = "tortie benchmarks against BIRD, the netlink ceiling and the CNI ptp plugin"
)]
struct Cli {
    which: Which,
    /// Size(s): prefixes (ingest), routes (kernel), iterations (attach,
    /// convergence), containers (idle). Repeatable. Default: the full sizes.
    #[arg(long = "size")]
    sizes: Vec<u32>,
    /// Small sizes for CI: ingest 2k (IPv6: packed, live feeder only), kernel 10k per family, attach 20, convergence 5,
    /// idle 10 containers for 5 s.
    #[arg(long)]
    smoke: bool,
    /// Ingest UPDATE shape(s).
    #[arg(long, value_enum, default_value = "both")]
    shape: ShapeArg,
    /// Ingest, kernel and loadlat's load: address family of the routes
    /// (ingest, loadlat: IPv4 /28s, IPv6 /48s in MP_REACH_NLRI; kernel: IPv4
    /// /32s, IPv6 /64s), one row set each. With --smoke, ingest's IPv6 rows
    /// are packed, live feeder only.
    #[arg(long, value_enum, default_value = "both")]
    family: FamilyArg,
    /// Ingest feeder(s).
    #[arg(long, value_enum, default_value = "both")]
    feeder: FeederArg,
    /// Ingest CPU layout (feeder and DUT), the same for both DUTs.
    #[arg(long, value_enum, default_value = "split")]
    pin: PinArg,
    /// Ingest: runs per DUT, feeder and mode (first DUT alternating), the
    /// median shown; kernel: rounds per size (writer order alternating),
    /// each writer's median pass shown. Default 3 (1 with --smoke).
    #[arg(long)]
    repeat: Option<u32>,
    /// Loadlat: load progress (% of its routes in the kernel) at which the
    /// probe route is announced (repeatable; default 20 and 50).
    #[arg(long = "at")]
    at: Vec<u32>,
    /// Loadlat: the probe route's family (IPv4 /32, IPv6 /128), one row
    /// set each (the load's family is --family's).
    #[arg(long, value_enum, default_value = "both")]
    probe: FamilyArg,
    /// Idle: how long to measure, seconds.
    #[arg(long)]
    duration: Option<u64>,
    /// Scale: client nodes (repeatable; default 200, smoke 20).
    #[arg(long = "nodes")]
    nodes: Vec<usize>,
    /// Scale: full mesh or route reflectors (repeatable; default rr).
    #[arg(long = "mode", value_enum)]
    modes: Vec<ScaleMode>,
    /// Scale: what the reflectors run (repeatable, each its own run; default tortie).
    #[arg(long = "reflector", value_enum)]
    reflectors: Vec<ReflectorArg>,
    /// Scale: BFD on the sessions (repeatable, each its own run; default off).
    #[arg(long = "bfd", value_enum)]
    bfd: Vec<BfdArg>,
    /// Scale: how the nodes are joined (repeatable, each its own run; default l2).
    #[arg(long = "fabric", value_enum)]
    fabrics: Vec<FabricArg>,
    /// Scale: number of route reflectors.
    #[arg(long, default_value_t = 2)]
    rr_count: usize,
    /// Scale: containers per node.
    #[arg(long, default_value_t = 2)]
    containers: usize,
    /// Scale: new-container samples (default 5, smoke 3).
    #[arg(long)]
    samples: Option<usize>,
    /// Scale: only write the topology (and its configs) into this folder.
    #[arg(long)]
    write: Option<PathBuf>,
    /// Write the run as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn families_of(f: FamilyArg) -> Vec<nl::Family> {
    match f {
        FamilyArg::Ipv4 => vec![nl::Family::V4],
        FamilyArg::Ipv6 => vec![nl::Family::V6],
        FamilyArg::Both => vec![nl::Family::V4, nl::Family::V6],
    }
}

fn sizes(cli: &Cli, full: &[u32], smoke: &[u32]) -> Vec<u32> {
    if !cli.sizes.is_empty() {
        cli.sizes.clone()
    } else if cli.smoke {
        smoke.to_vec()
    } else {
        full.to_vec()
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if !nix::unistd::geteuid().is_root() {
        bail!("tortie-bench needs root: it creates network namespaces and runs daemons in them");
    }
    if cli.which == Which::Scale {
        return scale(&cli);
    }
    let mut report = Report::new();
    let all = cli.which == Which::All;
    let shapes = match cli.shape {
        ShapeArg::Packed => vec![Shape::Packed],
        ShapeArg::Unique => vec![Shape::Unique],
        ShapeArg::Both => vec![Shape::Packed, Shape::Unique],
    };
    let repeat = cli.repeat.unwrap_or(if cli.smoke { 1 } else { 3 });
    let feeds = match cli.feeder {
        FeederArg::Live => vec![ingest_run::Feed::Live],
        FeederArg::Burst => vec![ingest_run::Feed::Burst],
        FeederArg::Both => vec![ingest_run::Feed::Live, ingest_run::Feed::Burst],
    };
    let pinning = match cli.pin {
        PinArg::Split => pin::Pinning::Split,
        PinArg::Shared => pin::Pinning::Shared,
    };
    let families = families_of(cli.family);
    let mut run = |which: Which, f: &mut dyn FnMut() -> Result<report::Section>| {
        if all || cli.which == which {
            eprintln!("tortie-bench: running {which:?} …");
            match f() {
                Ok(sec) => {
                    eprintln!("{}", sec.markdown());
                    report
                        .errors
                        .extend(sec.errors.iter().map(|e| format!("{which:?}: {e}")));
                    report.sections.push(sec);
                }
                Err(e) => {
                    eprintln!("tortie-bench: {which:?} failed: {e:#}");
                    report.errors.push(format!("{which:?}: {e:#}"));
                }
            }
        }
    };
    run(Which::Ingest, &mut || {
        ingest::run(&ingest::Options {
            families: families.clone(),
            sizes: sizes(&cli, &[100_000], &[2_000]),
            shapes: shapes.clone(),
            feeds: feeds.clone(),
            repeat,
            pinning,
            // The smoke's IPv6 pass: one shape and feeder (issue 11 §3).
            v6_only: cli.smoke.then_some((Shape::Packed, ingest_run::Feed::Live)),
            waits: if cli.smoke {
                ingest_run::Waits::SMOKE
            } else {
                ingest_run::Waits::FULL
            },
        })
    });
    run(Which::Kernel, &mut || {
        kernel::run(
            &families,
            &sizes(&cli, &[10_000, 100_000, 1_000_000], &[10_000]),
            repeat,
        )
    });
    run(Which::Attach, &mut || {
        let n = sizes(&cli, &[500], &[20]);
        attach::run(n.first().copied().unwrap_or(500))
    });
    run(Which::Convergence, &mut || {
        let n = sizes(&cli, &[50], &[5]);
        convergence::run(n.first().copied().unwrap_or(50))
    });
    run(Which::Idle, &mut || {
        let n = sizes(&cli, &[100], &[10]);
        let d = cli.duration.unwrap_or(if cli.smoke { 5 } else { 60 });
        idle::run(n.first().copied().unwrap_or(100), Duration::from_secs(d))
    });
    if cli.which == Which::Loadlat {
        run(Which::Loadlat, &mut || {
            loadlat::run(&loadlat::Options {
                sizes: sizes(&cli, &[100_000, 1_000_000], &[2_000]),
                families: families_of(cli.family),
                probes: families_of(cli.probe),
                feeds: feeds.clone(),
                at: if cli.at.is_empty() {
                    vec![20, 50]
                } else {
                    cli.at.clone()
                },
                repeat,
                pinning,
                waits: if cli.smoke {
                    ingest_run::Waits::SMOKE
                } else {
                    ingest_run::Waits::FULL
                },
            })
        });
    }
    print!("{}", report.markdown());
    if let Some(out) = &cli.out {
        report::write_json(&report, out)?;
        eprintln!("tortie-bench: wrote {}", out.display());
    }
    if !report.errors.is_empty() {
        bail!(
            "{} benchmark(s) failed: {}",
            report.errors.len(),
            report.errors.join("; ")
        );
    }
    Ok(())
}

/// `tortie-bench scale`: every (nodes, mode, reflector) combination asked for.
fn scale(cli: &Cli) -> Result<()> {
    use tortie_lab::scale::{Mode, Reflector};
    let nodes = if !cli.nodes.is_empty() {
        cli.nodes.clone()
    } else if cli.smoke {
        vec![20]
    } else {
        vec![200]
    };
    let modes = if cli.modes.is_empty() {
        vec![ScaleMode::Rr]
    } else {
        cli.modes.clone()
    };
    let kinds: Vec<Reflector> = if cli.reflectors.is_empty() {
        vec![Reflector::Tortie]
    } else {
        cli.reflectors
            .iter()
            .map(|r| match r {
                ReflectorArg::Tortie => Reflector::Tortie,
                ReflectorArg::Bird => Reflector::Bird,
                ReflectorArg::Frr => Reflector::Frr,
            })
            .collect()
    };
    let samples = cli.samples.unwrap_or(if cli.smoke { 3 } else { 5 });
    let bfds: Vec<bool> = if cli.bfd.is_empty() {
        vec![false]
    } else {
        cli.bfd.iter().map(|b| *b == BfdArg::On).collect()
    };
    let fabrics: Vec<tortie_lab::scale::Fabric> = if cli.fabrics.is_empty() {
        vec![tortie_lab::scale::Fabric::L2]
    } else {
        cli.fabrics
            .iter()
            .map(|f| match f {
                FabricArg::L2 => tortie_lab::scale::Fabric::L2,
                FabricArg::Routed => tortie_lab::scale::Fabric::Routed,
            })
            .collect()
    };
    let mut cases = Vec::new();
    for &n in &nodes {
        for m in &modes {
            let case_modes: Vec<Mode> = match m {
                ScaleMode::Mesh => vec![Mode::Mesh],
                ScaleMode::Rr => kinds
                    .iter()
                    .map(|&kind| Mode::Rr {
                        count: cli.rr_count,
                        kind,
                    })
                    .collect(),
            };
            for mode in case_modes {
                for &fabric in &fabrics {
                    cases.extend(bfds.iter().map(|&bfd| scale_bench::Case {
                        nodes: n,
                        mode,
                        containers: cli.containers,
                        samples,
                        bfd,
                        fabric,
                    }));
                }
            }
        }
    }
    if let Some(dir) = &cli.write {
        for (i, c) in cases.iter().enumerate() {
            let spec = tortie_lab::scale::ScaleSpec {
                name: format!("scale-{}-{i}", c.nodes),
                nodes: c.nodes,
                containers: c.containers,
                mode: c.mode,
                hold_time: 9,
                bfd: c.bfd,
                fabric: c.fabric,
            };
            let p = tortie_lab::scale::generate(&spec, dir)?;
            println!("{}", p.display());
        }
        return Ok(());
    }
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "tortie-bench scale needs root: it creates network namespaces and runs daemons in them"
        );
    }
    scale_bench::interrupt()?;
    let mut report = Report::new();
    let sec = scale_bench::run(&cases)?;
    report.sections.push(sec);
    print!("{}", report.markdown());
    if let Some(out) = &cli.out {
        report::write_json(&report, out)?;
        eprintln!("tortie-bench: wrote {}", out.display());
    }
    Ok(())
}
