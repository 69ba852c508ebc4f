//! Root integration test of `dataplane.encapsulation = "vxlan"` through
//! `tortie run` (issue 12): two agents on different subnets behind a router
//! namespace that forwards between the subnets but has no route for pod
//! addresses, one dual-stack container each (`tortie attach`); one IPv4 BGP
//! session carries both families (IPv6 blocks with the node's IPv6 next hop).
//! With `none` the learned routes cannot be used and the containers reach
//! each other in neither family (negative control); restarted with `vxlan`
//! they do in both: IPv4 over `vxlan.tortie` (IPv4 underlay), IPv6 over
//! `vxlan6.tortie` (IPv6 underlay), containers' MTU = the smallest path
//! (underlay − 70). Namespaces, veths and agents go with the Drop guards, on
//! failure too.

mod common;

use std::time::Duration;

use common::*;

fn set_encapsulation(a: &mut Agent, mode: &str) {
    let path = a.config_path();
    let text = std::fs::read_to_string(&path).expect("config");
    let base = text.split("\n[dataplane]\n").next().unwrap_or(&text);
    std::fs::write(
        &path,
        format!("{base}\n[dataplane]\nencapsulation = \"{mode}\"\n"),
    )
    .expect("config");
    a.restart();
}

/// n3's VTEP link-local address, the gateway of IPv6 routes over VXLAN:
/// EUI-64 of its derived MAC (0e:76 + SHA-1 of 2001:db8:2::13).
const N3_LL: &str = "fe80::c76:d8ff:fea0:2894";

fn pings(from: &Netns, to: &str) -> bool {
    ping(from, to, 3, "0.2").1 > 0
}

