//! natOutgoing wiring: turns `dataplane.nat_outgoing`/`cluster_cidrs` into the
//! routes crate's [`NatRules`] and hands them to its [`NatOutgoing`] owner at
//! start-up and on SIGHUP. The table, its guard and its repairs live in
//! `tortie_routes::nat`; this file only decides what is wanted and logs.

use tortie_config::Config;
use tortie_routes::RoutesError;
use tortie_routes::nat::{NatOutgoing, NatRules};

/// The wanted rules for `cfg` (`None`: NAT off, our table must not exist).
pub fn rules(cfg: &Config) -> Result<Option<NatRules>, RoutesError> {
    if !cfg.dataplane.nat_outgoing {
        return Ok(None);
    }
    NatRules::new(&cfg.node.pod_cidrs, &cfg.dataplane.cluster_cidrs).map(Some)
}

/// Start-up: starts the guard and applies `cfg`'s wish. With NAT on, a
/// failure stops start-up (the operator asked for egress NAT); with NAT off,
/// removing a table a previous run left is best effort (nft may be absent).
pub fn start(cfg: &Config) -> anyhow::Result<NatOutgoing> {
    let nat = NatOutgoing::start(|result| match result {
        Ok(()) => {
            tracing::warn!("nat_outgoing: table inet tortie was missing or changed; restored")
        }
        Err(e) => tracing::warn!(error = %e, "nat_outgoing: restoring table inet tortie failed"),
    })?;
    match rules(cfg)? {
        Some(r) => {
            nat.set(Some(r))?;
            tracing::info!(cluster_cidrs = ?cfg.dataplane.cluster_cidrs, "nat_outgoing: table inet tortie installed");
        }
        None => {
            if let Err(e) = nat.set(None) {
                tracing::debug!(error = %e, "nat_outgoing off: could not check for a stale table inet tortie");
            }
        }
    }
    Ok(nat)
}

/// SIGHUP: applies a change of `nat_outgoing`/`cluster_cidrs`. Returns whether
/// the new settings are in force (else the old ones stay, table included).
pub fn reload(nat: &NatOutgoing, old: &Config, new: &Config) -> bool {
    let same = old.dataplane.nat_outgoing == new.dataplane.nat_outgoing
        && old.dataplane.cluster_cidrs == new.dataplane.cluster_cidrs;
    if same {
        return true;
    }
    match rules(new).and_then(|r| nat.set(r)) {
        Ok(()) if new.dataplane.nat_outgoing => {
            tracing::info!(cluster_cidrs = ?new.dataplane.cluster_cidrs, "SIGHUP: nat_outgoing on; table inet tortie replaced");
            true
        }
        Ok(()) => {
            tracing::info!("SIGHUP: nat_outgoing off; table inet tortie removed");
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: applying nat_outgoing failed; keeping the previous setting");
            false
        }
    }
}
