//! Event tables for the BFD state machine (RFC 5880 §6.8): every reception
//! transition of §6.8.6, detection (§6.8.4), transmission and jitter
//! (§6.8.7), the Poll Sequence of a rate change (§6.8.3, §6.5), Demand mode
//! of the peer and administrative control (§6.8.16).

use std::time::Duration;

use tortie_bgp::bfd::{
    Action, BfdState, ControlPacket, Diagnostic, Discard, Event, Session, SessionConfig,
};

const LOCAL: u32 = 0x11;
const REMOTE: u32 = 0x22;

fn cfg() -> SessionConfig {
    SessionConfig {
        local_discriminator: LOCAL,
        desired_min_tx_us: 300_000,
        required_min_rx_us: 300_000,
        detect_mult: 3,
        jitter_seed: 42,
    }
}

fn pkt(state: BfdState) -> ControlPacket {
    ControlPacket {
        diag: Diagnostic::None,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        auth_present: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: REMOTE,
        your_discriminator: if matches!(state, BfdState::Down | BfdState::AdminDown) {
            0
        } else {
            LOCAL
        },
        desired_min_tx_us: 1_000_000,
        required_min_rx_us: 1_000_000,
        required_min_echo_rx_us: 0,
    }
}

/// A session driven into `state` by the peer's packets.
fn in_state(state: BfdState) -> Session {
    let mut s = Session::new(cfg());
    s.start();
    match state {
        BfdState::Down => {}
        BfdState::Init => {
            s.handle(Event::Received(pkt(BfdState::Down)));
        }
        BfdState::Up => {
            s.handle(Event::Received(pkt(BfdState::Init)));
        }
        BfdState::AdminDown => {
            s.handle(Event::AdminDown);
        }
    }
    assert_eq!(s.state(), state);
    s
}

fn changes(actions: &[Action]) -> Vec<(BfdState, BfdState, Diagnostic)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StateChanged { from, to, diag, .. } => Some((*from, *to, *diag)),
            _ => None,
        })
        .collect()
}

fn sent(actions: &[Action]) -> Vec<ControlPacket> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(*p),
            _ => None,
        })
        .collect()
}

#[test]
fn reception_transitions_of_6_8_6() {
    use BfdState::*;
    use Diagnostic::{NeighborSignaledSessionDown as NSD, None as NoDiag};
    // (local state, received state, new local state, diag of the change)
    let table: [(BfdState, BfdState, BfdState, Option<Diagnostic>); 16] = [
        (Down, AdminDown, Down, None),
        (Down, Down, Init, Some(NoDiag)),
        (Down, Init, Up, Some(NoDiag)),
        (Down, Up, Down, None),
        (Init, AdminDown, Down, Some(NSD)),
        (Init, Down, Init, None),
        (Init, Init, Up, Some(NoDiag)),
        (Init, Up, Up, Some(NoDiag)),
        (Up, AdminDown, Down, Some(NSD)),
        (Up, Down, Down, Some(NSD)),
        (Up, Init, Up, None),
        (Up, Up, Up, None),
        // AdminDown discards everything.
        (AdminDown, AdminDown, AdminDown, None),
        (AdminDown, Down, AdminDown, None),
        (AdminDown, Init, AdminDown, None),
        (AdminDown, Up, AdminDown, None),
    ];
    for (local, rx, want, diag) in table {
        let mut s = in_state(local);
        let mut p = pkt(rx);
        // Up/Init packets must name us; Down ones may (they do once they know us).
        p.your_discriminator = LOCAL;
        let mut out = Vec::new();
        let r = s.receive(p, &mut out);
        assert_eq!(s.state(), want, "{local} + received {rx}");
        match diag {
            Some(d) => {
                assert_eq!(changes(&out), vec![(local, want, d)], "{local} + {rx}");
                // A state change is announced to the peer at once.
                assert!(
                    sent(&out).iter().any(|p| p.state == want) || want == AdminDown,
                    "{local} + {rx}: no packet sent"
                );
            }
            None => assert!(changes(&out).is_empty(), "{local} + {rx}: {out:?}"),
        }
        if local == AdminDown {
            assert_eq!(r, Err(Discard::AdminDown));
            assert!(!out.iter().any(|a| matches!(a, Action::ArmDetection(_))));
        } else {
            assert_eq!(r, Ok(()));
            // Every accepted packet restarts the detection timer.
            assert!(out.iter().any(|a| matches!(a, Action::ArmDetection(_))));
            assert_eq!(s.remote_state(), rx);
            assert_eq!(s.remote_discriminator(), REMOTE);
        }
    }
}

