//! Non-root tests of the agent's orchestration (docs/design.md §8, tier 1),
//! in the manner of holo's conformance tests: inputs replayed into a real
//! [`Agent`], its outputs compared with expected ones.
//!
//! The agent runs whole — real config, IPAM (in a temp dir), registry,
//! learned-route conversion ([`super::batch`]) and BGP speaker (no peers,
//! not listening) — over a model of the
//! kernel behind the seam of [`super::kernel`]: [`Table`] records every
//! route-table command in order, [`FakeVeths`] keeps the host veths as a set
//! of names. Both share one [`KernelState`], so `list_attachments` sees the
//! `Local` host routes of veths that exist, as the kernel would, and faults
//! (a refused attach, a veth that cannot be deleted, a refused host route,
//! an attach that never returns) are injected there.
//!
//! - [`events`]: speaker events in → route-table commands out.
//! - [`containers`]: attach / detach / check / gc / start-up → registry,
//!   IPAM and route-table commands.
//!
//! Nothing here needs root or a network namespace; each test takes
//! milliseconds.

mod containers;
mod events;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use ipnetwork::IpNetwork;
use tortie_bgp::{Speaker, SpeakerEvent};
use tortie_config::Config;
use tortie_routes::{AttachRequest, Attachment, HostRoutes, KernelRoute, RouteStats, RoutesError};

use super::agent::Agent;
use super::batch;
use super::kernel::{Routes, Veths};
use crate::ipam::Ipam;

/// One command the agent gave the route table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    Set(IpNetwork, KernelRoute),
    Install(IpNetwork, KernelRoute),
    /// Desired, written by the attach ([`Routes::expect`]).
    Expect(IpNetwork, KernelRoute),
    Remove(IpNetwork),
    Converged,
}

/// How the modelled `attach` fails.
#[derive(Clone, Copy, Debug)]
pub enum AttachFault {
    /// Refused before anything was made (the kernel's errno).
    Refused(i32),
    /// The host veth was made, then a later step failed.
    HalfMade,
}

/// The modelled kernel and the faults to inject.
#[derive(Default)]
pub struct KernelState {
    /// Route-table commands, in the order the agent sent them.
    pub log: Vec<Cmd>,
    /// The route table's desired routes.
    pub desired: BTreeMap<IpNetwork, KernelRoute>,
    /// Host veths that exist.
    pub links: std::collections::BTreeSet<String>,
    /// The next `attach` fails so (then the fault is cleared).
    pub attach_fault: Option<AttachFault>,
    /// Changes the agent sent as express ones ([`Routes::express`]).
    pub express: u64,
    /// Every veth deletion fails while set.
    pub delete_fails: bool,
    /// Host routes are refused while set: to the attach (it writes none)
    /// and to every `install`.
    pub install_refused: bool,
    /// `attach` makes the veth, then waits for this before answering.
    pub hold_attach: Option<Arc<tokio::sync::Notify>>,
    /// Desired routes through a veth when it was deleted: the real table
    /// then retries them on the missing device (a WARN and a `no_device`
    /// failure each), as every detach did before session 14.
    pub desired_on_deleted: Vec<IpNetwork>,
}

pub type Kernel = Arc<Mutex<KernelState>>;

fn lock(k: &Kernel) -> MutexGuard<'_, KernelState> {
    k.lock().unwrap_or_else(|p| p.into_inner())
}

fn failed(context: &str) -> RoutesError {
    RoutesError::Unexpected {
        context: context.to_string(),
        message: "injected fault".to_string(),
    }
}

/// The route table double: records commands, keeps the desired set.
pub struct Table(pub Kernel);

