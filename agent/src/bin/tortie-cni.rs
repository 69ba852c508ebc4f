//! `tortie-cni`: the CNI plugin. The runtime sets `CNI_*` variables and writes
//! the network config on stdin; we forward to the tortie agent's API and print
//! the spec's result (or error JSON) on stdout. Logic lives in `tortie_agent::cni`.
//!
//! The runtime execs this binary for every ADD/DEL/CHECK, so its start-up
//! is on the attach path: it talks to the agent with the blocking client
//! (no async runtime, no threads).

use std::io::{Read, Write};
use std::process::ExitCode;

use tortie_agent::cni::{self, Command, LATEST};

fn main() -> ExitCode {
    let (out, ok) = invoke();
    let mut stdout = std::io::stdout().lock();
    if let Some(text) = out {
        let _ = writeln!(stdout, "{text}");
    }
    let _ = stdout.flush();
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Returns what to print and whether it is a success.
fn invoke() -> (Option<String>, bool) {
    // Read stdin first, even when the environment turns out to be invalid,
    // so the runtime writing the config never hits a closed pipe.
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin);
    let env = match cni::parse_env(|k| std::env::var(k).ok()) {
        Ok(e) => e,
        Err(e) => return (Some(e.to_json(LATEST)), false),
    };
    if let Err(e) = read {
        let err = cni::CniError::new(
            cni::code::IO_FAILURE,
            "reading the network config from stdin failed",
        );
        return (Some(err.with_details(e.to_string()).to_json(LATEST)), false);
    }
    if env.command == Command::Version {
        // VERSION answers whatever the caller's version is.
        return (Some(cni::version_result().to_string()), true);
    }
    let conf = match cni::parse_netconf(&stdin) {
        Ok(c) => c,
        Err(e) => return (Some(e.to_json(LATEST)), false),
    };
    match cni::run(&env, &conf) {
        Ok(out) => (out, true),
        Err(e) => (Some(e.to_json(&conf.cni_version)), false),
    }
}
