//! How the agent uses the C allocator (glibc malloc), which Rust's global
//! allocator calls: two settings made once at start-up, before any thread
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

/// Blocks at least this large get a mapping of their own (and disable
/// glibc's dynamic threshold).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 256 * 1024;
/// malloc arenas shared by all threads.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENA_MAX: libc::c_int = 2;
/// Route changes applied since the last trim before the agent trims again
/// once idle.
const TRIM_AFTER: usize = 65_536;

/// Sets the allocator up for a long-running agent holding large tables. Call
/// first thing in `main`, before the async runtime starts its threads.
/// Environment settings (`MALLOC_ARENA_MAX`, `GLIBC_TUNABLES`) are left alone
/// when present, so an operator can still choose.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set_by_env = |name: &str| std::env::var_os(name).is_some();
        if set_by_env("GLIBC_TUNABLES") {
            return;
        }
        // SAFETY: mallopt only changes allocator parameters; it is called
        // before any other thread exists.
        unsafe {
            if !set_by_env("MALLOC_MMAP_THRESHOLD_") {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
            if !set_by_env("MALLOC_ARENA_MAX") {
                libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
            }
        }
    }
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
}
