//! NLRI prefix encoding (RFC 4271 §4.3 "Network Layer Reachability
//! Information", RFC 4760 §5 for MP_REACH/MP_UNREACH): a length octet followed
//! by the minimum number of octets holding the prefix.
//!
//! Decoding is two passes over the same bytes: [`count`] validates and counts
//! (no allocation), then [`push_all`] appends into a list reserved exactly once (inline for one prefix).

use std::net::Ipv4Addr;

use crate::types::{Afi, Ipv4Prefix, Ipv6Prefix, Prefix, Prefixes};

use super::reader::Reader;

/// Why an NLRI field could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NlriError {
    /// Prefix length octet larger than the family allows.
    LengthTooLong(u8),
    /// The prefix octets run past the end of the field.
    Truncated,
}

impl NlriError {
    pub(crate) fn describe(self) -> String {
        match self {
            NlriError::LengthTooLong(l) => format!("prefix length {l} too long for the family"),
            NlriError::Truncated => "prefix runs past the end of the field".to_string(),
        }
    }
}

fn max_len(afi: Afi) -> u8 {
    match afi {
        Afi::Ipv4 => 32,
        Afi::Ipv6 => 128,
    }
}

/// Reads one prefix. Host bits beyond the length are ignored (cleared).
fn read(r: &mut Reader<'_>, afi: Afi) -> Result<Prefix, NlriError> {
    let len = r.u8().ok_or(NlriError::Truncated)?;
    if len > max_len(afi) {
        return Err(NlriError::LengthTooLong(len));
    }
    let n = usize::from(len).div_ceil(8);
    let bytes = r.take(n).ok_or(NlriError::Truncated)?;
    match afi {
        Afi::Ipv4 => {
            let mut a = [0u8; 4];
            if let Some(dst) = a.get_mut(..n) {
                dst.copy_from_slice(bytes);
            }
            Ipv4Prefix::new(Ipv4Addr::from(a), len)
                .map(Prefix::V4)
                .ok_or(NlriError::LengthTooLong(len))
        }
        Afi::Ipv6 => Ipv6Prefix::from_nlri(len, bytes)
            .map(Prefix::V6)
            .ok_or(NlriError::LengthTooLong(len)),
    }
}

/// Validates an NLRI field and returns how many prefixes it holds.
pub(crate) fn count(bytes: &[u8], afi: Afi) -> Result<usize, NlriError> {
    let mut r = Reader::new(bytes);
    let mut n = 0usize;
    while !r.is_empty() {
        let len = r.u8().ok_or(NlriError::Truncated)?;
        if len > max_len(afi) {
            return Err(NlriError::LengthTooLong(len));
        }
        r.take(usize::from(len).div_ceil(8))
            .ok_or(NlriError::Truncated)?;
        n += 1;
    }
    Ok(n)
}

/// Appends every prefix of an NLRI field already validated by [`count`].
pub(crate) fn push_all(bytes: &[u8], afi: Afi, out: &mut Prefixes) -> Result<(), NlriError> {
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        out.push(read(&mut r, afi)?);
    }
    Ok(())
}

/// Encoded size of one prefix.
pub(crate) fn encoded_len(p: &Prefix) -> usize {
    1 + usize::from(p.len()).div_ceil(8)
}

/// Appends one prefix in NLRI encoding.
pub(crate) fn write(p: &Prefix, out: &mut Vec<u8>) {
    let n = usize::from(p.len()).div_ceil(8);
    out.push(p.len());
    match p {
        Prefix::V4(v4) => out.extend_from_slice(v4.addr().octets().get(..n).unwrap_or_default()),
        Prefix::V6(v6) => out.extend_from_slice(v6.addr().octets().get(..n).unwrap_or_default()),
    }
}
