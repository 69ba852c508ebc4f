//! RFC 4271 §8 event sequences through the sans-IO FSM: no sockets, no clocks.

use std::net::Ipv4Addr;
use std::time::Duration;

use tortie_bgp::fsm::{
    Action, CollisionOutcome, DownReason, Event, Fsm, FsmConfig, SessionState, Timer, codes,
    resolve_collision,
};
use tortie_bgp::wire::{
    AS_TRANS, Capability, GracefulRestartCapability, Notification, Open, Update,
};
use tortie_bgp::{AddressFamily, Prefix};

const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEER_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn cfg(local_asn: u32, peer_asn: u32, passive: bool) -> FsmConfig {
    FsmConfig {
        local_asn,
        router_id: LOCAL_ID,
        peer_asn,
        hold_time: 90,
        passive,
        connect_retry: Duration::from_secs(5),
        connect_retry_max: Duration::from_secs(120),
        families: vec![AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST],
        graceful_restart: None,
        extended_message: true,
    }
}

fn peer_open(asn: u32, hold: u16, id: Ipv4Addr) -> Open {
    Open {
        version: 4,
        my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
        hold_time: hold,
        bgp_identifier: id,
        capabilities: vec![
            Capability::Multiprotocol(AddressFamily::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ],
    }
}

fn sent_notification(actions: &[Action]) -> Option<Notification> {
    actions.iter().find_map(|a| match a {
        Action::SendNotification(n) => Some(n.clone()),
        _ => None,
    })
}

/// Drives a fresh FSM to OpenSent over an outgoing connection.
fn to_open_sent(c: FsmConfig) -> Fsm {
    let mut f = Fsm::new(c);
    let a = f.handle(Event::ManualStart);
    assert!(a.contains(&Action::Connect), "{a:?}");
    assert_eq!(f.state(), SessionState::Connect);
    let a = f.handle(Event::TcpCrAcked);
    assert!(a.iter().any(|a| matches!(a, Action::SendOpen(_))), "{a:?}");
    assert!(a.contains(&Action::StartTimer(Timer::Hold, Duration::from_secs(240))));
    assert_eq!(f.state(), SessionState::OpenSent);
    f
}

fn established(c: FsmConfig, peer_hold: u16) -> Fsm {
    let peer_asn = c.peer_asn;
    let mut f = to_open_sent(c);
    f.handle(Event::BGPOpen(peer_open(peer_asn, peer_hold, PEER_ID)));
    let a = f.handle(Event::KeepAliveMsg);
    assert!(
        a.iter().any(|a| matches!(a, Action::SessionEstablished(_))),
        "{a:?}"
    );
    assert_eq!(f.state(), SessionState::Established);
    f
}

#[test]
fn happy_path_active_side() {
    let mut f = to_open_sent(cfg(64512, 65001, false));
    let open = f.our_open();
    assert_eq!(open.my_as, 64512);
    assert_eq!(open.hold_time, 90);
    assert!(open.capabilities.contains(&Capability::FourOctetAs(64512)));
    let a = f.handle(Event::BGPOpen(peer_open(65001, 30, PEER_ID)));
    assert_eq!(f.state(), SessionState::OpenConfirm);
    assert!(a.contains(&Action::SendKeepalive));
    // Hold time negotiation: min(90, 30) = 30; keepalive = 10 (RFC 4271 §4.2, §10).
    assert!(
        a.contains(&Action::StartTimer(Timer::Hold, Duration::from_secs(30))),
        "{a:?}"
    );
    assert!(
        a.contains(&Action::StartTimer(
            Timer::Keepalive,
            Duration::from_secs(10)
        )),
        "{a:?}"
    );
    let a = f.handle(Event::KeepAliveMsg);
    let neg = a
        .iter()
        .find_map(|a| match a {
            Action::SessionEstablished(n) => Some(n.clone()),
            _ => None,
        })
        .expect("established");
    assert_eq!(neg.hold_time, 30);
    assert_eq!(neg.keepalive, 10);
    assert_eq!(neg.peer_asn, 65001);
    assert_eq!(neg.peer_id, PEER_ID);
    // The peer only advertised IPv4 unicast: the intersection.
    assert_eq!(neg.families, vec![AddressFamily::IPV4_UNICAST]);
    assert!(neg.four_octet_as && neg.route_refresh && !neg.extended_message);
    assert!(neg.peer_graceful_restart.is_none());

    // Established: UPDATE restarts the hold timer and is delivered.
    let u = Update {
        announced: vec!["10.0.0.0/24".parse::<Prefix>().unwrap()].into(),
        ..Default::default()
    };
    let a = f.handle(Event::UpdateMsg(u.clone()));
    assert_eq!(
        a,
        vec![
            Action::StartTimer(Timer::Hold, Duration::from_secs(30)),
            Action::DeliverUpdate(u)
        ]
    );
    let a = f.handle(Event::KeepaliveTimerExpires);
    assert_eq!(
        a,
        vec![
            Action::SendKeepalive,
            Action::StartTimer(Timer::Keepalive, Duration::from_secs(10))
        ]
    );
}

#[test]
fn happy_path_passive_side() {
    let mut f = Fsm::new(cfg(64512, 64512, true));
    let a = f.handle(Event::ManualStart);
    assert!(
        !a.contains(&Action::Connect),
        "passive never connects: {a:?}"
    );
    assert_eq!(f.state(), SessionState::Active);
    // ConnectRetry expiry in Active does not connect for a passive peer.
    let a = f.handle(Event::ConnectRetryTimerExpires);
    assert!(!a.contains(&Action::Connect));
    assert_eq!(f.state(), SessionState::Active);
    let a = f.handle(Event::TcpConnectionConfirmed);
    assert!(a.iter().any(|a| matches!(a, Action::SendOpen(_))));
    assert_eq!(f.state(), SessionState::OpenSent);
    f.handle(Event::BGPOpen(peer_open(64512, 90, PEER_ID)));
    assert_eq!(f.state(), SessionState::OpenConfirm);
    f.handle(Event::KeepAliveMsg);
    assert_eq!(f.state(), SessionState::Established);
}

#[test]
fn connect_failure_backs_off_exponentially() {
    let mut f = Fsm::new(cfg(64512, 65001, false));
    f.handle(Event::ManualStart);
    let a = f.handle(Event::TcpConnectionFails);
    assert_eq!(f.state(), SessionState::Active);
    assert!(
        a.contains(&Action::StartTimer(
            Timer::ConnectRetry,
            Duration::from_secs(10)
        )),
        "{a:?}"
    );
    let a = f.handle(Event::ConnectRetryTimerExpires);
    assert!(a.contains(&Action::Connect));
    assert_eq!(f.state(), SessionState::Connect);
    let a = f.handle(Event::TcpConnectionFails);
    assert!(
        a.contains(&Action::StartTimer(
            Timer::ConnectRetry,
            Duration::from_secs(20)
        )),
        "{a:?}"
    );
    for _ in 0..10 {
        f.handle(Event::ConnectRetryTimerExpires);
        f.handle(Event::TcpConnectionFails);
    }
    assert_eq!(f.retry_delay(), Duration::from_secs(120), "capped");
}

#[test]
fn hold_timer_expiry_sends_4_0() {
    let mut f = established(cfg(64512, 65001, false), 3);
    let a = f.handle(Event::HoldTimerExpires);
    let n = sent_notification(&a).expect("notification");
    assert_eq!((n.code, n.subcode), (4, 0));
    assert!(a.contains(&Action::CloseConnection));
    assert!(a.iter().any(|a| matches!(
        a,
        Action::SessionDown {
            was_established: true,
            reason: DownReason::NotificationSent(_)
        }
    )));
    assert_eq!(f.state(), SessionState::Idle);
    // Automatic restart after the idle hold (back-off) timer.
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::StartTimer(Timer::IdleHold, _)))
    );
    let a = f.handle(Event::IdleHoldTimerExpires);
    assert!(a.contains(&Action::Connect));
}

