//! A table of broken files: each must fail with the expected message at the
//! expected line:column, and a hint. Files with several problems must report
//! all of them.

mod common;

use tortie_config::{ConfigError, parse_with_hostname};

/// A valid [node] of 5 lines; cases append to it, so their lines start at 6.
const NODE: &str = "[node]\nname = \"n\"\naddress = \"192.0.2.11/24\"\nasn = 64512\npod_cidr = \"10.244.1.0/26\"\n";

fn errors(text: &str) -> ConfigError {
    match parse_with_hostname(text, "t.toml", &|| Some("host".into())) {
        Ok(c) => panic!("accepted:\n{text}\n→ {c:?}"),
        Err(e) => e,
    }
}

fn cases() -> Vec<common::Case> {
    let n = |rest: &str| format!("{NODE}{rest}");
    vec![
        ("toml syntax", "[node]\nname = node-a\n".into(), "TOML syntax", 2, 8),
        ("unknown top-level table", n("[bgpp]\nhold_time = 3\n"), "unknown table or key `bgpp`", 6, 2),
        ("[peer] instead of [[peer]]", n("[peer]\naddress = \"192.0.2.1\"\n"), "must be an array of tables", 6, 1),
        ("unknown key", n("[bgp]\nholdtime = 30\n"), "unknown key `holdtime` in [bgp]", 7, 1),
        ("wrong type", n("[bgp]\nhold_time = \"90\"\n"), "bgp.hold_time must be a number, not a string", 7, 13),
        ("asn as a string", "[node]\nname = \"n\"\naddress = \"192.0.2.11/24\"\nasn = \"64512\"\npod_cidr = \"10.244.1.0/26\"\n".into(), "node.asn must be a number, not a string", 4, 7),
        ("boolean as a string", n("[bgp]\ngraceful_restart = \"yes\"\n"), "bgp.graceful_restart must be true or false, not a string", 7, 20),
        ("string as a number", n("[[peer]]\naddress = 1\nasn = 65001\n"), "peer.address must be a string, not a number", 7, 11),
        ("array for a number", n("[bgp]\nhold_time = [90]\n"), "bgp.hold_time must be a number, not an array", 7, 13),
        ("integer beyond i64", n("[bgp]\nhold_time = 99999999999999999999\n"), "bgp.hold_time 99999999999999999999 is out of range: 0 or 3 to 65535", 7, 13),
        ("asn beyond i64", "[node]\nname = \"n\"\naddress = \"192.0.2.11/24\"\nasn = 18446744073709551616\npod_cidr = \"10.244.1.0/26\"\n".into(), "node.asn 18446744073709551616 is out of range: 1 to 4294967295", 4, 7),
        ("duplicate key", "[node]\nname = \"n\"\nname = \"m\"\naddress = \"192.0.2.11/24\"\nasn = 1\npod_cidr = \"10.244.1.0/26\"\n".into(), "`name` is set twice", 3, 1),
        ("duplicate table", n("[bgp]\nhold_time = 30\n[bgp]\nconnect_retry = 3\n"), "`bgp` is set twice", 8, 2),
        ("pod_cidr loopback", NODE.replace("10.244.1.0/26", "127.0.0.0/24"), "node.pod_cidr 127.0.0.0/24 overlaps 127.0.0.0/8, loopback", 5, 12),
        ("pod_cidr this network", NODE.replace("10.244.1.0/26", "0.0.0.0/26"), "overlaps 0.0.0.0/8", 5, 12),
        ("pod_cidr link-local", NODE.replace("10.244.1.0/26", "169.254.1.0/26"), "overlaps 169.254.0.0/16, link-local", 5, 12),
        ("pod_cidr multicast", NODE.replace("10.244.1.0/26", "224.1.0.0/26"), "overlaps 224.0.0.0/4, multicast", 5, 12),
        ("pod_cidr reserved", NODE.replace("10.244.1.0/26", "240.0.0.0/26"), "overlaps 240.0.0.0/4", 5, 12),
        ("pod_cidr covering reserved", NODE.replace("10.244.1.0/26", "0.0.0.0/0"), "overlaps 0.0.0.0/8", 5, 12),
        ("pod_cidr in the node's subnet", NODE.replace("10.244.1.0/26", "192.0.2.128/26"), "node.pod_cidr 192.0.2.128/26 overlaps the node's subnet 192.0.2.0/24", 5, 12),
        ("router_id is a peer", n("[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\nname = \"tor1\"\n").replace("asn = 64512\n", "asn = 64512\nrouter_id = \"192.0.2.1\"\n"), "node.router_id 192.0.2.1 is the address of peer `tor1`", 5, 13),
        ("missing node", "[bgp]\nhold_time = 90\n".into(), "the [node] table is missing", 1, 1),
        ("missing address", "[node]\nasn = 1\npod_cidr = \"10.244.1.0/26\"\n".into(), "node.address is missing", 1, 1),
        ("address without prefix", "[node]\nname = \"n\"\naddress = \"192.0.2.11\"\nasn = 1\npod_cidr = \"10.244.1.0/26\"\n".into(), "has no prefix length", 3, 11),
        ("bad address", "[node]\nname = \"n\"\naddress = \"192.0.2.300/24\"\nasn = 1\npod_cidr = \"10.244.1.0/26\"\n".into(), "not a valid IPv4 address", 3, 11),
        ("subnet instead of address", "[node]\nname = \"n\"\naddress = \"192.0.2.0/24\"\nasn = 1\npod_cidr = \"10.244.1.0/26\"\n".into(), "subnet's network address", 3, 11),
        ("router id missing, no usable address", "[node]\nname = \"n\"\naddress = \"nope\"\nasn = 1\npod_cidr = \"10.244.1.0/26\"\n".into(), "router_id is not set and node.address gives no usable address", 1, 1),
        ("router id zero", "[node]\nrouter_id = \"0.0.0.0\"\nname = \"n\"\naddress = \"192.0.2.11/24\"\nasn = 1\npod_cidr = \"10.244.1.0/26\"\n".into(), "node.router_id must not be 0.0.0.0", 2, 13),
        ("asn 0", "[node]\nname = \"n\"\naddress = \"192.0.2.11/24\"\nasn = 0\npod_cidr = \"10.244.1.0/26\"\n".into(), "node.asn 0 is not a valid AS number", 4, 7),
        ("asn too big", "[node]\nname = \"n\"\naddress = \"192.0.2.11/24\"\nasn = 4294967296\npod_cidr = \"10.244.1.0/26\"\n".into(), "node.asn 4294967296 is not a valid AS number", 4, 7),
        ("asn AS_TRANS", "[node]\nname = \"n\"\naddress = \"192.0.2.11/24\"\nasn = 23456\npod_cidr = \"10.244.1.0/26\"\n".into(), "23456 is not a valid AS number", 4, 7),
        ("pod_cidr host bits", "[node]\nname = \"n\"\naddress = \"192.0.2.11/24\"\nasn = 1\npod_cidr = \"10.244.1.5/26\"\n".into(), "has host bits set", 5, 12),
        ("pod_cidr bad", "[node]\nname = \"n\"\naddress = \"192.0.2.11/24\"\nasn = 1\npod_cidr = \"10.244.1.0/40\"\n".into(), "prefix length `40` is not a number from 0 to 32", 5, 12),
        ("pod_cidr contains node", "[node]\nname = \"n\"\naddress = \"192.0.2.11/24\"\nasn = 1\npod_cidr = \"192.0.2.0/26\"\n".into(), "contains the node's own address", 5, 12),
        ("pod_cidr too small for tunl0", n("[dataplane]\nencapsulation = \"ipip\"\n").replace("10.244.1.0/26", "10.244.1.0/32"), "leaves no IPv4 address for containers", 5, 12),
        ("pod_cidr contains peer", n("[[peer]]\naddress = \"10.244.1.7\"\nasn = 65001\n"), "peer 10.244.1.7 is inside node.pod_cidr", 7, 11),
        ("duplicate peer", n("[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\n[[peer]]\naddress = \"192.0.2.1\"\nasn = 65002\nname = \"x\"\n"), "peer 192.0.2.1 is listed twice", 10, 11),
        ("duplicate peer name", n("[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\nname = \"tor\"\n[[peer]]\naddress = \"192.0.2.2\"\nasn = 65001\nname = \"tor\"\n"), "peer name `tor` is used twice", 13, 8),
        ("peer is the node", n("[[peer]]\naddress = \"192.0.2.11\"\nasn = 65001\n"), "this node's own address", 7, 11),
        ("peer without address", n("[[peer]]\nasn = 65001\n"), "[[peer]] has no address", 6, 1),
        ("peer without asn", n("[[peer]]\naddress = \"192.0.2.1\"\n"), "peer.asn is missing", 6, 1),
        ("peer address with prefix", n("[[peer]]\naddress = \"192.0.2.1/24\"\nasn = 65001\n"), "is not an address (it has a prefix length)", 7, 11),
        ("password and password_file", n("[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\npassword = \"a\"\npassword_file = \"/etc/x\"\n"), "password and password_file are both set", 10, 17),
        ("unreadable password_file", n("[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\npassword_file = \"/nonexistent/tortie/key\"\n"), "cannot read password_file /nonexistent/tortie/key", 9, 17),
        ("relative password_file", n("[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\npassword_file = \"tor1.key\"\n"), "must be an absolute path", 9, 17),
        ("password too long", n(&format!("[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\npassword = \"{}\"\n", "k".repeat(81))), "password is 81 bytes long", 9, 12),
        ("ttl_security 0", n("[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\nttl_security = 0\n"), "ttl_security hop count 0 cannot be met", 9, 16),
        ("ttl_security 255", n("[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\nttl_security = 255\n"), "ttl_security hop count 255 cannot be met", 9, 16),
        ("ttl_security string", n("[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\nttl_security = \"yes\"\n"), "peer.ttl_security must be true, false or a number, not a string", 9, 16),
        ("peer port 0", n("[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\nport = 0\n"), "port 0 is out of range", 9, 8),
        ("peer port 65536", n("[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\nport = 65536\n"), "port 65536 is out of range", 9, 8),
        ("listen_port 70000", n("[bgp]\nlisten_port = 70000\n"), "bgp.listen_port 70000 is out of range", 7, 15),
        ("hold_time 2", n("[bgp]\nhold_time = 2\n"), "bgp.hold_time 2 is not a valid hold time", 7, 13),
        ("peer hold_time 1", n("[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\nhold_time = 1\n"), "hold_time 1 is not a valid hold time", 9, 13),
        ("restart_time 4096", n("[bgp]\nrestart_time = 4096\n"), "bgp.restart_time 4096 is out of range", 7, 16),
        ("connect_retry 0", n("[bgp]\nconnect_retry = 0\n"), "bgp.connect_retry 0 is out of range", 7, 17),
        ("advertise typo", n("[bgp]\nadvertise = \"host\"\n"), "bgp.advertise `host` is not one of", 7, 13),
        ("listen_address bad", n("[bgp]\nlisten_address = \"any\"\n"), "bgp.listen_address `any` is not a valid IP address", 7, 18),
        ("passive and not listening", n("[bgp]\nlisten_port = 0\n[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\npassive = true\n"), "is passive but bgp.listen_port = 0", 11, 11),
        ("rr client on eBGP", n("[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\nroute_reflector_client = true\n"), "cannot be a route reflector client", 9, 26),
        ("max_prefixes 0", n("[[peer]]\naddress = \"192.0.2.1\"\nasn = 65001\nmax_prefixes = 0\n"), "max_prefixes 0 is out of range", 9, 16),
        ("encapsulation typo", n("[dataplane]\nencapsulation = \"ipip-crosssubnet\"\n"), "dataplane.encapsulation `ipip-crosssubnet` is not one of", 7, 17),
        ("vxlan typo", n("[dataplane]\nencapsulation = \"vxlan-crosssubnet\"\n"), "is not one of \"none\", \"ipip\", \"ipip-cross-subnet\", \"vxlan\", \"vxlan-cross-subnet\"", 7, 17),
        ("vxlan_vni 0", n("[dataplane]\nvxlan_vni = 0\n"), "dataplane.vxlan_vni 0 is out of range", 7, 13),
        ("vxlan_vni 2^24", n("[dataplane]\nvxlan_vni = 16777216\n"), "dataplane.vxlan_vni 16777216 is out of range", 7, 13),
        ("vxlan_port 0", n("[dataplane]\nvxlan_port = 0\n"), "dataplane.vxlan_port 0 is out of range", 7, 14),
        ("route_protocol kernel", n("[dataplane]\nroute_protocol = 2\n"), "route_protocol 2 belongs to \"kernel\"", 7, 18),
        ("route_protocol bird", n("[dataplane]\nroute_protocol = 12\n"), "route_protocol 12 belongs to \"bird\"", 7, 18),
        ("route_protocol 256", n("[dataplane]\nroute_protocol = 256\n"), "route_protocol 256 is out of range", 7, 18),
        ("veth_prefix too long", n("[dataplane]\nveth_prefix = \"tortie\"\n"), "veth_prefix `tortie` must have 1 to 4 characters", 7, 15),
        ("veth_prefix bad chars", n("[dataplane]\nveth_prefix = \"t/\"\n"), "has characters not allowed in interface names", 7, 15),
        ("mtu too small", n("[dataplane]\nmtu = 500\n"), "dataplane.mtu 500 is out of range", 7, 7),
        ("mtu too big", n("[dataplane]\nmtu = 65536\n"), "dataplane.mtu 65536 is out of range", 7, 7),
        ("metrics.listen unparsable", n("[metrics]\nlisten = \"localhost:9642\"\n"), "metrics.listen `localhost:9642` is not an address:port", 7, 10),
        ("metrics.listen port 0", n("[metrics]\nlisten = \"127.0.0.1:0\"\n"), "has port 0", 7, 10),
        ("api.socket relative", n("[api]\nsocket = \"tortie.sock\"\n"), "api.socket `tortie.sock` must be an absolute path", 7, 10),
        ("api.socket too long", n(&format!("[api]\nsocket = \"/{}\"\n", "s".repeat(120))), "unix socket paths have at most 107", 7, 10),
        ("state.dir relative", n("[state]\ndir = \"state\"\n"), "state.dir `state` must be an absolute path", 7, 7),
        ("node.name empty", "[node]\nname = \"\"\naddress = \"192.0.2.11/24\"\nasn = 1\npod_cidr = \"10.244.1.0/26\"\n".into(), "node.name `` is empty", 2, 8),
        ("section as a value", format!("api = 5\n{NODE}"), "`api` must be a table", 1, 7),
    ]
}

