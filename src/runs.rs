//! Runs after the fact: `status`, `resume` and `rollback` (SPEC §5, §7).
//!
//! A run is read back from its folder: the journal says what was intended and done, the
//! saved plan copy says what the day was. `resume` is level-triggered: it re-inspects Docker
//! and each step does only what is still missing, so running it twice is harmless.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use crate::compose::{self, ComposeRef};
use crate::docker::{DockerPort, Inspect};
use crate::error::{Error, Exit};
use crate::executor::{Apply, Outcome, RunCtx};
use crate::interrupt::Interrupt;
use crate::output::Reporter;
use crate::plan::{OnFailure, Plan};
use crate::preview::{self, NameSource};
use crate::state::{Entry, Journal, Ledger, Lock, PlanDir, Record, RunDir, StateError};

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

/// A service of a run as the journal tells it.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    /// The last step journaled for it (empty when it was not reached).
    pub step: String,
    /// `migrated`, `original`, `in-progress` or `failed`.
    pub state: String,
}

/// A run for `status`.
#[derive(Debug, Clone, Serialize)]
pub struct RunStatus {
    pub run: String,
    pub plan: String,
    pub day: u32,
    pub state: String,
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

    /// Run-level events, without those of a `rollback --service` of some services (they
    /// leave the run as it was).
    fn run_events(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|e| match &e.record {
            Record::Run { event, .. } if event != "service-rollback" && event != "services-rolled-back" => {
                Some(event.as_str())
            }
            _ => None,
        })
    }

    /// The last run-level event.
    pub fn last_event(&self) -> Option<&str> {
        self.run_events().last()
    }

    /// Neither committed nor rolled back: `resume` or `rollback` must continue it.
    pub fn is_open(&self) -> bool {
        !matches!(self.last_event(), Some("committed" | "rolled-back"))
    }

    /// `in-progress`, `interrupted`, `committed`, `rolled-back` or `rollback-incomplete`.
    pub fn state(&self, lock_held_elsewhere: bool) -> &'static str {
        match self.last_event() {
            Some("committed") => "committed",
            Some("rolled-back") => "rolled-back",
            Some("rollback-incomplete") => "rollback-incomplete",
            _ if lock_held_elsewhere => "in-progress",
            _ => "interrupted",
        }
    }

    /// Services in the order their migration started.
    pub fn touched(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            if let Record::Step { service, step, ok: None, .. } = &e.record
                && step == "inspect"
                && !out.contains(service)
            {
                out.push(service.clone());
            }
        }
        out
    }

    /// The last step record of each service.
    fn last_steps(&self) -> HashMap<&str, (&str, Option<bool>)> {
        let mut last = HashMap::new();
        for e in &self.entries {
            if let Record::Step { service, step, ok, .. } = &e.record {
                last.insert(service.as_str(), (step.as_str(), *ok));
            }
        }
        last
    }

    /// Each service of the day with its last step and state.
    pub fn services(&self) -> Vec<ServiceStatus> {
        let last = self.last_steps();
        let committed = self.last_event() == Some("committed");
        self.waves
            .iter()
            .flatten()
            .map(|name| {
                let (step, state) = match last.get(name.as_str()) {
                    None => ("", "original"),
                    Some(("restore", Some(true))) => ("restore", "original"),
                    Some(("restore", _)) => ("restore", "failed"),
                    Some((step, Some(false))) => (*step, "failed"),
                    Some((step @ "commit", Some(true))) => (*step, "migrated"),
                    Some((step @ "health", Some(true))) if committed => (*step, "migrated"),
                    Some((step, _)) => (*step, "in-progress"),
                };
                ServiceStatus { name: name.clone(), step: step.to_string(), state: state.to_string() }
            })
            .collect()
    }

    /// Whether a step (other than a restore) failed in this run.
    pub fn had_failure(&self) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(&e.record, Record::Step { step, ok: Some(false), .. } if step != "restore"))
    }

    /// Services a restore brought back successfully (and not migrated again after).
    pub fn restored(&self) -> Vec<String> {
        self.services().into_iter().filter(|s| s.step == "restore" && s.state == "original").map(|s| s.name).collect()
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

fn find_run(state_dir: &Path, id: &str) -> Result<RunView, Error> {
    all_runs(state_dir)?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| Error::Usage(format!("no run {id} in {}", state_dir.display())))
}

