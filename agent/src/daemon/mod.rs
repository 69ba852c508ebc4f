//! `tortie run`: start-up order, the event loop and signals (DESIGN.md §5).
//!
//! Start-up: load the config (invalid, or `node.address` on no interface →
//! print, exit 2, touch nothing) → bind
//! the API socket (refuse to run twice) and the metrics listener → route table
//! (adopts our kernel routes) → IPAM open → containers reconciled with the
//! veths found (`reconcile_containers`: complete ones kept, half-made ones
//! removed, then IPAM frees what nothing carries) →
//! blackhole for the block, tunl0 or the VXLAN devices and the MTU
//! ([`dataplane`]), the natOutgoing table
//! ([`nat`]) → BGP speaker with
//! graceful restart (forwarding preserved when routes were adopted) →
//! originate the block and container /32s ([`registry`]) → serve API and
//! metrics → consume
//! speaker events. SIGTERM/SIGINT: graceful speaker shutdown, containers and
//! kernel routes left in place, exit 0. SIGHUP: reload; peers that changed are
//! reset (a change of only a peer's name is held back, see
//! [`hold_back_renames`]), `dataplane.nat_outgoing`/`cluster_cidrs` applied
//! live ([`nat::reload`]), nothing else is touched.

pub mod agent;
pub mod batch;
pub mod containers;
pub mod convert;
pub mod dataplane;
pub mod kernel;
pub mod links;
pub mod memory;
pub mod nat;
pub mod refuse;
pub mod registry;
#[cfg(test)]
mod replay;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tortie_config::Config;
use tortie_routes::{KernelRoute, RouteTable};

use crate::ipam::Ipam;
use agent::Agent;

/// Exit code for an invalid configuration (same as `tortie check`).
pub const EXIT_INVALID_CONFIG: u8 = 2;

/// Main table (RT_TABLE_MAIN).
const MAIN_TABLE: u32 = 254;

/// Loads the config; prints every problem and returns the exit code on error.
pub fn load_or_report(path: &Path) -> Result<Config, u8> {
    tortie_config::load(path).map_err(|e| {
        eprintln!("{e}");
        eprintln!(
            "{}: {} problem(s); nothing was changed",
            path.display(),
            e.problems.len()
        );
        EXIT_INVALID_CONFIG
    })
}

/// Whether `ip` is an address of one of this node's interfaces (getifaddrs,
/// in the network namespace the process runs in).
pub fn address_is_local(ip: std::net::IpAddr) -> Result<bool, String> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|e| format!("listing addresses: {e}"))?;
    Ok(addrs.filter_map(|a| a.address).any(|a| {
        let v4 = a.as_sockaddr_in().map(|s| std::net::IpAddr::V4(s.ip()));
        let v6 = a.as_sockaddr_in6().map(|s| std::net::IpAddr::V6(s.ip()));
        v4.or(v6) == Some(ip)
    }))
}

/// Every `node.address` must be on an interface of this node: the BGP
/// sessions, the advertised next hops and the containers' routes all depend
/// on them. For `tortie check` (`fatal` false) a hint, as the file may be for
/// another node; for `tortie run` an error. Returns false when `run` must stop.
pub fn check_node_address(path: &Path, cfg: &Config, fatal: bool) -> bool {
    let mut ok = true;
    for address in cfg.node.addresses.iter() {
        let ip = address.ip();
        let problem = match address_is_local(ip) {
            Ok(true) => continue,
            Ok(false) => format!("node.address {ip} is on no interface of this node"),
            Err(e) => format!("cannot tell whether node.address {ip} is on this node: {e}"),
        };
        if fatal {
            eprintln!(
                "{}: error: {problem}\n  hint: add it to the node's uplink (ip addr add {address} dev IFACE) or fix node.address",
                path.display(),
            );
            ok = false;
        } else {
            eprintln!(
                "{}: hint: {problem}; `tortie run` refuses to start until it is (fine when checking another node's file)",
                path.display()
            );
        }
    }
    ok
}

