//! The one BFD socket task of a speaker: moves bytes and timers for every
//! BFD session (RFC 5881 single hop), like the BGP session tasks do for the
//! FSM.
//!
//! Data flow: the session runtime adds a session when it starts a peer with
//! `bfd` and removes it when the peer stops. Datagrams on UDP 3784 are
//! checked for TTL 255 (GTSM, RFC 5881 §5), decoded ([`ControlPacket`]),
//! demultiplexed by Your Discriminator or, while it is zero, by source
//! address (RFC 5880 §6.8.6), and fed to that session's [`Session`]; its
//! actions send from the session's own socket (source port 49152–65535,
//! TTL 255), arm timers, and update the peer's status. When a session
//! leaves Up for Down for any reason but the peer's AdminDown (RFC 5882
//! §3.2), the peer's BGP task gets [`PeerCmd::BfdDown`] and resets the
//! session at once.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::io::Interest;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::packet::{BfdState, ControlPacket};
use super::session::{Action, Event, Session, SessionConfig};
use super::socket;
use crate::BgpError;
use crate::session::msg::PeerCmd;
use crate::speaker::{BfdConfig, BfdStatus, PeerStatus};

/// A session to add.
pub(crate) struct NewSession {
    pub(crate) peer: IpAddr,
    /// The peer's configured name, for the log.
    pub(crate) name: String,
    pub(crate) local: Option<IpAddr>,
    pub(crate) cfg: BfdConfig,
    pub(crate) status: Arc<Mutex<PeerStatus>>,
    pub(crate) notify: mpsc::Sender<PeerCmd>,
}

enum Cmd {
    Add(NewSession, oneshot::Sender<Result<(), BgpError>>),
    /// Announce AdminDown (RFC 5880 §6.8.16) and forget the session.
    Remove(IpAddr, oneshot::Sender<()>),
}

/// Handle on the task; dropping it aborts the task.
pub(crate) struct BfdTask {
    cmd: mpsc::Sender<Cmd>,
    task: JoinHandle<()>,
}

impl Drop for BfdTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BfdTask {
    /// Starts the task; `port` is the receive port (3784 outside tests).
    pub(crate) fn start(port: u16) -> BfdTask {
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(run(port, rx));
        BfdTask { cmd: tx, task }
    }

