//! FRR (bgpd, optionally zebra) in a namespace: configuration from a struct,
//! per-namespace socket directory `/var/run/frr/<ns>` (FRR's `-N`), and
//! `vtysh -N <ns> -c '… json'` parsed with serde_json.
//!
//! FRR's `-N` only changes socket paths; the daemons are wrapped in
//! `ip netns exec`. They run in the foreground so the [`Daemon`] guards own
//! their PIDs. eBGP needs `no bgp ebgp-requires-policy`; `network` statements
//! for prefixes not in the RIB need `no bgp network import-check`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::error::{LabError, Result};
use crate::netns::{Netns, run};
use crate::process::Daemon;

/// One `neighbor` of `router bgp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrrNeighbor {
    pub address: IpAddr,
    pub asn: u32,
    pub port: u16,
    pub password: Option<String>,
    pub passive: bool,
    pub rr_client: bool,
    pub next_hop_self: bool,
    /// `neighbor X bfd profile lab`: follow a BFD session (needs [`FrrConfig::bfd`]).
    pub bfd: bool,
    /// Activated in `address-family ipv6 unicast` too (IPv6 routes over
    /// this session, whatever its own family).
    pub ipv6: bool,
}

impl FrrNeighbor {
    pub fn new(address: IpAddr, asn: u32) -> Self {
        FrrNeighbor {
            address,
            asn,
            port: 179,
            password: None,
            passive: false,
            rr_client: false,
            next_hop_self: false,
            bfd: false,
            ipv6: false,
        }
    }
}

/// A `bgpd.conf`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrrConfig {
    pub hostname: String,
    pub router_id: Ipv4Addr,
    pub asn: u32,
    pub neighbors: Vec<FrrNeighbor>,
    /// `network P` statements (import-check off, so no RIB route needed);
    /// IPv6 prefixes go into `address-family ipv6 unicast`.
    pub networks: Vec<String>,
    pub graceful_restart: bool,
    /// `timers bgp KEEPALIVE HOLD`.
    pub timers: Option<(u16, u16)>,
    /// Run zebra too, so learned routes reach the kernel.
    pub with_zebra: bool,
    /// Run bfdd (and zebra, which relays bgpd's BFD requests) with a BFD
    /// profile `lab` of `(interval ms, multiplier)`.
    pub bfd: Option<(u32, u8)>,
}

impl FrrConfig {
    pub fn new(hostname: &str, router_id: Ipv4Addr, asn: u32) -> Self {
        FrrConfig {
            hostname: hostname.to_string(),
            router_id,
            asn,
            neighbors: Vec::new(),
            networks: Vec::new(),
            graceful_restart: false,
            timers: None,
            with_zebra: false,
            bfd: None,
        }
    }

    /// The configuration text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str("frr defaults traditional\n");
        let _ = writeln!(s, "hostname {}", self.hostname);
        s.push_str("log stdout informational\n!\n");
        let _ = writeln!(s, "router bgp {}", self.asn);
        let _ = writeln!(s, " bgp router-id {}", self.router_id);
        s.push_str(" no bgp ebgp-requires-policy\n no bgp network import-check\n");
        if self.graceful_restart {
            s.push_str(" bgp graceful-restart\n");
        }
        if let Some((k, h)) = self.timers {
            let _ = writeln!(s, " timers bgp {k} {h}");
        }
        for n in &self.neighbors {
            let a = n.address;
            let _ = writeln!(s, " neighbor {a} remote-as {}", n.asn);
            if n.port != 179 {
                let _ = writeln!(s, " neighbor {a} port {}", n.port);
            }
            if let Some(p) = &n.password {
                let _ = writeln!(s, " neighbor {a} password {p}");
            }
            if n.passive {
                let _ = writeln!(s, " neighbor {a} passive");
            }
            let _ = writeln!(s, " neighbor {a} timers connect 1");
            if n.bfd {
                let _ = writeln!(s, " neighbor {a} bfd profile lab");
            }
            let _ = writeln!(s, " neighbor {a} advertisement-interval 0");
        }
        s.push_str(" address-family ipv4 unicast\n");
        for p in self.networks.iter().filter(|p| !p.contains(':')) {
            let _ = writeln!(s, "  network {p}");
        }
        for n in &self.neighbors {
            if n.rr_client {
                let _ = writeln!(s, "  neighbor {} route-reflector-client", n.address);
            }
            if n.next_hop_self {
                let _ = writeln!(s, "  neighbor {} next-hop-self", n.address);
            }
        }
        s.push_str(" exit-address-family\n");
        if self.neighbors.iter().any(|n| n.ipv6) {
            s.push_str(" address-family ipv6 unicast\n");
            for p in self.networks.iter().filter(|p| p.contains(':')) {
                let _ = writeln!(s, "  network {p}");
            }
            for n in self.neighbors.iter().filter(|n| n.ipv6) {
                let _ = writeln!(s, "  neighbor {} activate", n.address);
            }
            s.push_str(" exit-address-family\n");
        }
        s.push_str("!\n");
        s
    }

    /// bfdd's configuration: the `lab` profile.
    pub fn render_bfdd(&self) -> String {
        let (interval, mult) = self.bfd.unwrap_or((300, 3));
        format!(
            "log stdout informational\n!\nbfd\n profile lab\n  detect-multiplier {mult}\n  receive-interval {interval}\n  transmit-interval {interval}\n !\n!\n"
        )
    }
}