#[test]
fn discards_of_6_8_6() {
    let mut s = in_state(BfdState::Down);
    let mut out = Vec::new();
    let mut p = pkt(BfdState::Down);
    p.your_discriminator = 0x99;
    assert_eq!(s.receive(p, &mut out), Err(Discard::WrongDiscriminator));
    let mut p = pkt(BfdState::Init);
    p.your_discriminator = 0;
    assert_eq!(s.receive(p, &mut out), Err(Discard::ZeroYourDiscriminator));
    let mut p = pkt(BfdState::Up);
    p.your_discriminator = 0;
    assert_eq!(s.receive(p, &mut out), Err(Discard::ZeroYourDiscriminator));
    let mut p = pkt(BfdState::Down);
    p.auth_present = true;
    assert_eq!(s.receive(p, &mut out), Err(Discard::Authentication));
    assert!(out.is_empty());
    assert_eq!(s.state(), BfdState::Down);
    assert_eq!(s.remote_discriminator(), 0);
}

#[test]
fn detection_time_expiry_takes_init_and_up_down() {
    for st in [BfdState::Init, BfdState::Up] {
        let mut s = in_state(st);
        let out = s.handle(Event::DetectionTimerExpired);
        assert_eq!(
            changes(&out),
            vec![(st, BfdState::Down, Diagnostic::ControlDetectionTimeExpired)]
        );
        assert_eq!(s.remote_discriminator(), 0);
        let p = sent(&out)[0];
        assert_eq!(
            (p.state, p.diag.code(), p.your_discriminator),
            (BfdState::Down, 1, 0)
        );
        // Back to the slow rate (§6.8.3).
        assert_eq!(p.desired_min_tx_us, 1_000_000);
    }
    let mut s = in_state(BfdState::Down);
    assert!(changes(&s.handle(Event::DetectionTimerExpired)).is_empty());
}

#[test]
fn detection_time_is_remote_mult_times_the_slower_of_both_rates() {
    // §6.8.4: 3 × max(our RequiredMinRx 300 ms, its DesiredMinTx 1 s).
    let mut s = in_state(BfdState::Down);
    let out = s.handle(Event::Received(pkt(BfdState::Down)));
    assert!(out.contains(&Action::ArmDetection(Duration::from_secs(3))));
    let mut p = pkt(BfdState::Up);
    p.desired_min_tx_us = 100_000;
    p.detect_mult = 5;
    let out = s.handle(Event::Received(p));
    assert!(out.contains(&Action::ArmDetection(Duration::from_millis(1500))));
}

#[test]
fn transmission_is_jittered_and_slow_until_up() {
    let mut s = Session::new(cfg());
    let out = s.start();
    // The first packet goes out at once: Down, our discriminator, one second.
    let p = sent(&out)[0];
    assert_eq!(p.state, BfdState::Down);
    assert_eq!(p.my_discriminator, LOCAL);
    assert_eq!(p.your_discriminator, 0);
    assert_eq!(p.desired_min_tx_us, 1_000_000);
    assert_eq!(p.required_min_rx_us, 300_000);
    assert_eq!(p.required_min_echo_rx_us, 0);
    assert_eq!(p.detect_mult, 3);
    assert!(!p.poll && !p.final_ && !p.demand && !p.auth_present);
    // §6.8.7: 75–100% of max(DesiredMinTx, RemoteMinRx) = 1 s.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let out = s.handle(Event::TxTimerExpired);
        assert_eq!(sent(&out).len(), 1);
        let d = tx_interval_armed(&out).unwrap();
        assert!(
            d >= Duration::from_millis(750) && d <= Duration::from_secs(1),
            "{d:?}"
        );
        seen.insert(d);
    }
    assert!(seen.len() > 50, "jitter varies");
    // Detect Mult 1: 75–90%.
    let mut s = Session::new(SessionConfig {
        detect_mult: 1,
        ..cfg()
    });
    s.start();
    for _ in 0..200 {
        let out = s.handle(Event::TxTimerExpired);
        let d = tx_interval_armed(&out).unwrap();
        assert!(
            d >= Duration::from_millis(750) && d <= Duration::from_millis(900),
            "{d:?}"
        );
    }
}

fn tx_interval_armed(out: &[Action]) -> Option<Duration> {
    out.iter().rev().find_map(|a| match a {
        Action::ArmTx(d) => Some(*d),
        _ => None,
    })
}

#[test]
fn going_up_polls_for_the_configured_rate() {
    let mut s = in_state(BfdState::Init);
    let mut up = pkt(BfdState::Up);
    up.desired_min_tx_us = 300_000;
    up.required_min_rx_us = 300_000;
    let out = s.handle(Event::Received(up));
    assert_eq!(s.state(), BfdState::Up);
    assert!(s.polling());
    // A decrease applies at once: the next transmission is at ≤ 300 ms.
    let d = tx_interval_armed(&out).unwrap();
    assert!(d <= Duration::from_millis(300) && d >= Duration::from_millis(225));
    let p = sent(&out)[0];
    assert!(p.poll && !p.final_);
    assert_eq!(p.desired_min_tx_us, 300_000);
    // Periodic packets keep P until the Final.
    assert!(sent(&s.handle(Event::TxTimerExpired))[0].poll);
    let mut fin = up;
    fin.final_ = true;
    s.handle(Event::Received(fin));
    assert!(!s.polling());
    assert!(!sent(&s.handle(Event::TxTimerExpired))[0].poll);
    // The peer's Poll is answered with F (and never P and F together).
    let mut poll = up;
    poll.poll = true;
    let out = s.handle(Event::Received(poll));
    let f = sent(&out);
    assert_eq!(f.len(), 1);
    assert!(f[0].final_ && !f[0].poll);
}

