//! Pure conversions at the agent's seams: the resolved config into the
//! speaker's settings, and the speaker's snapshots into API views and metric
//! rows. No IO; unit-tested.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, UNIX_EPOCH};

use tortie_bgp::policy::{ImportGuard, community_string};
use tortie_bgp::{
    AddressFamily, BfdConfig, BfdStatus, GracefulRestartConfig, Ipv4Prefix, Origin, PathAttributes,
    PeerConfig, PeerStatus, Prefix, RouteInfo, SpeakerConfig,
};
use tortie_config::Config;

use super::links::Links;
use crate::api::{BfdView, EventView, PathView, PeerView, RouteView};
use crate::metrics::PeerMetrics;

/// One configured peer as the speaker wants it; `links` gives our
/// link-local address on a link shared with it (RFC 2545 §3).
pub fn peer_config(p: &tortie_config::Peer, links: &Links) -> PeerConfig {
    PeerConfig {
        address: p.address,
        asn: p.asn,
        name: p.name.clone(),
        port: p.port,
        password: p.password.clone(),
        passive: p.passive,
        ttl_security: p.ttl_security,
        route_reflector_client: p.route_reflector_client,
        max_prefixes: p.max_prefixes,
        hold_time: p.hold_time,
        max_prefixes_restart: p.max_prefixes_restart,
        import_filter: p.import_filter.clone(),
        export_filter: p.export_filter.clone(),
        source_address: p.source_address,
        multihop: p.multihop,
        bfd: p.bfd.map(|b| BfdConfig {
            interval: Duration::from_millis(u64::from(b.interval_ms)),
            multiplier: b.multiplier,
        }),
        families: p.families.clone(),
        link_local_next_hop: links.link_local_for(p.address),
    }
}

/// The speaker's settings. `forwarding_preserved`: the families of which
/// kernel routes of ours were found at start-up ([`preserved_families`]).
pub fn speaker_config(
    c: &Config,
    forwarding_preserved: Vec<AddressFamily>,
    links: &Links,
) -> SpeakerConfig {
    SpeakerConfig {
        local_asn: c.node.asn,
        router_id: c.node.router_id,
        local_addresses: c.node.addresses.iter().map(|a| a.ip()).collect(),
        listen: c.bgp.listen(),
        hold_time: c.bgp.hold_time,
        connect_retry: Duration::from_secs(u64::from(c.bgp.connect_retry.max(1))),
        graceful_restart: c.bgp.graceful_restart.then_some(GracefulRestartConfig {
            restart_time: c.bgp.restart_time,
            forwarding_preserved,
        }),
        cluster_id: Some(c.node.cluster_id),
        guard: import_guard(c),
        ebgp_requires_policy: c.policy.ebgp_requires_policy,
        // The agent reads a prefix and its next hops only.
        best_path_feed: tortie_bgp::BestPathFeed::NextHops,
        peers: c.peers.iter().map(|p| peer_config(p, links)).collect(),
    }
}

/// The families whose forwarding state survived our restart (RFC 4724 §3,
/// the F bit per AFI/SAFI): those of which kernel routes of ours were found
/// and adopted at start-up (`adopted` routes, `adopted_ipv6` of them IPv6).
pub fn preserved_families(adopted: u64, adopted_ipv6: u64) -> Vec<AddressFamily> {
    let v4 = adopted.saturating_sub(adopted_ipv6);
    [
        (AddressFamily::IPV4_UNICAST, v4),
        (AddressFamily::IPV6_UNICAST, adopted_ipv6),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(f, _)| f)
    .collect()
}

/// What no peer may make this node install: its block (and anything inside
/// it), a host route for one of its addresses (`node.address`, the peers'
/// `source_address`es) or for a container gateway (the dataplane's
/// [`tortie_routes::GATEWAY`] and [`tortie_routes::GATEWAY6`]), plus the
/// fixed martians.
pub fn import_guard(c: &Config) -> ImportGuard {
    let mut own: Vec<IpAddr> = c.node.addresses.iter().map(|a| a.ip()).collect();
    // A peer's `source_address` is one of this node's addresses too.
    for a in c.peers.iter().filter_map(|p| p.source_address) {
        if !own.contains(&a) {
            own.push(a);
        }
    }
    let blocks = c.node.pod_cidrs.iter().filter_map(|b| prefix(*b)).collect();
    let gateways = vec![
        IpAddr::V4(tortie_routes::GATEWAY),
        IpAddr::V6(tortie_routes::GATEWAY6),
    ];
    ImportGuard::new(blocks, own, gateways)
}

