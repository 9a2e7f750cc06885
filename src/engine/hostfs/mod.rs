//! In-process re-owning on the daemon's host (SPEC §4, last paragraph): the fast path when
//! unroot runs as root beside a daemon that remaps no users.
//!
//! It produces the same [`MountChanges`] as the helper's scan and applies the same lists, so
//! manifests and restores do not care which path made them. The mount's root is opened
//! component by component from `/` without following any link ([`open_nofollow`]); it may
//! be a directory or a single file. Every directory below it is opened with
//! `O_NOFOLLOW | O_DIRECTORY` relative to its parent's descriptor, every entry is examined
//! and changed with `AT_SYMLINK_NOFOLLOW`, and every directory's device is checked against
//! the mount root's: a symlink is never followed (the link itself is changed) and the walk
//! never leaves the mount's filesystem. The walk runs on several threads and holds at most
//! [`OPEN_BUDGET`] directories open while they wait; the rest wait as paths and are opened
//! again from the root, each component without following a link, when their turn comes.

use std::collections::HashMap;
use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat, chownat, fstat, openat, statat};
use rustix::process::{Gid, Uid};

use crate::engine::reown::MountChanges;
use crate::model::owner::{Owner, Privileged};

/// Threads walking a tree at once.
pub const THREADS: usize = 4;

/// Directories waiting in a scan that may hold an open descriptor at once; the others wait
/// as paths, so a wide tree does not exhaust the process's descriptors.
pub const OPEN_BUDGET: usize = 128;

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

fn owner(st: &Stat) -> Owner {
    Owner::new(st.st_uid, st.st_gid)
}

fn name_of(c: &CStr) -> Result<&str, String> {
    let s = c.to_str().map_err(|_| "a name in the mount is not UTF-8; refusing".to_string())?;
    if s.contains('\n') {
        return Err("a name in this mount holds a newline; refusing to re-own it".into());
    }
    Ok(s)
}

fn is_file(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
}

/// Opens an absolute path with `O_PATH`, component by component from `/`, refusing a
/// symlink at any component and anything but a directory or a regular file at the last.
fn open_path(path: &Path) -> Result<(OwnedFd, Stat), String> {
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut fd = openat(rustix::fs::CWD, "/", flags | OFlags::DIRECTORY, Mode::empty())
        .map_err(|e| format!("opening /: {e}"))?;
    let mut st = fstat(&fd).map_err(|e| format!("/: {e}"))?;
    let mut sofar = PathBuf::from("/");
    let mut comps = path.components().filter(|c| *c != Component::RootDir).peekable();
    while let Some(c) = comps.next() {
        let Component::Normal(name) = c else {
            return Err(format!("{} holds a `.` or `..` component; refusing", path.display()));
        };
        sofar.push(name);
        fd = openat(&fd, name, flags, Mode::empty()).map_err(|e| format!("opening {}: {e}", sofar.display()))?;
        st = fstat(&fd).map_err(|e| format!("{}: {e}", sofar.display()))?;
        let last = comps.peek().is_none();
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                return Err(format!("{} is a symlink; refusing to follow it", sofar.display()));
            }
            FileType::Directory => {}
            FileType::RegularFile if last => {}
            _ if last => return Err(format!("{} is neither a directory nor a regular file", sofar.display())),
            _ => return Err(format!("{} is not a directory", sofar.display())),
        }
    }
    Ok((fd, st))
}

/// Opens a host path (a mount's source) without following any link: component by component
/// from `/`, each with `O_NOFOLLOW`.
///
/// Guarantees: the object opened is the one the path names with no symlink resolved at any
/// component, so a component swapped for a link cannot redirect the caller elsewhere. A
/// directory comes back readable (`O_RDONLY | O_DIRECTORY`), a regular file as an `O_PATH`
/// descriptor (usable with `*at(fd, "", AT_EMPTY_PATH)` and `fstat`); the stat is the
/// opened object's.
/// Errors: the path is not absolute or holds `.` or `..`; a component is missing, is a
/// symlink (the message names it) or is not a directory; the last one is neither a
/// directory nor a regular file.
pub fn open_nofollow(path: &Path) -> Result<(OwnedFd, Stat), String> {
    let (fd, st) = open_path(path)?;
    if is_file(&st) {
        return Ok((fd, st));
    }
    // `.` of the directory already opened: the same object, now readable.
    let dir = openat(&fd, ".", dir_flags(), Mode::empty()).map_err(|e| format!("opening {}: {e}", path.display()))?;
    Ok((dir, st))
}

