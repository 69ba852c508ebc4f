//! The netns lab runner: plays a containerlab topology on one Linux machine
//! with network namespaces, no Docker.
//!
//! `up`: one namespace per node (`clab-<lab>-<node>`), a veth per link with
//! the file's interface names, the node's `exec` lines, then its daemon
//! (tortie, BIRD, FRR, GoBGP or ExaBGP) from its bound config, then the
//! containers listed in `TORTIE_CONTAINERS`, each a namespace
//! `clab-<lab>-<node>-<id>` attached through the node's agent.
//!
//! Everything runs inside the node through a wrapper that gives the process a
//! private mount namespace (`ip netns exec` makes one) in which the node's
//! work dir `<root>/<lab>/<node>/run/{tortie,bird,frr}` is bind-mounted on
//! `/run/tortie`, `/run/bird` and `/run/frr`: each node has its own default
//! sockets, so `tortie status`, `birdc` and `vtysh` typed in a node work as in
//! a container. tortie's `state.dir` is rewritten into the node's work dir.
//!
//! Crash safety: the state file `<root>/<lab>/state.json` is written before
//! every creation, so `down` removes everything a crashed `up` made; `down`
//! of a lab that is not up is a no-op.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::netns::{self, Netns, delete_namespace, run, veth_by_name};
use crate::process::Daemon;
use crate::topology::{Node, Role, Topology};

/// Set (by a SIGINT handler) to make a running [`Lab::up`] stop at its next
/// step with an error, so that a teardown does not race further creations.
pub static INTERRUPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn check_interrupt() -> Result<()> {
    if INTERRUPT.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(LabError::Invalid("interrupted".into()));
    }
    Ok(())
}

/// Where labs keep their work dirs unless env `TORTIE_LAB_DIR` says otherwise.
pub const DEFAULT_ROOT: &str = "/run/tortie-lab";

/// A daemon the runner started.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DaemonRecord {
    pub node: String,
    pub name: String,
    pub pid: i32,
    /// What was run (inside the node wrapper), to restart it.
    #[serde(default)]
    pub argv: Vec<String>,
}

/// A container namespace attached to a node.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerRecord {
    pub node: String,
    pub id: String,
    pub netns: String,
    /// The container's (first) address.
    pub address: Option<String>,
    /// Its further addresses: the IPv6 one of a dual-stack container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_addresses: Vec<String>,
}

impl ContainerRecord {
    /// Every address, the first first.
    pub fn addresses(&self) -> impl Iterator<Item = &str> + '_ {
        self.address
            .as_deref()
            .into_iter()
            .chain(self.more_addresses.iter().map(String::as_str))
    }
}

/// What `up` made, recorded before each creation.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabState {
    pub lab: String,
    pub topology: PathBuf,
    pub namespaces: Vec<String>,
    pub daemons: Vec<DaemonRecord>,
    pub containers: Vec<ContainerRecord>,
}

