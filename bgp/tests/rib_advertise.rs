//! Outbound rules: eBGP/iBGP advertisement (RFC 4271 §5.1, §9.1.3), route
//! reflection (RFC 4456 §6, §8), loop rejection, packing, origination,
//! peer_up's initial table, route refresh and idempotency.

mod rib_common;

use rib_common::*;
use tortie_bgp::rib::{PeerId, Rib, RibConfig};
use tortie_bgp::types::{AddressFamily, AsPathSegment, RawAttribute};

/// Peers: 1 eBGP AS 65001, 2 eBGP AS 65002, 3 iBGP.
fn three_peers() -> Rib {
    let mut r = rib();
    up(&mut r, 1, peer_info(1, 65001));
    up(&mut r, 2, peer_info(2, 65002));
    up(&mut r, 3, peer_info(3, LOCAL_AS));
    r
}

#[test]
fn ebgp_learned_goes_to_ebgp_with_our_as_and_next_hop_self_and_to_ibgp_unchanged() {
    let mut r = three_peers();
    let mut a = attrs(&[65001, 65100], "192.0.2.1");
    a.med = Some(50);
    a.communities = vec![0xfde8_0001];
    let out = apply(&mut r, 1, announce(&["203.0.113.0/24"], a));
    assert_eq!(out.best_changes.len(), 1);
    assert_eq!(out.best_changes[0].next_hops, vec![ip("192.0.2.1")]);

    // Never back to the peer it came from.
    assert!(sent_to(&out, 1).is_empty());

    let e = announced_to(&out, 2, "203.0.113.0/24").expect("sent to eBGP peer 2");
    assert_eq!(
        e.as_path.segments[..],
        [AsPathSegment::Sequence(vec![LOCAL_AS, 65001, 65100].into())]
    );
    assert_eq!(e.next_hop, Some(ip("192.0.2.254")));
    assert_eq!(e.local_pref, None);
    assert_eq!(
        e.med, None,
        "RFC 4271 §5.1.4: a neighbour AS's MED is not passed on to another AS"
    );
    assert_eq!(e.communities, vec![0xfde8_0001]);

    let i = announced_to(&out, 3, "203.0.113.0/24").expect("sent to iBGP peer 3");
    assert_eq!(
        i.as_path.segments[..],
        [AsPathSegment::Sequence(vec![65001, 65100].into())]
    );
    assert_eq!(i.next_hop, Some(ip("192.0.2.1")));
    assert_eq!(i.local_pref, Some(100));
    assert_eq!(i.med, Some(50));
    assert_eq!(r.advertised_count(PeerId(2)), 1);
    assert_eq!(r.advertised_count(PeerId(3)), 1);
    assert_eq!(r.advertised_count(PeerId(1)), 0);
    assert_eq!(r.received_count(PeerId(1)), 1);
}

#[test]
fn next_hop_self_toward_ibgp_when_asked() {
    let mut r = rib();
    up(&mut r, 1, peer_info(1, 65001));
    let mut i = peer_info(3, LOCAL_AS);
    i.next_hop_self = true;
    up(&mut r, 3, i);
    let out = apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.1")),
    );
    assert_eq!(
        announced_to(&out, 3, "203.0.113.0/24").unwrap().next_hop,
        Some(ip("192.0.2.254"))
    );
}

#[test]
fn ibgp_learned_is_not_sent_to_ibgp_without_reflection_but_goes_to_ebgp() {
    let mut r = three_peers();
    up(&mut r, 4, peer_info(4, LOCAL_AS));
    let out = apply(
        &mut r,
        3,
        announce(&["198.51.100.0/24"], attrs(&[65200], "192.0.2.3")),
    );
    assert!(sent_to(&out, 4).is_empty());
    assert!(sent_to(&out, 3).is_empty());
    assert!(announced_to(&out, 1, "198.51.100.0/24").is_some());
    assert!(announced_to(&out, 2, "198.51.100.0/24").is_some());
}

