//! One service of the day: what it is now, what it becomes, and what blocks or warns.

use std::collections::BTreeMap;

use crate::docker::recreate::{Changes, LABEL_ORIGINAL_USER, LABEL_RUN};
use crate::docker::{DockerError, DockerPort, Inspect, Mount, short_id as short};
use crate::engine::accounts;
use crate::engine::reown::MountId;
use crate::model::caps::normalize_cap;
use crate::model::mount::MountKind;
use crate::model::owner::{Owner, ancestors, unreachable};
use crate::model::passwd;
use crate::model::plan::{HealthMode, Plan, Service};
use crate::model::user::{Accounts, IdOrName};

mod runtime;

use super::names::*;
use super::*;
use runtime::{layer_warning, plan_healthcheck, plan_security_opt, plan_tmpfs, read_seccomp, seccomp_file};

/// The health mode a service gets: the plan's, else Docker's HEALTHCHECK when the container
/// has one, else running.
pub(super) fn health_mode(s: &Service, c: &Inspect) -> HealthMode {
    if let Some(h) = &s.health {
        return h.clone();
    }
    if c.has_healthcheck() { HealthMode::Docker } else { HealthMode::Running }
}

pub(super) fn health_text(h: &HealthMode) -> String {
    match h {
        HealthMode::Docker => "docker (the container's HEALTHCHECK)".into(),
        HealthMode::Running => "running".into(),
        HealthMode::Exec(cmd) => format!("exec {}", cmd.join(" ")),
    }
}

/// The mounts to re-own for a service, with blockers and warnings about them.
pub(super) fn select_mounts(
    s: &Service,
    c: &Inspect,
    protected: &BTreeMap<String, String>,
    blockers: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Vec<Mount> {
    let all = c.mounts();
    let candidates: Vec<Mount> = match &s.chown {
        None => all.iter().filter(|m| m.writable && m.kind.holds_data()).cloned().collect(),
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
                    Some(m) if m.kind == MountKind::Tmpfs => {
                        warnings.push(format!("{p} is a tmpfs; it is not re-owned"))
                    }
                    Some(m) => out.push(m.clone()),
                }
            }
            out
        }
    };
    let mut keep = Vec::new();
    for m in candidates {
        if m.kind == MountKind::Bind
            && let Some(why) = protected.get(&m.source)
        {
            blockers.push(format!("bind mount {} → {}: {why}; unroot never re-owns it", m.source, m.destination));
            continue;
        }
        if m.is_docker_sock() {
            continue;
        }
        keep.push(m);
    }
    keep
}

/// The real path of a bind source on this host and the (device, inode) of what it names.
pub(super) fn bind_identity(source: &str) -> Result<Pinned, String> {
    let real = std::fs::canonicalize(source).map_err(|e| format!("cannot resolve {source}: {e}"))?;
    let id = crate::engine::hostfs::identity(&real)?;
    Ok((real.display().to_string(), id))
}

/// What the preview reads of one service through the port (or from what the run saved):
/// every fact [`derive`] decides on, and nothing decided yet.
#[derive(Debug, Clone)]
pub(super) struct Observed {
    pub(super) container: Inspect,
    /// The image's users and groups; the blocker's text when the probe reading them failed.
    pub(super) accounts: Result<Accounts, String>,
    /// The reference to create the replacement from (the tag, or the image id when the tag
    /// names another image now).
    pub(super) image_ref: String,
    /// Bind sources of the container that may never be re-owned, with why (read on this host).
    pub(super) protected: BTreeMap<String, String>,
    /// Per destination of a mount to re-own: what the daemon and this host show of it.
    pub(super) mounts: BTreeMap<String, MountFacts>,
    pub(super) helper: HelperFacts,
    /// The paths the running original wrote in its own layer (`docker diff`); `None` when
    /// not read (a resumed run previews from what it saved).
    pub(super) layer: Option<Vec<String>>,
    /// The seccomp profiles the plan's `security_opt` names by file (`seccomp=FILE`), read
    /// where unroot runs: option as written → the option in the daemon's form, or why not.
    pub(super) seccomp_files: BTreeMap<String, Result<String, String>>,
}

