//! Messages between the speaker's tasks (all over bounded channels).
//!
//! Session tasks → RIB task: [`RibMsg`]. RIB task → one established session:
//! [`PeerOut`]. API / listener → session task: [`PeerCmd`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::BgpError;
use crate::fsm::Negotiated;
use crate::speaker::{PeerConfig, RouteInfo, SpeakerEvent};
use crate::types::{AddressFamily, Prefix};
use crate::wire::{Notification, Update};

pub(crate) enum RibMsg {
    /// A session reached Established; `out` carries its outbound UPDATEs.
    PeerUp {
        peer: IpAddr,
        negotiated: Negotiated,
        local_addr: IpAddr,
        out: mpsc::Sender<PeerOut>,
    },
    /// An established session ended. `retain_for`: the peer is restarting
    /// gracefully (RFC 4724 §4.2): keep its routes as stale this long.
    /// `families`: those the peer's GR capability covers; others are flushed.
    PeerDown {
        peer: IpAddr,
        retain_for: Option<Duration>,
        families: Vec<AddressFamily>,
    },
    Update {
        peer: IpAddr,
        update: Update,
    },
    RouteRefresh {
        peer: IpAddr,
        family: AddressFamily,
    },
    /// Forward to the owner's event stream (keeps ordering with route events).
    Event(SpeakerEvent),
    Originate {
        prefix: Prefix,
        next_hop: Option<IpAddr>,
        reply: oneshot::Sender<Result<(), BgpError>>,
    },
    Withdraw {
        prefix: Prefix,
        reply: oneshot::Sender<Result<(), BgpError>>,
    },
    Routes {
        reply: oneshot::Sender<Vec<RouteInfo>>,
    },
    /// (routes received, routes advertised) per peer.
    Counts {
        reply: oneshot::Sender<HashMap<IpAddr, (u64, u64)>>,
    },
    /// The configured peer set changed (policy: ASN, RR client, max-prefix).
    SetPeers {
        peers: Vec<PeerConfig>,
    },
}

pub(crate) enum PeerOut {
    /// UPDATEs to send, in order (End-of-RIB markers included).
    Updates(Vec<Update>),
    /// The peer exceeded its prefix limit (RFC 4486 Cease/1).
    MaxPrefixes { family: AddressFamily, limit: u32 },
}

pub(crate) enum PeerCmd {
    /// The listener accepted a connection from this peer's address.
    Accepted(TcpStream),
    /// Send ROUTE-REFRESH for every negotiated family.
    RouteRefresh {
        reply: oneshot::Sender<Result<(), BgpError>>,
    },
    /// Stop the session and end the task. `None`: close without NOTIFICATION.
    Stop {
        notification: Option<Notification>,
        reply: oneshot::Sender<()>,
    },
}
