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
    /// Runs that failed while the rest of the section was measured (a
    /// row's figures then come from the runs that did not fail); `main`
    /// counts them as the run's errors, so the exit status says so.
    pub errors: Vec<String>,
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
        for e in &self.errors {
            s.push_str(&format!("- **failed run**: {e}\n"));
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

/// One thread's scheduler counters: its name, on-CPU time in nanoseconds
/// (`/proc/PID/task/TID/schedstat`, where clock ticks are too coarse) and
/// context switches (`status`: it blocked / it was preempted).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThreadStat {
    pub name: String,
    pub run_ns: u64,
    pub voluntary: u64,
    pub involuntary: u64,
}

impl ThreadStat {
    /// From a thread's `comm`, `schedstat` and `status` files.
    fn parse(comm: &str, schedstat: &str, status: &str) -> Option<ThreadStat> {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        Some(ThreadStat {
            name: comm.trim().to_string(),
            run_ns: schedstat.split_whitespace().next()?.parse().ok()?,
            voluntary: field("voluntary_ctxt_switches").unwrap_or(0),
            involuntary: field("nonvoluntary_ctxt_switches").unwrap_or(0),
        })
    }
}

/// [`ThreadStat`] of each live thread of a process, by thread id. See
/// [`thread_cpu_between`] and [`thread_load`].
pub fn thread_cpu(pid: i32) -> Option<std::collections::HashMap<u32, ThreadStat>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut m = std::collections::HashMap::new();
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        let read = |f: &str| std::fs::read_to_string(e.path().join(f)).unwrap_or_default();
        if let Some(t) = ThreadStat::parse(&read("comm"), &read("schedstat"), &read("status")) {
            m.insert(tid, t);
        }
    }
    Some(m)
}

/// Each live thread's counters since the first reading (all of them if it
/// started later). A thread that exited in between counts nothing: a sum
/// over the live threads would go down by its whole lifetime (tokio retires
/// a blocking thread after 10 s without work, so an idle agent's thread
/// count changes), and what such a thread did between the readings is lost.
fn thread_deltas<'a>(
    start: &'a std::collections::HashMap<u32, ThreadStat>,
    end: &'a std::collections::HashMap<u32, ThreadStat>,
) -> impl Iterator<Item = ThreadStat> + 'a {
    end.iter().map(|(tid, e)| {
        let s = start.get(tid).filter(|s| s.name == e.name);
        let since = |f: fn(&ThreadStat) -> u64| f(e).saturating_sub(s.map_or(0, f));
        ThreadStat {
            name: e.name.clone(),
            run_ns: since(|t| t.run_ns),
            voluntary: since(|t| t.voluntary),
            involuntary: since(|t| t.involuntary),
        }
    })
}

/// [`ThreadStat`] of the calling thread (`/proc/thread-self`), keyed as
/// [`thread_cpu`]'s map (one entry, id 0): a writer thread's own counters.
pub fn own_thread_stat() -> std::collections::HashMap<u32, ThreadStat> {
    let read =
        |f: &str| std::fs::read_to_string(format!("/proc/thread-self/{f}")).unwrap_or_default();
    ThreadStat::parse(&read("comm"), &read("schedstat"), &read("status"))
        .map(|t| (0, t))
        .into_iter()
        .collect()
}

/// CPU seconds between two [`thread_cpu`] readings, summed over the threads
/// alive at the end ([`thread_deltas`]).
pub fn thread_cpu_between(
    start: &std::collections::HashMap<u32, ThreadStat>,
    end: &std::collections::HashMap<u32, ThreadStat>,
) -> f64 {
    let ns: u64 = thread_deltas(start, end).map(|t| t.run_ns).sum();
    ns as f64 / 1e9
}

/// Time of a set of CPUs by kind, from `/proc/stat` (USER_HZ ticks, so
/// 10 ms resolution), in seconds: what the DUT's CPUs did during a load
/// besides the DUT — others' tasks and kernel threads (busy), nothing
/// (idle: every task on them blocked), or not run by the hypervisor
/// (steal). The scheduler's runtime, hence a task's CPU clock, leaves
/// steal out (`CONFIG_PARAVIRT_TIME_ACCOUNTING`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct CpuTimes {
    pub user: f64,
    pub nice: f64,
    pub system: f64,
    pub idle: f64,
    pub iowait: f64,
    pub irq: f64,
    pub softirq: f64,
    pub steal: f64,
}

