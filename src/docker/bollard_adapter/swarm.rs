//! [`SwarmPort`] on a real manager. Lists, tasks, nodes, logs and configs go through bollard
//! and come back as Docker's JSON (the stubs serialise with Docker's field names); a
//! service's inspect, update and create go through the raw client, so a spec is read and
//! sent back exactly as the daemon wrote it (see [`super::raw`]).

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ConfigSpec, LocalNodeState};
use bollard::query_parameters::{
    ListConfigsOptions, ListNetworksOptions, ListNodesOptions, ListSecretsOptions, ListServicesOptions,
    ListTasksOptions, LogsOptions,
};
use futures_util::StreamExt;
use hyper::Method;
use serde_json::Value;

use super::{BollardDocker, collect_output, map_err};
use crate::docker::swarm::{
    Availability, DesiredState, NodeRef, NodeRole, NodeState, ObjectKind, ServiceInspect, ServiceRef, SwarmMembership,
    SwarmObject, SwarmPort, TaskRef, TaskState, unix_time,
};
use crate::docker::{DockerError, Finished};

fn json_of<T: serde::Serialize>(t: &T) -> Result<Value, DockerError> {
    serde_json::to_value(t).map_err(|e| DockerError::Transport(format!("reading an answer: {e}")))
}

/// An id or name as one segment of a request's path: Swarm's ids and names are letters,
/// digits, `-`, `_` and `.`; anything else is percent-encoded.
fn path_part(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("").to_string()
}

/// A task as the engine reads it, from the task's JSON.
fn task_ref(v: &Value) -> TaskRef {
    TaskRef {
        id: text(v, "/ID"),
        service_id: text(v, "/ServiceID"),
        node_id: text(v, "/NodeID"),
        state: TaskState::parse(&text(v, "/Status/State")),
        desired: DesiredState::parse(&text(v, "/DesiredState")),
        message: text(v, "/Status/Message"),
        error: text(v, "/Status/Err"),
        container_id: text(v, "/Status/ContainerStatus/ContainerID"),
        exit_code: v.pointer("/Status/ContainerStatus/ExitCode").and_then(Value::as_i64),
        created_at: text(v, "/CreatedAt"),
        user: text(v, "/Spec/ContainerSpec/User"),
    }
}

/// A JSON object of strings as a map (labels).
fn labels(v: &Value, pointer: &str) -> BTreeMap<String, String> {
    v.pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
        .unwrap_or_default()
}

fn node_ref(v: &Value) -> NodeRef {
    NodeRef {
        id: text(v, "/ID"),
        hostname: text(v, "/Description/Hostname"),
        role: NodeRole::parse(&text(v, "/Spec/Role")),
        state: NodeState::parse(&text(v, "/Status/State")),
        availability: Availability::parse(&text(v, "/Spec/Availability")),
        labels: labels(v, "/Spec/Labels"),
        engine_labels: labels(v, "/Description/Engine/Labels"),
    }
}

impl SwarmPort for BollardDocker {
    async fn membership(&self) -> Result<SwarmMembership, DockerError> {
        let info = self.docker.info().await.map_err(map_err)?;
        let Some(swarm) = info.swarm else { return Ok(SwarmMembership::None) };
        let node_id = swarm.node_id.unwrap_or_default();
        Ok(match (swarm.local_node_state, swarm.control_available) {
            (Some(LocalNodeState::ACTIVE), Some(true)) => SwarmMembership::Manager { node_id },
            (Some(LocalNodeState::ACTIVE), _) => SwarmMembership::Worker { node_id },
            _ => SwarmMembership::None,
        })
    }

    async fn list_services(&self) -> Result<Vec<ServiceRef>, DockerError> {
        let list = self.docker.list_services(None::<ListServicesOptions>).await.map_err(map_err)?;
        list.iter()
            .map(|s| {
                let v = json_of(s)?;
                Ok(ServiceRef {
                    id: text(&v, "/ID"),
                    name: text(&v, "/Spec/Name"),
                    labels: labels(&v, "/Spec/Labels"),
                    created: unix_time(&text(&v, "/CreatedAt")),
                })
            })
            .collect()
    }

    /// The service as the daemon wrote it (through the raw client: bollard's models would
    /// drop `Healthcheck`), without the defaults `docker service inspect` fills in
    /// (`insertDefaults`): that is the spec a restore must send back.
    async fn inspect_service(&self, id: &str) -> Result<ServiceInspect, DockerError> {
        Ok(ServiceInspect(self.raw.json(Method::GET, &format!("/services/{}", path_part(id)), None).await?))
    }

