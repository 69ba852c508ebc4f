//! Benchmark (not a test): kernel route programming rate and attach latency.
//!
//! Runs entirely inside private network namespaces made with `unshare` (the
//! process's own, and one per container thread), so the host is never
//! touched and nothing outlives the process. Needs root.
//!
//! `cargo run --release -p tortie-routes --example route_bench [-- N...]`
//!
//! - routes/s for 10k and 100k /32s via a connected gateway: the reconciler
//!   (`RouteTable`, pipelined batches) against a one-request-one-ack
//!   baseline (rtnetlink `route().add().replace()` awaited per route), in
//!   the same run and namespace;
//! - attach latency p50/p99 over 500 attaches, each into its own namespace:
//!   `attach` then the host route through the route table
//!   (`RouteTable::install`), as the agent does.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol};
use nix::sched::{CloneFlags, unshare};
use rtnetlink::{LinkUnspec, LinkVeth};
use tortie_routes::{AttachRequest, Ipv4Network, KernelRoute, NextHop, RouteTable, attach, detach};

const PROTO: u8 = 149;

/// Counts live heap bytes, to report the route table's bytes per route.
struct Counting;

static LIVE: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only adds bookkeeping.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        LIVE.fetch_sub(l.size() as isize, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(
            new as isize - l.size() as isize,
            std::sync::atomic::Ordering::Relaxed,
        );
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(std::sync::atomic::Ordering::Relaxed)
}

fn nth(i: u32) -> Ipv4Network {
    let base = u32::from(Ipv4Addr::new(10, 128, 0, 0));
    Ipv4Network::new(Ipv4Addr::from(base + i), 32).expect("valid /32")
}

fn gw() -> Ipv4Addr {
    Ipv4Addr::new(10, 200, 0, 2)
}

async fn setup(h: &rtnetlink::Handle) -> anyhow_free::Result<u32> {
    h.link()
        .add(LinkVeth::new("rt0", "rt1").build())
        .execute()
        .await?;
    let mut index = HashMap::new();
    let mut links = h.link().get().execute();
    while let Some(m) = links.try_next().await? {
        for a in &m.attributes {
            if let netlink_packet_route::link::LinkAttribute::IfName(n) = a {
                index.insert(n.clone(), m.header.index);
            }
        }
    }
    for name in ["lo", "rt0", "rt1"] {
        let i = *index.get(name).ok_or("missing link")?;
        h.link()
            .set(LinkUnspec::new_with_index(i).up().build())
            .execute()
            .await?;
    }
    let rt0 = *index.get("rt0").ok_or("missing rt0")?;
    h.address()
        .add(rt0, IpAddr::V4(Ipv4Addr::new(10, 200, 0, 1)), 24)
        .execute()
        .await?;
    Ok(rt0)
}

fn baseline_msg(p: Ipv4Network) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    m.header.destination_prefix_length = 32;
    m.header.table = 254;
    m.header.protocol = RouteProtocol::from(PROTO);
    m.header.kind = netlink_packet_route::route::RouteType::Unicast;
    m.attributes
        .push(RouteAttribute::Destination(RouteAddress::Inet(p.ip())));
    m.attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(gw())));
    m
}

async fn baseline(h: &rtnetlink::Handle, n: u32) -> anyhow_free::Result<(f64, f64)> {
    let t = Instant::now();
    for i in 0..n {
        h.route()
            .add(baseline_msg(nth(i)))
            .replace()
            .execute()
            .await?;
    }
    let add = t.elapsed();
    let t = Instant::now();
    for i in 0..n {
        h.route().del(baseline_msg(nth(i))).execute().await?;
    }
    let del = t.elapsed();
    Ok((rate(n, add), rate(n, del)))
}

async fn pipelined(n: u32) -> anyhow_free::Result<(f64, f64)> {
    let heap0 = live();
    let table = RouteTable::start(PROTO, 254).await?;
    let route = KernelRoute::Unicast {
        next_hops: vec![NextHop {
            gateway: gw().into(),
            dev: None,
            onlink: false,
        }],
    };
    let t = Instant::now();
    if std::env::var_os("BENCH_REPLACE_ALL").is_some() {
        table
            .replace_all((0..n).map(|i| (nth(i).into(), route.clone())).collect())
            .await;
    } else {
        for i in 0..n {
            table.set(nth(i), route.clone()).await;
        }
    }
    table.flush().await?;
    let add = t.elapsed();
    let heap = live() - heap0;
    println!(
        "{n:>7} routes: route table heap {:.1} MiB = {:.0} B/route (desired + kernel state, after flush)",
        heap as f64 / 1048576.0,
        heap as f64 / f64::from(n)
    );
    let stats = table.stats();
    eprintln!("  [{n}] after add: {stats:?} (set+flush {:?})", add);
    if stats.installed_learned != u64::from(n) {
        return Err(format!("only {} of {n} installed", stats.installed_learned).into());
    }
    let t = Instant::now();
    table.replace_all(HashMap::new()).await;
    table.flush().await?;
    let del = t.elapsed();
    if !table.installed().await.is_empty() {
        return Err("routes left after removal".into());
    }
    Ok((rate(n, add), rate(n, del)))
}

