//! One day's apply: the waves, the steps of each service, the rollback or the commit.

use super::*;
use crate::state::Cause;

/// One day's apply.
pub struct Apply<'a, D: Port> {
    pub ctx: RunCtx<'a, D>,
    pub plan: &'a Plan,
    pub day: ReadyDay,
    pub plan_dir: PlanDir,
    pub parallelism: usize,
    pub on_failure: OnFailure,
    /// Services an earlier attempt of this run already restored (rollback-service): they
    /// stay on their originals and are recorded so at commit.
    pub restored_before: Vec<String>,
    /// `started`, or `resumed` for a run continued by `unroot resume`.
    pub start_event: RunEvent,
    /// One lock per mount source: two services of the day that share a volume never
    /// re-own it at the same time.
    reown_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// What happened to each service of a day.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// Services in the order their migration started.
    touched: Vec<String>,
    migrated: Vec<String>,
    failed: Vec<(String, StepFailure)>,
    /// Restored to the original after a failure.
    restored: Vec<String>,
    /// A restore that did not complete.
    restore_failed: Vec<(String, StepFailure)>,
    /// Not started (a failure stopped the day, or it depends on a failed service).
    skipped: Vec<String>,
}

impl<'a, D: Port> Apply<'a, D> {
    /// The apply of `day` with the plan's parallelism and `on_failure`.
    pub fn new(ctx: RunCtx<'a, D>, plan: &'a Plan, day: ReadyDay, plan_dir: PlanDir) -> Self {
        Apply {
            ctx,
            plan,
            day,
            plan_dir,
            parallelism: plan.rollout.parallelism,
            on_failure: plan.rollout.on_failure,
            restored_before: Vec::new(),
            start_event: RunEvent::Started,
            reown_locks: Mutex::default(),
        }
    }

    /// Journals `step` as failed before it starts when Ctrl-C was pressed: nothing new
    /// starts, the service is rolled back with what is in flight.
    pub(super) async fn not_interrupted(&self, name: &str, step: Step) -> Result<(), StepFailure> {
        if !self.ctx.stop.is_set() {
            return Ok(());
        }
        self.ctx
            .step(name, step, StepDetail::not_started(), async {
                Err::<((), Value), _>(StepError::Interrupted(BEFORE_THIS_STEP))
            })
            .await
    }

