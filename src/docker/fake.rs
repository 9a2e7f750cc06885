//! A recording fake of [`DockerPort`] for fast, exhaustive tests of the engine. It holds
//! containers as inspect JSON, answers from them, records every call, and fails the calls a
//! test scripts. It is never proof on its own: the end-to-end tests run the real daemon.

mod health;
mod program;
mod swarm_state;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::{
    ContainerEvent, ContainerRef, DaemonInfo, DockerError, DockerPort, EventStream, Finished, Inspect, Process, Removal,
};

pub use program::{ExecFn, Program, ProgramFn};
pub use swarm_state::FakeSwarm;

/// One call as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Ping,
    List,
    Inspect(String),
    Top(String),
    ReadArchive(String, String),
    UploadArchive(String, String),
    InspectImage(String),
    Create(String),
    Start(String),
    Stop(String),
    Rename(String, String),
    SetRestartPolicy(String, String),
    Remove(String),
    Connect(String, String),
    Events(String),
    Exec(String),
    Wait(String),
    Logs(String),
    Changes(String),
    /// A call of the Swarm port: its name and the object it names.
    Swarm(&'static str, String),
}

impl Call {
    /// Whether the call changes a container on the daemon (creates, starts, stops, renames,
    /// reconfigures, removes, connects or writes into one); reads, execs and the Swarm
    /// port's calls do not count.
    pub fn changes_a_container(&self) -> bool {
        matches!(
            self,
            Call::Create(_)
                | Call::Start(_)
                | Call::Stop(_)
                | Call::Rename(..)
                | Call::SetRestartPolicy(..)
                | Call::Remove(_)
                | Call::Connect(..)
                | Call::UploadArchive(..)
        )
    }

    fn kind(&self) -> &'static str {
        match self {
            Call::Ping => "ping",
            Call::List => "list",
            Call::Inspect(_) => "inspect",
            Call::Top(_) => "top",
            Call::ReadArchive(..) => "read_archive",
            Call::UploadArchive(..) => "upload_archive",
            Call::InspectImage(_) => "inspect_image",
            Call::Create(_) => "create",
            Call::Start(_) => "start",
            Call::Stop(_) => "stop",
            Call::Rename(..) => "rename",
            Call::SetRestartPolicy(..) => "set_restart_policy",
            Call::Remove(_) => "remove",
            Call::Connect(..) => "connect",
            Call::Events(_) => "events",
            Call::Exec(_) => "exec",
            Call::Swarm(kind, _) => kind,
            Call::Wait(_) => "wait",
            Call::Logs(_) => "logs",
            Call::Changes(_) => "changes",
        }
    }
}

