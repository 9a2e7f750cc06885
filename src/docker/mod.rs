//! The engine's port to Docker: the few calls unroot needs, in unroot's own types.
//!
//! [`DockerPort`] is implemented once for the real daemon (the `bollard_adapter` module, the
//! only module that names bollard) and by fakes in tests. Container inspects travel as JSON in
//! Docker's own field names ([`Inspect`]), so `original.json` is exactly what the daemon said
//! and a fake is a JSON literal.

mod api_version;
mod bollard_adapter;
pub mod endpoint;
#[cfg(any(test, feature = "testkit"))]
pub mod fake;
#[cfg(any(test, feature = "testkit"))]
pub mod fake_swarm;
mod image;
mod inspect;
mod original;
pub mod recreate;
pub mod ssh;
pub mod swarm;
mod timed;

use std::future::Future;
use std::pin::Pin;

use futures_util::Stream;
use serde_json::Value;

pub use crate::model::mount::MountKind;

pub use api_version::ApiVersion;
pub use bollard_adapter::BollardDocker;
pub use image::{image_ref, image_user};
pub use inspect::{Inspect, Mount};
pub use original::Original;
pub use timed::Timed;

/// What went wrong talking to Docker, in the terms the engine decides on.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DockerError {
    /// unroot could not talk to the daemon at `address` (which says where it came from):
    /// nothing listens, TLS or ssh refused, the answer was not the API.
    #[error("cannot talk to the Docker daemon at {address}: {reason}")]
    Unreachable { address: String, reason: String },
    /// An endpoint address unroot cannot use whatever the daemon does (a password in an
    /// ssh:// address, an unknown scheme): the input is wrong, trying again will not help.
    #[error("cannot use the Docker endpoint {address}: {reason}")]
    BadEndpoint { address: String, reason: String },
    /// A Docker context that is not in the CLI's store (or cannot be used).
    #[error("no usable Docker context \"{name}\" ({origin}): {reason}")]
    UnknownContext { name: String, origin: String, reason: String },
    /// The daemon answers but speaks an API older than unroot supports.
    #[error("the Docker daemon at {address} speaks API {version}; unroot needs 1.41 (Engine 20.10) or newer")]
    TooOld { address: String, version: String },
    /// The container, image or path does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The object is in a state that refuses the call (name taken, container not running …).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Any other answer from the daemon.
    #[error("Docker answered {status}: {message}")]
    Api { status: u16, message: String },
    /// A transport or decoding problem in the middle of a call.
    #[error("talking to Docker: {0}")]
    Transport(String),
}

/// The daemon as found and negotiated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DaemonInfo {
    /// Where it was found, as the docker CLI would name it (`unix:///var/run/docker.sock`).
    pub address: String,
    /// The negotiated API version.
    pub api_version: String,
    /// The engine's own version.
    pub server_version: String,
    /// The daemon's ID, as `GET /info` gives it (empty when it gives none).
    pub id: String,
    /// The daemon's name, as `GET /info` gives it: its host's name.
    pub name: String,
    /// The daemon remaps users (userns-remap) or runs rootless.
    pub remaps_users: bool,
}

/// A container as `docker ps -a` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerRef {
    pub id: String,
    pub name: String,
    /// Names of the volumes it mounts.
    pub volumes: Vec<String>,
    pub labels: std::collections::BTreeMap<String, String>,
    /// Creation time, Unix seconds.
    pub created: i64,
}

/// One process of a container as `docker top` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Process {
    pub pid: u32,
    /// The parent's pid (0 when the daemon's `ps` did not say).
    #[serde(skip)]
    pub ppid: u32,
    /// Numeric uid; `None` when the daemon's `ps` printed a name unroot could not map.
    pub uid: Option<u32>,
    pub command: String,
}

impl Process {
    /// The program it runs, without its path or arguments: what unroot shows of a process
    /// (arguments may carry a secret given on the command line, which no redaction of the
    /// environment would catch).
    pub fn program(&self) -> &str {
        let first = self.command.split_whitespace().next().unwrap_or_default();
        first.rsplit('/').next().unwrap_or(first)
    }
}