/// The attributes this node originates a prefix with: ORIGIN IGP, empty
/// AS_PATH, next-hop self, and `bgp.block_communities` (the block) or
/// `bgp.host_communities` (a container /32).
pub fn origin_attributes(c: &Config, block: bool) -> PathAttributes {
    let comms = if block {
        &c.policy.block_communities
    } else {
        &c.policy.host_communities
    };
    PathAttributes {
        communities: comms.standard.clone(),
        large_communities: comms.large.clone(),
        ..PathAttributes::default()
    }
}

/// The node's blocks of both families as BGP prefixes, in `node.pod_cidr`
/// order: what the node originates (each goes to the peers whose session
/// carries its family, with the node's address of that family as next hop).
pub fn block_prefixes(c: &Config) -> Vec<Prefix> {
    c.node.pod_cidrs.iter().filter_map(|b| prefix(*b)).collect()
}

/// A network of either family as a BGP prefix.
pub fn prefix(n: tortie_routes::IpNetwork) -> Option<Prefix> {
    match n {
        tortie_routes::IpNetwork::V4(b) => v4_prefix(b.network(), b.prefix()),
        tortie_routes::IpNetwork::V6(b) => {
            tortie_bgp::Ipv6Prefix::new(b.network(), b.prefix()).map(Prefix::V6)
        }
    }
}

/// `None` only when `len > 32`.
pub fn v4_prefix(addr: Ipv4Addr, len: u8) -> Option<Prefix> {
    Ipv4Prefix::new(addr, len).map(Prefix::V4)
}

/// Whether a container address gets its own host route (/32, /128) in BGP.
pub fn advertise_host(c: &Config, ip: impl Into<IpAddr>) -> bool {
    c.bgp.advertise == tortie_config::Advertise::Hosts || !c.node.in_blocks(ip.into())
}

/// A container address as its host route (/32 or /128).
pub fn host_prefix(ip: IpAddr) -> Option<Prefix> {
    prefix(tortie_routes::IpNetwork::from(ip))
}

