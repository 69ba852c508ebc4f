//! The kernel floor of an ingest case: no BGP and no DUT process, the
//! bench's reference pipelined writer installs the workload's N prefixes
//! in a write order ([`FloorOrder`]) with the same kernel monitor as the
//! end-to-end runs ([`crate::ingest_run`]) attached — what the kernel alone
//! costs any DUT.
//!
//! Data flow: fresh namespace pair → monitor subscribed → writer thread
//! pinned to the DUT CPUs writes in batches, one ack each → the monitor
//! sees all N → [`Run`] (time, the writer thread's CPU).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tortie_lab::netns::linked_pair;
use tortie_routes::IpNetwork;

use crate::feeder;
use crate::ingest_run::{
    DUT_IP, DUT_IP6, FEEDER_IP, FEEDER_IP6, Inputs, Run, feeder_next_hop, start_monitor,
};
use crate::nl::{self, Family};
use crate::pin;
use crate::report;

/// rtm_protocol of the kernel floor's routes.
const PROTO_FLOOR: u8 = 150;

/// The order in which the kernel floor writes the workload's prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloorOrder {
    /// Ascending address order, as the feeder sends them.
    Address,
    /// Descending address order: the speaker outbox's IPv6 delivery order
    /// of a backlog, so what a bulk load's IPv6 writes reach the kernel in.
    Descending,
    /// IPv4 addresses sorted by their bit-reversed value: the order the
    /// kernel's LC-trie takes fastest (lab/bench/README.md, session 6 e2e).
    BitReversed,
    /// The speaker outbox's IPv4 delivery order (since session 14): the
    /// runs of sixteen neighbours (a prefix's last four bits) visited once
    /// per tier of places — 0; 8; 4 and 12; 2, 6, 10, 14; the odd ones —
    /// each visit through the runs in bit-reversed order, a run's places of
    /// the tier together in address order.
    Tiers,
}

impl FloorOrder {
    pub fn name(self) -> &'static str {
        match self {
            FloorOrder::Address => "address order",
            FloorOrder::Descending => "descending address order",
            FloorOrder::BitReversed => "bit-reversed order",
            FloorOrder::Tiers => "tiers of places, runs bit-reversed",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            FloorOrder::Address => "floor_address",
            FloorOrder::Descending => "floor_descending",
            FloorOrder::BitReversed => "floor_bit_reversed",
            FloorOrder::Tiers => "floor_tiers",
        }
    }

    /// The workload's `n` prefixes of `family` in this order.
    fn prefixes(self, family: Family, n: u32) -> Result<Vec<IpNetwork>> {
        let mut v = (0..n)
            .map(|i| {
                let p = feeder::nth_prefix(family, i);
                IpNetwork::new(p.addr(), p.len()).context("benchmark prefix")
            })
            .collect::<Result<Vec<_>>>()?;
        let bits = |p: &IpNetwork| match p.ip() {
            IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
            IpAddr::V6(a) => u128::from(a),
        };
        match self {
            FloorOrder::Address => {}
            FloorOrder::Descending => v.reverse(),
            FloorOrder::BitReversed => v.sort_by_key(|p| bits(p).reverse_bits()),
            FloorOrder::Tiers => v.sort_by_key(|p| {
                let shift = 128 - u32::from(p.prefix());
                let run = !0xf_u128.checked_shl(shift).unwrap_or(0);
                let place = bits(p).checked_shr(shift).unwrap_or(0) & 0xf;
                let tier = if place == 0 {
                    0
                } else {
                    4 - place.trailing_zeros()
                };
                (tier, (bits(p) & run).reverse_bits(), bits(p))
            }),
        }
        Ok(v)
    }
}

