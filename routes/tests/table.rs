//! Root integration tests for the route reconciler. Each test runs the
//! table inside its own namespace (a thread that entered it, with a
//! current-thread runtime), so the host's routing table is never touched.
//! The namespace has a veth pair `rt0`/`rt1` with 10.200.0.1/24 and
//! 2001:db8:200::1/64 on `rt0`; gateways 10.200.0.2/.3 and 2001:db8:200::2/::3
//! are on those connected subnets. Behaviours that do not depend on the
//! family (adopt-then-sweep, restore) run one test body over both ([`Fam`]).

mod common;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use common::table::{hop, net, setup, via, wait_for};
use common::{Netns, require_root};
use tortie_routes::{IpNetwork, Ipv4Network, KernelRoute, NextHop, RouteTable, RoutesError};

/// One address family as the family-generic tests use it: `ip` flag, the two
/// gateways on rt0's subnet, four prefixes and a host prefix (for a device
/// route on rt0).
struct Fam {
    flag: &'static str,
    gw: [&'static str; 2],
    prefix: [&'static str; 4],
    host: &'static str,
}

const V4: Fam = Fam {
    flag: "-4",
    gw: ["10.200.0.2", "10.200.0.3"],
    prefix: [
        "10.55.0.0/24",
        "10.55.1.0/24",
        "10.55.4.0/24",
        "10.55.5.0/24",
    ],
    host: "10.55.2.9/32",
};

const V6: Fam = Fam {
    flag: "-6",
    gw: ["2001:db8:200::2", "2001:db8:200::3"],
    prefix: [
        "fd00:55::/64",
        "fd00:55:1::/64",
        "fd00:55:4::/64",
        "fd00:55:5::/64",
    ],
    host: "fd00:55:2::9/128",
};

impl Fam {
    fn p(&self, i: usize) -> IpNetwork {
        self.prefix[i].parse().unwrap()
    }

    /// The kernel route over both gateways.
    fn ecmp(&self) -> KernelRoute {
        KernelRoute::Unicast {
            next_hops: self.gw.iter().map(|g| hop(g)).collect(),
        }
    }

    /// `ip <flag> route show <prefix>`.
    fn show(&self, probe: &Netns, prefix: &str) -> String {
        probe.ip(&[self.flag, "route", "show", prefix])
    }
}

/// Routes of ours of one family (`-4`/`-6`); a multipath route is one route
/// (its `nexthop` lines are indented).
fn count_ours_in(ns: &Netns, flag: &str) -> usize {
    ns.ip(&[flag, "route", "show", "proto", "149"])
        .lines()
        .filter(|l| !l.starts_with(char::is_whitespace))
        .count()
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
    count_ours_in(ns, "-4")
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

/// One prefix over the family's two gateways goes in as one multipath route
/// (`RTA_MULTIPATH`: the kernel shows both next hops); dropping one next hop
/// replaces it in place with the other; removing it leaves nothing. Both
/// families, in one namespace.
#[test]
fn ecmp_over_two_next_hops_then_one() {
    if !require_root() {
        return;
    }
    let ns = setup("tbl-ecmp");
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let t = RouteTable::start(149, 254).await.expect("start");
        for f in [&V4, &V6] {
            ecmp_then_one_hop(&probe, &t, f).await;
        }
        let s = t.stats();
        assert_eq!((s.netlink_errors, s.restored), (0, 0), "{s:?}");
    });
}

async fn ecmp_then_one_hop(probe: &Netns, t: &RouteTable, f: &Fam) {
    let [g0, g1] = f.gw;
    let p = f.prefix[3];
    // Given in reverse order: the table normalizes it.
    let ecmp = KernelRoute::Unicast {
        next_hops: vec![hop(g1), hop(g0)],
    };
    t.set(f.p(3), ecmp).await;
    t.flush().await.expect("flush ecmp");
    let e = f.show(probe, p);
    for g in f.gw {
        assert!(e.contains(&format!("nexthop via {g} dev rt0")), "{e}");
    }
    assert_eq!(count_ours_in(probe, f.flag), 1, "one route: {e}");
    assert_eq!(
        t.installed().await.get(&f.p(3)),
        Some(&f.ecmp().normalized())
    );

    t.set(f.p(3), via(g1)).await;
    t.flush().await.expect("flush one hop");
    let e = f.show(probe, p);
    assert!(
        e.contains(&format!("via {g1} dev rt0 proto 149")) && !e.contains("nexthop"),
        "{e}"
    );
    assert_eq!(count_ours_in(probe, f.flag), 1, "replaced in place: {e}");
    t.remove(f.p(3)).await;
    t.flush().await.expect("flush remove");
    assert_eq!(f.show(probe, p).trim(), "");
}

#[test]
fn blackhole_onlink_and_local() {
    if !require_root() {
        return;
    }
    let ns = setup("tbl-kinds");
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let t = RouteTable::start(149, 254).await.expect("start");
        let onlink = KernelRoute::Unicast {
            next_hops: vec![NextHop {
                gateway: "192.0.2.1".parse().unwrap(),
                dev: Some("rt0".into()),
                onlink: true,
            }],
        };
        t.set(net("10.61.0.0/24"), KernelRoute::Blackhole).await;
        t.set(net("10.62.0.0/24"), onlink.clone()).await;
        t.set(
            net("10.63.0.9/32"),
            KernelRoute::Local { dev: "rt0".into() },
        )
        .await;
        t.flush().await.expect("flush");
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
            (1, 1, 1)
        );
        let inst = t.installed().await;
        assert_eq!(inst.get(&net("10.62.0.0/24").into()), Some(&onlink));

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

/// A table restarted over routes of ours adopts them: those it wants (a
/// plain and a multipath route) are kept as they are, never deleted and
/// re-added; the rest stay until converged, then are swept. Both families.
#[test]
fn adopted_routes_kept_until_converged_then_swept() {
    if !require_root() {
        return;
    }
    for (tag, f) in [("tbl-adopt4", &V4), ("tbl-adopt6", &V6)] {
        adopt_then_sweep(tag, f);
    }
}

fn adopt_then_sweep(tag: &str, f: &'static Fam) {
    let ns = setup(tag);
    let [g0, g1] = f.gw;
    let [p0, p1, p2, _] = f.prefix;
    let add = |p: &str, rest: &[&str]| {
        let mut args = vec![f.flag, "route", "add", p, "proto", "149"];
        args.extend_from_slice(rest);
        ns.ip(&args);
    };
    add(p0, &["via", g0]);
    add(p1, &["via", g0]);
    add(p2, &["nexthop", "via", g0, "nexthop", "via", g1]);
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let t = RouteTable::start(149, 254).await.expect("start");
        assert_eq!(t.stats().adopted, 3, "{}", f.flag);
        assert_eq!(t.stats().adopted_left, 3, "{}", f.flag);
        let inst = t.installed().await;
        let gws: Vec<String> = match inst.get(&f.p(2)) {
            Some(KernelRoute::Unicast { next_hops }) => {
                next_hops.iter().map(|h| h.gateway.to_string()).collect()
            }
            other => panic!("the multipath route was not adopted as one: {other:?}"),
        };
        assert_eq!(gws, f.gw.map(String::from).to_vec(), "{inst:?}");
        assert_eq!(inst.len(), 3, "{inst:?}");
        t.set(f.p(0), via(g0)).await;
        t.set(f.p(2), f.ecmp()).await;
        t.flush().await.expect("flush");
        // Desiring what the kernel holds installs it without a write; the
        // count follows (it is only re-counted after a change).
        assert_eq!(t.stats().installed_learned, 2, "{}", f.flag);
        t.set(f.p(3), via(g0)).await;
        t.flush().await.expect("flush");
        // Not converged yet: the undesired adopted route stays, and so
        // does an adopted one desired and then removed (not deleted
        // write-through by `unset`).
        t.remove(f.p(0)).await;
        t.flush().await.expect("flush");
        assert_eq!(count_ours_in(&probe, f.flag), 4);
        assert_eq!(
            t.stats().adopted_left,
            3,
            "{}: kept until converged",
            f.flag
        );
        t.converged().await;
        assert_eq!(count_ours_in(&probe, f.flag), 2);
        assert!(f.show(&probe, p0).trim().is_empty());
        assert!(f.show(&probe, p1).trim().is_empty());
        let e = f.show(&probe, p2);
        assert!(
            e.contains(&format!("nexthop via {g0} dev rt0"))
                && e.contains(&format!("nexthop via {g1} dev rt0")),
            "{e}"
        );
        let s = t.stats();
        assert_eq!(s.swept, 2);
        assert_eq!(
            s.writes, 3,
            "{}: one add and two sweeps; the identical adopted routes are not rewritten",
            f.flag
        );
        assert_eq!(s.restored, 0, "an adopted route was deleted and re-added");
        // Swept, and the desired adopted routes are ours: nothing is left
        // adopted (writes are settled in bulk again), nor is a new route of
        // ours once desired as it is, nor one someone else deleted.
        assert_eq!(s.adopted_left, 0, "{}", f.flag);
        assert_eq!(s.adopted, 3, "the start-up figure stays");
        probe.ip(&[f.flag, "route", "add", p1, "via", g0, "proto", "149"]);
        probe.ip(&[f.flag, "route", "add", f.host, "dev", "rt0", "proto", "149"]);
        t.flush().await.expect("flush");
        assert_eq!(t.stats().adopted_left, 2, "{}", f.flag);
        t.set(f.p(1), via(g0)).await;
        t.flush().await.expect("flush");
        assert_eq!(t.stats().adopted_left, 1, "{}: desired as it is", f.flag);
        probe.ip(&[f.flag, "route", "del", f.host]);
        let start = std::time::Instant::now();
        while t.stats().adopted_left != 0 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{}: a route of ours deleted by someone else stays adopted",
                f.flag
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            t.flush().await.expect("flush");
        }
        assert_eq!(count_ours_in(&probe, f.flag), 3, "{}", f.flag);
    });
}

