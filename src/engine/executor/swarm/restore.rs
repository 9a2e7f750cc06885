//! A Swarm service's restore (SPEC §11 step 8): its tasks stopped, each node's owners back
//! from its manifest, the original spec put back, its tasks running again as before. What no
//! longer exists (a node that left the swarm, a pruned secret or config, the image on a
//! node) is reported and skipped, so every restore can finish; a service removed since is
//! recreated from `original.json`.

use super::*;
use crate::docker::swarm::{NodeRef, ObjectKind, TaskState, inspect_service_named, without_missing};

/// What a restore puts back: the service it writes to (its id now) and the spec it writes
/// (the original, less the secrets and configs that no longer exist).
struct Target {
    id: String,
    spec: Value,
}

/// One mount's nodes whose owners are still to give back, with their manifests.
type Work<'a> = Vec<(usize, &'a SpecMount, BTreeMap<String, Vec<u8>>)>;

impl<D: Port> RunCtx<'_, D> {
    /// Restores a Swarm service: its tasks stopped, each node's ownership from its manifest
    /// (in `helper_image` when the plan names one, else the service's own image), the
    /// original spec (from `original.json`) put back, and its tasks running again as before.
    /// A service that was never stopped and has no manifest is only gated.
    ///
    /// Guarantees: idempotent: each part looks at what the manager shows (a spec already the
    /// original is not written; owners are set to what the manifests say; a node's copy
    /// given back or skipped is recorded and not done again), and a running service is
    /// stopped again only for work that is left.
    /// Errors: the first part that could not be done, with each failing node named; a later
    /// `resume` or `rollback` continues.
    pub(in crate::engine::executor) async fn restore_service(
        &self,
        name: &str,
        original: ServiceInspect,
        timings: &Timings,
        helper_image: Option<&str>,
    ) -> Result<(), StepFailure> {
        let intent = json!({"service": short(original.id()), "version": original.version()});
        self.step(name, Step::Restore, intent, async {
            let mounts: Vec<SpecMount> = match self.run.load_swarm_mounts(name)? {
                Some(v) => serde_json::from_value(v).map_err(|e| StepError::State(e.to_string()))?,
                None => Vec::new(),
            };
            self.settle_jobs(name, mounts.len()).await?;
            let mut notes = Vec::new();
            let target = self.target(&original, &mut notes).await?;
            let now = self.port.inspect_service(&target.id).await.doing(&format!("inspecting the service {name}"))?;
            let nodes = self.port.list_nodes().await?;
            let (work, mut left) = self.restore_work(name, &mounts, &nodes, &mut notes)?;
            let mut gone = 0;
            let mut since = None;
            // The spec back and nothing to give back on a node that is up: nothing to stop.
            if !work.is_empty() || !steps::same_spec(now.spec(), &target.spec) {
                // 1. Nothing runs while the owners go back: the spec to put back, parked
                //    (it names no secret or config that is gone, which the manager refuses).
                let parked = steps::stopped_spec(&target.spec, &self.run.id);
                steps::park(self.port, &target.id, &parked, stop_wait(&original, timings))
                    .await
                    .doing("stopping the service")?;
                // 2. Ownership, node by node; each node's copy done (or skipped) is recorded.
                for (i, mount, reachable) in &work {
                    let site = Site::new("restore", name, &self.run.id, &original, *i, JOB_TIMEOUT).image(helper_image);
                    gone += self.restore_mount(name, &site.with(mount), *i, reachable, &mut left, &mut notes).await?;
                }
                // 3. The original spec.
                let (before, wrote) = steps::put_spec(self.port, &target.id, &target.spec)
                    .await
                    .doing("putting the original spec back")?;
                since = wrote.then(|| before.updated_at().to_string());
            }
            // 4. Its tasks, as before, where they can run.
            let mut watch = Watch {
                user: original.configured_user().to_string(),
                wanted: steps::wanted(self.port, &original).await?,
                failures_after: since.clone(),
                since,
                update: UpdateWatch::Ignore,
                nodes: Vec::new(),
                ignore: Vec::new(),
                timeout: timings.health_timeout,
                stable_for: timings.stable_for,
            };
            self.gate_where_it_can_run(&original, &target.id, &mut watch, &mut notes).await?;
            self.original_as_previous(&target, original.spec()).await?;
            for note in &notes {
                self.out.note(&format!("{name}: {note}"));
            }
            if !left.is_empty() {
                return Err(StepError::Reown(format!(
                    "the original spec is back and its tasks run, but {}; `unroot resume` restores them once the node answers",
                    left.join("; ")
                )));
            }
            let mut detail = json!({"tasks": watch.wanted});
            if gone > 0 {
                detail["vanished"] = json!(gone);
            }
            if !notes.is_empty() {
                detail["skipped"] = json!(notes);
            }
            Ok(((), detail))
        })
        .await
    }

    /// The service to restore and the spec to write: the original, less the secrets, configs
    /// and networks that no longer exist (the manager refuses a spec naming one). A service
    /// removed since is created again from it, stopped (its owners are not back yet); one
    /// removed and deployed again under its name is restored over.
    async fn target(&self, original: &ServiceInspect, notes: &mut Vec<String>) -> Result<Target, StepError> {
        let secrets = self.port.list_objects(ObjectKind::Secret).await?;
        let configs = self.port.list_objects(ObjectKind::Config).await?;
        let networks = self.port.list_objects(ObjectKind::Network).await?;
        let (spec, missing) = without_missing(original.spec(), |kind, id| {
            let known = match kind {
                ObjectKind::Secret => &secrets,
                ObjectKind::Config => &configs,
                ObjectKind::Network => &networks,
            };
            known.iter().any(|o| o.id == id || o.name == id)
        });
        notes.extend(missing.iter().map(|m| format!("{m} no longer exists: the original is put back without it")));
        let id = match self.port.inspect_service(original.id()).await {
            Ok(s) => s.id().to_string(),
            Err(DockerError::NotFound(_)) => match inspect_service_named(self.port, original.name()).await {
                Ok(s) => {
                    notes.push(format!(
                        "the service was removed and deployed again (now {}): restored over that one",
                        short(s.id())
                    ));
                    s.id().to_string()
                }
                Err(DockerError::NotFound(_)) => {
                    let id = self
                        .port
                        .create_service(steps::stopped_spec(&spec, &self.run.id))
                        .await
                        .doing("recreating the removed service from original.json")?;
                    notes.push(format!(
                        "the service was removed since: recreated from original.json (now {})",
                        short(&id)
                    ));
                    id
                }
                Err(e) => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        };
        Ok(Target { id, spec })
    }

    /// Per mount, the nodes whose owners are still to give back and can take a job now. A
    /// node that is down, drained or paused is named in the second list, and waits; a node
    /// that left the swarm (its copy is out of reach for good: a node that joins again has
    /// a new id) is recorded as done and said in `notes`.
    fn restore_work<'m>(
        &self,
        name: &str,
        mounts: &'m [SpecMount],
        nodes: &[NodeRef],
        notes: &mut Vec<String>,
    ) -> Result<(Work<'m>, Vec<String>), StepError> {
        let mut work = Vec::new();
        let mut left = Vec::new();
        for (i, mount) in mounts.iter().enumerate() {
            let mut reachable = BTreeMap::new();
            for (node, list) in self.run.load_node_manifests(name, i)? {
                if self.run.node_restored(name, &node, i) {
                    continue;
                }
                if !nodes.iter().any(|n| n.id == node) {
                    self.run.mark_node_restored(name, &node, i)?;
                    notes.push(format!(
                        "node {node} left the swarm: its copy of {} {} is out of reach and not restored",
                        mount.kind, mount.source
                    ));
                    continue;
                }
                // A helper job runs only where the scheduler puts tasks: a node down,
                // drained or paused is named at once, never waited for.
                match crate::docker::swarm::unschedulable_node(nodes, &node) {
                    None => {
                        reachable.insert(node, list);
                    }
                    Some(why) => left.push(format!(
                        "{why}: its copy of {} {} keeps the owners unroot gave it",
                        mount.kind, mount.source
                    )),
                }
            }
            if !reachable.is_empty() {
                work.push((i, mount, reachable));
            }
        }
        Ok((work, left))
    }

    /// Gives one mount's owners back on `reachable` nodes; returns how many listed entries
    /// were gone. A node done is recorded; one without the job's image (pruned) is recorded
    /// as skipped and said in `notes` (a retry would stop the service again for a job that
    /// cannot run there); any other failure is named in `left`.
    async fn restore_mount(
        &self,
        name: &str,
        site: &JobSite<'_>,
        i: usize,
        reachable: &BTreeMap<String, Vec<u8>>,
        left: &mut Vec<String>,
        notes: &mut Vec<String>,
    ) -> Result<usize, StepError> {
        let what = format!("{} {}", site.mount.kind, site.mount.source);
        let done = jobs::restore(self.port, site, reachable).await;
        let mut gone = 0;
        for (node, result) in &done {
            match result {
                Ok(n) => {
                    self.run.mark_node_restored(name, node, i)?;
                    gone += n;
                }
                Err(why) if jobs::image_missing(why) => {
                    self.run.mark_node_restored(name, node, i)?;
                    notes.push(format!(
                        "node {node} does not have the image {} any more: its copy of {what} keeps the owners unroot gave it (the owners from before are listed in the run's services/{name}/owners/{node}/{i}; load the image there, or set helper_image, and restore them by hand)",
                        site.image
                    ));
                }
                Err(why) => left.push(format!("restoring the owners of {what}: node {node}: {why}")),
            }
        }
        Ok(gone)
    }

    /// Waits for the original's tasks as `watch` says. A node that no longer has the
    /// original's image (pruned) can run none of them: it is said in `notes`, left out of
    /// the wait (one task fewer for a global service; Swarm places a replica elsewhere),
    /// and the wait goes on, so the restore finishes where the original can run.
    ///
    /// Errors: the gate's, for any other failure.
    async fn gate_where_it_can_run(
        &self,
        original: &ServiceInspect,
        id: &str,
        watch: &mut Watch,
        notes: &mut Vec<String>,
    ) -> Result<(), StepError> {
        let mut leave_out = |node: String, watch: &mut Watch| {
            notes.push(format!(
                "node {node} does not have the image {} any more: no task of the original runs there (load the image there and Swarm starts it)",
                original.image()
            ));
            if original.mode() == crate::docker::swarm::ServiceMode::Global {
                watch.wanted = watch.wanted.saturating_sub(1);
            }
            watch.ignore.push(node);
        };
        // Nodes known already (an earlier attempt saw their tasks rejected) where none runs.
        let tasks = self.port.list_tasks(id).await?;
        for t in &tasks {
            let rejected = matches!(t.state, TaskState::Failed(_)) && jobs::image_missing(&t.error);
            let runs_there = tasks.iter().any(|o| o.node_id == t.node_id && o.state == TaskState::Running);
            if rejected && !runs_there && !watch.ignore.contains(&t.node_id) {
                leave_out(t.node_id.clone(), watch);
            }
        }
        loop {
            match steps::gate(self.port, id, watch).await {
                Ok(()) => return Ok(()),
                Err(GateError::TaskFailed { node, message, .. })
                    if jobs::image_missing(&message) && !watch.ignore.contains(&node) =>
                {
                    leave_out(node, watch);
                }
                Err(e) => return Err(StepError::from(e)).doing("the original's tasks"),
            }
        }
    }

    /// After a restore wrote the original over unroot's stopped spec, Swarm's
    /// `PreviousSpec` is that stopped spec: the same spec written once more makes it the
    /// original, so a `docker service rollback` never scales the service to zero. Replaces
    /// no task; a service whose previous spec is anyone else's is left alone.
    async fn original_as_previous(&self, target: &Target, original: &Value) -> Result<(), StepError> {
        let stopped = |p: &Value| steps::stopped_by(p, original, &self.run.id);
        Ok(steps::previous_to_current(self.port, &target.id, &target.spec, stopped).await?)
    }
}
