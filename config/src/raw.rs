//! The file as written: serde structs whose every field is optional and keeps its
//! byte span, plus a section reader that collects *all* schema problems.
//!
//! Data flow: `DeTable::parse_recoverable` (syntax errors) → one [`section`] call
//! per table (`deny_unknown_fields`, type errors) → the raw structs go to
//! `validate`, which applies defaults and checks meaning. When serde stops at a
//! bad key, the reader records it, removes that key and deserializes again, so
//! one run reports every unknown key and every wrongly typed value.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

use crate::error::Locator;

pub(crate) type Field<T> = Option<Spanned<T>>;

/// Keys of each section with an example line, for "did you mean" and type hints.
pub(crate) const NODE_KEYS: &[(&str, &str)] = &[
    ("name", "name = \"node-a\""),
    (
        "address",
        "address = [\"192.0.2.11/24\", \"2001:db8:1::11/64\"]",
    ),
    ("asn", "asn = 64512"),
    ("router_id", "router_id = \"192.0.2.11\""),
    (
        "pod_cidr",
        "pod_cidr = [\"10.244.1.0/26\", \"fd00:10:244:1::/120\"]",
    ),
    ("cluster_id", "cluster_id = \"192.0.2.11\""),
];
pub(crate) const BGP_KEYS: &[(&str, &str)] = &[
    ("listen_port", "listen_port = 179"),
    ("listen_address", "listen_address = \"::\""),
    ("hold_time", "hold_time = 90"),
    ("connect_retry", "connect_retry = 5"),
    ("graceful_restart", "graceful_restart = true"),
    ("restart_time", "restart_time = 120"),
    ("advertise", "advertise = \"block\""),
    ("ebgp_requires_policy", "ebgp_requires_policy = true"),
    ("block_communities", "block_communities = [\"65000:100\"]"),
    ("host_communities", "host_communities = [\"65000:1:2\"]"),
];
pub(crate) const PEER_KEYS: &[(&str, &str)] = &[
    ("address", "address = \"192.0.2.1\""),
    ("asn", "asn = 65001"),
    ("name", "name = \"tor1\""),
    ("port", "port = 179"),
    ("password", "password = \"secret\""),
    ("password_file", "password_file = \"/etc/tortie/tor1.key\""),
    ("passive", "passive = false"),
    ("ttl_security", "ttl_security = 1"),
    ("route_reflector_client", "route_reflector_client = false"),
    ("max_prefixes", "max_prefixes = 10000"),
    ("hold_time", "hold_time = 30"),
    ("source_address", "source_address = \"198.51.100.11\""),
    ("multihop", "multihop = 2"),
    ("bfd", "bfd = true"),
    ("bfd_interval_ms", "bfd_interval_ms = 300"),
    ("bfd_multiplier", "bfd_multiplier = 3"),
    ("import_filter", "import_filter = \"tor-in\""),
    ("export_filter", "export_filter = \"tor-out\""),
    ("max_prefixes_restart", "max_prefixes_restart = 60"),
    ("families", "families = [\"ipv4\", \"ipv6\"]"),
];
pub(crate) const DATAPLANE_KEYS: &[(&str, &str)] = &[
    ("encapsulation", "encapsulation = \"none\""),
    ("mtu", "mtu = 0"),
    ("vxlan_vni", "vxlan_vni = 4096"),
    ("vxlan_port", "vxlan_port = 4789"),
    ("route_protocol", "route_protocol = 149"),
    ("veth_prefix", "veth_prefix = \"tt\""),
    ("nat_outgoing", "nat_outgoing = true"),
    ("nexthop_objects", "nexthop_objects = true"),
    ("cluster_cidrs", "cluster_cidrs = [\"10.244.0.0/16\"]"),
];
pub(crate) const API_KEYS: &[(&str, &str)] = &[("socket", "socket = \"/run/tortie/tortie.sock\"")];
pub(crate) const METRICS_KEYS: &[(&str, &str)] = &[("listen", "listen = \"127.0.0.1:9642\"")];
pub(crate) const STATE_KEYS: &[(&str, &str)] = &[("dir", "dir = \"/var/lib/tortie\"")];

