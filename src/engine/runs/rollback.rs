//! `unroot rollback RUN [--service NAME]...`: the originals of a run put back, and the
//! ledger and the compose and stack overrides updated to match (SPEC §5).

use std::path::PathBuf;

use crate::docker::Port;
use crate::engine::compose::{self, ComposeRef};
use crate::engine::events::Events;
use crate::engine::executor::{Outcome, RunCtx};
use crate::engine::interrupt::Interrupt;
use crate::error::Error;
use crate::state::{Cause, Ledger, Lock, Record, RunEvent, ServiceState, StateLocation};

use super::{Overwrite, RunEnd, RunReport, RunView, find_run, open_ctx, refuse_foreign_holders, restore_all};

/// `unroot rollback RUN [--service NAME]...`: restores the originals of a committed or an
/// interrupted run, then updates the ledger and the compose overrides. A name held by a
/// container that is not the run's (nor its successor's) refuses it before anything changes.
///
/// Errors: the lock is held (refused), no such run or a service the run did not touch (bad
/// input), a foreign holder of a name or (unless `overwrite`) a Swarm service changed by
/// someone else (nothing changed), the state dir or the daemon failing.
pub async fn rollback(
    port: &impl Port,
    loc: &StateLocation,
    run: &str,
    only: &[String],
    overwrite: Overwrite,
    out: &dyn Events,
    stop: &Interrupt,
) -> Result<RunReport, Error> {
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
    if !restore_all(&ctx, &view, &plan, &services).await? {
        return Ok(RunReport::ran(&ctx, None, Outcome::Incomplete, true));
    }
    forget(&ctx, &view, &services)?;
    ctx.record(Record::run_with(
        if all { RunEvent::RolledBack } else { RunEvent::ServicesRolledBack },
        services.join(", "),
    ))?;
    Ok(RunReport::done(ctx.out, RunEnd::Restored, format!("Restored {} of run {run}.", services.join(", "))))
}

/// The ledger and the overrides no longer count `services` as migrated by this run: their
/// records say original, and an override left with no migrated service is removed.
fn forget<D: Port>(ctx: &RunCtx<'_, D>, view: &RunView, services: &[String]) -> Result<(), Error> {
    let mut ledger = Ledger::load(&view.plan_dir.dir, &view.plan_name)?;
    let mut projects: Vec<ComposeRef> = Vec::new();
    let mut stacks = Vec::new();
    for day in ledger.days.values_mut() {
        for s in services {
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
    Ok(())
}