/// The kernel floor of an end-to-end run: no BGP and no DUT process, the
/// reference pipelined writer ([`nl::install_in_order`], batches of
/// [`crate::kernel::REF_BATCH`], one ack) installs the workload's N
/// prefixes via the feeder's address in a fresh namespace pair, from a
/// thread pinned to the DUT CPUs, with the same kernel monitor attached.
/// `time` = first write → the monitor saw all N; `cpu` = the writer
/// thread's CPU seconds (the kernel's insert and notification work is
/// charged to it, as to a DUT). Whatever a DUT does beyond its kernel
/// writes comes on top of this.
pub fn floor_run(order: FloorOrder, inp: &Inputs) -> Result<Run> {
    let family = inp.work.family;
    let n = inp.work.prefixes;
    let (f, d) = linked_pair("tbi", &format!("{FEEDER_IP}/24"), &format!("{DUT_IP}/24"))?;
    if family == Family::V6 {
        for (ns, a) in [(&f, FEEDER_IP6), (&d, DUT_IP6)] {
            ns.add_address_nodad("eth1", &format!("{a}/64"))?;
        }
    }
    let prefixes = order.prefixes(family, n)?;
    let budget = Duration::from_secs(60) + Duration::from_micros(u64::from(n) * 100);
    let monitor = start_monitor(&d, family, PROTO_FLOOR, u64::from(n), budget)?;
    let gw = feeder_next_hop(family);
    let cpus = inp.dut_cpus.clone();
    let times_before = report::CpuTimes::read(&cpus.0);
    let (t0, pass, cpu, threads) = nl::in_netns(d.name(), move || {
        pin::set_current(&cpus)?;
        let cpu0 = nl::thread_cpu();
        let stat0 = report::own_thread_stat();
        let t0 = Instant::now();
        let pass = nl::install_in_order(&prefixes, gw, PROTO_FLOOR, crate::kernel::REF_BATCH)?;
        let cpu = nl::thread_cpu().saturating_sub(cpu0);
        Ok((
            t0,
            pass,
            cpu,
            report::thread_load(&stat0, &report::own_thread_stat()),
        ))
    })?;
    let (at, fell_back) = monitor
        .wait(budget)?
        .context("kernel floor: the monitor did not see every route")?;
    let dut_cpu_times = report::CpuTimes::read(&inp.dut_cpus.0)
        .zip(times_before)
        .map(|(now, before)| now.since(&before));
    if pass.errors != 0 {
        bail!("kernel floor: {} of {n} writes failed", pass.errors);
    }
    drop(d);
    drop(f);
    let kernel = at.saturating_duration_since(t0);
    Ok(Run {
        kernel: Some(kernel),
        time: kernel,
        cpu: cpu.as_secs_f64(),
        threads,
        dut_cpu_times,
        dut_cpus: inp.dut_cpus.list(),
        monitor_fell_back: fell_back,
        ..Run::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Indices of the workload's IPv4 /28s (`10.0.0.0 + 16·i`).
    fn indices(v: &[IpNetwork]) -> Vec<u32> {
        v.iter()
            .map(|p| match p.ip() {
                IpAddr::V4(a) => (u32::from(a) - 0x0a00_0000) >> 4,
                IpAddr::V6(_) => u32::MAX,
            })
            .collect()
    }

    #[test]
    fn floor_orders_are_the_workloads_prefixes() {
        let addr = FloorOrder::Address.prefixes(Family::V4, 8).unwrap();
        assert_eq!(indices(&addr), [0, 1, 2, 3, 4, 5, 6, 7]);
        assert!(addr.iter().all(|p| p.prefix() == 28));
        let rev = FloorOrder::BitReversed.prefixes(Family::V4, 8).unwrap();
        assert_eq!(indices(&rev), [0, 4, 2, 6, 1, 5, 3, 7]);
        let tiers = FloorOrder::Tiers.prefixes(Family::V4, 64).unwrap();
        let runs = [0u32, 32, 16, 48];
        let want: Vec<u32> = [&[0u32][..], &[8], &[4, 12], &[2, 6, 10, 14]]
            .into_iter()
            .flat_map(|tier| {
                runs.iter()
                    .flat_map(move |r| tier.iter().map(move |p| r + p))
            })
            .chain(
                runs.iter()
                    .flat_map(|r| (1..16).step_by(2).map(move |p| r + p)),
            )
            .collect();
        assert_eq!(indices(&tiers), want);
        let v6 = FloorOrder::Address.prefixes(Family::V6, 3).unwrap();
        assert_eq!(v6[2].to_string(), "fd00:0:2::/48");
        let down = FloorOrder::Descending.prefixes(Family::V4, 4).unwrap();
        assert_eq!(indices(&down), [3, 2, 1, 0]);
        let v6 = FloorOrder::Descending.prefixes(Family::V6, 3).unwrap();
        assert_eq!(v6[0].to_string(), "fd00:0:2::/48");
        // IPv6 bit-reversed: by the reversed bits of the address, so the
        // /48s' index bits, lowest first.
        let v6: Vec<String> = FloorOrder::BitReversed
            .prefixes(Family::V6, 4)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            v6,
            [
                "fd00::/48",
                "fd00:0:2::/48",
                "fd00:0:1::/48",
                "fd00:0:3::/48"
            ]
        );
    }
}
