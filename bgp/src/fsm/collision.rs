//! Connection collision detection (RFC 4271 §6.8).
//!
//! When two connections to the same peer exist and one of them has received
//! the peer's OPEN, the BGP Identifiers decide: the connection initiated by the
//! speaker with the higher identifier survives; the other is closed with
//! Cease/7 (RFC 4486), by feeding its FSM [`super::Event::OpenCollisionDump`].

use std::net::Ipv4Addr;

/// Which of two colliding connections to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CollisionOutcome {
    /// Keep the connection we initiated; dump the one the peer initiated.
    KeepLocallyInitiated,
    /// Keep the connection the peer initiated; dump ours.
    KeepRemotelyInitiated,
}

/// §6.8: "if the value of the local BGP Identifier is less than the remote
/// one, close the BGP connection that already exists (the one initiated by
/// the local system) and accept the connection initiated by the remote
/// system; otherwise close the one initiated by the remote system".
pub fn resolve_collision(local_id: Ipv4Addr, remote_id: Ipv4Addr) -> CollisionOutcome {
    if u32::from(local_id) < u32::from(remote_id) {
        CollisionOutcome::KeepRemotelyInitiated
    } else {
        CollisionOutcome::KeepLocallyInitiated
    }
}