/// One path of a prefix as `show bgp ipv4 unicast json` lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrrRoute {
    pub prefix: String,
    pub best: bool,
    pub as_path: Vec<u32>,
    pub next_hop: Option<String>,
    pub stale: bool,
    /// The neighbour the path came from (`peerId`).
    pub peer: Option<String>,
}

/// Running FRR daemons for one namespace.
#[derive(Debug)]
pub struct Frr {
    /// The `-N` name (the namespace name).
    pub instance: String,
    pub config_path: PathBuf,
    netns: String,
    bgpd: Option<Daemon>,
    bfdd: Option<Daemon>,
    zebra: Option<Daemon>,
    dir: PathBuf,
}

/// `/var/run/frr/<instance>`, created owned by frr:frr.
pub fn socket_dir(instance: &str) -> PathBuf {
    PathBuf::from("/var/run/frr").join(instance)
}

impl Frr {
    /// Writes `bgpd.conf` in `dir` and starts the daemons in `ns`.
    pub fn start(ns: &Netns, dir: &Path, cfg: &FrrConfig) -> Result<Frr> {
        let config_path = dir.join("frr.conf");
        std::fs::write(&config_path, cfg.render())
            .map_err(|e| LabError::io(format!("writing {}", config_path.display()), e))?;
        if cfg.bfd.is_some() {
            let bfdd_conf = dir.join("bfdd.conf");
            std::fs::write(&bfdd_conf, cfg.render_bfdd())
                .map_err(|e| LabError::io(format!("writing {}", bfdd_conf.display()), e))?;
            let _ = std::fs::set_permissions(&bfdd_conf, std::fs::Permissions::from_mode(0o644));
            return Self::start_daemons(ns, dir, &config_path, true, Some(&bfdd_conf));
        }
        Self::start_with_file(ns, dir, &config_path, cfg.with_zebra)
    }

    /// Starts bgpd (and zebra when `with_zebra`) from an existing config file.
    pub fn start_with_file(
        ns: &Netns,
        dir: &Path,
        config_path: &Path,
        with_zebra: bool,
    ) -> Result<Frr> {
        Self::start_daemons(ns, dir, config_path, with_zebra, None)
    }

