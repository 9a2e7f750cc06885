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

/// What `sha256sum -c FILE.sha256` checks, run in the sums file's folder: each line names a
/// file there (`<hex>  <name>`) whose bytes hash to it.
fn sha256sum_check(sums: &std::path::Path) -> Vec<String> {
    let dir = sums.parent().unwrap();
    let text = std::fs::read_to_string(sums).unwrap();
    assert!(text.ends_with('\n'));
    text.lines()
        .map(|line| {
            let (hex, name) = line.split_once("  ").expect("`<hex>  <name>`, text mode");
            assert_eq!(hex.len(), 64, "{line}");
            let got = hex::encode(sha2::Sha256::digest(std::fs::read(dir.join(name)).unwrap()));
            assert_eq!(got, hex, "{name} hashes to its line");
            name.to_string()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn out_writes_a_sha256_beside_the_report_that_sha256sum_accepts() {
    let w = applied().await;
    let args = ["report", "plan.toml", "--format", "html", "--out", "report.html", "--state-dir", "state"];
    w.unroot(&args).await.exits(0);
    let sums = w.path("report.html.sha256");
    assert_eq!(sha256sum_check(&sums), ["report.html"], "one line, naming the file as it sits beside it");
    // The tool itself agrees, when it is there.
    if let Ok(out) = std::process::Command::new("sha256sum").arg("-c").arg(&sums).current_dir(w.path("")).output() {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
    // Again: refused, both files as they were; with --force both are replaced, and agree.
    let before = (std::fs::read(w.path("report.html")).unwrap(), std::fs::read(&sums).unwrap());
    w.unroot(&args).await.exits(2);
    assert_eq!((std::fs::read(w.path("report.html")).unwrap(), std::fs::read(&sums).unwrap()), before);
    w.run("b", json!({}));
    let forced = [&args[..], &["--force"]].concat();
    w.unroot(&forced).await.exits(0);
    assert_ne!(std::fs::read(w.path("report.html")).unwrap(), before.0, "a report of the new container");
    assert_eq!(sha256sum_check(&sums), ["report.html"]);
}

#[tokio::test(start_paused = true)]
async fn a_sha256_already_there_refuses_the_report_and_nothing_is_written() {
    let w = applied().await;
    let sums = w.path("report.md.sha256");
    std::fs::write(&sums, "stale  report.md\n").unwrap();
    let ran = w.unroot(&["report", "plan.toml", "--out", "report.md", "--state-dir", "state"]).await;
    ran.exits(2);
    assert!(ran.stderr.contains("report.md.sha256 exists; nothing was written"), "{}", ran.stderr);
    assert!(!w.path("report.md").exists(), "the report is not written either");
    assert_eq!(std::fs::read_to_string(&sums).unwrap(), "stale  report.md\n");
    // The report's own file there: no sums file appears beside it.
    std::fs::remove_file(&sums).unwrap();
    std::fs::write(w.path("report.md"), "mine").unwrap();
    w.unroot(&["report", "plan.toml", "--out", "report.md", "--state-dir", "state"]).await.exits(2);
    assert!(!sums.exists());
    assert_eq!(std::fs::read_to_string(w.path("report.md")).unwrap(), "mine");
}
