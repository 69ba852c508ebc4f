//! The BGP-4 wire codec (RFC 4271 §4, RFC 4760, RFC 6793, RFC 7606, RFC 8654).
//!
//! Data flow: the session task [`frame`](fn@frame)s bytes off the socket; each frame is
//! decoded by its per-session [`Decoder`] (or the stateless [`decode`]) into a
//! [`Message`]; UPDATE bodies are walked without allocating per prefix, their
//! attributes validated once into a shared `Arc<PathAttributes>` (cached by
//! raw bytes) with RFC 7606 error handling. Errors that reset the session come
//! back as a [`DecodeError`] holding the NOTIFICATION to send. Encoding goes
//! the other way: [`encode`] for single messages, [`encode_updates`] to pack
//! prefixes into as many UPDATEs as the negotiated maximum length allows.
//!
//! Files: `frame` (header, dispatch, small messages), `open` (OPEN and
//! capabilities), `update` (UPDATE decode and the attribute cache), `attrs`
//! (per-attribute RFC 7606 rules), `nlri` (prefixes), `pack` (UPDATE encode),
//! `codes` (numeric codes), `context`, `error`, `reader`.

mod attrs;
pub mod codes;
mod context;
mod error;
mod frame;
mod message;
mod nlri;
mod open;
mod pack;
mod reader;
mod update;

pub use attrs::merge_as4_path;
pub use context::CodecContext;
pub use error::{DecodeError, EncodeError};
pub use frame::{decode, encode, frame};
pub use message::*;
pub use open::BGP_VERSION;
pub use pack::{encode_updates, encode_updates_to};
pub use update::{Decoder, DecoderStats};

/// Parses an AS_PATH attribute value with 2- or 4-octet ASNs (RFC 4271 §4.3,
/// RFC 6793); returns why it is malformed otherwise (RFC 7606 §7.2).
pub fn parse_as_path(value: &[u8], four_octet: bool) -> Result<crate::types::AsPath, &'static str> {
    attrs::parse_as_path(value, if four_octet { 4 } else { 2 })
}
