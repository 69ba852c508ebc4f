//! The resolved configuration: every default applied, every value typed.
//!
//! Data flow: built only by the validator ([`crate::parse`]); read by the agent,
//! which turns it into the speaker's and the dataplane's own settings. `PartialEq`
//! lets a SIGHUP reload diff the old and new peers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

/// Defaults of DESIGN.md §6, in one place (the docs and the tests use them too).
pub mod defaults {
    pub const LISTEN_PORT: u16 = 179;
    pub const HOLD_TIME: u16 = 90;
    pub const CONNECT_RETRY: u16 = 5;
    pub const GRACEFUL_RESTART: bool = true;
    pub const RESTART_TIME: u16 = 120;
    pub const PEER_PORT: u16 = 179;
    pub const MTU: u16 = 0;
    pub const VXLAN_VNI: u32 = 4096;
    /// IANA's VXLAN port (RFC 7348 §5).
    pub const VXLAN_PORT: u16 = 4789;
    pub const ROUTE_PROTOCOL: u8 = 149;
    pub const VETH_PREFIX: &str = "tt";
    pub const API_SOCKET: &str = "/run/tortie/tortie.sock";
    pub const METRICS_LISTEN: &str = "127.0.0.1:9642";
    pub const STATE_DIR: &str = "/var/lib/tortie";
    pub const BFD_INTERVAL_MS: u32 = 300;
    pub const BFD_MULTIPLIER: u8 = 3;
}

/// The whole file, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub node: Node,
    pub bgp: Bgp,
    pub peers: Vec<Peer>,
    pub dataplane: Dataplane,
    pub api: Api,
    pub metrics: Metrics,
    pub state: State,
    /// Filters, `bgp.ebgp_requires_policy`, communities of originated routes.
    pub policy: crate::Policy,
}

/// `[node]`: who this node is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// `name`, default: the kernel hostname.
    pub name: String,
    /// `address`: the node's IPs *and* their subnets' prefix lengths (host bits
    /// kept), at most one per family: BGP source address, advertised next hop
    /// of that family, and the cross-subnet test.
    pub addresses: NodeAddresses,
    pub asn: u32,
    /// `router_id`, default: the IPv4 address (required without one).
    pub router_id: Ipv4Addr,
    /// `pod_cidr`: this node's blocks (host bits zero), of either family, in
    /// the order written: the IPAM fills them in this order. Never empty.
    pub pod_cidrs: Vec<IpNetwork>,
    /// `cluster_id` (RFC 4456 route reflection), default: `router_id`.
    pub cluster_id: Ipv4Addr,
}

impl Node {
    /// The IPv4 blocks, in order.
    pub fn blocks_v4(&self) -> impl Iterator<Item = Ipv4Network> + '_ {
        self.pod_cidrs.iter().filter_map(|b| match b {
            IpNetwork::V4(n) => Some(*n),
            IpNetwork::V6(_) => None,
        })
    }

    /// The IPv6 blocks, in order.
    pub fn blocks_v6(&self) -> impl Iterator<Item = Ipv6Network> + '_ {
        self.pod_cidrs.iter().filter_map(|b| match b {
            IpNetwork::V6(n) => Some(*n),
            IpNetwork::V4(_) => None,
        })
    }

    /// Whether `ip` lies inside one of the node's blocks.
    pub fn in_blocks(&self, ip: IpAddr) -> bool {
        self.pod_cidrs.iter().any(|b| b.contains(ip))
    }
}

/// `node.address`: at most one address per family, at least one in all (the
/// only constructor, [`NodeAddresses::new`], refuses none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeAddresses {
    v4: Option<Ipv4Network>,
    v6: Option<Ipv6Network>,
}

impl NodeAddresses {
    /// `None` when both are absent: a node has at least one address.
    pub fn new(v4: Option<Ipv4Network>, v6: Option<Ipv6Network>) -> Option<NodeAddresses> {
        (v4.is_some() || v6.is_some()).then_some(NodeAddresses { v4, v6 })
    }

    /// The IPv4 address with its subnet's prefix length.
    pub fn v4(&self) -> Option<Ipv4Network> {
        self.v4
    }

    /// The IPv6 address with its subnet's prefix length.
    pub fn v6(&self) -> Option<Ipv6Network> {
        self.v6
    }

    /// The address of `ip`'s family, if the node has one.
    pub fn of_family(&self, ip: IpAddr) -> Option<IpNetwork> {
        match ip {
            IpAddr::V4(_) => self.v4.map(IpNetwork::V4),
            IpAddr::V6(_) => self.v6.map(IpNetwork::V6),
        }
    }

    /// The IPv4 address if there is one, else the IPv6 one: the default
    /// session source and the address whose link gives the underlay MTU.
    pub fn primary(&self) -> IpNetwork {
        match (self.v4, self.v6) {
            (Some(a), _) => IpNetwork::V4(a),
            (None, Some(b)) => IpNetwork::V6(b),
            // `new` refuses this; an IPv4 placeholder keeps the type total.
            (None, None) => IpNetwork::V4(Ipv4Network::from(Ipv4Addr::UNSPECIFIED)),
        }
    }

