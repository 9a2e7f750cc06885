//! A workload's original as Docker showed it before unroot changed it: a container's inspect
//! or a Swarm service's. Runs save it with its kind (`state::SavedOriginal`); this is the
//! typed form the engine acts on.

use serde_json::Value;

use super::Inspect;
use super::swarm::ServiceInspect;
use crate::model::workload::WorkloadKind;

/// The original of a container or of a Swarm service.
#[derive(Debug, Clone)]
pub enum Original {
    Container(Inspect),
    Service(ServiceInspect),
}

impl Original {
    /// The original of `kind` from its saved inspect.
    pub fn new(kind: WorkloadKind, inspect: Value) -> Original {
        match kind {
            WorkloadKind::Container => Original::Container(Inspect(inspect)),
            WorkloadKind::Service => Original::Service(ServiceInspect(inspect)),
        }
    }

    pub fn kind(&self) -> WorkloadKind {
        match self {
            Original::Container(_) => WorkloadKind::Container,
            Original::Service(_) => WorkloadKind::Service,
        }
    }

    /// Docker's id of the container or service.
    pub fn id(&self) -> &str {
        match self {
            Original::Container(c) => c.id(),
            Original::Service(s) => s.id(),
        }
    }

    /// The inspect as Docker wrote it.
    pub fn json(&self) -> &Value {
        match self {
            Original::Container(c) => &c.0,
            Original::Service(s) => &s.0,
        }
    }

    /// Its `KEY=VALUE` environment: a container's `Config.Env`, a service's
    /// `ContainerSpec.Env`.
    pub fn env(&self) -> Vec<String> {
        match self {
            Original::Container(c) => c.env(),
            Original::Service(s) => s.env(),
        }
    }

    /// The container's inspect, when it is one.
    pub fn container(&self) -> Option<&Inspect> {
        match self {
            Original::Container(c) => Some(c),
            Original::Service(_) => None,
        }
    }

    /// The service's inspect, when it is one.
    pub fn service(&self) -> Option<&ServiceInspect> {
        match self {
            Original::Service(s) => Some(s),
            Original::Container(_) => None,
        }
    }
}
