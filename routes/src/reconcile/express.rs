//! Express changes ([`crate::RouteTable::express`]) and the per-prefix order
//! that lets them overtake the bulk of an ordered producer
//! ([`crate::RouteTable::apply_in_order`]).
//!
//! Data flow: the queue hands express commands over before any bulk command
//! taken with them, and alone at each boundary of a burst being written
//! ([`super::queue::Receiver::take_express`], called by
//! [`super::Reconciler::commands`] after each netlink batch sent). Each
//! [`Command::Change`] carries its burst's order ([`UNORDERED`] from a
//! producer without bursts: never stale, never the bulk's progress). An express change
//! applied here records its prefix and order in [`Express::applied`]; a bulk
//! change of an older order for such a prefix is stale (the express one is
//! newer) and dropped. The producer sends a burst's express changes before
//! the burst's bulk and before any later burst, and the bulk arrives in
//! order, so once a bulk change of order `n` is applied no bulk change older
//! than `n` is still to come: entries of order `n` or older are forgotten at
//! the end of each take ([`Express::forget_passed`]). The map holds only the
//! prefixes that went express and whose older bulk may still be queued.

use ipnetwork::IpNetwork;

use super::hash::FastMap;
use super::{Reconciler, queue};
use crate::table::{Command, UNORDERED};

/// The express side of the reconciler.
#[derive(Default)]
pub(super) struct Express {
    /// Express commands taken, not applied yet.
    pub(super) buf: Vec<Command>,
    /// Prefixes changed by an express command, with its order, while a bulk
    /// change of an older order may still come.
    applied: FastMap<IpNetwork, u64>,
    /// The order of the last bulk [`Command::Change`] applied.
    bulk: u64,
    /// Express changes applied ([`crate::RouteStats::express`]).
    pub(super) taken: u64,
    /// Bulk changes dropped as older than an express one
    /// ([`crate::RouteStats::express_stale`]).
    pub(super) stale: u64,
}

impl Express {
    /// A bulk change of `order` for `p` is older than an express change
    /// already applied for it.
    fn stale(&self, p: &IpNetwork, order: u64) -> bool {
        !self.applied.is_empty() && self.applied.get(p).is_some_and(|&o| o > order)
    }

    /// Forget express prefixes whose older bulk has all been applied.
    fn forget_passed(&mut self) {
        if !self.applied.is_empty() {
            let bulk = self.bulk;
            self.applied.retain(|_, o| *o > bulk);
        }
    }
}

impl Reconciler {
    /// Take the express commands queued meanwhile and apply them; true if
    /// they left work for [`Reconciler::apply`] (see [`Self::apply_express`]).
    pub(super) fn take_express(&mut self, rx: &queue::Receiver) -> bool {
        rx.take_express(&mut self.express.buf);
        self.apply_express()
    }

    /// Apply the express commands taken, in order, before anything else.
    /// True if one was not written through (a new gateway's nexthop object
    /// to make first, a device to look up: left dirty): the caller then runs
    /// [`Reconciler::apply`] at once rather than after the rest of the burst.
    pub(super) fn apply_express(&mut self) -> bool {
        if self.express.buf.is_empty() {
            return false;
        }
        let dirty = self.dirty.len();
        let mut buf = std::mem::take(&mut self.express.buf);
        for c in buf.drain(..) {
            match c {
                Command::Change(p, r, order) => {
                    self.express.taken += 1;
                    let ahead = self.express.applied.entry(p).or_insert(order);
                    *ahead = (*ahead).max(order);
                    self.change(p, r);
                }
                other => self.command(other),
            }
        }
        // Keep the buffer's capacity.
        self.express.buf = buf;
        self.dirty.len() > dirty || self.nh.has_pending()
    }

    /// A bulk [`Command::Change`], the one entry of a desire or removal
    /// taken in queue order: applied unless an express change of a later
    /// order was applied for `p` first. An [`UNORDERED`] change is always
    /// applied and leaves the ordered producer's progress as it was.
    pub(super) fn bulk_change(&mut self, p: IpNetwork, r: Option<super::Shared>, order: u64) {
        if order == UNORDERED {
            self.change(p, r);
            return;
        }
        self.express.bulk = order;
        if self.express.stale(&p, order) {
            self.express.stale += 1;
            tracing::debug!(prefix = %p, order, "a change older than an express one applied: dropped");
            return;
        }
        self.change(p, r);
    }

    /// Desire `r` for `p`, or none.
    fn change(&mut self, p: IpNetwork, r: Option<super::Shared>) {
        match r {
            Some(r) => self.set(p, r),
            None => self.unset(p),
        }
    }

    /// The end of a take: forget what no older bulk can overwrite any more.
    pub(super) fn express_passed(&mut self) {
        self.express.forget_passed();
    }
}
