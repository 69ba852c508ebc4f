//! ExaBGP in a namespace: a scripted (and, on purpose, misbehaving) peer.
//!
//! Static routes come from the config; a route may carry a raw attribute
//! (`attribute [ CODE FLAGS 0xVALUE ]`), which is how tests send malformed
//! attributes (RFC 7606). Everything ExaBGP receives is written as JSON lines
//! by an API process to `received.jsonl` in the work dir.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::error::{LabError, Result};
use crate::netns::Netns;
use crate::process::Daemon;

/// A static route, optionally with one raw path attribute appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExaRoute {
    pub prefix: String,
    /// `(type code, flags, value bytes)`, sent verbatim.
    pub raw_attribute: Option<(u8, u8, Vec<u8>)>,
}

/// One `neighbor` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExabgpConfig {
    pub router_id: Ipv4Addr,
    pub local_address: IpAddr,
    pub local_asn: u32,
    pub peer_address: IpAddr,
    pub peer_asn: u32,
    pub passive: bool,
    pub password: Option<String>,
    pub hold_time: u16,
    pub graceful_restart: bool,
    pub routes: Vec<ExaRoute>,
}

/// RFC 4648 §4 base64 with padding (the alphabet Python's `b64decode` reads).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl ExabgpConfig {
    pub fn render(&self, dump_script: &Path) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "process dump {{\n  run {};\n  encoder json;\n}}",
            dump_script.display()
        );
        let _ = writeln!(s, "neighbor {} {{", self.peer_address);
        let _ = writeln!(s, "  router-id {};", self.router_id);
        let _ = writeln!(s, "  local-address {};", self.local_address);
        let _ = writeln!(
            s,
            "  local-as {};\n  peer-as {};",
            self.local_asn, self.peer_asn
        );
        let _ = writeln!(s, "  hold-time {};\n  group-updates false;", self.hold_time);
        if self.passive {
            s.push_str("  passive true;\n");
        }
        if let Some(p) = &self.password {
            // Written base64-encoded with `md5-base64 true`: ExaBGP's
            // tokeniser has no escapes for quotes, and without the flag its
            // "auto" mode base64-decodes any key made only of [a-f0-9]
            // (exabgp/reactor/network/tcp.py), so "abc123" would silently
            // become another key.
            let _ = writeln!(
                s,
                "  md5-password \"{}\";\n  md5-base64 true;",
                base64(p.as_bytes())
            );
        }
        s.push_str("  family {\n    ipv4 unicast;\n  }\n  capability {\n    route-refresh;\n");
        if self.graceful_restart {
            s.push_str("    graceful-restart 120;\n");
        }
        s.push_str("  }\n  api {\n    processes [ dump ];\n    receive {\n      parsed;\n      update;\n    }\n    neighbor-changes;\n  }\n");
        s.push_str("  static {\n");
        for r in &self.routes {
            let _ = write!(s, "    route {} next-hop self", r.prefix);
            if let Some((code, flags, value)) = &r.raw_attribute {
                let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
                let _ = write!(s, " attribute [ 0x{code:02x} 0x{flags:02x} 0x{hex} ]");
            }
            s.push_str(";\n");
        }
        s.push_str("  }\n}\n");
        s
    }
}

/// A running ExaBGP.
#[derive(Debug)]
pub struct Exabgp {
    pub received: PathBuf,
    /// Lines appended here are sent to ExaBGP as API commands.
    pub commands: PathBuf,
    daemon: Daemon,
}

