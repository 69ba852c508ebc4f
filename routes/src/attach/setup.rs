//! The attach itself, on the thread `worker` gives it: create the veth pair
//! with its container end inside the container's namespace, configure the
//! host end and the container side in one batch each, and wait until both
//! ends are operationally up (see the parent module for what is created).
//! Any failure after the veth exists deletes it again
//! ([`mod@super::detach`]'s `delete_link_blocking`).

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::attacher::Attacher;
use super::detach::delete_link_blocking;
use super::{
    AttachRequest, Attachment, GATEWAY, HOST_MAC, HostRoutes, host_ifname, mac_string, v6,
};
use crate::error::RoutesError;
use crate::netns;
use crate::nl::RouteEncoder;
use crate::nl::rtnl::*;
use crate::sysctl;
use crate::types::KernelRoute;
use ipnetwork::IpNetwork;

const AF_INET: u8 = libc::AF_INET as u8;

/// Longest wait for the kernel to answer a batch of requests (it answers
/// inside `sendmsg`; this only bounds a lost answer).
const NETLINK_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn nl_deadline() -> Instant {
    Instant::now() + NETLINK_TIMEOUT
}

/// The error for a refused request: `context`, the errno, and the kernel's
/// extended-ack text when it sent one.
fn refused(context: String, errno: i32, message: Option<String>) -> RoutesError {
    RoutesError::Netlink {
        context: match message {
            Some(m) if !m.is_empty() => format!("{context} (kernel: {m})"),
            _ => context,
        },
        errno,
    }
}

/// `Ok(link)` of a request that must have succeeded.
pub(super) fn expect_ok(
    o: Option<&Outcome>,
    context: impl Fn() -> String,
) -> Result<Option<LinkInfo>, RoutesError> {
    match o {
        Some(Outcome::Ok(l)) => Ok(l.clone()),
        Some(Outcome::Err(errno, m)) => Err(refused(context(), *errno, m.clone())),
        None => Err(RoutesError::unexpected(
            context(),
            "no answer from the kernel",
        )),
    }
}

/// Per-step times of one attach (debug log, benchmark decomposition).
#[derive(Default, Debug)]
struct Steps {
    sockets: Duration,
    veth: Duration,
    container: Duration,
    host: Duration,
    oper_up: Duration,
}

