//! Silent link failures and the clock that times them: [`LinkCut`] drops
//! every packet in and out of one interface of a namespace with iptables
//! (no FIN, no RST, no link-down — what a dead switch or a hung peer looks
//! like; this kernel has no `sch_netem`), and [`RouteWatch`] reports the
//! moment a route leaves a namespace's kernel table, from `ip monitor route`.
//!
//! Both are guards: the rules are deleted and the monitor is stopped (by
//! its PID) on drop, on panic too.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::netns::{Netns, describe};

/// iptables rules dropping everything through `ifname` in a namespace.
#[derive(Debug)]
pub struct LinkCut {
    netns: String,
    ifname: String,
    /// When the outbound rule (the namespace's packets to the far end) was
    /// about to be added: the far end stops hearing from here after this.
    pub at: Instant,
    /// When `iptables` returned: the cut is in place. The true instant lies
    /// between `at` and `placed` (a process spawn apart).
    pub placed: Instant,
}

fn iptables(ns: &str, action: &str, chain: &str, dir: &str, ifname: &str) -> Result<()> {
    crate::netns::run(
        Netns::existing(ns)
            .command("iptables")
            .args(["-w", action, chain, dir, ifname, "-j", "DROP"]),
    )
    .map(|_| ())
}

impl LinkCut {
    /// Cuts `ifname` in `ns` both ways (INPUT first, then OUTPUT).
    pub fn silent(ns: &Netns, ifname: &str) -> Result<LinkCut> {
        iptables(ns.name(), "-I", "INPUT", "-i", ifname)?;
        let at = Instant::now();
        let mut cut = LinkCut {
            netns: ns.name().to_string(),
            ifname: ifname.to_string(),
            at,
            placed: at,
        };
        iptables(ns.name(), "-I", "OUTPUT", "-o", ifname)?;
        cut.placed = Instant::now();
        Ok(cut)
    }

    /// Removes the rules (also done on drop).
    pub fn restore(self) {}
}

impl Drop for LinkCut {
    fn drop(&mut self) {
        let _ = iptables(&self.netns, "-D", "OUTPUT", "-o", &self.ifname);
        let _ = iptables(&self.netns, "-D", "INPUT", "-i", &self.ifname);
    }
}

/// `ip monitor route` in a namespace; each line arrives with the instant
/// it was read.
#[derive(Debug)]
pub struct RouteWatch {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl RouteWatch {
    pub fn start(ns: &Netns) -> Result<RouteWatch> {
        let mut cmd = ns.command("ip");
        cmd.args(["monitor", "route"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .map_err(|e| LabError::io(format!("starting {}", describe(&cmd)), e))?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| LabError::Invalid("ip monitor: no stdout".into()))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        // Let it subscribe before anything it must see happens.
        std::thread::sleep(Duration::from_millis(200));
        Ok(RouteWatch { child, lines: rx })
    }

    /// Forgets what was seen so far.
    pub fn clear(&self) {
        while self.lines.try_recv().is_ok() {}
    }

    /// When `prefix` was deleted (a `Deleted <prefix> …` line), waiting up
    /// to `timeout`.
    pub fn deleted(&self, prefix: &str, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        let want = format!("Deleted {prefix} ");
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let (at, line) = self.lines.recv_timeout(left).ok()?;
            if line.starts_with(&want) {
                return Some(at);
            }
        }
    }
}

impl Drop for RouteWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `p`-th percentile (0–100) of `v` by nearest rank; `None` when empty.
pub fn percentile(v: &[Duration], p: u32) -> Option<Duration> {
    let mut s = v.to_vec();
    s.sort();
    let rank = (u64::from(p.min(100)) * s.len() as u64)
        .div_ceil(100)
        .max(1);
    s.get(usize::try_from(rank).ok()? - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        let v = ms(&[900, 700, 800, 600]);
        assert_eq!(percentile(&v, 50), Some(Duration::from_millis(700)));
        assert_eq!(percentile(&v, 99), Some(Duration::from_millis(900)));
        assert_eq!(percentile(&v, 0), Some(Duration::from_millis(600)));
        assert_eq!(percentile(&[], 50), None);
        let twenty: Vec<u64> = (1..=20).collect();
        assert_eq!(
            percentile(&ms(&twenty), 50),
            Some(Duration::from_millis(10))
        );
        assert_eq!(
            percentile(&ms(&twenty), 99),
            Some(Duration::from_millis(20))
        );
    }
}
