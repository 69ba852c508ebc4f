//! How the agent uses the C allocator (glibc malloc), which Rust's global
//! allocator calls: three settings made once at start-up, before any thread
//! exists ([`tune`]), and giving freed memory back after a large batch of
//! route changes ([`Trimmer`]).
//!
//! Why (measured with heaptrack and VmHWM on a 1M-prefix BGP ingest, see
//! lab/bench/README.md): the live heap peaked near 100 MiB while RSS reached
//! 210 MiB. glibc's mmap threshold is dynamic — once a large block (a hash
//! table being resized) is freed, the threshold rises to its size, and the
//! next tables of that size come from the arenas, where the holes they leave
//! are not returned to the kernel; each thread that allocates also gets an
//! arena of its own (up to 8 per core) and memory freed in one cannot be
//! used by another. A fixed threshold keeps every large table in its own
//! mapping (unmapped when freed), and two arenas are enough for the agent's
//! few busy threads.
//!
//! The third, the per-thread cache (tcache) of freed blocks, holds up to
//! [`TCACHE_COUNT`] blocks per size instead of glibc's 7: a BGP session
//! decodes a read's UPDATEs (up to ~1000, two blocks each) before the RIB task
//! applies them and frees them together, and with 7 cached blocks per size
//! the rest went through malloc's bins — consolidated, sorted and split again
//! for the next read's UPDATEs: a sixth of the samples of a 100k one-prefix-
//! per-UPDATE load, and 12–21 % of its CPU (lab/bench/README.md, session 17
//! cp100k lane; 1024 blocks gained nothing). The cost: the cached blocks stay
//! with their thread, out of `malloc_trim`'s reach (≈ 1.8 MiB more RSS kept
//! after a withdrawn 100k table). glibc takes that setting only from
//! `GLIBC_TUNABLES` at exec (no `mallopt`), so [`tune`] re-executes the agent
//! once with it set (same program, PID, arguments and environment), then
//! removes it, so processes the agent starts do not inherit it.
//!
//! Data flow: `main` calls [`tune`] first thing for `tortie run`; it decides
//! from the environment ([`plan`]) and either re-executes, calls `mallopt`,
//! or leaves the operator's settings alone.

use std::ffi::OsStr;

/// Blocks at least this large get a mapping of their own (and disable
/// glibc's dynamic threshold).
const MMAP_THRESHOLD: i32 = 256 * 1024;
/// malloc arenas shared by all threads.
const ARENA_MAX: i32 = 2;
/// Freed blocks of one size each thread keeps for reuse (glibc's default: 7).
pub const TCACHE_COUNT: u32 = 4096;
/// Set on the agent's own re-execution, so it knows the tunables are its own.
const REEXEC_MARK: &str = "TORTIE_MALLOC_TUNED";
/// Route changes applied since the last trim before the agent trims again
/// once idle.
const TRIM_AFTER: usize = 65_536;

/// What [`tune`] does, decided from the environment by [`plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Re-execute with [`tunables`] in `GLIBC_TUNABLES`.
    Reexec,
    /// This is the re-executed agent: the tunables are in force; remove them
    /// (and the mark) from the environment.
    Tuned,
    /// The operator chose (`GLIBC_TUNABLES`): leave the allocator alone.
    Operator,
    /// `mallopt` whichever of the two settings the environment does not
    /// already set (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_ARENA_MAX`).
    Mallopt { threshold: bool, arenas: bool },
}

/// What to do given the value of an environment variable by name.
pub fn plan(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Plan {
    if var(REEXEC_MARK).is_some()
        && var("GLIBC_TUNABLES").as_deref() == Some(OsStr::new(&tunables()))
    {
        return Plan::Tuned;
    }
    if var("GLIBC_TUNABLES").is_some() {
        return Plan::Operator;
    }
    let threshold = var("MALLOC_MMAP_THRESHOLD_").is_none();
    let arenas = var("MALLOC_ARENA_MAX").is_none();
    if threshold && arenas && var(REEXEC_MARK).is_none() {
        Plan::Reexec
    } else {
        Plan::Mallopt { threshold, arenas }
    }
}

/// The agent's glibc tunables: the tcache, the mmap threshold and the arenas.
pub fn tunables() -> String {
    format!(
        "glibc.malloc.tcache_count={TCACHE_COUNT}:glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:glibc.malloc.arena_max={ARENA_MAX}"
    )
}

/// Sets the allocator up for a long-running agent holding large tables. Call
/// first thing in `main`, before the async runtime starts its threads: it may
/// re-execute the process (see the module doc); if that fails, it sets the
/// mmap threshold and the arenas with `mallopt` and runs without the larger
/// tcache. Environment settings (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`,
/// `GLIBC_TUNABLES`) are left alone when present, so an operator can still
/// choose.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut p = plan(|n| std::env::var_os(n));
        match p {
            Plan::Operator => return,
            Plan::Tuned => {
                // SAFETY: called before any other thread exists (see above).
                unsafe {
                    std::env::remove_var("GLIBC_TUNABLES");
                    std::env::remove_var(REEXEC_MARK);
                }
                return;
            }
            Plan::Reexec => {
                let e = reexec();
                // Still here: the exec failed; tune what mallopt can.
                eprintln!("tortie: re-executing with GLIBC_TUNABLES failed ({e}); using mallopt");
                p = Plan::Mallopt {
                    threshold: true,
                    arenas: true,
                };
            }
            Plan::Mallopt { .. } => {}
        }
        if let Plan::Mallopt { threshold, arenas } = p {
            // SAFETY: mallopt only changes allocator parameters; it is called
            // before any other thread exists.
            unsafe {
                if threshold {
                    libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
                }
                if arenas {
                    libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
                }
            }
        }
    }
}