#[test]
fn route_reflection_rules() {
    let mut r = rib();
    let mut c1 = peer_info(1, LOCAL_AS);
    c1.rr_client = true;
    let mut c2 = peer_info(2, LOCAL_AS);
    c2.rr_client = true;
    up(&mut r, 1, c1);
    up(&mut r, 2, c2);
    up(&mut r, 3, peer_info(3, LOCAL_AS)); // non-client
    up(&mut r, 4, peer_info(4, LOCAL_AS)); // non-client

    // From a client: to the other client and to the non-clients, not back.
    let out = apply(
        &mut r,
        1,
        announce(&["10.1.0.0/24"], attrs(&[], "192.0.2.1")),
    );
    assert!(sent_to(&out, 1).is_empty());
    for target in [2, 3, 4] {
        let a = announced_to(&out, target, "10.1.0.0/24").unwrap_or_else(|| panic!("to {target}"));
        assert_eq!(
            a.originator_id,
            Some(v4("10.255.0.1")),
            "ORIGINATOR_ID = the client's router id"
        );
        assert_eq!(
            a.cluster_list,
            vec![ROUTER_ID],
            "our router id as CLUSTER_ID"
        );
        assert_eq!(
            a.next_hop,
            Some(ip("192.0.2.1")),
            "a reflector keeps NEXT_HOP"
        );
        assert_eq!(a.local_pref, Some(100));
    }

    // From a non-client: to clients only.
    let out = apply(
        &mut r,
        3,
        announce(&["10.3.0.0/24"], attrs(&[], "192.0.2.3")),
    );
    assert!(announced_to(&out, 1, "10.3.0.0/24").is_some());
    assert!(announced_to(&out, 2, "10.3.0.0/24").is_some());
    assert!(sent_to(&out, 4).is_empty());
    assert!(sent_to(&out, 3).is_empty());

    // Not reflected to the router whose id is the ORIGINATOR_ID; an existing
    // CLUSTER_LIST gets our id prepended.
    let mut a = attrs(&[], "192.0.2.9");
    a.originator_id = Some(v4("10.255.0.2"));
    a.cluster_list = vec![v4("10.8.8.8")];
    let out = apply(&mut r, 3, announce(&["10.9.0.0/24"], a));
    assert!(sent_to(&out, 2).is_empty(), "peer 2 originated it");
    let to1 = announced_to(&out, 1, "10.9.0.0/24").unwrap();
    assert_eq!(to1.originator_id, Some(v4("10.255.0.2")));
    assert_eq!(to1.cluster_list, vec![ROUTER_ID, v4("10.8.8.8")]);
}

#[test]
fn configured_cluster_id_is_used() {
    let mut cfg = RibConfig::new(LOCAL_AS, ROUTER_ID);
    cfg.cluster_id = Some(v4("10.77.0.1"));
    let mut r = Rib::new(cfg);
    let mut c1 = peer_info(1, LOCAL_AS);
    c1.rr_client = true;
    up(&mut r, 1, c1);
    up(&mut r, 3, peer_info(3, LOCAL_AS));
    let out = apply(
        &mut r,
        1,
        announce(&["10.1.0.0/24"], attrs(&[], "192.0.2.1")),
    );
    assert_eq!(
        announced_to(&out, 3, "10.1.0.0/24").unwrap().cluster_list,
        vec![v4("10.77.0.1")]
    );
    // A route already carrying our cluster id is a reflection loop: dropped (RFC 4456 §8).
    let mut a = attrs(&[], "192.0.2.3");
    a.cluster_list = vec![v4("10.77.0.1")];
    let out = apply(&mut r, 3, announce(&["10.5.0.0/24"], a));
    assert!(out.is_empty());
    assert!(r.best(pfx("10.5.0.0/24")).is_none());
}

#[test]
fn loops_are_rejected_and_turn_into_withdrawals() {
    let mut r = three_peers();
    apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.1")),
    );
    assert_eq!(r.received_count(PeerId(1)), 1);
    // The same prefix again, now with our AS in the path: the old route goes.
    let out = apply(
        &mut r,
        1,
        announce(
            &["203.0.113.0/24"],
            attrs(&[65001, LOCAL_AS, 65005], "192.0.2.1"),
        ),
    );
    assert_eq!(out.best_changes.len(), 1);
    assert_eq!(out.best_changes[0].attributes, None);
    assert!(withdrawn_to(&out, 2, "203.0.113.0/24"));
    assert!(withdrawn_to(&out, 3, "203.0.113.0/24"));
    assert_eq!(r.received_count(PeerId(1)), 0);
    assert_eq!(r.advertised_count(PeerId(2)), 0);

    // iBGP: our own route reflected back (ORIGINATOR_ID = our router id).
    let mut a = attrs(&[], "192.0.2.3");
    a.originator_id = Some(ROUTER_ID);
    let out = apply(&mut r, 3, announce(&["10.0.0.0/8"], a));
    assert!(out.is_empty());
    assert!(r.explain(pfx("10.0.0.0/8")).is_empty());
}