impl Routes for Table {
    /// The double interns nothing: a route is its own handle (normalized,
    /// as the real table's interner keeps it).
    type Shared = KernelRoute;
    fn intern(&self, route: KernelRoute) -> KernelRoute {
        route.normalized()
    }
    async fn apply(&self, _order: u64, changes: Vec<(IpNetwork, Option<KernelRoute>)>) {
        self.record(changes);
    }
    /// The double has no queue: applied at once, as [`Routes::apply`],
    /// and counted ([`RouteStats::express`]).
    fn express(&self, _order: u64, changes: Vec<(IpNetwork, Option<KernelRoute>)>) {
        lock(&self.0).express += changes.len() as u64;
        self.record(changes);
    }
    async fn set(&self, prefix: IpNetwork, route: KernelRoute) {
        let mut k = lock(&self.0);
        k.log.push(Cmd::Set(prefix, route.clone()));
        k.desired.insert(prefix, route);
    }
    fn host_routes(&self) -> HostRoutes {
        HostRoutes {
            protocol: tortie_routes::DEFAULT_ROUTE_PROTOCOL,
            table: tortie_routes::RT_TABLE_MAIN,
        }
    }
    /// Logged; the route is desired (and in the modelled kernel) once the
    /// attach has written it ([`FakeVeths`]).
    async fn expect(&self, prefix: IpNetwork, route: KernelRoute) {
        lock(&self.0).log.push(Cmd::Expect(prefix, route));
    }
    async fn install(&self, prefix: IpNetwork, route: KernelRoute) -> Result<(), RoutesError> {
        let mut k = lock(&self.0);
        k.log.push(Cmd::Install(prefix, route.clone()));
        // The desire stays either way, as in the real table.
        k.desired.insert(prefix, route);
        if k.install_refused {
            return Err(RoutesError::NotInstalled {
                prefix,
                reason: "injected refusal".to_string(),
            });
        }
        Ok(())
    }
    async fn remove(&self, prefix: IpNetwork) {
        let mut k = lock(&self.0);
        k.log.push(Cmd::Remove(prefix));
        k.desired.remove(&prefix);
    }
    async fn converged(&self) {
        lock(&self.0).log.push(Cmd::Converged);
    }
    async fn installed(&self) -> HashMap<IpNetwork, KernelRoute> {
        let k = lock(&self.0);
        k.desired
            .iter()
            .filter(|(_, r)| match r {
                KernelRoute::Local { dev } => k.links.contains(dev),
                _ => true,
            })
            .map(|(n, r)| (*n, r.clone()))
            .collect()
    }
    async fn not_installed(&self) -> HashMap<IpNetwork, String> {
        HashMap::new()
    }
    /// Only the express count is modelled.
    fn stats(&self) -> RouteStats {
        RouteStats {
            express: lock(&self.0).express,
            ..RouteStats::default()
        }
    }
}

impl Table {
    /// Desires and removals, in order, into the log and the desired set.
    fn record(&self, changes: Vec<(IpNetwork, Option<KernelRoute>)>) {
        let mut k = lock(&self.0);
        for (prefix, route) in changes {
            match route {
                Some(route) => {
                    k.log.push(Cmd::Set(prefix, route.clone()));
                    k.desired.insert(prefix, route);
                }
                None => {
                    k.log.push(Cmd::Remove(prefix));
                    k.desired.remove(&prefix);
                }
            }
        }
    }
}
/// The veth double: a set of link names in the shared [`KernelState`].
pub struct FakeVeths(pub Kernel);

