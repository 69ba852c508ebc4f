//! Named filters: ordered rules, first match wins, default accept (in the
//! spirit of BIRD filters and Calico's BGPFilter, as plain data).
//!
//! Data flow: the agent builds [`Filter`]s from the TOML and attaches them
//! per peer for import and export ([`crate::PeerConfig`]); the RIB calls
//! [`evaluate`] with one route at a time (its prefix, its attributes, where
//! it came from) and gets back a [`FilterVerdict`]: accepted or rejected,
//! by which rule, and the attribute set the rule's modifiers produced.
//! Like holo-bgp's policy: match sets in, verdict and modified attributes
//! out, nothing else.

use crate::types::{Afi, AsPathSegment, PathAttributes, Prefix};

/// Where a route comes from, for `source` matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteSource {
    /// One of this node's pod blocks (originated here).
    LocalBlock,
    /// Another route this node originates (a container /32).
    LocalHost,
    /// Learned from a peer.
    Learned,
}

impl RouteSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteSource::LocalBlock => "local-block",
            RouteSource::LocalHost => "local-host",
            RouteSource::Learned => "learned",
        }
    }
}

/// A prefix-list entry: routes equal to or inside `prefix` whose length lies
/// in `ge..=le` (without either: exactly `prefix`; `ge` alone: up to the
/// family's maximum; `le` alone: from `prefix`'s own length).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PrefixMatch {
    pub prefix: Prefix,
    pub ge: Option<u8>,
    pub le: Option<u8>,
}

impl PrefixMatch {
    pub fn matches(&self, p: Prefix) -> bool {
        let max = if matches!(p, Prefix::V4(_)) { 32 } else { 128 };
        let (lo, hi) = match (self.ge, self.le) {
            (None, None) => (self.prefix.len(), self.prefix.len()),
            (Some(g), None) => (g, max),
            (None, Some(l)) => (self.prefix.len(), l),
            (Some(g), Some(l)) => (g, l),
        };
        super::guard::covers(self.prefix, p) && (lo..=hi).contains(&p.len())
    }
}

/// What a rule looks at. Every condition given must hold; a list matches when
/// any of its entries does; an empty rule matches every route.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Matches {
    pub prefixes: Vec<PrefixMatch>,
    pub family: Option<Afi>,
    /// The route carries at least one of these standard communities.
    pub communities: Vec<u32>,
    /// The route carries at least one of these large communities.
    pub large_communities: Vec<[u32; 3]>,
    /// One of these ASNs appears anywhere in the AS_PATH.
    pub as_path_contains: Vec<u32>,
    /// The route originates from one of these ASNs (the last AS of the path).
    pub origin_as: Vec<u32>,
    pub source: Vec<RouteSource>,
}

/// The verdict of a matching rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Accept,
    Reject,
}

/// Attribute changes of an accepting rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Modifiers {
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub add_communities: Vec<u32>,
    pub remove_communities: Vec<u32>,
    pub add_large_communities: Vec<[u32; 3]>,
    pub remove_large_communities: Vec<[u32; 3]>,
    /// Prepend our AS this many times.
    pub prepend: u8,
}

impl Modifiers {
    pub fn is_empty(&self) -> bool {
        *self == Modifiers::default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    pub matches: Matches,
    pub action: Action,
    pub modifiers: Modifiers,
}

/// A named, ordered list of rules.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Filter {
    pub name: String,
    pub rules: Vec<Rule>,
}

/// The outcome of [`evaluate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterVerdict {
    pub action: Action,
    /// The index of the rule that matched; `None`: no rule did (default accept).
    pub rule: Option<usize>,
    /// The attributes after the rule's modifiers; `None` when unchanged.
    pub attributes: Option<PathAttributes>,
}

impl FilterVerdict {
    /// Accepted by a rule that says so (not by falling off the end).
    pub fn explicitly_accepted(&self) -> bool {
        self.action == Action::Accept && self.rule.is_some()
    }
}

