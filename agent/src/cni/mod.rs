//! The CNI side of tortie, spec 1.1.0 (also serving 0.3.x/0.4.0/1.0.0
//! network configs): ADD, DEL, CHECK, VERSION, STATUS, GC.
//!
//! Data flow: the runtime sets `CNI_*` environment variables and writes the
//! network config JSON on the plugin's stdin; the plugin (`tortie-cni`, a
//! transport) sends both to the agent's `POST /v1/cni` ([`body`] is that
//! request's and response's format). In the agent, [`invoke()`] runs the whole
//! invocation: [`parse_env`] and [`parse_netconf`] turn the inputs into a
//! [`CniEnv`] and a [`NetConf`], the command runs through the API's
//! `Backend` (the calls `/v1/attach`, `/v1/detach`, `/v1/check`, `/v1/gc`
//! make), and the answer is the spec's result JSON ([`format_result`]) or a
//! [`CniError`] ([`CniError::to_json`], codes from [`From<ApiError>`]), with
//! the exit status the plugin passes on. Everything in this file is pure.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiError, AttachResult, ErrorKind};

pub mod body;
pub mod invoke;

pub use body::parse_body;
pub use invoke::{Output, invoke, serve};

/// Versions this plugin speaks, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
/// The version we answer VERSION with and use when the input names none.
pub const LATEST: &str = "1.1.0";

/// Well-known error codes (CNI spec, "Well-known Error Codes"); 100+ are ours.
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const DECODE_FAILURE: u32 = 6;
    pub const INVALID_NETWORK_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const PLUGIN_NOT_AVAILABLE: u32 = 50;
    /// tortie: the requested address is taken.
    pub const ADDRESS_CONFLICT: u32 = 100;
    /// tortie: the node's pod block is full.
    pub const POOL_EXHAUSTED: u32 = 101;
    /// tortie: CHECK found the attachment differs from the ADD result.
    pub const CHECK_FAILED: u32 = 102;
    /// tortie: the agent failed internally.
    pub const AGENT_ERROR: u32 = 103;
}

/// A CNI error result: `{"cniVersion", "code", "msg", "details"}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("CNI error {code}: {msg}{}", details.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: Option<String>,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: None,
        }
    }
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }
    pub fn to_json(&self, cni_version: &str) -> String {
        let mut v = json!({ "cniVersion": cni_version, "code": self.code, "msg": self.msg });
        if let (Some(d), Some(o)) = (&self.details, v.as_object_mut()) {
            o.insert("details".into(), Value::String(d.clone()));
        }
        v.to_string()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

/// The `CNI_*` environment of one invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CniEnv {
    pub command: Command,
    pub container_id: Option<String>,
    /// Empty `CNI_NETNS` (ctr sends DEL so) is `None`.
    pub netns: Option<String>,
    pub ifname: Option<String>,
    /// `CNI_ARGS` as `KEY=VALUE` pairs (`IP=10.244.1.9` requests an address).
    pub args: BTreeMap<String, String>,
}

/// Reads the environment through `get` (`std::env::var` in the binary).
pub fn parse_env(get: impl Fn(&str) -> Option<String>) -> Result<CniEnv, CniError> {
    let nonempty = |k: &str| get(k).filter(|v| !v.is_empty());
    let command = match nonempty("CNI_COMMAND").as_deref() {
        Some("ADD") => Command::Add,
        Some("DEL") => Command::Del,
        Some("CHECK") => Command::Check,
        Some("VERSION") => Command::Version,
        Some("STATUS") => Command::Status,
        Some("GC") => Command::Gc,
        Some(other) => {
            return Err(CniError::new(
                code::INVALID_ENV,
                format!("unknown CNI_COMMAND {other:?}"),
            ));
        }
        None => return Err(CniError::new(code::INVALID_ENV, "CNI_COMMAND is not set")),
    };
    let mut args = BTreeMap::new();
    if let Some(raw) = nonempty("CNI_ARGS") {
        for pair in raw.split(';').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                CniError::new(
                    code::INVALID_ENV,
                    format!("CNI_ARGS: {pair:?} is not KEY=VALUE"),
                )
            })?;
            args.insert(k.to_string(), v.to_string());
        }
    }
    let env = CniEnv {
        command,
        container_id: nonempty("CNI_CONTAINERID"),
        netns: nonempty("CNI_NETNS"),
        ifname: nonempty("CNI_IFNAME"),
        args,
    };
    let need = |present: bool, name: &str| {
        if present {
            Ok(())
        } else {
            Err(CniError::new(
                code::INVALID_ENV,
                format!("{name} is required"),
            ))
        }
    };
    match command {
        Command::Add | Command::Check => {
            need(env.container_id.is_some(), "CNI_CONTAINERID")?;
            need(env.netns.is_some(), "CNI_NETNS")?;
            need(env.ifname.is_some(), "CNI_IFNAME")?;
        }
        Command::Del => {
            need(env.container_id.is_some(), "CNI_CONTAINERID")?;
            need(env.ifname.is_some(), "CNI_IFNAME")?;
        }
        Command::Version | Command::Status | Command::Gc => {}
    }
    Ok(env)
}

