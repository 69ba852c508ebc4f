//! The reconciler task: sole writer of kernel routes with our protocol
//! (notification handling lives in [`monitor`]).
//!
//! State: per prefix in one map ([`slots`]), `desired` (from the caller) and
//! `kernel` (our routes in the table as last seen: start-up dump, our
//! successful writes, others' notifications), both interned ([`hash`]);
//! `foreign` (prefixes held at metric 0 by another protocol: never
//! overwritten), `dirty` (prefixes to look at), `failed` (desired but not
//! installed, with why; retried every second and when links come up),
//! `expected` (desired, being written by the caller itself: an attach's
//! host route, [`crate::RouteTable::expect`]; nothing is written for them
//! until the kernel is seen to hold them or the caller installs them).
//!
//! Loop: take a burst of commands from the [`queue`] (its express commands
//! first, and again after each netlink batch sent: [`express`]) and apply them in order
//! to the desired side of the slots (routes arrive interned by the table's
//! one interner, [`RouteInterner`], so a desire is a reference count and one
//! hash operation, in which a new prefix of the burst's route is also
//! written: `set`'s fast path; nothing is de-duplicated here beyond a later desire
//! replacing an earlier one in its slot: the speaker's outbox is the one
//! coalescing stage), drain notifications, then for each dirty
//! prefix compute replace / delete / nothing and write them in batches of
//! many requests per `sendmsg` ([`apply`], [`crate::nl::AsyncSocket`]). Deletes
//! answered "no such route" are done.
//! Adopted routes are kept until `converged` (re-dumps and adoption:
//! [`resync`]). Notifications caused by our own
//! socket are skipped unparsed; a route of ours removed or changed by anyone
//! else is put back at once and counted as restored. Link down/removal (the
//! kernel then drops routes without notifying) and lost notifications
//! (ENOBUFS) trigger a full re-dump.
//! The VXLAN FDB and neighbour entries of remote VTEPs follow the desired
//! routes through the VXLAN devices ([`vteps`]).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnetwork::IpNetwork;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::RoutesError;
use crate::nl::consts::RTNLGRP_NEXTHOP;
use crate::nl::{AsyncSocket, RouteEncoder, RouteTemplate};
use crate::table::Command;
use crate::types::{KernelRoute, RouteKind, RouteStats};

/// The reconciler's [`apply::Writer`]: its output buffer, socket, device
/// maps, protocol and table, borrowed field by field so that `self.slots`
/// can be borrowed beside it (a `&mut self` method could not: the one
/// place the writer is built, for `set`, `unset` and `apply`).
macro_rules! writer {
    ($r:ident) => {
        $crate::reconcile::apply::Writer {
            out: &mut $r.out,
            cmd: &mut $r.cmd,
            links: &$r.links,
            by_name: &$r.by_name,
            proto: $r.proto,
            table: $r.table,
            nh: &mut $r.nh,
        }
    };
}

mod apply;
mod express;
mod failures;
mod hash;
mod installs;
mod monitor;
mod nexthops;
pub(crate) mod queue;
mod resync;
mod slots;
mod vteps;
use failures::Failure;
pub(crate) use hash::Shared;
use hash::{FastMap, FastSet, Interner};
use slots::{Desire, Slots};

/// Bytes of requests per `sendmsg` (~270 routes). Measured here: 16 KiB
/// and 32 KiB give ~205k adds/s for 100k routes, 64 KiB only ~140k/s (the
/// kernel's buffer for such a large request is no longer a plain skb).
const BATCH_BYTES: usize = 16 * 1024;
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// How long a small burst of commands may wait for more before being written.
const COALESCE: Duration = Duration::from_millis(1);
/// A burst this large is written at once.
const COALESCE_TARGET: usize = 1024;
const RESYNC_DELAY: Duration = Duration::from_millis(50);
const STATS_EVERY: Duration = Duration::from_secs(1);
/// Full re-dump as a safety net against changes the kernel does not notify.
const RESYNC_EVERY: Duration = Duration::from_secs(300);

