//! Root integration test of what the route table reports as not installed
//! when the kernel's table changes under a failed prefix, in a namespace of
//! its own (`trt-tbl-kern-…`, removed on drop) with a veth `rt0`/`rt1` and
//! 10.200.0.1/24 on `rt0`.

mod common;

use std::time::{Duration, Instant};

use common::{Netns, require_root};
use tortie_routes::{IpNetwork, KernelRoute, NextHop, RouteTable, RoutesError};

/// A prefix that failed (a route of another protocol held it) and whose
/// desired route then appears from another writer of our protocol is
/// installed, and no longer reported as not installed, as soon as the
/// table hears of it — not only at the next retry (every second).
#[test]
fn a_failed_prefix_installed_by_another_writer_of_ours_is_not_failed() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("tbl-kern-healed");
    ns.ip(&["link", "add", "rt0", "type", "veth", "peer", "name", "rt1"]);
    ns.ip(&["addr", "add", "10.200.0.1/24", "dev", "rt0"]);
    ns.ip(&["link", "set", "rt0", "up"]);
    ns.ip(&["link", "set", "rt1", "up"]);
    let p = "10.78.0.0/24";
    ns.ip(&["route", "add", p, "via", "10.200.0.2", "proto", "static"]);
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let prefix: IpNetwork = p.parse().unwrap();
        let route = KernelRoute::Unicast {
            next_hops: vec![NextHop {
                gateway: "10.200.0.2".parse().unwrap(),
                dev: None,
                onlink: false,
            }],
        };
        let t = RouteTable::start(149, 254).await.expect("start");
        t.set(prefix, route.clone()).await;
        match t.flush().await {
            Err(RoutesError::Incomplete { failed: 1, first }) => {
                assert!(first.contains("another protocol"), "{first}")
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        // Another writer of our protocol puts the desired route in the
        // foreign one's place.
        probe.ip(&["route", "replace", p, "via", "10.200.0.2", "proto", "149"]);
        let start = Instant::now();
        while !t.installed().await.contains_key(&prefix) {
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "the table never heard of the route"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Heard of it well before the next retry tick could end the failure.
        let not = t.not_installed().await;
        assert!(
            not.is_empty(),
            "installed and still reported not installed: {not:?}"
        );
        t.flush().await.expect("nothing failed");
        let shown = probe.ip(&["route", "show", p]);
        assert!(shown.contains("proto 149"), "{shown}");
    });
}
