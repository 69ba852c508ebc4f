//! Path attribute decoding with RFC 7606 error handling: every malformed
//! attribute is classified as attribute-discard or treat-as-withdraw exactly as
//! RFC 7606 §7 (and RFC 6793 §6, RFC 8092 §6) say; only an unrecognized
//! well-known attribute resets the session here (RFC 4271 §6.3). MP_REACH_NLRI
//! and MP_UNREACH_NLRI are handled by [`super::update`], which also decides
//! which attributes are mandatory once it knows what NLRI the UPDATE carries.
//!
//! The result, [`ParsedAttrs`], depends only on the attribute bytes, the
//! [`CodecContext`] and the next-hop source, so the UPDATE decoder caches it by
//! those bytes and shares the `Arc<PathAttributes>` between UPDATEs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::types::{AsPath, AsPathSegment, Asns, Origin, PathAttributes, RawAttribute, Segments};

use super::codes::{self, attr, flags, segment};
use super::context::CodecContext;
use super::error::DecodeError;
use super::message::{AS_TRANS, MalformedAttribute, Rfc7606Action};
use super::reader::Reader;

/// One attribute as found on the wire.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawAttr<'a> {
    pub flags: u8,
    pub type_code: u8,
    pub value: &'a [u8],
    /// Flags, type, length and value: the NOTIFICATION data for this attribute.
    pub whole: &'a [u8],
}

/// Walks the path attributes field. Stops (setting `overrun`) when an
/// attribute header or value does not fit: RFC 7606 §4 treat-as-withdraw.
pub(crate) struct AttrIter<'a> {
    r: Reader<'a>,
    pub overrun: bool,
}

impl<'a> AttrIter<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        AttrIter {
            r: Reader::new(bytes),
            overrun: false,
        }
    }
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = RawAttr<'a>;
    fn next(&mut self) -> Option<RawAttr<'a>> {
        if self.r.is_empty() || self.overrun {
            return None;
        }
        let start = self.r.rest();
        let mut r = self.r;
        let parsed = (|| {
            let fl = r.u8()?;
            let t = r.u8()?;
            // RFC 7606 §3 (c): either length size must be accepted for any attribute.
            let len = if fl & flags::EXTENDED_LENGTH != 0 {
                r.u16()?
            } else {
                u16::from(r.u8()?)
            };
            let header = if fl & flags::EXTENDED_LENGTH != 0 {
                4
            } else {
                3
            };
            let value = r.take(usize::from(len))?;
            let whole = start.get(..header + usize::from(len))?;
            Some(RawAttr {
                flags: fl,
                type_code: t,
                value,
                whole,
            })
        })();
        match parsed {
            Some(a) => {
                self.r = r;
                Some(a)
            }
            None => {
                self.overrun = true;
                None
            }
        }
    }
}

/// The Optional and Transitive bits RFC 4271 §5 / the attribute's RFC specify,
/// for the attributes this codec interprets.
pub(crate) fn expected_flags(type_code: u8) -> Option<u8> {
    const WELL_KNOWN: u8 = flags::TRANSITIVE;
    const OPT_NON_TRANS: u8 = flags::OPTIONAL;
    const OPT_TRANS: u8 = flags::OPTIONAL | flags::TRANSITIVE;
    Some(match type_code {
        attr::ORIGIN
        | attr::AS_PATH
        | attr::NEXT_HOP
        | attr::LOCAL_PREF
        | attr::ATOMIC_AGGREGATE => WELL_KNOWN,
        attr::MULTI_EXIT_DISC
        | attr::ORIGINATOR_ID
        | attr::CLUSTER_LIST
        | attr::MP_REACH_NLRI
        | attr::MP_UNREACH_NLRI => OPT_NON_TRANS,
        attr::AGGREGATOR
        | attr::COMMUNITIES
        | attr::EXTENDED_COMMUNITIES
        | attr::AS4_PATH
        | attr::AS4_AGGREGATOR
        | attr::LARGE_COMMUNITY => OPT_TRANS,
        _ => return None,
    })
}

/// Where the next hop of the announced prefixes comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NextHopSource {
    /// The NEXT_HOP attribute (IPv4 NLRI in the NLRI field, or nothing announced).
    Classic,
    /// The MP_REACH_NLRI next hop (RFC 4760 §3, RFC 2545 §3).
    Mp(IpAddr, Option<Ipv6Addr>),
}

/// The attribute part of an UPDATE after RFC 7606 handling.
#[derive(Clone, Debug)]
pub(crate) struct ParsedAttrs {
    pub attrs: Arc<PathAttributes>,
    pub events: Vec<MalformedAttribute>,
    /// An attribute error requires treat-as-withdraw.
    pub withdraw: bool,
    pub has_origin: bool,
    pub has_as_path: bool,
    pub has_next_hop: bool,
}

