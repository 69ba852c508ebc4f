//! `dataplane.nat_outgoing` and `dataplane.cluster_cidrs`: defaults, values of
//! both families, and every refusal at its file:line:column with a hint.

mod common;

use tortie_config::parse_with_hostname;

const NODE: &str = "[node]\nname = \"n\"\naddress = \"192.0.2.11/24\"\nasn = 64512\npod_cidr = \"10.244.1.0/26\"\n";

/// Keys appended start at line 7 (line 6 is `[dataplane]`).
fn file(keys: &str) -> String {
    format!("{NODE}[dataplane]\n{keys}")
}

#[test]
fn off_by_default_and_both_families_accepted() {
    let c = parse_with_hostname(&file(""), "t.toml", &|| None).unwrap();
    assert!(!c.dataplane.nat_outgoing);
    assert!(c.dataplane.cluster_cidrs.is_empty());
    let c = parse_with_hostname(
        &file("nat_outgoing = true\ncluster_cidrs = [\"10.244.0.0/16\", \"fd10:244::/48\"]\n"),
        "t.toml",
        &|| None,
    )
    .unwrap();
    assert!(c.dataplane.nat_outgoing);
    let want: Vec<ipnetwork::IpNetwork> = vec![
        "10.244.0.0/16".parse().unwrap(),
        "fd10:244::/48".parse().unwrap(),
    ];
    assert_eq!(c.dataplane.cluster_cidrs, want);
    // CIDRs without NAT are fine (other features read them).
    let c = parse_with_hostname(
        &file("cluster_cidrs = [\"10.0.0.0/8\"]\n"),
        "t.toml",
        &|| None,
    )
    .unwrap();
    assert!(!c.dataplane.nat_outgoing);
}

#[test]
fn refusals_name_the_key_position_and_a_hint() {
    let cases = &[
        (
            "nat_outgoing = true\n",
            "nat_outgoing is on but dataplane.cluster_cidrs is not set",
            7,
            16,
        ),
        (
            "nat_outgoing = true\ncluster_cidrs = []\n",
            "cluster_cidrs is empty",
            8,
            17,
        ),
        (
            "cluster_cidrs = [\"10.244.0.0/16\", \"nope/8\"]\n",
            "entry `nope/8` is not a CIDR",
            7,
            35,
        ),
        (
            "cluster_cidrs = [\"10.244.0.0\"]\n",
            "has no prefix length",
            7,
            18,
        ),
        (
            "cluster_cidrs = [\"10.244.3.0/16\"]\n",
            "has host bits set",
            7,
            18,
        ),
        (
            "nat_outgoing = true\ncluster_cidrs = [\"10.96.0.0/12\", \"fd10::/48\"]\n",
            "node.pod_cidr 10.244.1.0/26 is not inside any",
            8,
            17,
        ),
        (
            "nat_outgoing = \"yes\"\n",
            "dataplane.nat_outgoing must be true or false",
            7,
            16,
        ),
    ];
    common::assert_keys_refused(file, cases);
}
