//! IPAM across restarts and crashes: state reloaded, every returned address on
//! disk (checked by SIGKILLing a child process mid-burst), torn journal tails
//! recovered, reconcile with the attached containers, corrupt snapshots and
//! journals refused, one process per state dir.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use ipnetwork::IpNetwork;
use tortie_agent::ipam::{Family, Ipam, IpamError, ReconcileReport};

const CHILD_ENV: &str = "TORTIE_IPAM_TEST_CHILD_DIR";
const CHILD_MODE_ENV: &str = "TORTIE_IPAM_TEST_CHILD_MODE";

fn net(s: &str) -> Vec<IpNetwork> {
    vec![s.parse().expect("test network")]
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn open(dir: &Path) -> Ipam {
    Ipam::open(dir, &net("10.244.1.0/26"), &[]).expect("open")
}

#[test]
fn allocations_and_cursor_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = {
        let mut ipam = open(dir.path());
        let a = ipam.allocate("a", Family::V4).expect("a");
        let b = ipam.allocate("b", Family::V4).expect("b");
        ipam.release("a").expect("release");
        (a, b)
    };
    let mut ipam = open(dir.path());
    assert_eq!(ipam.get("a", Family::V4), None);
    assert_eq!(ipam.get("b", Family::V4), Some(b));
    // The cursor was persisted: the next address is neither b nor the
    // just-released a.
    let c = ipam.allocate("c", Family::V4).expect("c");
    assert!(c != a && c != b, "a={a} b={b} c={c}");
    let text = std::fs::read_to_string(dir.path().join("ipam.json")).expect("state file");
    assert!(text.contains("\"version\": 3"), "{text}");
}

#[test]
fn a_second_process_cannot_share_the_state_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = open(dir.path());
    let err = Ipam::open(dir.path(), &net("10.244.1.0/26"), &[]).expect_err("second open");
    assert!(matches!(err, IpamError::Locked { .. }), "{err:?}");
    drop(first);
    open(dir.path());
}

#[test]
fn a_stray_temp_file_from_a_crash_mid_write_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = open(dir.path()).allocate("a", Family::V4).expect("a");
    // Died after writing the temp file, before the rename: the old file rules.
    std::fs::write(dir.path().join("ipam.json.tmp"), b"{\"version\":1,\"garb").expect("tmp");
    let mut ipam = open(dir.path());
    assert_eq!(ipam.get("a", Family::V4), Some(a));
    assert_ne!(ipam.allocate("b", Family::V4).expect("b"), a);
}

#[test]
fn a_failed_snapshot_write_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = {
        let mut ipam = open(dir.path());
        ipam.allocate("a", Family::V4).expect("a")
    };
    let mut ipam = open(dir.path());
    // A directory where the temp file goes makes the write fail (even as root).
    let tmp = dir.path().join("ipam.json.tmp");
    std::fs::create_dir(&tmp).expect("mkdir");
    // reconcile writes a snapshot: it fails, and forgets what it did.
    let err = ipam.reconcile(&[]).expect_err("write must fail");
    assert!(matches!(err, IpamError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("ipam.json.tmp"), "{err}");
    assert_eq!(ipam.get("a", Family::V4), Some(a));
    // The journal is not trusted after a failed compaction: the next change
    // compacts again, and fails the same way without allocating.
    assert!(ipam.allocate("b", Family::V4).is_err());
    assert_eq!(ipam.get("b", Family::V4), None);
    drop(ipam);
    // Opening compacts too.
    let err = Ipam::open(dir.path(), &net("10.244.1.0/26"), &[]).expect_err("open");
    assert!(err.to_string().contains("ipam.json.tmp"), "{err}");
    std::fs::remove_dir(&tmp).expect("rmdir");
    let mut ipam = open(dir.path());
    assert_eq!(ipam.get("a", Family::V4), Some(a));
    let b = ipam.allocate("b", Family::V4).expect("b");
    assert_ne!(a, b);
}

/// Offsets [start, end) of the records of a journal file (format in
/// agent/src/ipam/journal.rs: 24-byte header, then 8-aligned records of
/// length u32 + crc u32 + payload).
fn journal_records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 24;
    while let Some(len) = bytes.get(pos..pos + 4) {
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        if len == 0 {
            break;
        }
        let end = pos + (8 + len).div_ceil(8) * 8;
        out.push((pos, end));
        pos = end;
    }
    out
}

