//! The RIB: Adj-RIBs-In, Loc-RIB and Adj-RIBs-Out (RFC 4271 §3.2), the decision
//! process (§9.1) and the outbound rules for iBGP, eBGP and route reflection
//! (RFC 4456), as a pure synchronous core: no tasks, no IO, no clocks.
//!
//! Data flow: the session task hands each decoded [`Update`] of an established
//! peer to [`Rib::apply_update`]. Import ([`Rib::apply_update`]) applies loop
//! detection and normalisation and turns the attribute set into its compact
//! shared form (`stored`); `table` stores the path and reruns `decision` for the
//! prefix; a changed forwarding view becomes a [`BestPathChange`] for the
//! kernel, a changed best path is run through `export` for every up peer and
//! the differences become outbound [`Update`]s, packed per attribute set. Both
//! come back in one [`RibOutput`]; the caller sends the UPDATEs (the codec
//! splits them into messages) and installs the best-path changes.
//!
//! Peer lifecycle: [`Rib::peer_up`] when a session reaches Established (returns
//! the full initial Adj-RIB-Out and End-of-RIB), [`Rib::peer_down`] when it
//! ends (with `retain_stale` for graceful restart, RFC 4724 §4.2: its routes
//! stay, marked stale, until [`Rib::end_of_rib`] or [`Rib::sweep_stale`]).
//! Those bulk removals also come in steps (`removal`: `*_steps` +
//! [`Rib::remove_step`]), so that a full-table peer going away never holds
//! a change per prefix at once.

mod changes;
mod decision;
mod entry;
mod export;
mod hash;
mod intern;
mod keys;
mod peer;
mod removal;
mod shard;
mod stored;
mod table;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::policy::{Filter, GuardReason, ImportGuard};
use crate::types::{AddressFamily, Origin, PathAttributes, Prefix};
use crate::wire::Update;

use changes::Imported;
pub(crate) use changes::{Changes, FullCache};
use decision::{Decision, DecisionCtx, SourceInfo, decide};
use entry::V6Table;
use entry::{DestRef, DestSlot, V4Entry};
use export::{ExportCtx, OutboundBuilder};
pub use hash::{FastMap, FastSet, RibBuildHasher, RibHasher, RunBuildHasher, RunHasher};
use intern::Interner;
use keys::RibKey;
use peer::PeerState;
pub use removal::Removal;
pub use shard::{Run, RunKey};
use shard::{ShardedTable, Slot};
use stored::{StoredAttrs, StoredCache};
use table::{BestMove, Dest, LOCAL_SOURCE, Path, PathOp, Scratch};

/// Identifies a peer to the RIB; the session layer picks the numbers.
/// `u32::MAX` is reserved (it marks locally originated routes internally).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u32);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer#{}", self.0)
    }
}

/// Speaker-wide settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RibConfig {
    pub local_asn: u32,
    /// Our BGP Identifier; also the CLUSTER_ID when `cluster_id` is unset (RFC 4456 §7).
    pub router_id: Ipv4Addr,
    /// CLUSTER_ID when this router reflects routes (RFC 4456 §7).
    pub cluster_id: Option<Ipv4Addr>,
    /// Largest ECMP set handed to the kernel (1 disables multipath).
    pub max_paths: usize,
    /// What no peer may make us install (own blocks and addresses, martians)
    /// and which NEXT_HOPs are refused (RFC 4271 §6.3).
    pub guard: ImportGuard,
    /// No transit by accident (FRR's `bgp ebgp-requires-policy`, applied to
    /// transit): a route learned from an external peer goes to another
    /// external peer only when that peer's export filter has a rule that
    /// explicitly accepts it.
    pub ebgp_requires_policy: bool,
    /// What Loc-RIB changes are reported in [`RibOutput::best_changes`]
    /// ([`BestPathFeed::Full`] by default).
    pub best_path_feed: BestPathFeed,
}

