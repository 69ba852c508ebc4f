//! The local API's wire types: what `tortie` (the CLI) and the daemon
//! exchange as JSON over HTTP/1.1 on the unix socket (`api.socket`).
//!
//! Data flow: the CLI builds a request type, [`client`] sends it; the
//! [`server`] decodes it and calls the daemon's [`Backend`]; the answer (or an
//! [`ApiError`]) travels back as JSON. These types are the contract documented
//! in `docs/cli.md`; add fields with `#[serde(default)]` to stay compatible.
//! The CNI plugin's `POST /v1/cni` is not JSON: the server hands its body to
//! [`crate::cni::serve`], which runs on the same [`Backend`].
pub mod client;
mod completion;
pub mod server;

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

/// The default socket path (DESIGN.md §6, `api.socket`).
pub const DEFAULT_SOCKET: &str = "/run/tortie/tortie.sock";

/// `POST /v1/attach`: give a container an address and a veth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachRequest {
    /// Attachment id: unique per container interface (the CNI plugin uses
    /// `CNI_CONTAINERID/CNI_IFNAME`).
    pub id: String,
    /// Path of the container's network namespace (e.g. `/run/netns/c1`).
    pub netns: String,
    /// Interface name inside the container; `eth0` when absent.
    #[serde(default)]
    pub ifname: Option<String>,
    /// Requested static addresses, comma-separated, at most one per family
    /// (`"10.244.1.5"`, `"fd00::5"`, `"10.244.1.5,fd00::5"`); a family the
    /// node has blocks for and that is not given is allocated.
    #[serde(default)]
    pub ip: Option<String>,
}

/// One of a container's addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerAddress {
    /// With its prefix length: `10.244.1.2/32`, `fd00:10:244:1::2/128`.
    pub address: String,
    /// The gateway of its family: `169.254.1.1`, `fe80::ecee:eeff:feee:eeee`.
    pub gateway: String,
}

/// What an attachment looks like; returned by attach and check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachResult {
    pub id: String,
    /// The container's first address (IPv4 if it has one), without a prefix
    /// length (a /32 or a /128); every address is in `addresses`.
    pub ip: String,
    pub prefix_len: u8,
    /// The gateway of `ip`'s family (link-local).
    pub gateway: String,
    /// Every address, IPv4 first (absent from older agents).
    #[serde(default)]
    pub addresses: Vec<ContainerAddress>,
    pub netns: String,
    pub host_ifname: String,
    #[serde(default)]
    pub host_mac: Option<String>,
    pub container_ifname: String,
    #[serde(default)]
    pub container_mac: Option<String>,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// True when a host route (/32, /128) is advertised on its own (outside
    /// the blocks, or `advertise = "hosts"`).
    #[serde(default)]
    pub advertised: bool,
}

/// `POST /v1/detach`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetachRequest {
    pub id: String,
}

/// Answer to detach: what was released. Detaching an unknown id is not an
/// error (CNI DEL is idempotent): both fields are then empty/false.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetachResult {
    pub id: String,
    /// The first released address (see `released_ips`).
    #[serde(default)]
    pub released_ip: Option<String>,
    /// Every released address, IPv4 first.
    #[serde(default)]
    pub released_ips: Vec<String>,
    /// A veth was found and removed.
    #[serde(default)]
    pub removed_interface: bool,
}

/// `POST /v1/check` (CNI CHECK): is the attachment still as we made it?
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub id: String,
    #[serde(default)]
    pub netns: Option<String>,
}

/// `POST /v1/gc` (CNI GC): detach every CNI attachment whose id is not listed.
/// Only ids in the CNI plugin's form (`CONTAINERID/IFNAME`, i.e. containing a
/// `/`) are candidates: containers attached with `tortie attach` are never
/// collected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcRequest {
    pub valid_ids: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcResult {
    pub removed: Vec<String>,
}

/// `GET /v1/health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub ok: bool,
    pub version: String,
}

