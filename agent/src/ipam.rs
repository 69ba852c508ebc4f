//! IPAM: which container owns which IPv4 address of this node's block.
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
//!   journal record + `fdatasync` — see [`store`] and [`journal`]) before the
//!   caller learns of it, so a crash between allocation and attach leaves the
//!   address allocated; the next start-up's `reconcile` frees it only if
//!   nothing is attached with it. A torn last record (crash mid-append) was
//!   never acknowledged and is dropped; damage anywhere else is corruption.
//! - No immediate re-use: a round-robin cursor (persisted) walks the block, so
//!   a just-released address is handed out again only after every other free
//!   one — stale ARP/neighbour entries and routes elsewhere expire meanwhile.
//! - Every address of the block is usable, the network and broadcast
//!   addresses included: each container gets a /32 on a point-to-point veth, so
//!   there is no subnet broadcast (Calico does the same). The `reserved`
//!   addresses are never handed out. `tunl0`'s address (IP-in-IP) comes from
//!   [`Ipam::allocate_tunnel`]: persisted like a container's, never freed by
//!   `reconcile`, the block's first free address.
//! - Requested (static) addresses are honoured when free and not reserved, even
//!   outside the block (the caller then advertises that /32).
//! - A corrupt state file or journal is an error ([`IpamError::Corrupt`]): the agent must
//!   refuse to start rather than risk handing out an address twice.

mod journal;
mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnetwork::Ipv4Network;

use journal::Record;
use store::{Snapshot, Store};

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
        "address pool {pool} is exhausted: all {size} addresses are allocated or reserved ({allocated} containers)"
    )]
    Exhausted {
        pool: Ipv4Network,
        size: u64,
        allocated: usize,
    },
    #[error("address {address} is already allocated to {owner:?}")]
    InUse { address: Ipv4Addr, owner: String },
    #[error("address {address} is reserved and cannot be given to a container")]
    Reserved { address: Ipv4Addr },
    #[error(
        "address {address} cannot be given to a container (unspecified, loopback, multicast or broadcast)"
    )]
    Unusable { address: Ipv4Addr },
    #[error("container {id:?} already has address {current}; {requested} was requested")]
    Conflict {
        id: String,
        current: Ipv4Addr,
        requested: Ipv4Addr,
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
    pub kept: Vec<(String, Ipv4Addr)>,
    /// Allocations with nothing attached (e.g. the agent died between allocate
    /// and attach, or a container vanished while it was down): freed.
    pub released: Vec<(String, Ipv4Addr)>,
    /// Attached addresses IPAM did not know: recorded under the attachment's key
    /// so they are never handed out again.
    pub adopted: Vec<(String, Ipv4Addr)>,
    /// Attached addresses IPAM could not adopt (reserved, unusable, or the key is
    /// already allocated another address) — the caller should look at them.
    pub conflicts: Vec<(String, Ipv4Addr)>,
}

/// An allocation written but maybe not yet on disk
/// ([`Ipam::allocate_pending`]): [`Pending::sync`] it, then [`Ipam::commit`].
#[derive(Debug)]
#[must_use = "the allocation is durable only once synced and committed"]
pub struct Pending {
    address: Ipv4Addr,
    /// The id and the cursor before, to undo a failed sync; `None` when the
    /// id already had its address.
    undo: Option<(String, u32)>,
    /// The journal, when the record still needs its `fdatasync`.
    file: Option<Arc<File>>,
    /// That `fdatasync`'s outcome, once [`Pending::sync`] ran.
    outcome: Option<std::io::Result<()>>,
}

impl Pending {
    fn durable(address: Ipv4Addr) -> Pending {
        Pending {
            address,
            undo: None,
            file: None,
            outcome: None,
        }
    }

