//! In-process re-owning on the daemon's host (SPEC §4, last paragraph): the fast path when
//! unroot runs as root beside a daemon that remaps no users.
//!
//! It produces the same [`MountChanges`] as the helper's scan and applies the same lists, so
//! manifests and restores do not care which path made them. Every directory is opened with
//! `O_NOFOLLOW | O_DIRECTORY` relative to its parent's descriptor, every entry is examined
//! and changed with `AT_SYMLINK_NOFOLLOW`, and every directory's device is checked against
//! the mount root's: a symlink is never followed (the link itself is changed) and the walk
//! never leaves the mount's filesystem. The walk runs on several threads.

use std::collections::HashMap;
use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::{Condvar, Mutex};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat, chownat, fchown, fstat, openat, statat};
use rustix::process::{Gid, Uid};

use crate::reown::MountChanges;

/// Threads walking a tree at once.
pub const THREADS: usize = 4;

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

fn owner(st: &Stat) -> String {
    format!("{}:{}", st.st_uid, st.st_gid)
}

fn name_of(c: &CStr) -> Result<&str, String> {
    let s = c.to_str().map_err(|_| "a name in the mount is not UTF-8; refusing".to_string())?;
    if s.contains('\n') {
        return Err("a name in this mount holds a newline; refusing to re-own it".into());
    }
    Ok(s)
}

/// Opens a mount's root on the host, refusing a symlink.
fn open_root(root: &Path) -> Result<(OwnedFd, Stat), String> {
    let fd = openat(rustix::fs::CWD, root, dir_flags(), Mode::empty())
        .map_err(|e| format!("opening {}: {e}", root.display()))?;
    let st = fstat(&fd).map_err(|e| format!("{}: {e}", root.display()))?;
    Ok((fd, st))
}

/// Work shared by the walkers: directories still to read, and how many are being read.
struct Queue {
    state: Mutex<(Vec<(OwnedFd, String)>, usize)>,
    wake: Condvar,
}

impl Queue {
    /// The next directory, or `None` when every walker is idle and nothing is left.
    fn pop(&self) -> Option<(OwnedFd, String)> {
        let mut g = self.state.lock().expect("queue lock");
        loop {
            if let Some(item) = g.0.pop() {
                g.1 += 1;
                return Some(item);
            }
            if g.1 == 0 {
                self.wake.notify_all();
                return None;
            }
            g = self.wake.wait(g).expect("queue lock");
        }
    }

    fn push(&self, items: Vec<(OwnedFd, String)>) {
        if items.is_empty() {
            return;
        }
        let mut g = self.state.lock().expect("queue lock");
        g.0.extend(items);
        self.wake.notify_all();
    }

    fn done(&self) {
        let mut g = self.state.lock().expect("queue lock");
        g.1 -= 1;
        self.wake.notify_all();
    }
}

/// Lists every entry below `root` whose uid or gid differs from `target`, like the helper's
/// scan: hard-linked files are set aside unless `hardlinks`, and the root's own owner is
/// reported separately.
///
/// Guarantees: reads only; never follows a symlink; never descends into another filesystem.
/// Errors: an unreadable directory, or a name that is not UTF-8 or holds a newline.
pub fn scan(root: &Path, target: (u32, u32), hardlinks: bool) -> Result<MountChanges, String> {
    let (root_fd, root_st) = open_root(root)?;
    let dev = root_st.st_dev;
    let queue = Queue { state: Mutex::new((vec![(root_fd, ".".to_string())], 0)), wake: Condvar::new() };
    let results: Mutex<(MountChanges, Option<String>)> = Mutex::new((MountChanges::default(), None));
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let mut entries = Vec::new();
                let mut skipped = Vec::new();
                while let Some((fd, rel)) = queue.pop() {
                    let r = scan_dir(&fd, &rel, dev, target, hardlinks, &mut entries, &mut skipped);
                    match r {
                        Ok(children) => queue.push(children),
                        Err(e) => {
                            let mut g = results.lock().expect("results lock");
                            g.1.get_or_insert(e);
                        }
                    }
                    queue.done();
                }
                let mut g = results.lock().expect("results lock");
                g.0.entries.extend(entries);
                g.0.skipped.extend(skipped);
            });
        }
    });
    let (mut changes, error) = results.into_inner().expect("results lock");
    if let Some(e) = error {
        return Err(e);
    }
    changes.entries.sort();
    changes.skipped.sort();
    changes.root = (root_st.st_uid != target.0 || root_st.st_gid != target.1).then(|| owner(&root_st));
    Ok(changes)
}

