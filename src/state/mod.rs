//! State on disk (SPEC §5): the state directory and its lock, run folders, the journal and
//! the ledger. Every directory is 0700 and every file 0600: the saved inspects hold the
//! containers' environment.

mod dirs;
pub mod failpoint;
mod journal;
mod ledger;
mod lock;
mod who;

pub use dirs::{PlanDir, RunDir, SavedOriginal};
pub use journal::{
    Cause, Entry, Journal, Record, RunEvent, RunState, Step, StepDetail, last_run_event, restore_order, run_events,
};
pub use ledger::{AppliedDay, Ledger, OpenService, ServiceRecord, ServiceState};
pub use lock::{Holder, Lock};
pub use who::{hostname, operator};

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A state-directory problem, with the path it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    /// Another unroot holds the lock.
    #[error("another unroot holds the lock {path}: {holder}")]
    Locked { path: PathBuf, holder: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io { path: path.to_path_buf(), source }
}

/// Creates `dir` and its missing parents, each with mode 0700. A directory that exists
/// already is used as it is: `--state-dir /tmp` must not strip /tmp's 1777; what unroot
/// keeps there goes into folders of its own, which it creates 0700.
///
/// Errors: a component cannot be created or examined.
pub fn private_dir(dir: &Path) -> Result<(), StateError> {
    let mut missing = Vec::new();
    let mut cur = dir;
    loop {
        match fs::symlink_metadata(cur) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing.push(cur);
                match cur.parent() {
                    Some(p) if !p.as_os_str().is_empty() => cur = p,
                    _ => break,
                }
            }
            Err(e) => return Err(StateError::Io { path: cur.to_path_buf(), source: e }),
        }
    }
    for d in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(0o700).create(d) {
            // The umask may have narrowed it further; it must be usable by its owner.
            Ok(()) => fs::set_permissions(d, fs::Permissions::from_mode(0o700)).map_err(io(d))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StateError::Io { path: d.to_path_buf(), source: e }),
        }
    }
    Ok(())
}

/// The state directory a command uses, and what a printed command needs to find it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateLocation {
    pub dir: PathBuf,
    /// ` --state-dir DIR`, ` --plan PLAN`, or empty when the default finds it.
    pub hint: String,
}

impl StateLocation {
    /// `--state-dir`, else the `state_dir` of the plan, else `rollback/` (SPEC §1).
    pub fn resolve(flag: Option<&Path>, plan: Option<&crate::model::plan::Plan>) -> StateLocation {
        match (flag, plan) {
            (Some(dir), _) => {
                StateLocation { dir: dir.to_path_buf(), hint: format!(" --state-dir {}", shell_word(dir)) }
            }
            (None, Some(plan)) if plan.rollout.state_dir != Path::new(crate::model::plan::DEFAULT_STATE_DIR) => {
                StateLocation {
                    dir: plan.rollout.state_dir.clone(),
                    hint: format!(" --plan {}", shell_word(Path::new(&plan.source.name))),
                }
            }
            (None, Some(plan)) => StateLocation { dir: plan.rollout.state_dir.clone(), hint: String::new() },
            (None, None) => {
                StateLocation { dir: PathBuf::from(crate::model::plan::DEFAULT_STATE_DIR), hint: String::new() }
            }
        }
    }
}

/// A path as one shell word (quoted when it holds anything but plain characters).
fn shell_word(p: &Path) -> String {
    let s = p.display().to_string();
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c)) {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Writes a file with mode 0600 durably (see [`replace_file`]).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    replace_file(path, bytes, 0o600, None).map_err(io(path))
}

/// Puts `bytes` at `path` whole or not at all: a new temporary file beside it (never through
/// a link) with `mode` and, when given, `owner`, written and synced, renamed over `path`,
/// then the directory synced. A reader sees the old file or the new one, never a part.
///
/// Errors: the directory is not writable, the disk is full; the temporary file is removed.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        if let Some((uid, gid)) = owner {
            let _ = rustix::fs::fchown(&f, Some(rustix::fs::Uid::from_raw(uid)), Some(rustix::fs::Gid::from_raw(gid)));
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir).and_then(|d| d.sync_all())
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Reads a JSON file written by unroot; `None` when it does not exist.
fn load_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    match fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| StateError::Corrupt { path: path.to_path_buf(), message: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::Io { path: path.to_path_buf(), source: e }),
    }
}

/// The current UTC time as RFC 3339 with seconds.
pub fn now_rfc3339() -> String {
    let t = time::OffsetDateTime::now_utc();
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A new run id: `day<N>-<UTC yyyymmddThhmmss>`.
pub fn new_run_id(day: u32) -> String {
    let t = time::OffsetDateTime::now_utc();
    let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]");
    format!("day{day}-{}", t.format(&f).unwrap_or_default())
}

/// The permission bits of a file (for the tests of private files and folders).
#[cfg(test)]
pub(crate) fn file_mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::file_mode as mode;

    #[test]
    fn the_state_dir_and_the_hint_that_finds_it_again() {
        let plan = |dir: &str| {
            crate::model::plan::Plan::parse(
                "plans/my plan.toml",
                &format!("[rollout]\nname = \"p\"\nstate_dir = \"{dir}\"\n[service.a]\nday = 1\nuser = \"1\"\n"),
            )
            .unwrap()
        };
        let custom = plan("/srv/unroot-state");
        let loc = StateLocation::resolve(None, Some(&custom));
        assert_eq!(loc.dir, Path::new("/srv/unroot-state"));
        assert_eq!(loc.hint, " --plan 'plans/my plan.toml'");
        let flag = StateLocation::resolve(Some(Path::new("/tmp/s")), Some(&custom));
        assert_eq!((flag.dir.as_path(), flag.hint.as_str()), (Path::new("/tmp/s"), " --state-dir /tmp/s"));
        let default = StateLocation::resolve(None, Some(&plan("rollback")));
        assert_eq!((default.dir.as_path(), default.hint.as_str()), (Path::new("rollback"), ""));
        assert_eq!(StateLocation::resolve(None, None).dir, Path::new("rollback"));
    }

    #[test]
    fn an_existing_state_dir_keeps_its_mode_and_created_ones_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let shared = tmp.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        let pd = PlanDir::new(&shared, "p");
        let run = RunDir::create(&pd, "day1-x", "").unwrap();
        assert_eq!(fs::metadata(&shared).unwrap().permissions().mode() & 0o7777, 0o1777, "left as it was");
        assert_eq!(mode(&pd.dir), 0o700);
        assert_eq!(mode(&run.dir), 0o700);
        let deep = tmp.path().join("x/y/z");
        private_dir(&deep).unwrap();
        for d in ["x", "x/y", "x/y/z"] {
            assert_eq!(mode(&tmp.path().join(d)), 0o700, "{d}");
        }
    }
}
