//! RIB memory breakdown: the ingest benchmark's two shapes (`packed`: ~500
//! /28s per UPDATE sharing one attribute set; `unique`: one /28 per UPDATE,
//! each with its own AS_PATH `65001 4200000000+i`) encoded to wire bytes,
//! then decoded by `wire::Decoder` and applied to a `Rib`, with live heap
//! bytes and allocation counts taken by a global allocator, the same way
//! `tortie-bench`'s RIB-only column counts them.
//!
//! Run: `cargo run -p tortie-bgp --release --example rib_memory [-- ROUTES...]`
//! (default 100000 and 1000000; `SHAPE=packed|unique` runs one shape;
//! `FAMILY=ipv6` sends the benchmark's IPv6 workload instead: /48s in
//! fd00::/28 in MP_REACH_NLRI with next hop fd12:18::1, RFC 4760 §3).
//! Reports wall and thread CPU time, live heap per route after the load and
//! its peak during the load (hash-table resizes included), and the floor
//! under it: the same messages decoded alone (nothing applied), and the same
//! inserts into one bare hash table growing from empty (plain keyed hash,
//! then hashed by run as the RIB's tables are; for IPv4 also with the
//! RIB's 16-byte entries, with an `Arc` clone in each, and presized);
//! with `LOAD=1`, the RIB's run-hashed table against the plain keyed hash
//! at a high load (`load_table`).
//! `STRIDE=16` sends every 16th prefix only (see [`STRIDE`]); `RIB_ONLY=1`
//! runs the RIB load alone (for a profiler), `BARE16=grow|arc|presized` one
//! 16-byte bare row alone, in a heap no other run has used (as `RIB_ONLY=1`
//! has the RIB); `READS=1` reads every prefix's next hops back after the
//! load, `REPLACE=1` replaces every route's path after it; `CHANGES=off` builds no best-path changes, as the speaker with no
//! kernel to program.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Instant;

use tortie_bgp::AddressFamily;
use tortie_bgp::heap;
use tortie_bgp::rib::{
    BestPathFeed, PeerId, PeerInfo, Rib, RibBuildHasher, RibConfig, Run, RunBuildHasher, RunKey,
};
use tortie_bgp::types::{AsPath, Ipv4Prefix, Ipv6Prefix, Origin, PathAttributes, Prefix};
use tortie_bgp::wire::{self, CodecContext, Decoder, Message, Update};

#[global_allocator]
static GLOBAL: tortie_bgp::heap::CountingAlloc = tortie_bgp::heap::CountingAlloc;

const LOCAL_ASN: u32 = 64512;
const PEER_ASN: u32 = 65001;

fn ctx() -> CodecContext {
    CodecContext {
        four_octet_as: true,
        families: vec![AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST],
        local_asn: LOCAL_ASN,
        peer_asn: PEER_ASN,
        ..CodecContext::default()
    }
}

/// Every `STRIDE`-th prefix instead of every one (default 1): `STRIDE=16`
/// leaves one prefix of each run of sixteen neighbours, the sparsest table
/// for the RIB's run-hashed prefix tables.
static STRIDE: std::sync::LazyLock<u32> = std::sync::LazyLock::new(|| {
    std::env::var("STRIDE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
});

/// `RIB_ONLY=1`: the RIB load alone, without the floor runs (decode alone,
/// bare tables), for profiling it.
static RIB_ONLY: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var_os("RIB_ONLY").is_some());

/// `BARE16=grow|arc|presized`: that one row of [`bare_insert16`] alone (IPv4),
/// in a heap no other run has used: otherwise each row runs after the RIB
/// and the rows before it, into pages they faulted in and freed.
static BARE16: std::sync::LazyLock<Option<String>> =
    std::sync::LazyLock::new(|| std::env::var("BARE16").ok());

/// `READS=1`: after the load, every prefix's next hops read back once, in
/// the order loaded ([`Rib::best_next_hops`], as the speaker's outbox reads
/// each changed prefix for an owner that installs routes).
static READS: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var_os("READS").is_some());