/// A bind source pinned from here: its real path and that object's device and inode.
pub(super) type Pinned = (String, (u64, u64));

/// What is seen of one mount to re-own.
#[derive(Debug, Clone)]
pub(super) struct MountFacts {
    /// The owner of the mount's root inside the container.
    pub(super) root_owner: Option<Owner>,
    /// A bind seen from here: its real path and that object's device and inode.
    pub(super) bind: Option<Result<Pinned, String>>,
    /// Entries that would change, when the data is visible here.
    pub(super) entries: Option<u64>,
    /// Where re-owning would run, or why it cannot run as the plan asks.
    pub(super) method: Result<Method, String>,
    /// The directories above it in the container, outermost first, with owner and mode.
    pub(super) above: Vec<(String, Owner, u32)>,
}

/// What is seen of the image the re-owning helper runs from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct HelperFacts {
    /// Tools the service's own image lacks for the helper's scripts.
    pub(super) missing_tools: Vec<&'static str>,
    /// The helper's image has no `getfattr`/`setfattr`: it cannot record file capabilities.
    pub(super) no_xattr_tools: bool,
    /// The plan's `helper_image` is not on the daemon.
    pub(super) image_absent: bool,
}

/// What the preview says of the re-owning helper's image: tools it lacks (a blocker), no
/// getfattr/setfattr (a warning), a `helper_image` that is not on the daemon (a blocker).
fn helper_findings(plan: &Plan, helper: &HelperFacts, sp: &mut ServicePlan) {
    if !helper.missing_tools.is_empty() {
        sp.blockers.push(format!(
            "the image has no {} for the re-owning helper; set [rollout] helper_image to an image that has sh, find, stat, chown and xargs",
            helper.missing_tools.join(", ")
        ));
    }
    if helper.no_xattr_tools && helper.missing_tools.is_empty() {
        sp.warnings.push(
            "the re-owning helper runs in the service's image, which has no getfattr/setfattr: file capabilities (setcap) of files in its mounts, if any, are lost on re-owning and not restored by a rollback; set [rollout] helper_image to an image with them (Debian's attr package)"
                .into(),
        );
    }
    if let Some(img) = plan.rollout.helper_image.as_ref().filter(|_| helper.image_absent) {
        sp.blockers.push(format!("helper_image {img} is not on the daemon"));
    }
}

/// The users of each image a day's preview has read through a probe, by image id: one probe
/// per image, not per service.
pub(super) type ImageAccounts = std::collections::HashMap<String, Result<Accounts, String>>;

/// One service of the day, computed from what Docker shows (or what the run saved): the
/// user change, every other change, the mounts to re-own, blockers and warnings.
pub(super) async fn service_plan(
    port: &impl DockerPort,
    plan: &Plan,
    s: &Service,
    (source, local): (NameSource, bool),
    volume_users: &BTreeMap<String, Vec<String>>,
    saved: Option<&Inspect>,
    images: &mut ImageAccounts,
) -> ServicePlan {
    match observe(port, plan, s, (source, local), saved, images).await {
        Ok(obs) => derive(plan, s, &obs, volume_users),
        Err(blocker) => ServicePlan { blockers: vec![blocker], ..ServicePlan::new(&s.name) },
    }
}

