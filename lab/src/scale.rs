//! Large topologies for scale runs (issue 16), generated as containerlab
//! files that the netns runner ([`crate::runner`]) plays like the
//! hand-written ones in `lab/topologies/`.
//!
//! Shape: N tortie nodes in one AS (64512) on one IPv4 subnet
//! (10.100.0.0/16) spread over a few L2 segments — a bridge per switch node
//! `swK` (at most [`PORTS_PER_SWITCH`] nodes each), the switches joined by a
//! `core` bridge into one broadcast domain — each node with K containers
//! (`TORTIE_CONTAINERS`, attached through its agent), and either a full iBGP
//! mesh or R route reflectors: tortie nodes with `route_reflector_client`
//! peers, BIRD 2 (`rr client`) or FRR (`route-reflector-client`). Reflectors
//! peer with each other as plain iBGP (RFC 4456 §6: one cluster each).
//!
//! With [`Fabric::Routed`] each switch is instead a rack router: rack k
//! (1-based, the k-th [`PORTS_PER_RACK`] speakers, reflectors first) is the subnet
//! 10.100.k.0/24 behind `swK` (10.100.k.1, uplink 10.99.k.2/30 to the
//! `core` router, 10.99.k.1/30, which routes every rack subnet and no pod
//! address). Speakers are 10.100.k.(10 + index in rack)/24; sessions to other
//! racks are multihop iBGP (BIRD reflectors: `multihop`), and agents use
//! `encapsulation = "vxlan-cross-subnet"` (no ipip in this kernel), so pod
//! traffic to another rack is VXLAN and stays native inside a rack. BFD is
//! single-hop in tortie, so it is not generated on a routed fabric.
//!
//! Addresses (L2): reflector r (1-based) 10.100.0.r; node i (0-based)
//! 10.100.(1 + i / 200).(10 + i % 200); node blocks /26s of 10.244.0.0/16
//! (node i: the i-th /26, so up to 1024 nodes); tortie reflectors get
//! blocks from 10.245.0.0/16 and no containers. Agents advertise `hosts`
//! (every container /32 goes through BGP), hold time 9 s, connect retry
//! 1 s, graceful restart off (a failed node's routes are withdrawn when its
//! sessions drop, not kept for the restart time). With [`ScaleSpec::bfd`]
//! every session also runs BFD (300 ms × 3; BIRD reflectors get `protocol
//! bfd` and `bfd on`), so a silent node is detected in ≤ 0.9 s instead of
//! the hold time.
//!
//! Data flow: [`ScaleSpec`] → [`generate`] writes `<dir>/<name>.clab.yml`
//! and `<dir>/<name>/<node>.{toml,conf}`; `Topology::load` reads it back.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::error::{LabError, Result};

/// The AS of every node.
pub const ASN: u32 = 64512;
/// Nodes per switch (bridge ports; Linux allows 1024).
pub const PORTS_PER_SWITCH: usize = 100;
/// Speakers per rack router on a routed fabric (small, so that even a smoke
/// run spans racks).
pub const PORTS_PER_RACK: usize = 16;

/// Who reflects routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reflector {
    Tortie,
    Bird,
    Frr,
}

impl Reflector {
    pub fn name(self) -> &'static str {
        match self {
            Reflector::Tortie => "tortie",
            Reflector::Bird => "bird",
            Reflector::Frr => "frr",
        }
    }
}

/// Full mesh or route reflectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Mesh,
    Rr { count: usize, kind: Reflector },
}

/// How the switches join the speakers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fabric {
    /// One broadcast domain: switch bridges joined by a core bridge.
    #[default]
    L2,
    /// A subnet per switch (rack router), racks joined by a core router.
    Routed,
}

impl Fabric {
    pub fn name(self) -> &'static str {
        match self {
            Fabric::L2 => "l2",
            Fabric::Routed => "routed",
        }
    }
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleSpec {
    /// Lab name (namespaces are `clab-<name>-…`).
    pub name: String,
    /// Client nodes (tortie), not counting reflectors.
    pub nodes: usize,
    /// Containers per node.
    pub containers: usize,
    pub mode: Mode,
    /// Proposed hold time of every session, seconds.
    pub hold_time: u16,
    /// BFD on every session (tortie `bfd = true`, BIRD `bfd on`).
    pub bfd: bool,
    pub fabric: Fabric,
}

