//! The guest program of the IP-in-IP VM test (docs/vm.md): a thin CLI over
//! `tortie-routes` that the guest's scenario runs inside one node's network
//! namespace (`ip netns exec nodeA /ipip_guest …`), so every netlink socket it
//! opens, and every route and device it touches, is that node's.
//!
//! - `attach`: attach containers as the agent does: `underlay_mtu` of the
//!   node address's interface, container MTU = underlay − 20 when the node
//!   encapsulates, then `tortie_routes::attach` per container.
//! - `routes`: program the node's routes as the agent does on start-up:
//!   `ensure_tunl0` (address from the node's block, MTU underlay − 20) unless
//!   the encapsulation is `none`; `RouteTable::start` (adopts routes of ours),
//!   the containers found by `list_attachments` as `Local` routes, a
//!   blackhole for the node's block, one `route_for_learned` route per peer
//!   block; then `converged` (sweeps what is no longer desired) and `flush`.
//!   It prints every route with the decision taken and a `stats:` line
//!   (adopted, writes, …), and exits 1 if the kernel refused any of them
//!   (expected for `none` across subnets: the kernel has no on-link path to a
//!   next hop in another subnet).
//!
//! The scenario checks the resulting kernel state and datapath with `ip` and
//! `ping`; this program only drives the tortie code.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use tortie_routes::{
    AttachRequest, DEFAULT_ROUTE_PROTOCOL, DEFAULT_VETH_PREFIX, Encapsulation, IPIP_OVERHEAD,
    Ipv4Network, KernelRoute, RT_TABLE_MAIN, RouteTable, TUNNEL_DEV,
};

#[derive(Parser)]
#[command(about = "drive tortie-routes inside one node of the IP-in-IP VM test")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Attach containers to this node.
    Attach {
        /// The node's underlay address with its prefix length (`node.address`).
        #[arg(long)]
        node_addr: Ipv4Network,
        /// Encapsulation mode of the node (sets the container MTU).
        #[arg(long, value_enum)]
        encap: Encap,
        /// `ID,NETNS-PATH,IP` of a container; repeatable.
        #[arg(long = "container", required = true)]
        containers: Vec<Container>,
    },
    /// Program tunl0 and the node's routes.
    Routes {
        /// The node's underlay address with its prefix length.
        #[arg(long)]
        node_addr: Ipv4Network,
        /// The node's own pod block (gets a blackhole route).
        #[arg(long)]
        block: Ipv4Network,
        /// Address of tunl0, from the node's block.
        #[arg(long)]
        tunnel_addr: Ipv4Addr,
        /// Encapsulation mode.
        #[arg(long, value_enum)]
        encap: Encap,
        /// `BLOCK,NEXT-HOP` learned from another node; repeatable.
        #[arg(long = "peer")]
        peers: Vec<Peer>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Encap {
    None,
    Ipip,
    IpipCrossSubnet,
}

impl From<Encap> for Encapsulation {
    fn from(e: Encap) -> Self {
        match e {
            Encap::None => Encapsulation::None,
            Encap::Ipip => Encapsulation::IpIp,
            Encap::IpipCrossSubnet => Encapsulation::IpIpCrossSubnet,
        }
    }
}

#[derive(Clone)]
struct Container {
    id: String,
    netns: PathBuf,
    ip: Ipv4Addr,
}

impl FromStr for Container {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut it = s.split(',');
        match (it.next(), it.next(), it.next(), it.next()) {
            (Some(id), Some(ns), Some(ip), None) if !id.is_empty() && !ns.is_empty() => {
                Ok(Container {
                    id: id.to_string(),
                    netns: PathBuf::from(ns),
                    ip: ip
                        .parse()
                        .map_err(|e| format!("container address {ip:?}: {e}"))?,
                })
            }
            _ => Err(format!("want ID,NETNS-PATH,IP, got {s:?}")),
        }
    }
}

#[derive(Clone)]
struct Peer {
    block: Ipv4Network,
    next_hop: Ipv4Addr,
}

impl FromStr for Peer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (block, nh) = s
            .split_once(',')
            .ok_or_else(|| format!("want BLOCK,NEXT-HOP, got {s:?}"))?;
        Ok(Peer {
            block: block.parse().map_err(|e| format!("block {block:?}: {e}"))?,
            next_hop: nh.parse().map_err(|e| format!("next hop {nh:?}: {e}"))?,
        })
    }
}

/// The node's subnet from `node.address` (e.g. 192.168.10.2/24 → 192.168.10.0/24).
fn subnet_of(addr: Ipv4Network) -> Result<Ipv4Network> {
    Ipv4Network::new(addr.network(), addr.prefix()).map_err(|e| anyhow!("{addr}: {e}"))
}

/// Container and tunnel MTU for the node's encapsulation mode.
async fn mtus(node_addr: Ipv4Network, encap: Encap) -> Result<(u32, u32)> {
    let underlay = tortie_routes::underlay_mtu(node_addr.ip())
        .await
        .with_context(|| format!("underlay MTU of {}", node_addr.ip()))?;
    let tunnel = underlay
        .checked_sub(IPIP_OVERHEAD)
        .ok_or_else(|| anyhow!("underlay MTU {underlay} too small"))?;
    let container = match encap {
        Encap::None => underlay,
        Encap::Ipip | Encap::IpipCrossSubnet => tunnel,
    };
    Ok((underlay, container))
}

