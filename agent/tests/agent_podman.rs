//! Root integration test with a real container runtime: rootful podman 4.3
//! (Debian's package) with its CNI backend runs a busybox container on a
//! tortie network; the container pings the node; podman's DEL releases the
//! address. Podman gets its own storage, run root, containers.conf, CNI config
//! dir and plugin dir (tortie-cni installed as `tortie`), all in a temp dir.
//!
//! Facts of this machine the setup follows: runc (crun fails on this cgroup
//! layout), cgroupfs, explicit ulimits below the hard limits, NET_RAW for
//! busybox ping.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

struct Podman {
    dir: PathBuf,
}

impl Podman {
    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--root")
            .arg(self.dir.join("storage"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .args(["--storage-driver", "vfs"]);
        c
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd().args(["rm", "-af", "-t", "0"]).output();
    }
}

/// A busybox root file system as a tar, for `podman import` (no registry).
fn busybox_rootfs_tar(dir: &Path) -> PathBuf {
    let root = busybox_rootfs(dir);
    let tar = dir.join("rootfs.tar");
    sh(&[
        "tar",
        "-C",
        &root.display().to_string(),
        "-cf",
        &tar.display().to_string(),
        ".",
    ]);
    tar
}

#[test]
fn podman_runs_a_container_on_a_tortie_network() {
    if !root_or_skip() {
        return;
    }
    if !(available("podman") && available("runc") && Path::new("/usr/bin/busybox").exists()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "podman, runc and busybox are required in CI"
        );
        eprintln!("skipped: podman/runc/busybox not installed");
        return;
    }
    let tg = tag("pm");
    let tmp = tempfile::Builder::new()
        .prefix("tortie-podman-")
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
            name: "node-pm",
            address: "192.0.2.11/24",
            pod_cidr: "10.244.9.0/28",
            asn: 64512,
            peers: vec![],
        },
    );

    let net = format!("tortie-{tg}");
    std::fs::create_dir_all(dir.join("cni-bin")).expect("cni-bin");
    std::fs::create_dir_all(dir.join("cni-conf")).expect("cni-conf");
    std::fs::copy(TORTIE_CNI, dir.join("cni-bin/tortie")).expect("installing the plugin");
    std::fs::write(
        dir.join("cni-conf").join(format!("{net}.conflist")),
        serde_json::json!({
            "cniVersion": "1.0.0",
            "name": net,
            "plugins": [{"type": "tortie", "socket": agent.socket()}]
        })
        .to_string(),
    )
    .expect("conflist");
    std::fs::write(
        dir.join("containers.conf"),
        format!(
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{}\"]\nnetwork_config_dir = \"{}\"\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
            dir.join("cni-bin").display(),
            dir.join("cni-conf").display()
        ),
    )
    .expect("containers.conf");
    let podman = Podman { dir: dir.clone() };
    let tar = busybox_rootfs_tar(&dir);
    let out = run(podman
        .cmd()
        .arg("import")
        .arg(&tar)
        .arg("localhost/tortie-busybox"));
    assert!(
        out.status.success(),
        "podman import: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(podman.cmd().args([
        "run",
        "--rm",
        "--network",
        &net,
        "--cap-add",
        "NET_RAW",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "localhost/tortie-busybox",
        "/bin/sh",
        "-c",
        "ip -4 addr show eth0; ping -c 2 192.0.2.11",
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "podman run failed: {stdout}{}\nagent log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        agent.log()
    );
    assert!(stdout.contains("inet 10.244.9."), "{stdout}");
    assert!(stdout.contains("2 packets received"), "{stdout}");
    // podman sends DEL after the container exits (asynchronously): poll.
    wait_until(
        Duration::from_secs(20),
        "podman's DEL to release the address",
        || agent.status_json()["containers"] == 0,
    );
    assert!(agent.log().contains("detached"), "{}", agent.log());
}
