//! Peak heap and time of a full-table peer teardown (`Rib::peer_down`): the
//! one-shot form (one `RibOutput` for every prefix) against the stepped form
//! the RIB task uses (`Rib::peer_down_steps` + `Rib::remove_step`, a chunk
//! at a time). Peer 1 announces N /28s (~500 per UPDATE, one attribute set);
//! peer 2 is up and receives the exports (so the teardown withdraws N
//! prefixes from it); with `two`, peer 3 announces the same N prefixes too, so
//! the teardown moves every best path to peer 3 instead of removing it.
//!
//! The consumer keeps what the RIB task keeps while the owner's channel is
//! full (`owner slow`): 8 bytes per changed IPv4 prefix
//! (session/outbox.rs), or nothing (`owner keeps up`); UPDATEs count as sent. Peak = highest live heap during the teardown and that
//! consumption, above the heap before it (the RIB).
//!
//! Run: `cargo run -p tortie-bgp --release --example rib_teardown [-- N [CHUNK]]`
//! (default 1000000 and 8192, the RIB task's step).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use tortie_bgp::heap;
use tortie_bgp::rib::{PeerId, PeerInfo, Rib, RibConfig, RibOutput};
use tortie_bgp::types::{AsPath, Ipv4Prefix, Origin, PathAttributes, Prefix};
use tortie_bgp::wire::Update;

#[global_allocator]
static GLOBAL: tortie_bgp::heap::CountingAlloc = tortie_bgp::heap::CountingAlloc;

const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);

fn nth_prefix(i: u32) -> Prefix {
    let a = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + (i << 4));
    Prefix::V4(Ipv4Prefix::new(a, 28).unwrap_or_else(|| unreachable!()))
}

fn peer(rib: &mut Rib, id: u32, asn: u32) {
    let a = Ipv4Addr::new(198, 18, 0, id as u8);
    drop(rib.peer_up(
        PeerId(id),
        PeerInfo::new(IpAddr::V4(a), asn, a, IpAddr::V4(LOCAL)),
    ));
}

fn announce(rib: &mut Rib, id: u32, asn: u32, n: u32) {
    let attrs = Arc::new(PathAttributes {
        origin: Origin::Igp,
        as_path: AsPath::sequence(vec![asn]),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(198, 18, 0, id as u8))),
        ..PathAttributes::default()
    });
    let mut i = 0;
    while i < n {
        let end = (i + 500).min(n);
        let u = Update {
            attributes: Some(attrs.clone()),
            announced: (i..end).map(nth_prefix).collect(),
            ..Update::default()
        };
        drop(rib.apply_update(PeerId(id), &u));
        i = end;
    }
}

/// What the RIB task keeps of an output while the owner is slow (`keep`):
/// 8 bytes per changed prefix; the UPDATEs go to the sessions.
#[derive(Default)]
struct Sink {
    keep: bool,
    changed: Vec<u64>,
    changes: usize,
    withdrawn: usize,
    announced: usize,
}

impl Sink {
    fn consume(&mut self, out: RibOutput) {
        self.changes += out.best_changes.len();
        for c in out.best_changes {
            if let (true, Prefix::V4(p)) = (self.keep, c.prefix) {
                self.changed
                    .push((u64::from(u32::from(p.addr())) << 8) | u64::from(p.len()));
            }
        }
        for (_, u) in out.outbound {
            self.withdrawn += u.withdrawn.len();
            self.announced += u.announced.len();
        }
    }
}

fn run(n: u32, two: bool, chunk: Option<usize>, keep: bool) {
    let mut rib = Rib::new(RibConfig::new(64512, LOCAL));
    peer(&mut rib, 1, 65001);
    peer(&mut rib, 2, 65002);
    announce(&mut rib, 1, 65001, n);
    if two {
        peer(&mut rib, 3, 65003);
        announce(&mut rib, 3, 65003, n);
    }
    let before = heap::reset_peak();
    let mut sink = Sink {
        keep,
        ..Sink::default()
    };
    let t = Instant::now();
    match chunk {
        None => sink.consume(rib.peer_down(PeerId(1), false)),
        Some(c) => {
            let mut r = rib.peer_down_steps(PeerId(1), false);
            while let Some(out) = rib.remove_step(&mut r, c) {
                sink.consume(out);
            }
        }
    }
    let el = t.elapsed();
    let peak = heap::peak_bytes() - before;
    assert_eq!(sink.changes, n as usize);
    assert_eq!(rib.loc_rib_len(), if two { n as usize } else { 0 });
    println!(
        "{:>3} {:>8} {:>12} {:>15}: {:>7.1} ms  peak +{:>6.1} MiB = {:>5.1} B/prefix  (withdrawn {}, announced {})",
        if two { "two" } else { "one" },
        n,
        chunk.map_or("one-shot".to_string(), |c| format!("chunk {c}")),
        if keep { "owner slow" } else { "owner keeps up" },
        el.as_secs_f64() * 1e3,
        peak as f64 / (1 << 20) as f64,
        peak as f64 / f64::from(n),
        sink.withdrawn,
        sink.announced,
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(1_000_000).min(1 << 22) as u32;
    let chunk = args.get(1).copied().unwrap_or(8192);
    for two in [false, true] {
        for _ in 0..2 {
            run(n, two, None, true);
            run(n, two, Some(chunk), true);
            run(n, two, Some(chunk), false);
        }
    }
}