impl Veths for FakeVeths {
    async fn attach(&self, req: &AttachRequest) -> Result<Attachment, RoutesError> {
        let host = tortie_routes::host_ifname(&req.veth_prefix, &req.container_id);
        let hold = {
            let mut k = lock(&self.0);
            match k.attach_fault.take() {
                Some(AttachFault::Refused(errno)) => {
                    return Err(RoutesError::Netlink {
                        context: format!("attach {}: creating veth {host}", req.container_id),
                        errno,
                    });
                }
                Some(AttachFault::HalfMade) => {
                    k.links.insert(host);
                    return Err(failed("attach: moving the peer"));
                }
                None => {}
            }
            // The kernel refuses a second link of the same name.
            if !k.links.insert(host.clone()) {
                return Err(RoutesError::Netlink {
                    context: format!("attach {}: creating veth {host}", req.container_id),
                    errno: libc::EEXIST,
                });
            }
            k.hold_attach.clone()
        };
        if let Some(n) = hold {
            n.notified().await;
        }
        // The host routes asked for are written with the host end, unless
        // the kernel refuses routes (`install_refused`): then the agent
        // installs them through the table.
        let routed = {
            let mut k = lock(&self.0);
            match req.host_routes {
                Some(_) if !k.install_refused => {
                    for ip in &req.addresses {
                        let route = KernelRoute::Local { dev: host.clone() };
                        k.desired.insert(IpNetwork::from(*ip), route);
                    }
                    req.addresses.clone()
                }
                _ => Vec::new(),
            }
        };
        Ok(Attachment {
            container_id: req.container_id.clone(),
            host_ifname: host,
            host_ifindex: 7,
            host_mac: "ee:ee:ee:ee:ee:ee".to_string(),
            container_ifname: req.ifname.clone(),
            container_mac: "02:00:00:00:00:01".to_string(),
            addresses: req.addresses.clone(),
            mtu: req.mtu,
            netns: req.netns.clone(),
            routed,
        })
    }
    async fn detach(
        &self,
        container_id: &str,
        veth_prefix: &str,
        _route_protocol: u8,
    ) -> Result<(), RoutesError> {
        let host = tortie_routes::host_ifname(veth_prefix, container_id);
        self.delete_host_veth(&host, "detach").await
    }
    async fn delete_host_veth(&self, host: &str, ctx: &str) -> Result<(), RoutesError> {
        let mut k = lock(&self.0);
        if k.delete_fails {
            return Err(failed(ctx));
        }
        k.links.remove(host);
        let orphans: Vec<IpNetwork> = k
            .desired
            .iter()
            .filter(|(_, r)| matches!(r, KernelRoute::Local { dev } if dev == host))
            .map(|(p, _)| *p)
            .collect();
        k.desired_on_deleted.extend(orphans);
        Ok(())
    }
    fn link_exists(&self, name: &str) -> bool {
        lock(&self.0).links.contains(name)
    }
    async fn list_host_veths(&self, veth_prefix: &str) -> Result<Vec<String>, RoutesError> {
        let k = lock(&self.0);
        Ok(k.links
            .iter()
            .filter(|l| l.starts_with(veth_prefix))
            .cloned()
            .collect())
    }
    /// The `Local` host routes on veths that exist: what the kernel holds
    /// once the route table installed them.
    async fn list_attachments(
        &self,
        veth_prefix: &str,
        _route_protocol: u8,
    ) -> Result<Vec<(String, IpAddr)>, RoutesError> {
        let k = lock(&self.0);
        Ok(k.desired
            .iter()
            .filter_map(|(net, r)| match r {
                KernelRoute::Local { dev }
                    if dev.starts_with(veth_prefix)
                        && k.links.contains(dev)
                        && net.prefix() == if net.is_ipv4() { 32 } else { 128 } =>
                {
                    Some((dev.clone(), net.ip()))
                }
                _ => None,
            })
            .collect())
    }
}

/// A node's agent over the modelled kernel.
pub struct Node {
    pub agent: Agent<Table, FakeVeths>,
    pub kernel: Kernel,
    /// The speaker's events (our own originations come back here).
    pub events: tokio::sync::mpsc::Receiver<SpeakerEvent>,
    pub cfg: Arc<Config>,
    pub dir: tempfile::TempDir,
    /// The learned-route conversion, kept across batches.
    learned: Mutex<batch::Learned<KernelRoute>>,
}

/// A dual-stack node (blocks 10.244.1.0/26 and fd00:10:244:1::/120), plus
/// `extra` TOML.
pub fn config(extra: &str, dir: &std::path::Path) -> Config {
    let text = format!(
        "[node]\nname = \"n1\"\nasn = 64512\n\
         address = [\"192.0.2.11/24\", \"2001:db8:1::11/64\"]\n\
         pod_cidr = [\"10.244.1.0/26\", \"fd00:10:244:1::/120\"]\n\
         [bgp]\nlisten_port = 0\n{extra}"
    );
    let mut cfg = tortie_config::parse(&text, "replay.toml").expect("test config");
    cfg.state.dir = dir.to_path_buf();
    cfg
}

