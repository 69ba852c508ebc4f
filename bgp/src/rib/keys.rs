//! The keys of the RIB's prefix tables ([`RibKey`]): [`Ipv4Prefix`],
//! [`Ipv6Prefix`], and two compact forms of an IPv6 prefix: [`Ipv6Marked`]
//! (at most 63 bits, 8 bytes; up to /48 with [`MARKED_SPARE`] bits to spare,
//! which a 16-byte table entry fills, `entry.rs`) and [`Ipv6Short`] (at most
//! 64 bits, 9 bytes); each with its run of neighbours ([`RunKey`], see
//! `shard.rs`), which decides where a prefix lands in its table.

use std::fmt;
use std::hash::Hash;
use std::net::Ipv6Addr;

use super::shard::RunKey;
use crate::types::{Ipv4Prefix, Ipv6Prefix, Ipv6Short, Prefix};

/// A table key: the prefix type of one address family.
pub(crate) trait RibKey: RunKey + Hash {
    fn prefix(self) -> Prefix;
}
impl RibKey for Ipv4Prefix {
    fn prefix(self) -> Prefix {
        Prefix::V4(self)
    }
}
impl RibKey for Ipv6Prefix {
    fn prefix(self) -> Prefix {
        Prefix::V6(self)
    }
}
impl RibKey for Ipv6Short {
    fn prefix(self) -> Prefix {
        Prefix::V6(self.into())
    }
}
impl RibKey for Ipv6Marked {
    fn prefix(self) -> Prefix {
        Prefix::V6(self.into())
    }
}

/// An IPv6 prefix of at most 63 bits in 8 bytes: its upper 64 address bits
/// with one marker bit set right after the prefix (the host bits below it
/// are zero), so the length is where the lowest set bit is. A 24-byte table
/// entry, as an IPv4 prefix has, instead of the 32 of an [`Ipv6Short`]
/// (/48s and /56s, most of an IPv6 table). Made only by [`Ipv6Marked::new`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Ipv6Marked(u64);

/// The longest prefix whose marked form leaves [`MARKED_SPARE`] bits free.
/// /48 is the longest prefix most operators accept from the global IPv6
/// table and its commonest length (/32–/48 hold nearly all of it).
pub(crate) const MARKED_SPARE_MAX_LEN: u8 = 48;
/// The low bits of a marked key of at most [`MARKED_SPARE_MAX_LEN`] bits,
/// always zero (the marker is bit `63 − len` ≥ 15).
pub(crate) const MARKED_SPARE: u32 = 63 - MARKED_SPARE_MAX_LEN as u32;

impl Ipv6Marked {
    /// The marked form of `p`; `None` when it is longer than /63.
    pub(crate) fn new(p: &Ipv6Prefix) -> Option<Ipv6Marked> {
        let len = p.len();
        let s = p.short().filter(|_| len <= 63)?;
        Some(Ipv6Marked(s.hi() | (1u64 << (63 - len))))
    }
    /// The key's bits with `low` in the [`MARKED_SPARE`] bits under the
    /// marker that a prefix of at most [`MARKED_SPARE_MAX_LEN`] bits leaves
    /// zero; `None` for a longer prefix or a `low` that does not fit.
    pub(crate) fn with_low(self, low: u16) -> Option<u64> {
        let spare = (1u64 << MARKED_SPARE) - 1;
        (self.0 & spare == 0 && u64::from(low) <= spare).then_some(self.0 | u64::from(low))
    }
    /// The key and the low bits of what [`Ipv6Marked::with_low`] made.
    pub(crate) fn split_low(bits: u64) -> (Ipv6Marked, u16) {
        let spare = (1u64 << MARKED_SPARE) - 1;
        // Below 2^15, so it fits.
        (Ipv6Marked(bits & !spare), (bits & spare) as u16)
    }
    /// The upper 64 address bits and the length.
    fn hi_len(self) -> (u64, u8) {
        // The marker is set, so at most 63 trailing zeros.
        let tz = self.0.trailing_zeros();
        (self.0 ^ (1u64 << (tz & 63)), 63u8.saturating_sub(tz as u8))
    }
}

impl From<Ipv6Marked> for Ipv6Prefix {
    fn from(k: Ipv6Marked) -> Ipv6Prefix {
        let (hi, len) = k.hi_len();
        let addr = Ipv6Addr::from(u128::from(hi) << 64);
        // len ≤ 63, so always a prefix.
        Ipv6Prefix::new(addr, len).unwrap_or_else(|| unreachable!("/{len}"))
    }
}

impl fmt::Debug for Ipv6Marked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Ipv6Prefix::from(*self), f)
    }
}

/// The run of a prefix of `len` bits at `addr` (right-aligned in `bits`
/// bits) and its place in it: the prefixes of the same length that differ
/// only in their last four bits are one run (a /28's run is its /24's
/// sixteen /28s); a prefix shorter than /4 is a run of its own.
fn run_of(addr: u128, len: u8, bits: u32) -> (u128, u8, u8) {
    let len32 = u32::from(len);
    if len32 < 4 || len32 > bits {
        return (addr, len, 0);
    }
    let shift = bits - len32;
    let place = (addr >> shift) & 0xf;
    (addr & !(0xf << shift), len, place as u8)
}

