//! Benchmark 1, BGP ingest: tortie vs BIRD 2 measured the same way in the
//! same run (issue 15 §1). Per (shape, size, feeder), three rows:
//!
//! - **end-to-end**: first UPDATE on the wire → all N in the DUT's kernel
//!   table, kernel install on for both (BIRD's kernel protocol exporting BGP
//!   routes; the agent as it runs in production);
//! - **control plane**: first UPDATE → all N in the DUT's RIB with kernel
//!   install off on both (BIRD without a kernel protocol; `tortie run
//!   --no-kernel`, the real agent binary), checked afterwards by a dump
//!   showing none of the N in the kernel;
//! - **peak RSS growth per route**: (VmHWM − VmRSS before the load) / N of
//!   each DUT process, from the end-to-end runs (the control-plane runs'
//!   figure is in the JSON).
//!
//! Two feeders: **live** — BIRD 2 with the routes in a static protocol,
//! enabled once the session is up, a real peer that competes for CPU — and
//! **burst** — the bench's pre-built UPDATE bytes ([`crate::feeder`]). The
//! feeder's CPU seconds are reported. Feeder and DUT are pinned
//! ([`crate::pin`], `--pin`), the same way for both DUTs; DUT CPU seconds
//! are reported beside wall time. Each (feeder, mode) pair runs `repeat`
//! times per DUT, the first DUT alternating between pairs; medians shown.
//! One run is [`crate::ingest_run::one_run`].

use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::feeder::{self, Shape, Workload};
use crate::ingest_run::{self, DUT_ASN, Dut, FEEDER_ASN, FEEDER_IP, Feed, Inputs, Mode, Run};
use crate::pin::{self, Pinning};
use crate::report::{Section, ratio, secs};

/// What to run.
pub struct Options {
    pub sizes: Vec<u32>,
    pub shapes: Vec<Shape>,
    pub feeds: Vec<Feed>,
    pub repeat: u32,
    pub pinning: Pinning,
}

