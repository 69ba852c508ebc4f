//! Helpers of the route-table root tests (table.rs, table_failed.rs): the
//! namespace they run in, routes by gateway, and waiting for `ip` to show a
//! route.

use std::time::{Duration, Instant};

use tortie_routes::{Ipv4Network, KernelRoute, NextHop};

use super::Netns;

/// A namespace with the veth pair `rt0`/`rt1` up, 10.200.0.1/24 and
/// 2001:db8:200::1/64 on `rt0` (removed on drop).
pub fn setup(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.ip(&["link", "add", "rt0", "type", "veth", "peer", "name", "rt1"]);
    ns.ip(&["addr", "add", "10.200.0.1/24", "dev", "rt0"]);
    ns.ip(&["addr", "add", "2001:db8:200::1/64", "dev", "rt0", "nodad"]);
    ns.ip(&["link", "set", "rt0", "up"]);
    ns.ip(&["link", "set", "rt1", "up"]);
    ns
}

/// A next hop via `gw`, no device, not onlink.
pub fn hop(gw: &str) -> NextHop {
    NextHop {
        gateway: gw.parse().unwrap(),
        dev: None,
        onlink: false,
    }
}

/// A unicast route via `gw` alone.
pub fn via(gw: &str) -> KernelRoute {
    KernelRoute::Unicast {
        next_hops: vec![hop(gw)],
    }
}

/// An IPv4 prefix from its text.
pub fn net(s: &str) -> Ipv4Network {
    s.parse().unwrap()
}

/// Polls `ip <args>` in `probe` every 10 ms until it shows `want`; panics
/// after `limit`. How long it took.
pub async fn wait_for(probe: &Netns, args: &[&str], want: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (_, out) = probe.try_ip(args);
        if out.contains(want) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "`ip {}` did not show {want:?} within {limit:?}: {out}",
            args.join(" ")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
