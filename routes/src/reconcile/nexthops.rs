//! The nexthop objects of the reconciler's learned routes (`dataplane.
//! nexthop_objects`, docs/design.md "Nexthop objects"): a learned route
//! with one next hop that names no device and is not on-link is written as
//! `RTA_NH_ID` of an object of ours ([`crate::nl::nexthop`]) instead of an
//! inline gateway, so the kernel sets the next hop up once per object, not
//! once per route. Everything else (ECMP, device-named and on-link hops,
//! host routes, blackholes) stays inline.
//!
//! One object per (gateway, device the kernel resolves it to), ids from
//! [`ID_BASE`] up, `nh_protocol` ours. Data flow:
//! - the write path asks [`Nexthops::via`] for a route: the object's id,
//!   inline, or "resolving" (a gateway not seen yet: queued; the prefix
//!   stays dirty);
//! - right after the command that queued it (before the burst's next
//!   one; for a prefix being planned, before the next planning pass),
//!   [`Nexthops::resolve`] looks each queued gateway up
//!   (`RTM_GETROUTE`, the device the kernel would pick for an inline
//!   gateway) and creates its object (`RTM_NEWNEXTHOP` with an ack) before
//!   any route that uses it is encoded; a gateway the lookup or the
//!   creation refuses is written inline (the kernel then refuses or takes
//!   the route as it always did), looked up again at the next retry; a
//!   kernel without nexthop objects (`EOPNOTSUPP`, …) turns them off,
//!   logged once;
//! - objects are used by the routes the slots hold: when the reconciler is
//!   idle and converged, [`Nexthops::unused`] names the objects no held
//!   route (desired, in the kernel or in flight) maps to, which are
//!   deleted (the kernel would drop the routes of a deleted object);
//! - the start-up dump and every re-dump adopt our objects
//!   ([`Nexthops::adopt`]); an object of ours deleted or changed by
//!   someone else, or flushed with its link, drops out of the maps and
//!   the re-dump that follows puts its routes back through a new one.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use ipnetwork::IpNetwork;

use crate::nl::consts::{NLM_F_ACK, RTM_NEWNEXTHOP};
use crate::nl::nexthop::{self, Answer, NexthopView};
use crate::nl::{AsyncSocket, Part, RouteEncoder, RouteTemplate};
use crate::types::{KernelRoute, NextHop};

/// First id of our objects (`0x7470_0000`, "tp"); up to [`ID_SPAN`] of them.
pub(super) const ID_BASE: u32 = 0x7470_0000;
pub(super) const ID_SPAN: u32 = 1 << 16;
/// How long one lookup or creation may take (the kernel answers inside
/// `sendmsg`; this only bounds a lost answer).
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// Where an object sends traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Target {
    gateway: IpAddr,
    oif: u32,
}

/// How a route is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    /// Through the object with this id.
    Object(u32),
    /// With its next hops inline, as without objects.
    Inline,
    /// Its gateway's object is being made ([`Nexthops::resolve`]).
    Resolving,
}

#[derive(Debug, Clone, Copy)]
enum Gateway {
    Object(u32),
    /// The lookup or the creation failed: inline until the next retry.
    Inline,
}

pub(super) struct Nexthops {
    /// Configured, and the kernel has nexthop objects.
    pub(super) on: bool,
    proto: u8,
    /// Our objects in the kernel (made or adopted); `None`: one of ours
    /// that is not a plain gateway (never used, deleted when unused).
    objects: HashMap<u32, Option<Target>>,
    by_target: HashMap<Target, u32>,
    /// Gateways of hops without device or `onlink`.
    gateways: HashMap<IpAddr, Gateway>,
    /// Gateways waiting for [`resolve`](Self::resolve).
    pending: Vec<IpAddr>,
    next_id: u32,
    /// Bumped whenever an id stops meaning what it meant, and when queued
    /// gateways are resolved: templates that hold an id (or none, made
    /// while their gateway was resolving) are kept only for the generation
    /// they were made in.
    pub(super) generation: u64,
    /// Something changed that may have left an object unused.
    pub(super) gc_due: bool,
    /// Objects made and deleted by us (statistics for tests and logs).
    pub(super) created: u64,
    pub(super) deleted: u64,
    scratch: Vec<u8>,
}

