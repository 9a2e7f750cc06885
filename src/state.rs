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

/// Creates `dir` and its missing parents with mode 0700, and sets 0700 on `dir` itself
/// even when it existed.
pub fn private_dir(dir: &Path) -> Result<(), StateError> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))
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
        event: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
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
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            file.set_len(keep as u64).map_err(io(path))?;
            file.sync_data().map_err(io(path))?;
        }
        Ok(Journal { path: path.to_path_buf(), file, seq, after_write: None })
    }

    /// Sets a hook run after every durable write.
    pub fn on_write(&mut self, hook: fn(u64)) {
        self.after_write = Some(hook);
    }

    /// Appends a record and fsyncs it.
    pub fn append(&mut self, record: Record) -> Result<Entry, StateError> {
        self.seq += 1;
        let entry = Entry { seq: self.seq, ts: now_rfc3339(), record };
        let mut line = serde_json::to_string(&entry).expect("records serialize");
        line.push('\n');
        self.file.write_all(line.as_bytes()).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
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

/// Applied days of a plan, with their run ids.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub plan: String,
    /// Day number (as text, for JSON) → what its commit recorded.
    pub days: BTreeMap<String, AppliedDay>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedDay {
    pub run: String,
    pub committed: String,
    /// What the commit left each service as.
    pub services: BTreeMap<String, ServiceRecord>,
}

/// One service of an applied day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// `migrated`, or `original` when rollback-service left it on its original.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<crate::compose::ComposeRef>,
    /// What the compose override sets for it (from the plan and the resolved user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<crate::compose::ServiceOverride>,
}

impl Ledger {
    pub fn path(plan_dir: &Path) -> PathBuf {
        plan_dir.join("ledger.json")
    }

    /// The ledger of a plan folder; empty when none was written yet.
    pub fn load(plan_dir: &Path, plan: &str) -> Result<Ledger, StateError> {
        Ok(load_json(&Ledger::path(plan_dir))?
            .unwrap_or_else(|| Ledger { plan: plan.to_string(), days: BTreeMap::new() }))
    }

    /// Writes the ledger by temp file, fsync and rename.
    pub fn save(&self, plan_dir: &Path) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(self).expect("ledger serializes");
        write_private(&Ledger::path(plan_dir), &bytes)
    }

    pub fn is_applied(&self, day: u32) -> bool {
        self.days.contains_key(&day.to_string())
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
    fn journal_appends_numbered_records_and_ignores_a_torn_tail() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("journal.jsonl");
        let mut j = Journal::open(&path).unwrap();
        j.append(Record::Run { event: "started".into(), detail: None }).unwrap();
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
        assert_eq!(j.append(Record::Run { event: "x".into(), detail: None }).unwrap().seq, 3);
        let seqs: Vec<u64> = Journal::read(&path).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
    }

    #[test]
    fn a_damaged_middle_line_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("journal.jsonl");
        fs::write(&path, "garbage\n{\"seq\":1,\"ts\":\"t\",\"record\":\"run\",\"event\":\"x\"}\n").unwrap();
        assert!(matches!(Journal::read(&path), Err(StateError::Corrupt { .. })));
    }

    #[test]
    fn ledger_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let mut l = Ledger::load(tmp.path(), "p").unwrap();
        assert!(!l.is_applied(1));
        l.days.insert("1".into(), AppliedDay { run: "r".into(), committed: now_rfc3339(), services: BTreeMap::new() });
        l.save(tmp.path()).unwrap();
        assert!(Ledger::load(tmp.path(), "p").unwrap().is_applied(1));
        assert_eq!(mode(&Ledger::path(tmp.path())), 0o600);
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
