//! The running agent: the one place where IPAM, the dataplane and the BGP
//! speaker meet (DESIGN.md §2). Implements the API [`Backend`] and the
//! [`MetricsSource`].
//!
//! Data flow: attach = IPAM allocate (journal record written; its
//! `fdatasync` overlaps `routes::attach` — veth, /32 — and is joined before
//! the answer) → route table `Local` entry → `speaker.originate(/32)` when the address
//! is outside the block or `advertise = "hosts"`; any failure rolls the earlier
//! steps back. Detach runs the same steps in reverse. One async mutex (around
//! IPAM) serialises attach/detach/gc so two calls for one id never interleave.
//! Learned best paths arrive in coalesced batches through
//! [`Agent::apply_steps`] and become kernel routes in the route table.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use tokio::sync::Mutex;
use tortie_bgp::{Prefix, Speaker, SpeakerEvent};
use tortie_config::Config;
use tortie_routes::{KernelRoute, RouteTable};

use super::convert;
use crate::api::{
    ApiError, AttachRequest, AttachResult, Backend, CheckRequest, DetachRequest, DetachResult,
    ErrorKind, GcRequest, GcResult, IpamView, NodeView, RouteView, StatusView,
};
use crate::ipam::Ipam;
use crate::metrics::{MetricsSnapshot, MetricsSource};

/// The container's default gateway (DESIGN.md §4): link-local, answered by
/// proxy ARP on the host side of the veth.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// A container interface this agent made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local {
    pub ip: Ipv4Addr,
    pub host_ifname: String,
}

pub struct Agent {
    cfg: RwLock<Arc<Config>>,
    /// `None` once [`Agent::shutdown_speaker`] ran.
    speaker: tokio::sync::RwLock<Option<Speaker>>,
    pub(crate) table: RouteTable,
    /// IPAM, and the lock serialising attach/detach/gc.
    ipam: Mutex<Ipam>,
    /// Container /32s by address (learned routes never override them).
    locals: RwLock<BTreeMap<Ipv4Addr, String>>,
    converged: AtomicBool,
    /// What attach returned, by id, so that a repeated attach (a runtime
    /// retrying ADD) gets the same answer without touching the dataplane.
    /// Saved under `state.dir` ([`super::results`]) so the answer, MACs
    /// included, survives a restart.
    results: RwLock<BTreeMap<String, AttachResult>>,
    /// MTU for container interfaces.
    mtu: u32,
    /// Whether learned routes go into the kernel (`tortie run --no-kernel`
    /// clears it: the speaker, RIB and attach path run as usual).
    pub(crate) install_learned: bool,
}

