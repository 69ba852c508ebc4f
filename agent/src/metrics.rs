//! Prometheus metrics (DESIGN.md §6), collected at scrape time.
//!
//! Data flow: on each `GET /metrics` the HTTP handler asks a [`MetricsSource`]
//! (the daemon) for a fresh [`MetricsSnapshot`] — peer counters from the
//! speaker, route counts from the route table, IPAM counts — and encodes it
//! with prometheus-client's text encoder through a one-shot [`Collector`]. No
//! value is ever cached, so a scrape is never stale.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// RFC 4271 §8 session states, as `tortie_bgp_session_state{state}` labels.
pub const SESSION_STATES: [&str; 6] = [
    "Idle",
    "Connect",
    "Active",
    "OpenSent",
    "OpenConfirm",
    "Established",
];

/// One peer's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeerMetrics {
    pub address: String,
    pub asn: u32,
    /// One of [`SESSION_STATES`].
    pub state: String,
    pub received_routes: u64,
    pub advertised_routes: u64,
    /// Of the two above, the IPv6 prefixes.
    pub received_routes_ipv6: u64,
    pub advertised_routes_ipv6: u64,
    /// `(type, count)`: open, update, notification, keepalive, route_refresh.
    pub messages_received: Vec<(String, u64)>,
    pub messages_sent: Vec<(String, u64)>,
    pub established_transitions: u64,
    /// The BFD session is Up; `None` when the peer has no BFD.
    pub bfd_up: Option<bool>,
    /// BFD state changes (RFC 5880) since the session was configured.
    pub bfd_transitions: u64,
    /// The configured name and "iBGP"/"eBGP"/… for `tortie_bgp_peer_info`.
    pub name: String,
    pub session_type: String,
    /// When the current state was entered, seconds since the Unix epoch.
    pub state_since: u64,
    /// When the session last came up or went down, seconds since the Unix epoch.
    pub up_down_since: u64,
    /// Received prefixes kept stale while the peer restarts (RFC 4724).
    pub stale_routes: u64,
    /// Announced prefixes the import policy rejected.
    pub filtered_routes: u64,
    /// Of the two above, the IPv6 prefixes.
    pub stale_routes_ipv6: u64,
    pub filtered_routes_ipv6: u64,
}

/// Everything a scrape reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsSnapshot {
    pub peers: Vec<PeerMetrics>,
    pub routes_learned: u64,
    pub routes_local: u64,
    pub routes_blackhole: u64,
    /// Of the three above, the IPv6 ones (learned, local, blackhole).
    pub routes_ipv6: [u64; 3],
    /// Netlink requests the kernel refused, by errno name (`ENETUNREACH`).
    pub netlink_errors: Vec<(String, u64)>,
    /// Desired routes not in the kernel now, by reason (an errno name,
    /// `no_device` or `conflict`).
    pub routes_not_installed: Vec<(String, u64)>,
    /// Remote VXLAN VTEPs the learned routes go through.
    pub vxlan_vteps: u64,
    /// VXLAN FDB/neighbour entries of ours someone removed, put back.
    pub vxlan_entries_restored: u64,
    /// Routes of ours found in the kernel at start-up (or strays found
    /// since) still kept unwritten, waiting for the sweep.
    pub routes_adopted: u64,
    /// Adopted or stray routes of ours the sweep deleted.
    pub routes_swept: u64,
    /// Routes of ours someone else removed or changed, put back.
    pub routes_restored: u64,
    /// Route changes that took the express path (the speaker's `express`
    /// mark: queued ahead of the route table's bulk).
    pub express_changes: u64,
    /// Bulk route changes dropped as older than an express change of
    /// their prefix applied first.
    pub express_stale: u64,
    pub containers: u64,
    /// `(state, count)`: allocated, free, reserved.
    pub ipam: Vec<(String, u64)>,
    /// The agent process (None when procfs cannot be read).
    pub process: Option<crate::procstat::ProcessStats>,
}

/// Where a scrape gets its figures (implemented by the daemon).
pub trait MetricsSource: Send + Sync + 'static {
    fn snapshot(&self) -> impl Future<Output = MetricsSnapshot> + Send;
}