/// The whole attach, on the calling thread, which it moves into the
/// container's namespace: call it only on a thread of its own (which
/// `worker` moves back, or lets exit).
/// `on_host_up` is called once the host end is up and configured, before
/// this thread enters the container ([`super::attach_then`]).
pub(super) fn attach_blocking(
    attacher: &Attacher,
    req: &AttachRequest,
    ns: &File,
    on_host_up: impl FnOnce(&str),
) -> Result<Attachment, RoutesError> {
    let t0 = Instant::now();
    let mut steps = Steps::default();
    let id = &req.container_id;
    let ctx = format!("attach {id}");
    let host = host_ifname(&req.veth_prefix, id);
    let ns_name = req.netns.display().to_string();
    let io = |what: &str| {
        let c = format!("{ctx}: {what}");
        move |e: std::io::Error| RoutesError::io(c, e)
    };
    // Subscribed to link notifications before the veth exists, so the
    // oper-up wait below cannot miss a transition (the container-side
    // socket likewise subscribes before its end comes up). A kept socket
    // and `ip_forward` file (`attacher`).
    let mut h = attacher
        .socket()
        .map_err(io("preparing a netlink socket"))?;
    attacher.ensure_ip_forward().map_err(|e| e.within(&ctx))?;
    // We choose the container's MAC, so the host side (its permanent
    // neighbour entry) is configured before entering the container.
    let c_mac = random_mac().map_err(io("choosing a MAC address"))?;
    let mut lap = Instant::now();
    steps.sockets = lap - t0;

    // The pair in one request: the peer is created inside the namespace.
    // One TX and one RX queue per end, asked for explicitly: without them
    // the kernel allocates one queue per possible CPU and then cuts the
    // real count to 1 (`veth_init_queues`), and cutting TX queues of a
    // registered device waits for an expedited RCU grace period
    // (`netif_set_real_num_tx_queues` → `synchronize_net`) — twice per
    // pair. Same real queue counts either way (lab/bench/README.md,
    // session 6, cni lane: veth creation figures).
    // The host end is created down and brought up in the host batch, after
    // its IPv6 address generation is switched off (see `configure`).
    let mut create = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifinfomsg(0, 0, 0))
        .str(IFLA_IFNAME, &host)
        .u32(IFLA_MTU, req.mtu)
        .u32(IFLA_NUM_TX_QUEUES, 1)
        .u32(IFLA_NUM_RX_QUEUES, 1);
    if req.v6().is_some() {
        // Its EUI-64 link-local address is the container's IPv6 gateway.
        create = create.attr(IFLA_ADDRESS, &HOST_MAC);
    }
    let create = create
        .nest(IFLA_LINKINFO)
        .str(IFLA_INFO_KIND, "veth")
        .nest(IFLA_INFO_DATA)
        .nest(VETH_INFO_PEER)
        .raw(&ifinfomsg(0, 0, 0))
        .str(IFLA_IFNAME, &req.ifname)
        .u32(IFLA_MTU, req.mtu)
        .u32(IFLA_NUM_TX_QUEUES, 1)
        .u32(IFLA_NUM_RX_QUEUES, 1)
        .attr(IFLA_ADDRESS, &c_mac)
        .u32(IFLA_NET_NS_FD, ns.as_raw_fd() as u32)
        .end()
        .end()
        .end();
    let r = h
        .transact(vec![create, getlink_by_name(&host)], nl_deadline())
        .map_err(io(&format!("creating veth {host}")))?;
    let creating = || format!("{ctx}: creating veth {host} in {ns_name}");
    match r.first() {
        Some(Outcome::Err(errno, m)) => {
            let mut context = creating();
            if *errno == libc::EEXIST {
                // Say which end exists: ours on the host, or the name inside.
                context.push_str(match r.get(1) {
                    Some(Outcome::Ok(Some(_))) => " (the host veth exists: already attached?)",
                    _ => " (an interface of that name exists inside the namespace)",
                });
            }
            return Err(refused(context, *errno, m.clone()));
        }
        Some(Outcome::Ok(_)) => {}
        None => {
            return Err(RoutesError::unexpected(
                creating(),
                "no answer from the kernel",
            ));
        }
    }
    steps.veth = lap.elapsed();
    lap = Instant::now();

    let result = configure(
        req,
        &ctx,
        &host,
        ns,
        c_mac,
        &mut h,
        r.get(1),
        &mut steps,
        &mut lap,
        on_host_up,
    );
    match result {
        Ok(a) => {
            tracing::debug!(
                container = %id,
                veth = %host,
                total_us = t0.elapsed().as_micros() as u64,
                sockets_us = steps.sockets.as_micros() as u64,
                veth_us = steps.veth.as_micros() as u64,
                container_us = steps.container.as_micros() as u64,
                host_us = steps.host.as_micros() as u64,
                oper_up_us = steps.oper_up.as_micros() as u64,
                "attached"
            );
            attacher.keep(h);
            Ok(a)
        }
        Err(e) => {
            if let Err(cleanup) = delete_link_blocking(&mut h, &host) {
                tracing::warn!(container = %id, "cleaning up after failed attach: {cleanup}");
            }
            Err(e)
        }
    }
}

/// A random locally administered unicast MAC (what the kernel picks when
/// none is given, `eth_random_addr`).
fn random_mac() -> std::io::Result<[u8; 6]> {
    let mut m = [0u8; 6];
    // SAFETY: writes at most 6 bytes into `m`.
    let n = unsafe { libc::getrandom(m.as_mut_ptr().cast(), m.len(), 0) };
    if n != 6 {
        return Err(std::io::Error::last_os_error());
    }
    m[0] = (m[0] & 0xfe) | 0x02;
    Ok(m)
}

fn getlink_by_name(name: &str) -> Msg {
    Msg::new(RTM_GETLINK, 0, &ifinfomsg(0, 0, 0))
        .str(IFLA_IFNAME, name)
        .u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)
}

