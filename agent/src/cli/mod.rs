//! The `tortie` command line: clap definitions and the human-readable output
//! of `status` and `routes` (`-o json` prints the API's JSON unchanged).
//!
//! Data flow: `bin/tortie.rs` parses [`Cli`], runs the daemon for `run`, the
//! config check for `check`, and for the other subcommands calls the API
//! through [`crate::api::client`] and renders the answer with the functions here.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand, ValueEnum};

use crate::api::{AttachResult, PeerView, StatusView};
use crate::logging::LogFormat;

mod routes;
pub use routes::render_routes;

/// tortie: routed layer-3 container networking with BGP.
#[derive(Debug, Parser)]
#[command(name = "tortie", version, long_about = None)]
pub struct Cli {
    /// The agent's API socket (`api.socket` in the config); before or after the subcommand.
    #[arg(long, global = true, env = "TORTIE_SOCKET", default_value = crate::api::DEFAULT_SOCKET, value_name = "PATH")]
    pub socket: PathBuf,
    /// Output format of status, routes and attach; before or after the subcommand.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Cmd,
}

/// Output format of `status`, `routes` and `attach`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    #[default]
    Table,
    /// The API's JSON, for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the node agent in the foreground (what the systemd unit starts).
    Run {
        /// The configuration file.
        #[arg(
            long,
            short = 'c',
            value_name = "FILE",
            default_value = "/etc/tortie/tortie.toml"
        )]
        config: PathBuf,
        /// Log line format; the level comes from RUST_LOG (default: info).
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Do not install routes learned over BGP into the kernel (BGP and
        /// container attach work as usual): a control-plane-only speaker,
        /// like FRR's `bgpd --no_kernel` or BIRD without kernel export.
        /// For benchmarks and route-server-like nodes; a node that forwards
        /// container traffic needs them.
        #[arg(long)]
        no_kernel: bool,
    },
    /// Validate a configuration file: exit 0 when valid, 2 when not (every problem is printed).
    Check {
        /// The configuration file.
        #[arg(
            long,
            short = 'c',
            value_name = "FILE",
            default_value = "/etc/tortie/tortie.toml"
        )]
        config: PathBuf,
    },
    /// Show the BGP peers (like `birdc show protocols`); with PEER, that peer in full (like `birdc show protocols all NAME`).
    Status {
        /// A peer's name or address.
        #[arg(value_name = "PEER")]
        peer: Option<String>,
    },
    /// Show the Loc-RIB: prefixes, next hops, AS paths, and whether installed
    /// in the kernel; with PREFIX, every path of that prefix (filtered ones
    /// too, with what refused them).
    Routes {
        /// One prefix, e.g. 10.244.2.0/26.
        prefix: Option<String>,
        /// Only prefixes with paths the import guard or a filter refused.
        #[arg(long, conflicts_with = "prefix")]
        filtered: bool,
    },
    /// Attach a container (network namespace) and print its address.
    Attach {
        /// Path of the container's network namespace, e.g. /run/netns/c1.
        #[arg(long, value_name = "PATH")]
        netns: String,
        /// Attachment id, unique per container interface ('/' is reserved for CNI ids).
        #[arg(long, value_name = "ID")]
        id: String,
        /// Interface name inside the container.
        #[arg(long, default_value = "eth0", value_name = "NAME")]
        ifname: String,
        /// Request these addresses (one per family, comma-separated:
        /// 10.244.1.5,fd00:10:244:1::5) instead of the next free ones of the
        /// blocks; a family not given is allocated.
        #[arg(long, value_name = "ADDR[,ADDR6]")]
        ip: Option<String>,
    },
    /// Detach a container: remove its veth, withdraw its route, release its address.
    Detach {
        /// Attachment id given to `attach`.
        #[arg(long, value_name = "ID")]
        id: String,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// "2026-11-23 19:40:00" (UTC) for a Unix time.
pub fn format_utc(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let secs = unix % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// "3d04h", "02:13:07" style age of a Unix time relative to `now`.
pub fn format_age(since: u64, now: u64) -> String {
    let d = now.saturating_sub(since);
    if d >= 86_400 {
        format!("{}d{:02}h", d / 86_400, d % 86_400 / 3600)
    } else {
        format!("{:02}:{:02}:{:02}", d / 3600, d % 3600 / 60, d % 60)
    }
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Renders rows as left-aligned columns separated by two spaces.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            l.push_str(c);
            if i < last {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(c.chars().count())
                    + 2;
                l.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

/// `tortie status`: a node line, then one row per peer.
pub fn render_status(s: &StatusView, now: u64) -> String {
    let converged = if s.converged {
        "converged"
    } else {
        "converging"
    };
    let mut out = format!(
        "node {} AS{} router-id {} block {} ({}, {} containers, {} addresses free)\n",
        s.node.name,
        s.node.asn,
        s.node.router_id,
        if s.node.pod_cidrs.is_empty() {
            s.node.pod_cidr.clone()
        } else {
            s.node.pod_cidrs.join(", ")
        },
        converged,
        s.containers,
        s.ipam.free
    );
    out.push_str(&render_peers(&s.peers, now));
    out
}

/// When the session last came up or went down (older agents: the state's).
fn up_down_since(p: &PeerView) -> u64 {
    if p.up_down_since > 0 {
        p.up_down_since
    } else {
        p.since
    }
}

/// "iBGP", "eBGP", "iBGP RR client" for the table.
fn short_type(p: &PeerView) -> &str {
    match p.session_type.as_str() {
        "iBGP, route reflector client" => "iBGP RR client",
        "" if p.asn == p.local_asn => "iBGP",
        "" => "eBGP",
        t => t,
    }
}

pub fn render_peers(peers: &[PeerView], now: u64) -> String {
    let rows: Vec<Vec<String>> = peers
        .iter()
        .map(|p| {
            let since = up_down_since(p);
            vec![
                p.address.clone(),
                p.name.clone(),
                p.asn.to_string(),
                short_type(p).to_string(),
                families_short(p),
                p.state.clone(),
                format!("{} ({})", format_utc(since), format_age(since, now)),
                format!(
                    "{}/{}/{}/{}",
                    p.routes_received, p.routes_accepted, p.routes_filtered, p.routes_advertised
                ),
                peer_bfd(p),
                peer_info(p),
            ]
        })
        .collect();
    table(
        &[
            "Peer",
            "Name",
            "ASN",
            "Type",
            "Families",
            "State",
            "Since",
            "Rcvd/Acc/Filt/Adv",
            "BFD",
            "Info",
        ],
        &rows,
    )
}

/// The Families column: the families the session carries ("ipv4,ipv6"),
/// "-" before it negotiated any.
fn families_short(p: &PeerView) -> String {
    if p.families.is_empty() {
        return "-".into();
    }
    p.families
        .iter()
        .map(|f| f.trim_end_matches("-unicast"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The BFD column: the state, and why it went down while it is not Up.
fn peer_bfd(p: &PeerView) -> String {
    match &p.bfd {
        None => "-".into(),
        Some(b) if b.state == "Up" || b.diagnostic == "no diagnostic" => b.state.clone(),
        Some(b) => format!("{} ({})", b.state, b.diagnostic),
    }
}

/// The Info column: the last error only while the session is down (an agent
/// fills `info` that way; older ones sent the error whatever the state).
fn peer_info(p: &PeerView) -> String {
    if p.state == "Established" {
        p.warning.clone().unwrap_or_default()
    } else {
        p.info
            .clone()
            .or_else(|| p.last_error.clone())
            .or_else(|| p.warning.clone())
            .unwrap_or_default()
    }
}

/// The peer whose name or address is `key`.
pub fn find_peer<'a>(peers: &'a [PeerView], key: &str) -> Result<&'a PeerView, String> {
    let wanted = key.parse::<std::net::IpAddr>().ok();
    peers
        .iter()
        .find(|p| p.name == key)
        .or_else(|| {
            peers
                .iter()
                .find(|p| wanted.is_some() && p.address.parse().ok() == wanted)
        })
        .ok_or_else(|| {
            let known: Vec<&str> = peers.iter().map(|p| p.name.as_str()).collect();
            if known.is_empty() {
                format!("no peer `{key}`: no peer is configured")
            } else {
                format!("no peer `{key}`; the peers are: {}", known.join(", "))
            }
        })
}

/// `tortie status PEER`: one peer in full, like `birdc show protocols all NAME`.
pub fn render_peer_detail(p: &PeerView, now: u64) -> String {
    let at = |t: u64| format!("{} ({} ago)", format_utc(t), format_age(t, now));
    let mut rows: Vec<(&str, String)> = Vec::new();
    rows.push(("Type", p.session_type.clone()));
    rows.push(("State", format!("{} since {}", p.state, at(p.since))));
    let up = if p.state == "Established" {
        "up"
    } else {
        "down"
    };
    rows.push(("Session", format!("{up} since {}", at(up_down_since(p)))));
    let info = peer_info(p);
    if !info.is_empty() {
        rows.push(("Info", info.clone()));
    }
    if let Some(w) = p.warning.as_ref().filter(|w| !info.contains(w.as_str())) {
        rows.push(("Warning", w.clone()));
    }
    rows.push(("Neighbor AS", p.asn.to_string()));
    rows.push(("Local AS", p.local_asn.to_string()));
    if let Some(id) = &p.remote_id {
        rows.push(("Neighbor ID", id.clone()));
    }
    if let Some(l) = &p.local_endpoint {
        rows.push(("Local address", l.clone()));
    }
    rows.push((
        "Neighbor address",
        p.remote_endpoint
            .clone()
            .unwrap_or_else(|| p.address.clone()),
    ));
    if let Some(h) = p.hold_time {
        let ka = p
            .keepalive_time
            .map_or(String::new(), |k| format!(", keepalive {k} s"));
        rows.push(("Timers", format!("hold {h} s{ka}")));
    }
    if !p.families.is_empty() {
        rows.push(("Families", p.families.join(", ")));
    }
    if !p.capabilities.is_empty() {
        rows.push(("Capabilities", p.capabilities.join(", ")));
    }
    rows.push((
        "Routes",
        format!(
            "{} received, {} accepted, {} filtered, {} advertised",
            p.routes_received, p.routes_accepted, p.routes_filtered, p.routes_advertised
        ),
    ));
    if p.families.len() > 1 || p.families.iter().any(|f| f.starts_with("ipv6")) {
        // Per family, as `calicoctl node status` splits IPv4 and IPv6.
        rows.push((
            "Routes by family",
            format!(
                "ipv4 {} accepted, {} advertised; ipv6 {} accepted, {} advertised",
                p.routes_accepted.saturating_sub(p.routes_accepted_ipv6),
                p.routes_advertised.saturating_sub(p.routes_advertised_ipv6),
                p.routes_accepted_ipv6,
                p.routes_advertised_ipv6
            ),
        ));
    }
    let counts = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !p.messages_received.is_empty() {
        rows.push(("Messages received", counts(&p.messages_received)));
    }
    if !p.messages_sent.is_empty() {
        rows.push(("Messages sent", counts(&p.messages_sent)));
    }
    rows.push((
        "Established",
        format!("{} time(s)", p.established_transitions),
    ));
    if let Some(b) = &p.bfd {
        rows.push((
            "BFD",
            format!(
                "{} since {} (peer {}, {}, {} changes)",
                b.state,
                at(b.since),
                b.remote_state,
                b.diagnostic,
                b.transitions
            ),
        ));
    }
    if let Some(d) = &p.down_reason {
        rows.push(("Last down", format!("{} at {}", d.text, at(d.at))));
    }
    if let Some(e) = &p.last_error {
        let when = p
            .last_error_at
            .map_or(String::new(), |t| format!(" at {}", at(t)));
        rows.push(("Last error", format!("{e}{when}")));
    }
    if let Some(n) = &p.notification_received {
        rows.push(("NOTIFICATION in", format!("{} at {}", n.text, at(n.at))));
    }
    if let Some(n) = &p.notification_sent {
        rows.push(("NOTIFICATION out", format!("{} at {}", n.text, at(n.at))));
    }
    // Fixed, so that every peer's values line up ("Messages received:").
    let width = 18;
    let mut out = format!("{} ({})\n", p.name, p.address);
    for (k, v) in rows {
        out.push_str(&format!("  {:<width$} {v}\n", format!("{k}:")));
    }
    out
}

/// `tortie routes`: one row per path; the prefix and kernel flag on the first.
/// `tortie attach` without `-o json`: the addresses, one per line, IPv4
/// first (an older agent: its one address).
pub fn render_attach(a: &AttachResult) -> String {
    if a.addresses.is_empty() {
        return format!("{}\n", a.ip);
    }
    a.addresses
        .iter()
        .map(|c| format!("{}\n", c.address.split('/').next().unwrap_or(&c.address)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(format_utc(1_795_462_822), "2026-11-23 19:40:22");
    }

    #[test]
    fn an_old_error_is_not_shown_next_to_established() {
        let mut p = PeerView {
            address: "192.0.2.1".into(),
            name: "tor1".into(),
            state: "Established".into(),
            info: Some("connect: Connection refused".into()),
            last_error: Some("connect: Connection refused".into()),
            ..Default::default()
        };
        assert!(!render_peers(std::slice::from_ref(&p), 60).contains("refused"));
        p.state = "Active".into();
        p.info = None;
        assert!(render_peers(&[p], 60).contains("connect: Connection refused"));
    }

    #[test]
    fn ages() {
        assert_eq!(format_age(100, 100 + 3 * 3600 + 61), "03:01:01");
        assert_eq!(format_age(0, 2 * 86_400 + 4 * 3600), "2d04h");
        assert_eq!(format_age(200, 100), "00:00:00");
    }

    /// Two peers as an agent reports them: one up, one down after a
    /// NOTIFICATION (the info an agent computes is taken as given).
    fn two_peers() -> Vec<PeerView> {
        let msgs = |o, u, n, k| {
            [
                ("keepalive", k),
                ("notification", n),
                ("open", o),
                ("route_refresh", 0),
                ("update", u),
            ]
            .into_iter()
            .map(|(t, c)| (t.to_string(), c))
            .collect()
        };
        vec![
            PeerView {
                address: "192.0.2.1".into(),
                name: "tor1".into(),
                asn: 65001,
                local_asn: 64512,
                state: "Established".into(),
                since: 1_000,
                up_down_since: 1_000,
                session_type: "eBGP".into(),
                routes_received: 12,
                routes_accepted: 10,
                routes_filtered: 2,
                routes_advertised: 3,
                remote_id: Some("192.0.2.1".into()),
                hold_time: Some(90),
                keepalive_time: Some(30),
                established_transitions: 2,
                messages_received: msgs(2, 7, 1, 40),
                messages_sent: msgs(2, 4, 0, 41),
                local_endpoint: Some("192.0.2.11:40123".into()),
                remote_endpoint: Some("192.0.2.1:179".into()),
                families: vec!["ipv4-unicast".into()],
                capabilities: vec![
                    "multiprotocol ipv4-unicast".into(),
                    "4-octet AS".into(),
                    "route refresh".into(),
                ],
                last_error: Some("connection lost: connection closed by peer".into()),
                last_error_at: Some(900),
                down_reason: Some(crate::api::EventView {
                    text: "connection lost: connection closed by peer".into(),
                    at: 900,
                }),
                ..Default::default()
            },
            PeerView {
                address: "192.0.2.2".into(),
                name: "gobgp".into(),
                asn: 64512,
                local_asn: 64512,
                state: "Active".into(),
                since: 3_590,
                up_down_since: 3_000,
                session_type: "iBGP, route reflector client".into(),
                established_transitions: 1,
                info: Some(
                    "received NOTIFICATION 6/4 (Cease: Administrative Reset); then connection lost"
                        .into(),
                ),
                last_error: Some("connection lost".into()),
                last_error_at: Some(3_590),
                notification_received: Some(crate::api::EventView {
                    text: "6/4 (Cease: Administrative Reset)".into(),
                    at: 3_000,
                }),
                ..Default::default()
            },
        ]
    }

    /// Snapshot of `tortie status`'s peer table.
    #[test]
    fn peer_table_snapshot() {
        let t = render_peers(&two_peers(), 3_600);
        assert_eq!(
            t,
            "\
Peer       Name   ASN    Type            Families  State        Since                           Rcvd/Acc/Filt/Adv  BFD  Info
192.0.2.1  tor1   65001  eBGP            ipv4      Established  1970-01-01 00:16:40 (00:43:20)  12/10/2/3          -
192.0.2.2  gobgp  64512  iBGP RR client  -         Active       1970-01-01 00:50:00 (00:10:00)  0/0/0/0            -    received NOTIFICATION 6/4 (Cease: Administrative Reset); then connection lost
"
        );
    }

    /// Snapshot of `tortie status PEER`, both peers.
    #[test]
    fn peer_detail_snapshot() {
        let peers = two_peers();
        assert_eq!(
            render_peer_detail(&peers[0], 3_600),
            "\
tor1 (192.0.2.1)
  Type:              eBGP
  State:             Established since 1970-01-01 00:16:40 (00:43:20 ago)
  Session:           up since 1970-01-01 00:16:40 (00:43:20 ago)
  Neighbor AS:       65001
  Local AS:          64512
  Neighbor ID:       192.0.2.1
  Local address:     192.0.2.11:40123
  Neighbor address:  192.0.2.1:179
  Timers:            hold 90 s, keepalive 30 s
  Families:          ipv4-unicast
  Capabilities:      multiprotocol ipv4-unicast, 4-octet AS, route refresh
  Routes:            12 received, 10 accepted, 2 filtered, 3 advertised
  Messages received: keepalive 40, notification 1, open 2, route_refresh 0, update 7
  Messages sent:     keepalive 41, notification 0, open 2, route_refresh 0, update 4
  Established:       2 time(s)
  Last down:         connection lost: connection closed by peer at 1970-01-01 00:15:00 (00:45:00 ago)
  Last error:        connection lost: connection closed by peer at 1970-01-01 00:15:00 (00:45:00 ago)
"
        );
        assert_eq!(
            render_peer_detail(&peers[1], 3_600),
            "\
gobgp (192.0.2.2)
  Type:              iBGP, route reflector client
  State:             Active since 1970-01-01 00:59:50 (00:00:10 ago)
  Session:           down since 1970-01-01 00:50:00 (00:10:00 ago)
  Info:              received NOTIFICATION 6/4 (Cease: Administrative Reset); then connection lost
  Neighbor AS:       64512
  Local AS:          64512
  Neighbor address:  192.0.2.2
  Routes:            0 received, 0 accepted, 0 filtered, 0 advertised
  Established:       1 time(s)
  Last error:        connection lost at 1970-01-01 00:59:50 (00:00:10 ago)
  NOTIFICATION in:   6/4 (Cease: Administrative Reset) at 1970-01-01 00:50:00 (00:10:00 ago)
"
        );
    }

    #[test]
    fn a_peer_is_found_by_name_or_address() {
        let peers = two_peers();
        assert_eq!(find_peer(&peers, "gobgp").unwrap().address, "192.0.2.2");
        assert_eq!(find_peer(&peers, "192.0.2.1").unwrap().name, "tor1");
        assert_eq!(
            find_peer(&peers, "tor9").unwrap_err(),
            "no peer `tor9`; the peers are: tor1, gobgp"
        );
    }

    #[test]
    fn cli_parses() {
        let c = Cli::try_parse_from([
            "tortie",
            "attach",
            "--netns",
            "/run/netns/c1",
            "--id",
            "c1",
            "-o",
            "json",
        ])
        .unwrap();
        match c.command {
            Cmd::Attach { ifname, .. } => assert_eq!(ifname, "eth0"),
            other => panic!("parsed {other:?}"),
        }
        assert_eq!(c.output, Output::Json);
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// `--socket` and `-o` are accepted before or after the subcommand.
    #[test]
    fn global_flags_go_anywhere() {
        for args in [
            &["tortie", "--socket", "/s", "-o", "json", "status"][..],
            &["tortie", "status", "--socket", "/s", "-o", "json"],
            &["tortie", "-o", "json", "status", "--socket", "/s"],
            &["tortie", "--socket=/s", "routes", "--output", "json"],
        ] {
            let c = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(c.socket, PathBuf::from("/s"), "{args:?}");
            assert_eq!(c.output, Output::Json, "{args:?}");
        }
    }
}
