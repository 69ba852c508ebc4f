//! Root integration tests of prefixes the kernel refuses or another writer
//! holds: what the route table reports as not installed (and why), that a
//! refused replacement leaves no stale route, and that a failed prefix goes in
//! once the kernel's table allows it. Each in a namespace of its own (removed
//! on drop) with a veth `rt0`/`rt1` and 10.200.0.1/24 on `rt0`.

mod common;

use std::time::{Duration, Instant};

use common::table::{net, setup, via, wait_for};
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
    let ns = setup("tbl-kern-healed");
    let p = "10.78.0.0/24";
    ns.ip(&["route", "add", p, "via", "10.200.0.2", "proto", "static"]);
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let prefix: IpNetwork = p.parse().unwrap();
        let t = RouteTable::start(149, 254).await.expect("start");
        t.set(prefix, via("10.200.0.2")).await;
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

#[test]
fn unreachable_gateway_installs_once_an_address_makes_it_reachable() {
    if !require_root() {
        return;
    }
    let ns = setup("tbl-unreach");
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let t = RouteTable::start(149, 254).await.expect("start");
        t.set(net("10.88.0.0/24"), via("10.201.0.2")).await;
        match t.flush().await {
            Err(RoutesError::Incomplete { failed: 1, first }) => {
                assert!(first.contains("Network is unreachable"), "{first}")
            }
            other => panic!("expected the kernel to refuse, got {other:?}"),
        }
        let s = t.stats();
        assert!(s.netlink_errors >= 1);
        assert!(
            s.refused.get("ENETUNREACH").is_some_and(|n| *n >= 1),
            "{s:?}"
        );
        assert_eq!(s.not_installed.get("ENETUNREACH"), Some(&1), "{s:?}");
        // The reason per prefix, with the kernel's own words.
        let why = t.not_installed().await;
        let text = why.get(&net("10.88.0.0/24").into()).expect("a reason");
        assert!(
            text.starts_with("kernel refused the route: Network is unreachable (ENETUNREACH)"),
            "{text}"
        );
        // IPv6 too, and a route naming a missing device.
        t.set(
            "2001:db8:99::/48"
                .parse::<tortie_routes::IpNetwork>()
                .unwrap(),
            via("2001:db8:201::2"),
        )
        .await;
        let err = t
            .install(
                net("10.89.0.0/24"),
                KernelRoute::Local {
                    dev: "ttmissing".into(),
                },
            )
            .await
            .expect_err("no such device");
        assert!(
            err.to_string().contains("device ttmissing does not exist"),
            "{err}"
        );
        let _ = t.flush().await;
        let why = t.not_installed().await;
        assert_eq!(why.len(), 3, "{why:?}");
        let v6 = why
            .get(&"2001:db8:99::/48".parse().unwrap())
            .expect("the IPv6 route");
        assert!(v6.contains("No route to host (EHOSTUNREACH)"), "{v6}");
        eprintln!("reasons: {why:?}");
        let s = t.stats();
        assert_eq!(s.not_installed.get("ENETUNREACH"), Some(&1), "{s:?}");
        assert_eq!(s.not_installed.get("EHOSTUNREACH"), Some(&1), "{s:?}");
        assert_eq!(s.not_installed.get("no_device"), Some(&1), "{s:?}");
        t.remove(net("10.89.0.0/24")).await;
        t.remove(
            "2001:db8:99::/48"
                .parse::<tortie_routes::IpNetwork>()
                .unwrap(),
        )
        .await;
        probe.ip(&["addr", "add", "10.201.0.1/24", "dev", "rt0"]);
        wait_for(
            &probe,
            &["route", "show", "10.88.0.0/24"],
            "via 10.201.0.2 dev rt0 proto 149",
            Duration::from_millis(500),
        )
        .await;
        t.flush()
            .await
            .expect("installed after the address appeared");
        assert!(t.not_installed().await.is_empty());
        assert!(t.stats().not_installed.is_empty());
    });
}

