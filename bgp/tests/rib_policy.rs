//! Safe defaults and operator policy in the RIB: the import guard (own
//! blocks/addresses, gateway, martians), NEXT_HOP sanity (RFC 4271 §6.3),
//! RFC 1997 well-known communities, no eBGP-to-eBGP transit without a filter,
//! and import/export filters with their modifiers.

mod rib_common;

use std::sync::Arc;

use rib_common::*;
use tortie_bgp::policy::{
    self, Action, Filter, GuardReason, ImportGuard, Matches, Modifiers, PrefixMatch, RouteSource,
    Rule,
};
use tortie_bgp::rib::{FilteredBy, PeerId, PeerInfo, Rib, RibConfig};
use tortie_bgp::types::AddressFamily;

const NODE: &str = "192.0.2.254";

/// A node with block 10.244.1.0/26 and address 192.0.2.254, no transit.
fn node() -> Rib {
    let mut cfg = RibConfig::new(LOCAL_AS, ROUTER_ID);
    cfg.guard = ImportGuard::new(
        vec![pfx("10.244.1.0/26")],
        vec![ip(NODE)],
        vec![ip("169.254.1.1")],
    );
    Rib::new(cfg)
}

fn filter(name: &str, rules: Vec<Rule>) -> Option<Arc<Filter>> {
    Some(Arc::new(Filter {
        name: name.into(),
        rules,
    }))
}

fn installed(r: &Rib, p: &str) -> bool {
    r.best(pfx(p)).is_some()
}

/// Refusals are counted per family (the `family` label of
/// `tortie_bgp_filtered_routes`), and forgotten per family.
#[test]
fn filtered_routes_are_counted_per_family() {
    let mut r = node();
    let mut info = peer_info(1, 65001);
    info.families = vec![AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST];
    up(&mut r, 1, info);
    apply(
        &mut r,
        1,
        announce(
            &["127.0.0.0/8", "10.244.1.0/27"],
            attrs(&[65001], "192.0.2.1"),
        ),
    );
    apply(
        &mut r,
        1,
        announce(
            &["fe80::/64", "2001:db8::/32"],
            attrs(&[65001], "2001:db8::1"),
        ),
    );
    let c = r.peer_counters(PeerId(1)).unwrap();
    assert_eq!((c.filtered, c.filtered_ipv6), (3, 1));
    assert_eq!((c.received, c.received_ipv6), (1, 1));
    apply(&mut r, 1, withdraw(&["fe80::/64"]));
    let c = r.peer_counters(PeerId(1)).unwrap();
    assert_eq!((c.filtered, c.filtered_ipv6), (2, 0));
    apply(
        &mut r,
        1,
        announce(&["ff02::/16"], attrs(&[65001], "2001:db8::1")),
    );
    r.peer_down(PeerId(1), true);
    let c = r.peer_counters(PeerId(1)).unwrap();
    assert_eq!((c.filtered, c.filtered_ipv6), (0, 0));
}

#[test]
fn a_peer_announcing_our_block_our_address_and_a_default_gets_only_the_default_in() {
    let mut r = node();
    up(&mut r, 1, peer_info(1, 65001));
    let prefixes = [
        "10.244.1.0/26",
        "10.244.1.7/32",
        "192.0.2.254/32",
        "169.254.1.1/32",
        "127.0.0.0/8",
        "224.0.0.0/4",
        "0.0.0.0/0",
    ];
    let out = apply(&mut r, 1, announce(&prefixes, attrs(&[65001], "192.0.2.1")));
    assert_eq!(out.best_changes.len(), 1, "{:?}", out.best_changes);
    assert!(installed(&r, "0.0.0.0/0"));
    for p in &prefixes[..6] {
        assert!(!installed(&r, p), "{p}");
    }
    let c = r.peer_counters(PeerId(1)).unwrap();
    assert_eq!((c.received, c.filtered), (1, 6));
    let f = r.filtered();
    assert_eq!(f.len(), 6);
    let why = |p: &str| {
        r.filtered_for(pfx(p))
            .first()
            .map(|f| f.reason.clone())
            .unwrap()
    };
    assert_eq!(
        why("10.244.1.7/32"),
        FilteredBy::Guard(GuardReason::OwnBlock(pfx("10.244.1.0/26")))
    );
    assert_eq!(
        why("192.0.2.254/32"),
        FilteredBy::Guard(GuardReason::OwnAddress(ip(NODE)))
    );
    assert_eq!(
        why("169.254.1.1/32"),
        FilteredBy::Guard(GuardReason::Gateway(ip("169.254.1.1")))
    );
    assert!(matches!(
        why("127.0.0.0/8"),
        FilteredBy::Guard(GuardReason::Martian(_))
    ));
    assert_eq!(
        r.filtered_for(pfx("10.244.1.7/32"))[0].peer_address,
        ip("192.0.2.1")
    );
    // A withdrawal forgets the refusal; the session ending forgets them all.
    apply(&mut r, 1, withdraw(&["127.0.0.0/8"]));
    assert_eq!(r.peer_counters(PeerId(1)).unwrap().filtered, 5);
    r.peer_down(PeerId(1), false);
    assert!(r.filtered().is_empty());
}