impl RibConfig {
    /// Defaults: no explicit cluster id, up to 16 ECMP paths, the martian
    /// guard only (no own blocks, addresses or gateways), no eBGP-to-eBGP
    /// transit, best-path changes reported.
    pub fn new(local_asn: u32, router_id: Ipv4Addr) -> RibConfig {
        RibConfig {
            local_asn,
            router_id,
            cluster_id: None,
            max_paths: 16,
            guard: ImportGuard::default(),
            ebgp_requires_policy: true,
            best_path_feed: BestPathFeed::Full,
        }
    }
}

/// What the RIB needs to know about an established session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's address (decision process tie breaker, §9.1.2.2 g).
    pub address: IpAddr,
    /// Its AS; equal to our AS means an internal (iBGP) session.
    pub remote_asn: u32,
    /// Its BGP Identifier from OPEN.
    pub remote_router_id: Ipv4Addr,
    /// Our address on the session: NEXT_HOP when we set next-hop self for
    /// prefixes of its family.
    pub local_address: IpAddr,
    /// Our address of the other family, for next-hop self on routes of that
    /// family (e.g. IPv6 unicast carried over an IPv4 session). Without one,
    /// routes that need next-hop self in that family are not sent to this peer.
    pub alternate_next_hop: Option<IpAddr>,
    /// Our link-local address on the link shared with the peer, sent beside
    /// the global next hop when we set next-hop self on an IPv6 route
    /// (RFC 2545 §3).
    pub link_local_next_hop: Option<std::net::Ipv6Addr>,
    /// An internal peer that is a route-reflector client of ours (RFC 4456).
    pub rr_client: bool,
    /// Set next-hop self on routes sent to this internal peer too (never on
    /// reflected routes). External peers always get next-hop self.
    pub next_hop_self: bool,
    /// Address families negotiated on the session; only these are exported.
    pub families: Vec<AddressFamily>,
    /// Cease/1 threshold (RFC 4486): [`Rib::apply_update`] refuses an UPDATE
    /// that would take the peer's Adj-RIB-In past this many prefixes (filtered
    /// ones included, like BIRD's `receive limit`).
    pub max_prefixes: Option<u32>,
    /// Import filter: run on every route the peer announces.
    pub import_filter: Option<Arc<Filter>>,
    /// Export filter: run on every route advertised to the peer.
    pub export_filter: Option<Arc<Filter>>,
}

impl PeerInfo {
    /// A peer with defaults: the family of `local_address` only, not a client,
    /// no next-hop self toward iBGP, no prefix limit.
    pub fn new(
        address: IpAddr,
        remote_asn: u32,
        remote_router_id: Ipv4Addr,
        local_address: IpAddr,
    ) -> PeerInfo {
        let family = if local_address.is_ipv4() {
            AddressFamily::IPV4_UNICAST
        } else {
            AddressFamily::IPV6_UNICAST
        };
        PeerInfo {
            address,
            remote_asn,
            remote_router_id,
            local_address,
            alternate_next_hop: None,
            link_local_next_hop: None,
            rr_client: false,
            next_hop_self: false,
            families: vec![family],
            max_prefixes: None,
            import_filter: None,
            export_filter: None,
        }
    }
}

/// Which best-path changes the RIB builds ([`RibConfig::best_path_feed`])
/// and the speaker hands its owner
/// ([`SpeakerConfig::best_path_feed`](crate::SpeakerConfig)): one setting
/// for the whole path from the decision process to the owner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BestPathFeed {
    /// None: for an owner that installs nothing (`tortie run --no-kernel`,
    /// as FRR's `bgpd --no_kernel` sends zebra nothing). The RIB keeps,
    /// decides and exports routes the same but builds no
    /// [`BestPathChange`]; the speaker sends no `BestPathChanged`.
    Off,
    /// Prefix and next hops only, for an owner that installs routes (the
    /// agent): every change has `attributes` None, and a change of the best
    /// path's attributes that leaves its next hops (and whether it is ours)
    /// as they were is not reported, since nothing installed would change.
    NextHops,
    /// Every change of the best path, with its attributes.
    #[default]
    Full,
}

