//! The whole day computed before anything changes (SPEC §3 steps 1–3): per service the user
//! change, every other change, the mounts to re-own, blockers and warnings. `unroot plan`
//! prints it; `apply` executes exactly what it holds.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use crate::docker::{DockerError, DockerPort, Inspect, Mount};
use crate::engine::recreate::{Changes, LABEL_ORIGINAL_USER, LABEL_RUN};
use crate::engine::reown::{self, MountId};
use crate::model::passwd;
use crate::model::plan::{HealthMode, Ownership, Plan, Service, Timings};
use crate::model::user::{IdOrName, UserSpec};

/// Where user and group names are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameSource {
    /// The running container's own files, read through the archive API: changes nothing.
    Running,
    /// A created, never-started container of the image: what the replacement will see.
    ImageProbe,
}

/// A user as the preview shows it: name and numbers.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserChange {
    pub from: String,
    pub to: String,
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
    pub method: &'static str,
}

/// How a mount is re-owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// `uid:gid` the mounts are re-owned to; `None` when the user does not change.
    pub target: Option<(u32, u32)>,
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
}

/// A service of the day that an earlier run of the plan migrated (and Docker still shows so).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AlreadyMigrated {
    pub name: String,
    pub run: String,
}

impl DayPlan {
    pub fn blockers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.services.iter().flat_map(|s| s.blockers.iter().map(move |b| (s.name.as_str(), b.as_str())))
    }
}

const FILE_LIMIT: usize = 4 << 20;
const HEADER_LIMIT: usize = 512;

/// Users and groups of an image, by name.
#[derive(Debug, Default)]
struct Names {
    users: HashMap<String, passwd::PasswdEntry>,
    groups: HashMap<String, u32>,
}

impl Names {
    fn uid_entry(&self, uid: u32) -> Option<(&str, &passwd::PasswdEntry)> {
        self.users.iter().find(|(_, e)| e.uid == uid).map(|(n, e)| (n.as_str(), e))
    }
}

async fn read_file(port: &impl DockerPort, id: &str, path: &str) -> Option<String> {
    let tar = port.read_archive(id, path, FILE_LIMIT).await.ok()?;
    passwd::first_file(&tar)
}

async fn names(port: &impl DockerPort, id: &str) -> Names {
    let users = read_file(port, id, "/etc/passwd").await.map(|t| passwd::parse_passwd(&t)).unwrap_or_default();
    let groups = read_file(port, id, "/etc/group").await.map(|t| passwd::parse_group(&t)).unwrap_or_default();
    Names { users, groups }
}

/// Reads names from a created, never-started container of `image`, removed afterwards.
async fn probe_names(port: &impl DockerPort, image: &str, name: &str) -> Result<Names, DockerError> {
    let body = serde_json::json!({
        "Image": image, "Entrypoint": ["/unroot-never-started"], "Cmd": [],
        "Labels": {(crate::engine::orphans::LABEL_PROBE): "1", (crate::engine::orphans::LABEL_MAKER): crate::engine::orphans::maker()},
        "HostConfig": {"NetworkMode": "none"}
    });
    let probe = format!("{name}.unroot-probe");
    let _ = port.remove_container(&probe, true).await;
    let id = port.create_container(&probe, body).await?;
    crate::state::failpoint::hit("probe-created");
    let n = names(port, &id).await;
    let _ = port.remove_container(&id, true).await;
    Ok(n)
}

/// Resolves a plan user to `uid:gid` with the names used, or says what is unknown.
fn resolve_user(spec: &UserSpec, names: &Names) -> Result<(u32, u32, String), String> {
    let (uid, entry_gid, uname) = match &spec.user {
        IdOrName::Id(n) => {
            let e = names.uid_entry(*n);
            (*n, e.map(|(_, e)| e.gid), e.map(|(n, _)| n.to_string()))
        }
        IdOrName::Name(n) => match names.users.get(n) {
            Some(e) => (e.uid, Some(e.gid), Some(n.clone())),
            None => return Err(format!("user `{n}` is not in the image's /etc/passwd")),
        },
    };
    let gid = match &spec.group {
        Some(IdOrName::Id(g)) => *g,
        Some(IdOrName::Name(g)) => {
            *names.groups.get(g).ok_or_else(|| format!("group `{g}` is not in the image's /etc/group"))?
        }
        None => entry_gid.unwrap_or(uid),
    };
    if uid == 0 {
        return Err(format!("user `{spec}` is uid 0 in the image; use keep_root to keep it on root"));
    }
    let shown = match uname {
        Some(n) => format!("{n} ({uid}:{gid})"),
        None => format!("{uid}:{gid}"),
    };
    Ok((uid, gid, shown))
}

