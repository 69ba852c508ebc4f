//! Root integration tests: two `tortie run` agents in their own namespaces
//! peering iBGP over a veth; containers attached with `tortie attach` ping
//! each other across the nodes; status, routes and metrics are checked; the
//! agent is SIGKILLed and restarted under a running ping without loss.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn two_nodes_peer_attach_ping_status_metrics() {
    if !root_or_skip() {
        return;
    }
    let t = TwoNodes::established("tn", Stack::V4);

    let ip_a = t.a.attach(&t.ca, "ca");
    let ip_b = t.b.attach(&t.cb, "cb");
    assert!(ip_a.starts_with("10.244.1."), "{ip_a}");
    assert!(ip_b.starts_with("10.244.2."), "{ip_b}");
    // Attaching the same id again is idempotent.
    assert_eq!(t.a.attach(&t.ca, "ca"), ip_a);

    wait_until(
        Duration::from_secs(10),
        "the remote block in A's kernel",
        || sh(&["ip", "-n", &t.na.name, "route", "show", "10.244.2.0/26"]).contains("proto 149"),
    );
    let (tx, rx) = ping(&t.ca, &ip_b, 3, "0.2");
    assert_eq!(
        (tx, rx),
        (3, 3),
        "ping {ip_a} -> {ip_b}\nA log:\n{}",
        t.a.log()
    );
    let (tx, rx) = ping(&t.cb, &ip_a, 3, "0.2");
    assert_eq!((tx, rx), (3, 3));

    // status -o json
    let s = t.a.status_json();
    assert_eq!(s["node"]["name"], "node-a");
    assert_eq!(s["peers"][0]["address"], "192.0.2.12");
    assert_eq!(s["peers"][0]["name"], "node-b");
    assert_eq!(s["peers"][0]["state"], "Established");
    assert_eq!(s["containers"], 1);
    // the table form names the peer and its state
    let table = cli(&t.a.socket(), &["status"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("192.0.2.12") && table.contains("Established"),
        "{table}"
    );

    // routes -o json: the remote block is best and installed
    let out = cli(&t.a.socket(), &["routes", "-o", "json"]);
    let routes: serde_json::Value = serde_json::from_slice(&out.stdout).expect("routes JSON");
    let remote = routes
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["prefix"] == "10.244.2.0/26"))
        .unwrap_or_else(|| panic!("no 10.244.2.0/26 in {routes}"));
    assert_eq!(remote["installed"], true);
    assert_eq!(remote["paths"][0]["best"], true);
    assert_eq!(remote["paths"][0]["next_hop"], "192.0.2.12");

    // metrics
    let m = t.a.scrape();
    assert!(
        m.contains("tortie_bgp_session_up{peer=\"192.0.2.12\",peer_asn=\"64512\"} 1"),
        "{m}"
    );
    assert!(m.contains("tortie_containers 1"), "{m}");
    assert!(
        m.contains("tortie_dataplane_routes{kind=\"learned\",family=\"ipv4\"} 1"),
        "{m}"
    );
    promtool_ok(&m);

    // detach: veth gone, address released, route withdrawn from B
    let out = cli(&t.a.socket(), &["detach", "--id", "ca"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&ip_a));
    let links = sh(&["ip", "-n", &t.ca.name, "link"]);
    assert!(!links.contains("eth0"), "{links}");
    // detach is idempotent
    assert!(
        cli(&t.a.socket(), &["detach", "--id", "ca"])
            .status
            .success()
    );
    assert_eq!(t.a.status_json()["containers"], 0);
}

