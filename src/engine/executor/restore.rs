//! Restoring a service to its original, and telling who holds its name.

use super::*;

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
    } else if c.label(LABEL_RUN).is_none() && c.image_id() == original.image_id() && c.same_process_config(original) {
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

/// How to restore one service: its timings, the helper image and where re-owning runs, and
/// the `Config.User` its replacement was created with (to recognise a successor).
#[derive(Debug, Clone, Copy)]
pub struct RestoreSpec<'a> {
    pub timings: &'a Timings,
    pub helper_image: Option<&'a str>,
    pub ownership: Ownership,
    pub expected_user: Option<&'a str>,
}

impl<D: Port> RunCtx<'_, D> {
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
                            error: StepError::DaemonGone {
                                error: Box::new(f.error),
                                waited: crate::model::plan::duration::format(timings.daemon_timeout),
                            },
                        });
                    }
                }
                Err(f) => return Err(f),
            }
        }
    }

    /// Waits until the daemon answers again, with a backoff, at most `bound`. Returns
    /// whether it did.
    pub(super) async fn wait_for_daemon(&self, bound: Duration) -> bool {
        self.out.emit(crate::engine::events::Event::DaemonUnreachable { waiting_up_to: bound });
        let deadline = tokio::time::Instant::now() + bound;
        let mut delay = Duration::from_millis(250);
        loop {
            if self.port.ping().await.is_ok() {
                self.out.emit(crate::engine::events::Event::DaemonBack);
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
    pub(super) async fn restore_once(&self, name: &str, how: &RestoreSpec<'_>) -> Result<(), StepFailure> {
        let RestoreSpec { timings, helper_image, ownership, expected_user } = *how;
        let original = match crate::engine::load_original(&self.run, name) {
            Ok(Some(Original::Service(service))) => {
                return self.restore_service(name, service, timings, helper_image).await;
            }
            Ok(Some(Original::Container(c))) => c,
            Ok(None) => return Ok(()), // never inspected: never touched
            Err(e) => {
                return Err(StepFailure { step: Step::Restore, error: e.into() });
            }
        };
        self.step(name, Step::Restore, json!({"original": short(original.id())}), async {
            // 1. Whoever holds the name.
            let mut original_id = original.id().to_string();
            match inspect_named(self.port, name).await {
                Ok(c) => match classify_holder(&c, &original, &self.run.id, expected_user) {
                    Holder::Original => {}
                    Holder::RecreatedOriginal => original_id = c.id().to_string(),
                    Holder::Replacement | Holder::Successor => {
                        self.remove_gone(c.id()).await.doing("removing the replacement")?;
                    }
                    Holder::Foreign => return Err(StepError::Conflict(foreign_holder_message(name, &c))),
                },
                Err(DockerError::NotFound(_)) => {}
                Err(e) => return Err(StepError::from(e)).doing(&format!("inspecting {name}")),
            }
            // 2. Ownership, from the manifest.
            let mut vanished = 0;
            if let Some(manifest) = self.run.load_owners(name)? {
                let image = helper_image.unwrap_or(original.image_id()).to_string();
                for (mount, changes) in &manifest.mounts {
                    vanished += self.set_owners(name, &image, mount, changes, ownership).await?;
                }
            }
            // 3. The original under its name, with its restart policy.
            let id = self.original_back(name, &original, &original_id).await?;
            // 4. Running, healthy and stable again.
            let c = self.port.inspect_container(&id).await?;
            let mode = if c.has_healthcheck() { HealthMode::Docker } else { HealthMode::Running };
            health::start_and_wait(self.port, &id, &mode, timings, None).await.doing("the original is not healthy")?;
            let mut detail = json!({"id": short(&id)});
            if vanished > 0 {
                detail["vanished"] = json!(vanished);
            }
            Ok(((), detail))
        })
        .await
    }

    /// The original under its name with its restart policy: renamed back, or recreated from
    /// `original.json` (by its own tag while that still names the same image) with every
    /// network when it is gone. Returns its id.
    async fn original_back(&self, name: &str, original: &Inspect, original_id: &str) -> Result<String, StepError> {
        let id = match self.port.inspect_container(original_id).await {
            Ok(c) => {
                if c.name() != name {
                    self.port.rename_container(original_id, name).await.doing("renaming back")?;
                }
                original_id.to_string()
            }
            Err(DockerError::NotFound(_)) => {
                let identity = Changes { image: image_ref(self.port, original).await, ..Default::default() };
                let req = recreate::create_request(original, &identity, api_at_least(self.port, 1, 44));
                let id = self.port.create_container(name, req.body).await.doing("recreating the original")?;
                crate::state::failpoint::hit("original-recreated");
                id
            }
            Err(e) => return Err(StepError::from(e)).doing("inspecting the original"),
        };
        if id != original.id() {
            // A recreated original (now or by an earlier attempt): every network.
            let identity = Changes { image: original.image().to_string(), ..Default::default() };
            let req = recreate::create_request(original, &identity, api_at_least(self.port, 1, 44));
            self.ensure_networks(&id, req.connect_after).await?;
        }
        self.port.set_restart_policy(&id, original.restart_policy()).await.doing("restoring the restart policy")?;
        Ok(id)
    }
}