    /// The locks of the sources a service re-owns, taken in one order (no deadlock).
    pub(super) async fn lock_sources<'s>(
        &self,
        sources: impl IntoIterator<Item = &'s str>,
    ) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        let mut sources: Vec<&str> = sources.into_iter().collect();
        sources.sort_unstable();
        sources.dedup();
        let locks: Vec<Arc<tokio::sync::Mutex<()>>> = {
            let mut map = self.reown_locks.lock().expect("reown locks");
            sources.iter().map(|s| map.entry(s.to_string()).or_default().clone()).collect()
        };
        let mut guards = Vec::new();
        for l in locks {
            guards.push(l.lock_owned().await);
        }
        guards
    }

    /// Why a replacement failed, in its own words: saves the last 50 lines of its log in the
    /// run folder (`services/NAME/failure.log`, 0600) and returns the last 10 to show with
    /// the failure, every value of the container's environment replaced by `<redacted>` in
    /// both. Empty when the log cannot be read (the failure stands without it).
    pub(super) async fn failure_log(&self, name: &str, id: &str) -> String {
        let port = self.ctx.port;
        let (Ok(bytes), Ok(c)) = (port.logs(id, FAILURE_LOG_LINES).await, port.inspect_container(id).await) else {
            return String::new();
        };
        let text = crate::engine::redact::redact(
            &String::from_utf8_lossy(&bytes),
            &crate::engine::redact::env_values(&c.env()),
        );
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return String::new();
        }
        let saved = match self.ctx.run.save_failure_log(name, text.as_bytes()) {
            Ok(path) => saved_at(&path),
            Err(_) => String::new(),
        };
        let shown = &lines[lines.len().saturating_sub(FAILURE_LOG_SHOWN)..];
        format!("; the end of its log{saved}:\n    {}", shown.join("\n    "))
    }

    /// Restores one service after a failure.
    pub(super) async fn restore(&self, name: &str) -> Result<(), StepFailure> {
        let helper_image = self.plan.rollout.helper_image.as_deref();
        match self.day.workload(name) {
            Workload::Service(r) => {
                let how = RestoreSpec {
                    timings: &r.timings,
                    helper_image,
                    ownership: Ownership::Helper,
                    expected_user: None,
                };
                self.ctx.restore(name, &how).await
            }
            Workload::Container(r) => {
                let user = expected_user(r);
                let how = RestoreSpec {
                    timings: &r.timings,
                    helper_image,
                    ownership: r.ownership,
                    expected_user: Some(&user),
                };
                self.ctx.restore(name, &how).await
            }
        }
    }

    /// Removes helper containers a failed removal may have left (normally none exist). Best
    /// effort, after the day's outcome is recorded: not even a panic here changes it.
    pub(super) async fn sweep_helpers(&self, services: &[String]) {
        let sweep = async {
            for s in services {
                match self.day.workload(s) {
                    Workload::Service(r) => self.sweep_jobs(s, r).await,
                    Workload::Container(_) => {
                        let name = format!("unroot-helper.{s}.{}", self.ctx.run.id);
                        let _ = self.ctx.port.remove_container(&name, Removal::WithAnonymousVolumes).await;
                    }
                }
            }
        };
        let _ = std::panic::AssertUnwindSafe(sweep).catch_unwind().await;
    }

    /// Runs the day: waves in order, up to `parallelism` services of a wave at once; on a
    /// failure, `on_failure` decides; then commit.
    pub async fn run(&self) -> Result<(Outcome, bool), StateError> {
        let ctx = &self.ctx;
        ctx.record(Record::run(self.start_event))?;
        let progress = Mutex::new(Progress { restored: self.restored_before.clone(), ..Progress::default() });
        let stop_day = AtomicBool::new(false);
        for wave in &self.day.waves {
            let tasks = stream::iter(wave.iter())
                .map(|name| {
                    let progress = &progress;
                    let stop_day = &stop_day;
                    async move {
                        let blocked_by_failure = {
                            let p = progress.lock().unwrap();
                            let failed: Vec<&str> = p
                                .failed
                                .iter()
                                .map(|(n, _)| n.as_str())
                                .chain(p.skipped.iter().map(String::as_str))
                                .collect();
                            self.plan.graph.closure(name).iter().any(|d| failed.contains(d))
                        };
                        if stop_day.load(Ordering::SeqCst) || ctx.stop.is_set() || blocked_by_failure {
                            progress.lock().unwrap().skipped.push(name.clone());
                            ctx.out.emit(crate::engine::events::Event::Skipped { service: name });
                            return;
                        }
                        progress.lock().unwrap().touched.push(name.clone());
                        match self.migrate(name).await {
                            Ok(()) => progress.lock().unwrap().migrated.push(name.clone()),
                            Err(f) => {
                                tracing::warn!(service = %name, "{f}");
                                progress.lock().unwrap().failed.push((name.clone(), f));
                                match self.on_failure {
                                    OnFailure::RollbackService => {
                                        let res = self.restore(name).await;
                                        let mut p = progress.lock().unwrap();
                                        match res {
                                            Ok(()) => p.restored.push(name.clone()),
                                            Err(e) => {
                                                p.restore_failed.push((name.clone(), e));
                                                stop_day.store(true, Ordering::SeqCst);
                                            }
                                        }
                                    }
                                    OnFailure::RollbackDay | OnFailure::Pause => stop_day.store(true, Ordering::SeqCst),
                                }
                            }
                        }
                    }
                })
                .buffer_unordered(self.parallelism.max(1));
            tasks.collect::<Vec<()>>().await;
        }
        let mut p = progress.into_inner().unwrap();
        let outcome = self.finish(&mut p).await;
        self.sweep_helpers(&p.touched).await;
        outcome
    }

    /// After the waves: roll back, pause or commit as the failures and `on_failure` say.
    pub(super) async fn finish(&self, p: &mut Progress) -> Result<(Outcome, bool), StateError> {
        let ctx = &self.ctx;
        let any_failed = !p.failed.is_empty();
        let interrupted = ctx.stop.is_set();

        if (any_failed && self.on_failure == OnFailure::RollbackDay)
            || (interrupted && self.on_failure != OnFailure::Pause)
        {
            // Ctrl-C fails the steps in flight as interrupted: that is an interrupt, not a failure.
            let only_interrupted = p.failed.iter().all(|(_, f)| matches!(f.error, StepError::Interrupted(_)));
            let cause = if interrupted && only_interrupted { Cause::Interrupted } else { Cause::StepFailed };
            ctx.record(Record::rollback(RunEvent::RollingBack, cause, None, Vec::new()))?;
            // In exactly the reverse order of the re-owns (two services may share a volume).
            let order = crate::state::restore_order(&Journal::read(&ctx.run.journal_path())?);
            for name in order.iter().filter(|n| p.touched.contains(n)) {
                match self.restore(name).await {
                    Ok(()) => p.restored.push(name.clone()),
                    Err(e) => p.restore_failed.push((name.clone(), e)),
                }
            }
            return if p.restore_failed.is_empty() {
                ctx.record(Record::run(RunEvent::RolledBack))?;
                Ok((Outcome::RolledBack, true))
            } else {
                ctx.record(Record::run_with(RunEvent::RollbackIncomplete, restore_failures(p)))?;
                Ok((Outcome::Incomplete, true))
            };
        }
        if (any_failed && self.on_failure == OnFailure::Pause) || interrupted {
            ctx.record(Record::run_with(
                RunEvent::Paused,
                format!("continue with `{}` or `{}`", ctx.command("resume"), ctx.command("rollback")),
            ))?;
            return Ok((Outcome::Incomplete, any_failed));
        }
        if !p.restore_failed.is_empty() {
            ctx.record(Record::run_with(RunEvent::RollbackIncomplete, restore_failures(p)))?;
            return Ok((Outcome::Incomplete, true));
        }
        let restored: Vec<String> = p.restored.clone();
        if self.commit(&p.migrated, &restored).await? {
            Ok((Outcome::Applied, any_failed))
        } else {
            Ok((Outcome::CommitIncomplete, any_failed))
        }
    }

    /// Step 9: remove the renamed originals, then record the day and write the compose
    /// overrides. Returns `false` (and leaves the run open for `resume`) when a parked
    /// original could not be removed: the run is committed only when every one is gone.
    ///
    /// Guarantees: a parked original is removed only while its replacement runs (a daemon
    /// that restarted since the health gate stops a replacement whose restart policy is
    /// `no`; the original is then kept and `resume` gates the replacement again).
    pub(super) async fn commit(&self, migrated: &[String], left_original: &[String]) -> Result<bool, StateError> {
        let ctx = &self.ctx;
        ctx.record(Record::run(RunEvent::Committing))?;
        let stuck = self.remove_parked(migrated).await;
        if !stuck.is_empty() {
            ctx.record(Record::run_with(
                RunEvent::CommitIncomplete,
                format!(
                    "every service is migrated and healthy, but {} could not be removed; `{}` removes them",
                    stuck.join(", "),
                    ctx.command("resume")
                ),
            ))?;
            return Ok(false);
        }
        let mut ledger = Ledger::load(&self.plan_dir.dir, &self.plan.rollout.name)?;
        let mut services = BTreeMap::new();
        for name in migrated {
            services.insert(name.clone(), self.migrated_record(name));
        }
        for name in left_original {
            let record = ServiceRecord {
                state: ServiceState::Original,
                run: ctx.run.id.clone(),
                compose: None,
                stack: None,
                settings: None,
            };
            services.insert(name.clone(), record);
        }
        ledger.record_commit(self.day.day, &ctx.run.id, services);
        ledger.save(&self.plan_dir.dir)?;
        for (path, usage) in write_overrides(&ledger, &ctx.run)? {
            ctx.out.note(&format!("compose: wrote {} — use `{usage}` so compose keeps the change", path.display()));
        }
        for (path, usage) in write_stack_overrides(&ledger, &self.plan_dir)? {
            ctx.out.note(&format!(
                "stack: wrote {} — use `{usage}` so the stack keeps the change (its version is 3.8: make it your base file's if that differs)",
                path.display()
            ));
        }
        ctx.record(Record::run(RunEvent::Committed))?;
        Ok(true)
    }

    /// Removes the parked originals of the migrated containers (a Swarm service keeps none:
    /// Swarm replaced its tasks in place); returns the parked names that could not be removed.
    async fn remove_parked(&self, migrated: &[String]) -> Vec<String> {
        let ctx = &self.ctx;
        let mut stuck = Vec::new();
        for name in migrated {
            let Workload::Container(r) = self.day.workload(name) else { continue };
            let parked = renamed(name, &ctx.run.id);
            let original_id = r.original.id().to_string();
            let removed = ctx
                .step(name, Step::Commit, json!({"remove": parked}), async {
                    replacement_runs(ctx, name).await?;
                    ctx.remove_gone(&original_id).await?;
                    Ok(((), json!({})))
                })
                .await;
            if let Err(e) = removed {
                tracing::warn!(service = %name, "the renamed original was not removed: {e}");
                stuck.push(parked);
            }
        }
        stuck
    }

    /// The ledger's record of a migrated workload: a container's compose coordinates and
    /// override settings, or a Swarm service's stack and the settings a stack override takes
    /// (recorded for every service, so a re-apply finds it migrated by its user; only a
    /// stack's is written out as an override).
    fn migrated_record(&self, name: &str) -> ServiceRecord {
        let run = self.ctx.run.id.clone();
        match self.day.workload(name) {
            Workload::Service(r) => ServiceRecord {
                state: ServiceState::Migrated,
                run,
                compose: None,
                stack: r.original.stack().map(|stack| crate::model::compose::StackRef::of(name, stack)),
                settings: Some(self.stack_override(name, r)),
            },
            Workload::Container(r) => ServiceRecord {
                state: ServiceState::Migrated,
                run,
                compose: crate::engine::compose::compose_ref(&r.original),
                stack: None,
                settings: Some(override_of(r)),
            },
        }
    }
}

