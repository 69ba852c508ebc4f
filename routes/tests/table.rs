//! Root integration tests for the route reconciler. Each test runs the
//! table inside its own namespace (a thread that entered it, with a
//! current-thread runtime), so the host's routing table is never touched.
//! The namespace has a veth pair `rt0`/`rt1` with 10.200.0.1/24 on `rt0`;
//! gateways 10.200.0.2/.3 are on that connected subnet.

mod common;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::{Netns, require_root};
use tortie_routes::{IpNetwork, Ipv4Network, KernelRoute, NextHop, RouteTable, RoutesError};

fn setup(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.ip(&["link", "add", "rt0", "type", "veth", "peer", "name", "rt1"]);
    ns.ip(&["addr", "add", "10.200.0.1/24", "dev", "rt0"]);
    ns.ip(&["link", "set", "rt0", "up"]);
    ns.ip(&["link", "set", "rt1", "up"]);
    ns
}

fn via(gw: &str) -> KernelRoute {
    KernelRoute::Unicast {
        next_hops: vec![NextHop {
            gateway: gw.parse().unwrap(),
            dev: None,
            onlink: false,
        }],
    }
}

fn net(s: &str) -> Ipv4Network {
    s.parse().unwrap()
}

/// 10.128.0.0 + i as /32.
fn nth(i: u32) -> Ipv4Network {
    Ipv4Network::new(
        Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + i),
        32,
    )
    .unwrap()
}

fn count_ours(ns: &Netns) -> usize {
    ns.ip(&["route", "show", "proto", "149"]).lines().count()
}

#[test]
fn add_replace_remove_10k() {
    if !require_root() {
        return;
    }
    let ns = setup("tbl-10k");
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let t = RouteTable::start(149, 254).await.expect("start");
        for i in 0..10_000 {
            t.set(nth(i), via("10.200.0.2")).await;
        }
        t.flush().await.expect("flush add");
        assert_eq!(count_ours(&probe), 10_000);
        let s = t.stats();
        assert_eq!(s.installed_learned, 10_000);
        assert_eq!(s.pending, 0);

        let all: HashMap<_, _> = (0..10_000)
            .map(|i| (nth(i).into(), via("10.200.0.3")))
            .collect();
        t.replace_all(all).await;
        t.flush().await.expect("flush replace");
        let shown = probe.ip(&["route", "show", "10.128.0.77/32"]);
        assert!(
            shown.contains("via 10.200.0.3 dev rt0 proto 149"),
            "{shown}"
        );
        assert_eq!(count_ours(&probe), 10_000);
        assert_eq!(t.installed().await.len(), 10_000);

        for i in 0..5_000 {
            t.remove(nth(i)).await;
        }
        t.flush().await.expect("flush remove half");
        assert_eq!(count_ours(&probe), 5_000);
        t.replace_all(HashMap::new()).await;
        t.flush().await.expect("flush remove all");
        assert_eq!(count_ours(&probe), 0);
        assert_eq!(t.stats().netlink_errors, 0);
    });
}

