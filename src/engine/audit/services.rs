//! The Swarm services of a manager in the audit (SPEC §7, §11): each service's configured
//! user, the uids of its tasks' processes where the manager can see them (tasks on its own
//! node), classified by the same rules as containers.

use serde::Serialize;

use super::{Class, Flag, Flags, Scope, classify};
use crate::docker::swarm::{ServiceInspect, ServiceMode, SwarmMembership, SwarmPort, TaskRef, TaskState};
use crate::docker::{DockerError, DockerPort};
use crate::engine::accounts::{self, Files};
use crate::model::plan::Plan;
use crate::model::user::Accounts;

/// One service's line of the audit.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceEntry {
    pub name: String,
    pub id: String,
    pub image: String,
    #[serde(flatten)]
    pub mode: ServiceMode,
    pub class: Class,
    /// `ContainerSpec.User`; empty means the image's own `USER`.
    pub configured_user: String,
    /// The user its tasks start as, as a number, when it could be resolved.
    pub configured_uid: Option<u32>,
    /// Tasks Swarm reports running.
    pub tasks_running: usize,
    /// Of those, the ones on this manager's node, whose processes were listed.
    pub tasks_seen: usize,
    /// Distinct uids of the processes of the tasks seen, ascending.
    pub process_uids: Vec<u32>,
    pub flags: Flags,
    /// The `keep_root` reason, for exceptions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
}

impl ServiceEntry {
    /// Root without a documented exception, or an exception whose controls are missing (as
    /// for a container).
    pub fn is_violation(&self) -> bool {
        self.class == Class::Root || (self.class == Class::Exception && self.flags.control_missing())
    }
}

