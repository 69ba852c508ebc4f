//! After a peer with a large table goes away, the RIB gives its table
//! memory back (issue 10: the agent stayed at 114 MB resident after 1M
//! routes were withdrawn, because hash tables never shrink on removal).
//! Live heap is counted by a global allocator; this file holds a single
//! test, so nothing else allocates meanwhile.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use tortie_bgp::heap;
use tortie_bgp::rib::{PeerId, PeerInfo, Rib, RibConfig};
use tortie_bgp::types::{AsPath, Ipv4Prefix, PathAttributes, Prefix};
use tortie_bgp::wire::Update;

#[global_allocator]
static GLOBAL: tortie_bgp::heap::CountingAlloc = tortie_bgp::heap::CountingAlloc;

const N: u32 = 100_000;
const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);

fn prefix_of(i: u32) -> Prefix {
    Prefix::V4(Ipv4Prefix::new(Ipv4Addr::from(0x0a00_0000 + (i << 4)), 28).unwrap())
}

fn up(rib: &mut Rib, id: u32) {
    let a = Ipv4Addr::new(198, 18, 0, id as u8);
    drop(
        rib.peer_up(
            PeerId(id),
            PeerInfo::new(IpAddr::V4(a), 65000 + id, a, IpAddr::V4(LOCAL)),
        )
        .unwrap(),
    );
}

#[test]
fn a_withdrawn_full_table_gives_its_memory_back() {
    let mut rib = Rib::new(RibConfig::new(64512, LOCAL));
    up(&mut rib, 2);
    up(&mut rib, 1);
    let before = heap::live_bytes();
    let attrs = Arc::new(PathAttributes {
        as_path: AsPath::sequence(vec![65001]),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1))),
        ..PathAttributes::default()
    });
    let mut i = 0;
    while i < N {
        let end = (i + 500).min(N);
        let u = Update {
            attributes: Some(attrs.clone()),
            announced: (i..end).map(prefix_of).collect(),
            ..Update::default()
        };
        drop(rib.apply_update(PeerId(1), &u).unwrap());
        i = end;
    }
    assert_eq!(rib.loc_rib_len(), N as usize);
    let loaded = heap::live_bytes() - before;
    // The peer goes away: its routes are withdrawn in steps, as the RIB
    // task does it.
    let mut r = rib.peer_down_steps(PeerId(1), false);
    while let Some(out) = rib.remove_step(&mut r, 8192) {
        drop(out);
    }
    drop(r);
    up(&mut rib, 1);
    assert_eq!(rib.loc_rib_len(), 0);
    let left = heap::live_bytes().saturating_sub(before);
    // Without shrinking, the Loc-RIB table alone keeps capacity for N
    // (≈ 40 B × 2^17 = 5 MiB).
    assert!(
        left < 256 << 10,
        "{left} bytes still held after withdrawing {N} routes ({loaded} when loaded)"
    );
}
