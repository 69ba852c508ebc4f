//! What running hundreds of agents on one host needs, found by scale runs
//! (issue 16), and what the runner may change.
//!
//! - **File descriptors**: an agent holds a socket per peer plus its API,
//!   netlink and log files; a full mesh of N agents needs ~N + 30 each. The
//!   runner raises its own `RLIMIT_NOFILE` soft limit to the hard limit
//!   ([`raise_nofile`]); the daemons it starts inherit it.
//! - **Neighbour (ARP) table**: `net.ipv4.neigh.default.gc_thresh1/2/3` exist
//!   only in the initial namespace and bound the *host-wide* number of
//!   entries of all namespaces together (defaults 128/512/1024). A full mesh
//!   of N nodes on one segment needs ~N² entries (N = 50: 2450), past which
//!   the kernel logs "neighbour table overflow" and drops packets.
//!   [`raise_neigh_thresholds`] raises (never lowers) them to what a lab of
//!   a given size needs; it is a host setting, so callers say so and put the
//!   old values back when the lab is gone ([`restore_neigh_thresholds`]).
//! - Checked, not changed (document-only): `kernel.pid_max` and
//!   `kernel.threads-max` (an agent has ~6 threads), `fs.file-max`.
//!   Ephemeral ports and `somaxconn` are per namespace, and a node uses few.
//!   The agent uses no inotify.

use std::path::Path;

use crate::error::{LabError, Result};

/// Raises the soft `RLIMIT_NOFILE` of this process to its hard limit;
/// returns (before, after).
pub fn raise_nofile() -> Result<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return Err(LabError::io(
                "getrlimit(RLIMIT_NOFILE)",
                std::io::Error::last_os_error(),
            ));
        }
        let before = r.rlim_cur;
        if r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                return Err(LabError::io(
                    "setrlimit(RLIMIT_NOFILE)",
                    std::io::Error::last_os_error(),
                ));
            }
        }
        Ok((before, r.rlim_cur))
    }
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Neighbour entries a lab of `nodes` BGP speakers on one segment may need
/// (every pair in a mesh; reflectors and next hops otherwise), with slack
/// for containers and the other labs on the host.
pub fn neigh_entries_needed(nodes: usize, mesh: bool, containers: usize) -> u64 {
    let n = nodes as u64;
    let sessions = if mesh { n * n } else { 20 * n };
    sessions + n * (containers as u64 + 2) + 4096
}

/// Values of host settings as they were before a change, to put back.
pub type Saved = Vec<(String, u64)>;

/// Raises `gc_thresh1/2/3` of the host's neighbour table so that `needed`
/// entries fit (thresh3 = needed, thresh2 = ¾, thresh1 = ¼), never lowering
/// them. Returns a line per value changed, and the old values for
/// [`restore_neigh_thresholds`].
pub fn raise_neigh_thresholds(needed: u64) -> Result<(Vec<String>, Saved)> {
    let dir = "/proc/sys/net/ipv4/neigh/default";
    let mut changed = Vec::new();
    let mut saved = Saved::new();
    // thresh3 first: the kernel wants thresh1 <= thresh2 <= thresh3.
    for (name, want) in [
        ("gc_thresh3", needed),
        ("gc_thresh2", needed * 3 / 4),
        ("gc_thresh1", needed / 4),
    ] {
        let path = format!("{dir}/{name}");
        let have = read_u64(&path).unwrap_or(0);
        if have < want {
            if let Err(e) = std::fs::write(Path::new(&path), want.to_string()) {
                restore_neigh_thresholds(&saved);
                return Err(LabError::io(format!("writing {path}"), e));
            }
            saved.push((path, have));
            changed.push(format!("net.ipv4.neigh.default.{name}: {have} → {want}"));
        }
    }
    Ok((changed, saved))
}

/// Puts back what [`raise_neigh_thresholds`] changed (lowest first, so the
/// kernel's ordering of the three holds at every step). Best effort: a
/// failure is printed, not returned, because it runs on the way out.
pub fn restore_neigh_thresholds(saved: &Saved) {
    for (path, value) in saved.iter().rev() {
        if let Err(e) = std::fs::write(Path::new(path), value.to_string()) {
            eprintln!("restoring {path} to {value}: {e}");
        }
    }
}

/// Host limits that would stop `agents` agents, as readable problems.
pub fn check_host(agents: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let threads = agents as u64 * 8 + 1000;
    for (path, need) in [
        ("/proc/sys/kernel/pid_max", threads),
        ("/proc/sys/kernel/threads-max", threads),
        ("/proc/sys/fs/file-max", agents as u64 * 100),
    ] {
        if let Some(have) = read_u64(path)
            && have < need
        {
            problems.push(format!("{path} is {have}, {agents} agents need ~{need}"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates() {
        assert!(neigh_entries_needed(50, true, 2) > 2500);
        assert!(neigh_entries_needed(200, false, 2) < neigh_entries_needed(200, true, 2));
        assert!(check_host(1).is_empty());
        let (before, after) = raise_nofile().unwrap();
        assert!(after >= before);
    }
}
