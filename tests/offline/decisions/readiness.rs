//! The readiness gate (SPEC §3 step 8) on the fake's model of Docker's health checks:
//! Docker runs a container's first check one interval after its start, so unroot runs the
//! container's own HEALTHCHECK itself from the start; a check that passed that way still
//! fails the service when Docker reports it unhealthy within `stable_for`. And what an
//! operator is shown of a replacement that failed.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::world::World;

const APPLY: [&str; 7] = ["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"];

fn plan(w: &World, stable_for: &str) {
    w.plan(
        "ready",
        &format!(
            "stable_for = \"{stable_for}\"\nhealth_timeout = \"2m\"\n[service.svc]\nday = 1\nuser = \"1000:1000\"\n"
        ),
    );
}

/// A container whose HEALTHCHECK runs `check` every `interval_s` seconds.
fn with_check(check: &str, interval_s: u64, retries: u64) -> Value {
    json!({"Config": {"Healthcheck": {"Test": ["CMD-SHELL", check], "Interval": interval_s * 1_000_000_000,
                                       "Retries": retries}}})
}

#[tokio::test(start_paused = true)]
async fn a_check_that_passes_at_once_is_not_kept_waiting_for_dockers_30s_interval() {
    let w = World::new();
    w.run("svc", with_check("test -d /proc/1", 30, 3));
    plan(&w, "2s");
    let started = tokio::time::Instant::now();
    let ran = w.unroot(&APPLY).await;
    ran.exits(0);
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "it waited {:?}", started.elapsed());
    // Docker's first check is 30 s away; the gate passed on the container's own check, which
    // unroot ran, then committed.
    let records: Vec<Value> = w.journal("ready").into_iter().filter(|r| r["service"] == "svc").collect();
    let health = records.iter().position(|r| r["step"] == "health" && r["ok"] == true).expect("health ended");
    assert_eq!(records[health]["detail"]["passed"], "healthcheck-exec", "{}", records[health]);
    let commit = records.iter().position(|r| r["step"] == "commit" && r["ok"] == true).expect("committed");
    assert!(health < commit);
    assert!(ran.stdout.contains("passed=healthcheck-exec"), "the operator sees which probe passed:\n{}", ran.stdout);
    let now = w.container("svc").unwrap();
    assert_eq!(now.configured_user(), "1000:1000");
    assert_eq!(now.0["State"]["Health"]["Status"], "starting", "Docker itself has not checked yet");
    assert_eq!(w.uids("svc"), [1000]);
}

#[tokio::test(start_paused = true)]
async fn unhealthy_from_docker_within_stable_for_rolls_back_a_check_that_passed_by_exec() {
    let w = World::new();
    // As root (the original) the check always passes; as the new user it passes once (the
    // exec unroot runs at the start) and fails from Docker's first run on.
    let check = r#"[ "$(id -u)" = 0 ] || { [ ! -e /tmp/checked ] && touch /tmp/checked; }"#;
    let original = w.run("svc", with_check(check, 1, 1));
    let checked = Mutex::new(HashSet::new());
    w.fake.with(|s| {
        s.exec_answer = Some(Box::new(move |c, _| {
            let root = c.configured_user().is_empty();
            i64::from(!(root || checked.lock().unwrap().insert(c.id().to_string())))
        }))
    });
    plan(&w, "8s");
    w.unroot(&APPLY).await.exits(3);
    let failed = w
        .journal("ready")
        .into_iter()
        .find(|r| r["service"] == "svc" && r["step"] == "health" && r["ok"] == false)
        .expect("the health step failed");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(error.contains("Docker reports it unhealthy during the stability window"), "{failed}");
    // The original is back: itself, running, as root, healthy by its check.
    let now = w.container("svc").unwrap();
    assert_eq!(now.id(), original, "the original itself");
    assert!(now.running());
    assert_eq!(now.configured_user(), "");
    assert_eq!(w.names(), ["svc"], "no parked container left");
}

#[tokio::test(start_paused = true)]
async fn a_replacement_that_fails_shows_and_keeps_the_end_of_its_log_without_secrets() {
    let w = World::new();
    let secret = "pw-9c41f7e2a8";
    w.run("app", json!({"Config": {"Env": ["PATH=/bin", format!("DB_PASSWORD={secret}")]}}));
    w.need_root(&["app"], &format!("connecting with {secret}\n"));
    w.plan("op", "[service.app]\nday = 1\nuser = \"1000\"\n");
    let ran = w.unroot(&APPLY).await;
    ran.exits(3);
    assert!(ran.stdout.contains("Permission denied"), "the application's own error is shown:\n{}", ran.stdout);
    assert!(ran.stdout.contains("connecting with <redacted>"), "{}", ran.stdout);
    assert!(!ran.stdout.contains(secret) && !ran.stderr.contains(secret), "an environment value was printed");
    let runs = w.path("state/op/runs");
    let run_dir = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    let saved = run_dir.join("services/app/failure.log");
    let text = std::fs::read_to_string(&saved).expect("the log is kept in the run folder");
    assert!(text.contains("Permission denied") && text.contains("connecting with <redacted>"), "{text}");
    assert!(!text.contains(secret), "{text}");
    assert_eq!(std::fs::metadata(&saved).unwrap().mode() & 0o777, 0o600);
}
