//! Dual-stack and IPv6-only containers across two agents (issue 11 §2/§3).
//! Dual-stack: each node has an IPv4 and an IPv6 address and a block of each
//! family; one IPv4 BGP session carries both families (IPv6 with the node's
//! IPv6 next hop, RFC 2545). A container gets one address per family and
//! pings and `ping -6`s the container on the other node; static IPv6
//! addresses and their refusals; detach releases both. IPv6-only: no IPv4
//! anywhere, an IPv6 session, containers with a /128 only.

mod common;

use std::time::Duration;

use common::*;

/// `tortie attach` printed one address per line, IPv4 first.
fn two(out: &str) -> (String, String) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "one address per family: {out:?}");
    (lines[0].to_string(), lines[1].to_string())
}

#[test]
fn dual_stack_containers_ping_both_families_across_nodes() {
    if !root_or_skip() {
        return;
    }
    let t = TwoNodes::established("ds", Stack::Dual);
    let cc = Netns::new(format!("{}-cc", tag("ds")));
    let (a4, a6) = two(&t.a.attach(&t.ca, "ca"));
    let (b4, b6) = two(&t.b.attach(&t.cb, "cb"));
    assert!(a4.starts_with("10.244.1."), "{a4}");
    assert!(b4.starts_with("10.244.2."), "{b4}");
    // The block's ::0 (subnet-router anycast) is never handed out.
    assert_eq!(a6, "fd00:10:244:1::1");
    assert_eq!(b6, "fd00:10:244:2::1");

    // The host side: the /128 through the route table, proto 149.
    let host6 = sh(&[
        "ip", "-n", &t.na.name, "-6", "route", "show", "proto", "149",
    ]);
    assert!(host6.contains(&format!("{a6} dev tt")), "{host6}");
    for (ns, prefix) in [
        (&t.na, "fd00:10:244:2::/120"),
        (&t.nb, "fd00:10:244:1::/120"),
    ] {
        wait_until(
            Duration::from_secs(15),
            &format!("{prefix} in {}'s kernel", ns.name),
            || sh(&["ip", "-n", &ns.name, "-6", "route", "show", prefix]).contains("proto 149"),
        );
    }
    for (ns, prefix) in [(&t.na, "10.244.2.0/26"), (&t.nb, "10.244.1.0/26")] {
        wait_until(
            Duration::from_secs(15),
            &format!("{prefix} in {}'s kernel", ns.name),
            || sh(&["ip", "-n", &ns.name, "route", "show", prefix]).contains("proto 149"),
        );
    }
    for (from, to) in [(&t.ca, &b4), (&t.cb, &a4), (&t.ca, &b6), (&t.cb, &a6)] {
        let (tx, rx) = ping(from, to, 3, "0.2");
        assert_eq!(
            (tx, rx),
            (3, 3),
            "ping {to} from {}\nA log:\n{}\nB log:\n{}",
            from.name,
            t.a.log(),
            t.b.log()
        );
    }

    // A restart (SIGTERM, run again) finds both addresses: the registry
    // and IPAM are reconciled with the /32 and the /128 in the kernel, and
    // a repeated attach answers with both.
    let mut t = t;
    t.a.restart();
    t.a.wait_established(Duration::from_secs(20));
    assert_eq!(two(&t.a.attach(&t.ca, "ca")), (a4.clone(), a6.clone()));
    assert_eq!(t.a.status_json()["ipam"]["allocated"], 2);
    let (tx, rx) = ping(&t.cb, &a6, 3, "0.2");
    assert_eq!((tx, rx), (3, 3), "ping -6 {a6} after A's restart");

    // -o json lists both addresses with their gateways.
    let j = t.a.attach_json(&t.ca, "ca", &[]);
    assert_eq!(j["ip"], a4.as_str());
    assert_eq!(j["addresses"][0]["address"], format!("{a4}/32"));
    assert_eq!(j["addresses"][0]["gateway"], "169.254.1.1");
    assert_eq!(j["addresses"][1]["address"], format!("{a6}/128"));
    assert_eq!(j["addresses"][1]["gateway"], "fe80::ecee:eeff:feee:eeee");
    assert_eq!(j["host_mac"], "ee:ee:ee:ee:ee:ee");

    // A static IPv6 address inside the block (IPv4 still allocated), and
    // the refusals IPv4 has.
    let (c4, c6) = two(&t.a.attach_ip(&cc, "cc", "fd00:10:244:1::99"));
    assert!(c4.starts_with("10.244.1."), "{c4}");
    assert_eq!(c6, "fd00:10:244:1::99");
    assert_eq!(
        ping(&cc, &b6, 1, "0.2"),
        (1, 1),
        "ping {b6} from the static address"
    );
    for (ip, why) in [
        ("2001:db8:1::11", "own address"),
        ("fe80::ecee:eeff:feee:eeee", "link-local"),
        ("ff02::1", "multicast"),
        ("::1", "loopback"),
        ("fd00:10:244:2::7", "learned from"),
        ("fd00:10:244:1::", "cannot be given"),
        ("10.244.1.70,10.244.1.71", "at most one address per family"),
    ] {
        let out = cli(
            &t.a.socket(),
            &[
                "attach",
                "--netns",
                &cc.path(),
                "--id",
                "refused",
                "--ip",
                ip,
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(why),
            "--ip {ip}: {err}"
        );
    }

    // Detach releases both families.
    let out = cli(&t.a.socket(), &["detach", "--id", "ca"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&a4) && said.contains(&a6), "{said}");
    let host6 = sh(&[
        "ip", "-n", &t.na.name, "-6", "route", "show", "proto", "149",
    ]);
    assert!(!host6.contains(&a6), "{host6}");
    // The next container gets neither at once (round robin).
    let (d4, d6) = two(&t.a.attach(&t.ca, "ca2"));
    assert_ne!(d4, a4);
    assert_ne!(d6, a6);
}

#[test]
fn ipv6_only_nodes_carry_ipv6_containers() {
    if !root_or_skip() {
        return;
    }
    let t = TwoNodes::established("v6o", Stack::V6Only);
    let a6 = t.a.attach(&t.ca, "ca");
    let b6 = t.b.attach(&t.cb, "cb");
    assert_eq!(
        (a6.as_str(), b6.as_str()),
        ("fd00:10:244:1::1", "fd00:10:244:2::1")
    );
    assert_eq!(
        sh(&["ip", "-n", &t.ca.name, "-4", "addr", "show", "dev", "eth0"]).trim(),
        "",
        "an IPv6-only node gave an IPv4 address"
    );
    wait_until(
        Duration::from_secs(15),
        "the remote IPv6 block in A's kernel",
        || {
            sh(&[
                "ip",
                "-n",
                &t.na.name,
                "-6",
                "route",
                "show",
                "fd00:10:244:2::/120",
            ])
            .contains("via 2001:db8:1::12")
        },
    );
    for (from, to) in [(&t.ca, &b6), (&t.cb, &a6)] {
        assert_eq!(
            ping(from, to, 3, "0.2"),
            (3, 3),
            "ping -6 {to}\nA log:\n{}",
            t.a.log()
        );
    }
    let s = t.a.status_json();
    assert_eq!(s["node"]["router_id"], "192.0.2.11");
    assert_eq!(s["peers"][0]["address"], "2001:db8:1::12");
    assert_eq!(s["ipam"]["allocated"], 1);
}
