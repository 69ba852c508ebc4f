//! Connection collisions (RFC 4271 §6.8) inside one peer task: a second,
//! peer-initiated connection (the "candidate") runs beside the main one until
//! either receives an OPEN; the BGP Identifiers then decide which survives and
//! the other is closed with Cease/7.

use std::net::Ipv4Addr;

use super::{CLOSE_FLUSH, PeerTask, count, timer_index};
use crate::fsm::{Action, CollisionOutcome, Event, Timer, resolve_collision};
use crate::wire::{Message, MessageType};
use tokio::time::Instant;

impl PeerTask {
    /// The main connection received an OPEN while a candidate exists. Returns
    /// true when the main connection survives and should process the OPEN.
    pub(super) fn collide_on_main_open(&mut self, remote_id: Ipv4Addr) -> bool {
        let main_local = self.conn.as_ref().is_some_and(|c| c.locally_initiated);
        let keep_main = !main_local
            || resolve_collision(self.shared.router_id, remote_id)
                == CollisionOutcome::KeepLocallyInitiated;
        if keep_main {
            self.dump_cand();
            true
        } else {
            self.promote_cand();
            false
        }
    }

    pub(super) fn process_cand(&mut self) {
        let Some(res) = self.cand.as_mut().and_then(|c| c.1.next_message()) else {
            return;
        };
        let Ok(Message::Open(o)) = res else {
            // Anything but an OPEN first (or garbage): not worth a session.
            self.drop_cand();
            return;
        };
        if let Ok(mut st) = self.status.lock() {
            count(&mut st.messages_received, MessageType::Open);
        }
        let main_local = self.conn.as_ref().is_some_and(|c| c.locally_initiated);
        // Two connections from the peer: it gave up on the older one.
        let keep_cand = !main_local
            || resolve_collision(self.shared.router_id, o.bgp_identifier)
                == CollisionOutcome::KeepRemotelyInitiated;
        if keep_cand {
            self.promote_cand();
            self.feed(Event::BGPOpen(o));
            // Anything after the OPEN is now the main connection's.
            self.process_main();
        } else {
            self.dump_cand();
        }
    }

    /// Closes the candidate with Cease/7 (§6.8).
    pub(super) fn dump_cand(&mut self) {
        if let Some((mut fsm, mut conn, _)) = self.cand.take() {
            super::peer_log!(
                self,
                info,
                "connection collision: closing the peer-initiated connection"
            );
            for a in fsm.handle(Event::OpenCollisionDump) {
                if let Action::SendNotification(n) = a {
                    let _ = conn.queue(&Message::Notification(n));
                    self.count_sent(MessageType::Notification);
                }
            }
            tokio::spawn(conn.close(CLOSE_FLUSH));
        }
    }

    pub(super) fn drop_cand(&mut self) {
        if let Some((_, conn, _)) = self.cand.take() {
            conn.abort();
        }
    }

    /// Dumps the main connection (Cease/7) and makes the candidate the main one.
    pub(super) fn promote_cand(&mut self) {
        let Some((fsm, conn, _)) = self.cand.take() else {
            return;
        };
        super::peer_log!(
            self,
            info,
            "connection collision: keeping the peer-initiated connection"
        );
        self.reason = "connection collision resolution".into();
        self.feed(Event::OpenCollisionDump);
        self.connecting = None;
        self.timers = [None; 4];
        self.timers[timer_index(Timer::Hold)] = Some(Instant::now() + crate::fsm::OPEN_HOLD_TIME);
        let before = self.fsm.state();
        self.fsm = fsm;
        self.conn = Some(conn);
        self.note_state(before, self.fsm.state());
    }
}
