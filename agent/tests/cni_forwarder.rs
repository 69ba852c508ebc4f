//! The plugin as a transport, each build ([`plugins`]), without an agent:
//! what it sends to `POST /v1/cni` (a unix socket server in the test stands
//! in for the agent and checks the request byte for byte), what it makes of
//! the answers (exit code and stdout copied; a non-CNI answer, a malformed
//! one), and the errors it writes itself: VERSION with no agent, agent down
//! (11; STATUS 50), a socket path too long (7), a config that is not JSON
//! (6) or larger than 1 MiB (5). Needs no root.

mod cni_plugins;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;

use cni_plugins::{Plugin, plugins};
use serde_json::{Value, json};

fn stdout_json(p: &Plugin, out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: not JSON ({e}): {:?}",
            p.name,
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Serves one connection on `listener`: reads the request to its
/// Content-Length, writes `answer`, closes; returns the request.
fn serve_one(listener: &UnixListener, answer: &[u8]) -> Vec<u8> {
    let (mut s, _) = listener.accept().expect("accept");
    let mut req = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let n = s.read(&mut chunk).expect("reading the request");
        req.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&req);
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("a Content-Length");
            if req.len() >= end + 4 + len {
                break;
            }
        }
        assert!(n > 0, "the plugin closed before its body ended");
    }
    s.write_all(answer).expect("answering");
    req
}

/// Runs `p` against a server answering `answer`; the request and the output.
fn exchange(
    p: &Plugin,
    dir: &Path,
    env: &[(&str, &str)],
    conf: &[u8],
    answer: &'static [u8],
) -> (Vec<u8>, std::process::Output) {
    let sock = dir.join("agent.sock");
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).expect("bind");
    std::thread::scope(|s| {
        let server = s.spawn(|| serve_one(&listener, answer));
        let out = p.run("ADD", env, conf);
        if !server.is_finished() {
            // The plugin never connected: unblock the server's accept (it
            // then fails on the empty request).
            let _ = std::os::unix::net::UnixStream::connect(&sock);
        }
        let req = server.join().unwrap_or_else(|_| {
            panic!(
                "{}: no request served: {}",
                p.name,
                String::from_utf8_lossy(&out.stdout)
            )
        });
        (req, out)
    })
}

fn conf_with(sock: &Path) -> Vec<u8> {
    // A "socket" nested in args/runtimeConfig must not be taken.
    json!({
        "cniVersion": "1.0.0", "name": "n", "type": "tortie",
        "args": {"socket": "/nonexistent/a.sock"},
        "runtimeConfig": {"x": [{"socket": "/nonexistent/b.sock"}]},
        "socket": sock,
    })
    .to_string()
    .into_bytes()
}

#[test]
fn forwards_the_protocol_and_copies_the_answer() {
    let dir = tempfile::Builder::new()
        .prefix("tortie-cnifwd-")
        .tempdir()
        .expect("tempdir");
    for p in &plugins() {
        let conf = conf_with(&dir.path().join("agent.sock"));
        let env = [
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/run/netns/x y"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_ARGS", "IP=10.0.0.1;K=v=w"),
            ("NOT_CNI", "secret"),
            ("PATH", "/bin"),
        ];
        let (req, out) = exchange(
            p,
            dir.path(),
            &env,
            &conf,
            b"HTTP/1.1 200 OK\r\ncontent-length: 14\r\n\r\n42\n{\"x\":\"\xc3\xa9\"}\nIGNORED",
        );
        // The answer: exit code and stdout, byte for byte.
        assert_eq!(out.status.code(), Some(42), "{}", p.name);
        assert_eq!(out.stdout, b"{\"x\":\"\xc3\xa9\"}\n", "{}", p.name);
        // The request: head, the CNI_* entries (std's Command sorts them),
        // the empty entry, then stdin unchanged.
        let end = req.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
        let (head, body) = req.split_at(end);
        assert_eq!(
            String::from_utf8_lossy(head),
            format!(
                "POST /v1/cni HTTP/1.1\r\nHost: tortie\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            ),
            "{}",
            p.name
        );
        let mut want = Vec::new();
        for e in [
            "CNI_ARGS=IP=10.0.0.1;K=v=w",
            "CNI_COMMAND=ADD",
            "CNI_CONTAINERID=c1",
            "CNI_IFNAME=eth0",
            "CNI_NETNS=/run/netns/x y",
            "CNI_PATH=/usr/lib/cni",
        ] {
            want.extend_from_slice(e.as_bytes());
            want.push(0);
        }
        want.push(0);
        want.extend_from_slice(&conf);
        assert_eq!(
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(&want),
            "{}",
            p.name
        );
    }
}

