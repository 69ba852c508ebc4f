//! Attach, detach, check and gc of containers (DESIGN.md §5): the steps
//! across IPAM, the dataplane (`tortie_routes`), the [`Registry`] and the
//! announcement of the /32 ([`Agent::announce`]), and their one rollback.
//!
//! Data flow of attach: validate (a static address goes through
//! [`refuse::check`]) → under the IPAM lock, the registry entry of this id: its veth
//! still exists → the saved answer; gone (deleted behind our back) → rebuilt
//! below with the same address → a veth of this id without an entry (an
//! attach that died half-way) is removed → IPAM decides the address and
//! writes its journal record, whose `fdatasync` overlaps the veth creation
//! → registry entry (saved) → announce (the route table installs the /32,
//! awaited; originate) → answer. Any failure runs
//! [`Agent::roll_back`]: unannounce, delete the veth, and only once the veth
//! is gone give the address back — never free an address a veth may carry.
//! Detach runs the same steps in reverse, with the same rule.
//!
//! Cancellation: the API server runs each request in a task of its own
//! (`api::server`), so a client that disconnects mid-attach never drops
//! these futures half-way; a retry of the same id waits for the lock and
//! finds the finished container.

use std::net::{IpAddr, Ipv4Addr};

use super::agent::{Agent, GATEWAY, dataplane_kind, ipam_error};
use super::convert;
use super::refuse;
use super::registry::{Container, host_net};
use crate::api::{
    ApiError, AttachRequest, AttachResult, CheckRequest, DetachRequest, DetachResult, ErrorKind,
    GcRequest, GcResult,
};
use crate::ipam::{Family, Ipam, Want};

impl Agent {
    /// The answer for a registered container.
    fn result(&self, c: &Container, ip: Ipv4Addr) -> AttachResult {
        let cfg = self.config();
        AttachResult {
            id: c.id.clone(),
            ip: ip.to_string(),
            prefix_len: 32,
            gateway: GATEWAY.to_string(),
            netns: c.netns.clone(),
            host_ifname: c.host_ifname.clone(),
            host_mac: c.host_mac.clone(),
            container_ifname: c.ifname.clone(),
            container_mac: c.container_mac.clone(),
            mtu: c.mtu.or(Some(self.mtu)),
            advertised: convert::advertise_host(&cfg, ip),
        }
    }

