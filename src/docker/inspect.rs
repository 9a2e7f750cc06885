//! A container's inspect, typed: what unroot reads of it, read in one place.

use serde_json::Value;

use super::{MountKind, strings_at};

/// A container's inspect in Docker's JSON, with typed accessors for what unroot reads.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Inspect(pub Value);

/// One mount of a container, from its inspect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mount {
    pub kind: MountKind,
    /// The volume's name (volumes only).
    pub name: Option<String>,
    /// Host path of the data.
    pub source: String,
    /// Path inside the container.
    pub destination: String,
    pub writable: bool,
}

impl Mount {
    /// Whether it is the Docker socket ([`crate::model::mount::is_docker_sock`]).
    pub fn is_docker_sock(&self) -> bool {
        crate::model::mount::is_docker_sock(&self.source, &self.destination)
    }

    /// Whether it says `docker.sock` anywhere ([`crate::model::mount::mentions_docker_sock`]).
    pub fn mentions_docker_sock(&self) -> bool {
        crate::model::mount::mentions_docker_sock(&self.source, &self.destination, self.name.as_deref())
    }
}

impl Inspect {
    fn str_at(&self, pointer: &str) -> &str {
        self.0.pointer(pointer).and_then(Value::as_str).unwrap_or("")
    }

    fn bool_at(&self, pointer: &str) -> bool {
        self.0.pointer(pointer).and_then(Value::as_bool).unwrap_or(false)
    }

    fn strings_at(&self, pointer: &str) -> Vec<String> {
        strings_at(&self.0, pointer)
    }

    pub fn id(&self) -> &str {
        self.str_at("/Id")
    }

    /// The name without Docker's leading `/`.
    pub fn name(&self) -> &str {
        self.str_at("/Name").trim_start_matches('/')
    }

    /// The image as the container was created from (the tag or id the user gave).
    pub fn image(&self) -> &str {
        self.str_at("/Config/Image")
    }

    /// The image id the container runs.
    pub fn image_id(&self) -> &str {
        self.str_at("/Image")
    }

    /// `Config.User`; empty means the image default (root unless the image set one).
    pub fn configured_user(&self) -> &str {
        self.str_at("/Config/User")
    }

    pub fn running(&self) -> bool {
        self.bool_at("/State/Running")
    }

    /// It was killed for running out of memory.
    pub fn oom_killed(&self) -> bool {
        self.bool_at("/State/OOMKilled")
    }

    /// The exit code of its last run (-1 when unknown).
    pub fn exit_code(&self) -> i64 {
        self.0.pointer("/State/ExitCode").and_then(Value::as_i64).unwrap_or(-1)
    }

    /// Docker's health status (`starting`, `healthy`, `unhealthy`), when it has a check.
    pub fn health_status(&self) -> Option<&str> {
        self.0.pointer("/State/Health/Status").and_then(Value::as_str)
    }

    /// `Config.Env`, as `KEY=VALUE` entries.
    pub fn env(&self) -> Vec<String> {
        self.strings_at("/Config/Env")
    }

    /// `HostConfig.RestartPolicy` as Docker's JSON (`{"Name": "no"}` when unset).
    pub fn restart_policy(&self) -> Value {
        self.0.pointer("/HostConfig/RestartPolicy").cloned().unwrap_or(serde_json::json!({"Name": "no"}))
    }

    /// Whether it is connected to `network`.
    pub fn on_network(&self, network: &str) -> bool {
        self.0.pointer("/NetworkSettings/Networks").and_then(|n| n.get(network)).is_some()
    }

    /// Started with `--rm`: stopping it deletes it.
    pub fn auto_remove(&self) -> bool {
        self.bool_at("/HostConfig/AutoRemove")
    }

    /// `HostConfig.NetworkMode` (`default`, `host`, `none`, `container:ID`, a network).
    pub fn network_mode(&self) -> &str {
        self.str_at("/HostConfig/NetworkMode")
    }

    /// The entrypoint and then the command, as configured.
    pub fn command_line(&self) -> Vec<String> {
        let mut line = self.strings_at("/Config/Entrypoint");
        line.extend(self.strings_at("/Config/Cmd"));
        line
    }

