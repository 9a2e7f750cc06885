//! `unroot audit` (SPEC §7): every container classified, with its users and risk flags.
//!
//! Classification is a pure function of what was observed ([`classify`]); the runner only
//! gathers observations through the [`DockerPort`], so the rules are tested without a daemon
//! and the runner against the real one.

mod filter;
mod flag;
mod posture;
mod services;

pub use crate::model::caps::normalize_cap;
pub use filter::{Filter, Scope};
pub use flag::{Control, Flag, Flags};
pub use posture::Posture;

pub use services::{ServiceEntry, controls_of, local_task_uids, run as services};

use futures_util::{StreamExt, stream};
use serde::Serialize;

use crate::docker::{ContainerRef, DockerError, DockerPort, Inspect, Process};
use crate::engine::accounts::{self, Files};
use crate::model::mount::MountKind;
use crate::model::passwd;
use crate::model::plan::{Plan, Service};

/// How a container stands with respect to root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// A process runs as uid 0, or (not running) it is configured as root.
    Root,
    /// Configured as root, but every process runs as another uid (a gosu-style entrypoint).
    DropsRoot,
    /// Configured as, and running as, a non-root user.
    NonRoot,
    /// A documented `keep_root` exception of the given plan.
    Exception,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Root => "root",
            Class::DropsRoot => "drops-root",
            Class::NonRoot => "non-root",
            Class::Exception => "exception",
        }
    }
}

/// One container's line of the audit.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: String,
    pub id: String,
    pub image: String,
    pub class: Class,
    /// `Config.User` as configured; empty means the image default.
    pub configured_user: String,
    /// The configured user as a number, when it could be resolved.
    pub configured_uid: Option<u32>,
    /// Distinct numeric uids of its processes, ascending.
    pub process_uids: Vec<u32>,
    pub flags: Flags,
    /// Docker's state when observed (`running`, `exited`, …).
    pub state: String,
    /// Something that happened while auditing it (it stopped, restarted …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The `keep_root` reason, for exceptions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
}

impl Entry {
    /// Root without a documented exception, or an exception whose controls are missing.
    pub fn is_violation(&self) -> bool {
        self.class == Class::Root || (self.class == Class::Exception && self.flags.control_missing())
    }
}

/// A container listed at the start that was gone before it could be inspected.
#[derive(Debug, Clone, Serialize)]
pub struct Gone {
    pub name: String,
    pub id: String,
    pub note: String,
}

/// The whole audit.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub containers: Vec<Entry>,
    pub summary: Summary,
    /// Swarm services, when the daemon is a manager (SPEC §11).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gone: Vec<Gone>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub root: usize,
    #[serde(rename = "drops-root")]
    pub drops_root: usize,
    #[serde(rename = "non-root")]
    pub non_root: usize,
    pub exception: usize,
}

impl Report {
    pub fn violations(&self) -> impl Iterator<Item = &Entry> {
        self.containers.iter().filter(|e| e.is_violation())
    }

    /// Violations among containers and services.
    pub fn violation_count(&self) -> usize {
        self.violations().count() + self.services.iter().filter(|s| s.is_violation()).count()
    }
}

/// Classifies from what was seen.
///
/// `configured_root`: whether `Config.User` is root (`None` when it names a user that could
/// not be resolved). `process_uids`: the uids of the running processes (empty when not
/// running).
pub fn classify(exception: bool, configured_root: Option<bool>, process_uids: &[u32]) -> Class {
    if exception {
        Class::Exception
    } else if process_uids.contains(&0) {
        Class::Root
    } else if !process_uids.is_empty() {
        if configured_root == Some(true) { Class::DropsRoot } else { Class::NonRoot }
    } else if configured_root == Some(false) {
        Class::NonRoot
    } else {
        // Not running: it would start as it is configured; an unresolvable name counts as
        // root until shown otherwise.
        Class::Root
    }
}

/// Risk flags of SPEC §7 that the inspect alone shows.
pub fn inspect_flags(c: &Inspect) -> Vec<Flag> {
    Posture::of_container(c).flags()
}

/// A control the plan asks for that the container does not have (capabilities as the plan
/// writes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    CapDrop(String),
    CapAdd(String),
    ReadOnly,
    NoNewPrivileges,
    /// A planned tmpfs that is not mounted.
    Tmpfs(String),
    /// A planned security option (as the plan writes it) that is not set.
    SecurityOpt(String),
}

