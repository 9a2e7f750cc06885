//! The plan file (SPEC §2): strict parsing, every validation rule, and the validated model.
//!
//! Parsing is pure: [`Plan::parse`] takes the text and a name for it and touches nothing
//! else, so `unroot check` needs no daemon and the rules are tested without one.

pub mod duration;
pub mod error;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

pub use error::{PlanError, PlanErrorKind, PlanErrors, Source};

use crate::model::graph::{Node, RolloutGraph};
use crate::model::user::UserSpec;

/// The state directory when neither the plan nor `--state-dir` names one, relative to the
/// current directory.
pub const DEFAULT_STATE_DIR: &str = "rollback";

/// Largest plan file accepted.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Most services a plan may hold.
pub const MAX_SERVICES: usize = 10_000;

/// What happens to a day when one of its services fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Restore every touched service of the day, in reverse order.
    #[default]
    RollbackDay,
    /// Restore the failed service; services that do not depend on it go on.
    RollbackService,
    /// Stop and leave the run to `resume` or `rollback`.
    Pause,
}

/// Where re-owning runs (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Ownership {
    /// In-process when that is safe, else a helper container.
    #[default]
    Auto,
    /// In-process walk on the daemon's host.
    Host,
    /// A short-lived helper container.
    Helper,
}

/// How a service is judged healthy after its start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HealthMode {
    /// The container's own HEALTHCHECK, as Docker reports it.
    Docker,
    /// Running (and staying up for `stable_for`).
    Running,
    /// A command run inside the container; healthy when it exits 0.
    Exec(Vec<String>),
}

/// Timings that `[rollout]` sets and a service may override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Timings {
    #[serde(with = "duration_serde")]
    pub stop_timeout: Duration,
    #[serde(with = "duration_serde")]
    pub health_timeout: Duration,
    #[serde(with = "duration_serde")]
    pub stable_for: Duration,
    /// How long a restore waits for a daemon that does not answer (restarting) before it
    /// gives up.
    #[serde(with = "duration_serde")]
    pub daemon_timeout: Duration,
}

mod duration_serde {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::duration::format(*d))
    }
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            stop_timeout: Duration::from_secs(30),
            health_timeout: Duration::from_secs(120),
            stable_for: Duration::from_secs(5),
            daemon_timeout: Duration::from_secs(120),
        }
    }
}

/// The `[rollout]` table, validated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rollout {
    pub name: String,
    pub state_dir: PathBuf,
    pub parallelism: usize,
    pub on_failure: OnFailure,
    pub timings: Timings,
    pub helper_image: Option<String>,
    pub ownership: Ownership,
}

/// One `[service.NAME]` table, validated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Service {
    /// The container's name.
    pub name: String,
    pub day: u32,
    /// The target user; `None` keeps the container's user (only controls change).
    #[serde(serialize_with = "ser_user")]
    pub user: Option<UserSpec>,
    /// The documented reason this service stays root.
    pub keep_root: Option<String>,
    pub after: Vec<String>,
    /// Container paths whose mounts are re-owned; `None` means every writable mount.
    pub chown: Option<Vec<PathBuf>>,
    /// `None`: `docker` when the container has a HEALTHCHECK, else `running`.
    pub health: Option<HealthMode>,
    pub timings: Timings,
    pub group_add: Vec<String>,
    /// Environment added or replaced. Values are never printed.
    #[serde(skip)]
    pub env: BTreeMap<String, String>,
    pub cap_drop: Vec<String>,
    pub cap_add: Vec<String>,
    pub read_only: Option<bool>,
    pub no_new_privileges: Option<bool>,
    pub hardlinks: bool,
    pub ownership: Ownership,
    /// Where the service's table starts in the plan file.
    #[serde(skip)]
    pub span: Range<usize>,
}

fn ser_user<S: serde::Serializer>(u: &Option<UserSpec>, s: S) -> Result<S::Ok, S::Error> {
    match u {
        Some(u) => s.serialize_str(&u.to_string()),
        None => s.serialize_none(),
    }
}

