//! A session's life beyond the FSM: each state change recorded in the
//! peer's status and log and told to the RIB task, what happens when it reaches
//! Established (the RIB learns of it, next-hop self is chosen) and when it
//! goes down (the RIB withdraws or keeps its routes, RFC 4724), the local
//! end of its connections (update-source and TTL, i.e. eBGP multihop), and
//! its BFD session's Down (RFC 5882 §4.3: the session is reset at once).

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::{PeerTask, peer_log};
use crate::bfd::Diagnostic;
use crate::fsm::{DownReason, Event, Negotiated, SessionState, codes, notify};
use crate::session::fsm_config;
use crate::session::msg::RibMsg;
use crate::speaker::{CapabilitySummary, SpeakerEvent, Stamped};

/// Linux's default TTL, and BIRD's for iBGP ("multihop 64").
const IBGP_TTL: u8 = 64;

impl PeerTask {
    /// Records and logs a state change (RFC 4271 §8 names), in the order the
    /// FSM made them; leaving Established is a warning.
    pub(super) fn note_state(&mut self, before: SessionState, state: SessionState) {
        let now = SystemTime::now();
        let up_down = before == SessionState::Established || state == SessionState::Established;
        if let Ok(mut st) = self.status.lock() {
            st.state = state;
            st.since = now;
            if up_down {
                st.established_change = now;
            }
            if state != SessionState::Established {
                st.hold_time = None;
                st.keepalive_time = None;
            }
            if before == SessionState::Established {
                st.down_reason = Some(Stamped {
                    text: self.reason.clone(),
                    at: now,
                });
            }
        }
        let reason = self.reason.clone();
        if state == SessionState::Established {
            let (asn, hold, keepalive, families) = match self.fsm.negotiated() {
                Some(n) => (
                    n.peer_asn,
                    n.hold_time,
                    n.keepalive,
                    n.families
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                None => (self.peer.asn, 0, 0, String::new()),
            };
            peer_log!(self, info, from = %before, asn, hold, keepalive, %families, "session Established");
        } else if before == SessionState::Established {
            peer_log!(self, warn, to = %state, %reason, "session down");
        } else {
            peer_log!(self, info, from = %before, to = %state, %reason, "state change");
        }
        self.to_rib
            .push_back(RibMsg::Event(SpeakerEvent::PeerStateChanged {
                peer: self.addr(),
                state,
                reason: self.reason.clone(),
            }));
    }

    /// Where our end of the session lives: the peer's `source_address`,
    /// else the speaker's local address when of the peer's family.
    pub(super) fn source_address(&self) -> Option<IpAddr> {
        self.peer
            .source_address
            .or(self.shared.local_address_of(self.peer.address.is_ipv4()))
    }

    /// TTL of the session's packets when GTSM is off: `multihop`, else 1
    /// for eBGP (directly connected, as BIRD and FRR) and 64 for iBGP.
    pub(super) fn session_ttl(&self) -> Option<u8> {
        if self.peer.ttl_security.is_some() {
            return None; // GTSM sends 255
        }
        Some(
            self.peer
                .multihop
                .unwrap_or(if self.peer.asn == self.shared.local_asn {
                    IBGP_TTL
                } else {
                    1
                }),
        )
    }

    /// The peer's BFD session went from Up to Down: bring BGP down now
    /// (Cease/10 "BFD Down", RFC 9384); its routes are withdrawn, not kept
    /// as stale (the forwarding path is gone, RFC 5882 §4.3).
    pub(super) fn on_bfd_down(&mut self, diag: Diagnostic) {
        if self.fsm.state() != SessionState::Established {
            return;
        }
        peer_log!(self, warn, %diag, "BFD session down: resetting the BGP session");
        self.reason = format!("BFD session down ({diag})");
        self.set_error(self.reason.clone());
        self.feed(Event::AutomaticStop(Some(notify(
            codes::CEASE,
            codes::CEASE_BFD_DOWN,
            Vec::new(),
        ))));
    }

    pub(super) fn on_established(&mut self, n: Negotiated) {
        let peer = self.addr();
        // Next-hop self follows the session's source address (update-source):
        // the address the peer reaches us at, so a peer off node.address's
        // subnet gets a next hop on its own. The configured address only when
        // the session has none.
        let session_local = self.conn.as_ref().map(|c| c.local.ip().to_canonical());
        let local_addr = session_local
            .or(self.source_address())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        // note_state logged "session Established" already, in order.
        let endpoints = self.conn.as_ref().map(|c| (c.local, c.remote));
        if let Ok(mut st) = self.status.lock() {
            st.local_address = Some(local_addr);
            st.established_transitions += 1;
            st.hold_time = Some(n.hold_time);
            st.keepalive_time = Some(n.keepalive);
            if let Some((local, remote)) = endpoints {
                st.local_endpoint = Some(local);
                st.remote_endpoint = Some(remote);
            }
            st.remote_id = Some(n.peer_id);
            st.capabilities = Some(CapabilitySummary {
                families: n.families.clone(),
                four_octet_as: n.four_octet_as,
                route_refresh: n.route_refresh,
                extended_message: n.extended_message,
                peer_restart_time: n.peer_graceful_restart.as_ref().map(|g| g.restart_time),
            });
        }
        // RFC 4724 §4.1: the Restart State bit only on the first session after our restart.
        self.fsm.config_mut().graceful_restart =
            fsm_config(&self.shared, &self.peer, false).graceful_restart;
        let (tx, rx) = mpsc::channel(64);
        self.out_rx = Some(rx);
        self.session = Some(n.clone());
        self.to_rib.push_back(RibMsg::PeerUp {
            peer,
            negotiated: n,
            local_addr,
            out: tx,
        });
    }

    pub(super) fn on_down(&mut self, reason: DownReason, was_established: bool) {
        let peer = self.addr();
        // "connection lost: connection closed by peer" says more than the FSM.
        let lost = self.lost.take();
        let text = match (&reason, lost) {
            (DownReason::ConnectionLost, Some(why)) => format!("{reason}: {why}"),
            _ => reason.to_string(),
        };
        if !matches!(reason, DownReason::Stopped) {
            self.set_error(text.clone());
        }
        self.reason = text;
        self.out_rx = None;
        let session = self.session.take();
        if !was_established {
            return;
        }
        // note_state logs it (as a warning), after the FSM's actions.
        let (retain_for, families) = match session.as_ref() {
            Some(n) if reason.retains_routes() => match &n.peer_graceful_restart {
                Some(g) if g.restart_time > 0 => (
                    Some(Duration::from_secs(u64::from(g.restart_time))),
                    n.families_kept_on_loss(),
                ),
                _ => (None, Vec::new()),
            },
            _ => (None, Vec::new()),
        };
        self.to_rib.push_back(RibMsg::PeerDown {
            peer,
            retain_for,
            families,
        });
    }
}
