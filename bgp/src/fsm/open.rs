//! OPEN messages: the one we send, checks on the one we receive (RFC 4271
//! §6.2, RFC 5492, RFC 6793, RFC 6286), and what the two negotiate.

use std::net::Ipv4Addr;

use super::{FsmConfig, codes, notify};
use crate::types::AddressFamily;
use crate::wire::{AS_TRANS, Capability, GracefulRestartCapability, Notification, Open};

/// BGP version we speak (RFC 4271).
pub const BGP_VERSION: u8 = 4;

/// The outcome of a successful OPEN exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_asn: u32,
    pub peer_id: Ipv4Addr,
    /// min(ours, theirs); 0 = no hold timer and no keepalives (§4.2).
    pub hold_time: u16,
    /// hold_time / 3 (§10), at least 1 second when hold_time > 0.
    pub keepalive: u16,
    /// Families both sides advertised (IPv4 unicast implied when the peer
    /// sends no Multiprotocol capability at all, RFC 4760 §8).
    pub families: Vec<AddressFamily>,
    /// Both sides speak 4-octet AS (RFC 6793).
    pub four_octet_as: bool,
    /// The peer accepts ROUTE-REFRESH (RFC 2918).
    pub route_refresh: bool,
    /// Both sides advertised Extended Message (RFC 8654): 65535-byte messages.
    pub extended_message: bool,
    /// The peer's Graceful Restart capability (RFC 4724), if any.
    pub peer_graceful_restart: Option<GracefulRestartCapability>,
    /// We advertised Graceful Restart on this session.
    pub local_graceful_restart: bool,
}

impl Negotiated {
    /// Whether the peer is internal (same AS).
    pub fn is_ibgp(&self, local_asn: u32) -> bool {
        self.peer_asn == local_asn
    }
    /// Whether the peer wants End-of-RIB / preserves routes (advertised GR).
    pub fn peer_gr_families(&self) -> Vec<AddressFamily> {
        self.peer_graceful_restart
            .as_ref()
            .map(|g| g.families.iter().map(|(f, _)| *f).collect())
            .unwrap_or_default()
    }
}

/// The families a RIB holds routes of: what graceful restart keeps or flushes.
pub const UNICAST_FAMILIES: [AddressFamily; 2] =
    [AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST];

impl Negotiated {
    /// RFC 4724 §4.2, the session is lost: the families whose routes stay,
    /// marked stale — those the session carried and the peer's Graceful
    /// Restart capability lists. The routes of every other family go at once.
    pub fn families_kept_on_loss(&self) -> Vec<AddressFamily> {
        let Some(g) = &self.peer_graceful_restart else {
            return Vec::new();
        };
        self.families
            .iter()
            .copied()
            .filter(|f| g.families.iter().any(|(gf, _)| gf == f))
            .collect()
    }

    /// RFC 4724 §4.2, the peer is back: stale routes of a family go at once
    /// unless the new session carries the family and the peer's capability
    /// lists it with the Forwarding State (F) bit set; the others stay until
    /// that family's End-of-RIB (or the restart timer).
    pub fn stale_families_to_flush(&self) -> Vec<AddressFamily> {
        let kept = |f: &AddressFamily| {
            self.families.contains(f)
                && self
                    .peer_graceful_restart
                    .as_ref()
                    .is_some_and(|g| g.families.iter().any(|(gf, fbit)| gf == f && *fbit))
        };
        UNICAST_FAMILIES
            .iter()
            .copied()
            .filter(|f| !kept(f))
            .collect()
    }
}

pub(super) fn build_open(cfg: &FsmConfig) -> Open {
    let mut capabilities: Vec<Capability> = cfg
        .families
        .iter()
        .map(|f| Capability::Multiprotocol(*f))
        .collect();
    capabilities.push(Capability::RouteRefresh);
    if cfg.extended_message {
        capabilities.push(Capability::ExtendedMessage);
    }
    if let Some(gr) = &cfg.graceful_restart {
        capabilities.push(Capability::GracefulRestart(gr.clone()));
    }
    capabilities.push(Capability::FourOctetAs(cfg.local_asn));
    Open {
        version: BGP_VERSION,
        my_as: u16::try_from(cfg.local_asn).unwrap_or(AS_TRANS),
        hold_time: cfg.hold_time,
        bgp_identifier: cfg.router_id,
        capabilities,
    }
}

