//! Tier 5 (DESIGN.md §8): the IP-in-IP datapath in a QEMU guest with a stock Debian kernel,
//! because this machine's kernel has no `ipip` (VM-NOTES.md, docs/vm.md).
//!
//! Flow: `lab/vm/setup` (idempotent; installs QEMU and caches a kernel once), then the guest
//! program `ipip_guest` (the lab example that drives tortie-routes) is built with cargo for the
//! same profile as this test, then `lab/vm/run-guest --guest-bin …` boots the guest, which
//! builds three nodes behind a router, attaches containers and programs routes with the tortie
//! code, and prints `TORTIE-VM-RESULT: PASS` only if the tunnel carries container pings that
//! plain routing (the negative control) cannot. The guest has no NIC: no traffic leaves it.
//!
//! Needs root. Under CI (env `CI` set) a non-root run fails instead of skipping.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

/// Upper bound for one guest run; a normal run takes ≈12 s under TCG on 2 cores.
const GUEST_TIMEOUT_SECS: u32 = 90;
const PASS_MARKER: &str = "TORTIE-VM-RESULT: PASS";

fn workspace_root() -> PathBuf {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR"));
    lab.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| lab.to_path_buf())
}

/// `target/<profile>` of this test binary (`…/target/<profile>/deps/vm_ipip-<hash>`), so the
/// guest program is taken from (and built into) the same profile and target dir.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the running test binary");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("unexpected test binary location {}", exe.display()))
}

fn show(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(what: &str, cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(out.status.success(), "{}", show(what, &out));
    out
}

/// Build the guest program with cargo (a no-op when it is fresh) and return its path.
fn guest_program() -> PathBuf {
    let dir = profile_dir();
    let profile = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug")
        .to_string();
    let target_dir = dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.clone());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args([
            "build",
            "--quiet",
            "-p",
            "tortie-lab",
            "--example",
            "ipip_guest",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    run("cargo build --example ipip_guest", &mut cmd);
    let bin = dir.join("examples").join("ipip_guest");
    assert!(bin.is_file(), "cargo built no {}", bin.display());
    bin
}

#[test]
fn ipip_datapath_in_a_qemu_guest() {
    if !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the VM test needs root (installs QEMU, builds an initramfs with device nodes)"
        );
        eprintln!("skipped: needs root");
        return;
    }
    let root = workspace_root();

    let t = Instant::now();
    run(
        "lab/vm/setup",
        Command::new(root.join("lab/vm/setup")).current_dir(&root),
    );
    let setup = t.elapsed();

    let t = Instant::now();
    let guest = guest_program();
    let build = t.elapsed();

    let t = Instant::now();
    let out = Command::new(root.join("lab/vm/run-guest"))
        .current_dir(&root)
        .arg("--guest-bin")
        .arg(&guest)
        .arg("--timeout")
        .arg(GUEST_TIMEOUT_SECS.to_string())
        .output()
        .expect("running lab/vm/run-guest");
    let vm = t.elapsed();
    let log = show("lab/vm/run-guest", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}");
    let first_marker = stdout
        .lines()
        .map(str::trim_end)
        .find(|l| l.starts_with("TORTIE-VM-RESULT:"));
    assert_eq!(
        first_marker,
        Some(PASS_MARKER),
        "run-guest succeeded but the guest's first result line is not a pass\n{log}"
    );
    eprintln!(
        "vm_ipip: setup {:.1} s, guest build {:.1} s, VM {:.1} s",
        setup.as_secs_f64(),
        build.as_secs_f64(),
        vm.as_secs_f64()
    );
}