impl CpuTimes {
    /// The `cpuN` lines of `/proc/stat` text for `cpus`, summed.
    pub fn parse(stat: &str, cpus: &[usize]) -> Option<CpuTimes> {
        // SAFETY: sysconf reads a constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let hz = if hz > 0 { hz as f64 } else { 100.0 };
        let mut t = CpuTimes::default();
        let mut found = 0;
        for line in stat.lines() {
            let mut f = line.split_whitespace();
            let Some(cpu) = f
                .next()
                .and_then(|c| c.strip_prefix("cpu"))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            if !cpus.contains(&cpu) {
                continue;
            }
            let v: Vec<f64> = f.map(|x| x.parse::<f64>().unwrap_or(0.0) / hz).collect();
            let at = |k: usize| v.get(k).copied().unwrap_or(0.0);
            t.user += at(0);
            t.nice += at(1);
            t.system += at(2);
            t.idle += at(3);
            t.iowait += at(4);
            t.irq += at(5);
            t.softirq += at(6);
            t.steal += at(7);
            found += 1;
        }
        (found == cpus.len() && found > 0).then_some(t)
    }

    /// The times of `cpus` now.
    pub fn read(cpus: &[usize]) -> Option<CpuTimes> {
        CpuTimes::parse(&std::fs::read_to_string("/proc/stat").ok()?, cpus)
    }

    /// What was spent from `before` to `self`.
    pub fn since(&self, before: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user - before.user,
            nice: self.nice - before.nice,
            system: self.system - before.system,
            idle: self.idle - before.idle,
            iowait: self.iowait - before.iowait,
            irq: self.irq - before.irq,
            softirq: self.softirq - before.softirq,
            steal: self.steal - before.steal,
        }
    }

    /// Time some task or interrupt ran.
    pub fn busy(&self) -> f64 {
        self.user + self.nice + self.system + self.irq + self.softirq
    }

    /// `busy B s (the DUT's D), idle I, steal S` for a note: where the
    /// wall time of a run went on the DUT's CPUs.
    pub fn text(&self, dut_cpu: f64) -> String {
        format!(
            "busy {:.2} s (the DUT's {:.2}, softirq {:.2}), idle {:.2}, steal {:.2}",
            self.busy(),
            dut_cpu,
            self.softirq,
            self.idle + self.iowait,
            self.steal
        )
    }
}

/// What one kind of thread (one name) did between two readings.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ThreadLoad {
    pub name: String,
    /// Threads of that name alive at the end.
    pub threads: u32,
    pub cpu_s: f64,
    /// Times they blocked (waited for work, a lock, I/O).
    pub voluntary_switches: u64,
    /// Times they were preempted while runnable.
    pub involuntary_switches: u64,
}

/// Between two [`thread_cpu`] readings, per thread name (a multi-threaded
/// runtime's workers summed), most CPU first; threads that did nothing
/// (no CPU, no switch) are left out.
pub fn thread_load(
    start: &std::collections::HashMap<u32, ThreadStat>,
    end: &std::collections::HashMap<u32, ThreadStat>,
) -> Vec<ThreadLoad> {
    let mut by_name: std::collections::BTreeMap<String, ThreadLoad> = Default::default();
    for t in thread_deltas(start, end) {
        if t.run_ns == 0 && t.voluntary == 0 && t.involuntary == 0 {
            continue;
        }
        let l = by_name.entry(t.name.clone()).or_insert_with(|| ThreadLoad {
            name: t.name,
            ..ThreadLoad::default()
        });
        l.threads += 1;
        l.cpu_s += t.run_ns as f64 / 1e9;
        l.voluntary_switches += t.voluntary;
        l.involuntary_switches += t.involuntary;
    }
    let mut v: Vec<ThreadLoad> = by_name.into_values().collect();
    v.sort_by(|a, b| b.cpu_s.total_cmp(&a.cpu_s));
    v
}

