//! IPAM: which container owns which addresses of this node's blocks (both
//! families, several blocks each: `node.pod_cidr`).
//!
//! Owns the allocations (container id → address) and nothing else: no netlink,
//! no BGP. Data flow: the API's attach handler calls [`Ipam::allocate_pending`]
//! (address decided, journal record written), runs [`Pending::sync`] (the
//! `fdatasync`) on another thread while it attaches the veth, and
//! [`Ipam::commit`]s before answering — the allocation is durable before
//! anyone learns of it ([`Ipam::allocate`] does all three in a row); detach
//! calls [`Ipam::release`]. At start-up the agent opens the state directory
//! ([`Ipam::open`]), asks the dataplane what is attached and calls
//! [`Ipam::reconcile`]. The caller serialises access (`&mut self`; one owner task
//! or a mutex).
//!
//! Guarantees:
//! - Never the same address twice: every change is on disk (one checksummed
//!   journal record + `fdatasync` — see `store` and `journal`) before the
//!   caller learns of it, so a crash between allocation and attach leaves the
//!   address allocated; the next start-up's `reconcile` frees it only if
//!   nothing is attached with it. One exception, the attach's: it hands its
//!   address out once the record is written and settles the `fdatasync`
//!   later ([`Ipam::settle`]); an agent crash keeps a written record (page
//!   cache), and what can lose it (a kernel crash, power loss) also removes
//!   what was attached with it, so `reconcile` ends the same way. A torn last
//!   record (crash mid-append) is dropped; damage anywhere else is corruption.
//! - An id holds at most one address per family ([`Family`]); each family
//!   is allocated on its own ([`Want`]).
//! - No immediate re-use: a round-robin cursor per family (persisted) walks
//!   that family's blocks in the order configured (so they fill in order), so
//!   a just-released address is handed out again only after every other free
//!   one — stale ARP/neighbour entries and routes elsewhere expire meanwhile.
//! - Every address of an IPv4 block is usable, the network and broadcast
//!   addresses included: each container gets a /32 on a point-to-point veth, so
//!   there is no subnet broadcast (Calico does the same). An IPv6 block's
//!   first address, its subnet-router anycast address (RFC 4291 §2.6.1), is
//!   never handed out (nor accepted as a static address). The `reserved`
//!   addresses are never handed out. `tunl0`'s address (IP-in-IP) comes from
//!   [`Ipam::allocate_tunnel`]: persisted like a container's, never freed by
//!   `reconcile`, the first free IPv4 address.
//! - Requested (static) addresses are honoured when free and not reserved, even
//!   outside the block (the caller then advertises that /32).
//! - A corrupt state file or journal is an error ([`IpamError::Corrupt`]): the agent must
//!   refuse to start rather than risk handing out an address twice.

mod journal;
mod pools;
mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnetwork::IpNetwork;

use journal::Record;
pub use pools::Family;
use pools::{Pools, wrap_add};
use store::{Snapshot, Store};

/// What an allocation asks for: any free address of a family, or this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Any(Family),
    Static(IpAddr),
}

impl Want {
    pub fn family(self) -> Family {
        match self {
            Want::Any(f) => f,
            Want::Static(ip) => Family::of(ip),
        }
    }
}

impl From<Family> for Want {
    fn from(f: Family) -> Want {
        Want::Any(f)
    }
}

impl From<IpAddr> for Want {
    fn from(ip: IpAddr) -> Want {
        Want::Static(ip)
    }
}

impl From<Ipv4Addr> for Want {
    fn from(ip: Ipv4Addr) -> Want {
        Want::Static(IpAddr::V4(ip))
    }
}

impl From<Ipv6Addr> for Want {
    fn from(ip: Ipv6Addr) -> Want {
        Want::Static(IpAddr::V6(ip))
    }
}

/// Allocation id of the `tunl0` address (see [`Ipam::allocate_tunnel`]). Ids
/// starting with [`SYSTEM_PREFIX`] belong to the agent itself: `reconcile` keeps
/// them, `allocate`/`release` refuse them as container ids.
pub const TUNNEL_ID: &str = "tortie:tunl0";
/// Prefix of the agent's own allocation ids.
pub const SYSTEM_PREFIX: &str = "tortie:";
/// Longest accepted container id (CNI ids are 64 hex characters; be generous).
const ID_MAX: usize = 256;

