//! Plain intent types shared with the agent: what a kernel route should look
//! like, encapsulation modes, and the pure helper that turns a learned
//! prefix's BGP next hops into a kernel route. No IO here. Family-generic:
//! prefixes are [`IpNetwork`] and gateways [`IpAddr`], IPv4 and IPv6 alike,
//! through one code path.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

/// Name of the IP-in-IP device the kernel's `ipip` module creates.
pub const TUNNEL_DEV: &str = "tunl0";

/// How traffic to other nodes' blocks leaves this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encapsulation {
    /// Plain routing: `<prefix> via <node ip>`.
    None,
    /// Always IP-in-IP: `<prefix> via <node ip> dev tunl0 onlink`.
    IpIp,
    /// IP-in-IP only when the next hop is outside the node's own subnet.
    IpIpCrossSubnet,
}

/// One next hop of a unicast route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHop {
    /// The gateway (`via`), of the prefix's family.
    pub gateway: IpAddr,
    /// Output device (`dev`), e.g. `tunl0`; `None` lets the kernel resolve it.
    pub dev: Option<String>,
    /// `onlink`: the gateway is reachable on `dev` without a connected route.
    pub onlink: bool,
}

/// The desired shape of one kernel route with our protocol number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KernelRoute {
    /// A learned route. One next hop, or several for ECMP (`RTA_MULTIPATH`).
    Unicast {
        /// Next hops; order does not matter (compared sorted).
        next_hops: Vec<NextHop>,
    },
    /// A container's host route: `<ip>/32 dev <veth> scope link` (or
    /// `<ip>/128 dev <veth>`). Only the [`crate::RouteTable`] writes it.
    Local {
        /// Host-side veth name.
        dev: String,
    },
    /// `blackhole <prefix>` (the node's own block).
    Blackhole,
}

/// The kind of a [`KernelRoute`], for statistics and display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// [`KernelRoute::Unicast`].
    Learned,
    /// [`KernelRoute::Local`].
    Local,
    /// [`KernelRoute::Blackhole`].
    Blackhole,
}

impl KernelRoute {
    /// Which kind of route this is.
    pub fn kind(&self) -> RouteKind {
        match self {
            KernelRoute::Unicast { .. } => RouteKind::Learned,
            KernelRoute::Local { .. } => RouteKind::Local,
            KernelRoute::Blackhole => RouteKind::Blackhole,
        }
    }

    /// Whether `kernel` (as dumped) fulfils this desired route. A next hop
    /// without `dev` leaves the device to the kernel, so any device matches.
    pub fn satisfied_by(&self, kernel: &KernelRoute) -> bool {
        match (self, kernel) {
            (
                KernelRoute::Unicast { next_hops: want },
                KernelRoute::Unicast { next_hops: have },
            ) => {
                want.len() == have.len()
                    && want.iter().zip(have).all(|(w, h)| {
                        w.gateway == h.gateway
                            && w.onlink == h.onlink
                            && (w.dev.is_none() || w.dev == h.dev)
                    })
            }
            (a, b) => a == b,
        }
    }

    /// The same route with next hops sorted and de-duplicated, so that two
    /// descriptions of one ECMP set compare equal.
    pub fn normalized(mut self) -> Self {
        if let KernelRoute::Unicast { next_hops } = &mut self {
            next_hops.sort();
            next_hops.dedup();
        }
        self
    }
}

/// Counters of the route table, by kind. A snapshot; cheap to take.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteStats {
    /// Desired routes of all kinds.
    pub desired: u64,
    /// Learned (unicast) routes installed as desired.
    pub installed_learned: u64,
    /// Container host routes installed as desired.
    pub installed_local: u64,
    /// Blackhole routes installed as desired.
    pub installed_blackhole: u64,
    /// Desired routes not (yet) in the kernel as desired.
    pub pending: u64,
    /// Routes of our protocol found at start-up (adopted).
    pub adopted: u64,
    /// Adopted or stray routes of ours deleted by the sweep after `converged()`.
    pub swept: u64,
    /// Routes of ours someone else removed or changed, which we put back.
    pub restored: u64,
    /// Netlink requests the kernel refused (each attempt counts).
    pub netlink_errors: u64,
    /// [`netlink_errors`](Self::netlink_errors) by errno name (`ENETUNREACH`).
    pub refused: std::collections::BTreeMap<String, u64>,
    /// Desired routes not installed now, by reason: an errno name, or
    /// `no_device` (a device the route names is missing or down) or
    /// `conflict` (a route of another protocol holds the prefix).
    pub not_installed: std::collections::BTreeMap<String, u64>,
    /// Desired prefixes not installed because a route of another protocol
    /// holds the same prefix and metric (we never overwrite those).
    pub conflicts: u64,
    /// Full re-dumps (start-up, link down, lost notifications).
    pub resyncs: u64,
    /// Route replace/delete requests sent.
    pub writes: u64,
}

