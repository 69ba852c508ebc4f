//! `node.address` and `node.pod_cidr` as arrays (issue 11 §2): the resolved
//! dual-stack model, and every bad mix refused at its entry's line:column.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use ipnetwork::IpNetwork;
use tortie_config::{Config, ConfigError, parse_with_hostname};

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_with_hostname(text, "t.toml", &|| Some("host".into()))
}

fn net(s: &str) -> IpNetwork {
    s.parse().expect("test network")
}

const DUAL: &str = "[node]\naddress = [\"192.0.2.11/24\", \"2001:db8:1::11/64\"]\nasn = 64512\npod_cidr = [\"10.244.1.0/26\", \"fd00:10:244:1::/120\", \"10.244.9.0/28\"]\n";

#[test]
fn dual_stack_node_resolves_both_families_in_order() {
    let c = parse(DUAL).expect("valid");
    let a = c.node.addresses;
    assert_eq!(a.v4().map(IpNetwork::V4), Some(net("192.0.2.11/24")));
    assert_eq!(a.v6().map(IpNetwork::V6), Some(net("2001:db8:1::11/64")));
    assert_eq!(a.primary(), net("192.0.2.11/24"));
    assert_eq!(
        c.node.pod_cidrs,
        [
            net("10.244.1.0/26"),
            net("fd00:10:244:1::/120"),
            net("10.244.9.0/28")
        ]
    );
    assert_eq!(c.node.blocks_v4().count(), 2);
    assert_eq!(c.node.blocks_v6().count(), 1);
    assert_eq!(c.node.router_id, Ipv4Addr::new(192, 0, 2, 11));
    assert!(c.node.in_blocks("fd00:10:244:1::5".parse().expect("ip")));
    assert!(a.on_subnet("2001:db8:1::1".parse().expect("ip")));
    assert!(!a.on_subnet("2001:db8:2::1".parse().expect("ip")));
}

#[test]
fn a_single_string_is_a_one_entry_list() {
    let c = parse("[node]\naddress = \"192.0.2.11/24\"\nasn = 1\npod_cidr = \"10.244.1.0/26\"\n")
        .expect("valid");
    assert_eq!(
        c.node.addresses.iter().collect::<Vec<_>>(),
        [net("192.0.2.11/24")]
    );
    assert_eq!(c.node.addresses.v6(), None);
    assert_eq!(c.node.pod_cidrs, [net("10.244.1.0/26")]);
}

#[test]
fn ipv6_only_node_with_router_id() {
    let text = "[node]\naddress = \"2001:db8:1::11/64\"\nrouter_id = \"192.0.2.11\"\nasn = 1\npod_cidr = \"fd00:10:244:1::/120\"\n[[peer]]\naddress = \"2001:db8:1::1\"\nasn = 65001\n";
    let c = parse(text).expect("valid");
    assert_eq!(c.node.addresses.primary(), net("2001:db8:1::11/64"));
    assert_eq!(c.node.cluster_id, Ipv4Addr::new(192, 0, 2, 11));
    assert_eq!(
        c.peers[0].address,
        "2001:db8:1::1".parse::<IpAddr>().expect("ip")
    );
}

#[test]
fn a_block_of_a_family_without_node_address_is_fine_without_peers() {
    let text = "[node]\naddress = \"192.0.2.11/24\"\nasn = 1\npod_cidr = [\"10.244.1.0/26\", \"fd00:10:244:1::/120\"]\n";
    assert!(parse(text).is_ok());
}