/// The planned controls (capabilities, read-only root, no-new-privileges) the container
/// does not have, in one place for the audit and for verify.
pub fn missing(c: &Inspect, s: &Service) -> Vec<Missing> {
    let have = Controls {
        cap_drop: c.cap_drop(),
        cap_add: c.cap_add(),
        read_only: c.read_only_rootfs(),
        no_new_privileges: c.no_new_privileges(),
        tmpfs: Some(
            c.tmpfs()
                .into_keys()
                .chain(c.mounts().into_iter().filter(|m| m.kind == MountKind::Tmpfs).map(|m| m.destination))
                .collect(),
        ),
        security_opt: Some(c.security_opt()),
    };
    have.missing(s)
}

/// The controls a container or a Swarm service's tasks have, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controls {
    pub cap_drop: Vec<String>,
    pub cap_add: Vec<String>,
    pub read_only: bool,
    pub no_new_privileges: bool,
    /// Paths with a tmpfs; `None` where not known (then not checked).
    pub tmpfs: Option<Vec<String>>,
    /// Security options as the daemon reports them; `None` where not known.
    pub security_opt: Option<Vec<String>>,
}

/// Whether the daemon's security options hold the plan's `planned`: the same option (`=`
/// or Docker's older `:`), or for `seccomp=FILE` any seccomp profile but `unconfined` (the
/// daemon holds the file's contents, not its path).
pub fn has_security_opt(have: &[String], planned: &str) -> bool {
    let norm = |o: &str| o.replacen(':', "=", 1);
    let want = norm(planned);
    let seccomp_file = want.strip_prefix("seccomp=").is_some_and(|v| v != "unconfined" && !v.starts_with('{'));
    have.iter()
        .map(|o| norm(o))
        .any(|o| o == want || (seccomp_file && o.strip_prefix("seccomp=").is_some_and(|v| v != "unconfined")))
}

impl Controls {
    /// The planned controls of `s` these lack (capabilities as the plan writes them).
    pub fn missing(&self, s: &Service) -> Vec<Missing> {
        let mut missing = Vec::new();
        let dropped: Vec<String> = self.cap_drop.iter().map(|x| normalize_cap(x)).collect();
        for cap in &s.cap_drop {
            if !dropped.contains(&normalize_cap(cap)) && !dropped.iter().any(|d| d == "ALL") {
                missing.push(Missing::CapDrop(cap.clone()));
            }
        }
        let added: Vec<String> = self.cap_add.iter().map(|x| normalize_cap(x)).collect();
        for cap in &s.cap_add {
            if !added.contains(&normalize_cap(cap)) {
                missing.push(Missing::CapAdd(cap.clone()));
            }
        }
        if s.read_only == Some(true) && !self.read_only {
            missing.push(Missing::ReadOnly);
        }
        if s.no_new_privileges == Some(true) && !self.no_new_privileges {
            missing.push(Missing::NoNewPrivileges);
        }
        if let Some(have) = &self.tmpfs {
            for t in s.tmpfs.iter().filter(|t| !have.iter().any(|h| h.trim_end_matches('/') == t.path)) {
                missing.push(Missing::Tmpfs(t.path.clone()));
            }
        }
        if let Some(have) = &self.security_opt {
            for o in s.security_opt.iter().filter(|o| !has_security_opt(have, o)) {
                missing.push(Missing::SecurityOpt(o.clone()));
            }
        }
        missing
    }
}

/// Compensating controls a `keep_root` service asks for that the container lacks, as the
/// audit flags them (`control-missing:…`).
pub fn missing_controls(c: &Inspect, s: &Service) -> Vec<Control> {
    missing(c, s).into_iter().filter_map(Control::flagged).collect()
}

/// Missing controls as the audit's `control-missing:…` flags.
pub fn control_flags(missing: Vec<Missing>) -> Vec<Flag> {
    missing.into_iter().filter_map(Control::flagged).map(Flag::ControlMissing).collect()
}

/// The missing controls as verify words them, for containers and services alike.
pub fn describe_missing(missing: Vec<Missing>) -> Vec<String> {
    missing
        .into_iter()
        .map(|m| match m {
            Missing::CapDrop(cap) => format!("cap_drop {cap} is not applied"),
            Missing::CapAdd(cap) => format!("cap_add {cap} is not applied"),
            Missing::ReadOnly => "the root filesystem is writable, planned read_only".to_string(),
            Missing::NoNewPrivileges => "no-new-privileges is not set".to_string(),
            Missing::Tmpfs(path) => format!("tmpfs {path} is not mounted"),
            Missing::SecurityOpt(o) => format!("security_opt {o} is not set"),
        })
        .collect()
}

