//! Root integration test of `routes::nat` for both families: a "pod"
//! namespace behind a "node" namespace behind an "outside" one, with an IPv4
//! and an IPv6 (ULA) pod block. A UDP listener outside records the source of
//! each client: the pod's address without NAT, the node's with our table,
//! the pod's again once it is removed; an in-cluster destination keeps the
//! pod's address. Tables are applied from a thread inside the node
//! namespace (nft inherits it); namespaces go with their Drop guards.

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use common::{Netns, ip, require_root};
use tortie_routes::IpNetwork;
use tortie_routes::nat::{self, NatRules};

fn veth(a: &Netns, a_if: &str, a_addrs: &[&str], b: &Netns, b_if: &str, b_addrs: &[&str]) {
    ip(&[
        "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
        &b.name,
    ]);
    for (ns, dev, addrs) in [(a, a_if, a_addrs), (b, b_if, b_addrs)] {
        for addr in addrs {
            let mut args = vec!["addr", "add", addr, "dev", dev];
            if addr.contains(':') {
                args.push("nodad");
            }
            ns.ip(&args);
        }
        ns.ip(&["link", "set", dev, "up"]);
    }
}

fn udp_in(ns: &Netns, bind: &str) -> UdpSocket {
    let bind = bind.to_string();
    ns.run(move || async move { UdpSocket::bind(&bind).expect("bind") })
}

/// A new flow from `client` to `dst`; the source `server` saw.
fn source_seen(client: &Netns, server: &UdpSocket, dst: SocketAddr) -> IpAddr {
    let any = if dst.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let sock = udp_in(client, any);
    let nonce = format!("{:?}", sock.local_addr().expect("addr"));
    server
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buf = [0u8; 128];
    for _ in 0..25 {
        let _ = sock.send_to(nonce.as_bytes(), dst);
        while let Ok((n, from)) = server.recv_from(&mut buf) {
            if &buf[..n] == nonce.as_bytes() {
                return from.ip();
            }
        }
    }
    panic!("{dst} never heard from {}", client.name);
}

fn apply_in(ns: &Netns, rules: Option<NatRules>) {
    ns.run(move || async move { nat::apply(rules.as_ref()) })
        .expect("nft apply");
}

fn net(s: &str) -> IpNetwork {
    s.parse().expect("net")
}

#[test]
fn masquerade_both_families_only_outside_the_cluster() {
    if !require_root() {
        return;
    }
    let pod = Netns::new("natp");
    let node = Netns::new("natn");
    let outside = Netns::new("nato");
    let peer_pod = Netns::new("natq");
    let pid = std::process::id();
    let (p0, n0, n1, o0, n2, q0) = (
        format!("p{pid}"),
        format!("np{pid}"),
        format!("no{pid}"),
        format!("o{pid}"),
        format!("nq{pid}"),
        format!("q{pid}"),
    );
    veth(
        &pod,
        &p0,
        &["10.244.1.2/26", "fd10:244:0:1::2/64"],
        &node,
        &n0,
        &["10.244.1.1/26", "fd10:244:0:1::1/64"],
    );
    veth(
        &node,
        &n1,
        &["203.0.113.1/24", "2001:db8:9::1/64"],
        &outside,
        &o0,
        &["203.0.113.2/24", "2001:db8:9::2/64"],
    );
    // A second pod block on the node (stands for another node's pods).
    veth(
        &node,
        &n2,
        &["10.244.2.1/26", "fd10:244:0:2::1/64"],
        &peer_pod,
        &q0,
        &["10.244.2.2/26", "fd10:244:0:2::2/64"],
    );
    for (ns, v4, v6) in [
        (&pod, "10.244.1.1", "fd10:244:0:1::1"),
        (&peer_pod, "10.244.2.1", "fd10:244:0:2::1"),
    ] {
        ns.ip(&["route", "add", "default", "via", v4]);
        ns.ip(&["-6", "route", "add", "default", "via", v6]);
    }
    for key in ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"] {
        let (ok, out) = node.exec(&["sysctl", "-qw", &format!("{}=1", key.replace('/', "."))]);
        assert!(ok, "{key}: {out}");
    }
    for key in ["all", "default", o0.as_str()] {
        let (ok, out) =
            outside.exec(&["sysctl", "-qw", &format!("net.ipv4.conf.{key}.rp_filter=0")]);
        assert!(ok, "{out}");
    }
    let out4 = udp_in(&outside, "203.0.113.2:0");
    let out6 = udp_in(&outside, "[2001:db8:9::2]:0");
    let in6 = udp_in(&peer_pod, "[fd10:244:0:2::2]:0");
    let (d4, d6, dq6) = (
        out4.local_addr().expect("a"),
        out6.local_addr().expect("a"),
        in6.local_addr().expect("a"),
    );
    let pod4: IpAddr = "10.244.1.2".parse().expect("ip");
    let pod6: IpAddr = "fd10:244:0:1::2".parse().expect("ip");

    // Negative control: no table, the outside sees the pod.
    assert_eq!(source_seen(&pod, &out4, d4), pod4);
    assert_eq!(source_seen(&pod, &out6, d6), pod6);

    let foreign = format!("other{pid}");
    let (ok, out) = node.exec(&["nft", "add", "table", "ip6", &foreign]);
    assert!(ok, "{out}");
    let rules = NatRules::new(
        &[net("10.244.1.0/26"), net("fd10:244:0:1::/64")],
        &[net("10.244.0.0/16"), net("fd10:244::/48")],
    )
    .expect("rules");
    apply_in(&node, Some(rules.clone()));
    // Applying twice replaces, never duplicates.
    apply_in(&node, Some(rules.clone()));
    let intact = node.run({
        let r = rules.clone();
        move || async move { nat::intact(&r) }
    });
    assert!(intact.expect("list"), "table not as wanted");
    // A rewritten rule (same count, not ours) is seen as damage.
    for cmd in [
        "flush chain inet tortie postrouting",
        "add rule inet tortie postrouting ip saddr 10.244.1.0/26 accept",
        "add rule inet tortie postrouting ip6 saddr fd10:244:0:1::/64 accept",
    ] {
        let mut args = vec!["nft"];
        args.extend(cmd.split(' '));
        let (ok, out) = node.exec(&args);
        assert!(ok, "{cmd}: {out}");
    }
    let damaged = node.run({
        let r = rules.clone();
        move || async move { nat::intact(&r) }
    });
    assert!(!damaged.expect("list"), "rewritten rules not noticed");
    apply_in(&node, Some(rules.clone()));
    assert_eq!(
        source_seen(&pod, &out4, d4),
        "203.0.113.1".parse::<IpAddr>().expect("ip")
    );
    assert_eq!(
        source_seen(&pod, &out6, d6),
        "2001:db8:9::1".parse::<IpAddr>().expect("ip")
    );
    // Inside the cluster: the pod's own address.
    assert_eq!(source_seen(&pod, &in6, dq6), pod6);

    apply_in(&node, None);
    let (ok, _) = node.exec(&["nft", "list", "table", "inet", "tortie"]);
    assert!(!ok, "table still there after removal");
    let (ok, tables) = node.exec(&["nft", "list", "tables"]);
    assert!(ok && tables.contains(&foreign), "{tables}");
    assert_eq!(source_seen(&pod, &out6, d6), pod6);
    // Removing an absent table is not an error.
    apply_in(&node, None);
}
