//! VXLAN without a datastore (RFC 7348): the devices, the VTEP MAC
//! derivation, and the forwarding (FDB) and neighbour requests for remote
//! VTEPs. The reconciler owns the entries (`reconcile::vteps`); the agent
//! creates the devices at start-up ([`ensure_vxlan`]).
//!
//! - One device per underlay family, [`VXLAN_DEV`] over IPv4 and
//!   [`VXLAN6_DEV`] over IPv6: VNI `dataplane.vxlan_vni`, UDP destination
//!   port `dataplane.vxlan_port`, `nolearning`, local = the node's address of
//!   that family, MTU = underlay − 50 (IPv4) or − 70 (IPv6), MAC =
//!   [`vtep_mac`] of the local address.
//! - A remote VTEP is a learned route's BGP next hop (the peer node's
//!   address). Every node derives the same MAC for it ([`vtep_mac`]), so
//!   nobody has to publish it: per remote VTEP a permanent FDB entry
//!   (MAC → remote address) and a permanent neighbour entry (remote address
//!   → MAC) on the device, and routes `<block> via <remote> dev vxlan.tortie
//!   onlink`. The receiving device accepts the inner frame because its own
//!   MAC is the one the sender derived.
//! - An existing device whose VNI, port, local address or learning differ
//!   is replaced; a matching one is kept as is (a restart keeps forwarding).

use std::net::IpAddr;

use sha1::{Digest, Sha1};

pub use crate::encap::{VXLAN_DEV, VXLAN6_DEV};
use crate::error::RoutesError;
use crate::nl::build::{Writer, ndmsg};
use crate::nl::consts::*;
use crate::nl::parse::{attrs, ne_u16, ne_u32};
use crate::nl::rtnl::{LinkInfo, Msg};
use crate::tunnel;

/// First octet of every derived MAC: locally administered (bit 1), unicast
/// (bit 0 clear), so it can collide with no vendor's address.
const MAC_LOCAL: u8 = 0x0e;

/// The VTEP MAC of the node whose underlay address is `ip`.
///
/// - IPv4 `a.b.c.d` → `0e:74:a:b:c:d` (one-to-one: no collisions);
/// - IPv6 → `0e:76:` + the first 4 bytes of SHA-1 over the 16 address
///   bytes (two nodes collide with probability 2⁻³² per pair).
pub fn vtep_mac(ip: IpAddr) -> [u8; 6] {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            [MAC_LOCAL, 0x74, o[0], o[1], o[2], o[3]]
        }
        IpAddr::V6(a) => {
            let h = Sha1::digest(a.octets());
            [MAC_LOCAL, 0x76, h[0], h[1], h[2], h[3]]
        }
    }
}

/// The IPv6 link-local address (EUI-64, RFC 4291 appendix A) of a VTEP
/// MAC: the gateway and neighbour address of a remote VTEP over an IPv6
/// underlay (see [`crate::NextHop::in_kernel`]); reversible, so a
/// neighbour entry names its own MAC.
pub fn vtep_link_local(mac: [u8; 6]) -> std::net::Ipv6Addr {
    std::net::Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ])
}

/// What one VXLAN device should look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanSpec {
    /// VXLAN Network Identifier (24 bits).
    pub vni: u32,
    /// UDP destination port.
    pub port: u16,
    /// The node's underlay address; its family picks the device.
    pub local: IpAddr,
    /// Device MTU.
    pub mtu: u32,
}

impl VxlanSpec {
    /// [`VXLAN_DEV`] or [`VXLAN6_DEV`], by the underlay's family.
    pub fn name(&self) -> &'static str {
        crate::encap::vxlan_dev(self.local)
    }

    /// `IFLA_INFO_DATA` of the device: id, local, port, learning off.
    pub fn info_data(&self) -> Vec<u8> {
        let mut b = Vec::new();
        crate::nl::build::put_attr(&mut b, IFLA_VXLAN_ID, &self.vni.to_ne_bytes());
        match self.local {
            IpAddr::V4(a) => crate::nl::build::put_attr(&mut b, IFLA_VXLAN_LOCAL, &a.octets()),
            IpAddr::V6(a) => crate::nl::build::put_attr(&mut b, IFLA_VXLAN_LOCAL6, &a.octets()),
        }
        crate::nl::build::put_attr(&mut b, IFLA_VXLAN_PORT, &self.port.to_be_bytes());
        crate::nl::build::put_attr(&mut b, IFLA_VXLAN_LEARNING, &[0]);
        b
    }

    /// Whether the existing link `l` is this device (kind, VNI, local,
    /// port, learning); MTU and MAC are set in place either way.
    pub(crate) fn matches(&self, l: &LinkInfo) -> bool {
        if l.kind != "vxlan" {
            return false;
        }
        let (mut vni, mut local, mut port, mut learning) = (None, None, None, None);
        for (k, v) in attrs(&l.info_data) {
            match k {
                IFLA_VXLAN_ID => vni = ne_u32(v, 0),
                IFLA_VXLAN_LOCAL => local = <[u8; 4]>::try_from(v).ok().map(IpAddr::from),
                IFLA_VXLAN_LOCAL6 => local = <[u8; 16]>::try_from(v).ok().map(IpAddr::from),
                IFLA_VXLAN_PORT => port = ne_u16(v, 0).map(u16::from_be),
                IFLA_VXLAN_LEARNING => learning = v.first().copied(),
                _ => {}
            }
        }
        vni == Some(self.vni)
            && local == Some(self.local)
            && port == Some(self.port)
            && learning == Some(0)
    }
}

