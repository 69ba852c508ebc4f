//! The keys of the RIB's prefix tables ([`RibKey`]): [`Ipv4Prefix`],
//! [`Ipv6Prefix`] and the short form of an IPv6 prefix of at most 64 bits,
//! [`Ipv6Short`], each with its run of neighbours ([`RunKey`], see
//! `shard.rs`), which decides where a prefix lands in its table.

use std::hash::Hash;

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
}
