//! BIRD 2 in a namespace: configuration from a struct, its own control socket
//! and pid file, and `birdc` output parsed into protocol states and routes.
//!
//! Run with `bird -f` (foreground) so the [`Daemon`] guard owns the PID.
//! Timers are shortened (connect delay 1 s, error wait 1–5 s) so tests do not
//! sit in BIRD's defaults (5 s, 60–300 s).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::netns::{Netns, run};
use crate::process::Daemon;

/// One `protocol bgp` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BirdNeighbor {
    /// Protocol name (`show protocols NAME`).
    pub name: String,
    pub address: IpAddr,
    pub asn: u32,
    pub port: u16,
    pub passive: bool,
    pub password: Option<String>,
    pub graceful_restart: bool,
    pub hold_time: Option<u16>,
    pub rr_client: bool,
    /// Set the next hop to ourselves on export (default for eBGP anyway).
    pub next_hop_self: bool,
    /// Declare the protocol `disabled;` (enable later with [`Bird::enable`]).
    pub disabled: bool,
    /// `bfd on;`: the session follows a BFD session (needs [`BirdConfig::bfd`]).
    pub bfd: bool,
    /// `bfd graceful;` instead: a BFD Down starts a graceful restart (routes
    /// kept as stale) rather than a hard stop.
    pub bfd_graceful: bool,
    /// `multihop N;` (and `gateway recursive`): the neighbour is N hops away.
    pub multihop: Option<u8>,
    /// An `ipv6` channel too (IPv6 unicast, RFC 4760), exporting with this
    /// global next hop (`next hop address`; BIRD adds its link-local one,
    /// RFC 2545 §3). Over an IPv4 session the address must be given.
    pub ipv6_next_hop: Option<std::net::Ipv6Addr>,
    /// Over an IPv6 session, the `ipv4` channel is rendered only with this
    /// next hop (`next hop address`, as BIRD needs for IPv4 over IPv6).
    pub ipv4_next_hop: Option<Ipv4Addr>,
    /// `export none;` on its channels instead of `export all;` (a peer
    /// that only sends, as tortie's default `ebgp_requires_policy` keeps
    /// eBGP routes from other eBGP peers).
    pub export_none: bool,
}

impl BirdNeighbor {
    pub fn new(name: &str, address: IpAddr, asn: u32) -> Self {
        BirdNeighbor {
            name: name.to_string(),
            address,
            asn,
            port: 179,
            passive: false,
            password: None,
            graceful_restart: false,
            hold_time: None,
            rr_client: false,
            next_hop_self: false,
            disabled: false,
            bfd: false,
            bfd_graceful: false,
            multihop: None,
            ipv6_next_hop: None,
            ipv4_next_hop: None,
            export_none: false,
        }
    }
}

/// A whole `bird.conf`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BirdConfig {
    pub router_id: Ipv4Addr,
    pub local_asn: u32,
    pub neighbors: Vec<BirdNeighbor>,
    /// Prefixes originated through a static protocol (`route P blackhole;`),
    /// IPv4 or IPv6 (one static protocol per family).
    pub static_routes: Vec<String>,
    /// Export BGP routes into the namespace's kernel table.
    pub kernel_export: bool,
    /// `protocol bfd` with `(interval ms, multiplier)` on every interface.
    pub bfd: Option<(u32, u8)>,
}

impl BirdConfig {
    pub fn new(router_id: Ipv4Addr, local_asn: u32) -> Self {
        BirdConfig {
            router_id,
            local_asn,
            neighbors: Vec::new(),
            static_routes: Vec::new(),
            kernel_export: false,
            bfd: None,
        }
    }

