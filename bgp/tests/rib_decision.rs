//! Decision process (RFC 4271 §9.1.2.2, RFC 4456 §9): each step picks the best
//! path and records why the loser lost; ECMP sets.

mod rib_common;

use rib_common::*;
use tortie_bgp::rib::{LossReason, PeerId, Rib, RibConfig};
use tortie_bgp::types::{AsPathSegment, Origin};

/// Sends `a` for 203.0.113.0/24 from peers 1 and 2 and returns
/// (best peer, loser's reason).
fn duel(
    rib: &mut Rib,
    a1: tortie_bgp::types::PathAttributes,
    a2: tortie_bgp::types::PathAttributes,
) -> (u32, LossReason) {
    apply(rib, 1, announce(&["203.0.113.0/24"], a1));
    apply(rib, 2, announce(&["203.0.113.0/24"], a2));
    let c = rib.explain(pfx("203.0.113.0/24"));
    assert_eq!(c.len(), 2);
    assert!(c[0].best && !c[1].best);
    assert_eq!(c[0].lost_because, None);
    (
        c[0].peer.unwrap().0,
        c[1].lost_because.expect("loser has a reason"),
    )
}

fn two_ibgp() -> Rib {
    let mut r = rib();
    up(&mut r, 1, peer_info(1, LOCAL_AS));
    up(&mut r, 2, peer_info(2, LOCAL_AS));
    r
}

fn two_ebgp(as1: u32, as2: u32) -> Rib {
    let mut r = rib();
    up(&mut r, 1, peer_info(1, as1));
    up(&mut r, 2, peer_info(2, as2));
    r
}

#[test]
fn highest_local_pref_wins() {
    let mut r = two_ibgp();
    let mut a1 = attrs(&[65010], "192.0.2.1");
    a1.local_pref = Some(100);
    let mut a2 = attrs(&[65010, 65011, 65012], "192.0.2.2");
    a2.local_pref = Some(200);
    assert_eq!(duel(&mut r, a1, a2), (2, LossReason::LocalPref));
}

#[test]
fn missing_local_pref_counts_as_100() {
    let mut r = two_ibgp();
    let a1 = attrs(&[65010], "192.0.2.1");
    let mut a2 = attrs(&[65010, 65011], "192.0.2.2");
    a2.local_pref = Some(99);
    assert_eq!(duel(&mut r, a1, a2), (1, LossReason::LocalPref));
}

#[test]
fn ebgp_local_pref_is_ignored_on_import() {
    // RFC 4271 §5.1.5: a LOCAL_PREF from an external peer must not count.
    let mut r = two_ebgp(65001, 65002);
    let mut a1 = attrs(&[65001, 65100, 65101], "192.0.2.1");
    a1.local_pref = Some(500);
    let a2 = attrs(&[65002], "192.0.2.2");
    assert_eq!(duel(&mut r, a1, a2), (2, LossReason::AsPathLength));
}

#[test]
fn shortest_as_path_wins_and_an_as_set_counts_one() {
    let mut r = two_ebgp(65001, 65002);
    let a1 = attrs(&[65001, 65003, 65004], "192.0.2.1");
    let mut a2 = attrs(&[65002], "192.0.2.2");
    a2.as_path
        .segments
        .push(AsPathSegment::Set(vec![1, 2, 3, 4, 5].into()));
    assert_eq!(a2.as_path.path_len(), 2);
    assert_eq!(duel(&mut r, a1, a2), (2, LossReason::AsPathLength));
}

#[test]
fn lowest_origin_wins() {
    let mut r = two_ebgp(65001, 65002);
    let mut a1 = attrs(&[65001], "192.0.2.1");
    a1.origin = Origin::Incomplete;
    let mut a2 = attrs(&[65002], "192.0.2.2");
    a2.origin = Origin::Egp;
    assert_eq!(duel(&mut r, a1, a2), (2, LossReason::Origin));
}

#[test]
fn lowest_med_wins_within_the_same_neighbour_as() {
    let mut r = two_ebgp(65001, 65001);
    let mut a1 = attrs(&[65001], "192.0.2.1");
    a1.med = Some(20);
    let mut a2 = attrs(&[65001], "192.0.2.2");
    a2.med = Some(10);
    assert_eq!(duel(&mut r, a1, a2), (2, LossReason::Med));
}

#[test]
fn missing_med_is_zero() {
    let mut r = two_ebgp(65001, 65001);
    let a1 = attrs(&[65001], "192.0.2.1");
    let mut a2 = attrs(&[65001], "192.0.2.2");
    a2.med = Some(1);
    assert_eq!(duel(&mut r, a2, a1), (2, LossReason::Med));
}

