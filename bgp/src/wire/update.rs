//! UPDATE decoding (RFC 4271 §4.3, RFC 4760, RFC 7606, RFC 4724 §2).
//!
//! Data flow for one UPDATE: the lengths are checked (RFC 4271 §6.3); a first
//! walk over the attributes locates MP_REACH_NLRI/MP_UNREACH_NLRI (whose
//! errors are session resets, RFC 7606 §7.11-7.12) and builds the cache key
//! (all other attribute bytes plus the MP next hop) into a reused buffer; a
//! cache hit returns the shared `Arc<PathAttributes>` without parsing, a miss
//! runs [`super::attrs::parse_attributes`]. The prefixes are then counted and
//! pushed into one list per direction, never allocating per prefix (one
//! prefix is held inline: a one-prefix UPDATE allocates no list). Finally the
//! mandatory-attribute checks (which need to know what NLRI is present) and
//! treat-as-withdraw are applied.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::types::{AddressFamily, Afi, Prefixes, Safi};

use super::attrs::{
    AttrIter, NextHopSource, ParsedAttrs, RawAttr, expected_flags, parse_attributes,
};
use super::codes::{self, attr, flags};
use super::context::CodecContext;
use super::error::DecodeError;
use super::message::{MalformedAttribute, Rfc7606Action, Update};
use super::nlri;
use super::reader::Reader;

/// How many distinct attribute sets the decoder remembers. Feeds send runs of
/// UPDATEs with the same attributes; a few slots catch interleaved runs.
const CACHE_SLOTS: usize = 8;
/// Attribute fields larger than this are parsed but not cached.
const MAX_CACHED_KEY: usize = 4096;

/// Decoding counters, e.g. for a bench or metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecoderStats {
    pub attribute_cache_hits: u64,
    pub attribute_cache_misses: u64,
}

struct CacheEntry {
    /// [`key_hash`] of `key`: compared first, so a miss (a peer with an
    /// attribute set per UPDATE) costs eight integer compares, not eight
    /// `memcmp` calls.
    hash: u64,
    key: Vec<u8>,
    parsed: ParsedAttrs,
}

/// A cheap hash of a cache key (8-byte words, multiply and rotate): only a
/// filter in front of the byte compare, so a collision costs a `memcmp`,
/// never a wrong match.
fn key_hash(key: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = key.len() as u64;
    let mut words = key.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(b)).wrapping_mul(K);
    }
    let mut b = [0u8; 8];
    let rest = words.remainder();
    b[..rest.len()].copy_from_slice(rest);
    (h.rotate_left(5) ^ u64::from_le_bytes(b)).wrapping_mul(K)
}

/// A per-session decoder: [`super::decode`] plus a small cache of parsed
/// attribute sets keyed by their raw bytes, so UPDATEs that repeat the same
/// attributes share one `Arc<PathAttributes>` and are not re-parsed.
#[derive(Default)]
pub struct Decoder {
    cache: Vec<CacheEntry>,
    next_slot: usize,
    key: Vec<u8>,
    ctx: Option<CodecContext>,
    stats: DecoderStats,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("cached", &self.cache.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// MP_REACH_NLRI after its header was checked.
struct MpReach<'a> {
    family: Option<AddressFamily>,
    next_hop: Option<(IpAddr, Option<Ipv6Addr>)>,
    nlri: &'a [u8],
    /// AFI, SAFI, next-hop length and next hop: the part that goes in the cache key.
    key_part: &'a [u8],
    whole: &'a [u8],
    bad_flags: bool,
}

struct MpUnreach<'a> {
    family: Option<AddressFamily>,
    nlri: &'a [u8],
    whole: &'a [u8],
    bad_flags: bool,
}

fn family(afi: u16, safi: u8) -> Option<AddressFamily> {
    Some(AddressFamily {
        afi: Afi::from_code(afi)?,
        safi: Safi::from_code(safi)?,
    })
}

fn optional_attribute_error(a: &RawAttr<'_>, why: impl Into<String>) -> DecodeError {
    // RFC 4760 §7 names Optional Attribute Error; RFC 7606 §7.11 keeps the reset.
    DecodeError::update(codes::update::OPTIONAL_ATTRIBUTE_ERROR, a.whole, why)
}

fn bad_flags(a: &RawAttr<'_>) -> bool {
    expected_flags(a.type_code)
        .is_some_and(|e| a.flags & (flags::OPTIONAL | flags::TRANSITIVE) != e)
}

