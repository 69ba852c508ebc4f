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
//!   baseline (one `RTM_NEWROUTE` replace sent, its ACK awaited, per
//!   route, on the product's netlink socket), in the same run and namespace;
//!   with `BENCH_IDLE_SECS=S`, also the process's CPU while the loaded
//!   table then sits idle for S seconds;
//! - attach latency p50/p99 over 500 attaches, each into its own namespace:
//!   `attach` then the host route through the route table
//!   (`RouteTable::install`), as the agent does.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, unshare};
use tortie_routes::nl::consts::{IFLA_IFNAME, NLM_F_ACK, NLMSG_ERROR, RTM_DELLINK};
use tortie_routes::nl::{self, Msg, RouteEncoder};
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

/// A veth pair `rt0`/`rt1` up, `10.200.0.1/24` on `rt0` (the gateway's
/// subnet), `lo` up: with `ip`, which inherits our namespace.
fn setup() -> anyhow_free::Result<()> {
    for args in [
        "link add rt0 type veth peer name rt1",
        "link set lo up",
        "link set rt0 up",
        "link set rt1 up",
        "addr add 10.200.0.1/24 dev rt0",
    ] {
        let st = std::process::Command::new("ip")
            .args(args.split(' '))
            .status()?;
        if !st.success() {
            return Err(format!("ip {args}: {st}").into());
        }
    }
    Ok(())
}

/// Send one request and wait for its ACK (the one-at-a-time baseline).
fn request_ack(sock: &nl::Socket, req: &[u8], rx: &mut [u8]) -> anyhow_free::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    sock.send_blocking(req, deadline)?;
    loop {
        let n = sock
            .recv_until(rx, deadline)?
            .ok_or("no netlink ACK in 5 s")?;
        for m in nl::messages(&rx[..n]) {
            if m.header.kind == NLMSG_ERROR {
                let e = nl::error_msg(m.header.flags, m.body).ok_or("short NLMSG_ERROR")?;
                if e.errno != 0 {
                    return Err(std::io::Error::from_raw_os_error(e.errno).into());
                }
                return Ok(());
            }
        }
    }
}

/// One request, one ACK, per route: add (replace) then delete.
fn baseline(n: u32) -> anyhow_free::Result<(f64, f64)> {
    let sock = nl::Socket::open(0)?;
    let enc = RouteEncoder {
        protocol: PROTO,
        table: 254,
        extra_flags: NLM_F_ACK,
    };
    let route = KernelRoute::Unicast {
        next_hops: vec![NextHop {
            gateway: gw().into(),
            dev: None,
            onlink: false,
        }],
    };
    let mut rx = vec![0u8; 64 * 1024];
    let mut req = Vec::with_capacity(128);
    let mut pass = |del: bool| -> anyhow_free::Result<Duration> {
        let t = Instant::now();
        for i in 0..n {
            req.clear();
            let r = (!del).then_some(&route);
            enc.encode(&mut req, i + 1, nth(i).into(), r, &|_| None)?;
            request_ack(&sock, &req, &mut rx)?;
        }
        Ok(t.elapsed())
    };
    let add = pass(false)?;
    let del = pass(true)?;
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
    if let Some(secs) = std::env::var("BENCH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        idle_cpu(n, secs).await?;
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

/// CPU time of the whole process (user + system) so far.
fn cpu_time() -> anyhow_free::Result<Duration> {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_SELF)?;
    let d = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    Ok(d(u.user_time()) + d(u.system_time()))
}

/// BENCH_IDLE_SECS=S: the process's CPU while the loaded table sits idle
/// for S seconds (nothing else runs: the reconciler's own idle cost).
async fn idle_cpu(n: u32, secs: u64) -> anyhow_free::Result<()> {
    // Let the load's last stats pass go by first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c0 = cpu_time()?;
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (cpu, wall) = (cpu_time()? - c0, t.elapsed());
    println!(
        "{n:>7} routes: idle {:.1} s, CPU {:.1} ms = {:.2} ms per second",
        wall.as_secs_f64(),
        ms(cpu),
        ms(cpu) / wall.as_secs_f64()
    );
    Ok(())
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
            host_routes: None,
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
            let sock = nl::Socket::open(0)?;
            let req = Msg::new(RTM_DELLINK, 0, &nl::build::ifinfomsg(0, 0, 0))
                .str(IFLA_IFNAME, "eth0")
                .finish(1);
            request_ack(&sock, &req, &mut [0u8; 8192])
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
    setup()?;
    rt.block_on(async {
        println!("routes: {PROTO} proto, /32s via a connected gateway, main table, private netns");
        for &n in &sizes {
            let (b_add, b_del) = if std::env::var_os("BENCH_NO_BASELINE").is_some() {
                (f64::NAN, f64::NAN)
            } else {
                baseline(n)?
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
