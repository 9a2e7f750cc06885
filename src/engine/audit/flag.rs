//! The audit's risk flags (SPEC §7) as a type. Each is written (`Display`, and so in JSON)
//! as the text the audit has always printed: `rootfs-writable`, `cap-add:NET_ADMIN`,
//! `control-missing:read_only`, …; code matches on the variant, never on the text.

use std::fmt;

use serde::{Serialize, Serializer};

use super::{Missing, normalize_cap};

/// A compensating control a `keep_root` exception plans and lacks, as its flag names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// `cap_drop=CAP`, the capability normalized (`ALL`, `NET_RAW`).
    CapDrop(String),
    /// `read_only`.
    ReadOnly,
    /// `no_new_privileges`.
    NoNewPrivileges,
    /// `security_opt=OPTION`, the option as the plan writes it.
    SecurityOpt(String),
}

impl Control {
    /// The control the audit flags for a missing one; `None` for those it does not flag (a
    /// capability to add, a tmpfs).
    pub fn flagged(m: Missing) -> Option<Control> {
        match m {
            Missing::CapDrop(cap) => Some(Control::CapDrop(normalize_cap(&cap))),
            Missing::CapAdd(_) | Missing::Tmpfs(_) => None,
            Missing::ReadOnly => Some(Control::ReadOnly),
            Missing::NoNewPrivileges => Some(Control::NoNewPrivileges),
            Missing::SecurityOpt(o) => Some(Control::SecurityOpt(o)),
        }
    }
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Control::CapDrop(cap) => write!(f, "cap_drop={cap}"),
            Control::ReadOnly => f.write_str("read_only"),
            Control::NoNewPrivileges => f.write_str("no_new_privileges"),
            Control::SecurityOpt(o) => write!(f, "security_opt={o}"),
        }
    }
}

/// One risk flag of a container or a Swarm service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flag {
    /// `privileged`: it runs with `--privileged`.
    Privileged,
    /// `docker.sock`: the Docker socket is mounted into it.
    DockerSock,
    /// `cap-add:CAP`: it adds the capability (normalized).
    CapAdd(String),
    /// `rootfs-writable`.
    RootfsWritable,
    /// `no-new-privileges-missing`.
    NoNewPrivilegesMissing,
    /// `control-missing:CONTROL`: a control its `keep_root` exception plans is missing.
    ControlMissing(Control),
    /// `root-owned-mount:DEST`: a writable volume or bind mount whose root uid 0 owns.
    RootOwnedMount(String),
    /// `not-running`: a container that is not running.
    NotRunning,
    /// `no-task-running`: a service none of whose tasks runs.
    NoTaskRunning,
    /// `tasks-on-other-nodes:N`: running tasks whose processes this manager cannot see.
    TasksOnOtherNodes(usize),
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flag::Privileged => f.write_str("privileged"),
            Flag::DockerSock => f.write_str("docker.sock"),
            Flag::CapAdd(cap) => write!(f, "cap-add:{cap}"),
            Flag::RootfsWritable => f.write_str("rootfs-writable"),
            Flag::NoNewPrivilegesMissing => f.write_str("no-new-privileges-missing"),
            Flag::ControlMissing(control) => write!(f, "control-missing:{control}"),
            Flag::RootOwnedMount(dest) => write!(f, "root-owned-mount:{dest}"),
            Flag::NotRunning => f.write_str("not-running"),
            Flag::NoTaskRunning => f.write_str("no-task-running"),
            Flag::TasksOnOtherNodes(n) => write!(f, "tasks-on-other-nodes:{n}"),
        }
    }
}

impl Serialize for Flag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The flags of one container or service, in the order the audit raised them (a JSON list
/// of their texts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Flags(pub Vec<Flag>);

impl Flags {
    /// Some control its `keep_root` exception plans is missing.
    pub fn control_missing(&self) -> bool {
        self.0.iter().any(|f| matches!(f, Flag::ControlMissing(_)))
    }

    /// The flags' texts, `sep` between them (as the audit's table shows them).
    pub fn join(&self, sep: &str) -> String {
        self.texts().join(sep)
    }

    /// Each flag's text.
    pub fn texts(&self) -> Vec<String> {
        self.0.iter().map(Flag::to_string).collect()
    }
}

impl std::ops::Deref for Flags {
    type Target = [Flag];

    fn deref(&self) -> &[Flag] {
        &self.0
    }
}

impl From<Vec<Flag>> for Flags {
    fn from(flags: Vec<Flag>) -> Flags {
        Flags(flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_flag_is_written_as_the_audit_always_wrote_it() {
        let flags = Flags(vec![
            Flag::Privileged,
            Flag::DockerSock,
            Flag::CapAdd("NET_ADMIN".into()),
            Flag::RootfsWritable,
            Flag::NoNewPrivilegesMissing,
            Flag::ControlMissing(Control::CapDrop("ALL".into())),
            Flag::ControlMissing(Control::ReadOnly),
            Flag::ControlMissing(Control::NoNewPrivileges),
            Flag::ControlMissing(Control::SecurityOpt("seccomp=unconfined".into())),
            Flag::RootOwnedMount("/data".into()),
            Flag::NotRunning,
            Flag::NoTaskRunning,
            Flag::TasksOnOtherNodes(2),
        ]);
        let texts = [
            "privileged",
            "docker.sock",
            "cap-add:NET_ADMIN",
            "rootfs-writable",
            "no-new-privileges-missing",
            "control-missing:cap_drop=ALL",
            "control-missing:read_only",
            "control-missing:no_new_privileges",
            "control-missing:security_opt=seccomp=unconfined",
            "root-owned-mount:/data",
            "not-running",
            "no-task-running",
            "tasks-on-other-nodes:2",
        ];
        assert_eq!(flags.texts(), texts);
        assert_eq!(serde_json::to_value(&flags).unwrap(), serde_json::json!(texts));
        assert_eq!(flags.join(" "), texts.join(" "));
        assert!(flags.control_missing());
        assert!(!Flags(vec![Flag::RootfsWritable, Flag::NotRunning]).control_missing());
    }

    #[test]
    fn a_missing_capability_to_add_or_tmpfs_is_not_flagged() {
        assert_eq!(Control::flagged(Missing::CapDrop("cap_net_raw".into())), Some(Control::CapDrop("NET_RAW".into())));
        assert_eq!(Control::flagged(Missing::CapAdd("NET_RAW".into())), None);
        assert_eq!(Control::flagged(Missing::Tmpfs("/tmp".into())), None);
    }
}