pub fn unix_secs(t: std::time::SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn peer_view(p: &PeerStatus) -> PeerView {
    let event = |e: &Option<tortie_bgp::Stamped>| {
        e.as_ref().map(|e| EventView {
            text: e.text.clone(),
            at: unix_secs(e.at),
        })
    };
    PeerView {
        address: p.address.to_string(),
        name: p.name.clone(),
        asn: p.remote_asn,
        local_asn: p.local_asn,
        state: p.state.name().to_string(),
        since: unix_secs(p.since),
        routes_received: p.routes_received + p.routes_filtered,
        routes_accepted: p.routes_received,
        routes_filtered: p.routes_filtered,
        routes_advertised: p.routes_advertised,
        routes_accepted_ipv6: p.routes_received_ipv6,
        routes_advertised_ipv6: p.routes_advertised_ipv6,
        remote_id: p.remote_id.map(|r| r.to_string()),
        hold_time: p.hold_time,
        established_transitions: p.established_transitions,
        messages_received: p
            .messages_received
            .by_type()
            .iter()
            .map(|(t, n)| (t.to_string(), *n))
            .collect(),
        messages_sent: p
            .messages_sent
            .by_type()
            .iter()
            .map(|(t, n)| (t.to_string(), *n))
            .collect(),
        // An old error next to "Established" reads as a current problem:
        // shown only while the session is down (BIRD's Info column does the same).
        info: peer_info(p),
        last_error: p.last_error.clone(),
        local_address: p.local_address.map(|a| a.to_string()),
        bfd: p.bfd.as_ref().map(bfd_view),
        warning: None,
        last_error_at: p.last_error_at.map(unix_secs),
        session_type: p.session_type().to_string(),
        up_down_since: unix_secs(p.established_change),
        local_endpoint: p.local_endpoint.map(|a| a.to_string()),
        remote_endpoint: p.remote_endpoint.map(|a| a.to_string()),
        keepalive_time: p.keepalive_time,
        families: p.capabilities.as_ref().map_or_else(Vec::new, |c| {
            c.families.iter().map(ToString::to_string).collect()
        }),
        capabilities: p
            .capabilities
            .as_ref()
            .map_or_else(Vec::new, capability_names),
        down_reason: event(&p.down_reason),
        notification_received: event(&p.notification_received),
        notification_sent: event(&p.notification_sent),
    }
}

/// A next hop an eBGP peer will likely refuse, which the wire never tells
/// us (BIRD: "next hop not directly reachable"; FRR: "martian"/"not
/// connected"): the session leaves from `node.address` (no `source_address`)
/// toward a single-hop eBGP peer outside that subnet, so the NEXT_HOP we
/// advertise is not on the peer's network.
pub fn next_hop_warning(c: &Config, p: &PeerStatus) -> Option<String> {
    let cfg = c.peers.iter().find(|q| q.address == p.address)?;
    let ebgp_single_hop = cfg.asn != c.node.asn && cfg.multihop.unwrap_or(1) == 1;
    let IpAddr::V4(peer) = p.address else {
        return None;
    };
    let address = c.node.addresses.v4()?;
    if !ebgp_single_hop || cfg.source_address.is_some() || address.contains(peer) {
        return None;
    }
    let nh = p.local_address.unwrap_or(IpAddr::V4(address.ip()));
    (nh == IpAddr::V4(address.ip())).then(|| {
        format!(
            "peer is outside node.address's subnet {}/{} and source_address is not set: the session leaves from {nh} and the peer will likely reject next hop {nh} as not directly connected (set source_address to this node's address on the peer's subnet, or multihop for a peer further away)",
            address.network(),
            address.prefix()
        )
    })
}

pub fn bfd_view(b: &BfdStatus) -> BfdView {
    BfdView {
        state: b.state.name().to_string(),
        remote_state: b.remote_state.name().to_string(),
        diagnostic: b.diagnostic.text().to_string(),
        since: unix_secs(b.since),
        transitions: b.transitions,
        detection_time_ms: b
            .detection_time
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        local_discriminator: b.local_discriminator,
        remote_discriminator: b.remote_discriminator,
        error: b.error.clone(),
    }
}

/// The Info column (BIRD's): nothing while Established (an old error next to
/// "Established" reads as a current problem); while down, why the session went
/// down, a NOTIFICATION the peer sent since, and the latest error, each once.
fn peer_info(p: &PeerStatus) -> Option<String> {
    if p.state == tortie_bgp::SessionState::Established {
        return None;
    }
    let mut parts: Vec<String> = Vec::new();
    let mut add = |text: String| {
        if !parts
            .iter()
            .any(|t| t.contains(&text) || text.contains(t.as_str()))
        {
            parts.push(text);
        }
    };
    if let Some(d) = &p.down_reason {
        add(d.text.clone());
    }
    if let Some(n) = p
        .notification_received
        .as_ref()
        .filter(|n| n.at >= p.established_change)
    {
        add(format!("received NOTIFICATION {}", n.text));
    }
    if let Some(e) = &p.last_error {
        add(e.clone());
    }
    (!parts.is_empty()).then(|| parts.join("; then "))
}

/// Negotiated capabilities in words (RFC 5492 and the RFCs of each).
fn capability_names(c: &tortie_bgp::CapabilitySummary) -> Vec<String> {
    let mut names: Vec<String> = c
        .families
        .iter()
        .map(|f| format!("multiprotocol {f}"))
        .collect();
    if c.four_octet_as {
        names.push("4-octet AS".into());
    }
    if c.route_refresh {
        names.push("route refresh".into());
    }
    if c.extended_message {
        names.push("extended message".into());
    }
    if let Some(t) = c.peer_restart_time {
        names.push(format!("graceful restart (peer restart time {t} s)"));
    }
    names
}

pub fn peer_metrics(p: &PeerStatus) -> PeerMetrics {
    PeerMetrics {
        address: p.address.to_string(),
        asn: p.remote_asn,
        state: p.state.name().to_string(),
        received_routes: p.routes_received,
        advertised_routes: p.routes_advertised,
        received_routes_ipv6: p.routes_received_ipv6,
        advertised_routes_ipv6: p.routes_advertised_ipv6,
        messages_received: p
            .messages_received
            .by_type()
            .iter()
            .map(|(t, n)| (t.to_string(), *n))
            .collect(),
        messages_sent: p
            .messages_sent
            .by_type()
            .iter()
            .map(|(t, n)| (t.to_string(), *n))
            .collect(),
        established_transitions: p.established_transitions,
        bfd_up: p
            .bfd
            .as_ref()
            .map(|b| b.state == tortie_bgp::bfd::BfdState::Up),
        bfd_transitions: p.bfd.as_ref().map_or(0, |b| b.transitions),
        name: p.name.clone(),
        session_type: p.session_type().to_string(),
        state_since: unix_secs(p.since),
        up_down_since: unix_secs(p.established_change),
        stale_routes: p.routes_stale,
        filtered_routes: p.routes_filtered,
        stale_routes_ipv6: p.routes_stale_ipv6,
        filtered_routes_ipv6: p.routes_filtered_ipv6,
    }
}

fn origin_name(o: Origin) -> &'static str {
    match o {
        Origin::Igp => "igp",
        Origin::Egp => "egp",
        Origin::Incomplete => "incomplete",
    }
}