/// `unroot status [RUN]`.
pub fn status(state_dir: &Path, run: Option<&str>) -> Result<Vec<RunStatus>, Error> {
    let held = Lock::is_held(state_dir);
    let runs = all_runs(state_dir)?;
    if let Some(id) = run
        && !runs.iter().any(|r| r.id == id)
    {
        return Err(Error::Usage(format!("no run {id} in {}", state_dir.display())));
    }
    Ok(runs
        .iter()
        .filter(|r| run.is_none_or(|id| r.id == id))
        .map(|r| RunStatus {
            run: r.id.clone(),
            plan: r.plan_name.clone(),
            day: r.day,
            state: r.state(held && r.is_open()).to_string(),
            services: r.services(),
        })
        .collect())
}

fn open_ctx<'a, D: DockerPort>(
    port: &'a D,
    view: &RunView,
    out: Reporter,
    stop: &'a Interrupt,
) -> Result<RunCtx<'a, D>, Error> {
    let run = RunDir { id: view.id.clone(), dir: view.dir() };
    let mut journal = Journal::open(&run.journal_path())?;
    crate::failpoint::install(&mut journal);
    Ok(RunCtx { port, run, journal: Mutex::new(journal), out, stop })
}

/// Restores `services` (in the reverse of the order they were touched) and records the
/// outcome. Returns whether every restore succeeded.
async fn restore_all<D: DockerPort>(ctx: &RunCtx<'_, D>, plan: &Plan, services: &[String]) -> Result<bool, Error> {
    let mut failures = Vec::new();
    for name in services.iter().rev() {
        let Some(s) = plan.service(name) else {
            continue;
        };
        if let Err(e) = ctx.restore(name, &s.timings, plan.rollout.helper_image.as_deref(), s.ownership).await {
            failures.push(format!("{name}: {e}"));
        }
    }
    if failures.is_empty() {
        Ok(true)
    } else {
        ctx.record(Record::Run { event: "rollback-incomplete".into(), detail: Some(failures.join("; ")) })?;
        Ok(false)
    }
}

/// `unroot resume [RUN]`: finishes an interrupted run, or rolls it back as its
/// `on_failure` says. With nothing interrupted it says so and exits 0.
pub async fn resume(
    port: &impl DockerPort,
    state_dir: &Path,
    run: Option<&str>,
    out: Reporter,
    stop: &Interrupt,
) -> Result<Exit, Error> {
    let _lock = Lock::acquire(state_dir, "unroot resume")?;
    let open: Vec<RunView> = match run {
        Some(id) => {
            let view = find_run(state_dir, id)?;
            if !view.is_open() {
                out.note(&format!("run {id} is {}; nothing to resume", view.state(false)));
                out.done(view.state(false), 0, "Nothing to resume.");
                return Ok(Exit::Ok);
            }
            vec![view]
        }
        None => all_runs(state_dir)?.into_iter().filter(RunView::is_open).collect(),
    };
    if open.is_empty() {
        out.note(&format!("no interrupted run in {}; nothing to resume", state_dir.display()));
        out.done("applied", 0, "Nothing to resume.");
        return Ok(Exit::Ok);
    }
    let mut worst = Exit::Ok;
    for view in open {
        let exit = resume_one(port, &view, out.clone(), stop).await?;
        if exit as u8 > worst as u8 {
            worst = exit;
        }
    }
    Ok(worst)
}

async fn resume_one(port: &impl DockerPort, view: &RunView, out: Reporter, stop: &Interrupt) -> Result<Exit, Error> {
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
    let ctx = open_ctx(port, view, out.clone(), stop)?;
    let rolling_back = view.run_events().any(|e| e == "rolling-back" || e == "rollback-incomplete")
        || (view.had_failure() && plan.rollout.on_failure == OnFailure::RollbackDay);
    if rolling_back {
        ctx.record(Record::Run { event: "rolling-back".into(), detail: Some("resumed".into()) })?;
        let ok = restore_all(&ctx, &plan, &view.touched()).await?;
        return finish(&ctx, if ok { Outcome::RolledBack } else { Outcome::Incomplete }, true);
    }
    // Finish the day: the day recomputed from the saved originals of touched services.
    let mut saved = HashMap::new();
    for name in view.touched() {
        if let Some(v) = ctx.run.load_original(&name)? {
            saved.insert(name, Inspect(v));
        }
    }
    let restored = view.restored();
    let remaining: Vec<String> = view.waves.iter().flatten().filter(|s| !restored.contains(s)).cloned().collect();
    let day = preview::compute_with(port, &plan, view.day, &remaining, NameSource::ImageProbe, &saved).await?;
    let blockers: Vec<String> = day.blockers().map(|(s, b)| format!("{s}: {b}")).collect();
    if !blockers.is_empty() {
        ctx.record(Record::Run {
            event: "rolling-back".into(),
            detail: Some(format!("the day cannot be finished: {}", blockers.join("; "))),
        })?;
        let ok = restore_all(&ctx, &plan, &view.touched()).await?;
        return finish(&ctx, if ok { Outcome::RolledBack } else { Outcome::Incomplete }, true);
    }
    let apply = Apply {
        ctx,
        plan: &plan,
        day,
        plan_dir: view.plan_dir.clone(),
        parallelism: plan.rollout.parallelism,
        on_failure: plan.rollout.on_failure,
        restored_before: restored,
        start_event: "resumed",
    };
    let (outcome, failed) = apply.run().await?;
    let exit = outcome.exit(failed || !apply.restored_before.is_empty());
    apply.ctx.out.done(outcome.as_str(), exit as u8, &summary(&apply.ctx.run.id, exit));
    Ok(exit)
}