    /// zebra (when `with_zebra`), bfdd (with `bfdd_conf`; needs zebra), bgpd.
    fn start_daemons(
        ns: &Netns,
        dir: &Path,
        config_path: &Path,
        with_zebra: bool,
        bfdd_conf: Option<&Path>,
    ) -> Result<Frr> {
        let instance = ns.name().to_string();
        let sockdir = socket_dir(&instance);
        run(Command::new("install")
            .args(["-d", "-o", "frr", "-g", "frr", "-m", "0755"])
            .arg(&sockdir))?;
        // bgpd drops privileges to user frr before reading its config.
        for p in [dir, config_path] {
            let mode = if p == dir { 0o755 } else { 0o644 };
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                .map_err(|e| LabError::io(format!("chmod {}", p.display()), e))?;
        }
        let mut frr = Frr {
            instance: instance.clone(),
            config_path: config_path.to_path_buf(),
            netns: instance.clone(),
            bgpd: None,
            bfdd: None,
            zebra: None,
            dir: dir.to_path_buf(),
        };
        if with_zebra {
            let zconf = dir.join("zebra.conf");
            std::fs::write(&zconf, "log stdout informational\n")
                .map_err(|e| LabError::io(format!("writing {}", zconf.display()), e))?;
            let _ = std::fs::set_permissions(&zconf, std::fs::Permissions::from_mode(0o644));
            let mut cmd = ns.command("/usr/lib/frr/zebra");
            cmd.args(["-N", &instance, "-P", "0", "-f"])
                .arg(&zconf)
                .arg("-i")
                .arg(sockdir.join("zebra.pid"));
            frr.zebra = Some(Daemon::spawn("zebra", cmd, &dir.join("zebra.log"))?);
            let zsock = sockdir.join("zserv.api");
            crate::wait::wait_for("zebra socket", Duration::from_secs(10), || zsock.exists())?;
        }
        if let Some(conf) = bfdd_conf {
            let mut cmd = ns.command("/usr/lib/frr/bfdd");
            cmd.args(["-N", &instance, "-P", "0", "-f"])
                .arg(conf)
                .arg("-i")
                .arg(sockdir.join("bfdd.pid"));
            frr.bfdd = Some(Daemon::spawn("bfdd", cmd, &dir.join("bfdd.log"))?);
            let bsock = sockdir.join("bfdd.vty");
            crate::wait::wait_for("bfdd vty socket", Duration::from_secs(10), || {
                bsock.exists()
            })?;
        }
        let mut cmd = ns.command("/usr/lib/frr/bgpd");
        cmd.args(["-N", &instance, "-P", "0", "-f"])
            .arg(config_path)
            .arg("-i")
            .arg(sockdir.join("bgpd.pid"));
        if !with_zebra {
            cmd.arg("-Z");
        }
        frr.bgpd = Some(Daemon::spawn("bgpd", cmd, &dir.join("bgpd.log"))?);
        let ready = crate::wait::wait_for("bgpd answering vtysh", Duration::from_secs(15), || {
            frr.vtysh("show bgp ipv4 unicast summary json").is_ok()
        });
        if let Err(e) = ready {
            let tail = frr
                .bgpd
                .as_ref()
                .map(|d| d.log_tail(20))
                .unwrap_or_default();
            return Err(LabError::Invalid(format!("{e}; bgpd log:\n{tail}")));
        }
        Ok(frr)
    }

