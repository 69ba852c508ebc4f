//! What is attached on this host, read back from the kernel at start-up and
//! for CHECK: the host veths (links named with the prefix) and their host
//! routes of our protocol, each listing a dump on the one netlink layer
//! ([`crate::nl::AsyncSocket::dump`]).

use std::net::IpAddr;

use crate::error::RoutesError;
use crate::nl::build::{ifinfomsg, rtmsg};
use crate::nl::consts::{RT_TABLE_MAIN, RTM_GETLINK, RTM_GETROUTE};
use crate::nl::{self, AsyncSocket, Decoded, DecodedRoute, Part};
use crate::types::KernelRoute;

/// A socket for a listing in the caller's namespace.
fn list_socket(ctx: &str) -> Result<AsyncSocket, RoutesError> {
    AsyncSocket::open(0, 1 << 20)
        .map_err(|e| RoutesError::io(format!("{ctx}: opening a netlink socket"), e))
}

/// Links named `veth_prefix…`, by ifindex.
async fn prefixed_links(
    sock: &mut AsyncSocket,
    veth_prefix: &str,
    ctx: &str,
) -> Result<std::collections::HashMap<u32, String>, RoutesError> {
    let mut names = std::collections::HashMap::new();
    let req = nl::dump::request(RTM_GETLINK, &ifinfomsg(0, 0, 0));
    sock.dump(&req, &mut |part| match part {
        Part::Restart => names.clear(),
        Part::Msg(m) => {
            if let Ok(Decoded::Link { new: true, link }) = nl::decode(&m)
                && link.name.starts_with(veth_prefix)
            {
                names.insert(link.index, link.name);
            }
        }
    })
    .await
    .map_err(|e| RoutesError::io(format!("{ctx}: dumping links"), e))?;
    Ok(names)
}

/// Every link named `veth_prefix…` (sorted), with or without a host route:
/// start-up finds attaches that died half-way among them.
pub async fn list_host_veths(veth_prefix: &str) -> Result<Vec<String>, RoutesError> {
    let ctx = "listing host veths";
    let mut sock = list_socket(ctx)?;
    let mut out: Vec<String> = prefixed_links(&mut sock, veth_prefix, ctx)
        .await?
        .into_values()
        .collect();
    out.sort();
    Ok(out)
}

/// Host routes (/32 and /128) of `route_protocol` on veths named
/// `veth_prefix…`: the containers attached on this host, as (host veth
/// name, address), one entry per address. For IPAM reconciliation at
/// start-up and CHECK.
pub async fn list_attachments(
    veth_prefix: &str,
    route_protocol: u8,
) -> Result<Vec<(String, IpAddr)>, RoutesError> {
    let ctx = "listing attachments";
    let mut sock = list_socket(ctx)?;
    let names = prefixed_links(&mut sock, veth_prefix, ctx).await?;
    let mut out = Vec::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        let mut found = Vec::new();
        let req = nl::dump::request(RTM_GETROUTE, &rtmsg(family, 0, 0, 0, 0, 0, 0));
        sock.dump(&req, &mut |part| {
            let m = match part {
                Part::Restart => return found.clear(),
                Part::Msg(m) => m,
            };
            let Ok(Decoded::Route { new: true, route }) = nl::decode(&m) else {
                return;
            };
            let Some(d) = DecodedRoute::decode(&route, &|i| names.get(&i).cloned()) else {
                return;
            };
            let host_len = if d.prefix.is_ipv4() { 32 } else { 128 };
            if d.protocol != route_protocol
                || d.prefix.prefix() != host_len
                || d.table != RT_TABLE_MAIN
            {
                return;
            }
            if let Some(KernelRoute::Local { dev }) = d.route
                && d.oifs.first().is_some_and(|i| names.contains_key(i))
            {
                found.push((dev, d.prefix.ip()));
            }
        })
        .await
        .map_err(|e| RoutesError::io(format!("{ctx}: dumping routes"), e))?;
        out.extend(found);
    }
    out.sort();
    Ok(out)
}
