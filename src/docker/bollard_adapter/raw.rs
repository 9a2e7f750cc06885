//! Requests whose JSON must reach unroot, and go back to the daemon, exactly as the daemon
//! wrote it: a Swarm service's spec. bollard's typed models drop what they do not spell the
//! way the daemon does (the daemon writes `ContainerSpec.Healthcheck`, the models read
//! `HealthCheck`), and a restore that sent such a spec back would silently remove the
//! service's health check. So these few calls go over a plain HTTP client of their own, to
//! the same endpoint and with the same API version as bollard.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;

use super::super::DockerError;
use super::super::endpoint::Tls;
use super::super::ssh::SshConnector;

/// One HTTP client per kind of endpoint.
#[derive(Clone)]
enum Transport {
    Unix(Client<UnixConnector, Full<Bytes>>),
    Http(Client<HttpConnector, Full<Bytes>>),
    Https(Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>),
    Ssh(Client<SshConnector, Full<Bytes>>),
}

/// A raw JSON client for one daemon.
#[derive(Clone)]
pub struct Raw {
    transport: Transport,
    /// `http://docker` for a socket or ssh, else the daemon's `http(s)://host:port`.
    base: String,
    /// `1.41`: the version bollard negotiated.
    version: String,
    /// How long one request may take.
    timeout: std::time::Duration,
}

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raw").field("base", &self.base).field("version", &self.version).finish()
    }
}

/// Connects to a unix socket whatever the request's host.
#[derive(Clone, Debug)]
struct UnixConnector(Arc<str>);

impl tower_service::Service<Uri> for UnixConnector {
    type Response = TokioIo<tokio::net::UnixStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let path = Arc::clone(&self.0);
        Box::pin(async move { Ok(TokioIo::new(tokio::net::UnixStream::connect(&*path).await?)) })
    }
}

fn builder() -> hyper_util::client::legacy::Builder {
    Client::builder(TokioExecutor::new())
}

/// The client TLS of a context or `DOCKER_CERT_PATH`: the daemon must present a certificate
/// of `tls.ca`, and unroot presents `tls.cert` with `tls.key`.
fn tls_config(tls: &Tls) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read(&tls.ca)?) {
        roots.add(cert.map_err(|e| format!("{}: {e}", tls.ca.display()))?).map_err(|e| e.to_string())?;
    }
    let certs = CertificateDer::pem_slice_iter(&read(&tls.cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", tls.cert.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&read(&tls.key)?).map_err(|e| format!("{}: {e}", tls.key.display()))?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| e.to_string())
}

impl Raw {
    /// A client for `address` (`unix://`, `tcp://`, `http(s)://`), `tls` as the endpoint has
    /// it, speaking API `version`.
    ///
    /// Errors: the TLS files cannot be read or used; an address it does not know.
    pub fn new(address: &str, tls: Option<&Tls>, version: &str, timeout: u64) -> Result<Raw, String> {
        let (transport, base) = if let Some(path) = address.strip_prefix("unix://") {
            (Transport::Unix(builder().build(UnixConnector(Arc::from(path)))), "http://docker".to_string())
        } else {
            let hostport = address
                .strip_prefix("tcp://")
                .or_else(|| address.strip_prefix("https://"))
                .or_else(|| address.strip_prefix("http://"))
                .ok_or_else(|| format!("unsupported address {address}"))?
                .trim_end_matches('/');
            match tls {
                Some(tls) => {
                    let mut http = HttpConnector::new();
                    http.enforce_http(false);
                    let https = hyper_rustls::HttpsConnector::from((http, tls_config(tls)?));
                    (Transport::Https(builder().build(https)), format!("https://{hostport}"))
                }
                None => (Transport::Http(builder().build(HttpConnector::new())), format!("http://{hostport}")),
            }
        };
        Ok(Raw { transport, base, version: version.to_string(), timeout: std::time::Duration::from_secs(timeout) })
    }

    /// A client over the ssh connections of an `ssh://` endpoint.
    pub fn over_ssh(connector: SshConnector, version: &str, timeout: u64) -> Raw {
        Raw {
            transport: Transport::Ssh(builder().build(connector)),
            base: "http://docker".into(),
            version: version.to_string(),
            timeout: std::time::Duration::from_secs(timeout),
        }
    }

    /// `method path` with `body` as JSON; the answer's JSON as it came (`Null` for none).
    ///
    /// Errors: [`DockerError::NotFound`] for 404, [`DockerError::Conflict`] for 409, else
    /// [`DockerError::Api`] with the daemon's message; the transport's failure.
    pub async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, DockerError> {
        let uri = format!("{}/v{}{path}", self.base, self.version);
        let bytes = body.map(|b| Bytes::from(serde_json::to_vec(b).expect("JSON serializes"))).unwrap_or_default();
        let mut req = Request::builder().method(method).uri(&uri);
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(bytes)).map_err(|e| DockerError::Transport(e.to_string()))?;
        let transport = |e: hyper_util::client::legacy::Error| DockerError::Transport(format!("{uri}: {e}"));
        let exchange = async {
            let resp = match &self.transport {
                Transport::Unix(c) => c.request(req).await.map_err(transport)?,
                Transport::Http(c) => c.request(req).await.map_err(transport)?,
                Transport::Https(c) => c.request(req).await.map_err(transport)?,
                Transport::Ssh(c) => c.request(req).await.map_err(transport)?,
            };
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.map_err(|e| DockerError::Transport(e.to_string()))?;
            Ok::<_, DockerError>((status, body.to_bytes()))
        };
        // As bollard's requests: a daemon that stops answering is an error, not a hang.
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| DockerError::Transport(format!("{uri}: no answer within {}s", self.timeout.as_secs())))??;
        if (200..300).contains(&status) {
            return match body.is_empty() {
                true => Ok(Value::Null),
                false => serde_json::from_slice(&body)
                    .map_err(|e| DockerError::Transport(format!("{uri}: the answer is not JSON: {e}"))),
            };
        }
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let message = value["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        Err(match status {
            404 => DockerError::NotFound(message),
            409 => DockerError::Conflict(message),
            _ => DockerError::Api { status, message },
        })
    }
}
