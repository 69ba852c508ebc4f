//! The `[[peer]]` keys of the session's transport: `source_address`
//! (update-source), `multihop` (TTL) and single-hop BFD (`bfd`,
//! `bfd_interval_ms`, `bfd_multiplier`; RFC 5880/5881).
//!
//! Data flow: `peers::peer` calls [`resolve`] with the raw peer and the
//! resolved peer address (None when that was invalid: the checks that need
//! the family are then skipped); problems go to the [`Locator`] with the
//! key's span, so `tortie check` reports file:line:column.

use std::net::IpAddr;

use crate::error::Locator;
use crate::model::{Bfd, defaults};
use crate::raw::RawPeer;
use crate::validate::int;
use crate::values;

/// What the transport keys resolve to.
pub(crate) struct Transport {
    pub(crate) source_address: Option<IpAddr>,
    pub(crate) multihop: Option<u8>,
    pub(crate) bfd: Option<Bfd>,
}

pub(crate) fn resolve(
    loc: &mut Locator<'_>,
    rp: &RawPeer,
    address: Option<IpAddr>,
    label: &str,
) -> Transport {
    let source_address = rp.source_address.as_ref().and_then(|v| {
        let a = match values::ip("peer.source_address", v.get_ref()) {
            Ok(a) => a,
            Err((m, h)) => {
                loc.at(v.span(), m, &h);
                return None;
            }
        };
        if !values::unicast(a) {
            loc.at(
                v.span(),
                format!("{label}: source_address {a} cannot be a session's source"),
                "give one of this node's unicast addresses, on the interface that reaches the peer",
            );
            return None;
        }
        if let Some(p) = address
            && p.is_ipv4() != a.is_ipv4()
        {
            loc.at(
                v.span(),
                format!("{label}: source_address {a} is not of the peer's address family"),
                "a session runs over one family: give an IPv4 source for an IPv4 peer, IPv6 for IPv6",
            );
            return None;
        }
        Some(a)
    });
    let multihop = rp.multihop.as_ref().and_then(|v| {
        let n = *v.get_ref();
        match u8::try_from(n) {
            Ok(h) if h >= 1 => Some(h),
            _ => {
                loc.at(
                    v.span(),
                    format!("{label}: multihop {n} is not a TTL"),
                    "1 to 255: the peer is at most this many hops away (1: directly connected, the eBGP default)",
                );
                None
            }
        }
    });
    if let (Some(m), Some(t)) = (&rp.multihop, &rp.ttl_security)
        && !matches!(t.get_ref(), crate::raw::TtlSecurity::Bool(false))
    {
        loc.at(
            m.span(),
            format!("{label}: multihop and ttl_security are both set"),
            "GTSM (ttl_security) always sends TTL 255 and takes the hop count itself: keep one of the two",
        );
    }
    let enabled = rp.bfd.as_ref().is_some_and(|v| *v.get_ref());
    let interval = int(
        loc,
        &rp.bfd_interval_ms,
        defaults::BFD_INTERVAL_MS,
        |n| (10..=60_000).contains(&n),
        |n| format!("{label}: bfd_interval_ms {n} is out of range"),
        "10 to 60000 milliseconds; 300 (the default) with bfd_multiplier 3 detects a failure in under a second",
    );
    let multiplier = int(
        loc,
        &rp.bfd_multiplier,
        defaults::BFD_MULTIPLIER,
        |n| (1..=255).contains(&n),
        |n| format!("{label}: bfd_multiplier {n} is out of range"),
        "1 to 255 missed packets before the session is declared down; 3 is usual",
    );
    if !enabled {
        for (key, field) in [
            ("bfd_interval_ms", &rp.bfd_interval_ms),
            ("bfd_multiplier", &rp.bfd_multiplier),
        ] {
            if let Some(v) = field {
                loc.at(
                    v.span(),
                    format!("{label}: {key} is set but BFD is off"),
                    "add bfd = true to this [[peer]], or remove the key",
                );
            }
        }
    }
    if enabled && let Some(v) = &rp.bfd {
        let hops = multihop.unwrap_or(1);
        let gtsm_hops = match rp.ttl_security.as_ref().map(|t| *t.get_ref()) {
            Some(crate::raw::TtlSecurity::Hops(h)) => h,
            _ => 1,
        };
        if hops > 1 || gtsm_hops > 1 {
            loc.at(
                v.span(),
                format!("{label}: BFD is single-hop here, but the peer is configured as more than one hop away"),
                "tortie runs single-hop BFD (RFC 5881) to directly connected peers; multihop BFD (RFC 5883) is not supported: remove bfd or the multihop/ttl_security hop count",
            );
        }
    }
    Transport {
        source_address,
        multihop,
        bfd: enabled.then_some(Bfd {
            interval_ms: interval,
            multiplier,
        }),
    }
}
