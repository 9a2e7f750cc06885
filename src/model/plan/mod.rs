//! The plan file (SPEC §2): strict parsing, every validation rule, and the validated model.
//!
//! Parsing is pure: [`Plan::parse`] takes the text and a name for it and touches nothing
//! else, so `unroot check` needs no daemon and the rules are tested without one.

pub mod duration;
pub mod error;
mod raw;
mod runtime;
mod validate;
mod words;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use raw::RawPlan;
pub use raw::json_schema;
use sha2::{Digest, Sha256};
use validate::Validator;

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

/// The permission bits of a tmpfs the plan does not give a mode.
pub const TMPFS_DEFAULT_MODE: u32 = 0o755;

/// One `tmpfs` entry of a service: a writable runtime path (pid files, temp and cache
/// directories) that the replacement gets on a tmpfs owned by its user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tmpfs {
    /// Absolute path in the container.
    pub path: String,
    /// Size limit as the kernel's tmpfs takes it (`16m`); `None`: the kernel's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Permission bits of its root.
    #[serde(serialize_with = "ser_mode")]
    pub mode: u32,
}

fn ser_mode<S: serde::Serializer>(m: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{m:04o}"))
}

impl Tmpfs {
    /// The mount options Docker's `HostConfig.Tmpfs` takes for this tmpfs, owned by `owner`
    /// (`uid`, `gid`) when given: `size=16m,mode=0755,uid=101,gid=101`.
    pub fn options(&self, owner: Option<(u32, u32)>) -> String {
        let mut opts = Vec::new();
        if let Some(size) = &self.size {
            opts.push(format!("size={size}"));
        }
        opts.push(format!("mode={:04o}", self.mode));
        if let Some((uid, gid)) = owner {
            opts.push(format!("uid={uid}"));
            opts.push(format!("gid={gid}"));
        }
        opts.join(",")
    }
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
    /// The replacement's HEALTHCHECK test (`["CMD", …]` or `["CMD-SHELL", "…"]`) in place
    /// of the container's own; `None` keeps it.
    pub healthcheck: Option<Vec<String>>,
    pub timings: Timings,
    pub group_add: Vec<String>,
    /// Environment added or replaced. Values are never printed.
    #[serde(skip)]
    pub env: BTreeMap<String, String>,
    pub cap_drop: Vec<String>,
    pub cap_add: Vec<String>,
    pub read_only: Option<bool>,
    pub no_new_privileges: Option<bool>,
    /// Writable runtime paths on tmpfs, owned by the service's user.
    pub tmpfs: Vec<Tmpfs>,
    /// Security options as `docker run --security-opt` takes them.
    pub security_opt: Vec<String>,
    pub hardlinks: bool,
    pub ownership: Ownership,
    /// `Some(true)`: a Swarm service; `Some(false)`: a container; `None`: whichever the
    /// daemon holds under the name (SPEC §11).
    pub swarm: Option<bool>,
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

/// A plan over [`MAX_FILE_BYTES`]: read neither further nor parsed.
fn too_large(source: &Source, message: String) -> PlanErrors {
    source.error(PlanErrorKind::File, None, message, "", Some("split the rollout into several plans".into())).into()
}

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
            return Err(too_large(
                &empty,
                format!("the plan is {} bytes; the limit is 1 MiB ({MAX_FILE_BYTES} bytes)", meta.len()),
            ));
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
            return Err(too_large(&source, format!("the plan is {} bytes; the limit is 1 MiB", text.len())));
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

/// The parser's error: serde's and toml's words turned into the plan's where they are known
/// (a wrong type, an unknown or missing key, a table given twice), with its place kept.
fn syntax_error(src: &Source, e: &toml::de::Error) -> PlanErrors {
    let message = e.message().trim().to_string();
    if message.contains("did not match any variant of untagged enum RawHealth") {
        return src
            .error(
                PlanErrorKind::InvalidValue,
                e.span(),
                "`health` must be \"docker\", \"running\" or { exec = [\"cmd\", \"arg\"] }",
                "not a health mode",
                Some("for example: health = { exec = [\"redis-cli\", \"ping\"] }".into()),
            )
            .about("health")
            .into();
    }
    if message.contains("did not match any variant of untagged enum RawTmpfs") {
        return src
            .error(
                PlanErrorKind::InvalidTmpfs,
                e.span(),
                "a `tmpfs` entry is a path or { path = \"/run\", size = \"16m\", mode = \"0755\" }",
                "not a tmpfs",
                Some("for example: tmpfs = [\"/var/cache/nginx\", { path = \"/run\", size = \"16m\" }]".into()),
            )
            .into();
    }
    if let Some(err) = words::in_plan_words(src, e) {
        return err.into();
    }
    let key = words::key_path(e).pop().unwrap_or_default();
    src.error(PlanErrorKind::Syntax, e.span(), message, "here", Some("the plan is TOML; check the line above".into()))
        .about(&key)
        .into()
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