/// The kernel route for a learned prefix given its next hops (the node
/// addresses from BGP), the encapsulation mode and the node's own subnet
/// (`node.address` with its prefix length).
///
/// - `None`: `via <nh>`.
/// - `IpIp`: `via <nh> dev tunl0 onlink` for every next hop.
/// - `IpIpCrossSubnet`: tunnel only the next hops outside `node_subnet`.
///
/// `tunl0` carries IPv4 in IPv4 only: IPv6 next hops are always routed
/// plainly (`via <nh>`).
///
/// Several next hops give an ECMP route. No next hops gives
/// [`KernelRoute::Blackhole`]: there is nowhere to forward to, and dropping
/// is safer than falling through to a default route.
pub fn route_for_learned(
    next_hops: &[IpAddr],
    encap: Encapsulation,
    node_subnet: IpNetwork,
) -> KernelRoute {
    if next_hops.is_empty() {
        return KernelRoute::Blackhole;
    }
    let hops = next_hops
        .iter()
        .map(|&gateway| {
            let tunnel = gateway.is_ipv4()
                && match encap {
                    Encapsulation::None => false,
                    Encapsulation::IpIp => true,
                    Encapsulation::IpIpCrossSubnet => !node_subnet.contains(gateway),
                };
            NextHop {
                gateway,
                dev: tunnel.then(|| TUNNEL_DEV.to_string()),
                onlink: tunnel,
            }
        })
        .collect();
    KernelRoute::Unicast { next_hops: hops }.normalized()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_next_hops_never_tunnel() {
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        let v4: IpAddr = "10.0.2.5".parse().unwrap();
        let r = route_for_learned(&[v6, v4], Encapsulation::IpIp, net("10.0.1.0/24"));
        assert_eq!(
            r,
            KernelRoute::Unicast {
                next_hops: vec![
                    NextHop {
                        gateway: v4,
                        dev: Some("tunl0".into()),
                        onlink: true
                    },
                    NextHop {
                        gateway: v6,
                        dev: None,
                        onlink: false
                    },
                ]
            }
        );
        let r = route_for_learned(
            &[v6],
            Encapsulation::IpIpCrossSubnet,
            net("2001:db8:1::/64"),
        );
        assert_eq!(
            r,
            KernelRoute::Unicast {
                next_hops: vec![NextHop {
                    gateway: v6,
                    dev: None,
                    onlink: false
                }]
            }
        );
    }

    #[test]
    fn cross_subnet_tunnels_only_remote_next_hops() {
        let r = route_for_learned(
            &["10.0.2.5".parse().unwrap(), "10.0.1.7".parse().unwrap()],
            Encapsulation::IpIpCrossSubnet,
            net("10.0.1.0/24"),
        );
        assert_eq!(
            r,
            KernelRoute::Unicast {
                next_hops: vec![
                    NextHop {
                        gateway: "10.0.1.7".parse().unwrap(),
                        dev: None,
                        onlink: false
                    },
                    NextHop {
                        gateway: "10.0.2.5".parse().unwrap(),
                        dev: Some("tunl0".into()),
                        onlink: true
                    },
                ]
            }
        );
    }

    #[test]
    fn ipip_always_and_none_never() {
        let nh = ["10.0.1.7".parse().unwrap()];
        let sub = net("10.0.1.0/24");
        match route_for_learned(&nh, Encapsulation::IpIp, sub) {
            KernelRoute::Unicast { next_hops } => {
                assert_eq!(
                    next_hops[..],
                    [NextHop {
                        gateway: nh[0],
                        dev: Some("tunl0".into()),
                        onlink: true
                    }]
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        match route_for_learned(&nh, Encapsulation::None, net("192.0.2.0/24")) {
            KernelRoute::Unicast { next_hops } => {
                assert_eq!(
                    next_hops[..],
                    [NextHop {
                        gateway: nh[0],
                        dev: None,
                        onlink: false
                    }]
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn no_next_hop_is_blackhole_and_ecmp_is_order_free() {
        assert_eq!(
            route_for_learned(&[], Encapsulation::IpIp, net("10.0.0.0/8")),
            KernelRoute::Blackhole
        );
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s = net("10.0.0.0/24");
        assert_eq!(
            route_for_learned(&[a, b], Encapsulation::None, s),
            route_for_learned(&[b, a, b], Encapsulation::None, s)
        );
        assert_eq!(
            route_for_learned(&[a], Encapsulation::None, s).kind(),
            RouteKind::Learned
        );
    }

    #[test]
    fn unspecified_device_matches_any() {
        let gw: IpAddr = "10.0.0.1".parse().unwrap();
        let want = KernelRoute::Unicast {
            next_hops: vec![NextHop {
                gateway: gw,
                dev: None,
                onlink: false,
            }],
        };
        let have = KernelRoute::Unicast {
            next_hops: vec![NextHop {
                gateway: gw,
                dev: Some("eth0".into()),
                onlink: false,
            }],
        };
        assert!(want.satisfied_by(&have));
        assert!(!have.satisfied_by(&want));
        assert!(!want.satisfied_by(&KernelRoute::Blackhole));
        assert!(KernelRoute::Blackhole.satisfied_by(&KernelRoute::Blackhole));
    }
}