    /// What static address `ip` must stay clear of: config, the host's
    /// interface addresses, and the Loc-RIB prefixes learned from peers that
    /// contain it (a few lookups, not a walk: [`tortie_bgp::Speaker::covering`]).
    async fn forbidden(&self, ip: Ipv4Addr) -> Result<refuse::Forbidden, ApiError> {
        let cfg = self.config();
        let mut node: Vec<_> = cfg.node.addresses.v4().into_iter().collect();
        match nix::ifaddrs::getifaddrs() {
            Ok(addrs) => {
                for a in addrs {
                    let (Some(addr), Some(mask)) = (
                        a.address.as_ref().and_then(|s| s.as_sockaddr_in()),
                        a.netmask.as_ref().and_then(|s| s.as_sockaddr_in()),
                    ) else {
                        continue;
                    };
                    let len = u32::from(mask.ip()).leading_ones() as u8;
                    if let Ok(n) = ipnetwork::Ipv4Network::new(addr.ip(), len) {
                        node.push(n);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing the node's addresses"),
        }
        let learned = self
            .speaker()
            .await?
            .covering(IpAddr::V4(ip))
            .await
            .into_iter()
            .filter_map(|(prefix, peer)| match prefix {
                tortie_bgp::Prefix::V4(p) => {
                    let n = ipnetwork::Ipv4Network::new(p.addr(), p.len()).ok()?;
                    Some((n, peer?))
                }
                tortie_bgp::Prefix::V6(_) => None,
            })
            .collect();
        Ok(refuse::Forbidden {
            node,
            peers: cfg.peers.iter().map(|p| p.address).collect(),
            learned,
            block_len: cfg.node.blocks_v4().map(|b| b.prefix()).min().unwrap_or(32),
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
            Some(s) => Some(s.parse::<Ipv4Addr>().map_err(|e| {
                ApiError::bad_request(format!("ip {s:?} is not an IPv4 address: {e}"))
            })?),
            None => None,
        };
        if let Some(ip) = requested {
            refuse::check(ip, &self.forbidden(ip).await?).map_err(|why| {
                ApiError::bad_request(format!("refusing --ip {ip} for {}: {why}", req.id))
            })?;
        }
        let cfg = self.config();
        let ifname = req.ifname.clone().unwrap_or_else(|| "eth0".to_string());
        let host = tortie_routes::host_ifname(&cfg.dataplane.veth_prefix, &req.id);
        let started = std::time::Instant::now();
        // Whether the address is still announced (a rebuild): a failure
        // then withdraws it too.
        let mut rebuilding = false;
        let mut ipam = self.ipam.lock().await;
        let saved = self.registry().get(&host).cloned();
        if let Some(c) = saved {
            let ip = c.v4();
            if let (Some(r), Some(ip)) = (requested, ip)
                && r != ip
            {
                return Err(ApiError::new(
                    ErrorKind::Conflict,
                    format!("{} is already attached with {ip}; detach it first", req.id),
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
            if let Some(ip) = ip
                && tortie_routes::link_exists(&host)
            {
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
                    tracing::warn!(id = %req.id, %ip, "repeated attach without a saved result: answering without MACs");
                }
                return Ok(self.result(&c, ip));
            }
            // The veth is gone (deleted behind our back): rebuild it with
            // the same address. The entry goes first, so that a crash
            // during the rebuild leaves a veth without an entry (removed at
            // start-up), never an entry for a half-made veth.
            // Its /32 stays announced (same address, same veth name): no
            // withdraw for peers, and the route table keeps wanting the
            // host route, which it puts back once the new veth is up.
            tracing::warn!(id = %req.id, host_ifname = %host, ip = ip.map(tracing::field::display), "the container's veth is gone: rebuilding it");
            self.registry_mut().remove(&host);
            if let Some(ip) = ip {
                rebuilding = true;
                requested = Some(ip);
                // Adopted under its veth name: hand the address to the id.
                if !c.id_known()
                    && ipam.owner(IpAddr::V4(ip)) == Some(host.as_str())
                    && let Err(e) = ipam.release(&host)
                {
                    self.unannounce(ip).await;
                    return Err(ipam_error(e));
                }
            }
        } else if tortie_routes::link_exists(&host) {
            // Our id's veth without an entry: an attach that died half-way.
            tracing::warn!(id = %req.id, host_ifname = %host, "removing a half-made veth of this id before attaching");
            tortie_routes::delete_host_veth(&host, &format!("attach {}", req.id))
                .await
                .map_err(|e| ApiError::internal(format!("attaching {}: {e}", req.id)))?;
        }
        let locked = started.elapsed();
        // The address is decided and its journal record written now; the
        // record's fdatasync runs on the blocking pool while the veth is
        // created, and is joined before anything is answered. `join!` polls
        // the dataplane first, so the hand-off to the attach thread is not
        // queued behind the blocking-pool wake-up (~70 µs here).
        let want = requested.map_or(Want::Any(Family::V4), Want::from);
        let pending = ipam.allocate_pending(&req.id, want).map_err(ipam_error)?;
        let IpAddr::V4(ip) = pending.address() else {
            // IPAM answers in the family asked for.
            return Err(ApiError::internal(format!(
                "attaching {}: IPAM answered {} for an IPv4 request",
                req.id,
                pending.address()
            )));
        };
        let allocated = started.elapsed();
        let dp = tortie_routes::AttachRequest {
            container_id: req.id.clone(),
            netns: req.netns.clone().into(),
            ifname: ifname.clone(),
            address: ip,
            mtu: self.mtu,
            veth_prefix: cfg.dataplane.veth_prefix.clone(),
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
            Ok(pending) => ipam.commit(pending).map(|_| ()).map_err(ipam_error),
            // The sync task died (panic, shutdown): the record may not be
            // on disk; rolled back below like any other failure.
            Err(e) => Err(ApiError::internal(format!(
                "attaching {}: syncing the IPAM record of {ip} failed: {e}",
                req.id
            ))),
        };
        let synced = started.elapsed();
        let attachment = match (attached, durable) {
            (Ok(a), Ok(())) => a,
            (Ok(_), Err(e)) => {
                self.roll_back(&mut ipam, &req.id, &host, ip, rebuilding)
                    .await;
                return Err(e);
            }
            (Err(e), _) => {
                self.roll_back(&mut ipam, &req.id, &host, ip, rebuilding)
                    .await;
                return Err(ApiError::new(
                    dataplane_kind(&e),
                    format!("attaching {}: {e}", req.id),
                ));
            }
        };
        // Registered before it is announced: from here on learned routes
        // never override the /32 (the speaker reports our own origination
        // back as a best path).
        let c = Container {
            id: req.id.clone(),
            addresses: vec![host_net(IpAddr::V4(ip))],
            host_ifname: attachment.host_ifname.clone(),
            host_mac: Some(attachment.host_mac.clone()),
            netns: attachment.netns.display().to_string(),
            ifname: attachment.container_ifname.clone(),
            container_mac: Some(attachment.container_mac.clone()),
            mtu: Some(attachment.mtu),
        };
        self.registry_mut().insert(c.clone());
        if let Err(e) = self.announce(ip, &attachment.host_ifname).await {
            self.roll_back(&mut ipam, &req.id, &host, ip, true).await;
            return Err(e);
        }
        let adopted = started.elapsed();
        tracing::info!(id = %req.id, %ip, host_ifname = %attachment.host_ifname, "attached");
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
        Ok(self.result(&c, ip))
    }

    /// Undoes a failed attach of `id` (holding `ip`, veth `host`): the /32
    /// (when `announced`), the veth, and — only once the veth is known to be
    /// gone — the address. A veth that cannot be removed keeps its address
    /// allocated (the next attach of this id, or start-up, removes it).
    async fn roll_back(
        &self,
        ipam: &mut Ipam,
        id: &str,
        host: &str,
        ip: Ipv4Addr,
        announced: bool,
    ) {
        if announced {
            self.unannounce(ip).await;
        }
        if let Err(e) = tortie_routes::delete_host_veth(host, &format!("rollback of {id}")).await {
            tracing::error!(id, %ip, error = %e, "rollback: the veth could not be removed; keeping its address allocated");
            // A failed IPAM sync already undid the allocation: take the
            // address back while the veth may carry it.
            if ipam.owner(IpAddr::V4(ip)).is_none()
                && let Err(e) = ipam.allocate(id, ip)
            {
                tracing::error!(id, %ip, error = %e, "rollback: re-reserving the address failed; start-up reconciliation will adopt it");
            }
            return;
        }
        if ipam.owner(IpAddr::V4(ip)) == Some(id)
            && let Err(e) = ipam.release(id)
        {
            tracing::error!(id, %ip, error = %e, "rollback: releasing the address failed");
        }
    }

    async fn detach_locked(&self, ipam: &mut Ipam, id: &str) -> Result<DetachResult, ApiError> {
        let cfg = self.config();
        let host = tortie_routes::host_ifname(&cfg.dataplane.veth_prefix, id);
        let saved = self.registry().get(&host).cloned();
        let ip = saved
            .as_ref()
            .and_then(Container::v4)
            .or_else(|| v4_of(ipam.get(id, Family::V4)));
        // The veth first: while it may exist, its address stays allocated.
        tortie_routes::detach(id, &cfg.dataplane.veth_prefix, cfg.dataplane.route_protocol)
            .await
            .map_err(|e| ApiError::internal(format!("detaching {id}: {e}")))?;
        if let Some(ip) = ip {
            self.unannounce(ip).await;
        }
        self.registry_mut().remove(&host);
        let mut released = ipam.release(id).map_err(ipam_error)?;
        if released.is_empty()
            && let Some(ip) = saved.as_ref().and_then(Container::v4)
            && ipam
                .release_address(IpAddr::V4(ip))
                .map_err(ipam_error)?
                .is_some()
        {
            // Adopted at start-up under its veth name.
            released.push(IpAddr::V4(ip));
        }
        let released = released.first().copied();
        tracing::info!(
            id,
            ip = released.map(tracing::field::display),
            removed = saved.is_some(),
            "detached"
        );
        Ok(DetachResult {
            id: id.to_string(),
            released_ip: released.map(|i| i.to_string()),
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
        let mut ipam = self.ipam.lock().await;
        self.detach_locked(&mut ipam, &req.id).await
    }

    pub(super) async fn check_container(
        &self,
        req: CheckRequest,
    ) -> Result<AttachResult, ApiError> {
        let ipam = self.ipam.lock().await;
        let cfg = self.config();
        let host = tortie_routes::host_ifname(&cfg.dataplane.veth_prefix, &req.id);
        let saved = self.registry().get(&host).cloned();
        let ip = saved
            .as_ref()
            .and_then(Container::v4)
            .or_else(|| v4_of(ipam.get(&req.id, Family::V4)))
            .ok_or_else(|| ApiError::not_found(format!("{} is not attached", req.id)))?;
        // The dump below reads every route: attaches need not wait for it.
        drop(ipam);
        let found = tortie_routes::list_attachments(
            &cfg.dataplane.veth_prefix,
            cfg.dataplane.route_protocol,
        )
        .await
        .map_err(|e| ApiError::internal(format!("listing attachments: {e}")))?;
        match found.iter().find(|(dev, _)| *dev == host) {
            None => Err(ApiError::not_found(format!(
                "{}: veth {host} or its route is missing",
                req.id
            ))),
            Some((_, addr)) if *addr != ip => Err(ApiError::new(
                ErrorKind::Conflict,
                format!("{}: {host} routes {addr}, the agent says {ip}", req.id),
            )),
            Some(_) => {
                let c = saved.unwrap_or_else(|| Container {
                    id: req.id.clone(),
                    addresses: vec![host_net(IpAddr::V4(ip))],
                    host_ifname: host.clone(),
                    host_mac: None,
                    netns: String::new(),
                    ifname: String::new(),
                    container_mac: None,
                    mtu: None,
                });
                let mut r = self.result(&c, ip);
                r.id = req.id.clone();
                if let Some(ns) = req.netns {
                    r.netns = ns;
                }
                Ok(r)
            }
        }
    }

    pub(super) async fn gc_containers(&self, req: GcRequest) -> Result<GcResult, ApiError> {
        let mut ipam = self.ipam.lock().await;
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

/// An IPv4 address out of IPAM's family-generic answer.
fn v4_of(ip: Option<IpAddr>) -> Option<Ipv4Addr> {
    match ip? {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}
