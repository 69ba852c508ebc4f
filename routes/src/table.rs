//! The route table handle: the public face of the reconciler task that owns
//! every kernel route carrying our protocol number in one table.
//!
//! Callers state desired routes (`set`, `remove`, `replace_all`) over a
//! bounded command queue (`crate::reconcile::queue`: one lock and a push per
//! command, emptied by the task in one swap); the task (`crate::reconcile`) coalesces bursts, diffs
//! desired against what the kernel holds, writes the difference in pipelined
//! netlink batches and watches route/link notifications to put back what
//! others remove. Queries (`flush`, `installed`, `converged`) travel the same
//! queue, so they observe every command sent before them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ipnetwork::IpNetwork;
use tokio::sync::oneshot;

use crate::error::RoutesError;
use crate::reconcile::{Reconciler, queue};
use crate::types::{KernelRoute, RouteStats};

/// Commands to the reconciler task.
pub(crate) enum Command {
    Set(IpNetwork, KernelRoute),
    Install(
        IpNetwork,
        KernelRoute,
        oneshot::Sender<Result<(), RoutesError>>,
    ),
    Remove(IpNetwork),
    ReplaceAll(HashMap<IpNetwork, KernelRoute>),
    Converged(oneshot::Sender<()>),
    Flush(oneshot::Sender<Result<(), RoutesError>>),
    Installed(oneshot::Sender<HashMap<IpNetwork, KernelRoute>>),
    NotInstalled(oneshot::Sender<HashMap<IpNetwork, String>>),
}

/// Handle to the reconciler task. Cheap to clone; the task stops when the
/// last handle is dropped, leaving kernel routes in place.
#[derive(Clone)]
pub struct RouteTable {
    tx: queue::Sender,
    stats: Arc<Mutex<RouteStats>>,
}

impl RouteTable {
    /// Start the reconciler for `route_protocol` in routing table `table`
    /// (IPv4 and IPv6 routes alike)
    /// (main = 254), in the calling thread's network namespace. Subscribes
    /// to route and link notifications first, then dumps links and routes;
    /// routes of our protocol found there are adopted: kept until
    /// [`converged`](Self::converged), then deleted unless desired.
    ///
    /// Must be called inside a tokio runtime; the task is spawned on it.
    pub async fn start(route_protocol: u8, table: u32) -> Result<RouteTable, RoutesError> {
        let stats = Arc::new(Mutex::new(RouteStats::default()));
        let reconciler = Reconciler::open(route_protocol, table, stats.clone()).await?;
        let (tx, rx) = queue::queue();
        tokio::spawn(reconciler.run(rx));
        Ok(RouteTable { tx, stats })
    }

    async fn send(&self, cmd: Command) {
        if self.tx.send(cmd).await.is_err() {
            tracing::warn!("route table task has stopped; command dropped");
        }
    }

    /// Desire `route` for `prefix` (replacing any previous desire).
    pub async fn set(&self, prefix: impl Into<IpNetwork>, route: KernelRoute) {
        self.send(Command::Set(prefix.into(), route)).await;
    }

    /// Desire `route` for `prefix`, like [`set`](Self::set), and wait until
    /// the kernel holds it: `Ok` once it is installed, `NotInstalled` with
    /// the reason when it was refused (missing device, the kernel's errno
    /// and text, a route of another protocol in the way) or superseded by a
    /// later command. The desire stays either way (a refused route is
    /// retried every second). Commands queued before it are applied first.
    pub async fn install(
        &self,
        prefix: impl Into<IpNetwork>,
        route: KernelRoute,
    ) -> Result<(), RoutesError> {
        let (tx, rx) = oneshot::channel();
        if self
            .tx
            .send(Command::Install(prefix.into(), route, tx))
            .await
            .is_err()
        {
            return Err(RoutesError::TableStopped);
        }
        rx.await.map_err(|_| RoutesError::TableStopped)?
    }

    /// No longer desire a route for `prefix`; ours is deleted from the kernel.
    pub async fn remove(&self, prefix: impl Into<IpNetwork>) {
        self.send(Command::Remove(prefix.into())).await;
    }

    /// Make `desired` the whole desired set.
    pub async fn replace_all(&self, desired: HashMap<IpNetwork, KernelRoute>) {
        self.send(Command::ReplaceAll(desired)).await;
    }

    /// The caller has converged (BGP End-of-RIB from all peers, or the
    /// graceful-restart timer fired): delete adopted routes that are not
    /// desired. Returns once that sweep has been written. Container host
    /// routes must have been `set` as [`KernelRoute::Local`] before this.
    pub async fn converged(&self) {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Converged(tx)).await;
        let _ = rx.await;
    }

    /// Wait until the kernel matches the desired set as far as it can:
    /// `Ok` when every desired route is installed, `Incomplete` naming one
    /// that is not (missing device, refused by the kernel, conflict with a
    /// route of another protocol).
    pub async fn flush(&self) -> Result<(), RoutesError> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Flush(tx)).await.is_err() {
            return Err(RoutesError::TableStopped);
        }
        rx.await.map_err(|_| RoutesError::TableStopped)?
    }

    /// Routes of our protocol currently in the kernel table, as we know them.
    pub async fn installed(&self) -> HashMap<IpNetwork, KernelRoute> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Installed(tx)).await;
        rx.await.unwrap_or_default()
    }

    /// Desired routes that are not in the kernel, with why (the kernel's
    /// refusal with its errno and text, a missing device, a conflict). Each
    /// is retried every second and when links or addresses change.
    pub async fn not_installed(&self) -> HashMap<IpNetwork, String> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::NotInstalled(tx)).await;
        rx.await.unwrap_or_default()
    }

    /// A snapshot of the counters: refreshed at most every second, and
    /// always before `flush`, `converged` and `installed` return.
    pub fn stats(&self) -> RouteStats {
        match self.stats.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}