/// The configured user of a container as "name (uid:gid)" where it can be told.
fn describe_current(c: &Inspect, names: &Names) -> String {
    let u = c.configured_user();
    match crate::model::user::configured(u) {
        None => "(unset) root (0:0)".to_string(),
        Some(spec) => match resolve_user_loose(&spec, names) {
            Some((uid, gid)) if u.split(':').next() == Some(&uid.to_string()) => {
                format!("{uid}:{gid}")
            }
            Some((uid, gid)) => format!("{u} ({uid}:{gid})"),
            None => u.to_string(),
        },
    }
}

/// Like [`resolve_user`] but allows root and gives up quietly.
fn resolve_user_loose(spec: &UserSpec, names: &Names) -> Option<(u32, u32)> {
    let uid = match &spec.user {
        IdOrName::Id(n) => *n,
        IdOrName::Name(n) if n == "root" => 0,
        IdOrName::Name(n) => names.users.get(n)?.uid,
    };
    let gid = match &spec.group {
        Some(IdOrName::Id(g)) => *g,
        Some(IdOrName::Name(g)) => *names.groups.get(g)?,
        None => names.uid_entry(uid).map_or(0, |(_, e)| e.gid),
    };
    Some((uid, gid))
}

/// The health mode a service gets: the plan's, else Docker's HEALTHCHECK when the container
/// has one, else running.
fn health_mode(s: &Service, c: &Inspect) -> HealthMode {
    if let Some(h) = &s.health {
        return h.clone();
    }
    if c.has_healthcheck() { HealthMode::Docker } else { HealthMode::Running }
}

fn health_text(h: &HealthMode) -> String {
    match h {
        HealthMode::Docker => "docker (the container's HEALTHCHECK)".into(),
        HealthMode::Running => "running".into(),
        HealthMode::Exec(cmd) => format!("exec {}", cmd.join(" ")),
    }
}

/// The mounts to re-own for a service, with blockers and warnings about them.
fn select_mounts(s: &Service, c: &Inspect, blockers: &mut Vec<String>, warnings: &mut Vec<String>) -> Vec<Mount> {
    let all = c.mounts();
    let candidates: Vec<Mount> = match &s.chown {
        None => all.iter().filter(|m| m.writable && (m.kind == "volume" || m.kind == "bind")).cloned().collect(),
        Some(paths) => {
            let mut out = Vec::new();
            for p in paths {
                let p = p.to_string_lossy();
                match all.iter().find(|m| m.destination == p) {
                    None => blockers.push(format!(
                        "chown names {p}, but the container has no mount there (mounts: {})",
                        if all.is_empty() {
                            "none".to_string()
                        } else {
                            all.iter().map(|m| m.destination.as_str()).collect::<Vec<_>>().join(", ")
                        }
                    )),
                    Some(m) if !m.writable => warnings.push(format!("{p} is mounted read-only; it is not re-owned")),
                    Some(m) if m.kind == "tmpfs" => warnings.push(format!("{p} is a tmpfs; it is not re-owned")),
                    Some(m) => out.push(m.clone()),
                }
            }
            out
        }
    };
    let mut keep = Vec::new();
    for m in candidates {
        if m.kind == "bind"
            && let Some(why) = reown::protected_bind(&m.source)
        {
            blockers.push(format!("bind mount {} → {}: {why}; unroot never re-owns it", m.source, m.destination));
            continue;
        }
        if m.destination.ends_with("docker.sock") || m.source.ends_with("docker.sock") {
            continue;
        }
        keep.push(m);
    }
    keep
}