/// The `(device, inode)` of a host path opened as [`open_nofollow`] opens it: record it when
/// a mount is examined, and give it to [`scan_checked`] and [`apply_checked`] to be sure
/// they work on the same object.
///
/// Guarantees: reads only; follows no symlink at any component.
/// Errors: as [`open_nofollow`].
pub fn identity(path: &Path) -> Result<(u64, u64), String> {
    let (_, st) = open_path(path)?;
    Ok((st.st_dev, st.st_ino))
}

/// Opens a mount's root and, when `expect` is given, checks it is still that object.
fn open_root(root: &Path, expect: Option<(u64, u64)>) -> Result<(OwnedFd, Stat), String> {
    let (fd, st) = open_nofollow(root)?;
    if let Some((dev, ino)) = expect
        && (st.st_dev, st.st_ino) != (dev, ino)
    {
        return Err(format!(
            "{} is no longer the object examined before (device {dev} inode {ino}, now device {} inode {}); \
             refusing to re-own it",
            root.display(),
            st.st_dev,
            st.st_ino
        ));
    }
    Ok((fd, st))
}

/// Opens the directory `rel` (`./a/b`, `.` for the root itself) component by component from
/// the root, each with `O_NOFOLLOW | O_DIRECTORY` and checked to be on the root's device `dev`.
/// Returns it with its stat.
fn open_below(root: &OwnedFd, dev: u64, rel: &str) -> Result<(OwnedFd, Stat), String> {
    let mut fd: Option<OwnedFd> = None;
    for comp in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if comp == ".." {
            return Err(format!("{rel} leads out of the mount; refusing"));
        }
        let next = openat(fd.as_ref().unwrap_or(root), comp, dir_flags(), Mode::empty())
            .map_err(|e| format!("opening {rel}: {e}"))?;
        let st = fstat(&next).map_err(|e| format!("{rel}: {e}"))?;
        if st.st_dev != dev {
            return Err(format!("{rel} leads onto another filesystem; refusing"));
        }
        fd = Some(next);
    }
    let fd = match fd {
        Some(fd) => fd,
        None => rustix::io::fcntl_dupfd_cloexec(root, 0).map_err(|e| format!("{rel}: {e}"))?,
    };
    let st = fstat(&fd).map_err(|e| format!("{rel}: {e}"))?;
    Ok((fd, st))
}

/// A directory waiting to be read.
struct Pending<'a> {
    /// `./a/b`.
    rel: String,
    how: Held<'a>,
}

enum Held<'a> {
    /// Open, counted against [`OPEN_BUDGET`] until dropped.
    Open(Counted<'a>),
    /// Past the budget: its `(device, inode)` when listed, to re-open it from the root.
    Closed(u64, u64),
}

/// A directory descriptor counted in the walk's budget while it lives.
struct Counted<'a> {
    fd: OwnedFd,
    open: &'a AtomicUsize,
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Takes a place in the budget, or `false` when none is left.
fn reserve(open: &AtomicUsize) -> bool {
    open.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < OPEN_BUDGET).then_some(n + 1)).is_ok()
}

/// Work shared by the walkers: directories still to read (open ones first, so their
/// descriptors return to the budget soon), and how many are being read.
struct Queue<'a> {
    state: Mutex<QueueState<'a>>,
    wake: Condvar,
}

struct QueueState<'a> {
    open: Vec<Pending<'a>>,
    closed: Vec<Pending<'a>>,
    busy: usize,
}

impl<'a> Queue<'a> {
    /// The next directory, or `None` when every walker is idle and nothing is left.
    fn pop(&self) -> Option<Pending<'a>> {
        let mut g = self.state.lock().expect("queue lock");
        loop {
            if let Some(item) = g.open.pop().or_else(|| g.closed.pop()) {
                g.busy += 1;
                return Some(item);
            }
            if g.busy == 0 {
                self.wake.notify_all();
                return None;
            }
            g = self.wake.wait(g).expect("queue lock");
        }
    }

    fn push(&self, items: Vec<Pending<'a>>) {
        if items.is_empty() {
            return;
        }
        let mut g = self.state.lock().expect("queue lock");
        for item in items {
            match item.how {
                Held::Open(_) => g.open.push(item),
                Held::Closed(..) => g.closed.push(item),
            }
        }
        self.wake.notify_all();
    }

    fn done(&self) {
        let mut g = self.state.lock().expect("queue lock");
        g.busy -= 1;
        self.wake.notify_all();
    }
}

