//! The re-owning helpers and the small idempotent Docker chores of a run: a helper container
//! per mount, the scan and the change of owners (in-process or in a helper), the removal of a
//! container and the connection of its networks.

use super::*;

impl<D: Port> RunCtx<'_, D> {
    // -----------------------------------------------------------------------------------
    // Helper containers.

    /// Runs one re-owning script in a short-lived helper holding one mount: uid 0, no
    /// network, only CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID and
    /// SETFCAP (to give a restored file its setgid bit whatever its group, and its file
    /// capabilities). Removed afterwards,
    /// also on failure; one left by a killed unroot is removed by the next command that
    /// takes the lock ([`orphans::sweep`]).
    pub(super) async fn helper(
        &self,
        service: &str,
        image: &str,
        mount: &MountId,
        job: HelperJob<'_>,
    ) -> Result<Finished, StepError> {
        let HelperJob { script, args, upload, output_file } = job;
        let name = format!("unroot-helper.{service}.{}", self.run.id);
        let mut m = json!({"Type": mount.kind, "Source": mount.source, "Target": HELPER_MOUNT, "ReadOnly": false});
        if mount.kind == crate::model::mount::MountKind::Volume {
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
                "CapAdd": ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "SETFCAP"],
                "SecurityOpt": ["no-new-privileges:true"],
                "LogConfig": {"Type": "json-file", "Config": {}},
                "Mounts": [m]
            }
        });
        let _ = self.port.remove_container(&name, Removal::WithAnonymousVolumes).await;
        let id = self.port.create_container(&name, body).await.doing("creating the helper")?;
        let result = async {
            if let Some(tar) = upload {
                self.port.upload_archive(&id, "/", tar).await?;
            }
            self.port.start_container(&id).await?;
            let mut out = self.port.wait_container(&id).await?;
            if let Some(path) = output_file.filter(|_| out.exit_code == 0) {
                let tar = self.port.read_archive(&id, path, HELPER_OUTPUT_LIMIT).await?;
                out.stdout = crate::model::passwd::first_file_bytes(&tar).unwrap_or_default();
            }
            Ok::<_, DockerError>(out)
        }
        .await;
        let _ = self.port.remove_container(&id, Removal::WithAnonymousVolumes).await;
        result.doing("the helper")
    }

    /// Checks, right before owners change, that a bind source is still what the preview saw:
    /// not a protected path, and (where the preview could see it) the same device and inode,
    /// reached without following any link.
    ///
    /// Errors: the source is protected now, cannot be reached without a link, or is another
    /// object.
    pub(super) fn check_source(&self, mount: &MountId) -> Result<(), StepError> {
        if mount.kind != crate::model::mount::MountKind::Bind {
            return Ok(());
        }
        if let Some(why) = reown::protected_bind(&mount.host_path) {
            return Err(StepError::Reown(format!("bind mount {}: {why}; unroot never re-owns it", mount.host_path)));
        }
        if let Some(expected) = mount.identity {
            let now = hostfs::identity(std::path::Path::new(&mount.host_path)).map_err(|e| {
                StepError::Reown(format!("bind mount {} changed since the preview: {e}", mount.host_path))
            })?;
            if now != expected {
                return Err(StepError::Reown(format!(
                    "bind mount {} is not the directory or file the preview saw (another device or inode); refusing to re-own it",
                    mount.host_path
                )));
            }
        }
        Ok(())
    }

    /// Scans one mount: what would change to `uid:gid`.
    pub(super) async fn scan(
        &self,
        service: &str,
        image: &str,
        mount: &MountId,
        target: Owner,
        hardlinks: bool,
        ownership: Ownership,
    ) -> Result<MountChanges, StepError> {
        self.check_source(mount)?;
        if preview::method(self.port, ownership, &mount.host_path).map_err(StepError::Reown)? == Method::Host {
            let path = std::path::PathBuf::from(&mount.host_path);
            let expected = mount.identity;
            return tokio::task::spawn_blocking(move || hostfs::scan_checked(&path, expected, target, hardlinks))
                .await
                .map_err(|e| StepError::Reown(format!("the host walk: {e}")))?
                .map_err(StepError::Reown);
        }
        let args = [target.uid.to_string(), target.gid.to_string(), if hardlinks { "1" } else { "0" }.to_string()];
        let job =
            HelperJob { script: reown::SCAN_SCRIPT, args: &args, upload: None, output_file: Some(reown::SCAN_OUTPUT) };
        let out = self.helper(service, image, mount, job).await?;
        succeeded(&out, "scanning", mount)?;
        reown::parse_scan(&out.stdout, target).map_err(StepError::Reown)
    }

    /// Sets each listed entry of one mount to its owner, the root last. Returns how many
    /// entries were gone (deleted since the scan: a database removes files all the time);
    /// they are skipped.
    pub(super) async fn set_owners(
        &self,
        service: &str,
        image: &str,
        mount: &MountId,
        to: &MountChanges,
        ownership: Ownership,
    ) -> Result<usize, StepError> {
        let MountChanges { entries, root, privileged, .. } = to;
        let root = *root;
        if entries.is_empty() && root.is_none() {
            return Ok(0);
        }
        self.check_source(mount)?;
        if preview::method(self.port, ownership, &mount.host_path).map_err(StepError::Reown)? == Method::Host {
            let path = std::path::PathBuf::from(&mount.host_path);
            let (entries, privileged, expected) = (entries.to_vec(), privileged.to_vec(), mount.identity);
            return tokio::task::spawn_blocking(move || {
                let gone = hostfs::apply_checked(&path, expected, &entries, root)?;
                // The owners first: changing one clears the bits and capabilities set here.
                hostfs::set_attrs(&path, expected, &privileged)?;
                Ok(gone)
            })
            .await
            .map_err(|e| StepError::Reown(format!("the host walk: {e}")))?
            .map_err(StepError::Reown);
        }
        let tar = reown::apply_lists(entries, root, to);
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
    pub async fn remove_gone(&self, id: &str) -> Result<(), StepError> {
        match self.port.remove_container(id, Removal::ContainerOnly).await {
            Ok(()) | Err(DockerError::NotFound(_)) => Ok(()),
            Err(DockerError::Conflict(m)) if m.contains("in progress") => {
                let mut events = self.port.container_events(id).await?;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                loop {
                    match self.port.inspect_container(id).await {
                        Err(DockerError::NotFound(_)) => return Ok(()),
                        Err(e) => return Err(e.into()),
                        Ok(_) => {}
                    }
                    match tokio::time::timeout_at(deadline, events.next()).await {
                        Ok(Some(Ok(e))) if e.action == "destroy" => return Ok(()),
                        Ok(Some(Ok(_))) => {}
                        _ => {
                            return Err(StepError::Conflict(format!("container {} is still being removed", short(id))));
                        }
                    }
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Connects a container to every network of `wanted` it is not on yet (a create whose
    /// connects an interrupted attempt did not reach).
    ///
    /// Guarantees: idempotent. Errors: the daemon refuses a connect.
    pub(super) async fn ensure_networks(&self, id: &str, wanted: Vec<(String, Value)>) -> Result<(), StepError> {
        if wanted.is_empty() {
            return Ok(());
        }
        let c = self.port.inspect_container(id).await?;
        for (net, endpoint) in wanted {
            if !c.on_network(&net) {
                self.port.connect_network(&net, id, endpoint).await.doing(&format!("connecting {net}"))?;
            }
        }
        Ok(())
    }
}
