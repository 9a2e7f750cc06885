//! An image's users and groups read through the archive API (no shell, nothing started):
//! the one reader, with one size limit, for the preview, `verify` and `audit`.

use crate::docker::{DockerError, DockerPort, Removal};
use crate::model::passwd;
use crate::model::user::{Accounts, IdOrName, UserSpec};

/// Bytes read of `/etc/passwd` or `/etc/group` at most.
const FILE_LIMIT: usize = 4 << 20;

/// Which files a lookup needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    /// `/etc/passwd` only (a uid is all that is asked).
    Users,
    /// `/etc/passwd` and `/etc/group`.
    UsersAndGroups,
}

/// One file of a container (or of a created, never-started one) as text.
pub async fn read_file(port: &impl DockerPort, id: &str, path: &str) -> Option<String> {
    let tar = port.read_archive(id, path, FILE_LIMIT).await.ok()?;
    passwd::first_file(&tar)
}

/// Every user and group of the container `id`; an unreadable file is an empty table.
pub async fn read(port: &impl DockerPort, id: &str) -> Accounts {
    let users = read_file(port, id, "/etc/passwd").await;
    let groups = read_file(port, id, "/etc/group").await;
    Accounts::parse(users.as_deref(), groups.as_deref())
}

/// Only what resolving `spec` needs: no read at all for numeric ids or root.
pub async fn read_for(port: &impl DockerPort, id: &str, spec: &UserSpec, files: Files) -> Accounts {
    let named = |part: Option<&IdOrName>| matches!(part, Some(IdOrName::Name(n)) if n != "root");
    let users = match named(Some(&spec.user)) {
        true => read_file(port, id, "/etc/passwd").await,
        false => None,
    };
    let groups = match files == Files::UsersAndGroups && named(spec.group.as_ref()) {
        true => read_file(port, id, "/etc/group").await,
        false => None,
    };
    Accounts::parse(users.as_deref(), groups.as_deref())
}

/// The accounts of `image`, read from a created, never-started probe container named
/// `NAME.unroot-probe` (labelled so an interrupted command's probe is swept), removed
/// afterwards.
///
/// Errors: the probe cannot be created (the image is gone, the name is taken by force).
pub async fn probe(port: &impl DockerPort, image: &str, name: &str) -> Result<Accounts, DockerError> {
    let id = create_probe(port, image, name).await?;
    let accounts = read(port, &id).await;
    remove_probe(port, &id).await;
    Ok(accounts)
}

/// Creates (never starts) the probe container `NAME.unroot-probe` of `image`, to read the
/// image's files through the archive API; a probe of that name left by a killed unroot is
/// replaced. Returns its id; [`remove_probe`] removes it.
///
/// Errors: the image is gone, or the daemon refuses the create.
pub async fn create_probe(port: &impl DockerPort, image: &str, name: &str) -> Result<String, DockerError> {
    let body = serde_json::json!({
        "Image": image, "Entrypoint": ["/unroot-never-started"], "Cmd": [],
        "Labels": {(crate::engine::orphans::LABEL_PROBE): "1", (crate::engine::orphans::LABEL_MAKER): crate::engine::orphans::maker()},
        "HostConfig": {"NetworkMode": "none"}
    });
    let probe = format!("{name}.unroot-probe");
    let _ = port.remove_container(&probe, Removal::WithAnonymousVolumes).await;
    let id = port.create_container(&probe, body).await?;
    crate::state::failpoint::hit("probe-created");
    Ok(id)
}

/// Removes a probe container with the anonymous volumes its image's `VOLUME`s made; a
/// failure leaves it to the sweep of the next command.
pub async fn remove_probe(port: &impl DockerPort, id: &str) {
    let _ = port.remove_container(id, Removal::WithAnonymousVolumes).await;
}
