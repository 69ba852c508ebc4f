//! The per-peer session task: drives one [`Fsm`] over real sockets.
//!
//! It turns socket readiness, timer deadlines, accepted connections (from the
//! listener) and outbound UPDATEs (from the RIB task) into FSM events, and
//! carries out the FSM's actions. Received UPDATEs are queued to the RIB task
//! through a bounded channel; while that queue is long the task stops reading
//! the socket, so a slow RIB pushes back on the peer through TCP rather than
//! growing memory. A second, peer-initiated connection that arrives while the
//! first is in OpenSent/OpenConfirm is run as a collision candidate until one
//! of them receives an OPEN, then RFC 4271 §6.8 decides which survives.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::conn::{Conn, IoDone, OUT_HIGH_WATER};
use super::msg::{BATCH_PREFIXES, BATCH_UPDATES, InFlight, PeerCmd, PeerOut, RibMsg};
use super::socket::{self, ConnectOptions};
use super::{Shared, fsm_config, jitter};
use crate::fsm::{Action, Event, Fsm, Negotiated, SessionState, Timer, codes, notify};
use crate::speaker::{MessageCounters, PeerConfig, PeerStatus, Stamped};
use crate::wire::{CodecContext, Message, MessageType, Notification, RouteRefresh, Update};

/// Stop reading the socket while this many messages wait for the RIB task.
const MAX_PENDING_TO_RIB: usize = 256;
/// How long a collision candidate may wait for the peer's OPEN.
const CANDIDATE_OPEN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long closing a connection may spend flushing (e.g. a NOTIFICATION).
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

/// What woke the session loop.
enum Wake {
    Cmd(Option<PeerCmd>),
    Connected(io::Result<TcpStream>),
    Read(io::Result<usize>),
    Wrote(io::Result<()>),
    CandRead(io::Result<usize>),
    CandWrote(io::Result<()>),
    Out(Option<PeerOut>),
    Timer,
    RibGone,
    Nothing,
}

mod collision;
mod lifecycle;
mod loglimit;

use loglimit::{Admit, LogBudget};

/// An info/warn line about this task's peer: its name and address, under the
/// peer's log budget ([`loglimit`]).
macro_rules! peer_log {
    ($task:expr, $level:ident, $($rest:tt)*) => {
        if let Some(suppressed) = $task.admit_log() {
            tracing::$level!(
                peer = %$task.peer.name,
                address = %$task.peer.address,
                suppressed = suppressed.filter(|n| *n > 0),
                $($rest)*
            );
        }
    };
}

/// A debug line about this task's peer (no budget: debug is off by default).
macro_rules! peer_debug {
    ($task:expr, $($rest:tt)*) => {
        tracing::debug!(peer = %$task.peer.name, address = %$task.peer.address, $($rest)*)
    };
}
pub(crate) use peer_log;

type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

mod accept;

pub(crate) struct PeerTask {
    pub(crate) peer: PeerConfig,
    shared: Arc<Shared>,
    fsm: Fsm,
    conn: Option<Conn>,
    /// Collision candidate: a peer-initiated connection, its FSM and deadline.
    cand: Option<(Fsm, Conn, Instant)>,
    connecting: Option<Connecting>,
    timers: [Option<Instant>; 4],
    rib: mpsc::Sender<RibMsg>,
    to_rib: VecDeque<RibMsg>,
    /// Prefixes of our UPDATEs the RIB task has not applied yet.
    in_flight: Arc<InFlight>,
    out_rx: Option<mpsc::Receiver<PeerOut>>,
    status: Arc<Mutex<PeerStatus>>,
    cmd_rx: mpsc::Receiver<PeerCmd>,
    /// Negotiated parameters of the current Established session.
    session: Option<Negotiated>,
    reason: String,
    /// After a max-prefix Cease: stay Idle (no connects, no accepts) until then.
    hold_down: Option<Instant>,
    /// Why the connection failed (read/write error, closed by the peer), for
    /// the FSM's "connection lost" that follows.
    lost: Option<String>,
    log_budget: LogBudget,
    /// The FSM's actions for the event being fed, kept between events so
    /// an UPDATE allocates none ([`Fsm::handle_into`]).
    actions: Vec<Action>,
    /// While the messages of one read are handled: when that read
    /// completed. Timers the FSM (re)starts meanwhile — the hold timer, on
    /// every KEEPALIVE and UPDATE (RFC 4271 §8.2.2) — count from it, so a
    /// read of a thousand UPDATEs reads the clock once, not per message.
    read_at: Option<Instant>,
}

