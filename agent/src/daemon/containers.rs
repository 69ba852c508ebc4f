//! Attach, detach, check and gc of containers (DESIGN.md §5): the steps
//! across IPAM, the dataplane (`tortie_routes`), the `Registry` and the
//! announcement of the host routes ([`Agent::announce`]), and their one
//! rollback.
//!
//! A container gets one address per family the node has blocks for (and
//! the family of any static address asked for): a /32, a /128, or both.
//!
//! Data flow of attach: validate (each static address goes through
//! [`refuse::check`]) → under the IPAM lock, the registry entry of this id: its veth
//! still exists → the saved answer; gone (deleted behind our back) → rebuilt
//! below with the same addresses → IPAM decides the addresses and
//! writes their journal records (`pwrite`), whose `fdatasync` starts on the
//! blocking pool as the veth is created → the route table told to expect
//! the host routes (`Routes::expect`) → the attach writes them in its host
//! batch, on this thread (no hand-off to the table's thread, no wait for
//! it; a veth of this id without an entry, left by an attach that died
//! half-way, makes the kernel refuse the pair with EEXIST: it is removed
//! and the attach made again) → registry entry (saved) → a host route the kernel refused to the
//! attach installed through the table and awaited, each address originated →
//! answer, without waiting for the records' `fdatasync`: the next user of
//! the IPAM lock joins it first (`Agent::lock_ipam`; a failed one keeps
//! the addresses and writes a snapshot, [`crate::ipam::Ipam::settle`]), so
//! a record is still synced before the next one is written. Why that keeps
//! "never an address twice": the record is in the page cache once written,
//! so an agent crash does not lose it; a kernel crash or power loss, which
//! can, also takes the veths and namespaces with it, and start-up frees
//! every allocation nothing is attached with (and adopts any attached
//! address IPAM does not know) — the same end as with the record on disk.
//! The disk's latency (0.2–8 ms here under load, the ADD's p99) is then
//! off the ADD's path (lab/bench/README.md, session 13, cni lane). Any failure runs
//! `Agent::roll_back`: unannounce, delete the veth, and only once the veth
//! is gone give the addresses back — never free an address a veth may carry.
//! Detach runs the same steps in reverse, with the same rule.
//!
//! Cancellation: the API server runs each request in work its connection
//! does not own (`api::server`: inline, spawned as a task of its own if
//! the connection goes first), so a client that disconnects mid-attach
//! never drops these futures half-way; a retry of the same id waits for
//! the lock and finds the finished container.

use std::net::IpAddr;

use super::agent::{Agent, dataplane_kind, ipam_error, settle_sync};
use super::convert;
use super::kernel::{Routes, Veths};
use super::refuse;
use super::registry::{Container, host_net};
use crate::api::{
    ApiError, AttachRequest, AttachResult, CheckRequest, ContainerAddress, DetachRequest,
    DetachResult, ErrorKind, GcRequest, GcResult,
};
use crate::ipam::{Family, Ipam, Pending, Want};
use tortie_routes::KernelRoute;

/// The gateway a container routes `ip`'s family through.
fn gateway(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(tortie_routes::GATEWAY),
        IpAddr::V6(_) => IpAddr::V6(tortie_routes::GATEWAY6),
    }
}

/// `"10.244.1.5"`, `"fd00::5"` or both, comma-separated: at most one per family.
fn parse_static(s: &str) -> Result<Vec<IpAddr>, ApiError> {
    let mut out: Vec<IpAddr> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let ip: IpAddr = part.parse().map_err(|e| {
            ApiError::bad_request(format!("ip {part:?} is not an IPv4 or IPv6 address: {e}"))
        })?;
        if out.iter().any(|o| o.is_ipv4() == ip.is_ipv4()) {
            return Err(ApiError::bad_request(format!(
                "ip {s:?}: at most one address per family"
            )));
        }
        out.push(ip);
    }
    if out.is_empty() {
        return Err(ApiError::bad_request(format!("ip {s:?} names no address")));
    }
    out.sort_by_key(IpAddr::is_ipv6);
    Ok(out)
}

