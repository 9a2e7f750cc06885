//! The steps of one service's migration (SPEC §3 steps 1 and 4–8), one function each. Each
//! is journaled before and after it runs, starts only when Ctrl-C was not pressed, and does
//! only what Docker shows is still missing.

use super::*;

/// Where a service stands when its migration starts or resumes, as Docker shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Nothing of this run yet (or only the inspect, stop, rename or chown): from the start.
    Fresh,
    /// A replacement of this run holds the name: stop, rename and chown are done.
    Replaced,
    /// The replacement holds the name and the parked original is gone: the commit removed
    /// it, or something else did (`docker container prune` while unroot was down). Either
    /// way only the gate may say the replacement stays: it is gated again, and a failure
    /// restores the original from `original.json`.
    OriginalGone,
}

impl Standing {
    /// The decision, from what was observed: whether this run saved the original already,
    /// whether this run's replacement holds the name, whether the original is gone.
    fn of(saved: bool, replacement_holds_name: bool, original_gone: bool) -> Standing {
        match (saved, replacement_holds_name, original_gone) {
            (true, true, true) => Standing::OriginalGone,
            (true, true, false) => Standing::Replaced,
            _ => Standing::Fresh,
        }
    }
}

/// The steps a workload of `kind` runs, in order: its migration as data, run by
/// [`Apply::migrate`]. A container is recreated beside its parked original; a Swarm
/// service is updated in place by its manager (SPEC §3 and §11).
pub(super) fn steps_of(kind: WorkloadKind) -> &'static [Step] {
    match kind {
        WorkloadKind::Container => &[Step::Inspect, Step::Stop, Step::Rename, Step::Chown, Step::Create, Step::Health],
        WorkloadKind::Service => &[Step::Inspect, Step::Stop, Step::Chown, Step::Update, Step::Health],
    }
}

