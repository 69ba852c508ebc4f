//! UPDATE encoding: path attributes (RFC 4271 §4.3, §5; RFC 6793 §4.2.2 for
//! 2-octet AS peers) and the packer that splits prefixes over as many UPDATEs
//! as needed to stay within the negotiated maximum length (RFC 4271 §4.1,
//! RFC 8654). IPv4 unicast goes in the classic NLRI/Withdrawn fields with
//! NEXT_HOP, IPv6 unicast in MP_REACH_NLRI/MP_UNREACH_NLRI (RFC 4760), which
//! is placed first (RFC 7606 §5.1). Every length is checked, never wrapped.

use std::net::IpAddr;

use crate::types::{AddressFamily, Afi, AsPath, AsPathSegment, Origin, PathAttributes, Prefix};

use super::codes::{attr, flags, segment};
use super::context::CodecContext;
use super::error::EncodeError;
use super::message::{AS_TRANS, HEADER_LEN, Update};
use super::nlri;

/// Fixed part of an UPDATE: header, Withdrawn Routes Length, Total Path Attribute Length.
const UPDATE_OVERHEAD: usize = HEADER_LEN + 4;

/// Appends one attribute, with the Extended Length bit when the value needs it.
fn put_attr(out: &mut Vec<u8>, fl: u8, type_code: u8, value: &[u8]) -> Result<(), EncodeError> {
    if value.len() > 255 {
        let len = u16::try_from(value.len()).map_err(|_| {
            EncodeError::Unencodable(format!(
                "attribute {type_code} of {} bytes (at most 65535)",
                value.len()
            ))
        })?;
        out.extend_from_slice(&[fl | flags::EXTENDED_LENGTH, type_code]);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.extend_from_slice(&[fl & !flags::EXTENDED_LENGTH, type_code, value.len() as u8]);
    }
    out.extend_from_slice(value);
    Ok(())
}

fn as_path_value(path: &AsPath, width: usize, skip_confed: bool) -> Vec<u8> {
    let mut v = Vec::new();
    for seg in &path.segments {
        let (t, asns) = match seg {
            AsPathSegment::Set(a) => (segment::AS_SET, a),
            AsPathSegment::Sequence(a) => (segment::AS_SEQUENCE, a),
            AsPathSegment::ConfedSequence(a) => (segment::AS_CONFED_SEQUENCE, a),
            AsPathSegment::ConfedSet(a) => (segment::AS_CONFED_SET, a),
        };
        if skip_confed && (t == segment::AS_CONFED_SEQUENCE || t == segment::AS_CONFED_SET) {
            continue;
        }
        // RFC 4271 §4.3: a segment holds at most 255 ASNs; longer ones are split.
        for chunk in asns.chunks(255) {
            v.push(t);
            v.push(chunk.len() as u8);
            for &a in chunk {
                if width == 4 {
                    v.extend_from_slice(&a.to_be_bytes());
                } else {
                    // RFC 6793 §4.2.2: non-mappable ASNs become AS_TRANS.
                    let a16 = u16::try_from(a).unwrap_or(AS_TRANS);
                    v.extend_from_slice(&a16.to_be_bytes());
                }
            }
        }
    }
    v
}

fn has_wide_asn(path: &AsPath) -> bool {
    path.segments.iter().any(|s| match s {
        AsPathSegment::Set(a) | AsPathSegment::Sequence(a) => a.iter().any(|&x| x > 0xffff),
        // Confederation segments are not carried in AS4_PATH (RFC 6793 §3).
        AsPathSegment::ConfedSequence(_) | AsPathSegment::ConfedSet(_) => false,
    })
}

/// Types the encoder writes itself; `unknown` entries with these codes are skipped.
fn generated(type_code: u8) -> bool {
    matches!(type_code, 1..=10 | 14..=18 | attr::LARGE_COMMUNITY)
}

