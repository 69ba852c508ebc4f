//! The reconciler's write path: requests are encoded straight into a send
//! buffer ([`Batch`]) and handed to the kernel a `sendmsg` per
//! [`BATCH_BYTES`].
//!
//! Two ways in, each one hash lookup per prefix:
//! - write-through: `set` of a new desire (the bulk-load hot path) encodes
//!   the replace while it holds the prefix's slot ([`Reconciler::set`]);
//!   a prefix with no route on either side, desired with the burst's route
//!   naming no device, takes the slots' fast path ([`Writer::replace_new`]:
//!   both sides take the route's id in one step, and the request is written
//!   from the route's [`RouteTemplate`]: three stores instead of an encoding);
//!   `unset` of a prefix whose kernel side holds a route of ours encodes
//!   its delete the same way ([`Writer::delete`], the family's delete
//!   template), IPv6 only while the burst's write-through deletes rise in
//!   address order;
//! - [`Reconciler::apply`]: every dirty prefix (removals `unset` left
//!   alone, notifications, retries, re-dumps, anything `set` left alone) is
//!   looked at once, in
//!   the order the kernel rewards ([`kernel_order`]), and gets a replace, a
//!   delete or nothing (the slots of each [`TOUCH_AHEAD`] looked up
//!   together first, [`touch`]).
//!
//! The slot's kernel side is updated when the request is encoded (the
//! kernel applies a whole buffer inside `sendmsg` and answers only
//! failures), and put back for the requests it refused — read right after
//! each `sendmsg`, before any notification is applied — and for a buffer
//! that could not be sent (its prefixes become dirty again), last request
//! first ([`settle_sides`]). A request ([`Sent`]) holds a route use only
//! for the kernel side it replaced, so a buffer of new prefixes whose
//! requests all applied settles with no per-request work. A refused
//! request leaves the prefix in `failed` with the kernel's reason; `flush`
//! reports it. A refused replace leaves the old route in the kernel: the
//! next look at the prefix (the retry tick) deletes it, since a route we no
//! longer want must not carry traffic, then retries the desired one.

use std::collections::HashMap;

use ipnetwork::IpNetwork;
use tokio::time::Instant;

use super::failures::{Failure, Kind};
use super::hash::Id;
use super::nexthops::{Nexthops, Via};
use super::slots::{Sides, Slots};
use super::{BATCH_BYTES, Link, Reconciler};
use crate::nl::consts::NLMSG_ERROR;
use crate::nl::{
    AsyncSocket, Drain, MIN_ROUTE_REQUEST, RouteEncoder, RouteTemplate, error_msg, messages,
};
use crate::types::KernelRoute;

/// Orders a batch of dirty prefixes as the kernel's FIBs reward it (issue
/// 15; measured in lab/bench/README.md §2): IPv4 first, in the order they
/// came (hash order: the IPv4 trie removes scattered /32s faster than
/// neighbours, ~1.4× at 1M), then IPv6 in address order (fib6 deletes
/// neighbours ~2.5× faster than scattered prefixes at 1M). A prefix dirtied
/// twice in a row is looked at once.
fn kernel_order(batch: &mut Vec<IpNetwork>) {
    batch.sort_unstable_by(|a, b| match (a, b) {
        (IpNetwork::V4(_), IpNetwork::V4(_)) => std::cmp::Ordering::Equal,
        (IpNetwork::V4(_), IpNetwork::V6(_)) => std::cmp::Ordering::Less,
        (IpNetwork::V6(_), IpNetwork::V4(_)) => std::cmp::Ordering::Greater,
        (IpNetwork::V6(x), IpNetwork::V6(y)) => x.cmp(y),
    });
    batch.dedup();
}

/// Dirty prefixes whose slots are looked up together before they are
/// planned: independent lookups in a loop of nothing else, so the CPU
/// overlaps their cache misses; planned one by one, each missed the cache
/// between two rounds of encoding and `sendmsg` (a 1M-route table's slots
/// are far larger than the cache). Halved the user CPU of deletes
/// (lab/bench/README.md, session 6).
const TOUCH_AHEAD: usize = 32;

