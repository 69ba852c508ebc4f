//! Removal of many paths of one source in steps: a peer going down with a
//! full table (RFC 4271 §9.1.1: its routes are withdrawn), the graceful-restart
//! sweeps of its stale routes (RFC 4724 §4.2: on End-of-RIB or when the timer
//! runs out).
//!
//! Data flow: [`Rib::peer_down_steps`], [`Rib::sweep_stale_steps`],
//! [`Rib::end_of_rib_steps`] and [`Rib::peer_up_steps`] do the cheap part at
//! once (mark the peer down, mark paths stale) and collect the prefixes that
//! hold a path to remove (8 bytes per IPv4 prefix) into a [`Removal`].
//! [`Rib::remove_step`] then removes them a bounded number at a time, each
//! through the same per-prefix path as an UPDATE, and returns that step's
//! [`RibOutput`] for the caller to send and report before the next step. A
//! million-prefix teardown thus never holds a million [`BestPathChange`]s and
//! withdrawals at once. The one-shot operations ([`Rib::peer_down`] and
//! friends) run the same removal in a single step.
//!
//! [`BestPathChange`]: super::BestPathChange

use super::*;
use crate::types::{Afi, Ipv4Prefix, Ipv6Prefix};

/// A removal of one source's paths in progress; see the module doc. Drive it
/// with [`Rib::remove_step`] until that returns `None`, before any other
/// operation on the same [`Rib`]: until then the source's remaining paths are
/// still in the Loc-RIB although the peer is down.
#[must_use = "drive it with Rib::remove_step until it returns None"]
#[derive(Debug, Default)]
pub struct Removal {
    source: u32,
    stale_only: bool,
    v4: Vec<Ipv4Prefix>,
    v6: Vec<Ipv6Prefix>,
    /// Next index into `v4`, then into `v6`.
    next4: usize,
    next6: usize,
    /// Forget the source once done (a peer down without graceful restart).
    forget: bool,
    done: bool,
}

impl Removal {
    /// Nothing to do (already finished).
    fn finished() -> Removal {
        Removal {
            done: true,
            ..Removal::default()
        }
    }

    /// Prefixes not yet processed.
    pub fn remaining(&self) -> usize {
        (self.v4.len() - self.next4) + (self.v6.len() - self.next6)
    }

    /// All steps ran; [`Rib::remove_step`] returns `None` from now on.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn next_prefix(&mut self) -> Option<Prefix> {
        if let Some(k) = self.v4.get(self.next4) {
            self.next4 += 1;
            return Some(Prefix::V4(*k));
        }
        let k = self.v6.get(self.next6)?;
        self.next6 += 1;
        Some(Prefix::V6(*k))
    }
}

impl Rib {
    /// [`Rib::peer_down`] in steps: marks the peer down (and, with
    /// `retain_stale`, its routes stale) now; the withdrawals run in
    /// [`Rib::remove_step`].
    pub fn peer_down_steps(&mut self, peer: PeerId, retain_stale: bool) -> Removal {
        let source = peer.0;
        self.unrefuse_all(source);
        let Some(st) = self.peers.get_mut(&source) else {
            return Removal::finished();
        };
        st.up = false;
        st.advertised = 0;
        st.advertised_v6 = 0;
        if retain_stale {
            let v6 = table::mark_stale(&mut self.v6, source);
            st.stale += table::mark_stale(&mut self.v4, source) + v6;
            st.stale_v6 += v6;
            if st.received == 0 {
                self.peers.remove(&source);
            }
            // Nothing to remove; the one step left runs the maintenance.
            return Removal {
                source,
                ..Removal::default()
            };
        }
        let mut r = self.removal(source, None, false);
        r.forget = true;
        r
    }

    /// [`Rib::sweep_stale`] in steps.
    pub fn sweep_stale_steps(&mut self, peer: PeerId) -> Removal {
        self.removal(peer.0, None, true)
    }

    /// [`Rib::end_of_rib`] in steps.
    pub fn end_of_rib_steps(&mut self, peer: PeerId, family: AddressFamily) -> Removal {
        self.removal(peer.0, Some(family), true)
    }

    /// What [`Rib::peer_up`] removes before the peer comes up, in steps: all
    /// its paths when it is still up, or when it was down in graceful restart
    /// and comes back with another identity (its stale paths cannot stay).
    /// After this, `peer_up` with the same `info` removes nothing itself.
    pub fn peer_up_steps(&mut self, peer: PeerId, info: &PeerInfo) -> Removal {
        match self.peers.get(&peer.0) {
            Some(st) if st.up => self.peer_down_steps(peer, false),
            Some(st) if !st.same_source_identity(info) => self.removal(peer.0, None, false),
            _ => Removal::finished(),
        }
    }

    /// Removes up to `max` (at least one) of the removal's prefixes and
    /// returns what that changed; `None` once the removal is done. The step
    /// that processes the last prefix also finishes the removal (a down peer
    /// left without paths is forgotten).
    pub fn remove_step(&mut self, r: &mut Removal, max: usize) -> Option<RibOutput> {
        if r.done {
            return None;
        }
        let mut out = RibOutput::default();
        let mut ob = OutboundBuilder::default();
        self.remove_into(r, max, &mut out, &mut ob);
        out.outbound.extend(ob.finish());
        if r.done {
            self.maintain();
        }
        Some(out)
    }

    /// Collects the prefixes where `source` has a path to remove (of one
    /// family, or all; stale ones only, or all).
    pub(super) fn removal(
        &self,
        source: u32,
        family: Option<AddressFamily>,
        stale_only: bool,
    ) -> Removal {
        let Some(st) = self.peers.get(&source) else {
            return Removal::finished();
        };
        let all = family.is_none();
        let fam = |afi: Afi| all || family.is_some_and(|f| f.afi == afi);
        // Sized up front from the source's path count (exact for a
        // single-family peer going down), so the list is not grown by
        // doubling: 8 bytes per IPv4 prefix, not up to 24 while growing.
        let mut v4: Vec<Ipv4Prefix> = Vec::new();
        if fam(Afi::Ipv4) {
            v4.reserve_exact(st.received.min(self.v4.len()));
            let has = |e: &&V4Entry| e.has_path(source, stale_only);
            v4.extend(self.v4.iter().filter(has).map(Slot::key));
        }
        let mut v6: Vec<Ipv6Prefix> = Vec::new();
        if fam(Afi::Ipv6) {
            v6.reserve_exact(st.received.min(self.v6.len()));
            v6.extend(self.v6.keys_with(source, stale_only));
        }
        Removal {
            source,
            stale_only,
            v4,
            v6,
            next4: 0,
            next6: 0,
            forget: false,
            done: false,
        }
    }

    /// Runs up to `max` prefixes of `r` into `out`/`ob`; finishes it when
    /// none are left.
    pub(super) fn remove_into(
        &mut self,
        r: &mut Removal,
        max: usize,
        out: &mut RibOutput,
        ob: &mut OutboundBuilder,
    ) {
        if r.done {
            return;
        }
        let source = r.source;
        for _ in 0..max.max(1) {
            let Some(p) = r.next_prefix() else { break };
            let op = if r.stale_only {
                PathOp::RemoveStale(source)
            } else {
                PathOp::Remove(source)
            };
            self.op(p, op, None, out, ob);
        }
        if r.remaining() > 0 {
            return;
        }
        r.done = true;
        r.v4 = Vec::new();
        r.v6 = Vec::new();
        let forget = r.forget
            || self
                .peers
                .get(&source)
                .is_some_and(|st| !st.up && st.received == 0);
        if forget {
            self.peers.remove(&source);
        }
    }
}
