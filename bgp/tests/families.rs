//! Dual-stack per family: the Multiprotocol and Graceful Restart
//! capabilities a session offers (RFC 4760 §8, RFC 4724 §3), what graceful
//! restart keeps or flushes per family (RFC 4724 §4.2), End-of-RIB per
//! family, and the next hop chosen per family (RFC 2545 §3, RFC 4271 §5.1.3),
//! as byte vectors and event tables.

mod rib_common;

use std::net::Ipv4Addr;
use std::time::Duration;

use rib_common::*;
use tortie_bgp::fsm::{Action, Event, Fsm, FsmConfig, validate_open};
use tortie_bgp::wire::{CodecContext, GracefulRestartCapability, Message, decode, encode};
use tortie_bgp::{AddressFamily, GracefulRestartConfig};

const V4: AddressFamily = AddressFamily::IPV4_UNICAST;
const V6: AddressFamily = AddressFamily::IPV6_UNICAST;

fn fsm_cfg(families: &[AddressFamily]) -> FsmConfig {
    fsm_cfg_with(
        families,
        GracefulRestartCapability {
            restart_state: false,
            notification: false,
            restart_time: 120,
            families: families.iter().map(|f| (*f, true)).collect(),
        },
    )
}

fn fsm_cfg_with(families: &[AddressFamily], gr: GracefulRestartCapability) -> FsmConfig {
    FsmConfig {
        local_asn: 65000,
        router_id: Ipv4Addr::new(192, 0, 2, 1),
        peer_asn: 65001,
        hold_time: 90,
        passive: false,
        connect_retry: Duration::from_secs(5),
        connect_retry_max: Duration::from_secs(120),
        families: families.to_vec(),
        graceful_restart: Some(gr),
        extended_message: false,
    }
}

/// The OPEN our FSM sends, as bytes.
fn our_open(families: &[AddressFamily]) -> Vec<u8> {
    open_bytes(fsm_cfg(families))
}

