//! Framing and message dispatch (RFC 4271 §4.1, §6.1): the header checks
//! shared by [`frame`] (used on the socket buffer) and [`decode`], and
//! [`encode`] for single messages. UPDATE bodies go to [`super::update`],
//! OPEN bodies to [`super::open`]; the small messages are handled here.

use crate::types::{AddressFamily, Afi, Safi};

use super::codes::{self, header};
use super::context::CodecContext;
use super::error::{DecodeError, EncodeError};
use super::message::{
    HEADER_LEN, MAX_MESSAGE_LEN, Message, MessageType, Notification, RouteRefresh,
};
use super::open::{decode_open, encode_open};
use super::reader::Reader;
use super::update::Decoder;

/// Checks a header; returns the message length and type.
fn check_header(buf: &[u8], max_len: usize) -> Result<(usize, MessageType), DecodeError> {
    let mut r = Reader::new(buf);
    let marker: [u8; 16] = r
        .array()
        .ok_or_else(|| DecodeError::bad_length(buf.len(), "shorter than a header"))?;
    if marker != [0xff; 16] {
        return Err(DecodeError::new(
            codes::MESSAGE_HEADER_ERROR,
            header::CONNECTION_NOT_SYNCHRONIZED,
            Vec::new(),
            "marker is not all ones",
        ));
    }
    let len = usize::from(
        r.u16()
            .ok_or_else(|| DecodeError::bad_length(buf.len(), "shorter than a header"))?,
    );
    let ty = r
        .u8()
        .ok_or_else(|| DecodeError::bad_length(buf.len(), "shorter than a header"))?;
    if !(HEADER_LEN..=max_len).contains(&len) {
        return Err(DecodeError::bad_length(
            len,
            &format!("outside {HEADER_LEN}..={max_len}"),
        ));
    }
    let (ty, ok) = match ty {
        // RFC 4271 §6.1: per-type length limits.
        1 => (MessageType::Open, (29..=MAX_MESSAGE_LEN).contains(&len)),
        2 => (MessageType::Update, len >= 23),
        3 => (MessageType::Notification, len >= 21),
        4 => (MessageType::Keepalive, len == HEADER_LEN),
        // RFC 7313 §5: a wrong ROUTE-REFRESH length has its own error, see below.
        5 => (MessageType::RouteRefresh, true),
        other => {
            return Err(DecodeError::new(
                codes::MESSAGE_HEADER_ERROR,
                header::BAD_MESSAGE_TYPE,
                vec![other],
                format!("unknown message type {other}"),
            ));
        }
    };
    if !ok {
        return Err(DecodeError::bad_length(
            len,
            &format!("invalid for {}", ty.name()),
        ));
    }
    Ok((len, ty))
}

/// Finds the first message in `buf`: `Ok(Some(len))` when a whole message of
/// `len` bytes is present, `Ok(None)` when more bytes are needed, or the
/// Message Header Error to send (RFC 4271 §6.1). `max_len` is
/// [`CodecContext::max_message_len`].
pub fn frame(buf: &[u8], max_len: usize) -> Result<Option<usize>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let (len, _) = check_header(buf, max_len)?;
    Ok((buf.len() >= len).then_some(len))
}

/// Decodes one whole message (header included). For UPDATE streams prefer a
/// per-session [`Decoder`], which shares attribute sets between UPDATEs.
pub fn decode(msg: &[u8], ctx: &CodecContext) -> Result<Message, DecodeError> {
    Decoder::new().decode(msg, ctx)
}

pub(crate) fn decode_with(
    dec: &mut Decoder,
    msg: &[u8],
    ctx: &CodecContext,
) -> Result<Message, DecodeError> {
    let (len, ty) = check_header(msg, ctx.max_message_len())?;
    if len != msg.len() {
        return Err(DecodeError::bad_length(
            len,
            &format!("header says {len} bytes but the frame has {}", msg.len()),
        ));
    }
    let body = msg.get(HEADER_LEN..).unwrap_or_default();
    Ok(match ty {
        MessageType::Open => Message::Open(decode_open(body)?),
        MessageType::Update => Message::Update(dec.decode_update(body, ctx)?),
        MessageType::Notification => {
            let mut r = Reader::new(body);
            let (Some(code), Some(subcode)) = (r.u8(), r.u8()) else {
                return Err(DecodeError::bad_length(len, "NOTIFICATION too short"));
            };
            Message::Notification(Notification {
                code,
                subcode,
                data: r.rest().to_vec(),
            })
        }
        MessageType::Keepalive => Message::Keepalive,
        MessageType::RouteRefresh => {
            if body.len() != 4 {
                // RFC 7313 §5: data is the complete message.
                return Err(DecodeError::new(
                    codes::ROUTE_REFRESH_MESSAGE_ERROR,
                    codes::route_refresh::INVALID_MESSAGE_LENGTH,
                    msg.to_vec(),
                    format!("ROUTE-REFRESH of {len} bytes (must be 23)"),
                ));
            }
            let mut r = Reader::new(body);
            let afi = r.u16().unwrap_or(0);
            let subtype = r.u8().unwrap_or(0);
            let safi = r.u8().unwrap_or(0);
            let family = match (Afi::from_code(afi), Safi::from_code(safi)) {
                (Some(afi), Some(safi)) => AddressFamily { afi, safi },
                // RFC 2918 §4: an AFI/SAFI not advertised is ignored.
                _ => {
                    return Err(DecodeError::ignorable(format!(
                        "ROUTE-REFRESH for AFI {afi} SAFI {safi}"
                    )));
                }
            };
            if subtype > 2 {
                // RFC 7313 §5: unknown subtypes are ignored.
                return Err(DecodeError::ignorable(format!(
                    "ROUTE-REFRESH subtype {subtype}"
                )));
            }
            Message::RouteRefresh(RouteRefresh { family, subtype })
        }
    })
}

/// Appends one encoded message to `out`. An UPDATE must fit in one message
/// (use [`super::encode_updates`] to split); OPEN and KEEPALIVE never exceed
/// 4096 bytes (RFC 8654 §4). On error `out` is left as it was.
pub fn encode(msg: &Message, ctx: &CodecContext, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&[0, 0, msg.message_type() as u8]);
    let r = match msg {
        Message::Open(o) => encode_open(o, out),
        Message::Update(u) => super::pack::encode_update_body(u, ctx, out),
        Message::Notification(n) => {
            out.push(n.code);
            out.push(n.subcode);
            out.extend_from_slice(&n.data);
            Ok(())
        }
        Message::Keepalive => Ok(()),
        Message::RouteRefresh(rr) => {
            out.extend_from_slice(&rr.family.afi.code().to_be_bytes());
            out.push(rr.subtype);
            out.push(rr.family.safi.code());
            Ok(())
        }
    };
    let max = match msg {
        Message::Open(_) | Message::Keepalive => MAX_MESSAGE_LEN,
        _ => ctx.max_message_len(),
    };
    let len = out.len() - start;
    let r = r.and_then(|()| {
        if len > max {
            Err(EncodeError::TooLong {
                what: msg.message_type().name(),
                len,
                max,
            })
        } else {
            Ok(())
        }
    });
    match r {
        Ok(()) => {
            if let Some(l) = out.get_mut(start + 16..start + 18) {
                l.copy_from_slice(&(len as u16).to_be_bytes());
            }
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}
