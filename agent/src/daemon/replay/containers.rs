//! Attach → registry → routes, over the modelled kernel: what each API call
//! leaves in the registry, IPAM, the veth set and the route-table log, on
//! success and on every failure the rollback must undo (a refused
//! dataplane step, a veth that cannot be removed, a refused host route, a
//! cancelled attach).

use std::net::IpAddr;
use std::time::Duration;

use ipnetwork::IpNetwork;

use super::super::registry::host_net;
use super::{AttachFault, Cmd, Node, local, net};
use crate::api::{
    ApiError, AttachRequest, AttachResult, CheckRequest, DetachRequest, ErrorKind, GcRequest,
};

pub fn request(id: &str) -> AttachRequest {
    AttachRequest {
        id: id.to_string(),
        netns: format!("/run/netns/{}", id.replace('/', "-")),
        ifname: None,
        ip: None,
    }
}

async fn attach(node: &Node, id: &str) -> AttachResult {
    let r = node.agent.attach_container(request(id)).await;
    r.unwrap_or_else(|e| panic!("attach {id}: {e:?}"))
}

async fn attach_fails(node: &Node, id: &str) -> ApiError {
    let r = node.agent.attach_container(request(id)).await;
    r.expect_err("the attach must fail")
}

/// Starts an attach that the veth step holds, and drops it after 50 ms.
async fn cancel_attach(node: &Node, id: &str) {
    let r = tokio::time::timeout(Duration::from_millis(50), attach(node, id)).await;
    assert!(r.is_err(), "the held attach of {id} must not finish");
}

fn host(node: &Node, id: &str) -> String {
    tortie_routes::host_ifname(&node.cfg.dataplane.veth_prefix, id)
}

/// IPAM's addresses of `id`, IPv4 first.
async fn owned(node: &Node, id: &str) -> Vec<IpAddr> {
    let mut a = node.agent.lock_ipam().await.addresses(id);
    a.sort_by_key(IpAddr::is_ipv6);
    a
}

/// The prefixes in the speaker's Loc-RIB (here: only our originations), sorted.
async fn originated(node: &Node) -> Vec<String> {
    let speaker = node.agent.speaker().await.expect("speaker");
    let mut p: Vec<String> = speaker
        .query_routes(tortie_bgp::RouteQuery::All)
        .await
        .iter()
        .map(|r| r.prefix.to_string())
        .collect();
    p.sort();
    p
}

async fn allocated(node: &Node) -> usize {
    node.agent.lock_ipam().await.allocations().count()
}

/// Nothing of `id` anywhere: registry, IPAM, veths, desired routes.
async fn assert_gone(node: &Node, id: &str) {
    let h = host(node, id);
    assert!(
        node.agent.registry().get(&h).is_none(),
        "{id} still registered"
    );
    assert!(
        owned(node, id).await.is_empty(),
        "{id} still holds addresses"
    );
    let k = node.kernel();
    assert!(!k.links.contains(&h), "{id}'s veth {h} is left");
    assert!(
        !k.desired.values().any(|r| *r == local(&h)),
        "a host route on {h} is still desired"
    );
}

#[tokio::test]
async fn attach_records_the_container_and_installs_a_host_route_per_family() {
    let node = Node::start("").await;
    let r = attach(&node, "c1/eth0").await;
    let h = host(&node, "c1/eth0");
    assert_eq!(r.host_ifname, h);
    let ips = owned(&node, "c1/eth0").await;
    assert_eq!(ips.len(), 2, "one address per family: {ips:?}");
    assert!(ips[0].is_ipv4() && ips[1].is_ipv6());
    assert!(node.cfg.node.pod_cidrs.iter().any(|b| b.contains(ips[0])));
    assert!(node.cfg.node.pod_cidrs.iter().any(|b| b.contains(ips[1])));
    let want: Vec<String> = ips.iter().map(|ip| host_net(*ip).to_string()).collect();
    let got: Vec<String> = r.addresses.iter().map(|a| a.address.clone()).collect();
    assert_eq!(got, want);
    let saved = node.agent.registry().get(&h).cloned().expect("registered");
    assert_eq!(saved.id, "c1/eth0");
    assert_eq!(saved.ips(), ips);
    assert!(node.kernel().links.contains(&h));
    assert_eq!(
        node.take_log(),
        vec![
            Cmd::Expect(host_net(ips[0]), local(&h)),
            Cmd::Expect(host_net(ips[1]), local(&h)),
        ]
    );
    // Within the block: not originated one by one (advertise = "block").
    assert_eq!(originated(&node).await, Vec::<String>::new());
    // A repeated attach (a runtime retrying ADD) answers the same, changes nothing.
    let again = attach(&node, "c1/eth0").await;
    assert_eq!(again.addresses, r.addresses);
    assert_eq!(node.take_log(), vec![]);
    assert_eq!(allocated(&node).await, 2);
}