/// Everything that can go wrong in IPAM, with the context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    #[error(
        "address pool {pool} is exhausted: all {size} addresses are allocated or reserved ({allocated} addresses allocated)"
    )]
    Exhausted {
        pool: String,
        size: u128,
        allocated: usize,
    },
    #[error("node.pod_cidr has no {} block", family.name())]
    NoPool { family: Family },
    #[error("address {address} is already allocated to {owner:?}")]
    InUse { address: IpAddr, owner: String },
    #[error("address {address} is reserved and cannot be given to a container")]
    Reserved { address: IpAddr },
    #[error(
        "address {address} cannot be given to a container (unspecified, loopback, multicast, broadcast or an IPv6 block's subnet-router anycast address)"
    )]
    Unusable { address: IpAddr },
    #[error("container {id:?} already has address {current}; {requested} was requested")]
    Conflict {
        id: String,
        current: IpAddr,
        requested: IpAddr,
    },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "IPAM state {} is corrupt: {reason}. Refusing to continue, which could hand out an address twice: restore the file from a backup, or move it away only if no container of this node is running",
        path.display()
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("IPAM state directory is in use by another process (lock {} is held): is another tortie running with the same state.dir?", path.display())]
    Locked { path: PathBuf },
}

impl IpamError {
    fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        IpamError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What [`Ipam::reconcile`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Allocations whose address is attached: kept.
    pub kept: Vec<(String, IpAddr)>,
    /// Allocations with nothing attached (e.g. the agent died between allocate
    /// and attach, or a container vanished while it was down): freed.
    pub released: Vec<(String, IpAddr)>,
    /// Attached addresses IPAM did not know: recorded under the attachment's key
    /// so they are never handed out again.
    pub adopted: Vec<(String, IpAddr)>,
    /// Attached addresses IPAM could not adopt (reserved, unusable, or the key is
    /// already allocated another address) — the caller should look at them.
    pub conflicts: Vec<(String, IpAddr)>,
}

/// An allocation written but maybe not yet on disk
/// ([`Ipam::allocate_pending`]): [`Pending::sync`] it, then [`Ipam::commit`].
#[derive(Debug)]
#[must_use = "the allocation is durable only once synced and committed"]
pub struct Pending {
    address: IpAddr,
    /// The id and the cursor before, to undo a failed sync; `None` when the
    /// id already had its address.
    undo: Option<(String, u128)>,
    /// The journal, when the record still needs its `fdatasync`.
    file: Option<Arc<File>>,
    /// That `fdatasync`'s outcome, once [`Pending::sync`] ran.
    outcome: Option<std::io::Result<()>>,
}

impl Pending {
    fn durable(address: IpAddr) -> Pending {
        Pending {
            address,
            undo: None,
            file: None,
            outcome: None,
        }
    }

    /// The address decided (not to be handed out before [`Ipam::commit`]).
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// Waits until the record is on disk (`fdatasync`; blocking — run it
    /// off the async runtime). Does nothing when there is nothing to sync.
    pub fn sync(mut self) -> Pending {
        if let Some(file) = self.file.as_ref().filter(|_| self.outcome.is_none()) {
            let started = std::time::Instant::now();
            self.outcome = Some(file.sync_data());
            tracing::debug!(
                elapsed_us = started.elapsed().as_micros() as u64,
                "ipam change synced"
            );
        }
        self
    }

