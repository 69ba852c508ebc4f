//! The tortie agent as a lab node: its TOML (DESIGN §6) from a struct, `tortie
//! run` inside a namespace, and the CLI (`status`, `attach`, `detach`) over
//! the node's own API socket.
//!
//! Several agents share one host here, so every node gets its own
//! `api.socket` and `state.dir` under its work dir; metrics listen on the
//! namespace's own loopback. The binary is found by [`tortie_bin`].

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::error::{LabError, Result};
use crate::netns::{Netns, run};
use crate::process::Daemon;

/// One `[[peer]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TortiePeer {
    pub address: IpAddr,
    pub asn: u32,
    pub name: Option<String>,
    pub port: u16,
    pub password: Option<String>,
    pub passive: bool,
    pub route_reflector_client: bool,
    /// `source_address` (update-source).
    pub source_address: Option<IpAddr>,
    /// `multihop` (TTL).
    pub multihop: Option<u8>,
    /// `bfd = true` with `(bfd_interval_ms, bfd_multiplier)`.
    pub bfd: Option<(u32, u8)>,
    /// `families` (`"ipv4"`, `"ipv6"`); empty: the default (the families of
    /// the node's blocks).
    pub families: Vec<String>,
    /// More `key = value` lines for this `[[peer]]` (e.g. filters).
    pub extra: String,
}

impl TortiePeer {
    pub fn new(address: IpAddr, asn: u32) -> Self {
        TortiePeer {
            address,
            asn,
            name: None,
            port: 179,
            password: None,
            passive: false,
            route_reflector_client: false,
            source_address: None,
            multihop: None,
            bfd: None,
            families: Vec::new(),
            extra: String::new(),
        }
    }
}

/// A tortie configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TortieConfig {
    pub name: String,
    /// Node address with prefix length, e.g. `198.51.100.2/24`; a
    /// dual-stack node lists both, comma-separated
    /// (`198.51.100.2/24,2001:db8:5e::2/64`: a TOML array).
    pub address: String,
    pub asn: u32,
    /// The node's block; several comma-separated, as `address`.
    pub pod_cidr: String,
    pub listen_port: u16,
    pub hold_time: u16,
    pub connect_retry: u16,
    pub graceful_restart: bool,
    pub restart_time: u16,
    /// "block" or "hosts".
    pub advertise: String,
    pub encapsulation: String,
    pub peers: Vec<TortiePeer>,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    /// `host:port`, or empty to disable.
    pub metrics_listen: String,
    /// More `key = value` lines for `[bgp]`.
    pub bgp_extra: String,
    /// Raw TOML lines appended to the `[dataplane]` table.
    pub dataplane_extra: String,
    /// More tables appended to the file (e.g. `[[filter]]`s).
    pub extra: String,
}

impl TortieConfig {
    /// Defaults for a lab node whose files live in `dir`: short timers
    /// (hold 9 s, connect retry 1 s), GR on, metrics on 127.0.0.1:9642.
    pub fn new(name: &str, address: &str, asn: u32, pod_cidr: &str, dir: &Path) -> Self {
        TortieConfig {
            name: name.to_string(),
            address: address.to_string(),
            asn,
            pod_cidr: pod_cidr.to_string(),
            listen_port: 179,
            hold_time: 9,
            connect_retry: 1,
            graceful_restart: true,
            restart_time: 120,
            advertise: "block".to_string(),
            encapsulation: "none".to_string(),
            peers: Vec::new(),
            socket: dir.join("tortie.sock"),
            state_dir: dir.join("state"),
            metrics_listen: "127.0.0.1:9642".to_string(),
            bgp_extra: String::new(),
            dataplane_extra: String::new(),
            extra: String::new(),
        }
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "[node]\nname = \"{}\"\naddress = {}\nasn = {}\npod_cidr = {}\n",
            self.name,
            toml_list(&self.address),
            self.asn,
            toml_list(&self.pod_cidr)
        );
        let _ = writeln!(
            s,
            "[bgp]\nlisten_port = {}\nhold_time = {}\nconnect_retry = {}\ngraceful_restart = {}\nrestart_time = {}\nadvertise = \"{}\"\n",
            self.listen_port,
            self.hold_time,
            self.connect_retry,
            self.graceful_restart,
            self.restart_time,
            self.advertise
        );
        s.push_str(&self.bgp_extra);
        s.push('\n');
        for p in &self.peers {
            let _ = writeln!(s, "[[peer]]\naddress = \"{}\"\nasn = {}", p.address, p.asn);
            if let Some(n) = &p.name {
                let _ = writeln!(s, "name = \"{n}\"");
            }
            if p.port != 179 {
                let _ = writeln!(s, "port = {}", p.port);
            }
            if let Some(pw) = &p.password {
                let _ = writeln!(
                    s,
                    "password = \"{}\"",
                    pw.replace('\\', "\\\\").replace('"', "\\\"")
                );
            }
            if p.passive {
                s.push_str("passive = true\n");
            }
            if p.route_reflector_client {
                s.push_str("route_reflector_client = true\n");
            }
            if let Some(a) = p.source_address {
                let _ = writeln!(s, "source_address = \"{a}\"");
            }
            if let Some(m) = p.multihop {
                let _ = writeln!(s, "multihop = {m}");
            }
            if let Some((interval, mult)) = p.bfd {
                let _ = writeln!(
                    s,
                    "bfd = true\nbfd_interval_ms = {interval}\nbfd_multiplier = {mult}"
                );
            }
            if !p.families.is_empty() {
                let quoted: Vec<String> = p.families.iter().map(|f| format!("\"{f}\"")).collect();
                let _ = writeln!(s, "families = [{}]", quoted.join(", "));
            }
            s.push_str(&p.extra);
            s.push('\n');
        }
        let _ = writeln!(
            s,
            "[dataplane]\nencapsulation = \"{}\"\n{}",
            self.encapsulation, self.dataplane_extra
        );
        let _ = writeln!(s, "[api]\nsocket = \"{}\"\n", self.socket.display());
        let _ = writeln!(s, "[metrics]\nlisten = \"{}\"\n", self.metrics_listen);
        let _ = writeln!(s, "[state]\ndir = \"{}\"", self.state_dir.display());
        s.push_str(&self.extra);
        s
    }
}