impl Service {
    /// Env keys the plan sets, for output that must not show values.
    pub fn env_keys(&self) -> impl Iterator<Item = &str> {
        self.env.keys().map(String::as_str)
    }
}

/// A validated plan: every rule of SPEC §2 holds, and the graph is acyclic.
#[derive(Debug, Clone)]
pub struct Plan {
    pub source: Source,
    /// sha256 of the file's bytes, hex.
    pub sha256: String,
    pub rollout: Rollout,
    /// Day titles from `[days]`.
    pub days: BTreeMap<u32, String>,
    /// Services in file order.
    pub services: Vec<Service>,
    pub graph: RolloutGraph,
}

// ---------------------------------------------------------------------------------------
// The file as written: every key known, places kept for the errors.

/// An unroot plan: which containers move off root, to which user, on which day and after
/// what. See docs/plan.md.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "unroot plan")]
struct RawPlan {
    /// How the whole rollout runs.
    #[schemars(with = "RawRollout")]
    rollout: Spanned<RawRollout>,
    /// Optional titles of the days: `2 = "cache and queue"`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    days: BTreeMap<Spanned<String>, Spanned<String>>,
    /// One table per container, named as `docker ps` shows it.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawService>")]
    service: BTreeMap<Spanned<String>, Spanned<RawService>>,
}

