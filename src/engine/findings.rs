//! The kinds of finding unroot reports about a container or a Swarm service (its user and
//! the risk flags the audit sees), each mapped to its CIS Docker Benchmark recommendation:
//! the one place the audit's SARIF log and the report take them from. Pure.

use crate::engine::audit::{Class, Flag};

/// The CIS Docker Benchmark edition whose ids and audit procedures unroot follows: the one
/// docker-bench-security implements (its `tests/4_container_images.sh` and
/// `tests/5_container_runtime.sh`). Named in every output that carries an id.
pub const CIS_EDITION: &str = "CIS Docker Benchmark v1.6.0";

/// The benchmark's name and [`CIS_EDITION`]'s version apart (a SARIF taxonomy names them so).
pub const CIS_BENCHMARK: &str = "CIS Docker Benchmark";
pub const CIS_VERSION: &str = "1.6.0";

/// A kind of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    RunsAsRoot,
    /// Configured to start as root; its entrypoint drops to another user (gosu-style).
    ConfiguredRoot,
    ExceptionControlMissing,
    Privileged,
    CapabilityAdded,
    RootfsWritable,
    NoNewPrivilegesMissing,
    DockerSocket,
}

/// Every rule, in the order of the log's rule list.
pub const RULES: [Rule; 8] = [
    Rule::RunsAsRoot,
    Rule::ConfiguredRoot,
    Rule::ExceptionControlMissing,
    Rule::Privileged,
    Rule::CapabilityAdded,
    Rule::RootfsWritable,
    Rule::NoNewPrivilegesMissing,
    Rule::DockerSocket,
];

impl Rule {
    pub fn id(self) -> &'static str {
        match self {
            Rule::RunsAsRoot => "UNROOT001",
            Rule::ExceptionControlMissing => "UNROOT002",
            Rule::Privileged => "UNROOT003",
            Rule::CapabilityAdded => "UNROOT004",
            Rule::RootfsWritable => "UNROOT005",
            Rule::NoNewPrivilegesMissing => "UNROOT006",
            Rule::DockerSocket => "UNROOT007",
            Rule::ConfiguredRoot => "UNROOT008",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Rule::RunsAsRoot => "RunsAsRoot",
            Rule::ExceptionControlMissing => "ExceptionControlMissing",
            Rule::Privileged => "Privileged",
            Rule::CapabilityAdded => "CapabilityAdded",
            Rule::RootfsWritable => "RootFilesystemWritable",
            Rule::NoNewPrivilegesMissing => "NoNewPrivilegesMissing",
            Rule::DockerSocket => "DockerSocketMounted",
            Rule::ConfiguredRoot => "ConfiguredAsRoot",
        }
    }

    /// The recommendation of [`CIS_EDITION`] it is, with that edition's audit procedure as
    /// docker-bench-security runs it; `None` for unroot's own (a `keep_root` exception's
    /// missing control).
    pub fn cis(self) -> Option<&'static str> {
        Some(match self {
            // Config.User empty, `0` or `root`; unroot also reads `0:0`, `root:root` and a
            // name the image maps to uid 0, and the processes' uids.
            Rule::RunsAsRoot | Rule::ConfiguredRoot => "4.1",
            // HostConfig.CapAdd beyond Docker's fourteen defaults.
            Rule::CapabilityAdded => "5.4",
            // HostConfig.Privileged.
            Rule::Privileged => "5.5",
            // HostConfig.ReadonlyRootfs false.
            Rule::RootfsWritable => "5.13",
            // HostConfig.SecurityOpt without no-new-privileges.
            Rule::NoNewPrivilegesMissing => "5.26",
            // `docker.sock` in the container's mounts.
            Rule::DockerSocket => "5.32",
            Rule::ExceptionControlMissing => return None,
        })
    }

    /// The title of its recommendation in [`CIS_EDITION`].
    pub fn cis_title(self) -> Option<&'static str> {
        Some(match self {
            Rule::RunsAsRoot | Rule::ConfiguredRoot => "Ensure that a user for the container has been created",
            Rule::CapabilityAdded => "Ensure that Linux kernel capabilities are restricted within containers",
            Rule::Privileged => "Ensure that privileged containers are not used",
            Rule::RootfsWritable => "Ensure that the container's root filesystem is mounted as read only",
            Rule::NoNewPrivilegesMissing => {
                "Ensure that the container is restricted from acquiring additional privileges"
            }
            Rule::DockerSocket => "Ensure that the Docker socket is not mounted inside any containers",
            Rule::ExceptionControlMissing => return None,
        })
    }

    /// Its CIS id as a report's cell shows it; `-` for unroot's own rules.
    pub fn cis_label(self) -> &'static str {
        self.cis().unwrap_or("-")
    }

    /// An error (root, privileged, the socket, a missing control), else a warning.
    pub fn is_error(self) -> bool {
        matches!(self, Rule::RunsAsRoot | Rule::ExceptionControlMissing | Rule::Privileged | Rule::DockerSocket)
    }

    /// GitHub's `security-severity` (0–10).
    pub fn severity(self) -> &'static str {
        match self {
            Rule::Privileged | Rule::DockerSocket => "9.0",
            Rule::RunsAsRoot => "8.0",
            Rule::ConfiguredRoot => "5.0",
            Rule::ExceptionControlMissing => "7.0",
            Rule::CapabilityAdded => "6.0",
            Rule::RootfsWritable | Rule::NoNewPrivilegesMissing => "4.0",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Rule::RunsAsRoot => "The container runs as root",
            Rule::ConfiguredRoot => "The container starts as root; its entrypoint drops to another user",
            Rule::ExceptionControlMissing => "A documented root exception lacks a control its plan requires",
            Rule::Privileged => "The container runs privileged",
            Rule::CapabilityAdded => "The container adds a Linux capability",
            Rule::RootfsWritable => "The container's root filesystem is writable",
            Rule::NoNewPrivilegesMissing => "The container may gain privileges (no-new-privileges is not set)",
            Rule::DockerSocket => "The Docker socket is mounted into the container",
        }
    }

    /// How unroot fixes it.
    pub fn help(self) -> &'static str {
        match self {
            Rule::RunsAsRoot => {
                "Move it to a non-root user: `unroot init` writes a plan with the user and the volumes to re-own, `unroot apply PLAN --day N` switches it in health-gated steps and rolls back by itself on a failure. A container that must stay root is a `keep_root` exception of the plan, with its reason and controls."
            }
            Rule::ConfiguredRoot => {
                "Start it as the user its entrypoint switches to: `unroot init` names that user, and `unroot apply PLAN --day N` sets it, re-owning its volumes, health-gated. Until then anything that runs before the switch (and a `docker exec`) is root."
            }
            Rule::ExceptionControlMissing => {
                "The plan keeps this container as root on condition of controls it does not have now: apply the day again (`unroot apply PLAN --day N`) so it is recreated with them, or change the exception."
            }
            Rule::Privileged => {
                "Recreate it without --privileged, granting only the capabilities it needs (`cap_add` in the unroot plan), or make it a documented `keep_root` exception."
            }
            Rule::CapabilityAdded => {
                "Drop the capability if the service does not need it: `cap_drop` in the unroot plan recreates the container without it, health-gated."
            }
            Rule::RootfsWritable => {
                "Set `read_only = true` for the service in the unroot plan (with tmpfs or volumes for the paths it writes)."
            }
            Rule::NoNewPrivilegesMissing => "Set `no_new_privileges = true` for the service in the unroot plan.",
            Rule::DockerSocket => {
                "A container with the Docker socket controls the host. Remove the mount if it is not needed; otherwise keep it as a documented `keep_root` exception with read-only root and dropped capabilities, and unroot never re-owns the socket."
            }
        }
    }
}

