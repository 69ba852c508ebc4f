//! The operations of [`Rib`]: peer lifecycle, UPDATE import, origination,
//! graceful-restart sweeps, route refresh and the read-only views.
//!
//! Every mutating operation follows the same path, prefix by prefix: change the
//! table through `table::apply_op` (which reports the best-path move and any
//! kernel-visible change), then [`propagate`] the move to every up peer.

use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::policy;
use crate::types::Afi;

impl Rib {
    pub fn new(cfg: RibConfig) -> Rib {
        Rib {
            cfg,
            peers: FastMap::default(),
            v4: ShardedTable::default(),
            v6: V6Table::default(),
            interner: Interner::default(),
            stored: StoredCache::default(),
            filtered: Default::default(),
            scratch: Scratch::default(),
        }
    }

    pub fn config(&self) -> &RibConfig {
        &self.cfg
    }

    /// A session reached Established. Returns the peer's full initial
    /// Adj-RIB-Out followed by End-of-RIB for each of its families (RFC 4724 §2).
    /// If the peer was in graceful restart with unchanged identity its stale
    /// routes stay until its End-of-RIB; if its identity changed they are
    /// dropped first. A peer that was still up is taken down first.
    pub fn peer_up(&mut self, peer: PeerId, info: PeerInfo) -> Result<RibOutput, RibError> {
        if peer.0 == LOCAL_SOURCE {
            return Err(RibError::ReservedPeerId(peer));
        }
        let mut out = RibOutput::default();
        let mut ob = OutboundBuilder::default();
        if let Some(st) = self.peers.get(&peer.0) {
            if st.up {
                self.take_down(peer.0, &mut out, &mut ob);
            } else if !st.same_source_identity(&info) {
                self.remove_paths(peer.0, None, false, &mut out, &mut ob);
            }
        }
        // Memoised exports are keyed by source peer id; what they were built
        // from (the source's router id, client status) may differ for a peer
        // coming back under the same id. Rebuilt on demand.
        self.interner.forget_source(peer.0);
        let families = info.families.clone();
        let st = self
            .peers
            .entry(peer.0)
            .or_insert_with(|| PeerState::new(info.clone(), self.cfg.local_asn));
        st.info = info;
        st.local_asn = self.cfg.local_asn;
        st.up = true;
        st.advertised = 0;
        st.advertised_v6 = 0;
        let (mut sent, mut sent_v6) = (0, 0);
        for f in &families {
            let n = self.full_export(peer.0, *f, &mut ob);
            sent += n;
            if f.afi == crate::types::Afi::Ipv6 {
                sent_v6 += n;
            }
        }
        if let Some(st) = self.peers.get_mut(&peer.0) {
            st.advertised = sent;
            st.advertised_v6 = sent_v6;
        }
        for f in families {
            ob.end_of_rib(peer.0, f);
        }
        out.outbound.extend(ob.finish());
        self.maintain();
        Ok(out)
    }

    /// A session ended. With `retain_stale` (the peer is graceful-restart
    /// capable, RFC 4724 §4.2) its routes stay in use, marked stale; otherwise
    /// they are withdrawn now.
    pub fn peer_down(&mut self, peer: PeerId, retain_stale: bool) -> RibOutput {
        let mut r = self.peer_down_steps(peer, retain_stale);
        self.remove_step(&mut r, usize::MAX).unwrap_or_default()
    }

    /// Applies one UPDATE from an up peer (RFC 4271 §9): withdrawals, then the
    /// announced prefixes with the shared attribute set, then End-of-RIB.
    /// Refused as a whole (nothing applied) with [`RibError::MaxPrefix`] when it
    /// would take the peer past its prefix limit.
    pub fn apply_update(&mut self, peer: PeerId, update: &Update) -> Result<RibOutput, RibError> {
        let mut out = RibOutput::default();
        self.apply_update_into(peer, update, &mut out).map(|()| out)
    }