/// Create or fix the VXLAN device of `spec`'s family (see the module docs).
pub fn ensure_vxlan(spec: &VxlanSpec) -> Result<(), RoutesError> {
    let name = spec.name();
    let ctx = format!("configuring {name}");
    let mut h = tunnel::open(&ctx)?;
    let mac = vtep_mac(spec.local);
    match tunnel::find_link(&mut h, name)? {
        Some(l) if spec.matches(&l) => {
            tunnel::set_link(&mut h, l.index, spec.mtu, Some(mac), &ctx)?;
            return Ok(());
        }
        Some(l) => {
            tracing::info!(dev = name, "replacing a VXLAN device of other settings");
            tunnel::delete_link(&mut h, l.index, &ctx)?;
        }
        None => {}
    }
    let create = tunnel::create_link_msg(name, "vxlan", &spec.info_data(), spec.mtu, Some(mac));
    tunnel::request(&mut h, create, &format!("{ctx}: creating it"))?;
    Ok(())
}

/// Delete our VXLAN device `name` if it exists (encapsulation switched
/// away from VXLAN). Routes through it go with it.
pub fn remove_vxlan(name: &str) -> Result<bool, RoutesError> {
    let ctx = format!("removing {name}");
    let mut h = tunnel::open(&ctx)?;
    match tunnel::find_link(&mut h, name)? {
        Some(l) => tunnel::delete_link(&mut h, l.index, &ctx).map(|()| true),
        None => Ok(false),
    }
}

/// The two kernel entries of one remote VTEP on device `ifindex`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Entry {
    /// Neighbour: `addr` → `mac`. `addr` is the remote VTEP's address over
    /// IPv4, its link-local address ([`vtep_link_local`]) over IPv6.
    Neigh {
        ifindex: u32,
        addr: IpAddr,
        mac: [u8; 6],
    },
    /// FDB: its MAC → `remote`.
    Fdb { ifindex: u32, remote: IpAddr },
}

impl Entry {
    /// The neighbour entry of the remote VTEP `remote` on `ifindex`.
    pub(crate) fn neigh(ifindex: u32, remote: IpAddr) -> Entry {
        let mac = vtep_mac(remote);
        let addr = match remote {
            IpAddr::V4(_) => remote,
            IpAddr::V6(_) => IpAddr::V6(vtep_link_local(mac)),
        };
        Entry::Neigh { ifindex, addr, mac }
    }
}

