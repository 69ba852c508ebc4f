//! route-reflector end to end: four tortie nodes, each with one iBGP session
//! to an FRR route reflector. Pings, peers Established, FRR holds every block
//! with the node as next hop and an empty AS_PATH, down leaves nothing.

mod lab_common;

use lab_common::*;
use tortie_lab::wait_until;

#[test]
fn route_reflector_end_to_end() {
    let Some(g) = up("route-reflector", "e2err") else {
        return;
    };
    wait_all_established(&g);
    ping_all(&g);
    let table = wait_until("4 blocks at the reflector", T, || {
        let out = g
            .lab
            .exec(
                "rr",
                &[
                    "vtysh".into(),
                    "-c".into(),
                    "show bgp ipv4 unicast json".into(),
                ],
            )
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let routes = tortie_lab::frr::parse_routes(&v);
        (routes.len() == 4).then_some(routes)
    })
    .unwrap();
    for i in 1..=4 {
        let r = table
            .iter()
            .find(|r| r.prefix == format!("10.244.{i}.0/26"))
            .unwrap();
        assert!(r.as_path.is_empty(), "iBGP path must be empty: {r:?}");
        assert_eq!(
            r.next_hop.as_deref(),
            Some(format!("192.0.2.1{i}").as_str())
        );
    }
    // Reflected routes keep the originator's next hop (RFC 4456).
    let r = node_sh(&g, "n1", "ip route show 10.244.4.0/26");
    assert!(r.contains("via 192.0.2.14"), "n1: {r}");
    down_leaves_nothing(g);
}
