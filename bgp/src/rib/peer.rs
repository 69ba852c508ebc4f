//! Per-peer state the RIB keeps: the session's [`PeerInfo`], whether it is up
//! and its counters. (What was built for export is shared between peers, see
//! [`super::intern`].)
//!
//! A peer whose session went down with graceful restart (RFC 4724 §4.2) stays
//! here, not up, for as long as it has stale paths: the decision process and
//! the export rules still need its AS, router id and address.

use std::net::IpAddr;

use super::PeerInfo;
use super::decision::SourceInfo;
use crate::types::Afi;

#[derive(Debug)]
pub(crate) struct PeerState {
    pub info: PeerInfo,
    pub local_asn: u32,
    pub up: bool,
    /// Paths in the Adj-RIB-In (stale ones included).
    pub received: usize,
    /// Stale paths in the Adj-RIB-In (RFC 4724 §4.2).
    pub stale: usize,
    /// Prefixes in the Adj-RIB-Out.
    pub advertised: usize,
    /// Of `received`, `advertised`, `stale` and `filtered`, the IPv6
    /// prefixes (per-family counts for status and metrics; IPv4 is the rest).
    pub received_v6: usize,
    pub advertised_v6: usize,
    pub stale_v6: usize,
    pub filtered_v6: usize,
    /// Prefixes refused on import (kept in the RIB's filtered map).
    pub filtered: usize,
}

impl PeerState {
    pub(crate) fn new(info: PeerInfo, local_asn: u32) -> PeerState {
        PeerState {
            info,
            local_asn,
            up: false,
            received: 0,
            stale: 0,
            advertised: 0,
            received_v6: 0,
            advertised_v6: 0,
            stale_v6: 0,
            filtered_v6: 0,
            filtered: 0,
        }
    }

    /// External session (RFC 4271 §3: different AS numbers).
    pub(crate) fn is_ebgp(&self) -> bool {
        self.info.remote_asn != self.local_asn
    }

    pub(crate) fn source_info(&self) -> SourceInfo {
        SourceInfo {
            local: false,
            ebgp: self.is_ebgp(),
            rr_client: self.info.rr_client && !self.is_ebgp(),
            router_id: self.info.remote_router_id,
            address: self.info.address,
        }
    }

    /// Our address to use as NEXT_HOP toward this peer for a family, if known.
    pub(crate) fn next_hop_self(&self, afi: Afi) -> Option<IpAddr> {
        let fits = |a: &IpAddr| {
            matches!(
                (afi, a),
                (Afi::Ipv4, IpAddr::V4(_)) | (Afi::Ipv6, IpAddr::V6(_))
            )
        };
        if fits(&self.info.local_address) {
            Some(self.info.local_address)
        } else {
            self.info.alternate_next_hop.filter(fits)
        }
    }

    /// Whether a returning peer's stale paths can stay: everything the decision
    /// process and export rules read about a source is unchanged.
    pub(crate) fn same_source_identity(&self, other: &PeerInfo) -> bool {
        self.info.address == other.address
            && self.info.remote_asn == other.remote_asn
            && self.info.remote_router_id == other.remote_router_id
            && self.info.rr_client == other.rr_client
    }
}
