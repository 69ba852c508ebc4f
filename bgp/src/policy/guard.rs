//! The import guard: routes no peer may install on this node, whatever the
//! operator's filters say, and next hops no route may use (RFC 4271 §6.3).
//!
//! Data flow: the RIB builds one [`ImportGuard`] from [`crate::rib::RibConfig`]
//! (the node's own blocks and addresses) and asks it about every announced
//! prefix ([`ImportGuard::check_prefix`]) and every received attribute set's
//! NEXT_HOP ([`ImportGuard::check_next_hop`]) before import policy and the
//! decision process. A refusal makes the route filtered: not a candidate,
//! counted, and listed by `tortie routes --filtered` with the reason.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::types::Prefix;

/// Address ranges no route may fall inside (RFC 6890 special-purpose blocks
/// that are never routed between hosts): (network, length, name). Typed, not
/// text: [`ImportGuard::check_prefix`] runs for every announced prefix.
const MARTIANS: &[(IpAddr, u8, &str)] = &[
    (v4(0, 0, 0, 0), 8, "0.0.0.0/8 (this network)"),
    (v4(127, 0, 0, 0), 8, "127.0.0.0/8 (loopback)"),
    (v4(224, 0, 0, 0), 4, "224.0.0.0/4 (multicast)"),
    (v4(240, 0, 0, 0), 4, "240.0.0.0/4 (reserved)"),
    (v6(0, 0, 0), 128, "::/128 (unspecified)"),
    (v6(0, 0, 1), 128, "::1/128 (loopback)"),
    (v6(0, 0xffff, 0), 96, "::ffff:0:0/96 (IPv4-mapped)"),
    (v6(0xfe80, 0, 0), 10, "fe80::/10 (link-local)"),
    (v6(0xff00, 0, 0), 8, "ff00::/8 (multicast)"),
];

const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// An IPv6 address from its first group, its sixth (the IPv4-mapped marker)
/// and its last.
const fn v6(first: u16, sixth: u16, last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(first, 0, 0, 0, 0, sixth, 0, last))
}

/// The index of a martian range's name (for compact storage).
pub(crate) fn martian_index(name: &str) -> u8 {
    MARTIANS
        .iter()
        .position(|(_, _, n)| *n == name)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(u8::MAX)
}

/// The martian range name at `i` (see [`martian_index`]).
pub(crate) fn martian_name(i: u8) -> &'static str {
    MARTIANS.get(usize::from(i)).map_or("?", |(_, _, n)| n)
}

/// What a refused NEXT_HOP is, by [`ImportGuard::check_next_hop`]'s words.
const NEXT_HOP_WORDS: &[&str] = &[
    "this node's own address",
    "a loopback address",
    "the unspecified address",
    "a multicast address",
];

pub(crate) fn next_hop_index(words: &str) -> u8 {
    NEXT_HOP_WORDS
        .iter()
        .position(|w| *w == words)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(u8::MAX)
}

pub(crate) fn next_hop_words(i: u8) -> &'static str {
    NEXT_HOP_WORDS.get(usize::from(i)).copied().unwrap_or("?")
}

/// Why a route was refused before the decision process.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GuardReason {
    /// Equal to or inside one of this node's own pod blocks.
    OwnBlock(Prefix),
    /// A host route for one of this node's own addresses.
    OwnAddress(IpAddr),
    /// A host route for the container gateway.
    Gateway(IpAddr),
    /// Inside a special-purpose range (the name of the range).
    Martian(&'static str),
    /// NEXT_HOP is semantically incorrect (RFC 4271 §6.3): what it is.
    NextHop(IpAddr, &'static str),
}

impl fmt::Display for GuardReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuardReason::OwnBlock(b) => write!(f, "inside this node's pod block {b}"),
            GuardReason::OwnAddress(a) => write!(f, "a route for this node's address {a}"),
            GuardReason::Gateway(a) => write!(f, "a route for the container gateway {a}"),
            GuardReason::Martian(r) => write!(f, "inside {r}"),
            GuardReason::NextHop(a, why) => write!(f, "next hop {a} is {why} (RFC 4271 §6.3)"),
        }
    }
}