impl Agent {
    pub fn new(
        cfg: Arc<Config>,
        speaker: Speaker,
        table: RouteTable,
        ipam: Ipam,
        mtu: u32,
        results: BTreeMap<String, AttachResult>,
    ) -> Self {
        Agent {
            cfg: RwLock::new(cfg),
            speaker: tokio::sync::RwLock::new(Some(speaker)),
            table,
            ipam: Mutex::new(ipam),
            locals: RwLock::new(BTreeMap::new()),
            converged: AtomicBool::new(false),
            results: RwLock::new(results),
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

    fn locals_read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Ipv4Addr, String>> {
        self.locals.read().unwrap_or_else(|p| p.into_inner())
    }

    fn locals_write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Ipv4Addr, String>> {
        self.locals.write().unwrap_or_else(|p| p.into_inner())
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

    /// Registers an existing container interface (found at start-up or just
    /// attached): kernel host route in the desired set, /32 originated if needed.
    pub async fn adopt_local(&self, ip: Ipv4Addr, host_ifname: &str) -> Result<(), ApiError> {
        let net = host_net(ip);
        self.table
            .set(
                net,
                KernelRoute::Local {
                    dev: host_ifname.to_string(),
                },
            )
            .await;
        self.locals_write().insert(ip, host_ifname.to_string());
        let cfg = self.config();
        if convert::advertise_host(&cfg, ip)
            && let Some(p) = convert::v4_prefix(ip, 32)
        {
            self.speaker()
                .await?
                .originate_with(p, convert::origin_attributes(&cfg, false))
                .await
                .map_err(|e| ApiError::internal(format!("originating {ip}/32: {e}")))?;
        }
        Ok(())
    }

    /// `bgp.advertise` or `bgp.host_communities` changed (SIGHUP):
    /// originate (again) or withdraw each container's /32 so BGP matches.
    pub async fn readvertise(&self, old: &Config, new: &Config) {
        let ips: Vec<Ipv4Addr> = self.locals_read().keys().copied().collect();
        let Ok(speaker) = self.speaker().await else {
            return;
        };
        for ip in ips {
            let Some(p) = convert::v4_prefix(ip, 32) else {
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
                tracing::warn!(%ip, error = %e, "re-advertising a container /32");
            }
        }
    }

    async fn forget_local(&self, ip: Ipv4Addr) {
        self.locals_write().remove(&ip);
        self.table.remove(host_net(ip)).await;
        if let Some(p) = convert::v4_prefix(ip, 32)
            && let Ok(speaker) = self.speaker().await
            && let Err(e) = speaker.withdraw(p).await
        {
            tracing::warn!(%ip, error = %e, "withdrawing the container /32");
        }
    }

    /// Applies a batch of coalesced speaker events ([`super::batch`]) in
    /// order: route runs become route table `set`/`remove` calls, peer state
    /// changes are logged, `Converged` runs the sweep after every route
    /// change received before it.
    pub async fn apply_steps(&self, steps: Vec<super::batch::Step>) {
        use super::batch::Step;
        for step in steps {
            match step {
                Step::Routes { routes, hops } => self.apply_routes(routes, &hops).await,
                Step::Event(SpeakerEvent::PeerStateChanged {
                    peer,
                    state,
                    reason,
                }) => {
                    tracing::info!(%peer, state = state.name(), %reason, "BGP peer state changed");
                }
                Step::Event(SpeakerEvent::Converged) => {
                    self.mark_converged("End-of-RIB from every peer").await
                }
                // Route changes never come as a separate step.
                Step::Event(SpeakerEvent::BestPathChanged { .. }) => {}
            }
        }
    }

    /// Latest next hops per prefix → kernel routes (empty set = remove
    /// ours). Learned routes for our own block or a container /32 are ignored.
    async fn apply_routes(&self, routes: Vec<(Ipv4Network, u32)>, hops: &[Vec<Ipv4Addr>]) {
        if !self.install_learned {
            return;
        }
        let cfg = self.config();
        let encap = super::encapsulation(cfg.dataplane.encapsulation);
        // One kernel route per next-hop set (None = remove).
        let kernel: Vec<Option<KernelRoute>> = hops
            .iter()
            .map(|h| {
                let h: Vec<IpAddr> = h.iter().copied().map(IpAddr::V4).collect();
                (!h.is_empty())
                    .then(|| tortie_routes::route_for_learned(&h, encap, cfg.node.address.into()))
            })
            .collect();
        // Filter under the (sync) locals lock, then write without holding it.
        let routes: Vec<(Ipv4Network, u32)> = {
            let locals = self.locals_read();
            routes
                .into_iter()
                .filter(|(net, _)| {
                    let own = *net == cfg.node.pod_cidr
                        || (net.prefix() == 32 && locals.contains_key(&net.ip()));
                    if own {
                        tracing::debug!(prefix = %net, "ignoring a learned route for our own block or container");
                    }
                    !own
                })
                .collect()
        };
        for (net, id) in routes {
            match kernel.get(id as usize) {
                Some(Some(route)) => self.table.set(net, route.clone()).await,
                _ => self.table.remove(net).await,
            }
        }
    }

    fn attach_result(&self, id: &str, a: &tortie_routes::Attachment) -> AttachResult {
        let cfg = self.config();
        AttachResult {
            id: id.to_string(),
            ip: a.address.to_string(),
            prefix_len: 32,
            gateway: GATEWAY.to_string(),
            netns: a.netns.display().to_string(),
            host_ifname: a.host_ifname.clone(),
            host_mac: Some(a.host_mac.clone()),
            container_ifname: a.container_ifname.clone(),
            container_mac: Some(a.container_mac.clone()),
            mtu: Some(self.mtu),
            advertised: convert::advertise_host(&cfg, a.address),
        }
    }

    async fn detach_locked(&self, ipam: &mut Ipam, id: &str) -> Result<DetachResult, ApiError> {
        let cfg = self.config();
        let host = tortie_routes::host_ifname(&cfg.dataplane.veth_prefix, id);
        // Containers adopted at start-up may be known by their veth, not their id.
        let local_ip = self.local_by_dev(&host);
        let ip = ipam.get(id).or(local_ip);
        tortie_routes::detach(id, &cfg.dataplane.veth_prefix, cfg.dataplane.route_protocol)
            .await
            .map_err(|e| ApiError::internal(format!("detaching {id}: {e}")))?;
        if let Some(ip) = ip {
            self.forget_local(ip).await;
        }
        self.remember(id, None);
        let mut released = ipam
            .release(id)
            .map_err(|e| ApiError::internal(format!("releasing the address of {id}: {e}")))?;
        if released.is_none()
            && let Some(lip) = local_ip
        {
            released = ipam
                .release_address(lip)
                .map_err(|e| ApiError::internal(format!("releasing {lip} of {id}: {e}")))?
                .map(|_| lip);
        }
        tracing::info!(id, ip = ?released, removed = local_ip.is_some(), "detached");
        Ok(DetachResult {
            id: id.to_string(),
            released_ip: released.map(|i| i.to_string()),
            removed_interface: local_ip.is_some(),
        })
    }

    /// A repeated attach: the id already has an address and its veth exists.
    /// Same namespace (and address, if one was requested): the earlier answer.
    fn existing(
        &self,
        ipam: &Ipam,
        req: &AttachRequest,
        requested: Option<Ipv4Addr>,
    ) -> Result<Option<AttachResult>, ApiError> {
        let cfg = self.config();
        let host = tortie_routes::host_ifname(&cfg.dataplane.veth_prefix, &req.id);
        let Some(ip) = ipam.get(&req.id).or_else(|| self.local_by_dev(&host)) else {
            return Ok(None);
        };
        if self.local_by_dev(&host) != Some(ip) {
            return Ok(None);
        }
        if requested.is_some_and(|r| r != ip) {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!("{} is already attached with {ip}; detach it first", req.id),
            ));
        }
        // The saved answer (MACs included) when it still describes this veth
        // and address; else what IPAM and the route table know (no MACs).
        let cached = self
            .results
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&req.id)
            .filter(|r| r.host_ifname == host && r.ip == ip.to_string())
            .cloned()
            .map(|r| AttachResult {
                advertised: convert::advertise_host(&cfg, ip),
                ..r
            });
        if cached.is_none() {
            tracing::warn!(id = %req.id, %ip, "repeated attach without a saved result: answering without MACs");
        }
        let result = cached.unwrap_or_else(|| AttachResult {
            id: req.id.clone(),
            ip: ip.to_string(),
            prefix_len: 32,
            gateway: GATEWAY.to_string(),
            netns: req.netns.clone(),
            host_ifname: host,
            host_mac: None,
            container_ifname: req.ifname.clone().unwrap_or_else(|| "eth0".to_string()),
            container_mac: None,
            mtu: Some(self.mtu),
            advertised: convert::advertise_host(&cfg, ip),
        });
        if result.netns != req.netns {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!(
                    "{} is already attached in {}, not {}",
                    req.id, result.netns, req.netns
                ),
            ));
        }
        Ok(Some(result))
    }

    /// Records (`Some`) or forgets (`None`) the result for `id` and saves the
    /// record. A failed save only costs the MACs of a repeated attach after a
    /// restart: logged, not an error.
    fn remember(&self, id: &str, result: Option<AttachResult>) {
        let snapshot = {
            let mut r = self.results.write().unwrap_or_else(|p| p.into_inner());
            let changed = match result {
                Some(res) => r.insert(id.to_string(), res.clone()) != Some(res),
                None => r.remove(id).is_some(),
            };
            if !changed {
                return;
            }
            r.clone()
        };
        let dir = self.config().state.dir.clone();
        if let Err(e) = super::results::save(&dir, &snapshot) {
            tracing::warn!(id, error = %e, "saving the attach results");
        }
    }

    fn local_by_dev(&self, dev: &str) -> Option<Ipv4Addr> {
        self.locals_read()
            .iter()
            .find(|(_, d)| d.as_str() == dev)
            .map(|(ip, _)| *ip)
    }
}