/// The dual-stack listener `[::]` (the default `bgp.listen_address`) needs
/// IPv6 in the kernel; with IPv6 disabled (`ipv6.disable=1`: no AF_INET6
/// sockets) the speaker listens on 0.0.0.0 instead, and says so.
fn dual_stack_fallback(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    let any6 = std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);
    if listen.ip() != any6 {
        return listen;
    }
    let probe = std::net::UdpSocket::bind((any6, 0)).map(drop);
    if let Err(e) = &probe {
        tracing::warn!(error = %e, "IPv6 is disabled in this kernel: listening for BGP on IPv4 only (0.0.0.0)");
    }
    listen_for(listen, probe.is_ok())
}

/// The listener to use: `[::]` becomes `0.0.0.0` (same port) when the
/// kernel has no IPv6; any other address stays.
fn listen_for(listen: std::net::SocketAddr, ipv6: bool) -> std::net::SocketAddr {
    match listen.ip() {
        std::net::IpAddr::V6(a) if a.is_unspecified() && !ipv6 => {
            std::net::SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), listen.port())
        }
        _ => listen,
    }
}

/// How `tortie run` was asked to behave beyond its configuration file.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Install routes learned over BGP into the kernel (`--no-kernel` clears it).
    pub install_learned: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            install_learned: true,
        }
    }
}

/// Runs the agent until SIGTERM/SIGINT. Returns the process exit code.
pub async fn run(config_path: PathBuf, opts: RunOptions) -> u8 {
    let cfg = match load_or_report(&config_path) {
        Ok(c) => Arc::new(c),
        Err(code) => return code,
    };
    if !check_node_address(&config_path, &cfg, true) {
        return EXIT_INVALID_CONFIG;
    }
    match run_with(config_path, cfg, opts).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("tortie: {e:#}");
            1
        }
    }
}

