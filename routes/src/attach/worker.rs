//! Where `attach` runs: a long-lived thread for callers in the process's own
//! network namespace (the agent), a thread of its own otherwise.
//!
//! Attach enters the container's namespace, so it never runs on a runtime
//! worker. Spawning a thread per attach cost little on a quiet machine, but
//! under CPU load a *new* thread waits for a CPU far longer than a woken
//! sleeper (measured in the agent on the shared 2-core host: spawn → first
//! instruction p50 0.13 ms, p75 1.9 ms, p90 3 ms; waking a sleeping thread
//! p90 0.13 ms). So the agent's attaches go to one persistent thread that
//! returns to its home namespace (`setns` on a descriptor it opened at
//! start) after every job; if it cannot, it answers and exits, and the next
//! attach starts a new one. Callers in another namespace (tests running a
//! "host" namespace per thread) get a fresh thread, which inherits theirs.
//!
//! Data flow: [`run`] → a [`Job`] over a channel → `attach_blocking` on the
//! thread → the result back over a oneshot.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::sync::mpsc;

use super::setup::attach_blocking;
use super::{AttachRequest, Attachment};
use crate::error::RoutesError;
use crate::netns;

struct Job {
    req: AttachRequest,
    ns: File,
    reply: tokio::sync::oneshot::Sender<Result<Attachment, RoutesError>>,
}

/// The persistent thread's queue (`None` until the first attach, or after
/// the thread gave up).
static WORKER: Mutex<Option<mpsc::Sender<Job>>> = Mutex::new(None);

/// Whether the calling thread is in the network namespace of the process's
/// main thread.
fn in_process_netns() -> bool {
    match (
        std::fs::metadata("/proc/thread-self/ns/net"),
        std::fs::metadata("/proc/self/ns/net"),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Runs `attach_blocking(req, ns)` off the caller's thread and awaits it.
pub(super) async fn run(
    req: AttachRequest,
    ns: File,
    ctx: &str,
) -> Result<Attachment, RoutesError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = Job { req, ns, reply: tx };
    let job = if in_process_netns() {
        send_to_worker(job)
    } else {
        Some(job)
    };
    if let Some(job) = job {
        std::thread::Builder::new()
            .name("tortie-attach".into())
            .spawn(move || {
                let r = attach_blocking(&job.req, &job.ns);
                let _ = job.reply.send(r);
            })
            .map_err(|e| RoutesError::io(format!("{ctx}: spawning the attach thread"), e))?;
    }
    rx.await
        .map_err(|_| RoutesError::unexpected(ctx, "the attach thread died"))?
}

/// Queues `job` for the persistent thread, starting it if needed; gives the
/// job back (`Some`) when that is impossible.
fn send_to_worker(job: Job) -> Option<Job> {
    let mut worker = WORKER.lock().unwrap_or_else(|p| p.into_inner());
    let job = match worker.as_ref() {
        Some(tx) => match tx.send(job) {
            Ok(()) => return None,
            Err(mpsc::SendError(job)) => job,
        },
        None => job,
    };
    *worker = None;
    // A new thread inherits the caller's namespace: the process's.
    let Ok(home) = File::open("/proc/thread-self/ns/net") else {
        return Some(job);
    };
    let (tx, rx) = mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new()
        .name("tortie-attach".into())
        .spawn(move || serve(rx, home));
    if spawned.is_err() {
        return Some(job);
    }
    match tx.send(job) {
        Ok(()) => {
            *worker = Some(tx);
            None
        }
        Err(mpsc::SendError(job)) => Some(job),
    }
}

fn serve(rx: mpsc::Receiver<Job>, home: File) {
    while let Ok(job) = rx.recv() {
        let r = attach_blocking(&job.req, &job.ns);
        // Home first: the next job must start in the host's namespace.
        let back = netns::enter(&home, "attach thread: returning to its namespace");
        let _ = job.reply.send(r);
        if let Err(e) = back {
            tracing::error!("{e}; the next attach starts a new thread");
            return;
        }
    }
}