/// A state dir holding `snapshot` and `journal`.
fn state_dir(snapshot: &[u8], journal: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ipam.json"), snapshot).expect("snapshot");
    std::fs::write(dir.path().join("ipam.journal"), journal).expect("journal");
    dir
}

#[test]
fn a_torn_last_record_is_dropped_and_everything_before_it_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut returned = Vec::new();
    {
        let mut ipam = open(dir.path());
        for i in 0..6 {
            let id = format!("{i:064x}");
            returned.push((id.clone(), ipam.allocate(&id, Family::V4).expect("alloc")));
        }
        ipam.release(&returned[1].0).expect("release");
        // The record that gets torn.
        returned.push((
            "last".into(),
            ipam.allocate("last", Family::V4).expect("last"),
        ));
    }
    let snapshot = std::fs::read(dir.path().join("ipam.json")).expect("snapshot");
    let journal = std::fs::read(dir.path().join("ipam.journal")).expect("journal");
    let records = journal_records(&journal);
    assert_eq!(records.len(), 8);
    let (start, end) = records[7];
    let durable: Vec<_> = returned[..6]
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, r)| r.clone())
        .collect();
    for cut in start..=end {
        // Two shapes of a crash mid-append: the file ends early (truncated),
        // or the pre-zeroed file kept its size and the record is partial.
        let mut zeroed = journal.clone();
        zeroed[cut..end].fill(0);
        for bytes in [&journal[..cut], &zeroed[..]] {
            let dir = state_dir(&snapshot, bytes);
            let mut ipam = Ipam::open(dir.path(), &net("10.244.1.0/26"), &[])
                .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            for (id, addr) in &durable {
                assert_eq!(
                    ipam.get(id, Family::V4),
                    Some(*addr),
                    "cut at {cut}: {id} lost"
                );
            }
            assert_eq!(ipam.get(&returned[1].0, Family::V4), None, "cut at {cut}");
            // The torn record is dropped; it may survive only whole (a cut
            // in its zero padding of the zeroed variant loses nothing).
            match ipam.get("last", Family::V4) {
                Some(a) => assert_eq!(a, returned[6].1, "cut at {cut}"),
                None => assert!(cut < end, "cut at {cut}: the whole record was dropped"),
            }
            if cut < start + 16 {
                assert_eq!(ipam.get("last", Family::V4), None, "cut at {cut}");
            }
            // Nothing durable is handed out again.
            for i in 0..30 {
                let a = ipam.allocate(&format!("new{i}"), Family::V4).expect("new");
                assert!(
                    durable.iter().all(|(_, d)| *d != a),
                    "cut at {cut}: {a} handed out twice"
                );
            }
        }
    }
}

#[test]
fn a_damaged_record_before_good_ones_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut ipam = open(dir.path());
        for i in 0..4 {
            ipam.allocate(&format!("c{i}"), Family::V4).expect("alloc");
        }
    }
    let snapshot = std::fs::read(dir.path().join("ipam.json")).expect("snapshot");
    let journal = std::fs::read(dir.path().join("ipam.journal")).expect("journal");
    let records = journal_records(&journal);
    let (start, end) = records[1];
    for offset in start..end {
        let mut bad = journal.clone();
        bad[offset] ^= 0x04;
        let dir = state_dir(&snapshot, &bad);
        let err = Ipam::open(dir.path(), &net("10.244.1.0/26"), &[])
            .expect_err(&format!("damage at {offset} accepted"));
        assert!(matches!(err, IpamError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains("ipam.journal"), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("ipam.journal")).expect("read"),
            bad
        );
    }
    // A record that does not apply (the same address twice) is corruption too.
    let mut dup = journal.clone();
    let (s2, e2) = records[2];
    let (s3, _) = records[3];
    dup.copy_within(s2..e2, s3);
    let dir = state_dir(&snapshot, &dup);
    let err = Ipam::open(dir.path(), &net("10.244.1.0/26"), &[]).expect_err("dup");
    assert!(err.to_string().contains("does not apply"), "{err}");
    // A journal newer than its snapshot, or without one.
    let mut newer = journal.clone();
    newer[8] = newer[8].wrapping_add(1);
    let dir = state_dir(&snapshot, &newer);
    assert!(Ipam::open(dir.path(), &net("10.244.1.0/26"), &[]).is_err());
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ipam.journal"), &journal).expect("journal");
    let err = Ipam::open(dir.path(), &net("10.244.1.0/26"), &[]).expect_err("no snapshot");
    assert!(err.to_string().contains("is missing"), "{err}");
}

