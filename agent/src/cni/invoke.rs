//! One CNI invocation, from the plugin's request to what the plugin prints
//! on stdout and its exit status ([`Output`]).
//!
//! Data flow: the agent's `POST /v1/cni` hands its body to [`serve`], which
//! splits it ([`super::parse_body`]), reads the environment and the config
//! ([`super::parse_env`], [`super::parse_netconf`]) and runs the command on
//! the API's [`Backend`]: the calls the `/v1/attach`, `/v1/detach`,
//! `/v1/check` and `/v1/gc` handlers make, in the agent's process. Errors map
//! to CNI codes through one table (`From<ApiError> for CniError`).

use std::collections::BTreeMap;

use super::{
    CniEnv, CniError, Command, LATEST, NetConf, attachment_id, before_1_0, check_prev_result, code,
    format_result, parse_env, parse_netconf, version_result,
};
use crate::api::{AttachRequest, Backend, CheckRequest, DetachRequest, GcRequest};

/// What the plugin prints on stdout and its exit status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub exit: u8,
    pub stdout: Vec<u8>,
}

impl Output {
    fn ok(text: Option<String>) -> Output {
        Output {
            exit: 0,
            stdout: text
                .map(|t| format!("{t}\n").into_bytes())
                .unwrap_or_default(),
        }
    }
    /// The error JSON in `version` (the config's, or [`LATEST`] before the
    /// config is known) and exit status 1.
    pub fn error(e: &CniError, version: &str) -> Output {
        Output {
            exit: 1,
            stdout: format!("{}\n", e.to_json(version)).into_bytes(),
        }
    }
    /// The `/v1/cni` answer: the exit status in decimal, `\n`, stdout.
    pub fn to_body(&self) -> Vec<u8> {
        let mut b = format!("{}\n", self.exit).into_bytes();
        b.extend_from_slice(&self.stdout);
        b
    }
}

/// `POST /v1/cni`: one invocation sent by the plugin, run on `backend`.
pub async fn serve<B: Backend>(backend: &B, body: &[u8]) -> Output {
    match super::parse_body(body) {
        Ok((env, conf)) => invoke(backend, &env, conf).await,
        Err(e) => Output::error(&e, LATEST),
    }
}

/// Runs one invocation: `env` is the plugin's environment, `stdin` the
/// network config. Errors before the config is parsed are in [`LATEST`]'s
/// format, later ones in the config's `cniVersion`.
pub async fn invoke<B: Backend>(
    backend: &B,
    env: &BTreeMap<String, String>,
    stdin: &[u8],
) -> Output {
    let env = match parse_env(|k| env.get(k).cloned()) {
        Ok(e) => e,
        Err(e) => return Output::error(&e, LATEST),
    };
    if env.command == Command::Version {
        // VERSION answers whatever the caller's version is.
        return Output::ok(Some(version_result().to_string()));
    }
    let conf = match parse_netconf(stdin) {
        Ok(c) => c,
        Err(e) => return Output::error(&e, LATEST),
    };
    match command(backend, &env, &conf).await {
        Ok(out) => Output::ok(out),
        Err(e) => Output::error(&e, &conf.cni_version),
    }
}

