//! The RIB task: the single owner of the [`Rib`]. Session tasks and API calls
//! send it [`RibMsg`]s; it applies them, hands outbound UPDATEs to each
//! established session's channel, and reports best-path changes, peer state
//! changes and initial convergence on the speaker's event channel, through
//! the [`Outbox`]: the one coalescing stage between the speaker and the
//! kernel (compact while the owner is slower than the RIB: a changed prefix
//! costs 8 bytes, not a queued event), which also interns each change's
//! next-hop set.
//!
//! A peer's routes going in bulk (session down, graceful-restart sweeps) are
//! removed in steps of [`REMOVAL_STEP`] prefixes ([`Removal`]), each step's
//! UPDATEs and best-path changes handed on before the next, so a full-table
//! teardown costs a few bytes per prefix, not a change record per prefix.
//!
//! It also runs the two clocks the pure RIB has not got: the graceful-restart
//! stale timers of restarting peers (RFC 4724 §4.2: sweep on End-of-RIB or when
//! the peer's Restart Time runs out) and the initial-convergence timer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::Shared;
use super::coalesce::{self, Coalescer};
use super::msg::{PeerOut, RibMsg};
use super::outbox::Outbox;
use crate::rib::{BestPathFeed, PeerId, PeerInfo, Removal, Rib, RibConfig, RibError, RibOutput};
use crate::speaker::{
    FilteredCandidate, PeerConfig, RouteCandidate, RouteInfo, RouteQuery, SpeakerEvent,
};
use crate::types::AddressFamily;
use crate::types::Prefix;
use crate::wire::Update;

/// Without graceful restart configured, how long to wait for every peer's
/// End-of-RIB before declaring convergence anyway.
const DEFAULT_CONVERGENCE_TIMEOUT: Duration = Duration::from_secs(120);
/// A peer that did not advertise graceful restart may never send End-of-RIB:
/// count it converged this long after Established (unless EoR comes first).
const NON_GR_PEER_SETTLE: Duration = Duration::from_secs(5);
/// Output batches held for a session whose channel is full before we give up
/// on it (its task then resets it with Cease/8, Out of Resources). The RIB
/// task never waits on a session, so one stuck peer cannot stall the others.
const MAX_BACKLOG: usize = 65_536;
/// How often backlogs are retried.
const BACKLOG_RETRY: Duration = Duration::from_millis(5);
/// Most messages handled per wake-up of the RIB task, and for how long at
/// most, before timers, backlogs and event delivery get their turn.
const MSGS_PER_WAKE: usize = 256;
const MSGS_TIME_PER_WAKE: Duration = Duration::from_millis(1);
/// Prefixes per step of a bulk removal ([`Rib::remove_step`]): the output
/// of a step (~80 bytes per best-path change, 32 per withdrawal per peer)
/// stays around a megabyte, and the UPDATEs stay packed (a step's IPv4
/// withdrawals fill about eight 4 KiB messages, so at most one per step is
/// not full).
const REMOVAL_STEP: usize = 8192;

struct PeerEntry {
    cfg: PeerConfig,
    id: PeerId,
    out: Option<mpsc::Sender<PeerOut>>,
    /// Output that did not fit in `out` yet, in order.
    backlog: VecDeque<PeerOut>,
    /// Small outputs merged for a few milliseconds before they go out.
    coalesce: Coalescer,
    /// Families still awaiting End-of-RIB in the current session.
    awaiting_eor: HashSet<AddressFamily>,
    /// Graceful-restart stale deadline (RFC 4724 §4.2).
    stale_until: Option<Instant>,
    /// A non-GR peer counts as converged at this time.
    settle_at: Option<Instant>,
    converged: bool,
    /// Its OPEN had the Restart State bit (RFC 4724 §4.1).
    peer_restarting: bool,
}