#[test]
fn every_broken_file_is_reported_at_its_position_with_a_hint() {
    common::assert_refused(cases());
}

#[test]
fn all_problems_are_reported_not_just_the_first() {
    let text = format!(
        "{NODE}[bgp]\nholdtime = 30\nhold_time = 2\nadvertise = 7\nbogus = 1\n[[peer]]\naddress = \"192.0.2.1\"\nasn = 0\nport = 0\n[dataplane]\nmtu = 1\n"
    );
    let err = errors(&text);
    let messages: Vec<&str> = err.problems.iter().map(|p| p.message.as_str()).collect();
    for expected in [
        "unknown key `holdtime`",
        "unknown key `bogus`",
        "bgp.advertise must be a string, not a number",
        "bgp.hold_time 2",
        "peer.asn 0",
        "port 0",
        "dataplane.mtu 1",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "{expected} missing from {messages:#?}"
        );
    }
    assert_eq!(err.problems.len(), 7, "{err}");
}

#[test]
fn display_is_file_line_col_error_then_hint() {
    let text = format!("{NODE}[bgp]\nholdtime = 30\n");
    let shown = errors(&text).to_string();
    assert_eq!(
        shown,
        "t.toml:7:1: error: unknown key `holdtime` in [bgp]\n  hint: did you mean `hold_time`?"
    );
}