/// `a` as a TOML string, `a,b` as an array of strings.
fn toml_list(s: &str) -> String {
    let items: Vec<String> = s.split(',').map(|i| format!("\"{}\"", i.trim())).collect();
    match items.as_slice() {
        [one] => one.clone(),
        _ => format!("[{}]", items.join(", ")),
    }
}

/// The `tortie` binary: env `TORTIE_BIN`, else next to the running
/// executable's target dir (`target/<profile>/tortie`), built with
/// `cargo build -p tortie-agent --bin tortie` when missing and cargo is known.
pub fn tortie_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("TORTIE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe =
        std::env::current_exe().map_err(|e| LabError::io("finding the current executable", e))?;
    let mut candidates = Vec::new();
    if let Some(dir) = exe.parent() {
        candidates.push(dir.join("tortie"));
        if let Some(up) = dir.parent() {
            candidates.push(up.join("tortie"));
        }
    }
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    if let Some(cargo) = std::env::var_os("CARGO") {
        run(Command::new(cargo).args(["build", "-q", "-p", "tortie-agent", "--bin", "tortie"]))?;
        if let Some(found) = candidates.iter().find(|p| p.is_file()) {
            return Ok(found.clone());
        }
    }
    Err(LabError::Invalid(format!(
        "tortie binary not found (looked at {candidates:?}); build it with `cargo build -p tortie-agent` or set TORTIE_BIN"
    )))
}

/// A running agent.
#[derive(Debug)]
pub struct TortieNode {
    pub bin: PathBuf,
    pub config_path: PathBuf,
    pub socket: PathBuf,
    netns: String,
    dir: PathBuf,
    daemon: Option<Daemon>,
    /// Extra `tortie run` flags (e.g. `--no-kernel`).
    run_args: Vec<String>,
}

impl TortieNode {
    /// Writes `tortie.toml` in `dir`, starts `tortie run` in `ns` and waits
    /// until its API answers.
    pub fn start(ns: &Netns, dir: &Path, cfg: &TortieConfig) -> Result<TortieNode> {
        let config_path = dir.join("tortie.toml");
        std::fs::write(&config_path, cfg.render())
            .map_err(|e| LabError::io(format!("writing {}", config_path.display()), e))?;
        Self::start_with_file(ns, dir, &config_path, &cfg.socket)
    }

    /// [`TortieNode::start`] with extra `tortie run` flags (`--no-kernel`).
    pub fn start_with_args(
        ns: &Netns,
        dir: &Path,
        cfg: &TortieConfig,
        run_args: &[&str],
    ) -> Result<TortieNode> {
        let config_path = dir.join("tortie.toml");
        std::fs::write(&config_path, cfg.render())
            .map_err(|e| LabError::io(format!("writing {}", config_path.display()), e))?;
        let mut node = Self::unstarted(ns, dir, &config_path, &cfg.socket)?;
        node.run_args = run_args.iter().map(|a| a.to_string()).collect();
        node.restart()?;
        Ok(node)
    }