fn rate(n: u32, d: Duration) -> f64 {
    f64::from(n) / d.as_secs_f64()
}

/// A thread parked in its own fresh network namespace; its namespace path.
struct NsThread {
    path: PathBuf,
    stop: std::sync::mpsc::Sender<()>,
    join: std::thread::JoinHandle<()>,
}

fn ns_thread() -> anyhow_free::Result<NsThread> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop, wait) = std::sync::mpsc::channel::<()>();
    let join = std::thread::spawn(move || {
        let r = unshare(CloneFlags::CLONE_NEWNET).map(|_| nix::unistd::gettid());
        let _ = tx.send(r);
        let _ = wait.recv();
    });
    let tid = rx.recv()??;
    Ok(NsThread {
        path: PathBuf::from(format!("/proc/self/task/{tid}/ns/net")),
        stop,
        join,
    })
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn attach_bench(count: u32) -> anyhow_free::Result<()> {
    let mut threads = Vec::new();
    for _ in 0..count {
        threads.push(ns_thread()?);
    }
    let table = RouteTable::start(PROTO, 254).await?;
    let mut lat = Vec::new();
    for (i, th) in threads.iter().enumerate() {
        let i = i as u32;
        let address = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 2)) + i);
        let req = AttachRequest {
            container_id: format!("bench-{i}"),
            netns: th.path.clone(),
            ifname: "eth0".into(),
            addresses: vec![address.into()],
            mtu: 1480,
            veth_prefix: "tt".into(),
        };
        let t = Instant::now();
        let a = attach(&req).await?;
        // As the agent does: the host route through the route table.
        table
            .install(
                Ipv4Network::new(address, 32)?,
                KernelRoute::Local { dev: a.host_ifname },
            )
            .await?;
        lat.push(t.elapsed());
    }
    let mut det = Vec::new();
    // BENCH_DETACH_INSIDE=1: delete the container end from inside its
    // namespace first (then detach, which finds the pair gone), to compare
    // with deleting the host end.
    let inside = std::env::var_os("BENCH_DETACH_INSIDE").is_some();
    for (i, th) in threads.iter().enumerate() {
        let t = Instant::now();
        if inside {
            delete_inside(th.path.clone()).await?;
        }
        detach(&format!("bench-{i}"), "tt", PROTO).await?;
        det.push(t.elapsed());
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 2)) + i as u32);
        table.remove(Ipv4Network::new(ip, 32)?).await;
    }
    lat.sort();
    det.sort();
    eprintln!("  route table after attach/detach: {:?}", table.stats());
    println!(
        "attach x{count}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; detach p50 {:.2} ms, p99 {:.2} ms",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default()),
        ms(percentile(&det, 0.5)),
        ms(percentile(&det, 0.99)),
    );
    for th in threads {
        let _ = th.stop.send(());
        let _ = th.join.join();
    }
    Ok(())
}

/// Delete `eth0` from a thread inside the namespace at `path`.
async fn delete_inside(path: PathBuf) -> anyhow_free::Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let r = (|| -> anyhow_free::Result<()> {
            let f = std::fs::File::open(&path)?;
            nix::sched::setns(&f, CloneFlags::CLONE_NEWNET)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let (conn, h, _) = rtnetlink::new_connection()?;
                tokio::spawn(conn);
                h.link()
                    .del_with_message(LinkUnspec::new_with_name("eth0").build())
                    .execute()
                    .await?;
                Ok(())
            })
        })();
        let _ = tx.send(r);
    });
    rx.await?
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Minimal boxed error for the example (the crate avoids anyhow in libraries).
mod anyhow_free {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

fn main() -> anyhow_free::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Err("route_bench needs root (it works in private network namespaces)".into());
    }
    let sizes: Vec<u32> = {
        let args: Vec<u32> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if args.is_empty() {
            vec![10_000, 100_000]
        } else {
            args
        }
    };
    // Everything below happens in a namespace of our own.
    unshare(CloneFlags::CLONE_NEWNET)?;
    // BENCH_MT=1: a multi-thread runtime (producer and reconciler on
    // different threads, as in the agent).
    let rt = if std::env::var_os("BENCH_MT").is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    };
    rt.block_on(async {
        let (conn, h, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        setup(&h).await?;
        println!("routes: {PROTO} proto, /32s via a connected gateway, main table, private netns");
        for &n in &sizes {
            let (b_add, b_del) = if std::env::var_os("BENCH_NO_BASELINE").is_some() {
                (f64::NAN, f64::NAN)
            } else {
                baseline(&h, n).await?
            };
            let (p_add, p_del) = pipelined(n).await?;
            println!(
                "{n:>7} routes: pipelined add {:>9.0}/s del {:>9.0}/s | one-at-a-time add {:>8.0}/s del {:>8.0}/s | ratio add {:.1}x",
                p_add,
                p_del,
                b_add,
                b_del,
                p_add / b_add
            );
        }
        if std::env::var_os("BENCH_NO_ATTACH").is_none() {
            attach_bench(500).await?;
        }
        Ok(())
    })
}
