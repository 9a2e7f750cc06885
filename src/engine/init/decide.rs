//! The decisions of `unroot init` (SPEC §10), pure: from what was seen of each container and
//! its image to the services of a plan, each choice with the evidence it rests on.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::docker::{Inspect, Mount};
use crate::engine::audit::{Class, normalize_cap};
use crate::model::mount::MountKind;
use crate::model::owner::{Owner, ancestors, unreachable};
use crate::model::profiles::{Kind, Profile, Profiles, Variant, kind_of_name, kind_of_port};
use crate::model::user::Accounts;

mod carry;

use carry::carry_out;

/// The `stable_for` of a service whose only health signal is that it keeps running.
pub const RUNNING_STABLE_FOR: &str = "15s";

/// What was seen of one running container that runs as root, and of its image.
#[derive(Debug, Clone)]
pub struct Seen {
    pub container: Inspect,
    pub class: Class,
    /// Distinct uids of its own processes.
    pub process_uids: Vec<u32>,
    pub image: ImageFacts,
    /// Bind sources that may never be re-owned, with why.
    pub protected: BTreeMap<String, String>,
    /// Paths it changed in its root filesystem (`docker diff`); `None` when unknown.
    pub rootfs_changes: Option<Vec<String>>,
}

/// What was seen of an image through a created, never-started probe container.
#[derive(Debug, Clone)]
pub struct ImageFacts {
    /// Its users and groups; `Err` with why when they could not be read.
    pub accounts: Result<Accounts, String>,
    pub variant: Variant,
    /// Its `VOLUME`s.
    pub volumes: Vec<String>,
    /// Owner and permission bits of paths in the image: data paths, mount destinations and
    /// the directories above them.
    pub paths: BTreeMap<String, (Owner, u32)>,
    /// Commands found on the image's `PATH` (or at their absolute path).
    pub commands: BTreeSet<String>,
}

/// Where a container goes in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Moves to a non-root `user`.
    Migrate,
    /// Stays root (`keep_root`) with compensating controls.
    Exception,
    /// Written commented out: init cannot place it.
    Unplaced,
}

/// How the replacement is judged healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum Health {
    Docker,
    Running,
    Exec { command: Vec<String> },
}

/// A decision and what it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Because<T> {
    pub value: T,
    pub because: String,
}

pub(super) fn because<T>(value: T, why: impl Into<String>) -> Because<T> {
    Because { value, because: why.into() }
}

/// The profile a decision used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileRef {
    pub key: String,
    pub source: String,
}

/// The controls an exception gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Controls {
    pub cap_drop: Vec<String>,
    pub cap_add: Vec<String>,
    /// `Some(true)` when its writes all go to mounts or tmpfs.
    pub read_only: Because<Option<bool>>,
    pub no_new_privileges: bool,
}

/// One container's place in the plan, every choice with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub name: String,
    pub image: String,
    pub class: Class,
    pub placement: Placement,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileRef>,
    pub kind: Because<Kind>,
    /// The day (0 until the days are laid out; unplaced services keep 0).
    pub day: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Because<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_root: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controls: Option<Controls>,
    pub chown: Because<Vec<String>>,
    /// Mounts not re-owned, with why.
    pub not_reowned: Vec<String>,
    pub health: Because<Health>,
    /// A HEALTHCHECK test in place of the container's own, when its own cannot run as the
    /// new user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Because<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_for: Option<String>,
    pub after: Vec<Because<String>>,
    /// Environment set by the plan (from the profile, never a value read from the container).
    pub env: BTreeMap<String, Because<String>>,
    /// Runtime paths that get a tmpfs owned by the user.
    pub tmpfs: Vec<Because<String>>,
    pub warnings: Vec<String>,
    /// What the preview would block the service for: it gets a day of its own, after the
    /// others, so that no other service waits for it.
    pub blockers: Vec<String>,
    pub gotchas: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unplaced: Option<String>,
}

/// A container left out of the plan, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    pub name: String,
    pub why: String,
}

/// The whole generated plan, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InitPlan {
    pub name: String,
    pub days: BTreeMap<u32, String>,
    pub services: Vec<Decision>,
    pub left_out: Vec<LeftOut>,
}

