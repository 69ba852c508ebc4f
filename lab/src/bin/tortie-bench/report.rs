//! What a benchmark run reports: the machine, the versions of everything
//! measured, and per benchmark a table of figures plus ratios and targets.
//!
//! Benchmarks fill [`Section`]s; `main` collects them into a [`Report`],
//! prints it as markdown and writes it as JSON (`--out`). Also the small
//! measuring helpers every benchmark shares: percentiles and per-process
//! memory/CPU from `/proc`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

/// One benchmark's results.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Section {
    pub name: String,
    /// What was measured and how (one paragraph).
    pub method: String,
    /// Sizes the run used (e.g. `{"prefixes": 100000}`).
    pub sizes: Value,
    /// Markdown table: header then rows.
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Raw figures (seconds, bytes, rates), machine-readable.
    pub figures: Value,
    /// tortie / anchor ratios.
    pub ratios: Value,
    pub targets: Vec<Target>,
    pub notes: Vec<String>,
}

/// A target from issue 6 and whether this run met it.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub what: String,
    pub target: String,
    pub measured: String,
    pub met: bool,
}

impl Section {
    pub fn new(name: &str, method: &str) -> Self {
        Section {
            name: name.to_string(),
            method: method.to_string(),
            sizes: json!({}),
            figures: json!({}),
            ratios: json!({}),
            ..Section::default()
        }
    }

    pub fn target(&mut self, what: &str, target: &str, measured: String, met: bool) {
        self.targets.push(Target {
            what: what.to_string(),
            target: target.to_string(),
            measured,
            met,
        });
    }

    pub fn markdown(&self) -> String {
        let mut s = format!("### {}\n\n{}\n\n", self.name, self.method);
        if !self.header.is_empty() {
            s.push_str(&format!("| {} |\n", self.header.join(" | ")));
            s.push_str(&format!("|{}\n", "---|".repeat(self.header.len())));
            for r in &self.rows {
                s.push_str(&format!("| {} |\n", r.join(" | ")));
            }
            s.push('\n');
        }
        for t in &self.targets {
            s.push_str(&format!(
                "- target {}: {} — measured {} → **{}**\n",
                t.what,
                t.target,
                t.measured,
                if t.met { "met" } else { "missed" }
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("- note: {n}\n"));
        }
        s
    }
}

/// A whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub command: String,
    pub machine: Value,
    pub versions: Value,
    pub sections: Vec<Section>,
    pub errors: Vec<String>,
}

impl Report {
    pub fn new() -> Self {
        Report {
            date: sh("date -u +%Y-%m-%dT%H:%M:%SZ"),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            machine: machine(),
            versions: versions(),
            sections: Vec::new(),
            errors: Vec::new(),
        }
    }

    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let v = &self.versions;
        let mut s = format!(
            "## tortie benchmarks — {}\n\nMachine: {} × {}, {} MiB RAM, Linux {}. Versions: tortie {}, BIRD {}, FRR {}, GoBGP {}, CNI plugins {}.\n\n",
            self.date,
            m["nproc"],
            m["cpu"].as_str().unwrap_or("?"),
            m["memory_mib"],
            m["kernel"].as_str().unwrap_or("?"),
            v["tortie"].as_str().unwrap_or("?"),
            v["bird"].as_str().unwrap_or("?"),
            v["frr"].as_str().unwrap_or("?"),
            v["gobgp"].as_str().unwrap_or("?"),
            v["cni_plugins"].as_str().unwrap_or("?"),
        );
        for sec in &self.sections {
            s.push_str(&sec.markdown());
            s.push('\n');
        }
        for e in &self.errors {
            s.push_str(&format!("**error:** {e}\n\n"));
        }
        s
    }
}

fn sh(script: &str) -> String {
    Command::new("sh")
        .args(["-c", script])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine() -> Value {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "memory_mib": mem_kb / 1024,
    })
}

fn dpkg(pkg: &str) -> String {
    sh(&format!(
        "dpkg-query -W -f '${{Version}}' {pkg} 2>/dev/null"
    ))
}

