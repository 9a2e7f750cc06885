//! [`SwarmPort`] of the fake daemon: a swarm held as data ([`FakeSwarm`]) that tests fill
//! in; without one the fake is a daemon outside any swarm.

use serde_json::Value;

use super::fake::FakeDocker;
use super::swarm::{NodeRef, ServiceInspect, ServiceRef, SwarmMembership, SwarmPort, TaskRef};
use super::{DockerError, Finished};

/// A manager's view of its swarm.
#[derive(Debug, Clone, Default)]
pub struct FakeSwarm {
    pub node_id: String,
    pub services: Vec<ServiceInspect>,
    pub tasks: Vec<TaskRef>,
    pub nodes: Vec<NodeRef>,
    /// Every update, as (service id, version, spec).
    pub updates: Vec<(String, u64, Value)>,
}

impl FakeSwarm {
    fn service(&self, id: &str) -> Result<&ServiceInspect, DockerError> {
        self.services
            .iter()
            .find(|s| s.id() == id || s.name() == id)
            .ok_or_else(|| DockerError::NotFound(format!("service {id} not found")))
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
                .map(|v| ServiceRef { id: v.id().into(), name: v.name().into(), labels: Default::default() })
                .collect()
        }))
    }

    async fn inspect_service(&self, id: &str) -> Result<ServiceInspect, DockerError> {
        self.with(|s| match &s.swarm {
            Some(w) => w.service(id).cloned(),
            None => Err(DockerError::Api { status: 503, message: "This node is not a swarm manager.".into() }),
        })
    }

    async fn update_service(&self, id: &str, version: u64, spec: Value) -> Result<(), DockerError> {
        self.with(|s| {
            let w = s.swarm.as_mut().ok_or_else(|| DockerError::NotFound(id.into()))?;
            w.service(id)?;
            w.updates.push((id.to_string(), version, spec));
            Ok(())
        })
    }

    async fn create_service(&self, _spec: Value) -> Result<String, DockerError> {
        Err(DockerError::Api { status: 501, message: "the fake swarm creates no services".into() })
    }

    async fn remove_service(&self, id: &str) -> Result<(), DockerError> {
        self.with(|s| {
            let w = s.swarm.as_mut().ok_or_else(|| DockerError::NotFound(id.into()))?;
            let before = w.services.len();
            w.services.retain(|v| v.id() != id && v.name() != id);
            if w.services.len() == before { Err(DockerError::NotFound(id.into())) } else { Ok(()) }
        })
    }

    async fn list_tasks(&self, service_id: &str) -> Result<Vec<TaskRef>, DockerError> {
        Ok(self
            .with(|s| s.swarm.iter().flat_map(|w| &w.tasks).filter(|t| t.service_id == service_id).cloned().collect()))
    }

    async fn list_nodes(&self) -> Result<Vec<NodeRef>, DockerError> {
        Ok(self.with(|s| s.swarm.iter().flat_map(|w| w.nodes.clone()).collect()))
    }

    async fn task_logs(&self, task_id: &str) -> Result<Finished, DockerError> {
        Err(DockerError::NotFound(task_id.into()))
    }

    async fn create_config(
        &self,
        _name: &str,
        _labels: std::collections::BTreeMap<String, String>,
        _data: &[u8],
    ) -> Result<String, DockerError> {
        Err(DockerError::Api { status: 501, message: "the fake swarm keeps no configs".into() })
    }

    async fn remove_config(&self, id: &str) -> Result<(), DockerError> {
        Err(DockerError::NotFound(id.into()))
    }
}
