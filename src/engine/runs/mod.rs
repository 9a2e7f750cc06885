//! Runs: `apply` starts one, `resume` and `rollback` continue one, `status` reads them
//! back (SPEC §5, §7). Each entry point returns how its run(s) ended as a [`RunReport`]; the
//! command line maps that to an exit code.
//!
//! A run is read back from its folder: the journal says what was intended and done, the
//! saved plan copy says what the day was. `resume` is level-triggered: it re-inspects Docker
//! and each step does only what is still missing, so running it twice is harmless.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use crate::docker::swarm::{ServiceInspect, SwarmPort};
use crate::docker::{DockerError, DockerPort, Original, Port, inspect_named};
use crate::engine::events::{Event, Events};
use crate::engine::executor::{Holder, Outcome, RestoreSpec, RunCtx, classify_holder, foreign_holder_message};
use crate::engine::interrupt::Interrupt;
use crate::error::Error;
use crate::model::plan::Plan;
use crate::state::{
    Entry, Journal, Lock, PlanDir, Record, RunDir, RunEvent, RunState, StateError, StateLocation, Step,
};

pub mod apply;
mod refuse;
mod resume;
mod rollback;

pub use crate::engine::outcome::{RunEnd, RunReport};
pub use apply::{ApplyOptions, apply, check_day, preview};
pub use refuse::Overwrite;
use refuse::refuse_foreign_holders;
pub use resume::resume;
pub use rollback::rollback;

impl RunReport {
    /// Reports the run's `done` event and returns it.
    fn done(out: &dyn Events, end: RunEnd, summary: impl Into<String>) -> RunReport {
        let report = RunReport { end, summary: summary.into() };
        out.emit(Event::Done(&report));
        report
    }

    /// The end of a run the executor worked on: `day` for the run `apply` started, `None`
    /// for one that `resume` or `rollback` continued.
    fn ran<D: Port>(ctx: &RunCtx<'_, D>, day: Option<u32>, outcome: Outcome, any_failed: bool) -> RunReport {
        RunReport::done(ctx.out, RunEnd::Ran { outcome, any_failed }, summary(ctx, day, outcome, any_failed))
    }
}

/// What a run ended as, for people, with the commands that continue it: `day` for the run
/// `apply` started, `None` for one that `resume` or `rollback` continued.
fn summary<D: Port>(ctx: &RunCtx<'_, D>, day: Option<u32>, outcome: Outcome, any_failed: bool) -> String {
    let run = &ctx.run.id;
    match (day, outcome, any_failed) {
        (Some(d), Outcome::Applied, false) => format!("Day {d} applied (run {run})."),
        (None, Outcome::Applied, false) => format!("Run {run} applied."),
        (Some(d), Outcome::Applied, true) => format!(
            "Day {d} committed, but a service failed and is back on its original (run {run}); the day stays open until it is migrated."
        ),
        (Some(d), Outcome::RolledBack, _) => {
            format!("Day {d} failed; every service it touched is back on its original (run {run}).")
        }
        (None, Outcome::Applied | Outcome::RolledBack, _) => {
            format!("Run {run}: every service it touched is back on its original.")
        }
        (_, Outcome::CommitIncomplete, _) => format!(
            "{}: every service is migrated and healthy, but a parked original could not be removed; `{}` removes it.",
            day.map_or_else(|| format!("Run {run}"), |d| format!("Day {d}")),
            ctx.command("resume")
        ),
        (Some(d), Outcome::Incomplete, _) => format!(
            "Day {d} did not finish and something is not back: see `{}`; continue with `{}` or `{}`.",
            ctx.command("status"),
            ctx.command("resume"),
            ctx.command("rollback")
        ),
        (None, Outcome::Incomplete, _) => format!("Run {run} is not finished: see `{}`.", ctx.command("status")),
    }
}

/// One run as its folder tells it.
#[derive(Debug, Clone)]
pub struct RunView {
    pub plan_dir: PlanDir,
    pub id: String,
    pub plan_name: String,
    pub day: u32,
    pub waves: Vec<Vec<String>>,
    pub plan_sha256: String,
    pub plan_path: String,
    pub entries: Vec<Entry>,
}

/// Where a service of a run stands, as the journal tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceProgress {
    Migrated,
    Original,
    InProgress,
    Failed,
}

impl ServiceProgress {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceProgress::Migrated => "migrated",
            ServiceProgress::Original => "original",
            ServiceProgress::InProgress => "in-progress",
            ServiceProgress::Failed => "failed",
        }
    }
}

/// A service of a run as the journal tells it.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    /// The last step journaled for it (`""` in JSON when none was reached).
    #[serde(serialize_with = "step_or_empty")]
    pub step: Option<Step>,
    pub state: ServiceProgress,
}

