//! rtnetlink numbers (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h,
//! linux/if_addr.h, linux/neighbour.h), named as in the kernel headers. The
//! one place tortie spells them; `libc` lacks most of them.

// Message types.
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_SETLINK: u16 = 19;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;
pub const RTM_NEWNEIGH: u16 = 28;
pub const RTM_DELNEIGH: u16 = 29;
pub const RTM_GETNEIGH: u16 = 30;
pub const RTM_SETNEIGHTBL: u16 = 67;
pub const RTM_NEWNEXTHOP: u16 = 104;
pub const RTM_DELNEXTHOP: u16 = 105;
pub const RTM_GETNEXTHOP: u16 = 106;

// Header flags.
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
/// Set by the kernel on a dump part when the dump was interrupted by a change.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
/// On an `NLMSG_ERROR`: the echoed request was cut to its header.
pub const NLM_F_CAPPED: u16 = 0x100;
/// On an `NLMSG_ERROR`: extended-ack TLVs follow.
pub const NLM_F_ACK_TLVS: u16 = 0x200;
pub const NLMSGERR_ATTR_MSG: u16 = 1;

// Multicast groups (bit masks for `bind`).
pub const RTMGRP_LINK: u32 = 0x1;
pub const RTMGRP_NEIGH: u32 = 0x4;
pub const RTMGRP_IPV4_IFADDR: u32 = 0x10;
pub const RTMGRP_IPV4_ROUTE: u32 = 0x40;
pub const RTMGRP_IPV6_IFADDR: u32 = 0x100;
pub const RTMGRP_IPV6_ROUTE: u32 = 0x400;
// Multicast group numbers (`NETLINK_ADD_MEMBERSHIP`): bit n-1 above is group n.
pub const RTNLGRP_LINK: u32 = 1;
/// Nexthop objects (linux/rtnetlink.h; above 31, so joined, never in a bitmask).
pub const RTNLGRP_NEXTHOP: u32 = 32;

// Socket options (SOL_NETLINK).
pub const NETLINK_GET_STRICT_CHK: i32 = 12;

// Links.
pub const IFF_UP: u32 = 0x1;
pub const IFF_RUNNING: u32 = 0x40;
pub const IFF_LOWER_UP: u32 = 0x1_0000;
pub const IFLA_ADDRESS: u16 = 1;
pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_MTU: u16 = 4;
pub const IFLA_LINKINFO: u16 = 18;
pub const IFLA_AF_SPEC: u16 = 26;
pub const IFLA_NET_NS_FD: u16 = 28;
pub const IFLA_EXT_MASK: u16 = 29;
pub const IFLA_NUM_TX_QUEUES: u16 = 31;
pub const IFLA_NUM_RX_QUEUES: u16 = 32;
pub const IFLA_INFO_KIND: u16 = 1;
pub const IFLA_INFO_DATA: u16 = 2;
pub const VETH_INFO_PEER: u16 = 1;
// VXLAN (IFLA_INFO_DATA of kind "vxlan", linux/if_link.h).
pub const IFLA_VXLAN_ID: u16 = 1;
pub const IFLA_VXLAN_LOCAL: u16 = 4;
pub const IFLA_VXLAN_LEARNING: u16 = 7;
/// Destination UDP port, network byte order.
pub const IFLA_VXLAN_PORT: u16 = 15;
pub const IFLA_VXLAN_LOCAL6: u16 = 17;
pub const IFLA_INET_CONF: u16 = 1;
pub const IPV4_DEVCONF_FORWARDING: u16 = 1;
pub const IPV4_DEVCONF_PROXY_ARP: u16 = 3;
/// In `IFLA_AF_SPEC` / `AF_INET6` (linux/if_link.h).
pub const IFLA_INET6_ADDR_GEN_MODE: u16 = 8;
/// No kernel-made link-local address (`enum in6_addr_gen_mode`).
pub const IN6_ADDR_GEN_MODE_NONE: u8 = 1;
pub const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;

// Addresses.
pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_FLAGS: u16 = 8;
/// No duplicate address detection: the address is usable at once.
pub const IFA_F_NODAD: u32 = 0x02;

// Routes.
pub const RTA_DST: u16 = 1;
pub const RTA_OIF: u16 = 4;
pub const RTA_GATEWAY: u16 = 5;
pub const RTA_PRIORITY: u16 = 6;
pub const RTA_MULTIPATH: u16 = 9;
pub const RTA_TABLE: u16 = 15;
/// The id of the nexthop object a route uses (Linux ≥ 5.3).
pub const RTA_NH_ID: u16 = 30;
pub const RTN_UNSPEC: u8 = 0;
pub const RTN_UNICAST: u8 = 1;
pub const RTN_BLACKHOLE: u8 = 6;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
pub const RT_SCOPE_LINK: u8 = 253;
pub const RT_SCOPE_NOWHERE: u8 = 255;
pub const RTNH_F_ONLINK: u8 = 4;
/// `rtm_flags` bit of a single-next-hop route whose gateway is on-link.
pub const RTM_F_ONLINK: u32 = RTNH_F_ONLINK as u32;
pub const RTPROT_BOOT: u8 = 3;
/// Main routing table id.
pub const RT_TABLE_MAIN: u32 = 254;

// Nexthop objects (linux/nexthop.h).
pub const NHA_ID: u16 = 1;
pub const NHA_GROUP: u16 = 2;
pub const NHA_BLACKHOLE: u16 = 4;
pub const NHA_OIF: u16 = 5;
pub const NHA_GATEWAY: u16 = 6;
pub const NHA_FDB: u16 = 11;
/// Bytes of `struct nhmsg`.
pub const NHMSG_LEN: usize = 8;

// Neighbours.
pub const NDA_DST: u16 = 1;
pub const NDA_LLADDR: u16 = 2;
pub const NUD_PERMANENT: u16 = 0x80;
/// `ndm_flags`: an FDB entry of the device itself (not of a bridge above it).
pub const NTF_SELF: u8 = 0x02;
/// `AF_BRIDGE`: the family of FDB entries.
pub const AF_BRIDGE: u8 = 7;
pub const NDTA_NAME: u16 = 1;
pub const NDTA_PARMS: u16 = 6;
pub const NDTPA_IFINDEX: u16 = 1;
pub const NDTPA_PROXY_DELAY: u16 = 13;

/// Bytes of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// Bytes of `struct rtmsg`.
pub const RTMSG_LEN: usize = 12;