fn open_bytes(cfg: FsmConfig) -> Vec<u8> {
    let mut f = Fsm::new(cfg);
    f.handle(Event::ManualStart);
    let open = f
        .handle(Event::TcpCrAcked)
        .into_iter()
        .find_map(|a| match a {
            Action::SendOpen(o) => Some(o),
            _ => None,
        })
        .expect("OPEN sent");
    let mut out = Vec::new();
    encode(&Message::Open(open), &CodecContext::default(), &mut out).unwrap();
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn open_offers_exactly_the_configured_families() {
    // Capability code 1 (Multiprotocol), length 4, AFI, reserved, SAFI 1.
    let mp4 = [1, 4, 0, 1, 0, 1];
    let mp6 = [1, 4, 0, 2, 0, 1];
    // Graceful Restart (64): flags+time 0x0078 (120 s), then AFI SAFI flags
    // with the F bit (0x80) per family.
    let gr6 = [64, 6, 0x00, 0x78, 0, 2, 1, 0x80];
    let gr46 = [64, 10, 0x00, 0x78, 0, 1, 1, 0x80, 0, 2, 1, 0x80];
    let table: [(&[AddressFamily], bool, bool, &[u8]); 3] = [
        (&[V4], true, false, &[64, 6, 0x00, 0x78, 0, 1, 1, 0x80]),
        (&[V6], false, true, &gr6),
        (&[V4, V6], true, true, &gr46),
    ];
    for (families, has4, has6, gr) in table {
        let b = our_open(families);
        assert_eq!(contains(&b, &mp4), has4, "{families:?}: {b:02x?}");
        assert_eq!(contains(&b, &mp6), has6, "{families:?}: {b:02x?}");
        assert!(contains(&b, gr), "{families:?}: {b:02x?}");
    }
}

/// Our Forwarding State (F) bit per family (RFC 4724 §3): set only for the
/// families whose forwarding state the agent kept across its restart; the
/// Restart State (R) bit on a first session when it kept any (§4.1). The
/// helper reading our OPEN keeps our stale routes of exactly those families
/// (§4.2).
#[test]
fn our_forwarding_state_bit_is_per_family() {
    // (families kept, session families, first session) -> our capability
    // (code 64: flags+time, then AFI SAFI flags), what the helper flushes.
    type Row = (
        &'static [AddressFamily],
        &'static [AddressFamily],
        bool,
        &'static [u8],
        &'static [AddressFamily],
    );
    let table: [Row; 7] = [
        (
            &[],
            &[V4, V6],
            true,
            &[64, 10, 0x00, 0x78, 0, 1, 1, 0, 0, 2, 1, 0],
            &[V4, V6],
        ),
        (
            &[V4],
            &[V4, V6],
            true,
            &[64, 10, 0x80, 0x78, 0, 1, 1, 0x80, 0, 2, 1, 0],
            &[V6],
        ),
        (
            &[V6],
            &[V4, V6],
            true,
            &[64, 10, 0x80, 0x78, 0, 1, 1, 0, 0, 2, 1, 0x80],
            &[V4],
        ),
        (
            &[V6],
            &[V4, V6],
            false,
            &[64, 10, 0x00, 0x78, 0, 1, 1, 0, 0, 2, 1, 0x80],
            &[V4],
        ),
        (
            &[V4, V6],
            &[V4, V6],
            true,
            &[64, 10, 0x80, 0x78, 0, 1, 1, 0x80, 0, 2, 1, 0x80],
            &[],
        ),
        (
            &[V4, V6],
            &[V6],
            true,
            &[64, 6, 0x80, 0x78, 0, 2, 1, 0x80],
            &[V4],
        ),
        (
            &[V6],
            &[V4],
            true,
            &[64, 6, 0x80, 0x78, 0, 1, 1, 0],
            &[V4, V6],
        ),
    ];
    for (kept, families, first, cap, flushed) in table {
        let g = GracefulRestartConfig {
            restart_time: 120,
            forwarding_preserved: kept.to_vec(),
        };
        let ours = open_bytes(fsm_cfg_with(families, g.capability(families, first)));
        assert!(
            contains(&ours, cap),
            "{kept:?} {families:?} {first}: {ours:02x?}"
        );
        // The helper's side.
        let Message::Open(open) = decode(&ours, &CodecContext::default()).unwrap() else {
            panic!("not an OPEN");
        };
        let mut helper = fsm_cfg(families);
        (helper.local_asn, helper.peer_asn) = (65001, 65000);
        helper.router_id = Ipv4Addr::new(192, 0, 2, 2);
        let n = validate_open(&helper, &open).unwrap();
        assert_eq!(
            n.stale_families_to_flush(),
            flushed.to_vec(),
            "{kept:?} {families:?}"
        );
    }
}

/// A peer's OPEN (AS 65001, hold 90, id 192.0.2.2) with Multiprotocol for
/// IPv4 and IPv6, 4-octet AS, and Graceful Restart listing `gr` as
/// (AFI, F bit) pairs.
fn peer_open_bytes(gr: &[(u8, bool)]) -> Vec<u8> {
    let mut caps = vec![1, 4, 0, 1, 0, 1, 1, 4, 0, 2, 0, 1, 65, 4, 0, 0, 0xfd, 0xe9];
    caps.extend([64, (2 + 4 * gr.len()) as u8, 0x00, 0x78]);
    for (afi, f) in gr {
        caps.extend([0, *afi, 1, if *f { 0x80 } else { 0 }]);
    }
    let mut body = vec![4, 0xfd, 0xe9, 0, 90, 192, 0, 2, 2];
    body.push((caps.len() + 2) as u8);
    body.extend([2, caps.len() as u8]);
    body.extend(caps);
    let mut m = vec![0xff; 16];
    m.extend(((19 + body.len()) as u16).to_be_bytes());
    m.push(1);
    m.extend(body);
    m
}

#[test]
fn graceful_restart_keeps_and_flushes_per_family() {
    // (families we offer, the peer's GR entries) -> (kept on session loss,
    // stale families flushed when the peer is back).
    type Row = (
        &'static [AddressFamily],
        &'static [(u8, bool)],
        &'static [AddressFamily],
        &'static [AddressFamily],
    );
    let table: [Row; 5] = [
        (&[V4, V6], &[(1, true), (2, true)], &[V4, V6], &[]),
        // F bit only for IPv4: IPv6's stale routes go once the peer is back.
        (&[V4, V6], &[(1, true), (2, false)], &[V4, V6], &[V6]),
        // IPv6 not in the peer's capability: not kept at all.
        (&[V4, V6], &[(1, true)], &[V4], &[V6]),
        // A session carrying IPv6 only: IPv4 is neither kept nor kept stale.
        (&[V6], &[(1, true), (2, true)], &[V6], &[V4]),
        (&[V4, V6], &[], &[], &[V4, V6]),
    ];
    for (ours, gr, kept, flushed) in table {
        let Message::Open(open) = decode(&peer_open_bytes(gr), &CodecContext::default()).unwrap()
        else {
            panic!("not an OPEN");
        };
        let n = validate_open(&fsm_cfg(ours), &open).unwrap();
        assert_eq!(n.families, ours.to_vec());
        assert_eq!(n.families_kept_on_loss(), kept.to_vec(), "{ours:?} {gr:?}");
        assert_eq!(
            n.stale_families_to_flush(),
            flushed.to_vec(),
            "{ours:?} {gr:?}"
        );
    }
}

#[test]
fn end_of_rib_is_sent_per_negotiated_family() {
    for families in [vec![V4], vec![V6], vec![V4, V6]] {
        let mut r = rib();
        let mut i = peer_info(1, 65001);
        i.families = families.clone();
        i.alternate_next_hop = Some(ip("2001:db8::254"));
        let out = up(&mut r, 1, i);
        let eor: Vec<_> = sent_to(&out, 1)
            .iter()
            .filter_map(|u| u.end_of_rib)
            .collect();
        assert_eq!(eor, families);
    }
}

/// Peer 1 (eBGP, IPv4 session, both families) feeds; the others receive.
#[test]
fn next_hop_follows_the_family_of_the_route() {
    let mut r = rib();
    let mut src = peer_info(1, 65001);
    src.families = vec![V4, V6];
    up(&mut r, 1, src);
    // 2: an IPv4 session on a shared link, node IPv6 address and link-local.
    let mut on_link = peer_info(2, 65002);
    on_link.families = vec![V4, V6];
    on_link.alternate_next_hop = Some(ip("2001:db8::254"));
    on_link.link_local_next_hop = Some("fe80::254".parse().unwrap());
    up(&mut r, 2, on_link);
    // 3: an IPv6 session (our side 2001:db8::254), node IPv4 address too.
    let mut over_v6 = tortie_bgp::rib::PeerInfo::new(
        ip("2001:db8::3"),
        65003,
        Ipv4Addr::new(10, 255, 0, 3),
        ip("2001:db8::254"),
    );
    over_v6.families = vec![V4, V6];
    over_v6.alternate_next_hop = Some(ip("192.0.2.254"));
    up(&mut r, 3, over_v6);
    // 4: an IPv4 session with no IPv6 address of ours: IPv6 cannot be sent.
    let mut no_v6 = peer_info(4, 65004);
    no_v6.families = vec![V4, V6];
    up(&mut r, 4, no_v6);

    let out4 = apply(
        &mut r,
        1,
        announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.1")),
    );
    let out6 = apply(
        &mut r,
        1,
        announce(&["2001:db8:100::/48"], attrs(&[65001], "2001:db8::1")),
    );
    // (peer, prefix, expected next hop, expected link-local next hop)
    let table: [(u32, &str, Option<&str>, Option<&str>); 6] = [
        (2, "203.0.113.0/24", Some("192.0.2.254"), None),
        (
            2,
            "2001:db8:100::/48",
            Some("2001:db8::254"),
            Some("fe80::254"),
        ),
        (3, "203.0.113.0/24", Some("192.0.2.254"), None),
        (3, "2001:db8:100::/48", Some("2001:db8::254"), None),
        (4, "203.0.113.0/24", Some("192.0.2.254"), None),
        (4, "2001:db8:100::/48", None, None),
    ];
    // Counters per family (status, metrics): (peer, received, of them IPv6,
    // advertised, of them IPv6).
    for (peer, rcvd, rcvd6, adv, adv6) in [(1, 2, 1, 0, 0), (2, 0, 0, 2, 1), (4, 0, 0, 1, 0)] {
        let c = r.peer_counters(tortie_bgp::rib::PeerId(peer)).unwrap();
        assert_eq!(
            (c.received, c.received_ipv6, c.advertised, c.advertised_ipv6),
            (rcvd, rcvd6, adv, adv6),
            "peer {peer}"
        );
    }
    apply(&mut r, 1, withdraw(&["2001:db8:100::/48"]));
    let c = r.peer_counters(tortie_bgp::rib::PeerId(2)).unwrap();
    assert_eq!((c.advertised, c.advertised_ipv6), (1, 0));
    let c = r.peer_counters(tortie_bgp::rib::PeerId(1)).unwrap();
    assert_eq!((c.received, c.received_ipv6), (1, 0));
    for (peer, prefix, nh, ll) in table {
        let out = if prefix.contains(':') { &out6 } else { &out4 };
        let got = announced_to(out, peer, prefix);
        assert_eq!(
            got.as_ref().and_then(|a| a.next_hop),
            nh.map(ip),
            "peer {peer} {prefix}"
        );
        assert_eq!(
            got.and_then(|a| a.link_local_next_hop),
            ll.map(|s| s.parse().unwrap()),
            "peer {peer} {prefix}"
        );
    }
}

#[test]
fn routes_the_node_cannot_forward_are_not_advertised_onward() {
    let mut r = rib();
    let mut src = peer_info(1, 65001);
    src.families = vec![V4, V6];
    up(&mut r, 1, src);
    let mut to = peer_info(2, 65002);
    to.families = vec![V4, V6];
    to.alternate_next_hop = Some(ip("2001:db8::254"));
    up(&mut r, 2, to);
    // A link-local-only IPv6 next hop: best path (the agent is told), not
    // installable, so not sent on; a global one is.
    let out = apply(
        &mut r,
        1,
        announce(&["2001:db8:200::/48"], attrs(&[65001], "fe80::1")),
    );
    assert_eq!(out.best_changes.len(), 1);
    assert!(sent_to(&out, 2).is_empty(), "{out:?}");
    let out = apply(
        &mut r,
        1,
        announce(&["2001:db8:200::/48"], attrs(&[65001], "2001:db8::1")),
    );
    assert!(announced_to(&out, 2, "2001:db8:200::/48").is_some());
    // And back to link-local only: withdrawn.
    let out = apply(
        &mut r,
        1,
        announce(&["2001:db8:200::/48"], attrs(&[65001], "fe80::1")),
    );
    assert!(withdrawn_to(&out, 2, "2001:db8:200::/48"), "{out:?}");
    // Our own IPv6 block (no next hop: next-hop self) goes out.
    let out = r.originate(pfx("fd00:10:244:1::/120"), None);
    let a = announced_to(&out, 2, "fd00:10:244:1::/120").unwrap();
    assert_eq!(a.next_hop, Some(ip("2001:db8::254")));
}
