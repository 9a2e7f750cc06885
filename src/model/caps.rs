//! Linux capabilities as Docker names them.

use crate::model::spelling;

/// A capability as Docker compares it: upper case, without `CAP_` (`net_raw` and
/// `CAP_NET_RAW` are `NET_RAW`; `all` is `ALL`).
pub fn normalize_cap(cap: &str) -> String {
    let up = cap.trim().to_ascii_uppercase();
    up.strip_prefix("CAP_").map(str::to_string).unwrap_or(up)
}

/// The capabilities Docker grants every container unless it drops them (moby's
/// `DefaultCapabilities`), as the CIS Docker Benchmark's 5.4 lists them: adding one of
/// these grants nothing a container did not have.
pub const DOCKER_DEFAULT_CAPS: [&str; 14] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Every capability Docker takes in `--cap-add`/`--cap-drop` (moby's
/// `caps.GetAllCapabilities()`: the kernel's list, `CAP_CHOWN` (0) to
/// `CAP_CHECKPOINT_RESTORE` (40)), without `CAP_`, in the kernel's order.
pub const DOCKER_KNOWN_CAPS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Why Docker would refuse a capability name a plan gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapFault {
    /// Empty, or only spaces.
    Empty,
    /// Spaces around the name: Docker takes the name as written.
    Spaces,
    /// `CAP_ALL`: Docker knows `ALL` only without the prefix.
    PrefixedAll,
    /// Not a capability; the nearest known name, if one is close.
    Unknown(Option<&'static str>),
}

/// The name Docker knows `cap` by, normalized (`net_raw`, `CAP_NET_RAW` → `NET_RAW`; `all`
/// → `ALL`), as moby's `NormalizeLegacyCapabilities` takes names: any case, with or without
/// `CAP_`. Spaces around the name, `CAP_ALL` and unknown names are refused.
pub fn known_cap(cap: &str) -> Result<String, CapFault> {
    if cap.trim().is_empty() {
        return Err(CapFault::Empty);
    }
    if cap.trim() != cap {
        return Err(CapFault::Spaces);
    }
    let name = normalize_cap(cap);
    if name == "ALL" {
        return if cap.eq_ignore_ascii_case("ALL") { Ok(name) } else { Err(CapFault::PrefixedAll) };
    }
    if DOCKER_KNOWN_CAPS.contains(&name.as_str()) {
        return Ok(name);
    }
    let mut known: Vec<&'static str> = DOCKER_KNOWN_CAPS.to_vec();
    known.push("ALL");
    Err(CapFault::Unknown(spelling::nearest(&name, &known)))
}

/// Whether adding `cap` (any case, with or without `CAP_`) grants more than Docker's
/// defaults: `NET_ADMIN` and `ALL` do, `chown` and `CAP_NET_RAW` do not.
pub fn beyond_docker_defaults(cap: &str) -> bool {
    let cap = normalize_cap(cap);
    !DOCKER_DEFAULT_CAPS.contains(&cap.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_capability_in_any_spelling_grants_nothing_more() {
        for cap in ["CHOWN", "chown", "CAP_NET_BIND_SERVICE", "cap_net_raw", " SETUID "] {
            assert!(!beyond_docker_defaults(cap), "{cap}");
        }
        for cap in ["NET_ADMIN", "cap_sys_admin", "ALL", "all", "SYS_PTRACE", "DAC_READ_SEARCH"] {
            assert!(beyond_docker_defaults(cap), "{cap}");
        }
    }

    #[test]
    fn docker_knows_the_kernels_41_capabilities_and_all() {
        assert_eq!(DOCKER_KNOWN_CAPS.len(), 41);
        assert_eq!((DOCKER_KNOWN_CAPS[0], DOCKER_KNOWN_CAPS[40]), ("CHOWN", "CHECKPOINT_RESTORE"));
        for cap in ["AUDIT_READ", "BPF", "PERFMON", "CHECKPOINT_RESTORE", "SYS_ADMIN", "LEASE"] {
            assert!(DOCKER_KNOWN_CAPS.contains(&cap), "{cap}");
        }
        for cap in DOCKER_DEFAULT_CAPS {
            assert!(DOCKER_KNOWN_CAPS.contains(&cap), "the default {cap} is known");
        }
        let mut sorted = DOCKER_KNOWN_CAPS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 41, "no name twice");
    }

    #[test]
    fn a_known_capability_in_any_case_with_or_without_cap_is_its_normal_name() {
        for (cap, normal) in [
            ("ALL", "ALL"),
            ("all", "ALL"),
            ("All", "ALL"),
            ("cap_net_admin", "NET_ADMIN"),
            ("CAP_CHOWN", "CHOWN"),
            ("Net_Bind_Service", "NET_BIND_SERVICE"),
            ("checkpoint_restore", "CHECKPOINT_RESTORE"),
        ] {
            assert_eq!(known_cap(cap).as_deref(), Ok(normal), "{cap}");
        }
    }

    #[test]
    fn unknown_names_are_refused_with_the_nearest_known_one() {
        assert_eq!(known_cap("NET_BIND"), Err(CapFault::Unknown(Some("NET_BIND_SERVICE"))));
        assert_eq!(known_cap("cap_net_bind"), Err(CapFault::Unknown(Some("NET_BIND_SERVICE"))));
        assert_eq!(known_cap("NET_ADMN"), Err(CapFault::Unknown(Some("NET_ADMIN"))));
        assert_eq!(known_cap("SYS_ADMINS"), Err(CapFault::Unknown(Some("SYS_ADMIN"))));
        assert_eq!(known_cap("all the things"), Err(CapFault::Unknown(None)));
        assert_eq!(known_cap("WHATEVER"), Err(CapFault::Unknown(None)));
        assert_eq!(known_cap(" NET_RAW"), Err(CapFault::Spaces));
        assert_eq!(known_cap("NET_RAW "), Err(CapFault::Spaces));
        assert_eq!(known_cap(""), Err(CapFault::Empty));
        assert_eq!(known_cap("  "), Err(CapFault::Empty));
        assert_eq!(known_cap("CAP_ALL"), Err(CapFault::PrefixedAll));
    }
}
