//! What must change for a service to run as its new user, decided from its profile and
//! what the daemon shows: plan keys where unroot can carry it out (`env`, `tmpfs`,
//! `healthcheck`), else a warning, a blocker or a commented-out block.

use super::{Because, Decision, Placement, Seen, because, untraversable};
use crate::model::owner::Owner;
use crate::model::profiles::Profile;

/// What the profile and the daemon show must change for the service to run as `owner`,
/// as plan keys where unroot can carry it out (env, tmpfs, healthcheck), else as a warning
/// or a blocker.
pub(super) fn carry_out(d: &mut Decision, seen: &Seen, profile: Option<&Profile>, owner: Owner) {
    let c = &seen.container;
    if let Some(p) = profile {
        // The container's own setting wins: it says where its data is.
        let own: Vec<String> = c.env().iter().filter_map(|e| e.split('=').next().map(str::to_string)).collect();
        for (k, v) in p.env.iter().filter(|(k, _)| !own.contains(k)) {
            d.env.entry(k.clone()).or_insert_with(|| because(v.clone(), format!("profile {}", p.key)));
        }
    }
    d.tmpfs = tmpfs(seen, profile, owner);
    let test = c.healthcheck_test();
    if let Some(fixed) = crate::model::profiles::healthcheck_without_user_switch(&test) {
        // A test holding a value of the environment (an interpolated password) is never
        // written into the plan: the operator writes that one.
        let secrets = crate::engine::redact::env_values(&c.env());
        let shown = crate::engine::redact::redact(&test.join(" "), &secrets);
        let why = format!(
            "its HEALTHCHECK ({shown}) switches user itself, which fails once it is not root (MariaDB/mariadb-docker #648)"
        );
        if shown == test.join(" ") {
            d.healthcheck = Some(because(fixed, format!("{why}: the same test without it")));
        } else {
            d.blockers.push(format!(
                "{why}, and it holds a value of the container's environment, which init does not write: set `healthcheck` to the same test without the switch"
            ));
        }
    }
    let covered: Vec<String> = c.mount_points().into_iter().chain(d.tmpfs.iter().map(|t| t.value.clone())).collect();
    if let Some(changes) = &seen.rootfs_changes {
        // Runtime state (a socket, a pid file) is lost at any restart anyway: only the rest.
        let lost: Vec<String> = crate::model::layer::lost_writes(changes, &covered)
            .into_iter()
            .filter(|w| crate::model::layer::runtime_dir(w).is_none())
            .collect();
        if !lost.is_empty() {
            d.warnings.push(format!(
                "it wrote {} in its own layer (docker diff), which a recreate loses: move what must last to a volume",
                lost.join(", ")
            ));
        }
    }
    d.blockers.extend(untraversable(&seen.image, owner, &d.chown.value));
    // A file only a mount can make writable: no plan key can, and the preview cannot see
    // it, so the service is written commented out with the reason (and the fix).
    let files = unmounted_files(seen, profile, owner);
    if !files.is_empty() {
        d.placement = Placement::Unplaced;
        d.unplaced = Some(files.join("; "));
    }
}

/// The profile's files that only a mount makes writable, where the image has their
/// directory, the user cannot write it, and no mount covers the file.
fn unmounted_files(seen: &Seen, profile: Option<&Profile>, owner: Owner) -> Vec<String> {
    let Some(p) = profile else { return Vec::new() };
    let mounts: Vec<String> = seen.container.mounts().into_iter().map(|m| m.destination).collect();
    p.needs_mount
        .iter()
        .filter(|file| !mounts.iter().any(|m| *file == m || file.starts_with(&format!("{m}/"))))
        .filter_map(|file| {
            let dir = file.rsplit_once('/').map(|(d, _)| if d.is_empty() { "/" } else { d })?;
            let (o, mode) = seen.image.paths.get(dir)?;
            let writable = (o.uid == owner.uid && mode & 0o200 != 0)
                || (o.gid == owner.gid && mode & 0o020 != 0)
                || mode & 0o002 != 0;
            (!writable).then(|| {
                format!(
                    "profile {}: it writes {file}, in {dir} (owner {o}, mode {mode:04o}), which uid {} cannot write, and no mount covers it: bind-mount a file owned by {owner} there",
                    p.key, owner.uid
                )
            })
        })
        .collect()
}

/// The runtime paths that get a tmpfs owned by `owner`: the profile's that the image has,
/// and the directories of runtime state the running container wrote in its own layer
/// (`docker diff`), unless a mount covers them or the image already gives them to `owner`.
fn tmpfs(seen: &Seen, profile: Option<&Profile>, owner: Owner) -> Vec<Because<String>> {
    let c = &seen.container;
    let mounts = c.mount_points();
    let covered = |p: &str, planned: &[Because<String>]| {
        mounts.iter().chain(planned.iter().map(|t| &t.value)).any(|m| m == p || p.starts_with(&format!("{m}/")))
            || mounts.iter().any(|m| m.starts_with(&format!("{p}/")))
    };
    let owned = |p: &str| seen.image.paths.get(p).is_some_and(|(o, _)| o.uid == owner.uid);
    let mut out: Vec<Because<String>> = Vec::new();
    for path in profile.map(|p| p.tmpfs.as_slice()).unwrap_or_default() {
        if seen.image.paths.contains_key(path) && !covered(path, &out) && !owned(path) {
            let p = profile.map_or("", |p| &p.key);
            out.push(because(
                path.clone(),
                format!("profile {p}: the image writes its runtime state under {path} as root"),
            ));
        }
    }
    for path in profile.map(|p| p.writable.as_slice()).unwrap_or_default() {
        if !covered(path, &out) && !owned(path) {
            let p = profile.map_or("", |p| &p.key);
            out.push(because(
                path.clone(),
                format!("profile {p}: it must write {path} at its start and no mount covers it; what it writes there is gone at each restart, so mount a volume there to keep it"),
            ));
        }
    }
    let Some(changes) = &seen.rootfs_changes else { return out };
    for write in crate::model::layer::lost_writes(changes, &mounts) {
        let Some(dir) = crate::model::layer::runtime_dir(&write) else { continue };
        if covered(&dir, &out) || owned(&dir) {
            continue;
        }
        out.push(because(
            dir.clone(),
            format!("it wrote {write} there (docker diff): runtime state, lost at any restart"),
        ));
    }
    out
}