    /// The address decided (not to be handed out before [`Ipam::commit`]).
    pub fn address(&self) -> Ipv4Addr {
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
}

/// The node's allocations, persisted under the state directory.
#[derive(Debug)]
pub struct Ipam {
    store: Store,
    pool: Ipv4Network,
    reserved: BTreeSet<Ipv4Addr>,
    by_id: BTreeMap<String, Ipv4Addr>,
    by_addr: BTreeMap<Ipv4Addr, String>,
    /// Offset in `pool` where the next search starts.
    cursor: u32,
}

impl Ipam {
    /// Opens (creating if needed) the state under `state_dir`, locks it for this
    /// process and loads the saved allocations (snapshot + journal). Allocations
    /// outside `pool` (static ones, or from a previous block) are kept. The
    /// state is compacted at once (new snapshot, empty journal), so an
    /// unwritable directory fails here, not at the first container.
    pub fn open(
        state_dir: &Path,
        pool: Ipv4Network,
        reserved: &[Ipv4Addr],
    ) -> Result<Ipam, IpamError> {
        let pool = Ipv4Network::new(pool.network(), pool.prefix()).unwrap_or(pool);
        let mut store = Store::open(state_dir)?;
        let saved = store.load()?;
        let mut ipam = Ipam {
            store,
            pool,
            reserved: reserved.iter().copied().collect(),
            by_id: BTreeMap::new(),
            by_addr: BTreeMap::new(),
            cursor: 0,
        };
        if let Some(snap) = saved {
            // The cursor only means something for the pool it was saved with.
            if snap.pool == pool.to_string() && u64::from(snap.cursor) < ipam.size() {
                ipam.cursor = snap.cursor;
            }
            for (id, address) in snap.allocations {
                ipam.by_addr.insert(address, id.clone());
                ipam.by_id.insert(id, address);
            }
        }
        ipam.compact()?;
        Ok(ipam)
    }

    /// The address of `container_id`, allocating one when it has none.
    ///
    /// Idempotent: the same id gets the same address (also when it requests
    /// that address again). `requested` (a static address) is honoured when
    /// free, usable and not reserved, inside the pool or outside it. The
    /// allocation is on disk when this returns.
    pub fn allocate(
        &mut self,
        container_id: &str,
        requested: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, IpamError> {
        let pending = self.allocate_pending(container_id, requested)?;
        self.commit(pending.sync())
    }

    /// [`Ipam::allocate`] in two halves, so the disk wait can overlap other
    /// work: decides the address and writes the journal record (`pwrite`,
    /// no `fdatasync`). The address is taken in memory at once; run
    /// [`Pending::sync`] (blocking, any thread — e.g. while the veth is
    /// created) and hand the result to [`Ipam::commit`] before telling
    /// anyone the address. Until then the allocation may not survive a crash
    /// (start-up `reconcile` adopts an address that got attached meanwhile).
    /// A `Pending` dropped uncommitted stays allocated; its record is synced
    /// before the next one is written.
    pub fn allocate_pending(
        &mut self,
        container_id: &str,
        requested: Option<Ipv4Addr>,
    ) -> Result<Pending, IpamError> {
        check_container_id(container_id)?;
        self.allocate_as(container_id, requested)
    }

    /// Finishes [`Ipam::allocate_pending`]: when the record's `fdatasync`
    /// failed, the allocation is undone (memory and cursor) and the error
    /// returned; else the address, now durable. A `Pending` that was never
    /// synced is synced here.
    pub fn commit(&mut self, pending: Pending) -> Result<Ipv4Addr, IpamError> {
        let Pending {
            address,
            undo,
            file,
            outcome,
        } = pending;
        let Some(file) = file else {
            return Ok(address);
        };
        let outcome = outcome.unwrap_or_else(|| file.sync_data());
        if let Err(e) = self.store.synced(outcome) {
            if let Some((id, previous_cursor)) = undo {
                // Not (known to be) on disk: not allocated.
                self.remove(&id);
                self.cursor = previous_cursor;
            }
            return Err(e);
        }
        Ok(address)
    }

    /// The `tunl0` address (IP-in-IP), allocated under [`TUNNEL_ID`] on first
    /// use and the same ever after: the first free address of the block.
    pub fn allocate_tunnel(&mut self) -> Result<Ipv4Addr, IpamError> {
        let pending = self.allocate_as(TUNNEL_ID, None)?;
        self.commit(pending.sync())
    }

    /// Frees the `tunl0` address (when encapsulation is switched off).
    pub fn release_tunnel(&mut self) -> Result<Option<Ipv4Addr>, IpamError> {
        self.release_as(TUNNEL_ID)
    }

    fn allocate_as(
        &mut self,
        container_id: &str,
        requested: Option<Ipv4Addr>,
    ) -> Result<Pending, IpamError> {
        if let Some(&current) = self.by_id.get(container_id) {
            return match requested {
                Some(r) if r != current => Err(IpamError::Conflict {
                    id: container_id.to_string(),
                    current,
                    requested: r,
                }),
                _ => Ok(Pending::durable(current)),
            };
        }
        let (address, cursor) = match requested {
            Some(address) => {
                self.check_static(address)?;
                (address, self.cursor)
            }
            None => self.next_free()?,
        };
        let previous_cursor = self.cursor;
        self.insert(container_id.to_string(), address);
        self.cursor = cursor;
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
                self.remove(container_id);
                self.cursor = previous_cursor;
                Err(e)
            }
        }
    }

