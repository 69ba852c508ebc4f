//! A peer's filters changing while its session stays up (SIGHUP).
//!
//! The Adj-RIB-Out is not stored (see `export`): what the peer was sent is
//! the export of each best path under the *old* export filter. So the change
//! runs every Loc-RIB prefix of the peer's families through `export` twice,
//! old filter then new, and sends the differences — the same diff a best-path
//! change sends. The import side cannot be redone here: routes the old filter
//! changed are stored changed, and routes it rejected only as filtered. The
//! caller asks the peer for its routes again (ROUTE-REFRESH, RFC 2918); they
//! come back through [`Rib::apply_update`] under the new filter.
//!
//! [`Rib::set_ebgp_requires_policy`] is the same diff for every external
//! peer, old rule then new.

use super::*;

impl Rib {
    /// Sets `peer`'s filters. Returns the UPDATEs that bring the peer's view
    /// in line with the new export filter, and whether the import filter
    /// changed (then the caller should send ROUTE-REFRESH).
    pub fn set_peer_filters(
        &mut self,
        peer: PeerId,
        import: Option<Arc<Filter>>,
        export: Option<Arc<Filter>>,
    ) -> (RibOutput, bool) {
        let Some(st) = self.peers.get_mut(&peer.0) else {
            return (RibOutput::default(), false);
        };
        let import_changed = st.info.import_filter != import;
        st.info.import_filter = import;
        let old = std::mem::replace(&mut st.info.export_filter, export.clone());
        let (up, families) = (st.up, st.info.families.clone());
        let mut ob = OutboundBuilder::default();
        if up && old != export {
            let req = self.cfg.ebgp_requires_policy;
            for f in families {
                self.each_export(peer.0, f, |prefix, st, export_to| {
                    st.info.export_filter = old.clone();
                    let o = export_to(st, req);
                    st.info.export_filter = export.clone();
                    let n = export_to(st, req);
                    ops::send_diff(&mut ob, peer.0, st, prefix, o, n);
                });
            }
        }
        let out = RibOutput {
            best_changes: Vec::new(),
            outbound: ob.finish(),
        };
        self.maintain();
        (out, import_changed && up)
    }

    /// Turns [`RibConfig::ebgp_requires_policy`] on or off with sessions up:
    /// every external peer's view is brought in line (eBGP-learned routes
    /// withdrawn from, or announced to, the peers whose filter does not
    /// explicitly accept them).
    pub fn set_ebgp_requires_policy(&mut self, on: bool) -> RibOutput {
        let old = self.cfg.ebgp_requires_policy;
        self.cfg.ebgp_requires_policy = on;
        let mut ob = OutboundBuilder::default();
        if old != on {
            let targets: Vec<(u32, Vec<AddressFamily>)> = self
                .peers
                .iter()
                .filter(|(_, st)| st.up && st.is_ebgp())
                .map(|(id, st)| (*id, st.info.families.clone()))
                .collect();
            for (id, families) in targets {
                for f in families {
                    self.each_export(id, f, |prefix, st, export_to| {
                        let o = export_to(st, old);
                        let n = export_to(st, on);
                        ops::send_diff(&mut ob, id, st, prefix, o, n);
                    });
                }
            }
        }
        let out = RibOutput {
            best_changes: Vec::new(),
            outbound: ob.finish(),
        };
        self.maintain();
        out
    }
}