/// Look up the slots of `prefixes`, for nothing but bringing them into the
/// cache ([`TOUCH_AHEAD`]).
fn touch(slots: &Slots, prefixes: &[IpNetwork]) {
    let mut found = 0usize;
    for p in prefixes {
        found += usize::from(slots.is_desired(p));
    }
    std::hint::black_box(found);
}

/// A buffer holds at most this many requests (each is at least
/// [`MIN_ROUTE_REQUEST`] bytes).
const MAX_PER_SEND: usize = BATCH_BYTES / MIN_ROUTE_REQUEST + 1;

/// A request in the buffer being filled: 24 bytes, no `Arc`. `prev` holds
/// its use in the slots' [`Handles`](super::hash::Handles) until the
/// request is settled; `wrote` needs none of its own (the slot's kernel
/// side or a later request's `prev` holds it, [`Sides::write_desired`]),
/// so neither id is reused meanwhile, and a new prefix's request
/// (`prev` none) holds nothing: settling it is a no-op.
struct Sent {
    prefix: IpNetwork,
    /// The route written ([`Id::NONE`]: a delete).
    wrote: Id,
    /// The slot's kernel side before the optimistic update.
    prev: Id,
}

/// The send buffer and what it holds.
pub(super) struct Batch {
    buf: Vec<u8>,
    sent: Vec<Sent>,
    /// First sequence number of the buffer (request i has `base + i`).
    base: u32,
    errors: Vec<i32>,
    /// The kernel's extended-ack text of refused requests, by index (rare).
    texts: Vec<(usize, String)>,
    /// The kernel's answers (datagrams) to the buffer just sent.
    rx: Vec<u8>,
}

impl Batch {
    pub(super) fn new() -> Batch {
        Batch {
            buf: Vec::new(),
            sent: Vec::new(),
            base: 0,
            errors: Vec::new(),
            texts: Vec::new(),
            rx: Vec::new(),
        }
    }

    /// Requests waiting to be sent.
    pub(super) fn len(&self) -> usize {
        self.sent.len()
    }

    /// Route uses the requests waiting to be sent hold ([`Sent`]).
    pub(super) fn uses_held(&self) -> usize {
        self.sent.iter().filter(|s| s.prev.is_some()).count()
    }

    /// Time to send.
    pub(super) fn full(&self) -> bool {
        self.buf.len() >= BATCH_BYTES || self.sent.len() >= MAX_PER_SEND
    }

    /// The sequence number of the next request (reserving a range for
    /// the buffer when it is empty).
    fn next_seq(&mut self, cmd: &mut AsyncSocket) -> u32 {
        if self.sent.is_empty() {
            if self.buf.capacity() == 0 {
                self.buf.reserve(BATCH_BYTES + 4096);
                self.sent.reserve(MAX_PER_SEND);
            }
            self.base = cmd.reserve_seqs(MAX_PER_SEND);
        }
        self.base.wrapping_add(self.sent.len() as u32)
    }

    /// Give back the buffers' memory (when idle).
    pub(super) fn shrink(&mut self) {
        if self.sent.is_empty() {
            *self = Batch::new();
        }
    }
}

/// What encoding a replace needs besides the slot: the buffer, the
/// socket (sequence numbers) and the links (device names → usable index).
pub(super) struct Writer<'a> {
    pub(super) out: &'a mut Batch,
    pub(super) cmd: &'a mut AsyncSocket,
    pub(super) links: &'a HashMap<u32, Link>,
    pub(super) by_name: &'a HashMap<String, u32>,
    pub(super) proto: u8,
    pub(super) table: u32,
    pub(super) nh: &'a mut Nexthops,
}

/// Why [`Writer::replace`] wrote nothing.
pub(super) enum Unwritten {
    /// A device is missing or down (the text says which).
    Device(String),
    /// The route's nexthop object is being made: look again after
    /// [`Nexthops::resolve`].
    Resolving,
}