/// Replaces the process with the same program, arguments and environment
/// plus the agent's tunables and [`REEXEC_MARK`]; returns only on failure.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn reexec() -> std::io::Error {
    use std::os::unix::process::CommandExt;
    // The program's own path, not /proc/self/exe: the kernel names the
    // process after the file executed (`ps`, `pidof tortie`).
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return e,
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "tortie".into());
    std::process::Command::new(exe)
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", tunables())
        .env(REEXEC_MARK, "1")
        .exec()
}

/// Gives free memory at the end of the heap and free whole pages inside it
/// back to the kernel (glibc `malloc_trim`). Takes a few milliseconds on a
/// large heap.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory malloc considers free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Counts route changes and says when a trim is worth it: after a large
/// batch (an initial table load, a peer with many routes going away), once
/// the agent has caught up.
#[derive(Debug, Default)]
pub struct Trimmer {
    since: usize,
}

impl Trimmer {
    /// `n` route changes were applied.
    pub fn applied(&mut self, n: usize) {
        self.since = self.since.saturating_add(n);
    }

    /// Called when nothing is left to apply: true (and the count restarts)
    /// when enough changed since the last trim.
    pub fn idle(&mut self) -> bool {
        if self.since >= TRIM_AFTER {
            self.since = 0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_only_after_a_large_batch_once_idle() {
        let mut t = Trimmer::default();
        t.applied(10);
        assert!(!t.idle());
        t.applied(TRIM_AFTER);
        assert!(t.idle());
        assert!(!t.idle(), "counted again from zero");
        t.applied(TRIM_AFTER - 1);
        assert!(!t.idle());
        t.applied(1);
        assert!(t.idle());
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> + 'a {
        move |n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.into())
    }

    #[test]
    fn tunables_carry_the_mallopt_values() {
        let t = tunables();
        assert!(
            t.contains(&format!("glibc.malloc.tcache_count={TCACHE_COUNT}")),
            "{t}"
        );
        assert!(
            t.contains(&format!("glibc.malloc.mmap_threshold={MMAP_THRESHOLD}")),
            "{t}"
        );
        assert!(
            t.contains(&format!("glibc.malloc.arena_max={ARENA_MAX}")),
            "{t}"
        );
    }

    #[test]
    fn plan_reexecutes_once_and_leaves_the_operator_alone() {
        let ours = tunables();
        assert_eq!(plan(env(&[])), Plan::Reexec);
        assert_eq!(plan(env(&[("PATH", "/bin")])), Plan::Reexec);
        // The re-executed agent: no second exec.
        assert_eq!(
            plan(env(&[(REEXEC_MARK, "1"), ("GLIBC_TUNABLES", &ours)])),
            Plan::Tuned
        );
        // The operator's tunables win, also over a stale mark.
        assert_eq!(
            plan(env(&[("GLIBC_TUNABLES", "glibc.malloc.arena_max=4")])),
            Plan::Operator
        );
        assert_eq!(
            plan(env(&[
                (REEXEC_MARK, "1"),
                ("GLIBC_TUNABLES", "glibc.malloc.arena_max=4")
            ])),
            Plan::Operator
        );
        // A mark without our tunables (inherited by a child): no exec loop.
        assert_eq!(
            plan(env(&[(REEXEC_MARK, "1")])),
            Plan::Mallopt {
                threshold: true,
                arenas: true
            }
        );
        assert_eq!(
            plan(env(&[("MALLOC_ARENA_MAX", "8")])),
            Plan::Mallopt {
                threshold: true,
                arenas: false
            }
        );
        assert_eq!(
            plan(env(&[("MALLOC_MMAP_THRESHOLD_", "4096")])),
            Plan::Mallopt {
                threshold: false,
                arenas: true
            }
        );
    }
}
