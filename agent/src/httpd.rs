//! What the agent's two HTTP servers (the API on its unix socket, the
//! metrics port) share: a bound on concurrent connections and timeouts, so
//! that nobody holding connections open (a slowloris, a non-root user on the
//! metrics port) can exhaust the agent's file descriptors, memory or
//! attention (issue 10: 20,000 held connections once took the BGP listener
//! and the API down).
//!
//! Data flow: each server's accept loop counts its connections with a
//! [`Gate`]. The API socket (root's; CNI ADDs come in bursts that must not
//! fail) takes a slot *before* accepting ([`Gate::admit`]), so beyond
//! [`Limits::max_connections`] new connections wait in the kernel's listen
//! backlog (no fd of ours) and are served in arrival order as slots free up.
//! The metrics port (any local user) sheds load instead
//! ([`Gate::try_admit`]): a connection beyond the limit is closed at once,
//! and the next scrape succeeds as soon as the holders time out. Each
//! accepted connection runs
//! [`serve_connection`]: hyper with a header read timeout (which also ends
//! idle keep-alive connections) inside an overall connection lifetime. The
//! request handlers bound their body reads themselves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One server's limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Longest wait for a request's head, from the connection's start or the
    /// previous answer (slow senders and idle keep-alive connections).
    pub header_timeout: Duration,
    /// Longest wait for a request's body.
    pub body_timeout: Duration,
    /// Longest a connection lives, whatever it does.
    pub lifetime: Duration,
}

/// The API socket (0600, root's): the CLI and the CNI plugin send their
/// request at once; an attach queued behind a burst of others waits for the
/// IPAM lock, and a CNI GC of thousands of containers (~20 ms per veth
/// removal) finishes, well within the lifetime.
pub const API: Limits = Limits {
    max_connections: 128,
    header_timeout: Duration::from_secs(2),
    body_timeout: Duration::from_secs(5),
    lifetime: Duration::from_secs(300),
};

/// The metrics port (any local user, or the network): Prometheus keeps one
/// connection per target.
pub const METRICS: Limits = Limits {
    max_connections: 32,
    header_timeout: Duration::from_secs(5),
    body_timeout: Duration::from_secs(5),
    lifetime: Duration::from_secs(30),
};

/// Counts a server's connections against [`Limits::max_connections`].
pub struct Gate {
    name: &'static str,
    slots: Arc<Semaphore>,
    /// Logged once each time the gate fills.
    full: AtomicBool,
}

impl Gate {
    pub fn new(name: &'static str, limits: &Limits) -> Gate {
        Gate {
            name,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            full: AtomicBool::new(false),
        }
    }

    /// A slot for the next connection; waits while every slot is taken.
    pub async fn admit(&self) -> OwnedSemaphorePermit {
        if let Some(p) = self.try_take() {
            return p;
        }
        self.note_full("new connections wait in the listen backlog");
        // The semaphore is never closed.
        loop {
            if let Ok(p) = self.slots.clone().acquire_owned().await {
                return p;
            }
        }
    }

    /// A slot, or `None` (the caller closes the connection) when every slot
    /// is taken.
    pub fn try_admit(&self) -> Option<OwnedSemaphorePermit> {
        let p = self.try_take();
        if p.is_none() {
            self.note_full("new connections are closed at once");
        }
        p
    }

    fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        let p = self.slots.clone().try_acquire_owned().ok()?;
        self.full.store(false, Ordering::Relaxed);
        Some(p)
    }

    /// Logs once each time the gate fills.
    fn note_full(&self, what: &str) {
        if !self.full.swap(true, Ordering::Relaxed) {
            tracing::warn!(server = self.name, "every connection slot is taken: {what}");
        }
    }
}

/// Serves one connection under `limits`; `permit` is released when it ends.
pub async fn serve_connection<I, S, B>(
    io: I,
    svc: S,
    limits: &Limits,
    permit: OwnedSemaphorePermit,
    server: &'static str,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(io, svc);
    match tokio::time::timeout(limits.lifetime, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(server, error = %e, "connection ended with an error"),
        Err(_) => tracing::debug!(server, "connection closed: lifetime over"),
    }
    drop(permit);
}

/// Raises the soft limit on open files to the hard limit (systemd's default
/// soft limit is 1024): BGP sessions, netlink sockets and the HTTP servers'
/// bounded connections then never compete for the last descriptors.
pub fn raise_nofile_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open files limit"),
            Err(e) => tracing::warn!(error = %e, "raising the open files limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "reading the open files limit"),
    }
}
