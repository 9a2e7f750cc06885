//! Applying a day (SPEC §3 steps 4–9) and restoring services when something fails.
//!
//! Every step and every restore step is written to the journal before and after it runs;
//! a step's intent is durable before its side effect. Each step is idempotent: it checks
//! what Docker shows and does only what is still missing, so running it again (after a
//! crash, from `resume`) is harmless.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

use crate::compose::{self, ComposeRef, ServiceOverride};
use crate::docker::{DockerError, DockerPort, Finished, Inspect};
use crate::health;
use crate::hostfs;
use crate::interrupt::Interrupt;
use crate::output::Reporter;
use crate::plan::{HealthMode, OnFailure, Ownership, Plan, Timings};
use crate::preview::{self, DayPlan, Method, Resolved, ServicePlan};
use crate::recreate::{self, Changes, LABEL_RUN};
use crate::reown::{self, HELPER_MOUNT, Manifest, MountChanges, MountId};
use crate::state::{AppliedDay, Journal, Ledger, PlanDir, Record, RunDir, ServiceRecord, StateError};

/// How an apply, resume or rollback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every service of the day migrated (or, with rollback-service, restored) and committed.
    Applied,
    /// A failure, and every touched service is back on its original, healthy.
    RolledBack,
    /// Something is not back (or the run paused): the state dir says what.
    Incomplete,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::RolledBack => "rolled-back",
            Outcome::Incomplete => "rollback-incomplete",
        }
    }

    pub fn exit(self, any_failed: bool) -> crate::Exit {
        match (self, any_failed) {
            (Outcome::Applied, false) => crate::Exit::Ok,
            (Outcome::Applied, true) | (Outcome::RolledBack, _) => crate::Exit::RolledBack,
            (Outcome::Incomplete, _) => crate::Exit::Incomplete,
        }
    }
}

/// A step that failed, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{step}: {message}")]
pub struct StepFailure {
    pub step: &'static str,
    pub message: String,
}

/// The name a renamed original has during the migration window.
pub fn renamed(name: &str, run: &str) -> String {
    format!("{name}.unroot-{run}")
}

/// What a run needs to act and to record: the port, the run's folder and journal, and
/// where events go.
pub struct RunCtx<'a, D: DockerPort> {
    pub port: &'a D,
    pub run: RunDir,
    pub journal: Mutex<Journal>,
    pub out: Reporter,
    /// Set by Ctrl-C: start nothing new.
    pub stop: &'a Interrupt,
}