impl Exabgp {
    pub fn start(ns: &Netns, dir: &Path, cfg: &ExabgpConfig) -> Result<Exabgp> {
        let received = dir.join("received.jsonl");
        let commands = dir.join("commands.txt");
        let script = dir.join("dump.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n# stdin: what ExaBGP received; stdout: API commands (ExaBGP watches it stay open)\nexec 3<&0\ncat <&3 >> '{}' &\nexec tail -n +1 -F '{}'\n",
                received.display(),
                commands.display()
            ),
        )
        .map_err(|e| LabError::io(format!("writing {}", script.display()), e))?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| LabError::io(format!("chmod {}", script.display()), e))?;
        // ExaBGP runs its API processes without privileges: let them append.
        std::fs::write(&received, "")
            .map_err(|e| LabError::io(format!("creating {}", received.display()), e))?;
        std::fs::write(&commands, "")
            .map_err(|e| LabError::io(format!("creating {}", commands.display()), e))?;
        for (p, mode) in [
            (dir, 0o755),
            (received.as_path(), 0o666),
            (commands.as_path(), 0o644),
        ] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                .map_err(|e| LabError::io(format!("chmod {}", p.display()), e))?;
        }
        let conf = dir.join("exabgp.conf");
        std::fs::write(&conf, cfg.render(&script))
            .map_err(|e| LabError::io(format!("writing {}", conf.display()), e))?;
        let mut cmd = ns.command("env");
        // Listen only when passive (ExaBGP connects out otherwise).
        let bind = if cfg.passive {
            cfg.local_address.to_string()
        } else {
            String::new()
        };
        cmd.args([
            "exabgp_api_cli=false".to_string(),
            "exabgp_daemon_drop=false".to_string(),
            "exabgp_log_destination=stdout".to_string(),
            format!("exabgp_tcp_bind={bind}"),
        ]);
        cmd.arg("exabgp").arg(&conf);
        let mut daemon = Daemon::spawn("exabgp", cmd, &dir.join("exabgp.log"))?;
        daemon.set_grace(Duration::from_secs(1));
        Ok(Exabgp {
            received,
            commands,
            daemon,
        })
    }

    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    /// Sends one API command, e.g. `announce route P next-hop self attribute [ … ]`.
    pub fn command(&self, line: &str) -> Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.commands)
            .map_err(|e| LabError::io(format!("opening {}", self.commands.display()), e))?;
        writeln!(f, "{line}")
            .map_err(|e| LabError::io(format!("writing {}", self.commands.display()), e))
    }

    /// Every JSON message the API process recorded so far.
    pub fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.received)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The last neighbor state reported ("up", "down", "connected").
    pub fn state(&self) -> Option<String> {
        self.messages()
            .iter()
            .rev()
            .filter(|m| m.get("type").and_then(Value::as_str) == Some("state"))
            .find_map(|m| {
                m.pointer("/neighbor/state")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
    }

    /// How many UPDATEs ExaBGP received that announce `prefix` (re-sends
    /// included, e.g. the answer to a ROUTE-REFRESH).
    pub fn announcements(&self, prefix: &str) -> usize {
        self.messages()
            .iter()
            .filter_map(|m| m.pointer("/neighbor/message/update/announce/ipv4 unicast"))
            .filter_map(Value::as_object)
            .filter(|a| {
                a.values()
                    .filter_map(Value::as_array)
                    .flatten()
                    .any(|n| n.get("nlri").and_then(Value::as_str) == Some(prefix))
            })
            .count()
    }

    /// Asks the peer to re-send its routes: ExaBGP's API command
    /// `announce route-refresh ipv4 unicast` sends a ROUTE-REFRESH (RFC 2918)
    /// to every established neighbor.
    pub fn route_refresh(&self) -> Result<()> {
        self.command("announce route-refresh ipv4 unicast")
    }

    /// Prefixes currently announced to ExaBGP (announces minus withdrawals,
    /// in order), with the AS_PATH and next hop of the latest announcement.
    pub fn received_routes(&self) -> Vec<(String, Vec<u32>, String)> {
        let mut table: Vec<(String, Vec<u32>, String)> = Vec::new();
        for m in self.messages() {
            let Some(u) = m.pointer("/neighbor/message/update") else {
                continue;
            };
            if let Some(w) = u
                .pointer("/withdraw/ipv4 unicast")
                .and_then(Value::as_array)
            {
                for n in w {
                    if let Some(p) = n.get("nlri").and_then(Value::as_str) {
                        table.retain(|(q, _, _)| q != p);
                    }
                }
            }
            let as_path: Vec<u32> = u
                .pointer("/attribute/as-path")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_u64().and_then(|n| u32::try_from(n).ok()))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(a) = u
                .pointer("/announce/ipv4 unicast")
                .and_then(Value::as_object)
            {
                for (nh, nlris) in a {
                    for n in nlris.as_array().into_iter().flatten() {
                        if let Some(p) = n.get("nlri").and_then(Value::as_str) {
                            table.retain(|(q, _, _)| q != p);
                            table.push((p.to_string(), as_path.clone(), nh.clone()));
                        }
                    }
                }
            }
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_raw_attribute() {
        let c = ExabgpConfig {
            router_id: Ipv4Addr::new(192, 0, 2, 9),
            local_address: "192.0.2.9".parse().unwrap(),
            local_asn: 65009,
            peer_address: "192.0.2.2".parse().unwrap(),
            peer_asn: 64512,
            passive: false,
            password: None,
            hold_time: 9,
            graceful_restart: false,
            routes: vec![ExaRoute {
                prefix: "10.9.1.0/24".into(),
                raw_attribute: Some((4, 0x80, vec![0, 1])),
            }],
        };
        let t = c.render(Path::new("/tmp/d.sh"));
        assert!(t.contains("route 10.9.1.0/24 next-hop self attribute [ 0x04 0x80 0x0001 ];"));
        assert!(t.contains("run /tmp/d.sh;"));
        assert!(!t.contains("md5-password"));
        let t = ExabgpConfig {
            password: Some("k3y".into()),
            ..c
        }
        .render(Path::new("/tmp/d.sh"));
        assert!(t.contains("  md5-password \"azN5\";\n  md5-base64 true;"));
        // A key ExaBGP's auto mode would mistake for base64, and one with a quote.
        for (key, b64) in [("abc123", "YWJjMTIz"), ("a\"b", "YSJi"), ("", "")] {
            assert_eq!(base64(key.as_bytes()), b64);
        }
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
    }
}