fn getlink_by_index(index: u32) -> Msg {
    Msg::new(RTM_GETLINK, 0, &ifinfomsg(index, 0, 0)).u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)
}

#[allow(clippy::too_many_arguments)]
fn configure(
    req: &AttachRequest,
    ctx: &str,
    host: &str,
    ns: &File,
    c_mac: [u8; 6],
    h: &mut Rtnl,
    host_lookup: Option<&Outcome>,
    steps: &mut Steps,
    lap: &mut Instant,
    on_host_up: impl FnOnce(&str),
) -> Result<Attachment, RoutesError> {
    let hl = expect_ok(host_lookup, || format!("{ctx}: looking up {host}"))?
        .ok_or_else(|| RoutesError::unexpected(ctx, format!("{host} vanished after creation")))?;
    let host_index = hl.index;
    let host_mac = hl.mac;
    let ifname = &req.ifname;
    let step = |what: &str| format!("{ctx}: {what} in {}", req.netns.display());
    let io = |what: String| move |e: std::io::Error| RoutesError::io(what, e);

    // Host side, one batch. First, no kernel-made IPv6 link-local address
    // on the host end (`addr_gen_mode` none; the kernel refuses it at
    // creation, so it comes before the end is set up): nothing routes
    // through one (an IPv6 container's gateway, `v6::GATEWAY6`, is added
    // explicitly), and without it bringing the pair up skips the address,
    // its fe80::/64 and local routes, DAD and the solicited-node group, and
    // their notifications to every listener (the agent's own route
    // monitor). A kernel without IPv6 refuses the request: not needed then.
    // Then, for IPv4: proxy_arp=1 and forwarding=1 on the veth
    // (IFLA_INET_CONF), neigh proxy_delay=0 (else the first proxied ARP
    // reply comes ~0.8 s late), and a permanent neighbour entry for the
    // container, so the host never ARPs for it (Calico does the same).
    // Without it the first ARP could go out before the fresh veth is ready
    // and be lost, and the first packet to the container then waited for
    // the 1 s retransmission. Then the IPv6 half (`v6::host_batch`).
    let mut batch = vec![
        (
            Msg::new(RTM_SETLINK, 0, &ifinfomsg(host_index, 0, 0))
                .nest(IFLA_AF_SPEC)
                .nest(libc::AF_INET6 as u16)
                .attr(IFLA_INET6_ADDR_GEN_MODE, &[IN6_ADDR_GEN_MODE_NONE])
                .end()
                .end(),
            format!("{ctx}: no IPv6 link-local address on {host}"),
        ),
        (
            Msg::new(RTM_SETLINK, 0, &ifinfomsg(host_index, IFF_UP, IFF_UP)),
            format!("{ctx}: setting {host} up"),
        ),
    ];
    // The IPv4 devconf and neightbl requests, which may fall back to /proc.
    let mut devconf = 0..0;
    if let Some(address) = req.v4() {
        devconf = batch.len()..batch.len() + 2;
        batch.extend([
            (
                Msg::new(RTM_SETLINK, 0, &ifinfomsg(host_index, 0, 0))
                    .nest(IFLA_AF_SPEC)
                    .nest(libc::AF_INET as u16)
                    .nest(IFLA_INET_CONF)
                    .u32(IPV4_DEVCONF_PROXY_ARP, 1)
                    .u32(IPV4_DEVCONF_FORWARDING, 1)
                    .end()
                    .end()
                    .end(),
                format!("{ctx}: proxy_arp and forwarding on {host}"),
            ),
            (
                Msg::new(RTM_SETNEIGHTBL, 0, &ndtmsg(AF_INET))
                    .str(NDTA_NAME, "arp_cache")
                    .nest(NDTA_PARMS)
                    .u32(NDTPA_IFINDEX, host_index)
                    .attr(NDTPA_PROXY_DELAY, &0u64.to_ne_bytes())
                    .end(),
                format!("{ctx}: proxy_delay 0 on {host}"),
            ),
            (
                Msg::permanent_neighbour(host_index, IpAddr::V4(address), &c_mac),
                format!("{ctx}: adding neighbour {address} dev {host}"),
            ),
        ]);
    }
    if let Some(address) = req.v6() {
        // The container end is still down: no carrier yet on the host end.
        v6::host_sysctls(host).map_err(|e| e.within(ctx))?;
        batch.extend(
            v6::host_batch(host, host_index, address, &c_mac)
                .into_iter()
                .map(|(m, w)| (m, format!("{ctx}: {w}"))),
        );
    }
    // Last, the end up: the host routes, when they are the route table's
    // to have (`HostRoutes`, see the parent module): the table expects
    // them, so it takes them as its own. Created exclusively: a route at
    // the prefix (ours or another protocol's) is left alone, and the
    // caller installs that one through the table instead.
    let mut routes = Vec::new();
    let routes_at = batch.len();
    if let Some(owner) = req.host_routes {
        for &ip in &req.addresses {
            if let Some(m) = host_route(owner, ip, host, host_index) {
                routes.push((batch.len(), ip));
                batch.push((m, format!("{ctx}: route {ip} dev {host}")));
            }
        }
    }
    let (batch, what): (Vec<Msg>, Vec<String>) = batch.into_iter().unzip();
    let r = h
        .transact(batch, nl_deadline())
        .map_err(io(format!("{ctx}: configuring {host}")))?;
    if let Some(Outcome::Err(errno, m)) = r.first() {
        tracing::debug!(veth = %host, errno, message = ?m, "addr_gen_mode none refused; the kernel makes the link-local address");
    }
    if let Some(Outcome::Err(errno, m)) = r
        .get(devconf.clone())
        .and_then(|d| d.iter().find(|o| matches!(o, Outcome::Err(..))))
    {
        // A kernel that refuses the netlink forms: the same through /proc
        // (this thread is still in the host's namespace).
        tracing::debug!(veth = %host, errno, message = ?m, "devconf/neightbl over netlink refused; using sysctl");
        sysctl::configure_host_veth(host).map_err(|e| e.within(ctx))?;
    }
    let mut routed = Vec::new();
    for (i, ip) in routes {
        match r.get(i) {
            Some(Outcome::Ok(_)) => routed.push(ip),
            o => {
                tracing::debug!(veth = %host, %ip, outcome = ?o, "host route not written by the attach; the route table installs it")
            }
        }
    }
    for (i, w) in what.iter().enumerate().skip(1) {
        if !devconf.contains(&i) && i < routes_at {
            expect_ok(r.get(i), || w.clone())?;
        }
    }
    steps.host = lap.elapsed();
    // The host end is up: the caller may start the host route's install
    // now, on the route table's thread, while the container side is made.
    on_host_up(host);
    *lap = Instant::now();
    // Inside the container: a socket there (subscribed to link
    // notifications before the peer comes up), find the peer, then one
    // batch for the rest.
    netns::enter(ns, ctx)?;
    let mut c = Rtnl::open(RTMGRP_LINK).map_err(io(step("opening a netlink socket")))?;
    let c = &mut c;
    let r = c
        .transact(vec![getlink_by_name(ifname)], nl_deadline())
        .map_err(io(step(&format!("looking up {ifname}"))))?;
    let cl = expect_ok(r.first(), || step(&format!("looking up {ifname}")))?.ok_or_else(|| {
        RoutesError::unexpected(step("looking up interface"), format!("{ifname} missing"))
    })?;
    let c_index = cl.index;
    let mut batch = vec![
        // (Asking for the peer to be up at creation is refused with ENOTCONN.)
        (
            Msg::new(RTM_SETLINK, 0, &ifinfomsg(c_index, IFF_UP, IFF_UP)),
            format!("setting {ifname} up"),
        ),
        (
            Msg::new(RTM_SETLINK, 0, &ifinfomsg(0, IFF_UP, IFF_UP)).str(IFLA_IFNAME, "lo"),
            "setting lo up".to_string(),
        ),
    ];
    if let Some(address) = req.v4() {
        batch.extend(container_v4(ifname, c_index, address, &host_mac));
    }
    if let Some(address) = req.v6() {
        v6::container_sysctls(ifname).map_err(|e| e.within(ctx))?;
        batch.extend(v6::container_batch(ifname, c_index, address));
    }
    let (batch, what): (Vec<Msg>, Vec<String>) = batch.into_iter().unzip();
    let r = c
        .transact(batch, nl_deadline())
        .map_err(io(step("configuring the interface")))?;
    for (i, w) in what.iter().enumerate() {
        match r.get(i) {
            // A namespace without lo: nothing to bring up.
            Some(Outcome::Err(libc::ENODEV, _)) if i == 1 => {}
            o => {
                expect_ok(o, || step(w))?;
            }
        }
    }
    steps.container = lap.elapsed();
    *lap = Instant::now();

    // Both ends operationally up (the kernel's linkwatch has run: qdisc
    // attached, carrier on) before traffic is routed to the container.
    // Bringing the container end up turned both carriers on and queued a
    // linkwatch event per end for the kernel's workqueue; run them now on
    // this thread instead of waiting for a kworker (see `sync_linkwatch`).
    sync_linkwatch(c, ifname);
    sync_linkwatch(h, host);
    wait_oper_up(h, host_index, c, c_index, Instant::now() + OPER_UP_WAIT).map_err(io(format!(
        "{ctx}: waiting for {host} and {ifname} to come up"
    )))?;
    steps.oper_up = lap.elapsed();
    *lap = Instant::now();

    Ok(Attachment {
        container_id: req.container_id.clone(),
        host_ifname: host.to_string(),
        host_ifindex: host_index,
        host_mac: mac_string(&host_mac),
        container_ifname: ifname.clone(),
        container_mac: mac_string(&c_mac),
        addresses: req.addresses.clone(),
        mtu: req.mtu,
        netns: req.netns.clone(),
        routed,
    })
}

