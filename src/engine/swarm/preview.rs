//! A Swarm service of the day computed before anything changes (SPEC §11 steps 1–3): its
//! mode and replicas, the nodes its tasks may run on and the mounts re-owned on each, the
//! spec it is updated to (as a diff in `docker service inspect`'s names), and blockers.
//! Everything is read first ([`observe`]); the decisions are a pure function of what was
//! read ([`derive`]).

use serde::Serialize;

use super::placement::{self, NodePlan};
use crate::docker::swarm::spec::{self, SpecChanges};
use crate::docker::swarm::{
    Availability, NodeRef, NodeState, ServiceInspect, ServiceMode, SpecMount, SwarmMembership, SwarmPort, TaskRef,
    TaskState, inspect_service_named,
};
use crate::docker::{DockerError, DockerPort};
use crate::engine::accounts;
use crate::model::mount::MountKind;
use crate::model::owner::Owner;
use crate::model::plan::{Ownership, Plan, Service, Timings};
use crate::model::user::{Accounts, IdOrName, UserChange};

/// One Swarm service of the day, as apply will move it.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmServicePlan {
    pub name: String,
    pub id: String,
    #[serde(flatten)]
    pub mode: Option<ServiceMode>,
    pub user: UserChange,
    pub nodes: Vec<NodePlan>,
    /// The spec fields that change, as `docker service inspect` names them under `Spec`.
    pub spec_changes: Vec<String>,
    pub health: String,
    pub blockers: Vec<String>,
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub resolved: Option<SwarmResolved>,
}

/// Everything apply needs for one service.
#[derive(Debug, Clone)]
pub struct SwarmResolved {
    pub original: ServiceInspect,
    /// The spec it is updated to.
    pub spec: serde_json::Value,
    /// The owner its mounts are re-owned to; `None` when the user does not change.
    pub target: Option<Owner>,
    /// Ids of the nodes whose mounts are re-owned.
    pub nodes: Vec<String>,
    pub mounts: Vec<SpecMount>,
    pub timings: Timings,
    /// Whether hard-linked files are re-owned too.
    pub hardlinks: bool,
}

impl SwarmResolved {
    /// The spec the service keeps once its tasks passed the gate: `spec` with the
    /// original's own `UpdateConfig` (see [`spec::settled`]).
    pub fn settled_spec(&self) -> serde_json::Value {
        spec::settled(&self.spec, self.original.spec())
    }

    /// Whether `current` is the planned spec, during its update or after.
    pub fn is_planned(&self, current: &serde_json::Value) -> bool {
        super::steps::same_spec(current, &self.spec) || super::steps::same_spec(current, &self.settled_spec())
    }
}

/// What the manager shows of a service, read before any decision.
#[derive(Debug, Clone)]
pub struct Observed {
    pub membership: SwarmMembership,
    pub service: Result<ServiceInspect, String>,
    pub tasks: Vec<TaskRef>,
    pub nodes: Vec<NodeRef>,
    /// The image's `Config.User`, when the image is on the manager.
    pub image_user: Option<String>,
    /// The image's accounts, when the plan names a user or group that needs them and the
    /// image is on the manager.
    pub accounts: Option<Accounts>,
    /// The manager's API version (`1.41`).
    pub api_version: String,
}

/// Whether the plan's user or groups need the image's /etc/passwd or /etc/group.
fn needs_accounts(s: &Service) -> bool {
    let named = |p: &IdOrName| matches!(p, IdOrName::Name(n) if n != "root");
    s.user.as_ref().is_some_and(|u| named(&u.user) || u.group.as_ref().is_some_and(named) || u.group.is_none())
        || s.group_add.iter().any(|g| g.parse::<u32>().is_err())
}