#[test]
fn unreadable_config_file_is_one_problem_naming_the_file() {
    let err = tortie_config::load(std::path::Path::new("/nonexistent/tortie.toml"))
        .expect_err("missing file accepted");
    assert_eq!(err.problems.len(), 1);
    assert!(
        err.to_string()
            .starts_with("/nonexistent/tortie.toml: error: cannot read the configuration"),
        "{err}"
    );
}

/// One message per problem: a wrongly typed value is not also "missing", and
/// no message shows serde's or Rust's type names.
#[test]
fn a_type_error_is_one_message_in_operator_words() {
    let text = "[node]\nname = \"n\"\naddress = 7\nasn = \"64512\"\npod_cidr = true\n[[peer]]\naddress = [1]\nasn = \"65001\"\n";
    let err = errors(text);
    let shown: Vec<String> = err
        .problems
        .iter()
        .map(|p| format!("{}:{}: {}", p.line, p.column, p.message))
        .collect();
    assert_eq!(
        shown,
        [
            "3:11: node.address must be a string or an array of strings, not a number",
            "4:7: node.asn must be a number, not a string",
            "5:12: node.pod_cidr must be a string or an array of strings, not a boolean",
            "7:11: peer.address must be a string, not an array",
            "8:7: peer.asn must be a number, not a string",
        ],
        "{err}"
    );
    for word in ["i64", "i128", "invalid type", "missing", "expected"] {
        assert!(!err.to_string().contains(word), "{word} in:\n{err}");
    }
}
