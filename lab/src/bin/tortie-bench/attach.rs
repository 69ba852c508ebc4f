//! Benchmark 3, container attach through CNI: `tortie-cni` (forwarding to
//! an agent running in the "host" namespace) against the standard `ptp`
//! plugin with `host-local` IPAM, exec'd the same way: same environment
//! (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH, PATH),
//! same stdin shape (a network config), spawned from a thread that entered
//! the plugin's host namespace. One container namespace is reused;
//! iterations alternate the plugins so drift hits all alike.
//!
//! How a plugin is spawned: `posix_spawn` (std's path when there is no
//! `pre_exec`; glibc's is `clone(CLONE_VM | CLONE_VFORK)`), as a runtime
//! does (Go's `os/exec` clones with `CLONE_VFORK | CLONE_VM` too), never a
//! `fork`: a fork copies the parent's page tables, so the exec floor would
//! grow with the bench process — in `tortie-bench all`, after ingest and
//! kernel, every plugin's VERSION exec was 2–3 ms slower than standalone
//! (session 5). The child inherits the spawning thread's network
//! namespace, so the measuring loops run on a thread of their own that
//! `setns`es into each plugin's host namespace before spawning it.
//!
//! tortie-cni runs in its builds: cargo's std build, the installed no-libc
//! build (x86_64; `bins::tortie_cni_nolibc`), on which the targets are
//! judged, and optionally `TORTIE_CNI_STATIC_BIN` (another build to compare).
//!
//! Each plugin's VERSION exec is measured on its own (its exec floor), and
//! so is a do-nothing static program without libc (`bins::do_nothing_elf`):
//! the kernel's share of a process per ADD. What a plugin's VERSION costs
//! above it is its runtime's start-up; on this project's VM that is mostly
//! glibc's `CPUID` probes, each a trap to the hypervisor (lab/bench/README.md,
//! session 10, cni lane).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tortie_lab::netns::{Netns, unique_name};
use tortie_lab::tortie::{TortieConfig, TortieNode};

use crate::report::{Section, ms, percentile, ratio};

/// One CNI plugin as the runtime sees it.
pub struct Plugin {
    pub name: &'static str,
    pub binary: PathBuf,
    pub cni_path: String,
    pub config: Value,
}

/// Runs the plugin once with `command` from namespace `host_ns`; returns
/// the wall time and stdout. Moves the calling thread into `host_ns` (see
/// the module docs): call it only on a thread of the benchmark's own.
pub fn exec(
    p: &Plugin,
    host_ns: &std::fs::File,
    command: &str,
    id: &str,
    netns: &Path,
) -> Result<(Duration, String)> {
    crate::nl::enter_netns(host_ns, "the plugin's host namespace")?;
    let mut cmd = Command::new(&p.binary);
    cmd.env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", &p.cni_path)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stdin = p.config.to_string();
    let t = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", p.binary.display()))?;
    if let Some(mut s) = child.stdin.take() {
        // A plugin may answer (VERSION) without reading its stdin: EPIPE is
        // not a failure, its exit status below is what counts.
        match s.write_all(stdin.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(e).context(format!("writing the config to {}", p.name));
            }
            _ => {}
        }
    }
    let out = child.wait_with_output()?;
    let el = t.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{} {command} {id}: {} {stdout} {}",
            p.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if command == "ADD" && !stdout.contains("\"ips\"") {
        bail!("{} ADD {id}: no ips in the result: {stdout}", p.name);
    }
    Ok((el, stdout))
}

#[derive(Default)]
struct Samples {
    add: Vec<Duration>,
    del: Vec<Duration>,
    both: Vec<Duration>,
}

impl Samples {
    fn sort(&mut self) {
        self.add.sort();
        self.del.sort();
        self.both.sort();
    }
}

