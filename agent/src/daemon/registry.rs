//! The container registry: the one owner of what the agent knows about each
//! container it attached — id, addresses, host veth, namespace, interface
//! name and the MACs of the answer (DESIGN.md §5). IPAM only allocates
//! addresses; the kernel owns the veths; this is the map between them.
//!
//! Data flow: attach inserts an entry once the veth and the durable IPAM
//! record exist, just before the /32 is installed and announced (never
//! before: a half-made attach has no entry; a failed announce removes it);
//! detach removes it before the address goes back to IPAM; a repeated attach
//! answers from it (MACs included: podman rejects CNI results without one)
//! after checking the veth still exists. At start-up [`plan`] compares the
//! saved entries with the veths found in the kernel: complete ones are kept
//! or adopted, half-made ones removed. Learned routes never override an
//! address held here ([`Registry::holds`]). Entries are keyed by host veth
//! name, which is a function of the id (`tortie_routes::host_ifname`), so a
//! container adopted from the kernel without a saved entry (its id unknown)
//! is found by the same key when its id comes back.
//!
//! Family-generic: addresses are `IpNetwork`s, one per family (a /32, a
//! /128).
//!
//! File: `attachments.json` under `state.dir`, beside (never inside) IPAM's
//! own files; `{"version": 2, "containers": {host_ifname: Container}}`.
//! Version 1 (`{"version": 1, "attachments": {id: AttachResult}}`) still
//! loads. Rewritten in place after every attach and detach (one `pwrite` at
//! 0 on a descriptor kept open from the first save, an `ftruncate` only when
//! the new contents are shorter than the last), without fsync and without a
//! rename: it is not the source of truth for addresses (IPAM journals those
//! with fdatasync; the kernel holds the veths and their /32s, which start-up
//! reconciles against), and it sits on the attach path. Measured on ext4
//! under load: tmp + fsync + rename + directory fsync took 1–8 ms, and even a
//! bare rename over the file (or an `O_TRUNC` rewrite) 0.6–4 ms, because
//! ext4's `auto_da_alloc` flushes the data of a file replaced that way; the
//! in-place write takes ~10 µs. A crashed agent loses nothing (the page cache
//! has the file; if it died between the write and the truncate, [`decode`]
//! reads the first JSON value and ignores the stale tail); a crashed kernel
//! may leave a torn file, which only costs the MACs of repeated attaches
//! (logged): complete veths are adopted from the kernel anyway.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::api::AttachResult;

pub const FILE: &str = "attachments.json";
const VERSION: u32 = 2;

/// One container interface the agent made (or adopted at start-up).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// Attachment id (CNI: `CONTAINERID/IFNAME`); for a container adopted
    /// from the kernel without a saved entry, its host veth name until the
    /// id is seen again.
    pub id: String,
    /// The container's addresses (each a host route on the veth).
    #[serde(with = "nets")]
    pub addresses: Vec<IpNetwork>,
    pub host_ifname: String,
    #[serde(default)]
    pub host_mac: Option<String>,
    /// Namespace path; empty when adopted without a saved entry.
    #[serde(default)]
    pub netns: String,
    /// Interface name inside the container; empty when unknown.
    #[serde(default)]
    pub ifname: String,
    #[serde(default)]
    pub container_mac: Option<String>,
    #[serde(default)]
    pub mtu: Option<u32>,
}

impl Container {
    /// The addresses without their (host) prefix lengths, IPv4 first.
    pub fn ips(&self) -> Vec<IpAddr> {
        self.addresses.iter().map(|n| n.ip()).collect()
    }

