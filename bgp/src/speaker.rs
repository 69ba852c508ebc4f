//! The public face of the speaker: [`Speaker`], its configuration and what it
//! reports ([`SpeakerEvent`], [`PeerStatus`], [`RouteInfo`]).
//!
//! Data flow: [`Speaker::start`] spawns one RIB task (the single owner of the
//! RIBs), one session task per configured peer and, when `listen` is set, one
//! listener task that hands accepted connections to the peer task owning the
//! source address, and one BFD socket task for the peers with `bfd`. API calls
//! are messages to those tasks; best-path changes and peer state changes come
//! back on the `SpeakerEvent` receiver.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::fsm::SessionState;
use crate::policy::{Filter, ImportGuard};
pub use crate::rib::BestPathFeed;
use crate::types::{AddressFamily, PathAttributes, Prefix};
use crate::wire::GracefulRestartCapability;

/// Graceful restart (RFC 4724) settings for this speaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// Restart Time advertised to peers, seconds (12 bits: at most 4095).
    pub restart_time: u16,
    /// The families whose forwarding state (kernel routes) we kept across
    /// our own restart: the F bit of each in the capability (RFC 4724 §3);
    /// when any, the R bit on the first sessions and End-of-RIB deferral
    /// (RFC 4724 §4.1).
    pub forwarding_preserved: Vec<AddressFamily>,
}

impl GracefulRestartConfig {
    /// We restarted with some forwarding state preserved.
    pub fn restarting(&self) -> bool {
        !self.forwarding_preserved.is_empty()
    }

    /// The capability offered on a session carrying `families` (RFC 4724
    /// §3: the same families as its Multiprotocol capabilities, each with
    /// its own F bit). `first_session`: our first session with this peer
    /// since we started (the R bit, when we restarted).
    pub fn capability(
        &self,
        families: &[AddressFamily],
        first_session: bool,
    ) -> GracefulRestartCapability {
        GracefulRestartCapability {
            restart_state: first_session && self.restarting(),
            notification: false,
            restart_time: self.restart_time.min(4095),
            families: families
                .iter()
                .map(|f| (*f, self.forwarding_preserved.contains(f)))
                .collect(),
        }
    }
}

/// How the speaker runs. Plain data; the agent builds it from its TOML.
#[derive(Clone, Debug, PartialEq)]
pub struct SpeakerConfig {
    pub local_asn: u32,
    pub router_id: Ipv4Addr,
    /// The node's addresses, at most one per family: the source address of
    /// outgoing sessions of that family, and the next hop ("next-hop self")
    /// for routes of that family sent over a session of the other family
    /// (RFC 2545 §3, RFC 4760 §3). Empty: the kernel picks the source; the
    /// next hop is the session's local address, routes of the other family
    /// that need next-hop self are not sent.
    pub local_addresses: Vec<IpAddr>,
    /// Where to accept sessions; `None` (or port 0) means do not listen.
    pub listen: Option<SocketAddr>,
    /// Hold time we propose (RFC 4271 §4.2); 0 or >= 3.
    pub hold_time: u16,
    /// ConnectRetryTime base (RFC 4271 §8); failures back off exponentially.
    pub connect_retry: Duration,
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// Route reflector cluster id (RFC 4456); defaults to the router id when
    /// a peer is a route-reflector client.
    pub cluster_id: Option<Ipv4Addr>,
    /// The node's own blocks and addresses: routes for them are never
    /// accepted from a peer (see [`crate::policy::guard`]).
    pub guard: ImportGuard,
    /// No eBGP-to-eBGP transit unless an export filter rule accepts the
    /// route (FRR's `bgp ebgp-requires-policy`, for transit).
    pub ebgp_requires_policy: bool,
    /// Which best-path changes the owner is told of
    /// ([`SpeakerEvent::BestPathChanged`]), from the RIB's decision process
    /// to the event. [`BestPathFeed::Off`] for an owner that installs no
    /// route (`tortie run --no-kernel`): no per-route feed at all (no
    /// change built, no event, no next-hop interning, no Loc-RIB lookup at
    /// delivery); the Loc-RIB, advertisements to peers, queries and every
    /// other event are unchanged. [`BestPathFeed::NextHops`] for an owner
    /// that only installs routes (the agent reads a prefix and its next
    /// hops): events have `attributes` None, the RIB converts no attribute
    /// set for them, and a change that waited in the outbox is reported
    /// from the Loc-RIB's next hops alone (6.8 % of the agent's CPU in a 1M
    /// unique load went to such conversions, lab/bench/README.md session 8).
    pub best_path_feed: BestPathFeed,
    pub peers: Vec<PeerConfig>,
}

