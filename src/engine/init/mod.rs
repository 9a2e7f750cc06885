//! `unroot init` (SPEC §10): a plan written from what the daemon shows, every decision with
//! the evidence it rests on. It reads only: its probe containers are created, never
//! started, and removed with their anonymous volumes.

mod decide;
mod render;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::docker::recreate::LABEL_RUN;
use crate::docker::{DockerError, DockerPort, Inspect};
use crate::engine::accounts;
use crate::engine::audit::{self, Class};
use crate::engine::orphans::{LABEL_HELPER, LABEL_PROBE};
use crate::engine::reown;
use crate::model::owner::ancestors;
use crate::model::passwd;
use crate::model::profiles::{Profile, Profiles, Variant};
use crate::model::user::Accounts;

pub use decide::{
    Because, Controls, Decision, Health, ImageFacts, InitPlan, LeftOut, Placement, ProfileRef, Seen, decide,
    exception_reasons, lay_out,
};
pub use render::toml;

/// Bytes of a path's tar stream read to see its owner and mode: one header block.
const HEADER_LIMIT: usize = 512;

/// Writes the plan of every running container that runs as root (of those `filters` match,
/// as `audit --filter`). `name` is the rollout's (default: the compose project they share,
/// else `rollout`).
///
/// Errors: only when the daemon cannot be listed; a container that vanishes meanwhile is
/// left out with why.
pub async fn run(
    port: &impl DockerPort,
    profiles: &Profiles,
    filters: &[audit::Filter],
    name: Option<&str>,
) -> Result<InitPlan, DockerError> {
    let report = audit::run(port, None, &audit::Scope::filtered(filters)).await?;
    let mut containers = Vec::new();
    let mut decisions = Vec::new();
    let mut left_out: Vec<LeftOut> =
        report.gone.iter().map(|g| LeftOut { name: g.name.clone(), why: g.note.clone() }).collect();
    for entry in &report.containers {
        let c = match port.inspect_container(&entry.id).await {
            Ok(c) => c,
            Err(DockerError::NotFound(_)) => {
                left_out.push(LeftOut { name: entry.name.clone(), why: "removed while init ran".into() });
                continue;
            }
            Err(e) => return Err(e),
        };
        containers.push(c.clone());
        if let Some(why) = left_out_why(&c, entry) {
            left_out.push(LeftOut { name: entry.name.clone(), why });
            continue;
        }
        let profile = profiles.for_image(c.image());
        // What it wrote in its own layer: runtime state for tmpfs, and the exceptions' read_only.
        let rootfs_changes = port.changes(c.id()).await.ok();
        let runtime_dirs = runtime_candidates(&c, rootfs_changes.as_deref().unwrap_or_default());
        let image = observe_image(port, &c, profile, &runtime_dirs).await;
        let protected = c
            .mounts()
            .into_iter()
            .filter(|m| m.kind == crate::model::mount::MountKind::Bind)
            .filter_map(|m| Some((m.source.clone(), reown::protected_bind(&m.source)?)))
            .collect();
        let seen = Seen {
            container: c,
            class: entry.class,
            process_uids: entry.process_uids.clone(),
            image,
            protected,
            rootfs_changes,
        };
        decisions.push(decide(&seen, profiles));
    }
    let placed: Vec<&Inspect> = containers.iter().filter(|c| decisions.iter().any(|d| d.name == c.name())).collect();
    let name = name.map(str::to_string).unwrap_or_else(|| default_name(&placed));
    Ok(lay_out(name, decisions, left_out, &containers))
}

/// Why a container is not in the plan at all, or `None` when it runs as root.
fn left_out_why(c: &Inspect, entry: &audit::Entry) -> Option<String> {
    if c.label(LABEL_PROBE).is_some() || c.label(LABEL_HELPER).is_some() || c.name().contains(".unroot-") {
        return Some("one of unroot's own containers".into());
    }
    if c.label("com.docker.compose.oneoff").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Some("a compose one-off container (docker-compose run)".into());
    }
    if !c.running() {
        return Some(format!("not running ({})", c.status()));
    }
    match entry.class {
        Class::NonRoot => {
            let uids: Vec<String> = entry.process_uids.iter().map(u32::to_string).collect();
            Some(format!("already runs as uid {}", uids.join(", ")))
        }
        Class::Exception => Some("a documented exception".into()),
        Class::Root if c.label(LABEL_RUN).is_some() => Some(format!(
            "kept on root by unroot run {} (an exception of an earlier plan)",
            c.label(LABEL_RUN).unwrap_or("")
        )),
        Class::Root | Class::DropsRoot => None,
    }
}

