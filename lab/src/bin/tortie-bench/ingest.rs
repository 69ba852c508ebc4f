//! Benchmark 1, BGP ingest: tortie vs BIRD 2 measured the same way in the
//! same run (issue 15 §1). Per (family, shape, size, feeder), three rows:
//!
//! - **end-to-end**: first UPDATE on the wire → all N in the DUT's kernel
//!   table, kernel install on for both (BIRD's kernel protocol exporting BGP
//!   routes; the agent as it runs in production);
//! - **control plane**: first UPDATE → all N in the DUT's RIB with kernel
//!   install off on both (BIRD without a kernel protocol; `tortie run
//!   --no-kernel`, the real agent binary), checked afterwards by a dump
//!   showing none of the N in the kernel;
//! - **kernel floor** (under the end-to-end row): the reference raw
//!   writer installing the same N prefixes with the same monitor attached,
//!   no BGP ([`ingest_floor::floor_run`]), against BIRD's end-to-end — what
//!   the kernel alone costs any DUT;
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
//! IPv4 runs carry /28s, IPv6 runs /48s in MP_REACH_NLRI (issue 11 §3),
//! each family its own rows. One run is [`crate::ingest_run::one_run`].

use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::feeder::{self, Shape, Workload};
use crate::ingest_floor::{self, FloorOrder};
use crate::ingest_run::{self, DUT_ASN, Dut, FEEDER_ASN, FEEDER_IP, Feed, Inputs, Mode, Run};
use crate::nl::Family;
use crate::pin::{self, Pinning};
use crate::report::{self, Section, ratio, ratio_cell, secs};
use crate::stats::{feeder_paced, median_by, median_f, spread, tail, time_cell};

/// Diagnostic, not a row set: `TORTIE_BENCH_ONLY=tortie` (or `BIRD`,
/// `end_to_end`, `control_plane`, or both joined by a comma, e.g.
/// `tortie,end_to_end`) runs only the runs of that DUT and/or mode, for
/// profiling one of them; the other rows show no figure. `floor` runs the
/// kernel floors too, a floor order's key (`floor_descending`, see
/// [`FloorOrder::key`]) only that order's floor.
pub const ONLY: &str = "TORTIE_BENCH_ONLY";

/// Whether the run of `dut` in `mode` passes the [`ONLY`] filter: a DUT
/// named there must be `dut`, a mode named there must be `mode`; `floor`
/// alone runs no DUT (the kernel floors only).
fn selected(dut: Dut, mode: Mode) -> bool {
    selected_by(
        std::env::var_os(ONLY)
            .map(|o| o.to_string_lossy().into_owned())
            .as_deref(),
        dut,
        mode,
    )
}

/// [`selected`] with the filter's value given.
fn selected_by(only: Option<&str>, dut: Dut, mode: Mode) -> bool {
    let Some(only) = only else {
        return true;
    };
    let only = only.to_lowercase();
    let words: Vec<&str> = only.split(',').map(str::trim).collect();
    let duts = [Dut::Bird, Dut::Tortie].map(|d| d.name().to_lowercase());
    let modes = [Mode::EndToEnd, Mode::ControlPlane].map(Mode::key);
    if words.iter().all(|w| is_floor_word(w)) {
        return false;
    }
    let names_dut = words.iter().any(|w| duts.iter().any(|d| d == w));
    let names_mode = words.iter().any(|w| modes.contains(w));
    (!names_dut || words.contains(&dut.name().to_lowercase().as_str()))
        && (!names_mode || words.contains(&mode.key()))
}

/// `floor` or a floor order's key.
fn is_floor_word(w: &str) -> bool {
    w == "floor" || FLOOR_ORDERS.iter().any(|o| o.key() == w)
}

/// Whether the kernel floor run in `order` passes the [`ONLY`] filter.
fn selected_floor(order: FloorOrder) -> bool {
    selected_floor_by(
        std::env::var_os(ONLY)
            .map(|o| o.to_string_lossy().into_owned())
            .as_deref(),
        order,
    )
}

/// [`selected_floor`] with the filter's value given: unfiltered, `floor`
/// named there (e.g. `BIRD,end_to_end,floor`), or `order`'s key.
fn selected_floor_by(only: Option<&str>, order: FloorOrder) -> bool {
    only.is_none_or(|o| {
        o.to_lowercase()
            .split(',')
            .any(|w| w.trim() == "floor" || w.trim() == order.key())
    })
}