/// Durations are whole numbers with a unit (ms, s, m, h), adding up: "30s", "1h30m";
/// between 1s and 24h.
const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h))+$";

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawRollout {
    /// Names the state folder: [a-z0-9][a-z0-9-]*.
    #[schemars(with = "String", regex(pattern = "^[a-z0-9][a-z0-9-]*$"))]
    name: Spanned<String>,
    /// Where runs are kept (default "rollback", relative to the current directory).
    #[schemars(with = "Option<String>")]
    state_dir: Option<Spanned<String>>,
    /// Services of one wave migrated at once (1-64, default 1).
    #[schemars(with = "Option<i64>", range(min = 1, max = 64))]
    parallelism: Option<Spanned<i64>>,
    /// What a failure does: rollback-day (default), rollback-service or pause.
    #[serde(default)]
    on_failure: OnFailure,
    /// Grace before SIGKILL (default "30s").
    #[schemars(with = "Option<String>", regex(pattern = DURATION_PATTERN))]
    stop_timeout: Option<Spanned<String>>,
    /// Per service, from start to healthy (default "120s").
    #[schemars(with = "Option<String>", regex(pattern = DURATION_PATTERN))]
    health_timeout: Option<Spanned<String>>,
    /// Healthy this long without a restart to count (default "5s").
    #[schemars(with = "Option<String>", regex(pattern = DURATION_PATTERN))]
    stable_for: Option<Spanned<String>>,
    /// How long a restore waits for a daemon that stopped answering (default "120s").
    #[schemars(with = "Option<String>", regex(pattern = DURATION_PATTERN))]
    daemon_timeout: Option<Spanned<String>>,
    /// Image for re-owning helpers (needs sh, find, stat, chown, xargs); default: the
    /// service's own image.
    #[schemars(with = "Option<String>")]
    helper_image: Option<Spanned<String>>,
    /// Where re-owning runs: auto (default), host or helper.
    #[serde(default)]
    ownership: Ownership,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawService {
    /// The day it migrates on (>= 1).
    #[schemars(with = "i64", range(min = 1))]
    day: Spanned<i64>,
    /// The new user: "uid", "uid:gid", "name" or "name:group" (names from the image's
    /// /etc/passwd); never root. Leave out to keep the user and change only the controls.
    #[schemars(with = "Option<String>")]
    user: Option<Spanned<String>>,
    /// A documented exception: why it stays root. Not with `user`.
    #[schemars(with = "Option<String>")]
    keep_root: Option<Spanned<String>>,
    /// Services migrated and healthy before this one starts (same or earlier day).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    after: Vec<Spanned<String>>,
    /// Absolute container paths whose mounts are re-owned; default every writable volume
    /// and bind mount; [] re-owns nothing.
    #[schemars(with = "Option<Vec<String>>")]
    chown: Option<Vec<Spanned<String>>>,
    /// "docker" (the container's HEALTHCHECK), "running", or { exec = ["cmd", ...] }.
    #[schemars(with = "Option<RawHealth>")]
    health: Option<Spanned<RawHealth>>,
    /// Grace before SIGKILL for this service.
    #[schemars(with = "Option<String>", regex(pattern = DURATION_PATTERN))]
    stop_timeout: Option<Spanned<String>>,
    /// From start to healthy, for this service.
    #[schemars(with = "Option<String>", regex(pattern = DURATION_PATTERN))]
    health_timeout: Option<Spanned<String>>,
    /// Healthy this long without a restart, for this service.
    #[schemars(with = "Option<String>", regex(pattern = DURATION_PATTERN))]
    stable_for: Option<Spanned<String>>,
    /// How long its restore waits for a daemon that stopped answering.
    #[schemars(with = "Option<String>", regex(pattern = DURATION_PATTERN))]
    daemon_timeout: Option<Spanned<String>>,
    /// Supplementary groups, by name (the image's /etc/group) or gid.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    group_add: Vec<Spanned<String>>,
    /// Environment added or replaced (values are never printed).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    env: BTreeMap<Spanned<String>, String>,
    /// Capabilities dropped (ALL, NET_RAW, ...).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    cap_drop: Vec<Spanned<String>>,
    /// Capabilities added (NET_BIND_SERVICE, ...).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    cap_add: Vec<Spanned<String>>,
    /// A read-only root filesystem.
    read_only: Option<bool>,
    /// Set no-new-privileges.
    no_new_privileges: Option<bool>,
    /// Re-own files with more than one hard link too (default false).
    #[serde(default)]
    hardlinks: bool,
    /// Where re-owning runs for this service: auto, host or helper.
    ownership: Option<Ownership>,
}

/// How a replacement counts as healthy.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
enum RawHealth {
    /// "docker" or "running".
    Mode(#[schemars(with = "HealthModeName")] String),
    /// A probe command run inside the container, healthy when it exits 0.
    Exec(RawExec),
}

/// The named health modes.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum HealthModeName {
    Docker,
    Running,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawExec {
    /// The command and its arguments.
    #[schemars(length(min = 1))]
    exec: Vec<String>,
}

/// The JSON Schema of the plan format, made from the types that parse it.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawPlan)).expect("a schema serializes")
}

// ---------------------------------------------------------------------------------------

impl Plan {
    /// Reads and validates a plan file.
    ///
    /// Errors: the file unreadable or over 1 MiB, or any rule of SPEC §2 broken (all of them
    /// are reported, in file order).
    pub fn load(path: &Path) -> Result<Plan, PlanErrors> {
        let name = path.display().to_string();
        let empty = Source { name: name.clone(), text: Arc::from("") };
        let meta = std::fs::metadata(path)
            .map_err(|e| empty.error(PlanErrorKind::File, None, format!("cannot read the plan: {e}"), "", None))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(empty
                .error(
                    PlanErrorKind::File,
                    None,
                    format!("the plan is {} bytes; the limit is 1 MiB ({MAX_FILE_BYTES} bytes)", meta.len()),
                    "",
                    Some("split the rollout into several plans".into()),
                )
                .into());
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| empty.error(PlanErrorKind::File, None, format!("cannot read the plan: {e}"), "", None))?;
        Plan::parse(&name, &text)
    }

    /// Parses and validates plan text; `name` is used in error locations.
    ///
    /// Errors: as [`Plan::load`], without the file checks (the size rule still applies).
    pub fn parse(name: &str, text: &str) -> Result<Plan, PlanErrors> {
        let source = Source { name: name.to_string(), text: Arc::from(text) };
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(source
                .error(
                    PlanErrorKind::File,
                    None,
                    format!("the plan is {} bytes; the limit is 1 MiB", text.len()),
                    "",
                    Some("split the rollout into several plans".into()),
                )
                .into());
        }
        let raw: RawPlan = toml::from_str(text).map_err(|e| syntax_error(&source, &e))?;
        let mut v = Validator { src: &source, errors: Vec::new() };
        let rollout = v.rollout(&raw.rollout);
        let days = v.days(&raw.days);
        let services = v.services(&raw, rollout.as_ref().map(|r| (r.timings, r.ownership)));
        if !v.errors.is_empty() {
            return Err(PlanErrors { errors: v.errors });
        }
        let rollout = rollout.expect("no errors means the rollout validated");
        let nodes: Vec<Node<'_>> =
            services.iter().map(|s| Node { name: &s.name, day: s.day, after: &s.after }).collect();
        let graph = RolloutGraph::build(&nodes).map_err(|cycle| cycle_error(&source, &services, &cycle))?;
        let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        Ok(Plan { source, sha256, rollout, days, services, graph })
    }

    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The days that have services, ascending.
    pub fn day_numbers(&self) -> Vec<u32> {
        self.graph.days().collect()
    }
}

