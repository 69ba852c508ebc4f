//! OPEN messages (RFC 4271 §4.2) and their capabilities (RFC 5492): decode
//! with the codec-level checks of RFC 4271 §6.2 (version, BGP identifier, hold
//! time), encode with all capabilities in one Capabilities optional parameter,
//! switching to the RFC 9072 extended parameters format only when they do not
//! fit in 255 octets. AS checks are the FSM's (it knows the configured AS).

use std::net::Ipv4Addr;

use crate::types::{AddressFamily, Afi, Safi};

use super::codes::{self, capability as cap, param};
use super::error::{DecodeError, EncodeError};
use super::message::{Capability, GracefulRestartCapability, Open};
use super::reader::Reader;

/// The only BGP version spoken (RFC 4271 §4.2).
pub const BGP_VERSION: u8 = 4;

fn malformed(why: impl Into<String>) -> DecodeError {
    DecodeError::open(codes::open::UNSPECIFIC, Vec::new(), why)
}

/// Decodes an OPEN body (the bytes after the 19-byte header).
pub(crate) fn decode_open(body: &[u8]) -> Result<Open, DecodeError> {
    let mut r = Reader::new(body);
    let short =
        || DecodeError::bad_length(body.len() + super::HEADER_LEN, "OPEN shorter than 29 bytes");
    let version = r.u8().ok_or_else(short)?;
    let my_as = r.u16().ok_or_else(short)?;
    let hold_time = r.u16().ok_or_else(short)?;
    let id = r.u32().ok_or_else(short)?;
    let opt_len = r.u8().ok_or_else(short)?;
    // RFC 4271 §6.2: unsupported version; data is the largest version we support.
    if version != BGP_VERSION {
        return Err(DecodeError::open(
            codes::open::UNSUPPORTED_VERSION_NUMBER,
            u16::from(BGP_VERSION).to_be_bytes().to_vec(),
            format!("peer speaks BGP version {version}, we speak {BGP_VERSION}"),
        ));
    }
    // RFC 4271 §6.2: hold time 1 or 2 is unacceptable (0 means no keepalives).
    if hold_time == 1 || hold_time == 2 {
        return Err(DecodeError::open(
            codes::open::UNACCEPTABLE_HOLD_TIME,
            Vec::new(),
            format!("hold time {hold_time}s is neither 0 nor at least 3"),
        ));
    }
    // RFC 6286 §2.2: any non-zero 4-octet value is a valid BGP Identifier.
    if id == 0 {
        return Err(DecodeError::open(
            codes::open::BAD_BGP_IDENTIFIER,
            Vec::new(),
            "BGP identifier 0.0.0.0",
        ));
    }
    let mut capabilities = Vec::new();
    // RFC 9072 §2: Non-Ext OP Len 255 and Non-Ext OP Type 255 mark the extended format.
    let rest = r.rest();
    let extended = opt_len == 255 && rest.first() == Some(&param::EXTENDED_LENGTH);
    let params = if extended {
        let mut er = Reader::new(rest);
        er.u8();
        let len = er
            .u16()
            .ok_or_else(|| malformed("truncated extended optional parameters length"))?;
        if usize::from(len) != er.remaining() {
            return Err(malformed(format!(
                "extended optional parameters length {len} but {} bytes follow",
                er.remaining()
            )));
        }
        er.rest()
    } else {
        if usize::from(opt_len) != rest.len() {
            return Err(malformed(format!(
                "optional parameters length {opt_len} but {} bytes follow",
                rest.len()
            )));
        }
        rest
    };
    let mut pr = Reader::new(params);
    while !pr.is_empty() {
        let ptype = pr
            .u8()
            .ok_or_else(|| malformed("truncated optional parameter"))?;
        let plen = if extended {
            pr.u16()
        } else {
            pr.u8().map(u16::from)
        }
        .ok_or_else(|| malformed("truncated optional parameter length"))?;
        let value = pr
            .take(usize::from(plen))
            .ok_or_else(|| malformed("optional parameter overruns the parameters"))?;
        if ptype != param::CAPABILITIES {
            // RFC 4271 §6.2 (the deprecated Authentication parameter included).
            return Err(DecodeError::open(
                codes::open::UNSUPPORTED_OPTIONAL_PARAMETER,
                Vec::new(),
                format!("unsupported optional parameter type {ptype}"),
            ));
        }
        decode_capabilities(value, &mut capabilities)?;
    }
    Ok(Open {
        version,
        my_as,
        hold_time,
        bgp_identifier: Ipv4Addr::from(id),
        capabilities,
    })
}

/// Decodes the capabilities of one Capabilities optional parameter (RFC 5492 §4);
/// one parameter may hold several.
fn decode_capabilities(value: &[u8], out: &mut Vec<Capability>) -> Result<(), DecodeError> {
    let mut r = Reader::new(value);
    while !r.is_empty() {
        let code = r.u8().ok_or_else(|| malformed("truncated capability"))?;
        let len = r
            .u8()
            .ok_or_else(|| malformed("truncated capability length"))?;
        let v = r
            .take(usize::from(len))
            .ok_or_else(|| malformed(format!("capability {code} overruns its parameter")))?;
        out.push(decode_capability(code, v)?);
    }
    Ok(())
}

fn family(afi: u16, safi: u8) -> Option<AddressFamily> {
    Some(AddressFamily {
        afi: Afi::from_code(afi)?,
        safi: Safi::from_code(safi)?,
    })
}

fn bad_cap(code: u8, len: usize) -> DecodeError {
    malformed(format!("capability {code} has invalid length {len}"))
}