impl<D: DockerPort> RunCtx<'_, D> {
    /// Journals a record, then reports it (a record is durable before progress is shown).
    pub fn record(&self, record: Record) -> Result<(), StateError> {
        let entry = self.journal.lock().expect("journal lock").append(record)?;
        match &entry.record {
            Record::Step { service, step, ok, error, detail } => {
                let event = match ok {
                    None => "step-start",
                    Some(true) => "step-end",
                    Some(false) => "step-failed",
                };
                let mut fields = json!({});
                if let Some(e) = error {
                    fields["error"] = json!(e);
                }
                if let Value::Object(d) = detail {
                    for (k, v) in d {
                        fields[k] = v.clone();
                    }
                }
                self.out.event(event, Some(service), Some(step), fields);
            }
            Record::Run { event, detail } => {
                self.out.event(event, None, None, json!({"run": self.run.id, "detail": detail}))
            }
            Record::Header { .. } => {}
        }
        Ok(())
    }

    /// Runs one step between a start and an end record.
    async fn step<T, F>(&self, service: &str, step: &'static str, intent: Value, f: F) -> Result<T, StepFailure>
    where
        F: std::future::Future<Output = Result<(T, Value), String>>,
    {
        let journal_err = |e: StateError| StepFailure { step, message: format!("journal: {e}") };
        self.record(Record::Step { service: service.into(), step: step.into(), ok: None, error: None, detail: intent })
            .map_err(journal_err)?;
        match f.await {
            Ok((value, detail)) => {
                self.record(Record::Step {
                    service: service.into(),
                    step: step.into(),
                    ok: Some(true),
                    error: None,
                    detail,
                })
                .map_err(journal_err)?;
                Ok(value)
            }
            Err(message) => {
                let _ = self.record(Record::Step {
                    service: service.into(),
                    step: step.into(),
                    ok: Some(false),
                    error: Some(message.clone()),
                    detail: Value::Null,
                });
                Err(StepFailure { step, message })
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Helper containers.

    /// Runs one re-owning script in a short-lived helper holding one mount: uid 0, no
    /// network, only CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH and FOWNER. Removed afterwards,
    /// also on failure.
    async fn helper(
        &self,
        service: &str,
        image: &str,
        mount: &MountId,
        job: HelperJob<'_>,
    ) -> Result<Finished, String> {
        let HelperJob { script, args, upload, output_file } = job;
        let name = format!("unroot-helper.{service}.{}", self.run.id);
        let mut m = json!({"Type": mount.kind, "Source": mount.source, "Target": HELPER_MOUNT, "ReadOnly": false});
        if mount.kind == "volume" {
            m["VolumeOptions"] = json!({"NoCopy": true});
        }
        let mut argv = vec![json!("sh"), json!("-c"), json!(script), json!("unroot-helper")];
        argv.extend(args.iter().map(|a| json!(a)));
        let body = json!({
            "Image": image,
            "Entrypoint": argv,
            "Cmd": [],
            "User": "0:0",
            "WorkingDir": "/",
            "NetworkDisabled": true,
            "Labels": {"io.unroot.helper": self.run.id},
            "HostConfig": {
                "NetworkMode": "none",
                "CapDrop": ["ALL"],
                "CapAdd": ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER"],
                "SecurityOpt": ["no-new-privileges:true"],
                "LogConfig": {"Type": "json-file", "Config": {}},
                "Mounts": [m]
            }
        });
        let _ = self.port.remove_container(&name, true).await;
        let id = self.port.create_container(&name, body).await.map_err(|e| format!("creating the helper: {e}"))?;
        let result = async {
            if let Some(tar) = upload {
                self.port.upload_archive(&id, "/", tar).await?;
            }
            self.port.start_container(&id).await?;
            let mut out = self.port.wait_container(&id).await?;
            if let Some(path) = output_file.filter(|_| out.exit_code == 0) {
                let tar = self.port.read_archive(&id, path, HELPER_OUTPUT_LIMIT).await?;
                out.stdout = crate::passwd::first_file_bytes(&tar).unwrap_or_default();
            }
            Ok::<_, DockerError>(out)
        }
        .await;
        let _ = self.port.remove_container(&id, true).await;
        result.map_err(|e| format!("the helper: {e}"))
    }

    /// Scans one mount: what would change to `uid:gid`.
    async fn scan(
        &self,
        service: &str,
        image: &str,
        mount: &MountId,
        target: (u32, u32),
        hardlinks: bool,
        ownership: Ownership,
    ) -> Result<MountChanges, String> {
        if preview::method(self.port, ownership, &mount.host_path)? == Method::Host {
            let path = std::path::PathBuf::from(&mount.host_path);
            return tokio::task::spawn_blocking(move || hostfs::scan(&path, target, hardlinks))
                .await
                .map_err(|e| format!("the host walk: {e}"))?;
        }
        let args = [target.0.to_string(), target.1.to_string(), if hardlinks { "1" } else { "0" }.to_string()];
        let job =
            HelperJob { script: reown::SCAN_SCRIPT, args: &args, upload: None, output_file: Some(reown::SCAN_OUTPUT) };
        let out = self.helper(service, image, mount, job).await?;
        succeeded(&out, "scanning", mount)?;
        reown::parse_scan(&out.stdout, &format!("{}:{}", target.0, target.1))
    }

    /// Sets each listed entry of one mount to its owner, the root last.
    async fn set_owners(
        &self,
        service: &str,
        image: &str,
        mount: &MountId,
        entries: &[(String, String)],
        root: Option<&str>,
        ownership: Ownership,
    ) -> Result<(), String> {
        if entries.is_empty() && root.is_none() {
            return Ok(());
        }
        if preview::method(self.port, ownership, &mount.host_path)? == Method::Host {
            let path = std::path::PathBuf::from(&mount.host_path);
            let (entries, root) = (entries.to_vec(), root.map(str::to_string));
            let gone = tokio::task::spawn_blocking(move || hostfs::apply(&path, &entries, root.as_deref()))
                .await
                .map_err(|e| format!("the host walk: {e}"))??;
            if gone > 0 {
                tracing::warn!(service, mount = %mount.destination, "{gone} entries are no longer reachable without following a link; left as they are");
            }
            return Ok(());
        }
        let tar = reown::apply_lists(entries, root);
        let job = HelperJob { script: reown::APPLY_SCRIPT, args: &[], upload: Some(tar), output_file: None };
        let out = self.helper(service, image, mount, job).await?;
        succeeded(&out, "re-owning", mount)
    }

    /// Removes a container (forced, never its volumes) and returns once it is gone.
    ///
    /// Guarantees: idempotent: a container already gone is done, and one whose removal is
    /// in progress (asked by an attempt that died) is waited for through its events.
    /// Errors: the daemon refuses, or the removal in progress does not end within a minute.
    pub async fn remove_gone(&self, id: &str) -> Result<(), String> {
        match self.port.remove_container(id, true).await {
            Ok(()) | Err(DockerError::NotFound(_)) => Ok(()),
            Err(DockerError::Conflict(m)) if m.contains("in progress") => {
                let mut events = self.port.container_events(id).await.map_err(|e| e.to_string())?;
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
                loop {
                    match self.port.inspect_container(id).await {
                        Err(DockerError::NotFound(_)) => return Ok(()),
                        Err(e) => return Err(e.to_string()),
                        Ok(_) => {}
                    }
                    match tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut events)).await {
                        Ok(Some(Ok(e))) if e.action == "destroy" => return Ok(()),
                        Ok(Some(Ok(_))) => {}
                        _ => return Err(format!("container {} is still being removed", short(id))),
                    }
                }
            }
            Err(e) => Err(e.to_string()),
        }
    }

    // -----------------------------------------------------------------------------------
    // Restoring.

    /// Restores a service to its original: removes the replacement, restores ownership from
    /// the manifest, renames the original back (or recreates it from `original.json`),
    /// restores its restart policy, starts it and waits until it is healthy.
    ///
    /// Guarantees: idempotent and level-triggered: each part looks at what Docker shows
    /// and does only what is missing, so it can run again after any interruption.
    /// Errors: the first part that could not be done; the service may then be half-restored
    /// and a later `resume` or `rollback` continues.
    pub async fn restore(
        &self,
        name: &str,
        timings: &Timings,
        helper_image: Option<&str>,
        ownership: Ownership,
    ) -> Result<(), StepFailure> {
        let original = match self.run.load_original(name) {
            Ok(Some(v)) => Inspect(v),
            Ok(None) => return Ok(()), // never inspected: never touched
            Err(e) => {
                return Err(StepFailure { step: "restore", message: e.to_string() });
            }
        };
        let original_id = original.id().to_string();
        self.step(name, "restore", json!({"original": short(&original_id)}), async {
            // 1. The replacement, if any: whatever holds the name and is not the original.
            match self.port.inspect_container(name).await {
                Ok(c) if c.id() != original_id => {
                    if c.label(LABEL_RUN) != Some(self.run.id.as_str()) {
                        return Err(format!(
                            "{name} is held by container {} that this run did not create; not touching it",
                            short(c.id())
                        ));
                    }
                    self.remove_gone(c.id()).await.map_err(|e| format!("removing the replacement: {e}"))?;
                }
                Ok(_) | Err(DockerError::NotFound(_)) => {}
                Err(e) => return Err(format!("inspecting {name}: {e}")),
            }
            // 2. Ownership, from the manifest.
            if let Some(manifest) = self.run.load_owners(name).map_err(|e| e.to_string())? {
                let image = helper_image.unwrap_or(original.image_id()).to_string();
                for (mount, changes) in &manifest.mounts {
                    self.set_owners(name, &image, mount, &changes.entries, changes.root.as_deref(), ownership).await?;
                }
            }
            // 3. The original under its name, with its restart policy.
            let policy = original.0.pointer("/HostConfig/RestartPolicy").cloned().unwrap_or(json!({"Name": "no"}));
            let id = match self.port.inspect_container(&original_id).await {
                Ok(c) => {
                    if c.name() != name {
                        self.port
                            .rename_container(&original_id, name)
                            .await
                            .map_err(|e| format!("renaming back: {e}"))?;
                    }
                    original_id.clone()
                }
                Err(DockerError::NotFound(_)) => {
                    // The original's own reference when it still names the same image.
                    let image = match self.port.inspect_image(original.image()).await {
                        Ok(img) if img["Id"].as_str() == Some(original.image_id()) => original.image(),
                        _ => original.image_id(),
                    };
                    let identity = Changes { image: image.to_string(), ..Default::default() };
                    let all_at_create = api_at_least(self.port, 1, 44);
                    let req = recreate::create_request(&original, &identity, all_at_create);
                    let id = self
                        .port
                        .create_container(name, req.body)
                        .await
                        .map_err(|e| format!("recreating the original: {e}"))?;
                    for (net, endpoint) in req.connect_after {
                        self.port
                            .connect_network(&net, &id, endpoint)
                            .await
                            .map_err(|e| format!("connecting {net}: {e}"))?;
                    }
                    id
                }
                Err(e) => return Err(format!("inspecting the original: {e}")),
            };
            self.port
                .set_restart_policy(&id, policy)
                .await
                .map_err(|e| format!("restoring the restart policy: {e}"))?;
            // 4. Running and healthy again.
            let c = self.port.inspect_container(&id).await.map_err(|e| e.to_string())?;
            let mode = if c
                .0
                .pointer("/Config/Healthcheck/Test")
                .and_then(Value::as_array)
                .is_some_and(|t| t.first().and_then(Value::as_str) != Some("NONE"))
            {
                HealthMode::Docker
            } else {
                HealthMode::Running
            };
            if c.running() {
                Ok(((), json!({"id": short(&id), "note": "already running"})))
            } else {
                health::start_and_wait(self.port, &id, &mode, timings, None)
                    .await
                    .map_err(|e| format!("the original is not healthy: {e}"))?;
                Ok(((), json!({"id": short(&id)})))
            }
        })
        .await
    }
}

/// What one helper container runs: a script with its arguments, a tar to upload before the
/// start, and a file whose contents to read back after a clean exit.
struct HelperJob<'a> {
    script: &'a str,
    args: &'a [String],
    upload: Option<Vec<u8>>,
    output_file: Option<&'a str>,
}

