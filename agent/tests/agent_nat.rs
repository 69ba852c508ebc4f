//! Root integration test of `dataplane.nat_outgoing` (issue 12): two agents
//! (TwoNodes) plus an "outside" namespace behind node A, where a UDP listener
//! records the source address of each client. Pod traffic leaving the
//! cluster shows node A's address only while NAT is on; pod-to-pod and
//! pod-to-node traffic keeps the pod's address; `nft flush ruleset` in the
//! node is repaired within the guard's interval; SIGHUP with NAT off removes
//! our table and leaves other tables alone, SIGHUP with NAT on brings it back.
//! The same for an IPv6 (ULA) pod block through one agent and a dual-stack
//! container: masqueraded to the node's IPv6 address only with NAT on, never
//! towards the node itself, and repaired after a flush. Namespaces (and so every nftables table in them)
//! go with the Drop guards, on failure too.

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::*;

/// A UDP socket bound to `bind` inside `ns` (a socket stays in the namespace
/// it was made in, so a helper thread enters the namespace just to make it).
fn udp_in(ns: &Netns, bind: &str) -> UdpSocket {
    let path = ns.path();
    let bind = bind.to_string();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        UdpSocket::bind(&bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"))
    })
    .join()
    .expect("netns thread")
}

/// Sends from a fresh socket (a new flow, so no earlier conntrack entry) in
/// `client` to `dst` until `server` receives it; returns the source address
/// the server saw.
fn source_seen(client: &Netns, server: &UdpSocket, dst: SocketAddr) -> IpAddr {
    let any = if dst.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let sock = udp_in(client, any);
    let nonce = format!("{:?}", sock.local_addr().expect("local addr"));
    server
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buf = [0u8; 128];
    for _ in 0..25 {
        sock.send_to(nonce.as_bytes(), dst).expect("send");
        while let Ok((n, from)) = server.recv_from(&mut buf) {
            if &buf[..n] == nonce.as_bytes() {
                return from.ip();
            }
        }
    }
    panic!("{dst} never heard from {}", client.name);
}

/// What agent A logs each time its guard put `inet tortie` back
/// (agent/src/daemon/nat.rs).
const NAT_REPAIRED: &str = "table inet tortie was missing or changed; restored";

fn table_present(ns: &Netns) -> bool {
    run(&mut ns.exec(&["nft", "list", "table", "inet", "tortie"]))
        .status
        .success()
}

fn set_nat(t: &TwoNodes, on: bool) {
    let path = t.a.config_path();
    let text = std::fs::read_to_string(&path).expect("config");
    let base = text
        .split("\n[dataplane]\n")
        .next()
        .unwrap_or(&text)
        .to_string();
    let text = if on {
        format!(
            "{base}\n[dataplane]\nnat_outgoing = true\ncluster_cidrs = [\"10.244.0.0/16\", \"fd10:244::/48\"]\n"
        )
    } else {
        base
    };
    std::fs::write(&path, text).expect("config");
}