/// Why a container must stay root (SPEC §10 exceptions); empty when it need not.
pub fn exception_reasons(c: &Inspect) -> Vec<String> {
    let mut why = Vec::new();
    if c.mounts().iter().any(Mount::is_docker_sock) {
        why.push("mounts docker.sock".to_string());
    }
    if c.privileged() {
        why.push("runs privileged".to_string());
    }
    if c.pid_mode() == "host" {
        why.push("shares the host's process namespace".to_string());
    }
    if c.network_mode() == "host" {
        let low: Vec<String> = c
            .exposed_ports()
            .into_iter()
            .filter(|p| p.split('/').next().and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n < 1024))
            .collect();
        if !low.is_empty() {
            why.push(format!("uses the host's network with ports below 1024 ({})", low.join(", ")));
        }
    }
    for m in c.mounts().into_iter().filter(|m| m.kind == MountKind::Bind) {
        let host =
            ["/proc", "/sys", "/dev"].into_iter().find(|p| m.source == *p || m.source.starts_with(&format!("{p}/")));
        if let Some(p) = host {
            why.push(format!("binds the host's {p} ({} → {})", m.source, m.destination));
        }
    }
    why
}

/// The decision for one container, before the days are laid out.
pub fn decide(seen: &Seen, profiles: &Profiles) -> Decision {
    let c = &seen.container;
    let profile = profiles.for_image(c.image());
    let mut d = Decision {
        name: c.name().to_string(),
        image: c.image().to_string(),
        class: seen.class,
        placement: Placement::Migrate,
        profile: profile.map(|p| ProfileRef { key: p.key.clone(), source: p.source.clone() }),
        kind: kind(profile, c),
        day: 0,
        user: None,
        keep_root: None,
        controls: None,
        chown: because(Vec::new(), ""),
        not_reowned: Vec::new(),
        health: health(profile, c, &seen.image),
        healthcheck: None,
        stable_for: None,
        after: Vec::new(),
        env: BTreeMap::new(),
        tmpfs: Vec::new(),
        warnings: Vec::new(),
        blockers: Vec::new(),
        gotchas: profile.map(|p| p.gotchas.clone()).unwrap_or_default(),
        unplaced: None,
    };
    if d.health.value == Health::Running {
        d.stable_for = Some(RUNNING_STABLE_FOR.to_string());
    }
    let accounts = match &seen.image.accounts {
        Ok(a) => a,
        Err(why) => {
            d.placement = Placement::Unplaced;
            d.unplaced = Some(format!("its image's users could not be read: {why}"));
            return d;
        }
    };
    let reasons = exception_reasons(c);
    if !reasons.is_empty() {
        d.placement = Placement::Exception;
        d.keep_root = Some(reasons.join("; "));
        d.controls = Some(controls(seen));
        return d;
    }
    let (owner, why) = user(seen, profile, accounts);
    d.user = Some(because(owner.to_string(), why));
    let (chown, left) = reown(seen);
    d.chown = because(chown, "its writable volume and bind mounts");
    d.not_reowned = left;
    if let Some((home, why)) = home(profile, accounts, owner) {
        d.env.insert("HOME".into(), because(home, why));
    }
    carry_out(&mut d, seen, profile, owner);
    d
}

/// The kind: the profile's, else the daemon's evidence (a well-known port, an OCI label, a
/// compose service name), else stateless without a writable mount, else unknown (a day
/// after the known kinds).
fn kind(profile: Option<&Profile>, c: &Inspect) -> Because<Kind> {
    if let Some(p) = profile {
        return because(p.kind, format!("profile {}", p.key));
    }
    if let Some((kind, why)) = kind_evidence(c) {
        return because(kind, format!("no profile; {why}"));
    }
    if writable(c).next().is_none() {
        because(Kind::Stateless, "no profile, no known port or name, and no writable mount")
    } else {
        because(Kind::Unknown, "no profile, no known port or name, and writable mounts: after the known kinds")
    }
}

/// The kind a container's own facts point to when its image has no profile, with the
/// evidence: an exposed port of a well-known server, else a known word in its OCI title
/// (`org.opencontainers.image.title`), else in its compose service name.
fn kind_evidence(c: &Inspect) -> Option<(Kind, String)> {
    // The strongest evidence first: the table's order, not the ports' (8000 says less than 5432).
    let known = c
        .exposed_ports()
        .into_iter()
        .filter_map(|p| Some((kind_of_port(p.split('/').next()?.parse().ok()?)?, p)))
        .min_by_key(|((_, _, rank), _)| *rank);
    if let Some(((kind, what, _), p)) = known {
        return Some((kind, format!("it exposes {p}, {what}'s port")));
    }
    let named = [("OCI title", "org.opencontainers.image.title"), ("compose service", "com.docker.compose.service")];
    for (what, label) in named {
        if let Some((kind, word)) = c.label(label).and_then(kind_of_name) {
            return Some((kind, format!("its {what} {:?} names {word}", c.label(label).unwrap_or_default())));
        }
    }
    None
}

fn writable(c: &Inspect) -> impl Iterator<Item = Mount> {
    c.mounts().into_iter().filter(|m| m.writable && m.kind.holds_data())
}

