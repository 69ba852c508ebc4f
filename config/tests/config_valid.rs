//! Valid files: a full file resolves to exactly the expected struct, a minimal
//! one gets every documented default, and the shipped example parses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use tortie_config::{
    Advertise, Api, Bgp, Config, Dataplane, Encapsulation, Metrics, Node, NodeAddresses, Peer,
    State, load, parse_with_hostname,
};

fn ok(text: &str) -> Config {
    match parse_with_hostname(text, "t.toml", &|| Some("kernel-host".into())) {
        Ok(c) => c,
        Err(e) => panic!("rejected:\n{e}"),
    }
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

#[test]
fn a_full_file_resolves_to_the_expected_struct() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("tor2.key");
    std::fs::write(&key, "s3cret\r\n").expect("write key");
    let text = format!(
        r#"
[node]
name = "node-a"
address = "192.0.2.11/24"
asn = 4200000001
router_id = "10.0.0.1"
pod_cidr = "10.244.1.0/26"
cluster_id = "10.0.0.100"

[bgp]
listen_port = 1179
listen_address = "192.0.2.11"
hold_time = 30
connect_retry = 2
graceful_restart = false
restart_time = 300
advertise = "hosts"

[[peer]]
address = "192.0.2.1"
asn = 65001
name = "tor1"
port = 1790
password = "inline"
passive = true
ttl_security = true
max_prefixes = 1000
hold_time = 9

[[peer]]
address = "2001:db8::2"
asn = 4200000001
password_file = "{}"
ttl_security = 3
route_reflector_client = true

[dataplane]
encapsulation = "ipip-cross-subnet"
mtu = 1480
vxlan_vni = 77
vxlan_port = 8472
route_protocol = 200
nexthop_objects = false
veth_prefix = "cali"

[api]
socket = "/run/t/api.sock"

[metrics]
listen = "[::1]:9999"

[state]
dir = "/var/lib/t"
"#,
        key.display()
    );
    let expected = Config {
        node: Node {
            name: "node-a".into(),
            addresses: NodeAddresses::new(Some("192.0.2.11/24".parse().expect("cidr")), None)
                .expect("one address"),
            asn: 4_200_000_001,
            router_id: v4("10.0.0.1"),
            pod_cidrs: vec!["10.244.1.0/26".parse().expect("cidr")],
            cluster_id: v4("10.0.0.100"),
        },
        bgp: Bgp {
            listen_port: 1179,
            listen_address: IpAddr::V4(v4("192.0.2.11")),
            hold_time: 30,
            connect_retry: 2,
            graceful_restart: false,
            restart_time: 300,
            advertise: Advertise::Hosts,
        },
        peers: vec![
            Peer {
                address: "192.0.2.1".parse().expect("ip"),
                asn: 65001,
                name: "tor1".into(),
                port: 1790,
                password: Some(b"inline".to_vec()),
                passive: true,
                ttl_security: Some(1),
                route_reflector_client: false,
                max_prefixes: Some(1000),
                hold_time: Some(9),
                source_address: None,
                multihop: None,
                bfd: None,
                import_filter: None,
                export_filter: None,
                max_prefixes_restart: std::time::Duration::from_secs(60),
                families: vec![tortie_bgp::AddressFamily::IPV4_UNICAST],
            },
            Peer {
                address: "2001:db8::2".parse().expect("ip"),
                asn: 4_200_000_001,
                name: "2001:db8::2".into(),
                port: 179,
                password: Some(b"s3cret".to_vec()),
                passive: false,
                ttl_security: Some(3),
                route_reflector_client: true,
                max_prefixes: None,
                hold_time: None,
                source_address: None,
                multihop: None,
                bfd: None,
                import_filter: None,
                export_filter: None,
                max_prefixes_restart: std::time::Duration::from_secs(60),
                families: vec![tortie_bgp::AddressFamily::IPV4_UNICAST],
            },
        ],
        dataplane: Dataplane {
            encapsulation: Encapsulation::IpIpCrossSubnet,
            vxlan_vni: 77,
            vxlan_port: 8472,
            mtu: 1480,
            route_protocol: 200,
            veth_prefix: "cali".into(),
            nexthop_objects: false,
            nat_outgoing: false,
            cluster_cidrs: Vec::new(),
        },
        api: Api {
            socket: PathBuf::from("/run/t/api.sock"),
        },
        metrics: Metrics {
            listen: Some("[::1]:9999".parse().expect("sockaddr")),
        },
        state: State {
            dir: PathBuf::from("/var/lib/t"),
        },
        policy: tortie_config::Policy {
            filters: Vec::new(),
            ebgp_requires_policy: true,
            block_communities: Default::default(),
            host_communities: Default::default(),
        },
    };
    assert_eq!(ok(&text), expected);
    assert_eq!(
        expected.bgp.listen(),
        Some("192.0.2.11:1179".parse().expect("sa"))
    );
}

