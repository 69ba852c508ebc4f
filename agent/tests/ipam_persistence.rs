//! IPAM across restarts and crashes: state reloaded, every returned address on
//! disk (checked by SIGKILLing a child process mid-burst), reconcile with the
//! attached containers, corrupt files refused, one process per state dir.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use ipnetwork::Ipv4Network;
use tortie_agent::ipam::{Ipam, IpamError, ReconcileReport};

const CHILD_ENV: &str = "TORTIE_IPAM_TEST_CHILD_DIR";
const CHILD_MODE_ENV: &str = "TORTIE_IPAM_TEST_CHILD_MODE";

fn net(s: &str) -> Ipv4Network {
    s.parse().expect("test network")
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

fn open(dir: &Path) -> Ipam {
    Ipam::open(dir, net("10.244.1.0/26"), &[]).expect("open")
}

#[test]
fn allocations_and_cursor_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = {
        let mut ipam = open(dir.path());
        let a = ipam.allocate("a", None).expect("a");
        let b = ipam.allocate("b", None).expect("b");
        ipam.release("a").expect("release");
        (a, b)
    };
    let mut ipam = open(dir.path());
    assert_eq!(ipam.get("a"), None);
    assert_eq!(ipam.get("b"), Some(b));
    // The cursor was persisted: the next address is neither b nor the
    // just-released a.
    let c = ipam.allocate("c", None).expect("c");
    assert!(c != a && c != b, "a={a} b={b} c={c}");
    let text = std::fs::read_to_string(dir.path().join("ipam.json")).expect("state file");
    assert!(text.contains("\"version\": 1"), "{text}");
}

#[test]
fn a_second_process_cannot_share_the_state_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = open(dir.path());
    let err = Ipam::open(dir.path(), net("10.244.1.0/26"), &[]).expect_err("second open");
    assert!(matches!(err, IpamError::Locked { .. }), "{err:?}");
    drop(first);
    open(dir.path());
}

#[test]
fn a_stray_temp_file_from_a_crash_mid_write_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = open(dir.path()).allocate("a", None).expect("a");
    // Died after writing the temp file, before the rename: the old file rules.
    std::fs::write(dir.path().join("ipam.json.tmp"), b"{\"version\":1,\"garb").expect("tmp");
    let mut ipam = open(dir.path());
    assert_eq!(ipam.get("a"), Some(a));
    assert_ne!(ipam.allocate("b", None).expect("b"), a);
}

#[test]
fn a_failed_write_allocates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ipam = open(dir.path());
    // A directory where the temp file goes makes the write fail (even as root).
    let tmp = dir.path().join("ipam.json.tmp");
    std::fs::create_dir(&tmp).expect("mkdir");
    let err = ipam.allocate("a", None).expect_err("write must fail");
    assert!(matches!(err, IpamError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("ipam.json.tmp"), "{err}");
    assert_eq!(ipam.get("a"), None);
    std::fs::remove_dir(&tmp).expect("rmdir");
    // Nothing was consumed by the failed attempt: a fresh pool's first address.
    assert_eq!(ipam.allocate("a", None).expect("a"), ip("10.244.1.0"));
}

#[test]
fn reconcile_frees_what_is_not_attached_keeps_and_adopts_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (attached_addr, lost_addr, tunnel) = {
        let mut ipam = open(dir.path());
        let tunnel = ipam.allocate_tunnel().expect("tunnel");
        let attached = ipam.allocate("running", None).expect("running");
        // The agent "dies" between allocate and attach of this one.
        let lost = ipam.allocate("never-attached", None).expect("lost");
        (attached, lost, tunnel)
    };
    let mut ipam = open(dir.path());
    assert_eq!(
        ipam.get("never-attached"),
        Some(lost_addr),
        "allocation lost in the crash"
    );
    let report = ipam
        .reconcile(&[
            ("tt0123456789a".into(), attached_addr),
            ("tt00000000000".into(), ip("10.244.1.40")),
            ("tt11111111111".into(), ip("127.0.0.1")),
        ])
        .expect("reconcile");
    assert_eq!(
        report,
        ReconcileReport {
            kept: vec![
                ("running".into(), attached_addr),
                ("tortie:tunl0".into(), tunnel)
            ],
            released: vec![("never-attached".into(), lost_addr)],
            adopted: vec![("tt00000000000".into(), ip("10.244.1.40"))],
            conflicts: vec![("tt11111111111".into(), ip("127.0.0.1"))],
        }
    );
    drop(ipam);
    // The reconciled state is what the next start sees.
    let mut ipam = open(dir.path());
    assert_eq!(ipam.get("never-attached"), None);
    assert_eq!(ipam.owner(ip("10.244.1.40")), Some("tt00000000000"));
    // The freed address is not handed out right away, the adopted one never.
    for i in 0..50 {
        let a = ipam.allocate(&format!("c{i}"), None).expect("alloc");
        assert_ne!(a, lost_addr, "freed address re-used at allocation {i}");
        assert_ne!(a, ip("10.244.1.40"), "adopted address handed out");
    }
}

