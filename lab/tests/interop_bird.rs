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

/// A peer off the node's subnet (BIRD on a second link, 203.0.113.0/24,
/// while node.address is on 198.51.100.0/24). Without source_address the
/// session leaves from node.address: BIRD never accepts it, and tortie's
/// status warns about the next hop. With source_address the session comes
/// up from that address and BIRD takes our routes with it as next hop.
#[test]
fn bird_off_subnet_needs_source_address() {
    let Some(pair) = pair("tl-ib8") else { return };
    pair.second_link("203.0.113.1/24", "203.0.113.2/24");
    let mut cfg = BirdConfig::new(Ipv4Addr::new(203, 0, 113, 1), THEIR_ASN);
    let mut n = BirdNeighbor::new("tortie", "203.0.113.2".parse().unwrap(), OUR_ASN);
    n.passive = true;
    n.hold_time = Some(9);
    cfg.neighbors.push(n);
    cfg.static_routes.push(THEIR_PREFIX.into());
    let bird = Bird::start(&pair.theirs, pair.their_dir.path(), &cfg).unwrap();
    let peer = "203.0.113.1";
    let mut tc = pair.tortie_config(false, None);
    tc.peers[0].address = peer.parse().unwrap();
    let mut node = pair.start_tortie(&tc);
    let field = |node: &tortie_lab::tortie::TortieNode, f: &str| {
        node.peer(peer)
            .ok()
            .and_then(|p| p.get(f)?.as_str().map(str::to_string))
    };
    let warning =
        tortie_lab::wait_until("next-hop warning in status", T, || field(&node, "warning"))
            .unwrap();
    assert!(
        warning.contains("198.51.100.0/24") && warning.contains("source_address"),
        "{warning}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !PeerView::established(&bird),
        "BIRD accepted a session from node.address"
    );
    node.stop();
    drop(node);

    tc.peers[0].source_address = Some("203.0.113.2".parse().unwrap());
    let node = pair.start_tortie(&tc);
    wait_established(&bird, &node);
    assert_eq!(
        field(&node, "local_address").as_deref(),
        Some("203.0.113.2")
    );
    assert_eq!(field(&node, "warning"), None);
    // BIRD resolved our next hop on its link (it would drop an unreachable one).
    let r = tortie_lab::wait_until("our block at BIRD", T, || {
        bird.routes(Some("tortie"))
            .ok()?
            .into_iter()
            .find(|r| r.prefix == BLOCK)
    })
    .unwrap();
    assert_eq!(r.next_hop.as_deref(), Some("203.0.113.2"), "{r:?}");
    assert_eq!(r.gateway.as_deref(), Some("203.0.113.2"), "{r:?}");
    tortie_lab::wait_until("learned route via the second link", T, || {
        pair.our_kernel_route(THEIR_PREFIX)
            .contains(&format!("via {peer}"))
            .then_some(())
    })
    .unwrap();
}

/// eBGP two hops away: BIRD behind a router namespace ("theirs" routes
/// between 198.51.100.0/24 and 203.0.113.0/24). eBGP sends TTL 1 by
/// default (directly connected), so the router drops our packets and the
/// session never comes up; with `multihop = 2` it does.
#[test]
fn bird_multihop_two_hops_away() {
    let Some(pair) = pair("tl-ib9") else { return };
    let far = tortie_lab::Netns::create(&tortie_lab::unique_name("tl-ib9f")).expect("netns");
    tortie_lab::netns::veth(&pair.theirs, "eth2", &far, "eth1").expect("veth");
    pair.theirs.add_address("eth2", "203.0.113.254/24").unwrap();
    far.add_address("eth1", "203.0.113.1/24").unwrap();
    pair.theirs
        .run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        .unwrap();
    pair.ours
        .run(&["ip", "route", "add", "203.0.113.0/24", "via", THEIRS])
        .unwrap();
    far.run(&[
        "ip",
        "route",
        "add",
        "198.51.100.0/24",
        "via",
        "203.0.113.254",
    ])
    .unwrap();
    let far_dir = tempfile::tempdir().unwrap();
    let mut cfg = BirdConfig::new(Ipv4Addr::new(203, 0, 113, 1), THEIR_ASN);
    let mut n = BirdNeighbor::new("tortie", OURS.parse().unwrap(), OUR_ASN);
    n.passive = true;
    n.hold_time = Some(9);
    n.multihop = Some(2);
    cfg.neighbors.push(n);
    cfg.static_routes.push(THEIR_PREFIX.into());
    let bird = Bird::start(&far, far_dir.path(), &cfg).unwrap();
    let peer = "203.0.113.1";
    let mut tc = pair.tortie_config(false, None);
    tc.peers[0].address = peer.parse().unwrap();
    let mut node = pair.start_tortie(&tc);
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !PeerView::established(&bird),
        "an eBGP session crossed a router with the default TTL 1"
    );
    node.stop();
    drop(node);

    tc.peers[0].multihop = Some(2);
    let node = pair.start_tortie(&tc);
    wait_established(&bird, &node);
    let r = wait_our_route(&node, THEIR_PREFIX);
    assert_eq!(r.next_hop.as_deref(), Some(peer), "{r:?}");
    assert_eq!(
        node.peer(peer)
            .ok()
            .and_then(|p| p.get("warning")?.as_str().map(str::to_string)),
        None
    );
}

