//! Re-dumps and adoption: the reconciler's full view of the kernel
//! ([`Reconciler::resync`]: links, addresses, nexthop objects, then the
//! routes of its table, rebuilding the slots' kernel side and `foreign`,
//! marking desired prefixes that are gone or changed dirty) and the
//! `adopted` set it fills — routes of ours nothing desires, kept until
//! `converged` ([`Reconciler::prune_adopted`] keeps only what is still to
//! be swept; [`Reconciler::sweep_strays`] dirties the strays after a
//! re-dump once converged, for `apply` to delete).

use std::collections::{HashMap, HashSet};

use crate::nl::consts::{RTM_GETADDR, RTM_GETLINK, RTM_GETROUTE};
use crate::nl::{self, Decoded, DecodedRoute, Part};

use super::hash::{FastMap, FastSet};
use super::monitor::addr_key;
use super::{Link, Reconciler};

impl Reconciler {
    /// Re-dump links and routes and rebuild `kernel` and `foreign`.
    pub(super) async fn resync(&mut self) -> std::io::Result<()> {
        self.counters.resyncs += 1;
        // Encoded requests go first, so the dump sees them.
        if self.out.len() > 0 {
            self.write().await;
        }
        // Notifications queued before the dump are superseded by it.
        let mut scratch = Vec::new();
        let _ = self.mon.drain_into(&mut scratch);
        drop(scratch);
        let mut links = HashMap::new();
        let req = nl::dump::request(RTM_GETLINK, &nl::build::ifinfomsg(0, 0, 0));
        self.cmd
            .dump(&req, &mut |part| match part {
                Part::Restart => links.clear(),
                Part::Msg(m) => {
                    if let Ok(Decoded::Link { new: true, link }) = nl::decode(&m)
                        && !link.name.is_empty()
                    {
                        let up = link.up();
                        links.insert(
                            link.index,
                            Link {
                                name: link.name,
                                up,
                            },
                        );
                    }
                }
            })
            .await?;
        self.by_name = links.iter().map(|(i, l)| (l.name.clone(), *i)).collect();
        self.links = links;
        // Both families (AF_UNSPEC).
        let mut addressed = HashSet::new();
        let req = nl::dump::request(RTM_GETADDR, &nl::build::ifaddrmsg(0, 0, 0, 0));
        self.cmd
            .dump(&req, &mut |part| match part {
                Part::Restart => addressed.clear(),
                Part::Msg(m) => {
                    if let Ok(Decoded::Addr { new: true, addr }) = nl::decode(&m) {
                        addressed.extend(addr_key(&addr));
                    }
                }
            })
            .await?;
        self.addressed = addressed;
        self.dump_nexthops().await;
        let mut kernel = FastMap::default();
        let mut foreign = FastSet::default();
        let links = &self.links;
        let (table, proto, routes) = (self.table, self.proto, &self.routes);
        let req = nl::dump::request(RTM_GETROUTE, &nl::build::rtmsg(0, 0, 0, 0, 0, 0, 0));
        self.cmd
            .dump(&req, &mut |part| {
                let m = match part {
                    Part::Restart => {
                        kernel.clear();
                        foreign.clear();
                        return;
                    }
                    Part::Msg(m) => m,
                };
                let Ok(Decoded::Route { new: true, route }) = nl::decode(&m) else {
                    return;
                };
                let Some(d) =
                    DecodedRoute::decode(&route, &|i| links.get(&i).map(|l| l.name.clone()))
                else {
                    return;
                };
                if d.table != table || !d.default_metric() || d.tos != 0 {
                    return;
                }
                if d.protocol == proto {
                    if let Some(route) = d.route {
                        kernel.insert(d.prefix, routes.intern(route));
                    }
                } else {
                    foreign.insert(d.prefix);
                }
            })
            .await?;
        for (p, want) in self.slots.desired_iter() {
            match kernel.get(&p) {
                Some(k) if want.satisfied_by(k) => {}
                _ => {
                    if self.slots.kernel(&p).is_some_and(|k| want.satisfied_by(k)) {
                        // It was installed and is gone or changed.
                        self.restoring.insert(p);
                    }
                    self.dirty.push(p);
                }
            }
        }
        for p in kernel.keys() {
            if !self.slots.is_desired(p) && !self.slots.in_kernel(p) {
                self.adopted.insert(*p);
            }
        }
        self.slots.replace_kernel(kernel);
        self.prune_adopted();
        self.foreign = foreign;
        if !self.expected.is_empty() {
            // Seen installed: the caller's write is in.
            let slots = &self.slots;
            self.expected.retain(|p| !slots.is_installed(p));
        }
        self.vteps.dirty = true;
        Ok(())
    }

    /// Keep in `adopted` only what is still to be swept: prefixes whose
    /// route of ours the kernel holds and, once converged, that are not
    /// desired (before, a desired one stays adopted: removed again before
    /// `converged`, it is kept until then, not deleted by `unset`). While
    /// `adopted` is not empty every buffer is settled request by request
    /// ([`Reconciler::write`]); a route taken over by a desire, or by someone
    /// else, left there would keep that for the life of the process.
    pub(super) fn prune_adopted(&mut self) {
        if self.adopted.is_empty() {
            return;
        }
        let (slots, converged) = (&self.slots, self.converged);
        self.adopted
            .retain(|p| slots.in_kernel(p) && !(converged && slots.is_desired(p)));
    }

    /// After a re-dump once converged (`run`, with the commands queued
    /// during the dump taken): strays of ours that are not desired go.
    pub(super) fn sweep_strays(&mut self) {
        let strays = self
            .slots
            .iter()
            .filter(|(_, d, k)| d.is_none() && k.is_some())
            .map(|(p, _, _)| p);
        self.dirty.extend(strays);
    }
}
