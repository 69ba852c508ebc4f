//! Fan-out benchmark (issue 16): the RIB's cost of one best-path change as
//! the number of up peers grows. A route reflector with N iBGP clients; each
//! client announces its own /26 and then a run of /32s (one UPDATE each, as
//! containers come up with `advertise = "hosts"`); every change is reflected
//! to the N − 1 other clients. Per-change work should grow linearly with N;
//! the figures printed are this thread's CPU time (not wall time: the host
//! may be busy) per change and per (change, peer), best of 3 runs.
//!
//! Run: `cargo run -p tortie-bgp --release --example fanout_bench [-- N...]`
//! (default N = 25 50 100 200 400).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use tortie_bgp::heap;
use tortie_bgp::rib::{PeerId, PeerInfo, Rib, RibConfig};
use tortie_bgp::types::{Ipv4Prefix, PathAttributes, Prefix};
use tortie_bgp::wire::Update;

const LOCAL_ASN: u32 = 64512;
/// Host routes each client announces after its block.
const HOSTS_PER_CLIENT: u32 = 4;

fn client_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a64_0000u32 + i + 1)
}

fn prefix(addr: u32, len: u8) -> Prefix {
    Prefix::V4(Ipv4Prefix::new(Ipv4Addr::from(addr), len).expect("valid prefix"))
}

fn run(n: u32) -> (f64, usize, usize) {
    let mut rib = Rib::new(RibConfig::new(LOCAL_ASN, Ipv4Addr::new(10, 100, 255, 1)));
    let local = IpAddr::V4(Ipv4Addr::new(10, 100, 255, 1));
    for i in 0..n {
        let a = client_addr(i);
        let mut info = PeerInfo::new(IpAddr::V4(a), LOCAL_ASN, a, local);
        info.rr_client = true;
        rib.peer_up(PeerId(i), info).expect("peer up");
    }
    let mut changes = 0;
    let mut sent = 0;
    let t = heap::thread_cpu_seconds();
    for step in 0..=HOSTS_PER_CLIENT {
        for i in 0..n {
            let attrs = Arc::new(PathAttributes {
                next_hop: Some(IpAddr::V4(client_addr(i))),
                local_pref: Some(100),
                ..Default::default()
            });
            // The client's /26 first, then one /32 inside it per step.
            let block = 0x0af5_0000u32 + (i << 6);
            let p = if step == 0 {
                prefix(block, 26)
            } else {
                prefix(block + step, 32)
            };
            let u = Update {
                attributes: Some(attrs),
                announced: vec![p].into(),
                ..Default::default()
            };
            let out = rib.apply_update(PeerId(i), &u).expect("apply");
            changes += out.best_changes.len();
            sent += out
                .outbound
                .iter()
                .map(|(_, u)| u.announced.len())
                .sum::<usize>();
        }
    }
    (heap::thread_cpu_seconds() - t, changes, sent)
}

fn main() {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![25, 50, 100, 200, 400]
    } else {
        sizes
    };
    println!("| peers | changes | prefixes sent | CPU s | µs/change | ns/(change·peer) |");
    println!("|---|---|---|---|---|---|");
    for n in sizes {
        let runs = [run(n), run(n), run(n)];
        let (secs, changes, sent) = runs
            .into_iter()
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap_or_default();
        let per_change = secs * 1e6 / changes.max(1) as f64;
        println!(
            "| {n} | {changes} | {sent} | {secs:.3} | {per_change:.1} | {:.0} |",
            per_change * 1e3 / f64::from(n.max(1)),
        );
        assert_eq!(
            sent,
            changes * (n as usize - 1),
            "every change reflected to the other clients"
        );
    }
}
