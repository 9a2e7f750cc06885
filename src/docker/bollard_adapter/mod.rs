//! [`DockerPort`] on the real daemon, through bollard. The only module that names bollard.

use std::collections::HashMap;
use std::sync::Arc;

mod host;

use bollard::API_DEFAULT_VERSION;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, ContainerUpdateBody, NetworkConnectRequest};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, EventsOptions, InspectContainerOptions,
    ListContainersOptions, LogsOptions, RemoveContainerOptions, RenameContainerOptions, StopContainerOptions,
    TopOptions, UploadToContainerOptions, WaitContainerOptions,
};
use futures_util::StreamExt;
use serde_json::Value;

mod raw;
mod swarm;

use super::ssh::{SshConnector, SshTarget};
use super::{
    ContainerEvent, ContainerRef, DaemonInfo, DockerError, DockerPort, EventStream, Finished, Inspect, Process, Removal,
};

/// Seconds a single request may take before it counts as a failure.
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// The oldest API unroot speaks (Engine 20.10).
const MIN_API: crate::docker::ApiVersion = crate::docker::ApiVersion(1, 41);

/// The real daemon.
#[derive(Debug, Clone)]
pub struct BollardDocker {
    docker: Docker,
    /// The same daemon for the calls whose JSON must not pass through bollard's models.
    raw: raw::Raw,
    info: DaemonInfo,
}

