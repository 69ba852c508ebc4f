//! Root integration tests for container attach/detach, in throw-away
//! namespaces: one plays the host, others the containers.

mod common;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use common::{Child, Netns, require_root};
use tortie_routes::{
    AttachRequest, Attachment, Ipv4Network, KernelRoute, RouteTable, attach, detach, host_ifname,
    list_attachments,
};

fn req(id: &str, netns: PathBuf, ip: Ipv4Addr) -> AttachRequest {
    AttachRequest {
        container_id: id.to_string(),
        netns,
        ifname: "eth0".into(),
        addresses: vec![ip.into()],
        mtu: 1400,
        veth_prefix: "tt".into(),
        host_routes: None,
    }
}

/// The attachment's IPv4 address.
fn v4(a: &Attachment) -> Ipv4Addr {
    a.addresses
        .iter()
        .find_map(|x| match x {
            std::net::IpAddr::V4(x) => Some(*x),
            std::net::IpAddr::V6(_) => None,
        })
        .expect("an IPv4 address")
}

/// What the agent does: attach, then install the host route through the
/// route table (the only writer of proto 149) and wait for it.
async fn attach_routed(r: &AttachRequest) -> Attachment {
    let a = attach(r).await.expect("attach");
    let table = RouteTable::start(149, 254).await.expect("route table");
    table
        .install(
            Ipv4Network::new(v4(&a), 32).unwrap(),
            KernelRoute::Local {
                dev: a.host_ifname.clone(),
            },
        )
        .await
        .expect("host route installed");
    a
}