/// Reads every fact the preview of `s` decides on. Errors (as a blocker's text): the
/// container is missing or cannot be inspected.
async fn observe(
    port: &impl DockerPort,
    plan: &Plan,
    s: &Service,
    (source, local): (NameSource, bool),
    saved: Option<&Inspect>,
    images: &mut ImageAccounts,
) -> Result<Observed, String> {
    let c = match saved {
        Some(c) => c.clone(),
        None => match crate::docker::inspect_named(port, &s.name).await {
            Ok(c) => c,
            Err(DockerError::NotFound(_)) => return Err(format!("no container is called {}", s.name)),
            Err(e) => return Err(format!("cannot inspect {}: {e}", s.name)),
        },
    };
    let accounts = match source {
        NameSource::Running => Ok(accounts::read(port, c.id()).await),
        NameSource::ImageProbe => match images.get(c.image_id()) {
            Some(known) => known.clone(),
            None => {
                let read = accounts::probe(port, c.image_id(), &s.name)
                    .await
                    .map_err(|e| format!("cannot read the image's /etc/passwd: {e}"));
                images.insert(c.image_id().to_string(), read.clone());
                read
            }
        },
    };
    let image_ref = crate::docker::image_ref(port, &c).await;
    let protected = crate::engine::binds::protected_binds(port, &c, &s.name).await?;
    let known = accounts.clone().unwrap_or_default();
    let target = s.user.as_ref().and_then(|spec| known.target(spec).ok()).map(|t| t.owner);
    let mut mounts = BTreeMap::new();
    if let Some(target) = target {
        for m in select_mounts(s, &c, &protected, &mut Vec::new(), &mut Vec::new()) {
            mounts.insert(m.destination.clone(), observe_mount(port, s, &c, &m, target, local).await);
        }
    }
    let mut helper = HelperFacts::default();
    // Only a helper container needs the tools; a host walk (root beside the daemon) does not.
    let helper_runs = mounts.values().any(|f| !matches!(f.method, Ok(Method::Host)));
    if helper_runs && plan.rollout.helper_image.is_none() && saved.is_none() {
        for tool in ["sh", "find", "stat", "chown", "xargs", "getfattr", "setfattr"] {
            let mut found = false;
            for dir in ["/bin", "/usr/bin", "/sbin", "/usr/sbin"] {
                if port.read_archive(c.id(), &format!("{dir}/{tool}"), HEADER_LIMIT).await.is_ok() {
                    found = true;
                    break;
                }
            }
            match (found, tool) {
                (true, _) => {}
                (false, "getfattr" | "setfattr") => helper.no_xattr_tools = true,
                (false, tool) => helper.missing_tools.push(tool),
            }
        }
    } else if let Some(img) = &plan.rollout.helper_image {
        helper.image_absent = port.inspect_image(img).await.is_err();
    }
    let layer = match saved {
        Some(_) => None,
        None => port.changes(c.id()).await.ok(),
    };
    let seccomp_files =
        s.security_opt.iter().filter_map(|o| Some((o.clone(), read_seccomp(o, seccomp_file(o)?)))).collect();
    Ok(Observed { container: c, accounts, image_ref, protected, mounts, helper, layer, seccomp_files })
}

/// What the daemon and this host show of one mount to re-own to `target`.
async fn observe_mount(
    port: &impl DockerPort,
    s: &Service,
    c: &Inspect,
    m: &Mount,
    target: Owner,
    local: bool,
) -> MountFacts {
    let root_owner = match port.read_archive(c.id(), &m.destination, HEADER_LIMIT).await {
        Ok(tar) => passwd::first_header_owner(&tar).map(|(u, g)| Owner::new(u, g)),
        Err(_) => None,
    };
    // A bind seen from here is pinned now: its real path (links resolved once, here) and
    // that object's device and inode, which re-owning and restoring check again while
    // opening every component without following a link.
    let bind = (local && m.kind == MountKind::Bind).then(|| bind_identity(&m.source));
    let host_path = match &bind {
        Some(Ok((real, _))) => real.clone(),
        _ => m.source.clone(),
    };
    // Where the data is visible here, count what would change with the same read-only walk
    // apply uses.
    let entries = local
        .then(|| crate::engine::hostfs::scan(std::path::Path::new(&host_path), target, s.hardlinks).ok())
        .flatten()
        .map(|c| c.count() as u64);
    let mut above = Vec::new();
    for dir in ancestors(&m.destination) {
        if let Ok(tar) = port.read_archive(c.id(), &dir, HEADER_LIMIT).await
            && let Some((owner, mode)) = passwd::first_header(&tar)
        {
            above.push((dir, owner, mode));
        }
    }
    MountFacts { root_owner, bind, entries, method: method(port, s.ownership, &host_path), above }
}

