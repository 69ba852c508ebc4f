//! The one encapsulation model: `dataplane.encapsulation` (the config
//! parses its names here), and the pure decision, per learned route and per
//! next hop, between a plain route, IP-in-IP through `tunl0` and VXLAN
//! through `vxlan.tortie` / `vxlan6.tortie`. No IO.
//!
//! Data flow: the agent hands the BGP next hops of a learned prefix, the
//! mode and the node's own subnets (`node.address`, one per family) to
//! [`route_for_learned`]; the [`KernelRoute`] it returns goes to the
//! reconciler, which also derives the VXLAN forwarding and neighbour entries
//! from the next hops that name a VXLAN device (`crate::vxlan`).
//!
//! Rules (as Calico's `IPIPMode`/`VXLANMode` with `CrossSubnet`):
//! - a `-cross-subnet` mode encapsulates only next hops outside the node's
//!   own subnet of the next hop's family;
//! - IP-in-IP carries IPv4 in IPv4 only: an IPv6 next hop is routed plainly;
//! - VXLAN runs over the next hop's family (the remote VTEP is the next hop),
//!   so it needs a node address of that family: without one the next hop is
//!   routed plainly (there is no local VTEP to send from).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnetwork::IpNetwork;

use crate::types::{KernelRoute, NextHop};

/// Name of the IP-in-IP device the kernel's `ipip` module creates.
pub const TUNNEL_DEV: &str = "tunl0";
/// The VXLAN device over an IPv4 underlay.
pub const VXLAN_DEV: &str = "vxlan.tortie";
/// The VXLAN device over an IPv6 underlay.
pub const VXLAN6_DEV: &str = "vxlan6.tortie";
/// IPv4 header added by IP-in-IP encapsulation.
pub const IPIP_OVERHEAD: u32 = 20;
/// Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) headers
/// (RFC 7348 §5).
pub const VXLAN_OVERHEAD_V4: u32 = 50;
/// Outer IPv6 (40) + UDP + VXLAN + inner Ethernet headers.
pub const VXLAN_OVERHEAD_V6: u32 = 70;

/// How traffic to other nodes' blocks leaves this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encapsulation {
    /// Plain routing: `<prefix> via <node ip>`; the fabric routes pod addresses.
    #[default]
    None,
    /// Always IP-in-IP: `<prefix> via <node ip> dev tunl0 onlink` (IPv4).
    IpIp,
    /// IP-in-IP only when the next hop is outside the node's own subnet.
    IpIpCrossSubnet,
    /// Always VXLAN: `<prefix> via <node ip> dev vxlan.tortie onlink`.
    Vxlan,
    /// VXLAN only when the next hop is outside the node's own subnet.
    VxlanCrossSubnet,
}

/// What carries one next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Carrier {
    /// `via <nh>`.
    Plain,
    /// `via <nh> dev tunl0 onlink`.
    IpIp,
    /// `via <nh> dev vxlan.tortie|vxlan6.tortie onlink`.
    Vxlan,
}

impl Encapsulation {
    /// Every mode with its `dataplane.encapsulation` name: the one list.
    pub const ALL: [(Encapsulation, &'static str); 5] = [
        (Encapsulation::None, "none"),
        (Encapsulation::IpIp, "ipip"),
        (Encapsulation::IpIpCrossSubnet, "ipip-cross-subnet"),
        (Encapsulation::Vxlan, "vxlan"),
        (Encapsulation::VxlanCrossSubnet, "vxlan-cross-subnet"),
    ];

    /// The names, in [`ALL`](Self::ALL)'s order.
    pub const NAMES: [&'static str; 5] = [
        Self::ALL[0].1,
        Self::ALL[1].1,
        Self::ALL[2].1,
        Self::ALL[3].1,
        Self::ALL[4].1,
    ];

    /// Its `dataplane.encapsulation` name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(e, _)| *e == self)
            .map_or("none", |(_, n)| n)
    }

    /// Whether `tunl0` may carry traffic (and needs an address of the block).
    pub fn uses_ipip(self) -> bool {
        matches!(self, Encapsulation::IpIp | Encapsulation::IpIpCrossSubnet)
    }

    /// Whether VXLAN devices may carry traffic.
    pub fn uses_vxlan(self) -> bool {
        matches!(self, Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet)
    }

    fn cross_subnet_only(self) -> bool {
        matches!(
            self,
            Encapsulation::IpIpCrossSubnet | Encapsulation::VxlanCrossSubnet
        )
    }

    /// Bytes the encapsulation adds over an underlay of `gateway`'s family
    /// (the largest of its carriers: a cross-subnet mode may encapsulate).
    pub fn overhead(self, underlay: IpAddr) -> u32 {
        match (self, underlay) {
            (Encapsulation::None, _) => 0,
            (Encapsulation::IpIp | Encapsulation::IpIpCrossSubnet, IpAddr::V4(_)) => IPIP_OVERHEAD,
            (Encapsulation::IpIp | Encapsulation::IpIpCrossSubnet, IpAddr::V6(_)) => 0,
            (Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet, IpAddr::V4(_)) => {
                VXLAN_OVERHEAD_V4
            }
            (Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet, IpAddr::V6(_)) => {
                VXLAN_OVERHEAD_V6
            }
        }
    }