/// The node's own prefixes and addresses, the container gateways, and the
/// fixed martian list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportGuard {
    /// The node's pod blocks: nothing equal or more specific is accepted.
    pub own_blocks: Vec<Prefix>,
    /// The node's own addresses: no host route for them, and no NEXT_HOP.
    pub own_addresses: Vec<IpAddr>,
    /// The container gateways (the agent passes the dataplane's, one per
    /// family): no host route for them.
    pub gateways: Vec<IpAddr>,
}

/// `outer` equals `inner` or contains it.
pub fn covers(outer: Prefix, inner: Prefix) -> bool {
    if outer.len() > inner.len() {
        return false;
    }
    match (outer, inner) {
        (Prefix::V4(o), Prefix::V4(i)) => o.contains(i.addr()),
        (Prefix::V6(o), Prefix::V6(i)) => {
            Prefix::new(IpAddr::V6(i.addr()), o.len()) == Some(Prefix::V6(o))
        }
        _ => false,
    }
}

fn host(a: IpAddr) -> Option<Prefix> {
    Prefix::new(a, if a.is_ipv4() { 32 } else { 128 })
}

impl ImportGuard {
    pub fn new(
        own_blocks: Vec<Prefix>,
        own_addresses: Vec<IpAddr>,
        gateways: Vec<IpAddr>,
    ) -> ImportGuard {
        ImportGuard {
            own_blocks,
            own_addresses,
            gateways,
        }
    }

    /// Why `p` may not be imported from a peer, or `None` when it may.
    ///
    /// `p` is taken by reference: the RIB passes the decoder's own copy, so
    /// the check reads memory written long ago. A by-value `Prefix` (20
    /// bytes) is passed through a fresh stack copy whose narrower stores a
    /// wider load cannot forward from; that load then waits for every older
    /// store, the previous route's table insert included, to reach the cache
    /// (14 % of a 1M packed load's samples in perf, issue 15). Most of that
    /// wait then falls on the route's next locked instruction: the gain is
    /// ~5 % at 100k and none at 1M (lab/bench/README.md, session 7 rib lane).
    pub fn check_prefix(&self, p: &Prefix) -> Option<GuardReason> {
        let p = *p;
        if let Some(b) = self.own_blocks.iter().find(|b| covers(**b, p)) {
            return Some(GuardReason::OwnBlock(*b));
        }
        if let Some(a) = self.own_addresses.iter().find(|a| host(**a) == Some(p)) {
            return Some(GuardReason::OwnAddress(*a));
        }
        if let Some(g) = self.gateways.iter().find(|g| host(**g) == Some(p)) {
            return Some(GuardReason::Gateway(*g));
        }
        MARTIANS
            .iter()
            .find(|(net, len, _)| {
                net.is_ipv4() == matches!(p, Prefix::V4(_))
                    && Prefix::new(*net, *len).is_some_and(|m| covers(m, p))
            })
            .map(|(_, _, name)| GuardReason::Martian(name))
    }