/// The preview of one service from what was observed: no Docker, no file system.
pub(super) fn derive(
    plan: &Plan,
    s: &Service,
    obs: &Observed,
    volume_users: &BTreeMap<String, Vec<String>>,
) -> ServicePlan {
    let mut sp = ServicePlan::new(&s.name);
    let c = &obs.container;
    if !c.running() {
        sp.blockers.push(format!("{} is not running ({})", s.name, c.status()));
    }
    if c.auto_remove() {
        sp.blockers.push("the container was started with --rm: stopping it would delete it".into());
    }
    let none = Accounts::default();
    let accounts = match &obs.accounts {
        Ok(a) => a,
        Err(why) => {
            sp.blockers.push(why.clone());
            &none
        }
    };
    sp.user.from = describe_current(c, accounts);
    let (target, group_add) = target_user(s, accounts, &mut sp);
    let image = list_changes(s, c, &obs.image_ref, &mut sp);
    // A tmpfs belongs to whoever the replacement runs as: the target, else its own user.
    let runs_as = target
        .or_else(|| crate::model::user::UserSpec::parse(c.configured_user()).ok().and_then(|u| accounts.owner_of(&u)));
    let tmpfs = plan_tmpfs(s, c, runs_as, &mut sp);
    plan_healthcheck(s, c, &mut sp);
    let security_opt = plan_security_opt(s, obs, &mut sp);
    layer_warning(c, obs, &tmpfs, &mut sp);
    let mounts = plan_mounts(s, obs, target, &group_add, &mut sp);
    let health = health_mode(s, c);
    warn(s, c, target, &health, volume_users, &mut sp);
    helper_findings(plan, &obs.helper, &mut sp);
    sp.health = health_text(&health);

    let mut labels = BTreeMap::new();
    labels.insert(LABEL_ORIGINAL_USER.to_string(), c.configured_user().to_string());
    sp.resolved = Some(Resolved {
        changes: Changes {
            image,
            user: target.map(|o| o.to_string()),
            group_add,
            env: s.env.clone(),
            cap_drop: s.cap_drop.clone(),
            cap_add: s.cap_add.clone(),
            read_only: s.read_only,
            no_new_privileges: s.no_new_privileges,
            tmpfs,
            security_opt,
            healthcheck: s.healthcheck.clone(),
            labels,
        },
        security_opt_as_written: s.security_opt.clone(),
        original: c.clone(),
        target,
        mounts,
        health,
        timings: s.timings,
        hardlinks: s.hardlinks,
        helper_image: plan.rollout.helper_image.clone().unwrap_or_else(|| c.image_id().to_string()),
        ownership: s.ownership,
    });
    sp
}

