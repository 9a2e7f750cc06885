//! unroot's own short-lived containers (the probes that read an image's `/etc/passwd`, the
//! re-owning helpers) and the sweep that removes those a killed unroot left behind.
//!
//! Each carries a label naming the process that made it (host, pid and the pid's start
//! time, so a reused pid is not mistaken for the maker). A command that takes the state
//! directory's lock removes every such container whose maker is gone; containers of a live
//! unroot (another plan, another state directory) are left alone.

use crate::docker::{ContainerRef, DockerPort, Removal};

/// Label on a probe container (created, never started, removed at once).
pub const LABEL_PROBE: &str = "io.unroot.probe";
/// Label on a re-owning helper container; its value is the run id.
pub const LABEL_HELPER: &str = "io.unroot.helper";
/// Label naming the process that made a probe or helper: `host/pid/start`.
pub const LABEL_MAKER: &str = "io.unroot.maker";

/// A probe or helper made by a maker this old is gone whatever its label says (on another
/// host, unroot cannot look at the process): none lives longer than a re-own.
const STALE_AFTER_SECS: i64 = 24 * 3600;

fn host() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// The start time of a process (field 22 of `/proc/PID/stat`), `None` when it is gone.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This process as the maker label names it.
pub fn maker() -> String {
    let pid = std::process::id();
    format!("{}/{pid}/{}", host(), start_time(pid).unwrap_or(0))
}

/// Whether the maker a label names is certainly gone.
fn maker_gone(label: &str, created: i64, now: i64) -> bool {
    let mut parts = label.rsplitn(3, '/');
    let (Some(start), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return now - created > STALE_AFTER_SECS;
    };
    if host != self::host() {
        return now - created > STALE_AFTER_SECS;
    }
    match (pid.parse::<u32>().ok(), start.parse::<u64>().ok()) {
        (Some(pid), Some(start)) => start_time(pid) != Some(start),
        _ => true,
    }
}

/// Whether a listed container is a probe or helper whose maker is gone.
fn is_orphan(c: &ContainerRef, now: i64) -> bool {
    let ours = c.labels.contains_key(LABEL_PROBE) || c.labels.contains_key(LABEL_HELPER);
    ours && match c.labels.get(LABEL_MAKER) {
        Some(m) => maker_gone(m, c.created, now),
        // Made before the maker label existed: only a probe is safe to call orphaned (a
        // helper of that age may belong to a run in progress elsewhere).
        None => c.labels.contains_key(LABEL_PROBE) && now - c.created > 60,
    }
}

/// Removes the probes and helpers whose maker is gone; returns their names.
///
/// Guarantees: idempotent; never touches a container that is not unroot's own probe or
/// helper, nor one whose maker still runs. Errors are not fatal: what cannot be listed or
/// removed now is left for the next command.
pub async fn sweep(port: &impl DockerPort) -> Vec<String> {
    let Ok(list) = port.list_containers().await else {
        return Vec::new();
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut removed = Vec::new();
    for c in list.iter().filter(|c| is_orphan(c, now)) {
        if port.remove_container(&c.id, Removal::WithAnonymousVolumes).await.is_ok() {
            tracing::info!(container = %c.name, "removed a probe or helper left by an unroot that is gone");
            removed.push(c.name.clone());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(labels: &[(&str, &str)], created: i64) -> ContainerRef {
        ContainerRef {
            id: "x".into(),
            name: "svc.unroot-probe".into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            created,
            ..ContainerRef::default()
        }
    }

    #[test]
    fn only_probes_and_helpers_of_a_gone_maker_are_orphans() {
        let now = 1_000_000;
        let me = maker();
        assert!(!is_orphan(&container(&[(LABEL_PROBE, "1"), (LABEL_MAKER, &me)], now), now), "this process lives");
        let dead = format!("{}/{}/1", host(), u32::MAX - 1);
        assert!(is_orphan(&container(&[(LABEL_PROBE, "1"), (LABEL_MAKER, &dead)], now), now));
        assert!(is_orphan(&container(&[(LABEL_HELPER, "run"), (LABEL_MAKER, &dead)], now), now));
        let reused = format!("{}/{}/{}", host(), std::process::id(), start_time(std::process::id()).unwrap() + 1);
        assert!(is_orphan(&container(&[(LABEL_PROBE, "1"), (LABEL_MAKER, &reused)], now), now), "a reused pid");
        assert!(!is_orphan(&container(&[(LABEL_MAKER, &dead)], now), now), "not a probe or helper");
        let elsewhere = "other-host/1/1";
        assert!(!is_orphan(&container(&[(LABEL_PROBE, "1"), (LABEL_MAKER, elsewhere)], now - 60), now));
        assert!(is_orphan(&container(&[(LABEL_PROBE, "1"), (LABEL_MAKER, elsewhere)], now - 2 * 86400), now));
    }
}
