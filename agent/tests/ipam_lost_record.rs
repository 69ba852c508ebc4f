//! The attach handler answers once the IPAM journal record is written; its
//! `fdatasync` runs while the veth is being created and is joined by the
//! next IPAM user, not before the answer: a kernel crash before it can leave
//! a veth + host route whose allocation never reached the disk. This checks
//! the claim that start-up reconciliation covers it: the address is
//! adopted, not handed out again, and a repeated ADD gets it.

mod common;

use common::*;

#[test]
fn an_attach_whose_ipam_record_was_lost_is_adopted_at_restart() {
    if !root_or_skip() {
        return;
    }
    let tg = tag("il");
    let dir = tempfile::Builder::new()
        .prefix("tortie-ipam-lost-")
        .tempdir()
        .expect("tempdir");
    let node = Netns::new(format!("{tg}-n"));
    let c1 = Netns::new(format!("{tg}-c1"));
    let c2 = Netns::new(format!("{tg}-c2"));
    address_on_lo(&node, "192.0.2.11/32");
    let mut agent = Agent::start(
        dir.path().join("a"),
        &node,
        &NodeSpec {
            name: "node-a",
            address: "192.0.2.11/24",
            pod_cidr: "10.244.9.0/30",
            asn: 64512,
            peers: vec![],
        },
    );
    // The IPAM state before the attach: what a crash before the record's
    // fdatasync can leave on disk.
    let state = agent.dir.join("state");
    let saved: Vec<(std::path::PathBuf, Vec<u8>)> = ["ipam.json", "ipam.journal"]
        .iter()
        .map(|f| {
            let p = state.join(f);
            let bytes = std::fs::read(&p).expect("reading the IPAM state");
            (p, bytes)
        })
        .collect();
    let ip1 = agent.attach(&c1, "lost1");
    assert!(ip1.parse::<std::net::Ipv4Addr>().is_ok(), "{ip1}");
    agent.kill9();
    for (p, bytes) in &saved {
        std::fs::write(p, bytes).expect("restoring the IPAM state");
    }
    agent.spawn();
    let log = agent.log();
    assert!(log.contains("adopted=1"), "not adopted:\n{log}");
    let status = agent.status_json();
    assert_eq!(status["ipam"]["allocated"], 1, "{status}\n{log}");
    // The restored cursor points at ip1: had it not been adopted, the next
    // container would get it again.
    let ip2 = agent.attach(&c2, "lost2");
    assert_ne!(ip2, ip1, "the lost allocation was handed out twice\n{log}");
    assert_eq!(agent.attach(&c1, "lost1"), ip1, "a repeated ADD");
}