impl Writer<'_> {
    fn encoder(&self) -> RouteEncoder {
        RouteEncoder {
            protocol: self.proto,
            table: self.table,
            extra_flags: 0,
        }
    }

    /// Encode a replace of `p` with `route` and record the kernel side as
    /// written. Fails (buffer untouched) when a device is missing or down.
    pub(super) fn replace(&mut self, p: IpNetwork, sides: &mut Sides<'_>) -> Result<(), Unwritten> {
        let encoder = self.encoder();
        let Some(route) = sides.desired() else {
            return Err(Unwritten::Device("not desired".to_string()));
        };
        let via = self.nh.via(route);
        if via == Via::Resolving {
            return Err(Unwritten::Resolving);
        }
        let seq = self.out.next_seq(self.cmd);
        let (links, by_name) = (self.links, self.by_name);
        let usable = |dev: &str| {
            by_name
                .get(dev)
                .copied()
                .filter(|ix| links.get(ix).is_some_and(|l| l.up))
        };
        match via {
            Via::Object(id) => encoder.encode_nh(&mut self.out.buf, seq, p, route, id),
            _ => encoder.encode(&mut self.out.buf, seq, p, Some(route), &usable),
        }
        .map_err(|e| Unwritten::Device(format!("{e} or is down")))?;
        let (wrote, prev) = sides.write_desired();
        self.out.sent.push(Sent {
            prefix: p,
            wrote,
            prev,
        });
        Ok(())
    }

    /// Encode a replace of `p`, a prefix with no route on either side yet,
    /// with `route` held as `id` (written by `template`, the same bytes,
    /// when it fits `p`), and record the request (the fast path of
    /// [`Slots::desire`], which records both sides). Fails (buffer
    /// untouched) like [`replace`](Self::replace).
    pub(super) fn replace_new(
        &mut self,
        p: IpNetwork,
        route: &KernelRoute,
        id: Id,
        template: Option<&RouteTemplate>,
    ) -> bool {
        let seq = self.out.next_seq(self.cmd);
        let encoded = template.is_some_and(|t| t.encode(&mut self.out.buf, seq, p))
            || match self.nh.via(route) {
                Via::Object(nh) => self
                    .encoder()
                    .encode_nh(&mut self.out.buf, seq, p, route, nh)
                    .is_ok(),
                Via::Inline => self
                    .encoder()
                    .encode(&mut self.out.buf, seq, p, Some(route), &|_| None)
                    .is_ok(),
                Via::Resolving => false,
            };
        if encoded {
            self.out.sent.push(Sent {
                prefix: p,
                wrote: id,
                prev: Id::NONE,
            });
        }
        encoded
    }

    /// Encode a delete of our route for `p` (by `template`, the same bytes,
    /// when it fits `p`) and record the kernel side as empty.
    pub(super) fn delete(
        &mut self,
        p: IpNetwork,
        sides: &mut Sides<'_>,
        template: Option<&RouteTemplate>,
    ) {
        let seq = self.out.next_seq(self.cmd);
        let encoded = template.is_some_and(|t| t.encode(&mut self.out.buf, seq, p))
            || self
                .encoder()
                .encode(&mut self.out.buf, seq, p, None, &|_| None)
                .is_ok();
        if encoded {
            let prev = sides.take_kernel();
            self.out.sent.push(Sent {
                prefix: p,
                wrote: Id::NONE,
                prev,
            });
        }
    }
}