    /// Starts the agent from an existing config whose `api.socket` is `socket`.
    pub fn start_with_file(
        ns: &Netns,
        dir: &Path,
        config_path: &Path,
        socket: &Path,
    ) -> Result<TortieNode> {
        let mut node = Self::unstarted(ns, dir, config_path, socket)?;
        node.restart()?;
        Ok(node)
    }

    fn unstarted(ns: &Netns, dir: &Path, config_path: &Path, socket: &Path) -> Result<TortieNode> {
        Ok(TortieNode {
            bin: tortie_bin()?,
            config_path: config_path.to_path_buf(),
            socket: socket.to_path_buf(),
            netns: ns.name().to_string(),
            dir: dir.to_path_buf(),
            daemon: None,
            run_args: Vec::new(),
        })
    }

    /// (Re)starts the agent process; the previous one must be gone.
    pub fn restart(&mut self) -> Result<()> {
        let mut cmd = Netns::existing(&self.netns).command(&self.bin.to_string_lossy());
        cmd.arg("run")
            .arg("--config")
            .arg(&self.config_path)
            .args(&self.run_args)
            .env("RUST_LOG", log_filter());
        let daemon = Daemon::spawn("tortie", cmd, &self.dir.join("tortie.log"))?;
        self.daemon = Some(daemon);
        let ready = crate::wait::wait_for("tortie API", Duration::from_secs(15), || {
            self.status().is_ok()
        });
        if let Err(e) = ready {
            return Err(LabError::Invalid(format!(
                "{e}; tortie log:\n{}",
                self.log_tail(30)
            )));
        }
        Ok(())
    }

    pub fn netns(&self) -> &str {
        &self.netns
    }

    pub fn daemon(&mut self) -> Option<&mut Daemon> {
        self.daemon.as_mut()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        self.daemon
            .as_ref()
            .map(|d| d.log_tail(lines))
            .unwrap_or_default()
    }

    /// SIGKILL, no clean-up: a crash.
    pub fn kill_hard(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.kill_hard();
        }
    }

    /// SIGTERM: a clean stop (routes and containers stay).
    pub fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.stop();
        }
    }

    /// Rewrites the config file with `cfg` and sends SIGHUP (a live reload).
    pub fn reload(&self, cfg: &TortieConfig) -> Result<()> {
        std::fs::write(&self.config_path, cfg.render())
            .map_err(|e| LabError::io(format!("writing {}", self.config_path.display()), e))?;
        let pid = self
            .daemon
            .as_ref()
            .map(Daemon::pid)
            .ok_or_else(|| LabError::Invalid("tortie is not running".into()))?;
        run(std::process::Command::new("kill").args(["-HUP", &pid.to_string()])).map(|_| ())
    }

    /// `tortie routes --filtered -o json`: (prefix, peer, reason) of every
    /// path refused on import.
    pub fn filtered(&self) -> Result<Vec<(String, String, String)>> {
        let out = self.cli("routes", &["--filtered", "-o", "json"])?;
        let v: Value = serde_json::from_str(&out).map_err(|e| {
            LabError::parse("tortie routes --filtered -o json", format!("{e}: {out}"))
        })?;
        let mut rows = Vec::new();
        for r in v.as_array().into_iter().flatten() {
            let prefix = r.get("prefix").and_then(Value::as_str).unwrap_or("");
            for p in r
                .get("paths")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(why) = p.get("filtered").and_then(Value::as_str) {
                    let peer = p.get("peer").and_then(Value::as_str).unwrap_or("");
                    rows.push((prefix.to_string(), peer.to_string(), why.to_string()));
                }
            }
        }
        Ok(rows)
    }

    /// Runs `tortie <sub> --socket S <args>` and returns stdout.
    pub fn cli(&self, sub: &str, args: &[&str]) -> Result<String> {
        let mut cmd = Netns::existing(&self.netns).command(&self.bin.to_string_lossy());
        cmd.arg(sub).arg("--socket").arg(&self.socket).args(args);
        run(&mut cmd)
    }

    /// `tortie status -o json`.
    pub fn status(&self) -> Result<Value> {
        let out = self.cli("status", &["-o", "json"])?;
        serde_json::from_str(&out)
            .map_err(|e| LabError::parse("tortie status -o json", format!("{e}: {out}")))
    }

    /// `(peer address, state)` for every configured peer.
    pub fn peer_states(&self) -> Result<Vec<(String, String)>> {
        Ok(peer_states(&self.status()?))
    }

    /// `tortie routes -o json`, one entry per prefix (its best path).
    pub fn routes(&self) -> Result<Vec<TortieRoute>> {
        let out = self.cli("routes", &["-o", "json"])?;
        let v: Value = serde_json::from_str(&out)
            .map_err(|e| LabError::parse("tortie routes -o json", format!("{e}: {out}")))?;
        Ok(parse_routes(&v))
    }

    /// The peer object of `tortie status -o json` for `addr`.
    pub fn peer(&self, addr: &str) -> Result<Value> {
        let v = self.status()?;
        v.get("peers")
            .and_then(Value::as_array)
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p.get("address").and_then(Value::as_str) == Some(addr))
            })
            .cloned()
            .ok_or_else(|| {
                LabError::parse("tortie status -o json", format!("no peer {addr} in {v}"))
            })
    }

    /// True when every configured peer is Established (and there is one).
    pub fn all_established(&self) -> bool {
        self.peer_states()
            .map(|p| !p.is_empty() && p.iter().all(|(_, s)| s.eq_ignore_ascii_case("established")))
            .unwrap_or(false)
    }

    /// `tortie attach --netns PATH --id ID [--ip A] -o json`; returns the
    /// container's address.
    pub fn attach(&self, netns_path: &Path, id: &str, ip: Option<&str>) -> Result<String> {
        let p = netns_path.to_string_lossy();
        let mut args = vec!["--netns", p.as_ref(), "--id", id, "-o", "json"];
        if let Some(ip) = ip {
            args.extend(["--ip", ip]);
        }
        let out = self.cli("attach", &args)?;
        attached_address(&out).ok_or_else(|| LabError::parse("tortie attach -o json", out))
    }

    /// `tortie detach --id ID`.
    pub fn detach(&self, id: &str) -> Result<()> {
        self.cli("detach", &["--id", id]).map(|_| ())
    }
}

