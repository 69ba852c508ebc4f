//! Reliability with failures injected (issue 10), as root against the built
//! `tortie`: clients that disconnect mid-attach and mid-detach, SIGKILL of
//! the agent during attach bursts, host veths deleted behind the agent's
//! back, connection floods on both HTTP servers; plus the static-address
//! refusals and HTTP codes of bad requests. Every scenario counts addresses
//! handed out twice and containers or addresses leaked: all must be 0.
//! Each test prints its figures (`--nocapture`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A small deterministic generator (xorshift), seeded from the clock and
/// printed, so a failing run can be replayed by setting `TORTIE_SEED`.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("TORTIE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
                    | 1
            });
        eprintln!("TORTIE_SEED={seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// One node (an interface holding 192.0.2.11/24), its agent and a
/// container namespace. Field order = drop order.
struct Node {
    agent: Agent,
    c: Netns,
    n: Netns,
    _dir: tempfile::TempDir,
}

fn node(t: &str) -> Node {
    let tg = tag(t);
    let dir = tempfile::Builder::new()
        .prefix(&format!("tortie-{t}-"))
        .tempdir()
        .expect("tempdir");
    let n = Netns::new(format!("{tg}-n"));
    let c = Netns::new(format!("{tg}-c"));
    // (No dummy module here: a veth pair inside the node holds the address.)
    sh(&[
        "ip", "-n", &n.name, "link", "add", "d0", "type", "veth", "peer", "name", "d1",
    ]);
    sh(&[
        "ip",
        "-n",
        &n.name,
        "addr",
        "add",
        "192.0.2.11/24",
        "dev",
        "d0",
    ]);
    sh(&["ip", "-n", &n.name, "link", "set", "d0", "up"]);
    let agent = Agent::start(
        dir.path().join("a"),
        &n,
        &NodeSpec {
            name: "node-a",
            address: "192.0.2.11/24",
            pod_cidr: "10.244.1.0/26",
            asn: 64512,
            peers: vec![],
        },
    );
    Node {
        agent,
        c,
        n,
        _dir: dir,
    }
}

/// One HTTP/1.1 request on the API socket: (status, JSON body).
fn http(sock: &Path, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = UnixStream::connect(sock).expect("connecting to the API");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: tortie\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("reading the answer");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Sends a request and closes the connection after `after` without reading
/// the answer: a client killed mid-request. Returns whether the answer had
/// not arrived yet (the disconnect really was mid-request).
fn abandon(sock: &Path, path: &str, body: &str, after: Duration) -> bool {
    let mut s = UnixStream::connect(sock).expect("connecting to the API");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: tortie\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(after);
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let pending = matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    drop(s);
    pending
}

fn attach_body(id: &str, netns: &str, ifname: &str) -> String {
    format!(r#"{{"id":"{id}","netns":"{netns}","ifname":"{ifname}"}}"#)
}

/// Host veths of ours (`tt…`) in `ns`.
fn veths(ns: &Netns) -> BTreeSet<String> {
    sh(&["ip", "-n", &ns.name, "-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with("tt"))
        .collect()
}

/// Host routes of ours: veth → address.
fn host_routes(ns: &Netns) -> BTreeMap<String, String> {
    sh(&["ip", "-n", &ns.name, "route", "show", "proto", "149"])
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let dev = w.iter().position(|x| *x == "dev")?;
            let name = w.get(dev + 1)?.to_string();
            (w[0] != "blackhole").then(|| (name, w[0].to_string()))
        })
        .filter(|(d, _)| d.starts_with("tt"))
        .collect()
}

/// What the node holds, and what is wrong with it.
#[derive(Debug, Default)]
struct Audit {
    veths: usize,
    /// Veths without their /32 (half-made).
    half_made: usize,
    /// Addresses routed to two veths, or answered to two ids.
    duplicates: usize,
    /// IPAM's allocations and the registry's containers, by the status API.
    allocated: u64,
    containers: u64,
}

fn audit(node: &Node, answered: &BTreeMap<String, String>) -> Audit {
    let s = node.agent.status_json();
    let v = veths(&node.n);
    let r = host_routes(&node.n);
    let routed: Vec<&String> = r.values().collect();
    let distinct: BTreeSet<&String> = routed.iter().copied().collect();
    let answers: Vec<&String> = answered.values().collect();
    let distinct_answers: BTreeSet<&String> = answers.iter().copied().collect();
    Audit {
        veths: v.len(),
        half_made: v.iter().filter(|d| !r.contains_key(*d)).count(),
        duplicates: (routed.len() - distinct.len()) + (answers.len() - distinct_answers.len()),
        allocated: s["ipam"]["allocated"].as_u64().unwrap_or(u64::MAX),
        containers: s["containers"].as_u64().unwrap_or(u64::MAX),
    }
}

/// The state after everything was detached: no veth, no address, no entry.
fn assert_nothing_left(node: &Node) {
    let a = audit(node, &BTreeMap::new());
    assert_eq!(
        (a.veths, a.allocated, a.containers),
        (0, 0, 0),
        "leaks: {a:?}\n{}",
        node.agent.log()
    );
}

/// Attach through a retry after a cancelled request: (status, body).
fn retry_attach(node: &Node, id: &str, ifname: &str) -> String {
    let (st, v) = http(
        &node.agent.socket(),
        "POST",
        "/v1/attach",
        &attach_body(id, &node.c.path(), ifname),
    );
    assert_eq!(st, 200, "retry of {id}: {v}\n{}", node.agent.log());
    v["ip"].as_str().expect("ip").to_string()
}

#[test]
fn cancelled_attaches_and_detaches_complete_and_retries_adopt() {
    if !root_or_skip() {
        return;
    }
    let node = node("rc");
    let sock = node.agent.socket();
    let mut rng = Rng::new();
    const N: usize = 40;
    let mut answered = BTreeMap::new();
    let mut mid_request = 0;
    for i in 0..N {
        let id = format!("c{i}");
        let ifname = format!("e{i}");
        // Disconnect 0–3 ms after sending: before, during or after the work
        // (an attach takes a few ms).
        let after = Duration::from_micros(rng.below(3_000));
        mid_request += usize::from(abandon(
            &sock,
            "/v1/attach",
            &attach_body(&id, &node.c.path(), &ifname),
            after,
        ));
        // The cancelled attach finished (or never started): every veth is
        // complete and registered, every address counted, with no retry.
        wait_until(
            Duration::from_secs(3),
            "the cancelled attach settles",
            || {
                let a = audit(&node, &BTreeMap::new());
                a.half_made == 0 && a.containers == a.veths as u64 && a.allocated == a.containers
            },
        );
        // The retry adopts what the cancelled attach made (or attaches).
        let ip = retry_attach(&node, &id, &ifname);
        let host = tortie_routes::host_ifname("tt", &id);
        assert_eq!(
            host_routes(&node.n).get(&host),
            Some(&ip),
            "{id}: the answer is the kernel's"
        );
        answered.insert(id, ip);
    }
    let a = audit(&node, &answered);
    eprintln!("{N} attaches cancelled ({mid_request} before their answer) + retries: {a:?}");
    // The test's power: enough disconnects come before the answer.
    assert!(
        mid_request >= N / 8,
        "too few disconnects mid-request: {mid_request}"
    );
    assert_eq!((a.veths, a.half_made, a.duplicates), (N, 0, 0), "{a:?}");
    assert_eq!((a.allocated, a.containers), (N as u64, N as u64), "{a:?}");
    // Cancelled detaches finish too; a retry finds nothing left.
    let mut mid_request = 0;
    for i in 0..N {
        let after = Duration::from_micros(rng.below(8_000));
        mid_request += usize::from(abandon(
            &sock,
            "/v1/detach",
            &format!(r#"{{"id":"c{i}"}}"#),
            after,
        ));
        let (st, v) = http(&sock, "POST", "/v1/detach", &format!(r#"{{"id":"c{i}"}}"#));
        assert_eq!(st, 200, "{v}");
    }
    eprintln!("{N} detaches cancelled ({mid_request} before their answer) + retries: nothing left");
    assert_nothing_left(&node);
}

#[test]
fn sigkill_during_attach_bursts_leaves_nothing_half_made() {
    if !root_or_skip() {
        return;
    }
    let mut node = node("rk");
    let mut rng = Rng::new();
    const ROUNDS: usize = 6;
    const BURST: usize = 8;
    let mut ids = Vec::new();
    let mut half_made_at_kill = 0;
    for round in 0..ROUNDS {
        let sock = node.agent.socket();
        let children: Vec<_> = (0..BURST)
            .map(|i| {
                let id = format!("r{round}-{i}");
                ids.push((id.clone(), format!("e{round}x{i}")));
                Command::new(TORTIE)
                    .args(["attach", "--netns", &node.c.path(), "--id", &id])
                    .args(["--ifname", &format!("e{round}x{i}"), "--socket"])
                    .arg(&sock)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("tortie attach")
            })
            .collect();
        std::thread::sleep(Duration::from_millis(3 + rng.below(58)));
        node.agent.kill9();
        for mut c in children {
            let _ = c.wait();
        }
        let v = veths(&node.n);
        let r = host_routes(&node.n);
        half_made_at_kill += v.iter().filter(|d| !r.contains_key(*d)).count();
        node.agent.spawn();
        // Start-up removed what was half-made and counts every live address.
        let a = audit(&node, &BTreeMap::new());
        assert_eq!((a.half_made, a.duplicates), (0, 0), "round {round}: {a:?}");
        assert_eq!(
            (a.allocated, a.containers),
            (a.veths as u64, a.veths as u64),
            "round {round}: {a:?}\n{}",
            node.agent.log()
        );
    }
    // Every id attaches (adopting or finishing), each with its own address.
    let mut answered = BTreeMap::new();
    for (id, ifname) in &ids {
        answered.insert(id.clone(), retry_attach(&node, id, ifname));
    }
    let a = audit(&node, &answered);
    eprintln!(
        "{ROUNDS} SIGKILLs during bursts of {BURST}: {half_made_at_kill} half-made veths at kill time; after retries {a:?}"
    );
    assert_eq!(
        (a.veths, a.half_made, a.duplicates),
        (ids.len(), 0, 0),
        "{a:?}"
    );
    assert_eq!(a.allocated, ids.len() as u64);
    for (id, _) in &ids {
        let (st, v) = http(
            &node.agent.socket(),
            "POST",
            "/v1/detach",
            &format!(r#"{{"id":"{id}"}}"#),
        );
        assert_eq!(st, 200, "{v}");
    }
    assert_nothing_left(&node);
}

#[test]
fn a_deleted_veth_is_reported_and_rebuilt_by_the_next_attach() {
    if !root_or_skip() {
        return;
    }
    let node = node("rd");
    let sock = node.agent.socket();
    const N: usize = 10;
    let mut answered = BTreeMap::new();
    for i in 0..N {
        let id = format!("d{i}");
        let ip = retry_attach(&node, &id, &format!("e{i}"));
        let host = tortie_routes::host_ifname("tt", &id);
        sh(&["ip", "-n", &node.n.name, "link", "del", &host]);
        // CHECK reports it.
        let (st, v) = http(&sock, "POST", "/v1/check", &format!(r#"{{"id":"{id}"}}"#));
        assert_eq!(st, 404, "{v}");
        // The repeated attach rebuilds it with the same address.
        let again = retry_attach(&node, &id, &format!("e{i}"));
        assert_eq!(again, ip, "{id} keeps its address");
        assert_eq!(host_routes(&node.n).get(&host), Some(&ip));
        let (st, v) = http(&sock, "POST", "/v1/check", &format!(r#"{{"id":"{id}"}}"#));
        assert_eq!(st, 200, "{v}");
        answered.insert(id, ip);
    }
    // Traffic reaches a rebuilt container.
    let (tx, rx) = ping(&node.n, &answered["d0"], 2, "0.2");
    assert_eq!((tx, rx), (2, 2));
    let a = audit(&node, &answered);
    eprintln!("{N} veths deleted behind the agent's back and rebuilt: {a:?}");
    assert_eq!((a.veths, a.half_made, a.duplicates), (N, 0, 0), "{a:?}");
    assert_eq!((a.allocated, a.containers), (N as u64, N as u64));
    for i in 0..N {
        let (st, _) = http(&sock, "POST", "/v1/detach", &format!(r#"{{"id":"d{i}"}}"#));
        assert_eq!(st, 200);
    }
    assert_nothing_left(&node);
}

#[test]
fn addresses_that_would_cut_the_node_off_are_refused_and_bad_requests_are_400() {
    if !root_or_skip() {
        return;
    }
    let t = TwoNodes::new("rf");
    t.a.wait_established(Duration::from_secs(20));
    // A has learned B's block.
    wait_until(Duration::from_secs(10), "B's block on A", || {
        sh(&["ip", "-n", &t.na.name, "route", "show", "10.244.2.0/26"]).contains("via")
    });
    let sock = t.a.socket();
    let before = t.a.status_json()["ipam"].clone();
    let refused = [
        ("192.0.2.11", "node's own address"),
        ("192.0.2.0", "network address"),
        ("192.0.2.255", "broadcast address"),
        ("192.0.2.12", "peer"),
        ("169.254.1.1", "gateway"),
        ("127.0.0.1", "loopback"),
        ("0.0.0.1", "this network"),
        ("224.0.0.5", "multicast"),
        ("240.0.0.1", "reserved"),
        ("10.244.2.9", "learned from 192.0.2.12"),
    ];
    for (ip, why) in refused {
        let body = format!(r#"{{"id":"x-{ip}","netns":"{}","ip":"{ip}"}}"#, t.ca.path());
        let (st, v) = http(&sock, "POST", "/v1/attach", &body);
        let msg = v["error"].as_str().unwrap_or("");
        assert_eq!(st, 400, "{ip}: {v}");
        assert!(msg.contains("refusing") && msg.contains(why), "{ip}: {msg}");
        // The CLI says the same.
        let out = cli(
            &sock,
            &["attach", "--netns", &t.ca.path(), "--id", "y", "--ip", ip],
        );
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains(why));
    }
    // Nothing left behind.
    assert_eq!(veths(&t.na), BTreeSet::new());
    assert_eq!(t.a.status_json()["ipam"], before);
    // A free static address outside every block stays allowed.
    let (st, v) = http(
        &sock,
        "POST",
        "/v1/attach",
        &format!(
            r#"{{"id":"ok","netns":"{}","ip":"203.0.113.5"}}"#,
            t.ca.path()
        ),
    );
    assert_eq!((st, v["ip"].as_str()), (200, Some("203.0.113.5")), "{v}");
    assert_eq!(http(&sock, "POST", "/v1/detach", r#"{"id":"ok"}"#).0, 200);
    // The caller's mistakes are 400s, not 500s.
    let (st, v) = http(&sock, "POST", "/v1/detach", r#"{"id":"tortie:tunl0"}"#);
    assert_eq!(st, 400, "{v}");
    let file = t.dir.path().join("plain-file");
    std::fs::write(&file, b"").unwrap();
    for (what, path) in [
        ("a regular file", file.display().to_string()),
        ("a directory", t.dir.path().display().to_string()),
    ] {
        let (st, v) = http(
            &sock,
            "POST",
            "/v1/attach",
            &format!(r#"{{"id":"ns","netns":"{path}"}}"#),
        );
        assert_eq!(st, 400, "netns {what}: {v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap_or("")
                .contains("not a network namespace"),
            "{v}"
        );
    }
    let (st, _) = http(
        &sock,
        "POST",
        "/v1/attach",
        r#"{"id":"ns","netns":"/nonexistent/ns"}"#,
    );
    assert_eq!(st, 400);
    assert_eq!(veths(&t.na), BTreeSet::new());
    assert_eq!(t.a.status_json()["ipam"], before);
}

/// Open fds and resident KiB of a process.
fn fds_and_rss(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (fds, rss)
}

/// `n` TCP connections to `port` on 127.0.0.1 inside `ns` (a thread that
/// entered the namespace makes them), half of them sending a partial
/// request head and nothing more (slowloris), the rest nothing at all.
fn hold_tcp(ns: &Netns, port: u16, n: usize) -> Vec<std::net::TcpStream> {
    let path = ns.path();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).expect("netns");
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        (0..n)
            .filter_map(|i| {
                let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                let mut s =
                    std::net::TcpStream::connect_timeout(&to, Duration::from_secs(1)).ok()?;
                if i % 2 == 0 {
                    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
                }
                Some(s)
            })
            .collect()
    })
    .join()
    .expect("connecting thread")
}

#[test]
fn held_connections_do_not_take_the_agent_down() {
    if !root_or_skip() {
        return;
    }
    // This process holds 800 sockets: lift its own soft limit to the hard
    // one (which may be 1024 too: the numbers below stay under it).
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    let mut t = TwoNodes::new("rh");
    t.a.wait_established(Duration::from_secs(20));
    let pid = t.a.pid().expect("agent pid");
    let (fds0, rss0) = fds_and_rss(pid);
    // Hold 600 metrics connections and 200 on the API socket (beyond its
    // slots they wait in the listen backlog), half slowloris: five times the
    // servers' slots together.
    let metrics = hold_tcp(&t.na, 9642, 600);
    let api: Vec<UnixStream> = (0..200)
        .filter_map(|i| {
            let mut s = UnixStream::connect(t.a.socket()).ok()?;
            if i % 2 == 0 {
                let _ = s.write_all(b"POST /v1/attach HTTP/1.1\r\nHost: x\r\n");
            }
            Some(s)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (fds1, rss1) = fds_and_rss(pid);
    eprintln!(
        "held {} metrics + {} API connections: fds {fds0} -> {fds1}, RSS {rss0} -> {rss1} KiB",
        metrics.len(),
        api.len()
    );
    assert!(
        metrics.len() >= 500 && api.len() >= 190,
        "{} {}",
        metrics.len(),
        api.len()
    );
    // 128 API + 32 metrics slots, plus a few in passing.
    assert!(fds1 <= fds0 + 128 + 32 + 16, "fds {fds0} -> {fds1}");
    // An attach gets through (it waits for a slot: held ones time out).
    let started = std::time::Instant::now();
    let ip = t.a.attach(&t.ca, "flood");
    eprintln!(
        "attach during the flood: {ip} after {:?}",
        started.elapsed()
    );
    // BGP still accepts: B restarts and the session comes back.
    t.b.kill9();
    t.b.spawn();
    t.a.wait_established(Duration::from_secs(30));
    t.b.wait_established(Duration::from_secs(30));
    // Metrics answer again once the holders timed out.
    wait_until(Duration::from_secs(15), "a scrape", || {
        run(Command::new("ip").args([
            "netns",
            "exec",
            &t.na.name,
            "curl",
            "-sf",
            "-m",
            "2",
            "http://127.0.0.1:9642/metrics",
        ]))
        .status
        .success()
    });
    // Every held connection is closed by its timeouts, though the clients
    // still hold their ends.
    wait_until(
        Duration::from_secs(15),
        "the held connections closed",
        || fds_and_rss(pid).0 <= fds0 + 16,
    );
    let (fds2, rss2) = fds_and_rss(pid);
    eprintln!("after: fds {fds2}, RSS {rss2} KiB (the clients still hold their ends)");
    drop((metrics, api));
}