    /// The address, the undo of its allocation, and the record's
    /// `fdatasync` outcome — joined here if [`Pending::sync`] never ran;
    /// `None` when nothing needed a sync ([`Ipam::commit`] and
    /// [`Ipam::settle`] differ only in what a failed sync does).
    fn joined(self) -> (IpAddr, Option<(String, u128)>, Option<std::io::Result<()>>) {
        let Pending {
            address,
            undo,
            file,
            outcome,
        } = self;
        let outcome = file.map(|file| outcome.unwrap_or_else(|| file.sync_data()));
        (address, undo, outcome)
    }
}

/// The node's allocations, persisted under the state directory.
#[derive(Debug)]
pub struct Ipam {
    store: Store,
    pools: Pools,
    reserved: BTreeSet<IpAddr>,
    /// The one record of who holds what: address → id.
    by_addr: BTreeMap<IpAddr, String>,
    /// Index of `by_addr`: (id, family) → address.
    by_id: BTreeMap<(String, Family), IpAddr>,
    /// Per family ([`Family::index`]): offset in that family's blocks where
    /// the next search starts.
    cursors: [u128; 2],
}

impl Ipam {
    /// Opens (creating if needed) the state under `state_dir`, locks it for this
    /// process and loads the saved allocations (snapshot + journal). `pools`
    /// are the node's blocks in order, both families. Allocations outside
    /// them (static ones, or from a previous block) are kept. The state is
    /// compacted at once (new snapshot, empty journal), so an unwritable
    /// directory fails here, not at the first container.
    pub fn open(
        state_dir: &Path,
        pools: &[IpNetwork],
        reserved: &[IpAddr],
    ) -> Result<Ipam, IpamError> {
        let mut store = Store::open(state_dir)?;
        let saved = store.load()?;
        let mut ipam = Ipam {
            store,
            pools: Pools::new(pools),
            reserved: reserved.iter().copied().collect(),
            by_id: BTreeMap::new(),
            by_addr: BTreeMap::new(),
            cursors: [0; 2],
        };
        if let Some(snap) = saved {
            for f in [Family::V4, Family::V6] {
                // A cursor only means something for the blocks it was saved with.
                let saved_pools: Vec<String> = snap
                    .pools
                    .iter()
                    .filter(|p| {
                        p.parse::<IpNetwork>()
                            .is_ok_and(|n| Family::of(n.ip()) == f)
                    })
                    .cloned()
                    .collect();
                let cursor = snap.cursors[f.index()];
                if saved_pools == ipam.pools.text(f) && cursor < ipam.pools.size(f) {
                    ipam.cursors[f.index()] = cursor;
                }
            }
            for (address, id) in snap.allocations {
                ipam.insert(id, address);
            }
        }
        ipam.compact()?;
        Ok(ipam)
    }

    /// The address of `container_id` in the family of `want`, allocating
    /// one when it has none.
    ///
    /// Idempotent: the same id gets the same address (also when it requests
    /// that address again). A static address is honoured when free, usable
    /// and not reserved, inside the blocks or outside them. The allocation
    /// is on disk when this returns.
    pub fn allocate(
        &mut self,
        container_id: &str,
        want: impl Into<Want>,
    ) -> Result<IpAddr, IpamError> {
        let pending = self.allocate_pending(container_id, want)?;
        self.commit(pending.sync())
    }

    /// [`Ipam::allocate`] in two halves, so the disk wait can overlap other
    /// work: decides the address and writes the journal record (`pwrite`,
    /// no `fdatasync`). The address is taken in memory at once; run
    /// [`Pending::sync`] (blocking, any thread — e.g. while the veth is
    /// created) and hand the result to [`Ipam::commit`] before telling
    /// anyone the address — or, for an attach that answers first, to
    /// [`Ipam::settle`] later. Until then the allocation may not survive a
    /// kernel crash (start-up `reconcile` adopts an address that got
    /// attached meanwhile).
    /// A `Pending` dropped uncommitted stays allocated; its record is synced
    /// before the next one is written.
    pub fn allocate_pending(
        &mut self,
        container_id: &str,
        want: impl Into<Want>,
    ) -> Result<Pending, IpamError> {
        check_container_id(container_id)?;
        self.allocate_as(container_id, want.into())
    }

    /// Finishes [`Ipam::allocate_pending`]: when the record's `fdatasync`
    /// failed, the allocation is undone (memory and cursor) and the error
    /// returned; else the address, now durable. A `Pending` that was never
    /// synced is synced here.
    pub fn commit(&mut self, pending: Pending) -> Result<IpAddr, IpamError> {
        let (address, undo, outcome) = pending.joined();
        let Some(outcome) = outcome else {
            return Ok(address);
        };
        if let Err(e) = self.store.synced(outcome) {
            if let Some((id, previous_cursor)) = undo {
                // Not (known to be) on disk: not allocated.
                self.remove(&id, Family::of(address));
                self.cursors[Family::of(address).index()] = previous_cursor;
            }
            return Err(e);
        }
        Ok(address)
    }