fn promtool_ok(scrape: &str) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("promtool not available ({e}); not linted");
            return;
        }
        Err(e) => panic!("promtool missing in CI: {e}"),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(scrape.as_bytes()).expect("promtool stdin");
    }
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sigkill_and_restart_under_ping_loses_nothing() {
    if !root_or_skip() {
        return;
    }
    let mut t = TwoNodes::new("rs");
    t.a.wait_established(Duration::from_secs(20));
    let ip_a = t.a.attach(&t.ca, "ca");
    let ip_b = t.b.attach(&t.cb, "cb");
    wait_until(Duration::from_secs(10), "routes both ways", || {
        sh(&["ip", "-n", &t.na.name, "route", "show", "10.244.2.0/26"]).contains("proto 149")
            && sh(&["ip", "-n", &t.nb.name, "route", "show", "10.244.1.0/26"]).contains("proto 149")
    });
    let before = sh(&["ip", "-n", &t.na.name, "route", "show", "proto", "149"]);
    // Every route change on both nodes while A restarts: nothing may be deleted.
    let mon_a = RouteMonitor::start(&t.na);
    let mon_b = RouteMonitor::start(&t.nb);

    // 100 pings, 50 ms apart (5 s), while A is killed and restarted.
    let ping_ns = t.ca.name.clone();
    let dst = ip_b.clone();
    let pinger = std::thread::spawn(move || {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &ping_ns, "ping", "-n", "-q", "-c", "100", "-i", "0.05", "-W",
                "1", &dst,
            ])
            .output()
            .expect("ping");
        parse_ping(&String::from_utf8_lossy(&out.stdout))
    });
    std::thread::sleep(Duration::from_millis(500));
    t.a.kill9();
    let after_kill = sh(&["ip", "-n", &t.na.name, "route", "show", "proto", "149"]);
    assert_eq!(after_kill, before, "kernel routes must survive SIGKILL");
    std::thread::sleep(Duration::from_millis(300));
    t.a.spawn();
    let (tx, rx) = pinger.join().expect("ping thread");
    assert_eq!(tx, 100, "ping did not run");
    assert_eq!(
        rx,
        100,
        "lost {} pings across the restart\nA log:\n{}",
        tx - rx,
        t.a.log()
    );

    t.a.wait_established(Duration::from_secs(20));
    let log = t.a.log();
    assert!(
        log.lines()
            .any(|l| l.contains("kernel routes of ours found at start-up")
                && !l.contains("adopted=0")),
        "the restarted agent did not adopt its routes:\n{log}"
    );
    // The container survived and is still known (IPAM reconciled, not re-used).
    let s = t.a.status_json();
    assert_eq!(s["containers"], 1, "{s}");
    let (tx, rx) = ping(&t.cb, &ip_a, 3, "0.2");
    assert_eq!((tx, rx), (3, 3));
    let after = sh(&["ip", "-n", &t.na.name, "route", "show", "proto", "149"]);
    assert_eq!(after, before, "routes differ after the restart");
    // After the sweep (End-of-RIB), still no route was withdrawn anywhere.
    wait_until(Duration::from_secs(40), "A converged", || {
        t.a.status_json()["converged"] == true
    });
    // Every adopted route was re-learned: none left waiting, none swept.
    let m = t.a.scrape();
    for line in [
        "tortie_dataplane_routes_adopted 0",
        "tortie_dataplane_routes_swept_total 0",
    ] {
        assert!(m.contains(&format!("\n{line}\n")), "{line} in\n{m}");
    }
    for (node, mon) in [("A", mon_a), ("B", mon_b)] {
        let events = mon.stop();
        let deleted: Vec<&str> = events
            .lines()
            .filter(|l| l.starts_with("Deleted") && l.contains("10.244."))
            .collect();
        assert!(
            deleted.is_empty(),
            "routes flapped on {node}: {deleted:?}\nall events:\n{events}"
        );
    }
}

/// `ip monitor route` in a namespace; killed on drop.
struct RouteMonitor {
    child: Option<std::process::Child>,
}