struct RibTask {
    shared: Arc<Shared>,
    rib: Rib,
    peers: HashMap<IpAddr, PeerEntry>,
    next_id: u32,
    events: mpsc::Sender<SpeakerEvent>,
    /// What the owner's channel had no room for yet.
    outbox: Outbox,
    converged: bool,
    converge_deadline: Instant,
    /// We restarted with forwarding state preserved and have not converged
    /// yet: hold back our End-of-RIB markers (RFC 4724 §4.1 deferral), so
    /// peers do not sweep our routes before we re-learned and re-sent ours.
    restarting: bool,
    deferred_eor: Vec<(PeerId, Update)>,
    /// An UPDATE's output, drained by `emit_from` and kept between UPDATEs
    /// so a unique-attribute UPDATE allocates no change list. Holds at most
    /// one UPDATE's changes (one per prefix in it).
    spare: RibOutput,
    /// Messages queued behind the one being handled, read only while the
    /// probe trace is on ([`crate::PROBE_TRACE`]).
    inbox: usize,
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    peers: Vec<PeerConfig>,
    mut rx: mpsc::Receiver<RibMsg>,
    events: mpsc::Sender<SpeakerEvent>,
) {
    let mut cfg = RibConfig::new(shared.local_asn, shared.router_id);
    cfg.cluster_id = shared.cluster_id;
    cfg.guard = shared.guard.clone();
    cfg.ebgp_requires_policy = shared.ebgp_requires_policy;
    // No owner for best-path changes (`--no-kernel`): the RIB builds none;
    // an owner of next hops only: the RIB converts no attributes for it.
    cfg.best_path_feed = shared.best_path_feed;
    let outbox = Outbox::new(shared.best_path_feed);
    let timeout = shared
        .graceful_restart
        .as_ref()
        .map_or(DEFAULT_CONVERGENCE_TIMEOUT, |g| {
            Duration::from_secs(u64::from(g.restart_time))
        });
    let restarting = shared
        .graceful_restart
        .as_ref()
        .is_some_and(|g| g.restarting());
    let mut t = RibTask {
        restarting,
        deferred_eor: Vec::new(),
        spare: RibOutput::default(),
        inbox: 0,
        shared,
        rib: Rib::new(cfg),
        peers: HashMap::new(),
        next_id: 0,
        events,
        outbox,
        converged: false,
        converge_deadline: Instant::now() + timeout,
    };
    let _ = t.set_peers(peers).await;
    t.check_converged().await;
    enum Wake {
        Backlog,
        Msg(Option<RibMsg>),
        Timer,
        Nothing,
    }
    loop {
        let deadline = t.next_deadline();
        let backlog = t.peers.values().any(|e| !e.backlog.is_empty());
        let hold = !t.outbox.is_empty() && t.outbox.hold(!rx.is_empty(), std::time::Instant::now());
        let wake = tokio::select! {
            _ = tokio::time::sleep(BACKLOG_RETRY), if backlog => Wake::Backlog,
            msg = rx.recv() => Wake::Msg(msg),
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => Wake::Timer,
            permits = t.events.reserve_many(Outbox::chunk(&t.events)), if !t.outbox.is_empty() && !hold => {
                match permits {
                    Ok(p) => t.outbox.deliver(p, &t.events, &t.rib),
                    // The owner dropped the receiver: nobody to tell.
                    Err(_) => t.outbox.close(),
                }
                Wake::Nothing
            }
        };
        match wake {
            Wake::Backlog => t.drain_backlogs(),
            Wake::Msg(Some(m)) => {
                if tracing::enabled!(target: crate::PROBE_TRACE, tracing::Level::TRACE) {
                    t.inbox = rx.len();
                }
                t.outbox.quiet = rx.is_empty();
                t.handle(m).await;
                // A peer's burst of UPDATEs is usually queued behind it: take
                // more before the select (and its timers) is set up again,
                // for a bounded time so timers and delivery keep their pace.
                let started = std::time::Instant::now();
                for _ in 1..MSGS_PER_WAKE {
                    if started.elapsed() >= MSGS_TIME_PER_WAKE {
                        break;
                    }
                    match rx.try_recv() {
                        Ok(m) => {
                            if tracing::enabled!(target: crate::PROBE_TRACE, tracing::Level::TRACE)
                            {
                                t.inbox = rx.len();
                            }
                            t.outbox.quiet = rx.is_empty();
                            t.handle(m).await
                        }
                        Err(_) => break,
                    }
                }
            }
            Wake::Msg(None) => return,
            Wake::Timer => t.on_timers().await,
            Wake::Nothing => {}
        }
        // Changes made outside a message (timers, backlogs) are not quiet.
        t.outbox.quiet = false;
    }
}

