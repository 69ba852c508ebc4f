//! The BGP finite state machine of RFC 4271 §8, sans IO.
//!
//! The session task owns one [`Fsm`] per connection: it turns what happens on
//! the socket and its timers into [`Event`]s, calls [`Fsm::handle`], and carries
//! out the returned [`Action`]s (connect, send, close, arm or cancel a timer,
//! hand an UPDATE to the RIB). There are no clocks and no sockets in here, so
//! every transition is a plain function call and is unit-tested as such.
//!
//! OPEN construction, validation and capability negotiation live in `open`;
//! connection collision resolution (§6.8) in `collision`.

mod collision;
mod open;

use std::net::Ipv4Addr;
use std::time::Duration;

pub use collision::{CollisionOutcome, resolve_collision};
pub use open::{Negotiated, UNICAST_FAMILIES, validate_open};

use crate::types::AddressFamily;
use crate::wire::{GracefulRestartCapability, Notification, Open, RouteRefresh, Update};

/// NOTIFICATION error codes and subcodes this module emits (RFC 4271 §4.5,
/// §6; RFC 4486 Cease subcodes; RFC 6608 FSM error subcodes).
pub mod codes {
    pub const MESSAGE_HEADER_ERROR: u8 = 1;
    pub const OPEN_MESSAGE_ERROR: u8 = 2;
    pub const UPDATE_MESSAGE_ERROR: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM_ERROR: u8 = 5;
    pub const CEASE: u8 = 6;

    // OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492 §5).
    pub const UNSUPPORTED_VERSION_NUMBER: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;

    // FSM Error subcodes (RFC 6608 §3).
    pub const FSM_UNSPECIFIED: u8 = 0;
    pub const FSM_UNEXPECTED_IN_OPENSENT: u8 = 1;
    pub const FSM_UNEXPECTED_IN_OPENCONFIRM: u8 = 2;
    pub const FSM_UNEXPECTED_IN_ESTABLISHED: u8 = 3;

    // Cease subcodes (RFC 4486 §4).
    pub const CEASE_MAX_PREFIXES: u8 = 1;
    pub const CEASE_ADMIN_SHUTDOWN: u8 = 2;
    pub const CEASE_PEER_DECONFIGURED: u8 = 3;
    pub const CEASE_ADMIN_RESET: u8 = 4;
    pub const CEASE_CONNECTION_REJECTED: u8 = 5;
    pub const CEASE_OTHER_CONFIG_CHANGE: u8 = 6;
    pub const CEASE_CONNECTION_COLLISION: u8 = 7;
    pub const CEASE_OUT_OF_RESOURCES: u8 = 8;
    /// RFC 9384.
    pub const CEASE_BFD_DOWN: u8 = 10;
}

/// Session states, named as in RFC 4271 §8.2.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl SessionState {
    pub const ALL: [SessionState; 6] = [
        SessionState::Idle,
        SessionState::Connect,
        SessionState::Active,
        SessionState::OpenSent,
        SessionState::OpenConfirm,
        SessionState::Established,
    ];
    /// The RFC name, as shown by `tortie status` and the state metric label.
    pub fn name(self) -> &'static str {
        match self {
            SessionState::Idle => "Idle",
            SessionState::Connect => "Connect",
            SessionState::Active => "Active",
            SessionState::OpenSent => "OpenSent",
            SessionState::OpenConfirm => "OpenConfirm",
            SessionState::Established => "Established",
        }
    }
}

impl std::fmt::Display for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The timers of RFC 4271 §8 (IdleHold is the optional §8.1.1 damping timer,
/// used here for the back-off before an automatic restart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    ConnectRetry,
    Hold,
    Keepalive,
    IdleHold,
}