    /// The exposed ports (`80/tcp`, …).
    pub fn exposed_ports(&self) -> Vec<String> {
        self.0
            .pointer("/Config/ExposedPorts")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The host pid of the container's PID 1 (0 when it is not running).
    pub fn pid(&self) -> u32 {
        self.0.pointer("/State/Pid").and_then(Value::as_u64).map_or(0, |p| p as u32)
    }

    pub fn restarting(&self) -> bool {
        self.bool_at("/State/Restarting")
    }

    /// `running`, `exited`, `restarting`, …
    pub fn status(&self) -> &str {
        self.str_at("/State/Status")
    }

    pub fn privileged(&self) -> bool {
        self.bool_at("/HostConfig/Privileged")
    }

    pub fn read_only_rootfs(&self) -> bool {
        self.bool_at("/HostConfig/ReadonlyRootfs")
    }

    pub fn cap_add(&self) -> Vec<String> {
        self.strings_at("/HostConfig/CapAdd")
    }

    pub fn cap_drop(&self) -> Vec<String> {
        self.strings_at("/HostConfig/CapDrop")
    }

    pub fn security_opt(&self) -> Vec<String> {
        self.strings_at("/HostConfig/SecurityOpt")
    }

    /// The tmpfs mounts of `HostConfig.Tmpfs` (`--tmpfs`): container path → mount options.
    /// (A tmpfs of `HostConfig.Mounts` is among [`Inspect::mounts`].)
    pub fn tmpfs(&self) -> std::collections::BTreeMap<String, String> {
        self.0
            .pointer("/HostConfig/Tmpfs")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
            .unwrap_or_default()
    }

    /// Every path with a mount of its own: volumes, binds and tmpfs of `Mounts`, and the
    /// tmpfs of `HostConfig.Tmpfs`.
    pub fn mount_points(&self) -> Vec<String> {
        self.mounts().into_iter().map(|m| m.destination).chain(self.tmpfs().into_keys()).collect()
    }

    /// `no-new-privileges` is set (any of Docker's spellings).
    pub fn no_new_privileges(&self) -> bool {
        self.security_opt()
            .iter()
            .any(|o| matches!(o.as_str(), "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true"))
    }

    /// The container has a HEALTHCHECK (its own or its image's), not disabled by `NONE`.
    pub fn has_healthcheck(&self) -> bool {
        self.0
            .pointer("/Config/Healthcheck/Test")
            .and_then(Value::as_array)
            .and_then(|t| t.first())
            .and_then(Value::as_str)
            .is_some_and(|t| t != "NONE")
    }

    /// Its HEALTHCHECK test as Docker keeps it (`["CMD", …]`, `["CMD-SHELL", "…"]`,
    /// `["NONE"]`); empty without one.
    pub fn healthcheck_test(&self) -> Vec<String> {
        self.strings_at("/Config/Healthcheck/Test")
    }

    /// Its HEALTHCHECK as a command to exec: `CMD` arguments as they are, `CMD-SHELL` through
    /// `/bin/sh -c` (as Docker runs it); `None` without one (or `NONE`).
    pub fn healthcheck_command(&self) -> Option<Vec<String>> {
        let test = self.healthcheck_test();
        match test.split_first() {
            Some((kind, args)) if kind == "CMD" && !args.is_empty() => Some(args.to_vec()),
            Some((kind, args)) if kind == "CMD-SHELL" && !args.is_empty() => {
                Some(vec!["/bin/sh".into(), "-c".into(), args.join(" ")])
            }
            _ => None,
        }
    }

    /// How long one run of its HEALTHCHECK may take (Docker's default, 30 s, when unset).
    pub fn healthcheck_timeout(&self) -> std::time::Duration {
        let nanos = self.0.pointer("/Config/Healthcheck/Timeout").and_then(Value::as_u64).unwrap_or(0);
        if nanos == 0 { std::time::Duration::from_secs(30) } else { std::time::Duration::from_nanos(nanos) }
    }

    /// `Config.Volumes`: the paths its image (or its `docker run -v PATH`) declared volumes.
    pub fn declared_volumes(&self) -> Vec<String> {
        self.0
            .pointer("/Config/Volumes")
            .and_then(Value::as_object)
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The directories of its `PATH` (Docker's default when it sets none). Only `PATH` is
    /// read of its environment.
    pub fn path_dirs(&self) -> Vec<String> {
        let path = self.env().into_iter().find_map(|e| e.strip_prefix("PATH=").map(str::to_string));
        path.unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into())
            .split(':')
            .filter(|d| d.starts_with('/'))
            .map(str::to_string)
            .collect()
    }

    /// `HostConfig.PidMode` (`host` shares the host's process namespace).
    pub fn pid_mode(&self) -> &str {
        self.str_at("/HostConfig/PidMode")
    }

    /// `HostConfig.Links`, as Docker keeps them (`/db:/web/db`).
    pub fn links(&self) -> Vec<String> {
        self.strings_at("/HostConfig/Links")
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.0.pointer("/Config/Labels").and_then(|l| l.get(key)).and_then(Value::as_str)
    }

    /// How often Docker restarted it (`RestartCount`).
    pub fn restart_count(&self) -> i64 {
        self.0.get("RestartCount").and_then(Value::as_i64).unwrap_or(0)
    }

    /// Whether `other` runs the same process the same way: the same user, command,
    /// entrypoint, environment, labels, working directory and hostname in `Config`.
    pub fn same_process_config(&self, other: &Inspect) -> bool {
        ["User", "Cmd", "Entrypoint", "Env", "Labels", "WorkingDir", "Hostname"]
            .iter()
            .all(|k| self.0["Config"].get(*k) == other.0["Config"].get(*k))
    }

    /// The mounts as Docker reports them in `Mounts`.
    pub fn mounts(&self) -> Vec<Mount> {
        let Some(list) = self.0.pointer("/Mounts").and_then(Value::as_array) else {
            return Vec::new();
        };
        list.iter()
            .map(|m| {
                let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                Mount {
                    kind: MountKind::parse(&s("Type")),
                    name: m.get("Name").and_then(Value::as_str).map(str::to_string),
                    source: s("Source"),
                    destination: s("Destination"),
                    writable: m.get("RW").and_then(Value::as_bool).unwrap_or(false),
                }
            })
            .collect()
    }
}
