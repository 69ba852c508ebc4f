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
    // A second up refuses to build over it.
    assert!(!lab(&root, &["up", f]).status.success());
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
