//! Routes refused on import (by the import guard or the peer's import
//! filter), kept aside for `tortie routes --filtered`: not candidates, never
//! exported, counted per peer.
//!
//! Data flow: `Rib::apply_update` stores a refusal with [`Refused::new`]
//! (the route's stored attribute set and a compact reason) and forgets it when
//! the peer withdraws or re-announces the prefix acceptably, or goes down;
//! `Rib::filtered` / `Rib::filtered_for` turn entries back into the public
//! [`FilteredRoute`] with [`Refused::reason`]. One table per family keyed by
//! (peer, prefix) — 12 bytes for IPv4 — and an 8-byte reason keep a refused
//! route at about the cost of an accepted one; a route's own NEXT_HOP, the
//! guard's lists and the peer's filter name are not copied into each entry.

use std::sync::Arc;

use super::hash::FastMap;
use super::stored::StoredAttrs;
use super::{FilteredBy, FilteredRoute};
use crate::policy::{GuardReason, ImportGuard, guard};
use crate::types::{Ipv4Prefix, Ipv6Prefix, Prefix};

/// Why a route was refused, compactly; see [`Refused::reason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    /// Index into the guard's `own_blocks`.
    OwnBlock(u16),
    /// Index into the guard's `own_addresses`.
    OwnAddress(u16),
    /// Index into the guard's `gateways`.
    Gateway(u16),
    /// Index into the martian list.
    Martian(u8),
    /// Which of the NEXT_HOP checks; the address is the route's NEXT_HOP.
    NextHop(u8),
    /// The rule of the peer's import filter (0-based).
    Policy(u32),
}

/// One refused route.
#[derive(Debug)]
pub(crate) struct Refused {
    attrs: Arc<StoredAttrs>,
    why: Why,
}

impl Refused {
    /// The entry for a route with `attrs` refused for `reason`.
    pub(crate) fn new(attrs: Arc<StoredAttrs>, reason: &FilteredBy, g: &ImportGuard) -> Refused {
        let idx = |i: Option<usize>| u16::try_from(i.unwrap_or(0)).unwrap_or(u16::MAX);
        let why = match reason {
            FilteredBy::Policy { rule, .. } => {
                Why::Policy(u32::try_from(*rule).unwrap_or(u32::MAX))
            }
            FilteredBy::Guard(r) => match r {
                GuardReason::OwnBlock(b) => {
                    Why::OwnBlock(idx(g.own_blocks.iter().position(|x| x == b)))
                }
                GuardReason::OwnAddress(a) => {
                    Why::OwnAddress(idx(g.own_addresses.iter().position(|x| x == a)))
                }
                GuardReason::Gateway(a) => {
                    Why::Gateway(idx(g.gateways.iter().position(|x| x == a)))
                }
                GuardReason::Martian(name) => Why::Martian(guard::martian_index(name)),
                GuardReason::NextHop(_, why) => Why::NextHop(guard::next_hop_index(why)),
            },
        };
        Refused { attrs, why }
    }

    /// The reason in public form. `filter`: the name of the peer's import
    /// filter (entries are refreshed when it changes, see `refilter`).
    pub(crate) fn reason(&self, g: &ImportGuard, filter: Option<&str>) -> FilteredBy {
        let guard_reason = match self.why {
            Why::Policy(rule) => {
                return FilteredBy::Policy {
                    filter: filter.unwrap_or("?").into(),
                    rule: rule as usize,
                };
            }
            Why::OwnBlock(i) => g
                .own_blocks
                .get(usize::from(i))
                .map(|b| GuardReason::OwnBlock(*b)),
            Why::OwnAddress(i) => g
                .own_addresses
                .get(usize::from(i))
                .map(|a| GuardReason::OwnAddress(*a)),
            Why::Gateway(i) => g
                .gateways
                .get(usize::from(i))
                .map(|a| GuardReason::Gateway(*a)),
            Why::Martian(i) => Some(GuardReason::Martian(guard::martian_name(i))),
            Why::NextHop(i) => self
                .attrs
                .next_hop()
                .map(|nh| GuardReason::NextHop(nh, guard::next_hop_words(i))),
        };
        FilteredBy::Guard(guard_reason.unwrap_or(GuardReason::Martian("?")))
    }

    pub(crate) fn attrs(&self) -> &Arc<StoredAttrs> {
        &self.attrs
    }
}

