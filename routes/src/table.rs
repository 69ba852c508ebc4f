//! The route table handle: the public face of the reconciler task that owns
//! every kernel route carrying our protocol number in one table.
//!
//! Callers state desired routes (`set`, `apply`, `remove`, `replace_all`)
//! over a bounded command queue (`crate::reconcile::queue`: one lock and a
//! push per command, or per batch with [`RouteTable::apply`], emptied by the
//! task in one swap; a full queue makes the caller wait, which is how a
//! producer learns the kernel's pace). The task (`crate::reconcile`) applies
//! the commands in order to its per-prefix desired state (no coalescing of
//! its own: the BGP speaker's outbox is the one stage that drops superseded
//! changes — but for an ordered producer's change older than an express one
//! of its prefix, [`RouteTable::express`]), diffs desired against what the kernel holds, writes the
//! difference in pipelined netlink batches and watches route/link
//! notifications to put back what others remove. Queries (`flush`,
//! `installed`, `converged`) travel the same queue, so they observe every
//! command sent before them.
//!
//! Routes are interned once, by the table's one interner
//! ([`RouteTable::intern`] → [`SharedRoute`]), shared by the handles and the
//! task: a caller that desires one route for many prefixes (learned routes
//! over one ECMP set) interns it once and passes a reference count per
//! prefix, and the task's slots hold the same allocation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ipnetwork::IpNetwork;
use tokio::sync::oneshot;

use crate::attach::HostRoutes;
use crate::error::RoutesError;
use crate::nl::consts::{
    RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE, RTMGRP_LINK,
    RTMGRP_NEIGH,
};
use crate::reconcile::{Reconciler, RouteInterner, Shared, queue};
use crate::types::{KernelRoute, RouteStats};

/// A desired route interned by the route table ([`RouteTable::intern`]):
/// cheap to clone and to pass, and the very allocation the reconciler keeps
/// per prefix. Next hops are normalized (sorted, de-duplicated).
#[derive(Clone, PartialEq, Eq)]
pub struct SharedRoute(Shared);

impl std::ops::Deref for SharedRoute {
    type Target = KernelRoute;
    fn deref(&self) -> &KernelRoute {
        &self.0
    }
}

impl std::fmt::Debug for SharedRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// How the reconciler writes routes ([`RouteTable::start_with`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableOptions {
    /// Learned routes with one plain next hop (no device, not on-link) go
    /// through kernel nexthop objects (`RTA_NH_ID`) the reconciler owns,
    /// instead of inline gateways (docs/design.md, "Nexthop objects");
    /// off: inline, as before session 16.
    pub nexthop_objects: bool,
}

/// The order of a [`Command::Change`] from a producer without one: never
/// dropped as older than an express change, never taken as the bulk's
/// progress (docs/design.md, "Express changes").
pub(crate) const UNORDERED: u64 = 0;

/// Commands to the reconciler task. Routes come interned.
pub(crate) enum Command {
    /// A desire (`Some`) or a removal (`None`) for a prefix, with the order
    /// of its producer's burst ([`RouteTable::apply_in_order`],
    /// [`RouteTable::express`]), or [`UNORDERED`] for a producer without
    /// one ([`RouteTable::set`], [`RouteTable::remove`],
    /// [`RouteTable::apply`]): the one model of a route desire, with one
    /// entry path in the reconciler.
    Change(IpNetwork, Option<Shared>, u64),
    Install(IpNetwork, Shared, oneshot::Sender<Result<(), RoutesError>>),
    /// A desire the caller is about to write itself ([`RouteTable::expect`]).
    Expect(IpNetwork, Shared),
    /// A removal ([`Command::Change`] with `None`) whose sender waits until
    /// the reconciler has taken it ([`RouteTable::uninstall`]).
    Uninstall(IpNetwork, oneshot::Sender<()>),
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
    routes: RouteInterner,
    owner: HostRoutes,
}

