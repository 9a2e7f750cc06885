//! Where a container sits in compose, and what unroot's override file sets for it: data
//! kept in the ledger, and the paths and command line that follow from it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where a container sits in compose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeRef {
    pub project: String,
    pub service: String,
    pub working_dir: String,
    /// The project's compose files, as compose recorded them (docker-compose 1.x records
    /// them as given on its command line, often relative to `working_dir`).
    pub config_files: Vec<String>,
    /// `com.docker.compose.version`: `1.29.2` for docker-compose 1.x, `2.x` for Compose v2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl ComposeRef {
    /// The compose files as paths: relative ones resolved against the project's working
    /// directory, never against unroot's own.
    pub fn config_paths(&self) -> Vec<PathBuf> {
        self.config_files.iter().map(|f| Path::new(&self.working_dir).join(f)).collect()
    }

    /// Made by docker-compose 1.x (the Python one), which takes `docker-compose -f …`.
    fn is_v1(&self) -> bool {
        self.version.as_deref().is_some_and(|v| v.starts_with("1."))
    }

    /// How to bring the project up with the override, in the syntax of the compose that made
    /// it.
    pub fn usage(&self) -> String {
        let mut files: Vec<String> = self.config_paths().iter().map(|p| p.display().to_string()).collect();
        if files.is_empty() {
            files.push(Path::new(&self.working_dir).join("docker-compose.yml").display().to_string());
        }
        files.push(override_path(self).display().to_string());
        let tool = if self.is_v1() { "docker-compose" } else { "docker compose" };
        let flags: Vec<String> = files.iter().map(|f| format!("-f {f}")).collect();
        format!("{tool} -p {} {} up -d", self.project, flags.join(" "))
    }
}

/// Where a Swarm service sits in a stack (`docker stack deploy`): the stack, and the
/// service's name in the stack's compose file (its Swarm name without `STACK_`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackRef {
    pub stack: String,
    pub service: String,
}

impl StackRef {
    /// The stack of a service called `name` with the label `com.docker.stack.namespace`
    /// `stack`.
    pub fn of(name: &str, stack: &str) -> StackRef {
        let service = name.strip_prefix(&format!("{stack}_")).unwrap_or(name).to_string();
        StackRef { stack: stack.to_string(), service }
    }

    /// The override's file name in the run's `compose/` folder.
    pub fn file_name(&self) -> String {
        format!("{}.{OVERRIDE_FILE}", self.stack)
    }

    /// How to deploy the stack with the override at `path`.
    pub fn usage(&self, path: &Path) -> String {
        format!("docker stack deploy -c docker-compose.yml -c {} {}", path.display(), self.stack)
    }
}

/// What the override sets for one service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceOverride {
    pub user: Option<String>,
    pub group_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub cap_add: Vec<String>,
    pub read_only: Option<bool>,
    pub security_opt: Vec<String>,
    /// `PATH:OPTIONS`, as compose's `tmpfs` takes them (absent from ledgers of earlier
    /// versions).
    #[serde(default)]
    pub tmpfs: Vec<String>,
    /// The HEALTHCHECK test that replaced the container's (compose's `healthcheck.test`).
    #[serde(default)]
    pub healthcheck: Option<Vec<String>>,
    /// From the plan only.
    pub environment: BTreeMap<String, String>,
}

/// The file name of the override, beside the project's compose files.
pub const OVERRIDE_FILE: &str = "docker-compose.unroot.yml";

/// Where a project's override goes: beside its first compose file, else its working dir.
pub fn override_path(r: &ComposeRef) -> PathBuf {
    r.config_paths()
        .first()
        .and_then(|f| f.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from(&r.working_dir))
        .join(OVERRIDE_FILE)
}