    /// Finishes an allocation whose address was already handed out before
    /// its record's `fdatasync` was joined (an attach answers once the
    /// record is written; the next user of the IPAM lock settles the sync,
    /// see `daemon::containers`). Unlike [`Ipam::commit`], a failed sync
    /// keeps the allocation — a container holds the address — and writes
    /// the state as a new snapshot at once, so it is durable either way.
    /// Err only when that snapshot fails too (the next change tries again).
    pub fn settle(&mut self, pending: Pending) -> Result<IpAddr, IpamError> {
        let (address, _, outcome) = pending.joined();
        let Some(outcome) = outcome else {
            return Ok(address);
        };
        if let Err(e) = self.store.synced(outcome) {
            tracing::warn!(%address, error = %e, "an answered allocation's record did not sync; writing a snapshot");
            self.compact()?;
        }
        Ok(address)
    }

    /// The `tunl0` address (IP-in-IP), allocated under [`TUNNEL_ID`] on first
    /// use and the same ever after: the first free IPv4 address.
    pub fn allocate_tunnel(&mut self) -> Result<Ipv4Addr, IpamError> {
        let pending = self.allocate_as(TUNNEL_ID, Want::Any(Family::V4))?;
        match self.commit(pending.sync())? {
            IpAddr::V4(a) => Ok(a),
            // allocate_as keeps to the family asked for.
            IpAddr::V6(_) => Err(IpamError::NoPool { family: Family::V4 }),
        }
    }

    /// Frees the `tunl0` address (when encapsulation is switched off).
    pub fn release_tunnel(&mut self) -> Result<Vec<IpAddr>, IpamError> {
        self.release_as(TUNNEL_ID)
    }

    fn allocate_as(&mut self, container_id: &str, want: Want) -> Result<Pending, IpamError> {
        let family = want.family();
        if let Some(&current) = self.by_id.get(&(container_id.to_string(), family)) {
            return match want {
                Want::Static(r) if r != current => Err(IpamError::Conflict {
                    id: container_id.to_string(),
                    current,
                    requested: r,
                }),
                _ => Ok(Pending::durable(current)),
            };
        }
        let previous_cursor = self.cursors[family.index()];
        let (address, cursor) = match want {
            Want::Static(address) => {
                self.check_static(address)?;
                (address, previous_cursor)
            }
            Want::Any(f) => self.next_free(f)?,
        };
        self.insert(container_id.to_string(), address);
        self.cursors[family.index()] = cursor;
        let record = Record::Allocate {
            id: container_id.to_string(),
            address,
            cursor,
        };
        match self.write(&record) {
            Ok(file) => Ok(Pending {
                address,
                undo: Some((container_id.to_string(), previous_cursor)),
                file,
                outcome: None,
            }),
            Err(e) => {
                // Not on disk: not allocated.
                self.remove(container_id, family);
                self.cursors[family.index()] = previous_cursor;
                Err(e)
            }
        }
    }

    /// Frees every address of `container_id` (one per family); empty when
    /// it had none.
    pub fn release(&mut self, container_id: &str) -> Result<Vec<IpAddr>, IpamError> {
        check_container_id(container_id)?;
        self.release_as(container_id)
    }

    fn release_as(&mut self, container_id: &str) -> Result<Vec<IpAddr>, IpamError> {
        let mut released = Vec::new();
        for f in [Family::V4, Family::V6] {
            if let Some(address) = self.release_one(container_id, f)? {
                released.push(address);
            }
        }
        Ok(released)
    }

    fn release_one(&mut self, id: &str, f: Family) -> Result<Option<IpAddr>, IpamError> {
        let Some(address) = self.remove(id, f) else {
            return Ok(None);
        };
        let record = Record::Release {
            id: id.to_string(),
            address,
        };
        if let Err(e) = self.persist(&record) {
            self.insert(id.to_string(), address);
            return Err(e);
        }
        Ok(Some(address))
    }

    /// Frees `address` whoever holds it (not the agent's own system ids);
    /// returns the id it was allocated to. For detaching a container adopted by
    /// [`Ipam::reconcile`] under its interface name rather than its id.
    pub fn release_address(&mut self, address: IpAddr) -> Result<Option<String>, IpamError> {
        let Some(id) = self.by_addr.get(&address).cloned() else {
            return Ok(None);
        };
        if id.starts_with(SYSTEM_PREFIX) {
            return Err(IpamError::InUse { address, owner: id });
        }
        self.release_one(&id, Family::of(address))?;
        Ok(Some(id))
    }

