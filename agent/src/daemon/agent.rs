//! The running agent: the one place where IPAM, the container registry,
//! the dataplane and the BGP speaker meet (DESIGN.md §2). Implements the API
//! [`Backend`] and the [`MetricsSource`].
//!
//! Data flow: attach, detach, check and gc live in [`super::containers`]
//! (IPAM allocates, `routes` makes the veth, the [`Registry`] records the
//! container, this module announces its /32: the route table installs the
//! `Local` host route — the only writer of our routes; awaited — and
//! `speaker.originate(/32)` when the address is outside the block or
//! `advertise = "hosts"`). One async mutex (around IPAM) serialises
//! attach/detach/gc so two calls for one id never interleave. Learned best
//! paths arrive in batches, taken from the speaker at the route table's
//! pace ([`super::batch`]: the speaker's outbox is the one coalescing stage),
//! through [`Agent::steps`] and [`Agent::apply_steps`], and become desires
//! in the route table, each carrying the table's interned route for its
//! next-hop set; a learned route never overrides the node's blocks or an
//! address the registry holds.
//!
//! The kernel is reached only through the traits of [`super::kernel`] (the
//! route table and the containers' veths): `Agent` is generic over them, so
//! the orchestration is tested without root over recording doubles.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use tokio::sync::Mutex;
use tortie_bgp::{ExpressEvents, Prefix, RouteQuery, Speaker, SpeakerEvent};
use tortie_config::Config;
use tortie_routes::{KernelRoute, RouteTable};

use super::batch::{self, Learned, Step};
use super::convert;
use super::kernel::{KernelVeths, Routes, Veths};
use super::registry::{Registry, host_net};
use crate::api::{
    ApiError, AttachRequest, AttachResult, Backend, CheckRequest, DetachRequest, DetachResult,
    ErrorKind, GcRequest, GcResult, IpamView, NodeView, RouteView, RoutesQuery, StatusView,
};
use crate::ipam::{Ipam, Pending};
use crate::metrics::{MetricsSnapshot, MetricsSource};

/// Generic over what it asks of the kernel ([`super::kernel`]): the route
/// table `R` and the containers' veths `V`; `tortie run` uses the real ones.
pub struct Agent<R: Routes = RouteTable, V: Veths = KernelVeths> {
    cfg: RwLock<Arc<Config>>,
    /// `None` once [`Agent::shutdown_speaker`] ran.
    speaker: tokio::sync::RwLock<Option<Speaker>>,
    pub(crate) table: R,
    /// The containers' veths.
    pub(super) veths: V,
    /// IPAM, and the lock serialising attach/detach/gc: taken through
    /// [`Agent::lock_ipam`].
    ipam: Mutex<Ipam>,
    /// The `fdatasync` of the last attach's IPAM records, still running on
    /// the blocking pool after the attach answered
    /// ([`super::containers`]); taken and settled by the next
    /// [`Agent::lock_ipam`] (touched only under the `ipam` lock).
    unsynced: std::sync::Mutex<Option<tokio::task::JoinHandle<Vec<Pending>>>>,
    /// The containers (written only under the `ipam` lock; read anywhere).
    registry: RwLock<Registry>,
    converged: AtomicBool,
    /// MTU for container interfaces.
    pub(super) mtu: u32,
    /// Whether learned routes go into the kernel (`tortie run --no-kernel`
    /// clears it: the speaker, RIB and attach path run as usual).
    pub(crate) install_learned: bool,
}

impl<R: Routes, V: Veths> Agent<R, V> {
    pub fn new(
        cfg: Arc<Config>,
        speaker: Speaker,
        table: R,
        veths: V,
        ipam: Ipam,
        mtu: u32,
        registry: Registry,
    ) -> Self {
        Agent {
            cfg: RwLock::new(cfg),
            speaker: tokio::sync::RwLock::new(Some(speaker)),
            table,
            veths,
            ipam: Mutex::new(ipam),
            unsynced: std::sync::Mutex::new(None),
            registry: RwLock::new(registry),
            converged: AtomicBool::new(false),
            mtu,
            install_learned: true,
        }
    }