    /// The IPv4 address.
    pub fn v4(&self) -> Option<Ipv4Addr> {
        self.addresses.iter().find_map(|n| match n.ip() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
    }

    /// Whether the id is known (not a veth name standing in for it).
    pub fn id_known(&self) -> bool {
        self.id != self.host_ifname
    }
}

/// `IpNetwork` lists as strings (`"10.244.1.2/32"`).
mod nets {
    use ipnetwork::IpNetwork;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[IpNetwork], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNetwork>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}

/// A host /32 network for `ip`.
pub fn host_net(ip: IpAddr) -> IpNetwork {
    let len = if ip.is_ipv4() { 32 } else { 128 };
    // A full-length prefix is always valid.
    IpNetwork::new(ip, len).unwrap_or_else(|_| IpNetwork::from(ip))
}

/// The containers, by host veth name, and where they are saved.
#[derive(Debug, Default)]
pub struct Registry {
    by_host: BTreeMap<String, Container>,
    by_addr: BTreeMap<IpAddr, String>,
    dir: PathBuf,
    /// The file, open from the first save on, and the length last written
    /// to it (see [`Saved`]).
    saved: Option<Saved>,
}

/// The registry's file kept open between saves: a save is one `pwrite`,
/// plus an `ftruncate` when it is shorter than the file (was four system
/// calls: open, write, truncate, close; lab/bench/README.md, session 17,
/// cniadd2 lane).
#[derive(Debug)]
struct Saved {
    file: std::fs::File,
    /// The file's length after the last save.
    len: u64,
}

impl Registry {
    /// An empty registry saving under `dir`.
    pub fn new(dir: &Path) -> Registry {
        Registry {
            dir: dir.to_path_buf(),
            ..Default::default()
        }
    }

    /// A registry holding `containers`, saving under `dir` (not saved yet).
    pub fn with(dir: &Path, containers: impl IntoIterator<Item = Container>) -> Registry {
        let mut r = Registry::new(dir);
        for c in containers {
            r.put(c);
        }
        r
    }

    fn put(&mut self, c: Container) {
        if let Some(old) = self.by_host.remove(&c.host_ifname) {
            for a in &old.addresses {
                self.by_addr.remove(&a.ip());
            }
        }
        for a in &c.addresses {
            self.by_addr.insert(a.ip(), c.host_ifname.clone());
        }
        self.by_host.insert(c.host_ifname.clone(), c);
    }

    /// The container whose host veth is `host`.
    pub fn get(&self, host: &str) -> Option<&Container> {
        self.by_host.get(host)
    }

    /// Whether a container holds `ip`.
    pub fn holds(&self, ip: IpAddr) -> bool {
        self.by_addr.contains_key(&ip)
    }

    pub fn len(&self) -> usize {
        self.by_host.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Container> + '_ {
        self.by_host.values()
    }

    /// Records `c` (replacing the entry of its veth) and saves.
    pub fn insert(&mut self, c: Container) {
        if self.by_host.get(&c.host_ifname) == Some(&c) {
            return;
        }
        self.put(c);
        self.save();
    }

    /// Forgets the container on `host` and saves.
    pub fn remove(&mut self, host: &str) -> Option<Container> {
        let c = self.by_host.remove(host)?;
        for a in &c.addresses {
            self.by_addr.remove(&a.ip());
        }
        self.save();
        Some(c)
    }

