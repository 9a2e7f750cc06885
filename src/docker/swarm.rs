//! The engine's port to a Swarm manager (SPEC §11): services, their tasks and the nodes they
//! run on, in unroot's own types. Service inspects travel as Docker's JSON
//! ([`ServiceInspect`]), so `original.json` of a service is exactly what the manager said and
//! the spec sent back on a restore is that spec.

pub mod spec;
mod states;

use std::collections::BTreeMap;
use std::future::Future;

use serde_json::Value;

use super::DockerError;
use crate::model::mount::MountKind;

pub use states::{Availability, DesiredState, NodeRole, NodeState};

/// This daemon's place in a swarm, from `docker info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwarmMembership {
    /// Not part of a swarm (`LocalNodeState` inactive), or locked, pending, in error.
    None,
    /// A worker: it runs tasks but cannot read or change services.
    Worker { node_id: String },
    /// A manager: services, tasks and nodes can be read and changed here.
    Manager { node_id: String },
}

/// A service as `docker service ls` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceRef {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// When it was created (Unix seconds; 0 when the manager did not say).
    pub created: i64,
}

/// A secret or config as the manager lists it (never its data).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SwarmObject {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// When it was created (Unix seconds; 0 when the manager did not say).
    pub created: i64,
}

/// An RFC 3339 time of the manager's as Unix seconds (0 when it cannot be read).
pub fn unix_time(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map_or(0, |t| t.unix_timestamp())
}

/// A node as `docker node ls` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeRef {
    pub id: String,
    pub hostname: String,
    pub role: NodeRole,
    pub state: NodeState,
    pub availability: Availability,
    /// The node's labels (`node.labels.*` in constraints).
    pub labels: BTreeMap<String, String>,
    /// Its engine's labels (`engine.labels.*`).
    pub engine_labels: BTreeMap<String, String>,
}

impl NodeRef {
    /// Ready and active: the scheduler may put tasks on it.
    pub fn schedulable(&self) -> bool {
        self.state == NodeState::Ready && self.availability == Availability::Active
    }

    /// Why the scheduler puts no task on it (`down`, `drained`, `paused`), or `None` when it
    /// is [`schedulable`](NodeRef::schedulable).
    pub fn why_unschedulable(&self) -> Option<String> {
        match &self.state {
            NodeState::Ready => {}
            NodeState::Other(word) if word.is_empty() => return Some("not ready".into()),
            other => return Some(other.to_string()),
        }
        match &self.availability {
            Availability::Active => None,
            Availability::Drain => Some("drained".into()),
            Availability::Pause => Some("paused".into()),
            other => Some(format!("{other} (availability)")),
        }
    }
}

/// Why node `id` of `nodes` takes no task (`node HOST (ID) is drained`, or gone from the
/// swarm), or `None` when the scheduler may put tasks on it.
pub fn unschedulable_node(nodes: &[NodeRef], id: &str) -> Option<String> {
    match nodes.iter().find(|x| x.id == id) {
        Some(x) => x.why_unschedulable().map(|why| format!("node {} ({id}) is {why}", x.hostname)),
        None => Some(format!("node {id} is gone from the swarm")),
    }
}

/// The life of a task, as Swarm names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// `new` … `starting`: on its way to running.
    Pending(String),
    Running,
    /// Ran to its end with exit code 0 (a job's task).
    Complete,
    /// Ended badly: `failed`, `rejected`, `orphaned`.
    Failed(String),
    /// Stopped on purpose: `shutdown`, `remove`.
    Shutdown(String),
}

impl TaskState {
    /// Swarm's word for the state.
    pub fn parse(s: &str) -> TaskState {
        match s {
            "running" => TaskState::Running,
            "complete" => TaskState::Complete,
            "failed" | "rejected" | "orphaned" => TaskState::Failed(s.to_string()),
            "shutdown" | "remove" => TaskState::Shutdown(s.to_string()),
            other => TaskState::Pending(other.to_string()),
        }
    }

    /// The task ended (whatever the reason) and will not run again.
    pub fn ended(&self) -> bool {
        matches!(self, TaskState::Complete | TaskState::Failed(_) | TaskState::Shutdown(_))
    }
}