impl ScaleSpec {
    pub fn check(&self) -> Result<()> {
        if self.nodes < 2 || self.nodes > 1024 {
            return Err(LabError::Invalid(format!(
                "nodes must be 2..=1024 (one /26 of 10.244.0.0/16 each), not {}",
                self.nodes
            )));
        }
        if let Mode::Rr { count, .. } = self.mode
            && !(1..=9).contains(&count)
        {
            return Err(LabError::Invalid(format!(
                "reflectors must be 1..=9, not {count}"
            )));
        }
        if self.bfd
            && let Mode::Rr {
                kind: Reflector::Frr,
                ..
            } = self.mode
        {
            return Err(LabError::Invalid(
                "BFD with FRR reflectors is not generated (the runner starts zebra and bgpd, not bfdd)"
                    .into(),
            ));
        }
        if self.bfd && self.fabric == Fabric::Routed {
            return Err(LabError::Invalid(
                "BFD is single-hop in tortie: not generated on a routed fabric (sessions cross racks)"
                    .into(),
            ));
        }
        if self.containers > 60 {
            return Err(LabError::Invalid(format!(
                "at most 60 containers per node (a /26 block), not {}",
                self.containers
            )));
        }
        Ok(())
    }

    /// Reflector count (0 in a mesh).
    pub fn reflectors(&self) -> usize {
        match self.mode {
            Mode::Mesh => 0,
            Mode::Rr { count, .. } => count,
        }
    }

    /// Node i's address (the speaker index is reflectors first).
    pub fn node_addr(&self, i: usize) -> Ipv4Addr {
        match self.fabric {
            Fabric::L2 => node_ip(i),
            Fabric::Routed => routed_ip(self.reflectors() + i),
        }
    }

    /// Reflector r's (1-based) address.
    pub fn rr_addr(&self, r: usize) -> Ipv4Addr {
        match self.fabric {
            Fabric::L2 => rr_ip(r),
            Fabric::Routed => routed_ip(r - 1),
        }
    }

    /// Speakers per switch: a broadcast domain's bridges, or a rack.
    pub fn ports_per_switch(&self) -> usize {
        match self.fabric {
            Fabric::L2 => PORTS_PER_SWITCH,
            Fabric::Routed => PORTS_PER_RACK,
        }
    }

    /// Prefix length of every speaker's subnet.
    fn prefix_len(&self) -> u8 {
        match self.fabric {
            Fabric::L2 => 16,
            Fabric::Routed => 24,
        }
    }

    /// Names of the tortie nodes that carry containers.
    pub fn node_names(&self) -> Vec<String> {
        (0..self.nodes).map(node_name).collect()
    }

    /// Names of every tortie node (clients, and tortie reflectors).
    pub fn tortie_nodes(&self) -> Vec<String> {
        let mut v = self.node_names();
        if let Mode::Rr {
            count,
            kind: Reflector::Tortie,
        } = self.mode
        {
            v.extend((1..=count).map(rr_name));
        }
        v
    }
}

pub fn node_name(i: usize) -> String {
    format!("n{i}")
}

pub fn rr_name(r: usize) -> String {
    format!("rr{r}")
}

/// Node i's address.
pub fn node_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 100, (1 + i / 200) as u8, (10 + i % 200) as u8)
}

/// Reflector r's (1-based) address.
pub fn rr_ip(r: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 100, 0, r as u8)
}

/// Rack (1-based switch) of the speaker at index `idx` (reflectors first) on
/// a routed fabric.
fn rack_of(idx: usize) -> usize {
    idx / PORTS_PER_RACK + 1
}

/// Routed fabric: the speaker at index `idx` is `10.100.<rack>.<10 + place>`.
fn routed_ip(idx: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        10,
        100,
        rack_of(idx) as u8,
        (10 + idx % PORTS_PER_RACK) as u8,
    )
}