/// Merges `patch` into `into`, object by object (a test's variation of a fixture inspect).
pub fn merge(into: &mut Value, patch: Value) {
    match (into, patch) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// A scripted reaction to the next call of a kind.
pub enum Script {
    /// Fail it with this error.
    Fail(DockerError),
    /// Run this against the fake's state first (a container stops, restarts …), then answer.
    Before(Box<dyn FnOnce(&mut State) + Send>),
}

/// A change to the fake's state, made at a chosen point.
type StateChange = Box<dyn FnOnce(&mut State) + Send>;

/// How a fake helper container behaves when waited on.
pub type HelperFn = Box<dyn Fn(&Inspect, &State) -> Finished + Send>;

#[derive(Default)]
pub struct State {
    /// Containers by id, in insertion order.
    pub containers: Vec<Inspect>,
    pub processes: HashMap<String, Vec<Process>>,
    /// Tar streams the archive API returns, by (id, path).
    pub archives: HashMap<(String, String), Vec<u8>>,
    /// Tar streams uploaded, by (id, path).
    pub uploads: HashMap<(String, String), Vec<u8>>,
    /// Image inspects by every name they answer to.
    pub images: HashMap<String, Value>,
    /// Events each container emits when subscribed, after those its start causes.
    pub events: HashMap<String, Vec<String>>,
    /// What a started helper container finishes with, given its inspect and the state.
    pub helper: Option<HelperFn>,
    /// Exit code of every exec (health probes) unless `exec_answer` says.
    pub exec_exit: i64,
    /// The exit code of each command run in a container; `None`: `exec_exit`.
    pub exec_answer: Option<ExecFn>,
    /// Files of images by (image id, path): what every container of the image holds where
    /// `archives` has nothing of its own (a probe, a replacement).
    pub image_files: HashMap<(String, String), Vec<u8>>,
    /// How containers' programs behave when started and stopped; `None`: they run on and
    /// stop at once.
    pub program: Option<ProgramFn>,
    /// The limit each exec was given, in call order.
    pub exec_limits: Vec<std::time::Duration>,
    /// The commands `exec` ran, in order.
    pub execs: Vec<Vec<String>>,
    /// What a finished helper wrote (its stdout stands for the file its script writes), by id.
    pub written: HashMap<String, Vec<u8>>,
    /// What `logs` returns, by container name.
    pub logs: HashMap<String, Vec<u8>>,
    /// What `changes` returns (`docker diff`), by container name.
    pub changes: HashMap<String, Vec<String>>,
    /// The swarm this daemon manages; `None`: not in a swarm.
    pub swarm: Option<FakeSwarm>,
    /// Docker's own health checks of started containers.
    health: health::Health,
    next_id: u64,
}

impl State {
    pub fn container_mut(&mut self, id: &str) -> Option<&mut Inspect> {
        self.containers.iter_mut().find(|c| c.id() == id || c.name() == id)
    }

    pub fn container(&self, id: &str) -> Option<&Inspect> {
        self.containers.iter().find(|c| c.id() == id || c.name() == id)
    }

    /// The container `text` names as Docker looks one up: by its full id, else by its exact
    /// name, else by the one id it is a prefix of.
    ///
    /// Errors: none matches; the prefix of several ids.
    fn lookup(&mut self, text: &str) -> Result<&mut Inspect, DockerError> {
        let by_prefix = || {
            let mut matching = self.containers.iter().enumerate().filter(|(_, c)| c.id().starts_with(text));
            match (matching.next(), matching.next()) {
                (Some((i, _)), None) if !text.is_empty() => Ok(i),
                (Some(_), Some(_)) if !text.is_empty() => Err(DockerError::Api {
                    status: 400,
                    message: format!("Multiple IDs found with provided prefix: {text}"),
                }),
                _ => Err(DockerError::NotFound(format!("No such container: {text}"))),
            }
        };
        let at = match self.containers.iter().position(|c| c.id() == text) {
            Some(i) => i,
            None => match self.containers.iter().position(|c| c.name() == text) {
                Some(i) => i,
                None => by_prefix()?,
            },
        };
        Ok(&mut self.containers[at])
    }

    /// The inspect the daemon would report for a container created from `body`.
    fn created(&mut self, name: &str, body: &Value) -> Inspect {
        self.next_id += 1;
        let id = format!("{:0>12x}{:0>52}", 0xfa4e_0000u64 + self.next_id, 0);
        let short = &id[..12];
        let mut config = body.as_object().cloned().unwrap_or_default();
        let host = config.remove("HostConfig").unwrap_or(json!({}));
        let net = config.remove("NetworkingConfig").unwrap_or(json!({}));
        if config.get("Hostname").is_none_or(|h| h.as_str() == Some("")) {
            config.insert("Hostname".into(), json!(short));
        }
        let image_ref = config.get("Image").and_then(Value::as_str).unwrap_or_default().to_string();
        let image_id = self.images.get(&image_ref).and_then(|i| i["Id"].as_str()).unwrap_or(&image_ref).to_string();
        let mut mounts = Vec::new();
        for b in host["Binds"].as_array().cloned().unwrap_or_default() {
            let b = b.as_str().unwrap_or_default();
            let parts: Vec<&str> = b.split(':').collect();
            let (src, dest) = (parts[0], parts.get(1).copied().unwrap_or_default());
            let rw = parts.get(2) != Some(&"ro");
            mounts.push(if src.starts_with('/') {
                json!({"Type": "bind", "Source": src, "Destination": dest, "RW": rw})
            } else {
                json!({"Type": "volume", "Name": src, "Source": format!("/var/lib/docker/volumes/{src}/_data"),
                       "Destination": dest, "RW": rw})
            });
        }
        for m in host["Mounts"].as_array().cloned().unwrap_or_default() {
            let src = m["Source"].as_str().unwrap_or_default().to_string();
            mounts.push(json!({
                "Type": m["Type"], "Name": src, "Source": format!("/var/lib/docker/volumes/{src}/_data"),
                "Destination": m["Target"], "RW": !m["ReadOnly"].as_bool().unwrap_or(false)
            }));
        }
        let mut networks = serde_json::Map::new();
        for (n, e) in net["EndpointsConfig"].as_object().cloned().unwrap_or_default() {
            networks.insert(n, with_short_alias(e, short));
        }
        Inspect(json!({
            "Id": id, "Name": format!("/{name}"), "Image": image_id, "Created": "2026-01-01T00:00:00Z",
            "Config": config, "HostConfig": host, "Mounts": mounts,
            "State": {"Running": false, "Restarting": false, "Status": "created", "OOMKilled": false},
            "RestartCount": 0,
            "NetworkSettings": {"Networks": networks}
        }))
    }
}

/// Docker adds a container's short id to its aliases on user-defined networks.
fn with_short_alias(mut endpoint: Value, short: &str) -> Value {
    let mut aliases = endpoint["Aliases"].as_array().cloned().unwrap_or_default();
    aliases.push(json!(short));
    endpoint["Aliases"] = json!(aliases);
    endpoint
}

pub struct FakeDocker {
    info: DaemonInfo,
    /// Fail the call with this 1-based number (counting every call).
    fail_at: Mutex<Option<usize>>,
    /// Panic in the call with this 1-based number.
    panic_at: Mutex<Option<usize>>,
    /// Changes the state before the call with this 1-based number is answered.
    before_at: Mutex<Option<(usize, StateChange)>>,
    state: Arc<Mutex<State>>,
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
                id: "FAKE:0000:0000:0000:0000:0000:0000:0000".into(),
                name: "fake-daemon".into(),
            },
            fail_at: Mutex::default(),
            panic_at: Mutex::default(),
            before_at: Mutex::default(),
            state: Arc::default(),
            scripts: Mutex::default(),
            calls: Mutex::default(),
        }
    }
}