/// Events of RFC 4271 §8.1 (names without underscores). Message events carry
/// the decoded message; error events carry the NOTIFICATION the decoder chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Event 1.
    ManualStart,
    /// Event 2.
    ManualStop,
    /// Event 3.
    AutomaticStart,
    /// Event 8: stop for a local reason, with the NOTIFICATION to send if a
    /// connection is open (e.g. Cease/1 on max-prefix).
    AutomaticStop(Option<Notification>),
    /// Event 9.
    ConnectRetryTimerExpires,
    /// Event 10.
    HoldTimerExpires,
    /// Event 11.
    KeepaliveTimerExpires,
    /// Event 13.
    IdleHoldTimerExpires,
    /// Event 16: our outgoing connection completed.
    TcpCrAcked,
    /// Event 17: we accepted the peer's connection.
    TcpConnectionConfirmed,
    /// Event 18.
    TcpConnectionFails,
    /// Event 19 (a syntactically valid OPEN; semantic checks happen here).
    BGPOpen(Open),
    /// Event 21.
    BGPHeaderErr(Notification),
    /// Event 22.
    BGPOpenMsgErr(Notification),
    /// Event 23: this connection lost the collision (§6.8).
    OpenCollisionDump,
    /// Event 25.
    NotifMsg(Notification),
    /// Event 26.
    KeepAliveMsg,
    /// Event 27.
    UpdateMsg(Update),
    /// Event 28.
    UpdateMsgErr(Notification),
    /// ROUTE-REFRESH received (RFC 2918; not an RFC 4271 event).
    RouteRefreshMsg(RouteRefresh),
}

/// Why a session left Established/OpenConfirm/OpenSent (or never got there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// We sent this NOTIFICATION (hold timer expiry is 4/0 here).
    NotificationSent(Notification),
    /// The peer sent this NOTIFICATION.
    NotificationReceived(Notification),
    /// The TCP connection failed or was closed without a NOTIFICATION.
    ConnectionLost,
    /// ManualStop / shutdown without a connection to notify on.
    Stopped,
}

impl DownReason {
    /// Whether a receiving speaker keeps the peer's routes as stale (RFC 4724
    /// §4.2): on a TCP drop or our hold timer expiry, not after a NOTIFICATION
    /// (RFC 8538 Notification support is not negotiated by this speaker).
    pub fn retains_routes(&self) -> bool {
        match self {
            DownReason::ConnectionLost => true,
            DownReason::NotificationSent(n) => n.code == codes::HOLD_TIMER_EXPIRED,
            DownReason::NotificationReceived(_) | DownReason::Stopped => false,
        }
    }
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownReason::NotificationSent(n) => {
                write!(f, "sent NOTIFICATION {}", notification_text(n))
            }
            DownReason::NotificationReceived(n) => {
                write!(f, "received NOTIFICATION {}", notification_text(n))
            }
            DownReason::ConnectionLost => f.write_str("connection lost"),
            DownReason::Stopped => f.write_str("stopped"),
        }
    }
}

