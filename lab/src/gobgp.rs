//! GoBGP (`gobgpd`) in a namespace: TOML configuration from a struct, routes
//! added with `gobgp global rib add`, state read with `gobgp -j`.
//!
//! Each namespace has its own loopback, so gobgpd's gRPC port (50051) does
//! not collide between instances. GoBGP enforces a 5 s minimum connect retry
//! and does not install routes into the kernel.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::error::{LabError, Result};
use crate::netns::{Netns, run};
use crate::process::Daemon;

/// One `[[neighbors]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GobgpNeighbor {
    pub address: IpAddr,
    pub asn: u32,
    pub passive: bool,
    pub password: Option<String>,
    pub graceful_restart: bool,
    pub hold_time: Option<u16>,
    /// The `ipv6-unicast` AFI-SAFI too (IPv6 routes over this session,
    /// whatever its own family).
    pub ipv6: bool,
}

impl GobgpNeighbor {
    pub fn new(address: IpAddr, asn: u32) -> Self {
        GobgpNeighbor {
            address,
            asn,
            passive: false,
            password: None,
            graceful_restart: false,
            hold_time: None,
            ipv6: false,
        }
    }
}

/// A gobgpd configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GobgpConfig {
    pub router_id: Ipv4Addr,
    pub asn: u32,
    pub neighbors: Vec<GobgpNeighbor>,
}

impl GobgpConfig {
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "[global.config]\n  as = {}\n  router-id = \"{}\"\n",
            self.asn, self.router_id
        );
        for n in &self.neighbors {
            let _ = writeln!(s, "[[neighbors]]\n  [neighbors.config]");
            let _ = writeln!(
                s,
                "    neighbor-address = \"{}\"\n    peer-as = {}",
                n.address, n.asn
            );
            if let Some(p) = &n.password {
                let _ = writeln!(s, "    auth-password = \"{}\"", p.replace('"', "\\\""));
            }
            let _ = writeln!(
                s,
                "  [neighbors.transport.config]\n    passive-mode = {}",
                n.passive
            );
            let _ = writeln!(s, "  [neighbors.timers.config]\n    connect-retry = 5");
            if let Some(h) = n.hold_time {
                let _ = writeln!(
                    s,
                    "    hold-time = {h}\n    keepalive-interval = {}",
                    (h / 3).max(1)
                );
            }
            if n.graceful_restart {
                s.push_str("  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = 120\n");
            }
            let families: &[&str] = if n.ipv6 {
                &["ipv4-unicast", "ipv6-unicast"]
            } else {
                &["ipv4-unicast"]
            };
            for f in families {
                let _ = writeln!(
                    s,
                    "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{f}\""
                );
                if n.graceful_restart {
                    s.push_str(
                        "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n",
                    );
                }
            }
            s.push('\n');
        }
        s
    }
}

/// One path from `gobgp -j global rib`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GobgpRoute {
    pub prefix: String,
    pub best: bool,
    pub as_path: Vec<u32>,
    pub next_hop: Option<String>,
    pub stale: bool,
    /// The neighbour the path came from (`neighbor-ip`).
    pub peer: Option<String>,
}

/// A running gobgpd.
#[derive(Debug)]
pub struct Gobgp {
    pub config_path: PathBuf,
    netns: String,
    daemon: Daemon,
}

impl Gobgp {
    pub fn start(ns: &Netns, dir: &Path, cfg: &GobgpConfig) -> Result<Gobgp> {
        let config_path = dir.join("gobgpd.toml");
        std::fs::write(&config_path, cfg.render())
            .map_err(|e| LabError::io(format!("writing {}", config_path.display()), e))?;
        Self::start_with_file(ns, dir, &config_path)
    }

