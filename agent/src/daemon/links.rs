//! The node's interface addresses, for RFC 2545 §3: when a peer shares a
//! link with us (one of our interfaces has an address whose subnet holds the
//! peer's address, of either family), IPv6 routes we send it with next-hop
//! self carry our link-local address on that interface beside the global
//! next hop, as BIRD and FRR do on a shared link.
//!
//! Data flow: [`Links::read`] lists the addresses once (getifaddrs, in the
//! network namespace the agent runs in) at start-up and on SIGHUP;
//! [`Links::link_local_for`] is the pure lookup the speaker's per-peer
//! configuration takes ([`super::convert::peer_config`]).

use std::net::{IpAddr, Ipv6Addr};

/// One interface address: interface name, address, netmask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    pub ifname: String,
    pub address: IpAddr,
    pub netmask: Option<IpAddr>,
}

/// The node's interface addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Links(pub Vec<IfAddr>);

impl Links {
    /// The addresses of every interface; none when they cannot be listed
    /// (then no link-local next hop is sent: the global one still works).
    pub fn read() -> Links {
        let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
            tracing::warn!(
                "cannot list interface addresses: no link-local next hops (RFC 2545) will be sent"
            );
            return Links::default();
        };
        let ip = |s: Option<nix::sys::socket::SockaddrStorage>| -> Option<IpAddr> {
            let s = s?;
            s.as_sockaddr_in()
                .map(|a| IpAddr::V4(a.ip()))
                .or_else(|| s.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())))
        };
        Links(
            addrs
                .filter_map(|a| {
                    Some(IfAddr {
                        address: ip(a.address)?,
                        netmask: ip(a.netmask),
                        ifname: a.interface_name,
                    })
                })
                .collect(),
        )
    }

    /// Our link-local address on the link shared with `peer`: the interface
    /// with an address (not link-local) whose subnet holds `peer`, and the
    /// fe80::/10 address of that interface. `None` when no interface is on
    /// the peer's subnet (a multihop peer) or it has no link-local address.
    pub fn link_local_for(&self, peer: IpAddr) -> Option<Ipv6Addr> {
        let on_link = self.0.iter().find(|a| {
            let global = match a.address {
                IpAddr::V4(_) => true,
                IpAddr::V6(v6) => !v6.is_unicast_link_local(),
            };
            global && a.address != peer && same_subnet(a.address, a.netmask, peer)
        })?;
        self.0.iter().find_map(|a| match a.address {
            IpAddr::V6(v6) if a.ifname == on_link.ifname && v6.is_unicast_link_local() => Some(v6),
            _ => None,
        })
    }
}

/// Whether `peer` is in the subnet of `address`/`netmask` (same family).
fn same_subnet(address: IpAddr, netmask: Option<IpAddr>, peer: IpAddr) -> bool {
    match (address, netmask, peer) {
        (IpAddr::V4(a), Some(IpAddr::V4(m)), IpAddr::V4(p)) => {
            let m = u32::from(m);
            m != u32::MAX && u32::from(a) & m == u32::from(p) & m
        }
        (IpAddr::V6(a), Some(IpAddr::V6(m)), IpAddr::V6(p)) => {
            let m = u128::from(m);
            m != u128::MAX && u128::from(a) & m == u128::from(p) & m
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(ifname: &str, address: &str, mask: &str) -> IfAddr {
        IfAddr {
            ifname: ifname.into(),
            address: address.parse().unwrap(),
            netmask: Some(mask.parse().unwrap()),
        }
    }

    #[test]
    fn link_local_of_the_interface_on_the_peers_subnet() {
        let links = Links(vec![
            a("lo", "127.0.0.1", "255.0.0.0"),
            a("lo", "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            a("eth0", "192.0.2.11", "255.255.255.0"),
            a("eth0", "2001:db8:1::11", "ffff:ffff:ffff:ffff::"),
            a("eth0", "fe80::a", "ffff:ffff:ffff:ffff::"),
            a("eth1", "198.51.100.11", "255.255.255.0"),
            a("eth2", "203.0.113.11", "255.255.255.0"),
            a("eth2", "fe80::c", "ffff:ffff:ffff:ffff::"),
            a("tt1", "fe80::ecee:eeff:feee:eeee", "ffff:ffff:ffff:ffff::"),
        ]);
        let table: [(&str, Option<&str>); 7] = [
            // IPv4 session on eth0's subnet: eth0's link-local.
            ("192.0.2.1", Some("fe80::a")),
            // IPv6 session on eth0's subnet.
            ("2001:db8:1::1", Some("fe80::a")),
            ("203.0.113.1", Some("fe80::c")),
            // On eth1's subnet, but eth1 has no link-local address.
            ("198.51.100.1", None),
            // Not on any of our subnets (multihop).
            ("10.9.9.9", None),
            ("2001:db8:99::1", None),
            // On lo's subnet: lo has no link-local address.
            ("127.0.0.2", None),
        ];
        for (peer, want) in table {
            assert_eq!(
                links.link_local_for(peer.parse().unwrap()),
                want.map(|w| w.parse().unwrap()),
                "{peer}"
            );
        }
    }
}