fn communities(a: &PathAttributes) -> Vec<String> {
    let standard = a.communities.iter().map(|c| community_string(*c));
    let large = a
        .large_communities
        .iter()
        .map(|[g, l1, l2]| format!("{g}:{l1}:{l2}"));
    standard.chain(large).collect()
}

fn path_view(peer: Option<IpAddr>, a: &PathAttributes) -> PathView {
    PathView {
        peer: peer.map(|p| p.to_string()),
        next_hop: a.next_hop.map(|n| n.to_string()),
        as_path: a.as_path.to_string(),
        origin: origin_name(a.origin).to_string(),
        local_pref: a.local_pref,
        med: a.med,
        communities: communities(a),
        ..PathView::default()
    }
}

/// A prefix for the API: its candidates (best first) then its paths refused
/// on import; `installed` comes from the route table, and so does
/// `kernel_refused`: why a route the table wants is not in the kernel (the
/// kernel's refusal in its words, a missing device, a conflict).
pub fn route_view(r: &RouteInfo, installed: bool, kernel_refused: Option<&str>) -> RouteView {
    let candidates = r.candidates.iter().map(|c| PathView {
        best: c.best,
        ecmp: c.ecmp,
        stale: c.stale,
        reason: c.reason.clone(),
        ..path_view(c.peer, &c.attributes)
    });
    let filtered = r.filtered.iter().map(|f| PathView {
        filtered: Some(f.reason.clone()),
        ..path_view(Some(f.peer), &f.attributes)
    });
    let not_installed = if installed {
        None
    } else if let Some(why) = kernel_refused {
        Some(why.to_string())
    } else if r.candidates.is_empty() {
        Some("all paths filtered".to_string())
    } else if r.candidates.iter().any(|c| c.best && c.peer.is_none()) {
        Some("own route best".to_string())
    } else if link_local_only(r) {
        // See batch::usable_next_hop: no output device is known.
        Some("link-local next hop only (fe80::/10, no device)".to_string())
    } else {
        None
    };
    RouteView {
        prefix: r.prefix.to_string(),
        family: match r.prefix {
            Prefix::V4(_) => "ipv4",
            Prefix::V6(_) => "ipv6",
        }
        .to_string(),
        installed,
        not_installed,
        paths: candidates.chain(filtered).collect(),
    }
}

