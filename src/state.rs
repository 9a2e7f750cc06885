//! State on disk (SPEC §5): the state directory and its lock, run folders, the journal and
//! the ledger. Every directory is 0700 and every file 0600: the saved inspects hold the
//! containers' environment.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A state-directory problem, with the path it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    /// Another unroot holds the lock.
    #[error("another unroot holds the lock {path}: {holder}")]
    Locked { path: PathBuf, holder: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io { path: path.to_path_buf(), source }
}

/// Creates `dir` and its missing parents, each with mode 0700. A directory that exists
/// already is used as it is: `--state-dir /tmp` must not strip /tmp's 1777; what unroot
/// keeps there goes into folders of its own, which it creates 0700.
///
/// Errors: a component cannot be created or examined.
pub fn private_dir(dir: &Path) -> Result<(), StateError> {
    let mut missing = Vec::new();
    let mut cur = dir;
    loop {
        match fs::symlink_metadata(cur) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing.push(cur);
                match cur.parent() {
                    Some(p) if !p.as_os_str().is_empty() => cur = p,
                    _ => break,
                }
            }
            Err(e) => return Err(StateError::Io { path: cur.to_path_buf(), source: e }),
        }
    }
    for d in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(0o700).create(d) {
            // The umask may have narrowed it further; it must be usable by its owner.
            Ok(()) => fs::set_permissions(d, fs::Permissions::from_mode(0o700)).map_err(io(d))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StateError::Io { path: d.to_path_buf(), source: e }),
        }
    }
    Ok(())
}

/// The state directory a command uses, and what a printed command needs to find it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateLocation {
    pub dir: PathBuf,
    /// ` --state-dir DIR`, ` --plan PLAN`, or empty when the default finds it.
    pub hint: String,
}

impl StateLocation {
    /// `--state-dir`, else the `state_dir` of the plan, else `rollback/` (SPEC §1).
    pub fn resolve(flag: Option<&Path>, plan: Option<&crate::plan::Plan>) -> StateLocation {
        match (flag, plan) {
            (Some(dir), _) => {
                StateLocation { dir: dir.to_path_buf(), hint: format!(" --state-dir {}", shell_word(dir)) }
            }
            (None, Some(plan)) if plan.rollout.state_dir != Path::new(crate::plan::DEFAULT_STATE_DIR) => {
                StateLocation {
                    dir: plan.rollout.state_dir.clone(),
                    hint: format!(" --plan {}", shell_word(Path::new(&plan.source.name))),
                }
            }
            (None, Some(plan)) => StateLocation { dir: plan.rollout.state_dir.clone(), hint: String::new() },
            (None, None) => StateLocation { dir: PathBuf::from(crate::plan::DEFAULT_STATE_DIR), hint: String::new() },
        }
    }
}

/// A path as one shell word (quoted when it holds anything but plain characters).
fn shell_word(p: &Path) -> String {
    let s = p.display().to_string();
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c)) {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Writes a file with mode 0600 durably: temp file, fsync, rename, fsync of the directory.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("state")));
    {
        let mut f =
            OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io(&tmp))?;
        f.set_permissions(fs::Permissions::from_mode(0o600)).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io(path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Reads a JSON file written by unroot; `None` when it does not exist.
fn load_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    match fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| StateError::Corrupt { path: path.to_path_buf(), message: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::Io { path: path.to_path_buf(), source: e }),
    }
}

/// The current UTC time as RFC 3339 with seconds.
pub fn now_rfc3339() -> String {
    let t = time::OffsetDateTime::now_utc();
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A new run id: `day<N>-<UTC yyyymmddThhmmss>`.
pub fn new_run_id(day: u32) -> String {
    let t = time::OffsetDateTime::now_utc();
    let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]");
    format!("day{day}-{}", t.format(&f).unwrap_or_default())
}

/// The exclusive lock on a state directory, held until dropped (the kernel releases it when
/// the process dies, so a dead holder never blocks).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Who holds a lock, as written in the lock file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub started: String,
    pub command: String,
}

impl Lock {
    /// Whether some process holds the lock of `state_dir` right now. Reads only: it takes
    /// a shared lock for an instant and writes nothing.
    pub fn is_held(state_dir: &Path) -> bool {
        match File::open(state_dir.join(".lock")) {
            Ok(f) => matches!(f.try_lock_shared(), Err(fs::TryLockError::WouldBlock)),
            Err(_) => false,
        }
    }