impl<D: Port> Apply<'_, D> {
    /// What a stack's override sets for a Swarm service of the day: what `docker stack
    /// deploy` takes of the plan's changes (it ignores `group_add` and `security_opt`).
    fn stack_override(&self, name: &str, r: &crate::engine::swarm::preview::SwarmResolved) -> ServiceOverride {
        let s = self.plan.service(name).expect("a day's services are the plan's");
        ServiceOverride {
            user: r.target.map(|t| t.to_string()),
            cap_drop: s.cap_drop.clone(),
            cap_add: s.cap_add.clone(),
            read_only: s.read_only,
            environment: s.env.clone(),
            ..ServiceOverride::default()
        }
    }
}

/// Regenerates every stack's override from the ledger into the plan's `stacks/` folder in
/// the state directory (0600: it holds the plan's environment values), one file per stack
/// whatever run last changed it; returns each file with the command that uses it, and
/// removes the file of a stack none of whose services is migrated any more. A stack's
/// compose files are not known to the daemon, so the override is never written beside them.
pub fn write_stack_overrides(
    ledger: &Ledger,
    plan_dir: &PlanDir,
) -> Result<Vec<(std::path::PathBuf, String)>, StateError> {
    let mut stacks: BTreeMap<String, (crate::model::compose::StackRef, BTreeMap<String, ServiceOverride>)> =
        BTreeMap::new();
    for day in ledger.days.values() {
        for rec in day.services.values().filter(|r| r.state == ServiceState::Migrated) {
            if let (Some(st), Some(s)) = (&rec.stack, &rec.settings) {
                let entry = stacks.entry(st.stack.clone()).or_insert_with(|| (st.clone(), BTreeMap::new()));
                entry.1.insert(st.service.clone(), s.clone());
            }
        }
    }
    let dir = plan_dir.dir.join("stacks");
    // The stacks of the ledger that no longer have a migrated service.
    for rec in ledger.days.values().flat_map(|d| d.services.values()) {
        if let Some(st) = rec.stack.as_ref().filter(|st| !stacks.contains_key(&st.stack)) {
            let _ = std::fs::remove_file(dir.join(st.file_name()));
        }
    }
    let mut written = Vec::new();
    for (sref, services) in stacks.into_values() {
        crate::state::private_dir(&dir)?;
        let path = dir.join(sref.file_name());
        let usage = sref.usage(&path);
        // `docker stack deploy` wants a version in every file it is given.
        crate::state::write_private(&path, compose::render(Some("3.8"), &usage, &services).as_bytes())?;
        written.push((path, usage));
    }
    Ok(written)
}

