//! A container's (or a Swarm service's) security posture as its configuration shows it: the
//! one place the audit's flags, `report`'s before and now, and the CIS findings read them.

use serde::{Deserialize, Serialize};

use super::{Flag, normalize_cap};
use crate::docker::Inspect;
use crate::docker::swarm::ServiceInspect;
use crate::model::caps::beyond_docker_defaults;
use crate::model::mount::mentions_docker_sock;

/// What a container is configured with, as far as running as root and its risks go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posture {
    /// `Config.User` (`ContainerSpec.User`); empty means the image's own USER.
    pub configured_user: String,
    /// Capabilities added, normalized (`NET_ADMIN`).
    pub cap_add: Vec<String>,
    /// Capabilities dropped, normalized (`ALL`).
    pub cap_drop: Vec<String>,
    pub read_only: bool,
    pub no_new_privileges: bool,
    pub privileged: bool,
    /// The Docker socket is mounted into it.
    pub docker_sock: bool,
}

fn normalized(caps: Vec<String>) -> Vec<String> {
    caps.iter().map(|c| normalize_cap(c)).collect()
}

impl Posture {
    pub fn of_container(c: &Inspect) -> Posture {
        Posture {
            configured_user: c.configured_user().to_string(),
            cap_add: normalized(c.cap_add()),
            cap_drop: normalized(c.cap_drop()),
            read_only: c.read_only_rootfs(),
            no_new_privileges: c.no_new_privileges(),
            privileged: c.privileged(),
            docker_sock: c.mounts().iter().any(crate::docker::Mount::mentions_docker_sock),
        }
    }

    /// A service's tasks as its spec configures them (a task is never privileged).
    pub fn of_service(s: &ServiceInspect) -> Posture {
        Posture {
            configured_user: s.configured_user().to_string(),
            cap_add: normalized(s.cap_add()),
            cap_drop: normalized(s.cap_drop()),
            read_only: s.read_only(),
            no_new_privileges: s.no_new_privileges(),
            privileged: false,
            docker_sock: s.mounts().iter().any(|m| mentions_docker_sock(&m.source, &m.target, None)),
        }
    }

    /// The audit's risk flags (SPEC §7) this posture raises.
    pub fn flags(&self) -> Vec<Flag> {
        let mut flags = Vec::new();
        if self.privileged {
            flags.push(Flag::Privileged);
        }
        if self.docker_sock {
            flags.push(Flag::DockerSock);
        }
        // Adding one of Docker's defaults grants nothing it did not have (a hardened
        // container drops ALL and adds back a default it needs).
        let beyond = self.cap_add.iter().filter(|cap| beyond_docker_defaults(cap));
        flags.extend(beyond.map(|cap| Flag::CapAdd(cap.clone())));
        if !self.read_only {
            flags.push(Flag::RootfsWritable);
        }
        if !self.no_new_privileges {
            flags.push(Flag::NoNewPrivilegesMissing);
        }
        flags
    }
}