/// `GET /v1/status`: the node and its peers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    pub version: String,
    pub node: NodeView,
    /// Initial convergence done (End-of-RIB from every peer or the timer):
    /// routes adopted at start-up that were not re-learned have been swept.
    pub converged: bool,
    pub peers: Vec<PeerView>,
    pub containers: u64,
    pub ipam: IpamView,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    pub name: String,
    /// The IPv4 address if the node has one, else the IPv6 one.
    pub address: String,
    /// Every `node.address`, IPv4 first (older agents: absent).
    #[serde(default)]
    pub addresses: Vec<String>,
    pub asn: u32,
    pub router_id: String,
    /// The first block.
    pub pod_cidr: String,
    /// Every `node.pod_cidr` block, in order (older agents: absent).
    #[serde(default)]
    pub pod_cidrs: Vec<String>,
    pub encapsulation: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamView {
    pub allocated: u64,
    pub free: u64,
    pub reserved: u64,
}

/// One BGP neighbour, as `tortie status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerView {
    pub address: String,
    pub name: String,
    pub asn: u32,
    pub local_asn: u32,
    /// RFC 4271 §8 state name: Idle, Connect, Active, OpenSent, OpenConfirm, Established.
    pub state: String,
    /// When the state was entered, seconds since the Unix epoch.
    pub since: u64,
    /// Prefixes the peer announced (accepted + filtered).
    pub routes_received: u64,
    pub routes_advertised: u64,
    #[serde(default)]
    pub remote_id: Option<String>,
    #[serde(default)]
    pub hold_time: Option<u16>,
    pub established_transitions: u64,
    #[serde(default)]
    pub messages_received: BTreeMap<String, u64>,
    #[serde(default)]
    pub messages_sent: BTreeMap<String, u64>,
    /// What `tortie status` shows in its Info column: the last error
    /// (NOTIFICATION sent/received, connect failure…) while the session is
    /// not Established, `None` once it is (as `birdc show protocols` does).
    #[serde(default)]
    pub info: Option<String>,
    /// The last error whatever the state (it may predate the current
    /// session), like FRR's "Last reset … due to …".
    #[serde(default)]
    pub last_error: Option<String>,
    /// Our end of the session (its source address): the next hop we
    /// advertise to this peer.
    #[serde(default)]
    pub local_address: Option<String>,
    /// The peer's BFD session, when `bfd = true`.
    #[serde(default)]
    pub bfd: Option<BfdView>,
    /// A problem the session cannot report itself, whatever its state: e.g.
    /// a next hop the peer will likely reject (not on its subnet).
    #[serde(default)]
    pub warning: Option<String>,
    /// When `last_error` happened, seconds since the Unix epoch.
    #[serde(default)]
    pub last_error_at: Option<u64>,
    /// "iBGP", "eBGP" or "iBGP, route reflector client".
    #[serde(default)]
    pub session_type: String,
    /// When the session last came up or went down (the agent's start until
    /// the first change), seconds since the Unix epoch: what `Since` shows.
    #[serde(default)]
    pub up_down_since: u64,
    /// TCP endpoints (address:port) of the current or last session.
    #[serde(default)]
    pub local_endpoint: Option<String>,
    #[serde(default)]
    pub remote_endpoint: Option<String>,
    /// Negotiated keepalive interval (seconds) while Established.
    #[serde(default)]
    pub keepalive_time: Option<u16>,
    /// Negotiated address families, e.g. "ipv4-unicast".
    #[serde(default)]
    pub families: Vec<String>,
    /// Negotiated capabilities (RFC 5492), e.g. "4-octet AS", "route refresh".
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Prefixes in the peer's Adj-RIB-In (passed the import policy).
    #[serde(default)]
    pub routes_accepted: u64,
    /// Prefixes the import guard or the peer's import filter refused.
    #[serde(default)]
    pub routes_filtered: u64,
    /// Of `routes_accepted` and `routes_advertised`, the IPv6 prefixes
    /// (IPv4 is the rest).
    #[serde(default)]
    pub routes_accepted_ipv6: u64,
    #[serde(default)]
    pub routes_advertised_ipv6: u64,
    /// Why the session last stopped being Established.
    #[serde(default)]
    pub down_reason: Option<EventView>,
    /// The last NOTIFICATION the peer sent, and the last we sent.
    #[serde(default)]
    pub notification_received: Option<EventView>,
    #[serde(default)]
    pub notification_sent: Option<EventView>,
}