/// Parses an AS_PATH / AS4_PATH value with `width`-octet ASNs (RFC 4271 §4.3,
/// RFC 6793). Every iteration consumes at least two octets, so it terminates;
/// trailing bytes that do not form a segment make the path malformed.
pub(crate) fn parse_as_path(value: &[u8], width: usize) -> Result<AsPath, &'static str> {
    let mut r = Reader::new(value);
    // Almost every path is one short segment: held inline, no heap block.
    let mut segments = Segments::new();
    while !r.is_empty() {
        let (Some(t), Some(n)) = (r.u8(), r.u8()) else {
            return Err("AS_PATH has trailing bytes after the last segment");
        };
        if n == 0 {
            return Err("AS_PATH segment of length 0");
        }
        let body = r
            .take(usize::from(n) * width)
            .ok_or("AS_PATH segment overruns the attribute")?;
        let asns: Asns = if width == 4 {
            body.chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            body.chunks_exact(2)
                .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
                .collect()
        };
        segments.push(match t {
            segment::AS_SET => AsPathSegment::Set(asns),
            segment::AS_SEQUENCE => AsPathSegment::Sequence(asns),
            segment::AS_CONFED_SEQUENCE => AsPathSegment::ConfedSequence(asns),
            segment::AS_CONFED_SET => AsPathSegment::ConfedSet(asns),
            _ => return Err("AS_PATH segment of unknown type"),
        });
    }
    Ok(AsPath { segments })
}

fn has_confed(p: &AsPath) -> bool {
    p.segments.iter().any(|s| {
        matches!(
            s,
            AsPathSegment::ConfedSequence(_) | AsPathSegment::ConfedSet(_)
        )
    })
}

/// RFC 6793 §4.2.3: rebuild the real path from AS_PATH and AS4_PATH.
pub fn merge_as4_path(as_path: &AsPath, as4: &AsPath) -> AsPath {
    let (n2, n4) = (as_path.path_len(), as4.path_len());
    if n2 < n4 {
        // "the AS4_PATH attribute SHALL be ignored".
        return as_path.clone();
    }
    let mut need = n2 - n4;
    let mut segments = Segments::new();
    for seg in &as_path.segments {
        match seg {
            AsPathSegment::ConfedSequence(_) | AsPathSegment::ConfedSet(_) => {
                segments.push(seg.clone())
            }
            _ if need == 0 => break,
            AsPathSegment::Set(_) => {
                segments.push(seg.clone());
                need -= 1;
            }
            AsPathSegment::Sequence(v) => {
                let take = need.min(v.len());
                segments.push(AsPathSegment::Sequence(
                    v.iter().take(take).copied().collect(),
                ));
                need -= take;
            }
        }
    }
    segments.extend(as4.segments.iter().cloned());
    AsPath { segments }
}

fn be32(v: &[u8]) -> Option<u32> {
    Reader::new(v).u32()
}

struct Builder {
    pa: PathAttributes,
    events: Vec<MalformedAttribute>,
    withdraw: bool,
}

impl Builder {
    fn discard(&mut self, type_code: u8, reason: &'static str) {
        self.events.push(MalformedAttribute {
            type_code,
            action: Rfc7606Action::AttributeDiscard,
            reason,
        });
    }
    fn treat_as_withdraw(&mut self, type_code: u8, reason: &'static str) {
        self.withdraw = true;
        self.events.push(MalformedAttribute {
            type_code,
            action: Rfc7606Action::TreatAsWithdraw,
            reason,
        });
    }
}

