//! Graceful restart (RFC 4724 §4.2: stale routes, End-of-RIB, sweep), session
//! loss without it, and the max-prefix limit (RFC 4486 Cease/1).

mod rib_common;

use rib_common::*;
use tortie_bgp::rib::{PeerId, Rib, RibError};
use tortie_bgp::types::AddressFamily;

fn setup() -> Rib {
    let mut r = rib();
    let mut i1 = peer_info(1, 65001);
    i1.families = vec![AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST];
    up(&mut r, 1, i1);
    up(&mut r, 2, peer_info(2, 65002));
    apply(
        &mut r,
        1,
        announce(
            &["203.0.113.0/24", "198.51.100.0/24", "192.0.2.128/25"],
            attrs(&[65001], "192.0.2.1"),
        ),
    );
    apply(
        &mut r,
        1,
        announce(&["2001:db8:1::/48"], attrs(&[65001], "2001:db8::1")),
    );
    r
}

#[test]
fn graceful_restart_keeps_stale_routes_until_end_of_rib() {
    let mut r = setup();
    let out = r.peer_down(PeerId(1), true);
    assert!(
        out.is_empty(),
        "stale routes stay in use and advertised: {out:?}"
    );
    assert_eq!(r.loc_rib_len(), 4);
    assert!(r.explain(pfx("203.0.113.0/24"))[0].stale);
    let c = r.peer_counters(PeerId(1)).unwrap();
    assert_eq!((c.up, c.received, c.stale), (false, 4, 4));
    assert_eq!((c.received_ipv6, c.stale_ipv6), (1, 1));
    assert_eq!(r.advertised_count(PeerId(2)), 3);

    // The peer comes back: it gets our table (only peer 2's nothing) and EoR.
    let mut i1 = peer_info(1, 65001);
    i1.families = vec![AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST];
    let out = up(&mut r, 1, i1);
    assert!(out.best_changes.is_empty());
    // It re-learns one route unchanged and one with new attributes.
    let out = apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.1")),
    );
    assert!(out.is_empty(), "re-learned unchanged: {out:?}");
    assert!(!r.explain(pfx("203.0.113.0/24"))[0].stale);
    let out = apply(
        &mut r,
        1,
        announce(&["198.51.100.0/24"], attrs(&[65001, 65010], "192.0.2.1")),
    );
    assert_eq!(out.best_changes.len(), 1);
    assert!(announced_to(&out, 2, "198.51.100.0/24").is_some());
    assert_eq!(r.peer_counters(PeerId(1)).unwrap().stale, 2);

    // End-of-RIB for IPv4: the IPv4 route not re-learned goes, IPv6 stays stale.
    let out = apply(
        &mut r,
        1,
        tortie_bgp::wire::Update {
            end_of_rib: Some(AddressFamily::IPV4_UNICAST),
            ..Default::default()
        },
    );
    assert_eq!(out.best_changes.len(), 1);
    assert_eq!(out.best_changes[0].prefix, pfx("192.0.2.128/25"));
    assert_eq!(out.best_changes[0].attributes, None);
    assert!(withdrawn_to(&out, 2, "192.0.2.128/25"));
    assert_eq!(r.received_count(PeerId(1)), 3);
    let c = r.peer_counters(PeerId(1)).unwrap();
    assert_eq!((c.stale, c.stale_ipv6), (1, 1));
    let out = r.end_of_rib(PeerId(1), AddressFamily::IPV6_UNICAST);
    assert_eq!(out.best_changes.len(), 1);
    let c = r.peer_counters(PeerId(1)).unwrap();
    assert_eq!((c.stale, c.stale_ipv6), (0, 0));
    assert_eq!(r.loc_rib_len(), 2);
}

#[test]
fn restart_timer_expiry_sweeps_everything_stale() {
    let mut r = setup();
    r.peer_down(PeerId(1), true);
    let out = r.sweep_stale(PeerId(1));
    assert_eq!(out.best_changes.len(), 4);
    assert_eq!(sent_to(&out, 2).len(), 1);
    assert_eq!(sent_to(&out, 2)[0].withdrawn.len(), 3);
    assert_eq!(r.loc_rib_len(), 0);
    assert_eq!(r.advertised_count(PeerId(2)), 0);
    assert!(
        r.peer_counters(PeerId(1)).is_none(),
        "a down peer with no paths is forgotten"
    );
}