/// The refused routes of every peer, by family.
#[derive(Debug, Default)]
pub(crate) struct RefusedStore {
    v4: FastMap<(u32, Ipv4Prefix), Refused>,
    v6: FastMap<(u32, Ipv6Prefix), Refused>,
}

impl RefusedStore {
    /// Gives capacity back once mostly empty ([`super::hash::shrink_if_sparse`]).
    pub(crate) fn shrink_if_sparse(&mut self) {
        super::hash::shrink_if_sparse(&mut self.v4);
        super::hash::shrink_if_sparse(&mut self.v6);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Stores (or replaces) a refusal; true when it is new.
    pub(crate) fn insert(&mut self, source: u32, p: Prefix, r: Refused) -> bool {
        match p {
            Prefix::V4(k) => self.v4.insert((source, k), r).is_none(),
            Prefix::V6(k) => self.v6.insert((source, k), r).is_none(),
        }
    }

    /// Forgets a refusal; true when there was one.
    pub(crate) fn remove(&mut self, source: u32, p: Prefix) -> bool {
        match p {
            Prefix::V4(k) => self.v4.remove(&(source, k)).is_some(),
            Prefix::V6(k) => self.v6.remove(&(source, k)).is_some(),
        }
    }

    pub(crate) fn get(&self, source: u32, p: Prefix) -> Option<&Refused> {
        match p {
            Prefix::V4(k) => self.v4.get(&(source, k)),
            Prefix::V6(k) => self.v6.get(&(source, k)),
        }
    }

    /// Forgets every refusal of `source`.
    pub(crate) fn remove_source(&mut self, source: u32) {
        self.v4.retain(|(s, _), _| *s != source);
        self.v6.retain(|(s, _), _| *s != source);
    }

    /// Every refusal: (source, prefix, entry).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, Prefix, &Refused)> {
        let v4 = self.v4.iter().map(|((s, k), r)| (*s, Prefix::V4(*k), r));
        let v6 = self.v6.iter().map(|((s, k), r)| (*s, Prefix::V6(*k), r));
        v4.chain(v6)
    }
}

/// Public form of one entry.
pub(crate) fn route(
    source: u32,
    prefix: Prefix,
    r: &Refused,
    peer_address: std::net::IpAddr,
    reason: FilteredBy,
) -> FilteredRoute {
    FilteredRoute {
        prefix,
        peer: super::PeerId(source),
        peer_address,
        attributes: r.attrs().to_full(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_entries() {
        assert_eq!(std::mem::size_of::<Why>(), 8);
        assert_eq!(std::mem::size_of::<Refused>(), 16);
        assert_eq!(std::mem::size_of::<(u32, Ipv4Prefix)>(), 12);
    }

    /// Every reason survives the trip through the compact form.
    #[test]
    fn reasons_round_trip() {
        let g = ImportGuard::new(
            vec![
                "10.244.1.0/26".parse().unwrap(),
                "10.244.2.0/26".parse().unwrap(),
            ],
            vec!["192.0.2.11".parse().unwrap()],
            vec![
                "169.254.1.1".parse().unwrap(),
                "fe80::ecee:eeff:feee:eeee".parse().unwrap(),
            ],
        );
        let nh = StoredAttrs::from_value(crate::types::PathAttributes {
            next_hop: Some("127.0.0.1".parse().unwrap()),
            ..Default::default()
        });
        let attrs = Arc::new(nh);
        let own: Prefix = "10.244.2.5/32".parse().unwrap();
        let session: std::net::IpAddr = "192.0.2.11".parse().unwrap();
        let peer: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        let reasons = [
            g.check_prefix(&own),
            g.check_prefix(&"192.0.2.11/32".parse().unwrap()),
            g.check_prefix(&"169.254.1.1/32".parse().unwrap()),
            g.check_prefix(&"fe80::ecee:eeff:feee:eeee/128".parse().unwrap()),
            g.check_prefix(&"240.1.0.0/16".parse().unwrap()),
            g.check_prefix(&"ff02::/16".parse().unwrap()),
            g.check_next_hop("127.0.0.1".parse().unwrap(), session, peer),
        ];
        for r in reasons {
            let r = FilteredBy::Guard(r.expect("refused"));
            let e = Refused::new(attrs.clone(), &r, &g);
            assert_eq!(e.reason(&g, None), r);
        }
        let p = FilteredBy::Policy {
            filter: "in".into(),
            rule: 3,
        };
        assert_eq!(Refused::new(attrs, &p, &g).reason(&g, Some("in")), p);
    }
}