impl RibTask {
    /// The configured name of a peer, for log lines (its address when unknown).
    fn name(&self, peer: IpAddr) -> String {
        self.peers
            .get(&peer)
            .map_or_else(|| peer.to_string(), |e| e.cfg.name.clone())
    }

    /// Applies a new peer list; returns the up peers whose import filter
    /// changed (their routes are to be asked for again).
    async fn set_peers(&mut self, peers: Vec<PeerConfig>) -> Vec<IpAddr> {
        let keep: HashSet<IpAddr> = peers.iter().map(|p| p.address).collect();
        let gone: Vec<IpAddr> = self
            .peers
            .keys()
            .filter(|a| !keep.contains(a))
            .copied()
            .collect();
        for a in gone {
            if let Some(e) = self.peers.remove(&a) {
                // The session task sends PeerDown first; this is a backstop.
                let mut r = self.rib.peer_down_steps(e.id, false);
                while self.rib.remove_step(&mut r, REMOVAL_STEP).is_some() {}
            }
        }
        let mut import_changed = Vec::new();
        for p in peers {
            match self.peers.get_mut(&p.address) {
                Some(e) => {
                    let filters_changed = e.cfg.import_filter != p.import_filter
                        || e.cfg.export_filter != p.export_filter;
                    let id = e.id;
                    let addr = p.address;
                    let (import, export) = (p.import_filter.clone(), p.export_filter.clone());
                    e.cfg = p;
                    if filters_changed {
                        let (out, refresh) = self.rib.set_peer_filters(id, import, export);
                        if refresh {
                            import_changed.push(addr);
                        }
                        self.emit(out).await;
                    }
                }
                None => {
                    let id = PeerId(self.next_id);
                    self.next_id += 1;
                    self.peers.insert(
                        p.address,
                        PeerEntry {
                            cfg: p.clone(),
                            id,
                            out: None,
                            backlog: VecDeque::new(),
                            coalesce: Coalescer::default(),
                            awaiting_eor: HashSet::new(),
                            stale_until: None,
                            settle_at: None,
                            converged: false,
                            peer_restarting: false,
                        },
                    );
                }
            }
        }
        import_changed
    }

    fn next_deadline(&self) -> Option<Instant> {
        let peer_deadlines = self
            .peers
            .values()
            .flat_map(|e| [e.stale_until, e.settle_at, e.coalesce.deadline()])
            .flatten();
        let conv = (!self.converged).then_some(self.converge_deadline);
        peer_deadlines.chain(conv).min()
    }

    async fn on_timers(&mut self) {
        let now = Instant::now();
        let mut sweeps = Vec::new();
        for (addr, e) in self.peers.iter_mut() {
            if e.coalesce.due(now) {
                let pending = e.coalesce.take();
                push_out(*addr, e, PeerOut::Updates(pending));
            }
            if e.stale_until.is_some_and(|d| d <= now) {
                e.stale_until = None;
                info!(peer = %e.cfg.name, address = %addr, "graceful restart timer expired: removing stale routes");
                sweeps.push(e.id);
            }
            if e.settle_at.is_some_and(|d| d <= now) {
                e.settle_at = None;
                e.converged = true;
            }
        }
        for id in sweeps {
            let r = self.rib.sweep_stale_steps(id);
            self.remove(r).await;
        }
        if !self.converged && self.converge_deadline <= now {
            info!("initial convergence timer expired");
            self.set_converged().await;
        }
        self.check_converged().await;
    }

