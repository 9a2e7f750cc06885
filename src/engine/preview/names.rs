//! Users and groups of an image, read through the archive API, and the plan's user resolved
//! against them.

use std::collections::HashMap;

use crate::docker::{DockerError, DockerPort, Inspect};
use crate::model::passwd;
use crate::model::user::{IdOrName, UserSpec};

const FILE_LIMIT: usize = 4 << 20;
pub(super) const HEADER_LIMIT: usize = 512;

/// Users and groups of an image, by name.
#[derive(Debug, Default)]
pub(super) struct Names {
    pub(super) users: HashMap<String, passwd::PasswdEntry>,
    pub(super) groups: HashMap<String, u32>,
}

impl Names {
    pub(super) fn uid_entry(&self, uid: u32) -> Option<(&str, &passwd::PasswdEntry)> {
        self.users.iter().find(|(_, e)| e.uid == uid).map(|(n, e)| (n.as_str(), e))
    }
}

pub(super) async fn read_file(port: &impl DockerPort, id: &str, path: &str) -> Option<String> {
    let tar = port.read_archive(id, path, FILE_LIMIT).await.ok()?;
    passwd::first_file(&tar)
}

pub(super) async fn names(port: &impl DockerPort, id: &str) -> Names {
    let users = read_file(port, id, "/etc/passwd").await.map(|t| passwd::parse_passwd(&t)).unwrap_or_default();
    let groups = read_file(port, id, "/etc/group").await.map(|t| passwd::parse_group(&t)).unwrap_or_default();
    Names { users, groups }
}

/// Reads names from a created, never-started container of `image`, removed afterwards.
pub(super) async fn probe_names(port: &impl DockerPort, image: &str, name: &str) -> Result<Names, DockerError> {
    let body = serde_json::json!({
        "Image": image, "Entrypoint": ["/unroot-never-started"], "Cmd": [],
        "Labels": {(crate::engine::orphans::LABEL_PROBE): "1", (crate::engine::orphans::LABEL_MAKER): crate::engine::orphans::maker()},
        "HostConfig": {"NetworkMode": "none"}
    });
    let probe = format!("{name}.unroot-probe");
    let _ = port.remove_container(&probe, true).await;
    let id = port.create_container(&probe, body).await?;
    crate::state::failpoint::hit("probe-created");
    let n = names(port, &id).await;
    let _ = port.remove_container(&id, true).await;
    Ok(n)
}

/// Resolves a plan user to `uid:gid` with the names used, or says what is unknown.
pub(super) fn resolve_user(spec: &UserSpec, names: &Names) -> Result<(u32, u32, String), String> {
    let (uid, entry_gid, uname) = match &spec.user {
        IdOrName::Id(n) => {
            let e = names.uid_entry(*n);
            (*n, e.map(|(_, e)| e.gid), e.map(|(n, _)| n.to_string()))
        }
        IdOrName::Name(n) => match names.users.get(n) {
            Some(e) => (e.uid, Some(e.gid), Some(n.clone())),
            None => return Err(format!("user `{n}` is not in the image's /etc/passwd")),
        },
    };
    let gid = match &spec.group {
        Some(IdOrName::Id(g)) => *g,
        Some(IdOrName::Name(g)) => {
            *names.groups.get(g).ok_or_else(|| format!("group `{g}` is not in the image's /etc/group"))?
        }
        None => entry_gid.unwrap_or(uid),
    };
    if uid == 0 {
        return Err(format!("user `{spec}` is uid 0 in the image; use keep_root to keep it on root"));
    }
    let shown = match uname {
        Some(n) => format!("{n} ({uid}:{gid})"),
        None => format!("{uid}:{gid}"),
    };
    Ok((uid, gid, shown))
}

/// The configured user of a container as "name (uid:gid)" where it can be told.
pub(super) fn describe_current(c: &Inspect, names: &Names) -> String {
    let u = c.configured_user();
    match crate::model::user::configured(u) {
        None => "(unset) root (0:0)".to_string(),
        Some(spec) => match resolve_user_loose(&spec, names) {
            Some((uid, gid)) if u.split(':').next() == Some(&uid.to_string()) => {
                format!("{uid}:{gid}")
            }
            Some((uid, gid)) => format!("{u} ({uid}:{gid})"),
            None => u.to_string(),
        },
    }
}

/// Like [`resolve_user`] but allows root and gives up quietly.
pub(super) fn resolve_user_loose(spec: &UserSpec, names: &Names) -> Option<(u32, u32)> {
    let uid = match &spec.user {
        IdOrName::Id(n) => *n,
        IdOrName::Name(n) if n == "root" => 0,
        IdOrName::Name(n) => names.users.get(n)?.uid,
    };
    let gid = match &spec.group {
        Some(IdOrName::Id(g)) => *g,
        Some(IdOrName::Name(g)) => *names.groups.get(g)?,
        None => names.uid_entry(uid).map_or(0, |(_, e)| e.gid),
    };
    Some((uid, gid))
}
