//! Speaker events in → route-table commands out: each case replays batches
//! of [`SpeakerEvent`]s through [`Agent::steps`] into [`Agent::apply_steps`]
//! and compares the commands the route table received, in order. Every
//! route change is one command: coalescing is the speaker outbox's, before
//! the events reach the agent.
//!
//! [`Agent::apply_steps`]: super::super::agent::Agent::apply_steps

use std::sync::Arc;

use tortie_bgp::{Prefix, SessionState, SpeakerEvent};
use tortie_routes::KernelRoute;

use super::super::registry::{Container, host_net};
use super::{Cmd, Node, ip, local, net, via};

fn prefix(s: &str) -> Prefix {
    s.parse().expect("test prefix")
}

fn attributes() -> Option<Arc<tortie_bgp::PathAttributes>> {
    let cfg = super::config("", std::path::Path::new("/nonexistent"));
    Some(Arc::new(super::super::convert::origin_attributes(
        &cfg, false,
    )))
}

/// A learned best path over `hops` (ECMP when several).
fn best(p: &str, hops: &[&str]) -> SpeakerEvent {
    SpeakerEvent::BestPathChanged {
        prefix: prefix(p),
        next_hops: hops.iter().map(|h| ip(h)).collect::<Vec<_>>().into(),
        attributes: attributes(),
        express: false,
    }
}

/// The prefix is gone from the Loc-RIB.
fn gone(p: &str) -> SpeakerEvent {
    SpeakerEvent::BestPathChanged {
        prefix: prefix(p),
        next_hops: Vec::new().into(),
        attributes: None,
        express: false,
    }
}

/// Our own origination is best (nothing to install).
fn own(p: &str) -> SpeakerEvent {
    SpeakerEvent::BestPathChanged {
        prefix: prefix(p),
        next_hops: Vec::new().into(),
        attributes: attributes(),
        express: false,
    }
}

fn hop(gateway: &str, dev: Option<&str>) -> tortie_routes::NextHop {
    tortie_routes::NextHop {
        gateway: ip(gateway),
        dev: dev.map(str::to_string),
        onlink: dev.is_some(),
    }
}

/// A learned route through `tunl0` (IP-in-IP, on-link), written out.
fn tunnel(gateways: &[&str]) -> KernelRoute {
    KernelRoute::Unicast {
        next_hops: gateways.iter().map(|g| hop(g, Some("tunl0"))).collect(),
    }
}

fn peer_up() -> SpeakerEvent {
    SpeakerEvent::PeerStateChanged {
        peer: ip("192.0.2.2"),
        state: SessionState::Established,
        reason: "test".to_string(),
    }
}

struct Case {
    name: &'static str,
    /// Container addresses the registry holds before the replay.
    holds: &'static [&'static str],
    /// `tortie run --no-kernel`.
    no_kernel: bool,
    /// TOML appended to the node's `[bgp]` section (other sections may follow).
    config: &'static str,
    /// Batches, applied one after the other.
    batches: Vec<Vec<SpeakerEvent>>,
    want: Vec<Cmd>,
}

fn case(name: &'static str, batches: Vec<Vec<SpeakerEvent>>, want: Vec<Cmd>) -> Case {
    Case {
        name,
        holds: &[],
        no_kernel: false,
        config: "",
        batches,
        want,
    }
}

/// A best path over a next-hop set the speaker interned (shared by every
/// prefix that has it, as the outbox hands them out).
fn best_in(p: &str, set: &tortie_bgp::NextHops) -> SpeakerEvent {
    SpeakerEvent::BestPathChanged {
        prefix: prefix(p),
        next_hops: set.clone(),
        attributes: attributes(),
        express: false,
    }
}

