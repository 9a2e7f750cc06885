//! Swarm's words for a node (its role, its state, its availability) and for what Swarm wants
//! of a task (its desired state), as enums: parsed from Docker's word, shown and serialized
//! as that word. A word Docker adds later is kept as it was said (`Other`).

use std::fmt;

/// Declares an enum of Docker's words: one variant per word named here, and `Other` for any
/// other word (the empty word when Docker said none, which is also its default).
macro_rules! docker_words {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $word:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A word this version of unroot does not know, as Docker said it (empty: none).
            Other(String),
        }

        impl $name {
            /// From Docker's word.
            pub fn parse(word: &str) -> $name {
                match word {
                    $($word => $name::$variant,)+
                    other => $name::Other(other.to_string()),
                }
            }

            /// Docker's word.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $word,)+
                    $name::Other(word) => word,
                }
            }
        }

        impl Default for $name {
            /// No word: Docker said none.
            fn default() -> $name {
                $name::Other(String::new())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

docker_words! {
    /// A node's role in the swarm (`Spec.Role`).
    NodeRole {
        Manager = "manager",
        Worker = "worker",
    }
}

docker_words! {
    /// Whether a node is up, as the managers see it (`Status.State`).
    NodeState {
        Ready = "ready",
        Down = "down",
        Disconnected = "disconnected",
        Unknown = "unknown",
    }
}

docker_words! {
    /// Whether the scheduler may put tasks on a node (`Spec.Availability`).
    Availability {
        Active = "active",
        /// No new task; those it runs keep running.
        Pause = "pause",
        /// No task: those it ran are moved away.
        Drain = "drain",
    }
}

docker_words! {
    /// What Swarm wants of a task (`DesiredState`).
    DesiredState {
        Running = "running",
        Ready = "ready",
        Accepted = "accepted",
        Complete = "complete",
        Shutdown = "shutdown",
        Remove = "remove",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_read_and_show_as_docker_says_them() {
        assert_eq!(NodeState::parse("ready"), NodeState::Ready);
        assert_eq!(Availability::parse("drain"), Availability::Drain);
        assert_eq!(NodeRole::parse("worker").to_string(), "worker");
        assert_eq!(DesiredState::parse("shutdown"), DesiredState::Shutdown);
        // A word Docker adds later, and no word at all, are kept as said.
        assert_eq!(NodeState::parse("rebooting"), NodeState::Other("rebooting".into()));
        assert_eq!(NodeState::parse("rebooting").to_string(), "rebooting");
        assert_eq!(NodeState::default().to_string(), "");
        assert_eq!(serde_json::to_value(NodeState::Down).unwrap(), serde_json::json!("down"));
        assert_eq!(serde_json::to_value(Availability::parse("x")).unwrap(), serde_json::json!("x"));
    }
}