/// The directories of runtime state `c` wrote in its own layer outside its mounts, whose
/// owners in the image decide whether they need a tmpfs.
fn runtime_candidates(c: &Inspect, changes: &[String]) -> Vec<String> {
    let mounts: Vec<String> = c.mounts().into_iter().map(|m| m.destination).collect();
    crate::model::layer::lost_writes(changes, &mounts)
        .iter()
        .filter_map(|w| crate::model::layer::runtime_dir(w))
        .collect()
}

/// Reads the image of `c` through a probe container: users, variant, declared volumes,
/// owner and mode of the paths the decisions look at (with `extra`), and the profile
/// probe's command.
async fn observe_image(port: &impl DockerPort, c: &Inspect, profile: Option<&Profile>, extra: &[String]) -> ImageFacts {
    let mut facts = ImageFacts {
        accounts: Ok(Accounts::default()),
        variant: Variant::Other,
        volumes: c.declared_volumes(),
        paths: BTreeMap::new(),
        commands: BTreeSet::new(),
    };
    // A name of its own: init takes no lock, and must never replace the probe of an apply
    // that runs meanwhile (probes are swept by their label, not their name).
    let probe_name = format!("{}.init-{}", c.name(), std::process::id());
    let id = match accounts::create_probe(port, c.image_id(), &probe_name).await {
        Ok(id) => id,
        Err(e) => {
            facts.accounts = Err(e.to_string());
            return facts;
        }
    };
    facts.accounts = Ok(accounts::read(port, &id).await);
    let os = match accounts::read_file(port, &id, "/etc/os-release").await {
        Some(t) => Some(t),
        None => accounts::read_file(port, &id, "/usr/lib/os-release").await,
    };
    facts.variant = os.map_or(Variant::Other, |t| Variant::from_os_release(&t));
    let mut paths: BTreeSet<String> = facts.volumes.iter().cloned().collect();
    paths.extend(c.mounts().into_iter().map(|m| m.destination));
    paths.extend(profile.map(|p| p.data.clone()).unwrap_or_default());
    paths.extend(profile.map(|p| p.tmpfs.clone()).unwrap_or_default());
    paths.extend(profile.map(|p| p.writable.clone()).unwrap_or_default());
    paths.extend(profile.map(|p| p.needs_mount.clone()).unwrap_or_default());
    paths.extend(extra.iter().cloned());
    let above: Vec<String> = paths.iter().flat_map(|p| ancestors(p)).collect();
    paths.extend(above);
    for path in paths {
        if let Ok(tar) = port.read_archive(&id, &path, HEADER_LIMIT).await
            && let Some(seen) = passwd::first_header(&tar)
        {
            facts.paths.insert(path, seen);
        }
    }
    if let Some(cmd) = profile.and_then(|p| p.probe.first()) {
        let candidates: Vec<String> = match cmd.starts_with('/') {
            true => vec![cmd.clone()],
            false => c.path_dirs().iter().map(|d| format!("{}/{cmd}", d.trim_end_matches('/'))).collect(),
        };
        for candidate in candidates {
            if port.read_archive(&id, &candidate, HEADER_LIMIT).await.is_ok() {
                facts.commands.insert(cmd.clone());
                break;
            }
        }
    }
    accounts::remove_probe(port, &id).await;
    facts
}

/// The compose project every placed container belongs to, else `rollout`; as a rollout
/// name (`[a-z0-9][a-z0-9-]*`).
fn default_name(placed: &[&Inspect]) -> String {
    let projects: BTreeSet<&str> = placed.iter().filter_map(|c| c.label("com.docker.compose.project")).collect();
    let name = match (projects.len(), projects.iter().next()) {
        (1, Some(p)) if placed.iter().all(|c| c.label("com.docker.compose.project").is_some()) => p.to_string(),
        _ => "rollout".to_string(),
    };
    let clean: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' })
        .collect();
    let clean = clean.trim_matches('-').to_string();
    if clean.is_empty() { "rollout".to_string() } else { clean }
}
