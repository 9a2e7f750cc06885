//! `unroot verify` (SPEC §7): every planned service of the days through N is running,
//! healthy, configured as planned, and every process runs at the planned uid.

use serde::Serialize;

use crate::docker::swarm::{SwarmMembership, SwarmPort};
use crate::docker::{DockerError, DockerPort, Inspect, Process};
use crate::engine::accounts::{self, Files};
use crate::engine::audit::{describe_missing, missing, missing_controls};
use crate::engine::swarm;
use crate::model::plan::{Plan, Service};
use crate::model::user::UserSpec;

/// One service's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub name: String,
    pub ok: bool,
    pub problems: Vec<String>,
}

/// Resolves a user spec to `(uid, gid?)` with the container's own /etc/passwd and /etc/group
/// (the gid only when the spec names a group).
async fn resolve(port: &impl DockerPort, id: &str, spec: &UserSpec) -> Option<(u32, Option<u32>)> {
    let accounts = accounts::read_for(port, id, spec, Files::UsersAndGroups).await;
    Some((accounts.uid_of(spec)?, accounts.named_gid(spec)?))
}

/// Checks every service of the plan on days up to `through_day` (all days when `None`).
///
/// Errors: only when the daemon fails in a way other than a missing container.
pub async fn verify(
    port: &(impl DockerPort + SwarmPort),
    plan: &Plan,
    through_day: Option<u32>,
) -> Result<Vec<Verdict>, DockerError> {
    let manager = matches!(port.membership().await?, SwarmMembership::Manager { .. });
    let mut out = Vec::new();
    for s in plan.services.iter().filter(|s| through_day.is_none_or(|d| s.day <= d)) {
        let problems = match swarm::kind_of(port, s, manager).await? {
            swarm::Kind::Swarm => swarm::verify::problems(port, s).await?,
            swarm::Kind::Both => {
                vec!["both a container and a Swarm service hold this name; say which with swarm = true or false".into()]
            }
            swarm::Kind::Container => problems_of(port, s).await?,
        };
        out.push(Verdict { name: s.name.clone(), ok: problems.is_empty(), problems });
    }
    Ok(out)
}

/// What is wrong with one planned service now (nothing when it is as planned).
async fn problems_of(port: &impl DockerPort, s: &Service) -> Result<Vec<String>, DockerError> {
    let c = match crate::docker::inspect_named(port, &s.name).await {
        Ok(c) => c,
        Err(DockerError::NotFound(_)) => return Ok(vec!["no such container".into()]),
        Err(e) => return Err(e),
    };
    let mut problems = Vec::new();
    if !c.running() {
        problems.push(format!("not running ({})", c.status()));
    }
    // Docker's first check may be an interval away: a container it still reports as
    // `starting` counts when its own HEALTHCHECK passes now (as the health gate has it).
    if let Some(h) = c.health_status()
        && h != "healthy"
        && !(h == "starting" && crate::engine::health::own_check_passes(port, &c).await)
    {
        problems.push(format!("health is {h}"));
    }
    if s.keep_root.is_some() {
        problems.extend(missing_controls(&c, s).into_iter().map(|m| format!("control missing: {m}")));
        return Ok(problems);
    }
    if let Some(spec) = &s.user {
        let procs = if c.running() {
            crate::docker::own_tree(port.top(c.id()).await.unwrap_or_default(), c.pid())
        } else {
            Vec::new()
        };
        problems.extend(user_problems(port, &c, spec, &procs).await);
    }
    problems.extend(control_problems(&c, s));
    Ok(problems)
}

/// The configured user against the planned one, and every process at the planned uid.
async fn user_problems(port: &impl DockerPort, c: &Inspect, spec: &UserSpec, procs: &[Process]) -> Vec<String> {
    let planned = resolve(port, c.id(), spec).await;
    let actual = match &crate::model::user::configured(c.configured_user()) {
        None => Some((0, None)),
        Some(u) => resolve(port, c.id(), u).await,
    };
    let mut problems = Vec::new();
    match (planned, actual) {
        (Some((pu, pg)), Some((au, ag))) => {
            if pu != au || (pg.is_some() && ag.is_some() && pg != ag) {
                problems.push(format!(
                    "configured user is {:?}, planned {spec}",
                    if c.configured_user().is_empty() { "(unset: root)" } else { c.configured_user() }
                ));
            }
            let wrong: Vec<String> = procs
                .iter()
                .filter(|p| p.uid != Some(pu))
                .map(|p| format!("pid {} as uid {}", p.pid, p.uid.map_or("?".into(), |u| u.to_string())))
                .collect();
            if !wrong.is_empty() {
                problems.push(format!("processes not at uid {pu}: {}", wrong.join(", ")));
            }
        }
        (None, _) => problems.push(format!("the planned user {spec} is unknown in the container")),
        (_, None) => problems.push(format!("its user {} cannot be resolved", c.configured_user())),
    }
    problems
}

/// The planned capabilities, read-only root and no-new-privileges that are not in place.
fn control_problems(c: &Inspect, s: &Service) -> Vec<String> {
    describe_missing(missing(c, s))
}