/// The route table's one interner of routes ([`Interner`]), shared by the
/// [`crate::RouteTable`] handles (which intern what callers desire, once per
/// distinct route) and the task (which interns what it dumps and hears).
#[derive(Clone, Default)]
pub(crate) struct RouteInterner(Arc<Mutex<Interner>>);

impl RouteInterner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Interner> {
        // Interning cannot leave the set inconsistent: a poisoned lock is usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shared copy of `route` (as given: callers normalize desires).
    pub(crate) fn intern(&self, route: KernelRoute) -> Shared {
        self.lock().intern(route)
    }

    fn purge(&self) {
        self.lock().purge();
    }
}

enum Waiter {
    Flush(oneshot::Sender<Result<(), RoutesError>>),
    Converged(oneshot::Sender<()>),
    Installed(oneshot::Sender<HashMap<IpNetwork, KernelRoute>>),
    NotInstalled(oneshot::Sender<HashMap<IpNetwork, String>>),
}

struct Link {
    name: String,
    up: bool,
}

/// A route desired twice in a row that names no device, for `set`'s fast
/// path: kept alive here, so an `Arc` equal to it by address is this route;
/// with its kind and its request as a template for the family of the
/// prefix it was kept at.
struct Plain {
    route: Shared,
    kind: RouteKind,
    template: Option<RouteTemplate>,
    /// [`nexthops::Nexthops::generation`] the template was made in.
    generation: u64,
}

pub(crate) struct Reconciler {
    proto: u8,
    table: u32,
    cmd: AsyncSocket,
    mon: AsyncSocket,
    links: HashMap<u32, Link>,
    by_name: HashMap<String, u32>,
    /// Desired and kernel routes by prefix, pointing into `routes` (see
    /// [`hash`] and [`slots`]).
    slots: Slots,
    routes: RouteInterner,
    foreign: FastSet<IpNetwork>,
    adopted: FastSet<IpNetwork>,
    /// Prefixes to look at, in arrival order; may repeat (a repeat finds
    /// its slot already written and costs one lookup).
    dirty: Vec<IpNetwork>,
    /// Requests encoded but not yet sent ([`apply`]).
    out: apply::Batch,
    failed: FastMap<IpNetwork, Failure>,
    log_budget: failures::LogBudget,
    restoring: FastSet<IpNetwork>,
    /// Desired prefixes whose route names a device, by device name.
    by_dev: HashMap<String, FastSet<IpNetwork>>,
    /// Links with addresses: only those can carry the connected routes
    /// that gateway routes resolve through.
    addressed: HashSet<(u32, IpAddr, u8)>,
    converged: bool,
    resync_at: Option<Instant>,
    counters: RouteStats,
    shared: Arc<Mutex<RouteStats>>,
    waiters: Vec<Waiter>,
    /// [`Command::Install`] callers, answered once their prefix is settled
    /// ([`installs`]).
    installs: Vec<installs::Install>,
    /// Desired prefixes the caller writes itself ([`Command::Expect`]):
    /// not written here, not lost, until the kernel is seen to hold them
    /// (notification, re-dump), or a later desire, install or removal.
    expected: FastSet<IpNetwork>,
    /// Remote VXLAN VTEPs of the desired routes and their entries.
    vteps: vteps::Vteps,
    /// `set`'s fast path: the last route desired twice in a row that names
    /// no device.
    plain: Option<Plain>,
    /// The address of the route of the last desire that took the general
    /// path (only compared: when to build [`Plain`]).
    last_general: usize,
    /// The delete request of each family (IPv4, IPv6), written for any
    /// prefix longer than /0 ([`RouteTemplate`]).
    deletes: [Option<RouteTemplate>; 2],
    /// The last IPv6 prefix `unset` deleted write-through in the current
    /// burst: IPv6 deletes go out in address order ([`apply`]'s kernel
    /// order), so only a prefix above it is written at once.
    last_v6_delete: Option<IpNetwork>,
    /// Nexthop objects of learned routes ([`nexthops`]).
    nh: nexthops::Nexthops,
    /// Express commands and the per-prefix order they keep ([`express`]).
    express: express::Express,
}