#[test]
fn stale_routes_still_compete_and_a_fresh_route_wins_on_merit() {
    let mut r = setup();
    r.peer_down(PeerId(1), true);
    // Peer 2 offers a longer path: the stale route stays best (RFC 4724: still used).
    let out = apply(
        &mut r,
        2,
        announce(&["203.0.113.0/24"], attrs(&[65002, 65003], "192.0.2.2")),
    );
    assert!(out.best_changes.is_empty());
    // A shorter one wins.
    let out = apply(
        &mut r,
        2,
        announce(&["198.51.100.0/24"], attrs(&[], "192.0.2.2")),
    );
    assert_eq!(out.best_changes[0].next_hops, vec![ip("192.0.2.2")]);
}

#[test]
fn a_returning_peer_with_another_identity_loses_its_stale_routes() {
    let mut r = setup();
    r.peer_down(PeerId(1), true);
    let out = up(&mut r, 1, peer_info(1, 65111));
    assert_eq!(out.best_changes.len(), 4);
    assert_eq!(r.received_count(PeerId(1)), 0);
}

#[test]
fn session_loss_without_graceful_restart_withdraws_everything() {
    let mut r = setup();
    let out = r.peer_down(PeerId(1), false);
    assert_eq!(out.best_changes.len(), 4);
    assert!(
        out.best_changes
            .iter()
            .all(|c| c.attributes.is_none() && c.next_hops.is_empty())
    );
    assert_eq!(sent_to(&out, 2)[0].withdrawn.len(), 3);
    assert_eq!(r.received_count(PeerId(1)), 0);
    assert!(r.peer_counters(PeerId(1)).is_none());
    assert_eq!(r.loc_rib_len(), 0);
    // Peer 2 going down: nothing to send to anyone.
    assert!(r.peer_down(PeerId(2), false).is_empty());
}

#[test]
fn peer_up_on_an_up_peer_restarts_it_cleanly() {
    let mut r = setup();
    let out = up(&mut r, 1, peer_info(1, 65001));
    // Its routes were dropped (new session), the table sent again.
    assert_eq!(out.best_changes.len(), 4);
    assert_eq!(r.received_count(PeerId(1)), 0);
}