/// Reads one directory; returns its subdirectories (on the same filesystem) to walk.
fn scan_dir(
    fd: &OwnedFd,
    rel: &str,
    dev: u64,
    target: (u32, u32),
    hardlinks: bool,
    entries: &mut Vec<(String, String)>,
    skipped: &mut Vec<String>,
) -> Result<Vec<(OwnedFd, String)>, String> {
    let mut children = Vec::new();
    let dir = Dir::read_from(fd.as_fd()).map_err(|e| format!("reading {rel}: {e}"))?;
    for entry in dir {
        let entry = entry.map_err(|e| format!("reading {rel}: {e}"))?;
        let raw = entry.file_name();
        if raw.to_bytes() == b"." || raw.to_bytes() == b".." {
            continue;
        }
        let name = name_of(raw)?;
        let path = format!("{rel}/{name}");
        let st = statat(fd, raw, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| format!("{path}: {e}"))?;
        if st.st_dev != dev {
            continue; // another filesystem mounted here: not ours to change
        }
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        if st.st_uid != target.0 || st.st_gid != target.1 {
            if !is_dir && st.st_nlink > 1 && !hardlinks {
                skipped.push(path.clone());
            } else {
                entries.push((path.clone(), owner(&st)));
            }
        }
        if is_dir {
            let child = openat(fd, raw, dir_flags(), Mode::empty()).map_err(|e| format!("{path}: {e}"))?;
            children.push((child, path));
        }
    }
    Ok(children)
}

/// Opens the parent directory of `path` (`./a/b/c` → `./a/b`) component by component from
/// the root, never through a symlink and never onto another filesystem; `None` when that is
/// not possible any more (a component became a link or vanished).
fn open_parent(root: &OwnedFd, dev: u64, parent: &str) -> Option<OwnedFd> {
    let mut fd: Option<OwnedFd> = None;
    for comp in parent.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let next = {
            let base = fd.as_ref().unwrap_or(root);
            openat(base, comp, dir_flags(), Mode::empty()).ok()?
        };
        if fstat(&next).ok()?.st_dev != dev {
            return None;
        }
        fd = Some(next);
    }
    match fd {
        Some(fd) => Some(fd),
        None => rustix::io::dup(root).ok(),
    }
}

fn ids(owner: &str) -> Result<(Uid, Gid), String> {
    let (u, g) = owner.split_once(':').ok_or_else(|| format!("bad owner {owner}"))?;
    let u: u32 = u.parse().map_err(|_| format!("bad owner {owner}"))?;
    let g: u32 = g.parse().map_err(|_| format!("bad owner {owner}"))?;
    Ok((Uid::from_raw(u), Gid::from_raw(g)))
}

