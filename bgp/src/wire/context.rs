//! What the codec needs to know from OPEN negotiation. The session fills a
//! [`CodecContext`] once both OPENs are exchanged; before that the
//! [`Default`] (2-octet AS, 4096-byte messages) is right for OPEN and
//! NOTIFICATION messages.

use crate::types::AddressFamily;

use super::message::{MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecContext {
    /// Both sides advertised the 4-octet AS capability (RFC 6793 §3): AS_PATH
    /// and AGGREGATOR carry 4-octet ASNs, AS4_PATH/AS4_AGGREGATOR are not used.
    pub four_octet_as: bool,
    /// Both sides advertised Extended Message (RFC 8654): 65535-byte messages.
    pub extended_message: bool,
    /// The peer is in our AS (internal peer; RFC 4271 §5.1.5 LOCAL_PREF handling,
    /// RFC 7606 §7.2 confederation segments check).
    pub ibgp: bool,
    /// Families negotiated with Multiprotocol capabilities (RFC 4760 §8).
    /// The encoder refuses to send prefixes of other families; the decoder
    /// accepts every family it knows and leaves policy to the caller.
    pub families: Vec<AddressFamily>,
    /// Our AS number (4-octet).
    pub local_asn: u32,
    /// The peer's AS number (4-octet), 0 when not known yet.
    pub peer_asn: u32,
    /// Check that the leftmost AS in AS_PATH from an external peer is the
    /// peer's AS (RFC 4271 §6.3); failures are treat-as-withdraw (RFC 7606 §7.2).
    /// Off for route servers, which do not prepend their AS.
    pub enforce_first_as: bool,
}

impl Default for CodecContext {
    fn default() -> Self {
        CodecContext {
            four_octet_as: false,
            extended_message: false,
            ibgp: false,
            families: vec![AddressFamily::IPV4_UNICAST],
            local_asn: 0,
            peer_asn: 0,
            enforce_first_as: false,
        }
    }
}

impl CodecContext {
    /// Largest message this session may send or receive (RFC 4271 §4.1, RFC 8654 §4).
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }

    /// Width of an ASN in AS_PATH and AGGREGATOR on this session.
    pub(crate) fn as_width(&self) -> usize {
        if self.four_octet_as { 4 } else { 2 }
    }
}
