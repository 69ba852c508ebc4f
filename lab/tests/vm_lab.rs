//! Topology 5 (`ipip-cross-subnet`) played with the real runner inside the QEMU guest, because
//! this machine's kernel has no `ipip` (VM-NOTES.md, docs/vm.md, docs/lab.md).
//!
//! Flow: `lab/vm/setup` (idempotent; installs QEMU and caches a stock Debian kernel once), then
//! `tortie` and `tortie-lab` are built with cargo for the same profile as this test, then
//! `lab/vm/run-guest --lab lab/topologies/ipip-cross-subnet.clab.yml --bin … --bin …` boots the
//! guest, whose scenario (`lab/vm/guest/lab.sh`) runs `tortie-lab up` on the file, waits until
//! every node's `tortie status -o json` shows all its configured peers Established, pings every
//! container from every other one, checks each learned block's kernel route (`dev tunl0 onlink`
//! towards the other subnet, plain inside the subnet) and the tunl0 counters, runs
//! `tortie-lab down` and checks nothing is left. It prints `TORTIE-VM-RESULT: PASS` only if
//! every check passed. The guest has no NIC: no traffic leaves it.
//!
//! Needs root. Under CI (env `CI` set) a non-root run fails instead of skipping.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

/// Upper bound for one guest run; a normal run takes ≈13 s under TCG on 2 cores.
const GUEST_TIMEOUT_SECS: u32 = 90;
const PASS_MARKER: &str = "TORTIE-VM-RESULT: PASS";
const TOPOLOGY: &str = "lab/topologies/ipip-cross-subnet.clab.yml";

fn workspace_root() -> PathBuf {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR"));
    lab.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| lab.to_path_buf())
}

/// `target/<profile>` of this test binary (`…/target/<profile>/deps/vm_lab-<hash>`), so the
/// binaries are taken from (and built into) the same profile and target dir.
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

/// Builds `tortie` and `tortie-lab` with cargo (a no-op when fresh) and returns their paths.
fn binaries() -> (PathBuf, PathBuf) {
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
            "tortie-agent",
            "--bin",
            "tortie",
            "-p",
            "tortie-lab",
            "--bin",
            "tortie-lab",
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
    run("cargo build tortie tortie-lab", &mut cmd);
    let tortie = dir.join("tortie");
    let lab = dir.join("tortie-lab");
    for b in [&tortie, &lab] {
        assert!(b.is_file(), "cargo built no {}", b.display());
    }
    (tortie, lab)
}

#[test]
fn ipip_cross_subnet_topology_in_a_qemu_guest() {
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
    let (tortie, lab) = binaries();
    let build = t.elapsed();

    let t = Instant::now();
    let out = Command::new(root.join("lab/vm/run-guest"))
        .current_dir(&root)
        .arg("--lab")
        .arg(root.join(TOPOLOGY))
        .arg("--bin")
        .arg(&tortie)
        .arg("--bin")
        .arg(&lab)
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
    // The checks that make this topology's point must have run, not just "no failure".
    for needle in [
        "configured peers Established",
        "goes through tunl0 onlink",
        "is plain",
        "container pairs ping",
        "crossed n1's tunl0",
        "no namespace of lab ipip-cross-subnet left",
    ] {
        assert!(
            stdout.contains(needle),
            "guest log lacks the check {needle:?}\n{log}"
        );
    }
    eprintln!(
        "vm_lab: setup {:.1} s, build {:.1} s, VM {:.1} s",
        setup.as_secs_f64(),
        build.as_secs_f64(),
        vm.as_secs_f64()
    );
}
