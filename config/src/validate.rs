//! Meaning checks and defaults: raw sections in, a resolved [`Config`] out.
//!
//! Data flow: `lib::parse` hands the [`RawConfig`] from `raw::read`; each section
//! is resolved on its own (recording every problem at the offending value's
//! span, with a hint), then cross-section checks run (`peers`). A `Config` is
//! returned only when no problem at all was found.

use std::net::IpAddr;
use std::ops::Range;

use toml::Spanned;

use crate::error::Locator;
use crate::model::{
    Advertise, Api, Bgp, Config, Dataplane, Encapsulation, Metrics, Node, State, defaults,
};
use crate::raw::{Field, RawBgp, RawConfig, RawDataplane, RawNode, suggest};
use crate::values;

/// Longest unix socket path (`sun_path` is 108 bytes with its NUL).
const SUN_PATH_MAX: usize = 107;
/// Linux IFNAMSIZ (16) minus the NUL.
const IFNAME_MAX: usize = 15;
/// The veth name is the prefix plus this many hex characters (DESIGN.md §4).
const VETH_HASH_LEN: usize = 11;
/// RFC 6793 §9: AS_TRANS, a placeholder that must not be configured.
pub(crate) const AS_TRANS: i64 = 23456;

/// Kernel route protocol numbers already owned by the kernel or by another
/// routing daemon (linux/rtnetlink.h): using one would make tortie delete (or
/// adopt) routes that are not its own.
const RESERVED_PROTOCOLS: &[(u8, &str)] = &[
    (0, "unspec"),
    (1, "redirect"),
    (2, "kernel"),
    (3, "boot"),
    (4, "static"),
    (8, "gated"),
    (9, "ra"),
    (10, "mrt"),
    (11, "zebra"),
    (12, "bird"),
    (13, "dnrouted"),
    (14, "xorp"),
    (15, "ntk"),
    (16, "dhcp"),
    (17, "mrouted"),
    (18, "keepalived"),
    (42, "babel"),
    (99, "openr"),
    (186, "bgp (FRR)"),
    (187, "isis (FRR)"),
    (188, "ospf (FRR)"),
    (189, "rip (FRR)"),
    (192, "eigrp (FRR)"),
];

/// Resolves everything; `hostname` supplies the default node name.
pub(crate) fn resolve(
    loc: &mut Locator<'_>,
    raw: &RawConfig,
    hostname: &dyn Fn() -> Option<String>,
) -> Option<Config> {
    let node_span = raw.node_span.clone().unwrap_or(0..0);
    if raw.node_span.is_none() {
        loc.at(
            0..0,
            "the [node] table is missing",
            "every node needs at least [node] address, asn and pod_cidr",
        );
    }
    let node = crate::node::resolve(
        loc,
        &raw.node,
        node_span.clone(),
        hostname,
        !raw.peers.is_empty(),
    );
    let bgp = bgp(loc, &raw.bgp);
    let mut dataplane = dataplane(loc, &raw.dataplane);
    let api = Api {
        socket: path_or(
            loc,
            &raw.api.socket,
            "api.socket",
            defaults::API_SOCKET,
            Some(SUN_PATH_MAX),
        ),
    };
    let metrics = Metrics {
        listen: match &raw.metrics.listen {
            None => defaults::METRICS_LISTEN.parse().ok(),
            Some(v) if v.get_ref().is_empty() => None,
            Some(v) => match values::socket_addr("metrics.listen", v.get_ref()) {
                Ok(a) if a.port() == 0 => {
                    loc.at(
                        v.span(),
                        format!("metrics.listen `{}` has port 0", v.get_ref()),
                        "pick a fixed port so Prometheus can find it (default 9642); \"\" disables metrics",
                    );
                    None
                }
                Ok(a) => Some(a),
                Err((m, h)) => {
                    loc.at(v.span(), m, &h);
                    None
                }
            },
        },
    };
    let state = State {
        dir: path_or(loc, &raw.state.dir, "state.dir", defaults::STATE_DIR, None),
    };
    if let (Some(node), Some(dp)) = (&node, &dataplane) {
        check_pool_size(loc, node, dp, &raw.node);
    }
    let (nat_outgoing, cluster_cidrs) = crate::nat::resolve(loc, &raw.dataplane, node.as_ref());
    if let Some(dp) = &mut dataplane {
        dp.nat_outgoing = nat_outgoing;
        dp.cluster_cidrs = cluster_cidrs;
    }
    let policy = crate::policy::resolve(loc, &raw.filters, &raw.bgp);
    let peers = crate::peers::resolve(loc, raw, node.as_ref(), &bgp, &policy);
    match (node, dataplane) {
        (Some(node), Some(dataplane)) if loc.problems.is_empty() => Some(Config {
            node,
            bgp,
            peers,
            dataplane,
            api,
            metrics,
            state,
            policy,
        }),
        _ => None,
    }
}