/// Whether `errno` says the kernel has no nexthop objects.
fn unsupported(errno: i32) -> bool {
    matches!(
        errno,
        libc::EOPNOTSUPP | libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT
    )
}

/// The single plain hop of a learned route, the shape that uses an object.
fn plain_hop(route: &KernelRoute) -> Option<&NextHop> {
    match route {
        KernelRoute::Unicast { next_hops } => match next_hops.as_slice() {
            [nh] if nh.dev.is_none() && !nh.onlink => Some(nh),
            _ => None,
        },
        _ => None,
    }
}

impl Nexthops {
    pub(super) fn new(on: bool, proto: u8) -> Nexthops {
        Nexthops {
            on,
            proto,
            objects: HashMap::new(),
            by_target: HashMap::new(),
            gateways: HashMap::new(),
            pending: Vec::new(),
            next_id: ID_BASE,
            generation: 0,
            gc_due: false,
            created: 0,
            deleted: 0,
            scratch: Vec::new(),
        }
    }

    /// How `route` is written now; a gateway not seen yet is queued.
    pub(super) fn via(&mut self, route: &KernelRoute) -> Via {
        if !self.on {
            return Via::Inline;
        }
        let Some(hop) = plain_hop(route) else {
            return Via::Inline;
        };
        match self.gateways.get(&hop.gateway) {
            Some(Gateway::Object(id)) => Via::Object(*id),
            Some(Gateway::Inline) => Via::Inline,
            None => {
                if !self.pending.contains(&hop.gateway) {
                    self.pending.push(hop.gateway);
                }
                Via::Resolving
            }
        }
    }

    /// The request template of `route` as [`via`](Self::via) writes it
    /// (none while its object is being made).
    pub(super) fn template(
        &mut self,
        encoder: &RouteEncoder,
        p: IpNetwork,
        route: &KernelRoute,
    ) -> Option<RouteTemplate> {
        match self.via(route) {
            Via::Inline => encoder.template(p, Some(route)),
            Via::Object(id) => encoder.template_nh(p, route, id),
            Via::Resolving => None,
        }
    }

    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Gateways written inline after a failure are looked up again.
    pub(super) fn retry(&mut self) {
        self.gateways.retain(|_, g| matches!(g, Gateway::Object(_)));
    }

    pub(super) fn is_ours(&self, id: u32) -> bool {
        self.objects.contains_key(&id)
    }

    /// Look every queued gateway up and make its object. `cmd` must have
    /// no request in flight (its answers are read here).
    pub(super) async fn resolve(&mut self, cmd: &mut AsyncSocket) {
        // A template made while a gateway was resolving holds no request
        // (`template` is `None` then): the next one is made with its id.
        self.generation += 1;
        for gateway in std::mem::take(&mut self.pending) {
            if !self.on {
                break;
            }
            let got = match self.lookup(cmd, gateway).await {
                Ok(oif) => self.object_for(cmd, Target { gateway, oif }).await,
                Err(e) => Err(e),
            };
            let g = match got {
                Ok(id) => Gateway::Object(id),
                Err(e) => {
                    tracing::debug!("no nexthop object for {gateway}: {e}; written inline");
                    Gateway::Inline
                }
            };
            self.gateways.insert(gateway, g);
        }
    }

    /// The device the kernel resolves `gateway` to (`RTM_GETROUTE`).
    async fn lookup(&mut self, cmd: &mut AsyncSocket, gateway: IpAddr) -> io::Result<u32> {
        let mut req = Vec::with_capacity(64);
        let seq = cmd.next_seq();
        nexthop::route_get(&mut req, seq, gateway);
        let answer = self.ask(cmd, &req, seq).await?;
        match answer {
            Answer::Route(Some(oif)) => Ok(oif),
            Answer::Route(None) => Err(io::Error::other("no device for the gateway")),
            Answer::Errno(e) => Err(io::Error::from_raw_os_error(e)),
        }
    }

