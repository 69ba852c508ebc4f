//! Benchmark (not a test): decoding a route dump with tortie's netlink
//! parser (`tortie_routes::nl`) against `netlink-packet-route` (the rtnetlink
//! crates' codec), in one run, alternating which goes first.
//!
//! `cargo run --release -p tortie-routes --example nl_decode_bench [-- N [ROUNDS]]`
//!
//! The input is N routes (default 1M) in the kernel's dump format, packed
//! into 32 KiB datagrams as the kernel sends them: IPv4 /32s via a gateway
//! and a device (`RTA_TABLE, RTA_DST, RTA_GATEWAY, RTA_OIF`), and the same
//! number of IPv6 /64s with the attributes the kernel adds to them
//! (`RTA_PRIORITY`, `RTA_PREF`, `RTA_CACHEINFO`). Two levels are timed:
//! - parse: datagram → messages → typed route (our [`RouteView`]; their
//!   `NetlinkMessage<RouteNetlinkMessage>`), summing a field so nothing is
//!   optimized away;
//! - decode: the reconciler's full step, to a `DecodedRoute` with its
//!   `KernelRoute` (theirs through the same conversion from their message's
//!   fields, so the difference is the parser).
//!
//! Wall and process CPU time per pass; the best of ROUNDS (default 5) per
//! side, and ns/route.

use std::time::{Duration, Instant};

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::route::{RouteAttribute, RouteMessage};
use tortie_routes::nl::build::{Writer, rtmsg};
use tortie_routes::nl::consts::*;
use tortie_routes::nl::{self, Decoded, DecodedRoute, HopView, RouteView};

const DATAGRAM: usize = 32 * 1024;

/// N IPv4 and N IPv6 routes as the kernel dumps them, in datagrams.
fn synthesize(n: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Vec::with_capacity(DATAGRAM);
    let mut push = |msg: &[u8]| {
        if cur.len() + msg.len() > DATAGRAM {
            out.push(std::mem::replace(&mut cur, Vec::with_capacity(DATAGRAM)));
        }
        cur.extend_from_slice(msg);
    };
    let mut msg = Vec::with_capacity(256);
    for i in 0..n {
        msg.clear();
        let dst = 0x0a80_0000u32 + i;
        let mut w = Writer::begin(
            &mut msg,
            RTM_NEWROUTE,
            0x2,
            7,
            &rtmsg(2, 32, 254, 149, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0),
        );
        w.u32(RTA_TABLE, 254);
        w.attr(RTA_DST, &dst.to_be_bytes());
        w.attr(RTA_GATEWAY, &[10, 200, 0, 2]);
        w.u32(RTA_OIF, 3);
        w.finish();
        push(&msg);
    }
    for i in 0..n {
        msg.clear();
        let mut dst = [0u8; 16];
        dst[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        dst[4..8].copy_from_slice(&i.to_be_bytes());
        let mut gw = [0u8; 16];
        gw[..2].copy_from_slice(&[0xfd, 0x00]);
        gw[15] = 2;
        let mut w = Writer::begin(
            &mut msg,
            RTM_NEWROUTE,
            0x2,
            7,
            &rtmsg(10, 64, 254, 149, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0),
        );
        w.u32(RTA_TABLE, 254);
        w.attr(RTA_DST, &dst);
        w.u32(RTA_PRIORITY, 1024);
        w.attr(RTA_GATEWAY, &gw);
        w.u32(RTA_OIF, 3);
        w.attr(12, &[0; 32]); // RTA_CACHEINFO
        w.attr(20, &[0]); // RTA_PREF
        w.finish();
        push(&msg);
    }
    out.push(cur);
    out
}

fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn ifname(i: u32) -> Option<String> {
    (i == 3).then(|| "rt0".to_string())
}

/// Ours, parse only: the typed view of every route.
fn ours_parse(dgs: &[Vec<u8>]) -> u64 {
    let mut sum = 0u64;
    for d in dgs {
        for m in nl::messages(d) {
            if let Ok(Decoded::Route { route, .. }) = nl::decode(&m) {
                sum += u64::from(route.dst_len) + u64::from(route.oif.unwrap_or(0));
            }
        }
    }
    sum
}

/// Ours, to `DecodedRoute` (the reconciler's step).
fn ours_decode(dgs: &[Vec<u8>]) -> u64 {
    let mut sum = 0u64;
    for d in dgs {
        for m in nl::messages(d) {
            if let Ok(Decoded::Route { route, .. }) = nl::decode(&m)
                && let Some(r) = DecodedRoute::decode(&route, &ifname)
            {
                sum += u64::from(r.prefix.prefix()) + r.oifs.len() as u64;
            }
        }
    }
    sum
}

/// Theirs, parse only: `NetlinkMessage<RouteNetlinkMessage>` per message.
fn theirs_parse(dgs: &[Vec<u8>], mut f: impl FnMut(&RouteMessage)) {
    for d in dgs {
        for m in nl::messages(d) {
            if let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(m.bytes)
                && let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) = msg.payload
            {
                f(&r);
            }
        }
    }
}