    /// Takes the lock of `state_dir` for `command`, or says who holds it.
    ///
    /// Errors: [`StateError::Locked`] naming the holder (pid, host, start time).
    pub fn acquire(state_dir: &Path, command: &str) -> Result<Lock, StateError> {
        private_dir(state_dir)?;
        let path = state_dir.join(".lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            // A state dir may be shared (`/tmp`): never open a link planted in its place.
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(io(&path))?;
        if let Err(e) = file.try_lock() {
            return match e {
                fs::TryLockError::WouldBlock => {
                    let holder = fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| serde_json::from_str::<Holder>(&t).ok())
                        .map(|h| format!("{} (pid {} on {}, since {})", h.command, h.pid, h.host, h.started))
                        .unwrap_or_else(|| "a process that has not written its name yet".into());
                    Err(StateError::Locked { path, holder })
                }
                fs::TryLockError::Error(e) => Err(StateError::Io { path, source: e }),
            };
        }
        let holder = Holder {
            pid: std::process::id(),
            host: rustix::system::uname().nodename().to_string_lossy().into_owned(),
            started: now_rfc3339(),
            command: command.to_string(),
        };
        file.set_len(0).map_err(io(&path))?;
        file.write_all(serde_json::to_string(&holder).expect("serializes").as_bytes()).map_err(io(&path))?;
        file.sync_data().map_err(io(&path))?;
        Ok(Lock { _file: file })
    }
}

/// One record of a journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "kebab-case")]
pub enum Record {
    /// The first record of a run.
    Header {
        run: String,
        plan: String,
        plan_sha256: String,
        day: u32,
        /// The services of the day in the order they run, by wave.
        waves: Vec<Vec<String>>,
        on_failure: String,
        version: String,
        /// The plan file as given to apply (absolute), to tell when it changed since.
        #[serde(default)]
        plan_path: String,
    },
    /// A step of one service starts (`ok` absent) or ends (`ok` set).
    Step {
        service: String,
        step: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        ok: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(skip_serializing_if = "Value::is_null", default)]
        detail: Value,
    },
    /// The run as a whole changes state.
    Run {
        event: RunEvent,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        /// The services a rollback restores (absent before this field existed: all touched).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        services: Vec<String>,
    },
}

impl Record {
    /// A run-level record without detail.
    pub fn run(event: RunEvent) -> Record {
        Record::Run { event, detail: None, services: Vec::new() }
    }

    /// A run-level record with a detail for people.
    pub fn run_with(event: RunEvent, detail: impl Into<String>) -> Record {
        Record::Run { event, detail: Some(detail.into()), services: Vec::new() }
    }
}

/// What happened to a run as a whole, as the journal records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunEvent {
    Started,
    Resumed,
    RollingBack,
    RolledBack,
    RollbackIncomplete,
    Paused,
    Committing,
    /// Some parked original could not be removed: the run stays open until `resume` does.
    CommitIncomplete,
    Committed,
    /// `rollback --service` of some services of a run (the run keeps its state).
    ServiceRollback,
    ServicesRolledBack,
}

impl RunEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            RunEvent::Started => "started",
            RunEvent::Resumed => "resumed",
            RunEvent::RollingBack => "rolling-back",
            RunEvent::RolledBack => "rolled-back",
            RunEvent::RollbackIncomplete => "rollback-incomplete",
            RunEvent::Paused => "paused",
            RunEvent::Committing => "committing",
            RunEvent::CommitIncomplete => "commit-incomplete",
            RunEvent::Committed => "committed",
            RunEvent::ServiceRollback => "service-rollback",
            RunEvent::ServicesRolledBack => "services-rolled-back",
        }
    }

    /// Whether the event says something about the run as a whole (a rollback of some of its
    /// services that succeeded leaves the run as it was).
    fn is_run_level(self) -> bool {
        !matches!(self, RunEvent::ServiceRollback | RunEvent::ServicesRolledBack)
    }
}

/// The state of a run: the one definition every command uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Open, and another unroot holds the lock: it is being worked on.
    InProgress,
    /// Open and nobody works on it: `resume` or `rollback` continues it.
    Interrupted,
    Committed,
    RolledBack,
    /// A rollback did not finish (also a committed run whose rollback failed): open.
    RollbackIncomplete,
}

