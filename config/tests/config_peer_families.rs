//! `peer.families`: the default (the node's block families), explicit lists,
//! and every refusal at its file:line:column with a hint.

mod common;

use tortie_bgp::AddressFamily;
use tortie_config::parse_with_hostname;

const V4: AddressFamily = AddressFamily::IPV4_UNICAST;
const V6: AddressFamily = AddressFamily::IPV6_UNICAST;

const NODE_V4: &str = "[node]\nname = \"n\"\naddress = \"192.0.2.11/24\"\nasn = 64512\npod_cidr = \"10.244.1.0/26\"\n";
const NODE_DUAL: &str = "[node]\nname = \"n\"\naddress = [\"192.0.2.11/24\", \"2001:db8:1::11/64\"]\nasn = 64512\npod_cidr = [\"10.244.1.0/26\", \"fd00:10:244:1::/120\"]\n";
/// A dual-stack node with only an IPv4 block.
const NODE_DUAL_V4_BLOCK: &str = "[node]\nname = \"n\"\naddress = [\"192.0.2.11/24\", \"2001:db8:1::11/64\"]\nasn = 64512\npod_cidr = \"10.244.1.0/26\"\n";
const NODE_V6: &str = "[node]\nname = \"n\"\naddress = \"2001:db8:1::11/64\"\nrouter_id = \"192.0.2.11\"\nasn = 64512\npod_cidr = \"fd00:10:244:1::/120\"\n";

/// Lines 6–8 (7–9 for NODE_V6): a peer; keys appended follow.
fn file(node: &str, peer: &str, keys: &str) -> String {
    format!("{node}[[peer]]\naddress = \"{peer}\"\nasn = 65001\n{keys}")
}

fn families(text: &str) -> Vec<AddressFamily> {
    match parse_with_hostname(text, "t.toml", &|| None) {
        Ok(c) => c.peers[0].families.clone(),
        Err(e) => panic!("rejected:\n{e}"),
    }
}

#[test]
fn defaults_follow_the_blocks_and_lists_are_kept() {
    let table: [(&str, &str, &str, &[AddressFamily]); 8] = [
        (NODE_V4, "198.51.100.1", "", &[V4]),
        (NODE_DUAL, "198.51.100.1", "", &[V4, V6]),
        (NODE_DUAL, "2001:db8:1::1", "", &[V4, V6]),
        (NODE_DUAL_V4_BLOCK, "2001:db8:1::1", "", &[V4]),
        (NODE_V6, "2001:db8:1::1", "", &[V6]),
        // IPv6 routes over an IPv4 session, IPv4 first whatever the order.
        (
            NODE_DUAL,
            "198.51.100.1",
            "families = [\"ipv6\", \"ipv4\"]\n",
            &[V4, V6],
        ),
        (NODE_DUAL, "198.51.100.1", "families = [\"ipv6\"]\n", &[V6]),
        // A node with an IPv6 address but no IPv6 block may still take IPv6 routes.
        (
            NODE_DUAL_V4_BLOCK,
            "198.51.100.1",
            "families = [\"ipv4\", \"ipv6\"]\n",
            &[V4, V6],
        ),
    ];
    for (node, peer, keys, want) in table {
        assert_eq!(
            families(&file(node, peer, keys)),
            want.to_vec(),
            "{node} {peer} {keys}"
        );
    }
}

#[test]
fn refusals_name_the_entry_position_and_a_hint() {
    let cases: &[(&str, &str, &'static str, &'static str, usize, usize)] = &[
        (
            NODE_V4,
            "198.51.100.1",
            "families = [\"ipv7\"]\n",
            "`ipv7` is not one of",
            9,
            13,
        ),
        (
            NODE_V4,
            "198.51.100.1",
            "families = [\"ipv4\", \"ipv4\"]\n",
            "lists \"ipv4\" twice",
            9,
            21,
        ),
        (
            NODE_V4,
            "198.51.100.1",
            "families = []\n",
            "families is empty",
            9,
            12,
        ),
        (
            NODE_V4,
            "198.51.100.1",
            "families = [\"ipv4\", \"ipv6\"]\n",
            "has \"ipv6\" but this node has no IPv6 address",
            9,
            21,
        ),
        (
            NODE_V6,
            "2001:db8:1::1",
            "families = [\"ipv4\"]\n",
            "has \"ipv4\" but this node has no IPv4 address",
            10,
            13,
        ),
        (
            NODE_V4,
            "198.51.100.1",
            "families = \"ipv4\"\n",
            "peer.families",
            9,
            12,
        ),
    ];
    let cases = cases
        .iter()
        .map(|&(node, peer, keys, want, line, col)| (keys, file(node, peer, keys), want, line, col))
        .collect();
    common::assert_refused(cases);
}

#[test]
fn a_passive_peer_needs_a_listener_of_its_family() {
    // The default listener `::` takes both families.
    let ok = file(NODE_DUAL, "2001:db8:1::1", "passive = true\n");
    assert_eq!(families(&ok), vec![V4, V6]);
    let cases = [
        (
            "0.0.0.0",
            "2001:db8:1::1",
            "takes no connection from an IPv6 address",
        ),
        (
            "2001:db8:1::11",
            "198.51.100.1",
            "takes no connection from an IPv4 address",
        ),
    ]
    .map(|(listen, peer, message)| {
        let node = format!("{NODE_DUAL}[bgp]\nlisten_address = \"{listen}\"\n");
        (
            listen,
            file(&node, peer, "passive = true\n"),
            message,
            11,
            11,
        )
    });
    common::assert_refused(cases.into());
}