fn bad_open(o: Open) -> Notification {
    let mut f = to_open_sent(cfg(64512, 65001, false));
    let a = f.handle(Event::BGPOpen(o));
    assert_eq!(f.state(), SessionState::Idle);
    assert!(a.contains(&Action::CloseConnection));
    sent_notification(&a).expect("notification")
}

#[test]
fn bad_peer_as_is_2_2() {
    let n = bad_open(peer_open(65002, 90, PEER_ID));
    assert_eq!((n.code, n.subcode, n.data.len()), (2, 2, 0));
}

#[test]
fn bad_hold_time_is_2_6() {
    for h in [1, 2] {
        let n = bad_open(peer_open(65001, h, PEER_ID));
        assert_eq!((n.code, n.subcode), (2, 6), "hold {h}");
    }
}

#[test]
fn bad_identifier_is_2_3() {
    let n = bad_open(peer_open(65001, 90, Ipv4Addr::UNSPECIFIED));
    assert_eq!((n.code, n.subcode), (2, 3));
    // Same identifier as ours on an iBGP session (RFC 6286 §2.2).
    let mut f = to_open_sent(cfg(64512, 64512, false));
    let a = f.handle(Event::BGPOpen(peer_open(64512, 90, LOCAL_ID)));
    let n = sent_notification(&a).unwrap();
    assert_eq!((n.code, n.subcode), (2, 3));
    // ... but allowed over eBGP.
    let mut f = to_open_sent(cfg(64512, 65001, false));
    f.handle(Event::BGPOpen(peer_open(65001, 90, LOCAL_ID)));
    assert_eq!(f.state(), SessionState::OpenConfirm);
}

