//! The swarm a fake daemon manages, held as data ([`FakeSwarm`]) that tests fill in, and
//! what its manager does on its own: an update replaces the service's tasks with new ones as
//! the spec says (failing those of `fails_as`), and a helper job's tasks complete on their
//! nodes with the output its script would print for a mount holding `./a` of root. The
//! fake's [`State`](super::State) holds one; the calls that reach it are in `fake_swarm`.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use crate::docker::swarm::{DesiredState, NodeRef, ObjectKind, ServiceInspect, TaskRef, TaskState};
use crate::docker::{DockerError, Finished};

/// A manager's view of its swarm.
#[derive(Debug, Clone, Default)]
pub struct FakeSwarm {
    pub node_id: String,
    pub services: Vec<ServiceInspect>,
    pub tasks: Vec<TaskRef>,
    pub nodes: Vec<NodeRef>,
    /// Every update, as (service id, version, spec).
    pub updates: Vec<(String, u64, Value)>,
    /// Tasks that run as this user fail instead of running.
    pub fails_as: Option<String>,
    pub configs: BTreeMap<String, Vec<u8>>,
    /// The labels each config was created with.
    pub config_labels: BTreeMap<String, BTreeMap<String, String>>,
    /// The ids of the swarm's secrets.
    pub secrets: Vec<String>,
    /// The ids of the networks (a spec naming another is refused).
    pub networks: Vec<String>,
    /// Images a node does not have, as (node id, image): a job's task there is rejected.
    pub missing_images: Vec<(String, String)>,
    /// What each job task printed, by task id.
    pub logs: HashMap<String, Finished>,
    /// Every job created, by name, in order.
    pub jobs: Vec<String>,
    /// The image of each job in `jobs`.
    pub job_images: Vec<String>,
    /// Where a job's task ran, as (job name, node id).
    pub job_tasks: Vec<(String, String)>,
    /// How many looks at its tasks a job's task stays running before it completes (0: it
    /// completes at once).
    pub job_looks: usize,
    /// Job tasks still running, with the looks left.
    pub running_jobs: HashMap<String, usize>,
    /// The manager's clock (see [`FakeSwarm::now`]).
    pub clock: u64,
}

impl FakeSwarm {
    pub(in crate::docker) fn service(&self, id: &str) -> Result<&ServiceInspect, DockerError> {
        self.services
            .iter()
            .find(|s| s.id() == id || s.name() == id)
            .ok_or_else(|| DockerError::NotFound(format!("service {id} not found")))
    }

    /// The manager's clock: a later time at each call.
    pub fn now(&mut self) -> String {
        self.clock += 1;
        format!("2026-01-01T00:{:02}:{:02}.{:09}Z", self.clock / 60_000 % 60, self.clock / 1000 % 60, self.clock % 1000)
    }

    /// As the manager: a spec that names a secret or config the swarm does not hold is
    /// refused.
    pub(in crate::docker) fn refuse_missing_objects(&self, spec: &Value) -> Result<(), DockerError> {
        let (_, missing) = crate::docker::swarm::without_missing(spec, |kind, id| match kind {
            ObjectKind::Secret => self.secrets.iter().any(|s| s == id),
            ObjectKind::Config => self.configs.contains_key(id),
            ObjectKind::Network => self.networks.iter().any(|n| n == id),
        });
        match missing.first() {
            Some(m) => Err(DockerError::Api { status: 400, message: format!("{m} not found") }),
            None => Ok(()),
        }
    }

    /// What `docker service rollback` does: the service's `PreviousSpec` becomes its spec
    /// (and the spec its `PreviousSpec`), and its tasks follow.
    pub fn rollback(&mut self, id: &str) {
        let at = self.now();
        let svc = self.services.iter_mut().find(|s| s.id() == id).expect("a service of the fake");
        let previous = svc.0["PreviousSpec"].take();
        assert!(!previous.is_null(), "no previous spec to roll back to");
        svc.0["PreviousSpec"] = std::mem::replace(&mut svc.0["Spec"], previous.clone());
        let version = svc.version();
        svc.0["Version"] = json!({"Index": version + 1});
        svc.0["UpdatedAt"] = json!(at);
        if ["TaskTemplate", "Mode"].iter().any(|k| svc.0["PreviousSpec"][k] != previous[k]) {
            self.reconcile(id, &previous);
        }
    }

    /// The nodes a spec's tasks go to: the one a `node.id==` constraint names, none for a
    /// parking constraint, else every node.
    fn placed(&self, spec: &Value) -> Vec<String> {
        let constraints: Vec<&str> = spec
            .pointer("/TaskTemplate/Placement/Constraints")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if constraints.iter().any(|c| c.starts_with("node.labels.io.unroot.parked")) {
            return Vec::new();
        }
        let excluded: Vec<&str> = constraints.iter().filter_map(|c| c.strip_prefix("node.id!=")).collect();
        match constraints.iter().find_map(|c| c.strip_prefix("node.id==")) {
            Some(id) => vec![id.to_string()],
            None => self.nodes.iter().map(|n| n.id.clone()).filter(|n| !excluded.contains(&n.as_str())).collect(),
        }
    }

