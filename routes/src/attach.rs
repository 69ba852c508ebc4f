//! Container attach / detach on a veth pair.
//!
//! `attach` creates the pair in one request: the host end (`tt` + 11 hex
//! chars of sha1(container id)) in the caller's namespace and the container
//! end created directly inside the container's namespace (`IFLA_NET_NS_FD`
//! on the peer, never created then moved). Then, inside the container (via a
//! netlink socket opened by a thread that entered the namespace, see
//! `crate::netns`): `lo` up, the /32, `169.254.1.1 dev eth0 scope link`,
//! `default via 169.254.1.1 dev eth0` and a permanent neighbour entry
//! `169.254.1.1 lladdr <host veth MAC>`. On the host: no address,
//! `proxy_arp=1`, `proxy_delay=0`, `forwarding=1`, `ip_forward=1`, a
//! permanent neighbour entry `<ip> lladdr <container MAC> dev ttX`, a wait
//! (bounded, 200 ms) until both ends are operationally up, and last the host
//! route `<ip>/32 dev ttX scope link proto <ours>`.
//!
//! Why a permanent neighbour entry for the gateway: proxy ARP only answers
//! for 169.254.1.1 when the host has an ordinary route to that address out of
//! another interface (BENCH-NOTES), which a host without a default route does
//! not have, and adding a `169.254.1.1/32` route to the host would touch the
//! host's own table and could collide with other software. With the static
//! entry the container never has to ARP for its gateway, whatever the host's
//! routing looks like; `proxy_arp=1` stays on (as Calico does) for anything
//! else the container might ARP for on that link.
//!
//! Any failure after the veth exists deletes it again (which removes the
//! peer, its addresses and routes): a failed attach leaves nothing behind.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use futures::TryStreamExt;
use ipnetwork::Ipv4Network;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkMessage,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteScope};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth};
use sha1::{Digest, Sha1};

use crate::error::RoutesError;
use crate::netns::{self, NsConnection};
use crate::sysctl;
use crate::types::KernelRoute;
use crate::wire;

/// The gateway address every container routes through.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// What to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachRequest {
    /// Container id (hashed into the host veth name).
    pub container_id: String,
    /// Network namespace: `/run/netns/X` or `/proc/PID/ns/net`.
    pub netns: PathBuf,
    /// Interface name inside the container (`eth0`).
    pub ifname: String,
    /// The container's address (a /32).
    pub address: Ipv4Addr,
    /// MTU for both ends.
    pub mtu: u32,
    /// Host veth name prefix (`tt`).
    pub veth_prefix: String,
    /// Protocol number of the host route (149).
    pub route_protocol: u8,
}

/// What `attach` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Container id.
    pub container_id: String,
    /// Host veth name.
    pub host_ifname: String,
    /// Host veth ifindex.
    pub host_ifindex: u32,
    /// MAC of the host veth, `aa:bb:cc:dd:ee:ff` (the container's gateway
    /// 169.254.1.1 resolves to it).
    pub host_mac: String,
    /// Interface name inside the container.
    pub container_ifname: String,
    /// MAC of the container's interface, `aa:bb:cc:dd:ee:ff`.
    pub container_mac: String,
    /// The container's address.
    pub address: Ipv4Addr,
    /// MTU set on both ends.
    pub mtu: u32,
    /// The namespace path attached into.
    pub netns: PathBuf,
}

/// Host veth name: `prefix` + the first 11 hex characters of sha1(id).
pub fn host_ifname(prefix: &str, container_id: &str) -> String {
    let digest = Sha1::digest(container_id.as_bytes());
    let mut name = String::with_capacity(prefix.len() + 11);
    name.push_str(prefix);
    for b in digest.iter() {
        name.push_str(&format!("{b:02x}"));
    }
    name.truncate(prefix.len() + 11);
    name
}

