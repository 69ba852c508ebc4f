//! Network namespaces, veth pairs and running commands inside a namespace.
//!
//! Everything goes through iproute2 (`ip netns add`, `ip link add … netns …`),
//! which is what the daemons' documentation assumes and what an operator can
//! replay by hand. A [`Netns`] guard deletes its namespace on drop, on panic
//! too, after killing (by PID) whatever still runs inside it.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{LabError, Result};

/// Returns true when running as root. When not root: panics if env `CI` is set
/// (root tests must never skip in CI), otherwise prints "skipped: needs root"
/// and returns false so the test can return early.
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("this test needs root and CI is set: refusing to skip");
    }
    eprintln!("skipped: needs root");
    false
}

/// A namespace name unique to this process and call: `<tag>-<pid>-<n>`.
/// Keep `tag` short; names appear in `ip netns list` and FRR socket paths.
pub fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id())
}

/// Runs a command, returning its stdout; a non-zero exit is an error carrying
/// stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = output(cmd)?;
    check(cmd, out)
}

/// Runs a command and returns its raw output whatever the exit status.
pub fn output(cmd: &mut Command) -> Result<Output> {
    cmd.output()
        .map_err(|e| LabError::io(format!("running {}", describe(cmd)), e))
}

fn check(cmd: &Command, out: Output) -> Result<String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command: describe(cmd),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// `program arg arg …` for error messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// A network namespace created by us (`ip netns add`), deleted on drop unless
/// [`Netns::persist`] was called.
#[derive(Debug)]
pub struct Netns {
    name: String,
    delete_on_drop: bool,
}

impl Netns {
    /// Creates `/run/netns/<name>`, brings `lo` up and sets `ip_forward=1`
    /// (new namespaces start with forwarding off).
    pub fn create(name: &str) -> Result<Netns> {
        run(Command::new("ip").args(["netns", "add", name]))?;
        let ns = Netns {
            name: name.to_string(),
            delete_on_drop: true,
        };
        ns.run(&["ip", "link", "set", "lo", "up"])?;
        ns.run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        Ok(ns)
    }

    /// A handle on an existing namespace that is NOT deleted on drop.
    pub fn existing(name: &str) -> Netns {
        Netns {
            name: name.to_string(),
            delete_on_drop: false,
        }
    }