fn timer_index(t: Timer) -> usize {
    match t {
        Timer::ConnectRetry => 0,
        Timer::Hold => 1,
        Timer::Keepalive => 2,
        Timer::IdleHold => 3,
    }
}

const TIMER_EVENTS: [(Timer, Event); 4] = [
    (Timer::ConnectRetry, Event::ConnectRetryTimerExpires),
    (Timer::Hold, Event::HoldTimerExpires),
    (Timer::Keepalive, Event::KeepaliveTimerExpires),
    (Timer::IdleHold, Event::IdleHoldTimerExpires),
];

/// A fresh status record for a peer that has not connected yet.
pub(crate) fn initial_status(peer: &PeerConfig, local_asn: u32) -> PeerStatus {
    PeerStatus {
        route_reflector_client: peer.route_reflector_client,
        ..PeerStatus::new(peer.address, peer.name.clone(), peer.asn, local_asn)
    }
}

/// The status of a peer whose session is restarted for a new configuration:
/// counters, times and errors carry on (metrics must not go backwards), the
/// configured fields are the new ones.
pub(crate) fn carried_status(previous: &PeerStatus, peer: &PeerConfig) -> PeerStatus {
    let fresh = initial_status(peer, previous.local_asn);
    PeerStatus {
        name: fresh.name,
        remote_asn: fresh.remote_asn,
        route_reflector_client: fresh.route_reflector_client,
        ..previous.clone()
    }
}

fn count(c: &mut MessageCounters, t: MessageType) {
    match t {
        MessageType::Open => c.open += 1,
        MessageType::Update => c.update += 1,
        MessageType::Notification => c.notification += 1,
        MessageType::Keepalive => c.keepalive += 1,
        MessageType::RouteRefresh => c.route_refresh += 1,
    }
}

async fn io_opt(c: &mut Option<Conn>, read: bool, write: bool) -> IoDone {
    match c {
        Some(c) => c.io(read, write).await,
        None => std::future::pending().await,
    }
}

async fn cand_io(c: &mut Option<(Fsm, Conn, Instant)>) -> IoDone {
    match c {
        Some((_, c, _)) => c.io(true, true).await,
        None => std::future::pending().await,
    }
}