/// `REPLACE=1`: after the load, every route announced again by the same peer
/// with another AS_PATH (each prefix's path replaced), thread CPU time.
static REPLACE: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var_os("REPLACE").is_some());

/// `CHANGES=off`: the RIB builds no best-path changes
/// ([`RibConfig::best_path_feed`] off), as under the speaker's control-plane
/// benchmark (no kernel, no best-path events).
static NO_CHANGES: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var("CHANGES").as_deref() == Ok("off"));

/// `10.0.0.0 + 16·i`/28, or `fd00:<i / 2^16>:<i mod 2^16>::/48` (as
/// tortie-bench), for `i` times [`STRIDE`].
fn nth_prefix(v6: bool, i: u32) -> Prefix {
    let i = i.wrapping_mul(*STRIDE);
    if v6 {
        let a = Ipv6Addr::new(0xfd00, (i >> 16) as u16, i as u16, 0, 0, 0, 0, 0);
        return Prefix::V6(Ipv6Prefix::new(a, 48).unwrap_or_else(|| unreachable!()));
    }
    let a = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + (i << 4));
    Prefix::V4(Ipv4Prefix::new(a, 28).unwrap_or_else(|| unreachable!()))
}

fn workload(v6: bool, unique: bool, n: u32, path0: u32) -> Vec<Vec<u8>> {
    let nh: IpAddr = if v6 {
        Ipv6Addr::new(0xfd12, 0x18, 0, 0, 0, 0, 0, 1).into()
    } else {
        Ipv4Addr::new(198, 18, 0, 1).into()
    };
    let nth_prefix = |i| nth_prefix(v6, i);
    let attrs = |path: Vec<u32>| {
        Arc::new(PathAttributes {
            origin: Origin::Igp,
            as_path: AsPath::sequence(path),
            next_hop: Some(nh),
            ..PathAttributes::default()
        })
    };
    let c = ctx();
    let mut msgs = Vec::new();
    if unique {
        for i in 0..n {
            let u = Update {
                attributes: Some(attrs(vec![PEER_ASN, path0 + i])),
                announced: vec![nth_prefix(i)].into(),
                ..Update::default()
            };
            wire::encode_updates(&u, &c, &mut msgs).expect("encode");
        }
    } else {
        let shared = attrs(vec![PEER_ASN, path0]);
        let mut i = 0;
        while i < n {
            let end = (i + 500).min(n);
            let u = Update {
                attributes: Some(shared.clone()),
                announced: (i..end).map(nth_prefix).collect(),
                ..Update::default()
            };
            wire::encode_updates(&u, &c, &mut msgs).expect("encode");
            i = end;
        }
    }
    msgs
}

fn run(v6: bool, unique: bool, n: u32) {
    let msgs = workload(v6, unique, n, 4_200_000_000);
    if !*RIB_ONLY {
        decode_alone(&msgs, n);
    }
    let before = heap::reset_peak();
    let allocs = heap::allocations();
    let cpu = heap::thread_cpu_seconds();
    let t = Instant::now();
    let mut dec = Decoder::new();
    let mut cfg = RibConfig::new(LOCAL_ASN, Ipv4Addr::new(198, 18, 0, 2));
    if *NO_CHANGES {
        cfg.best_path_feed = BestPathFeed::Off;
    }
    let mut rib = Rib::new(cfg);
    let peer = Ipv4Addr::new(198, 18, 0, 1);
    rib.peer_up(
        PeerId(1),
        PeerInfo::new(
            IpAddr::V4(peer),
            PEER_ASN,
            peer,
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
        ),
    )
    .expect("peer_up");
    apply_all(&mut rib, &mut dec, &msgs);
    let el = t.elapsed();
    let cpu = heap::thread_cpu_seconds() - cpu;
    let bytes = heap::live_bytes() - before;
    let peak = heap::peak_bytes() - before;
    let na = heap::allocations() - allocs;
    assert_eq!(rib.loc_rib_len(), n as usize);
    if *READS {
        read_back(&rib, v6, n);
    }
    if *REPLACE {
        replace(&mut rib, &mut dec, v6, unique, n);
    }
    println!(
        "{} {:>6} {:>8}: {:>7.1} ms ({:>7.1} ms CPU)  {:>6.1} B/route (peak {:>6.1})  {:>5.2} allocations/route  {:>5.2} M routes/s",
        if v6 { "IPv6" } else { "IPv4" },
        if unique { "unique" } else { "packed" },
        n,
        el.as_secs_f64() * 1e3,
        cpu * 1e3,
        bytes as f64 / f64::from(n),
        peak as f64 / f64::from(n),
        na as f64 / f64::from(n),
        f64::from(n) / el.as_secs_f64() / 1e6
    );
    drop(rib);
    drop(dec);
}