    /// The configuration text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "router id {};", self.router_id);
        s.push_str("log stderr all;\n");
        s.push_str("protocol device { scan time 10; }\n");
        if self.kernel_export {
            s.push_str(
                "protocol kernel {\n  merge paths on;\n  ipv4 { import none; export filter { if source = RTS_BGP then accept; reject; }; };\n}\n\
                 protocol kernel {\n  merge paths on;\n  ipv6 { import none; export filter { if source = RTS_BGP then accept; reject; }; };\n}\n",
            );
        }
        for (name, v6) in [("originated", false), ("originated6", true)] {
            let routes: Vec<&String> = self
                .static_routes
                .iter()
                .filter(|r| r.contains(':') == v6)
                .collect();
            if routes.is_empty() {
                continue;
            }
            let family = if v6 { "ipv6" } else { "ipv4" };
            let _ = writeln!(s, "protocol static {name} {{\n  {family};");
            for r in routes {
                let _ = writeln!(s, "  route {r} blackhole;");
            }
            s.push_str("}\n");
        }
        if let Some((interval, mult)) = self.bfd {
            let _ = writeln!(
                s,
                "protocol bfd {{\n  interface \"*\" {{ interval {interval} ms; multiplier {mult}; }};\n}}"
            );
        }
        for n in &self.neighbors {
            let _ = writeln!(s, "protocol bgp {} {{", n.name);
            if n.disabled {
                s.push_str("  disabled;\n");
            }
            let _ = writeln!(s, "  local as {};", self.local_asn);
            let _ = writeln!(s, "  neighbor {} port {} as {};", n.address, n.port, n.asn);
            if n.passive {
                s.push_str("  passive on;\n");
            }
            if let Some(p) = &n.password {
                let _ = writeln!(s, "  password \"{}\";", p.replace('"', "\\\""));
            }
            if n.graceful_restart {
                s.push_str("  graceful restart on;\n  graceful restart time 120;\n");
            }
            if let Some(h) = n.hold_time {
                let _ = writeln!(s, "  hold time {h};");
                let _ = writeln!(s, "  keepalive time {};", (h / 3).max(1));
            }
            if n.rr_client {
                s.push_str("  rr client;\n");
            }
            if n.bfd_graceful {
                s.push_str("  bfd graceful;\n");
            } else if n.bfd {
                s.push_str("  bfd on;\n");
            }
            if let Some(h) = n.multihop {
                let _ = writeln!(s, "  multihop {h};");
            }
            s.push_str(
                "  connect delay time 1;\n  connect retry time 2;\n  error wait time 1, 5;\n",
            );
            let export = if n.export_none { "none" } else { "all" };
            let gateway = if n.multihop.is_some() {
                "recursive"
            } else {
                "direct"
            };
            if n.address.is_ipv4() || n.ipv4_next_hop.is_some() {
                let _ = writeln!(
                    s,
                    "  ipv4 {{\n    import all;\n    export {export};\n    gateway {gateway};"
                );
                if n.next_hop_self {
                    s.push_str("    next hop self;\n");
                }
                if let (IpAddr::V6(_), Some(nh)) = (n.address, n.ipv4_next_hop) {
                    let _ = writeln!(s, "    next hop address {nh};");
                }
                s.push_str("  };\n");
            }
            if let Some(nh) = n.ipv6_next_hop {
                let _ = writeln!(
                    s,
                    "  ipv6 {{\n    import all;\n    export {export};\n    gateway {gateway};\n    next hop address {nh};\n  }};"
                );
            }
            s.push_str("}\n");
        }
        s
    }
}

/// A route as `birdc show route … all` prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BirdRoute {
    pub prefix: String,
    /// The protocol that gave it (`[NAME time]`).
    pub protocol: String,
    /// Marked `*`: the selected best path.
    pub best: bool,
    /// `BGP.as_path`, empty for locally originated routes.
    pub as_path: Vec<u32>,
    /// `BGP.next_hop`.
    pub next_hop: Option<String>,
    /// `via GW on IF`.
    pub gateway: Option<String>,
    /// `BGP.community` as `A:B`, and `BGP.large_community` as `A:B:C`.
    pub communities: Vec<String>,
}

/// A running BIRD with its own control socket.
#[derive(Debug)]
pub struct Bird {
    pub socket: PathBuf,
    pub config_path: PathBuf,
    netns: String,
    daemon: Daemon,
}

impl Bird {
    /// Writes `bird.conf` in `dir`, starts `bird -f` in `ns` and waits until
    /// its control socket answers.
    pub fn start(ns: &Netns, dir: &Path, cfg: &BirdConfig) -> Result<Bird> {
        let config_path = dir.join("bird.conf");
        std::fs::write(&config_path, cfg.render())
            .map_err(|e| LabError::io(format!("writing {}", config_path.display()), e))?;
        Self::start_with_file(ns, dir, &config_path)
    }

