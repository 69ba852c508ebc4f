//! Durable IPAM state: the snapshot + journal on disk, compaction, and the
//! lock that keeps two agents from sharing one state directory.
//!
//! Data flow: [`super::Ipam`] calls [`Store::append`] with one
//! [`Record`] per change and *before* telling anyone the result; the record is
//! on disk (one `fdatasync`) when it returns. [`Store::open`] takes the lock,
//! [`Store::load`] reads the snapshot and replays the journal at start-up, and
//! [`Store::compact`] writes a whole snapshot and starts an empty journal (at
//! start-up, after `reconcile`, and whenever the journal is full).
//!
//! Snapshot (`ipam.json`, JSON, `version` 3):
//! `{"version":3,"generation":4,"pools":["10.244.1.0/26","fd00:10:244:1::/120"],"cursor":5,"cursor_v6":2,"allocations":[{"id":"c1","address":"10.244.1.3"},{"id":"c1","address":"fd00:10:244:1::1"}]}`
//! — an id holds at most one address per family. Versions 1 (no journal)
//! and 2 (IPv4 only: one `pool`, `cursor`) are read unchanged; the next
//! compaction writes version 3.
//! Replacement is atomic: write `ipam.json.tmp`, fsync it, rename over
//! `ipam.json`, fsync the directory; a stray `.tmp` is ignored and overwritten.
//!
//! Journal (`ipam.journal`, see [`super::journal`]): its header carries the
//! generation of the snapshot it extends. Compaction writes snapshot `g+1`
//! first, then the journal `g+1` (also tmp + fsync + rename + fsync dir); a
//! crash in between leaves journal `g`, whose records are all in snapshot
//! `g+1`: a journal older than the snapshot is ignored, a newer one (or one
//! without a snapshot) is corruption.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::IpamError;
use super::journal::{self, Journal, JournalError, Record};

pub(crate) const STATE_FILE: &str = "ipam.json";
pub(crate) const JOURNAL_FILE: &str = "ipam.journal";
const LOCK_FILE: &str = "ipam.lock";
const FORMAT_VERSION: u32 = 3;

/// What is persisted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// The blocks the cursors refer to (as text, e.g. "10.244.1.0/26"), in order.
    pub pools: Vec<String>,
    /// Per family (IPv4, IPv6): the offset in that family's blocks where
    /// the next search starts.
    pub cursors: [u128; 2],
    /// Address → the id holding it.
    pub allocations: BTreeMap<IpAddr, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File3 {
    version: u32,
    /// Absent in version 1 files (which had no journal): 0.
    #[serde(default)]
    generation: u64,
    /// Versions 1 and 2: the one (IPv4) block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pool: Option<String>,
    /// Version 3: every block.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pools: Vec<String>,
    cursor: u128,
    /// Version 3: the IPv6 cursor.
    #[serde(default)]
    cursor_v6: u128,
    allocations: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    address: IpAddr,
}

#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

/// The state directory, locked for this process while the `Store` lives.
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    path: PathBuf,
    journal_path: PathBuf,
    /// Generation of the last snapshot loaded or (attempted to be) written.
    pub(crate) generation: u64,
    /// `None` until the first compaction, and after any failed write: the
    /// next change then compacts instead of appending (a failed append may
    /// have left a partial record that later ones must not follow).
    journal: Option<Journal>,
    /// Test hook: make the next journal append fail.
    #[cfg(test)]
    pub(crate) fail_next_append: bool,
    /// Test hook: make the next journal sync fail.
    #[cfg(test)]
    pub(crate) fail_next_sync: bool,
    /// Holds the exclusive `flock`; released when dropped (or the process dies).
    _lock: File,
}