    /// Frees the address of `container_id`; `Ok(None)` when it had none.
    pub fn release(&mut self, container_id: &str) -> Result<Option<Ipv4Addr>, IpamError> {
        check_container_id(container_id)?;
        self.release_as(container_id)
    }

    fn release_as(&mut self, container_id: &str) -> Result<Option<Ipv4Addr>, IpamError> {
        let Some(address) = self.remove(container_id) else {
            return Ok(None);
        };
        let record = Record::Release {
            id: container_id.to_string(),
            address,
        };
        if let Err(e) = self.persist(&record) {
            self.insert(container_id.to_string(), address);
            return Err(e);
        }
        Ok(Some(address))
    }

    /// Frees `address` whoever holds it (not the agent's own system ids);
    /// returns the id it was allocated to. For detaching a container adopted by
    /// [`Ipam::reconcile`] under its interface name rather than its id.
    pub fn release_address(&mut self, address: Ipv4Addr) -> Result<Option<String>, IpamError> {
        let Some(id) = self.by_addr.get(&address).cloned() else {
            return Ok(None);
        };
        if id.starts_with(SYSTEM_PREFIX) {
            return Err(IpamError::InUse { address, owner: id });
        }
        self.release_as(&id)?;
        Ok(Some(id))
    }

    pub fn get(&self, container_id: &str) -> Option<Ipv4Addr> {
        self.by_id.get(container_id).copied()
    }

    /// Who holds `address`, if anyone.
    pub fn owner(&self, address: Ipv4Addr) -> Option<&str> {
        self.by_addr.get(&address).map(String::as_str)
    }

