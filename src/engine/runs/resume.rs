//! `unroot resume [RUN]`: finishes an interrupted run, or rolls it back as its `on_failure`
//! says (SPEC §5).

use crate::docker::swarm::SwarmPort;
use crate::docker::{DockerPort, Port};
use crate::engine::events::Events;
use crate::engine::executor::{Apply, Outcome, RunCtx};
use crate::engine::interrupt::Interrupt;
use crate::engine::preview::{self, NameSource};
use crate::error::Error;
use crate::model::plan::{OnFailure, Plan};
use crate::state::{Cause, Lock, Record, RunEvent, StateLocation, run_events};

use super::{Overwrite, RunEnd, RunReport, RunView, all_runs, find_run, open_ctx, refuse_foreign_holders, restore_all};

/// `unroot resume [RUN]`: finishes each interrupted run (or only `run`), or rolls it back as
/// its `on_failure` says. With nothing interrupted it says so; the run is then reported as
/// it stands (applied, or already committed or rolled back). Returns how each run ended.
///
/// Errors: the lock is held (refused), no such run (bad input), a name held by a container
/// that is not the run's (nothing changed), the state dir or the daemon failing.
pub async fn resume(
    port: &(impl DockerPort + SwarmPort),
    loc: &StateLocation,
    run: Option<&str>,
    out: &dyn Events,
    stop: &Interrupt,
) -> Result<Vec<RunReport>, Error> {
    let _lock = Lock::acquire(&loc.dir, "unroot resume")?;
    crate::engine::orphans::sweep(port).await;
    let open: Vec<RunView> = match run {
        Some(id) => {
            let view = find_run(loc, id)?;
            if !view.is_open() {
                let state = view.state(false);
                out.note(&format!("run {id} is {}; nothing to resume", state.as_str()));
                return Ok(vec![RunReport::done(out, RunEnd::AlreadyEnded(state), "Nothing to resume.")]);
            }
            vec![view]
        }
        None => all_runs(&loc.dir)?.into_iter().filter(RunView::is_open).collect(),
    };
    if open.is_empty() {
        out.note(&format!("no interrupted run in state directory {}; nothing to resume", loc.dir.display()));
        let nothing = RunEnd::Ran { outcome: Outcome::Applied, any_failed: false };
        return Ok(vec![RunReport::done(out, nothing, "Nothing to resume.")]);
    }
    let mut reports = Vec::new();
    for view in open {
        reports.push(resume_one(port, &view, out, stop, &loc.hint).await?);
    }
    Ok(reports)
}

async fn resume_one(
    port: &(impl DockerPort + SwarmPort),
    view: &RunView,
    out: &dyn Events,
    stop: &Interrupt,
    hint: &str,
) -> Result<RunReport, Error> {
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
        return finish(&ctx, ok);
    }
    // A name the run's services lost to a container that is not theirs: refuse, change nothing.
    refuse_foreign_holders(port, view, &view.touched(), Overwrite::Refuse).await?;
    let ctx = open_ctx(port, view, out, stop, hint)?;
    // Finish the day: the day recomputed from the saved originals of touched services.
    let saved = saved_originals(&ctx, view)?;
    let restored = view.restored();
    let remaining: Vec<String> = view.waves.iter().flatten().filter(|s| !restored.contains(s)).cloned().collect();
    let day = preview::compute_with(port, &plan, view.day, &remaining, NameSource::ImageProbe, &saved).await?;
    let day = match day.ready() {
        Ok(day) => day,
        Err(blockers) => return cannot_finish(&ctx, view, &plan, &blockers).await,
    };
    let mut apply = Apply::new(ctx, &plan, day, view.plan_dir.clone());
    apply.restored_before = restored;
    apply.start_event = RunEvent::Resumed;
    let (outcome, failed) = apply.run().await?;
    Ok(RunReport::ran(&apply.ctx, None, outcome, failed || !apply.restored_before.is_empty()))
}

/// The originals the run saved of the services it touched, to recompute its day from.
fn saved_originals<D: Port>(ctx: &RunCtx<'_, D>, view: &RunView) -> Result<preview::Saved, Error> {
    let mut saved = preview::Saved::default();
    for name in view.touched() {
        if let Some(original) = crate::engine::load_original(&ctx.run, &name)? {
            saved.insert(name, original);
        }
    }
    Ok(saved)
}

/// The day cannot be finished (`blockers`): every service the run touched is restored.
async fn cannot_finish(
    ctx: &RunCtx<'_, impl DockerPort + SwarmPort>,
    view: &RunView,
    plan: &Plan,
    blockers: &[String],
) -> Result<RunReport, Error> {
    let services = view.restore_order(&view.touched());
    refuse_foreign_holders(ctx.port, view, &services, Overwrite::Refuse).await?;
    ctx.record(Record::rollback(
        RunEvent::RollingBack,
        Cause::CannotFinish,
        Some(format!("the day cannot be finished: {}", blockers.join("; "))),
        services.clone(),
    ))?;
    let ok = restore_all(ctx, view, plan, &services).await?;
    finish(ctx, ok)
}

/// Records the end of a rollback that `resume` continued and reports it (a failure is why
/// it rolled back: exit 3 at best).
fn finish<D: Port>(ctx: &RunCtx<'_, D>, ok: bool) -> Result<RunReport, Error> {
    let outcome = if ok { Outcome::RolledBack } else { Outcome::Incomplete };
    if outcome == Outcome::RolledBack {
        ctx.record(Record::run(RunEvent::RolledBack))?;
    }
    Ok(RunReport::ran(ctx, None, outcome, true))
}
