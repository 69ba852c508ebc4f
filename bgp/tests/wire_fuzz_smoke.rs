//! A deterministic fuzz smoke test that runs in `cargo test` (no nightly):
//! a seeded xorshift mutator over the seed corpus (the killer inputs, RFC
//! vectors and encoder output), 200k iterations, checking the same
//! properties as the cargo-fuzz targets plus a bound on the memory a single
//! decode may hold at once.

mod wire_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use wire_support::fuzzcheck::*;
use wire_support::*;

/// Counts live bytes per thread so one decode's peak can be bounded.
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|c| {
            let v = c.get() + l.size();
            c.set(v);
            let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
        });
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, l: Layout) {
        let _ = LIVE.try_with(|c| c.set(c.get().saturating_sub(l.size())));
        unsafe { System.dealloc(ptr, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut mp6 = vec![0, 2, 1, 32];
    mp6.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    mp6.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    mp6.extend_from_slice(&[32, 0x20, 1, 0xd, 0xb8, 64, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 1]);
    vec![
        update(&[16, 10, 9], &basic_attrs(), &[24, 198, 51, 100, 16, 10, 1]),
        update(
            &[],
            &[attr(0x80, 14, &mp6), origin(0), as_path4(&[65001])].concat(),
            &[],
        ),
        update(
            &[],
            &attr(0x80, 15, &[0, 2, 1, 64, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 9]),
            &[],
        ),
        update(&[], &attr(0x40, 2, &[2, 1, 0, 1, 2]), &[8, 10]),
        update(
            &[],
            &[
                origin(0),
                as_path2(&[65001, 23456]),
                next_hop([10, 0, 0, 1]),
                attr(0xc0, 7, &[0x5b, 0xa0, 10, 0, 0, 1]),
                attr(0xc0, 18, &[0, 1, 0, 0, 10, 0, 0, 1]),
                attr(0xc0, 17, &[2, 1, 0, 1, 0, 0]),
            ]
            .concat(),
            &[8, 10],
        ),
        update(
            &[],
            &[
                basic_attrs(),
                attr(0x80, 4, &[0, 0, 0, 5]),
                attr(0x40, 5, &[0, 0, 0, 100]),
                attr(0x40, 6, &[]),
                attr(0xc0, 8, &[0, 1, 0, 2]),
                attr(0x80, 9, &[1, 1, 1, 1]),
                attr(0x80, 10, &[2, 2, 2, 2]),
                attr(0xc0, 16, &[0; 8]),
                attr(0xc0, 32, &[0; 12]),
                attr(0xe0, 99, &[1, 2, 3]),
            ]
            .concat(),
            &[32, 1, 2, 3, 4],
        ),
        update(&[], &[], &[]),
        update(&[], &attr(0x80, 15, &[0, 2, 1]), &[]),
        wrap(
            1,
            &[
                4, 0xfd, 0xe9, 0, 180, 192, 0, 2, 1, 26, 2, 24, 1, 4, 0, 1, 0, 1, 2, 0, 65, 4, 0,
                0, 0xfd, 0xe9, 64, 6, 0xc0, 120, 0, 1, 1, 0x80, 6, 0,
            ],
        ),
        wrap(
            1,
            &[4, 0, 1, 0, 90, 1, 1, 1, 1, 255, 255, 0, 4, 2, 0, 1, 70],
        ),
        wrap(3, &[6, 2, b'x']),
        wrap(4, &[]),
        wrap(5, &[0, 1, 0, 1]),
    ]
}

fn mutate(rng: &mut XorShift, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = [0, 1, 2, 0x7f, 0x80, 0xff, 32, 33, 128, 129][rng.below(10)];
            }
            2 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            3 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, rng.next() as u8);
            }
            4 if !v.is_empty() => {
                let n = rng.below(v.len());
                v.truncate(n);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = a + rng.below(other.len() - a);
                    let i = rng.below(v.len() + 1);
                    v.splice(i..i, other[a..b].iter().copied());
                }
            }
            _ => {}
        }
    }
    v
}

/// Mostly mutates the body and rewrites a correct header so mutations reach
/// the body decoders; sometimes mutates the raw bytes, header included.
fn next_input(rng: &mut XorShift, base: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(8) == 0 || base.len() < 19 {
        return mutate(rng, base, seeds);
    }
    let body = mutate(rng, &base[19..], seeds);
    wrap(base[18], &body)
}

#[test]
fn encode_smoke_2k() {
    let mut rng = XorShift(0xe4c0_de00_0000_0001);
    for _ in 0..2_000 {
        let n = rng.below(200);
        let data: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        check_encode_from_bytes(&data);
    }
}

#[test]
fn fuzz_smoke_200k() {
    let seeds = seeds();
    let mut rng = XorShift(0x5eed_7071_e000_0001);
    let mut corpus = seeds.clone();
    let mut max_ratio = 0usize;
    let mut outcomes = std::collections::BTreeMap::new();
    for i in 0..200_000u32 {
        let base = if rng.below(2) == 0 {
            &seeds[rng.below(seeds.len())]
        } else {
            &corpus[rng.below(corpus.len())]
        };
        let input = next_input(&mut rng, base, &seeds);
        let sel = rng.next() as u8;
        check_frame(&input);
        let before = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(before));
        let kind = check_message(sel, &input);
        *outcomes.entry(kind).or_insert(0u32) += 1;
        let peak = PEAK.with(Cell::get) - before;
        // Decoding, re-encoding and re-decoding together stay within a small
        // multiple of the input: no length field can make us over-allocate.
        let bound = 64 * input.len() + 64 * 1024;
        assert!(
            peak <= bound,
            "input of {} bytes held {peak} bytes at once: {input:x?}",
            input.len()
        );
        max_ratio = max_ratio.max(peak / input.len().max(1));
        // Keep some inputs that decoded, so mutations build on each other.
        if i % 16 == 0 && !kind.ends_with("error") {
            if corpus.len() < 1024 {
                corpus.push(input);
            } else {
                let slot = seeds.len() + rng.below(corpus.len() - seeds.len());
                corpus[slot] = input;
            }
        }
    }
    eprintln!(
        "fuzz smoke: 200000 inputs, peak memory per input byte <= {max_ratio}, outcomes {outcomes:?}"
    );
    // The mutator must keep reaching every decoder, not just the header checks.
    for kind in [
        "update with RFC 7606 events",
        "update announcing",
        "update withdrawing",
        "end-of-rib",
        "open",
        "notification",
        "keepalive",
        "route_refresh",
        "header error",
        "body error",
    ] {
        let n = outcomes.get(kind).copied().unwrap_or(0);
        assert!(n >= 100, "only {n} inputs ended as {kind:?}: {outcomes:?}");
    }
}
