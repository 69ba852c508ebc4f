//! Typed views of received rtnetlink messages: what the kernel answers to a
//! dump or sends as a notification, read straight from the datagram
//! ([`super::parse::Message`]) with no per-attribute allocation.
//!
//! - [`RouteView`] (`RTM_NEWROUTE`/`RTM_DELROUTE`, `struct rtmsg`) and its
//!   next hops ([`RouteView::next_hops`], `struct rtnexthop`);
//! - [`LinkInfo`] (`RTM_NEWLINK`/`RTM_DELLINK`, `struct ifinfomsg`);
//! - [`AddrView`] (`RTM_NEWADDR`/`RTM_DELADDR`, `struct ifaddrmsg`);
//! - [`NeighView`] (`RTM_NEWNEIGH`/`RTM_DELNEIGH`, `struct ndmsg`);
//! - [`decode`]: one message → [`Decoded`] (the above, an `NLMSG_ERROR`,
//!   `NLMSG_DONE`).
//!
//! Every length is checked: a body shorter than its family header is a
//! [`ParseError`]; an attribute of the wrong size is skipped (as the kernel
//! treats unknown ones); nothing here panics on any input (fuzz-tested in
//! `super::oracle_views`).

use std::fmt;
use std::net::IpAddr;

use super::consts::*;
use super::parse::{ErrorMsg, Message, attrs, error_msg, ne_u16, ne_u32};

/// A message too short for its family header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ParseError {}

/// An address attribute: 4 bytes are IPv4, 16 IPv6, anything else none.
pub fn ip_of(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

/// A route message (`struct rtmsg` and the attributes tortie reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteView<'a> {
    pub family: u8,
    pub dst_len: u8,
    pub tos: u8,
    /// `RTA_TABLE` when present, else `rtm_table`.
    pub table: u32,
    pub protocol: u8,
    pub scope: u8,
    /// `rtm_type` (`RTN_UNICAST`, `RTN_BLACKHOLE`, ...).
    pub kind: u8,
    pub flags: u32,
    pub dst: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    /// `RTA_PRIORITY` (the metric), 0 when absent.
    pub priority: u32,
    /// The payload of `RTA_MULTIPATH`, read by [`next_hops`](Self::next_hops).
    pub multipath: Option<&'a [u8]>,
}

impl<'a> RouteView<'a> {
    /// Read the body (after `nlmsghdr`) of a route message.
    pub fn parse(body: &'a [u8]) -> Result<RouteView<'a>, ParseError> {
        let h = body
            .get(..RTMSG_LEN)
            .ok_or(ParseError("route message shorter than struct rtmsg"))?;
        let mut v = RouteView {
            family: h[0],
            dst_len: h[1],
            tos: h[3],
            table: u32::from(h[4]),
            protocol: h[5],
            scope: h[6],
            kind: h[7],
            flags: ne_u32(h, 8).unwrap_or(0),
            dst: None,
            gateway: None,
            oif: None,
            priority: 0,
            multipath: None,
        };
        for (k, p) in attrs(body.get(RTMSG_LEN..).unwrap_or_default()) {
            match k {
                RTA_DST => v.dst = ip_of(p).or(v.dst),
                RTA_GATEWAY => v.gateway = ip_of(p).or(v.gateway),
                RTA_OIF => v.oif = ne_u32(p, 0).or(v.oif),
                RTA_PRIORITY => v.priority = ne_u32(p, 0).unwrap_or(v.priority),
                RTA_TABLE => v.table = ne_u32(p, 0).unwrap_or(v.table),
                RTA_MULTIPATH => v.multipath = Some(p),
                _ => {}
            }
        }
        Ok(v)
    }

    /// The next hops of `RTA_MULTIPATH` (none without it). Stops at the
    /// first malformed `struct rtnexthop`.
    pub fn next_hops(&self) -> NextHops<'a> {
        NextHops {
            b: self.multipath.unwrap_or_default(),
        }
    }
}

