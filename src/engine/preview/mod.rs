//! The whole day computed before anything changes (SPEC §3 steps 1–3): per service the user
//! change, every other change, the mounts to re-own, blockers and warnings. `unroot plan`
//! prints it; `apply` executes exactly what it holds.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::docker::recreate::Changes;
use crate::docker::swarm::ServiceInspect;
use crate::docker::swarm::{SwarmMembership, SwarmPort};
use crate::docker::{DockerError, DockerPort, Inspect, Original};
use crate::engine::reown::MountId;
use crate::engine::swarm::preview::{SwarmResolved, SwarmServicePlan};
use crate::engine::swarm::{Kind, kind_of};
use crate::model::mount::MountKind;
use crate::model::owner::Owner;
use crate::model::plan::{HealthMode, Ownership, Plan, Timings};
pub use crate::model::user::UserChange;
use crate::model::workload::WorkloadKind;

mod names;
mod service;

use service::service_plan;

/// Where user and group names are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameSource {
    /// The running container's own files, read through the archive API: changes nothing.
    Running,
    /// A created, never-started container of the image: what the replacement will see.
    ImageProbe,
}

/// One mount to re-own.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChownPlan {
    pub target: String,
    pub source: String,
    pub kind: MountKind,
    /// Entries whose owner would change, when cheap to count (the source is local).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
    /// `host` (walked in-process) or `helper` (a helper container).
    pub method: Method,
}

/// How a mount is re-owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Walked in-process on the daemon's host.
    Host,
    /// In a helper container.
    Helper,
}

/// The method for a mount: `helper` and `host` as the plan says (`host` only where it is
/// possible), `auto` in-process when unroot runs as root beside a daemon that remaps no
/// users and sees the mount's data at its host path.
///
/// Errors: `host` asked for where it is not possible.
pub fn method(port: &impl DockerPort, ownership: Ownership, host_path: &str) -> Result<Method, String> {
    let possible = local_view(port)
        && !host_path.is_empty()
        && std::fs::symlink_metadata(host_path).is_ok_and(|m| m.is_dir() || m.is_file());
    match ownership {
        Ownership::Helper => Ok(Method::Helper),
        Ownership::Auto => Ok(if possible { Method::Host } else { Method::Helper }),
        Ownership::Host if possible => Ok(Method::Host),
        Ownership::Host => Err(format!(
            "ownership = \"host\" needs unroot as root on the daemon's host, a daemon without user remapping, and {host_path} visible here"
        )),
    }
}

/// Everything apply needs for one service, resolved to numbers.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub original: Inspect,
    pub changes: Changes,
    /// The plan's `security_opt` as written (a seccomp profile by its path), for the
    /// compose override; `changes` holds the daemon's form.
    pub security_opt_as_written: Vec<String>,
    /// `uid:gid` the mounts are re-owned to; `None` when the user does not change.
    pub target: Option<Owner>,
    pub mounts: Vec<MountId>,
    pub health: HealthMode,
    pub timings: Timings,
    pub hardlinks: bool,
    /// The helper image (`helper_image`, else the service's own image id).
    pub helper_image: String,
    /// Where re-owning runs, as the plan asks.
    pub ownership: Ownership,
}

/// One service of the day.
#[derive(Debug, Clone, Serialize)]
pub struct ServicePlan {
    pub name: String,
    pub user: UserChange,
    pub changes: Vec<String>,
    pub chown: Vec<ChownPlan>,
    pub health: String,
    pub blockers: Vec<String>,
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub resolved: Option<Resolved>,
}

impl ServicePlan {
    /// Nothing known yet: the users are `?`.
    fn new(name: &str) -> ServicePlan {
        ServicePlan {
            name: name.to_string(),
            user: UserChange { from: "?".into(), to: "?".into() },
            changes: Vec::new(),
            chown: Vec::new(),
            health: String::new(),
            blockers: Vec::new(),
            warnings: Vec::new(),
            resolved: None,
        }
    }
}

/// What the day does to one name of the plan: a container's plan or a Swarm service's,
/// each with its `kind` in `plan --json`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[expect(clippy::large_enum_variant, reason = "one per name of a day, made once, never copied in a loop")]
pub enum WorkloadPlan {
    Container(ServicePlan),
    Service(SwarmServicePlan),
}

impl WorkloadPlan {
    pub fn name(&self) -> &str {
        match self {
            WorkloadPlan::Container(s) => &s.name,
            WorkloadPlan::Service(s) => &s.name,
        }
    }

    pub fn kind(&self) -> WorkloadKind {
        match self {
            WorkloadPlan::Container(_) => WorkloadKind::Container,
            WorkloadPlan::Service(_) => WorkloadKind::Service,
        }
    }

    pub fn blockers(&self) -> &[String] {
        match self {
            WorkloadPlan::Container(s) => &s.blockers,
            WorkloadPlan::Service(s) => &s.blockers,
        }
    }