/// The request for `ip`'s host route `<ip>/32 dev <dev> scope link` (or
/// `/128`) of `owner`'s protocol and table: the route table's own encoding
/// of a [`KernelRoute::Local`] (`RouteEncoder`), created exclusively
/// (`NLM_F_EXCL`, which the kernel checks before `NLM_F_REPLACE`) and
/// acknowledged. `None` if it cannot be encoded (it names the device by
/// `index`, so it can): the table installs that route then.
fn host_route(owner: HostRoutes, ip: IpAddr, dev: &str, index: u32) -> Option<Msg> {
    let mut buf = Vec::with_capacity(64);
    let encoder = RouteEncoder {
        protocol: owner.protocol,
        table: owner.table,
        extra_flags: NLM_F_ACK | NLM_F_EXCL,
    };
    let route = KernelRoute::Local {
        dev: dev.to_string(),
    };
    encoder
        .encode(&mut buf, 0, IpNetwork::from(ip), Some(&route), &|_| {
            Some(index)
        })
        .ok()?;
    Some(Msg::from_bytes(buf))
}

/// The IPv4 half inside the container: the /32, `169.254.1.1 dev eth0
/// scope link`, `default via 169.254.1.1` and the gateway's permanent
/// neighbour entry.
fn container_v4(
    ifname: &str,
    c_index: u32,
    address: Ipv4Addr,
    host_mac: &[u8],
) -> Vec<(Msg, String)> {
    vec![
        (
            Msg::new(
                RTM_NEWADDR,
                NLM_F_CREATE | NLM_F_REPLACE,
                &ifaddrmsg(AF_INET, 32, RT_SCOPE_UNIVERSE, c_index),
            )
            .ip(IFA_LOCAL, IpAddr::V4(address))
            .ip(IFA_ADDRESS, IpAddr::V4(address)),
            format!("adding {address}/32 to {ifname}"),
        ),
        (
            Msg::new(
                RTM_NEWROUTE,
                NLM_F_CREATE | NLM_F_REPLACE,
                &rtmsg(AF_INET, 32, 254, RTPROT_BOOT, RT_SCOPE_LINK, RTN_UNICAST, 0),
            )
            .ip(RTA_DST, IpAddr::V4(GATEWAY))
            .u32(RTA_OIF, c_index),
            format!("adding route {GATEWAY} dev {ifname}"),
        ),
        (
            Msg::new(
                RTM_NEWROUTE,
                NLM_F_CREATE | NLM_F_REPLACE,
                &rtmsg(
                    AF_INET,
                    0,
                    254,
                    RTPROT_BOOT,
                    RT_SCOPE_UNIVERSE,
                    RTN_UNICAST,
                    0,
                ),
            )
            .ip(RTA_GATEWAY, IpAddr::V4(GATEWAY))
            .u32(RTA_OIF, c_index),
            format!("adding default via {GATEWAY}"),
        ),
        (
            Msg::permanent_neighbour(c_index, IpAddr::V4(GATEWAY), host_mac),
            format!("adding neighbour {GATEWAY}"),
        ),
    ]
}

