//! One CNI invocation, from its inputs (environment, network config) to what
//! the plugin prints on stdout and its exit status ([`Output`]).
//!
//! Data flow: the agent's `POST /v1/cni` hands its body to [`serve`], which
//! splits it ([`super::parse_body`]) and runs [`invoke`] over the API's
//! [`Backend`]: the same calls the `/v1/attach`, `/v1/detach`, `/v1/check`
//! and `/v1/gc` handlers make, in the agent's process. [`invoke`] is generic
//! over [`Calls`] so the old plugin path ([`run`]: the blocking API client,
//! in the plugin's process) runs the same commands until the plugin is only
//! a transport. Errors map to CNI codes through one table
//! (`From<ApiError> for CniError`).

use std::future::Future;
use std::task::{Context, Poll, Waker};

use super::{
    CniEnv, CniError, Command, LATEST, NetConf, attachment_id, before_1_0, check_prev_result, code,
    format_result, from_client_error, parse_env, parse_netconf, version_result,
};
use crate::api::blocking::BlockingClient;
use crate::api::client::ClientError;
use crate::api::{
    ApiError, AttachRequest, AttachResult, Backend, CheckRequest, DetachRequest, GcRequest,
};

/// What a CNI command needs from the agent.
pub trait Calls {
    type Error: std::fmt::Display;
    fn attach(
        &self,
        req: AttachRequest,
    ) -> impl Future<Output = Result<AttachResult, Self::Error>> + Send;
    fn detach(&self, req: DetachRequest) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn check(
        &self,
        req: CheckRequest,
    ) -> impl Future<Output = Result<AttachResult, Self::Error>> + Send;
    fn gc(&self, req: GcRequest) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Whether the agent serves (STATUS).
    fn health(&self) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// The CNI error for a failed call.
    fn cni_error(e: Self::Error) -> CniError;
}

/// In the agent: the API's backend itself.
impl<B: Backend> Calls for &B {
    type Error = ApiError;
    async fn attach(&self, req: AttachRequest) -> Result<AttachResult, ApiError> {
        (**self).attach(req).await
    }
    async fn detach(&self, req: DetachRequest) -> Result<(), ApiError> {
        (**self).detach(req).await.map(drop)
    }
    async fn check(&self, req: CheckRequest) -> Result<AttachResult, ApiError> {
        (**self).check(req).await
    }
    async fn gc(&self, req: GcRequest) -> Result<(), ApiError> {
        (**self).gc(req).await.map(drop)
    }
    /// The agent is answering this request: it serves (as `/v1/health`,
    /// which asks the backend nothing either).
    async fn health(&self) -> Result<(), ApiError> {
        Ok(())
    }
    fn cni_error(e: ApiError) -> CniError {
        e.into()
    }
}

/// In the old plugin: the blocking API client (no futures ever wait).
impl Calls for BlockingClient {
    type Error = ClientError;
    async fn attach(&self, req: AttachRequest) -> Result<AttachResult, ClientError> {
        BlockingClient::attach(self, &req)
    }
    async fn detach(&self, req: DetachRequest) -> Result<(), ClientError> {
        BlockingClient::detach(self, &req).map(drop)
    }
    async fn check(&self, req: CheckRequest) -> Result<AttachResult, ClientError> {
        BlockingClient::check(self, &req)
    }
    async fn gc(&self, req: GcRequest) -> Result<(), ClientError> {
        BlockingClient::gc(self, &req).map(drop)
    }
    async fn health(&self) -> Result<(), ClientError> {
        BlockingClient::health(self).map(drop)
    }
    fn cni_error(e: ClientError) -> CniError {
        from_client_error(e)
    }
}

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
        Ok((env, conf)) => invoke(|_| backend, |k| env.get(k).cloned(), Ok(conf)).await,
        Err(e) => Output::error(&e, LATEST),
    }
}

/// Runs one invocation: `get` reads the environment, `stdin` is the network
/// config (or the error reading it), `agent` gives the calls for a config.
/// Errors before the config is parsed are in [`LATEST`]'s format, later ones
/// in the config's `cniVersion`.
pub async fn invoke<C: Calls>(
    agent: impl FnOnce(&NetConf) -> C,
    get: impl Fn(&str) -> Option<String>,
    stdin: Result<&[u8], &std::io::Error>,
) -> Output {
    let env = match parse_env(get) {
        Ok(e) => e,
        Err(e) => return Output::error(&e, LATEST),
    };
    let stdin = match stdin {
        Ok(s) => s,
        Err(e) => {
            let err = CniError::new(
                code::IO_FAILURE,
                "reading the network config from stdin failed",
            );
            return Output::error(&err.with_details(e.to_string()), LATEST);
        }
    };
    if env.command == Command::Version {
        // VERSION answers whatever the caller's version is.
        return Output::ok(Some(version_result().to_string()));
    }
    let conf = match parse_netconf(stdin) {
        Ok(c) => c,
        Err(e) => return Output::error(&e, LATEST),
    };
    match command(&agent(&conf), &env, &conf).await {
        Ok(out) => Output::ok(out),
        Err(e) => Output::error(&e, &conf.cni_version),
    }
}