impl RunState {
    /// The state the journal's run-level events give; `lock_held_elsewhere` tells an open
    /// run being worked on from one that was interrupted.
    pub fn of(entries: &[Entry], lock_held_elsewhere: bool) -> RunState {
        match last_run_event(entries) {
            Some(RunEvent::Committed) => RunState::Committed,
            Some(RunEvent::RolledBack) => RunState::RolledBack,
            Some(RunEvent::RollbackIncomplete) => RunState::RollbackIncomplete,
            _ if lock_held_elsewhere => RunState::InProgress,
            _ => RunState::Interrupted,
        }
    }

    /// Neither committed nor rolled back: `resume` or `rollback` must continue it, and no
    /// new `apply` of its plan starts meanwhile.
    pub fn is_open(self) -> bool {
        !matches!(self, RunState::Committed | RunState::RolledBack)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::InProgress => "in-progress",
            RunState::Interrupted => "interrupted",
            RunState::Committed => "committed",
            RunState::RolledBack => "rolled-back",
            RunState::RollbackIncomplete => "rollback-incomplete",
        }
    }
}

/// The services a run touched, in the order to restore them: the reverse of the order of
/// their re-owns (a service that re-owned nothing counts from its first step). Two services
/// that share a volume then get exactly the owners back that the first re-own found.
pub fn restore_order(entries: &[Entry]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for e in entries {
        if let Record::Step { service, step, ok: None, .. } = &e.record {
            match step.as_str() {
                "inspect" if !order.contains(service) => order.push(service.clone()),
                "chown" => {
                    order.retain(|s| s != service);
                    order.push(service.clone());
                }
                _ => {}
            }
        }
    }
    order.reverse();
    order
}

/// The last run-level event of a journal.
pub fn last_run_event(entries: &[Entry]) -> Option<RunEvent> {
    run_events(entries).last()
}

/// The run-level events of a journal, in order.
pub fn run_events(entries: &[Entry]) -> impl Iterator<Item = RunEvent> + '_ {
    entries.iter().filter_map(|e| match &e.record {
        Record::Run { event, .. } if event.is_run_level() => Some(*event),
        _ => None,
    })
}

/// A record with its sequence number and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub ts: String,
    #[serde(flatten)]
    pub record: Record,
}

/// The append-only journal of a run: one JSON line per record, fsync'd before `append`
/// returns, so a record is durable before the side effect it announces.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    seq: u64,
    /// Length of the file up to the end of its last whole record.
    len: u64,
    /// Called after each durable write (test builds use it to crash on purpose).
    after_write: Option<fn(u64)>,
}

impl Journal {
    /// Opens (creating, 0600) the journal at `path`, continuing its numbering. A torn last
    /// line (a crash mid-write) is cut off first, so the next record starts a line of its own.
    pub fn open(path: &Path) -> Result<Journal, StateError> {
        let seq = Journal::read(path)?.last().map_or(0, |e| e.seq);
        let file = OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(io(path))?;
        let bytes = fs::read(path).map_err(io(path))?;
        let mut len = bytes.len() as u64;
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            len = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1) as u64;
            file.set_len(len).map_err(io(path))?;
            file.sync_data().map_err(io(path))?;
        }
        Ok(Journal { path: path.to_path_buf(), file, seq, len, after_write: None })
    }

    /// Sets a hook run after every durable write.
    pub fn on_write(&mut self, hook: fn(u64)) {
        self.after_write = Some(hook);
    }

    /// Appends a record and fsyncs it.
    ///
    /// Guarantees: the journal holds whole records only: when the write or the fsync fails
    /// (a full disk writes part of a line), the file is cut back to its last whole record,
    /// so the next append does not follow a torn line.
    /// Errors: the write or fsync failed (the record is not in the journal).
    pub fn append(&mut self, record: Record) -> Result<Entry, StateError> {
        let entry = Entry { seq: self.seq + 1, ts: now_rfc3339(), record };
        let mut line = serde_json::to_string(&entry).expect("records serialize");
        line.push('\n');
        let written = self.file.write_all(line.as_bytes()).and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            let _ = self.file.set_len(self.len).and_then(|()| self.file.sync_data());
            return Err(StateError::Io { path: self.path.clone(), source: e });
        }
        self.seq += 1;
        self.len += line.len() as u64;
        if let Some(hook) = self.after_write {
            hook(self.seq);
        }
        Ok(entry)
    }

    /// Every whole record of a journal; a torn last line (a crash mid-write) is ignored.
    ///
    /// Errors: a damaged line that is not the last one.
    pub fn read(path: &Path) -> Result<Vec<Entry>, StateError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(StateError::Io { path: path.to_path_buf(), source: e });
            }
        };
        let lines: Vec<String> = BufReader::new(file).lines().collect::<Result<_, _>>().map_err(io(path))?;
        let mut entries = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_str::<Entry>(line) {
                Ok(e) => entries.push(e),
                Err(_) if i + 1 == lines.len() => break,
                Err(e) => {
                    return Err(StateError::Corrupt {
                        path: path.to_path_buf(),
                        message: format!("line {}: {e}", i + 1),
                    });
                }
            }
        }
        Ok(entries)
    }
}