async fn recv_opt(rx: &mut Option<mpsc::Receiver<PeerOut>>) -> Option<PeerOut> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn connect_opt(c: &mut Option<Connecting>) -> io::Result<TcpStream> {
    match c {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Codec settings for an established session (RFC 6793, RFC 8654, RFC 4760).
fn codec_context(shared: &Shared, n: &Negotiated) -> CodecContext {
    let ibgp = n.peer_asn == shared.local_asn;
    CodecContext {
        four_octet_as: n.four_octet_as,
        extended_message: n.extended_message,
        ibgp,
        families: n.families.clone(),
        local_asn: shared.local_asn,
        peer_asn: n.peer_asn,
        enforce_first_as: !ibgp,
    }
}

impl PeerTask {
    pub(crate) fn new(
        peer: PeerConfig,
        shared: Arc<Shared>,
        rib: mpsc::Sender<RibMsg>,
        status: Arc<Mutex<PeerStatus>>,
        cmd_rx: mpsc::Receiver<PeerCmd>,
    ) -> Self {
        let fsm = Fsm::new(fsm_config(&shared, &peer, true));
        PeerTask {
            peer,
            shared,
            fsm,
            conn: None,
            cand: None,
            connecting: None,
            timers: [None; 4],
            rib,
            to_rib: VecDeque::new(),
            in_flight: Arc::default(),
            out_rx: None,
            status,
            cmd_rx,
            session: None,
            reason: String::from("configured"),
            hold_down: None,
            lost: None,
            log_budget: LogBudget::new(),
            actions: Vec::new(),
            read_at: None,
        }
    }

    fn addr(&self) -> IpAddr {
        self.peer.address
    }

    /// Whether the next info/warn line about this peer may be logged, and how
    /// many were not logged before it.
    fn admit_log(&mut self) -> Option<Option<u64>> {
        match self.log_budget.admit(Instant::now()) {
            Admit::Log { suppressed } => Some(Some(suppressed)),
            Admit::Exhausted => {
                tracing::warn!(
                    peer = %self.peer.name,
                    address = %self.peer.address,
                    "this peer logs more than {} lines a minute: further lines are counted, not logged, until the minute is over",
                    loglimit::LINES_PER_WINDOW
                );
                None
            }
            Admit::Drop => None,
        }
    }

    /// The RIB task is behind on our UPDATEs: too many messages queued
    /// here, or too many prefixes read and not applied yet. We stop reading.
    fn rib_behind(&self) -> bool {
        self.to_rib.len() >= MAX_PENDING_TO_RIB || self.in_flight.full()
    }

    /// Queues `u` for the RIB task: appended to the batch of UPDATEs at the
    /// back of the queue while that batch is small and unsent, so what one
    /// read decoded crosses in a few messages (order kept: a batch only
    /// grows while it is the last thing queued).
    fn deliver_update(&mut self, u: Update) {
        if let Some(RibMsg::Updates {
            updates, credit, ..
        }) = self.to_rib.back_mut()
            && updates.len() < BATCH_UPDATES
            && credit.prefixes() < BATCH_PREFIXES
        {
            credit.add(&u);
            updates.push(u);
            return;
        }
        let credit = self.in_flight.take(&u);
        let mut updates = self.in_flight.batch();
        updates.push(u);
        self.to_rib.push_back(RibMsg::Updates {
            peer: self.addr(),
            updates,
            credit,
        });
    }

    fn next_deadline(&self) -> Option<Instant> {
        let cand = self.cand.as_ref().map(|c| c.2);
        self.timers.iter().flatten().copied().chain(cand).min()
    }

    pub(crate) async fn run(mut self) {
        self.feed(Event::ManualStart);
        loop {
            let deadline = self.next_deadline();
            let rib_behind = self.rib_behind();
            let reading = !rib_behind
                && self
                    .conn
                    .as_ref()
                    .is_some_and(|c| c.pending_out() < OUT_HIGH_WATER);
            let writing = self.conn.as_ref().is_some_and(|c| c.pending_out() > 0);
            let taking_out = self
                .conn
                .as_ref()
                .is_some_and(|c| c.pending_out() < OUT_HIGH_WATER);
            let wake = tokio::select! {
                cmd = self.cmd_rx.recv() => Wake::Cmd(cmd),
                res = connect_opt(&mut self.connecting) => Wake::Connected(res),
                io = io_opt(&mut self.conn, reading, writing), if reading || writing => match io {
                    IoDone::Read(r) => Wake::Read(r),
                    IoDone::Wrote(r) => Wake::Wrote(r),
                },
                io = cand_io(&mut self.cand) => match io {
                    IoDone::Read(r) => Wake::CandRead(r),
                    IoDone::Wrote(r) => Wake::CandWrote(r),
                },
                () = self.in_flight.drained(), if rib_behind => Wake::Nothing,
                permit = self.rib.reserve(), if !self.to_rib.is_empty() => match permit {
                    Ok(p) => {
                        if let Some(m) = self.to_rib.pop_front() {
                            p.send(m);
                        }
                        // The rest of what one read decoded goes too while the
                        // channel has room: one turn of this loop (and of its
                        // timers) per read, not per UPDATE.
                        while !self.to_rib.is_empty() {
                            let Ok(p) = self.rib.try_reserve() else { break };
                            if let Some(m) = self.to_rib.pop_front() {
                                p.send(m);
                            }
                        }
                        Wake::Nothing
                    }
                    Err(_) => Wake::RibGone,
                },
                out = recv_opt(&mut self.out_rx), if taking_out => Wake::Out(out),
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => Wake::Timer,
            };
            match wake {
                Wake::Cmd(Some(PeerCmd::Stop {
                    notification,
                    keep_if_graceful,
                    reply,
                })) => {
                    // RFC 4724: a peer that negotiated graceful restart keeps
                    // our routes if we go without a NOTIFICATION.
                    let gr = self.session.as_ref().is_some_and(|n| {
                        n.local_graceful_restart && n.peer_graceful_restart.is_some()
                    });
                    self.stop(notification.filter(|_| !(keep_if_graceful && gr)))
                        .await;
                    let _ = reply.send(());
                    return;
                }
                Wake::Cmd(Some(cmd)) => self.on_cmd(cmd),
                Wake::Cmd(None) | Wake::RibGone => {
                    // The speaker is gone: close without NOTIFICATION.
                    self.stop(None).await;
                    return;
                }
                Wake::Connected(res) => {
                    self.connecting = None;
                    self.on_connected(res);
                }
                Wake::Read(Ok(0)) => self.conn_failed("connection closed by peer".into()),
                Wake::Read(Ok(_)) => self.process_main(),
                Wake::Read(Err(e)) => self.conn_failed(format!("read: {e}")),
                Wake::Wrote(Err(e)) => self.conn_failed(format!("write: {e}")),
                Wake::Wrote(Ok(())) | Wake::Nothing => {}
                Wake::CandRead(Ok(n)) if n > 0 => self.process_cand(),
                Wake::CandRead(_) | Wake::CandWrote(Err(_)) => self.drop_cand(),
                Wake::CandWrote(Ok(())) => {}
                Wake::Out(Some(o)) => self.on_out(o),
                Wake::Out(None) => self.on_out_closed(),
                Wake::Timer => self.fire_timers(),
            }
        }
    }

    // ----- inputs -------------------------------------------------------

    fn on_cmd(&mut self, cmd: PeerCmd) {
        match cmd {
            PeerCmd::Accepted(stream) => self.on_accepted(stream),
            PeerCmd::RouteRefresh { reply } => {
                let res = self.send_route_refresh();
                let _ = reply.send(res);
            }
            PeerCmd::BfdDown(diag) => self.on_bfd_down(diag),
            PeerCmd::Stop { .. } => {} // handled in run()
        }
    }

    fn send_route_refresh(&mut self) -> Result<(), crate::BgpError> {
        let peer = self.addr();
        let (Some(n), Some(conn)) = (self.session.as_ref(), self.conn.as_mut()) else {
            return Err(crate::BgpError::PeerState {
                peer,
                reason: "session is not Established".into(),
            });
        };
        if !n.route_refresh {
            return Err(crate::BgpError::PeerState {
                peer,
                reason: "peer did not advertise the route refresh capability".into(),
            });
        }
        let mut sent = 0;
        for family in n.families.clone() {
            let msg = Message::RouteRefresh(RouteRefresh { family, subtype: 0 });
            if conn.queue(&msg).is_ok() {
                sent += 1;
            }
        }
        if let Ok(mut st) = self.status.lock() {
            st.messages_sent.route_refresh += sent;
        }
        Ok(())
    }

    fn on_connected(&mut self, res: io::Result<TcpStream>) {
        match res {
            Ok(stream) => {
                if self.conn.is_some()
                    || !matches!(
                        self.fsm.state(),
                        SessionState::Connect | SessionState::Active
                    )
                {
                    return; // an accepted connection won meanwhile
                }
                match Conn::new(stream, true) {
                    Ok(c) => {
                        peer_debug!(self, local = %c.local, "connected");
                        self.conn = Some(c);
                        self.feed(Event::TcpCrAcked);
                    }
                    Err(e) => self.connect_failed(format!("connect: {e}")),
                }
            }
            Err(e) => self.connect_failed(format!("connect to {}: {e}", self.remote())),
        }
    }

    fn remote(&self) -> SocketAddr {
        SocketAddr::new(self.peer.address, self.peer.port)
    }

    fn connect_failed(&mut self, why: String) {
        peer_debug!(self, "{why}");
        self.set_error(why.clone());
        self.reason = why;
        if self.conn.is_none() {
            self.feed(Event::TcpConnectionFails);
        }
    }

    fn conn_failed(&mut self, why: String) {
        // The state change this causes is logged with `why` as its reason.
        peer_debug!(self, state = %self.fsm.state(), "{why}");
        self.lost = Some(why.clone());
        self.reason = why;
        if let Some(c) = self.conn.take() {
            c.abort();
        }
        self.feed(Event::TcpConnectionFails);
        self.lost = None;
    }

    /// Decodes and handles every complete message on the main connection.
    /// The status's message counts are updated once, after the loop: one
    /// lock per read, not per message.
    fn process_main(&mut self) {
        let mut received = MessageCounters::default();
        self.read_at = Some(Instant::now());
        while let Some(res) = self.conn.as_mut().and_then(|c| c.next_message()) {
            match res {
                Ok(msg) => {
                    count(&mut received, msg.message_type());
                    if let Message::Open(o) = &msg
                        && self.cand.is_some()
                        && !self.collide_on_main_open(o.bgp_identifier)
                    {
                        // The main connection lost; the candidate took over.
                        continue;
                    }
                    let ev = match msg {
                        Message::Open(o) => Event::BGPOpen(o),
                        Message::Update(u) => {
                            for m in &u.malformed {
                                // RFC 7606: handled without a reset, but worth a log line.
                                peer_log!(
                                    self,
                                    warn,
                                    attribute = m.type_code,
                                    action = %m.action,
                                    "malformed attribute in UPDATE: {}",
                                    m.reason
                                );
                            }
                            Event::UpdateMsg(u)
                        }
                        Message::Notification(n) => {
                            let text = crate::fsm::notification_text(&n);
                            self.reason = format!("received NOTIFICATION {text}");
                            if let Ok(mut st) = self.status.lock() {
                                st.notification_received = Some(Stamped::now(text));
                            }
                            Event::NotifMsg(n)
                        }
                        Message::Keepalive => Event::KeepAliveMsg,
                        Message::RouteRefresh(r) => Event::RouteRefreshMsg(r),
                    };
                    self.feed(ev);
                }
                Err(e) if e.is_ignorable() => peer_debug!(self, "ignored message: {e}"),
                Err(e) => {
                    peer_log!(self, warn, "bad message: {e}");
                    self.reason = e.to_string();
                    let n = e.notification.clone();
                    let ev = match n.code {
                        codes::MESSAGE_HEADER_ERROR => Event::BGPHeaderErr(n),
                        codes::OPEN_MESSAGE_ERROR => Event::BGPOpenMsgErr(n),
                        _ => Event::UpdateMsgErr(n),
                    };
                    self.feed(ev);
                }
            }
        }
        self.read_at = None;
        if received != MessageCounters::default()
            && let Ok(mut st) = self.status.lock()
        {
            st.messages_received.add(&received);
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        if self.cand.as_ref().is_some_and(|c| c.2 <= now) {
            peer_debug!(self, "collision candidate sent no OPEN in time");
            self.drop_cand();
        }
        for (t, ev) in TIMER_EVENTS {
            let i = timer_index(t);
            if self.timers[i].is_some_and(|d| d <= now) {
                self.timers[i] = None;
                if t == Timer::Hold && self.rib_behind() {
                    // We stopped reading (the RIB is behind), so the peer's
                    // KEEPALIVEs sit unread behind its UPDATEs: not its fault.
                    let hold = self
                        .fsm
                        .negotiated()
                        .map_or(crate::fsm::OPEN_HOLD_TIME, |n| {
                            Duration::from_secs(u64::from(n.hold_time))
                        });
                    peer_debug!(self, "hold timer deferred: reading paused for the RIB");
                    self.timers[i] = Some(now + hold);
                    continue;
                }
                self.feed(ev);
            }
        }
    }

    fn on_out(&mut self, out: PeerOut) {
        match out {
            PeerOut::Updates(updates) => {
                let Some(conn) = self.conn.as_mut() else {
                    return;
                };
                let mut sent = 0u64;
                let mut failed = Vec::new();
                for u in updates {
                    match conn.queue_update(&u) {
                        Ok(n) => sent += n as u64,
                        Err(e) => failed.push(e),
                    }
                }
                for e in failed {
                    peer_log!(self, warn, "cannot encode UPDATE: {e}");
                }
                if let Ok(mut st) = self.status.lock() {
                    st.messages_sent.update += sent;
                }
            }
            PeerOut::MaxPrefixes { family, limit } => {
                // RFC 4486 §4: data = AFI (2), SAFI (1), upper bound (4).
                let mut data = family.afi.code().to_be_bytes().to_vec();
                data.push(family.safi.code());
                data.extend_from_slice(&limit.to_be_bytes());
                peer_log!(self, warn, limit, "maximum number of prefixes reached");
                self.reason = format!("maximum number of prefixes ({limit}) reached");
                self.feed(Event::AutomaticStop(Some(notify(
                    codes::CEASE,
                    codes::CEASE_MAX_PREFIXES,
                    data,
                ))));
                // Idle for max_prefixes_restart, refusing its connections too,
                // instead of the usual quick back-off.
                let until = Instant::now() + self.peer.max_prefixes_restart;
                self.timers[timer_index(Timer::IdleHold)] = Some(until);
                self.hold_down = Some(until);
            }
        }
    }

    /// The RIB task dropped this session's output channel while it is up:
    /// it could not deliver our UPDATEs (or is gone). Reset the session.
    fn on_out_closed(&mut self) {
        self.out_rx = None;
        if self.fsm.state() == SessionState::Established {
            peer_log!(
                self,
                warn,
                "cannot keep up with outbound UPDATEs: resetting the session"
            );
            self.reason = "outbound UPDATE backlog overflow".into();
            let n = notify(codes::CEASE, codes::CEASE_OUT_OF_RESOURCES, Vec::new());
            self.feed(Event::AutomaticStop(Some(n)));
        }
    }

    async fn stop(&mut self, notification: Option<Notification>) {
        self.drop_cand();
        self.connecting = None;
        match notification {
            Some(n) => {
                self.reason = format!("stopped: {}", crate::fsm::notification_text(&n));
                self.feed(Event::AutomaticStop(Some(n)));
            }
            None => {
                // Graceful: close TCP without NOTIFICATION (RFC 4724 restart).
                if let Some(c) = self.conn.take() {
                    c.abort();
                }
                if self.session.take().is_some() {
                    self.to_rib.push_back(RibMsg::PeerDown {
                        peer: self.addr(),
                        retain_for: None,
                        families: Vec::new(),
                    });
                }
            }
        }
        // Deliver what the RIB must still learn (PeerDown), best effort.
        while let Some(m) = self.to_rib.pop_front() {
            if self.rib.send(m).await.is_err() {
                break;
            }
        }
    }

    // ----- the FSM and its actions ---------------------------------------

    fn feed(&mut self, ev: Event) {
        let default_reason = match &ev {
            Event::ManualStart => Some("started"),
            Event::AutomaticStart | Event::IdleHoldTimerExpires => Some("automatic restart"),
            Event::ConnectRetryTimerExpires => Some("connect retry timer expired"),
            Event::TcpCrAcked => Some("connected to peer"),
            Event::TcpConnectionConfirmed => Some("accepted connection from peer"),
            Event::BGPOpen(_) => Some("OPEN received"),
            Event::KeepAliveMsg => Some("OPEN exchanged"),
            Event::HoldTimerExpires => Some("hold timer expired"),
            _ => None,
        };
        if let Some(r) = default_reason {
            self.reason = r.to_string();
        }
        let before = self.fsm.state();
        // Taken, not borrowed: `exec` may feed again (then that call
        // starts from an empty buffer of its own).
        let mut actions = std::mem::take(&mut self.actions);
        self.fsm.handle_into(ev, &mut actions);
        let after = self.fsm.state();
        // Report Established before the RIB hears of the session (PeerUp),
        // so the owner sees it before that peer's routes and Converged.
        if before != after && after == SessionState::Established {
            self.note_state(before, after);
        }
        for a in actions.drain(..) {
            self.exec(a);
        }
        self.actions = actions;
        if after == SessionState::OpenConfirm
            && let (Some(n), Some(c)) = (self.fsm.negotiated(), self.conn.as_mut())
        {
            c.ctx = codec_context(&self.shared, n);
        }
        if before != after && after != SessionState::Established {
            self.note_state(before, after);
        }
    }

    fn set_error(&self, e: String) {
        if let Ok(mut st) = self.status.lock() {
            st.last_error = Some(e);
            st.last_error_at = Some(SystemTime::now());
        }
    }

    fn count_sent(&self, t: MessageType) {
        if let Ok(mut st) = self.status.lock() {
            count(&mut st.messages_sent, t);
        }
    }

    fn send(&mut self, msg: Message) {
        let t = msg.message_type();
        if let Some(c) = self.conn.as_mut() {
            match c.queue(&msg) {
                Ok(()) => self.count_sent(t),
                Err(e) => peer_log!(self, warn, "cannot encode {}: {e}", t.name()),
            }
        }
    }

    fn exec(&mut self, a: Action) {
        match a {
            Action::Connect => {
                if self.connecting.is_none() && self.conn.is_none() {
                    let opts = ConnectOptions {
                        remote: self.remote(),
                        local: self.source_address(),
                        ttl: self.session_ttl(),
                        password: self.peer.password.clone(),
                        ttl_security: self.peer.ttl_security,
                    };
                    let limit = self
                        .shared
                        .connect_retry
                        .clamp(Duration::from_secs(1), Duration::from_secs(30));
                    self.connecting = Some(Box::pin(async move {
                        match tokio::time::timeout(limit, socket::connect(&opts)).await {
                            Ok(r) => r,
                            Err(_) => {
                                Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
                            }
                        }
                    }));
                }
            }
            Action::SendOpen(o) => self.send(Message::Open(o)),
            Action::SendKeepalive => self.send(Message::Keepalive),
            Action::SendNotification(n) => {
                let text = crate::fsm::notification_text(&n);
                self.reason = format!("sent NOTIFICATION {text}");
                if let Ok(mut st) = self.status.lock() {
                    st.notification_sent = Some(Stamped::now(text));
                }
                self.send(Message::Notification(n));
            }
            Action::CloseConnection => {
                self.connecting = None;
                if let Some(c) = self.conn.take() {
                    tokio::spawn(c.close(CLOSE_FLUSH));
                }
            }
            Action::StartTimer(t, d) => {
                let d = match t {
                    Timer::ConnectRetry | Timer::IdleHold => jitter(d),
                    _ => d,
                };
                let now = self.read_at.unwrap_or_else(Instant::now);
                self.timers[timer_index(t)] = Some(now + d);
            }
            Action::StopTimer(t) => self.timers[timer_index(t)] = None,
            Action::SessionEstablished(n) => self.on_established(n),
            Action::SessionDown {
                reason,
                was_established,
            } => self.on_down(reason, was_established),
            Action::DeliverUpdate(u) => self.deliver_update(u),
            Action::DeliverRouteRefresh(r) => self.to_rib.push_back(RibMsg::RouteRefresh {
                peer: self.addr(),
                family: r.family,
            }),
        }
    }
}
