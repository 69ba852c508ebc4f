//! Routing policy against real daemons (issue 13): BIRD and FRR receive
//! exactly what tortie's export filter lets through, with the communities it
//! sets; a peer announcing our block, our address and a default route gets
//! only the default installed (the rest is listed as filtered); a SIGHUP
//! filter change changes the peer's view without a session reset; NO_EXPORT
//! from ExaBGP is not passed to an eBGP peer, and eBGP-learned routes reach
//! another eBGP peer only through an export filter (no accidental transit)
//! or with `bgp.ebgp_requires_policy = false`, both applied live.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::*;
use tortie_lab::bird::{Bird, BirdConfig, BirdNeighbor};
use tortie_lab::exabgp::{ExaRoute, Exabgp, ExabgpConfig};
use tortie_lab::frr::{Frr, FrrConfig, FrrNeighbor};
use tortie_lab::netns::{Netns, veth};
use tortie_lab::tortie::{TortieConfig, TortieNode, TortiePeer};
use tortie_lab::wait_until;

/// Our block goes out tagged; container /32s do not go out at all.
const TAG_BLOCK_ONLY: &str = r#"
[[filter]]
name = "to-peer"

[[filter.rule]]
source = ["local-host"]
action = "reject"

[[filter.rule]]
source = ["local-block"]
action = "accept"
add_communities = ["64512:100", "64512:7:7"]
"#;

/// The same without the rule that keeps /32s in.
const TAG_BLOCK_AND_HOSTS: &str = r#"
[[filter]]
name = "to-peer"

[[filter.rule]]
source = ["local-block"]
action = "accept"
add_communities = ["64512:100", "64512:7:7"]
"#;

const HOST: &str = "10.250.0.5";
const HOST_PREFIX: &str = "10.250.0.5/32";

fn filtered_config(pair: &Pair, passive: bool, filters: &str) -> TortieConfig {
    let mut c = pair.tortie_config(passive, None);
    c.peers[0].extra = "export_filter = \"to-peer\"\n".into();
    c.extra = filters.into();
    c
}

/// A container outside the block, attached; its netns lives as long as the guard.
fn attach_host(node: &TortieNode) -> Netns {
    let ctr = Netns::create(&tortie_lab::unique_name("tl-ip-c")).expect("container netns");
    let ip = node
        .attach(&ctr.path(), "c-policy", Some(HOST))
        .expect("attach");
    assert_eq!(ip, HOST);
    ctr
}

/// Routes the peer has from tortie: BIRD's paths whose AS_PATH starts with ours.
fn bird_from_us(bird: &Bird) -> Vec<tortie_lab::bird::BirdRoute> {
    bird.routes(Some("tortie"))
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.as_path.first() == Some(&OUR_ASN))
        .collect()
}

