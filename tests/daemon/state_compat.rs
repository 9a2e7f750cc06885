//! A state directory written by an earlier unroot (tests/fixtures/state-v0: the ledger and
//! journals as 0.1.0 wrote them before the hardening) still reads with `status`, still
//! refuses a new apply while its run is open, and `resume` finishes that run.

use std::path::Path;

use crate::common::{TestEnv, image, inspect, process_uids, repo_path, unroot_in};
use serde_json::Value;

/// Copies `from` to `to`, replacing the placeholders in every file.
fn copy_filled(from: &Path, to: &Path, fill: &[(&str, &str)]) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_filled(&e.path(), &target, fill);
        } else {
            let mut text = std::fs::read_to_string(e.path()).unwrap();
            for (k, v) in fill {
                text = text.replace(k, v);
            }
            std::fs::write(&target, text).unwrap();
        }
    }
}

#[test]
fn a_state_directory_of_the_earlier_format_reads_and_resumes() {
    let env = TestEnv::new("compat");
    let svc = env.run("svc", &["--init", &image("busybox"), "sleep", "1000000"]);
    let old = env.name("old");
    let dir = env.tempdir();
    let state = dir.path().join("state");
    copy_filled(&repo_path("tests/fixtures/state-v0"), &state, &[("@OLD@", &old), ("@SVC@", &svc)]);
    std::fs::copy(state.join("e2e/runs/day2-20261102T000000/plan.toml"), dir.path().join("plan.toml")).unwrap();

    let st = unroot_in(dir.path(), &["status", "--json", "--state-dir", "state"]);
    assert_eq!(st.code, Some(0), "{}", st.stderr);
    let v: Value = serde_json::from_str(&st.stdout).unwrap();
    assert_eq!(v["runs"][0]["state"], "committed");
    assert_eq!(v["runs"][0]["services"][0]["state"], "migrated");
    assert_eq!(v["runs"][1]["state"], "interrupted");
    assert_eq!(v["runs"][1]["services"][0]["step"], "inspect");

    let refused = unroot_in(dir.path(), &["apply", "plan.toml", "--day", "2", "--yes", "--state-dir", "state"]);
    assert_eq!(refused.code, Some(5), "{}", refused.stderr);
    assert!(refused.stderr.contains("unroot resume day2-20261102T000000"), "{}", refused.stderr);

    let resume = unroot_in(dir.path(), &["resume", "--state-dir", "state"]);
    assert_eq!(resume.code, Some(0), "{}{}", resume.stdout, resume.stderr);
    assert_eq!(inspect(&svc)["Config"]["User"], "1000:1000");
    assert_eq!(process_uids(&svc), [1000]);
    let ledger: Value = serde_json::from_slice(&std::fs::read(state.join("e2e/ledger.json")).unwrap()).unwrap();
    assert_eq!(ledger["days"]["1"]["services"][&old]["state"], "migrated", "the earlier day's record is kept");
    assert_eq!(ledger["days"]["1"]["services"][&old]["run"], "day1-20261101T000000");
    assert_eq!(ledger["days"]["2"]["services"][&svc]["state"], "migrated");
    let st: Value =
        serde_json::from_str(&unroot_in(dir.path(), &["status", "--json", "--state-dir", "state"]).stdout).unwrap();
    assert_eq!(st["runs"][1]["state"], "committed");
}

// A state directory as unroot writes it today (tests/fixtures/state-v1, see its README): a
// committed day, a container's day and a Swarm service's day killed after their chown step.
// It reads; the container's run resumes and rolls back on the shared daemon (the Swarm run's
// are in src/engine/executor/tests_compat.rs, against the fake manager).

/// Its generator (ignored).
#[path = "state_compat/generate_v1.rs"]
mod generate_v1;
/// The state-v1 fixture: a state directory as unroot wrote it at commit f84592b.
#[path = "state_compat/v1.rs"]
mod v1;

/// `uid:gid path` of everything in the service's volume, and the data its files hold.
fn volume_of(env: &TestEnv, c: &v1::AtCrash) -> (Vec<String>, String) {
    let mount = format!("{}:/d", c.volume);
    (crate::common::owners(env, &c.volume), crate::common::in_volume(env, &mount, "cat /d/f /d/d/g"))
}

/// What `path` (the ledger of a plan folder) says of `service` on `day`: its state and run.
fn ledger_says(path: &Path, day: &str, service: &str) -> (Value, Value) {
    let ledger: Value = serde_json::from_slice(&std::fs::read(path.join("ledger.json")).unwrap()).unwrap();
    let rec = &ledger["days"][day]["services"][service];
    (rec["state"].clone(), rec["run"].clone())
}

/// `unroot status --json` of run `run` in `DIR/state`.
fn status_of(dir: &Path, run: &str) -> Value {
    let st = unroot_in(dir, &["status", run, "--json", "--state-dir", "state"]);
    assert_eq!(st.code, Some(0), "{}", st.stderr);
    serde_json::from_str::<Value>(&st.stdout).unwrap()["runs"][0].take()
}