/// Every floor order, in the order of the rows.
const FLOOR_ORDERS: [FloorOrder; 4] = [
    FloorOrder::Address,
    FloorOrder::Descending,
    FloorOrder::BitReversed,
    FloorOrder::Tiers,
];

/// The write orders the kernel floor is measured in: address order, and
/// for IPv4 also bit-reversed (the LC-trie's fastest) and the outbox's
/// tiers (the agent's IPv4 order); for IPv6 also descending (the outbox's
/// IPv6 order, the agent's) and bit-reversed.
fn floor_orders(family: Family) -> Vec<FloorOrder> {
    match family {
        Family::V4 => vec![
            FloorOrder::Address,
            FloorOrder::BitReversed,
            FloorOrder::Tiers,
        ],
        Family::V6 => vec![
            FloorOrder::Address,
            FloorOrder::Descending,
            FloorOrder::BitReversed,
        ],
    }
}

/// The kernel floor's rows under a case's end-to-end row: per write order,
/// the raw writer's median time and CPU against BIRD's end-to-end median
/// `bird` of the same runs.
fn floor_rows(
    sec: &mut Section,
    key: &[String; 4],
    bird: &Run,
    floors: &[(FloorOrder, Run)],
    ratios: &mut Value,
) {
    for order in FLOOR_ORDERS {
        let Some(f) = floor_median(floors, order) else {
            continue;
        };
        let rt = ratio(f.time.as_secs_f64(), bird.time.as_secs_f64());
        sec.rows.push(row(
            key,
            &format!("kernel floor: raw writer, {} (no BGP)", order.name()),
            [
                secs(bird.time),
                secs(f.time),
                ratio_cell(rt),
                format!("{:.2}", bird.cpu),
                format!("{:.2}", f.cpu),
                String::new(),
            ],
        ));
        ratios[format!("{}_over_bird_end_to_end", order.key())] = json!(rt);
        ratios[format!("{}_cpu_over_bird_end_to_end", order.key())] = json!(ratio(f.cpu, bird.cpu));
    }
}

/// tortie's threads in its median run of a row (the kernel thread beside
/// the runtime's workers), and under end-to-end the raw writer's thread of
/// each floor order (its median run): where the process's CPU went, and how
/// often each blocked or was preempted. `None` without figures (BIRD is
/// one thread: its CPU s is the row's).
fn thread_note(tag: &str, mode: Mode, t: &Run, floors: &[(FloorOrder, Run)]) -> Option<String> {
    if t.threads.is_empty() {
        return None;
    }
    let mut text = format!(
        "tortie's threads, {tag} {}, median run: CPU s (switches blocked / preempted) {}",
        mode.key(),
        report::thread_load_text(&t.threads)
    );
    if mode == Mode::EndToEnd {
        for order in FLOOR_ORDERS {
            if let Some(f) = floor_median(floors, order)
                && !f.threads.is_empty()
            {
                text += &format!(
                    "; raw writer, {}: {}",
                    order.name(),
                    report::thread_load_text(&f.threads)
                );
            }
        }
    }
    Some(text)
}

/// The DUT's CPUs during the median runs of a row (BIRD's, tortie's and,
/// under end-to-end, each floor order's): wall time beside what ran there
/// ([`report::CpuTimes`]) — a wall time well above the DUT's CPU s is
/// either others' work on its CPUs, idle (the DUT waited) or steal.
fn cpu_times_note(
    tag: &str,
    mode: Mode,
    [b, t]: [&Run; 2],
    floors: &[(FloorOrder, Run)],
) -> Option<String> {
    let mut parts = Vec::new();
    let mut one = |who: &str, r: &Run| {
        if let Some(c) = &r.dut_cpu_times {
            parts.push(format!(
                "{who} {:.2} s wall: {}",
                r.time.as_secs_f64(),
                c.text(r.cpu)
            ));
        }
    };
    one("BIRD", b);
    one("tortie", t);
    if mode == Mode::EndToEnd {
        for order in FLOOR_ORDERS {
            if let Some(f) = floor_median(floors, order) {
                one(&format!("raw writer, {}", order.name()), &f);
            }
        }
    }
    (!parts.is_empty()).then(|| {
        format!(
            "the DUT's CPUs, {tag} {}, median runs: {}",
            mode.key(),
            parts.join("; ")
        )
    })
}

