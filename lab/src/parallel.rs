//! Bounded concurrency for the runner's `up` (issue 16): a list of
//! independent jobs (create a namespace, add a veth, run one node's `exec`
//! lines, attach one node's containers) run on at most `jobs` threads.
//!
//! Most of a job's time is process start-up (`ip`, `sh`, the `tortie` CLI)
//! and waiting on the kernel, so a few jobs per core keep the cores busy
//! without hundreds of processes at once. Results come back in the order of
//! the input; the first error stops the workers from taking new jobs (those
//! already running finish) and is returned. The caller records on disk what
//! the jobs will create *before* calling [`for_each`] (the runner's crash
//! safety), so a failure or SIGINT midway leaves nothing `down` cannot find.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::error::{LabError, Result};

/// Upper bound of [`jobs`].
pub const MAX_JOBS: usize = 16;

/// Concurrency of the runner's `up`: env `TORTIE_LAB_JOBS` (1 = serial), else
/// 4 per CPU, at most [`MAX_JOBS`].
pub fn jobs() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    jobs_from(std::env::var("TORTIE_LAB_JOBS").ok().as_deref(), cpus)
}

fn jobs_from(env: Option<&str>, cpus: usize) -> usize {
    match env.and_then(|v| v.trim().parse::<usize>().ok()) {
        Some(n) if n >= 1 => n.min(MAX_JOBS),
        _ => (4 * cpus).clamp(1, MAX_JOBS),
    }
}

/// Runs `f` on every item with at most `jobs` at a time; `stop` is checked
/// before each job (an interrupt). Returns the results in item order, or the
/// first error.
pub fn for_each<T, R, F>(
    items: &[T],
    jobs: usize,
    stop: impl Fn() -> Result<()> + Sync,
    f: F,
) -> Result<Vec<R>>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> Result<R> + Sync,
{
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<LabError>> = Mutex::new(None);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let fail = |e: LabError| {
        failed.store(true, Ordering::SeqCst);
        if let Ok(mut slot) = first_error.lock()
            && slot.is_none()
        {
            *slot = Some(e);
        }
    };
    let worker = || {
        loop {
            if failed.load(Ordering::SeqCst) {
                return;
            }
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some(item) = items.get(i) else {
                return;
            };
            match stop().and_then(|()| f(item)) {
                Ok(r) => {
                    if let Ok(mut v) = results.lock() {
                        v[i] = Some(r);
                    }
                }
                Err(e) => fail(e),
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(worker);
        }
    });
    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(e);
    }
    let v = results
        .into_inner()
        .map_err(|_| LabError::Invalid("a parallel job panicked".into()))?;
    v.into_iter()
        .collect::<Option<Vec<R>>>()
        .ok_or_else(|| LabError::Invalid("a parallel job panicked".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[test]
    fn results_in_order_with_bounded_concurrency() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let items: Vec<u64> = (0..40).collect();
        let out = for_each(
            &items,
            3,
            || Ok(()),
            |&x| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2 + x % 3));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(x * 2)
            },
        )
        .unwrap();
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        let peak = peak.load(Ordering::SeqCst);
        assert!((2..=3).contains(&peak), "peak concurrency {peak}");
    }

    #[test]
    fn first_error_stops_new_jobs() {
        let started = AtomicUsize::new(0);
        let items: Vec<usize> = (0..100).collect();
        let r = for_each(
            &items,
            2,
            || Ok(()),
            |&x| {
                started.fetch_add(1, Ordering::SeqCst);
                if x == 5 {
                    return Err(LabError::Invalid(format!("job {x} failed")));
                }
                std::thread::sleep(Duration::from_millis(1));
                Ok(x)
            },
        );
        assert_eq!(r.unwrap_err().to_string(), "job 5 failed");
        // Jobs 0..=5, plus at most one per other worker already taken.
        assert!(started.load(Ordering::SeqCst) <= 8, "{started:?}");
    }

    #[test]
    fn stop_is_an_error_before_any_job() {
        let ran = AtomicUsize::new(0);
        let r = for_each(
            &[1, 2, 3],
            2,
            || Err(LabError::Invalid("interrupted".into())),
            |_| {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
        );
        assert_eq!(r.unwrap_err().to_string(), "interrupted");
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn empty_input_and_job_counts() {
        let none: Vec<u8> = Vec::new();
        assert!(
            for_each(&none, 4, || Ok(()), |_| Ok(()))
                .unwrap()
                .is_empty()
        );
        assert_eq!(jobs_from(Some("1"), 2), 1);
        assert_eq!(jobs_from(Some("64"), 2), MAX_JOBS);
        assert_eq!(jobs_from(Some("0"), 2), 8);
        assert_eq!(jobs_from(Some("x"), 2), 8);
        assert_eq!(jobs_from(None, 8), MAX_JOBS);
    }
}
