//! Tunnel devices and the underlay MTU, on the one netlink layer
//! ([`crate::nl`], through its request/answer mode, `nl::rtnl`): IP-in-IP's
//! `tunl0` here, the VXLAN devices in [`crate::vxlan`], and the small link
//! requests both use (look up, create, set MTU/MAC/up, delete).
//!
//! `tunl0` is the fallback device of the kernel's `ipip` module; loading the
//! module creates it in every namespace, so creating it returns EEXIST even
//! in a fresh namespace (VM-NOTES). We therefore create it when missing and
//! otherwise configure the existing one: MTU (underlay − 20), up, and a /32
//! from the node's block so that encapsulated packets have a source address.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use crate::encap::TUNNEL_DEV;
use crate::error::RoutesError;
use crate::nl::consts::{IFA_ADDRESS, IFA_LOCAL, RTM_DELADDR};
use crate::nl::rtnl::{
    IFF_UP, IFLA_ADDRESS, IFLA_EXT_MASK, IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND,
    IFLA_LINKINFO, IFLA_MTU, LinkInfo, Msg, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, Outcome,
    RTEXT_FILTER_SKIP_STATS, RTM_DELLINK, RTM_GETLINK, RTM_NEWADDR, RTM_NEWLINK, Rtnl, ifaddrmsg,
    ifinfomsg,
};

const NETLINK_TIMEOUT: Duration = Duration::from_secs(5);

/// One request on a fresh socket; the kernel's refusal becomes a
/// [`RoutesError::Netlink`] with `ctx` (and its extended-ack text).
pub(crate) fn request(h: &mut Rtnl, msg: Msg, ctx: &str) -> Result<Option<LinkInfo>, RoutesError> {
    let out = h
        .transact(vec![msg], Instant::now() + NETLINK_TIMEOUT)
        .map_err(|e| RoutesError::io(ctx, e))?;
    match out.into_iter().next() {
        Some(Outcome::Ok(link)) => Ok(link),
        Some(Outcome::Err(errno, message)) => Err(RoutesError::Netlink {
            context: match message {
                Some(m) if !m.is_empty() => format!("{ctx} (kernel: {m})"),
                _ => ctx.to_string(),
            },
            errno,
        }),
        None => Err(RoutesError::unexpected(ctx, "no answer")),
    }
}

pub(crate) fn open(ctx: &str) -> Result<Rtnl, RoutesError> {
    Rtnl::open(0).map_err(|e| RoutesError::io(format!("{ctx}: opening a netlink socket"), e))
}

/// The link called `name`, or `None` when there is none.
pub(crate) fn find_link(h: &mut Rtnl, name: &str) -> Result<Option<LinkInfo>, RoutesError> {
    let msg = Msg::new(RTM_GETLINK, 0, &ifinfomsg(0, 0, 0))
        .str(IFLA_IFNAME, name)
        .u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    match request(h, msg, &format!("looking up {name}")) {
        Ok(link) => Ok(link),
        Err(RoutesError::Netlink { errno, .. }) if errno == libc::ENODEV => Ok(None),
        Err(e) => Err(e),
    }
}

/// `RTM_NEWLINK` creating `name` of `kind` with the kind's attributes
/// `data` (already encoded), `mtu` and, when given, the MAC `mac`; up.
pub(crate) fn create_link_msg(
    name: &str,
    kind: &str,
    data: &[u8],
    mtu: u32,
    mac: Option<[u8; 6]>,
) -> Msg {
    let mut m = Msg::new(
        RTM_NEWLINK,
        NLM_F_CREATE | NLM_F_EXCL,
        &ifinfomsg(0, IFF_UP, IFF_UP),
    )
    .str(IFLA_IFNAME, name)
    .u32(IFLA_MTU, mtu);
    if let Some(mac) = mac {
        m = m.attr(IFLA_ADDRESS, &mac);
    }
    m = m.nest(IFLA_LINKINFO).str(IFLA_INFO_KIND, kind);
    if !data.is_empty() {
        m = m.attr(IFLA_INFO_DATA, data);
    }
    m.end()
}

/// Set `mtu`, the MAC (when given) and up on link `index`.
pub(crate) fn set_link(
    h: &mut Rtnl,
    index: u32,
    mtu: u32,
    mac: Option<[u8; 6]>,
    ctx: &str,
) -> Result<(), RoutesError> {
    let mut m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(index, IFF_UP, IFF_UP)).u32(IFLA_MTU, mtu);
    if let Some(mac) = mac {
        m = m.attr(IFLA_ADDRESS, &mac);
    }
    request(h, m, &format!("{ctx}: setting MTU {mtu} and up")).map(|_| ())
}