/// The median of `runs` by `key` (the upper one of an even count).
fn median_by<K: PartialOrd + Copy>(runs: &[Run], key: impl Fn(&Run) -> K) -> Run {
    let mut v: Vec<&Run> = runs.iter().collect();
    v.sort_by(|a, b| {
        key(a)
            .partial_cmp(&key(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    v.get(v.len() / 2).map(|r| (*r).clone()).unwrap_or_default()
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn run_json(shape: Shape, n: u32, feed: Feed, mode: Mode, dut: Dut, seq: usize, r: &Run) -> Value {
    json!({
        "shape": shape.name(), "prefixes": n, "feeder": feed.key(), "mode": mode.key(),
        "dut": dut.name(), "sequence": seq,
        "rib_s": r.rib.as_secs_f64(), "kernel_s": r.kernel.map(|k| k.as_secs_f64()),
        "rss_before_bytes": r.rss_before, "peak_rss_bytes": r.hwm, "rss_after_1s_bytes": r.rss_after,
        "rss_after_withdraw_bytes": r.rss_withdrawn,
        "rss_growth_bytes_per_route": r.bytes_per_route(n),
        "dut_cpu_s": r.cpu, "feeder_cpu_s": r.feeder_cpu,
        "dut_cpus": r.dut_cpus, "feeder_cpus": r.feeder_cpus,
        "kernel_monitor_fell_back_to_dumps": r.monitor_fell_back,
    })
}

pub fn run(opts: &Options) -> Result<Section> {
    let mut sec = Section::new(
        "BGP ingest (tortie vs BIRD, like for like)",
        "Per shape, size and feeder, three rows, tortie and BIRD 2 measured the same way in the same run, each in fresh namespaces (feeder ↔ DUT over a veth, eBGP 65001 → 64512). t0 = the first UPDATE leaving the feeder, seen by a packet socket on its veth (the same for both feeders and DUTs). **end-to-end** = t0 → all N /28s of the DUT's protocol in its kernel table (netlink route events), kernel install on for both. **control plane** = t0 → all N in the DUT's RIB with kernel install off on both (BIRD: no kernel protocol, \"Routes: N imported\" on its control socket; tortie: `tortie run --no-kernel`, `routes_received` from GET /v1/status; both polled every 10 ms; afterwards a dump checks none of the N reached the kernel). **RSS growth/route** = (VmHWM − VmRSS before the load) / N of the DUT process, end-to-end runs. **RSS kept after withdrawal** = VmRSS 2 s after the feeder's session went down and every route left the kernel, minus VmRSS before the load (end-to-end runs; tortie runs with graceful restart off). Feeders: **live** = BIRD 2 holding the routes in a static protocol that is enabled once the session is up (a real peer's process; its control socket is poked every 10 ms, BIRD 2.0.12's end-of-export stall); **burst** = the bench's pre-built UPDATE bytes written in 256 KiB chunks. CPU s = user + system seconds of the DUT process (all threads) and of the feeder (BIRD process; the writer thread) during the load. Medians of the repeated runs (DUT order alternating); ratios are tortie / BIRD of the medians (lower is better). RIB heap (in-process) = the burst workload's bytes decoded and applied to tortie's `Rib` in the bench process, live heap counted (a tortie-only figure).",
    );
    sec.header = [
        "shape",
        "N",
        "feeder",
        "measure",
        "BIRD",
        "tortie",
        "tortie / BIRD",
        "BIRD CPU s",
        "tortie CPU s",
        "feeder CPU s (BIRD run / tortie run)",
    ]
    .map(String::from)
    .to_vec();
    let all = pin::current()?;
    let (feeder_cpus, dut_cpus) = pin::layout(opts.pinning, &all);
    sec.sizes = json!({
        "prefixes": opts.sizes,
        "shapes": opts.shapes.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "feeders": opts.feeds.iter().map(|f| f.key()).collect::<Vec<_>>(),
        "repeat": opts.repeat,
        "pinning": opts.pinning.name(),
        "feeder_cpus": feeder_cpus.list(),
        "dut_cpus": dut_cpus.list(),
    });
    sec.notes.push(format!(
        "pinning `{}`: feeder (and the bench's own threads) on CPU {}, DUT on CPU {} (as `taskset -c`), for both DUTs",
        opts.pinning.name(),
        feeder_cpus.list(),
        dut_cpus.list()
    ));
    sec.notes.push(format!(
        "each DUT ran {} time(s) per feeder and mode, the first DUT alternating; medians shown",
        opts.repeat.max(1)
    ));
    let tmp = tempfile::Builder::new()
        .prefix("tortie-bench-routes")
        .tempdir()
        .context("creating a temp dir")?;
    // The bench's threads (feeder, capture, polling) stay on the feeder CPUs.
    pin::set_current(&feeder_cpus)?;
    let result = measure(opts, &mut sec, tmp.path(), &dut_cpus);
    pin::set_current(&all)?;
    result?;
    Ok(sec)
}

fn measure(
    opts: &Options,
    sec: &mut Section,
    tmp: &std::path::Path,
    dut_cpus: &pin::CpuSet,
) -> Result<()> {
    let mut figures = Vec::new();
    let mut ratios = Vec::new();
    let mut seq = 0usize;
    for &shape in &opts.shapes {
        for &n in &opts.sizes {
            let work = Arc::new(Workload::build(shape, n, FEEDER_ASN, FEEDER_IP)?);
            let static_routes = tmp.join(format!("routes-{}-{n}.conf", shape.name()));
            ingest_run::write_static_routes(&static_routes, shape, n)?;
            let inp = Inputs {
                work: work.clone(),
                static_routes,
                dut_cpus: dut_cpus.clone(),
            };
            let rib_only = crate::rib::ingest(&work, DUT_ASN, FEEDER_ASN, FEEDER_IP)?;
            figures.push(json!({
                "shape": shape.name(), "prefixes": n, "dut": "tortie RIB in-process",
                "rib_s": rib_only.elapsed.as_secs_f64(), "rib_heap_bytes": rib_only.bytes,
                "bytes_per_route": rib_only.bytes_per_route(),
            }));
            for &feed in &opts.feeds {
                let mut runs: Vec<(Mode, Dut, Run)> = Vec::new();
                for _ in 0..opts.repeat.max(1) {
                    for mode in [Mode::EndToEnd, Mode::ControlPlane] {
                        let order = if seq.is_multiple_of(2) {
                            [Dut::Bird, Dut::Tortie]
                        } else {
                            [Dut::Tortie, Dut::Bird]
                        };
                        for dut in order {
                            let r =
                                ingest_run::one_run(dut, feed, mode, &inp).with_context(|| {
                                    format!(
                                        "{} {} {n} {} {}",
                                        dut.name(),
                                        shape.name(),
                                        feed.key(),
                                        mode.key()
                                    )
                                })?;
                            figures.push(run_json(shape, n, feed, mode, dut, seq, &r));
                            runs.push((mode, dut, r));
                        }
                        seq += 1;
                    }
                }
                let pick = |mode: Mode, dut: Dut| -> Vec<Run> {
                    runs.iter()
                        .filter(|(m, d, _)| *m == mode && *d == dut)
                        .map(|(_, _, r)| r.clone())
                        .collect()
                };
                let mut row_ratios =
                    json!({ "shape": shape.name(), "prefixes": n, "feeder": feed.key() });
                for mode in [Mode::EndToEnd, Mode::ControlPlane] {
                    let b = median_by(&pick(mode, Dut::Bird), |r| r.time);
                    let t = median_by(&pick(mode, Dut::Tortie), |r| r.time);
                    let rt = ratio(t.time.as_secs_f64(), b.time.as_secs_f64());
                    let label = match mode {
                        Mode::EndToEnd => "end-to-end (kernel on)",
                        Mode::ControlPlane => "control plane (kernel off)",
                    };
                    sec.rows.push(vec![
                        shape.name().into(),
                        n.to_string(),
                        feed.name().into(),
                        label.into(),
                        secs(b.time),
                        secs(t.time),
                        format!("{rt:.2}×"),
                        format!("{:.2}", b.cpu),
                        format!("{:.2}", t.cpu),
                        format!("{:.3} / {:.3}", b.feeder_cpu, t.feeder_cpu),
                    ]);
                    row_ratios[format!("{}_tortie_over_bird", mode.key())] = json!(rt);
                    row_ratios[format!("{}_cpu_tortie_over_bird", mode.key())] =
                        json!(ratio(t.cpu, b.cpu));
                    sec.target(
                        &format!("{label} {} {n} {}", shape.name(), feed.key()),
                        "≤ 0.5× BIRD",
                        format!("{rt:.2}×"),
                        rt <= 0.5,
                    );
                }
                let bpr = |dut: Dut| {
                    median_f(
                        pick(Mode::EndToEnd, dut)
                            .iter()
                            .map(|r| r.bytes_per_route(n))
                            .collect(),
                    )
                };
                let (bb, tb) = (bpr(Dut::Bird), bpr(Dut::Tortie));
                let mr = ratio(tb, bb);
                sec.rows.push(vec![
                    shape.name().into(),
                    n.to_string(),
                    feed.name().into(),
                    "peak RSS growth, B/route".into(),
                    format!("{bb:.0}"),
                    format!("{tb:.0}"),
                    format!("{mr:.2}×"),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
                row_ratios["rss_growth_per_route_tortie_over_bird"] = json!(mr);
                // Memory kept once the feeder's routes are all withdrawn
                // (issue 10): RSS 2 s after, over RSS before the load.
                let kept = |dut: Dut| {
                    median_f(
                        pick(Mode::EndToEnd, dut)
                            .iter()
                            .filter_map(|r| {
                                r.rss_withdrawn
                                    .map(|w| w as f64 / 1048576.0 - r.rss_before as f64 / 1048576.0)
                            })
                            .collect(),
                    )
                };
                let (bk, tk) = (kept(Dut::Bird), kept(Dut::Tortie));
                sec.rows.push(vec![
                    shape.name().into(),
                    n.to_string(),
                    feed.name().into(),
                    "RSS kept after withdrawal, MiB over pre-load".into(),
                    format!("{bk:.1}"),
                    format!("{tk:.1}"),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
                row_ratios["rss_kept_after_withdraw_mib"] = json!({ "bird": bk, "tortie": tk });
                sec.target(
                    &format!(
                        "peak RSS growth per route {} {n} {}",
                        shape.name(),
                        feed.key()
                    ),
                    "≤ 1× BIRD",
                    format!("{mr:.2}×"),
                    mr <= 1.0,
                );
                ratios.push(row_ratios);
            }
            sec.rows.push(vec![
                shape.name().into(),
                n.to_string(),
                "—".into(),
                "RIB heap (in-process, tortie only)".into(),
                String::new(),
                format!(
                    "{}, {:.0} B/route",
                    secs(rib_only.elapsed),
                    rib_only.bytes_per_route()
                ),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
            sec.target(
                &format!("RIB memory per route {} {n}", shape.name()),
                "≤ 100 B (live heap of decoder + RIB / N)",
                format!("{:.0} B", rib_only.bytes_per_route()),
                rib_only.bytes_per_route() <= 100.0,
            );
            if opts.feeds.contains(&Feed::Burst) {
                let rate = feeder::self_rate(&work)?;
                figures.push(json!({ "shape": shape.name(), "prefixes": n,
                    "burst_feeder_prefixes_per_s": rate, "feeder_updates": work.messages,
                    "feeder_bytes": work.bytes.len(), "feeder_build_s": work.build_time.as_secs_f64() }));
                sec.notes.push(format!(
                    "{} {n}: the burst feeder alone writes {:.2} M prefixes/s (to a discarding reader over loopback)",
                    shape.name(),
                    rate / 1e6
                ));
            }
        }
    }
    sec.figures = Value::Array(figures);
    sec.ratios = Value::Array(ratios);
    Ok(())
}
