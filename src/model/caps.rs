//! Linux capabilities as Docker names them.

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
}