#[test]
fn a_next_hop_of_our_own_or_loopback_makes_the_route_unfeasible() {
    let mut r = node();
    up(&mut r, 1, peer_info(1, 65001));
    apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.1")),
    );
    assert!(installed(&r, "203.0.113.0/24"));
    // RFC 4271 §6.3: the same route again with our own address as NEXT_HOP
    // is withdrawn, not installed.
    let out = apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001], NODE)),
    );
    assert!(!installed(&r, "203.0.113.0/24"));
    assert_eq!(out.best_changes.len(), 1);
    assert_eq!(out.best_changes[0].attributes, None);
    for nh in ["127.0.0.1", "0.0.0.0", "224.0.0.1"] {
        apply(
            &mut r,
            1,
            announce(&["198.51.100.0/24"], attrs(&[65001], nh)),
        );
        assert!(!installed(&r, "198.51.100.0/24"), "{nh}");
        assert!(matches!(
            &r.filtered_for(pfx("198.51.100.0/24"))[0].reason,
            FilteredBy::Guard(GuardReason::NextHop(..))
        ));
    }
    // A good next hop again: accepted, no longer filtered.
    apply(
        &mut r,
        1,
        announce(&["198.51.100.0/24"], attrs(&[65001], "192.0.2.1")),
    );
    assert!(installed(&r, "198.51.100.0/24"));
    assert_eq!(r.peer_counters(PeerId(1)).unwrap().filtered, 1);
}

/// Peers 1 and 2 external (AS 65001, 65002), 3 internal.
fn three(cfg_transit: bool) -> Rib {
    let mut cfg = RibConfig::new(LOCAL_AS, ROUTER_ID);
    cfg.ebgp_requires_policy = !cfg_transit;
    let mut r = Rib::new(cfg);
    up(&mut r, 1, peer_info(1, 65001));
    up(&mut r, 2, peer_info(2, 65002));
    up(&mut r, 3, peer_info(3, LOCAL_AS));
    r
}

#[test]
fn well_known_communities_are_honoured_on_export() {
    // (communities, to eBGP peer 2, to iBGP peer 3); transit allowed so that
    // only the communities decide.
    let table: &[(&[u32], bool, bool)] = &[
        (&[], true, true),
        (&[0xfde8_0001], true, true),
        (&[policy::NO_EXPORT], false, true),
        (&[policy::NO_EXPORT_SUBCONFED], false, true),
        (&[policy::NO_ADVERTISE], false, false),
        (&[0xfde8_0001, policy::NO_EXPORT], false, true),
    ];
    for (comms, to_ebgp, to_ibgp) in table {
        let mut r = three(true);
        let mut a = attrs(&[65001], "192.0.2.1");
        a.communities = comms.to_vec();
        let out = apply(&mut r, 1, announce(&["203.0.113.0/24"], a));
        assert_eq!(
            announced_to(&out, 2, "203.0.113.0/24").is_some(),
            *to_ebgp,
            "{comms:x?}"
        );
        assert_eq!(
            announced_to(&out, 3, "203.0.113.0/24").is_some(),
            *to_ibgp,
            "{comms:x?}"
        );
        assert!(installed(&r, "203.0.113.0/24"), "still used locally");
    }
    // Our own routes too.
    let mut r = three(true);
    let mut a = attrs(&[], "192.0.2.254");
    a.next_hop = None;
    a.communities = vec![policy::NO_EXPORT];
    let out = r.originate_with(pfx("10.244.1.0/26"), a);
    assert!(announced_to(&out, 1, "10.244.1.0/26").is_none());
    assert!(announced_to(&out, 3, "10.244.1.0/26").is_some());
}

