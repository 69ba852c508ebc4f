//! Interop with GoBGP (Debian's gobgpd 3.10) in a namespace against tortie.
//! GoBGP enforces a 5 s minimum connect retry, so waits are generous.
//!
//! Route refresh: GoBGP 3.10 never sends a ROUTE-REFRESH (RFC 2918). Its
//! `gobgp neighbor A softresetin` ends in `BgpServer.softResetIn`
//! (pkg/server/server.go), which only re-runs the paths GoBGP already holds
//! in its own Adj-RIB-In through import policy (`propagateUpdate(peer,
//! peer.adjRibIn.PathList(..))`); `softreset` is softResetIn + softResetOut.
//! The only `bgp.NewBGPRouteRefreshMessage` callers in GoBGP are its test
//! tooling, not the server. `gobgp_we_connect_routes_withdrawals` checks that
//! observable fact (tortie counts no ROUTE-REFRESH after `softresetin`) so a
//! GoBGP that starts sending one makes this test fail and gets a real refresh
//! test. Answering a ROUTE-REFRESH is tested with BIRD, FRR and ExaBGP.
//! `softresetout` makes GoBGP re-send its Adj-RIB-Out as UPDATEs; tortie
//! takes the duplicates without a flap or a change of best path.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::*;
use tortie_lab::gobgp::{Gobgp, GobgpConfig, GobgpNeighbor};

fn gobgp(pair: &Pair, passive: bool, gr: bool, password: Option<&str>) -> Gobgp {
    let mut n = GobgpNeighbor::new(OURS.parse().unwrap(), OUR_ASN);
    n.passive = passive;
    n.graceful_restart = gr;
    n.hold_time = Some(9);
    n.password = password.map(str::to_string);
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
    let g = gobgp(&pair, true, false, None);
    let node = pair.start_tortie(&pair.tortie_config(false, None));
    wait_established(&g, &node);
    check_routes_both_ways(&pair, &g, &node);
    check_host_route_withdrawal(&g, &node);
    g.del_route(THEIR_PREFIX).unwrap();
    wait_our_route_gone(&node, THEIR_PREFIX);
    g.add_route(THEIR_PREFIX).unwrap();
    wait_our_route(&node, THEIR_PREFIX);

    // softresetout: GoBGP re-sends its routes; tortie takes the duplicate
    // UPDATE without a flap and keeps the same best path.
    let ours: std::net::IpAddr = OURS.parse().unwrap();
    let updates = received(&node, "update");
    g.soft_out(ours).unwrap();
    tortie_lab::wait_until("re-sent UPDATE counted", T, || {
        (received(&node, "update") > updates).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; status {:?}", node.status()));
    let r = wait_our_route(&node, THEIR_PREFIX);
    assert_eq!(r.as_path, vec![THEIR_ASN]);
    assert!(!pair.our_kernel_route(THEIR_PREFIX).is_empty());

    // softresetin sends no ROUTE-REFRESH (see the module doc); the session
    // and our routes at GoBGP are untouched.
    g.soft_in(ours).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        received(&node, "route_refresh"),
        0,
        "GoBGP now sends ROUTE-REFRESH on softresetin: test tortie's answer here"
    );
    assert_eq!(wait_their_route(&g, BLOCK).0, vec![OUR_ASN]);
    assert_eq!(transitions(&node), 1);
}

#[test]
fn gobgp_they_connect() {
    let Some(pair) = pair("tl-ig2") else { return };
    let g = gobgp(&pair, false, false, None);
    let node = pair.start_tortie(&pair.tortie_config(true, None));
    wait_established(&g, &node);
    check_routes_both_ways(&pair, &g, &node);
}

/// TCP MD5 (RFC 2385), same key both sides: GoBGP listens, tortie connects.
#[test]
fn gobgp_md5_right_key_connects() {
    let Some(pair) = pair("tl-ig4") else { return };
    let g = gobgp(&pair, true, false, Some("s3cret-key"));
    let node = pair.start_tortie(&pair.tortie_config(false, Some("s3cret-key")));
    wait_established(&g, &node);
    wait_their_route(&g, BLOCK);
}

/// Different keys, both sides trying to connect: the kernel drops every
/// segment whose signature doesn't verify, so no session comes up. Watched
/// for 7 s, longer than GoBGP's 5 s connect retry.
#[test]
fn gobgp_md5_wrong_key_does_not_connect() {
    let Some(pair) = pair("tl-ig5") else { return };
    let g = gobgp(&pair, false, false, Some("right-key"));
    let node = pair.start_tortie(&pair.tortie_config(false, Some("wrong-key")));
    for _ in 0..70 {
        assert!(
            !common::PeerView::established(&g),
            "GoBGP Established despite the wrong MD5 key"
        );
        assert!(
            !node.all_established(),
            "tortie Established despite the wrong MD5 key: {:?}",
            node.status()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(transitions(&node), 0);
}

#[test]
fn gobgp_graceful_restart() {
    let Some(pair) = pair("tl-ig3") else { return };
    let g = gobgp(&pair, false, true, None);
    let mut node = pair.start_tortie(&pair.tortie_config(false, None));
    check_graceful_restart(&pair, &g, &mut node);
}

/// Dual-stack (issue 11 §3), one topology: GoBGP with an IPv4 and an IPv6
/// (TCP MD5) session to a dual-stack tortie, both with the IPv4 and IPv6
/// unicast AFI-SAFIs. Routes both ways in both RIBs and in our kernel
/// (gobgpd installs nothing), graceful restart under `ping -6`: 0 lost.
#[test]
fn gobgp_dual_stack() {
    let Some(pair) = pair("tl-ig9") else { return };
    pair.add_ipv6();
    let mut neighbors = Vec::new();
    for (addr, password) in [(OURS, None), (OURS6, Some(MD5_V6))] {
        let mut n = GobgpNeighbor::new(addr.parse().unwrap(), OUR_ASN);
        n.password = password.map(str::to_string);
        n.graceful_restart = true;
        n.hold_time = Some(9);
        n.ipv6 = true;
        neighbors.push(n);
    }
    let cfg = GobgpConfig {
        router_id: Ipv4Addr::new(198, 51, 100, 1),
        asn: THEIR_ASN,
        neighbors,
    };
    let g = Gobgp::start(&pair.theirs, pair.their_dir.path(), &cfg).unwrap();
    g.add_route(THEIR_PREFIX).unwrap();
    g.add_route6(THEIR_PREFIX6, THEIRS6).unwrap();
    let mut node = pair.start_tortie(&pair.tortie_dual_config());
    let next_hop = |session: &str, prefix: &str| {
        let from = if session == "v4" { OURS } else { OURS6 };
        let routes = if prefix.contains(':') {
            g.routes6()
        } else {
            g.routes()
        };
        routes
            .ok()?
            .into_iter()
            .find(|r| r.prefix == prefix && r.peer.as_deref() == Some(from))?
            .next_hop
    };
    check_dual_stack_routes(&pair, &node, &next_hop, false);
    check_graceful_restart_ping6(&pair, &mut node, false);
}
