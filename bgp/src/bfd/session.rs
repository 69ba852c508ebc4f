//! One BFD session's state machine (RFC 5880 §6.8), sans IO.
//!
//! The socket task owns one [`Session`] per configured peer with `bfd`. It
//! turns received Control packets (already demultiplexed to this session and
//! GTSM-checked, RFC 5881 §5) and the expiry of the two timers into
//! [`Event`]s, calls [`Session::handle`], and carries out the returned
//! [`Action`]s: send a packet, (re)arm or stop the transmit and detection
//! timers, report a state change. There are no clocks, sockets or global
//! randomness here: the transmit jitter (§6.8.7) comes from a small generator
//! seeded by the caller, so every transition is a plain, tested function call.
//!
//! Asynchronous mode only: this system never asks for Demand mode (it honours
//! a peer's, §6.8.6 last bullets) and never runs the Echo function (Required
//! Min Echo RX Interval is always 0). No authentication: packets with the A
//! bit are discarded, as §6.8.6 requires of a session without it.

use std::time::Duration;

use super::packet::{BfdState, ControlPacket, Diagnostic};

/// Rate used while the session is not Up (§6.8.3: at least one second).
pub const SLOW_TX_US: u32 = 1_000_000;

/// Static parameters of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// bfd.LocalDiscr: unique and nonzero among this system's sessions.
    pub local_discriminator: u32,
    /// bfd.DesiredMinTxInterval once Up, microseconds.
    pub desired_min_tx_us: u32,
    /// bfd.RequiredMinRxInterval, microseconds (nonzero: we want packets).
    pub required_min_rx_us: u32,
    /// bfd.DetectMult.
    pub detect_mult: u8,
    /// Seed of the jitter generator (any value).
    pub jitter_seed: u64,
}

/// What happened to the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A Control packet for this session (§6.8.6).
    Received(ControlPacket),
    /// The periodic transmission timer fired (§6.8.7).
    TxTimerExpired,
    /// A Detection Time passed without a valid packet (§6.8.4).
    DetectionTimerExpired,
    /// Administrative control (§6.8.16): hold the session in AdminDown.
    AdminDown,
    /// Leave AdminDown (back to Down).
    AdminUp,
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Transmit this packet now.
    Send(ControlPacket),
    /// (Re)arm the periodic transmission timer (jitter already applied).
    ArmTx(Duration),
    /// Stop periodic transmission (the peer runs Demand mode, or RemoteMinRx is 0).
    StopTx,
    /// (Re)arm the detection timer.
    ArmDetection(Duration),
    StopDetection,
    /// bfd.SessionState changed. `remote` is bfd.RemoteSessionState at the time.
    StateChanged {
        from: BfdState,
        to: BfdState,
        diag: Diagnostic,
        remote: BfdState,
    },
}

/// Why a packet was discarded by the session (§6.8.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discard {
    /// Your Discriminator is not ours.
    WrongDiscriminator,
    /// Your Discriminator is zero but the peer is not Down/AdminDown.
    ZeroYourDiscriminator,
    /// The A bit is set and this session has no authentication.
    Authentication,
    /// The session is AdminDown.
    AdminDown,
}

/// RFC 5880 §6.8.1 state variables and the timers' bookkeeping.
#[derive(Clone, Debug)]
pub struct Session {
    cfg: SessionConfig,
    state: BfdState,
    remote_state: BfdState,
    remote_discr: u32,
    local_diag: Diagnostic,
    /// bfd.DesiredMinTxInterval as advertised now.
    desired_min_tx_us: u32,
    /// The value that paces transmission: lags an increase until the Poll
    /// Sequence ends (§6.8.3).
    tx_pacing_us: u32,
    /// bfd.RequiredMinRxInterval as advertised now.
    required_min_rx_us: u32,
    /// The value used in the Detection Time: lags a decrease until the Poll
    /// Sequence ends (§6.8.3).
    rx_detect_us: u32,
    remote_min_rx_us: u32,
    remote_desired_min_tx_us: u32,
    remote_detect_mult: u8,
    remote_demand: bool,
    /// A Poll Sequence is in progress (§6.5).
    polling: bool,
    /// Periodic transmission is armed.
    tx_running: bool,
    rng: u64,
}

fn us(d: u32) -> Duration {
    Duration::from_micros(u64::from(d))
}