/// Top-level tables and their keys.
pub(crate) const SECTIONS: &[(&str, &[(&str, &str)])] = &[
    ("node", NODE_KEYS),
    ("bgp", BGP_KEYS),
    ("peer", PEER_KEYS),
    ("dataplane", DATAPLANE_KEYS),
    ("api", API_KEYS),
    ("metrics", METRICS_KEYS),
    ("state", STATE_KEYS),
    ("filter", crate::policy::FILTER_KEYS),
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNode {
    pub name: Field<String>,
    pub address: Field<crate::node::RawList>,
    pub asn: Field<i64>,
    pub router_id: Field<String>,
    pub pod_cidr: Field<crate::node::RawList>,
    pub cluster_id: Field<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBgp {
    pub listen_port: Field<i64>,
    pub listen_address: Field<String>,
    pub hold_time: Field<i64>,
    pub connect_retry: Field<i64>,
    pub graceful_restart: Field<bool>,
    pub restart_time: Field<i64>,
    pub advertise: Field<String>,
    pub ebgp_requires_policy: Field<bool>,
    pub block_communities: Field<Vec<Spanned<String>>>,
    pub host_communities: Field<Vec<Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPeer {
    pub address: Field<String>,
    pub asn: Field<i64>,
    pub name: Field<String>,
    pub port: Field<i64>,
    pub password: Field<String>,
    pub password_file: Field<String>,
    pub passive: Field<bool>,
    pub ttl_security: Field<TtlSecurity>,
    pub route_reflector_client: Field<bool>,
    pub max_prefixes: Field<i64>,
    pub hold_time: Field<i64>,
    pub source_address: Field<String>,
    pub multihop: Field<i64>,
    pub bfd: Field<bool>,
    pub bfd_interval_ms: Field<i64>,
    pub bfd_multiplier: Field<i64>,
    pub import_filter: Field<String>,
    pub export_filter: Field<String>,
    pub max_prefixes_restart: Field<i64>,
    pub families: Field<Vec<Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDataplane {
    pub encapsulation: Field<String>,
    pub mtu: Field<i64>,
    pub vxlan_vni: Field<i64>,
    pub vxlan_port: Field<i64>,
    pub route_protocol: Field<i64>,
    pub veth_prefix: Field<String>,
    pub nat_outgoing: Field<bool>,
    pub nexthop_objects: Field<bool>,
    pub cluster_cidrs: crate::nat::RawCidrs,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApi {
    pub socket: Field<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    pub listen: Field<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawState {
    pub dir: Field<String>,
}

/// `ttl_security = false | true | <hops>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TtlSecurity {
    Bool(bool),
    Hops(i64),
}

impl<'de> Deserialize<'de> for TtlSecurity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = TtlSecurity;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("false, true or a hop count")
            }
            fn visit_bool<E>(self, v: bool) -> Result<TtlSecurity, E> {
                Ok(TtlSecurity::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<TtlSecurity, E> {
                Ok(TtlSecurity::Hops(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<TtlSecurity, E> {
                Ok(TtlSecurity::Hops(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_any(V)
    }
}

/// The whole file as raw sections, with the spans needed for messages.
#[derive(Debug, Default)]
pub(crate) struct RawConfig {
    /// Span of the `[node]` header (None: the table is missing).
    pub node_span: Option<Range<usize>>,
    pub node: RawNode,
    pub bgp: RawBgp,
    /// Each `[[peer]]` with the span of its header.
    pub peers: Vec<(Range<usize>, RawPeer)>,
    pub dataplane: RawDataplane,
    pub api: RawApi,
    pub metrics: RawMetrics,
    pub state: RawState,
    /// Each `[[filter]]` with its rules.
    pub filters: Vec<crate::policy::RawFilterTable>,
}

/// Parses the text into raw sections. Returns `None` on TOML syntax errors
/// (already reported): the tree after error recovery is not worth validating.
pub(crate) fn read(loc: &mut Locator<'_>, text: &str) -> Option<RawConfig> {
    let (root, errors) = toml::de::DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        report_syntax(loc, &errors);
        return None;
    }
    let mut raw = RawConfig::default();
    for (key, value) in root.get_ref().iter() {
        let name = key.get_ref().as_ref();
        match name {
            "node" => {
                raw.node_span = Some(value.span());
                raw.node = section(loc, "node", NODE_KEYS, value);
            }
            "bgp" => raw.bgp = section(loc, "bgp", BGP_KEYS, value),
            "dataplane" => raw.dataplane = section(loc, "dataplane", DATAPLANE_KEYS, value),
            "api" => raw.api = section(loc, "api", API_KEYS, value),
            "metrics" => raw.metrics = section(loc, "metrics", METRICS_KEYS, value),
            "state" => raw.state = section(loc, "state", STATE_KEYS, value),
            "filter" => crate::policy::read_filters(loc, value, &mut raw.filters),
            "peer" => match value.get_ref() {
                DeValue::Array(items) => {
                    for item in items.iter() {
                        raw.peers
                            .push((item.span(), section(loc, "peer", PEER_KEYS, item)));
                    }
                }
                _ => loc.at(
                    value.span(),
                    "`peer` must be an array of tables",
                    "write each neighbour as its own [[peer]] table (double brackets)",
                ),
            },
            other => {
                let names: Vec<&str> = SECTIONS.iter().map(|(n, _)| *n).collect();
                let hint = match suggest(other, &names) {
                    Some(s) => format!("did you mean [{s}]?"),
                    None => format!("the tables are: {}", names.join(", ")),
                };
                loc.at(key.span(), format!("unknown table or key `{other}`"), &hint);
            }
        }
    }
    Some(raw)
}

/// One problem per line with a syntax error (error recovery repeats itself).
fn report_syntax(loc: &mut Locator<'_>, errors: &[toml::de::Error]) {
    let mut errors: Vec<_> = errors.iter().collect();
    errors.sort_by_key(|e| e.span().map_or(0, |s| s.start));
    let mut last_line = None;
    for e in errors {
        let span = e.span().unwrap_or(0..0);
        let line = loc.position(span.start).0;
        if last_line == Some(line) {
            continue;
        }
        last_line = Some(line);
        if e.message().starts_with("duplicate key") {
            let key = loc
                .text_at(span.clone())
                .trim()
                .trim_matches(['[', ']', '"']);
            loc.at(
                span.clone(),
                format!("`{key}` is set twice"),
                &format!(
                    "a key (or table) may appear only once: keep one `{key}` and delete the other"
                ),
            );
            continue;
        }
        loc.at(
            span,
            format!("TOML syntax: {}", e.message()),
            "see https://toml.io/en/v1.0.0 (strings need quotes, one key per line)",
        );
    }
}

/// Deserializes one table, recording (and dropping) each bad key until serde
/// accepts the rest.
pub(crate) fn section<'i, T: Deserialize<'i> + Default>(
    loc: &mut Locator<'_>,
    name: &str,
    keys: &[(&str, &str)],
    value: &Spanned<DeValue<'i>>,
) -> T {
    if !matches!(value.get_ref(), DeValue::Table(_)) {
        loc.at(
            value.span(),
            format!("`{name}` must be a table"),
            &format!("write it as a [{name}] section"),
        );
        return T::default();
    }
    let table_start = value.span().start;
    let mut value = value.clone();
    loop {
        let err = match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(t) => return t,
            Err(err) => err,
        };
        let DeValue::Table(table) = value.get_mut() else {
            return T::default();
        };
        let span = err.span();
        let bad = span.as_ref().and_then(|s| {
            table
                .iter()
                .find(|(k, v)| within(&k.span(), s) || within(&v.span(), s))
                .map(|(k, _)| k.get_ref().to_string())
        });
        let message = err.message();
        match &bad {
            Some(key) if message.starts_with("unknown field") => {
                let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
                let hint = match suggest(key, &names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("keys of [{name}]: {}", names.join(", ")),
                };
                loc.at(
                    span.clone().unwrap_or(0..0),
                    format!("unknown key `{key}` in [{name}]"),
                    &hint,
                );
            }
            Some(key) => {
                let example = keys.iter().find(|(k, _)| k == key).map(|(_, e)| *e);
                let hint = example.map_or(String::new(), |e| format!("for example: {e}"));
                let (message, hint) = type_problem(&format!("{name}.{key}"), message, hint);
                loc.at(span.clone().unwrap_or(0..0), message, &hint);
                loc.mark_invalid(table_start, key);
            }
            None => {
                loc.report(span, format!("[{name}]: {message}"), None);
                return T::default();
            }
        }
        if let Some(key) = bad {
            table.remove(key.as_str());
        }
    }
}

/// The range of each integer key, for a value too large to be read at all.
const INT_RANGES: &[(&str, &str)] = &[
    ("node.asn", "1 to 4294967295"),
    ("peer.asn", "1 to 4294967295"),
    ("bgp.listen_port", "0 to 65535"),
    ("bgp.hold_time", "0 or 3 to 65535"),
    ("peer.hold_time", "0 or 3 to 65535"),
    ("bgp.connect_retry", "1 to 65535"),
    ("bgp.restart_time", "0 to 4095"),
    ("peer.port", "1 to 65535"),
    ("peer.ttl_security", "1 to 254"),
    ("peer.max_prefixes", "1 to 4294967295"),
    ("dataplane.mtu", "0 or 576 to 65535"),
    ("dataplane.vxlan_vni", "1 to 16777215"),
    ("dataplane.vxlan_port", "1 to 65535"),
    ("dataplane.route_protocol", "0 to 255"),
];

/// A serde type error in an operator's words: "node.asn must be a number, not a
/// string"; an integer too large for any field says the key's range.
fn type_problem(key: &str, message: &str, hint: String) -> (String, String) {
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        return (format!("{key}: {message}"), hint);
    };
    let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
    if found.starts_with("integer") && found.ends_with("as i128") {
        let digits = found.split('`').nth(1).unwrap_or("this number");
        let range = INT_RANGES
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("a smaller number", |(_, r)| r);
        return (format!("{key} {digits} is out of range: {range}"), hint);
    }
    let kind = |what: &str, found: bool| -> &'static str {
        match what
            .split([' ', '`'])
            .find(|w| !w.is_empty() && *w != "a" && *w != "an")
        {
            Some("string") => "a string",
            Some("integer" | "i64" | "u64" | "u32" | "u16" | "u8") => "a number",
            Some("floating") | Some("f64") => "a decimal number",
            Some("boolean") if found => "a boolean",
            Some("boolean") => "true or false",
            Some("sequence") => "an array",
            Some("map") => "a table",
            Some("false,") => "true, false or a number",
            _ => "a value of another type",
        }
    };
    let expected = if expected.contains("or an array of strings") {
        "a string or an array of strings"
    } else {
        kind(expected, false)
    };
    (
        format!("{key} must be {expected}, not {}", kind(found, true)),
        hint,
    )
}

fn within(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// The closest known name to a misspelt one, if close enough to be a typo.
pub(crate) fn suggest<'a>(word: &str, names: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    names
        .iter()
        .map(|n| (levenshtein(&word, n), *n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 4) || word.replace('-', "_") == *n)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(
            suggest("holdtime", &["hold_time", "port"]),
            Some("hold_time")
        );
        assert_eq!(
            suggest("hold-time", &["hold_time", "port"]),
            Some("hold_time")
        );
        assert_eq!(suggest("peers", &["node", "peer"]), Some("peer"));
        assert_eq!(suggest("completely_else", &["node", "peer"]), None);
    }

    #[test]
    fn key_tables_match_the_serde_structs() {
        // Every listed key is accepted by its struct (with a well-typed example
        // value), so the lists used for hints and docs cannot drift.
        for (section_name, keys) in SECTIONS {
            for (key, example) in *keys {
                let text = format!("[{section_name}]\n{example}\n");
                let text = if *section_name == "peer" || *section_name == "filter" {
                    format!("[[{section_name}]]\n{example}\n")
                } else {
                    text
                };
                let mut loc = Locator::new("t", &text);
                let raw = read(&mut loc, &text);
                assert!(raw.is_some(), "{key}");
                assert!(loc.problems.is_empty(), "{key}: {:?}", loc.problems);
            }
        }
        for (key, example) in crate::policy::RULE_KEYS {
            let text = format!("[[filter]]\nname = \"f\"\n[[filter.rule]]\n{example}\n");
            let mut loc = Locator::new("t", &text);
            let raw = read(&mut loc, &text);
            assert!(raw.is_some_and(|r| r.filters[0].rules.len() == 1), "{key}");
            assert!(loc.problems.is_empty(), "{key}: {:?}", loc.problems);
        }
    }
}
