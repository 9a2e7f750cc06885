//! The append-only journal of a run, its typed records, and the run states read from it.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{StateError, io, now_rfc3339};
use crate::model::plan::OnFailure;

/// `on_failure` in a header as journals have always spelled it: `RollbackDay`,
/// `RollbackService`, `Pause` (the plan's kebab-case spelling is read too).
mod on_failure_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::OnFailure;

    pub fn serialize<S: Serializer>(v: &OnFailure, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match v {
            OnFailure::RollbackDay => "RollbackDay",
            OnFailure::RollbackService => "RollbackService",
            OnFailure::Pause => "Pause",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OnFailure, D::Error> {
        match String::deserialize(d)?.as_str() {
            "RollbackDay" | "rollback-day" => Ok(OnFailure::RollbackDay),
            "RollbackService" | "rollback-service" => Ok(OnFailure::RollbackService),
            "Pause" | "pause" => Ok(OnFailure::Pause),
            other => Err(serde::de::Error::custom(format!("unknown on_failure {other:?}"))),
        }
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
        #[serde(with = "on_failure_name")]
        on_failure: OnFailure,
        version: String,
        /// The plan file as given to apply (absolute), to tell when it changed since.
        #[serde(default)]
        plan_path: String,
        /// Who ran it: the login name of the real uid, and who ran sudo when sudo started
        /// unroot (`root (sudo from alice)`); see [`super::operator`]. Empty: not recorded
        /// (journals written before it was).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        user: String,
        /// The machine it ran on: the kernel's node name. Empty: not recorded.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        host: String,
    },
    /// A step of one service starts (`ok` absent) or ends (`ok` set).
    Step {
        service: String,
        step: Step,
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
        /// Why a rollback starts (absent on other events, and in journals written before
        /// this field existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<Cause>,
    },
}

/// Why a run, or some services of it, are rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// A step of a service failed and `on_failure` rolls the day back.
    StepFailed,
    /// Ctrl-C or SIGTERM stopped the day.
    Interrupted,
    /// The operator ran `unroot rollback`.
    Operator,
    /// `resume` found the day can no longer be finished.
    CannotFinish,
    /// `resume` continues a rollback begun earlier.
    Continued,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::StepFailed => "step-failed",
            Cause::Interrupted => "interrupted",
            Cause::Operator => "operator",
            Cause::CannotFinish => "cannot-finish",
            Cause::Continued => "continued",
        }
    }
}

impl Record {
    /// A run-level record without detail.
    pub fn run(event: RunEvent) -> Record {
        Record::Run { event, detail: None, services: Vec::new(), cause: None }
    }

    /// A run-level record with a detail for people.
    pub fn run_with(event: RunEvent, detail: impl Into<String>) -> Record {
        Record::Run { event, detail: Some(detail.into()), services: Vec::new(), cause: None }
    }

    /// A rollback starts, for `cause`, of `services` (empty: every service the run touched).
    pub fn rollback(event: RunEvent, cause: Cause, detail: Option<String>, services: Vec<String>) -> Record {
        Record::Run { event, detail, services, cause: Some(cause) }
    }
}