impl Node {
    /// `extra`: TOML appended after `[bgp]` (so `advertise = "hosts"` works).
    pub async fn start(extra: &str) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = Arc::new(config(extra, dir.path()));
        Node::start_in(cfg, dir, Kernel::default()).await
    }

    /// Over an existing kernel model and state dir (a restart).
    pub async fn start_in(cfg: Arc<Config>, dir: tempfile::TempDir, kernel: Kernel) -> Node {
        let mut sc =
            super::convert::speaker_config(&cfg, Vec::new(), &super::links::Links::default());
        sc.listen = None;
        let (speaker, events): (Speaker, _) = Speaker::start(sc).await.expect("speaker");
        let mut ipam = Ipam::open(dir.path(), &cfg.node.pod_cidrs, &[]).expect("ipam");
        let registry = super::reconcile_containers(&cfg, &mut ipam, &FakeVeths(kernel.clone()))
            .await
            .expect("start-up reconciliation");
        let agent = Agent::new(
            cfg.clone(),
            speaker,
            Table(kernel.clone()),
            FakeVeths(kernel.clone()),
            ipam,
            1500,
            registry,
        );
        Node {
            agent,
            kernel,
            events,
            cfg,
            dir,
            learned: Mutex::default(),
        }
    }

    /// Stops this agent and starts another over the same kernel model and
    /// state dir, with the files named in `forget` gone from it (no attach
    /// is held any more).
    pub async fn restart(self, forget: &[&str]) -> Node {
        let Node {
            agent,
            kernel,
            cfg,
            dir,
            ..
        } = self;
        drop(agent);
        lock(&kernel).hold_attach = None;
        for f in forget {
            let _ = std::fs::remove_file(dir.path().join(f));
        }
        Node::start_in(cfg, dir, kernel).await
    }

    pub fn kernel(&self) -> MutexGuard<'_, KernelState> {
        lock(&self.kernel)
    }

    /// The commands logged since the last call.
    pub fn take_log(&self) -> Vec<Cmd> {
        std::mem::take(&mut self.kernel().log)
    }

    /// One batch, as `tortie run`'s event loop takes it: the events through
    /// [`Agent::steps`] (the conversion kept across batches, as the loop
    /// keeps it) into [`Agent::apply_steps`].
    pub async fn replay(&self, events: Vec<SpeakerEvent>) {
        let (order, steps) = {
            let mut learned = self.learned.lock().unwrap_or_else(|p| p.into_inner());
            let steps = self.agent.steps(&mut learned, events);
            (learned.order(), steps)
        };
        self.agent.apply_steps(order, steps).await;
    }

    /// Feeds the speaker's own events (e.g. our originations reported back
    /// as best paths) through [`Node::replay`], until it has been quiet for
    /// a moment.
    pub async fn replay_speaker(&mut self) -> usize {
        let mut got = Vec::new();
        while let Ok(Some(ev)) =
            tokio::time::timeout(std::time::Duration::from_millis(100), self.events.recv()).await
        {
            got.push(ev);
        }
        let n = got.len();
        self.replay(got).await;
        n
    }
}

/// `s` as a network (`"10.244.1.0/26"`).
pub fn net(s: &str) -> IpNetwork {
    s.parse().expect("test prefix")
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// A learned route over `gateways` without encapsulation, written out as
/// the kernel gets it (not through `route_for_learned`).
pub fn via(gateways: &[&str]) -> KernelRoute {
    KernelRoute::Unicast {
        next_hops: gateways
            .iter()
            .map(|g| tortie_routes::NextHop {
                gateway: ip(g),
                dev: None,
                onlink: false,
            })
            .collect(),
    }
}

pub fn local(dev: &str) -> KernelRoute {
    KernelRoute::Local {
        dev: dev.to_string(),
    }
}