#[test]
fn ecmp_blackhole_onlink_and_local() {
    if !require_root() {
        return;
    }
    let ns = setup("tbl-kinds");
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let t = RouteTable::start(149, 254).await.expect("start");
        let ecmp = KernelRoute::Unicast {
            next_hops: vec![
                NextHop {
                    gateway: "10.200.0.3".parse().unwrap(),
                    dev: None,
                    onlink: false,
                },
                NextHop {
                    gateway: "10.200.0.2".parse().unwrap(),
                    dev: None,
                    onlink: false,
                },
            ],
        };
        let onlink = KernelRoute::Unicast {
            next_hops: vec![NextHop {
                gateway: "192.0.2.1".parse().unwrap(),
                dev: Some("rt0".into()),
                onlink: true,
            }],
        };
        t.set(net("10.60.0.0/24"), ecmp.clone()).await;
        t.set(net("10.61.0.0/24"), KernelRoute::Blackhole).await;
        t.set(net("10.62.0.0/24"), onlink.clone()).await;
        t.set(
            net("10.63.0.9/32"),
            KernelRoute::Local { dev: "rt0".into() },
        )
        .await;
        t.flush().await.expect("flush");
        let e = probe.ip(&["route", "show", "10.60.0.0/24"]);
        assert!(e.contains("nexthop via 10.200.0.2 dev rt0"), "{e}");
        assert!(e.contains("nexthop via 10.200.0.3 dev rt0"), "{e}");
        let b = probe.ip(&["route", "show", "10.61.0.0/24"]);
        assert!(b.contains("blackhole 10.61.0.0/24 proto 149"), "{b}");
        let o = probe.ip(&["route", "show", "10.62.0.0/24"]);
        assert!(o.contains("via 192.0.2.1 dev rt0 proto 149 onlink"), "{o}");
        let l = probe.ip(&["route", "show", "10.63.0.9/32"]);
        assert!(l.contains("10.63.0.9 dev rt0 proto 149 scope link"), "{l}");
        let s = t.stats();
        assert_eq!(
            (
                s.installed_learned,
                s.installed_blackhole,
                s.installed_local
            ),
            (2, 1, 1)
        );
        let inst = t.installed().await;
        assert_eq!(
            inst.get(&net("10.60.0.0/24").into()),
            Some(&ecmp.clone().normalized())
        );
        assert_eq!(inst.get(&net("10.62.0.0/24").into()), Some(&onlink));

        // Shrinking the ECMP set replaces the route in place.
        t.set(net("10.60.0.0/24"), via("10.200.0.2")).await;
        t.flush().await.expect("flush");
        let e = probe.ip(&["route", "show", "10.60.0.0/24"]);
        assert!(
            e.contains("via 10.200.0.2 dev rt0 proto 149") && !e.contains("nexthop"),
            "{e}"
        );

        // A route through a device that does not exist is reported, not faked.
        t.set(
            net("10.64.0.0/24"),
            KernelRoute::Local {
                dev: "nosuchdev0".into(),
            },
        )
        .await;
        match t.flush().await {
            Err(RoutesError::Incomplete { failed: 1, first }) => {
                assert!(first.contains("nosuchdev0"), "{first}")
            }
            other => panic!("expected Incomplete, got {other:?}"),
        }
        assert_eq!(t.stats().pending, 1);
    });
}

#[test]
fn foreign_routes_are_never_touched() {
    if !require_root() {
        return;
    }
    let ns = setup("tbl-foreign");
    ns.ip(&[
        "route",
        "add",
        "10.77.0.0/24",
        "via",
        "10.200.0.2",
        "proto",
        "static",
    ]);
    ns.ip(&[
        "route",
        "add",
        "10.77.1.0/24",
        "via",
        "10.200.0.2",
        "proto",
        "150",
    ]);
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let t = RouteTable::start(149, 254).await.expect("start");
        t.set(net("10.77.0.0/24"), via("10.200.0.3")).await;
        t.set(net("10.77.2.0/24"), via("10.200.0.3")).await;
        match t.flush().await {
            Err(RoutesError::Incomplete { failed: 1, first }) => {
                assert!(
                    first.contains("10.77.0.0/24") && first.contains("another protocol"),
                    "{first}"
                )
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        t.converged().await;
        t.replace_all(HashMap::new()).await;
        let _ = t.flush().await;
        let s = probe.ip(&["route", "show", "10.77.0.0/24"]);
        assert!(s.contains("via 10.200.0.2 dev rt0 proto static"), "{s}");
        let o = probe.ip(&["route", "show", "10.77.1.0/24"]);
        assert!(o.contains("via 10.200.0.2 dev rt0 proto 150"), "{o}");
        assert!(
            probe
                .ip(&["route", "show", "10.77.2.0/24"])
                .trim()
                .is_empty()
        );
        assert!(t.stats().conflicts >= 1);
        // The connected route of rt0 is still there.
        assert!(
            probe
                .ip(&["route", "show", "10.200.0.0/24"])
                .contains("proto kernel")
        );
    });
}

#[test]
fn adopted_routes_kept_until_converged_then_swept() {
    if !require_root() {
        return;
    }
    let ns = setup("tbl-adopt");
    ns.ip(&[
        "route",
        "add",
        "10.66.0.0/24",
        "via",
        "10.200.0.2",
        "proto",
        "149",
    ]);
    ns.ip(&[
        "route",
        "add",
        "10.66.1.0/24",
        "via",
        "10.200.0.2",
        "proto",
        "149",
    ]);
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let t = RouteTable::start(149, 254).await.expect("start");
        assert_eq!(t.stats().adopted, 2);
        assert_eq!(t.installed().await.len(), 2);
        t.set(net("10.66.0.0/24"), via("10.200.0.2")).await;
        t.set(net("10.66.2.0/24"), via("10.200.0.2")).await;
        t.flush().await.expect("flush");
        // Not converged yet: the undesired adopted route stays.
        assert_eq!(count_ours(&probe), 3);
        t.converged().await;
        assert_eq!(count_ours(&probe), 2);
        assert!(
            probe
                .ip(&["route", "show", "10.66.1.0/24"])
                .trim()
                .is_empty()
        );
        let s = t.stats();
        assert_eq!(s.swept, 1);
        assert_eq!(s.writes, 2, "the identical adopted route is not rewritten");
    });
}