async fn run_with(config_path: PathBuf, cfg: Arc<Config>, opts: RunOptions) -> anyhow::Result<()> {
    let blocks: Vec<String> = cfg.node.pod_cidrs.iter().map(|b| b.to_string()).collect();
    tracing::info!(node = %cfg.node.name, asn = cfg.node.asn, blocks = %blocks.join(", "), "tortie starting");
    crate::httpd::raise_nofile_limit();
    // Fail fast, before touching the kernel, when another agent is running.
    let api_listener = crate::api::server::bind(&cfg.api.socket).context("local API socket")?;
    let metrics_listener = match cfg.metrics.listen {
        Some(addr) => Some(
            crate::metrics::bind(addr)
                .await
                .with_context(|| format!("metrics listener on {addr}"))?,
        ),
        None => None,
    };

    // Dataplane: adopt what a previous run left, before anything changes.
    let proto = cfg.dataplane.route_protocol;
    // Held until we return: dropping it ends the route table's thread.
    let options = tortie_routes::TableOptions {
        nexthop_objects: cfg.dataplane.nexthop_objects,
    };
    let (table, _kernel_thread) = start_route_table(proto, MAIN_TABLE, options)
        .await
        .context("starting the route table")?;
    let adopted = table.stats().adopted;
    tracing::info!(
        adopted,
        "kernel routes of ours found at start-up (kept until BGP converges)"
    );

    let mut ipam = Ipam::open(&cfg.state.dir, &cfg.node.pod_cidrs, &[])
        .with_context(|| format!("opening IPAM state in {}", cfg.state.dir.display()))?;
    let veths = kernel::KernelVeths::new().context("preparing container attaches")?;
    let registry = reconcile_containers(&cfg, &mut ipam, &veths).await?;

    for block in &cfg.node.pod_cidrs {
        table.set(*block, KernelRoute::Blackhole).await;
    }
    let mtu = dataplane::setup(&cfg, &mut ipam)
        .await
        .context("encapsulation devices")?;
    // Held until we return: dropping it stops the guard (the table stays).
    let nat = nat::start(&cfg).context("nat_outgoing")?;

    let preserved = convert::preserved_families(adopted, table.stats().adopted_ipv6);
    let mut speaker_cfg = convert::speaker_config(&cfg, preserved, &links::Links::read());
    speaker_cfg.listen = speaker_cfg.listen.map(dual_stack_fallback);
    // --no-kernel: nothing here would use a learned route (see `batch`).
    if !opts.install_learned {
        speaker_cfg.best_path_feed = tortie_bgp::BestPathFeed::Off;
    }
    let (speaker, mut events) = tortie_bgp::Speaker::start(speaker_cfg)
        .await
        .context("starting the BGP speaker")?;
    let mut express = speaker
        .express_events()
        .await
        .context("starting the BGP speaker")?;
    for block in convert::block_prefixes(&cfg) {
        speaker
            .originate_with(block, convert::origin_attributes(&cfg, true))
            .await
            .with_context(|| format!("originating the block {block}"))?;
    }
    let mut agent = Agent::new(cfg.clone(), speaker, table, veths, ipam, mtu, registry);
    if !opts.install_learned {
        tracing::warn!("--no-kernel: routes learned over BGP are not installed into the kernel");
        agent.install_learned = false;
    }
    let agent = Arc::new(agent);
    let announce: Vec<(std::net::IpAddr, String)> = agent
        .registry()
        .iter()
        .flat_map(|c| c.ips().into_iter().map(|ip| (ip, c.host_ifname.clone())))
        .collect();
    for (ip, dev) in &announce {
        if let Err(e) = agent.announce(*ip, dev).await {
            tracing::warn!(host_ifname = %dev, error = %e, "announcing a container failed");
        }
    }

    let api_task = tokio::spawn(crate::api::server::serve(api_listener, agent.clone()));
    let metrics_task =
        metrics_listener.map(|l| tokio::spawn(crate::metrics::serve(l, agent.clone())));
    let metrics = cfg
        .metrics
        .listen
        .map_or_else(|| "off".to_string(), |a| a.to_string());
    tracing::info!(socket = %cfg.api.socket.display(), %metrics, "tortie running");

    // Fallback for the sweep: the speaker reports Converged itself (End-of-RIB or
    // its timer); never keep adopted routes longer than the restart time.
    let fallback = {
        let agent = agent.clone();
        let wait = Duration::from_secs(u64::from(cfg.bgp.restart_time.max(1)) + 5);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            agent.mark_converged("restart timer expired").await;
        })
    };

    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut failure = None;
    let mut learned = batch::Learned::default();
    let mut taken = Vec::with_capacity(batch::MAX_BATCH);
    let mut trimmer = memory::Trimmer::default();
    let mut applying: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>> =
        None;
    // The next batch, converted while the current one is queued.
    let mut next: Option<(u64, Vec<batch::Step<tortie_routes::SharedRoute>>)> = None;
    loop {
        // Take a batch while none is waiting to be queued: at most one being
        // queued on the route table (which waits while the table's queue is
        // full) and one ready behind it. A longer backlog stays in the
        // speaker's outbox (the one coalescing stage), which keeps one
        // compact entry per changed prefix and reports its latest best path
        // when we take it (batch.rs).
        tokio::select! {
            // A change that would wait behind the backlog above: at once,
            // even while a batch waits (docs/design.md, "Express changes").
            Some(ev) = express.recv() => agent.take_express(&mut learned, ev),
            n = events.recv_many(&mut taken, batch::MAX_BATCH), if next.is_none() => {
                if n == 0 {
                    tracing::error!("the BGP speaker stopped unexpectedly");
                    failure = Some("the BGP speaker stopped unexpectedly");
                    break;
                }
                if tracing::enabled!(target: tortie_bgp::PROBE_TRACE, tracing::Level::TRACE) {
                    batch::trace_taken(&taken, applying.is_some());
                }
                let (order, steps) = agent.take_batch(&mut learned, &mut express, &mut taken);
                trimmer.applied(batch::route_count(&steps));
                if applying.is_none() {
                    applying = Some(Box::pin(agent.apply_steps(order, steps)));
                } else {
                    next = Some((order, steps));
                }
            },
            () = async {
                match applying.as_mut() {
                    Some(batch) => batch.await,
                    None => std::future::pending().await,
                }
            }, if applying.is_some() => {
                // Batches are queued one after the other, in event order.
                applying = next.take().map(|(order, steps)| {
                    Box::pin(agent.apply_steps(order, steps))
                        as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>
                });
                // Caught up after a large batch: give its transient memory
                // back to the kernel.
                if applying.is_none() && events.is_empty() && trimmer.idle() {
                    if taken.capacity() > batch::MAX_BATCH {
                        taken = Vec::with_capacity(batch::MAX_BATCH);
                    }
                    memory::trim();
                }
            }
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = hup.recv() => reload(&agent, &nat, &config_path).await,
        }
    }

    // A batch still being written is abandoned: the kernel keeps what was
    // written, as with any other routes on shutdown.
    drop(applying);
    fallback.abort();
    api_task.abort();
    // Attaches and detaches in flight finish (each runs in a task of its
    // own); none starts after this.
    let _quiet = agent.quiesce().await;
    if let Some(t) = metrics_task {
        t.abort();
    }
    let _ = std::fs::remove_file(&cfg.api.socket);
    agent.shutdown_speaker(true).await;
    tracing::info!("stopped; containers and kernel routes left in place");
    match failure {
        // Non-zero so that systemd (Restart=on-failure) starts us again.
        Some(why) => Err(anyhow::anyhow!(why)),
        None => Ok(()),
    }
}