#[test]
fn paths_containing_the_peers_as_are_not_sent_to_it() {
    let mut r = three_peers();
    let out = apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001, 65002], "192.0.2.1")),
    );
    assert!(sent_to(&out, 2).is_empty());
    assert!(announced_to(&out, 3, "203.0.113.0/24").is_some());
}

#[test]
fn prefixes_sharing_attributes_are_packed_into_one_update() {
    let mut r = three_peers();
    let prefixes: Vec<String> = (0..200)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .collect();
    let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    let out = apply(&mut r, 1, announce(&refs, attrs(&[65001], "192.0.2.1")));
    assert_eq!(out.best_changes.len(), 200);
    let to2 = sent_to(&out, 2);
    assert_eq!(to2.len(), 1);
    assert_eq!(to2[0].announced.len(), 200);
    // Withdrawing them packs into one UPDATE too.
    let out = apply(&mut r, 1, withdraw(&refs));
    let to2 = sent_to(&out, 2);
    assert_eq!(to2.len(), 1);
    assert_eq!(to2[0].withdrawn.len(), 200);
    assert_eq!(r.advertised_count(PeerId(2)), 0);
    assert_eq!(r.loc_rib_len(), 0);
}

#[test]
fn the_same_update_twice_changes_nothing() {
    let mut r = three_peers();
    let u = announce(
        &["203.0.113.0/24", "198.51.100.0/24"],
        attrs(&[65001], "192.0.2.1"),
    );
    assert!(!apply(&mut r, 1, u.clone()).is_empty());
    let again = apply(&mut r, 1, u);
    assert!(again.is_empty(), "{again:?}");
    let w = withdraw(&["203.0.113.0/24"]);
    assert!(!apply(&mut r, 1, w.clone()).is_empty());
    assert!(apply(&mut r, 1, w).is_empty());
    // Withdrawing something never announced is a no-op as well.
    assert!(apply(&mut r, 2, withdraw(&["192.0.2.0/24"])).is_empty());
}

#[test]
fn replacing_the_best_path_sends_an_implicit_withdraw_not_a_withdrawal() {
    let mut r = three_peers();
    apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.1")),
    );
    apply(
        &mut r,
        2,
        announce(&["203.0.113.0/24"], attrs(&[65002, 65003], "192.0.2.2")),
    );
    // Peer 1's route is best; peer 1 gets peer 2's path (split horizon lets it).
    let out = apply(&mut r, 1, withdraw(&["203.0.113.0/24"]));
    assert_eq!(out.best_changes[0].next_hops, vec![ip("192.0.2.2")]);
    let to3 = announced_to(&out, 3, "203.0.113.0/24").unwrap();
    assert_eq!(to3.next_hop, Some(ip("192.0.2.2")));
    assert!(!withdrawn_to(&out, 3, "203.0.113.0/24"));
    // Peer 2 had ours from peer 1; now the best is its own: withdrawn from it.
    assert!(withdrawn_to(&out, 2, "203.0.113.0/24"));
    assert_eq!(r.advertised_count(PeerId(2)), 0);
    assert_eq!(r.advertised_count(PeerId(3)), 1);
    // Peer 1 had nothing (its own route was best); now it gets peer 2's.
    assert!(announced_to(&out, 1, "203.0.113.0/24").is_some());
}

#[test]
fn a_prefix_withdrawn_and_announced_in_one_update_ends_up_announced() {
    let mut r = three_peers();
    apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.1")),
    );
    let mut u = announce(&["203.0.113.0/24"], attrs(&[65001, 65009], "192.0.2.1"));
    u.withdrawn = vec![pfx("203.0.113.0/24")].into();
    let out = apply(&mut r, 1, u);
    assert_eq!(sent_to(&out, 2).len(), 1);
    assert!(announced_to(&out, 2, "203.0.113.0/24").is_some());
    assert_eq!(
        r.best(pfx("203.0.113.0/24"))
            .unwrap()
            .attributes
            .unwrap()
            .as_path
            .path_len(),
        2
    );
}