fn cases() -> Vec<Case> {
    use Cmd::*;
    // One interned set with a next hop of each family.
    let both: tortie_bgp::NextHops = vec![ip("192.0.2.12"), ip("2001:db8:1::12")].into();
    vec![
        case(
            "one interned next-hop set, prefixes of both families, two batches",
            vec![
                vec![
                    best_in("10.244.2.0/26", &both),
                    best_in("fd00:10:244:2::/120", &both),
                ],
                vec![
                    best_in("fd00:10:244:3::/120", &both),
                    best_in("10.244.3.0/26", &both),
                ],
            ],
            vec![
                Set(net("10.244.2.0/26"), via(&["192.0.2.12"])),
                Set(net("fd00:10:244:2::/120"), via(&["2001:db8:1::12"])),
                Set(net("fd00:10:244:3::/120"), via(&["2001:db8:1::12"])),
                Set(net("10.244.3.0/26"), via(&["192.0.2.12"])),
            ],
        ),
        case(
            "one next hop, each family",
            vec![vec![
                best("10.244.2.0/26", &["192.0.2.12"]),
                best("fd00:10:244:2::/120", &["2001:db8:1::12"]),
            ]],
            vec![
                Set(net("10.244.2.0/26"), via(&["192.0.2.12"])),
                Set(net("fd00:10:244:2::/120"), via(&["2001:db8:1::12"])),
            ],
        ),
        case(
            "ECMP: one multipath route, next hops sorted",
            vec![vec![
                best("10.244.2.0/26", &["192.0.2.13", "192.0.2.12"]),
                best("fd00:10:244:2::/120", &["2001:db8:1::13", "2001:db8:1::12"]),
            ]],
            vec![
                Set(net("10.244.2.0/26"), via(&["192.0.2.12", "192.0.2.13"])),
                Set(
                    net("fd00:10:244:2::/120"),
                    via(&["2001:db8:1::12", "2001:db8:1::13"]),
                ),
            ],
        ),
        case(
            "withdraw removes ours, each family",
            vec![
                vec![
                    best("10.244.2.0/26", &["192.0.2.12"]),
                    best("fd00:10:244:2::/120", &["2001:db8:1::12"]),
                ],
                vec![gone("10.244.2.0/26"), gone("fd00:10:244:2::/120")],
            ],
            vec![
                Set(net("10.244.2.0/26"), via(&["192.0.2.12"])),
                Set(net("fd00:10:244:2::/120"), via(&["2001:db8:1::12"])),
                Remove(net("10.244.2.0/26")),
                Remove(net("fd00:10:244:2::/120")),
            ],
        ),
        case(
            "in one batch every change is a command, in order: the last one stays desired",
            vec![vec![
                best("10.244.2.0/26", &["192.0.2.12"]),
                gone("10.244.2.0/26"),
                best("10.244.2.0/26", &["192.0.2.13"]),
                best("10.244.3.0/26", &["192.0.2.12"]),
                gone("10.244.3.0/26"),
            ]],
            vec![
                Set(net("10.244.2.0/26"), via(&["192.0.2.12"])),
                Remove(net("10.244.2.0/26")),
                Set(net("10.244.2.0/26"), via(&["192.0.2.13"])),
                Set(net("10.244.3.0/26"), via(&["192.0.2.12"])),
                Remove(net("10.244.3.0/26")),
            ],
        ),
        case(
            "unusable next hops: other family or IPv6 link-local only",
            vec![vec![
                best("10.244.2.0/26", &["2001:db8:1::12"]),
                best("fd00:10:244:2::/120", &["fe80::12"]),
                best("fd00:10:244:3::/120", &["fe80::12", "2001:db8:1::13"]),
            ]],
            vec![
                Remove(net("10.244.2.0/26")),
                Remove(net("fd00:10:244:2::/120")),
                Set(net("fd00:10:244:3::/120"), via(&["2001:db8:1::13"])),
            ],
        ),
        case(
            "the own blocks are never overridden, whoever announces them",
            vec![vec![
                best("10.244.1.0/26", &["192.0.2.12"]),
                best("fd00:10:244:1::/120", &["2001:db8:1::12"]),
                own("10.244.1.0/26"),
                gone("fd00:10:244:1::/120"),
            ]],
            vec![],
        ),
        Case {
            holds: &["10.244.1.5", "fd00:10:244:1::5"],
            ..case(
                "container addresses are never overridden; others in the block are",
                vec![vec![
                    best("10.244.1.5/32", &["192.0.2.12"]),
                    best("fd00:10:244:1::5/128", &["2001:db8:1::12"]),
                    own("10.244.1.5/32"),
                    best("10.244.1.6/32", &["192.0.2.12"]),
                    best("fd00:10:244:1::6/128", &["2001:db8:1::12"]),
                ]],
                vec![
                    Set(net("10.244.1.6/32"), via(&["192.0.2.12"])),
                    Set(net("fd00:10:244:1::6/128"), via(&["2001:db8:1::12"])),
                ],
            )
        },
        case(
            "Converged sweeps after every route received before it, once",
            vec![
                vec![
                    best("10.244.2.0/26", &["192.0.2.12"]),
                    peer_up(),
                    best("fd00:10:244:2::/120", &["2001:db8:1::12"]),
                    SpeakerEvent::Converged,
                    best("10.244.3.0/26", &["192.0.2.13"]),
                ],
                vec![SpeakerEvent::Converged, gone("10.244.3.0/26")],
            ],
            vec![
                Set(net("10.244.2.0/26"), via(&["192.0.2.12"])),
                Set(net("fd00:10:244:2::/120"), via(&["2001:db8:1::12"])),
                Converged,
                Set(net("10.244.3.0/26"), via(&["192.0.2.13"])),
                Remove(net("10.244.3.0/26")),
            ],
        ),
        case(
            "a peer state change is a barrier: changes before it go first",
            vec![vec![
                best("10.244.2.0/26", &["192.0.2.12"]),
                peer_up(),
                best("10.244.2.0/26", &["192.0.2.13"]),
            ]],
            vec![
                Set(net("10.244.2.0/26"), via(&["192.0.2.12"])),
                Set(net("10.244.2.0/26"), via(&["192.0.2.13"])),
            ],
        ),
        Case {
            config: "[dataplane]\nencapsulation = \"ipip-cross-subnet\"",
            ..case(
                "ipip-cross-subnet: plain on the node's subnet, tunl0 beyond it",
                vec![vec![
                    best("10.244.2.0/26", &["192.0.2.12"]),
                    best("10.244.3.0/26", &["198.51.100.13"]),
                    best("10.244.4.0/26", &["192.0.2.12", "198.51.100.13"]),
                ]],
                vec![
                    Set(net("10.244.2.0/26"), via(&["192.0.2.12"])),
                    Set(net("10.244.3.0/26"), tunnel(&["198.51.100.13"])),
                    Set(
                        net("10.244.4.0/26"),
                        KernelRoute::Unicast {
                            next_hops: vec![
                                hop("192.0.2.12", None),
                                hop("198.51.100.13", Some("tunl0")),
                            ],
                        },
                    ),
                ],
            )
        },
        Case {
            no_kernel: true,
            ..case(
                "--no-kernel: learned routes stay out, the sweep still runs",
                vec![vec![
                    best("10.244.2.0/26", &["192.0.2.12"]),
                    best("fd00:10:244:2::/120", &["2001:db8:1::12"]),
                    SpeakerEvent::Converged,
                    gone("10.244.2.0/26"),
                ]],
                vec![Converged],
            )
        },
    ]
}

