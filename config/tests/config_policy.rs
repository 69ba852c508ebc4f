//! Routing policy keys: `[[filter]]` / `[[filter.rule]]`, the per-peer
//! filter names and `max_prefixes_restart`, and `[bgp]`'s policy keys. A
//! valid file resolves to the speaker's filter model; each broken one fails
//! at the offending value's line:column.

use std::sync::Arc;
use std::time::Duration;

use tortie_bgp::policy::{Action, Filter, Matches, Modifiers, PrefixMatch, RouteSource, Rule};
use tortie_config::{Communities, parse_with_hostname};

const NODE: &str = "[node]\nname = \"n\"\naddress = \"192.0.2.11/24\"\nasn = 64512\npod_cidr = \"10.244.1.0/26\"\n";

const POLICY: &str = r#"
[bgp]
ebgp_requires_policy = false
block_communities = ["64512:100", "64512:1:2"]
host_communities = ["no-export"]

[[filter]]
name = "tor-in"

[[filter.rule]]
origin_as = [64666]
action = "reject"

[[filter.rule]]
prefixes = ["0.0.0.0/0", { prefix = "10.0.0.0/8", ge = 16, le = 24 }]
family = "ipv4"
communities = ["65000:1", "65000:2:3"]
as_path_contains = [65001]
action = "accept"
set_local_pref = 200
set_med = 5
add_communities = ["65000:100", "65000:7:7"]
remove_communities = ["65000:1"]

[[filter]]
name = "tor-out"

[[filter.rule]]
source = ["local-host"]
action = "reject"

[[filter.rule]]
source = ["local-block", "learned"]
action = "accept"
prepend = 2

[[peer]]
address = "192.0.2.1"
asn = 65001
import_filter = "tor-in"
export_filter = "tor-out"
max_prefixes_restart = 300
"#;

#[test]
fn filters_resolve_to_the_speakers_model() {
    let text = format!("{NODE}{POLICY}");
    let c = parse_with_hostname(&text, "t.toml", &|| None).unwrap();
    assert!(!c.policy.ebgp_requires_policy);
    assert_eq!(
        c.policy.block_communities,
        Communities {
            standard: vec![(64512 << 16) | 100],
            large: vec![[64512, 1, 2]],
        }
    );
    assert_eq!(c.policy.host_communities.standard, vec![0xFFFF_FF01]);
    let tor_in = Filter {
        name: "tor-in".into(),
        rules: vec![
            Rule {
                matches: Matches {
                    origin_as: vec![64666],
                    ..Default::default()
                },
                action: Action::Reject,
                modifiers: Modifiers::default(),
            },
            Rule {
                matches: Matches {
                    prefixes: vec![
                        PrefixMatch {
                            prefix: "0.0.0.0/0".parse().unwrap(),
                            ge: None,
                            le: None,
                        },
                        PrefixMatch {
                            prefix: "10.0.0.0/8".parse().unwrap(),
                            ge: Some(16),
                            le: Some(24),
                        },
                    ],
                    family: Some(tortie_bgp::Afi::Ipv4),
                    communities: vec![(65000 << 16) | 1],
                    large_communities: vec![[65000, 2, 3]],
                    as_path_contains: vec![65001],
                    ..Default::default()
                },
                action: Action::Accept,
                modifiers: Modifiers {
                    local_pref: Some(200),
                    med: Some(5),
                    add_communities: vec![(65000 << 16) | 100],
                    add_large_communities: vec![[65000, 7, 7]],
                    remove_communities: vec![(65000 << 16) | 1],
                    ..Default::default()
                },
            },
        ],
    };
    assert_eq!(c.policy.filters.len(), 2);
    assert_eq!(*c.policy.filters[0], tor_in);
    let p = &c.peers[0];
    assert_eq!(p.import_filter, Some(Arc::new(tor_in)));
    let out = p.export_filter.as_ref().unwrap();
    assert_eq!(
        out.rules[1].matches.source,
        vec![RouteSource::LocalBlock, RouteSource::Learned]
    );
    assert_eq!(out.rules[1].modifiers.prepend, 2);
    assert_eq!(p.max_prefixes_restart, Duration::from_secs(300));
}