fn syntax_error(src: &Source, e: &toml::de::Error) -> PlanErrors {
    let message = e.message().trim().to_string();
    let (kind, help) = if message.starts_with("unknown field") {
        (
            PlanErrorKind::UnknownKey,
            Some("remove the key or fix its spelling; the keys this table takes are listed above".to_string()),
        )
    } else if message.contains("did not match any variant of untagged enum RawHealth") {
        return src
            .error(
                PlanErrorKind::InvalidValue,
                e.span(),
                "`health` must be \"docker\", \"running\" or { exec = [\"cmd\", \"arg\"] }",
                "not a health mode",
                Some("for example: health = { exec = [\"redis-cli\", \"ping\"] }".into()),
            )
            .into();
    } else if message.starts_with("missing field") {
        (PlanErrorKind::Syntax, Some("add the key; it has no default".to_string()))
    } else if message.starts_with("unknown variant") {
        (PlanErrorKind::InvalidValue, Some("use one of the values listed above".to_string()))
    } else {
        (PlanErrorKind::Syntax, Some("the plan is TOML; check the line above".to_string()))
    };
    src.error(kind, e.span(), message, "here", help).into()
}

fn cycle_error(src: &Source, services: &[Service], cycle: &[String]) -> PlanErrors {
    let first = services.iter().find(|s| s.name == cycle[0]);
    let mut path = cycle.to_vec();
    path.push(cycle[0].clone());
    src.error(
        PlanErrorKind::Cycle,
        first.map(|s| s.span.clone()),
        format!("`after` forms a cycle: {}", path.join(" -> ")),
        "this service is part of the cycle",
        Some("remove one of these `after` entries so the services can be ordered".into()),
    )
    .into()
}

fn docker_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn rollout_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn capability_ok(cap: &str) -> bool {
    let bare = cap.strip_prefix("CAP_").unwrap_or(cap);
    !bare.is_empty() && bare.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

struct Validator<'a> {
    src: &'a Source,
    errors: Vec<PlanError>,
}