#[test]
fn attach_configures_both_sides_and_detach_is_idempotent() {
    if !require_root() {
        return;
    }
    let host = Netns::new("att-h");
    let c1 = Netns::new("att-c");
    let id = format!("ctr-basic-{}", host.name);
    let ip: Ipv4Addr = "10.96.0.5".parse().unwrap();
    let r = req(&id, c1.path(), ip);
    let hname = host.name.clone();
    let a = host.run(move || async move {
        let a = attach(&r).await.expect("attach");
        // attach writes no route of ours: the route table does.
        let probe = Netns::borrowed(&hname);
        assert_eq!(probe.ip(&["route", "show", "proto", "149"]).trim(), "");
        let table = RouteTable::start(149, 254).await.expect("route table");
        let local = KernelRoute::Local {
            dev: a.host_ifname.clone(),
        };
        let p = Ipv4Network::new(v4(&a), 32).unwrap();
        table.install(p, local).await.expect("install");
        // A device that does not exist: refused with the reason.
        let err = table
            .install(
                Ipv4Network::new("10.96.0.6".parse().unwrap(), 32).unwrap(),
                KernelRoute::Local {
                    dev: "ttnothere".into(),
                },
            )
            .await
            .expect_err("no such device");
        assert!(
            err.to_string()
                .contains("10.96.0.6/32 not installed: device ttnothere does not exist"),
            "{err}"
        );
        table
            .remove(Ipv4Network::new("10.96.0.6".parse().unwrap(), 32).unwrap())
            .await;
        table.flush().await.expect("flush");
        a
    });
    let veth = host_ifname("tt", &id);
    assert_eq!(a.host_ifname, veth);
    assert_eq!(a.container_ifname, "eth0");
    assert_eq!(a.addresses, [std::net::IpAddr::V4(ip)]);
    assert_eq!(a.container_mac.len(), 17);
    assert_eq!(a.mtu, 1400);

    // Host side: up, MTU, no address, host route, sysctls.
    let link = host.ip(&["link", "show", &veth]);
    assert!(link.contains("mtu 1400") && link.contains("UP"), "{link}");
    let addrs = host.ip(&["addr", "show", "dev", &veth]);
    assert!(
        !addrs.contains("inet "),
        "host veth has an address: {addrs}"
    );
    // Not even a kernel-made IPv6 link-local one (addr_gen_mode none).
    assert!(
        !addrs.contains("inet6")
            && host.sysctl(&format!("net/ipv6/conf/{veth}/addr_gen_mode")) == "1",
        "host veth has an IPv6 link-local address: {addrs}"
    );
    let route = host.ip(&["route", "show", "10.96.0.5/32"]);
    assert!(
        route.contains(&format!("10.96.0.5 dev {veth} proto 149 scope link")),
        "{route}"
    );
    assert_eq!(host.sysctl(&format!("net/ipv4/conf/{veth}/proxy_arp")), "1");
    assert_eq!(
        host.sysctl(&format!("net/ipv4/neigh/{veth}/proxy_delay")),
        "0"
    );
    assert_eq!(
        host.sysctl(&format!("net/ipv4/conf/{veth}/forwarding")),
        "1"
    );
    assert_eq!(host.sysctl("net/ipv4/ip_forward"), "1");
    // The host never ARPs for the container: a permanent entry with its MAC.
    let hn = host.ip(&["neigh", "show", "10.96.0.5", "dev", &veth]);
    assert!(
        hn.contains("PERMANENT") && hn.contains(&a.container_mac),
        "{hn}"
    );
    // Both ends are operationally up when attach returns.
    let state = host.ip(&["-o", "link", "show", &veth]);
    assert!(
        state.contains("LOWER_UP") && state.contains("state UP"),
        "{state}"
    );

    // Container side.
    let eth0 = c1.ip(&["addr", "show", "eth0"]);
    assert!(
        eth0.contains("inet 10.96.0.5/32") && eth0.contains("mtu 1400"),
        "{eth0}"
    );
    assert!(eth0.contains(&a.container_mac), "{eth0}");
    assert!(
        eth0.contains("state UP") && eth0.contains("LOWER_UP"),
        "{eth0}"
    );
    let routes = c1.ip(&["route", "show"]);
    assert!(
        routes.contains("default via 169.254.1.1 dev eth0"),
        "{routes}"
    );
    assert!(routes.contains("169.254.1.1 dev eth0"), "{routes}");
    assert!(routes.contains("scope link"), "{routes}");
    let neigh = c1.ip(&["neigh", "show", "169.254.1.1"]);
    assert!(
        neigh.contains("PERMANENT") && neigh.contains(&a.host_mac),
        "{neigh}"
    );
    assert!(host.ip(&["link", "show", &veth]).contains(&a.host_mac));
    let lo = c1.ip(&["link", "show", "lo"]);
    assert!(lo.contains("UP"), "{lo}");

    let listed = host.run(|| async { list_attachments("tt", 149).await.expect("list") });
    assert_eq!(listed, vec![(veth.clone(), ip.into())]);

    let id2 = id.clone();
    host.run(move || async move {
        detach(&id2, "tt", 149).await.expect("detach");
        detach(&id2, "tt", 149)
            .await
            .expect("second detach is success");
    });
    let (exists, _) = host.try_ip(&["link", "show", &veth]);
    assert!(!exists, "host veth still there after detach");
    assert!(
        host.ip(&["route", "show", "10.96.0.5/32"])
            .trim()
            .is_empty()
    );
    let (exists, _) = c1.try_ip(&["link", "show", "eth0"]);
    assert!(!exists, "container eth0 still there after detach");
    let listed = host.run(|| async { list_attachments("tt", 149).await.expect("list") });
    assert!(listed.is_empty());
}

#[test]
fn containers_ping_host_and_each_other() {
    if !require_root() {
        return;
    }
    let host = Netns::new("png-h");
    let c1 = Netns::new("png-a");
    let c2 = Netns::new("png-b");
    // An address on the host to ping; the host has no default route, which
    // is the case where proxy ARP for 169.254.1.1 alone would stay silent.
    host.ip(&["addr", "add", "10.97.0.1/32", "dev", "lo"]);
    let (r1, r2) = (
        req(
            &format!("ping-a-{}", host.name),
            c1.path(),
            "10.96.1.2".parse().unwrap(),
        ),
        req(
            &format!("ping-b-{}", host.name),
            c2.path(),
            "10.96.1.3".parse().unwrap(),
        ),
    );
    host.run(move || async move {
        attach_routed(&r1).await;
        attach_routed(&r2).await;
    });
    for (ns, target) in [
        (&c1, "10.97.0.1"),
        (&c1, "10.96.1.3"),
        (&c2, "10.96.1.2"),
        (&host, "10.96.1.2"),
        (&host, "10.96.1.3"),
    ] {
        let (ok, out) = ns.exec(&["ping", "-c1", "-W1", target]);
        assert!(ok, "ping {target} from {}: {out}", ns.name);
    }
}

