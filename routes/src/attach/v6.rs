//! The IPv6 half of a container's attach: what the host and the container
//! get when the container has an IPv6 address.
//!
//! The container's gateway is a link-local address known in advance, as
//! Calico does: the host veth gets the fixed MAC `ee:ee:ee:ee:ee:ee`, and
//! [`GATEWAY6`] (its EUI-64 link-local address, RFC 4291 §2.5.6 / App. A) is
//! put on it explicitly, so it exists whatever the host's `addr_gen_mode`.
//! No NDP at all on the veth, no proxy tricks: the container has a permanent
//! neighbour entry for the gateway, the host one for the container's address
//! (as for IPv4). DAD is off on both ends (`accept_dad=0`, and the
//! addresses are added `nodad`), so the /128 is usable at once.
//!
//! Data flow: `attach` calls [`host_sysctls`] and sends [`host_batch`] in
//! the host's namespace, then, inside the container's namespace,
//! [`container_sysctls`] and [`container_batch`] beside the IPv4 requests.
//! The host route `<ip>/128 dev ttX proto <ours>` is the route table's, as
//! for IPv4.

use std::net::{IpAddr, Ipv6Addr};

use crate::error::RoutesError;
use crate::nl::rtnl::*;
use crate::sysctl;

const AF_INET6: u8 = libc::AF_INET6 as u8;

/// The host veth's MAC when the container has an IPv6 address.
pub const HOST_MAC: [u8; 6] = [0xee; 6];

/// The container's IPv6 gateway: the EUI-64 link-local address of
/// [`HOST_MAC`] (universal/local bit flipped: `ec`, then `ff:fe` inserted).
pub const GATEWAY6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xecee, 0xeeff, 0xfeee, 0xeeee);

/// Host side, before the container end comes up (so before the kernel's own
/// link-local address would start DAD): forwarding on, DAD off on the veth.
pub(crate) fn host_sysctls(host: &str) -> Result<(), RoutesError> {
    sysctl::set_sysctl("net/ipv6/conf/all/forwarding", "1")?;
    sysctl::set_sysctl(&format!("net/ipv6/conf/{host}/accept_dad"), "0")
}

/// Host side, one batch: the gateway address on the veth and the
/// container's permanent neighbour entry. With what each request does.
pub(crate) fn host_batch(
    host: &str,
    host_index: u32,
    address: Ipv6Addr,
    c_mac: &[u8; 6],
) -> Vec<(Msg, String)> {
    vec![
        (
            Msg::new(
                RTM_NEWADDR,
                NLM_F_CREATE | NLM_F_REPLACE,
                &ifaddrmsg(AF_INET6, 64, RT_SCOPE_LINK, host_index),
            )
            .ip(IFA_ADDRESS, IpAddr::V6(GATEWAY6))
            .u32(IFA_FLAGS, IFA_F_NODAD),
            format!("adding {GATEWAY6}/64 to {host}"),
        ),
        (
            Msg::permanent_neighbour(host_index, IpAddr::V6(address), c_mac),
            format!("adding neighbour {address} dev {host}"),
        ),
    ]
}

/// Inside the container (the calling thread is in its namespace): DAD off
/// on its interface.
pub(crate) fn container_sysctls(ifname: &str) -> Result<(), RoutesError> {
    sysctl::set_sysctl(&format!("net/ipv6/conf/{ifname}/accept_dad"), "0")
}

/// Inside the container: the /128 (`nodad`), the gateway's permanent
/// neighbour entry and `default via fe80::ecee:eeff:feee:eeee dev eth0`.
pub(crate) fn container_batch(ifname: &str, c_index: u32, address: Ipv6Addr) -> Vec<(Msg, String)> {
    vec![
        (
            Msg::new(
                RTM_NEWADDR,
                NLM_F_CREATE | NLM_F_REPLACE,
                &ifaddrmsg(AF_INET6, 128, RT_SCOPE_UNIVERSE, c_index),
            )
            .ip(IFA_ADDRESS, IpAddr::V6(address))
            .u32(IFA_FLAGS, IFA_F_NODAD),
            format!("adding {address}/128 to {ifname}"),
        ),
        (
            Msg::permanent_neighbour(c_index, IpAddr::V6(GATEWAY6), &HOST_MAC),
            format!("adding neighbour {GATEWAY6}"),
        ),
        (
            Msg::new(
                RTM_NEWROUTE,
                NLM_F_CREATE | NLM_F_REPLACE,
                &rtmsg(
                    AF_INET6,
                    0,
                    254,
                    RTPROT_BOOT,
                    RT_SCOPE_UNIVERSE,
                    RTN_UNICAST,
                    0,
                ),
            )
            .ip(RTA_GATEWAY, IpAddr::V6(GATEWAY6))
            .u32(RTA_OIF, c_index),
            format!("adding default via {GATEWAY6} dev {ifname}"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway is the EUI-64 address of the MAC (RFC 4291 App. A).
    #[test]
    fn gateway_is_the_eui64_address_of_the_host_mac() {
        let m = HOST_MAC;
        let iid = [m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]];
        let mut bytes = [0u8; 16];
        bytes[0] = 0xfe;
        bytes[1] = 0x80;
        bytes[8..].copy_from_slice(&iid);
        assert_eq!(Ipv6Addr::from(bytes), GATEWAY6);
    }
}