/// Sets each listed entry (`./a/b`) to its owner, then the root to `root_owner`. Entries
/// whose path can no longer be reached without following a link are left alone and
/// counted.
///
/// Guarantees: idempotent; never follows a symlink; never leaves the root's filesystem.
/// Errors: the root cannot be opened, or a change is refused by the kernel.
pub fn apply(root: &Path, entries: &[(String, String)], root_owner: Option<&str>) -> Result<usize, String> {
    let (root_fd, root_st) = open_root(root)?;
    let dev = root_st.st_dev;
    let unreachable = Mutex::new(0usize);
    let error: Mutex<Option<String>> = Mutex::new(None);
    // Contiguous chunks keep entries of one directory together, so each thread reuses the
    // parent it opened last.
    let chunk = entries.len().div_ceil(THREADS).max(1);
    std::thread::scope(|s| {
        for part in entries.chunks(chunk) {
            let (root_fd, unreachable, error) = (&root_fd, &unreachable, &error);
            s.spawn(move || {
                let mut cache: HashMap<String, OwnedFd> = HashMap::new();
                for (path, owner) in part {
                    let (parent, name) = path.rsplit_once('/').unwrap_or((".", path.as_str()));
                    if !cache.contains_key(parent) {
                        cache.clear();
                        match open_parent(root_fd, dev, parent) {
                            Some(fd) => {
                                cache.insert(parent.to_string(), fd);
                            }
                            None => {
                                *unreachable.lock().expect("lock") += 1;
                                continue;
                            }
                        }
                    }
                    let r = ids(owner).and_then(|(u, g)| {
                        chownat(&cache[parent], name, Some(u), Some(g), AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(|e| format!("{path}: {e}"))
                    });
                    match r {
                        Ok(()) => {}
                        Err(_) if statat(&cache[parent], name, AtFlags::SYMLINK_NOFOLLOW).is_err() => {
                            *unreachable.lock().expect("lock") += 1; // gone since
                        }
                        Err(e) => {
                            error.lock().expect("lock").get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().expect("lock") {
        return Err(e);
    }
    if let Some(o) = root_owner {
        let (u, g) = ids(o)?;
        fchown(&root_fd, Some(u), Some(g)).map_err(|e| format!("{}: {e}", root.display()))?;
    }
    Ok(unreachable.into_inner().expect("lock"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, symlink};

    fn own(p: &Path) -> (u32, u32) {
        let m = std::fs::symlink_metadata(p).unwrap();
        (m.uid(), m.gid())
    }

    #[test]
    fn scans_and_applies_without_following_links_and_restores_exactly() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root to change owners");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("vol");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("a/b/file"), "x").unwrap();
        std::fs::write(root.join("top"), "y").unwrap();
        std::fs::write(outside.join("secret"), "s").unwrap();
        std::fs::write(outside.join("hard"), "h").unwrap();
        symlink(outside.join("secret"), root.join("link")).unwrap();
        symlink(&outside, root.join("dirlink")).unwrap();
        std::fs::hard_link(outside.join("hard"), root.join("hard")).unwrap();
        rustix::fs::chown(root.join("top").as_path(), Some(Uid::from_raw(5)), Some(Gid::from_raw(6))).unwrap();

        let changes = scan(&root, (1000, 1000), false).unwrap();
        let paths: Vec<&str> = changes.entries.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["./a", "./a/b", "./a/b/file", "./dirlink", "./link", "./top"]);
        assert_eq!(changes.skipped, ["./hard"]);
        assert_eq!(changes.root.as_deref(), Some("0:0"));

        let targets: Vec<(String, String)> =
            changes.entries.iter().map(|(p, _)| (p.clone(), "1000:1000".into())).collect();
        assert_eq!(apply(&root, &targets, Some("1000:1000")).unwrap(), 0);
        for p in ["a", "a/b", "a/b/file", "link", "dirlink", "top", ""] {
            assert_eq!(own(&root.join(p)), (1000, 1000), "{p}");
        }
        assert_eq!(own(&outside.join("secret")), (0, 0), "the link was not followed");
        assert_eq!(own(&outside), (0, 0), "the directory link was not followed");
        assert_eq!(own(&outside.join("hard")), (0, 0), "the hard-linked file was set aside");
        assert!(scan(&root, (1000, 1000), false).unwrap().is_empty(), "a second pass finds nothing");

        // Restore: a directory replaced by a link since is not followed.
        std::fs::rename(root.join("a/b"), tmp.path().join("moved")).unwrap();
        symlink(&outside, root.join("a/b")).unwrap();
        let skipped = apply(&root, &changes.entries, changes.root.as_deref()).unwrap();
        assert_eq!(skipped, 1, "./a/b/file is behind a link now");
        assert_eq!(own(&outside), (0, 0));
        assert_eq!(own(&root.join("top")), (5, 6), "restored exactly");
        assert_eq!(own(&root), (0, 0));
    }
}
