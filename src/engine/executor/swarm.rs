//! A Swarm service's migration (SPEC §11 steps 1 and 4–7) and its restore (step 8),
//! journaled like a container's steps. Each step reads what the manager shows first and does
//! only what is missing, so `resume` runs them again safely; the resume decision itself is
//! Swarm's word: a service whose spec already is the planned one goes straight to its gate.

use super::*;
use crate::docker::Port;

mod restore;
use crate::docker::swarm::{ServiceInspect, ServiceSpec, SpecMount, SwarmPort};
use crate::engine::swarm::jobs::{self, JobSite};
use crate::engine::swarm::preview::SwarmResolved;
use crate::engine::swarm::steps::{self, GateError, UpdateWatch, Watch};

impl From<GateError> for StepError {
    fn from(e: GateError) -> StepError {
        match e {
            GateError::Docker(d) => StepError::Docker(d),
            other => StepError::Unhealthy(other.to_string()),
        }
    }
}

/// How long a stop waits for the tasks to end beyond the service's grace: Swarm stops them
/// node by node.
const STOP_SLACK: Duration = Duration::from_secs(30);

/// How long a re-owning job may take on a node: a large volume takes its time, and a node
/// that goes down meanwhile is named at once (see [`jobs::run`]).
const JOB_TIMEOUT: Duration = Duration::from_secs(3600);

/// How long a stop waits: the plan's `stop_timeout` or the service's own grace, whichever is
/// longer (Swarm stops its tasks with their own grace), and some slack.
fn stop_wait(svc: &ServiceInspect, timings: &Timings) -> Duration {
    timings.stop_timeout.max(svc.stop_grace()) + STOP_SLACK
}

/// The kinds of helper jobs a service's re-owning runs, for their names.
const JOB_KINDS: [&str; 3] = ["scan", "apply", "restore"];

/// The user a spec's tasks run as (`ContainerSpec.User`, empty for the image's).
fn spec_user(spec: &Value) -> String {
    ServiceSpec(spec).user().to_string()
}

/// Where a re-owning job of `service` runs: the service's own image (its nodes have it) and
/// placement, one name per kind, run and mount.
struct Site {
    name: String,
    run: String,
    image: String,
    constraints: Vec<String>,
    timeout: Duration,
}

impl Site {
    fn new(kind: &str, service: &str, run: &str, original: &ServiceInspect, mount: usize, timeout: Duration) -> Site {
        Site {
            name: jobs::job_name(kind, service, run, mount),
            run: run.to_string(),
            image: original.image().to_string(),
            constraints: original.constraints(),
            timeout,
        }
    }

    /// Runs in `image` instead, when the plan names a `helper_image`.
    fn image(mut self, image: Option<&str>) -> Site {
        if let Some(image) = image {
            self.image = image.to_string();
        }
        self
    }

    fn with<'a>(&'a self, mount: &'a SpecMount) -> JobSite<'a> {
        JobSite {
            name: &self.name,
            run: &self.run,
            image: &self.image,
            mount,
            constraints: &self.constraints,
            timeout: self.timeout,
        }
    }
}

/// Per-node failures as one message (`node X: why; node Y: why`), or `Ok` when none.
fn node_failures<T>(what: &str, results: &BTreeMap<String, Result<T, String>>) -> Result<(), StepError> {
    let failed: Vec<String> =
        results.iter().filter_map(|(n, r)| r.as_ref().err().map(|e| format!("node {n}: {e}"))).collect();
    if failed.is_empty() { Ok(()) } else { Err(StepError::Reown(format!("{what}: {}", failed.join("; ")))) }
}

