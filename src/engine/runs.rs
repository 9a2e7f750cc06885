//! Runs after the fact: `status`, `resume` and `rollback` (SPEC §5, §7).
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
use crate::engine::compose::{self, ComposeRef};
use crate::engine::events::Events;
use crate::engine::executor::{Apply, Holder, Outcome, RestoreSpec, RunCtx, classify_holder, foreign_holder_message};
use crate::engine::interrupt::Interrupt;

mod refuse;
use crate::engine::preview::{self, NameSource};
use crate::error::{Error, Exit};
use crate::model::plan::{OnFailure, Plan};
use crate::state::{
    Cause, Entry, Journal, Ledger, Lock, PlanDir, Record, RunDir, RunEvent, RunState, ServiceState, StateError,
    StateLocation, Step, run_events,
};
pub use refuse::Overwrite;
use refuse::refuse_foreign_holders;

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
    /// The last step journaled for it (empty when it was not reached).
    pub step: String,
    pub state: ServiceProgress,
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
                detail.get("user").and_then(|u| u.as_str()).map(str::to_string)
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
                ServiceStatus { name: name.clone(), step: step.map_or("", Step::as_str).to_string(), state }
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
            .filter(|s| s.step == Step::Restore.as_str() && s.state == ServiceProgress::Original)
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

/// `unroot resume [RUN]`: finishes an interrupted run, or rolls it back as its
/// `on_failure` says. With nothing interrupted it says so and exits 0.
pub async fn resume(
    port: &(impl DockerPort + SwarmPort),
    loc: &StateLocation,
    run: Option<&str>,
    out: &dyn Events,
    stop: &Interrupt,
) -> Result<Exit, Error> {
    let _lock = Lock::acquire(&loc.dir, "unroot resume")?;
    crate::engine::orphans::sweep(port).await;
    let open: Vec<RunView> = match run {
        Some(id) => {
            let view = find_run(loc, id)?;
            if !view.is_open() {
                let state = view.state(false).as_str();
                out.note(&format!("run {id} is {state}; nothing to resume"));
                out.done(state, 0, "Nothing to resume.");
                return Ok(Exit::Ok);
            }
            vec![view]
        }
        None => all_runs(&loc.dir)?.into_iter().filter(RunView::is_open).collect(),
    };
    if open.is_empty() {
        out.note(&format!("no interrupted run in state directory {}; nothing to resume", loc.dir.display()));
        out.done("applied", 0, "Nothing to resume.");
        return Ok(Exit::Ok);
    }
    let mut worst = Exit::Ok;
    for view in open {
        let exit = resume_one(port, &view, out, stop, &loc.hint).await?;
        if exit as u8 > worst as u8 {
            worst = exit;
        }
    }
    Ok(worst)
}

async fn resume_one(
    port: &(impl DockerPort + SwarmPort),
    view: &RunView,
    out: &dyn Events,
    stop: &Interrupt,
    hint: &str,
) -> Result<Exit, Error> {
    let plan = view.plan()?;
    if let Ok(text) = std::fs::read(&view.plan_path) {
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&text))
        };
        if sha != view.plan_sha256 {
            out.note(&format!(
                "{} changed since run {} started; resuming from the run's own saved copy",
                view.plan_path, view.id
            ));
        }
    }
    let rolling_back = run_events(&view.entries)
        .any(|e| matches!(e, RunEvent::RollingBack | RunEvent::RollbackIncomplete))
        || (view.had_failure() && plan.rollout.on_failure == OnFailure::RollbackDay);
    if rolling_back {
        let services = view.restore_order(&view.rollback_services());
        refuse_foreign_holders(port, view, &services, Overwrite::Refuse).await?;
        let ctx = open_ctx(port, view, out, stop, hint)?;
        ctx.record(Record::rollback(
            RunEvent::RollingBack,
            Cause::Continued,
            Some("resumed".into()),
            services.clone(),
        ))?;
        let ok = restore_all(&ctx, view, &plan, &services).await?;
        return finish(&ctx, if ok { Outcome::RolledBack } else { Outcome::Incomplete }, true);
    }
    // A name the run's services lost to a container that is not theirs: refuse, change nothing.
    refuse_foreign_holders(port, view, &view.touched(), Overwrite::Refuse).await?;
    let ctx = open_ctx(port, view, out, stop, hint)?;
    // Finish the day: the day recomputed from the saved originals of touched services.
    let mut saved = preview::Saved::default();
    for name in view.touched() {
        if let Some(original) = crate::engine::load_original(&ctx.run, &name)? {
            saved.insert(name, original);
        }
    }
    let restored = view.restored();
    let remaining: Vec<String> = view.waves.iter().flatten().filter(|s| !restored.contains(s)).cloned().collect();
    let day = preview::compute_with(port, &plan, view.day, &remaining, NameSource::ImageProbe, &saved).await?;
    let day = match day.ready() {
        Ok(day) => day,
        Err(blockers) => {
            let services = view.restore_order(&view.touched());
            refuse_foreign_holders(port, view, &services, Overwrite::Refuse).await?;
            ctx.record(Record::rollback(
                RunEvent::RollingBack,
                Cause::CannotFinish,
                Some(format!("the day cannot be finished: {}", blockers.join("; "))),
                services.clone(),
            ))?;
            let ok = restore_all(&ctx, view, &plan, &services).await?;
            return finish(&ctx, if ok { Outcome::RolledBack } else { Outcome::Incomplete }, true);
        }
    };
    let mut apply = Apply::new(ctx, &plan, day, view.plan_dir.clone());
    apply.restored_before = restored;
    apply.start_event = RunEvent::Resumed;
    let (outcome, failed) = apply.run().await?;
    let exit = outcome.exit(failed || !apply.restored_before.is_empty());
    apply.ctx.out.done(outcome.as_str(), exit as u8, &summary(&apply.ctx, outcome, exit));
    Ok(exit)
}