fn mac_string(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn validate(req: &AttachRequest, ctx: &str) -> Result<(), RoutesError> {
    if req.container_id.is_empty() {
        return Err(RoutesError::invalid(ctx, "empty container id"));
    }
    if req.ifname.is_empty() || req.ifname.len() > 15 || req.ifname.contains(['/', ' ', ':']) {
        return Err(RoutesError::invalid(
            ctx,
            format!("invalid interface name {:?}", req.ifname),
        ));
    }
    if req.veth_prefix.len() > 4 || req.veth_prefix.contains(['/', ' ', ':', '.']) {
        return Err(RoutesError::invalid(
            ctx,
            format!(
                "veth prefix {:?} must be at most 4 plain characters",
                req.veth_prefix
            ),
        ));
    }
    if !(68..=65535).contains(&req.mtu) {
        return Err(RoutesError::invalid(
            ctx,
            format!("MTU {} out of range 68..65535", req.mtu),
        ));
    }
    Ok(())
}

/// Attach a container. See the module docs for exactly what is created.
pub async fn attach(req: &AttachRequest) -> Result<Attachment, RoutesError> {
    let id = &req.container_id;
    let ctx = format!("attach {id}");
    validate(req, &ctx)?;
    let host = host_ifname(&req.veth_prefix, id);
    let ns_name = req.netns.display().to_string();
    // Open the namespace first: a missing namespace fails before anything exists.
    let ns = netns::open_netns(&req.netns, &ctx)?;
    let hconn = netns::here(&ctx)?;
    let h = &hconn.handle;

    use std::os::fd::AsRawFd;
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(req.ifname.clone())
        .mtu(req.mtu)
        .setns_by_fd(ns.as_raw_fd())
        .build();
    let veth = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host.clone())
        .mtu(req.mtu)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    if let Err(e) = h.link().add(veth).execute().await {
        let mut context = format!("{ctx}: creating veth {host} in {ns_name}");
        let err = RoutesError::from_rtnl(&context, e);
        if err.errno() == Some(libc::EEXIST) {
            // Say which end exists: ours on the host, or the name inside.
            context.push_str(match link_by_name(h, &host).await {
                Ok(Some(_)) => " (the host veth exists: already attached?)",
                _ => " (an interface of that name exists inside the namespace)",
            });
            return Err(RoutesError::Netlink {
                context,
                errno: libc::EEXIST,
            });
        }
        return Err(err);
    }

    match configure(req, &ctx, &host, &ns, &hconn).await {
        Ok(a) => Ok(a),
        Err(e) => {
            if let Err(cleanup) = delete_link(h, &host).await {
                tracing::warn!(container = %id, "cleaning up after failed attach: {cleanup}");
            }
            Err(e)
        }
    }
}