/// One event of a container from the daemon's event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// `start`, `die`, `oom`, `restart`, `health_status: healthy`, …
    pub action: String,
    pub id: String,
}

/// A stream of events; it ends or yields an error when the connection drops.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<ContainerEvent, DockerError>> + Send>>;

/// The exit code of an exec that outlived its limit and was killed (as `timeout(1)`'s).
pub const EXEC_TIMED_OUT: i64 = 124;

/// What a finished container or exec printed and returned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Finished {
    pub exit_code: i64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A daemon the engine can both run containers on and, when it is a Swarm manager, move
/// services through: every port the engine is given.
pub trait Port: DockerPort + swarm::SwarmPort {}

impl<T: DockerPort + swarm::SwarmPort> Port for T {}

/// The small set of Docker calls the engine needs.
///
/// Each call is a single request to the daemon; none retries or sleeps. Read calls change
/// nothing.
pub trait DockerPort: Send + Sync {
    /// The daemon this port talks to.
    fn daemon(&self) -> &DaemonInfo;

    /// Whether the daemon answers at all.
    ///
    /// Errors: the daemon cannot be reached.
    fn ping(&self) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// Every container, running or not.
    fn list_containers(&self) -> impl Future<Output = Result<Vec<ContainerRef>, DockerError>> + Send;

    /// The full inspect of a container by id or name.
    ///
    /// Errors: [`DockerError::NotFound`] when it does not exist (any more).
    fn inspect_container(&self, id: &str) -> impl Future<Output = Result<Inspect, DockerError>> + Send;

    /// The processes of a running container with their numeric uids.
    ///
    /// Errors: [`DockerError::Conflict`] when it is not running, [`DockerError::NotFound`]
    /// when it is gone.
    fn top(&self, id: &str) -> impl Future<Output = Result<Vec<Process>, DockerError>> + Send;

    /// The first `limit` bytes of the tar stream of `path` in a container (running or not),
    /// as the archive API returns it. Reading the first header tells a path's owner without
    /// copying its contents; reading a small file whole needs no shell in the image.
    fn read_archive(
        &self,
        id: &str,
        path: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<u8>, DockerError>> + Send;

    /// Unpacks a tar stream at `path` in a container (created or running).
    fn upload_archive(
        &self,
        id: &str,
        path: &str,
        tar: Vec<u8>,
    ) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// An image's inspect (`Id`, `Config`, …) by name or id.
    fn inspect_image(&self, name: &str) -> impl Future<Output = Result<Value, DockerError>> + Send;

    /// Creates a container called `name` from a body in the Engine API's create format
    /// (`Config` fields at the top, `HostConfig`, `NetworkingConfig`); returns its id.
    ///
    /// Errors: [`DockerError::Conflict`] when the name is taken.
    fn create_container(&self, name: &str, body: Value) -> impl Future<Output = Result<String, DockerError>> + Send;

    /// Starts a container; starting a running one is not an error.
    fn start_container(&self, id: &str) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// Stops a container with a grace of `timeout_secs` before SIGKILL; stopping a stopped
    /// one is not an error. The request waits as long as the grace needs, whatever the
    /// port's usual request timeout.
    fn stop_container(&self, id: &str, timeout_secs: u64) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// Renames a container.
    ///
    /// Errors: [`DockerError::Conflict`] when `new_name` is taken.
    fn rename_container(&self, id: &str, new_name: &str) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// Sets a container's restart policy (`{"Name": "no"}` …) in place.
    fn set_restart_policy(&self, id: &str, policy: Value) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// Removes a container, killing it first when it runs; never a named volume or a bind.
    ///
    /// Errors: [`DockerError::NotFound`] when it is already gone.
    fn remove_container(&self, id: &str, what: Removal) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// Connects a created container to a network with an endpoint config
    /// (`Aliases`, `IPAMConfig`, `Links`, …).
    fn connect_network(
        &self,
        network: &str,
        id: &str,
        endpoint: Value,
    ) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// Events of one container from now on. Subscribe before the action whose outcome it
    /// waits for, so nothing is missed.
    fn container_events(&self, id: &str) -> impl Future<Output = Result<EventStream, DockerError>> + Send;

    /// Runs a command in a running container as its configured user and waits for it, at
    /// most `limit`. One that runs longer is killed, with what it started (Docker kills its
    /// own timed-out health probes; an exec it leaves running), and ends with
    /// [`EXEC_TIMED_OUT`].
    fn exec(
        &self,
        id: &str,
        cmd: &[String],
        limit: std::time::Duration,
    ) -> impl Future<Output = Result<Finished, DockerError>> + Send;

    /// Waits for a started container to exit and returns its code and output.
    fn wait_container(&self, id: &str) -> impl Future<Output = Result<Finished, DockerError>> + Send;

    /// The last `lines` lines of a container's log, stdout and stderr interleaved as Docker
    /// keeps them.
    fn logs(&self, id: &str, lines: usize) -> impl Future<Output = Result<Vec<u8>, DockerError>> + Send;

    /// The paths a container changed in its root filesystem (`docker diff`); writes to its
    /// mounts and tmpfs are not among them.
    fn changes(&self, id: &str) -> impl Future<Output = Result<Vec<String>, DockerError>> + Send;
}

/// The processes of a container's own process tree: its PID 1 (`init_pid`, the host pid
/// inspect reports as `State.Pid`) and every descendant. Processes started by `docker exec`
/// (health probes, an operator's shell) hang below the runtime, not below PID 1: they are
/// not the container's and would make its class flap. When the tree cannot be told (no
/// parent pids, PID 1 not listed), every process counts.
pub fn own_tree(procs: Vec<Process>, init_pid: u32) -> Vec<Process> {
    if init_pid == 0 || !procs.iter().any(|p| p.pid == init_pid) || procs.iter().all(|p| p.ppid == 0) {
        return procs;
    }
    let mut own = std::collections::BTreeSet::from([init_pid]);
    loop {
        let before = own.len();
        for p in &procs {
            if own.contains(&p.ppid) {
                own.insert(p.pid);
            }
        }
        if own.len() == before {
            break;
        }
    }
    procs.into_iter().filter(|p| own.contains(&p.pid)).collect()
}

#[cfg(test)]
mod tests;

impl DockerError {
    /// The daemon could not be talked to at all (as opposed to an answer it gave).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, DockerError::Unreachable { .. } | DockerError::Transport(_))
    }
}