/// A status's step as the journal names it, `""` for none.
fn step_or_empty<S: serde::Serializer>(step: &Option<Step>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(step.map_or("", Step::as_str))
}

/// A run for `status`.
#[derive(Debug, Clone, Serialize)]
pub struct RunStatus {
    pub run: String,
    pub plan: String,
    pub day: u32,
    pub state: RunState,
    pub services: Vec<ServiceStatus>,
}

impl RunView {
    /// Reads a run folder.
    ///
    /// Errors: an unreadable journal, or one without its header.
    pub fn load(plan_dir: &PlanDir, id: &str) -> Result<RunView, StateError> {
        let path = plan_dir.run_dir(id).join("journal.jsonl");
        let entries = Journal::read(&path)?;
        let Some(Record::Header { plan, plan_sha256, day, waves, plan_path, .. }) =
            entries.first().map(|e| e.record.clone())
        else {
            return Err(StateError::Corrupt { path, message: "the journal has no header".into() });
        };
        Ok(RunView {
            plan_dir: plan_dir.clone(),
            id: id.to_string(),
            plan_name: plan,
            day,
            waves,
            plan_sha256,
            plan_path,
            entries,
        })
    }

    pub fn dir(&self) -> PathBuf {
        self.plan_dir.run_dir(&self.id)
    }

    /// The run's folder, to read its backups and append to its journal.
    pub fn run_dir(&self) -> RunDir {
        RunDir { id: self.id.clone(), dir: self.dir() }
    }

    /// The run's state; `lock_held_elsewhere` tells a run being worked on from one that was
    /// interrupted.
    pub fn state(&self, lock_held_elsewhere: bool) -> RunState {
        RunState::of(&self.entries, lock_held_elsewhere)
    }

    /// Neither committed nor rolled back: `resume` or `rollback` must continue it.
    pub fn is_open(&self) -> bool {
        self.state(false).is_open()
    }

    /// Services in the order their migration started.
    pub fn touched(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            if let Record::Step { service, step, ok: None, .. } = &e.record
                && *step == Step::Inspect
                && !out.contains(service)
            {
                out.push(service.clone());
            }
        }
        out
    }

    /// `services` in the order to restore them (the reverse of their re-owns).
    pub fn restore_order(&self, services: &[String]) -> Vec<String> {
        crate::state::restore_order(&self.entries).into_iter().filter(|s| services.contains(s)).collect()
    }

    /// The `Config.User` the run created `service`'s replacement with (`None` when it did
    /// not get that far).
    pub fn expected_user(&self, service: &str) -> Option<String> {
        self.entries.iter().rev().find_map(|e| match &e.record {
            Record::Step { service: s, step, ok: None, detail, .. } if s == service && *step == Step::Create => {
                crate::state::StepDetail::of(detail).user
            }
            _ => None,
        })
    }

    /// The services the last rollback of this run was asked to restore (all it touched when
    /// the record does not say).
    fn rollback_services(&self) -> Vec<String> {
        let asked = self.entries.iter().rev().find_map(|e| match &e.record {
            Record::Run { event: RunEvent::RollingBack | RunEvent::ServiceRollback, services, .. } => {
                Some(services.clone())
            }
            _ => None,
        });
        match asked {
            Some(s) if !s.is_empty() => s,
            _ => self.touched(),
        }
    }

    /// The last step record of each service.
    fn last_steps(&self) -> HashMap<&str, (Step, Option<bool>)> {
        let mut last = HashMap::new();
        for e in &self.entries {
            if let Record::Step { service, step, ok, .. } = &e.record {
                last.insert(service.as_str(), (*step, *ok));
            }
        }
        last
    }

    /// Each service of the day with its last step and state.
    pub fn services(&self) -> Vec<ServiceStatus> {
        let last = self.last_steps();
        let committed = self.state(false) == RunState::Committed;
        self.waves
            .iter()
            .flatten()
            .map(|name| {
                let (step, state) = match last.get(name.as_str()).copied() {
                    None => (None, ServiceProgress::Original),
                    Some((Step::Restore, Some(true))) => (Some(Step::Restore), ServiceProgress::Original),
                    Some((Step::Restore, _)) => (Some(Step::Restore), ServiceProgress::Failed),
                    Some((step, Some(false))) => (Some(step), ServiceProgress::Failed),
                    Some((Step::Commit, Some(true))) => (Some(Step::Commit), ServiceProgress::Migrated),
                    Some((Step::Health, Some(true))) if committed => (Some(Step::Health), ServiceProgress::Migrated),
                    Some((step, _)) => (Some(step), ServiceProgress::InProgress),
                };
                ServiceStatus { name: name.clone(), step, state }
            })
            .collect()
    }

    /// Whether a migration step failed in this run (a failed restore or commit is not one:
    /// a commit that could not remove a parked original is finished by `resume`, not undone).
    pub fn had_failure(&self) -> bool {
        self.entries.iter().any(
            |e| matches!(&e.record, Record::Step { step, ok: Some(false), .. } if !matches!(step, Step::Restore | Step::Commit)),
        )
    }

    /// Services a restore brought back successfully (and not migrated again after).
    pub fn restored(&self) -> Vec<String> {
        self.services()
            .into_iter()
            .filter(|s| s.step == Some(Step::Restore) && s.state == ServiceProgress::Original)
            .map(|s| s.name)
            .collect()
    }

    /// The plan as the run saved it.
    pub fn plan(&self) -> Result<Plan, Error> {
        let path = self.dir().join("plan.toml");
        Ok(Plan::load(&path)?)
    }
}

