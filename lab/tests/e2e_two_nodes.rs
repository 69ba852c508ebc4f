//! two-nodes end to end: up, all containers ping each other, both peers
//! Established, agent SIGKILL + restart under a continuous ping loses
//! nothing, down leaves nothing.

mod lab_common;

use std::time::Duration;

use lab_common::*;
use tortie_lab::netns::Netns;

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
    let src = g
        .lab
        .state
        .containers
        .iter()
        .find(|c| c.node == "n1")
        .unwrap()
        .netns
        .clone();
    let dst = g.lab.container_address("n2", "c1").unwrap().to_string();
    let pinger = std::thread::spawn(move || {
        Netns::existing(&src)
            .run(&[
                "ping", "-n", "-q", "-c", "100", "-i", "0.05", "-W", "1", &dst,
            ])
            .unwrap_or_else(|e| e.to_string())
    });
    std::thread::sleep(Duration::from_millis(500));
    g.lab.kill_daemon("n2", "tortie").unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    g.lab.restart_daemon("n2", "tortie").unwrap();
    let out = pinger.join().unwrap();
    assert!(
        out.contains("100 packets transmitted, 100 received"),
        "loss during agent restart: {out}"
    );
    wait_all_established(&g);
    ping_all(&g);

    down_leaves_nothing(g);
}