    async fn update_service(&self, id: &str, version: u64, spec: Value) -> Result<(), DockerError> {
        let path = format!("/services/{}/update?version={version}", path_part(id));
        self.raw.json(Method::POST, &path, Some(&spec)).await?;
        Ok(())
    }

    async fn create_service(&self, spec: Value) -> Result<String, DockerError> {
        let created = self.raw.json(Method::POST, "/services/create", Some(&spec)).await?;
        Ok(text(&created, "/ID"))
    }

    async fn remove_service(&self, id: &str) -> Result<(), DockerError> {
        self.docker.delete_service(id).await.map_err(map_err)
    }

    async fn list_tasks(&self, service_id: &str) -> Result<Vec<TaskRef>, DockerError> {
        let filters = HashMap::from([("service".to_string(), vec![service_id.to_string()])]);
        let opts = ListTasksOptions { filters: Some(filters) };
        let tasks = match self.docker.list_tasks(Some(opts)).await.map_err(map_err) {
            Ok(tasks) => tasks,
            // The manager resolves the filter by the service, which a removal deletes at
            // once while its tasks are still stopping: then every task, filtered here.
            Err(DockerError::NotFound(_)) => self.docker.list_tasks(None::<ListTasksOptions>).await.map_err(map_err)?,
            Err(e) => return Err(e),
        };
        // The filter matches ids by prefix and names too: keep the service's own tasks.
        tasks
            .iter()
            .map(|t| json_of(t).map(|v| task_ref(&v)))
            .filter(|t| t.as_ref().map_or(true, |t| t.service_id == service_id))
            .collect()
    }

    async fn list_nodes(&self) -> Result<Vec<NodeRef>, DockerError> {
        let nodes = self.docker.list_nodes(None::<ListNodesOptions>).await.map_err(map_err)?;
        nodes.iter().map(|n| json_of(n).map(|v| node_ref(&v))).collect()
    }

    async fn create_config(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        data: &[u8],
    ) -> Result<String, DockerError> {
        use base64::Engine;
        let spec = ConfigSpec {
            name: Some(name.to_string()),
            labels: Some(labels.into_iter().collect()),
            data: Some(base64::engine::general_purpose::STANDARD.encode(data)),
            templating: None,
        };
        Ok(self.docker.create_config(spec).await.map_err(map_err)?.id)
    }

    async fn remove_config(&self, id: &str) -> Result<(), DockerError> {
        self.docker.delete_config(id).await.map_err(map_err)
    }

    async fn list_objects(&self, kind: ObjectKind) -> Result<Vec<SwarmObject>, DockerError> {
        let all: Vec<Value> = match kind {
            ObjectKind::Secret => {
                let list = self.docker.list_secrets(None::<ListSecretsOptions>).await.map_err(map_err)?;
                list.iter().map(json_of).collect::<Result<_, _>>()?
            }
            ObjectKind::Config => {
                let list = self.docker.list_configs(None::<ListConfigsOptions>).await.map_err(map_err)?;
                list.iter().map(json_of).collect::<Result<_, _>>()?
            }
            ObjectKind::Network => {
                let list = self.docker.list_networks(None::<ListNetworksOptions>).await.map_err(map_err)?;
                // A network lists its id and name at the top, not under `Spec`.
                list.iter()
                    .map(json_of)
                    .map(|v| v.map(|v| serde_json::json!({"ID": v["Id"], "Spec": {"Name": v["Name"], "Labels": v["Labels"]}, "CreatedAt": v["Created"]})))
                    .collect::<Result<_, _>>()?
            }
        };
        Ok(all
            .iter()
            .map(|v| SwarmObject {
                id: text(v, "/ID"),
                name: text(v, "/Spec/Name"),
                labels: labels(v, "/Spec/Labels"),
                created: unix_time(&text(v, "/CreatedAt")),
            })
            .collect())
    }

    async fn task_logs(&self, task_id: &str) -> Result<Finished, DockerError> {
        let opts = LogsOptions { stdout: true, stderr: true, ..Default::default() };
        let mut stream = self.docker.task_logs(task_id, Some(opts));
        let mut out = Finished::default();
        while let Some(chunk) = stream.next().await {
            collect_output(&mut out, chunk.map_err(map_err)?);
        }
        Ok(out)
    }
}
