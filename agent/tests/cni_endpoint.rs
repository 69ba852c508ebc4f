//! Root integration test of the agent's `POST /v1/cni` (the CNI plugin's
//! transport protocol, docs/cni.md): one agent, CNI invocations sent as the
//! plugin sends them (`NAME=VALUE\0`…, `\0`, the network config) over its
//! socket, the answer read as `<exit>\n<stdout>`. The spec's behaviours:
//! ADD in each cniVersion, CHECK with prevResult, GC, DEL of an unknown
//! container, STATUS, and bad requests.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use common::*;
use serde_json::{Value, json};

/// One invocation: (exit status, stdout).
fn post(sock: &Path, body: &[u8]) -> (u8, String) {
    let mut s = UnixStream::connect(sock).expect("connecting to the agent");
    let head = format!(
        "POST /v1/cni HTTP/1.1\r\nHost: tortie\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("request head");
    s.write_all(body).expect("request body");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("response");
    let text = String::from_utf8(answer).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    // The plugin frames the answer by Content-Length (never chunked).
    let length = format!("content-length: {}", body.len());
    assert!(head.to_ascii_lowercase().contains(&length), "{head}");
    let (exit, stdout) = body.split_once('\n').expect("an exit status line");
    (exit.parse().expect("exit status"), stdout.to_string())
}

fn body(env: &[(&str, &str)], conf: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in env {
        b.extend_from_slice(format!("{k}={v}\0").as_bytes());
    }
    b.push(0);
    b.extend_from_slice(conf);
    b
}

/// An invocation with `CNI_COMMAND=cmd` and `env`: (exit, stdout as JSON or Null).
fn cni(sock: &Path, cmd: &str, env: &[(&str, &str)], conf: &Value) -> (u8, Value) {
    let mut all = vec![("CNI_COMMAND", cmd), ("CNI_PATH", "/opt/cni/bin")];
    all.extend_from_slice(env);
    let (exit, out) = post(sock, &body(&all, conf.to_string().as_bytes()));
    if out.is_empty() {
        return (exit, Value::Null);
    }
    assert!(out.ends_with('\n'), "{out:?}");
    (exit, serde_json::from_str(&out).expect("stdout is JSON"))
}

#[test]
fn cni_endpoint_runs_the_spec_against_an_agent() {
    if !root_or_skip() {
        return;
    }
    let tg = tag("cniagent");
    let dir = tempfile::Builder::new()
        .prefix("tortie-cniagent-")
        .tempdir()
        .expect("tempdir");
    let node = Netns::new(format!("{tg}-n"));
    address_on_lo(&node, "192.0.2.21/32");
    let agent = Agent::start(
        dir.path().join("a"),
        &node,
        &NodeSpec {
            name: "node-a",
            address: "192.0.2.21/24",
            pod_cidr: "10.244.9.0/28",
            asn: 64512,
            peers: vec![],
        },
    );
    let sock = agent.socket();
    let c1 = Netns::new(format!("{tg}-c1"));
    let c2 = Netns::new(format!("{tg}-c2"));
    let conf = |v: &str| json!({"cniVersion": v, "name": "tortie", "type": "tortie"});

    // VERSION: the lib's answer, byte for byte; STATUS: nothing, exit 0.
    let version = format!("{}\n", tortie_agent::cni::version_result());
    let (exit, out) = post(&sock, &body(&[("CNI_COMMAND", "VERSION")], b""));
    assert_eq!((exit, out), (0, version));
    assert_eq!(cni(&sock, "STATUS", &[], &conf("1.1.0")), (0, Value::Null));

    // ADD, then the same ADD (idempotent) answered in every cniVersion.
    let p1 = c1.path();
    let env1 = [
        ("CNI_CONTAINERID", "cid1"),
        ("CNI_NETNS", p1.as_str()),
        ("CNI_IFNAME", "eth0"),
    ];
    let (exit, add) = cni(&sock, "ADD", &env1, &conf("1.1.0"));
    assert_eq!(exit, 0, "ADD: {add}\n{}", agent.log());
    let addr = add["ips"][0]["address"].as_str().unwrap_or_default();
    assert!(
        addr.starts_with("10.244.9.") && addr.ends_with("/32"),
        "{add}"
    );
    assert_eq!(add["interfaces"][1]["sandbox"], p1.as_str());
    assert!(add["interfaces"][1]["mtu"].is_u64(), "{add}");
    assert!(sh(&["ip", "-n", &c1.name, "addr", "show", "eth0"]).contains(addr));
    for v in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
        let (exit, r) = cni(&sock, "ADD", &env1, &conf(v));
        assert_eq!(exit, 0, "{v}: {r}");
        assert_eq!(r["cniVersion"], v);
        assert_eq!(r["ips"][0]["address"], addr, "{v}");
        assert_eq!(
            r["ips"][0].get("version").is_some(),
            v.starts_with("0."),
            "{v}: {r}"
        );
        assert_eq!(
            r["interfaces"][1].get("mtu").is_some(),
            v == "1.1.0",
            "{v}: {r}"
        );
    }

    // CHECK with the ADD result as prevResult; with another address: 102.
    let mut check = conf("1.1.0");
    check["prevResult"] = add.clone();
    assert_eq!(cni(&sock, "CHECK", &env1, &check), (0, Value::Null));
    check["prevResult"]["ips"][0]["address"] = json!("10.99.0.1/32");
    let (exit, v) = cni(&sock, "CHECK", &env1, &check);
    assert_eq!((exit, &v["code"]), (1, &json!(102)), "{v}");

    // GC keeping cid1 removes cid2.
    let p2 = c2.path();
    let env2 = [
        ("CNI_CONTAINERID", "cid2"),
        ("CNI_NETNS", p2.as_str()),
        ("CNI_IFNAME", "eth0"),
    ];
    let (exit, add2) = cni(&sock, "ADD", &env2, &conf("1.0.0"));
    assert_eq!(exit, 0, "{add2}");
    let mut gc = conf("1.1.0");
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "cid1", "ifname": "eth0"}]);
    assert_eq!(cni(&sock, "GC", &[], &gc), (0, Value::Null));
    assert!(!sh(&["ip", "-n", &c2.name, "link"]).contains("eth0"));
    assert!(sh(&["ip", "-n", &c1.name, "link"]).contains("eth0"));

    // DEL of a container the agent never saw succeeds; DEL of cid1 removes it.
    let unknown = [("CNI_CONTAINERID", "nobody"), ("CNI_IFNAME", "eth0")];
    assert_eq!(
        cni(&sock, "DEL", &unknown, &conf("1.1.0")),
        (0, Value::Null)
    );
    assert_eq!(cni(&sock, "DEL", &env1, &conf("0.4.0")), (0, Value::Null));
    assert!(!sh(&["ip", "-n", &c1.name, "link"]).contains("eth0"));
    assert_eq!(agent.status_json()["containers"], 0);

    // Bad requests: a clear CNI error (in 1.1.0's format), nothing changed.
    let (exit, out) = post(&sock, b"CNI_COMMAND=ADD\0CNI_IFNAME=eth0");
    let v: Value = serde_json::from_str(&out).expect("error JSON");
    assert_eq!(
        (exit, &v["code"], &v["cniVersion"]),
        (1, &json!(5), &json!("1.1.0")),
        "{v}"
    );
    let add_env = [[("CNI_COMMAND", "ADD")].as_slice(), &env1].concat();
    let (exit, out) = post(&sock, &body(&add_env, b"{not json"));
    let v: Value = serde_json::from_str(&out).expect("error JSON");
    assert_eq!((exit, &v["code"]), (1, &json!(6)), "{v}");
    assert_eq!(agent.status_json()["ipam"]["allocated"], 0);
}