/// The measuring loops, on a thread that `exec` moves between namespaces:
/// `iterations` ADD+DEL pairs per plugin (plugin k spawned from `hosts[k]`)
/// after `warmup` uncounted ones, then the decomposition rows. Returns each
/// plugin's samples, the VERSION exec times of each plugin and then of
/// `do_nothing` (spawned from `hosts[1]`, tortie's), and the agent API's own
/// attach/detach times, all sorted.
fn measure(
    plugins: &[Plugin],
    do_nothing: &Plugin,
    hosts: &[&std::fs::File],
    cpath: &Path,
    socket: &Path,
    iterations: u32,
    warmup: u32,
) -> Result<(Vec<Samples>, Vec<Vec<Duration>>, Samples)> {
    let n = plugins.len();
    // Slot n of the rotation is the agent's API without a plugin process
    // (`POST /v1/attach`, `/v1/detach` from here): it takes its turn like
    // the plugins, so its attach follows another slot's DEL as every ADD
    // does, and the decomposition compares like with like.
    let mut samples: Vec<Samples> = (0..=n).map(|_| Samples::default()).collect();
    for i in 0..iterations + warmup {
        // Rotate which slot goes first so drift hits all alike.
        for k in (0..=n).map(|j| (j + i as usize) % (n + 1)) {
            let id = format!("bench{i}");
            let (a, d) = if k == n {
                api_pair(socket, &id, cpath)?
            } else {
                let (a, _) = exec(&plugins[k], hosts[k], "ADD", &id, cpath)?;
                let (d, _) = exec(&plugins[k], hosts[k], "DEL", &id, cpath)?;
                (a, d)
            };
            if i >= warmup {
                samples[k].add.push(a);
                samples[k].del.push(d);
                samples[k].both.push(a + d);
            }
        }
    }
    for s in &mut samples {
        s.sort();
    }
    let api = samples.pop().unwrap_or_default();
    // The exec floor (VERSION: start, parse, answer) of each plugin, and
    // the kernel's alone (the do-nothing program, last).
    let mut floor: Vec<Vec<Duration>> = vec![Vec::new(); n + 1];
    for _ in 0..iterations.min(100) {
        for (k, f) in floor.iter_mut().enumerate() {
            let (p, h) = plugins
                .get(k)
                .map_or((do_nothing, hosts[1]), |p| (p, hosts[k]));
            f.push(exec(p, h, "VERSION", "v", cpath)?.0);
        }
    }
    for f in &mut floor {
        f.sort();
    }
    Ok((samples, floor, api))
}

/// The agent's own attach and detach of `id` through its API socket (no
/// plugin process): their wall times.
fn api_pair(socket: &Path, id: &str, cpath: &Path) -> Result<(Duration, Duration)> {
    let t = Instant::now();
    crate::bins::agent_post(
        socket,
        "/v1/attach",
        &json!({ "id": id, "netns": cpath.to_string_lossy() }),
    )?;
    let a = t.elapsed();
    let t = Instant::now();
    crate::bins::agent_post(socket, "/v1/detach", &json!({ "id": id }))?;
    Ok((a, t.elapsed()))
}

/// Another build of `base`'s plugin, run with the same config.
fn plugin_like(base: &Plugin, name: &'static str, binary: PathBuf) -> Plugin {
    Plugin {
        name,
        cni_path: binary
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        config: base.config.clone(),
        binary,
    }
}