    /// Starts BIRD with an existing configuration file (the runner's binds).
    pub fn start_with_file(ns: &Netns, dir: &Path, config_path: &Path) -> Result<Bird> {
        let socket = dir.join("bird.ctl");
        let pidfile = dir.join("bird.pid");
        let mut cmd = ns.command("bird");
        cmd.arg("-f")
            .arg("-c")
            .arg(config_path)
            .arg("-s")
            .arg(&socket)
            .arg("-P")
            .arg(&pidfile);
        let daemon = Daemon::spawn("bird", cmd, &dir.join("bird.log"))?;
        let bird = Bird {
            socket,
            config_path: config_path.to_path_buf(),
            netns: ns.name().to_string(),
            daemon,
        };
        crate::wait::wait_for("bird control socket", Duration::from_secs(10), || {
            bird.birdc(&["show", "status"]).is_ok()
        })
        .map_err(|e| LabError::Invalid(format!("{e}; bird log:\n{}", bird.daemon.log_tail(20))))?;
        Ok(bird)
    }

    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Runs `birdc -s SOCK <args>` and returns its output.
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        let mut cmd = std::process::Command::new("birdc");
        cmd.arg("-s").arg(&self.socket).args(args);
        run(&mut cmd)
    }

    /// The `BGP state:` of protocol `name` (e.g. "Established", "Active").
    pub fn protocol_state(&self, name: &str) -> Result<String> {
        let out = self.birdc(&["show", "protocols", "all", name])?;
        parse_bgp_state(&out).ok_or_else(|| {
            LabError::parse(
                "birdc show protocols all",
                format!("no BGP state in:\n{out}"),
            )
        })
    }

    /// Every route in the master table (or only those from protocol `from`).
    pub fn routes(&self, from: Option<&str>) -> Result<Vec<BirdRoute>> {
        let out = match from {
            Some(p) => self.birdc(&["show", "route", "protocol", p, "all"])?,
            None => self.birdc(&["show", "route", "all"])?,
        };
        Ok(parse_routes(&out))
    }

    /// Routes BIRD would export to protocol `to`.
    pub fn exported(&self, to: &str) -> Result<Vec<BirdRoute>> {
        Ok(parse_routes(
            &self.birdc(&["show", "route", "export", to, "all"])?,
        ))
    }

    /// The state of BIRD's BFD session to `peer` ("Up", "Down", "Init"…),
    /// from `show bfd sessions`.
    pub fn bfd_state(&self, peer: IpAddr) -> Result<String> {
        let out = self.birdc(&["show", "bfd", "sessions"])?;
        parse_bfd_state(&out, peer).ok_or_else(|| {
            LabError::parse(
                "birdc show bfd sessions",
                format!("no session to {peer} in:\n{out}"),
            )
        })
    }

    pub fn enable(&self, name: &str) -> Result<()> {
        self.birdc(&["enable", name]).map(|_| ())
    }

    pub fn disable(&self, name: &str) -> Result<()> {
        self.birdc(&["disable", name]).map(|_| ())
    }

    /// Re-reads the configuration file (after [`Bird::rewrite`]).
    pub fn configure(&self) -> Result<()> {
        let out = self.birdc(&["configure"])?;
        if out.contains("Reconfigured") || out.contains("Reconfiguration in progress") {
            Ok(())
        } else {
            Err(LabError::parse("birdc configure", out))
        }
    }

    /// Writes a new configuration and reconfigures.
    pub fn rewrite(&self, cfg: &BirdConfig) -> Result<()> {
        std::fs::write(&self.config_path, cfg.render())
            .map_err(|e| LabError::io(format!("writing {}", self.config_path.display()), e))?;
        self.configure()
    }
}

/// The State column of `peer`'s row in `show bfd sessions`
/// (`IP address  Interface  State  Since  Interval  Timeout`).
pub fn parse_bfd_state(out: &str, peer: IpAddr) -> Option<String> {
    let peer = peer.to_string();
    out.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next()? == peer).then(|| w.nth(1).map(str::to_string))?
    })
}

/// `BGP state:          Established` → "Established".
pub fn parse_bgp_state(out: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("BGP state:"))
        .map(|s| s.trim().to_string())
}

/// The Restart State (R) bit of the neighbor's graceful restart capability
/// (RFC 4724 §3) as `show protocols all NAME` prints it: `Some(true)` when
/// the neighbor's OPEN said it has just restarted ("Restart recovery" under
/// "Neighbor capabilities" / "Graceful restart"), `Some(false)` when the
/// capability's details are printed without that line, `None` when they are
/// not printed: no graceful restart capability (or no session yet), or a
/// bare "Graceful restart" line, which BIRD 2.0.12 prints for a helper-only
/// neighbor that lists no address family (FRR without `bgp graceful-restart`)
/// and which says nothing about its R bit.
///
/// BIRD does not wait for End-of-RIB from a neighbor whose R bit is set
/// (RFC 4724 §3: its peer "MUST NOT wait for the End-of-RIB marker" from
/// it), which decides whether a restarting BIRD can finish its recovery
/// without loss.
pub fn neighbor_gr_restart_bit(out: &str) -> Option<bool> {
    let mut in_neighbor_caps = false;
    let mut gr_indent: Option<usize> = None;
    let mut found = None;
    for line in out.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if t == "Neighbor capabilities" {
            in_neighbor_caps = true;
            gr_indent = None;
            continue;
        }
        if t == "Local capabilities" || t.starts_with("Session:") || t.starts_with("Channel ") {
            in_neighbor_caps = false;
            gr_indent = None;
            continue;
        }
        if !in_neighbor_caps {
            continue;
        }
        if let Some(gi) = gr_indent {
            if indent > gi {
                found = Some(found == Some(true) || t == "Restart recovery");
                continue;
            }
            gr_indent = None;
        }
        if t == "Graceful restart" {
            gr_indent = Some(indent);
        }
    }
    found
}