impl Store {
    /// Creates the directory if needed and takes the lock.
    pub(crate) fn open(dir: &Path) -> Result<Store, IpamError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| IpamError::io("creating state directory", dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| IpamError::io("opening lock file", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(IpamError::Locked { path: lock_path }),
            Err(TryLockError::Error(e)) => return Err(IpamError::io("locking", &lock_path, e)),
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            path: dir.join(STATE_FILE),
            journal_path: dir.join(JOURNAL_FILE),
            generation: 0,
            journal: None,
            #[cfg(test)]
            fail_next_append: false,
            #[cfg(test)]
            fail_next_sync: false,
            _lock: lock,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The last saved state (snapshot + journal replayed); `None` when no
    /// state was ever saved here. Changes nothing on disk.
    pub(crate) fn load(&mut self) -> Result<Option<Snapshot>, IpamError> {
        let journal = match std::fs::read(&self.journal_path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(IpamError::io("reading", &self.journal_path, e)),
        };
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if journal.is_some() {
                    return Err(IpamError::Corrupt {
                        path: self.path.clone(),
                        reason: format!(
                            "it is missing but the journal {JOURNAL_FILE} exists (move both away to start afresh)"
                        ),
                    });
                }
                return Ok(None);
            }
            Err(e) => return Err(IpamError::io("reading", &self.path, e)),
        };
        let (generation, mut snap) = decode(&text).map_err(|reason| IpamError::Corrupt {
            path: self.path.clone(),
            reason,
        })?;
        self.generation = generation;
        let Some(bytes) = journal else {
            return Ok(Some(snap));
        };
        let corrupt = |reason: String| IpamError::Corrupt {
            path: self.journal_path.clone(),
            reason,
        };
        let contents = journal::read(&bytes).map_err(|JournalError::Corrupt(r)| corrupt(r))?;
        if contents.generation > generation {
            return Err(corrupt(format!(
                "journal generation {} is newer than snapshot generation {generation}",
                contents.generation
            )));
        }
        if contents.generation < generation {
            // Left by a crash during compaction: already in the snapshot.
            return Ok(Some(snap));
        }
        for (i, record) in contents.records.iter().enumerate() {
            replay(&mut snap, record)
                .map_err(|reason| corrupt(format!("record {i} does not apply: {reason}")))?;
        }
        Ok(Some(snap))
    }

    /// Makes `record` durable (one `fdatasync`). When the journal is full (or
    /// unusable after an error) writes `full` — the state with `record`
    /// applied — as a new snapshot with a fresh journal instead.
    pub(crate) fn append(
        &mut self,
        record: &Record,
        full: impl FnOnce() -> Snapshot,
    ) -> Result<(), IpamError> {
        match self.write(record, full)? {
            Some(file) => {
                let synced = file.sync_data();
                self.synced(synced)
            }
            None => Ok(()),
        }
    }

    /// Writes `record` to the journal without waiting for the disk; returns
    /// the file to `fdatasync` (on any thread), whose outcome goes to
    /// [`Store::synced`] before the change is acknowledged. `None`: already
    /// durable (the journal was full or unusable, so `full` — the state with
    /// `record` applied — was written as a new snapshot instead).
    pub(crate) fn write(
        &mut self,
        record: &Record,
        full: impl FnOnce() -> Snapshot,
    ) -> Result<Option<Arc<File>>, IpamError> {
        let Some(journal) = self.journal.as_mut().filter(|j| j.fits(record)) else {
            self.compact(&full())?;
            return Ok(None);
        };
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_append) {
            self.journal = None;
            return Err(IpamError::io(
                "appending to",
                &self.journal_path,
                std::io::Error::other("injected failure"),
            ));
        }
        if let Err(e) = journal.write(record) {
            self.journal = None;
            return Err(IpamError::io("appending to", &self.journal_path, e));
        }
        Ok(Some(journal.syncer()))
    }

    /// The outcome of the `fdatasync` of the record [`Store::write`] wrote.
    /// A failure makes the journal unusable: the next change compacts (the
    /// record may or may not be on disk; a later snapshot without it wins).
    pub(crate) fn synced(&mut self, outcome: std::io::Result<()>) -> Result<(), IpamError> {
        #[cfg(test)]
        let outcome = if std::mem::take(&mut self.fail_next_sync) {
            Err(std::io::Error::other("injected sync failure"))
        } else {
            outcome
        };
        match outcome {
            Ok(()) => {
                if let Some(j) = self.journal.as_mut() {
                    j.synced();
                }
                Ok(())
            }
            Err(e) => {
                self.journal = None;
                Err(IpamError::io("syncing", &self.journal_path, e))
            }
        }
    }

    /// Writes `snap` as the next snapshot generation and starts an empty
    /// journal for it (durable on return).
    pub(crate) fn compact(&mut self, snap: &Snapshot) -> Result<(), IpamError> {
        self.journal = None;
        // A new number even if an earlier attempt failed half-way.
        self.generation += 1;
        let bytes = encode(self.generation, snap)
            .map_err(|e| IpamError::io("encoding state for", &self.path, e))?;
        self.replace(STATE_FILE, &bytes)?;
        let file = self.replace(JOURNAL_FILE, &journal::fresh(self.generation))?;
        self.journal = Some(Journal::new(file));
        Ok(())
    }

    /// Atomically replaces `dir/name` with `bytes`: write `name.tmp`, fsync,
    /// rename, fsync the directory. Returns the (renamed) file, open.
    fn replace(&self, name: &str, bytes: &[u8]) -> Result<File, IpamError> {
        let tmp = self.dir.join(format!("{name}.tmp"));
        let path = self.dir.join(name);
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| IpamError::io("creating", &tmp, e))?;
        file.write_all(bytes)
            .map_err(|e| IpamError::io("writing", &tmp, e))?;
        file.sync_all()
            .map_err(|e| IpamError::io("syncing", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| IpamError::io("renaming into place", &path, e))?;
        // The rename is durable only once the directory entry is.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| IpamError::io("syncing directory", &self.dir, e))?;
        Ok(file)
    }
}