#[test]
fn bad_version_is_2_1_with_our_version() {
    let mut o = peer_open(65001, 90, PEER_ID);
    o.version = 3;
    let n = bad_open(o);
    assert_eq!((n.code, n.subcode, n.data), (2, 1, vec![0, 4]));
}

#[test]
fn no_common_family_is_2_7() {
    let mut c = cfg(64512, 65001, false);
    c.families = vec![AddressFamily::IPV6_UNICAST];
    let mut f = to_open_sent(c);
    // No MP capability at all means IPv4 unicast only (RFC 4760).
    let mut o = peer_open(65001, 90, PEER_ID);
    o.capabilities
        .retain(|c| !matches!(c, Capability::Multiprotocol(_)));
    let a = f.handle(Event::BGPOpen(o));
    let n = sent_notification(&a).unwrap();
    assert_eq!((n.code, n.subcode), (2, 7));
    // Data: the Multiprotocol capability the peer lacks (code 1, len 4, AFI 2, 0, SAFI 1).
    assert_eq!(n.data, vec![1, 4, 0, 2, 0, 1]);
}

#[test]
fn four_octet_asn_via_capability() {
    let mut f = to_open_sent(cfg(64512, 4_200_000_000, false));
    let o = peer_open(4_200_000_000, 90, PEER_ID);
    assert_eq!(o.my_as, AS_TRANS);
    f.handle(Event::BGPOpen(o));
    assert_eq!(f.state(), SessionState::OpenConfirm);
    let c = cfg(4_200_000_001, 65001, false);
    let f = Fsm::new(c);
    assert_eq!(f.our_open().my_as, AS_TRANS);
}

#[test]
fn zero_hold_time_disables_timers() {
    let mut c = cfg(64512, 65001, false);
    c.hold_time = 0;
    let mut f = to_open_sent(c);
    let a = f.handle(Event::BGPOpen(peer_open(65001, 90, PEER_ID)));
    assert!(
        !a.iter()
            .any(|a| matches!(a, Action::StartTimer(Timer::Keepalive | Timer::Hold, _))),
        "{a:?}"
    );
    let a = f.handle(Event::KeepAliveMsg);
    assert!(
        !a.iter()
            .any(|a| matches!(a, Action::StartTimer(Timer::Hold, _))),
        "{a:?}"
    );
    let a = f.handle(Event::KeepAliveMsg);
    assert!(a.is_empty(), "{a:?}");
}

#[test]
fn graceful_restart_capability_is_negotiated() {
    let mut c = cfg(64512, 65001, false);
    c.graceful_restart = Some(GracefulRestartCapability {
        restart_state: true,
        notification: false,
        restart_time: 120,
        families: vec![(AddressFamily::IPV4_UNICAST, true)],
    });
    let mut f = to_open_sent(c);
    assert!(
        f.our_open()
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::GracefulRestart(g) if g.restart_state))
    );
    let mut o = peer_open(65001, 90, PEER_ID);
    let peer_gr = GracefulRestartCapability {
        restart_state: false,
        notification: false,
        restart_time: 30,
        families: vec![(AddressFamily::IPV4_UNICAST, false)],
    };
    o.capabilities
        .push(Capability::GracefulRestart(peer_gr.clone()));
    o.capabilities.push(Capability::ExtendedMessage);
    f.handle(Event::BGPOpen(o));
    let neg = f.negotiated().unwrap();
    assert_eq!(neg.peer_graceful_restart.as_ref(), Some(&peer_gr));
    assert!(neg.local_graceful_restart && neg.extended_message);
}

#[test]
fn notification_received_goes_idle_without_reply() {
    let mut f = established(cfg(64512, 65001, false), 90);
    let n = Notification {
        code: 6,
        subcode: 2,
        data: Vec::new(),
    };
    let a = f.handle(Event::NotifMsg(n.clone()));
    assert!(sent_notification(&a).is_none());
    assert!(a.contains(&Action::CloseConnection));
    assert!(a.contains(&Action::SessionDown {
        reason: DownReason::NotificationReceived(n),
        was_established: true
    }));
    assert_eq!(f.state(), SessionState::Idle);
}

