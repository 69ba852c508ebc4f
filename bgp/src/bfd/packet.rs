//! The BFD Control packet (RFC 5880 §4.1): a pure codec.
//!
//! [`ControlPacket::decode`] takes the UDP payload exactly as received and
//! applies the length and field checks of the reception rules (§6.8.6, first
//! bullets) that need nothing but the packet itself; it never panics, whatever
//! the bytes. [`ControlPacket::encode`] writes the 24-byte mandatory section.
//! Authentication (§4.2–4.4) is not implemented: a packet with the A bit is
//! decoded (so the state machine can discard it, as §6.8.6 requires when no
//! authentication is in use) but its section is not interpreted.

use std::fmt;

/// Protocol version carried in every packet (§4.1).
pub const VERSION: u8 = 1;
/// Length of the mandatory section (§4.1).
pub const MANDATORY_LEN: usize = 24;

/// Session states as carried in the Sta field (§4.1, §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BfdState {
    AdminDown,
    Down,
    Init,
    Up,
}

impl BfdState {
    pub const ALL: [BfdState; 4] = [
        BfdState::AdminDown,
        BfdState::Down,
        BfdState::Init,
        BfdState::Up,
    ];
    pub fn code(self) -> u8 {
        match self {
            BfdState::AdminDown => 0,
            BfdState::Down => 1,
            BfdState::Init => 2,
            BfdState::Up => 3,
        }
    }
    /// Two bits: every value is a state.
    pub fn from_code(c: u8) -> BfdState {
        match c & 3 {
            0 => BfdState::AdminDown,
            1 => BfdState::Down,
            2 => BfdState::Init,
            _ => BfdState::Up,
        }
    }
    /// The RFC name, as shown by `tortie status` and the metrics.
    pub fn name(self) -> &'static str {
        match self {
            BfdState::AdminDown => "AdminDown",
            BfdState::Down => "Down",
            BfdState::Init => "Init",
            BfdState::Up => "Up",
        }
    }
}

