//! The folders of a plan and of one run: journal, plan copy, per-service backups.

use std::collections::BTreeMap;
use std::fs::{self};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{StateError, io, load_json, private_dir, write_private};
use crate::model::workload::WorkloadKind;

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

    /// Saves a service's original inspect (0600), tagged with its kind:
    /// `{"kind": "container"|"service", "inspect": {…}}`.
    pub fn save_original(&self, service: &str, kind: WorkloadKind, inspect: &Value) -> Result<(), StateError> {
        let saved = serde_json::json!({"kind": kind, "inspect": inspect});
        let bytes = serde_json::to_vec_pretty(&saved).expect("inspect serializes");
        write_private(&self.service_dir(service)?.join("original.json"), &bytes)
    }

    /// The original saved by [`RunDir::save_original`]; `None` before the inspect step. A file
    /// written before originals were tagged (the bare inspect) comes back without a kind.
    ///
    /// Errors: the file cannot be read or is not JSON.
    pub fn load_original(&self, service: &str) -> Result<Option<SavedOriginal>, StateError> {
        let path = self.dir.join("services").join(service).join("original.json");
        let Some(v) = load_json::<Value>(&path)? else { return Ok(None) };
        Ok(Some(SavedOriginal::read(v)))
    }

    /// Saves the spec a Swarm service is updated to (`planned.json`, 0600: it holds the
    /// plan's environment values), before the update writes it: what unroot wrote is then
    /// known, and a later change by someone else can be told from it.
    pub fn save_planned_spec(&self, service: &str, spec: &Value) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(spec).expect("spec serializes");
        write_private(&self.service_dir(service)?.join("planned.json"), &bytes)
    }

    /// The spec saved by [`RunDir::save_planned_spec`]; `None` before the update (or in a
    /// run of an earlier version).
    pub fn load_planned_spec(&self, service: &str) -> Result<Option<Value>, StateError> {
        load_json(&self.dir.join("services").join(service).join("planned.json"))
    }

    /// Saves a service's ownership manifest (`owners`, 0600).
    pub fn save_owners(&self, service: &str, manifest: &crate::model::owner::Manifest) -> Result<(), StateError> {
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

    /// The log saved by [`RunDir::save_failure_log`]; `None` when none was saved.
    pub fn load_failure_log(&self, service: &str) -> Result<Option<String>, StateError> {
        let path = self.dir.join("services").join(service).join("failure.log");
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Saves the mounts a Swarm service's manifests are numbered by (`owners/mounts.json`,
    /// 0600), before the first manifest: a rollback reads them without the plan.
    pub fn save_swarm_mounts(&self, service: &str, mounts: &Value) -> Result<(), StateError> {
        let dir = self.service_dir(service)?.join("owners");
        private_dir(&dir)?;
        write_private(&dir.join("mounts.json"), &serde_json::to_vec_pretty(mounts).expect("mounts serialize"))
    }

    pub fn load_swarm_mounts(&self, service: &str) -> Result<Option<Value>, StateError> {
        load_json(&self.dir.join("services").join(service).join("owners").join("mounts.json"))
    }

    /// Saves what one node's scan of a Swarm service's mount printed, durable (0600, synced)
    /// before any node's copy of that mount changes: `owners/<node-id>/<mount>`.
    pub fn save_node_manifest(&self, service: &str, node: &str, mount: usize, scan: &[u8]) -> Result<(), StateError> {
        let dir = self.service_dir(service)?.join("owners");
        private_dir(&dir)?;
        let dir = dir.join(safe_name(node));
        private_dir(&dir)?;
        write_private(&dir.join(mount.to_string()), scan)
    }

    /// Records that node `node`'s copy of mount `mount` has its owners back (an empty
    /// `owners/<node-id>/<mount>.restored`, synced), so a restore retried while another node
    /// is still down does not stop the service for it again.
    pub fn mark_node_restored(&self, service: &str, node: &str, mount: usize) -> Result<(), StateError> {
        let dir = self.service_dir(service)?.join("owners").join(safe_name(node));
        private_dir(&dir)?;
        write_private(&dir.join(format!("{mount}.restored")), b"")
    }

    /// Whether [`RunDir::mark_node_restored`] recorded that node's copy.
    pub fn node_restored(&self, service: &str, node: &str, mount: usize) -> bool {
        let path = self.dir.join("services").join(service).join("owners").join(safe_name(node));
        path.join(format!("{mount}.restored")).exists()
    }

    /// Forgets every node's restore of a service (its owners are about to change again).
    pub fn clear_restored(&self, service: &str) -> Result<(), StateError> {
        let dir = self.dir.join("services").join(service).join("owners");
        let Ok(nodes) = fs::read_dir(&dir) else { return Ok(()) };
        for node in nodes.flatten() {
            for f in fs::read_dir(node.path()).into_iter().flatten().flatten() {
                if f.file_name().to_string_lossy().ends_with(".restored") {
                    fs::remove_file(f.path()).map_err(|e| StateError::Io { path: f.path(), source: e })?;
                }
            }
        }
        Ok(())
    }

    /// The manifests saved for a Swarm service's mount `mount`, by node id.
    pub fn load_node_manifests(&self, service: &str, mount: usize) -> Result<BTreeMap<String, Vec<u8>>, StateError> {
        let dir = self.dir.join("services").join(service).join("owners");
        let mut out = BTreeMap::new();
        let nodes = match fs::read_dir(&dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(StateError::Io { path: dir, source: e }),
        };
        for node in nodes {
            let node = node.map_err(|e| StateError::Io { path: dir.clone(), source: e })?;
            if !node.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = node.path().join(mount.to_string());
            match fs::read(&path) {
                Ok(bytes) => {
                    out.insert(node.file_name().to_string_lossy().into_owned(), bytes);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StateError::Io { path, source: e }),
            }
        }
        Ok(out)
    }

    pub fn load_owners(&self, service: &str) -> Result<Option<crate::model::owner::Manifest>, StateError> {
        load_json(&self.dir.join("services").join(service).join("owners"))
    }
}

/// A node id as a file name: Swarm's ids are letters and digits; anything else is replaced.
fn safe_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// A service's original as a run saved it: its kind and Docker's inspect of it. `kind` is
/// `None` for a file written before originals were tagged (the bare inspect): what it is
/// is then told from Docker's JSON, by `docker::Original::saved`.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedOriginal {
    pub kind: Option<WorkloadKind>,
    pub inspect: Value,
}