#[test]
fn containers_cross_a_router_without_pod_routes_only_with_vxlan() {
    if !root_or_skip() {
        return;
    }
    let t = tag("vxa");
    let dir = tempfile::Builder::new()
        .prefix("tortie-vxlan-")
        .tempdir()
        .expect("tempdir");
    let n1 = Netns::new(format!("{t}-n1"));
    let r = Netns::new(format!("{t}-r"));
    let n3 = Netns::new(format!("{t}-n3"));
    let c1 = Netns::new(format!("{t}-c1"));
    let c3 = Netns::new(format!("{t}-c3"));
    let pid = std::process::id();
    let (a, ra, b, rb) = (
        format!("x{pid}a"),
        format!("x{pid}r"),
        format!("x{pid}b"),
        format!("x{pid}s"),
    );
    link(&n1, &a, "192.0.2.11/24", &r, &ra, "192.0.2.1/24");
    link(&n3, &b, "198.51.100.13/24", &r, &rb, "198.51.100.1/24");
    for (ns, dev, addr) in [
        (&n1, &a, "2001:db8:1::11/64"),
        (&r, &ra, "2001:db8:1::1/64"),
        (&r, &rb, "2001:db8:2::1/64"),
        (&n3, &b, "2001:db8:2::13/64"),
    ] {
        sh(&[
            "ip", "-n", &ns.name, "addr", "add", addr, "dev", dev, "nodad",
        ]);
    }
    for key in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
        sh(&["ip", "netns", "exec", &r.name, "sysctl", "-qw", key]);
    }
    for (ns, v4, v6) in [
        (&n1, "192.0.2.1", "2001:db8:1::1"),
        (&n3, "198.51.100.1", "2001:db8:2::1"),
    ] {
        sh(&["ip", "-n", &ns.name, "route", "add", "default", "via", v4]);
        sh(&[
            "ip", "-n", &ns.name, "-6", "route", "add", "default", "via", v6,
        ]);
    }
    let start = |ns: &Netns, name: &'static str, address, pod_cidr, peer| {
        Agent::start(
            dir.path().join(name),
            ns,
            &NodeSpec {
                name,
                address,
                pod_cidr,
                asn: 64512,
                peers: vec![(peer, 64512, "other")],
            },
        )
    };
    let mut a1 = start(
        &n1,
        "n1",
        r#"["192.0.2.11/24", "2001:db8:1::11/64"]"#,
        r#"["10.244.1.0/26", "fd00:10:244:1::/120"]"#,
        "198.51.100.13",
    );
    let mut a3 = start(
        &n3,
        "n3",
        r#"["198.51.100.13/24", "2001:db8:2::13/64"]"#,
        r#"["10.244.3.0/26", "fd00:10:244:3::/120"]"#,
        "192.0.2.11",
    );
    a1.wait_established(Duration::from_secs(20));
    let addrs = |out: String| -> (String, String) {
        let v4 = out.lines().find(|l| !l.contains(':')).unwrap_or_default();
        let v6 = out.lines().find(|l| l.contains(':')).unwrap_or_default();
        assert!(!v4.is_empty() && !v6.is_empty(), "attach printed {out:?}");
        (v4.to_string(), v6.to_string())
    };
    let (ip3, ip3v6) = addrs(a3.attach(&c3, "c3"));
    let (ip1, ip1v6) = addrs(a1.attach(&c1, "c1"));

    // Negative control: plain routing. The routes are learned but their
    // next hops are not on-link, and the router drops pod addresses anyway.
    wait_until(Duration::from_secs(10), "n3's blocks learned", || {
        let r = String::from_utf8_lossy(&cli(&a1.socket(), &["routes"]).stdout).into_owned();
        r.contains("10.244.3.0/26") && r.contains("fd00:10:244:3::/120")
    });
    assert!(!pings(&c1, &ip3), "pods reachable without encapsulation?");
    assert!(
        !pings(&c1, &ip3v6),
        "IPv6 pods reachable without encapsulation?"
    );

    for a in [&mut a1, &mut a3] {
        set_encapsulation(a, "vxlan");
    }
    a1.wait_established(Duration::from_secs(20));
    wait_until(Duration::from_secs(10), "route over vxlan.tortie", || {
        sh(&["ip", "-n", &n1.name, "route", "show", "10.244.3.0/26"]).contains("dev vxlan.tortie")
    });
    wait_until(
        Duration::from_secs(10),
        "IPv6 route over vxlan6.tortie",
        || {
            sh(&[
                "ip",
                "-n",
                &n1.name,
                "-6",
                "route",
                "show",
                "fd00:10:244:3::/120",
            ])
            .contains(&format!("via {N3_LL} dev vxlan6.tortie"))
        },
    );
    assert!(pings(&c1, &ip3), "c1 → c3 over VXLAN\n{}", a1.log());
    assert!(pings(&c3, &ip1), "c3 → c1 over VXLAN\n{}", a3.log());
    assert!(pings(&c1, &ip3v6), "c1 → c3 over VXLAN/IPv6\n{}", a1.log());
    assert!(pings(&c3, &ip1v6), "c3 → c1 over VXLAN/IPv6\n{}", a3.log());
    let link = sh(&["ip", "-n", &n1.name, "-d", "link", "show", "vxlan.tortie"]);
    assert!(
        link.contains("mtu 1450") && link.contains("vxlan id 4096"),
        "{link}"
    );
    let link6 = sh(&["ip", "-n", &n1.name, "-d", "link", "show", "vxlan6.tortie"]);
    assert!(
        link6.contains("mtu 1430") && link6.contains("local 2001:db8:1::11"),
        "{link6}"
    );
    let tx: u64 = sh(&[
        "ip",
        "netns",
        "exec",
        &n1.name,
        "cat",
        "/sys/class/net/vxlan.tortie/statistics/tx_packets",
    ])
    .trim()
    .parse()
    .expect("counter");
    assert!(tx >= 3, "vxlan.tortie carried {tx} packets");
    // Attached after the switch: the container gets the smallest path,
    // underlay − 70 (VXLAN over IPv6).
    let c1b = Netns::new(format!("{t}-c1b"));
    a1.attach(&c1b, "c1b");
    let mtu = sh(&["ip", "-n", &c1b.name, "link", "show", "eth0"]);
    assert!(mtu.contains("mtu 1430"), "{mtu}");
}
