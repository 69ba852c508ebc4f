//! The local API client used by `tortie` (CLI): one hyper HTTP/1.1
//! connection over a tokio `UnixStream` per call.
//!
//! Data flow: a typed request is encoded as JSON, sent, and the answer decoded
//! into the typed result or the server's [`ApiError`]. Failing to reach the
//! socket is its own error ([`ClientError::Unreachable`]) so the CLI can say
//! "is `tortie run` running?".

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use super::{
    ApiError, AttachRequest, AttachResult, CheckRequest, DetachRequest, DetachResult, GcRequest,
    GcResult, Health, PeerView, RouteView, StatusView,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the tortie agent at {path}: {source} — is `tortie run` running?")]
    Unreachable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("talking to the tortie agent at {path}: {message}")]
    Protocol { path: PathBuf, message: String },
    #[error("the tortie agent did not answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Api(#[from] ApiError),
}

/// A client for one socket path.
#[derive(Clone, Debug)]
pub struct Client {
    path: PathBuf,
    timeout: Duration,
}

impl Client {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Client {
            path: path.into(),
            timeout: Duration::from_secs(60),
        }
    }
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn health(&self) -> Result<Health, ClientError> {
        self.call(Method::GET, "/v1/health", None::<&()>).await
    }
    pub async fn status(&self) -> Result<StatusView, ClientError> {
        self.call(Method::GET, "/v1/status", None::<&()>).await
    }
    pub async fn peers(&self) -> Result<Vec<PeerView>, ClientError> {
        self.call(Method::GET, "/v1/peers", None::<&()>).await
    }
    pub async fn routes(&self) -> Result<Vec<RouteView>, ClientError> {
        self.call(Method::GET, "/v1/routes", None::<&()>).await
    }
    /// Every path of one prefix, filtered ones included.
    pub async fn route(&self, prefix: &str) -> Result<Vec<RouteView>, ClientError> {
        let path = format!("/v1/routes/{prefix}");
        self.call(Method::GET, &path, None::<&()>).await
    }
    /// Every prefix with a path refused on import.
    pub async fn filtered_routes(&self) -> Result<Vec<RouteView>, ClientError> {
        self.call(Method::GET, "/v1/routes/filtered", None::<&()>)
            .await
    }
    pub async fn attach(&self, req: &AttachRequest) -> Result<AttachResult, ClientError> {
        self.call(Method::POST, "/v1/attach", Some(req)).await
    }
    pub async fn detach(&self, req: &DetachRequest) -> Result<DetachResult, ClientError> {
        self.call(Method::POST, "/v1/detach", Some(req)).await
    }
    pub async fn check(&self, req: &CheckRequest) -> Result<AttachResult, ClientError> {
        self.call(Method::POST, "/v1/check", Some(req)).await
    }
    pub async fn gc(&self, req: &GcRequest) -> Result<GcResult, ClientError> {
        self.call(Method::POST, "/v1/gc", Some(req)).await
    }

    async fn call<Q: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        uri: &str,
        body: Option<&Q>,
    ) -> Result<R, ClientError> {
        match tokio::time::timeout(self.timeout, self.call_inner(method, uri, body)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout(self.timeout)),
        }
    }

    async fn call_inner<Q: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        uri: &str,
        body: Option<&Q>,
    ) -> Result<R, ClientError> {
        let proto = |message: String| ClientError::Protocol {
            path: self.path.clone(),
            message,
        };
        let stream =
            UnixStream::connect(&self.path)
                .await
                .map_err(|source| ClientError::Unreachable {
                    path: self.path.clone(),
                    source,
                })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| proto(format!("HTTP handshake: {e}")))?;
        let conn_task = tokio::spawn(conn);
        let payload = match body {
            Some(b) => {
                serde_json::to_vec(b).map_err(|e| proto(format!("encoding request: {e}")))?
            }
            None => Vec::new(),
        };
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(hyper::header::HOST, "tortie")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| proto(format!("building request: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| proto(format!("sending request: {e}")))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| proto(format!("reading response: {e}")))?
            .to_bytes();
        conn_task.abort();
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| proto(format!("decoding response: {e}")))
        } else {
            match serde_json::from_slice::<ApiError>(&bytes) {
                Ok(e) => Err(ClientError::Api(e)),
                Err(_) => Err(proto(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes)
                ))),
            }
        }
    }
}