impl Reconciler {
    /// Write the difference for every dirty prefix, and everything
    /// write-through left in the buffer.
    pub(super) async fn apply(&mut self) {
        if self.nh.has_pending() && !self.resolve_nexthops().await {
            return;
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        kernel_order(&mut dirty);
        for (g, group) in dirty.chunks(TOUCH_AHEAD).enumerate() {
            touch(&self.slots, group);
            for (i, p) in group.iter().enumerate() {
                self.plan(*p);
                if self.out.full() && !self.write().await {
                    let next = g * TOUCH_AHEAD + i + 1;
                    self.dirty
                        .extend_from_slice(dirty.get(next..).unwrap_or_default());
                    return;
                }
            }
        }
        if self.out.len() > 0 {
            self.write().await;
        }
    }

    /// Make the objects of the gateways [`Nexthops::via`] queued. Objects
    /// are made on the command socket, whose answers must not mix with a
    /// buffer's: that goes first. False if it could not be sent (nothing
    /// resolved; a re-dump is due).
    pub(super) async fn resolve_nexthops(&mut self) -> bool {
        if self.out.len() > 0 && !self.write().await {
            return false;
        }
        self.nh.resolve(&mut self.cmd).await;
        true
    }

    /// Decide what `p` needs and, if it is a write, encode it.
    fn plan(&mut self, p: IpNetwork) {
        self.counters.planned += 1;
        let Some(mut sides) = self.slots.sides_mut(&p) else {
            if !self.failed.is_empty() {
                self.failed.remove(&p);
            }
            return;
        };
        if !self.expected.is_empty() && self.expected.contains(&p) {
            if sides.settled() {
                self.expected.remove(&p);
            } else if sides.desired().is_some() {
                // The caller is writing it ([`Command::Expect`]): its
                // notification, or its install if refused, comes next.
                return;
            }
        }
        let mut w = writer!(self);
        let delete = self.deletes[usize::from(p.is_ipv6())].as_ref();
        match (sides.desired().is_some(), sides.kernel().is_some()) {
            (true, _) if sides.settled() => {
                // Skip hashing into sets that are empty (the bulk case).
                if !self.failed.is_empty() {
                    self.failed.remove(&p);
                }
                if !self.restoring.is_empty() {
                    self.restoring.remove(&p);
                }
                if self.converged && !self.adopted.is_empty() {
                    // Desired as the kernel holds it: ours, not to sweep.
                    self.adopted.remove(&p);
                }
            }
            (true, in_kernel) => {
                if !self.foreign.is_empty() && self.foreign.contains(&p) {
                    if !self.failed.contains_key(&p) {
                        self.counters.conflicts += 1;
                    }
                    self.fail(
                        p,
                        Failure {
                            kind: Kind::Conflict,
                            text: "a route of another protocol holds this prefix; not overwritten"
                                .into(),
                        },
                    );
                } else if in_kernel
                    && self
                        .failed
                        .get(&p)
                        .is_some_and(|f| matches!(f.kind, Kind::Refused(_)))
                {
                    // The kernel refused to replace the route of ours it
                    // still holds for `p`: that route is not wanted any more
                    // (e.g. a tunnel route after the encapsulation was
                    // switched off), so it goes; the desired one is tried
                    // again at the next retry.
                    w.delete(p, &mut sides, delete);
                } else {
                    match w.replace(p, &mut sides) {
                        Ok(()) => {}
                        Err(Unwritten::Resolving) => self.dirty.push(p),
                        Err(Unwritten::Device(why)) => self.fail(
                            p,
                            Failure {
                                kind: Kind::NoDevice,
                                text: why,
                            },
                        ),
                    }
                }
            }
            (false, true) if self.converged || !self.adopted.contains(&p) => {
                w.delete(p, &mut sides, delete);
                if sides.is_empty() {
                    self.slots.remove_emptied(&p);
                }
            }
            _ => {
                if !self.failed.is_empty() {
                    self.failed.remove(&p);
                }
            }
        }
    }

    /// Send the buffer, read the kernel's refusals and settle every request
    /// in it. Returns false if the buffer could not be sent (its prefixes
    /// are dirty again and a re-dump is due).
    pub(super) async fn write(&mut self) -> bool {
        let b = &mut self.out;
        self.counters.writes += b.sent.len() as u64;
        // A route written may have left an object unused ([`Nexthops`]).
        self.nh.gc_due = true;
        if let Err(e) = self.cmd.send(&b.buf).await {
            tracing::warn!("netlink send failed: {e}; will re-dump");
            // Nothing of this buffer was applied: undo and retry it.
            b.buf.clear();
            settle_sides(&mut self.slots, &b.sent, None);
            self.dirty.extend(b.sent.drain(..).map(|s| s.prefix));
            self.resync_at = Some(Instant::now());
            return false;
        }
        b.buf.clear();
        // The kernel handled the whole buffer inside sendmsg: every
        // failure is queued now.
        b.rx.clear();
        let lost = match self.cmd.drain_into(&mut b.rx) {
            Ok(Drain::Empty) => false,
            Ok(Drain::Overrun) => true,
            Err(e) => {
                tracing::warn!("netlink receive failed: {e}");
                true
            }
        };
        if lost {
            // Some refusals may be lost: the re-dump finds those routes.
            self.resync_at = Some(Instant::now());
        }
        b.errors.clear();
        b.errors.resize(b.sent.len(), 0);
        b.texts.clear();
        let mut refused = false;
        for m in messages(&b.rx) {
            if m.header.kind != NLMSG_ERROR {
                continue;
            }
            if let Some(e) = error_msg(m.header.flags, m.body)
                && e.errno != 0
            {
                let seq = e.request_seq.unwrap_or(m.header.seq);
                let i = seq.wrapping_sub(b.base) as usize;
                if let Some(slot) = b.errors.get_mut(i) {
                    *slot = e.errno;
                    refused = true;
                    if let Some(text) = e.message {
                        b.texts.push((i, text));
                    }
                }
            }
        }
        b.rx.clear();
        let mut sent = std::mem::take(&mut b.sent);
        let errors = std::mem::take(&mut b.errors);
        let texts = std::mem::take(&mut b.texts);
        if !refused
            && self.adopted.is_empty()
            && self.failed.is_empty()
            && self.restoring.is_empty()
        {
            // The bulk case: every request applied and no prefix waits on
            // one (`settle` would do nothing): the requests give their uses
            // back, in any order (none is undone); a new prefix's holds none.
            for s in sent.drain(..) {
                if s.prev.is_some() {
                    self.slots.settled(s.prev);
                }
            }
        } else {
            settle_sides(&mut self.slots, &sent, Some(&errors));
            for (i, (s, &errno)) in sent.drain(..).zip(errors.iter()).enumerate() {
                let message = match errno {
                    0 => None,
                    _ => texts.iter().find(|(j, _)| *j == i).map(|(_, t)| t.as_str()),
                };
                self.settle(s, errno, message);
            }
        }
        self.out.texts = texts;
        if !self.installs.is_empty() {
            self.answer_installs(false);
        }
        // Keep the (emptied) vectors' capacity for the next buffer.
        self.out.sent = sent;
        self.out.errors = errors;
        // Keep the monitor's queue short while we flood it.
        self.drain_monitor();
        true
    }

    /// Book one sent request given the kernel's answer (`errno` 0: done),
    /// its slot's kernel side already settled ([`settle_sides`]).
    fn settle(&mut self, s: Sent, errno: i32, message: Option<&str>) {
        let p = s.prefix;
        match (s.wrote.is_some(), applied(&s, errno)) {
            (true, true) => {
                if !self.adopted.is_empty() {
                    self.adopted.remove(&p);
                }
                if !self.failed.is_empty() {
                    self.failed.remove(&p);
                }
                if !self.restoring.is_empty() && self.restoring.remove(&p) {
                    self.counters.restored += 1;
                }
            }
            (true, false) => self.fail(p, Failure::refused("route", errno, message)),
            (false, true) => {
                if self.adopted.remove(&p) {
                    self.counters.swept += 1;
                }
            }
            (false, false) => self.fail(p, Failure::refused("delete", errno, message)),
        }
    }
}

/// Whether the kernel did what `s` asked, given its answer: a delete
/// answered "no such route" is done too.
fn applied(s: &Sent, errno: i32) -> bool {
    errno == 0 || (!s.wrote.is_some() && matches!(errno, libc::ESRCH | libc::ENOENT))
}

/// The slots' side of a buffer's requests, given the kernel's answer to
/// each (`None`: the buffer was not sent, nothing of it applied): an
/// applied request gives its uses back; the others put their prefix's
/// kernel side back ([`Slots::undo_kernel`]), last first, so that two
/// requests on one prefix (a replace, then a delete or another replace,
/// both refused or never sent) leave the side from before the first, not
/// the one the second found.
fn settle_sides(slots: &mut Slots, sent: &[Sent], errors: Option<&[i32]>) {
    for (i, s) in sent.iter().enumerate().rev() {
        let done = errors
            .and_then(|e| e.get(i))
            .is_some_and(|&errno| applied(s, errno));
        if done {
            slots.settled(s.prev);
        } else {
            slots.undo_kernel(s.prefix, s.wrote, s.prev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Sent, Slots, kernel_order, settle_sides};
    use crate::reconcile::slots::Desire;
    use crate::types::{KernelRoute, RouteKind};
    use ipnetwork::IpNetwork;
    use std::sync::Arc;

    /// Two requests on one prefix in one buffer, as [`super::Writer`]
    /// records them: a replace of the kernel's `old` with the desired
    /// route, then a delete (the route went from desired while the first
    /// was still queued). Returns the slots, the prefix and the requests.
    fn replace_then_delete(old: &Arc<KernelRoute>) -> (Slots, IpNetwork, Vec<Sent>) {
        let p: IpNetwork = "10.9.0.0/24".parse().unwrap();
        let mut slots = Slots::default();
        slots.set_kernel(p, old.clone());
        slots.set_desired(p, Arc::new(KernelRoute::Blackhole));
        let mut sides = slots.sides_mut(&p).unwrap();
        let (wrote, prev) = sides.write_desired();
        let replace = Sent {
            prefix: p,
            wrote,
            prev,
        };
        let prev = sides.take_kernel();
        let delete = Sent {
            prefix: p,
            wrote: super::Id::NONE,
            prev,
        };
        (slots, p, vec![replace, delete])
    }

    fn kernel_is(slots: &Slots, p: &IpNetwork, want: Option<&Arc<KernelRoute>>) -> bool {
        match (slots.kernel(p), want) {
            (Some(k), Some(w)) => Arc::ptr_eq(k, w),
            (None, None) => true,
            _ => false,
        }
    }

    #[test]
    fn requests_not_applied_are_undone_last_first() {
        let old: Arc<KernelRoute> = Arc::new(KernelRoute::Local { dev: "x0".into() });
        // Never sent: the kernel still holds `old`.
        let (mut slots, p, sent) = replace_then_delete(&old);
        settle_sides(&mut slots, &sent, None);
        assert!(
            kernel_is(&slots, &p, Some(&old)),
            "unsent: {:?}",
            slots.kernel(&p)
        );
        // Both refused: the same.
        let (mut slots, p, sent) = replace_then_delete(&old);
        settle_sides(&mut slots, &sent, Some(&[libc::EINVAL, libc::EINVAL]));
        assert!(
            kernel_is(&slots, &p, Some(&old)),
            "refused: {:?}",
            slots.kernel(&p)
        );
        // The replace applied, the delete refused: the desired route.
        let (mut slots, p, sent) = replace_then_delete(&old);
        settle_sides(&mut slots, &sent, Some(&[0, libc::EINVAL]));
        assert!(
            slots
                .kernel(&p)
                .is_some_and(|k| **k == KernelRoute::Blackhole)
        );
        // The replace refused, the delete applied: nothing.
        let (mut slots, p, sent) = replace_then_delete(&old);
        settle_sides(&mut slots, &sent, Some(&[libc::EINVAL, 0]));
        assert!(kernel_is(&slots, &p, None), "{:?}", slots.kernel(&p));
    }

    /// A buffer as the bulk path fills it: new prefixes `p0..p3` written
    /// by the slots' fast path (requests holding no use), a replace of a
    /// prefix the kernel holds with another route (`q`), then a delete of
    /// `p1` (its desire withdrawn while its add was still queued). Returns
    /// the slots, the route, the prefixes and the requests.
    fn bulk_buffer() -> (
        Slots,
        Arc<KernelRoute>,
        Vec<IpNetwork>,
        IpNetwork,
        Vec<Sent>,
    ) {
        let r = Arc::new(KernelRoute::Blackhole);
        let old = Arc::new(KernelRoute::Local { dev: "x0".into() });
        let ps = nets(&["10.1.0.0/32", "10.1.0.1/32", "10.1.0.2/32", "10.1.0.3/32"]);
        let q: IpNetwork = "10.2.0.0/24".parse().unwrap();
        let mut slots = Slots::default();
        slots.set_kernel(q, old);
        slots.set_desired(q, r.clone());
        let mut sent = Vec::new();
        for p in &ps {
            let got = slots.desire(*p, r.clone(), Some(RouteKind::Blackhole), |id, _| {
                sent.push(Sent {
                    prefix: *p,
                    wrote: id,
                    prev: super::Id::NONE,
                });
                true
            });
            assert!(matches!(got, Desire::New { written: true }));
        }
        let (wrote, prev) = slots.sides_mut(&q).unwrap().write_desired();
        sent.push(Sent {
            prefix: q,
            wrote,
            prev,
        });
        slots.take_desired(&ps[1]);
        let mut sides = slots.sides_mut(&ps[1]).unwrap();
        let prev = sides.take_kernel();
        assert!(sides.is_empty());
        slots.remove_emptied(&ps[1]);
        sent.push(Sent {
            prefix: ps[1],
            wrote: super::Id::NONE,
            prev,
        });
        (slots, r, ps, q, sent)
    }

    /// Every use the slots count is a side's (no request is left).
    fn balanced(slots: &Slots) -> bool {
        let (uses, sides) = slots.uses_and_sides();
        uses == sides && slots.installed() == slots.count_installed()
    }

    #[test]
    fn a_refusal_in_the_middle_of_a_bulk_buffer_undoes_that_request_only() {
        let (mut slots, r, ps, q, sent) = bulk_buffer();
        // p2's add refused, everything else applied.
        let mut errors = vec![0; sent.len()];
        errors[2] = libc::EINVAL;
        settle_sides(&mut slots, &sent, Some(&errors));
        for (i, p) in ps.iter().enumerate() {
            let want = [true, false, false, true][i];
            assert_eq!(slots.in_kernel(p), want, "{p}");
            assert_eq!(slots.is_desired(p), i != 1, "{p}");
        }
        assert!(kernel_is(&slots, &q, Some(&r)) && slots.is_installed(&q));
        assert!(balanced(&slots), "{:?}", slots.uses_and_sides());
        // Never sent: every request undone, last first.
        let (mut slots, r, ps, q, sent) = bulk_buffer();
        settle_sides(&mut slots, &sent, None);
        assert!(ps.iter().all(|p| !slots.in_kernel(p)));
        assert!(!slots.is_desired(&ps[1]) && slots.is_desired(&ps[2]));
        assert!(slots.kernel(&q).is_some_and(|k| !Arc::ptr_eq(k, &r)));
        assert!(balanced(&slots), "{:?}", slots.uses_and_sides());
        // All applied: nothing to undo, no request held a use of `r`.
        let (mut slots, _, ps, _, sent) = bulk_buffer();
        settle_sides(&mut slots, &sent, Some(&vec![0; sent.len()]));
        assert_eq!(ps.iter().filter(|p| slots.is_installed(p)).count(), 3);
        assert!(balanced(&slots), "{:?}", slots.uses_and_sides());
    }

    fn nets(v: &[&str]) -> Vec<IpNetwork> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn ipv4_as_it_came_then_ipv6_in_address_order() {
        let mut batch = nets(&[
            "2001:db8:2::/64",
            "10.0.0.9/32",
            "2001:db8:1::/64",
            "10.0.0.1/32",
            "2001:db8:1::/64",
            "2001:db8::/48",
            "10.0.0.5/32",
        ]);
        kernel_order(&mut batch);
        let (v4, v6): (Vec<_>, Vec<_>) = batch.iter().copied().partition(|p| p.is_ipv4());
        assert_eq!(batch[..3], v4[..], "IPv4 first: {batch:?}");
        // Every IPv4 prefix is kept (their order is the kernel's least concern).
        let mut v4s: Vec<_> = v4.iter().map(|p| p.to_string()).collect();
        v4s.sort();
        assert_eq!(v4s, ["10.0.0.1/32", "10.0.0.5/32", "10.0.0.9/32"]);
        // IPv6 sorted, the duplicate looked at once.
        assert_eq!(
            v6,
            nets(&["2001:db8::/48", "2001:db8:1::/64", "2001:db8:2::/64"])
        );
    }
}