#[test]
fn med_is_not_compared_across_neighbour_ases() {
    // Different neighbour AS: MED is skipped, router id decides (peer 1 has the lower one).
    let mut r = two_ebgp(65001, 65002);
    let mut a1 = attrs(&[65001], "192.0.2.1");
    a1.med = Some(1000);
    let mut a2 = attrs(&[65002], "192.0.2.2");
    a2.med = Some(1);
    assert_eq!(duel(&mut r, a1, a2), (1, LossReason::RouterId));
}

#[test]
fn med_elimination_does_not_depend_on_arrival_order() {
    // A (AS 65001, MED 10, peer 3), B (AS 65001, MED 5, peer 4), C (AS 65002, peer 5).
    // Per §9.1.2.2 c, A is removed by B; B and C go on to the router id step (B: lower id).
    for order in [[3u32, 4, 5], [5, 4, 3], [4, 5, 3], [3, 5, 4]] {
        let mut r = rib();
        up(&mut r, 3, peer_info(3, 65001));
        up(&mut r, 4, peer_info(4, 65001));
        up(&mut r, 5, peer_info(5, 65002));
        for id in order {
            let a = match id {
                3 => tortie_bgp::types::PathAttributes {
                    med: Some(10),
                    ..attrs(&[65001], "192.0.2.3")
                },
                4 => tortie_bgp::types::PathAttributes {
                    med: Some(5),
                    ..attrs(&[65001], "192.0.2.4")
                },
                _ => attrs(&[65002], "192.0.2.5"),
            };
            apply(&mut r, id, announce(&["198.51.100.0/24"], a));
        }
        let c = r.explain(pfx("198.51.100.0/24"));
        let reason = |id: u32| {
            c.iter()
                .find(|c| c.peer == Some(PeerId(id)))
                .unwrap()
                .lost_because
        };
        assert_eq!(c[0].peer, Some(PeerId(4)), "order {order:?}");
        assert_eq!(reason(3), Some(LossReason::Med));
        assert_eq!(reason(5), Some(LossReason::RouterId));
    }
}

#[test]
fn ebgp_beats_ibgp() {
    let mut r = rib();
    up(&mut r, 1, peer_info(1, LOCAL_AS));
    up(&mut r, 2, peer_info(2, 65001));
    let a1 = attrs(&[65001], "192.0.2.1");
    let a2 = attrs(&[65001], "192.0.2.2");
    assert_eq!(duel(&mut r, a1, a2), (2, LossReason::EbgpOverIbgp));
}

#[test]
fn lowest_router_id_then_originator_id_stands_in() {
    let mut r = two_ibgp();
    // Same path; router ids 10.255.0.1 < 10.255.0.2.
    assert_eq!(
        duel(
            &mut r,
            attrs(&[65010], "192.0.2.9"),
            attrs(&[65010], "192.0.2.9")
        ),
        (1, LossReason::RouterId)
    );
    // Peer 1's route carries an ORIGINATOR_ID above peer 2's router id (RFC 4456 §9).
    let mut r = two_ibgp();
    let mut a1 = attrs(&[65010], "192.0.2.9");
    a1.originator_id = Some(v4("10.255.0.200"));
    assert_eq!(
        duel(&mut r, a1, attrs(&[65010], "192.0.2.9")),
        (2, LossReason::RouterId)
    );
}

#[test]
fn shorter_cluster_list_wins() {
    let mut r = two_ibgp();
    let mut a1 = attrs(&[65010], "192.0.2.9");
    a1.originator_id = Some(v4("10.9.9.9"));
    a1.cluster_list = vec![v4("10.1.1.1"), v4("10.1.1.2")];
    let mut a2 = a1.clone();
    a2.cluster_list = vec![v4("10.1.1.3")];
    assert_eq!(duel(&mut r, a1, a2), (2, LossReason::ClusterListLength));
}

#[test]
fn lowest_peer_address_breaks_the_last_tie() {
    let mut r = rib();
    // Both peers report the same router id; peer 2 has the lower address.
    let mut i1 = peer_info(1, LOCAL_AS);
    i1.address = ip("192.0.2.50");
    let mut i2 = peer_info(2, LOCAL_AS);
    i2.remote_router_id = i1.remote_router_id;
    i2.address = ip("192.0.2.40");
    up(&mut r, 1, i1);
    up(&mut r, 2, i2);
    assert_eq!(
        duel(
            &mut r,
            attrs(&[65010], "192.0.2.9"),
            attrs(&[65010], "192.0.2.9")
        ),
        (2, LossReason::PeerAddress)
    );
}

