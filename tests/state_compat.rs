//! A state directory written by an earlier unroot (tests/fixtures/state-v0: the ledger and
//! journals as 0.1.0 wrote them before the hardening) still reads with `status`, still
//! refuses a new apply while its run is open, and `resume` finishes that run.

mod common;

use std::path::Path;

use common::{TestEnv, image, inspect, process_uids, repo_path, unroot_in};
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

/// Its generator (ignored).
#[path = "state_compat/generate_v1.rs"]
mod generate_v1;
/// The state-v1 fixture: a state directory as unroot wrote it at commit f84592b.
#[path = "state_compat/v1.rs"]
mod v1;