/// Parses every attribute except MP_REACH_NLRI/MP_UNREACH_NLRI.
/// `classic_nlri`: the NLRI field is non-empty, so NEXT_HOP is used and checked.
pub(crate) fn parse_attributes(
    bytes: &[u8],
    ctx: &CodecContext,
    nh: NextHopSource,
    classic_nlri: bool,
) -> Result<ParsedAttrs, DecodeError> {
    let mut b = Builder {
        pa: PathAttributes::default(),
        events: Vec::new(),
        withdraw: false,
    };
    let mut seen = [0u64; 4];
    let (mut has_origin, mut has_as_path, mut has_next_hop) = (false, false, false);
    let mut classic_nh: Option<Ipv4Addr> = None;
    let mut as4_path: Option<AsPath> = None;
    let mut as4_aggregator: Option<(u32, Ipv4Addr)> = None;
    let mut iter = AttrIter::new(bytes);
    for a in iter.by_ref() {
        let t = a.type_code;
        let word = usize::from(t / 64);
        let bit = 1u64 << (t % 64);
        let already = seen.get(word).is_some_and(|w| w & bit != 0);
        if let Some(w) = seen.get_mut(word) {
            *w |= bit;
        }
        if t == attr::MP_REACH_NLRI || t == attr::MP_UNREACH_NLRI {
            continue; // handled (duplicates included) by the UPDATE decoder.
        }
        if already {
            // RFC 7606 §3 (g): keep the first occurrence, discard the others.
            b.discard(t, "attribute appears more than once");
            continue;
        }
        match t {
            attr::ORIGIN => has_origin = true,
            attr::AS_PATH => has_as_path = true,
            attr::NEXT_HOP => has_next_hop = true,
            _ => {}
        }
        let Some(expected) = expected_flags(t) else {
            if a.flags & flags::OPTIONAL == 0 {
                // RFC 4271 §6.3; RFC 7606 keeps session reset for this.
                return Err(DecodeError::update(
                    codes::update::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                    a.whole,
                    format!("unrecognized well-known attribute type {t}"),
                ));
            }
            if a.flags & flags::TRANSITIVE != 0 {
                // RFC 4271 §5: passed on (with the Partial bit) by the encoder.
                // Extended Length and the unused low bits (RFC 4271 §4.3) are not kept.
                b.pa.unknown.push(RawAttribute {
                    flags: a.flags & (flags::OPTIONAL | flags::TRANSITIVE | flags::PARTIAL),
                    type_code: t,
                    value: a.value.to_vec(),
                });
            }
            // Unrecognized optional non-transitive: quietly ignored (RFC 4271 §5).
            continue;
        };
        if a.flags & (flags::OPTIONAL | flags::TRANSITIVE) != expected {
            // RFC 7606 §3 (c).
            b.treat_as_withdraw(t, "attribute flags conflict with the attribute type");
            continue;
        }
        let v = a.value;
        match t {
            attr::ORIGIN => match v {
                // RFC 7606 §7.1.
                [0] => b.pa.origin = Origin::Igp,
                [1] => b.pa.origin = Origin::Egp,
                [2] => b.pa.origin = Origin::Incomplete,
                [_] => b.treat_as_withdraw(t, "undefined ORIGIN value"),
                _ => b.treat_as_withdraw(t, "ORIGIN length is not 1"),
            },
            attr::AS_PATH => match parse_as_path(v, ctx.as_width()) {
                // RFC 7606 §7.2.
                Err(reason) => b.treat_as_withdraw(t, reason),
                Ok(p) => {
                    if !ctx.ibgp && has_confed(&p) {
                        // RFC 7606 §7.2, RFC 5065 §5: confederation segments from an external peer.
                        b.treat_as_withdraw(
                            t,
                            "AS_PATH from an external peer has confederation segments",
                        );
                    } else if !ctx.ibgp
                        && ctx.enforce_first_as
                        && ctx.peer_asn != 0
                        && p.neighbor_as() != Some(ctx.peer_asn)
                    {
                        // RFC 4271 §6.3 check, handled as treat-as-withdraw per RFC 7606 §7.2.
                        b.treat_as_withdraw(t, "leftmost AS in AS_PATH is not the peer's AS");
                    }
                    b.pa.as_path = p;
                }
            },
            attr::NEXT_HOP => match be32(v) {
                // RFC 7606 §7.3.
                Some(raw) if v.len() == 4 => {
                    let ip = Ipv4Addr::from(raw);
                    if classic_nlri
                        && (ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast())
                    {
                        // RFC 4271 §6.3 semantic check; the routes are not usable.
                        b.treat_as_withdraw(t, "NEXT_HOP is not a unicast host address");
                    }
                    classic_nh = Some(ip);
                }
                _ => b.treat_as_withdraw(t, "NEXT_HOP length is not 4"),
            },
            attr::MULTI_EXIT_DISC => match be32(v) {
                // RFC 7606 §7.4.
                Some(m) if v.len() == 4 => b.pa.med = Some(m),
                _ => b.treat_as_withdraw(t, "MULTI_EXIT_DISC length is not 4"),
            },
            attr::LOCAL_PREF => {
                if !ctx.ibgp {
                    // RFC 7606 §7.5: from an external peer it is discarded.
                    b.discard(t, "LOCAL_PREF from an external peer");
                } else {
                    match be32(v) {
                        Some(lp) if v.len() == 4 => b.pa.local_pref = Some(lp),
                        _ => b.treat_as_withdraw(t, "LOCAL_PREF length is not 4"),
                    }
                }
            }
            attr::ATOMIC_AGGREGATE => {
                // RFC 7606 §7.6.
                if v.is_empty() {
                    b.pa.atomic_aggregate = true;
                } else {
                    b.discard(t, "ATOMIC_AGGREGATE length is not 0");
                }
            }
            attr::AGGREGATOR => {
                // RFC 7606 §7.7, RFC 6793 §3 for the width.
                let mut r = Reader::new(v);
                let asn = if ctx.four_octet_as {
                    r.u32()
                } else {
                    r.u16().map(u32::from)
                };
                match (asn, r.u32()) {
                    (Some(asn), Some(ip)) if r.is_empty() => {
                        b.pa.aggregator = Some((asn, Ipv4Addr::from(ip)))
                    }
                    _ => b.discard(t, "AGGREGATOR length does not match the AS width"),
                }
            }
            attr::COMMUNITIES => {
                // RFC 7606 §7.8.
                if v.is_empty() || !v.len().is_multiple_of(4) {
                    b.treat_as_withdraw(t, "COMMUNITIES length is not a non-zero multiple of 4");
                } else {
                    b.pa.communities = v
                        .chunks_exact(4)
                        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                }
            }
            attr::ORIGINATOR_ID => match be32(v) {
                // RFC 7606 §7.9.
                Some(id) if v.len() == 4 => b.pa.originator_id = Some(Ipv4Addr::from(id)),
                _ => b.treat_as_withdraw(t, "ORIGINATOR_ID length is not 4"),
            },
            attr::CLUSTER_LIST => {
                // RFC 7606 §7.10.
                if v.is_empty() || !v.len().is_multiple_of(4) {
                    b.treat_as_withdraw(t, "CLUSTER_LIST length is not a non-zero multiple of 4");
                } else {
                    b.pa.cluster_list = v
                        .chunks_exact(4)
                        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                        .collect();
                }
            }
            attr::EXTENDED_COMMUNITIES => {
                // RFC 7606 §7.14.
                if v.is_empty() || !v.len().is_multiple_of(8) {
                    b.treat_as_withdraw(
                        t,
                        "EXTENDED_COMMUNITIES length is not a non-zero multiple of 8",
                    );
                } else {
                    b.pa.extended_communities = v
                        .chunks_exact(8)
                        .map(|c| {
                            let mut e = [0u8; 8];
                            e.copy_from_slice(c);
                            e
                        })
                        .collect();
                }
            }
            attr::LARGE_COMMUNITY => {
                // RFC 8092 §6.
                if v.is_empty() || !v.len().is_multiple_of(12) {
                    b.treat_as_withdraw(
                        t,
                        "LARGE_COMMUNITY length is not a non-zero multiple of 12",
                    );
                } else {
                    b.pa.large_communities = v
                        .chunks_exact(12)
                        .map(|c| {
                            [
                                u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                                u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                                u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
                            ]
                        })
                        .collect();
                }
            }
            attr::AS4_PATH => {
                // RFC 6793 §6: errors in AS4_PATH are attribute discard.
                if ctx.four_octet_as {
                    b.discard(t, "AS4_PATH from a 4-octet AS speaker");
                } else {
                    match parse_as_path(v, 4) {
                        Err(reason) => b.discard(t, reason),
                        Ok(p) if has_confed(&p) => {
                            b.discard(t, "AS4_PATH has confederation segments")
                        }
                        Ok(p) => as4_path = Some(p),
                    }
                }
            }
            attr::AS4_AGGREGATOR => {
                if ctx.four_octet_as {
                    b.discard(t, "AS4_AGGREGATOR from a 4-octet AS speaker");
                } else {
                    let mut r = Reader::new(v);
                    match (r.u32(), r.u32()) {
                        (Some(asn), Some(ip)) if r.is_empty() => {
                            as4_aggregator = Some((asn, Ipv4Addr::from(ip)))
                        }
                        _ => b.discard(t, "AS4_AGGREGATOR length is not 8"),
                    }
                }
            }
            _ => {}
        }
    }
    if iter.overrun {
        // RFC 7606 §4: an attribute runs past the Total Path Attribute Length.
        b.treat_as_withdraw(0, "path attribute overruns the attributes field");
    }
    // RFC 6793 §4.2.3: AGGREGATOR decides whether AS4_* are used.
    if !ctx.four_octet_as {
        let mut use_as4 = true;
        match b.pa.aggregator {
            Some((asn, _)) if asn != u32::from(AS_TRANS) => use_as4 = false,
            Some(_) => {
                if let Some(agg) = as4_aggregator {
                    b.pa.aggregator = Some(agg);
                }
            }
            None => {}
        }
        if use_as4 && let Some(as4) = as4_path {
            b.pa.as_path = merge_as4_path(&b.pa.as_path, &as4);
        }
    }
    match nh {
        NextHopSource::Classic => b.pa.next_hop = classic_nh.map(IpAddr::V4),
        NextHopSource::Mp(addr, ll) => {
            b.pa.next_hop = Some(addr);
            b.pa.link_local_next_hop = ll;
        }
    }
    Ok(ParsedAttrs {
        attrs: Arc::new(b.pa),
        events: b.events,
        withdraw: b.withdraw,
        has_origin,
        has_as_path,
        has_next_hop,
    })
}