/// `name CPU s (blocked / preempted)` for each kind of thread, for a note.
pub fn thread_load_text(load: &[ThreadLoad]) -> String {
    load.iter()
        .map(|l| {
            let n = if l.threads > 1 {
                format!(" ×{}", l.threads)
            } else {
                String::new()
            };
            format!(
                "{}{n} {:.2} s ({} / {})",
                l.name, l.cpu_s, l.voluntary_switches, l.involuntary_switches
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
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

/// A ratio's table cell: `0.53×`, or `—` when one side was not measured
/// (a `TORTIE_BENCH_ONLY` diagnostic run leaves the other DUT's rows empty).
pub fn ratio_cell(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.2}×")
    } else {
        "—".to_string()
    }
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
    fn a_ratio_without_an_anchor_shows_no_figure() {
        assert_eq!(ratio_cell(ratio(5.46, 10.3)), "0.53×");
        assert_eq!(ratio_cell(ratio(5.46, 0.0)), "—");
        assert_eq!(ratio_cell(f64::NAN), "—");
    }

    #[test]
    fn cpu_times_of_chosen_cpus() {
        let stat = "cpu  9 9 9 9 9 9 9 9 0 0\n\
                    cpu0 100 0 50 1000 0 0 5 1 0 0\n\
                    cpu1 200 10 100 400 4 0 20 6 0 0\n\
                    intr 1 2 3\n";
        // SAFETY: sysconf reads a constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let t = |x: f64| (x * hz).round();
        let one = CpuTimes::parse(stat, &[1]).unwrap();
        assert_eq!((t(one.user), t(one.nice)), (200.0, 10.0));
        assert_eq!((t(one.idle), t(one.iowait)), (400.0, 4.0));
        assert_eq!((t(one.softirq), t(one.steal)), (20.0, 6.0));
        assert_eq!(t(one.busy()), 330.0);
        let both = CpuTimes::parse(stat, &[0, 1]).unwrap();
        assert_eq!(t(both.user), 300.0);
        let d = both.since(&one);
        assert_eq!((t(d.user), t(d.idle), t(d.steal)), (100.0, 1000.0, 1.0));
        // A CPU the text lacks: no figure rather than a short one.
        assert!(CpuTimes::parse(stat, &[1, 2]).is_none());
        assert!(CpuTimes::parse(stat, &[]).is_none());
    }

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

    fn stat(name: &str, run_ns: u64, voluntary: u64, involuntary: u64) -> ThreadStat {
        ThreadStat {
            name: name.into(),
            run_ns,
            voluntary,
            involuntary,
        }
    }

    #[test]
    fn thread_time_counts_live_threads_since_the_start() {
        // Thread 1 ran 50 ns in the window, thread 2 exited (its 50 ns
        // before the window must not be subtracted), thread 3 was born in
        // the window (all its 20 ns count).
        let start =
            std::collections::HashMap::from([(1, stat("a", 100, 0, 0)), (2, stat("b", 50, 0, 0))]);
        let end =
            std::collections::HashMap::from([(1, stat("a", 150, 0, 0)), (3, stat("c", 20, 0, 0))]);
        assert!((thread_cpu_between(&start, &end) - 70e-9).abs() < 1e-12);
    }

    #[test]
    fn thread_load_by_name_since_the_start() {
        // Two workers summed; the kernel thread's switches since the start;
        // a reused tid under another name counts from zero; an idle thread
        // is left out.
        let start = std::collections::HashMap::from([
            (1, stat("tokio-rt-worker", 1_000_000_000, 10, 20)),
            (2, stat("tokio-rt-worker", 0, 0, 0)),
            (3, stat("tortie-kernel", 500_000_000, 5, 7)),
            (4, stat("old", 9_000_000_000, 9, 9)),
            (5, stat("idle", 100, 1, 1)),
        ]);
        let end = std::collections::HashMap::from([
            (1, stat("tokio-rt-worker", 1_500_000_000, 12, 30)),
            (2, stat("tokio-rt-worker", 250_000_000, 1, 2)),
            (3, stat("tortie-kernel", 3_500_000_000, 105, 1007)),
            (4, stat("new", 1_000_000_000, 3, 4)),
            (5, stat("idle", 100, 1, 1)),
        ]);
        let load = thread_load(&start, &end);
        let want =
            |name: &str, threads, cpu_s, voluntary_switches, involuntary_switches| ThreadLoad {
                name: name.into(),
                threads,
                cpu_s,
                voluntary_switches,
                involuntary_switches,
            };
        assert_eq!(
            load,
            [
                want("tortie-kernel", 1, 3.0, 100, 1000),
                want("new", 1, 1.0, 3, 4),
                want("tokio-rt-worker", 2, 0.75, 3, 12),
            ]
        );
        assert_eq!(
            thread_load_text(&load),
            "tortie-kernel 3.00 s (100 / 1000), new 1.00 s (3 / 4), tokio-rt-worker ×2 0.75 s (3 / 12)"
        );
    }

    #[test]
    fn thread_stat_from_proc_files() {
        let status = "Name:\ttortie-kernel\nvoluntary_ctxt_switches:\t282\nnonvoluntary_ctxt_switches:\t959\n";
        assert_eq!(
            ThreadStat::parse("tortie-kernel\n", "5780000000 4050000000 1241\n", status),
            Some(stat("tortie-kernel", 5_780_000_000, 282, 959))
        );
        assert_eq!(ThreadStat::parse("x", "", status), None);
        // The live threads of this process, this one among them.
        let me = thread_cpu(std::process::id() as i32).unwrap_or_default();
        assert!(me.values().any(|t| t.run_ns > 0));
    }
}
