//! Root tests of an attach that writes its host routes itself, for the
//! route table that owns them (`AttachRequest::host_routes`,
//! `RouteTable::expect`; docs/design.md §4): the routes are in the kernel
//! when the attach returns, the table takes them as its own without
//! writing them, never sweeps them as strays (a re-dump once converged),
//! and a restarted table adopts them; a route already at the prefix is
//! left alone by the attach and reported through the table's install.

mod common;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::{Netns, require_root};
use tortie_routes::{
    AttachRequest, IpNetwork, KernelRoute, RouteTable, attach, host_ifname, list_attachments,
};

fn req(id: &str, netns: PathBuf, addresses: &[IpAddr]) -> AttachRequest {
    AttachRequest {
        container_id: id.to_string(),
        netns,
        ifname: "eth0".into(),
        addresses: addresses.to_vec(),
        mtu: 1400,
        veth_prefix: "tt".into(),
        host_routes: None,
    }
}

fn host_net(ip: IpAddr) -> IpNetwork {
    IpNetwork::from(ip)
}

fn local(dev: &str) -> KernelRoute {
    KernelRoute::Local {
        dev: dev.to_string(),
    }
}

/// Waits (up to 5 s) until the table has re-dumped `n` times in all.
async fn resyncs_reach(table: &RouteTable, n: u64) {
    for _ in 0..100 {
        let _ = table.flush().await;
        if table.stats().resyncs >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the table did not re-dump ({} of {n})",
        table.stats().resyncs
    );
}

#[test]
fn an_attach_writes_its_host_routes_for_the_table_which_keeps_them() {
    if !require_root() {
        return;
    }
    let host = Netns::new("ar-h");
    let c = Netns::new("ar-c");
    let ips: Vec<IpAddr> = vec![
        "10.96.8.2".parse().unwrap(),
        "fd00:96:8::2".parse().unwrap(),
    ];
    let id = format!("ar-{}", host.name);
    let dev = host_ifname("tt", &id);
    let mut r = req(&id, c.path(), &ips);
    let probe = Netns::borrowed(&host.name);
    let (d, ips2) = (dev.clone(), ips.clone());
    host.run(move || async move {
        let (dev, ips) = (d, ips2);
        let table = RouteTable::start(149, 254).await.expect("route table");
        // Converged: from here a re-dump deletes routes of ours that are
        // not desired.
        table.converged().await;
        table.flush().await.expect("flushed");
        let writes = table.stats().writes;
        for ip in &ips {
            table.expect(host_net(*ip), local(&dev)).await;
        }
        r.host_routes = Some(table.host_routes());
        let a = attach(&r).await.expect("attach");
        assert_eq!(a.routed, ips, "both host routes written by the attach");
        // In the kernel when the attach returns, as the table writes them.
        let mut found = list_attachments("tt", 149).await.expect("listing");
        found.sort_by_key(|(_, ip)| ip.is_ipv6());
        let want: Vec<(String, IpAddr)> = ips.iter().map(|ip| (dev.clone(), *ip)).collect();
        assert_eq!(found, want);
        // The table holds them as its own, installed, and wrote nothing.
        table.flush().await.expect("flushed");
        let installed = table.installed().await;
        for ip in &ips {
            assert_eq!(installed.get(&host_net(*ip)), Some(&local(&dev)), "{ip}");
        }
        let stats = table.stats();
        assert_eq!(stats.installed_local, 2, "{stats:?}");
        assert_eq!(stats.writes, writes, "the table wrote the routes again");
        // A re-dump once converged (an address removed makes one) sweeps
        // strays: these are desired, so they stay, unwritten.
        let resyncs = stats.resyncs;
        probe.ip(&["addr", "add", "10.96.9.1/32", "dev", "lo"]);
        probe.ip(&["addr", "del", "10.96.9.1/32", "dev", "lo"]);
        resyncs_reach(&table, resyncs + 1).await;
        table.flush().await.expect("flushed");
        assert_eq!(list_attachments("tt", 149).await.expect("listing").len(), 2);
        assert_eq!(table.stats().writes, writes, "rewritten after the re-dump");
        // Taken by a restarted table as ours (adopted, kept until converged).
        drop(table);
        let again = RouteTable::start(149, 254).await.expect("route table");
        let installed = again.installed().await;
        for ip in &ips {
            assert_eq!(installed.get(&host_net(*ip)), Some(&local(&dev)), "{ip}");
        }
        assert_eq!(again.stats().adopted, 2);
    });
    // A stopped table leaves its routes in place.
    let shown = host.ip(&["-6", "route", "show", "proto", "149"]);
    assert!(shown.contains("fd00:96:8::2"), "{shown}");
}

#[test]
fn a_route_at_the_prefix_is_left_alone_and_the_install_says_why() {
    if !require_root() {
        return;
    }
    let host = Netns::new("ar2-h");
    let c = Netns::new("ar2-c");
    let ip: IpAddr = "10.96.10.2".parse().unwrap();
    // Another protocol's route to the container's address.
    host.ip(&["link", "add", "x9", "type", "veth", "peer", "name", "x9p"]);
    host.ip(&["link", "set", "x9", "up"]);
    host.ip(&["link", "set", "x9p", "up"]);
    host.ip(&[
        "route",
        "add",
        "10.96.10.2/32",
        "dev",
        "x9",
        "proto",
        "static",
    ]);
    let id = format!("ar2-{}", host.name);
    let dev = host_ifname("tt", &id);
    let mut r = req(&id, c.path(), &[ip]);
    let d = dev.clone();
    host.run(move || async move {
        let table = RouteTable::start(149, 254).await.expect("route table");
        table.expect(host_net(ip), local(&d)).await;
        r.host_routes = Some(table.host_routes());
        let a = attach(&r).await.expect("attach");
        assert_eq!(
            a.routed,
            Vec::<IpAddr>::new(),
            "the static route was replaced"
        );
        // The caller installs it through the table, which says why not.
        let e = table
            .install(host_net(ip), local(&d))
            .await
            .expect_err("a conflict");
        assert!(e.to_string().contains("another protocol"), "{e}");
    });
    let shown = host.ip(&["route", "show", "10.96.10.2/32"]);
    assert!(shown.contains("dev x9 proto static"), "{shown}");
}