/// Node i's block (a /26 of 10.244.0.0/16).
pub fn node_block(i: usize) -> String {
    let base = u32::from(Ipv4Addr::new(10, 244, 0, 0)) + (i as u32) * 64;
    format!("{}/26", Ipv4Addr::from(base))
}

fn rr_block(r: usize) -> String {
    let base = u32::from(Ipv4Addr::new(10, 245, 0, 0)) + (r as u32) * 64;
    format!("{}/26", Ipv4Addr::from(base))
}

struct Peer {
    ip: Ipv4Addr,
    name: String,
    rr_client: bool,
}

fn tortie_toml(spec: &ScaleSpec, name: &str, ip: Ipv4Addr, block: &str, peers: &[Peer]) -> String {
    let mut s = format!(
        "# Generated by tortie-bench scale ({} nodes, {}).\n[node]\nname = \"{name}\"\naddress = \"{ip}/{}\"\nasn = {ASN}\npod_cidr = \"{block}\"\n\n\
         [bgp]\nhold_time = {}\nconnect_retry = 1\ngraceful_restart = false\nadvertise = \"hosts\"\n\n",
        spec.nodes,
        mode_label(spec),
        spec.prefix_len(),
        spec.hold_time
    );
    for p in peers {
        let _ = write!(
            s,
            "[[peer]]\naddress = \"{}\"\nasn = {ASN}\nname = \"{}\"\n",
            p.ip, p.name
        );
        if p.rr_client {
            s.push_str("route_reflector_client = true\n");
        }
        if spec.bfd {
            s.push_str("bfd = true\n");
        }
        s.push('\n');
    }
    if spec.fabric == Fabric::Routed {
        // Next hops in other racks are not on-link: VXLAN to them.
        s.push_str("[dataplane]\nencapsulation = \"vxlan-cross-subnet\"\n\n");
    }
    s.push_str("[metrics]\nlisten = \"\"\n");
    s
}

fn mode_label(spec: &ScaleSpec) -> String {
    let mut extra = String::new();
    if spec.bfd {
        extra.push_str(", BFD");
    }
    if spec.fabric == Fabric::Routed {
        extra.push_str(", routed fabric");
    }
    match spec.mode {
        Mode::Mesh => format!("full mesh{extra}"),
        Mode::Rr { count, kind } => format!("{count} {} route reflectors{extra}", kind.name()),
    }
}

fn bird_rr(spec: &ScaleSpec, r: usize) -> String {
    let mut s = format!(
        "# Generated by tortie-bench scale: BIRD route reflector {r} of {}.\nrouter id {};\nlog stderr all;\nprotocol device {{ scan time 10; }}\n\
         {}template bgp rrbase {{\n  local as {ASN};\n  {};\n  hold time {};\n  keepalive time {};\n  connect delay time 1;\n  connect retry time 2;\n  error wait time 1, 5;\n{}  ipv4 {{ import all; export all; }};\n}}\n\
         template bgp rrclient from rrbase {{\n  rr client;\n  rr cluster id {};\n}}\n",
        spec.reflectors(),
        spec.rr_addr(r),
        if spec.bfd {
            "protocol bfd {\n  interface \"*\" { interval 300 ms; multiplier 3; };\n}\n"
        } else {
            ""
        },
        if spec.fabric == Fabric::Routed {
            "multihop"
        } else {
            "direct"
        },
        spec.hold_time,
        (spec.hold_time / 3).max(1),
        if spec.bfd { "  bfd on;\n" } else { "" },
        spec.rr_addr(r)
    );
    for i in 0..spec.nodes {
        let _ = writeln!(
            s,
            "protocol bgp {} from rrclient {{ neighbor {} as {ASN}; }}",
            node_name(i),
            spec.node_addr(i)
        );
    }
    for o in (1..=spec.reflectors()).filter(|&o| o != r) {
        let _ = writeln!(
            s,
            "protocol bgp {} from rrbase {{ neighbor {} as {ASN}; }}",
            rr_name(o),
            spec.rr_addr(o)
        );
    }
    s
}