#[test]
fn a_corrupt_state_file_is_refused_and_left_untouched() {
    let cases: [(&[u8], &str); 5] = [
        (b"{\"version\":1,\"pool\":", "is corrupt: not a tortie IPAM file"),
        (b"\0\0\0\0", "is corrupt"),
        (b"", "is corrupt"),
        (
            b"{\"version\":9,\"pool\":\"10.0.0.0/8\"}",
            "format version 9 is not supported",
        ),
        (
            br#"{"version":1,"pool":"10.244.1.0/26","cursor":0,"allocations":[{"id":"a","address":"10.244.1.1"},{"id":"b","address":"10.244.1.1"}]}"#,
            "allocated to both",
        ),
    ];
    for (contents, expected) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ipam.json");
        std::fs::write(&path, contents).expect("write");
        let err = Ipam::open(dir.path(), net("10.244.1.0/26"), &[]).expect_err("corrupt accepted");
        let msg = err.to_string();
        assert!(matches!(err, IpamError::Corrupt { .. }), "{err:?}");
        assert!(msg.contains(expected), "{msg}");
        assert!(msg.contains("Refusing to continue"), "{msg}");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            contents,
            "file was changed"
        );
    }
}

#[test]
fn a_changed_pool_keeps_existing_allocations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = open(dir.path()).allocate("a", None).expect("a");
    let mut ipam = Ipam::open(dir.path(), net("10.245.0.0/30"), &[]).expect("new pool");
    assert_eq!(ipam.get("a"), Some(old), "a container lost its address");
    assert_eq!(ipam.counts(), (1, 4));
    let b = ipam.allocate("b", None).expect("b");
    assert!(ipam.pool().contains(b));
}

/// Runs `mode` in a child copy of this test binary (see `child_entry`), with
/// its stdout piped.
fn spawn_child(dir: &Path, mode: &str) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .env(CHILD_MODE_ENV, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child")
}

/// A line "ALLOCATED id addr" printed by the child.
fn allocated_line(line: &str) -> Option<(String, Ipv4Addr)> {
    // The test harness may print "test child_entry ... " before it.
    let (_, rest) = line.split_once("ALLOCATED ")?;
    let mut parts = rest.split(' ');
    Some((parts.next()?.to_string(), parts.next()?.parse().ok()?))
}

#[test]
fn every_returned_address_is_on_disk_when_the_process_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = spawn_child(dir.path(), "burst");
    let stdout = child.stdout.take().expect("stdout");
    let mut returned = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(entry) = allocated_line(&line) {
            returned.push(entry);
            if returned.len() == 25 {
                // SIGKILL while the child keeps allocating (likely mid-write).
                child.kill().expect("kill");
                break;
            }
        }
    }
    let status = child.wait().expect("reap");
    assert_eq!(returned.len(), 25, "child did not allocate");
    assert_eq!(
        status.signal(),
        Some(9),
        "child was not killed mid-burst: {status}"
    );
    let ipam = open(dir.path());
    for (id, addr) in &returned {
        assert_eq!(
            ipam.get(id),
            Some(*addr),
            "{id} was returned but not persisted"
        );
    }
}

#[test]
fn an_abort_right_after_allocate_keeps_the_allocation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = spawn_child(dir.path(), "abort");
    let out = child.wait_with_output().expect("child");
    assert!(!out.status.success(), "child should have aborted");
    let text = String::from_utf8_lossy(&out.stdout);
    let (id, addr) = text
        .lines()
        .find_map(allocated_line)
        .unwrap_or_else(|| panic!("no allocation printed: {text}"));
    let mut ipam = open(dir.path());
    assert_eq!(ipam.get(&id), Some(addr));
    assert_ne!(ipam.allocate("next", None).expect("next"), addr);
}

/// Not a test on its own: the body of the child process of the two tests
/// above, which run this binary with `TORTIE_IPAM_TEST_CHILD_DIR` set.
#[test]
fn child_entry() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mode = std::env::var(CHILD_MODE_ENV).unwrap_or_default();
    let mut ipam = open(Path::new(&dir));
    for i in 0..1_000_000 {
        let id = format!("c{i}");
        let addr = ipam.allocate(&id, None).expect("child alloc");
        println!("ALLOCATED {id} {addr}");
        if mode == "abort" {
            std::process::abort();
        }
        if i % 60 == 59 {
            for j in i - 59..=i {
                ipam.release(&format!("c{j}")).expect("child release");
            }
        }
    }
    // The parent kills the burst long before this.
    std::process::exit(3);
}