/// One configured neighbour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    pub address: IpAddr,
    pub asn: u32,
    pub name: String,
    /// Remote TCP port for outgoing connections (normally 179).
    pub port: u16,
    /// TCP MD5 signature key (RFC 2385), at most 80 bytes.
    pub password: Option<Vec<u8>>,
    /// Never connect; only accept.
    pub passive: bool,
    /// GTSM (RFC 5082): the peer is at most this many hops away.
    pub ttl_security: Option<u8>,
    pub route_reflector_client: bool,
    /// Cease/1 (RFC 4486) when the peer sends more prefixes than this.
    pub max_prefixes: Option<u32>,
    /// Overrides [`SpeakerConfig::hold_time`] for this peer.
    pub hold_time: Option<u16>,
    /// After a max-prefix Cease, stay Idle this long (refusing the peer's
    /// connections too) before trying again.
    pub max_prefixes_restart: Duration,
    /// Run on every route the peer announces ([`crate::policy::filter`]).
    /// Changing it with [`Speaker::reconfigure`] does not reset the session.
    pub import_filter: Option<Arc<Filter>>,
    /// Run on every route advertised to the peer; changing it re-exports.
    pub export_filter: Option<Arc<Filter>>,
    /// Source address of this session (update-source); overrides
    /// [`SpeakerConfig::local_addresses`] (its address of this family). The next hop we advertise follows it.
    pub source_address: Option<IpAddr>,
    /// TTL of the session's packets (eBGP multihop). `None`: 1 for eBGP
    /// (directly connected, as BIRD and FRR), 64 for iBGP (as BIRD; FRR uses
    /// 255). GTSM (`ttl_security`) overrides it with 255.
    pub multihop: Option<u8>,
    /// Single-hop BFD (RFC 5880/5881) beside the session: its Down takes
    /// the session down at once.
    pub bfd: Option<BfdConfig>,
    /// The unicast families offered in OPEN (Multiprotocol capabilities,
    /// RFC 4760 §8) and in the graceful restart capability: the session
    /// carries the ones both sides offer. Never empty.
    pub families: Vec<AddressFamily>,
    /// Our link-local address on the link shared with this peer: sent beside
    /// the global next hop of IPv6 routes we set next-hop self on (RFC 2545
    /// §3). `None` when the peer is not on a shared link.
    pub link_local_next_hop: Option<std::net::Ipv6Addr>,
}

/// [`PeerConfig::max_prefixes_restart`] by default (BIRD's `error wait time`
/// starts at 60 s too).
pub const DEFAULT_MAX_PREFIXES_RESTART: Duration = Duration::from_secs(60);

impl PeerConfig {
    /// The settings whose change needs a new session (all but the filters
    /// and BFD, which are applied to the running session).
    pub(crate) fn same_session(&self, other: &PeerConfig) -> bool {
        let strip = |p: &PeerConfig| PeerConfig {
            import_filter: None,
            export_filter: None,
            bfd: None,
            ..p.clone()
        };
        strip(self) == strip(other)
    }
}

/// BFD settings of one peer (RFC 5880 §6.8.1 variables).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BfdConfig {
    /// bfd.DesiredMinTxInterval and bfd.RequiredMinRxInterval once Up.
    pub interval: Duration,
    /// bfd.DetectMult.
    pub multiplier: u8,
}

impl Default for BfdConfig {
    /// 300 ms × 3, as Calico/BIRD operators usually set it.
    fn default() -> Self {
        BfdConfig {
            interval: Duration::from_millis(300),
            multiplier: 3,
        }
    }
}

/// A peer's BFD session, for `tortie status` and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdStatus {
    pub state: crate::bfd::BfdState,
    /// The peer's state as last received.
    pub remote_state: crate::bfd::BfdState,
    /// Why the session last went down (bfd.LocalDiag).
    pub diagnostic: crate::bfd::Diagnostic,
    /// When `state` was entered.
    pub since: SystemTime,
    /// State changes since the session was configured.
    pub transitions: u64,
    pub local_discriminator: u32,
    pub remote_discriminator: u32,
    /// The Detection Time in use (RFC 5880 §6.8.4), once packets arrived.
    pub detection_time: Option<Duration>,
    /// The last socket error (binding 3784, sending), if any.
    pub error: Option<String>,
}

