//! The `[[peer]]` transport keys: `source_address`, `multihop`, `bfd`,
//! `bfd_interval_ms`, `bfd_multiplier` — defaults, values, and every refusal
//! at its file:line:column with a hint.

mod common;

use tortie_config::{Bfd, parse_with_hostname};

const NODE: &str = "[node]\nname = \"n\"\naddress = \"192.0.2.11/24\"\nasn = 64512\npod_cidr = \"10.244.1.0/26\"\n";
/// Lines 6–8: a peer; keys appended start at line 9.
const PEER: &str = "[[peer]]\naddress = \"198.51.100.1\"\nasn = 65001\n";

fn file(keys: &str) -> String {
    format!("{NODE}{PEER}{keys}")
}

#[test]
fn defaults_and_values() {
    let c = parse_with_hostname(&file(""), "t.toml", &|| None).unwrap();
    let p = &c.peers[0];
    assert_eq!((p.source_address, p.multihop, p.bfd), (None, None, None));
    let c = parse_with_hostname(
        &file("source_address = \"198.51.100.11\"\nmultihop = 1\nbfd = true\n"),
        "t.toml",
        &|| None,
    )
    .unwrap();
    let p = &c.peers[0];
    assert_eq!(p.source_address, Some("198.51.100.11".parse().unwrap()));
    assert_eq!(p.multihop, Some(1));
    assert_eq!(
        p.bfd,
        Some(Bfd {
            interval_ms: 300,
            multiplier: 3
        })
    );
    let c = parse_with_hostname(
        &file("bfd = true\nbfd_interval_ms = 100\nbfd_multiplier = 5\n"),
        "t.toml",
        &|| None,
    )
    .unwrap();
    assert_eq!(
        c.peers[0].bfd,
        Some(Bfd {
            interval_ms: 100,
            multiplier: 5
        })
    );
    // eBGP multihop without BFD.
    let c = parse_with_hostname(&file("multihop = 4\n"), "t.toml", &|| None).unwrap();
    assert_eq!(c.peers[0].multihop, Some(4));
}

#[test]
fn refusals_name_the_key_position_and_a_hint() {
    let cases = &[
        ("source_address = \"nope\"\n", "peer.source_address", 9, 18),
        (
            "source_address = \"0.0.0.0\"\n",
            "cannot be a session's source",
            9,
            18,
        ),
        (
            "source_address = \"2001:db8::1\"\n",
            "not of the peer's address family",
            9,
            18,
        ),
        ("multihop = 0\n", "multihop 0 is not a TTL", 9, 12),
        ("multihop = 256\n", "multihop 256 is not a TTL", 9, 12),
        (
            "multihop = 2\nttl_security = 2\n",
            "multihop and ttl_security are both set",
            9,
            12,
        ),
        (
            "bfd = true\nbfd_interval_ms = 5\n",
            "bfd_interval_ms 5 is out of range",
            10,
            19,
        ),
        (
            "bfd = true\nbfd_multiplier = 0\n",
            "bfd_multiplier 0 is out of range",
            10,
            18,
        ),
        (
            "bfd_multiplier = 3\n",
            "bfd_multiplier is set but BFD is off",
            9,
            18,
        ),
        (
            "bfd = false\nbfd_interval_ms = 300\n",
            "bfd_interval_ms is set but BFD is off",
            10,
            19,
        ),
        ("bfd = true\nmultihop = 3\n", "BFD is single-hop here", 9, 7),
        (
            "bfd = true\nttl_security = 2\n",
            "BFD is single-hop here",
            9,
            7,
        ),
        ("bfd = \"yes\"\n", "peer.bfd must be true or false", 9, 7),
    ];
    common::assert_keys_refused(file, cases);
}