/// One entry of `cni.dev/valid-attachments` (GC).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ValidAttachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// The network config fields this plugin reads. Others (`args`,
/// `runtimeConfig`, `capabilities`, …) are allowed and ignored.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct NetConf {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub plugin_type: String,
    /// The agent's API socket the plugin connects to (`api::DEFAULT_SOCKET`
    /// when absent); checked here, used by the plugin only.
    #[serde(default)]
    pub socket: Option<String>,
    #[serde(rename = "prevResult", default)]
    pub prev_result: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments", default)]
    pub valid_attachments: Option<Vec<ValidAttachment>>,
}

/// Parses stdin. VERSION only needs `cniVersion`; every other command the
/// whole config.
pub fn parse_netconf(stdin: &[u8]) -> Result<NetConf, CniError> {
    let conf: NetConf = serde_json::from_slice(stdin).map_err(|e| {
        CniError::new(code::DECODE_FAILURE, "cannot decode the network config")
            .with_details(e.to_string())
    })?;
    if !SUPPORTED_VERSIONS.contains(&conf.cni_version.as_str()) {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!("cniVersion {:?} is not supported", conf.cni_version),
        )
        .with_details(format!("supported: {}", SUPPORTED_VERSIONS.join(", "))));
    }
    if conf.socket.as_deref().is_some_and(|s| s.is_empty()) {
        return Err(CniError::new(
            code::INVALID_NETWORK_CONFIG,
            "\"socket\" must not be empty",
        ));
    }
    Ok(conf)
}

/// The agent's attachment id for one container interface: unique per
/// `(container, ifname)`; the `/` marks it as the CNI plugin's (GC scope).
pub fn attachment_id(container_id: &str, ifname: &str) -> String {
    format!("{container_id}/{ifname}")
}

fn before_1_0(version: &str) -> bool {
    version.starts_with("0.")
}

/// The spec's Result for an attachment, in the config's `cniVersion`.
pub fn format_result(version: &str, a: &AttachResult) -> Value {
    let mut host = json!({ "name": a.host_ifname });
    if let Some(m) = &a.host_mac {
        host["mac"] = json!(m);
    }
    let mut cont = json!({ "name": a.container_ifname, "sandbox": a.netns });
    if let Some(m) = &a.container_mac {
        cont["mac"] = json!(m);
    }
    if let (Some(mtu), "1.1.0") = (a.mtu, version) {
        cont["mtu"] = json!(mtu);
    }
    // One IP and one default route per family (CNI spec 1.1 "ips" and
    // "routes"; before 1.0 each IP names its version).
    let mut ips = Vec::new();
    let mut routes = Vec::new();
    for (address, gateway) in addresses(a) {
        let v6 = address.contains(':');
        let mut ip = json!({ "address": address, "gateway": gateway, "interface": 1 });
        if before_1_0(version) {
            ip["version"] = json!(if v6 { "6" } else { "4" });
        }
        ips.push(ip);
        let dst = if v6 { "::/0" } else { "0.0.0.0/0" };
        routes.push(json!({ "dst": dst, "gw": gateway }));
    }
    json!({
        "cniVersion": version,
        "interfaces": [host, cont],
        "ips": ips,
        "routes": routes,
        "dns": {},
    })
}

/// Every (address/len, gateway) of an attachment, IPv4 first (an older
/// agent's answer: its one address).
fn addresses(a: &AttachResult) -> Vec<(String, String)> {
    if a.addresses.is_empty() {
        return vec![(format!("{}/{}", a.ip, a.prefix_len), a.gateway.clone())];
    }
    a.addresses
        .iter()
        .map(|c| (c.address.clone(), c.gateway.clone()))
        .collect()
}

/// The VERSION answer.
pub fn version_result() -> Value {
    json!({ "cniVersion": LATEST, "supportedVersions": SUPPORTED_VERSIONS })
}

