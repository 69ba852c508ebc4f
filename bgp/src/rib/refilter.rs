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
use crate::types::{Afi, Ipv4Prefix, Ipv6Prefix};

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
        let Some(mut st) = self.peers.remove(&peer.0) else {
            return (RibOutput::default(), false);
        };
        let import_changed = st.info.import_filter != import;
        st.info.import_filter = import;
        let old = std::mem::replace(&mut st.info.export_filter, export.clone());
        let mut ob = OutboundBuilder::default();
        if st.up && old != export {
            let ectx = export::ExportCtx::new(&self.cfg);
            let ctx = DecisionCtx {
                local_asn: self.cfg.local_asn,
                router_id: self.cfg.router_id,
                max_paths: 1,
                peers: &self.peers,
            };
            let families = st.info.families.clone();
            let mut one = |prefix: Prefix, d: &Dest, interner: &mut Interner| {
                let Some(best) = d.best() else { return };
                let src = ctx.source(best.source);
                st.info.export_filter = old.clone();
                let o = export::export(peer.0, &mut st, best, &src, prefix, ectx, interner);
                st.info.export_filter = export.clone();
                let n = export::export(peer.0, &mut st, best, &src, prefix, ectx, interner);
                match (o, n) {
                    (None, None) => {}
                    (Some(_), None) => {
                        ob.withdraw(peer.0, prefix);
                        st.advertised = st.advertised.saturating_sub(1);
                    }
                    (None, Some(n)) => {
                        ob.announce(peer.0, prefix, &n);
                        st.advertised += 1;
                    }
                    (Some(o), Some(n)) => {
                        if !Arc::ptr_eq(&o, &n) && *o != *n {
                            ob.announce(peer.0, prefix, &n);
                        }
                    }
                }
            };
            for f in families {
                match f.afi {
                    Afi::Ipv4 => {
                        for (k, d) in &self.v4 {
                            one(Ipv4Prefix::prefix(*k), d, &mut self.interner);
                        }
                    }
                    Afi::Ipv6 => {
                        for (k, d) in &self.v6 {
                            one(Ipv6Prefix::prefix(*k), d, &mut self.interner);
                        }
                    }
                }
            }
        }
        self.peers.insert(peer.0, st);
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
