//! What the fake daemon does on its own while a container runs, as Docker does: a started
//! container with a HEALTHCHECK and no status yet is `starting`; Docker runs the check every
//! `Interval` (30 s unless set) after the start, as the container's user (the fake answers
//! it as it answers `exec`); `Retries` (3 unless set) failures in a row make the container
//! `unhealthy`, one pass `healthy`; each change of status is a `health_status: …` event.
//! Checks run lazily on tokio's clock, when the container is inspected or its events are
//! read, so a test on paused time moves through intervals at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::State;
use crate::docker::{ContainerEvent, DockerError, Inspect};

/// How often the subscription of a container not started yet looks again.
const NOT_STARTED_POLL: Duration = Duration::from_millis(100);

/// Docker's checks of one started container.
#[derive(Debug, Clone)]
pub(super) struct Checks {
    started: Instant,
    /// Checks run so far.
    runs: u32,
    /// Failures in a row.
    failing: u32,
}

/// The checks of every started container, and the status changes they made.
#[derive(Debug, Default)]
pub(super) struct Health {
    checks: HashMap<String, Checks>,
    /// Every change of status, as (container id, event action), oldest first.
    pub(super) log: Vec<(String, String)>,
}

/// `Config.Healthcheck.NAME` in nanoseconds as a duration, `default` when unset or zero.
fn nanos(c: &Inspect, name: &str, default: Duration) -> Duration {
    match c.0.pointer(&format!("/Config/Healthcheck/{name}")).and_then(Value::as_u64) {
        Some(n) if n > 0 => Duration::from_nanos(n),
        _ => default,
    }
}

impl State {
    /// A container started: with a HEALTHCHECK and no status yet it is `starting`, and
    /// Docker's checks begin.
    pub(super) fn health_started(&mut self, id: &str) {
        let Ok(c) = self.lookup(id) else { return };
        if c.healthcheck_command().is_none() {
            return;
        }
        if c.0["State"]["Health"].is_null() {
            c.0["State"]["Health"] = json!({"Status": "starting", "FailingStreak": 0});
        }
        let id = c.id().to_string();
        self.health.checks.insert(id, Checks { started: Instant::now(), runs: 0, failing: 0 });
    }

    /// A container stopped: Docker checks it no more (its last status stays).
    pub(super) fn health_stopped(&mut self, id: &str) {
        if let Ok(id) = self.lookup(id).map(|c| c.id().to_string()) {
            self.health.checks.remove(&id);
        }
    }

    /// When Docker checks container `id` next; `None` when it does not.
    fn next_check(&self, id: &str) -> Option<Instant> {
        let checks = self.health.checks.get(id)?;
        let c = self.container(id)?;
        Some(checks.started + nanos(c, "Interval", Duration::from_secs(30)) * (checks.runs + 1))
    }

    /// Runs every check of container `id` that is due by now, as Docker would have.
    pub(super) fn run_due_checks(&mut self, id: &str) {
        let Some(c) = self.container(id).cloned() else { return };
        let id = c.id().to_string();
        let (Some(cmd), true) = (c.healthcheck_command(), c.running()) else { return };
        let retries = c.0.pointer("/Config/Healthcheck/Retries").and_then(Value::as_u64).filter(|r| *r > 0);
        let retries = retries.unwrap_or(3) as u32;
        while self.next_check(&id).is_some_and(|t| t <= Instant::now()) {
            let passed = self.exec_code(&c, &cmd) == 0;
            let checks = self.health.checks.get_mut(&id).expect("due checks are tracked");
            checks.runs += 1;
            checks.failing = if passed { 0 } else { checks.failing + 1 };
            let failing = checks.failing;
            let status = match (passed, failing >= retries) {
                (true, _) => "healthy",
                (false, true) => "unhealthy",
                (false, false) => continue,
            };
            let now = self.container_mut(&id).expect("checked above");
            let changed = now.0["State"]["Health"]["Status"] != status;
            now.0["State"]["Health"] = json!({"Status": status, "FailingStreak": failing});
            if changed {
                self.health.log.push((id.clone(), format!("health_status: {status}")));
            }
        }
    }
}

/// The `health_status` events of container `id` after the first `seen` changes of the log,
/// as Docker streams them: each when its check runs.
pub(super) fn events(
    state: Arc<Mutex<State>>,
    id: String,
    seen: usize,
) -> impl futures_util::Stream<Item = Result<ContainerEvent, DockerError>> + Send {
    futures_util::stream::unfold((state, seen), move |(state, mut seen)| {
        let id = id.clone();
        async move {
            loop {
                let wake = {
                    let mut s = state.lock().unwrap();
                    s.run_due_checks(&id);
                    let next = s.health.log.iter().enumerate().skip(seen).find(|(_, (c, _))| *c == id);
                    if let Some((at, (_, action))) = next {
                        let event = ContainerEvent { action: action.clone(), id: id.clone() };
                        seen = at + 1;
                        return Some((Ok(event), (state.clone(), seen)));
                    }
                    seen = s.health.log.len();
                    match (s.next_check(&id), s.container(&id).is_some_and(|c| c.healthcheck_command().is_some())) {
                        (Some(t), _) => Some(t),
                        (None, true) => Some(Instant::now() + NOT_STARTED_POLL),
                        (None, false) => None,
                    }
                };
                match wake {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => futures_util::future::pending::<()>().await,
                }
            }
        }
    })
}