/// The installable (ECMP) paths of `r` have next hops, all IPv6 link-local
/// (see `batch::usable_next_hop`).
fn link_local_only(r: &RouteInfo) -> bool {
    let mut hops = r
        .candidates
        .iter()
        .filter(|c| c.ecmp)
        .filter_map(|c| c.attributes.next_hop)
        .peekable();
    hops.peek().is_some() && hops.all(|nh| matches!(nh, IpAddr::V6(a) if a.is_unicast_link_local()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A learned route the kernel refused shows the kernel's reason; a BGP
    /// reason only when the table has none; nothing when installed.
    #[test]
    fn route_view_carries_the_kernel_refusal() {
        let r = RouteInfo {
            prefix: v4_prefix("10.88.0.0".parse().unwrap(), 24).unwrap(),
            candidates: vec![tortie_bgp::RouteCandidate {
                peer: Some("192.0.2.12".parse().unwrap()),
                attributes: std::sync::Arc::new(PathAttributes::default()),
                best: true,
                ecmp: true,
                stale: false,
                reason: None,
            }],
            filtered: Vec::new(),
        };
        let why = "kernel refused the route: Network is unreachable (ENETUNREACH)";
        let v = route_view(&r, false, Some(why));
        assert_eq!(v.not_installed.as_deref(), Some(why));
        assert!(!v.installed);
        assert_eq!(route_view(&r, true, Some(why)).not_installed, None);
        assert_eq!(route_view(&r, false, None).not_installed, None);
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["not_installed"], why);

        // An IPv6 path whose only next hop is link-local is not installable.
        let mut ll = r.clone();
        ll.prefix =
            Prefix::V6(tortie_bgp::Ipv6Prefix::new("2001:db8:57::".parse().unwrap(), 48).unwrap());
        ll.candidates[0].attributes = std::sync::Arc::new(PathAttributes {
            next_hop: Some("fe80::1".parse().unwrap()),
            ..PathAttributes::default()
        });
        assert_eq!(
            route_view(&ll, false, None).not_installed.as_deref(),
            Some("link-local next hop only (fe80::/10, no device)")
        );
    }

    const CONF: &str = r#"
[node]
name = "n1"
address = "192.0.2.11/24"
asn = 64512
pod_cidr = "10.244.1.0/26"

[bgp]
restart_time = 60

[[peer]]
address = "192.0.2.12"
asn = 64512
name = "n2"
"#;

    fn conf() -> Config {
        tortie_config::parse(CONF, "t.toml").unwrap()
    }

    #[test]
    fn speaker_settings_follow_the_config() {
        let c = conf();
        let s = speaker_config(&c, vec![AddressFamily::IPV6_UNICAST], &Links::default());
        assert_eq!(s.local_asn, 64512);
        assert_eq!(s.router_id, Ipv4Addr::new(192, 0, 2, 11));
        assert_eq!(
            s.local_addresses,
            vec!["192.0.2.11".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            s.graceful_restart,
            Some(GracefulRestartConfig {
                restart_time: 60,
                forwarding_preserved: vec![AddressFamily::IPV6_UNICAST]
            })
        );
        assert_eq!(s.peers.len(), 1);
        assert_eq!(s.peers[0].name, "n2");
        assert_eq!(
            s.guard.own_blocks,
            vec!["10.244.1.0/26".parse::<Prefix>().unwrap()]
        );
        assert_eq!(s.guard.own_addresses, s.local_addresses);
        assert_eq!(
            s.guard.gateways,
            vec![
                IpAddr::V4(tortie_routes::GATEWAY),
                IpAddr::V6(tortie_routes::GATEWAY6)
            ]
        );
        let c = tortie_config::parse(
            &format!("{CONF}source_address = \"192.0.2.99\"\n"),
            "t.toml",
        )
        .unwrap();
        assert!(
            import_guard(&c)
                .own_addresses
                .contains(&"192.0.2.99".parse().unwrap())
        );
        assert!(s.ebgp_requires_policy);
        assert_eq!(s.listen.map(|l| l.port()), Some(179));
    }

    /// The F bit per family: set for the families of which routes were
    /// adopted at start-up.
    #[test]
    fn forwarding_is_preserved_per_family_of_the_adopted_routes() {
        use AddressFamily as F;
        let table: [(u64, u64, &[F]); 4] = [
            (0, 0, &[]),
            (3, 0, &[F::IPV4_UNICAST]),
            (2, 2, &[F::IPV6_UNICAST]),
            (5, 1, &[F::IPV4_UNICAST, F::IPV6_UNICAST]),
        ];
        for (adopted, v6, want) in table {
            assert_eq!(preserved_families(adopted, v6), want, "{adopted} {v6}");
        }
    }

    fn status(state: tortie_bgp::SessionState, last_error: Option<&str>) -> PeerStatus {
        PeerStatus {
            state,
            since: UNIX_EPOCH,
            established_change: UNIX_EPOCH,
            established_transitions: 1,
            last_error: last_error.map(str::to_string),
            ..PeerStatus::new("192.0.2.12".parse().unwrap(), "n2".into(), 64512, 64512)
        }
    }

    /// A peer that sent a NOTIFICATION keeps it in its Info while the
    /// reconnection attempts fail with something else.
    #[test]
    fn a_received_notification_stays_in_info_after_later_errors() {
        use std::time::Duration;
        use tortie_bgp::{SessionState, Stamped};
        let down_at = UNIX_EPOCH + Duration::from_secs(100);
        let cease = "6/4 (Cease: Administrative Reset)";
        let p = PeerStatus {
            established_change: down_at,
            down_reason: Some(Stamped {
                text: format!("received NOTIFICATION {cease}"),
                at: down_at,
            }),
            notification_received: Some(Stamped {
                text: cease.into(),
                at: down_at - Duration::from_millis(1),
            }),
            ..status(SessionState::Active, Some("connection lost"))
        };
        assert_eq!(
            peer_view(&p).info.as_deref(),
            Some("received NOTIFICATION 6/4 (Cease: Administrative Reset); then connection lost")
        );
        // A NOTIFICATION received while trying again (e.g. an OPEN refused).
        let p = PeerStatus {
            notification_received: Some(Stamped {
                text: "2/2 (OPEN Message Error: Bad Peer AS)".into(),
                at: down_at + Duration::from_secs(5),
            }),
            ..p
        };
        assert_eq!(
            peer_view(&p).info.as_deref(),
            Some(
                "received NOTIFICATION 6/4 (Cease: Administrative Reset); then received NOTIFICATION 2/2 (OPEN Message Error: Bad Peer AS); then connection lost"
            )
        );
    }

    #[test]
    fn info_shows_the_last_error_only_while_down() {
        use tortie_bgp::SessionState;
        let err = "connect: Connection refused";
        let up = peer_view(&status(SessionState::Established, Some(err)));
        assert_eq!(up.info, None);
        assert_eq!(up.last_error.as_deref(), Some(err));
        let down = peer_view(&status(SessionState::Active, Some(err)));
        assert_eq!(down.info.as_deref(), Some(err));
        assert_eq!(down.last_error.as_deref(), Some(err));
        assert_eq!(peer_view(&status(SessionState::Active, None)).info, None);
    }

    #[test]
    fn a_next_hop_off_the_peers_subnet_is_a_warning() {
        let text = CONF.replace("192.0.2.12\"\nasn = 64512", "198.51.100.1\"\nasn = 65001");
        let c = tortie_config::parse(&text, "t.toml").unwrap();
        let mut st = status(tortie_bgp::SessionState::Established, None);
        st.address = "198.51.100.1".parse().unwrap();
        let w = next_hop_warning(&c, &st).expect("warning");
        assert!(
            w.contains("192.0.2.0/24") && w.contains("next hop 192.0.2.11"),
            "{w}"
        );
        // On the node's subnet, iBGP, or with source_address / multihop: none.
        assert_eq!(
            next_hop_warning(
                &conf(),
                &status(tortie_bgp::SessionState::Established, None)
            ),
            None
        );
        for extra in ["source_address = \"198.51.100.11\"\n", "multihop = 2\n"] {
            let c = tortie_config::parse(&format!("{text}{extra}"), "t.toml").unwrap();
            assert_eq!(next_hop_warning(&c, &st), None, "{extra}");
        }
    }

    #[test]
    fn policy_reaches_the_speaker() {
        let text = format!(
            "{CONF}import_filter = \"in\"\nmax_prefixes_restart = 5\n\n[[filter]]\nname = \"in\"\n[[filter.rule]]\naction = \"reject\"\n"
        )
        .replace(
            "restart_time = 60",
            "restart_time = 60\nebgp_requires_policy = false\nblock_communities = [\"64512:1\"]\nhost_communities = [\"64512:2:3\"]",
        );
        let c = tortie_config::parse(&text, "t.toml").unwrap();
        let s = speaker_config(&c, Vec::new(), &Links::default());
        assert!(!s.ebgp_requires_policy);
        assert_eq!(s.peers[0].import_filter.as_ref().unwrap().name, "in");
        assert_eq!(s.peers[0].max_prefixes_restart, Duration::from_secs(5));
        assert_eq!(
            origin_attributes(&c, true).communities,
            vec![(64512 << 16) | 1]
        );
        let host = origin_attributes(&c, false);
        assert_eq!(host.large_communities, vec![[64512, 2, 3]]);
        assert!(host.communities.is_empty() && host.next_hop.is_none());
    }

    #[test]
    fn hosts_outside_the_block_are_advertised() {
        let c = conf();
        assert!(!advertise_host(&c, Ipv4Addr::new(10, 244, 1, 5)));
        assert!(advertise_host(&c, Ipv4Addr::new(10, 99, 0, 1)));
        let blocks: Vec<String> = block_prefixes(&c).iter().map(|p| p.to_string()).collect();
        assert_eq!(blocks, ["10.244.1.0/26"]);
    }

    #[test]
    fn dual_stack_originates_both_blocks_with_both_next_hops() {
        let text = CONF
            .replace(
                "address = \"192.0.2.11/24\"",
                "address = [\"192.0.2.11/24\", \"2001:db8:1::11/64\"]",
            )
            .replace(
                "pod_cidr = \"10.244.1.0/26\"",
                "pod_cidr = [\"10.244.1.0/26\", \"fd00:10:244:1::/120\"]",
            );
        let c = tortie_config::parse(&text, "t.toml").unwrap();
        let blocks: Vec<String> = block_prefixes(&c).iter().map(|p| p.to_string()).collect();
        assert_eq!(blocks, ["10.244.1.0/26", "fd00:10:244:1::/120"]);
        let links = Links(vec![
            super::super::links::IfAddr {
                ifname: "eth0".into(),
                address: "192.0.2.11".parse().unwrap(),
                netmask: Some("255.255.255.0".parse().unwrap()),
            },
            super::super::links::IfAddr {
                ifname: "eth0".into(),
                address: "fe80::11".parse().unwrap(),
                netmask: Some("ffff:ffff:ffff:ffff::".parse().unwrap()),
            },
        ]);
        let s = speaker_config(&c, Vec::new(), &links);
        let want: Vec<IpAddr> = vec![
            "192.0.2.11".parse().unwrap(),
            "2001:db8:1::11".parse().unwrap(),
        ];
        assert_eq!(s.local_addresses, want);
        let p = &s.peers[0];
        assert_eq!(
            p.families,
            vec![
                tortie_bgp::AddressFamily::IPV4_UNICAST,
                tortie_bgp::AddressFamily::IPV6_UNICAST
            ]
        );
        assert_eq!(p.link_local_next_hop, Some("fe80::11".parse().unwrap()));
        assert!(!advertise_host(
            &c,
            "fd00:10:244:1::5".parse::<IpAddr>().unwrap()
        ));
        assert!(advertise_host(&c, "fd00:99::5".parse::<IpAddr>().unwrap()));
        assert_eq!(
            host_prefix("fd00:99::5".parse().unwrap()).map(|p| p.to_string()),
            Some("fd00:99::5/128".into())
        );
    }
}
