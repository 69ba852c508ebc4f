//! RIB memory per route is a tracked figure (issue 6: ≤ 100 B per route in
//! the RIB): the ingest benchmark's two shapes, decoded by `wire::Decoder`
//! and applied to a `Rib`, with the live heap counted by a global allocator
//! (this file holds a single test, so nothing else allocates meanwhile).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use tortie_bgp::AddressFamily;
use tortie_bgp::heap;
use tortie_bgp::rib::{PeerId, PeerInfo, Rib, RibConfig};
use tortie_bgp::types::{AsPath, AsPathSegment, Ipv4Prefix, PathAttributes, Prefix};
use tortie_bgp::wire::{self, CodecContext, Decoder, Message, Update};

#[global_allocator]
static GLOBAL: tortie_bgp::heap::CountingAlloc = tortie_bgp::heap::CountingAlloc;

const N: u32 = 20_000;

fn ctx() -> CodecContext {
    CodecContext {
        four_octet_as: true,
        families: vec![AddressFamily::IPV4_UNICAST],
        local_asn: 64512,
        peer_asn: 65001,
        ..CodecContext::default()
    }
}

/// One /28 per UPDATE with AS_PATH `65001 4200000000+i` (`unique`), or
/// ~500 per UPDATE sharing AS_PATH `65001` (`packed`).
fn messages(unique: bool) -> Vec<Vec<u8>> {
    let attrs = |path: Vec<u32>| {
        Arc::new(PathAttributes {
            as_path: AsPath::sequence(path),
            next_hop: Some(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1))),
            ..PathAttributes::default()
        })
    };
    let mut msgs = Vec::new();
    let updates: Vec<Update> = if unique {
        (0..N)
            .map(|i| Update {
                attributes: Some(attrs(vec![65001, 4_200_000_000 + i])),
                announced: vec![prefix_of(i)].into(),
                ..Update::default()
            })
            .collect()
    } else {
        let shared = attrs(vec![65001]);
        (0..N.div_ceil(500))
            .map(|c| Update {
                attributes: Some(shared.clone()),
                announced: (c * 500..((c + 1) * 500).min(N)).map(prefix_of).collect(),
                ..Update::default()
            })
            .collect()
    };
    for u in &updates {
        wire::encode_updates(u, &ctx(), &mut msgs).unwrap();
    }
    msgs
}

fn bytes_per_route(unique: bool) -> f64 {
    let msgs = messages(unique);
    let c = ctx();
    let before = heap::live_bytes();
    let mut dec = Decoder::new();
    let mut rib = Rib::new(RibConfig::new(64512, Ipv4Addr::new(198, 18, 0, 2)));
    let peer = Ipv4Addr::new(198, 18, 0, 1);
    drop(
        rib.peer_up(
            PeerId(1),
            PeerInfo::new(
                IpAddr::V4(peer),
                65001,
                peer,
                IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
            ),
        )
        .unwrap(),
    );
    for m in &msgs {
        let Ok(Message::Update(u)) = dec.decode(m, &c) else {
            panic!("not an UPDATE");
        };
        drop(rib.apply_update(PeerId(1), &u).unwrap());
    }
    let bytes = heap::live_bytes() - before;
    assert_eq!(rib.loc_rib_len(), N as usize);
    let best = rib.best(prefix_of(N - 1)).unwrap();
    let a = best.attributes.unwrap();
    let want: &[u32] = if unique {
        &[65001, 4_200_000_000 + N - 1]
    } else {
        &[65001]
    };
    assert_eq!(
        a.as_path.segments[..],
        [AsPathSegment::Sequence(want.into())]
    );
    drop(rib);
    drop(dec);
    bytes as f64 / f64::from(N)
}

fn prefix_of(i: u32) -> Prefix {
    Prefix::V4(Ipv4Prefix::new(Ipv4Addr::from(0x0a00_0000 + (i << 4)), 28).unwrap())
}

#[test]
fn rib_holds_a_route_in_at_most_100_bytes_for_both_shapes() {
    let packed = bytes_per_route(false);
    let unique = bytes_per_route(true);
    eprintln!("packed {packed:.1} B/route, unique {unique:.1} B/route");
    assert!(packed <= 100.0, "packed: {packed:.1} B/route");
    assert!(unique <= 100.0, "unique: {unique:.1} B/route");
}