/// Start-up reconciliation of the containers (DESIGN.md §5): the saved
/// registry against the kernel's veths ([`registry::plan`]). Complete
/// containers are kept or adopted; veths of ours with neither a /32 nor an
/// entry (an attach killed half-way) are removed first, so IPAM's
/// reconcile, which frees every allocation nothing attached carries, never
/// counts a live address as free.
async fn reconcile_containers(
    cfg: &Config,
    ipam: &mut Ipam,
    kernel: &impl kernel::Veths,
) -> anyhow::Result<registry::Registry> {
    let prefix = &cfg.dataplane.veth_prefix;
    let routed = kernel
        .list_attachments(prefix, cfg.dataplane.route_protocol)
        .await
        .context("listing attached containers")?;
    let veths = kernel
        .list_host_veths(prefix)
        .await
        .context("listing host veths")?;
    let plan = registry::plan(registry::load(&cfg.state.dir), &routed, &veths);
    for dev in &plan.half_made {
        match kernel.delete_host_veth(dev, "start-up").await {
            Ok(()) => {
                tracing::warn!(host_ifname = %dev, "removed a half-made veth (an attach that did not finish)")
            }
            Err(e) => tracing::error!(host_ifname = %dev, error = %e, "removing a half-made veth"),
        }
    }
    for c in &plan.gone {
        tracing::info!(id = %c.id, host_ifname = %c.host_ifname, "a saved container's veth is gone: forgotten");
    }
    let attached: Vec<(String, std::net::IpAddr)> = plan
        .containers
        .iter()
        .flat_map(|c| c.addresses.iter().map(|a| (c.id.clone(), a.ip())))
        .collect();
    let report = ipam
        .reconcile(&attached)
        .context("reconciling IPAM with the attached containers")?;
    tracing::info!(
        containers = plan.containers.len(),
        half_made = plan.half_made.len(),
        gone = plan.gone.len(),
        kept = report.kept.len(),
        released = report.released.len(),
        adopted = report.adopted.len(),
        conflicts = report.conflicts.len(),
        "containers reconciled with the kernel"
    );
    for (id, address) in &report.conflicts {
        tracing::warn!(id = %id, %address, "IPAM conflict found at start-up");
    }
    let mut registry = registry::Registry::with(&cfg.state.dir, plan.containers);
    registry.save();
    Ok(registry)
}

/// Keeps the route table's thread running; dropping it stops the thread
/// (routes stay in the kernel, as on any other exit).
struct KernelThread {
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts the route table ([`RouteTable::start`]) on a thread of its own with
/// a current-thread runtime. Its reconciler writes to the kernel in long
/// bursts of netlink batches (the kernel's FIB insert is most of the cost);
/// on a worker of the main runtime such a burst holds up every task queued
/// behind it on that worker — BGP sessions and the RIB included (measured: a
/// 1M-route ingest stalled for seconds on a 2-core host). On its own thread
/// the OS shares the CPU instead. The thread inherits the process's network
/// namespace.
async fn start_route_table(
    proto: u8,
    table: u32,
    options: tortie_routes::TableOptions,
) -> anyhow::Result<(RouteTable, KernelThread)> {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("tortie-kernel".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow::anyhow!(
                        "building the route table's runtime: {e}"
                    )));
                    return;
                }
            };
            rt.block_on(async move {
                match RouteTable::start_with(proto, table, options).await {
                    Ok(t) => {
                        let _ = ready_tx.send(Ok(t));
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                }
                // Until the agent drops its KernelThread (or panics).
                let _ = stop_rx.await;
            });
        })
        .context("spawning the route table thread")?;
    let table = ready_rx
        .await
        .map_err(|_| anyhow::anyhow!("the route table thread ended before starting"))??;
    Ok((table, KernelThread { _stop: stop_tx }))
}