/// Docker's HEALTHCHECK, else the profile's probe when its command is in the image, else
/// running.
fn health(profile: Option<&Profile>, c: &Inspect, image: &ImageFacts) -> Because<Health> {
    if c.has_healthcheck() {
        return because(Health::Docker, "the container has a HEALTHCHECK");
    }
    if let Some(p) = profile.filter(|p| p.probe.first().is_some_and(|cmd| image.commands.contains(cmd))) {
        return because(
            Health::Exec { command: p.probe.clone() },
            format!("profile {}'s probe; {} is in the image", p.key, p.probe[0]),
        );
    }
    let why = match profile.and_then(|p| p.probe.first()) {
        Some(cmd) => format!(
            "no HEALTHCHECK, and {cmd} (profile {}'s probe) is not in the image",
            profile.map_or("", |p| &p.key)
        ),
        None => "no HEALTHCHECK and no probe known for the image".to_string(),
    };
    because(Health::Running, format!("{why}: healthy means running for {RUNNING_STABLE_FOR}"))
}

/// The user, in the order of SPEC §10, with the evidence.
fn user(seen: &Seen, profile: Option<&Profile>, accounts: &Accounts) -> (Owner, String) {
    let named = |uid: u32| accounts.uid_entry(uid).map(|(n, e)| (n.to_string(), e.gid));
    if seen.class == Class::DropsRoot
        && let Some(&uid) = seen.process_uids.iter().find(|u| **u != 0)
    {
        let (who, gid) = match named(uid) {
            Some((n, gid)) => (format!(" ({n} in the image's /etc/passwd)"), gid),
            None => (String::new(), uid),
        };
        return (
            Owner::new(uid, gid),
            format!("its processes already run as uid {uid}{who}: the entrypoint's own choice"),
        );
    }
    if let Some(p) = profile {
        if let Some(name) = &p.user
            && let Some(e) = accounts.users.get(name).filter(|e| e.uid != 0)
        {
            return (
                Owner::new(e.uid, e.gid),
                format!("profile {}: the image's own user {name}, from its /etc/passwd", p.key),
            );
        }
        if let Some(o) = p.ids.get(&seen.image.variant) {
            let missing = p.user.as_deref().map_or(String::new(), |n| format!(" (its /etc/passwd has no {n})"));
            return (*o, format!("profile {}: {o} in {} images{missing}", p.key, seen.image.variant));
        }
    }
    let c = &seen.container;
    let data: Vec<String> =
        seen.image.volumes.iter().cloned().chain(c.mounts().into_iter().map(|m| m.destination)).collect();
    for path in &data {
        if let Some((o, _)) = seen.image.paths.get(path).filter(|(o, _)| o.uid != 0)
            && let Some((n, gid)) = named(o.uid)
        {
            return (Owner::new(o.uid, gid), format!("{path} in the image belongs to {n} ({})", o.uid));
        }
    }
    let repo = crate::model::profiles::repository_name(c.image()).to_ascii_lowercase();
    let service = c.label("com.docker.compose.service").unwrap_or(c.name()).to_string();
    for name in [repo, service] {
        if let Some(e) = accounts.users.get(&name).filter(|e| e.uid != 0) {
            return (Owner::new(e.uid, e.gid), format!("the image has a user named {name}"));
        }
    }
    (Owner::new(1000, 1000), "the image has no user of its own".to_string())
}

/// The mounts to re-own, and those left out with why.
fn reown(seen: &Seen) -> (Vec<String>, Vec<String>) {
    let mut chown = Vec::new();
    let mut left = Vec::new();
    for m in writable(&seen.container) {
        if m.is_docker_sock() {
            left.push(format!("{}: docker.sock is never re-owned", m.destination));
        } else if let Some(why) = seen.protected.get(&m.source) {
            left.push(format!("{}: {why}", m.destination));
        } else {
            chown.push(m.destination);
        }
    }
    chown.sort();
    (chown, left)
}

/// `HOME` for a user whose home in the image is `/root` or missing, when the profile names one.
fn home(profile: Option<&Profile>, accounts: &Accounts, owner: Owner) -> Option<(String, String)> {
    let home = profile?.home.clone()?;
    let now = accounts.uid_entry(owner.uid).map(|(_, e)| e.home.clone()).unwrap_or_default();
    let unusable = now.is_empty() || now == "/root" || now == "/";
    unusable.then(|| {
        let was = if now.is_empty() { "none".to_string() } else { now };
        (home, format!("uid {}'s home in the image is {was}", owner.uid))
    })
}