/// Decodes `msgs` and applies them to `rib` as peer 1's.
fn apply_all(rib: &mut Rib, dec: &mut Decoder, msgs: &[Vec<u8>]) {
    let c = ctx();
    for m in msgs {
        match dec.decode(m, &c) {
            Ok(Message::Update(u)) => drop(rib.apply_update(PeerId(1), &u).expect("apply")),
            other => panic!("{other:?}"),
        }
    }
}

/// [`REPLACE`]: the load again with other AS_PATHs (decoded too, as the
/// load), into `rib`.
fn replace(rib: &mut Rib, dec: &mut Decoder, v6: bool, unique: bool, n: u32) {
    let msgs = workload(v6, unique, n, 4_100_000_000);
    let cpu = heap::thread_cpu_seconds();
    apply_all(rib, dec, &msgs);
    let cpu = heap::thread_cpu_seconds() - cpu;
    assert_eq!(rib.loc_rib_len(), n as usize);
    println!(
        "  replace {n:>5}: {:>7.1} ms CPU  every route's path replaced",
        cpu * 1e3
    );
}

/// [`READS`]: each prefix's next hops read back from `rib`, thread CPU time.
fn read_back(rib: &Rib, v6: bool, n: u32) {
    let cpu = heap::thread_cpu_seconds();
    let found = (0..n)
        .filter(|&i| {
            rib.best_next_hops(nth_prefix(v6, i))
                .is_some_and(|h| h.len() == 1)
        })
        .count();
    let cpu = heap::thread_cpu_seconds() - cpu;
    assert_eq!(found, n as usize);
    println!(
        "  reads {n:>7}: {:>7.1} ms CPU  best_next_hops of every prefix",
        cpu * 1e3
    );
}

/// The decoder's part of a run: the same messages decoded and dropped,
/// nothing applied (with the bare table below, the floor of the whole run).
fn decode_alone(msgs: &[Vec<u8>], n: u32) {
    let c = ctx();
    let cpu = heap::thread_cpu_seconds();
    let t = Instant::now();
    let mut dec = Decoder::new();
    let mut routes = 0;
    for m in msgs {
        match dec.decode(m, &c) {
            Ok(Message::Update(u)) => routes += u.announced.len(),
            other => panic!("{other:?}"),
        }
    }
    let el = t.elapsed();
    let cpu = heap::thread_cpu_seconds() - cpu;
    assert_eq!(routes, n as usize);
    println!(
        "  decode {:>6}: {:>7.1} ms ({:>7.1} ms CPU)  decode alone, nothing applied",
        n,
        el.as_secs_f64() * 1e3,
        cpu * 1e3,
    );
}

/// The floor under the RIB's per-route work: the same N prefixes inserted
/// into a bare seeded hash table with the RIB's entry size (a 16-byte
/// value, like a `Dest`), growing from empty, nothing else; once with the
/// plain keyed hash, once hashed by run as the RIB's tables are.
fn bare_table(v6: bool, n: u32) {
    if v6 {
        bare_both(
            (0..n).map(|i| nth_prefix(true, i)).filter_map(|p| match p {
                Prefix::V6(p) => Some(p),
                Prefix::V4(_) => None,
            }),
            n,
        );
    } else {
        let keys = v4_keys(n);
        bare_both(keys.iter().copied(), n);
        bare_insert16(&keys, n);
    }
}

