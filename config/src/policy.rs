//! Routing policy keys: `[[filter]]` tables with their `[[filter.rule]]`s,
//! the per-peer `import_filter` / `export_filter` / `max_prefixes_restart`,
//! and `[bgp]`'s `ebgp_requires_policy` and communities for originated
//! routes. The resolved filters are `tortie_bgp::policy` values (one model
//! of a filter, shared with the speaker).
//!
//! Data flow: `raw::read` hands each `[[filter]]` to [`read_filters`] (schema
//! problems with spans); `validate::resolve` calls [`resolve`] for the
//! filters and `[bgp]`'s keys, then `peers` calls [`peer_keys`] for each
//! `[[peer]]` to look its filters up by name.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;
use tortie_bgp::policy::{
    Action, Filter, Matches, Modifiers, PrefixMatch, RouteSource, Rule, parse_community,
    parse_large_community,
};
use tortie_bgp::{Afi, Prefix};

use crate::error::Locator;
use crate::raw::{Field, RawBgp, RawPeer, section};

pub(crate) const FILTER_KEYS: &[(&str, &str)] =
    &[("name", "name = \"tor-in\""), ("rule", "[[filter.rule]]")];
pub(crate) const RULE_KEYS: &[(&str, &str)] = &[
    (
        "prefixes",
        "prefixes = [\"0.0.0.0/0\", { prefix = \"10.0.0.0/8\", ge = 16, le = 24 }]",
    ),
    ("family", "family = \"ipv4\""),
    (
        "communities",
        "communities = [\"65000:100\", \"65000:1:2\"]",
    ),
    ("as_path_contains", "as_path_contains = [64666]"),
    ("origin_as", "origin_as = [65010]"),
    ("source", "source = [\"local-block\"]"),
    ("action", "action = \"accept\""),
    ("set_local_pref", "set_local_pref = 200"),
    ("set_med", "set_med = 10"),
    ("add_communities", "add_communities = [\"65000:100\"]"),
    ("remove_communities", "remove_communities = [\"65000:100\"]"),
    ("prepend", "prepend = 2"),
];

/// Default `max_prefixes_restart`, seconds.
pub const MAX_PREFIXES_RESTART: u32 = 60;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFilter {
    pub name: Field<String>,
}

/// A `prefixes` entry: `"10.0.0.0/8"` or `{ prefix = "10.0.0.0/8", ge = 16, le = 24 }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawPrefix {
    Plain(String),
    Table {
        prefix: String,
        ge: Option<i64>,
        le: Option<i64>,
    },
}

type List<T> = Field<Vec<Spanned<T>>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub prefixes: List<RawPrefix>,
    pub family: Field<String>,
    pub communities: List<String>,
    pub as_path_contains: List<i64>,
    pub origin_as: List<i64>,
    pub source: List<String>,
    pub action: Field<String>,
    pub set_local_pref: Field<i64>,
    pub set_med: Field<i64>,
    pub add_communities: List<String>,
    pub remove_communities: List<String>,
    pub prepend: Field<i64>,
}

/// One `[[filter]]` as written: its header span, its keys, its rules.
#[derive(Debug, Default)]
pub(crate) struct RawFilterTable {
    pub span: Range<usize>,
    pub filter: RawFilter,
    pub rules: Vec<(Range<usize>, RawRule)>,
}

/// Reads the top-level `filter` value (an array of tables) into `out`.
pub(crate) fn read_filters<'i>(
    loc: &mut Locator<'_>,
    value: &Spanned<DeValue<'i>>,
    out: &mut Vec<RawFilterTable>,
) {
    let DeValue::Array(items) = value.get_ref() else {
        loc.at(
            value.span(),
            "`filter` must be an array of tables",
            "write each filter as its own [[filter]] table (double brackets)",
        );
        return;
    };
    for item in items.iter() {
        let mut item = item.clone();
        let mut rules = Vec::new();
        if let DeValue::Table(t) = item.get_mut()
            && let Some(r) = t.remove("rule")
        {
            match r.get_ref() {
                DeValue::Array(rs) => {
                    for rule in rs.iter() {
                        rules.push((rule.span(), section(loc, "filter.rule", RULE_KEYS, rule)));
                    }
                }
                _ => loc.at(
                    r.span(),
                    "`rule` must be an array of tables",
                    "write each rule as its own [[filter.rule]] table after its [[filter]]",
                ),
            }
        }
        let filter = section(loc, "filter", FILTER_KEYS, &item);
        out.push(RawFilterTable {
            span: item.span(),
            filter,
            rules,
        });
    }
}

