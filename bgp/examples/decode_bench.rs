//! Wire codec throughput: prefixes decoded per second for a packed feed
//! (~500 IPv4 prefixes per UPDATE, one attribute set) and a one-prefix-per-
//! UPDATE feed with a distinct AS_PATH in every UPDATE (the worst case for
//! the attribute cache), plus allocations per UPDATE and the packer's encode
//! rate; netgauze-bgp-pkt 0.13 decodes the same bytes for comparison.
//!
//!     cargo run --release -p tortie-bgp --example decode_bench

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use netgauze_bgp_pkt::BgpMessage;
use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;
use netgauze_parse_utils::reader::SliceReader;
use netgauze_parse_utils::traits::ParseFromWithOneInput;
use tortie_bgp::types::{AddressFamily, AsPath, PathAttributes, Prefix};
use tortie_bgp::wire::{CodecContext, Decoder, Message, Update, encode_updates};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn ctx() -> CodecContext {
    CodecContext {
        four_octet_as: true,
        families: vec![AddressFamily::IPV4_UNICAST, AddressFamily::IPV6_UNICAST],
        ..CodecContext::default()
    }
}

fn attrs(path: Vec<u32>) -> Arc<PathAttributes> {
    Arc::new(PathAttributes {
        as_path: AsPath::sequence(path),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        med: Some(10),
        communities: vec![0xfde9_0001, 0xfde9_0002],
        ..PathAttributes::default()
    })
}

fn prefix(i: u32) -> Prefix {
    // /24s walking through 1.0.0.0 - 223.255.255.0, like a full table.
    Prefix::new(IpAddr::V4(Ipv4Addr::from((1 << 24) + (i << 8))), 24).unwrap()
}

/// Encodes the feeds with our packer.
fn feeds(n: u32) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let ctx = ctx();
    let mut packed = Vec::new();
    let all: Vec<Prefix> = (0..n).map(prefix).collect();
    let t = Instant::now();
    let shared = attrs(vec![65001, 65002, 65003]);
    for chunk in all.chunks(500) {
        let u = Update {
            attributes: Some(shared.clone()),
            announced: chunk.into(),
            ..Update::default()
        };
        encode_updates(&u, &ctx, &mut packed).unwrap();
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "encode packed: {n} prefixes into {} UPDATEs in {:.1} ms = {:.1} M prefixes/s",
        packed.len(),
        dt * 1e3,
        f64::from(n) / dt / 1e6
    );
    let mut single = Vec::with_capacity(n as usize);
    for i in 0..n {
        let u = Update {
            attributes: Some(attrs(vec![65001, 64512 + (i % 1000), 4_200_000_000 + i])),
            announced: vec![prefix(i)].into(),
            ..Update::default()
        };
        encode_updates(&u, &ctx, &mut single).unwrap();
    }
    (packed, single)
}

/// One prefix per UPDATE, but consecutive UPDATEs share attribute sets (as a
/// full-table feed does): the decoder's cache turns these into Arc clones.
fn single_shared(n: u32) -> Vec<Vec<u8>> {
    let ctx = ctx();
    let sets: Vec<Arc<PathAttributes>> = (0..4)
        .map(|k| attrs(vec![65001, 64512 + k, 4_200_000_000 + k]))
        .collect();
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let set = sets[((i / 16) % 4) as usize].clone();
        let u = Update {
            attributes: Some(set),
            announced: vec![prefix(i)].into(),
            ..Update::default()
        };
        encode_updates(&u, &ctx, &mut out).unwrap();
    }
    out
}

fn bench(name: &str, msgs: &[Vec<u8>], rounds: u32) {
    let ctx = ctx();
    let mut prefixes = 0u64;
    let allocs0 = ALLOCS.load(Ordering::Relaxed);
    let t = Instant::now();
    for _ in 0..rounds {
        let mut dec = Decoder::new();
        for m in msgs {
            match dec.decode(m, &ctx) {
                Ok(Message::Update(u)) => prefixes += u.announced.len() as u64,
                other => panic!("{other:?}"),
            }
        }
        black_box(&dec);
    }
    let dt = t.elapsed().as_secs_f64();
    let allocs = ALLOCS.load(Ordering::Relaxed) - allocs0;
    let updates = msgs.len() as f64 * f64::from(rounds);
    println!(
        "tortie  {name:<26} {:>7.1} M prefixes/s  {:>6.2} M UPDATEs/s  {:.2} allocations/UPDATE",
        prefixes as f64 / dt / 1e6,
        updates / dt / 1e6,
        allocs as f64 / updates
    );
    let allocs0 = ALLOCS.load(Ordering::Relaxed);
    let t = Instant::now();
    let mut prefixes = 0u64;
    for _ in 0..rounds {
        for m in msgs {
            let mut nctx = BgpParsingContext::default();
            match BgpMessage::parse(&mut SliceReader::new(m), &mut nctx) {
                Ok(BgpMessage::Update(u)) => prefixes += u.nlri().len() as u64,
                other => panic!("{other:?}"),
            }
        }
    }
    let dt = t.elapsed().as_secs_f64();
    let allocs = ALLOCS.load(Ordering::Relaxed) - allocs0;
    println!(
        "netgauze {name:<25} {:>7.1} M prefixes/s  {:>6.2} M UPDATEs/s  {:.2} allocations/UPDATE",
        prefixes as f64 / dt / 1e6,
        updates / dt / 1e6,
        allocs as f64 / updates
    );
}

fn main() {
    let n = 1_000_000;
    let (packed, single) = feeds(n);
    bench("packed (500/UPDATE)", &packed, 5);
    let mut full = Vec::new();
    let all: Vec<Prefix> = (0..n).map(prefix).collect();
    let u = Update {
        attributes: Some(attrs(vec![65001, 65002, 65003])),
        announced: all.into(),
        ..Update::default()
    };
    encode_updates(&u, &ctx(), &mut full).unwrap();
    bench("packed full (~1000/UPDATE)", &full, 5);
    bench("1 prefix/UPDATE, own path", &single, 2);
    bench("1 prefix/UPDATE, 4 paths", &single_shared(n), 2);
}