#[test]
fn non_cni_and_malformed_answers() {
    let dir = tempfile::Builder::new()
        .prefix("tortie-cnifwd-")
        .tempdir()
        .expect("tempdir");
    let cases: [(&[u8], u64, &str); 6] = [
        (
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
            103,
            "upgrade the agent",
        ),
        (
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
            11,
            "not ready",
        ),
        (
            b"HTTP/1.1 500 Internal\r\nContent-Length: 4\r\n\r\n{\"\"}",
            103,
            "refused",
        ),
        (b"hello, not HTTP", 5, "malformed"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
            5,
            "malformed",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n0\n",
            5,
            "malformed",
        ),
    ];
    for p in &plugins() {
        let sock = dir.path().join("agent.sock");
        for (answer, code, text) in cases {
            let (_, out) = exchange(p, dir.path(), &[], &conf_with(&sock), answer);
            assert_eq!(out.status.code(), Some(1), "{}", p.name);
            let v = stdout_json(p, &out);
            assert_eq!(v["code"], code, "{}: {v}", p.name);
            assert_eq!(v["cniVersion"], "1.0.0", "{}: {v}", p.name);
            assert!(
                v["msg"].as_str().unwrap_or_default().contains(text),
                "{}: {v}",
                p.name
            );
        }
    }
}

#[test]
fn errors_without_an_agent() {
    let dir = tempfile::Builder::new()
        .prefix("tortie-cnifwd-")
        .tempdir()
        .expect("tempdir");
    let gone = dir.path().join("gone.sock");
    let conf = json!({"cniVersion": "0.4.0", "name": "n", "type": "tortie", "socket": gone});
    // A socket file nobody listens on any more.
    let dead = dir.path().join("dead.sock");
    drop(UnixListener::bind(&dead).expect("bind"));
    let dead_conf = json!({"cniVersion": "1.1.0", "socket": dead});
    let long = format!("/tmp/{}", "x".repeat(120));
    for p in &plugins() {
        // VERSION: answered by the plugin itself, the library's bytes.
        let out = p.run("VERSION", &[], br#"{"cniVersion":"0.3.1"}"#);
        assert!(out.status.success(), "{}", p.name);
        assert_eq!(
            out.stdout,
            format!("{}\n", tortie_agent::cni::version_result()).as_bytes(),
            "{}",
            p.name
        );
        // Agent down: 11 (STATUS: 50), the socket and errno in the details.
        let add_env = [("CNI_CONTAINERID", "c"), ("CNI_IFNAME", "eth0")];
        for (command, c, want_code) in [
            ("ADD", &conf, 11),
            ("STATUS", &conf, 50),
            ("DEL", &dead_conf, 11),
        ] {
            let out = p.run(command, &add_env, c.to_string().as_bytes());
            assert_eq!(out.status.code(), Some(1), "{}", p.name);
            let v = stdout_json(p, &out);
            assert_eq!(v["code"], want_code, "{} {command}: {v}", p.name);
            assert_eq!(v["cniVersion"], c["cniVersion"], "{}: {v}", p.name);
            let details = v["details"].as_str().unwrap_or_default();
            let sock = c["socket"].as_str().unwrap_or_default();
            assert!(details.contains(sock), "{}: {v}", p.name);
            assert!(details.contains("errno"), "{}: {v}", p.name);
        }
        // The config's errors the plugin sees first.
        let too_big = format!(r#"{{"cniVersion":"1.0.0","x":"{}"}}"#, "y".repeat(1 << 20));
        let unsupported = json!({"cniVersion": "9.9.9", "socket": long});
        for (conf, want_code, version) in [
            (json!({"socket": long}).to_string(), 7, "1.1.0"),
            (unsupported.to_string(), 7, "1.1.0"),
            (
                json!({"cniVersion": "0.3.0", "socket": ""}).to_string(),
                7,
                "0.3.0",
            ),
            (
                json!({"cniVersion": "1.0.0", "socket": 5}).to_string(),
                6,
                "1.0.0",
            ),
            (r#"{"cniVersion":"1.0.0""#.to_string(), 6, "1.1.0"),
            (String::new(), 6, "1.1.0"),
            // Cut at 1 MiB, the config is not read as JSON: the latest version.
            (too_big, 5, "1.1.0"),
        ] {
            let out = p.run("ADD", &add_env, conf.as_bytes());
            assert_eq!(out.status.code(), Some(1), "{}", p.name);
            let v = stdout_json(p, &out);
            assert_eq!(v["code"], want_code, "{}: {v}", p.name);
            assert_eq!(v["cniVersion"], version, "{}: {v}", p.name);
        }
    }
}
