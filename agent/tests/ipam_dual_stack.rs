//! IPAM with both families and several blocks (issue 11 §2): one address per
//! family per id, blocks filled in order, the IPv6 subnet-router anycast
//! address never handed out, and state files of IPv4-only agents loading
//! unchanged.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use tortie_agent::ipam::{Family, Ipam, IpamError, Want};

fn blocks(s: &[&str]) -> Vec<IpNetwork> {
    s.iter().map(|b| b.parse().expect("test block")).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

#[test]
fn one_address_per_family_and_both_released_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pools = blocks(&["10.244.1.0/30", "fd00:10:244:1::/126"]);
    let mut ipam = Ipam::open(dir.path(), &pools, &[]).expect("open");
    let v4 = ipam.allocate("c", Family::V4).expect("v4");
    let v6 = ipam.allocate("c", Family::V6).expect("v6");
    assert_eq!(v4, ip("10.244.1.0"));
    // ::0 of the block is its subnet-router anycast address (RFC 4291 §2.6.1).
    assert_eq!(v6, ip("fd00:10:244:1::1"));
    assert_eq!(ipam.allocate("c", Family::V6).expect("again"), v6);
    assert!(matches!(
        ipam.allocate("c", ip("fd00:10:244:1::2")),
        Err(IpamError::Conflict { current, .. }) if current == v6
    ));
    assert_eq!(ipam.addresses("c"), [v4, v6]);
    assert_eq!(ipam.get("c", Family::V6), Some(v6));
    assert_eq!(ipam.owner(v6), Some("c"));
    assert_eq!(ipam.counts(), (2, 3 + 2));
    assert_eq!(ipam.release("c").expect("release"), [v4, v6]);
    assert!(ipam.addresses("c").is_empty());
}

#[test]
fn the_anycast_address_is_never_handed_out_nor_taken_statically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pools = blocks(&["fd00::/126", "10.0.0.0/32"]);
    let mut ipam = Ipam::open(dir.path(), &pools, &[]).expect("open");
    let got: Vec<IpAddr> = (0..3)
        .map(|i| ipam.allocate(&format!("c{i}"), Family::V6).expect("alloc"))
        .collect();
    assert_eq!(got, [ip("fd00::1"), ip("fd00::2"), ip("fd00::3")]);
    let err = ipam.allocate("c3", Family::V6).expect_err("full");
    assert!(
        err.to_string()
            .contains("address pool fd00::/126 is exhausted"),
        "{err}"
    );
    assert!(matches!(
        ipam.allocate("s", ip("fd00::")),
        Err(IpamError::Unusable { .. })
    ));
    for bad in ["::", "::1", "ff02::1"] {
        assert!(
            matches!(ipam.allocate("s", ip(bad)), Err(IpamError::Unusable { .. })),
            "{bad}"
        );
    }
    // A static IPv6 address outside the blocks is honoured (advertised as a /128).
    assert_eq!(
        ipam.allocate("s", ip("2001:db8:9::5")).expect("static"),
        ip("2001:db8:9::5")
    );
}

#[test]
fn several_blocks_of_a_family_fill_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pools = blocks(&["10.0.0.0/31", "fd00::/120", "10.0.9.0/31"]);
    let mut ipam = Ipam::open(dir.path(), &pools, &[]).expect("open");
    let got: Vec<IpAddr> = (0..4)
        .map(|i| ipam.allocate(&format!("c{i}"), Family::V4).expect("alloc"))
        .collect();
    assert_eq!(
        got,
        [
            ip("10.0.0.0"),
            ip("10.0.0.1"),
            ip("10.0.9.0"),
            ip("10.0.9.1")
        ]
    );
    assert!(matches!(
        ipam.allocate("c4", Family::V4),
        Err(IpamError::Exhausted { size: 4, .. })
    ));
    // Round robin over both blocks: a release in the first is reused after
    // the walk wraps, not before.
    ipam.release("c1").expect("release");
    assert_eq!(
        ipam.allocate("c5", Family::V4).expect("reuse"),
        ip("10.0.0.1")
    );
}

#[test]
fn a_family_without_a_block_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ipam = Ipam::open(dir.path(), &blocks(&["10.0.0.0/30"]), &[]).expect("open");
    let err = ipam.allocate("c", Family::V6).expect_err("no IPv6 block");
    assert!(matches!(err, IpamError::NoPool { family: Family::V6 }));
    assert_eq!(err.to_string(), "node.pod_cidr has no IPv6 block");
    assert_eq!(Want::from(ip("10.0.0.1")).family(), Family::V4);
}

#[test]
fn dual_stack_state_survives_a_restart_and_the_cursors_stay_per_family() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pools = blocks(&["10.244.1.0/29", "fd00:10:244:1::/120"]);
    let (a4, a6, b6) = {
        let mut ipam = Ipam::open(dir.path(), &pools, &[]).expect("open");
        let a4 = ipam.allocate("a", Family::V4).expect("a4");
        let a6 = ipam.allocate("a", Family::V6).expect("a6");
        let b6 = ipam.allocate("b", Family::V6).expect("b6");
        ipam.release("b").expect("release b");
        (a4, a6, b6)
    };
    let mut ipam = Ipam::open(dir.path(), &pools, &[]).expect("reopen");
    assert_eq!(ipam.addresses("a"), [a4, a6]);
    // The IPv6 cursor moved past b's address: the next one is new.
    let c6 = ipam.allocate("c", Family::V6).expect("c6");
    assert_ne!(c6, b6);
    assert_eq!(c6, ip("fd00:10:244:1::3"));
    assert_eq!(
        ipam.allocate("c", Family::V4).expect("c4"),
        ip("10.244.1.1")
    );
    let text = std::fs::read_to_string(dir.path().join("ipam.json")).expect("state");
    assert!(text.contains("\"version\": 3"), "{text}");
    assert!(text.contains("fd00:10:244:1::/120"), "{text}");
}

#[test]
fn an_ipv4_only_state_file_loads_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("ipam.json"),
        r#"{"version":2,"generation":3,"pool":"10.244.1.0/26","cursor":4,"allocations":[{"id":"old","address":"10.244.1.2"},{"id":"tortie:tunl0","address":"10.244.1.0"}]}"#,
    )
    .expect("write v2");
    let pools = blocks(&["10.244.1.0/26", "fd00:10:244:1::/120"]);
    let mut ipam = Ipam::open(dir.path(), &pools, &[]).expect("open v2");
    assert_eq!(ipam.addresses("old"), [ip("10.244.1.2")]);
    assert_eq!(ipam.owner(ip("10.244.1.0")), Some("tortie:tunl0"));
    // The IPv4 cursor is kept (same IPv4 block): the walk goes on at .4.
    assert_eq!(
        ipam.allocate("new", Family::V4).expect("new"),
        ip("10.244.1.4")
    );
    assert_eq!(
        ipam.allocate("new", Family::V6).expect("new6"),
        ip("fd00:10:244:1::1")
    );
}
