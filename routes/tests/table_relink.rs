//! Root integration test of the route table across a device deleted and
//! made again under its name (a CNI DEL then ADD of one container id), in a
//! namespace of its own (`trt-tbl-hang-…`, removed on drop): the table's task
//! runs on a current-thread runtime, so the `ip` calls that remake the device
//! run while the task cannot, and the install is queued before the task has
//! seen the link events — the order that made an install wait for ever.

mod common;

use std::time::Duration;

use common::{Netns, require_root};
use tortie_routes::{Ipv4Network, KernelRoute, RouteTable};

fn net(s: &str) -> Ipv4Network {
    s.parse().unwrap()
}

/// A device deleted and made again under the same name while the table's
/// task was not running (a CNI DEL then ADD of one container id: the same
/// veth name, a new ifindex), then an install through it: the install must
/// be answered. The install is queued before the task has seen the link
/// events (a current-thread runtime: the `ip` calls block it), so the table
/// first plans the route on the old ifindex, which the kernel refuses, and
/// then, after the events, on the new one, which it accepts. Both requests
/// used to go out in one buffer, and settling the refused one reverted the
/// prefix's kernel side that the accepted one had set: desired, "not in the
/// kernel", not failed, nothing left to do — the install waited for ever
/// (a 60 s CNI ADD hang under the attach benchmark).
#[test]
fn an_install_through_a_device_remade_under_its_name_is_answered() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("tbl-hang-relink");
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let make = |probe: &Netns| {
            probe.ip(&["link", "add", "hx0", "type", "veth", "peer", "name", "hx1"]);
            // No IPv6 link-local addresses: no address events besides the links'.
            for dev in ["hx0", "hx1"] {
                probe.ip(&["link", "set", dev, "addrgenmode", "none"]);
                probe.ip(&["link", "set", dev, "up"]);
            }
        };
        make(&probe);
        let t = RouteTable::start(149, 254).await.expect("start");
        let local = || KernelRoute::Local { dev: "hx0".into() };
        t.install(net("10.66.0.1/32"), local())
            .await
            .expect("the first install");
        for round in 2..5u8 {
            // Let the task take every notification so far and wait again.
            tokio::time::sleep(Duration::from_millis(50)).await;
            probe.ip(&["link", "del", "hx0"]);
            make(&probe);
            let p = net(&format!("10.66.0.{round}/32"));
            match tokio::time::timeout(Duration::from_secs(5), t.install(p, local())).await {
                Ok(r) => r.unwrap_or_else(|e| panic!("round {round}: {e}")),
                Err(_) => panic!(
                    "round {round}: the install of {p} got no answer in 5 s; not installed: {:?}",
                    t.not_installed().await
                ),
            }
            let shown = probe.ip(&["route", "show", &p.to_string(), "proto", "149"]);
            assert!(shown.contains("dev hx0"), "round {round}: {shown:?}");
            assert!(t.installed().await.contains_key(&p.into()), "round {round}");
        }
        // Every earlier route was put back through the new device.
        t.flush().await.expect("flush");
        let ours = probe.ip(&["route", "show", "proto", "149"]);
        assert_eq!(
            ours.lines().filter(|l| l.contains("dev hx0")).count(),
            4,
            "{ours}"
        );
    });
}
