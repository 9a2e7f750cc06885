//! The exclusive lock on a state directory.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{StateError, hostname, io, now_rfc3339, private_dir};

/// The exclusive lock on a state directory, held until dropped (the kernel releases it when
/// the process dies, so a dead holder never blocks).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Who holds a lock, as written in the lock file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub started: String,
    pub command: String,
}

impl Lock {
    /// Whether some process holds the lock of `state_dir` right now. Reads only: it takes
    /// a shared lock for an instant and writes nothing.
    pub fn is_held(state_dir: &Path) -> bool {
        match File::open(state_dir.join(".lock")) {
            Ok(f) => matches!(f.try_lock_shared(), Err(fs::TryLockError::WouldBlock)),
            Err(_) => false,
        }
    }

    /// Takes the lock of `state_dir` for `command`, or says who holds it.
    ///
    /// Errors: [`StateError::Locked`] naming the holder (pid, host, start time).
    pub fn acquire(state_dir: &Path, command: &str) -> Result<Lock, StateError> {
        private_dir(state_dir)?;
        let path = state_dir.join(".lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            // A state dir may be shared (`/tmp`): never open a link planted in its place.
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(io(&path))?;
        if let Err(e) = file.try_lock() {
            return match e {
                fs::TryLockError::WouldBlock => {
                    let holder = fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| serde_json::from_str::<Holder>(&t).ok())
                        .map(|h| format!("{} (pid {} on {}, since {})", h.command, h.pid, h.host, h.started))
                        .unwrap_or_else(|| "a process that has not written its name yet".into());
                    Err(StateError::Locked { path, holder })
                }
                fs::TryLockError::Error(e) => Err(StateError::Io { path, source: e }),
            };
        }
        let holder =
            Holder { pid: std::process::id(), host: hostname(), started: now_rfc3339(), command: command.to_string() };
        file.set_len(0).map_err(io(&path))?;
        file.write_all(serde_json::to_string(&holder).expect("serializes").as_bytes()).map_err(io(&path))?;
        file.sync_data().map_err(io(&path))?;
        Ok(Lock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_first_holder() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(!Lock::is_held(tmp.path()));
        let held = Lock::acquire(tmp.path(), "apply").unwrap();
        let before = fs::read(tmp.path().join(".lock")).unwrap();
        assert!(Lock::is_held(tmp.path()));
        assert_eq!(fs::read(tmp.path().join(".lock")).unwrap(), before, "looking changes nothing");
        match Lock::acquire(tmp.path(), "resume") {
            Err(StateError::Locked { holder, .. }) => {
                assert!(holder.contains(&format!("pid {}", std::process::id())), "{holder}")
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(held);
        assert!(!Lock::is_held(tmp.path()), "released with its holder");
    }
}
