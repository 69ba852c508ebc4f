//! `dataplane.nat_outgoing` and `dataplane.cluster_cidrs` (issue 12): read from
//! the raw `[dataplane]` table, checked against `node.pod_cidr`, resolved into
//! [`crate::Dataplane`]'s two fields. Every refusal names the key's position.
//!
//! Rules: each CIDR is an IPv4 or IPv6 network with its host bits zero;
//! `nat_outgoing = true` needs at least one; when CIDRs are given, the node's
//! blocks must each lie inside one of them (else pod-to-pod traffic would be
//! masqueraded).

use ipnetwork::IpNetwork;
use toml::Spanned;

use crate::error::Locator;
use crate::model::Node;
use crate::raw::RawDataplane;

const EXAMPLE: &str = "cluster_cidrs = [\"10.244.0.0/16\", \"fd10:244::/48\"]";

/// `(nat_outgoing, cluster_cidrs)`; problems go to `loc`.
pub(crate) fn resolve(
    loc: &mut Locator<'_>,
    raw: &RawDataplane,
    node: Option<&Node>,
) -> (bool, Vec<IpNetwork>) {
    let nat_outgoing = raw.nat_outgoing.as_ref().is_some_and(|v| *v.get_ref());
    let mut cidrs = Vec::new();
    if let Some(list) = &raw.cluster_cidrs {
        for item in list.get_ref() {
            match cidr(item.get_ref()) {
                Ok(net) => cidrs.push(net),
                Err((message, hint)) => loc.at(item.span(), message, &hint),
            }
        }
    }
    match (&raw.nat_outgoing, &raw.cluster_cidrs) {
        (Some(on), None) if nat_outgoing => loc.at(
            on.span(),
            "dataplane.nat_outgoing is on but dataplane.cluster_cidrs is not set",
            &format!(
                "list the cluster's pod ranges (traffic to them is not masqueraded), e.g. {EXAMPLE}"
            ),
        ),
        (_, Some(list)) if nat_outgoing && list.get_ref().is_empty() => loc.at(
            list.span(),
            "dataplane.cluster_cidrs is empty but dataplane.nat_outgoing is on",
            &format!("list the cluster's pod ranges, e.g. {EXAMPLE}"),
        ),
        _ => {}
    }
    if let (Some(node), Some(list)) = (node, &raw.cluster_cidrs) {
        let all_parsed = cidrs.len() == list.get_ref().len();
        for block in &node.pod_cidrs {
            if all_parsed && !cidrs.is_empty() && !cidrs.iter().any(|c| inside(*c, *block)) {
                loc.at(
                    list.span(),
                    format!("node.pod_cidr {block} is not inside any of dataplane.cluster_cidrs"),
                    "cluster_cidrs must cover every node's pod block, or traffic between pods would be masqueraded",
                );
            }
        }
    }
    (nat_outgoing, cidrs)
}

/// Whether `inner` lies entirely inside `outer`.
pub(crate) fn inside(outer: IpNetwork, inner: IpNetwork) -> bool {
    outer.is_ipv4() == inner.is_ipv4()
        && outer.prefix() <= inner.prefix()
        && outer.contains(inner.network())
}

/// One entry: `addr/len` of either family, host bits zero.
fn cidr(s: &str) -> Result<IpNetwork, (String, String)> {
    let key = "dataplane.cluster_cidrs";
    if !s.contains('/') {
        return Err((
            format!("{key} entry `{s}` has no prefix length"),
            "write a network and its prefix length, e.g. \"10.244.0.0/16\"".into(),
        ));
    }
    let net: IpNetwork = s.parse().map_err(|_| {
        (
            format!("{key} entry `{s}` is not a CIDR"),
            "write an IPv4 or IPv6 network and its prefix length, e.g. \"10.244.0.0/16\" or \"fd10:244::/48\"".to_string(),
        )
    })?;
    if net.ip() != net.network() {
        return Err((
            format!("{key} entry `{s}` has host bits set"),
            format!("did you mean \"{}/{}\"?", net.network(), net.prefix()),
        ));
    }
    Ok(net)
}

/// The raw field's type, for `raw.rs`.
pub(crate) type RawCidrs = Option<Spanned<Vec<Spanned<String>>>>;
