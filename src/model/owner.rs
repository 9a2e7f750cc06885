//! What re-owning changes, as data: the mounts of a service and, per mount, every entry
//! whose owner changed with its old owner. The manifest (`owners`, 0600) is written before
//! any owner changes, so a rollback restores each one exactly.

use serde::{Deserialize, Serialize};

/// One mount as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountId {
    /// Path in the service's container.
    pub destination: String,
    /// `volume` or `bind`.
    pub kind: String,
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
    /// Relative paths (`./a/b`) with their owner before, as `uid:gid`.
    pub entries: Vec<(String, String)>,
    /// The mount root's owner before, when it changes.
    pub root: Option<String>,
    /// Hard-linked files set aside (they keep their owner).
    pub skipped: Vec<String>,
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
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// The owner every changed entry was set to.
    pub target: String,
    pub mounts: Vec<(MountId, MountChanges)>,
}

impl Manifest {
    pub fn changed(&self) -> usize {
        self.mounts.iter().map(|(_, c)| c.count()).sum()
    }
}
