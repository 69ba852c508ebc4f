//! Protocol-level types shared by the codec, the FSM and the RIB: prefixes,
//! address families, AS paths and path attributes (RFC 4271 §4.3, §5).
//!
//! These are plain data; the codec in [`crate::wire`] turns bytes into them and
//! back, the RIB compares them. Attribute sets are shared between the routes
//! that carry them through `Arc<PathAttributes>`.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

mod as_path;
pub use as_path::{AsPath, AsPathSegment, Asns, INLINE_ASNS, Segments};

/// Address Family Identifier (IANA; RFC 4760 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Afi {
    Ipv4,
    Ipv6,
}

impl Afi {
    pub fn code(self) -> u16 {
        match self {
            Afi::Ipv4 => 1,
            Afi::Ipv6 => 2,
        }
    }
    pub fn from_code(code: u16) -> Option<Afi> {
        match code {
            1 => Some(Afi::Ipv4),
            2 => Some(Afi::Ipv6),
            _ => None,
        }
    }
}

/// Subsequent Address Family Identifier; only unicast is carried (RFC 4760 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Safi {
    Unicast,
}

impl Safi {
    pub fn code(self) -> u8 {
        1
    }
    pub fn from_code(code: u8) -> Option<Safi> {
        (code == 1).then_some(Safi::Unicast)
    }
}

/// An (AFI, SAFI) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressFamily {
    pub afi: Afi,
    pub safi: Safi,
}

impl AddressFamily {
    pub const IPV4_UNICAST: AddressFamily = AddressFamily {
        afi: Afi::Ipv4,
        safi: Safi::Unicast,
    };
    pub const IPV6_UNICAST: AddressFamily = AddressFamily {
        afi: Afi::Ipv6,
        safi: Safi::Unicast,
    };
}

/// "ipv4-unicast", "ipv6-unicast": the names BIRD and GoBGP show.
impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let afi = match self.afi {
            Afi::Ipv4 => "ipv4",
            Afi::Ipv6 => "ipv6",
        };
        let safi = match self.safi {
            Safi::Unicast => "unicast",
        };
        write!(f, "{afi}-{safi}")
    }
}

/// An IPv4 prefix in 8 bytes; host bits are always zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Prefix {
    addr: u32,
    len: u8,
}

/// An IPv6 prefix in 17 bytes, byte-aligned; host bits are always zero.
///
/// The address is kept as its 16 bytes in network order, not as a `u128`:
/// a `u128` is 16-byte aligned, which made this type 32 bytes, a RIB table
/// entry (prefix + 16-byte `Dest`) 48 instead of 40, and every queued IPv6
/// prefix twice as large.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Prefix {
    addr: [u8; 16],
    len: u8,
}

/// By address, then length, compared as integers (not byte by byte).
impl Ord for Ipv6Prefix {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |p: &Self| (u128::from_be_bytes(p.addr), p.len);
        key(self).cmp(&key(other))
    }
}
impl PartialOrd for Ipv6Prefix {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Hashes as the `u128` address and the length (one 128-bit write instead of
/// sixteen byte writes).
impl Hash for Ipv6Prefix {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(u128::from_be_bytes(self.addr));
        state.write_u8(self.len);
    }
}

impl Ipv4Prefix {
    /// Returns `None` when `len > 32`. Host bits are cleared.
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Self> {
        if len > 32 {
            return None;
        }
        let raw = u32::from(addr);
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        Some(Ipv4Prefix {
            addr: raw & mask,
            len,
        })
    }
    pub fn addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr)
    }
    pub fn len(&self) -> u8 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - self.len)
        };
        (u32::from(ip) & mask) == self.addr
    }
}

impl Ipv6Prefix {
    /// Returns `None` when `len > 128`. Host bits are cleared.
    pub fn new(addr: Ipv6Addr, len: u8) -> Option<Self> {
        if len > 128 {
            return None;
        }
        let raw = u128::from(addr);
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - len)
        };
        Some(Ipv6Prefix {
            addr: (raw & mask).to_be_bytes(),
            len,
        })
    }
    pub fn addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.addr)
    }
    pub fn len(&self) -> u8 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// A prefix from its NLRI form (RFC 4760 §5): `len` and the
    /// `len.div_ceil(8)` octets that hold it; the host bits of the last
    /// octet are cleared, as [`Ipv6Prefix::new`] clears them. `None` when
    /// `len > 128` or the octets do not match the length. Only the octets
    /// given are copied and masked: no round trip through a `u128`.
    pub(crate) fn from_nlri(len: u8, octets: &[u8]) -> Option<Self> {
        let n = usize::from(len).div_ceil(8);
        if len > 128 || octets.len() != n {
            return None;
        }
        let mut addr = [0u8; 16];
        for (d, s) in addr.iter_mut().zip(octets) {
            *d = *s;
        }
        let spare_bits = n * 8 - usize::from(len);
        if let Some(last) = n.checked_sub(1).and_then(|i| addr.get_mut(i)) {
            *last &= 0xffu8 << spare_bits;
        }
        Some(Ipv6Prefix { addr, len })
    }

    /// The 9-byte form of a prefix of at most 64 bits (host bits are zero,
    /// so nothing is set past the 64th); `None` for a longer one.
    pub(crate) fn short(&self) -> Option<Ipv6Short> {
        let (hi, _) = self.addr.split_first_chunk::<8>()?;
        (self.len <= 64).then_some(Ipv6Short {
            hi: *hi,
            len: self.len,
        })
    }
}