/// netlink-packet-route's route as our view (shared with the oracle tests).
#[path = "../src/nl/npr_route.rs"]
mod npr_route;

#[derive(Clone, Copy, Default)]
struct Best {
    wall: Option<Duration>,
    cpu: Option<Duration>,
}

impl Best {
    fn note(&mut self, wall: Duration, cpu: Duration) {
        self.wall = Some(self.wall.map_or(wall, |w| w.min(wall)));
        self.cpu = Some(self.cpu.map_or(cpu, |c| c.min(cpu)));
    }
    fn ns(d: Option<Duration>, routes: u64) -> f64 {
        d.map_or(f64::NAN, |d| d.as_nanos() as f64 / routes as f64)
    }
}

fn timed(f: impl FnOnce() -> u64) -> (Duration, Duration, u64) {
    let (t, c) = (Instant::now(), cpu_time());
    let sum = std::hint::black_box(f());
    (t.elapsed(), cpu_time().saturating_sub(c), sum)
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<u32>().ok());
    let n = args.next().unwrap_or(1_000_000);
    let rounds = args.next().unwrap_or(5);
    let dgs = synthesize(n);
    let routes = 2 * u64::from(n);
    let bytes: usize = dgs.iter().map(Vec::len).sum();
    println!(
        "{routes} routes ({n} IPv4 /32 + {n} IPv6 /64), {} datagrams, {:.1} MiB, {rounds} rounds alternating",
        dgs.len(),
        bytes as f64 / 1048576.0
    );
    let names = ["ours parse", "theirs parse", "ours decode", "theirs decode"];
    let mut best = [Best::default(); 4];
    let mut sums = [0u64; 4];
    for round in 0..rounds {
        let mut order = [0usize, 1, 2, 3];
        if round % 2 == 1 {
            order = [1, 0, 3, 2];
        }
        for which in order {
            let (wall, cpu, sum) = match which {
                0 => timed(|| ours_parse(&dgs)),
                1 => timed(|| {
                    let mut sum = 0u64;
                    theirs_parse(&dgs, |r| {
                        sum += u64::from(r.header.destination_prefix_length);
                        for a in &r.attributes {
                            if let RouteAttribute::Oif(i) = a {
                                sum += u64::from(*i);
                            }
                        }
                    });
                    sum
                }),
                2 => timed(|| ours_decode(&dgs)),
                _ => timed(|| {
                    let mut sum = 0u64;
                    theirs_parse(&dgs, |r| {
                        if let Some(d) = DecodedRoute::decode(&npr_route::npr_route(r).0, &ifname) {
                            sum += u64::from(d.prefix.prefix()) + d.oifs.len() as u64;
                        }
                    });
                    sum
                }),
            };
            sums[which] = sum;
            best[which].note(wall, cpu);
            eprintln!(
                "  round {round} {:<13} wall {:>7.1} ms cpu {:>7.1} ms",
                names[which],
                wall.as_secs_f64() * 1e3,
                cpu.as_secs_f64() * 1e3
            );
        }
    }
    assert_eq!(sums[0], sums[1], "both parsers read the same fields");
    assert_eq!(sums[2], sums[3], "both decoders read the same routes");
    for (i, name) in names.iter().enumerate() {
        println!(
            "{name:<13}: {:>6.1} ns/route wall, {:>6.1} ns/route CPU (best of {rounds})",
            Best::ns(best[i].wall, routes),
            Best::ns(best[i].cpu, routes)
        );
    }
    let ratio = |a: usize, b: usize| Best::ns(best[b].cpu, routes) / Best::ns(best[a].cpu, routes);
    println!(
        "netlink-packet-route / ours (CPU): parse {:.1}x, decode {:.1}x",
        ratio(0, 1),
        ratio(2, 3)
    );
}