/// Device names a route refers to (no allocation: hot path of `set`).
fn devs_of(route: &KernelRoute) -> impl Iterator<Item = &str> {
    let (local, hops) = match route {
        KernelRoute::Local { dev } => (Some(dev.as_str()), &[][..]),
        KernelRoute::Unicast { next_hops } => (None, next_hops.as_slice()),
        KernelRoute::Blackhole => (None, &[][..]),
    };
    local
        .into_iter()
        .chain(hops.iter().filter_map(|n| n.dev.as_deref()))
}

impl Reconciler {
    pub(crate) async fn open(
        proto: u8,
        table: u32,
        shared: Arc<Mutex<RouteStats>>,
        routes: RouteInterner,
        nexthop_objects: bool,
    ) -> Result<Reconciler, RoutesError> {
        // Subscribe first, so nothing that happens during the dump is lost.
        let mon = AsyncSocket::open(crate::RouteTable::MONITOR_GROUPS, 64 << 20)
            .map_err(|e| RoutesError::io("route table: opening netlink monitor socket", e))?;
        let cmd = AsyncSocket::open(0, 16 << 20)
            .map_err(|e| RoutesError::io("route table: opening netlink socket", e))?;
        // Our own writes' notifications are filtered in the kernel; if that
        // fails they are still skipped unparsed in userspace.
        if let Err(e) = mon.get_ref().ignore_sender(cmd.portid()) {
            tracing::debug!("netlink socket filter not attached: {e}");
        }
        if nexthop_objects && let Err(e) = mon.get_ref().membership(RTNLGRP_NEXTHOP, true) {
            // The periodic re-dump still finds objects others deleted.
            tracing::debug!("nexthop notifications not joined: {e}");
        }
        let mut r = Reconciler {
            proto,
            table,
            cmd,
            mon,
            links: HashMap::new(),
            by_name: HashMap::new(),
            slots: Slots::default(),
            routes,
            foreign: FastSet::default(),
            adopted: FastSet::default(),
            dirty: Vec::new(),
            out: apply::Batch::new(),
            failed: FastMap::default(),
            log_budget: failures::LogBudget::default(),
            restoring: FastSet::default(),
            by_dev: HashMap::new(),
            addressed: HashSet::new(),
            converged: false,
            resync_at: None,
            counters: RouteStats::default(),
            shared,
            waiters: Vec::new(),
            installs: Vec::new(),
            expected: FastSet::default(),
            vteps: vteps::Vteps::default(),
            plain: None,
            last_general: 0,
            last_v6_delete: None,
            nh: nexthops::Nexthops::new(nexthop_objects, proto),
            express: express::Express::default(),
            deletes: [
                IpAddr::from(Ipv4Addr::UNSPECIFIED),
                Ipv6Addr::UNSPECIFIED.into(),
            ]
            .map(|any| {
                let host = IpNetwork::new(any, if any.is_ipv4() { 32 } else { 128 }).ok()?;
                RouteEncoder {
                    protocol: proto,
                    table,
                    extra_flags: 0,
                }
                .template(host, None)
            }),
        };
        r.resync()
            .await
            .map_err(|e| RoutesError::io("route table: dumping links and routes", e))?;
        r.adopted = r.slots.kernel_iter().map(|(p, _)| p).collect();
        r.counters.adopted = r.adopted.len() as u64;
        r.counters.adopted_ipv6 = r.adopted.iter().filter(|p| p.is_ipv6()).count() as u64;
        r.publish();
        Ok(r)
    }