#[test]
fn originate_and_withdraw_local() {
    let mut r = three_peers();
    let out = r.originate(pfx("10.42.0.0/24"), None);
    assert_eq!(out.best_changes.len(), 1);
    assert!(out.best_changes[0].locally_originated);
    let e = announced_to(&out, 1, "10.42.0.0/24").unwrap();
    assert_eq!(
        e.as_path.segments[..],
        [AsPathSegment::Sequence(vec![LOCAL_AS].into())]
    );
    assert_eq!(e.next_hop, Some(ip("192.0.2.254")));
    let i = announced_to(&out, 3, "10.42.0.0/24").unwrap();
    assert!(i.as_path.segments.is_empty());
    assert_eq!(
        i.next_hop,
        Some(ip("192.0.2.254")),
        "next-hop self for our own route"
    );
    assert_eq!(i.local_pref, Some(100));
    assert!(
        r.originate(pfx("10.42.0.0/24"), None).is_empty(),
        "idempotent"
    );

    let out = r.withdraw_local(pfx("10.42.0.0/24"));
    assert_eq!(out.best_changes.len(), 1);
    assert_eq!(out.best_changes[0].attributes, None);
    for p in [1, 2, 3] {
        assert!(withdrawn_to(&out, p, "10.42.0.0/24"));
        assert_eq!(r.advertised_count(PeerId(p)), 0);
    }
    assert!(r.withdraw_local(pfx("10.42.0.0/24")).is_empty());
}

#[test]
fn peer_up_sends_the_whole_table_then_end_of_rib() {
    let mut r = rib();
    up(&mut r, 1, peer_info(1, 65001));
    apply(
        &mut r,
        1,
        announce(
            &["203.0.113.0/24", "198.51.100.0/24"],
            attrs(&[65001], "192.0.2.1"),
        ),
    );
    r.originate(pfx("10.42.0.0/24"), None);
    let mut info = peer_info(2, 65002);
    info.families = vec![AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST];
    info.alternate_next_hop = Some(ip("2001:db8::254"));
    let out = up(&mut r, 2, info);
    let to2 = sent_to(&out, 2);
    assert_eq!(to2.len(), 4, "{to2:?}"); // two attribute sets, two End-of-RIB
    assert_eq!(to2.iter().map(|u| u.announced.len()).sum::<usize>(), 3);
    assert_eq!(to2[2].end_of_rib, Some(AddressFamily::IPV4_UNICAST));
    assert_eq!(to2[3].end_of_rib, Some(AddressFamily::IPV6_UNICAST));
    assert_eq!(r.advertised_count(PeerId(2)), 3);
    assert!(out.best_changes.is_empty());
}

#[test]
fn route_refresh_resends_the_adj_rib_out() {
    let mut r = three_peers();
    apply(
        &mut r,
        1,
        announce(
            &["203.0.113.0/24", "198.51.100.0/24"],
            attrs(&[65001], "192.0.2.1"),
        ),
    );
    let first = announced_to(&apply_nothing(&mut r), 2, "203.0.113.0/24");
    assert!(first.is_none());
    let out = r.route_refresh(PeerId(2), AddressFamily::IPV4_UNICAST);
    let to2 = sent_to(&out, 2);
    assert_eq!(to2.len(), 1);
    assert_eq!(to2[0].announced.len(), 2);
    assert_eq!(
        to2[0].attributes.as_ref().unwrap().next_hop,
        Some(ip("192.0.2.254"))
    );
    assert!(
        r.route_refresh(PeerId(2), AddressFamily::IPV6_UNICAST)
            .is_empty(),
        "family not negotiated"
    );
    assert!(
        r.route_refresh(PeerId(1), AddressFamily::IPV4_UNICAST)
            .is_empty(),
        "its own routes only"
    );
    assert_eq!(r.advertised_count(PeerId(2)), 2);
}

fn apply_nothing(r: &mut Rib) -> tortie_bgp::rib::RibOutput {
    r.apply_update(PeerId(3), &Default::default()).unwrap()
}

