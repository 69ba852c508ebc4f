//! dual-stack end to end (issue 11 §3): up, every container has a /32 and a
//! /128 and pings every other container over both families (IPv6 blocks
//! learned over the IPv4 session with the peer's IPv6 next hop), agent
//! SIGKILL + restart under `ping -6` loses nothing, down leaves nothing.

mod lab_common;

use std::time::Duration;

use lab_common::*;

#[test]
fn dual_stack_end_to_end() {
    let Some(mut g) = up("dual-stack", "e2eds") else {
        return;
    };
    assert_eq!(g.lab.state.containers.len(), 4);
    for c in &g.lab.state.containers {
        let all: Vec<&str> = c.addresses().collect();
        assert_eq!(all.len(), 2, "{}/{}: {all:?}", c.node, c.id);
        assert!(all[0].starts_with("10.244."), "{all:?}");
        assert!(all[1].starts_with("fd00:10:244:"), "{all:?}");
    }
    wait_all_established(&g);
    // ping_all pings every address of every other container: both families.
    ping_all(&g);
    let routes6 = node_sh(&g, "n1", "ip -6 route show fd00:10:244:2::/120");
    assert!(routes6.contains("via 2001:db8:1::12"), "n1: {routes6}");
    let routes4 = node_sh(&g, "n1", "ip route show 10.244.2.0/26");
    assert!(routes4.contains("via 192.0.2.12"), "n1: {routes4}");

    // Agent crash + restart under ping -6: graceful restart keeps the IPv6
    // routes on both sides, not a single probe is lost.
    agent_restart_under_ping_family(
        &mut g,
        "n2",
        ("n1", "c1"),
        ("n2", "c1"),
        Family::V6,
        Duration::from_millis(1000),
    );
    wait_all_established(&g);
    ping_all(&g);

    down_leaves_nothing(g);
}
