//! Routing policy: what the node refuses whatever the configuration says
//! ([`guard`]), the RFC 1997 well-known communities, and the operator's
//! named filters ([`filter`]) — all pure functions of a route.
//!
//! Data flow: the RIB calls the guard and the peer's import filter on every
//! announced route before the decision process (a refusal makes the route
//! filtered: kept aside with the reason, not a candidate), and the export
//! rules ([`crate::rib`]'s `export`) call [`well_known_blocks`] and the
//! peer's export filter on every best path before it is advertised. Nothing
//! here keeps state, does IO or knows about sessions.

pub mod filter;
pub mod guard;

pub use filter::{
    Action, Filter, FilterVerdict, Matches, Modifiers, PrefixMatch, RouteAttrs, RouteSource, Rule,
    apply_modifiers, decide, evaluate,
};
pub use guard::{GuardReason, ImportGuard};

/// NO_EXPORT (RFC 1997): not advertised outside the AS (to no eBGP peer).
pub const NO_EXPORT: u32 = 0xFFFF_FF01;
/// NO_ADVERTISE (RFC 1997): advertised to no peer at all.
pub const NO_ADVERTISE: u32 = 0xFFFF_FF02;
/// NO_EXPORT_SUBCONFED (RFC 1997): not outside the member AS; without
/// confederations, the same as NO_EXPORT.
pub const NO_EXPORT_SUBCONFED: u32 = 0xFFFF_FF03;

/// Whether the RFC 1997 well-known communities in `communities` forbid
/// advertising the route to a peer (`ebgp`: an external one).
pub fn well_known_blocks(communities: &[u32], ebgp: bool) -> bool {
    communities.iter().any(|c| match *c {
        NO_ADVERTISE => true,
        NO_EXPORT | NO_EXPORT_SUBCONFED => ebgp,
        _ => false,
    })
}

/// Parses a standard community: `ASN:VALUE` (each 0..=65535) or one of the
/// RFC 1997 names (`no-export`, `no-advertise`, `no-export-subconfed`).
pub fn parse_community(s: &str) -> Result<u32, String> {
    match s.to_ascii_lowercase().replace('_', "-").as_str() {
        "no-export" => return Ok(NO_EXPORT),
        "no-advertise" => return Ok(NO_ADVERTISE),
        "no-export-subconfed" => return Ok(NO_EXPORT_SUBCONFED),
        _ => {}
    }
    let (a, v) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: a community is ASN:VALUE, each 0-65535 (RFC 1997)"))?;
    let part = |x: &str| {
        x.parse::<u16>()
            .map_err(|_| format!("{s:?}: {x:?} is not a number 0-65535 (RFC 1997)"))
    };
    Ok((u32::from(part(a)?) << 16) | u32::from(part(v)?))
}

/// Parses a large community `GLOBAL:LOCAL1:LOCAL2` (each 0..=4294967295, RFC 8092).
pub fn parse_large_community(s: &str) -> Result<[u32; 3], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let [a, b, c] = parts.as_slice() else {
        return Err(format!(
            "{s:?}: a large community is GLOBAL:LOCAL1:LOCAL2 (RFC 8092)"
        ));
    };
    let n = |x: &str| {
        x.parse::<u32>()
            .map_err(|_| format!("{s:?}: {x:?} is not a number 0-4294967295 (RFC 8092)"))
    };
    Ok([n(a)?, n(b)?, n(c)?])
}

/// A standard community as operators write it.
pub fn community_string(c: u32) -> String {
    match c {
        NO_EXPORT => "no-export".into(),
        NO_ADVERTISE => "no-advertise".into(),
        NO_EXPORT_SUBCONFED => "no-export-subconfed".into(),
        c => format!("{}:{}", c >> 16, c & 0xffff),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_table() {
        // (communities, ebgp target, blocked)
        let table: &[(&[u32], bool, bool)] = &[
            (&[], true, false),
            (&[], false, false),
            (&[0xfde8_0001], true, false),
            (&[NO_EXPORT], true, true),
            (&[NO_EXPORT], false, false),
            (&[NO_EXPORT_SUBCONFED], true, true),
            (&[NO_EXPORT_SUBCONFED], false, false),
            (&[NO_ADVERTISE], true, true),
            (&[NO_ADVERTISE], false, true),
            (&[0xfde8_0001, NO_ADVERTISE], false, true),
        ];
        for (c, ebgp, want) in table {
            assert_eq!(well_known_blocks(c, *ebgp), *want, "{c:x?} ebgp={ebgp}");
        }
    }

    #[test]
    fn community_syntax() {
        assert_eq!(parse_community("65000:100"), Ok(0xfde8_0064));
        assert_eq!(parse_community("no-export"), Ok(NO_EXPORT));
        assert_eq!(parse_community("NO_ADVERTISE"), Ok(NO_ADVERTISE));
        assert_eq!(community_string(0xfde8_0064), "65000:100");
        assert_eq!(community_string(NO_EXPORT), "no-export");
        for bad in ["65000", "65536:1", "1:65536", "a:b", "1:2:3", ""] {
            assert!(parse_community(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_large_community("4200000000:1:2"),
            Ok([4_200_000_000, 1, 2])
        );
        for bad in ["1:2", "1:2:3:4", "4294967296:1:1", "x:1:1"] {
            assert!(parse_large_community(bad).is_err(), "{bad}");
        }
    }
}
