//! The VXLAN forwarding (FDB) and neighbour entries of remote VTEPs, owned
//! by the reconciler like its routes (`crate::vxlan` has the derivation).
//!
//! Desired state: every desired route's next hop on [`VXLAN_DEV`] or
//! [`VXLAN6_DEV`] is a remote VTEP; [`Vteps::note`] counts the routes
//! through each as desires come and go (the hot path: a string compare per
//! next hop that names a device). Kernel state: dumped on each sync, which
//! runs when the desired set changes, when a neighbour notification names
//! one of our devices (someone deleted or changed an entry), when one of
//! our devices appears, after a full re-dump, at convergence, and every
//! second after a refused write.
//!
//! Ours, in the kernel, are only the permanent entries on our two devices
//! whose MAC is the one derived from their address: anything else there
//! (an operator's entry, the kernel's own) is never touched. Entries of ours
//! found at the first sync and not desired are adopted: kept until the
//! caller says `converged` (as routes are), then swept; entries we
//! installed go as soon as the last route through their VTEP goes.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Instant;

use super::Reconciler;
use crate::encap::{VXLAN_DEV, VXLAN6_DEV};
use crate::nl::consts::{AF_BRIDGE, NUD_PERMANENT, RTM_GETNEIGH};
use crate::nl::rtnl::{Outcome, Rtnl};
use crate::nl::{self, Decoded, NeighView, Part};
use crate::types::KernelRoute;
use crate::vxlan::{Entry, vtep_link_local, vtep_mac};

const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Remote VTEPs wanted, and the bookkeeping of their entries.
#[derive(Default)]
pub(super) struct Vteps {
    /// Routes desired through each (device, remote address).
    want: HashMap<(&'static str, IpAddr), usize>,
    /// Entries of ours found at the first sync, not desired then.
    adopted: HashSet<Entry>,
    /// Entries of ours seen in the kernel at the last sync.
    seen: HashSet<Entry>,
    synced_once: bool,
    /// Something may differ: sync at the next turn of the loop.
    pub(super) dirty: bool,
    /// A write was refused: sync again at the next retry tick.
    pub(super) retry: bool,
    /// Entries put back after someone removed them.
    pub(super) restored: u64,
    rtnl: Option<Rtnl>,
}

/// Our device name for a next hop's `dev`, if it is one of ours.
fn ours(dev: &str) -> Option<&'static str> {
    [VXLAN_DEV, VXLAN6_DEV].into_iter().find(|d| *d == dev)
}

impl Vteps {
    /// Count `route`'s VXLAN next hops in (`add`) or out.
    pub(super) fn note(&mut self, route: &KernelRoute, add: bool) {
        let KernelRoute::Unicast { next_hops } = route else {
            return;
        };
        for nh in next_hops {
            let Some(dev) = nh.dev.as_deref().and_then(ours) else {
                continue;
            };
            let key = (dev, nh.gateway);
            if add {
                let n = self.want.entry(key).or_insert(0);
                *n += 1;
                self.dirty |= *n == 1;
            } else if let Some(n) = self.want.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    self.want.remove(&key);
                    self.dirty = true;
                }
            }
        }
    }

    /// Remote VTEPs desired now.
    pub(super) fn wanted(&self) -> usize {
        self.want.len()
    }
}

/// The entry a dumped or notified neighbour message describes, when it is
/// one of ours on device `ifindex` (permanent, derived MAC).
fn entry_of(n: &NeighView<'_>) -> Option<Entry> {
    if n.state != NUD_PERMANENT {
        return None;
    }
    let dst = n.dst?;
    let mac: [u8; 6] = n.lladdr?.try_into().ok()?;
    let ifindex = n.ifindex;
    const INET: u8 = libc::AF_INET as u8;
    const INET6: u8 = libc::AF_INET6 as u8;
    match (n.family, dst) {
        (AF_BRIDGE, remote) if mac == vtep_mac(remote) => Some(Entry::Fdb { ifindex, remote }),
        (INET, addr) if mac == vtep_mac(addr) => Some(Entry::Neigh { ifindex, addr, mac }),
        // Over IPv6 the neighbour is the link-local address of a derived MAC.
        (INET6, IpAddr::V6(ll)) if mac[..2] == [0x0e, 0x76] && ll == vtep_link_local(mac) => {
            Some(Entry::Neigh {
                ifindex,
                addr: dst,
                mac,
            })
        }
        _ => None,
    }
}