/// What a rule reads of a route's attributes: implemented by the public
/// [`PathAttributes`] and by the RIB's compact stored form, so that export
/// filters run without converting every route back.
pub trait RouteAttrs {
    fn communities(&self) -> &[u32];
    fn large_communities(&self) -> &[[u32; 3]];
    /// `asn` appears anywhere in the AS_PATH.
    fn as_path_contains(&self, asn: u32) -> bool;
    /// The last AS of the AS_PATH when it ends in an AS_SEQUENCE.
    fn origin_as(&self) -> Option<u32>;
}

impl RouteAttrs for PathAttributes {
    fn communities(&self) -> &[u32] {
        &self.communities
    }
    fn large_communities(&self) -> &[[u32; 3]] {
        &self.large_communities
    }
    fn as_path_contains(&self, asn: u32) -> bool {
        self.as_path.contains(asn)
    }
    fn origin_as(&self) -> Option<u32> {
        match self.as_path.segments.last() {
            Some(AsPathSegment::Sequence(v)) => v.last().copied(),
            _ => None,
        }
    }
}

fn rule_matches(m: &Matches, prefix: Prefix, a: &dyn RouteAttrs, source: RouteSource) -> bool {
    (m.prefixes.is_empty() || m.prefixes.iter().any(|pm| pm.matches(prefix)))
        && m.family.is_none_or(|f| f == prefix.family().afi)
        && (m.communities.is_empty() || m.communities.iter().any(|c| a.communities().contains(c)))
        && (m.large_communities.is_empty()
            || m.large_communities
                .iter()
                .any(|c| a.large_communities().contains(c)))
        && (m.as_path_contains.is_empty()
            || m.as_path_contains.iter().any(|x| a.as_path_contains(*x)))
        && (m.origin_as.is_empty() || a.origin_as().is_some_and(|o| m.origin_as.contains(&o)))
        && (m.source.is_empty() || m.source.contains(&source))
}

/// The route after `m`'s changes (prepending `local_asn` `m.prepend` times).
pub fn apply_modifiers(m: &Modifiers, a: &PathAttributes, local_asn: u32) -> PathAttributes {
    let mut o = a.clone();
    if let Some(lp) = m.local_pref {
        o.local_pref = Some(lp);
    }
    if let Some(med) = m.med {
        o.med = Some(med);
    }
    o.communities.retain(|c| !m.remove_communities.contains(c));
    for c in &m.add_communities {
        if !o.communities.contains(c) {
            o.communities.push(*c);
        }
    }
    o.large_communities
        .retain(|c| !m.remove_large_communities.contains(c));
    for c in &m.add_large_communities {
        if !o.large_communities.contains(c) {
            o.large_communities.push(*c);
        }
    }
    for _ in 0..m.prepend {
        o.as_path.prepend(local_asn);
    }
    o
}

/// The first rule of `filter` whose matches all hold for the route, and its
/// action; `None` when no rule matches (the route is accepted unchanged).
pub fn decide<'f>(
    filter: &'f Filter,
    prefix: Prefix,
    attrs: &dyn RouteAttrs,
    source: RouteSource,
) -> Option<(usize, &'f Rule)> {
    filter
        .rules
        .iter()
        .enumerate()
        .find(|(_, r)| rule_matches(&r.matches, prefix, attrs, source))
}

