//! The harness against the real daemons, without tortie: BIRD peers with FRR,
//! GoBGP and ExaBGP in namespaces, and each side's parsed view is checked.
//! This proves the scripting the interop and e2e tests rely on.

use std::net::Ipv4Addr;
use std::time::Duration;

use tortie_lab::bird::{Bird, BirdConfig, BirdNeighbor};
use tortie_lab::exabgp::{ExaRoute, Exabgp, ExabgpConfig};
use tortie_lab::frr::{Frr, FrrConfig, FrrNeighbor};
use tortie_lab::gobgp::{Gobgp, GobgpConfig, GobgpNeighbor};
use tortie_lab::netns::linked_pair;
use tortie_lab::{require_root, wait_until};

const A: &str = "198.51.100.1";
const B: &str = "198.51.100.2";

fn bird_config(peer_asn: u32, passive: bool) -> BirdConfig {
    let mut c = BirdConfig::new(Ipv4Addr::new(198, 51, 100, 1), 65001);
    let mut n = BirdNeighbor::new("peer", B.parse().unwrap(), peer_asn);
    n.passive = passive;
    c.neighbors.push(n);
    c.static_routes.push("10.9.0.0/24".into());
    c
}

#[test]
fn bird_and_frr_exchange_routes() {
    if !require_root() {
        return;
    }
    let (na, nb) = linked_pair("tl-h-bf", &format!("{A}/24"), &format!("{B}/24")).unwrap();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let bird = Bird::start(&na, da.path(), &bird_config(65002, false)).unwrap();
    let mut fc = FrrConfig::new("frr", Ipv4Addr::new(198, 51, 100, 2), 65002);
    fc.neighbors
        .push(FrrNeighbor::new(A.parse().unwrap(), 65001));
    fc.networks.push("10.8.0.0/24".into());
    let frr = Frr::start(&nb, db.path(), &fc).unwrap();
    wait_until("BIRD Established with FRR", Duration::from_secs(30), || {
        (bird.protocol_state("peer").ok()? == "Established").then_some(())
    })
    .unwrap();
    assert_eq!(
        frr.neighbor_state(A.parse().unwrap()).unwrap(),
        "Established"
    );
    let r = wait_until("10.8.0.0/24 in BIRD", Duration::from_secs(15), || {
        bird.routes(Some("peer"))
            .ok()?
            .into_iter()
            .find(|r| r.prefix == "10.8.0.0/24")
    })
    .unwrap();
    assert_eq!(r.as_path, vec![65002]);
    assert_eq!(r.next_hop.as_deref(), Some(B));
    let f = wait_until("10.9.0.0/24 in FRR", Duration::from_secs(15), || {
        frr.routes()
            .ok()?
            .into_iter()
            .find(|r| r.prefix == "10.9.0.0/24")
    })
    .unwrap();
    assert_eq!(f.as_path, vec![65001]);
    assert_eq!(f.next_hop.as_deref(), Some(A));
}

#[test]
fn bird_and_gobgp_exchange_routes() {
    if !require_root() {
        return;
    }
    let (na, nb) = linked_pair("tl-h-bg", &format!("{A}/24"), &format!("{B}/24")).unwrap();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let bird = Bird::start(&na, da.path(), &bird_config(65003, false)).unwrap();
    let gc = GobgpConfig {
        router_id: Ipv4Addr::new(198, 51, 100, 2),
        asn: 65003,
        neighbors: vec![GobgpNeighbor::new(A.parse().unwrap(), 65001)],
    };
    let gobgp = Gobgp::start(&nb, db.path(), &gc).unwrap();
    gobgp.add_route("10.7.0.0/24").unwrap();
    wait_until("GoBGP established", Duration::from_secs(30), || {
        (gobgp.neighbor_state(A.parse().unwrap()).ok()? == "established").then_some(())
    })
    .unwrap();
    let r = wait_until("10.7.0.0/24 in BIRD", Duration::from_secs(15), || {
        bird.routes(Some("peer"))
            .ok()?
            .into_iter()
            .find(|r| r.prefix == "10.7.0.0/24")
    })
    .unwrap();
    assert_eq!(r.as_path, vec![65003]);
    let g = wait_until("10.9.0.0/24 in GoBGP", Duration::from_secs(15), || {
        gobgp
            .routes()
            .ok()?
            .into_iter()
            .find(|r| r.prefix == "10.9.0.0/24")
    })
    .unwrap();
    assert_eq!(g.as_path, vec![65001]);
    assert_eq!(g.next_hop.as_deref(), Some(A));
}

#[test]
fn bird_and_exabgp_exchange_routes() {
    if !require_root() {
        return;
    }
    let (na, nb) = linked_pair("tl-h-be", &format!("{A}/24"), &format!("{B}/24")).unwrap();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let bird = Bird::start(&na, da.path(), &bird_config(65004, true)).unwrap();
    let ec = ExabgpConfig {
        router_id: Ipv4Addr::new(198, 51, 100, 2),
        local_address: B.parse().unwrap(),
        local_asn: 65004,
        peer_address: A.parse().unwrap(),
        peer_asn: 65001,
        passive: false,
        password: None,
        hold_time: 30,
        graceful_restart: false,
        routes: vec![ExaRoute {
            prefix: "10.6.0.0/24".into(),
            raw_attribute: None,
        }],
    };
    let exa = Exabgp::start(&nb, db.path(), &ec).unwrap();
    let r = wait_until("10.6.0.0/24 in BIRD", Duration::from_secs(30), || {
        bird.routes(Some("peer"))
            .ok()?
            .into_iter()
            .find(|r| r.prefix == "10.6.0.0/24")
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}; exabgp log:\n{}",
            std::fs::read_to_string(db.path().join("exabgp.log")).unwrap_or_default()
        )
    });
    assert_eq!(r.as_path, vec![65004]);
    let got = wait_until("10.9.0.0/24 at ExaBGP", Duration::from_secs(15), || {
        exa.received_routes()
            .into_iter()
            .find(|r| r.0 == "10.9.0.0/24")
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}; received: {:?}",
            std::fs::read_to_string(&exa.received)
        )
    });
    assert_eq!(got.1, vec![65001]);
    assert_eq!(got.2, A);
}