/// The most a helper's listing may hold (a scan of ten million entries).
const HELPER_OUTPUT_LIMIT: usize = 1 << 30;

/// A helper's exit, as an error saying what failed and what it printed on stderr.
fn succeeded(out: &Finished, what: &str, mount: &MountId) -> Result<(), String> {
    if out.exit_code == 0 {
        return Ok(());
    }
    Err(format!(
        "{what} {} failed (exit {}): {}",
        mount.destination,
        out.exit_code,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// Whether the daemon speaks at least API `major.minor`.
fn api_at_least(port: &impl DockerPort, major: u32, minor: u32) -> bool {
    let v = &port.daemon().api_version;
    v.split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        .is_some_and(|x| x >= (major, minor))
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// The compose override settings of a migrated service.
fn override_of(r: &Resolved) -> ServiceOverride {
    ServiceOverride {
        user: r.changes.user.clone(),
        group_add: r.changes.group_add.clone(),
        cap_drop: r.changes.cap_drop.clone(),
        cap_add: r.changes.cap_add.clone(),
        read_only: r.changes.read_only,
        security_opt: if r.changes.no_new_privileges == Some(true) {
            vec!["no-new-privileges:true".into()]
        } else {
            Vec::new()
        },
        environment: r.changes.env.clone(),
    }
}

/// One day's apply.
pub struct Apply<'a, D: DockerPort> {
    pub ctx: RunCtx<'a, D>,
    pub plan: &'a Plan,
    pub day: DayPlan,
    pub plan_dir: PlanDir,
    pub parallelism: usize,
    pub on_failure: OnFailure,
    /// Services an earlier attempt of this run already restored (rollback-service): they
    /// stay on their originals and are recorded so at commit.
    pub restored_before: Vec<String>,
    /// `started`, or `resumed` for a run continued by `unroot resume`.
    pub start_event: &'static str,
}

/// What happened to each service of a day.
#[derive(Debug, Default)]
struct Progress {
    /// Services in the order their migration started (restores go in reverse).
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

impl<D: DockerPort> Apply<'_, D> {
    fn resolved(&self, name: &str) -> &Resolved {
        self.day
            .services
            .iter()
            .find(|s| s.name == name)
            .and_then(|s: &ServicePlan| s.resolved.as_ref())
            .expect("a day without blockers has every service resolved")
    }

    /// Migrates one service: steps 1 and 4–8.
    async fn migrate(&self, name: &str) -> Result<(), StepFailure> {
        let ctx = &self.ctx;
        let r = self.resolved(name);
        let run = ctx.run.id.clone();
        let original_id = r.original.id().to_string();

        // On a resumed run, what Docker shows decides which steps are left: a replacement
        // of this run means stop, rename and chown are done.
        let resumed =
            ctx.run.load_original(name).map_err(|e| StepFailure { step: "inspect", message: e.to_string() })?.is_some();
        let replacement_exists = resumed
            && matches!(ctx.port.inspect_container(name).await,
                        Ok(c) if c.label(LABEL_RUN) == Some(run.as_str()));
        if replacement_exists && matches!(ctx.port.inspect_container(&original_id).await, Err(DockerError::NotFound(_)))
        {
            // Committed already: the parked original is gone, the replacement holds the name.
            return Ok(());
        }
        if !replacement_exists {
            // 1. inspect: the container is still the one previewed; save it. On a resumed run
            // the original was saved before (and may be parked already): keep that copy.
            ctx.step(name, "inspect", json!({}), async {
                if let Some(saved) = ctx.run.load_original(name).map_err(|e| e.to_string())?
                    && saved["Id"].as_str() == Some(original_id.as_str())
                {
                    return Ok(((), json!({"id": short(&original_id), "note": "saved by an earlier attempt"})));
                }
                let now = ctx.port.inspect_container(name).await.map_err(|e| e.to_string())?;
                if now.id() != original_id {
                    return Err(format!("{name} is another container than the one previewed"));
                }
                if !now.running() {
                    return Err(format!("{name} is not running ({})", now.status()));
                }
                ctx.run.save_original(name, &now.0).map_err(|e| e.to_string())?;
                Ok(((), json!({"id": short(&original_id), "user": now.configured_user()})))
            })
            .await?;

            // 4. stop: restart policy "no" first, so a daemon restart cannot start it again.
            ctx.step(name, "stop", json!({"timeout": crate::plan::duration::format(r.timings.stop_timeout)}), async {
                ctx.port
                    .set_restart_policy(&original_id, json!({"Name": "no", "MaximumRetryCount": 0}))
                    .await
                    .map_err(|e| e.to_string())?;
                ctx.port
                    .stop_container(&original_id, r.timings.stop_timeout.as_secs())
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(((), json!({})))
            })
            .await?;

            // 5. rename: the original is kept, stopped, until the day commits.
            let parked = renamed(name, &run);
            ctx.step(name, "rename", json!({"to": parked}), async {
                let c = ctx.port.inspect_container(&original_id).await.map_err(|e| e.to_string())?;
                if c.name() != parked {
                    ctx.port.rename_container(&original_id, &parked).await.map_err(|e| e.to_string())?;
                }
                Ok(((), json!({})))
            })
            .await?;

            // 6. chown: scan everything, make the manifest durable, then change.
            if let Some(target) = r.target.filter(|_| !r.mounts.is_empty()) {
                ctx.step(
                    name,
                    "chown",
                    json!({"owner": format!("{}:{}", target.0, target.1), "mounts": r.mounts.len()}),
                    async {
                        // A manifest from an earlier attempt is the record of the true old owners:
                        // reuse it rather than rescanning entries that may be changed already.
                        let manifest = match ctx.run.load_owners(name).map_err(|e| e.to_string())? {
                            Some(m) => m,
                            None => {
                                let mut manifest =
                                    Manifest { target: format!("{}:{}", target.0, target.1), mounts: Vec::new() };
                                for m in &r.mounts {
                                    let changes =
                                        ctx.scan(name, &r.helper_image, m, target, r.hardlinks, r.ownership).await?;
                                    manifest.mounts.push((m.clone(), changes));
                                }
                                ctx.run.save_owners(name, &manifest).map_err(|e| e.to_string())?;
                                manifest
                            }
                        };
                        let owner = manifest.target.clone();
                        for (m, changes) in &manifest.mounts {
                            let entries: Vec<(String, String)> =
                                changes.entries.iter().map(|(p, _)| (p.clone(), owner.clone())).collect();
                            ctx.set_owners(
                                name,
                                &r.helper_image,
                                m,
                                &entries,
                                changes.root.as_ref().map(|_| owner.as_str()),
                                r.ownership,
                            )
                            .await?;
                        }
                        let skipped: usize = manifest.mounts.iter().map(|(_, c)| c.skipped.len()).sum();
                        Ok(((), json!({"changed": manifest.changed(), "hardlinks_skipped": skipped})))
                    },
                )
                .await?;
            }
        }

        // 7. create: the replacement under the original name, then the diff.
        let mut changes = r.changes.clone();
        changes.labels.insert(LABEL_RUN.into(), run.clone());
        let new_id = ctx
            .step(name, "create", json!({}), async {
                let id = match ctx.port.inspect_container(name).await {
                    // A replacement of this run from an earlier attempt: reuse it.
                    Ok(c) if c.label(LABEL_RUN) == Some(run.as_str()) => c.id().to_string(),
                    Ok(c) => return Err(format!("{name} is taken by container {}", short(c.id()))),
                    Err(DockerError::NotFound(_)) => {
                        let req = recreate::create_request(&r.original, &changes, api_at_least(ctx.port, 1, 44));
                        let id = ctx.port.create_container(name, req.body).await.map_err(|e| e.to_string())?;
                        for (net, endpoint) in req.connect_after {
                            ctx.port
                                .connect_network(&net, &id, endpoint)
                                .await
                                .map_err(|e| format!("connecting {net}: {e}"))?;
                        }
                        id
                    }
                    Err(e) => return Err(e.to_string()),
                };
                let new = ctx.port.inspect_container(&id).await.map_err(|e| e.to_string())?;
                let diff = recreate::diff(&r.original, &changes, &new);
                if !diff.is_empty() {
                    return Err(format!(
                        "the replacement differs from the original beyond the plan: {}",
                        diff.join("; ")
                    ));
                }
                Ok((id.clone(), json!({"id": short(&id)})))
            })
            .await?;

        // 8. start and health.
        let uid = r.target.map(|(u, _)| u);
        let mode = match &r.health {
            crate::plan::HealthMode::Docker => "docker",
            crate::plan::HealthMode::Running => "running",
            crate::plan::HealthMode::Exec(_) => "exec",
        };
        ctx.step(name, "health", json!({"mode": mode}), async {
            // Ctrl-C cuts the wait short: the service is then rolled back with the day.
            tokio::select! {
                r = health::start_and_wait(ctx.port, &new_id, &r.health, &r.timings, uid) => r.map_err(|e| e.to_string())?,
                () = ctx.stop.wait() => return Err("interrupted (Ctrl-C) while waiting for health".to_string()),
            }
            Ok(((), json!({})))
        })
        .await?;
        Ok(())
    }

    /// Restores one service after a failure.
    async fn restore(&self, name: &str) -> Result<(), StepFailure> {
        let r = self.resolved(name);
        let helper = self.plan.rollout.helper_image.as_deref();
        self.ctx.restore(name, &r.timings, helper, r.ownership).await
    }

    /// Removes helper containers a failed removal may have left (normally none exist).
    async fn sweep_helpers(&self, services: &[String]) {
        for s in services {
            let name = format!("unroot-helper.{s}.{}", self.ctx.run.id);
            let _ = self.ctx.port.remove_container(&name, true).await;
        }
    }

    /// Runs the day: waves in order, up to `parallelism` services of a wave at once; on a
    /// failure, `on_failure` decides; then commit.
    pub async fn run(&self) -> Result<(Outcome, bool), StateError> {
        let ctx = &self.ctx;
        ctx.record(Record::Run { event: self.start_event.into(), detail: None })?;
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
                            ctx.out.event("skipped", Some(name), None, json!({}));
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
    async fn finish(&self, p: &mut Progress) -> Result<(Outcome, bool), StateError> {
        let ctx = &self.ctx;
        let any_failed = !p.failed.is_empty();
        let interrupted = ctx.stop.is_set();

        if (any_failed && self.on_failure == OnFailure::RollbackDay)
            || (interrupted && self.on_failure != OnFailure::Pause)
        {
            ctx.record(Record::Run { event: "rolling-back".into(), detail: None })?;
            for name in p.touched.clone().iter().rev() {
                match self.restore(name).await {
                    Ok(()) => p.restored.push(name.clone()),
                    Err(e) => p.restore_failed.push((name.clone(), e)),
                }
            }
            return if p.restore_failed.is_empty() {
                ctx.record(Record::Run { event: "rolled-back".into(), detail: None })?;
                Ok((Outcome::RolledBack, true))
            } else {
                ctx.record(Record::Run { event: "rollback-incomplete".into(), detail: Some(restore_failures(p)) })?;
                Ok((Outcome::Incomplete, true))
            };
        }
        if (any_failed && self.on_failure == OnFailure::Pause) || interrupted {
            ctx.record(Record::Run {
                event: "paused".into(),
                detail: Some(format!(
                    "continue with `unroot resume {}` or `unroot rollback {}`",
                    ctx.run.id, ctx.run.id
                )),
            })?;
            return Ok((Outcome::Incomplete, any_failed));
        }
        if !p.restore_failed.is_empty() {
            ctx.record(Record::Run { event: "rollback-incomplete".into(), detail: Some(restore_failures(p)) })?;
            return Ok((Outcome::Incomplete, true));
        }
        self.commit(&p.migrated, &p.restored.iter().chain(&p.skipped).cloned().collect::<Vec<_>>()).await?;
        Ok((Outcome::Applied, any_failed))
    }

    /// Step 9: remove the renamed originals, record the day, write the compose overrides.
    async fn commit(&self, migrated: &[String], left_original: &[String]) -> Result<(), StateError> {
        let ctx = &self.ctx;
        ctx.record(Record::Run { event: "committing".into(), detail: None })?;
        for name in migrated {
            let parked = renamed(name, &ctx.run.id);
            let original_id = self.resolved(name).original.id().to_string();
            let r = ctx
                .step(name, "commit", json!({"remove": parked}), async {
                    ctx.remove_gone(&original_id).await?;
                    Ok(((), json!({})))
                })
                .await;
            if let Err(e) = r {
                tracing::warn!(service = %name, "the renamed original was not removed: {e}");
            }
        }
        let mut ledger = Ledger::load(&self.plan_dir.dir, &self.plan.rollout.name)?;
        let mut services = BTreeMap::new();
        for name in migrated {
            let r = self.resolved(name);
            services.insert(
                name.clone(),
                ServiceRecord {
                    state: "migrated".into(),
                    compose: ComposeRef::of(&r.original),
                    settings: Some(override_of(r)),
                },
            );
        }
        for name in left_original {
            services.insert(name.clone(), ServiceRecord { state: "original".into(), compose: None, settings: None });
        }
        ledger.days.insert(
            self.day.day.to_string(),
            AppliedDay { run: ctx.run.id.clone(), committed: crate::state::now_rfc3339(), services },
        );
        ledger.save(&self.plan_dir.dir)?;
        for path in write_overrides(&ledger, &ctx.run)? {
            ctx.out.note(&format!(
                "compose: wrote {} — use `docker compose -f docker-compose.yml -f {} up -d` (or COMPOSE_FILE) so compose keeps the change",
                path.display(),
                compose::OVERRIDE_FILE
            ));
        }
        ctx.record(Record::Run { event: "committed".into(), detail: None })?;
        Ok(())
    }
}

fn restore_failures(p: &Progress) -> String {
    p.restore_failed.iter().map(|(n, e)| format!("{n}: {e}")).collect::<Vec<_>>().join("; ")
}

/// Regenerates every compose project's override from the ledger; returns the files written
/// beside the projects (a copy of each also goes to the run's `compose/`).
pub fn write_overrides(ledger: &Ledger, run: &RunDir) -> Result<Vec<std::path::PathBuf>, StateError> {
    let mut projects: BTreeMap<String, (ComposeRef, BTreeMap<String, ServiceOverride>)> = BTreeMap::new();
    for day in ledger.days.values() {
        for rec in day.services.values() {
            if let (Some(c), Some(s), "migrated") = (&rec.compose, &rec.settings, rec.state.as_str()) {
                let entry = projects.entry(c.project.clone()).or_insert_with(|| (c.clone(), BTreeMap::new()));
                entry.1.insert(c.service.clone(), s.clone());
            }
        }
    }
    let mut written = Vec::new();
    for (project, (cref, services)) in projects {
        let version = cref
            .config_files
            .first()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| compose::base_version(&t));
        let text = compose::render(version.as_deref(), &services);
        let dir = run.dir.join("compose");
        crate::state::private_dir(&dir)?;
        crate::state::write_private(&dir.join(format!("{project}.unroot.yml")), text.as_bytes())?;
        let path = compose::override_path(&cref);
        match std::fs::write(&path, &text) {
            Ok(()) => written.push(path),
            Err(e) => tracing::warn!("cannot write {}: {e}; a copy is in the run's compose/ folder", path.display()),
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    //! The executor against the recording fake: a failure injected at every Docker call of
    //! a day, each time asserting that the service ends migrated or exactly restored.

    use std::time::Duration;

    use super::*;
    use crate::docker::fake::{Call, FakeDocker};
    use crate::docker::{Finished, Process};
    use crate::passwd::tar_of;
    use crate::preview::{self, NameSource};

    const ORIGINAL: &str = "0r1g0000000000000000000000000000000000000000000000000000000000000";

    fn fake() -> FakeDocker {
        let fake = FakeDocker::default();
        fake.add(
            json!({
                "Id": ORIGINAL, "Name": "/svc", "Image": "sha256:img", "Created": "2026-01-01T00:00:00Z",
                "Config": {"User": "", "Image": "img:1", "Env": ["A=1"], "Cmd": ["run"], "Hostname": "web"},
                "HostConfig": {"Binds": ["data:/data"], "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
                               "NetworkMode": "default"},
                "Mounts": [{"Type": "volume", "Name": "data", "Source": "/var/lib/docker/volumes/data/_data",
                            "Destination": "/data", "RW": true}],
                "State": {"Running": true, "Status": "running"},
                "NetworkSettings": {"Networks": {"bridge": {}}}
            }),
            vec![Process { pid: 1, uid: Some(0), command: "run".into() }],
        );
        fake.archive(
            ORIGINAL,
            "/etc/passwd",
            tar_of("passwd", b"root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n", 0, 0),
        );
        fake.archive(ORIGINAL, "/etc/group", tar_of("group", b"root:x:0:\napp:x:1000:\n", 0, 0));
        fake.archive(ORIGINAL, "/data", tar_of("data", b"", 0, 0));
        for tool in ["sh", "find", "stat", "chown", "xargs"] {
            fake.archive(ORIGINAL, &format!("/bin/{tool}"), tar_of(tool, b"", 0, 0));
        }
        fake.with(|s| {
            for name in ["img:1", "sha256:img"] {
                s.images.insert(name.into(), json!({"Id": "sha256:img"}));
            }
            // The scan finds two entries and the root owned by root; the apply succeeds.
            s.helper = Some(Box::new(|c, _| {
                let script = c.0.pointer("/Config/Entrypoint/2").and_then(Value::as_str).unwrap_or_default();
                if script == reown::SCAN_SCRIPT {
                    Finished { exit_code: 0, stdout: b"C 0:0 ./a\nC 5:6 ./b\nR 0:0\n".to_vec(), stderr: vec![] }
                } else {
                    Finished::default()
                }
            }));
        });
        fake
    }

    fn plan(on_failure: &str) -> Plan {
        Plan::parse(
            "t.toml",
            &format!(
                "[rollout]\nname = \"t\"\non_failure = \"{on_failure}\"\n[service.svc]\nday = 1\nuser = \"app\"\n"
            ),
        )
        .unwrap()
    }

    /// Runs day 1 against `fake`, failing the `k`-th call after the preview when given.
    /// Returns the outcome, the state dir and the number of calls the preview made.
    fn run_day(
        fake: &FakeDocker,
        plan: &Plan,
        fail_after_preview: Option<usize>,
    ) -> (Outcome, tempfile::TempDir, usize) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        rt.block_on(async {
            let mut day = preview::compute(fake, plan, 1, &[], NameSource::Running).await.unwrap();
            assert!(day.blockers().next().is_none(), "{:?}", day.services[0].blockers);
            for s in &mut day.services {
                let r = s.resolved.as_mut().unwrap();
                r.timings.stable_for = Duration::from_millis(5);
                r.timings.health_timeout = Duration::from_millis(300);
            }
            let base = fake.calls().len();
            if let Some(k) = fail_after_preview {
                fake.fail_call(base + k);
            }
            let plan_dir = PlanDir::new(&tmp.path().join("state"), "t");
            let run = RunDir::create(&plan_dir, "day1-test", "").unwrap();
            let journal = Journal::open(&run.journal_path()).unwrap();
            let stop = crate::interrupt::Interrupt::default();
            let apply = Apply {
                ctx: RunCtx {
                    port: fake,
                    run,
                    journal: Mutex::new(journal),
                    out: Reporter { json: true, ..Reporter::default() },
                    stop: &stop,
                },
                plan,
                day,
                plan_dir,
                parallelism: 1,
                on_failure: plan.rollout.on_failure,
                restored_before: Vec::new(),
                start_event: "started",
            };
            let (outcome, _) = apply.run().await.unwrap();
            (outcome, tmp, base)
        })
    }

    fn container_names(fake: &FakeDocker) -> Vec<String> {
        fake.with(|s| s.containers.iter().map(|c| c.name().to_string()).collect())
    }

    #[test]
    fn a_removal_already_in_progress_is_waited_for() {
        let fake = fake();
        fake.script(
            "remove",
            crate::docker::fake::Script::Fail(DockerError::Conflict(
                "removal of container x is already in progress".into(),
            )),
        );
        fake.with(|s| {
            s.events.insert("svc".into(), vec!["destroy".into()]);
        });
        let tmp = tempfile::tempdir().unwrap();
        let plan_dir = PlanDir::new(&tmp.path().join("state"), "t");
        let run = RunDir::create(&plan_dir, "day1-test", "").unwrap();
        let journal = Journal::open(&run.journal_path()).unwrap();
        let stop = Interrupt::default();
        let ctx = RunCtx { port: &fake, run, journal: Mutex::new(journal), out: Reporter::default(), stop: &stop };
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(ctx.remove_gone(ORIGINAL)).unwrap();
        assert!(fake.calls().iter().any(|c| matches!(c, Call::Events(_))), "it waited on the container's events");
    }

    #[test]
    fn a_clean_day_migrates_and_commits() {
        let fake = fake();
        let (outcome, tmp, _) = run_day(&fake, &plan("rollback-day"), None);
        assert_eq!(outcome, Outcome::Applied);
        let c = fake.with(|s| s.container("svc").cloned()).unwrap();
        assert_ne!(c.id(), ORIGINAL);
        assert_eq!(c.configured_user(), "1000:1000");
        assert_eq!(container_names(&fake), ["svc"], "the parked original and helpers are gone");
        assert!(Ledger::load(&tmp.path().join("state/t"), "t").unwrap().is_applied(1));
    }

    #[test]
    fn a_failure_at_every_call_ends_migrated_or_exactly_restored() {
        let calls_in_a_clean_day = {
            let fake = fake();
            let (_, _, base) = run_day(&fake, &plan("rollback-day"), None);
            fake.calls().len() - base
        };
        assert!(calls_in_a_clean_day > 20, "{calls_in_a_clean_day}");
        let (mut applied, mut rolled_back) = (0, 0);
        for k in 1..=calls_in_a_clean_day {
            let fake = fake();
            let (outcome, tmp, base) = run_day(&fake, &plan("rollback-day"), Some(k));
            let failed = fake.calls()[base + k - 1].clone();
            let c = fake
                .with(|s| s.container("svc").cloned())
                .unwrap_or_else(|| panic!("k={k} {failed:?}: nobody holds the name"));
            let others: Vec<Inspect> =
                fake.with(|s| s.containers.iter().filter(|c| c.name() != "svc").cloned().collect());
            match outcome {
                Outcome::Applied => {
                    applied += 1;
                    assert_eq!(c.configured_user(), "1000:1000", "k={k} {failed:?}");
                    assert!(c.running(), "k={k} {failed:?}");
                    assert!(Ledger::load(&tmp.path().join("state/t"), "t").unwrap().is_applied(1), "k={k}");
                    if failed == Call::Remove(ORIGINAL.into()) {
                        // The commit could not remove the parked original: it stays, stopped,
                        // and cannot start by itself.
                        assert_eq!(others.len(), 1, "k={k}");
                        assert!(!others[0].running() && others[0].0["HostConfig"]["RestartPolicy"]["Name"] == "no");
                    } else {
                        assert!(others.is_empty(), "k={k} {failed:?}: left behind: {others:?}");
                    }
                }
                Outcome::RolledBack => {
                    rolled_back += 1;
                    assert_eq!(c.id(), ORIGINAL, "k={k} {failed:?}: the original itself is back");
                    assert!(c.running(), "k={k} {failed:?}: the original runs");
                    assert_eq!(c.configured_user(), "", "k={k}");
                    assert_eq!(c.0["HostConfig"]["RestartPolicy"]["Name"], "always", "k={k}: restart policy restored");
                    assert!(!Ledger::load(&tmp.path().join("state/t"), "t").unwrap().is_applied(1), "k={k}");
                    assert!(others.is_empty(), "k={k} {failed:?}: left behind: {others:?}");
                    // Ownership restored when it had been changed: a restore list holds
                    // the old owner 5:6 of ./b.
                    let owners_saved = tmp.path().join("state/t/runs/day1-test/services/svc/owners").exists();
                    let restored_owners = fake.with(|s| {
                        s.uploads.values().any(|tar| {
                            let mut a = tar::Archive::new(&tar[..]);
                            a.entries().unwrap().any(|e| e.unwrap().path().unwrap().ends_with("5:6"))
                        })
                    });
                    assert_eq!(restored_owners, owners_saved, "k={k} {failed:?}: the manifest was restored");
                }
                Outcome::Incomplete => {
                    panic!("k={k} {failed:?}: one failure left the service half-restored")
                }
            }
        }
        assert!(applied > 0 && rolled_back > 0, "applied {applied}, rolled back {rolled_back}");
        println!(
            "injected a failure at each of {calls_in_a_clean_day} calls: {applied} applied, {rolled_back} rolled back"
        );
    }

    #[test]
    fn rollback_service_and_pause_end_as_they_say() {
        // Fail the health gate of the replacement: its event subscription is the first one.
        for (policy, expected) in [("rollback-service", Outcome::Applied), ("pause", Outcome::Incomplete)] {
            let fake = fake();
            fake.script(
                "events",
                crate::docker::fake::Script::Fail(DockerError::Api { status: 500, message: "boom".into() }),
            );
            let (outcome, tmp, _) = run_day(&fake, &plan(policy), None);
            let c = fake.with(|s| s.container("svc").cloned()).unwrap();
            match policy {
                "rollback-service" => {
                    assert_eq!(outcome, expected);
                    assert_eq!(c.id(), ORIGINAL, "the failed service is back on its original");
                    let ledger = Ledger::load(&tmp.path().join("state/t"), "t").unwrap();
                    assert_eq!(ledger.days["1"].services["svc"].state, "original");
                }
                _ => {
                    assert_eq!(outcome, expected);
                    assert!(
                        container_names(&fake).iter().any(|n| n.starts_with("svc.unroot-")),
                        "pause keeps the parked original for resume or rollback"
                    );
                }
            }
        }
    }
}