fn summary<D: Port>(ctx: &RunCtx<'_, D>, outcome: Outcome, exit: Exit) -> String {
    let run = &ctx.run.id;
    match (outcome, exit) {
        (_, Exit::Ok) => format!("Run {run} applied."),
        (_, Exit::RolledBack) => format!("Run {run}: every service it touched is back on its original."),
        (Outcome::CommitIncomplete, _) => format!(
            "Run {run}: every service is migrated and healthy, but a parked original could not be removed; `{}` removes it.",
            ctx.command("resume")
        ),
        _ => format!("Run {run} is not finished: see `{}`.", ctx.command("status")),
    }
}

/// Records the end of a rollback and reports it.
fn finish<D: Port>(ctx: &RunCtx<'_, D>, outcome: Outcome, failed: bool) -> Result<Exit, Error> {
    if outcome == Outcome::RolledBack {
        ctx.record(Record::run(RunEvent::RolledBack))?;
    }
    let exit = outcome.exit(failed);
    ctx.out.done(outcome.as_str(), exit as u8, &summary(ctx, outcome, exit));
    Ok(exit)
}

/// `unroot rollback RUN [--service NAME]...`: restores the originals of a committed or an
/// interrupted run, then updates the ledger and the compose overrides. A name held by a
/// container that is not the run's (nor its successor's) refuses it before anything changes.
pub async fn rollback(
    port: &impl Port,
    loc: &StateLocation,
    run: &str,
    only: &[String],
    overwrite: Overwrite,
    out: &dyn Events,
    stop: &Interrupt,
) -> Result<Exit, Error> {
    let _lock = Lock::acquire(&loc.dir, &format!("unroot rollback {run}"))?;
    crate::engine::orphans::sweep(port).await;
    let view = find_run(loc, run)?;
    let plan = view.plan()?;
    let touched = view.touched();
    for s in only {
        if !touched.contains(s) {
            return Err(Error::Usage(format!("run {run} did not touch {s} (it touched: {})", touched.join(", "))));
        }
    }
    let chosen: Vec<String> = touched.iter().filter(|s| only.is_empty() || only.contains(s)).cloned().collect();
    let services = view.restore_order(&chosen);
    let all = services.len() == touched.len();
    refuse_foreign_holders(port, &view, &services, overwrite).await?;
    let ctx = open_ctx(port, &view, out, stop, &loc.hint)?;
    ctx.record(Record::rollback(
        if all { RunEvent::RollingBack } else { RunEvent::ServiceRollback },
        Cause::Operator,
        Some(format!("rollback of {}", services.join(", "))),
        services.clone(),
    ))?;
    let ok = restore_all(&ctx, &view, &plan, &services).await?;
    if !ok {
        let exit = Outcome::Incomplete.exit(true);
        ctx.out.done(Outcome::Incomplete.as_str(), exit as u8, &summary(&ctx, Outcome::Incomplete, exit));
        return Ok(exit);
    }
    // The ledger and the overrides no longer count these services as migrated by this run.
    let mut ledger = Ledger::load(&view.plan_dir.dir, &view.plan_name)?;
    let mut projects: Vec<ComposeRef> = Vec::new();
    let mut stacks = Vec::new();
    for day in ledger.days.values_mut() {
        for s in &services {
            if let Some(rec) = day.services.get_mut(s).filter(|r| r.run == view.id) {
                rec.state = ServiceState::Original;
                projects.extend(rec.compose.clone());
                stacks.extend(rec.stack.clone());
            }
        }
    }
    ledger.days.retain(|_, d| d.services.values().any(|r| r.state == ServiceState::Migrated));
    ledger.save(&view.plan_dir.dir)?;
    let written: Vec<PathBuf> =
        crate::engine::executor::write_overrides(&ledger, &ctx.run)?.into_iter().map(|(path, _)| path).collect();
    for p in projects {
        let path = compose::override_path(&p);
        if !written.contains(&path) && path.exists() {
            let _ = std::fs::remove_file(&path);
            ctx.out.note(&format!("compose: removed {} (no service of the project is migrated now)", path.display()));
        }
    }
    let written: Vec<PathBuf> = crate::engine::executor::write_stack_overrides(&ledger, &view.plan_dir)?
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    for st in stacks {
        let path = view.plan_dir.dir.join("stacks").join(st.file_name());
        if !written.contains(&path) && path.exists() {
            let _ = std::fs::remove_file(&path);
            ctx.out.note(&format!("stack: removed {} (no service of the stack is migrated now)", path.display()));
        }
    }
    ctx.record(Record::run_with(
        if all { RunEvent::RolledBack } else { RunEvent::ServicesRolledBack },
        services.join(", "),
    ))?;
    ctx.out.done("rolled-back", 0, &format!("Restored {} of run {run}.", services.join(", ")));
    Ok(Exit::Ok)
}