impl Entry {
    /// Append the replace (`add`) or delete of this entry to `out`, with
    /// `NLM_F_ACK`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>, seq: u32, add: bool) {
        let (kind, flags) = if add {
            (RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE)
        } else {
            (RTM_DELNEIGH, 0)
        };
        // Every request is answered (ACK or errno): the writer waits for each.
        let flags = flags | NLM_F_REQUEST | NLM_F_ACK;
        let (family, ifindex, dst, mac, ntf) = match *self {
            Entry::Neigh { ifindex, addr, mac } => {
                (crate::nl::family_of(addr), ifindex, addr, mac, 0)
            }
            Entry::Fdb { ifindex, remote } => {
                (AF_BRIDGE, ifindex, remote, vtep_mac(remote), NTF_SELF)
            }
        };
        let mut hdr = ndmsg(family, ifindex, NUD_PERMANENT);
        hdr[10] = ntf;
        let mut w = Writer::begin(out, kind, flags, seq, &hdr);
        w.ip(NDA_DST, dst);
        w.attr(NDA_LLADDR, &mac);
        w.finish();
    }

    /// The same as an owned request (tests, one-off writes).
    pub(crate) fn msg(&self, add: bool) -> Msg {
        let mut b = Vec::new();
        self.encode(&mut b, 0, add);
        Msg::from_bytes(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_derivation_table() {
        #[rustfmt::skip]
        let table: &[(&str, [u8; 6])] = &[
            ("192.0.2.11", [0x0e, 0x74, 192, 0, 2, 11]),
            ("198.51.100.13", [0x0e, 0x74, 198, 51, 100, 13]),
            ("0.0.0.0", [0x0e, 0x74, 0, 0, 0, 0]),
        ];
        for (ip, mac) in table {
            assert_eq!(vtep_mac(ip.parse().unwrap()), *mac, "{ip}");
        }
        // IPv6: locally administered unicast, stable, differs per address.
        let a = vtep_mac("2001:db8::11".parse().unwrap());
        let b = vtep_mac("2001:db8::12".parse().unwrap());
        assert_eq!(a[..2], [0x0e, 0x76]);
        assert_eq!(a, vtep_mac("2001:db8:0::11".parse().unwrap()));
        assert_ne!(a, b);
        for m in [a, b] {
            assert_eq!(m[0] & 0x03, 0x02, "local, unicast");
        }
    }

    #[test]
    fn device_attributes_round_trip() {
        for local in ["192.0.2.11", "2001:db8::11"] {
            let spec = VxlanSpec {
                vni: 4096,
                port: 4789,
                local: local.parse().unwrap(),
                mtu: 1450,
            };
            let link = |kind: &str, data: Vec<u8>| LinkInfo {
                index: 7,
                flags: 0,
                mac: Vec::new(),
                name: spec.name().into(),
                mtu: 1450,
                kind: kind.into(),
                info_data: data,
            };
            assert!(spec.matches(&link("vxlan", spec.info_data())));
            assert!(!spec.matches(&link("ipip", spec.info_data())));
            for other in [
                VxlanSpec { vni: 1, ..spec },
                VxlanSpec { port: 8472, ..spec },
                VxlanSpec {
                    local: "192.0.2.99".parse().unwrap(),
                    ..spec
                },
            ] {
                assert!(!spec.matches(&link("vxlan", other.info_data())));
            }
            // Port in network byte order, VNI native.
            let data = spec.info_data();
            let port = attrs(&data).find(|(k, _)| *k == IFLA_VXLAN_PORT).unwrap().1;
            assert_eq!(port, [0x12, 0xb5]);
        }
        let v6 = VxlanSpec {
            vni: 1,
            port: 1,
            local: "2001:db8::1".parse().unwrap(),
            mtu: 1,
        };
        assert_eq!(v6.name(), VXLAN6_DEV);
    }

    #[test]
    fn entry_requests_bytes() {
        let remote: IpAddr = "198.51.100.13".parse().unwrap();
        let mut b = Vec::new();
        Entry::Fdb { ifindex: 9, remote }.encode(&mut b, 5, true);
        // nlmsghdr 16 + ndmsg 12 + NDA_DST 8 + NDA_LLADDR (4+6 → 12) = 48.
        assert_eq!(b.len(), 48);
        assert_eq!(ne_u32(&b, 0), Some(48));
        assert_eq!(ne_u16(&b, 4), Some(RTM_NEWNEIGH));
        assert_eq!(
            ne_u16(&b, 6),
            Some(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE)
        );
        assert_eq!(b[16], AF_BRIDGE);
        assert_eq!(ne_u32(&b, 20), Some(9));
        assert_eq!(ne_u16(&b, 24), Some(NUD_PERMANENT));
        assert_eq!(b[26], NTF_SELF);
        let at: Vec<(u16, Vec<u8>)> = attrs(&b[28..]).map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(
            at,
            vec![
                (NDA_DST, vec![198, 51, 100, 13]),
                (NDA_LLADDR, vtep_mac(remote).to_vec())
            ]
        );
        let mut d = Vec::new();
        let v6: IpAddr = "2001:db8::13".parse().unwrap();
        Entry::neigh(3, v6).encode(&mut d, 1, false);
        assert_eq!(ne_u16(&d, 4), Some(RTM_DELNEIGH));
        assert_eq!(d[16], libc::AF_INET6 as u8);
        assert_eq!(d[26], 0);
        // Over IPv6 the neighbour is the VTEP's link-local address.
        let at: Vec<(u16, Vec<u8>)> = attrs(&d[28..]).map(|(k, v)| (k, v.to_vec())).collect();
        let m = vtep_mac(v6);
        assert_eq!(at[0].1, vtep_link_local(m).octets().to_vec());
        assert_eq!(at[1].1, m.to_vec());
        assert_eq!(
            vtep_link_local([0x0e, 0x76, 1, 2, 3, 4]).to_string(),
            "fe80::c76:1ff:fe02:304"
        );
    }
}
