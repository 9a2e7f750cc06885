//! A world on the recording fake daemon: containers running as root from one busybox-like
//! image, volumes whose owners the re-owning helpers scan and change, a plan in a temporary
//! folder, and unroot's commands run as its command line runs them (parsed by its own
//! parser, the exit code it would return, the text it would print). Time is tokio's: the
//! tests run on paused time, so stop graces, stability windows and health polls pass at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Parser;
use serde_json::{Value, json};
use unroot::cli::commands::{ApplyArgs, Env, ReportArgs};
use unroot::cli::output::Output;
use unroot::cli::{Cli, Command, Ended, ReportFormat, exit_code};
use unroot::docker::fake::{Call, FakeDocker, Program};
use unroot::docker::{Finished, Process};
use unroot::engine::interrupt::Interrupt;
use unroot::engine::reown::{APPLY_SCRIPT, SCAN_SCRIPT};
use unroot::engine::runs::{self, ApplyOptions};
use unroot::error::Error;
use unroot::model::passwd::tar_of;
use unroot::model::plan::Plan;
use unroot::state::StateLocation;

/// The image every container of the world runs.
pub const IMAGE: &str = "sha256:b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
const IMAGE_REF: &str = "busybox:fixture";

/// Owners of the entries of each volume (`.` is its root), by volume name.
type Volumes = Arc<Mutex<BTreeMap<String, BTreeMap<String, String>>>>;

/// How a command ended: what the command line would return and print.
#[derive(Debug)]
pub struct Ran {
    pub code: u8,
    pub stdout: String,
    /// The error the command line would report (`error: …`), else empty.
    pub stderr: String,
}

