//! Route events of many namespaces at once, for the scale benchmark: one
//! `NETLINK_ROUTE` socket per namespace subscribed to IPv4 route events
//! (opened from inside it, then used from here), all read by one thread with
//! `poll(2)`. The table of each namespace's routes of one protocol is kept
//! with the moment each appeared, and the moment of each removal, so a
//! reader asks "when did namespace i get (or lose) prefix P" afterwards with
//! event-time precision however slowly it polls.
//!
//! Data flow: [`Watch::start`] opens the sockets (one `setns` per namespace
//! on a helper thread) → reader thread → [`Tables`] under a mutex →
//! [`Watch::with`] for the benchmark's questions.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tortie_routes::nl::consts::{
    RTA_DST, RTM_DELROUTE, RTM_NEWROUTE, RTMGRP_IPV4_ROUTE, RTMSG_LEN,
};
use tortie_routes::nl::{self, attrs, messages};

/// A route key: destination and prefix length.
pub type Key = (Ipv4Addr, u8);

/// What the reader saw, per namespace (index as given to [`Watch::start`]).
#[derive(Debug, Default)]
pub struct Tables {
    /// Present routes of the protocol and when each (last) appeared.
    pub present: Vec<HashMap<Key, Instant>>,
    /// When each route was (last) removed.
    pub removed: Vec<HashMap<Key, Instant>>,
    /// Namespaces whose socket overflowed (events lost): their figures are
    /// not trustworthy.
    pub overflowed: Vec<bool>,
}

/// The reader thread; stops on drop.
pub struct Watch {
    tables: Arc<Mutex<Tables>>,
    stop: Arc<AtomicBool>,
    join: Option<std::thread::JoinHandle<()>>,
}

/// Opens a socket subscribed to IPv4 route events inside `ns`.
fn open_in(ns: &str) -> Result<nl::Socket> {
    let name = ns.to_string();
    crate::nl::in_netns(&name, || {
        let s = nl::Socket::open(RTMGRP_IPV4_ROUTE).context("opening a netlink socket")?;
        s.set_rcvbuf(8 << 20).context("sizing the netlink buffer")?;
        Ok(s)
    })
}

impl Watch {
    /// Watches routes of protocol `proto` in every namespace of `namespaces`.
    pub fn start(namespaces: &[String], proto: u8) -> Result<Watch> {
        let mut socks = Vec::with_capacity(namespaces.len());
        for ns in namespaces {
            socks.push(open_in(ns).with_context(|| format!("watching {ns}"))?);
        }
        let n = socks.len();
        let tables = Arc::new(Mutex::new(Tables {
            present: vec![HashMap::new(); n],
            removed: vec![HashMap::new(); n],
            overflowed: vec![false; n],
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (t2, s2) = (tables.clone(), stop.clone());
        let join = std::thread::spawn(move || read(&socks, proto, &t2, &s2));
        Ok(Watch {
            tables,
            stop,
            join: Some(join),
        })
    }

    /// Runs `f` on the tables.
    pub fn with<T>(&self, f: impl FnOnce(&Tables) -> T) -> T {
        match self.tables.lock() {
            Ok(t) => f(&t),
            Err(p) => f(&p.into_inner()),
        }
    }

    /// Waits (polling every 10 ms) until `done` holds, or `timeout`.
    pub fn wait(&self, timeout: Duration, mut done: impl FnMut(&Tables) -> bool) -> Result<()> {
        let end = Instant::now() + timeout;
        loop {
            if self.with(&mut done) {
                return Ok(());
            }
            if crate::scale_bench::interrupted() {
                bail!("interrupted");
            }
            if Instant::now() > end {
                bail!("not reached within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

fn read(socks: &[nl::Socket], proto: u8, tables: &Mutex<Tables>, stop: &AtomicBool) {
    let fds: Vec<_> = socks.iter().map(AsRawFd::as_raw_fd).collect();
    let mut buf = vec![0u8; 1 << 20];
    while !stop.load(Ordering::Relaxed) {
        if !matches!(
            nl::poll_readable(&fds, Instant::now() + Duration::from_millis(100)),
            Ok(true)
        ) {
            continue;
        }
        let now = Instant::now();
        for (i, s) in socks.iter().enumerate() {
            loop {
                match s.recv(&mut buf) {
                    Ok(Some(n)) => {
                        let mut t = match tables.lock() {
                            Ok(t) => t,
                            Err(p) => p.into_inner(),
                        };
                        for m in messages(&buf[..n]) {
                            let kind = m.header.kind;
                            if kind != RTM_NEWROUTE && kind != RTM_DELROUTE {
                                continue;
                            }
                            let Some(key) = route_key(m.body, proto) else {
                                continue;
                            };
                            if kind == RTM_NEWROUTE {
                                t.present[i].insert(key, now);
                            } else {
                                t.present[i].remove(&key);
                                t.removed[i].insert(key, now);
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {
                        if let Ok(mut t) = tables.lock() {
                            t.overflowed[i] = true;
                        }
                        break;
                    }
                }
            }
        }
    }
}

/// `(dst, len)` of an IPv4 main-table route of protocol `proto`.
fn route_key(rtmsg: &[u8], proto: u8) -> Option<Key> {
    if rtmsg.len() < RTMSG_LEN
        || rtmsg[0] != libc::AF_INET as u8
        || rtmsg[4] != 254
        || rtmsg[5] != proto
    {
        return None;
    }
    let len = rtmsg[1];
    let dst = attrs(&rtmsg[RTMSG_LEN..])
        .find_map(|(k, v)| {
            (k == RTA_DST)
                .then(|| <[u8; 4]>::try_from(v).ok())
                .flatten()
        })
        .map(Ipv4Addr::from)
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    Some((dst, len))
}