#[test]
fn bird_guard_export_filter_communities_and_sighup_without_reset() {
    let Some(pair) = pair("tl-ip1") else { return };
    let mut cfg = BirdConfig::new(Ipv4Addr::new(198, 51, 100, 1), THEIR_ASN);
    let mut n = BirdNeighbor::new("tortie", OURS.parse().unwrap(), OUR_ASN);
    n.passive = true;
    n.hold_time = Some(9);
    cfg.neighbors.push(n);
    // Ours to refuse: inside our block, our own address; to accept: a
    // default route and their prefix.
    for p in [
        THEIR_PREFIX,
        "10.244.1.32/27",
        "198.51.100.2/32",
        "0.0.0.0/0",
    ] {
        cfg.static_routes.push(p.into());
    }
    let tcfg = filtered_config(&pair, false, TAG_BLOCK_ONLY);
    let node = pair.start_tortie(&tcfg);
    // A container /32 outside the block, for the export filter to keep in.
    let _ctr = attach_host(&node);
    let bird = Bird::start(&pair.theirs, pair.their_dir.path(), &cfg).unwrap();
    wait_established(&bird, &node);

    // Import guard: only the default route and their prefix are used.
    wait_our_route(&node, THEIR_PREFIX);
    wait_our_route(&node, "0.0.0.0/0");
    wait_until("default route in our kernel", T, || {
        pair.our_kernel_route("0.0.0.0/0")
            .contains(&format!("via {THEIRS}"))
            .then_some(())
    })
    .unwrap();
    let filtered = wait_until("two routes filtered", T, || {
        node.filtered().ok().filter(|f| f.len() == 2)
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", node.filtered()));
    let why = |p: &str| {
        filtered
            .iter()
            .find(|f| f.0 == p)
            .map(|f| f.2.clone())
            .unwrap_or_default()
    };
    assert!(
        why("10.244.1.32/27").contains("pod block 10.244.1.0/26"),
        "{filtered:?}"
    );
    assert!(
        why("198.51.100.2/32").contains("this node's address"),
        "{filtered:?}"
    );
    let ours = node.routes().unwrap();
    assert!(
        !ours
            .iter()
            .any(|r| r.prefix == "10.244.1.32/27" || r.prefix == "198.51.100.2/32"),
        "{ours:?}"
    );
    assert!(pair.our_kernel_route("10.244.1.32/27").is_empty());
    let counted = node
        .peer(THEIRS)
        .ok()
        .and_then(|p| p.get("routes_filtered")?.as_u64());
    assert_eq!(counted, Some(2), "filtered routes counted in status");

    // Export filter: exactly the block, with both communities; the /32 stays in.
    let block = wait_until("our block at BIRD with communities", T, || {
        bird_from_us(&bird)
            .into_iter()
            .find(|r| r.prefix == BLOCK && r.communities.len() == 2)
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", bird_from_us(&bird)));
    assert!(
        block.communities.contains(&"64512:100".to_string()),
        "{block:?}"
    );
    assert!(
        block.communities.contains(&"64512:7:7".to_string()),
        "{block:?}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let got: Vec<String> = bird_from_us(&bird).into_iter().map(|r| r.prefix).collect();
    assert_eq!(got, vec![BLOCK.to_string()], "exactly the filtered set");

    // SIGHUP: the filter lets /32s out now, and the /32s we originate carry
    // a community of their own (bgp.host_communities); no session reset.
    let t0 = transitions(&node);
    let mut hup = filtered_config(&pair, false, TAG_BLOCK_AND_HOSTS);
    hup.bgp_extra = "host_communities = [\"64512:32\"]\n".into();
    node.reload(&hup).unwrap();
    let host = wait_until("the /32 at BIRD after SIGHUP, tagged", T, || {
        bird_from_us(&bird)
            .into_iter()
            .find(|r| r.prefix == HOST_PREFIX && !r.communities.is_empty())
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", node.log_tail(20)));
    assert_eq!(host.communities, vec!["64512:32".to_string()]);
    assert_eq!(transitions(&node), t0, "filter change reset the session");
    assert!(node.all_established());
    node.detach("c-policy").unwrap();
}

#[test]
fn frr_receives_exactly_the_filtered_set_with_communities() {
    let Some(pair) = pair("tl-ip2") else { return };
    let mut cfg = FrrConfig::new("theirs", Ipv4Addr::new(198, 51, 100, 1), THEIR_ASN);
    let mut n = FrrNeighbor::new(OURS.parse().unwrap(), OUR_ASN);
    n.passive = true;
    cfg.neighbors.push(n);
    let frr = Frr::start(&pair.theirs, pair.their_dir.path(), &cfg).unwrap();
    let node = pair.start_tortie(&filtered_config(&pair, false, TAG_BLOCK_ONLY));
    wait_established(&frr, &node);
    let _ctr = attach_host(&node);
    let comms = wait_until("our block at FRR with communities", T, || {
        frr.communities(BLOCK)
            .ok()
            .flatten()
            .filter(|c| c.len() == 2)
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", frr.communities(BLOCK)));
    assert!(comms.contains(&"64512:100".to_string()), "{comms:?}");
    assert!(comms.contains(&"64512:7:7".to_string()), "{comms:?}");
    std::thread::sleep(Duration::from_secs(1));
    let from_us: Vec<String> = frr
        .routes()
        .unwrap()
        .into_iter()
        .filter(|r| r.as_path.first() == Some(&OUR_ASN))
        .map(|r| r.prefix)
        .collect();
    assert_eq!(from_us, vec![BLOCK.to_string()], "exactly the filtered set");
    node.detach("c-policy").unwrap();
}

const EXA: &str = "203.0.113.1";
const OURS_TO_EXA: &str = "203.0.113.2";
const EXA_ASN: u32 = 65002;
const PLAIN: &str = "10.7.0.0/24";
const NO_EXPORT: &str = "10.7.1.0/24";

/// Transit to BIRD allowed by an explicit rule.
const TRANSIT: &str = r#"
[[filter]]
name = "to-peer"

[[filter.rule]]
source = ["learned"]
action = "accept"
"#;

#[test]
fn exabgp_no_export_is_not_passed_on_and_no_transit_without_a_filter() {
    let Some(pair) = pair("tl-ip3") else { return };
    // ExaBGP in a third namespace, on a second link to ours.
    let exa_ns = Netns::create(&tortie_lab::unique_name("tl-ip3x")).expect("netns");
    veth(&pair.ours, "eth2", &exa_ns, "eth1").unwrap();
    pair.ours
        .add_address("eth2", &format!("{OURS_TO_EXA}/24"))
        .unwrap();
    exa_ns.add_address("eth1", &format!("{EXA}/24")).unwrap();
    let exa_dir = tempfile::tempdir().unwrap();
    let exa = Exabgp::start(
        &exa_ns,
        exa_dir.path(),
        &ExabgpConfig {
            router_id: Ipv4Addr::new(203, 0, 113, 1),
            local_address: EXA.parse().unwrap(),
            local_asn: EXA_ASN,
            peer_address: OURS_TO_EXA.parse().unwrap(),
            peer_asn: OUR_ASN,
            passive: false,
            password: None,
            hold_time: 9,
            graceful_restart: false,
            routes: vec![
                ExaRoute {
                    prefix: PLAIN.into(),
                    raw_attribute: None,
                },
                // COMMUNITIES (type 8, optional transitive) = NO_EXPORT.
                ExaRoute {
                    prefix: NO_EXPORT.into(),
                    raw_attribute: Some((8, 0xc0, vec![0xff, 0xff, 0xff, 0x01])),
                },
            ],
        },
    )
    .unwrap();
    let mut bcfg = BirdConfig::new(Ipv4Addr::new(198, 51, 100, 1), THEIR_ASN);
    let mut n = BirdNeighbor::new("tortie", OURS.parse().unwrap(), OUR_ASN);
    n.passive = true;
    n.hold_time = Some(9);
    bcfg.neighbors.push(n);
    let bird = Bird::start(&pair.theirs, pair.their_dir.path(), &bcfg).unwrap();
    let mut tcfg = filtered_config(&pair, false, TRANSIT);
    let mut p = TortiePeer::new(EXA.parse().unwrap(), EXA_ASN);
    p.passive = true;
    p.name = Some("exa".into());
    tcfg.peers.push(p);
    let node = pair.start_tortie(&tcfg);
    wait_established(&bird, &node);
    wait_our_route(&node, PLAIN);
    wait_our_route(&node, NO_EXPORT);
    // Transit by filter: the plain route reaches BIRD, the NO_EXPORT one not.
    let r = wait_until("ExaBGP's plain route at BIRD", T, || {
        bird_from_us(&bird).into_iter().find(|r| r.prefix == PLAIN)
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", bird_from_us(&bird)));
    assert_eq!(r.as_path, vec![OUR_ASN, EXA_ASN]);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !bird_from_us(&bird).iter().any(|r| r.prefix == NO_EXPORT),
        "NO_EXPORT passed to an eBGP peer: {:?}",
        bird_from_us(&bird)
    );
    // Without the export filter (SIGHUP): no transit at all, session kept.
    let t0 = transitions(&node);
    let mut plain = tcfg.clone();
    plain.peers[0].extra.clear();
    plain.extra.clear();
    node.reload(&plain).unwrap();
    wait_until("ExaBGP's route withdrawn at BIRD", T, || {
        (!bird_from_us(&bird).iter().any(|r| r.prefix == PLAIN)).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", node.log_tail(20)));
    assert!(bird_from_us(&bird).iter().any(|r| r.prefix == BLOCK));
    // A transit node on purpose (SIGHUP, bgp.ebgp_requires_policy = false):
    // the plain route is back, NO_EXPORT still stays here.
    plain.bgp_extra = "ebgp_requires_policy = false\n".into();
    node.reload(&plain).unwrap();
    wait_until("ExaBGP's route at BIRD again", T, || {
        bird_from_us(&bird).into_iter().find(|r| r.prefix == PLAIN)
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", node.log_tail(20)));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!bird_from_us(&bird).iter().any(|r| r.prefix == NO_EXPORT));
    assert_eq!(transitions(&node), t0);
    drop(exa);
}