/// Whether this run's replacement holds `name` and runs: the condition for removing its
/// parked original.
async fn replacement_runs<D: Port>(ctx: &RunCtx<'_, D>, name: &str) -> Result<(), StepError> {
    let c = inspect_named(ctx.port, name).await?;
    if c.label(LABEL_RUN) != Some(ctx.run.id.as_str()) {
        return Err(StepError::Conflict(format!(
            "{name} is held by container {}, not by this run's replacement",
            short(c.id())
        )));
    }
    if !c.running() || c.restarting() {
        return Err(StepError::Conflict(format!(
            "the replacement {} is {}, not running (did the daemon restart?); its original is kept",
            short(c.id()),
            c.status()
        )));
    }
    Ok(())
}

pub(super) fn restore_failures(p: &Progress) -> String {
    p.restore_failed.iter().map(|(n, e)| format!("{n}: {e}")).collect::<Vec<_>>().join("; ")
}

/// Regenerates every compose project's override from the ledger; returns the files written
/// beside the projects with the command that uses each (a copy of each also goes to the
/// run's `compose/`).
pub fn write_overrides(ledger: &Ledger, run: &RunDir) -> Result<Vec<(std::path::PathBuf, String)>, StateError> {
    let mut projects: BTreeMap<String, (ComposeRef, BTreeMap<String, ServiceOverride>)> = BTreeMap::new();
    for day in ledger.days.values() {
        for rec in day.services.values().filter(|r| r.state == ServiceState::Migrated) {
            if let (Some(c), Some(s)) = (&rec.compose, &rec.settings) {
                let entry = projects.entry(c.project.clone()).or_insert_with(|| (c.clone(), BTreeMap::new()));
                entry.1.insert(c.service.clone(), s.clone());
            }
        }
    }
    let mut written = Vec::new();
    for (project, (cref, services)) in projects {
        let version = cref
            .config_paths()
            .first()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| compose::base_version(&t));
        let usage = cref.usage();
        let text = compose::render(version.as_deref(), &usage, &services);
        let dir = run.dir.join("compose");
        crate::state::private_dir(&dir)?;
        crate::state::write_private(&dir.join(format!("{project}.unroot.yml")), text.as_bytes())?;
        match compose::write_override(&cref, &text) {
            Ok(path) => written.push((path, usage)),
            Err(e) => tracing::warn!(
                "cannot write {}: {e}; a copy is in the run's compose/ folder",
                compose::override_path(&cref).display()
            ),
        }
    }
    Ok(written)
}
/// Where a failure's log was saved, as its error says it: ` (the last 50 in PATH)`.
fn saved_at(path: &std::path::Path) -> String {
    format!(" (the last {FAILURE_LOG_LINES} in {})", path.display())
}