    /// [`Rib::apply_update`] appending to `out`, so a caller that keeps one
    /// (drained) output allocates no change list per UPDATE.
    pub fn apply_update_into(
        &mut self,
        peer: PeerId,
        update: &Update,
        out: &mut RibOutput,
    ) -> Result<(), RibError> {
        let st = self.peers.get(&peer.0).ok_or(RibError::UnknownPeer(peer))?;
        if !st.up {
            return Err(RibError::PeerNotUp(peer));
        }
        let src = st.source_info();
        let limit = st.info.max_prefixes;
        let session_local = st.info.local_address;
        let import_filter = st.info.import_filter.clone();
        let attrs = update
            .attributes
            .as_ref()
            .map(|a| self.import(&src, a, session_local));
        if let (Some(limit), Some(Ok(_) | Err(Some(_)))) = (limit, &attrs) {
            self.check_max_prefix(peer, limit, update)?;
        }
        let mut ob = OutboundBuilder::default();
        // A prefix both withdrawn and announced in one UPDATE ends up announced
        // (RFC 4271 §9: the new route replaces the old); skip its withdrawal so
        // each prefix changes at most once per call.
        let announced: Option<FastSet<Prefix>> =
            (!update.withdrawn.is_empty() && !update.announced.is_empty() && attrs.is_some())
                .then(|| update.announced.iter().copied().collect());
        for p in &update.withdrawn {
            if announced.as_ref().is_some_and(|s| s.contains(p)) {
                continue;
            }
            self.unrefuse(peer.0, *p);
            self.op(*p, PathOp::Remove(peer.0), None, out, &mut ob);
        }
        for p in &update.announced {
            let imp = match &attrs {
                // A rejected attribute set (loop, RFC 4271 §9.1.2 / RFC 4456 §8)
                // makes the announcement a withdrawal of any earlier route.
                None | Some(Err(None)) => {
                    self.op(*p, PathOp::Remove(peer.0), None, out, &mut ob);
                    continue;
                }
                // RFC 4271 §6.3: an unusable NEXT_HOP makes the route unfeasible.
                Some(Err(Some((reason, stored)))) => {
                    let by = FilteredBy::Guard(reason.clone());
                    self.refuse(peer.0, *p, stored.clone(), by, out, &mut ob);
                    continue;
                }
                Some(Ok(imp)) => imp,
            };
            if let Some(g) = self.cfg.guard.check_prefix(p) {
                let stored = imp.stored.clone();
                self.refuse(peer.0, *p, stored, FilteredBy::Guard(g), out, &mut ob);
                continue;
            }
            let modified = match &import_filter {
                None => None,
                Some(f) => {
                    let v = policy::evaluate(
                        f,
                        *p,
                        &imp.full,
                        policy::RouteSource::Learned,
                        self.cfg.local_asn,
                    );
                    if v.action == policy::Action::Reject {
                        let by = FilteredBy::Policy {
                            filter: f.name.as_str().into(),
                            rule: v.rule.unwrap_or(0),
                        };
                        let stored = imp.stored.clone();
                        self.refuse(peer.0, *p, stored, by, out, &mut ob);
                        continue;
                    }
                    v.attributes.map(|n| self.share(&Arc::new(n)))
                }
            };
            self.unrefuse(peer.0, *p);
            let imp = modified.as_ref().unwrap_or(imp);
            let op = PathOp::Upsert(Path::new(imp.stored.clone(), peer.0));
            self.op(*p, op, Some(imp), out, &mut ob);
        }
        if let Some(f) = update.end_of_rib {
            self.remove_paths(peer.0, Some(f), true, out, &mut ob);
        }
        out.outbound.extend(ob.finish());
        self.maintain();
        Ok(())
    }

    /// The peer sent End-of-RIB for `family` (RFC 4724 §4.2): its stale routes of
    /// that family that were not re-learned are removed.
    pub fn end_of_rib(&mut self, peer: PeerId, family: AddressFamily) -> RibOutput {
        let mut r = self.end_of_rib_steps(peer, family);
        self.remove_step(&mut r, usize::MAX).unwrap_or_default()
    }

    /// The peer's restart (or stale-path) timer expired: all its stale routes go.
    pub fn sweep_stale(&mut self, peer: PeerId) -> RibOutput {
        let mut r = self.sweep_stale_steps(peer);
        self.remove_step(&mut r, usize::MAX).unwrap_or_default()
    }

