//! `unroot report` on the fake: where a report comes from (SPEC §12).

use serde_json::{Value, json};
use sha2::Digest;
use unroot::docker::DockerPort;

use super::world::World;

/// A world where day 1 of plan `shop` migrated `a`.
async fn applied() -> World {
    let w = World::new();
    w.run("a", json!({}));
    w.plan("shop", "[service.a]\nday = 1\nuser = \"1000\"\n");
    w.unroot(&["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"]).await.exits(0);
    w
}

#[tokio::test(start_paused = true)]
async fn the_report_names_the_daemon_the_plan_file_and_who_ran_each_run() {
    let w = applied().await;
    let ran = w.unroot(&["report", "plan.toml", "--format", "json", "--state-dir", "state"]).await;
    ran.exits(0);
    let report: Value = serde_json::from_str(&ran.stdout).unwrap();
    let p = &report["provenance"];
    let daemon = w.fake.daemon();
    assert_eq!(p["daemon"]["id"], daemon.id.as_str());
    assert_eq!(p["daemon"]["name"], daemon.name.as_str());
    assert_eq!(p["daemon"]["engine_version"], daemon.server_version.as_str());
    assert_eq!(p["daemon"]["api_version"], daemon.api_version.as_str());
    assert_eq!(p["daemon"]["endpoint"], daemon.address.as_str());
    assert_eq!(p["host"], unroot::state::hostname().as_str());
    assert_eq!(p["unroot_version"], env!("CARGO_PKG_VERSION"));
    let plan = w.path("plan.toml");
    let sha256 = hex::encode(sha2::Sha256::digest(std::fs::read(&plan).unwrap()));
    assert_eq!(p["plan"]["sha256"], sha256.as_str(), "the plan file's bytes");
    let absolute = std::fs::canonicalize(&plan).unwrap();
    assert_eq!(p["plan"]["absolute_path"], absolute.display().to_string().as_str());
    let run = w.first_run().await;
    let runs = json!([{"run": run, "day": 1, "user": unroot::state::operator(), "host": unroot::state::hostname()}]);
    assert_eq!(p["runs"], runs, "as the run's journal header recorded them");
    assert_eq!(p["benchmark"], unroot::engine::findings::CIS_EDITION);
    assert!(report["generated"].is_string(), "the time of the report is said once, beside it");
}