#[test]
fn nat_outgoing_masquerades_leaving_traffic_only_and_repairs_a_flush() {
    if !root_or_skip() {
        return;
    }
    let mut t = TwoNodes::new("nat");
    let outside = Netns::new(format!("{}-out", tag("nat")));
    let (ia, io) = (
        format!("o{}a", std::process::id()),
        format!("o{}o", std::process::id()),
    );
    link(
        &t.na,
        &ia,
        "203.0.113.1/24",
        &outside,
        &io,
        "203.0.113.2/24",
    );
    // The outside has no route to pods: only reverse-path filtering could
    // hide an un-NATed packet, so turn it off there.
    for key in ["all", "default", io.as_str()] {
        sh(&[
            "ip",
            "netns",
            "exec",
            &outside.name,
            "sysctl",
            "-qw",
            &format!("net.ipv4.conf.{key}.rp_filter=0"),
        ]);
    }
    t.a.wait_established(Duration::from_secs(20));
    t.b.wait_established(Duration::from_secs(20));
    let ip_a: IpAddr = t.a.attach(&t.ca, "ca").parse().expect("pod A address");
    let ip_b = t.b.attach(&t.cb, "cb");
    wait_until(
        Duration::from_secs(10),
        "the remote block in A's kernel",
        || sh(&["ip", "-n", &t.na.name, "route", "show", "10.244.2.0/26"]).contains("proto 149"),
    );

    let server = udp_in(&outside, "203.0.113.2:0");
    let out_dst = server.local_addr().expect("addr");
    let node_a: IpAddr = "203.0.113.1".parse().expect("ip");

    // Negative control: NAT off, the outside sees the pod.
    assert!(!table_present(&t.na));
    assert_eq!(source_seen(&t.ca, &server, out_dst), ip_a);

    // NAT on at start-up (SIGTERM leaves the dataplane; the restart applies it).
    set_nat(&t, true);
    t.a.restart();
    wait_until(Duration::from_secs(10), "table inet tortie", || {
        table_present(&t.na)
    });
    let listing = sh(&[
        "ip", "netns", "exec", &t.na.name, "nft", "list", "table", "inet", "tortie",
    ]);
    assert!(
        listing.contains("ip saddr 10.244.1.0/26") && listing.contains("masquerade"),
        "{listing}"
    );
    assert_eq!(
        source_seen(&t.ca, &server, out_dst),
        node_a,
        "A log:\n{}",
        t.a.log()
    );

    // Pod to pod (across nodes) and pod to its node: never translated.
    t.a.wait_established(Duration::from_secs(20));
    let pod_b = udp_in(&t.cb, &format!("{ip_b}:0"));
    let pod_b_dst = pod_b.local_addr().expect("addr");
    assert_eq!(source_seen(&t.ca, &pod_b, pod_b_dst), ip_a);
    let node = udp_in(&t.na, "192.0.2.11:0");
    let node_dst = node.local_addr().expect("addr");
    assert_eq!(source_seen(&t.ca, &node, node_dst), ip_a);

    // Someone flushes everything: our table is back (the guard checks every
    // 500 ms; the time is printed, not asserted: a functional test does not
    // time the host), NAT works again.
    // That the flush removed it shows in the guard's repair (it repairs
    // only a table it found missing or changed), not in a listing after the
    // flush: the guard may have put the table back before that listing ran
    // (a loaded machine delays its `ip netns exec nft` past the next check).
    let repairs = || t.a.log().matches(NAT_REPAIRED).count();
    let before = repairs();
    sh(&["ip", "netns", "exec", &t.na.name, "nft", "flush", "ruleset"]);
    let flushed = Instant::now();
    wait_until(Duration::from_secs(5), "table restored", || {
        table_present(&t.na)
    });
    let took = flushed.elapsed();
    eprintln!("table inet tortie restored {took:?} after nft flush ruleset");
    wait_until(
        Duration::from_secs(5),
        "the guard's repair in A's log",
        || repairs() > before,
    );
    eprintln!(
        "guard repairs in A's log: {before} before the flush, {} after",
        repairs()
    );
    assert_eq!(source_seen(&t.ca, &server, out_dst), node_a);

    // Other tables are never touched: one made now survives turning NAT off.
    let foreign = format!("other{}", std::process::id());
    sh(&[
        "ip", "netns", "exec", &t.na.name, "nft", "add", "table", "inet", &foreign,
    ]);
    set_nat(&t, false);
    t.a.signal(nix::sys::signal::Signal::SIGHUP);
    wait_until(Duration::from_secs(5), "table removed after SIGHUP", || {
        !table_present(&t.na)
    });
    let tables = sh(&["ip", "netns", "exec", &t.na.name, "nft", "list", "tables"]);
    assert!(tables.contains(&foreign), "{tables}");
    assert_eq!(source_seen(&t.ca, &server, out_dst), ip_a);
    // And it stays removed (the guard wants nothing now).
    std::thread::sleep(Duration::from_millis(1200));
    assert!(!table_present(&t.na), "A log:\n{}", t.a.log());
    // On again by SIGHUP (no restart).
    set_nat(&t, true);
    t.a.signal(nix::sys::signal::Signal::SIGHUP);
    wait_until(Duration::from_secs(5), "table back after SIGHUP", || {
        table_present(&t.na)
    });
    assert_eq!(source_seen(&t.ca, &server, out_dst), node_a);
    drop(outside);
}

