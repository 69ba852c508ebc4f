//! Root tests of learned routes through nexthop objects
//! (`TableOptions::nexthop_objects`), each in its own namespace (the
//! `rt0`/`rt1` pair of `common::table::setup`, removed on drop, on failure
//! too): install → the kernel shows `nhid` and the gateway, one object per
//! gateway with our protocol; the last route gone → its object gone; an
//! object deleted by someone → its routes restored through a new one;
//! a restart adopts the objects and deletes the unused ones of ours after
//! `converged`; switched off → inline gateways (both families); a route
//! from a new gateway in the middle of a bulk load is written while the
//! load goes on, not after it; a burst from a new gateway is written as
//! it is taken (its object made at the first route), not planned again.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::table::{setup, via, wait_for};
use common::{Netns, require_root};
use tortie_routes::{IpNetwork, RouteTable, SharedRoute, TableOptions};

const ON: TableOptions = TableOptions {
    nexthop_objects: true,
};

struct Fam {
    flag: &'static str,
    gw: [&'static str; 2],
    /// The i-th prefix.
    nth: fn(u32) -> IpNetwork,
}

const V4: Fam = Fam {
    flag: "-4",
    gw: ["10.200.0.2", "10.200.0.3"],
    nth: |i| format!("10.77.{}.{}/32", i / 256, i % 256).parse().unwrap(),
};

const V6: Fam = Fam {
    flag: "-6",
    gw: ["2001:db8:200::2", "2001:db8:200::3"],
    nth: |i| format!("fd00:77:{i:x}::/64").parse().unwrap(),
};

/// Our routes of a family, one line each.
fn ours(ns: &Netns, flag: &str) -> Vec<String> {
    ns.ip(&[flag, "route", "show", "proto", "149"])
        .lines()
        .filter(|l| !l.starts_with(char::is_whitespace))
        .map(str::to_string)
        .collect()
}

/// Our nexthop objects, one line each (`id N via G dev D scope link proto 149`).
fn objects(ns: &Netns) -> Vec<String> {
    ns.ip(&["nexthop", "show", "proto", "149"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// The id of our object via `gw`.
fn object_via(ns: &Netns, gw: &str) -> Option<String> {
    objects(ns)
        .iter()
        .find(|l| l.contains(&format!("via {gw} ")))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
}

fn install_then_remove(fam: &'static Fam) {
    let ns = setup(&format!("nh-life{}", &fam.flag[1..]));
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let t = RouteTable::start_with(149, 254, ON).await.expect("start");
        t.converged().await;
        for i in 0..200 {
            t.set((fam.nth)(i), via(fam.gw[0])).await;
        }
        t.flush().await.expect("flush add");
        let routes = ours(&probe, fam.flag);
        assert_eq!(routes.len(), 200, "{routes:?}");
        let id = object_via(&probe, fam.gw[0]).expect("an object via the gateway");
        let want = format!("nhid {id} via {} dev rt0", fam.gw[0]);
        assert!(routes.iter().all(|r| r.contains(&want)), "{routes:?}");
        assert_eq!(objects(&probe).len(), 1, "{:?}", objects(&probe));
        // Half of them to the second gateway: a second object.
        for i in 0..100 {
            t.set((fam.nth)(i), via(fam.gw[1])).await;
        }
        t.flush().await.expect("flush move");
        let id1 = object_via(&probe, fam.gw[1]).expect("an object via the second gateway");
        let moved = probe.ip(&[fam.flag, "route", "show", &(fam.nth)(7).to_string()]);
        assert!(
            moved.contains(&format!("nhid {id1} via {}", fam.gw[1])),
            "{moved}"
        );
        // `tortie routes` shows the gateway: what the table reports.
        let installed = t.installed().await;
        assert_eq!(installed.get(&(fam.nth)(7)), Some(&via(fam.gw[1])));
        // The last route of the first gateway gone: its object goes.
        for i in 100..200 {
            t.remove((fam.nth)(i)).await;
        }
        t.flush().await.expect("flush remove");
        assert_eq!(object_via(&probe, fam.gw[0]), None, "{:?}", objects(&probe));
        assert_eq!(objects(&probe).len(), 1, "{:?}", objects(&probe));
        for i in 0..100 {
            t.remove((fam.nth)(i)).await;
        }
        t.flush().await.expect("flush remove all");
        assert!(ours(&probe, fam.flag).is_empty());
        assert!(objects(&probe).is_empty(), "{:?}", objects(&probe));
        assert_eq!(t.stats().netlink_errors, 0);
    });
}

#[test]
fn routes_use_one_object_per_gateway_and_the_last_route_takes_it_along() {
    if !require_root() {
        return;
    }
    install_then_remove(&V4);
    install_then_remove(&V6);
}

fn deleted_object_is_restored(fam: &'static Fam) {
    let ns = setup(&format!("nh-del{}", &fam.flag[1..]));
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let t = RouteTable::start_with(149, 254, ON).await.expect("start");
        for i in 0..50 {
            t.set((fam.nth)(i), via(fam.gw[0])).await;
        }
        t.flush().await.expect("flush");
        let id = object_via(&probe, fam.gw[0]).expect("object");
        probe.ip(&["nexthop", "del", "id", &id]);
        // The kernel dropped the routes with it; they come back through a
        // new object.
        let last = (fam.nth)(49).to_string();
        wait_for(
            &probe,
            &[fam.flag, "route", "show", &last],
            &format!("via {}", fam.gw[0]),
            Duration::from_secs(5),
        )
        .await;
        t.flush().await.expect("flush after restore");
        let routes = ours(&probe, fam.flag);
        assert_eq!(routes.len(), 50, "{routes:?}");
        assert!(routes.iter().all(|r| r.contains("nhid ")), "{routes:?}");
        assert_eq!(objects(&probe).len(), 1, "{:?}", objects(&probe));
        assert!(t.stats().restored >= 1, "{:?}", t.stats());
    });
}