    pub fn warnings(&self) -> &[String] {
        match self {
            WorkloadPlan::Container(s) => &s.warnings,
            WorkloadPlan::Service(s) => &s.warnings,
        }
    }

    fn warnings_mut(&mut self) -> &mut Vec<String> {
        match self {
            WorkloadPlan::Container(s) => &mut s.warnings,
            WorkloadPlan::Service(s) => &mut s.warnings,
        }
    }

    /// The mount sources its re-owning changes (volume names, host paths).
    fn sources(&self) -> Vec<String> {
        match self {
            WorkloadPlan::Container(s) => s.resolved.iter().flat_map(|r| &r.mounts).map(|m| m.source.clone()).collect(),
            WorkloadPlan::Service(s) => s.resolved.iter().flat_map(|r| &r.mounts).map(|m| m.source.clone()).collect(),
        }
    }

    /// What apply needs of it, when nothing blocks it.
    fn into_workload(self) -> Option<Workload> {
        match self {
            WorkloadPlan::Container(s) => s.resolved.map(Workload::Container),
            WorkloadPlan::Service(s) => s.resolved.map(Workload::Service),
        }
    }
}

/// One name of the day resolved to everything apply needs: a container's or a Swarm
/// service's. The executor asks which it is here, once per operation.
#[derive(Debug, Clone)]
#[expect(clippy::large_enum_variant, reason = "one per name of a day, made once, never copied in a loop")]
pub enum Workload {
    Container(Resolved),
    Service(SwarmResolved),
}

impl Workload {
    pub fn kind(&self) -> WorkloadKind {
        match self {
            Workload::Container(_) => WorkloadKind::Container,
            Workload::Service(_) => WorkloadKind::Service,
        }
    }

    pub fn timings(&self) -> &Timings {
        match self {
            Workload::Container(r) => &r.timings,
            Workload::Service(r) => &r.timings,
        }
    }

    /// Its timings, to adjust before apply (tests shorten them).
    pub fn timings_mut(&mut self) -> &mut Timings {
        match self {
            Workload::Container(r) => &mut r.timings,
            Workload::Service(r) => &mut r.timings,
        }
    }
}

/// The day as apply will run it.
#[derive(Debug, Clone, Serialize)]
pub struct DayPlan {
    pub plan: String,
    pub day: u32,
    pub waves: Vec<Vec<String>>,
    /// Every name of the day, containers and Swarm services (SPEC §11) alike.
    pub services: Vec<WorkloadPlan>,
    /// Services of the day this plan already migrated: nothing is done to them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub already_migrated: Vec<AlreadyMigrated>,
}

/// A service of the day that an earlier run of the plan migrated (and Docker still shows so).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AlreadyMigrated {
    pub name: String,
    pub run: String,
}

impl DayPlan {
    pub fn blockers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.services.iter().flat_map(|s| s.blockers().iter().map(move |b| (s.name(), b.as_str())))
    }

    /// The day ready to apply, or every blocker as `service: blocker`.
    pub fn ready(self) -> Result<ReadyDay, Vec<String>> {
        let blockers: Vec<String> = self.blockers().map(|(s, b)| format!("{s}: {b}")).collect();
        if !blockers.is_empty() {
            return Err(blockers);
        }
        let mut workloads = BTreeMap::new();
        for s in self.services {
            let name = s.name().to_string();
            match s.into_workload() {
                Some(w) => workloads.insert(name, w),
                None => return Err(vec![format!("{name}: not resolved")]),
            };
        }
        Ok(ReadyDay { day: self.day, waves: self.waves, workloads })
    }
}

/// A day without blockers: every service resolved. Only [`DayPlan::ready`] makes one, so
/// apply never meets a service it cannot run.
#[derive(Debug, Clone)]
pub struct ReadyDay {
    pub day: u32,
    pub waves: Vec<Vec<String>>,
    workloads: BTreeMap<String, Workload>,
}

impl ReadyDay {
    /// The workload `name` of this day.
    ///
    /// Panics: for a name that is not of this day (every name apply uses comes from the
    /// day's own waves).
    pub fn workload(&self, name: &str) -> &Workload {
        &self.workloads[name]
    }

    /// Every workload of the day, to adjust before apply (tests shorten the timings).
    pub fn workloads_mut(&mut self) -> impl Iterator<Item = &mut Workload> {
        self.workloads.values_mut()
    }
}

/// Whether unroot can see the daemon's files as they are (same host, root, no remapping).
pub fn local_view(port: &impl DockerPort) -> bool {
    let d = port.daemon();
    d.address.starts_with("unix://") && !d.remaps_users && rustix::process::geteuid().is_root()
}

