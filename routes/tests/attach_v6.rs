//! Root test of the IPv6 half of attach (issue 11 §2): dual-stack and
//! IPv6-only containers in throw-away namespaces reach each other over
//! both families through the host, with no NDP on the veths (permanent
//! neighbour entries both ways) and no DAD delay.

mod common;

use std::net::IpAddr;
use std::path::PathBuf;

use common::{Netns, require_root};
use tortie_routes::{
    AttachRequest, GATEWAY6, IpNetwork, KernelRoute, RouteTable, attach, list_attachments,
};

fn req(id: &str, netns: PathBuf, addresses: &[&str]) -> AttachRequest {
    AttachRequest {
        container_id: id.to_string(),
        netns,
        ifname: "eth0".into(),
        addresses: addresses.iter().map(|a| a.parse().expect("ip")).collect(),
        mtu: 1400,
        veth_prefix: "tt".into(),
        host_routes: None,
    }
}

/// As the agent does: attach, then every host route through the route table.
async fn attach_routed(r: &AttachRequest) -> String {
    let a = attach(r).await.expect("attach");
    let table = RouteTable::start(149, 254).await.expect("route table");
    for ip in &a.addresses {
        let len = if ip.is_ipv4() { 32 } else { 128 };
        table
            .install(
                IpNetwork::new(*ip, len).expect("host prefix"),
                KernelRoute::Local {
                    dev: a.host_ifname.clone(),
                },
            )
            .await
            .expect("host route installed");
    }
    assert_eq!(a.host_mac, "ee:ee:ee:ee:ee:ee");
    a.host_ifname
}

#[test]
fn dual_stack_and_ipv6_only_containers_reach_each_other_at_once() {
    if !require_root() {
        return;
    }
    let host = Netns::new("d6-h");
    let c1 = Netns::new("d6-a");
    let c2 = Netns::new("d6-b");
    let r1 = req(
        &format!("d6-a-{}", host.name),
        c1.path(),
        &["10.96.6.2", "fd00:96:6::2"],
    );
    let r2 = req(&format!("d6-b-{}", host.name), c2.path(), &["fd00:96:6::3"]);
    let (v1, v2) =
        host.run(move || async move { (attach_routed(&r1).await, attach_routed(&r2).await) });
    // Inside: the /128 (not tentative: DAD is off), the gateway's permanent
    // entry and the default route through it.
    let addr = c1.ip(&["-6", "addr", "show", "dev", "eth0", "scope", "global"]);
    assert!(addr.contains("fd00:96:6::2/128"), "{addr}");
    assert!(!addr.contains("tentative"), "{addr}");
    let gw = GATEWAY6.to_string();
    let neigh = c1.ip(&["-6", "neigh", "show", "dev", "eth0"]);
    assert!(
        neigh.contains(&format!("{gw} lladdr ee:ee:ee:ee:ee:ee PERMANENT")),
        "{neigh}"
    );
    let route = c1.ip(&["-6", "route", "show", "default"]);
    assert!(
        route.contains(&format!("default via {gw} dev eth0")),
        "{route}"
    );
    assert_eq!(
        c2.ip(&["-4", "addr", "show", "dev", "eth0"]).trim(),
        "",
        "IPv6-only got IPv4"
    );
    // Host: the gateway address without DAD, the container's entry, the /128.
    let haddr = host.ip(&["-6", "addr", "show", "dev", &v1]);
    assert!(haddr.contains(&format!("{gw}/64")), "{haddr}");
    assert!(!haddr.contains("tentative"), "{haddr}");
    let hneigh = host.ip(&["-6", "neigh", "show", "dev", &v1]);
    assert!(
        hneigh.contains("fd00:96:6::2 lladdr") && hneigh.contains("PERMANENT"),
        "{hneigh}"
    );
    let hroute = host.ip(&["-6", "route", "show", "proto", "149"]);
    assert!(
        hroute.contains(&format!("fd00:96:6::2 dev {v1}")),
        "{hroute}"
    );
    assert!(
        hroute.contains(&format!("fd00:96:6::3 dev {v2}")),
        "{hroute}"
    );
    assert_eq!(host.sysctl("net/ipv6/conf/all/forwarding").trim(), "1");
    // Both ways at once, the first packet answered (-c1 -W1).
    for (ns, target) in [(&c1, "fd00:96:6::3"), (&c2, "fd00:96:6::2")] {
        let (ok, out) = ns.exec(&["ping", "-6", "-c1", "-W1", target]);
        assert!(ok, "ping -6 {target} from {}: {out}", ns.name);
    }
    let listed = host.run(|| async { list_attachments("tt", 149).await.expect("list") });
    let want: Vec<(String, IpAddr)> = vec![
        (v1.clone(), "10.96.6.2".parse().expect("ip")),
        (v1.clone(), "fd00:96:6::2".parse().expect("ip")),
        (v2.clone(), "fd00:96:6::3".parse().expect("ip")),
    ];
    let mut listed = listed;
    listed.sort();
    let mut want = want;
    want.sort();
    assert_eq!(listed, want);
}

#[test]
fn two_addresses_of_one_family_are_refused() {
    let r = req(
        "d6-bad",
        PathBuf::from("/nonexistent"),
        &["fd00::2", "fd00::3"],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let err = rt.block_on(attach(&r)).expect_err("refused");
    assert!(err.to_string().contains("at most one per family"), "{err}");
}