impl Ran {
    /// Panics with the output unless the command exited `code`.
    pub fn exits(&self, code: u8) -> &Self {
        assert_eq!(self.code, code, "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// What the commands print, kept to read back.
#[derive(Clone, Default)]
struct Printed(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Printed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct World {
    pub fake: FakeDocker,
    /// The folder the commands run in: `plan.toml` and the `state` of `--state-dir state`.
    pub dir: tempfile::TempDir,
    volumes: Volumes,
    containers: Mutex<u32>,
}

impl World {
    /// An empty daemon with the image, whose helpers re-own the world's volumes.
    pub fn new() -> World {
        let fake = FakeDocker::default();
        let volumes = Volumes::default();
        let accounts = [
            (
                "/etc/passwd",
                &b"root:x:0:0::/root:/bin/sh\nredis:x:999:999::/data:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"[..],
            ),
            ("/etc/group", b"root:x:0:\nredis:x:999:\napp:x:1000:\n"),
        ];
        fake.with(|s| {
            for name in [IMAGE, IMAGE_REF] {
                s.images.insert(name.into(), json!({"Id": IMAGE, "RepoTags": [IMAGE_REF], "Config": {"User": ""}}));
            }
            for (path, body) in accounts {
                s.image_files.insert((IMAGE.into(), path.into()), tar_of(&path[5..], body, 0, 0));
            }
            for tool in ["sh", "find", "stat", "chown", "xargs"] {
                s.image_files.insert((IMAGE.into(), format!("/bin/{tool}")), tar_of(tool, b"", 0, 0));
            }
            let owners = Arc::clone(&volumes);
            s.helper = Some(Box::new(move |c, s| helper(&owners, c, s)));
        });
        World { fake, dir: tempfile::tempdir().unwrap(), volumes, containers: Mutex::new(0) }
    }

    /// A container `name` running `sleep` as root (with `--init`: it stops at once), its
    /// inspect varied by `patch`; returns its id.
    pub fn run(&self, name: &str, patch: Value) -> String {
        let n = {
            let mut n = self.containers.lock().unwrap();
            *n += 1;
            *n
        };
        let id = format!("{:0>12x}{:0>52}", 0xc0de_0000u64 + u64::from(n), 0);
        let mut c = json!({
            "Id": id, "Name": format!("/{name}"), "Image": IMAGE, "Created": "2026-01-01T00:00:00Z",
            "Config": {"User": "", "Image": IMAGE_REF, "Env": ["PATH=/bin"], "Cmd": ["sleep", "1000000"],
                       "Hostname": &id[..12]},
            "HostConfig": {"Binds": [], "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                           "NetworkMode": "default", "Init": true},
            "Mounts": [],
            "State": {"Running": true, "Restarting": false, "Status": "running", "Pid": 4000 + n},
            "RestartCount": 0,
            "NetworkSettings": {"Networks": {"bridge": {}}}
        });
        unroot::docker::fake::merge(&mut c, patch);
        let pid = 4000 + n;
        self.fake.add(c, vec![Process { pid, ppid: 0, uid: Some(0), command: "sleep 1000000".into() }]);
        id
    }

    /// A volume holding `entries` (and its root), every one owned by root.
    pub fn volume(&self, name: &str, entries: &[&str]) {
        let owners = std::iter::once(".").chain(entries.iter().copied()).map(|e| (e.to_string(), "0:0".to_string()));
        self.volumes.lock().unwrap().insert(name.into(), owners.collect());
    }

    /// The patch that mounts volume `name` at `/data`.
    pub fn mounting(name: &str) -> Value {
        json!({
            "HostConfig": {"Binds": [format!("{name}:/data")]},
            "Mounts": [{"Type": "volume", "Name": name, "Source": format!("/var/lib/docker/volumes/{name}/_data"),
                        "Destination": "/data", "RW": true}]
        })
    }

    /// The owners of a volume's entries, `uid:gid path`, sorted.
    pub fn owners(&self, volume: &str) -> Vec<String> {
        let v = self.volumes.lock().unwrap();
        v[volume].iter().map(|(path, owner)| format!("{owner} {path}")).collect()
    }

    /// What the programs of the world's containers do, as `program` says of each inspect.
    pub fn programs(&self, program: impl Fn(&unroot::docker::Inspect) -> Program + Send + 'static) {
        self.fake.with(|s| s.program = Some(Box::new(program)));
    }

    /// The containers named in `names` cannot run as another user than root: they exit at
    /// once with the shell's complaint (and `said`) in their log, as a program that writes
    /// to /root does. Every other container runs on.
    pub fn need_root(&self, names: &[&str], said: &str) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let said = said.to_string();
        self.programs(move |c| {
            let root = matches!(c.configured_user(), "" | "0" | "0:0" | "root");
            if root || !names.iter().any(|n| n == c.name()) {
                return Program::default();
            }
            let log = format!("{said}sh: can't create /root/state: Permission denied\n");
            Program {
                exits: Some(Finished { exit_code: 2, stdout: log.into_bytes(), stderr: vec![] }),
                ..Program::default()
            }
        });
    }

    /// Writes `plan.toml`: rollout `name`, then `body`.
    pub fn plan(&self, name: &str, body: &str) {
        std::fs::write(self.dir.path().join("plan.toml"), format!("[rollout]\nname = \"{name}\"\n{body}")).unwrap();
    }

    /// The container holding `name` (exactly that name).
    pub fn container(&self, name: &str) -> Option<unroot::docker::Inspect> {
        self.fake.with(|s| s.containers.iter().find(|c| c.name() == name).cloned())
    }

    /// `Config.User` of the container holding `name`.
    pub fn user(&self, name: &str) -> String {
        self.container(name).unwrap_or_else(|| panic!("nobody holds {name}")).configured_user().to_string()
    }

    /// The id of the container holding `name`.
    pub fn id(&self, name: &str) -> String {
        self.container(name).unwrap_or_else(|| panic!("nobody holds {name}")).id().to_string()
    }

    /// The uids of the processes of the container holding `name`, as `docker top` shows
    /// them; none when it does not run.
    pub fn uids(&self, name: &str) -> Vec<u32> {
        let Some(c) = self.container(name).filter(|c| c.running()) else { return Vec::new() };
        let procs = self.fake.with(|s| s.processes.get(c.id()).cloned().unwrap_or_default());
        let mut uids: Vec<u32> = procs.iter().filter_map(|p| p.uid).collect();
        uids.dedup();
        uids
    }

    /// Every container's name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.fake.with(|s| s.containers.iter().map(|c| c.name().to_string()).collect());
        names.sort();
        names
    }

    /// The calls that change something on the daemon, from the `from`-th call on.
    pub fn changes_since(&self, from: usize) -> Vec<Call> {
        self.fake.calls()[from..].iter().filter(|c| c.changes_a_container()).cloned().collect()
    }

    /// A path of the world's folder.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `ledger.json` of plan `name` in `state`.
    pub fn ledger(&self, name: &str) -> Value {
        let text = std::fs::read(self.path(format!("state/{name}/ledger.json"))).expect("a ledger");
        serde_json::from_slice(&text).unwrap()
    }

    /// The records of the journal of the first run of plan `name` in `state`.
    pub fn journal(&self, name: &str) -> Vec<Value> {
        crate::common::journal_records(&self.path("state"), name)
    }

    /// `unroot ARGS` in the world's folder, on the fake daemon: what the command line would
    /// return and print.
    pub async fn unroot(&self, args: &[&str]) -> Ran {
        let mut tries = 0;
        loop {
            let cli =
                Cli::try_parse_from(std::iter::once("unroot").chain(args.iter().copied())).expect("the arguments");
            let printed = Printed::default();
            let out = Output::new(false, Box::new(printed.clone()));
            let ended = self.dispatch(cli, &out).await;
            // The lock is a flock: a process that another test of this binary forks (the CLI
            // tests run `unroot`) holds a copy of its descriptor until it execs, so a lock this
            // process released a moment ago can still look held. Ask again, briefly.
            if tries < 5 && ended.as_ref().is_err_and(held_by_this_process) {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
                continue;
            }
            let stderr = ended.as_ref().err().map(|e| format!("error: {e}\n")).unwrap_or_default();
            let stdout = String::from_utf8_lossy(&printed.0.lock().unwrap()).into_owned();
            return Ran { code: exit_code(ended.as_ref()) as u8, stdout, stderr };
        }
    }

    /// The runs of `status --json ARGS…`.
    pub async fn status(&self, args: &[&str]) -> Value {
        let mut all = vec!["status", "--json"];
        all.extend_from_slice(args);
        let ran = self.unroot(&all).await;
        ran.exits(0);
        serde_json::from_str::<Value>(&ran.stdout).unwrap()["runs"].clone()
    }

    /// The id of the first run in `state`.
    pub async fn first_run(&self) -> String {
        self.status(&["--state-dir", "state"]).await[0]["run"].as_str().unwrap().to_string()
    }

    /// `--state-dir`, else the `state_dir` of `--plan`, as the command line resolves them.
    fn location(&self, flag: Option<&Path>, plan: Option<&Path>) -> Result<StateLocation, Error> {
        let plan = plan.map(|p| Plan::load(&self.path(p))).transpose()?;
        Ok(StateLocation::resolve(flag, plan.as_ref()))
    }

    /// The command, as `cli::run` dispatches it, through the command line's own bodies
    /// (`Env::apply_on` and the rest) on the fake; paths are the world folder's.
    async fn dispatch(&self, cli: Cli, out: &Output) -> Result<Ended, Error> {
        let state_dir = cli.command.state_dir().map(|d| self.path(d));
        let env = Env { state_dir: state_dir.clone(), no_progress: true, context: None, out: out.clone() };
        let flag = state_dir.as_deref();
        let stop = Interrupt::default();
        match cli.command {
            Command::Plan { plan, day, services, format, .. } => {
                let opts = ApplyOptions { day, only: services.services, parallelism: None };
                let plan = Plan::load(&self.path(plan.path()))?;
                let args = ApplyArgs { opts, yes: false, dry_run: true, json: format.is_json() };
                env.apply_on(&self.fake, &plan, args, &stop, None).await
            }
            Command::Apply { plan, day, dry_run, services, parallelism, yes, format, .. } => {
                let opts = ApplyOptions { day, only: services.services, parallelism: parallelism.map(usize::from) };
                let plan = Plan::load(&self.path(plan.path()))?;
                env.apply_on(&self.fake, &plan, ApplyArgs { opts, yes, dry_run, json: format.is_json() }, &stop, None)
                    .await
            }
            Command::Resume { run, plan, format, .. } => {
                let loc = self.location(flag, plan.as_deref())?;
                env.resume_on(&self.fake, &loc, run.as_deref(), format.is_json(), &stop).await
            }
            Command::Rollback { run, plan, services, force, format, .. } => {
                let loc = self.location(flag, plan.as_deref())?;
                env.rollback_on(&self.fake, &loc, &run, &services.services, force, format.is_json(), &stop).await
            }
            Command::Verify { plan, through_day, format, .. } => {
                let plan = Plan::load(&self.path(plan.path()))?;
                env.verify_on(&self.fake, &plan, through_day, format.is_json()).await
            }
            Command::Report { plan, format, json, out, force, filters, .. } => {
                let plan = Plan::load(&self.path(plan.path()))?;
                let format = ReportFormat::of(format, json);
                let args = ReportArgs { format, out: out.map(|o| self.path(o)), force, filters: filters.filters };
                env.report_on(&self.fake, &plan, &args).await
            }
            Command::Status { run, plan, format, .. } => {
                let loc = self.location(flag, plan.as_deref())?;
                out.json(format.is_json()).status(&runs::status(&loc, run.as_deref())?, &loc);
                Ok(Ended::Done)
            }
            other => panic!("{other:?} is not run on the fake"),
        }
    }
}

/// A re-owning helper on the world's volumes, as its scripts would run: the scan lists each
/// entry not owned by its target (`C uid:gid ./path`) and the root (`R uid:gid`); the apply
/// sets each uploaded list's entries to the list's owner, and the root.
fn helper(volumes: &Volumes, c: &unroot::docker::Inspect, s: &unroot::docker::fake::State) -> Finished {
    let line = c.command_line();
    let (script, args) = (line.get(2).map(String::as_str).unwrap_or_default(), line.get(4..).unwrap_or_default());
    let volume = c.0["HostConfig"]["Mounts"][0]["Source"].as_str().unwrap_or_default();
    let mut all = volumes.lock().unwrap();
    let Some(owners) = all.get_mut(volume) else { return Finished::default() };
    if script == SCAN_SCRIPT {
        let target = format!("{}:{}", args[0], args[1]);
        let mut out = String::new();
        for (path, owner) in owners.iter().filter(|(p, o)| *p != "." && **o != target) {
            out.push_str(&format!("C {owner} ./{path}\n"));
        }
        out.push_str(&format!("R {}\n", owners["."]));
        return Finished { exit_code: 0, stdout: out.into_bytes(), stderr: vec![] };
    }
    if script == APPLY_SCRIPT {
        let upload = s.uploads.get(&(c.id().to_string(), "/".to_string())).cloned().unwrap_or_default();
        let mut tar = tar::Archive::new(&upload[..]);
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            let mut body = String::new();
            std::io::Read::read_to_string(&mut entry, &mut body).unwrap();
            match name.strip_prefix("unroot-lists/") {
                Some("root") => {
                    owners.insert(".".into(), body.trim().to_string());
                }
                Some(owner) if owner.contains(':') => {
                    for path in body.lines() {
                        let path = path.replace('\\', "");
                        owners.insert(path.trim_start_matches("./").to_string(), owner.to_string());
                    }
                }
                _ => {}
            }
        }
        return Finished { exit_code: 0, stdout: b"gone 0\n".to_vec(), stderr: vec![] };
    }
    Finished::default()
}

/// The error says this very process holds the state dir's lock.
fn held_by_this_process(e: &unroot::error::Error) -> bool {
    let this = format!("(pid {} on", std::process::id());
    matches!(e, unroot::error::Error::State(unroot::state::StateError::Locked { holder, .. }) if holder.contains(&this))
}
