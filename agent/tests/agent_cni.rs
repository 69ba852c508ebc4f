//! Root integration test of `tortie-cni` against a running agent, driven like
//! a container runtime drives it: `CNI_*` environment variables and the
//! network config on stdin; results and errors read from stdout. Every test
//! runs each build of the plugin ([`plugins`]: cargo's std build and the
//! no-libc one); the forwarder's own errors are in cni_forwarder.rs.

mod common;

use common::*;
use serde_json::{Value, json};

mod cni_plugins;
use cni_plugins::{Plugin, plugins};

/// Runs the plugin; returns (exit success, stdout JSON or Null).
fn cni(p: &Plugin, command: &str, env: &[(&str, &str)], conf: &Value) -> (bool, Value) {
    let out = p.run(command, env, conf.to_string().as_bytes());
    let text = String::from_utf8_lossy(&out.stdout);
    let v = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} printed non-JSON {text:?}: {e}", p.name))
    };
    (out.status.success(), v)
}

/// A node namespace whose addresses (`address`: a string or a TOML array)
/// are on lo (no fabric), an agent without peers serving `pod_cidr`, and the
/// network config naming its socket.
fn cni_node(
    tg: &str,
    address: &'static str,
    pod_cidr: &'static str,
) -> (tempfile::TempDir, Netns, Agent, Value) {
    let dir = tempfile::Builder::new()
        .prefix("tortie-cni-")
        .tempdir()
        .expect("tempdir");
    let node = Netns::new(format!("{tg}-n"));
    for a in address.split('"').filter(|a| a.contains('/')) {
        let ip = a.split('/').next().unwrap_or(a);
        let host = if ip.contains(':') { "128" } else { "32" };
        let on_lo = format!("{ip}/{host}");
        sh(&[
            "ip", "-n", &node.name, "addr", "add", &on_lo, "dev", "lo", "nodad",
        ]);
    }
    let agent = Agent::start(
        dir.path().join("a"),
        &node,
        &NodeSpec {
            name: "node-a",
            address,
            pod_cidr,
            asn: 64512,
            peers: vec![],
        },
    );
    let sock = agent.socket().display().to_string();
    let conf = json!({"cniVersion": "1.1.0", "name": "tortie", "type": "tortie", "socket": sock});
    (dir, node, agent, conf)
}

#[test]
fn cni_add_check_del_status_gc_against_an_agent() {
    if !root_or_skip() {
        return;
    }
    for (k, p) in plugins().iter().enumerate() {
        add_check_del_status_gc(p, &tag(&format!("cn{k}")));
    }
}

