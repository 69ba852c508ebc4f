//! Durable IPAM state: the on-disk format, atomic replacement and the lock that
//! keeps two agents from sharing one state directory.
//!
//! Data flow: [`super::Ipam`] calls [`Store::save`] with its whole state after
//! every change and *before* telling anyone the result; [`Store::open`] takes
//! the lock and [`Store::load`] reads the last saved state back at start-up.
//!
//! Format (`ipam.json`, JSON, `version` 1):
//! `{"version":1,"pool":"10.244.1.0/26","cursor":5,"allocations":[{"id":"c1","address":"10.244.1.3"}]}`
//! Replacement is atomic: write `ipam.json.tmp`, fsync it, rename over
//! `ipam.json`, fsync the directory. A crash leaves either the old or the new
//! file, never a mix; a stray `.tmp` is ignored and overwritten.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::IpamError;

pub(crate) const STATE_FILE: &str = "ipam.json";
const LOCK_FILE: &str = "ipam.lock";
const FORMAT_VERSION: u32 = 1;

/// What is persisted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// The pool the cursor refers to (as text, e.g. "10.244.1.0/26").
    pub pool: String,
    /// Offset in the pool where the next search starts.
    pub cursor: u32,
    pub allocations: BTreeMap<String, Ipv4Addr>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    version: u32,
    pool: String,
    cursor: u32,
    allocations: Vec<EntryV1>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryV1 {
    id: String,
    address: Ipv4Addr,
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
            _lock: lock,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The last saved state; `None` when no state was ever saved here.
    pub(crate) fn load(&self) -> Result<Option<Snapshot>, IpamError> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(IpamError::io("reading", &self.path, e)),
        };
        decode(&text)
            .map(Some)
            .map_err(|reason| IpamError::Corrupt {
                path: self.path.clone(),
                reason,
            })
    }

    /// Atomically replaces the state file with `snap` (durable on return).
    pub(crate) fn save(&self, snap: &Snapshot) -> Result<(), IpamError> {
        let bytes = encode(snap).map_err(|e| IpamError::io("encoding state for", &self.path, e))?;
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| IpamError::io("creating", &tmp, e))?;
        file.write_all(&bytes)
            .map_err(|e| IpamError::io("writing", &tmp, e))?;
        file.sync_all()
            .map_err(|e| IpamError::io("syncing", &tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &self.path)
            .map_err(|e| IpamError::io("renaming into place", &self.path, e))?;
        // The rename is durable only once the directory entry is.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| IpamError::io("syncing directory", &self.dir, e))?;
        Ok(())
    }
}

fn encode(snap: &Snapshot) -> std::io::Result<Vec<u8>> {
    let file = FileV1 {
        version: FORMAT_VERSION,
        pool: snap.pool.clone(),
        cursor: snap.cursor,
        allocations: snap
            .allocations
            .iter()
            .map(|(id, address)| EntryV1 {
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
fn decode(bytes: &[u8]) -> Result<Snapshot, String> {
    let version: VersionOnly =
        serde_json::from_slice(bytes).map_err(|e| format!("not a tortie IPAM file: {e}"))?;
    if version.version != FORMAT_VERSION {
        return Err(format!(
            "format version {} is not supported (this tortie reads version {FORMAT_VERSION}); was it written by a newer tortie?",
            version.version
        ));
    }
    let file: FileV1 = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let mut allocations = BTreeMap::new();
    let mut owners: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
    for entry in file.allocations {
        if let Some(owner) = owners.insert(entry.address, entry.id.clone()) {
            return Err(format!(
                "address {} is allocated to both {owner:?} and {:?}",
                entry.address, entry.id
            ));
        }
        if allocations
            .insert(entry.id.clone(), entry.address)
            .is_some()
        {
            return Err(format!("container {:?} is listed twice", entry.id));
        }
    }
    Ok(Snapshot {
        pool: file.pool,
        cursor: file.cursor,
        allocations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let snap = Snapshot {
            pool: "10.244.1.0/26".into(),
            cursor: 7,
            allocations: [("c1".to_string(), Ipv4Addr::new(10, 244, 1, 3))].into(),
        };
        let bytes = encode(&snap).expect("encode");
        assert_eq!(decode(&bytes), Ok(snap));
    }

    #[test]
    fn decode_never_panics_on_mutated_files() {
        let snap = Snapshot {
            pool: "10.244.1.0/26".into(),
            cursor: 3,
            allocations: (0..20u8)
                .map(|i| (format!("c{i}"), Ipv4Addr::new(10, 244, 1, i)))
                .collect(),
        };
        let good = encode(&snap).expect("encode");
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
            if let Ok(s) = decode(&bytes) {
                let addrs: std::collections::BTreeSet<_> = s.allocations.values().collect();
                assert_eq!(addrs.len(), s.allocations.len());
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
        let newer = br#"{"version":2}"#;
        assert!(decode(newer).is_err_and(|e| e.contains("version 2")));
        assert!(decode(b"").is_err());
        assert!(decode(b"{\"version\":1,\"pool\":\"x\",\"cursor\":0,\"allocations\":[{\"id\":\"a\",\"address\":\"10.0.0.300\"}]}").is_err());
    }
}