fn summary(run: &str, exit: Exit) -> String {
    match exit {
        Exit::Ok => format!("Run {run} applied."),
        Exit::RolledBack => format!("Run {run}: every service it touched is back on its original."),
        _ => format!("Run {run} is not finished: see `unroot status {run}`."),
    }
}

/// Records the end of a rollback and reports it.
fn finish<D: DockerPort>(ctx: &RunCtx<'_, D>, outcome: Outcome, failed: bool) -> Result<Exit, Error> {
    if outcome == Outcome::RolledBack {
        ctx.record(Record::Run { event: "rolled-back".into(), detail: None })?;
    }
    let exit = outcome.exit(failed);
    ctx.out.done(outcome.as_str(), exit as u8, &summary(&ctx.run.id, exit));
    Ok(exit)
}

/// `unroot rollback RUN [--service NAME]...`: restores the originals of a committed or an
/// interrupted run, then updates the ledger and the compose overrides.
pub async fn rollback(
    port: &impl DockerPort,
    state_dir: &Path,
    run: &str,
    only: &[String],
    out: Reporter,
    stop: &Interrupt,
) -> Result<Exit, Error> {
    let _lock = Lock::acquire(state_dir, &format!("unroot rollback {run}"))?;
    let view = find_run(state_dir, run)?;
    let plan = view.plan()?;
    let touched = view.touched();
    for s in only {
        if !touched.contains(s) {
            return Err(Error::Usage(format!("run {run} did not touch {s} (it touched: {})", touched.join(", "))));
        }
    }
    let services: Vec<String> = touched.iter().filter(|s| only.is_empty() || only.contains(s)).cloned().collect();
    let all = services.len() == touched.len();
    let ctx = open_ctx(port, &view, out, stop)?;
    ctx.record(Record::Run {
        event: if all { "rolling-back" } else { "service-rollback" }.into(),
        detail: Some(format!("rollback of {}", services.join(", "))),
    })?;
    let ok = restore_all(&ctx, &plan, &services).await?;
    if !ok {
        let exit = Outcome::Incomplete.exit(true);
        ctx.out.done(Outcome::Incomplete.as_str(), exit as u8, &summary(run, exit));
        return Ok(exit);
    }
    // The ledger and the overrides no longer count these services as migrated.
    let mut ledger = Ledger::load(&view.plan_dir.dir, &view.plan_name)?;
    let mut projects: Vec<ComposeRef> = Vec::new();
    if let Some(day) = ledger.days.get_mut(&view.day.to_string()).filter(|d| d.run == view.id) {
        for s in &services {
            if let Some(rec) = day.services.get_mut(s) {
                rec.state = "original".into();
                projects.extend(rec.compose.clone());
            }
        }
        if day.services.values().all(|r| r.state == "original") {
            ledger.days.remove(&view.day.to_string());
        }
    }
    ledger.save(&view.plan_dir.dir)?;
    let written = crate::executor::write_overrides(&ledger, &ctx.run)?;
    for p in projects {
        let path = compose::override_path(&p);
        if !written.contains(&path) && path.exists() {
            let _ = std::fs::remove_file(&path);
            ctx.out.note(&format!("compose: removed {} (no service of the project is migrated now)", path.display()));
        }
    }
    ctx.record(Record::Run {
        event: if all { "rolled-back" } else { "services-rolled-back" }.into(),
        detail: Some(services.join(", ")),
    })?;
    ctx.out.done("rolled-back", 0, &format!("Restored {} of run {run}.", services.join(", ")));
    Ok(Exit::Ok)
}
