//! The commands that act on a plan against the daemon: `plan` and `apply`. They check
//! everything that would refuse the run before the first change, then hand the day to the
//! executor.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::docker::DockerPort;
use crate::error::{Error, Exit};
use crate::executor::{Apply, RunCtx};
use crate::interrupt::Interrupt;
use crate::output::{Output, Reporter};
use crate::plan::Plan;
use crate::preview::{self, NameSource};
use crate::state::{Journal, Ledger, Lock, PlanDir, Record, RunDir};

/// Options of `apply` (and of `plan`, which is `apply --dry-run`).
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub day: u32,
    pub only: Vec<String>,
    pub parallelism: Option<usize>,
    pub yes: bool,
    pub dry_run: bool,
    pub json: bool,
    pub state_dir: Option<PathBuf>,
}

/// The state directory: `--state-dir`, else the plan's (relative to the current directory).
pub fn state_dir(plan: &Plan, flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf).unwrap_or_else(|| plan.rollout.state_dir.clone())
}

/// Run ids of the plan that neither committed nor rolled back.
pub fn interrupted_runs(plan_dir: &PlanDir) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for run in plan_dir.runs()? {
        let entries = Journal::read(&plan_dir.run_dir(&run).join("journal.jsonl"))?;
        let ended = entries.iter().rev().find_map(|e| match &e.record {
            Record::Run { event, .. } if event == "committed" || event == "rolled-back" => Some(()),
            _ => None,
        });
        if ended.is_none() {
            out.push(run);
        }
    }
    Ok(out)
}

/// Refuses (exit 5) while an earlier day is not applied, unless every service named by
/// `--only` has its own `after` closure applied.
fn check_earlier_days(plan: &Plan, ledger: &Ledger, opts: &ApplyOptions) -> Result<(), Error> {
    let earlier: Vec<u32> =
        plan.day_numbers().into_iter().filter(|d| *d < opts.day && !ledger.is_applied(*d)).collect();
    if earlier.is_empty() {
        return Ok(());
    }
    if !opts.only.is_empty() {
        let unsatisfied: Vec<String> = opts
            .only
            .iter()
            .flat_map(|s| plan.graph.closure(s))
            .filter(|dep| {
                let d = plan.graph.day_of(dep).unwrap_or(0);
                !(ledger.is_applied(d) || (d == opts.day && opts.only.iter().any(|o| o == dep)))
            })
            .map(str::to_string)
            .collect();
        if unsatisfied.is_empty() {
            return Ok(());
        }
        return Err(Error::Refused(format!(
            "day {} waits for {}, which are not applied yet",
            opts.day,
            unsatisfied.join(", ")
        )));
    }
    Err(Error::Refused(format!(
        "day {} comes after day(s) {} of this plan, which are not applied yet; apply them first (or use --only for services whose dependencies are applied)",
        opts.day,
        earlier.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
    )))
}

fn confirm(opts: &ApplyOptions, services: usize) -> Result<(), Error> {
    if opts.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage("apply changes containers: without a terminal to confirm on, pass --yes".into()));
    }
    eprint!("Apply day {} to {services} service(s)? Type yes to go on: ", opts.day);
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(Error::io("reading the confirmation"))?;
    if answer.trim() == "yes" { Ok(()) } else { Err(Error::Usage("not confirmed; nothing was changed".into())) }
}

/// `unroot plan` and `apply --dry-run`: the preview, changing nothing anywhere.
pub async fn plan(port: &impl DockerPort, plan: &Plan, opts: &ApplyOptions) -> Result<Exit, Error> {
    check_day(plan, opts)?;
    let day = preview::compute(port, plan, opts.day, &opts.only, NameSource::Running).await?;
    Output { json: opts.json }.preview(&day, plan.days.get(&opts.day).map(String::as_str));
    Ok(if day.blockers().next().is_some() { Exit::Found } else { Exit::Ok })
}