/// Lists every entry below `root` whose uid or gid differs from `target`, like the helper's
/// scan: hard-linked files are set aside unless `hardlinks`, and the root's own owner is
/// reported separately. A root that is a regular file has no entries: only its owner is
/// reported (in `skipped` as `.` when it is hard-linked and `hardlinks` is off).
///
/// Guarantees: reads only; never follows a symlink, in the root's path or below it; never
/// descends into another filesystem; holds at most [`OPEN_BUDGET`] waiting directories open.
/// Errors: the root cannot be opened without following a link; an unreadable directory, or
/// one that was replaced while the walk waited to read it; a name that is not UTF-8 or
/// holds a newline.
pub fn scan(root: &Path, target: Owner, hardlinks: bool) -> Result<MountChanges, String> {
    scan_checked(root, None, target, hardlinks)
}

/// [`scan`], refusing unless the root is the object `expect` (`(device, inode)` from
/// [`identity`]) when it is given.
///
/// Guarantees: as [`scan`]; with `expect`, reads nothing below a root that was replaced.
/// Errors: as [`scan`], and a root that is not `expect`.
pub fn scan_checked(
    root: &Path,
    expect: Option<(u64, u64)>,
    target: Owner,
    hardlinks: bool,
) -> Result<MountChanges, String> {
    let (root_fd, root_st) = open_root(root, expect)?;
    let differs = owner(&root_st) != target;
    if is_file(&root_st) {
        let mut changes = MountChanges::default();
        if differs && root_st.st_nlink > 1 && !hardlinks {
            changes.skipped.push(".".into());
        } else if differs {
            changes.root = Some(owner(&root_st));
        }
        return Ok(changes);
    }
    let dev = root_st.st_dev;
    let open = AtomicUsize::new(1);
    let first = rustix::io::fcntl_dupfd_cloexec(&root_fd, 0).map_err(|e| format!("{}: {e}", root.display()))?;
    let first = Pending { rel: ".".into(), how: Held::Open(Counted { fd: first, open: &open }) };
    let queue = Queue {
        state: Mutex::new(QueueState { open: vec![first], closed: Vec::new(), busy: 0 }),
        wake: Condvar::new(),
    };
    let walk = Walk { root: &root_fd, dev, target, hardlinks, open: &open };
    let results: Mutex<(MountChanges, Option<String>)> = Mutex::new((MountChanges::default(), None));
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let mut found = MountChanges::default();
                while let Some(item) = queue.pop() {
                    match walk.dir(item, &mut found) {
                        Ok(children) => queue.push(children),
                        Err(e) => {
                            let mut g = results.lock().expect("results lock");
                            g.1.get_or_insert(e);
                        }
                    }
                    queue.done();
                }
                let mut g = results.lock().expect("results lock");
                g.0.entries.extend(found.entries);
                g.0.skipped.extend(found.skipped);
                g.0.privileged.extend(found.privileged);
            });
        }
    });
    let (mut changes, error) = results.into_inner().expect("results lock");
    if let Some(e) = error {
        return Err(e);
    }
    changes.entries.sort();
    changes.skipped.sort();
    changes.privileged.sort();
    changes.root = differs.then(|| owner(&root_st));
    Ok(changes)
}

/// What every walker of one scan shares.
struct Walk<'a> {
    root: &'a OwnedFd,
    dev: u64,
    target: Owner,
    hardlinks: bool,
    open: &'a AtomicUsize,
}

