//! A recording fake of [`DockerPort`] for fast, exhaustive tests of the engine. It holds
//! containers as inspect JSON, answers from them, records every call, and fails the calls a
//! test scripts. It is never proof on its own: the end-to-end tests run the real daemon.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::{ContainerRef, DaemonInfo, DockerError, DockerPort, Inspect, Process};

/// One call as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    List,
    Inspect(String),
    Top(String),
    ReadArchive(String, String),
}

impl Call {
    fn kind(&self) -> &'static str {
        match self {
            Call::List => "list",
            Call::Inspect(_) => "inspect",
            Call::Top(_) => "top",
            Call::ReadArchive(..) => "read_archive",
        }
    }
}

/// A scripted reaction to the next call of a kind.
pub enum Script {
    /// Fail it with this error.
    Fail(DockerError),
    /// Run this against the fake's state first (a container stops, restarts …), then answer.
    Before(Box<dyn FnOnce(&mut State) + Send>),
}

#[derive(Default)]
pub struct State {
    /// Containers by id, in insertion order.
    pub containers: Vec<Inspect>,
    pub processes: HashMap<String, Vec<Process>>,
    /// Tar streams the archive API returns, by (id, path).
    pub archives: HashMap<(String, String), Vec<u8>>,
}

impl State {
    pub fn container_mut(&mut self, id: &str) -> Option<&mut Inspect> {
        self.containers
            .iter_mut()
            .find(|c| c.id() == id || c.name() == id)
    }
}

pub struct FakeDocker {
    info: DaemonInfo,
    state: Mutex<State>,
    scripts: Mutex<HashMap<&'static str, VecDeque<Script>>>,
    calls: Mutex<Vec<Call>>,
}

impl Default for FakeDocker {
    fn default() -> Self {
        FakeDocker {
            info: DaemonInfo {
                address: "fake://".into(),
                api_version: "1.41".into(),
                server_version: "20.10.0-fake".into(),
                remaps_users: false,
            },
            state: Mutex::default(),
            scripts: Mutex::default(),
            calls: Mutex::default(),
        }
    }
}

impl FakeDocker {
    /// Adds a container; `inspect` needs at least `Id` and `Name`.
    pub fn add(&self, inspect: serde_json::Value, processes: Vec<Process>) {
        let c = Inspect(inspect);
        let mut s = self.state.lock().unwrap();
        s.processes.insert(c.id().to_string(), processes);
        s.containers.push(c);
    }

    /// The tar stream `read_archive(id, path)` returns.
    pub fn archive(&self, id: &str, path: &str, tar: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .archives
            .insert((id.into(), path.into()), tar);
    }

    /// Scripts the next call of `kind` (`list`, `inspect`, `top`, `read_archive`).
    pub fn script(&self, kind: &'static str, script: Script) {
        self.scripts
            .lock()
            .unwrap()
            .entry(kind)
            .or_default()
            .push_back(script);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Records the call and applies its script; `Err` when the script fails it.
    fn enter(&self, call: Call) -> Result<(), DockerError> {
        let kind = call.kind();
        self.calls.lock().unwrap().push(call);
        let script = self
            .scripts
            .lock()
            .unwrap()
            .get_mut(kind)
            .and_then(VecDeque::pop_front);
        match script {
            None => Ok(()),
            Some(Script::Fail(e)) => Err(e),
            Some(Script::Before(f)) => {
                f(&mut self.state.lock().unwrap());
                Ok(())
            }
        }
    }
}

impl DockerPort for FakeDocker {
    fn daemon(&self) -> &DaemonInfo {
        &self.info
    }

    async fn list_containers(&self) -> Result<Vec<ContainerRef>, DockerError> {
        self.enter(Call::List)?;
        let s = self.state.lock().unwrap();
        Ok(s.containers
            .iter()
            .map(|c| ContainerRef {
                id: c.id().to_string(),
                name: c.name().to_string(),
            })
            .collect())
    }

    async fn inspect_container(&self, id: &str) -> Result<Inspect, DockerError> {
        self.enter(Call::Inspect(id.into()))?;
        let mut s = self.state.lock().unwrap();
        s.container_mut(id)
            .cloned()
            .ok_or_else(|| DockerError::NotFound(format!("No such container: {id}")))
    }

    async fn top(&self, id: &str) -> Result<Vec<Process>, DockerError> {
        self.enter(Call::Top(id.into()))?;
        let mut s = self.state.lock().unwrap();
        let c = s
            .container_mut(id)
            .ok_or_else(|| DockerError::NotFound(format!("No such container: {id}")))?;
        if !c.running() {
            return Err(DockerError::Conflict(format!(
                "Container {id} is not running"
            )));
        }
        let id = c.id().to_string();
        Ok(s.processes.get(&id).cloned().unwrap_or_default())
    }

    async fn read_archive(
        &self,
        id: &str,
        path: &str,
        limit: usize,
    ) -> Result<Vec<u8>, DockerError> {
        self.enter(Call::ReadArchive(id.into(), path.into()))?;
        let s = self.state.lock().unwrap();
        let mut bytes = s
            .archives
            .get(&(id.to_string(), path.to_string()))
            .cloned()
            .ok_or_else(|| {
                DockerError::NotFound(format!("Could not find the file {path} in container {id}"))
            })?;
        bytes.truncate(limit);
        Ok(bytes)
    }
}
