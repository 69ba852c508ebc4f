//! Message types (RFC 4271 §4) as the FSM and RIB see them.

use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::types::{AddressFamily, PathAttributes, Prefixes};

/// BGP header length (RFC 4271 §4.1).
pub const HEADER_LEN: usize = 19;
/// Maximum message size without Extended Message (RFC 4271 §4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Maximum message size once Extended Message is negotiated (RFC 8654 §4).
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;

/// Message type codes (RFC 4271 §4.1, RFC 2918 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    Open = 1,
    Update = 2,
    Notification = 3,
    Keepalive = 4,
    RouteRefresh = 5,
}

impl MessageType {
    pub fn name(self) -> &'static str {
        match self {
            MessageType::Open => "open",
            MessageType::Update => "update",
            MessageType::Notification => "notification",
            MessageType::Keepalive => "keepalive",
            MessageType::RouteRefresh => "route_refresh",
        }
    }
}

/// A decoded BGP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Message {
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Open(_) => MessageType::Open,
            Message::Update(_) => MessageType::Update,
            Message::Notification(_) => MessageType::Notification,
            Message::Keepalive => MessageType::Keepalive,
            Message::RouteRefresh(_) => MessageType::RouteRefresh,
        }
    }
}

/// OPEN (RFC 4271 §4.2). `my_as` is the 2-octet field (AS_TRANS = 23456 when
/// the real AS is 4-octet, RFC 6793 §4.1); the real AS is in the capability.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_identifier: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// The peer's real AS: the 4-octet AS capability if present, else `my_as`.
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(a) => Some(*a),
                _ => None,
            })
            .unwrap_or(self.my_as as u32)
    }
}

/// AS_TRANS (RFC 6793 §9).
pub const AS_TRANS: u16 = 23456;

/// Capabilities advertised in OPEN (RFC 5492).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    /// Code 1, RFC 4760 §8.
    Multiprotocol(AddressFamily),
    /// Code 2, RFC 2918.
    RouteRefresh,
    /// Code 6, RFC 8654.
    ExtendedMessage,
    /// Code 64, RFC 4724 §3.
    GracefulRestart(GracefulRestartCapability),
    /// Code 65, RFC 6793.
    FourOctetAs(u32),
    /// Code 70, RFC 7313.
    EnhancedRouteRefresh,
    /// Any other capability, kept verbatim.
    Unknown { code: u8, value: Vec<u8> },
}

/// Graceful Restart capability (RFC 4724 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracefulRestartCapability {
    /// Restart State (R) bit.
    pub restart_state: bool,
    /// Graceful Notification (N) bit (RFC 8538).
    pub notification: bool,
    /// Restart Time in seconds (12 bits).
    pub restart_time: u16,
    /// Families and their Forwarding State (F) bit.
    pub families: Vec<(AddressFamily, bool)>,
}

/// NOTIFICATION (RFC 4271 §4.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

/// ROUTE-REFRESH (RFC 2918 §3; subtype per RFC 7313: 0 normal, 1 BoRR, 2 EoRR).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRefresh {
    pub family: AddressFamily,
    pub subtype: u8,
}

/// UPDATE (RFC 4271 §4.3) after decoding and RFC 7606 handling, for all families:
/// IPv4 NLRI and MP_REACH/MP_UNREACH prefixes are merged into `announced` and
/// `withdrawn`. At most one allocation per direction, never one per prefix, and
/// none for a one-prefix list ([`Prefixes`] holds one inline).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Update {
    pub withdrawn: Prefixes,
    /// Shared attribute set for every prefix in `announced`; `None` when nothing is announced.
    pub attributes: Option<Arc<PathAttributes>>,
    pub announced: Prefixes,
    /// This UPDATE is an End-of-RIB marker for the family (RFC 4724 §2).
    pub end_of_rib: Option<AddressFamily>,
    /// Malformed attributes handled without a session reset (RFC 7606), for the
    /// log and counters. Empty (no allocation) on well-formed UPDATEs; ignored by
    /// the encoder.
    pub malformed: Vec<MalformedAttribute>,
}

impl Update {
    /// True when the UPDATE carries nothing: no prefixes and no End-of-RIB.
    pub fn is_empty(&self) -> bool {
        self.withdrawn.is_empty() && self.announced.is_empty() && self.end_of_rib.is_none()
    }
}

/// How a malformed attribute was handled (RFC 7606 §2). Session reset is not
/// listed: it is a [`super::DecodeError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rfc7606Action {
    /// The attribute was dropped and the UPDATE processed without it.
    AttributeDiscard,
    /// Every prefix the UPDATE announced was handled as withdrawn.
    TreatAsWithdraw,
}

/// RFC 7606 §2 names: "attribute discard", "treat-as-withdraw".
impl std::fmt::Display for Rfc7606Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rfc7606Action::AttributeDiscard => "attribute discard",
            Rfc7606Action::TreatAsWithdraw => "treat-as-withdraw",
        })
    }
}

/// One RFC 7606 event in a received UPDATE.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MalformedAttribute {
    /// Attribute type code (0 for errors of the attribute list as a whole).
    pub type_code: u8,
    pub action: Rfc7606Action,
    /// What was wrong, e.g. "AS_PATH segment overruns the attribute".
    pub reason: &'static str,
}