#[test]
fn ipv6_routes_need_a_next_hop_of_their_family() {
    let mut r = rib();
    let mut i1 = peer_info(1, 65001);
    i1.families = vec![AddressFamily::IPV6_UNICAST];
    up(&mut r, 1, i1);
    let mut no_v6 = peer_info(2, 65002);
    no_v6.families = vec![AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST];
    up(&mut r, 2, no_v6);
    let mut with_v6 = peer_info(3, 65003);
    with_v6.families = vec![AddressFamily::IPV6_UNICAST];
    with_v6.alternate_next_hop = Some(ip("2001:db8::254"));
    up(&mut r, 3, with_v6);
    let mut a = attrs(&[65001], "2001:db8::1");
    a.link_local_next_hop = Some("fe80::1".parse().unwrap());
    let out = apply(&mut r, 1, announce(&["2001:db8:100::/48"], a));
    assert_eq!(out.best_changes[0].next_hops, vec![ip("2001:db8::1")]);
    assert!(sent_to(&out, 2).is_empty());
    let to3 = announced_to(&out, 3, "2001:db8:100::/48").unwrap();
    assert_eq!(to3.next_hop, Some(ip("2001:db8::254")));
    assert_eq!(to3.link_local_next_hop, None);
}

#[test]
fn unknown_attributes_transitive_passed_with_partial_bit_others_dropped() {
    let mut r = three_peers();
    let mut a = attrs(&[65001], "192.0.2.1");
    a.unknown = vec![
        RawAttribute {
            flags: 0xc0,
            type_code: 99,
            value: vec![1, 2],
        },
        RawAttribute {
            flags: 0x80,
            type_code: 98,
            value: vec![3],
        },
    ];
    let out = apply(&mut r, 1, announce(&["203.0.113.0/24"], a));
    let e = announced_to(&out, 2, "203.0.113.0/24").unwrap();
    assert_eq!(
        e.unknown,
        vec![RawAttribute {
            flags: 0xe0,
            type_code: 99,
            value: vec![1, 2]
        }]
    );
}

#[test]
fn updates_from_unknown_or_down_peers_and_reserved_ids_are_refused() {
    let mut r = three_peers();
    let u = announce(&["203.0.113.0/24"], attrs(&[65009], "192.0.2.9"));
    assert!(matches!(
        r.apply_update(PeerId(9), &u),
        Err(tortie_bgp::rib::RibError::UnknownPeer(_))
    ));
    r.peer_down(PeerId(2), true);
    assert!(matches!(
        r.apply_update(PeerId(2), &u),
        Err(tortie_bgp::rib::RibError::UnknownPeer(_))
    ));
    apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.1")),
    );
    r.peer_down(PeerId(1), true);
    assert!(matches!(
        r.apply_update(PeerId(1), &u),
        Err(tortie_bgp::rib::RibError::PeerNotUp(_))
    ));
    assert!(r.peer_up(PeerId(u32::MAX), peer_info(9, 65009)).is_err());
}

#[test]
fn a_peer_returning_with_a_new_router_id_is_reflected_with_the_new_originator_id() {
    let mut r = rib();
    let mut c = peer_info(5, LOCAL_AS);
    c.rr_client = true;
    up(&mut r, 5, c.clone());
    up(&mut r, 3, peer_info(3, LOCAL_AS));
    let out = apply(
        &mut r,
        5,
        announce(&["10.5.0.0/24"], attrs(&[], "192.0.2.5")),
    );
    assert_eq!(
        announced_to(&out, 3, "10.5.0.0/24").unwrap().originator_id,
        Some(v4("10.255.0.5"))
    );
    r.peer_down(PeerId(5), false);
    c.remote_router_id = v4("10.255.9.9");
    up(&mut r, 5, c);
    let out = apply(
        &mut r,
        5,
        announce(&["10.5.0.0/24"], attrs(&[], "192.0.2.5")),
    );
    assert_eq!(
        announced_to(&out, 3, "10.5.0.0/24").unwrap().originator_id,
        Some(v4("10.255.9.9"))
    );
}

#[test]
fn a_med_we_set_ourselves_is_sent_to_ebgp() {
    let mut r = three_peers();
    let a = tortie_bgp::types::PathAttributes {
        med: Some(7),
        communities: vec![0xfde8_0063],
        ..Default::default()
    };
    let out = r.originate_with(pfx("10.43.0.0/24"), a);
    let e = announced_to(&out, 1, "10.43.0.0/24").unwrap();
    assert_eq!(
        e.med,
        Some(7),
        "RFC 4271 §5.1.4: our own MED may go to a neighbouring AS"
    );
    assert_eq!(e.communities, vec![0xfde8_0063]);
    assert_eq!(announced_to(&out, 3, "10.43.0.0/24").unwrap().med, Some(7));
}