/// The target `uid:gid` and the supplementary gids, resolved in the image.
fn target_user(s: &Service, names: &Accounts, sp: &mut ServicePlan) -> (Option<Owner>, Vec<String>) {
    // The user and what follows from it.
    let target = match &s.user {
        None => {
            sp.user.to = format!("{} (unchanged)", sp.user.from);
            None
        }
        Some(spec) => match names.target(spec) {
            Ok(t) => {
                sp.user.to = t.to_string();
                if matches!(spec.user, IdOrName::Id(_)) && t.name.is_none() && spec.group.is_none() {
                    sp.warnings.push(format!(
                        "uid {} has no /etc/passwd entry in the image; its group is {}",
                        t.owner.uid, t.owner.gid
                    ));
                }
                Some(t.owner)
            }
            Err(why) => {
                sp.blockers.push(why.to_string());
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

    (target, group_add)
}

/// Every change besides the user, as the preview lists it; returns the image reference to
/// create from.
fn list_changes(s: &Service, c: &Inspect, image_ref: &str, sp: &mut ServicePlan) -> String {
    // The image by id unless the tag still names it.
    let image = image_ref.to_string();
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
    // The plan's names are normalized (`ALL`, `NET_RAW`); Docker's may say `CAP_NET_RAW`.
    let caps_now: Vec<String> = c.cap_drop().iter().map(|x| normalize_cap(x)).collect();
    for cap in s.cap_drop.iter().filter(|x| !caps_now.contains(x)) {
        sp.changes.push(format!("cap_drop: + {cap}"));
    }
    let add_now: Vec<String> = c.cap_add().iter().map(|x| normalize_cap(x)).collect();
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

    image
}

/// The mounts to re-own, pinned (binds seen from here) and counted where that is cheap.
fn plan_mounts(
    s: &Service,
    obs: &Observed,
    target: Option<Owner>,
    group_add: &[String],
    sp: &mut ServicePlan,
) -> Vec<MountId> {
    let Some(target) = target else {
        return Vec::new();
    };
    let mut mounts = Vec::new();
    for m in select_mounts(s, &obs.container, &obs.protected, &mut sp.blockers, &mut sp.warnings) {
        let Some(f) = obs.mounts.get(&m.destination) else {
            sp.blockers.push(format!("{} was not examined; run the preview again", m.destination));
            continue;
        };
        let groups: Vec<u32> = group_add.iter().filter_map(|g| g.parse().ok()).collect();
        if let Some(why) = unreachable(&m.destination, &f.above, target, &groups) {
            sp.blockers.push(why);
        }
        if let Some(o) = f.root_owner.filter(|o| o.uid != 0 && o.uid != target.uid) {
            sp.warnings.push(format!("{} is owned by uid {o}, neither root nor the target", m.destination));
        }
        let (host_path, identity) = match &f.bind {
            Some(Ok((real, id))) => (real.clone(), Some(*id)),
            Some(Err(why)) => {
                sp.blockers.push(format!("bind mount {} → {}: {why}", m.source, m.destination));
                (m.source.clone(), None)
            }
            None => (m.source.clone(), None),
        };
        let source =
            if m.kind == MountKind::Bind { host_path.clone() } else { m.name.clone().unwrap_or(m.source.clone()) };
        let how = f.method.clone().unwrap_or_else(|why| {
            sp.blockers.push(why);
            Method::Helper
        });
        sp.chown.push(ChownPlan {
            target: m.destination.clone(),
            source: source.clone(),
            kind: m.kind.clone(),
            entries: f.entries,
            method: how,
        });
        mounts.push(MountId { destination: m.destination.clone(), kind: m.kind.clone(), source, host_path, identity });
    }
    mounts
}

/// The warnings of SPEC §3 step 3.
fn warn(
    s: &Service,
    c: &Inspect,
    target: Option<Owner>,
    health: &HealthMode,
    volume_users: &BTreeMap<String, Vec<String>>,
    sp: &mut ServicePlan,
) {
    if *health == HealthMode::Running && s.health.is_none() {
        sp.warnings.push("no health check and no exec probe: healthy means running for stable_for".into());
    }
    if c.mounts().iter().any(crate::docker::Mount::is_docker_sock) {
        sp.warnings.push("docker.sock is mounted: whoever runs in it controls the host".into());
    }
    let cmdline = c.command_line();
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
    for m in c.mounts().into_iter().filter(|m| m.kind == MountKind::Volume) {
        if let Some(users) = m.name.as_ref().and_then(|n| volume_users.get(n)) {
            sp.warnings.push(format!(
                "volume {} is shared with {}, outside this day",
                m.name.as_deref().unwrap_or_default(),
                users.join(", ")
            ));
        }
    }
}