/// Longest `attach` waits for both veth ends to be operationally up.
const OPER_UP_WAIT: Duration = Duration::from_millis(200);

/// Runs the kernel's pending linkwatch work for link `name` in `s`'s
/// namespace synchronously: `ETHTOOL_GLINK` (`SIOCETHTOOL` on the netlink
/// socket, which any socket accepts for its namespace) is answered by
/// `ethtool_op_get_link`, which calls `linkwatch_sync_dev` first — the
/// work the linkwatch kworker would do later (operstate, `IFF_RUNNING`,
/// the real qdisc attached), and its link notification, which
/// `wait_oper_up` then finds queued. Without it the attach waits for that
/// kworker: 6–60 µs on an idle host, milliseconds on a busy one (p90 5.3
/// ms vs 0.4 ms with the ioctl at load 13, lab/bench/README.md session 9).
/// Only an accelerator: a failure is logged and the wait does the rest.
fn sync_linkwatch(s: &Rtnl, name: &str) {
    /// `struct ethtool_value`.
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    const ETHTOOL_GLINK: u32 = 0x0000_000a;
    let mut value = EthtoolValue {
        cmd: ETHTOOL_GLINK,
        data: 0,
    };
    // SAFETY: an all-zero `ifreq` is valid (a name and a union of plain
    // data and pointers).
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, b) in ifr
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *d = b as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (&raw mut value).cast();
    // SAFETY: `ifr` is a valid `ifreq` whose data pointer points at
    // `value`, a `struct ethtool_value`, both alive for the call.
    let r = unsafe { libc::ioctl(s.raw_fd(), libc::SIOCETHTOOL, &raw mut ifr) };
    if r != 0 {
        tracing::debug!(link = name, error = %std::io::Error::last_os_error(), "ETHTOOL_GLINK failed; waiting for linkwatch");
    }
}