/// A change of the Loc-RIB as the kernel sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BestPathChange {
    pub prefix: Prefix,
    /// The distinct NEXT_HOPs of the ECMP set, sorted. Empty when the prefix is
    /// gone, or when the best route is one we originate (nothing to install).
    pub next_hops: HopList,
    /// The best path's attributes; `None` means the prefix is gone (or the
    /// feed is [`BestPathFeed::NextHops`]).
    pub attributes: Option<Arc<PathAttributes>>,
    /// The best route is one this router originates ([`Rib::originate`]).
    pub locally_originated: bool,
}

/// The next hops of one [`BestPathChange`]: a sorted list of distinct
/// addresses that holds one address inline, so the common single-path change
/// costs no allocation (one per route was 1.0 of the 1.02 allocations per
/// route of a packed load); two or more live in one boxed slice. Read it as a
/// slice (`Deref`). The speaker interns it into a shared
/// [`NextHops`](crate::NextHops) for its events.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct HopList(Hops);

#[derive(Clone, Default, PartialEq, Eq, Hash)]
enum Hops {
    #[default]
    Empty,
    One(IpAddr),
    Many(Box<[IpAddr]>),
}

impl std::ops::Deref for HopList {
    type Target = [IpAddr];
    fn deref(&self) -> &[IpAddr] {
        match &self.0 {
            Hops::Empty => &[],
            Hops::One(a) => std::slice::from_ref(a),
            Hops::Many(v) => v,
        }
    }
}

impl From<&[IpAddr]> for HopList {
    /// `hops` as given (callers pass a sorted, deduplicated list).
    fn from(hops: &[IpAddr]) -> HopList {
        HopList(match hops {
            [] => Hops::Empty,
            [a] => Hops::One(*a),
            more => Hops::Many(more.into()),
        })
    }
}

impl From<Vec<IpAddr>> for HopList {
    fn from(hops: Vec<IpAddr>) -> HopList {
        HopList::from(hops.as_slice())
    }
}

impl fmt::Debug for HopList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq<Vec<IpAddr>> for HopList {
    fn eq(&self, other: &Vec<IpAddr>) -> bool {
        **self == **other
    }
}

impl PartialEq<[IpAddr]> for HopList {
    fn eq(&self, other: &[IpAddr]) -> bool {
        **self == *other
    }
}

/// What one RIB operation produced, for the caller to act on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RibOutput {
    /// Loc-RIB changes, at most one per prefix per operation.
    pub best_changes: Vec<BestPathChange>,
    /// UPDATEs to send, in order, per peer: withdrawals, then one per
    /// attribute set with all its prefixes (not yet split to message size),
    /// then End-of-RIB markers.
    pub outbound: Vec<(PeerId, Update)>,
}

impl RibOutput {
    pub fn is_empty(&self) -> bool {
        self.best_changes.is_empty() && self.outbound.is_empty()
    }
    /// Appends `other` (later changes after earlier ones).
    pub fn append(&mut self, mut other: RibOutput) {
        self.best_changes.append(&mut other.best_changes);
        self.outbound.append(&mut other.outbound);
    }
}

/// The step of the decision process at which a candidate lost, in the order
/// the steps run (so `Ord` sorts by how early a candidate dropped out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LossReason {
    /// Another route is originated by this router (preferred like a weight).
    LocallyOriginated,
    /// Lower LOCAL_PREF (RFC 4271 §9.1.1).
    LocalPref,
    /// Longer AS_PATH (§9.1.2.2 a).
    AsPathLength,
    /// Higher ORIGIN (§9.1.2.2 b).
    Origin,
    /// Higher MED than a route from the same neighbouring AS (§9.1.2.2 c).
    Med,
    /// Learned over iBGP while an eBGP route exists (§9.1.2.2 d).
    EbgpOverIbgp,
    /// Higher BGP Identifier / ORIGINATOR_ID (§9.1.2.2 f, RFC 4456 §9).
    RouterId,
    /// Longer CLUSTER_LIST (RFC 4456 §9).
    ClusterListLength,
    /// Higher peer address (§9.1.2.2 g).
    PeerAddress,
}