    /// Rewrites the file. A failed save only costs the MACs of a repeated
    /// attach after a restart: logged, not an error (and the file is opened
    /// again by the next save).
    pub fn save(&mut self) {
        let bytes = encode(&self.by_host);
        if let Err(e) = save(&self.dir, &mut self.saved, &bytes) {
            self.saved = None;
            tracing::warn!(error = %e, "saving the container registry");
        }
    }
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    #[serde(default)]
    containers: BTreeMap<String, Container>,
    /// Version 1's field.
    #[serde(default, skip_serializing)]
    attachments: BTreeMap<String, AttachResult>,
}

/// A version-1 entry (the attach answer) as a registry entry.
fn from_v1(r: AttachResult) -> Result<Container, String> {
    let ip: IpAddr =
        r.ip.parse()
            .map_err(|e| format!("{}: address {:?}: {e}", r.id, r.ip))?;
    Ok(Container {
        id: r.id,
        addresses: vec![host_net(ip)],
        host_ifname: r.host_ifname,
        host_mac: r.host_mac,
        netns: r.netns,
        ifname: r.container_ifname,
        container_mac: r.container_mac,
        mtu: r.mtu,
    })
}

/// Parses the file's bytes: the first JSON value (anything after it is the
/// tail of a longer earlier version, see the module docs); version 1 or 2.
/// `Err` describes what is wrong. Never panics.
pub fn decode(bytes: &[u8]) -> Result<Vec<Container>, String> {
    let d: OnDisk = serde_json::Deserializer::from_slice(bytes)
        .into_iter::<OnDisk>()
        .next()
        .ok_or_else(|| "empty file".to_string())?
        .map_err(|e| e.to_string())?;
    match d.version {
        1 => d.attachments.into_values().map(from_v1).collect(),
        VERSION => Ok(d.containers.into_values().collect()),
        v => Err(format!("unsupported version {v}")),
    }
}

pub fn encode(containers: &BTreeMap<String, Container>) -> Vec<u8> {
    let d = OnDisk {
        version: VERSION,
        containers: containers.clone(),
        attachments: BTreeMap::new(),
    };
    // Serialising strings, numbers and maps with string keys cannot fail.
    serde_json::to_vec(&d).unwrap_or_default()
}

/// The saved entries; empty (with a warning) when the file is missing or bad.
pub fn load(dir: &Path) -> Vec<Container> {
    let path = dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => decode(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "ignoring the saved container registry");
            Vec::new()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "reading the saved container registry");
            Vec::new()
        }
    }
}

/// Rewrites the file in place (not atomically, not durably: see the module
/// docs) through `kept`, which it opens (creating the file) when empty: one
/// `pwrite`, and an `ftruncate` when `bytes` is shorter than what the last
/// save left (the file's own length, when just opened).
fn save(dir: &Path, kept: &mut Option<Saved>, bytes: &[u8]) -> std::io::Result<()> {
    let path = || dir.join(FILE);
    let ctx = |what: &str, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("{what} {}: {e}", path().display()))
    };
    let s = match kept {
        Some(s) => s,
        None => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(path())
                .map_err(|e| ctx("opening", e))?;
            let len = file.metadata().map_err(|e| ctx("reading", e))?.len();
            kept.insert(Saved { file, len })
        }
    };
    s.file
        .write_all_at(bytes, 0)
        .map_err(|e| ctx("writing", e))?;
    let len = bytes.len() as u64;
    if len < s.len {
        s.file.set_len(len).map_err(|e| ctx("truncating", e))?;
    }
    s.len = len;
    Ok(())
}

/// What start-up does with the saved entries and the kernel's veths.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Complete containers: saved entries whose veth exists (address taken
    /// from the kernel's /32 when it differs), and veths with a /32 of ours
    /// but no entry (adopted under their veth name, no MACs).
    pub containers: Vec<Container>,
    /// Veths of ours with no /32 and no entry: an attach that died half-way
    /// (SIGKILL, crash). Removed before IPAM reconciles, so their address is
    /// free only once nothing carries it.
    pub half_made: Vec<String>,
    /// Saved entries whose veth is gone (container deleted while we were down).
    pub gone: Vec<Container>,
}