/// "code/subcode (name)" for logs and `last_error`.
pub fn notification_text(n: &Notification) -> String {
    use codes::*;
    let name = match (n.code, n.subcode) {
        (MESSAGE_HEADER_ERROR, _) => "Message Header Error",
        (OPEN_MESSAGE_ERROR, UNSUPPORTED_VERSION_NUMBER) => "Unsupported Version Number",
        (OPEN_MESSAGE_ERROR, BAD_PEER_AS) => "Bad Peer AS",
        (OPEN_MESSAGE_ERROR, BAD_BGP_IDENTIFIER) => "Bad BGP Identifier",
        (OPEN_MESSAGE_ERROR, UNACCEPTABLE_HOLD_TIME) => "Unacceptable Hold Time",
        (OPEN_MESSAGE_ERROR, UNSUPPORTED_CAPABILITY) => "Unsupported Capability",
        (OPEN_MESSAGE_ERROR, _) => "OPEN Message Error",
        (UPDATE_MESSAGE_ERROR, _) => "UPDATE Message Error",
        (HOLD_TIMER_EXPIRED, _) => "Hold Timer Expired",
        (FSM_ERROR, _) => "Finite State Machine Error",
        (CEASE, CEASE_MAX_PREFIXES) => "Cease: Maximum Number of Prefixes Reached",
        (CEASE, CEASE_ADMIN_SHUTDOWN) => "Cease: Administrative Shutdown",
        (CEASE, CEASE_PEER_DECONFIGURED) => "Cease: Peer De-configured",
        (CEASE, CEASE_ADMIN_RESET) => "Cease: Administrative Reset",
        (CEASE, CEASE_CONNECTION_REJECTED) => "Cease: Connection Rejected",
        (CEASE, CEASE_OTHER_CONFIG_CHANGE) => "Cease: Other Configuration Change",
        (CEASE, CEASE_CONNECTION_COLLISION) => "Cease: Connection Collision Resolution",
        (CEASE, CEASE_OUT_OF_RESOURCES) => "Cease: Out of Resources",
        (CEASE, CEASE_BFD_DOWN) => "Cease: BFD Down",
        (CEASE, _) => "Cease",
        _ => "unknown error",
    };
    format!("{}/{} ({name})", n.code, n.subcode)
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Initiate a TCP connection to the peer.
    Connect,
    SendOpen(Open),
    SendKeepalive,
    SendNotification(Notification),
    /// Close the TCP connection (after flushing what was queued).
    CloseConnection,
    /// (Re)arm a timer; an armed timer is replaced.
    StartTimer(Timer, Duration),
    StopTimer(Timer),
    /// The session reached Established with these negotiated parameters.
    SessionEstablished(Negotiated),
    /// A session that had reached OpenSent or later went back to Idle.
    /// `was_established` tells whether the RIB knew it.
    SessionDown {
        reason: DownReason,
        was_established: bool,
    },
    DeliverUpdate(Update),
    DeliverRouteRefresh(RouteRefresh),
}

/// Static parameters of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsmConfig {
    pub local_asn: u32,
    pub router_id: Ipv4Addr,
    pub peer_asn: u32,
    /// Hold time we propose; 0 (no keepalives) or >= 3.
    pub hold_time: u16,
    /// PassiveTcpEstablishment (§8.1.1): never initiate the connection.
    pub passive: bool,
    /// ConnectRetryTime base; failures double it up to [`Self::connect_retry_max`].
    pub connect_retry: Duration,
    pub connect_retry_max: Duration,
    /// Families we advertise (Multiprotocol capability, RFC 4760).
    pub families: Vec<AddressFamily>,
    /// Our Graceful Restart capability (RFC 4724), if we advertise one.
    pub graceful_restart: Option<GracefulRestartCapability>,
    /// Advertise Extended Message (RFC 8654).
    pub extended_message: bool,
}

/// The "large value" the hold timer is set to while waiting for OPEN (§8.2.2).
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

/// One session's state machine.
#[derive(Clone, Debug)]
pub struct Fsm {
    cfg: FsmConfig,
    state: SessionState,
    /// ConnectRetryCounter (§8.1): consecutive failures, for back-off.
    connect_retry_counter: u32,
    negotiated: Option<Negotiated>,
    /// Set by ManualStop: stay Idle until ManualStart.
    stopped: bool,
}

impl Fsm {
    pub fn new(cfg: FsmConfig) -> Self {
        Fsm {
            cfg,
            state: SessionState::Idle,
            connect_retry_counter: 0,
            negotiated: None,
            stopped: false,
        }
    }