    /// Every allocation, sorted by id.
    pub fn allocations(&self) -> impl Iterator<Item = (&str, Ipv4Addr)> + '_ {
        self.by_id.iter().map(|(id, a)| (id.as_str(), *a))
    }

    pub fn pool(&self) -> Ipv4Network {
        self.pool
    }

    /// Where the state is kept (for logs).
    pub fn state_file(&self) -> &Path {
        self.store.path()
    }

    /// Aligns the allocations with what the kernel has attached, at start-up.
    ///
    /// `attached` lists (key, address) for every attached container, the key
    /// being the container id or the host interface name. Matching is by
    /// address: an allocation whose address is attached is kept; one with
    /// nothing attached is freed (system ids such as [`TUNNEL_ID`] are always
    /// kept); an attached address IPAM does not know is adopted under its key.
    /// The result is persisted once (compacted), before returning; if that
    /// fails nothing changes.
    pub fn reconcile(
        &mut self,
        attached: &[(String, Ipv4Addr)],
    ) -> Result<ReconcileReport, IpamError> {
        let before = (self.by_id.clone(), self.by_addr.clone());
        let attached_addrs: BTreeSet<Ipv4Addr> = attached.iter().map(|(_, a)| *a).collect();
        let mut report = ReconcileReport::default();
        let allocations: Vec<(String, Ipv4Addr)> =
            self.by_id.iter().map(|(i, a)| (i.clone(), *a)).collect();
        for (id, address) in allocations {
            if attached_addrs.contains(&address) || id.starts_with(SYSTEM_PREFIX) {
                report.kept.push((id, address));
            } else {
                self.remove(&id);
                report.released.push((id, address));
            }
        }
        for (key, address) in attached {
            if self.by_addr.contains_key(address) {
                continue;
            }
            let adoptable = check_id(key).is_ok()
                && !self.by_id.contains_key(key)
                && !self.reserved.contains(address)
                && usable(*address);
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

    /// (allocated, free): allocations (inside the pool or not) and the pool's
    /// addresses still available — for `tortie_ipam_addresses{state}`.
    pub fn counts(&self) -> (u64, u64) {
        let allocated = self.by_id.len() as u64;
        let taken_in_pool = self
            .by_addr
            .keys()
            .chain(
                self.reserved
                    .iter()
                    .filter(|a| !self.by_addr.contains_key(a)),
            )
            .filter(|a| self.pool.contains(**a))
            .count() as u64;
        (allocated, self.size().saturating_sub(taken_in_pool))
    }

    fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.pool.prefix()))
    }

    fn address_at(&self, offset: u64) -> Ipv4Addr {
        let base = u64::from(u32::from(self.pool.network()));
        // offset < size, so base + offset stays inside the pool and within u32.
        Ipv4Addr::from(u32::try_from(base + offset).unwrap_or(u32::MAX))
    }

    /// The first free address at or after the cursor, and the cursor after it.
    fn next_free(&self) -> Result<(Ipv4Addr, u32), IpamError> {
        let size = self.size();
        let start = u64::from(self.cursor) % size;
        for step in 0..size {
            let offset = (start + step) % size;
            let address = self.address_at(offset);
            if !self.by_addr.contains_key(&address) && !self.reserved.contains(&address) {
                let next = u32::try_from((offset + 1) % size).unwrap_or(0);
                return Ok((address, next));
            }
        }
        Err(IpamError::Exhausted {
            pool: self.pool,
            size,
            allocated: self.by_id.len(),
        })
    }

    fn check_static(&self, address: Ipv4Addr) -> Result<(), IpamError> {
        if !usable(address) {
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

    fn insert(&mut self, id: String, address: Ipv4Addr) {
        self.by_addr.insert(address, id.clone());
        self.by_id.insert(id, address);
    }

    fn remove(&mut self, id: &str) -> Option<Ipv4Addr> {
        let address = self.by_id.remove(id)?;
        self.by_addr.remove(&address);
        Some(address)
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            pool: self.pool.to_string(),
            cursor: self.cursor,
            allocations: self.by_id.clone(),
        }
    }

    /// Makes one change (already applied in memory) durable.
    fn persist(&mut self, record: &Record) -> Result<(), IpamError> {
        let started = std::time::Instant::now();
        let (pool, cursor, by_id) = (self.pool, self.cursor, &self.by_id);
        let r = self.store.append(record, || Snapshot {
            pool: pool.to_string(),
            cursor,
            allocations: by_id.clone(),
        });
        tracing::debug!(
            elapsed_us = started.elapsed().as_micros() as u64,
            "ipam change persisted"
        );
        r
    }

    /// Writes one change (already applied in memory) without waiting for
    /// the disk; `Some(file)` still needs its `fdatasync`.
    fn write(&mut self, record: &Record) -> Result<Option<Arc<File>>, IpamError> {
        let (pool, cursor, by_id) = (self.pool, self.cursor, &self.by_id);
        self.store.write(record, || Snapshot {
            pool: pool.to_string(),
            cursor,
            allocations: by_id.clone(),
        })
    }

    /// Writes the whole state as a new snapshot with an empty journal.
    fn compact(&mut self) -> Result<(), IpamError> {
        let snap = self.snapshot();
        self.store.compact(&snap)
    }
}

fn usable(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast())
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