    pub fn start_with_file(ns: &Netns, dir: &Path, config_path: &Path) -> Result<Gobgp> {
        let mut cmd = ns.command("gobgpd");
        cmd.arg("-f").arg(config_path).args(["-p", "-l", "info"]);
        let daemon = Daemon::spawn("gobgpd", cmd, &dir.join("gobgpd.log"))?;
        let g = Gobgp {
            config_path: config_path.to_path_buf(),
            netns: ns.name().to_string(),
            daemon,
        };
        crate::wait::wait_for("gobgpd API", Duration::from_secs(15), || {
            g.cli(&["-j", "global"]).is_ok()
        })
        .map_err(|e| LabError::Invalid(format!("{e}; gobgpd log:\n{}", g.daemon.log_tail(20))))?;
        Ok(g)
    }

    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    /// Runs `gobgp <args>` inside the namespace.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        run(Netns::existing(&self.netns).command("gobgp").args(args))
    }

    fn json(&self, args: &[&str]) -> Result<Value> {
        let out = self.cli(args)?;
        serde_json::from_str(&out).map_err(|e| {
            LabError::parse(format!("gobgp {}", args.join(" ")), format!("{e}: {out}"))
        })
    }

    /// Originates `prefix` (next hop: the session's local address).
    pub fn add_route(&self, prefix: &str) -> Result<()> {
        self.cli(&["global", "rib", "add", prefix, "-a", "ipv4"])
            .map(|_| ())
    }

    /// Originates the IPv6 `prefix` with global next hop `next_hop`.
    pub fn add_route6(&self, prefix: &str, next_hop: &str) -> Result<()> {
        self.cli(&[
            "global", "rib", "add", prefix, "nexthop", next_hop, "-a", "ipv6",
        ])
        .map(|_| ())
    }

    /// The IPv6 global RIB.
    pub fn routes6(&self) -> Result<Vec<GobgpRoute>> {
        Ok(parse_rib(
            &self.json(&["-j", "global", "rib", "-a", "ipv6"])?,
        ))
    }

    pub fn del_route(&self, prefix: &str) -> Result<()> {
        self.cli(&["global", "rib", "del", prefix, "-a", "ipv4"])
            .map(|_| ())
    }

    /// Session state of `addr`, lower-case as gobgp prints it ("established").
    pub fn neighbor_state(&self, addr: IpAddr) -> Result<String> {
        let v = self.json(&["-j", "neighbor", &addr.to_string()])?;
        neighbor_state(&v).ok_or_else(|| LabError::parse("gobgp -j neighbor", v.to_string()))
    }

    /// The global RIB.
    pub fn routes(&self) -> Result<Vec<GobgpRoute>> {
        Ok(parse_rib(
            &self.json(&["-j", "global", "rib", "-a", "ipv4"])?,
        ))
    }

    /// `gobgp neighbor A softresetin`: GoBGP 3.10 re-runs its own stored
    /// Adj-RIB-In through import policy (`BgpServer.softResetIn`); it sends
    /// nothing to the peer, in particular no ROUTE-REFRESH.
    pub fn soft_in(&self, addr: IpAddr) -> Result<()> {
        self.cli(&["neighbor", &addr.to_string(), "softresetin"])
            .map(|_| ())
    }

    /// `gobgp neighbor A softresetout`: GoBGP re-sends its Adj-RIB-Out to
    /// `addr` as UPDATEs (what it would do on receiving a ROUTE-REFRESH).
    pub fn soft_out(&self, addr: IpAddr) -> Result<()> {
        self.cli(&["neighbor", &addr.to_string(), "softresetout"])
            .map(|_| ())
    }
}

/// `state.session_state` of one neighbor object, whatever its casing/format.
pub fn neighbor_state(v: &Value) -> Option<String> {
    let n = if v.is_array() { v.get(0)? } else { v };
    let st = n.get("state")?;
    let s = st
        .get("session_state")
        .or_else(|| st.get("session-state"))?;
    match s {
        Value::String(s) => Some(s.to_lowercase()),
        // gRPC enum: 1 idle … 6 established.
        Value::Number(n) => Some(
            match n.as_u64()? {
                1 => "idle",
                2 => "connect",
                3 => "active",
                4 => "opensent",
                5 => "openconfirm",
                6 => "established",
                _ => "unknown",
            }
            .to_string(),
        ),
        _ => None,
    }
}

/// Parses `gobgp -j global rib`: `{"P": [path, …]}` with typed attributes.
pub fn parse_rib(v: &Value) -> Vec<GobgpRoute> {
    let mut out = Vec::new();
    let Some(map) = v.as_object() else { return out };
    for (prefix, paths) in map {
        for p in paths.as_array().into_iter().flatten() {
            let mut r = GobgpRoute {
                prefix: prefix.clone(),
                best: p.get("best").and_then(Value::as_bool).unwrap_or(false),
                stale: p.get("stale").and_then(Value::as_bool).unwrap_or(false),
                peer: p
                    .get("neighbor-ip")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                ..GobgpRoute::default()
            };
            for a in p
                .get("attrs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                match a.get("type").and_then(Value::as_u64) {
                    Some(2) => {
                        for seg in a
                            .get("as_paths")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            for asn in seg
                                .get("asns")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                            {
                                if let Some(n) = asn.as_u64().and_then(|n| u32::try_from(n).ok()) {
                                    r.as_path.push(n);
                                }
                            }
                        }
                    }
                    Some(3) => {
                        r.next_hop = a.get("nexthop").and_then(Value::as_str).map(str::to_string)
                    }
                    Some(14) if r.next_hop.is_none() => {
                        r.next_hop = a.get("nexthop").and_then(Value::as_str).map(str::to_string)
                    }
                    _ => {}
                }
            }
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rib_and_state() {
        let v: Value = serde_json::from_str(
            r#"{"10.244.1.0/26":[{"nlri":{"prefix":"10.244.1.0/26"},"attrs":[{"type":1,"value":0},{"type":2,"as_paths":[{"segment_type":2,"num":2,"asns":[64512,64513]}]},{"type":3,"nexthop":"198.51.100.2"}],"best":true,"stale":false}]}"#,
        )
        .unwrap();
        let r = parse_rib(&v);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].as_path, vec![64512, 64513]);
        assert_eq!(r[0].next_hop.as_deref(), Some("198.51.100.2"));
        let n: Value = serde_json::from_str(r#"{"state":{"session_state":6}}"#).unwrap();
        assert_eq!(neighbor_state(&n).as_deref(), Some("established"));
        let n: Value =
            serde_json::from_str(r#"[{"state":{"session-state":"ESTABLISHED"}}]"#).unwrap();
        assert_eq!(neighbor_state(&n).as_deref(), Some("established"));
    }
}