    pub fn state(&self) -> SessionState {
        self.state
    }
    pub fn config(&self) -> &FsmConfig {
        &self.cfg
    }
    /// Changes take effect from the next OPEN sent (e.g. clearing the
    /// graceful-restart R bit after the first session).
    pub fn config_mut(&mut self) -> &mut FsmConfig {
        &mut self.cfg
    }
    /// Negotiated parameters once the peer's OPEN was accepted.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }
    /// The peer's BGP Identifier once its OPEN was accepted (§6.8 needs it).
    pub fn peer_id(&self) -> Option<Ipv4Addr> {
        self.negotiated.as_ref().map(|n| n.peer_id)
    }
    pub fn connect_retry_counter(&self) -> u32 {
        self.connect_retry_counter
    }

    /// The current back-off: ConnectRetryTime doubled per consecutive failure,
    /// capped. The driver adds jitter (RFC 4271 §10 suggests 0.75–1.0).
    pub fn retry_delay(&self) -> Duration {
        let base = self.cfg.connect_retry.max(Duration::from_millis(10));
        let cap = self.cfg.connect_retry_max.max(base);
        let shift = self.connect_retry_counter.min(16);
        base.checked_mul(1u32 << shift).unwrap_or(cap).min(cap)
    }

    /// The OPEN we send (RFC 4271 §4.2 with our capabilities).
    pub fn our_open(&self) -> Open {
        open::build_open(&self.cfg)
    }

    /// Feeds one event; returns what to do, in order.
    pub fn handle(&mut self, ev: Event) -> Vec<Action> {
        let mut out = Vec::new();
        self.handle_into(ev, &mut out);
        out
    }