/// The steps of a service's migration (SPEC §3), its commit, and its restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Inspect,
    Stop,
    Rename,
    Chown,
    Create,
    /// A Swarm service's spec updated to the planned one.
    Update,
    Health,
    Commit,
    Restore,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Inspect => "inspect",
            Step::Stop => "stop",
            Step::Rename => "rename",
            Step::Chown => "chown",
            Step::Create => "create",
            Step::Update => "update",
            Step::Health => "health",
            Step::Commit => "commit",
            Step::Restore => "restore",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
            match step {
                Step::Inspect if !order.contains(service) => order.push(service.clone()),
                Step::Chown => {
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

/// What unroot reads back from a step record's `detail`, typed; the rest of the detail is
/// for people (ids, notes, counts). The one reader of those keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepDetail {
    /// `inspect`: the user the original was configured with (`""`: the image's); `create`:
    /// the user its replacement is created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `inspect`: the uids its processes ran as before the change; absent when they could
    /// not be listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_uids: Option<Vec<u32>>,
    /// A Swarm `update`: the manager's `UpdatedAt` of the service before the write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Journaled only to say the step did not start (Ctrl-C came first): nothing of it ran.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_started: bool,
}

impl StepDetail {
    /// The typed part of a step record's `detail` (nothing of a detail that is not an
    /// object, or whose keys hold other types than unroot writes).
    pub fn of(detail: &serde_json::Value) -> StepDetail {
        fn field<T: serde::de::DeserializeOwned>(detail: &serde_json::Value, key: &str) -> Option<T> {
            serde_json::from_value(detail.get(key)?.clone()).ok()
        }
        StepDetail {
            user: field(detail, "user"),
            process_uids: field(detail, "process_uids"),
            since: field(detail, "since"),
            not_started: field(detail, "not_started").unwrap_or(false),
        }
    }

    /// The intent of a step journaled only to say it did not start.
    pub fn not_started() -> serde_json::Value {
        serde_json::to_value(StepDetail { not_started: true, ..StepDetail::default() }).expect("a detail serializes")
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_detail_reads_the_keys_unroot_reads_back_and_nothing_else() {
        let d = StepDetail::of(&serde_json::json!({
            "id": "abc", "user": "", "process_uids": [0, 999], "since": "2026-12-01T00:00:00Z", "note": "x"
        }));
        let want = StepDetail {
            user: Some(String::new()),
            process_uids: Some(vec![0, 999]),
            since: Some("2026-12-01T00:00:00Z".into()),
            not_started: false,
        };
        assert_eq!(d, want);
        assert!(StepDetail::of(&serde_json::json!({"not_started": true})).not_started);
        assert_eq!(StepDetail::of(&serde_json::Value::Null), StepDetail::default());
        let odd = StepDetail::of(&serde_json::json!({"user": 5, "process_uids": [0], "since": "t"}));
        assert_eq!(
            (odd.user, odd.process_uids, odd.since.as_deref()),
            (None, Some(vec![0]), Some("t")),
            "each key alone"
        );
    }

    #[test]
    fn journal_appends_numbered_records_and_ignores_a_torn_tail() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("journal.jsonl");
        let mut j = Journal::open(&path).unwrap();
        j.append(Record::run(RunEvent::Started)).unwrap();
        j.append(Record::Step { service: "db".into(), step: Step::Stop, ok: None, error: None, detail: Value::Null })
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

    #[test]
    fn a_damaged_middle_line_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("journal.jsonl");
        fs::write(&path, "garbage\n{\"seq\":1,\"ts\":\"t\",\"record\":\"run\",\"event\":\"x\"}\n").unwrap();
        assert!(matches!(Journal::read(&path), Err(StateError::Corrupt { .. })));
    }

    /// A tmpfs of a few pages, unmounted when dropped.
    struct SmallFs(PathBuf);

    impl Drop for SmallFs {
        fn drop(&mut self) {
            let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
        }
    }

    #[test]
    fn a_journal_write_that_fills_the_disk_leaves_no_torn_line() {
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
            step: Step::Chown,
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
    fn a_header_keeps_the_on_failure_spelling_journals_always_had() {
        let text = r#"{"record":"header","run":"r","plan":"p","plan_sha256":"x","day":1,"waves":[["a"]],"on_failure":"RollbackService","version":"0.1.0","plan_path":""}"#;
        let header: Record = serde_json::from_str(text).unwrap();
        assert!(matches!(header, Record::Header { on_failure: OnFailure::RollbackService, .. }));
        assert_eq!(serde_json::to_string(&header).unwrap(), text);
        let kebab = text.replace("RollbackService", "pause");
        assert!(matches!(serde_json::from_str(&kebab).unwrap(), Record::Header { on_failure: OnFailure::Pause, .. }));
        assert!(serde_json::from_str::<Record>(&text.replace("RollbackService", "Retry")).is_err());
    }

    #[test]
    fn a_header_says_who_ran_the_run_and_an_older_one_reads_as_not_recorded() {
        let older = r#"{"record":"header","run":"r","plan":"p","plan_sha256":"x","day":1,"waves":[],"on_failure":"Pause","version":"0.1.0"}"#;
        let header: Record = serde_json::from_str(older).unwrap();
        assert!(matches!(&header, Record::Header { user, host, .. } if user.is_empty() && host.is_empty()));
        assert!(!serde_json::to_string(&header).unwrap().contains("user"), "nothing is made up for it");
        let Record::Header { run, plan, plan_sha256, day, waves, on_failure, version, plan_path, .. } = header else {
            unreachable!()
        };
        let (user, host) = ("root (sudo from alice)".to_string(), "db-host-1".to_string());
        let newer = Record::Header { run, plan, plan_sha256, day, waves, on_failure, version, plan_path, user, host };
        let text = serde_json::to_string(&newer).unwrap();
        assert!(text.contains(r#""user":"root (sudo from alice)","host":"db-host-1""#), "{text}");
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), newer);
    }
}
