//! Session plumbing: the tasks behind [`crate::Speaker`].
//!
//! [`Runtime::start`] spawns the RIB task ([`rib_task`], sole owner of the
//! RIB), one [`peer::PeerTask`] per configured peer, the [`listener`] and
//! the BFD socket task ([`crate::bfd`]), which tells a peer task when its BFD
//! session goes down.
//! Accepted connections go from the listener to the peer task owning the
//! source address; received UPDATEs go from peer tasks to the RIB task;
//! outbound UPDATEs go back from the RIB task to each established session.
//! API calls are messages to these tasks. All channels are bounded.

mod coalesce;
mod conn;
mod listener;
pub(crate) mod msg;
mod outbox;
mod peer;
mod rib_task;
pub mod socket;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::info;

use crate::BgpError;
use crate::fsm::{FsmConfig, codes, notify};
use crate::speaker::{
    BestPathFeed, GracefulRestartConfig, PeerConfig, PeerStatus, RouteInfo, SpeakerConfig,
    SpeakerEvent,
};
use crate::types::Prefix;
use msg::{PeerCmd, RibMsg};

/// Events the owner's channel holds before the RIB task's outbox keeps
/// further best-path changes in its compact form (8 bytes per prefix,
/// looked up again at delivery): about 80 KB when full (80-byte events).
/// An owner that keeps up with a stream gets its changes as made, without
/// the second lookup. Kept small because every event in the channel has
/// left the outbox, and with it the order the outbox gives a backlog (IPv4
/// tier by tier, the runs bit-reversed): with 8192 here, the agent's
/// batches and the route table's queue, ~40k changes of a 100k bulk load
/// went to the kernel in arrival order, the rest in separately sorted
/// stretches that churned the kernel's FIB trie twice as much as one
/// sorted pass (docs/design.md §2, lab/bench/README.md session 13 e2e100).
/// Public so the kernel benchmark drives the route table in the bursts an
/// owner receives.
pub const EVENT_CHANNEL: usize = 1024;

/// The speaker's express channel ([`crate::Speaker::express_events`]):
/// its events, and the owner's count of the event channel's events it has
/// taken and ordered, which the speaker reads before it sends a change
/// here (outbox/unordered.rs).
pub struct ExpressEvents {
    rx: mpsc::Receiver<SpeakerEvent>,
    ordered: Arc<AtomicU64>,
}

impl ExpressEvents {
    /// The next express change; `None` once the speaker stopped.
    pub async fn recv(&mut self) -> Option<SpeakerEvent> {
        self.rx.recv().await
    }

    /// An express change already waiting, if any.
    pub fn try_recv(&mut self) -> Option<SpeakerEvent> {
        self.rx.try_recv().ok()
    }

    /// `n` more events taken from the event channel are ordered: every
    /// express change taken from now on is ordered after them. Call it
    /// after each take, once its events have their order (an express
    /// change taken before that call must be ordered before them — which
    /// taking this channel first before each take gives).
    pub fn ordered(&self, n: usize) {
        self.ordered
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Release);
    }
}

/// The target of the per-change path trace, off unless asked for
/// (`RUST_LOG=info,tortie_probe=trace`): each host-length change (an IPv4
/// /32, an IPv6 /128; a bulk load of shorter prefixes logs nothing) logs its
/// steps through the speaker and the agent with the backlog ahead of it at
/// each (lab/bench/README.md, `loadlat`; `TORTIE_BENCH_PROBE_TRACE`).
pub const PROBE_TRACE: &str = "tortie_probe";

/// Whether `prefix`'s steps are traced ([`PROBE_TRACE`]): a host-length
/// prefix while that target's trace level is on. Off, it costs a compare
/// and a cached level check.
pub fn probe_traced(prefix: Prefix) -> bool {
    let host = match prefix {
        Prefix::V4(_) => 32,
        Prefix::V6(_) => 128,
    };
    prefix.len() == host && tracing::enabled!(target: PROBE_TRACE, tracing::Level::TRACE)
}

