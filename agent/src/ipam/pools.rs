//! The address space IPAM hands out from: the node's blocks of both families
//! (`node.pod_cidr`), in the order written, and the arithmetic on them.
//!
//! Data flow: [`super::Ipam::open`] builds [`Pools`] once; the allocator asks
//! for a family's size and for the address at an offset. A family's blocks
//! form one sequence of offsets (block 1 first, then block 2, …): the
//! round-robin cursor walks it, so the blocks fill in order. An IPv6 block's
//! first address (its subnet-router anycast address, RFC 4291 §2.6.1) is
//! never handed out.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

/// An address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// The blocks, network addresses normalised, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pools(Vec<IpNetwork>);

impl Pools {
    pub(crate) fn new(blocks: &[IpNetwork]) -> Pools {
        Pools(
            blocks
                .iter()
                .map(|b| IpNetwork::new(b.network(), b.prefix()).unwrap_or(*b))
                .collect(),
        )
    }

    pub(crate) fn all(&self) -> &[IpNetwork] {
        &self.0
    }

    pub(crate) fn of(&self, f: Family) -> impl Iterator<Item = IpNetwork> + '_ {
        self.0
            .iter()
            .copied()
            .filter(move |b| Family::of(b.ip()) == f)
    }

    /// The family's blocks as text, for "is the saved cursor still valid".
    pub(crate) fn text(&self, f: Family) -> Vec<String> {
        self.of(f).map(|b| b.to_string()).collect()
    }

    /// Addresses in the family's blocks (saturating at `u128::MAX`).
    pub(crate) fn size(&self, f: Family) -> u128 {
        self.of(f)
            .fold(0u128, |n, b| n.saturating_add(block_size(b)))
    }

    /// The address at `offset` of the family's sequence (`None`: past its end).
    pub(crate) fn address_at(&self, f: Family, mut offset: u128) -> Option<IpAddr> {
        for b in self.of(f) {
            let size = block_size(b);
            if offset < size {
                return Some(match b {
                    IpNetwork::V4(n) => {
                        let base = u128::from(u32::from(n.network()));
                        IpAddr::V4(u32::try_from(base + offset).ok()?.into())
                    }
                    IpNetwork::V6(n) => {
                        let base = u128::from(n.network());
                        IpAddr::V6(base.checked_add(offset)?.into())
                    }
                });
            }
            offset -= size;
        }
        None
    }

    /// Whether `ip` lies in one of the blocks.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|b| b.contains(ip))
    }

    /// Whether `ip` is an IPv6 block's subnet-router anycast address.
    pub(crate) fn is_anycast(&self, ip: IpAddr) -> bool {
        self.0
            .iter()
            .any(|b| b.is_ipv6() && b.prefix() < 128 && b.network() == ip)
    }

    /// Addresses of the family never handed out by construction (one
    /// anycast address per IPv6 block).
    pub(crate) fn unusable(&self, f: Family) -> u128 {
        match f {
            Family::V4 => 0,
            Family::V6 => self.of(f).filter(|b| b.prefix() < 128).count() as u128,
        }
    }

    /// "10.244.1.0/26, 10.244.9.0/28" (for messages).
    pub(crate) fn describe(&self, f: Family) -> String {
        self.text(f).join(", ")
    }
}

fn block_size(b: IpNetwork) -> u128 {
    let bits = if b.is_ipv4() { 32 } else { 128 };
    1u128
        .checked_shl(bits - u32::from(b.prefix()))
        .unwrap_or(u128::MAX)
}

/// `(start + step) mod size` without overflow (`start`, `step` < `size`).
pub(crate) fn wrap_add(start: u128, step: u128, size: u128) -> u128 {
    if step < size - start {
        start + step
    } else {
        step - (size - start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools(s: &[&str]) -> Pools {
        let blocks: Vec<IpNetwork> = s.iter().map(|b| b.parse().expect("block")).collect();
        Pools::new(&blocks)
    }

    #[test]
    fn a_family_is_one_sequence_of_its_blocks_in_order() {
        let p = pools(&["10.0.0.0/30", "fd00::/126", "10.9.0.0/31"]);
        assert_eq!(p.size(Family::V4), 6);
        assert_eq!(p.size(Family::V6), 4);
        let v4: Vec<_> = (0..7).map(|o| p.address_at(Family::V4, o)).collect();
        let want: Vec<Option<IpAddr>> = [
            "10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.9.0.0", "10.9.0.1",
        ]
        .iter()
        .map(|s| Some(s.parse().expect("ip")))
        .chain([None])
        .collect();
        assert_eq!(v4, want);
        assert_eq!(
            p.address_at(Family::V6, 3),
            Some("fd00::3".parse().expect("ip"))
        );
        assert!(p.is_anycast("fd00::".parse().expect("ip")));
        assert!(!p.is_anycast("10.0.0.0".parse().expect("ip")));
        assert_eq!(p.unusable(Family::V6), 1);
    }

    #[test]
    fn huge_blocks_do_not_overflow() {
        let p = pools(&["2001:db8::/64", "fd00::/1"]);
        assert_eq!(p.size(Family::V6), (1u128 << 64) + (1u128 << 127));
        // The second block starts right after the first (its network: 8000::).
        assert_eq!(
            p.address_at(Family::V6, 1 << 64),
            Some("8000::".parse().expect("ip"))
        );
        assert_eq!(wrap_add(u128::MAX - 1, 5, u128::MAX), 4);
        assert_eq!(wrap_add(2, 3, 6), 5);
        assert_eq!(wrap_add(4, 3, 6), 1);
    }
}