#[test]
fn attach_into_missing_netns_fails_cleanly() {
    if !require_root() {
        return;
    }
    let host = Netns::new("miss-h");
    let id = format!("ghost-{}", host.name);
    let path = PathBuf::from(format!("/run/netns/{}-does-not-exist", host.name));
    let r = req(&id, path.clone(), "10.96.2.2".parse().unwrap());
    let err = host.run(move || async move { attach(&r).await.expect_err("must fail") });
    let text = err.to_string();
    assert!(text.contains(&format!("attach {id}")), "{text}");
    assert!(text.contains("opening network namespace"), "{text}");
    assert!(text.contains("No such file or directory"), "{text}");
    let links = host.ip(&["link", "show"]);
    assert!(!links.contains(&host_ifname("tt", &id)), "{links}");
    assert!(
        host.ip(&["route", "show", "proto", "149"])
            .trim()
            .is_empty()
    );
}

#[test]
fn attach_by_proc_pid_path_and_duplicate_attach_is_refused() {
    if !require_root() {
        return;
    }
    let host = Netns::new("pid-h");
    let c = Netns::new("pid-c");
    host.ip(&["addr", "add", "10.97.0.1/32", "dev", "lo"]);
    let child = Child(
        std::process::Command::new("ip")
            .args(["netns", "exec", &c.name, "sleep", "30"])
            .spawn()
            .expect("spawn sleep"),
    );
    // `ip netns exec` enters the namespace and then execs sleep (same PID);
    // wait until it has.
    let ns_path = PathBuf::from(format!("/proc/{}/ns/net", child.0.id()));
    let target = std::fs::metadata(c.path()).map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.ino()
    });
    for _ in 0..100 {
        let ino = std::fs::metadata(&ns_path).map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.ino()
        });
        if ino.is_ok() && ino.as_ref().ok() == target.as_ref().ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let id = format!("bypid-{}", host.name);
    let r = req(&id, ns_path, "10.96.3.2".parse().unwrap());
    let r2 = r.clone();
    let (a, second) = host.run(move || async move {
        let first = attach_routed(&r).await;
        let second = attach(&r2).await;
        (first, second)
    });
    let eth0 = c.ip(&["addr", "show", "eth0"]);
    assert!(eth0.contains("inet 10.96.3.2/32"), "{eth0}");
    let err = second.expect_err("second attach of the same id must fail");
    let text = err.to_string();
    assert!(
        text.contains(&format!("creating veth {}", a.host_ifname))
            && text.contains("already attached?")
            && text.contains("File exists"),
        "{text}"
    );
    // Another id, same namespace: eth0 is taken inside.
    let r3 = req(
        &format!("other-{}", host.name),
        c.path(),
        "10.96.3.3".parse().unwrap(),
    );
    let err = host.run(move || async move { attach(&r3).await.expect_err("eth0 exists") });
    assert!(
        err.to_string().contains("exists inside the namespace"),
        "{err}"
    );
    // The first attachment is intact.
    let (ok, out) = host.exec(&["ping", "-c1", "-W1", "10.96.3.2"]);
    assert!(ok, "{out}");
    drop(child);
}