/// The services of the swarm, when this daemon is a manager; none otherwise (a worker
/// cannot read them, and a daemon outside a swarm has none).
///
/// Errors: listing the services; a service removed while it is looked at is left out.
pub async fn run(
    port: &(impl DockerPort + SwarmPort),
    plan: Option<&Plan>,
    scope: &Scope<'_>,
) -> Result<Vec<ServiceEntry>, DockerError> {
    let SwarmMembership::Manager { node_id } = port.membership().await? else {
        return Ok(Vec::new());
    };
    let mut entries = Vec::new();
    let listed = port.list_services().await?;
    // unroot's own checks and helper jobs are as invisible as its probe containers.
    let theirs = listed.iter().filter(|s| !crate::engine::orphans::is_own(&s.labels));
    for s in theirs.filter(|s| scope.admits(&s.name, &s.labels)) {
        match audit_one(port, &s.id, &node_id, plan).await {
            Ok(Some(e)) => entries.push(e),
            Ok(None) | Err(DockerError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// One service; `None` for a job (it runs to completion and is not migrated).
async fn audit_one(
    port: &(impl DockerPort + SwarmPort),
    id: &str,
    node_id: &str,
    plan: Option<&Plan>,
) -> Result<Option<ServiceEntry>, DockerError> {
    let s = port.inspect_service(id).await?;
    if s.mode() == ServiceMode::Job {
        return Ok(None);
    }
    let tasks = port.list_tasks(s.id()).await?;
    let running: Vec<_> = tasks.iter().filter(|t| t.state == TaskState::Running).collect();
    let (uids, seen) = local_task_uids(port, &tasks, node_id).await;

    // The user tasks start as: the spec's, else the image's USER (when the image is here).
    let configured = s.configured_user().to_string();
    let effective =
        if configured.is_empty() { crate::docker::image_user(port, s.image()).await } else { Some(configured.clone()) };
    let configured_uid = match effective.as_deref().map(crate::model::user::configured) {
        Some(None) => Some(0),
        Some(Some(spec)) => match Accounts::default().uid_of(&spec) {
            Some(uid) => Some(uid),
            // A name: the passwd of a task container of this node. With none here it stays
            // unresolved (and counts as root, as for a container): the audit creates nothing,
            // not even a probe.
            None => match seen.first() {
                Some(c) => accounts::read_for(port, c, &spec, Files::Users).await.uid_of(&spec),
                None => None,
            },
        },
        None => None,
    };

    let planned = plan.and_then(|p| p.service(s.name())).filter(|p| p.keep_root.is_some());
    let keep = planned.and_then(|p| p.keep_root.clone());
    let mut flags = Vec::new();
    if let Some(p) = planned {
        flags.extend(super::control_flags(controls_of(&s).missing(p)));
    }
    flags.extend(super::Posture::of_service(&s).flags());
    if running.is_empty() {
        flags.push(Flag::NoTaskRunning);
    } else if seen.len() < running.len() {
        flags.push(Flag::TasksOnOtherNodes(running.len() - seen.len()));
    }
    Ok(Some(ServiceEntry {
        name: s.name().to_string(),
        id: s.id().chars().take(12).collect(),
        image: s.image().split('@').next().unwrap_or_default().to_string(),
        mode: s.mode(),
        class: classify(keep.is_some(), configured_uid.map(|u| u == 0), &uids),
        configured_user: configured,
        configured_uid,
        tasks_running: running.len(),
        tasks_seen: seen.len(),
        process_uids: uids,
        flags: flags.into(),
        exception: keep,
    }))
}

/// The uids of the processes of a service's running tasks on the node `node_id` (the
/// manager's own: the only ones whose processes it can list), and those tasks' containers.
/// Tasks that stop meanwhile are left out.
pub async fn local_task_uids(port: &impl DockerPort, tasks: &[TaskRef], node_id: &str) -> (Vec<u32>, Vec<String>) {
    let mut uids = Vec::new();
    let mut seen = Vec::new();
    let local = tasks.iter().filter(|t| t.state == TaskState::Running && t.node_id == node_id);
    for t in local.filter(|t| !t.container_id.is_empty()) {
        let Ok(c) = port.inspect_container(&t.container_id).await else { continue };
        let Ok(procs) = port.top(&t.container_id).await else { continue };
        uids.extend(crate::docker::own_tree(procs, c.pid()).iter().filter_map(|p| p.uid));
        seen.push(t.container_id.clone());
    }
    uids.sort_unstable();
    uids.dedup();
    (uids, seen)
}

/// The controls a service's tasks get, from its spec.
pub fn controls_of(s: &ServiceInspect) -> super::Controls {
    super::Controls {
        cap_drop: s.cap_drop(),
        cap_add: s.cap_add(),
        read_only: s.read_only(),
        no_new_privileges: s.no_new_privileges(),
        tmpfs: None,
        security_opt: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::fake::FakeDocker;
    use crate::docker::fake_swarm::FakeSwarm;
    use crate::engine::orphans::{LABEL_HELPER, LABEL_MAKER};

    #[test]
    fn unroots_own_checks_and_helper_jobs_are_not_audited() {
        let fake = FakeDocker::default();
        fake.with(|s| s.swarm = Some(FakeSwarm { node_id: "n1".into(), ..Default::default() }));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let names: Vec<String> = rt.block_on(async {
            let helper = serde_json::json!({"Name": "unroot-check-db-1", "Mode": {"Global": {}},
                "Labels": {(LABEL_HELPER): "preview", (LABEL_MAKER): "h/1/1"},
                "TaskTemplate": {"ContainerSpec": {"Image": "img", "User": "0:0"}}});
            fake.create_service(helper).await.unwrap();
            let db = serde_json::json!({"Name": "db", "Mode": {"Replicated": {"Replicas": 1}},
                "TaskTemplate": {"ContainerSpec": {"Image": "img"}}});
            fake.create_service(db).await.unwrap();
            run(&fake, None, &super::Scope::filtered(&[])).await.unwrap().into_iter().map(|e| e.name).collect()
        });
        assert_eq!(names, ["db"]);
    }
}