/// Each kind of route of ours changed behind the table's back — a route
/// deleted, one replaced by another next hop, a device route deleted, a next
/// hop taken out of a multipath route (IPv6 deletes just that next hop, IPv4
/// the whole route) — is back as desired within a second.
async fn restore_each_kind(probe: &Netns, t: &RouteTable, f: &Fam) {
    let [g0, g1] = f.gw;
    let [p0, p1, p2, _] = f.prefix;
    t.set(f.p(0), via(g0)).await;
    t.set(f.p(1), via(g0)).await;
    t.set(f.p(2), f.ecmp()).await;
    let host: IpNetwork = f.host.parse().unwrap();
    t.set(host, KernelRoute::Local { dev: "rt0".into() }).await;
    t.flush().await.expect("flush");
    let one = Duration::from_secs(1);
    let via0 = format!("via {g0}");
    let ip = |args: &[&str]| {
        let mut full = vec![f.flag, "route"];
        full.extend_from_slice(args);
        probe.ip(&full);
    };
    let back = |p: &'static str, want: String| async move {
        let took = wait_for(probe, &[f.flag, "route", "show", p], &want, one).await;
        eprintln!("{} {p} back after {took:?}", f.flag);
    };

    ip(&["del", p0, "proto", "149"]);
    back(p0, via0.clone()).await;
    ip(&["replace", p1, "via", g1, "proto", "149"]);
    back(p1, via0).await;
    ip(&["del", f.host, "dev", "rt0"]);
    back(f.host, "dev rt0 proto 149".into()).await;
    ip(&["del", p2, "via", g0, "proto", "149"]);
    back(p2, format!("nexthop via {g0} dev rt0")).await;
    let e = f.show(probe, p2);
    assert!(e.contains(&format!("nexthop via {g1} dev rt0")), "{e}");
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
        for f in [&V4, &V6] {
            restore_each_kind(&probe, &t, f).await;
        }
        t.flush().await.expect("flush");
        assert_eq!(t.stats().restored, 8);
        let one = Duration::from_secs(1);

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
        // The link going down took rt0's IPv6 address too (keep_addr_on_down
        // is off): our IPv6 routes via gateways wait, refused, until it is
        // given back, then return on the address notification.
        probe.ip(&[
            "addr",
            "replace",
            "2001:db8:200::1/64",
            "dev",
            "rt0",
            "nodad",
        ]);
        for p in ["fd00:55::/64", "fd00:55:1::/64", "fd00:55:4::/64"] {
            wait_for(
                &probe,
                &["-6", "route", "show", p],
                "via 2001:db8:200::2",
                one,
            )
            .await;
        }
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