/// IPv6 egress NAT through the agent (issue 12): one node whose blocks are
/// `10.244.1.0/26` and the ULA `fd10:244:0:1::/120`, an outside namespace on
/// `2001:db8:ff::/64`, and a dual-stack container attached by `tortie
/// attach`, whose IPv6 address is the one under test.
#[test]
fn nat_outgoing_masquerades_ipv6_ula_pods() {
    if !root_or_skip() {
        return;
    }
    let t = tag("nat6");
    let dir = tempfile::Builder::new()
        .prefix("tortie-nat6-")
        .tempdir()
        .expect("tempdir");
    let node = Netns::new(format!("{t}-n"));
    let outside = Netns::new(format!("{t}-o"));
    let pod = Netns::new(format!("{t}-p"));
    let pid = std::process::id();
    let (no, oo) = (format!("q{pid}n"), format!("q{pid}o"));
    link(&node, &no, "192.0.2.11/24", &outside, &oo, "192.0.2.99/24");
    for (ns, dev, addr) in [
        (&node, &no, "2001:db8:ff::1/64"),
        (&outside, &oo, "2001:db8:ff::2/64"),
    ] {
        sh(&[
            "ip", "-n", &ns.name, "addr", "add", addr, "dev", dev, "nodad",
        ]);
    }
    let a = Agent::start(
        dir.path().join("a"),
        &node,
        &NodeSpec {
            name: "node-a",
            address: "192.0.2.11/24",
            pod_cidr: r#"["10.244.1.0/26", "fd10:244:0:1::/120"]"#,
            asn: 64512,
            peers: vec![],
        },
    );
    let attached = a.attach(&pod, "p6");
    let pod_ip: IpAddr = attached
        .lines()
        .find(|l| l.contains(':'))
        .unwrap_or_else(|| panic!("no IPv6 address in {attached:?}"))
        .parse()
        .expect("pod IPv6 address");
    let server = udp_in(&outside, "[2001:db8:ff::2]:0");
    let out_dst = server.local_addr().expect("addr");
    let node_ip: IpAddr = "2001:db8:ff::1".parse().expect("ip");
    // Negative control: NAT off, the outside sees the pod.
    assert_eq!(source_seen(&pod, &server, out_dst), pod_ip, "{}", a.log());

    // NAT on (both families' cluster ranges), applied by SIGHUP.
    let path = a.config_path();
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(
        &path,
        format!(
            "{text}\n[dataplane]\nnat_outgoing = true\ncluster_cidrs = [\"10.244.0.0/16\", \"fd10:244::/48\"]\n"
        ),
    )
    .expect("config");
    a.signal(nix::sys::signal::Signal::SIGHUP);
    wait_until(Duration::from_secs(10), "table inet tortie", || {
        table_present(&node)
    });
    let listing = sh(&[
        "ip", "netns", "exec", &node.name, "nft", "list", "table", "inet", "tortie",
    ]);
    assert!(
        listing.contains("ip6 saddr fd10:244:0:1::/120"),
        "{listing}"
    );
    assert_eq!(source_seen(&pod, &server, out_dst), node_ip, "{}", a.log());
    // To the node itself: never translated.
    let to_node = udp_in(&node, "[2001:db8:ff::1]:0");
    let to_node_dst = to_node.local_addr().expect("addr");
    assert_eq!(source_seen(&pod, &to_node, to_node_dst), pod_ip);
    // Flushed: repaired, IPv6 masquerade again.
    sh(&["ip", "netns", "exec", &node.name, "nft", "flush", "ruleset"]);
    wait_until(Duration::from_secs(5), "table restored", || {
        table_present(&node)
    });
    assert_eq!(source_seen(&pod, &server, out_dst), node_ip);
    drop(a);
}
