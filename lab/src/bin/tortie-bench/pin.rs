//! CPU pinning of the ingest benchmark's feeder and DUT, the same way for
//! both DUTs: what `taskset -c LIST` does (`sched_setaffinity`), applied to
//! the thread that spawns a process so the process and every thread it
//! creates inherit the set.
//!
//! Layouts ([`Pinning`]): `split` (the default) puts the feeder — BIRD or
//! the bench's pre-built writer thread — and the bench's own polling on the
//! first allowed CPU and the DUT on the others (on 2 cores: one each, as a
//! router whose peers run elsewhere); `shared` leaves every process on every
//! CPU (what the bench did before; a multi-threaded DUT can then use both
//! cores). The effective CPU lists are read back from
//! `/proc/PID/status` (`Cpus_allowed_list`) and reported.

use anyhow::{Result, bail};

/// How feeder and DUT share the CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pinning {
    Split,
    Shared,
}

impl Pinning {
    pub fn name(self) -> &'static str {
        match self {
            Pinning::Split => "split",
            Pinning::Shared => "shared",
        }
    }
}

/// A set of CPU numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuSet(pub Vec<usize>);

impl CpuSet {
    /// What `taskset -c` takes: `0` or `1,2,3`.
    pub fn list(&self) -> String {
        self.0
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn to_libc(&self) -> libc::cpu_set_t {
        // SAFETY: cpu_set_t is plain data; the macros only set bits.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &c in &self.0 {
                libc::CPU_SET(c, &mut set);
            }
            set
        }
    }
}

/// The CPUs the calling thread may run on.
pub fn current() -> Result<CpuSet> {
    // SAFETY: the kernel fills a cpu_set_t we own.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            bail!("sched_getaffinity: {}", std::io::Error::last_os_error());
        }
        Ok(CpuSet(
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect(),
        ))
    }
}

/// Restricts the calling thread (and what it spawns from now on).
pub fn set_current(cpus: &CpuSet) -> Result<()> {
    let set = cpus.to_libc();
    // SAFETY: a valid cpu_set_t of the right size.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        bail!(
            "sched_setaffinity({}): {}",
            cpus.list(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// The feeder's and the DUT's CPUs for a layout, from the CPUs allowed now.
pub fn layout(p: Pinning, all: &CpuSet) -> (CpuSet, CpuSet) {
    match p {
        Pinning::Shared => (all.clone(), all.clone()),
        Pinning::Split if all.0.len() >= 2 => (CpuSet(vec![all.0[0]]), CpuSet(all.0[1..].to_vec())),
        Pinning::Split => (all.clone(), all.clone()),
    }
}

/// Runs `f` (which spawns a process) on CPUs `cpus`, then restores the
/// calling thread's set.
pub fn spawn_on<T>(cpus: &CpuSet, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let before = current()?;
    set_current(cpus)?;
    let r = f();
    set_current(&before)?;
    r
}

/// `Cpus_allowed_list` of a process, as the kernel reports it.
pub fn allowed_list(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let two = CpuSet(vec![0, 1]);
        assert_eq!(
            layout(Pinning::Split, &two),
            (CpuSet(vec![0]), CpuSet(vec![1]))
        );
        assert_eq!(layout(Pinning::Shared, &two), (two.clone(), two.clone()));
        let one = CpuSet(vec![3]);
        assert_eq!(layout(Pinning::Split, &one), (one.clone(), one.clone()));
        assert_eq!(CpuSet(vec![1, 2, 3]).list(), "1,2,3");
    }

    #[test]
    fn spawned_processes_inherit_the_set() {
        let all = current().unwrap();
        let first = CpuSet(vec![all.0[0]]);
        let mut child = spawn_on(&first, || {
            Ok(std::process::Command::new("sleep").arg("5").spawn()?)
        })
        .unwrap();
        let got = allowed_list(child.id() as i32);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(got, first.list());
        assert_eq!(current().unwrap(), all, "restored");
    }
}