impl<D: Port> Apply<'_, D> {
    /// Whether the manager shows the service at the planned spec already, on a fresh run
    /// (migrated before, by hand or another plan) or a resumed one: then stop, chown and
    /// update are done, and only the gate and the settling write are left.
    ///
    /// Errors: the manager's answer to the service's inspect.
    pub(super) async fn service_planned_already(&self, r: &SwarmResolved) -> Result<bool, StepFailure> {
        let now = self
            .ctx
            .port
            .inspect_service(r.original.id())
            .await
            .map_err(|e| StepFailure { step: Step::Update, error: e.into() })?;
        Ok(r.is_planned(now.spec()))
    }

    /// Step 1: the service is still the one previewed (same id and version); save its
    /// inspect. On a resumed run the copy saved before is kept: it is the original.
    pub(super) async fn service_inspect(&self, name: &str, r: &SwarmResolved) -> Result<(), StepFailure> {
        self.not_interrupted(name, Step::Inspect).await?;
        let ctx = &self.ctx;
        let id = r.original.id();
        ctx.step(name, Step::Inspect, json!({"service": short(id)}), async {
            if let Some(saved) = crate::engine::load_original(&ctx.run, name)?
                && saved.id() == id
            {
                return Ok(((), json!({"id": short(id), "note": "saved by an earlier attempt"})));
            }
            let now = ctx.port.inspect_service(id).await?;
            if now.version() != r.original.version() {
                return Err(StepError::Conflict(format!(
                    "{name} changed since the preview (version {} is now {}); run the command again",
                    r.original.version(),
                    now.version()
                )));
            }
            ctx.run.save_original(name, WorkloadKind::Service, &now.0)?;
            let mut detail = json!({"id": short(id), "version": now.version(), "user": now.configured_user()});
            // The uids its tasks on this manager's node ran as, for `report` (a read; none
            // recorded when no task runs here or the manager cannot be asked).
            if let Ok(crate::docker::swarm::SwarmMembership::Manager { node_id }) = ctx.port.membership().await
                && let Ok(tasks) = ctx.port.list_tasks(id).await
            {
                let (uids, seen) = crate::engine::audit::local_task_uids(ctx.port, &tasks, &node_id).await;
                if !seen.is_empty() {
                    detail["process_uids"] = json!(uids);
                }
            }
            Ok(((), detail))
        })
        .await
    }

    /// Step 4: no task of the service runs (replicas 0, or a global service placed on no
    /// node); waits until the last one ended.
    pub(super) async fn service_stop(&self, name: &str, r: &SwarmResolved) -> Result<(), StepFailure> {
        self.not_interrupted(name, Step::Stop).await?;
        let ctx = &self.ctx;
        let how = match r.original.mode() {
            crate::docker::swarm::ServiceMode::Global => "placed on no node",
            _ => "scaled to 0",
        };
        ctx.step(name, Step::Stop, json!({"how": how}), async {
            // Saved before unroot's first write: a restore tells unroot's specs from anyone
            // else's from the first write on.
            ctx.run.save_planned_spec(name, &r.spec)?;
            let timeout = stop_wait(&r.original, &r.timings);
            steps::stop(ctx.port, r.original.id(), &ctx.run.id, timeout).await?;
            Ok(((), json!({})))
        })
        .await
    }

    /// Step 5: a scan job on every node of the service; each node's manifest saved (0600,
    /// synced) before any node's copy changes; then an apply job per node.
    pub(super) async fn service_chown(&self, name: &str, r: &SwarmResolved) -> Result<(), StepFailure> {
        let Some(target) = r.target.filter(|_| !r.mounts.is_empty()) else {
            return Ok(());
        };
        self.not_interrupted(name, Step::Chown).await?;
        // Never two re-owns of one volume or bind source at once (a container's included).
        let _sources = self.lock_sources(r.mounts.iter().map(|m| m.source.as_str())).await;
        let ctx = &self.ctx;
        let intent = json!({"owner": target.to_string(), "mounts": r.mounts.len(), "nodes": r.nodes.len()});
        ctx.step(name, Step::Chown, intent, async {
            ctx.settle_jobs(name, r.mounts.len()).await?;
            // The owners change again: an earlier restore of a node no longer holds.
            ctx.run.clear_restored(name)?;
            ctx.run.save_swarm_mounts(name, &json!(r.mounts))?;
            for (i, mount) in r.mounts.iter().enumerate() {
                self.scan_service_mount(name, r, i, mount, target).await?;
            }
            crate::state::failpoint::hit("manifests-saved");
            let mut changed = 0;
            for (i, mount) in r.mounts.iter().enumerate() {
                let manifests: BTreeMap<String, Vec<u8>> = ctx
                    .run
                    .load_node_manifests(name, i)?
                    .into_iter()
                    .filter(|(node, _)| r.nodes.contains(node))
                    .collect();
                changed += manifests
                    .values()
                    .map(|m| m.split(|b| *b == b'\n').filter(|l| l.starts_with(b"C ")).count())
                    .sum::<usize>();
                let site = Site::new("apply", name, &ctx.run.id, &r.original, i, JOB_TIMEOUT)
                    .image(self.plan.rollout.helper_image.as_deref());
                let done = jobs::apply(ctx.port, &site.with(mount), &manifests, target, r.hardlinks).await;
                node_failures(&format!("re-owning {} {}", mount.kind, mount.source), &done)?;
            }
            Ok(((), json!({"changed": changed, "nodes": r.nodes.len()})))
        })
        .await
    }

    /// Scans one mount on the nodes that have no manifest saved for it yet and saves theirs.
    /// A saved manifest is never replaced: it holds the owners from before any change.
    async fn scan_service_mount(
        &self,
        name: &str,
        r: &SwarmResolved,
        i: usize,
        mount: &SpecMount,
        target: crate::model::owner::Owner,
    ) -> Result<(), StepError> {
        let ctx = &self.ctx;
        let saved = ctx.run.load_node_manifests(name, i)?;
        let missing: Vec<String> = r.nodes.iter().filter(|n| !saved.contains_key(*n)).cloned().collect();
        if missing.is_empty() {
            return Ok(());
        }
        let site = Site::new("scan", name, &ctx.run.id, &r.original, i, JOB_TIMEOUT)
            .image(self.plan.rollout.helper_image.as_deref());
        let scanned = jobs::scan(ctx.port, &site.with(mount), &missing, target, r.hardlinks)
            .await
            .doing(&format!("scanning {} {}", mount.kind, mount.source))?;
        let mut failed = Vec::new();
        for node in &missing {
            match scanned.get(node) {
                Some(Ok(s)) => ctx.run.save_node_manifest(name, node, i, &s.manifest)?,
                Some(Err(why)) => failed.push(format!("node {node}: {why}")),
                None => failed.push(format!("node {node}: no task ran")),
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(StepError::Reown(format!("scanning {} {}: {}", mount.kind, mount.source, failed.join("; "))))
        }
    }

    /// Step 6: the planned spec, naming the version read. Its intent records the manager's
    /// time of the last write before it: the tasks created after it are the update's.
    pub(super) async fn service_update(&self, name: &str, r: &SwarmResolved) -> Result<(), StepFailure> {
        self.not_interrupted(name, Step::Update).await?;
        let ctx = &self.ctx;
        let id = r.original.id();
        let now =
            ctx.port.inspect_service(id).await.map_err(|e| StepFailure { step: Step::Update, error: e.into() })?;
        let intent = json!({"user": spec_user(&r.spec), "since": now.updated_at(), "version": now.version()});
        ctx.step(name, Step::Update, intent, async {
            // Only over the spec unroot left (stopped) or the planned one: a change made by
            // someone else since the stop is not overwritten.
            let cur = ctx.port.inspect_service(id).await?;
            let stopped = steps::stopped_spec(r.original.spec(), &ctx.run.id);
            if !steps::same_spec(cur.spec(), &stopped) && !steps::same_spec(cur.spec(), &r.spec) {
                return Err(StepError::Conflict(format!(
                    "{name} changed since unroot stopped it (it is at version {}); not overwriting that change",
                    cur.version()
                )));
            }
            // Saved before it is written: a restore tells this spec from someone else's.
            ctx.run.save_planned_spec(name, &r.spec)?;
            // The version read above is the one named: a change in between is refused.
            let wrote = steps::put_spec_over(ctx.port, &cur, &r.spec).await?;
            crate::state::failpoint::hit("service-updated");
            // PreviousSpec is the stopped spec now: the planned spec once more, so a `docker
            // service rollback` while the gate waits (or a paused day) never scales to 0.
            let stopped = |p: &Value| steps::stopped_by(p, r.original.spec(), &ctx.run.id);
            steps::previous_to_current(ctx.port, id, &r.spec, stopped).await?;
            Ok(((), json!({"changed": wrote})))
        })
        .await
    }

    /// Step 7: every task of the update running (and healthy, where it has a HEALTHCHECK),
    /// none failed and Swarm's update not paused, for `stable_for`.
    pub(super) async fn service_health(&self, name: &str, r: &SwarmResolved) -> Result<(), StepFailure> {
        self.not_interrupted(name, Step::Health).await?;
        let ctx = &self.ctx;
        let since = self.update_since(name);
        // After a gate of this run failed (a paused day resumed), the failed tasks Swarm
        // keeps in its history are not this gate's: only later ones count.
        let failures_after = match self.health_failed_before(name) {
            true => newest_task(ctx.port, r.original.id())
                .await
                .map_err(|e| StepFailure { step: Step::Health, error: e })?,
            false => since.clone(),
        };
        ctx.step(name, Step::Health, json!({"mode": "swarm", "failures_after": failures_after}), async {
            let watch = Watch {
                user: spec_user(&r.spec),
                wanted: steps::wanted(ctx.port, &r.original).await?,
                since,
                failures_after,
                update: UpdateWatch::UnlessStartedAt(r.original.update_started_at().map(str::to_string)),
                nodes: r.nodes.clone(),
                ignore: Vec::new(),
                timeout: r.timings.health_timeout,
                stable_for: r.timings.stable_for,
            };
            tokio::select! {
                g = steps::gate(ctx.port, r.original.id(), &watch) => g?,
                () = ctx.stop.wait() => return Err(StepError::Interrupted("while waiting for health")),
            }
            // Healthy: the service gets its own UpdateConfig back, written twice (neither
            // replaces a task) so that PreviousSpec is the settled spec too: a `docker service
            // rollback` keeps the tasks as they are. Only over the planned spec: a change made
            // by someone else during the gate is not overwritten.
            let settled = r.settled_spec();
            let cur = ctx.port.inspect_service(r.original.id()).await?;
            let wrote = steps::same_spec(cur.spec(), &r.spec) && steps::put_spec_over(ctx.port, &cur, &settled).await?;
            let planned = |p: &Value| steps::same_spec(p, &r.spec);
            steps::previous_to_current(ctx.port, r.original.id(), &settled, planned).await?;
            Ok(((), json!({"tasks": watch.wanted, "settled": wrote})))
        })
        .await
    }

    /// Whether a health step of `name` failed earlier in this run.
    fn health_failed_before(&self, name: &str) -> bool {
        Journal::read(&self.ctx.run.journal_path()).is_ok_and(|entries| {
            entries.iter().any(|e| {
                matches!(&e.record, Record::Step { service, step: Step::Health, ok: Some(false), .. } if service == name)
            })
        })
    }

    /// The manager's time recorded by the last update of `name` in this run's journal.
    fn update_since(&self, name: &str) -> Option<String> {
        let entries = Journal::read(&self.ctx.run.journal_path()).ok()?;
        entries.iter().rev().find_map(|e| match &e.record {
            Record::Step { service, step: Step::Update, ok: None, detail, .. } if service == name => {
                crate::state::StepDetail::of(detail).since
            }
            _ => None,
        })
    }

    /// Removes helper jobs a failed removal may have left for `name` (normally none), and
    /// waits for their tasks to stop, as every other removal of a job does. Best effort: a
    /// job that will not go is left for the next run of the service, which settles it first.
    pub(super) async fn sweep_jobs(&self, name: &str, r: &SwarmResolved) {
        let _ = self.ctx.settle_jobs(name, r.mounts.len()).await;
    }
}

impl<D: Port> RunCtx<'_, D> {
    /// Removes every helper job of `name` in this run (an interrupted attempt's, still
    /// changing owners perhaps) and waits until their tasks have stopped: no two jobs ever
    /// work on one mount at once.
    ///
    /// Errors: the manager's answers; a job whose task does not stop.
    async fn settle_jobs(&self, name: &str, mounts: usize) -> Result<(), StepError> {
        for kind in JOB_KINDS {
            for i in 0..mounts {
                jobs::remove_and_wait(self.port, &jobs::job_name(kind, name, &self.run.id, i)).await?;
            }
        }
        Ok(())
    }
}

/// When the newest task of a service was created (manager time), if it has one.
async fn newest_task(port: &impl SwarmPort, id: &str) -> Result<Option<String>, StepError> {
    let tasks = port.list_tasks(id).await?;
    let mut newest: Option<String> = None;
    for t in tasks {
        if newest.as_deref().is_none_or(|n| crate::docker::swarm::later_than(&t.created_at, n)) {
            newest = Some(t.created_at);
        }
    }
    Ok(newest)
}
