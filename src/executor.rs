//! Applying a day (SPEC §3 steps 4–9) and restoring services when something fails.
//!
//! Every step and every restore step is written to the journal before and after it runs;
//! a step's intent is durable before its side effect. Each step is idempotent: it checks
//! what Docker shows and does only what is still missing, so running it again (after a
//! crash, from `resume`) is harmless. A panic inside a step is a failed step like any
//! other: the service is restored.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt, stream};
use serde_json::{Value, json};

use crate::compose::{self, ComposeRef, ServiceOverride};
use crate::docker::{DockerError, DockerPort, Finished, Inspect, inspect_named};
use crate::events::Events;
use crate::health;
use crate::hostfs;
use crate::interrupt::Interrupt;
use crate::orphans;
use crate::plan::{HealthMode, OnFailure, Ownership, Plan, Timings};
use crate::preview::{self, DayPlan, Method, Resolved, ServicePlan};
use crate::recreate::{self, Changes, LABEL_RUN};
use crate::reown::{self, HELPER_MOUNT, Manifest, MountChanges, MountId};
use crate::state::{Journal, Ledger, PlanDir, Record, RunDir, RunEvent, ServiceRecord, ServiceState, StateError};

/// How an apply, resume or rollback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every service of the day migrated (or, with rollback-service, restored) and committed.
    Applied,
    /// A failure, and every touched service is back on its original, healthy.
    RolledBack,
    /// Something is not back (or the run paused): the state dir says what.
    Incomplete,
    /// Every service is migrated and healthy, but a parked original could not be removed:
    /// the run stays open until `resume` removes it.
    CommitIncomplete,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::RolledBack => "rolled-back",
            Outcome::Incomplete => "rollback-incomplete",
            Outcome::CommitIncomplete => "commit-incomplete",
        }
    }

    pub fn exit(self, any_failed: bool) -> crate::Exit {
        match (self, any_failed) {
            (Outcome::Applied, false) => crate::Exit::Ok,
            (Outcome::Applied, true) | (Outcome::RolledBack, _) => crate::Exit::RolledBack,
            (Outcome::Incomplete | Outcome::CommitIncomplete, _) => crate::Exit::Incomplete,
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

/// Who holds a service's name when it is restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// The original container itself.
    Original,
    /// The original as a restore recreated it from `original.json` (the original itself was
    /// gone): configured exactly as the original, so it stands for it.
    RecreatedOriginal,
    /// The replacement this run created.
    Replacement,
    /// A container that compose (or the operator) made in the replacement's place: the same
    /// image, the planned user, and the original's compose project and service.
    Successor,
    /// Anything else: a restore refuses to touch it.
    Foreign,
}

/// Classifies the container holding a service's name. `expected_user` is the `Config.User`
/// the replacement was created with.
pub fn classify_holder(c: &Inspect, original: &Inspect, run: &str, expected_user: Option<&str>) -> Holder {
    let same_label = |k: &str| c.label(k).is_some() && c.label(k) == original.label(k);
    if c.id() == original.id() {
        Holder::Original
    } else if c.label(LABEL_RUN).is_none()
        && c.image_id() == original.image_id()
        && ["User", "Cmd", "Entrypoint", "Env", "Labels", "WorkingDir", "Hostname"]
            .iter()
            .all(|k| c.0["Config"].get(*k) == original.0["Config"].get(*k))
    {
        Holder::RecreatedOriginal
    } else if c.label(LABEL_RUN) == Some(run) {
        Holder::Replacement
    } else if c.image_id() == original.image_id()
        && expected_user.is_some_and(|u| c.configured_user() == u)
        && same_label("com.docker.compose.project")
        && same_label("com.docker.compose.service")
    {
        Holder::Successor
    } else {
        Holder::Foreign
    }
}

/// What a restore says about a name held by a container it must not touch.
pub fn foreign_holder_message(name: &str, c: &Inspect) -> String {
    format!(
        "{name} is held by container {} (image {}, user {:?}) that is neither this run's replacement nor its successor; not touching it. Remove or rename it, then run the command again",
        short(c.id()),
        c.image(),
        c.configured_user()
    )
}

/// The message of a panic, for the step that caught it.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// What a run needs to act and to record: the port, the run's folder and journal, and
/// where events go.
pub struct RunCtx<'a, D: DockerPort> {
    pub port: &'a D,
    pub run: RunDir,
    pub journal: Mutex<Journal>,
    pub out: &'a dyn Events,
    /// Set by Ctrl-C: start nothing new.
    pub stop: &'a Interrupt,
    /// What the commands that continue this run need besides the run id, so that they find
    /// its state directory (` --plan PLAN`, ` --state-dir DIR`, or nothing).
    pub hint: String,
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
            Record::Run { event, detail, .. } => {
                self.out.event(event.as_str(), None, None, json!({"run": self.run.id, "detail": detail}))
            }
            Record::Header { .. } => {}
        }
        Ok(())
    }

    /// A command that continues this run, as the operator should type it.
    pub fn command(&self, verb: &str) -> String {
        format!("unroot {verb} {}{}", self.run.id, self.hint)
    }

    /// Runs one step between a start and an end record. A panic inside the step ends it as
    /// a failure (so the service is restored like after any other failure).
    async fn step<T, F>(&self, service: &str, step: &'static str, intent: Value, f: F) -> Result<T, StepFailure>
    where
        F: std::future::Future<Output = Result<(T, Value), String>>,
    {
        let journal_err = |e: StateError| StepFailure { step, message: format!("journal: {e}") };
        self.record(Record::Step { service: service.into(), step: step.into(), ok: None, error: None, detail: intent })
            .map_err(journal_err)?;
        let result = std::panic::AssertUnwindSafe(f)
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(format!("unroot failed inside the step ({})", panic_message(&*panic))));
        match result {
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
    /// also on failure; one left by a killed unroot is removed by the next command that
    /// takes the lock ([`orphans::sweep`]).
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
            "Labels": {(orphans::LABEL_HELPER): self.run.id, (orphans::LABEL_MAKER): orphans::maker()},
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

    /// Checks, right before owners change, that a bind source is still what the preview saw:
    /// not a protected path, and (where the preview could see it) the same device and inode,
    /// reached without following any link.
    ///
    /// Errors: the source is protected now, cannot be reached without a link, or is another
    /// object.
    fn check_source(&self, mount: &MountId) -> Result<(), String> {
        if mount.kind != "bind" {
            return Ok(());
        }
        if let Some(why) = reown::protected_bind(&mount.host_path) {
            return Err(format!("bind mount {}: {why}; unroot never re-owns it", mount.host_path));
        }
        if let Some(expected) = mount.identity {
            let now = hostfs::identity(std::path::Path::new(&mount.host_path))
                .map_err(|e| format!("bind mount {} changed since the preview: {e}", mount.host_path))?;
            if now != expected {
                return Err(format!(
                    "bind mount {} is not the directory or file the preview saw (another device or inode); refusing to re-own it",
                    mount.host_path
                ));
            }
        }
        Ok(())
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
        self.check_source(mount)?;
        if preview::method(self.port, ownership, &mount.host_path)? == Method::Host {
            let path = std::path::PathBuf::from(&mount.host_path);
            let expected = mount.identity;
            return tokio::task::spawn_blocking(move || hostfs::scan_checked(&path, expected, target, hardlinks))
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

    /// Sets each listed entry of one mount to its owner, the root last. Returns how many
    /// entries were gone (deleted since the scan: a database removes files all the time);
    /// they are skipped.
    async fn set_owners(
        &self,
        service: &str,
        image: &str,
        mount: &MountId,
        entries: &[(String, String)],
        root: Option<&str>,
        ownership: Ownership,
    ) -> Result<usize, String> {
        if entries.is_empty() && root.is_none() {
            return Ok(0);
        }
        self.check_source(mount)?;
        if preview::method(self.port, ownership, &mount.host_path)? == Method::Host {
            let path = std::path::PathBuf::from(&mount.host_path);
            let (entries, root, expected) = (entries.to_vec(), root.map(str::to_string), mount.identity);
            return tokio::task::spawn_blocking(move || {
                hostfs::apply_checked(&path, expected, &entries, root.as_deref())
            })
            .await
            .map_err(|e| format!("the host walk: {e}"))?;
        }
        let tar = reown::apply_lists(entries, root);
        let job = HelperJob { script: reown::APPLY_SCRIPT, args: &[], upload: Some(tar), output_file: None };
        let out = self.helper(service, image, mount, job).await?;
        succeeded(&out, "re-owning", mount)?;
        Ok(reown::parse_gone(&out.stdout))
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
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                loop {
                    match self.port.inspect_container(id).await {
                        Err(DockerError::NotFound(_)) => return Ok(()),
                        Err(e) => return Err(e.to_string()),
                        Ok(_) => {}
                    }
                    match tokio::time::timeout_at(deadline, events.next()).await {
                        Ok(Some(Ok(e))) if e.action == "destroy" => return Ok(()),
                        Ok(Some(Ok(_))) => {}
                        _ => return Err(format!("container {} is still being removed", short(id))),
                    }
                }
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Connects a container to every network of `wanted` it is not on yet (a create whose
    /// connects an interrupted attempt did not reach).
    ///
    /// Guarantees: idempotent. Errors: the daemon refuses a connect.
    async fn ensure_networks(&self, id: &str, wanted: Vec<(String, Value)>) -> Result<(), String> {
        if wanted.is_empty() {
            return Ok(());
        }
        let c = self.port.inspect_container(id).await.map_err(|e| e.to_string())?;
        for (net, endpoint) in wanted {
            if c.0.pointer("/NetworkSettings/Networks").and_then(|n| n.get(&net)).is_none() {
                self.port.connect_network(&net, id, endpoint).await.map_err(|e| format!("connecting {net}: {e}"))?;
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Restoring.

    /// Restores a service to its original (see [`RunCtx::restore_once`]); when that fails
    /// because the daemon does not answer (restarting), waits for it with a backoff, up to
    /// `timings.daemon_timeout`, and tries again.
    ///
    /// Guarantees: idempotent, as `restore_once`.
    /// Errors: the restore failed with the daemon answering, or the daemon stayed away.
    pub async fn restore(&self, name: &str, how: &RestoreSpec<'_>) -> Result<(), StepFailure> {
        let timings = how.timings;
        let mut waits = 0;
        loop {
            match self.restore_once(name, how).await {
                Ok(()) => return Ok(()),
                Err(f) if waits < 3 && self.port.ping().await.is_err() => {
                    waits += 1;
                    if !self.wait_for_daemon(timings.daemon_timeout).await {
                        return Err(StepFailure {
                            step: f.step,
                            message: format!(
                                "{}; the daemon did not answer again within {}",
                                f.message,
                                crate::plan::duration::format(timings.daemon_timeout)
                            ),
                        });
                    }
                }
                Err(f) => return Err(f),
            }
        }
    }

    /// Waits until the daemon answers again, with a backoff, at most `bound`. Returns
    /// whether it did.
    async fn wait_for_daemon(&self, bound: Duration) -> bool {
        self.out.event(
            "daemon-unreachable",
            None,
            None,
            json!({"waiting_up_to": crate::plan::duration::format(bound)}),
        );
        let deadline = tokio::time::Instant::now() + bound;
        let mut delay = Duration::from_millis(250);
        loop {
            if self.port.ping().await.is_ok() {
                self.out.event("daemon-back", None, None, json!({}));
                return true;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return false;
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Restores a service to its original: removes the replacement (or its successor),
    /// restores ownership from the manifest, renames the original back (or recreates it from
    /// `original.json`), restores its restart policy, starts it and waits until it is
    /// healthy and stable (also when it was running: a container still stopping must not
    /// count as restored).
    ///
    /// Guarantees: idempotent and level-triggered: each part looks at what Docker shows
    /// and does only what is missing, so it can run again after any interruption (an
    /// original it recreated is configured exactly as the original and is taken for it). A
    /// name held by a container that is not this run's is never touched.
    /// Errors: the first part that could not be done; the service may then be half-restored
    /// and a later `resume` or `rollback` continues.
    async fn restore_once(&self, name: &str, how: &RestoreSpec<'_>) -> Result<(), StepFailure> {
        let RestoreSpec { timings, helper_image, ownership, expected_user } = *how;
        let original = match self.run.load_original(name) {
            Ok(Some(v)) => Inspect(v),
            Ok(None) => return Ok(()), // never inspected: never touched
            Err(e) => {
                return Err(StepFailure { step: "restore", message: e.to_string() });
            }
        };
        self.step(name, "restore", json!({"original": short(original.id())}), async {
            // 1. Whoever holds the name.
            let mut original_id = original.id().to_string();
            match inspect_named(self.port, name).await {
                Ok(c) => match classify_holder(&c, &original, &self.run.id, expected_user) {
                    Holder::Original => {}
                    Holder::RecreatedOriginal => original_id = c.id().to_string(),
                    Holder::Replacement | Holder::Successor => {
                        self.remove_gone(c.id()).await.map_err(|e| format!("removing the replacement: {e}"))?;
                    }
                    Holder::Foreign => return Err(foreign_holder_message(name, &c)),
                },
                Err(DockerError::NotFound(_)) => {}
                Err(e) => return Err(format!("inspecting {name}: {e}")),
            }
            // 2. Ownership, from the manifest.
            let mut vanished = 0;
            if let Some(manifest) = self.run.load_owners(name).map_err(|e| e.to_string())? {
                let image = helper_image.unwrap_or(original.image_id()).to_string();
                for (mount, changes) in &manifest.mounts {
                    vanished += self
                        .set_owners(name, &image, mount, &changes.entries, changes.root.as_deref(), ownership)
                        .await?;
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
                    let req = recreate::create_request(&original, &identity, api_at_least(self.port, 1, 44));
                    let id = self
                        .port
                        .create_container(name, req.body)
                        .await
                        .map_err(|e| format!("recreating the original: {e}"))?;
                    crate::failpoint::hit("original-recreated");
                    id
                }
                Err(e) => return Err(format!("inspecting the original: {e}")),
            };
            if id != original.id() {
                // A recreated original (now or by an earlier attempt): every network.
                let identity = Changes { image: original.image().to_string(), ..Default::default() };
                let req = recreate::create_request(&original, &identity, api_at_least(self.port, 1, 44));
                self.ensure_networks(&id, req.connect_after).await?;
            }
            self.port
                .set_restart_policy(&id, policy)
                .await
                .map_err(|e| format!("restoring the restart policy: {e}"))?;
            // 4. Running, healthy and stable again.
            let c = self.port.inspect_container(&id).await.map_err(|e| e.to_string())?;
            let mode = if c.has_healthcheck() { HealthMode::Docker } else { HealthMode::Running };
            health::start_and_wait(self.port, &id, &mode, timings, None)
                .await
                .map_err(|e| format!("the original is not healthy: {e}"))?;
            let mut detail = json!({"id": short(&id)});
            if vanished > 0 {
                detail["vanished"] = json!(vanished);
            }
            Ok(((), detail))
        })
        .await
    }
}

/// How to restore one service: its timings, the helper image and where re-owning runs, and
/// the `Config.User` its replacement was created with (to recognise a successor).
#[derive(Debug, Clone, Copy)]
pub struct RestoreSpec<'a> {
    pub timings: &'a Timings,
    pub helper_image: Option<&'a str>,
    pub ownership: Ownership,
    pub expected_user: Option<&'a str>,
}

/// What one helper container runs: a script with its arguments, a tar to upload before the
/// start, and a file whose contents to read back after a clean exit.
struct HelperJob<'a> {
    script: &'a str,
    args: &'a [String],
    upload: Option<Vec<u8>>,
    output_file: Option<&'a str>,
}

/// Lines of a failed replacement's log kept in the run folder, and shown with the failure.
const FAILURE_LOG_LINES: usize = 50;
const FAILURE_LOG_SHOWN: usize = 10;

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

/// The `Config.User` a replacement of `r` is created with.
fn expected_user(r: &Resolved) -> String {
    r.changes.user.clone().unwrap_or_else(|| r.original.configured_user().to_string())
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
    pub start_event: RunEvent,
    /// One lock per mount source: two services of the day that share a volume never
    /// re-own it at the same time.
    reown_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// What happened to each service of a day.
#[derive(Debug, Default)]
struct Progress {
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

impl<'a, D: DockerPort> Apply<'a, D> {
    /// The apply of `day` with the plan's parallelism and `on_failure`.
    pub fn new(ctx: RunCtx<'a, D>, plan: &'a Plan, day: DayPlan, plan_dir: PlanDir) -> Self {
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

    fn resolved(&self, name: &str) -> &Resolved {
        self.day
            .services
            .iter()
            .find(|s| s.name == name)
            .and_then(|s: &ServicePlan| s.resolved.as_ref())
            .expect("a day without blockers has every service resolved")
    }

    /// Journals `step` as failed before it starts when Ctrl-C was pressed: nothing new
    /// starts, the service is rolled back with what is in flight.
    async fn not_interrupted(&self, name: &str, step: &'static str) -> Result<(), StepFailure> {
        if !self.ctx.stop.is_set() {
            return Ok(());
        }
        self.ctx
            .step(name, step, json!({}), async {
                Err::<((), Value), _>("interrupted (Ctrl-C) before this step".into())
            })
            .await
    }

    /// The locks of the sources a service re-owns, taken in one order (no deadlock).
    async fn lock_sources(&self, mounts: &[MountId]) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        let mut sources: Vec<&str> = mounts.iter().map(|m| m.source.as_str()).collect();
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
        let replacement_exists =
            resumed && matches!(inspect_named(ctx.port, name).await, Ok(c) if c.label(LABEL_RUN) == Some(run.as_str()));
        if replacement_exists && matches!(ctx.port.inspect_container(&original_id).await, Err(DockerError::NotFound(_)))
        {
            // Committed already: the parked original is gone, the replacement holds the name.
            return Ok(());
        }
        if !replacement_exists {
            // 1. inspect: the container is still the one previewed; save it. On a resumed run
            // the original was saved before (and may be parked already): keep that copy.
            self.not_interrupted(name, "inspect").await?;
            ctx.step(name, "inspect", json!({}), async {
                if let Some(saved) = ctx.run.load_original(name).map_err(|e| e.to_string())?
                    && saved["Id"].as_str() == Some(original_id.as_str())
                {
                    return Ok(((), json!({"id": short(&original_id), "note": "saved by an earlier attempt"})));
                }
                let now = inspect_named(ctx.port, name).await.map_err(|e| e.to_string())?;
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
            self.not_interrupted(name, "stop").await?;
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
            self.not_interrupted(name, "rename").await?;
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
                self.not_interrupted(name, "chown").await?;
                let _sources = self.lock_sources(&r.mounts).await;
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
                        let mut vanished = 0;
                        for (m, changes) in &manifest.mounts {
                            let entries: Vec<(String, String)> =
                                changes.entries.iter().map(|(p, _)| (p.clone(), owner.clone())).collect();
                            vanished += ctx
                                .set_owners(
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
                        let mut detail = json!({"changed": manifest.changed(), "hardlinks_skipped": skipped});
                        if vanished > 0 {
                            detail["vanished"] = json!(vanished);
                        }
                        Ok(((), detail))
                    },
                )
                .await?;
            }
        }

        // 7. create: the replacement under the original name (every network connected, also
        // when an earlier attempt created it), then the diff.
        self.not_interrupted(name, "create").await?;
        let mut changes = r.changes.clone();
        changes.labels.insert(LABEL_RUN.into(), run.clone());
        let new_id = ctx
            .step(name, "create", json!({"user": expected_user(r)}), async {
                let req = recreate::create_request(&r.original, &changes, api_at_least(ctx.port, 1, 44));
                let id = match inspect_named(ctx.port, name).await {
                    // A replacement of this run from an earlier attempt: reuse it.
                    Ok(c) if c.label(LABEL_RUN) == Some(run.as_str()) => c.id().to_string(),
                    Ok(c) => return Err(format!("{name} is taken by container {}", short(c.id()))),
                    Err(DockerError::NotFound(_)) => {
                        ctx.port.create_container(name, req.body).await.map_err(|e| e.to_string())?
                    }
                    Err(e) => return Err(e.to_string()),
                };
                crate::failpoint::hit("after-create");
                ctx.ensure_networks(&id, req.connect_after).await?;
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
        self.not_interrupted(name, "health").await?;
        let uid = r.target.map(|(u, _)| u);
        let mode = match &r.health {
            crate::plan::HealthMode::Docker => "docker",
            crate::plan::HealthMode::Running => "running",
            crate::plan::HealthMode::Exec(_) => "exec",
        };
        ctx.step(name, "health", json!({"mode": mode}), async {
            // Ctrl-C cuts the wait short: the service is then rolled back with the day.
            tokio::select! {
                r = health::start_and_wait(ctx.port, &new_id, &r.health, &r.timings, uid) => {
                    if let Err(e) = r {
                        return Err(format!("{e}{}", self.failure_log(name, &new_id).await));
                    }
                }
                () = ctx.stop.wait() => return Err("interrupted (Ctrl-C) while waiting for health".to_string()),
            }
            Ok(((), json!({})))
        })
        .await?;
        Ok(())
    }

    /// Why a replacement failed, in its own words: saves the last 50 lines of its log in the
    /// run folder (`services/NAME/failure.log`, 0600) and returns the last 10 to show with
    /// the failure, every value of the container's environment replaced by `<redacted>` in
    /// both. Empty when the log cannot be read (the failure stands without it).
    async fn failure_log(&self, name: &str, id: &str) -> String {
        let port = self.ctx.port;
        let (Ok(bytes), Ok(c)) = (port.logs(id, FAILURE_LOG_LINES).await, port.inspect_container(id).await) else {
            return String::new();
        };
        let env: Vec<String> =
            c.0.pointer("/Config/Env")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
        let text = crate::redact::redact(&String::from_utf8_lossy(&bytes), &crate::redact::env_values(&env));
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return String::new();
        }
        let saved = match self.ctx.run.save_failure_log(name, text.as_bytes()) {
            Ok(path) => format!(" (the last {FAILURE_LOG_LINES} in {})", path.display()),
            Err(_) => String::new(),
        };
        let shown = &lines[lines.len().saturating_sub(FAILURE_LOG_SHOWN)..];
        format!("; the end of its log{saved}:\n    {}", shown.join("\n    "))
    }

    /// Restores one service after a failure.
    async fn restore(&self, name: &str) -> Result<(), StepFailure> {
        let r = self.resolved(name);
        let user = expected_user(r);
        let how = RestoreSpec {
            timings: &r.timings,
            helper_image: self.plan.rollout.helper_image.as_deref(),
            ownership: r.ownership,
            expected_user: Some(&user),
        };
        self.ctx.restore(name, &how).await
    }

    /// Removes helper containers a failed removal may have left (normally none exist). Best
    /// effort, after the day's outcome is recorded: not even a panic here changes it.
    async fn sweep_helpers(&self, services: &[String]) {
        let sweep = async {
            for s in services {
                let name = format!("unroot-helper.{s}.{}", self.ctx.run.id);
                let _ = self.ctx.port.remove_container(&name, true).await;
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
            ctx.record(Record::run(RunEvent::RollingBack))?;
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
    async fn commit(&self, migrated: &[String], left_original: &[String]) -> Result<bool, StateError> {
        let ctx = &self.ctx;
        ctx.record(Record::run(RunEvent::Committing))?;
        let mut stuck = Vec::new();
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
                stuck.push(parked);
            }
        }
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
            let r = self.resolved(name);
            services.insert(
                name.clone(),
                ServiceRecord {
                    state: ServiceState::Migrated,
                    run: ctx.run.id.clone(),
                    compose: ComposeRef::of(&r.original),
                    settings: Some(override_of(r)),
                },
            );
        }
        for name in left_original {
            services.insert(
                name.clone(),
                ServiceRecord { state: ServiceState::Original, run: ctx.run.id.clone(), compose: None, settings: None },
            );
        }
        ledger.record_commit(self.day.day, &ctx.run.id, services);
        ledger.save(&self.plan_dir.dir)?;
        for (path, usage) in write_overrides(&ledger, &ctx.run)? {
            ctx.out.note(&format!("compose: wrote {} — use `{usage}` so compose keeps the change", path.display()));
        }
        ctx.record(Record::run(RunEvent::Committed))?;
        Ok(true)
    }
}

fn restore_failures(p: &Progress) -> String {
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
            vec![Process { pid: 1, ppid: 0, uid: Some(0), command: "run".into() }],
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

    /// What goes wrong in the `k`-th Docker call after the preview.
    #[derive(Debug, Clone, Copy)]
    enum Inject {
        Nothing,
        Fail(usize),
        Panic(usize),
    }

    /// Runs day 1 against `fake` with `inject`. Returns the outcome, the state dir and the
    /// number of calls the preview made.
    fn run_day(fake: &FakeDocker, plan: &Plan, inject: Inject) -> (Outcome, tempfile::TempDir, usize) {
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
            match inject {
                Inject::Nothing => {}
                Inject::Fail(k) => fake.fail_call(base + k),
                Inject::Panic(k) => fake.panic_call(base + k),
            }
            let plan_dir = PlanDir::new(&tmp.path().join("state"), "t");
            let run = RunDir::create(&plan_dir, "day1-test", "").unwrap();
            let journal = Journal::open(&run.journal_path()).unwrap();
            let stop = crate::interrupt::Interrupt::default();
            let ctx = RunCtx {
                port: fake,
                run,
                journal: Mutex::new(journal),
                out: &crate::events::Discard,
                stop: &stop,
                hint: String::new(),
            };
            let apply = Apply::new(ctx, plan, day, plan_dir);
            let (outcome, _) = apply.run().await.unwrap();
            (outcome, tmp, base)
        })
    }

    fn container_names(fake: &FakeDocker) -> Vec<String> {
        fake.with(|s| s.containers.iter().map(|c| c.name().to_string()).collect())
    }

    #[test]
    fn who_holds_the_name_of_a_service_being_restored() {
        let original = Inspect(json!({
            "Id": "orig", "Image": "sha256:img",
            "Config": {"User": "", "Cmd": ["run"], "Labels": {"com.docker.compose.project": "p", "com.docker.compose.service": "web"}}
        }));
        let with = |patch: Value| {
            let mut c = original.0.clone();
            c["Id"] = json!("other");
            for (k, v) in patch.as_object().unwrap() {
                c["Config"][k] = v.clone();
            }
            Inspect(c)
        };
        let run = "day1-x";
        assert_eq!(classify_holder(&original, &original, run, Some("1000:1000")), Holder::Original);
        assert_eq!(classify_holder(&with(json!({})), &original, run, Some("1000:1000")), Holder::RecreatedOriginal);
        let ours = with(json!({"User": "1000:1000", "Labels": {LABEL_RUN: run}}));
        assert_eq!(classify_holder(&ours, &original, run, Some("1000:1000")), Holder::Replacement);
        let compose_made = with(json!({"User": "1000:1000", "Labels": {
            "com.docker.compose.project": "p", "com.docker.compose.service": "web", "com.docker.compose.config-hash": "new"
        }}));
        assert_eq!(classify_holder(&compose_made, &original, run, Some("1000:1000")), Holder::Successor);
        assert_eq!(classify_holder(&compose_made, &original, run, Some("999:999")), Holder::Foreign, "another user");
        let other_project = with(
            json!({"User": "1000:1000", "Labels": {"com.docker.compose.project": "q", "com.docker.compose.service": "web"}}),
        );
        assert_eq!(classify_holder(&other_project, &original, run, Some("1000:1000")), Holder::Foreign);
        assert_eq!(classify_holder(&with(json!({"Cmd": ["other"]})), &original, run, None), Holder::Foreign);
        let other_run = with(json!({"User": "1000:1000", "Labels": {LABEL_RUN: "day1-y"}}));
        assert_eq!(classify_holder(&other_run, &original, run, Some("1000:1000")), Holder::Foreign);
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
        let ctx = RunCtx {
            port: &fake,
            run,
            journal: Mutex::new(journal),
            out: &crate::events::Discard,
            stop: &stop,
            hint: String::new(),
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(ctx.remove_gone(ORIGINAL)).unwrap();
        assert!(fake.calls().iter().any(|c| matches!(c, Call::Events(_))), "it waited on the container's events");
    }

    #[test]
    fn a_clean_day_migrates_and_commits() {
        let fake = fake();
        let (outcome, tmp, _) = run_day(&fake, &plan("rollback-day"), Inject::Nothing);
        assert_eq!(outcome, Outcome::Applied);
        let c = fake.with(|s| s.container("svc").cloned()).unwrap();
        assert_ne!(c.id(), ORIGINAL);
        assert_eq!(c.configured_user(), "1000:1000");
        assert_eq!(container_names(&fake), ["svc"], "the parked original and helpers are gone");
        assert!(applied(&tmp, &plan("rollback-day")));
    }

    fn applied(tmp: &tempfile::TempDir, plan: &Plan) -> bool {
        Ledger::load(&tmp.path().join("state/t"), "t").unwrap().open_services(plan, 1).is_empty()
    }

    /// Injects `inject(k)` at every call `k` of a clean day; each time the service must end
    /// migrated, or exactly restored, or (a parked original that could not be removed) migrated
    /// with the run left open for `resume`.
    fn at_every_call(inject: fn(usize) -> Inject) {
        let plan = plan("rollback-day");
        let calls_in_a_clean_day = {
            let fake = fake();
            let (_, _, base) = run_day(&fake, &plan, Inject::Nothing);
            fake.calls().len() - base
        };
        assert!(calls_in_a_clean_day > 20, "{calls_in_a_clean_day}");
        let (mut applied_days, mut rolled_back) = (0, 0);
        for k in 1..=calls_in_a_clean_day {
            let fake = fake();
            let (outcome, tmp, base) = run_day(&fake, &plan, inject(k));
            let failed = fake.calls()[base + k - 1].clone();
            let c = fake
                .with(|s| s.container("svc").cloned())
                .unwrap_or_else(|| panic!("k={k} {failed:?}: nobody holds the name"));
            let others: Vec<Inspect> =
                fake.with(|s| s.containers.iter().filter(|c| c.name() != "svc").cloned().collect());
            match outcome {
                Outcome::Applied => {
                    applied_days += 1;
                    assert_eq!(c.configured_user(), "1000:1000", "k={k} {failed:?}");
                    assert!(c.running(), "k={k} {failed:?}");
                    assert!(applied(&tmp, &plan), "k={k}");
                    assert!(others.is_empty(), "k={k} {failed:?}: left behind: {others:?}");
                }
                Outcome::CommitIncomplete => {
                    // The commit could not remove the parked original: it stays, stopped,
                    // cannot start by itself, and the run stays open until resume removes it.
                    assert_eq!(failed, Call::Remove(ORIGINAL.into()), "k={k}");
                    assert_eq!(c.configured_user(), "1000:1000", "k={k}");
                    assert_eq!(others.len(), 1, "k={k}");
                    assert!(!others[0].running() && others[0].0["HostConfig"]["RestartPolicy"]["Name"] == "no");
                    assert!(!applied(&tmp, &plan), "k={k}: not committed while an original is parked");
                    let journal = Journal::read(&tmp.path().join("state/t/runs/day1-test/journal.jsonl")).unwrap();
                    assert!(crate::state::RunState::of(&journal, false).is_open(), "k={k}");
                }
                Outcome::RolledBack => {
                    rolled_back += 1;
                    assert_eq!(c.id(), ORIGINAL, "k={k} {failed:?}: the original itself is back");
                    assert!(c.running(), "k={k} {failed:?}: the original runs");
                    assert_eq!(c.configured_user(), "", "k={k}");
                    assert_eq!(c.0["HostConfig"]["RestartPolicy"]["Name"], "always", "k={k}: restart policy restored");
                    assert!(!applied(&tmp, &plan), "k={k}");
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
        assert!(applied_days > 0 && rolled_back > 0, "applied {applied_days}, rolled back {rolled_back}");
        println!(
            "injected {:?} at each of {calls_in_a_clean_day} calls: {applied_days} applied, {rolled_back} rolled back",
            inject(0)
        );
    }

    #[test]
    fn a_failure_at_every_call_ends_migrated_or_exactly_restored() {
        at_every_call(Inject::Fail);
    }

    #[test]
    fn item14_a_panic_at_every_call_ends_migrated_or_exactly_restored() {
        at_every_call(Inject::Panic);
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
            let (outcome, tmp, _) = run_day(&fake, &plan(policy), Inject::Nothing);
            let c = fake.with(|s| s.container("svc").cloned()).unwrap();
            match policy {
                "rollback-service" => {
                    assert_eq!(outcome, expected);
                    assert_eq!(c.id(), ORIGINAL, "the failed service is back on its original");
                    let ledger = Ledger::load(&tmp.path().join("state/t"), "t").unwrap();
                    assert_eq!(ledger.days["1"].services["svc"].state, ServiceState::Original);
                    assert!(!applied(&tmp, &plan(policy)), "a service left on its original keeps its day open");
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
