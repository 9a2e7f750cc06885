//! Applying a day (SPEC §3 steps 4–9) and restoring services when something fails.
//!
//! Every step and every restore step is written to the journal before and after it runs;
//! a step's intent is durable before its side effect. Each step is idempotent: it checks
//! what Docker shows and does only what is still missing, so running it again (after a
//! crash, from `resume`) is harmless. A panic inside a step is a failed step like any
//! other: the service is restored.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt, stream};
use serde_json::{Value, json};

use crate::docker::recreate::{self, Changes, LABEL_RUN};
use crate::docker::{
    DockerError, DockerPort, Finished, Inspect, Original, Port, Removal, image_ref, inspect_named, short_id as short,
};
use crate::engine::compose::{self, ComposeRef, ServiceOverride};
use crate::engine::events::Events;
use crate::engine::health;
use crate::engine::hostfs;
use crate::engine::interrupt::Interrupt;
use crate::engine::orphans;
use crate::engine::preview::{self, Method, ReadyDay, Resolved, Workload};
use crate::engine::reown::{self, HELPER_MOUNT, Manifest, MountChanges, MountId, Owner};
use crate::model::plan::{HealthMode, OnFailure, Ownership, Plan, Timings};
use crate::model::workload::WorkloadKind;
use crate::state::{
    Journal, Ledger, PlanDir, Record, RunDir, RunEvent, ServiceRecord, ServiceState, StateError, Step, StepDetail,
};

mod apply;
pub use apply::{says_log_saved, without_saved_at};
mod error;
mod helper;
mod restore;
mod steps;
mod swarm;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_compat;
#[cfg(test)]
mod tests_every_call;
#[cfg(test)]
mod tests_swarm;

pub use crate::engine::outcome::Outcome;
pub use apply::{Apply, write_overrides, write_stack_overrides};
use error::Doing;
pub use error::{StepError, StepFailure};
pub use restore::{Holder, RestoreSpec, classify_holder, foreign_holder_message};

/// The name a renamed original has during the migration window.
pub fn renamed(name: &str, run: &str) -> String {
    format!("{name}.unroot-{run}")
}

/// The message of a panic, for the step that caught it.
pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// What such a step's error says.
pub const BEFORE_THIS_STEP: &str = "before this step";

/// What a run needs to act and to record: the port, the run's folder and journal, and
/// where events go.
pub struct RunCtx<'a, D: Port> {
    pub port: &'a D,
    pub run: RunDir,
    pub journal: Mutex<Journal>,
    pub out: &'a dyn Events,
    /// Set by Ctrl-C: start nothing new.
    pub stop: &'a Interrupt,
    /// What the commands that continue this run need besides the run id, so that they find
    /// its state directory (` --plan PLAN`, ` --state-dir DIR`, or nothing).
    pub hint: String,
}

impl<D: Port> RunCtx<'_, D> {
    /// Journals a record, then reports it (a record is durable before progress is shown).
    pub fn record(&self, record: Record) -> Result<(), StateError> {
        use crate::engine::events::Event;
        let entry = self.journal.lock().expect("journal lock").append(record)?;
        match &entry.record {
            Record::Step { service, step, ok, error, detail } => {
                let (service, step) = (service.as_str(), *step);
                self.out.emit(match ok {
                    None => Event::StepStart { service, step, detail },
                    Some(true) => Event::StepEnd { service, step, detail },
                    Some(false) => {
                        Event::StepFailed { service, step, error: error.as_deref().unwrap_or_default(), detail }
                    }
                });
            }
            Record::Run { event, detail, .. } => {
                self.out.emit(Event::Run { event: *event, run: &self.run.id, detail: detail.as_deref() })
            }
            Record::Header { .. } => {}
        }
        Ok(())
    }

    /// A command that continues this run, as the operator should type it.
    pub fn command(&self, verb: &str) -> String {
        format!("unroot {verb} {}{}", self.run.id, self.hint)
    }

    /// Runs one step between a start and an end record. A panic inside the step ends it as
    /// a failure (so the service is restored like after any other failure).
    pub(super) async fn step<T, F>(&self, service: &str, step: Step, intent: Value, f: F) -> Result<T, StepFailure>
    where
        F: std::future::Future<Output = Result<(T, Value), StepError>>,
    {
        let journal_err = |e: StateError| StepFailure { step, error: StepError::Journal(e.to_string()) };
        self.record(Record::Step { service: service.into(), step, ok: None, error: None, detail: intent })
            .map_err(journal_err)?;
        let result = std::panic::AssertUnwindSafe(f)
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(StepError::Panicked(panic_message(&*panic))));
        match result {
            Ok((value, detail)) => {
                self.record(Record::Step { service: service.into(), step, ok: Some(true), error: None, detail })
                    .map_err(journal_err)?;
                Ok(value)
            }
            Err(error) => {
                let _ = self.record(Record::Step {
                    service: service.into(),
                    step,
                    ok: Some(false),
                    error: Some(error.to_string()),
                    detail: Value::Null,
                });
                Err(StepFailure { step, error })
            }
        }
    }
}

/// What one helper container runs: a script with its arguments, a tar to upload before the
/// start, and a file whose contents to read back after a clean exit.
pub(super) struct HelperJob<'a> {
    script: &'a str,
    args: &'a [String],
    upload: Option<Vec<u8>>,
    output_file: Option<&'a str>,
}

/// Lines of a failed replacement's log kept in the run folder, and shown with the failure.
pub(super) const FAILURE_LOG_LINES: usize = 50;
pub(super) const FAILURE_LOG_SHOWN: usize = 10;

/// The most a helper's listing may hold (a scan of ten million entries).
pub(super) const HELPER_OUTPUT_LIMIT: usize = 1 << 30;

/// A helper's exit, as an error saying what failed and what it printed on stderr.
pub(super) fn succeeded(out: &Finished, what: &str, mount: &MountId) -> Result<(), StepError> {
    if out.exit_code == 0 {
        return Ok(());
    }
    Err(StepError::Reown(format!(
        "{what} {} failed (exit {}): {}",
        mount.destination,
        out.exit_code,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// Whether the daemon speaks at least API `major.minor`.
pub(super) fn api_at_least(port: &impl DockerPort, major: u32, minor: u32) -> bool {
    crate::docker::ApiVersion(major, minor).reached_by(&port.daemon().api_version)
}

/// The compose override settings of a migrated service.
pub(super) fn override_of(r: &Resolved) -> ServiceOverride {
    ServiceOverride {
        user: r.changes.user.clone(),
        group_add: r.changes.group_add.clone(),
        cap_drop: r.changes.cap_drop.clone(),
        cap_add: r.changes.cap_add.clone(),
        read_only: r.changes.read_only,
        security_opt: (r.changes.no_new_privileges == Some(true))
            .then(|| "no-new-privileges:true".to_string())
            .into_iter()
            .chain(r.security_opt_as_written.iter().cloned())
            .collect(),
        tmpfs: r.changes.tmpfs.iter().map(|(path, options)| format!("{path}:{options}")).collect(),
        healthcheck: r.changes.healthcheck.clone(),
        environment: r.changes.env.clone(),
    }
}

/// The `Config.User` a replacement of `r` is created with.
pub(super) fn expected_user(r: &Resolved) -> String {
    r.changes.user.clone().unwrap_or_else(|| r.original.configured_user().to_string())
}