    async fn check_converged(&mut self) {
        // RFC 4724 §4.1: a restarting speaker defers its End-of-RIB until it
        // has End-of-RIB from every peer, excluding peers that restart too.
        if self.restarting
            && self
                .peers
                .values()
                .all(|e| e.converged || e.peer_restarting)
        {
            self.end_deferral().await;
        }
        if !self.converged && self.peers.values().all(|e| e.converged) {
            info!("initial convergence: End-of-RIB from every peer");
            self.set_converged().await;
        }
    }

    async fn end_deferral(&mut self) {
        self.restarting = false;
        let deferred = std::mem::take(&mut self.deferred_eor);
        if !deferred.is_empty() {
            debug!(
                count = deferred.len(),
                "sending deferred End-of-RIB markers"
            );
            self.emit(RibOutput {
                best_changes: Vec::new(),
                outbound: deferred,
            })
            .await;
        }
    }

    async fn set_converged(&mut self) {
        self.converged = true;
        if self.restarting {
            self.end_deferral().await;
        }
        self.send_event(SpeakerEvent::Converged).await;
    }

    /// Queues an event for the owner without ever waiting: the RIB task
    /// must keep serving API calls even when the owner is slow to drain
    /// (e.g. it is awaiting one of those calls).
    async fn send_event(&mut self, ev: SpeakerEvent) {
        self.outbox.push(ev, &self.events);
    }