    pub fn config(&self) -> Arc<Config> {
        match self.cfg.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn set_config(&self, cfg: Arc<Config>) {
        match self.cfg.write() {
            Ok(mut c) => *c = cfg,
            Err(poisoned) => *poisoned.into_inner() = cfg,
        }
    }

    pub(super) fn registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Write access; callers hold the `ipam` lock.
    pub(super) fn registry_mut(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the attach/detach/gc in flight (they run to completion
    /// whatever happens to their client), then holds them off: for shutdown.
    pub async fn quiesce(&self) -> tokio::sync::MutexGuard<'_, Ipam> {
        self.lock_ipam().await
    }

    /// The IPAM lock, with the last attach's records settled first: their
    /// `fdatasync` joined and its outcome given to [`Ipam::settle`] (a
    /// failed one keeps the answered addresses and writes a snapshot). Every
    /// user that changes IPAM (attach, detach, check, gc, shutdown) takes it
    /// here, so a journal record is synced before the next is written; the
    /// status and metrics readers take the plain lock (counts only; a
    /// scrape dropped mid-wait must not drop the sync's outcome).
    pub(super) async fn lock_ipam(&self) -> tokio::sync::MutexGuard<'_, Ipam> {
        let mut ipam = self.ipam.lock().await;
        let unsynced = self
            .unsynced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(sync) = unsynced {
            settle_sync(&mut ipam, sync).await;
        }
        ipam
    }

    /// Whether an answered attach's IPAM sync waits for the next
    /// [`Agent::lock_ipam`].
    #[cfg(test)]
    pub(super) fn sync_deferred(&self) -> bool {
        self.unsynced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Hands the `fdatasync` of an answered attach's records to the next
    /// [`Agent::lock_ipam`]. Called with the `ipam` lock held.
    pub(super) fn defer_sync(&self, sync: tokio::task::JoinHandle<Vec<Pending>>) {
        *self.unsynced.lock().unwrap_or_else(|p| p.into_inner()) = Some(sync);
    }

    /// The speaker, or an error once it has been shut down.
    pub async fn speaker(&self) -> Result<tokio::sync::RwLockReadGuard<'_, Speaker>, ApiError> {
        tokio::sync::RwLockReadGuard::try_map(self.speaker.read().await, Option::as_ref)
            .map_err(|_| ApiError::new(ErrorKind::Unavailable, "the agent is shutting down"))
    }

    /// Stops every BGP session. `graceful`: no NOTIFICATION, so graceful
    /// restart peers keep our routes (RFC 4724). Waits for API calls in flight.
    pub async fn shutdown_speaker(&self, graceful: bool) {
        let speaker = self.speaker.write().await.take();
        if let Some(s) = speaker {
            s.shutdown(graceful).await;
        }
    }

    pub fn is_converged(&self) -> bool {
        self.converged.load(Ordering::Relaxed)
    }

    /// Marks initial convergence and sweeps adopted kernel routes that BGP did
    /// not re-learn (DESIGN.md §3 graceful restart, restarting side).
    pub async fn mark_converged(&self, why: &str) {
        if self.converged.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::info!(reason = why, "BGP converged: sweeping stale kernel routes");
        self.table.converged().await;
    }

    /// Announces a container's address (found at start-up or just
    /// attached): kernel host route installed through the route table (and
    /// waited for), /32 or /128 originated if needed. The registry entry is
    /// the caller's.
    pub async fn announce(&self, ip: IpAddr, host_ifname: &str) -> Result<(), ApiError> {
        self.install_host_route(ip, host_ifname.to_string()).await?;
        self.originate_host(ip).await
    }

    /// The first half of [`Self::announce`]: the host route `ip` via `dev`
    /// through the route table, waited for: the container is usable once it
    /// is in the kernel. An attach writes its host routes itself and uses
    /// this only for one the kernel refused to it (`containers`).
    pub(super) async fn install_host_route(&self, ip: IpAddr, dev: String) -> Result<(), ApiError> {
        let net = host_net(ip);
        self.table
            .install(net, KernelRoute::Local { dev: dev.clone() })
            .await
            .map_err(|e| ApiError::internal(format!("host route {net} dev {dev}: {e}")))
    }

    /// The second half of [`Self::announce`]: the /32 or /128 originated
    /// when `bgp.advertise` asks for it.
    pub(super) async fn originate_host(&self, ip: IpAddr) -> Result<(), ApiError> {
        let cfg = self.config();
        if convert::advertise_host(&cfg, ip)
            && let Some(p) = convert::host_prefix(ip)
        {
            self.speaker()
                .await?
                .originate_with(p, convert::origin_attributes(&cfg, false))
                .await
                .map_err(|e| ApiError::internal(format!("originating {p}: {e}")))?;
        }
        Ok(())
    }

    /// `bgp.advertise` or `bgp.host_communities` changed (SIGHUP):
    /// originate (again) or withdraw each container's /32 so BGP matches.
    pub async fn readvertise(&self, old: &Config, new: &Config) {
        let ips: Vec<IpAddr> = self.registry().iter().flat_map(|c| c.ips()).collect();
        let Ok(speaker) = self.speaker().await else {
            return;
        };
        for ip in ips {
            let Some(p) = convert::host_prefix(ip) else {
                continue;
            };
            let (was, now) = (
                convert::advertise_host(old, ip),
                convert::advertise_host(new, ip),
            );
            let recolour = old.policy.host_communities != new.policy.host_communities;
            let result = match (was, now) {
                (false, true) => {
                    speaker
                        .originate_with(p, convert::origin_attributes(new, false))
                        .await
                }
                (true, true) if recolour => {
                    speaker
                        .originate_with(p, convert::origin_attributes(new, false))
                        .await
                }
                (true, false) => speaker.withdraw(p).await,
                _ => Ok(()),
            };
            if let Err(e) = result {
                tracing::warn!(%ip, error = %e, "re-advertising a container host route");
            }
        }
    }

    /// Undoes [`Agent::announce`].
    pub(super) async fn unannounce(&self, ip: IpAddr) {
        self.table.remove(host_net(ip)).await;
        if let Some(p) = convert::host_prefix(ip)
            && let Ok(speaker) = self.speaker().await
            && let Err(e) = speaker.withdraw(p).await
        {
            tracing::warn!(%ip, error = %e, "withdrawing the container host route");
        }
    }

    /// A batch of speaker events as route-table steps ([`super::batch`]):
    /// synchronous, so the event loop can keep `learned` across batches.
    pub fn steps(
        &self,
        learned: &mut Learned<R::Shared>,
        events: impl IntoIterator<Item = SpeakerEvent>,
    ) -> Vec<Step<R::Shared>> {
        let cfg = self.config();
        let cx = Filter {
            table: &self.table,
            cfg: &cfg,
            registry: self.registry(),
        };
        learned.steps(&cx, &cfg, self.install_learned, events)
    }

    /// Applies [`Self::steps`] in order: route runs are queued on the route
    /// table as one burst each (waiting while its queue is full: the speaker
    /// keeps the backlog meanwhile), peer state changes are logged,
    /// `Converged` runs the sweep after every route change received before it.
    /// `order` is the batch's ([`Learned::order`]); express changes go
    /// ahead of everything the table has queued ([`Self::express`]).
    pub async fn apply_steps(&self, order: u64, steps: Vec<Step<R::Shared>>) {
        for step in steps {
            match step {
                Step::Express(routes) => self.express(order, routes),
                Step::Routes(routes) => {
                    let traced =
                        tracing::enabled!(target: tortie_bgp::PROBE_TRACE, tracing::Level::TRACE)
                            .then(|| super::batch::traced_route(&routes))
                            .flatten();
                    if let Some((prefix, at)) = traced {
                        tracing::trace!(target: tortie_bgp::PROBE_TRACE, prefix = %prefix, at,
                            burst = routes.len(), "agent: apply");
                        self.table.apply(order, routes).await;
                        tracing::trace!(target: tortie_bgp::PROBE_TRACE, prefix = %prefix,
                            "agent: queued on the route table");
                    } else {
                        self.table.apply(order, routes).await;
                    }
                }
                Step::Event(SpeakerEvent::PeerStateChanged {
                    peer,
                    state,
                    reason,
                }) => {
                    // The speaker logged it, with the peer's name, when it happened.
                    tracing::debug!(%peer, state = state.name(), %reason, "BGP peer state changed");
                }
                Step::Event(SpeakerEvent::Converged) => {
                    self.mark_converged("End-of-RIB from every peer").await
                }
                // Route changes never come as a separate step.
                Step::Event(SpeakerEvent::BestPathChanged { .. }) => {}
            }
        }
    }

    /// [`Self::steps`] then [`Self::apply_steps`]: one batch, as `tortie
    /// run`'s event loop handles it.
    pub async fn apply_events(
        &self,
        learned: &mut Learned<R::Shared>,
        events: impl IntoIterator<Item = SpeakerEvent>,
    ) {
        let steps = self.steps(learned, events);
        self.apply_steps(learned.order(), steps).await;
    }

    /// One batch taken from the speaker's event channel (all of `taken`),
    /// as `tortie run`'s loop takes it: the express changes sent before it
    /// first (taken before it, so ordered before it), then the batch
    /// converted ([`Self::steps`]) and reported ordered to the speaker
    /// ([`tortie_bgp::ExpressEvents::ordered`]: an express change of its
    /// prefixes may leave from now on, and is taken after it with a later
    /// order), its express step queued at once, not behind the batch
    /// before (docs/design.md, "Express changes"). The batch's order and
    /// its other steps, for [`Self::apply_steps`].
    pub fn take_batch(
        &self,
        learned: &mut batch::Learned<R::Shared>,
        express: &mut ExpressEvents,
        taken: &mut Vec<SpeakerEvent>,
    ) -> (u64, Vec<Step<R::Shared>>) {
        while let Some(ev) = express.try_recv() {
            self.take_express(learned, ev);
        }
        let n = taken.len();
        let mut steps = self.steps(learned, taken.drain(..));
        let order = learned.order();
        express.ordered(n);
        if let Some(Step::Express(_)) = steps.first()
            && let Step::Express(routes) = steps.remove(0)
        {
            self.express(order, routes);
        }
        (order, steps)
    }

    /// An event of the speaker's express channel
    /// (`tortie_bgp::Speaker::express_events`): its change queued ahead of
    /// everything the table has queued, with an order of its own, after
    /// every batch converted before (so an older change of its prefix in
    /// them is dropped by the table) and before every batch after.
    pub fn take_express(&self, learned: &mut batch::Learned<R::Shared>, ev: SpeakerEvent) {
        let steps = self.steps(learned, [ev]);
        let order = learned.order();
        for step in steps {
            // One change marked `express` makes one express step, or none.
            if let Step::Express(routes) = step {
                self.express(order, routes);
            }
        }
    }

    /// Express changes of the batch `order` ([`Step::Express`]) queued on
    /// the route table at once, ahead of the bulk it still has queued; to
    /// be called before the batch's other steps and any later batch.
    pub fn express(&self, order: u64, routes: Vec<(IpNetwork, Option<R::Shared>)>) {
        if tracing::enabled!(target: tortie_bgp::PROBE_TRACE, tracing::Level::TRACE)
            && let Some((prefix, at)) = super::batch::traced_route(&routes)
        {
            tracing::trace!(target: tortie_bgp::PROBE_TRACE, prefix = %prefix, at,
                burst = routes.len(), "agent: express");
        }
        self.table.express(order, routes);
    }
}

/// The agent's side of the conversion of learned routes ([`super::batch`]):
/// the table's interner, and the filter keeping learned routes off the
/// node's own blocks and off the container addresses the registry holds
/// (host routes: /32 or /128).
struct Filter<'a, R> {
    table: &'a R,
    cfg: &'a Config,
    registry: std::sync::RwLockReadGuard<'a, Registry>,
}

