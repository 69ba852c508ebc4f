//! The builds of `tortie-cni` the CNI tests run, and how a runtime execs
//! one: cargo's std build (`CARGO_BIN_EXE_tortie-cni`) and the no-libc build
//! (`cargo build --profile cni -p tortie-agent --bin tortie-cni --features
//! nolibc --locked`, which lab/test runs first): `TORTIE_CNI_NOLIBC_BIN`, else
//! `<target dir>/cni/tortie-cni`. Under `CI`, or when that variable is set
//! (lab/test sets it), a missing or stale no-libc build fails the test;
//! elsewhere it is skipped with a note.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// One build of the plugin.
pub struct Plugin {
    pub name: &'static str,
    pub path: PathBuf,
}

/// Both builds on x86_64 (the no-libc one exists only there), std first.
pub fn plugins() -> Vec<Plugin> {
    let std_build = PathBuf::from(env!("CARGO_BIN_EXE_tortie-cni"));
    let mut all = vec![Plugin {
        name: "tortie-cni (std)",
        path: std_build.clone(),
    }];
    if cfg!(target_arch = "x86_64") {
        match nolibc_build(&std_build) {
            Ok(path) => all.push(Plugin {
                name: "tortie-cni (no libc)",
                path,
            }),
            Err(why)
                if std::env::var_os("CI").is_some()
                    || std::env::var_os("TORTIE_CNI_NOLIBC_BIN").is_some() =>
            {
                panic!("{why}")
            }
            Err(why) => eprintln!("NOTE: testing the std plugin only: {why}"),
        }
    }
    all
}

fn nolibc_build(std_build: &Path) -> Result<PathBuf, String> {
    const BUILD: &str =
        "cargo build --profile cni -p tortie-agent --bin tortie-cni --features nolibc --locked";
    let path = match std::env::var_os("TORTIE_CNI_NOLIBC_BIN") {
        Some(p) => PathBuf::from(p),
        // <target>/debug/tortie-cni -> <target>/cni/tortie-cni
        None => std_build
            .parent()
            .and_then(Path::parent)
            .map(|t| t.join("cni/tortie-cni"))
            .ok_or("no target directory")?,
    };
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .map_err(|e| {
            format!(
                "no-libc plugin {}: {e} (build it: `{BUILD}`)",
                path.display()
            )
        })?;
    // Older than its sources: a test of it would test old code.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin/tortie-cni");
    for entry in std::fs::read_dir(&src).map_err(|e| format!("{}: {e}", src.display()))? {
        let changed = entry
            .and_then(|e| e.metadata())
            .and_then(|m| m.modified())
            .map_err(|e| e.to_string())?;
        if changed > built {
            return Err(format!(
                "no-libc plugin {} is older than its sources: `{BUILD}`",
                path.display()
            ));
        }
    }
    Ok(path)
}

impl Plugin {
    /// Runs the plugin as a runtime does: a clean environment with
    /// `CNI_COMMAND`, `CNI_PATH` and `env`, `stdin` written to it; its output.
    pub fn run(&self, command: &str, env: &[(&str, &str)], stdin: &[u8]) -> Output {
        let mut cmd = Command::new(&self.path);
        cmd.env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_PATH", "/usr/lib/cni")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        // ETXTBSY: another test thread's fork may briefly hold a binary open
        // for writing (a known Linux race with parallel tests); retry.
        let mut attempt = 0;
        let mut child = loop {
            match cmd.spawn() {
                Ok(c) => break c,
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempt < 20 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("starting {}: {e}", self.name),
            }
        };
        if let Some(mut s) = child.stdin.take() {
            // A plugin may exit before reading (it should not; a runtime
            // ignores EPIPE too).
            if let Err(e) = s.write_all(stdin) {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "stdin: {e}");
            }
        }
        child.wait_with_output().expect("waiting for the plugin")
    }
}