    async fn handle(&mut self, m: RibMsg) {
        match m {
            RibMsg::PeerUp {
                peer,
                negotiated,
                local_addr,
                out,
            } => {
                let Some(e) = self.peers.get_mut(&peer) else {
                    return;
                };
                let mut info =
                    PeerInfo::new(peer, negotiated.peer_asn, negotiated.peer_id, local_addr);
                info.families = negotiated.families.clone();
                info.rr_client = e.cfg.route_reflector_client;
                info.max_prefixes = e.cfg.max_prefixes;
                info.import_filter = e.cfg.import_filter.clone();
                info.export_filter = e.cfg.export_filter.clone();
                info.alternate_next_hop = self.shared.local_address_of(!local_addr.is_ipv4());
                info.link_local_next_hop = e.cfg.link_local_next_hop;
                e.out = Some(out);
                e.backlog.clear();
                e.coalesce.clear();
                e.awaiting_eor = negotiated.families.iter().copied().collect();
                if negotiated.peer_graceful_restart.is_none() && !e.converged {
                    e.settle_at = Some(Instant::now() + NON_GR_PEER_SETTLE);
                }
                // A peer restarting too (R bit) is not waited for before we
                // send our End-of-RIB (RFC 4724 §4.1), or neither would send.
                e.peer_restarting = negotiated
                    .peer_graceful_restart
                    .as_ref()
                    .is_some_and(|g| g.restart_state);
                let id = e.id;
                // RFC 4724 §4.2: stale routes survive the new session only for
                // families the peer says it kept forwarding state for (F bit).
                let flush = negotiated.stale_families_to_flush();
                if e.stale_until.is_some() && !flush.is_empty() {
                    let names: Vec<String> = flush.iter().map(ToString::to_string).collect();
                    info!(peer = %e.cfg.name, address = %peer, families = %names.join(","), "peer did not preserve forwarding state: removing its stale routes of these families");
                    if flush.len() == crate::fsm::UNICAST_FAMILIES.len() {
                        e.stale_until = None;
                    }
                    for f in flush {
                        let r = self.rib.end_of_rib_steps(id, f);
                        self.remove(r).await;
                    }
                }
                // What `peer_up` would remove first (a session still up, or
                // stale routes of a changed identity), in steps.
                let r = self.rib.peer_up_steps(id, &info);
                self.remove(r).await;
                match self.rib.peer_up(id, info) {
                    Ok(out) => self.emit(out).await,
                    Err(err) => {
                        warn!(peer = %self.name(peer), address = %peer, "RIB refused peer: {err}")
                    }
                }
                self.check_converged().await;
            }
            RibMsg::PeerDown {
                peer,
                retain_for,
                families,
            } => {
                let Some(e) = self.peers.get_mut(&peer) else {
                    return;
                };
                e.out = None;
                e.backlog.clear();
                e.coalesce.clear();
                e.settle_at = None;
                let id = e.id;
                let retain = retain_for.is_some() && !families.is_empty();
                if let Some(d) = retain_for.filter(|_| retain) {
                    info!(peer = %e.cfg.name, address = %peer, secs = d.as_secs(), "peer restarting gracefully: keeping its routes as stale");
                    e.stale_until = Some(Instant::now() + d);
                } else {
                    e.stale_until = None;
                }
                let r = self.rib.peer_down_steps(id, retain);
                self.remove(r).await;
                // RFC 4724 §4.2: only the families in the peer's capability
                // are kept; the stale routes of the others go now.
                if retain {
                    for f in crate::fsm::UNICAST_FAMILIES {
                        if !families.contains(&f) {
                            let r = self.rib.end_of_rib_steps(id, f);
                            self.remove(r).await;
                        }
                    }
                }
            }
            RibMsg::Updates {
                peer,
                updates,
                credit,
            } => {
                // The peer's RIB id once per batch, not once per UPDATE.
                if let Some(id) = self.peers.get(&peer).map(|e| e.id) {
                    for update in &updates {
                        self.apply_update(peer, id, update).await;
                    }
                }
                // The applied UPDATEs go back inside their vector: the
                // session frees them on its own thread ([`Credit::recycle`]).
                credit.recycle(updates);
            }
            RibMsg::RouteRefresh { peer, family } => {
                let Some(e) = self.peers.get(&peer) else {
                    return;
                };
                let out = self.rib.route_refresh(e.id, family);
                self.emit(out).await;
            }
            RibMsg::Event(ev) => self.send_event(ev).await,
            RibMsg::Originate {
                prefix,
                attributes,
                reply,
            } => {
                let out = self.rib.originate_with(prefix, *attributes);
                let _ = reply.send(Ok(()));
                self.emit(out).await;
            }
            RibMsg::Withdraw { prefix, reply } => {
                let out = self.rib.withdraw_local(prefix);
                let _ = reply.send(Ok(()));
                self.emit(out).await;
            }
            RibMsg::Routes { query, reply } => {
                let _ = reply.send(self.routes(query));
            }
            RibMsg::Covering { addr, reply } => {
                let _ = reply.send(self.covering(addr));
            }
            RibMsg::Counts { reply } => {
                let counts = self
                    .peers
                    .iter()
                    .filter_map(|(a, e)| Some((*a, self.rib.peer_counters(e.id)?)))
                    .collect();
                let _ = reply.send(counts);
            }
            RibMsg::ExpressEvents(tx, ordered) => {
                self.outbox.set_express(tx, ordered, &self.events)
            }
            RibMsg::SetEbgpRequiresPolicy { on } => {
                let out = self.rib.set_ebgp_requires_policy(on);
                self.emit(out).await;
            }
            RibMsg::SetPeers {
                peers,
                import_changed,
            } => {
                let changed = self.set_peers(peers).await;
                let _ = import_changed.send(changed);
                self.check_converged().await;
            }
        }
    }