    /// [`Fsm::handle`] appending to `out`, so a session that keeps one
    /// buffer allocates nothing per UPDATE for its actions.
    pub fn handle_into(&mut self, ev: Event, out: &mut Vec<Action>) {
        use SessionState::*;
        match (self.state, ev) {
            // Stop events apply in every state.
            (_, Event::ManualStop) => {
                self.stopped = true;
                self.stop(
                    out,
                    notify(codes::CEASE, codes::CEASE_ADMIN_SHUTDOWN, Vec::new()),
                );
                self.connect_retry_counter = 0;
            }
            (_, Event::AutomaticStop(n)) => {
                let n =
                    n.unwrap_or_else(|| notify(codes::CEASE, codes::CEASE_ADMIN_RESET, Vec::new()));
                self.stop(out, n);
                self.connect_retry_counter += 1;
                self.start_idle_hold(out);
            }

            // Idle (§8.2.2).
            (Idle, Event::ManualStart) => {
                self.stopped = false;
                self.start(out);
            }
            (Idle, Event::AutomaticStart | Event::IdleHoldTimerExpires) if !self.stopped => {
                self.start(out)
            }
            (Idle, _) => {}

            // Connect.
            (Connect, Event::ConnectRetryTimerExpires) => {
                out.push(Action::StartTimer(Timer::ConnectRetry, self.retry_delay()));
                out.push(Action::Connect);
            }
            (Connect | Active, Event::TcpCrAcked | Event::TcpConnectionConfirmed) => {
                out.push(Action::StopTimer(Timer::ConnectRetry));
                out.push(Action::SendOpen(self.our_open()));
                out.push(Action::StartTimer(Timer::Hold, OPEN_HOLD_TIME));
                self.state = OpenSent;
            }
            (Connect, Event::TcpConnectionFails) => {
                self.connect_retry_counter += 1;
                out.push(Action::StartTimer(Timer::ConnectRetry, self.retry_delay()));
                self.state = Active;
            }
            (Active, Event::ConnectRetryTimerExpires) => {
                out.push(Action::StartTimer(Timer::ConnectRetry, self.retry_delay()));
                if !self.cfg.passive {
                    out.push(Action::Connect);
                    self.state = Connect;
                }
            }
            (Active, Event::TcpConnectionFails) => {
                self.connect_retry_counter += 1;
                out.push(Action::StartTimer(Timer::ConnectRetry, self.retry_delay()));
            }
            (Connect | Active, Event::ManualStart | Event::AutomaticStart) => {}
            // Anything else in Connect/Active (a message without a connection,
            // a stray timer) resets to Idle (§8.2.2 "any other event").
            (Connect | Active, _) => {
                out.push(Action::StopTimer(Timer::ConnectRetry));
                out.push(Action::CloseConnection);
                self.connect_retry_counter += 1;
                self.go_idle(out, None);
            }

            // OpenSent.
            (OpenSent, Event::BGPOpen(open)) => match validate_open(&self.cfg, &open) {
                Ok(neg) => {
                    out.push(Action::StopTimer(Timer::ConnectRetry));
                    out.push(Action::SendKeepalive);
                    if neg.hold_time > 0 {
                        out.push(Action::StartTimer(Timer::Keepalive, secs(neg.keepalive)));
                        out.push(Action::StartTimer(Timer::Hold, secs(neg.hold_time)));
                    } else {
                        out.push(Action::StopTimer(Timer::Hold));
                    }
                    self.negotiated = Some(neg);
                    self.state = OpenConfirm;
                }
                Err(n) => self.fail(out, n),
            },
            (OpenSent, Event::TcpConnectionFails) => {
                // §8.2.2: close, restart ConnectRetry, continue listening in Active.
                out.push(Action::CloseConnection);
                out.push(Action::StopTimer(Timer::Hold));
                self.connect_retry_counter += 1;
                out.push(Action::StartTimer(Timer::ConnectRetry, self.retry_delay()));
                out.push(Action::SessionDown {
                    reason: DownReason::ConnectionLost,
                    was_established: false,
                });
                self.state = Active;
            }

            // Events common to OpenSent, OpenConfirm and Established.
            (OpenSent | OpenConfirm | Established, Event::HoldTimerExpires) => {
                self.fail(out, notify(codes::HOLD_TIMER_EXPIRED, 0, Vec::new()))
            }
            (
                OpenSent | OpenConfirm | Established,
                Event::BGPHeaderErr(n) | Event::BGPOpenMsgErr(n) | Event::UpdateMsgErr(n),
            ) => self.fail(out, n),
            (OpenSent | OpenConfirm | Established, Event::OpenCollisionDump) => self.fail(
                out,
                notify(codes::CEASE, codes::CEASE_CONNECTION_COLLISION, Vec::new()),
            ),
            (OpenSent | OpenConfirm | Established, Event::NotifMsg(n)) => {
                out.push(Action::CloseConnection);
                self.connect_retry_counter += 1;
                self.go_idle(out, Some(DownReason::NotificationReceived(n)));
            }
            (OpenConfirm | Established, Event::TcpConnectionFails) => {
                self.connect_retry_counter += 1;
                out.push(Action::CloseConnection);
                self.go_idle(out, Some(DownReason::ConnectionLost));
            }
            (OpenSent | OpenConfirm | Established, Event::ManualStart | Event::AutomaticStart) => {}

            // OpenConfirm.
            (OpenConfirm, Event::KeepaliveTimerExpires) => {
                out.push(Action::SendKeepalive);
                if let Some(n) = &self.negotiated {
                    out.push(Action::StartTimer(Timer::Keepalive, secs(n.keepalive)));
                }
            }
            (OpenConfirm, Event::KeepAliveMsg) => {
                if let Some(neg) = self.negotiated.clone() {
                    if neg.hold_time > 0 {
                        out.push(Action::StartTimer(Timer::Hold, secs(neg.hold_time)));
                    }
                    self.connect_retry_counter = 0;
                    self.state = Established;
                    out.push(Action::SessionEstablished(neg));
                } else {
                    // Unreachable by construction; treat as an FSM error, never panic.
                    self.fsm_error(out);
                }
            }

            // Established.
            (Established, Event::KeepaliveTimerExpires) => {
                out.push(Action::SendKeepalive);
                if let Some(n) = &self.negotiated {
                    out.push(Action::StartTimer(Timer::Keepalive, secs(n.keepalive)));
                }
            }
            (Established, Event::KeepAliveMsg) => self.restart_hold(out),
            (Established, Event::UpdateMsg(u)) => {
                self.restart_hold(out);
                out.push(Action::DeliverUpdate(u));
            }
            (Established, Event::RouteRefreshMsg(r)) => {
                self.restart_hold(out);
                out.push(Action::DeliverRouteRefresh(r));
            }

            // Everything else after a connection exists is an FSM error
            // (RFC 6608: unexpected message / event in this state).
            (OpenSent | OpenConfirm | Established, _) => self.fsm_error(out),
        }
    }