/// The attributes common to every UPDATE of a set, split around NEXT_HOP so
/// that IPv4 UPDATEs list attributes in type order: `(before, after)`.
pub(crate) fn encode_attributes(
    pa: &PathAttributes,
    ctx: &CodecContext,
) -> Result<(Vec<u8>, Vec<u8>), EncodeError> {
    const WK: u8 = flags::TRANSITIVE;
    const ONT: u8 = flags::OPTIONAL;
    const OT: u8 = flags::OPTIONAL | flags::TRANSITIVE;
    let mut pre = Vec::with_capacity(64);
    let origin = match pa.origin {
        Origin::Igp => 0,
        Origin::Egp => 1,
        Origin::Incomplete => 2,
    };
    put_attr(&mut pre, WK, attr::ORIGIN, &[origin])?;
    put_attr(
        &mut pre,
        WK,
        attr::AS_PATH,
        &as_path_value(&pa.as_path, ctx.as_width(), false),
    )?;

    let mut post = Vec::with_capacity(64);
    if let Some(med) = pa.med {
        put_attr(&mut post, ONT, attr::MULTI_EXIT_DISC, &med.to_be_bytes())?;
    }
    // RFC 4271 §5.1.5: LOCAL_PREF only to internal peers.
    if ctx.ibgp
        && let Some(lp) = pa.local_pref
    {
        put_attr(&mut post, WK, attr::LOCAL_PREF, &lp.to_be_bytes())?;
    }
    if pa.atomic_aggregate {
        put_attr(&mut post, WK, attr::ATOMIC_AGGREGATE, &[])?;
    }
    let mut as4_aggregator = None;
    if let Some((asn, ip)) = pa.aggregator {
        let mut v = Vec::with_capacity(8);
        if ctx.four_octet_as {
            v.extend_from_slice(&asn.to_be_bytes());
        } else {
            // RFC 6793 §4.2.2: a non-mappable aggregator AS goes in AS4_AGGREGATOR.
            // We do the same whenever AS4_PATH is sent: a receiver ignores
            // AS4_PATH next to an AGGREGATOR that is not AS_TRANS (§4.2.3).
            let a16 = match u16::try_from(asn) {
                Ok(a) if !has_wide_asn(&pa.as_path) => a,
                _ => {
                    as4_aggregator = Some((asn, ip));
                    AS_TRANS
                }
            };
            v.extend_from_slice(&a16.to_be_bytes());
        }
        v.extend_from_slice(&ip.octets());
        put_attr(&mut post, OT, attr::AGGREGATOR, &v)?;
    }
    if !pa.communities.is_empty() {
        let v: Vec<u8> = pa
            .communities
            .iter()
            .flat_map(|c| c.to_be_bytes())
            .collect();
        put_attr(&mut post, OT, attr::COMMUNITIES, &v)?;
    }
    // RFC 4456 §8: route reflection attributes stay inside the AS.
    if ctx.ibgp {
        if let Some(id) = pa.originator_id {
            put_attr(&mut post, ONT, attr::ORIGINATOR_ID, &id.octets())?;
        }
        if !pa.cluster_list.is_empty() {
            let v: Vec<u8> = pa.cluster_list.iter().flat_map(|c| c.octets()).collect();
            put_attr(&mut post, ONT, attr::CLUSTER_LIST, &v)?;
        }
    }
    if !pa.extended_communities.is_empty() {
        let v: Vec<u8> = pa.extended_communities.iter().flatten().copied().collect();
        put_attr(&mut post, OT, attr::EXTENDED_COMMUNITIES, &v)?;
    }
    if !ctx.four_octet_as {
        // RFC 6793 §4.2.2: the real path and aggregator for 2-octet AS peers.
        if has_wide_asn(&pa.as_path) {
            put_attr(
                &mut post,
                OT,
                attr::AS4_PATH,
                &as_path_value(&pa.as_path, 4, true),
            )?;
        }
        if let Some((asn, ip)) = as4_aggregator {
            let mut v = asn.to_be_bytes().to_vec();
            v.extend_from_slice(&ip.octets());
            put_attr(&mut post, OT, attr::AS4_AGGREGATOR, &v)?;
        }
    }
    if !pa.large_communities.is_empty() {
        let v: Vec<u8> = pa
            .large_communities
            .iter()
            .flatten()
            .flat_map(|x| x.to_be_bytes())
            .collect();
        put_attr(&mut post, OT, attr::LARGE_COMMUNITY, &v)?;
    }
    let mut seen = [false; 256];
    for u in &pa.unknown {
        // RFC 4271 §5: unrecognized optional transitive attributes are passed on
        // with the Partial bit; non-transitive ones are not passed on. Each
        // type at most once (RFC 4271 §5).
        let transitive_optional =
            u.flags & flags::OPTIONAL != 0 && u.flags & flags::TRANSITIVE != 0;
        let dup = seen.get(usize::from(u.type_code)).copied().unwrap_or(true);
        if let Some(x) = seen.get_mut(usize::from(u.type_code)) {
            *x = true;
        }
        if transitive_optional && !generated(u.type_code) && !dup {
            put_attr(
                &mut post,
                (u.flags & (flags::OPTIONAL | flags::TRANSITIVE)) | flags::PARTIAL,
                u.type_code,
                &u.value,
            )?;
        }
    }
    Ok((pre, post))
}

