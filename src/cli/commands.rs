//! The commands that act on a plan against the daemon: `plan` and `apply`. They check
//! everything that would refuse the run before the first change, then hand the day to the
//! executor.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use crate::cli::output::Output;
use crate::docker::recreate::LABEL_RUN;
use crate::docker::swarm::SwarmPort;
use crate::docker::{DockerPort, inspect_named};
use crate::engine::events::Events;
use crate::engine::executor::{Apply, Outcome, RunCtx};
use crate::engine::interrupt::Interrupt;
use crate::engine::preview::{self, AlreadyMigrated, NameSource};
use crate::error::{Error, Exit};
use crate::model::plan::Plan;
use crate::state::{Journal, Ledger, Lock, PlanDir, Record, RunDir, ServiceState, StateLocation};

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

/// `unroot plan` and `apply --dry-run`: the preview, changing nothing anywhere.
pub async fn plan(port: &(impl DockerPort + SwarmPort), plan: &Plan, opts: &ApplyOptions) -> Result<Exit, Error> {
    check_day(plan, opts)?;
    let loc = StateLocation::resolve(opts.state_dir.as_deref(), Some(plan));
    let ledger = Ledger::load(&PlanDir::new(&loc.dir, &plan.rollout.name).dir, &plan.rollout.name)?;
    let already = already_migrated(port, plan, &ledger, opts).await;
    let todo = remaining(plan, opts, &already);
    let mut day = if todo.is_empty() {
        preview::DayPlan {
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
    })?;
    Ok((run, journal))
}

/// `unroot apply`: refuses what must be refused, previews, confirms, runs the day.
pub async fn apply(
    port: &(impl DockerPort + SwarmPort),
    plan: &Plan,
    opts: &ApplyOptions,
    stop: &Interrupt,
    reporter: &dyn Events,
) -> Result<Exit, Error> {
    if opts.dry_run {
        return self::plan(port, plan, opts).await;
    }
    check_day(plan, opts)?;
    let loc = StateLocation::resolve(opts.state_dir.as_deref(), Some(plan));
    let _lock = Lock::acquire(&loc.dir, &format!("unroot apply --day {}", opts.day))?;
    crate::engine::orphans::sweep(port).await;
    let plan_dir = PlanDir::new(&loc.dir, &plan.rollout.name);
    if let Some(run) = crate::engine::runs::open_runs(&plan_dir)?.first() {
        let id = &run.id;
        return Err(Error::Refused(format!(
            "run {id} of this plan is {}; continue it with `unroot resume {id}{hint}` or undo it with `unroot rollback {id}{hint}`",
            run.state(false).as_str(),
            hint = loc.hint
        )));
    }
    let ledger = Ledger::load(&plan_dir.dir, &plan.rollout.name)?;
    check_earlier_days(plan, &ledger, opts)?;

    let already = already_migrated(port, plan, &ledger, opts).await;
    let todo = remaining(plan, opts, &already);
    let out = Output { json: opts.json };
    if todo.is_empty() {
        for a in &already {
            reporter.note(&format!("{}: already migrated by run {}; nothing to do", a.name, a.run));
        }
        reporter.done(
            "applied",
            0,
            &format!("Day {}: every service is already migrated; nothing was changed.", opts.day),
        );
        return Ok(Exit::Ok);
    }
    let mut day = preview::compute(port, plan, opts.day, &todo, NameSource::ImageProbe).await?;
    day.already_migrated = already;
    if !opts.json {
        out.preview(&day, plan.days.get(&opts.day).map(String::as_str));
    }
    let day = day.ready().map_err(|blockers| {
        Error::Blocked(format!("the day has blockers; nothing was changed:\n  {}", blockers.join("\n  ")))
    })?;
    confirm(opts, day.waves.iter().flatten().count())?;

    let (run, journal) = start_run(plan, &plan_dir, opts.day, &day.waves)?;
    let run_id = run.id.clone();
    let ctx = RunCtx { port, run, journal: Mutex::new(journal), out: reporter, stop, hint: loc.hint.clone() };
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
    let exit = outcome.exit(any_failed);
    let ctx = &apply.ctx;
    let summary = summary(ctx, opts.day, outcome, exit);
    ctx.out.done(outcome.as_str(), exit as u8, &summary);
    Ok(exit)
}

/// What a day's apply ended as, for people, with the commands that continue it.
fn summary<D: crate::docker::Port>(ctx: &RunCtx<'_, D>, day: u32, outcome: Outcome, exit: Exit) -> String {
    let run_id = &ctx.run.id;
    match (outcome, exit) {
        (_, Exit::Ok) => format!("Day {} applied (run {run_id}).", day),
        (Outcome::Applied, Exit::RolledBack) => format!(
            "Day {} committed, but a service failed and is back on its original (run {run_id}); the day stays open until it is migrated.",
            day
        ),
        (_, Exit::RolledBack) => {
            format!("Day {} failed; every service it touched is back on its original (run {run_id}).", day)
        }
        (Outcome::CommitIncomplete, _) => format!(
            "Day {}: every service is migrated and healthy, but a parked original could not be removed; `{}` removes it.",
            day,
            ctx.command("resume")
        ),
        _ => format!(
            "Day {} did not finish and something is not back: see `{}`; continue with `{}` or `{}`.",
            day,
            ctx.command("status"),
            ctx.command("resume"),
            ctx.command("rollback")
        ),
    }
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
        ApplyOptions {
            day: 1,
            only: vec![],
            parallelism: None,
            yes: true,
            dry_run: false,
            json: false,
            state_dir: None,
        }
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