impl PeerConfig {
    /// A peer with the defaults an operator expects: port 179, active, no
    /// password, no GTSM, no limit, the address as its name, IPv4 and IPv6
    /// unicast.
    pub fn new(address: IpAddr, asn: u32) -> Self {
        PeerConfig {
            address,
            asn,
            name: address.to_string(),
            port: 179,
            password: None,
            passive: false,
            ttl_security: None,
            route_reflector_client: false,
            max_prefixes: None,
            hold_time: None,
            max_prefixes_restart: DEFAULT_MAX_PREFIXES_RESTART,
            import_filter: None,
            export_filter: None,
            source_address: None,
            multihop: None,
            bfd: None,
            families: vec![AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST],
            link_local_next_hop: None,
        }
    }
}

/// An ECMP set of next hops (distinct, sorted), interned by the speaker: every
/// route change with the same set carries the same allocation, so passing one
/// on costs a reference count, and an owner that converts sets (the agent, to
/// kernel routes) can do it once per set ([`NextHops::ptr`]). A million
/// learned routes usually use a handful of sets.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NextHops(Arc<[IpAddr]>);

impl NextHops {
    /// A set of its own (not interned); the speaker hands out interned ones.
    pub fn new(hops: &[IpAddr]) -> NextHops {
        NextHops(Arc::from(hops))
    }

    /// The address of the shared allocation: equal for every change that
    /// carries this interned set (a key for per-set work while the set is
    /// held; a different set can reuse the address once this one is freed).
    pub fn ptr(&self) -> *const IpAddr {
        self.0.as_ptr()
    }

    /// Holders of this allocation (the interner drops sets only it holds).
    pub(crate) fn shared_count(&self) -> usize {
        Arc::strong_count(&self.0)
    }
}

impl std::ops::Deref for NextHops {
    type Target = [IpAddr];
    fn deref(&self) -> &[IpAddr] {
        &self.0
    }
}

impl std::borrow::Borrow<[IpAddr]> for NextHops {
    fn borrow(&self) -> &[IpAddr] {
        &self.0
    }
}

impl std::fmt::Debug for NextHops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl PartialEq<Vec<IpAddr>> for NextHops {
    fn eq(&self, other: &Vec<IpAddr>) -> bool {
        *self.0 == **other
    }
}

impl From<Vec<IpAddr>> for NextHops {
    fn from(v: Vec<IpAddr>) -> NextHops {
        NextHops(Arc::from(v))
    }
}

/// What the speaker tells its owner.
#[derive(Clone, Debug, PartialEq)]
pub enum SpeakerEvent {
    /// The Loc-RIB best path(s) for `prefix` changed (the state reported is
    /// the current one; see [`Speaker::start`]). `next_hops` is the ECMP
    /// set to install, interned; empty means nothing to install: the prefix is gone
    /// (`attributes` None) or our own origination is best (`attributes` Some).
    /// With [`BestPathFeed::NextHops`], `attributes` is always None.
    BestPathChanged {
        prefix: Prefix,
        next_hops: NextHops,
        attributes: Option<Arc<PathAttributes>>,
        /// The change waited in the outbox and left it ahead of the
        /// backlog there (its fresh tail, last in, first out: a change made
        /// while a pass was being delivered), not in the pass's order. An
        /// owner may let it overtake the changes it received before it (an
        /// express path) if it keeps each prefix's changes in order itself.
        /// False for a change handed out at once and for the pass.
        express: bool,
    },
    /// A session changed state (RFC 4271 §8 names), with a human reason.
    PeerStateChanged {
        peer: IpAddr,
        state: SessionState,
        reason: String,
    },
    /// Initial convergence: End-of-RIB received from every configured peer, or
    /// the restart/initial timer expired. Sent once.
    Converged,
}

/// Messages by type (RFC 4271 §4.1, RFC 2918).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageCounters {
    pub open: u64,
    pub update: u64,
    pub notification: u64,
    pub keepalive: u64,
    pub route_refresh: u64,
}

impl MessageCounters {
    /// Adds `other`'s counts to these.
    pub(crate) fn add(&mut self, other: &MessageCounters) {
        self.open += other.open;
        self.update += other.update;
        self.notification += other.notification;
        self.keepalive += other.keepalive;
        self.route_refresh += other.route_refresh;
    }

