//! Numeric codes of the BGP wire format, named after the RFCs that define them:
//! NOTIFICATION error codes and subcodes (RFC 4271 §4.5, RFC 4486, RFC 6608,
//! RFC 7313, RFC 8538), path attribute type codes (RFC 4271 §5 and successors),
//! capability codes (RFC 5492 registry) and attribute flag bits (RFC 4271 §4.3).
//!
//! The codec and the FSM both use these; [`describe`] renders a code pair for
//! logs and `tortie status`.

/// Message Header Error (RFC 4271 §4.5).
pub const MESSAGE_HEADER_ERROR: u8 = 1;
/// OPEN Message Error (RFC 4271 §4.5).
pub const OPEN_MESSAGE_ERROR: u8 = 2;
/// UPDATE Message Error (RFC 4271 §4.5).
pub const UPDATE_MESSAGE_ERROR: u8 = 3;
/// Hold Timer Expired (RFC 4271 §4.5).
pub const HOLD_TIMER_EXPIRED: u8 = 4;
/// Finite State Machine Error (RFC 4271 §4.5, subcodes RFC 6608).
pub const FSM_ERROR: u8 = 5;
/// Cease (RFC 4271 §4.5, subcodes RFC 4486).
pub const CEASE: u8 = 6;
/// ROUTE-REFRESH Message Error (RFC 7313 §5).
pub const ROUTE_REFRESH_MESSAGE_ERROR: u8 = 7;

/// Message Header Error subcodes (RFC 4271 §6.1).
pub mod header {
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492 §5, RFC 9234).
pub mod open {
    pub const UNSPECIFIC: u8 = 0;
    pub const UNSUPPORTED_VERSION_NUMBER: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    /// Subcode 5 (Authentication Failure) is deprecated by RFC 4271.
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    pub const ROLE_MISMATCH: u8 = 11;
}

