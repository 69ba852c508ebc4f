//! Shared harness of the agent's root integration tests: throw-away network
//! namespaces, node links, agents run as the built `tortie` binary inside
//! `ip netns exec`, and the CLI. Every object has a Drop guard, so a failing
//! test still removes its namespaces, veths, daemons and temp dirs.
//!
//! Names include the test's tag and the process id, so tests running in
//! parallel (and other people's tests) never collide. Traffic only flows
//! between namespaces a test created itself, over documentation/private ranges.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const TORTIE: &str = env!("CARGO_BIN_EXE_tortie");
pub const TORTIE_CNI: &str = env!("CARGO_BIN_EXE_tortie-cni");

/// True when the test may run. Not root: fail under CI, skip otherwise.
pub fn root_or_skip() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("this test needs root and CI is set");
    }
    eprintln!("skipped: needs root");
    false
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

/// Runs and insists on success.
pub fn sh(args: &[&str]) -> String {
    let out = run(Command::new(args[0]).args(&args[1..]));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: String) -> Netns {
        let _ = run(Command::new("ip").args(["netns", "del", &name]));
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        sh(&["ip", "-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
    /// `ip netns exec <ns> <args…>`.
    pub fn exec(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Puts `addr` on `ns`'s loopback: a node address for an agent without
/// links (`tortie run` refuses a `node.address` on no interface).
pub fn address_on_lo(ns: &Netns, addr: &str) {
    sh(&["ip", "-n", &ns.name, "addr", "add", addr, "dev", "lo"]);
}

/// Links two namespaces with a veth pair and addresses both ends.
pub fn link(a: &Netns, a_if: &str, a_addr: &str, b: &Netns, b_if: &str, b_addr: &str) {
    sh(&[
        "ip", "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
        &b.name,
    ]);
    sh(&["ip", "-n", &a.name, "addr", "add", a_addr, "dev", a_if]);
    sh(&["ip", "-n", &b.name, "addr", "add", b_addr, "dev", b_if]);
    sh(&["ip", "-n", &a.name, "link", "set", a_if, "up"]);
    sh(&["ip", "-n", &b.name, "link", "set", b_if, "up"]);
}

/// One node's agent settings.
pub struct NodeSpec {
    pub name: &'static str,
    /// A string, or a TOML array as written (`["192.0.2.11/24", "2001:db8:1::11/64"]`).
    pub address: &'static str,
    /// Likewise.
    pub pod_cidr: &'static str,
    pub asn: u32,
    /// (address, asn, name)
    pub peers: Vec<(&'static str, u32, &'static str)>,
}

/// A `tortie run` process in a namespace, with its own dir (config, socket,
/// state, log). Killed (SIGKILL) on drop if still running.
pub struct Agent {
    pub dir: PathBuf,
    pub ns: String,
    /// Extra arguments after `tortie run --config F`.
    pub args: Vec<String>,
    child: Option<Child>,
}

impl Agent {
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("tortie.toml")
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("run/tortie.sock")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("agent.log")
    }

    pub fn write_config(dir: &Path, spec: &NodeSpec) {
        // A TOML array (dual-stack) as written, a string quoted.
        let value = |s: &str| {
            if s.starts_with('[') {
                s.to_string()
            } else {
                format!("\"{s}\"")
            }
        };
        let mut text = format!(
            "[node]\nname = \"{}\"\naddress = {}\nasn = {}\npod_cidr = {}\n\n\
             [bgp]\nhold_time = 9\nconnect_retry = 1\nrestart_time = 30\n\n",
            spec.name,
            value(spec.address),
            spec.asn,
            value(spec.pod_cidr)
        );
        if !spec.address.contains('.') {
            // No IPv4 address to take the BGP identifier from: the peer-side
            // convention of these tests, 192.0.2.<last byte of the IPv6 address>.
            let last = spec
                .address
                .split('/')
                .next()
                .and_then(|a| a.rsplit(':').next())
                .unwrap_or("1");
            text = text.replacen(
                "[node]\n",
                &format!("[node]\nrouter_id = \"192.0.2.{last}\"\n"),
                1,
            );
        }
        for (addr, asn, name) in &spec.peers {
            text.push_str(&format!(
                "[[peer]]\naddress = \"{addr}\"\nasn = {asn}\nname = \"{name}\"\n\n"
            ));
        }
        text.push_str(&format!(
            "[api]\nsocket = \"{}\"\n\n[metrics]\nlisten = \"127.0.0.1:9642\"\n\n[state]\ndir = \"{}\"\n",
            dir.join("run/tortie.sock").display(),
            dir.join("state").display()
        ));
        std::fs::write(dir.join("tortie.toml"), text).expect("writing the config");
    }

    /// Writes the config and starts the agent; waits until its API answers.
    pub fn start(dir: PathBuf, ns: &Netns, spec: &NodeSpec) -> Agent {
        std::fs::create_dir_all(&dir).expect("agent dir");
        Self::write_config(&dir, spec);
        let mut a = Agent {
            dir,
            ns: ns.name.clone(),
            args: Vec::new(),
            child: None,
        };
        a.spawn();
        a
    }

    /// (Re)starts the process with the current config file.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("agent log");
        let log2 = log.try_clone().expect("agent log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, TORTIE, "run", "--config"])
            .arg(self.config_path())
            .args(&self.args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .expect("starting tortie run");
        self.child = Some(child);
        let sock = self.socket();
        wait_until(Duration::from_secs(10), "the agent's API", || {
            cli(&sock, &["status", "-o", "json"]).status.success()
        });
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `sig`; `ip netns exec` execs tortie, so the pid is the agent's.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
        }
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn kill9(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
        let _ = self.wait(Duration::from_secs(5));
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn status_json(&self) -> serde_json::Value {
        let out = cli(&self.socket(), &["status", "-o", "json"]);
        assert!(
            out.status.success(),
            "status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }

    pub fn peer_states(&self) -> Vec<String> {
        let v = self.status_json();
        v["peers"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p["state"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn wait_established(&self, timeout: Duration) {
        wait_until(timeout, "every peer Established", || {
            let s = self.peer_states();
            !s.is_empty() && s.iter().all(|x| x == "Established")
        });
    }

    /// `tortie attach` through the CLI with `extra` arguments; insists on
    /// success and returns what it printed.
    pub fn attach_with(&self, netns: &Netns, id: &str, extra: &[&str]) -> String {
        let path = netns.path();
        let mut args = vec!["attach", "--netns", &path, "--id", id];
        args.extend_from_slice(extra);
        let out = cli(&self.socket(), &args);
        assert!(
            out.status.success(),
            "attach {id} {extra:?}: {}\nagent log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `tortie attach` through the CLI; returns the address.
    pub fn attach(&self, netns: &Netns, id: &str) -> String {
        self.attach_with(netns, id, &[])
    }

    /// `tortie attach --ip` through the CLI; returns what it printed.
    pub fn attach_ip(&self, netns: &Netns, id: &str, ip: &str) -> String {
        self.attach_with(netns, id, &["--ip", ip])
    }

    /// `tortie attach -o json` (with `extra` arguments): the answer.
    pub fn attach_json(&self, netns: &Netns, id: &str, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["-o", "json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&self.attach_with(netns, id, &args)).expect("attach JSON")
    }

    /// SIGTERM (the agent must exit 0 within 10 s, leaving containers and
    /// routes in place), then start it again with the current config file.
    pub fn restart(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        assert_eq!(
            self.wait(Duration::from_secs(10)),
            Some(0),
            "exit code after SIGTERM\n{}",
            self.log()
        );
        self.spawn();
    }

    /// GET /metrics from inside the node's namespace.
    pub fn scrape(&self) -> String {
        let out = run(Command::new("ip").args([
            "netns",
            "exec",
            &self.ns,
            "curl",
            "-sf",
            "http://127.0.0.1:9642/metrics",
        ]));
        assert!(
            out.status.success(),
            "scrape failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `tortie <args> --socket <sock>`.
pub fn cli(sock: &Path, args: &[&str]) -> Output {
    run(Command::new(TORTIE).args(args).arg("--socket").arg(sock))
}

pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// A unique short tag for names: test tag + pid (interface names ≤ 15 chars).
pub fn tag(t: &str) -> String {
    format!("{t}{}", std::process::id())
}

/// Two nodes joined by a veth, each with an agent and one container namespace.
pub struct TwoNodes {
    // Field order = drop order: agents first, then namespaces, then the dir.
    pub a: Agent,
    pub b: Agent,
    pub ca: Netns,
    pub cb: Netns,
    pub na: Netns,
    pub nb: Netns,
    pub dir: tempfile::TempDir,
}

/// The families of a [`TwoNodes`] pair: their addresses, blocks and session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    /// 192.0.2.11-12/24, 10.244.1-2.0/26, an IPv4 session.
    V4,
    /// Those plus 2001:db8:1::11-12/64 and fd00:10:244:1-2::/120, one IPv4
    /// session carrying both families.
    Dual,
    /// Only the IPv6 ones, an IPv6 session (router ids 192.0.2.11-12).
    V6Only,
}

impl TwoNodes {
    pub fn new(t: &str) -> TwoNodes {
        TwoNodes::with(t, Stack::V4)
    }

    /// [`TwoNodes::with`], then both sessions Established: the start-up
    /// the two-node tests begin with.
    pub fn established(t: &str, stack: Stack) -> TwoNodes {
        let t = TwoNodes::with(t, stack);
        t.a.wait_established(Duration::from_secs(20));
        t.b.wait_established(Duration::from_secs(20));
        t
    }

    pub fn with(t: &str, stack: Stack) -> TwoNodes {
        let tg = tag(t);
        let dir = tempfile::Builder::new()
            .prefix(&format!("tortie-{t}-"))
            .tempdir()
            .expect("tempdir");
        let na = Netns::new(format!("{tg}-na"));
        let nb = Netns::new(format!("{tg}-nb"));
        let ca = Netns::new(format!("{tg}-ca"));
        let cb = Netns::new(format!("{tg}-cb"));
        let ia = format!("v{}a", std::process::id());
        let ib = format!("v{}b", std::process::id());
        link(&na, &ia, "192.0.2.11/24", &nb, &ib, "192.0.2.12/24");
        if stack != Stack::V4 {
            // nodad: usable at once (tortie run checks the node addresses,
            // and the session's source must not be tentative).
            for (ns, dev, addr) in [
                (&na, &ia, "2001:db8:1::11/64"),
                (&nb, &ib, "2001:db8:1::12/64"),
            ] {
                sh(&[
                    "ip", "-n", &ns.name, "addr", "add", addr, "dev", dev, "nodad",
                ]);
            }
        }
        let spec = |n: u8| {
            let (name, other) = if n == 1 {
                ("node-a", "node-b")
            } else {
                ("node-b", "node-a")
            };
            let pick = |v4: &'static str, dual: &'static str, v6: &'static str| match stack {
                Stack::V4 => v4,
                Stack::Dual => dual,
                Stack::V6Only => v6,
            };
            let [address, pod_cidr, peer] = if n == 1 {
                [
                    pick(
                        "192.0.2.11/24",
                        r#"["192.0.2.11/24", "2001:db8:1::11/64"]"#,
                        "2001:db8:1::11/64",
                    ),
                    pick(
                        "10.244.1.0/26",
                        r#"["10.244.1.0/26", "fd00:10:244:1::/120"]"#,
                        "fd00:10:244:1::/120",
                    ),
                    pick("192.0.2.12", "192.0.2.12", "2001:db8:1::12"),
                ]
            } else {
                [
                    pick(
                        "192.0.2.12/24",
                        r#"["192.0.2.12/24", "2001:db8:1::12/64"]"#,
                        "2001:db8:1::12/64",
                    ),
                    pick(
                        "10.244.2.0/26",
                        r#"["10.244.2.0/26", "fd00:10:244:2::/120"]"#,
                        "fd00:10:244:2::/120",
                    ),
                    pick("192.0.2.11", "192.0.2.11", "2001:db8:1::11"),
                ]
            };
            NodeSpec {
                name,
                address,
                pod_cidr,
                asn: 64512,
                peers: vec![(peer, 64512, other)],
            }
        };
        let a = Agent::start(dir.path().join("a"), &na, &spec(1));
        let b = Agent::start(dir.path().join("b"), &nb, &spec(2));
        TwoNodes {
            a,
            b,
            ca,
            cb,
            na,
            nb,
            dir,
        }
    }
}

/// `ping` from a namespace; returns (transmitted, received).
pub fn ping(ns: &Netns, dst: &str, count: u32, interval: &str) -> (u32, u32) {
    let out = run(&mut ns.exec(&[
        "ping",
        "-n",
        "-q",
        "-c",
        &count.to_string(),
        "-i",
        interval,
        "-W",
        "1",
        dst,
    ]));
    parse_ping(&String::from_utf8_lossy(&out.stdout))
}

pub fn parse_ping(text: &str) -> (u32, u32) {
    for line in text.lines() {
        if let Some((tx, rest)) = line.split_once(" packets transmitted, ") {
            let rx = rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            return (tx.trim().parse().unwrap_or(0), rx);
        }
    }
    (0, 0)
}

/// A busybox root file system (static busybox and a few applets) in
/// `dir/rootfs`, for runtimes that run from a directory or a tar.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(root.join(d)).expect("rootfs dir");
    }
    std::fs::copy("/usr/bin/busybox", root.join("bin/busybox")).expect("static busybox");
    for applet in ["sh", "ping", "ip", "cat", "sleep"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("symlink");
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    root
}

/// True when `bin --version` runs and succeeds.
pub fn available(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