#[tokio::test]
async fn an_attach_answers_before_its_ipam_sync_and_the_next_ipam_user_settles_it() {
    let node = Node::start("").await;
    attach(&node, "c1/eth0").await;
    assert!(
        node.agent.sync_deferred(),
        "the answer waited for the records' fdatasync"
    );
    assert_eq!(allocated(&node).await, 2);
    assert!(
        !node.agent.sync_deferred(),
        "the next IPAM user left the sync open"
    );
    node.agent
        .detach_container(DetachRequest {
            id: "c1/eth0".into(),
        })
        .await
        .expect("detach");
    assert_eq!(allocated(&node).await, 0);
}

/// A detach stops desiring the host routes before it deletes the veth: a
/// route still desired when its device goes is retried on the missing
/// device (before session 14, a `route not installed: device tt… does not
/// exist or is down` WARN per detach).
#[tokio::test]
async fn detach_unroutes_before_deleting_the_veth() {
    let node = Node::start("").await;
    attach(&node, "c1/eth0").await;
    assert!(!node.kernel().desired.is_empty(), "no host route desired");
    node.agent
        .detach_container(DetachRequest {
            id: "c1/eth0".into(),
        })
        .await
        .expect("detach");
    let k = node.kernel();
    assert!(k.links.is_empty(), "veth left: {:?}", k.links);
    assert_eq!(k.desired_on_deleted, Vec::<IpNetwork>::new());
}

