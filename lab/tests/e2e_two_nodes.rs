//! two-nodes end to end: up, all containers ping each other, both peers
//! Established, agent SIGKILL + restart under a continuous ping loses
//! nothing, down leaves nothing.

mod lab_common;

use std::time::Duration;

use lab_common::*;

#[test]
fn two_nodes_end_to_end() {
    let Some(mut g) = up("two-nodes", "e2e2n") else {
        return;
    };
    assert_eq!(g.lab.state.containers.len(), 4);
    wait_all_established(&g);
    ping_all(&g);
    let routes = node_sh(&g, "n1", "ip route show 10.244.2.0/26");
    assert!(routes.contains("via 192.0.2.12"), "n1: {routes}");

    // Agent crash + restart under ping: the kernel routes stay (RFC 4724 on
    // the peer keeps ours), so not a single probe is lost.
    agent_restart_under_ping_loses_nothing(
        &mut g,
        "n2",
        ("n1", "c1"),
        ("n2", "c1"),
        Duration::from_millis(1000),
    );
    wait_all_established(&g);
    ping_all(&g);

    down_leaves_nothing(g);
}