fn frr_rr(spec: &ScaleSpec, r: usize) -> String {
    let ka = (spec.hold_time / 3).max(1);
    let mut s = format!(
        "frr defaults traditional\nhostname {}\nlog stdout informational\n!\nrouter bgp {ASN}\n bgp router-id {}\n bgp cluster-id {}\n no bgp ebgp-requires-policy\n timers bgp {ka} {}\n neighbor clients peer-group\n neighbor clients remote-as {ASN}\n neighbor clients timers connect 1\n neighbor clients advertisement-interval 0\n",
        rr_name(r),
        spec.rr_addr(r),
        spec.rr_addr(r),
        spec.hold_time
    );
    for i in 0..spec.nodes {
        let _ = writeln!(s, " neighbor {} peer-group clients", spec.node_addr(i));
    }
    for o in (1..=spec.reflectors()).filter(|&o| o != r) {
        let _ = writeln!(
            s,
            " neighbor {} remote-as {ASN}\n neighbor {} timers connect 1\n neighbor {} advertisement-interval 0",
            spec.rr_addr(o),
            spec.rr_addr(o),
            spec.rr_addr(o)
        );
    }
    s.push_str(
        " address-family ipv4 unicast\n  neighbor clients route-reflector-client\n exit-address-family\n!\n",
    );
    s
}

/// The `exec` list of the speaker at index `idx` (reflectors first) with
/// address `ip`: its address, and on a routed fabric the route to the other
/// racks through its rack router.
fn speaker_exec(spec: &ScaleSpec, idx: usize, ip: Ipv4Addr) -> String {
    let addr = format!("\"ip addr add {ip}/{} dev eth1\"", spec.prefix_len());
    match spec.fabric {
        Fabric::L2 => format!("[{addr}]"),
        Fabric::Routed => format!(
            "[{addr}, \"ip route add 10.100.0.0/16 via 10.100.{}.1\"]",
            rack_of(idx)
        ),
    }
}

/// The `core` node and one `swK` per [`ScaleSpec::ports_per_switch`] speakers:
/// bridges joined by a core bridge (L2), or rack routers (br0 10.100.K.1/24,
/// uplink 10.99.K.2/30) joined by a core router (10.99.K.1/30 per rack and a
/// route to each rack's subnet). Every namespace the runner makes forwards.
fn switches_yaml(spec: &ScaleSpec, y: &mut String, speakers: usize) {
    let per = spec.ports_per_switch();
    let switches = speakers.div_ceil(per);
    let _ = writeln!(
        y,
        "    core:\n      image: nicolaka/netshoot:latest\n      exec:"
    );
    match spec.fabric {
        Fabric::L2 => {
            let _ = writeln!(
                y,
                "        - ip link add br0 type bridge\n        - ip link set br0 up"
            );
            for k in 1..=switches {
                let _ = writeln!(y, "        - ip link set d{k} master br0");
            }
        }
        Fabric::Routed => {
            for k in 1..=switches {
                let _ = writeln!(
                    y,
                    "        - ip addr add 10.99.{k}.1/30 dev d{k}\n        - ip route add 10.100.{k}.0/24 via 10.99.{k}.2"
                );
            }
        }
    }
    for k in 1..=switches {
        let ports = speakers.min(k * per) - (k - 1) * per;
        let _ = writeln!(
            y,
            "    sw{k}:\n      image: nicolaka/netshoot:latest\n      exec:\n        - ip link add br0 type bridge\n        - ip link set br0 up"
        );
        match spec.fabric {
            Fabric::L2 => {
                let _ = writeln!(y, "        - ip link set up0 master br0");
            }
            Fabric::Routed => {
                let _ = writeln!(
                    y,
                    "        - ip addr add 10.100.{k}.1/24 dev br0\n        - ip addr add 10.99.{k}.2/30 dev up0\n        - ip route add default via 10.99.{k}.1"
                );
            }
        }
        // One exec line for all ports (each line is a process in the node).
        let _ = writeln!(
            y,
            "        - for i in $(seq 1 {ports}); do ip link set p$i master br0; done"
        );
    }
}

const FRR_DAEMONS: &str = "bgpd=yes\nzebra=yes\n";