/// What the runs of a plan left each service as, by day (SPEC §5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub plan: String,
    /// Day number (as text, for JSON) → what the commits of that day recorded.
    pub days: BTreeMap<String, AppliedDay>,
}

/// The commits of one day. Runs add up: each commit adds or updates the records of the
/// services it handled and keeps the others'.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedDay {
    /// The run that committed on this day last.
    pub run: String,
    pub committed: String,
    /// What each service was left as, by the run that last handled it.
    pub services: BTreeMap<String, ServiceRecord>,
}

/// What a run left a service as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceState {
    /// Recreated as planned and committed.
    Migrated,
    /// On its original: `rollback-service` restored it, or `rollback` undid it.
    Original,
}

/// One service of a day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub state: ServiceState,
    /// The run that left it so (ledgers written before this field: the day's run).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<crate::compose::ComposeRef>,
    /// What the compose override sets for it (from the plan and the resolved user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<crate::compose::ServiceOverride>,
}

/// Why a service of an earlier day keeps its day open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenService {
    pub name: String,
    pub day: u32,
    /// The run that left it on its original, when one did.
    pub left_original_by: Option<String>,
}

impl std::fmt::Display for OpenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.left_original_by {
            Some(run) => write!(f, "{} (day {}) is on its original since run {run}", self.name, self.day),
            None => write!(f, "{} (day {}) is not migrated yet", self.name, self.day),
        }
    }
}

impl Ledger {
    pub fn path(plan_dir: &Path) -> PathBuf {
        plan_dir.join("ledger.json")
    }

    /// The ledger of a plan folder; empty when none was written yet.
    pub fn load(plan_dir: &Path, plan: &str) -> Result<Ledger, StateError> {
        let mut ledger: Ledger = load_json(&Ledger::path(plan_dir))?
            .unwrap_or_else(|| Ledger { plan: plan.to_string(), days: BTreeMap::new() });
        for day in ledger.days.values_mut() {
            for rec in day.services.values_mut().filter(|r| r.run.is_empty()) {
                rec.run = day.run.clone();
            }
        }
        Ok(ledger)
    }

    /// Writes the ledger by temp file, fsync and rename.
    pub fn save(&self, plan_dir: &Path) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(self).expect("ledger serializes");
        write_private(&Ledger::path(plan_dir), &bytes)
    }

    /// The record of a service, whatever day it was handled on (a migrated record wins).
    pub fn service(&self, name: &str) -> Option<&ServiceRecord> {
        let mut found = None;
        for day in self.days.values() {
            if let Some(r) = day.services.get(name) {
                if r.state == ServiceState::Migrated {
                    return Some(r);
                }
                found = Some(r);
            }
        }
        found
    }

    /// Whether `service` of `plan` no longer holds its day open: migrated, or left on its
    /// original while the plan now documents it as an exception.
    pub fn is_done(&self, plan: &crate::plan::Plan, service: &str) -> bool {
        match self.service(service) {
            Some(r) if r.state == ServiceState::Migrated => true,
            Some(_) => plan.service(service).is_some_and(|s| s.keep_root.is_some()),
            None => false,
        }
    }

    /// The services of `day` in `plan` that keep it open; empty when the day is applied.
    pub fn open_services(&self, plan: &crate::plan::Plan, day: u32) -> Vec<OpenService> {
        plan.services
            .iter()
            .filter(|s| s.day == day && !self.is_done(plan, &s.name))
            .map(|s| OpenService {
                name: s.name.clone(),
                day,
                left_original_by: self.service(&s.name).map(|r| r.run.clone()),
            })
            .collect()
    }

    /// Records a commit of `day` by `run`: adds or replaces the records of the services it
    /// handled, keeps every other record of the day.
    pub fn record_commit(&mut self, day: u32, run: &str, services: BTreeMap<String, ServiceRecord>) {
        let now = now_rfc3339();
        let entry = self.days.entry(day.to_string()).or_insert_with(|| AppliedDay {
            run: run.to_string(),
            committed: now.clone(),
            services: BTreeMap::new(),
        });
        entry.run = run.to_string();
        entry.committed = now;
        entry
            .services
            .extend(services.into_iter().map(|(name, rec)| (name, ServiceRecord { run: run.to_string(), ..rec })));
    }
}

