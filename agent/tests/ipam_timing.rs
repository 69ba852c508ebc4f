//! Cost of one durable IPAM change, journal vs the old whole-file rewrite
//! (write tmp + fsync + rename + fsync dir, reproduced here as the baseline).
//! Prints p50/p99/max per allocation; run with `--nocapture` (and with another
//! process writing to the disk to see the difference under load). Checks only
//! correctness — timings are machine-dependent — and runs on the target dir's
//! filesystem (a real disk), not /tmp, which may be tmpfs.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use tortie_agent::ipam::{Family, Ipam};

const N: usize = 1000;

fn percentiles(mut d: Vec<Duration>) -> String {
    d.sort();
    let at = |q: f64| d[((d.len() as f64 * q) as usize).min(d.len() - 1)];
    format!(
        "p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        d[d.len() - 1].as_secs_f64() * 1e3
    )
}

/// The pre-journal persistence: the whole state, atomically replaced.
fn replace_whole_file(dir: &Path, bytes: &[u8]) {
    let tmp = dir.join("baseline.json.tmp");
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)
        .expect("tmp");
    f.write_all(bytes).expect("write");
    f.sync_all().expect("fsync");
    std::fs::rename(&tmp, dir.join("baseline.json")).expect("rename");
    File::open(dir)
        .and_then(|d| d.sync_all())
        .expect("fsync dir");
}

#[test]
fn one_durable_allocation_costs_one_small_synced_write() {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let pool: Vec<ipnetwork::IpNetwork> = vec!["10.64.0.0/20".parse().expect("pool")];
    let mut ipam = Ipam::open(dir.path(), &pool, &[]).expect("open");
    let mut journal = Vec::with_capacity(N);
    let mut baseline = Vec::with_capacity(N);
    let mut state = String::new();
    for i in 0..N {
        let id = format!("{i:064x}");
        let t = Instant::now();
        ipam.allocate(&id, Family::V4).expect("alloc");
        journal.push(t.elapsed());
    }
    // Separately (so neither waits on the other's flushes): the same-size
    // JSON as the old ipam.json, one entry more each time.
    for (id, a) in ipam.allocations() {
        state.push_str(&format!("{{\"id\":\"{id}\",\"address\":\"{a}\"}},\n"));
        let t = Instant::now();
        replace_whole_file(dir.path(), state.as_bytes());
        baseline.push(t.elapsed());
    }
    println!(
        "IPAM allocate (journal):           {}",
        percentiles(journal)
    );
    println!(
        "whole-file replace (old, baseline): {}",
        percentiles(baseline)
    );
    let expected: Vec<(String, std::net::IpAddr)> = ipam
        .allocations()
        .map(|(i, a)| (i.to_string(), a))
        .collect();
    assert_eq!(expected.len(), N);
    drop(ipam);
    let ipam = Ipam::open(dir.path(), &pool, &[]).expect("reopen");
    let got: Vec<_> = ipam
        .allocations()
        .map(|(i, a)| (i.to_string(), a))
        .collect();
    assert_eq!(got, expected);
}