impl RouteMonitor {
    fn start(ns: &Netns) -> RouteMonitor {
        let child = Command::new("ip")
            .args(["-n", &ns.name, "monitor", "route"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ip monitor");
        // Let it subscribe before anything happens.
        std::thread::sleep(Duration::from_millis(100));
        RouteMonitor { child: Some(child) }
    }

    /// Stops it and returns what it printed.
    fn stop(mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return String::new();
        };
        let _ = child.kill();
        child
            .wait_with_output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for RouteMonitor {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn sighup_applies_peer_changes_and_keeps_running_on_a_bad_file() {
    if !root_or_skip() {
        return;
    }
    let t = TwoNodes::new("hu");
    t.a.wait_established(Duration::from_secs(20));
    let good = std::fs::read_to_string(t.a.config_path()).expect("config");
    // An invalid file: logged, the running config stays, the session stays up.
    std::fs::write(t.a.config_path(), format!("{good}\nbogus = 1\n")).expect("write");
    t.a.signal(nix::sys::signal::Signal::SIGHUP);
    wait_until(
        Duration::from_secs(5),
        "the reload error in the log",
        || t.a.log().contains("keeping the running configuration"),
    );
    assert_eq!(t.a.peer_states(), vec!["Established".to_string()]);
    // A new (unreachable, passive) peer: added, the existing one untouched
    // (B's counter is the witness: A's restarts with a re-created peer).
    let transitions = t_peer(&t.b, "192.0.2.11")["established_transitions"].clone();
    std::fs::write(
        t.a.config_path(),
        format!("{good}\n[[peer]]\naddress = \"192.0.2.99\"\nasn = 64513\nname = \"extra\"\npassive = true\n"),
    )
    .expect("write");
    t.a.signal(nix::sys::signal::Signal::SIGHUP);
    wait_until(Duration::from_secs(5), "the new peer", || {
        t.a.status_json()["peers"].as_array().map(Vec::len) == Some(2)
    });
    let s = t.a.status_json();
    let old = s["peers"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["address"] == "192.0.2.12"))
        .cloned();
    let old = old.expect("old peer still configured");
    assert_eq!(old["state"], "Established");
    assert_eq!(
        t_peer(&t.b, "192.0.2.11")["established_transitions"],
        transitions,
        "the unchanged peer was reset"
    );

    // A change of that peer resets its session (Cease/6): its counters go on
    // from where they were, they do not start again (Prometheus counters).
    let labels = "peer=\"192.0.2.12\",peer_asn=\"64512\"";
    let before = t.a.scrape();
    let notifications = |m: &str| {
        metric(
            m,
            &format!("tortie_bgp_messages_sent_total{{{labels},type=\"notification\"}}"),
        )
    };
    let established = |m: &str| {
        metric(
            m,
            &format!("tortie_bgp_established_transitions_total{{{labels}}}"),
        )
    };
    let opens = |m: &str| {
        metric(
            m,
            &format!("tortie_bgp_messages_sent_total{{{labels},type=\"open\"}}"),
        )
    };
    let changed = good.replace("name = \"node-b\"\n", "name = \"node-b\"\nhold_time = 30\n");
    assert_ne!(changed, good);
    std::fs::write(t.a.config_path(), &changed).expect("write");
    t.a.signal(nix::sys::signal::Signal::SIGHUP);
    wait_until(Duration::from_secs(15), "the changed peer back up", || {
        established(&t.a.scrape()) > established(&before) && t.a.peer_states()[0] == "Established"
    });
    let after = t.a.scrape();
    assert_eq!(established(&after), established(&before) + 1.0, "{after}");
    assert_eq!(
        notifications(&after),
        notifications(&before) + 1.0,
        "{after}"
    );
    assert!(opens(&after) > opens(&before), "{after}");
    assert!(
        metric(
            &after,
            &format!("tortie_bgp_session_up_down_timestamp_seconds{{{labels}}}")
        ) > 0.0
    );
    assert!(metric(&after, "process_resident_memory_bytes") > 0.0);
    assert!(metric(&after, "process_open_fds") > 0.0);
    promtool_ok(&after);
}

/// The value of the sample `series` (name and labels as exposed) in a scrape.
fn metric(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {series} in:\n{scrape}"))
}

#[test]
fn sighup_renaming_a_peer_does_not_reset_the_session() {
    if !root_or_skip() {
        return;
    }
    let t = TwoNodes::new("rn");
    t.a.wait_established(Duration::from_secs(20));
    let good = std::fs::read_to_string(t.a.config_path()).expect("config");
    let peer = |a: &Agent| t_peer(a, "192.0.2.12");
    let before = peer(&t.a);
    let b_before = t_peer(&t.b, "192.0.2.11");
    assert_eq!(before["name"], "node-b");
    // Only the name: held back (logged), the session is not touched.
    let renamed = good.replace("name = \"node-b\"", "name = \"node-b-renamed\"");
    assert_ne!(renamed, good);
    std::fs::write(t.a.config_path(), &renamed).expect("write");
    t.a.signal(nix::sys::signal::Signal::SIGHUP);
    wait_until(
        Duration::from_secs(5),
        "the held-back rename in the log",
        || t.a.log().contains("only the peer's name changed"),
    );
    // A reset would show within a second or two (connect_retry = 1 s).
    std::thread::sleep(Duration::from_secs(2));
    // A's own counter starts again with a re-created peer: B's is the witness.
    assert_eq!(
        t_peer(&t.b, "192.0.2.11")["established_transitions"],
        b_before["established_transitions"],
        "B saw the session reset"
    );
    let after = peer(&t.a);
    assert_eq!(after["state"], "Established");
    assert_eq!(
        after["since"], before["since"],
        "a rename reset the session"
    );
    assert_eq!(
        after["established_transitions"], before["established_transitions"],
        "a rename reset the session"
    );
    assert_eq!(
        after["name"], "node-b",
        "the old name is kept until a real change"
    );
    // A real change with it: the new name is applied (and the session reset).
    std::fs::write(
        t.a.config_path(),
        renamed.replace(
            "name = \"node-b-renamed\"",
            "name = \"node-b-renamed\"\nhold_time = 30",
        ),
    )
    .expect("write");
    t.a.signal(nix::sys::signal::Signal::SIGHUP);
    wait_until(
        Duration::from_secs(10),
        "the renamed peer re-established",
        || {
            let p = peer(&t.a);
            p["name"] == "node-b-renamed" && p["state"] == "Established"
        },
    );
}

/// One peer's status JSON, by address.
fn t_peer(a: &Agent, address: &str) -> serde_json::Value {
    a.status_json()["peers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["address"] == address).cloned())
        .unwrap_or_else(|| panic!("peer {address} not in status"))
}

#[test]
fn sigterm_leaves_routes_and_containers() {
    if !root_or_skip() {
        return;
    }
    let mut t = TwoNodes::new("st");
    t.a.wait_established(Duration::from_secs(20));
    let ip_a = t.a.attach(&t.ca, "ca");
    wait_until(Duration::from_secs(10), "the remote block", || {
        sh(&["ip", "-n", &t.na.name, "route", "show", "10.244.2.0/26"]).contains("proto 149")
    });
    let before = sh(&["ip", "-n", &t.na.name, "route", "show", "proto", "149"]);
    t.a.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(
        t.a.wait(Duration::from_secs(10)),
        Some(0),
        "exit code after SIGTERM\n{}",
        t.a.log()
    );
    assert_eq!(
        sh(&["ip", "-n", &t.na.name, "route", "show", "proto", "149"]),
        before
    );
    let addrs = sh(&["ip", "-n", &t.ca.name, "addr", "show", "eth0"]);
    assert!(addrs.contains(&ip_a), "{addrs}");
    assert!(
        !t.a.socket().exists(),
        "the API socket is removed on a clean stop"
    );
}

#[test]
fn static_address_outside_the_block_is_advertised_as_a_host_route() {
    if !root_or_skip() {
        return;
    }
    let t = TwoNodes::new("sa");
    t.a.wait_established(Duration::from_secs(20));
    let v = t.a.attach_json(&t.ca, "ca", &["--ip", "10.99.0.5"]);
    assert_eq!(v["ip"], "10.99.0.5");
    assert_eq!(v["advertised"], true);
    let ip_b = t.b.attach(&t.cb, "cb");
    // B learns the /32 from A and installs it.
    wait_until(
        Duration::from_secs(10),
        "10.99.0.5/32 in B's kernel",
        || sh(&["ip", "-n", &t.nb.name, "route", "show", "10.99.0.5"]).contains("via 192.0.2.11"),
    );
    let (tx, rx) = ping(&t.cb, "10.99.0.5", 3, "0.2");
    assert_eq!((tx, rx), (3, 3), "B's container -> the static address on A");
    let (tx, rx) = ping(&t.ca, &ip_b, 3, "0.2");
    assert_eq!((tx, rx), (3, 3));
    // A taken address is refused with a clear error.
    let out = cli(
        &t.a.socket(),
        &[
            "attach",
            "--netns",
            &t.cb.path(),
            "--id",
            "other",
            "--ip",
            "10.99.0.5",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already allocated"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Detach withdraws the /32 from B.
    assert!(
        cli(&t.a.socket(), &["detach", "--id", "ca"])
            .status
            .success()
    );
    wait_until(
        Duration::from_secs(10),
        "10.99.0.5/32 withdrawn from B",
        || !sh(&["ip", "-n", &t.nb.name, "route", "show", "10.99.0.5"]).contains("via"),
    );
}

#[test]
fn json_logs_one_object_per_line() {
    if !root_or_skip() {
        return;
    }
    let mut t = TwoNodes::new("js");
    t.a.wait_established(Duration::from_secs(20));
    t.a.kill9();
    std::fs::write(t.a.log_path(), "").expect("truncate log");
    t.a.args = vec!["--log-format".into(), "json".into()];
    t.a.spawn();
    t.a.wait_established(Duration::from_secs(20));
    let log = t.a.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "{log}");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(
            v.get("level").is_some() && v.get("message").is_some(),
            "{l}"
        );
    }
    // Every peer line names the peer; no Rust Debug output; in order.
    let mut established_at = None;
    let mut open_sent_at = None;
    for (i, l) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
        if v.get("address").is_some() {
            assert!(v.get("peer").is_some(), "no peer name: {l}");
        }
        if v["peer"] == "node-b" {
            if v["message"] == "session Established" {
                established_at = established_at.or(Some(i));
                let families = v["families"].as_str().unwrap_or_default();
                assert!(families.starts_with("ipv4-unicast"), "{l}");
            }
            if v["to"] == "OpenSent" {
                open_sent_at = open_sent_at.or(Some(i));
            }
        }
        for debug in ["Some(", "None", "{ ", "\"[]\"", "AddressFamily"] {
            assert!(!l.contains(debug), "Debug output ({debug}) in: {l}");
        }
    }
    let (Some(open_sent), Some(established)) = (open_sent_at, established_at) else {
        panic!("no OpenSent/Established line for node-b:\n{log}");
    };
    assert!(
        open_sent < established,
        "Established logged before OpenSent:\n{log}"
    );
}

#[test]
fn advertise_hosts_sends_every_container_slash_32() {
    if !root_or_skip() {
        return;
    }
    let mut t = TwoNodes::new("ah");
    t.a.wait_established(Duration::from_secs(20));
    let conf = std::fs::read_to_string(t.a.config_path()).expect("config");
    std::fs::write(
        t.a.config_path(),
        conf.replace("[bgp]\n", "[bgp]\nadvertise = \"hosts\"\n"),
    )
    .expect("write");
    t.a.kill9();
    t.a.spawn();
    t.a.wait_established(Duration::from_secs(20));
    let ip = t.a.attach(&t.ca, "ca");
    assert!(ip.starts_with("10.244.1."), "{ip}");
    wait_until(
        Duration::from_secs(10),
        "the container /32 in B's kernel",
        || sh(&["ip", "-n", &t.nb.name, "route", "show", &ip]).contains("via 192.0.2.11"),
    );
    // The block is still advertised too.
    assert!(
        sh(&["ip", "-n", &t.nb.name, "route", "show", "10.244.1.0/26"]).contains("via 192.0.2.11")
    );
}

#[test]
fn sighup_switches_advertise_live() {
    if !root_or_skip() {
        return;
    }
    let t = TwoNodes::new("av");
    t.a.wait_established(Duration::from_secs(20));
    let ip = t.a.attach(&t.ca, "ca");
    let has_host_route =
        || sh(&["ip", "-n", &t.nb.name, "route", "show", &ip]).contains("via 192.0.2.11");
    let block_mode = std::fs::read_to_string(t.a.config_path()).expect("config");
    // B's counter is the witness: A's restarts with a re-created peer.
    let transitions = t_peer(&t.b, "192.0.2.11")["established_transitions"].clone();
    std::fs::write(
        t.a.config_path(),
        block_mode.replace("[bgp]\n", "[bgp]\nadvertise = \"hosts\"\n"),
    )
    .expect("write");
    t.a.signal(nix::sys::signal::Signal::SIGHUP);
    wait_until(
        Duration::from_secs(10),
        "the /32 announced after SIGHUP",
        has_host_route,
    );
    std::fs::write(t.a.config_path(), &block_mode).expect("write");
    t.a.signal(nix::sys::signal::Signal::SIGHUP);
    wait_until(
        Duration::from_secs(10),
        "the /32 withdrawn after SIGHUP",
        || !has_host_route(),
    );
    // No session was reset for it.
    assert_eq!(
        t_peer(&t.b, "192.0.2.11")["established_transitions"],
        transitions
    );
}
