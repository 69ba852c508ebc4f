//! vxlan-cross-subnet end to end (netns runner, real agents): three
//! dual-stack nodes on two subnets per family behind a router without pod
//! routes. Every container pings every other over both families; n1↔n2
//! (same subnets) route natively, n1↔n3 over `vxlan.tortie` (IPv4) and
//! `vxlan6.tortie` (IPv6), and only traffic to n3 moves n1's counters; the FDB and neighbour entries of
//! n3's VTEP, deleted behind the agent's back, are back within a second
//! (and counted in the metrics);
//! n1's agent SIGKILLed and restarted under a ping over VXLAN loses nothing,
//! for each family;
//! down leaves nothing.

mod lab_common;

use std::time::{Duration, Instant};

use lab_common::*;
use tortie_lab::runner::LabGuard;

/// n3's VTEP MAC as every node derives it from 198.51.100.13.
const N3_MAC: &str = "0e:74:c6:33:64:0d";

fn counter(g: &LabGuard, node: &str, which: &str) -> u64 {
    node_sh(
        g,
        node,
        &format!("cat /sys/class/net/vxlan.tortie/statistics/{which}"),
    )
    .trim()
    .parse()
    .unwrap_or_else(|e| panic!("{node} {which}: {e}"))
}

/// `count` pings from container `from` to container `to`; all answered?
fn ping(g: &LabGuard, from: (&str, &str), to: (&str, &str), count: u32) -> bool {
    Pinger::start(g, from, to, count, "0.1")
        .finish()
        .contains(&format!("{count} packets transmitted, {count} received"))
}

fn has_entries(g: &LabGuard) -> (bool, bool) {
    let neigh = node_sh(g, "n1", "ip neigh show dev vxlan.tortie");
    let fdb = node_sh(g, "n1", "bridge fdb show dev vxlan.tortie");
    (
        neigh.contains(&format!("198.51.100.13 lladdr {N3_MAC} PERMANENT")),
        fdb.lines()
            .any(|l| l.starts_with(N3_MAC) && l.contains("dst 198.51.100.13")),
    )
}

fn within_a_second(g: &LabGuard, what: &str) {
    let t0 = Instant::now();
    while has_entries(g) != (true, true) {
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "{what}: not back within 1 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("{what}: back in {:?}", t0.elapsed());
}

#[test]
fn vxlan_cross_subnet_end_to_end() {
    let Some(mut g) = up("vxlan-cross-subnet", "e2evx") else {
        return;
    };
    wait_all_established(&g);
    ping_all(&g);

    // Same subnet: native; across the router: VXLAN, on both sides.
    let to_n2 = node_sh(&g, "n1", "ip route show 10.244.2.0/26");
    assert!(
        to_n2.contains("via 192.0.2.12") && !to_n2.contains("vxlan"),
        "{to_n2}"
    );
    let to_n3 = node_sh(&g, "n1", "ip route show 10.244.3.0/26");
    assert!(
        to_n3.contains("via 198.51.100.13 dev vxlan.tortie") && to_n3.contains("onlink"),
        "{to_n3}"
    );
    let from_n3 = node_sh(&g, "n3", "ip route show 10.244.1.0/26");
    assert!(from_n3.contains("dev vxlan.tortie"), "{from_n3}");
    // IPv6: the same split, over vxlan6.tortie, via n3's VTEP link-local
    // address (EUI-64 of its derived MAC 0e:76:d8:a0:28:94).
    let to_n2 = node_sh(&g, "n1", "ip -6 route show fd00:10:244:2::/120");
    assert!(
        to_n2.contains("via 2001:db8:1::12") && !to_n2.contains("vxlan"),
        "{to_n2}"
    );
    let to_n3 = node_sh(&g, "n1", "ip -6 route show fd00:10:244:3::/120");
    assert!(
        to_n3.contains("via fe80::c76:d8ff:fea0:2894 dev vxlan6.tortie"),
        "{to_n3}"
    );
    let link6 = node_sh(&g, "n1", "ip -d link show vxlan6.tortie");
    assert!(
        link6.contains("mtu 1430") && link6.contains("local 2001:db8:1::11"),
        "{link6}"
    );
    // Containers get the smallest path: VXLAN over IPv6.
    let c1 = g
        .lab
        .state
        .containers
        .iter()
        .find(|c| c.node == "n1" && c.id == "c1")
        .expect("n1/c1")
        .netns
        .clone();
    let eth0 = tortie_lab::netns::Netns::existing(&c1)
        .run(&["ip", "link", "show", "eth0"])
        .expect("ip link in c1");
    assert!(eth0.contains("mtu 1430"), "{eth0}");
    let link = node_sh(&g, "n1", "ip -d link show vxlan.tortie");
    assert!(
        link.contains("mtu 1450") && link.contains("vxlan id 4096") && link.contains("nolearning"),
        "{link}"
    );
    // Only the cross-subnet pair moves the device's counters.
    let tx = counter(&g, "n1", "tx_packets");
    assert!(ping(&g, ("n1", "c1"), ("n2", "c1"), 5));
    assert_eq!(
        counter(&g, "n1", "tx_packets"),
        tx,
        "n1→n2 went through VXLAN"
    );
    assert!(ping(&g, ("n1", "c1"), ("n3", "c1"), 5));
    let moved = counter(&g, "n1", "tx_packets") - tx;
    assert!(moved >= 5, "n1→n3: vxlan.tortie tx moved by {moved}");

    // Entries deleted behind the agent's back come back.
    assert_eq!(has_entries(&g), (true, true));
    node_sh(&g, "n1", "ip neigh del 198.51.100.13 dev vxlan.tortie");
    within_a_second(&g, "neighbour entry");
    node_sh(
        &g,
        "n1",
        &format!("bridge fdb del {N3_MAC} dev vxlan.tortie dst 198.51.100.13"),
    );
    within_a_second(&g, "FDB entry");
    assert!(ping(&g, ("n1", "c1"), ("n3", "c1"), 3));
    // n1 goes through n3's two remote VTEPs (one per underlay family), and
    // counted the two repairs.
    let metrics = node_sh(&g, "n1", "curl -s http://127.0.0.1:9642/metrics");
    assert!(
        metrics.contains("\ntortie_dataplane_vxlan_vteps 2\n")
            && metrics.contains("\ntortie_dataplane_vxlan_entries_restored_total 2\n"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("vxlan"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Agent crash + restart under a ping over VXLAN: nothing lost.
    agent_restart_under_ping_loses_nothing(
        &mut g,
        "n1",
        ("n1", "c1"),
        ("n3", "c1"),
        Duration::from_millis(1000),
    );
    wait_all_established(&g);
    agent_restart_under_ping_family(
        &mut g,
        "n1",
        ("n1", "c1"),
        ("n3", "c1"),
        Family::V6,
        Duration::from_millis(1000),
    );
    wait_all_established(&g);
    ping_all(&g);
    assert_eq!(has_entries(&g), (true, true));

    down_leaves_nothing(g);
}