impl Session {
    pub fn new(cfg: SessionConfig) -> Session {
        let desired = cfg.desired_min_tx_us.max(SLOW_TX_US);
        Session {
            state: BfdState::Down,
            remote_state: BfdState::Down,
            remote_discr: 0,
            local_diag: Diagnostic::None,
            desired_min_tx_us: desired,
            tx_pacing_us: desired,
            required_min_rx_us: cfg.required_min_rx_us,
            rx_detect_us: cfg.required_min_rx_us,
            // §6.8.1: initial value 1 (microsecond).
            remote_min_rx_us: 1,
            remote_desired_min_tx_us: 0,
            remote_detect_mult: 0,
            remote_demand: false,
            polling: false,
            tx_running: false,
            rng: cfg.jitter_seed | 1,
            cfg,
        }
    }

    pub fn state(&self) -> BfdState {
        self.state
    }
    pub fn remote_state(&self) -> BfdState {
        self.remote_state
    }
    pub fn local_diag(&self) -> Diagnostic {
        self.local_diag
    }
    pub fn local_discriminator(&self) -> u32 {
        self.cfg.local_discriminator
    }
    pub fn remote_discriminator(&self) -> u32 {
        self.remote_discr
    }
    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }
    /// A Poll Sequence is in progress.
    pub fn polling(&self) -> bool {
        self.polling
    }

    /// The interval between transmissions before jitter (§6.8.7), or None
    /// when periodic transmission must not happen.
    pub fn tx_interval(&self) -> Option<Duration> {
        if self.remote_min_rx_us == 0 {
            return None;
        }
        // §6.8.6: the peer runs Demand mode and both are Up: cease periodic.
        if self.remote_demand && self.state == BfdState::Up && self.remote_state == BfdState::Up {
            return None;
        }
        Some(us(self.tx_pacing_us.max(self.remote_min_rx_us)))
    }

    /// The Detection Time in Asynchronous mode (§6.8.4): the remote Detect
    /// Mult times the larger of our RequiredMinRx and its DesiredMinTx.
    pub fn detection_time(&self) -> Duration {
        let per = self.rx_detect_us.max(self.remote_desired_min_tx_us);
        us(per) * u32::from(self.remote_detect_mult.max(1))
    }

    /// Starts the session: arms periodic transmission (the first packet goes
    /// out at once, so the peer learns of us without waiting a full interval).
    pub fn start(&mut self) -> Vec<Action> {
        let mut out = vec![Action::Send(self.packet(false))];
        self.arm_tx(&mut out);
        out
    }

    pub fn handle(&mut self, ev: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match ev {
            Event::Received(p) => {
                let _ = self.receive(p, &mut out);
            }
            Event::TxTimerExpired => {
                if self.tx_interval().is_some() {
                    out.push(Action::Send(self.packet(false)));
                }
                self.arm_tx(&mut out);
            }
            Event::DetectionTimerExpired => {
                // §6.8.1: RemoteDiscr is reset when the Detection Time expires.
                self.remote_discr = 0;
                if matches!(self.state, BfdState::Init | BfdState::Up) {
                    self.go(
                        BfdState::Down,
                        Diagnostic::ControlDetectionTimeExpired,
                        &mut out,
                    );
                }
                // The peer's Demand mode no longer applies: transmit again.
                self.remote_demand = false;
                self.arm_tx(&mut out);
            }
            Event::AdminDown => {
                if self.state != BfdState::AdminDown {
                    self.go(
                        BfdState::AdminDown,
                        Diagnostic::AdministrativelyDown,
                        &mut out,
                    );
                    out.push(Action::StopDetection);
                    out.push(Action::Send(self.packet(false)));
                }
            }
            Event::AdminUp => {
                if self.state == BfdState::AdminDown {
                    self.go(BfdState::Down, Diagnostic::None, &mut out);
                    out.push(Action::Send(self.packet(false)));
                    self.arm_tx(&mut out);
                }
            }
        }
        out
    }

    /// §6.8.6, from "If the Your Discriminator field is nonzero" on (the
    /// packet-only checks are [`ControlPacket::decode`]'s).
    pub fn receive(&mut self, p: ControlPacket, out: &mut Vec<Action>) -> Result<(), Discard> {
        if p.your_discriminator != 0 && p.your_discriminator != self.cfg.local_discriminator {
            return Err(Discard::WrongDiscriminator);
        }
        if p.your_discriminator == 0 && !matches!(p.state, BfdState::Down | BfdState::AdminDown) {
            return Err(Discard::ZeroYourDiscriminator);
        }
        if p.auth_present {
            return Err(Discard::Authentication);
        }
        self.remote_discr = p.my_discriminator;
        self.remote_state = p.state;
        self.remote_demand = p.demand;
        let old_remote_min_rx = self.remote_min_rx_us;
        self.remote_min_rx_us = p.required_min_rx_us;
        self.remote_desired_min_tx_us = p.desired_min_tx_us;
        self.remote_detect_mult = p.detect_mult;
        let state_before = self.state;
        let mut rearm_tx = old_remote_min_rx != p.required_min_rx_us;
        if p.final_ && self.polling {
            // The Poll Sequence ends: the new intervals take effect (§6.8.3).
            self.polling = false;
            self.tx_pacing_us = self.desired_min_tx_us;
            self.rx_detect_us = self.required_min_rx_us;
            rearm_tx = true;
        }
        if self.state == BfdState::AdminDown {
            return Err(Discard::AdminDown);
        }
        if p.state == BfdState::AdminDown {
            if self.state != BfdState::Down {
                self.go(BfdState::Down, Diagnostic::NeighborSignaledSessionDown, out);
            }
        } else {
            match (self.state, p.state) {
                (BfdState::Down, BfdState::Down) => self.go(BfdState::Init, self.local_diag, out),
                (BfdState::Down, BfdState::Init)
                | (BfdState::Init, BfdState::Init | BfdState::Up) => {
                    self.go(BfdState::Up, self.local_diag, out)
                }
                (BfdState::Up, BfdState::Down) => {
                    self.go(BfdState::Down, Diagnostic::NeighborSignaledSessionDown, out)
                }
                _ => {}
            }
        }
        if p.poll {
            // §6.8.6: answer a Poll with a Final at once (never both bits).
            out.push(Action::Send(self.packet(true)));
        }
        // A stopped transmitter restarts when Demand mode ends; a changed
        // interval is applied now rather than after the old one.
        if rearm_tx
            || state_before != self.state
            || !self.tx_running
            || self.tx_interval().is_none()
        {
            self.arm_tx(out);
        }
        out.push(Action::ArmDetection(self.detection_time()));
        Ok(())
    }

    /// Enters `to` with `diag`, applying the §6.8.3 slow rate outside Up.
    fn go(&mut self, to: BfdState, diag: Diagnostic, out: &mut Vec<Action>) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.local_diag = diag;
        out.push(Action::StateChanged {
            from,
            to,
            diag,
            remote: self.remote_state,
        });
        if to == BfdState::Up {
            // Leave the one-second rate for the configured one with a Poll
            // Sequence (§6.8.3). A decrease applies at once; an increase
            // (configured above a second) keeps pacing until the Final.
            let want = self.cfg.desired_min_tx_us;
            if want != self.desired_min_tx_us {
                self.desired_min_tx_us = want;
                if want < self.tx_pacing_us {
                    self.tx_pacing_us = want;
                }
                self.polling = true;
            }
        } else {
            // Not Up: at least one second, at once (no Poll needed outside Up).
            self.desired_min_tx_us = self.cfg.desired_min_tx_us.max(SLOW_TX_US);
            self.tx_pacing_us = self.desired_min_tx_us;
            self.rx_detect_us = self.required_min_rx_us;
            self.polling = false;
        }
        if to != BfdState::AdminDown {
            out.push(Action::Send(self.packet(false)));
        }
    }

    /// The packet this session transmits now (§6.8.7). `final_` answers a Poll.
    pub fn packet(&self, final_: bool) -> ControlPacket {
        ControlPacket {
            diag: self.local_diag,
            state: self.state,
            poll: self.polling && !final_,
            final_,
            control_plane_independent: false,
            auth_present: false,
            demand: false,
            detect_mult: self.cfg.detect_mult,
            my_discriminator: self.cfg.local_discriminator,
            your_discriminator: self.remote_discr,
            desired_min_tx_us: self.desired_min_tx_us,
            required_min_rx_us: self.required_min_rx_us,
            required_min_echo_rx_us: 0,
        }
    }

    fn arm_tx(&mut self, out: &mut Vec<Action>) {
        match self.tx_interval() {
            Some(i) => {
                let j = self.jittered(i);
                self.tx_running = true;
                out.push(Action::ArmTx(j));
            }
            None => {
                if self.tx_running {
                    self.tx_running = false;
                    out.push(Action::StopTx);
                }
            }
        }
    }

    /// §6.8.7: reduce the interval by a random 0–25% (10–25% when Detect
    /// Mult is 1, so one late packet is not a detection).
    fn jittered(&mut self, i: Duration) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let r = (self.rng % 1001) as u32; // 0..=1000
        let (lo, hi) = if self.cfg.detect_mult == 1 {
            (100, 250)
        } else {
            (0, 250)
        };
        let cut = lo + r * (hi - lo) / 1000; // per mille
        i * (1000 - cut) / 1000
    }
}