#[tokio::test]
async fn speaker_events_become_route_table_commands() {
    let mut failures = Vec::new();
    for c in cases() {
        let mut node = Node::start(c.config).await;
        node.agent.install_learned = !c.no_kernel;
        for (i, a) in c.holds.iter().enumerate() {
            node.agent.registry_mut().insert(Container {
                id: format!("c{i}/eth0"),
                addresses: vec![host_net(ip(a))],
                host_ifname: format!("tt{i}"),
                host_mac: None,
                netns: String::new(),
                ifname: "eth0".to_string(),
                container_mac: None,
                mtu: None,
            });
        }
        for batch in c.batches {
            node.replay(batch).await;
        }
        let got = node.take_log();
        if got != c.want {
            failures.push(format!(
                "{}:\n  want {:?}\n  got  {:?}",
                c.name, c.want, got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The whole loop with the real speaker: the node originates its
/// containers' host routes (`advertise = "hosts"`), the speaker reports them
/// back as best paths without next hops, and the agent's replay of those
/// events must leave the `Local` host routes alone (a `Remove` would cut
/// the containers off).
#[tokio::test]
async fn our_own_originations_reported_back_leave_the_host_routes() {
    let mut node = Node::start("advertise = \"hosts\"").await;
    let a = node
        .agent
        .attach_container(super::containers::request("c1/eth0"))
        .await
        .expect("attach");
    let host = a.host_ifname.clone();
    node.take_log();
    let seen = node.replay_speaker().await;
    assert!(
        seen >= 2,
        "the speaker reported {seen} events, want the /32 and /128"
    );
    // No peers: the speaker also reports Converged at once; the sweep is fine.
    let routes: Vec<Cmd> = node
        .take_log()
        .into_iter()
        .filter(|c| *c != Cmd::Converged)
        .collect();
    assert_eq!(routes, vec![]);
    let ips: Vec<_> = a.addresses.iter().map(|x| net(&x.address)).collect();
    for n in &ips {
        assert_eq!(node.kernel().desired.get(n), Some(&local(&host)));
    }
}

/// A change the speaker marked `express` goes to the table's express path,
/// and the agent's `/metrics` shows it counted (the table's figure, read
/// through the agent's snapshot).
#[tokio::test]
async fn an_express_change_is_counted_in_the_metrics() {
    use crate::metrics::{MetricsSource, render};
    let node = Node::start("").await;
    let line = "\ntortie_dataplane_express_changes_total 0\n";
    assert!(render(node.agent.snapshot().await).unwrap().contains(line));
    let SpeakerEvent::BestPathChanged {
        prefix,
        next_hops,
        attributes,
        ..
    } = best("10.244.2.0/26", &["192.0.2.12"])
    else {
        unreachable!("best() makes a best-path change")
    };
    let ahead = SpeakerEvent::BestPathChanged {
        prefix,
        next_hops,
        attributes,
        express: true,
    };
    node.replay(vec![best("10.244.3.0/26", &["192.0.2.12"]), ahead])
        .await;
    let text = render(node.agent.snapshot().await).unwrap();
    for line in [
        "\ntortie_dataplane_express_changes_total 1\n",
        "\ntortie_dataplane_express_stale_total 0\n",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

/// The loop's batch step ([`Agent::take_batch`]) reports every event it
/// converted as ordered: until then the speaker keeps a change of a prefix
/// in the batch off its express channel (it could overtake the older
/// event), after it the change takes that channel. A missed or short count
/// would keep the express path off, unnoticed (it fails safe).
///
/// [`Agent::take_batch`]: super::super::agent::Agent::take_batch
#[tokio::test]
async fn a_batch_taken_is_reported_ordered_and_its_prefixes_go_express_again() {
    use std::net::Ipv4Addr;
    use tortie_bgp::Ipv4Prefix;
    let mut node = Node::start("").await;
    let speaker = node.agent.speaker().await.expect("speaker");
    let mut express = speaker.express_events().await.expect("express channel");
    // A channel's worth of our own /32s, then a backlog the speaker's
    // outbox keeps while the channel is full.
    for i in 0..tortie_bgp::EVENT_CHANNEL as u32 + 3000 {
        let p = Ipv4Prefix::new(Ipv4Addr::from(0x0a32_0000 + i), 32).expect("prefix");
        speaker
            .originate(Prefix::V4(p), None)
            .await
            .expect("originate");
    }
    let mut taken = Vec::new();
    node.events
        .recv_many(&mut taken, super::batch::MAX_BATCH)
        .await;
    let Some(SpeakerEvent::BestPathChanged { prefix: last, .. }) = taken.last().cloned() else {
        panic!("the last event taken is a route change: {:?}", taken.last());
    };
    // The room is refilled from the backlog: its pass has begun.
    for _ in 0..500 {
        if !node.events.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!node.events.is_empty(), "the backlog's pass began");
    speaker.withdraw(last).await.expect("withdraw");
    assert!(
        express.try_recv().is_none(),
        "taken, not yet ordered: {last} stays off the express channel"
    );
    let mut learned = super::batch::Learned::default();
    let n = taken.len();
    node.agent
        .take_batch(&mut learned, &mut express, &mut taken);
    assert!(taken.is_empty(), "the batch took all {n}");
    speaker.originate(last, None).await.expect("originate");
    match express.try_recv() {
        Some(SpeakerEvent::BestPathChanged {
            prefix,
            express: true,
            ..
        }) => assert_eq!(prefix, last),
        other => panic!("ordered: {last} takes the express channel, got {other:?}"),
    }
}