/// Graceful restart with BFD: our restart stops our BFD packets, which BIRD
/// with `bfd on` takes for a path failure (it flushes our routes despite
/// GR); with `bfd graceful` it keeps them while we restart.
#[test]
fn bird_bfd_graceful_restart() {
    let Some(pair) = pair("tl-ibc") else { return };
    let mut cfg = bird_bfd_config(false);
    cfg.neighbors[0].graceful_restart = true;
    cfg.neighbors[0].bfd_graceful = true;
    let bird = Bird::start(&pair.theirs, pair.their_dir.path(), &cfg).unwrap();
    let mut node = pair.start_tortie(&pair.tortie_bfd_config(false));
    wait_established(&bird, &node);
    wait_bfd_up(&bird, &node);
    check_graceful_restart(&pair, &bird, &mut node);
    wait_bfd_up(&bird, &node);
}

/// BFD added to a running peer by SIGHUP: BFD comes up, the BGP session is
/// not reset (established_transitions unchanged), and a cut then acts.
#[test]
fn bird_bfd_added_by_sighup_without_reset() {
    let Some(pair) = pair("tl-ibb") else { return };
    let bird = Bird::start(&pair.theirs, pair.their_dir.path(), &bird_bfd_config(true)).unwrap();
    let node = pair.start_tortie(&pair.tortie_config(false, None));
    wait_established(&bird, &node);
    assert_eq!(our_bfd(&node, "state"), None);
    let t0 = transitions(&node);
    node.reload(&pair.tortie_bfd_config(false)).unwrap();
    wait_bfd_up(&bird, &node);
    assert_eq!(transitions(&node), t0, "adding BFD reset the session");
    check_bfd_failover(&pair, &bird, &node, 1);
}