fn cases() -> Vec<common::Case> {
    let node = |address: &str, pod_cidr: &str, rest: &str| {
        format!("[node]\nname = \"n\"\naddress = {address}\nasn = 1\npod_cidr = {pod_cidr}\n{rest}")
    };
    let peer = "[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\n";
    let v4 = "\"192.0.2.11/24\"";
    let dual = "[\"192.0.2.11/24\", \"2001:db8:1::11/64\"]";
    let block = "\"10.244.1.0/26\"";
    vec![
        (
            "two IPv4 addresses",
            node("[\"192.0.2.11/24\", \"198.51.100.11/24\"]", block, ""),
            "node.address lists a second IPv4 address `198.51.100.11/24`",
            3,
            29,
        ),
        (
            "two IPv6 addresses",
            node("[\"2001:db8:1::11/64\", \"2001:db8:2::11/64\"]", block, ""),
            "second IPv6 address",
            3,
            33,
        ),
        (
            "empty address list",
            node("[]", block, ""),
            "node.address is an empty array",
            3,
            11,
        ),
        (
            "empty block list",
            node(v4, "[]", ""),
            "node.pod_cidr is an empty array",
            5,
            12,
        ),
        (
            "address entry not a string",
            node("[\"192.0.2.11/24\", 7]", block, ""),
            "node.address must be a string",
            3,
            29,
        ),
        (
            "IPv6 address without prefix",
            node("[\"192.0.2.11/24\", \"2001:db8:1::11\"]", block, ""),
            "`2001:db8:1::11` has no prefix length",
            3,
            29,
        ),
        (
            "IPv6 prefix too long",
            node("\"2001:db8:1::11/129\"", block, ""),
            "prefix length `129` is not a number from 0 to 128",
            3,
            11,
        ),
        (
            "link-local node address",
            node("[\"192.0.2.11/24\", \"fe80::11/64\"]", block, ""),
            "fe80::11 is link-local",
            3,
            29,
        ),
        (
            "loopback IPv6 node address",
            node("[\"192.0.2.11/24\", \"::1/128\"]", block, ""),
            "::1 cannot be a node's address",
            3,
            29,
        ),
        (
            "subnet-router anycast node address",
            node("[\"192.0.2.11/24\", \"2001:db8:1::/64\"]", block, ""),
            "subnet-router anycast",
            3,
            29,
        ),
        (
            "no IPv4 address, no router_id",
            node("\"2001:db8:1::11/64\"", "\"fd00:10:244:1::/120\"", ""),
            "node.router_id is required: node.address has no IPv4 address",
            1,
            1,
        ),
        (
            "IPv6 block without IPv6 address, with a peer",
            node(v4, "[\"10.244.1.0/26\", \"fd00:10:244:1::/120\"]", peer),
            "node.pod_cidr fd00:10:244:1::/120 is an IPv6 block but node.address has no IPv6 address",
            5,
            30,
        ),
        (
            "IPv4 block without IPv4 address, with a peer",
            node(
                "\"2001:db8:1::11/64\"",
                "[\"10.244.1.0/26\"]",
                "[[peer]]\naddress = \"2001:db8:1::1\"\nasn = 65001\n",
            )
            .replace("asn = 1\n", "asn = 1\nrouter_id = \"192.0.2.11\"\n"),
            "is an IPv4 block but node.address has no IPv4 address",
            6,
            13,
        ),
        (
            "overlapping IPv4 blocks",
            node(v4, "[\"10.244.1.0/26\", \"10.244.1.32/27\"]", ""),
            "node.pod_cidr block 10.244.1.32/27 overlaps block `10.244.1.0/26`",
            5,
            30,
        ),
        (
            "overlapping IPv6 blocks",
            node(
                dual,
                "[\"fd00:10:244:1::/64\", \"fd00:10:244:1::100/120\"]",
                "",
            ),
            "overlaps block `fd00:10:244:1::/64`",
            5,
            35,
        ),
        (
            "mixed-family overlap",
            node(dual, "[\"10.244.1.0/26\", \"::ffff:10.244.1.0/122\"]", ""),
            "an IPv4-mapped IPv6 block covers the same IPv4 addresses",
            5,
            30,
        ),
        (
            "IPv6 block host bits",
            node(dual, "[\"fd00:10:244:1::5/120\"]", ""),
            "has host bits set",
            5,
            13,
        ),
        (
            "IPv6 block unspecified",
            node(dual, "[\"::/128\"]", ""),
            "overlaps ::/128, the unspecified address",
            5,
            13,
        ),
        (
            "IPv6 block covering everything",
            node(dual, "[\"::/0\"]", ""),
            "overlaps ::/128",
            5,
            13,
        ),
        (
            "IPv6 block loopback",
            node(dual, "[\"::1/128\"]", ""),
            "overlaps ::1/128, loopback",
            5,
            13,
        ),
        (
            "IPv6 block link-local",
            node(dual, "[\"fe80::/64\"]", ""),
            "overlaps fe80::/10, link-local",
            5,
            13,
        ),
        (
            "IPv6 block multicast",
            node(dual, "[\"ff02::/120\"]", ""),
            "overlaps ff00::/8, multicast",
            5,
            13,
        ),
        (
            "IPv6 block /128",
            node(dual, "[\"fd00:10:244:1::/128\"]", ""),
            "leaves no address for containers",
            5,
            13,
        ),
        (
            "IPv6 block contains the node",
            node(dual, "[\"2001:db8:1::/120\"]", ""),
            "contains the node's own address 2001:db8:1::11",
            5,
            13,
        ),
        (
            "IPv6 block in the node's subnet",
            node(dual, "[\"2001:db8:1::1:0/120\"]", ""),
            "overlaps the node's subnet 2001:db8:1::/64",
            5,
            13,
        ),
        (
            "second IPv4 block in reserved space",
            node(v4, "[\"10.244.1.0/26\", \"127.0.0.0/24\"]", ""),
            "overlaps 127.0.0.0/8, loopback",
            5,
            30,
        ),
        (
            "IPv6 peer is the node",
            node(
                dual,
                block,
                "[[peer]]\naddress = \"2001:db8:1::11\"\nasn = 65001\n",
            ),
            "this node's own address",
            7,
            11,
        ),
        (
            "IPv6 peer inside a block",
            node(
                dual,
                "[\"10.244.1.0/26\", \"fd00:10:244:1::/120\"]",
                "[[peer]]\naddress = \"fd00:10:244:1::7\"\nasn = 65001\n",
            ),
            "peer fd00:10:244:1::7 is inside node.pod_cidr fd00:10:244:1::/120",
            7,
            11,
        ),
        (
            "IPv6 block outside cluster_cidrs",
            node(
                dual,
                "[\"10.244.1.0/26\", \"fd00:10:244:1::/120\"]",
                "[dataplane]\nnat_outgoing = true\ncluster_cidrs = [\"10.244.0.0/16\"]\n",
            ),
            "node.pod_cidr fd00:10:244:1::/120 is not inside any",
            8,
            17,
        ),
    ]
}

#[test]
fn every_bad_mix_is_refused_at_its_entry() {
    common::assert_refused(cases());
}