/// The lab work-dir root: env `TORTIE_LAB_DIR` or [`DEFAULT_ROOT`].
pub fn default_root() -> PathBuf {
    std::env::var_os("TORTIE_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
}

/// A topology and its work dir.
#[derive(Debug)]
pub struct Lab {
    pub topo: Topology,
    pub workdir: PathBuf,
    pub state: LabState,
}

const WRAPPER: &str = r#"set -e
for m in tortie bird frr; do
  mkdir -p "/run/$m"
  mount --bind "$TORTIE_LAB_NODE_DIR/run/$m" "/run/$m"
done
exec "$@""#;

impl Lab {
    /// A handle on `topo` with work dir `<root>/<lab>`, loading its state
    /// file when the lab is up.
    pub fn open(topo: Topology, root: &Path) -> Result<Lab> {
        let workdir = root.join(&topo.name);
        let state_path = workdir.join("state.json");
        let state = match std::fs::read_to_string(&state_path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| LabError::parse(state_path.display().to_string(), e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LabState::default(),
            Err(e) => return Err(LabError::io(format!("reading {}", state_path.display()), e)),
        };
        Ok(Lab {
            topo,
            workdir,
            state,
        })
    }

    /// True when a state file exists (the lab is up, or an `up` crashed).
    pub fn is_up(&self) -> bool {
        self.workdir.join("state.json").exists()
    }

    fn save(&self) -> Result<()> {
        let path = self.workdir.join("state.json");
        let tmp = self.workdir.join("state.json.tmp");
        let text = serde_json::to_string_pretty(&self.state)
            .map_err(|e| LabError::Invalid(format!("serializing lab state: {e}")))?;
        std::fs::write(&tmp, text)
            .map_err(|e| LabError::io(format!("writing {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &path)
            .map_err(|e| LabError::io(format!("renaming to {}", path.display()), e))
    }

    /// The work dir of `node`.
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.workdir.join(node)
    }

    /// A command running `argv` inside `node` (its namespace and its private
    /// `/run/{tortie,bird,frr}`), with the tortie binary's folder on PATH.
    pub fn node_command(&self, node: &str, argv: &[String]) -> Command {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.topo.namespace(node),
            "sh",
            "-c",
            WRAPPER,
            "sh",
        ]);
        c.args(argv);
        c.env("TORTIE_LAB_NODE_DIR", self.node_dir(node));
        if let Ok(bin) = crate::tortie::tortie_bin()
            && let Some(dir) = bin.parent()
        {
            let path = std::env::var("PATH").unwrap_or_default();
            c.env("PATH", format!("{}:{path}", dir.display()));
        }
        c
    }

    /// Runs `argv` in `node` (or in container `node/id`) and returns its output.
    pub fn exec(&self, target: &str, argv: &[String]) -> Result<Output> {
        netns::output(&mut self.command(target, argv)?)
    }

    /// The command [`Lab::exec`] runs, for callers that want its stdio.
    pub fn command(&self, target: &str, argv: &[String]) -> Result<Command> {
        let cmd = match target.split_once('/') {
            Some((node, id)) => {
                let ns = self.topo.container_namespace(node, id);
                let (p, rest) = argv
                    .split_first()
                    .ok_or_else(|| LabError::Invalid("empty command".into()))?;
                let mut c = Netns::existing(&ns).command(p);
                c.args(rest);
                c
            }
            None => {
                if self.topo.node(target).is_none() {
                    return Err(LabError::Invalid(format!(
                        "no node {target} in lab {}",
                        self.topo.name
                    )));
                }
                self.node_command(target, argv)
            }
        };
        Ok(cmd)
    }

    /// Runs `sh -c script` in `node`; error on non-zero exit.
    pub fn sh(&self, node: &str, script: &str) -> Result<String> {
        run(&mut self.node_command(node, &["sh".into(), "-c".into(), script.into()]))
    }

    /// Builds the whole lab. On error the partial lab stays recorded: call
    /// [`Lab::down`].
    pub fn up(&mut self) -> Result<()> {
        self.up_with(|_| Ok(()))
    }

    /// [`Lab::up`], calling `before_daemons` once namespaces, links and
    /// `exec` lines are in place and before any daemon starts (a benchmark
    /// subscribes to route events there). Daemons start one after the other
    /// without waiting; then each tortie node's API is waited for, then the
    /// containers are attached. The process's open-file limit is raised to
    /// its hard limit first (daemons inherit it; see [`crate::limits`]).
    ///
    /// Namespaces, links, each node's `exec` lines (in order within the
    /// node) and each node's containers are independent of one another, so
    /// each of those stages runs on [`crate::parallel::jobs`] threads; the
    /// state file names everything a stage creates before the stage starts.
    pub fn up_with(&mut self, before_daemons: impl FnOnce(&Lab) -> Result<()>) -> Result<()> {
        crate::limits::raise_nofile()?;
        if self.is_up() {
            return Err(LabError::Invalid(format!(
                "lab {} is already up (state in {}); run down first",
                self.topo.name,
                self.workdir.display()
            )));
        }
        std::fs::create_dir_all(&self.workdir)
            .map_err(|e| LabError::io(format!("creating {}", self.workdir.display()), e))?;
        self.state = LabState {
            lab: self.topo.name.clone(),
            topology: self.topo.path.clone(),
            ..LabState::default()
        };
        self.save()?;
        let nodes = self.topo.nodes.clone();
        let jobs = crate::parallel::jobs();
        let stop = check_interrupt;
        check_interrupt()?;
        let names: Vec<String> = nodes.iter().map(|n| self.topo.namespace(&n.name)).collect();
        self.state.namespaces.extend(names);
        self.save()?;
        crate::parallel::for_each(&nodes, jobs, stop, |node| self.create_node(node))?;
        crate::parallel::for_each(&self.topo.links, jobs, stop, |link| {
            let (a, b) = (
                self.topo.namespace(&link.a.0),
                self.topo.namespace(&link.b.0),
            );
            veth_by_name(&a, &link.a.1, &b, &link.b.1)?;
            if let Some(mtu) = link.mtu {
                let m = mtu.to_string();
                Netns::existing(&a).run(&["ip", "link", "set", &link.a.1, "mtu", &m])?;
                Netns::existing(&b).run(&["ip", "link", "set", &link.b.1, "mtu", &m])?;
            }
            Ok(())
        })?;
        crate::parallel::for_each(&nodes, jobs, stop, |node| {
            for line in &node.exec {
                check_interrupt()?;
                self.sh(&node.name, line).map_err(|e| {
                    LabError::Invalid(format!("node {}: exec {line:?}: {e}", node.name))
                })?;
            }
            Ok(())
        })?;
        before_daemons(self)?;
        for node in &nodes {
            self.start_daemon(node)?;
        }
        for node in nodes.iter().filter(|n| n.role == Role::Tortie) {
            self.wait_tortie(&node.name)?;
        }
        self.add_all_containers(&nodes, jobs)
    }

    /// Every node's `TORTIE_CONTAINERS`: the namespaces recorded first, then
    /// nodes in parallel, each node's containers one after the other.
    fn add_all_containers(&mut self, nodes: &[Node], jobs: usize) -> Result<()> {
        let with: Vec<&Node> = nodes.iter().filter(|n| !n.containers.is_empty()).collect();
        for node in &with {
            if node.role != Role::Tortie {
                return Err(LabError::Invalid(format!(
                    "node {}: containers need a tortie node",
                    node.name
                )));
            }
            let names = node
                .containers
                .iter()
                .map(|c| self.topo.container_namespace(&node.name, &c.id));
            self.state.namespaces.extend(names);
        }
        self.save()?;
        let made = crate::parallel::for_each(&with, jobs, check_interrupt, |node| {
            node.containers
                .iter()
                .map(|c| self.attach_new(node, &c.id, c.ip.as_deref()))
                .collect::<Result<Vec<_>>>()
        })?;
        self.state.containers.extend(made.into_iter().flatten());
        self.save()
    }

    fn create_node(&self, node: &Node) -> Result<()> {
        let ns = self.topo.namespace(&node.name);
        Netns::create(&ns)?.persist();
        let dir = self.node_dir(&node.name);
        for m in ["tortie", "bird", "frr"] {
            let d = dir.join("run").join(m);
            std::fs::create_dir_all(&d)
                .map_err(|e| LabError::io(format!("creating {}", d.display()), e))?;
        }
        if node.role == Role::Frr {
            run(Command::new("chown")
                .args(["-R", "frr:frr"])
                .arg(dir.join("run/frr")))?;
        }
        Ok(())
    }

    fn config_for(&self, node: &Node, suffixes: &[&str]) -> Result<PathBuf> {
        suffixes
            .iter()
            .find_map(|s| node.bound(s))
            .map(Path::to_path_buf)
            .ok_or_else(|| {
                LabError::Invalid(format!(
                    "node {}: no bind ending in one of {suffixes:?}",
                    node.name
                ))
            })
    }

    /// Copies a bound config into the node dir, readable by daemons that drop
    /// privileges (FRR).
    fn copy_config(&self, node: &str, src: &Path, name: &str) -> Result<PathBuf> {
        let dst = self.node_dir(node).join(name);
        std::fs::copy(src, &dst).map_err(|e| {
            LabError::io(format!("copying {} to {}", src.display(), dst.display()), e)
        })?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| LabError::io(format!("chmod {}", dst.display()), e))?;
        Ok(dst)
    }

    fn spawn(&mut self, node: &str, name: &str, argv: Vec<String>) -> Result<()> {
        let cmd = self.node_command(node, &argv);
        let log = self.node_dir(node).join(format!("{name}.log"));
        let d = Daemon::spawn(name, cmd, &log)?;
        let pid = d.release();
        self.state
            .daemons
            .retain(|r| !(r.node == node && r.name == name));
        self.state.daemons.push(DaemonRecord {
            node: node.to_string(),
            name: name.to_string(),
            pid,
            argv,
        });
        self.save()
    }

    /// SIGKILLs daemon `name` of `node` (a crash), by its recorded PID.
    pub fn kill_daemon(&self, node: &str, name: &str) -> Result<()> {
        let r = self.daemon_record(node, name)?;
        if pid_namespace(r.pid).as_deref() == Some(self.topo.namespace(node).as_str()) {
            use nix::sys::signal::{Signal, kill};
            let _ = kill(nix::unistd::Pid::from_raw(r.pid), Signal::SIGKILL);
            let gone =
                crate::wait::wait_for("killed daemon to exit", Duration::from_secs(5), || {
                    pid_namespace(r.pid).is_none()
                });
            gone?;
        }
        Ok(())
    }

    /// Starts daemon `name` of `node` again with its recorded command line.
    /// BIRD restarts with `-R` (graceful restart recovery: it keeps its
    /// kernel routes and defers its End-of-RIB until its peers sent theirs).
    pub fn restart_daemon(&mut self, node: &str, name: &str) -> Result<()> {
        let mut argv = self.daemon_record(node, name)?.argv.clone();
        if name == "bird" && !argv.iter().any(|a| a == "-R") {
            argv.insert(1, "-R".into());
        }
        self.spawn(node, name, argv)
    }

    fn daemon_record(&self, node: &str, name: &str) -> Result<&DaemonRecord> {
        self.state
            .daemons
            .iter()
            .find(|r| r.node == node && r.name == name)
            .ok_or_else(|| LabError::Invalid(format!("no daemon {name} on node {node}")))
    }

    fn start_daemon(&mut self, node: &Node) -> Result<()> {
        check_interrupt()?;
        let dir = self.node_dir(&node.name);
        let s = |p: &Path| p.display().to_string();
        match node.role {
            Role::Linux => {}
            Role::Tortie => {
                let src = self.config_for(node, &["tortie.toml"])?;
                let text = std::fs::read_to_string(&src)
                    .map_err(|e| LabError::io(format!("reading {}", src.display()), e))?;
                let mut t: toml::Table = text
                    .parse()
                    .map_err(|e| LabError::parse(src.display().to_string(), format!("{e}")))?;
                let mut st = toml::Table::new();
                st.insert("dir".into(), toml::Value::String(s(&dir.join("state"))));
                t.insert("state".into(), toml::Value::Table(st));
                let cfg = dir.join("tortie.toml");
                std::fs::write(&cfg, t.to_string())
                    .map_err(|e| LabError::io(format!("writing {}", cfg.display()), e))?;
                let bin = crate::tortie::tortie_bin()?;
                self.spawn(
                    &node.name,
                    "tortie",
                    vec![s(&bin), "run".into(), "--config".into(), s(&cfg)],
                )?;
            }
            Role::Bird => {
                let src = self.config_for(node, &["bird.conf"])?;
                let cfg = self.copy_config(&node.name, &src, "bird.conf")?;
                self.spawn(
                    &node.name,
                    "bird",
                    vec!["bird".into(), "-f".into(), "-c".into(), s(&cfg)],
                )?;
                self.wait_ready(&node.name, &["birdc", "show", "status"])?;
            }
            Role::Frr => {
                let src = self.config_for(node, &["frr.conf", "bgpd.conf"])?;
                let cfg = self.copy_config(&node.name, &src, "frr.conf")?;
                let zconf = dir.join("zebra.conf");
                std::fs::write(&zconf, "")
                    .map_err(|e| LabError::io(format!("writing {}", zconf.display()), e))?;
                self.spawn(
                    &node.name,
                    "zebra",
                    vec!["/usr/lib/frr/zebra".into(), "-f".into(), s(&zconf)],
                )?;
                let zsock = dir.join("run/frr/zserv.api");
                crate::wait::wait_for("zebra socket", Duration::from_secs(10), || zsock.exists())?;
                self.spawn(
                    &node.name,
                    "bgpd",
                    vec!["/usr/lib/frr/bgpd".into(), "-f".into(), s(&cfg)],
                )?;
                self.wait_ready(
                    &node.name,
                    &["vtysh", "-c", "show bgp ipv4 unicast summary"],
                )?;
            }
            Role::Gobgp => {
                let src = self.config_for(node, &["gobgpd.toml", "gobgpd.conf", "gobgp.toml"])?;
                self.spawn(
                    &node.name,
                    "gobgpd",
                    vec!["gobgpd".into(), "-f".into(), s(&src), "-p".into()],
                )?;
                self.wait_ready(&node.name, &["gobgp", "global"])?;
            }
            Role::Exabgp => {
                let src = self.config_for(node, &["exabgp.conf"])?;
                self.spawn(
                    &node.name,
                    "exabgp",
                    vec![
                        "env".into(),
                        "exabgp_api_cli=false".into(),
                        "exabgp_daemon_drop=false".into(),
                        "exabgp".into(),
                        s(&src),
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Waits until the agent of tortie node `name` answers on its API socket
    /// (`<node dir>/run/tortie/tortie.sock`, the node's `/run/tortie`).
    fn wait_tortie(&self, name: &str) -> Result<()> {
        let sock = self.node_dir(name).join("run/tortie/tortie.sock");
        crate::wait::wait_for(
            &format!("tortie API on {name}"),
            Duration::from_secs(30),
            || std::os::unix::net::UnixStream::connect(&sock).is_ok(),
        )
        .map_err(|e| LabError::Invalid(format!("{e}\n{}", self.logs_tail(10))))
    }

    /// Waits until `probe` succeeds in `node` (a daemon's CLI answering); on
    /// timeout the error carries the node's daemon logs.
    fn wait_ready(&self, node: &str, probe: &[&str]) -> Result<()> {
        let argv: Vec<String> = probe.iter().map(|a| a.to_string()).collect();
        crate::wait::wait_for(
            &format!("`{}` in {node}", probe.join(" ")),
            Duration::from_secs(20),
            || self.exec(node, &argv).is_ok_and(|o| o.status.success()),
        )
        .map_err(|e| LabError::Invalid(format!("{e}\n{}", self.logs_tail(10))))
    }

    /// Creates container `id`'s namespace beside `node` and attaches it
    /// through the node's agent (`tortie attach`). Returns its address.
    pub fn add_container(&mut self, node: &Node, id: &str, ip: Option<&str>) -> Result<String> {
        check_interrupt()?;
        if node.role != Role::Tortie {
            return Err(LabError::Invalid(format!(
                "node {}: containers need a tortie node",
                node.name
            )));
        }
        let ns = self.topo.container_namespace(&node.name, id);
        self.state.namespaces.push(ns);
        self.save()?;
        let record = self.attach_new(node, id, ip)?;
        let address = record.address.clone().unwrap_or_default();
        self.state.containers.push(record);
        self.save()?;
        Ok(address)
    }

    /// Creates container `id`'s namespace (already recorded in the state
    /// file) and attaches it through `node`'s agent.
    fn attach_new(&self, node: &Node, id: &str, ip: Option<&str>) -> Result<ContainerRecord> {
        let ns = self.topo.container_namespace(&node.name, id);
        let path = Netns::create(&ns)?.persist();
        // The CLI is only an API client (the agent does the work in its own
        // namespace): run it here against the node's socket, one process
        // instead of the node wrapper's `ip netns exec`, `sh` and mounts.
        let mut cmd = Command::new(crate::tortie::tortie_bin()?);
        cmd.arg("--socket")
            .arg(self.node_dir(&node.name).join("run/tortie/tortie.sock"))
            .args([
                "attach",
                "--netns",
                &format!("/run/netns/{path}"),
                "--id",
                id,
            ])
            .args(["-o", "json"]);
        if let Some(ip) = ip {
            cmd.args(["--ip", ip]);
        }
        let out = run(&mut cmd)?;
        let mut addresses = crate::tortie::attached_addresses(&out).into_iter();
        let address = addresses
            .next()
            .ok_or_else(|| LabError::parse("tortie attach -o json", out.clone()))?;
        Ok(ContainerRecord {
            node: node.name.clone(),
            id: id.to_string(),
            netns: ns,
            address: Some(address),
            more_addresses: addresses.collect(),
        })
    }

    /// Detaches container `id` from `node` through the agent (`tortie detach`)
    /// and deletes its namespace.
    pub fn detach_container(&mut self, node: &str, id: &str) -> Result<()> {
        let argv: Vec<String> = ["tortie", "detach", "--id", id]
            .iter()
            .map(|s| s.to_string())
            .collect();
        run(&mut self.node_command(node, &argv))?;
        if let Some(pos) = self
            .state
            .containers
            .iter()
            .position(|c| c.node == node && c.id == id)
        {
            let c = self.state.containers.remove(pos);
            delete_namespace(&c.netns)?;
            self.state.namespaces.retain(|n| n != &c.netns);
        }
        self.save()
    }

    /// Removes everything the state file records: daemons (by PID, only if
    /// the PID still lives in one of the lab's namespaces), namespaces (with
    /// their veths), FRR's and the lab's work dirs. A lab that is not up: no-op.
    pub fn down(&mut self) -> Result<()> {
        if !self.is_up() {
            return Ok(());
        }
        // SIGTERM every daemon first, then wait for all together (hundreds
        // of agents in a scale lab), SIGKILL what is left after 3 s.
        let pids: Vec<i32> = self
            .state
            .daemons
            .iter()
            .rev()
            .filter(|d| {
                pid_namespace(d.pid)
                    .as_ref()
                    .is_some_and(|n| self.state.namespaces.contains(n))
            })
            .map(|d| d.pid)
            .collect();
        stop_pids(&pids);
        let mut errors = Vec::new();
        for ns in self.state.namespaces.iter().rev() {
            if let Err(e) = delete_namespace(ns) {
                errors.push(e.to_string());
            }
        }
        if !errors.is_empty() {
            return Err(LabError::Invalid(format!("down: {}", errors.join("; "))));
        }
        std::fs::remove_dir_all(&self.workdir)
            .map_err(|e| LabError::io(format!("removing {}", self.workdir.display()), e))?;
        self.state = LabState::default();
        Ok(())
    }

    /// A human summary: per node its namespace, daemons and a status query.
    pub fn status(&self) -> String {
        let mut s = format!(
            "lab {} ({})\n",
            self.topo.name,
            if self.is_up() { "up" } else { "down" }
        );
        if !self.is_up() {
            return s;
        }
        let existing = netns::list_namespaces();
        for node in &self.topo.nodes {
            let ns = self.topo.namespace(&node.name);
            let present = existing.contains(&ns);
            s.push_str(&format!(
                "\n== {} [{:?}] netns {ns}{}\n",
                node.name,
                node.role,
                if present { "" } else { " (MISSING)" }
            ));
            for d in self.state.daemons.iter().filter(|d| d.node == node.name) {
                let alive = pid_namespace(d.pid).is_some_and(|n| n == ns);
                s.push_str(&format!(
                    "   {} pid {} {}\n",
                    d.name,
                    d.pid,
                    if alive { "running" } else { "NOT RUNNING" }
                ));
            }
            for c in self.state.containers.iter().filter(|c| c.node == node.name) {
                let addresses: Vec<&str> = c.addresses().collect();
                s.push_str(&format!(
                    "   container {} {} netns {}\n",
                    c.id,
                    if addresses.is_empty() {
                        "-".to_string()
                    } else {
                        addresses.join(",")
                    },
                    c.netns
                ));
            }
            let query: Option<&[&str]> = match node.role {
                Role::Tortie => Some(&["tortie", "status"]),
                Role::Bird => Some(&["birdc", "show", "protocols"]),
                Role::Frr => Some(&["vtysh", "-c", "show bgp ipv4 unicast summary"]),
                Role::Gobgp => Some(&["gobgp", "neighbor"]),
                _ => None,
            };
            if let (true, Some(q)) = (present, query) {
                let argv: Vec<String> = q.iter().map(|a| a.to_string()).collect();
                match self.exec(&node.name, &argv) {
                    Ok(o) => {
                        s.push_str(&String::from_utf8_lossy(&o.stdout));
                        s.push_str(&String::from_utf8_lossy(&o.stderr));
                    }
                    Err(e) => s.push_str(&format!("   {e}\n")),
                }
            }
        }
        s
    }

    /// The address of container `id` on `node`, from the state file.
    pub fn container_address(&self, node: &str, id: &str) -> Option<&str> {
        self.state
            .containers
            .iter()
            .find(|c| c.node == node && c.id == id)
            .and_then(|c| c.address.as_deref())
    }
}

/// The name of the namespace (under /run/netns) process `pid` lives in.
pub fn pid_namespace(pid: i32) -> Option<String> {
    let out = run(Command::new("ip").args(["netns", "identify", &pid.to_string()])).ok()?;
    let name = out.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// SIGTERM to each, up to 3 s for all, then SIGKILL, by PID.
fn stop_pids(pids: &[i32]) {
    use nix::sys::signal::{Signal, kill};
    let live: Vec<nix::unistd::Pid> = pids
        .iter()
        .map(|&p| nix::unistd::Pid::from_raw(p))
        .filter(|&p| kill(p, Signal::SIGTERM).is_ok())
        .collect();
    // A daemon this process started is its child: once it exits it stays a
    // zombie (and answers signal 0) until reaped, so reap it here.
    let exited = |p: nix::unistd::Pid| {
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        match waitpid(p, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => false,
            Ok(_) => true,
            Err(_) => kill(p, None).is_err(),
        }
    };
    let mut left = live.clone();
    let gone = crate::wait::wait_for("exit", Duration::from_secs(3), || {
        left.retain(|&p| !exited(p));
        left.is_empty()
    });
    if gone.is_err() {
        for &p in &live {
            let _ = kill(p, Signal::SIGKILL);
        }
    }
}

/// A lab brought up for a test under a private work-dir root with a unique
/// name; `down` on drop (on panic too).
#[derive(Debug)]
pub struct LabGuard {
    pub lab: Lab,
    _root: tempfile::TempDir,
}

impl LabGuard {
    /// Loads `path` as lab `name` and brings it up; on failure tears down
    /// what was made and returns the error.
    pub fn up(path: &Path, name: &str) -> Result<LabGuard> {
        let root = tempfile::tempdir().map_err(|e| LabError::io("creating a lab root", e))?;
        let topo = Topology::load(path, Some(name))?;
        let mut lab = Lab::open(topo, root.path())?;
        if let Err(e) = lab.up() {
            let logs = lab.logs_tail(20);
            let _ = lab.down();
            return Err(LabError::Invalid(format!("{e}\n{logs}")));
        }
        Ok(LabGuard { lab, _root: root })
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if let Err(e) = self.lab.down() {
            eprintln!("warning: lab down: {e}");
        }
    }
}