/// Delete link `index`.
pub(crate) fn delete_link(h: &mut Rtnl, index: u32, ctx: &str) -> Result<(), RoutesError> {
    let m = Msg::new(RTM_DELLINK, 0, &ifinfomsg(index, 0, 0));
    match request(h, m, &format!("{ctx}: deleting it")) {
        Err(RoutesError::Netlink { errno, .. }) if errno == libc::ENODEV => Ok(()),
        r => r.map(|_| ()),
    }
}

/// Make sure `tunl0` exists, is up, has `mtu` and carries `address/32`.
pub async fn ensure_tunl0(address: Ipv4Addr, mtu: u32) -> Result<(), RoutesError> {
    let ctx = format!("configuring {TUNNEL_DEV}");
    let mut h = open(&ctx)?;
    let link = match find_link(&mut h, TUNNEL_DEV)? {
        Some(l) => l,
        None => {
            let create = create_link_msg(TUNNEL_DEV, "ipip", &[], mtu, None);
            match request(&mut h, create, &format!("{ctx}: creating it")) {
                Ok(_) => {}
                // Created by the ipip module behind our back: configure it.
                Err(RoutesError::Netlink { errno, .. }) if errno == libc::EEXIST => {}
                Err(e) => return Err(e),
            }
            find_link(&mut h, TUNNEL_DEV)?
                .ok_or_else(|| RoutesError::unexpected(&ctx, "device missing after creation"))?
        }
    };
    set_link(&mut h, link.index, mtu, None, &ctx)?;
    let add = Msg::new(
        RTM_NEWADDR,
        NLM_F_CREATE | NLM_F_REPLACE,
        &ifaddrmsg(libc::AF_INET as u8, 32, 0, link.index),
    )
    .ip(IFA_LOCAL, IpAddr::V4(address))
    .ip(IFA_ADDRESS, IpAddr::V4(address));
    request(&mut h, add, &format!("{ctx}: adding {address}/32"))?;
    Ok(())
}

/// IP-in-IP switched off: take `address/32` off `tunl0` and set it down, so
/// the address can go back to the IPAM without being on two interfaces.
/// (`tunl0` itself is the ipip module's fallback device and cannot be
/// deleted.) Nothing to do when `tunl0` or the address is already gone.
pub async fn release_tunl0(address: Ipv4Addr) -> Result<(), RoutesError> {
    let ctx = format!("releasing {TUNNEL_DEV}");
    let mut h = open(&ctx)?;
    let Some(link) = find_link(&mut h, TUNNEL_DEV)? else {
        return Ok(());
    };
    let del = Msg::new(
        RTM_DELADDR,
        0,
        &ifaddrmsg(libc::AF_INET as u8, 32, 0, link.index),
    )
    .ip(IFA_LOCAL, IpAddr::V4(address))
    .ip(IFA_ADDRESS, IpAddr::V4(address));
    match request(&mut h, del, &format!("{ctx}: removing {address}/32")) {
        Ok(_) => {}
        Err(RoutesError::Netlink { errno, .. }) if errno == libc::EADDRNOTAVAIL => {}
        Err(e) => return Err(e),
    }
    let down = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(link.index, 0, IFF_UP));
    request(&mut h, down, &format!("{ctx}: setting it down")).map(|_| ())
}

/// MTU of the interface that holds `node_address` (either family).
pub async fn underlay_mtu(node_address: impl Into<IpAddr>) -> Result<u32, RoutesError> {
    let node_address = node_address.into();
    let ctx = format!("finding the interface of {node_address}");
    let addrs = nix::ifaddrs::getifaddrs()
        .map_err(|e| RoutesError::io(format!("{ctx}: listing addresses"), e.into()))?;
    let name = addrs
        .filter(|a| {
            a.address.as_ref().is_some_and(|s| {
                s.as_sockaddr_in().map(|s| IpAddr::V4(s.ip())) == Some(node_address)
                    || s.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())) == Some(node_address)
            })
        })
        .map(|a| a.interface_name)
        .next()
        .ok_or_else(|| RoutesError::invalid(&ctx, "no interface has that address"))?;
    let mut h = open(&ctx)?;
    let link = find_link(&mut h, &name)?
        .ok_or_else(|| RoutesError::unexpected(&ctx, format!("link {name} vanished")))?;
    if link.mtu == 0 {
        return Err(RoutesError::unexpected(&ctx, "link has no MTU attribute"));
    }
    Ok(link.mtu)
}
