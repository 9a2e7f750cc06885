//! The compose override (SPEC §6): for compose-managed services, `docker-compose.unroot.yml`
//! beside the project's compose files, so the next `docker compose up` keeps the change.
//! Regenerated from every applied day in the ledger; environment entries come only from the
//! plan, never from the container.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::docker::Inspect;

/// Where a container sits in compose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeRef {
    pub project: String,
    pub service: String,
    pub working_dir: String,
    /// The project's compose files, as compose recorded them.
    pub config_files: Vec<String>,
}

impl ComposeRef {
    /// The compose coordinates of a container, when compose manages it.
    pub fn of(c: &Inspect) -> Option<ComposeRef> {
        Some(ComposeRef {
            project: c.label("com.docker.compose.project")?.to_string(),
            service: c.label("com.docker.compose.service")?.to_string(),
            working_dir: c.label("com.docker.compose.project.working_dir")?.to_string(),
            config_files: c
                .label("com.docker.compose.project.config_files")
                .map(|f| f.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
        })
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
    /// From the plan only.
    pub environment: BTreeMap<String, String>,
}

/// The file name of the override, beside the project's compose files.
pub const OVERRIDE_FILE: &str = "docker-compose.unroot.yml";

fn q(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|i| q(i)).collect::<Vec<_>>().join(", "))
}

/// The base file's top-level `version`, which compose 1.x requires an override to repeat.
pub fn base_version(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix("version:")?;
        let v = rest.split('#').next()?.trim().trim_matches(|c| c == '"' || c == '\'');
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// Renders the override of one project.
pub fn render(version: Option<&str>, services: &BTreeMap<String, ServiceOverride>) -> String {
    let mut out = String::from(
        "# Written by unroot from the applied days of its ledger; regenerated at each commit.\n\
         # Use it with: docker compose -f docker-compose.yml -f docker-compose.unroot.yml up -d\n",
    );
    if let Some(v) = version {
        out.push_str(&format!("version: {}\n", q(v)));
    }
    out.push_str("services:\n");
    for (name, o) in services {
        out.push_str(&format!("  {}:\n", q(name)));
        if let Some(u) = &o.user {
            out.push_str(&format!("    user: {}\n", q(u)));
        }
        if !o.group_add.is_empty() {
            out.push_str(&format!("    group_add: {}\n", list(&o.group_add)));
        }
        if !o.cap_drop.is_empty() {
            out.push_str(&format!("    cap_drop: {}\n", list(&o.cap_drop)));
        }
        if !o.cap_add.is_empty() {
            out.push_str(&format!("    cap_add: {}\n", list(&o.cap_add)));
        }
        if let Some(ro) = o.read_only {
            out.push_str(&format!("    read_only: {ro}\n"));
        }
        if !o.security_opt.is_empty() {
            out.push_str(&format!("    security_opt: {}\n", list(&o.security_opt)));
        }
        if !o.environment.is_empty() {
            out.push_str("    environment:\n");
            for (k, v) in &o.environment {
                out.push_str(&format!("      {}: {}\n", q(k), q(v)));
            }
        }
    }
    out
}

/// Where a project's override goes: beside its first compose file, else its working dir.
pub fn override_path(r: &ComposeRef) -> PathBuf {
    r.config_files
        .first()
        .and_then(|f| Path::new(f).parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from(&r.working_dir))
        .join(OVERRIDE_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_quoted_yaml_with_the_base_version() {
        assert_eq!(base_version("# x\nversion: '2.4'\nservices:\n"), Some("2.4".into()));
        assert_eq!(base_version("services:\n"), None);
        let mut s = BTreeMap::new();
        s.insert(
            "redis".to_string(),
            ServiceOverride {
                user: Some("999:999".into()),
                cap_drop: vec!["ALL".into()],
                read_only: Some(true),
                security_opt: vec!["no-new-privileges:true".into()],
                environment: BTreeMap::from([("HOME".into(), "/data".into())]),
                ..Default::default()
            },
        );
        let y = render(Some("2.4"), &s);
        assert!(y.contains("version: \"2.4\"\nservices:\n  \"redis\":\n    user: \"999:999\"\n"), "{y}");
        assert!(y.contains("    cap_drop: [\"ALL\"]\n    read_only: true\n"), "{y}");
        assert!(y.contains("    environment:\n      \"HOME\": \"/data\"\n"), "{y}");
    }
}