/// Largest connect-retry back-off.
const CONNECT_RETRY_MAX: Duration = Duration::from_secs(120);

/// Speaker-wide settings every task reads.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) local_asn: u32,
    pub(crate) router_id: Ipv4Addr,
    /// [`SpeakerConfig::local_addresses`].
    pub(crate) local_addresses: Vec<IpAddr>,
    pub(crate) hold_time: u16,
    pub(crate) connect_retry: Duration,
    pub(crate) graceful_restart: Option<GracefulRestartConfig>,
    pub(crate) cluster_id: Option<Ipv4Addr>,
    pub(crate) guard: crate::policy::ImportGuard,
    pub(crate) ebgp_requires_policy: bool,
    /// [`SpeakerConfig::best_path_feed`].
    pub(crate) best_path_feed: BestPathFeed,
}

impl Shared {
    /// The node's address of one family (IPv4 when `v4`), if it has one.
    pub(crate) fn local_address_of(&self, v4: bool) -> Option<IpAddr> {
        self.local_addresses
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == v4)
    }
}

/// The FSM settings for `peer`. `first_session`: set the GR Restart State bit
/// when we restarted with forwarding state preserved (RFC 4724 §4.1).
pub(crate) fn fsm_config(shared: &Shared, peer: &PeerConfig, first_session: bool) -> FsmConfig {
    // RFC 4760 §8: one Multiprotocol capability per family the session may
    // carry; RFC 4724 §3: the graceful restart capability lists the same ones.
    let families = peer.families.clone();
    let graceful_restart = shared
        .graceful_restart
        .as_ref()
        .map(|g| g.capability(&families, first_session));
    FsmConfig {
        local_asn: shared.local_asn,
        router_id: shared.router_id,
        peer_asn: peer.asn,
        hold_time: peer.hold_time.unwrap_or(shared.hold_time),
        passive: peer.passive,
        connect_retry: shared.connect_retry,
        connect_retry_max: CONNECT_RETRY_MAX,
        families,
        graceful_restart,
        extended_message: true,
    }
}

/// Scales `d` by a pseudo-random factor in [0.75, 1.0] (RFC 4271 §10 jitter).
pub(crate) fn jitter(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let r = (h.finish() % 1000) as f64 / 1000.0;
    d.mul_f64(0.75 + 0.25 * r)
}

pub(crate) fn validate(cfg: &SpeakerConfig) -> Result<(), BgpError> {
    if cfg.local_asn == 0 {
        return Err(BgpError::Config(
            "local ASN 0 is reserved (RFC 7607)".into(),
        ));
    }
    if cfg.router_id.is_unspecified() {
        return Err(BgpError::Config(
            "router id 0.0.0.0 is not allowed (RFC 6286)".into(),
        ));
    }
    validate_peers(&cfg.peers, cfg.hold_time)?;
    let listening = cfg.listen.is_some_and(|l| l.port() != 0);
    if let Some(p) = cfg.peers.iter().find(|p| p.passive && !listening) {
        return Err(BgpError::Config(format!(
            "peer {} ({}) is passive but the speaker does not listen (listen port 0)",
            p.name, p.address
        )));
    }
    Ok(())
}