/// A 4-octet AS number (RFC 6793): 1..=4294967295, not AS_TRANS.
pub(crate) fn asn(
    loc: &mut Locator<'_>,
    field: &Field<i64>,
    key: &str,
    section: &Range<usize>,
) -> Option<u32> {
    let Some(v) = field else {
        loc.missing(
            section.clone(),
            key.rsplit('.').next().unwrap_or(key),
            format!("{key} is missing"),
            "add the AS number, e.g. asn = 64512 (private ASNs: 64512-65534, 4200000000-4294967294)",
        );
        return None;
    };
    let n = *v.get_ref();
    let hint = if n == AS_TRANS {
        "23456 is AS_TRANS, a placeholder for 4-octet ASNs (RFC 6793); use the real AS number"
    } else {
        "AS numbers go from 1 to 4294967295; private ones: 64512-65534, 4200000000-4294967294"
    };
    match u32::try_from(n) {
        Ok(a) if a != 0 && n != AS_TRANS => Some(a),
        _ => {
            loc.at(
                v.span(),
                format!("{key} {n} is not a valid AS number"),
                hint,
            );
            None
        }
    }
}

pub(crate) fn check_name(loc: &mut Locator<'_>, v: &Spanned<String>, key: &str) {
    let s = v.get_ref();
    if s.trim().is_empty() || s.chars().any(char::is_control) || s.len() > 64 {
        loc.at(
            v.span(),
            format!(
                "{key} `{}` is empty, too long or has control characters",
                s.escape_debug()
            ),
            "use up to 64 printable characters, e.g. \"tor1\"",
        );
    }
}

/// An integer checked by `ok`, or `default` when the key is absent.
pub(crate) fn int<T: TryFrom<i64> + Copy>(
    loc: &mut Locator<'_>,
    field: &Field<i64>,
    default: T,
    ok: impl Fn(i64) -> bool,
    message: impl Fn(i64) -> String,
    hint: &str,
) -> T {
    let Some(v) = field else {
        return default;
    };
    let n = *v.get_ref();
    match T::try_from(n) {
        Ok(t) if ok(n) => t,
        _ => {
            loc.at(v.span(), message(n), hint);
            default
        }
    }
}

/// RFC 4271 §4.2: the Hold Time is 0 or at least 3 seconds.
pub(crate) fn hold_time_ok(n: i64) -> bool {
    n == 0 || (3..=65535).contains(&n)
}

pub(crate) const HOLD_TIME_HINT: &str =
    "RFC 4271 §4.2: 0 (no keepalives) or 3 to 65535 seconds; 90 is usual, 9-30 for fast failover";

