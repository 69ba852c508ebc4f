//! The node's encapsulation devices and MTU at start-up (and in `tortie
//! check`): which underlays the node has (`node.address`, one per family),
//! their links' MTU, the MTU every tunnel device and container gets
//! ([`mtu_plan`], pure), then `tunl0` and the VXLAN devices made to match
//! `dataplane.encapsulation` ([`setup`]). The per-route choice of carrier is
//! the routes crate's ([`tortie_routes::encap`]); the FDB and neighbour
//! entries of remote VTEPs are its reconciler's.

use std::net::IpAddr;

use anyhow::Context;
use tortie_config::Config;
use tortie_routes::IpNetwork;
use tortie_routes::vxlan::VxlanSpec;

use crate::ipam::Ipam;

/// Ethernet's MTU, when the underlay's cannot be read.
pub const DEFAULT_MTU: u32 = 1500;

/// The node's own subnets, one per family: `node.address` with its prefix
/// length (the cross-subnet test and the underlays).
pub fn node_subnets(cfg: &Config) -> Vec<IpNetwork> {
    cfg.node.addresses.iter().collect()
}

/// MTUs for this node (see [`mtu_plan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtuPlan {
    /// Container interfaces (and `tunl0`).
    pub containers: u32,
    /// Per underlay address: the most an encapsulated packet's inner IP
    /// packet may have (the underlay's MTU minus the overhead).
    pub paths: Vec<(IpAddr, u32)>,
}

/// The MTU rule: per underlay (its address and its link's MTU, `None` when
/// unknown: 1500 assumed), the path allows the underlay's MTU minus the
/// encapsulation's overhead over that family (50 for VXLAN over IPv4, 70
/// over IPv6, 20 for IP-in-IP over IPv4); the smallest applies to containers.
/// `dataplane.mtu` overrides, but never beyond what a known underlay allows:
/// that is an error (felix#756: a tunnel MTU larger than the path drops
/// large packets silently).
pub fn mtu_plan(cfg: &Config, underlays: &[(IpAddr, Option<u32>)]) -> Result<MtuPlan, String> {
    let encap = cfg.dataplane.encapsulation;
    let paths: Vec<(IpAddr, u32)> = underlays
        .iter()
        .map(|&(addr, mtu)| {
            let path = mtu
                .unwrap_or(DEFAULT_MTU)
                .saturating_sub(encap.overhead(addr))
                .clamp(68, 65_535);
            (addr, path)
        })
        .collect();
    let allowed = paths.iter().map(|(_, p)| *p).min().unwrap_or(DEFAULT_MTU);
    let containers = match u32::from(cfg.dataplane.mtu) {
        0 => allowed,
        set => {
            let known = underlays
                .iter()
                .zip(&paths)
                .find(|((_, mtu), (_, path))| mtu.is_some() && set > *path);
            if let Some(((addr, Some(link)), (_, path))) = known {
                return Err(format!(
                    "dataplane.mtu {set} is larger than the path allows: the link of {addr} has MTU {link}, and encapsulation \"{encap}\" adds {} bytes, which leaves {path}",
                    encap.overhead(*addr)
                ));
            }
            set
        }
    };
    Ok(MtuPlan { containers, paths })
}

/// The underlays of this node with their links' MTU (`None` when unreadable).
pub async fn underlays(cfg: &Config) -> Vec<(IpAddr, Option<u32>)> {
    let mut out = Vec::new();
    for net in node_subnets(cfg) {
        let addr = net.ip();
        let mtu = match tortie_routes::underlay_mtu(addr).await {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(error = %e, %addr, "underlay MTU unknown; assuming {DEFAULT_MTU}");
                None
            }
        };
        out.push((addr, mtu));
    }
    out
}

/// `tortie check` on this node: the MTU rule against the real links.
/// Returns the problem, if any.
pub fn check_mtu(cfg: &Config) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread().build().ok()?;
    let underlays = rt.block_on(underlays(cfg));
    mtu_plan(cfg, &underlays).err()
}