pub fn run(iterations: u32) -> Result<Section> {
    let host = Netns::create(&unique_name("tba"))?;
    // ptp's "host" is a namespace of its own: the agent's route monitor must
    // not see the anchor's interfaces (ptp's host veth carries an IPv4
    // address, and its removal makes the agent's RouteTable re-dump links,
    // addresses and routes 50 ms later, in the middle of tortie's next
    // ADD). A node runs one CNI network; each plugin gets one here.
    let ptp_host = Netns::create(&unique_name("tbp"))?;
    host.sh("ip link add eth1 type veth peer name eth1p && ip link set eth1 up && ip link set eth1p up && ip addr add 198.18.0.2/24 dev eth1")?;
    let cont = Netns::create(&unique_name("tbc"))?;
    let dir = tempfile::Builder::new()
        .prefix("tortie-bench-attach")
        .tempdir()?;
    let mut cfg = TortieConfig::new("bench", "198.18.0.2/24", 64512, "10.244.0.0/22", dir.path());
    cfg.listen_port = 0;
    cfg.metrics_listen = String::new();
    let agent = TortieNode::start(&host, dir.path(), &cfg)?;
    let cni = crate::bins::tortie_cni()?;
    let mut plugins = vec![
        Plugin {
            name: "ptp+host-local",
            binary: PathBuf::from("/usr/lib/cni/ptp"),
            cni_path: "/usr/lib/cni".into(),
            config: json!({
                "cniVersion": "1.0.0", "name": "benchnet", "type": "ptp", "ipMasq": false,
                "ipam": { "type": "host-local", "subnet": "10.250.0.0/22",
                          "dataDir": dir.path().join("host-local").to_string_lossy() }
            }),
        },
        Plugin {
            name: "tortie-cni (std, dynamic)",
            binary: cni.clone(),
            cni_path: cni
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
            config: json!({
                "cniVersion": "1.0.0", "name": "benchnet", "type": "tortie-cni",
                "socket": agent.socket.to_string_lossy()
            }),
        },
    ];
    // The installed build (docs/cni.md "Install"): without libc, so no C
    // runtime start-up per exec. The targets (issue 15: ADD p50 ≤ 2 ms and
    // ≥ 4× faster than ptp, "with the installed (static) plugin") are
    // judged on it where it exists (x86_64), else on the std build.
    let nolibc_at = match crate::bins::tortie_cni_nolibc()? {
        Some(binary) => {
            plugins.push(plugin_like(&plugins[1], "tortie-cni (no libc)", binary));
            Some(plugins.len() - 1)
        }
        None => None,
    };
    // Optional: another build to compare in the same run
    // (`TORTIE_CNI_STATIC_BIN`, e.g. session 10's static-pie plugin).
    let static_at = match std::env::var_os("TORTIE_CNI_STATIC_BIN") {
        Some(p) => {
            let binary = PathBuf::from(p);
            if !binary.is_file() {
                bail!("TORTIE_CNI_STATIC_BIN={} is not a file", binary.display());
            }
            plugins.push(plugin_like(
                &plugins[1],
                "tortie-cni (TORTIE_CNI_STATIC_BIN)",
                binary,
            ));
            Some(plugins.len() - 1)
        }
        None => None,
    };
    // The kernel's floor of a process per ADD: the smallest static program,
    // spawned exactly as the plugins are (bins::do_nothing_elf).
    let do_nothing = Plugin {
        name: "do-nothing static ELF (exit, no libc)",
        binary: crate::bins::do_nothing_elf(dir.path())?,
        cni_path: dir.path().to_string_lossy().into_owned(),
        config: plugins[1].config.clone(),
    };
    if !plugins[0].binary.is_file() {
        bail!("/usr/lib/cni/ptp not found: install containernetworking-plugins");
    }
    let host_fd = std::fs::File::open(host.path()).context("opening the host namespace")?;
    let ptp_host_fd =
        std::fs::File::open(ptp_host.path()).context("opening ptp's host namespace")?;
    // Plugin k runs from the host namespace of its network.
    let hosts: Vec<&std::fs::File> = (0..plugins.len())
        .map(|k| if k == 0 { &ptp_host_fd } else { &host_fd })
        .collect();
    let cpath = cont.path();
    let warmup = 3;
    // On a thread of its own: `exec` moves its thread between namespaces.
    let (samples, floor, api) = std::thread::scope(|s| {
        s.spawn(|| {
            measure(
                &plugins,
                &do_nothing,
                &hosts,
                &cpath,
                &agent.socket,
                iterations,
                warmup,
            )
        })
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the measuring thread panicked")))
    })?;
    drop(agent);
    drop(cont);
    drop(host);
    drop(ptp_host);
    let mut sec = Section::new(
        "Container attach (CNI ADD / DEL)",
        &format!(
            "{iterations} sequential ADD+DEL pairs per plugin (after {warmup} warm-up pairs), alternating plugins, one reused container namespace; each started with posix_spawn (no fork) with the same CNI_* environment and a network config on stdin, from the host namespace. tortie-cni forwards to the running agent (IPAM record journalled, its fdatasync beside the veth creation and joined by the agent's next IPAM user, not before the answer; veth, routes); ptp uses host-local IPAM. The agent API row takes its turn in the same rotation."
        ),
    );
    sec.header = [
        "plugin",
        "ADD p50",
        "ADD p99",
        "DEL p50",
        "DEL p99",
        "ADD+DEL p50",
        "ADD+DEL p99",
    ]
    .map(String::from)
    .to_vec();
    sec.sizes = json!({ "iterations": iterations });
    let f = |d: Duration| format!("{:.2} ms", ms(d));
    let mut figures = serde_json::Map::new();
    for (k, p) in plugins.iter().enumerate() {
        let s = &samples[k];
        sec.rows.push(vec![
            p.name.into(),
            f(percentile(&s.add, 0.5)),
            f(percentile(&s.add, 0.99)),
            f(percentile(&s.del, 0.5)),
            f(percentile(&s.del, 0.99)),
            f(percentile(&s.both, 0.5)),
            f(percentile(&s.both, 0.99)),
        ]);
        figures.insert(
            p.name.into(),
            json!({
                "add_p50_ms": ms(percentile(&s.add, 0.5)), "add_p99_ms": ms(percentile(&s.add, 0.99)),
                "del_p50_ms": ms(percentile(&s.del, 0.5)), "del_p99_ms": ms(percentile(&s.del, 0.99)),
                "add_del_p50_ms": ms(percentile(&s.both, 0.5)), "add_del_p99_ms": ms(percentile(&s.both, 0.99)),
            }),
        );
    }
    let api_row = |name: &str, s: &Samples| {
        vec![
            name.to_string(),
            f(percentile(&s.add, 0.5)),
            f(percentile(&s.add, 0.99)),
            f(percentile(&s.del, 0.5)),
            f(percentile(&s.del, 0.99)),
            f(percentile(&s.both, 0.5)),
            f(percentile(&s.both, 0.99)),
        ]
    };
    sec.rows
        .push(api_row("(agent API alone, no plugin exec)", &api));
    for (k, p) in plugins.iter().chain([&do_nothing]).enumerate() {
        let (label, key) = if k < plugins.len() {
            (
                format!("({} VERSION: exec floor)", p.name),
                format!("{}_version_exec", p.name),
            )
        } else {
            (
                format!("({}: the kernel's exec floor)", p.name),
                "do_nothing_exec".to_string(),
            )
        };
        sec.rows.push(vec![
            label,
            f(percentile(&floor[k], 0.5)),
            f(percentile(&floor[k], 0.99)),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
        figures.insert(
            key,
            json!({ "p50_ms": ms(percentile(&floor[k], 0.5)), "p99_ms": ms(percentile(&floor[k], 0.99)) }),
        );
    }
    figures.insert(
        "agent_api".into(),
        json!({
            "attach_p50_ms": ms(percentile(&api.add, 0.5)), "attach_p99_ms": ms(percentile(&api.add, 0.99)),
            "detach_p50_ms": ms(percentile(&api.del, 0.5)), "detach_p99_ms": ms(percentile(&api.del, 0.99)),
        }),
    );
    let t_add = ms(percentile(&samples[1].add, 0.5));
    let speedup_add = ratio(ms(percentile(&samples[0].add, 0.5)), t_add);
    let speedup_both = ratio(
        ms(percentile(&samples[0].both, 0.5)),
        ms(percentile(&samples[1].both, 0.5)),
    );
    sec.figures = Value::Object(figures);
    sec.ratios = json!({
        "add_p50_ptp_over_tortie": speedup_add,
        "add_del_p50_ptp_over_tortie": speedup_both,
        "add_p99_ptp_over_tortie": ratio(ms(percentile(&samples[0].add, 0.99)), ms(percentile(&samples[1].add, 0.99))),
    });
    let ptp_add = ms(percentile(&samples[0].add, 0.5));
    if let Some(obj) = sec.ratios.as_object_mut() {
        for (at, key) in [
            (nolibc_at, "add_p50_ptp_over_tortie_nolibc"),
            (static_at, "add_p50_ptp_over_tortie_static"),
        ] {
            if let Some(k) = at {
                obj.insert(
                    key.into(),
                    json!(ratio(ptp_add, ms(percentile(&samples[k].add, 0.5)))),
                );
            }
        }
    }
    // The row the targets are judged on: the installed (no-libc) build.
    let (judged, judged_name) = match nolibc_at {
        Some(k) => (&samples[k], "no libc, installed"),
        None => (&samples[1], "std build"),
    };
    let j_add = ms(percentile(&judged.add, 0.5));
    let j_speedup = ratio(ptp_add, j_add);
    sec.target(
        &format!("tortie-cni ADD p50 ({judged_name})"),
        "≤ 2 ms",
        format!("{j_add:.2} ms"),
        j_add <= 2.0,
    );
    sec.target(
        &format!("speed-up over ptp, ADD p50 ({judged_name})"),
        "≥ 4×",
        format!("{j_speedup:.2}×"),
        j_speedup >= 4.0,
    );
    Ok(sec)
}