    /// Starts a session; fails when the sockets cannot be bound.
    pub(crate) async fn add(&self, s: NewSession) -> Result<(), BgpError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::Add(s, tx))
            .await
            .map_err(|_| BgpError::Shutdown)?;
        rx.await.map_err(|_| BgpError::Shutdown)?
    }

    /// Stops `peer`'s session (the peer sees AdminDown, not a failure).
    pub(crate) async fn remove(&self, peer: IpAddr) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Cmd::Remove(peer, tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

struct Entry {
    peer: IpAddr,
    name: String,
    session: Session,
    sock: UdpSocket,
    tx_at: Option<Instant>,
    detect_at: Option<Instant>,
    status: Arc<Mutex<PeerStatus>>,
    notify: mpsc::Sender<PeerCmd>,
}

struct Task {
    port: u16,
    sessions: HashMap<u32, Entry>,
    rx4: Option<tokio::net::UdpSocket>,
    rx6: Option<tokio::net::UdpSocket>,
    next_discr: u32,
    seed: u64,
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

async fn recv_opt(
    s: &Option<tokio::net::UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr, Option<u8>)> {
    match s {
        Some(s) => {
            s.async_io(Interest::READABLE, || socket::recv_with_ttl(s, buf))
                .await
        }
        None => std::future::pending().await,
    }
}

type Datagram = std::io::Result<(usize, SocketAddr, Option<u8>)>;

enum Wake {
    Cmd(Option<Cmd>),
    V4(Datagram),
    V6(Datagram),
    Timer,
}

async fn run(port: u16, mut cmd_rx: mpsc::Receiver<Cmd>) {
    let seed = random_u64();
    let mut t = Task {
        port,
        sessions: HashMap::new(),
        rx4: None,
        rx6: None,
        next_discr: (seed as u32).max(1),
        seed,
    };
    let mut buf4 = [0u8; 128];
    let mut buf6 = [0u8; 128];
    loop {
        let deadline = t.next_deadline();
        let wake = tokio::select! {
            cmd = cmd_rx.recv() => Wake::Cmd(cmd),
            r = recv_opt(&t.rx4, &mut buf4) => Wake::V4(r),
            r = recv_opt(&t.rx6, &mut buf6) => Wake::V6(r),
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => Wake::Timer,
        };
        match wake {
            Wake::Cmd(cmd) => match cmd {
                Some(Cmd::Add(s, reply)) => {
                    let _ = reply.send(t.add(s));
                }
                Some(Cmd::Remove(peer, reply)) => {
                    t.remove(peer);
                    let _ = reply.send(());
                }
                None => {
                    for peer in t.sessions.values().map(|e| e.peer).collect::<Vec<_>>() {
                        t.remove(peer);
                    }
                    return;
                }
            },
            Wake::V4(r) => t.on_datagram(r, &buf4),
            Wake::V6(r) => t.on_datagram(r, &buf6),
            Wake::Timer => t.fire(),
        }
    }
}

impl Task {
    fn next_deadline(&self) -> Option<Instant> {
        self.sessions
            .values()
            .flat_map(|e| [e.tx_at, e.detect_at])
            .flatten()
            .min()
    }

    fn add(&mut self, s: NewSession) -> Result<(), BgpError> {
        let peer = s.peer.to_canonical();
        if self.sessions.values().any(|e| e.peer == peer) {
            return Err(BgpError::Config(format!(
                "BFD session to {peer} exists twice"
            )));
        }
        let v6 = peer.is_ipv6();
        let rx = if v6 { &mut self.rx6 } else { &mut self.rx4 };
        if rx.is_none() {
            let sock = socket::bind_receiver(v6, self.port)
                .and_then(tokio::net::UdpSocket::from_std)
                .map_err(|e| {
                    BgpError::io(
                        format!(
                            "BFD: cannot receive on UDP port {} ({})",
                            self.port,
                            if v6 { "IPv6" } else { "IPv4" }
                        ),
                        e,
                    )
                })?;
            *rx = Some(sock);
        }
        self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let first_port = *socket::SOURCE_PORTS.start() + (self.seed >> 49) as u16 % 16384;
        let sock = socket::bind_sender(peer, s.local, first_port)
            .map_err(|e| BgpError::io(format!("BFD: transmit socket for peer {peer}"), e))?;
        let discr = self.allocate_discriminator();
        let us = u32::try_from(s.cfg.interval.as_micros())
            .unwrap_or(u32::MAX)
            .max(1);
        let session = Session::new(SessionConfig {
            local_discriminator: discr,
            desired_min_tx_us: us,
            required_min_rx_us: us,
            detect_mult: s.cfg.multiplier.max(1),
            jitter_seed: self.seed,
        });
        let local = sock
            .local_addr()
            .map_or_else(|_| "unknown".to_string(), |a| a.to_string());
        info!(peer = %s.name, address = %peer, %local, discriminator = discr, interval_ms = s.cfg.interval.as_millis(), multiplier = s.cfg.multiplier, "BFD session configured");
        let mut e = Entry {
            peer,
            name: s.name,
            session,
            sock,
            tx_at: None,
            detect_at: None,
            status: s.status,
            notify: s.notify,
        };
        if let Ok(mut st) = e.status.lock() {
            st.bfd = Some(BfdStatus {
                state: BfdState::Down,
                remote_state: BfdState::Down,
                diagnostic: super::Diagnostic::None,
                since: SystemTime::now(),
                transitions: 0,
                local_discriminator: discr,
                remote_discriminator: 0,
                detection_time: None,
                error: None,
            });
        }
        let actions = e.session.start();
        e.exec(actions);
        self.sessions.insert(discr, e);
        Ok(())
    }

    fn allocate_discriminator(&mut self) -> u32 {
        loop {
            let d = self.next_discr;
            self.next_discr = self.next_discr.wrapping_add(1).max(1);
            if d != 0 && !self.sessions.contains_key(&d) {
                return d;
            }
        }
    }

    fn remove(&mut self, peer: IpAddr) {
        let peer = peer.to_canonical();
        let Some(d) = self
            .sessions
            .iter()
            .find_map(|(d, e)| (e.peer == peer).then_some(*d))
        else {
            return;
        };
        if let Some(mut e) = self.sessions.remove(&d) {
            let actions = e.session.handle(Event::AdminDown);
            e.exec(actions);
            if let Ok(mut st) = e.status.lock() {
                st.bfd = None;
            }
            debug!(peer = %e.name, address = %peer, "BFD session removed");
        }
    }

    fn on_datagram(&mut self, r: Datagram, buf: &[u8]) {
        let (n, from, ttl) = match r {
            Ok(x) => x,
            Err(e) => {
                warn!("BFD receive: {e}");
                return;
            }
        };
        let src = from.ip().to_canonical();
        if ttl != Some(socket::TTL) {
            // RFC 5881 §5: without authentication, anything but 255 is discarded.
            debug!(%from, ?ttl, "BFD packet discarded: TTL is not 255");
            return;
        }
        let p = match ControlPacket::decode(&buf[..n]) {
            Ok(p) => p,
            Err(e) => {
                debug!(%from, "BFD packet discarded: {e}");
                return;
            }
        };
        // RFC 5880 §6.8.6: by Your Discriminator, else (zero) by source address.
        let key = if p.your_discriminator != 0 {
            Some(p.your_discriminator).filter(|d| self.sessions.contains_key(d))
        } else {
            self.sessions
                .iter()
                .find_map(|(d, e)| (e.peer == src).then_some(*d))
        };
        let Some(e) = key.and_then(|d| self.sessions.get_mut(&d)) else {
            debug!(%from, your = p.your_discriminator, "BFD packet for no session");
            return;
        };
        if e.peer != src {
            // Single hop: a session's packets come from its peer only.
            debug!(%from, peer = %e.name, address = %e.peer, "BFD packet from the wrong source");
            return;
        }
        let mut out = Vec::new();
        if let Err(why) = e.session.receive(p, &mut out) {
            debug!(%from, ?why, "BFD packet discarded");
        }
        e.exec(out);
    }

    fn fire(&mut self) {
        let now = Instant::now();
        for e in self.sessions.values_mut() {
            if e.detect_at.is_some_and(|d| d <= now) {
                e.detect_at = None;
                let a = e.session.handle(Event::DetectionTimerExpired);
                e.exec(a);
            }
            if e.tx_at.is_some_and(|d| d <= now) {
                e.tx_at = None;
                let a = e.session.handle(Event::TxTimerExpired);
                e.exec(a);
            }
        }
    }
}

impl Entry {
    fn exec(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send(p) => self.send(&p),
                Action::ArmTx(d) => self.tx_at = Some(Instant::now() + d),
                Action::StopTx => self.tx_at = None,
                Action::ArmDetection(d) => {
                    self.detect_at = Some(Instant::now() + d);
                    self.update_status(|b| b.detection_time = Some(d));
                }
                Action::StopDetection => self.detect_at = None,
                Action::StateChanged {
                    from,
                    to,
                    diag,
                    remote,
                } => {
                    info!(peer = %self.name, address = %self.peer, %from, %to, %diag, remote = %remote, "BFD session state change");
                    self.update_status(|b| {
                        b.state = to;
                        b.diagnostic = diag;
                        b.since = SystemTime::now();
                        b.transitions += 1;
                    });
                    if from == BfdState::Up && to == BfdState::Down && remote != BfdState::AdminDown
                    {
                        let cmd = PeerCmd::BfdDown(diag);
                        if let Err(mpsc::error::TrySendError::Full(cmd)) = self.notify.try_send(cmd)
                        {
                            let tx = self.notify.clone();
                            tokio::spawn(async move {
                                let _ = tx.send(cmd).await;
                            });
                        }
                    }
                }
            }
        }
        let (remote_state, remote_discr) = (
            self.session.remote_state(),
            self.session.remote_discriminator(),
        );
        self.update_status(|b| {
            b.remote_state = remote_state;
            b.remote_discriminator = remote_discr;
        });
    }

    fn send(&mut self, p: &ControlPacket) {
        let to = SocketAddr::new(self.peer, socket::CONTROL_PORT);
        let err = match self.sock.send_to(&p.encode(), to) {
            Ok(_) => None,
            // A full socket buffer is a lost packet, as on the wire.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(e) => Some(format!("send to {to}: {e}")),
        };
        self.update_status(|b| {
            if b.error != err {
                b.error = err;
            }
        });
    }

    fn update_status(&self, f: impl FnOnce(&mut BfdStatus)) {
        if let Ok(mut st) = self.status.lock()
            && let Some(b) = st.bfd.as_mut()
        {
            f(b);
        }
    }
}