/// UPDATE Message Error subcodes (RFC 4271 §6.3).
pub mod update {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// Finite State Machine Error subcodes (RFC 6608 §3).
pub mod fsm {
    pub const UNSPECIFIED: u8 = 0;
    pub const UNEXPECTED_MESSAGE_IN_OPENSENT: u8 = 1;
    pub const UNEXPECTED_MESSAGE_IN_OPENCONFIRM: u8 = 2;
    pub const UNEXPECTED_MESSAGE_IN_ESTABLISHED: u8 = 3;
}

/// Cease subcodes (RFC 4486 §4, RFC 8538 §5).
pub mod cease {
    pub const MAXIMUM_NUMBER_OF_PREFIXES_REACHED: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    /// Hard Reset (RFC 8538 §5).
    pub const HARD_RESET: u8 = 9;
}

/// ROUTE-REFRESH Message Error subcodes (RFC 7313 §5).
pub mod route_refresh {
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// Path attribute type codes (IANA "BGP Path Attributes").
pub mod attr {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    /// COMMUNITIES (RFC 1997).
    pub const COMMUNITIES: u8 = 8;
    /// ORIGINATOR_ID (RFC 4456).
    pub const ORIGINATOR_ID: u8 = 9;
    /// CLUSTER_LIST (RFC 4456).
    pub const CLUSTER_LIST: u8 = 10;
    /// MP_REACH_NLRI (RFC 4760).
    pub const MP_REACH_NLRI: u8 = 14;
    /// MP_UNREACH_NLRI (RFC 4760).
    pub const MP_UNREACH_NLRI: u8 = 15;
    /// EXTENDED COMMUNITIES (RFC 4360).
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    /// AS4_PATH (RFC 6793).
    pub const AS4_PATH: u8 = 17;
    /// AS4_AGGREGATOR (RFC 6793).
    pub const AS4_AGGREGATOR: u8 = 18;
    /// LARGE_COMMUNITY (RFC 8092).
    pub const LARGE_COMMUNITY: u8 = 32;
}

/// Attribute Flags bits (RFC 4271 §4.3).
pub mod flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// AS_PATH segment types (RFC 4271 §4.3, RFC 5065 §3).
pub mod segment {
    pub const AS_SET: u8 = 1;
    pub const AS_SEQUENCE: u8 = 2;
    pub const AS_CONFED_SEQUENCE: u8 = 3;
    pub const AS_CONFED_SET: u8 = 4;
}

/// Capability codes (IANA "Capability Codes", RFC 5492).
pub mod capability {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
}

/// OPEN optional parameter types (RFC 5492 §4, RFC 9072 §2).
pub mod param {
    pub const CAPABILITIES: u8 = 2;
    /// Marks the extended optional parameters length format (RFC 9072 §2).
    pub const EXTENDED_LENGTH: u8 = 255;
}

/// A human name for a NOTIFICATION code/subcode pair, for logs and status output.
pub fn describe(code: u8, subcode: u8) -> &'static str {
    match (code, subcode) {
        (MESSAGE_HEADER_ERROR, header::CONNECTION_NOT_SYNCHRONIZED) => {
            "message header error: connection not synchronized"
        }
        (MESSAGE_HEADER_ERROR, header::BAD_MESSAGE_LENGTH) => {
            "message header error: bad message length"
        }
        (MESSAGE_HEADER_ERROR, header::BAD_MESSAGE_TYPE) => {
            "message header error: bad message type"
        }
        (MESSAGE_HEADER_ERROR, _) => "message header error",
        (OPEN_MESSAGE_ERROR, open::UNSUPPORTED_VERSION_NUMBER) => {
            "open message error: unsupported version number"
        }
        (OPEN_MESSAGE_ERROR, open::BAD_PEER_AS) => "open message error: bad peer AS",
        (OPEN_MESSAGE_ERROR, open::BAD_BGP_IDENTIFIER) => "open message error: bad BGP identifier",
        (OPEN_MESSAGE_ERROR, open::UNSUPPORTED_OPTIONAL_PARAMETER) => {
            "open message error: unsupported optional parameter"
        }
        (OPEN_MESSAGE_ERROR, open::UNACCEPTABLE_HOLD_TIME) => {
            "open message error: unacceptable hold time"
        }
        (OPEN_MESSAGE_ERROR, open::UNSUPPORTED_CAPABILITY) => {
            "open message error: unsupported capability"
        }
        (OPEN_MESSAGE_ERROR, open::ROLE_MISMATCH) => "open message error: role mismatch",
        (OPEN_MESSAGE_ERROR, _) => "open message error",
        (UPDATE_MESSAGE_ERROR, update::MALFORMED_ATTRIBUTE_LIST) => {
            "update message error: malformed attribute list"
        }
        (UPDATE_MESSAGE_ERROR, update::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE) => {
            "update message error: unrecognized well-known attribute"
        }
        (UPDATE_MESSAGE_ERROR, update::MISSING_WELL_KNOWN_ATTRIBUTE) => {
            "update message error: missing well-known attribute"
        }
        (UPDATE_MESSAGE_ERROR, update::ATTRIBUTE_FLAGS_ERROR) => {
            "update message error: attribute flags error"
        }
        (UPDATE_MESSAGE_ERROR, update::ATTRIBUTE_LENGTH_ERROR) => {
            "update message error: attribute length error"
        }
        (UPDATE_MESSAGE_ERROR, update::INVALID_ORIGIN_ATTRIBUTE) => {
            "update message error: invalid ORIGIN attribute"
        }
        (UPDATE_MESSAGE_ERROR, update::INVALID_NEXT_HOP_ATTRIBUTE) => {
            "update message error: invalid NEXT_HOP attribute"
        }
        (UPDATE_MESSAGE_ERROR, update::OPTIONAL_ATTRIBUTE_ERROR) => {
            "update message error: optional attribute error"
        }
        (UPDATE_MESSAGE_ERROR, update::INVALID_NETWORK_FIELD) => {
            "update message error: invalid network field"
        }
        (UPDATE_MESSAGE_ERROR, update::MALFORMED_AS_PATH) => {
            "update message error: malformed AS_PATH"
        }
        (UPDATE_MESSAGE_ERROR, _) => "update message error",
        (HOLD_TIMER_EXPIRED, _) => "hold timer expired",
        (FSM_ERROR, fsm::UNEXPECTED_MESSAGE_IN_OPENSENT) => {
            "FSM error: unexpected message in OpenSent"
        }
        (FSM_ERROR, fsm::UNEXPECTED_MESSAGE_IN_OPENCONFIRM) => {
            "FSM error: unexpected message in OpenConfirm"
        }
        (FSM_ERROR, fsm::UNEXPECTED_MESSAGE_IN_ESTABLISHED) => {
            "FSM error: unexpected message in Established"
        }
        (FSM_ERROR, _) => "FSM error",
        (CEASE, cease::MAXIMUM_NUMBER_OF_PREFIXES_REACHED) => {
            "cease: maximum number of prefixes reached"
        }
        (CEASE, cease::ADMINISTRATIVE_SHUTDOWN) => "cease: administrative shutdown",
        (CEASE, cease::PEER_DECONFIGURED) => "cease: peer de-configured",
        (CEASE, cease::ADMINISTRATIVE_RESET) => "cease: administrative reset",
        (CEASE, cease::CONNECTION_REJECTED) => "cease: connection rejected",
        (CEASE, cease::OTHER_CONFIGURATION_CHANGE) => "cease: other configuration change",
        (CEASE, cease::CONNECTION_COLLISION_RESOLUTION) => "cease: connection collision resolution",
        (CEASE, cease::OUT_OF_RESOURCES) => "cease: out of resources",
        (CEASE, cease::HARD_RESET) => "cease: hard reset",
        (CEASE, _) => "cease",
        (ROUTE_REFRESH_MESSAGE_ERROR, _) => "route-refresh message error: invalid message length",
        _ => "unknown error code",
    }
}