/// The strings of the array at `pointer` in Docker's JSON (none when absent).
pub(crate) fn strings_at(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// The container called exactly `name`. Docker answers a lookup by a name that no container
/// has with a container whose id starts with it; a service name such as `db` or `cafe` must
/// never reach an unrelated container that way.
///
/// Errors: [`DockerError::NotFound`] when no container has that name; the daemon's errors.
pub async fn inspect_named(port: &impl DockerPort, name: &str) -> Result<Inspect, DockerError> {
    let not_called = || DockerError::NotFound(format!("no container is called {name}"));
    match port.inspect_container(name).await {
        Ok(c) if c.name() == name => Ok(c),
        Ok(_) => Err(not_called()),
        // Docker looks a name up before an id prefix: a name that is also the prefix of
        // several ids (`b5`, `db`) reaching that answer means no container has the name.
        Err(e) if is_ambiguous_prefix(&e) => Err(not_called()),
        Err(e) => Err(e),
    }
}

/// Docker's answer to a lookup whose text is no name and the prefix of several ids
/// (containers: "Multiple IDs found with provided prefix"; services: "… is ambiguous").
pub fn is_ambiguous_prefix(e: &DockerError) -> bool {
    matches!(e, DockerError::Api { message, .. } | DockerError::Conflict(message)
        if message.contains("Multiple IDs found with provided prefix") || message.contains("is ambiguous"))
}

/// What goes with a removed container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The container alone: a user's container, whose every volume may hold data.
    ContainerOnly,
    /// The container and the anonymous volumes its image's `VOLUME`s made for it: unroot's
    /// own probes and helpers, which would otherwise leave one behind per `VOLUME`.
    WithAnonymousVolumes,
}

/// The first 12 hex digits of a container or image id (without `sha256:`), as Docker shows
/// them and uses for hostnames and network aliases.
pub fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}