    /// Originates `prefix` with ORIGIN IGP, an empty AS_PATH and `next_hop`
    /// (`None`: next-hop self toward every peer). Replaces an earlier origination.
    pub fn originate(&mut self, prefix: Prefix, next_hop: Option<IpAddr>) -> RibOutput {
        self.originate_with(
            prefix,
            PathAttributes {
                origin: Origin::Igp,
                next_hop,
                ..PathAttributes::default()
            },
        )
    }

    /// Originates `prefix` with the given attributes (communities, MED…).
    pub fn originate_with(&mut self, prefix: Prefix, attributes: PathAttributes) -> RibOutput {
        let mut out = RibOutput::default();
        let mut ob = OutboundBuilder::default();
        let stored = self.stored.store_value(attributes);
        let hint = Imported {
            full: stored.to_full(),
            stored,
        };
        self.op(
            prefix,
            PathOp::Upsert(Path::new(hint.stored.clone(), LOCAL_SOURCE)),
            Some(&hint),
            &mut out,
            &mut ob,
        );
        out.outbound.extend(ob.finish());
        self.maintain();
        out
    }

    /// Stops originating `prefix`.
    pub fn withdraw_local(&mut self, prefix: Prefix) -> RibOutput {
        let mut out = RibOutput::default();
        let mut ob = OutboundBuilder::default();
        self.op(
            prefix,
            PathOp::Remove(LOCAL_SOURCE),
            None,
            &mut out,
            &mut ob,
        );
        out.outbound.extend(ob.finish());
        self.maintain();
        out
    }

    /// ROUTE-REFRESH (RFC 2918 §4): the peer's Adj-RIB-Out for `family` again.
    /// Empty if the peer is not up or the family is not negotiated.
    pub fn route_refresh(&mut self, peer: PeerId, family: AddressFamily) -> RibOutput {
        let mut ob = OutboundBuilder::default();
        let ok = self
            .peers
            .get(&peer.0)
            .is_some_and(|s| s.up && s.info.families.contains(&family));
        if ok {
            self.full_export(peer.0, family, &mut ob);
        }
        RibOutput {
            best_changes: Vec::new(),
            outbound: ob.finish(),
        }
    }