pub fn host_net(ip: Ipv4Addr) -> Ipv4Network {
    // A /32 is always a valid network.
    Ipv4Network::new(ip, 32).unwrap_or_else(|_| Ipv4Network::from(ip))
}

/// Containers' addresses, the agent's own (tunl0) and the free ones.
fn ipam_counts(ipam: &Ipam) -> IpamView {
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
fn dataplane_kind(e: &tortie_routes::RoutesError) -> ErrorKind {
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

fn ipam_error(e: crate::ipam::IpamError) -> ApiError {
    use crate::ipam::IpamError as E;
    let kind = match &e {
        E::Exhausted { .. } => ErrorKind::Exhausted,
        E::InUse { .. } | E::Conflict { .. } => ErrorKind::Conflict,
        E::InvalidId { .. } | E::Reserved { .. } | E::Unusable { .. } => ErrorKind::BadRequest,
        E::Io { .. } | E::Corrupt { .. } | E::Locked { .. } => ErrorKind::Internal,
    };
    ApiError::new(kind, e.to_string())
}

impl Backend for Agent {
    async fn status(&self) -> Result<StatusView, ApiError> {
        let cfg = self.config();
        let peers = self.speaker().await?.peers().await;
        let counts = ipam_counts(&*self.ipam.lock().await);
        Ok(StatusView {
            version: env!("CARGO_PKG_VERSION").to_string(),
            node: NodeView {
                name: cfg.node.name.clone(),
                address: cfg.node.address.to_string(),
                asn: cfg.node.asn,
                router_id: cfg.node.router_id.to_string(),
                pod_cidr: cfg.node.pod_cidr.to_string(),
                encapsulation: super::encapsulation_name(cfg.dataplane.encapsulation).to_string(),
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
            containers: self.locals_read().len() as u64,
            ipam: counts,
        })
    }

    async fn routes(&self) -> Result<Vec<RouteView>, ApiError> {
        let routes = self.speaker().await?.routes().await;
        let installed = self.table.installed().await;
        Ok(routes
            .iter()
            .map(|r| {
                let net: Option<IpNetwork> = match r.prefix {
                    Prefix::V4(p) => Ipv4Network::new(p.addr(), p.len()).ok().map(Into::into),
                    Prefix::V6(p) => Ipv6Network::new(p.addr(), p.len()).ok().map(Into::into),
                };
                let inst = net.is_some_and(|n| installed.contains_key(&n));
                convert::route_view(r, inst)
            })
            .collect())
    }

    async fn attach(&self, req: AttachRequest) -> Result<AttachResult, ApiError> {
        if req.id.is_empty() {
            return Err(ApiError::bad_request("id must not be empty"));
        }
        if req.netns.is_empty() {
            return Err(ApiError::bad_request("netns must not be empty"));
        }
        let requested = match req.ip.as_deref() {
            Some(s) => Some(s.parse::<Ipv4Addr>().map_err(|e| {
                ApiError::bad_request(format!("ip {s:?} is not an IPv4 address: {e}"))
            })?),
            None => None,
        };
        let cfg = self.config();
        let ifname = req.ifname.clone().unwrap_or_else(|| "eth0".to_string());
        if req.id.starts_with(crate::ipam::SYSTEM_PREFIX) {
            return Err(ApiError::bad_request(format!(
                "ids starting with {:?} are reserved for the agent",
                crate::ipam::SYSTEM_PREFIX
            )));
        }
        let started = std::time::Instant::now();
        let mut ipam = self.ipam.lock().await;
        if let Some(r) = self.existing(&ipam, &req, requested)? {
            return Ok(r);
        }
        let locked = started.elapsed();
        // The address is decided and its journal record written now; the
        // record's fdatasync runs on the blocking pool while the veth is
        // created, and is joined before anything is answered. `join!` polls
        // the dataplane first, so the hand-off to the attach thread is not
        // queued behind the blocking-pool wake-up (~70 µs here).
        let pending = ipam
            .allocate_pending(&req.id, requested)
            .map_err(ipam_error)?;
        let ip = pending.address();
        let allocated = started.elapsed();
        let dp = tortie_routes::AttachRequest {
            container_id: req.id.clone(),
            netns: req.netns.clone().into(),
            ifname: ifname.clone(),
            address: ip,
            mtu: self.mtu,
            veth_prefix: cfg.dataplane.veth_prefix.clone(),
            route_protocol: cfg.dataplane.route_protocol,
        };
        let (attached, synced) = tokio::join!(
            async {
                let a = tortie_routes::attach(&dp).await;
                (a, started.elapsed())
            },
            async { tokio::task::spawn_blocking(move || pending.sync()).await }
        );
        let (attached, dataplane) = attached;
        let durable = match synced {
            Ok(pending) => ipam.commit(pending),
            Err(e) => {
                // The sync task died (panic, shutdown): give the address
                // back (its record is synced before the release is written).
                if let Err(re) = ipam.release(&req.id) {
                    tracing::error!(id = %req.id, error = %re, "rollback: releasing the address failed");
                }
                Err(crate::ipam::IpamError::Io {
                    action: "syncing",
                    path: ipam.state_file().to_path_buf(),
                    source: std::io::Error::other(format!("the sync task failed: {e}")),
                })
            }
        };
        let synced = started.elapsed();
        let attachment = match (attached, durable) {
            (Ok(a), Ok(_)) => a,
            (Ok(_), Err(e)) => {
                // Not durable: nothing attached may use the address.
                if let Err(de) = tortie_routes::detach(
                    &req.id,
                    &cfg.dataplane.veth_prefix,
                    cfg.dataplane.route_protocol,
                )
                .await
                {
                    tracing::error!(id = %req.id, error = %de, "rollback: removing the veth failed");
                }
                return Err(ipam_error(e));
            }
            (Err(e), durable) => {
                // A failed sync already undid the allocation.
                if durable.is_ok()
                    && let Err(re) = ipam.release(&req.id)
                {
                    tracing::error!(id = %req.id, error = %re, "rollback: releasing the address failed");
                }
                return Err(ApiError::new(
                    dataplane_kind(&e),
                    format!("attaching {}: {e}", req.id),
                ));
            }
        };
        if let Err(e) = self.adopt_local(ip, &attachment.host_ifname).await {
            self.forget_local(ip).await;
            let _ = tortie_routes::detach(
                &req.id,
                &cfg.dataplane.veth_prefix,
                cfg.dataplane.route_protocol,
            )
            .await;
            let _ = ipam.release(&req.id);
            return Err(e);
        }
        let adopted = started.elapsed();
        tracing::info!(id = %req.id, %ip, host_ifname = %attachment.host_ifname, "attached");
        let result = self.attach_result(&req.id, &attachment);
        self.remember(&req.id, Some(result.clone()));
        // Cumulative µs since the handler took the request, per phase.
        tracing::debug!(
            id = %req.id,
            locked_us = locked.as_micros() as u64,
            ipam_written_us = allocated.as_micros() as u64,
            dataplane_us = dataplane.as_micros() as u64,
            synced_us = synced.as_micros() as u64,
            adopted_us = adopted.as_micros() as u64,
            done_us = started.elapsed().as_micros() as u64,
            "attach phases"
        );
        Ok(result)
    }

    async fn detach(&self, req: DetachRequest) -> Result<DetachResult, ApiError> {
        if req.id.is_empty() {
            return Err(ApiError::bad_request("id must not be empty"));
        }
        let mut ipam = self.ipam.lock().await;
        self.detach_locked(&mut ipam, &req.id).await
    }

    async fn check(&self, req: CheckRequest) -> Result<AttachResult, ApiError> {
        let ipam = self.ipam.lock().await;
        let cfg = self.config();
        let ip = ipam
            .get(&req.id)
            .or_else(|| {
                self.local_by_dev(&tortie_routes::host_ifname(
                    &cfg.dataplane.veth_prefix,
                    &req.id,
                ))
            })
            .ok_or_else(|| ApiError::not_found(format!("{} is not attached", req.id)))?;
        let found = tortie_routes::list_attachments(
            &cfg.dataplane.veth_prefix,
            cfg.dataplane.route_protocol,
        )
        .await
        .map_err(|e| ApiError::internal(format!("listing attachments: {e}")))?;
        let host = tortie_routes::host_ifname(&cfg.dataplane.veth_prefix, &req.id);
        match found.iter().find(|(dev, _)| *dev == host) {
            None => Err(ApiError::not_found(format!(
                "{}: veth {host} or its route is missing",
                req.id
            ))),
            Some((_, addr)) if *addr != ip => Err(ApiError::new(
                ErrorKind::Conflict,
                format!("{}: {host} routes {addr}, IPAM says {ip}", req.id),
            )),
            Some(_) => Ok(AttachResult {
                id: req.id.clone(),
                ip: ip.to_string(),
                prefix_len: 32,
                gateway: GATEWAY.to_string(),
                netns: req.netns.clone().unwrap_or_default(),
                host_ifname: host,
                host_mac: None,
                container_ifname: String::new(),
                container_mac: None,
                mtu: Some(self.mtu),
                advertised: convert::advertise_host(&cfg, ip),
            }),
        }
    }

    async fn gc(&self, req: GcRequest) -> Result<GcResult, ApiError> {
        let mut ipam = self.ipam.lock().await;
        let valid: std::collections::HashSet<&str> =
            req.valid_ids.iter().map(String::as_str).collect();
        let stale: Vec<String> = ipam
            .allocations()
            .map(|(id, _)| id)
            .filter(|id| {
                id.contains('/')
                    && !id.starts_with(crate::ipam::SYSTEM_PREFIX)
                    && !valid.contains(id)
            })
            .map(str::to_string)
            .collect();
        let mut removed = Vec::new();
        for id in stale {
            match self.detach_locked(&mut ipam, &id).await {
                Ok(_) => removed.push(id),
                Err(e) => tracing::warn!(%id, error = %e, "gc: detach failed"),
            }
        }
        Ok(GcResult { removed })
    }
}

impl MetricsSource for Agent {
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
            netlink_errors: stats.netlink_errors,
            containers: self.locals_read().len() as u64,
            ipam: vec![
                ("allocated".to_string(), counts.allocated),
                ("free".to_string(), counts.free),
                ("reserved".to_string(), counts.reserved),
            ],
        }
    }
}