impl Validator<'_> {
    fn push(
        &mut self,
        kind: PlanErrorKind,
        span: Range<usize>,
        message: impl Into<String>,
        label: &str,
        help: Option<&str>,
    ) {
        self.errors.push(self.src.error(kind, Some(span), message, label, help.map(str::to_string)));
    }

    fn duration(&mut self, field: &str, value: &Spanned<String>) -> Option<Duration> {
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

    fn timings(
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

    fn rollout(&mut self, raw: &Spanned<RawRollout>) -> Option<Rollout> {
        let before = self.errors.len();
        let r = raw.get_ref();
        let name = r.name.get_ref();
        if !rollout_name_ok(name) {
            self.push(
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
                self.push(
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
                self.push(
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

    fn days(&mut self, raw: &BTreeMap<Spanned<String>, Spanned<String>>) -> BTreeMap<u32, String> {
        let mut days = BTreeMap::new();
        for (key, title) in raw {
            match key.get_ref().parse::<u32>() {
                Ok(n) if n > 0 => {
                    days.insert(n, title.get_ref().clone());
                }
                _ => self.push(
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

    fn services(&mut self, raw: &RawPlan, base: Option<(Timings, Ownership)>) -> Vec<Service> {
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
            self.push(
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

    fn service(
        &mut self,
        key: &Spanned<String>,
        raw: &Spanned<RawService>,
        base_timings: Timings,
        base_ownership: Ownership,
    ) -> Option<Service> {
        let before = self.errors.len();
        let name = key.get_ref();
        let r = raw.get_ref();
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
            self.push(
                PlanErrorKind::InvalidValue,
                k.span(),
                "`keep_root` needs the reason the service stays root",
                "empty reason",
                Some("write why, e.g. keep_root = \"reads host /proc for hardware metrics\""),
            );
        }
        let chown = r.chown.as_ref().map(|paths| {
            paths
                .iter()
                .filter_map(|p| {
                    let path = Path::new(p.get_ref());
                    let bad = if !path.is_absolute() {
                        Some("is relative")
                    } else if path.components().any(|c| c == Component::ParentDir) {
                        Some("contains `..`")
                    } else {
                        None
                    };
                    match bad {
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
        });
        let health = r.health.as_ref().and_then(|h| match h.get_ref() {
            RawHealth::Mode(m) if m == "docker" => Some(HealthMode::Docker),
            RawHealth::Mode(m) if m == "running" => Some(HealthMode::Running),
            RawHealth::Mode(m) => {
                self.push(
                    PlanErrorKind::InvalidValue,
                    h.span(),
                    format!("`health` = \"{m}\" is not a health mode"),
                    "unknown mode",
                    Some("use \"docker\", \"running\" or { exec = [\"cmd\", \"arg\"] }"),
                );
                None
            }
            RawHealth::Exec(e) if e.exec.is_empty() || e.exec[0].trim().is_empty() => {
                self.push(
                    PlanErrorKind::InvalidValue,
                    h.span(),
                    "`health.exec` is empty",
                    "no command",
                    Some("give the probe command and its arguments, e.g. [\"redis-cli\", \"ping\"]"),
                );
                None
            }
            RawHealth::Exec(e) => Some(HealthMode::Exec(e.exec.clone())),
        });
        let timings = self.timings(base_timings, &r.stop_timeout, &r.health_timeout, &r.stable_for, &r.daemon_timeout);
        for g in &r.group_add {
            if g.get_ref().trim().is_empty() || g.get_ref().contains(':') {
                self.push(
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
                self.push(
                    PlanErrorKind::InvalidValue,
                    key.span(),
                    format!("`env` key \"{k}\" is not a variable name"),
                    "bad name",
                    Some("names are non-empty and hold no `=`"),
                );
            }
        }
        for cap in r.cap_drop.iter().chain(&r.cap_add) {
            if !capability_ok(cap.get_ref()) {
                self.push(
                    PlanErrorKind::InvalidValue,
                    cap.span(),
                    format!("\"{}\" is not a capability", cap.get_ref()),
                    "not a capability",
                    Some("write capabilities in capitals, e.g. \"ALL\", \"NET_BIND_SERVICE\" or \"CAP_CHOWN\""),
                );
            }
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
            timings,
            group_add: r.group_add.iter().map(|g| g.get_ref().clone()).collect(),
            env: r.env.iter().map(|(k, v)| (k.get_ref().clone(), v.clone())).collect(),
            cap_drop: r.cap_drop.iter().map(|c| c.get_ref().clone()).collect(),
            cap_add: r.cap_add.iter().map(|c| c.get_ref().clone()).collect(),
            read_only: r.read_only,
            no_new_privileges: r.no_new_privileges,
            hardlinks: r.hardlinks,
            ownership: r.ownership.unwrap_or(base_ownership),
            span: key.span(),
        })
    }

    /// `after` names a known service of the same or an earlier day, and not itself.
    fn after_rules(&mut self, entries: &[(&Spanned<String>, &Spanned<RawService>)]) {
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