/// The real path of a bind source on this host and the (device, inode) of what it names.
fn bind_identity(source: &str) -> Result<(String, (u64, u64)), String> {
    let real = std::fs::canonicalize(source).map_err(|e| format!("cannot resolve {source}: {e}"))?;
    let id = crate::engine::hostfs::identity(&real)?;
    Ok((real.display().to_string(), id))
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
    port: &impl DockerPort,
    plan: &Plan,
    day: u32,
    only: &[String],
    source: NameSource,
) -> Result<DayPlan, DockerError> {
    compute_with(port, plan, day, only, source, &HashMap::new()).await
}

/// As [`compute`], for a resumed run: services in `saved` are computed from the original
/// inspect the run saved (the container may be stopped, parked or gone by now).
pub async fn compute_with(
    port: &impl DockerPort,
    plan: &Plan,
    day: u32,
    only: &[String],
    source: NameSource,
    saved: &HashMap<String, Inspect>,
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
    let mut services = Vec::new();
    for name in &day_names {
        let s = plan.service(name).expect("waves name plan services");
        services.push(service_plan(port, plan, s, source, local, &volume_users, saved.get(*name)).await);
    }
    warn_shared_within_day(&mut services);
    Ok(DayPlan { plan: plan.rollout.name.clone(), day, waves, services, already_migrated: Vec::new() })
}