/// Applies one journaled change; the error says why it cannot apply.
fn replay(snap: &mut Snapshot, record: &Record) -> Result<(), String> {
    match record {
        Record::Allocate {
            id,
            address,
            cursor,
        } => {
            if let Some((current, _)) = snap
                .allocations
                .iter()
                .find(|(a, i)| *i == id && a.is_ipv4() == address.is_ipv4())
            {
                return Err(format!(
                    "{id:?} is allocated {address} but already has {current}"
                ));
            }
            if let Some(owner) = snap.allocations.get(address) {
                return Err(format!(
                    "{address} is allocated to {id:?} but {owner:?} holds it"
                ));
            }
            snap.allocations.insert(*address, id.clone());
            snap.cursors[usize::from(address.is_ipv6())] = *cursor;
        }
        Record::Release { id, address } => {
            if snap.allocations.get(address) != Some(id) {
                return Err(format!("{id:?} releases {address}, which it does not hold"));
            }
            snap.allocations.remove(address);
        }
    }
    Ok(())
}

fn encode(generation: u64, snap: &Snapshot) -> std::io::Result<Vec<u8>> {
    let file = File3 {
        version: FORMAT_VERSION,
        generation,
        pool: None,
        pools: snap.pools.clone(),
        cursor: snap.cursors[0],
        cursor_v6: snap.cursors[1],
        allocations: snap
            .allocations
            .iter()
            .map(|(address, id)| Entry {
                id: id.clone(),
                address: *address,
            })
            .collect(),
    };
    let mut out = serde_json::to_vec_pretty(&file)?;
    out.push(b'\n');
    Ok(out)
}