#[tokio::test]
async fn advertise_hosts_originates_each_family() {
    let node = Node::start("advertise = \"hosts\"").await;
    attach(&node, "c1/eth0").await;
    let ips = owned(&node, "c1/eth0").await;
    let mut want: Vec<String> = ips.iter().map(|ip| host_net(*ip).to_string()).collect();
    want.sort();
    assert_eq!(originated(&node).await, want);
    node.agent
        .detach_container(DetachRequest {
            id: "c1/eth0".into(),
        })
        .await
        .expect("detach");
    assert_eq!(originated(&node).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_refused_dataplane_step_rolls_back_ipam_and_registry() {
    let node = Node::start("").await;
    for fault in [AttachFault::Refused(libc::EEXIST), AttachFault::HalfMade] {
        node.kernel().attach_fault = Some(fault);
        let e = attach_fails(&node, "c1/eth0").await;
        let want = match fault {
            AttachFault::Refused(_) => ErrorKind::Conflict,
            AttachFault::HalfMade => ErrorKind::Internal,
        };
        assert_eq!(e.kind, want, "{fault:?}: {e:?}");
        assert_gone(&node, "c1/eth0").await;
        assert_eq!(allocated(&node).await, 0, "{fault:?}: an address leaked");
        // The host routes expected for the attach are no longer desired.
        let log = node.take_log();
        assert!(
            !log.iter()
                .any(|c| matches!(c, Cmd::Install(..) | Cmd::Set(..))),
            "{fault:?}: a route was installed for a failed attach: {log:?}"
        );
        for c in &log {
            if let Cmd::Expect(n, _) = c {
                assert!(
                    log.contains(&Cmd::Remove(*n)),
                    "{fault:?}: {n} expected and never removed: {log:?}"
                );
            }
        }
        assert!(node.kernel().desired.is_empty(), "{fault:?}");
    }
    // The next attach works and gets both families.
    attach(&node, "c1/eth0").await;
    assert_eq!(owned(&node, "c1/eth0").await.len(), 2);
}

/// The "one address on two containers" class: a half-made veth that cannot
/// be removed may carry the addresses, so they stay allocated to its id and
/// no other container gets them; the retry of that id cleans up and reuses
/// them.
#[tokio::test]
async fn a_veth_that_cannot_be_removed_keeps_its_addresses() {
    let node = Node::start("").await;
    {
        let mut k = node.kernel();
        k.attach_fault = Some(AttachFault::HalfMade);
        k.delete_fails = true;
    }
    attach_fails(&node, "c1/eth0").await;
    let kept = owned(&node, "c1/eth0").await;
    assert_eq!(
        kept.len(),
        2,
        "the half-made veth's addresses must stay reserved"
    );
    assert!(node.kernel().links.contains(&host(&node, "c1/eth0")));
    assert!(node.agent.registry().is_empty());
    node.kernel().delete_fails = false;
    attach(&node, "c2/eth0").await;
    let other = owned(&node, "c2/eth0").await;
    assert!(
        other.iter().all(|ip| !kept.contains(ip)),
        "{other:?} reuses {kept:?}"
    );
    // The retry removes the half-made veth and attaches with the same addresses.
    attach(&node, "c1/eth0").await;
    assert_eq!(owned(&node, "c1/eth0").await, kept);
    assert_eq!(node.agent.registry().len(), 2);
}

#[tokio::test]
async fn a_refused_host_route_rolls_back_everything() {
    let node = Node::start("").await;
    node.kernel().install_refused = true;
    let e = attach_fails(&node, "c1/eth0").await;
    assert_eq!(e.kind, ErrorKind::Internal);
    assert_gone(&node, "c1/eth0").await;
    assert_eq!(allocated(&node).await, 0);
    // Every host route desired on the way is undone.
    let log = node.take_log();
    assert!(
        log.iter().any(|c| matches!(c, Cmd::Install(..))),
        "a host route refused to the attach is installed through the table: {log:?}"
    );
    for c in &log {
        if let Cmd::Install(n, _) | Cmd::Expect(n, _) = c {
            assert!(
                log.contains(&Cmd::Remove(*n)),
                "{n} installed and never removed: {log:?}"
            );
        }
    }
}

#[tokio::test]
async fn detach_and_gc_release_both_families() {
    let node = Node::start("").await;
    for id in ["a/eth0", "b/eth0", "c/eth0"] {
        attach(&node, id).await;
    }
    let b = owned(&node, "b/eth0").await;
    node.take_log();
    let d = node
        .agent
        .detach_container(DetachRequest {
            id: "b/eth0".into(),
        })
        .await
        .expect("detach");
    let mut released: Vec<IpAddr> = d.released_ips.iter().map(|s| s.parse().unwrap()).collect();
    released.sort_by_key(IpAddr::is_ipv6);
    assert_eq!(released, b);
    assert!(d.removed_interface);
    assert_gone(&node, "b/eth0").await;
    assert_eq!(
        node.take_log(),
        b.iter()
            .map(|ip| Cmd::Remove(host_net(*ip)))
            .collect::<Vec<_>>()
    );
    // Again: nothing left to release, nothing to do.
    let d = node
        .agent
        .detach_container(DetachRequest {
            id: "b/eth0".into(),
        })
        .await
        .expect("detach again");
    assert!(d.released_ips.is_empty() && !d.removed_interface);
    assert_eq!(node.take_log(), vec![]);
    // gc keeps the valid ids, detaches the rest with both families.
    let c = owned(&node, "c/eth0").await;
    let r = node
        .agent
        .gc_containers(GcRequest {
            valid_ids: vec!["a/eth0".into()],
        })
        .await
        .expect("gc");
    assert_eq!(r.removed, vec!["c/eth0".to_string()]);
    assert_gone(&node, "c/eth0").await;
    let log = node.take_log();
    for ip in &c {
        assert!(
            log.contains(&Cmd::Remove(host_net(*ip))),
            "{ip} not removed: {log:?}"
        );
    }
    assert_eq!(owned(&node, "a/eth0").await.len(), 2);
    assert_eq!(allocated(&node).await, 2);
}

#[tokio::test]
async fn check_sees_a_lost_veth_and_attach_rebuilds_it_without_a_withdraw() {
    let node = Node::start("").await;
    let r = attach(&node, "c1/eth0").await;
    let check = || CheckRequest {
        id: "c1/eth0".into(),
        netns: None,
    };
    node.agent.check_container(check()).await.expect("check");
    node.take_log();
    // Deleted behind our back.
    node.kernel().links.remove(&r.host_ifname);
    let e = node
        .agent
        .check_container(check())
        .await
        .expect_err("veth gone");
    assert_eq!(e.kind, ErrorKind::NotFound);
    let again = attach(&node, "c1/eth0").await;
    assert_eq!(again.addresses, r.addresses);
    assert!(
        !node.take_log().iter().any(|c| matches!(c, Cmd::Remove(_))),
        "a rebuild must not withdraw the host routes"
    );
    node.agent
        .check_container(check())
        .await
        .expect("check after rebuild");
}

/// An attach whose future is dropped while the veth is being made (a
/// caller that gave up, a shutdown): the retry of the id finishes it with
/// the same addresses, and a restart instead removes the half-made veth
/// and frees its addresses — nothing is left either way.
#[tokio::test]
async fn a_cancelled_attach_leaves_nothing_behind() {
    let node = Node::start("").await;
    let hold = std::sync::Arc::new(tokio::sync::Notify::new());
    node.kernel().hold_attach = Some(hold.clone());
    cancel_attach(&node, "c1/eth0").await;
    node.kernel().hold_attach = None;
    let pending = owned(&node, "c1/eth0").await;
    // The retry: one veth, the same addresses, registered and routed.
    attach(&node, "c1/eth0").await;
    assert_eq!(owned(&node, "c1/eth0").await, pending);
    assert_eq!(node.kernel().links.len(), 1);
    node.agent
        .check_container(CheckRequest {
            id: "c1/eth0".into(),
            netns: None,
        })
        .await
        .expect("check");

    // Cancelled again, then the agent restarts over the same kernel and state.
    node.kernel().hold_attach = Some(hold);
    cancel_attach(&node, "c2/eth0").await;
    assert!(node.kernel().links.contains(&host(&node, "c2/eth0")));
    let node = node.restart(&[]).await;
    assert_gone(&node, "c2/eth0").await;
    // c1 survived the restart whole.
    assert_eq!(owned(&node, "c1/eth0").await, pending);
    assert!(node.agent.registry().get(&host(&node, "c1/eth0")).is_some());
    assert_eq!(allocated(&node).await, 2);
}

/// Static addresses: one owner each (the "one address on two containers"
/// class, asked for on purpose), and one outside the blocks is originated
/// on its own even with `advertise = "block"`.
#[tokio::test]
async fn a_static_address_has_one_owner_and_outside_the_block_is_originated() {
    let node = Node::start("").await;
    let with_ip = |id: &str, ip: &str| AttachRequest {
        ip: Some(ip.to_string()),
        ..request(id)
    };
    let r = node
        .agent
        .attach_container(with_ip("c1/eth0", "10.99.0.5"))
        .await
        .expect("static attach");
    assert_eq!(r.ip, "10.99.0.5");
    assert!(r.advertised);
    let ips = owned(&node, "c1/eth0").await;
    assert_eq!(ips[0].to_string(), "10.99.0.5");
    assert!(ips[1].is_ipv6(), "the other family is allocated: {ips:?}");
    assert_eq!(originated(&node).await, vec!["10.99.0.5/32".to_string()]);
    let h = host(&node, "c1/eth0");
    assert!(
        node.take_log()
            .contains(&Cmd::Expect(net("10.99.0.5/32"), local(&h)))
    );
    let taken_v6 = ips[1].to_string();
    for (id, ip) in [
        ("c2/eth0", "10.99.0.5"),
        ("c3/eth0", taken_v6.as_str()),
        ("c1/eth0", "10.99.0.6"),
    ] {
        let e = node
            .agent
            .attach_container(with_ip(id, ip))
            .await
            .expect_err("a taken address, or another one for c1");
        assert_eq!(e.kind, ErrorKind::Conflict, "{id} {ip}: {e:?}");
        if id != "c1/eth0" {
            assert_gone(&node, id).await;
        }
    }
    assert_eq!(owned(&node, "c1/eth0").await, ips);
    assert_eq!(allocated(&node).await, 2);
    assert_eq!(node.kernel().links.len(), 1);
}

/// A restart that lost the state directory (registry and IPAM files): the
/// veth with its host routes is adopted under its veth name (IPAM takes its
/// addresses from the kernel), a half-made veth is removed, the next attach
/// of the id answers with the adopted addresses, and its detach releases
/// both families.
#[tokio::test]
async fn start_up_adopts_a_routed_veth_and_its_next_attach_and_detach() {
    let node = Node::start("").await;
    let r = attach(&node, "c1/eth0").await;
    let ips = owned(&node, "c1/eth0").await;
    // A veth of ours without routes or entry: an attach killed half-way.
    node.kernel().links.insert(host(&node, "dead/eth0"));
    // (IPAM's file names are its own; the owner check below shows they went.)
    let node = node
        .restart(&[super::super::registry::FILE, "ipam.json", "ipam.journal"])
        .await;
    assert!(!node.kernel().links.contains(&host(&node, "dead/eth0")));
    let adopted = node.agent.registry().get(&r.host_ifname).cloned();
    assert_eq!(adopted.map(|c| c.ips()), Some(ips.clone()));
    assert_eq!(allocated(&node).await, 2);
    let owner = node
        .agent
        .lock_ipam()
        .await
        .owner(ips[0])
        .map(str::to_string);
    assert_eq!(
        owner,
        Some(r.host_ifname.clone()),
        "adopted from the kernel"
    );
    let again = attach(&node, "c1/eth0").await;
    assert_eq!(again.addresses, r.addresses);
    assert_eq!(again.id, "c1/eth0");
    let named = node
        .agent
        .registry()
        .get(&r.host_ifname)
        .map(|c| c.id.clone());
    assert_eq!(
        named.as_deref(),
        Some("c1/eth0"),
        "the attach names the adopted entry"
    );
    assert_eq!(node.kernel().links.len(), 1);
    let d = node
        .agent
        .detach_container(DetachRequest {
            id: "c1/eth0".into(),
        })
        .await
        .expect("detach");
    assert_eq!(d.released_ips.len(), 2, "{d:?}");
    assert_gone(&node, "c1/eth0").await;
    assert_eq!(allocated(&node).await, 0);
}

/// SIGHUP switching `bgp.advertise` (`Agent::readvertise`): every
/// container address is originated on the way to "hosts" and withdrawn on
/// the way back, both families; the host routes are not touched.
#[tokio::test]
async fn readvertise_follows_the_advertise_setting() {
    let node = Node::start("").await;
    attach(&node, "a/eth0").await;
    attach(&node, "b/eth0").await;
    let mut want: Vec<String> = node
        .agent
        .registry()
        .iter()
        .flat_map(|c| {
            c.addresses
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    want.sort();
    assert_eq!(want.len(), 4);
    node.take_log();
    let block = (*node.cfg).clone();
    let mut hosts = block.clone();
    hosts.bgp.advertise = tortie_config::Advertise::Hosts;
    node.agent.readvertise(&block, &hosts).await;
    assert_eq!(originated(&node).await, want);
    node.agent.readvertise(&hosts, &block).await;
    assert_eq!(originated(&node).await, Vec::<String>::new());
    assert_eq!(node.take_log(), vec![]);
}

/// Attaches racing for one id (a runtime retrying ADD before the first
/// answer) and for other ids, with a detach in between: the IPAM lock
/// serialises them, so one id gets one veth and one address per family,
/// and no address is handed out twice.
#[tokio::test]
async fn racing_attaches_give_one_veth_per_id_and_no_address_twice() {
    let node = Node::start("").await;
    let hold = std::sync::Arc::new(tokio::sync::Notify::new());
    node.kernel().hold_attach = Some(hold.clone());
    let release = async {
        // Let every attach queue up behind the one holding the lock (held
        // in the veth step), then let it go; the others find no hold.
        tokio::time::sleep(Duration::from_millis(20)).await;
        node.kernel().hold_attach = None;
        hold.notify_one();
    };
    let same = |_| attach(&node, "c1/eth0");
    let race = async {
        tokio::join!(
            async { tokio::join!(same(1), same(2), same(3)) },
            async { tokio::join!(attach(&node, "c2/eth0"), attach(&node, "c3/eth0")) },
            release,
        )
    };
    // A lost wake-up or a lock held across the veth step must fail, not hang.
    let ((r1, r2, r3), (o1, o2), ()) = tokio::time::timeout(Duration::from_secs(10), race)
        .await
        .expect("the racing attaches did not finish");
    assert_eq!(r1.addresses, r2.addresses);
    assert_eq!(r1.addresses, r3.addresses);
    let mut all: Vec<String> = [&r1, &o1, &o2]
        .iter()
        .flat_map(|r| r.addresses.iter().map(|a| a.address.clone()))
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 6, "an address went to two containers: {all:?}");
    assert_eq!(node.kernel().links.len(), 3);
    assert_eq!(node.agent.registry().len(), 3);
    assert_eq!(allocated(&node).await, 6);
}