fn describe(route: &KernelRoute) -> String {
    match route {
        KernelRoute::Blackhole => "blackhole".into(),
        KernelRoute::Local { dev } => format!("dev {dev} scope link"),
        KernelRoute::Unicast { next_hops } => next_hops
            .iter()
            .map(|nh| {
                let mut s = format!("via {}", nh.gateway);
                if let Some(dev) = &nh.dev {
                    s.push_str(&format!(" dev {dev}"));
                }
                if nh.onlink {
                    s.push_str(" onlink");
                }
                s
            })
            .collect::<Vec<_>>()
            .join(" nexthop "),
    }
}

async fn attach(node_addr: Ipv4Network, encap: Encap, containers: &[Container]) -> Result<()> {
    let (underlay, mtu) = mtus(node_addr, encap).await?;
    // The route table is the only writer of our host routes.
    let table = RouteTable::start(DEFAULT_ROUTE_PROTOCOL, RT_TABLE_MAIN).await?;
    for c in containers {
        let req = AttachRequest {
            container_id: c.id.clone(),
            netns: c.netns.clone(),
            ifname: "eth0".into(),
            address: c.ip,
            mtu,
            veth_prefix: DEFAULT_VETH_PREFIX.into(),
        };
        let a = tortie_routes::attach(&req).await?;
        let prefix =
            Ipv4Network::new(a.address, 32).map_err(|e| anyhow!("{}/32: {e}", a.address))?;
        let local = KernelRoute::Local {
            dev: a.host_ifname.clone(),
        };
        table.install(prefix, local).await?;
        println!(
            "attached {} ({}) on {} <-> {} {} in {}, mtu {mtu} (underlay {underlay})",
            a.container_id,
            a.address,
            a.host_ifname,
            a.container_ifname,
            a.container_mac,
            a.netns.display()
        );
    }
    Ok(())
}

async fn routes(
    node_addr: Ipv4Network,
    block: Ipv4Network,
    tunnel_addr: Ipv4Addr,
    encap: Encap,
    peers: &[Peer],
) -> Result<bool> {
    let subnet = subnet_of(node_addr)?;
    if !block.contains(tunnel_addr) {
        bail!("tunnel address {tunnel_addr} is not in the node's block {block}");
    }
    if !matches!(encap, Encap::None) {
        let (underlay, _) = mtus(node_addr, encap).await?;
        let mtu = underlay - IPIP_OVERHEAD;
        tortie_routes::ensure_tunl0(tunnel_addr, mtu).await?;
        println!("{TUNNEL_DEV}: {tunnel_addr}/32, mtu {mtu} (underlay {underlay}), up");
    }
    let table = RouteTable::start(DEFAULT_ROUTE_PROTOCOL, RT_TABLE_MAIN).await?;
    for (dev, ip) in
        tortie_routes::list_attachments(DEFAULT_VETH_PREFIX, DEFAULT_ROUTE_PROTOCOL).await?
    {
        let prefix = Ipv4Network::new(ip, 32).map_err(|e| anyhow!("{ip}/32: {e}"))?;
        println!("route {prefix}: container, dev {dev}");
        table.set(prefix, KernelRoute::Local { dev }).await;
    }
    println!("route {block}: own block, blackhole");
    table.set(block, KernelRoute::Blackhole).await;
    for p in peers {
        let route =
            tortie_routes::route_for_learned(&[p.next_hop.into()], encap.into(), subnet.into());
        let inside = if subnet.contains(p.next_hop) {
            "inside"
        } else {
            "outside"
        };
        println!(
            "route {}: next hop {} is {inside} {subnet}: {}",
            p.block,
            p.next_hop,
            describe(&route)
        );
        table.set(p.block, route).await;
    }
    // Our start-up is complete: sweep adopted routes that are no longer desired.
    table.converged().await;
    let result = table.flush().await;
    for (prefix, route) in sorted(table.installed().await) {
        println!("installed {prefix} {}", describe(&route));
    }
    let st = table.stats();
    // One line the scenario greps: a re-run over an unchanged kernel must write nothing.
    println!(
        "stats: adopted {} writes {} swept {} restored {} netlink_errors {}",
        st.adopted, st.writes, st.swept, st.restored, st.netlink_errors
    );
    match result {
        Ok(()) => Ok(true),
        Err(e) => {
            println!("not installed: {e}");
            Ok(false)
        }
    }
}

fn sorted<V>(
    m: std::collections::HashMap<tortie_routes::IpNetwork, V>,
) -> Vec<(tortie_routes::IpNetwork, V)> {
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by_key(|(p, _)| (p.network(), p.prefix()));
    v
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ipip_guest: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = rt.block_on(async {
        match &cli.cmd {
            Cmd::Attach {
                node_addr,
                encap,
                containers,
            } => attach(*node_addr, *encap, containers).await.map(|()| true),
            Cmd::Routes {
                node_addr,
                block,
                tunnel_addr,
                encap,
                peers,
            } => routes(*node_addr, *block, *tunnel_addr, *encap, peers).await,
        }
    });
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ipip_guest: {e:#}");
            ExitCode::from(2)
        }
    }
}