async fn configure(
    req: &AttachRequest,
    ctx: &str,
    host: &str,
    ns: &std::fs::File,
    hconn: &NsConnection,
) -> Result<Attachment, RoutesError> {
    let h = &hconn.handle;
    let (host_index, host_mac) = link_by_name(h, host)
        .await
        .map_err(|e| RoutesError::from_rtnl(format!("{ctx}: looking up {host}"), e))?
        .ok_or_else(|| RoutesError::unexpected(ctx, format!("{host} vanished after creation")))?;
    sysctl::configure_host_veth(host).map_err(|e| e.within(ctx))?;

    // Inside the container.
    let cconn = netns::inside(ns, ctx).await?;
    let c = &cconn.handle;
    let ifname = &req.ifname;
    let step = |what: &str| format!("{ctx}: {what} in {}", req.netns.display());
    let (c_index, c_mac) = link_by_name(c, ifname)
        .await
        .map_err(|e| RoutesError::from_rtnl(step(&format!("looking up {ifname}")), e))?
        .ok_or_else(|| {
            RoutesError::unexpected(step("looking up interface"), format!("{ifname} missing"))
        })?;
    // (Asking for the peer to be up at creation is refused with ENOTCONN.)
    c.link()
        .set(LinkUnspec::new_with_index(c_index).up().build())
        .execute()
        .await
        .map_err(|e| RoutesError::from_rtnl(step(&format!("setting {ifname} up")), e))?;
    if let Some((lo, _)) = link_by_name(c, "lo")
        .await
        .map_err(|e| RoutesError::from_rtnl(step("looking up lo"), e))?
    {
        c.link()
            .set(LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await
            .map_err(|e| RoutesError::from_rtnl(step("setting lo up"), e))?;
    }
    c.address()
        .add(c_index, IpAddr::V4(req.address), 32)
        .replace()
        .execute()
        .await
        .map_err(|e| {
            RoutesError::from_rtnl(step(&format!("adding {}/32 to {ifname}", req.address)), e)
        })?;
    let mut gw_route = RouteMessage::default();
    gw_route.header.address_family = AddressFamily::Inet;
    gw_route.header.destination_prefix_length = 32;
    gw_route.header.table = 254;
    gw_route.header.scope = RouteScope::Link;
    gw_route.header.kind = netlink_packet_route::route::RouteType::Unicast;
    gw_route.header.protocol = netlink_packet_route::route::RouteProtocol::Boot;
    gw_route
        .attributes
        .push(RouteAttribute::Destination(RouteAddress::Inet(GATEWAY)));
    gw_route.attributes.push(RouteAttribute::Oif(c_index));
    c.route()
        .add(gw_route)
        .replace()
        .execute()
        .await
        .map_err(|e| {
            RoutesError::from_rtnl(step(&format!("adding route {GATEWAY} dev {ifname}")), e)
        })?;
    let mut default = RouteMessage::default();
    default.header.address_family = AddressFamily::Inet;
    default.header.table = 254;
    default.header.scope = RouteScope::Universe;
    default.header.kind = netlink_packet_route::route::RouteType::Unicast;
    default.header.protocol = netlink_packet_route::route::RouteProtocol::Boot;
    default
        .attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(GATEWAY)));
    default.attributes.push(RouteAttribute::Oif(c_index));
    c.route()
        .add(default)
        .replace()
        .execute()
        .await
        .map_err(|e| RoutesError::from_rtnl(step(&format!("adding default via {GATEWAY}")), e))?;
    c.neighbours()
        .add(c_index, IpAddr::V4(GATEWAY))
        .link_layer_address(&host_mac)
        .replace()
        .execute()
        .await
        .map_err(|e| RoutesError::from_rtnl(step(&format!("adding neighbour {GATEWAY}")), e))?;
    // Host side: a permanent neighbour entry for the container, so the host
    // never ARPs for it (Calico does the same). Without it the first ARP
    // could go out before the fresh veth is ready and be lost, and the
    // first packet to the container then waited for the 1 s retransmission.
    h.neighbours()
        .add(host_index, IpAddr::V4(req.address))
        .link_layer_address(&c_mac)
        .replace()
        .execute()
        .await
        .map_err(|e| {
            RoutesError::from_rtnl(
                format!("{ctx}: adding neighbour {} dev {host}", req.address),
                e,
            )
        })?;
    // Both ends operationally up (the kernel's linkwatch has run: qdisc
    // attached, carrier on) before traffic is routed to the container.
    let deadline = tokio::time::Instant::now() + OPER_UP_WAIT;
    wait_oper_up(c, c_index, deadline)
        .await
        .map_err(|e| RoutesError::from_rtnl(step(&format!("reading {ifname} state")), e))?;
    drop(cconn);
    wait_oper_up(h, host_index, deadline)
        .await
        .map_err(|e| RoutesError::from_rtnl(format!("{ctx}: reading {host} state"), e))?;

    // Host route last: once it exists, traffic can reach the container.
    let prefix = Ipv4Network::new(req.address, 32).map_err(|e| RoutesError::unexpected(ctx, e))?;
    let route = KernelRoute::Local {
        dev: host.to_string(),
    };
    let msg = wire::route_message(
        prefix,
        &route,
        req.route_protocol,
        wire::RT_TABLE_MAIN,
        &|_| Some(host_index),
    )
    .map_err(|e| RoutesError::unexpected(ctx, e))?;
    h.route().add(msg).replace().execute().await.map_err(|e| {
        RoutesError::from_rtnl(format!("{ctx}: adding host route {prefix} dev {host}"), e)
    })?;

    Ok(Attachment {
        container_id: req.container_id.clone(),
        host_ifname: host.to_string(),
        host_ifindex: host_index,
        host_mac: mac_string(&host_mac),
        container_ifname: ifname.clone(),
        container_mac: mac_string(&c_mac),
        address: req.address,
        mtu: req.mtu,
        netns: req.netns.clone(),
    })
}

/// Longest `attach` waits for both veth ends to be operationally up.
const OPER_UP_WAIT: Duration = Duration::from_millis(200);