/// Reads everything the decisions need. Creates and removes one never-started probe
/// container on the manager when names must be looked up in the image.
///
/// Errors: the manager's answers to listing nodes and tasks; a missing service is an
/// observation (it becomes a blocker).
pub async fn observe(port: &(impl DockerPort + SwarmPort), s: &Service) -> Result<Observed, DockerError> {
    let membership = port.membership().await?;
    let mut o = Observed {
        membership: membership.clone(),
        service: Err(String::new()),
        tasks: Vec::new(),
        nodes: Vec::new(),
        image_user: None,
        accounts: None,
        api_version: port.daemon().api_version.clone(),
    };
    if !matches!(membership, SwarmMembership::Manager { .. }) {
        return Ok(o);
    }
    let service = match inspect_service_named(port, &s.name).await {
        Ok(svc) => svc,
        Err(DockerError::NotFound(_)) => {
            o.service = Err(format!("no Swarm service is called {}", s.name));
            return Ok(o);
        }
        Err(e) => return Err(e),
    };
    o.tasks = port.list_tasks(service.id()).await?;
    o.nodes = port.list_nodes().await?;
    o.image_user = crate::docker::image_user(port, service.image()).await;
    if o.image_user.is_some() && needs_accounts(s) {
        o.accounts = accounts::probe(port, service.image(), &s.name).await.ok();
    } else if needs_accounts(s) {
        // The manager does not have the image: its users are read on a node that does.
        let nodes: Vec<String> = o.nodes.iter().filter(|n| n.schedulable()).map(|n| n.id.clone()).collect();
        let allowed: Vec<String> = nodes
            .into_iter()
            .filter(|id| {
                o.nodes
                    .iter()
                    .find(|n| &n.id == id)
                    .is_some_and(|n| super::placement::allows(&service.constraints(), n).unwrap_or(true))
            })
            .collect();
        o.accounts = super::check::accounts(port, &service, &allowed).await;
    }
    o.service = Ok(service);
    Ok(o)
}

/// The service's plan from what was observed.
pub fn derive(plan: &Plan, s: &Service, o: &Observed) -> SwarmServicePlan {
    let mut sp = SwarmServicePlan {
        name: s.name.clone(),
        id: String::new(),
        mode: None,
        user: UserChange { from: "?".into(), to: "?".into() },
        nodes: Vec::new(),
        spec_changes: Vec::new(),
        health: String::new(),
        blockers: Vec::new(),
        warnings: Vec::new(),
        resolved: None,
    };
    let Some(svc) = service_to_move(&mut sp, o) else { return sp };
    sp.blockers.extend(plan_blockers(s, o));
    let (target, groups) = user_change(&mut sp, s, svc, o);
    let mounts = mounts_and_nodes(&mut sp, s, svc, o, target.is_some());
    sp.health = if svc.has_healthcheck() {
        "every task running and healthy".to_string()
    } else {
        "every task running (no HEALTHCHECK in the spec; the image's own counts if it has one)".to_string()
    };

    let parallelism = plan.rollout.parallelism as u64;
    let changes = SpecChanges::of(s, target, groups, parallelism);
    let new_spec = spec::updated(svc.spec(), &changes, &s.timings);
    sp.spec_changes = spec::diff(svc.spec(), &new_spec);
    if sp.blockers.is_empty() {
        sp.resolved = Some(SwarmResolved {
            original: svc.clone(),
            spec: new_spec,
            target,
            nodes: sp.nodes.iter().filter(|n| !n.mounts.is_empty()).map(|n| n.id.clone()).collect(),
            mounts: if target.is_some() { mounts } else { Vec::new() },
            timings: s.timings,
            hardlinks: s.hardlinks,
        });
    }
    sp
}

/// The service as the manager showed it, with its id and mode in `sp`; `None`, with the
/// blocker in `sp`, when there is nothing to move: no manager, no such service, or a job.
fn service_to_move<'o>(sp: &mut SwarmServicePlan, o: &'o Observed) -> Option<&'o ServiceInspect> {
    if !matches!(o.membership, SwarmMembership::Manager { .. }) {
        sp.blockers.push("the daemon is not a Swarm manager: services are read and changed on a manager".into());
        return None;
    }
    let svc = match &o.service {
        Ok(svc) => svc,
        Err(why) => {
            sp.blockers.push(why.clone());
            return None;
        }
    };
    sp.id = svc.id().chars().take(12).collect();
    let mode = svc.mode();
    sp.mode = Some(mode);
    if mode == ServiceMode::Job {
        sp.blockers.push("a job runs to its end and is not migrated".into());
        return None;
    }
    Some(svc)
}