#[test]
fn an_object_deleted_by_someone_is_put_back_with_its_routes() {
    if !require_root() {
        return;
    }
    deleted_object_is_restored(&V4);
    deleted_object_is_restored(&V6);
}

#[test]
fn a_restart_adopts_objects_and_deletes_unused_ones_after_converged() {
    if !require_root() {
        return;
    }
    let ns = setup("nh-adopt");
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        {
            let t = RouteTable::start_with(149, 254, ON).await.expect("start");
            for i in 0..20 {
                t.set((V4.nth)(i), via(V4.gw[0])).await;
                t.set((V6.nth)(i), via(V6.gw[0])).await;
            }
            t.flush().await.expect("flush");
        }
        // The task stops with its last handle, leaving routes and objects.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before = objects(&probe);
        assert_eq!(before.len(), 2, "{before:?}");
        // An object of ours that no route uses (a crash between writes).
        probe.ip(&[
            "nexthop",
            "add",
            "id",
            "1953497164",
            "via",
            V4.gw[1],
            "dev",
            "rt0",
            "proto",
            "149",
        ]);
        let t = RouteTable::start_with(149, 254, ON).await.expect("restart");
        for i in 0..20 {
            t.set((V4.nth)(i), via(V4.gw[0])).await;
            t.set((V6.nth)(i), via(V6.gw[0])).await;
        }
        t.flush().await.expect("flush again");
        // Adopted: the same objects, nothing written again.
        assert_eq!(objects(&probe).len(), 3, "{:?}", objects(&probe));
        t.converged().await;
        t.flush().await.expect("flush converged");
        assert_eq!(objects(&probe), before);
        assert_eq!(ours(&probe, "-4").len(), 20);
        assert_eq!(ours(&probe, "-6").len(), 20);
        assert_eq!(t.stats().netlink_errors, 0);
    });
}

#[test]
fn switched_off_routes_carry_their_gateways_inline() {
    if !require_root() {
        return;
    }
    let ns = setup("nh-off");
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let t = RouteTable::start(149, 254).await.expect("start");
        for i in 0..20 {
            t.set((V4.nth)(i), via(V4.gw[0])).await;
            t.set((V6.nth)(i), via(V6.gw[0])).await;
        }
        t.flush().await.expect("flush");
        for flag in ["-4", "-6"] {
            let routes = ours(&probe, flag);
            assert_eq!(routes.len(), 20);
            assert!(routes.iter().all(|r| !r.contains("nhid")), "{routes:?}");
        }
        assert!(objects(&probe).is_empty());
    });
}

/// The i-th /32 of a load of up to 2^20 routes (10.64.0.0/12).
fn load_nth(i: u32) -> IpNetwork {
    let a = 64 + (i >> 16);
    format!("10.{a}.{}.{}/32", (i >> 8) & 255, i & 255)
        .parse()
        .unwrap()
}

/// Whether `ip -4 route show <p>` in `ns` shows a route.
fn shown(ns: &Netns, p: &str) -> bool {
    !ns.try_ip(&["-4", "route", "show", p]).1.trim().is_empty()
}