/// IPv6 through the same table, beside IPv4: a /48 via a gateway, a
/// blackhole, a /128 device route; removal leaves nothing. (ECMP, restore and
/// adopt-then-sweep of IPv6 routes: the family-generic tests above.)
#[test]
fn ipv6_routes_install_and_remove() {
    if !require_root() {
        return;
    }
    let ns = setup("tbl-v6");
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let v6 = |s: &str| s.parse::<IpNetwork>().unwrap();
        let t = RouteTable::start(149, 254).await.expect("start");
        t.set(v6("2001:db8:57::/48"), via("2001:db8:200::2")).await;
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
        ] {
            assert!(shown.contains(want), "missing {want:?} in:\n{shown}");
        }
        assert_eq!(count_ours(&probe), 1, "the IPv4 route");
        let inst = t.installed().await;
        assert_eq!(inst.len(), 4, "{inst:?}");
        let s = t.stats();
        assert_eq!(
            (
                s.installed_learned,
                s.installed_blackhole,
                s.installed_local
            ),
            (2, 1, 1)
        );
        t.remove(v6("2001:db8:57::/48")).await;
        t.flush().await.expect("flush remove");
        assert_eq!(
            probe
                .ip(&["-6", "route", "show", "2001:db8:57::/48"])
                .trim(),
            ""
        );
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