    /// Keeps the namespace after this guard is dropped (the runner's `up`).
    pub fn persist(mut self) -> String {
        self.delete_on_drop = false;
        self.name.clone()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`, what `tortie attach --netns` and `nsenter` take.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// A `Command` that runs `program` inside the namespace
    /// (`ip netns exec <name> <program>`; `ip` execs it, so the child's PID is
    /// the program's).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `argv` inside the namespace and returns stdout.
    pub fn run(&self, argv: &[&str]) -> Result<String> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| LabError::Invalid("empty command".into()))?;
        run(self.command(program).args(args))
    }

    /// Runs a `sh -c` script inside the namespace and returns stdout.
    pub fn sh(&self, script: &str) -> Result<String> {
        run(self.command("sh").args(["-c", script]))
    }

    /// Adds an address (CIDR notation) to an interface and brings it up.
    pub fn add_address(&self, ifname: &str, cidr: &str) -> Result<()> {
        self.run(&["ip", "addr", "add", cidr, "dev", ifname])?;
        self.run(&["ip", "link", "set", ifname, "up"])?;
        Ok(())
    }

    /// Adds an IPv6 address (CIDR notation) to an interface without
    /// duplicate address detection, so it is usable at once.
    pub fn add_address_nodad(&self, ifname: &str, cidr: &str) -> Result<()> {
        self.run(&["ip", "addr", "add", cidr, "dev", ifname, "nodad"])
            .map(|_| ())
    }

    /// Pings `addr` from inside the namespace: `count` probes, 0.2 s apart,
    /// each waiting at most 1 s. True when every probe was answered.
    pub fn ping(&self, addr: &str, count: u32) -> bool {
        let c = count.to_string();
        let out = output(
            self.command("ping")
                .args(["-n", "-q", "-c", &c, "-i", "0.2", "-W", "1", addr]),
        );
        match out {
            Ok(o) => {
                o.status.success()
                    && String::from_utf8_lossy(&o.stdout)
                        .contains(&format!("{count} packets transmitted, {count} received"))
            }
            Err(_) => false,
        }
    }

    /// PIDs of the processes whose network namespace this is.
    pub fn pids(&self) -> Vec<i32> {
        run(Command::new("ip").args(["netns", "pids", &self.name]))
            .map(|s| {
                s.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Kills (SIGKILL, by PID) what still runs inside and deletes the namespace.
    /// Deleting it also removes its veths (and their peers).
    pub fn delete(mut self) -> Result<()> {
        self.delete_on_drop = false;
        delete_namespace(&self.name)
    }
}

/// Kills, by PID, the processes left in namespace `name` and deletes it.
/// A namespace that does not exist is already deleted.
pub fn delete_namespace(name: &str) -> Result<()> {
    if !PathBuf::from("/run/netns").join(name).exists() {
        return Ok(());
    }
    let ns = Netns::existing(name);
    for pid in ns.pids() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    run(Command::new("ip").args(["netns", "del", name])).map(|_| ())
}

impl Drop for Netns {
    fn drop(&mut self) {
        if self.delete_on_drop
            && let Err(e) = delete_namespace(&self.name)
        {
            eprintln!("warning: deleting namespace {}: {e}", self.name);
        }
    }
}

/// Creates a veth pair with `a_if` inside `a` and `b_if` inside `b`, both up.
/// Each end is created directly in its namespace (no temporary name in the
/// host namespace, so `eth1` in many namespaces never collides).
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    veth_by_name(a.name(), a_if, b.name(), b_if)
}

/// [`veth`] by namespace names.
pub fn veth_by_name(a: &str, a_if: &str, b: &str, b_if: &str) -> Result<()> {
    run(Command::new("ip").args([
        "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b,
    ]))?;
    Netns::existing(a).run(&["ip", "link", "set", a_if, "up"])?;
    Netns::existing(b).run(&["ip", "link", "set", b_if, "up"])?;
    Ok(())
}

/// Two fresh namespaces `<tag>a-…` and `<tag>b-…` joined by a veth `eth1`
/// ↔ `eth1`, with `a_cidr` and `b_cidr` on the two ends.
pub fn linked_pair(tag: &str, a_cidr: &str, b_cidr: &str) -> Result<(Netns, Netns)> {
    let a = Netns::create(&unique_name(&format!("{tag}a")))?;
    let b = Netns::create(&unique_name(&format!("{tag}b")))?;
    veth(&a, "eth1", &b, "eth1")?;
    a.add_address("eth1", a_cidr)?;
    b.add_address("eth1", b_cidr)?;
    Ok((a, b))
}

/// Names of all namespaces in `/run/netns`.
pub fn list_namespaces() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique_name("t"), unique_name("t"));
    }

    #[test]
    fn namespace_veth_ping_and_cleanup() {
        if !require_root() {
            return;
        }
        let a_name = unique_name("tl-ns-a");
        let b_name = unique_name("tl-ns-b");
        {
            let a = Netns::create(&a_name).unwrap();
            let b = Netns::create(&b_name).unwrap();
            veth(&a, "eth1", &b, "eth1").unwrap();
            a.add_address("eth1", "198.51.100.1/30").unwrap();
            b.add_address("eth1", "198.51.100.2/30").unwrap();
            assert!(a.ping("198.51.100.2", 1));
            assert_eq!(
                a.run(&["sysctl", "-n", "net.ipv4.ip_forward"])
                    .unwrap()
                    .trim(),
                "1"
            );
        }
        assert!(!list_namespaces().contains(&a_name));
        assert!(!list_namespaces().contains(&b_name));
    }
}