/// The usual request timeout. Test builds can lower it (`UNROOT_TEST_REQUEST_TIMEOUT`) to
/// show that calls which wait on Docker for longer (a stop's grace) do not depend on it.
fn request_timeout_secs() -> u64 {
    #[cfg(feature = "failpoints")]
    if let Some(secs) = std::env::var("UNROOT_TEST_REQUEST_TIMEOUT").ok().and_then(|v| v.parse().ok()) {
        return secs;
    }
    REQUEST_TIMEOUT_SECS
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

impl BollardDocker {
    /// Finds the daemon as the docker CLI does (`--context`, `DOCKER_HOST` with
    /// `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`, `DOCKER_CONTEXT`, the current context; see
    /// [`super::endpoint::resolve`]), negotiates the API version and checks it.
    ///
    /// Errors: [`DockerError::UnknownContext`], [`DockerError::BadEndpoint`] or
    /// [`DockerError::Unreachable`] naming the
    /// endpoint tried and where it came from, or [`DockerError::TooOld`] for an API older
    /// than 1.41.
    pub async fn connect(context: Option<&str>) -> Result<BollardDocker, DockerError> {
        Self::connect_to(super::endpoint::resolve(context, &env_nonempty)?).await
    }

    /// Connects to an endpoint already decided (tests name their own daemon this way).
    ///
    /// Errors: as [`BollardDocker::connect`].
    pub async fn connect_to(endpoint: super::endpoint::Endpoint) -> Result<BollardDocker, DockerError> {
        let address = endpoint.host.clone();
        let named = format!("{} ({})", super::ssh::shown(&address), endpoint.origin);
        let unreachable = |reason: String| DockerError::Unreachable { address: named.clone(), reason };
        let bad = |reason: String| DockerError::BadEndpoint { address: named.clone(), reason };
        let mut ssh = None;
        let docker = if address.starts_with("unix://") {
            Docker::connect_with_unix(&address, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
        } else if address.starts_with("tcp://") || address.starts_with("https://") || address.starts_with("http://") {
            match &endpoint.tls {
                Some(tls) => Docker::connect_with_ssl(
                    &address,
                    &tls.key,
                    &tls.cert,
                    &tls.ca,
                    REQUEST_TIMEOUT_SECS,
                    API_DEFAULT_VERSION,
                ),
                None => Docker::connect_with_http(&address, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION),
            }
        } else if address.starts_with("ssh://") {
            let target = SshTarget::parse(&address).map_err(&bad)?;
            let connector = SshConnector::open(target).await.map_err(&unreachable)?;
            ssh = Some(connector.clone());
            over_ssh(connector)
        } else {
            return Err(bad("unsupported scheme; use unix://, tcp://, https:// or ssh://".into()));
        }
        .map_err(|e| unreachable(e.to_string()))?
        .with_timeout(std::time::Duration::from_secs(request_timeout_secs()));
        let docker = docker.negotiate_version().await.map_err(|e| unreachable(describe(&e)))?;
        let version = docker.version().await.map_err(|e| unreachable(describe(&e)))?;
        let api_version = version.api_version.unwrap_or_default();
        if !MIN_API.reached_by(&api_version) {
            return Err(DockerError::TooOld { address, version: api_version });
        }
        let info = docker.info().await.map_err(map_err)?;
        let remaps_users = info
            .security_options
            .unwrap_or_default()
            .iter()
            .any(|o| o.contains("name=userns") || o.contains("name=rootless"));
        let api_version = docker.client_version().to_string();
        let raw = match ssh {
            Some(connector) => raw::Raw::over_ssh(connector, &api_version, request_timeout_secs()),
            None => raw::Raw::new(&address, endpoint.tls.as_ref(), &api_version, request_timeout_secs())
                .map_err(&unreachable)?,
        };
        let info = DaemonInfo {
            address,
            api_version,
            server_version: version.version.unwrap_or_default(),
            remaps_users,
            id: info.id.unwrap_or_default(),
            name: info.name.unwrap_or_default(),
        };
        Ok(BollardDocker { docker, raw, info })
    }
}

/// A client for an `ssh://` endpoint: bollard's custom transport over a pooled hyper client
/// whose connections are ssh processes (see [`super::ssh`]).
fn over_ssh(connector: SshConnector) -> Result<Docker, BollardError> {
    let client = Arc::new(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build(connector),
    );
    Docker::connect_with_custom_transport(
        move |req: bollard::BollardRequest| {
            let client = Arc::clone(&client);
            async move { client.request(req).await.map_err(BollardError::from) }
        },
        Some("http://docker"),
        REQUEST_TIMEOUT_SECS,
        API_DEFAULT_VERSION,
    )
}

/// The innermost cause, which for a refused socket says "No such file or directory" or
/// "Connection refused" rather than a generic client error.
fn describe(e: &BollardError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    text
}

/// 304 Not Modified: the container already is where the call would put it.
fn not_modified_is_ok(r: Result<(), BollardError>) -> Result<(), DockerError> {
    match r {
        Err(BollardError::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
        other => other.map_err(map_err),
    }
}

fn from_json<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, DockerError> {
    serde_json::from_value(v).map_err(|e| DockerError::Transport(format!("building a request: {e}")))
}

/// Splits a log stream into stdout and stderr.
fn collect_output(out: &mut Finished, chunk: LogOutput) {
    match chunk {
        LogOutput::StdErr { message } => out.stderr.extend_from_slice(&message),
        LogOutput::StdOut { message } | LogOutput::Console { message } => out.stdout.extend_from_slice(&message),
        LogOutput::StdIn { .. } => {}
    }
}

fn map_err(e: BollardError) -> DockerError {
    match e {
        BollardError::DockerResponseServerError { status_code: 404, message } => DockerError::NotFound(message),
        BollardError::DockerResponseServerError { status_code: 409, message } => DockerError::Conflict(message),
        BollardError::DockerResponseServerError { status_code, message } => {
            DockerError::Api { status: status_code, message }
        }
        other => DockerError::Transport(describe(&other)),
    }
}

/// Maps a `ps` uid column to a number: digits as they are, `root` as 0.
fn uid_of(text: &str) -> Option<u32> {
    match text {
        "root" => Some(0),
        t => t.parse().ok(),
    }
}

impl DockerPort for BollardDocker {
    fn daemon(&self) -> &DaemonInfo {
        &self.info
    }

    async fn ping(&self) -> Result<(), DockerError> {
        self.docker.ping().await.map(|_| ()).map_err(map_err)
    }

    async fn list_containers(&self) -> Result<Vec<ContainerRef>, DockerError> {
        let opts = ListContainersOptions { all: true, ..Default::default() };
        let list = self.docker.list_containers(Some(opts)).await.map_err(map_err)?;
        Ok(list
            .into_iter()
            .map(|c| ContainerRef {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                volumes: c
                    .mounts
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|m| m.name)
                    .filter(|n| !n.is_empty())
                    .collect(),
                labels: c.labels.unwrap_or_default().into_iter().collect(),
                created: c.created.unwrap_or_default(),
            })
            .collect())
    }

    async fn inspect_container(&self, id: &str) -> Result<Inspect, DockerError> {
        let resp = self.docker.inspect_container(id, None::<InspectContainerOptions>).await.map_err(map_err)?;
        serde_json::to_value(resp).map(Inspect).map_err(|e| DockerError::Transport(e.to_string()))
    }

    async fn top(&self, id: &str) -> Result<Vec<Process>, DockerError> {
        // Numeric uids straight from ps; a `ps` that does not take -o falls back to -ef,
        // whose UID column holds names the host resolved.
        let numeric = TopOptions { ps_args: "-o pid,ppid,uid,args".into() };
        let resp = match self.docker.top_processes(id, Some(numeric)).await {
            Ok(r) => r,
            Err(BollardError::DockerResponseServerError { status_code: 500, .. }) => {
                self.docker.top_processes(id, Some(TopOptions::default())).await.map_err(map_err)?
            }
            Err(e) => return Err(map_err(e)),
        };
        let titles = resp.titles.unwrap_or_default();
        let col = |name: &str| titles.iter().position(|t| t.eq_ignore_ascii_case(name));
        let (Some(pid_col), Some(uid_col)) = (col("PID"), col("UID")) else {
            return Err(DockerError::Transport(format!("docker top gave no PID/UID columns: {titles:?}")));
        };
        let cmd_col = col("COMMAND").or_else(|| col("CMD")).unwrap_or(titles.len().saturating_sub(1));
        let ppid_col = col("PPID");
        Ok(resp
            .processes
            .unwrap_or_default()
            .into_iter()
            .filter_map(|row| {
                Some(Process {
                    pid: row.get(pid_col)?.parse().ok()?,
                    ppid: ppid_col.and_then(|c| row.get(c)?.parse().ok()).unwrap_or(0),
                    uid: row.get(uid_col).and_then(|u| uid_of(u)),
                    command: row.get(cmd_col).cloned().unwrap_or_default(),
                })
            })
            .collect())
    }

    async fn read_archive(&self, id: &str, path: &str, limit: usize) -> Result<Vec<u8>, DockerError> {
        let opts = DownloadFromContainerOptions { path: path.to_string() };
        let mut stream = self.docker.download_from_container(id, Some(opts));
        let mut out = Vec::new();
        while out.len() < limit {
            match stream.next().await {
                Some(Ok(chunk)) => out.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(map_err(e)),
                None => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn upload_archive(&self, id: &str, path: &str, tar: Vec<u8>) -> Result<(), DockerError> {
        let opts = UploadToContainerOptions { path: path.to_string(), ..Default::default() };
        self.docker
            .upload_to_container(id, Some(opts), bollard::body_full(bytes::Bytes::from(tar)))
            .await
            .map_err(map_err)
    }

    async fn inspect_image(&self, name: &str) -> Result<Value, DockerError> {
        let img = self.docker.inspect_image(name).await.map_err(map_err)?;
        serde_json::to_value(img).map_err(|e| DockerError::Transport(e.to_string()))
    }

    async fn create_container(&self, name: &str, body: Value) -> Result<String, DockerError> {
        let body: ContainerCreateBody = from_json(body)?;
        let opts = CreateContainerOptions { name: Some(name.to_string()), ..Default::default() };
        let resp = self.docker.create_container(Some(opts), body).await.map_err(map_err)?;
        Ok(resp.id)
    }

    async fn start_container(&self, id: &str) -> Result<(), DockerError> {
        not_modified_is_ok(
            self.docker.start_container(id, None::<bollard::query_parameters::StartContainerOptions>).await,
        )
    }

    async fn stop_container(&self, id: &str, timeout_secs: u64) -> Result<(), DockerError> {
        let t = i32::try_from(timeout_secs).unwrap_or(i32::MAX);
        let opts = StopContainerOptions { t: Some(t), signal: None };
        // The answer comes once the container has stopped: after up to the whole grace.
        let wait = std::time::Duration::from_secs(timeout_secs.saturating_add(REQUEST_TIMEOUT_SECS));
        let docker = self.docker.clone().with_timeout(wait.max(self.docker.timeout()));
        not_modified_is_ok(docker.stop_container(id, Some(opts)).await)
    }

    async fn rename_container(&self, id: &str, new_name: &str) -> Result<(), DockerError> {
        let opts = RenameContainerOptions { name: new_name.to_string() };
        self.docker.rename_container(id, opts).await.map_err(map_err)
    }

    async fn set_restart_policy(&self, id: &str, policy: Value) -> Result<(), DockerError> {
        let body = ContainerUpdateBody { restart_policy: Some(from_json(policy)?), ..Default::default() };
        self.docker.update_container(id, body).await.map_err(map_err)
    }

    async fn remove_container(&self, id: &str, what: Removal) -> Result<(), DockerError> {
        // `v` removes only anonymous volumes; named volumes and binds are never touched.
        let opts = RemoveContainerOptions { v: what == Removal::WithAnonymousVolumes, force: true, link: false };
        self.docker.remove_container(id, Some(opts)).await.map_err(map_err)
    }

    async fn connect_network(&self, network: &str, id: &str, endpoint: Value) -> Result<(), DockerError> {
        let req = NetworkConnectRequest { container: id.to_string(), endpoint_config: Some(from_json(endpoint)?) };
        self.docker.connect_network(network, req).await.map_err(map_err)
    }

    async fn container_events(&self, id: &str) -> Result<EventStream, DockerError> {
        // The request is only sent when the stream is first polled, so replay from the
        // daemon's own "now" (its clock, not ours): nothing between subscribing and the
        // first poll is lost, and nothing older is replayed.
        let info = self.docker.info().await.map_err(map_err)?;
        let since = info
            .system_time
            .and_then(|t| time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok())
            .map(|t| format!("{}.{:09}", t.unix_timestamp(), t.nanosecond()));
        let filters = HashMap::from([
            ("container".to_string(), vec![id.to_string()]),
            ("type".to_string(), vec!["container".to_string()]),
        ]);
        let opts = EventsOptions { since, until: None, filters: Some(filters) };
        let stream = self.docker.events(Some(opts)).map(|r| {
            r.map(|m| ContainerEvent {
                action: m.action.unwrap_or_default(),
                id: m.actor.and_then(|a| a.id).unwrap_or_default(),
            })
            .map_err(map_err)
        });
        Ok(Box::pin(stream))
    }

    async fn exec(&self, id: &str, cmd: &[String], limit: std::time::Duration) -> Result<Finished, DockerError> {
        let opts = CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(cmd.to_vec()),
            ..Default::default()
        };
        let exec = self.docker.create_exec(id, opts).await.map_err(map_err)?;
        let run = async {
            let mut out = Finished::default();
            match self.docker.start_exec(&exec.id, None).await.map_err(map_err)? {
                StartExecResults::Attached { mut output, .. } => {
                    while let Some(chunk) = output.next().await {
                        collect_output(&mut out, chunk.map_err(map_err)?);
                    }
                }
                StartExecResults::Detached => {}
            }
            let inspect = self.docker.inspect_exec(&exec.id).await.map_err(map_err)?;
            out.exit_code = inspect.exit_code.unwrap_or(-1);
            Ok(out)
        };
        match tokio::time::timeout(limit, run).await {
            Ok(done) => done,
            Err(_) => {
                // Docker has no call that ends an exec: kill its process tree by its host pid.
                let seen = self.docker.inspect_exec(&exec.id).await.ok();
                let pid = seen.as_ref().and_then(|i| i.pid);
                let container = seen.as_ref().and_then(|i| i.container_id.clone()).unwrap_or_default();
                let local = self.info.address.starts_with("unix://");
                let killed = pid.is_some_and(|p| local && host::kill_tree(p, &container));
                if !killed {
                    tracing::warn!(container = %id, pid = ?pid, "an exec outlived its limit and could not be killed from here (the daemon is not on this host)");
                }
                Ok(Finished {
                    exit_code: super::EXEC_TIMED_OUT,
                    stdout: Vec::new(),
                    stderr: format!("timed out after {}s{}", limit.as_secs_f32(), if killed { "; killed" } else { "" })
                        .into_bytes(),
                })
            }
        }
    }

    async fn wait_container(&self, id: &str) -> Result<Finished, DockerError> {
        let mut waits = self.docker.wait_container(id, None::<WaitContainerOptions>);
        let exit_code = match waits.next().await {
            Some(Ok(r)) => r.status_code,
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(map_err(e)),
            None => {
                return Err(DockerError::Transport(format!("waiting for {id}: no answer")));
            }
        };
        let opts = LogsOptions { stdout: true, stderr: true, ..Default::default() };
        let mut logs = self.docker.logs(id, Some(opts));
        let mut out = Finished { exit_code, ..Default::default() };
        while let Some(chunk) = logs.next().await {
            collect_output(&mut out, chunk.map_err(map_err)?);
        }
        Ok(out)
    }

    async fn logs(&self, id: &str, lines: usize) -> Result<Vec<u8>, DockerError> {
        let opts = LogsOptions { stdout: true, stderr: true, tail: lines.to_string(), ..Default::default() };
        let mut logs = self.docker.logs(id, Some(opts));
        let mut out = Vec::new();
        while let Some(chunk) = logs.next().await {
            out.extend_from_slice(&chunk.map_err(map_err)?.into_bytes());
        }
        Ok(out)
    }

    async fn changes(&self, id: &str) -> Result<Vec<String>, DockerError> {
        let changes = self.docker.container_changes(id).await.map_err(map_err)?;
        Ok(changes.unwrap_or_default().into_iter().map(|c| c.path).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_column() {
        assert_eq!(uid_of("0"), Some(0));
        assert_eq!(uid_of("root"), Some(0));
        assert_eq!(uid_of("999"), Some(999));
        assert_eq!(uid_of("redis"), None);
    }
}