    /// The address of `container_id` in family `f`.
    pub fn get(&self, container_id: &str, f: Family) -> Option<IpAddr> {
        self.by_id.get(&(container_id.to_string(), f)).copied()
    }

    /// Every address of `container_id`, IPv4 first.
    pub fn addresses(&self, container_id: &str) -> Vec<IpAddr> {
        [Family::V4, Family::V6]
            .into_iter()
            .filter_map(|f| self.get(container_id, f))
            .collect()
    }

    /// Who holds `address`, if anyone.
    pub fn owner(&self, address: IpAddr) -> Option<&str> {
        self.by_addr.get(&address).map(String::as_str)
    }

    /// Every allocation, sorted by id (IPv4 before IPv6).
    pub fn allocations(&self) -> impl Iterator<Item = (&str, IpAddr)> + '_ {
        self.by_id.iter().map(|((id, _), a)| (id.as_str(), *a))
    }

    /// The blocks, in order.
    pub fn pools(&self) -> &[IpNetwork] {
        self.pools.all()
    }

    /// Where the state is kept (for logs).
    pub fn state_file(&self) -> &Path {
        self.store.path()
    }

    /// Aligns the allocations with what the kernel has attached, at start-up.
    ///
    /// `attached` lists (key, address) for every attached address, the key
    /// being the container id or the host interface name (a container with
    /// two families is listed twice). Matching is by address: an allocation
    /// whose address is attached is kept; one with nothing attached is freed
    /// (system ids such as [`TUNNEL_ID`] are always kept); an attached address
    /// IPAM does not know is adopted under its key. The result is persisted
    /// once (compacted), before returning; if that fails nothing changes.
    pub fn reconcile(
        &mut self,
        attached: &[(String, IpAddr)],
    ) -> Result<ReconcileReport, IpamError> {
        let before = (self.by_id.clone(), self.by_addr.clone());
        let attached_addrs: BTreeSet<IpAddr> = attached.iter().map(|(_, a)| *a).collect();
        let mut report = ReconcileReport::default();
        let allocations: Vec<(String, IpAddr)> = self
            .allocations()
            .map(|(i, a)| (i.to_string(), a))
            .collect();
        for (id, address) in allocations {
            if attached_addrs.contains(&address) || id.starts_with(SYSTEM_PREFIX) {
                report.kept.push((id, address));
            } else {
                self.remove(&id, Family::of(address));
                report.released.push((id, address));
            }
        }
        for (key, address) in attached {
            if self.by_addr.contains_key(address) {
                continue;
            }
            let adoptable = check_id(key).is_ok()
                && self.get(key, Family::of(*address)).is_none()
                && !self.reserved.contains(address)
                && usable(*address)
                && !self.pools.is_anycast(*address);
            if adoptable {
                self.insert(key.clone(), *address);
                report.adopted.push((key.clone(), *address));
            } else {
                report.conflicts.push((key.clone(), *address));
            }
        }
        if let Err(e) = self.compact() {
            (self.by_id, self.by_addr) = before;
            return Err(e);
        }
        Ok(report)
    }

    /// (allocated, free): allocated addresses (inside the blocks or not)
    /// and the blocks' addresses still available, both families (saturating)
    /// — for `tortie_ipam_addresses{state}`.
    pub fn counts(&self) -> (u64, u64) {
        let allocated = self.by_addr.len() as u64;
        let taken_in_pools = self
            .by_addr
            .keys()
            .chain(
                self.reserved
                    .iter()
                    .filter(|a| !self.by_addr.contains_key(a)),
            )
            .filter(|a| self.pools.contains(**a) && !self.pools.is_anycast(**a))
            .count() as u128;
        let size = [Family::V4, Family::V6]
            .into_iter()
            .map(|f| self.pools.size(f).saturating_sub(self.pools.unusable(f)))
            .fold(0u128, u128::saturating_add);
        let free = size.saturating_sub(taken_in_pools);
        (allocated, u64::try_from(free).unwrap_or(u64::MAX))
    }