    /// `(type label, count)` pairs, labels as [`crate::wire::MessageType::name`].
    pub fn by_type(&self) -> [(&'static str, u64); 5] {
        [
            ("open", self.open),
            ("update", self.update),
            ("notification", self.notification),
            ("keepalive", self.keepalive),
            ("route_refresh", self.route_refresh),
        ]
    }
    pub fn total(&self) -> u64 {
        self.open + self.update + self.notification + self.keepalive + self.route_refresh
    }
}

/// What was negotiated in the OPEN exchange (RFC 5492), for display.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapabilitySummary {
    pub families: Vec<AddressFamily>,
    pub four_octet_as: bool,
    pub route_refresh: bool,
    pub extended_message: bool,
    /// The peer's graceful restart time, when it advertised GR.
    pub peer_restart_time: Option<u16>,
}

/// Something that happened to a session, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamped {
    pub text: String,
    pub at: SystemTime,
}

impl Stamped {
    pub fn now(text: impl Into<String>) -> Stamped {
        Stamped {
            text: text.into(),
            at: SystemTime::now(),
        }
    }
}

/// A snapshot of one peer, for `tortie status` and metrics. Counters and times
/// survive a reconfiguration that resets the session (same address).
#[derive(Clone, Debug, PartialEq)]
pub struct PeerStatus {
    pub address: IpAddr,
    pub name: String,
    pub remote_asn: u32,
    pub local_asn: u32,
    pub remote_id: Option<Ipv4Addr>,
    pub state: SessionState,
    /// When `state` was entered.
    pub since: SystemTime,
    /// When the session last became Established or stopped being Established
    /// (the speaker's start until the first change): how long it has been up
    /// or down, whatever the connection attempts in between.
    pub established_change: SystemTime,
    /// Prefixes in this peer's Adj-RIB-In (stale ones included).
    pub routes_received: u64,
    /// Prefixes in this peer's Adj-RIB-Out.
    pub routes_advertised: u64,
    /// Of `routes_received`, `routes_advertised`, `routes_stale` and
    /// `routes_filtered`, the IPv6 prefixes (IPv4 is the rest).
    pub routes_received_ipv6: u64,
    pub routes_advertised_ipv6: u64,
    pub routes_stale_ipv6: u64,
    pub routes_filtered_ipv6: u64,
    /// Of `routes_received`, those kept stale while the peer restarts
    /// gracefully (RFC 4724 §4.2).
    pub routes_stale: u64,
    pub messages_received: MessageCounters,
    pub messages_sent: MessageCounters,
    pub established_transitions: u64,
    pub last_error: Option<String>,
    /// When `last_error` happened.
    pub last_error_at: Option<SystemTime>,
    /// Why the session last stopped being Established (kept while it is down,
    /// whatever later connection attempts fail with).
    pub down_reason: Option<Stamped>,
    /// The last NOTIFICATION the peer sent ("6/4 (Cease: Administrative Reset)").
    pub notification_received: Option<Stamped>,
    /// The last NOTIFICATION we sent.
    pub notification_sent: Option<Stamped>,
    /// Negotiated hold time (seconds) while OpenConfirm/Established.
    pub hold_time: Option<u16>,
    /// Negotiated keepalive interval (seconds) while OpenConfirm/Established.
    pub keepalive_time: Option<u16>,
    pub capabilities: Option<CapabilitySummary>,
    /// Local address of the current (or last) session: the next hop we
    /// advertise to this peer ("next hop self").
    pub local_address: Option<IpAddr>,
    /// The BFD session, when the peer has `bfd`.
    pub bfd: Option<BfdStatus>,
    /// TCP endpoints of the current (or last) connection.
    pub local_endpoint: Option<SocketAddr>,
    pub remote_endpoint: Option<SocketAddr>,
    /// Prefixes the peer announced that the import guard or its import
    /// filter refused (kept aside, not in `routes_received`).
    pub routes_filtered: u64,
    /// From the peer's configuration (RFC 4456).
    pub route_reflector_client: bool,
}