/// RFC 4760 §3 and RFC 2545 §3 / RFC 8950 §3 next-hop lengths.
fn mp_next_hop(afi: Afi, nh: &[u8]) -> Option<(IpAddr, Option<Ipv6Addr>)> {
    let v6 = |b: &[u8]| -> Option<Ipv6Addr> { <[u8; 16]>::try_from(b).ok().map(Ipv6Addr::from) };
    match (afi, nh.len()) {
        (Afi::Ipv4, 4) => <[u8; 4]>::try_from(nh)
            .ok()
            .map(|a| (IpAddr::V4(Ipv4Addr::from(a)), None)),
        (_, 16) => v6(nh).map(|a| (IpAddr::V6(a), None)),
        (_, 32) => {
            let (g, ll) = nh.split_at_checked(16)?;
            Some((IpAddr::V6(v6(g)?), Some(v6(ll)?)))
        }
        _ => None,
    }
}

fn parse_mp_reach<'a>(a: &RawAttr<'a>) -> Result<MpReach<'a>, DecodeError> {
    let mut r = Reader::new(a.value);
    let (Some(afi), Some(safi), Some(nh_len)) = (r.u16(), r.u8(), r.u8()) else {
        return Err(optional_attribute_error(a, "MP_REACH_NLRI too short"));
    };
    let Some(nh) = r.take(usize::from(nh_len)) else {
        return Err(optional_attribute_error(
            a,
            "MP_REACH_NLRI next hop overruns the attribute",
        ));
    };
    // RFC 4760 §3: one Reserved octet before the NLRI.
    if r.u8().is_none() {
        return Err(optional_attribute_error(
            a,
            "MP_REACH_NLRI has no Reserved octet",
        ));
    }
    let fam = family(afi, safi);
    let next_hop = match fam {
        Some(f) => Some(mp_next_hop(f.afi, nh).ok_or_else(|| {
            // RFC 7606 §7.11: an inconsistent next-hop length is a session reset.
            optional_attribute_error(
                a,
                format!(
                    "MP_REACH_NLRI next hop of {} bytes for {:?}",
                    nh.len(),
                    f.afi
                ),
            )
        })?),
        None => None,
    };
    let key_part = a.value.get(..4 + usize::from(nh_len)).unwrap_or_default();
    Ok(MpReach {
        family: fam,
        next_hop,
        nlri: r.rest(),
        key_part,
        whole: a.whole,
        bad_flags: bad_flags(a),
    })
}

fn parse_mp_unreach<'a>(a: &RawAttr<'a>) -> Result<MpUnreach<'a>, DecodeError> {
    let mut r = Reader::new(a.value);
    let (Some(afi), Some(safi)) = (r.u16(), r.u8()) else {
        return Err(optional_attribute_error(a, "MP_UNREACH_NLRI too short"));
    };
    Ok(MpUnreach {
        family: family(afi, safi),
        nlri: r.rest(),
        whole: a.whole,
        bad_flags: bad_flags(a),
    })
}

fn malformed_list(why: &str) -> DecodeError {
    DecodeError::update(codes::update::MALFORMED_ATTRIBUTE_LIST, &[], why)
}

impl Decoder {
    pub fn new() -> Self {
        Decoder::default()
    }

    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Decodes one whole message (header included), as [`super::decode`] does.
    pub fn decode(
        &mut self,
        msg: &[u8],
        ctx: &CodecContext,
    ) -> Result<super::Message, DecodeError> {
        super::frame::decode_with(self, msg, ctx)
    }

