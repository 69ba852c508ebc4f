//! `tortie-lab`: plays containerlab topology files with network namespaces.
//!
//! `up FILE`, `down FILE`, `exec FILE NODE[/CONTAINER] -- CMD…`, `status FILE`.
//! Work dirs live under `--root` (default `/run/tortie-lab`, env
//! `TORTIE_LAB_DIR`); see docs/lab.md.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tortie_lab::runner::{Lab, default_root};
use tortie_lab::topology::Topology;

#[derive(Parser)]
#[command(
    name = "tortie-lab",
    version,
    about = "Play containerlab topologies with network namespaces (no Docker)"
)]
struct Cli {
    /// Work-dir root (state file, configs, logs per lab).
    #[arg(long, global = true, env = "TORTIE_LAB_DIR")]
    root: Option<PathBuf>,
    /// Override the lab name from the file (like `containerlab deploy --name`).
    #[arg(long, global = true)]
    name: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the lab: namespaces, veths, exec lines, daemons, containers.
    Up {
        file: PathBuf,
        /// Leave a partially built lab in place on failure (default: tear it down).
        #[arg(long)]
        keep_on_error: bool,
    },
    /// Remove everything `up` made (a no-op when the lab is not up).
    Down { file: PathBuf },
    /// Run a command in a node (or `node/container`).
    Exec {
        file: PathBuf,
        node: String,
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// Show nodes, daemons, containers and each node's BGP view.
    Status { file: PathBuf },
    /// SIGKILL a node's daemon (a crash), e.g. `kill FILE n1 tortie`.
    Kill {
        file: PathBuf,
        node: String,
        daemon: String,
    },
    /// Start a node's daemon again with its recorded command line.
    Restart {
        file: PathBuf,
        node: String,
        daemon: String,
    },
}

fn open(
    cli_root: &Option<PathBuf>,
    name: &Option<String>,
    file: &std::path::Path,
) -> anyhow::Result<Lab> {
    let topo = Topology::load(file, name.as_deref())?;
    for w in &topo.warnings {
        eprintln!("warning: {}: {w}", file.display());
    }
    let root = cli_root.clone().unwrap_or_else(default_root);
    Ok(Lab::open(topo, &root)?)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.cmd {
        Cmd::Up {
            file,
            keep_on_error,
        } => {
            let mut lab = open(&cli.root, &cli.name, file)?;
            if lab.is_up() {
                // Never tear down a lab this invocation did not build.
                bail!(
                    "lab {} is already up (state in {}); run down first",
                    lab.topo.name,
                    lab.workdir.display()
                );
            }
            if let Err(e) = lab.up() {
                if !keep_on_error {
                    eprintln!("up failed, tearing down: {e}");
                    lab.down().context("tearing down after a failed up")?;
                }
                return Err(e).context(format!("bringing up {}", file.display()));
            }
            println!(
                "lab {} is up (work dir {})",
                lab.topo.name,
                lab.workdir.display()
            );
            for c in &lab.state.containers {
                let addresses: Vec<&str> = c.addresses().collect();
                println!(
                    "  {}/{}  {}",
                    c.node,
                    c.id,
                    if addresses.is_empty() {
                        "-".to_string()
                    } else {
                        addresses.join(" ")
                    }
                );
            }
        }
        Cmd::Down { file } => {
            let mut lab = open(&cli.root, &cli.name, file)?;
            if !lab.is_up() {
                println!("lab {} is not up: nothing to do", lab.topo.name);
                return Ok(());
            }
            lab.down()?;
            println!("lab {} removed", lab.topo.name);
        }
        Cmd::Exec { file, node, cmd } => {
            let lab = open(&cli.root, &cli.name, file)?;
            if !lab.is_up() {
                bail!("lab {} is not up", lab.topo.name);
            }
            let status = lab
                .command(node, cmd)?
                .status()
                .with_context(|| format!("running {cmd:?} in {node}"))?;
            std::process::exit(status.code().unwrap_or(1));
        }
        Cmd::Status { file } => {
            let lab = open(&cli.root, &cli.name, file)?;
            print!("{}", lab.status());
        }
        Cmd::Kill { file, node, daemon } => {
            let lab = open(&cli.root, &cli.name, file)?;
            if !lab.is_up() {
                bail!("lab {} is not up", lab.topo.name);
            }
            lab.kill_daemon(node, daemon)?;
            println!("{node}: {daemon} killed (SIGKILL)");
        }
        Cmd::Restart { file, node, daemon } => {
            let mut lab = open(&cli.root, &cli.name, file)?;
            if !lab.is_up() {
                bail!("lab {} is not up", lab.topo.name);
            }
            lab.restart_daemon(node, daemon)?;
            println!("{node}: {daemon} started again");
        }
    }
    Ok(())
}