/// Waits until links `hi` (on `h`) and `ci` (on `c`) are operationally up
/// (see [`LinkInfo::oper_up`]) or until `deadline`. Event-driven: both
/// sockets are subscribed to link notifications and already hold the links'
/// state from their `RTM_GETLINK` answers; after an overrun the state is
/// asked again. Running late is logged, not an error (traffic then flows a
/// little later). Returns whether both came up.
fn wait_oper_up(
    h: &mut Rtnl,
    hi: u32,
    c: &mut Rtnl,
    ci: u32,
    deadline: Instant,
) -> std::io::Result<bool> {
    loop {
        for (s, i) in [(&mut *h, hi), (&mut *c, ci)] {
            // Drain what is queued (non-blocking).
            s.drain()?;
            if s.overrun || s.link(i).is_none() {
                s.overrun = false;
                s.transact(vec![getlink_by_index(i)], nl_deadline())?;
            }
        }
        let up = |s: &Rtnl, i| s.link(i).is_some_and(LinkInfo::oper_up);
        if up(h, hi) && up(c, ci) {
            return Ok(true);
        }
        if !crate::nl::poll_readable(&[h.raw_fd(), c.raw_fd()], deadline)? {
            tracing::warn!(
                host_ifindex = hi,
                container_ifindex = ci,
                "veth not operationally up after {OPER_UP_WAIT:?}"
            );
            return Ok(false);
        }
    }
}