    /// Applies one UPDATE of `peer`, whose RIB id is `id`.
    async fn apply_update(&mut self, peer: IpAddr, id: PeerId, update: &Update) {
        if tracing::enabled!(target: crate::PROBE_TRACE, tracing::Level::TRACE) {
            let changed = update.announced.iter().chain(&update.withdrawn);
            for p in changed.filter(|p| crate::probe_traced(**p)) {
                tracing::trace!(target: crate::PROBE_TRACE, prefix = %p, inbox = self.inbox,
                    outbox = self.outbox.len(), "rib: UPDATE taken");
            }
        }
        let eor = update.end_of_rib;
        let eor_only = update.attributes.is_none()
            && update.announced.is_empty()
            && update.withdrawn.is_empty();
        let mut out = std::mem::take(&mut self.spare);
        out.best_changes.clear();
        out.outbound.clear();
        let sweep = eor.filter(|_| eor_only && self.rib.peer_counters(id).is_some_and(|c| c.up));
        let applied = match sweep {
            // End-of-RIB alone: its stale sweep (RFC 4724 §4.2), in steps;
            // otherwise the same as `apply_update`.
            Some(f) => {
                let r = self.rib.end_of_rib_steps(id, f);
                self.remove(r).await;
                Ok(())
            }
            None => self.rib.apply_update_into(id, update, &mut out),
        };
        if applied.is_ok() {
            self.emit_from(&mut out).await;
        }
        self.spare = out;
        if applied.is_ok() && eor.is_none() {
            return;
        }
        let Some(e) = self.peers.get_mut(&peer) else {
            return;
        };
        match applied {
            Ok(()) => {}
            Err(RibError::MaxPrefix {
                limit, would_have, ..
            }) => {
                let family = update
                    .announced
                    .first()
                    .map(|p| p.family())
                    .unwrap_or(AddressFamily::IPV4_UNICAST);
                warn!(peer = %e.cfg.name, address = %peer, limit, would_have, "prefix limit exceeded");
                push_out(peer, e, PeerOut::MaxPrefixes { family, limit });
                return;
            }
            Err(err) => {
                debug!(peer = %self.name(peer), address = %peer, "UPDATE not applied: {err}");
                return;
            }
        }
        if let Some(f) = eor
            && let Some(e) = self.peers.get_mut(&peer)
        {
            debug!(peer = %e.cfg.name, address = %peer, family = %f, "End-of-RIB received");
            e.awaiting_eor.remove(&f);
            if e.awaiting_eor.is_empty() {
                e.stale_until = None;
                e.settle_at = None;
                e.converged = true;
            }
            self.check_converged().await;
        }
    }

    /// Runs a bulk removal to its end, a step at a time, handing on each
    /// step's output before the next.
    async fn remove(&mut self, mut r: Removal) {
        while let Some(out) = self.rib.remove_step(&mut r, REMOVAL_STEP) {
            self.emit(out).await;
        }
    }

    /// Delivers a RIB operation's output: UPDATEs to sessions, then best-path
    /// changes to the owner (unless it asked for none,
    /// [`crate::SpeakerConfig::best_path_feed`] off).
    async fn emit(&mut self, mut out: RibOutput) {
        self.emit_from(&mut out).await;
    }

    /// [`RibTask::emit`] draining `out`, which keeps its capacity.
    async fn emit_from(&mut self, out: &mut RibOutput) {
        if !out.outbound.is_empty() {
            let mut per_peer: HashMap<PeerId, Vec<Update>> = HashMap::new();
            for (id, u) in out.outbound.drain(..) {
                if self.restarting
                    && u.end_of_rib.is_some()
                    && u.announced.is_empty()
                    && u.withdrawn.is_empty()
                {
                    self.deferred_eor.push((id, u));
                    continue;
                }
                per_peer.entry(id).or_default().push(u);
            }
            let now = Instant::now();
            for (addr, e) in self.peers.iter_mut() {
                let Some(updates) = per_peer.remove(&e.id) else {
                    continue;
                };
                if e.out.is_none() {
                    continue;
                }
                if coalesce::batch_size(&updates) >= coalesce::DIRECT {
                    // Already packed: flush what waits before it, keep order.
                    if !e.coalesce.is_empty() {
                        let pending = e.coalesce.take();
                        push_out(*addr, e, PeerOut::Updates(pending));
                    }
                    push_out(*addr, e, PeerOut::Updates(updates));
                } else {
                    e.coalesce.add(updates);
                    if e.coalesce.due(now) {
                        let pending = e.coalesce.take();
                        push_out(*addr, e, PeerOut::Updates(pending));
                    }
                }
            }
        }
        if self.shared.best_path_feed != BestPathFeed::Off {
            for c in out.best_changes.drain(..) {
                if crate::probe_traced(c.prefix) {
                    tracing::trace!(target: crate::PROBE_TRACE, prefix = %c.prefix,
                        outbox = self.outbox.len(), channel = self.events.max_capacity() - self.events.capacity(),
                        "outbox: change in");
                }
                self.outbox.push_change(c, &self.events);
            }
        }
    }