#[test]
fn attach_with_route_table_local_routes_are_kept_and_restored() {
    if !require_root() {
        return;
    }
    use std::time::{Duration, Instant};
    use tortie_routes::{Ipv4Network, KernelRoute, RouteTable};
    let host = Netns::new("tab-h");
    let c1 = Netns::new("tab-a");
    let c2 = Netns::new("tab-b");
    let (r1, r2) = (
        req(
            &format!("tab-a-{}", host.name),
            c1.path(),
            "10.96.4.2".parse().unwrap(),
        ),
        req(
            &format!("tab-b-{}", host.name),
            c2.path(),
            "10.96.4.3".parse().unwrap(),
        ),
    );
    let hname = host.name.clone();
    host.run(move || async move {
        let probe = Netns::borrowed(&hname);
        let table = RouteTable::start(149, 254).await.expect("start");
        let a1 = attach(&r1).await.expect("attach 1");
        // A container attached but never declared to the table (a leftover
        // host route of ours, as a previous run would have left it).
        let a2 = attach(&r2).await.expect("attach 2");
        probe.ip(&[
            "route",
            "add",
            "10.96.4.3/32",
            "dev",
            &a2.host_ifname,
            "proto",
            "149",
            "scope",
            "link",
        ]);
        let p1 = Ipv4Network::new(v4(&a1), 32).unwrap();
        table
            .set(
                p1,
                KernelRoute::Local {
                    dev: a1.host_ifname.clone(),
                },
            )
            .await;
        table.flush().await.expect("flush");
        assert_eq!(table.stats().installed_local, 1);
        // Before converged the undeclared host route is kept, after it is swept.
        assert!(
            probe
                .ip(&["route", "show", "10.96.4.3/32"])
                .contains(&a2.host_ifname)
        );
        table.converged().await;
        assert!(
            probe
                .ip(&["route", "show", "10.96.4.3/32"])
                .trim()
                .is_empty()
        );
        assert!(
            probe
                .ip(&["route", "show", "10.96.4.2/32"])
                .contains(&a1.host_ifname)
        );

        // Someone deletes the declared host route: back within a second.
        probe.ip(&["route", "del", "10.96.4.2/32"]);
        let start = Instant::now();
        while !probe
            .ip(&["route", "show", "10.96.4.2/32"])
            .contains(&a1.host_ifname)
        {
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "host route not restored"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        table.flush().await.expect("flush");
        assert!(table.stats().restored >= 1);

        // Detach, then forget the route: nothing pending, nothing failed.
        detach(&a1.container_id, "tt", 149).await.expect("detach");
        table.remove(p1).await;
        table.flush().await.expect("flush after detach");
        let s = table.stats();
        assert_eq!((s.pending, s.desired, s.netlink_errors), (0, 0, 0), "{s:?}");
    });
}

/// The first packet to a fresh container gets through: the host holds a
/// permanent neighbour entry for the container (no ARP that a not-yet-ready
/// veth could lose, which cost a 1 s ARP retransmission) and `attach`
/// returns only once both ends are operationally up.
#[test]
fn first_ping_through_the_host_succeeds_right_after_attach() {
    if !require_root() {
        return;
    }
    let host = Netns::new("fp-h");
    let peer = Netns::new("fp-p");
    // A second "node" routed through the host: peer 192.0.2.2 -- host 192.0.2.1.
    host.ip(&[
        "link", "add", "tp0", "type", "veth", "peer", "name", "tp1", "netns", &peer.name,
    ]);
    host.ip(&["addr", "add", "192.0.2.1/24", "dev", "tp0"]);
    host.ip(&["link", "set", "tp0", "up"]);
    peer.ip(&["addr", "add", "192.0.2.2/24", "dev", "tp1"]);
    peer.ip(&["link", "set", "tp1", "up"]);
    peer.ip(&["route", "add", "default", "via", "192.0.2.1"]);
    let (ok, out) = peer.exec(&["ping", "-c1", "-W2", "192.0.2.1"]);
    assert!(ok, "warm-up ping to the host: {out}");

    let mut failures = Vec::new();
    for i in 0..30u32 {
        let c = Netns::new("fp-c");
        let ip = Ipv4Addr::new(10, 96, 7, 2 + i as u8);
        let id = format!("first-{i}-{}", host.name);
        let r = req(&id, c.path(), ip);
        let a = host.run(move || async move { attach_routed(&r).await });
        let (ok, out) = peer.exec(&["ping", "-c1", "-W1", &ip.to_string()]);
        if !ok {
            failures.push(format!("{ip}: {out}"));
        }
        let neigh = host.ip(&["neigh", "show", &ip.to_string(), "dev", &a.host_ifname]);
        assert!(
            neigh.contains("PERMANENT") && neigh.contains(&a.container_mac),
            "host neighbour entry for {ip}: {neigh:?}"
        );
        let link = host.ip(&["link", "show", &a.host_ifname]);
        assert!(
            link.contains("LOWER_UP") && link.contains("state UP"),
            "{link}"
        );
        let id2 = id.clone();
        host.run(move || async move { detach(&id2, "tt", 149).await.expect("detach") });
        let left = host.ip(&["neigh", "show", &ip.to_string()]);
        assert!(
            left.trim().is_empty(),
            "neighbour left after detach: {left}"
        );
    }
    assert!(failures.is_empty(), "first pings lost: {failures:#?}");
}
