//! natOutgoing: the `inet tortie` nftables table that masquerades pod traffic
//! leaving the cluster (issue 12).
//!
//! Owns one table and nothing else: `table inet tortie`, chain `postrouting`
//! (type nat, hook postrouting, priority srcnat = 100), one rule per pod block:
//! `ip saddr <block> ip daddr != { <cluster CIDRs of that family> } masquerade`
//! (`ip6 …` for an IPv6 block, so ULA pod blocks work in the same table).
//! Traffic to the node itself never reaches postrouting (it is delivered on the
//! input path), and pod-to-pod traffic has its destination inside a cluster
//! CIDR, so neither is translated.
//!
//! Data flow: [`NatRules::new`] (pure: checks, then builds the nft JSON
//! document) → [`NatOutgoing::set`] applies it in one `nft -j -f -`
//! transaction (`add table` + `delete table` + the new table: atomic, never
//! touches another table) → a guard thread re-reads our table every
//! [`CHECK_INTERVAL`] (`nft -j list table inet tortie`) and re-applies the
//! whole table when it is missing or its rules are not exactly ours (e.g. after
//! `nft flush ruleset`). `set(None)` deletes the table. The JSON API is the
//! `nftables` crate (it runs the `nft` binary of the Debian `nftables` package).

use std::borrow::Cow;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ipnetwork::IpNetwork;
use nftables::batch::Batch;
use nftables::expr::{Expression, NamedExpression, Payload, PayloadField, Prefix, SetItem};
use nftables::helper::{self, NftablesError};
use nftables::schema::{Chain, NfListObject, NfObject, Nftables, Rule, Table};
use nftables::stmt::{Match, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::RoutesError;

/// Our table's name (family `inet`).
pub const NAT_TABLE: &str = "tortie";
/// Our only chain.
pub const NAT_CHAIN: &str = "postrouting";
/// How often the guard checks that our table is intact.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// nftables' `srcnat` priority (NF_IP_PRI_NAT_SRC).
const SRCNAT_PRIORITY: i32 = 100;

/// The wanted content of `inet tortie`: one masquerade rule per pod block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatRules {
    pod_blocks: Vec<IpNetwork>,
    cluster_cidrs: Vec<IpNetwork>,
}

impl NatRules {
    /// Checks that every pod block lies inside one of `cluster_cidrs` (else
    /// pod-to-pod traffic of that block would be translated).
    pub fn new(pod_blocks: &[IpNetwork], cluster_cidrs: &[IpNetwork]) -> Result<Self, RoutesError> {
        for block in pod_blocks {
            if !cluster_cidrs.iter().any(|c| contains(*c, *block)) {
                return Err(RoutesError::Invalid {
                    context: "nat_outgoing".into(),
                    message: format!(
                        "pod block {block} is not inside any cluster CIDR ({})",
                        list(cluster_cidrs)
                    ),
                });
            }
        }
        Ok(NatRules {
            pod_blocks: pod_blocks.iter().map(|b| network(*b)).collect(),
            cluster_cidrs: cluster_cidrs.iter().map(|c| network(*c)).collect(),
        })
    }

    /// Number of rules in our chain.
    pub fn rule_count(&self) -> usize {
        self.pod_blocks.len()
    }

    /// The transaction replacing our table: `add table` (so the delete cannot
    /// fail when it is absent), `delete table`, then table, chain and rules.
    pub fn document(&self) -> Nftables<'static> {
        let mut batch = removal_batch();
        batch.add(NfListObject::Table(table()));
        batch.add(NfListObject::Chain(Chain {
            family: NfFamily::INet,
            table: NAT_TABLE.into(),
            name: NAT_CHAIN.into(),
            _type: Some(NfChainType::NAT),
            hook: Some(NfHook::Postrouting),
            prio: Some(SRCNAT_PRIORITY),
            policy: Some(NfChainPolicy::Accept),
            ..Chain::default()
        }));
        for block in &self.pod_blocks {
            let (proto, is_v4) = match block {
                IpNetwork::V4(_) => ("ip", true),
                IpNetwork::V6(_) => ("ip6", false),
            };
            let cluster: Vec<SetItem<'static>> = self
                .cluster_cidrs
                .iter()
                .filter(|c| c.is_ipv4() == is_v4)
                .map(|c| SetItem::Element(prefix(*c)))
                .collect();
            let expr = vec![
                Statement::Match(Match {
                    left: payload(proto, "saddr"),
                    right: prefix(*block),
                    op: Operator::EQ,
                }),
                Statement::Match(Match {
                    left: payload(proto, "daddr"),
                    right: Expression::Named(NamedExpression::Set(cluster)),
                    op: Operator::NEQ,
                }),
                Statement::Masquerade(None),
            ];
            batch.add(NfListObject::Rule(Rule {
                family: NfFamily::INet,
                table: NAT_TABLE.into(),
                chain: NAT_CHAIN.into(),
                expr: expr.into(),
                handle: None,
                index: None,
                comment: Some(Cow::Owned(comment(*block))),
            }));
        }
        batch.to_nftables()
    }
}