#[test]
fn unexpected_messages_are_fsm_errors_rfc6608() {
    // OPEN in Established: 5/3.
    let mut f = established(cfg(64512, 65001, false), 90);
    let a = f.handle(Event::BGPOpen(peer_open(65001, 90, PEER_ID)));
    let n = sent_notification(&a).unwrap();
    assert_eq!((n.code, n.subcode), (codes::FSM_ERROR, 3));
    // UPDATE in OpenConfirm: 5/2.
    let mut f = to_open_sent(cfg(64512, 65001, false));
    f.handle(Event::BGPOpen(peer_open(65001, 90, PEER_ID)));
    let a = f.handle(Event::UpdateMsg(Update::default()));
    assert_eq!(
        sent_notification(&a).map(|n| (n.code, n.subcode)),
        Some((5, 2))
    );
    // KEEPALIVE in OpenSent: 5/1.
    let mut f = to_open_sent(cfg(64512, 65001, false));
    let a = f.handle(Event::KeepAliveMsg);
    assert_eq!(
        sent_notification(&a).map(|n| (n.code, n.subcode)),
        Some((5, 1))
    );
    assert_eq!(f.state(), SessionState::Idle);
}

#[test]
fn decode_errors_send_the_decoders_notification() {
    let mut f = established(cfg(64512, 65001, false), 90);
    let n = Notification {
        code: 3,
        subcode: 1,
        data: vec![],
    };
    let a = f.handle(Event::UpdateMsgErr(n.clone()));
    assert_eq!(sent_notification(&a), Some(n));
    assert_eq!(f.state(), SessionState::Idle);
}

#[test]
fn manual_stop_sends_cease_2_and_stays_idle() {
    let mut f = established(cfg(64512, 65001, false), 90);
    let a = f.handle(Event::ManualStop);
    assert_eq!(
        sent_notification(&a).map(|n| (n.code, n.subcode)),
        Some((6, 2))
    );
    assert!(
        !a.iter().any(|a| matches!(a, Action::StartTimer(..))),
        "{a:?}"
    );
    assert!(f.handle(Event::AutomaticStart).is_empty());
    assert_eq!(f.state(), SessionState::Idle);
    let a = f.handle(Event::ManualStart);
    assert!(a.contains(&Action::Connect));
}

#[test]
fn automatic_stop_max_prefix_is_cease_1_and_restarts_later() {
    let mut f = established(cfg(64512, 65001, false), 90);
    let n = Notification {
        code: 6,
        subcode: 1,
        data: vec![0, 1, 1, 0, 0, 0, 10],
    };
    let a = f.handle(Event::AutomaticStop(Some(n.clone())));
    assert_eq!(sent_notification(&a), Some(n));
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::StartTimer(Timer::IdleHold, _))),
        "{a:?}"
    );
}

#[test]
fn collision_resolution_both_outcomes() {
    // §6.8: the higher identifier's connection survives.
    assert_eq!(
        resolve_collision(Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1)),
        CollisionOutcome::KeepLocallyInitiated
    );
    assert_eq!(
        resolve_collision(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)),
        CollisionOutcome::KeepRemotelyInitiated
    );
    // The losing connection's FSM sends Cease/7 and closes.
    for state_reached in [SessionState::OpenSent, SessionState::OpenConfirm] {
        let mut f = to_open_sent(cfg(64512, 65001, false));
        if state_reached == SessionState::OpenConfirm {
            f.handle(Event::BGPOpen(peer_open(65001, 90, PEER_ID)));
        }
        assert_eq!(f.state(), state_reached);
        let a = f.handle(Event::OpenCollisionDump);
        assert_eq!(
            sent_notification(&a).map(|n| (n.code, n.subcode)),
            Some((6, 7))
        );
        assert!(a.contains(&Action::CloseConnection));
        assert_eq!(f.state(), SessionState::Idle);
    }
}

#[test]
fn tcp_failure_in_open_sent_returns_to_active() {
    let mut f = to_open_sent(cfg(64512, 65001, false));
    let a = f.handle(Event::TcpConnectionFails);
    assert_eq!(f.state(), SessionState::Active);
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::StartTimer(Timer::ConnectRetry, _)))
    );
    // Established + TCP failure: GR receivers keep routes for ConnectionLost.
    let mut f = established(cfg(64512, 65001, false), 90);
    let a = f.handle(Event::TcpConnectionFails);
    let down = a.iter().find_map(|a| match a {
        Action::SessionDown { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(down, Some(DownReason::ConnectionLost));
    assert!(DownReason::ConnectionLost.retains_routes());
    assert!(
        !DownReason::NotificationReceived(Notification {
            code: 6,
            subcode: 2,
            data: vec![]
        })
        .retains_routes()
    );
}
