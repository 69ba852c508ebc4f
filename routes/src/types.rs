//! Plain intent types shared with the agent: what a kernel route should look
//! like (the encapsulation model that chooses it is [`crate::encap`]). No IO
//! here. Family-generic:
//! prefixes are [`ipnetwork::IpNetwork`] and gateways [`IpAddr`], IPv4 and IPv6 alike,
//! through one code path.

use std::net::IpAddr;

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

impl NextHop {
    /// The gateway and on-link flag as the kernel holds them. The same as
    /// given, except a hop to a remote VTEP over an IPv6 underlay (`dev
    /// vxlan6.tortie`): IPv6 refuses an on-link gateway that a non-default
    /// route via another device covers ("Nexthop has invalid gateway or
    /// device mismatch", `ip6_route_check_nh_onlink`), so such a hop goes via
    /// the VTEP's link-local address ([`crate::vxlan::vtep_link_local`]),
    /// which needs no `onlink`.
    pub fn in_kernel(&self) -> (IpAddr, bool) {
        match self.gateway {
            IpAddr::V6(_) if self.dev.as_deref() == Some(crate::encap::VXLAN6_DEV) => {
                let mac = crate::vxlan::vtep_mac(self.gateway);
                (IpAddr::V6(crate::vxlan::vtep_link_local(mac)), false)
            }
            _ => (self.gateway, self.onlink),
        }
    }
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
    /// `<ip>/128 dev <veth>`). The [`crate::RouteTable`]'s; an attach
    /// writes it for the table, which expects it ([`crate::RouteTable::expect`]).
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
                        // `have` as dumped (the kernel's form) or as recorded
                        // when written (the desired form itself).
                        w == h
                            || (w.in_kernel() == (h.gateway, h.onlink)
                                && (w.dev.is_none() || w.dev == h.dev))
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
    /// Of the three above, the IPv6 ones: learned, local, blackhole (the
    /// `family` label of `tortie_dataplane_routes`).
    pub installed_ipv6: [u64; 3],
    /// Desired routes not (yet) in the kernel as desired.
    pub pending: u64,
    /// Routes of our protocol found at start-up (adopted).
    pub adopted: u64,
    /// Of `adopted`, the IPv6 ones (per family, the forwarding state kept
    /// across a restart: RFC 4724 §3's F bit).
    pub adopted_ipv6: u64,
    /// Routes of ours the table keeps without writing them, to be swept:
    /// until `converged()` every adopted route the kernel still holds
    /// (desired again or not), then only those not desired, until the
    /// sweep deletes them (and strays of ours found since, until a re-dump
    /// sweeps them or a desire takes them over). 0 once swept: while it is
    /// not, every write is settled request by request, not in bulk.
    pub adopted_left: u64,
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
    /// Dirty prefixes the write path looked at one by one (each a second
    /// slot lookup after its command's): notifications, retries, re-dumps,
    /// and desires write-through could not write (a missing device, an
    /// IPv6 delete out of order, the one route that found its gateway's
    /// nexthop object not made yet). Few in a bulk load; the rest of a
    /// burst is written as its commands are taken.
    pub planned: u64,
    /// Remote VXLAN VTEPs the desired routes go through (each has a
    /// permanent FDB and neighbour entry).
    pub vteps: u64,
    /// VXLAN FDB/neighbour entries of ours someone removed, put back.
    pub vtep_entries_restored: u64,
    /// Changes taken as express ones ([`crate::RouteTable::express`]).
    pub express: u64,
    /// Bulk changes of an ordered producer dropped as older than an
    /// express change of their prefix applied first.
    pub express_stale: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_vxlan_hops_go_via_the_vtep_link_local_address() {
        let u: IpAddr = "2001:db8:2::13".parse().unwrap();
        let want = NextHop {
            gateway: u,
            dev: Some(crate::encap::VXLAN6_DEV.into()),
            onlink: true,
        };
        let ll = crate::vxlan::vtep_link_local(crate::vxlan::vtep_mac(u));
        assert_eq!(want.in_kernel(), (IpAddr::V6(ll), false));
        let kernel = KernelRoute::Unicast {
            next_hops: vec![NextHop {
                gateway: IpAddr::V6(ll),
                dev: want.dev.clone(),
                onlink: false,
            }],
        };
        let desired = KernelRoute::Unicast {
            next_hops: vec![want.clone()],
        };
        assert!(desired.satisfied_by(&kernel));
        // As recorded when written (the desired form), too.
        assert!(desired.satisfied_by(&desired));
        // IPv4 and other devices: as given.
        let v4 = NextHop {
            gateway: "10.0.0.1".parse().unwrap(),
            dev: Some(crate::encap::VXLAN_DEV.into()),
            onlink: true,
        };
        assert_eq!(v4.in_kernel(), (v4.gateway, true));
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
