//! The `tortie-lab` binary on plain linux nodes (no daemons): up builds
//! namespaces, veths and exec lines; exec and status work; unsupported
//! fields are warned about; a failed up leaves state that down removes; a
//! second down is a no-op.

use std::path::Path;
use std::process::Command;

use tortie_lab::netns::list_namespaces;
use tortie_lab::require_root;

const GOOD: &str = r#"
name: NAME
topology:
  nodes:
    a:
      kind: linux
      image: nicolaka/netshoot:latest
      exec: ["ip addr add 198.51.100.1/30 dev eth1"]
      startup-delay: 1
    b:
      kind: linux
      image: nicolaka/netshoot:latest
      exec: ["ip addr add 198.51.100.2/30 dev eth1"]
  links:
    - endpoints: ["a:eth1", "b:eth1"]
"#;

fn lab(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tortie-lab"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

fn ours(name: &str) -> Vec<String> {
    let p = format!("clab-{name}-");
    list_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&p))
        .collect()
}

#[test]
fn up_exec_status_down() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = format!("tlcli{}", std::process::id());
    let file = dir.path().join("t.clab.yml");
    std::fs::write(&file, GOOD.replace("NAME", &name)).unwrap();
    let f = file.to_str().unwrap();
    let root = dir.path().join("root");

    let up = lab(&root, &["up", f]);
    let _cleanup = Cleanup(root.clone(), f.to_string());
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(
        String::from_utf8_lossy(&up.stderr).contains("startup-delay"),
        "unsupported field not reported"
    );
    assert_eq!(ours(&name).len(), 2);

    let ping = lab(
        &root,
        &["exec", f, "a", "--", "ping", "-c1", "-W1", "198.51.100.2"],
    );
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let st = lab(&root, &["status", f]);
    assert!(String::from_utf8_lossy(&st.stdout).contains(&format!("clab-{name}-b")));
    let bad = lab(&root, &["exec", f, "nosuch", "--", "true"]);
    assert!(!bad.status.success());

    assert!(lab(&root, &["down", f]).status.success());
    assert!(ours(&name).is_empty());
    let again = lab(&root, &["down", f]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
}

#[test]
fn failed_up_is_undone_by_down() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = format!("tlcrash{}", std::process::id());
    let file = dir.path().join("t.clab.yml");
    let text = GOOD
        .replace("NAME", &name)
        .replace("ip addr add 198.51.100.2/30 dev eth1", "exit 3");
    std::fs::write(&file, text).unwrap();
    let f = file.to_str().unwrap();
    let root = dir.path().join("root");

    let up = lab(&root, &["up", "--keep-on-error", f]);
    let _cleanup = Cleanup(root.clone(), f.to_string());
    assert!(!up.status.success());
    assert_eq!(ours(&name).len(), 2, "the partial lab is kept and recorded");
    assert!(root.join(&name).join("state.json").is_file());
    // A second up refuses to build over it, and leaves it alone.
    assert!(!lab(&root, &["up", f]).status.success());
    assert_eq!(
        ours(&name).len(),
        2,
        "a refused up must not tear down the existing lab"
    );
    assert!(lab(&root, &["down", f]).status.success());
    assert!(ours(&name).is_empty());
    assert!(!root.join(&name).exists());

    // Without --keep-on-error, up tears down by itself.
    assert!(!lab(&root, &["up", f]).status.success());
    assert!(ours(&name).is_empty());
}

/// Removes the lab if an assertion failed half-way.
struct Cleanup(std::path::PathBuf, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = lab(&self.0, &["down", &self.1]);
    }
}

/// BIRD and GoBGP nodes started by the runner from their bound configs peer
/// with each other; `birdc`/`gobgp` typed in the node reach that node's daemon.
#[test]
fn bird_and_gobgp_nodes() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = format!("tlbg{}", std::process::id());
    std::fs::write(
        dir.path().join("bird.conf"),
        "router id 198.51.100.1;\nprotocol device {}\nprotocol static { ipv4; route 10.9.0.0/24 blackhole; }\n\
         protocol bgp g { local as 65001; neighbor 198.51.100.2 as 65002; connect delay time 1;\n\
         ipv4 { import all; export all; }; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("gobgpd.toml"),
        "[global.config]\n  as = 65002\n  router-id = \"198.51.100.2\"\n[[neighbors]]\n  [neighbors.config]\n\
         neighbor-address = \"198.51.100.1\"\n    peer-as = 65001\n  [neighbors.transport.config]\n    passive-mode = true\n",
    )
    .unwrap();
    let topo = format!(
        "name: {name}\ntopology:\n  nodes:\n    b:\n      kind: linux\n      image: tortie-lab/bird:2\n\
         \x20     binds: [\"bird.conf:/etc/bird/bird.conf\"]\n      exec: [\"ip addr add 198.51.100.1/30 dev eth1\"]\n\
         \x20   g:\n      kind: linux\n      image: jauderho/gobgp:latest\n      binds: [\"gobgpd.toml:/etc/gobgp/gobgpd.toml\"]\n\
         \x20     exec: [\"ip addr add 198.51.100.2/30 dev eth1\"]\n  links:\n    - endpoints: [\"b:eth1\", \"g:eth1\"]\n"
    );
    let file = dir.path().join("t.clab.yml");
    std::fs::write(&file, topo).unwrap();
    let f = file.to_str().unwrap();
    let root = dir.path().join("root");
    let up = lab(&root, &["up", f]);
    let _cleanup = Cleanup(root.clone(), f.to_string());
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    tortie_lab::wait_until(
        "BIRD node Established with the GoBGP node",
        std::time::Duration::from_secs(30),
        || {
            let o = lab(
                &root,
                &[
                    "exec",
                    f,
                    "b",
                    "--",
                    "birdc",
                    "show",
                    "protocols",
                    "all",
                    "g",
                ],
            );
            String::from_utf8_lossy(&o.stdout)
                .contains("BGP state:          Established")
                .then_some(())
        },
    )
    .unwrap();
    tortie_lab::wait_until(
        "10.9.0.0/24 in the GoBGP node",
        std::time::Duration::from_secs(15),
        || {
            let o = lab(&root, &["exec", f, "g", "--", "gobgp", "global", "rib"]);
            String::from_utf8_lossy(&o.stdout)
                .contains("10.9.0.0/24")
                .then_some(())
        },
    )
    .unwrap();
    assert!(lab(&root, &["down", f]).status.success());
    assert!(ours(&name).is_empty());
}