impl SavedOriginal {
    /// The saved file's contents: tagged, or (written before the tag) a bare inspect.
    fn read(v: Value) -> SavedOriginal {
        if let (Some(kind), Some(inspect)) = (v.get("kind"), v.get("inspect"))
            && let Ok(kind) = serde_json::from_value::<WorkloadKind>(kind.clone())
        {
            return SavedOriginal { kind: Some(kind), inspect: inspect.clone() };
        }
        SavedOriginal { kind: None, inspect: v }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Journal;
    use crate::state::file_mode as mode;

    #[test]
    fn an_original_reads_back_with_its_kind_and_an_untagged_one_without() {
        let tmp = tempfile::tempdir().unwrap();
        let pd = PlanDir::new(&tmp.path().join("rollback"), "p");
        let run = RunDir::create(&pd, "day1-20260101T000000", "[rollout]").unwrap();
        let svc = serde_json::json!({"ID": "s1", "Version": {"Index": 3}, "Spec": {"Name": "web"}});
        run.save_original("web", WorkloadKind::Service, &svc).unwrap();
        let saved = run.load_original("web").unwrap().unwrap();
        assert_eq!(saved, SavedOriginal { kind: Some(WorkloadKind::Service), inspect: svc.clone() });
        // As runs wrote it before the tag: the bare inspect, read by its shape.
        let container = serde_json::json!({"Id": "c1", "Config": {"User": ""}, "State": {}});
        for (name, v) in [("web", &svc), ("db", &container)] {
            std::fs::create_dir_all(run.dir.join("services").join(name)).unwrap();
            std::fs::write(run.dir.join("services").join(name).join("original.json"), v.to_string()).unwrap();
            assert_eq!(run.load_original(name).unwrap().unwrap(), SavedOriginal { kind: None, inspect: v.clone() });
        }
        assert_eq!(run.load_original("none").unwrap(), None);
    }

    #[test]
    fn run_folders_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("rollback");
        let pd = PlanDir::new(&state, "p");
        let run = RunDir::create(&pd, "day1-20260101T000000", "[rollout]").unwrap();
        run.save_original("db", WorkloadKind::Container, &serde_json::json!({"Config": {"Env": ["PW=x"]}})).unwrap();
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&run.dir), 0o700);
        assert_eq!(mode(&run.dir.join("services/db")), 0o700);
        assert_eq!(mode(&run.dir.join("services/db/original.json")), 0o600);
        assert_eq!(mode(&run.dir.join("plan.toml")), 0o600);
        run.save_node_manifest("web", "node1", 0, b"C 0:0 ./a\nR 0:0\nEND\n").unwrap();
        assert_eq!(mode(&run.dir.join("services/web/owners/node1")), 0o700);
        assert_eq!(mode(&run.dir.join("services/web/owners/node1/0")), 0o600);
        let saved = run.load_node_manifests("web", 0).unwrap();
        assert_eq!(saved.get("node1").map(Vec::as_slice), Some(&b"C 0:0 ./a\nR 0:0\nEND\n"[..]));
        assert!(run.load_node_manifests("web", 1).unwrap().is_empty());
        assert_eq!(pd.runs().unwrap(), Vec::<String>::new(), "no journal yet, no run");
        Journal::open(&run.journal_path()).unwrap();
        assert_eq!(pd.runs().unwrap(), ["day1-20260101T000000"]);
        assert_eq!(mode(&run.journal_path()), 0o600);
    }
}