/// The label Swarm puts on a task's container: the service it belongs to.
const SWARM_SERVICE_LABEL: &str = "com.docker.swarm.service.name";

/// How many containers are audited at once.
const CONCURRENCY: usize = 8;
/// Bytes read of a mount's tar stream to see its root's owner: one header block.
const HEADER_LIMIT: usize = 512;

/// Audits every container on the daemon.
///
/// Errors: only listing the containers can fail the audit; a container that disappears,
/// stops or restarts while it is looked at is reported with a note.
pub async fn run(port: &impl DockerPort, plan: Option<&Plan>, scope: &Scope<'_>) -> Result<Report, DockerError> {
    // unroot's own probes and helpers (a Swarm helper job's task containers too) are not the
    // operator's containers.
    let list: Vec<ContainerRef> = port
        .list_containers()
        .await?
        .into_iter()
        .filter(|c| !crate::engine::orphans::is_own(&c.labels) && scope.admits(&c.name, &c.labels))
        .collect();
    let results: Vec<Result<Entry, Gone>> = stream::iter(list)
        .map(|c| async move {
            match audit_one(port, &c.id, plan).await {
                Ok(e) => Ok(e),
                Err(why) => Err(Gone { name: c.name, id: c.id, note: why }),
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut containers = Vec::new();
    let mut gone = Vec::new();
    for r in results {
        match r {
            Ok(e) => containers.push(e),
            Err(g) => gone.push(g),
        }
    }
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    gone.sort_by(|a, b| a.name.cmp(&b.name));
    let mut summary = Summary::default();
    for e in &containers {
        match e.class {
            Class::Root => summary.root += 1,
            Class::DropsRoot => summary.drops_root += 1,
            Class::NonRoot => summary.non_root += 1,
            Class::Exception => summary.exception += 1,
        }
    }
    Ok(Report { containers, summary, services: Vec::new(), gone })
}

/// Observes one container. `Err` carries why it could not be audited (it was removed).
async fn audit_one(port: &impl DockerPort, id: &str, plan: Option<&Plan>) -> Result<Entry, String> {
    let gone = |e: DockerError| match e {
        DockerError::NotFound(_) => "removed during the audit".to_string(),
        other => other.to_string(),
    };
    let mut c = port.inspect_container(id).await.map_err(gone)?;
    let mut note = None;
    let mut processes: Vec<Process> = Vec::new();
    if c.running() && !c.restarting() {
        match port.top(id).await {
            Ok(p) => processes = crate::docker::own_tree(p, c.pid()),
            Err(DockerError::Conflict(_)) | Err(DockerError::NotFound(_)) | Err(DockerError::Api { .. }) => {
                // It stopped or restarted between inspect and top: report what it is now.
                c = port.inspect_container(id).await.map_err(gone)?;
                note = Some(format!("{} during the audit", if c.restarting() { "restarting" } else { "stopped" }));
            }
            Err(e) => note = Some(format!("its processes could not be listed: {e}")),
        }
    } else if c.restarting() {
        note = Some("restarting; its processes were not listed".to_string());
    }
    let mut uids: Vec<u32> = processes.iter().filter_map(|p| p.uid).collect();
    uids.sort_unstable();
    uids.dedup();

    let configured = c.configured_user().to_string();
    let configured_uid = configured_uid(port, id, &configured).await;
    let configured_root = configured_uid.map(|u| u == 0);

    // A Swarm task is its service's: the plan names the service, not the task container.
    let planned_as = c.label(SWARM_SERVICE_LABEL).unwrap_or(c.name());
    let service = plan.and_then(|p| p.service(planned_as)).filter(|s| s.keep_root.is_some());
    let mut flags = inspect_flags(&c);
    if let Some(s) = service {
        flags.extend(missing_controls(&c, s).into_iter().map(Flag::ControlMissing));
    }
    flags.extend(root_owned_mounts(port, id, &c).await);
    if !c.running() {
        flags.push(Flag::NotRunning);
    }
    Ok(Entry {
        name: c.name().to_string(),
        id: c.id().chars().take(12).collect(),
        image: c.image().to_string(),
        class: classify(service.is_some(), configured_root, &uids),
        configured_user: configured,
        configured_uid,
        process_uids: uids,
        flags: flags.into(),
        state: c.status().to_string(),
        note,
        exception: service.and_then(|s| s.keep_root.clone()),
    })
}

/// The uid `Config.User` stands for: empty is root; a name is looked up in the container's
/// own /etc/passwd through the archive API. `None` when a name cannot be resolved.
async fn configured_uid(port: &impl DockerPort, id: &str, configured: &str) -> Option<u32> {
    let Some(spec) = crate::model::user::configured(configured) else {
        return Some(0);
    };
    accounts::read_for(port, id, &spec, Files::Users).await.uid_of(&spec)
}

/// `root-owned-mount:DEST` for every writable volume or bind mount whose root is owned by
/// uid 0 (docker.sock is flagged on its own).
async fn root_owned_mounts(port: &impl DockerPort, id: &str, c: &Inspect) -> Vec<Flag> {
    let mut flags = Vec::new();
    for m in c.mounts() {
        if !m.writable || !m.kind.holds_data() || m.is_docker_sock() {
            continue;
        }
        let Ok(tar) = port.read_archive(id, &m.destination, HEADER_LIMIT).await else {
            continue;
        };
        if passwd::first_header_owner(&tar).is_some_and(|(uid, _)| uid == 0) {
            flags.push(Flag::RootOwnedMount(m.destination));
        }
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_rules() {
        assert_eq!(classify(false, Some(true), &[0, 999]), Class::Root);
        assert_eq!(classify(false, Some(false), &[0]), Class::Root, "a root process wins over config");
        assert_eq!(classify(false, Some(true), &[999]), Class::DropsRoot);
        assert_eq!(classify(false, Some(false), &[999]), Class::NonRoot);
        assert_eq!(classify(false, None, &[1000]), Class::NonRoot);
        assert_eq!(classify(false, Some(true), &[]), Class::Root, "stopped, configured root");
        assert_eq!(classify(false, Some(false), &[]), Class::NonRoot);
        assert_eq!(classify(false, None, &[]), Class::Root);
        assert_eq!(classify(true, Some(true), &[0]), Class::Exception);
    }

    fn inspect(json: serde_json::Value) -> Inspect {
        Inspect(json)
    }

    #[test]
    fn flags_from_inspect() {
        let c = inspect(serde_json::json!({
            "HostConfig": {"Privileged": true, "CapAdd": ["cap_net_admin"], "ReadonlyRootfs": false, "SecurityOpt": null},
            "Mounts": [{"Type": "bind", "Source": "/var/run/docker.sock", "Destination": "/var/run/docker.sock", "RW": true}]
        }));
        assert_eq!(
            inspect_flags(&c),
            [
                Flag::Privileged,
                Flag::DockerSock,
                Flag::CapAdd("NET_ADMIN".into()),
                Flag::RootfsWritable,
                Flag::NoNewPrivilegesMissing
            ]
        );
        let hardened = inspect(serde_json::json!({
            "HostConfig": {"ReadonlyRootfs": true, "SecurityOpt": ["no-new-privileges:true"]}
        }));
        assert!(inspect_flags(&hardened).is_empty());
    }

    #[test]
    fn exception_controls() {
        let plan = crate::model::plan::Plan::parse(
            "t.toml",
            "[rollout]\nname='t'\n[service.m]\nday=1\nkeep_root='metrics'\ncap_drop=['ALL']\nread_only=true\nno_new_privileges=true\n",
        )
        .unwrap();
        let s = plan.service("m").unwrap();
        let bare = inspect(serde_json::json!({"HostConfig": {}}));
        assert_eq!(
            missing_controls(&bare, s),
            [Control::CapDrop("ALL".into()), Control::ReadOnly, Control::NoNewPrivileges]
        );
        let applied = inspect(serde_json::json!({
            "HostConfig": {"CapDrop": ["ALL"], "ReadonlyRootfs": true, "SecurityOpt": ["no-new-privileges"]}
        }));
        assert!(missing_controls(&applied, s).is_empty());
    }

    mod with_fake_docker {
        use super::super::*;
        use crate::docker::fake::{Call, FakeDocker, Script};
        use serde_json::json;

        fn proc(uid: u32) -> Process {
            Process { pid: 100 + uid, ppid: 0, uid: Some(uid), command: "sleep".into() }
        }

        fn container(id: &str, user: &str, running: bool) -> serde_json::Value {
            json!({
                "Id": id, "Name": format!("/{id}-name"),
                "Config": {"User": user, "Image": "img"},
                "State": {"Running": running, "Restarting": false, "Status": if running {"running"} else {"exited"}},
                "HostConfig": {"ReadonlyRootfs": true, "SecurityOpt": ["no-new-privileges"]},
                "Mounts": []
            })
        }

        fn tar_with(path: &str, body: &[u8], uid: u64) -> Vec<u8> {
            crate::model::passwd::tar_of(path, body, uid, uid)
        }

        fn run(fake: &FakeDocker) -> Report {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(super::super::run(fake, None, &super::super::Scope::filtered(&[])))
                .unwrap()
        }

        #[test]
        fn a_container_that_stops_between_inspect_and_top_is_reported() {
            let fake = FakeDocker::default();
            fake.add(container("a", "", true), vec![proc(0)]);
            fake.script(
                "top",
                Script::Before(Box::new(|s| {
                    s.container_mut("a").unwrap().0["State"] = json!({"Running": false, "Status": "exited"});
                })),
            );
            let report = run(&fake);
            let e = &report.containers[0];
            assert_eq!(e.note.as_deref(), Some("stopped during the audit"));
            assert_eq!(e.state, "exited");
            assert_eq!(e.class, Class::Root, "configured root and not running");
            assert!(e.flags.contains(&Flag::NotRunning));
            assert_eq!(fake.calls().iter().filter(|c| matches!(c, Call::Inspect(_))).count(), 2, "re-inspected");
        }

        #[test]
        fn unroots_own_probes_and_helper_tasks_are_not_audited() {
            let fake = FakeDocker::default();
            let mut helper = container("h", "0:0", true);
            helper["Config"]["Labels"] = json!({"io.unroot.helper": "day1-x", "io.unroot.maker": "h/1/1",
                "com.docker.swarm.service.name": "unroot-scan-db-0123456789"});
            fake.add(helper, vec![proc(0)]);
            fake.add(container("a", "", true), vec![proc(0)]);
            let report = run(&fake);
            let names: Vec<&str> = report.containers.iter().map(|e| e.name.as_str()).collect();
            assert_eq!(names, ["a-name"]);
            assert_eq!(report.summary.root, 1);
        }

        #[test]
        fn a_container_removed_mid_audit_is_listed_as_gone() {
            let fake = FakeDocker::default();
            fake.add(container("a", "", true), vec![proc(0)]);
            fake.add(container("b", "1000", true), vec![proc(1000)]);
            fake.script("inspect", Script::Fail(DockerError::NotFound("No such container: a".into())));
            let report = run(&fake);
            assert_eq!(report.gone.len(), 1);
            assert_eq!(report.gone[0].note, "removed during the audit");
            assert_eq!(report.containers.len(), 1);
            assert_eq!(report.summary.non_root, 1);
        }

        #[test]
        fn a_restarting_container_is_noted_and_not_topped() {
            let fake = FakeDocker::default();
            let mut c = container("a", "", true);
            c["State"]["Restarting"] = json!(true);
            c["State"]["Status"] = json!("restarting");
            fake.add(c, vec![]);
            let report = run(&fake);
            assert_eq!(report.containers[0].note.as_deref(), Some("restarting; its processes were not listed"));
            assert!(!fake.calls().iter().any(|c| matches!(c, Call::Top(_))));
        }

        #[test]
        fn names_resolve_through_the_image_passwd() {
            let fake = FakeDocker::default();
            fake.add(container("a", "toor", true), vec![proc(0)]);
            fake.archive("a", "/etc/passwd", tar_with("passwd", b"toor:x:0:0::/:/bin/sh\n", 0));
            fake.add(container("b", "ghost", false), vec![]);
            let report = run(&fake);
            let a = report.containers.iter().find(|e| e.id == "a").unwrap();
            assert_eq!(a.configured_uid, Some(0));
            assert_eq!(a.class, Class::Root);
            let b = report.containers.iter().find(|e| e.id == "b").unwrap();
            assert_eq!(b.configured_uid, None, "no passwd to resolve it");
            assert_eq!(b.class, Class::Root, "unresolvable and stopped counts as root");
        }

        #[test]
        fn writable_mounts_owned_by_root_are_flagged() {
            let fake = FakeDocker::default();
            let mut c = container("a", "999", true);
            c["Mounts"] = json!([
                {"Type": "volume", "Name": "v", "Source": "/var/lib/docker/volumes/v/_data", "Destination": "/data", "RW": true},
                {"Type": "volume", "Name": "w", "Source": "/w", "Destination": "/owned", "RW": true},
                {"Type": "bind", "Source": "/etc/x", "Destination": "/ro", "RW": false}
            ]);
            fake.add(c, vec![proc(999)]);
            fake.archive("a", "/data", tar_with("data", b"", 0));
            fake.archive("a", "/owned", tar_with("owned", b"", 999));
            fake.archive("a", "/ro", tar_with("ro", b"", 0));
            let report = run(&fake);
            assert_eq!(*report.containers[0].flags, [Flag::RootOwnedMount("/data".into())]);
        }
    }
}