impl<R: Routes> batch::Context for Filter<'_, R> {
    type Route = R::Shared;
    fn intern(&self, route: KernelRoute) -> R::Shared {
        self.table.intern(route)
    }
    fn own(&self, net: &IpNetwork) -> bool {
        let host = net.prefix() == if net.is_ipv4() { 32 } else { 128 };
        self.cfg.node.pod_cidrs.contains(net) || (host && self.registry.holds(net.ip()))
    }
}

/// Containers' addresses, the agent's own (tunl0) and the free ones.
pub(super) fn ipam_counts(ipam: &Ipam) -> IpamView {
    let (allocated, free) = ipam.counts();
    let reserved = ipam
        .allocations()
        .filter(|(id, _)| id.starts_with(crate::ipam::SYSTEM_PREFIX))
        .count() as u64;
    IpamView {
        allocated: allocated.saturating_sub(reserved),
        free,
        reserved,
    }
}

/// What kind of failure a dataplane error is, for the API status (and the
/// CNI code): a bad name or a missing namespace is the caller's; an existing
/// interface is a conflict; the rest is ours.
pub(super) fn dataplane_kind(e: &tortie_routes::RoutesError) -> ErrorKind {
    match e {
        tortie_routes::RoutesError::Invalid { .. } => ErrorKind::BadRequest,
        tortie_routes::RoutesError::Io { .. } if e.errno() == Some(libc::ENOENT) => {
            ErrorKind::BadRequest
        }
        tortie_routes::RoutesError::Netlink { .. } if e.errno() == Some(libc::EEXIST) => {
            ErrorKind::Conflict
        }
        _ => ErrorKind::Internal,
    }
}