#[test]
fn a_state_directory_of_todays_format_reads_its_committed_and_interrupted_runs() {
    // `status` reads files only: no daemon, the placeholders filled with plain names.
    let dir = tempfile::tempdir().unwrap();
    let fixture = repo_path(v1::FIXTURE).join("state");
    v1::copy_replacing(&fixture, &dir.path().join("state"), &[("@TEST@".into(), "t".into())]);
    let st = unroot_in(dir.path(), &["status", "--json", "--state-dir", "state"]);
    assert_eq!(st.code, Some(0), "{}", st.stderr);
    let v: Value = serde_json::from_str(&st.stdout).unwrap();
    let [day1, day2] = [0, 1].map(|i| v1::runs_of(&fixture, v1::CONTAINER_PLAN)[i].clone());
    let swarm = v1::runs_of(&fixture, v1::SWARM_PLAN).remove(0);
    let run = |id: &str| v["runs"].as_array().unwrap().iter().find(|r| r["run"] == id).unwrap().clone();
    let service =
        |name: &str, step: &str, state: &str| serde_json::json!([{"name": name, "step": step, "state": state}]);
    assert_eq!(v["runs"].as_array().unwrap().len(), 3, "{v:#}");
    for (id, plan, day, state, services) in [
        (&day1, "compat", 1, "committed", service("t-old", "commit", "migrated")),
        (&day2, "compat", 2, "interrupted", service("t-svc", "chown", "in-progress")),
        (&swarm, "compat-swarm", 1, "interrupted", service("web", "chown", "in-progress")),
    ] {
        let r = run(id);
        assert_eq!((&r["plan"], &r["day"], &r["state"]), (&plan.into(), &day.into(), &state.into()), "{r:#}");
        assert_eq!(r["services"], services, "{r:#}");
    }
}

#[test]
fn a_container_run_of_todays_format_killed_after_its_chown_resumes_to_its_planned_user() {
    let env = TestEnv::new("compat-v1-resume");
    let c = v1::at_crash(&env);
    let dir = c.dir.path();
    // The open run keeps its plan from a new apply, and says how to continue it.
    let refused = unroot_in(dir, &["apply", "plan.toml", "--day", "2", "--yes", "--state-dir", "state"]);
    assert_eq!(refused.code, Some(5), "{}", refused.stderr);
    assert!(refused.stderr.contains(&format!("unroot resume {}", c.run)), "{}", refused.stderr);

    let resume = unroot_in(dir, &["resume", &c.run, "--state-dir", "state"]);
    assert_eq!(resume.code, Some(0), "{}{}", resume.stdout, resume.stderr);
    assert_eq!(inspect(&c.svc)["Config"]["User"], "1000:1000");
    assert_eq!(process_uids(&c.svc), [1000]);
    assert!(!crate::common::exists(&format!("{}.unroot-{}", c.svc, c.run)), "the parked original is removed");
    let (owners, data) = volume_of(&env, &c);
    assert!(owners.len() == 4 && owners.iter().all(|o| o.starts_with("1000:1000 ")), "{owners:?}");
    assert_eq!(data, "kept\nx");
    let plan_dir = c.state.join(v1::CONTAINER_PLAN);
    assert_eq!(ledger_says(&plan_dir, "2", &c.svc), ("migrated".into(), c.run.as_str().into()));
    let old = env.name("old");
    assert_eq!(ledger_says(&plan_dir, "1", &old), ("migrated".into(), c.day1_run.as_str().into()), "day 1 is kept");
    assert_eq!(status_of(dir, &c.run)["state"], "committed");
    assert_eq!(status_of(dir, &c.swarm_run)["state"], "interrupted", "the other plan's run is left alone");
}

#[test]
fn a_container_run_of_todays_format_killed_after_its_chown_rolls_back_to_root_with_its_owners() {
    let env = TestEnv::new("compat-v1-rollback");
    let c = v1::at_crash(&env);
    let dir = c.dir.path();
    let rollback = unroot_in(dir, &["rollback", &c.run, "--state-dir", "state"]);
    assert_eq!(rollback.code, Some(0), "{}{}", rollback.stdout, rollback.stderr);
    let svc = inspect(&c.svc);
    assert_eq!((&svc["Config"]["User"], &svc["State"]["Running"]), (&"".into(), &true.into()));
    assert_eq!(process_uids(&c.svc), [0]);
    let (owners, data) = volume_of(&env, &c);
    assert_eq!(owners, ["0:0 /d", "0:0 /d/d", "0:0 /d/d/g", "0:0 /d/f"]);
    assert_eq!(data, "kept\nx");
    let plan_dir = c.state.join(v1::CONTAINER_PLAN);
    assert_eq!(ledger_says(&plan_dir, "2", &c.svc), (Value::Null, Value::Null), "day 2 is not applied");
    let old = env.name("old");
    assert_eq!(ledger_says(&plan_dir, "1", &old), ("migrated".into(), c.day1_run.as_str().into()), "day 1 is kept");
    let st = status_of(dir, &c.run);
    assert_eq!(st["state"], "rolled-back");
    assert_eq!(st["services"], serde_json::json!([{"name": c.svc, "step": "restore", "state": "original"}]));
}