/// Writes the topology; returns the path of the `.clab.yml`.
pub fn generate(spec: &ScaleSpec, dir: &Path) -> Result<PathBuf> {
    spec.check()?;
    let sub = dir.join(&spec.name);
    std::fs::create_dir_all(&sub)
        .map_err(|e| LabError::io(format!("creating {}", sub.display()), e))?;
    let write = |name: &str, text: &str| -> Result<()> {
        let p = sub.join(name);
        std::fs::write(&p, text).map_err(|e| LabError::io(format!("writing {}", p.display()), e))
    };
    let rrs = spec.reflectors();
    let mut y = format!(
        "# Generated by `tortie-bench scale`: {} tortie nodes, {}, {} containers each,\n# {}.\nname: {}\n\ntopology:\n  defaults:\n    kind: linux\n    image: tortie:latest\n  nodes:\n",
        spec.nodes,
        mode_label(spec),
        spec.containers,
        match spec.fabric {
            Fabric::L2 => format!(
                "one subnet (10.100.0.0/16) over {} switch bridge(s) joined by a core bridge",
                (spec.nodes + rrs).div_ceil(spec.ports_per_switch())
            ),
            Fabric::Routed => format!(
                "a /24 per rack (10.100.K.0/24) behind {} rack router(s) joined by a core router",
                (spec.nodes + rrs).div_ceil(spec.ports_per_switch())
            ),
        },
        spec.name
    );
    // Every BGP speaker hangs off a switch port: reflectors first, then nodes.
    let mut attached: Vec<(String, Ipv4Addr)> =
        (1..=rrs).map(|r| (rr_name(r), spec.rr_addr(r))).collect();
    attached.extend((0..spec.nodes).map(|i| (node_name(i), spec.node_addr(i))));
    let switches = attached.len().div_ceil(spec.ports_per_switch());
    let containers: Vec<String> = (1..=spec.containers).map(|c| format!("c{c}")).collect();
    switches_yaml(spec, &mut y, attached.len());
    let all_tortie: Vec<(String, Ipv4Addr)> = attached
        .iter()
        .filter(|(n, _)| {
            !n.starts_with("rr")
                || matches!(
                    spec.mode,
                    Mode::Rr {
                        kind: Reflector::Tortie,
                        ..
                    }
                )
        })
        .cloned()
        .collect();
    for r in 1..=rrs {
        let Mode::Rr { kind, .. } = spec.mode else {
            break;
        };
        let name = rr_name(r);
        let ip = spec.rr_addr(r);
        let exec = speaker_exec(spec, r - 1, ip);
        let others = (1..=rrs).filter(|&o| o != r).map(|o| Peer {
            ip: spec.rr_addr(o),
            name: rr_name(o),
            rr_client: false,
        });
        match kind {
            Reflector::Tortie => {
                let mut peers: Vec<Peer> = (0..spec.nodes)
                    .map(|i| Peer {
                        ip: spec.node_addr(i),
                        name: node_name(i),
                        rr_client: true,
                    })
                    .collect();
                peers.extend(others);
                write(
                    &format!("{name}.toml"),
                    &tortie_toml(spec, &name, ip, &rr_block(r), &peers),
                )?;
                let _ = writeln!(
                    y,
                    "    {name}:\n      binds: [\"{0}/{name}.toml:/etc/tortie/tortie.toml:ro\"]\n      exec: {exec}",
                    spec.name
                );
            }
            Reflector::Bird => {
                write(&format!("{name}-bird.conf"), &bird_rr(spec, r))?;
                let _ = writeln!(
                    y,
                    "    {name}:\n      image: tortie-lab/bird:2\n      binds: [\"{0}/{name}-bird.conf:/etc/bird/bird.conf:ro\"]\n      exec: {exec}",
                    spec.name
                );
            }
            Reflector::Frr => {
                write(&format!("{name}-frr.conf"), &frr_rr(spec, r))?;
                write("daemons", FRR_DAEMONS)?;
                let _ = writeln!(
                    y,
                    "    {name}:\n      image: quay.io/frrouting/frr:8.4.1\n      binds:\n        - {0}/{name}-frr.conf:/etc/frr/frr.conf\n        - {0}/daemons:/etc/frr/daemons\n      exec: {exec}",
                    spec.name
                );
            }
        }
    }
    for i in 0..spec.nodes {
        let name = node_name(i);
        let ip = spec.node_addr(i);
        let exec = speaker_exec(spec, rrs + i, ip);
        let peers: Vec<Peer> = match spec.mode {
            Mode::Mesh => all_tortie
                .iter()
                .filter(|(n, _)| *n != name)
                .map(|(n, a)| Peer {
                    ip: *a,
                    name: n.clone(),
                    rr_client: false,
                })
                .collect(),
            Mode::Rr { count, .. } => (1..=count)
                .map(|r| Peer {
                    ip: spec.rr_addr(r),
                    name: rr_name(r),
                    rr_client: false,
                })
                .collect(),
        };
        write(
            &format!("{name}.toml"),
            &tortie_toml(spec, &name, ip, &node_block(i), &peers),
        )?;
        let _ = write!(
            y,
            "    {name}:\n      binds: [\"{0}/{name}.toml:/etc/tortie/tortie.toml:ro\"]\n      exec: {exec}\n",
            spec.name
        );
        if !containers.is_empty() {
            let _ = writeln!(
                y,
                "      env: {{TORTIE_CONTAINERS: \"{}\"}}",
                containers.join(" ")
            );
        }
    }
    y.push_str("  links:\n");
    for k in 1..=switches {
        let _ = writeln!(y, "    - endpoints: [\"sw{k}:up0\", \"core:d{k}\"]");
    }
    for (idx, (name, _)) in attached.iter().enumerate() {
        let _ = writeln!(
            y,
            "    - endpoints: [\"{name}:eth1\", \"sw{}:p{}\"]",
            idx / spec.ports_per_switch() + 1,
            idx % spec.ports_per_switch() + 1
        );
    }
    let path = dir.join(format!("{}.clab.yml", spec.name));
    std::fs::write(&path, y).map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Structure and validity of whole files: lab/tests/topologies.rs.
    #[test]
    fn addressing_plan() {
        assert_eq!(node_block(0), "10.244.0.0/26");
        assert_eq!(node_block(1023), "10.244.255.192/26");
        assert_eq!(node_ip(0), Ipv4Addr::new(10, 100, 1, 10));
        assert_eq!(node_ip(399), Ipv4Addr::new(10, 100, 2, 209));
        assert_eq!(rr_ip(2), Ipv4Addr::new(10, 100, 0, 2));
        let mut spec = ScaleSpec {
            name: "x".into(),
            nodes: 1025,
            containers: 2,
            mode: Mode::Mesh,
            hold_time: 9,
            bfd: true,
            fabric: Fabric::L2,
        };
        assert!(spec.check().is_err(), "more nodes than /26 blocks");
        spec.nodes = 10;
        assert!(spec.check().is_ok());
        spec.mode = Mode::Rr {
            count: 2,
            kind: Reflector::Frr,
        };
        assert!(spec.check().is_err(), "BFD with FRR reflectors");
        spec.bfd = false;
        assert!(spec.check().is_ok());
        spec.fabric = Fabric::Routed;
        assert!(spec.check().is_ok());
        spec.bfd = true;
        spec.mode = Mode::Mesh;
        assert!(spec.check().is_err(), "BFD on a routed fabric");
        spec.bfd = false;
        // Reflectors first, racks of 16 speakers.
        assert_eq!(spec.node_addr(0), Ipv4Addr::new(10, 100, 1, 10));
        assert_eq!(spec.node_addr(20), Ipv4Addr::new(10, 100, 2, 14));
        spec.mode = Mode::Rr {
            count: 2,
            kind: Reflector::Tortie,
        };
        assert_eq!(spec.rr_addr(2), Ipv4Addr::new(10, 100, 1, 11));
        assert_eq!(spec.node_addr(14), Ipv4Addr::new(10, 100, 2, 10));
        spec.containers = 61;
        assert!(spec.check().is_err(), "more containers than a /26 holds");
    }
}
