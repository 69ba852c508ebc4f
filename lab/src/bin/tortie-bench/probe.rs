//! The probe peer of the load-latency benchmark ([`crate::loadlat`]): a
//! second BGP speaker beside the load's feeder that sends one route when
//! told — one UPDATE announcing a /32 or an IPv6 /128, later one
//! withdrawing it — and
//! keepalives otherwise, built on tortie's own encoder as the burst feeder
//! ([`crate::feeder`]).
//!
//! Data flow: [`start`] runs a thread inside the probe's namespace that
//! listens, accepts the DUT's connection, does OPEN/KEEPALIVE (the
//! feeder's handshake), reports [`FeedEvent::Established`], then waits for
//! [`Probe::send`]: each writes one pre-encoded UPDATE ([`updates`]) in one
//! `write`. A second thread drains whatever the DUT sends back.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tortie_bgp::wire::{self, Message, Update};
use tortie_bgp::{AsPath, Origin, PathAttributes, Prefix};

use crate::feeder::{self, FeedEvent};

/// Which of the probe's two UPDATEs to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Announce,
    Withdraw,
}

/// The probe's UPDATEs for `prefix` from `asn` with `next_hop` (of the
/// prefix's family): one announcing it (ORIGIN, AS_PATH `asn`, NEXT_HOP for
/// IPv4 — RFC 4271 §4.3 —, MP_REACH_NLRI for IPv6 — RFC 4760 §3), one
/// withdrawing it (withdrawn routes, or MP_UNREACH_NLRI).
pub fn updates(prefix: Prefix, asn: u32, next_hop: IpAddr) -> Result<(Vec<u8>, Vec<u8>)> {
    if prefix.addr().is_ipv4() != next_hop.is_ipv4() {
        anyhow::bail!("next hop {next_hop} is not of {prefix}'s family");
    }
    let ctx = feeder::context(asn);
    let attributes = Arc::new(PathAttributes {
        origin: Origin::Igp,
        as_path: AsPath::sequence(vec![asn]),
        next_hop: Some(next_hop),
        ..PathAttributes::default()
    });
    let a = Update {
        attributes: Some(attributes),
        announced: vec![prefix].into(),
        ..Update::default()
    };
    let w = Update {
        withdrawn: vec![prefix].into(),
        ..Update::default()
    };
    let mut out = [Vec::new(), Vec::new()];
    for (u, bytes) in [a, w].iter().zip(&mut out) {
        let mut msgs = Vec::new();
        wire::encode_updates(u, &ctx, &mut msgs).context("encoding the probe's UPDATEs")?;
        *bytes = msgs.concat();
    }
    let [announce, withdraw] = out;
    Ok((announce, withdraw))
}

/// A running probe peer; closes its session and stops on drop.
pub struct Probe {
    pub events: mpsc::Receiver<FeedEvent>,
    steps: mpsc::Sender<Step>,
    stop: Arc<AtomicBool>,
    join: Option<std::thread::JoinHandle<()>>,
}

impl Probe {
    /// Writes the UPDATE of `step` (after [`FeedEvent::Established`]).
    pub fn send(&self, step: Step) -> Result<()> {
        self.steps
            .send(step)
            .map_err(|_| anyhow::anyhow!("the probe peer has stopped"))
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// Starts the probe peer in namespace `ns`, listening on `listen`, with
/// the two UPDATEs of [`updates`].
pub fn start(ns: &str, listen: SocketAddr, asn: u32, msgs: (Vec<u8>, Vec<u8>)) -> Result<Probe> {
    let (tx, rx) = mpsc::channel();
    let (step_tx, step_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let join = feeder::spawn_in_netns(ns, tx, move |tx| {
        serve(listen, asn, &msgs, tx, &step_rx, &stop2)
    })?;
    Ok(Probe {
        events: rx,
        steps: step_tx,
        stop,
        join: Some(join),
    })
}

fn serve(
    listen: SocketAddr,
    asn: u32,
    (announce, withdraw): &(Vec<u8>, Vec<u8>),
    tx: &mpsc::Sender<FeedEvent>,
    steps: &mpsc::Receiver<Step>,
    stop: &AtomicBool,
) -> Result<()> {
    let Some(mut stream) = feeder::accept(listen, tx, stop)? else {
        return Ok(());
    };
    let router_id = match listen.ip() {
        std::net::IpAddr::V4(a) => a,
        std::net::IpAddr::V6(_) => Ipv4Addr::new(198, 18, 2, 1),
    };
    feeder::handshake(&mut stream, asn, router_id)?;
    let reader = stream.try_clone()?;
    let drain = std::thread::spawn(move || feeder::drain(reader));
    let mut keepalive = Vec::new();
    wire::encode(&Message::Keepalive, &feeder::context(asn), &mut keepalive)?;
    let _ = tx.send(FeedEvent::Established);
    let mut last_ka = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match steps.recv_timeout(Duration::from_millis(50)) {
            Ok(Step::Announce) => stream
                .write_all(announce)
                .context("writing the announcement")?,
            Ok(Step::Withdraw) => stream
                .write_all(withdraw)
                .context("writing the withdrawal")?,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if last_ka.elapsed() > Duration::from_secs(10) {
            stream.write_all(&keepalive)?;
            last_ka = Instant::now();
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = drain.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_announces_then_withdraws_one_prefix() {
        use tortie_bgp::{Ipv4Prefix, Ipv6Prefix};
        let v4 = Prefix::V4(Ipv4Prefix::new(Ipv4Addr::new(198, 19, 0, 1), 32).unwrap());
        let v6 = Prefix::V6(Ipv6Prefix::new("fd13:19::1".parse().unwrap(), 128).unwrap());
        let hop4: IpAddr = Ipv4Addr::new(198, 18, 2, 1).into();
        let hop6: IpAddr = "fd12:18:0:2::1".parse().unwrap();
        let ctx = feeder::context(64512);
        for (p, hop) in [(v4, hop4), (v6, hop6)] {
            let (a, w) = updates(p, 65002, hop).unwrap();
            let Ok(Message::Update(a)) = wire::decode(&a, &ctx) else {
                panic!("announcement of {p} does not decode");
            };
            assert_eq!(a.announced[..], [p]);
            assert!(a.withdrawn.is_empty());
            let got = a.attributes.as_ref().and_then(|x| x.next_hop);
            assert_eq!(got, Some(hop));
            let Ok(Message::Update(w)) = wire::decode(&w, &ctx) else {
                panic!("withdrawal of {p} does not decode");
            };
            assert_eq!(w.withdrawn[..], [p]);
            assert!(w.announced.is_empty() && w.end_of_rib.is_none());
        }
        assert!(updates(v6, 65002, hop4).is_err());
    }
}
