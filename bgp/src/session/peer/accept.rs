//! Connections the peer opens to us (handed over by the listener): socket
//! options (GTSM or the session TTL), then, by the session's state, attach
//! it, refuse it, run it as a collision candidate (RFC 4271 §6.8, see
//! `collision`) or, from a graceful-restart peer while Established, take it
//! as the peer's restart (RFC 4724 §4.2).

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::super::conn::Conn;
use super::super::fsm_config;
use super::super::socket;
use super::{CANDIDATE_OPEN_TIMEOUT, CLOSE_FLUSH, PeerTask};
use crate::fsm::{Action, Event, Fsm, SessionState, codes, notify};
use crate::wire::{Message, MessageType};

impl PeerTask {
    pub(super) fn on_accepted(&mut self, stream: TcpStream) {
        if let Err(e) =
            socket::prepare_accepted(&stream, self.peer.ttl_security, self.session_ttl())
        {
            peer_log!(self, warn, "accepted connection: socket options: {e}");
            return;
        }
        let conn = match Conn::new(stream, false) {
            Ok(c) => c,
            Err(e) => {
                peer_log!(self, warn, "accepted connection: {e}");
                return;
            }
        };
        match self.fsm.state() {
            SessionState::Idle if self.hold_down.is_some_and(|t| t > Instant::now()) => {
                peer_debug!(
                    self,
                    "refusing connection: idle after exceeding max_prefixes"
                );
            }
            SessionState::Idle => {
                self.feed(Event::AutomaticStart);
                if self.fsm.state() == SessionState::Idle {
                    peer_debug!(
                        self,
                        "refusing connection: session administratively stopped"
                    );
                    return;
                }
                self.attach_accepted(conn);
            }
            SessionState::Connect | SessionState::Active => self.attach_accepted(conn),
            SessionState::OpenSent | SessionState::OpenConfirm => {
                if self.cand.is_some() {
                    peer_debug!(self, "refusing third connection during collision");
                    return;
                }
                let mut fsm = Fsm::new(fsm_config(&self.shared, &self.peer, false));
                let mut conn = conn;
                fsm.handle(Event::ManualStart);
                for a in fsm.handle(Event::TcpConnectionConfirmed) {
                    if let Action::SendOpen(o) = a {
                        let _ = conn.queue(&Message::Open(o));
                    }
                }
                self.count_sent(MessageType::Open);
                self.cand = Some((fsm, conn, Instant::now() + CANDIDATE_OPEN_TIMEOUT));
            }
            SessionState::Established => {
                let gr = self
                    .session
                    .as_ref()
                    .is_some_and(|n| n.peer_graceful_restart.is_some());
                if gr {
                    // RFC 4724 §4.2: a new connection from a GR-capable peer
                    // whose session is Established means it restarted: treat
                    // the old session as a TCP failure (routes kept stale).
                    peer_log!(
                        self,
                        info,
                        "new connection while Established: peer restarted (graceful restart)"
                    );
                    self.conn_failed("peer restarted (new connection)".into());
                    self.feed(Event::IdleHoldTimerExpires);
                    self.attach_accepted(conn);
                } else {
                    peer_debug!(
                        self,
                        "collision with an Established session: closing the new connection"
                    );
                    let mut conn = conn;
                    let n = notify(codes::CEASE, codes::CEASE_CONNECTION_COLLISION, Vec::new());
                    let _ = conn.queue(&Message::Notification(n));
                    tokio::spawn(conn.close(CLOSE_FLUSH));
                }
            }
        }
    }

    pub(super) fn attach_accepted(&mut self, conn: Conn) {
        self.connecting = None;
        self.conn = Some(conn);
        self.feed(Event::TcpConnectionConfirmed);
    }
}