fn add_check_del_status_gc(p: &Plugin, tg: &str) {
    let (_dir, node, mut agent, conf) = cni_node(tg, "192.0.2.11/24", "10.244.7.0/28");
    let c1 = Netns::new(format!("{tg}-c1"));
    let c2 = Netns::new(format!("{tg}-c2"));

    // VERSION
    let (ok, v) = cni(p, "VERSION", &[], &json!({"cniVersion": "1.1.0"}));
    assert!(ok);
    assert!(
        v["supportedVersions"]
            .as_array()
            .is_some_and(|s| s.contains(&json!("1.1.0"))),
        "{v}"
    );

    // STATUS: the agent answers
    let (ok, v) = cni(p, "STATUS", &[], &conf);
    assert!(ok, "{v}");

    // ADD with IP= of the node's own address or the gateway: refused (code
    // 7), nothing created.
    let c2_path = c2.path();
    for ip in ["192.0.2.11", "169.254.1.1", "127.0.0.5"] {
        let args = format!("IgnoreUnknown=1;IP={ip}");
        let (ok, v) = cni(
            p,
            "ADD",
            &[
                ("CNI_CONTAINERID", "refused"),
                ("CNI_NETNS", c2_path.as_str()),
                ("CNI_IFNAME", "eth0"),
                ("CNI_ARGS", args.as_str()),
            ],
            &conf,
        );
        assert!(!ok, "IP={ip} accepted: {v}");
        assert_eq!(v["code"], 7, "IP={ip}: {v}");
        assert!(v["msg"].as_str().unwrap_or("").contains("refusing"), "{v}");
    }
    assert!(!sh(&["ip", "-n", &node.name, "-o", "link", "show"]).contains(" tt"));

    // ADD
    let c1_path = c1.path();
    let env1 = [
        ("CNI_CONTAINERID", "cid1"),
        ("CNI_NETNS", c1_path.as_str()),
        ("CNI_IFNAME", "eth0"),
    ];
    let (ok, add) = cni(p, "ADD", &env1, &conf);
    assert!(ok, "ADD failed: {add}\n{}", agent.log());
    assert_eq!(add["cniVersion"], "1.1.0");
    let addr = add["ips"][0]["address"]
        .as_str()
        .expect("ips[0].address")
        .to_string();
    assert!(
        addr.starts_with("10.244.7.") && addr.ends_with("/32"),
        "{add}"
    );
    assert_eq!(add["ips"][0]["gateway"], "169.254.1.1");
    assert_eq!(add["ips"][0]["interface"], 1);
    assert_eq!(add["interfaces"][1]["name"], "eth0");
    assert_eq!(add["interfaces"][1]["sandbox"], c1_path);
    let mac = add["interfaces"][1]["mac"].as_str().unwrap_or_default();
    assert_eq!(mac.len(), 17, "a MAC is required by podman: {add}");
    assert_eq!(add["routes"][0]["dst"], "0.0.0.0/0");
    let ip_only = addr.trim_end_matches("/32");
    assert!(sh(&["ip", "-n", &c1.name, "addr", "show", "eth0"]).contains(&addr));
    assert!(sh(&["ip", "-n", &c1.name, "link", "show", "eth0"]).contains(mac));
    // The container reaches the node through the veth.
    let (tx, rx) = ping(&c1, "192.0.2.11", 2, "0.2");
    assert_eq!((tx, rx), (2, 2), "container {ip_only} -> node");

    // ADD again (runtime retry): the same answer.
    let (ok, again) = cni(p, "ADD", &env1, &conf);
    assert!(ok, "{again}");
    assert_eq!(again, add);

    // CHECK with the ADD result as prevResult.
    let mut check_conf = conf.clone();
    check_conf["prevResult"] = add.clone();
    let (ok, v) = cni(p, "CHECK", &env1, &check_conf);
    assert!(ok, "CHECK failed: {v}");
    // CHECK with a prevResult that lists another address fails with 102.
    let mut wrong = check_conf.clone();
    wrong["prevResult"]["ips"][0]["address"] = json!("10.99.0.1/32");
    let (ok, v) = cni(p, "CHECK", &env1, &wrong);
    assert!(!ok);
    assert_eq!(v["code"], 102, "{v}");

    // A second container, then GC keeping only the first.
    let env2 = [
        ("CNI_CONTAINERID", "cid2"),
        ("CNI_NETNS", c2_path.as_str()),
        ("CNI_IFNAME", "eth0"),
    ];
    let (ok, add2) = cni(p, "ADD", &env2, &conf);
    assert!(ok, "{add2}");
    assert_ne!(add2["ips"][0]["address"], add["ips"][0]["address"]);
    // Both host veths are in the agent's namespace (the agent's attach
    // thread is reused: it must be back home after each attach), each with
    // a permanent neighbour entry for its container.
    for a in [&add, &add2] {
        let veth = a["interfaces"][0]["name"].as_str().unwrap_or_default();
        let ip = a["ips"][0]["address"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches("/32");
        let link = sh(&["ip", "-n", &node.name, "-o", "link", "show", veth]);
        assert!(link.contains("LOWER_UP"), "{veth} in the node: {link}");
        let neigh = sh(&["ip", "-n", &node.name, "neigh", "show", ip, "dev", veth]);
        assert!(neigh.contains("PERMANENT"), "{neigh}");
    }
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "cid1", "ifname": "eth0"}]);
    let (ok, v) = cni(p, "GC", &[], &gc);
    assert!(ok, "GC failed: {v}");
    assert!(
        !sh(&["ip", "-n", &c2.name, "link"]).contains("eth0"),
        "GC left cid2's interface"
    );
    assert!(
        sh(&["ip", "-n", &c1.name, "link"]).contains("eth0"),
        "GC removed a valid attachment"
    );

    // DEL, idempotent, also with an empty CNI_NETNS (ctr does that).
    let (ok, v) = cni(p, "DEL", &env1, &conf);
    assert!(ok, "DEL failed: {v}");
    assert_eq!(v, Value::Null);
    assert!(!sh(&["ip", "-n", &c1.name, "link"]).contains("eth0"));
    let (ok, v) = cni(p, "DEL", &env1, &conf);
    assert!(ok, "second DEL failed: {v}");
    let (ok, v) = cni(
        p,
        "DEL",
        &[
            ("CNI_CONTAINERID", "cid1"),
            ("CNI_NETNS", ""),
            ("CNI_IFNAME", "eth0"),
        ],
        &conf,
    );
    assert!(ok, "DEL with empty CNI_NETNS failed: {v}");
    // CHECK after DEL: container unknown (3).
    let (ok, v) = cni(p, "CHECK", &env1, &check_conf);
    assert!(!ok);
    assert_eq!(v["code"], 3, "{v}");
    assert_eq!(agent.status_json()["containers"], 0);

    // A namespace that does not exist: invalid (7), and the address is rolled back.
    let gone = format!("/run/netns/{tg}-gone");
    let (ok, v) = cni(
        p,
        "ADD",
        &[
            ("CNI_CONTAINERID", "cid3"),
            ("CNI_NETNS", gone.as_str()),
            ("CNI_IFNAME", "eth0"),
        ],
        &conf,
    );
    assert!(!ok);
    assert_eq!(v["code"], 7, "{v}");
    assert_eq!(
        agent.status_json()["ipam"]["allocated"],
        0,
        "the failed ADD kept its address"
    );

    // Errors: bad env, bad config, old version.
    let (ok, v) = cni(
        p,
        "ADD",
        &[("CNI_CONTAINERID", "x"), ("CNI_IFNAME", "eth0")],
        &conf,
    );
    assert!(!ok);
    assert_eq!(v["code"], 4, "{v}");
    let (ok, v) = cni(
        p,
        "ADD",
        &env1,
        &json!({"cniVersion": "9.0.0", "name": "tortie", "type": "tortie", "socket": conf["socket"].clone()}),
    );
    assert!(!ok);
    assert_eq!(v["code"], 1, "{v}");

    // 0.4.0 results carry "version": "4".
    let old = json!({"cniVersion": "0.4.0", "name": "tortie", "type": "tortie", "socket": conf["socket"].clone()});
    let (ok, v) = cni(p, "ADD", &env1, &old);
    assert!(ok, "{v}");
    assert_eq!(v["ips"][0]["version"], "4");
    let (ok, _) = cni(p, "DEL", &env1, &old);
    assert!(ok);

    // Agent down: ADD says "try again later" (11), STATUS "not available" (50).
    agent.kill9();
    let (ok, v) = cni(p, "ADD", &env1, &conf);
    assert!(!ok);
    assert_eq!(v["code"], 11, "{v}");
    let (ok, v) = cni(p, "STATUS", &[], &conf);
    assert!(!ok);
    assert_eq!(v["code"], 50, "{v}");
}