/// The comment naming each rule: how [`intact`] recognises our rules.
fn comment(block: IpNetwork) -> String {
    format!("tortie natOutgoing {block}")
}

fn table() -> Table<'static> {
    Table {
        family: NfFamily::INet,
        name: NAT_TABLE.into(),
        handle: None,
    }
}

/// `add table inet tortie; delete table inet tortie`: removes our table (and
/// only it) whether or not it exists.
fn removal_batch() -> Batch<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(table()));
    batch.delete(NfListObject::Table(table()));
    batch
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

fn prefix(net: IpNetwork) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(Expression::String(net.network().to_string().into())),
        len: u32::from(net.prefix()),
    }))
}

fn network(net: IpNetwork) -> IpNetwork {
    IpNetwork::new(net.network(), net.prefix()).unwrap_or(net)
}

fn contains(outer: IpNetwork, inner: IpNetwork) -> bool {
    outer.is_ipv4() == inner.is_ipv4()
        && outer.prefix() <= inner.prefix()
        && outer.contains(inner.network())
}

fn list(nets: &[IpNetwork]) -> String {
    if nets.is_empty() {
        return "none given".into();
    }
    nets.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn nft_error(context: &str, e: NftablesError) -> RoutesError {
    let message = match e {
        NftablesError::NftFailed { stderr, .. } => stderr.trim().to_string(),
        e @ NftablesError::NftExecution { .. } => {
            format!("{e} (nat_outgoing needs the nft program: install the nftables package)")
        }
        other => other.to_string(),
    };
    RoutesError::Unexpected {
        context: context.into(),
        message,
    }
}

/// Applies `rules` (replacing our table atomically) or, with `None`, deletes it.
pub fn apply(rules: Option<&NatRules>) -> Result<(), RoutesError> {
    match rules {
        Some(r) => helper::apply_ruleset(&r.document())
            .map_err(|e| nft_error("nat_outgoing: replacing table inet tortie", e)),
        None => helper::apply_ruleset(&removal_batch().to_nftables())
            .map_err(|e| nft_error("nat_outgoing: deleting table inet tortie", e)),
    }
}

/// Whether our table holds our chain with exactly our rules, in order (each
/// recognised by its comment and its three statements). `Ok(false)` when the
/// table or chain is missing or a rule was removed, added or rewritten.
pub fn intact(rules: &NatRules) -> Result<bool, RoutesError> {
    let listed = match helper::get_current_ruleset_with_args(
        helper::DEFAULT_NFT,
        ["list", "table", "inet", NAT_TABLE],
    ) {
        Ok(l) => l,
        // nft exits non-zero when the table does not exist.
        Err(NftablesError::NftFailed { .. }) => return Ok(false),
        Err(e) => return Err(nft_error("nat_outgoing: listing table inet tortie", e)),
    };
    let mut chain = false;
    let mut found = Vec::new();
    for object in listed.objects.iter() {
        match object {
            NfObject::ListObject(NfListObject::Chain(c)) if c.name == NAT_CHAIN => chain = true,
            NfObject::ListObject(NfListObject::Rule(r)) if r.chain == NAT_CHAIN => {
                found.push((r.comment.as_deref().map(str::to_string), r.expr.len()));
            }
            _ => {}
        }
    }
    let wanted: Vec<(Option<String>, usize)> = rules
        .pod_blocks
        .iter()
        .map(|b| (Some(comment(*b)), 3))
        .collect();
    Ok(chain && found == wanted)
}

/// The natOutgoing owner: the wanted state plus the guard thread that
/// restores our table within [`CHECK_INTERVAL`] of someone removing it.
pub struct NatOutgoing {
    wanted: Arc<Mutex<Option<NatRules>>>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl NatOutgoing {
    /// Starts the guard with nothing wanted (it checks nothing until [`Self::set`]).
    /// `on_repair` is called after each repair, and once per distinct failure
    /// (a failure repeating every check is not reported again).
    pub fn start(
        on_repair: impl Fn(Result<(), &RoutesError>) + Send + 'static,
    ) -> Result<Self, RoutesError> {
        let wanted = Arc::new(Mutex::new(None));
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = Arc::clone(&wanted);
        let thread = std::thread::Builder::new()
            .name("tortie-nat".into())
            .spawn(move || guard(&shared, &stopped, &on_repair))
            .map_err(|source| RoutesError::Io {
                context: "nat_outgoing: starting the guard thread".into(),
                source,
            })?;
        Ok(NatOutgoing {
            wanted,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Replaces the wanted state (start-up, SIGHUP): applies it now (`None`
    /// deletes our table); on success the guard keeps it.
    pub fn set(&self, rules: Option<NatRules>) -> Result<(), RoutesError> {
        let mut wanted = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
        apply(rules.as_ref())?;
        *wanted = rules;
        Ok(())
    }

    /// The wanted state.
    pub fn wanted(&self) -> Option<NatRules> {
        self.wanted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for NatOutgoing {
    /// Stops the guard; the table stays (like routes, it survives a restart).
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn guard(
    wanted: &Mutex<Option<NatRules>>,
    stopped: &mpsc::Receiver<()>,
    on_repair: &dyn Fn(Result<(), &RoutesError>),
) {
    // A failure that repeats every check is reported once, until it changes
    // or a check succeeds.
    let mut last_error: Option<String> = None;
    loop {
        match stopped.recv_timeout(CHECK_INTERVAL) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let guard = wanted.lock().unwrap_or_else(|p| p.into_inner());
        let Some(rules) = guard.as_ref() else {
            continue;
        };
        let result = match intact(rules) {
            Ok(true) => {
                last_error = None;
                continue;
            }
            Ok(false) => apply(Some(rules)),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                last_error = None;
                on_repair(Ok(()));
            }
            Err(e) => {
                let text = e.to_string();
                if last_error.as_deref() != Some(text.as_str()) {
                    on_repair(Err(&e));
                    last_error = Some(text);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    #[test]
    fn a_block_outside_the_cluster_is_refused() {
        let e = NatRules::new(&[net("10.9.0.0/26")], &[net("10.244.0.0/16")]).unwrap_err();
        assert!(e.to_string().contains("10.9.0.0/26"), "{e}");
        assert!(NatRules::new(&[net("fd00::/64")], &[net("10.0.0.0/8")]).is_err());
        assert!(NatRules::new(&[net("10.244.0.0/16")], &[net("10.244.0.0/24")]).is_err());
    }

    #[test]
    fn the_document_replaces_only_our_table_with_one_rule_per_block() {
        let rules = NatRules::new(
            &[net("10.244.1.0/26"), net("fd10:244:0:1::/64")],
            &[
                net("10.244.0.0/16"),
                net("fd10:244::/48"),
                net("10.96.0.0/12"),
            ],
        )
        .unwrap();
        assert_eq!(rules.rule_count(), 2);
        let json = serde_json::to_value(rules.document()).unwrap();
        let cmds = json["nftables"].as_array().unwrap();
        // add table, delete table, add table, add chain, two rules
        assert_eq!(cmds.len(), 6, "{json}");
        assert_eq!(cmds[0]["add"]["table"]["name"], "tortie");
        assert_eq!(cmds[0]["add"]["table"]["family"], "inet");
        assert_eq!(cmds[1]["delete"]["table"]["name"], "tortie");
        assert_eq!(cmds[3]["add"]["chain"]["hook"], "postrouting");
        assert_eq!(cmds[3]["add"]["chain"]["type"], "nat");
        for c in cmds {
            let obj = c.as_object().unwrap().values().next().unwrap();
            let o = obj.as_object().unwrap().values().next().unwrap();
            let table = o.get("table").or_else(|| o.get("name")).unwrap();
            assert_eq!(table, "tortie", "{c}");
        }
        let v4 = cmds[4]["add"]["rule"]["expr"].to_string();
        assert!(v4.contains(r#""field":"saddr","protocol":"ip""#), "{v4}");
        assert!(v4.contains(r#""addr":"10.244.1.0","len":26"#), "{v4}");
        assert!(v4.contains(r#""op":"!=""#), "{v4}");
        assert!(v4.contains("10.96.0.0") && !v4.contains("fd10"), "{v4}");
        assert!(v4.contains("masquerade"), "{v4}");
        let v6 = cmds[5]["add"]["rule"]["expr"].to_string();
        assert!(v6.contains(r#""field":"daddr","protocol":"ip6""#), "{v6}");
        assert!(
            v6.contains(r#""addr":"fd10:244::","len":48"#) && !v6.contains("10.96"),
            "{v6}"
        );
    }
}
