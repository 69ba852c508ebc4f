//! Interop with ExaBGP (Debian's exabgp) against tortie, including RFC 7606:
//! ExaBGP sends an UPDATE whose MULTI_EXIT_DISC has a bad length; tortie must
//! treat only that UPDATE's routes as withdrawn and keep the session up.
//! Also: route refresh (ExaBGP's API sends a ROUTE-REFRESH, tortie re-sends
//! its routes) and TCP MD5 with the right and a wrong key.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::*;
use tortie_lab::exabgp::{ExaRoute, Exabgp, ExabgpConfig};

const GOOD: &str = "10.6.0.0/24";
const BAD: &str = "10.6.1.0/24";
const LATER: &str = "10.6.2.0/24";

fn exabgp(pair: &Pair, passive: bool, password: Option<&str>) -> Exabgp {
    let cfg = ExabgpConfig {
        router_id: Ipv4Addr::new(198, 51, 100, 1),
        local_address: THEIRS.parse().unwrap(),
        local_asn: THEIR_ASN,
        peer_address: OURS.parse().unwrap(),
        peer_asn: OUR_ASN,
        passive,
        password: password.map(str::to_string),
        hold_time: 9,
        graceful_restart: false,
        routes: vec![
            ExaRoute {
                prefix: GOOD.into(),
                raw_attribute: None,
            },
            // MULTI_EXIT_DISC (type 4, optional) with 2 octets instead of 4:
            // RFC 7606 §7.4 says treat-as-withdraw.
            ExaRoute {
                prefix: BAD.into(),
                raw_attribute: Some((4, 0x80, vec![0, 1])),
            },
        ],
    };
    Exabgp::start(&pair.theirs, pair.their_dir.path(), &cfg).unwrap()
}

#[test]
fn exabgp_routes_both_ways_and_rfc7606_treat_as_withdraw() {
    let Some(pair) = pair("tl-ie1") else { return };
    let exa = exabgp(&pair, false, None);
    let node = pair.start_tortie(&pair.tortie_config(true, None));
    tortie_lab::wait_until("tortie Established with ExaBGP", T, || {
        node.all_established().then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", node.log_tail(30)));
    let r = wait_our_route(&node, GOOD);
    assert_eq!(r.as_path, vec![THEIR_ASN]);
    assert_eq!(r.next_hop.as_deref(), Some(THEIRS));
    let got = tortie_lab::wait_until("our block at ExaBGP", T, || {
        exa.received_routes().into_iter().find(|r| r.0 == BLOCK)
    })
    .unwrap();
    assert_eq!(got.1, vec![OUR_ASN]);
    assert_eq!(got.2, OURS);
    // The malformed UPDATE: session stays up, its route is not used.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        node.all_established(),
        "session reset by a malformed MED: {:?}",
        node.status()
    );
    assert_eq!(transitions(&node), 1, "session flapped");
    assert_eq!(exa.state().as_deref(), Some("up"));
    let routes = node.routes().unwrap();
    assert!(routes.iter().any(|r| r.prefix == GOOD));
    assert!(
        !routes.iter().any(|r| r.prefix == BAD),
        "malformed route accepted: {routes:?}"
    );
    assert!(pair.our_kernel_route(BAD).is_empty());

    // A route first announced well-formed, then re-announced with the
    // malformed MED: treat-as-withdraw removes it (RIB and kernel); the
    // other routes and the session stay.
    exa.command(&format!("announce route {LATER} next-hop self"))
        .unwrap();
    let r = wait_our_route(&node, LATER);
    assert_eq!(r.as_path, vec![THEIR_ASN]);
    exa.command(&format!(
        "announce route {LATER} next-hop self attribute [ 0x04 0x80 0x0001 ]"
    ))
    .unwrap();
    wait_our_route_gone(&node, LATER);
    tortie_lab::wait_until("kernel route of the withdrawn prefix removed", T, || {
        pair.our_kernel_route(LATER).is_empty().then_some(())
    })
    .unwrap();
    assert!(node.routes().unwrap().iter().any(|r| r.prefix == GOOD));
    assert!(node.all_established());
    assert_eq!(transitions(&node), 1, "session flapped");
}

#[test]
fn exabgp_we_connect() {
    let Some(pair) = pair("tl-ie2") else { return };
    let exa = exabgp(&pair, true, None);
    let node = pair.start_tortie(&pair.tortie_config(false, None));
    tortie_lab::wait_until("tortie Established with ExaBGP", T, || {
        node.all_established().then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", node.log_tail(30)));
    wait_our_route(&node, GOOD);
    tortie_lab::wait_until("our block at ExaBGP", T, || {
        exa.received_routes().into_iter().find(|r| r.0 == BLOCK)
    })
    .unwrap();

    // Route refresh (RFC 2918): ExaBGP sends ROUTE-REFRESH for IPv4
    // unicast; tortie counts it and re-sends its Adj-RIB-Out, without
    // resetting the session.
    let refreshes = received(&node, "route_refresh");
    let announced = exa.announcements(BLOCK);
    let t0 = transitions(&node);
    exa.route_refresh().unwrap();
    tortie_lab::wait_until("ROUTE-REFRESH counted", T, || {
        (received(&node, "route_refresh") > refreshes).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; status {:?}", node.status()));
    tortie_lab::wait_until("our block re-sent to ExaBGP", T, || {
        (exa.announcements(BLOCK) > announced).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; ExaBGP got {:?}", exa.received_routes()));
    let got = exa
        .received_routes()
        .into_iter()
        .find(|r| r.0 == BLOCK)
        .expect("block still announced");
    assert_eq!(got.1, vec![OUR_ASN]);
    assert_eq!(got.2, OURS);
    assert_eq!(
        transitions(&node),
        t0,
        "route refresh must not reset the session"
    );
    assert!(node.all_established());
    assert_eq!(exa.state().as_deref(), Some("up"));
}

/// TCP MD5 (RFC 2385), same key both sides: ExaBGP listens, tortie connects.
/// The key is made of hex digits and has a quote: ExaBGP's "auto" mode would
/// base64-decode the former and its config syntax cannot quote the latter, so
/// this also checks the harness hands ExaBGP the key unchanged.
#[test]
fn exabgp_md5_right_key_connects() {
    const KEY: &str = "c0ffee\"42";
    let Some(pair) = pair("tl-ie3") else { return };
    let exa = exabgp(&pair, true, Some(KEY));
    let node = pair.start_tortie(&pair.tortie_config(false, Some(KEY)));
    tortie_lab::wait_until("both sides Established", T, || {
        (node.all_established() && exa.state().as_deref() == Some("up")).then_some(())
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}; status {:?}\nlog:\n{}",
            node.status(),
            node.log_tail(30)
        )
    });
    wait_our_route(&node, GOOD);
}

/// Different keys, both sides connecting: no session for 6 s.
#[test]
fn exabgp_md5_wrong_key_does_not_connect() {
    let Some(pair) = pair("tl-ie4") else { return };
    let exa = exabgp(&pair, false, Some("right-key"));
    let node = pair.start_tortie(&pair.tortie_config(false, Some("wrong-key")));
    for _ in 0..60 {
        assert_ne!(
            exa.state().as_deref(),
            Some("up"),
            "ExaBGP Established despite the wrong MD5 key"
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