/// SIGHUP: re-read the file; invalid → keep running as before. Peer changes
/// are applied live (the speaker resets just the peers that differ, and
/// none whose filters alone changed), and so are `bgp.advertise`, the
/// filters and the communities of originated routes.
async fn reload(agent: &Agent, nat: &tortie_routes::nat::NatOutgoing, path: &Path) {
    let new = match tortie_config::load(path) {
        Ok(c) => c,
        Err(e) => {
            for p in &e.problems {
                tracing::error!("{p}");
            }
            tracing::error!(
                "SIGHUP: {} is invalid; keeping the running configuration",
                path.display()
            );
            return;
        }
    };
    let old = agent.config();
    if new == *old {
        tracing::info!("SIGHUP: configuration unchanged");
        return;
    }
    let restart_needed: Vec<&str> = [
        ("node", new.node != old.node),
        // `advertise` is applied live below; the rest of [bgp] shapes the speaker.
        (
            "bgp",
            tortie_config::Bgp {
                advertise: old.bgp.advertise,
                ..new.bgp.clone()
            } != old.bgp,
        ),
        // nat_outgoing and cluster_cidrs apply live (nat.rs).
        (
            "dataplane",
            tortie_config::Dataplane {
                nat_outgoing: old.dataplane.nat_outgoing,
                cluster_cidrs: old.dataplane.cluster_cidrs.clone(),
                ..new.dataplane.clone()
            } != old.dataplane,
        ),
        ("api", new.api != old.api),
        ("metrics", new.metrics != old.metrics),
        ("state", new.state != old.state),
    ]
    .into_iter()
    .filter_map(|(k, changed)| changed.then_some(k))
    .collect();
    if !restart_needed.is_empty() {
        tracing::warn!(sections = %restart_needed.join(","), "SIGHUP: these sections changed and need a restart; not applied");
    }
    let (peers, renames) = hold_back_renames(&old.peers, &new.peers);
    for (address, kept, wanted) in &renames {
        tracing::warn!(
            peer = %kept,
            address = %address,
            new_name = %wanted,
            "SIGHUP: only the peer's name changed; keeping the old name, since renaming \
             would reset the session (applied with the next real change or restart)"
        );
    }
    if peers != old.peers {
        let links = links::Links::read();
        let speaker_peers = peers
            .iter()
            .map(|p| convert::peer_config(p, &links))
            .collect();
        let result = match agent.speaker().await {
            Ok(s) => s
                .reconfigure(speaker_peers)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "SIGHUP: applying the new peers failed; keeping the old ones");
            return;
        }
        tracing::info!(peers = peers.len(), "SIGHUP: peers reconfigured");
    }
    let mut applied = (*old).clone();
    applied.peers = peers;
    if nat::reload(nat, &old, &new) {
        applied.dataplane.nat_outgoing = new.dataplane.nat_outgoing;
        applied.dataplane.cluster_cidrs = new.dataplane.cluster_cidrs.clone();
    }
    applied.bgp.advertise = new.bgp.advertise;
    applied.policy = new.policy.clone();
    if new.policy.ebgp_requires_policy != old.policy.ebgp_requires_policy {
        let on = new.policy.ebgp_requires_policy;
        let result = match agent.speaker().await {
            Ok(s) => s
                .set_ebgp_requires_policy(on)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(()) => tracing::info!(on, "SIGHUP: bgp.ebgp_requires_policy applied"),
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: applying bgp.ebgp_requires_policy failed");
                applied.policy.ebgp_requires_policy = old.policy.ebgp_requires_policy;
            }
        }
    }
    let applied = Arc::new(applied);
    if applied.policy.block_communities != old.policy.block_communities {
        for block in convert::block_prefixes(&applied) {
            let result = match agent.speaker().await {
                Ok(s) => s
                    .originate_with(block, convert::origin_attributes(&applied, true))
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(()) => {
                    tracing::info!(%block, "SIGHUP: block re-originated with the new communities")
                }
                Err(e) => {
                    tracing::error!(error = %e, %block, "SIGHUP: re-originating the block failed")
                }
            }
        }
    }
    if applied.bgp.advertise != old.bgp.advertise
        || applied.policy.host_communities != old.policy.host_communities
    {
        agent.readvertise(&old, &applied).await;
        let advertise = match applied.bgp.advertise {
            tortie_config::Advertise::Block => "block",
            tortie_config::Advertise::Hosts => "hosts",
        };
        tracing::info!(advertise, "SIGHUP: container /32s re-advertised");
    }
    agent.set_config(applied);
}