impl RouteTable {
    /// The netlink multicast groups the reconciler's monitor joins: links,
    /// IPv4 and IPv6 addresses and routes, neighbours (what it must hear of
    /// others' changes; its own route writes are dropped in the kernel by
    /// a socket filter).
    pub const MONITOR_GROUPS: u32 = RTMGRP_LINK
        | RTMGRP_IPV4_IFADDR
        | RTMGRP_IPV4_ROUTE
        | RTMGRP_IPV6_IFADDR
        | RTMGRP_IPV6_ROUTE
        | RTMGRP_NEIGH;

    /// Start the reconciler for `route_protocol` in routing table `table`
    /// (IPv4 and IPv6 routes alike)
    /// (main = 254), in the calling thread's network namespace. Subscribes
    /// to route and link notifications first, then dumps links and routes;
    /// routes of our protocol found there are adopted: kept until
    /// [`converged`](Self::converged), then deleted unless desired.
    ///
    /// Must be called inside a tokio runtime; the task is spawned on it.
    pub async fn start(route_protocol: u8, table: u32) -> Result<RouteTable, RoutesError> {
        Self::start_with(route_protocol, table, TableOptions::default()).await
    }

    /// [`start`](Self::start) with `options`.
    pub async fn start_with(
        route_protocol: u8,
        table: u32,
        options: TableOptions,
    ) -> Result<RouteTable, RoutesError> {
        let stats = Arc::new(Mutex::new(RouteStats::default()));
        let routes = RouteInterner::default();
        let reconciler = Reconciler::open(
            route_protocol,
            table,
            stats.clone(),
            routes.clone(),
            options.nexthop_objects,
        )
        .await?;
        let (tx, rx) = queue::queue();
        tokio::spawn(reconciler.run(rx));
        Ok(RouteTable {
            tx,
            stats,
            routes,
            owner: HostRoutes {
                protocol: route_protocol,
                table,
            },
        })
    }

    /// The table's shared copy of `route` (normalized): pass it to
    /// [`set_shared`](Self::set_shared) or [`apply`](Self::apply) for as
    /// many prefixes as use it. Takes a lock shared with the task: call it
    /// once per distinct route, not per prefix.
    pub fn intern(&self, route: KernelRoute) -> SharedRoute {
        SharedRoute(self.routes.intern(route.normalized()))
    }

    async fn send(&self, cmd: Command) {
        if self.tx.send(cmd).await.is_err() {
            tracing::warn!("route table task has stopped; command dropped");
        }
    }

    /// Desire `route` for `prefix` (replacing any previous desire).
    pub async fn set(&self, prefix: impl Into<IpNetwork>, route: KernelRoute) {
        let route = self.routes.intern(route.normalized());
        self.send(Command::Change(prefix.into(), Some(route), UNORDERED))
            .await;
    }

    /// [`set`](Self::set) with a route interned by [`intern`](Self::intern).
    pub async fn set_shared(&self, prefix: impl Into<IpNetwork>, route: &SharedRoute) {
        self.send(Command::Change(
            prefix.into(),
            Some(route.0.clone()),
            UNORDERED,
        ))
        .await;
    }

    /// Desires in order, as one burst: `Some` = [`set_shared`](Self::set_shared),
    /// `None` = [`remove`](Self::remove). Queued under one lock per queue's
    /// worth; waits (like every command) while the queue is full.
    pub async fn apply(&self, changes: Vec<(IpNetwork, Option<SharedRoute>)>) {
        self.apply_in_order(UNORDERED, changes).await;
    }

    /// [`apply`](Self::apply) for a producer whose bursts carry an `order`
    /// (rising from one burst to the next; one producer per table), so that
    /// some of its changes may overtake the rest ([`express`](Self::express)).
    /// Per-prefix order holds: a change of this burst for a prefix whose
    /// express change of a later order has already been applied is dropped
    /// (it is older), never written over it.
    pub async fn apply_in_order(&self, order: u64, changes: Vec<(IpNetwork, Option<SharedRoute>)>) {
        let cmds = changes
            .into_iter()
            .map(|(p, r)| Command::Change(p, r.map(|r| r.0), order));
        if self.tx.send_all(cmds).await.is_err() {
            tracing::warn!("route table task has stopped; commands dropped");
        }
    }