/// What the plan asks of the service that a service cannot take (here, or from this
/// manager's API).
fn plan_blockers(s: &Service, o: &Observed) -> Vec<String> {
    let mut blockers = Vec::new();
    if s.ownership == Ownership::Host {
        blockers.push("ownership = \"host\": a service's volumes are re-owned by helper jobs on its nodes".into());
    }
    blockers.extend(container_only_keys(s));
    if s.no_new_privileges == Some(true) && !crate::docker::ApiVersion(1, 46).reached_by(&o.api_version) {
        blockers.push(format!(
            "no_new_privileges: a service's tasks get it from API 1.46 (Engine 27) on; this manager speaks {}",
            o.api_version
        ));
    }
    blockers
}

/// The user, from what its tasks start as to the plan's, into `sp.user`; returns the owner
/// its mounts are re-owned to (`None`: the user does not change, or cannot be resolved,
/// which is a blocker in `sp`) and the gids of the plan's `group_add`.
fn user_change(
    sp: &mut SwarmServicePlan,
    s: &Service,
    svc: &ServiceInspect,
    o: &Observed,
) -> (Option<Owner>, Vec<u32>) {
    let configured = svc.configured_user();
    sp.user.from = match (configured, o.image_user.as_deref()) {
        ("", Some("")) => "(unset) root".to_string(),
        ("", Some(u)) => format!("(image) {u}"),
        ("", None) => "(image's USER; the image is not on the manager)".to_string(),
        (u, _) => u.to_string(),
    };
    let accounts = o.accounts.clone().unwrap_or_default();
    let target = match &s.user {
        None => None,
        Some(u) => match accounts.target(u) {
            Ok(t) => Some(t.owner),
            Err(e) if o.accounts.is_none() && needs_accounts(s) => {
                sp.blockers.push(format!(
                    "{e}: the image {} is not on the manager, and no node could print its /etc/passwd (a job found none with the image and a shell); write the user as uid:gid",
                    svc.image()
                ));
                None
            }
            Err(e) => {
                sp.blockers.push(e.to_string());
                None
            }
        },
    };
    sp.user.to = match (&s.user, target) {
        (None, _) => format!("{} (unchanged)", sp.user.from),
        (Some(u), Some(t)) if u.to_string() != t.to_string() => format!("{u} ({t})"),
        (Some(_), Some(t)) => t.to_string(),
        (Some(u), None) => u.to_string(),
    };
    let mut groups = Vec::new();
    for g in &s.group_add {
        match g.parse::<u32>().ok().or_else(|| accounts.groups.get(g).copied()) {
            Some(gid) => groups.push(gid),
            None => sp.blockers.push(format!("group_add: `{g}` is not in the image's /etc/group")),
        }
    }
    (target, groups)
}

/// The mounts re-owned (writable volumes and binds, those of `chown` when the plan names
/// them), and where: the nodes into `sp.nodes` (see [`place`]), and what cannot be re-owned
/// or must be the same on every node into `sp`'s blockers and warnings. `reowns`: the user
/// changes, so the mounts are re-owned.
fn mounts_and_nodes(
    sp: &mut SwarmServicePlan,
    s: &Service,
    svc: &ServiceInspect,
    o: &Observed,
    reowns: bool,
) -> Vec<SpecMount> {
    let mounts: Vec<SpecMount> = svc
        .mounts()
        .into_iter()
        .filter(|m| !m.read_only && m.kind.holds_data())
        .filter(|m| s.chown.as_ref().is_none_or(|paths| paths.iter().any(|p| p.to_str() == Some(m.target.as_str()))))
        .collect();
    place(sp, svc, o, &mounts, reowns);
    if sp.nodes.is_empty() {
        sp.blockers.push("no node of the swarm satisfies the service's placement".into());
    }
    for m in mounts.iter().filter(|m| m.kind == MountKind::Bind && reowns) {
        if let Some(why) = crate::engine::reown::protected_bind_as_written(&m.source) {
            sp.blockers.push(format!("bind mount {}: {why}; unroot never re-owns it", m.source));
        }
    }
    if mounts.iter().any(|m| m.source.is_empty()) {
        sp.blockers.push("an anonymous volume (no source): each task has its own, which unroot cannot re-own".into());
    }
    for m in mounts.iter().filter(|m| m.kind == MountKind::Bind) {
        sp.warnings.push(format!(
            "bind {} is re-owned on every node listed: it must be the same path, holding this service's data, on each",
            m.source
        ));
    }
    mounts
}