/// The peers a reload applies: a peer whose only change is its `name` keeps
/// the old one, because the speaker compares whole peer settings and would
/// reset the session (Cease/6, RFC 4486) for a cosmetic change. Returns them
/// with (address, name kept, name wanted) for each rename held back; the
/// rename goes through with the peer's next real change.
pub fn hold_back_renames(
    old: &[tortie_config::Peer],
    new: &[tortie_config::Peer],
) -> (
    Vec<tortie_config::Peer>,
    Vec<(std::net::IpAddr, String, String)>,
) {
    let mut renames = Vec::new();
    let peers = new
        .iter()
        .map(|p| match old.iter().find(|o| o.address == p.address) {
            Some(o)
                if o.name != p.name
                    && tortie_config::Peer {
                        name: o.name.clone(),
                        ..p.clone()
                    } == *o =>
            {
                renames.push((p.address, o.name.clone(), p.name.clone()));
                o.clone()
            }
            _ => p.clone(),
        })
        .collect();
    (peers, renames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(extra: &str) -> Config {
        let text = format!(
            "[node]\nname = \"n\"\naddress = \"192.0.2.1/24\"\nasn = 64512\npod_cidr = \"10.244.0.0/26\"\n{extra}"
        );
        tortie_config::parse(&text, "t.toml").unwrap()
    }

    #[test]
    fn the_dual_stack_listener_falls_back_to_ipv4_without_ipv6() {
        let sa = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        assert_eq!(listen_for(sa("[::]:179"), true), sa("[::]:179"));
        assert_eq!(listen_for(sa("[::]:179"), false), sa("0.0.0.0:179"));
        assert_eq!(
            listen_for(sa("[2001:db8::1]:179"), false),
            sa("[2001:db8::1]:179")
        );
        assert_eq!(
            listen_for(sa("192.0.2.1:1179"), false),
            sa("192.0.2.1:1179")
        );
    }

    #[test]
    fn a_rename_alone_is_held_back() {
        let old = conf(
            "[[peer]]\naddress = \"192.0.2.2\"\nasn = 64512\nname = \"a\"\n\
             [[peer]]\naddress = \"192.0.2.3\"\nasn = 64512\nname = \"b\"\n",
        );
        // Only names: both kept, nothing for the speaker to do.
        let renamed = conf(
            "[[peer]]\naddress = \"192.0.2.2\"\nasn = 64512\nname = \"a2\"\n\
             [[peer]]\naddress = \"192.0.2.3\"\nasn = 64512\nname = \"b2\"\n",
        );
        let (peers, renames) = hold_back_renames(&old.peers, &renamed.peers);
        assert_eq!(peers, old.peers);
        assert_eq!(renames.len(), 2);
        assert_eq!((renames[0].1.as_str(), renames[0].2.as_str()), ("a", "a2"));
        // A rename with a real change goes through whole; the other is held back.
        let changed = conf(
            "[[peer]]\naddress = \"192.0.2.2\"\nasn = 64512\nname = \"a2\"\nhold_time = 30\n\
             [[peer]]\naddress = \"192.0.2.3\"\nasn = 64512\nname = \"b2\"\n",
        );
        let (peers, renames) = hold_back_renames(&old.peers, &changed.peers);
        assert_eq!(peers[0], changed.peers[0]);
        assert_eq!(peers[1], old.peers[1]);
        assert_eq!(renames.len(), 1);
        // New and unchanged peers pass through.
        let (peers, renames) = hold_back_renames(&[], &changed.peers);
        assert_eq!((peers, renames.len()), (changed.peers.clone(), 0));
    }
}
