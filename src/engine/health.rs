//! The health gate (SPEC §3 step 8): started, healthy by the service's mode, stable for
//! `stable_for` without a restart, not OOM-killed, and every process at the target uid.
//!
//! Waits are driven by the daemon's events; inspect is the truth each event is checked
//! against. Only when the event stream drops does the gate fall back to inspecting on a
//! short interval. Exec probes are the one thing that must be re-run: they are retried on a
//! backoff, since no event says a probe would now pass.
//!
//! Docker runs a container's first health check only one `interval` after the start (30 s by
//! default). With mode `docker` the gate does not wait for that: it runs the container's own
//! HEALTHCHECK command itself (exec, as the container's user, with the check's timeout) from
//! the start, every 250 ms, until it passes or Docker reports a status; whichever comes first
//! counts, and the result says which.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::{Instant, timeout_at};

use crate::docker::{DockerError, DockerPort, EventStream, Inspect};
use crate::model::plan::{HealthMode, Timings};

/// Which probe found the container healthy first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Probe {
    /// Docker's own health status turned `healthy`.
    Docker,
    /// unroot ran the container's HEALTHCHECK command itself, and it passed.
    HealthcheckExec,
    /// The plan's exec probe passed.
    PlanExec,
    /// It runs (mode `running`).
    Running,
}

impl Probe {
    pub fn as_str(self) -> &'static str {
        match self {
            Probe::Docker => "docker",
            Probe::HealthcheckExec => "healthcheck-exec",
            Probe::PlanExec => "exec",
            Probe::Running => "running",
        }
    }
}

/// How a container passed the gate: which probe first, and how long after its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Passed {
    pub by: Probe,
    pub after: Duration,
}

/// How often the container's own HEALTHCHECK is run while Docker still says `starting`.
const HEALTHCHECK_EVERY: Duration = Duration::from_millis(250);

/// Why a container is not healthy.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Unhealthy(pub String);

impl From<DockerError> for Unhealthy {
    fn from(e: DockerError) -> Self {
        Unhealthy(e.to_string())
    }
}

/// Events that end a stability window or say the container changed.
fn is_disruption(action: &str) -> bool {
    matches!(action, "die" | "oom" | "restart" | "kill" | "stop") || action == "health_status: unhealthy"
}

/// What inspect says about the container right now.
fn verdict(c: &Inspect, mode: &HealthMode) -> Result<bool, Unhealthy> {
    if c.oom_killed() {
        return Err(Unhealthy("it was killed for running out of memory (OOM)".into()));
    }
    if !c.running() && !c.restarting() && c.status() != "created" {
        let code = c.exit_code();
        return Err(Unhealthy(format!("it exited with code {code}")));
    }
    if c.restarting() {
        let code = c.exit_code();
        return Err(Unhealthy(format!("it exited with code {code} and is restarting")));
    }
    match mode {
        HealthMode::Docker => match c.health_status() {
            Some("healthy") => Ok(true),
            Some("unhealthy") => Err(Unhealthy("Docker reports it unhealthy".into())),
            None => Err(Unhealthy("health mode is docker, but the container has no HEALTHCHECK".into())),
            _ => Ok(false),
        },
        HealthMode::Running | HealthMode::Exec(_) => Ok(c.running()),
    }
}

/// The next event, or `None` at the deadline. A dropped stream is replaced by a pause of
/// `fallback` (then the caller inspects again).
async fn next_event(events: &mut Option<EventStream>, until: Instant, fallback: Duration) -> Option<String> {
    match events {
        Some(stream) => match timeout_at(until, stream.next()).await {
            Ok(Some(Ok(e))) => Some(e.action),
            Ok(Some(Err(_)) | None) => {
                tracing::warn!("the event stream dropped; falling back to inspecting");
                *events = None;
                Some(String::new())
            }
            Err(_) => None,
        },
        None => {
            let wake = (Instant::now() + fallback).min(until);
            tokio::time::sleep_until(wake).await;
            (wake < until).then(String::new)
        }
    }
}

