//! unroot's own short-lived containers (the probes that read an image's `/etc/passwd`, the
//! re-owning helpers), Swarm services (checks and helper jobs) and configs (their lists), and
//! the sweep that removes those a killed unroot left behind.
//!
//! Each carries a label naming the process that made it (host, pid and the pid's start
//! time, so a reused pid is not mistaken for the maker). A command that takes the state
//! directory's lock removes every such container whose maker is gone; containers of a live
//! unroot (another plan, another state directory) are left alone.

use std::collections::BTreeMap;

use crate::docker::swarm::{ObjectKind, SwarmMembership, SwarmPort};
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

/// Whether labels mark one of unroot's own probes or helpers (a container, a Swarm service
/// or config, a helper job's task container): never audited, reported or planned.
pub fn is_own(labels: &BTreeMap<String, String>) -> bool {
    labels.contains_key(LABEL_PROBE) || labels.contains_key(LABEL_HELPER)
}

/// Whether a listed container is a probe or helper whose maker is gone.
fn is_orphan(c: &ContainerRef, now: i64) -> bool {
    orphaned(&c.labels, c.created, now)
}

/// Whether an object of unroot's (a container, a Swarm service or config) with these labels,
/// created at `created`, is a probe or helper whose maker is gone.
fn orphaned(labels: &BTreeMap<String, String>, created: i64, now: i64) -> bool {
    is_own(labels)
        && match labels.get(LABEL_MAKER) {
            Some(m) => maker_gone(m, created, now),
            // Made before the maker label existed: only a probe is safe to call orphaned (a
            // helper of that age may belong to a run in progress elsewhere).
            None => labels.contains_key(LABEL_PROBE) && now - created > 60,
        }
}

/// Removes the probes and helpers whose maker is gone: containers, and on a Swarm manager
/// the check and helper services and the configs that carried their lists; returns their
/// names.
///
/// Guarantees: idempotent; never touches anything that is not unroot's own probe or
/// helper, nor one whose maker still runs. Errors are not fatal: what cannot be listed or
/// removed now is left for the next command.
pub async fn sweep(port: &(impl DockerPort + SwarmPort)) -> Vec<String> {
    let mut removed = sweep_containers(port).await;
    removed.extend(sweep_swarm(port).await);
    removed
}

/// The Swarm part of [`sweep`]: services first (a config is in use while its job's tasks
/// are), then configs; a config still in use is left for the next command.
async fn sweep_swarm(port: &impl SwarmPort) -> Vec<String> {
    if !matches!(port.membership().await, Ok(SwarmMembership::Manager { .. })) {
        return Vec::new();
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut removed = Vec::new();
    for s in port.list_services().await.unwrap_or_default() {
        if orphaned(&s.labels, s.created, now) && port.remove_service(&s.id).await.is_ok() {
            tracing::info!(service = %s.name, "removed a Swarm check or helper left by an unroot that is gone");
            removed.push(s.name);
        }
    }
    for c in port.list_objects(ObjectKind::Config).await.unwrap_or_default() {
        if orphaned(&c.labels, c.created, now) && port.remove_config(&c.id).await.is_ok() {
            tracing::info!(config = %c.name, "removed a config left by an unroot that is gone");
            removed.push(c.name);
        }
    }
    removed
}

async fn sweep_containers(port: &impl DockerPort) -> Vec<String> {
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

    #[test]
    fn the_swarm_jobs_and_configs_of_a_killed_unroot_are_swept_and_a_live_ones_are_not() {
        use crate::docker::fake::FakeDocker;
        use crate::docker::fake_swarm::FakeSwarm;
        let fake = FakeDocker::default();
        fake.with(|s| s.swarm = Some(FakeSwarm { node_id: "n1".into(), ..Default::default() }));
        let dead = format!("{}/{}/1", host(), u32::MAX - 1);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            for (name, maker) in [("unroot-scan-db-dead", dead.as_str()), ("unroot-scan-db-live", &maker())] {
                let labels = serde_json::json!({(LABEL_HELPER): "run", (LABEL_MAKER): maker});
                fake.create_service(serde_json::json!({"Name": name, "Labels": labels, "Mode": {"Global": {}}}))
                    .await
                    .unwrap();
                let labels =
                    [(LABEL_HELPER.to_string(), "run".to_string()), (LABEL_MAKER.to_string(), maker.to_string())];
                fake.create_config(&format!("{name}-part"), labels.into(), b"list").await.unwrap();
            }
            // Someone else's service is never touched.
            fake.create_service(serde_json::json!({"Name": "db", "Mode": {"Global": {}}})).await.unwrap();
            let removed = sweep(&fake).await;
            assert_eq!(removed, ["unroot-scan-db-dead", "unroot-scan-db-dead-part"]);
        });
        let (services, configs) = fake.with(|s| {
            let w = s.swarm.as_ref().unwrap();
            let services: Vec<String> = w.services.iter().map(|v| v.name().to_string()).collect();
            (services, w.configs.keys().cloned().collect::<Vec<_>>())
        });
        assert_eq!(services, ["unroot-scan-db-live", "db"]);
        assert_eq!(configs, ["unroot-scan-db-live-part"]);
    }
}