impl Reconciler {
    /// Indexes of our VXLAN devices that exist now.
    fn vxlan_indexes(&self) -> Vec<(&'static str, u32)> {
        [VXLAN_DEV, VXLAN6_DEV]
            .into_iter()
            .filter_map(|d| self.by_name.get(d).map(|i| (d, *i)))
            .collect()
    }

    /// A neighbour notification: sync when it concerns one of our devices.
    pub(super) fn neigh_event(&mut self, n: &NeighView<'_>) {
        if self.vxlan_indexes().iter().any(|(_, i)| *i == n.ifindex) {
            self.vteps.dirty = true;
        }
    }

    /// Bring the kernel's entries of ours to the desired set; a repair is
    /// published at once (statistics are otherwise published every second).
    pub(super) async fn sync_vteps(&mut self) {
        let restored = self.vteps.restored;
        self.write_vteps().await;
        if self.vteps.restored != restored {
            self.publish();
        }
    }

    async fn write_vteps(&mut self) {
        self.vteps.dirty = false;
        let devs = self.vxlan_indexes();
        if devs.is_empty() {
            // No device: nothing of ours can exist; routes wait for it.
            return;
        }
        let mut kernel = HashSet::new();
        for family in [libc::AF_UNSPEC as u8, AF_BRIDGE] {
            let req = nl::dump::request(RTM_GETNEIGH, &nl::build::ndmsg(family, 0, 0));
            let mut found = Vec::new();
            let got = self
                .cmd
                .dump(&req, &mut |part| match part {
                    Part::Restart => found.clear(),
                    Part::Msg(m) => {
                        if let Ok(Decoded::Neigh { new: true, neigh }) = nl::decode(&m) {
                            found.extend(entry_of(&neigh));
                        }
                    }
                })
                .await;
            match got {
                Ok(()) => kernel.extend(found),
                Err(e) => {
                    tracing::warn!("dumping VXLAN neighbour entries failed: {e}");
                    self.vteps.retry = true;
                    return;
                }
            }
        }
        kernel.retain(|e| {
            let (Entry::Neigh { ifindex, .. } | Entry::Fdb { ifindex, .. }) = e;
            devs.iter().any(|(_, i)| i == ifindex)
        });
        let mut desired = HashSet::new();
        for (dev, remote) in self.vteps.want.keys() {
            if let Some((_, ifindex)) = devs.iter().find(|(d, _)| d == dev) {
                let (ifindex, remote) = (*ifindex, *remote);
                desired.insert(Entry::neigh(ifindex, remote));
                desired.insert(Entry::Fdb { ifindex, remote });
            }
        }
        if !self.vteps.synced_once {
            self.vteps.synced_once = true;
            self.vteps.adopted = kernel.difference(&desired).copied().collect();
        }
        let converged = self.converged;
        let v = &mut self.vteps;
        v.adopted
            .retain(|e| !desired.contains(e) && kernel.contains(e));
        let mut adds: Vec<Entry> = desired.difference(&kernel).copied().collect();
        let mut dels: Vec<Entry> = kernel
            .difference(&desired)
            .filter(|e| converged || !v.adopted.contains(e))
            .copied()
            .collect();
        adds.sort();
        dels.sort();
        let restoring = adds.iter().filter(|e| v.seen.contains(e)).count();
        if restoring > 0 {
            v.restored += restoring as u64;
            tracing::info!(
                entries = restoring,
                "VXLAN entries of ours were removed by someone else: put back"
            );
        }
        v.seen = kernel.intersection(&desired).copied().collect();
        if adds.is_empty() && dels.is_empty() {
            return;
        }
        let rtnl = match &mut v.rtnl {
            Some(r) => r,
            None => match Rtnl::open(0) {
                Ok(r) => v.rtnl.insert(r),
                Err(e) => {
                    tracing::warn!("opening a netlink socket for VXLAN entries: {e}");
                    v.retry = true;
                    return;
                }
            },
        };
        let msgs = adds
            .iter()
            .map(|e| e.msg(true))
            .chain(dels.iter().map(|e| e.msg(false)))
            .collect();
        let what: Vec<(Entry, bool)> = adds
            .iter()
            .map(|e| (*e, true))
            .chain(dels.iter().map(|e| (*e, false)))
            .collect();
        v.retry = false;
        match rtnl.transact(msgs, Instant::now() + TIMEOUT) {
            Ok(outcomes) => {
                for ((e, add), o) in what.iter().zip(outcomes) {
                    match o {
                        Outcome::Ok(_) => {
                            if *add {
                                v.seen.insert(*e);
                            }
                        }
                        // Already gone: done.
                        Outcome::Err(errno, _) if !*add && errno == libc::ENOENT => {}
                        Outcome::Err(errno, message) => {
                            tracing::warn!(
                                entry = ?e,
                                add,
                                error = %crate::error::errno_words(errno),
                                kernel = message.as_deref().unwrap_or(""),
                                "VXLAN entry refused; retrying every second"
                            );
                            v.retry = true;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!("writing VXLAN entries failed: {e}; retrying");
                v.rtnl = None;
                v.retry = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NextHop;

    fn via(gw: &str, dev: Option<&str>) -> KernelRoute {
        KernelRoute::Unicast {
            next_hops: vec![NextHop {
                gateway: gw.parse().unwrap(),
                dev: dev.map(str::to_string),
                onlink: dev.is_some(),
            }],
        }
    }

    /// Event table: (route, add?, remote VTEPs wanted after, dirty after).
    #[test]
    fn desired_vteps_follow_routes() {
        let a = via("198.51.100.13", Some(VXLAN_DEV));
        let b = via("2001:db8:2::13", Some(VXLAN6_DEV));
        let plain = via("192.0.2.12", None);
        let tunl = via("198.51.100.13", Some("tunl0"));
        let table: &[(&KernelRoute, bool, usize, bool)] = &[
            (&plain, true, 0, false),
            (&tunl, true, 0, false),
            (&a, true, 1, true),
            // A second route through the same VTEP changes nothing.
            (&a, true, 1, false),
            (&b, true, 2, true),
            (&a, false, 2, false),
            // The last route through it: the VTEP goes.
            (&a, false, 1, true),
            (&b, false, 0, true),
            // Removing what was never counted is harmless.
            (&b, false, 0, false),
        ];
        let mut v = Vteps::default();
        for (i, (route, add, wanted, dirty)) in table.iter().enumerate() {
            v.dirty = false;
            v.note(route, *add);
            assert_eq!((v.wanted(), v.dirty), (*wanted, *dirty), "row {i}");
        }
    }

    #[test]
    fn only_permanent_entries_with_the_derived_mac_are_ours() {
        let remote: IpAddr = "198.51.100.13".parse().unwrap();
        let derived = vtep_mac(remote);
        let mac = &derived[..];
        fn msg(family: u8, state: u16, mac: &[u8]) -> NeighView<'_> {
            NeighView {
                family,
                ifindex: 9,
                state,
                flags: 0,
                dst: "198.51.100.13".parse().ok(),
                lladdr: Some(mac),
            }
        }
        const INET: u8 = libc::AF_INET as u8;
        let p = NUD_PERMANENT;
        assert_eq!(entry_of(&msg(INET, p, mac)), Some(Entry::neigh(9, remote)));
        assert_eq!(
            entry_of(&msg(AF_BRIDGE, p, mac)),
            Some(Entry::Fdb { ifindex: 9, remote })
        );
        // NUD_REACHABLE: the kernel's own entry, not ours.
        assert_eq!(entry_of(&msg(INET, 0x02, mac)), None);
        assert_eq!(entry_of(&msg(INET, p, &[2, 0, 0, 0, 0, 1])), None);
    }
}
