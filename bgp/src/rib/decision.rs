//! The decision process (RFC 4271 §9.1.2, tie breaking §9.1.2.2, with the
//! route-reflection amendments of RFC 4456 §9).
//!
//! Input: the candidate paths of one prefix plus what is known about the peer
//! each came from ([`SourceInfo`]). Output: the index of the best path, which
//! candidates form the ECMP set with it, and for every loser the step it lost
//! at ([`LossReason`]). The process eliminates candidates step by step over the
//! whole set, as §9.1.2.2 describes, rather than sorting pairwise: the MED step
//! only compares routes from the same neighbouring AS, which is not transitive.
//!
//! Stale paths (kept across a peer's graceful restart) are ordinary candidates:
//! RFC 4724 §4.2 keeps using them for forwarding, and giving them a handicap
//! would move traffic during every restart, which is what GR exists to avoid.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::LossReason;
use super::hash::FastMap;
use super::peer::PeerState;
use super::table::{LOCAL_SOURCE, Path};

/// LOCAL_PREF assumed when a path carries none (eBGP-learned routes have theirs
/// removed on import, RFC 4271 §5.1.5).
pub(crate) const DEFAULT_LOCAL_PREF: u32 = 100;

/// What the decision process and the export rules need to know about the
/// speaker a path came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SourceInfo {
    /// Originated by this router (`Rib::originate`).
    pub local: bool,
    /// Learned over an external session.
    pub ebgp: bool,
    /// Learned from a route-reflector client (RFC 4456 §6).
    pub rr_client: bool,
    pub router_id: Ipv4Addr,
    pub address: IpAddr,
}

impl SourceInfo {
    /// The worst possible source: used only if a path names a peer the RIB no
    /// longer knows, which the RIB's own bookkeeping never lets happen.
    const UNKNOWN: SourceInfo = SourceInfo {
        local: false,
        ebgp: false,
        rr_client: false,
        router_id: Ipv4Addr::BROADCAST,
        address: IpAddr::V6(Ipv6Addr::new(
            0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
        )),
    };
}

/// Context the decision process reads.
pub(crate) struct DecisionCtx<'a> {
    pub local_asn: u32,
    pub router_id: Ipv4Addr,
    pub max_paths: usize,
    pub peers: &'a FastMap<u32, PeerState>,
}

impl DecisionCtx<'_> {
    pub(crate) fn source(&self, source: u32) -> SourceInfo {
        if source == LOCAL_SOURCE {
            return SourceInfo {
                local: true,
                ebgp: false,
                rr_client: false,
                router_id: self.router_id,
                address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            };
        }
        self.peers
            .get(&source)
            .map(PeerState::source_info)
            .unwrap_or(SourceInfo::UNKNOWN)
    }

    /// The neighbouring AS of a path for MED comparison and ECMP grouping
    /// (RFC 4271 §9.1.2.2 c): the first AS of a leading AS_SEQUENCE; our own AS
    /// for a path with an empty AS_PATH (learned from an internal peer that
    /// originated it); `None` (comparable with nothing) otherwise.
    fn neighbor_as(&self, p: &Path) -> Option<u32> {
        if p.attrs.as_path_is_empty() {
            Some(self.local_asn)
        } else {
            p.attrs.neighbor_as()
        }
    }
}

/// Where the result of [`decide`] is written; reused between prefixes so the
/// decision process does not allocate.
#[derive(Default, Debug)]
pub(crate) struct Decision {
    /// Per candidate: `None` while in the running; the step it lost at otherwise.
    pub lost: Vec<Option<LossReason>>,
    /// Per candidate: member of the ECMP set (the best path included).
    pub ecmp: Vec<bool>,
    pub best: usize,
    infos: Vec<SourceInfo>,
}