/// Starts a created container and waits until it passes the gate; says which probe passed
/// first and when.
///
/// Guarantees: subscribes to the container's events before starting it, so no transition
/// is missed; never sleeps while the stream is healthy (exec probes excepted).
/// Errors: [`Unhealthy`] saying why (timeout, exit, OOM, restart, a process at the wrong uid).
pub async fn start_and_wait(
    port: &impl DockerPort,
    id: &str,
    mode: &HealthMode,
    timings: &Timings,
    target_uid: Option<u32>,
) -> Result<Passed, Unhealthy> {
    let mut events = Some(port.container_events(id).await?);
    port.start_container(id).await?;
    wait(port, id, mode, timings, target_uid, &mut events).await
}

/// The most a plan's exec probe may run (Docker's default HEALTHCHECK timeout): one that
/// takes longer is killed and has failed.
pub const EXEC_PROBE_LIMIT: Duration = Duration::from_secs(30);

/// Runs `cmd` in the container, at most `limit` (killed when it takes longer); whether it
/// exited 0.
async fn exec_passes(port: &impl DockerPort, id: &str, cmd: &[String], limit: Duration) -> bool {
    matches!(port.exec(id, cmd, limit).await, Ok(f) if f.exit_code == 0)
}

/// With Docker still `starting`: whether the container's own HEALTHCHECK, run by unroot
/// (exec, as the container's user, with the check's timeout), passes now.
pub async fn own_check_passes(port: &impl DockerPort, c: &Inspect) -> bool {
    match c.healthcheck_command() {
        Some(cmd) if c.running() => exec_passes(port, c.id(), &cmd, c.healthcheck_timeout()).await,
        _ => false,
    }
}

/// How long to pause before inspecting again when the event stream dropped.
const FALLBACK: Duration = Duration::from_millis(500);

/// Waits until the container is healthy by its mode, at most `health_timeout`; returns its
/// restart count at that moment and the probe that passed.
async fn until_healthy(
    port: &impl DockerPort,
    id: &str,
    mode: &HealthMode,
    timings: &Timings,
    events: &mut Option<EventStream>,
) -> Result<(i64, Probe), Unhealthy> {
    let deadline = Instant::now() + timings.health_timeout;
    let fallback = FALLBACK;
    let mut probe_delay = Duration::from_millis(250);
    loop {
        let c = port.inspect_container(id).await?;
        let healthy = match (verdict(&c, mode)?, mode) {
            (true, HealthMode::Exec(cmd)) => {
                exec_passes(port, id, cmd, EXEC_PROBE_LIMIT).await.then_some(Probe::PlanExec)
            }
            (true, HealthMode::Docker) => Some(Probe::Docker),
            (true, HealthMode::Running) => Some(Probe::Running),
            (false, HealthMode::Docker) => own_check_passes(port, &c).await.then_some(Probe::HealthcheckExec),
            (false, _) => None,
        };
        if let Some(by) = healthy {
            return Ok((c.restart_count(), by));
        }
        if Instant::now() >= deadline {
            return Err(Unhealthy(format!(
                "not healthy within {}",
                crate::model::plan::duration::format(timings.health_timeout)
            )));
        }
        match mode {
            HealthMode::Exec(_) => {
                // Nothing announces that a probe would pass now: retry on a backoff, but
                // wake at once for an event that may end the wait (an exit).
                let wake = (Instant::now() + probe_delay).min(deadline);
                probe_delay = (probe_delay * 2).min(Duration::from_secs(2));
                if let Some(action) = next_event(events, wake, fallback).await
                    && is_disruption(&action)
                {
                    continue;
                }
            }
            HealthMode::Docker => {
                // Docker's first check comes an interval after the start: run the container's
                // own check again soon, or at once when an event says something changed.
                let wake = (Instant::now() + HEALTHCHECK_EVERY).min(deadline);
                let _ = next_event(events, wake, fallback).await;
            }
            HealthMode::Running => {
                if next_event(events, deadline, fallback).await.is_none() {
                    continue; // the deadline: inspect once more, then fail above
                }
            }
        }
    }
}