#[test]
fn defaults_need_no_policy_keys() {
    let text = format!("{NODE}[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\n");
    let c = parse_with_hostname(&text, "t.toml", &|| None).unwrap();
    assert!(c.policy.ebgp_requires_policy);
    assert!(c.policy.filters.is_empty() && c.policy.block_communities.is_empty());
    assert_eq!(c.peers[0].import_filter, None);
    assert_eq!(c.peers[0].max_prefixes_restart, Duration::from_secs(60));
}

/// (description, text after [node], message substring, line, column)
fn cases() -> Vec<(&'static str, &'static str, &'static str, usize, usize)> {
    vec![
        (
            "unknown filter name",
            "[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\nimport_filter = \"tor-inn\"\n",
            "peer.import_filter: no filter named `tor-inn`",
            9,
            17,
        ),
        (
            "ge greater than le",
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\nprefixes = [{ prefix = \"10.0.0.0/8\", ge = 24, le = 16 }]\naction = \"accept\"\n",
            "ge 24 is greater than le 16",
            9,
            13,
        ),
        (
            "prefix length beyond the family",
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\nprefixes = [\"10.0.0.0/33\"]\naction = \"accept\"\n",
            "prefix length 33 is beyond IPv4's 32",
            9,
            13,
        ),
        (
            "le beyond the family",
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\nprefixes = [{ prefix = \"2001:db8::/32\", le = 129 }]\naction = \"accept\"\n",
            "le 129 is outside 32..=128",
            9,
            13,
        ),
        (
            "malformed community",
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\ncommunities = [\"65000:70000\"]\naction = \"accept\"\n",
            "filter.rule.communities: \"65000:70000\"",
            9,
            16,
        ),
        (
            "malformed block community",
            "[bgp]\nblock_communities = [\"1:2:3:4\"]\n",
            "bgp.block_communities",
            7,
            22,
        ),
        (
            "rule without action",
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\nfamily = \"ipv4\"\n",
            "[[filter.rule]] has no action",
            8,
            1,
        ),
        (
            "modifiers on a reject",
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\naction = \"reject\"\nset_med = 1\n",
            "a rejecting rule cannot change attributes",
            9,
            10,
        ),
        (
            "unknown rule key",
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\naction = \"accept\"\nset_localpref = 1\n",
            "unknown key `set_localpref` in [filter.rule]",
            10,
            1,
        ),
        (
            "filter without name",
            "[[filter]]\n[[filter.rule]]\naction = \"accept\"\n",
            "[[filter]] has no name",
            6,
            1,
        ),
        (
            "duplicate filter",
            "[[filter]]\nname = \"f\"\n[[filter]]\nname = \"f\"\n",
            "filter `f` is defined twice",
            9,
            8,
        ),
        (
            "unknown source",
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\nsource = [\"local\"]\naction = \"accept\"\n",
            "filter.rule.source `local` is not a route source",
            9,
            11,
        ),
        (
            "max_prefixes_restart negative",
            "[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\nmax_prefixes_restart = -1\n",
            "peer.max_prefixes_restart -1 is out of range",
            9,
            24,
        ),
    ]
}

#[test]
fn broken_policy_is_reported_at_its_place() {
    for (what, rest, message, line, column) in cases() {
        let text = format!("{NODE}{rest}");
        let err = match parse_with_hostname(&text, "t.toml", &|| None) {
            Ok(c) => panic!("{what}: accepted → {c:?}"),
            Err(e) => e,
        };
        let p = err
            .problems
            .iter()
            .find(|p| p.message.contains(message))
            .unwrap_or_else(|| panic!("{what}: no {message:?} in {err}"));
        assert_eq!((p.line, p.column), (line, column), "{what}: {p}");
        assert!(
            p.hint.is_some() || message.contains("defined twice"),
            "{what}: no hint"
        );
    }
}
