//! What re-owning changes, as data: the mounts of a service and, per mount, every entry
//! whose owner changed with its old owner. The manifest (`owners`, 0600) is written before
//! any owner changes, so a rollback restores each one exactly.

use std::fmt;
use std::str::FromStr;

pub use crate::model::mount::MountKind;

use serde::{Deserialize, Serialize};

/// A file's or a process's owner: numeric uid and gid. Written `uid:gid` wherever it is
/// stored (the manifest, the journal) or shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    pub const ROOT: Owner = Owner { uid: 0, gid: 0 };

    pub fn new(uid: u32, gid: u32) -> Owner {
        Owner { uid, gid }
    }

    /// Whether a process running as `self` (with supplementary `groups`) may pass through
    /// a directory owned by `dir` with permission bits `mode`: the search (`x`) bit of the
    /// class it falls in. Root passes everywhere.
    pub fn can_traverse(&self, groups: &[u32], dir: Owner, mode: u32) -> bool {
        if self.uid == 0 {
            return true;
        }
        if self.uid == dir.uid {
            return mode & 0o100 != 0;
        }
        if self.gid == dir.gid || groups.contains(&dir.gid) {
            return mode & 0o010 != 0;
        }
        mode & 0o001 != 0
    }
}

/// Why `who` (with supplementary `groups`) cannot reach `dest`: the first of the
/// directories above it (`(path, owner, mode)`, outermost first) it may not pass through.
pub fn unreachable(dest: &str, above: &[(String, Owner, u32)], who: Owner, groups: &[u32]) -> Option<String> {
    let (dir, owner, mode) = above.iter().find(|(_, o, m)| !who.can_traverse(groups, *o, *m))?;
    Some(format!(
        "{dest} lies inside {dir} (mode {mode:04o}, owner {owner}), which uid {} cannot pass through: the service cannot reach its data; move the mount or open {dir}",
        who.uid
    ))
}

/// The directories above `path`, outermost first, without `/`.
pub fn ancestors(path: &str) -> Vec<String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    (1..parts.len()).map(|n| format!("/{}", parts[..n].join("/"))).collect()
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

/// Text that is not `uid:gid` with two unsigned 32-bit numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad owner {0}")]
pub struct BadOwner(pub String);

impl FromStr for Owner {
    type Err = BadOwner;

    /// Parses `uid:gid`; nothing else (no names, no missing half, no sign, no space).
    fn from_str(s: &str) -> Result<Owner, BadOwner> {
        let bad = || BadOwner(s.to_string());
        let (u, g) = s.split_once(':').ok_or_else(bad)?;
        let number = |t: &str| if t.bytes().all(|b| b.is_ascii_digit()) { t.parse::<u32>().ok() } else { None };
        Ok(Owner { uid: number(u).ok_or_else(bad)?, gid: number(g).ok_or_else(bad)? })
    }
}

impl Serialize for Owner {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Owner {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Owner, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One mount as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountId {
    /// Path in the service's container.
    pub destination: String,
    /// A volume or a bind.
    pub kind: MountKind,
    /// The volume's name or the bind's host path.
    pub source: String,
    /// Where the data lies on the daemon's host (for in-process re-owning).
    #[serde(default)]
    pub host_path: String,
    /// Device and inode of `host_path` when the preview could see it (opened without
    /// following any link): re-owning and restoring refuse a source that is not the same
    /// object any more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<(u64, u64)>,
}

/// What re-owning one mount changes: entries with their old owners.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MountChanges {
    /// Relative paths (`./a/b`) with their owner before.
    pub entries: Vec<(String, Owner)>,
    /// The mount root's owner before, when it changes.
    pub root: Option<Owner>,
    /// Hard-linked files set aside (they keep their owner).
    pub skipped: Vec<String>,
    /// Regular files among `entries` that changing the owner strips of privileges (setuid
    /// or setgid bits, file capabilities): a restore gives them back to the same contents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileged: Vec<Privileged>,
}

/// A regular file whose setuid or setgid bits or file capabilities an owner change removes,
/// as the scan saw it. A restore gives them back only while the file holds the same
/// contents: a file the service replaced or rewrote in the meantime never becomes a setuid
/// or capable program.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Privileged {
    pub path: String,
    /// sha256 of its contents (hex).
    pub sha256: String,
    /// Its mode (`0o4755`) when it has a setuid or setgid bit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// Its `security.capability` (hex) when it has file capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caps: Option<String>,
}

impl MountChanges {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.root.is_none()
    }

    pub fn count(&self) -> usize {
        self.entries.len() + usize::from(self.root.is_some())
    }
}

/// The manifest of one service (`owners`, 0600): per mount, what changed and from what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The owner every changed entry was set to.
    pub target: Owner,
    pub mounts: Vec<(MountId, MountChanges)>,
}

impl Manifest {
    pub fn changed(&self) -> usize {
        self.mounts.iter().map(|(_, c)| c.count()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_parse_and_print_as_uid_colon_gid() {
        assert_eq!("999:1000".parse::<Owner>().unwrap(), Owner::new(999, 1000));
        assert_eq!(Owner::new(0, 0).to_string(), "0:0");
        assert_eq!("4294967295:0".parse::<Owner>().unwrap().uid, u32::MAX);
        for bad in ["", "1", "1:", ":1", "a:1", "1:b", "1:2:3", "-1:0", "+1:0", " 1:0", "4294967296:0", "redis:redis"] {
            assert_eq!(bad.parse::<Owner>(), Err(BadOwner(bad.to_string())), "{bad:?}");
        }
    }

    #[test]
    fn traversal_follows_the_class_the_user_falls_in() {
        let root_0700 = (Owner::ROOT, 0o700);
        let app = Owner::new(999, 999);
        assert!(!app.can_traverse(&[], root_0700.0, root_0700.1), "a 0700 /root stops uid 999");
        assert!(Owner::ROOT.can_traverse(&[], root_0700.0, root_0700.1));
        assert!(app.can_traverse(&[], Owner::ROOT, 0o755));
        assert!(app.can_traverse(&[], Owner::new(999, 0), 0o700), "its own directory");
        assert!(!app.can_traverse(&[], Owner::new(999, 0), 0o077), "the owner class decides, not other");
        assert!(app.can_traverse(&[], Owner::new(0, 999), 0o750), "its group");
        assert!(app.can_traverse(&[44], Owner::new(0, 44), 0o750), "a supplementary group");
        assert!(!app.can_traverse(&[], Owner::new(0, 44), 0o750));
    }

    #[test]
    fn a_manifest_keeps_its_on_disk_form() {
        let text = r#"{"target":"1000:1000","mounts":[[{"destination":"/data","kind":"volume","source":"v","host_path":""},{"entries":[["./a","0:0"]],"root":"5:6","skipped":[]}]]}"#;
        let m: Manifest = serde_json::from_str(text).unwrap();
        assert_eq!(m.target, Owner::new(1000, 1000));
        assert_eq!(m.mounts[0].1.root, Some(Owner::new(5, 6)));
        assert_eq!(serde_json::to_string(&m).unwrap(), text);
        assert!(serde_json::from_str::<Manifest>(&text.replace("5:6", "five")).is_err());
    }
}
