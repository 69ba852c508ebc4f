//! Smoke test of `tortie-bench scale` (root, issue 16): a generated lab of 20
//! tortie nodes behind 2 tortie route reflectors, 2 containers each, BFD on
//! every session, played by the netns runner, must converge, carry a new
//! container's /32 to every node, withdraw a downed node's block everywhere
//! (through BFD, before the hold timer could), report the table and the
//! JSON fields, and leave nothing behind — also when interrupted (SIGINT).
//! Figures are not judged: benchmarks are not timed tests.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

fn lab_namespaces(pid: u32) -> Vec<String> {
    let prefix = format!("clab-sc{}x", pid % 100_000);
    tortie_lab::netns::list_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

#[test]
fn scale_smoke_runs_and_leaves_nothing() {
    if !tortie_lab::require_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("scale.json");
    let child = Command::new(env!("CARGO_BIN_EXE_tortie-bench"))
        // BFD on: a downed node is found in ≤ 0.9 s, not after the 9 s hold
        // timer, which keeps the smoke short and runs the BFD path.
        .args(["scale", "--smoke", "--bfd", "on", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running tortie-bench");
    let pid = child.id();
    let run = child.wait_with_output().expect("tortie-bench output");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "tortie-bench scale --smoke failed ({}):\n{stdout}\n{stderr}",
        run.status
    );
    assert!(stdout.contains("### Scale"), "{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("JSON written"))
        .expect("valid JSON");
    let f = &report["sections"][0]["figures"][0];
    assert_eq!(f["nodes"], 20, "{f:#}");
    assert_eq!(f["mode"], "rr");
    assert_eq!(f["agents"], 22, "20 nodes + 2 tortie reflectors: {f:#}");
    assert_eq!(f["bfd"], true, "{f:#}");
    // Not a timing target but which mechanism acted: the hold timer (9 s,
    // keepalives every 3 s) cannot expire before 6 s after the link went down
    // (without BFD the smoke measured 6.8–8.8 s), BFD (300 ms × 3) found it in
    // 0.75 s on a loaded machine.
    let down = f["node_down_withdrawn_s"].as_f64().unwrap_or(f64::NAN);
    assert!(down < 5.0, "node down took {down} s with BFD: {f:#}");
    for key in [
        "cold_start_converged_s",
        "new_route_p50_ms",
        "new_route_p99_ms",
        "node_down_withdrawn_s",
        "agents_cpu_s_total",
        "bgp_messages_per_node",
    ] {
        assert!(f[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {f:#}");
    }
    for key in ["agent_rss_kib_max", "agents_rss_kib_total"] {
        assert!(f[key].as_u64().is_some_and(|v| v > 0), "{key}: {f:#}");
    }
    assert!(lab_namespaces(pid).is_empty(), "{:?}", lab_namespaces(pid));
}

#[test]
fn scale_interrupted_leaves_nothing() {
    if !tortie_lab::require_root() {
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_tortie-bench"))
        .args(["scale", "--smoke"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running tortie-bench");
    let pid = child.id();
    // Interrupt once the lab is partly built.
    let t = std::time::Instant::now();
    while lab_namespaces(pid).len() < 10 && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!lab_namespaces(pid).is_empty(), "the lab never started");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "{status}");
    assert!(lab_namespaces(pid).is_empty(), "{:?}", lab_namespaces(pid));
    // Nothing appears afterwards either (a creation under way at SIGINT).
    std::thread::sleep(Duration::from_secs(1));
    assert!(lab_namespaces(pid).is_empty(), "{:?}", lab_namespaces(pid));
    let tmp: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join(format!("sc{}x0", pid % 100_000)))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    assert!(tmp.is_empty(), "work dirs left: {tmp:?}");
    let agents = Command::new("pgrep")
        .args(["-f", &format!("sc{}x[0-9]", pid % 100_000)])
        .output()
        .expect("pgrep");
    assert!(
        String::from_utf8_lossy(&agents.stdout).trim().is_empty(),
        "processes left: {}",
        String::from_utf8_lossy(&agents.stdout)
    );
}
