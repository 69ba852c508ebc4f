//! Bidirectional Forwarding Detection (RFC 5880) beside the BGP sessions:
//! single-hop (RFC 5881), asynchronous mode, no authentication.
//!
//! Split like the BGP side: [`packet`] is the Control packet codec,
//! [`session`] the per-session state machine (§6.8) fed packets and timer
//! expiries, and `task` (crate-private) the one socket task that moves bytes
//! and timers for every session of the speaker and tells each BGP peer task
//! when its BFD session leaves Up.

pub mod packet;
pub mod session;
pub mod socket;
pub(crate) mod task;

pub use packet::{BfdState, ControlPacket, Diagnostic, PacketError};
pub use session::{Action, Discard, Event, Session, SessionConfig};