#[test]
fn a_rate_slower_than_a_second_needs_no_poll() {
    // Configured 2 s: already the rate while Down, so going Up changes nothing.
    let mut s = Session::new(SessionConfig {
        desired_min_tx_us: 2_000_000,
        ..cfg()
    });
    s.start();
    s.handle(Event::Received(pkt(BfdState::Down)));
    let mut up = pkt(BfdState::Up);
    up.required_min_rx_us = 10_000;
    s.handle(Event::Received(up));
    assert_eq!(s.state(), BfdState::Up);
    assert!(!s.polling());
    assert_eq!(s.tx_interval(), Some(Duration::from_secs(2)));
    assert_eq!(s.packet(false).desired_min_tx_us, 2_000_000);
}

#[test]
fn remote_min_rx_paces_us_and_zero_stops_us() {
    let mut s = in_state(BfdState::Up);
    let mut p = pkt(BfdState::Up);
    p.required_min_rx_us = 2_000_000;
    s.handle(Event::Received(p));
    assert_eq!(s.tx_interval(), Some(Duration::from_secs(2)));
    p.required_min_rx_us = 0;
    let out = s.handle(Event::Received(p));
    assert!(out.contains(&Action::StopTx));
    assert_eq!(s.tx_interval(), None);
    assert!(sent(&s.handle(Event::TxTimerExpired)).is_empty());
}

#[test]
fn the_peers_demand_mode_stops_periodic_transmission_while_both_are_up() {
    let mut s = in_state(BfdState::Up);
    let mut p = pkt(BfdState::Up);
    p.demand = true;
    let out = s.handle(Event::Received(p));
    assert!(out.contains(&Action::StopTx));
    // It ends when the peer clears D.
    p.demand = false;
    let out = s.handle(Event::Received(p));
    assert!(tx_interval_armed(&out).is_some());
}

#[test]
fn administrative_control() {
    let mut s = in_state(BfdState::Up);
    let out = s.handle(Event::AdminDown);
    assert_eq!(
        changes(&out),
        vec![(
            BfdState::Up,
            BfdState::AdminDown,
            Diagnostic::AdministrativelyDown
        )]
    );
    let p = sent(&out)[0];
    assert_eq!((p.state, p.diag.code()), (BfdState::AdminDown, 7));
    assert!(out.contains(&Action::StopDetection));
    let out = s.handle(Event::AdminUp);
    assert_eq!(
        changes(&out),
        vec![(BfdState::AdminDown, BfdState::Down, Diagnostic::None)]
    );
    assert!(tx_interval_armed(&out).is_some());
}

#[test]
fn state_change_reports_the_remote_state() {
    // The driver tells a peer's AdminDown (not a failure, RFC 5882 §3.2) from a loss.
    let mut s = in_state(BfdState::Up);
    let out = s.handle(Event::Received(pkt(BfdState::AdminDown)));
    assert!(out.iter().any(|a| matches!(
        a,
        Action::StateChanged {
            to: BfdState::Down,
            remote: BfdState::AdminDown,
            ..
        }
    )));
}

#[test]
fn two_sessions_come_up_against_each_other() {
    // Two state machines wired back to back reach Up in the three-way handshake.
    let mut a = Session::new(cfg());
    let mut b = Session::new(SessionConfig {
        local_discriminator: 0x77,
        jitter_seed: 7,
        ..cfg()
    });
    let mut to_b = sent(&a.start());
    let mut to_a = sent(&b.start());
    for _ in 0..6 {
        let next_b: Vec<_> = to_a
            .drain(..)
            .flat_map(|p| sent(&a.handle(Event::Received(p))))
            .collect();
        let next_a: Vec<_> = to_b
            .drain(..)
            .flat_map(|p| sent(&b.handle(Event::Received(p))))
            .collect();
        to_b = next_b;
        to_a = next_a;
    }
    assert_eq!((a.state(), b.state()), (BfdState::Up, BfdState::Up));
    assert_eq!(a.remote_discriminator(), 0x77);
    assert_eq!(b.remote_discriminator(), LOCAL);
    // Both Poll Sequences ended with a Final.
    assert!(!a.polling() && !b.polling());
    assert_eq!(a.detection_time(), Duration::from_millis(900));
}