impl PeerStatus {
    /// A peer that has not connected yet (Idle since now).
    pub fn new(address: IpAddr, name: String, remote_asn: u32, local_asn: u32) -> PeerStatus {
        let now = SystemTime::now();
        PeerStatus {
            address,
            name,
            remote_asn,
            local_asn,
            remote_id: None,
            state: SessionState::Idle,
            since: now,
            established_change: now,
            routes_received: 0,
            routes_advertised: 0,
            routes_received_ipv6: 0,
            routes_advertised_ipv6: 0,
            routes_stale_ipv6: 0,
            routes_filtered_ipv6: 0,
            routes_stale: 0,
            messages_received: MessageCounters::default(),
            messages_sent: MessageCounters::default(),
            established_transitions: 0,
            last_error: None,
            last_error_at: None,
            down_reason: None,
            notification_received: None,
            notification_sent: None,
            hold_time: None,
            keepalive_time: None,
            capabilities: None,
            local_endpoint: None,
            remote_endpoint: None,
            routes_filtered: 0,
            route_reflector_client: false,
            local_address: None,
            bfd: None,
        }
    }

    /// iBGP, eBGP or "iBGP, route reflector client" (RFC 4456).
    pub fn session_type(&self) -> &'static str {
        match (
            self.remote_asn == self.local_asn,
            self.route_reflector_client,
        ) {
            (true, true) => "iBGP, route reflector client",
            (true, false) => "iBGP",
            (false, _) => "eBGP",
        }
    }
}

/// One candidate path for a prefix, as the decision process ranked it.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteCandidate {
    /// The peer it came from; `None` for a locally originated route.
    pub peer: Option<IpAddr>,
    pub attributes: Arc<PathAttributes>,
    /// Selected as the best path.
    pub best: bool,
    /// Part of the ECMP set installed in the kernel.
    pub ecmp: bool,
    /// Kept from a restarting peer (RFC 4724), awaiting refresh.
    pub stale: bool,
    /// Why it lost against the best path (RFC 4271 §9.1.2.2 step), if it did.
    pub reason: Option<String>,
}

/// A path a peer announced that was refused on import (not a candidate).
#[derive(Clone, Debug, PartialEq)]
pub struct FilteredCandidate {
    pub peer: IpAddr,
    /// The attributes as received.
    pub attributes: Arc<PathAttributes>,
    /// By what: the import guard and why, or the filter and rule.
    pub reason: String,
}

/// One prefix with every candidate, best first, and the paths refused on
/// import.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteInfo {
    pub prefix: Prefix,
    pub candidates: Vec<RouteCandidate>,
    pub filtered: Vec<FilteredCandidate>,
}

/// Which prefixes [`Speaker::query_routes`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteQuery {
    /// The whole Loc-RIB (with the filtered paths of those prefixes).
    All,
    /// One prefix, whether it has a candidate or only filtered paths.
    Prefix(Prefix),
    /// Every prefix with a path refused on import (and its candidates).
    Filtered,
}

/// A running BGP speaker. Dropping it without [`Speaker::shutdown`] aborts
/// its tasks (sessions close without NOTIFICATION).
pub struct Speaker {
    inner: crate::session::Runtime,
}

impl std::fmt::Debug for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speaker").finish_non_exhaustive()
    }
}

impl Speaker {
    /// Validates `cfg`, binds the listener (if any) and starts the RIB task
    /// and one session task per peer. Events arrive on the returned receiver,
    /// in order, and an owner that is busy (even awaiting another call on
    /// this speaker) never stalls the speaker. While the channel is full the
    /// speaker only remembers which prefixes changed (a few bytes each) and
    /// reports each with its best path *at delivery*: a prefix that changed
    /// several times meanwhile is reported once, in its latest state, and
    /// before any `PeerStateChanged`/`Converged` that came after the change.
    /// This is the one coalescing stage between the speaker and whatever the
    /// owner feeds (the agent: the kernel), so an owner may take events at
    /// its consumer's pace and needs no coalescing of its own; keep draining
    /// it. Next hops come interned ([`NextHops`]).
    pub async fn start(
        cfg: SpeakerConfig,
    ) -> Result<(Speaker, tokio::sync::mpsc::Receiver<SpeakerEvent>), crate::BgpError> {
        let (inner, events) = crate::session::Runtime::start(cfg).await?;
        Ok((Speaker { inner }, events))
    }

    /// Originates `prefix` locally (ORIGIN IGP, empty AS_PATH). `next_hop`
    /// `None` means "this speaker" (local address / session address).
    pub async fn originate(
        &self,
        prefix: Prefix,
        next_hop: Option<IpAddr>,
    ) -> Result<(), crate::BgpError> {
        let attributes = PathAttributes {
            next_hop,
            ..PathAttributes::default()
        };
        self.inner.originate(prefix, attributes).await
    }