#[test]
fn cni_container_pings_a_cli_container_on_another_node() {
    if !root_or_skip() {
        return;
    }
    let t = TwoNodes::new("cx");
    t.a.wait_established(std::time::Duration::from_secs(20));
    let conf =
        json!({"cniVersion": "1.1.0", "name": "tortie", "type": "tortie", "socket": t.a.socket()});
    let ca = t.ca.path();
    let env = [
        ("CNI_CONTAINERID", "cx1"),
        ("CNI_NETNS", ca.as_str()),
        ("CNI_IFNAME", "eth0"),
    ];
    let ip_b = t.b.attach(&t.cb, "cb");
    // Each build of the plugin attaches and detaches the same container.
    for p in &plugins() {
        let (ok, add) = cni(p, "ADD", &env, &conf);
        assert!(ok, "{} ADD: {add}\n{}", p.name, t.a.log());
        let ip_a = add["ips"][0]["address"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches("/32")
            .to_string();
        wait_until(std::time::Duration::from_secs(10), "A's block on B", || {
            sh(&["ip", "-n", &t.nb.name, "route", "show", "10.244.1.0/26"])
                .contains("via 192.0.2.11")
        });
        // And the way back: A must have learned B's block before A's container
        // pings into it (the ping's replies need both routes).
        wait_until(std::time::Duration::from_secs(10), "B's block on A", || {
            sh(&["ip", "-n", &t.na.name, "route", "show", "10.244.2.0/26"])
                .contains("via 192.0.2.12")
        });
        assert_eq!(
            ping(&t.ca, &ip_b, 3, "0.2"),
            (3, 3),
            "{}: CNI container {ip_a} -> {ip_b}",
            p.name
        );
        assert_eq!(
            ping(&t.cb, &ip_a, 3, "0.2"),
            (3, 3),
            "{}: {ip_b} -> CNI container {ip_a}",
            p.name
        );
        let (ok, v) = cni(p, "DEL", &env, &conf);
        assert!(ok, "{} DEL: {v}", p.name);
    }
}

/// An ADD (or `tortie attach`) repeated after the agent restarted returns the
/// same result, MACs included: podman rejects results without a MAC.
#[test]
fn add_repeated_after_a_restart_keeps_the_macs() {
    if !root_or_skip() {
        return;
    }
    for (k, p) in plugins().iter().enumerate() {
        add_after_restarts(p, &tag(&format!("cr{k}")));
    }
}

fn add_after_restarts(p: &Plugin, tg: &str) {
    let dir = tempfile::Builder::new()
        .prefix("tortie-cni-restart-")
        .tempdir()
        .expect("tempdir");
    let node = Netns::new(format!("{tg}-n"));
    let c1 = Netns::new(format!("{tg}-c1"));
    address_on_lo(&node, "192.0.2.11/32");
    let mut agent = Agent::start(
        dir.path().join("a"),
        &node,
        &NodeSpec {
            name: "node-a",
            address: "192.0.2.11/24",
            pod_cidr: "10.244.8.0/28",
            asn: 64512,
            peers: vec![],
        },
    );
    let conf = json!({"cniVersion": "1.1.0", "name": "tortie", "type": "tortie", "socket": agent.socket()});
    let c1_path = c1.path();
    let env = [
        ("CNI_CONTAINERID", "cr1"),
        ("CNI_NETNS", c1_path.as_str()),
        ("CNI_IFNAME", "eth0"),
    ];
    let (ok, add) = cni(p, "ADD", &env, &conf);
    assert!(ok, "ADD: {add}\n{}", agent.log());
    let mac = add["interfaces"][1]["mac"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(mac.len(), 17, "{add}");
    assert_eq!(
        add["interfaces"][0]["mac"].as_str().map(str::len),
        Some(17),
        "{add}"
    );
    assert!(sh(&["ip", "-n", &c1.name, "link", "show", "eth0"]).contains(&mac));

    for restart in ["SIGKILL", "SIGTERM"] {
        if restart == "SIGKILL" {
            agent.kill9();
        } else {
            agent.signal(nix::sys::signal::Signal::SIGTERM);
            assert_eq!(agent.wait(std::time::Duration::from_secs(10)), Some(0));
        }
        agent.spawn();
        let (ok, again) = cni(p, "ADD", &env, &conf);
        assert!(ok, "ADD after {restart}: {again}\n{}", agent.log());
        assert_eq!(again, add, "ADD after {restart} and restart");
        // The same id through the CLI.
        let out = cli(
            &agent.socket(),
            &[
                "attach", "--netns", &c1_path, "--id", "cr1/eth0", "-o", "json",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("attach JSON");
        assert_eq!(v["container_mac"], json!(mac), "{v}");
        assert_eq!(v["host_mac"], add["interfaces"][0]["mac"], "{v}");
    }
    let (ok, v) = cni(p, "DEL", &env, &conf);
    assert!(ok, "DEL: {v}");
    assert_eq!(agent.status_json()["ipam"]["allocated"], 0);
}

/// Dual-stack through the plugin (issue 11 §2): ADD answers one IP and one
/// default route per family (CNI spec 1.1), CHECK wants both, `IP=` takes an
/// IPv6 address, GC and DEL release both families.
#[test]
fn cni_dual_stack_add_check_gc_del() {
    if !root_or_skip() {
        return;
    }
    for (k, p) in plugins().iter().enumerate() {
        dual_stack_add_check_gc_del(p, &tag(&format!("cd{k}")));
    }
}

fn dual_stack_add_check_gc_del(p: &Plugin, tg: &str) {
    let (_dir, node, agent, conf) = cni_node(
        tg,
        r#"["192.0.2.11/24", "2001:db8:1::11/64"]"#,
        r#"["10.244.7.0/28", "fd00:10:244:7::/124"]"#,
    );
    let c1 = Netns::new(format!("{tg}-c1"));
    let c2 = Netns::new(format!("{tg}-c2"));
    let (c1_path, c2_path) = (c1.path(), c2.path());
    let env1 = [
        ("CNI_CONTAINERID", "cid1"),
        ("CNI_NETNS", c1_path.as_str()),
        ("CNI_IFNAME", "eth0"),
    ];
    let (ok, add) = cni(p, "ADD", &env1, &conf);
    assert!(ok, "ADD failed: {add}\n{}", agent.log());
    let v4 = add["ips"][0]["address"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let v6 = add["ips"][1]["address"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(v4.starts_with("10.244.7.") && v4.ends_with("/32"), "{add}");
    assert_eq!(v6, "fd00:10:244:7::1/128", "{add}");
    assert_eq!(add["ips"][1]["gateway"], "fe80::ecee:eeff:feee:eeee");
    assert_eq!(
        add["routes"],
        json!([
            {"dst": "0.0.0.0/0", "gw": "169.254.1.1"},
            {"dst": "::/0", "gw": "fe80::ecee:eeff:feee:eeee"},
        ])
    );
    assert!(sh(&["ip", "-n", &c1.name, "-6", "addr", "show", "eth0"]).contains(&v6));
    let (tx, rx) = ping(&c1, "2001:db8:1::11", 2, "0.2");
    assert_eq!((tx, rx), (2, 2), "container {v6} -> node over IPv6");

    // CHECK: both addresses must be in prevResult.
    let mut check_conf = conf.clone();
    check_conf["prevResult"] = add.clone();
    let (ok, v) = cni(p, "CHECK", &env1, &check_conf);
    assert!(ok, "CHECK failed: {v}");
    let mut v4_only = check_conf.clone();
    v4_only["prevResult"]["ips"] = json!([add["ips"][0].clone()]);
    let (ok, v) = cni(p, "CHECK", &env1, &v4_only);
    assert!(!ok);
    assert_eq!(v["code"], 102, "{v}");

    // IP= with an IPv6 address: honoured, IPv4 allocated beside it.
    let env2 = [
        ("CNI_CONTAINERID", "cid2"),
        ("CNI_NETNS", c2_path.as_str()),
        ("CNI_IFNAME", "eth0"),
        ("CNI_ARGS", "IgnoreUnknown=1;IP=fd00:10:244:7::9"),
    ];
    let (ok, add2) = cni(p, "ADD", &env2, &conf);
    assert!(ok, "{add2}");
    assert_eq!(add2["ips"][1]["address"], "fd00:10:244:7::9/128");
    // IP= refusals hold for IPv6 too.
    for ip in ["2001:db8:1::11", "fe80::ecee:eeff:feee:eeee"] {
        let args = format!("IgnoreUnknown=1;IP={ip}");
        let env = [
            ("CNI_CONTAINERID", "refused"),
            ("CNI_NETNS", c2_path.as_str()),
            ("CNI_IFNAME", "eth1"),
            ("CNI_ARGS", args.as_str()),
        ];
        let (ok, v) = cni(p, "ADD", &env, &conf);
        assert!(!ok, "IP={ip} accepted: {v}");
        assert_eq!(v["code"], 7, "IP={ip}: {v}");
    }

    // GC keeping cid1 releases both of cid2's addresses.
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "cid1", "ifname": "eth0"}]);
    let (ok, v) = cni(p, "GC", &[], &gc);
    assert!(ok, "GC failed: {v}");
    let routes6 = sh(&[
        "ip", "-n", &node.name, "-6", "route", "show", "proto", "149",
    ]);
    assert!(!routes6.contains("fd00:10:244:7::9"), "{routes6}");
    let s = agent.status_json();
    assert_eq!(s["ipam"]["allocated"], 2, "{s}");

    // DEL releases both of cid1's.
    let (ok, v) = cni(p, "DEL", &env1, &conf);
    assert!(ok, "DEL failed: {v}");
    let s = agent.status_json();
    assert_eq!(s["ipam"]["allocated"], 0, "{s}");
    let routes6 = sh(&[
        "ip", "-n", &node.name, "-6", "route", "show", "proto", "149",
    ]);
    assert!(!routes6.contains("fd00:10:244:7::1 "), "{routes6}");
}