/// Runs `filter` on one route: the first rule whose matches all hold decides;
/// no match accepts the route unchanged.
pub fn evaluate(
    filter: &Filter,
    prefix: Prefix,
    attrs: &PathAttributes,
    source: RouteSource,
    local_asn: u32,
) -> FilterVerdict {
    match decide(filter, prefix, attrs, source) {
        Some((i, r)) => FilterVerdict {
            action: r.action,
            rule: Some(i),
            attributes: (r.action == Action::Accept && !r.modifiers.is_empty())
                .then(|| apply_modifiers(&r.modifiers, attrs, local_asn))
                .filter(|n| n != attrs),
        },
        None => FilterVerdict {
            action: Action::Accept,
            rule: None,
            attributes: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::AsPath;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn pm(s: &str, ge: Option<u8>, le: Option<u8>) -> PrefixMatch {
        PrefixMatch {
            prefix: p(s),
            ge,
            le,
        }
    }

    fn route(path: &[u32], communities: &[u32]) -> PathAttributes {
        PathAttributes {
            as_path: AsPath::sequence(path),
            communities: communities.to_vec(),
            ..Default::default()
        }
    }

    fn rule(matches: Matches, action: Action) -> Rule {
        Rule {
            matches,
            action,
            modifiers: Modifiers::default(),
        }
    }

    #[test]
    fn prefix_match_table() {
        // (entry, route prefix, matches)
        let table = [
            (pm("10.0.0.0/8", None, None), "10.0.0.0/8", true),
            (pm("10.0.0.0/8", None, None), "10.1.0.0/16", false),
            (pm("10.0.0.0/8", Some(16), None), "10.1.0.0/16", true),
            (pm("10.0.0.0/8", Some(16), None), "10.1.1.1/32", true),
            (pm("10.0.0.0/8", Some(16), None), "10.0.0.0/8", false),
            (pm("10.0.0.0/8", None, Some(24)), "10.0.0.0/8", true),
            (pm("10.0.0.0/8", None, Some(24)), "10.1.1.0/24", true),
            (pm("10.0.0.0/8", None, Some(24)), "10.1.1.0/25", false),
            (pm("10.0.0.0/8", Some(24), Some(26)), "10.1.1.0/25", true),
            (pm("10.0.0.0/8", Some(24), Some(26)), "11.1.1.0/25", false),
            (pm("0.0.0.0/0", None, Some(32)), "192.0.2.0/24", true),
            (pm("0.0.0.0/0", None, Some(32)), "2001:db8::/32", false),
            (pm("2001:db8::/32", Some(48), None), "2001:db8:1::/48", true),
            (pm("2001:db8::/32", Some(48), None), "2001:db8::/32", false),
        ];
        for (e, route, want) in table {
            assert_eq!(e.matches(p(route)), want, "{e:?} {route}");
        }
    }

    /// A filter and a table of routes with the verdict each gets.
    #[test]
    fn verdict_table() {
        let f = Filter {
            name: "tor-in".into(),
            rules: vec![
                // 0: reject anything from AS 64666.
                rule(
                    Matches {
                        as_path_contains: vec![64666],
                        ..Default::default()
                    },
                    Action::Reject,
                ),
                // 1: defaults only, with local-pref 50 and a community.
                Rule {
                    matches: Matches {
                        prefixes: vec![pm("0.0.0.0/0", None, None), pm("::/0", None, None)],
                        ..Default::default()
                    },
                    action: Action::Accept,
                    modifiers: Modifiers {
                        local_pref: Some(50),
                        add_communities: vec![0xfde8_0001],
                        ..Default::default()
                    },
                },
                // 2: routes tagged 65000:666 are dropped.
                rule(
                    Matches {
                        communities: vec![0xfde8_029a],
                        ..Default::default()
                    },
                    Action::Reject,
                ),
                // 3: IPv6 from origin AS 65010: accept, prepend twice, drop 65000:1.
                Rule {
                    matches: Matches {
                        family: Some(Afi::Ipv6),
                        origin_as: vec![65010],
                        ..Default::default()
                    },
                    action: Action::Accept,
                    modifiers: Modifiers {
                        prepend: 2,
                        remove_communities: vec![0xfde8_0001],
                        med: Some(7),
                        ..Default::default()
                    },
                },
                // 4: our own /32s are not sent.
                rule(
                    Matches {
                        source: vec![RouteSource::LocalHost],
                        ..Default::default()
                    },
                    Action::Reject,
                ),
            ],
        };
        let local = 65000;
        // (prefix, path, communities, source, action, rule, changed attributes)
        type Row<'a> = (
            &'a str,
            &'a [u32],
            &'a [u32],
            RouteSource,
            Action,
            Option<usize>,
        );
        let table: &[Row] = &[
            (
                "10.1.0.0/16",
                &[65001, 64666],
                &[],
                RouteSource::Learned,
                Action::Reject,
                Some(0),
            ),
            (
                "0.0.0.0/0",
                &[65001],
                &[],
                RouteSource::Learned,
                Action::Accept,
                Some(1),
            ),
            (
                "::/0",
                &[65001],
                &[],
                RouteSource::Learned,
                Action::Accept,
                Some(1),
            ),
            (
                "0.0.0.0/0",
                &[64666],
                &[],
                RouteSource::Learned,
                Action::Reject,
                Some(0),
            ),
            (
                "10.2.0.0/16",
                &[65001],
                &[0xfde8_029a],
                RouteSource::Learned,
                Action::Reject,
                Some(2),
            ),
            (
                "10.2.0.0/16",
                &[65001],
                &[0xfde8_0001],
                RouteSource::Learned,
                Action::Accept,
                None,
            ),
            (
                "2001:db8::/32",
                &[65001, 65010],
                &[0xfde8_0001],
                RouteSource::Learned,
                Action::Accept,
                Some(3),
            ),
            (
                "10.3.0.0/16",
                &[65001, 65010],
                &[],
                RouteSource::Learned,
                Action::Accept,
                None,
            ),
            (
                "10.244.1.5/32",
                &[],
                &[],
                RouteSource::LocalHost,
                Action::Reject,
                Some(4),
            ),
            (
                "10.244.1.0/26",
                &[],
                &[],
                RouteSource::LocalBlock,
                Action::Accept,
                None,
            ),
        ];
        for (prefix, path, comms, source, action, rule_idx) in table {
            let a = route(path, comms);
            let v = evaluate(&f, p(prefix), &a, *source, local);
            assert_eq!(
                (v.action, v.rule),
                (*action, *rule_idx),
                "{prefix} {path:?}"
            );
            if *action == Action::Reject || rule_idx.is_none() {
                assert_eq!(v.attributes, None, "{prefix}");
            }
        }
        // The modifiers' results.
        let v = evaluate(
            &f,
            p("0.0.0.0/0"),
            &route(&[65001], &[]),
            RouteSource::Learned,
            local,
        );
        let a = v.attributes.unwrap();
        assert_eq!(
            (a.local_pref, a.communities.clone()),
            (Some(50), vec![0xfde8_0001])
        );
        let v = evaluate(
            &f,
            p("2001:db8::/32"),
            &route(&[65001, 65010], &[0xfde8_0001, 7]),
            RouteSource::Learned,
            local,
        );
        let a = v.attributes.unwrap();
        assert_eq!(a.as_path.to_string(), "65000 65000 65001 65010");
        assert_eq!(a.communities, vec![7]);
        assert_eq!(a.med, Some(7));
        assert!(v.rule.is_some() && v.action == Action::Accept);
    }

    #[test]
    fn empty_filter_accepts_unchanged_and_not_explicitly() {
        let f = Filter {
            name: "none".into(),
            rules: vec![],
        };
        let v = evaluate(
            &f,
            p("10.0.0.0/8"),
            &route(&[1], &[]),
            RouteSource::Learned,
            1,
        );
        assert_eq!(v.action, Action::Accept);
        assert!(!v.explicitly_accepted());
        assert!(v.attributes.is_none());
    }

    #[test]
    fn large_communities_match_add_remove() {
        let f = Filter {
            name: "l".into(),
            rules: vec![Rule {
                matches: Matches {
                    large_communities: vec![[65000, 1, 1]],
                    ..Default::default()
                },
                action: Action::Accept,
                modifiers: Modifiers {
                    add_large_communities: vec![[65000, 2, 2]],
                    remove_large_communities: vec![[65000, 1, 1]],
                    ..Default::default()
                },
            }],
        };
        let mut a = route(&[1], &[]);
        a.large_communities = vec![[65000, 1, 1]];
        let v = evaluate(&f, p("10.0.0.0/8"), &a, RouteSource::Learned, 1);
        assert_eq!(v.attributes.unwrap().large_communities, vec![[65000, 2, 2]]);
        let v = evaluate(
            &f,
            p("10.0.0.0/8"),
            &route(&[1], &[]),
            RouteSource::Learned,
            1,
        );
        assert_eq!(v.rule, None);
    }
}
