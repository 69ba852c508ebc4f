//! Codec errors. A [`DecodeError`] always says which NOTIFICATION to send
//! (code, subcode, data per RFC 4271 §6) so the FSM can reset the session with
//! it; an [`EncodeError`] means we were asked to build something the wire
//! format cannot carry (never a silently truncated or wrapped length).

use std::fmt;

use super::codes;
use super::message::Notification;

/// A message that cannot be accepted. Unless [`DecodeError::is_ignorable`],
/// the session sends `notification` and closes (RFC 4271 §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The NOTIFICATION to send to the peer.
    pub notification: Notification,
    /// What was wrong, for the log.
    pub message: String,
    /// True for messages the RFCs say to ignore rather than reset the session
    /// for, e.g. a ROUTE-REFRESH for an AFI/SAFI we never advertised (RFC 2918 §4).
    pub ignorable: bool,
}

impl DecodeError {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>, message: impl Into<String>) -> Self {
        DecodeError {
            notification: Notification {
                code,
                subcode,
                data,
            },
            message: message.into(),
            ignorable: false,
        }
    }

    /// A message to drop without a NOTIFICATION.
    pub fn ignorable(message: impl Into<String>) -> Self {
        DecodeError {
            notification: Notification {
                code: codes::CEASE,
                subcode: 0,
                data: Vec::new(),
            },
            message: message.into(),
            ignorable: true,
        }
    }

    pub fn is_ignorable(&self) -> bool {
        self.ignorable
    }

    /// Message Header Error / Bad Message Length with the length as data (RFC 4271 §6.1).
    pub(crate) fn bad_length(len: usize, why: &str) -> Self {
        let l = u16::try_from(len).unwrap_or(u16::MAX);
        DecodeError::new(
            codes::MESSAGE_HEADER_ERROR,
            codes::header::BAD_MESSAGE_LENGTH,
            l.to_be_bytes().to_vec(),
            format!("bad message length {len}: {why}"),
        )
    }

    pub(crate) fn update(subcode: u8, data: &[u8], message: impl Into<String>) -> Self {
        DecodeError::new(codes::UPDATE_MESSAGE_ERROR, subcode, data.to_vec(), message)
    }

    pub(crate) fn open(subcode: u8, data: Vec<u8>, message: impl Into<String>) -> Self {
        DecodeError::new(codes::OPEN_MESSAGE_ERROR, subcode, data, message)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ignorable {
            write!(f, "{} (ignored)", self.message)
        } else {
            write!(
                f,
                "{} (NOTIFICATION {}/{}: {})",
                self.message,
                self.notification.code,
                self.notification.subcode,
                codes::describe(self.notification.code, self.notification.subcode)
            )
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a message could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message would exceed the negotiated maximum length (RFC 4271 §4.1, RFC 8654).
    #[error("{what} needs {len} bytes, more than the maximum message length {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// A field cannot be represented on the wire (e.g. an IPv4 prefix with an IPv6 next hop).
    #[error("cannot encode {0}")]
    Unencodable(String),
    /// An UPDATE with nothing in it that is not an End-of-RIB marker.
    #[error("empty UPDATE that is not an End-of-RIB marker")]
    EmptyUpdate,
}
