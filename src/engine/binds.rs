//! Where a container's bind source really is on a daemon's host that unroot cannot see
//! (over tcp:// or ssh://, or with user namespaces): a probe container of the service's own
//! image, created and never started, sees the host's root read-only at [`HOST_ROOT`], and
//! each component of the source is read as one tar header through the archive API. A
//! symlink's target is followed as the host would (an absolute one from the host's root), so
//! `/srv/conf` that links to `/etc` there is known as `/etc`, wherever unroot runs; and
//! which of a container's bind sources must therefore never be re-owned.

use std::collections::BTreeMap;

use crate::docker::{DockerError, DockerPort, Inspect, Removal};
use crate::model::mount::MountKind;

/// Where the probe sees the daemon host's root.
pub const HOST_ROOT: &str = "/unroot-host";

/// How many links one source may pass through (as the kernel's `ELOOP` limit).
const MAX_HOPS: usize = 40;

/// How much of a component's tar stream is read: its header, and a PAX header before it
/// (long names and link targets).
const HEADER_BYTES: usize = 8192;

/// What a source is on the daemon's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The path with every link followed (components past one that does not exist as
    /// written).
    Path(String),
    /// More than [`MAX_HOPS`] links.
    Loop,
}

/// Resolves each of `sources` on the daemon's host, through a probe of `image` named
/// `NAME.unroot-hostpath` (labelled as a probe: a killed unroot's is swept), removed after.
///
/// Guarantees: changes nothing on the host (the host's root is bound read-only to a
/// container that never starts).
/// Errors: the probe cannot be created, or the archive API fails other than "no such path".
pub async fn resolve_on_daemon(
    port: &impl DockerPort,
    image: &str,
    name: &str,
    sources: &[String],
) -> Result<Vec<Resolved>, DockerError> {
    let body = serde_json::json!({
        "Image": image, "Entrypoint": ["/unroot-never-started"], "Cmd": [],
        "Labels": {(crate::engine::orphans::LABEL_PROBE): "1", (crate::engine::orphans::LABEL_MAKER): crate::engine::orphans::maker()},
        "HostConfig": {"NetworkMode": "none", "Binds": [format!("/:{HOST_ROOT}:ro")]}
    });
    let probe = format!("{name}.unroot-hostpath");
    let _ = port.remove_container(&probe, Removal::ContainerOnly).await;
    let id = port.create_container(&probe, body).await?;
    let mut out = Vec::new();
    let mut result = Ok(());
    for source in sources {
        match resolve(port, &id, source).await {
            Ok(r) => out.push(r),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let _ = port.remove_container(&id, Removal::ContainerOnly).await;
    result.map(|()| out)
}

/// The bind sources of `c` that must not be re-owned, with why: resolved where the data is.
/// On this host (a daemon on a unix socket) the path is resolved here; on another host
/// (tcp://, ssh://) a probe resolves it there, since a link on that host says nothing here.
///
/// Errors (as a blocker's text): the sources cannot be resolved on the daemon's host.
pub async fn protected_binds(
    port: &impl DockerPort,
    c: &Inspect,
    name: &str,
) -> Result<BTreeMap<String, String>, String> {
    let sources: Vec<String> = c.mounts().into_iter().filter(|m| m.kind == MountKind::Bind).map(|m| m.source).collect();
    if sources.is_empty() {
        return Ok(BTreeMap::new());
    }
    if port.daemon().address.starts_with("unix://") {
        return Ok(sources
            .into_iter()
            .filter_map(|s| Some((s.clone(), crate::engine::reown::protected_bind(&s)?)))
            .collect());
    }
    let resolved = resolve_on_daemon(port, c.image_id(), name, &sources)
        .await
        .map_err(|e| format!("cannot resolve the bind sources on the daemon's host: {e}"))?;
    let mut out = BTreeMap::new();
    for (source, r) in sources.into_iter().zip(resolved) {
        let why = match r {
            Resolved::Loop => Some("too many symbolic links on the daemon's host".to_string()),
            Resolved::Path(real) => crate::engine::reown::protected_bind_as_written(&source).or_else(|| {
                crate::engine::reown::protected_bind_as_written(&real)
                    .map(|why| format!("it is {real} on the daemon's host: {why}"))
            }),
        };
        if let Some(why) = why {
            out.insert(source, why);
        }
    }
    Ok(out)
}

/// One source, a component at a time.
async fn resolve(port: &impl DockerPort, probe: &str, source: &str) -> Result<Resolved, DockerError> {
    let mut done = String::new();
    let mut rest: Vec<String> = components(source);
    rest.reverse();
    let mut hops = 0;
    while let Some(c) = rest.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                done.truncate(done.rfind('/').unwrap_or(0));
                continue;
            }
            _ => {}
        }
        let here = format!("{done}/{c}");
        match link_target(port, probe, &format!("{HOST_ROOT}{here}")).await? {
            Some(target) => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Ok(Resolved::Loop);
                }
                if target.starts_with('/') {
                    done.clear();
                }
                let mut more = components(&target);
                more.reverse();
                rest.extend(more);
            }
            None => done = here,
        }
    }
    Ok(Resolved::Path(if done.is_empty() { "/".into() } else { done }))
}