    /// The id of our object for `target`, made now if there is none.
    async fn object_for(&mut self, cmd: &mut AsyncSocket, target: Target) -> io::Result<u32> {
        if let Some(id) = self.by_target.get(&target) {
            return Ok(*id);
        }
        let Some(id) = (0..ID_SPAN)
            .map(|i| ID_BASE + (self.next_id - ID_BASE + i) % ID_SPAN)
            .find(|id| !self.objects.contains_key(id))
        else {
            return Err(io::Error::other("every nexthop id of ours is in use"));
        };
        let mut req = Vec::with_capacity(64);
        let seq = cmd.next_seq();
        nexthop::encode_new(
            &mut req,
            seq,
            NLM_F_ACK,
            id,
            self.proto,
            target.gateway,
            target.oif,
            false,
        );
        match self.ask(cmd, &req, seq).await? {
            Answer::Errno(0) => {}
            Answer::Errno(e) if unsupported(e) || (e == libc::EINVAL && self.created == 0) => {
                // EINVAL on the very first object: a kernel that does not
                // know RTM_NEWNEXTHOP's attributes; the dump at start-up
                // did not fail (a kernel without the message at all would
                // have refused it there).
                tracing::warn!(
                    "the kernel refused a nexthop object ({}): learned routes carry their gateways inline",
                    io::Error::from_raw_os_error(e)
                );
                self.off();
                return Err(io::Error::from_raw_os_error(e));
            }
            Answer::Errno(e) => return Err(io::Error::from_raw_os_error(e)),
            Answer::Route(_) => return Err(io::Error::other("unexpected answer")),
        }
        self.next_id = if id + 1 >= ID_BASE + ID_SPAN {
            ID_BASE
        } else {
            id + 1
        };
        self.created += 1;
        self.objects.insert(id, Some(target));
        self.by_target.insert(target, id);
        Ok(id)
    }

    /// Turn objects off (the kernel has none): everything inline.
    pub(super) fn off(&mut self) {
        self.on = false;
        self.gateways.clear();
        self.pending.clear();
        self.generation += 1;
    }

    /// Send `req` (sequence number `seq`) and read its answer.
    async fn ask(&mut self, cmd: &mut AsyncSocket, req: &[u8], seq: u32) -> io::Result<Answer> {
        cmd.send(req).await?;
        let read = async {
            loop {
                self.scratch.clear();
                cmd.drain_into(&mut self.scratch)?;
                if let Some(answer) = nexthop::answer_to(&self.scratch, seq) {
                    return Ok(answer);
                }
                cmd.readable().await?;
            }
        };
        tokio::time::timeout(ANSWER_WITHIN, read)
            .await
            .map_err(|_| io::Error::other("no answer from the kernel"))?
    }

    /// Adopt the objects of ours a dump found (`dumped`); forget those it
    /// did not find or found changed (the kernel dropped their routes: the
    /// re-dump of routes finds them gone and writes them again).
    pub(super) fn adopt(&mut self, dumped: &[NexthopView]) {
        let mut now: HashMap<u32, Option<Target>> = HashMap::new();
        for v in dumped.iter().filter(|v| v.protocol == self.proto) {
            let target = match (v.gateway, v.oif) {
                (Some(gateway), Some(oif)) if !v.special && !v.onlink() => {
                    Some(Target { gateway, oif })
                }
                _ => None,
            };
            now.insert(v.id, target);
        }
        if now == self.objects {
            return;
        }
        self.by_target = now
            .iter()
            .filter_map(|(id, t)| Some(((*t)?, *id)))
            .collect();
        self.gateways.retain(|_, g| match g {
            Gateway::Object(id) => now.get(id).is_some_and(|t| t.is_some()),
            Gateway::Inline => true,
        });
        self.objects = now;
        self.generation += 1;
        self.gc_due = true;
    }

    /// Someone else deleted or changed our object `id`.
    pub(super) fn forget(&mut self, id: u32) {
        if let Some(Some(t)) = self.objects.remove(&id) {
            self.by_target.remove(&t);
        }
        self.gateways
            .retain(|_, g| !matches!(g, Gateway::Object(i) if *i == id));
        self.generation += 1;
    }