/// The load's commands go out from a producer thread that never lets the
/// table's queue run dry (as the agent's RIB task does during a bulk
/// load); a probe via a second gateway goes out at 20 %. Its gateway needs
/// an object first, so its prefix is left dirty; the reconciler's
/// coalescing of a command stream once held a dirty prefix until the
/// stream ended (session 16's loadlat: 3.8 s after its UPDATE, behind a
/// 1M load). The probe must be in the kernel while the load's last route
/// is not yet.
#[test]
fn a_new_gateway_during_a_bulk_load_is_written_before_the_load_ends() {
    if !require_root() {
        return;
    }
    const N: u32 = 200_000;
    const AT: u32 = N / 5;
    let ns = setup("nh-load");
    let name = ns.name.clone();
    ns.run(move || async move {
        let t = RouteTable::start_with(149, 254, ON).await.expect("start");
        t.converged().await;
        let bulk: SharedRoute = t.intern(via(V4.gw[0]));
        let probe_net = "10.99.0.1/32";
        let sent = Arc::new(AtomicBool::new(false));
        let producer = {
            let (t, sent) = (t.clone(), sent.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    for start in (0..N).step_by(512) {
                        if start == AT / 512 * 512 {
                            t.set(probe_net.parse::<IpNetwork>().unwrap(), via(V4.gw[1]))
                                .await;
                            sent.store(true, Ordering::SeqCst);
                        }
                        let chunk = (start..(start + 512).min(N))
                            .map(|i| (load_nth(i), Some(bulk.clone())))
                            .collect();
                        t.apply(chunk).await;
                    }
                })
            })
        };
        // Watched from a thread of its own (exec would stall this runtime,
        // which runs the table).
        let watcher = {
            let (name, sent) = (name.clone(), sent.clone());
            std::thread::spawn(move || {
                let probe = Netns::borrowed(&name);
                let last = load_nth(N - 1).to_string();
                while !sent.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let start = std::time::Instant::now();
                loop {
                    if shown(&probe, probe_net) {
                        return (start.elapsed(), shown(&probe, &last));
                    }
                    assert!(start.elapsed() < Duration::from_secs(60), "probe never written");
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        while !(producer.is_finished() && watcher.is_finished()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        producer.join().expect("producer");
        let (took, load_done) = watcher.join().expect("watcher");
        assert!(
            !load_done,
            "the probe via a new gateway reached the kernel {took:?} after it was sent, only after the whole load"
        );
        t.flush().await.expect("flush");
        let probe = Netns::borrowed(&name);
        assert!(shown(&probe, &load_nth(N - 1).to_string()));
        let id = object_via(&probe, V4.gw[1]).expect("an object via the probe's gateway");
        let route = probe.ip(&["-4", "route", "show", probe_net]);
        assert!(route.contains(&format!("nhid {id} via {}", V4.gw[1])), "{route}");
        assert_eq!(t.stats().netlink_errors, 0);
    });
}

/// One burst of a bulk load from a gateway without an object yet, taken by
/// the table at once (a queue's worth: 2048 commands, queued before the
/// table's task runs on this one-thread runtime). The object is made when
/// the burst's first route finds it missing, and the rest of the burst is
/// written as its commands are taken: only that first prefix is planned a
/// second time (`RouteStats::planned`). Were the object made after the
/// whole burst, all 2048 prefixes would take the write path's second look
/// (2048 planned) — the mutant this test fails on.
fn a_new_gateway_s_burst(fam: &'static Fam) {
    const N: u32 = 2048;
    let ns = setup(&format!("nh-burst{}", &fam.flag[1..]));
    let name = ns.name.clone();
    ns.run(move || async move {
        let probe = Netns::borrowed(&name);
        let t = RouteTable::start_with(149, 254, ON).await.expect("start");
        t.converged().await;
        let before = t.stats().planned;
        let route = t.intern(via(fam.gw[0]));
        t.apply((0..N).map(|i| ((fam.nth)(i), Some(route.clone()))).collect())
            .await;
        t.flush().await.expect("flush");
        let s = t.stats();
        assert_eq!(s.installed_learned, u64::from(N));
        assert_eq!(s.netlink_errors, 0);
        let planned = s.planned - before;
        assert!(
            planned <= 2,
            "{planned} of the burst's {N} prefixes planned a second time: the burst waited for its gateway's object"
        );
        let routes = ours(&probe, fam.flag);
        assert_eq!(routes.len(), N as usize);
        let id = object_via(&probe, fam.gw[0]).expect("an object via the gateway");
        let want = format!("nhid {id} via {}", fam.gw[0]);
        assert!(routes.iter().all(|r| r.contains(&want)), "{:?}", routes.first());
    });
}

#[test]
fn a_new_gateway_s_burst_is_written_as_it_is_taken() {
    if !require_root() {
        return;
    }
    a_new_gateway_s_burst(&V4);
    a_new_gateway_s_burst(&V6);
}
