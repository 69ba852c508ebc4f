//! Shared driver for the QEMU guest tests (`vm_ipip.rs`, `vm_lab.rs`): root check, `lab/vm/setup`,
//! building binaries for the test's own profile, and one `lab/vm/run-guest` run judged by the
//! guest's first `TORTIE-VM-RESULT:` line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Upper bound for one guest run (the guest's own watchdog fires at 150 s); a run takes
/// ≈13 s (`vm_lab`) to ≈55 s (`vm_ipip`, three agent starts) under TCG on 2 loaded cores.
const GUEST_TIMEOUT_SECS: u32 = 180;
const PASS_MARKER: &str = "TORTIE-VM-RESULT: PASS";

/// False (after printing "skipped") when not root outside CI; panics when not root under CI.
pub fn root_or_skip() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the VM test needs root (installs QEMU, builds an initramfs with device nodes)"
    );
    eprintln!("skipped: needs root");
    false
}

pub fn workspace_root() -> PathBuf {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR"));
    lab.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| lab.to_path_buf())
}

/// `target/<profile>` of this test binary (`…/target/<profile>/deps/<test>-<hash>`), so the
/// binaries are taken from (and built into) the same profile and target dir.
pub fn profile_dir() -> PathBuf {
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

/// Runs `lab/vm/setup` (idempotent: QEMU and a cached stock kernel); returns how long it took.
pub fn setup() -> Duration {
    let root = workspace_root();
    let t = Instant::now();
    run(
        "lab/vm/setup",
        Command::new(root.join("lab/vm/setup")).current_dir(&root),
    );
    t.elapsed()
}

/// `cargo build --quiet ARGS` for this test's profile and target dir (a no-op when fresh);
/// returns `target/<profile>`.
pub fn cargo_build(args: &[&str]) -> PathBuf {
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
        .args(["build", "--quiet"])
        .args(args)
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
    run(&format!("cargo build {}", args.join(" ")), &mut cmd);
    dir
}

/// Boots the guest with `lab/vm/run-guest ARGS`; asserts it succeeded and that the guest's first
/// result line is a pass. Returns the guest's stdout (the serial log) and the run's duration.
pub fn run_guest(args: &[OsString]) -> (String, Duration) {
    let root = workspace_root();
    let t = Instant::now();
    let out = Command::new(root.join("lab/vm/run-guest"))
        .current_dir(&root)
        .args(args)
        .arg("--timeout")
        .arg(GUEST_TIMEOUT_SECS.to_string())
        .output()
        .expect("running lab/vm/run-guest");
    let vm = t.elapsed();
    let log = show("lab/vm/run-guest", &out);
    assert!(out.status.success(), "{log}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let first_marker = stdout
        .lines()
        .map(str::trim_end)
        .find(|l| l.starts_with("TORTIE-VM-RESULT:"));
    assert_eq!(
        first_marker,
        Some(PASS_MARKER),
        "run-guest succeeded but the guest's first result line is not a pass\n{log}"
    );
    (stdout, vm)
}