    /// Decodes an UPDATE body (after the 19-byte header).
    pub(crate) fn decode_update(
        &mut self,
        body: &[u8],
        ctx: &CodecContext,
    ) -> Result<Update, DecodeError> {
        let mut r = Reader::new(body);
        // RFC 4271 §6.3: lengths inconsistent with the message: Malformed Attribute List.
        let wlen = r.u16().ok_or_else(|| malformed_list("UPDATE too short"))?;
        let withdrawn_bytes = r
            .take(usize::from(wlen))
            .ok_or_else(|| malformed_list("Withdrawn Routes Length exceeds the message"))?;
        let alen = r
            .u16()
            .ok_or_else(|| malformed_list("no Total Path Attribute Length"))?;
        let attr_bytes = r
            .take(usize::from(alen))
            .ok_or_else(|| malformed_list("Total Path Attribute Length exceeds the message"))?;
        let nlri_bytes = r.rest();
        let classic_nlri = !nlri_bytes.is_empty();

        // RFC 4724 §2: an UPDATE with nothing in it is the IPv4 unicast End-of-RIB.
        if withdrawn_bytes.is_empty() && attr_bytes.is_empty() && !classic_nlri {
            return Ok(Update {
                end_of_rib: Some(AddressFamily::IPV4_UNICAST),
                ..Update::default()
            });
        }

        // Walk 1: MP attributes and the cache key.
        self.key.clear();
        self.key.push(u8::from(classic_nlri));
        let mut reach: Option<MpReach<'_>> = None;
        let mut unreach: Option<MpUnreach<'_>> = None;
        let mut n_attrs = 0usize;
        let mut it = AttrIter::new(attr_bytes);
        for a in it.by_ref() {
            n_attrs += 1;
            match a.type_code {
                attr::MP_REACH_NLRI => {
                    if reach.is_some() {
                        // RFC 7606 §3 (g).
                        return Err(malformed_list("MP_REACH_NLRI appears more than once"));
                    }
                    let m = parse_mp_reach(&a)?;
                    // The key holds the family and next hop, not the NLRI.
                    self.key.extend_from_slice(&[0, attr::MP_REACH_NLRI]);
                    self.key.extend_from_slice(m.key_part);
                    reach = Some(m);
                }
                attr::MP_UNREACH_NLRI => {
                    if unreach.is_some() {
                        return Err(malformed_list("MP_UNREACH_NLRI appears more than once"));
                    }
                    unreach = Some(parse_mp_unreach(&a)?);
                }
                _ => self.key.extend_from_slice(a.whole),
            }
        }
        self.key.push(u8::from(it.overrun));

        let nh_source = match &reach {
            Some(MpReach {
                next_hop: Some((nh, ll)),
                ..
            }) if !classic_nlri => NextHopSource::Mp(*nh, *ll),
            _ => NextHopSource::Classic,
        };
        let parsed = self.attributes(attr_bytes, ctx, nh_source, classic_nlri)?;

        // Prefixes: validate and count, then one exact allocation per direction.
        // RFC 7606 §5.3: unparsable NLRI is a session reset.
        let invalid_field = |e: nlri::NlriError, what: &str| {
            DecodeError::update(
                codes::update::INVALID_NETWORK_FIELD,
                &[],
                format!("{what}: {}", e.describe()),
            )
        };
        let n_withdrawn = nlri::count(withdrawn_bytes, Afi::Ipv4)
            .map_err(|e| invalid_field(e, "withdrawn routes"))?;
        let n_announced =
            nlri::count(nlri_bytes, Afi::Ipv4).map_err(|e| invalid_field(e, "NLRI"))?;
        let mut mp_withdrawn = 0;
        if let Some(MpUnreach {
            family: Some(f),
            nlri: b,
            whole,
            ..
        }) = &unreach
        {
            mp_withdrawn = nlri::count(b, f.afi).map_err(|e| {
                DecodeError::update(
                    codes::update::OPTIONAL_ATTRIBUTE_ERROR,
                    whole,
                    format!("MP_UNREACH_NLRI: {}", e.describe()),
                )
            })?;
        }
        let mut mp_announced = 0;
        let mut events = parsed.events.clone();
        let mut mp_reach_usable = false;
        if let Some(MpReach {
            family: Some(f),
            nlri: b,
            whole,
            next_hop,
            ..
        }) = &reach
        {
            mp_announced = nlri::count(b, f.afi).map_err(|e| {
                DecodeError::update(
                    codes::update::OPTIONAL_ATTRIBUTE_ERROR,
                    whole,
                    format!("MP_REACH_NLRI: {}", e.describe()),
                )
            })?;
            // One UPDATE carries one attribute set, so one next hop: MP prefixes
            // next to IPv4 NLRI are only kept when they share the NEXT_HOP.
            mp_reach_usable = !classic_nlri
                || (next_hop.map(|n| n.0) == parsed.attrs.next_hop
                    && next_hop.and_then(|n| n.1).is_none());
            if !mp_reach_usable && mp_announced > 0 {
                events.push(MalformedAttribute {
                    type_code: attr::MP_REACH_NLRI,
                    action: Rfc7606Action::AttributeDiscard,
                    reason: "MP_REACH_NLRI next to IPv4 NLRI with another next hop is not supported",
                });
                mp_announced = 0;
            }
        }

        let mut withdrawn = Prefixes::with_capacity(n_withdrawn + mp_withdrawn);
        nlri::push_all(withdrawn_bytes, Afi::Ipv4, &mut withdrawn)
            .map_err(|e| invalid_field(e, "withdrawn routes"))?;
        if let Some(MpUnreach {
            family: Some(f),
            nlri: b,
            ..
        }) = &unreach
        {
            nlri::push_all(b, f.afi, &mut withdrawn)
                .map_err(|e| invalid_field(e, "MP_UNREACH_NLRI"))?;
        }
        let mut announced = Prefixes::with_capacity(n_announced + mp_announced);
        nlri::push_all(nlri_bytes, Afi::Ipv4, &mut announced)
            .map_err(|e| invalid_field(e, "NLRI"))?;
        if mp_reach_usable
            && let Some(MpReach {
                family: Some(f),
                nlri: b,
                ..
            }) = &reach
        {
            nlri::push_all(b, f.afi, &mut announced)
                .map_err(|e| invalid_field(e, "MP_REACH_NLRI"))?;
        }

        let mut withdraw = parsed.withdraw;
        if let NextHopSource::Mp(nh, _) = nh_source
            && mp_announced > 0
            && (nh.is_unspecified() || nh.is_multicast() || nh == IpAddr::V4(Ipv4Addr::BROADCAST))
        {
            // The same semantic check as for NEXT_HOP (RFC 4271 §6.3): the routes are unusable.
            withdraw = true;
            events.push(MalformedAttribute {
                type_code: attr::MP_REACH_NLRI,
                action: Rfc7606Action::TreatAsWithdraw,
                reason: "MP_REACH_NLRI next hop is not a unicast address",
            });
        }
        for (bad, t) in [
            (
                reach.as_ref().is_some_and(|m| m.bad_flags),
                attr::MP_REACH_NLRI,
            ),
            (
                unreach.as_ref().is_some_and(|m| m.bad_flags),
                attr::MP_UNREACH_NLRI,
            ),
        ] {
            if bad {
                // RFC 7606 §3 (c).
                withdraw = true;
                events.push(MalformedAttribute {
                    type_code: t,
                    action: Rfc7606Action::TreatAsWithdraw,
                    reason: "attribute flags conflict with the attribute type",
                });
            }
        }
        if !announced.is_empty() {
            // RFC 7606 §3 (d): a missing well-known mandatory attribute is
            // treat-as-withdraw; NEXT_HOP is only mandatory for the NLRI field
            // (RFC 4760 §3). LOCAL_PREF is not checked: RFC 7606 does not make
            // its absence an error and the decision process defaults it.
            for (present, t, reason) in [
                (parsed.has_origin, attr::ORIGIN, "ORIGIN is missing"),
                (parsed.has_as_path, attr::AS_PATH, "AS_PATH is missing"),
                (
                    parsed.has_next_hop || !classic_nlri,
                    attr::NEXT_HOP,
                    "NEXT_HOP is missing",
                ),
            ] {
                if !present {
                    withdraw = true;
                    events.push(MalformedAttribute {
                        type_code: t,
                        action: Rfc7606Action::TreatAsWithdraw,
                        reason,
                    });
                }
            }
        }

        // RFC 4724 §2: only an MP_UNREACH_NLRI with no prefixes is End-of-RIB.
        let end_of_rib = match &unreach {
            Some(MpUnreach {
                family: Some(f),
                nlri: b,
                ..
            }) if b.is_empty()
                && n_attrs == 1
                && withdrawn_bytes.is_empty()
                && !classic_nlri
                && !it.overrun =>
            {
                Some(*f)
            }
            _ => None,
        };

        let attributes = if withdraw {
            withdrawn.append(&mut announced);
            None
        } else if announced.is_empty() {
            None
        } else {
            Some(parsed.attrs.clone())
        };
        Ok(Update {
            withdrawn,
            attributes,
            announced,
            end_of_rib,
            malformed: events,
        })
    }