/// What to run.
pub struct Options {
    pub families: Vec<Family>,
    pub sizes: Vec<u32>,
    pub shapes: Vec<Shape>,
    pub feeds: Vec<Feed>,
    /// IPv6 only for this (shape, feeder) rather than every one: the CI
    /// smoke's cheap IPv6 pass.
    pub v6_only: Option<(Shape, Feed)>,
    pub waits: ingest_run::Waits,
    pub repeat: u32,
    pub pinning: Pinning,
}

/// The run of median time among the floor's runs in `order` (none run).
fn floor_median(floors: &[(FloorOrder, Run)], order: FloorOrder) -> Option<Run> {
    let runs: Vec<Run> = floors
        .iter()
        .filter(|(o, _)| *o == order)
        .map(|(_, r)| r.clone())
        .collect();
    (!runs.is_empty()).then(|| median_by(&runs, |r| r.time))
}

/// Which (family, shape, size, feeder) the runs were of.
#[derive(Clone, Copy)]
struct Case {
    family: Family,
    shape: Shape,
    n: u32,
    feed: Feed,
    /// Also run the kernel floor ([`ingest_floor::floor_run`]): for the
    /// first feeder of a (family, shape, size) only, as it has no feeder.
    floor: bool,
}

fn run_json(c: Case, mode: Mode, dut: Dut, seq: usize, r: &Run) -> Value {
    let Case {
        family,
        shape,
        n,
        feed,
        ..
    } = c;
    json!({
        "family": family.name(), "shape": shape.name(), "prefixes": n, "feeder": feed.key(), "mode": mode.key(),
        "dut": dut.name(), "sequence": seq,
        "rib_s": r.rib.map(|k| k.as_secs_f64()), "kernel_s": r.kernel.map(|k| k.as_secs_f64()),
        "rib_polled_s": r.rib_polled.map(|k| k.as_secs_f64()),
        "end_window_s": r.end_window.map(|w| w.as_secs_f64()), "dut_polls": r.polls,
        "dut_poll_cpu_s": r.poll_cpu.map(|c| c.as_secs_f64()),
        "feeder_last_update_s": r.feeder_done.map(|d| d.as_secs_f64()),
        "feeder_segments": r.wire.segments, "dut_zero_windows": r.wire.zero_windows,
        "capture_drops": r.wire.drops,
        "rss_before_bytes": r.rss_before, "peak_rss_bytes": r.hwm, "rss_after_steady_bytes": r.rss_after,
        "rss_after_withdraw_bytes": r.rss_withdrawn,
        "rss_growth_bytes_per_route": r.bytes_per_route(n),
        "dut_cpu_s": r.cpu, "feeder_cpu_s": r.feeder_cpu, "dut_threads": r.threads,
        "dut_cpus_times_s": r.dut_cpu_times,
        "dut_cpus": r.dut_cpus, "feeder_cpus": r.feeder_cpus,
        "kernel_monitor_fell_back_to_dumps": r.monitor_fell_back,
    })
}