/// The nodes the service may run on, each with its tasks and the mounts re-owned there
/// (only where a task of it ran, when `reowns`), into `sp.nodes`; a node that is not active,
/// not ready or ran no task is said in `sp`'s warnings or blockers.
fn place(sp: &mut SwarmServicePlan, svc: &ServiceInspect, o: &Observed, mounts: &[SpecMount], reowns: bool) {
    let constraints = svc.constraints();
    let running: Vec<&TaskRef> = o.tasks.iter().filter(|t| t.state == TaskState::Running).collect();
    let mut nodes: Vec<&NodeRef> = o.nodes.iter().collect();
    nodes.sort_by(|a, b| a.hostname.cmp(&b.hostname).then(a.id.cmp(&b.id)));
    for node in nodes {
        let allowed = match placement::allows(&constraints, node) {
            Ok(a) => a,
            Err(why) => {
                // Unknown where it may run: the nodes that run it now.
                sp.warnings.push(why);
                running.iter().any(|t| t.node_id == node.id)
            }
        };
        if !allowed {
            continue;
        }
        // Swarm places no task on a paused or drained node, and a job runs none there: its
        // copy is not re-owned, which matters once the node is active again.
        if node.availability != Availability::Active {
            if reowns && !mounts.is_empty() {
                sp.warnings.push(format!(
                    "node {} ({}) is {}: its copy of the volumes is not re-owned; a task placed there once it is active would run as the new user on data of the old owner",
                    node.hostname, node.id, node.availability
                ));
            }
            continue;
        }
        let here = running.iter().filter(|t| t.node_id == node.id).count();
        if node.state != NodeState::Ready {
            sp.blockers.push(format!(
                "node {} ({}) is {}: its copy of the service's volumes cannot be re-owned",
                node.hostname, node.id, node.state
            ));
        }
        // Only a node where a task of the service ran holds a copy of its data: elsewhere a
        // job would create the volume to re-own it.
        let ran_here = o.tasks.iter().any(|t| t.node_id == node.id);
        if !ran_here && reowns && !mounts.is_empty() {
            sp.warnings.push(format!(
                "node {} ({}) shows no task of the service (Swarm keeps only the last few): nothing is re-owned or created there; a copy of its volumes on that node keeps its owners",
                node.hostname, node.id
            ));
        }
        let shown: Vec<String> = mounts
            .iter()
            .filter(|_| reowns && ran_here)
            .map(|m| format!("{} {} -> {}", m.kind, m.source, m.target))
            .collect();
        sp.nodes.push(NodePlan {
            id: node.id.clone(),
            hostname: node.hostname.clone(),
            state: node.state.clone(),
            tasks: here,
            mounts: shown,
        });
    }
}

/// The blocker of a service whose plan sets keys only containers take yet.
fn container_only_keys(s: &Service) -> Option<String> {
    (!s.tmpfs.is_empty() || !s.security_opt.is_empty() || s.healthcheck.is_some()).then(|| {
        "tmpfs, security_opt and healthcheck are applied to containers; a Swarm service's spec cannot yet carry them through unroot (set them in the stack file)"
            .to_string()
    })
}

#[cfg(test)]
mod tests;
