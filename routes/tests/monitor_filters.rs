//! Root integration test of the netlink monitor's kernel socket filters
//! (`nl::Socket::ignore_sender`, `nl::Socket::ignore_requests`), in a
//! namespace of its own (`trt-tbl-filter-…`, removed on drop) with a veth pair
//! `rt0`/`rt1`: which writers' route events and which kernel link events each
//! filtered listener still receives.

mod common;

use std::time::{Duration, Instant};

use common::{Netns, require_root};
use tortie_routes::{IpNetwork, KernelRoute};

fn setup(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.ip(&["link", "add", "rt0", "type", "veth", "peer", "name", "rt1"]);
    ns.ip(&["link", "set", "rt0", "up"]);
    ns.ip(&["link", "set", "rt1", "up"]);
    ns
}

/// The monitor's kernel filters: `ignore_sender` drops the events of one
/// writer's requests and keeps another's; `ignore_requests` (the kernel
/// benchmark's stand-in for the monitor) drops every request's event and
/// keeps the kernel's own (link events of a veth pair going down, sent
/// with port id 0).
#[test]
fn monitor_filters_drop_the_events_asked() {
    use tortie_routes::nl::consts::{
        NLM_F_ACK, RTM_NEWLINK, RTM_NEWROUTE, RTMGRP_IPV4_ROUTE, RTMGRP_LINK,
    };
    use tortie_routes::nl::{RouteEncoder, Socket, messages};
    if !require_root() {
        return;
    }
    let ns = setup("tbl-filter");
    let name = ns.name.clone();
    ns.run(move || async move {
        let open = |groups| Socket::open(groups).expect("netlink socket");
        let (w1, w2) = (open(0), open(0));
        let not_w1 = open(RTMGRP_IPV4_ROUTE | RTMGRP_LINK);
        not_w1.ignore_sender(w1.portid()).expect("filter");
        let kernel_only = open(RTMGRP_IPV4_ROUTE | RTMGRP_LINK);
        kernel_only.ignore_requests().expect("filter");
        let everything = open(RTMGRP_IPV4_ROUTE | RTMGRP_LINK);
        let enc = RouteEncoder {
            protocol: 149,
            table: 254,
            extra_flags: NLM_F_ACK,
        };
        for (w, p) in [(&w1, "10.66.0.1/32"), (&w2, "10.66.0.2/32")] {
            let mut req = Vec::new();
            let p: IpNetwork = p.parse().unwrap();
            enc.encode(&mut req, 1, p, Some(&KernelRoute::Blackhole), &|_| None)
                .unwrap();
            w.send(&req).expect("send");
            let mut ack = vec![0u8; 4096];
            let deadline = Instant::now() + Duration::from_secs(5);
            assert!(w.recv_until(&mut ack, deadline).unwrap().is_some(), "ack");
        }
        // The kernel's own events: rt1 down, rt0 losing carrier.
        Netns::borrowed(&name).ip(&["link", "set", "rt1", "down"]);
        // (routes, links) a listener has, reading for up to `wait`.
        let count = |s: &Socket, wait: Duration| {
            let (mut routes, mut links) = (0, 0);
            let mut buf = vec![0u8; 1 << 16];
            let until = Instant::now() + wait;
            while let Ok(Some(n)) = s.recv_until(&mut buf, until) {
                for m in messages(&buf[..n]) {
                    routes += usize::from(m.header.kind == RTM_NEWROUTE);
                    links += usize::from(m.header.kind == RTM_NEWLINK);
                }
            }
            (routes, links)
        };
        // Long enough for the carrier event; the others are queued by then.
        let (r, all_links) = count(&everything, Duration::from_secs(2));
        assert_eq!(r, 2, "both writers' routes");
        let short = Duration::from_millis(100);
        assert_eq!(count(&not_w1, short).0, 1, "only the second writer's route");
        let (r, l) = count(&kernel_only, short);
        assert_eq!(r, 0, "no request's route");
        assert!(
            l >= 1 && l <= all_links,
            "the kernel's link events kept: {l} of {all_links}"
        );
    });
}