/// Standard and large communities, as a list of them reads in the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Communities {
    pub standard: Vec<u32>,
    pub large: Vec<[u32; 3]>,
}

impl Communities {
    pub fn is_empty(&self) -> bool {
        self.standard.is_empty() && self.large.is_empty()
    }
}

/// The resolved policy keys that are not per peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Every `[[filter]]`, in file order.
    pub filters: Vec<Arc<Filter>>,
    /// `bgp.ebgp_requires_policy`.
    pub ebgp_requires_policy: bool,
    /// `bgp.block_communities`: attached to the node's block when originated.
    pub block_communities: Communities,
    /// `bgp.host_communities`: attached to each container /32 originated.
    pub host_communities: Communities,
}

/// Parses a list of communities (`A:B`, `A:B:C`, or an RFC 1997 name).
fn communities(loc: &mut Locator<'_>, key: &str, list: &List<String>) -> Communities {
    let mut c = Communities::default();
    for v in list.iter().flat_map(|l| l.get_ref().iter()) {
        let s = v.get_ref();
        let r = if s.matches(':').count() == 2 {
            parse_large_community(s).map(|l| c.large.push(l))
        } else {
            parse_community(s).map(|n| c.standard.push(n))
        };
        if let Err(e) = r {
            loc.at(
                v.span(),
                format!("{key}: {e}"),
                "a standard community is \"ASN:VALUE\" (each 0-65535) or no-export / no-advertise / no-export-subconfed; a large one is \"GLOBAL:LOCAL1:LOCAL2\" (each 0-4294967295)",
            );
        }
    }
    c
}

fn asns(loc: &mut Locator<'_>, key: &str, list: &List<i64>) -> Vec<u32> {
    let mut out = Vec::new();
    for v in list.iter().flat_map(|l| l.get_ref().iter()) {
        match u32::try_from(*v.get_ref()) {
            Ok(a) if a != 0 => out.push(a),
            _ => loc.at(
                v.span(),
                format!("{key}: {} is not an AS number", v.get_ref()),
                "1 to 4294967295",
            ),
        }
    }
    out
}

fn prefix_match(loc: &mut Locator<'_>, v: &Spanned<RawPrefix>) -> Option<PrefixMatch> {
    let (text, ge, le) = match v.get_ref() {
        RawPrefix::Plain(s) => (s, None, None),
        RawPrefix::Table { prefix, ge, le } => (prefix, *ge, *le),
    };
    let bad = |loc: &mut Locator<'_>, m: String, h: &str| {
        loc.at(v.span(), format!("filter.rule.prefixes: {m}"), h);
        None
    };
    let Some((addr, len)) = text.split_once('/') else {
        return bad(
            loc,
            format!("`{text}` has no prefix length"),
            "e.g. \"10.0.0.0/8\"",
        );
    };
    let Ok(addr) = addr.parse::<std::net::IpAddr>() else {
        return bad(
            loc,
            format!("`{text}` is not an IP prefix"),
            "e.g. \"10.0.0.0/8\" or \"2001:db8::/32\"",
        );
    };
    let max: i64 = if addr.is_ipv4() { 32 } else { 128 };
    let family = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
    let len = match len.parse::<i64>() {
        Ok(l) if (0..=max).contains(&l) => l,
        _ => {
            return bad(
                loc,
                format!("`{text}`: prefix length {len} is beyond {family}'s {max}"),
                &format!("0 to {max}"),
            );
        }
    };
    let Some(prefix) = Prefix::new(addr, len as u8) else {
        return bad(loc, format!("`{text}` is not a valid prefix"), "");
    };
    if prefix.addr() != addr {
        return bad(
            loc,
            format!("`{text}` has host bits set"),
            &format!("write the network address: \"{prefix}\""),
        );
    }
    for (k, n) in [("ge", ge), ("le", le)] {
        if let Some(n) = n
            && !(len..=max).contains(&n)
        {
            return bad(
                loc,
                format!("`{text}`: {k} {n} is outside {len}..={max}"),
                &format!(
                    "{k} is a prefix length between the prefix's own ({len}) and {family}'s maximum ({max})"
                ),
            );
        }
    }
    if let (Some(g), Some(l)) = (ge, le)
        && g > l
    {
        return bad(
            loc,
            format!("`{text}`: ge {g} is greater than le {l}"),
            "routes match when ge <= their length <= le: swap them",
        );
    }
    Some(PrefixMatch {
        prefix,
        ge: ge.map(|n| n as u8),
        le: le.map(|n| n as u8),
    })
}

