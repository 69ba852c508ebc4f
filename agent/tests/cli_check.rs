//! The `tortie` binary without an agent: `check` exit codes and messages,
//! `run` refusing an invalid file, completions, and the "agent not running" error.

mod common;

use std::process::Command;

const TORTIE: &str = env!("CARGO_BIN_EXE_tortie");

const VALID: &str = r#"
[node]
name = "n1"
address = "192.0.2.11/24"
asn = 64512
pod_cidr = "10.244.1.0/26"

[[peer]]
address = "192.0.2.12"
asn = 64512
"#;

#[test]
fn check_exit_codes_and_positions() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, VALID).unwrap();
    let out = Command::new(TORTIE)
        .args(["check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        VALID
            .replace("asn = 64512\npod_cidr", "asn = 0\npod_cidr")
            .replace("10.244.1.0/26", "10.244.1.0/99"),
    )
    .unwrap();
    let out = Command::new(TORTIE)
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    // Every problem, each with file:line:col.
    let located: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("bad.toml:") && l.contains(": error: "))
        .collect();
    assert!(
        located.len() >= 2,
        "expected both problems with positions:\n{err}"
    );
    assert!(err.contains("bad.toml:5:"), "ASN 0 on line 5:\n{err}");
    assert!(err.contains("bad.toml:6:"), "pod_cidr on line 6:\n{err}");
}

#[test]
fn run_refuses_an_invalid_file_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, format!("{VALID}\nunknown_key = 1\n")).unwrap();
    let out = Command::new(TORTIE)
        .args(["run", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was changed"));
    let missing = Command::new(TORTIE)
        .args(["check", "--config", "/nonexistent/tortie.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

/// A node.address that no interface carries: a hint at `check` (the file may
/// be another node's), an error at `run` before anything is touched.
#[test]
fn node_address_on_no_interface_is_a_hint_at_check_and_an_error_at_run() {
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737); .254 is on no interface here.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let file = dir.path().join("away.toml");
    std::fs::write(
        &file,
        format!(
            "{}\n[api]\nsocket = \"{d}/s.sock\"\n[state]\ndir = \"{d}/state\"\n[metrics]\nlisten = \"\"\n",
            VALID.replace("192.0.2.11/24", "192.0.2.254/24")
        ),
    )
    .unwrap();
    let check = Command::new(TORTIE)
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(0), "{err}");
    assert!(
        err.contains("hint: node.address 192.0.2.254 is on no interface of this node"),
        "{err}"
    );
    let run = Command::new(TORTIE)
        .args(["run", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error: node.address 192.0.2.254 is on no interface of this node"),
        "{err}"
    );
    assert!(
        !dir.path().join("state").exists(),
        "run touched its state dir"
    );
    assert!(!dir.path().join("s.sock").exists(), "run bound its socket");
}

/// felix#756: on the node itself (its address on a link of MTU 1460),
/// `check` refuses a `dataplane.mtu` above what the path allows with the
/// figures, and accepts the path's own value (root: a namespace).
#[test]
fn check_refuses_an_mtu_above_the_path_on_the_node() {
    if !common::root_or_skip() {
        return;
    }
    let ns = common::Netns::new(format!("{}-mtu", common::tag("chk")));
    let ipn = |args: &[&str]| {
        let mut full = vec!["ip", "-n", ns.name.as_str()];
        full.extend_from_slice(args);
        common::sh(&full);
    };
    ipn(&["link", "add", "up0", "type", "veth", "peer", "name", "up1"]);
    ipn(&["link", "set", "up0", "mtu", "1460", "up"]);
    ipn(&["addr", "add", "192.0.2.11/24", "dev", "up0"]);
    let dir = tempfile::tempdir().unwrap();
    let check = |mtu: u32| {
        let file = dir.path().join(format!("mtu{mtu}.toml"));
        std::fs::write(
            &file,
            format!("{VALID}\n[dataplane]\nencapsulation = \"vxlan\"\nmtu = {mtu}\n"),
        )
        .unwrap();
        let out =
            common::run(&mut ns.exec(&[TORTIE, "check", "--config", &file.to_string_lossy()]));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = check(1420);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("dataplane.mtu 1420 is larger than the path allows")
            && err.contains("MTU 1460")
            && err.contains("leaves 1410"),
        "{err}"
    );
    let (code, err) = check(1410);
    assert_eq!(code, Some(0), "{err}");
}

/// `--socket` and `-o` go before or after the subcommand.
#[test]
fn global_flags_before_the_subcommand() {
    let out = Command::new(TORTIE)
        .args(["--socket", "/nonexistent/g.sock", "-o", "json", "status"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the tortie agent at /nonexistent/g.sock"),
        "{err}"
    );
}

#[test]
fn clients_say_when_the_agent_is_not_running() {
    let out = Command::new(TORTIE)
        .args(["status", "--socket", "/nonexistent/tortie.sock"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the tortie agent at /nonexistent/tortie.sock"),
        "{err}"
    );
    assert!(err.contains("is `tortie run` running?"), "{err}");
    // TORTIE_SOCKET is honoured.
    let out = Command::new(TORTIE)
        .args(["routes"])
        .env("TORTIE_SOCKET", "/nonexistent/env.sock")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/env.sock"));
}

#[test]
fn completions_are_generated() {
    let out = Command::new(TORTIE)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("attach") && text.contains("--netns"),
        "{text}"
    );
}

#[test]
fn a_closed_stdout_pipe_is_not_a_crash() {
    use std::process::Stdio;
    // `tortie completions bash | head -c1`: the reader goes away early.
    let mut child = Command::new(TORTIE)
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}
