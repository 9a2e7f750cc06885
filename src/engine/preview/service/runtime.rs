//! The preview of the keys that make an image run as non-root without a rebuild and add
//! compensating controls (`tmpfs`, `security_opt`, `healthcheck`), and of what the running
//! original wrote in its own layer.

use std::collections::BTreeMap;

use crate::docker::Inspect;
use crate::model::owner::Owner;
use crate::model::plan::Service;

use super::Observed;
use crate::engine::preview::ServicePlan;

/// The largest seccomp profile read for `security_opt = ["seccomp=FILE"]`.
const SECCOMP_LIMIT: u64 = 1 << 20;

/// The file of a `seccomp=FILE` option; `None` for every other option (and for
/// `seccomp=unconfined` or an inline profile), which goes to the daemon as written.
pub(super) fn seccomp_file(opt: &str) -> Option<&str> {
    let value = opt.strip_prefix("seccomp=").or_else(|| opt.strip_prefix("seccomp:"))?;
    (value != "unconfined" && !value.trim_start().starts_with('{')).then_some(value)
}

/// A `seccomp=FILE` option as the daemon takes it: `seccomp=` and the file's JSON, compact,
/// as the docker CLI sends it.
///
/// Errors: the file unreadable, over 1 MiB or not JSON.
pub(super) fn read_seccomp(opt: &str, file: &str) -> Result<String, String> {
    let meta = std::fs::metadata(file).map_err(|e| format!("security_opt {opt}: cannot read {file}: {e}"))?;
    if meta.len() > SECCOMP_LIMIT {
        return Err(format!("security_opt {opt}: {file} is over 1 MiB"));
    }
    let text = std::fs::read_to_string(file).map_err(|e| format!("security_opt {opt}: cannot read {file}: {e}"))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("security_opt {opt}: {file} is not a seccomp profile (JSON): {e}"))?;
    Ok(format!("seccomp={json}"))
}

/// The plan's tmpfs mounts as Docker takes them (path → options), owned by `owner` (the
/// user the replacement runs as; root's without one); a path the container already mounts
/// blocks.
pub(super) fn plan_tmpfs(
    s: &Service,
    c: &Inspect,
    owner: Option<Owner>,
    sp: &mut ServicePlan,
) -> BTreeMap<String, String> {
    let mounted = c.mount_points();
    let mut out = BTreeMap::new();
    for t in &s.tmpfs {
        if mounted.iter().any(|m| m.trim_end_matches('/') == t.path) {
            sp.blockers
                .push(format!("tmpfs {}: the container already has a mount there; remove it from `tmpfs`", t.path));
            continue;
        }
        let options = t.options(owner.filter(|o| o.uid != 0).map(|o| (o.uid, o.gid)));
        let shown = owner.filter(|o| o.uid != 0).map_or("root".to_string(), |o| o.to_string());
        sp.changes.push(format!("tmpfs: + {} ({options}; empty at each start, owned by {shown})", t.path));
        out.insert(t.path.clone(), options);
    }
    out
}

/// The planned HEALTHCHECK test in the change list; a test that switches user by itself
/// (mariadb's `healthcheck.sh --su-mysql`) blocks a service that moves off root, with the
/// test to plan instead.
pub(super) fn plan_healthcheck(s: &Service, c: &Inspect, sp: &mut ServicePlan) {
    // A test may hold a value of the environment (compose interpolates `${PASSWORD}`):
    // shown with every such value redacted.
    let secrets = crate::engine::redact::env_values(&c.env());
    let shown = |t: &[String]| crate::engine::redact::redact(&t.join(" "), &secrets);
    let now = c.healthcheck_test();
    if let Some(test) = &s.healthcheck {
        sp.changes.push(format!("healthcheck: {} → {}", shown(&now), shown(test)));
    }
    let effective = s.healthcheck.as_ref().unwrap_or(&now);
    if s.user.is_some()
        && let Some(fixed) = crate::model::profiles::healthcheck_without_user_switch(effective)
    {
        let fixed = crate::engine::redact::redact(&serde_json::to_string(&fixed).unwrap_or_default(), &secrets);
        sp.blockers.push(format!(
            "its HEALTHCHECK ({}) switches user itself, which fails once it is not root (MariaDB/mariadb-docker #648): set healthcheck = {fixed}",
            shown(effective),
        ));
    }
}

/// The plan's security options in the daemon's form; one that cannot be read blocks.
pub(super) fn plan_security_opt(s: &Service, obs: &Observed, sp: &mut ServicePlan) -> Vec<String> {
    let mut out = Vec::new();
    for written in &s.security_opt {
        let opt = match seccomp_file(written) {
            None => Ok(written.clone()),
            Some(_) => obs.seccomp_files.get(written).cloned().unwrap_or_else(|| {
                Err(format!("security_opt {written}: the profile was not read; run the preview again"))
            }),
        };
        match &opt {
            Ok(o) => {
                let shown = match o.strip_prefix("seccomp=").filter(|p| p.starts_with('{')) {
                    Some(p) => format!("seccomp=<profile of {} bytes>", p.len()),
                    None => o.clone(),
                };
                sp.changes.push(format!("security_opt: + {shown}"));
                out.push(o.clone());
            }
            Err(why) => sp.blockers.push(why.clone()),
        }
    }
    out
}

/// How many lost writes a warning names before it counts the rest.
const LAYER_WARNING_PATHS: usize = 6;

/// Warns of what the original wrote in its own layer outside its mounts and the planned
/// tmpfs: a recreate starts from the image again, so those writes are lost.
pub(super) fn layer_warning(c: &Inspect, obs: &Observed, tmpfs: &BTreeMap<String, String>, sp: &mut ServicePlan) {
    let Some(changes) = &obs.layer else { return };
    let covered: Vec<String> = c.mount_points().into_iter().chain(tmpfs.keys().cloned()).collect();
    let lost = crate::model::layer::lost_writes(changes, &covered);
    if lost.is_empty() {
        return;
    }
    let mut named: Vec<String> = lost.iter().take(LAYER_WARNING_PATHS).cloned().collect();
    if lost.len() > LAYER_WARNING_PATHS {
        named.push(format!("and {} more", lost.len() - LAYER_WARNING_PATHS));
    }
    sp.warnings.push(format!(
        "it wrote {} path(s) in its own layer that the replacement starts without (docker diff: {}): runtime state wants `tmpfs`, data a volume",
        lost.len(),
        named.join(", ")
    ));
}