    pub fn netns(&self) -> &str {
        &self.netns
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bgpd process (for kill/restart tests).
    pub fn bgpd(&mut self) -> Option<&mut Daemon> {
        self.bgpd.as_mut()
    }

    /// Runs one vtysh command and returns its text output.
    pub fn vtysh(&self, command: &str) -> Result<String> {
        run(Command::new("vtysh").args(["-N", &self.instance, "-c", command]))
    }

    /// Runs several commands in one vtysh call (e.g. `conf t`, `router bgp …`).
    pub fn vtysh_many(&self, commands: &[&str]) -> Result<String> {
        let mut cmd = Command::new("vtysh");
        cmd.args(["-N", &self.instance]);
        for c in commands {
            cmd.args(["-c", c]);
        }
        run(&mut cmd)
    }

    /// Runs a `… json` command and parses the result.
    pub fn json(&self, command: &str) -> Result<Value> {
        let out = self.vtysh(command)?;
        serde_json::from_str(&out).map_err(|e| LabError::parse(command, format!("{e}: {out}")))
    }

    /// The session state of neighbor `addr` ("Established", "Active", …).
    pub fn neighbor_state(&self, addr: IpAddr) -> Result<String> {
        let v = self.json(&format!("show bgp neighbors {addr} json"))?;
        v.get(addr.to_string())
            .and_then(|n| n.get("bgpState"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| LabError::parse("show bgp neighbors json", v.to_string()))
    }

    /// The status of bfdd's session to `peer` ("up", "down", "init"…).
    pub fn bfd_state(&self, peer: IpAddr) -> Result<String> {
        let v = self.json("show bfd peers json")?;
        v.as_array()
            .and_then(|a| {
                a.iter()
                    .find(|p| p.get("peer").and_then(Value::as_str) == Some(&peer.to_string()))
            })
            .and_then(|p| p.get("status").and_then(Value::as_str))
            .map(str::to_string)
            .ok_or_else(|| LabError::parse("show bfd peers json", v.to_string()))
    }

    /// Every path in the IPv4 unicast table.
    pub fn routes(&self) -> Result<Vec<FrrRoute>> {
        Ok(parse_routes(&self.json("show bgp ipv4 unicast json")?))
    }

    /// The IPv6 unicast table the same way.
    pub fn routes6(&self) -> Result<Vec<FrrRoute>> {
        Ok(parse_routes(&self.json("show bgp ipv6 unicast json")?))
    }

    /// The standard and large communities of the best path of `prefix`
    /// (`A:B` / `A:B:C`, FRR's own words for the well-known ones), or `None`
    /// when FRR has no such route.
    pub fn communities(&self, prefix: &str) -> Result<Option<Vec<String>>> {
        let v = self.json(&format!("show bgp ipv4 unicast {prefix} json"))?;
        let Some(paths) = v.get("paths").and_then(Value::as_array) else {
            return Ok(None);
        };
        let best = paths
            .iter()
            .find(|p| p.pointer("/bestpath/overall").and_then(Value::as_bool) == Some(true))
            .or_else(|| paths.first());
        let words = |key: &str| -> Vec<String> {
            best.and_then(|p| p.get(key))
                .and_then(|c| c.get("string"))
                .and_then(Value::as_str)
                .map(|s| s.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let mut c = words("community");
        c.extend(words("largeCommunity"));
        Ok(Some(c))
    }

    /// Asks neighbor `addr` to re-send its routes (ROUTE-REFRESH, RFC 2918).
    pub fn soft_in(&self, addr: IpAddr) -> Result<()> {
        self.vtysh(&format!("clear bgp ipv4 unicast {addr} soft in"))
            .map(|_| ())
    }

    /// Kills bgpd (SIGKILL) — a crash, no NOTIFICATION.
    pub fn kill_bgpd(&mut self) {
        if let Some(d) = self.bgpd.as_mut() {
            d.kill_hard();
        }
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        // bgpd first, then bfdd and zebra; then the socket directory.
        self.bgpd.take();
        self.bfdd.take();
        self.zebra.take();
        let _ = std::fs::remove_dir_all(socket_dir(&self.instance));
    }
}

/// Parses `show bgp ipv4 unicast json`: `{"routes": {"P": [path, …]}}`.
pub fn parse_routes(v: &Value) -> Vec<FrrRoute> {
    let mut out = Vec::new();
    let Some(routes) = v.get("routes").and_then(Value::as_object) else {
        return out;
    };
    for (prefix, paths) in routes {
        for p in paths.as_array().into_iter().flatten() {
            let as_path = p
                .get("path")
                .and_then(Value::as_str)
                .map(|s| {
                    s.split_whitespace()
                        .filter_map(|a| a.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            let next_hop = p
                .get("nexthops")
                .and_then(Value::as_array)
                .and_then(|n| n.first())
                .and_then(|n| n.get("ip"))
                .and_then(Value::as_str)
                .map(str::to_string);
            out.push(FrrRoute {
                prefix: prefix.clone(),
                best: p.get("bestpath").and_then(Value::as_bool).unwrap_or(false),
                as_path,
                next_hop,
                stale: p.get("stale").and_then(Value::as_bool).unwrap_or(false),
                peer: p.get("peerId").and_then(Value::as_str).map(str::to_string),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_route_json() {
        let v: Value = serde_json::from_str(
            r#"{"vrfId":0,"routes":{"10.244.1.0/26":[{"valid":true,"bestpath":true,"path":"64512 64513","nexthops":[{"ip":"198.51.100.2","afi":"ipv4","used":true}]}]}}"#,
        )
        .unwrap();
        let r = parse_routes(&v);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].prefix, "10.244.1.0/26");
        assert!(r[0].best);
        assert_eq!(r[0].as_path, vec![64512, 64513]);
        assert_eq!(r[0].next_hop.as_deref(), Some("198.51.100.2"));
    }

    #[test]
    fn renders_required_knobs() {
        let mut c = FrrConfig::new("spine", Ipv4Addr::new(192, 0, 2, 1), 65000);
        let mut n = FrrNeighbor::new("192.0.2.2".parse().unwrap(), 64512);
        n.password = Some("k".into());
        n.rr_client = true;
        c.neighbors.push(n);
        c.networks.push("10.9.0.0/24".into());
        let t = c.render();
        assert!(t.contains("no bgp ebgp-requires-policy"));
        assert!(t.contains("no bgp network import-check"));
        assert!(t.contains("neighbor 192.0.2.2 password k"));
        assert!(t.contains("  neighbor 192.0.2.2 route-reflector-client"));
        assert!(t.contains("  network 10.9.0.0/24"));
    }
}