/// Runs the decision process over `paths` (must not be empty) into `out`.
pub(crate) fn decide(paths: &[Path], ctx: &DecisionCtx<'_>, out: &mut Decision) {
    let n = paths.len();
    out.lost.clear();
    out.lost.resize(n, None);
    out.ecmp.clear();
    out.ecmp.resize(n, false);
    out.best = 0;
    if n <= 1 {
        if let Some(e) = out.ecmp.first_mut() {
            *e = true;
        }
        return;
    }
    out.infos.clear();
    out.infos.extend(paths.iter().map(|p| ctx.source(p.source)));
    let infos = std::mem::take(&mut out.infos);
    let lost = &mut out.lost;

    // Locally originated routes win over learned ones, like a weight.
    keep_max(lost, LossReason::LocallyOriginated, |i| {
        infos[i].local as u64
    });
    // RFC 4271 §9.1.1: degree of preference = LOCAL_PREF.
    keep_max(lost, LossReason::LocalPref, |i| {
        paths[i].attrs.local_pref().unwrap_or(DEFAULT_LOCAL_PREF) as u64
    });
    // §9.1.2.2 a) fewest AS numbers in AS_PATH (AS_SET counts 1, confederation segments 0).
    keep_min(lost, LossReason::AsPathLength, |i| {
        paths[i].attrs.path_len() as u64
    });
    // §9.1.2.2 b) lowest ORIGIN.
    keep_min(lost, LossReason::Origin, |i| paths[i].attrs.origin() as u64);
    // §9.1.2.2 c) among routes from the same neighbouring AS, lowest MED
    // (a missing MED is the lowest value, 0). Removals are decided over the set
    // as it is before this step, then applied together.
    for i in 0..n {
        if lost[i].is_some() {
            continue;
        }
        let (nas, med) = (
            ctx.neighbor_as(&paths[i]),
            paths[i].attrs.med().unwrap_or(0),
        );
        if nas.is_none() {
            continue;
        }
        let beaten = (0..n).any(|j| {
            j != i
                && matches!(lost[j], None | Some(LossReason::Med))
                && ctx.neighbor_as(&paths[j]) == nas
                && paths[j].attrs.med().unwrap_or(0) < med
        });
        if beaten {
            lost[i] = Some(LossReason::Med);
        }
    }
    // §9.1.2.2 d) routes learned from external peers over internal ones.
    keep_max(lost, LossReason::EbgpOverIbgp, |i| infos[i].ebgp as u64);
    // (§9.1.2.2 e, interior cost to the NEXT_HOP: no IGP here, all equal.)

    // The survivors so far are equally good for forwarding: the ECMP
    // candidates. Mark them before the tie breakers below pick one.
    for (e, l) in out.ecmp.iter_mut().zip(lost.iter()) {
        *e = l.is_none();
    }

    // §9.1.2.2 f) lowest BGP Identifier, ORIGINATOR_ID standing in for it (RFC 4456 §9).
    keep_min(lost, LossReason::RouterId, |i| {
        u32::from(paths[i].attrs.originator_id().unwrap_or(infos[i].router_id)) as u64
    });
    // RFC 4456 §9: shorter CLUSTER_LIST, between steps f) and g).
    keep_min(lost, LossReason::ClusterListLength, |i| {
        paths[i].attrs.cluster_list().len() as u64
    });
    // §9.1.2.2 g) lowest peer address. Two candidates can only tie here if they
    // come from the same address; the first one wins then.
    let best = (0..n)
        .filter(|&i| lost[i].is_none())
        .min_by_key(|&i| infos[i].address)
        .unwrap_or(0);
    for (i, l) in lost.iter_mut().enumerate() {
        if i != best && l.is_none() {
            *l = Some(LossReason::PeerAddress);
        }
    }
    out.best = best;

    // The ECMP set: the best path plus candidates that survived through
    // step d) and share its neighbouring AS (FRR's default multipath rule),
    // up to max_paths in total.
    let best_nas = ctx.neighbor_as(&paths[best]);
    let mut members = 1;
    let best_local = infos[best].local;
    for (i, (e, p)) in out.ecmp.iter_mut().zip(paths).enumerate() {
        if i == best {
            *e = true;
            continue;
        }
        let ok = *e
            && !best_local
            && best_nas.is_some()
            && ctx.neighbor_as(p) == best_nas
            && members < ctx.max_paths;
        *e = ok;
        if ok {
            members += 1;
        }
    }
    out.infos = infos;
}

fn keep_max(lost: &mut [Option<LossReason>], reason: LossReason, key: impl Fn(usize) -> u64) {
    let Some(best) = (0..lost.len())
        .filter(|&i| lost[i].is_none())
        .map(&key)
        .max()
    else {
        return;
    };
    for (i, l) in lost.iter_mut().enumerate() {
        if l.is_none() && key(i) != best {
            *l = Some(reason);
        }
    }
}

fn keep_min(lost: &mut [Option<LossReason>], reason: LossReason, key: impl Fn(usize) -> u64) {
    let Some(best) = (0..lost.len())
        .filter(|&i| lost[i].is_none())
        .map(&key)
        .min()
    else {
        return;
    };
    for (i, l) in lost.iter_mut().enumerate() {
        if l.is_none() && key(i) != best {
            *l = Some(reason);
        }
    }
}
