//! The compose override (SPEC §6): for compose-managed services, `docker-compose.unroot.yml`
//! beside the project's compose files, so the next `docker compose up` keeps the change.
//! Regenerated from every applied day in the ledger; environment entries come only from the
//! plan, never from the container.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::docker::Inspect;
pub use crate::model::compose::{ComposeRef, OVERRIDE_FILE, ServiceOverride, override_path};

/// The compose coordinates of a container, when compose manages it.
pub fn compose_ref(c: &Inspect) -> Option<ComposeRef> {
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
        if !o.tmpfs.is_empty() {
            out.push_str(&format!("    tmpfs: {}\n", list(&o.tmpfs)));
        }
        if let Some(test) = &o.healthcheck {
            out.push_str(&format!("    healthcheck:\n      test: {}\n", list(test)));
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

/// Writes a project's override beside its compose files: by temp file and rename, so a
/// symlink planted in its place is replaced and never followed, with the base file's owner
/// and never a wider mode than the base file's (0600 when the base cannot be read).
///
/// Guarantees: the file is either the old one or the whole new one; the target of a link
/// that stood at its path is untouched.
/// Errors: the directory cannot be written.
pub fn write_override(r: &ComposeRef, text: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let path = override_path(r);
    let base = r.config_paths().first().and_then(|b| std::fs::metadata(b).ok());
    let mode = base.as_ref().map_or(0o600, |m| m.mode() & 0o666);
    crate::state::replace_file(&path, text.as_bytes(), mode, base.map(|m| (m.uid(), m.gid())))?;
    Ok(path)
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
        assert_eq!(override_path(&r), std::path::Path::new("/srv/stack/docker-compose.unroot.yml"));
        assert_eq!(
            r.usage(),
            "docker-compose -p p -f /srv/stack/docker-compose.yml -f /srv/stack/extra/more.yml -f /srv/stack/docker-compose.unroot.yml up -d"
        );
        let v2 = cref("2.27.0", "/abs/compose.yaml");
        assert_eq!(override_path(&v2), std::path::Path::new("/abs/docker-compose.unroot.yml"));
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
                tmpfs: vec!["/run:mode=0755,uid=999,gid=999".into()],
                healthcheck: Some(vec!["CMD".into(), "healthcheck.sh".into(), "--connect".into()]),
                environment: BTreeMap::from([("HOME".into(), "/data".into())]),
                ..Default::default()
            },
        );
        let y = render(Some("2.4"), "docker compose up", &s);
        assert!(y.contains("version: \"2.4\"\nservices:\n  \"redis\":\n    user: \"999:999\"\n"), "{y}");
        assert!(y.contains("    cap_drop: [\"ALL\"]\n    read_only: true\n"), "{y}");
        assert!(y.contains("    tmpfs: [\"/run:mode=0755,uid=999,gid=999\"]\n"), "{y}");
        assert!(y.contains("    healthcheck:\n      test: [\"CMD\", \"healthcheck.sh\", \"--connect\"]\n"), "{y}");
        assert!(y.contains("    environment:\n      \"HOME\": \"/data\"\n"), "{y}");
    }
}