/// One task of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    pub id: String,
    pub service_id: String,
    /// The node it was scheduled on (empty while unassigned).
    pub node_id: String,
    pub state: TaskState,
    /// What Swarm wants of it.
    pub desired: DesiredState,
    /// Swarm's message and error for the state (`task: non-zero exit (1)`, `No such image`).
    pub message: String,
    pub error: String,
    /// The container that runs it, on its node (empty before one is created).
    pub container_id: String,
    /// The exit code of its container, once it ended.
    pub exit_code: Option<i64>,
    /// When the manager created it (RFC 3339, the manager's clock): tells the tasks of an
    /// update from those before it.
    pub created_at: String,
    /// The user its container runs as (`Spec.ContainerSpec.User`): tells the tasks of an
    /// update from those before it.
    pub user: String,
}

/// A service's inspect in Docker's JSON, with typed accessors for what unroot reads.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ServiceInspect(pub Value);

/// How many tasks a service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum ServiceMode {
    Replicated {
        replicas: u64,
    },
    /// One task per node that its placement allows.
    Global,
    /// A one-off job (`replicated-job`, `global-job`): not a service unroot migrates.
    Job,
}

impl ServiceInspect {
    fn str_at(&self, pointer: &str) -> &str {
        self.0.pointer(pointer).and_then(Value::as_str).unwrap_or("")
    }

    pub fn id(&self) -> &str {
        self.str_at("/ID")
    }

    pub fn name(&self) -> &str {
        self.str_at("/Spec/Name")
    }

    /// The version an update must name (`Version.Index`).
    pub fn version(&self) -> u64 {
        self.0.pointer("/Version/Index").and_then(Value::as_u64).unwrap_or(0)
    }

    /// The spec as the manager holds it, to send back whole.
    pub fn spec(&self) -> &Value {
        self.0.get("Spec").unwrap_or(&Value::Null)
    }

    pub fn mode(&self) -> ServiceMode {
        let mode = self.spec().get("Mode");
        match mode {
            Some(m) if m.get("Global").is_some() => ServiceMode::Global,
            Some(m) if m.get("ReplicatedJob").is_some() || m.get("GlobalJob").is_some() => ServiceMode::Job,
            Some(m) => ServiceMode::Replicated {
                replicas: m.pointer("/Replicated/Replicas").and_then(Value::as_u64).unwrap_or(1),
            },
            None => ServiceMode::Replicated { replicas: 1 },
        }
    }

    /// The image reference of its tasks, digest included when the manager pinned one.
    pub fn image(&self) -> &str {
        self.str_at("/Spec/TaskTemplate/ContainerSpec/Image")
    }

    /// `ContainerSpec.User`; empty means the image default.
    pub fn configured_user(&self) -> &str {
        ServiceSpec(self.spec()).user()
    }

    /// Placement constraints (`node.role==worker`, …).
    pub fn constraints(&self) -> Vec<String> {
        ServiceSpec(self.spec()).constraints()
    }