fn accept_all() -> Rule {
    Rule {
        matches: Matches::default(),
        action: Action::Accept,
        modifiers: Modifiers::default(),
    }
}

#[test]
fn no_transit_between_external_peers_unless_a_filter_accepts() {
    let mut r = three(false);
    let out = apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.1")),
    );
    assert!(
        announced_to(&out, 2, "203.0.113.0/24").is_none(),
        "no transit"
    );
    assert!(
        announced_to(&out, 3, "203.0.113.0/24").is_some(),
        "iBGP gets it"
    );
    // Our own routes still go everywhere.
    let out = r.originate(pfx("10.244.1.0/26"), None);
    assert!(announced_to(&out, 1, "10.244.1.0/26").is_some());
    assert!(announced_to(&out, 2, "10.244.1.0/26").is_some());
    // iBGP-learned routes go to external peers as before.
    let out = apply(
        &mut r,
        3,
        announce(&["198.51.100.0/24"], attrs(&[], "192.0.2.3")),
    );
    assert!(announced_to(&out, 2, "198.51.100.0/24").is_some());
    // A filter on peer 2 whose rule accepts explicitly lets transit through;
    // falling off the end of a filter does not.
    let mut info = peer_info(2, 65002);
    info.export_filter = filter(
        "to-2",
        vec![Rule {
            matches: Matches {
                prefixes: vec![PrefixMatch {
                    prefix: pfx("203.0.113.0/24"),
                    ge: None,
                    le: None,
                }],
                ..Default::default()
            },
            ..accept_all()
        }],
    );
    let out = up(&mut r, 2, info);
    assert!(announced_to(&out, 2, "203.0.113.0/24").is_some());
    let out = apply(
        &mut r,
        1,
        announce(&["192.0.2.128/25"], attrs(&[65001], "192.0.2.1")),
    );
    assert!(announced_to(&out, 2, "192.0.2.128/25").is_none());
}

#[test]
fn import_filter_rejects_and_modifies() {
    let mut r = node();
    let mut info = peer_info(1, 65001);
    info.import_filter = filter(
        "tor-in",
        vec![
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
                    prefixes: vec![PrefixMatch {
                        prefix: pfx("0.0.0.0/0"),
                        ge: None,
                        le: None,
                    }],
                    ..Default::default()
                },
                action: Action::Accept,
                modifiers: Modifiers {
                    local_pref: Some(50),
                    add_communities: vec![0xfde8_0032],
                    ..Default::default()
                },
            },
        ],
    );
    up(&mut r, 1, info);
    let u = announce(
        &["0.0.0.0/0", "203.0.113.0/24"],
        attrs(&[65001], "192.0.2.1"),
    );
    apply(&mut r, 1, u);
    let d = r.best(pfx("0.0.0.0/0")).unwrap().attributes.unwrap();
    assert_eq!(
        (d.local_pref, d.communities.clone()),
        (Some(50), vec![0xfde8_0032])
    );
    let o = r.best(pfx("203.0.113.0/24")).unwrap().attributes.unwrap();
    assert_eq!(o.local_pref, None, "unchanged when no rule matches");
    apply(
        &mut r,
        1,
        announce(&["198.51.100.0/24"], attrs(&[65001, 64666], "192.0.2.1")),
    );
    assert!(!installed(&r, "198.51.100.0/24"));
    assert_eq!(
        r.filtered_for(pfx("198.51.100.0/24"))[0].reason,
        FilteredBy::Policy {
            filter: "tor-in".into(),
            rule: 0
        }
    );
    assert_eq!(
        r.filtered_for(pfx("198.51.100.0/24"))[0].reason.to_string(),
        "filter \"tor-in\" rule 1"
    );
}

