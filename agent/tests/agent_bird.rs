//! Root integration tests against BIRD 2 (Debian's package) in its own
//! namespace: an agent learns one prefix from two BIRD routers and installs
//! one multipath kernel route; an agent peers eBGP with BIRD and each side
//! learns the other's routes. Skipped without root; BIRD is required in CI.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// BIRD 2 (Debian's package) in its own namespace, killed on drop.
struct Bird {
    child: std::process::Child,
    sock: std::path::PathBuf,
}

impl Bird {
    fn birdc(&self, args: &[&str]) -> String {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(&self.sock)
            .args(args)
            .output()
            .expect("birdc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts BIRD with `conf` (text) in `ns`; its control socket under `dir`.
fn start_bird(ns: &Netns, dir: &std::path::Path, name: &str, conf: &str) -> Bird {
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, conf).expect("bird.conf");
    let sock = dir.join(format!("{name}.ctl"));
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.name, "bird", "-f", "-c"])
        .arg(&path)
        .arg("-s")
        .arg(&sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting bird");
    Bird { child, sock }
}

fn bird_missing() -> bool {
    if Command::new("bird").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "bird is missing in CI");
        eprintln!("skipped: bird not installed");
        return true;
    }
    false
}

#[test]
fn ecmp_from_two_routers_becomes_a_multipath_kernel_route() {
    if !root_or_skip() || bird_missing() {
        return;
    }
    let tg = tag("em");
    let dir = tempfile::Builder::new()
        .prefix("tortie-ecmp-")
        .tempdir()
        .expect("tempdir");
    let node = Netns::new(format!("{tg}-n"));
    let r1 = Netns::new(format!("{tg}-r1"));
    let r2 = Netns::new(format!("{tg}-r2"));
    let pid = std::process::id();
    link(
        &node,
        &format!("e{pid}a"),
        "192.0.2.11/24",
        &r1,
        &format!("e{pid}b"),
        "192.0.2.1/24",
    );
    link(
        &node,
        &format!("e{pid}c"),
        "198.51.100.11/24",
        &r2,
        &format!("e{pid}d"),
        "198.51.100.2/24",
    );
    // r2 reaches the node's BGP address (192.0.2.11) over its own link.
    sh(&[
        "ip",
        "-n",
        &r2.name,
        "route",
        "add",
        "192.0.2.11/32",
        "via",
        "198.51.100.11",
    ]);
    let common = "protocol device {}\nprotocol static { ipv4; route 203.0.113.0/24 blackhole; }\n";
    let _b1 = start_bird(
        &r1,
        dir.path(),
        "r1",
        &format!(
            "router id 192.0.2.1;\n{common}protocol bgp tortie {{\n  local 192.0.2.1 as 65001;\n  \
             neighbor 192.0.2.11 as 64512;\n  ipv4 {{ import all; export all; }};\n}}\n"
        ),
    );
    let _b2 = start_bird(
        &r2,
        dir.path(),
        "r2",
        &format!(
            "router id 198.51.100.2;\n{common}protocol bgp tortie {{\n  local 198.51.100.2 as 65001;\n  \
             neighbor 192.0.2.11 as 64512;\n  multihop 2;\n  ipv4 {{ import all; export all; }};\n}}\n"
        ),
    );
    let agent = Agent::start(
        dir.path().join("a"),
        &node,
        &NodeSpec {
            name: "node-a",
            address: "192.0.2.11/24",
            pod_cidr: "10.244.1.0/26",
            asn: 64512,
            peers: vec![("192.0.2.1", 65001, "r1"), ("198.51.100.2", 65001, "r2")],
        },
    );
    agent.wait_established(Duration::from_secs(30));
    wait_until(Duration::from_secs(10), "a two-way multipath route", || {
        let r = sh(&["ip", "-n", &node.name, "route", "show", "203.0.113.0/24"]);
        r.contains("nexthop via 192.0.2.1") && r.contains("nexthop via 198.51.100.2")
    });
    let out = cli(&agent.socket(), &["routes", "-o", "json"]);
    let routes: serde_json::Value = serde_json::from_slice(&out.stdout).expect("routes JSON");
    let r = routes
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["prefix"] == "203.0.113.0/24"))
        .unwrap_or_else(|| panic!("no 203.0.113.0/24 in {routes}"));
    let ecmp = r["paths"]
        .as_array()
        .map(|p| p.iter().filter(|p| p["ecmp"] == true).count());
    assert_eq!(ecmp, Some(2), "{r}");
    assert_eq!(r["installed"], true);
}

#[test]
fn agent_peers_with_bird_ebgp_both_ways() {
    if !root_or_skip() || bird_missing() {
        return;
    }
    let tg = tag("bd");
    let dir = tempfile::Builder::new()
        .prefix("tortie-bird-")
        .tempdir()
        .expect("tempdir");
    let node = Netns::new(format!("{tg}-n"));
    let rtr = Netns::new(format!("{tg}-r"));
    let c = Netns::new(format!("{tg}-c"));
    let (ia, ib) = (
        format!("b{}a", std::process::id()),
        format!("b{}b", std::process::id()),
    );
    link(&node, &ia, "192.0.2.11/24", &rtr, &ib, "192.0.2.1/24");
    let bird = start_bird(
        &rtr,
        dir.path(),
        "bird",
        "router id 192.0.2.1;\nprotocol device {}\nprotocol kernel { ipv4 { export all; }; }\n\
         protocol static { ipv4; route 198.51.100.0/24 blackhole; }\n\
         protocol bgp tortie {\n  local 192.0.2.1 as 65001;\n  neighbor 192.0.2.11 as 64512;\n  graceful restart on;\n  ipv4 { import all; export all; };\n}\n",
    );
    let agent = Agent::start(
        dir.path().join("a"),
        &node,
        &NodeSpec {
            name: "node-a",
            address: "192.0.2.11/24",
            pod_cidr: "10.244.1.0/26",
            asn: 64512,
            peers: vec![("192.0.2.1", 65001, "bird")],
        },
    );
    agent.wait_established(Duration::from_secs(30));
    let ip = agent.attach(&c, "c1");
    // BIRD learns the block from tortie…
    wait_until(Duration::from_secs(10), "the block in BIRD", || {
        bird.birdc(&["show", "route", "for", "10.244.1.0/26"])
            .contains("10.244.1.0/26")
    });
    // …and tortie installs what BIRD sends, next hop the router.
    wait_until(
        Duration::from_secs(10),
        "BIRD's route in the node's kernel",
        || {
            sh(&["ip", "-n", &node.name, "route", "show", "198.51.100.0/24"])
                .contains("via 192.0.2.1")
        },
    );
    // The router reaches the container through the block route.
    let (tx, rx) = ping(&rtr, &ip, 2, "0.2");
    assert_eq!((tx, rx), (2, 2), "router -> container {ip}");
    let s = agent.status_json();
    assert_eq!(s["peers"][0]["state"], "Established");
    assert_eq!(s["peers"][0]["asn"], 65001);
    let m = agent.scrape();
    assert!(
        m.contains("tortie_bgp_session_up{peer=\"192.0.2.1\",peer_asn=\"65001\"} 1"),
        "{m}"
    );
}
