//! Reading what a report is made of: the daemon as the audit sees it, the plan's runs and
//! ledger, the exceptions' containers, `verify`, and where it all comes from. Reads only.

use std::collections::BTreeMap;

use super::days::committed_days;
use super::history::{self, RunHistory};
use super::{Inputs, Kind, Now, Original, Provenance, Report, Secrets, Seen, VerifyReport, build};
use crate::docker::swarm::SwarmPort;
use crate::docker::{DockerError, DockerPort};
use crate::engine::audit::{self, Posture, ServiceEntry};
use crate::engine::executor::without_saved_at;
use crate::engine::runs::RunView;
use crate::engine::verify::verify;
use crate::error::Error;
use crate::model::plan::Plan;
use crate::state::{Ledger, Lock, PlanDir, Record, StateLocation, Step, StepDetail};

/// The uids the inspect step of a run recorded for `service`.
fn recorded_uids(view: &RunView, service: &str) -> Option<Vec<u32>> {
    view.entries.iter().find_map(|e| match &e.record {
        Record::Step { service: s, step: Step::Inspect, ok: Some(true), detail, .. } if s == service => {
            StepDetail::of(detail).process_uids
        }
        _ => None,
    })
}

/// The label Swarm gives a task's container: the service it belongs to.
const SWARM_SERVICE_LABEL: &str = "com.docker.swarm.service.name";

/// Reads everything a report needs: the daemon as the audit sees it (the containers and
/// services `filters` match; a Swarm task counts under its service), the plan's runs and
/// ledger, the exceptions' containers, `verify` through the last day applied, and the
/// report's provenance (the daemon, this host, the plan file, who ran each run). Changes
/// nothing.
///
/// Errors: the daemon cannot be listed; the state directory cannot be read.
pub async fn gather(
    port: &(impl DockerPort + SwarmPort),
    plan: &Plan,
    loc: &StateLocation,
    filters: &[audit::Filter],
) -> Result<Report, Error> {
    // The filters' containers, and every one the plan names: the report covers its plan.
    let scope = audit::Scope { filters, planned: Some(plan) };
    let seen = audit::run(port, Some(plan), &scope).await?;
    let services = audit::services(port, Some(plan), &scope).await?;
    let mut secrets = plan_secrets(plan);
    let mut now = BTreeMap::new();
    containers_now(port, seen.containers, &services, &mut secrets, &mut now).await?;
    services_now(port, services, &mut secrets, &mut now).await?;
    let exceptions = exceptions_now(plan, &now);

    let plan_dir = PlanDir::new(&loc.dir, &plan.rollout.name);
    let ledger = Ledger::load(&plan_dir.dir, &plan.rollout.name)?;
    let held = Lock::is_held(&loc.dir);
    let views = run_views(&plan_dir)?;
    let originals = originals(&views, &mut secrets)?;
    // Every environment is known now: the journals' errors are read redacted, without the
    // path of a saved log (the report quotes the log itself).
    secrets.settle();
    let clean = |text: &str, service: &str| secrets.clean(&without_saved_at(text), [service]);
    let mut runs = Vec::new();
    for v in &views {
        let mut run = history::of(v, v.state(held), &clean);
        quote_failure_logs(v, &mut run, &clean)?;
        runs.push(run);
    }

    let provenance = Provenance::of(port.daemon(), crate::state::hostname(), plan, &views);

    let verify = verify_report(port, plan, &ledger).await?;
    let filters = filters.iter().map(ToString::to_string).collect();
    let generated = crate::state::now_rfc3339();
    Ok(build(Inputs { plan, generated, filters, provenance, now, exceptions, originals, ledger, runs, verify }))
}

/// The plan's own environment values, by service.
fn plan_secrets(plan: &Plan) -> Secrets {
    let mut secrets = Secrets::default();
    for s in &plan.services {
        let env: Vec<String> = s.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        secrets.add(&s.name, &env);
    }
    secrets
}