/// Runs one command in the old plugin (blocking client, no runtime).
/// `Ok(Some(json))` is printed on stdout; `Ok(None)` prints nothing.
pub fn run(env: &CniEnv, conf: &NetConf) -> Result<Option<String>, CniError> {
    block_on(command(&BlockingClient::new(conf.socket()), env, conf))
}

/// Polls a future that never waits (the blocking client's) to its end.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// One command (not VERSION's early answer): `Ok(Some(json))` for ADD and
/// VERSION, `Ok(None)` for DEL, CHECK, STATUS and GC.
async fn command<C: Calls>(
    agent: &C,
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
            let a = agent.attach(req).await.map_err(C::cni_error)?;
            Ok(Some(format_result(&conf.cni_version, &a).to_string()))
        }
        Command::Del => {
            agent
                .detach(DetachRequest { id: id() })
                .await
                .map_err(C::cni_error)?;
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
            let a = agent.check(req).await.map_err(C::cni_error)?;
            check_prev_result(conf.prev_result.as_ref(), &a)?;
            Ok(None)
        }
        Command::Status => match agent.health().await {
            Ok(()) => Ok(None),
            Err(e) => Err(CniError::new(
                code::PLUGIN_NOT_AVAILABLE,
                "the tortie agent is not reachable",
            )
            .with_details(e.to_string())),
        },
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
            agent
                .gc(GcRequest { valid_ids })
                .await
                .map_err(C::cni_error)?;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::SUPPORTED_VERSIONS;

    /// The calls of an agent that has one attachment.
    struct One(AttachResult);

    impl Calls for One {
        type Error = ApiError;
        async fn attach(&self, _: AttachRequest) -> Result<AttachResult, ApiError> {
            Ok(self.0.clone())
        }
        async fn detach(&self, _: DetachRequest) -> Result<(), ApiError> {
            Ok(())
        }
        async fn check(&self, _: CheckRequest) -> Result<AttachResult, ApiError> {
            Ok(self.0.clone())
        }
        async fn gc(&self, _: GcRequest) -> Result<(), ApiError> {
            Ok(())
        }
        async fn health(&self) -> Result<(), ApiError> {
            Ok(())
        }
        fn cni_error(e: ApiError) -> CniError {
            e.into()
        }
    }

    fn call(cmd: &str, conf: &str) -> Output {
        let env = |k: &str| {
            let v = match k {
                "CNI_COMMAND" => cmd,
                "CNI_CONTAINERID" => "c1",
                "CNI_NETNS" => "/run/netns/c1",
                "CNI_IFNAME" => "eth0",
                _ => return None,
            };
            Some(v.to_string())
        };
        let one = |_: &NetConf| One(crate::cni::tests::sample());
        block_on(invoke(one, env, Ok(conf.as_bytes())))
    }

    fn error_code(out: &Output) -> (u8, serde_json::Value) {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.exit, v["code"].clone())
    }

    #[test]
    fn add_answers_in_the_configs_version() {
        for v in SUPPORTED_VERSIONS {
            let out = call("ADD", &format!(r#"{{"cniVersion":"{v}","name":"t"}}"#));
            let want = format!("{}\n", format_result(v, &crate::cni::tests::sample()));
            assert_eq!(out.exit, 0, "{v}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{v}");
            assert_eq!(out.to_body(), [b"0\n", want.as_bytes()].concat(), "{v}");
        }
    }

    #[test]
    fn version_rules_and_config_errors() {
        let prev = r#"{"cniVersion":"0.3.1","name":"t","prevResult":{}}"#;
        assert_eq!(error_code(&call("ADD", prev)), (1, 2.into()));
        let old = r#"{"cniVersion":"0.3.1","name":"t"}"#;
        assert_eq!(error_code(&call("CHECK", old)), (1, 1.into()));
        let no_prev = r#"{"cniVersion":"1.1.0","name":"t"}"#;
        assert_eq!(error_code(&call("CHECK", no_prev)), (1, 7.into()));
        assert_eq!(error_code(&call("GC", no_prev)), (1, 7.into()));
        let ok = format!(
            r#"{{"cniVersion":"1.1.0","name":"t","prevResult":{}}}"#,
            format_result("1.1.0", &crate::cni::tests::sample())
        );
        assert_eq!(call("CHECK", &ok), Output::ok(None));
        assert_eq!(call("DEL", no_prev).to_body(), b"0\n");
    }

    #[test]
    fn a_stdin_error_is_an_io_failure_after_env_errors() {
        let one = |_: &NetConf| One(crate::cni::tests::sample());
        let err = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let get = |k: &str| (k == "CNI_COMMAND").then(|| "STATUS".to_string());
        let out = block_on(invoke(one, get, Err(&err)));
        assert_eq!(error_code(&out), (1, 5.into()));
        let out = block_on(invoke(one, |_| None, Err(&err)));
        assert_eq!(error_code(&out), (1, 4.into()));
    }
}