async fn wait_for(probe: &Netns, args: &[&str], want: &str, limit: Duration) -> Duration {
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

#[test]
fn external_changes_are_restored_within_a_second() {
    if !require_root() {
        return;
    }
    let ns = setup("tbl-restore");
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let t = RouteTable::start(149, 254).await.expect("start");
        t.set(net("10.55.0.0/24"), via("10.200.0.2")).await;
        t.set(net("10.55.1.0/24"), via("10.200.0.2")).await;
        t.set(
            net("10.55.2.9/32"),
            KernelRoute::Local { dev: "rt0".into() },
        )
        .await;
        t.flush().await.expect("flush");
        let one = Duration::from_secs(1);

        probe.ip(&["route", "del", "10.55.0.0/24", "proto", "149"]);
        wait_for(
            &probe,
            &["route", "show", "10.55.0.0/24"],
            "via 10.200.0.2",
            one,
        )
        .await;

        probe.ip(&[
            "route",
            "replace",
            "10.55.1.0/24",
            "via",
            "10.200.0.3",
            "proto",
            "149",
        ]);
        wait_for(
            &probe,
            &["route", "show", "10.55.1.0/24"],
            "via 10.200.0.2",
            one,
        )
        .await;

        probe.ip(&["route", "del", "10.55.2.9/32", "dev", "rt0"]);
        wait_for(
            &probe,
            &["route", "show", "10.55.2.9/32"],
            "dev rt0 proto 149 scope link",
            one,
        )
        .await;
        t.flush().await.expect("flush");
        assert_eq!(t.stats().restored, 3);

        // Link down: the kernel drops the routes silently; up again: back.
        probe.ip(&["link", "set", "rt0", "down"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
        probe.ip(&["link", "set", "rt0", "up"]);
        wait_for(
            &probe,
            &["route", "show", "10.55.0.0/24"],
            "via 10.200.0.2",
            one,
        )
        .await;
        wait_for(
            &probe,
            &["route", "show", "10.55.2.9/32"],
            "scope link",
            one,
        )
        .await;
        t.flush().await.expect("flush after link up");

        // A veth without an address (a container's host side) going away
        // takes its host route with it; no full re-dump is needed, and the
        // route comes back when a veth of that name appears again.
        probe.ip(&["link", "add", "lv0", "type", "veth", "peer", "name", "lv1"]);
        probe.ip(&["link", "set", "lv0", "up"]);
        t.set(
            net("10.55.3.3/32"),
            KernelRoute::Local { dev: "lv0".into() },
        )
        .await;
        t.flush().await.expect("flush lv0");
        let before = t.stats().resyncs;
        probe.ip(&["link", "del", "lv0"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            t.flush().await.is_err(),
            "route on a deleted device cannot be installed"
        );
        assert_eq!(t.stats().pending, 1);
        assert_eq!(
            t.stats().resyncs,
            before,
            "unaddressed link removal must not re-dump"
        );
        probe.ip(&["link", "add", "lv0", "type", "veth", "peer", "name", "lv1"]);
        probe.ip(&["link", "set", "lv0", "up"]);
        wait_for(
            &probe,
            &["route", "show", "10.55.3.3/32"],
            "dev lv0 proto 149 scope link",
            one,
        )
        .await;
        t.flush().await.expect("flush after veth re-created");
    });
}

#[test]
fn underlay_mtu_and_tunl0() {
    if !require_root() {
        return;
    }
    let ns = setup("tbl-mtu");
    ns.ip(&["link", "set", "rt0", "mtu", "1450"]);
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let mtu = tortie_routes::underlay_mtu("10.200.0.1".parse::<std::net::Ipv4Addr>().unwrap())
            .await
            .expect("mtu");
        assert_eq!(mtu, 1450);
        let err = tortie_routes::underlay_mtu("10.200.0.99".parse::<std::net::Ipv4Addr>().unwrap())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("no interface has that address"),
            "{err}"
        );
        // This machine's kernel may lack ipip (VM-NOTES): then the error must
        // say so clearly; with ipip, tunl0 must end up configured.
        match tortie_routes::ensure_tunl0("10.244.1.0".parse().unwrap(), mtu - 20).await {
            Ok(()) => {
                let l = probe.ip(&["addr", "show", "tunl0"]);
                assert!(l.contains("mtu 1430") && l.contains("10.244.1.0/32"), "{l}");
            }
            Err(e) => assert!(
                e.to_string().starts_with("configuring tunl0: creating it"),
                "{e}"
            ),
        }
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

/// IPv6 through the same table: a /48 via a gateway, an ECMP /64, a
/// blackhole, a /128 device route; one deleted behind our back comes back
/// within a second; removal and the final sweep leave nothing.
#[test]
fn ipv6_routes_install_ecmp_restore_and_remove() {
    if !require_root() {
        return;
    }
    let ns = setup("tbl-v6");
    ns.ip(&["addr", "add", "2001:db8:200::1/64", "dev", "rt0", "nodad"]);
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let v6 = |s: &str| s.parse::<IpNetwork>().unwrap();
        let t = RouteTable::start(149, 254).await.expect("start");
        let hop = |g: &str| NextHop {
            gateway: g.parse().unwrap(),
            dev: None,
            onlink: false,
        };
        let ecmp = KernelRoute::Unicast {
            next_hops: vec![hop("2001:db8:200::3"), hop("2001:db8:200::2")],
        };
        t.set(v6("2001:db8:57::/48"), via("2001:db8:200::2")).await;
        t.set(v6("fd00:1::/64"), ecmp.clone()).await;
        t.set(v6("fd00:2::/64"), KernelRoute::Blackhole).await;
        t.set(
            v6("fd00:3::9/128"),
            KernelRoute::Local { dev: "rt0".into() },
        )
        .await;
        // IPv4 beside it, in the same table.
        t.set(net("10.70.0.0/24"), via("10.200.0.2")).await;
        t.flush().await.expect("flush");
        let shown = probe.ip(&["-6", "route", "show", "proto", "149"]);
        for want in [
            "2001:db8:57::/48 via 2001:db8:200::2 dev rt0",
            "blackhole fd00:2::/64",
            "fd00:3::9 dev rt0",
            "nexthop via 2001:db8:200::2 dev rt0",
            "nexthop via 2001:db8:200::3 dev rt0",
        ] {
            assert!(shown.contains(want), "missing {want:?} in:\n{shown}");
        }
        assert_eq!(count_ours(&probe), 1, "the IPv4 route");
        let inst = t.installed().await;
        assert_eq!(inst.len(), 5, "{inst:?}");
        assert_eq!(
            inst.get(&v6("fd00:1::/64")),
            Some(&ecmp.clone().normalized())
        );
        let s = t.stats();
        assert_eq!(
            (
                s.installed_learned,
                s.installed_blackhole,
                s.installed_local
            ),
            (3, 1, 1)
        );

        // Deleted behind our back: restored within a second.
        probe.ip(&["-6", "route", "del", "2001:db8:57::/48", "proto", "149"]);
        let took = wait_for(
            &probe,
            &["-6", "route", "show", "2001:db8:57::/48"],
            "via 2001:db8:200::2",
            Duration::from_secs(1),
        )
        .await;
        eprintln!("IPv6 route restored after {took:?}");
        t.flush().await.expect("flush after restore");
        assert_eq!(t.stats().restored, 1);

        // ECMP down to one next hop, then removed.
        t.set(v6("fd00:1::/64"), via("2001:db8:200::3")).await;
        t.flush().await.expect("flush one hop");
        let one = probe.ip(&["-6", "route", "show", "fd00:1::/64"]);
        assert!(
            one.contains("via 2001:db8:200::3 dev rt0") && !one.contains("nexthop"),
            "{one}"
        );
        t.remove(v6("fd00:1::/64")).await;
        t.flush().await.expect("flush remove");
        assert_eq!(probe.ip(&["-6", "route", "show", "fd00:1::/64"]).trim(), "");
        t.replace_all(HashMap::new()).await;
        t.flush().await.expect("flush remove all");
        assert_eq!(
            probe.ip(&["-6", "route", "show", "proto", "149"]).trim(),
            ""
        );
        assert_eq!(count_ours(&probe), 0);
        assert_eq!(t.stats().netlink_errors, 0);
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