fn validate_peers(peers: &[PeerConfig], hold_time: u16) -> Result<(), BgpError> {
    let check_hold = |h: u16, who: &str| {
        if h == 1 || h == 2 {
            Err(BgpError::Config(format!(
                "{who}: hold time {h} is not allowed (0 or at least 3, RFC 4271 §4.2)"
            )))
        } else {
            Ok(())
        }
    };
    check_hold(hold_time, "speaker")?;
    let mut seen = std::collections::HashSet::new();
    for p in peers {
        let who = format!("peer {} ({})", p.name, p.address);
        if !seen.insert(p.address) {
            return Err(BgpError::Config(format!("{who}: configured twice")));
        }
        if p.families.is_empty() {
            return Err(BgpError::Config(format!("{who}: no address family")));
        }
        if p.asn == 0 {
            return Err(BgpError::Config(format!("{who}: ASN 0 is reserved")));
        }
        if let Some(h) = p.hold_time {
            check_hold(h, &who)?;
        }
        if p.password
            .as_ref()
            .is_some_and(|k| k.len() > socket::MD5_MAX_KEY_LEN || k.is_empty())
        {
            return Err(BgpError::Config(format!(
                "{who}: TCP MD5 key must be 1..=80 bytes"
            )));
        }
        if p.multihop == Some(0) {
            return Err(BgpError::Config(format!(
                "{who}: multihop TTL must be 1..=255"
            )));
        }
        if let Some(b) = &p.bfd {
            if b.multiplier == 0 {
                return Err(BgpError::Config(format!(
                    "{who}: BFD detect multiplier must be 1..=255"
                )));
            }
            if b.interval < Duration::from_millis(10) || b.interval > Duration::from_secs(60) {
                return Err(BgpError::Config(format!(
                    "{who}: BFD interval {:?} is outside 10 ms..=60 s",
                    b.interval
                )));
            }
            if p.multihop.is_some_and(|m| m > 1) || p.ttl_security.is_some_and(|h| h > 1) {
                return Err(BgpError::Config(format!(
                    "{who}: BFD here is single-hop (RFC 5881): the peer must be directly connected (multihop BFD, RFC 5883, is not supported)"
                )));
            }
        }
        if p.ttl_security == Some(0) {
            return Err(BgpError::Config(format!(
                "{who}: ttl_security hop count must be 1..=255"
            )));
        }
    }
    Ok(())
}

struct PeerHandle {
    cfg: PeerConfig,
    cmd: mpsc::Sender<PeerCmd>,
    status: Arc<Mutex<PeerStatus>>,
    task: JoinHandle<()>,
}

/// The running tasks of one speaker.
pub(crate) struct Runtime {
    shared: Arc<Shared>,
    rib: mpsc::Sender<RibMsg>,
    rib_task: JoinHandle<()>,
    peers: tokio::sync::Mutex<Vec<PeerHandle>>,
    listener: Option<listener::Listener>,
    /// The BFD socket task (RFC 5881), serving every peer with `bfd`.
    bfd: crate::bfd::task::BfdTask,
    /// Peer address → session task, read by the listener.
    dispatch: listener::Dispatch,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Sessions first, so none sees the RIB task vanish and resets with Cease.
        for p in self.peers.get_mut().iter() {
            p.task.abort();
        }
        if let Some(l) = &self.listener {
            l.abort();
        }
        self.rib_task.abort();
    }
}

