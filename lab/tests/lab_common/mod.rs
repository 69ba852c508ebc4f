//! Shared steps of the lab end-to-end tests: bring a topology up under a
//! unique name, check pings and peer states, tear down and check nothing is
//! left.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use tortie_lab::runner::LabGuard;
use tortie_lab::topology::Role;
use tortie_lab::{require_root, wait_until};

pub const T: Duration = Duration::from_secs(45);

pub fn topology(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("topologies")
        .join(format!("{name}.clab.yml"))
}

/// Brings `topo` up as lab `<tag>-<pid>`, or `None` when not root.
pub fn up(topo: &str, tag: &str) -> Option<LabGuard> {
    if !require_root() {
        return None;
    }
    let name = format!("{tag}-{}", std::process::id());
    Some(LabGuard::up(&topology(topo), &name).unwrap_or_else(|e| panic!("up {topo}: {e}")))
}

/// Every tortie node shows every configured peer Established.
pub fn wait_all_established(g: &LabGuard) {
    for node in g.lab.topo.nodes.iter().filter(|n| n.role == Role::Tortie) {
        wait_until(&format!("{}: all peers Established", node.name), T, || {
            let st = g.lab.tortie_status(&node.name).ok()?;
            let peers = tortie_lab::tortie::peer_states(&st);
            (!peers.is_empty() && peers.iter().all(|(_, s)| s == "Established")).then_some(())
        })
        .unwrap_or_else(|e| {
            panic!(
                "{e}: {:?}\n{}",
                g.lab.tortie_status(&node.name),
                g.lab.logs_tail(15)
            )
        });
    }
}

/// Every container pings every other one: all must succeed. Waits for the
/// first full round (routes converging), then demands a second clean round.
pub fn ping_all(g: &LabGuard) {
    let (n, _) = wait_until("a full ping round", T, || {
        let (n, failed) = g.lab.ping_all(1);
        failed.is_empty().then_some((n, ()))
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", g.lab.ping_all(1).1, g.lab.status()));
    let (n2, failed) = g.lab.ping_all(1);
    assert_eq!(n, n2);
    assert!(failed.is_empty(), "ping failures: {failed:?}");
    let c = g.lab.state.containers.len();
    assert_eq!(
        n,
        c * (c - 1),
        "every ordered pair of containers was pinged"
    );
}

/// Tears down and checks that no namespace, work dir or daemon is left, and
/// that a second down is a no-op.
pub fn down_leaves_nothing(mut g: LabGuard) {
    let pids: Vec<i32> = g.lab.state.daemons.iter().map(|d| d.pid).collect();
    g.lab.down().expect("down");
    assert!(
        g.lab.leftovers().is_empty(),
        "left after down: {:?}",
        g.lab.leftovers()
    );
    for pid in pids {
        assert!(
            tortie_lab::runner::pid_namespace(pid).is_none(),
            "daemon pid {pid} still in a lab namespace"
        );
    }
    g.lab.down().expect("second down is a no-op");
}

/// Output of a command run in a node.
pub fn node_sh(g: &LabGuard, node: &str, script: &str) -> String {
    g.lab
        .sh(node, script)
        .unwrap_or_else(|e| panic!("{node}: {script}: {e}"))
}

/// A `ping` from one lab container to another's address, running in a thread.
pub struct Pinger(std::thread::JoinHandle<String>);

/// Which address of a container to ping.
#[derive(Clone, Copy, Debug)]
pub enum Family {
    /// Its first (IPv4 on a dual-stack node).
    First,
    /// Its IPv6 address.
    V6,
}

impl Pinger {
    /// Starts `count` probes every `interval` seconds (ping's `-i`) from
    /// container `from` = (node, id) to container `to`; `-W 1` per probe.
    pub fn start(
        g: &LabGuard,
        from: (&str, &str),
        to: (&str, &str),
        count: u32,
        interval: &str,
    ) -> Pinger {
        Pinger::start_family(g, from, to, Family::First, count, interval)
    }

    /// [`Pinger::start`] to `to`'s address of `family`.
    pub fn start_family(
        g: &LabGuard,
        from: (&str, &str),
        to: (&str, &str),
        family: Family,
        count: u32,
        interval: &str,
    ) -> Pinger {
        let src = g
            .lab
            .state
            .containers
            .iter()
            .find(|c| c.node == from.0 && c.id == from.1)
            .unwrap_or_else(|| panic!("no container {}/{}", from.0, from.1))
            .netns
            .clone();
        let dst = g
            .lab
            .state
            .containers
            .iter()
            .find(|c| c.node == to.0 && c.id == to.1)
            .and_then(|c| match family {
                Family::First => c.addresses().next(),
                Family::V6 => c.addresses().find(|a| a.contains(':')),
            })
            .unwrap_or_else(|| panic!("no container {}/{} ({family:?})", to.0, to.1))
            .to_string();
        let (count, interval) = (count.to_string(), interval.to_string());
        Pinger(std::thread::spawn(move || {
            tortie_lab::netns::Netns::existing(&src)
                .run(&[
                    "ping", "-n", "-q", "-c", &count, "-i", &interval, "-W", "1", &dst,
                ])
                .unwrap_or_else(|e| e.to_string())
        }))
    }

    /// Waits for the last probe; ping's output (or the error running it).
    pub fn finish(self) -> String {
        self.0
            .join()
            .unwrap_or_else(|_| "the ping thread panicked".into())
    }
}

/// SIGKILLs `node`'s agent while `from` pings `to` (100 probes, 50 ms apart),
/// restarts it after `down`, and demands that not one probe was lost: the
/// kernel keeps the routes and the peers keep ours (RFC 4724).
pub fn agent_restart_under_ping_loses_nothing(
    g: &mut LabGuard,
    node: &str,
    from: (&str, &str),
    to: (&str, &str),
    down: Duration,
) {
    agent_restart_under_ping_family(g, node, from, to, Family::First, down);
}

/// [`agent_restart_under_ping_loses_nothing`] pinging `to`'s address of
/// `family` (`ping -6` with [`Family::V6`]).
pub fn agent_restart_under_ping_family(
    g: &mut LabGuard,
    node: &str,
    from: (&str, &str),
    to: (&str, &str),
    family: Family,
    down: Duration,
) {
    let pinger = Pinger::start_family(g, from, to, family, 100, "0.05");
    std::thread::sleep(Duration::from_millis(500));
    g.lab.kill_daemon(node, "tortie").unwrap();
    std::thread::sleep(down);
    g.lab.restart_daemon(node, "tortie").unwrap();
    let out = pinger.finish();
    assert!(
        out.contains("100 packets transmitted, 100 received"),
        "loss during the restart of {node}'s agent: {out}"
    );
}