/// One finding: the rule, what it says of the object, the exception's reason when the
/// plan documents it as accepted, and the CIS id it counts under.
pub struct Finding {
    pub rule: Rule,
    pub text: String,
    pub accepted: Option<String>,
    /// The rule's CIS id when the benchmark's audit procedure, as docker-bench-security runs
    /// it, flags this container too: it lists running containers only, and its 4.1 compares
    /// `Config.User`'s text with empty, `0` and `root`. unroot finds more (a stopped
    /// container, `0:0`, a name the image maps to uid 0, a process at uid 0): those findings
    /// stand under the same rule without an id, so each id flags what docker-bench flags.
    pub cis: Option<&'static str>,
}

/// Whether the benchmark's procedures see the object, and whether its 4.1 reads the
/// configured user as root.
fn benchmark_ids(configured_user: &str, flags: &[Flag]) -> impl Fn(Rule) -> Option<&'static str> {
    let listed = !flags.iter().any(|f| matches!(f, Flag::NotRunning));
    let root_by_text = matches!(configured_user, "" | "0" | "root");
    move |rule: Rule| {
        let id = rule.cis().filter(|_| listed)?;
        (id != "4.1" || root_by_text).then_some(id)
    }
}

/// The findings of one object, from its class, flags and exception.
pub fn findings(
    class: Class,
    configured_user: &str,
    uids: &[u32],
    flags: &[Flag],
    exception: Option<&str>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let cis = benchmark_ids(configured_user, flags);
    let shown = |u: &str| if u.is_empty() { "(image default)".to_string() } else { u.to_string() };
    match class {
        Class::Root => out.push(Finding {
            rule: Rule::RunsAsRoot,
            text: format!("configured user {}, process uids {uids:?}", shown(configured_user)),
            accepted: None,
            cis: cis(Rule::RunsAsRoot),
        }),
        Class::Exception => out.push(Finding {
            rule: Rule::RunsAsRoot,
            text: format!("configured user {}, process uids {uids:?}; a documented exception", shown(configured_user)),
            accepted: Some(exception.unwrap_or("a keep_root exception of the plan").to_string()),
            cis: cis(Rule::RunsAsRoot),
        }),
        Class::DropsRoot => out.push(Finding {
            rule: Rule::ConfiguredRoot,
            text: format!(
                "configured user {}, process uids {uids:?}: its entrypoint drops root",
                shown(configured_user)
            ),
            accepted: None,
            cis: cis(Rule::ConfiguredRoot),
        }),
        Class::NonRoot => {}
    }
    for f in flags {
        let (rule, text) = match f {
            Flag::Privileged => (Rule::Privileged, "runs with --privileged".to_string()),
            Flag::DockerSock => (Rule::DockerSocket, "mounts the Docker socket".to_string()),
            Flag::RootfsWritable => (Rule::RootfsWritable, "its root filesystem is writable".to_string()),
            Flag::NoNewPrivilegesMissing => (Rule::NoNewPrivilegesMissing, "no-new-privileges is not set".to_string()),
            Flag::CapAdd(cap) => (Rule::CapabilityAdded, format!("adds {cap}, beyond Docker's defaults")),
            Flag::ControlMissing(control) => {
                (Rule::ExceptionControlMissing, format!("the exception's control {control} is missing"))
            }
            Flag::RootOwnedMount(_) | Flag::NotRunning | Flag::NoTaskRunning | Flag::TasksOnOtherNodes(_) => continue,
        };
        out.push(Finding { rule, text, accepted: None, cis: cis(rule) });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_flag_is_one_finding_and_an_exception_is_suppressed_with_its_reason() {
        let flags = [
            Flag::Privileged,
            Flag::DockerSock,
            Flag::CapAdd("NET_ADMIN".into()),
            Flag::CapAdd("SYS_TIME".into()),
            Flag::RootfsWritable,
            Flag::NotRunning,
        ];
        let f = findings(Class::Root, "", &[0], &flags, None);
        let rules: Vec<Rule> = f.iter().map(|f| f.rule).collect();
        assert_eq!(
            rules,
            [
                Rule::RunsAsRoot,
                Rule::Privileged,
                Rule::DockerSocket,
                Rule::CapabilityAdded,
                Rule::CapabilityAdded,
                Rule::RootfsWritable
            ]
        );
        let e = findings(
            Class::Exception,
            "0",
            &[0],
            &[Flag::ControlMissing(crate::engine::audit::Control::ReadOnly)],
            Some("needs the socket"),
        );
        assert_eq!(e[0].accepted.as_deref(), Some("needs the socket"));
        assert_eq!(e[1].rule, Rule::ExceptionControlMissing);
        assert!(e[1].accepted.is_none(), "a missing control is never accepted");
        assert!(findings(Class::NonRoot, "1000", &[1000], &[], None).is_empty());
    }

    #[test]
    fn a_finding_counts_under_its_cis_id_only_where_the_benchmark_flags_it_too() {
        let ids = |class, user: &str, flags: &[Flag]| {
            findings(class, user, &[0], flags, None).iter().map(|f| (f.rule, f.cis)).collect::<Vec<_>>()
        };
        for user in ["", "0", "root"] {
            assert_eq!(ids(Class::Root, user, &[]), [(Rule::RunsAsRoot, Some("4.1"))], "{user:?}");
        }
        for user in ["0:0", "root:root", "toor"] {
            assert_eq!(ids(Class::Root, user, &[]), [(Rule::RunsAsRoot, None)], "{user:?}: root all the same");
        }
        assert_eq!(ids(Class::DropsRoot, "", &[]), [(Rule::ConfiguredRoot, Some("4.1"))]);
        // A stopped container is not in the benchmark's list: its findings stand without ids.
        let stopped = ids(Class::Root, "", &[Flag::RootfsWritable, Flag::NotRunning]);
        assert_eq!(stopped, [(Rule::RunsAsRoot, None), (Rule::RootfsWritable, None)]);
        assert_eq!(ids(Class::NonRoot, "1000", &[Flag::RootfsWritable]), [(Rule::RootfsWritable, Some("5.13"))]);
    }

    #[test]
    fn every_rule_names_its_cis_recommendation() {
        let cis: Vec<Option<&str>> = RULES.iter().map(|r| r.cis()).collect();
        let v16 = ["4.1", "4.1", "-", "5.5", "5.4", "5.13", "5.26", "5.32"];
        assert_eq!(cis, v16.map(|id| Some(id).filter(|id| *id != "-")));
        assert!(RULES.iter().all(|r| r.cis().is_some() == r.cis_title().is_some()));
        let ids: std::collections::BTreeSet<&str> = RULES.iter().map(|r| r.id()).collect();
        assert_eq!(ids.len(), RULES.len(), "ids are unique");
    }
}