/// A replacement the kernel refuses must not leave the route it was to
/// replace (found in the QEMU guest: `encapsulation` switched from `ipip` to
/// `none` kept `<block> via X dev tunl0 onlink`, because a plain route via an
/// off-subnet X is refused, and pods kept talking through the tunnel): the old
/// route of ours goes within the retry second, the prefix is reported not
/// installed, and the desired route still goes in once it becomes possible.
#[test]
fn refused_replacement_removes_the_route_it_replaces() {
    if !require_root() {
        return;
    }
    let ns = setup("tbl-stale");
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let t = RouteTable::start(149, 254).await.expect("start");
        let p = net("10.87.0.0/24");
        let onlink = KernelRoute::Unicast {
            next_hops: vec![NextHop {
                gateway: "10.201.0.2".parse().unwrap(),
                dev: Some("rt0".into()),
                onlink: true,
            }],
        };
        t.set(p, onlink).await;
        t.flush().await.expect("an onlink route installs");
        let shown = |probe: &Netns| probe.ip(&["route", "show", "10.87.0.0/24", "proto", "149"]);
        assert!(shown(&probe).contains("onlink"), "{}", shown(&probe));
        // The same next hop without onlink: not on a connected subnet.
        t.set(p, via("10.201.0.2")).await;
        assert!(
            t.flush().await.is_err(),
            "the kernel must refuse the plain route"
        );
        let t0 = Instant::now();
        while !shown(&probe).trim().is_empty() && t0.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            shown(&probe).trim(),
            "",
            "the replaced route is still there"
        );
        eprintln!("old route gone {:?} after the refusal", t0.elapsed());
        let why = t.not_installed().await;
        assert!(
            why.get(&p.into())
                .is_some_and(|w| w.contains("Network is unreachable")),
            "{why:?}"
        );
        probe.ip(&["addr", "add", "10.201.0.1/24", "dev", "rt0"]);
        wait_for(
            &probe,
            &["route", "show", "10.87.0.0/24"],
            "via 10.201.0.2 dev rt0 proto 149",
            Duration::from_millis(1500),
        )
        .await;
        t.flush().await.expect("installed once reachable");
        assert!(t.not_installed().await.is_empty());
    });
}

/// A burst of one route over many new prefixes (the table's bulk path, which
/// writes such a prefix in one step, session 12): a prefix in its middle
/// held by a route of another protocol is still never overwritten (it
/// fails as a conflict), and a burst the kernel refuses request by request
/// (an unreachable gateway) leaves every prefix failed, with nothing
/// recorded as installed, and goes in once the gateway is reachable.
#[test]
fn a_bulk_burst_keeps_conflicts_and_refusals() {
    if !require_root() {
        return;
    }
    let ns = setup("tbl-bulk");
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let t = RouteTable::start(149, 254).await.expect("start");
        // Another protocol's route, heard of after the start.
        probe.ip(&[
            "route",
            "add",
            "10.79.0.5/32",
            "via",
            "10.200.0.2",
            "proto",
            "static",
        ]);
        // Its notification is queued before `ip` returns: applied before
        // the flush is answered.
        t.flush().await.expect("nothing desired yet");
        let burst = |third: u8, gw: &str| {
            let r = t.intern(via(gw));
            (0..64u8)
                .map(|i| {
                    let p = net(&format!("10.{third}.0.{i}/32"));
                    (IpNetwork::V4(p), Some(r.clone()))
                })
                .collect::<Vec<_>>()
        };
        t.apply(burst(79, "10.200.0.2")).await;
        match t.flush().await {
            Err(RoutesError::Incomplete { failed: 1, first }) => {
                assert!(
                    first.starts_with("10.79.0.5/32: a route of another protocol"),
                    "{first}"
                )
            }
            other => panic!("expected the one conflict, got {other:?}"),
        }
        let held = probe.ip(&["route", "show", "10.79.0.5/32"]);
        assert!(held.contains("proto static"), "overwritten: {held}");
        let ours = |probe: &Netns| probe.ip(&["route", "show", "proto", "149"]).lines().count();
        assert_eq!(ours(&probe), 63);
        assert_eq!(t.stats().installed_learned, 63);
        // Every request of a burst refused: each prefix failed, none counted.
        t.apply(burst(80, "10.201.0.2")).await;
        match t.flush().await {
            Err(RoutesError::Incomplete { failed: 65, .. }) => {}
            other => panic!("expected 64 refusals and the conflict, got {other:?}"),
        }
        let s = t.stats();
        assert_eq!((s.installed_learned, s.pending), (63, 65), "{s:?}");
        assert_eq!(ours(&probe), 63);
        probe.ip(&["addr", "add", "10.201.0.1/24", "dev", "rt0"]);
        let t0 = Instant::now();
        while ours(&probe) < 127 {
            assert!(t0.elapsed() < Duration::from_secs(3), "not retried");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match t.flush().await {
            Err(RoutesError::Incomplete { failed: 1, .. }) => {}
            other => panic!("expected the conflict alone, got {other:?}"),
        }
        assert_eq!(t.stats().installed_learned, 127);
        let gone: Vec<_> = [79u8, 80]
            .iter()
            .flat_map(|third| {
                (0..64u8).map(move |i| (IpNetwork::V4(net(&format!("10.{third}.0.{i}/32"))), None))
            })
            .collect();
        t.apply(gone).await;
        t.flush().await.expect("nothing desired");
        assert_eq!(ours(&probe), 0);
        let held = probe.ip(&["route", "show", "10.79.0.5/32"]);
        assert!(held.contains("proto static"), "{held}");
    });
}