    /// What carries `gateway`, given the node's own subnets (`node.address`
    /// with prefix lengths, any families). See the module docs for the rules.
    pub fn carrier(self, gateway: IpAddr, node_subnets: &[IpNetwork]) -> Carrier {
        let mut own = node_subnets
            .iter()
            .filter(|s| s.is_ipv4() == gateway.is_ipv4())
            .peekable();
        if own.peek().is_none() {
            // No address of that family: no tunnel end of that family here.
            return Carrier::Plain;
        }
        let same_subnet = own.any(|s| s.contains(gateway));
        if self.cross_subnet_only() && same_subnet {
            return Carrier::Plain;
        }
        match self {
            Encapsulation::None => Carrier::Plain,
            Encapsulation::IpIp | Encapsulation::IpIpCrossSubnet => {
                if gateway.is_ipv4() {
                    Carrier::IpIp
                } else {
                    Carrier::Plain
                }
            }
            Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet => Carrier::Vxlan,
        }
    }
}

impl fmt::Display for Encapsulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Encapsulation {
    type Err = ();

    /// One of [`Encapsulation::NAMES`], exactly.
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(e, _)| *e)
            .ok_or(())
    }
}

/// The VXLAN device carrying traffic to a remote VTEP at `gateway`.
pub fn vxlan_dev(gateway: IpAddr) -> &'static str {
    if gateway.is_ipv4() {
        VXLAN_DEV
    } else {
        VXLAN6_DEV
    }
}

