//! IP-in-IP: the `tunl0` device and the underlay MTU.
//!
//! `tunl0` is the fallback device of the kernel's `ipip` module; loading the
//! module creates it in every namespace, so creating it returns EEXIST even
//! in a fresh namespace (VM-NOTES). We therefore create it when missing and
//! otherwise configure the existing one: MTU (underlay − 20), up, and a /32
//! from the node's block so that encapsulated packets have a source address.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::LinkAttribute;
use rtnetlink::{LinkIpIp, LinkUnspec};

use crate::error::RoutesError;
use crate::netns;
use crate::types::TUNNEL_DEV;

/// IPv4 header added by IP-in-IP encapsulation.
pub const IPIP_OVERHEAD: u32 = 20;

/// Make sure `tunl0` exists, is up, has `mtu` and carries `address/32`.
pub async fn ensure_tunl0(address: Ipv4Addr, mtu: u32) -> Result<(), RoutesError> {
    let ctx = format!("configuring {TUNNEL_DEV}");
    let conn = netns::here(&ctx)?;
    let h = &conn.handle;
    let index = match find_link(h, TUNNEL_DEV).await? {
        Some(i) => i,
        None => {
            match h
                .link()
                .add(LinkIpIp::new(TUNNEL_DEV).build())
                .execute()
                .await
            {
                Ok(()) => {}
                // Created by the ipip module behind our back: configure it.
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == libc::EEXIST => {}
                Err(e) => {
                    return Err(RoutesError::from_rtnl(format!("{ctx}: creating it"), e));
                }
            }
            find_link(h, TUNNEL_DEV)
                .await?
                .ok_or_else(|| RoutesError::unexpected(&ctx, "device missing after creation"))?
        }
    };
    h.link()
        .set(LinkUnspec::new_with_index(index).mtu(mtu).up().build())
        .execute()
        .await
        .map_err(|e| RoutesError::from_rtnl(format!("{ctx}: setting MTU {mtu} and up"), e))?;
    h.address()
        .add(index, IpAddr::V4(address), 32)
        .replace()
        .execute()
        .await
        .map_err(|e| RoutesError::from_rtnl(format!("{ctx}: adding {address}/32"), e))?;
    Ok(())
}

async fn find_link(h: &rtnetlink::Handle, name: &str) -> Result<Option<u32>, RoutesError> {
    let mut s = h.link().get().match_name(name.to_string()).execute();
    match s.try_next().await {
        Ok(m) => Ok(m.map(|m| m.header.index)),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == libc::ENODEV => Ok(None),
        Err(e) => Err(RoutesError::from_rtnl(format!("looking up {name}"), e)),
    }
}

/// MTU of the interface that holds `node_address`.
pub async fn underlay_mtu(node_address: Ipv4Addr) -> Result<u32, RoutesError> {
    let ctx = format!("finding the interface of {node_address}");
    let conn = netns::here(&ctx)?;
    let h = &conn.handle;
    let mut addrs = h.address().get().execute();
    let mut index = None;
    while let Some(msg) = addrs
        .try_next()
        .await
        .map_err(|e| RoutesError::from_rtnl(format!("{ctx}: dumping addresses"), e))?
    {
        let has = msg.attributes.iter().any(|a| {
            matches!(a, AddressAttribute::Address(IpAddr::V4(x)) | AddressAttribute::Local(IpAddr::V4(x)) if *x == node_address)
        });
        if has {
            index = Some(msg.header.index);
            break;
        }
    }
    let index = index.ok_or_else(|| RoutesError::invalid(&ctx, "no interface has that address"))?;
    let mut links = h.link().get().match_index(index).execute();
    let msg = links
        .try_next()
        .await
        .map_err(|e| RoutesError::from_rtnl(format!("{ctx}: reading link {index}"), e))?
        .ok_or_else(|| RoutesError::unexpected(&ctx, format!("link {index} vanished")))?;
    msg.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        })
        .ok_or_else(|| RoutesError::unexpected(&ctx, "link has no MTU attribute"))
}