/// Joins the `fdatasync` of an attach's IPAM records (run on the blocking
/// pool) and settles each ([`Ipam::settle`]: a failed sync keeps the
/// address and writes a snapshot).
pub(super) async fn settle_sync(ipam: &mut Ipam, sync: tokio::task::JoinHandle<Vec<Pending>>) {
    match sync.await {
        Ok(pending) => {
            for p in pending {
                if let Err(e) = ipam.settle(p) {
                    tracing::error!(error = %e, "settling an attach's IPAM record");
                }
            }
        }
        // The sync task died (panic, shutdown): the journal syncs that
        // record before writing the next (`Journal::write`).
        Err(e) => tracing::warn!(error = %e, "the IPAM sync task failed"),
    }
}

pub(super) fn ipam_error(e: crate::ipam::IpamError) -> ApiError {
    use crate::ipam::IpamError as E;
    let kind = match &e {
        E::Exhausted { .. } => ErrorKind::Exhausted,
        E::InUse { .. } | E::Conflict { .. } => ErrorKind::Conflict,
        E::InvalidId { .. } | E::Reserved { .. } | E::Unusable { .. } | E::NoPool { .. } => {
            ErrorKind::BadRequest
        }
        E::Io { .. } | E::Corrupt { .. } | E::Locked { .. } => ErrorKind::Internal,
    };
    ApiError::new(kind, e.to_string())
}