fn versions() -> Value {
    let tortie = crate::bins::tortie()
        .ok()
        .map(|b| sh(&format!("{} --version 2>/dev/null", b.display())))
        .unwrap_or_default();
    json!({
        "tortie": tortie.trim_start_matches("tortie ").to_string(),
        "bird": dpkg("bird2"),
        "frr": dpkg("frr"),
        "gobgp": dpkg("gobgpd"),
        "cni_plugins": dpkg("containernetworking-plugins"),
    })
}

/// Sorted-sample percentile (nearest rank).
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A `/proc/PID/status` field in kB (`VmHWM`, `VmRSS`), as bytes.
pub fn proc_kb(pid: i32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: i32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) in parentheses.
    let rest = text.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime 15.
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((ut + st) / hz.max(1.0))
}

/// CPU time (user + system) of process `pid`, every thread, those that
/// have exited included, to the nanosecond: its process CPU clock
/// (`clock_getcpuclockid`, the scheduler's runtime accounting), where
/// [`cpu_seconds`] has `/proc`'s 10 ms ticks. The ingest figures' clock.
pub fn process_cpu(pid: i32) -> Option<Duration> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: writes one clockid_t we own.
    if unsafe { libc::clock_getcpuclockid(pid, &mut clock) } != 0 {
        return None;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    ))
}

/// CPU seconds (user + system) of this process and of its children that have
/// been waited for (`getrusage` SELF + CHILDREN): the cost of a phase that
/// runs short-lived commands, as a difference of two readings.
pub fn own_and_reaped_cpu_seconds() -> f64 {
    let read = |who| {
        // SAFETY: getrusage writes into the zeroed struct we own.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut ru) } != 0 {
            return 0.0;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    };
    read(libc::RUSAGE_SELF) + read(libc::RUSAGE_CHILDREN)
}

/// On-CPU time of each live thread of a process by thread id, in
/// nanoseconds (`/proc/PID/task/*/schedstat`); for idle figures, where
/// clock ticks are too coarse. See [`thread_cpu_between`].
pub fn thread_cpu(pid: i32) -> Option<std::collections::HashMap<u32, u64>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut m = std::collections::HashMap::new();
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        let s = std::fs::read_to_string(e.path().join("schedstat")).unwrap_or_default();
        if let Some(ns) = s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        {
            m.insert(tid, ns);
        }
    }
    Some(m)
}

/// CPU seconds between two [`thread_cpu`] readings: each thread alive at
/// the end counts its time since the first reading (all of it if it started
/// later). A thread that exited in between counts nothing: a sum over the
/// live threads would go down by its whole lifetime (tokio retires a
/// blocking thread after 10 s without work, so an idle agent's thread count
/// changes), and what such a thread did between the readings is lost.
pub fn thread_cpu_between(
    start: &std::collections::HashMap<u32, u64>,
    end: &std::collections::HashMap<u32, u64>,
) -> f64 {
    let ns: u64 = end
        .iter()
        .map(|(tid, e)| e.saturating_sub(start.get(tid).copied().unwrap_or(0)))
        .sum();
    ns as f64 / 1e9
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.0} ms", ms(d))
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

/// Writes the JSON report.
pub fn write_json(report: &Report, path: &Path) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n")
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(51));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn own_process_figures() {
        let pid = std::process::id() as i32;
        assert!(proc_kb(pid, "VmHWM").unwrap_or(0) > 0);
        assert!(cpu_seconds(pid).is_some());
        // The nanosecond clock moves with work this thread does.
        let a = process_cpu(pid).expect("own CPU clock");
        assert!(a > Duration::ZERO);
        let mut x = 0u64;
        while process_cpu(pid).is_some_and(|b| b == a) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(process_cpu(pid).expect("own CPU clock") > a);
        // No process has a pid above pid_max.
        let pid_max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4 << 20);
        assert_eq!(process_cpu(pid_max + 1), None);
        assert!(!thread_cpu(pid).unwrap_or_default().is_empty());
    }

    #[test]
    fn thread_time_counts_live_threads_since_the_start() {
        // Thread 1 ran 50 ns in the window, thread 2 exited (its 50 ns
        // before the window must not be subtracted), thread 3 was born in
        // the window (all its 20 ns count).
        let start = std::collections::HashMap::from([(1, 100), (2, 50)]);
        let end = std::collections::HashMap::from([(1, 150), (3, 20)]);
        assert!((thread_cpu_between(&start, &end) - 70e-9).abs() < 1e-12);
    }
}