/// A snapshot as a prometheus-client [`Collector`].
#[derive(Debug)]
struct SnapshotCollector(MetricsSnapshot);

type Labels = Vec<(&'static str, String)>;

fn peer_labels(p: &PeerMetrics) -> Labels {
    vec![("peer", p.address.clone()), ("peer_asn", p.asn.to_string())]
}

fn gauge_family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, i64)],
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

/// `name` without the `_total` suffix: the encoder appends it for counters.
fn counter_family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, u64)],
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge_f64(enc: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(v).encode(m.encode_family(&Labels::new())?)
}

/// The families of Prometheus' own process collector, with its names and help.
fn process_families(enc: &mut DescriptorEncoder, p: &crate::procstat::ProcessStats) -> fmt::Result {
    let mut m = enc.encode_descriptor(
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds.",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(p.cpu_seconds).encode(m.encode_family(&Labels::new())?)?;
    let int = |v: u64| vec![(Labels::new(), clamp(v))];
    gauge_family(
        enc,
        "process_open_fds",
        "Number of open file descriptors.",
        &int(p.open_fds),
    )?;
    gauge_family(
        enc,
        "process_max_fds",
        "Maximum number of open file descriptors.",
        &int(p.max_fds),
    )?;
    gauge_family(
        enc,
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        &int(p.virtual_memory_bytes),
    )?;
    gauge_family(
        enc,
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        &int(p.resident_memory_bytes),
    )?;
    gauge_f64(
        enc,
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        p.start_time_seconds,
    )
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let s = &self.0;
        let per_peer = |f: &dyn Fn(&PeerMetrics) -> i64| -> Vec<(Labels, i64)> {
            s.peers.iter().map(|p| (peer_labels(p), f(p))).collect()
        };
        gauge_family(
            &mut enc,
            "tortie_bgp_session_up",
            "1 when the BGP session with the peer is Established, 0 otherwise.",
            &per_peer(&|p| i64::from(p.state == "Established")),
        )?;
        let mut states = Vec::new();
        for p in &s.peers {
            for st in SESSION_STATES {
                let mut l = peer_labels(p);
                l.push(("state", st.to_string()));
                states.push((l, i64::from(p.state == st)));
            }
        }
        gauge_family(
            &mut enc,
            "tortie_bgp_session_state",
            "BGP session state (RFC 4271 section 8): 1 for the current state, 0 for the others.",
            &states,
        )?;
        // One row per peer and family (sum over `family` for the total).
        let per_family = |total: &dyn Fn(&PeerMetrics) -> u64, v6: &dyn Fn(&PeerMetrics) -> u64| {
            s.peers
                .iter()
                .flat_map(|p| {
                    [("ipv4", total(p).saturating_sub(v6(p))), ("ipv6", v6(p))].map(|(f, n)| {
                        let mut l = peer_labels(p);
                        l.push(("family", f.to_string()));
                        (l, clamp(n))
                    })
                })
                .collect::<Vec<_>>()
        };
        gauge_family(
            &mut enc,
            "tortie_bgp_received_routes",
            "Prefixes in the peer's Adj-RIB-In (received and kept), by family.",
            &per_family(&|p| p.received_routes, &|p| p.received_routes_ipv6),
        )?;
        gauge_family(
            &mut enc,
            "tortie_bgp_advertised_routes",
            "Prefixes in the peer's Adj-RIB-Out (advertised to it), by family.",
            &per_family(&|p| p.advertised_routes, &|p| p.advertised_routes_ipv6),
        )?;
        gauge_family(
            &mut enc,
            "tortie_bgp_stale_routes",
            "Received prefixes kept as stale while the peer restarts gracefully (RFC 4724), by family.",
            &per_family(&|p| p.stale_routes, &|p| p.stale_routes_ipv6),
        )?;
        gauge_family(
            &mut enc,
            "tortie_bgp_filtered_routes",
            "Prefixes the peer announced that the import guard or its import filter refused, by family.",
            &per_family(&|p| p.filtered_routes, &|p| p.filtered_routes_ipv6),
        )?;
        gauge_family(
            &mut enc,
            "tortie_bgp_session_state_change_timestamp_seconds",
            "When the session entered its current state (Unix time).",
            &per_peer(&|p| clamp(p.state_since)),
        )?;
        gauge_family(
            &mut enc,
            "tortie_bgp_session_up_down_timestamp_seconds",
            "When the session last became Established or stopped being Established (Unix time; the agent's start until then).",
            &per_peer(&|p| clamp(p.up_down_since)),
        )?;
        let info: Vec<(Labels, i64)> = s
            .peers
            .iter()
            .map(|p| {
                let mut l = peer_labels(p);
                l.push(("name", p.name.clone()));
                l.push(("type", p.session_type.clone()));
                (l, 1)
            })
            .collect();
        gauge_family(
            &mut enc,
            "tortie_bgp_peer_info",
            "Always 1: the peer's configured name and session type (iBGP, eBGP, iBGP route reflector client).",
            &info,
        )?;
        let msgs = |pick: &dyn Fn(&PeerMetrics) -> &Vec<(String, u64)>| -> Vec<(Labels, u64)> {
            let mut rows = Vec::new();
            for p in &s.peers {
                for (t, n) in pick(p) {
                    let mut l = peer_labels(p);
                    l.push(("type", t.clone()));
                    rows.push((l, *n));
                }
            }
            rows
        };
        counter_family(
            &mut enc,
            "tortie_bgp_messages_received",
            "BGP messages received from the peer, by type.",
            &msgs(&|p| &p.messages_received),
        )?;
        counter_family(
            &mut enc,
            "tortie_bgp_messages_sent",
            "BGP messages sent to the peer, by type.",
            &msgs(&|p| &p.messages_sent),
        )?;
        let transitions: Vec<(Labels, u64)> = s
            .peers
            .iter()
            .map(|p| (peer_labels(p), p.established_transitions))
            .collect();
        counter_family(
            &mut enc,
            "tortie_bgp_established_transitions",
            "Times the session with the peer entered Established.",
            &transitions,
        )?;
        let bfd: Vec<&PeerMetrics> = s.peers.iter().filter(|p| p.bfd_up.is_some()).collect();
        gauge_family(
            &mut enc,
            "tortie_bfd_session_up",
            "1 when the peer's BFD session (RFC 5880) is Up, 0 otherwise; only peers with bfd = true.",
            &bfd.iter()
                .map(|p| (peer_labels(p), i64::from(p.bfd_up == Some(true))))
                .collect::<Vec<_>>(),
        )?;
        counter_family(
            &mut enc,
            "tortie_bfd_transitions",
            "BFD session state changes (AdminDown/Down/Init/Up) since the session was configured.",
            &bfd.iter()
                .map(|p| (peer_labels(p), p.bfd_transitions))
                .collect::<Vec<_>>(),
        )?;
        gauge_family(
            &mut enc,
            "tortie_dataplane_routes",
            "Kernel routes owned by tortie, by kind: learned (BGP), local (container host routes), blackhole (own blocks); and family (ipv4, ipv6).",
            &[
                ("learned", s.routes_learned, s.routes_ipv6[0]),
                ("local", s.routes_local, s.routes_ipv6[1]),
                ("blackhole", s.routes_blackhole, s.routes_ipv6[2]),
            ]
            .iter()
            .flat_map(|(kind, total, v6)| {
                [("ipv4", total.saturating_sub(*v6)), ("ipv6", *v6)].map(|(family, n)| {
                    (
                        vec![("kind", kind.to_string()), ("family", family.to_string())],
                        clamp(n),
                    )
                })
            })
            .collect::<Vec<_>>(),
        )?;
        let by_reason = |rows: &[(String, u64)]| -> Vec<(Labels, u64)> {
            rows.iter()
                .map(|(r, n)| (vec![("reason", r.clone())], *n))
                .collect()
        };
        counter_family(
            &mut enc,
            "tortie_dataplane_netlink_errors",
            "Route requests the kernel refused, by errno name (each attempt counts; refused routes are retried every second).",
            &by_reason(&s.netlink_errors),
        )?;
        let not_installed: Vec<(Labels, i64)> = by_reason(&s.routes_not_installed)
            .into_iter()
            .map(|(l, n)| (l, clamp(n)))
            .collect();
        gauge_family(
            &mut enc,
            "tortie_dataplane_routes_not_installed",
            "Desired routes not in the kernel, by reason (errno name, no_device, conflict); `tortie routes` shows each with the kernel's words.",
            &not_installed,
        )?;
        gauge_family(
            &mut enc,
            "tortie_dataplane_routes_adopted",
            "Routes of tortie's found in the kernel at start-up (kept forwarding across a restart) not yet re-learned or swept; 0 once the sweep after convergence ran.",
            &[(Vec::new(), clamp(s.routes_adopted))],
        )?;
        counter_family(
            &mut enc,
            "tortie_dataplane_routes_swept",
            "Adopted or stray routes of tortie's that no peer re-announced, deleted by the sweep after convergence.",
            &[(Vec::new(), s.routes_swept)],
        )?;
        counter_family(
            &mut enc,
            "tortie_dataplane_routes_restored",
            "Routes of tortie's that someone else removed or changed, put back by the route table.",
            &[(Vec::new(), s.routes_restored)],
        )?;
        counter_family(
            &mut enc,
            "tortie_dataplane_express_changes",
            "Route changes that overtook the route table's queued bulk (the express path: made while a backlog was delivered).",
            &[(Vec::new(), s.express_changes)],
        )?;
        counter_family(
            &mut enc,
            "tortie_dataplane_express_stale",
            "Bulk route changes dropped because a newer express change of their prefix had been applied first.",
            &[(Vec::new(), s.express_stale)],
        )?;
        gauge_family(
            &mut enc,
            "tortie_dataplane_vxlan_vteps",
            "Remote VXLAN VTEPs (other nodes) the learned routes go through; each has a permanent FDB and neighbour entry.",
            &[(Vec::new(), clamp(s.vxlan_vteps))],
        )?;
        counter_family(
            &mut enc,
            "tortie_dataplane_vxlan_entries_restored",
            "VXLAN FDB/neighbour entries of tortie's that someone else removed, put back.",
            &[(Vec::new(), s.vxlan_entries_restored)],
        )?;
        gauge_family(
            &mut enc,
            "tortie_containers",
            "Containers (interfaces) attached by this agent.",
            &[(Vec::new(), clamp(s.containers))],
        )?;
        let ipam: Vec<(Labels, i64)> = s
            .ipam
            .iter()
            .map(|(st, n)| (vec![("state", st.clone())], clamp(*n)))
            .collect();
        gauge_family(
            &mut enc,
            "tortie_ipam_addresses",
            "Addresses of the node's pod block, by state (allocated, free, reserved).",
            &ipam,
        )?;
        gauge_family(
            &mut enc,
            "tortie_build_info",
            "Always 1; the version label says which tortie build runs.",
            &[(vec![("version", env!("CARGO_PKG_VERSION").to_string())], 1)],
        )?;
        if let Some(p) = &s.process {
            process_families(&mut enc, p)?;
        }
        Ok(())
    }
}

