//! mesh3 end to end: three nodes in a full iBGP mesh; n3 advertises host
//! routes. Pings, peers Established, /32s of n3's containers everywhere, a
//! detached container's /32 withdrawn everywhere, down leaves nothing.

mod lab_common;

use lab_common::*;
use tortie_lab::wait_until;

#[test]
fn mesh3_end_to_end() {
    let Some(mut g) = up("mesh3", "e2em3") else {
        return;
    };
    assert_eq!(g.lab.state.containers.len(), 6);
    wait_all_established(&g);
    ping_all(&g);
    let c2 = g.lab.container_address("n3", "c2").unwrap().to_string();
    for node in ["n1", "n2"] {
        let r = node_sh(&g, node, &format!("ip route show {c2}/32"));
        assert!(
            r.contains("via 192.0.2.23"),
            "{node}: host route for {c2}: {r:?}"
        );
        let b = node_sh(&g, node, "ip route show 10.244.3.0/26");
        assert!(b.contains("via 192.0.2.23"), "{node}: block of n3: {b:?}");
    }
    // Container detached on n3: its /32 disappears from n1 and n2.
    g.lab.detach_container("n3", "c2").unwrap();
    for node in ["n1", "n2"] {
        wait_until(&format!("{c2}/32 gone on {node}"), T, || {
            node_sh(&g, node, &format!("ip route show {c2}/32"))
                .trim()
                .is_empty()
                .then_some(())
        })
        .unwrap();
    }
    ping_all(&g);
    down_leaves_nothing(g);
}
