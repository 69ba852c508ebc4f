//! The agent's record of what attach returned, by attachment id, so that an
//! attach repeated after a restart (a runtime retrying ADD, `tortie attach`
//! with the same id) answers with the same MACs: podman rejects CNI results
//! without one, and the container side's MAC lives in a namespace the agent
//! does not otherwise read.
//!
//! File: `attachments.json` under `state.dir`, beside (never inside) IPAM's
//! own files; `{"version": 1, "attachments": {id: AttachResult}}`. Rewritten
//! in place (`pwrite` at 0, then `ftruncate` to the new length) after every
//! attach and detach, without fsync and without a rename: it is a cache, not
//! the source of truth (IPAM owns addresses, journalled with fdatasync; the
//! kernel owns veths), and it sits on the attach path. Measured on ext4 under
//! load: tmp + fsync + rename + directory fsync took 1–8 ms, and even a bare
//! rename over the file (or an `O_TRUNC` rewrite) 0.6–4 ms, because ext4's
//! `auto_da_alloc` flushes the data of a file replaced that way; the in-place
//! write takes ~10 µs. A crashed agent loses nothing (the page cache has the
//! file; if it died between the write and the truncate, [`decode`] reads the
//! first JSON value and ignores the stale tail); a crashed kernel may leave a
//! torn file, which only costs the MACs of repeated attaches (logged), and at
//! start-up entries whose host veth is gone are dropped.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::api::AttachResult;

pub const FILE: &str = "attachments.json";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    attachments: BTreeMap<String, AttachResult>,
}

/// Parses the file's bytes: the first JSON value (anything after it is the
/// tail of a longer earlier version, see the module docs); `Err` describes
/// what is wrong. Never panics.
pub fn decode(bytes: &[u8]) -> Result<BTreeMap<String, AttachResult>, String> {
    let d: OnDisk = serde_json::Deserializer::from_slice(bytes)
        .into_iter::<OnDisk>()
        .next()
        .ok_or_else(|| "empty file".to_string())?
        .map_err(|e| e.to_string())?;
    if d.version != VERSION {
        return Err(format!("unsupported version {}", d.version));
    }
    Ok(d.attachments)
}

pub fn encode(results: &BTreeMap<String, AttachResult>) -> Vec<u8> {
    let d = OnDisk {
        version: VERSION,
        attachments: results.clone(),
    };
    // Serialising strings, numbers and maps with string keys cannot fail.
    serde_json::to_vec(&d).unwrap_or_default()
}

/// The saved results; empty (with a warning) when the file is missing or bad.
pub fn load(dir: &Path) -> BTreeMap<String, AttachResult> {
    let path = dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => decode(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "ignoring the saved attach results");
            BTreeMap::new()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "reading the saved attach results");
            BTreeMap::new()
        }
    }
}

/// Rewrites the file in place (not atomically, not durably: see the module docs).
pub fn save(dir: &Path, results: &BTreeMap<String, AttachResult>) -> std::io::Result<()> {
    let path = dir.join(FILE);
    let ctx = |what: &str, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
    };
    let bytes = encode(results);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| ctx("opening", e))?;
    f.write_all_at(&bytes, 0).map_err(|e| ctx("writing", e))?;
    f.set_len(bytes.len() as u64)
        .map_err(|e| ctx("truncating", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str) -> AttachResult {
        AttachResult {
            id: id.into(),
            ip: "10.244.1.2".into(),
            prefix_len: 32,
            gateway: "169.254.1.1".into(),
            netns: "/run/netns/c1".into(),
            host_ifname: "tt0123456789a".into(),
            host_mac: Some("aa:bb:cc:dd:ee:01".into()),
            container_ifname: "eth0".into(),
            container_mac: Some("aa:bb:cc:dd:ee:02".into()),
            mtu: Some(1500),
            advertised: false,
        }
    }

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).is_empty());
        let mut m = BTreeMap::new();
        m.insert("c1/eth0".to_string(), result("c1/eth0"));
        save(dir.path(), &m).unwrap();
        assert_eq!(load(dir.path()), m);
        // Shrinking and growing rewrite the same file.
        m.insert("c2/eth0".to_string(), result("c2/eth0"));
        save(dir.path(), &m).unwrap();
        assert_eq!(load(dir.path()), m);
        m.remove("c1/eth0");
        save(dir.path(), &m).unwrap();
        assert_eq!(load(dir.path()), m);
        m.clear();
        save(dir.path(), &m).unwrap();
        assert_eq!(load(dir.path()), m);
        assert_eq!(
            std::fs::read(dir.path().join(FILE)).unwrap(),
            encode(&BTreeMap::new())
        );
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        let mut m = BTreeMap::new();
        m.insert("c1".to_string(), result("c1"));
        let good = encode(&m);
        assert_eq!(decode(&good).unwrap(), m);
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err());
        }
        assert!(decode(br#"{"version":2,"attachments":{}}"#).is_err());
        assert!(decode(b"").is_err());
        // An agent that died between the write and the truncate left the
        // tail of a longer earlier version: the first value is the file.
        let mut longer = m.clone();
        longer.insert("c2".to_string(), result("c2"));
        let mut torn = encode(&m);
        torn.extend_from_slice(&encode(&longer)[torn.len()..]);
        assert_eq!(decode(&torn).unwrap(), m);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"\xff garbage").unwrap();
        assert!(load(dir.path()).is_empty());
    }
}
