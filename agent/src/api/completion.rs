//! A request's work run inline in the connection's task that still runs to
//! completion when the connection goes away ([`ToCompletion`]).
//!
//! The API server (`super::server`) polls each request's future in the
//! connection's own task, so the answer is written by the thread that
//! finished the work: an attach ends on the thread that ran it (inside
//! `block_in_place`, which has handed the worker's core to another
//! thread), and that thread goes on to write the response in the same poll.
//! Before (session 15, cniwake lane), the request ran in a task of its own
//! that the connection awaited: a `tokio::spawn` per request (which could
//! wake an idle worker for nothing), and the task's end was a cross-thread
//! wake of the worker that then held the connection's task.
//!
//! What the spawned task gave is kept: if the connection's task drops the
//! future before it finished (the client disconnected or timed out: a CNI
//! plugin killed by its runtime, ^C on `tortie attach`), the rest of the
//! future is spawned as a task of its own, and the attach, detach or gc
//! runs to completion (or rolls back) as if the client were still there. A
//! panic inside the work is caught and reported as an error value, as a
//! failed task's `JoinError` was.
//!
//! Data flow: `server::handle_detached` wraps `dispatch(..)` in a
//! [`ToCompletion`] and awaits it; only its `Drop` (unfinished) spawns.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A boxed future awaited inline that is spawned, unfinished, when dropped
/// (see the module docs). Awaiting it yields `Ok(output)`, or `Err` with the
/// panic's message if polling the future panicked.
pub(super) struct ToCompletion<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fut: Option<Pin<Box<F>>>,
}

impl<F> ToCompletion<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    pub(super) fn new(fut: F) -> Self {
        ToCompletion {
            fut: Some(Box::pin(fut)),
        }
    }
}

impl<F> Future for ToCompletion<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Pin<Box<F>>` is `Unpin`, so `Self` is too.
        let Some(fut) = self.fut.as_mut() else {
            return Poll::Ready(Err("polled after it finished".to_string()));
        };
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => {
                self.fut = None;
                Poll::Ready(Ok(out))
            }
            Err(panic) => {
                // Never polled again, nor spawned.
                self.fut = None;
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_string());
                Poll::Ready(Err(what))
            }
        }
    }
}

impl<F> Drop for ToCompletion<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        if let Some(fut) = self.fut.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    drop(h.spawn(fut));
                }
                Err(_) => {
                    tracing::warn!("api: a request dropped outside the runtime did not finish");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::Waker;

    use super::*;

    /// Work dropped half-way (its client gone) still runs to the end, on a
    /// task of its own.
    #[tokio::test]
    async fn work_dropped_unfinished_runs_to_completion() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let finished = Arc::new(AtomicBool::new(false));
        let f = finished.clone();
        let mut work = ToCompletion::new(async move {
            let _ = rx.await;
            f.store(true, Ordering::SeqCst);
            let _ = done_tx.send(());
            7
        });
        let first = Pin::new(&mut work).poll(&mut Context::from_waker(Waker::noop()));
        assert!(first.is_pending(), "waits for its input");
        drop(work);
        tx.send(()).expect("the work still holds its receiver");
        tokio::time::timeout(std::time::Duration::from_secs(5), done_rx)
            .await
            .expect("finished in time")
            .expect("finished, not dropped");
        assert!(finished.load(Ordering::SeqCst));
    }

    /// Awaited to the end, it yields the output inline; a panic is an error.
    #[tokio::test]
    async fn awaited_work_answers_and_a_panic_is_an_error() {
        assert_eq!(ToCompletion::new(async { 7 }).await, Ok(7));
        let r = ToCompletion::new(async {
            if std::hint::black_box(true) {
                panic!("boom");
            }
        })
        .await;
        assert_eq!(r, Err("boom".to_string()));
    }
}
