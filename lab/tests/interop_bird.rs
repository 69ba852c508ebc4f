//! Interop with BIRD 2 (Debian's bird2): BIRD in one namespace, tortie in
//! another, joined by a veth. See tests/common for the shared checks.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::*;
use tortie_lab::bird::{Bird, BirdConfig, BirdNeighbor};

fn bird_config(passive: bool, password: Option<&str>, gr: bool) -> BirdConfig {
    let mut c = BirdConfig::new(Ipv4Addr::new(198, 51, 100, 1), THEIR_ASN);
    let mut n = BirdNeighbor::new("tortie", OURS.parse().unwrap(), OUR_ASN);
    n.passive = passive;
    n.password = password.map(str::to_string);
    n.graceful_restart = gr;
    n.hold_time = Some(9);
    c.neighbors.push(n);
    c.static_routes.push(THEIR_PREFIX.into());
    c
}

#[test]
fn bird_we_connect_routes_withdrawals_refresh() {
    let Some(pair) = pair("tl-ib1") else { return };
    let cfg = bird_config(true, None, false);
    let bird = Bird::start(&pair.theirs, pair.their_dir.path(), &cfg).unwrap();
    let node = pair.start_tortie(&pair.tortie_config(false, None));
    wait_established(&bird, &node);
    check_routes_both_ways(&pair, &bird, &node);
    check_host_route_withdrawal(&bird, &node);

    // Withdrawal from BIRD: drop its static route.
    let mut without = cfg.clone();
    without.static_routes.clear();
    bird.rewrite(&without).unwrap();
    wait_our_route_gone(&node, THEIR_PREFIX);
    tortie_lab::wait_until("kernel route removed", T, || {
        pair.our_kernel_route(THEIR_PREFIX).is_empty().then_some(())
    })
    .unwrap();
    bird.rewrite(&cfg).unwrap();
    wait_our_route(&node, THEIR_PREFIX);

    // Route refresh (RFC 2918): BIRD asks, we re-send; routes stay, session stays.
    let before = received(&node, "route_refresh");
    let t0 = transitions(&node);
    bird.birdc(&["reload", "in", "tortie"]).unwrap();
    tortie_lab::wait_until("ROUTE-REFRESH counted", T, || {
        (received(&node, "route_refresh") > before).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; status {:?}", node.status()));
    std::thread::sleep(Duration::from_secs(1));
    assert!(wait_their_route(&bird, BLOCK).0 == vec![OUR_ASN]);
    assert_eq!(
        transitions(&node),
        t0,
        "route refresh must not reset the session"
    );
}

#[test]
fn bird_they_connect() {
    let Some(pair) = pair("tl-ib2") else { return };
    let bird = Bird::start(
        &pair.theirs,
        pair.their_dir.path(),
        &bird_config(false, None, false),
    )
    .unwrap();
    let node = pair.start_tortie(&pair.tortie_config(true, None));
    wait_established(&bird, &node);
    check_routes_both_ways(&pair, &bird, &node);
}

#[test]
fn bird_md5_right_key_connects() {
    let Some(pair) = pair("tl-ib3") else { return };
    let bird = Bird::start(
        &pair.theirs,
        pair.their_dir.path(),
        &bird_config(true, Some("s3cret-key"), false),
    )
    .unwrap();
    let node = pair.start_tortie(&pair.tortie_config(false, Some("s3cret-key")));
    wait_established(&bird, &node);
}

#[test]
fn bird_md5_wrong_key_does_not_connect() {
    let Some(pair) = pair("tl-ib4") else { return };
    let bird = Bird::start(
        &pair.theirs,
        pair.their_dir.path(),
        &bird_config(false, Some("right-key"), false),
    )
    .unwrap();
    let node = pair.start_tortie(&pair.tortie_config(false, Some("wrong-key")));
    for _ in 0..60 {
        assert!(
            !common::PeerView::established(&bird),
            "BIRD Established despite the wrong MD5 key"
        );
        assert!(!node.all_established());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bird_bfd_config(passive: bool) -> BirdConfig {
    let mut c = bird_config(passive, None, false);
    c.bfd = Some((300, 3));
    c.neighbors[0].bfd = true;
    c
}

#[test]
fn bird_bfd_we_connect_failover() {
    let Some(pair) = pair("tl-ib6") else { return };
    let bird = Bird::start(&pair.theirs, pair.their_dir.path(), &bird_bfd_config(true)).unwrap();
    let node = pair.start_tortie(&pair.tortie_bfd_config(false));
    check_bfd_failover(&pair, &bird, &node, bfd_cuts(2));
}

#[test]
fn bird_bfd_they_connect_failover() {
    let Some(pair) = pair("tl-ib7") else { return };
    let bird = Bird::start(&pair.theirs, pair.their_dir.path(), &bird_bfd_config(false)).unwrap();
    let node = pair.start_tortie(&pair.tortie_bfd_config(true));
    check_bfd_failover(&pair, &bird, &node, bfd_cuts(1));
}

#[test]
fn bird_graceful_restart() {
    let Some(pair) = pair("tl-ib5") else { return };
    let bird = Bird::start(
        &pair.theirs,
        pair.their_dir.path(),
        &bird_config(false, None, true),
    )
    .unwrap();
    let mut node = pair.start_tortie(&pair.tortie_config(false, None));
    check_graceful_restart(&pair, &bird, &mut node);
}