/// Make the devices match `dataplane.encapsulation`: `tunl0` (with an
/// address of the block) for IP-in-IP, one VXLAN device per underlay family
/// for VXLAN, and ours of the other kind removed. Returns the containers' MTU.
pub async fn setup(cfg: &Config, ipam: &mut Ipam) -> anyhow::Result<u32> {
    let encap = cfg.dataplane.encapsulation;
    let plan = mtu_plan(cfg, &underlays(cfg).await).map_err(anyhow::Error::msg)?;
    let mtu = plan.containers;
    if encap.uses_ipip() {
        let addr = ipam
            .allocate_tunnel()
            .context("allocating the tunl0 address")?;
        tortie_routes::ensure_tunl0(addr, mtu)
            .await
            .context("configuring tunl0")?;
        tracing::info!(%addr, mtu, "tunl0 ready");
    } else {
        // Off the device first, then free: an address is never both free in
        // the IPAM and still on tunl0 (a container could get it next).
        for addr in ipam.addresses(crate::ipam::TUNNEL_ID) {
            if let IpAddr::V4(a) = addr {
                tortie_routes::release_tunl0(a)
                    .await
                    .with_context(|| format!("taking {a} off tunl0"))?;
            }
        }
        for addr in ipam
            .release_tunnel()
            .context("releasing the tunl0 address")?
        {
            tracing::info!(%addr, "IP-in-IP is off: took the address off tunl0 and released it");
        }
    }
    let mut kept = Vec::new();
    if encap.uses_vxlan() {
        for (local, path) in &plan.paths {
            let spec = VxlanSpec {
                vni: cfg.dataplane.vxlan_vni,
                port: cfg.dataplane.vxlan_port,
                local: *local,
                mtu: *path,
            };
            tortie_routes::vxlan::ensure_vxlan(&spec)
                .with_context(|| format!("configuring {}", spec.name()))?;
            tracing::info!(dev = spec.name(), %local, vni = spec.vni, port = spec.port, mtu = path, "VXLAN device ready");
            kept.push(spec.name());
        }
    }
    for dev in [tortie_routes::VXLAN_DEV, tortie_routes::VXLAN6_DEV] {
        if !kept.contains(&dev)
            && tortie_routes::vxlan::remove_vxlan(dev).with_context(|| format!("removing {dev}"))?
        {
            tracing::info!(dev, "VXLAN is off for this family: removed the device");
        }
    }
    Ok(mtu)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(dataplane: &str) -> Config {
        let text = format!(
            "[node]\nname = \"n\"\naddress = \"192.0.2.11/24\"\nasn = 64512\npod_cidr = \"10.244.1.0/26\"\n[dataplane]\n{dataplane}"
        );
        tortie_config::parse(&text, "t.toml").expect("valid")
    }

    type Underlays<'a> = &'a [(IpAddr, Option<u32>)];

    /// Event table: (dataplane keys, underlays, containers' MTU or error).
    #[test]
    fn mtu_rule_table() {
        let v4: IpAddr = "192.0.2.11".parse().unwrap();
        let v6: IpAddr = "2001:db8::11".parse().unwrap();
        #[rustfmt::skip]
        let table: &[(&str, Underlays, Result<u32, &str>)] = &[
            ("", &[(v4, Some(9000))], Ok(9000)),
            ("", &[(v4, None)], Ok(1500)),
            ("", &[(v4, Some(65_536))], Ok(65_535)),
            ("encapsulation = \"ipip\"", &[(v4, Some(1500))], Ok(1480)),
            ("encapsulation = \"ipip\"", &[(v4, Some(1500)), (v6, Some(1500))], Ok(1480)),
            ("encapsulation = \"vxlan\"", &[(v4, Some(1500))], Ok(1450)),
            ("encapsulation = \"vxlan-cross-subnet\"", &[(v4, Some(1460))], Ok(1410)),
            // Both underlays: the smallest path applies.
            ("encapsulation = \"vxlan\"", &[(v4, Some(1500)), (v6, Some(1500))], Ok(1430)),
            ("encapsulation = \"vxlan\"", &[(v4, Some(1400)), (v6, Some(9000))], Ok(1350)),
            ("mtu = 1400\nencapsulation = \"ipip\"", &[(v4, Some(1500))], Ok(1400)),
            ("mtu = 1450\nencapsulation = \"vxlan\"", &[(v4, Some(1500))], Ok(1450)),
            // felix#756: never beyond what the path allows.
            ("mtu = 1480\nencapsulation = \"ipip\"", &[(v4, Some(1460))], Err("leaves 1440")),
            ("mtu = 1500\nencapsulation = \"vxlan\"", &[(v4, Some(1500))], Err("leaves 1450")),
            ("mtu = 9000", &[(v4, Some(1500))], Err("leaves 1500")),
            // Unknown underlay: the operator's value stands.
            ("mtu = 9000", &[(v4, None)], Ok(9000)),
        ];
        for (keys, underlays, want) in table {
            let got = mtu_plan(&conf(keys), underlays).map(|p| p.containers);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g, "{keys} {underlays:?}"),
                (Err(w), Err(g)) => assert!(g.contains(w), "{keys}: {g}"),
                _ => panic!("{keys} {underlays:?}: want {want:?}, got {got:?}"),
            }
        }
        let p = mtu_plan(
            &conf("encapsulation = \"vxlan\""),
            &[(v4, Some(1500)), (v6, Some(1500))],
        )
        .unwrap();
        assert_eq!(p.paths, vec![(v4, 1450), (v6, 1430)]);
    }
}