/// Parses and checks a state file; the error says what is wrong.
fn decode(bytes: &[u8]) -> Result<(u64, Snapshot), String> {
    let version: VersionOnly =
        serde_json::from_slice(bytes).map_err(|e| format!("not a tortie IPAM file: {e}"))?;
    if !(1..=FORMAT_VERSION).contains(&version.version) {
        return Err(format!(
            "format version {} is not supported (this tortie reads versions 1 to {FORMAT_VERSION}); was it written by a newer tortie?",
            version.version
        ));
    }
    let file: File3 = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let pools = match (file.version, file.pool, file.pools) {
        (1 | 2, Some(pool), pools) if pools.is_empty() => vec![pool],
        (1 | 2, _, _) => return Err("a version 1 or 2 file has one `pool`".into()),
        (_, None, pools) => pools,
        (_, Some(_), _) => return Err("a version 3 file lists `pools`, not `pool`".into()),
    };
    if file.version < 3 && (file.cursor_v6 != 0 || file.cursor > u128::from(u32::MAX)) {
        return Err("a version 1 or 2 file has one 32-bit cursor".into());
    }
    let mut allocations: BTreeMap<IpAddr, String> = BTreeMap::new();
    let mut held: std::collections::BTreeSet<(String, bool)> = Default::default();
    for entry in file.allocations {
        if file.version < 3 && entry.address.is_ipv6() {
            return Err(format!(
                "IPv6 address {} in a version {} file",
                entry.address, file.version
            ));
        }
        if let Some(owner) = allocations.insert(entry.address, entry.id.clone()) {
            return Err(format!(
                "address {} is allocated to both {owner:?} and {:?}",
                entry.address, entry.id
            ));
        }
        if !held.insert((entry.id.clone(), entry.address.is_ipv6())) {
            return Err(format!("container {:?} is listed twice", entry.id));
        }
    }
    Ok((
        file.generation,
        Snapshot {
            pools,
            cursors: [file.cursor, file.cursor_v6],
            allocations,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let snap = Snapshot {
            pools: vec!["10.244.1.0/26".into(), "fd00:10:244:1::/120".into()],
            cursors: [7, 9],
            allocations: [
                (ip("10.244.1.3"), "c1".to_string()),
                (ip("fd00:10:244:1::1"), "c1".to_string()),
            ]
            .into(),
        };
        let bytes = encode(3, &snap).expect("encode");
        assert_eq!(decode(&bytes), Ok((3, snap)));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    /// A file an IPv4-only agent wrote (version 2) loads unchanged.
    #[test]
    fn version_2_files_load_unchanged() {
        let v2 = br#"{"version":2,"generation":4,"pool":"10.244.1.0/26","cursor":5,"allocations":[{"id":"c1","address":"10.244.1.3"}]}"#;
        let (generation, snap) = decode(v2).expect("v2");
        assert_eq!(generation, 4);
        assert_eq!(snap.pools, ["10.244.1.0/26"]);
        assert_eq!(snap.cursors, [5, 0]);
        assert_eq!(
            snap.allocations,
            [(ip("10.244.1.3"), "c1".to_string())].into()
        );
        let v6_in_v2 = br#"{"version":2,"pool":"10.0.0.0/24","cursor":0,"allocations":[{"id":"a","address":"fd00::1"}]}"#;
        assert!(decode(v6_in_v2).is_err_and(|e| e.contains("IPv6 address")));
    }

    #[test]
    fn decode_never_panics_on_mutated_files() {
        let snap = Snapshot {
            pools: vec!["10.244.1.0/26".into()],
            cursors: [3, 0],
            allocations: (0..20u8)
                .map(|i| (IpAddr::from([10, 244, 1, i]), format!("c{i}")))
                .collect(),
        };
        let good = encode(1, &snap).expect("encode");
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % 1_000_003).unwrap_or(0)
        };
        for _ in 0..5000 {
            let mut bytes = good.clone();
            for _ in 0..=next() % 3 {
                if bytes.is_empty() {
                    break;
                }
                let at = next() % bytes.len();
                match next() % 3 {
                    0 => bytes[at] = u8::try_from(next() % 256).unwrap_or(0),
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.truncate(at),
                }
            }
            // Either a consistent snapshot or an error; never a panic.
            if let Ok((_, s)) = decode(&bytes) {
                let ids: std::collections::BTreeSet<_> = s.allocations.values().collect();
                assert_eq!(ids.len(), s.allocations.len());
            }
        }
    }

    #[test]
    fn decode_rejects_inconsistent_files() {
        let dup = br#"{"version":1,"pool":"10.0.0.0/24","cursor":0,"allocations":[
            {"id":"a","address":"10.0.0.1"},{"id":"b","address":"10.0.0.1"}]}"#;
        assert!(decode(dup).is_err_and(|e| e.contains("allocated to both")));
        let twice = br#"{"version":1,"pool":"10.0.0.0/24","cursor":0,"allocations":[
            {"id":"a","address":"10.0.0.1"},{"id":"a","address":"10.0.0.2"}]}"#;
        assert!(decode(twice).is_err_and(|e| e.contains("listed twice")));
        let twice6 = br#"{"version":3,"pools":["fd00::/120"],"cursor":0,"allocations":[
            {"id":"a","address":"fd00::1"},{"id":"a","address":"fd00::2"}]}"#;
        assert!(decode(twice6).is_err_and(|e| e.contains("listed twice")));
        let newer = br#"{"version":4}"#;
        assert!(decode(newer).is_err_and(|e| e.contains("version 4")));
        assert!(decode(b"").is_err());
        assert!(decode(b"{\"version\":1,\"pool\":\"x\",\"cursor\":0,\"allocations\":[{\"id\":\"a\",\"address\":\"10.0.0.300\"}]}").is_err());
    }
}
