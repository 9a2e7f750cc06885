//! The steps that change a Swarm service itself (SPEC §11 steps 4, 6, 7 and 8): stop it,
//! update it to its new spec, gate on its tasks, and put its original spec back. Each reads
//! what the manager shows first and does only what is missing, so running it again (after
//! a crash, from `resume`) is harmless; each update names the version it read, so a change
//! by someone else in between is refused by the manager rather than overwritten.

use std::time::Duration;

use serde_json::{Value, json};

use crate::docker::swarm::{
    DesiredState, NodeState, ServiceInspect, ServiceMode, ServiceSpec, SwarmPort, TaskRef, TaskState, without_missing,
};
use crate::docker::{DockerError, DockerPort};

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
    if ServiceSpec(spec).is_global() {
        let mut constraints = ServiceSpec(spec).constraints();
        let parked = parking_constraint(run);
        if !constraints.contains(&parked) {
            constraints.push(parked);
        }
        s["TaskTemplate"]["Placement"]["Constraints"] = json!(constraints);
    } else {
        s["Mode"] = json!({"Replicated": {"Replicas": 0}});
    }
    s
}

/// Whether `spec` is one that run `run` stopped: parked by its constraint, or (the original
/// running some) at zero replicas.
pub fn stopped_by(spec: &Value, original: &Value, run: &str) -> bool {
    if ServiceSpec(original).is_global() {
        ServiceSpec(spec).constraints().contains(&parking_constraint(run))
    } else {
        ServiceSpec(spec).replicas() == 0 && ServiceSpec(original).replicas() > 0
    }
}

/// What someone else changed in a service since unroot's last write to it, in
/// `docker service inspect`'s field names; `None` when `current` is a spec of this run's:
/// the original, the planned spec (during its update or settled after it), or either of
/// them stopped by run `run`. Without the planned spec (a run of an earlier version saved
/// none) nothing can be told apart: `None`.
pub fn foreign_change(original: &Value, planned: Option<&Value>, current: &Value, run: &str) -> Option<Vec<String>> {
    let planned = planned?;
    let settled = crate::docker::swarm::spec::settled(planned, original);
    let ours = [original, planned, &settled];
    // A restore puts the original back without the secrets and configs pruned since: those
    // that `current` lacks are not a change of someone else's.
    let kept = |s: &Value| without_missing(s, |kind, id| ServiceSpec(current).names(kind, id)).0;
    if ours.iter().any(|s| {
        let s = kept(s);
        same_spec(current, &s) || same_spec(current, &stopped_spec(&s, run))
    }) {
        return None;
    }
    // Named against the spec it was last left at by unroot, as it would be had no one else
    // written (the settled spec; a restore's original when that is nearer).
    let now = normalized(current);
    let against = ours
        .iter()
        .map(|s| crate::docker::swarm::spec::diff(&normalized(s), &now))
        .min_by_key(Vec::len)
        .unwrap_or_default();
    Some(against)
}

/// Why a service's tasks did not become what the update asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    #[error("{0}")]
    Docker(#[from] DockerError),
    /// A task of the new spec failed (its node, state and Swarm's or the task's message).
    #[error("task on node {node} {state}: {message}")]
    TaskFailed { node: String, state: String, message: String },
    /// A node the service's data was re-owned on is not up any more.
    #[error("node {hostname} ({id}) is {state}: the service's tasks and data there are out of reach")]
    NodeDown { hostname: String, id: String, state: NodeState },
    /// A process of a task runs at another uid than the planned one.
    #[error("a task on node {node} runs {command:?} as uid {uid}, not {want}")]
    WrongUid { node: String, uid: u32, command: String, want: u32 },
    /// Swarm paused or rolled back the update.
    #[error("Swarm's update is {0}")]
    UpdateStopped(String),
    /// Not every task ran as asked within the time given (and what the others were doing).
    #[error("{running} of {wanted} task(s) running as {user:?} after {waited:?}{pending}")]
    Timeout { running: usize, wanted: usize, user: String, waited: Duration, pending: String },
}

/// Replaces the current spec by `to` unless it already is `to`, naming the version read.
/// Returns the service as read before (its `UpdatedAt` is the last write before this one)
/// and whether it wrote.
///
/// Guarantees: idempotent (a spec already `to`, as [`same_spec`] compares, is left alone).
/// Errors: the manager refuses (the service changed since it was read, or is gone).
pub async fn put_spec(port: &impl SwarmPort, id: &str, to: &Value) -> Result<(ServiceInspect, bool), DockerError> {
    let now = port.inspect_service(id).await?;
    let wrote = put_spec_over(port, &now, to).await?;
    Ok((now, wrote))
}