impl<R: Routes, V: Veths> Backend for Agent<R, V> {
    async fn status(&self) -> Result<StatusView, ApiError> {
        let cfg = self.config();
        let peers = self.speaker().await?.peers().await;
        let counts = ipam_counts(&*self.ipam.lock().await);
        Ok(StatusView {
            version: env!("CARGO_PKG_VERSION").to_string(),
            node: NodeView {
                name: cfg.node.name.clone(),
                address: cfg.node.addresses.primary().to_string(),
                addresses: cfg.node.addresses.iter().map(|a| a.to_string()).collect(),
                asn: cfg.node.asn,
                router_id: cfg.node.router_id.to_string(),
                pod_cidr: cfg
                    .node
                    .pod_cidrs
                    .first()
                    .map(|b| b.to_string())
                    .unwrap_or_default(),
                pod_cidrs: cfg.node.pod_cidrs.iter().map(|b| b.to_string()).collect(),
                encapsulation: cfg.dataplane.encapsulation.name().to_string(),
            },
            converged: self.is_converged(),
            peers: peers
                .iter()
                .map(|p| {
                    let mut v = convert::peer_view(p);
                    v.warning = convert::next_hop_warning(&cfg, p);
                    v
                })
                .collect(),
            containers: self.registry().len() as u64,
            ipam: counts,
        })
    }