/// Parses `show route … all` output. Tolerates the `BIRD x ready.` banner,
/// `Table` headers and several paths per prefix.
pub fn parse_routes(out: &str) -> Vec<BirdRoute> {
    let mut routes: Vec<BirdRoute> = Vec::new();
    let mut prefix = String::new();
    for line in out.lines() {
        if line.trim().is_empty() || line.starts_with("BIRD ") || line.starts_with("Table ") {
            continue;
        }
        let head = line.starts_with(|c: char| !c.is_whitespace());
        let indented_path = !head && line.starts_with(' ') && line.contains('[');
        if head || indented_path {
            let mut rest = line.trim_start();
            if head {
                let (p, r) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                prefix = p.to_string();
                rest = r;
            }
            let protocol = rest
                .split_once('[')
                .and_then(|(_, r)| r.split_whitespace().next())
                .unwrap_or("")
                .trim_end_matches(']')
                .to_string();
            let best = rest
                .split_once(']')
                .is_some_and(|(_, r)| r.trim_start().starts_with('*'));
            routes.push(BirdRoute {
                prefix: prefix.clone(),
                protocol,
                best,
                ..BirdRoute::default()
            });
            continue;
        }
        let Some(cur) = routes.last_mut() else {
            continue;
        };
        let t = line.trim();
        if let Some(v) = t.strip_prefix("BGP.as_path:") {
            cur.as_path = v
                .split_whitespace()
                .filter_map(|a| a.parse().ok())
                .collect();
        } else if let Some(v) = t.strip_prefix("BGP.next_hop:") {
            cur.next_hop = v.split_whitespace().next().map(str::to_string);
        } else if let Some(v) = t.strip_prefix("BGP.community:") {
            // (65000,100) (65535,65281) …
            cur.communities.extend(
                v.split(')')
                    .filter_map(|c| c.trim().strip_prefix('('))
                    .map(|c| c.replace(',', ":").replace(' ', "")),
            );
        } else if let Some(v) = t.strip_prefix("BGP.large_community:") {
            // (64512, 1, 2) …
            cur.communities.extend(
                v.split(')')
                    .filter_map(|c| c.trim().strip_prefix('('))
                    .map(|c| c.replace(',', ":").replace(' ', "")),
            );
        } else if let Some(v) = t.strip_prefix("via ") {
            cur.gateway = v.split_whitespace().next().map(str::to_string);
        }
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfd_sessions_table() {
        let out = "BIRD 2.0.12 ready.\nbfd1:\nIP address                Interface  State      Since         Interval  Timeout\n198.51.100.2              eth1       Up         02:01:00.123    0.300    0.900\n198.51.100.9              eth1       Down       02:01:00.123    1.000    0.000\n";
        let st = |a: &str| parse_bfd_state(out, a.parse().unwrap());
        assert_eq!(st("198.51.100.2").as_deref(), Some("Up"));
        assert_eq!(st("198.51.100.9").as_deref(), Some("Down"));
        assert_eq!(st("198.51.100.3"), None);
    }

    const SAMPLE: &str = "BIRD 2.0.12 ready.
Table master4:
10.244.1.0/26        unicast [tortie 19:50:01.234] * (100) [AS64512i]
\tvia 198.51.100.2 on eth1
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 64512 64513
\tBGP.next_hop: 198.51.100.2
\tBGP.local_pref: 100
                     unicast [other 19:50:02.000] (100) [AS64514i]
\tvia 198.51.100.3 on eth1
\tBGP.as_path: 64514
\tBGP.next_hop: 198.51.100.3
10.9.0.0/24          blackhole [originated 19:49:00.000] * (200)
\tType: static univ
";

    #[test]
    fn parses_routes_with_several_paths() {
        let r = parse_routes(SAMPLE);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].prefix, "10.244.1.0/26");
        assert_eq!(r[0].protocol, "tortie");
        assert!(r[0].best);
        assert_eq!(r[0].as_path, vec![64512, 64513]);
        assert_eq!(r[0].next_hop.as_deref(), Some("198.51.100.2"));
        assert_eq!(r[0].gateway.as_deref(), Some("198.51.100.2"));
        assert_eq!(r[1].prefix, "10.244.1.0/26");
        assert_eq!(r[1].protocol, "other");
        assert!(!r[1].best);
        assert_eq!(r[1].as_path, vec![64514]);
        assert_eq!(r[2].prefix, "10.9.0.0/24");
        assert!(r[2].as_path.is_empty());
    }

    const PROTO_ALL: &str = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