/// Replaces `current` (the service as just read) by `to` unless it already is `to`, naming
/// the version read, so the manager refuses the write if anyone changed it since. Returns
/// whether it wrote.
///
/// Guarantees: idempotent, as [`put_spec`].
/// Errors: the manager refuses (a newer version, or the service is gone).
pub async fn put_spec_over(port: &impl SwarmPort, current: &ServiceInspect, to: &Value) -> Result<bool, DockerError> {
    if same_spec(current.spec(), to) {
        return Ok(false);
    }
    port.update_service(current.id(), current.version(), to.clone()).await?;
    Ok(true)
}

/// Writes `spec` over itself when the service is at `spec` and Swarm's `PreviousSpec` is one
/// of unroot's own passing specs (`ours`): `PreviousSpec` then is `spec`, so a `docker service
/// rollback` never goes back to a spec unroot only passed through (a stopped one, its own
/// `UpdateConfig`). Replaces no task (the task template does not change).
///
/// Guarantees: idempotent: a service whose `PreviousSpec` is not `ours`, or that is not at
/// `spec` (changed by someone else), is left alone.
/// Errors: the manager's answers.
pub async fn previous_to_current(
    port: &impl SwarmPort,
    id: &str,
    spec: &Value,
    ours: impl Fn(&Value) -> bool,
) -> Result<(), DockerError> {
    let now = port.inspect_service(id).await?;
    if same_spec(now.spec(), spec) && now.previous_spec().is_some_and(|p| !same_spec(p, spec) && ours(p)) {
        port.update_service(id, now.version(), spec.clone()).await?;
    }
    Ok(())
}

/// Whether two specs say the same, as the manager stores them: Go leaves out zero values
/// (`Delay: 0`, `ReadOnly: false`, empty lists) and gives numbers back as it likes (`0` or
/// `0.0`), so those differences are not differences.
pub fn same_spec(a: &Value, b: &Value) -> bool {
    normalized(a) == normalized(b)
}

fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), normalized(v))).filter(|(_, v)| !is_zero(v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        // `3`, `3.0`: one number; whole ones are shown as integers.
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
            Some(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            None => Value::Null,
        },
        other => other.clone(),
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

/// Stops a service: replicas 0 (or, global, a constraint no node matches), then waits until
/// none of its tasks runs any more on a node that is up (a task on a node that is down
/// cannot be stopped by anyone; Swarm shuts it down when the node comes back).
///
/// Guarantees: idempotent: a service already stopped is only waited for.
/// Errors: the manager refuses the update; a task still runs after `timeout`.
pub async fn stop(port: &impl SwarmPort, id: &str, run: &str, timeout: Duration) -> Result<(), GateError> {
    let now = port.inspect_service(id).await?;
    park(port, id, &stopped_spec(now.spec(), run), timeout).await
}

/// Stops a service by writing `stopped` (a spec that runs no task, see [`stopped_spec`]),
/// then waits as [`stop`] does.
///
/// Guarantees: idempotent, as [`stop`].
/// Errors: as [`stop`].
pub async fn park(port: &impl SwarmPort, id: &str, stopped: &Value, timeout: Duration) -> Result<(), GateError> {
    put_spec(port, id, stopped).await?;
    crate::state::failpoint::hit("service-stopping");
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let up = nodes_up(port).await?;
        let running = port.list_tasks(id).await?.iter().filter(|t| !t.state.ended() && up.contains(&t.node_id)).count();
        if running == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(GateError::Timeout {
                running,
                wanted: 0,
                user: String::new(),
                waited: timeout,
                pending: String::new(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The ids of the nodes that are `ready`.
async fn nodes_up(port: &impl SwarmPort) -> Result<Vec<String>, DockerError> {
    Ok(port.list_nodes().await?.into_iter().filter(|n| n.state == NodeState::Ready).map(|n| n.id).collect())
}

/// How many tasks of `svc` Swarm can run now: its replicas (at most `MaxReplicas` on each
/// node that is ready, active and allowed by its placement, when it sets that limit), or for
/// a global service one per such node. A node that is down lowers it: the gate of a
/// restore waits for what can run, and the gate of an update fails on the node itself.
///
/// Errors: the manager's answer to listing nodes.
pub async fn wanted(port: &impl SwarmPort, svc: &ServiceInspect) -> Result<usize, DockerError> {
    let constraints = svc.constraints();
    let nodes = port
        .list_nodes()
        .await?
        .iter()
        .filter(|n| n.schedulable() && super::placement::allows(&constraints, n).unwrap_or(true))
        .count();
    Ok(match svc.mode() {
        ServiceMode::Replicated { replicas } => match svc.max_replicas_per_node() {
            0 => replicas as usize,
            per_node => (replicas as usize).min(nodes * per_node as usize),
        },
        ServiceMode::Job => 0,
        ServiceMode::Global => nodes,
    })
}

/// What the gate waits for.
#[derive(Debug, Clone)]
pub struct Watch {
    /// The `ContainerSpec.User` of the tasks waited for.
    pub user: String,
    pub wanted: usize,
    /// The last write to the service before the update (manager time): the tasks created
    /// after it are the update's, and one of them that failed fails the gate whatever Swarm
    /// wants of it now (it sets a failed task to shutdown at once). `None` (not known): the
    /// tasks as `user` that Swarm wants running.
    pub since: Option<String>,
    /// A failed task counts only when it was created after this (manager time): Swarm keeps
    /// failed tasks in its history, and those of a gate that already failed are not news.
    /// `None`: every failed task among those waited for.
    pub failures_after: Option<String>,
    /// Whether Swarm's `UpdateStatus` counts, and which one to disregard.
    pub update: UpdateWatch,
    /// Nodes that must stay up (those whose copy of the data was re-owned): one that goes
    /// down fails the gate, named.
    pub nodes: Vec<String>,
    /// Nodes whose tasks are not waited for and whose failures do not count (a restore's
    /// node that no longer has the image).
    pub ignore: Vec<String>,
    pub timeout: Duration,
    pub stable_for: Duration,
}

/// How the gate reads Swarm's `UpdateStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateWatch {
    /// Not at all (a restore: the status of the update it undoes lingers).
    Ignore,
    /// A paused or rolled-back update fails the gate, unless it is the one that started at
    /// this time (the status the original already carried; Engine 20.10 records none for
    /// an update from zero replicas, so an old one stays).
    UnlessStartedAt(Option<String>),
}

/// Waits until `watch.wanted` tasks of the update run (Swarm reports a task with a
/// HEALTHCHECK running only once it is healthy), and then that none of them fails and Swarm
/// does not pause the update for `stable_for`.
///
/// Guarantees: reads only. Errors: a task of the update fails or is rejected, Swarm pauses
/// or rolls back the update, or the tasks are not all running within `timeout`.
pub async fn gate(port: &(impl SwarmPort + DockerPort), id: &str, watch: &Watch) -> Result<(), GateError> {
    let deadline = tokio::time::Instant::now() + watch.timeout;
    let mut stable_since: Option<tokio::time::Instant> = None;
    loop {
        if !watch.nodes.is_empty()
            && let Some(n) = port
                .list_nodes()
                .await?
                .into_iter()
                .find(|n| watch.nodes.contains(&n.id) && n.state != NodeState::Ready)
        {
            return Err(GateError::NodeDown { hostname: n.hostname, id: n.id, state: n.state });
        }
        let svc = port.inspect_service(id).await?;
        if let UpdateWatch::UnlessStartedAt(stale) = &watch.update
            && let Some(state) = svc.update_state().filter(|s| *s == "paused" || s.starts_with("rollback"))
            && svc.update_started_at() != stale.as_deref()
        {
            return Err(GateError::UpdateStopped(state.to_string()));
        }
        let tasks = port.list_tasks(id).await?;
        let ours: Vec<&TaskRef> = tasks
            .iter()
            .filter(|t| t.user == watch.user && !watch.ignore.contains(&t.node_id))
            .filter(|t| match &watch.since {
                Some(since) => crate::docker::swarm::later_than(&t.created_at, since),
                None => t.desired == DesiredState::Running,
            })
            .collect();
        let news = |t: &&&TaskRef| {
            watch.failures_after.as_deref().is_none_or(|after| crate::docker::swarm::later_than(&t.created_at, after))
        };
        if let Some(bad) = ours.iter().filter(news).find(|t| matches!(t.state, TaskState::Failed(_))) {
            return Err(task_failed(bad));
        }
        let running =
            ours.iter().filter(|t| t.state == TaskState::Running && t.desired == DesiredState::Running).count();
        let now = tokio::time::Instant::now();
        if running >= watch.wanted {
            let since = *stable_since.get_or_insert(now);
            if now - since >= watch.stable_for {
                return processes_at_uid(port, &ours, &watch.user).await;
            }
        } else {
            stable_since = None;
            if now >= deadline {
                return Err(GateError::Timeout {
                    running,
                    wanted: watch.wanted,
                    user: watch.user.clone(),
                    waited: watch.timeout,
                    pending: pending(&ours),
                });
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The processes of the tasks whose containers this daemon runs (the manager's own node:
/// the only tasks a manager can look into) run at the uid of `user`, when it is numeric.
async fn processes_at_uid(port: &impl DockerPort, tasks: &[&TaskRef], user: &str) -> Result<(), GateError> {
    let Some(uid) = user.split(':').next().and_then(|u| u.parse::<u32>().ok()) else {
        return Ok(());
    };
    for t in tasks.iter().filter(|t| t.state == TaskState::Running && !t.container_id.is_empty()) {
        // A task on another node is not a container here.
        let Ok(c) = port.inspect_container(&t.container_id).await else { continue };
        let Ok(processes) = port.top(&t.container_id).await else { continue };
        // The task's own processes: a `docker exec` beside them (a probe, an operator's
        // shell) is not one.
        let own = crate::docker::own_tree(processes, c.pid());
        if let Some(p) = own.iter().find(|p| p.uid.is_some_and(|u| u != uid)) {
            return Err(GateError::WrongUid {
                node: t.node_id.clone(),
                uid: p.uid.unwrap_or_default(),
                command: p.program().to_string(),
                want: uid,
            });
        }
    }
    Ok(())
}

fn task_failed(bad: &TaskRef) -> GateError {
    GateError::TaskFailed {
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
    }
}

/// Why the tasks waited for are not running: each one's node and state in Swarm's words
/// (`pending: no suitable node`), for the timeout's message.
fn pending(ours: &[&TaskRef]) -> String {
    let said: Vec<String> = ours
        .iter()
        .filter(|t| t.state != TaskState::Running)
        .map(|t| {
            let node = if t.node_id.is_empty() { "no node".to_string() } else { format!("node {}", t.node_id) };
            let why = [t.message.as_str(), t.error.as_str()]
                .iter()
                .filter(|m| !m.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(": ");
            format!("{node}: {:?}{}", t.state, if why.is_empty() { String::new() } else { format!(" ({why})") })
        })
        .collect();
    if said.is_empty() { String::new() } else { format!("; {}", said.join("; ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_by_someone_else_is_named_and_unroots_own_specs_are_not() {
        let original = json!({"Mode": {"Replicated": {"Replicas": 2}}, "UpdateConfig": {"Parallelism": 1},
            "TaskTemplate": {"ContainerSpec": {"Image": "x", "Env": ["A=1"]}}});
        let mut planned = original.clone();
        planned["TaskTemplate"]["ContainerSpec"]["User"] = json!("999:999");
        planned["UpdateConfig"] = json!({"Parallelism": 4, "Order": "stop-first"});
        let settled = crate::docker::swarm::spec::settled(&planned, &original);
        for ours in [&original, &planned, &settled, &stopped_spec(&planned, "r1"), &stopped_spec(&original, "r1")] {
            assert_eq!(foreign_change(&original, Some(&planned), ours, "r1"), None, "{ours}");
        }
        let mut by_hand = settled.clone();
        by_hand["TaskTemplate"]["ContainerSpec"]["Env"] = json!(["A=1", "TOKEN=s3cret"]);
        by_hand["TaskTemplate"]["ForceUpdate"] = json!(0);
        let named = foreign_change(&original, Some(&planned), &by_hand, "r1").expect("a foreign change");
        assert_eq!(named, ["TaskTemplate.ContainerSpec.Env: sets TOKEN (values not shown)"]);
        let mut image = settled.clone();
        image["TaskTemplate"]["ContainerSpec"]["Image"] = json!("y");
        let named = foreign_change(&original, Some(&planned), &image, "r1").unwrap();
        assert_eq!(named, [r#"TaskTemplate.ContainerSpec.Image: "x" -> "y""#]);
        let mut args = settled.clone();
        args["TaskTemplate"]["ContainerSpec"]["Args"] = json!(["--password", "hunter2"]);
        let named = foreign_change(&original, Some(&planned), &args, "r1").unwrap();
        assert_eq!(named, ["TaskTemplate.ContainerSpec.Args: changed (values not shown)"]);
        // The restore's own parked spec without a secret pruned since is unroot's.
        let mut with_secret = original.clone();
        with_secret["TaskTemplate"]["ContainerSpec"]["Secrets"] = json!([{"SecretID": "s1", "SecretName": "pw"}]);
        let parked = stopped_spec(&original, "r1");
        assert_eq!(foreign_change(&with_secret, Some(&planned), &parked, "r1"), None);
        // A run of an earlier version saved no planned spec: nothing to tell apart.
        assert_eq!(foreign_change(&original, None, &image, "r1"), None);
    }

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

    #[test]
    fn the_gate_looks_into_the_tasks_on_the_managers_own_node() {
        use crate::docker::Process;
        use crate::docker::fake::FakeDocker;
        use crate::docker::fake_swarm::FakeSwarm;
        let fake = FakeDocker::default();
        let spec = json!({"Name": "db", "Mode": {"Replicated": {"Replicas": 1}},
            "TaskTemplate": {"ContainerSpec": {"Image": "img", "User": "999:999"}}});
        fake.with(|s| {
            let mut w = FakeSwarm::default();
            w.services.push(ServiceInspect(json!({"ID": "svc1", "Version": {"Index": 1}, "Spec": spec})));
            w.nodes.push(crate::docker::swarm::NodeRef {
                id: "n1".into(),
                hostname: "m".into(),
                role: crate::docker::swarm::NodeRole::Manager,
                state: NodeState::Ready,
                availability: crate::docker::swarm::Availability::Active,
                labels: Default::default(),
                engine_labels: Default::default(),
            });
            w.reconcile("svc1", &spec);
            w.tasks[0].container_id = "c1".into();
            s.swarm = Some(w);
        });
        // Its entrypoint is still root: the spec's user alone does not pass the gate. The
        // command line's arguments (a password given as one) are never shown.
        fake.add(
            json!({"Id": "c1", "Name": "/db.1", "State": {"Running": true, "Pid": 100}}),
            vec![Process { pid: 100, ppid: 1, uid: Some(0), command: "/usr/bin/run --password hunter2-secret".into() }],
        );
        let watch = Watch {
            user: "999:999".into(),
            wanted: 1,
            since: None,
            failures_after: None,
            update: UpdateWatch::Ignore,
            nodes: Vec::new(),
            ignore: Vec::new(),
            timeout: Duration::from_secs(5),
            stable_for: Duration::from_millis(1),
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        let e = rt.block_on(gate(&fake, "svc1", &watch)).unwrap_err();
        assert_eq!(e.to_string(), "a task on node n1 runs \"run\" as uid 0, not 999");
        // At 999, with a root shell an operator `docker exec`ed beside it: the task's own
        // process tree passes.
        fake.with(|s| {
            s.processes.insert(
                "c1".into(),
                vec![
                    Process { pid: 100, ppid: 1, uid: Some(999), command: "run".into() },
                    Process { pid: 101, ppid: 100, uid: Some(999), command: "worker".into() },
                    Process { pid: 200, ppid: 1, uid: Some(0), command: "sh".into() },
                ],
            );
        });
        rt.block_on(gate(&fake, "svc1", &watch)).unwrap();
    }

    #[test]
    fn specs_compare_as_the_manager_stores_them() {
        let sent = json!({"UpdateConfig": {"Parallelism": 1, "Delay": 0, "Monitor": 5000000000u64, "MaxFailureRatio": 0},
            "TaskTemplate": {"ContainerSpec": {"User": "999:999", "ReadOnly": false, "Groups": []}}});
        let stored = json!({"UpdateConfig": {"Parallelism": 1, "Monitor": 5000000000u64, "MaxFailureRatio": 0.0},
            "TaskTemplate": {"ContainerSpec": {"User": "999:999"}}});
        assert!(same_spec(&sent, &stored));
        let other = json!({"UpdateConfig": {"Parallelism": 1, "Monitor": 5000000000u64},
            "TaskTemplate": {"ContainerSpec": {"User": "1000:1000"}}});
        assert!(!same_spec(&sent, &other), "a user that differs is a difference");
        let ro = json!({"TaskTemplate": {"ContainerSpec": {"User": "999:999", "ReadOnly": true}}});
        assert!(!same_spec(&ro, &json!({"TaskTemplate": {"ContainerSpec": {"User": "999:999"}}})));
    }
}
