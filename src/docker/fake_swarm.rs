//! [`SwarmPort`] of the fake daemon, answered from the swarm its state holds
//! ([`FakeSwarm`], which also says what the manager does on its own); without one the fake is
//! a daemon outside any swarm. Every call is recorded and can be failed like the container
//! calls.

use std::collections::BTreeMap;

use serde_json::{Value, json};

pub use super::fake::FakeSwarm;
use super::fake::{Call, FakeDocker};
use super::swarm::{
    NodeRef, ObjectKind, ServiceInspect, ServiceRef, SwarmMembership, SwarmObject, SwarmPort, TaskRef, TaskState,
};
use super::{DockerError, Finished};

fn not_a_manager() -> DockerError {
    DockerError::Api { status: 503, message: "This node is not a swarm manager.".into() }
}

impl FakeDocker {
    fn on_swarm<T>(
        &self,
        call: &'static str,
        object: &str,
        f: impl FnOnce(&mut FakeSwarm) -> Result<T, DockerError>,
    ) -> Result<T, DockerError> {
        self.enter(Call::Swarm(call, object.to_string()))?;
        self.with(|s| s.swarm.as_mut().map_or_else(|| Err(not_a_manager()), f))
    }
}

impl SwarmPort for FakeDocker {
    async fn membership(&self) -> Result<SwarmMembership, DockerError> {
        Ok(self
            .with(|s| s.swarm.as_ref().map(|w| SwarmMembership::Manager { node_id: w.node_id.clone() }))
            .unwrap_or(SwarmMembership::None))
    }

    async fn list_services(&self) -> Result<Vec<ServiceRef>, DockerError> {
        Ok(self.with(|s| {
            s.swarm
                .iter()
                .flat_map(|w| &w.services)
                .map(|v| ServiceRef {
                    id: v.id().into(),
                    name: v.name().into(),
                    labels: serde_json::from_value(v.0["Spec"]["Labels"].clone()).unwrap_or_default(),
                    created: super::swarm::unix_time(v.0["CreatedAt"].as_str().unwrap_or_default()),
                })
                .collect()
        }))
    }

    async fn inspect_service(&self, id: &str) -> Result<ServiceInspect, DockerError> {
        self.on_swarm("inspect_service", id, |w| w.service(id).cloned())
    }

    async fn update_service(&self, id: &str, version: u64, spec: Value) -> Result<(), DockerError> {
        self.on_swarm("update_service", id, |w| {
            w.refuse_missing_objects(&spec)?;
            let now = w.service(id)?.version();
            if now != version {
                return Err(DockerError::Api { status: 500, message: "update out of sequence".into() });
            }
            let at = w.now();
            let svc = w.services.iter_mut().find(|s| s.id() == id || s.name() == id).expect("found above");
            svc.0["PreviousSpec"] = svc.0["Spec"].clone();
            svc.0["Spec"] = spec.clone();
            svc.0["Version"] = json!({"Index": now + 1});
            svc.0["UpdatedAt"] = json!(at);
            let sid = svc.id().to_string();
            // As Swarm: tasks are replaced only when what they run changes (a new
            // `UpdateConfig` alone replaces none).
            let dirty = ["TaskTemplate", "Mode"].iter().any(|k| svc.0["PreviousSpec"][k] != spec[k]);
            w.updates.push((sid.clone(), version, spec.clone()));
            if dirty {
                w.reconcile(&sid, &spec);
            }
            Ok(())
        })
    }

    async fn create_service(&self, spec: Value) -> Result<String, DockerError> {
        let name = spec["Name"].as_str().unwrap_or_default().to_string();
        self.on_swarm("create_service", &name, |w| {
            if w.service(&name).is_ok() {
                return Err(DockerError::Conflict(format!("service {name} exists")));
            }
            w.refuse_missing_objects(&spec)?;
            let at = w.now();
            let helper = spec.pointer("/Labels/io.unroot.helper").is_some();
            let id = format!("{}{}", if helper { "job" } else { "svc" }, w.clock);
            w.services.push(ServiceInspect(json!({
                "ID": id, "Version": {"Index": 1}, "CreatedAt": at, "UpdatedAt": at, "Spec": spec
            })));
            if helper {
                w.jobs.push(name.clone());
                w.job_images.push(
                    spec.pointer("/TaskTemplate/ContainerSpec/Image")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                );
                w.run_job(&id, &spec);
            } else {
                w.reconcile(&id, &spec);
            }
            Ok(id)
        })
    }

    async fn remove_service(&self, id: &str) -> Result<(), DockerError> {
        self.on_swarm("remove_service", id, |w| {
            let sid = w.service(id)?.id().to_string();
            w.services.retain(|v| v.id() != sid);
            w.tasks.retain(|t| t.service_id != sid);
            Ok(())
        })
    }

    async fn list_tasks(&self, service_id: &str) -> Result<Vec<TaskRef>, DockerError> {
        self.on_swarm("list_tasks", service_id, |w| {
            for t in w.tasks.iter_mut().filter(|t| t.service_id == service_id) {
                if let Some(left) = w.running_jobs.get_mut(&t.id) {
                    *left -= 1;
                    if *left == 0 {
                        w.running_jobs.remove(&t.id);
                        t.state = TaskState::Complete;
                    }
                }
            }
            Ok(w.tasks.iter().filter(|t| t.service_id == service_id).cloned().collect())
        })
    }

    async fn list_nodes(&self) -> Result<Vec<NodeRef>, DockerError> {
        self.on_swarm("list_nodes", "", |w| Ok(w.nodes.clone()))
    }

    async fn task_logs(&self, task_id: &str) -> Result<Finished, DockerError> {
        self.on_swarm("task_logs", task_id, |w| {
            w.logs.get(task_id).cloned().ok_or_else(|| DockerError::NotFound(task_id.into()))
        })
    }

    async fn create_config(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        data: &[u8],
    ) -> Result<String, DockerError> {
        self.on_swarm("create_config", name, |w| {
            if w.configs.contains_key(name) {
                return Err(DockerError::Conflict(format!("config {name} exists")));
            }
            w.configs.insert(name.to_string(), data.to_vec());
            w.config_labels.insert(name.to_string(), labels);
            Ok(name.to_string())
        })
    }

    async fn list_objects(&self, kind: ObjectKind) -> Result<Vec<SwarmObject>, DockerError> {
        self.on_swarm("list_objects", kind.as_str(), |w| {
            Ok(match kind {
                ObjectKind::Secret => w
                    .secrets
                    .iter()
                    .map(|id| SwarmObject { id: id.clone(), name: id.clone(), ..Default::default() })
                    .collect(),
                ObjectKind::Network => w
                    .networks
                    .iter()
                    .map(|id| SwarmObject { id: id.clone(), name: id.clone(), ..Default::default() })
                    .collect(),
                ObjectKind::Config => w
                    .configs
                    .keys()
                    .map(|id| SwarmObject {
                        id: id.clone(),
                        name: id.clone(),
                        labels: w.config_labels.get(id).cloned().unwrap_or_default(),
                        created: 0,
                    })
                    .collect(),
            })
        })
    }

    async fn remove_config(&self, id: &str) -> Result<(), DockerError> {
        self.on_swarm("remove_config", id, |w| {
            w.configs.remove(id).map(|_| ()).ok_or_else(|| DockerError::NotFound(id.into()))
        })
    }
}