/// The containers the audit saw, as they are now, into `now`; a task of one of `services`
/// is left to its service. Each one's environment goes into `secrets`, and one removed
/// meanwhile is left out.
async fn containers_now(
    port: &impl DockerPort,
    entries: Vec<audit::Entry>,
    services: &[ServiceEntry],
    secrets: &mut Secrets,
    now: &mut BTreeMap<(Kind, String), Now>,
) -> Result<(), Error> {
    for e in entries {
        let c = match port.inspect_container(&e.id).await {
            Ok(c) => c,
            Err(DockerError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        secrets.add(&e.name, &c.env());
        if c.label(SWARM_SERVICE_LABEL).is_some_and(|svc| services.iter().any(|s| s.name == svc)) {
            continue;
        }
        let n = Now {
            kind: Kind::Container,
            image: e.image,
            class: e.class,
            configured_uid: e.configured_uid,
            process_uids: e.process_uids,
            flags: e.flags,
            exception: e.exception,
            posture: Posture::of_container(&c),
        };
        now.insert((Kind::Container, e.name), n);
    }
    Ok(())
}

/// The Swarm services the audit saw, as they are now, into `now`. Each one's environment
/// goes into `secrets`, and one removed meanwhile is left out.
async fn services_now(
    port: &impl SwarmPort,
    services: Vec<ServiceEntry>,
    secrets: &mut Secrets,
    now: &mut BTreeMap<(Kind, String), Now>,
) -> Result<(), Error> {
    for s in services {
        let spec = match port.inspect_service(&s.id).await {
            Ok(spec) => spec,
            Err(DockerError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        secrets.add(&s.name, &spec.env());
        let n = Now {
            kind: Kind::Service,
            image: s.image,
            class: s.class,
            configured_uid: s.configured_uid,
            process_uids: s.process_uids,
            flags: s.flags,
            exception: s.exception,
            posture: Posture::of_service(&spec),
        };
        now.insert((Kind::Service, s.name), n);
    }
    Ok(())
}

/// The plan's exceptions as they are now, by name, as listed in `now` (the report's scope
/// holds every service the plan names, whatever `--filter` says). One on no daemon is left
/// out.
fn exceptions_now(plan: &Plan, now: &BTreeMap<(Kind, String), Now>) -> BTreeMap<String, Seen> {
    let mut exceptions = BTreeMap::new();
    for s in plan.services.iter().filter(|s| s.keep_root.is_some()) {
        if let Some((_, n)) = now.iter().find(|((_, name), _)| *name == s.name) {
            exceptions
                .insert(s.name.clone(), Seen { posture: n.posture.clone(), process_uids: n.process_uids.clone() });
        }
    }
    exceptions
}

/// The plan's runs, oldest first by when each began (run ids sort `day10-…` before
/// `day2-…`).
fn run_views(plan_dir: &PlanDir) -> Result<Vec<RunView>, Error> {
    let mut views = Vec::new();
    for id in plan_dir.runs()? {
        views.push(RunView::load(plan_dir, &id)?);
    }
    views.sort_by(|a, b| {
        let start = |v: &RunView| v.entries.first().map(|e| e.ts.clone()).unwrap_or_default();
        start(a).cmp(&start(b)).then(a.id.cmp(&b.id))
    });
    Ok(views)
}

/// What the first run that touched each service saved of it. Every saved original's
/// environment goes into `secrets`, the later runs' too.
fn originals(views: &[RunView], secrets: &mut Secrets) -> Result<BTreeMap<String, Original>, Error> {
    let mut originals: BTreeMap<String, Original> = BTreeMap::new();
    for view in views {
        for name in view.touched() {
            let Some(inspect) = crate::engine::load_original(&view.run_dir(), &name)? else { continue };
            secrets.add(&name, &inspect.env());
            if let std::collections::btree_map::Entry::Vacant(first) = originals.entry(name) {
                let process_uids = recorded_uids(view, first.key());
                first.insert(Original { run: view.id.clone(), inspect, process_uids });
            }
        }
    }
    Ok(originals)
}

/// The log each failed service of `run` saved, quoted in the failure whose error says it
/// was saved (redacted again).
fn quote_failure_logs(view: &RunView, run: &mut RunHistory, clean: history::Clean) -> Result<(), Error> {
    let dir = view.run_dir();
    for s in &mut run.services {
        let Some(failure) = s.failure.as_mut().filter(|f| f.log_saved) else { continue };
        if let Some(text) = dir.load_failure_log(&s.name)? {
            let text = clean(&text, &s.name);
            failure.log = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
        }
    }
    Ok(())
}

/// `verify`'s verdicts for every day a run committed, each day apart (none when no day
/// was committed).
async fn verify_report(
    port: &(impl DockerPort + SwarmPort),
    plan: &Plan,
    ledger: &Ledger,
) -> Result<VerifyReport, Error> {
    let days = committed_days(ledger);
    let verdicts = match VerifyReport::through(plan, &days) {
        Some(last) => verify(port, plan, Some(last)).await?,
        None => Vec::new(),
    };
    Ok(VerifyReport::of(plan, &days, verdicts))
}