    async fn routes(&self, q: RoutesQuery) -> Result<Vec<RouteView>, ApiError> {
        let q = match q {
            RoutesQuery::All => RouteQuery::All,
            RoutesQuery::Filtered => RouteQuery::Filtered,
            RoutesQuery::Prefix(s) => RouteQuery::Prefix(s.parse().map_err(|e| {
                ApiError::bad_request(format!("{e} (e.g. 10.244.1.0/26 or 2001:db8::/32)"))
            })?),
        };
        let routes = self.speaker().await?.query_routes(q).await;
        let installed = self.table.installed().await;
        // Desired but not in the kernel: the kernel's (or our) reason.
        let refused = self.table.not_installed().await;
        Ok(routes
            .iter()
            .map(|r| {
                let net: Option<IpNetwork> = match r.prefix {
                    Prefix::V4(p) => Ipv4Network::new(p.addr(), p.len()).ok().map(Into::into),
                    Prefix::V6(p) => Ipv6Network::new(p.addr(), p.len()).ok().map(Into::into),
                };
                let inst = net.is_some_and(|n| installed.contains_key(&n));
                let why = net.and_then(|n| refused.get(&n)).map(String::as_str);
                convert::route_view(r, inst, why)
            })
            .collect())
    }

    async fn attach(&self, req: AttachRequest) -> Result<AttachResult, ApiError> {
        self.attach_container(req).await
    }

    async fn detach(&self, req: DetachRequest) -> Result<DetachResult, ApiError> {
        self.detach_container(req).await
    }

    async fn check(&self, req: CheckRequest) -> Result<AttachResult, ApiError> {
        self.check_container(req).await
    }

    async fn gc(&self, req: GcRequest) -> Result<GcResult, ApiError> {
        self.gc_containers(req).await
    }
}

impl<R: Routes, V: Veths> MetricsSource for Agent<R, V> {
    async fn snapshot(&self) -> MetricsSnapshot {
        let peers = match self.speaker().await {
            Ok(s) => s.peers().await,
            Err(_) => Vec::new(),
        };
        let stats = self.table.stats();
        let counts = ipam_counts(&*self.ipam.lock().await);
        MetricsSnapshot {
            peers: peers.iter().map(convert::peer_metrics).collect(),
            routes_learned: stats.installed_learned,
            routes_local: stats.installed_local,
            routes_blackhole: stats.installed_blackhole,
            routes_ipv6: stats.installed_ipv6,
            netlink_errors: stats.refused.into_iter().collect(),
            routes_not_installed: stats.not_installed.into_iter().collect(),
            vxlan_vteps: stats.vteps,
            vxlan_entries_restored: stats.vtep_entries_restored,
            routes_adopted: stats.adopted_left,
            routes_swept: stats.swept,
            routes_restored: stats.restored,
            express_changes: stats.express,
            express_stale: stats.express_stale,
            containers: self.registry().len() as u64,
            ipam: vec![
                ("allocated".to_string(), counts.allocated),
                ("free".to_string(), counts.free),
                ("reserved".to_string(), counts.reserved),
            ],
            process: crate::procstat::read(),
        }
    }
}
