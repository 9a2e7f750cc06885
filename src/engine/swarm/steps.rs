//! The steps that change a Swarm service itself (SPEC §11 steps 4, 6, 7 and 8): stop it,
//! update it to its new spec, gate on its tasks, and put its original spec back. Each reads
//! what the manager shows first and does only what is missing, so running it again (after
//! a crash, from `resume`) is harmless; each update names the version it read, so a change
//! by someone else in between is refused by the manager rather than overwritten.

use std::time::Duration;

use serde_json::{Value, json};

use crate::docker::DockerError;
use crate::docker::swarm::{ServiceInspect, ServiceMode, SwarmPort, TaskRef, TaskState};

/// How often tasks are looked at while waiting.
const POLL: Duration = Duration::from_millis(250);

/// The placement constraint that parks a global service: no node carries this label.
pub fn parking_constraint(run: &str) -> String {
    format!("node.labels.io.unroot.parked=={run}")
}

/// The spec that runs no task: replicas 0, or for a global service a constraint no node
/// matches. Everything else is `spec` as it is.
pub fn stopped_spec(spec: &Value, run: &str) -> Value {
    let mut s = spec.clone();
    if s.pointer("/Mode/Global").is_some() {
        let mut constraints: Vec<Value> =
            s.pointer("/TaskTemplate/Placement/Constraints").and_then(Value::as_array).cloned().unwrap_or_default();
        let parked = json!(parking_constraint(run));
        if !constraints.contains(&parked) {
            constraints.push(parked);
        }
        s["TaskTemplate"]["Placement"]["Constraints"] = json!(constraints);
    } else {
        s["Mode"] = json!({"Replicated": {"Replicas": 0}});
    }
    s
}

/// Why a service's tasks did not become what the update asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    #[error("{0}")]
    Docker(#[from] DockerError),
    /// A task of the new spec failed (its node, state and Swarm's or the task's message).
    #[error("task on node {node} {state}: {message}")]
    TaskFailed { node: String, state: String, message: String },
    /// Swarm paused or rolled back the update.
    #[error("Swarm's update is {0}")]
    UpdateStopped(String),
    /// Not every task ran as asked within the time given.
    #[error("{running} of {wanted} task(s) running as {user:?} after {waited:?}")]
    Timeout { running: usize, wanted: usize, user: String, waited: Duration },
}

/// Replaces the current spec by `to` unless it already is `to`, naming the version read.
///
/// Guarantees: idempotent (a spec already `to` is left alone).
/// Errors: the manager refuses (the service changed since it was read, or is gone).
pub async fn put_spec(port: &impl SwarmPort, id: &str, to: &Value) -> Result<bool, DockerError> {
    let now = port.inspect_service(id).await?;
    if now.spec() == to {
        return Ok(false);
    }
    port.update_service(id, now.version(), to.clone()).await?;
    Ok(true)
}

/// Stops a service: replicas 0 (or, global, a constraint no node matches), then waits until
/// none of its tasks runs any more.
///
/// Guarantees: idempotent: a service already stopped is only waited for.
/// Errors: the manager refuses the update; a task still runs after `timeout`.
pub async fn stop(port: &impl SwarmPort, id: &str, run: &str, timeout: Duration) -> Result<(), GateError> {
    let now = port.inspect_service(id).await?;
    put_spec(port, id, &stopped_spec(now.spec(), run)).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let running = port.list_tasks(id).await?.iter().filter(|t| !t.state.ended()).count();
        if running == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(GateError::Timeout { running, wanted: 0, user: String::new(), waited: timeout });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// How many tasks a spec asks for: its replicas, or one per node allowed for a global
/// service (`nodes`, from the preview).
pub fn wanted(spec: &ServiceInspect, nodes: usize) -> usize {
    match spec.mode() {
        ServiceMode::Replicated { replicas } => replicas as usize,
        ServiceMode::Global => nodes,
        ServiceMode::Job => 0,
    }
}

/// Waits until `wanted` tasks of the service run as `user` (Swarm reports a task with a
/// HEALTHCHECK running only once it is healthy), and then that none of them fails and Swarm
/// does not pause the update for `stable_for`.
///
/// Guarantees: reads only. Errors: a task as `user` fails or is rejected, Swarm pauses or
/// rolls back the update, or the tasks are not all running within `timeout`.
pub async fn gate(
    port: &impl SwarmPort,
    id: &str,
    user: &str,
    wanted: usize,
    timeout: Duration,
    stable_for: Duration,
) -> Result<(), GateError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut stable_since: Option<tokio::time::Instant> = None;
    loop {
        let svc = port.inspect_service(id).await?;
        if let Some(state) = svc.update_state().filter(|s| *s == "paused" || s.starts_with("rollback")) {
            return Err(GateError::UpdateStopped(state.to_string()));
        }
        let tasks = port.list_tasks(id).await?;
        let ours: Vec<&TaskRef> = tasks.iter().filter(|t| t.user == user && t.desired != "shutdown").collect();
        if let Some(bad) = ours.iter().find(|t| matches!(t.state, TaskState::Failed(_))) {
            return Err(GateError::TaskFailed {
                node: bad.node_id.clone(),
                state: match &bad.state {
                    TaskState::Failed(s) => s.clone(),
                    other => format!("{other:?}"),
                },
                message: [bad.message.as_str(), bad.error.as_str()]
                    .iter()
                    .filter(|m| !m.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(": "),
            });
        }
        let running = ours.iter().filter(|t| t.state == TaskState::Running).count();
        let now = tokio::time::Instant::now();
        if running >= wanted {
            let since = *stable_since.get_or_insert(now);
            if now - since >= stable_for {
                return Ok(());
            }
        } else {
            stable_since = None;
            if now >= deadline {
                return Err(GateError::Timeout { running, wanted, user: user.to_string(), waited: timeout });
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replicated_service_stops_at_zero_and_a_global_one_on_no_node() {
        let replicated =
            json!({"Mode": {"Replicated": {"Replicas": 3}}, "TaskTemplate": {"ContainerSpec": {"Image": "x"}}});
        let s = stopped_spec(&replicated, "r1");
        assert_eq!(s["Mode"]["Replicated"]["Replicas"], 0);
        assert_eq!(s["TaskTemplate"], replicated["TaskTemplate"]);

        let global =
            json!({"Mode": {"Global": {}}, "TaskTemplate": {"Placement": {"Constraints": ["node.role==worker"]}}});
        let s = stopped_spec(&global, "r1");
        assert_eq!(
            s["TaskTemplate"]["Placement"]["Constraints"],
            json!(["node.role==worker", "node.labels.io.unroot.parked==r1"])
        );
        assert_eq!(stopped_spec(&s, "r1"), s, "stopping twice is stopping once");
    }
}