/// Compares `saved` entries with the kernel: `routed` = (veth, address) of
/// each /32 of ours on a veth of ours, `veths` = every veth of ours. Pure.
/// A saved entry whose veth exists is kept even without its /32 (someone
/// removed the route; the route table puts it back), since an entry is only
/// written once an attach completed.
pub fn plan(saved: Vec<Container>, routed: &[(String, IpAddr)], veths: &[String]) -> Plan {
    let mut out = Plan::default();
    let mut saved: BTreeMap<String, Container> = saved
        .into_iter()
        .map(|c| (c.host_ifname.clone(), c))
        .collect();
    for dev in veths {
        let mut kernel: Vec<IpAddr> = routed
            .iter()
            .filter(|(d, _)| d == dev)
            .map(|(_, a)| *a)
            .collect();
        kernel.sort_by_key(|a| a.is_ipv6());
        match (saved.remove(dev), kernel.is_empty()) {
            (Some(mut c), false) => {
                if c.ips() != kernel {
                    tracing::warn!(host_ifname = %dev, saved = ?c.ips(), kernel = ?kernel, "the veth routes other addresses than saved: keeping the kernel's");
                    c.addresses = kernel.into_iter().map(host_net).collect();
                }
                out.containers.push(c);
            }
            (Some(c), true) => out.containers.push(c),
            (None, false) => out.containers.push(Container {
                id: dev.clone(),
                addresses: kernel.into_iter().map(host_net).collect(),
                host_ifname: dev.clone(),
                host_mac: None,
                netns: String::new(),
                ifname: String::new(),
                container_mac: None,
                mtu: None,
            }),
            (None, true) => out.half_made.push(dev.clone()),
        }
    }
    out.gone = saved.into_values().collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(id: &str, host: &str, ip: &str) -> Container {
        Container {
            id: id.into(),
            addresses: vec![host_net(ip.parse().unwrap())],
            host_ifname: host.into(),
            host_mac: Some("aa:bb:cc:dd:ee:01".into()),
            netns: "/run/netns/c1".into(),
            ifname: "eth0".into(),
            container_mac: Some("aa:bb:cc:dd:ee:02".into()),
            mtu: Some(1500),
        }
    }

    fn map(cs: &[Container]) -> BTreeMap<String, Container> {
        cs.iter()
            .map(|c| (c.host_ifname.clone(), c.clone()))
            .collect()
    }

    #[test]
    fn save_load_round_trip_and_index() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).is_empty());
        let mut r = Registry::new(dir.path());
        let a = container("c1/eth0", "tt1", "10.244.1.2");
        let b = container("c2/eth0", "tt2", "10.244.1.3");
        r.insert(a.clone());
        r.insert(b.clone());
        assert_eq!(load(dir.path()), vec![a.clone(), b.clone()]);
        assert!(r.holds("10.244.1.3".parse().unwrap()));
        // Replacing an entry re-indexes its addresses.
        let b2 = container("c2/eth0", "tt2", "10.244.1.9");
        r.insert(b2.clone());
        assert!(!r.holds("10.244.1.3".parse().unwrap()));
        assert!(r.holds("10.244.1.9".parse().unwrap()));
        assert_eq!(r.remove("tt1"), Some(a));
        assert!(!r.holds("10.244.1.2".parse().unwrap()));
        assert_eq!(load(dir.path()), vec![b2.clone()]);
        assert_eq!(r.remove("tt2"), Some(b2));
        assert_eq!(r.remove("tt2"), None);
        assert!(r.is_empty());
        assert_eq!(
            std::fs::read(dir.path().join(FILE)).unwrap(),
            encode(&BTreeMap::new())
        );
    }

    /// Saves go through one kept descriptor: the file ends exactly at the
    /// latest contents, whether it grows, shrinks, or was longer on disk
    /// when the registry first saved (a restart).
    #[test]
    fn a_kept_file_holds_exactly_the_latest_contents() {
        let dir = tempfile::tempdir().unwrap();
        let a = container("c1/eth0", "tt1", "10.244.1.2");
        let b = container("c2/eth0", "tt2", "10.244.1.3");
        let longer = encode(&map(&[a.clone(), b.clone()]));
        std::fs::write(dir.path().join(FILE), [&longer[..], b"   "].concat()).unwrap();
        let mut r = Registry::with(dir.path(), [a.clone()]);
        r.save();
        let on_disk = || std::fs::read(dir.path().join(FILE)).unwrap();
        assert_eq!(on_disk(), encode(&map(std::slice::from_ref(&a))));
        r.insert(b.clone());
        assert_eq!(on_disk(), longer);
        r.remove("tt2");
        assert_eq!(on_disk(), encode(&map(&[a])));
    }

    #[test]
    fn version_1_files_load() {
        let v1 = br#"{"version":1,"attachments":{"c1/eth0":{"id":"c1/eth0","ip":"10.244.1.2",
            "prefix_len":32,"gateway":"169.254.1.1","netns":"/run/netns/c1","host_ifname":"tt1",
            "host_mac":"aa:bb:cc:dd:ee:01","container_ifname":"eth0",
            "container_mac":"aa:bb:cc:dd:ee:02","mtu":1500,"advertised":false}}}"#;
        assert_eq!(
            decode(v1).unwrap(),
            vec![container("c1/eth0", "tt1", "10.244.1.2")]
        );
        assert!(decode(br#"{"version":1,"attachments":{"x":{"id":"x","ip":"nope","prefix_len":32,"gateway":"","netns":"","host_ifname":"t","container_ifname":""}}}"#).is_err());
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        let good = encode(&map(&[container("c1", "tt1", "10.244.1.2")]));
        assert_eq!(
            decode(&good).unwrap(),
            vec![container("c1", "tt1", "10.244.1.2")]
        );
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err());
        }
        assert!(decode(br#"{"version":3,"containers":{}}"#).is_err());
        assert!(decode(b"").is_err());
        // An agent that died between the write and the truncate left the
        // tail of a longer earlier version: the first value is the file.
        let longer = encode(&map(&[
            container("c1", "tt1", "10.244.1.2"),
            container("c2", "tt2", "10.244.1.3"),
        ]));
        let mut torn = good.clone();
        torn.extend_from_slice(&longer[torn.len()..]);
        assert_eq!(
            decode(&torn).unwrap(),
            vec![container("c1", "tt1", "10.244.1.2")]
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"\xff garbage").unwrap();
        assert!(load(dir.path()).is_empty());
    }

    #[test]
    fn start_up_plan() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let saved = vec![
            container("ok", "tt1", "10.244.1.2"),
            container("moved", "tt2", "10.244.1.3"),
            container("no-route", "tt3", "10.244.1.4"),
            container("gone", "tt4", "10.244.1.5"),
        ];
        let routed: Vec<(String, IpAddr)> = vec![
            ("tt1".to_string(), ip("10.244.1.2").into()),
            ("tt2".to_string(), ip("10.244.1.30").into()),
            ("tt5".to_string(), "fd00::6".parse().unwrap()),
            ("tt5".to_string(), ip("10.244.1.6").into()),
        ];
        let veths: Vec<String> = ["tt1", "tt2", "tt3", "tt5", "tt6"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = plan(saved, &routed, &veths);
        let summary: Vec<(String, String, Option<Ipv4Addr>)> = p
            .containers
            .iter()
            .map(|c| (c.id.clone(), c.host_ifname.clone(), c.v4()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("ok".into(), "tt1".into(), Some(ip("10.244.1.2"))),
                ("moved".into(), "tt2".into(), Some(ip("10.244.1.30"))),
                ("no-route".into(), "tt3".into(), Some(ip("10.244.1.4"))),
                ("tt5".into(), "tt5".into(), Some(ip("10.244.1.6"))),
            ]
        );
        assert!(!p.containers[3].id_known());
        // Adopted with both families, IPv4 first.
        assert_eq!(
            p.containers[3].ips()[1],
            "fd00::6".parse::<IpAddr>().unwrap()
        );
        assert_eq!(p.half_made, vec!["tt6".to_string()]);
        assert_eq!(p.gone.len(), 1);
        assert_eq!(p.gone[0].id, "gone");
    }
}