/// The kernel route for a learned prefix given its next hops (the node
/// addresses from BGP), the encapsulation mode and the node's own subnets
/// (`node.address` with its prefix length, one per family).
///
/// Each next hop gets its [`Carrier`]: plain `via <nh>`, or `via <nh> dev
/// <tunnel> onlink`. Several next hops give an ECMP route. No next hops
/// gives [`KernelRoute::Blackhole`]: there is nowhere to forward to, and
/// dropping is safer than falling through to a default route.
pub fn route_for_learned(
    next_hops: &[IpAddr],
    encap: Encapsulation,
    node_subnets: &[IpNetwork],
) -> KernelRoute {
    if next_hops.is_empty() {
        return KernelRoute::Blackhole;
    }
    let hops = next_hops
        .iter()
        .map(|&gateway| {
            let dev = match encap.carrier(gateway, node_subnets) {
                Carrier::Plain => None,
                Carrier::IpIp => Some(TUNNEL_DEV),
                Carrier::Vxlan => Some(vxlan_dev(gateway)),
            };
            NextHop {
                gateway,
                dev: dev.map(str::to_string),
                onlink: dev.is_some(),
            }
        })
        .collect();
    KernelRoute::Unicast { next_hops: hops }.normalized()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::RouteKind;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    /// Event table: (mode, next hop, node subnets, expected carrier).
    #[test]
    fn carrier_table() {
        use Carrier as C;
        use Encapsulation as E;
        let v4 = "10.0.1.7/24";
        let v6 = "2001:db8:1::7/64";
        #[rustfmt::skip]
        let table: &[(E, &str, &[&str], C)] = &[
            // none: never.
            (E::None, "10.0.1.5", &[v4], C::Plain),
            (E::None, "10.0.2.5", &[v4], C::Plain),
            (E::None, "2001:db8:2::5", &[v4, v6], C::Plain),
            // ipip: every IPv4 next hop; IPv6 never.
            (E::IpIp, "10.0.1.5", &[v4], C::IpIp),
            (E::IpIp, "10.0.2.5", &[v4], C::IpIp),
            (E::IpIp, "2001:db8:2::5", &[v4, v6], C::Plain),
            (E::IpIp, "2001:db8:1::5", &[v4, v6], C::Plain),
            // ipip-cross-subnet: IPv4 outside the subnet only.
            (E::IpIpCrossSubnet, "10.0.1.5", &[v4], C::Plain),
            (E::IpIpCrossSubnet, "10.0.2.5", &[v4], C::IpIp),
            (E::IpIpCrossSubnet, "2001:db8:2::5", &[v4, v6], C::Plain),
            // vxlan: every next hop of a family the node has an address of.
            (E::Vxlan, "10.0.1.5", &[v4], C::Vxlan),
            (E::Vxlan, "10.0.2.5", &[v4], C::Vxlan),
            (E::Vxlan, "2001:db8:2::5", &[v4, v6], C::Vxlan),
            (E::Vxlan, "2001:db8:1::5", &[v4, v6], C::Vxlan),
            (E::Vxlan, "2001:db8:2::5", &[v4], C::Plain),
            // vxlan-cross-subnet: outside the own subnet of that family only.
            (E::VxlanCrossSubnet, "10.0.1.5", &[v4, v6], C::Plain),
            (E::VxlanCrossSubnet, "10.0.2.5", &[v4, v6], C::Vxlan),
            (E::VxlanCrossSubnet, "2001:db8:1::5", &[v4, v6], C::Plain),
            (E::VxlanCrossSubnet, "2001:db8:2::5", &[v4, v6], C::Vxlan),
            (E::VxlanCrossSubnet, "10.0.2.5", &[v6], C::Plain),
            // Several subnets of one family: inside any of them is local.
            (E::VxlanCrossSubnet, "10.9.0.5", &[v4, "10.9.0.1/16"], C::Plain),
        ];
        for (mode, gw, subnets, want) in table {
            let gw: IpAddr = gw.parse().unwrap();
            let subnets: Vec<IpNetwork> = subnets.iter().map(|s| net(s)).collect();
            assert_eq!(
                mode.carrier(gw, &subnets),
                *want,
                "{mode} next hop {gw} node {subnets:?}"
            );
        }
    }

    #[test]
    fn names_round_trip_and_unknown_is_refused() {
        for (mode, name) in Encapsulation::ALL {
            assert_eq!(name.parse::<Encapsulation>(), Ok(mode));
            assert_eq!(mode.to_string(), name);
        }
        assert_eq!(Encapsulation::NAMES.len(), Encapsulation::ALL.len());
        for bad in ["", "VXLAN", "vxlan ", "ipip-crosssubnet", "geneve"] {
            assert!(bad.parse::<Encapsulation>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn overhead_table() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        #[rustfmt::skip]
        let table = [
            (Encapsulation::None, v4, 0), (Encapsulation::None, v6, 0),
            (Encapsulation::IpIp, v4, 20), (Encapsulation::IpIp, v6, 0),
            (Encapsulation::IpIpCrossSubnet, v4, 20),
            (Encapsulation::Vxlan, v4, 50), (Encapsulation::Vxlan, v6, 70),
            (Encapsulation::VxlanCrossSubnet, v4, 50),
            (Encapsulation::VxlanCrossSubnet, v6, 70),
        ];
        for (mode, underlay, want) in table {
            assert_eq!(mode.overhead(underlay), want, "{mode} over {underlay}");
        }
    }

    #[test]
    fn routes_name_the_device_per_carrier() {
        let own = [net("10.0.1.7/24"), net("2001:db8:1::7/64")];
        let hop = |gw: &str, dev: Option<&str>| NextHop {
            gateway: gw.parse().unwrap(),
            dev: dev.map(str::to_string),
            onlink: dev.is_some(),
        };
        let ips = |s: &[&str]| -> Vec<IpAddr> { s.iter().map(|a| a.parse().unwrap()).collect() };
        #[rustfmt::skip]
        let table: &[(Encapsulation, &[&str], Vec<NextHop>)] = &[
            (Encapsulation::IpIp, &["2001:db8:2::5", "10.0.2.5"],
             vec![hop("10.0.2.5", Some("tunl0")), hop("2001:db8:2::5", None)]),
            (Encapsulation::IpIpCrossSubnet, &["10.0.2.5", "10.0.1.5"],
             vec![hop("10.0.1.5", None), hop("10.0.2.5", Some("tunl0"))]),
            (Encapsulation::Vxlan, &["10.0.1.5"], vec![hop("10.0.1.5", Some(VXLAN_DEV))]),
            (Encapsulation::Vxlan, &["2001:db8:2::5"], vec![hop("2001:db8:2::5", Some(VXLAN6_DEV))]),
            (Encapsulation::VxlanCrossSubnet, &["10.0.2.5", "10.0.1.5"],
             vec![hop("10.0.1.5", None), hop("10.0.2.5", Some(VXLAN_DEV))]),
            (Encapsulation::None, &["10.0.2.5"], vec![hop("10.0.2.5", None)]),
        ];
        for (mode, hops, want) in table {
            assert_eq!(
                route_for_learned(&ips(hops), *mode, &own),
                KernelRoute::Unicast {
                    next_hops: want.clone()
                },
                "{mode} {hops:?}"
            );
        }
    }

    #[test]
    fn no_next_hop_is_blackhole_and_ecmp_is_order_free() {
        let s = [net("10.0.0.0/24")];
        assert_eq!(
            route_for_learned(&[], Encapsulation::Vxlan, &s),
            KernelRoute::Blackhole
        );
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            route_for_learned(&[a, b], Encapsulation::None, &s),
            route_for_learned(&[b, a, b], Encapsulation::None, &s)
        );
        assert_eq!(
            route_for_learned(&[a], Encapsulation::None, &s).kind(),
            RouteKind::Learned
        );
    }
}
