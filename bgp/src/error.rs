//! The crate's one error type, [`BgpError`].
//!
//! Errors carry their context (which peer, which socket, which operation) so
//! that a log line or a CLI message is enough to act on. Protocol errors seen on
//! the wire are not `BgpError`s: they become NOTIFICATIONs (see [`crate::fsm`]).

use std::net::IpAddr;

/// Everything the speaker's public API can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BgpError {
    /// A socket operation failed; `context` says which one and for whom.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The configuration handed to [`crate::Speaker::start`] or
    /// [`crate::Speaker::reconfigure`] cannot work.
    #[error("invalid BGP configuration: {0}")]
    Config(String),
    /// The operation names a peer that is not configured.
    #[error("no configured BGP peer {0}")]
    UnknownPeer(IpAddr),
    /// The peer's session is not in a state that allows the operation.
    #[error("BGP peer {peer}: {reason}")]
    PeerState { peer: IpAddr, reason: String },
    /// The speaker's tasks have stopped (after shutdown, or a panic in one).
    #[error("the BGP speaker has shut down")]
    Shutdown,
}

impl BgpError {
    /// Wraps an IO error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        BgpError::Io {
            context: context.into(),
            source,
        }
    }
}