    fn start(&mut self, out: &mut Vec<Action>) {
        out.push(Action::StopTimer(Timer::IdleHold));
        out.push(Action::StartTimer(Timer::ConnectRetry, self.retry_delay()));
        if self.cfg.passive {
            self.state = SessionState::Active;
        } else {
            out.push(Action::Connect);
            self.state = SessionState::Connect;
        }
    }

    fn restart_hold(&self, out: &mut Vec<Action>) {
        if let Some(n) = &self.negotiated
            && n.hold_time > 0
        {
            out.push(Action::StartTimer(Timer::Hold, secs(n.hold_time)));
        }
    }

    fn fsm_error(&mut self, out: &mut Vec<Action>) {
        let sub = match self.state {
            SessionState::OpenSent => codes::FSM_UNEXPECTED_IN_OPENSENT,
            SessionState::OpenConfirm => codes::FSM_UNEXPECTED_IN_OPENCONFIRM,
            SessionState::Established => codes::FSM_UNEXPECTED_IN_ESTABLISHED,
            _ => codes::FSM_UNSPECIFIED,
        };
        self.fail(out, notify(codes::FSM_ERROR, sub, Vec::new()));
    }

    /// An error with a connection open: notify, close, back to Idle, back off.
    fn fail(&mut self, out: &mut Vec<Action>, n: Notification) {
        out.push(Action::SendNotification(n.clone()));
        out.push(Action::CloseConnection);
        self.connect_retry_counter += 1;
        self.go_idle(out, Some(DownReason::NotificationSent(n)));
    }

    /// Stop (manual or automatic): notify if a connection is open.
    fn stop(&mut self, out: &mut Vec<Action>, n: Notification) {
        let reason = match self.state {
            SessionState::OpenSent | SessionState::OpenConfirm | SessionState::Established => {
                out.push(Action::SendNotification(n.clone()));
                Some(DownReason::NotificationSent(n))
            }
            _ => None,
        };
        out.push(Action::CloseConnection);
        self.go_idle(out, reason);
        if self.stopped {
            out.push(Action::StopTimer(Timer::IdleHold));
        }
    }

    fn go_idle(&mut self, out: &mut Vec<Action>, reason: Option<DownReason>) {
        let was_established = self.state == SessionState::Established;
        for t in [Timer::ConnectRetry, Timer::Hold, Timer::Keepalive] {
            out.push(Action::StopTimer(t));
        }
        if let Some(reason) = reason {
            out.push(Action::SessionDown {
                reason,
                was_established,
            });
        }
        self.state = SessionState::Idle;
        self.negotiated = None;
        if !self.stopped {
            self.start_idle_hold(out);
        }
    }

    fn start_idle_hold(&self, out: &mut Vec<Action>) {
        if !self.stopped
            && !out
                .iter()
                .any(|a| matches!(a, Action::StartTimer(Timer::IdleHold, _)))
        {
            out.push(Action::StartTimer(Timer::IdleHold, self.retry_delay()));
        }
    }
}

fn secs(s: u16) -> Duration {
    Duration::from_secs(u64::from(s))
}

/// Builds a NOTIFICATION.
pub fn notify(code: u8, subcode: u8, data: Vec<u8>) -> Notification {
    Notification {
        code,
        subcode,
        data,
    }
}