impl fmt::Display for BfdState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Diagnostic codes (§4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Diagnostic {
    None,
    ControlDetectionTimeExpired,
    EchoFunctionFailed,
    NeighborSignaledSessionDown,
    ForwardingPlaneReset,
    PathDown,
    ConcatenatedPathDown,
    AdministrativelyDown,
    ReverseConcatenatedPathDown,
    /// 9–31: reserved for future use; kept as received.
    Reserved(u8),
}

impl Diagnostic {
    pub fn code(self) -> u8 {
        match self {
            Diagnostic::None => 0,
            Diagnostic::ControlDetectionTimeExpired => 1,
            Diagnostic::EchoFunctionFailed => 2,
            Diagnostic::NeighborSignaledSessionDown => 3,
            Diagnostic::ForwardingPlaneReset => 4,
            Diagnostic::PathDown => 5,
            Diagnostic::ConcatenatedPathDown => 6,
            Diagnostic::AdministrativelyDown => 7,
            Diagnostic::ReverseConcatenatedPathDown => 8,
            Diagnostic::Reserved(c) => c & 0x1f,
        }
    }
    /// Five bits: values above 8 are kept as `Reserved`.
    pub fn from_code(c: u8) -> Diagnostic {
        match c & 0x1f {
            0 => Diagnostic::None,
            1 => Diagnostic::ControlDetectionTimeExpired,
            2 => Diagnostic::EchoFunctionFailed,
            3 => Diagnostic::NeighborSignaledSessionDown,
            4 => Diagnostic::ForwardingPlaneReset,
            5 => Diagnostic::PathDown,
            6 => Diagnostic::ConcatenatedPathDown,
            7 => Diagnostic::AdministrativelyDown,
            8 => Diagnostic::ReverseConcatenatedPathDown,
            c => Diagnostic::Reserved(c),
        }
    }
    /// Text for logs and `tortie status`.
    pub fn text(self) -> &'static str {
        match self {
            Diagnostic::None => "no diagnostic",
            Diagnostic::ControlDetectionTimeExpired => "control detection time expired",
            Diagnostic::EchoFunctionFailed => "echo function failed",
            Diagnostic::NeighborSignaledSessionDown => "neighbor signaled session down",
            Diagnostic::ForwardingPlaneReset => "forwarding plane reset",
            Diagnostic::PathDown => "path down",
            Diagnostic::ConcatenatedPathDown => "concatenated path down",
            Diagnostic::AdministrativelyDown => "administratively down",
            Diagnostic::ReverseConcatenatedPathDown => "reverse concatenated path down",
            Diagnostic::Reserved(_) => "reserved diagnostic",
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// One BFD Control packet (§4.1). Intervals are in microseconds, as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlPacket {
    pub diag: Diagnostic,
    pub state: BfdState,
    /// P: Poll.
    pub poll: bool,
    /// F: Final.
    pub final_: bool,
    /// C: Control Plane Independent.
    pub control_plane_independent: bool,
    /// A: Authentication Present (the section itself is not interpreted).
    pub auth_present: bool,
    /// D: Demand.
    pub demand: bool,
    pub detect_mult: u8,
    pub my_discriminator: u32,
    pub your_discriminator: u32,
    pub desired_min_tx_us: u32,
    pub required_min_rx_us: u32,
    pub required_min_echo_rx_us: u32,
}

/// Why a received packet was discarded by the codec (§6.8.6).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("{0} bytes: shorter than the 24-byte mandatory section")]
    Short(usize),
    #[error("version {0}, only version 1 is defined")]
    Version(u8),
    #[error("length field {field} is below the minimum {min}")]
    LengthTooSmall { field: usize, min: usize },
    #[error("length field {field} exceeds the {payload}-byte payload")]
    LengthTooLarge { field: usize, payload: usize },
    #[error("Detect Mult is zero")]
    ZeroDetectMult,
    #[error("Multipoint bit is set")]
    Multipoint,
    #[error("My Discriminator is zero")]
    ZeroMyDiscriminator,
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_be_bytes(w)
}

impl ControlPacket {
    /// Decodes a UDP payload, applying the packet-only checks of §6.8.6: the
    /// version, the Length field (≥ 24, ≥ 26 with the A bit, ≤ payload),
    /// Detect Mult ≠ 0, M clear and My Discriminator ≠ 0.
    pub fn decode(b: &[u8]) -> Result<ControlPacket, PacketError> {
        if b.len() < MANDATORY_LEN {
            return Err(PacketError::Short(b.len()));
        }
        let version = b[0] >> 5;
        if version != VERSION {
            return Err(PacketError::Version(version));
        }
        let flags = b[1];
        let auth_present = flags & 0x04 != 0;
        let field = usize::from(b[3]);
        let min = if auth_present {
            MANDATORY_LEN + 2
        } else {
            MANDATORY_LEN
        };
        if field < min {
            return Err(PacketError::LengthTooSmall { field, min });
        }
        if field > b.len() {
            return Err(PacketError::LengthTooLarge {
                field,
                payload: b.len(),
            });
        }
        if b[2] == 0 {
            return Err(PacketError::ZeroDetectMult);
        }
        if flags & 0x01 != 0 {
            return Err(PacketError::Multipoint);
        }
        let my_discriminator = be32(b, 4);
        if my_discriminator == 0 {
            return Err(PacketError::ZeroMyDiscriminator);
        }
        Ok(ControlPacket {
            diag: Diagnostic::from_code(b[0]),
            state: BfdState::from_code(flags >> 6),
            poll: flags & 0x20 != 0,
            final_: flags & 0x10 != 0,
            control_plane_independent: flags & 0x08 != 0,
            auth_present,
            demand: flags & 0x02 != 0,
            detect_mult: b[2],
            my_discriminator,
            your_discriminator: be32(b, 8),
            desired_min_tx_us: be32(b, 12),
            required_min_rx_us: be32(b, 16),
            required_min_echo_rx_us: be32(b, 20),
        })
    }

    /// The 24-byte mandatory section (the A bit is written as given; this
    /// speaker never sets it).
    pub fn encode(&self) -> [u8; MANDATORY_LEN] {
        let mut b = [0u8; MANDATORY_LEN];
        b[0] = (VERSION << 5) | self.diag.code();
        b[1] = (self.state.code() << 6)
            | (u8::from(self.poll) << 5)
            | (u8::from(self.final_) << 4)
            | (u8::from(self.control_plane_independent) << 3)
            | (u8::from(self.auth_present) << 2)
            | (u8::from(self.demand) << 1);
        b[2] = self.detect_mult;
        b[3] = MANDATORY_LEN as u8;
        b[4..8].copy_from_slice(&self.my_discriminator.to_be_bytes());
        b[8..12].copy_from_slice(&self.your_discriminator.to_be_bytes());
        b[12..16].copy_from_slice(&self.desired_min_tx_us.to_be_bytes());
        b[16..20].copy_from_slice(&self.required_min_rx_us.to_be_bytes());
        b[20..24].copy_from_slice(&self.required_min_echo_rx_us.to_be_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Up packet with P set, as FRR's bfdd sends to move to a faster rate:
    /// diag 0, Up, P, mult 3, discriminators 1 and 2, 300 ms / 300 ms / 50 ms.
    const UP_POLL: [u8; 24] = [
        0x20, 0xe0, 0x03, 0x18, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x04, 0x93,
        0xe0, 0x00, 0x04, 0x93, 0xe0, 0x00, 0x00, 0xc3, 0x50,
    ];

    fn up_poll() -> ControlPacket {
        ControlPacket {
            diag: Diagnostic::None,
            state: BfdState::Up,
            poll: true,
            final_: false,
            control_plane_independent: false,
            auth_present: false,
            demand: false,
            detect_mult: 3,
            my_discriminator: 1,
            your_discriminator: 2,
            desired_min_tx_us: 300_000,
            required_min_rx_us: 300_000,
            required_min_echo_rx_us: 50_000,
        }
    }

    #[test]
    fn decodes_and_encodes_a_known_packet() {
        assert_eq!(ControlPacket::decode(&UP_POLL), Ok(up_poll()));
        assert_eq!(up_poll().encode(), UP_POLL);
    }

    #[test]
    fn every_flag_and_field_round_trips() {
        // Down, diag 1 (detection time expired), F, C, D; Your Discriminator 0.
        let bytes: [u8; 24] = [
            0x21, 0x5a, 0xff, 0x18, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0x00, 0x0f, 0x42, 0x40,
            0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
        ];
        let p = ControlPacket::decode(&bytes).unwrap();
        assert_eq!(p.diag, Diagnostic::ControlDetectionTimeExpired);
        assert_eq!(p.state, BfdState::Down);
        assert!(!p.poll && p.final_ && p.control_plane_independent && p.demand);
        assert!(!p.auth_present);
        assert_eq!(p.detect_mult, 255);
        assert_eq!(p.my_discriminator, 0xdead_beef);
        assert_eq!(p.your_discriminator, 0);
        assert_eq!(p.desired_min_tx_us, 1_000_000);
        assert_eq!(p.required_min_rx_us, u32::MAX);
        assert_eq!(p.encode(), bytes);
        // AdminDown with a reserved diagnostic keeps the code.
        let mut b = bytes;
        b[0] = 0x20 | 0x1f;
        b[1] = 0x00;
        let p = ControlPacket::decode(&b).unwrap();
        assert_eq!(p.state, BfdState::AdminDown);
        assert_eq!(p.diag, Diagnostic::Reserved(31));
        assert_eq!(p.encode(), b);
    }

    #[test]
    fn a_longer_payload_than_the_length_field_is_accepted() {
        // §6.8.6 only discards a Length *greater* than the payload.
        let mut b = UP_POLL.to_vec();
        b.extend_from_slice(&[0xaa; 8]);
        assert_eq!(ControlPacket::decode(&b), Ok(up_poll()));
    }

    #[test]
    fn hostile_packets_are_discarded_with_the_rule_they_break() {
        let with = |i: usize, v: u8| {
            let mut b = UP_POLL;
            b[i] = v;
            b
        };
        assert_eq!(ControlPacket::decode(&[]), Err(PacketError::Short(0)));
        assert_eq!(
            ControlPacket::decode(&UP_POLL[..23]),
            Err(PacketError::Short(23))
        );
        assert_eq!(
            ControlPacket::decode(&with(0, 0x40)),
            Err(PacketError::Version(2))
        );
        assert_eq!(
            ControlPacket::decode(&with(0, 0x00)),
            Err(PacketError::Version(0))
        );
        assert_eq!(
            ControlPacket::decode(&with(3, 23)),
            Err(PacketError::LengthTooSmall { field: 23, min: 24 })
        );
        assert_eq!(
            ControlPacket::decode(&with(3, 25)),
            Err(PacketError::LengthTooLarge {
                field: 25,
                payload: 24
            })
        );
        // A bit: at least 26 bytes of Length.
        let mut a = with(1, 0xe4);
        assert_eq!(
            ControlPacket::decode(&a),
            Err(PacketError::LengthTooSmall { field: 24, min: 26 })
        );
        a[3] = 26;
        let mut long = a.to_vec();
        long.extend_from_slice(&[1, 2]);
        assert!(ControlPacket::decode(&long).unwrap().auth_present);
        assert_eq!(
            ControlPacket::decode(&with(2, 0)),
            Err(PacketError::ZeroDetectMult)
        );
        assert_eq!(
            ControlPacket::decode(&with(1, 0xe1)),
            Err(PacketError::Multipoint)
        );
        let mut z = UP_POLL;
        z[4..8].fill(0);
        assert_eq!(
            ControlPacket::decode(&z),
            Err(PacketError::ZeroMyDiscriminator)
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic sweep: every length up to 40 with patterned bytes,
        // and every value of the first four bytes over a valid packet.
        let mut x: u32 = 0x1234_5678;
        for len in 0..40 {
            for _ in 0..200 {
                let b: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        x as u8
                    })
                    .collect();
                if let Ok(p) = ControlPacket::decode(&b) {
                    // Whatever decodes re-encodes to its mandatory section.
                    let e = p.encode();
                    assert_eq!(e[4..24], b[4..24]);
                }
            }
        }
        for i in 0..4 {
            for v in 0..=255u8 {
                let mut b = UP_POLL;
                b[i] = v;
                let _ = ControlPacket::decode(&b);
            }
        }
    }
}