#[test]
fn max_prefix_refuses_the_update_whole() {
    let mut r = rib();
    let mut i = peer_info(1, 65001);
    i.max_prefixes = Some(3);
    up(&mut r, 1, i);
    up(&mut r, 2, peer_info(2, 65002));
    apply(
        &mut r,
        1,
        announce(
            &["10.0.1.0/24", "10.0.2.0/24"],
            attrs(&[65001], "192.0.2.1"),
        ),
    );
    let too_many = announce(
        &["10.0.3.0/24", "10.0.4.0/24"],
        attrs(&[65001], "192.0.2.1"),
    );
    match r.apply_update(PeerId(1), &too_many) {
        Err(RibError::MaxPrefix {
            limit: 3,
            would_have: 4,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(r.received_count(PeerId(1)), 2, "nothing applied");
    assert_eq!(r.loc_rib_len(), 2);
    // Re-announcing known prefixes and withdrawing one to make room is fine.
    let mut u = announce(
        &["10.0.1.0/24", "10.0.3.0/24", "10.0.4.0/24"],
        attrs(&[65001, 65009], "192.0.2.1"),
    );
    u.withdrawn = vec![pfx("10.0.2.0/24")].into();
    apply(&mut r, 1, u);
    assert_eq!(r.received_count(PeerId(1)), 3);
    assert_eq!(r.advertised_count(PeerId(2)), 3);
    // The caller then sends Cease/1 and takes the session down.
    let e = r
        .apply_update(
            PeerId(1),
            &announce(&["10.0.9.0/24"], attrs(&[65001], "192.0.2.1")),
        )
        .unwrap_err();
    assert!(e.to_string().contains("maximum prefix count 3"), "{e}");
}

/// Runs a stepped removal one prefix per step; returns the steps' outputs merged.
fn steps(r: &mut Rib, mut rem: tortie_bgp::rib::Removal) -> tortie_bgp::rib::RibOutput {
    let mut all = tortie_bgp::rib::RibOutput::default();
    while let Some(out) = r.remove_step(&mut rem, 1) {
        all.append(out);
    }
    assert!(rem.is_done());
    all
}

/// Sorted withdrawals and best-path changes, what a teardown's observer sees.
fn seen(out: &tortie_bgp::rib::RibOutput) -> (Vec<String>, Vec<String>) {
    let mut w: Vec<String> = out
        .outbound
        .iter()
        .flat_map(|(p, u)| u.withdrawn.iter().map(move |x| format!("{p} -{x}")))
        .collect();
    let mut b: Vec<String> = out.best_changes.iter().map(|c| format!("{c:?}")).collect();
    w.sort();
    b.sort();
    (w, b)
}

#[test]
fn stepped_sweeps_and_restarts_match_the_one_shot_operations() {
    // Timer expiry (RFC 4724 §4.2): all stale routes go.
    let (mut a, mut b) = (setup(), setup());
    a.peer_down(PeerId(1), true);
    let r = b.peer_down_steps(PeerId(1), true);
    assert!(steps(&mut b, r).is_empty(), "stale routes stay");
    assert_eq!(b.peer_counters(PeerId(1)).unwrap().stale, 4);
    let one = a.sweep_stale(PeerId(1));
    let r = b.sweep_stale_steps(PeerId(1));
    assert_eq!(seen(&one), seen(&steps(&mut b, r)));
    assert!(b.peer_counters(PeerId(1)).is_none());
    assert_eq!(b.loc_rib_len(), 0);

    // End-of-RIB for one family sweeps only that family's stale routes.
    let (mut a, mut b) = (setup(), setup());
    a.peer_down(PeerId(1), true);
    b.peer_down(PeerId(1), true);
    let mut i1 = peer_info(1, 65001);
    i1.families = vec![AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST];
    up(&mut a, 1, i1.clone());
    let r = b.peer_up_steps(PeerId(1), &i1);
    assert!(
        steps(&mut b, r).is_empty(),
        "same identity: stale routes stay"
    );
    up(&mut b, 1, i1);
    let one = a.end_of_rib(PeerId(1), AddressFamily::IPV4_UNICAST);
    let r = b.end_of_rib_steps(PeerId(1), AddressFamily::IPV4_UNICAST);
    assert_eq!(seen(&one), seen(&steps(&mut b, r)));
    assert_eq!(b.loc_rib_len(), 1, "the IPv6 stale route stays");
    assert_eq!(b.peer_counters(PeerId(1)).unwrap().stale, 1);

    // Another identity: its stale routes go before it comes up.
    let (mut a, mut b) = (setup(), setup());
    a.peer_down(PeerId(1), true);
    b.peer_down(PeerId(1), true);
    let one = up(&mut a, 1, peer_info(1, 65111));
    let r = b.peer_up_steps(PeerId(1), &peer_info(1, 65111));
    let stepped = steps(&mut b, r);
    assert_eq!(seen(&one).1, seen(&stepped).1);
    assert_eq!(stepped.best_changes.len(), 4);
    let rest = up(&mut b, 1, peer_info(1, 65111));
    assert!(rest.best_changes.is_empty(), "nothing left for peer_up");
    assert_eq!(b.received_count(PeerId(1)), 0);

    // A session still up: taken down first.
    let mut b = setup();
    let r = b.peer_up_steps(PeerId(1), &peer_info(1, 65001));
    let stepped = steps(&mut b, r);
    assert_eq!(stepped.best_changes.len(), 4);
    assert_eq!(sent_to(&stepped, 2)[0].withdrawn.len(), 1, "one per step");
    assert!(b.peer_counters(PeerId(1)).is_none());
}
