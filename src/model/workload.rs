//! What a plan's name stands for once the preview settled it: a container, or a Swarm
//! service. Every part of unroot that acts differently for the two asks this one type.

use serde::{Deserialize, Serialize};

/// The kind of a workload a plan names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// A container, recreated under its name.
    Container,
    /// A Swarm service, updated in place by its manager.
    Service,
}

impl WorkloadKind {
    /// The word for the kind in output and files (`container`, `service`).
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Container => "container",
            WorkloadKind::Service => "service",
        }
    }
}

impl std::fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
