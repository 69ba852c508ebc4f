//! Where `attach` runs: on the calling thread, taken out of the async
//! runtime for the duration, or on a thread of its own.
//!
//! Attach enters the container's namespace, so it never runs on a runtime
//! *worker*. On a multi-threaded tokio runtime (the agent's), the caller's
//! thread runs it inside [`tokio::task::block_in_place`]: the worker's
//! queue and driver move to another thread first, so this one is an
//! ordinary blocking thread while it is in the container's namespace; it
//! returns to the [`Attacher`]'s namespace (`setns` on the descriptor it
//! keeps; the caller's, which made it there) before `block_in_place`
//! returns. No thread hand-off on
//! the attach path: before, the job went to a persistent attach thread and
//! its answer back over a oneshot, two cross-thread wake-ups (~0.07 +
//! 0.05 ms quiet, lab/bench/README.md session 2; more under load). A
//! thread that cannot return home aborts the process: as a runtime thread
//! in a container's namespace it would open the agent's later sockets there
//! (a `setns` into a namespace we hold open fails only without memory).
//!
//! Anywhere else (a current-thread runtime: tests and tools) a fresh thread
//! does the work; it enters the [`Attacher`]'s namespace first and exits
//! afterwards.
//!
//! Data flow: [`run`] → `attach_blocking` here or on the fresh thread → the
//! [`Attachment`] to the awaiting task.

use std::fs::File;

use tokio::runtime::{Handle, RuntimeFlavor};

use super::attacher::Attacher;
use super::setup::attach_blocking;
use super::{AttachRequest, Attachment};
use crate::error::RoutesError;
use crate::netns;

/// Runs `attach_blocking(req, ns, on_host_up)` off the runtime's workers
/// (see the module docs) and returns its result. On the fresh thread's
/// path `on_host_up` runs here once the attach has succeeded (it need not
/// be `'static`).
pub(super) async fn run(
    attacher: &Attacher,
    req: AttachRequest,
    ns: File,
    ctx: &str,
    on_host_up: impl FnOnce(&str) + Send,
) -> Result<Attachment, RoutesError> {
    let multi_thread =
        Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if multi_thread {
        return tokio::task::block_in_place(|| {
            let r = attach_blocking(attacher, &req, &ns, on_host_up);
            let home = attacher.home();
            if let Err(e) = netns::enter(home, "attach: returning to the caller's namespace") {
                tracing::error!(
                    "{e}; aborting rather than run the agent in a container's namespace"
                );
                std::process::abort();
            }
            r
        });
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let attacher = attacher.clone();
    std::thread::Builder::new()
        .name("tortie-attach".into())
        .spawn(move || {
            // In the attacher's namespace, where its socket and sysctl are.
            let r = netns::enter(attacher.home(), "attach: entering the host namespace")
                .and_then(|()| attach_blocking(&attacher, &req, &ns, |_| {}));
            let _ = tx.send(r);
        })
        .map_err(|e| RoutesError::io(format!("{ctx}: spawning the attach thread"), e))?;
    let a = rx
        .await
        .map_err(|_| RoutesError::unexpected(ctx, "the attach thread died"))??;
    on_host_up(&a.host_ifname);
    Ok(a)
}
