//! Strict parsers for the textual values of the file (addresses, CIDRs,
//! socket addresses, paths), each failing with a message and a hint.
//!
//! Data flow: `validate` hands in a string and a key name; these return the typed
//! value or a `(message, hint)` pair that `validate` records at the value's span.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

pub(crate) type Failure = (String, String);

pub(crate) fn ipv4(key: &str, s: &str) -> Result<Ipv4Addr, Failure> {
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => Ok(a),
        Ok(IpAddr::V6(_)) => Err((
            format!("{key} `{s}` is an IPv6 address; an IPv4 address is needed here"),
            "BGP identifiers are 32 bits (RFC 6286 §2.1), written as an IPv4 address, e.g. \"192.0.2.11\"".into(),
        )),
        Err(_) if s.contains('/') => Err((
            format!("{key} `{s}` is not an address (it has a prefix length)"),
            format!(
                "write the address alone, e.g. \"{}\"",
                s.split('/').next().unwrap_or("192.0.2.11")
            ),
        )),
        Err(_) => Err((
            format!("{key} `{s}` is not a valid IPv4 address"),
            "write four decimal octets, e.g. \"192.0.2.11\"".into(),
        )),
    }
}

pub(crate) fn ip(key: &str, s: &str) -> Result<IpAddr, Failure> {
    s.parse::<IpAddr>().map_err(|_| {
        if s.contains('/') {
            (
                format!("{key} `{s}` is not an address (it has a prefix length)"),
                format!(
                    "write the address alone, e.g. \"{}\"",
                    s.split('/').next().unwrap_or("192.0.2.1")
                ),
            )
        } else {
            (
                format!("{key} `{s}` is not a valid IP address"),
                "e.g. \"192.0.2.1\" or \"2001:db8::1\"".into(),
            )
        }
    })
}

/// `a.b.c.d/len`, strictly (no netmask form, no missing prefix length).
/// Host bits are kept; callers that need a network address check them.
pub(crate) fn cidr(key: &str, s: &str, example: &str) -> Result<Ipv4Network, Failure> {
    let Some((addr, len)) = s.split_once('/') else {
        return Err(match s.parse::<Ipv4Addr>() {
            Ok(_) => (
                format!("{key} `{s}` has no prefix length"),
                format!("add the subnet's prefix length, e.g. \"{s}/24\""),
            ),
            Err(_) => (
                format!("{key} `{s}` is not a CIDR"),
                format!("write an IPv4 address and a prefix length, e.g. {example}"),
            ),
        });
    };
    let addr = ipv4(key, addr).map_err(|(m, _)| {
        (
            m,
            format!("write an IPv4 address and a prefix length, e.g. {example}"),
        )
    })?;
    let digits = !len.is_empty() && len.len() <= 2 && len.bytes().all(|b| b.is_ascii_digit());
    let len = match len.parse::<u8>() {
        Ok(len) if digits && len <= 32 => len,
        _ => {
            return Err((
                format!("{key} `{s}`: prefix length `{len}` is not a number from 0 to 32"),
                format!("e.g. {example}"),
            ));
        }
    };
    Ipv4Network::new(addr, len)
        .map_err(|e| (format!("{key} `{s}`: {e}"), format!("e.g. {example}")))
}

/// `addr/len` of either family, strictly: an IPv4 value goes through [`cidr`];
/// an IPv6 one needs a prefix length of 0 to 128 in decimal digits.
/// Host bits are kept.
pub(crate) fn ip_cidr(key: &str, s: &str, example: &str) -> Result<IpNetwork, Failure> {
    let addr = s.split_once('/').map_or(s, |(a, _)| a);
    let Ok(v6) = addr.parse::<std::net::Ipv6Addr>() else {
        return cidr(key, s, example).map(IpNetwork::V4);
    };
    let Some((_, len)) = s.split_once('/') else {
        return Err((
            format!("{key} `{s}` has no prefix length"),
            format!("add the prefix length, e.g. \"{s}/64\""),
        ));
    };
    let digits = !len.is_empty() && len.len() <= 3 && len.bytes().all(|b| b.is_ascii_digit());
    match len.parse::<u8>() {
        Ok(len) if digits && len <= 128 => Ipv6Network::new(v6, len)
            .map(IpNetwork::V6)
            .map_err(|e| (format!("{key} `{s}`: {e}"), format!("e.g. {example}"))),
        _ => Err((
            format!("{key} `{s}`: prefix length `{len}` is not a number from 0 to 128"),
            format!("e.g. {example}"),
        )),
    }
}

/// The network address of `net` (host bits cleared), either family.
pub(crate) fn ip_network_of(net: IpNetwork) -> IpNetwork {
    IpNetwork::new(net.network(), net.prefix()).unwrap_or(net)
}

pub(crate) fn socket_addr(key: &str, s: &str) -> Result<SocketAddr, Failure> {
    s.parse::<SocketAddr>().map_err(|_| {
        (
            format!("{key} `{s}` is not an address:port"),
            "e.g. \"127.0.0.1:9642\" or \"[::1]:9642\"; \"\" disables".into(),
        )
    })
}

/// A path the daemon uses whatever its working directory: absolute, not empty.
pub(crate) fn absolute_path(key: &str, s: &str, example: &str) -> Result<PathBuf, Failure> {
    let path = PathBuf::from(s);
    if s.is_empty() || !path.is_absolute() {
        return Err((
            format!("{key} `{s}` must be an absolute path"),
            format!("the daemon does not depend on its working directory; e.g. \"{example}\""),
        ));
    }
    Ok(path)
}

/// Whether `a` can be one end of a session: not unspecified, broadcast or
/// multicast (a neighbour's address, a session's source address).
pub(crate) fn unicast(a: std::net::IpAddr) -> bool {
    match a {
        std::net::IpAddr::V4(v4) => {
            !(v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast())
        }
        std::net::IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_is_strict() {
        let ok = cidr("k", "10.0.0.0/26", "x").map(|n| (n.ip(), n.prefix()));
        assert_eq!(ok, Ok((Ipv4Addr::new(10, 0, 0, 0), 26)));
        let keeps_host = cidr("k", "192.0.2.11/24", "x").map(|n| n.ip());
        assert_eq!(keeps_host, Ok(Ipv4Addr::new(192, 0, 2, 11)));
        for bad in [
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "10.0.0.0/255.255.255.0",
            "10.0.0/24",
            "x/8",
            "2001:db8::/64",
        ] {
            assert!(cidr("k", bad, "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn ip_cidr_takes_both_families_strictly() {
        let v6 = ip_cidr("k", "2001:db8:1::11/64", "x").map(|n| (n.ip(), n.prefix()));
        assert_eq!(v6, Ok(("2001:db8:1::11".parse().unwrap(), 64)));
        let v4 = ip_cidr("k", "10.0.0.0/26", "x").map(|n| n.prefix());
        assert_eq!(v4, Ok(26));
        for bad in [
            "2001:db8::",
            "2001:db8::/",
            "2001:db8::/129",
            "2001:db8::/+64",
            "2001:db8::/0064",
            "2001:db8::/ffff::",
            "x/8",
            "10.0.0.0/33",
        ] {
            assert!(ip_cidr("k", bad, "x").is_err(), "{bad}");
        }
    }
}
