//! Root tests of the route table's express changes
//! ([`RouteTable::express`]): one overtakes a full queue of an ordered
//! producer's bulk ([`RouteTable::apply_in_order`]), and an older bulk
//! change of its prefix still queued behind it never undoes it. Each runs
//! the table in a namespace of its own (see `table.rs`).

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::table::{setup, via};
use common::{Netns, require_root};
use tortie_routes::{IpNetwork, Ipv4Network, RouteTable, SharedRoute};

/// More changes than the table's queue holds (2048) many times over.
const BULK: u32 = 30_000;

/// 10.128.0.0 + i as /32.
fn nth(i: u32) -> IpNetwork {
    Ipv4Network::new(
        Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + i),
        32,
    )
    .unwrap()
    .into()
}

const PROBE: &str = "10.99.0.1/32";

fn probe() -> IpNetwork {
    PROBE.parse().unwrap()
}

fn count_ours(ns: &Netns) -> usize {
    ns.ip(&["-4", "route", "show", "proto", "149"])
        .lines()
        .count()
}

/// A producer on a thread of its own: queues `BULK` desires of `route`
/// (and `last` after them) as the burst `order`, waits until the bulk
/// waits for room in the full queue, then sends `express` as the burst
/// `order + 1`'s express changes (and says so on `sent`). Joined by [`join`].
fn produce(
    t: &RouteTable,
    order: u64,
    route: &SharedRoute,
    last: Option<(IpNetwork, Option<SharedRoute>)>,
    express: Vec<(IpNetwork, Option<SharedRoute>)>,
    sent: Option<std::sync::mpsc::Sender<()>>,
) -> std::thread::JoinHandle<()> {
    let mut changes: Vec<_> = (0..BULK).map(|i| (nth(i), Some(route.clone()))).collect();
    changes.extend(last);
    let t = t.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let table = t.clone();
            let bulk = tokio::spawn(async move { table.apply_in_order(order, changes).await });
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(
                !bulk.is_finished(),
                "the bulk waits for room in a full queue"
            );
            t.express(order + 1, express);
            if let Some(sent) = sent {
                let _ = sent.send(());
            }
            bulk.await.expect("bulk");
        });
    })
}

/// Waits for a [`produce`] thread without blocking the table's task.
async fn join(producer: std::thread::JoinHandle<()>) {
    tokio::task::spawn_blocking(move || producer.join())
        .await
        .expect("join")
        .expect("producer");
}

/// An express change sent while a full queue of bulk waits for the table
/// is the first route the table writes: its task is held (the test keeps
/// its thread) while the producer fills the queue and sends the express
/// change, then let go; a listener in the namespace sees the writes' order.
#[test]
fn an_express_change_overtakes_a_full_queue() {
    use tortie_routes::nl::consts::{RTM_NEWROUTE, RTMGRP_IPV4_ROUTE};
    use tortie_routes::nl::{Decoded, Socket, decode, messages};
    if !require_root() {
        return;
    }
    let ns = setup("tbl-express");
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe_ns = Netns::borrowed(&name);
        let listener = Socket::open(RTMGRP_IPV4_ROUTE).expect("listener");
        let watcher = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let until = std::time::Instant::now() + Duration::from_secs(20);
            let mut added = 0usize;
            loop {
                let n = listener
                    .recv_until(&mut buf, until)
                    .expect("recv")
                    .unwrap_or_else(|| panic!("{PROBE} not heard after {added} routes"));
                for m in messages(&buf[..n]) {
                    if m.header.kind == RTM_NEWROUTE
                        && let Ok(Decoded::Route { route, .. }) = decode(&m)
                    {
                        if route.dst == Some(probe().ip()) {
                            return added;
                        }
                        added += 1;
                    }
                }
            }
        });
        let t = RouteTable::start(149, 254).await.expect("start");
        let route = t.intern(via("10.200.0.2"));
        let express = vec![(probe(), Some(t.intern(via("10.200.0.3"))))];
        let (sent_tx, sent) = std::sync::mpsc::channel();
        let producer = produce(&t, 1, &route, None, express, Some(sent_tx));
        // This thread is the table's: it takes nothing until we yield.
        sent.recv().expect("express sent");
        join(producer).await;
        let ahead = watcher.join().expect("watcher");
        assert_eq!(ahead, 0, "bulk routes written before the express one");
        t.flush().await.expect("flush");
        assert_eq!(count_ours(&probe_ns), BULK as usize + 1);
        let shown = probe_ns.ip(&["route", "show", PROBE]);
        assert!(shown.contains("via 10.200.0.3"), "{shown}");
        let stats = t.stats();
        assert_eq!((stats.express, stats.express_stale), (1, 0), "counted");
    });
}

