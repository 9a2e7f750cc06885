//! `unroot apply` and its preview (`unroot plan`, `apply --dry-run`): everything that would
//! refuse the run is checked before the first change, then the day goes to the executor.

use std::sync::Mutex;

use crate::docker::recreate::LABEL_RUN;
use crate::docker::swarm::SwarmPort;
use crate::docker::{DockerPort, inspect_named};
use crate::engine::events::{Event, Events};
use crate::engine::executor::{Apply, Outcome, RunCtx};
use crate::engine::interrupt::Interrupt;
use crate::engine::preview::{self, AlreadyMigrated, DayPlan, NameSource};
use crate::error::Error;
use crate::model::plan::Plan;
use crate::state::{Journal, Ledger, Lock, PlanDir, Record, RunDir, ServiceState, StateLocation};

use super::{RunEnd, RunReport, open_runs};

/// What of a plan `apply` (and its preview) works on.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// The day.
    pub day: u32,
    /// Only these services of the day (`--only`); empty: all of them.
    pub only: Vec<String>,
    /// Services of one wave migrated at once (overrides the plan's).
    pub parallelism: Option<usize>,
}

/// Refuses (exit 5) while an earlier day is not applied, unless every service named by
/// `--only` has its own `after` closure applied. Names what keeps each day open.
fn check_earlier_days(plan: &Plan, ledger: &Ledger, opts: &ApplyOptions) -> Result<(), Error> {
    let open: Vec<crate::state::OpenService> =
        plan.day_numbers().into_iter().filter(|d| *d < opts.day).flat_map(|d| ledger.open_services(plan, d)).collect();
    if open.is_empty() {
        return Ok(());
    }
    if !opts.only.is_empty() {
        let unsatisfied: Vec<String> = opts
            .only
            .iter()
            .flat_map(|s| plan.graph.closure(s))
            .filter(|dep| {
                let same_day = plan.graph.day_of(dep) == Some(opts.day);
                !(ledger.is_done(plan, dep) || (same_day && opts.only.iter().any(|o| o == dep)))
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
    let mut days: Vec<u32> = open.iter().map(|o| o.day).collect();
    days.dedup();
    Err(Error::Refused(format!(
        "day {} comes after day(s) {} of this plan, which are not applied yet: {}; apply them first (or use --only for services whose dependencies are applied)",
        opts.day,
        days.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
        open.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )))
}

/// Services of the day (or of `--only`) that this plan already migrated and that Docker
/// still shows so (the name is held by that run's replacement, or by a container at the
/// recorded user; a Swarm service whose tasks run as the recorded user): applying them
/// again is a no-op (SPEC §5).
async fn already_migrated(
    port: &(impl DockerPort + SwarmPort),
    plan: &Plan,
    ledger: &Ledger,
    opts: &ApplyOptions,
) -> Vec<AlreadyMigrated> {
    let mut out = Vec::new();
    for s in day_services(plan, opts) {
        let Some(rec) = ledger.service(&s.name).filter(|r| r.state == ServiceState::Migrated) else { continue };
        let recorded_user = rec.settings.as_ref().and_then(|o| o.user.as_deref());
        let container = match s.swarm {
            Some(true) => None,
            _ => inspect_named(port, &s.name).await.ok(),
        };
        let still = match container {
            Some(c) => {
                c.label(LABEL_RUN) == Some(rec.run.as_str()) || recorded_user.is_some_and(|u| c.configured_user() == u)
            }
            // A ledger of an earlier version recorded no user for a Swarm service: the
            // plan's, when it is numeric, is what the migration wrote.
            None => match port.inspect_service(&s.name).await {
                Ok(svc) => match recorded_user {
                    Some(u) => svc.configured_user() == u,
                    None => s.user.as_ref().is_some_and(|u| {
                        let plan_user = u.to_string();
                        plan_user.split(':').all(|p| p.parse::<u32>().is_ok()) && svc.configured_user() == plan_user
                    }),
                },
                Err(_) => false,
            },
        };
        if still {
            out.push(AlreadyMigrated { name: s.name.clone(), run: rec.run.clone() });
        }
    }
    out
}

/// The services of the day, or of `--only`.
fn day_services<'a>(plan: &'a Plan, opts: &'a ApplyOptions) -> impl Iterator<Item = &'a crate::model::plan::Service> {
    plan.services.iter().filter(|s| s.day == opts.day && (opts.only.is_empty() || opts.only.contains(&s.name)))
}

/// The day's services to work on: `--only`, else all, less those already migrated.
fn remaining(plan: &Plan, opts: &ApplyOptions, already: &[AlreadyMigrated]) -> Vec<String> {
    day_services(plan, opts).filter(|s| !already.iter().any(|a| a.name == s.name)).map(|s| s.name.clone()).collect()
}

/// `unroot plan` and `apply --dry-run`: the day as apply would run it, changing nothing
/// anywhere.
///
/// Errors: a day without services or an `--only` that is not of the day (bad input), an
/// unreadable ledger, the daemon failing.
pub async fn preview(
    port: &(impl DockerPort + SwarmPort),
    plan: &Plan,
    loc: &StateLocation,
    opts: &ApplyOptions,
) -> Result<DayPlan, Error> {
    check_day(plan, opts)?;
    let ledger = Ledger::load(&PlanDir::new(&loc.dir, &plan.rollout.name).dir, &plan.rollout.name)?;
    let already = already_migrated(port, plan, &ledger, opts).await;
    let todo = remaining(plan, opts, &already);
    let mut day = if todo.is_empty() {
        DayPlan {
            plan: plan.rollout.name.clone(),
            day: opts.day,
            waves: Vec::new(),
            services: Vec::new(),
            already_migrated: Vec::new(),
        }
    } else {
        preview::compute(port, plan, opts.day, &todo, NameSource::Running).await?
    };
    day.already_migrated = already;
    Ok(day)
}

/// The day and the `--only` services are the plan's: checked before the daemon is asked.
///
/// Errors: [`Error::Usage`] naming the plan's days, or the service's day.
pub fn check_day(plan: &Plan, opts: &ApplyOptions) -> Result<(), Error> {
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

/// The run's folder and journal, its header written: the plan as applied, its sha256 and
/// the waves. Two runs of a day started within one second get distinct folders.
fn start_run(plan: &Plan, plan_dir: &PlanDir, day: u32, waves: &[Vec<String>]) -> Result<(RunDir, Journal), Error> {
    let base = crate::state::new_run_id(day);
    let run_id = (1..)
        .map(|n| if n == 1 { base.clone() } else { format!("{base}-{n}") })
        .find(|id| !plan_dir.run_dir(id).exists())
        .expect("some suffix is free");
    let run = RunDir::create(plan_dir, &run_id, &plan.source.text)?;
    let mut journal = Journal::open(&run.journal_path())?;
    crate::state::failpoint::install(&mut journal);
    journal.append(Record::Header {
        run: run_id,
        plan: plan.rollout.name.clone(),
        plan_sha256: plan.sha256.clone(),
        day,
        waves: waves.to_vec(),
        on_failure: plan.rollout.on_failure,
        version: env!("CARGO_PKG_VERSION").into(),
        plan_path: std::fs::canonicalize(&plan.source.name)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| plan.source.name.clone()),
        user: crate::state::operator(),
        host: crate::state::hostname(),
    })?;
    Ok((run, journal))
}

/// Refuses (exit 5) while a run of this plan is open: it must be resumed or rolled back.
fn refuse_open_runs(plan_dir: &PlanDir, loc: &StateLocation) -> Result<(), Error> {
    let Some(run) = open_runs(plan_dir)?.into_iter().next() else { return Ok(()) };
    let id = &run.id;
    Err(Error::Refused(format!(
        "run {id} of this plan is {}; continue it with `unroot resume {id}{hint}` or undo it with `unroot rollback {id}{hint}`",
        run.state(false).as_str(),
        hint = loc.hint
    )))
}

/// `unroot apply`: takes the lock, refuses what must be refused (an open run, an earlier
/// day not applied), previews the day ([`Event::Preview`]), asks `confirm`, then runs the
/// day as a new run and reports how it ended. `confirm` is asked once the day is known to be
/// free of blockers, before the first change, with the number of services to migrate: `Ok`
/// goes on.
///
/// Errors: bad input (the day, `--only`, a declined confirmation), a refusal (the lock, an
/// open run, an earlier day), blockers (nothing changed), the daemon failing before the
/// run starts, or the run's state not written (something may not be back).
pub async fn apply(
    port: &(impl DockerPort + SwarmPort),
    plan: &Plan,
    loc: &StateLocation,
    opts: &ApplyOptions,
    out: &dyn Events,
    stop: &Interrupt,
    confirm: impl AsyncFnOnce(usize) -> Result<(), Error>,
) -> Result<RunReport, Error> {
    check_day(plan, opts)?;
    let _lock = Lock::acquire(&loc.dir, &format!("unroot apply --day {}", opts.day))?;
    crate::engine::orphans::sweep(port).await;
    let plan_dir = PlanDir::new(&loc.dir, &plan.rollout.name);
    refuse_open_runs(&plan_dir, loc)?;
    let ledger = Ledger::load(&plan_dir.dir, &plan.rollout.name)?;
    check_earlier_days(plan, &ledger, opts)?;

    let already = already_migrated(port, plan, &ledger, opts).await;
    let todo = remaining(plan, opts, &already);
    if todo.is_empty() {
        for a in &already {
            out.note(&format!("{}: already migrated by run {}; nothing to do", a.name, a.run));
        }
        let summary = format!("Day {}: every service is already migrated; nothing was changed.", opts.day);
        let nothing = RunEnd::Ran { outcome: Outcome::Applied, any_failed: false };
        return Ok(RunReport::done(out, nothing, summary));
    }
    let mut day = preview::compute(port, plan, opts.day, &todo, NameSource::ImageProbe).await?;
    day.already_migrated = already;
    out.emit(Event::Preview { day: &day, title: plan.days.get(&opts.day).map(String::as_str) });
    let day = day.ready().map_err(|blockers| {
        Error::Blocked(format!("the day has blockers; nothing was changed:\n  {}", blockers.join("\n  ")))
    })?;
    confirm(day.waves.iter().flatten().count()).await?;

    let (run, journal) = start_run(plan, &plan_dir, opts.day, &day.waves)?;
    let run_id = run.id.clone();
    let ctx = RunCtx { port, run, journal: Mutex::new(journal), out, stop, hint: loc.hint.clone() };
    let mut apply = Apply::new(ctx, plan, day, plan_dir);
    if let Some(k) = opts.parallelism {
        apply.parallelism = k;
    }
    let (outcome, any_failed) = apply.run().await.map_err(|e| {
        Error::Incomplete(format!(
            "the run's state could not be written: {e}; `unroot status {run_id}{}` says what is done",
            loc.hint
        ))
    })?;
    Ok(RunReport::ran(&apply.ctx, Some(opts.day), outcome, any_failed))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::docker::fake::FakeDocker;
    use crate::docker::fake_swarm::FakeSwarm;
    use crate::docker::swarm::ServiceInspect;
    use crate::model::compose::ServiceOverride;
    use crate::state::ServiceRecord;

    fn opts() -> ApplyOptions {
        ApplyOptions { day: 1, ..ApplyOptions::default() }
    }

    #[test]
    fn a_swarm_service_this_plan_migrated_is_left_alone_on_a_second_apply() {
        let plan = Plan::parse(
            "p.toml",
            "[rollout]\nname = \"p\"\n[service.api]\nday = 1\nuser = \"999:999\"\nswarm = true\n",
        )
        .unwrap();
        let fake = FakeDocker::default();
        let spec = |user: &str| {
            json!({"Name": "api", "Mode": {"Replicated": {"Replicas": 1}},
                   "TaskTemplate": {"ContainerSpec": {"Image": "img", "User": user}}})
        };
        fake.with(|s| {
            let mut w = FakeSwarm::default();
            w.services.push(ServiceInspect(json!({"ID": "s1", "Version": {"Index": 9}, "Spec": spec("999:999")})));
            s.swarm = Some(w);
        });
        let mut ledger = Ledger::default();
        let settings = ServiceOverride { user: Some("999:999".into()), ..ServiceOverride::default() };
        let rec = ServiceRecord {
            state: crate::state::ServiceState::Migrated,
            run: "day1-x".into(),
            compose: None,
            stack: None,
            settings: Some(settings),
        };
        ledger.record_commit(1, "day1-x", BTreeMap::from([("api".to_string(), rec)]));
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let already = rt.block_on(already_migrated(&fake, &plan, &ledger, &opts()));
        assert_eq!(already.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["api"]);
        // A ledger of the earlier version, without the user: the plan's numeric user.
        let mut old = Ledger::default();
        let rec = ServiceRecord {
            state: crate::state::ServiceState::Migrated,
            run: "day1-x".into(),
            compose: None,
            stack: None,
            settings: None,
        };
        old.record_commit(1, "day1-x", BTreeMap::from([("api".to_string(), rec)]));
        assert_eq!(rt.block_on(already_migrated(&fake, &plan, &old, &opts())).len(), 1);
        // Someone put it back on root meanwhile: it is migrated again.
        fake.with(|s| s.swarm.as_mut().unwrap().services[0].0["Spec"] = spec(""));
        assert!(rt.block_on(already_migrated(&fake, &plan, &ledger, &opts())).is_empty());
        assert!(rt.block_on(already_migrated(&fake, &plan, &old, &opts())).is_empty());
    }
}