impl<D: Port> Apply<'_, D> {
    /// `f`, with a panic inside it as a failure of `step`, journaled (a panic inside the
    /// step's own records is journaled there; one that reaches here came before them).
    async fn caught<T>(
        &self,
        name: &str,
        step: Step,
        f: impl std::future::Future<Output = Result<T, StepFailure>>,
    ) -> Result<T, StepFailure> {
        match std::panic::AssertUnwindSafe(f).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => {
                let error = StepError::Panicked(panic_message(&*panic));
                let failed = Some(error.to_string());
                let _ = self.ctx.record(Record::Step {
                    service: name.into(),
                    step,
                    ok: Some(false),
                    error: failed,
                    detail: Value::Null,
                });
                Err(StepFailure { step, error })
            }
        }
    }

    /// Migrates one workload: the steps of its kind, from the first one Docker does not show
    /// done. Each step is journaled before and after it runs and is idempotent. A panic,
    /// also in a read a step makes before its start record, fails that step like any other
    /// failure (the day's `on_failure` then decides).
    pub(super) async fn migrate(&self, name: &str) -> Result<(), StepFailure> {
        let w = self.day.workload(name);
        let steps = steps_of(w.kind());
        let from = match w {
            Workload::Container(r) => {
                self.caught(name, Step::Inspect, async {
                    Ok(match self.standing(name, r).await? {
                        Standing::Fresh => Step::Inspect,
                        Standing::Replaced => Step::Create,
                        Standing::OriginalGone => Step::Health,
                    })
                })
                .await?
            }
            Workload::Service(_) => Step::Inspect,
        };
        let mut at = steps.iter().position(|s| *s == from).unwrap_or(0);
        let mut replacement = None;
        while let Some(&step) = steps.get(at) {
            self.caught(name, step, self.run_step(name, w, step, &mut replacement)).await?;
            at += 1;
            // A Swarm service whose spec already is the planned one (updated, or settled
            // after its gate) has only its gate, then the settling write, left.
            if let (Step::Inspect, Workload::Service(r)) = (step, w)
                && self.caught(name, Step::Update, self.service_planned_already(r)).await?
            {
                at = steps.iter().position(|s| *s == Step::Health).unwrap_or(at);
            }
        }
        Ok(())
    }

    /// Runs one step of `w`. `replacement` carries the id of the container `create` made to
    /// the gate that follows it (a resumed run finds it by name).
    async fn run_step(
        &self,
        name: &str,
        w: &Workload,
        step: Step,
        replacement: &mut Option<String>,
    ) -> Result<(), StepFailure> {
        match (w, step) {
            (Workload::Container(r), Step::Inspect) => self.inspect(name, r).await,
            (Workload::Container(r), Step::Stop) => self.stop(name, r).await,
            (Workload::Container(r), Step::Rename) => self.park(name, r).await,
            (Workload::Container(r), Step::Chown) => self.chown(name, r).await,
            (Workload::Container(r), Step::Create) => {
                *replacement = Some(self.create(name, r).await?);
                Ok(())
            }
            (Workload::Container(r), Step::Health) => {
                let id = match replacement.take() {
                    Some(id) => id,
                    None => inspect_named(self.ctx.port, name)
                        .await
                        .map_err(|e| StepFailure { step: Step::Health, error: e.into() })?
                        .id()
                        .to_string(),
                };
                self.health(name, r, &id).await
            }
            (Workload::Service(r), Step::Inspect) => self.service_inspect(name, r).await,
            (Workload::Service(r), Step::Stop) => self.service_stop(name, r).await,
            (Workload::Service(r), Step::Chown) => self.service_chown(name, r).await,
            (Workload::Service(r), Step::Update) => self.service_update(name, r).await,
            (Workload::Service(r), Step::Health) => self.service_health(name, r).await,
            (w, step) => {
                Err(StepFailure { step, error: StepError::Conflict(format!("{step} is not a step of a {}", w.kind())) })
            }
        }
    }

    /// What Docker shows of the service: on a resumed run, a replacement of this run means
    /// stop, rename and chown are done, and a parked original that is gone leaves only the
    /// gate to run.
    async fn standing(&self, name: &str, r: &Resolved) -> Result<Standing, StepFailure> {
        let ctx = &self.ctx;
        let saved =
            ctx.run.load_original(name).map_err(|e| StepFailure { step: Step::Inspect, error: e.into() })?.is_some();
        if !saved {
            return Ok(Standing::Fresh);
        }
        let ours =
            matches!(inspect_named(ctx.port, name).await, Ok(c) if c.label(LABEL_RUN) == Some(ctx.run.id.as_str()));
        let gone = ours && matches!(ctx.port.inspect_container(r.original.id()).await, Err(DockerError::NotFound(_)));
        Ok(Standing::of(saved, ours, gone))
    }

    /// Step 1: the container is still the one previewed, running; save its inspect. On a
    /// resumed run the original was saved before (and may be parked already): keep that copy.
    async fn inspect(&self, name: &str, r: &Resolved) -> Result<(), StepFailure> {
        self.not_interrupted(name, Step::Inspect).await?;
        let ctx = &self.ctx;
        let original_id = r.original.id();
        ctx.step(name, Step::Inspect, json!({}), async {
            if let Some(saved) = crate::engine::load_original(&ctx.run, name)?
                && saved.id() == original_id
            {
                return Ok(((), json!({"id": short(original_id), "note": "saved by an earlier attempt"})));
            }
            let now = inspect_named(ctx.port, name).await?;
            if now.id() != original_id {
                return Err(StepError::Conflict(format!("{name} is another container than the one previewed")));
            }
            if !now.running() {
                return Err(StepError::Conflict(format!("{name} is not running ({})", now.status())));
            }
            ctx.run.save_original(name, WorkloadKind::Container, &now.0)?;
            // The uids its processes ran as before the change, for `report` (a read: a
            // container that stopped meanwhile just records none).
            // A container whose processes could not be listed records none (not "no process").
            let mut detail = json!({"id": short(original_id), "user": now.configured_user()});
            if let Ok(procs) = ctx.port.top(now.id()).await {
                let mut uids: Vec<u32> =
                    crate::docker::own_tree(procs, now.pid()).iter().filter_map(|p| p.uid).collect();
                uids.sort_unstable();
                uids.dedup();
                detail["process_uids"] = json!(uids);
            }
            Ok(((), detail))
        })
        .await
    }

    /// Step 4: restart policy "no" first (a daemon restart cannot start it again), then a
    /// graceful stop with the service's grace.
    async fn stop(&self, name: &str, r: &Resolved) -> Result<(), StepFailure> {
        self.not_interrupted(name, Step::Stop).await?;
        let ctx = &self.ctx;
        let id = r.original.id();
        let grace = r.timings.stop_timeout;
        ctx.step(name, Step::Stop, json!({"timeout": crate::model::plan::duration::format(grace)}), async {
            let no = json!({"Name": "no", "MaximumRetryCount": 0});
            ctx.port.set_restart_policy(id, no).await?;
            ctx.port.stop_container(id, grace.as_secs()).await?;
            Ok(((), json!({})))
        })
        .await
    }

    /// Step 5: the original is kept, stopped, as `NAME.unroot-RUN` until the day commits.
    async fn park(&self, name: &str, r: &Resolved) -> Result<(), StepFailure> {
        self.not_interrupted(name, Step::Rename).await?;
        let ctx = &self.ctx;
        let id = r.original.id();
        let parked = renamed(name, &ctx.run.id);
        ctx.step(name, Step::Rename, json!({"to": parked}), async {
            let c = ctx.port.inspect_container(id).await?;
            if c.name() != parked {
                ctx.port.rename_container(id, &parked).await?;
            }
            Ok(((), json!({})))
        })
        .await
    }

    /// Step 6: scan every mount, make the manifest durable, then change the owners. Mounts
    /// another service of the day shares are never re-owned by two at once.
    async fn chown(&self, name: &str, r: &Resolved) -> Result<(), StepFailure> {
        let Some(target) = r.target.filter(|_| !r.mounts.is_empty()) else {
            return Ok(());
        };
        self.not_interrupted(name, Step::Chown).await?;
        let _sources = self.lock_sources(r.mounts.iter().map(|m| m.source.as_str())).await;
        let intent = json!({"owner": target.to_string(), "mounts": r.mounts.len()});
        self.ctx.step(name, Step::Chown, intent, self.ctx.reown(name, r, target)).await
    }

    /// Step 7: the replacement under the original name (every network connected, also when
    /// an earlier attempt created it), then the diff against the original.
    async fn create(&self, name: &str, r: &Resolved) -> Result<String, StepFailure> {
        self.not_interrupted(name, Step::Create).await?;
        let ctx = &self.ctx;
        let run = ctx.run.id.as_str();
        let mut changes = r.changes.clone();
        changes.labels.insert(LABEL_RUN.into(), run.to_string());
        ctx.step(name, Step::Create, json!({"user": expected_user(r)}), async {
            let req = recreate::create_request(&r.original, &changes, api_at_least(ctx.port, 1, 44));
            let id = match inspect_named(ctx.port, name).await {
                // A replacement of this run from an earlier attempt: reuse it.
                Ok(c) if c.label(LABEL_RUN) == Some(run) => c.id().to_string(),
                Ok(c) => return Err(StepError::Conflict(format!("{name} is taken by container {}", short(c.id())))),
                Err(DockerError::NotFound(_)) => ctx.port.create_container(name, req.body).await?,
                Err(e) => return Err(e.into()),
            };
            crate::state::failpoint::hit("after-create");
            ctx.ensure_networks(&id, req.connect_after).await?;
            let new = ctx.port.inspect_container(&id).await?;
            let diff = recreate::diff(&r.original, &changes, &new);
            if !diff.is_empty() {
                return Err(StepError::Conflict(format!(
                    "the replacement differs from the original beyond the plan: {}",
                    diff.join("; ")
                )));
            }
            Ok((id.clone(), json!({"id": short(&id)})))
        })
        .await
    }

    /// Step 8: start and the health gate; Ctrl-C cuts the wait short (the service is then
    /// rolled back with the day). A failure brings the end of the replacement's log.
    async fn health(&self, name: &str, r: &Resolved, new_id: &str) -> Result<(), StepFailure> {
        self.not_interrupted(name, Step::Health).await?;
        let ctx = &self.ctx;
        let uid = r.target.map(|o| o.uid);
        let mode = match &r.health {
            crate::model::plan::HealthMode::Docker => "docker",
            crate::model::plan::HealthMode::Running => "running",
            crate::model::plan::HealthMode::Exec(_) => "exec",
        };
        ctx.step(name, Step::Health, json!({"mode": mode}), async {
            let passed = tokio::select! {
                r = health::start_and_wait(ctx.port, new_id, &r.health, &r.timings, uid) => match r {
                    Ok(passed) => passed,
                    Err(e) => {
                        return Err(StepError::Unhealthy(format!("{e}{}", self.failure_log(name, new_id).await)));
                    }
                },
                () = ctx.stop.wait() => return Err(StepError::Interrupted("while waiting for health")),
            };
            // Which probe found it healthy first, and when (Docker's own check may be an
            // interval away).
            Ok(((), json!({"passed": passed.by.as_str(), "after_ms": passed.after.as_millis() as u64})))
        })
        .await
    }
}