spine      BGP        ---        up     20:59:22.815  Established
  BGP state:          Established
    Local capabilities
      Graceful restart
        Restart time: 120
        Restart recovery
        AF supported: ipv4
      4-octet AS numbers
    Neighbor capabilities
      Route refresh
      Graceful restart
        Restart time: 120
        Restart recovery
        AF supported: ipv4
        AF preserved:
      4-octet AS numbers
    Session:          external AS4
";

    #[test]
    fn reads_the_neighbors_restart_bit_only() {
        assert_eq!(neighbor_gr_restart_bit(PROTO_ALL), Some(true));
        let cleared = PROTO_ALL.replacen(
            "        Restart time: 120\n        Restart recovery\n        AF supported: ipv4\n        AF preserved:",
            "        Restart time: 120\n        AF supported: ipv4\n        AF preserved:",
            1,
        );
        assert_ne!(cleared, PROTO_ALL);
        // The local capability still says "Restart recovery"; only the
        // neighbor's counts.
        assert_eq!(neighbor_gr_restart_bit(&cleared), Some(false));
        let no_gr = PROTO_ALL.replace("      Graceful restart\n", "      Something else\n");
        assert_eq!(neighbor_gr_restart_bit(&no_gr), None);
        // Helper-only neighbor: a bare line, the R bit is unknown.
        let bare = "BIRD 2.0.12 ready.\n    Neighbor capabilities\n      Route refresh\n      Graceful restart\n      4-octet AS numbers\n    Session:          external AS4\n";
        assert_eq!(neighbor_gr_restart_bit(bare), None);
        assert_eq!(neighbor_gr_restart_bit("BIRD 2.0.12 ready.\n"), None);
    }

    #[test]
    fn parses_state() {
        let out = "BIRD 2.0.12 ready.\nName Proto\ntortie BGP --- up\n  BGP state:          Established\n    Neighbor address: 1.2.3.4\n";
        assert_eq!(parse_bgp_state(out).as_deref(), Some("Established"));
    }

    #[test]
    fn renders_neighbor_options() {
        let mut c = BirdConfig::new(Ipv4Addr::new(192, 0, 2, 1), 65001);
        let mut n = BirdNeighbor::new("tortie", "192.0.2.2".parse().unwrap(), 64512);
        n.passive = true;
        n.password = Some("s3cret".into());
        n.graceful_restart = true;
        c.neighbors.push(n);
        c.static_routes.push("10.9.0.0/24".into());
        let text = c.render();
        assert!(text.contains("neighbor 192.0.2.2 port 179 as 64512;"));
        assert!(text.contains("passive on;"));
        assert!(text.contains("password \"s3cret\";"));
        assert!(text.contains("graceful restart on;"));
        assert!(text.contains("route 10.9.0.0/24 blackhole;"));
        assert!(!text.contains("ipv6"));
        assert!(text.contains("export all;") && !text.contains("export none;"));
        c.neighbors[0].export_none = true;
        let text = c.render();
        assert!(text.contains("export none;") && !text.contains("export all;"));
    }

    #[test]
    fn renders_ipv6_static_routes_and_channel() {
        let mut c = BirdConfig::new(Ipv4Addr::new(192, 0, 2, 1), 65001);
        let mut n = BirdNeighbor::new("tortie", "192.0.2.2".parse().unwrap(), 64512);
        n.ipv6_next_hop = Some("2001:db8:5e::1".parse().unwrap());
        c.neighbors.push(n);
        c.static_routes.push("10.9.0.0/24".into());
        c.static_routes.push("2001:db8:57::/48".into());
        let text = c.render();
        assert!(
            text.contains(
                "protocol static originated {\n  ipv4;\n  route 10.9.0.0/24 blackhole;\n}"
            )
        );
        assert!(text.contains(
            "protocol static originated6 {\n  ipv6;\n  route 2001:db8:57::/48 blackhole;\n}"
        ));
        assert!(text.contains("next hop address 2001:db8:5e::1;"));
    }
}