/// Whether a failure's error says its log was saved (the run's `failure.log` is then this
/// failure's).
pub fn says_log_saved(error: &str) -> bool {
    error.contains(&format!(" (the last {FAILURE_LOG_LINES} in "))
}

/// A failure's error without where its log was saved (the state directory of the machine
/// that ran it, which a report's reader cannot open; the report quotes the log instead).
pub fn without_saved_at(error: &str) -> String {
    let lead = format!(" (the last {FAILURE_LOG_LINES} in ");
    let Some(start) = error.find(&lead) else { return error.to_string() };
    match error[start..].find("):") {
        Some(end) => format!("{}{}", &error[..start], &error[start + end + 1..]),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod saved_at_tests {
    use super::*;

    #[test]
    fn the_saved_path_is_taken_out_of_the_error_and_nothing_else() {
        let path = std::path::Path::new("/srv/state/shop/runs/day1-x/services/db (1)/failure.log");
        let error = format!("health failed: exited 3; the end of its log{}:\n    token=<redacted>", saved_at(path));
        assert!(says_log_saved(&error));
        let shown = without_saved_at(&error);
        assert_eq!(shown, "health failed: exited 3; the end of its log:\n    token=<redacted>");
        assert!(!says_log_saved(&shown));
        let plain = "health failed: exited 3; the end of its log:\n    a (b): c";
        assert_eq!(without_saved_at(plain), plain, "an error without a saved log is as it was");
    }
}
