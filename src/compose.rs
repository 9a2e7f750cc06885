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
    /// The project's compose files, as compose recorded them (docker-compose 1.x records
    /// them as given on its command line, often relative to `working_dir`).
    pub config_files: Vec<String>,
    /// `com.docker.compose.version`: `1.29.2` for docker-compose 1.x, `2.x` for Compose v2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
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
            version: c.label("com.docker.compose.version").map(str::to_string),
        })
    }

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

/// Renders the override of one project; `usage` is the command line that uses it.
pub fn render(version: Option<&str>, usage: &str, services: &BTreeMap<String, ServiceOverride>) -> String {
    let mut out = format!(
        "# Written by unroot from the applied days of its ledger; regenerated at each commit.\n\
         # Use it with: {usage}\n"
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
    r.config_paths()
        .first()
        .and_then(|f| f.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from(&r.working_dir))
        .join(OVERRIDE_FILE)
}

/// Writes a project's override beside its compose files: by temp file and rename, so a
/// symlink planted in its place is replaced and never followed, with the base file's owner
/// and never a wider mode than the base file's (0600 when the base cannot be read).
///
/// Guarantees: the file is either the old one or the whole new one; the target of a link
/// that stood at its path is untouched.
/// Errors: the directory cannot be written.
pub fn write_override(r: &ComposeRef, text: &str) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let path = override_path(r);
    let dir = path.parent().unwrap_or(Path::new("."));
    let base = r.config_paths().first().and_then(|b| std::fs::metadata(b).ok());
    let mode = base.as_ref().map_or(0o600, |m| m.mode() & 0o666);
    let tmp = dir.join(format!(".{OVERRIDE_FILE}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        if let Some(m) = &base {
            let owner = (Some(rustix::fs::Uid::from_raw(m.uid())), Some(rustix::fs::Gid::from_raw(m.gid())));
            let _ = rustix::fs::fchown(&f, owner.0, owner.1);
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map(|()| path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cref(version: &str, files: &str) -> ComposeRef {
        ComposeRef {
            project: "p".into(),
            service: "web".into(),
            working_dir: "/srv/stack".into(),
            config_files: files.split(',').map(str::to_string).collect(),
            version: Some(version.into()),
        }
    }

    #[test]
    fn relative_compose_files_resolve_against_the_working_dir() {
        let r = cref("1.29.2", "docker-compose.yml,extra/more.yml");
        assert_eq!(
            r.config_paths(),
            [PathBuf::from("/srv/stack/docker-compose.yml"), "/srv/stack/extra/more.yml".into()]
        );
        assert_eq!(override_path(&r), Path::new("/srv/stack/docker-compose.unroot.yml"));
        assert_eq!(
            r.usage(),
            "docker-compose -p p -f /srv/stack/docker-compose.yml -f /srv/stack/extra/more.yml -f /srv/stack/docker-compose.unroot.yml up -d"
        );
        let v2 = cref("2.27.0", "/abs/compose.yaml");
        assert_eq!(override_path(&v2), Path::new("/abs/docker-compose.unroot.yml"));
        assert!(v2.usage().starts_with("docker compose -p p -f /abs/compose.yaml -f /abs/docker-compose.unroot.yml"));
    }

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
        let y = render(Some("2.4"), "docker compose up", &s);
        assert!(y.contains("version: \"2.4\"\nservices:\n  \"redis\":\n    user: \"999:999\"\n"), "{y}");
        assert!(y.contains("    cap_drop: [\"ALL\"]\n    read_only: true\n"), "{y}");
        assert!(y.contains("    environment:\n      \"HOME\": \"/data\"\n"), "{y}");
    }
}