/// An IPv6 prefix of at most 64 bits in 9 bytes (its upper 8 address bytes
/// in network order and its length): the RIB's key for nearly every IPv6
/// route, a 32-byte table entry instead of the 40 of an [`Ipv6Prefix`] key.
/// Made only by [`Ipv6Prefix::short`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Ipv6Short {
    hi: [u8; 8],
    len: u8,
}

impl Ipv6Short {
    /// The upper 64 address bits.
    pub(crate) fn hi(&self) -> u64 {
        u64::from_be_bytes(self.hi)
    }
    pub(crate) fn len(&self) -> u8 {
        self.len
    }
}

impl fmt::Debug for Ipv6Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Ipv6Prefix::from(*self), f)
    }
}

impl From<Ipv6Short> for Ipv6Prefix {
    fn from(s: Ipv6Short) -> Ipv6Prefix {
        let mut addr = [0u8; 16];
        if let Some((hi, _)) = addr.split_first_chunk_mut::<8>() {
            *hi = s.hi;
        }
        Ipv6Prefix { addr, len: s.len }
    }
}

/// A unicast prefix of either family.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    V4(Ipv4Prefix),
    V6(Ipv6Prefix),
}

/// An UPDATE's prefixes in one direction: one inline (the usual one-prefix
/// UPDATE costs no heap block), more in a heap block of exactly the count
/// reserved. Reads as `&[Prefix]`; equality and hashing are the slice's.
pub type Prefixes = smallvec::SmallVec<[Prefix; 1]>;

impl Prefix {
    pub fn new(addr: IpAddr, len: u8) -> Option<Prefix> {
        match addr {
            IpAddr::V4(a) => Ipv4Prefix::new(a, len).map(Prefix::V4),
            IpAddr::V6(a) => Ipv6Prefix::new(a, len).map(Prefix::V6),
        }
    }
    pub fn addr(&self) -> IpAddr {
        match self {
            Prefix::V4(p) => IpAddr::V4(p.addr()),
            Prefix::V6(p) => IpAddr::V6(p.addr()),
        }
    }
    pub fn len(&self) -> u8 {
        match self {
            Prefix::V4(p) => p.len(),
            Prefix::V6(p) => p.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn family(&self) -> AddressFamily {
        match self {
            Prefix::V4(_) => AddressFamily::IPV4_UNICAST,
            Prefix::V6(_) => AddressFamily::IPV6_UNICAST,
        }
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}
impl fmt::Debug for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}
impl fmt::Debug for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prefix::V4(p) => fmt::Display::fmt(p, f),
            Prefix::V6(p) => fmt::Display::fmt(p, f),
        }
    }
}
impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Prefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, l) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected ADDRESS/LENGTH"))?;
        let addr: IpAddr = a.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let len: u8 = l.parse().map_err(|e| format!("{s:?}: bad length: {e}"))?;
        Prefix::new(addr, len).ok_or_else(|| format!("{s:?}: length out of range"))
    }
}

/// ORIGIN (RFC 4271 §5.1.1); lower is preferred.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// An attribute this speaker does not interpret, kept to be passed on when it is
/// optional transitive (RFC 4271 §5, with the Partial bit set on the way out).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    pub flags: u8,
    pub type_code: u8,
    pub value: Vec<u8>,
}