/// Something that happened to a session and when (seconds since the Unix epoch).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    pub text: String,
    pub at: u64,
}

/// A peer's BFD session (RFC 5880 names).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BfdView {
    /// AdminDown, Down, Init or Up.
    pub state: String,
    /// The peer's state as last received.
    pub remote_state: String,
    /// Why it last went down (RFC 5880 §4.1 diagnostic), e.g.
    /// "control detection time expired".
    pub diagnostic: String,
    /// When `state` was entered, seconds since the Unix epoch.
    pub since: u64,
    /// State changes since the session was configured.
    pub transitions: u64,
    /// Detection Time in use, milliseconds (RFC 5880 §6.8.4).
    #[serde(default)]
    pub detection_time_ms: Option<u64>,
    pub local_discriminator: u32,
    pub remote_discriminator: u32,
    /// The last socket error, if any.
    #[serde(default)]
    pub error: Option<String>,
}

/// `GET /v1/routes`: one Loc-RIB prefix with every candidate path (and the
/// paths refused on import). `GET /v1/routes/PREFIX`: that prefix only;
/// `GET /v1/routes/filtered`: every prefix with a refused path.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteView {
    pub prefix: String,
    /// "ipv4" or "ipv6" (unicast); empty from agents before dual-stack.
    #[serde(default)]
    pub family: String,
    pub paths: Vec<PathView>,
    /// A kernel route for the prefix carries our protocol number.
    pub installed: bool,
    /// Why no kernel route, when there is none and BGP knows why: the best
    /// path is this node's own, or every path was filtered.
    #[serde(default)]
    pub not_installed: Option<String>,
}

/// Which routes `GET /v1/routes[/…]` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoutesQuery {
    All,
    /// One prefix (as written by the user; the backend parses it).
    Prefix(String),
    Filtered,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PathView {
    /// Peer address; `None` for a locally originated path.
    #[serde(default)]
    pub peer: Option<String>,
    #[serde(default)]
    pub next_hop: Option<String>,
    pub as_path: String,
    pub origin: String,
    #[serde(default)]
    pub local_pref: Option<u32>,
    #[serde(default)]
    pub med: Option<u32>,
    pub best: bool,
    pub ecmp: bool,
    pub stale: bool,
    /// Why it lost against the best path.
    #[serde(default)]
    pub reason: Option<String>,
    /// Refused on import (not a candidate): by what (the import guard and
    /// why, or `filter "NAME" rule N`).
    #[serde(default)]
    pub filtered: Option<String>,
    /// Standard and large communities, as operators write them.
    #[serde(default)]
    pub communities: Vec<String>,
}

/// What went wrong, by kind; the server maps kinds to HTTP statuses and the
/// CNI plugin to CNI error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    BadRequest,
    NotFound,
    Conflict,
    Exhausted,
    Unavailable,
    Internal,
}

impl ErrorKind {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Exhausted => 507,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

/// The JSON error body of every non-2xx answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    #[serde(rename = "error")]
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

/// What the daemon offers the API server. Implemented by the agent; the
/// server owns HTTP, JSON and routing only.
pub trait Backend: Send + Sync + 'static {
    fn status(&self) -> impl Future<Output = Result<StatusView, ApiError>> + Send;
    fn routes(
        &self,
        q: RoutesQuery,
    ) -> impl Future<Output = Result<Vec<RouteView>, ApiError>> + Send;
    fn attach(
        &self,
        req: AttachRequest,
    ) -> impl Future<Output = Result<AttachResult, ApiError>> + Send;
    fn detach(
        &self,
        req: DetachRequest,
    ) -> impl Future<Output = Result<DetachResult, ApiError>> + Send;
    fn check(
        &self,
        req: CheckRequest,
    ) -> impl Future<Output = Result<AttachResult, ApiError>> + Send;
    fn gc(&self, req: GcRequest) -> impl Future<Output = Result<GcResult, ApiError>> + Send;
}