#[test]
fn a_journal_older_than_the_snapshot_is_ignored() {
    // A crash during compaction, after the new snapshot and before the new
    // journal: the old journal's records are all in the snapshot.
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = {
        let mut ipam = open(dir.path());
        let a = ipam.allocate("a", Family::V4).expect("a");
        let b = ipam.allocate("b", Family::V4).expect("b");
        ipam.release("a").expect("release");
        (a, b)
    };
    let old_journal = std::fs::read(dir.path().join("ipam.journal")).expect("journal");
    drop(open(dir.path()));
    std::fs::write(dir.path().join("ipam.journal"), &old_journal).expect("old journal");
    let ipam = open(dir.path());
    assert_eq!(
        (ipam.get("a", Family::V4), ipam.get("b", Family::V4)),
        (None, Some(b))
    );
    assert_ne!(a, b);
}

#[test]
fn a_version_1_state_file_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("ipam.json"),
        br#"{"version":1,"pool":"10.244.1.0/26","cursor":5,"allocations":[{"id":"a","address":"10.244.1.3"}]}"#,
    )
    .expect("write");
    let mut ipam = open(dir.path());
    assert_eq!(ipam.get("a", Family::V4), Some(ip("10.244.1.3")));
    assert_eq!(ipam.allocate("b", Family::V4).expect("b"), ip("10.244.1.5"));
}

#[test]
fn reconcile_frees_what_is_not_attached_keeps_and_adopts_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (attached_addr, lost_addr, tunnel) = {
        let mut ipam = open(dir.path());
        let tunnel = ipam.allocate_tunnel().expect("tunnel");
        let attached = ipam.allocate("running", Family::V4).expect("running");
        // The agent "dies" between allocate and attach of this one.
        let lost = ipam.allocate("never-attached", Family::V4).expect("lost");
        (attached, lost, tunnel)
    };
    let mut ipam = open(dir.path());
    assert_eq!(
        ipam.get("never-attached", Family::V4),
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
                ("tortie:tunl0".into(), IpAddr::V4(tunnel))
            ],
            released: vec![("never-attached".into(), lost_addr)],
            adopted: vec![("tt00000000000".into(), ip("10.244.1.40"))],
            conflicts: vec![("tt11111111111".into(), ip("127.0.0.1"))],
        }
    );
    drop(ipam);
    // The reconciled state is what the next start sees.
    let mut ipam = open(dir.path());
    assert_eq!(ipam.get("never-attached", Family::V4), None);
    assert_eq!(ipam.owner(ip("10.244.1.40")), Some("tt00000000000"));
    // The freed address is not handed out right away, the adopted one never.
    for i in 0..50 {
        let a = ipam.allocate(&format!("c{i}"), Family::V4).expect("alloc");
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
        let err = Ipam::open(dir.path(), &net("10.244.1.0/26"), &[]).expect_err("corrupt accepted");
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
    let old = open(dir.path()).allocate("a", Family::V4).expect("a");
    let mut ipam = Ipam::open(dir.path(), &net("10.245.0.0/30"), &[]).expect("new pool");
    assert_eq!(
        ipam.get("a", Family::V4),
        Some(old),
        "a container lost its address"
    );
    assert_eq!(ipam.counts(), (1, 4));
    let b = ipam.allocate("b", Family::V4).expect("b");
    assert!(ipam.pools()[0].contains(b));
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
fn allocated_line(line: &str) -> Option<(String, IpAddr)> {
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
            ipam.get(id, Family::V4),
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
    assert_eq!(ipam.get(&id, Family::V4), Some(addr));
    assert_ne!(ipam.allocate("next", Family::V4).expect("next"), addr);
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
        let addr = ipam.allocate(&id, Family::V4).expect("child alloc");
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