impl Runtime {
    pub(crate) async fn start(
        cfg: SpeakerConfig,
    ) -> Result<(Runtime, mpsc::Receiver<SpeakerEvent>), BgpError> {
        validate(&cfg)?;
        let shared = Arc::new(Shared {
            local_asn: cfg.local_asn,
            router_id: cfg.router_id,
            local_addresses: cfg.local_addresses.clone(),
            hold_time: cfg.hold_time,
            connect_retry: cfg.connect_retry,
            graceful_restart: cfg.graceful_restart.clone(),
            cluster_id: cfg.cluster_id,
            guard: cfg.guard.clone(),
            ebgp_requires_policy: cfg.ebgp_requires_policy,
            best_path_feed: cfg.best_path_feed,
        });
        let dispatch = listener::Dispatch::default();
        let listener = match cfg.listen {
            Some(addr) if addr.port() != 0 => {
                Some(listener::Listener::start(addr, dispatch.clone())?)
            }
            _ => None,
        };
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_CHANNEL);
        let (rib_tx, rib_rx) = mpsc::channel(1024);
        let rib_task = tokio::spawn(rib_task::run(
            shared.clone(),
            cfg.peers.clone(),
            rib_rx,
            ev_tx,
        ));
        let rt = Runtime {
            shared,
            rib: rib_tx,
            rib_task,
            peers: tokio::sync::Mutex::new(Vec::new()),
            listener,
            bfd: crate::bfd::task::BfdTask::start(crate::bfd::socket::CONTROL_PORT),
            dispatch,
        };
        {
            let mut peers = rt.peers.lock().await;
            for p in cfg.peers {
                let h = rt.spawn_peer(p, None).await?;
                peers.push(h);
            }
        }
        info!(asn = rt.shared.local_asn, router_id = %rt.shared.router_id, "BGP speaker started");
        Ok((rt, ev_rx))
    }

    /// Starts `p`'s session task; `previous` is the status of the session it
    /// replaces (same address, new configuration), whose counters carry on.
    async fn spawn_peer(
        &self,
        p: PeerConfig,
        previous: Option<&PeerStatus>,
    ) -> Result<PeerHandle, BgpError> {
        if let Some(l) = &self.listener {
            l.set_md5(p.address, p.password.as_deref())?;
            if p.ttl_security.is_some() {
                l.enable_gtsm_ttl()?;
            }
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(16);
        let status = match previous {
            Some(prev) => peer::carried_status(prev, &p),
            None => peer::initial_status(&p, self.shared.local_asn),
        };
        let status = Arc::new(Mutex::new(status));
        let task = peer::PeerTask::new(
            p.clone(),
            self.shared.clone(),
            self.rib.clone(),
            status.clone(),
            cmd_rx,
        );
        self.add_bfd(&p, &status, &cmd_tx).await?;
        self.dispatch.insert(p.address, cmd_tx.clone());
        let task = tokio::spawn(task.run());
        Ok(PeerHandle {
            cfg: p,
            cmd: cmd_tx,
            status,
            task,
        })
    }

    /// Starts `p`'s BFD session, if it has one.
    async fn add_bfd(
        &self,
        p: &PeerConfig,
        status: &Arc<Mutex<PeerStatus>>,
        cmd: &mpsc::Sender<PeerCmd>,
    ) -> Result<(), BgpError> {
        let Some(cfg) = p.bfd else {
            return Ok(());
        };
        let local = p
            .source_address
            .or(self.shared.local_address_of(p.address.is_ipv4()));
        self.bfd
            .add(crate::bfd::task::NewSession {
                peer: p.address,
                name: p.name.clone(),
                local,
                cfg,
                status: status.clone(),
                notify: cmd.clone(),
            })
            .await
    }

    async fn stop_peer(&self, h: PeerHandle, notification: Option<crate::wire::Notification>) {
        self.stop_peer_as(h, notification, false).await
    }

    /// Stops a peer's task. `keep_if_graceful`: a session that negotiated
    /// graceful restart closes without `notification` (RFC 4724 restart).
    async fn stop_peer_as(
        &self,
        h: PeerHandle,
        notification: Option<crate::wire::Notification>,
        keep_if_graceful: bool,
    ) {
        self.dispatch.remove(h.cfg.address);
        if h.cfg.bfd.is_some() {
            self.bfd.remove(h.cfg.address).await;
        }
        if let Some(l) = &self.listener {
            let _ = l.set_md5(h.cfg.address, None);
        }
        let (tx, rx) = oneshot::channel();
        if h.cmd
            .send(PeerCmd::Stop {
                notification,
                keep_if_graceful,
                reply: tx,
            })
            .await
            .is_ok()
        {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
        h.task.abort();
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> RibMsg) -> Result<T, BgpError> {
        let (tx, rx) = oneshot::channel();
        self.rib
            .send(make(tx))
            .await
            .map_err(|_| BgpError::Shutdown)?;
        rx.await.map_err(|_| BgpError::Shutdown)
    }

    pub(crate) async fn originate(
        &self,
        prefix: Prefix,
        attributes: crate::types::PathAttributes,
    ) -> Result<(), BgpError> {
        self.ask(|reply| RibMsg::Originate {
            prefix,
            attributes: Box::new(attributes),
            reply,
        })
        .await?
    }

    pub(crate) async fn withdraw(&self, prefix: Prefix) -> Result<(), BgpError> {
        self.ask(|reply| RibMsg::Withdraw { prefix, reply }).await?
    }

    pub(crate) async fn covering(&self, addr: IpAddr) -> Vec<(crate::Prefix, Option<IpAddr>)> {
        self.ask(|reply| RibMsg::Covering { addr, reply })
            .await
            .unwrap_or_default()
    }

    pub(crate) async fn routes(&self, query: crate::speaker::RouteQuery) -> Vec<RouteInfo> {
        self.ask(|reply| RibMsg::Routes { query, reply })
            .await
            .unwrap_or_default()
    }

    pub(crate) async fn peers(&self) -> Vec<PeerStatus> {
        let counts: HashMap<IpAddr, crate::rib::PeerCounters> = self
            .ask(|reply| RibMsg::Counts { reply })
            .await
            .unwrap_or_default();
        let peers = self.peers.lock().await;
        peers
            .iter()
            .filter_map(|h| {
                let mut st = h.status.lock().ok()?.clone();
                if let Some(c) = counts.get(&st.address) {
                    st.routes_received = c.received as u64;
                    st.routes_stale = c.stale as u64;
                    st.routes_filtered = c.filtered as u64;
                    st.routes_advertised = c.advertised as u64;
                    st.routes_received_ipv6 = c.received_ipv6 as u64;
                    st.routes_advertised_ipv6 = c.advertised_ipv6 as u64;
                    st.routes_stale_ipv6 = c.stale_ipv6 as u64;
                    st.routes_filtered_ipv6 = c.filtered_ipv6 as u64;
                }
                Some(st)
            })
            .collect()
    }

    pub(crate) async fn express_events(&self) -> Result<ExpressEvents, BgpError> {
        let (tx, rx) = mpsc::channel(outbox::EXPRESS_CHANNEL);
        let ordered = Arc::new(AtomicU64::new(0));
        self.rib
            .send(RibMsg::ExpressEvents(tx, ordered.clone()))
            .await
            .map_err(|_| BgpError::Shutdown)?;
        Ok(ExpressEvents { rx, ordered })
    }

    pub(crate) async fn set_ebgp_requires_policy(&self, on: bool) -> Result<(), BgpError> {
        self.rib
            .send(RibMsg::SetEbgpRequiresPolicy { on })
            .await
            .map_err(|_| BgpError::Shutdown)
    }

    pub(crate) async fn route_refresh(&self, peer: IpAddr) -> Result<(), BgpError> {
        let cmd = {
            let peers = self.peers.lock().await;
            peers
                .iter()
                .find(|h| h.cfg.address == peer)
                .map(|h| h.cmd.clone())
        };
        let cmd = cmd.ok_or(BgpError::UnknownPeer(peer))?;
        let (tx, rx) = oneshot::channel();
        cmd.send(PeerCmd::RouteRefresh { reply: tx })
            .await
            .map_err(|_| BgpError::Shutdown)?;
        rx.await.map_err(|_| BgpError::Shutdown)?
    }

    pub(crate) async fn reconfigure(&self, new: Vec<PeerConfig>) -> Result<(), BgpError> {
        validate_peers(&new, self.shared.hold_time)?;
        if self.listener.is_none()
            && let Some(p) = new.iter().find(|p| p.passive)
        {
            return Err(BgpError::Config(format!(
                "peer {} ({}) is passive but the speaker does not listen",
                p.name, p.address
            )));
        }
        let mut peers = self.peers.lock().await;
        let old = std::mem::take(&mut *peers);
        let mut kept = Vec::new();
        let mut refresh = Vec::new();
        // Status of the peers restarted for a new configuration, by address.
        let mut carried: HashMap<IpAddr, PeerStatus> = HashMap::new();
        for mut h in old {
            match new.iter().find(|p| p.address == h.cfg.address) {
                Some(p) if *p == h.cfg => kept.push(h),
                Some(p) if p.same_session(&h.cfg) => {
                    info!(peer = %h.cfg.name, address = %h.cfg.address, "peer filters or BFD changed: applying without a session reset");
                    refresh.push((h.cfg.address, h.cfg.name.clone(), h.cmd.clone()));
                    if p.bfd != h.cfg.bfd {
                        // A new BFD session (the old one ends with AdminDown,
                        // which the peer does not take for a failure).
                        self.bfd.remove(h.cfg.address).await;
                        self.add_bfd(p, &h.status, &h.cmd).await?;
                    }
                    h.cfg = p.clone();
                    kept.push(h);
                }
                Some(_) => {
                    info!(peer = %h.cfg.name, address = %h.cfg.address, "peer configuration changed: resetting the session");
                    let status = h.status.clone();
                    let address = h.cfg.address;
                    self.stop_peer(
                        h,
                        Some(notify(
                            codes::CEASE,
                            codes::CEASE_OTHER_CONFIG_CHANGE,
                            Vec::new(),
                        )),
                    )
                    .await;
                    // The stopped task wrote its last counts (the Cease sent).
                    if let Ok(st) = status.lock() {
                        carried.insert(address, st.clone());
                    }
                }
                None => {
                    info!(peer = %h.cfg.name, address = %h.cfg.address, "peer removed from the configuration");
                    self.stop_peer(
                        h,
                        Some(notify(
                            codes::CEASE,
                            codes::CEASE_PEER_DECONFIGURED,
                            Vec::new(),
                        )),
                    )
                    .await
                }
            }
        }
        let (tx, rx) = oneshot::channel();
        self.rib
            .send(RibMsg::SetPeers {
                peers: new.clone(),
                import_changed: tx,
            })
            .await
            .map_err(|_| BgpError::Shutdown)?;
        // Import filters changed on an up session: the peer's routes again
        // (RFC 2918), to run them through the new filter.
        let import_changed = rx.await.map_err(|_| BgpError::Shutdown)?;
        for (addr, name, cmd) in refresh {
            if !import_changed.contains(&addr) {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            if cmd.send(PeerCmd::RouteRefresh { reply: tx }).await.is_ok()
                && let Ok(Err(e)) = rx.await
            {
                tracing::warn!(peer = %name, address = %addr, "import filter change: cannot ask for the routes again ({e}); it applies to routes received from now on");
            }
        }
        // Keep configuration order.
        for p in new {
            if let Some(i) = kept.iter().position(|h| h.cfg.address == p.address) {
                peers.push(kept.swap_remove(i));
            } else {
                let previous = carried.get(&p.address);
                if previous.is_none() {
                    info!(peer = %p.name, address = %p.address, "peer added to the configuration");
                }
                let h = self.spawn_peer(p, previous).await?;
                peers.push(h);
            }
        }
        Ok(())
    }

    pub(crate) async fn shutdown(self, graceful: bool) {
        if let Some(l) = &self.listener {
            l.abort();
        }
        let handles = std::mem::take(&mut *self.peers.lock().await);
        let notification = notify(
            codes::CEASE,
            codes::CEASE_ADMIN_SHUTDOWN,
            shutdown_communication(SHUTDOWN_TEXT),
        );
        for h in handles {
            self.stop_peer_as(h, Some(notification.clone()), graceful)
                .await;
        }
        info!(graceful, "BGP speaker stopped");
        // Dropping self aborts the RIB task.
    }
}

/// The shutdown communication sent with Cease/2 when the speaker stops.
const SHUTDOWN_TEXT: &str = "tortie agent stopping";

/// RFC 8203 (as updated by RFC 9003 §2): Cease/2 and /4 data may carry a
/// length octet and a UTF-8 message of at most 255 octets.
pub(crate) fn shutdown_communication(text: &str) -> Vec<u8> {
    let mut end = text.len().min(255);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut v = Vec::with_capacity(end + 1);
    v.push(end as u8);
    v.extend_from_slice(&text.as_bytes()[..end]);
    v
}

/// Address used to find a peer from a socket's source address.
pub(crate) fn canonical(addr: SocketAddr) -> IpAddr {
    addr.ip().to_canonical()
}