    /// Replaces the tasks of service `id` by those its spec asks for.
    pub fn reconcile(&mut self, id: &str, spec: &Value) {
        for t in self.tasks.iter_mut().filter(|t| t.service_id == id && t.desired == DesiredState::Running) {
            t.desired = DesiredState::Shutdown;
            if t.state == TaskState::Running {
                t.state = TaskState::Shutdown("shutdown".into());
            }
        }
        let nodes = self.placed(spec);
        let count = match spec.pointer("/Mode/Replicated/Replicas").and_then(Value::as_u64) {
            Some(n) if !nodes.is_empty() => n as usize,
            _ if spec.pointer("/Mode/Global").is_some() => nodes.len(),
            _ => 0,
        };
        let user = spec.pointer("/TaskTemplate/ContainerSpec/User").and_then(Value::as_str).unwrap_or("").to_string();
        let fails = self.fails_as.as_deref() == Some(user.as_str());
        let image = spec.pointer("/TaskTemplate/ContainerSpec/Image").and_then(Value::as_str).unwrap_or_default();
        let global = spec.pointer("/Mode/Global").is_some();
        let missing = self.missing_images.clone();
        let has_image = |n: &String| !missing.iter().any(|(m, i)| m == n && i == image);
        let fallback = nodes.iter().find(|n| has_image(n)).cloned();
        let mut placed: Vec<String> = Vec::new();
        for i in 0..count {
            let node = nodes[i % nodes.len()].clone();
            // A node without the image rejects the task, as Swarm's does when nothing can be
            // pulled; a replica is then placed again on a node that has it.
            if !global
                && !has_image(&node)
                && let Some(other) = &fallback
            {
                placed.push(node);
                placed.push(other.clone());
            } else {
                placed.push(node);
            }
        }
        for node in placed {
            let created_at = self.now();
            let rejected = !has_image(&node);
            let (state, error) = match (rejected, fails) {
                (true, _) => (TaskState::Failed("rejected".into()), format!("No such image: {image}")),
                (false, true) => (TaskState::Failed("failed".into()), "task: non-zero exit (1)".to_string()),
                (false, false) => (TaskState::Running, String::new()),
            };
            self.tasks.push(TaskRef {
                id: format!("task{}", self.clock),
                service_id: id.to_string(),
                node_id: node,
                desired: if state == TaskState::Running { DesiredState::Running } else { DesiredState::Shutdown },
                state,
                message: String::new(),
                error,
                container_id: String::new(),
                exit_code: None,
                created_at,
                user: user.clone(),
            });
        }
    }

    /// A job's tasks: complete at once on each node it is placed on, printing what its
    /// script prints for a mount that holds `./a` of root.
    pub(in crate::docker) fn run_job(&mut self, id: &str, spec: &Value) {
        let script = spec.pointer("/TaskTemplate/ContainerSpec/Command/2").and_then(Value::as_str).unwrap_or_default();
        let stdout: &[u8] = if script.contains("missing $1") {
            b"END\n"
        } else if script.contains("gone $gone") {
            b"gone 0\n"
        } else if script.contains("NR == FNR") {
            b"applied\n"
        } else {
            b"C 0:0 ./a\nR 0:0\nEND\n"
        };
        // As Swarm schedules: no task on a node that is down, drained or paused.
        let open: Vec<String> = self.nodes.iter().filter(|n| n.schedulable()).map(|n| n.id.clone()).collect();
        let image = spec.pointer("/TaskTemplate/ContainerSpec/Image").and_then(Value::as_str).unwrap_or_default();
        for node in self.placed(spec).into_iter().filter(|n| open.contains(n)) {
            let created_at = self.now();
            let task = format!("task{}", self.clock);
            let missing = self.missing_images.iter().any(|(n, i)| *n == node && i == image);
            let job = spec["Name"].as_str().unwrap_or_default().to_string();
            self.job_tasks.push((job, node.clone()));
            let output = if missing { Vec::new() } else { stdout.to_vec() };
            self.logs.insert(task.clone(), Finished { exit_code: 0, stdout: output, stderr: Vec::new() });
            self.tasks.push(TaskRef {
                id: task.clone(),
                service_id: id.to_string(),
                node_id: node,
                state: match (missing, self.job_looks) {
                    (true, _) => TaskState::Failed("rejected".into()),
                    (false, 0) => TaskState::Complete,
                    (false, _) => TaskState::Running,
                },
                desired: DesiredState::Shutdown,
                message: String::new(),
                error: if missing { format!("No such image: {image}") } else { String::new() },
                container_id: String::new(),
                exit_code: if missing { None } else { Some(0) },
                created_at,
                user: "0:0".into(),
            });
            if !missing && self.job_looks > 0 {
                self.running_jobs.insert(task, self.job_looks);
            }
        }
    }
}