    /// Returns the parsed attributes for the current key, from the cache when possible.
    fn attributes(
        &mut self,
        attr_bytes: &[u8],
        ctx: &CodecContext,
        nh: NextHopSource,
        classic_nlri: bool,
    ) -> Result<ParsedAttrs, DecodeError> {
        if self.ctx.as_ref() != Some(ctx) {
            self.cache.clear();
            self.ctx = Some(ctx.clone());
        }
        let hash = key_hash(&self.key);
        if let Some(e) = self
            .cache
            .iter()
            .find(|e| e.hash == hash && e.key == self.key)
        {
            self.stats.attribute_cache_hits += 1;
            return Ok(e.parsed.clone());
        }
        self.stats.attribute_cache_misses += 1;
        let parsed = parse_attributes(attr_bytes, ctx, nh, classic_nlri)?;
        if self.key.len() <= MAX_CACHED_KEY {
            if self.cache.len() < CACHE_SLOTS {
                self.cache.push(CacheEntry {
                    hash,
                    key: self.key.clone(),
                    parsed: parsed.clone(),
                });
            } else if let Some(slot) = self.cache.get_mut(self.next_slot % CACHE_SLOTS) {
                // Reuse the evicted key's buffer: no allocation once warm.
                slot.hash = hash;
                slot.key.clear();
                slot.key.extend_from_slice(&self.key);
                slot.parsed = parsed.clone();
            }
            self.next_slot = (self.next_slot + 1) % CACHE_SLOTS;
        }
        Ok(parsed)
    }
}