    /// Every address, IPv4 first.
    pub fn iter(&self) -> impl Iterator<Item = IpNetwork> + '_ {
        self.v4
            .map(IpNetwork::V4)
            .into_iter()
            .chain(self.v6.map(IpNetwork::V6))
    }

    /// Whether `ip` is one of the node's addresses.
    pub fn is_own(&self, ip: IpAddr) -> bool {
        self.iter().any(|a| a.ip() == ip)
    }

    /// Whether `ip` is on the subnet of the node's address of its family.
    pub fn on_subnet(&self, ip: IpAddr) -> bool {
        self.of_family(ip).is_some_and(|a| a.contains(ip))
    }
}

/// `[bgp]`: the speaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bgp {
    /// `listen_port`; 0 means do not listen (active sessions only).
    pub listen_port: u16,
    /// `listen_address`, default `::` (every local address of both families:
    /// a dual-stack listener, IPv4 peers arriving IPv4-mapped).
    pub listen_address: IpAddr,
    /// Hold time we propose, seconds (RFC 4271 §4.2: 0 or ≥ 3).
    pub hold_time: u16,
    /// ConnectRetryTime, seconds (≥ 1).
    pub connect_retry: u16,
    pub graceful_restart: bool,
    /// Restart Time advertised in the graceful restart capability (RFC 4724 §3: ≤ 4095).
    pub restart_time: u16,
    pub advertise: Advertise,
}

impl Bgp {
    /// Where the speaker accepts sessions; `None` when `listen_port = 0`.
    pub fn listen(&self) -> Option<SocketAddr> {
        (self.listen_port != 0).then(|| SocketAddr::new(self.listen_address, self.listen_port))
    }
}

/// What the node originates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Advertise {
    /// The block, plus every container /32 outside it.
    Block,
    /// The block and every container /32.
    Hosts,
}

/// One `[[peer]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub address: IpAddr,
    pub asn: u32,
    /// `name`, default: the address.
    pub name: String,
    /// Remote TCP port for outgoing connections.
    pub port: u16,
    /// TCP MD5 key (RFC 2385): `password`, or the contents of `password_file`
    /// (one trailing newline removed). At most 80 bytes (Linux TCP_MD5SIG_MAXKEYLEN).
    pub password: Option<Vec<u8>>,
    pub passive: bool,
    /// GTSM (RFC 5082): the peer is at most this many hops away (1..=254).
    pub ttl_security: Option<u8>,
    pub route_reflector_client: bool,
    /// Close the session (Cease, RFC 4486 subcode 1) when the peer sends more prefixes.
    pub max_prefixes: Option<u32>,
    /// Overrides `bgp.hold_time` for this peer.
    pub hold_time: Option<u16>,
    /// `source_address` (update-source): the session's local address and the
    /// next hop advertised to this peer; default `node.address`.
    pub source_address: Option<IpAddr>,
    /// `multihop`: TTL of the session's packets; default 1 for eBGP, 64 for iBGP.
    pub multihop: Option<u8>,
    /// `bfd = true` with its timers (single-hop BFD, RFC 5880/5881).
    pub bfd: Option<Bfd>,
    /// `import_filter`: the named filter run on every route it announces.
    pub import_filter: Option<std::sync::Arc<tortie_bgp::policy::Filter>>,
    /// `export_filter`: the named filter run on every route sent to it.
    pub export_filter: Option<std::sync::Arc<tortie_bgp::policy::Filter>>,
    /// `max_prefixes_restart`: idle time after a max-prefix Cease.
    pub max_prefixes_restart: std::time::Duration,
    /// `families`: the unicast families the session carries (IPv4 first);
    /// default: those the node has blocks for.
    pub families: Vec<tortie_bgp::AddressFamily>,
}

/// A peer's BFD settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bfd {
    /// `bfd_interval_ms`: desired transmit and required receive interval once Up.
    pub interval_ms: u32,
    /// `bfd_multiplier`: Detect Mult.
    pub multiplier: u8,
}

/// `[dataplane]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataplane {
    pub encapsulation: Encapsulation,
    /// `vxlan_vni`: the VXLAN Network Identifier (RFC 7348 §5: 24 bits).
    pub vxlan_vni: u32,
    /// `vxlan_port`: UDP destination port of VXLAN packets.
    pub vxlan_port: u16,
    /// 0: the underlay MTU minus the encapsulation overhead; else 576..=65535.
    pub mtu: u16,
    /// Kernel route protocol number marking the routes tortie owns.
    pub route_protocol: u8,
    /// Host-side veth names are this prefix + 11 hex characters (≤ 15 in all).
    pub veth_prefix: String,
    /// `nexthop_objects`: learned routes with one plain next hop go through
    /// kernel nexthop objects tortie owns (`RTA_NH_ID`; Linux ≥ 5.3, else
    /// inline, logged once). Default on.
    pub nexthop_objects: bool,
    /// `nat_outgoing`: masquerade pod traffic leaving `cluster_cidrs` (default off).
    pub nat_outgoing: bool,
    /// `cluster_cidrs`: the cluster's pod ranges, both families (required with
    /// `nat_outgoing`; each node's block lies inside one).
    pub cluster_cidrs: Vec<ipnetwork::IpNetwork>,
}

/// `dataplane.encapsulation`: the routes crate's model (one model; the
/// names are parsed with its [`FromStr`](std::str::FromStr)).
pub use tortie_routes::Encapsulation;

/// `[api]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Api {
    /// Unix socket of the local API (created with mode 0600).
    pub socket: PathBuf,
}

/// `[metrics]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metrics {
    /// `None` when `listen = ""` (metrics disabled).
    pub listen: Option<SocketAddr>,
}

/// `[state]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// Where IPAM keeps its allocations.
    pub dir: PathBuf,
}