    /// Originates `prefix` with the given attributes (e.g. communities; an
    /// empty AS_PATH and ORIGIN IGP as a rule; NEXT_HOP `None` for "this
    /// speaker"). Replaces an earlier origination of the prefix.
    pub async fn originate_with(
        &self,
        prefix: Prefix,
        attributes: PathAttributes,
    ) -> Result<(), crate::BgpError> {
        self.inner.originate(prefix, attributes).await
    }

    /// Withdraws a locally originated prefix (no-op if not originated).
    pub async fn withdraw(&self, prefix: Prefix) -> Result<(), crate::BgpError> {
        self.inner.withdraw(prefix).await
    }

    /// Snapshot of every configured peer, in configuration order.
    pub async fn peers(&self) -> Vec<PeerStatus> {
        self.inner.peers().await
    }

    /// The Loc-RIB: every prefix with all candidate paths, best first.
    pub async fn routes(&self) -> Vec<RouteInfo> {
        self.inner.routes(RouteQuery::All).await
    }

    /// The prefixes `q` selects, sorted, each with its candidates and its
    /// paths refused on import.
    pub async fn query_routes(&self, q: RouteQuery) -> Vec<RouteInfo> {
        self.inner.routes(q).await
    }

    /// The Loc-RIB prefixes that contain `addr`, longest first, each with
    /// its best path's peer (`None` for a locally originated prefix). A few
    /// dozen lookups, whatever the table's size (the agent checks static
    /// container addresses against other nodes' blocks with it).
    pub async fn covering(&self, addr: IpAddr) -> Vec<(Prefix, Option<IpAddr>)> {
        self.inner.covering(addr).await
    }

    /// Applies a new peer list: new peers start, removed peers stop with
    /// Cease/3 (Peer De-configured), changed peers restart with Cease/6;
    /// unchanged peers are not touched. A change of a peer's filters alone
    /// keeps its session: the export side is re-run and the peer is asked
    /// for its routes again (ROUTE-REFRESH, RFC 2918) for the import side. Speaker-wide settings (ASN, router
    /// id, listen address, timers, GR) need a new `Speaker`.
    pub async fn reconfigure(&self, peers: Vec<PeerConfig>) -> Result<(), crate::BgpError> {
        self.inner.reconfigure(peers).await
    }

    /// A second, small channel of events, for changes that would otherwise
    /// wait behind a backlog in the channel [`start`](Self::start) returned
    /// (a new route from one peer while another's bulk load is delivered):
    /// `BestPathChanged` events with `express` set, each handed out as it
    /// is made. Take them ahead of the other channel's — before each take
    /// from it — order them after everything taken from it before, and
    /// report each take from the other channel once it is ordered
    /// ([`ExpressEvents::ordered`](crate::ExpressEvents::ordered)): then
    /// no change reaches the owner older than one it already has (the
    /// speaker sends one here only when every event of its prefix it
    /// handed to the other channel has been ordered). Without this call,
    /// such changes leave through the one channel, marked `express` as
    /// well.
    pub async fn express_events(&self) -> Result<crate::ExpressEvents, crate::BgpError> {
        self.inner.express_events().await
    }

    /// Changes [`SpeakerConfig::ebgp_requires_policy`] without resetting
    /// sessions: external peers get the routes the new rule lets through
    /// and lose the ones it keeps back.
    pub async fn set_ebgp_requires_policy(&self, on: bool) -> Result<(), crate::BgpError> {
        self.inner.set_ebgp_requires_policy(on).await
    }

    /// Asks `peer` to resend its routes (RFC 2918 ROUTE-REFRESH, every
    /// negotiated family).
    pub async fn route_refresh(&self, peer: IpAddr) -> Result<(), crate::BgpError> {
        self.inner.route_refresh(peer).await
    }

    /// Stops every session. `graceful`: close the TCP connections of the
    /// sessions that negotiated graceful restart without a NOTIFICATION, so
    /// that those peers keep our routes (RFC 4724, agent restart); every
    /// other session (or all, without `graceful`) gets Cease/2
    /// (Administrative Shutdown) with an RFC 8203 shutdown communication.
    pub async fn shutdown(self, graceful: bool) {
        self.inner.shutdown(graceful).await
    }
}
