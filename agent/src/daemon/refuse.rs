//! Which static addresses (`tortie attach --ip`, CNI `IP=`) the agent
//! refuses, because a container holding them would cut the node's own
//! routing: a /32 or /128 route to a container for the node's address or a
//! peer's takes that traffic away from the host (issue 14 §1: `--ip` of the
//! BGP peer brought the session down). Both families, one table.
//!
//! Data flow: the attach handler gathers a [`Forbidden`] (config, the host's
//! interface addresses, the Loc-RIB prefixes learned from peers that contain
//! the address) and
//! calls [`check`], a pure function, before anything is allocated or created.
//! A free address outside our blocks that none of these rules hits stays
//! allowed (the agent then advertises its /32 or /128).

use std::net::IpAddr;

use ipnetwork::IpNetwork;

/// Ranges no container may hold, with the reason given to the caller
/// (RFC 6890; RFC 4291 §2.4 for IPv6).
const RESERVED: [(&str, &str); 10] = [
    ("0.0.0.0/8", "\"this network\" (RFC 791)"),
    ("127.0.0.0/8", "loopback"),
    (
        "169.254.0.0/16",
        "link-local (holds the containers' gateway 169.254.1.1)",
    ),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (RFC 1112, broadcast included)"),
    ("::/128", "the unspecified address"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    (
        "fe80::/10",
        "link-local (holds the containers' gateway fe80::ecee:eeff:feee:eeee)",
    ),
    ("ff00::/8", "multicast"),
];

/// What a static address must stay clear of.
#[derive(Clone, Debug, Default)]
pub struct Forbidden {
    /// The node's addresses with their subnets (`node.address` and every
    /// address on the host's interfaces), both families.
    pub node: Vec<IpNetwork>,
    /// Configured peers' addresses.
    pub peers: Vec<IpAddr>,
    /// Prefixes learned from peers (best paths), with the peer they came
    /// from.
    pub learned: Vec<(IpNetwork, IpAddr)>,
    /// Our blocks' shortest prefix length per family (IPv4, IPv6): learned
    /// prefixes this long or longer are other nodes' blocks and containers;
    /// shorter ones (a default route or an aggregate from a router) do not
    /// make an address taken.
    pub block_len: [u8; 2],
}

/// `Err(reason)` when `ip` may not be given to a container.
pub fn check(ip: IpAddr, f: &Forbidden) -> Result<(), String> {
    for (net, what) in RESERVED {
        if net.parse::<IpNetwork>().is_ok_and(|n| n.contains(ip)) {
            return Err(format!("{ip} is in {net}, {what}"));
        }
    }
    for n in f.node.iter().filter(|n| n.is_ipv4() == ip.is_ipv4()) {
        if n.ip() == ip {
            return Err(format!("{ip} is this node's own address"));
        }
        match n {
            // /31 and /32 have no network or broadcast address (RFC 3021).
            IpNetwork::V4(v4) if v4.prefix() < 31 => {
                if IpAddr::V4(v4.network()) == ip {
                    return Err(format!(
                        "{ip} is the network address of the node's subnet {n}"
                    ));
                }
                if IpAddr::V4(v4.broadcast()) == ip {
                    return Err(format!(
                        "{ip} is the broadcast address of the node's subnet {n}"
                    ));
                }
            }
            IpNetwork::V6(v6) if v6.prefix() < 127 && IpAddr::V6(v6.network()) == ip => {
                return Err(format!(
                    "{ip} is the subnet-router anycast address of the node's subnet {n} (RFC 4291 §2.6.1)"
                ));
            }
            _ => {}
        }
    }
    if f.peers.contains(&ip) {
        return Err(format!("{ip} is a configured BGP peer's address"));
    }
    let block_len = f.block_len[usize::from(ip.is_ipv6())];
    if let Some((net, peer)) = f
        .learned
        .iter()
        .find(|(n, _)| n.prefix() >= block_len && n.contains(ip))
    {
        return Err(format!(
            "{ip} is inside {net}, a block learned from {peer} (another node's containers)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals() {
        let f = Forbidden {
            node: vec![
                "192.0.2.11/24".parse().unwrap(),
                "198.51.100.7/31".parse().unwrap(),
            ],
            peers: vec![
                "192.0.2.12".parse().unwrap(),
                "2001:db8::1".parse().unwrap(),
            ],
            learned: vec![
                (
                    "10.244.2.0/26".parse().unwrap(),
                    "192.0.2.12".parse().unwrap(),
                ),
                (
                    "10.99.0.7/32".parse().unwrap(),
                    "192.0.2.12".parse().unwrap(),
                ),
                // A router's default route and aggregate: not a node's block.
                ("0.0.0.0/0".parse().unwrap(), "192.0.2.1".parse().unwrap()),
                ("10.0.0.0/8".parse().unwrap(), "192.0.2.1".parse().unwrap()),
            ],
            block_len: [26, 120],
        };
        let refused = |s: &str| check(s.parse().unwrap(), &f).unwrap_err();
        let mut f6 = f.clone();
        f6.node.push("2001:db8:1::11/64".parse().unwrap());
        f6.learned.push((
            "fd00:10:244:2::/120".parse().unwrap(),
            "2001:db8:1::12".parse().unwrap(),
        ));
        f6.learned
            .push(("::/0".parse().unwrap(), "2001:db8:1::1".parse().unwrap()));
        for (ip, why) in [
            ("2001:db8::1", "peer"),
            ("2001:db8:1::11", "own address"),
            ("2001:db8:1::", "subnet-router anycast"),
            ("fe80::ecee:eeff:feee:eeee", "gateway"),
            ("fe80::1", "link-local"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("ff02::1", "multicast"),
            ("::ffff:10.0.0.1", "IPv4-mapped"),
            ("fd00:10:244:2::9", "learned from 2001:db8:1::12"),
        ] {
            let e = check(ip.parse().unwrap(), &f6).unwrap_err();
            assert!(e.contains(why), "{ip}: {e}");
        }
        for ip in ["fd00:10:244:1::5", "2001:db8:1::77", "2001:db8:9::1"] {
            assert_eq!(check(ip.parse().unwrap(), &f6), Ok(()), "{ip}");
        }
        let table = [
            ("192.0.2.11", "own address"),
            ("192.0.2.0", "network address"),
            ("192.0.2.255", "broadcast address"),
            ("198.51.100.7", "own address"),
            ("192.0.2.12", "peer"),
            ("169.254.1.1", "gateway"),
            ("169.254.9.9", "link-local"),
            ("127.0.0.1", "loopback"),
            ("127.9.9.9", "loopback"),
            ("0.0.0.0", "this network"),
            ("224.0.0.5", "multicast"),
            ("239.1.1.1", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "reserved"),
            ("10.244.2.17", "learned from 192.0.2.12"),
            ("10.99.0.7", "inside 10.99.0.7/32"),
        ];
        for (ip, why) in table {
            let e = refused(ip);
            assert!(e.contains(why), "{ip}: {e}");
            assert!(e.starts_with(ip), "{ip}: {e}");
        }
        // Allowed: a free static address elsewhere, the rest of the node's
        // subnet, a /31's other end, our own block.
        for ip in [
            "203.0.113.5",
            "192.0.2.77",
            "198.51.100.6",
            "10.244.1.5",
            "10.244.2.64",
            "10.99.0.8",
        ] {
            assert_eq!(check(ip.parse().unwrap(), &f), Ok(()), "{ip}");
        }
    }
}