fn check_family(ctx: &CodecContext, f: AddressFamily) -> Result<(), EncodeError> {
    if ctx.families.contains(&f) {
        Ok(())
    } else {
        Err(EncodeError::Unencodable(format!(
            "{f:?}: family not negotiated with this peer (RFC 4760 §8)"
        )))
    }
}

/// The MP_REACH_NLRI next-hop field (RFC 4760 §3, RFC 2545 §3).
fn mp_next_hop(pa: &PathAttributes) -> Result<Vec<u8>, EncodeError> {
    let global = match pa.next_hop {
        Some(IpAddr::V6(a)) => a,
        Some(IpAddr::V4(a)) => a.to_ipv6_mapped(),
        None => {
            return Err(EncodeError::Unencodable(
                "IPv6 prefixes without a next hop".into(),
            ));
        }
    };
    let mut v = global.octets().to_vec();
    if let Some(ll) = pa.link_local_next_hop {
        v.extend_from_slice(&ll.octets());
    }
    Ok(v)
}

fn v4_next_hop(pa: &PathAttributes) -> Result<[u8; 4], EncodeError> {
    match pa.next_hop {
        Some(IpAddr::V4(a)) => Ok(a.octets()),
        Some(IpAddr::V6(a)) => Err(EncodeError::Unencodable(format!(
            "IPv4 prefixes with IPv6 next hop {a} (RFC 8950 is not negotiated)"
        ))),
        None => Err(EncodeError::Unencodable(
            "IPv4 prefixes without a next hop".into(),
        )),
    }
}

/// Starts a message: header with a placeholder length.
fn begin(buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&[0xff; 16]);
    buf.extend_from_slice(&[0, 0, 2]);
}

fn finish(buf: &mut [u8], max: usize) -> Result<(), EncodeError> {
    let len = buf.len();
    if len > max {
        return Err(EncodeError::TooLong {
            what: "update",
            len,
            max,
        });
    }
    let l = u16::try_from(len).map_err(|_| EncodeError::TooLong {
        what: "update",
        len,
        max,
    })?;
    if let Some(h) = buf.get_mut(16..18) {
        h.copy_from_slice(&l.to_be_bytes());
    }
    Ok(())
}

fn write_u16_at(buf: &mut [u8], at: usize, v: usize) -> Result<(), EncodeError> {
    let v = u16::try_from(v)
        .map_err(|_| EncodeError::Unencodable(format!("length field value {v}")))?;
    if let Some(h) = buf.get_mut(at..at + 2) {
        h.copy_from_slice(&v.to_be_bytes());
    }
    Ok(())
}

/// Greedily groups prefixes so each group's encoding fits in `space` bytes.
fn chunks<'a>(
    prefixes: &'a [&'a Prefix],
    space: usize,
) -> impl Iterator<Item = &'a [&'a Prefix]> + 'a {
    let mut rest = prefixes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut used = 0;
        let mut n = 0;
        for p in rest {
            let l = nlri::encoded_len(p);
            if used + l > space {
                break;
            }
            used += l;
            n += 1;
        }
        let n = n.max(1); // space is always checked to hold the largest prefix
        let (head, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        Some(head)
    })
}

/// An MP_UNREACH_NLRI / MP_REACH_NLRI attribute with the given fixed part and prefixes.
fn mp_attr(
    out: &mut Vec<u8>,
    type_code: u8,
    fixed: &[u8],
    prefixes: &[&Prefix],
) -> Result<(), EncodeError> {
    let mut v = Vec::with_capacity(fixed.len() + prefixes.len() * 17);
    v.extend_from_slice(fixed);
    for p in prefixes {
        nlri::write(p, &mut v);
    }
    put_attr(out, flags::OPTIONAL, type_code, &v)
}

fn mp_fixed(f: AddressFamily) -> Vec<u8> {
    let mut v = f.afi.code().to_be_bytes().to_vec();
    v.push(f.safi.code());
    v
}

/// Encodes `update` into as many UPDATE messages as needed, appending each
/// complete message to `out`: withdrawals first, then announcements, then an
/// End-of-RIB marker if `update.end_of_rib` is set. Returns the number of
/// messages appended; on error `out` is left as it was.
pub fn encode_updates(
    update: &Update,
    ctx: &CodecContext,
    out: &mut Vec<Vec<u8>>,
) -> Result<usize, EncodeError> {
    let before = out.len();
    let r = pack(update, ctx, &mut |m| out.push(m.to_vec()));
    if r.is_err() {
        out.truncate(before);
    }
    r
}