/// Two services of the day that re-own the same volume or bind source: their re-owns run one
/// after the other (never at once), and a rollback restores them in exactly the reverse
/// order; but the last one decides the owner, so the operator should know.
fn warn_shared_within_day(services: &mut [ServicePlan]) {
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in services.iter() {
        for m in s.resolved.iter().flat_map(|r| &r.mounts) {
            users.entry(m.source.clone()).or_default().push(s.name.clone());
        }
    }
    for s in services.iter_mut() {
        let mounts: Vec<String> = s.resolved.iter().flat_map(|r| &r.mounts).map(|m| m.source.clone()).collect();
        for source in mounts {
            let others: Vec<&String> = users[&source].iter().filter(|n| **n != s.name).collect();
            if !others.is_empty() {
                s.warnings.push(format!(
                    "{source} is re-owned by {} on this day too: the last re-own decides its owner; they run one after the other and a rollback restores them in reverse order",
                    others.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
}

async fn service_plan(
    port: &impl DockerPort,
    plan: &Plan,
    s: &Service,
    source: NameSource,
    local: bool,
    volume_users: &BTreeMap<String, Vec<String>>,
    saved: Option<&Inspect>,
) -> ServicePlan {
    let mut sp = ServicePlan {
        name: s.name.clone(),
        user: UserChange { from: "?".into(), to: "?".into() },
        changes: Vec::new(),
        chown: Vec::new(),
        health: String::new(),
        blockers: Vec::new(),
        warnings: Vec::new(),
        resolved: None,
    };
    let live = match saved {
        Some(c) => Ok(c.clone()),
        None => crate::docker::inspect_named(port, &s.name).await,
    };
    let c = match live {
        Ok(c) => c,
        Err(DockerError::NotFound(_)) => {
            sp.blockers.push(format!("no container is called {}", s.name));
            return sp;
        }
        Err(e) => {
            sp.blockers.push(format!("cannot inspect {}: {e}", s.name));
            return sp;
        }
    };
    if !c.running() {
        sp.blockers.push(format!("{} is not running ({})", s.name, c.status()));
    }
    if c.auto_remove() {
        sp.blockers.push("the container was started with --rm: stopping it would delete it".into());
    }
    let names = match source {
        NameSource::Running => names(port, c.id()).await,
        NameSource::ImageProbe => match probe_names(port, c.image_id(), &s.name).await {
            Ok(n) => n,
            Err(e) => {
                sp.blockers.push(format!("cannot read the image's /etc/passwd: {e}"));
                Names::default()
            }
        },
    };
    sp.user.from = describe_current(&c, &names);

    // The user and what follows from it.
    let target = match &s.user {
        None => {
            sp.user.to = format!("{} (unchanged)", sp.user.from);
            None
        }
        Some(spec) => match resolve_user(spec, &names) {
            Ok((uid, gid, shown)) => {
                sp.user.to = shown;
                if matches!(spec.user, IdOrName::Id(_)) && names.uid_entry(uid).is_none() && spec.group.is_none() {
                    sp.warnings.push(format!("uid {uid} has no /etc/passwd entry in the image; its group is {gid}"));
                }
                Some((uid, gid))
            }
            Err(why) => {
                sp.blockers.push(why);
                None
            }
        },
    };
    let mut group_add = Vec::new();
    for g in &s.group_add {
        match g.parse::<u32>().ok().or_else(|| names.groups.get(g).copied()) {
            Some(gid) => {
                group_add.push(gid.to_string());
                sp.changes.push(format!("group_add: + {g} ({gid})"));
            }
            None => sp.blockers.push(format!("group `{g}` is not in the image's /etc/group")),
        }
    }

    // The image by id unless the tag still names it.
    let image = crate::docker::image_ref(port, &c).await;
    if image != c.image() {
        sp.changes.push(format!(
            "image: pinned to {} (the reference {} names another image now, or none)",
            short(c.image_id()),
            c.image()
        ));
    }
    let env_now = c.env();
    for key in s.env_keys() {
        let replaced = env_now.iter().any(|e| e.split('=').next() == Some(key));
        sp.changes.push(format!("env: {} {key}", if replaced { "~" } else { "+" }));
    }
    let caps_now = c.cap_drop();
    for cap in s.cap_drop.iter().filter(|x| !caps_now.contains(x)) {
        sp.changes.push(format!("cap_drop: + {cap}"));
    }
    let add_now = c.cap_add();
    for cap in s.cap_add.iter().filter(|x| !add_now.contains(x)) {
        sp.changes.push(format!("cap_add: + {cap}"));
    }
    if let Some(ro) = s.read_only.filter(|ro| *ro != c.read_only_rootfs()) {
        sp.changes.push(format!("read_only: {} → {ro}", !ro));
    }
    if let Some(nnp) = s.no_new_privileges.filter(|n| *n != c.no_new_privileges()) {
        sp.changes.push(format!("no_new_privileges: {} → {nnp}", !nnp));
    }
    sp.changes.push(format!("labels: + {LABEL_RUN}, {LABEL_ORIGINAL_USER}"));
    if let Some(project) = c.label("com.docker.compose.project") {
        sp.changes.push(format!("compose project {project}: docker-compose.unroot.yml written at commit"));
    }

    // Mounts.
    let mut mounts = Vec::new();
    if let Some((uid, gid)) = target {
        for m in select_mounts(s, &c, &mut sp.blockers, &mut sp.warnings) {
            if let Ok(tar) = port.read_archive(c.id(), &m.destination, HEADER_LIMIT).await
                && let Some((ou, og)) = passwd::first_header_owner(&tar)
                && ou != 0
                && ou != uid
            {
                sp.warnings.push(format!("{} is owned by uid {ou}:{og}, neither root nor the target", m.destination));
            }
            // A bind seen from here is pinned now: its real path (links resolved once, here)
            // and that object's device and inode, which re-owning and restoring check again
            // while opening every component without following a link.
            let (host_path, identity) = if local && m.kind == "bind" {
                match bind_identity(&m.source) {
                    Ok((real, id)) => (real, Some(id)),
                    Err(why) => {
                        sp.blockers.push(format!("bind mount {} → {}: {why}", m.source, m.destination));
                        (m.source.clone(), None)
                    }
                }
            } else {
                (m.source.clone(), None)
            };
            let source = if m.kind == "bind" { host_path.clone() } else { m.name.clone().unwrap_or(m.source.clone()) };
            // Where the data is visible here, count what would change with the same read-only
            // walk apply uses.
            let entries = local
                .then(|| crate::engine::hostfs::scan(std::path::Path::new(&host_path), (uid, gid), s.hardlinks).ok())
                .flatten()
                .map(|c| c.count() as u64);
            let how = match method(port, s.ownership, &host_path) {
                Ok(Method::Host) => "host",
                Ok(Method::Helper) => "helper",
                Err(why) => {
                    sp.blockers.push(why);
                    "helper"
                }
            };
            sp.chown.push(ChownPlan {
                target: m.destination.clone(),
                source: source.clone(),
                kind: m.kind.clone(),
                entries,
                method: how,
            });
            mounts.push(MountId {
                destination: m.destination.clone(),
                kind: m.kind.clone(),
                source,
                host_path,
                identity,
            });
        }
    }

    // Warnings of SPEC §3 step 3.
    let health = health_mode(s, &c);
    if health == HealthMode::Running && s.health.is_none() {
        sp.warnings.push("no health check and no exec probe: healthy means running for stable_for".into());
    }
    if c.mounts().iter().any(|m| m.source.ends_with("docker.sock") || m.destination.ends_with("docker.sock")) {
        sp.warnings.push("docker.sock is mounted: whoever runs in it controls the host".into());
    }
    let cmdline: Vec<String> = ["/Config/Entrypoint", "/Config/Cmd"]
        .iter()
        .filter_map(|p| c.0.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let switcher = ["gosu", "su-exec", "setpriv", "chpst", "setuidgid", "docker-entrypoint"]
        .iter()
        .find(|t| cmdline.iter().any(|a| a.contains(*t)));
    if let Some(t) = switcher.filter(|_| s.user.is_some()) {
        sp.warnings.push(format!(
            "the entrypoint ({t}) may switch user itself; once `user` is set it skips its own chown, so unroot's re-owning must cover its data"
        ));
    }
    let looks_redis = c.image().contains("redis") || cmdline.iter().any(|a| a.contains("redis-server"));
    if looks_redis && !s.cap_drop.is_empty() && s.user.is_none() {
        sp.warnings.push("Redis with cap_drop and no user: its entrypoint needs SETUID/SETGID to drop to redis".into());
    }
    if c.network_mode() == "host" && target.is_some() {
        let low: Vec<String> = c
            .exposed_ports()
            .into_iter()
            .filter(|k| k.split('/').next().and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n < 1024))
            .collect();
        if !low.is_empty() {
            sp.warnings.push(format!(
                "host network and ports below 1024 ({}): a non-root user cannot bind them in the host's namespace",
                low.join(", ")
            ));
        }
    }
    for m in c.mounts().into_iter().filter(|m| m.kind == "volume") {
        if let Some(users) = m.name.as_ref().and_then(|n| volume_users.get(n)) {
            sp.warnings.push(format!(
                "volume {} is shared with {}, outside this day",
                m.name.as_deref().unwrap_or_default(),
                users.join(", ")
            ));
        }
    }
    // The helper image must have the tools the scripts use.
    let helper_image = plan.rollout.helper_image.clone().unwrap_or_else(|| c.image_id().to_string());
    if !mounts.is_empty() && plan.rollout.helper_image.is_none() && saved.is_none() {
        let mut missing = Vec::new();
        for tool in ["sh", "find", "stat", "chown", "xargs"] {
            let mut found = false;
            for dir in ["/bin", "/usr/bin", "/sbin", "/usr/sbin"] {
                if port.read_archive(c.id(), &format!("{dir}/{tool}"), HEADER_LIMIT).await.is_ok() {
                    found = true;
                    break;
                }
            }
            if !found {
                missing.push(tool);
            }
        }
        if !missing.is_empty() {
            sp.blockers.push(format!(
                "the image has no {} for the re-owning helper; set [rollout] helper_image to an image that has sh, find, stat, chown and xargs",
                missing.join(", ")
            ));
        }
    } else if let Some(img) = &plan.rollout.helper_image
        && port.inspect_image(img).await.is_err()
    {
        sp.blockers.push(format!("helper_image {img} is not on the daemon"));
    }
    sp.health = health_text(&health);

    let mut labels = BTreeMap::new();
    labels.insert(LABEL_ORIGINAL_USER.to_string(), c.configured_user().to_string());
    sp.resolved = Some(Resolved {
        changes: Changes {
            image,
            user: target.map(|(u, g)| format!("{u}:{g}")),
            group_add,
            env: s.env.clone(),
            cap_drop: s.cap_drop.clone(),
            cap_add: s.cap_add.clone(),
            read_only: s.read_only,
            no_new_privileges: s.no_new_privileges,
            labels,
        },
        original: c,
        target,
        mounts,
        health,
        timings: s.timings,
        hardlinks: s.hardlinks,
        helper_image,
        ownership: s.ownership,
    });
    sp
}

fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}