/// Checks a received OPEN against our configuration in the order of RFC 4271
/// §6.2 and negotiates. `Err` is the NOTIFICATION to send.
pub fn validate_open(cfg: &FsmConfig, open: &Open) -> Result<Negotiated, Notification> {
    if open.version != BGP_VERSION {
        // Data: the largest locally supported version, 2 octets (§6.2).
        return Err(notify(
            codes::OPEN_MESSAGE_ERROR,
            codes::UNSUPPORTED_VERSION_NUMBER,
            u16::from(BGP_VERSION).to_be_bytes().to_vec(),
        ));
    }
    let four_octet_as = open
        .capabilities
        .iter()
        .any(|c| matches!(c, Capability::FourOctetAs(_)));
    let peer_asn = open.asn();
    if peer_asn != cfg.peer_asn {
        return Err(notify(
            codes::OPEN_MESSAGE_ERROR,
            codes::BAD_PEER_AS,
            Vec::new(),
        ));
    }
    if open.hold_time == 1 || open.hold_time == 2 {
        return Err(notify(
            codes::OPEN_MESSAGE_ERROR,
            codes::UNACCEPTABLE_HOLD_TIME,
            Vec::new(),
        ));
    }
    let id = open.bgp_identifier;
    let ibgp = peer_asn == cfg.local_asn;
    // RFC 6286 §2.2: the identifier must be non-zero; equal identifiers are an
    // error only within one AS.
    if id.is_unspecified() || (ibgp && id == cfg.router_id) {
        return Err(notify(
            codes::OPEN_MESSAGE_ERROR,
            codes::BAD_BGP_IDENTIFIER,
            Vec::new(),
        ));
    }

    let peer_families: Vec<AddressFamily> = open
        .capabilities
        .iter()
        .filter_map(|c| match c {
            Capability::Multiprotocol(f) => Some(*f),
            _ => None,
        })
        .collect();
    let families: Vec<AddressFamily> = if peer_families.is_empty() {
        // RFC 4760 §8 / RFC 4271: no MP capability means IPv4 unicast only.
        cfg.families
            .iter()
            .copied()
            .filter(|f| *f == AddressFamily::IPV4_UNICAST)
            .collect()
    } else {
        cfg.families
            .iter()
            .copied()
            .filter(|f| peer_families.contains(f))
            .collect()
    };
    if families.is_empty() {
        // RFC 5492 §5: the peer lacks a capability we need; the data lists
        // the capabilities (here: our Multiprotocol ones) it did not support.
        let mut data = Vec::new();
        for f in &cfg.families {
            let afi = f.afi.code().to_be_bytes();
            data.extend_from_slice(&[1, 4, afi[0], afi[1], 0, f.safi.code()]);
        }
        return Err(notify(
            codes::OPEN_MESSAGE_ERROR,
            codes::UNSUPPORTED_CAPABILITY,
            data,
        ));
    }

    let hold_time = cfg.hold_time.min(open.hold_time);
    let keepalive = if hold_time == 0 {
        0
    } else {
        (hold_time / 3).max(1)
    };
    let has = |want: fn(&Capability) -> bool| open.capabilities.iter().any(want);
    let route_refresh = has(|c| {
        matches!(
            c,
            Capability::RouteRefresh | Capability::EnhancedRouteRefresh
        )
    });
    let extended_message =
        cfg.extended_message && has(|c| matches!(c, Capability::ExtendedMessage));
    let peer_graceful_restart = open.capabilities.iter().find_map(|c| match c {
        Capability::GracefulRestart(g) => Some(g.clone()),
        _ => None,
    });
    Ok(Negotiated {
        peer_asn,
        peer_id: id,
        hold_time,
        keepalive,
        families,
        four_octet_as,
        route_refresh,
        extended_message,
        peer_graceful_restart,
        local_graceful_restart: cfg.graceful_restart.is_some(),
    })
}