fn rule(loc: &mut Locator<'_>, span: &Range<usize>, r: &RawRule) -> Option<Rule> {
    let mut ok = true;
    let mut prefixes = Vec::new();
    for v in r.prefixes.iter().flat_map(|l| l.get_ref().iter()) {
        match prefix_match(loc, v) {
            Some(p) => prefixes.push(p),
            None => ok = false,
        }
    }
    let family = match r.family.as_ref().map(|v| (v.get_ref().as_str(), v.span())) {
        None => None,
        Some(("ipv4", _)) => Some(Afi::Ipv4),
        Some(("ipv6", _)) => Some(Afi::Ipv6),
        Some((other, s)) => {
            loc.at(
                s,
                format!("filter.rule.family `{other}` is not \"ipv4\" or \"ipv6\""),
                "",
            );
            None
        }
    };
    let n = loc.problems.len();
    let comms = communities(loc, "filter.rule.communities", &r.communities);
    let mut source = Vec::new();
    for v in r.source.iter().flat_map(|l| l.get_ref().iter()) {
        match v.get_ref().as_str() {
            "local-block" => source.push(RouteSource::LocalBlock),
            "local-host" => source.push(RouteSource::LocalHost),
            "learned" => source.push(RouteSource::Learned),
            other => loc.at(
                v.span(),
                format!("filter.rule.source `{other}` is not a route source"),
                "\"local-block\" (this node's block), \"local-host\" (a container /32 we originate) or \"learned\" (from a peer)",
            ),
        }
    }
    let matches = Matches {
        prefixes,
        family,
        communities: comms.standard,
        large_communities: comms.large,
        as_path_contains: asns(loc, "filter.rule.as_path_contains", &r.as_path_contains),
        origin_as: asns(loc, "filter.rule.origin_as", &r.origin_as),
        source,
    };
    let u32_key = |loc: &mut Locator<'_>, key: &str, f: &Field<i64>| {
        f.as_ref().and_then(|v| match u32::try_from(*v.get_ref()) {
            Ok(n) => Some(n),
            Err(_) => {
                loc.at(
                    v.span(),
                    format!("filter.rule.{key} {} is out of range", v.get_ref()),
                    "0 to 4294967295",
                );
                None
            }
        })
    };
    let add = communities(loc, "filter.rule.add_communities", &r.add_communities);
    let remove = communities(loc, "filter.rule.remove_communities", &r.remove_communities);
    let prepend = match &r.prepend {
        None => 0,
        Some(v) => match u8::try_from(*v.get_ref()) {
            Ok(n) if (1..=10).contains(&n) => n,
            _ => {
                loc.at(
                    v.span(),
                    format!("filter.rule.prepend {} is out of range", v.get_ref()),
                    "prepend our AS 1 to 10 times",
                );
                0
            }
        },
    };
    let modifiers = Modifiers {
        local_pref: u32_key(loc, "set_local_pref", &r.set_local_pref),
        med: u32_key(loc, "set_med", &r.set_med),
        add_communities: add.standard,
        remove_communities: remove.standard,
        add_large_communities: add.large,
        remove_large_communities: remove.large,
        prepend,
    };
    let action = match r.action.as_ref().map(|v| (v.get_ref().as_str(), v.span())) {
        None => {
            loc.at(
                span.clone(),
                "[[filter.rule]] has no action",
                "add action = \"accept\" or action = \"reject\"",
            );
            return None;
        }
        Some(("accept", _)) => Action::Accept,
        Some(("reject", s)) => {
            if !modifiers.is_empty() {
                loc.at(
                    s,
                    "a rejecting rule cannot change attributes",
                    "set_*, add_*, remove_* and prepend only apply with action = \"accept\"",
                );
            }
            Action::Reject
        }
        Some((other, s)) => {
            loc.at(
                s,
                format!("filter.rule.action `{other}` is not \"accept\" or \"reject\""),
                "",
            );
            return None;
        }
    };
    // A rule with a problem (already recorded) is left out.
    (ok && loc.problems.len() == n).then_some(Rule {
        matches,
        action,
        modifiers,
    })
}