fn decode_capability(code: u8, v: &[u8]) -> Result<Capability, DecodeError> {
    let unknown = || Capability::Unknown {
        code,
        value: v.to_vec(),
    };
    let mut r = Reader::new(v);
    Ok(match code {
        cap::MULTIPROTOCOL => {
            // RFC 4760 §8: AFI (2), reserved (1), SAFI (1).
            if v.len() != 4 {
                return Err(bad_cap(code, v.len()));
            }
            let afi = r.u16().unwrap_or(0);
            r.u8();
            let safi = r.u8().unwrap_or(0);
            // A family we do not speak is kept verbatim so the FSM can see it.
            match family(afi, safi) {
                Some(f) => Capability::Multiprotocol(f),
                None => unknown(),
            }
        }
        cap::ROUTE_REFRESH | cap::EXTENDED_MESSAGE | cap::ENHANCED_ROUTE_REFRESH => {
            if !v.is_empty() {
                return Err(bad_cap(code, v.len()));
            }
            match code {
                cap::ROUTE_REFRESH => Capability::RouteRefresh,
                cap::EXTENDED_MESSAGE => Capability::ExtendedMessage,
                _ => Capability::EnhancedRouteRefresh,
            }
        }
        cap::FOUR_OCTET_AS => {
            // RFC 6793 §3.
            if v.len() != 4 {
                return Err(bad_cap(code, v.len()));
            }
            Capability::FourOctetAs(r.u32().unwrap_or(0))
        }
        cap::GRACEFUL_RESTART => {
            // RFC 4724 §3: flags (4 bits) + restart time (12 bits), then
            // (AFI, SAFI, flags) tuples.
            if v.len() < 2 || !(v.len() - 2).is_multiple_of(4) {
                return Err(bad_cap(code, v.len()));
            }
            let word = r.u16().unwrap_or(0);
            let mut families = Vec::with_capacity((v.len() - 2) / 4);
            while let (Some(afi), Some(safi), Some(flags)) = (r.u16(), r.u8(), r.u8()) {
                if let Some(f) = family(afi, safi) {
                    families.push((f, flags & 0x80 != 0));
                }
            }
            Capability::GracefulRestart(GracefulRestartCapability {
                restart_state: word & 0x8000 != 0,
                notification: word & 0x4000 != 0,
                restart_time: word & 0x0fff,
                families,
            })
        }
        _ => unknown(),
    })
}

/// Appends one capability (code, length, value).
fn encode_capability(c: &Capability, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    let code = match c {
        Capability::Multiprotocol(f) => {
            out.extend_from_slice(&f.afi.code().to_be_bytes());
            out.push(0);
            out.push(f.safi.code());
            cap::MULTIPROTOCOL
        }
        Capability::RouteRefresh => cap::ROUTE_REFRESH,
        Capability::ExtendedMessage => cap::EXTENDED_MESSAGE,
        Capability::EnhancedRouteRefresh => cap::ENHANCED_ROUTE_REFRESH,
        Capability::FourOctetAs(a) => {
            out.extend_from_slice(&a.to_be_bytes());
            cap::FOUR_OCTET_AS
        }
        Capability::GracefulRestart(gr) => {
            if gr.restart_time > 0x0fff {
                return Err(EncodeError::Unencodable(format!(
                    "graceful restart time {} (12 bits, at most 4095)",
                    gr.restart_time
                )));
            }
            let mut word = gr.restart_time;
            if gr.restart_state {
                word |= 0x8000;
            }
            if gr.notification {
                word |= 0x4000;
            }
            out.extend_from_slice(&word.to_be_bytes());
            for (f, forwarding) in &gr.families {
                out.extend_from_slice(&f.afi.code().to_be_bytes());
                out.push(f.safi.code());
                out.push(if *forwarding { 0x80 } else { 0 });
            }
            cap::GRACEFUL_RESTART
        }
        Capability::Unknown { code, value } => {
            out.extend_from_slice(value);
            *code
        }
    };
    let len = out.len() - start - 2;
    let len8 = u8::try_from(len).map_err(|_| {
        EncodeError::Unencodable(format!(
            "capability {code} value of {len} bytes (at most 255)"
        ))
    })?;
    if let Some(h) = out.get_mut(start..start + 2) {
        h.copy_from_slice(&[code, len8]);
    }
    Ok(())
}

/// Appends an OPEN body (after the header).
pub(crate) fn encode_open(open: &Open, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.push(open.version);
    out.extend_from_slice(&open.my_as.to_be_bytes());
    out.extend_from_slice(&open.hold_time.to_be_bytes());
    out.extend_from_slice(&open.bgp_identifier.octets());
    let mut caps = Vec::new();
    for c in &open.capabilities {
        encode_capability(c, &mut caps)?;
    }
    if caps.is_empty() {
        out.push(0);
    } else if caps.len() + 2 <= 255 {
        out.push((caps.len() + 2) as u8);
        out.push(param::CAPABILITIES);
        out.push(caps.len() as u8);
        out.extend_from_slice(&caps);
    } else {
        // RFC 9072 §2: extended optional parameters, 2-octet lengths.
        let plen = u16::try_from(caps.len()).map_err(|_| {
            EncodeError::Unencodable(format!("{} bytes of capabilities", caps.len()))
        })?;
        let total = u16::try_from(caps.len() + 3).map_err(|_| {
            EncodeError::Unencodable(format!("{} bytes of capabilities", caps.len()))
        })?;
        out.push(255);
        out.push(param::EXTENDED_LENGTH);
        out.extend_from_slice(&total.to_be_bytes());
        out.push(param::CAPABILITIES);
        out.extend_from_slice(&plen.to_be_bytes());
        out.extend_from_slice(&caps);
    }
    Ok(())
}
