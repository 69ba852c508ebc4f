//! The BGP-4 wire codec (RFC 4271 §4, RFC 4760, RFC 6793, RFC 7606, RFC 8654).
//!
//! Data flow: the session task frames bytes off the socket; each frame is
//! decoded here into a [`Message`]; UPDATE bodies are walked without allocating
//! per prefix, their attributes validated once into a shared
//! `Arc<PathAttributes>`. Encoding goes the other way and never exceeds the
//! negotiated maximum message length.

mod message;

pub use message::*;
