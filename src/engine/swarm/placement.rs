//! Which nodes a service's placement constraints allow, evaluated as Swarm evaluates them:
//! every constraint must hold; `==` and `!=` compare without regard to case. And the nodes
//! the preview finds a service may run on ([`NodePlan`]), which the check looks at.

use serde::Serialize;

use crate::docker::swarm::{NodeRef, NodeState};

/// One node a service's tasks may run on, and what is re-owned there.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NodePlan {
    pub id: String,
    pub hostname: String,
    pub state: NodeState,
    /// Tasks of the service running there now.
    pub tasks: usize,
    /// The mounts re-owned on this node (`volume data -> /data`).
    pub mounts: Vec<String>,
}

/// Whether `node` satisfies every constraint.
///
/// Errors: a constraint unroot cannot evaluate (an unknown key, no operator), named, so the
/// preview can say it does not know where the tasks may run.
pub fn allows(constraints: &[String], node: &NodeRef) -> Result<bool, String> {
    for c in constraints {
        let (key, negate, value) = match (c.split_once("!="), c.split_once("==")) {
            (Some((k, v)), _) => (k.trim(), true, v.trim()),
            (None, Some((k, v))) => (k.trim(), false, v.trim()),
            (None, None) => return Err(format!("constraint `{c}` has no == or !=")),
        };
        let have = fact(key, node).ok_or_else(|| format!("constraint `{c}`: unroot does not know `{key}`"))?;
        let equal = have.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(value));
        if equal == negate {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A node's value for a constraint key: `Some(None)` for a label the node lacks, `None` for a
/// key unroot does not know.
fn fact(key: &str, node: &NodeRef) -> Option<Option<String>> {
    match key {
        "node.id" => Some(Some(node.id.clone())),
        "node.hostname" => Some(Some(node.hostname.clone())),
        "node.role" => Some(Some(node.role.to_string())),
        k => {
            if let Some(label) = k.strip_prefix("node.labels.") {
                Some(node.labels.get(label).cloned())
            } else {
                k.strip_prefix("engine.labels.").map(|label| node.engine_labels.get(label).cloned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::swarm::{Availability, NodeRole};

    fn node(role: &str, hostname: &str, labels: &[(&str, &str)]) -> NodeRef {
        NodeRef {
            id: format!("id-{hostname}"),
            hostname: hostname.into(),
            role: NodeRole::parse(role),
            state: NodeState::Ready,
            availability: Availability::Active,
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            engine_labels: Default::default(),
        }
    }

    #[test]
    fn constraints_as_swarm_reads_them() {
        let w = node("worker", "w1", &[("disk", "ssd")]);
        let c = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(allows(&[], &w).unwrap());
        assert!(allows(&c(&["node.role==worker"]), &w).unwrap());
        assert!(allows(&c(&["node.role == Worker"]), &w).unwrap(), "case and blanks do not matter");
        assert!(!allows(&c(&["node.role!=worker"]), &w).unwrap());
        assert!(allows(&c(&["node.labels.disk==ssd", "node.hostname!=w2"]), &w).unwrap());
        assert!(!allows(&c(&["node.labels.zone==a"]), &w).unwrap(), "a missing label does not equal");
        assert!(allows(&c(&["node.labels.zone!=a"]), &w).unwrap(), "and differs");
        assert!(allows(&c(&["node.platform.os==linux"]), &w).unwrap_err().contains("node.platform.os"));
        assert!(allows(&c(&["node.role"]), &w).is_err());
    }
}