/// As [`encode_updates`], but appends the messages back to back to one
/// buffer (e.g. a socket's output queue) without a Vec per message.
pub fn encode_updates_to(
    update: &Update,
    ctx: &CodecContext,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let before = out.len();
    let r = pack(update, ctx, &mut |m| out.extend_from_slice(m));
    if r.is_err() {
        out.truncate(before);
    }
    r
}

fn pack(
    update: &Update,
    ctx: &CodecContext,
    emit: &mut dyn FnMut(&[u8]),
) -> Result<usize, EncodeError> {
    let mut n = 0;
    let max = ctx.max_message_len();
    let mut buf = Vec::new();
    let v4 = |p: &&Prefix| matches!(p, Prefix::V4(_));
    let (w4, w6): (Vec<&Prefix>, Vec<&Prefix>) = update.withdrawn.iter().partition(v4);
    let (a4, a6): (Vec<&Prefix>, Vec<&Prefix>) = update.announced.iter().partition(v4);
    let largest = |afi: Afi| match afi {
        Afi::Ipv4 => 5,
        Afi::Ipv6 => 17,
    };
    if !w4.is_empty() {
        check_family(ctx, AddressFamily::IPV4_UNICAST)?;
        for group in chunks(&w4, max - UPDATE_OVERHEAD) {
            begin(&mut buf);
            buf.extend_from_slice(&[0, 0]);
            for p in group {
                nlri::write(p, &mut buf);
            }
            let wlen = buf.len() - HEADER_LEN - 2;
            write_u16_at(&mut buf, HEADER_LEN, wlen)?;
            buf.extend_from_slice(&[0, 0]);
            finish(&mut buf, max)?;
            emit(&buf);
            n += 1;
        }
    }
    if !w6.is_empty() {
        let f = AddressFamily::IPV6_UNICAST;
        check_family(ctx, f)?;
        let space = max - UPDATE_OVERHEAD - 4 - 3;
        for group in chunks(&w6, space) {
            begin(&mut buf);
            buf.extend_from_slice(&[0, 0, 0, 0]);
            mp_attr(&mut buf, attr::MP_UNREACH_NLRI, &mp_fixed(f), group)?;
            let alen = buf.len() - UPDATE_OVERHEAD;
            write_u16_at(&mut buf, HEADER_LEN + 2, alen)?;
            finish(&mut buf, max)?;
            emit(&buf);
            n += 1;
        }
    }
    if !update.announced.is_empty() {
        let pa = update.attributes.as_deref().ok_or_else(|| {
            EncodeError::Unencodable("announced prefixes without attributes".into())
        })?;
        let (pre, post) = encode_attributes(pa, ctx)?;
        if !a4.is_empty() {
            check_family(ctx, AddressFamily::IPV4_UNICAST)?;
            let mut nh = Vec::with_capacity(7);
            put_attr(
                &mut nh,
                flags::TRANSITIVE,
                attr::NEXT_HOP,
                &v4_next_hop(pa)?,
            )?;
            let fixed = UPDATE_OVERHEAD + pre.len() + nh.len() + post.len();
            let space = max
                .checked_sub(fixed)
                .filter(|s| *s >= largest(Afi::Ipv4))
                .ok_or(EncodeError::TooLong {
                    what: "update attributes",
                    len: fixed + largest(Afi::Ipv4),
                    max,
                })?;
            for group in chunks(&a4, space) {
                begin(&mut buf);
                buf.extend_from_slice(&[0, 0]);
                write_u16_len(&mut buf, pre.len() + nh.len() + post.len())?;
                buf.extend_from_slice(&pre);
                buf.extend_from_slice(&nh);
                buf.extend_from_slice(&post);
                for p in group {
                    nlri::write(p, &mut buf);
                }
                finish(&mut buf, max)?;
                emit(&buf);
                n += 1;
            }
        }
        if !a6.is_empty() {
            let f = AddressFamily::IPV6_UNICAST;
            check_family(ctx, f)?;
            let nh = mp_next_hop(pa)?;
            let mut fixed_mp = mp_fixed(f);
            fixed_mp.push(nh.len() as u8);
            fixed_mp.extend_from_slice(&nh);
            fixed_mp.push(0); // Reserved (RFC 4760 §3)
            let fixed = UPDATE_OVERHEAD + 4 + fixed_mp.len() + pre.len() + post.len();
            let space = max
                .checked_sub(fixed)
                .filter(|s| *s >= largest(Afi::Ipv6))
                .ok_or(EncodeError::TooLong {
                    what: "update attributes",
                    len: fixed + largest(Afi::Ipv6),
                    max,
                })?;
            for group in chunks(&a6, space) {
                begin(&mut buf);
                buf.extend_from_slice(&[0, 0, 0, 0]);
                // RFC 7606 §5.1: MP_REACH_NLRI first.
                mp_attr(&mut buf, attr::MP_REACH_NLRI, &fixed_mp, group)?;
                buf.extend_from_slice(&pre);
                buf.extend_from_slice(&post);
                let alen = buf.len() - UPDATE_OVERHEAD;
                write_u16_at(&mut buf, HEADER_LEN + 2, alen)?;
                finish(&mut buf, max)?;
                emit(&buf);
                n += 1;
            }
        }
    }
    if let Some(f) = update.end_of_rib {
        check_family(ctx, f)?;
        begin(&mut buf);
        end_of_rib_body(f, &mut buf)?;
        finish(&mut buf, max)?;
        emit(&buf);
        n += 1;
    }
    Ok(n)
}