    /// Changes of the burst `order` of an [`apply_in_order`](Self::apply_in_order)
    /// producer that overtake the bulk: queued at once (never waiting; the
    /// caller bounds them, a few per burst) and taken by the table ahead of
    /// every command still queued, at the next boundary of the burst it is
    /// writing (each netlink batch, ≈ 270 routes). Send them before the
    /// rest of burst `order` and before any later burst: a change of an
    /// earlier burst for the same prefix that arrives after one of these is
    /// dropped (docs/design.md, "Express changes").
    pub fn express(&self, order: u64, changes: Vec<(IpNetwork, Option<SharedRoute>)>) {
        let cmds = changes
            .into_iter()
            .map(|(p, r)| Command::Change(p, r.map(|r| r.0), order));
        if self.tx.send_express(cmds).is_err() {
            tracing::warn!("route table task has stopped; commands dropped");
        }
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
        let route = self.routes.intern(route.normalized());
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

    /// The protocol and table of this table's routes: what an attach that
    /// writes a container's host routes itself writes them with
    /// ([`crate::AttachRequest::host_routes`]).
    pub fn host_routes(&self) -> HostRoutes {
        self.owner
    }

    /// Desire `route` for `prefix`, which the caller is about to write to
    /// the kernel itself, with this table's protocol and table
    /// ([`host_routes`](Self::host_routes)), created exclusively: an
    /// attach's host route, written on the attach's thread in the same
    /// `sendmsg` as the rest of the host end (no hand-off to the table's
    /// thread, no wait for it; lab/bench/README.md, session 16, cniadd
    /// lane). Send it before the write. The table stays the route's one
    /// owner: it takes the desire as any other, but writes nothing for the
    /// prefix while it waits for the caller's write; the write's
    /// notification (queued to the table's monitor before the caller goes
    /// on) or a re-dump shows it installed, and from then on it is the
    /// table's like any route it wrote (put back if removed, deleted when
    /// no longer desired). A resync takes the commands queued during its
    /// dump before sweeping strays, so the route is never swept as one.
    /// If the caller's write was refused, [`install`](Self::install) the
    /// same route (the table then writes it, or says why not); if the
    /// caller gives up, [`remove`](Self::remove) it. Returns once queued
    /// (without waking the table's task: see the body).
    pub async fn expect(&self, prefix: impl Into<IpNetwork>, route: KernelRoute) {
        let route = self.routes.intern(route.normalized());
        // Queued without waking the table's task (a cross-thread wake-up
        // on the attach's path): the attach's own link notifications wake
        // it, and every command, query and re-dump takes it in order first.
        if self
            .tx
            .send_quiet(Command::Expect(prefix.into(), route))
            .await
            .is_err()
        {
            tracing::warn!("route table task has stopped; command dropped");
        }
    }

    /// No longer desire a route for `prefix`; ours is deleted from the kernel.
    pub async fn remove(&self, prefix: impl Into<IpNetwork>) {
        self.send(Command::Change(prefix.into(), None, UNORDERED))
            .await;
    }

    /// [`remove`](Self::remove), returning once the table no longer desires
    /// a route for `prefix` (commands queued before it applied, our route's
    /// delete written or planned). Then a device the route named may be
    /// deleted: the table no longer wants a route through it, so the link's
    /// removal is not a route refused for a missing device (a WARN and a
    /// `no_device` failure, as every container detach logged before
    /// session 14: the veth went first). Returns at once if the table stopped.
    pub async fn uninstall(&self, prefix: impl Into<IpNetwork>) {
        let (tx, rx) = oneshot::channel();
        if self
            .tx
            .send(Command::Uninstall(prefix.into(), tx))
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
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