fn bgp(loc: &mut Locator<'_>, raw: &RawBgp) -> Bgp {
    let listen_port = int(
        loc,
        &raw.listen_port,
        defaults::LISTEN_PORT,
        |n| (0..=65535).contains(&n),
        |n| format!("bgp.listen_port {n} is out of range"),
        "0 to 65535; 179 is BGP's port, 0 means do not listen",
    );
    // `::` with IPV6_V6ONLY off: one listener for IPv6 and (IPv4-mapped)
    // IPv4 peers; the agent falls back to 0.0.0.0 when the kernel has no IPv6.
    let listen_address = match &raw.listen_address {
        None => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        Some(v) => match values::ip("bgp.listen_address", v.get_ref()) {
            Ok(a) => a,
            Err((m, h)) => {
                loc.at(v.span(), m, &h);
                IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
            }
        },
    };
    let hold_time = int(
        loc,
        &raw.hold_time,
        defaults::HOLD_TIME,
        hold_time_ok,
        |n| format!("bgp.hold_time {n} is not a valid hold time"),
        HOLD_TIME_HINT,
    );
    let connect_retry = int(
        loc,
        &raw.connect_retry,
        defaults::CONNECT_RETRY,
        |n| (1..=65535).contains(&n),
        |n| format!("bgp.connect_retry {n} is out of range"),
        "seconds between connection attempts, 1 to 65535 (failures back off from there)",
    );
    let restart_time = int(
        loc,
        &raw.restart_time,
        defaults::RESTART_TIME,
        |n| (0..=4095).contains(&n),
        |n| format!("bgp.restart_time {n} is out of range"),
        "the graceful restart capability has 12 bits for it (RFC 4724 §3): 0 to 4095 seconds",
    );
    let advertise = match &raw.advertise {
        None => Advertise::Block,
        Some(v) => match v.get_ref().as_str() {
            "block" => Advertise::Block,
            "hosts" => Advertise::Hosts,
            other => {
                loc.at(
                    v.span(),
                    format!("bgp.advertise `{other}` is not one of \"block\", \"hosts\""),
                    &choice_hint(
                        other,
                        &["block", "hosts"],
                        "\"block\": the block plus /32s outside it; \"hosts\": every container /32 too",
                    ),
                );
                Advertise::Block
            }
        },
    };
    Bgp {
        listen_port,
        listen_address,
        hold_time,
        connect_retry,
        graceful_restart: raw
            .graceful_restart
            .as_ref()
            .map_or(defaults::GRACEFUL_RESTART, |v| *v.get_ref()),
        restart_time,
        advertise,
    }
}

/// "did you mean" for a typo, else what the choices mean.
fn choice_hint(word: &str, choices: &[&str], meaning: &str) -> String {
    match suggest(word, choices) {
        Some(s) => format!("did you mean \"{s}\"?"),
        None => meaning.to_string(),
    }
}