impl LossReason {
    /// A short name for CLI output and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            LossReason::LocallyOriginated => "locally-originated",
            LossReason::LocalPref => "local-pref",
            LossReason::AsPathLength => "as-path-length",
            LossReason::Origin => "origin",
            LossReason::Med => "med",
            LossReason::EbgpOverIbgp => "ebgp-over-ibgp",
            LossReason::RouterId => "router-id",
            LossReason::ClusterListLength => "cluster-list-length",
            LossReason::PeerAddress => "peer-address",
        }
    }
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One candidate path of a prefix, as [`Rib::explain`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The peer it came from; `None` for a route this router originates.
    pub peer: Option<PeerId>,
    pub peer_address: Option<IpAddr>,
    pub attributes: Arc<PathAttributes>,
    pub best: bool,
    /// Member of the ECMP set (the best path included).
    pub ecmp: bool,
    /// Kept from a peer in graceful restart, not yet re-learned.
    pub stale: bool,
    /// For a path that is not the best: the decision step it lost at. ECMP
    /// members other than the best also carry the tie breaker that ordered them.
    pub lost_because: Option<LossReason>,
}

/// Per-peer figures for status and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCounters {
    pub up: bool,
    /// Prefixes in its Adj-RIB-In (stale ones included).
    pub received: usize,
    /// Stale prefixes in its Adj-RIB-In.
    pub stale: usize,
    /// Prefixes in its Adj-RIB-Out.
    pub advertised: usize,
    /// Prefixes it announced that the import guard or filter refused.
    pub filtered: usize,
    /// Of `received`, `advertised`, `stale` and `filtered`, the IPv6 prefixes.
    pub received_ipv6: usize,
    pub advertised_ipv6: usize,
    pub stale_ipv6: usize,
    pub filtered_ipv6: usize,
}

/// Why an announced route is not a candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilteredBy {
    /// The import guard (always on; see [`crate::policy::guard`]).
    Guard(GuardReason),
    /// The peer's import filter: its name and the rejecting rule (0-based).
    Policy { filter: Arc<str>, rule: usize },
}

impl fmt::Display for FilteredBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilteredBy::Guard(g) => write!(f, "import guard: {g}"),
            FilteredBy::Policy { filter, rule } => {
                write!(f, "filter {filter:?} rule {}", rule + 1)
            }
        }
    }
}

/// A route a peer announced that was refused on import, as
/// [`Rib::filtered`] and [`Rib::filtered_for`] report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilteredRoute {
    pub prefix: Prefix,
    pub peer: PeerId,
    pub peer_address: IpAddr,
    /// The attributes as received.
    pub attributes: Arc<PathAttributes>,
    pub reason: FilteredBy,
}

/// Errors of RIB operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RibError {
    #[error("{0} is not known to the RIB (peer_up was not called)")]
    UnknownPeer(PeerId),
    #[error("{0} is not up (peer_down was called)")]
    PeerNotUp(PeerId),
    #[error("{0}: peer id 4294967295 (u32::MAX) is reserved for locally originated routes")]
    ReservedPeerId(PeerId),
    /// The UPDATE was not applied; the caller ends the session with Cease,
    /// subcode 1 (RFC 4486) and calls [`Rib::peer_down`].
    #[error(
        "{peer} ({address}): maximum prefix count {limit} exceeded: the UPDATE would take it to {would_have}"
    )]
    MaxPrefix {
        peer: PeerId,
        address: IpAddr,
        limit: u32,
        would_have: usize,
    },
}

/// The RIB; see the module doc.
#[derive(Debug)]
pub struct Rib {
    cfg: RibConfig,
    peers: FastMap<u32, PeerState>,
    v4: ShardedTable<V4Entry>,
    v6: V6Table,
    /// Export sets (full form), shared by content.
    interner: Interner,
    /// Received and originated sets (stored form), shared best-effort.
    stored: StoredCache,
    /// Routes refused on import, per (peer, prefix); not candidates.
    filtered: refused::RefusedStore,
    scratch: Scratch,
}

mod ops;
mod refilter;
mod refused;