/// Poll until link `index` is operationally up (`IFF_RUNNING`, which the
/// kernel's linkwatch sets together with attaching the real qdisc, and
/// `IFF_LOWER_UP`), or until `deadline`; running late is logged, not an
/// error (traffic then flows a little later). Returns whether it came up.
async fn wait_oper_up(
    h: &rtnetlink::Handle,
    index: u32,
    deadline: tokio::time::Instant,
) -> Result<bool, rtnetlink::Error> {
    let mut pause = Duration::from_micros(200);
    loop {
        let mut stream = h.link().get().match_index(index).execute();
        if let Some(msg) = stream.try_next().await? {
            let f = msg.header.flags;
            if f.contains(LinkFlags::Running) && f.contains(LinkFlags::LowerUp) {
                return Ok(true);
            }
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            tracing::warn!(
                ifindex = index,
                "veth not operationally up after {OPER_UP_WAIT:?}"
            );
            return Ok(false);
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// (ifindex, MAC) of a link by name, `None` if it does not exist.
async fn link_by_name(
    h: &rtnetlink::Handle,
    name: &str,
) -> Result<Option<(u32, Vec<u8>)>, rtnetlink::Error> {
    let mut stream = h.link().get().match_name(name.to_string()).execute();
    match stream.try_next().await {
        Ok(Some(msg)) => Ok(Some((msg.header.index, mac_of(&msg)))),
        Ok(None) => Ok(None),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == libc::ENODEV => Ok(None),
        Err(e) => Err(e),
    }
}

fn mac_of(msg: &LinkMessage) -> Vec<u8> {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(m) => Some(m.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Delete a link by name; "no such device" is success.
async fn delete_link(h: &rtnetlink::Handle, name: &str) -> Result<(), RoutesError> {
    let msg = LinkUnspec::new_with_name(name).build();
    match h.link().del_with_message(msg).execute().await {
        Ok(()) => Ok(()),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == libc::ENODEV => Ok(()),
        Err(e) => Err(RoutesError::from_rtnl(format!("deleting {name}"), e)),
    }
}

/// Detach a container: delete its host veth. The kernel removes the peer in
/// the container, and every route through the veth (the host route of
/// `route_protocol` included) with it. Already gone is success.
pub async fn detach(
    container_id: &str,
    veth_prefix: &str,
    route_protocol: u8,
) -> Result<(), RoutesError> {
    let ctx = format!("detach {container_id}");
    let host = host_ifname(veth_prefix, container_id);
    let conn = netns::here(&ctx)?;
    delete_link(&conn.handle, &host)
        .await
        .map_err(|e| e.within(&ctx))?;
    tracing::debug!(container = container_id, veth = %host, proto = route_protocol, "detached");
    Ok(())
}

/// Host routes of `route_protocol` on veths named `veth_prefix…`: the
/// containers attached on this host, as (host veth name, address). For IPAM
/// reconciliation at start-up.
pub async fn list_attachments(
    veth_prefix: &str,
    route_protocol: u8,
) -> Result<Vec<(String, Ipv4Addr)>, RoutesError> {
    let ctx = "listing attachments";
    let conn = netns::here(ctx)?;
    let h = &conn.handle;
    let mut names = std::collections::HashMap::new();
    let mut links = h.link().get().execute();
    while let Some(msg) = links
        .try_next()
        .await
        .map_err(|e| RoutesError::from_rtnl(format!("{ctx}: dumping links"), e))?
    {
        for a in &msg.attributes {
            if let LinkAttribute::IfName(n) = a
                && n.starts_with(veth_prefix)
            {
                names.insert(msg.header.index, n.clone());
            }
        }
    }
    let mut out = Vec::new();
    let mut routes = h
        .route()
        .get(rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(msg) = routes
        .try_next()
        .await
        .map_err(|e| RoutesError::from_rtnl(format!("{ctx}: dumping routes"), e))?
    {
        let Some(d) = wire::decode_route(&msg, &|i| names.get(&i).cloned()) else {
            continue;
        };
        if d.protocol != route_protocol || d.prefix.prefix() != 32 || d.table != wire::RT_TABLE_MAIN
        {
            continue;
        }
        if let Some(KernelRoute::Local { dev }) = d.route
            && d.oifs.first().is_some_and(|i| names.contains_key(i))
        {
            out.push((dev, d.prefix.ip()));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ifname_is_prefix_plus_11_hex() {
        // sha1("abc") = a9993e364706816aba3e25717850c26c9cd0d89d
        assert_eq!(host_ifname("tt", "abc"), "tta9993e36470");
        assert_eq!(host_ifname("tt", "abc").len(), 13);
    }

    #[test]
    fn mac_formatting() {
        assert_eq!(
            mac_string(&[0xaa, 0xbb, 0, 1, 2, 0xff]),
            "aa:bb:00:01:02:ff"
        );
    }
}