impl<D: Port> RunCtx<'_, D> {
    /// The body of the chown step: the manifest (from an earlier attempt when there is one:
    /// it records the true old owners, rescanning would not), then every listed entry set to
    /// the target, the roots last.
    async fn reown(&self, name: &str, r: &Resolved, target: Owner) -> Result<((), Value), StepError> {
        let manifest = match self.run.load_owners(name)? {
            Some(m) => m,
            None => {
                let mut manifest = Manifest { target, mounts: Vec::new() };
                for m in &r.mounts {
                    let changes = self.scan(name, &r.helper_image, m, target, r.hardlinks, r.ownership).await?;
                    manifest.mounts.push((m.clone(), changes));
                }
                self.run.save_owners(name, &manifest)?;
                manifest
            }
        };
        let owner = manifest.target;
        let mut vanished = 0;
        for (m, changes) in &manifest.mounts {
            // Everything listed to the target; no mode is set (the owner change clears the
            // setuid and setgid bits, as `chown` does).
            let to = MountChanges {
                entries: changes.entries.iter().map(|(p, _)| (p.clone(), owner)).collect(),
                root: changes.root.map(|_| owner),
                ..MountChanges::default()
            };
            vanished += self.set_owners(name, &r.helper_image, m, &to, r.ownership).await?;
        }
        let skipped: usize = manifest.mounts.iter().map(|(_, c)| c.skipped.len()).sum();
        let mut detail = json!({"changed": manifest.changed(), "hardlinks_skipped": skipped});
        if vanished > 0 {
            detail["vanished"] = json!(vanished);
        }
        Ok(((), detail))
    }
}

#[cfg(test)]
mod tests {
    use super::Standing;

    #[test]
    fn the_resume_decision_table() {
        // Nothing saved: whatever holds the name, the migration starts from the beginning.
        for (holds, gone) in [(false, false), (true, false), (true, true), (false, true)] {
            assert_eq!(Standing::of(false, holds, gone), Standing::Fresh);
        }
        // Saved, but the name is not held by this run's replacement: stop, rename and chown
        // are still to do (each does only what is missing).
        assert_eq!(Standing::of(true, false, false), Standing::Fresh);
        assert_eq!(Standing::of(true, false, true), Standing::Fresh);
        // The replacement holds the name: create is reused, then health.
        assert_eq!(Standing::of(true, true, false), Standing::Replaced);
        // ... and the parked original is gone (the commit, or a prune while unroot was down):
        // the replacement is gated again before anything counts it as migrated.
        assert_eq!(Standing::of(true, true, true), Standing::OriginalGone);
    }
}
