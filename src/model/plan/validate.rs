//! The rules of the plan format, checked on the raw file with the place of every error.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::raw::{RawHealth, RawPlan, RawRollout, RawService};
use super::*;
use crate::model::caps::{CapFault, known_cap, normalize_cap};

pub(super) fn docker_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn rollout_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Why a container path in the plan is not usable: relative, or holding `..`.
pub(super) fn path_fault(path: &Path) -> Option<&'static str> {
    if !path.is_absolute() {
        Some("is relative")
    } else if path.components().any(|c| c == Component::ParentDir) {
        Some("contains `..`")
    } else {
        None
    }
}

pub(super) struct Validator<'a> {
    pub(super) src: &'a Source,
    pub(super) errors: Vec<PlanError>,
}

impl Validator<'_> {
    pub(super) fn push(
        &mut self,
        kind: PlanErrorKind,
        span: Range<usize>,
        message: impl Into<String>,
        label: &str,
        help: Option<&str>,
    ) {
        self.errors.push(self.src.error(kind, Some(span), message, label, help.map(str::to_string)));
    }

    /// As [`Validator::push`], the hint linking the section of `key` in docs/plan.md.
    pub(super) fn push_about(
        &mut self,
        key: &str,
        kind: PlanErrorKind,
        span: Range<usize>,
        message: impl Into<String>,
        label: &str,
        help: Option<&str>,
    ) {
        self.errors.push(self.src.error(kind, Some(span), message, label, help.map(str::to_string)).about(key));
    }

    pub(super) fn duration(&mut self, field: &str, value: &Spanned<String>) -> Option<Duration> {
        match duration::parse(value.get_ref()) {
            Ok(d) if (duration::MIN..=duration::MAX).contains(&d) => Some(d),
            Ok(_) => {
                self.push(
                    PlanErrorKind::InvalidDuration,
                    value.span(),
                    format!("`{field}` = \"{}\" is outside 1s..24h", value.get_ref()),
                    "out of range",
                    Some("durations go from 1s to 24h"),
                );
                None
            }
            Err(why) => {
                self.push(
                    PlanErrorKind::InvalidDuration,
                    value.span(),
                    format!("`{field}` is not a duration: {why}"),
                    "not a duration",
                    Some("write it like \"30s\", \"2m\" or \"1h30m\""),
                );
                None
            }
        }
    }

    pub(super) fn timings(
        &mut self,
        base: Timings,
        stop: &Option<Spanned<String>>,
        health: &Option<Spanned<String>>,
        stable: &Option<Spanned<String>>,
        daemon: &Option<Spanned<String>>,
    ) -> Timings {
        let mut t = base;
        if let Some(d) = stop.as_ref().and_then(|v| self.duration("stop_timeout", v)) {
            t.stop_timeout = d;
        }
        if let Some(d) = health.as_ref().and_then(|v| self.duration("health_timeout", v)) {
            t.health_timeout = d;
        }
        if let Some(d) = stable.as_ref().and_then(|v| self.duration("stable_for", v)) {
            t.stable_for = d;
        }
        if let Some(d) = daemon.as_ref().and_then(|v| self.duration("daemon_timeout", v)) {
            t.daemon_timeout = d;
        }
        t
    }

    pub(super) fn rollout(&mut self, raw: &Spanned<RawRollout>) -> Option<Rollout> {
        let before = self.errors.len();
        let r = raw.get_ref();
        let name = r.name.get_ref();
        if !rollout_name_ok(name) {
            self.push_about(
                "name",
                PlanErrorKind::InvalidName,
                r.name.span(),
                format!("rollout name `{name}` must match [a-z0-9][a-z0-9-]*"),
                "invalid rollout name",
                Some("it names the state folder: lower-case letters, digits and dashes"),
            );
        }
        let parallelism = match &r.parallelism {
            None => 1,
            Some(p) if (1..=64).contains(p.get_ref()) => *p.get_ref() as usize,
            Some(p) => {
                self.push_about(
                    "parallelism",
                    PlanErrorKind::InvalidValue,
                    p.span(),
                    format!("`parallelism` = {} is outside 1..64", p.get_ref()),
                    "out of range",
                    Some("use 1 to migrate one service at a time"),
                );
                1
            }
        };
        let state_dir = match &r.state_dir {
            Some(s) if s.get_ref().trim().is_empty() => {
                self.push_about(
                    "state_dir",
                    PlanErrorKind::InvalidValue,
                    s.span(),
                    "`state_dir` is empty",
                    "empty",
                    Some("leave it out for the default \"rollback\""),
                );
                PathBuf::from(DEFAULT_STATE_DIR)
            }
            Some(s) => PathBuf::from(s.get_ref()),
            None => PathBuf::from(DEFAULT_STATE_DIR),
        };
        let timings =
            self.timings(Timings::default(), &r.stop_timeout, &r.health_timeout, &r.stable_for, &r.daemon_timeout);
        let helper_image = r.helper_image.as_ref().map(|s| s.get_ref().trim().to_string()).filter(|s| !s.is_empty());
        (self.errors.len() == before).then(|| Rollout {
            name: name.clone(),
            state_dir,
            parallelism,
            on_failure: r.on_failure,
            timings,
            helper_image,
            ownership: r.ownership,
        })
    }

    pub(super) fn days(&mut self, raw: &BTreeMap<Spanned<String>, Spanned<String>>) -> BTreeMap<u32, String> {
        let mut days = BTreeMap::new();
        for (key, title) in raw {
            match key.get_ref().parse::<u32>() {
                Ok(n) if n > 0 => {
                    days.insert(n, title.get_ref().clone());
                }
                _ => self.push_about(
                    "days",
                    PlanErrorKind::InvalidDay,
                    key.span(),
                    format!("day `{}` is not a positive integer", key.get_ref()),
                    "not a day",
                    Some("days are numbered 1, 2, 3 …"),
                ),
            }
        }
        days
    }

    pub(super) fn services(&mut self, raw: &RawPlan, base: Option<(Timings, Ownership)>) -> Vec<Service> {
        let (base_timings, base_ownership) = base.unwrap_or_default();
        if raw.service.len() > MAX_SERVICES {
            self.push(
                PlanErrorKind::TooManyServices,
                raw.rollout.span(),
                format!("the plan has {} services; the limit is {MAX_SERVICES}", raw.service.len()),
                "this rollout",
                Some("split the rollout into several plans"),
            );
            return Vec::new();
        }
        if raw.service.is_empty() {
            self.push_about(
                "service",
                PlanErrorKind::InvalidValue,
                raw.rollout.span(),
                "the plan has no services",
                "this rollout",
                Some("add a [service.NAME] table for each container to migrate"),
            );
        }
        let mut entries: Vec<_> = raw.service.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        let mut services = Vec::with_capacity(entries.len());
        for (key, svc) in &entries {
            if let Some(s) = self.service(key, svc, base_timings, base_ownership) {
                services.push(s);
            }
        }
        self.after_rules(&entries);
        services
    }

    pub(super) fn service(
        &mut self,
        key: &Spanned<String>,
        raw: &Spanned<RawService>,
        base_timings: Timings,
        base_ownership: Ownership,
    ) -> Option<Service> {
        let before = self.errors.len();
        let name = key.get_ref();
        let r = raw.get_ref();
        let day = self.name_and_day(key, r);
        let user = self.user_rules(r);
        let chown = self.chown_paths(r);
        let health = self.health_mode(r);
        let healthcheck = self.healthcheck_rules(r);
        let timings = self.timings(base_timings, &r.stop_timeout, &r.health_timeout, &r.stable_for, &r.daemon_timeout);
        self.list_rules(r);
        let tmpfs = self.tmpfs_rules(r);
        self.security_opt_rules(r);
        if r.swarm == Some(true) && r.ownership == Some(Ownership::Host) {
            self.push_about(
                "swarm",
                PlanErrorKind::InvalidValue,
                key.span(),
                format!("`{name}` is a Swarm service with ownership = \"host\""),
                "swarm = true",
                Some("a Swarm service's volumes are on its nodes: they are re-owned by helper jobs there (ownership \"auto\" or \"helper\")"),
            );
        }
        if self.errors.len() != before {
            return None;
        }
        Some(Service {
            name: name.clone(),
            day: day as u32,
            user,
            keep_root: r.keep_root.as_ref().map(|k| k.get_ref().trim().to_string()),
            after: r.after.iter().map(|a| a.get_ref().clone()).collect(),
            chown,
            health,
            healthcheck,
            timings,
            group_add: r.group_add.iter().map(|g| g.get_ref().clone()).collect(),
            env: r.env.iter().map(|(k, v)| (k.get_ref().clone(), v.clone())).collect(),
            cap_drop: r.cap_drop.iter().map(|c| normalize_cap(c.get_ref())).collect(),
            cap_add: r.cap_add.iter().map(|c| normalize_cap(c.get_ref())).collect(),
            read_only: r.read_only,
            no_new_privileges: r.no_new_privileges,
            tmpfs,
            security_opt: r.security_opt.iter().map(|o| o.get_ref().trim().to_string()).collect(),
            hardlinks: r.hardlinks,
            ownership: r.ownership.unwrap_or(base_ownership),
            swarm: r.swarm,
            span: key.span(),
        })
    }

    /// The container name and the day.
    fn name_and_day(&mut self, key: &Spanned<String>, r: &RawService) -> i64 {
        let name = key.get_ref();
        if !docker_name_ok(name) {
            self.push(
                PlanErrorKind::InvalidName,
                key.span(),
                format!("`{name}` is not a Docker container name"),
                "invalid container name",
                Some("container names match [a-zA-Z0-9][a-zA-Z0-9_.-]*"),
            );
        }
        let day = *r.day.get_ref();
        if day < 1 || day > u32::MAX as i64 {
            self.push(
                PlanErrorKind::InvalidDay,
                r.day.span(),
                format!("`day` = {day} is not a positive integer"),
                "not a day",
                Some("days are numbered 1, 2, 3 …"),
            );
        }
        day
    }

    /// `user` (never root) and `keep_root` (with its reason, never with `user`).
    fn user_rules(&mut self, r: &RawService) -> Option<UserSpec> {
        let user = match &r.user {
            None => None,
            Some(u) => match UserSpec::parse(u.get_ref()) {
                Ok(spec) if spec.is_root_literal() => {
                    self.push(
                        PlanErrorKind::RootUser,
                        u.span(),
                        format!("`user` = \"{}\" is root", u.get_ref()),
                        "resolves to uid 0",
                        Some("to keep this service on root, remove `user` and set keep_root = \"<the reason>\""),
                    );
                    None
                }
                Ok(spec) => Some(spec),
                Err(why) => {
                    self.push(
                        PlanErrorKind::InvalidUser,
                        u.span(),
                        format!("`user` = \"{}\" is not a user: {why}", u.get_ref()),
                        "not a user",
                        Some("write \"uid\", \"uid:gid\", or a name from the image's /etc/passwd"),
                    );
                    None
                }
            },
        };
        if let (Some(k), Some(u)) = (&r.keep_root, &r.user) {
            self.push(
                PlanErrorKind::KeepRootWithUser,
                k.span(),
                format!("`keep_root` and `user` = \"{}\" both set", u.get_ref()),
                "keeps the service on root",
                Some("a service either moves to `user` or stays root with `keep_root`; remove one"),
            );
        }
        if let Some(k) = &r.keep_root
            && k.get_ref().trim().is_empty()
        {
            self.push_about(
                "keep_root",
                PlanErrorKind::InvalidValue,
                k.span(),
                "`keep_root` needs the reason the service stays root",
                "empty reason",
                Some("write why, e.g. keep_root = \"reads host /proc for hardware metrics\""),
            );
        }
        user
    }

    /// `chown`: absolute paths without `..`.
    fn chown_paths(&mut self, r: &RawService) -> Option<Vec<PathBuf>> {
        r.chown.as_ref().map(|paths| {
            paths
                .iter()
                .filter_map(|p| {
                    let path = Path::new(p.get_ref());
                    match path_fault(path) {
                        Some(why) => {
                            self.push(
                                PlanErrorKind::InvalidPath,
                                p.span(),
                                format!("chown path \"{}\" {why}", p.get_ref()),
                                why,
                                Some("chown takes absolute container paths such as \"/var/lib/redis\""),
                            );
                            None
                        }
                        None => Some(path.to_path_buf()),
                    }
                })
                .collect::<Vec<_>>()
        })
    }

    /// `health`: "docker", "running" or a non-empty exec probe.
    fn health_mode(&mut self, r: &RawService) -> Option<HealthMode> {
        r.health.as_ref().and_then(|h| match h.get_ref() {
            RawHealth::Mode(m) if m == "docker" => Some(HealthMode::Docker),
            RawHealth::Mode(m) if m == "running" => Some(HealthMode::Running),
            RawHealth::Mode(m) => {
                self.push_about(
                    "health",
                    PlanErrorKind::InvalidValue,
                    h.span(),
                    format!("`health` = \"{m}\" is not a health mode"),
                    "unknown mode",
                    Some("use \"docker\", \"running\" or { exec = [\"cmd\", \"arg\"] }"),
                );
                None
            }
            RawHealth::Exec(e) if e.exec.is_empty() || e.exec[0].trim().is_empty() => {
                self.push_about(
                    "health",
                    PlanErrorKind::InvalidValue,
                    h.span(),
                    "`health.exec` is empty",
                    "no command",
                    Some("give the probe command and its arguments, e.g. [\"redis-cli\", \"ping\"]"),
                );
                None
            }
            RawHealth::Exec(e) => Some(HealthMode::Exec(e.exec.clone())),
        })
    }

    /// `group_add`, `env` keys and capabilities.
    fn list_rules(&mut self, r: &RawService) {
        for g in &r.group_add {
            if g.get_ref().trim().is_empty() || g.get_ref().contains(':') {
                self.push_about(
                    "group_add",
                    PlanErrorKind::InvalidValue,
                    g.span(),
                    format!("`group_add` entry \"{}\" is not a group", g.get_ref()),
                    "not a group",
                    Some("a group name from the image's /etc/group, or a gid"),
                );
            }
        }
        for key in r.env.keys() {
            let k = key.get_ref();
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                self.push_about(
                    "env",
                    PlanErrorKind::InvalidValue,
                    key.span(),
                    format!("`env` key \"{k}\" is not a variable name"),
                    "bad name",
                    Some("names are non-empty and hold no `=`"),
                );
            }
        }
        for (key, caps) in [("cap_drop", &r.cap_drop), ("cap_add", &r.cap_add)] {
            for cap in caps {
                self.capability_rule(key, cap);
            }
        }
    }

    /// A capability Docker knows, in any case, with or without `CAP_`.
    fn capability_rule(&mut self, key: &str, cap: &Spanned<String>) {
        let c = cap.get_ref();
        let (message, label, hint) = match known_cap(c) {
            Ok(_) => return,
            Err(CapFault::Empty) => {
                (format!("`{key}` has an empty entry"), "no capability", "remove it, or name a capability".to_string())
            }
            Err(CapFault::Spaces) => (
                format!("`{key}` entry \"{c}\" has spaces around the name"),
                "spaces",
                format!("write it without them: \"{}\"", c.trim()),
            ),
            Err(CapFault::PrefixedAll) => (
                format!("`{key}` entry \"{c}\" is not a capability Docker knows"),
                "not a capability",
                "write \"ALL\": Docker takes ALL without CAP_".to_string(),
            ),
            Err(CapFault::Unknown(nearest)) => (
                format!("`{key}` entry \"{c}\" is not a capability Docker knows"),
                "not a capability",
                match nearest {
                    Some(n) => format!("did you mean {n}? Docker takes the kernel's names, in any case, with or without CAP_, and ALL"),
                    None => "Docker takes the kernel's names (NET_BIND_SERVICE, CHOWN, SYS_ADMIN …), in any case, with or without CAP_, and ALL".to_string(),
                },
            ),
        };
        self.push_about(key, PlanErrorKind::InvalidValue, cap.span(), message, label, Some(&hint));
    }

    /// `after` names a known service of the same or an earlier day, and not itself.
    pub(super) fn after_rules(&mut self, entries: &[(&Spanned<String>, &Spanned<RawService>)]) {
        let days: HashMap<&str, i64> =
            entries.iter().map(|(k, s)| (k.get_ref().as_str(), *s.get_ref().day.get_ref())).collect();
        for (key, svc) in entries {
            let name = key.get_ref();
            let day = *svc.get_ref().day.get_ref();
            for dep in &svc.get_ref().after {
                let d = dep.get_ref();
                match days.get(d.as_str()) {
                    None => self.push(
                        PlanErrorKind::UnknownAfter,
                        dep.span(),
                        format!("`{name}` is after `{d}`, which the plan does not name"),
                        "unknown service",
                        Some("name a service that has its own [service.NAME] table"),
                    ),
                    Some(_) if d == name => self.push(
                        PlanErrorKind::Cycle,
                        dep.span(),
                        format!("`after` forms a cycle: {name} -> {name}"),
                        "a service cannot wait for itself",
                        Some("remove this entry"),
                    ),
                    Some(&dep_day) if dep_day > day => self.push(
                        PlanErrorKind::AfterLaterDay,
                        dep.span(),
                        format!("`{name}` (day {day}) is after `{d}`, which is on the later day {dep_day}"),
                        "on a later day",
                        Some("move the dependency to the same or an earlier day, or this service later"),
                    ),
                    Some(_) => {}
                }
            }
        }
    }
}