fn dataplane(loc: &mut Locator<'_>, raw: &RawDataplane) -> Option<Dataplane> {
    let encapsulation = match &raw.encapsulation {
        None => Some(Encapsulation::None),
        Some(v) => match v.get_ref().parse::<Encapsulation>() {
            Ok(e) => Some(e),
            Err(()) => {
                let other = v.get_ref();
                let names = Encapsulation::NAMES.map(|n| format!("\"{n}\"")).join(", ");
                loc.at(
                    v.span(),
                    format!("dataplane.encapsulation `{other}` is not one of {names}"),
                    &choice_hint(
                        other,
                        &Encapsulation::NAMES,
                        "\"none\": plain routing; \"ipip\"/\"vxlan\": IP-in-IP/VXLAN to every node; \"…-cross-subnet\": only to nodes outside this node's subnet",
                    ),
                );
                None
            }
        },
    };
    let vxlan_vni = int(
        loc,
        &raw.vxlan_vni,
        defaults::VXLAN_VNI,
        |n| (1..=0xff_ffff).contains(&n),
        |n| format!("dataplane.vxlan_vni {n} is out of range"),
        "a VXLAN Network Identifier has 24 bits (RFC 7348 §5): 1 to 16777215",
    );
    let vxlan_port = int(
        loc,
        &raw.vxlan_port,
        defaults::VXLAN_PORT,
        |n| (1..=65535).contains(&n),
        |n| format!("dataplane.vxlan_port {n} is out of range"),
        "a UDP port, 1 to 65535; IANA's VXLAN port is 4789",
    );
    let mtu = int(
        loc,
        &raw.mtu,
        defaults::MTU,
        |n| n == 0 || (576..=65535).contains(&n),
        |n| format!("dataplane.mtu {n} is out of range"),
        "0 (the underlay MTU minus the encapsulation overhead) or 576 to 65535",
    );
    let route_protocol = match &raw.route_protocol {
        None => defaults::ROUTE_PROTOCOL,
        Some(v) => {
            let n = *v.get_ref();
            match u8::try_from(n) {
                Err(_) => {
                    loc.at(
                        v.span(),
                        format!("dataplane.route_protocol {n} is out of range"),
                        "a kernel route protocol number is 0 to 255; tortie's default is 149",
                    );
                    defaults::ROUTE_PROTOCOL
                }
                Ok(p) => match RESERVED_PROTOCOLS.iter().find(|(r, _)| *r == p) {
                    Some((_, owner)) => {
                        loc.at(
                            v.span(),
                            format!("dataplane.route_protocol {p} belongs to \"{owner}\""),
                            "tortie deletes routes of its protocol that it did not ask for: pick an unused number such as 149 (see /etc/iproute2/rt_protos)",
                        );
                        defaults::ROUTE_PROTOCOL
                    }
                    None => p,
                },
            }
        }
    };
    let veth_prefix = match &raw.veth_prefix {
        None => defaults::VETH_PREFIX.to_string(),
        Some(v) => {
            let s = v.get_ref();
            let max = IFNAME_MAX - VETH_HASH_LEN;
            if s.is_empty() || s.len() > max {
                loc.at(
                    v.span(),
                    format!("dataplane.veth_prefix `{s}` must have 1 to {max} characters"),
                    &format!(
                        "interface names have at most {IFNAME_MAX} characters and {VETH_HASH_LEN} are the container id's hash"
                    ),
                );
            } else if !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                loc.at(
                    v.span(),
                    format!(
                        "dataplane.veth_prefix `{}` has characters not allowed in interface names",
                        s.escape_debug()
                    ),
                    "use letters, digits, '-' or '_', e.g. \"tt\"",
                );
            }
            s.clone()
        }
    };
    Some(Dataplane {
        encapsulation: encapsulation?,
        vxlan_vni,
        vxlan_port,
        mtu,
        route_protocol,
        veth_prefix,
        nexthop_objects: raw.nexthop_objects.as_ref().is_none_or(|v| *v.get_ref()),
        nat_outgoing: false,
        cluster_cidrs: Vec::new(),
    })
}

/// The IPv4 blocks must leave at least one address for containers once
/// IP-in-IP has taken one for `tunl0` (IPv6 /128 blocks: see `node`).
fn check_pool_size(loc: &mut Locator<'_>, node: &Node, dp: &Dataplane, raw: &RawNode) {
    let reserved = u64::from(dp.encapsulation.uses_ipip());
    let mut v4 = node.blocks_v4().peekable();
    if v4.peek().is_none() {
        return;
    }
    let size: u64 = v4.map(|b| 1u64 << (32 - u32::from(b.prefix()))).sum();
    if size <= reserved
        && let Some(v) = &raw.pod_cidr
    {
        loc.at(
            v.span(),
            "node.pod_cidr leaves no IPv4 address for containers: IP-in-IP takes one for tunl0",
            "use a larger block, e.g. a /26",
        );
    }
}

fn path_or(
    loc: &mut Locator<'_>,
    field: &Field<String>,
    key: &str,
    default: &str,
    max_len: Option<usize>,
) -> std::path::PathBuf {
    let Some(v) = field else {
        return default.into();
    };
    match values::absolute_path(key, v.get_ref(), default) {
        Ok(p) => {
            if let Some(max) = max_len
                && v.get_ref().len() > max
            {
                loc.at(
                    v.span(),
                    format!(
                        "{key} is {} bytes long; unix socket paths have at most {max}",
                        v.get_ref().len()
                    ),
                    &format!("use a shorter path, e.g. \"{default}\""),
                );
            }
            p
        }
        Err((m, h)) => {
            loc.at(v.span(), m, &h);
            default.into()
        }
    }
}