/// One `struct rtnexthop` of a multipath route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopView {
    /// `rtnh_flags` (`RTNH_F_ONLINK`, ...).
    pub flags: u8,
    pub ifindex: u32,
    pub gateway: Option<IpAddr>,
}

/// Iterator over the next hops of `RTA_MULTIPATH`.
pub struct NextHops<'a> {
    b: &'a [u8],
}

impl Iterator for NextHops<'_> {
    type Item = HopView;

    fn next(&mut self) -> Option<HopView> {
        let b = self.b;
        let len = usize::from(ne_u16(b, 0)?);
        if len < 8 || len > b.len() {
            self.b = &[];
            return None;
        }
        let hop = HopView {
            flags: *b.get(2)?,
            ifindex: ne_u32(b, 4)?,
            gateway: attrs(b.get(8..len)?)
                .find(|(k, _)| *k == RTA_GATEWAY)
                .and_then(|(_, p)| ip_of(p)),
        };
        self.b = b.get(super::build::align4(len)..).unwrap_or_default();
        Some(hop)
    }
}

/// A link as an `RTM_NEWLINK` message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    /// `ifi_flags` (`IFF_UP`, `IFF_RUNNING`, `IFF_LOWER_UP`, ...).
    pub flags: u32,
    pub mac: Vec<u8>,
    pub name: String,
    /// `IFLA_MTU` (0 when absent).
    pub mtu: u32,
    /// `IFLA_INFO_KIND` of `IFLA_LINKINFO` (`vxlan`, `ipip`; empty when absent).
    pub kind: String,
    /// `IFLA_INFO_DATA` of `IFLA_LINKINFO`: the kind's own attributes.
    pub info_data: Vec<u8>,
}

fn c_string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_end_matches('\0').into()
}