impl<'a> Walk<'a> {
    /// Reads one directory into `found` (the entries to change, the hard-linked files set
    /// aside, the setuid and setgid files' modes); returns its subdirectories (on the same
    /// filesystem) to walk.
    fn dir(&self, item: Pending<'a>, found: &mut MountChanges) -> Result<Vec<Pending<'a>>, String> {
        let rel = item.rel;
        let reopened;
        let fd = match &item.how {
            Held::Open(c) => &c.fd,
            Held::Closed(dev, ino) => {
                let (fd, st) = open_below(self.root, self.dev, &rel)?;
                if (st.st_dev, st.st_ino) != (*dev, *ino) {
                    return Err(format!("{rel} was replaced during the scan; refusing"));
                }
                reopened = fd;
                &reopened
            }
        };
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
            if st.st_dev != self.dev {
                continue; // another filesystem mounted here: not ours to change
            }
            let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            if owner(&st) != self.target {
                if !is_dir && st.st_nlink > 1 && !self.hardlinks {
                    found.skipped.push(path.clone());
                } else {
                    found.entries.push((path.clone(), owner(&st)));
                    // The owner change clears setuid and setgid bits and file capabilities;
                    // a restore gives them back to the same contents.
                    if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                        && st.st_mode & 0o6111 != 0
                        && let Some(p) = privileged(fd, raw, &path, &st)
                    {
                        found.privileged.push(p);
                    }
                }
            }
            if !is_dir {
                continue;
            }
            let how = if reserve(self.open) {
                // Counted from here, so an error below returns the place to the budget.
                let child = openat(fd, raw, dir_flags(), Mode::empty());
                let child = Counted { fd: child.map_err(|e| format!("{path}: {e}"))?, open: self.open };
                let cst = fstat(&child.fd).map_err(|e| format!("{path}: {e}"))?;
                if (cst.st_dev, cst.st_ino) != (st.st_dev, st.st_ino) {
                    return Err(format!("{path} was replaced during the scan; refusing"));
                }
                Held::Open(child)
            } else {
                Held::Closed(st.st_dev, st.st_ino)
            };
            children.push(Pending { rel: path, how });
        }
        Ok(children)
    }
}

fn ids(owner: Owner) -> (Uid, Gid) {
    (Uid::from_raw(owner.uid), Gid::from_raw(owner.gid))
}

/// Sets each listed entry (`./a/b`) to its owner, then the root to `root_owner`. Entries
/// whose path can no longer be reached without following a link are left alone and
/// counted. A root that is a regular file takes no entries: only its own owner is set.
///
/// Guarantees: idempotent; never follows a symlink, in the root's path or below it; never
/// leaves the root's filesystem.
/// Errors: the root cannot be opened without following a link; an entry that is not a path
/// inside the mount, or entries for a root that is a file; a change refused by the kernel.
pub fn apply(root: &Path, entries: &[(String, Owner)], root_owner: Option<Owner>) -> Result<usize, String> {
    apply_checked(root, None, entries, root_owner)
}

/// [`apply`], refusing unless the root is the object `expect` (`(device, inode)` from
/// [`identity`]) when it is given.
///
/// Guarantees: as [`apply`]; with `expect`, changes nothing under a root that was replaced.
/// Errors: as [`apply`], and a root that is not `expect`.
pub fn apply_checked(
    root: &Path,
    expect: Option<(u64, u64)>,
    entries: &[(String, Owner)],
    root_owner: Option<Owner>,
) -> Result<usize, String> {
    let (root_fd, root_st) = open_root(root, expect)?;
    if let Some((path, _)) = entries
        .iter()
        .find(|(p, _)| !p.starts_with("./") || p.split('/').skip(1).any(|c| c.is_empty() || c == "." || c == ".."))
    {
        return Err(format!("{path:?} is not a path inside the mount; refusing"));
    }
    if is_file(&root_st) && !entries.is_empty() {
        return Err(format!("{} is a file: it holds no entries to re-own", root.display()));
    }
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
                let mut cache: HashMap<&str, OwnedFd> = HashMap::new();
                for (path, owner) in part {
                    let (parent, name) = path.rsplit_once('/').unwrap_or((".", path.as_str()));
                    if !cache.contains_key(parent) {
                        cache.clear();
                        match open_below(root_fd, dev, parent) {
                            Ok((fd, _)) => {
                                cache.insert(parent, fd);
                            }
                            Err(_) => {
                                *unreachable.lock().expect("lock") += 1;
                                continue;
                            }
                        }
                    }
                    let (u, g) = ids(*owner);
                    let r = chownat(&cache[parent], name, Some(u), Some(g), AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| format!("{path}: {e}"));
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
        let (u, g) = ids(o);
        // The descriptor itself: a readable directory or a file's `O_PATH` descriptor.
        chownat(&root_fd, "", Some(u), Some(g), AtFlags::EMPTY_PATH).map_err(|e| format!("{}: {e}", root.display()))?;
    }
    Ok(unreachable.into_inner().expect("lock"))
}

