//! The plan file as written: every key known, places kept for the errors, and the JSON
//! Schema derived from these very types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use super::{OnFailure, Ownership};

/// An unroot plan: which containers move off root, to which user, on which day and after
/// what. See docs/plan.md.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "unroot plan")]
pub(super) struct RawPlan {
    /// How the whole rollout runs.
    #[schemars(with = "RawRollout")]
    pub(super) rollout: Spanned<RawRollout>,
    /// Optional titles of the days: `2 = "cache and queue"`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub(super) days: BTreeMap<Spanned<String>, Spanned<String>>,
    /// One table per container, named as `docker ps` shows it.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawService>")]
    pub(super) service: BTreeMap<Spanned<String>, Spanned<RawService>>,
}

/// Durations are whole numbers with a unit (ms, s, m, h), adding up: "30s", "1h30m";
/// between 1s and 24h.
const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h))+$";

/// Declares a raw table with its own keys followed by the four timing keys
/// (`stop_timeout`, `health_timeout`, `stable_for`, `daemon_timeout`), each documented by
/// the text given for this table. (`#[serde(flatten)]` cannot share them: it loses the
/// spans the errors point at and defeats `deny_unknown_fields`.)
macro_rules! with_timings {
    (
        $(#[$attr:meta])*
        pub(super) struct $name:ident { $($fields:tt)* }
        timings: [$stop:literal, $health:literal, $stable:literal, $daemon:literal $(,)?]
    ) => {
        $(#[$attr])*
        pub(super) struct $name {
            $($fields)*
            #[doc = $stop]
            #[schemars(with = "Option<String>", regex(pattern = DURATION_PATTERN))]
            pub(super) stop_timeout: Option<Spanned<String>>,
            #[doc = $health]
            #[schemars(with = "Option<String>", regex(pattern = DURATION_PATTERN))]
            pub(super) health_timeout: Option<Spanned<String>>,
            #[doc = $stable]
            #[schemars(with = "Option<String>", regex(pattern = DURATION_PATTERN))]
            pub(super) stable_for: Option<Spanned<String>>,
            #[doc = $daemon]
            #[schemars(with = "Option<String>", regex(pattern = DURATION_PATTERN))]
            pub(super) daemon_timeout: Option<Spanned<String>>,
        }
    };
}

with_timings! {
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRollout {
    /// Names the state folder: [a-z0-9][a-z0-9-]*.
    #[schemars(with = "String", regex(pattern = "^[a-z0-9][a-z0-9-]*$"))]
    pub(super) name: Spanned<String>,
    /// Where runs are kept (default "rollback", relative to the current directory).
    #[schemars(with = "Option<String>")]
    pub(super) state_dir: Option<Spanned<String>>,
    /// Services of one wave migrated at once (1-64, default 1).
    #[schemars(with = "Option<i64>", range(min = 1, max = 64))]
    pub(super) parallelism: Option<Spanned<i64>>,
    /// What a failure does: rollback-day (default), rollback-service or pause.
    #[serde(default)]
    pub(super) on_failure: OnFailure,
    /// Image for re-owning helpers (needs sh, find, stat, chown, xargs); default: the
    /// service's own image.
    #[schemars(with = "Option<String>")]
    pub(super) helper_image: Option<Spanned<String>>,
    /// Where re-owning runs: auto (default), host or helper.
    #[serde(default)]
    pub(super) ownership: Ownership,
}
timings: [
    "Grace before SIGKILL (default \"30s\").",
    "Per service, from start to healthy (default \"120s\").",
    "Healthy this long without a restart to count (default \"5s\").",
    "How long a restore waits for a daemon that stopped answering (default \"120s\").",
]
}

with_timings! {
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    /// The day it migrates on (>= 1).
    #[schemars(with = "i64", range(min = 1))]
    pub(super) day: Spanned<i64>,
    /// The new user: "uid", "uid:gid", "name" or "name:group" (names from the image's
    /// /etc/passwd); never root. Leave out to keep the user and change only the controls.
    #[schemars(with = "Option<String>")]
    pub(super) user: Option<Spanned<String>>,
    /// A documented exception: why it stays root. Not with `user`.
    #[schemars(with = "Option<String>")]
    pub(super) keep_root: Option<Spanned<String>>,
    /// Services migrated and healthy before this one starts (same or earlier day).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub(super) after: Vec<Spanned<String>>,
    /// Absolute container paths whose mounts are re-owned; default every writable volume
    /// and bind mount; [] re-owns nothing.
    #[schemars(with = "Option<Vec<String>>")]
    pub(super) chown: Option<Vec<Spanned<String>>>,
    /// "docker" (the container's HEALTHCHECK), "running", or { exec = ["cmd", ...] }.
    #[schemars(with = "Option<RawHealth>")]
    pub(super) health: Option<Spanned<RawHealth>>,
    /// The replacement's HEALTHCHECK test, as compose's `healthcheck.test` takes it:
    /// ["CMD", "cmd", "arg", ...] or ["CMD-SHELL", "a shell line"]. Its interval, timeout
    /// and retries stay the container's.
    #[schemars(with = "Option<Vec<String>>")]
    pub(super) healthcheck: Option<Spanned<Vec<String>>>,
    /// Supplementary groups, by name (the image's /etc/group) or gid.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub(super) group_add: Vec<Spanned<String>>,
    /// Environment added or replaced (values are never printed).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub(super) env: BTreeMap<Spanned<String>, String>,
    /// Capabilities dropped (ALL, NET_RAW, ...).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub(super) cap_drop: Vec<Spanned<String>>,
    /// Capabilities added (NET_BIND_SERVICE, ...).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub(super) cap_add: Vec<Spanned<String>>,
    /// A read-only root filesystem.
    pub(super) read_only: Option<bool>,
    /// Set no-new-privileges.
    pub(super) no_new_privileges: Option<bool>,
    /// Writable runtime paths on tmpfs, owned by the service's user: "/run", or
    /// { path = "/run", size = "16m", mode = "0755" }.
    #[serde(default)]
    #[schemars(with = "Vec<RawTmpfs>")]
    pub(super) tmpfs: Vec<Spanned<RawTmpfs>>,
    /// Security options as `docker run --security-opt` takes them: "apparmor=PROFILE",
    /// "seccomp=/absolute/profile.json" (read where unroot runs), "label=…".
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub(super) security_opt: Vec<Spanned<String>>,
    /// Re-own files with more than one hard link too (default false).
    #[serde(default)]
    pub(super) hardlinks: bool,
    /// Where re-owning runs for this service: auto, host or helper.
    pub(super) ownership: Option<Ownership>,
    /// The name is a Swarm service of the manager, not a container. Left out: a container
    /// of that name if there is one, else a service; a name both hold is refused.
    pub(super) swarm: Option<bool>,
}
timings: [
    "Grace before SIGKILL for this service.",
    "From start to healthy, for this service.",
    "Healthy this long without a restart, for this service.",
    "How long its restore waits for a daemon that stopped answering.",
]
}

/// How a replacement counts as healthy.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub(super) enum RawHealth {
    /// "docker" or "running".
    Mode(#[schemars(with = "HealthModeName")] String),
    /// A probe command run inside the container, healthy when it exits 0.
    Exec(RawExec),
}

/// A tmpfs: its path alone, or a table with size and mode.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub(super) enum RawTmpfs {
    /// An absolute path in the container.
    Path(String),
    /// A path with its size and mode.
    Table(RawTmpfsTable),
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTmpfsTable {
    /// An absolute path in the container.
    pub(super) path: String,
    /// Its size limit: bytes, or a number with k, m or g ("16m"); default: half the memory.
    #[schemars(regex(pattern = "^[0-9]+[kmgKMG]?$"))]
    pub(super) size: Option<String>,
    /// Its permission bits in octal ("0755", the default; "1777" for a shared /tmp).
    #[schemars(regex(pattern = "^0?[0-7]{3,4}$"))]
    pub(super) mode: Option<String>,
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
pub(super) struct RawExec {
    /// The command and its arguments.
    #[schemars(length(min = 1))]
    pub(super) exec: Vec<String>,
}

/// The JSON Schema of the plan format, made from the types that parse it.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawPlan)).expect("a schema serializes")
}
