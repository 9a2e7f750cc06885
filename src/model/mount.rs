//! The kind of a mount, as Docker names it (`Type` in an inspect or a service spec).

use serde::{Deserialize, Serialize};

/// A mount's kind. Docker's word for a kind this version does not know is kept (`Other`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MountKind {
    /// A named or anonymous volume.
    Volume,
    /// A host path.
    Bind,
    /// Memory, gone with the container.
    Tmpfs,
    /// A Windows named pipe.
    Npipe,
    /// A cluster volume (Swarm CSI).
    Cluster,
    Other(String),
}

impl MountKind {
    /// From Docker's word.
    pub fn parse(word: &str) -> MountKind {
        match word {
            "volume" => MountKind::Volume,
            "bind" => MountKind::Bind,
            "tmpfs" => MountKind::Tmpfs,
            "npipe" => MountKind::Npipe,
            "cluster" => MountKind::Cluster,
            other => MountKind::Other(other.to_string()),
        }
    }

    /// Docker's word.
    pub fn as_str(&self) -> &str {
        match self {
            MountKind::Volume => "volume",
            MountKind::Bind => "bind",
            MountKind::Tmpfs => "tmpfs",
            MountKind::Npipe => "npipe",
            MountKind::Cluster => "cluster",
            MountKind::Other(word) => word,
        }
    }

    /// Whether it keeps data on the host that unroot may re-own: a volume or a bind.
    pub fn holds_data(&self) -> bool {
        matches!(self, MountKind::Volume | MountKind::Bind)
    }
}

impl std::fmt::Display for MountKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for MountKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MountKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<MountKind, D::Error> {
        Ok(MountKind::parse(&String::deserialize(d)?))
    }
}

/// Whether a mount is the Docker socket, for what unroot decides about it (never re-own it,
/// keep its container root): its source or its destination ends in `docker.sock`.
pub fn is_docker_sock(source: &str, destination: &str) -> bool {
    source.ends_with("docker.sock") || destination.ends_with("docker.sock")
}

/// Whether a mount says `docker.sock` anywhere (its source, its destination, its volume's
/// name): what the CIS Docker Benchmark's 5.32 flags, and so the audit's `docker.sock` flag.
pub fn mentions_docker_sock(source: &str, destination: &str, name: Option<&str>) -> bool {
    [Some(source), Some(destination), name].into_iter().flatten().any(|s| s.contains("docker.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_reads_and_writes_as_dockers_word() {
        for word in ["volume", "bind", "tmpfs", "npipe", "cluster", "image"] {
            let kind = MountKind::parse(word);
            assert_eq!(kind.as_str(), word);
            assert_eq!(serde_json::to_value(&kind).unwrap(), word);
            assert_eq!(serde_json::from_value::<MountKind>(word.into()).unwrap(), kind);
        }
        assert_eq!(MountKind::parse("image"), MountKind::Other("image".into()));
        assert!(MountKind::Volume.holds_data() && MountKind::Bind.holds_data() && !MountKind::Tmpfs.holds_data());
    }

    #[test]
    fn the_docker_socket_is_its_file_name_for_decisions_and_its_word_for_the_flag() {
        assert!(is_docker_sock("/var/run/docker.sock", "/var/run/docker.sock"));
        assert!(is_docker_sock("/run/user/1000/docker.sock", "/sock"));
        assert!(is_docker_sock("/srv/x", "/host/docker.sock"));
        // A directory that only says the word is data like any other to re-own...
        assert!(!is_docker_sock("/srv/docker.sockets/a", "/data"));
        // ...and the benchmark's 5.32 flags it all the same.
        assert!(mentions_docker_sock("/srv/docker.sockets/a", "/data", None));
        assert!(mentions_docker_sock("/var/lib/docker/volumes/v/_data", "/s", Some("docker.sock-share")));
        assert!(!mentions_docker_sock("/var/lib/docker/volumes/v/_data", "/data", Some("v")));
    }
}