    /// The Loc-RIB: one entry per prefix with a route, as a change that would
    /// install it (for a full resync of the kernel table).
    pub fn loc_rib(&self) -> impl Iterator<Item = BestPathChange> + '_ {
        let mut nh = Vec::new();
        let v4 = entry::dests(&self.v4).map(|(k, d)| (k.prefix(), d));
        let v6 = self.v6.iter().map(|(k, d)| (k.prefix(), d));
        v4.chain(v6)
            .map(move |(p, d)| changes::change_for(p, d.paths(), None, None, &mut nh))
    }

    /// Number of prefixes in the Loc-RIB.
    pub fn loc_rib_len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The Loc-RIB entry for one prefix.
    pub fn best(&self, prefix: Prefix) -> Option<BestPathChange> {
        let mut nh = Vec::new();
        self.dest(prefix)
            .map(|d| changes::change_for(prefix, d.paths(), None, None, &mut nh))
    }

    /// [`Rib::best`] for one of many prefixes reported in a row: attribute
    /// sets they share are converted to the public form once (`cache`).
    pub(crate) fn best_cached(
        &self,
        prefix: Prefix,
        cache: &mut FullCache,
    ) -> Option<BestPathChange> {
        let mut nh = Vec::new();
        self.dest(prefix)
            .map(|d| changes::change_for(prefix, d.paths(), None, Some(cache), &mut nh))
    }

    /// `prefix`'s ECMP set to install now, without its attributes (an
    /// owner that only installs routes); None if the prefix is gone.
    pub fn best_next_hops(&self, prefix: Prefix) -> Option<HopList> {
        let mut nh = Vec::new();
        match prefix {
            Prefix::V4(k) => self.v4.get(&k).map(|e| e.next_hops(&mut nh)),
            Prefix::V6(k) => self
                .v6
                .get(&k)
                .map(|d| changes::next_hops_for(d.paths(), &mut nh)),
        }
    }

    /// Every candidate path of `prefix`, best first, with why each loser lost.
    pub fn explain(&self, prefix: Prefix) -> Vec<Candidate> {
        let Some(d) = self.dest(prefix) else {
            return Vec::new();
        };
        let paths = d.paths();
        let ctx = self.decision_ctx();
        let mut dec = Decision::default();
        decide(paths, &ctx, &mut dec);
        let mut v: Vec<Candidate> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let local = p.source == LOCAL_SOURCE;
                Candidate {
                    peer: (!local).then_some(PeerId(p.source)),
                    peer_address: (!local).then(|| ctx.source(p.source).address),
                    attributes: p.attrs.to_full(),
                    best: i == dec.best,
                    ecmp: dec.ecmp.get(i).copied().unwrap_or(false),
                    stale: p.is_stale(),
                    lost_because: dec.lost.get(i).copied().flatten(),
                }
            })
            .collect();
        v.sort_by_key(|c| (!c.best, !c.ecmp));
        v
    }

    /// Every route refused on import (guard or filter), by prefix then peer.
    pub fn filtered(&self) -> Vec<FilteredRoute> {
        let mut v: Vec<FilteredRoute> = self
            .filtered
            .iter()
            .map(|(s, p, r)| self.filtered_route(s, p, r))
            .collect();
        v.sort_by_key(|r| (r.prefix, r.peer));
        v
    }

    /// The routes for `prefix` that were refused on import, by peer.
    pub fn filtered_for(&self, prefix: Prefix) -> Vec<FilteredRoute> {
        if self.filtered.is_empty() {
            return Vec::new();
        }
        let mut v: Vec<FilteredRoute> = self
            .peers
            .keys()
            .filter_map(|s| {
                let r = self.filtered.get(*s, prefix)?;
                Some(self.filtered_route(*s, prefix, r))
            })
            .collect();
        v.sort_by_key(|r| r.peer);
        v
    }

    fn filtered_route(&self, source: u32, prefix: Prefix, r: &refused::Refused) -> FilteredRoute {
        let filter = self
            .peers
            .get(&source)
            .and_then(|st| st.info.import_filter.as_ref())
            .map(|f| f.name.as_str());
        let reason = r.reason(&self.cfg.guard, filter);
        let address = self.decision_ctx().source(source).address;
        refused::route(source, prefix, r, address, reason)
    }

    /// Prefixes in the peer's Adj-RIB-In (0 for an unknown peer).
    pub fn received_count(&self, peer: PeerId) -> usize {
        self.peers.get(&peer.0).map_or(0, |s| s.received)
    }

    /// Prefixes in the peer's Adj-RIB-Out (0 for an unknown or down peer).
    pub fn advertised_count(&self, peer: PeerId) -> usize {
        self.peers.get(&peer.0).map_or(0, |s| s.advertised)
    }

    /// All the peer's counters; `None` for a peer the RIB does not know.
    pub fn peer_counters(&self, peer: PeerId) -> Option<PeerCounters> {
        let s = self.peers.get(&peer.0)?;
        Some(PeerCounters {
            up: s.up,
            received: s.received,
            stale: s.stale,
            advertised: s.advertised,
            filtered: s.filtered,
            received_ipv6: s.received_v6,
            advertised_ipv6: s.advertised_v6,
            stale_ipv6: s.stale_v6,
            filtered_ipv6: s.filtered_v6,
        })
    }

    /// Distinct attribute sets built for export (received sets are stored
    /// compactly and shared best-effort; see `rib::stored`).
    pub fn attribute_sets(&self) -> usize {
        self.interner.len()
    }

    // ---- internals ----

    fn decision_ctx(&self) -> DecisionCtx<'_> {
        DecisionCtx {
            local_asn: self.cfg.local_asn,
            router_id: self.cfg.router_id,
            max_paths: self.cfg.max_paths.max(1),
            peers: &self.peers,
        }
    }

    fn dest(&self, prefix: Prefix) -> Option<DestRef<'_>> {
        match prefix {
            Prefix::V4(k) => self.v4.get(&k).map(DestSlot::dest),
            Prefix::V6(k) => self.v6.get(&k),
        }
    }

    /// Inbound checks and normalisation of an attribute set from `src` over
    /// a session whose local address is `session_local`. `Err(None)` rejects
    /// the routes that carry it (a loop: they are withdrawn); `Err(Some(..))`
    /// refuses them as filtered (an unusable NEXT_HOP, RFC 4271 §6.3).
    fn import(
        &mut self,
        src: &SourceInfo,
        a: &Arc<PathAttributes>,
        session_local: IpAddr,
    ) -> Result<Imported, Option<(GuardReason, Arc<StoredAttrs>)>> {
        // RFC 4271 §9.1.2: a route whose AS_PATH contains our AS is not used.
        if a.as_path.contains(self.cfg.local_asn) {
            return Err(None);
        }
        if let Some(nh) = a.next_hop
            && let Some(reason) = self
                .cfg
                .guard
                .check_next_hop(nh, session_local, src.address)
        {
            let stored = self.stored.store(a);
            return Err(Some((reason, stored)));
        }
        if src.ebgp {
            // §5.1.5: LOCAL_PREF from an external peer is ignored; ORIGINATOR_ID
            // and CLUSTER_LIST are internal to an AS (RFC 4456 §8).
            if a.local_pref.is_some() || a.originator_id.is_some() || !a.cluster_list.is_empty() {
                let mut n = PathAttributes::clone(a);
                n.local_pref = None;
                n.originator_id = None;
                n.cluster_list.clear();
                return Ok(self.share(&Arc::new(n)));
            }
        } else {
            // RFC 4456 §8: our own route reflected back, or a reflection loop.
            let cluster_id = self.cfg.cluster_id.unwrap_or(self.cfg.router_id);
            if a.originator_id == Some(self.cfg.router_id) || a.cluster_list.contains(&cluster_id) {
                return Err(None);
            }
        }
        Ok(self.share(a))
    }

    /// Keeps `prefix` from `source` aside as filtered (replacing an earlier
    /// refusal) and withdraws any path of that source it had.
    fn refuse(
        &mut self,
        source: u32,
        prefix: Prefix,
        attrs: Arc<StoredAttrs>,
        reason: FilteredBy,
        out: &mut RibOutput,
        ob: &mut OutboundBuilder,
    ) {
        let entry = refused::Refused::new(attrs, &reason, &self.cfg.guard);
        let new = self.filtered.insert(source, prefix, entry);
        if new && let Some(st) = self.peers.get_mut(&source) {
            st.filtered += 1;
            st.filtered_v6 += usize::from(matches!(prefix, Prefix::V6(_)));
        }
        self.op(prefix, PathOp::Remove(source), None, out, ob);
    }

    /// Forgets a refusal of `prefix` from `source` (withdrawn or now accepted).
    fn unrefuse(&mut self, source: u32, prefix: Prefix) {
        if self.filtered.is_empty() {
            return;
        }
        if self.filtered.remove(source, prefix)
            && let Some(st) = self.peers.get_mut(&source)
        {
            st.filtered = st.filtered.saturating_sub(1);
            if matches!(prefix, Prefix::V6(_)) {
                st.filtered_v6 = st.filtered_v6.saturating_sub(1);
            }
        }
    }

    /// Forgets every refusal of `source` (its session ended).
    pub(super) fn unrefuse_all(&mut self, source: u32) {
        let Some(st) = self.peers.get_mut(&source) else {
            return;
        };
        if st.filtered == 0 {
            return;
        }
        st.filtered = 0;
        st.filtered_v6 = 0;
        self.filtered.remove_source(source);
    }

    fn share(&mut self, a: &Arc<PathAttributes>) -> Imported {
        Imported {
            stored: self.stored.store(a),
            full: a.clone(),
        }
    }

    fn check_max_prefix(&self, peer: PeerId, limit: u32, u: &Update) -> Result<(), RibError> {
        let Some(st) = self.peers.get(&peer.0) else {
            return Err(RibError::UnknownPeer(peer));
        };
        let limit_n = limit as usize;
        if st.received + st.filtered + u.announced.len() <= limit_n {
            return Ok(());
        }
        // Exact count: distinct announced prefixes new for this peer, minus
        // withdrawn ones it has that are not re-announced.
        let has = |p: &Prefix| {
            self.filtered.get(peer.0, *p).is_some()
                || self
                    .dest(*p)
                    .is_some_and(|d| d.paths().iter().any(|x| x.source == peer.0))
        };
        let announced: FastSet<Prefix> = u.announced.iter().copied().collect();
        let added = announced.iter().filter(|p| !has(p)).count();
        let withdrawn: FastSet<Prefix> = u
            .withdrawn
            .iter()
            .copied()
            .filter(|p| !announced.contains(p))
            .collect();
        let removed = withdrawn.iter().filter(|p| has(p)).count();
        let would_have = (st.received + st.filtered + added).saturating_sub(removed);
        if would_have > limit_n {
            return Err(RibError::MaxPrefix {
                peer,
                address: st.info.address,
                limit,
                would_have,
            });
        }
        Ok(())
    }

    /// Applies one path change, keeps the source's counters, and propagates
    /// the best-path move.
    pub(super) fn op(
        &mut self,
        prefix: Prefix,
        op: PathOp,
        hint: Option<&Imported>,
        out: &mut RibOutput,
        ob: &mut OutboundBuilder,
    ) {
        let source = op.source();
        let ctx = DecisionCtx {
            local_asn: self.cfg.local_asn,
            router_id: self.cfg.router_id,
            max_paths: self.cfg.max_paths.max(1),
            peers: &self.peers,
        };
        // Some peer other than the source: only then can a new prefix be exported.
        let others = self.peers.len() > 1 || !self.peers.contains_key(&source);
        let r = match prefix {
            Prefix::V4(k) => table::apply_op(
                &mut self.v4,
                k,
                op,
                hint,
                others,
                &ctx,
                &mut self.scratch,
                Changes::new(self.cfg.best_path_feed, &mut out.best_changes),
            ),
            Prefix::V6(k) => table::apply_op(
                &mut self.v6,
                k,
                op,
                hint,
                others,
                &ctx,
                &mut self.scratch,
                Changes::new(self.cfg.best_path_feed, &mut out.best_changes),
            ),
        };
        if let Some(st) = self.peers.get_mut(&source) {
            st.received = st.received.saturating_add_signed(r.received_delta as isize);
            st.stale = st.stale.saturating_add_signed(r.stale_delta as isize);
            if matches!(prefix, Prefix::V6(_)) {
                st.received_v6 = st
                    .received_v6
                    .saturating_add_signed(r.received_delta as isize);
                st.stale_v6 = st.stale_v6.saturating_add_signed(r.stale_delta as isize);
            }
        }
        if let Some(m) = r.moved {
            let ectx = ExportCtx::new(&self.cfg);
            propagate(&mut self.peers, &mut self.interner, &self.cfg, ectx, &m, ob);
        }
    }

    /// Removes `source`'s paths (of one family, or all; stale ones only, or
    /// all) and propagates, in one step. A down peer left with no paths is
    /// forgotten.
    fn remove_paths(
        &mut self,
        source: u32,
        family: Option<AddressFamily>,
        stale_only: bool,
        out: &mut RibOutput,
        ob: &mut OutboundBuilder,
    ) {
        let mut r = self.removal(source, family, stale_only);
        self.remove_into(&mut r, usize::MAX, out, ob);
    }

    fn take_down(&mut self, source: u32, out: &mut RibOutput, ob: &mut OutboundBuilder) {
        let mut r = self.peer_down_steps(PeerId(source), false);
        self.remove_into(&mut r, usize::MAX, out, ob);
    }

    /// Announces the whole Loc-RIB of `family` to `target`; returns how many
    /// prefixes were sent.
    fn full_export(
        &mut self,
        target: u32,
        family: AddressFamily,
        ob: &mut OutboundBuilder,
    ) -> usize {
        let mut sent = 0;
        let requires_policy = self.cfg.ebgp_requires_policy;
        self.each_export(target, family, |prefix, st, export| {
            if let Some(a) = export(st, requires_policy) {
                ob.announce(target, prefix, &a);
                sent += 1;
            }
        });
        sent
    }

    /// Calls `f` for each Loc-RIB prefix of `family` with `target`'s state
    /// and a closure exporting the prefix's best path to it (see `export`;
    /// its `bool` is the `ebgp_requires_policy` to apply).
    pub(super) fn each_export(
        &mut self,
        target: u32,
        family: AddressFamily,
        mut f: impl FnMut(
            Prefix,
            &mut PeerState,
            &mut dyn FnMut(&mut PeerState, bool) -> Option<Arc<PathAttributes>>,
        ),
    ) {
        // Take the target out of the map so the sources can be read meanwhile.
        let Some(mut st) = self.peers.remove(&target) else {
            return;
        };
        let ectx = ExportCtx::new(&self.cfg);
        let ctx = DecisionCtx {
            local_asn: self.cfg.local_asn,
            router_id: self.cfg.router_id,
            max_paths: self.cfg.max_paths.max(1),
            peers: &self.peers,
        };
        let interner = &mut self.interner;
        let mut one = |prefix: Prefix, d: &Dest| {
            if let Some(best) = d.best() {
                let src = ctx.source(best.source);
                let mut export = |st: &mut PeerState, requires_policy: bool| {
                    let ectx = ExportCtx {
                        ebgp_requires_policy: requires_policy,
                        ..ectx
                    };
                    export::export(target, st, best, &src, prefix, ectx, interner)
                };
                f(prefix, &mut st, &mut export);
            }
        };
        match family.afi {
            Afi::Ipv4 => entry::dests(&self.v4).for_each(|(k, d)| one(k.prefix(), &d)),
            Afi::Ipv6 => self.v6.iter().for_each(|(k, d)| one(k.prefix(), &d)),
        }
        self.peers.insert(target, st);
    }

    /// Drops unused attribute sets once the interner has doubled (its export
    /// memo holds references, so it is emptied first and refills on demand).
    pub(super) fn maintain(&mut self) {
        // hashbrown tables never shrink on removal: once a peer with a large
        // table has gone, its capacity would stay resident for good (issue
        // 10: 114 MB after 1M routes were withdrawn). The prefix tables
        // shrink shard by shard as prefixes leave (`ShardedTable`); the
        // refusal store here.
        self.filtered.shrink_if_sparse();
        if self.interner.purge_due() {
            self.interner.purge();
        }
    }
}

