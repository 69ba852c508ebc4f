//! A counting global allocator for the memory tests, examples and
//! benchmarks (bytes per route, teardown peaks): it forwards to the system
//! allocator and keeps the live heap, its peak and the allocation count in
//! process-wide counters. Nothing in the speaker uses it; a binary opts in:
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: tortie_bgp::heap::CountingAlloc = tortie_bgp::heap::CountingAlloc;
//!
//! fn main() {
//!     let before = tortie_bgp::heap::reset_peak();
//!     let v = vec![0u8; 4096];
//!     assert!(tortie_bgp::heap::peak_bytes() >= before + 4096);
//!     drop(v);
//! }
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counted; see the module doc.
pub struct CountingAlloc;

fn grew(now: usize) {
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: forwards every call to the system allocator with the caller's
// arguments; only counts sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        grew(LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size());
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: p was allocated by System with l.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // The old block stays live until the copy is done.
        grew(LIVE.fetch_add(new, Ordering::Relaxed) + new);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: p was allocated by System with l.
        unsafe { System.realloc(p, l, new) }
    }
}

/// Live heap bytes of the process (0 unless [`CountingAlloc`] is the global allocator).
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// The highest live heap since the last [`reset_peak`].
pub fn peak_bytes() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Starts a new peak measurement from the current live heap; returns it.
pub fn reset_peak() -> usize {
    let now = live_bytes();
    PEAK.store(now, Ordering::Relaxed);
    now
}

/// Allocations and reallocations so far.
pub fn allocations() -> usize {
    ALLOCS.load(Ordering::Relaxed)
}

/// This thread's CPU seconds (user + system), for the benchmarks' CPU
/// columns beside the heap figures.
pub fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}