/// The agent's `RUST_LOG`: `info`, or env `TORTIE_LAB_RUST_LOG` when set
/// (e.g. `info,tortie_probe=trace` for the probe trace of `tortie-bench
/// loadlat`).
fn log_filter() -> String {
    std::env::var("TORTIE_LAB_RUST_LOG").unwrap_or_else(|_| "info".to_string())
}

impl Drop for TortieNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The best path of one prefix in `tortie routes -o json`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TortieRoute {
    pub prefix: String,
    /// Peer it came from; `None` when locally originated.
    pub peer: Option<String>,
    pub as_path: Vec<u32>,
    pub next_hop: Option<String>,
    pub stale: bool,
    /// A kernel route for it carries tortie's protocol number.
    pub installed: bool,
}

/// Parses `tortie routes -o json` (an array, or an object with `routes`).
pub fn parse_routes(v: &Value) -> Vec<TortieRoute> {
    let list = v
        .as_array()
        .or_else(|| v.get("routes").and_then(Value::as_array));
    let mut out = Vec::new();
    for r in list.into_iter().flatten() {
        let Some(prefix) = r.get("prefix").and_then(Value::as_str) else {
            continue;
        };
        let paths = r.get("paths").and_then(Value::as_array);
        let best = paths
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p.get("best").and_then(Value::as_bool) == Some(true))
            })
            .or_else(|| paths.and_then(|ps| ps.first()));
        let s = |k: &str| {
            best.and_then(|b| b.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        out.push(TortieRoute {
            prefix: prefix.to_string(),
            peer: s("peer"),
            as_path: s("as_path")
                .map(|a| {
                    a.split_whitespace()
                        .filter_map(|x| {
                            x.trim_matches(|c| c == '{' || c == '}' || c == ',')
                                .parse()
                                .ok()
                        })
                        .collect()
                })
                .unwrap_or_default(),
            next_hop: s("next_hop"),
            stale: best
                .and_then(|b| b.get("stale"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            installed: r.get("installed").and_then(Value::as_bool).unwrap_or(false),
        });
    }
    out
}

/// Extracts `(address, state)` pairs from `tortie status -o json`, accepting
/// a top-level array or an object with a `peers` array; the address key may
/// be `address` or `peer`.
pub fn peer_states(v: &Value) -> Vec<(String, String)> {
    let list = v
        .as_array()
        .or_else(|| v.get("peers").and_then(Value::as_array));
    list.into_iter()
        .flatten()
        .filter_map(|p| {
            let addr = p.get("address").or_else(|| p.get("peer"))?.as_str()?;
            let state = p.get("state")?.as_str()?;
            Some((addr.to_string(), state.to_string()))
        })
        .collect()
}

/// Every address in `tortie attach -o json` output (its `addresses`, one
/// per family, IPv4 first), else the one [`attached_address`] finds.
pub fn attached_addresses(out: &str) -> Vec<String> {
    let listed: Vec<String> = serde_json::from_str::<Value>(out)
        .ok()
        .and_then(|v| v.get("addresses").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a.get("address").and_then(Value::as_str))
        .filter_map(|a| a.split('/').next()?.parse::<IpAddr>().ok())
        .map(|a| a.to_string())
        .collect();
    if listed.is_empty() {
        attached_address(out).into_iter().collect()
    } else {
        listed
    }
}

/// The address in `tortie attach -o json` output (`address` or `ip`, with or
/// without a prefix length), or a bare address printed as text.
pub fn attached_address(out: &str) -> Option<String> {
    let addr = match serde_json::from_str::<Value>(out) {
        Ok(v) => v
            .get("address")
            .or_else(|| v.get("ip"))
            .and_then(Value::as_str)
            .map(str::to_string)?,
        Err(_) => out.split_whitespace().last()?.to_string(),
    };
    let ip = addr.split('/').next()?;
    ip.parse::<IpAddr>().ok().map(|a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_shapes() {
        let a: Value =
            serde_json::from_str(r#"[{"address":"192.0.2.1","state":"Established"}]"#).unwrap();
        assert_eq!(
            peer_states(&a),
            vec![("192.0.2.1".into(), "Established".into())]
        );
        let b: Value =
            serde_json::from_str(r#"{"peers":[{"peer":"192.0.2.2","state":"Active"}]}"#).unwrap();
        assert_eq!(peer_states(&b), vec![("192.0.2.2".into(), "Active".into())]);
    }

    #[test]
    fn parses_routes_json() {
        let v: Value = serde_json::from_str(
            r#"[{"prefix":"10.9.0.0/24","installed":true,"paths":[{"peer":"198.51.100.1","next_hop":"198.51.100.1","as_path":"65001 65002","origin":"igp","best":true,"ecmp":true,"stale":false}]}]"#,
        )
        .unwrap();
        let r = parse_routes(&v);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].as_path, vec![65001, 65002]);
        assert_eq!(r[0].next_hop.as_deref(), Some("198.51.100.1"));
        assert!(r[0].installed);
    }

    #[test]
    fn parses_attach_output() {
        assert_eq!(
            attached_address(r#"{"address":"10.244.1.3/32"}"#).as_deref(),
            Some("10.244.1.3")
        );
        assert_eq!(
            attached_address("10.244.1.4\n").as_deref(),
            Some("10.244.1.4")
        );
        assert_eq!(attached_address("nonsense"), None);
        let dual = r#"{"ip":"10.244.1.3","addresses":[{"address":"10.244.1.3/32","gateway":"169.254.1.1"},{"address":"fd00::3/128","gateway":"fe80::ecee:eeff:feee:eeee"}]}"#;
        assert_eq!(attached_addresses(dual), ["10.244.1.3", "fd00::3"]);
        assert_eq!(attached_addresses(r#"{"ip":"10.244.1.3"}"#), ["10.244.1.3"]);
    }

    #[test]
    fn renders_config() {
        let mut c = TortieConfig::new(
            "n1",
            "198.51.100.2/24",
            64512,
            "10.244.1.0/26",
            Path::new("/w"),
        );
        c.peers
            .push(TortiePeer::new("198.51.100.1".parse().unwrap(), 65001));
        let t = c.render();
        let v: toml::Table = t.parse().unwrap();
        assert_eq!(v["node"]["asn"].as_integer(), Some(64512));
        assert_eq!(v["peer"][0]["address"].as_str(), Some("198.51.100.1"));
        assert_eq!(v["api"]["socket"].as_str(), Some("/w/tortie.sock"));
        assert_eq!(v["node"]["address"].as_str(), Some("198.51.100.2/24"));
        c.address = "198.51.100.2/24,2001:db8:5e::2/64".into();
        let v: toml::Table = c.render().parse().unwrap();
        let a = v["node"]["address"].as_array().unwrap();
        assert_eq!(a[1].as_str(), Some("2001:db8:5e::2/64"));
        assert!(v["peer"][0].get("families").is_none());
        c.peers[0].families = vec!["ipv4".into(), "ipv6".into()];
        let v: toml::Table = c.render().parse().unwrap();
        let f = v["peer"][0]["families"].as_array().unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].as_str(), Some("ipv6"));
    }
}
