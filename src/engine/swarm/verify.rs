//! `unroot verify` of a Swarm service (SPEC §7, §11): its tasks all running, its spec at the
//! planned user and controls, and the processes of the tasks the manager can see (those on
//! its own node) at the planned uid.

use crate::docker::swarm::{
    DesiredState, ServiceInspect, SwarmMembership, SwarmPort, TaskState, inspect_service_named,
};
use crate::docker::{DockerError, DockerPort};
use crate::engine::accounts;
use crate::model::plan::Service;
use crate::model::user::Accounts;

/// What is wrong with one planned Swarm service now (nothing when it is as planned).
///
/// Errors: only the manager's failures other than a missing service.
pub async fn problems(port: &(impl DockerPort + SwarmPort), s: &Service) -> Result<Vec<String>, DockerError> {
    let SwarmMembership::Manager { node_id } = port.membership().await? else {
        return Ok(vec!["a Swarm service, and the daemon is not a Swarm manager".into()]);
    };
    let svc = match inspect_service_named(port, &s.name).await {
        Ok(svc) => svc,
        Err(DockerError::NotFound(_)) => return Ok(vec!["no such Swarm service".into()]),
        Err(e) => return Err(e),
    };
    let mut problems = Vec::new();
    let tasks = port.list_tasks(svc.id()).await?;
    let wanted: Vec<_> = tasks.iter().filter(|t| t.desired == DesiredState::Running).collect();
    let running = wanted.iter().filter(|t| t.state == TaskState::Running).count();
    if wanted.is_empty() || running < wanted.len() {
        problems.push(format!("{running} of {} task(s) running", wanted.len()));
    }
    if s.keep_root.is_some() {
        problems.extend(control_problems(&svc, s));
        return Ok(problems);
    }
    if let Some(spec) = &s.user {
        // Names are read from the image on the manager; numbers need nothing.
        let accounts = match Accounts::default().target(spec) {
            Ok(_) => Accounts::default(),
            Err(_) => accounts::probe(port, svc.image(), &s.name).await.unwrap_or_default(),
        };
        match accounts.target(spec) {
            Ok(t) => {
                let configured = crate::model::user::configured(svc.configured_user());
                let as_owner = configured.as_ref().and_then(|c| accounts.owner_of(c));
                if as_owner != Some(t.owner) {
                    problems.push(format!(
                        "configured user is {:?}, planned {spec} ({})",
                        svc.configured_user(),
                        t.owner
                    ));
                }
                for task in wanted.iter().filter(|t| t.node_id == node_id && t.state == TaskState::Running) {
                    let Ok(c) = port.inspect_container(&task.container_id).await else { continue };
                    let procs =
                        crate::docker::own_tree(port.top(&task.container_id).await.unwrap_or_default(), c.pid());
                    let off: Vec<String> = procs
                        .iter()
                        .filter(|p| p.uid != Some(t.owner.uid))
                        .map(|p| format!("{} as {}", p.program(), p.uid.map_or("?".into(), |u| u.to_string())))
                        .collect();
                    if !off.is_empty() {
                        problems.push(format!("task on this node runs {}", off.join(", ")));
                    }
                }
            }
            Err(e) => problems.push(format!("planned user: {e}")),
        }
    }
    problems.extend(control_problems(&svc, s));
    Ok(problems)
}

/// The planned capabilities, read-only root and no-new-privileges against the spec's, worded
/// as for a container.
fn control_problems(svc: &ServiceInspect, s: &Service) -> Vec<String> {
    let have = crate::engine::audit::controls_of(svc);
    crate::engine::audit::describe_missing(have.missing(s))
}