/// The first `n` IPv4 prefixes of the workload.
fn v4_keys(n: u32) -> Vec<Ipv4Prefix> {
    (0..n)
        .filter_map(|i| match nth_prefix(false, i) {
            Prefix::V4(p) => Some(p),
            Prefix::V6(_) => None,
        })
        .collect()
}

/// [`bare_insert`] by run with the RIB's IPv4 entry (`V4Entry`): 16 bytes,
/// the prefix's address and length beside an 8-byte value, in one
/// `hashbrown::HashTable`; growing from empty, then the same with the value
/// an `Arc` clone per entry (the RIB's attribute reference, one locked
/// increment per route), then presized for all `n` (no growth).
fn bare_insert16(keys: &[Ipv4Prefix], n: u32) {
    let one = Arc::new(0u64);
    let only = BARE16.as_deref();
    if only.is_none_or(|r| r == "grow") {
        bare16(keys, n, 0, |i| {
            (Bare16::Plain(i as u64), "by run, 16-byte entries")
        });
    }
    if only.is_none_or(|r| r == "arc") {
        bare16(keys, n, 0, |_| {
            let what = "by run, 16-byte entries, an Arc clone each";
            (Bare16::Shared(one.clone()), what)
        });
    }
    if only.is_none_or(|r| r == "presized") {
        bare16(keys, n, keys.len(), |i| {
            (Bare16::Plain(i as u64), "by run, 16-byte entries, presized")
        });
    }
}

