//! leaf-spine end to end (AS per rack): pings across racks, peers
//! Established, expected AS_PATHs at the spine (FRR), the ToRs (BIRD) and the
//! nodes (tortie); a node↔ToR link cut withdraws the node's block at the
//! spine within the hold time; down leaves nothing.

mod lab_common;

use std::time::{Duration, Instant};

use lab_common::*;
use tortie_lab::bird::parse_routes as bird_routes;
use tortie_lab::wait_until;

fn spine_routes(g: &tortie_lab::runner::LabGuard) -> Vec<tortie_lab::frr::FrrRoute> {
    let out = g
        .lab
        .exec(
            "spine",
            &[
                "vtysh".into(),
                "-c".into(),
                "show bgp ipv4 unicast json".into(),
            ],
        )
        .ok();
    out.and_then(|o| serde_json::from_slice(&o.stdout).ok())
        .map(|v| tortie_lab::frr::parse_routes(&v))
        .unwrap_or_default()
}

#[test]
fn leaf_spine_end_to_end() {
    let Some(g) = up("leaf-spine", "e2els") else {
        return;
    };
    wait_all_established(&g);
    ping_all(&g);

    // Spine: each rack's blocks with the rack AS.
    let spine = wait_until("4 blocks at the spine", T, || {
        let r = spine_routes(&g);
        (r.iter().filter(|r| r.best).count() == 4).then_some(r)
    })
    .unwrap();
    for (p, asn) in [
        ("10.244.11.0/26", 65101),
        ("10.244.12.0/26", 65101),
        ("10.244.21.0/26", 65102),
        ("10.244.22.0/26", 65102),
    ] {
        let r = spine
            .iter()
            .find(|r| r.prefix == p && r.best)
            .unwrap_or_else(|| panic!("{p} at spine"));
        assert_eq!(r.as_path, vec![asn], "{p}");
    }
    // ToR of rack 1 (BIRD): rack 2's blocks through the spine.
    let out = node_sh(&g, "tor1", "birdc show route all");
    let tor1 = bird_routes(&out);
    let r = tor1
        .iter()
        .find(|r| r.prefix == "10.244.21.0/26" && r.best)
        .unwrap();
    assert_eq!(r.as_path, vec![65000, 65102]);
    let r = tor1
        .iter()
        .find(|r| r.prefix == "10.244.12.0/26" && r.best)
        .unwrap();
    assert!(r.as_path.is_empty(), "same-rack block is iBGP: {r:?}");
    // A node of rack 2 sees rack 1's block via its ToR with the full path.
    let out = node_sh(&g, "r2n1", "tortie routes -o json");
    let routes = tortie_lab::tortie::parse_routes(&serde_json::from_str(&out).unwrap());
    let r = routes
        .iter()
        .find(|r| r.prefix == "10.244.11.0/26")
        .unwrap();
    assert_eq!(r.as_path, vec![65000, 65101]);
    assert_eq!(r.next_hop.as_deref(), Some("10.2.0.1"));

    // Link cut between r1n1 and its ToR: the block is withdrawn at the spine
    // within the hold time (9 s) plus propagation.
    let t0 = Instant::now();
    node_sh(&g, "r1n1", "ip link set eth1 down");
    wait_until(
        "10.244.11.0/26 withdrawn at the spine",
        Duration::from_secs(15),
        || {
            spine_routes(&g)
                .iter()
                .all(|r| r.prefix != "10.244.11.0/26")
                .then_some(())
        },
    )
    .unwrap();
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(13), "withdrawal took {took:?}");
    eprintln!("link cut -> withdrawn at spine in {took:?}");
    let r = node_sh(&g, "r2n1", "ip route show 10.244.11.0/26");
    assert!(
        r.trim().is_empty(),
        "r2n1 still routes to the cut node: {r}"
    );

    down_leaves_nothing(g);
}

/// The agent of a rack-2 node is SIGKILLed and restarted while a container of
/// rack 1 pings one of its containers: its ToR keeps the node's routes
/// (graceful restart) and the kernel keeps the node's routes, so nothing is lost.
#[test]
fn leaf_spine_agent_restart_under_ping_loses_nothing() {
    let Some(mut g) = up("leaf-spine", "e2elsar") else {
        return;
    };
    wait_all_established(&g);
    ping_all(&g);
    agent_restart_under_ping_loses_nothing(
        &mut g,
        "r2n1",
        ("r1n1", "c1"),
        ("r2n1", "c1"),
        Duration::from_millis(1500),
    );
    wait_all_established(&g);
    ping_all(&g);
    down_leaves_nothing(g);
}