/// BFD Down removes one ECMP member: two BIRDs (AS 65001 both, one per
/// namespace and link) announce THEIR_PREFIX; the kernel route has both next
/// hops; a silent cut of one link leaves the route with the other next hop
/// only, within 1 s.
#[test]
fn bird_bfd_cut_removes_one_ecmp_member() {
    let Some(pair) = pair("tl-iba") else { return };
    let far = tortie_lab::Netns::create(&tortie_lab::unique_name("tl-ibaf")).expect("netns");
    tortie_lab::netns::veth(&pair.ours, "eth2", &far, "eth1").expect("veth");
    pair.ours.add_address("eth2", "203.0.113.2/24").unwrap();
    far.add_address("eth1", "203.0.113.1/24").unwrap();
    let bird1 = Bird::start(&pair.theirs, pair.their_dir.path(), &bird_bfd_config(true)).unwrap();
    let far_dir = tempfile::tempdir().unwrap();
    let mut cfg2 = BirdConfig::new(Ipv4Addr::new(203, 0, 113, 1), THEIR_ASN);
    let mut n = BirdNeighbor::new("tortie", "203.0.113.2".parse().unwrap(), OUR_ASN);
    n.passive = true;
    n.hold_time = Some(9);
    n.bfd = true;
    cfg2.neighbors.push(n);
    cfg2.bfd = Some((300, 3));
    cfg2.static_routes.push(THEIR_PREFIX.into());
    let bird2 = Bird::start(&far, far_dir.path(), &cfg2).unwrap();
    let mut tc = pair.tortie_bfd_config(false);
    let mut p2 = tc.peers[0].clone();
    p2.address = "203.0.113.1".parse().unwrap();
    p2.name = Some("far".into());
    p2.source_address = Some("203.0.113.2".parse().unwrap());
    tc.peers.push(p2);
    let node = pair.start_tortie(&tc);
    wait_established(&bird1, &node);
    wait_bfd_up(&bird1, &node);
    tortie_lab::wait_until("BFD Up with the second BIRD", T, || {
        bird2
            .bfd_state("203.0.113.2".parse().unwrap())
            .ok()
            .filter(|s| s == "Up")
    })
    .unwrap();
    let both = |r: &str| r.contains(THEIRS) && r.contains("203.0.113.1");
    tortie_lab::wait_until("ECMP route with both next hops", T, || {
        let r = pair.our_kernel_route(THEIR_PREFIX);
        both(&r).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", pair.our_kernel_route(THEIR_PREFIX)));
    let cut = tortie_lab::cut::LinkCut::silent(&pair.theirs, "eth1").unwrap();
    // Poll tightly (10 ms): the time is what this test is about.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let (left, gone_at) = loop {
        let r = pair.our_kernel_route(THEIR_PREFIX);
        if !r.contains(THEIRS) {
            break (r, std::time::Instant::now());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ECMP member still there: {r}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = gone_at.saturating_duration_since(cut.placed);
    eprintln!("ECMP member removed {} ms after the cut", took.as_millis());
    assert!(left.contains("via 203.0.113.1"), "{left}");
    assert!(took <= Duration::from_secs(1), "took {took:?}");
    drop(cut);
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

/// Dual-stack (issue 11 §3), one topology: tortie with an IPv4 and an IPv6
/// address and block, BIRD with two sessions to it — "v4" over IPv4 and
/// "v6" over IPv6 with TCP MD5 — each carrying both families (IPv6 routes
/// over the IPv4 session with global next hops, RFC 2545 §3; IPv4 routes
/// over the IPv6 session; our IPv6 peer passive, so BIRD connects to the
/// default `[::]` listener with MD5). Routes both ways in both RIBs and kernels, pings
/// both ways; graceful restart with `ping -6` running: 0 lost; BIRD's
/// withdrawal removes our kernel route.
#[test]
fn bird_dual_stack() {
    let Some(pair) = pair("tl-ib9") else { return };
    pair.add_ipv6();
    let mut cfg = BirdConfig::new(Ipv4Addr::new(198, 51, 100, 1), THEIR_ASN);
    for (name, addr, password) in [("v4", OURS, None), ("v6", OURS6, Some(MD5_V6))] {
        let mut n = BirdNeighbor::new(name, addr.parse().unwrap(), OUR_ASN);
        n.graceful_restart = true;
        n.hold_time = Some(9);
        n.password = password.map(str::to_string);
        n.ipv6_next_hop = Some(THEIRS6.parse().unwrap());
        n.ipv4_next_hop = Some(THEIRS.parse().unwrap());
        cfg.neighbors.push(n);
    }
    cfg.static_routes = vec![THEIR_PREFIX.into(), THEIR_PREFIX6.into()];
    cfg.kernel_export = true;
    let bird = Bird::start(&pair.theirs, pair.their_dir.path(), &cfg).unwrap();
    // Our IPv6 peer is passive: BIRD must come in through the default
    // dual-stack listener, with the MD5 key set on it for an IPv6 address.
    let mut ours = pair.tortie_dual_config();
    ours.peers[1].passive = true;
    let mut node = pair.start_tortie(&ours);
    let next_hop = |session: &str, prefix: &str| {
        bird.routes(Some(session))
            .ok()?
            .into_iter()
            .find(|r| r.prefix == prefix)?
            .next_hop
    };
    check_dual_stack_routes(&pair, &node, &next_hop, true);
    // RFC 2545 §3: on the shared link our link-local next hop comes too.
    let all = bird
        .birdc(&["show", "route", BLOCK6, "protocol", "v4", "all"])
        .unwrap();
    assert!(
        all.contains(&format!("BGP.next_hop: {OURS6} fe80:")),
        "{all}"
    );
    check_graceful_restart_ping6(&pair, &mut node, true);

    // Withdrawal from BIRD: the kernel route goes.
    cfg.static_routes.retain(|r| r != THEIR_PREFIX6);
    bird.rewrite(&cfg).unwrap();
    wait_our_route_gone(&node, THEIR_PREFIX6);
    let kernel = || {
        pair.ours
            .run(&["ip", "-6", "route", "show", THEIR_PREFIX6])
            .unwrap_or_default()
    };
    tortie_lab::wait_until("IPv6 kernel route removed", T, || {
        kernel().trim().is_empty().then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", kernel()));
}
