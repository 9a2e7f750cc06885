//! What a running container wrote in its own layer (`docker diff`), read as facts: which of
//! those writes a recreate loses, and which are runtime state (pid files, temp and cache
//! directories) that a tmpfs owned by the new user carries instead. The preview warns from
//! it and `unroot init` plans `tmpfs` from it; both ask here.

use crate::model::owner::ancestors;

/// Directories whose whole content is runtime state: what is written there is gone after a
/// restart anyway (FHS: /run, /var/run, /tmp, /var/tmp).
const RUNTIME_ROOTS: &[&str] = &["/run", "/var/run", "/tmp", "/var/tmp"];

/// Whether `path` is `dir` or lies inside it.
fn within(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    dir.is_empty() || path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// The writes of `changes` (the paths `docker diff` lists) that a recreate loses: not inside
/// `covered` (the container's mounts and tmpfs), not a mount point or a directory above one
/// (Docker makes those itself), and only the deepest of each branch (`docker diff` lists
/// every directory above a change as changed too). Sorted.
pub fn lost_writes(changes: &[String], covered: &[String]) -> Vec<String> {
    let mount_parents: Vec<String> = covered.iter().flat_map(|m| ancestors(m)).collect();
    let mut kept: Vec<&String> = changes
        .iter()
        .filter(|p| p.starts_with('/') && p.len() > 1)
        .filter(|p| !covered.iter().any(|m| within(p, m)))
        .filter(|p| !mount_parents.contains(p))
        .collect();
    kept.sort();
    kept.dedup();
    let leaves: Vec<String> =
        kept.iter().filter(|p| !kept.iter().any(|q| q != *p && within(q, p))).map(|p| p.to_string()).collect();
    leaves
}

/// The directory a tmpfs should cover for a write that is runtime state, or `None` when the
/// write is not, or when no directory can be given a tmpfs without hiding what the image put
/// beside it (an application's own directory holding its pid file):
/// - anything under /run, /var/run, /tmp or /var/tmp: the directory holding it
///   (`/run/nginx.pid`: `/run`; `/var/run/postgresql/.s.PGSQL.5432.lock`:
///   `/var/run/postgresql`, which the image may already give to its user);
/// - a path inside `/var/cache/NAME` (`/var/cache/nginx/client_temp`): `/var/cache/NAME`;
/// - a directory named `tmp`, `temp` or `*_temp` elsewhere: that directory itself, never
///   its parent (`/app/tmp`, not `/app`). A pid file elsewhere gets none.
pub fn runtime_dir(path: &str) -> Option<String> {
    if let Some(root) = RUNTIME_ROOTS.iter().find(|r| within(path, r)) {
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        return Some(if within(parent, root) { parent.to_string() } else { root.to_string() });
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if parts.len() >= 3 && parts[0] == "var" && parts[1] == "cache" {
        return Some(format!("/var/cache/{}", parts[2]));
    }
    let temp = |c: &&str| c.ends_with("_temp") || *c == "temp" || *c == "tmp";
    // The outermost temp directory on the way to the write (`/app/tmp/x/y`: `/app/tmp`).
    let at = parts.iter().position(temp)?;
    (at >= 1).then(|| format!("/{}", parts[..=at].join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_the_deepest_writes_outside_mounts_count() {
        // `docker diff` of the nginxinc image after its start, with a volume at /data.
        let changes = v(&[
            "/var",
            "/var/cache",
            "/var/cache/nginx",
            "/var/cache/nginx/client_temp",
            "/var/cache/nginx/proxy_temp",
            "/run",
            "/run/nginx.pid",
            "/data",
            "/srv",
            "/srv/www",
            "/srv/www/upload.bin",
            "/etc",
            "/etc/nginx",
            "/etc/nginx/conf.d",
            "/etc/nginx/conf.d/default.conf",
        ]);
        assert_eq!(
            lost_writes(&changes, &v(&["/data", "/srv/www/static"])),
            v(&[
                "/etc/nginx/conf.d/default.conf",
                "/run/nginx.pid",
                "/srv/www/upload.bin",
                "/var/cache/nginx/client_temp",
                "/var/cache/nginx/proxy_temp",
            ])
        );
        // A tmpfs over /run and /var/cache/nginx covers those.
        assert_eq!(
            lost_writes(&changes, &v(&["/data", "/run", "/var/cache/nginx", "/srv"])),
            v(&["/etc/nginx/conf.d/default.conf"])
        );
        assert!(lost_writes(&v(&["/data"]), &v(&["/data/x"])).is_empty(), "a mount point's parent");
    }

    #[test]
    fn runtime_state_gets_its_directory_and_data_gets_none() {
        assert_eq!(runtime_dir("/run/nginx.pid").as_deref(), Some("/run"));
        assert_eq!(
            runtime_dir("/var/run/postgresql/.s.PGSQL.5432.lock").as_deref(),
            Some("/var/run/postgresql"),
            "its own directory, not all of /var/run"
        );
        assert_eq!(runtime_dir("/tmp/x/y").as_deref(), Some("/tmp/x"));
        assert_eq!(runtime_dir("/tmp/y").as_deref(), Some("/tmp"));
        assert_eq!(runtime_dir("/var/cache/nginx/client_temp").as_deref(), Some("/var/cache/nginx"));
        assert_eq!(runtime_dir("/var/lib/nginx/body").as_deref(), None, "not named as temp: could be data");
        assert_eq!(runtime_dir("/var/lib/nginx/proxy_temp").as_deref(), Some("/var/lib/nginx/proxy_temp"));
        assert_eq!(runtime_dir("/app/tmp/upload/x").as_deref(), Some("/app/tmp"), "the temp directory itself");
        assert_eq!(runtime_dir("/opt/app/app.pid"), None, "never the application's own directory");
        assert_eq!(runtime_dir("/app/celerybeat.pid"), None);
        assert_eq!(runtime_dir("/srv/cache/x"), None, "only /var/cache is a cache by its place");
        assert_eq!(runtime_dir("/srv/www/upload.bin"), None);
        assert_eq!(runtime_dir("/runner/x"), None, "/runner is not /run");
        assert_eq!(runtime_dir("/tmp").as_deref(), Some("/tmp"));
    }
}