/// Mounts that lie under a directory of the image the user cannot pass through.
pub(super) fn untraversable(image: &ImageFacts, owner: Owner, mounts: &[String]) -> Vec<String> {
    mounts
        .iter()
        .filter_map(|dest| {
            let above: Vec<(String, Owner, u32)> = ancestors(dest)
                .into_iter()
                .filter_map(|d| image.paths.get(&d).map(|(o, m)| (d.clone(), *o, *m)))
                .collect();
            unreachable(dest, &above, owner, &[])
        })
        .collect()
}

/// An exception's controls: every capability dropped but those it had added, no new
/// privileges, and a read-only root filesystem when it writes only to its mounts.
fn controls(seen: &Seen) -> Controls {
    let mut cap_add: Vec<String> = seen.container.cap_add().iter().map(|c| normalize_cap(c)).collect();
    cap_add.sort();
    cap_add.dedup();
    // Docker creates mount points in the writable layer: those are not the container's writes.
    let mounts: Vec<String> = seen.container.mounts().into_iter().map(|m| m.destination).collect();
    let mount_point = |p: &String| mounts.iter().any(|m| m == p || ancestors(m).contains(p));
    let writes: Option<Vec<&String>> =
        seen.rootfs_changes.as_ref().map(|c| c.iter().filter(|p| !mount_point(p)).collect());
    let read_only = match &writes {
        Some(changes) if changes.is_empty() => because(Some(true), "its root filesystem shows no writes (docker diff)"),
        Some(changes) => {
            because(None, format!("it wrote {} path(s) of its root filesystem (docker diff)", changes.len()))
        }
        None => because(None, "whether it writes to its root filesystem could not be read"),
    };
    Controls { cap_drop: vec!["ALL".into()], cap_add, read_only, no_new_privileges: true }
}

/// Lays out the days (SPEC §10): one per kind present among the migrated services, in the
/// order of [`Kind`]; exceptions on the last day; `after` from compose `depends_on` and
/// links, kept where they point to a placed service of the same or an earlier day.
pub fn lay_out(name: String, mut services: Vec<Decision>, left_out: Vec<LeftOut>, containers: &[Inspect]) -> InitPlan {
    let free = |d: &Decision| d.placement == Placement::Migrate && d.blockers.is_empty();
    let kinds: BTreeSet<Kind> = services.iter().filter(|d| free(d)).map(|d| d.kind.value).collect();
    let day_of: BTreeMap<Kind, u32> = kinds.iter().enumerate().map(|(i, k)| (*k, i as u32 + 1)).collect();
    let last = day_of.len().max(1) as u32;
    let mut days: BTreeMap<u32, String> = day_of.iter().map(|(k, d)| (*d, k.title().to_string())).collect();
    let mut next_isolated = last + 1;
    services.sort_by(|a, b| a.name.cmp(&b.name));
    for d in &mut services {
        d.day = match d.placement {
            Placement::Migrate if d.blockers.is_empty() => day_of[&d.kind.value],
            Placement::Migrate => {
                let day = next_isolated;
                next_isolated += 1;
                days.insert(day, format!("{} alone: blocked until fixed", d.name));
                day
            }
            Placement::Exception => {
                days.entry(last).or_insert_with(|| "exceptions".to_string());
                last
            }
            Placement::Unplaced => 0,
        };
    }
    let placed: BTreeMap<String, u32> =
        services.iter().filter(|d| d.placement != Placement::Unplaced).map(|d| (d.name.clone(), d.day)).collect();
    for d in &mut services {
        let Some(c) = containers.iter().find(|c| c.name() == d.name) else { continue };
        for (target, why) in dependencies(c, containers) {
            if target != d.name
                && placed.get(&target).is_some_and(|day| *day <= d.day)
                && !d.after.iter().any(|a| a.value == target)
            {
                d.after.push(because(target, why));
            }
        }
    }
    services.sort_by(|a, b| (a.day == 0, a.day, &a.name).cmp(&(b.day == 0, b.day, &b.name)));
    InitPlan { name, days, services, left_out }
}

/// The containers `c` depends on: compose `depends_on` (same project) and links.
fn dependencies(c: &Inspect, containers: &[Inspect]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let project = c.label("com.docker.compose.project");
    for entry in c.label("com.docker.compose.depends_on").unwrap_or_default().split(',') {
        let service = entry.split(':').next().unwrap_or_default().trim();
        if service.is_empty() {
            continue;
        }
        let target = containers.iter().find(|o| {
            o.label("com.docker.compose.project") == project && o.label("com.docker.compose.service") == Some(service)
        });
        if let Some(t) = target {
            out.push((t.name().to_string(), format!("compose depends_on {service}")));
        }
    }
    for link in c.links() {
        let target = link.split(':').next().unwrap_or_default().trim_start_matches('/');
        if containers.iter().any(|o| o.name() == target) {
            out.push((target.to_string(), format!("a link to {target}")));
        }
    }
    out
}
