//! The agent's own process figures, as Prometheus' process collector exports
//! them (`process_resident_memory_bytes`, `process_cpu_seconds_total`, …), read
//! from procfs at scrape time.
//!
//! Data flow: [`read`] reads `/proc/self/stat`, `/proc/stat` (boot time),
//! `/proc/self/fd` and the open-files limit, and hands the texts to the pure
//! parsers below ([`parse_stat`], [`parse_btime`]), which the tests feed with
//! fixed strings. `metrics` encodes the resulting [`ProcessStats`].

use std::path::Path;

/// One reading of the process's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
    pub resident_memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
    pub open_fds: u64,
    /// The soft limit of open files (RLIMIT_NOFILE).
    pub max_fds: u64,
}

/// The fields of `/proc/<pid>/stat` used here (proc(5) numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// (14) utime and (15) stime, clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// (22) starttime, clock ticks after boot.
    pub starttime: u64,
    /// (23) vsize, bytes.
    pub vsize: u64,
    /// (24) rss, pages.
    pub rss: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (2) is in parentheses and may
/// hold spaces and parentheses itself: fields are counted after the last ')'.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let after = text.get(text.rfind(')')? + 1..)?;
    // `after` starts at field (3), the state.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n.checked_sub(3)?)?.parse().ok() };
    Some(Stat {
        utime: field(14)?,
        stime: field(15)?,
        starttime: field(22)?,
        vsize: field(23)?,
        rss: field(24)?,
    })
}

/// The boot time (`btime`, seconds since the epoch) from `/proc/stat`.
pub fn parse_btime(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The figures from a stat reading, with the system's clock tick rate, page
/// size and boot time.
pub fn from_stat(stat: Stat, ticks_per_second: u64, page_size: u64, btime: u64) -> ProcessStats {
    let ticks = ticks_per_second.max(1) as f64;
    ProcessStats {
        cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
        resident_memory_bytes: stat.rss.saturating_mul(page_size),
        virtual_memory_bytes: stat.vsize,
        start_time_seconds: btime as f64 + stat.starttime as f64 / ticks,
        open_fds: 0,
        max_fds: 0,
    }
}

/// Reads this process's figures; `None` when procfs is not readable.
pub fn read() -> Option<ProcessStats> {
    let stat = parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let btime = parse_btime(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let ticks = sysconf(libc::_SC_CLK_TCK)?;
    let page = sysconf(libc::_SC_PAGESIZE)?;
    let mut stats = from_stat(stat, ticks, page, btime);
    stats.open_fds = count_entries(Path::new("/proc/self/fd"))?;
    stats.max_fds = open_files_limit()?;
    Some(stats)
}

/// The soft RLIMIT_NOFILE.
fn open_files_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0).then_some(lim.rlim_cur)
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf reads a configuration value; no memory is passed.
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).ok().filter(|v| *v > 0)
}

fn count_entries(dir: &Path) -> Option<u64> {
    // The directory handle read_dir holds is one of the entries: not counted.
    let n = std::fs::read_dir(dir).ok()?.count() as u64;
    Some(n.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real line (fields 1-52), with a command name holding ") (".
    const STAT: &str = "4242 (tortie (x) y) S 1 4242 4242 0 -1 4194560 1520 0 0 0 \
        250 130 0 0 20 0 9 0 123456 1048576000 5000 18446744073709551615 1 1 0 0 0 0 0 \
        4096 17920 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0";

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        assert_eq!(
            parse_stat(STAT),
            Some(Stat {
                utime: 250,
                stime: 130,
                starttime: 123456,
                vsize: 1_048_576_000,
                rss: 5000,
            })
        );
        assert_eq!(parse_stat("4242 (tortie) S 1 2"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn figures_in_prometheus_units() {
        let s = from_stat(parse_stat(STAT).unwrap(), 100, 4096, 1_700_000_000);
        assert!((s.cpu_seconds - 3.8).abs() < 1e-9);
        assert_eq!(s.resident_memory_bytes, 5000 * 4096);
        assert_eq!(s.virtual_memory_bytes, 1_048_576_000);
        assert!((s.start_time_seconds - 1_700_001_234.56).abs() < 1e-6);
    }

    #[test]
    fn btime_line() {
        assert_eq!(
            parse_btime("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_btime("cpu 1\n"), None);
    }

    #[test]
    fn this_process_reads() {
        let s = read().expect("procfs");
        assert!(s.resident_memory_bytes > 0 && s.open_fds > 0 && s.max_fds >= s.open_fds);
        assert!(s.start_time_seconds > 1.0e9);
    }
}
