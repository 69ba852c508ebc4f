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
            for f in families {
                self.each_export(peer.0, f, |prefix, st, export_to| {
                    st.info.export_filter = old.clone();
                    let o = export_to(st);
                    st.info.export_filter = export.clone();
                    let n = export_to(st);
                    ops::send_diff(&mut ob, peer.0, st, prefix, o, n);
                });
            }
        }
        let out = RibOutput {
            best_changes: Vec::new(),
            outbound: ob.finish(),
        };
        self.maintain();
        (
            out,
            import_changed && self.peers.get(&peer.0).is_some_and(|s| s.up),
        )
    }
}