/// A bulk change of an earlier burst, queued before an express change of
/// the same prefix and applied after it, is dropped: a withdrawal is not
/// undone by the older announcement, an announcement not by the older
/// withdrawal; a later burst's change applies as usual.
#[test]
fn a_stale_bulk_change_never_undoes_an_express_one() {
    if !require_root() {
        return;
    }
    let ns = setup("tbl-stale");
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe_ns = Netns::borrowed(&name);
        let t = RouteTable::start(149, 254).await.expect("start");
        let route = t.intern(via("10.200.0.2"));
        let other = t.intern(via("10.200.0.3"));
        // Announced in the bulk of burst 1, withdrawn by burst 2's express.
        let last = Some((probe(), Some(other.clone())));
        join(produce(&t, 1, &route, last, vec![(probe(), None)], None)).await;
        t.flush().await.expect("flush");
        let shown = probe_ns.ip(&["route", "show", PROBE]);
        assert_eq!(
            shown.trim(),
            "",
            "the older announcement undid the withdrawal"
        );
        let stats = t.stats();
        assert_eq!((stats.express, stats.express_stale), (1, 1), "counted");
        // Withdrawn in the bulk of burst 3, announced by burst 4's express.
        let express = vec![(probe(), Some(route.clone()))];
        join(produce(&t, 3, &other, Some((probe(), None)), express, None)).await;
        t.flush().await.expect("flush");
        let shown = probe_ns.ip(&["route", "show", PROBE]);
        assert!(
            shown.contains("via 10.200.0.2"),
            "withdrawn by an older change: {shown}"
        );
        let stats = t.stats();
        assert_eq!((stats.express, stats.express_stale), (2, 2), "counted");
        // A later burst is not older: it applies.
        t.apply_in_order(5, vec![(probe(), None)]).await;
        t.flush().await.expect("flush");
        assert_eq!(probe_ns.ip(&["route", "show", PROBE]).trim(), "");
        assert_eq!(count_ours(&probe_ns), BULK as usize);
    });
}

/// A producer without an order (`set`, `remove`, `apply`) is never taken
/// for an ordered one's older bulk: its desire for a prefix an express
/// change went to first applies (no burst of a later order has passed
/// the express one, so it is still recorded).
#[test]
fn an_unordered_desire_is_never_stale() {
    if !require_root() {
        return;
    }
    let ns = setup("tbl-unord");
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe_ns = Netns::borrowed(&name);
        let t = RouteTable::start(149, 254).await.expect("start");
        let route = t.intern(via("10.200.0.2"));
        t.express(2, vec![(probe(), None)]);
        t.set_shared(probe(), &route).await;
        t.flush().await.expect("flush");
        let shown = probe_ns.ip(&["route", "show", PROBE]);
        assert!(shown.contains("via 10.200.0.2"), "dropped: {shown}");
        assert_eq!(
            t.stats().express_stale,
            0,
            "an unordered desire counted stale"
        );
        t.apply(vec![(probe(), None)]).await;
        t.flush().await.expect("flush");
        assert_eq!(probe_ns.ip(&["route", "show", PROBE]).trim(), "");
    });
}