    pub(crate) async fn run(mut self, rx: queue::Receiver) {
        let mut cmds = Vec::new();
        let mut last_publish = Instant::now();
        let mut stale = false;
        let mut next_retry = Instant::now() + RETRY_EVERY;
        let mut next_full = Instant::now() + RESYNC_EVERY;
        let mut closed = false;
        loop {
            if closed && self.idle() {
                break;
            }
            let mut deadline = match self.resync_at {
                Some(t) => t.min(next_retry).min(next_full),
                None => next_retry.min(next_full),
            };
            if stale {
                deadline = deadline.min(last_publish + STATS_EVERY);
            }
            tokio::select! {
                () = rx.wait(), if !closed => {
                    let open = rx.take(&mut cmds, &mut self.express.buf);
                    if cmds.is_empty() && self.express.buf.is_empty() && !open {
                        break;
                    }
                    self.commands(&rx, &mut cmds).await;
                    if !open || !self.coalesce(&rx, &mut cmds).await {
                        closed = true;
                    }
                }
                r = self.mon.readable() => {
                    if let Err(e) = r {
                        tracing::error!("route monitor socket failed: {e}");
                        break;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {}
            }
            // Requests encoded by write-through were planned on the links as
            // they were before the notifications now queued: they go first.
            // A notification applied before them could make the prefix
            // dirty again (a veth deleted and made again under its name,
            // as a CNI DEL then ADD of one container does: the kernel side
            // recorded for the request is taken) and `apply` encode a
            // second request for it into the same buffer; the first one,
            // refused (the old ifindex), then undid what the second one,
            // accepted, had recorded, and the prefix was left desired, "not
            // in the kernel", not failed, not dirty: its install waited for
            // ever.
            if self.out.len() > 0 {
                self.write().await;
            }
            self.drain_monitor();
            let now = Instant::now();
            if self.resync_at.is_some_and(|t| t <= now) {
                self.resync_at = None;
                match self.resync().await {
                    Ok(()) => {
                        // Commands queued during the dump go first: a
                        // route a caller wrote itself, which the dump may
                        // have seen, was expected before it was written
                        // ([`Command::Expect`]): never swept as a stray.
                        let open = rx.take(&mut cmds, &mut self.express.buf);
                        self.commands(&rx, &mut cmds).await;
                        closed |= !open;
                        if self.converged {
                            self.sweep_strays();
                        }
                    }
                    Err(e) => {
                        tracing::warn!("route table re-dump failed: {e}; retrying");
                        self.resync_at = Some(now + RETRY_EVERY);
                    }
                }
            }
            if next_full <= now {
                next_full = now + RESYNC_EVERY;
                self.resync_at.get_or_insert(now);
            }
            if next_retry <= now {
                next_retry = now + RETRY_EVERY;
                self.dirty.extend(self.failed.keys().copied());
                if self.converged && !self.adopted.is_empty() {
                    // Routes of ours someone else took since: nothing to sweep.
                    self.prune_adopted();
                }
                self.vteps.dirty |= self.vteps.retry;
                self.nh.retry();
            }
            for _ in 0..4 {
                if self.idle() {
                    break;
                }
                self.apply().await;
                self.drain_monitor();
            }
            if self.idle() && self.relook_lost() {
                // Written again before anyone is answered ([`installs`]).
                self.apply().await;
                self.drain_monitor();
            }
            if self.idle() {
                self.answer_installs(true);
            }
            if self.idle() && self.converged && self.nh.gc_due && self.resync_at.is_none() {
                self.collect_nexthops().await;
            }
            if self.vteps.dirty && self.resync_at.is_none() {
                self.sync_vteps().await;
            }
            // Publish at most every STATS_EVERY (1 s), and right before answering
            // flush/converged/installed (the slots keep the installed count).
            stale = true;
            // Answers wait for a pending re-dump too (link loss, lost events).
            if self.idle() && self.resync_at.is_none() && !self.waiters.is_empty() {
                // A burst is over: give back the buffers it grew.
                if cmds.capacity() > queue::SMALL {
                    cmds = Vec::new();
                }
                rx.shrink();
                self.out.shrink();
                self.publish();
                last_publish = Instant::now();
                stale = false;
                self.answer_waiters();
            }
            if stale && last_publish.elapsed() >= STATS_EVERY {
                self.publish();
                last_publish = Instant::now();
                stale = false;
            }
        }
        self.publish();
    }

    /// Take the rest of a burst of commands before writing: everything
    /// already queued, then, while the batch is still small, whatever
    /// arrives within [`COALESCE`] (a producer on another thread sends one
    /// command at a time). Write-through sends the buffer whenever it
    /// fills, so a stream may go on being taken here past [`COALESCE`] —
    /// unless it left a prefix dirty: that one is [`apply`]'s within
    /// [`COALESCE`]. Returns false once the channel is closed.
    async fn coalesce(&mut self, rx: &queue::Receiver, cmds: &mut Vec<Command>) -> bool {
        let until = Instant::now() + COALESCE;
        loop {
            let open = rx.take(cmds, &mut self.express.buf);
            self.commands(rx, cmds).await;
            if !open {
                return false;
            }
            // Write-through keeps a stream of commands moving while it is
            // taken here; what it left dirty (a new gateway's object to make,
            // a missing device, an IPv6 delete out of order) waits for
            // `apply`, at most COALESCE: a stream that never pauses (a bulk
            // load from another peer) must not hold it until its end.
            if self.dirty.len() >= COALESCE_TARGET
                || (!self.dirty.is_empty() && Instant::now() >= until)
                || !self.waiters.is_empty()
                || !self.installs.is_empty()
            {
                return true;
            }
            if tokio::time::timeout_at(until, rx.wait()).await.is_err() {
                return true;
            }
        }
    }

    /// Nothing left to write: no dirty prefix, nothing encoded.
    fn idle(&self) -> bool {
        self.dirty.is_empty() && self.out.len() == 0
    }

    /// Apply taken commands, sending the buffer whenever write-through
    /// filled it. Each command's slot is looked up once, by the command
    /// itself: bulk loads come in address order and the slot maps hash by
    /// run ([`slots`]), so neighbours share cache lines; looking a group's
    /// slots up first, as [`apply`] does for dirty prefixes, was a second
    /// lookup per command.
    ///
    /// A desire whose gateway has no nexthop object yet is left dirty and
    /// the object is made at once ([`Reconciler::resolve_nexthops`]), so
    /// the rest of the burst is written through with it. Made only by
    /// `apply`, after the burst, every prefix taken with it (up to the
    /// queue's [`queue::CAPACITY`]) would go dirty, be looked up a second
    /// time and be encoded from scratch (−21 % instructions on a 10k add
    /// pass, lab/bench/README.md, session 18 kern9 lane).
    ///
    /// Express commands go first, those taken with `cmds` and those queued
    /// by the time each full buffer is sent ([`express`]); one that needs
    /// more than write-through is written by [`apply`] there and then, not
    /// after the burst.
    async fn commands(&mut self, rx: &queue::Receiver, cmds: &mut Vec<Command>) {
        self.last_v6_delete = None;
        if self.apply_express() {
            self.apply().await;
        }
        for c in cmds.drain(..) {
            self.command(c);
            if self.nh.has_pending() {
                // A failed send leaves the gateway queued for `apply`.
                self.resolve_nexthops().await;
            } else if self.out.full() {
                self.write().await;
                if self.take_express(rx) {
                    self.apply().await;
                }
            }
        }
        self.express_passed();
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Change(p, r, order) => self.bulk_change(p, r, order),
            Command::Install(p, r, tx) => {
                let was_expected = !self.expected.is_empty() && self.expected.contains(&p);
                self.set(p, r);
                if was_expected {
                    // The caller's own write was refused: ours to write now.
                    self.dirty.push(p);
                }
                self.wait_install(p, tx);
            }
            Command::Expect(p, r) => self.expect(p, r),
            Command::Uninstall(p, tx) => {
                self.unset(p);
                // Taken: a delete write-through encoded is sent before the
                // next notifications are read (`run`); the prefix is no
                // longer desired, so its link going away retries nothing.
                let _ = tx.send(());
            }
            Command::ReplaceAll(map) => {
                let gone: Vec<_> = self
                    .slots
                    .desired_iter()
                    .map(|(p, _)| p)
                    .filter(|p| !map.contains_key(p))
                    .collect();
                for p in gone {
                    self.unset(p);
                }
                for (p, r) in map {
                    let r = self.routes.intern(r.normalized());
                    self.set(p, r);
                }
            }
            Command::Converged(tx) => {
                self.converged = true;
                self.vteps.dirty = true;
                let sweep: Vec<_> = self
                    .slots
                    .iter()
                    .filter(|(_, d, k)| d.is_none() && k.is_some())
                    .map(|(p, _, _)| p)
                    .collect();
                self.dirty.extend(sweep);
                self.prune_adopted();
                self.waiters.push(Waiter::Converged(tx));
            }
            Command::Flush(tx) => self.waiters.push(Waiter::Flush(tx)),
            Command::Installed(tx) => self.waiters.push(Waiter::Installed(tx)),
            Command::NotInstalled(tx) => self.waiters.push(Waiter::NotInstalled(tx)),
        }
    }

    /// Hot path of bulk loads: one hash operation per prefix. A new desire
    /// the kernel does not hold yet is encoded into the send buffer at once
    /// (write-through, see [`apply`]); anything else is left to `apply`.
    ///
    /// The bulk case — a prefix with no route on either side, desired with
    /// the route of the burst, which names no device (so no device index
    /// or VTEP to keep), and no route of another protocol at the prefix —
    /// takes the slots' fast path ([`slots::Desire::New`]): the same
    /// request as write-through, recorded without the general path's
    /// checks and counts.
    fn set(&mut self, p: IpNetwork, r: Shared) {
        if !self.expected.is_empty() {
            self.expected.remove(&p);
        }
        self.desire(p, r, true);
    }

    /// `set` and `expect`: desire `r` for `p`, writing it through when
    /// `write_through` (else leaving it dirty, for `apply`).
    fn desire(&mut self, p: IpNetwork, r: Shared, write_through: bool) {
        let (plain, template) = match &self.plain {
            Some(f) if Arc::ptr_eq(&f.route, &r) && f.generation == self.nh.generation => {
                (Some(f.kind), f.template.as_ref())
            }
            _ => (None, None),
        };
        let plain = plain
            .filter(|_| write_through && (self.foreign.is_empty() || !self.foreign.contains(&p)));
        let mut w = writer!(self);
        let write = |id, route: &KernelRoute| w.replace_new(p, route, id, template);
        let mut ch = match self.slots.desire(p, r, plain, write) {
            Desire::Same => return,
            Desire::New { written } => {
                if !written {
                    self.dirty.push(p);
                }
                return;
            }
            Desire::Changed(ch) => ch,
        };
        // Empty (no allocation) unless the route names devices.
        let mut new_devs: Vec<String> = Vec::new();
        if let Some(r) = ch.sides.desired() {
            new_devs.extend(devs_of(r).map(str::to_string));
            // Kept for a route desired twice in a row (a burst), not for
            // every route of a stream that alternates between several.
            let again = std::mem::replace(&mut self.last_general, Arc::as_ptr(r).addr())
                == Arc::as_ptr(r).addr();
            if new_devs.is_empty() && plain.is_none() && again {
                let encoder = RouteEncoder {
                    protocol: self.proto,
                    table: self.table,
                    extra_flags: 0,
                };
                self.plain = Some(Plain {
                    kind: r.kind(),
                    template: self.nh.template(&encoder, p, r),
                    route: Arc::clone(r),
                    generation: self.nh.generation,
                });
            }
        }
        let held = ch.sides.settled();
        let conflict = !self.foreign.is_empty() && self.foreign.contains(&p);
        let written =
            write_through && !held && !conflict && writer!(self).replace(p, &mut ch.sides).is_ok();
        if !written {
            // Bookkeeping, conflicts and missing devices are apply's.
            self.dirty.push(p);
        }
        if let Some(new) = ch.sides.desired() {
            self.vteps.note(new, true);
        }
        if let Some(old) = ch.old {
            self.unindex(p, &old);
        }
        for d in new_devs {
            self.by_dev.entry(d).or_default().insert(p);
        }
    }

    /// Stop desiring `p`: one hash operation. A route of ours the kernel
    /// holds for it (not an adopted one before `converged`) is deleted
    /// write-through — IPv4 in any order, IPv6 only while the burst's
    /// write-through deletes rise in address order (the order fib6 deletes
    /// fastest, [`apply`]); anything else is left dirty for `apply`,
    /// which sorts it. Through `apply` a delete would cost three more
    /// lookups, a sort and a dedup per prefix (session 13).
    fn unset(&mut self, p: IpNetwork) {
        if !self.failed.is_empty() {
            self.failed.remove(&p);
        }
        if !self.expected.is_empty() {
            self.expected.remove(&p);
        }
        let ours = self.converged || self.adopted.is_empty() || !self.adopted.contains(&p);
        let in_order = match p {
            IpNetwork::V4(_) => true,
            IpNetwork::V6(_) => self.last_v6_delete.is_none_or(|last| last < p),
        };
        let deletes = &self.deletes;
        let last_v6_delete = &mut self.last_v6_delete;
        let dirty = &mut self.dirty;
        let mut w = writer!(self);
        let old = self.slots.undesire(&p, |old, sides| {
            if sides.kernel().is_some() && ours && in_order {
                w.delete(p, sides, deletes[usize::from(p.is_ipv6())].as_ref());
                if p.is_ipv6() {
                    *last_v6_delete = Some(p);
                }
            }
            if !sides.is_empty() {
                // Not deleted here (adopted, out of order, not encodable).
                dirty.push(p);
            }
            old
        });
        let Some(old) = old else {
            if self.slots.in_kernel(&p) {
                self.dirty.push(p);
            }
            return;
        };
        self.unindex(p, &old);
    }

    /// Drop `p` from the device index of the devices `old` names.
    fn unindex(&mut self, p: IpNetwork, old: &KernelRoute) {
        if devs_of(old).next().is_none() {
            // Nothing indexed: no device, so no VXLAN next hop either.
            return;
        }
        self.vteps.note(old, false);
        for d in devs_of(old) {
            if let Some(set) = self.by_dev.get_mut(d) {
                set.remove(&p);
                if set.is_empty() {
                    self.by_dev.remove(d);
                }
            }
        }
    }

    pub(super) fn publish(&mut self) {
        let mut s = self.counters.clone();
        s.desired = self.slots.desired_len() as u64;
        s.adopted_left = self.adopted.len() as u64;
        self.routes.purge();
        let n = self.slots.installed();
        // Every change of a side keeps the count: check that none was
        // missed (tests run with debug assertions).
        debug_assert_eq!(
            n,
            self.slots.count_installed(),
            "a slot change missed the installed count"
        );
        // Every use a request took is given back when it is settled.
        debug_assert!(
            {
                let (uses, sides) = self.slots.uses_and_sides();
                uses == sides + self.out.uses_held()
            },
            "a route use was not given back"
        );
        [
            s.installed_learned,
            s.installed_local,
            s.installed_blackhole,
        ] = n.all;
        s.installed_ipv6 = n.ipv6;
        s.pending = s.desired - s.installed_learned - s.installed_local - s.installed_blackhole;
        s.not_installed = self.not_installed_by_reason();
        s.vteps = self.vteps.wanted() as u64;
        s.vtep_entries_restored = self.vteps.restored;
        s.express = self.express.taken;
        s.express_stale = self.express.stale;
        match self.shared.lock() {
            Ok(mut g) => *g = s,
            Err(poisoned) => *poisoned.into_inner() = s,
        }
    }
}