impl FakeDocker {
    /// Runs `f` on the fake's state: set up images, events, helper behaviour, or look.
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Adds a container; `inspect` needs at least `Id` and `Name`.
    pub fn add(&self, inspect: serde_json::Value, processes: Vec<Process>) {
        let c = Inspect(inspect);
        let mut s = self.state.lock().unwrap();
        s.processes.insert(c.id().to_string(), processes);
        s.containers.push(c);
    }

    /// The tar stream `read_archive(id, path)` returns.
    pub fn archive(&self, id: &str, path: &str, tar: Vec<u8>) {
        self.state.lock().unwrap().archives.insert((id.into(), path.into()), tar);
    }

    /// Scripts the next call of `kind` (`list`, `inspect`, `top`, `read_archive`).
    pub fn script(&self, kind: &'static str, script: Script) {
        self.scripts.lock().unwrap().entry(kind).or_default().push_back(script);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Fails the call with number `n` (1-based, counting every call made so far too).
    pub fn fail_call(&self, n: usize) {
        *self.fail_at.lock().unwrap() = Some(n);
    }

    /// Panics in the call with number `n` (1-based), as a bug in a step would.
    pub fn panic_call(&self, n: usize) {
        *self.panic_at.lock().unwrap() = Some(n);
    }

    /// Runs `f` against the state just before the call with number `n` (1-based) is
    /// answered: a container stops or a daemon restarts at an exact point of a day.
    pub fn before_call(&self, n: usize, f: impl FnOnce(&mut State) + Send + 'static) {
        *self.before_at.lock().unwrap() = Some((n, Box::new(f)));
    }

    /// A container starts (`running`, then `exited` at once when its program exits, what
    /// it printed in its log) or stops (`exited`).
    fn set_running(&self, id: &str, running: bool) -> Result<(), DockerError> {
        let mut s = self.state.lock().unwrap();
        let c = s.lookup(id)?;
        c.0["State"]["Running"] = json!(running);
        c.0["State"]["Status"] = json!(if running { "running" } else { "exited" });
        if !running {
            s.health_stopped(id);
            return Ok(());
        }
        s.health_started(id);
        if let Some(f) = s.program_of(id).exits {
            let c = s.lookup(id)?;
            c.0["State"]["Running"] = json!(false);
            c.0["State"]["Status"] = json!("exited");
            c.0["State"]["ExitCode"] = json!(f.exit_code);
            let name = c.name().to_string();
            s.health_stopped(id);
            let log = s.logs.entry(name).or_default();
            log.extend_from_slice(&f.stdout);
            log.extend_from_slice(&f.stderr);
        }
        Ok(())
    }

    /// Records the call and applies its script; `Err` when the script fails it.
    pub(super) fn enter(&self, call: Call) -> Result<(), DockerError> {
        let kind = call.kind();
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(call);
            calls.len()
        };
        if *self.panic_at.lock().unwrap() == Some(n) {
            panic!("injected panic in call {n} ({kind})");
        }
        let before = {
            let mut at = self.before_at.lock().unwrap();
            if at.as_ref().is_some_and(|(k, _)| *k == n) { at.take() } else { None }
        };
        if let Some((_, f)) = before {
            f(&mut self.state.lock().unwrap());
        }
        if *self.fail_at.lock().unwrap() == Some(n) {
            return Err(DockerError::Transport(format!("injected failure of call {n} ({kind})")));
        }
        let script = self.scripts.lock().unwrap().get_mut(kind).and_then(VecDeque::pop_front);
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

    async fn ping(&self) -> Result<(), DockerError> {
        self.enter(Call::Ping)
    }

    async fn list_containers(&self) -> Result<Vec<ContainerRef>, DockerError> {
        self.enter(Call::List)?;
        let s = self.state.lock().unwrap();
        Ok(s.containers
            .iter()
            .map(|c| ContainerRef {
                id: c.id().to_string(),
                name: c.name().to_string(),
                volumes: c
                    .mounts()
                    .into_iter()
                    .filter(|m| m.kind == crate::model::mount::MountKind::Volume)
                    .filter_map(|m| m.name)
                    .collect(),
                labels: c
                    .0
                    .pointer("/Config/Labels")
                    .and_then(Value::as_object)
                    .map(|l| l.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
                    .unwrap_or_default(),
                created: 0,
            })
            .collect())
    }

    async fn inspect_container(&self, id: &str) -> Result<Inspect, DockerError> {
        self.enter(Call::Inspect(id.into()))?;
        let mut s = self.state.lock().unwrap();
        let full = s.lookup(id)?.id().to_string();
        s.run_due_checks(&full);
        s.lookup(id).cloned()
    }

    async fn top(&self, id: &str) -> Result<Vec<Process>, DockerError> {
        self.enter(Call::Top(id.into()))?;
        let mut s = self.state.lock().unwrap();
        let c = s.lookup(id)?;
        if !c.running() {
            return Err(DockerError::Conflict(format!("Container {id} is not running")));
        }
        let id = c.id().to_string();
        Ok(s.processes.get(&id).cloned().unwrap_or_default())
    }

    async fn read_archive(&self, id: &str, path: &str, limit: usize) -> Result<Vec<u8>, DockerError> {
        self.enter(Call::ReadArchive(id.into(), path.into()))?;
        let mut s = self.state.lock().unwrap();
        let image = s.lookup(id).map(|c| c.image_id().to_string()).unwrap_or_default();
        let written = || s.written.get(id).map(|out| crate::model::passwd::tar_of("out", out, 0, 0));
        let of_image = || s.image_files.get(&(image, path.to_string())).cloned();
        let mut bytes = s
            .archives
            .get(&(id.to_string(), path.to_string()))
            .cloned()
            .or_else(written)
            .or_else(of_image)
            .ok_or_else(|| DockerError::NotFound(format!("Could not find the file {path} in container {id}")))?;
        bytes.truncate(limit);
        Ok(bytes)
    }

    async fn upload_archive(&self, id: &str, path: &str, tar: Vec<u8>) -> Result<(), DockerError> {
        self.enter(Call::UploadArchive(id.into(), path.into()))?;
        let mut s = self.state.lock().unwrap();
        let id = s.lookup(id)?.id().to_string();
        s.uploads.insert((id, path.into()), tar);
        Ok(())
    }

    async fn inspect_image(&self, name: &str) -> Result<Value, DockerError> {
        self.enter(Call::InspectImage(name.into()))?;
        let s = self.state.lock().unwrap();
        s.images.get(name).cloned().ok_or_else(|| DockerError::NotFound(format!("No such image: {name}")))
    }

    async fn create_container(&self, name: &str, body: Value) -> Result<String, DockerError> {
        self.enter(Call::Create(name.into()))?;
        let mut s = self.state.lock().unwrap();
        if s.container(name).is_some() {
            return Err(DockerError::Conflict(format!("The container name \"/{name}\" is already in use")));
        }
        let c = s.created(name, &body);
        let id = c.id().to_string();
        let uid = c.configured_user().split(':').next().and_then(|u| u.parse().ok()).unwrap_or(0);
        s.processes.insert(id.clone(), vec![Process { pid: 1, ppid: 0, uid: Some(uid), command: "main".into() }]);
        s.containers.push(c);
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<(), DockerError> {
        self.enter(Call::Start(id.into()))?;
        self.set_running(id, true)
    }

    async fn stop_container(&self, id: &str, timeout_secs: u64) -> Result<(), DockerError> {
        self.enter(Call::Stop(id.into()))?;
        let slow =
            self.with(|s| s.lookup(id).map(|c| c.running()).unwrap_or(false) && s.program_of(id).ignores_sigterm);
        if slow {
            tokio::time::sleep(std::time::Duration::from_secs(timeout_secs)).await;
        }
        self.set_running(id, false)
    }

    async fn rename_container(&self, id: &str, new_name: &str) -> Result<(), DockerError> {
        self.enter(Call::Rename(id.into(), new_name.into()))?;
        let mut s = self.state.lock().unwrap();
        if s.container(new_name).is_some() {
            return Err(DockerError::Conflict(format!("name {new_name} is in use")));
        }
        s.lookup(id)?.0["Name"] = json!(format!("/{new_name}"));
        Ok(())
    }

    async fn set_restart_policy(&self, id: &str, policy: Value) -> Result<(), DockerError> {
        self.enter(Call::SetRestartPolicy(id.into(), policy["Name"].as_str().unwrap_or_default().into()))?;
        let mut s = self.state.lock().unwrap();
        s.lookup(id)?.0["HostConfig"]["RestartPolicy"] = policy;
        Ok(())
    }

    async fn remove_container(&self, id: &str, _what: Removal) -> Result<(), DockerError> {
        self.enter(Call::Remove(id.into()))?;
        let mut s = self.state.lock().unwrap();
        let id = s.lookup(id)?.id().to_string();
        s.containers.retain(|c| c.id() != id);
        Ok(())
    }

    async fn connect_network(&self, network: &str, id: &str, endpoint: Value) -> Result<(), DockerError> {
        self.enter(Call::Connect(network.into(), id.into()))?;
        let mut s = self.state.lock().unwrap();
        let c = s.lookup(id)?;
        let short = c.id()[..12].to_string();
        c.0["NetworkSettings"]["Networks"][network] = with_short_alias(endpoint, &short);
        Ok(())
    }

    async fn container_events(&self, id: &str) -> Result<EventStream, DockerError> {
        self.enter(Call::Events(id.into()))?;
        let s = self.state.lock().unwrap();
        let c = s.container(id).ok_or_else(|| DockerError::NotFound(id.into()))?;
        let name = c.name().to_string();
        let full = c.id().to_string();
        let actions = s.events.get(&name).cloned().unwrap_or_else(|| vec!["start".into()]);
        let events: Vec<Result<ContainerEvent, DockerError>> =
            actions.into_iter().map(|action| Ok(ContainerEvent { action, id: full.clone() })).collect();
        // The stream stays open after the scripted events, as the daemon's does, with the
        // changes of health status Docker's checks make from now on.
        let health = health::events(Arc::clone(&self.state), full, s.health.log.len());
        Ok(Box::pin(futures_util::stream::iter(events).chain(health)))
    }

    async fn exec(&self, id: &str, cmd: &[String], limit: std::time::Duration) -> Result<Finished, DockerError> {
        self.enter(Call::Exec(id.into()))?;
        let mut s = self.state.lock().unwrap();
        s.execs.push(cmd.to_vec());
        s.exec_limits.push(limit);
        let c = s.lookup(id)?.clone();
        Ok(Finished { exit_code: s.exec_code(&c, cmd), ..Default::default() })
    }

    async fn logs(&self, id: &str, _lines: usize) -> Result<Vec<u8>, DockerError> {
        self.enter(Call::Logs(id.into()))?;
        let s = self.state.lock().unwrap();
        let name = s.container(id).map(|c| c.name().to_string()).unwrap_or_default();
        Ok(s.logs.get(&name).cloned().unwrap_or_default())
    }

    async fn changes(&self, id: &str) -> Result<Vec<String>, DockerError> {
        self.enter(Call::Changes(id.into()))?;
        let s = self.state.lock().unwrap();
        let name = s
            .container(id)
            .ok_or_else(|| DockerError::NotFound(format!("No such container: {id}")))?
            .name()
            .to_string();
        Ok(s.changes.get(&name).cloned().unwrap_or_default())
    }

    async fn wait_container(&self, id: &str) -> Result<Finished, DockerError> {
        self.enter(Call::Wait(id.into()))?;
        let mut s = self.state.lock().unwrap();
        let c = s.lookup(id)?.clone();
        let out = match &s.helper {
            Some(h) => h(&c, &s),
            None => Finished::default(),
        };
        // What a helper printed is the listing its script writes to a file: any file read
        // from it afterwards holds it.
        if !out.stdout.is_empty() {
            let cid = s.lookup(id)?.id().to_string();
            s.written.insert(cid, out.stdout.clone());
        }
        let c = s.lookup(id)?;
        c.0["State"]["Running"] = json!(false);
        c.0["State"]["Status"] = json!("exited");
        Ok(out)
    }
}