/// Every run of every plan in a state directory, oldest first.
pub fn all_runs(state_dir: &Path) -> Result<Vec<RunView>, Error> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(state_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(StateError::Io { path: state_dir.to_path_buf(), source: e }.into());
        }
    };
    for entry in rd.flatten() {
        if !entry.path().is_dir() {
            continue;
        }
        let plan_dir = PlanDir::new(state_dir, &entry.file_name().to_string_lossy());
        for id in plan_dir.runs()? {
            out.push(RunView::load(&plan_dir, &id)?);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id).then(a.plan_name.cmp(&b.plan_name)));
    Ok(out)
}

/// The open runs of one plan, oldest first.
pub fn open_runs(plan_dir: &PlanDir) -> Result<Vec<RunView>, Error> {
    let mut out = Vec::new();
    for id in plan_dir.runs()? {
        let view = RunView::load(plan_dir, &id)?;
        if view.is_open() {
            out.push(view);
        }
    }
    Ok(out)
}

fn no_run(loc: &StateLocation, id: &str) -> Error {
    Error::Usage(format!(
        "no run {id} in state directory {} (pass --plan PLAN or --state-dir DIR to look elsewhere)",
        loc.dir.display()
    ))
}

fn find_run(loc: &StateLocation, id: &str) -> Result<RunView, Error> {
    all_runs(&loc.dir)?.into_iter().find(|r| r.id == id).ok_or_else(|| no_run(loc, id))
}

/// `unroot status [RUN]`.
pub fn status(loc: &StateLocation, run: Option<&str>) -> Result<Vec<RunStatus>, Error> {
    let held = Lock::is_held(&loc.dir);
    let runs = all_runs(&loc.dir)?;
    if let Some(id) = run
        && !runs.iter().any(|r| r.id == id)
    {
        return Err(no_run(loc, id));
    }
    Ok(runs
        .iter()
        .filter(|r| run.is_none_or(|id| r.id == id))
        .map(|r| RunStatus {
            run: r.id.clone(),
            plan: r.plan_name.clone(),
            day: r.day,
            state: r.state(held),
            services: r.services(),
        })
        .collect())
}

fn open_ctx<'a, D: Port>(
    port: &'a D,
    view: &RunView,
    out: &'a dyn Events,
    stop: &'a Interrupt,
    hint: &str,
) -> Result<RunCtx<'a, D>, Error> {
    let run = view.run_dir();
    let mut journal = Journal::open(&run.journal_path())?;
    crate::state::failpoint::install(&mut journal);
    Ok(RunCtx { port, run, journal: Mutex::new(journal), out, stop, hint: hint.to_string() })
}

/// Restores `services` in the order given and records the outcome. Returns whether every
/// restore succeeded.
async fn restore_all<D: Port>(
    ctx: &RunCtx<'_, D>,
    view: &RunView,
    plan: &Plan,
    services: &[String],
) -> Result<bool, Error> {
    let mut failures = Vec::new();
    for name in services {
        let Some(s) = plan.service(name) else {
            continue;
        };
        let expected = view.expected_user(name);
        let how = RestoreSpec {
            timings: &s.timings,
            helper_image: plan.rollout.helper_image.as_deref(),
            ownership: s.ownership,
            expected_user: expected.as_deref(),
        };
        if let Err(e) = ctx.restore(name, &how).await {
            failures.push(format!("{name}: {e}"));
        }
    }
    if failures.is_empty() {
        Ok(true)
    } else {
        ctx.record(Record::run_with(RunEvent::RollbackIncomplete, failures.join("; ")))?;
        Ok(false)
    }
}
