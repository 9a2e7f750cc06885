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
    /// The original a run saved: of its recorded kind, or (saved before the kind was
    /// recorded) told by the inspect's shape: a service's has `Spec` and `Version` and no
    /// `Config`.
    pub fn saved(kind: Option<WorkloadKind>, inspect: Value) -> Original {
        let service =
            inspect.get("Spec").is_some() && inspect.get("Version").is_some() && inspect.get("Config").is_none();
        let kind = kind.unwrap_or(if service { WorkloadKind::Service } else { WorkloadKind::Container });
        Original::new(kind, inspect)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untagged_saved_original_is_told_by_its_shape() {
        let svc = serde_json::json!({"ID": "s1", "Version": {"Index": 3}, "Spec": {"Name": "web"}});
        let container = serde_json::json!({"Id": "c1", "Config": {"User": ""}, "State": {}});
        assert_eq!(Original::saved(None, svc.clone()).kind(), WorkloadKind::Service);
        assert_eq!(Original::saved(None, container.clone()).kind(), WorkloadKind::Container);
        assert_eq!(
            Original::saved(Some(WorkloadKind::Container), svc).kind(),
            WorkloadKind::Container,
            "the tag decides"
        );
        assert_eq!(Original::saved(None, container).id(), "c1");
    }
}