fn check_day(plan: &Plan, opts: &ApplyOptions) -> Result<(), Error> {
    if plan.graph.waves(opts.day).is_empty() {
        return Err(Error::Usage(format!(
            "day {} has no services in {} (days: {})",
            opts.day,
            plan.source.name,
            plan.day_numbers().iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
        )));
    }
    for o in &opts.only {
        match plan.graph.day_of(o) {
            None => {
                return Err(Error::Usage(format!("--only {o}: the plan has no such service")));
            }
            Some(d) if d != opts.day => {
                return Err(Error::Usage(format!("--only {o}: it is on day {d}, not day {}", opts.day)));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// `unroot apply`: refuses what must be refused, previews, confirms, runs the day.
pub async fn apply(
    port: &impl DockerPort,
    plan: &Plan,
    opts: &ApplyOptions,
    stop: &Interrupt,
    reporter: Reporter,
) -> Result<Exit, Error> {
    if opts.dry_run {
        return self::plan(port, plan, opts).await;
    }
    check_day(plan, opts)?;
    let state = state_dir(plan, opts.state_dir.as_deref());
    let _lock = Lock::acquire(&state, &format!("unroot apply --day {}", opts.day))?;
    let plan_dir = PlanDir::new(&state, &plan.rollout.name);
    if let Some(run) = interrupted_runs(&plan_dir)?.first() {
        return Err(Error::Refused(format!(
            "run {run} of this plan was interrupted; continue it with `unroot resume {run}` or undo it with `unroot rollback {run}`"
        )));
    }
    let ledger = Ledger::load(&plan_dir.dir, &plan.rollout.name)?;
    check_earlier_days(plan, &ledger, opts)?;

    let day = preview::compute(port, plan, opts.day, &opts.only, NameSource::ImageProbe).await?;
    let out = Output { json: opts.json };
    if !opts.json {
        out.preview(&day, plan.days.get(&opts.day).map(String::as_str));
    }
    let blockers: Vec<String> = day.blockers().map(|(s, b)| format!("{s}: {b}")).collect();
    if !blockers.is_empty() {
        return Err(Error::Blocked(format!("the day has blockers; nothing was changed:\n  {}", blockers.join("\n  "))));
    }
    confirm(opts, day.services.len())?;

    // Two runs of a day started within one second get distinct folders.
    let base = crate::state::new_run_id(opts.day);
    let run_id = (1..)
        .map(|n| if n == 1 { base.clone() } else { format!("{base}-{n}") })
        .find(|id| !plan_dir.run_dir(id).exists())
        .expect("some suffix is free");
    let run = RunDir::create(&plan_dir, &run_id, &plan.source.text)?;
    let mut journal = Journal::open(&run.journal_path())?;
    crate::failpoint::install(&mut journal);
    journal.append(Record::Header {
        run: run_id.clone(),
        plan: plan.rollout.name.clone(),
        plan_sha256: plan.sha256.clone(),
        day: opts.day,
        waves: day.waves.clone(),
        on_failure: format!("{:?}", plan.rollout.on_failure),
        version: env!("CARGO_PKG_VERSION").into(),
        plan_path: std::fs::canonicalize(&plan.source.name)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| plan.source.name.clone()),
    })?;
    let apply = Apply {
        ctx: RunCtx { port, run, journal: Mutex::new(journal), out: reporter, stop },
        plan,
        day,
        plan_dir,
        parallelism: opts.parallelism.unwrap_or(plan.rollout.parallelism),
        on_failure: plan.rollout.on_failure,
        restored_before: Vec::new(),
        start_event: "started",
    };
    let (outcome, any_failed) = apply.run().await.map_err(|e| {
        Error::Incomplete(format!("the run's state could not be written: {e}; `unroot status` says what is done"))
    })?;
    let exit = outcome.exit(any_failed);
    let summary = match exit {
        Exit::Ok => format!("Day {} applied (run {run_id}).", opts.day),
        Exit::RolledBack => {
            format!("Day {} failed; every service it touched is back on its original (run {run_id}).", opts.day)
        }
        _ => format!(
            "Day {} did not finish and something is not back: see `unroot status {run_id}`; continue with `unroot resume {run_id}` or `unroot rollback {run_id}`.",
            opts.day
        ),
    };
    apply.ctx.out.done(outcome.as_str(), exit as u8, &summary);
    Ok(exit)
}
