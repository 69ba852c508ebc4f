//! `tortie`: the node agent (`tortie run`) and its CLI (`check`, `status`,
//! `routes`, `attach`, `detach`, `completions`). The CLI subcommands are thin
//! clients of the agent's local API; see `docs/cli.md`.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use tortie_agent::api::client::Client;
use tortie_agent::api::{AttachRequest, DetachRequest};
use tortie_agent::cli::{self, Cli, Cmd, Output};
use tortie_agent::{daemon, logging};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "tortie", &mut script);
            match out(&String::from_utf8_lossy(&script)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tortie: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Check { config } => match daemon::load_or_report(&config) {
            Ok(cfg) => {
                if daemon::check_node_address(&config, &cfg, false)
                    && cfg
                        .node
                        .addresses
                        .iter()
                        .all(|a| daemon::address_is_local(a.ip()) == Ok(true))
                    && let Some(problem) = daemon::dataplane::check_mtu(&cfg)
                {
                    eprintln!("{}: error: {problem}", config.display());
                    return ExitCode::from(daemon::EXIT_INVALID_CONFIG);
                }
                let _ = out(&format!("{}: valid\n", config.display()));
                ExitCode::SUCCESS
            }
            Err(code) => ExitCode::from(code),
        },
        Cmd::Run {
            config,
            log_format,
            no_kernel,
        } => {
            // Before any thread exists (the runtime's, the logger's).
            daemon::memory::tune();
            logging::init(log_format);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("tortie: starting the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            // The agent's event loop runs as a task on the runtime's workers,
            // beside the speaker's tasks, not on this thread: a route event
            // then wakes a task on the same worker, not a parked thread (a
            // futex wake and a context switch per event batch, most of the
            // control plane's kernel time when the agent has one CPU).
            let agent = runtime.spawn(daemon::run(
                config,
                daemon::RunOptions {
                    install_learned: !no_kernel,
                },
            ));
            let code = match runtime.block_on(agent) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("tortie: the agent task failed: {e}");
                    1
                }
            };
            // Tasks still parked (netlink threads, idle connections) must not
            // delay the exit: everything worth keeping is on disk or in the kernel.
            runtime.shutdown_timeout(std::time::Duration::from_millis(500));
            ExitCode::from(code)
        }
        other => client_command(other, cli.socket, cli.output),
    }
}

/// Writes to stdout; a closed pipe (`tortie status | head -1`) is not an error.
fn out(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("writing to stdout: {e}")),
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(v).map_err(|e| format!("encoding JSON: {e}"))?;
    out(&format!("{text}\n"))
}

fn client_command(cmd: Cmd, socket: std::path::PathBuf, output: Output) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tortie: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<(), String> = runtime.block_on(async {
        match cmd {
            Cmd::Status { peer: None } => {
                let s = Client::new(socket)
                    .status()
                    .await
                    .map_err(|e| e.to_string())?;
                match output {
                    Output::Json => print_json(&s),
                    Output::Table => out(&cli::render_status(&s, cli::now_unix())),
                }
            }
            Cmd::Status { peer: Some(key) } => {
                let s = Client::new(socket)
                    .status()
                    .await
                    .map_err(|e| e.to_string())?;
                let p = cli::find_peer(&s.peers, &key)?;
                match output {
                    Output::Json => print_json(p),
                    Output::Table => out(&cli::render_peer_detail(p, cli::now_unix())),
                }
            }
            Cmd::Routes { prefix, filtered } => {
                let c = Client::new(socket);
                let r = match (prefix, filtered) {
                    (Some(p), _) => c.route(&p).await,
                    (None, true) => c.filtered_routes().await,
                    (None, false) => c.routes().await,
                }
                .map_err(|e| e.to_string())?;
                match output {
                    Output::Json => print_json(&r),
                    Output::Table => out(&cli::render_routes(&r)),
                }
            }
            Cmd::Attach {
                netns,
                id,
                ifname,
                ip,
            } => {
                let req = AttachRequest {
                    id,
                    netns,
                    ifname: Some(ifname),
                    ip,
                };
                let a = Client::new(socket)
                    .attach(&req)
                    .await
                    .map_err(|e| e.to_string())?;
                match output {
                    Output::Json => print_json(&a),
                    Output::Table => out(&cli::render_attach(&a)),
                }
            }
            Cmd::Detach { id } => {
                let d = Client::new(socket)
                    .detach(&DetachRequest { id })
                    .await
                    .map_err(|e| e.to_string())?;
                let released = if d.released_ips.is_empty() {
                    d.released_ip.into_iter().collect()
                } else {
                    d.released_ips
                };
                if released.is_empty() {
                    out(&format!("{}: nothing was attached\n", d.id))
                } else {
                    out(&format!("{}: released {}\n", d.id, released.join(", ")))
                }
            }
            Cmd::Run { .. } | Cmd::Check { .. } | Cmd::Completions { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tortie: {e}");
            ExitCode::FAILURE
        }
    }
}