impl RunKey for Ipv4Prefix {
    fn run(&self) -> (u128, u8, u8) {
        run_of(u128::from(u32::from(self.addr())), self.len(), 32)
    }
}
impl RunKey for Ipv6Prefix {
    fn run(&self) -> (u128, u8, u8) {
        run_of(u128::from(self.addr()), self.len(), 128)
    }
}
impl RunKey for Ipv6Short {
    fn run(&self) -> (u128, u8, u8) {
        run_of(u128::from(self.hi()), self.len(), 64)
    }
}
impl RunKey for Ipv6Marked {
    fn run(&self) -> (u128, u8, u8) {
        let (hi, len) = self.hi_len();
        run_of(u128::from(hi), len, 64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Neighbouring prefixes of one length share a run, in distinct places;
    /// other lengths, other runs and short prefixes never do.
    #[test]
    fn prefix_runs() {
        let v4 = |s: &str| match s.parse::<Prefix>().unwrap() {
            Prefix::V4(p) => p.run(),
            Prefix::V6(_) => unreachable!(),
        };
        let v6 = |s: &str| match s.parse::<Prefix>().unwrap() {
            Prefix::V6(p) => p.run(),
            Prefix::V4(_) => unreachable!(),
        };
        let (r0, l0, p0) = v4("10.0.0.0/28");
        let (r1, l1, p1) = v4("10.0.0.240/28");
        assert_eq!((r0, l0), (r1, l1));
        assert_eq!((p0, p1), (0, 15));
        assert_ne!(v4("10.0.1.0/28").0, r0);
        assert_ne!(v4("10.0.0.0/24").1, l0);
        assert_eq!(v4("10.0.0.0/24").2, 0);
        assert_eq!(v4("10.0.1.0/24").2, 1);
        assert_eq!(v4("10.0.16.0/24").2, 0);
        assert_ne!(v4("10.0.16.0/24").0, v4("10.0.0.0/24").0);
        assert_eq!(v4("192.0.2.1/32").2, 1);
        assert_eq!(v4("128.0.0.0/1"), (0x8000_0000, 1, 0));
        assert_eq!(v4("0.0.0.0/0"), (0, 0, 0));
        let (a, _, pa) = v6("fd00:0:1::/48");
        let (b, _, pb) = v6("fd00:0:f::/48");
        assert_eq!((a, pa, pb), (b, 1, 15));
        assert_ne!(v6("fd00:0:10::/48").0, a);
        assert_eq!(v6("2001:db8::1/128").2, 1);
        // The short form of a prefix runs with its short neighbours alike.
        let s6 = |s: &str| match s.parse::<Prefix>().unwrap() {
            Prefix::V6(p) => p.short().map(|k| k.run()),
            Prefix::V4(_) => unreachable!(),
        };
        let (Some(a), Some(b)) = (s6("fd00:0:1::/48"), s6("fd00:0:f::/48")) else {
            panic!("a /48 has a short form")
        };
        assert_eq!((a.0, a.1, a.2, b.2), (b.0, 48, 1, 15));
        assert_ne!(s6("fd00:0:10::/48").map(|r| r.0), Some(a.0));
        assert_eq!(s6("2001:db8:0:8::/64").map(|r| r.2), Some(8));
    }

    /// Every length up to /63 has a marked form that reads back as the same
    /// prefix and runs as its short form; /64 and longer have none.
    #[test]
    fn marked_keys_round_trip() {
        let a: Ipv6Addr = "2001:db8:1234:5678:9abc:def0:1:ffff".parse().unwrap();
        let mut seen = std::collections::HashSet::new();
        for len in 0..=128u8 {
            let p = Ipv6Prefix::new(a, len).unwrap();
            let Some(m) = Ipv6Marked::new(&p) else {
                assert!(len >= 64, "/{len}");
                continue;
            };
            assert!(len <= 63);
            assert_eq!(Ipv6Prefix::from(m), p);
            assert_eq!(m.prefix(), Prefix::V6(p));
            assert_eq!(Some(m.run()), p.short().map(|s| s.run()));
            assert!(seen.insert(m), "/{len} collides");
            assert_eq!(format!("{m:?}"), p.to_string());
        }
        assert_eq!(seen.len(), 64);
    }

    /// Up to /48 a marked key carries 15 bits beside it, and both read back;
    /// longer prefixes and wider values are refused.
    #[test]
    fn marked_keys_carry_low_bits() {
        let a: Ipv6Addr = "2001:db8:1234:5678:9abc:def0:1:ffff".parse().unwrap();
        for len in 0..=63u8 {
            let p = Ipv6Prefix::new(a, len).unwrap();
            let m = Ipv6Marked::new(&p).unwrap();
            for low in [0u16, 1, 0x5a5a, 0x7fff] {
                let bits = m.with_low(low);
                assert_eq!(bits.is_some(), len <= 48, "/{len} {low:#x}");
                if let Some(bits) = bits {
                    assert_eq!(Ipv6Marked::split_low(bits), (m, low), "/{len}");
                }
            }
            assert_eq!(m.with_low(0x8000), None, "/{len}");
        }
    }
}