/// Computes the day. `only` limits it to the named services.
///
/// Errors: only when the daemon cannot be listed; every per-service problem is a blocker.
pub async fn compute(
    port: &(impl DockerPort + SwarmPort),
    plan: &Plan,
    day: u32,
    only: &[String],
    source: NameSource,
) -> Result<DayPlan, DockerError> {
    compute_with(port, plan, day, only, source, &Saved::default()).await
}

/// The originals a run saved, by name, for computing its day again on `resume`.
pub type Saved = HashMap<String, Original>;

/// As [`compute`], for a resumed run: services in `saved` are computed from the original
/// inspect the run saved (the container may be stopped, parked or gone by now; the Swarm
/// service scaled to zero or updated already).
pub async fn compute_with(
    port: &(impl DockerPort + SwarmPort),
    plan: &Plan,
    day: u32,
    only: &[String],
    source: NameSource,
    saved: &Saved,
) -> Result<DayPlan, DockerError> {
    let waves: Vec<Vec<String>> = plan
        .graph
        .waves(day)
        .iter()
        .map(|w| w.iter().filter(|s| only.is_empty() || only.contains(s)).cloned().collect::<Vec<_>>())
        .filter(|w| !w.is_empty())
        .collect();
    let day_names: Vec<&str> = waves.iter().flatten().map(String::as_str).collect();
    // Volumes in use by containers outside the day, for the shared-volume warning.
    let mut volume_users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in port.list_containers().await? {
        if day_names.contains(&c.name.as_str()) || c.name.contains(".unroot-") {
            continue;
        }
        for v in c.volumes {
            volume_users.entry(v).or_default().push(c.name.clone());
        }
    }
    let local = local_view(port);
    let manager = matches!(port.membership().await?, SwarmMembership::Manager { .. });
    let mut services = Vec::new();
    let mut images = service::ImageAccounts::new();
    for name in &day_names {
        let s = plan.service(name).expect("waves name plan services");
        let kind = match saved.get(*name) {
            Some(Original::Service(_)) => Kind::Swarm,
            Some(Original::Container(_)) => Kind::Container,
            None => kind_of(port, s, manager).await?,
        };
        match kind {
            Kind::Swarm => services.push(WorkloadPlan::Service(
                swarm_plan(port, plan, s, saved.get(*name).and_then(Original::service)).await?,
            )),
            Kind::Both => {
                let mut sp = ServicePlan::new(name);
                sp.blockers.push(format!(
                    "both a container and a Swarm service are called {name}: say which with swarm = true or swarm = false"
                ));
                services.push(WorkloadPlan::Container(sp));
            }
            Kind::Container => {
                let sp = service_plan(
                    port,
                    plan,
                    s,
                    (source, local),
                    &volume_users,
                    saved.get(*name).and_then(Original::container),
                    &mut images,
                )
                .await;
                services.push(WorkloadPlan::Container(sp));
            }
        }
    }
    warn_shared_within_day(&mut services);
    Ok(DayPlan { plan: plan.rollout.name.clone(), day, waves, services, already_migrated: Vec::new() })
}

/// A Swarm service's preview: what the manager shows (or, for a run being finished, its saved
/// original), then, for a service that is otherwise ready, what its nodes hold.
async fn swarm_plan(
    port: &(impl DockerPort + SwarmPort),
    plan: &Plan,
    s: &crate::model::plan::Service,
    saved: Option<&ServiceInspect>,
) -> Result<SwarmServicePlan, DockerError> {
    let mut observed = crate::engine::swarm::preview::observe(port, s).await?;
    if let Some(original) = saved {
        observed.service = Ok(original.clone());
    }
    let mut sp = crate::engine::swarm::preview::derive(plan, s, &observed);
    if let Some(r) = &sp.resolved {
        let helper = plan.rollout.helper_image.as_deref();
        let found =
            crate::engine::swarm::check::check(port, &r.original, &sp.nodes, !r.mounts.is_empty(), helper).await;
        sp.warnings.extend(found.warnings);
        if !found.blockers.is_empty() {
            sp.blockers.extend(found.blockers);
            sp.resolved = None;
        }
    }
    Ok(sp)
}

/// Two services of the day (containers or Swarm services) that re-own the same volume or
/// bind source: their re-owns run one after the other (never at once), and a rollback
/// restores them in exactly the reverse order; but the last one decides the owner, so the
/// operator should know.
fn warn_shared_within_day(services: &mut [WorkloadPlan]) {
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in services.iter() {
        for source in s.sources() {
            users.entry(source).or_default().push(s.name().to_string());
        }
    }
    for s in services.iter_mut() {
        let name = s.name().to_string();
        for source in s.sources() {
            let others: Vec<&str> = users[&source].iter().filter(|n| **n != name).map(String::as_str).collect();
            if !others.is_empty() {
                s.warnings_mut().push(format!(
                    "{source} is re-owned by {} on this day too: the last re-own decides its owner; they run one after the other and a rollback restores them in reverse order",
                    others.join(", ")
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
