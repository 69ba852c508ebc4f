//! Smoke test of `tortie-bench` (root): every benchmark at its small CI size
//! (`--smoke`: ingest 2k prefixes, IPv4 with both shapes and both feeders,
//! IPv6 (/48s in MP_REACH_NLRI) packed with the live feeder, end-to-end and
//! control plane for BIRD and tortie, one run each; kernel 10k routes of each
//! family (IPv4 /32s, IPv6 /64s), attach
//! 20 pairs, convergence 5 attaches per row (two-nodes block/hosts, leaf-spine), idle 10 containers for 5 s)
//! must finish, print its table and write the JSON report with every
//! section, figures and ratios. Figures are not judged here: benchmarks are
//! not timed tests (issue 6); the full runs are recorded in lab/bench/.

use std::process::Command;

use serde_json::Value;

#[test]
fn every_benchmark_runs_at_smoke_size() {
    if !tortie_lab::require_root() {
        return;
    }
    let (stdout, report) = run_bench(&["all", "--smoke"]);
    for title in [
        "### BGP ingest",
        "### Kernel route programming",
        "### Container attach",
        "### Convergence",
        "### Idle cost",
    ] {
        assert!(stdout.contains(title), "no {title:?} table in:\n{stdout}");
    }
    assert!(report["machine"]["nproc"].as_u64().unwrap_or(0) > 0);
    assert!(!report["versions"]["bird"].as_str().unwrap_or("").is_empty());
    let sections = report["sections"].as_array().expect("sections");
    assert_eq!(sections.len(), 5, "{report:#}");
    assert!(report["errors"].as_array().is_some_and(Vec::is_empty));
    for s in sections {
        assert!(!s["rows"].as_array().expect("rows").is_empty(), "{s:#}");
        assert!(!s["figures"].is_null());
    }
    // Ingest and kernel carry tortie/anchor ratios that must be real numbers.
    let section = |name: &str| -> &Value {
        sections
            .iter()
            .find(|s| s["name"].as_str().is_some_and(|n| n.starts_with(name)))
            .unwrap_or_else(|| panic!("no {name:?} section"))
    };
    let ratio =
        |name: &str, key: &str| -> f64 { section(name)["ratios"][0][key].as_f64().expect("ratio") };
    assert!(ratio("BGP ingest", "end_to_end_tortie_over_bird") > 0.0);
    assert!(ratio("BGP ingest", "control_plane_tortie_over_bird") > 0.0);
    assert!(ratio("BGP ingest", "rss_growth_per_route_tortie_over_bird") > 0.0);
    // Like for like: every (family, shape, feeder) has the three rows for
    // both DUTs, and every run carries DUT and feeder CPU and the CPUs it was
    // pinned to.
    let ingest = section("BGP ingest");
    let ingest_ratios = ingest["ratios"].as_array().expect("ingest ratios");
    assert_eq!(ingest_ratios.len(), 4 + 1, "{ingest:#}");
    // The IPv6 row (issue 11 §3): real ratios for the three measures.
    let v6 = ingest_ratios
        .iter()
        .find(|r| r["family"] == "IPv6")
        .unwrap_or_else(|| panic!("no IPv6 ingest row in {ingest:#}"));
    assert_eq!(v6["shape"], "packed");
    assert_eq!(v6["feeder"], "live");
    for key in [
        "end_to_end_tortie_over_bird",
        "control_plane_tortie_over_bird",
        "rss_growth_per_route_tortie_over_bird",
    ] {
        assert!(v6[key].as_f64().unwrap_or(0.0) > 0.0, "{key}: {v6}");
    }
    let (floors, runs): (Vec<&Value>, Vec<&Value>) = ingest["figures"]
        .as_array()
        .expect("figures")
        .iter()
        .filter(|f| f["mode"].is_string())
        .partition(|f| f["floor"].is_string());
    assert_eq!(
        runs.len(),
        (2 * 2 + 1) * 2 * 2,
        "(IPv4 shape × feeder + IPv6) × mode × DUT"
    );
    // The kernel floor (the raw writer alone, no BGP) under the live
    // end-to-end rows: three write orders per IPv4 shape and for IPv6
    // (address, descending — the agent's IPv6 order — and bit-reversed);
    // each a real kernel time on the DUT's CPUs.
    assert_eq!(floors.len(), 3 * 2 + 3, "{floors:#?}");
    assert!(
        floors
            .iter()
            .any(|f| f["family"] == "IPv6" && f["floor"] == "floor_descending"),
        "{floors:#?}"
    );
    for f in &floors {
        assert_eq!(f["mode"], "end_to_end", "{f}");
        assert_eq!(f["feeder"], "live", "{f}");
        assert!(f["kernel_s"].as_f64().is_some_and(|k| k > 0.0), "{f}");
        assert!(f["dut_cpu_s"].as_f64().is_some_and(|c| c > 0.0), "{f}");
        assert!(!f["dut_cpus"].as_str().unwrap_or("").is_empty(), "{f}");
    }
    assert_eq!(runs.iter().filter(|r| r["family"] == "IPv6").count(), 4);
    for r in &runs {
        assert!(r["dut_cpu_s"].as_f64().is_some_and(|c| c >= 0.0), "{r}");
        // The DUT's CPUs from /proc/stat (busy, idle, steal) during the load.
        assert!(r["dut_cpus_times_s"]["idle"].is_number(), "{r}");
        assert!(r["feeder_cpu_s"].as_f64().is_some_and(|c| c >= 0.0), "{r}");
        assert!(!r["dut_cpus"].as_str().unwrap_or("").is_empty(), "{r}");
        assert_eq!(r["kernel_s"].is_null(), r["mode"] == "control_plane", "{r}");
    }
    assert!(ratio("Kernel route programming", "add_tortie_over_reference") > 0.0);
    // The kernel table has both families, each with real ratios.
    let kernel = section("Kernel route programming");
    for family in ["IPv4", "IPv6"] {
        let r = kernel["ratios"]
            .as_array()
            .expect("kernel ratios")
            .iter()
            .find(|r| r["family"] == family)
            .unwrap_or_else(|| panic!("no {family} kernel row in {kernel:#}"));
        assert!(r["add_tortie_over_reference"].as_f64().unwrap_or(0.0) > 0.0);
        assert!(r["del_tortie_over_reference"].as_f64().unwrap_or(0.0) > 0.0);
    }
    let attach = section("Container attach");
    assert!(
        attach["ratios"]["add_p50_ptp_over_tortie"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
    );
}

/// `tortie-bench loadlat --smoke` (not part of `all`): one run per DUT and
/// probe family, burst feeder, 2k IPv4 routes, the probe announced at 20 %
/// — both DUTs must install the probe's /32 and /128 and remove them again
/// (a run that never sees one of its route events fails), and every run's
/// JSON carries both latencies.
#[test]
fn the_load_latency_benchmark_runs_at_smoke_size() {
    if !tortie_lab::require_root() {
        return;
    }
    let (stdout, report) = run_bench(&[
        "loadlat", "--smoke", "--feeder", "burst", "--at", "20", "--family", "ipv4",
    ]);
    assert!(stdout.contains("### One route under load"), "{stdout}");
    let runs = report["sections"][0]["figures"]
        .as_array()
        .expect("figures");
    assert_eq!(runs.len(), 4, "{report:#}");
    for (dut, probe) in [
        ("BIRD", "IPv4"),
        ("BIRD", "IPv6"),
        ("tortie", "IPv4"),
        ("tortie", "IPv6"),
    ] {
        let r = runs
            .iter()
            .find(|r| r["dut"] == dut && r["probe_family"] == probe)
            .unwrap_or_else(|| panic!("no {dut} run with an {probe} probe in {report:#}"));
        for key in ["announce_latency_s", "withdraw_latency_s", "load_s"] {
            let v = r[key].as_f64().unwrap_or(-1.0);
            assert!(v > 0.0 && v < 60.0, "{dut} {key}: {r:#}");
        }
        // The withdrawal went after the announcement was in the kernel.
        let (a, w) = (&r["announced_at_s"], &r["withdrawn_at_s"]);
        assert!(
            a.as_f64().unwrap_or(f64::NAN) < w.as_f64().unwrap_or(f64::NAN),
            "{r:#}"
        );
    }
}

/// Runs `tortie-bench <args> --out <temp>/report.json`, fails the test
/// with its output unless it succeeded, and returns its stdout and its JSON
/// report.
fn run_bench(args: &[&str]) -> (String, Value) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("report.json");
    let run = Command::new(env!("CARGO_BIN_EXE_tortie-bench"))
        .args(args)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("running tortie-bench");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "tortie-bench {} failed ({}):\n{stdout}\n{stderr}",
        args.join(" "),
        run.status
    );
    let report = serde_json::from_str(&std::fs::read_to_string(&out).expect("JSON written"))
        .expect("valid JSON");
    (stdout, report)
}