    /// The first free address of family `f` at or after its cursor, and the
    /// cursor after it.
    fn next_free(&self, f: Family) -> Result<(IpAddr, u128), IpamError> {
        let size = self.pools.size(f);
        if size == 0 {
            return Err(IpamError::NoPool { family: f });
        }
        let start = self.cursors[f.index()] % size;
        // Every address that is not free is allocated, reserved or an
        // anycast address: one more step than those always finds a free one
        // (a /64 is never walked), or covers the whole space.
        let taken = (self.by_addr.len() + self.reserved.len()) as u128 + self.pools.unusable(f);
        let steps = size.min(taken.saturating_add(1));
        let mut step = 0u128;
        while step < steps {
            let offset = wrap_add(start, step, size);
            step += 1;
            let Some(address) = self.pools.address_at(f, offset) else {
                continue;
            };
            if !self.by_addr.contains_key(&address)
                && !self.reserved.contains(&address)
                && !self.pools.is_anycast(address)
            {
                return Ok((address, wrap_add(offset, 1, size)));
            }
        }
        Err(IpamError::Exhausted {
            pool: self.pools.describe(f),
            size,
            allocated: self.by_addr.len(),
        })
    }

    fn check_static(&self, address: IpAddr) -> Result<(), IpamError> {
        if !usable(address) || self.pools.is_anycast(address) {
            return Err(IpamError::Unusable { address });
        }
        if self.reserved.contains(&address) {
            return Err(IpamError::Reserved { address });
        }
        if let Some(owner) = self.by_addr.get(&address) {
            return Err(IpamError::InUse {
                address,
                owner: owner.clone(),
            });
        }
        Ok(())
    }

    fn insert(&mut self, id: String, address: IpAddr) {
        self.by_addr.insert(address, id.clone());
        self.by_id.insert((id, Family::of(address)), address);
    }

    fn remove(&mut self, id: &str, f: Family) -> Option<IpAddr> {
        let address = self.by_id.remove(&(id.to_string(), f))?;
        self.by_addr.remove(&address);
        Some(address)
    }

    fn snapshot(&self) -> Snapshot {
        snapshot_of(&self.pools, self.cursors, &self.by_addr)
    }

    /// Makes one change (already applied in memory) durable.
    fn persist(&mut self, record: &Record) -> Result<(), IpamError> {
        let started = std::time::Instant::now();
        let (pools, cursors, by_addr) = (&self.pools, self.cursors, &self.by_addr);
        let r = self
            .store
            .append(record, || snapshot_of(pools, cursors, by_addr));
        tracing::debug!(
            elapsed_us = started.elapsed().as_micros() as u64,
            "ipam change persisted"
        );
        r
    }

    /// Writes one change (already applied in memory) without waiting for
    /// the disk; `Some(file)` still needs its `fdatasync`.
    fn write(&mut self, record: &Record) -> Result<Option<Arc<File>>, IpamError> {
        let (pools, cursors, by_addr) = (&self.pools, self.cursors, &self.by_addr);
        self.store
            .write(record, || snapshot_of(pools, cursors, by_addr))
    }

    /// Writes the whole state as a new snapshot with an empty journal.
    fn compact(&mut self) -> Result<(), IpamError> {
        let snap = self.snapshot();
        self.store.compact(&snap)
    }
}

fn snapshot_of(pools: &Pools, cursors: [u128; 2], by_addr: &BTreeMap<IpAddr, String>) -> Snapshot {
    Snapshot {
        pools: pools.all().iter().map(|p| p.to_string()).collect(),
        cursors,
        allocations: by_addr.clone(),
    }
}

fn usable(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => {
            !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast())
        }
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_loopback() || a.is_multicast()),
    }
}

/// Container ids: non-empty, printable, bounded, and not in the agent's own
/// namespace ([`SYSTEM_PREFIX`]).
fn check_container_id(id: &str) -> Result<(), IpamError> {
    check_id(id)?;
    if id.starts_with(SYSTEM_PREFIX) {
        return Err(IpamError::InvalidId {
            id: id.to_string(),
            reason: "ids starting with \"tortie:\" are reserved for the agent",
        });
    }
    Ok(())
}

/// Any allocation id: non-empty, printable, bounded.
fn check_id(id: &str) -> Result<(), IpamError> {
    let reason = if id.is_empty() {
        Some("it is empty")
    } else if id.len() > ID_MAX {
        Some("it is longer than 256 bytes")
    } else if id.chars().any(char::is_control) {
        Some("it contains control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(IpamError::InvalidId {
            id: id.chars().take(80).collect(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