pub fn run(opts: &Options) -> Result<Section> {
    let mut sec = Section::new(
        "BGP ingest (tortie vs BIRD, like for like)",
        "Per family, shape, size and feeder, three rows, tortie and BIRD 2 measured the same way in the same run, each in fresh namespaces (feeder ↔ DUT over a veth, eBGP 65001 → 64512, an IPv4 session). IPv4 rows: N /28s; IPv6 rows: N /48s in MP_REACH_NLRI with the feeder's IPv6 address on the link as next hop, both families negotiated on both DUTs (BIRD: ipv4 and ipv6 channels; tortie: `families = [\"ipv4\", \"ipv6\"]`). t0 = the first UPDATE leaving the feeder, seen by a packet socket on its veth (the same for both feeders and DUTs). **end-to-end** = t0 → all N prefixes of the DUT's protocol in its kernel table (netlink route events; the DUT is not polled), kernel install on for both. **control plane** = t0 → all N in the DUT's RIB with kernel install off on both (BIRD: no kernel protocol, \"Routes: N imported\" on its control socket; tortie: `tortie run --no-kernel`, `routes_received` from GET /v1/status; both polled every 10 ms, the end placed inside the last interval by the DUT's CPU clock sampled every 0.5 ms: when it reached its value at the answer less one poll's measured cost; afterwards a dump checks none of the N reached the kernel). **feeder's last UPDATE left** = t0 → the feeder's last segment with UPDATE content, from the same packet socket: the row's floor (DUT zero windows: how often the DUT's receive window closed on the feeder). **RSS growth/route** = (VmHWM − VmRSS before the load) / N of the DUT process, end-to-end runs. **RSS kept after withdrawal** = VmRSS 2 s after the feeder's session went down and every route left the kernel, minus VmRSS before the load (end-to-end runs; tortie runs with graceful restart off; `--smoke` waits 0.3 s, and 0.2 s instead of 1 s for the steady state). Feeders: **live** = BIRD 2 holding the routes in a static protocol that is enabled once the session is up (a real peer's process; its control socket is poked every 10 ms, BIRD 2.0.12's end-of-export stall); **burst** = the bench's pre-built UPDATE bytes written in 256 KiB chunks. CPU s = user + system seconds of the DUT process (all threads) and of the feeder (BIRD process; the writer thread) during the load, from their CPU clocks (ns). Medians of the repeated runs (DUT order alternating; times with the runs' min–max); ratios are tortie / BIRD of the medians (lower is better). RIB heap (in-process) = the burst workload's bytes decoded and applied to tortie's `Rib` in the bench process, live heap counted (a tortie-only figure).",
    );
    sec.header = [
        "family",
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
        "families": opts.families.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "prefixes": opts.sizes,
        "shapes": opts.shapes.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "feeders": opts.feeds.iter().map(|f| f.key()).collect::<Vec<_>>(),
        "repeat": opts.repeat,
        "waits_s": { "settle": opts.waits.settle.as_secs_f64(), "steady": opts.waits.steady.as_secs_f64(),
                     "withdrawn": opts.waits.withdrawn.as_secs_f64() },
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
    for &family in &opts.families {
        for &shape in &opts.shapes {
            let feeds: Vec<Feed> = match opts.v6_only {
                Some((s, f)) if family == Family::V6 => {
                    if s != shape {
                        continue;
                    }
                    vec![f]
                }
                _ => opts.feeds.clone(),
            };
            for &n in &opts.sizes {
                let nh = ingest_run::feeder_next_hop(family);
                let work = Arc::new(Workload::build(shape, family, n, FEEDER_ASN, nh)?);
                let static_routes = tmp.join(format!(
                    "routes-{}-{}-{n}.conf",
                    family.name(),
                    shape.name()
                ));
                ingest_run::write_static_routes(&static_routes, shape, family, n)?;
                let inp = Inputs {
                    work: work.clone(),
                    static_routes,
                    dut_cpus: dut_cpus.clone(),
                    waits: opts.waits,
                };
                let rib_only = crate::rib::ingest(&work, DUT_ASN, FEEDER_ASN, FEEDER_IP)?;
                figures.push(json!({
                    "family": family.name(), "shape": shape.name(), "prefixes": n,
                    "dut": "tortie RIB in-process",
                    "rib_s": rib_only.elapsed.as_secs_f64(), "rib_heap_bytes": rib_only.bytes,
                    "bytes_per_route": rib_only.bytes_per_route(),
                }));
                for (k, &feed) in feeds.iter().enumerate() {
                    let case = Case {
                        family,
                        shape,
                        n,
                        feed,
                        floor: k == 0 && FLOOR_ORDERS.into_iter().any(selected_floor),
                    };
                    measure_case(opts, sec, case, &inp, &mut seq, &mut figures, &mut ratios)?;
                }
                let key = row_key(family, shape, n, "—");
                sec.rows.push(row(
                    &key,
                    "RIB heap (in-process, tortie only)",
                    [
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
                    ],
                ));
                sec.target(
                    &format!(
                        "RIB memory per route {} {} {n}",
                        family.name(),
                        shape.name()
                    ),
                    "≤ 100 B (live heap of decoder + RIB / N)",
                    format!("{:.0} B", rib_only.bytes_per_route()),
                    rib_only.bytes_per_route() <= 100.0,
                );
                if feeds.contains(&Feed::Burst) {
                    let rate = feeder::self_rate(&work)?;
                    figures.push(json!({ "family": family.name(), "shape": shape.name(), "prefixes": n,
                        "burst_feeder_prefixes_per_s": rate, "feeder_updates": work.messages,
                        "feeder_bytes": work.bytes.len(), "feeder_build_s": work.build_time.as_secs_f64() }));
                    sec.notes.push(format!(
                        "{} {} {n}: the burst feeder alone writes {:.2} M prefixes/s (to a discarding reader over loopback)",
                        family.name(),
                        shape.name(),
                        rate / 1e6
                    ));
                }
            }
        }
    }
    sec.figures = Value::Array(figures);
    sec.ratios = Value::Array(ratios);
    Ok(())
}

/// The first columns of a row: family, shape, N, feeder.
fn row_key(family: Family, shape: Shape, n: u32, feeder: &str) -> [String; 4] {
    [
        family.name().into(),
        shape.name().into(),
        n.to_string(),
        feeder.into(),
    ]
}

fn row(key: &[String; 4], measure: &str, rest: [String; 6]) -> Vec<String> {
    let mut r = key.to_vec();
    r.push(measure.into());
    r.extend(rest);
    r
}

/// Every run of one (family, shape, size, feeder): `repeat` times each mode
/// for both DUTs, the first DUT alternating; then the rows.
fn measure_case(
    opts: &Options,
    sec: &mut Section,
    case: Case,
    inp: &Inputs,
    seq: &mut usize,
    figures: &mut Vec<Value>,
    ratios: &mut Vec<Value>,
) -> Result<()> {
    let Case {
        family,
        shape,
        n,
        feed,
        floor,
    } = case;
    let tag = format!("{} {} {n} {}", family.name(), shape.name(), feed.key());
    let mut runs: Vec<(Mode, Dut, Run)> = Vec::new();
    let mut floors: Vec<(ingest_floor::FloorOrder, Run)> = Vec::new();
    for rep in 0..opts.repeat.max(1) {
        for mode in [Mode::EndToEnd, Mode::ControlPlane] {
            let order = if seq.is_multiple_of(2) {
                [Dut::Bird, Dut::Tortie]
            } else {
                [Dut::Tortie, Dut::Bird]
            };
            for dut in order {
                if !selected(dut, mode) {
                    continue;
                }
                // A failed run is reported and the rest measured: the
                // row's figures come from the runs that did not fail.
                match ingest_run::one_run(dut, feed, mode, inp) {
                    Ok(r) => {
                        figures.push(run_json(case, mode, dut, *seq, &r));
                        runs.push((mode, dut, r));
                    }
                    Err(e) => {
                        let what =
                            format!("{} {tag} {} (run {seq}): {e:#}", dut.name(), mode.key());
                        eprintln!("tortie-bench: failed: {what}");
                        figures.push(json!({
                            "family": family.name(), "shape": shape.name(), "prefixes": n,
                            "feeder": feed.key(), "mode": mode.key(), "dut": dut.name(),
                            "seq": *seq, "error": format!("{e:#}"),
                        }));
                        sec.errors.push(what);
                    }
                }
            }
            *seq += 1;
        }
        if floor {
            // The orders rotate from one repeat to the next, so no order
            // always follows the same one (a namespace's routes are freed
            // after it is gone, while the next run writes).
            let mut orders = floor_orders(family);
            orders.retain(|o| selected_floor(*o));
            let k = rep as usize % orders.len().max(1);
            orders.rotate_left(k);
            for order in orders {
                let r = match ingest_floor::floor_run(order, inp) {
                    Ok(r) => r,
                    Err(e) => {
                        sec.errors
                            .push(format!("kernel floor {tag} {}: {e:#}", order.name()));
                        continue;
                    }
                };
                let mut j = run_json(case, Mode::EndToEnd, Dut::Tortie, *seq, &r);
                j["dut"] = json!(format!("raw writer ({})", order.name()));
                j["floor"] = json!(order.key());
                figures.push(j);
                floors.push((order, r));
            }
        }
    }
    let pick = |mode: Mode, dut: Dut| -> Vec<Run> {
        runs.iter()
            .filter(|(m, d, _)| *m == mode && *d == dut)
            .map(|(_, _, r)| r.clone())
            .collect()
    };
    let key = row_key(family, shape, n, feed.name());
    let mut row_ratios = json!({ "family": family.name(), "shape": shape.name(), "prefixes": n, "feeder": feed.key() });
    for mode in [Mode::EndToEnd, Mode::ControlPlane] {
        let b = median_by(&pick(mode, Dut::Bird), |r| r.time);
        let t = median_by(&pick(mode, Dut::Tortie), |r| r.time);
        // No ratio unless both DUTs have runs (a failed run, or a
        // `TORTIE_BENCH_ONLY` diagnostic run, leaves a side empty).
        let both = !pick(mode, Dut::Bird).is_empty() && !pick(mode, Dut::Tortie).is_empty();
        let of_both = |a: f64, b: f64| if both { ratio(a, b) } else { f64::NAN };
        let rt = of_both(t.time.as_secs_f64(), b.time.as_secs_f64());
        let label = match mode {
            Mode::EndToEnd => "end-to-end (kernel on)",
            Mode::ControlPlane => "control plane (kernel off)",
        };
        let times = |dut: Dut| -> Vec<f64> {
            pick(mode, dut)
                .iter()
                .map(|r| r.time.as_secs_f64())
                .collect()
        };
        sec.rows.push(row(
            &key,
            label,
            [
                time_cell(&times(Dut::Bird)),
                time_cell(&times(Dut::Tortie)),
                ratio_cell(rt),
                format!("{:.3}", b.cpu),
                format!("{:.3}", t.cpu),
                format!("{:.3} / {:.3}", b.feeder_cpu, t.feeder_cpu),
            ],
        ));
        // The feeder-bound floor: when the feeder's last UPDATE left.
        let done = |dut: Dut| -> Vec<f64> {
            pick(mode, dut)
                .iter()
                .filter_map(|r| r.feeder_done.map(|d| d.as_secs_f64()))
                .collect()
        };
        let zero_windows = |dut: Dut| {
            median_f(
                pick(mode, dut)
                    .iter()
                    .map(|r| r.wire.zero_windows as f64)
                    .collect(),
            )
        };
        sec.rows.push(row(
            &key,
            "↳ feeder's last UPDATE left (t0 +): the row's floor",
            [
                time_cell(&done(Dut::Bird)),
                time_cell(&done(Dut::Tortie)),
                String::new(),
                String::new(),
                String::new(),
                format!(
                    "DUT zero windows {:.0} / {:.0}",
                    zero_windows(Dut::Bird),
                    zero_windows(Dut::Tortie)
                ),
            ],
        ));
        // What the DUT itself took: its end after the feeder's last UPDATE.
        let tails = |dut: Dut| -> Vec<f64> {
            pick(mode, dut)
                .iter()
                .filter_map(|r| r.feeder_done.map(|d| tail(r.time, d)))
                .collect()
        };
        let (tb, tt) = (median_f(tails(Dut::Bird)), median_f(tails(Dut::Tortie)));
        let tail_ratio = of_both(tt, tb);
        sec.rows.push(row(
            &key,
            "↳ DUT's end after the feeder's last UPDATE (time − floor)",
            [
                time_cell(&tails(Dut::Bird)),
                time_cell(&tails(Dut::Tortie)),
                ratio_cell(tail_ratio),
                String::new(),
                String::new(),
                String::new(),
            ],
        ));
        let paced = both
            && feeder_paced(tb, b.time.as_secs_f64(), zero_windows(Dut::Bird))
            && feeder_paced(tt, t.time.as_secs_f64(), zero_windows(Dut::Tortie));
        if paced {
            sec.notes.push(format!(
                "{label} {tag}: feeder-paced — BIRD ends {:.0} ms and tortie {:.0} ms after the feeder's last UPDATE \
                 (medians), so the wall ratio {rt:.2}× is the feeder's pace in each DUT's runs, not the DUT's; \
                 DUT CPU {:.2}×, after the feeder {tail_ratio:.2}×",
                tb * 1e3,
                tt * 1e3,
                of_both(t.cpu, b.cpu),
            ));
        }
        let cpus = |dut: Dut| -> Vec<f64> { pick(mode, dut).iter().map(|r| r.cpu).collect() };
        row_ratios[format!("{}_spread_s", mode.key())] = json!({
            "what": "min, median, max of the runs",
            "bird": spread(times(Dut::Bird)), "tortie": spread(times(Dut::Tortie)),
            "bird_cpu": spread(cpus(Dut::Bird)), "tortie_cpu": spread(cpus(Dut::Tortie)),
            "bird_feeder_last_update": spread(done(Dut::Bird)),
            "tortie_feeder_last_update": spread(done(Dut::Tortie)),
            "bird_after_feeder": spread(tails(Dut::Bird)),
            "tortie_after_feeder": spread(tails(Dut::Tortie)),
        });
        row_ratios[format!("{}_after_feeder_tortie_over_bird", mode.key())] = json!(tail_ratio);
        row_ratios[format!("{}_feeder_paced", mode.key())] = json!(paced);
        row_ratios[format!("{}_tortie_over_bird", mode.key())] = json!(rt);
        row_ratios[format!("{}_cpu_tortie_over_bird", mode.key())] = json!(of_both(t.cpu, b.cpu));
        // A diagnostic run without one of the DUTs judges nothing.
        if rt.is_finite() {
            let paced_mark = if paced { " (feeder-paced)" } else { "" };
            sec.target(
                &format!("{label} {tag}"),
                "≤ 0.5× BIRD",
                format!("{rt:.2}×{paced_mark}"),
                rt <= 0.5,
            );
        }
        if mode == Mode::EndToEnd {
            floor_rows(sec, &key, &b, &floors, &mut row_ratios);
        }
        if let Some(n) = thread_note(&tag, mode, &t, &floors) {
            sec.notes.push(n);
        }
        if let Some(n) = cpu_times_note(&tag, mode, [&b, &t], &floors) {
            sec.notes.push(n);
        }
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
    sec.rows.push(row(
        &key,
        "peak RSS growth, B/route",
        [
            format!("{bb:.0}"),
            format!("{tb:.0}"),
            ratio_cell(mr),
            String::new(),
            String::new(),
            String::new(),
        ],
    ));
    row_ratios["rss_growth_per_route_tortie_over_bird"] = json!(mr);
    // Memory kept once the feeder's routes are all withdrawn (issue 10): RSS
    // `waits.withdrawn` after, over RSS before the load.
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
    sec.rows.push(row(
        &key,
        "RSS kept after withdrawal, MiB over pre-load",
        [
            format!("{bk:.1}"),
            format!("{tk:.1}"),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ],
    ));
    row_ratios["rss_kept_after_withdraw_mib"] = json!({ "bird": bk, "tortie": tk });
    if mr.is_finite() {
        sec.target(
            &format!("peak RSS growth per route {tag}"),
            "≤ 1× BIRD",
            format!("{mr:.2}×"),
            mr <= 1.0,
        );
    }
    ratios.push(row_ratios);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_filter_picks_runs() {
        let all = |only: Option<&str>| {
            [Dut::Bird, Dut::Tortie]
                .into_iter()
                .flat_map(|d| [Mode::EndToEnd, Mode::ControlPlane].map(|m| (d, m)))
                .filter(|&(d, m)| selected_by(only, d, m))
                .count()
        };
        assert_eq!(all(None), 4);
        assert_eq!(all(Some("floor")), 0, "the floors alone");
        assert_eq!(all(Some("tortie,floor")), 2);
        assert_eq!(all(Some("tortie,end_to_end")), 1);
        assert_eq!(all(Some("floor_descending")), 0, "one floor alone");
        let floors = |only: Option<&str>| {
            FLOOR_ORDERS
                .into_iter()
                .filter(|&o| selected_floor_by(only, o))
                .collect::<Vec<_>>()
        };
        assert_eq!(floors(None), FLOOR_ORDERS);
        assert_eq!(floors(Some("tortie")), []);
        assert_eq!(floors(Some("BIRD,floor")), FLOOR_ORDERS);
        assert_eq!(
            floors(Some("floor_address,floor_descending")),
            [FloorOrder::Address, FloorOrder::Descending]
        );
        assert!(selected_by(
            Some("BIRD,control_plane"),
            Dut::Bird,
            Mode::ControlPlane
        ));
    }
}
