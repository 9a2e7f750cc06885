//! The whole day computed before anything changes (SPEC §3 steps 1–3): per service the user
//! change, every other change, the mounts to re-own, blockers and warnings. `unroot plan`
//! prints it; `apply` executes exactly what it holds.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::docker::swarm::ServiceInspect;
use crate::docker::swarm::{SwarmMembership, SwarmPort};
use crate::docker::{DockerError, DockerPort, Inspect};
use crate::engine::recreate::Changes;
use crate::engine::reown::MountId;
use crate::engine::swarm::preview::{SwarmResolved, SwarmServicePlan};
use crate::engine::swarm::{Kind, kind_of};
use crate::model::owner::Owner;
use crate::model::plan::{HealthMode, Ownership, Plan, Timings};
pub use crate::model::user::UserChange;

mod names;
mod runtime;
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
    pub kind: String,
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

/// The day as apply will run it.
#[derive(Debug, Clone, Serialize)]
pub struct DayPlan {
    pub plan: String,
    pub day: u32,
    pub waves: Vec<Vec<String>>,
    pub services: Vec<ServicePlan>,
    /// Services of the day this plan already migrated: nothing is done to them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub already_migrated: Vec<AlreadyMigrated>,
    /// Swarm services of the day (SPEC §11).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub swarm: Vec<SwarmServicePlan>,
}

/// A service of the day that an earlier run of the plan migrated (and Docker still shows so).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AlreadyMigrated {
    pub name: String,
    pub run: String,
}

impl DayPlan {
    pub fn blockers(&self) -> impl Iterator<Item = (&str, &str)> {
        let containers =
            self.services.iter().flat_map(|s| s.blockers.iter().map(move |b| (s.name.as_str(), b.as_str())));
        let swarm = self.swarm.iter().flat_map(|s| s.blockers.iter().map(move |b| (s.name.as_str(), b.as_str())));
        containers.chain(swarm)
    }

    /// The day ready to apply, or every blocker as `service: blocker`.
    pub fn ready(self) -> Result<ReadyDay, Vec<String>> {
        let blockers: Vec<String> = self.blockers().map(|(s, b)| format!("{s}: {b}")).collect();
        if !blockers.is_empty() {
            return Err(blockers);
        }
        let mut services = BTreeMap::new();
        for s in self.services {
            match s.resolved {
                Some(r) => services.insert(s.name, r),
                None => return Err(vec![format!("{}: not resolved", s.name)]),
            };
        }
        let mut swarm = BTreeMap::new();
        for s in self.swarm {
            match s.resolved {
                Some(r) => swarm.insert(s.name, r),
                None => return Err(vec![format!("{}: not resolved", s.name)]),
            };
        }
        Ok(ReadyDay { day: self.day, waves: self.waves, services, swarm })
    }
}

/// A day without blockers: every service resolved. Only [`DayPlan::ready`] makes one, so
/// apply never meets a service it cannot run.
#[derive(Debug, Clone)]
pub struct ReadyDay {
    pub day: u32,
    pub waves: Vec<Vec<String>>,
    services: BTreeMap<String, Resolved>,
    swarm: BTreeMap<String, SwarmResolved>,
}

impl ReadyDay {
    /// The service `name` of this day.
    ///
    /// Panics: for a name that is not of this day (every name apply uses comes from the
    /// day's own waves).
    pub fn resolved(&self, name: &str) -> &Resolved {
        &self.services[name]
    }

    /// Every service of the day, to adjust before apply (tests shorten the timings).
    pub fn services_mut(&mut self) -> impl Iterator<Item = &mut Resolved> {
        self.services.values_mut()
    }

    /// The Swarm service `name` of this day, if `name` is one.
    pub fn swarm(&self, name: &str) -> Option<&SwarmResolved> {
        self.swarm.get(name)
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

/// The originals a run saved, for computing its day again on `resume`.
#[derive(Debug, Clone, Default)]
pub struct Saved {
    pub containers: HashMap<String, Inspect>,
    pub services: HashMap<String, ServiceInspect>,
}

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
    let mut swarm = Vec::new();
    let mut images = service::ImageAccounts::new();
    for name in &day_names {
        let s = plan.service(name).expect("waves name plan services");
        let kind = match saved.services.contains_key(*name) {
            true => Kind::Swarm,
            false => kind_of(port, s, manager, saved.containers.contains_key(*name)).await?,
        };
        match kind {
            Kind::Swarm => swarm.push(swarm_plan(port, plan, s, saved.services.get(*name)).await?),
            Kind::Both => {
                let mut sp = ServicePlan::new(name);
                sp.blockers.push(format!(
                    "both a container and a Swarm service are called {name}: say which with swarm = true or swarm = false"
                ));
                services.push(sp);
            }
            Kind::Container => {
                let sp = service_plan(
                    port,
                    plan,
                    s,
                    (source, local),
                    &volume_users,
                    saved.containers.get(*name),
                    &mut images,
                )
                .await;
                services.push(sp);
            }
        }
    }
    warn_shared_within_day(&mut services, &mut swarm);
    Ok(DayPlan { plan: plan.rollout.name.clone(), day, waves, services, already_migrated: Vec::new(), swarm })
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
fn warn_shared_within_day(services: &mut [ServicePlan], swarm: &mut [SwarmServicePlan]) {
    let container_sources = |s: &ServicePlan| -> Vec<String> {
        s.resolved.iter().flat_map(|r| &r.mounts).map(|m| m.source.clone()).collect()
    };
    let swarm_sources = |s: &SwarmServicePlan| -> Vec<String> {
        s.resolved.iter().flat_map(|r| &r.mounts).map(|m| m.source.clone()).collect()
    };
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let named = services
        .iter()
        .map(|s| (&s.name, container_sources(s)))
        .chain(swarm.iter().map(|s| (&s.name, swarm_sources(s))));
    for (name, sources) in named {
        for source in sources {
            users.entry(source).or_default().push(name.clone());
        }
    }
    let warn = |name: &str, sources: Vec<String>, warnings: &mut Vec<String>| {
        for source in sources {
            let others: Vec<&str> = users[&source].iter().filter(|n| *n != name).map(String::as_str).collect();
            if !others.is_empty() {
                warnings.push(format!(
                    "{source} is re-owned by {} on this day too: the last re-own decides its owner; they run one after the other and a rollback restores them in reverse order",
                    others.join(", ")
                ));
            }
        }
    };
    for s in services.iter_mut() {
        warn(&s.name, container_sources(s), &mut s.warnings);
    }
    for s in swarm.iter_mut() {
        warn(&s.name, swarm_sources(s), &mut s.warnings);
    }
}

#[cfg(test)]
mod tests;
