//! [`DockerPort`] on the real daemon, through bollard. The only module that names bollard.

use std::path::PathBuf;

use bollard::API_DEFAULT_VERSION;
use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    DownloadFromContainerOptions, InspectContainerOptions, ListContainersOptions, TopOptions,
};
use futures_util::StreamExt;

use super::{ContainerRef, DaemonInfo, DockerError, DockerPort, Inspect, Process};

/// Seconds a single request may take before it counts as a failure.
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// The socket the docker CLI uses when `DOCKER_HOST` is not set.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// The oldest API unroot speaks (Engine 20.10).
const MIN_API: (u32, u32) = (1, 41);

/// The real daemon.
#[derive(Debug, Clone)]
pub struct BollardDocker {
    docker: Docker,
    info: DaemonInfo,
}

fn api_tuple(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

impl BollardDocker {
    /// Finds the daemon as the docker CLI does (`DOCKER_HOST`; for tcp:// with
    /// `DOCKER_TLS_VERIFY` set, TLS with the certificates in `DOCKER_CERT_PATH` or
    /// `~/.docker`; else the local socket), negotiates the API version and checks it.
    ///
    /// Errors: [`DockerError::Unreachable`] naming the address tried, or
    /// [`DockerError::TooOld`] for an API older than 1.41.
    pub async fn connect() -> Result<BollardDocker, DockerError> {
        let address = env_nonempty("DOCKER_HOST").unwrap_or_else(|| DEFAULT_HOST.to_string());
        let unreachable = |reason: String| DockerError::Unreachable {
            address: address.clone(),
            reason,
        };
        let docker = if address.starts_with("unix://") {
            Docker::connect_with_unix(&address, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
        } else if address.starts_with("tcp://")
            || address.starts_with("https://")
            || address.starts_with("http://")
        {
            let tls =
                env_nonempty("DOCKER_TLS_VERIFY").is_some() || address.starts_with("https://");
            if tls {
                let dir = env_nonempty("DOCKER_CERT_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                            .join(".docker")
                    });
                Docker::connect_with_ssl(
                    &address,
                    &dir.join("key.pem"),
                    &dir.join("cert.pem"),
                    &dir.join("ca.pem"),
                    REQUEST_TIMEOUT_SECS,
                    API_DEFAULT_VERSION,
                )
            } else {
                Docker::connect_with_http(&address, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
            }
        } else {
            return Err(unreachable(
                "unsupported scheme; use unix://, tcp:// or https://".into(),
            ));
        }
        .map_err(|e| unreachable(e.to_string()))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(describe(&e)))?;
        let version = docker
            .version()
            .await
            .map_err(|e| unreachable(describe(&e)))?;
        let api_version = version.api_version.unwrap_or_default();
        if api_tuple(&api_version).is_none_or(|v| v < MIN_API) {
            return Err(DockerError::TooOld {
                address,
                version: api_version,
            });
        }
        let info = docker.info().await.map_err(map_err)?;
        let remaps_users = info
            .security_options
            .unwrap_or_default()
            .iter()
            .any(|o| o.contains("name=userns") || o.contains("name=rootless"));
        let info = DaemonInfo {
            address,
            api_version: docker.client_version().to_string(),
            server_version: version.version.unwrap_or_default(),
            remaps_users,
        };
        Ok(BollardDocker { docker, info })
    }
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

fn map_err(e: BollardError) -> DockerError {
    match e {
        BollardError::DockerResponseServerError {
            status_code: 404,
            message,
        } => DockerError::NotFound(message),
        BollardError::DockerResponseServerError {
            status_code: 409,
            message,
        } => DockerError::Conflict(message),
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => DockerError::Api {
            status: status_code,
            message,
        },
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

    async fn list_containers(&self) -> Result<Vec<ContainerRef>, DockerError> {
        let opts = ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(map_err)?;
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
            })
            .collect())
    }

    async fn inspect_container(&self, id: &str) -> Result<Inspect, DockerError> {
        let resp = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(map_err)?;
        serde_json::to_value(resp)
            .map(Inspect)
            .map_err(|e| DockerError::Transport(e.to_string()))
    }

    async fn top(&self, id: &str) -> Result<Vec<Process>, DockerError> {
        // Numeric uids straight from ps; a `ps` that does not take -o falls back to -ef,
        // whose UID column holds names the host resolved.
        let numeric = TopOptions {
            ps_args: "-o pid,uid,args".into(),
        };
        let resp = match self.docker.top_processes(id, Some(numeric)).await {
            Ok(r) => r,
            Err(BollardError::DockerResponseServerError {
                status_code: 500, ..
            }) => self
                .docker
                .top_processes(id, Some(TopOptions::default()))
                .await
                .map_err(map_err)?,
            Err(e) => return Err(map_err(e)),
        };
        let titles = resp.titles.unwrap_or_default();
        let col = |name: &str| titles.iter().position(|t| t.eq_ignore_ascii_case(name));
        let (Some(pid_col), Some(uid_col)) = (col("PID"), col("UID")) else {
            return Err(DockerError::Transport(format!(
                "docker top gave no PID/UID columns: {titles:?}"
            )));
        };
        let cmd_col = col("COMMAND")
            .or_else(|| col("CMD"))
            .unwrap_or(titles.len().saturating_sub(1));
        Ok(resp
            .processes
            .unwrap_or_default()
            .into_iter()
            .filter_map(|row| {
                Some(Process {
                    pid: row.get(pid_col)?.parse().ok()?,
                    uid: row.get(uid_col).and_then(|u| uid_of(u)),
                    command: row.get(cmd_col).cloned().unwrap_or_default(),
                })
            })
            .collect())
    }

    async fn read_archive(
        &self,
        id: &str,
        path: &str,
        limit: usize,
    ) -> Result<Vec<u8>, DockerError> {
        let opts = DownloadFromContainerOptions {
            path: path.to_string(),
        };
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_compare_numerically() {
        assert!(api_tuple("1.41").unwrap() >= MIN_API);
        assert!(api_tuple("1.9").unwrap() < MIN_API);
        assert!(api_tuple("1.100").unwrap() > MIN_API);
        assert_eq!(api_tuple("x"), None);
    }

    #[test]
    fn uid_column() {
        assert_eq!(uid_of("0"), Some(0));
        assert_eq!(uid_of("root"), Some(0));
        assert_eq!(uid_of("999"), Some(999));
        assert_eq!(uid_of("redis"), None);
    }
}