/// What to allocate: each family's static address if given, else a free
/// one for each family the node has blocks for.
fn wants(node: &tortie_config::Node, requested: &[IpAddr]) -> Vec<Want> {
    let has = |f: Family| match f {
        Family::V4 => node.blocks_v4().next().is_some(),
        Family::V6 => node.blocks_v6().next().is_some(),
    };
    [Family::V4, Family::V6]
        .into_iter()
        .filter_map(
            |f| match requested.iter().find(|ip| Family::of(**ip) == f) {
                Some(ip) => Some(Want::Static(*ip)),
                None => has(f).then_some(Want::Any(f)),
            },
        )
        .collect()
}

fn list(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl<R: Routes, V: Veths> Agent<R, V> {
    /// The answer for a registered container.
    fn result(&self, c: &Container) -> AttachResult {
        let cfg = self.config();
        let ips = c.ips();
        let first = ips.first().copied();
        AttachResult {
            id: c.id.clone(),
            ip: first.map(|ip| ip.to_string()).unwrap_or_default(),
            prefix_len: first.map_or(32, |ip| host_net(ip).prefix()),
            gateway: first.map(|ip| gateway(ip).to_string()).unwrap_or_default(),
            addresses: ips
                .iter()
                .map(|ip| ContainerAddress {
                    address: host_net(*ip).to_string(),
                    gateway: gateway(*ip).to_string(),
                })
                .collect(),
            netns: c.netns.clone(),
            host_ifname: c.host_ifname.clone(),
            host_mac: c.host_mac.clone(),
            container_ifname: c.ifname.clone(),
            container_mac: c.container_mac.clone(),
            mtu: c.mtu.or(Some(self.mtu)),
            advertised: ips.iter().any(|ip| convert::advertise_host(&cfg, *ip)),
        }
    }

    /// What static address `ip` must stay clear of: config, the host's
    /// interface addresses, and the Loc-RIB prefixes learned from peers that
    /// contain it (a few lookups, not a walk: [`tortie_bgp::Speaker::covering`]).
    async fn forbidden(&self, ip: IpAddr) -> Result<refuse::Forbidden, ApiError> {
        let cfg = self.config();
        let mut node: Vec<ipnetwork::IpNetwork> = cfg.node.addresses.iter().collect();
        match nix::ifaddrs::getifaddrs() {
            Ok(addrs) => {
                for a in addrs {
                    let (Some(addr), Some(mask)) = (a.address.as_ref(), a.netmask.as_ref()) else {
                        continue;
                    };
                    let net = if let (Some(a), Some(m)) =
                        (addr.as_sockaddr_in(), mask.as_sockaddr_in())
                    {
                        let len = u32::from(m.ip()).leading_ones() as u8;
                        ipnetwork::IpNetwork::new(IpAddr::V4(a.ip()), len)
                    } else if let (Some(a), Some(m)) =
                        (addr.as_sockaddr_in6(), mask.as_sockaddr_in6())
                    {
                        let len = u128::from(m.ip()).leading_ones() as u8;
                        ipnetwork::IpNetwork::new(IpAddr::V6(a.ip()), len)
                    } else {
                        continue;
                    };
                    if let Ok(n) = net {
                        node.push(n);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing the node's addresses"),
        }
        let learned = self
            .speaker()
            .await?
            .covering(ip)
            .await
            .into_iter()
            .filter_map(|(prefix, peer)| {
                Some((
                    ipnetwork::IpNetwork::new(prefix.addr(), prefix.len()).ok()?,
                    peer?,
                ))
            })
            .collect();
        Ok(refuse::Forbidden {
            node,
            peers: cfg.peers.iter().map(|p| p.address).collect(),
            learned,
            block_len: [
                cfg.node.blocks_v4().map(|b| b.prefix()).min().unwrap_or(32),
                cfg.node
                    .blocks_v6()
                    .map(|b| b.prefix())
                    .min()
                    .unwrap_or(128),
            ],
        })
    }

    pub(super) async fn attach_container(
        &self,
        req: AttachRequest,
    ) -> Result<AttachResult, ApiError> {
        if req.id.is_empty() {
            return Err(ApiError::bad_request("id must not be empty"));
        }
        if req.netns.is_empty() {
            return Err(ApiError::bad_request("netns must not be empty"));
        }
        if req.id.starts_with(crate::ipam::SYSTEM_PREFIX) {
            return Err(ApiError::bad_request(format!(
                "ids starting with {:?} are reserved for the agent",
                crate::ipam::SYSTEM_PREFIX
            )));
        }
        let mut requested = match req.ip.as_deref() {
            Some(s) => parse_static(s)?,
            None => Vec::new(),
        };
        for ip in &requested {
            refuse::check(*ip, &self.forbidden(*ip).await?).map_err(|why| {
                ApiError::bad_request(format!("refusing --ip {ip} for {}: {why}", req.id))
            })?;
        }
        let cfg = self.config();
        let ifname = req.ifname.clone().unwrap_or_else(|| "eth0".to_string());
        let host = tortie_routes::host_ifname(&cfg.dataplane.veth_prefix, &req.id);
        let started = std::time::Instant::now();
        // Whether the addresses are still announced (a rebuild): a failure
        // then withdraws them too.
        let mut rebuilding = false;
        let mut ipam = self.lock_ipam().await;
        let saved = self.registry().get(&host).cloned();
        if let Some(c) = saved {
            let ips = c.ips();
            if let Some(r) = requested.iter().find(|r| !ips.contains(r)) {
                return Err(ApiError::new(
                    ErrorKind::Conflict,
                    format!(
                        "{} is already attached with {}, not {r}; detach it first",
                        req.id,
                        list(&ips)
                    ),
                ));
            }
            if !c.netns.is_empty() && c.netns != req.netns {
                return Err(ApiError::new(
                    ErrorKind::Conflict,
                    format!(
                        "{} is already attached in {}, not {}",
                        req.id, c.netns, req.netns
                    ),
                ));
            }
            if !ips.is_empty() && self.veths.link_exists(&host) {
                // A repeated attach (a runtime retrying ADD): the same answer.
                let c = if c.id_known() {
                    c
                } else {
                    // Adopted at start-up under its veth name: now we know the id.
                    let c = Container {
                        id: req.id.clone(),
                        netns: req.netns.clone(),
                        ifname: ifname.clone(),
                        ..c
                    };
                    self.registry_mut().insert(c.clone());
                    c
                };
                if c.host_mac.is_none() {
                    tracing::warn!(id = %req.id, ips = %list(&ips), "repeated attach without a saved result: answering without MACs");
                }
                return Ok(self.result(&c));
            }
            // The veth is gone (deleted behind our back): rebuild it with
            // the same addresses. The entry goes first, so that a crash
            // during the rebuild leaves a veth without an entry (removed at
            // start-up), never an entry for a half-made veth.
            // Its host routes stay announced (same addresses, same veth
            // name): no withdraw for peers, and the route table keeps
            // wanting them, and puts them back once the new veth is up.
            tracing::warn!(id = %req.id, host_ifname = %host, ips = %list(&ips), "the container's veth is gone: rebuilding it");
            self.registry_mut().remove(&host);
            if !ips.is_empty() {
                rebuilding = true;
                requested = ips.clone();
                // Adopted under its veth name: hand the addresses to the id.
                if !c.id_known()
                    && ips.iter().any(|ip| ipam.owner(*ip) == Some(host.as_str()))
                    && let Err(e) = ipam.release(&host)
                {
                    for ip in &ips {
                        self.unannounce(*ip).await;
                    }
                    return Err(ipam_error(e));
                }
            }
        }
        // A veth of this id without an entry (an attach that died half-way)
        // is found by the attach itself, which the kernel refuses with
        // EEXIST: removed there and attached again (see below), not looked
        // up before every attach.
        let locked = started.elapsed();
        // The addresses are decided and their journal records written now;
        // the records' fdatasync runs on the blocking pool while the veth is
        // created and is joined by the next user of the IPAM lock (or before
        // a roll-back), not before the answer. It is handed to the pool
        // first: the dataplane's attach runs on this very thread
        // (`block_in_place` in the agent's runtime), so nothing queued after
        // it would start before the veth is done.
        let mut pending: Vec<Pending> = Vec::new();
        for want in wants(&cfg.node, &requested) {
            match ipam.allocate_pending(&req.id, want) {
                Ok(p) => pending.push(p),
                Err(e) => {
                    let ips: Vec<IpAddr> = pending.iter().map(Pending::address).collect();
                    drop(pending);
                    self.roll_back(&mut ipam, &req.id, &host, &ips, rebuilding)
                        .await;
                    return Err(ipam_error(e));
                }
            }
        }
        let ips: Vec<IpAddr> = pending.iter().map(Pending::address).collect();
        if ips.is_empty() {
            return Err(ApiError::bad_request(format!(
                "attaching {}: node.pod_cidr has no block to allocate from",
                req.id
            )));
        }
        let allocated = started.elapsed();
        let dp = tortie_routes::AttachRequest {
            container_id: req.id.clone(),
            netns: req.netns.clone().into(),
            ifname: ifname.clone(),
            addresses: ips.clone(),
            mtu: self.mtu,
            veth_prefix: cfg.dataplane.veth_prefix.clone(),
            host_routes: Some(self.table.host_routes()),
        };
        let sync = tokio::task::spawn_blocking(move || {
            pending.into_iter().map(Pending::sync).collect::<Vec<_>>()
        });
        // The attach writes the host routes in its host batch, on this
        // thread; the route table expects them first (it owns them, and
        // takes them as written: `RouteTable::expect`). From here a failure
        // also removes them.
        for ip in &ips {
            self.table
                .expect(host_net(*ip), KernelRoute::Local { dev: host.clone() })
                .await;
        }
        let spawned = started.elapsed();
        let attached = match self.veths.attach(&dp).await {
            // The name is taken: by our id's veth (the name is a function of
            // the id; nothing else of this id runs, we hold the IPAM lock),
            // left by an attach that died half-way — or by an interface of
            // that name inside the namespace, which stays an error.
            Err(e) if e.errno() == Some(libc::EEXIST) && self.veths.link_exists(&host) => {
                tracing::warn!(id = %req.id, host_ifname = %host, "removing a half-made veth of this id before attaching");
                match self
                    .veths
                    .delete_host_veth(&host, &format!("attach {}", req.id))
                    .await
                {
                    Ok(()) => self.veths.attach(&dp).await,
                    Err(e) => Err(e),
                }
            }
            r => r,
        };
        let dataplane = started.elapsed();
        // The records' sync is joined here only on failure (before the
        // roll-back releases the addresses); on success the answer goes out
        // without waiting for it (see the module docs).
        let mut sync = Some(sync);
        let attachment = match attached {
            Ok(a) => a,
            Err(e) => {
                if let Some(sync) = sync.take() {
                    settle_sync(&mut ipam, sync).await;
                }
                self.roll_back(&mut ipam, &req.id, &host, &ips, true).await;
                return Err(ApiError::new(
                    dataplane_kind(&e),
                    format!("attaching {}: {e}", req.id),
                ));
            }
        };
        // Registered before it is announced: from here on learned routes
        // never override the host routes (the speaker reports our own
        // origination back as a best path).
        let c = Container {
            id: req.id.clone(),
            addresses: ips.iter().copied().map(host_net).collect(),
            host_ifname: attachment.host_ifname.clone(),
            host_mac: Some(attachment.host_mac.clone()),
            netns: attachment.netns.display().to_string(),
            ifname: attachment.container_ifname.clone(),
            container_mac: Some(attachment.container_mac.clone()),
            mtu: Some(attachment.mtu),
        };
        self.registry_mut().insert(c.clone());
        // A host route the kernel refused to the attach (a route at the
        // prefix already: ours from before, another protocol's) is the
        // table's to write, or to say why not.
        for ip in ips.iter().filter(|ip| !attachment.routed.contains(ip)) {
            let installed = self
                .install_host_route(*ip, attachment.host_ifname.clone())
                .await;
            if let Err(e) = installed {
                if let Some(sync) = sync.take() {
                    settle_sync(&mut ipam, sync).await;
                }
                self.roll_back(&mut ipam, &req.id, &host, &ips, true).await;
                return Err(e);
            }
        }
        for ip in &ips {
            if let Err(e) = self.originate_host(*ip).await {
                if let Some(sync) = sync.take() {
                    settle_sync(&mut ipam, sync).await;
                }
                self.roll_back(&mut ipam, &req.id, &host, &ips, true).await;
                return Err(e);
            }
        }
        if let Some(sync) = sync {
            self.defer_sync(sync);
        }
        let adopted = started.elapsed();
        tracing::info!(id = %req.id, ips = %list(&ips), host_ifname = %attachment.host_ifname, "attached");
        // Cumulative µs since the handler took the request, per phase.
        tracing::debug!(
            id = %req.id,
            locked_us = locked.as_micros() as u64,
            ipam_written_us = allocated.as_micros() as u64,
            spawned_us = spawned.as_micros() as u64,
            dataplane_us = dataplane.as_micros() as u64,
            adopted_us = adopted.as_micros() as u64,
            done_us = started.elapsed().as_micros() as u64,
            "attach phases"
        );
        Ok(self.result(&c))
    }

    /// Undoes a failed attach of `id` (holding `ips`, veth `host`): the host
    /// routes (when `announced`), the veth, and — only once the veth is
    /// known to be gone — the addresses. A veth that cannot be removed keeps
    /// its addresses allocated (the next attach of this id, or start-up,
    /// removes it). Also removes a registry entry made for it.
    async fn roll_back(
        &self,
        ipam: &mut Ipam,
        id: &str,
        host: &str,
        ips: &[IpAddr],
        announced: bool,
    ) {
        if announced {
            for ip in ips {
                self.unannounce(*ip).await;
            }
        }
        self.registry_mut().remove(host);
        if let Err(e) = self
            .veths
            .delete_host_veth(host, &format!("rollback of {id}"))
            .await
        {
            tracing::error!(id, ips = %list(ips), error = %e, "rollback: the veth could not be removed; keeping its addresses allocated");
            // A failed IPAM sync already undid the allocation: take the
            // addresses back while the veth may carry them.
            for ip in ips {
                if ipam.owner(*ip).is_none()
                    && let Err(e) = ipam.allocate(id, *ip)
                {
                    tracing::error!(id, %ip, error = %e, "rollback: re-reserving the address failed; start-up reconciliation will adopt it");
                }
            }
            return;
        }
        if ips.iter().any(|ip| ipam.owner(*ip) == Some(id))
            && let Err(e) = ipam.release(id)
        {
            tracing::error!(id, ips = %list(ips), error = %e, "rollback: releasing the addresses failed");
        }
    }

    async fn detach_locked(&self, ipam: &mut Ipam, id: &str) -> Result<DetachResult, ApiError> {
        let cfg = self.config();
        let host = tortie_routes::host_ifname(&cfg.dataplane.veth_prefix, id);
        let saved = self.registry().get(&host).cloned();
        let ips = match &saved {
            Some(c) if !c.addresses.is_empty() => c.ips(),
            _ => ipam.addresses(id),
        };
        // The routes first (withdrawn, no longer desired by the route
        // table), then the veth: a host route still desired when its veth
        // went was retried on the missing device, a WARN per detach. The
        // addresses are released last: while the veth may exist, they stay
        // allocated.
        for ip in &ips {
            self.unannounce(*ip).await;
        }
        self.veths
            .detach(id, &cfg.dataplane.veth_prefix, cfg.dataplane.route_protocol)
            .await
            .map_err(|e| ApiError::internal(format!("detaching {id}: {e}")))?;
        self.registry_mut().remove(&host);
        let mut released = ipam.release(id).map_err(ipam_error)?;
        if released.is_empty()
            && let Some(c) = &saved
        {
            // Adopted at start-up under its veth name.
            for ip in c.ips() {
                if ipam.release_address(ip).map_err(ipam_error)?.is_some() {
                    released.push(ip);
                }
            }
        }
        tracing::info!(
            id,
            ips = %list(&released),
            removed = saved.is_some(),
            "detached"
        );
        Ok(DetachResult {
            id: id.to_string(),
            released_ip: released.first().map(ToString::to_string),
            released_ips: released.iter().map(ToString::to_string).collect(),
            removed_interface: saved.is_some(),
        })
    }

    pub(super) async fn detach_container(
        &self,
        req: DetachRequest,
    ) -> Result<DetachResult, ApiError> {
        if req.id.is_empty() {
            return Err(ApiError::bad_request("id must not be empty"));
        }
        if req.id.starts_with(crate::ipam::SYSTEM_PREFIX) {
            return Err(ApiError::bad_request(format!(
                "{:?} is the agent's own (ids starting with {:?} are reserved); nothing to detach",
                req.id,
                crate::ipam::SYSTEM_PREFIX
            )));
        }
        let mut ipam = self.lock_ipam().await;
        self.detach_locked(&mut ipam, &req.id).await
    }

    /// CNI CHECK: every address of the container is routed to its veth
    /// (and nothing else is).
    pub(super) async fn check_container(
        &self,
        req: CheckRequest,
    ) -> Result<AttachResult, ApiError> {
        let ipam = self.lock_ipam().await;
        let cfg = self.config();
        let host = tortie_routes::host_ifname(&cfg.dataplane.veth_prefix, &req.id);
        let saved = self.registry().get(&host).cloned();
        let mut ips = match &saved {
            Some(c) if !c.addresses.is_empty() => c.ips(),
            _ => ipam.addresses(&req.id),
        };
        if ips.is_empty() {
            return Err(ApiError::not_found(format!("{} is not attached", req.id)));
        }
        // The dump below reads every route: attaches need not wait for it.
        drop(ipam);
        let found = self
            .veths
            .list_attachments(&cfg.dataplane.veth_prefix, cfg.dataplane.route_protocol)
            .await
            .map_err(|e| ApiError::internal(format!("listing attachments: {e}")))?;
        let mut routed: Vec<IpAddr> = found
            .iter()
            .filter(|(dev, _)| *dev == host)
            .map(|(_, a)| *a)
            .collect();
        routed.sort_by_key(IpAddr::is_ipv6);
        ips.sort_by_key(IpAddr::is_ipv6);
        if routed.is_empty() {
            return Err(ApiError::not_found(format!(
                "{}: veth {host} or its routes are missing",
                req.id
            )));
        }
        if let Some(missing) = ips.iter().find(|ip| !routed.contains(ip)) {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!(
                    "{}: {host} routes {}, the agent says {} ({missing} is missing)",
                    req.id,
                    list(&routed),
                    list(&ips)
                ),
            ));
        }
        if let Some(extra) = routed.iter().find(|ip| !ips.contains(ip)) {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!(
                    "{}: {host} routes {}, the agent says {} ({extra} is not the container's)",
                    req.id,
                    list(&routed),
                    list(&ips)
                ),
            ));
        }
        let c = saved.unwrap_or_else(|| Container {
            id: req.id.clone(),
            addresses: ips.iter().copied().map(host_net).collect(),
            host_ifname: host.clone(),
            host_mac: None,
            netns: String::new(),
            ifname: String::new(),
            container_mac: None,
            mtu: None,
        });
        let mut r = self.result(&c);
        r.id = req.id.clone();
        if let Some(ns) = req.netns {
            r.netns = ns;
        }
        Ok(r)
    }

    pub(super) async fn gc_containers(&self, req: GcRequest) -> Result<GcResult, ApiError> {
        let mut ipam = self.lock_ipam().await;
        let valid: std::collections::HashSet<&str> =
            req.valid_ids.iter().map(String::as_str).collect();
        // CNI ids (`CONTAINERID/IFNAME`) known to IPAM or the registry.
        let mut stale: Vec<String> = ipam
            .allocations()
            .map(|(id, _)| id.to_string())
            .chain(self.registry().iter().map(|c| c.id.clone()))
            .filter(|id| {
                id.contains('/')
                    && !id.starts_with(crate::ipam::SYSTEM_PREFIX)
                    && !valid.contains(id.as_str())
            })
            .collect();
        stale.sort();
        stale.dedup();
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