#[test]
fn export_filter_selects_sources_and_sets_communities_and_prepends() {
    let mut r = node();
    let mut info = peer_info(1, 65001);
    info.export_filter = filter(
        "to-tor",
        vec![
            Rule {
                matches: Matches {
                    source: vec![RouteSource::LocalHost],
                    ..Default::default()
                },
                action: Action::Reject,
                modifiers: Modifiers::default(),
            },
            Rule {
                matches: Matches {
                    source: vec![RouteSource::LocalBlock],
                    ..Default::default()
                },
                action: Action::Accept,
                modifiers: Modifiers {
                    add_communities: vec![0xfde8_0064],
                    add_large_communities: vec![[65000, 1, 2]],
                    prepend: 2,
                    local_pref: Some(300),
                    ..Default::default()
                },
            },
        ],
    );
    up(&mut r, 1, info);
    up(&mut r, 3, peer_info(3, LOCAL_AS));
    let out = r.originate(pfx("10.244.1.0/26"), None);
    let a = announced_to(&out, 1, "10.244.1.0/26").expect("block sent");
    assert_eq!(a.communities, vec![0xfde8_0064]);
    assert_eq!(a.large_communities, vec![[65000, 1, 2]]);
    assert_eq!(
        a.as_path.to_string(),
        format!("{LOCAL_AS} {LOCAL_AS} {LOCAL_AS}")
    );
    assert_eq!(a.local_pref, None, "never LOCAL_PREF to eBGP");
    let i = announced_to(&out, 3, "10.244.1.0/26").expect("iBGP unfiltered");
    assert!(i.communities.is_empty());
    let out = r.originate(pfx("10.99.0.5/32"), None);
    assert!(announced_to(&out, 1, "10.99.0.5/32").is_none());
    assert!(announced_to(&out, 3, "10.99.0.5/32").is_some());
    assert_eq!(r.advertised_count(PeerId(1)), 1);
}

#[test]
fn max_prefixes_counts_filtered_routes() {
    let mut r = node();
    let mut info: PeerInfo = peer_info(1, 65001);
    info.max_prefixes = Some(2);
    up(&mut r, 1, info);
    apply(
        &mut r,
        1,
        announce(
            &["10.244.1.0/26", "203.0.113.0/24"],
            attrs(&[65001], "192.0.2.1"),
        ),
    );
    let e = r.apply_update(
        PeerId(1),
        &announce(&["198.51.100.0/24"], attrs(&[65001], "192.0.2.1")),
    );
    assert!(e.is_err(), "{e:?}");
}

#[test]
fn changing_a_peers_filters_sends_only_the_difference() {
    let mut r = node();
    up(&mut r, 1, peer_info(1, 65001));
    r.originate(pfx("10.244.1.0/26"), None);
    r.originate(pfx("10.99.0.5/32"), None);
    assert_eq!(r.advertised_count(PeerId(1)), 2);
    let no_hosts = filter(
        "no-hosts",
        vec![Rule {
            matches: Matches {
                source: vec![RouteSource::LocalHost],
                ..Default::default()
            },
            action: Action::Reject,
            modifiers: Modifiers::default(),
        }],
    );
    let (out, refresh) = r.set_peer_filters(PeerId(1), None, no_hosts.clone());
    assert!(!refresh, "import unchanged");
    let sent = sent_to(&out, 1);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].withdrawn[..], [pfx("10.99.0.5/32")]);
    assert!(sent[0].announced.is_empty());
    assert_eq!(r.advertised_count(PeerId(1)), 1);
    // The same filter again: nothing to send. An import change asks for a refresh.
    let (out, refresh) = r.set_peer_filters(PeerId(1), no_hosts.clone(), no_hosts);
    assert!(out.outbound.is_empty());
    assert!(refresh);
    // Back to no filter: the /32 is announced again.
    let (out, _) = r.set_peer_filters(PeerId(1), None, None);
    assert!(announced_to(&out, 1, "10.99.0.5/32").is_some());
    assert_eq!(r.advertised_count(PeerId(1)), 2);
}

#[test]
fn switching_ebgp_requires_policy_live_sends_the_difference() {
    let mut r = three(false);
    apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.1")),
    );
    r.originate(pfx("10.244.1.0/26"), None);
    assert_eq!(r.advertised_count(PeerId(2)), 1, "our block only");
    // Transit on: peer 2 gets peer 1's route (peer 1 never gets its own back).
    let out = r.set_ebgp_requires_policy(false);
    assert!(announced_to(&out, 2, "203.0.113.0/24").is_some());
    assert!(sent_to(&out, 1).is_empty() && sent_to(&out, 3).is_empty());
    assert_eq!(r.advertised_count(PeerId(2)), 2);
    // Off again: withdrawn.
    let out = r.set_ebgp_requires_policy(true);
    assert_eq!(sent_to(&out, 2)[0].withdrawn[..], [pfx("203.0.113.0/24")]);
    assert_eq!(r.advertised_count(PeerId(2)), 1);
    assert!(r.set_ebgp_requires_policy(true).outbound.is_empty());
}
