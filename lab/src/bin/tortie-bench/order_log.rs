//! Diagnostic: the order in which a run's routes reached the kernel's FIB.
//! With `TORTIE_BENCH_ORDER=<dir>` set, every route-event monitor of the
//! ingest benchmark ([`crate::nl::wait_for_routes`]: end-to-end runs and
//! kernel floors) keeps the destinations of the routes it saw added, in the
//! order of their events, and once it saw all N writes them to
//! `<dir>/order-<unix ns>-proto<proto>.txt`: a first line
//! `# monotonic ns first <ns> last <ns>` (CLOCK_MONOTONIC of the first
//! addition and of the moment all N were seen — the run's kernel window on
//! the clock `perf record -k mono` uses), then one `addr/len` a line.
//!
//! Data flow: the monitor hands each addition to [`OrderLog::push`]
//! (no clock read per event), then [`OrderLog::write`] at its end. Unset,
//! nothing is kept (the monitor's cost unchanged).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::nl::Family;

/// The environment variable naming the directory for the order files.
pub const ORDER: &str = "TORTIE_BENCH_ORDER";

/// The route additions one monitor saw, in event order.
pub struct OrderLog {
    path: PathBuf,
    family: Family,
    seen: Vec<(u128, u8)>,
    /// CLOCK_MONOTONIC ns of the first addition.
    first: Option<u64>,
}

/// CLOCK_MONOTONIC now, ns.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer to a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

impl OrderLog {
    /// A log for a monitor of `family` and `proto` expecting `n` routes,
    /// when [`ORDER`] is set.
    pub fn from_env(family: Family, proto: u8, n: u64) -> Option<OrderLog> {
        let dir = std::env::var_os(ORDER)?;
        let ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = Path::new(&dir).join(format!("order-{ns}-proto{proto}.txt"));
        Some(OrderLog::new(path, family, n))
    }

    fn new(path: PathBuf, family: Family, n: u64) -> OrderLog {
        OrderLog {
            path,
            family,
            seen: Vec::with_capacity(usize::try_from(n).unwrap_or(0)),
            first: None,
        }
    }

    /// A route to `dst` (the address as a number) / `len` was added.
    pub fn push(&mut self, dst: u128, len: u8) {
        if self.first.is_none() {
            self.first = Some(monotonic_ns());
        }
        self.seen.push((dst, len));
    }

    /// The file's text, `last` = CLOCK_MONOTONIC ns when all were seen.
    fn text(&self, last: u64) -> String {
        let mut text = String::with_capacity(self.seen.len() * 20 + 64);
        let first = self.first.unwrap_or_default();
        let _ = writeln!(text, "# monotonic ns first {first} last {last}");
        for &(dst, len) in &self.seen {
            let addr: IpAddr = match self.family {
                Family::V4 => Ipv4Addr::from(u32::try_from(dst).unwrap_or(0)).into(),
                Family::V6 => Ipv6Addr::from(dst).into(),
            };
            let _ = writeln!(text, "{addr}/{len}");
        }
        text
    }

    /// Writes the file; `last` = CLOCK_MONOTONIC ns when all were seen.
    pub fn write(self, last: u64) -> Result<()> {
        std::fs::write(&self.path, self.text(last))
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_additions_in_event_order() {
        let mut log = OrderLog::new(PathBuf::from("/nonexistent"), Family::V4, 3);
        log.push(0x0a00_0010, 28);
        log.push(0x0a00_0000, 28);
        let t = log.text(7);
        let mut lines = t.lines();
        let head = lines.next().unwrap_or_default();
        assert!(head.starts_with("# monotonic ns first ") && head.ends_with(" last 7"));
        assert_eq!(lines.collect::<Vec<_>>(), ["10.0.0.16/28", "10.0.0.0/28"]);
        let mut v6 = OrderLog::new(PathBuf::from("/nonexistent"), Family::V6, 1);
        v6.push(0xfd00_0000_0001_u128 << 80, 48);
        assert_eq!(v6.text(0).lines().nth(1), Some("fd00:0:1::/48"));
    }
}
