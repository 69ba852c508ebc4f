//! Root integration test with a real container runtime: containerd 1.6
//! (Debian's package) `ctr run --cni` runs a busybox container from a plain
//! root file system directory (`--rootfs`, no image, no registry) on a tortie
//! network; the container pings the node; when the task has exited, `ctr`
//! deletes the container and sends CNI DEL (with an empty CNI_NETNS), which
//! releases the address.
//!
//! containerd runs as our own process: its own config, root, state, opt dir
//! and gRPC socket in a temp dir, killed by PID on drop. `ctr run --cni` has
//! no flags for the CNI directories (it always uses /etc/cni/net.d and
//! /opt/cni/bin, and picks the alphabetically first conflist there), so the
//! test installs a uniquely named conflist that sorts first and the plugin
//! under a unique name, and removes both (and /opt/cni/bin if it made it)
//! on drop, leaving every other file there alone.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// containerd's namespace for our containers.
const CTR_NS: &str = "tortie-test";

/// The conflist and plugin binary installed where `ctr` looks; removed on drop.
struct CniInstall {
    conflist: PathBuf,
    plugin: PathBuf,
    /// Directories we created (deepest first), removed on drop when empty.
    made: Vec<PathBuf>,
}

impl CniInstall {
    fn new(tg: &str, socket: &Path) -> CniInstall {
        let mut made = Vec::new();
        for d in ["/opt/cni/bin", "/opt/cni", "/etc/cni/net.d", "/etc/cni"] {
            if !Path::new(d).exists() {
                made.push(PathBuf::from(d));
            }
        }
        let plugin_type = format!("tortie-test-{tg}");
        let mut g = CniInstall {
            conflist: PathBuf::from(format!("/etc/cni/net.d/00-{plugin_type}.conflist")),
            plugin: PathBuf::from(format!("/opt/cni/bin/{plugin_type}")),
            made,
        };
        std::fs::create_dir_all("/opt/cni/bin").expect("creating /opt/cni/bin");
        std::fs::create_dir_all("/etc/cni/net.d").expect("creating /etc/cni/net.d");
        std::fs::copy(TORTIE_CNI, &g.plugin).expect("installing the plugin");
        std::fs::write(
            &g.conflist,
            serde_json::json!({
                "cniVersion": "1.0.0",
                "name": format!("tortie-{tg}"),
                "plugins": [{"type": plugin_type, "socket": socket}]
            })
            .to_string(),
        )
        .expect("writing the conflist");
        // ctr picks the first conflist by name: ours must be it.
        let mut names: Vec<String> = std::fs::read_dir("/etc/cni/net.d")
            .expect("listing /etc/cni/net.d")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".conf") || n.ends_with(".conflist") || n.ends_with(".json"))
            .collect();
        names.sort();
        let ours = g
            .conflist
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        assert_eq!(
            names.first().cloned(),
            ours,
            "another config sorts before ours in /etc/cni/net.d"
        );
        g.made
            .sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        g
    }
}

impl Drop for CniInstall {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.conflist);
        let _ = std::fs::remove_file(&self.plugin);
        for d in &self.made {
            // remove_dir only removes empty directories: never others' files.
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Our own containerd, killed by PID on drop (after removing our container).
struct Containerd {
    dir: PathBuf,
    child: Option<Child>,
}

impl Containerd {
    fn start(dir: PathBuf) -> Containerd {
        std::fs::create_dir_all(&dir).expect("containerd dir");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{d}/c.sock\"\n\
                 [ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n",
                d = dir.display()
            ),
        )
        .expect("containerd config");
        let log = std::fs::File::create(dir.join("containerd.log")).expect("containerd log");
        let log2 = log.try_clone().expect("containerd log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .expect("starting containerd");
        let c = Containerd {
            dir,
            child: Some(child),
        };
        wait_until(Duration::from_secs(15), "containerd's socket", || {
            c.ctr()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
        c
    }

    fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.dir.join("c.sock"))
            .args(["--namespace", CTR_NS]);
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Whatever a failed run left: our task (and its shim), our container.
        let listed = self.ctr().args(["containers", "list", "-q"]).output();
        if let Ok(out) = listed {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = self
                    .ctr()
                    .args(["tasks", "kill", "-s", "SIGKILL", id])
                    .output();
                let _ = self.ctr().args(["tasks", "delete", "-f", id]).output();
                let _ = self.ctr().args(["containers", "delete", id]).output();
            }
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The shim's runc root for our namespace (fixed path); only if empty.
        let _ = std::fs::remove_dir(format!("/run/containerd/runc/{CTR_NS}"));
    }
}

#[test]
fn containerd_runs_a_container_on_a_tortie_network() {
    if !root_or_skip() {
        return;
    }
    let tools = available("containerd")
        && available("ctr")
        && available("runc")
        && Path::new("/usr/bin/containerd-shim-runc-v2").exists()
        && Path::new("/usr/bin/busybox").exists();
    if !tools {
        assert!(
            std::env::var_os("CI").is_none(),
            "containerd, ctr, runc and busybox are required in CI"
        );
        eprintln!("skipped: containerd/runc/busybox not installed");
        return;
    }
    let tg = tag("cd");
    let tmp = tempfile::Builder::new()
        .prefix("tortie-containerd-")
        .tempdir()
        .expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let node = Netns::new(format!("{tg}-n"));
    sh(&[
        "ip",
        "-n",
        &node.name,
        "addr",
        "add",
        "192.0.2.11/32",
        "dev",
        "lo",
    ]);
    let agent = Agent::start(
        dir.join("agent"),
        &node,
        &NodeSpec {
            name: "node-cd",
            address: "192.0.2.11/24",
            pod_cidr: "10.244.10.0/28",
            asn: 64512,
            peers: vec![],
        },
    );
    let cni = CniInstall::new(&tg, &agent.socket());
    let ctrd = Containerd::start(dir.join("containerd"));
    let rootfs = busybox_rootfs(&dir);
    let id = format!("tortie-{tg}");

    // Foreground run with --rm: the task runs to its end, then ctr deletes
    // the container and tears the network down (DEL with an empty CNI_NETNS).
    let out = run(Command::new("timeout")
        .arg("40")
        .arg("ctr")
        .arg("--address")
        .arg(ctrd.dir.join("c.sock"))
        .args(["--namespace", CTR_NS, "run", "--rm", "--cni"])
        .arg("--fifo-dir")
        .arg(dir.join("fifo"))
        .args(["--cap-add", "CAP_NET_RAW", "--rootfs"])
        .arg(&rootfs)
        .arg(&id)
        .args([
            "/bin/sh",
            "-c",
            "ip -4 addr show eth0; ping -c 2 192.0.2.11",
        ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ctr run failed: {stdout}{}\nagent log:\n{}\ncontainerd log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        agent.log(),
        ctrd.log()
    );
    assert!(stdout.contains("inet 10.244.10."), "{stdout}");
    assert!(stdout.contains("2 packets received"), "{stdout}");

    wait_until(
        Duration::from_secs(10),
        "ctr's DEL to release the address",
        || {
            let s = agent.status_json();
            s["containers"] == 0 && s["ipam"]["allocated"] == 0
        },
    );
    let log = agent.log();
    assert!(log.contains("detached"), "{log}");
    // The container is gone from containerd too.
    let listed = run(ctrd.ctr().args(["containers", "list", "-q"]));
    assert!(
        String::from_utf8_lossy(&listed.stdout).trim().is_empty(),
        "container left behind: {}",
        String::from_utf8_lossy(&listed.stdout)
    );
    drop(ctrd);
    drop(cni);
}