/// IPv6 deletes reach the kernel in address order (fib6 deletes neighbours
/// ~2.5× faster than scattered prefixes at 1M, lab/bench/README.md §2),
/// however the caller's burst orders them: 64 /64s removed in one burst in
/// descending order are deleted as at most two ascending runs (`unset`
/// deletes write-through only while its deletes rise; the rest go through
/// `apply`, sorted). A listener in the namespace sees the order.
#[test]
fn ipv6_deletes_reach_the_kernel_in_address_order() {
    use tortie_routes::nl::consts::{RTM_DELROUTE, RTMGRP_IPV6_ROUTE};
    use tortie_routes::nl::{Decoded, Socket, decode, messages};
    if !require_root() {
        return;
    }
    let ns = setup("tbl-v6order");
    ns.run(move || async move {
        let t = RouteTable::start(149, 254).await.expect("start");
        let route = t.intern(via("2001:db8:200::2"));
        let prefixes: Vec<IpNetwork> = (0..64u16)
            .map(|i| format!("2001:db8:7:{i:x}::/64").parse().unwrap())
            .collect();
        t.apply(prefixes.iter().map(|p| (*p, Some(route.clone()))).collect())
            .await;
        t.flush().await.expect("flush add");
        let listener = Socket::open(RTMGRP_IPV6_ROUTE).expect("listener");
        t.apply(prefixes.iter().rev().map(|p| (*p, None)).collect())
            .await;
        t.flush().await.expect("flush delete");
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while seen.len() < prefixes.len() {
            let n = listener
                .recv_until(&mut buf, until)
                .expect("recv")
                .unwrap_or_else(|| panic!("{} of 64 deletes heard: {seen:?}", seen.len()));
            for m in messages(&buf[..n]) {
                if m.header.kind == RTM_DELROUTE
                    && let Ok(Decoded::Route { route, .. }) = decode(&m)
                    && let Some(dst) = route.dst
                {
                    seen.push(dst);
                }
            }
        }
        let runs = 1 + seen.windows(2).filter(|w| w[1] < w[0]).count();
        assert!(runs <= 2, "{runs} ascending runs: {seen:?}");
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 64, "each prefix deleted once");
    });
}