    /// The mounts of its tasks as the spec declares them (`Type`, `Source`, `Target`,
    /// `ReadOnly`).
    pub fn mounts(&self) -> Vec<SpecMount> {
        self.0
            .pointer("/Spec/TaskTemplate/ContainerSpec/Mounts")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|m| SpecMount {
                        kind: MountKind::parse(m["Type"].as_str().unwrap_or("volume")),
                        source: m["Source"].as_str().unwrap_or("").to_string(),
                        target: m["Target"].as_str().unwrap_or("").to_string(),
                        read_only: m["ReadOnly"].as_bool().unwrap_or(false),
                        volume_options: m.get("VolumeOptions").cloned(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How long Swarm lets a task stop before it kills it (`StopGracePeriod`, 10 s when the
    /// spec sets none).
    pub fn stop_grace(&self) -> std::time::Duration {
        let nanos = self.0.pointer("/Spec/TaskTemplate/ContainerSpec/StopGracePeriod").and_then(Value::as_u64);
        std::time::Duration::from_nanos(nanos.unwrap_or(10_000_000_000))
    }

    /// `Placement.MaxReplicas`: at most this many tasks on one node (0: no limit).
    pub fn max_replicas_per_node(&self) -> u64 {
        self.0.pointer("/Spec/TaskTemplate/Placement/MaxReplicas").and_then(Value::as_u64).unwrap_or(0)
    }

    /// The stack that deployed it (`com.docker.stack.namespace`), if any.
    pub fn stack(&self) -> Option<&str> {
        self.0.pointer("/Spec/Labels/com.docker.stack.namespace").and_then(Value::as_str)
    }

    fn strings_at(&self, pointer: &str) -> Vec<String> {
        super::strings_at(&self.0, pointer)
    }

    /// `ContainerSpec.CapabilityAdd`, as written.
    pub fn cap_add(&self) -> Vec<String> {
        self.strings_at("/Spec/TaskTemplate/ContainerSpec/CapabilityAdd")
    }

    /// `ContainerSpec.CapabilityDrop`, as written.
    pub fn cap_drop(&self) -> Vec<String> {
        self.strings_at("/Spec/TaskTemplate/ContainerSpec/CapabilityDrop")
    }

    /// Its tasks' root filesystem is read-only.
    pub fn read_only(&self) -> bool {
        self.0.pointer("/Spec/TaskTemplate/ContainerSpec/ReadOnly").and_then(Value::as_bool) == Some(true)
    }

    /// Its tasks run with no-new-privileges (API 1.46 and later).
    pub fn no_new_privileges(&self) -> bool {
        self.0.pointer("/Spec/TaskTemplate/ContainerSpec/Privileges/NoNewPrivileges").and_then(Value::as_bool)
            == Some(true)
    }

    /// The spec declares a HEALTHCHECK of its own.
    pub fn has_healthcheck(&self) -> bool {
        self.0.pointer("/Spec/TaskTemplate/ContainerSpec/Healthcheck/Test").is_some()
    }

    /// The spec before the last write (`PreviousSpec`): what `docker service rollback`
    /// goes back to. `None` when the service was never updated.
    pub fn previous_spec(&self) -> Option<&Value> {
        self.0.get("PreviousSpec").filter(|v| !v.is_null())
    }

    /// When the manager last wrote the service (RFC 3339, the manager's clock).
    pub fn updated_at(&self) -> &str {
        self.str_at("/UpdatedAt")
    }

    /// When Swarm started the update its `UpdateStatus` reports, if it reports one.
    pub fn update_started_at(&self) -> Option<&str> {
        self.0.pointer("/UpdateStatus/StartedAt").and_then(Value::as_str)
    }

    /// Swarm's record of the last update (`UpdateStatus.State`: `updating`, `completed`,
    /// `paused`, `rollback_*`), absent when none was recorded.
    pub fn update_state(&self) -> Option<&str> {
        self.0.pointer("/UpdateStatus/State").and_then(Value::as_str)
    }

    /// `ContainerSpec.Env`: its tasks' `KEY=VALUE` environment.
    pub fn env(&self) -> Vec<String> {
        self.strings_at(SPEC_ENV)
    }
}

/// A service's spec in Docker's JSON (the `Spec` of its inspect, or one unroot writes),
/// read through typed accessors.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec<'a>(pub &'a Value);

impl<'a> ServiceSpec<'a> {
    /// `ContainerSpec.User`; empty means the image default.
    pub fn user(self) -> &'a str {
        self.0.pointer("/TaskTemplate/ContainerSpec/User").and_then(Value::as_str).unwrap_or("")
    }

    /// One task on each node its placement allows (`Mode.Global`).
    pub fn is_global(self) -> bool {
        self.0.pointer("/Mode/Global").is_some()
    }

    /// `Mode.Replicated.Replicas` (1 when the spec says none).
    pub fn replicas(self) -> u64 {
        self.0.pointer("/Mode/Replicated/Replicas").and_then(Value::as_u64).unwrap_or(1)
    }

    /// Placement constraints (`node.role==worker`, …).
    pub fn constraints(self) -> Vec<String> {
        super::strings_at(self.0, "/TaskTemplate/Placement/Constraints")
    }

    /// Whether its tasks carry the secret or config, or join the network, whose id is `id`.
    pub fn names(self, kind: ObjectKind, id: &str) -> bool {
        let (list, field, _) = kind.fields();
        self.0.pointer(list).and_then(Value::as_array).is_some_and(|a| a.iter().any(|x| x[field].as_str() == Some(id)))
    }
}

/// Where a service's spec holds its tasks' environment.
const SPEC_ENV: &str = "/Spec/TaskTemplate/ContainerSpec/Env";

/// Whether `a` is later than `b`, both RFC 3339 times from the manager; a time that cannot be
/// read counts as later (a task of unknown age is never left out).
pub fn later_than(a: &str, b: &str) -> bool {
    use time::format_description::well_known::Rfc3339;
    match (time::OffsetDateTime::parse(a, &Rfc3339), time::OffsetDateTime::parse(b, &Rfc3339)) {
        (Ok(a), Ok(b)) => a > b,
        _ => true,
    }
}

/// One mount of a service's task template.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpecMount {
    pub kind: MountKind,
    /// The volume's name or the bind's host path (the same on every node).
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// A volume's `VolumeOptions` as the spec has them (its driver and options, a volume on
    /// shared storage): a helper that mounts the volume must mount the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<Value>,
}

/// The calls the engine needs of a Swarm manager.
///
/// Each call is a single request; none retries or sleeps. Read calls change nothing.
pub trait SwarmPort: Send + Sync {
    /// This daemon's place in a swarm.
    fn membership(&self) -> impl Future<Output = Result<SwarmMembership, DockerError>> + Send;

    /// Every service (jobs included).
    fn list_services(&self) -> impl Future<Output = Result<Vec<ServiceRef>, DockerError>> + Send;

    /// A service by id or name, as the manager holds it.
    ///
    /// Errors: [`DockerError::NotFound`] when there is none.
    fn inspect_service(&self, id: &str) -> impl Future<Output = Result<ServiceInspect, DockerError>> + Send;

    /// Replaces a service's spec. `version` is the one the spec was read at: the manager
    /// refuses the update when the service changed since (an update by someone else).
    ///
    /// Errors: the manager's answer (a stale version is [`DockerError::Api`] with its text).
    fn update_service(
        &self,
        id: &str,
        version: u64,
        spec: Value,
    ) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// Creates a service (unroot's own helper jobs); returns its id.
    ///
    /// Errors: [`DockerError::Conflict`] when the name is taken.
    fn create_service(&self, spec: Value) -> impl Future<Output = Result<String, DockerError>> + Send;

    /// Removes a service and its tasks.
    ///
    /// Errors: [`DockerError::NotFound`] when it is already gone.
    fn remove_service(&self, id: &str) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// The tasks of a service, every state (Swarm keeps a few ended ones per slot).
    fn list_tasks(&self, service_id: &str) -> impl Future<Output = Result<Vec<TaskRef>, DockerError>> + Send;

    /// Every node of the swarm.
    fn list_nodes(&self) -> impl Future<Output = Result<Vec<NodeRef>, DockerError>> + Send;

    /// What a task printed on stdout and stderr, through the manager (the task may run on
    /// any node).
    fn task_logs(&self, task_id: &str) -> impl Future<Output = Result<super::Finished, DockerError>> + Send;

    /// Stores `data` as a Swarm config (at most 500 KB) that tasks can mount as a file;
    /// returns its id.
    ///
    /// Errors: [`DockerError::Conflict`] when the name is taken.
    fn create_config(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        data: &[u8],
    ) -> impl Future<Output = Result<String, DockerError>> + Send;

    /// Removes a config.
    ///
    /// Errors: [`DockerError::NotFound`] when it is already gone; a config still used by a
    /// service is refused.
    fn remove_config(&self, id: &str) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// The secrets (`Secret`) or configs (`Config`) the swarm holds.
    fn list_objects(&self, kind: ObjectKind) -> impl Future<Output = Result<Vec<SwarmObject>, DockerError>> + Send;
}

/// A kind of object a service's spec names and that can be removed apart from it: secrets
/// and configs its tasks carry as files, the networks they join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Secret,
    Config,
    Network,
}

impl ObjectKind {
    /// Where a spec lists them (`/TaskTemplate/ContainerSpec/Secrets`), the field that holds
    /// one's id and the one that names it.
    fn fields(self) -> (&'static str, &'static str, &'static str) {
        match self {
            ObjectKind::Secret => ("/TaskTemplate/ContainerSpec/Secrets", "SecretID", "SecretName"),
            ObjectKind::Config => ("/TaskTemplate/ContainerSpec/Configs", "ConfigID", "ConfigName"),
            ObjectKind::Network => ("/TaskTemplate/Networks", "Target", "Target"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Secret => "secret",
            ObjectKind::Config => "config",
            ObjectKind::Network => "network",
        }
    }
}

/// `spec` without the secrets, configs and networks that no longer exist (ids not in
/// `exists` for their kind: `docker secret rm`, `docker stack rm`), and the names of those
/// left out (`secret db_password`). The manager refuses a spec that names a missing one, so
/// a restore leaves it out and says so.
pub fn without_missing(spec: &Value, exists: impl Fn(ObjectKind, &str) -> bool) -> (Value, Vec<String>) {
    let mut spec = spec.clone();
    let mut gone = Vec::new();
    for kind in [ObjectKind::Secret, ObjectKind::Config, ObjectKind::Network] {
        let (list, id, name) = kind.fields();
        let Some(items) = spec.pointer_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        items.retain(|item| {
            let keep = item[id].as_str().is_none_or(|i| exists(kind, i));
            if !keep {
                gone.push(format!("{} {}", kind.as_str(), item[name].as_str().unwrap_or_default()));
            }
            keep
        });
        let (parent, field) = list.rsplit_once('/').expect("a pointer");
        if items.is_empty()
            && let Some(holder) = spec.pointer_mut(parent).and_then(Value::as_object_mut)
        {
            holder.remove(field);
        }
    }
    (spec, gone)
}

/// The service called exactly `name`: the manager answers a lookup by an id prefix too.
///
/// Errors: [`DockerError::NotFound`] when no service has that name; the manager's errors.
pub async fn inspect_service_named(port: &impl SwarmPort, name: &str) -> Result<ServiceInspect, DockerError> {
    let not_called = || DockerError::NotFound(format!("no service is called {name}"));
    match port.inspect_service(name).await {
        Ok(s) if s.name() == name => Ok(s),
        Ok(_) => Err(not_called()),
        Err(e) if super::is_ambiguous_prefix(&e) => Err(not_called()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn manager_times_compare_at_nanoseconds() {
        assert!(later_than("2026-11-27T10:00:00.5Z", "2026-11-27T10:00:00.123456789Z"));
        assert!(!later_than("2026-11-27T10:00:00Z", "2026-11-27T10:00:00.1Z"), "no fraction is .0");
        assert!(!later_than("2026-11-27T10:00:00.1Z", "2026-11-27T10:00:00.1Z"));
        assert!(later_than("", "2026-11-27T10:00:00Z"), "unknown counts as later");
    }

    #[test]
    fn modes_read_from_the_spec() {
        let s = |mode: Value| ServiceInspect(json!({"Spec": {"Mode": mode}}));
        assert_eq!(s(json!({"Replicated": {"Replicas": 2}})).mode(), ServiceMode::Replicated { replicas: 2 });
        assert_eq!(s(json!({"Global": {}})).mode(), ServiceMode::Global);
        assert_eq!(s(json!({"GlobalJob": {}})).mode(), ServiceMode::Job);
        assert_eq!(s(json!({"ReplicatedJob": {"MaxConcurrent": 1}})).mode(), ServiceMode::Job);
    }

    #[test]
    fn a_spec_reads_as_the_manager_wrote_it() {
        let global = json!({"Mode": {"Global": {}}, "TaskTemplate": {
            "ContainerSpec": {"User": "999:999", "Secrets": [{"SecretID": "s1", "SecretName": "pw"}]},
            "Placement": {"Constraints": ["node.role==worker"]}, "Networks": [{"Target": "n1"}]}});
        let g = ServiceSpec(&global);
        assert!(g.is_global() && g.user() == "999:999" && g.constraints() == ["node.role==worker"]);
        assert!(g.names(ObjectKind::Secret, "s1") && g.names(ObjectKind::Network, "n1"));
        assert!(!g.names(ObjectKind::Config, "s1") && !g.names(ObjectKind::Secret, "pw"), "by id, of its kind");
        let empty = json!({});
        let e = ServiceSpec(&empty);
        assert!(!e.is_global() && e.user().is_empty() && e.constraints().is_empty());
        assert_eq!(e.replicas(), 1, "a replicated service without a count runs one");
        assert_eq!(ServiceSpec(&json!({"Mode": {"Replicated": {"Replicas": 0}}})).replicas(), 0);
    }

    #[test]
    fn task_states_in_swarms_words() {
        assert_eq!(TaskState::parse("running"), TaskState::Running);
        assert!(TaskState::parse("rejected").ended());
        assert!(TaskState::parse("shutdown").ended());
        assert!(!TaskState::parse("preparing").ended());
        assert_eq!(TaskState::parse("assigned"), TaskState::Pending("assigned".into()));
    }
}