/// One command (not VERSION's early answer): `Ok(Some(json))` for ADD and
/// VERSION, `Ok(None)` for DEL, CHECK, STATUS and GC.
async fn command<B: Backend>(
    backend: &B,
    env: &CniEnv,
    conf: &NetConf,
) -> Result<Option<String>, CniError> {
    let id = || {
        attachment_id(
            env.container_id.as_deref().unwrap_or_default(),
            env.ifname.as_deref().unwrap_or_default(),
        )
    };
    match env.command {
        Command::Version => Ok(Some(version_result().to_string())),
        Command::Add => {
            if before_1_0(&conf.cni_version)
                && conf.cni_version != "0.4.0"
                && conf.prev_result.is_some()
            {
                return Err(CniError::new(
                    code::UNSUPPORTED_FIELD,
                    "prevResult is not supported before 0.4.0",
                ));
            }
            let req = AttachRequest {
                id: id(),
                netns: env.netns.clone().unwrap_or_default(),
                ifname: env.ifname.clone(),
                ip: env.args.get("IP").cloned(),
            };
            let a = backend.attach(req).await?;
            Ok(Some(format_result(&conf.cni_version, &a).to_string()))
        }
        Command::Del => {
            backend.detach(DetachRequest { id: id() }).await?;
            Ok(None)
        }
        Command::Check => {
            if before_1_0(&conf.cni_version) && conf.cni_version != "0.4.0" {
                return Err(CniError::new(
                    code::INCOMPATIBLE_VERSION,
                    format!("CHECK is not defined for cniVersion {}", conf.cni_version),
                ));
            }
            let req = CheckRequest {
                id: id(),
                netns: env.netns.clone(),
            };
            let a = backend.check(req).await?;
            check_prev_result(conf.prev_result.as_ref(), &a)?;
            Ok(None)
        }
        // The agent answering is the agent serving (the plugin answers 50
        // when it cannot reach it), as `GET /v1/health` says.
        Command::Status => Ok(None),
        Command::Gc => {
            let valid = conf.valid_attachments.as_ref().ok_or_else(|| {
                CniError::new(
                    code::INVALID_NETWORK_CONFIG,
                    "GC needs cni.dev/valid-attachments",
                )
            })?;
            let valid_ids = valid
                .iter()
                .map(|v| attachment_id(&v.container_id, &v.ifname))
                .collect();
            backend.gc(GcRequest { valid_ids }).await?;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        ApiError, AttachResult, DetachResult, GcResult, RouteView, RoutesQuery, StatusView,
    };
    use crate::cni::SUPPORTED_VERSIONS;

    /// A backend with one attachment (status and routes are not CNI's).
    struct One;

    impl Backend for One {
        async fn status(&self) -> Result<StatusView, ApiError> {
            Ok(StatusView::default())
        }
        async fn routes(&self, _: RoutesQuery) -> Result<Vec<RouteView>, ApiError> {
            Ok(Vec::new())
        }
        async fn attach(&self, _: AttachRequest) -> Result<AttachResult, ApiError> {
            Ok(crate::cni::tests::sample())
        }
        async fn detach(&self, req: DetachRequest) -> Result<DetachResult, ApiError> {
            Ok(DetachResult {
                id: req.id,
                ..Default::default()
            })
        }
        async fn check(&self, _: CheckRequest) -> Result<AttachResult, ApiError> {
            Ok(crate::cni::tests::sample())
        }
        async fn gc(&self, _: GcRequest) -> Result<GcResult, ApiError> {
            Ok(GcResult::default())
        }
    }

    async fn call(cmd: &str, conf: &str) -> Output {
        let env = [
            ("CNI_COMMAND", cmd),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/run/netns/c1"),
            ("CNI_IFNAME", "eth0"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        invoke(&One, &BTreeMap::from(env), conf.as_bytes()).await
    }

    fn error_code(out: &Output) -> (u8, serde_json::Value) {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.exit, v["code"].clone())
    }

    #[tokio::test]
    async fn add_answers_in_the_configs_version() {
        for v in SUPPORTED_VERSIONS {
            let out = call("ADD", &format!(r#"{{"cniVersion":"{v}","name":"t"}}"#)).await;
            let want = format!("{}\n", format_result(v, &crate::cni::tests::sample()));
            assert_eq!(out.exit, 0, "{v}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{v}");
            assert_eq!(out.to_body(), [b"0\n", want.as_bytes()].concat(), "{v}");
        }
    }

    #[tokio::test]
    async fn version_rules_and_config_errors() {
        let prev = r#"{"cniVersion":"0.3.1","name":"t","prevResult":{}}"#;
        assert_eq!(error_code(&call("ADD", prev).await), (1, 2.into()));
        let old = r#"{"cniVersion":"0.3.1","name":"t"}"#;
        assert_eq!(error_code(&call("CHECK", old).await), (1, 1.into()));
        let no_prev = r#"{"cniVersion":"1.1.0","name":"t"}"#;
        assert_eq!(error_code(&call("CHECK", no_prev).await), (1, 7.into()));
        assert_eq!(error_code(&call("GC", no_prev).await), (1, 7.into()));
        let ok = format!(
            r#"{{"cniVersion":"1.1.0","name":"t","prevResult":{}}}"#,
            format_result("1.1.0", &crate::cni::tests::sample())
        );
        assert_eq!(call("CHECK", &ok).await, Output::ok(None));
        assert_eq!(call("DEL", no_prev).await.to_body(), b"0\n");
        assert_eq!(call("STATUS", no_prev).await.to_body(), b"0\n");
    }
}