/// The folders of one plan in a state directory.
#[derive(Debug, Clone)]
pub struct PlanDir {
    pub state_dir: PathBuf,
    pub dir: PathBuf,
}

impl PlanDir {
    pub fn new(state_dir: &Path, plan_name: &str) -> PlanDir {
        PlanDir { state_dir: state_dir.to_path_buf(), dir: state_dir.join(plan_name) }
    }

    pub fn run_dir(&self, run: &str) -> PathBuf {
        self.dir.join("runs").join(run)
    }

    /// Run ids of this plan, oldest first.
    pub fn runs(&self) -> Result<Vec<String>, StateError> {
        let runs = self.dir.join("runs");
        let mut out = Vec::new();
        match fs::read_dir(&runs) {
            Ok(rd) => {
                for e in rd {
                    let e = e.map_err(io(&runs))?;
                    if e.path().join("journal.jsonl").exists() {
                        out.push(e.file_name().to_string_lossy().into_owned());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StateError::Io { path: runs, source: e });
            }
        }
        out.sort();
        Ok(out)
    }
}

/// The folder of one run: journal, plan copy, per-service backups.
#[derive(Debug)]
pub struct RunDir {
    pub id: String,
    pub dir: PathBuf,
}

impl RunDir {
    /// Creates the run's folders (0700) and its plan copy (0600).
    pub fn create(plan_dir: &PlanDir, id: &str, plan_text: &str) -> Result<RunDir, StateError> {
        private_dir(&plan_dir.state_dir)?;
        private_dir(&plan_dir.dir)?;
        private_dir(&plan_dir.dir.join("runs"))?;
        let dir = plan_dir.run_dir(id);
        private_dir(&dir)?;
        private_dir(&dir.join("services"))?;
        write_private(&dir.join("plan.toml"), plan_text.as_bytes())?;
        Ok(RunDir { id: id.to_string(), dir })
    }

    pub fn journal_path(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }

    pub fn service_dir(&self, service: &str) -> Result<PathBuf, StateError> {
        let d = self.dir.join("services").join(service);
        private_dir(&d)?;
        Ok(d)
    }

    /// Saves a service's original inspect (0600).
    pub fn save_original(&self, service: &str, inspect: &Value) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(inspect).expect("inspect serializes");
        write_private(&self.service_dir(service)?.join("original.json"), &bytes)
    }

    pub fn load_original(&self, service: &str) -> Result<Option<Value>, StateError> {
        load_json(&self.dir.join("services").join(service).join("original.json"))
    }

