//! The RIB-only figure of the ingest benchmark: the feeder's exact bytes
//! decoded by `tortie_bgp::wire::Decoder` and applied to a
//! `tortie_bgp::rib::Rib` in this process, with live heap bytes counted by
//! a global allocator, so "bytes per route in the RIB" is the RIB's own
//! memory (Adj-RIB-In + Loc-RIB + shared attributes + the decoder's
//! attribute cache) and not the agent's RSS, which also holds the kernel
//! reconciler's state and allocator slack.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tortie_bgp::heap;
use tortie_bgp::rib::{PeerId, PeerInfo, Rib, RibConfig};
use tortie_bgp::wire::{self, Decoder, Message};

use crate::feeder::Workload;

#[global_allocator]
static GLOBAL: tortie_bgp::heap::CountingAlloc = tortie_bgp::heap::CountingAlloc;

/// In-process RIB ingest of a workload.
#[derive(Clone, Copy, Debug)]
pub struct RibOnly {
    pub elapsed: Duration,
    pub bytes: usize,
    pub routes: usize,
}

impl RibOnly {
    pub fn bytes_per_route(&self) -> f64 {
        self.bytes as f64 / self.routes.max(1) as f64
    }
}

pub fn ingest(work: &Workload, local_asn: u32, peer_asn: u32, peer: Ipv4Addr) -> Result<RibOnly> {
    let mut ctx = crate::feeder::context(local_asn);
    ctx.peer_asn = peer_asn;
    let before = heap::live_bytes();
    let t = Instant::now();
    let mut dec = Decoder::new();
    let mut rib = Rib::new(RibConfig::new(local_asn, Ipv4Addr::new(198, 18, 0, 2)));
    let id = PeerId(1);
    rib.peer_up(
        id,
        PeerInfo::new(
            IpAddr::V4(peer),
            peer_asn,
            peer,
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
        ),
    )
    .map_err(|e| anyhow::anyhow!("peer_up: {e}"))?;
    let mut off = 0;
    while off < work.bytes.len() {
        let Some(len) =
            wire::frame(&work.bytes[off..], 4096).map_err(|e| anyhow::anyhow!("{e:?}"))?
        else {
            bail!("truncated workload");
        };
        match dec.decode(&work.bytes[off..off + len], &ctx) {
            Ok(Message::Update(u)) => {
                drop(
                    rib.apply_update(id, &u)
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                );
            }
            Ok(_) => {}
            Err(e) => bail!("decoding the workload: {e:?}"),
        }
        off += len;
    }
    let elapsed = t.elapsed();
    let routes = rib.loc_rib_len();
    let bytes = heap::live_bytes().saturating_sub(before);
    drop(rib);
    drop(dec);
    if routes != work.prefixes as usize {
        bail!("RIB holds {routes} of {} prefixes", work.prefixes);
    }
    Ok(RibOnly {
        elapsed,
        bytes,
        routes,
    })
}