/// The one table from the API's error kinds to CNI error codes.
impl From<ApiError> for CniError {
    fn from(api: ApiError) -> CniError {
        let c = match api.kind {
            ErrorKind::BadRequest => code::INVALID_NETWORK_CONFIG,
            ErrorKind::NotFound => code::UNKNOWN_CONTAINER,
            ErrorKind::Conflict => code::ADDRESS_CONFLICT,
            ErrorKind::Exhausted => code::POOL_EXHAUSTED,
            ErrorKind::Unavailable => code::TRY_AGAIN_LATER,
            ErrorKind::Internal => code::AGENT_ERROR,
        };
        CniError::new(c, api.message)
    }
}

/// CHECK: the addresses in `prevResult` must include every address of the
/// container (both families).
pub fn check_prev_result(prev: Option<&Value>, a: &AttachResult) -> Result<(), CniError> {
    let prev =
        prev.ok_or_else(|| CniError::new(code::INVALID_NETWORK_CONFIG, "CHECK needs prevResult"))?;
    let want: Vec<String> = addresses(a)
        .into_iter()
        .map(|(address, _)| address)
        .collect();
    let ips: Vec<&str> = prev
        .get("ips")
        .and_then(Value::as_array)
        .map(|ips| {
            ips.iter()
                .filter_map(|ip| ip.get("address").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    match want.iter().find(|w| !ips.contains(&w.as_str())) {
        None => Ok(()),
        Some(missing) => Err(CniError::new(
            code::CHECK_FAILED,
            format!("the container has {want:?}, prevResult says {ips:?} ({missing} is missing)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    pub(super) fn sample() -> AttachResult {
        AttachResult {
            id: "abc/eth0".into(),
            ip: "10.244.1.5".into(),
            prefix_len: 32,
            gateway: "169.254.1.1".into(),
            netns: "/run/netns/c1".into(),
            host_ifname: "tt0123456789a".into(),
            host_mac: Some("ee:ee:ee:ee:ee:ee".into()),
            container_ifname: "eth0".into(),
            container_mac: Some("02:00:00:00:00:01".into()),
            mtu: Some(1500),
            addresses: Vec::new(),
            advertised: false,
        }
    }

    #[test]
    fn add_needs_container_netns_and_ifname() {
        let e = parse_env(env_of(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "x"),
            ("CNI_IFNAME", "eth0"),
        ]))
        .unwrap_err();
        assert_eq!(e.code, code::INVALID_ENV);
        assert!(e.msg.contains("CNI_NETNS"));
    }

    #[test]
    fn del_accepts_an_empty_netns() {
        let env = parse_env(env_of(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "x"),
            ("CNI_NETNS", ""),
            ("CNI_IFNAME", "eth0"),
        ]))
        .unwrap();
        assert_eq!(env.command, Command::Del);
        assert_eq!(env.netns, None);
    }

    #[test]
    fn unknown_command_and_bad_args_are_invalid_env() {
        assert_eq!(
            parse_env(env_of(&[("CNI_COMMAND", "FOO")]))
                .unwrap_err()
                .code,
            code::INVALID_ENV
        );
        assert_eq!(parse_env(env_of(&[])).unwrap_err().code, code::INVALID_ENV);
        let e = parse_env(env_of(&[("CNI_COMMAND", "VERSION"), ("CNI_ARGS", "IP")])).unwrap_err();
        assert_eq!(e.code, code::INVALID_ENV);
        let ok = parse_env(env_of(&[
            ("CNI_COMMAND", "VERSION"),
            ("CNI_ARGS", "IgnoreUnknown=1;IP=10.0.0.9"),
        ]))
        .unwrap();
        assert_eq!(ok.args.get("IP").map(String::as_str), Some("10.0.0.9"));
    }

    #[test]
    fn netconf_versions_and_socket() {
        let c = parse_netconf(br#"{"cniVersion":"1.1.0","name":"tortie","type":"tortie","socket":"/tmp/t.sock","args":{"x":1}}"#)
            .unwrap();
        assert_eq!(c.socket.as_deref(), Some("/tmp/t.sock"));
        let c =
            parse_netconf(br#"{"cniVersion":"0.4.0","name":"tortie","type":"tortie"}"#).unwrap();
        assert_eq!(c.socket, None);
        assert_eq!(
            parse_netconf(br#"{"cniVersion":"9.9.9","name":"n","type":"tortie"}"#)
                .unwrap_err()
                .code,
            1
        );
        assert_eq!(
            parse_netconf(b"{not json").unwrap_err().code,
            code::DECODE_FAILURE
        );
        assert_eq!(
            parse_netconf(br#"{"cniVersion":"1.0.0","name":"n","type":"tortie","socket":""}"#)
                .unwrap_err()
                .code,
            code::INVALID_NETWORK_CONFIG
        );
    }

    #[test]
    fn gc_valid_attachments_parse() {
        let c = parse_netconf(
            br#"{"cniVersion":"1.1.0","name":"tortie","type":"tortie","cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]}"#,
        )
        .unwrap();
        assert_eq!(
            c.valid_attachments,
            Some(vec![ValidAttachment {
                container_id: "a".into(),
                ifname: "eth0".into()
            }])
        );
    }

    #[test]
    fn result_1_1_has_macs_sandbox_and_index() {
        let r = format_result("1.1.0", &sample());
        assert_eq!(r["cniVersion"], "1.1.0");
        assert_eq!(r["interfaces"][1]["sandbox"], "/run/netns/c1");
        assert_eq!(r["interfaces"][1]["mac"], "02:00:00:00:00:01");
        assert_eq!(r["interfaces"][0]["mac"], "ee:ee:ee:ee:ee:ee");
        assert_eq!(r["interfaces"][1]["mtu"], 1500);
        assert_eq!(r["ips"][0]["address"], "10.244.1.5/32");
        assert_eq!(r["ips"][0]["gateway"], "169.254.1.1");
        assert_eq!(r["ips"][0]["interface"], 1);
        assert!(r["ips"][0].get("version").is_none());
        assert_eq!(r["routes"][0]["dst"], "0.0.0.0/0");
        assert!(r["dns"].is_object());
    }

    #[test]
    fn result_0_4_has_ip_version_and_no_mtu() {
        let r = format_result("0.4.0", &sample());
        assert_eq!(r["ips"][0]["version"], "4");
        assert!(r["interfaces"][1].get("mtu").is_none());
    }

    #[test]
    fn error_json_shape() {
        let e = CniError::new(code::TRY_AGAIN_LATER, "agent down").with_details("ENOENT");
        let v: Value = serde_json::from_str(&e.to_json("1.0.0")).unwrap();
        assert_eq!(
            v,
            json!({"cniVersion":"1.0.0","code":11,"msg":"agent down","details":"ENOENT"})
        );
    }

    fn dual() -> AttachResult {
        let mut a = sample();
        a.addresses = vec![
            crate::api::ContainerAddress {
                address: "10.244.1.5/32".into(),
                gateway: "169.254.1.1".into(),
            },
            crate::api::ContainerAddress {
                address: "fd00:10:244:1::5/128".into(),
                gateway: "fe80::ecee:eeff:feee:eeee".into(),
            },
        ];
        a
    }

    /// CNI spec 1.1: one IP and one route per family, each with its gateway.
    #[test]
    fn dual_stack_result_has_both_ips_and_both_routes() {
        let r = format_result("1.1.0", &dual());
        assert_eq!(
            r["ips"],
            json!([
                {"address": "10.244.1.5/32", "gateway": "169.254.1.1", "interface": 1},
                {"address": "fd00:10:244:1::5/128", "gateway": "fe80::ecee:eeff:feee:eeee", "interface": 1},
            ])
        );
        assert_eq!(
            r["routes"],
            json!([
                {"dst": "0.0.0.0/0", "gw": "169.254.1.1"},
                {"dst": "::/0", "gw": "fe80::ecee:eeff:feee:eeee"},
            ])
        );
        assert_eq!(format_result("0.4.0", &dual())["ips"][1]["version"], "6");
        // CHECK wants both.
        let both = json!({"ips":[{"address":"fd00:10:244:1::5/128"},{"address":"10.244.1.5/32"}]});
        assert!(check_prev_result(Some(&both), &dual()).is_ok());
        let v4_only = json!({"ips":[{"address":"10.244.1.5/32"}]});
        let e = check_prev_result(Some(&v4_only), &dual()).unwrap_err();
        assert_eq!(e.code, code::CHECK_FAILED);
        assert!(
            e.msg.contains("fd00:10:244:1::5/128 is missing"),
            "{}",
            e.msg
        );
    }

    #[test]
    fn check_compares_prev_result() {
        let prev = json!({"ips":[{"address":"10.244.1.5/32","interface":1}]});
        assert!(check_prev_result(Some(&prev), &sample()).is_ok());
        let other = json!({"ips":[{"address":"10.244.1.6/32"}]});
        assert_eq!(
            check_prev_result(Some(&other), &sample()).unwrap_err().code,
            code::CHECK_FAILED
        );
        assert_eq!(
            check_prev_result(None, &sample()).unwrap_err().code,
            code::INVALID_NETWORK_CONFIG
        );
    }
}