    fn drain_backlogs(&mut self) {
        for (addr, e) in self.peers.iter_mut() {
            while let Some(m) = e.backlog.pop_front() {
                let Some(tx) = e.out.as_ref() else {
                    e.backlog.clear();
                    break;
                };
                match tx.try_send(m) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(m)) => {
                        e.backlog.push_front(m);
                        break;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        debug!(peer = %e.cfg.name, address = %addr, "session gone with output pending");
                        e.out = None;
                        e.backlog.clear();
                    }
                }
            }
        }
    }

    /// One lookup per prefix length (at most 33 or 129), not a walk.
    fn covering(&self, addr: IpAddr) -> Vec<(crate::Prefix, Option<IpAddr>)> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (0..=max)
            .rev()
            .filter_map(|len| crate::Prefix::new(addr, len))
            .filter_map(|p| {
                let best = self.rib.explain(p).into_iter().find(|c| c.best)?;
                Some((p, best.peer_address))
            })
            .collect()
    }

    fn routes(&self, q: RouteQuery) -> Vec<RouteInfo> {
        let mut prefixes: Vec<Prefix> = match q {
            RouteQuery::All => self.rib.loc_rib().map(|b| b.prefix).collect(),
            RouteQuery::Prefix(p) => vec![p],
            RouteQuery::Filtered => self.rib.filtered().iter().map(|f| f.prefix).collect(),
        };
        prefixes.sort();
        prefixes.dedup();
        prefixes
            .into_iter()
            .map(|prefix| self.route_info(prefix))
            .filter(|r| !r.candidates.is_empty() || !r.filtered.is_empty())
            .collect()
    }

    fn route_info(&self, prefix: Prefix) -> RouteInfo {
        RouteInfo {
            prefix,
            candidates: self
                .rib
                .explain(prefix)
                .into_iter()
                .map(|c| RouteCandidate {
                    peer: c.peer_address,
                    attributes: c.attributes,
                    best: c.best,
                    ecmp: c.ecmp,
                    stale: c.stale,
                    reason: c.lost_because.map(|r| r.as_str().to_string()),
                })
                .collect(),
            filtered: self
                .rib
                .filtered_for(prefix)
                .into_iter()
                .map(|f| FilteredCandidate {
                    peer: f.peer_address,
                    attributes: f.attributes,
                    reason: f.reason.to_string(),
                })
                .collect(),
        }
    }
}

/// Hands `m` to the peer's session without waiting: queue it behind earlier
/// output when the channel is full; drop the session's channel (it resets)
/// when the backlog grows past [`MAX_BACKLOG`].
fn push_out(addr: IpAddr, e: &mut PeerEntry, m: PeerOut) {
    let Some(tx) = e.out.as_ref() else { return };
    if e.backlog.is_empty() {
        match tx.try_send(m) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(m)) => e.backlog.push_back(m),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                e.out = None;
                return;
            }
        }
    } else {
        e.backlog.push_back(m);
    }
    if e.backlog.len() > MAX_BACKLOG {
        warn!(peer = %e.cfg.name, address = %addr, "peer is not taking UPDATEs ({MAX_BACKLOG} batches queued): resetting its session");
        e.out = None;
        e.backlog.clear();
    }
}
