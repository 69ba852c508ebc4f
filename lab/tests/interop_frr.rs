//! Interop with FRR (Debian's frr: bgpd + zebra) in a namespace against tortie.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::*;
use tortie_lab::frr::{Frr, FrrConfig, FrrNeighbor};

fn frr_config(passive: bool, password: Option<&str>, gr: bool) -> FrrConfig {
    let mut c = FrrConfig::new("theirs", Ipv4Addr::new(198, 51, 100, 1), THEIR_ASN);
    let mut n = FrrNeighbor::new(OURS.parse().unwrap(), OUR_ASN);
    n.passive = passive;
    n.password = password.map(str::to_string);
    c.neighbors.push(n);
    c.networks.push(THEIR_PREFIX.into());
    c.graceful_restart = gr;
    c.timers = Some((3, 9));
    c.with_zebra = true;
    c
}

#[test]
fn frr_we_connect_routes_withdrawals_refresh() {
    let Some(pair) = pair("tl-if1") else { return };
    let frr = Frr::start(
        &pair.theirs,
        pair.their_dir.path(),
        &frr_config(true, None, false),
    )
    .unwrap();
    let node = pair.start_tortie(&pair.tortie_config(false, None));
    wait_established(&frr, &node);
    check_routes_both_ways(&pair, &frr, &node);
    // zebra put our block into FRR's kernel table.
    tortie_lab::wait_until("our block in FRR's kernel", T, || {
        pair.theirs
            .run(&["ip", "route", "show", BLOCK])
            .ok()
            .filter(|s| s.contains(OURS))
    })
    .unwrap();
    check_host_route_withdrawal(&frr, &node);

    let asn = THEIR_ASN.to_string();
    let router = format!("router bgp {asn}");
    let no_net = format!("no network {THEIR_PREFIX}");
    frr.vtysh_many(&[
        "configure terminal",
        &router,
        "address-family ipv4 unicast",
        &no_net,
    ])
    .unwrap();
    wait_our_route_gone(&node, THEIR_PREFIX);
    let net = format!("network {THEIR_PREFIX}");
    frr.vtysh_many(&[
        "configure terminal",
        &router,
        "address-family ipv4 unicast",
        &net,
    ])
    .unwrap();
    wait_our_route(&node, THEIR_PREFIX);

    let before = received(&node, "route_refresh");
    let t0 = transitions(&node);
    frr.soft_in(OURS.parse().unwrap()).unwrap();
    tortie_lab::wait_until("ROUTE-REFRESH counted", T, || {
        (received(&node, "route_refresh") > before).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; status {:?}", node.status()));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(wait_their_route(&frr, BLOCK).0, vec![OUR_ASN]);
    assert_eq!(
        transitions(&node),
        t0,
        "route refresh must not reset the session"
    );
}

#[test]
fn frr_they_connect() {
    let Some(pair) = pair("tl-if2") else { return };
    let frr = Frr::start(
        &pair.theirs,
        pair.their_dir.path(),
        &frr_config(false, None, false),
    )
    .unwrap();
    let node = pair.start_tortie(&pair.tortie_config(true, None));
    wait_established(&frr, &node);
    check_routes_both_ways(&pair, &frr, &node);
}

#[test]
fn frr_md5_right_key_connects() {
    let Some(pair) = pair("tl-if3") else { return };
    let frr = Frr::start(
        &pair.theirs,
        pair.their_dir.path(),
        &frr_config(false, Some("s3cret-key"), false),
    )
    .unwrap();
    let node = pair.start_tortie(&pair.tortie_config(false, Some("s3cret-key")));
    wait_established(&frr, &node);
}

#[test]
fn frr_md5_wrong_key_does_not_connect() {
    let Some(pair) = pair("tl-if4") else { return };
    let frr = Frr::start(
        &pair.theirs,
        pair.their_dir.path(),
        &frr_config(false, Some("right-key"), false),
    )
    .unwrap();
    let node = pair.start_tortie(&pair.tortie_config(false, Some("wrong-key")));
    for _ in 0..60 {
        assert!(
            !PeerView::established(&frr),
            "FRR Established despite the wrong MD5 key"
        );
        assert!(!node.all_established());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn frr_graceful_restart() {
    let Some(pair) = pair("tl-if5") else { return };
    let frr = Frr::start(
        &pair.theirs,
        pair.their_dir.path(),
        &frr_config(false, None, true),
    )
    .unwrap();
    let mut node = pair.start_tortie(&pair.tortie_config(false, None));
    check_graceful_restart(&pair, &frr, &mut node);
    // FRR marks nothing stale once we are back.
    let stale: Vec<_> = frr
        .routes()
        .unwrap()
        .into_iter()
        .filter(|r| r.stale)
        .collect();
    assert!(stale.is_empty(), "stale routes left at FRR: {stale:?}");
}

fn frr_bfd_config(passive: bool) -> FrrConfig {
    let mut c = frr_config(passive, None, false);
    c.bfd = Some((300, 3));
    c.neighbors[0].bfd = true;
    c
}

#[test]
fn frr_bfd_we_connect_failover() {
    let Some(pair) = pair("tl-if6") else { return };
    let frr = Frr::start(&pair.theirs, pair.their_dir.path(), &frr_bfd_config(true)).unwrap();
    let node = pair.start_tortie(&pair.tortie_bfd_config(false));
    check_bfd_failover(&pair, &frr, &node, bfd_cuts(2));
}

#[test]
fn frr_bfd_they_connect_failover() {
    let Some(pair) = pair("tl-if7") else { return };
    let frr = Frr::start(&pair.theirs, pair.their_dir.path(), &frr_bfd_config(false)).unwrap();
    let node = pair.start_tortie(&pair.tortie_bfd_config(true));
    check_bfd_failover(&pair, &frr, &node, bfd_cuts(1));
}

/// Dual-stack (issue 11 §3), one topology: FRR (bgpd + zebra) with an IPv4
/// and an IPv6 (TCP MD5) session to a dual-stack tortie, both activated for
/// IPv4 and IPv6 unicast. Routes both ways in both RIBs and kernels, pings
/// both ways, graceful restart under `ping -6`: 0 lost.
#[test]
fn frr_dual_stack() {
    let Some(pair) = pair("tl-if9") else { return };
    pair.add_ipv6();
    let mut c = FrrConfig::new("theirs", Ipv4Addr::new(198, 51, 100, 1), THEIR_ASN);
    for (addr, password) in [(OURS, None), (OURS6, Some(MD5_V6))] {
        let mut n = FrrNeighbor::new(addr.parse().unwrap(), OUR_ASN);
        n.password = password.map(str::to_string);
        n.ipv6 = true;
        c.neighbors.push(n);
    }
    c.networks = vec![THEIR_PREFIX.into(), THEIR_PREFIX6.into()];
    c.graceful_restart = true;
    c.timers = Some((3, 9));
    c.with_zebra = true;
    let frr = Frr::start(&pair.theirs, pair.their_dir.path(), &c).unwrap();
    // Both ends connect: FRR as graceful-restart helper waits for the
    // restarting speaker to connect ("Active (NSF passive)"), so a passive
    // tortie peer stayed down after the restart below (30 s waited).
    let mut node = pair.start_tortie(&pair.tortie_dual_config());
    let next_hop = |session: &str, prefix: &str| {
        let from = if session == "v4" { OURS } else { OURS6 };
        let routes = if prefix.contains(':') {
            frr.routes6()
        } else {
            frr.routes()
        };
        routes
            .ok()?
            .into_iter()
            .find(|r| r.prefix == prefix && r.peer.as_deref() == Some(from))?
            .next_hop
    };
    check_dual_stack_routes(&pair, &node, &next_hop, true);
    check_graceful_restart_ping6(&pair, &mut node, true);
}