impl LinkInfo {
    /// Read the body of a link message.
    pub fn parse(body: &[u8]) -> Result<LinkInfo, ParseError> {
        const SHORT: ParseError = ParseError("link message shorter than struct ifinfomsg");
        let mut link = LinkInfo {
            index: ne_u32(body, 4).ok_or(SHORT)?,
            flags: ne_u32(body, 8).ok_or(SHORT)?,
            mac: Vec::new(),
            name: String::new(),
            mtu: 0,
            kind: String::new(),
            info_data: Vec::new(),
        };
        if body.len() < 16 {
            return Err(SHORT);
        }
        for (k, v) in attrs(body.get(16..).unwrap_or_default()) {
            match k {
                IFLA_ADDRESS => link.mac = v.to_vec(),
                IFLA_IFNAME => link.name = c_string(v),
                IFLA_MTU => link.mtu = ne_u32(v, 0).unwrap_or(0),
                IFLA_LINKINFO => {
                    for (ik, iv) in attrs(v) {
                        match ik {
                            IFLA_INFO_KIND => link.kind = c_string(iv),
                            IFLA_INFO_DATA => link.info_data = iv.to_vec(),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(link)
    }

    /// Administratively up (`IFF_UP`).
    pub fn up(&self) -> bool {
        self.flags & IFF_UP != 0
    }

    /// Operationally up: carrier (`IFF_LOWER_UP`) and `IFF_RUNNING`, which
    /// the kernel's linkwatch sets together with attaching the real qdisc.
    pub fn oper_up(&self) -> bool {
        self.flags & (IFF_RUNNING | IFF_LOWER_UP) == IFF_RUNNING | IFF_LOWER_UP
    }
}

/// An address message (`struct ifaddrmsg`, `IFA_ADDRESS`, `IFA_LOCAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrView {
    pub family: u8,
    pub prefix_len: u8,
    pub scope: u8,
    pub index: u32,
    /// `IFA_LOCAL`: the interface's own address (IPv4).
    pub local: Option<IpAddr>,
    /// `IFA_ADDRESS`: the address (IPv6), or the peer of a point-to-point
    /// link (IPv4; equal to `local` otherwise).
    pub address: Option<IpAddr>,
}

impl AddrView {
    /// Read the body of an address message.
    pub fn parse(body: &[u8]) -> Result<AddrView, ParseError> {
        let h = body
            .get(..8)
            .ok_or(ParseError("address message shorter than struct ifaddrmsg"))?;
        let mut v = AddrView {
            family: h[0],
            prefix_len: h[1],
            scope: h[3],
            index: ne_u32(h, 4).unwrap_or(0),
            local: None,
            address: None,
        };
        for (k, p) in attrs(body.get(8..).unwrap_or_default()) {
            match k {
                IFA_LOCAL => v.local = ip_of(p).or(v.local),
                IFA_ADDRESS => v.address = ip_of(p).or(v.address),
                _ => {}
            }
        }
        Ok(v)
    }

    /// The interface's own address: `IFA_LOCAL`, else `IFA_ADDRESS`.
    pub fn ip(&self) -> Option<IpAddr> {
        self.local.or(self.address)
    }
}

/// A neighbour or FDB message (`struct ndmsg`, `NDA_DST`, `NDA_LLADDR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighView<'a> {
    /// `AF_INET`, `AF_INET6`, or [`AF_BRIDGE`] for FDB entries.
    pub family: u8,
    pub ifindex: u32,
    /// `ndm_state` (`NUD_PERMANENT`, ...).
    pub state: u16,
    /// `ndm_flags` (`NTF_SELF`, ...).
    pub flags: u8,
    pub dst: Option<IpAddr>,
    pub lladdr: Option<&'a [u8]>,
}

impl<'a> NeighView<'a> {
    /// Read the body of a neighbour message.
    pub fn parse(body: &'a [u8]) -> Result<NeighView<'a>, ParseError> {
        let h = body
            .get(..12)
            .ok_or(ParseError("neighbour message shorter than struct ndmsg"))?;
        let mut v = NeighView {
            family: h[0],
            ifindex: ne_u32(h, 4).unwrap_or(0),
            state: ne_u16(h, 8).unwrap_or(0),
            flags: h[10],
            dst: None,
            lladdr: None,
        };
        for (k, p) in attrs(body.get(12..).unwrap_or_default()) {
            match k {
                NDA_DST => v.dst = ip_of(p).or(v.dst),
                NDA_LLADDR => v.lladdr = Some(p),
                _ => {}
            }
        }
        Ok(v)
    }
}

/// One received message, typed. `new` is false for the `RTM_DEL*` kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    Route {
        new: bool,
        route: RouteView<'a>,
    },
    Link {
        new: bool,
        link: LinkInfo,
    },
    Addr {
        new: bool,
        addr: AddrView,
    },
    Neigh {
        new: bool,
        neigh: NeighView<'a>,
    },
    /// `NLMSG_ERROR`: an ACK (errno 0) or a refusal.
    Error(ErrorMsg),
    /// `NLMSG_DONE`: the end of a dump.
    Done,
    /// Any other message type (ignored by tortie).
    Other(u16),
}

/// Type one message of a datagram.
pub fn decode<'a>(m: &Message<'a>) -> Result<Decoded<'a>, ParseError> {
    let b = m.body;
    Ok(match m.header.kind {
        RTM_NEWROUTE | RTM_DELROUTE => Decoded::Route {
            new: m.header.kind == RTM_NEWROUTE,
            route: RouteView::parse(b)?,
        },
        RTM_NEWLINK | RTM_DELLINK => Decoded::Link {
            new: m.header.kind == RTM_NEWLINK,
            link: LinkInfo::parse(b)?,
        },
        RTM_NEWADDR | RTM_DELADDR => Decoded::Addr {
            new: m.header.kind == RTM_NEWADDR,
            addr: AddrView::parse(b)?,
        },
        RTM_NEWNEIGH | RTM_DELNEIGH => Decoded::Neigh {
            new: m.header.kind == RTM_NEWNEIGH,
            neigh: NeighView::parse(b)?,
        },
        NLMSG_ERROR => Decoded::Error(
            error_msg(m.header.flags, b).ok_or(ParseError("NLMSG_ERROR shorter than its errno"))?,
        ),
        NLMSG_DONE => Decoded::Done,
        other => Decoded::Other(other),
    })
}