#[test]
fn a_minimal_file_gets_the_documented_defaults() {
    let c = ok("[node]\naddress = \"192.0.2.11/24\"\nasn = 64512\npod_cidr = \"10.244.1.0/26\"\n");
    assert_eq!(c.node.name, "kernel-host");
    assert_eq!(c.node.router_id, v4("192.0.2.11"));
    assert_eq!(c.node.cluster_id, v4("192.0.2.11"));
    assert_eq!(
        c.bgp,
        Bgp {
            listen_port: 179,
            listen_address: IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            hold_time: 90,
            connect_retry: 5,
            graceful_restart: true,
            restart_time: 120,
            advertise: Advertise::Block,
        }
    );
    assert_eq!(c.bgp.listen(), Some("[::]:179".parse().expect("sa")));
    assert!(c.peers.is_empty());
    assert_eq!(
        c.dataplane,
        Dataplane {
            encapsulation: Encapsulation::None,
            vxlan_vni: 4096,
            vxlan_port: 4789,
            mtu: 0,
            route_protocol: 149,
            veth_prefix: "tt".into(),
            nexthop_objects: true,
            nat_outgoing: false,
            cluster_cidrs: Vec::new(),
        }
    );
    assert_eq!(c.api.socket, Path::new("/run/tortie/tortie.sock"));
    assert_eq!(
        c.metrics.listen,
        Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 9642)))
    );
    assert_eq!(c.state.dir, Path::new("/var/lib/tortie"));
}

#[test]
fn switches_off_values() {
    let c = ok(
        "[node]\naddress = \"192.0.2.11/32\"\nasn = 1\npod_cidr = \"10.244.1.0/32\"\n\
         [bgp]\nlisten_port = 0\nhold_time = 0\nrestart_time = 0\n\
         [[peer]]\naddress = \"127.0.0.2\"\nasn = 2\nttl_security = false\nport = 1179\n\
         [metrics]\nlisten = \"\"\n",
    );
    assert_eq!(c.bgp.listen(), None);
    assert_eq!(c.bgp.hold_time, 0);
    assert_eq!(c.peers[0].ttl_security, None);
    assert_eq!(c.metrics.listen, None);
}

#[test]
fn default_name_is_the_kernel_hostname() {
    let text = "[node]\naddress = \"192.0.2.11/24\"\nasn = 64512\npod_cidr = \"10.244.1.0/26\"\n";
    let c = tortie_config::parse(text, "t.toml").expect("valid");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert_eq!(c.node.name, host.trim());
    let err = parse_with_hostname(text, "t.toml", &|| None).expect_err("no name at all");
    assert!(err.to_string().contains("node.name is not set"), "{err}");
}

#[test]
fn the_shipped_example_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tortie.toml");
    let c = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.node.name, "node-a");
    assert_eq!(c.peers.len(), 2);
    assert_eq!(c.peers[0].name, "tor1");
    assert_eq!(c.peers[0].max_prefixes, Some(100_000));
    assert_eq!(c.peers[1].asn, c.node.asn);
}

#[test]
fn reload_diff_sees_only_the_changed_peer() {
    let base = "[node]\naddress = \"192.0.2.11/24\"\nasn = 1\npod_cidr = \"10.244.1.0/26\"\n\
                [[peer]]\naddress = \"192.0.2.1\"\nasn = 2\n[[peer]]\naddress = \"192.0.2.2\"\nasn = 3\n";
    let a = ok(base);
    let b = ok(&base.replace("asn = 3", "asn = 4"));
    assert_eq!(a.peers[0], b.peers[0]);
    assert_ne!(a.peers[1], b.peers[1]);
    assert_eq!(a.node, b.node);
}