    /// Our objects no route of `held` uses (`ifindex`: device names of
    /// routes as dumped, which name the device), forgotten here: the
    /// caller deletes them.
    pub(super) fn unused<'a>(
        &mut self,
        held: impl Iterator<Item = &'a KernelRoute>,
        ifindex: &dyn Fn(&str) -> Option<u32>,
    ) -> Vec<u32> {
        self.gc_due = false;
        if self.objects.is_empty() {
            return Vec::new();
        }
        let mut used = std::collections::HashSet::new();
        for r in held {
            let KernelRoute::Unicast { next_hops } = r else {
                continue;
            };
            let [nh] = next_hops.as_slice() else {
                continue;
            };
            match &nh.dev {
                None => {
                    if let Some(Gateway::Object(id)) = self.gateways.get(&nh.gateway) {
                        used.insert(*id);
                    }
                }
                Some(dev) => {
                    if let Some(oif) = ifindex(dev)
                        && let Some(id) = self.by_target.get(&Target {
                            gateway: nh.gateway,
                            oif,
                        })
                    {
                        used.insert(*id);
                    }
                }
            }
        }
        let gone: Vec<u32> = self
            .objects
            .keys()
            .filter(|id| !used.contains(*id))
            .copied()
            .collect();
        for id in &gone {
            self.forget(*id);
        }
        gone
    }

    /// Delete objects `ids` (unused: see [`unused`](Self::unused)).
    pub(super) async fn delete(&mut self, cmd: &mut AsyncSocket, ids: &[u32]) {
        for id in ids {
            let mut req = Vec::with_capacity(32);
            let seq = cmd.next_seq();
            nexthop::encode_del(&mut req, seq, NLM_F_ACK, *id);
            match self.ask(cmd, &req, seq).await {
                Ok(Answer::Errno(0 | libc::ENOENT)) => self.deleted += 1,
                Ok(Answer::Errno(e)) => tracing::warn!(
                    "deleting nexthop object {id}: {}",
                    io::Error::from_raw_os_error(e)
                ),
                Ok(Answer::Route(_)) => {}
                Err(e) => tracing::warn!("deleting nexthop object {id}: {e}"),
            }
        }
    }
}

impl super::Reconciler {
    /// Adopt our objects from a dump (start-up and every re-dump); a kernel
    /// that refuses the dump has no nexthop objects: inline from now on.
    pub(super) async fn dump_nexthops(&mut self) {
        if !self.nh.on {
            return;
        }
        let mut found = Vec::new();
        let req = nexthop::dump_request();
        let got = self
            .cmd
            .dump(&req, &mut |part| match part {
                Part::Restart => found.clear(),
                Part::Msg(m) => {
                    if m.header.kind == RTM_NEWNEXTHOP
                        && let Ok(v) = NexthopView::parse(m.body)
                    {
                        found.push(v);
                    }
                }
            })
            .await;
        match got {
            Ok(()) => self.nh.adopt(&found),
            Err(e)
                if e.raw_os_error()
                    .is_some_and(|n| unsupported(n) || n == libc::EINVAL) =>
            {
                tracing::warn!(
                    "the kernel has no nexthop objects ({e}): learned routes carry their gateways inline"
                );
                self.nh.off();
            }
            Err(e) => tracing::warn!("nexthop object dump failed: {e}; kept as they were"),
        }
    }

    /// Delete our objects no held route uses (idle and converged only).
    pub(super) async fn collect_nexthops(&mut self) {
        let by_name = &self.by_name;
        let ifindex = |d: &str| by_name.get(d).copied();
        let gone = self.nh.unused(self.slots.routes().map(|r| &**r), &ifindex);
        if !gone.is_empty() {
            self.nh.delete(&mut self.cmd, &gone).await;
        }
    }

    /// A nexthop notification someone else caused: an object of ours
    /// deleted or changed (by hand, or flushed with its link) is forgotten
    /// and its routes are found by a re-dump (the kernel drops IPv4 routes
    /// of a deleted object without a notification).
    pub(super) fn nexthop_event(&mut self, body: &[u8]) {
        let Ok(v) = NexthopView::parse(body) else {
            return;
        };
        if self.nh.is_ours(v.id) {
            self.nh.forget(v.id);
            self.resync_at
                .get_or_insert(tokio::time::Instant::now() + super::RESYNC_DELAY);
        }
    }
}