/// The value of a [`bare16`] entry: 8 bytes either way.
enum Bare16 {
    Plain(#[allow(dead_code)] u64),
    Shared(#[allow(dead_code)] Arc<u64>),
}

fn bare16(
    keys: &[Ipv4Prefix],
    n: u32,
    presize: usize,
    mut value: impl FnMut(usize) -> (Bare16, &'static str),
) {
    let b = RunBuildHasher::default();
    let key = |e: &(Bare16, u32, u8)| Ipv4Prefix::new(Ipv4Addr::from(e.1), e.2);
    let mut what = "";
    let cpu = heap::thread_cpu_seconds();
    let t = Instant::now();
    let mut m: hashbrown::HashTable<(Bare16, u32, u8)> = hashbrown::HashTable::new();
    m.reserve(presize, |e| key(e).map_or(0, |k| b.hash_one(Run(k))));
    for (i, k) in keys.iter().enumerate() {
        let (addr, len) = (u32::from(k.addr()), k.len());
        let h = b.hash_one(Run(*k));
        let (v, w) = value(i);
        what = w;
        m.entry(
            h,
            |e| e.1 == addr && e.2 == len,
            |e| key(e).map_or(0, |k| b.hash_one(Run(k))),
        )
        .insert((v, addr, len));
    }
    assert_eq!(m.len(), n as usize);
    report_bare(n, t, cpu, what);
}

fn bare_both<K: RunKey + Hash + Eq + Copy>(keys: impl Iterator<Item = K>, n: u32) {
    let keys: Vec<K> = keys.collect();
    bare_insert::<_, RibBuildHasher>(&keys, n, "plain");
    let runs: Vec<Run<K>> = keys.iter().map(|k| Run(*k)).collect();
    bare_insert::<_, RunBuildHasher>(&runs, n, "by run");
}

fn bare_insert<K: Hash + Eq + Copy, S: BuildHasher + Default>(keys: &[K], n: u32, what: &str) {
    let cpu = heap::thread_cpu_seconds();
    let t = Instant::now();
    let mut m: HashMap<K, [u64; 2], S> = HashMap::default();
    for (i, k) in keys.iter().enumerate() {
        m.insert(*k, [i as u64, 0]);
    }
    assert_eq!(m.len(), n as usize);
    report_bare(n, t, cpu, what);
}

/// Prints a bare table's row: wall since `t`, thread CPU since `cpu`.
fn report_bare(n: u32, t: Instant, cpu: f64, what: &str) {
    let el = t.elapsed();
    let cpu = heap::thread_cpu_seconds() - cpu;
    println!(
        "  bare {:>8}: {:>7.1} ms ({:>7.1} ms CPU)  one hash table ({what}), insert only",
        n,
        el.as_secs_f64() * 1e3,
        cpu * 1e3,
    );
}

/// The RIB's run-hashed tables ([`Run`], [`RunBuildHasher`]) against the
/// plain keyed hash ([`RibBuildHasher`]) in one table sized for N (at 900k:
/// 2^20 buckets, load 0.86, the worst a shard reaches; at 110k, 2^17 and
/// 0.84): N dense /28s and N dense /32s in address order, and N /32s
/// scattered over the address space (a bijection of the index, so all
/// distinct, one per run); CPU time to insert them all, then to look every
/// one up, in that order.
fn load_table(n: u32) {
    let dense = |len: u8, step: u32| -> Vec<Ipv4Prefix> {
        (0..n)
            .filter_map(|i| Ipv4Prefix::new(Ipv4Addr::from(0x0a00_0000 + i * step), len))
            .collect()
    };
    let scattered: Vec<Ipv4Prefix> = (0..n)
        .filter_map(|i| Ipv4Prefix::new(Ipv4Addr::from(i.wrapping_mul(0x9e37_79b1)), 32))
        .collect();
    for (shape, keys) in [
        ("dense /28", dense(28, 16)),
        ("dense /32", dense(32, 1)),
        ("scattered /32", scattered),
    ] {
        let runs: Vec<Run<Ipv4Prefix>> = keys.iter().map(|k| Run(*k)).collect();
        let (pi, pl) = insert_lookup::<_, RibBuildHasher>(&keys);
        let (ri, rl) = insert_lookup::<_, RunBuildHasher>(&runs);
        println!(
            "  load {n:>8} {shape:<13}: insert {pi:>6.1} → {ri:>6.1} ms CPU, lookup {pl:>6.1} → {rl:>6.1} ms CPU (plain → run-hashed)"
        );
    }
}

fn insert_lookup<K: Hash + Eq + Copy, S: BuildHasher + Default>(keys: &[K]) -> (f64, f64) {
    let mut m: HashMap<K, [u64; 2], S> =
        HashMap::with_capacity_and_hasher(keys.len(), S::default());
    let cpu = heap::thread_cpu_seconds();
    for (i, k) in keys.iter().enumerate() {
        m.insert(*k, [i as u64, 0]);
    }
    let ins = heap::thread_cpu_seconds() - cpu;
    assert_eq!(m.len(), keys.len());
    let cpu = heap::thread_cpu_seconds();
    let found = keys.iter().filter(|k| m.contains_key(k)).count();
    let look = heap::thread_cpu_seconds() - cpu;
    assert_eq!(found, keys.len());
    (ins * 1e3, look * 1e3)
}

fn main() {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    println!(
        "size_of: PathAttributes {} B, AsPath {} B",
        std::mem::size_of::<PathAttributes>(),
        std::mem::size_of::<AsPath>()
    );
    let shapes: Vec<bool> = match std::env::var("SHAPE").as_deref() {
        Ok("packed") => vec![false],
        Ok("unique") => vec![true],
        _ => vec![false, true],
    };
    let v6 = std::env::var("FAMILY").as_deref() == Ok("ipv6");
    for &n in &sizes {
        let n = n.min(1 << 20);
        if BARE16.is_some() {
            bare_insert16(&v4_keys(n), n);
            continue;
        }
        for &unique in &shapes {
            run(v6, unique, n);
        }
        if *RIB_ONLY {
            continue;
        }
        bare_table(v6, n);
        if !v6 && std::env::var("LOAD").is_ok() {
            load_table(n);
        }
    }
}