#[test]
fn locally_originated_wins_over_learned() {
    let mut r = rib();
    up(&mut r, 1, peer_info(1, LOCAL_AS));
    let mut a = attrs(&[], "192.0.2.1");
    a.local_pref = Some(1000);
    apply(&mut r, 1, announce(&["10.10.0.0/16"], a));
    let out = r.originate(pfx("10.10.0.0/16"), None);
    assert_eq!(out.best_changes.len(), 1);
    assert!(out.best_changes[0].locally_originated);
    assert!(out.best_changes[0].next_hops.is_empty());
    let c = r.explain(pfx("10.10.0.0/16"));
    assert_eq!(c[0].peer, None);
    assert_eq!(c[1].lost_because, Some(LossReason::LocallyOriginated));
    // Withdrawing ours falls back to the learned route.
    let out = r.withdraw_local(pfx("10.10.0.0/16"));
    assert_eq!(out.best_changes[0].next_hops, vec![ip("192.0.2.1")]);
    assert!(!out.best_changes[0].locally_originated);
}

#[test]
fn ecmp_over_equal_paths_from_the_same_neighbour_as() {
    let mut r = rib();
    for n in 1..=3 {
        up(&mut r, n, peer_info(n as u8, 65001));
    }
    let o1 = apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001, 65100], "192.0.2.1")),
    );
    assert_eq!(o1.best_changes[0].next_hops, vec![ip("192.0.2.1")]);
    let o2 = apply(
        &mut r,
        2,
        announce(&["203.0.113.0/24"], attrs(&[65001, 65100], "192.0.2.2")),
    );
    assert_eq!(o2.best_changes.len(), 1);
    assert_eq!(
        o2.best_changes[0].next_hops,
        vec![ip("192.0.2.1"), ip("192.0.2.2")]
    );
    // A longer path is not part of the set and changes nothing.
    let o3 = apply(
        &mut r,
        3,
        announce(
            &["203.0.113.0/24"],
            attrs(&[65001, 65100, 65101], "192.0.2.3"),
        ),
    );
    assert!(o3.best_changes.is_empty());
    let c = r.explain(pfx("203.0.113.0/24"));
    assert_eq!(c.iter().filter(|c| c.ecmp).count(), 2);
    assert_eq!(c[1].lost_because, Some(LossReason::RouterId));
    assert!(c[1].ecmp);
    assert_eq!(c[2].lost_because, Some(LossReason::AsPathLength));
    // Losing the best path shrinks the set to the remaining member.
    let o4 = apply(&mut r, 1, withdraw(&["203.0.113.0/24"]));
    assert_eq!(o4.best_changes[0].next_hops, vec![ip("192.0.2.2")]);
    assert_eq!(
        r.best(pfx("203.0.113.0/24")).unwrap().next_hops,
        vec![ip("192.0.2.2")]
    );
}

#[test]
fn no_ecmp_across_neighbour_ases_or_ibgp_and_ebgp() {
    let mut r = two_ebgp(65001, 65002);
    apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.1")),
    );
    let o = apply(
        &mut r,
        2,
        announce(&["203.0.113.0/24"], attrs(&[65002], "192.0.2.2")),
    );
    assert!(o.best_changes.is_empty(), "{o:?}");
    assert_eq!(
        r.best(pfx("203.0.113.0/24")).unwrap().next_hops,
        vec![ip("192.0.2.1")]
    );

    let mut r = rib();
    up(&mut r, 1, peer_info(1, 65001));
    up(&mut r, 2, peer_info(2, LOCAL_AS));
    apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.1")),
    );
    apply(
        &mut r,
        2,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.2")),
    );
    assert_eq!(
        r.best(pfx("203.0.113.0/24")).unwrap().next_hops,
        vec![ip("192.0.2.1")]
    );
}

#[test]
fn max_paths_one_disables_ecmp() {
    let mut cfg = RibConfig::new(LOCAL_AS, ROUTER_ID);
    cfg.max_paths = 1;
    let mut r = Rib::new(cfg);
    up(&mut r, 1, peer_info(1, 65001));
    up(&mut r, 2, peer_info(2, 65001));
    apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.1")),
    );
    apply(
        &mut r,
        2,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.2")),
    );
    assert_eq!(
        r.best(pfx("203.0.113.0/24")).unwrap().next_hops,
        vec![ip("192.0.2.1")]
    );
}

#[test]
fn ecmp_members_with_the_same_next_hop_give_one_next_hop() {
    let mut r = two_ibgp();
    apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.77")),
    );
    let o = apply(
        &mut r,
        2,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.77")),
    );
    // Same attribute set, same next hop: nothing the kernel would see changed.
    assert!(o.best_changes.is_empty());
    assert_eq!(
        r.best(pfx("203.0.113.0/24")).unwrap().next_hops,
        vec![ip("192.0.2.77")]
    );
}