/// One route's path attributes (RFC 4271 §5 and the RFCs named per field).
/// Shared between routes as `Arc<PathAttributes>`; equal sets pack into one UPDATE.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathAttributes {
    pub origin: Origin,
    pub as_path: AsPath,
    /// NEXT_HOP (type 3) for IPv4 NLRI, or the MP_REACH next hop (RFC 4760 §3).
    pub next_hop: Option<IpAddr>,
    /// IPv6 link-local next hop from a 32-byte MP_REACH next hop (RFC 2545 §3).
    pub link_local_next_hop: Option<Ipv6Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    /// AGGREGATOR (RFC 4271 §5.1.7; 4-octet AS per RFC 6793).
    pub aggregator: Option<(u32, Ipv4Addr)>,
    /// COMMUNITIES (RFC 1997).
    pub communities: Vec<u32>,
    /// EXTENDED_COMMUNITIES (RFC 4360).
    pub extended_communities: Vec<[u8; 8]>,
    /// LARGE_COMMUNITY (RFC 8092).
    pub large_communities: Vec<[u32; 3]>,
    /// ORIGINATOR_ID (RFC 4456 §8).
    pub originator_id: Option<Ipv4Addr>,
    /// CLUSTER_LIST (RFC 4456 §8).
    pub cluster_list: Vec<Ipv4Addr>,
    /// Unrecognised optional attributes, in the order received.
    pub unknown: Vec<RawAttribute>,
}

impl Default for PathAttributes {
    fn default() -> Self {
        PathAttributes {
            origin: Origin::Igp,
            as_path: AsPath::default(),
            next_hop: None,
            link_local_next_hop: None,
            med: None,
            local_pref: None,
            atomic_aggregate: false,
            aggregator: None,
            communities: Vec::new(),
            extended_communities: Vec::new(),
            large_communities: Vec::new(),
            originator_id: None,
            cluster_list: Vec::new(),
            unknown: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-prefix list is held in place: the list is the size of a `Vec`
    /// and one word (`smallvec`'s `union` layout), and pushing one prefix
    /// takes no heap block; a second spills.
    #[test]
    fn a_prefix_list_holds_one_prefix_in_place() {
        assert_eq!(size_of::<Prefixes>(), size_of::<Vec<Prefix>>() + 8);
        let p = Prefix::V4(Ipv4Prefix::new(Ipv4Addr::new(10, 0, 0, 0), 8).unwrap());
        let mut l = Prefixes::with_capacity(1);
        l.push(p);
        assert!(!l.spilled() && l[..] == [p]);
        l.push(p);
        assert!(l.spilled() && l.len() == 2);
    }

    #[test]
    fn ipv6_prefix_is_17_bytes_and_orders_numerically() {
        assert_eq!(std::mem::size_of::<Ipv6Prefix>(), 17);
        let p = |s: &str, len| Ipv6Prefix::new(s.parse().unwrap(), len).unwrap();
        let (a, b) = (p("fd00::1:0:0", 96), p("fd00::100:0:0:0", 80));
        assert!(a < b, "byte order is numeric order");
        assert!(p("2001:db8::", 32) < p("2001:db8::", 33));
        assert_eq!(
            p("2001:db8::ff", 64),
            p("2001:db8::", 64),
            "host bits cleared"
        );
        assert_eq!(
            p("2001:db8::ff", 64).addr(),
            "2001:db8::".parse::<Ipv6Addr>().unwrap()
        );
    }

    /// The NLRI form gives the prefix `new` gives for every length: only
    /// the octets the length needs are read, and host bits are cleared.
    #[test]
    fn ipv6_prefix_from_nlri_octets() {
        let ones = [0xffu8; 17];
        for len in 0..=128u8 {
            let n = usize::from(len).div_ceil(8);
            let p = Ipv6Prefix::from_nlri(len, &ones[..n]).unwrap();
            assert_eq!(
                p,
                Ipv6Prefix::new(Ipv6Addr::from(u128::MAX), len).unwrap(),
                "/{len}"
            );
            assert_eq!(
                Ipv6Prefix::from_nlri(len, &ones[..n + 1]),
                None,
                "/{len}: one octet too many"
            );
            if n > 0 {
                assert_eq!(
                    Ipv6Prefix::from_nlri(len, &ones[..n - 1]),
                    None,
                    "/{len}: one too few"
                );
            }
        }
        assert_eq!(Ipv6Prefix::from_nlri(129, &ones), None);
    }

    /// Exactly the prefixes of at most 64 bits have the short form, and it
    /// reads back as the same prefix.
    #[test]
    fn ipv6_short_form() {
        assert_eq!(std::mem::size_of::<Ipv6Short>(), 9);
        let a: Ipv6Addr = "2001:db8:1234:5678:9abc:def0:1:ffff".parse().unwrap();
        for len in 0..=128u8 {
            let p = Ipv6Prefix::new(a, len).unwrap();
            match p.short() {
                Some(s) => {
                    assert!(len <= 64, "/{len}");
                    assert_eq!(Ipv6Prefix::from(s), p);
                    assert_eq!(s.len(), len);
                    assert_eq!(u128::from(s.hi()) << 64, u128::from(p.addr()));
                }
                None => assert!(len > 64, "/{len}"),
            }
        }
    }
}