fn components(path: &str) -> Vec<String> {
    path.split('/').filter(|c| !c.is_empty()).map(str::to_string).collect()
}

/// The target of `path` in the probe when it is a symlink; `None` when it is anything else
/// or does not exist.
async fn link_target(port: &impl DockerPort, probe: &str, path: &str) -> Result<Option<String>, DockerError> {
    let bytes = match port.read_archive(probe, path, HEADER_BYTES).await {
        Ok(b) => b,
        Err(DockerError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(first_link(&bytes))
}

/// The link target of the first entry of a (possibly cut) tar stream, if it is a symlink.
fn first_link(bytes: &[u8]) -> Option<String> {
    let mut archive = tar::Archive::new(bytes);
    let entry = archive.entries().ok()?.next()?.ok()?;
    if entry.header().entry_type() != tar::EntryType::Symlink {
        return None;
    }
    entry.link_name().ok()?.map(|p| p.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::fake::FakeDocker;

    /// A tar stream whose first entry is `name`: a symlink to `target`, or a directory.
    fn entry(name: &str, target: Option<&str>) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o777);
        match target {
            Some(t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, name, t).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                b.append_data(&mut h, name, &[][..]).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn a_source_is_followed_through_the_hosts_links_from_the_hosts_root() {
        let fake = FakeDocker::default();
        // The id the fake gives the first container it creates: the probe.
        let probe = format!("{:0>12x}{:0>52}", 0xfa4e_0001u64, 0);
        // On the daemon's host: /srv/conf -> /etc, /srv/rel -> ../opt/real, /srv/a <-> /srv/b.
        fake.with(|s| {
            for (path, target) in [
                ("/unroot-host/srv", None),
                ("/unroot-host/srv/data", None),
                ("/unroot-host/srv/conf", Some("/etc")),
                ("/unroot-host/etc", None),
                ("/unroot-host/etc/nginx", None),
                ("/unroot-host/srv/rel", Some("../opt/real")),
                ("/unroot-host/opt", None),
                ("/unroot-host/opt/real", None),
                ("/unroot-host/srv/a", Some("/srv/b")),
                ("/unroot-host/srv/b", Some("/srv/a")),
            ] {
                let name = path.rsplit('/').next().unwrap();
                s.archives.insert((probe.clone(), path.to_string()), entry(name, target));
            }
        });
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let sources: Vec<String> =
            ["/srv/data", "/srv/conf/nginx", "/srv/rel/x", "/srv/a", "/srv/./data/../conf"].map(String::from).into();
        let got = rt.block_on(resolve_on_daemon(&fake, "img", "web", &sources)).unwrap();
        assert_eq!(
            got,
            [
                Resolved::Path("/srv/data".into()),
                Resolved::Path("/etc/nginx".into()),
                Resolved::Path("/opt/real/x".into()),
                Resolved::Loop,
                Resolved::Path("/etc".into()),
            ]
        );
        assert!(fake.with(|s| s.containers.is_empty()), "the probe is removed");
        let created = fake
            .calls()
            .iter()
            .filter(|c| matches!(c, crate::docker::fake::Call::Create(n) if n == "web.unroot-hostpath"))
            .count();
        assert_eq!(created, 1);
    }

    #[test]
    fn a_bind_source_on_another_host_is_resolved_there_and_a_link_into_etc_is_protected() {
        use crate::docker::fake::FakeDocker;
        let fake = FakeDocker::default(); // a daemon at fake://: not this host's
        // The probe the preview creates first sees the daemon host's /srv/conf, a link to /etc.
        let probe = format!("{:0>12x}{:0>52}", 0xfa4e_0001u64, 0);
        let link = {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, "conf", "/etc").unwrap();
            b.into_inner().unwrap()
        };
        fake.with(|s| {
            s.archives.insert((probe.clone(), "/unroot-host/srv/conf".into()), link);
        });
        let c = Inspect(serde_json::json!({"Id": "c1", "Image": "sha256:img", "Mounts": [
            {"Type": "bind", "Source": "/srv/conf", "Destination": "/conf", "RW": true},
            {"Type": "bind", "Source": "/srv/data", "Destination": "/data", "RW": true}
        ]}));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let protected = rt.block_on(protected_binds(&fake, &c, "web")).unwrap();
        assert_eq!(protected.len(), 1, "{protected:?}");
        assert!(protected["/srv/conf"].starts_with("it is /etc on the daemon's host: "), "{protected:?}");
    }
}