/// Sends one best-path move to every up peer that negotiated the family: the
/// export of the old best path is what the peer has (see `export`), the export
/// of the new one is what it should have; differences go out.
fn propagate(
    peers: &mut FastMap<u32, PeerState>,
    interner: &mut Interner,
    cfg: &RibConfig,
    ectx: ExportCtx<'_>,
    m: &BestMove,
    ob: &mut OutboundBuilder,
) {
    let family = m.prefix.family();
    let (old_src, new_src) = {
        let ctx = DecisionCtx {
            local_asn: cfg.local_asn,
            router_id: cfg.router_id,
            max_paths: 1,
            peers,
        };
        (
            m.old_best.as_ref().map(|p| ctx.source(p.source)),
            m.new_best.as_ref().map(|p| ctx.source(p.source)),
        )
    };
    for (&id, st) in peers.iter_mut() {
        if !st.up || !st.info.families.contains(&family) {
            continue;
        }
        let old = match (&m.old_best, &old_src) {
            (Some(p), Some(s)) => export::export(id, st, p, s, m.prefix, ectx, interner),
            _ => None,
        };
        let new = match (&m.new_best, &new_src) {
            (Some(p), Some(s)) => export::export(id, st, p, s, m.prefix, ectx, interner),
            _ => None,
        };
        send_diff(ob, id, st, m.prefix, old, new);
    }
}

/// What changes `id`'s view of `prefix` from the export `old` to `new`:
/// a withdrawal, an announcement or nothing; keeps its counter.
pub(super) fn send_diff(
    ob: &mut OutboundBuilder,
    id: u32,
    st: &mut PeerState,
    prefix: Prefix,
    old: Option<Arc<PathAttributes>>,
    new: Option<Arc<PathAttributes>>,
) {
    match (old, new) {
        (None, None) => {}
        (Some(_), None) => {
            ob.withdraw(id, prefix);
            st.advertised = st.advertised.saturating_sub(1);
            if matches!(prefix, Prefix::V6(_)) {
                st.advertised_v6 = st.advertised_v6.saturating_sub(1);
            }
        }
        (None, Some(n)) => {
            ob.announce(id, prefix, &n);
            st.advertised += 1;
            if matches!(prefix, Prefix::V6(_)) {
                st.advertised_v6 += 1;
            }
        }
        (Some(o), Some(n)) => {
            if !Arc::ptr_eq(&o, &n) && *o != *n {
                ob.announce(id, prefix, &n);
            }
        }
    }
}
