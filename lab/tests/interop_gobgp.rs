//! Interop with GoBGP (Debian's gobgpd) in a namespace against tortie.
//! GoBGP enforces a 5 s minimum connect retry, so waits are generous.

mod common;

use std::net::Ipv4Addr;

use common::*;
use tortie_lab::gobgp::{Gobgp, GobgpConfig, GobgpNeighbor};

fn gobgp(pair: &Pair, passive: bool, gr: bool) -> Gobgp {
    let mut n = GobgpNeighbor::new(OURS.parse().unwrap(), OUR_ASN);
    n.passive = passive;
    n.graceful_restart = gr;
    n.hold_time = Some(9);
    let cfg = GobgpConfig {
        router_id: Ipv4Addr::new(198, 51, 100, 1),
        asn: THEIR_ASN,
        neighbors: vec![n],
    };
    let g = Gobgp::start(&pair.theirs, pair.their_dir.path(), &cfg).unwrap();
    g.add_route(THEIR_PREFIX).unwrap();
    g
}

#[test]
fn gobgp_we_connect_routes_withdrawals() {
    let Some(pair) = pair("tl-ig1") else { return };
    let g = gobgp(&pair, true, false);
    let node = pair.start_tortie(&pair.tortie_config(false, None));
    wait_established(&g, &node);
    check_routes_both_ways(&pair, &g, &node);
    check_host_route_withdrawal(&g, &node);
    g.del_route(THEIR_PREFIX).unwrap();
    wait_our_route_gone(&node, THEIR_PREFIX);
    g.add_route(THEIR_PREFIX).unwrap();
    wait_our_route(&node, THEIR_PREFIX);

    // Route refresh is covered with BIRD and FRR: `gobgp neighbor A softresetin`
    // re-evaluates GoBGP's own Adj-RIB-In and sends no ROUTE-REFRESH.
    assert_eq!(transitions(&node), 1);
}

#[test]
fn gobgp_they_connect() {
    let Some(pair) = pair("tl-ig2") else { return };
    let g = gobgp(&pair, false, false);
    let node = pair.start_tortie(&pair.tortie_config(true, None));
    wait_established(&g, &node);
    check_routes_both_ways(&pair, &g, &node);
}

#[test]
fn gobgp_graceful_restart() {
    let Some(pair) = pair("tl-ig3") else { return };
    let g = gobgp(&pair, false, true);
    let mut node = pair.start_tortie(&pair.tortie_config(false, None));
    check_graceful_restart(&pair, &g, &mut node);
}
