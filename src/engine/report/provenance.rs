//! Where a report comes from (SPEC §12): the daemon it read, the machine unroot ran on,
//! unroot's version, the plan file, the runs read with who ran each and where, and the
//! benchmark edition its CIS ids follow. The time it was made is the report's `generated`,
//! said once.

use std::path::Path;

use serde::Serialize;

use crate::docker::DaemonInfo;
use crate::engine::findings::CIS_EDITION;
use crate::engine::runs::RunView;
use crate::model::plan::Plan;
use crate::state::Record;

/// The provenance block of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    pub daemon: Daemon,
    /// The machine unroot ran on (its node name), which may not be the daemon's.
    pub host: String,
    pub unroot_version: String,
    pub plan: PlanFile,
    /// The runs of the plan read, oldest first.
    pub runs: Vec<RunRead>,
    /// The CIS Docker Benchmark edition the report's CIS ids follow.
    pub benchmark: &'static str,
}

/// The daemon the report read, as it names itself (`GET /info`, `GET /version`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Daemon {
    pub id: String,
    pub name: String,
    pub engine_version: String,
    /// The API version negotiated with it.
    pub api_version: String,
    /// Where unroot found it (`unix:///var/run/docker.sock`, `ssh://…`).
    pub endpoint: String,
}

/// The plan file the report was made of.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanFile {
    /// As given on the command line.
    pub path: String,
    pub absolute_path: String,
    /// sha256 of the file's bytes as read for this report (hex): a run's journal header
    /// records the same of the plan it applied.
    pub sha256: String,
}

/// A run read, with who ran it and where as its journal header records them (`None`: not
/// recorded, by a version of unroot that did not record them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRead {
    pub run: String,
    pub day: u32,
    pub user: Option<String>,
    pub host: Option<String>,
}

impl Provenance {
    /// The provenance of a report of `plan` read from `daemon` on the machine called `host`,
    /// with the runs of `views`.
    pub fn of(daemon: &DaemonInfo, host: String, plan: &Plan, views: &[RunView]) -> Provenance {
        Provenance {
            daemon: Daemon {
                id: daemon.id.clone(),
                name: daemon.name.clone(),
                engine_version: daemon.server_version.clone(),
                api_version: daemon.api_version.clone(),
                // A password in the address is never shown.
                endpoint: crate::docker::ssh::shown(&daemon.address),
            },
            host,
            unroot_version: env!("CARGO_PKG_VERSION").to_string(),
            plan: PlanFile {
                path: plan.source.name.clone(),
                absolute_path: absolute(Path::new(&plan.source.name)),
                sha256: plan.sha256.clone(),
            },
            runs: views.iter().map(run_read).collect(),
            benchmark: CIS_EDITION,
        }
    }
}

/// `path` absolute and without links; as joined to the working directory when it cannot
/// be resolved (it went away meanwhile).
fn absolute(path: &Path) -> String {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// A run with who ran it and where, from its journal's header.
fn run_read(view: &RunView) -> RunRead {
    let recorded = |s: &String| Some(s.clone()).filter(|s| !s.is_empty());
    let (user, host) = match view.entries.first().map(|e| &e.record) {
        Some(Record::Header { user, host, .. }) => (recorded(user), recorded(host)),
        _ => (None, None),
    };
    RunRead { run: view.id.clone(), day: view.day, user, host }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::plan::OnFailure;
    use crate::state::{Journal, PlanDir, RunDir};

    /// A run of day `day` whose header records `user` and `host` (empty: not recorded).
    fn run(plan_dir: &PlanDir, id: &str, day: u32, user: &str, host: &str) -> RunView {
        let run = RunDir::create(plan_dir, id, "[rollout]\n").unwrap();
        let mut journal = Journal::open(&run.journal_path()).unwrap();
        journal
            .append(Record::Header {
                run: id.into(),
                plan: "shop".into(),
                plan_sha256: String::new(),
                day,
                waves: Vec::new(),
                on_failure: OnFailure::RollbackDay,
                version: "0.1.0".into(),
                plan_path: String::new(),
                user: user.into(),
                host: host.into(),
            })
            .unwrap();
        RunView::load(plan_dir, id).unwrap()
    }

    #[test]
    fn provenance_names_the_daemon_the_plan_file_and_who_ran_each_run() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("shop.toml");
        let text = "[rollout]\nname = \"shop\"\n[service.db]\nday = 1\nuser = \"999\"\n";
        std::fs::write(&path, text).unwrap();
        let plan = Plan::load(&path).unwrap();
        let plan_dir = PlanDir::new(&tmp.path().join("state"), "shop");
        let views =
            [run(&plan_dir, "day1-a", 1, "root (sudo from alice)", "db-1"), run(&plan_dir, "day1-b", 1, "", "")];
        let daemon = DaemonInfo {
            address: "unix:///var/run/docker.sock".into(),
            api_version: "1.47".into(),
            server_version: "27.3.1".into(),
            remaps_users: false,
            id: "ABCD:EFGH".into(),
            name: "docker-1".into(),
        };
        let p = Provenance::of(&daemon, "ops-1".into(), &plan, &views);
        let want = Daemon {
            id: "ABCD:EFGH".into(),
            name: "docker-1".into(),
            engine_version: "27.3.1".into(),
            api_version: "1.47".into(),
            endpoint: "unix:///var/run/docker.sock".into(),
        };
        assert_eq!(p.daemon, want);
        assert_eq!((p.host.as_str(), p.benchmark), ("ops-1", CIS_EDITION));
        assert_eq!(p.unroot_version, env!("CARGO_PKG_VERSION"));
        use sha2::Digest;
        let sha256 = hex::encode(sha2::Sha256::digest(std::fs::read(&path).unwrap()));
        let absolute = std::fs::canonicalize(&path).unwrap().display().to_string();
        assert_eq!(p.plan, PlanFile { path: path.display().to_string(), absolute_path: absolute, sha256 });
        let recorded = |s: &str| Some(s.to_string());
        assert_eq!(
            p.runs,
            [
                RunRead {
                    run: "day1-a".into(),
                    day: 1,
                    user: recorded("root (sudo from alice)"),
                    host: recorded("db-1")
                },
                RunRead { run: "day1-b".into(), day: 1, user: None, host: None },
            ]
        );
    }

    #[test]
    fn a_relative_plan_path_is_made_absolute_even_when_the_file_is_gone() {
        let gone = absolute(Path::new("no/such/plan.toml"));
        assert!(Path::new(&gone).is_absolute() && gone.ends_with("no/such/plan.toml"), "{gone}");
    }
}