async fn wait(
    port: &impl DockerPort,
    id: &str,
    mode: &HealthMode,
    timings: &Timings,
    target_uid: Option<u32>,
    events: &mut Option<EventStream>,
) -> Result<Passed, Unhealthy> {
    let fallback = FALLBACK;
    let started = Instant::now();
    let (restarts, by) = until_healthy(port, id, mode, timings, events).await?;
    let passed = Passed { by, after: started.elapsed() };
    // Stable for `stable_for`: any disruption ends it.
    let stable_until = Instant::now() + timings.stable_for;
    while let Some(action) = next_event(events, stable_until, fallback).await {
        if is_disruption(&action) {
            let c = port.inspect_container(id).await?;
            verdict(&c, mode).map_err(|e| Unhealthy(format!("{e} during the stability window")))?;
            return Err(Unhealthy(format!("it was not stable: `{action}` during the stability window")));
        }
    }
    let c = port.inspect_container(id).await?;
    if !verdict(&c, mode)? {
        // Docker may still say `starting` (its first check is an interval away): then the
        // container's own check must still pass now.
        let starting = *mode == HealthMode::Docker && c.health_status() == Some("starting");
        if !starting {
            return Err(Unhealthy("it stopped being healthy during the stability window".into()));
        }
        if !own_check_passes(port, &c).await {
            return Err(Unhealthy("its HEALTHCHECK failed at the end of the stability window".into()));
        }
    }
    let now_restarts = c.restart_count();
    if now_restarts != restarts {
        return Err(Unhealthy(format!("it restarted {} time(s) during the stability window", now_restarts - restarts)));
    }
    if let HealthMode::Exec(cmd) = mode
        && !exec_passes(port, id, cmd, EXEC_PROBE_LIMIT).await
    {
        return Err(Unhealthy(format!("the probe `{}` failed after the stability window", cmd.join(" "))));
    }
    if let Some(uid) = target_uid {
        // The container's own processes: a probe Docker runs (as root, say) is not one.
        let procs = crate::docker::own_tree(port.top(id).await?, c.pid());
        let wrong: Vec<String> = procs
            .iter()
            .filter(|p| p.uid != Some(uid))
            .map(|p| format!("pid {} ({}) as uid {}", p.pid, p.program(), p.uid.map_or("?".into(), |u| u.to_string())))
            .collect();
        if !wrong.is_empty() {
            return Err(Unhealthy(format!("processes not at uid {uid}: {}", wrong.join("; "))));
        }
    }
    Ok(passed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::Process;
    use crate::docker::fake::FakeDocker;
    use serde_json::json;

    fn timings() -> Timings {
        Timings {
            stop_timeout: Duration::from_secs(1),
            health_timeout: Duration::from_secs(3),
            stable_for: Duration::from_millis(200),
            ..Timings::default()
        }
    }

    fn created(fake: &FakeDocker, health: Option<&str>) -> String {
        fake.add(
            json!({"Id": "c1", "Name": "/svc", "Config": {}, "State": {"Running": false, "Status": "created"}}),
            vec![Process { pid: 1, ppid: 0, uid: Some(999), command: "srv".into() }],
        );
        if let Some(h) = health {
            fake.with(|s| s.container_mut("c1").unwrap().0["State"]["Health"] = json!({"Status": h}));
        }
        "c1".into()
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
    }

    #[test]
    fn running_and_stable_at_the_target_uid_passes() {
        let fake = FakeDocker::default();
        let id = created(&fake, None);
        rt().block_on(start_and_wait(&fake, &id, &HealthMode::Running, &timings(), Some(999))).unwrap();
    }

    #[test]
    fn a_process_at_another_uid_fails() {
        let fake = FakeDocker::default();
        let id = created(&fake, None);
        let e = rt().block_on(start_and_wait(&fake, &id, &HealthMode::Running, &timings(), Some(1000))).unwrap_err();
        assert!(e.0.contains("processes not at uid 1000: pid 1 (srv) as uid 999"), "{e}");
    }

    #[test]
    fn docker_health_waits_for_the_healthy_event() {
        let fake = FakeDocker::default();
        let id = created(&fake, Some("starting"));
        fake.with(|s| {
            s.events.insert("svc".into(), vec!["start".into(), "health_status: healthy".into()]);
        });
        // The event arrives; the fake flips the status as the daemon would.
        fake.script("inspect", crate::docker::fake::Script::Before(Box::new(|_| {})));
        fake.script(
            "inspect",
            crate::docker::fake::Script::Before(Box::new(|s| {
                s.container_mut("c1").unwrap().0["State"]["Health"]["Status"] = json!("healthy");
            })),
        );
        rt().block_on(start_and_wait(&fake, &id, &HealthMode::Docker, &timings(), None)).unwrap();
    }

    #[test]
    fn unhealthy_and_exited_and_oom_fail_with_the_reason() {
        for (state, reason) in [
            (json!({"Running": true, "Status": "running", "Health": {"Status": "unhealthy"}}), "unhealthy"),
            (json!({"Running": false, "Status": "exited", "ExitCode": 3}), "exited with code 3"),
            (json!({"Running": false, "Status": "exited", "OOMKilled": true}), "out of memory"),
        ] {
            let fake = FakeDocker::default();
            let id = created(&fake, None);
            fake.script(
                "inspect",
                crate::docker::fake::Script::Before(Box::new(move |s| {
                    s.container_mut("c1").unwrap().0["State"] = state;
                })),
            );
            let e = rt().block_on(start_and_wait(&fake, &id, &HealthMode::Docker, &timings(), None)).unwrap_err();
            assert!(e.0.contains(reason), "{e}");
        }
    }

    #[test]
    fn a_failing_exec_probe_times_out() {
        let fake = FakeDocker::default();
        let id = created(&fake, None);
        fake.with(|s| s.exec_exit = 1);
        let mut t = timings();
        t.health_timeout = Duration::from_secs(1);
        let e =
            rt().block_on(start_and_wait(&fake, &id, &HealthMode::Exec(vec!["probe".into()]), &t, None)).unwrap_err();
        assert!(e.0.contains("not healthy within 1s"), "{e}");
    }

    #[test]
    fn every_probe_unroot_runs_has_a_limit_the_port_enforces() {
        // The container's own check: its HEALTHCHECK timeout.
        let fake = FakeDocker::default();
        let id = created(&fake, Some("starting"));
        fake.with(|s| {
            s.container_mut("c1").unwrap().0["Config"]["Healthcheck"] =
                json!({"Test": ["CMD", "check"], "Timeout": 3_000_000_000u64});
        });
        rt().block_on(start_and_wait(&fake, &id, &HealthMode::Docker, &timings(), None)).unwrap();
        let limits = fake.with(|s| s.exec_limits.clone());
        assert!(!limits.is_empty() && limits.iter().all(|l| *l == Duration::from_secs(3)), "{limits:?}");
        // A plan's exec probe: Docker's default check timeout.
        let fake = FakeDocker::default();
        let id = created(&fake, None);
        rt().block_on(start_and_wait(&fake, &id, &HealthMode::Exec(vec!["probe".into()]), &timings(), None)).unwrap();
        let limits = fake.with(|s| s.exec_limits.clone());
        assert!(!limits.is_empty() && limits.iter().all(|l| *l == EXEC_PROBE_LIMIT), "{limits:?}");
    }

    #[test]
    fn a_process_at_the_wrong_uid_is_named_by_its_program_never_its_arguments() {
        let fake = FakeDocker::default();
        let id = created(&fake, None);
        fake.with(|s| {
            s.processes.insert(
                "c1".into(),
                vec![Process {
                    pid: 1,
                    ppid: 0,
                    uid: Some(0),
                    command: "/usr/bin/srv --password hunter2-secret".into(),
                }],
            );
        });
        let e = rt().block_on(start_and_wait(&fake, &id, &HealthMode::Running, &timings(), Some(999))).unwrap_err();
        assert_eq!(e.0, "processes not at uid 999: pid 1 (srv) as uid 0");
    }

    #[test]
    fn a_restart_in_the_stability_window_fails() {
        let fake = FakeDocker::default();
        let id = created(&fake, None);
        fake.with(|s| {
            s.events.insert("svc".into(), vec!["start".into(), "die".into()]);
        });
        let e = rt().block_on(start_and_wait(&fake, &id, &HealthMode::Running, &timings(), None)).unwrap_err();
        assert!(e.0.contains("not stable: `die`"), "{e}");
    }

    /// A container with a HEALTHCHECK whose status Docker still reports as `starting`.
    fn starting_with_check(fake: &FakeDocker) -> String {
        let id = created(fake, Some("starting"));
        fake.with(|s| {
            s.container_mut("c1").unwrap().0["Config"]["Healthcheck"] =
                json!({"Test": ["CMD-SHELL", "redis-cli ping | grep PONG"], "Interval": 30_000_000_000u64, "Timeout": 2_000_000_000u64});
        });
        id
    }

    #[test]
    fn the_containers_own_check_passes_before_dockers_first_interval() {
        let fake = FakeDocker::default();
        let id = starting_with_check(&fake);
        let passed = rt().block_on(start_and_wait(&fake, &id, &HealthMode::Docker, &timings(), None)).unwrap();
        assert_eq!(passed.by, Probe::HealthcheckExec);
        let execs = fake.with(|s| s.execs.clone());
        assert_eq!(execs[0], ["/bin/sh", "-c", "redis-cli ping | grep PONG"], "CMD-SHELL runs through /bin/sh -c");
        assert!(execs.len() >= 2, "run again at the end of the stability window: {execs:?}");
    }

    #[test]
    fn dockers_healthy_counts_when_it_comes_first() {
        let fake = FakeDocker::default();
        let id = starting_with_check(&fake);
        fake.with(|s| s.container_mut("c1").unwrap().0["State"]["Health"]["Status"] = json!("healthy"));
        let passed = rt().block_on(start_and_wait(&fake, &id, &HealthMode::Docker, &timings(), None)).unwrap();
        assert_eq!(passed.by, Probe::Docker);
        assert!(fake.with(|s| s.execs.is_empty()), "no exec needed");
    }

    #[test]
    fn unhealthy_from_docker_in_the_stability_window_fails_a_check_that_passed_by_exec() {
        let fake = FakeDocker::default();
        let id = starting_with_check(&fake);
        fake.with(|s| {
            s.events.insert("svc".into(), vec!["start".into(), "health_status: unhealthy".into()]);
        });
        // The first inspect finds it starting (the exec passes); by the event Docker says
        // unhealthy.
        fake.script("inspect", crate::docker::fake::Script::Before(Box::new(|_| {})));
        fake.script(
            "inspect",
            crate::docker::fake::Script::Before(Box::new(|s| {
                s.container_mut("c1").unwrap().0["State"]["Health"]["Status"] = json!("unhealthy");
            })),
        );
        let mut t = timings();
        t.stable_for = Duration::from_secs(2);
        let e = rt().block_on(start_and_wait(&fake, &id, &HealthMode::Docker, &t, None)).unwrap_err();
        assert_eq!(e.0, "Docker reports it unhealthy during the stability window");
    }

    #[test]
    fn a_check_that_fails_keeps_waiting_for_docker() {
        let fake = FakeDocker::default();
        let id = starting_with_check(&fake);
        fake.with(|s| s.exec_exit = 1);
        let mut t = timings();
        t.health_timeout = Duration::from_secs(1);
        let e = rt().block_on(start_and_wait(&fake, &id, &HealthMode::Docker, &t, None)).unwrap_err();
        assert!(e.0.contains("not healthy within 1s"), "{e}");
        assert!(fake.with(|s| s.execs.len()) >= 3, "run every 250 ms");
    }
}