/// The name of the extended attribute that holds a file's capabilities.
const CAPS_XATTR: &str = "security.capability";

/// Regular file `name` in `dir` (seen as `st`) as the record of what an owner change strips
/// from it: its setuid and setgid bits and file capabilities with the sha256 of its
/// contents; `None` when it has neither, or cannot be opened (without following a link) and
/// read.
fn privileged(dir: &OwnedFd, name: &CStr, path: &str, st: &Stat) -> Option<Privileged> {
    let fd = openat(dir, name, file_flags(), Mode::empty()).ok()?;
    let mode = (st.st_mode & 0o6000 != 0).then_some(st.st_mode & 0o7777);
    let mut buf = [0u8; 64];
    let caps = match rustix::fs::fgetxattr(&fd, CAPS_XATTR, &mut buf[..]) {
        Ok(n) if n > 0 => Some(hex::encode(&buf[..n])),
        _ => None,
    };
    if mode.is_none() && caps.is_none() {
        return None;
    }
    Some(Privileged { path: path.to_string(), sha256: contents_sha256(&fd)?, mode, caps })
}

/// The sha256 (hex) of what an open regular file holds, read from its start.
fn contents_sha256(fd: &OwnedFd) -> Option<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0u64;
    loop {
        let n = rustix::io::pread(fd, &mut buf[..], at).ok()?;
        if n == 0 {
            return Some(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
        at += n as u64;
    }
}

/// How a regular file is opened to read or change its attributes: never through a link,
/// never blocking on a FIFO put in its place.
fn file_flags() -> OFlags {
    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY
}

/// Gives each listed regular file (`./a/b`) its mode, then its file capabilities, back: what
/// the owner change cleared (setuid and setgid bits, `security.capability`), and only while
/// it holds the contents the scan saw (a file replaced or rewritten since stays as it is).
/// Returns how many entries were gone, replaced or rewritten.
///
/// Guarantees: idempotent; opens each file without following a link (in its path or
/// itself) and reads and changes it through that descriptor; never leaves the root's
/// filesystem.
/// Errors: the root cannot be opened, or is not `expect`; an entry that is not a path inside
/// the mount, or capabilities that are not hex; a change refused by the kernel.
pub fn set_attrs(root: &Path, expect: Option<(u64, u64)>, privileged: &[Privileged]) -> Result<usize, String> {
    if privileged.is_empty() {
        return Ok(0);
    }
    let (root_fd, root_st) = open_root(root, expect)?;
    let open = |path: &str| -> Result<Option<OwnedFd>, String> {
        if !path.starts_with("./") || path.split('/').skip(1).any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(format!("{path:?} is not a path inside the mount; refusing"));
        }
        let (parent, name) = path.rsplit_once('/').unwrap_or((".", path));
        let Ok((dir, _)) = open_below(&root_fd, root_st.st_dev, parent) else { return Ok(None) };
        let Ok(fd) = openat(&dir, name, file_flags(), Mode::empty()) else { return Ok(None) };
        let st = fstat(&fd).map_err(|e| format!("{path}: {e}"))?;
        let regular = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && st.st_dev == root_st.st_dev;
        Ok(regular.then_some(fd))
    };
    let mut gone = 0;
    for p in privileged {
        let Some(fd) = open(&p.path)? else {
            gone += 1;
            continue;
        };
        if contents_sha256(&fd).as_deref() != Some(p.sha256.as_str()) {
            gone += 1; // other contents: never made setuid or capable
            continue;
        }
        if let Some(mode) = p.mode {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| format!("{}: {e}", p.path))?;
        }
        if let Some(caps) = &p.caps {
            let value = hex::decode(caps).map_err(|_| format!("{}: the saved capabilities are not hex", p.path))?;
            rustix::fs::fsetxattr(&fd, CAPS_XATTR, &value, rustix::fs::XattrFlags::empty())
                .map_err(|e| format!("{}: setting its capabilities: {e}", p.path))?;
        }
    }
    Ok(gone)
}

#[cfg(test)]
mod tests;