/// Encodes a snapshot in the Prometheus text exposition format 0.0.4 (what
/// `promtool check metrics` lints and every Prometheus scrapes).
pub fn render(snapshot: MetricsSnapshot) -> Result<String, fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector(snapshot)));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(openmetrics_to_prometheus(&out))
}

/// prometheus-client writes OpenMetrics, where a counter family `x` has
/// samples `x_total`. The Prometheus text format names the family after its
/// samples (`# TYPE x_total counter`) and has no `# EOF`; promtool insists.
fn openmetrics_to_prometheus(text: &str) -> String {
    let counters: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
            let rest = line.strip_prefix(tag)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{tag}{name}_total {tail}"))
        });
        // A sample without labels is `name value`, not `name{} value`.
        let line = rewritten.unwrap_or_else(|| line.replacen("{} ", " ", 1));
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds the metrics listener. `listen` is `metrics.listen`, already non-empty.
pub async fn bind(listen: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(listen).await
}

/// Serves `GET /metrics` (and `/` with a pointer to it) until aborted.
pub async fn serve<S: MetricsSource>(listener: TcpListener, source: Arc<S>) {
    let limits = crate::httpd::METRICS;
    let gate = crate::httpd::Gate::new("metrics", &limits);
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Beyond the limit the connection is closed at once (crate::httpd).
        let Some(permit) = gate.try_admit() else {
            drop(stream);
            continue;
        };
        let source = source.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let source = source.clone();
                async move {
                    let resp = match (req.method(), req.uri().path()) {
                        (&Method::GET, "/metrics") => match render(source.snapshot().await) {
                            Ok(text) => reply(StatusCode::OK, CONTENT_TYPE, text),
                            Err(_) => reply(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "text/plain",
                                "encoding failed\n".into(),
                            ),
                        },
                        (&Method::GET, "/") => reply(
                            StatusCode::OK,
                            "text/plain",
                            "tortie metrics: GET /metrics\n".into(),
                        ),
                        _ => reply(
                            StatusCode::NOT_FOUND,
                            "text/plain",
                            "not found; try /metrics\n".into(),
                        ),
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            crate::httpd::serve_connection(TokioIo::new(stream), svc, &limits, permit, "metrics")
                .await;
        });
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

#[cfg(test)]
fn tests_sample() -> MetricsSnapshot {
    MetricsSnapshot {
        peers: vec![PeerMetrics {
            address: "192.0.2.1".into(),
            asn: 65001,
            state: "Established".into(),
            received_routes: 3,
            advertised_routes: 1,
            received_routes_ipv6: 1,
            advertised_routes_ipv6: 0,
            messages_received: vec![("open".into(), 1), ("update".into(), 4)],
            messages_sent: vec![("open".into(), 1), ("keepalive".into(), 7)],
            established_transitions: 2,
            bfd_up: Some(true),
            bfd_transitions: 3,
            name: "tor1".into(),
            session_type: "eBGP".into(),
            state_since: 1_796_520_660,
            up_down_since: 1_796_520_600,
            stale_routes: 2,
            filtered_routes: 5,
            stale_routes_ipv6: 2,
            filtered_routes_ipv6: 1,
        }],
        routes_learned: 3,
        routes_local: 2,
        routes_blackhole: 1,
        routes_ipv6: [1, 0, 0],
        netlink_errors: vec![("ENETUNREACH".to_string(), 3)],
        routes_not_installed: vec![("ENETUNREACH".to_string(), 1)],
        vxlan_vteps: 2,
        vxlan_entries_restored: 1,
        routes_adopted: 4,
        routes_swept: 6,
        routes_restored: 2,
        express_changes: 7,
        express_stale: 5,
        containers: 2,
        ipam: vec![
            ("allocated".into(), 2),
            ("free".into(), 61),
            ("reserved".into(), 1),
        ],
        process: Some(crate::procstat::ProcessStats {
            cpu_seconds: 1.25,
            resident_memory_bytes: 13_000_000,
            virtual_memory_bytes: 900_000_000,
            start_time_seconds: 1_796_520_600.5,
            open_fds: 23,
            max_fds: 1024,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MetricsSnapshot {
        tests_sample()
    }

    #[test]
    fn renders_every_design_metric_with_help() {
        let text = render(sample()).unwrap();
        for name in [
            "tortie_bgp_session_up",
            "tortie_bgp_session_state",
            "tortie_bgp_received_routes",
            "tortie_bgp_advertised_routes",
            "tortie_bgp_messages_received_total",
            "tortie_bgp_messages_sent_total",
            "tortie_bgp_established_transitions_total",
            "tortie_bfd_session_up",
            "tortie_bfd_transitions_total",
            "tortie_dataplane_routes",
            "tortie_dataplane_netlink_errors_total",
            "tortie_dataplane_routes_not_installed",
            "tortie_dataplane_vxlan_vteps",
            "tortie_dataplane_vxlan_entries_restored_total",
            "tortie_dataplane_routes_adopted",
            "tortie_dataplane_routes_swept_total",
            "tortie_dataplane_routes_restored_total",
            "tortie_dataplane_express_changes_total",
            "tortie_dataplane_express_stale_total",
            "tortie_containers",
            "tortie_ipam_addresses",
            "tortie_build_info",
            "tortie_bgp_stale_routes",
            "tortie_bgp_filtered_routes",
            "tortie_bgp_session_state_change_timestamp_seconds",
            "tortie_bgp_session_up_down_timestamp_seconds",
            "tortie_bgp_peer_info",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
            "process_virtual_memory_bytes",
            "process_resident_memory_bytes",
            "process_start_time_seconds",
        ] {
            assert!(
                text.contains(&format!("\n{name}")),
                "{name} missing in\n{text}"
            );
        }
        assert!(
            text.contains("tortie_bgp_session_up{peer=\"192.0.2.1\",peer_asn=\"65001\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "tortie_bgp_session_state{peer=\"192.0.2.1\",peer_asn=\"65001\",state=\"Idle\"} 0"
            ),
            "{text}"
        );
        assert!(
            text.contains("tortie_bgp_messages_received_total{peer=\"192.0.2.1\",peer_asn=\"65001\",type=\"update\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("tortie_dataplane_routes{kind=\"blackhole\",family=\"ipv4\"} 1"),
            "{text}"
        );
        for line in [
            "tortie_dataplane_routes_adopted 4",
            "tortie_dataplane_routes_swept_total 6",
            "tortie_dataplane_routes_restored_total 2",
            "tortie_dataplane_express_changes_total 7",
            "tortie_dataplane_express_stale_total 5",
        ] {
            assert!(text.contains(&format!("\n{line}\n")), "{line} in\n{text}");
        }
        // 3 received, 1 of them IPv6.
        assert!(
            text.contains("tortie_bgp_received_routes{peer=\"192.0.2.1\",peer_asn=\"65001\",family=\"ipv4\"} 2")
                && text.contains("tortie_bgp_received_routes{peer=\"192.0.2.1\",peer_asn=\"65001\",family=\"ipv6\"} 1"),
            "{text}"
        );
        // 2 stale, both IPv6; 5 filtered, 1 of them IPv6.
        for (name, v4, v6) in [
            ("tortie_bgp_stale_routes", 0, 2),
            ("tortie_bgp_filtered_routes", 4, 1),
        ] {
            for (family, n) in [("ipv4", v4), ("ipv6", v6)] {
                let row = format!(
                    "{name}{{peer=\"192.0.2.1\",peer_asn=\"65001\",family=\"{family}\"}} {n}\n"
                );
                assert!(text.contains(&row), "{row} missing in\n{text}");
            }
        }
        // 3 learned, 1 of them IPv6.
        assert!(
            text.contains("tortie_dataplane_routes{kind=\"learned\",family=\"ipv4\"} 2")
                && text.contains("tortie_dataplane_routes{kind=\"learned\",family=\"ipv6\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tortie_ipam_addresses{state=\"free\"} 61"),
            "{text}"
        );
        assert!(text.contains("# HELP tortie_containers "), "{text}");
        assert!(
            text.contains("# TYPE tortie_bgp_messages_received_total counter\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        assert!(text.contains("\ntortie_containers 2\n"), "{text}");
        assert!(
            text.contains("\nprocess_resident_memory_bytes 13000000\n"),
            "{text}"
        );
        assert!(
            text.contains("\nprocess_cpu_seconds_total 1.25\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE process_cpu_seconds_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("tortie_bgp_peer_info{peer=\"192.0.2.1\",peer_asn=\"65001\",name=\"tor1\",type=\"eBGP\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tortie_bgp_session_up_down_timestamp_seconds{peer=\"192.0.2.1\",peer_asn=\"65001\"} 1796520600"),
            "{text}"
        );
    }

    #[test]
    fn a_down_peer_is_zero() {
        let mut s = sample();
        s.peers[0].state = "Active".into();
        let text = render(s).unwrap();
        assert!(
            text.contains("tortie_bgp_session_up{peer=\"192.0.2.1\",peer_asn=\"65001\"} 0"),
            "{text}"
        );
        assert!(
            text.contains(
                "tortie_bgp_session_state{peer=\"192.0.2.1\",peer_asn=\"65001\",state=\"Active\"} 1"
            ),
            "{text}"
        );
    }
}

#[cfg(test)]
mod promtool {
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// `promtool check metrics` (Debian package `prometheus`) accepts a scrape.
    #[test]
    fn promtool_accepts_the_exposition() {
        let text = super::render(super::tests_sample()).unwrap();
        let child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("skipped: promtool not available: {e}");
                return;
            }
            Err(e) => panic!("promtool not available in CI: {e}"),
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
