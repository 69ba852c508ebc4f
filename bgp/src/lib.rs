//! tortie-bgp: a BGP-4 speaker (RFC 4271) that knows nothing of Linux.
//!
//! Data flow: bytes from a peer are framed and decoded by [`wire`], fed as events
//! to the sans-IO session FSM, and the UPDATEs it accepts go to the RIB task,
//! which runs the decision process and emits best-path changes to the caller.
//!
//! Entry point: [`Speaker::start`] with a [`SpeakerConfig`]; it runs one RIB task
//! (sole owner of [`rib::Rib`]), one session task per peer driving a
//! [`fsm::Fsm`], and one listener. See [`speaker`] for the API the agent uses.
//! Beside the sessions, [`bfd`] runs single-hop BFD (RFC 5880/5881) for the
//! peers that ask for it: one socket task, sans-IO state machines, and a BFD
//! Down that resets the peer's session at once.

pub mod bfd;
pub mod error;
pub mod fsm;
pub mod heap;
pub mod policy;
pub mod rib;
mod session;
pub mod speaker;
pub mod types;
pub mod wire;

pub use error::BgpError;
pub use fsm::SessionState;
pub use session::{EVENT_CHANNEL, ExpressEvents, PROBE_TRACE, probe_traced};
pub use speaker::*;
pub use types::*;