/// Resolves the filters and `[bgp]`'s policy keys.
pub(crate) fn resolve(loc: &mut Locator<'_>, filters: &[RawFilterTable], bgp: &RawBgp) -> Policy {
    let mut out: Vec<Arc<Filter>> = Vec::new();
    for f in filters {
        let name = match &f.filter.name {
            None => {
                loc.at(
                    f.span.clone(),
                    "[[filter]] has no name",
                    "add name = \"...\": peers refer to filters by name",
                );
                continue;
            }
            Some(v) => {
                if out.iter().any(|o| o.name == *v.get_ref()) {
                    loc.at(
                        v.span(),
                        format!("filter `{}` is defined twice", v.get_ref()),
                        "filter names must be unique",
                    );
                }
                v.get_ref().clone()
            }
        };
        let rules = f
            .rules
            .iter()
            .filter_map(|(s, r)| rule(loc, s, r))
            .collect();
        out.push(Arc::new(Filter { name, rules }));
    }
    Policy {
        filters: out,
        ebgp_requires_policy: bgp
            .ebgp_requires_policy
            .as_ref()
            .is_none_or(|v| *v.get_ref()),
        block_communities: communities(loc, "bgp.block_communities", &bgp.block_communities),
        host_communities: communities(loc, "bgp.host_communities", &bgp.host_communities),
    }
}

/// A peer's policy keys: import filter, export filter, max_prefixes_restart.
pub(crate) type PeerPolicy = (Option<Arc<Filter>>, Option<Arc<Filter>>, Duration);

pub(crate) fn peer_keys(loc: &mut Locator<'_>, rp: &RawPeer, policy: &Policy) -> PeerPolicy {
    let mut find = |f: &Field<String>, key: &str| {
        let v = f.as_ref()?;
        let found = policy
            .filters
            .iter()
            .find(|x| x.name == *v.get_ref())
            .cloned();
        if found.is_none() {
            let names: Vec<&str> = policy.filters.iter().map(|f| f.name.as_str()).collect();
            let hint = match crate::raw::suggest(v.get_ref(), &names) {
                Some(s) => format!("did you mean `{s}`?"),
                None if names.is_empty() => "define it with a [[filter]] table (name = ...)".into(),
                None => format!("the filters are: {}", names.join(", ")),
            };
            loc.at(
                v.span(),
                format!("peer.{key}: no filter named `{}`", v.get_ref()),
                &hint,
            );
        }
        found
    };
    let import = find(&rp.import_filter, "import_filter");
    let export = find(&rp.export_filter, "export_filter");
    let restart = match &rp.max_prefixes_restart {
        None => MAX_PREFIXES_RESTART,
        Some(v) => match u32::try_from(*v.get_ref()) {
            Ok(n) if n <= 86_400 => n,
            _ => {
                loc.at(
                    v.span(),
                    format!("peer.max_prefixes_restart {} is out of range", v.get_ref()),
                    "seconds to stay idle after a max-prefix Cease, 0 to 86400",
                );
                MAX_PREFIXES_RESTART
            }
        },
    };
    (import, export, Duration::from_secs(u64::from(restart)))
}