    /// Saves a service's ownership manifest (`owners`, 0600).
    pub fn save_owners(&self, service: &str, manifest: &crate::reown::Manifest) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(manifest).expect("manifest serializes");
        write_private(&self.service_dir(service)?.join("owners"), &bytes)
    }

    /// Saves the end of a failed replacement's log, environment values already redacted
    /// (`failure.log`, 0600); returns its path.
    pub fn save_failure_log(&self, service: &str, text: &[u8]) -> Result<PathBuf, StateError> {
        let path = self.service_dir(service)?.join("failure.log");
        write_private(&path, text)?;
        Ok(path)
    }

    pub fn load_owners(&self, service: &str) -> Result<Option<crate::reown::Manifest>, StateError> {
        load_json(&self.dir.join("services").join(service).join("owners"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn run_folders_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("rollback");
        let pd = PlanDir::new(&state, "p");
        let run = RunDir::create(&pd, "day1-20260101T000000", "[rollout]").unwrap();
        run.save_original("db", &serde_json::json!({"Config": {"Env": ["PW=x"]}})).unwrap();
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&run.dir), 0o700);
        assert_eq!(mode(&run.dir.join("services/db")), 0o700);
        assert_eq!(mode(&run.dir.join("services/db/original.json")), 0o600);
        assert_eq!(mode(&run.dir.join("plan.toml")), 0o600);
        assert_eq!(pd.runs().unwrap(), Vec::<String>::new(), "no journal yet, no run");
        Journal::open(&run.journal_path()).unwrap();
        assert_eq!(pd.runs().unwrap(), ["day1-20260101T000000"]);
        assert_eq!(mode(&run.journal_path()), 0o600);
    }

    #[test]
    fn the_state_dir_and_the_hint_that_finds_it_again() {
        let plan = |dir: &str| {
            crate::plan::Plan::parse(
                "plans/my plan.toml",
                &format!("[rollout]\nname = \"p\"\nstate_dir = \"{dir}\"\n[service.a]\nday = 1\nuser = \"1\"\n"),
            )
            .unwrap()
        };
        let custom = plan("/srv/unroot-state");
        let loc = StateLocation::resolve(None, Some(&custom));
        assert_eq!(loc.dir, Path::new("/srv/unroot-state"));
        assert_eq!(loc.hint, " --plan 'plans/my plan.toml'");
        let flag = StateLocation::resolve(Some(Path::new("/tmp/s")), Some(&custom));
        assert_eq!((flag.dir.as_path(), flag.hint.as_str()), (Path::new("/tmp/s"), " --state-dir /tmp/s"));
        let default = StateLocation::resolve(None, Some(&plan("rollback")));
        assert_eq!((default.dir.as_path(), default.hint.as_str()), (Path::new("rollback"), ""));
        assert_eq!(StateLocation::resolve(None, None).dir, Path::new("rollback"));
    }

    #[test]
    fn journal_appends_numbered_records_and_ignores_a_torn_tail() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("journal.jsonl");
        let mut j = Journal::open(&path).unwrap();
        j.append(Record::run(RunEvent::Started)).unwrap();
        j.append(Record::Step {
            service: "db".into(),
            step: "stop".into(),
            ok: None,
            error: None,
            detail: Value::Null,
        })
        .unwrap();
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":3,\"ts\":\"x\",\"rec").unwrap();
        let entries = Journal::read(&path).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].seq, 2);
        // Reopening cuts the torn tail and continues the numbering after the last whole
        // record, on a line of its own.
        let mut j = Journal::open(&path).unwrap();
        assert_eq!(j.append(Record::run(RunEvent::Paused)).unwrap().seq, 3);
        let seqs: Vec<u64> = Journal::read(&path).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
    }

    /// A tmpfs of a few pages, unmounted when dropped.
    struct SmallFs(PathBuf);

    impl Drop for SmallFs {
        fn drop(&mut self) {
            let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
        }
    }

    #[test]
    fn item17_a_journal_write_that_fills_the_disk_leaves_no_torn_line() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root to mount a small tmpfs");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let fs_dir = tmp.path().join("small");
        fs::create_dir(&fs_dir).unwrap();
        rustix::mount::mount("tmpfs", &fs_dir, "tmpfs", rustix::mount::MountFlags::empty(), Some(c"size=16k"))
            .expect("mounting a tmpfs");
        let _fs = SmallFs(fs_dir.clone());
        let filler = fs_dir.join("filler");
        fs::write(&filler, vec![0u8; 4096]).unwrap();
        let path = fs_dir.join("journal.jsonl");
        let mut j = Journal::open(&path).unwrap();
        let big = |i: usize| Record::Step {
            service: format!("svc{i}"),
            step: "chown".into(),
            ok: None,
            error: None,
            detail: serde_json::json!({"pad": "x".repeat(1500)}),
        };
        let mut appended = 0;
        let failed = (0..100).find(|i| match j.append(big(*i)) {
            Ok(_) => {
                appended += 1;
                false
            }
            Err(_) => true,
        });
        assert!(failed.is_some(), "the small filesystem filled up");
        let bytes = fs::read(&path).unwrap();
        assert!(bytes.ends_with(b"\n"), "the failed append was cut back to the last whole record");
        assert_eq!(Journal::read(&path).unwrap().len(), appended);
        // With room again, the next record follows the last whole one and the journal reads.
        fs::remove_file(&filler).unwrap();
        j.append(Record::run(RunEvent::Paused)).unwrap();
        let entries = Journal::read(&path).expect("no torn line in the middle");
        assert_eq!(entries.len(), appended + 1);
        let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=appended as u64 + 1).collect::<Vec<_>>());
    }

    #[test]
    fn a_damaged_middle_line_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("journal.jsonl");
        fs::write(&path, "garbage\n{\"seq\":1,\"ts\":\"t\",\"record\":\"run\",\"event\":\"x\"}\n").unwrap();
        assert!(matches!(Journal::read(&path), Err(StateError::Corrupt { .. })));
    }

    fn record(state: ServiceState) -> ServiceRecord {
        ServiceRecord { state, run: String::new(), compose: None, settings: None }
    }

    #[test]
    fn item04_09_runs_of_one_day_add_up_and_a_service_left_original_keeps_it_open() {
        let plan = crate::plan::Plan::parse(
            "t.toml",
            "[rollout]\nname='p'\n[service.a]\nday=1\nuser='1'\n[service.b]\nday=1\nuser='1'\n[service.c]\nday=2\nuser='1'\n",
        )
        .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let mut l = Ledger::load(tmp.path(), "p").unwrap();
        assert_eq!(l.open_services(&plan, 1).len(), 2);
        l.record_commit(1, "r1", BTreeMap::from([("a".into(), record(ServiceState::Migrated))]));
        let open = l.open_services(&plan, 1);
        assert_eq!(open.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["b"], "an --only run is not the day");
        l.record_commit(1, "r2", BTreeMap::from([("b".into(), record(ServiceState::Original))]));
        assert_eq!(l.days["1"].services["a"].state, ServiceState::Migrated, "a later run keeps a's record");
        assert_eq!(l.open_services(&plan, 1)[0].to_string(), "b (day 1) is on its original since run r2");
        l.record_commit(1, "r3", BTreeMap::from([("b".into(), record(ServiceState::Migrated))]));
        assert!(l.open_services(&plan, 1).is_empty());
        l.save(tmp.path()).unwrap();
        let back = Ledger::load(tmp.path(), "p").unwrap();
        assert!(back.open_services(&plan, 1).is_empty());
        assert_eq!(back.days["1"].services["a"].run, "r1");
        assert_eq!(mode(&Ledger::path(tmp.path())), 0o600);
    }

    #[test]
    fn a_ledger_of_the_earlier_format_loads() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(
            Ledger::path(tmp.path()),
            r#"{"plan":"p","days":{"1":{"run":"day1-x","committed":"t","services":{"a":{"state":"migrated"}}}}}"#,
        )
        .unwrap();
        let l = Ledger::load(tmp.path(), "p").unwrap();
        assert_eq!(l.days["1"].services["a"].run, "day1-x");
        assert_eq!(l.service("a").unwrap().state, ServiceState::Migrated);
    }

    #[test]
    fn item18_an_existing_state_dir_keeps_its_mode_and_created_ones_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let shared = tmp.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        let pd = PlanDir::new(&shared, "p");
        let run = RunDir::create(&pd, "day1-x", "").unwrap();
        assert_eq!(fs::metadata(&shared).unwrap().permissions().mode() & 0o7777, 0o1777, "left as it was");
        assert_eq!(mode(&pd.dir), 0o700);
        assert_eq!(mode(&run.dir), 0o700);
        let deep = tmp.path().join("x/y/z");
        private_dir(&deep).unwrap();
        for d in ["x", "x/y", "x/y/z"] {
            assert_eq!(mode(&tmp.path().join(d)), 0o700, "{d}");
        }
    }

    #[test]
    fn a_second_lock_names_the_first_holder() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(!Lock::is_held(tmp.path()));
        let held = Lock::acquire(tmp.path(), "apply").unwrap();
        let before = fs::read(tmp.path().join(".lock")).unwrap();
        assert!(Lock::is_held(tmp.path()));
        assert_eq!(fs::read(tmp.path().join(".lock")).unwrap(), before, "looking changes nothing");
        match Lock::acquire(tmp.path(), "resume") {
            Err(StateError::Locked { holder, .. }) => {
                assert!(holder.contains(&format!("pid {}", std::process::id())), "{holder}")
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(held);
        assert!(!Lock::is_held(tmp.path()), "released with its holder");
    }
}