fn write_u16_len(buf: &mut Vec<u8>, v: usize) -> Result<(), EncodeError> {
    let v = u16::try_from(v)
        .map_err(|_| EncodeError::Unencodable(format!("{v} bytes of path attributes")))?;
    buf.extend_from_slice(&v.to_be_bytes());
    Ok(())
}

/// RFC 4724 §2: End-of-RIB is an empty UPDATE for IPv4 unicast and an UPDATE
/// with only an empty MP_UNREACH_NLRI otherwise.
fn end_of_rib_body(f: AddressFamily, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if f == AddressFamily::IPV4_UNICAST {
        out.extend_from_slice(&[0, 0, 0, 0]);
        return Ok(());
    }
    out.extend_from_slice(&[0, 0, 0, 6]);
    put_attr(out, flags::OPTIONAL, attr::MP_UNREACH_NLRI, &mp_fixed(f))
}

/// Encodes an UPDATE body as one message (everything in it), used by
/// [`super::encode`]. `end_of_rib` is only encoded when the UPDATE has no
/// prefixes. The caller checks the total length.
pub(crate) fn encode_update_body(
    u: &Update,
    ctx: &CodecContext,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if u.withdrawn.is_empty() && u.announced.is_empty() {
        return match u.end_of_rib {
            Some(f) => end_of_rib_body(f, out),
            None => Err(EncodeError::EmptyUpdate),
        };
    }
    let v4 = |p: &&Prefix| matches!(p, Prefix::V4(_));
    let (w4, w6): (Vec<&Prefix>, Vec<&Prefix>) = u.withdrawn.iter().partition(v4);
    let (a4, a6): (Vec<&Prefix>, Vec<&Prefix>) = u.announced.iter().partition(v4);
    for (list, f) in [
        (&w4, AddressFamily::IPV4_UNICAST),
        (&w6, AddressFamily::IPV6_UNICAST),
    ] {
        if !list.is_empty() {
            check_family(ctx, f)?;
        }
    }
    for (list, f) in [
        (&a4, AddressFamily::IPV4_UNICAST),
        (&a6, AddressFamily::IPV6_UNICAST),
    ] {
        if !list.is_empty() {
            check_family(ctx, f)?;
        }
    }
    let wstart = out.len();
    out.extend_from_slice(&[0, 0]);
    for p in &w4 {
        nlri::write(p, out);
    }
    let wlen = out.len() - wstart - 2;
    write_u16_at(out, wstart, wlen)?;
    let astart = out.len();
    out.extend_from_slice(&[0, 0]);
    if !w6.is_empty() {
        mp_attr(
            out,
            attr::MP_UNREACH_NLRI,
            &mp_fixed(AddressFamily::IPV6_UNICAST),
            &w6,
        )?;
    }
    if !u.announced.is_empty() {
        let pa = u.attributes.as_deref().ok_or_else(|| {
            EncodeError::Unencodable("announced prefixes without attributes".into())
        })?;
        if !a6.is_empty() {
            let nh = mp_next_hop(pa)?;
            let mut fixed = mp_fixed(AddressFamily::IPV6_UNICAST);
            fixed.push(nh.len() as u8);
            fixed.extend_from_slice(&nh);
            fixed.push(0);
            mp_attr(out, attr::MP_REACH_NLRI, &fixed, &a6)?;
        }
        let (pre, post) = encode_attributes(pa, ctx)?;
        out.extend_from_slice(&pre);
        if !a4.is_empty() {
            put_attr(out, flags::TRANSITIVE, attr::NEXT_HOP, &v4_next_hop(pa)?)?;
        }
        out.extend_from_slice(&post);
    }
    let alen = out.len() - astart - 2;
    write_u16_at(out, astart, alen)?;
    for p in &a4 {
        nlri::write(p, out);
    }
    Ok(())
}