    /// Why `nh` is not a usable NEXT_HOP for routes from `peer` over a
    /// session whose local address is `session_local` (RFC 4271 §6.3: an
    /// address of the receiving speaker is semantically incorrect; so are
    /// unspecified and multicast addresses, and loopback ones unless the
    /// peer itself is on a loopback address, i.e. on this host), or `None`
    /// when it is usable.
    pub fn check_next_hop(
        &self,
        nh: IpAddr,
        session_local: IpAddr,
        peer: IpAddr,
    ) -> Option<GuardReason> {
        let i: u8 = if nh == session_local || self.own_addresses.contains(&nh) {
            0
        } else if nh.is_loopback() && !peer.is_loopback() {
            1
        } else if nh.is_unspecified() {
            2
        } else if nh.is_multicast() {
            3
        } else {
            return None;
        };
        Some(GuardReason::NextHop(nh, next_hop_words(i)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn martian_ranges_match_their_names() {
        for (net, len, name) in MARTIANS {
            let text = name.split(' ').next().unwrap();
            assert_eq!(Prefix::new(*net, *len), Some(p(text)), "{name}");
            assert_eq!(martian_name(martian_index(name)), *name);
        }
    }

    fn guard() -> ImportGuard {
        ImportGuard::new(
            vec![p("10.244.1.0/26"), p("fd00:10:244:1::/120")],
            vec![
                "192.0.2.11".parse().unwrap(),
                "2001:db8:1::11".parse().unwrap(),
            ],
            vec![
                "169.254.1.1".parse().unwrap(),
                "fe80::ecee:eeff:feee:eeee".parse().unwrap(),
            ],
        )
    }

    /// (prefix, refused?) — the safe defaults of issue 13.
    #[test]
    fn prefix_table() {
        let g = guard();
        let table: &[(&str, Option<&str>)] = &[
            ("0.0.0.0/0", None),
            ("::/0", None),
            ("10.244.0.0/16", None),
            ("10.244.2.0/26", None),
            ("10.244.1.0/26", Some("block")),
            ("10.244.1.0/27", Some("block")),
            ("10.244.1.5/32", Some("block")),
            ("10.244.1.64/32", None),
            ("fd00:10:244:1::5/128", Some("block")),
            ("fd00:10:244:1::/64", None),
            ("192.0.2.11/32", Some("address")),
            ("192.0.2.0/24", None),
            ("2001:db8:1::11/128", Some("address")),
            ("169.254.1.1/32", Some("gateway")),
            ("fe80::ecee:eeff:feee:eeee/128", Some("gateway")),
            ("127.0.0.0/8", Some("martian")),
            ("127.1.0.0/16", Some("martian")),
            ("0.0.0.0/8", Some("martian")),
            ("0.1.2.0/24", Some("martian")),
            ("224.0.0.0/4", Some("martian")),
            ("239.1.1.1/32", Some("martian")),
            ("240.0.0.0/4", Some("martian")),
            ("255.255.255.255/32", Some("martian")),
            ("128.0.0.0/1", None),
            ("::1/128", Some("martian")),
            ("::/128", Some("martian")),
            ("ff02::/16", Some("martian")),
            ("fe80::/64", Some("martian")),
            ("::ffff:10.0.0.0/104", Some("martian")),
            ("2001:db8::/32", None),
        ];
        for (prefix, want) in table {
            let got = g.check_prefix(&p(prefix)).map(|r| match r {
                GuardReason::OwnBlock(_) => "block",
                GuardReason::OwnAddress(_) => "address",
                GuardReason::Gateway(_) => "gateway",
                GuardReason::Martian(_) => "martian",
                GuardReason::NextHop(..) => "next-hop",
            });
            assert_eq!(got, *want, "{prefix}");
        }
    }

    #[test]
    fn next_hop_table() {
        let g = guard();
        let local: IpAddr = "198.51.100.11".parse().unwrap();
        let peer: IpAddr = "198.51.100.1".parse().unwrap();
        let table: &[(&str, bool)] = &[
            ("192.0.2.1", true),
            ("192.0.2.11", false),
            ("198.51.100.11", false),
            ("127.0.0.1", false),
            ("127.9.9.9", false),
            ("0.0.0.0", false),
            ("224.0.0.5", false),
            ("2001:db8:1::1", true),
            ("2001:db8:1::11", false),
            ("::1", false),
            ("::", false),
        ];
        for (nh, ok) in table {
            let r = g.check_next_hop(nh.parse().unwrap(), local, peer);
            assert_eq!(r.is_none(), *ok, "{nh}: {r:?}");
        }
        // A peer on this host (a test, a local route server) may use loopback.
        let lo: IpAddr = "127.0.0.2".parse().unwrap();
        let lo_local: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(g.check_next_hop(lo, lo_local, lo).is_none());
        assert!(g.check_next_hop(lo_local, lo_local, lo).is_some());
    }
}
