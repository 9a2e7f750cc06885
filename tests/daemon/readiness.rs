//! The readiness gate against the real daemon (SPEC §3 step 8): Docker runs a container's
//! first health check one interval after its start, so unroot runs the container's own
//! HEALTHCHECK itself from the start; and a check that passed that way still fails the
//! service when Docker reports it unhealthy within `stable_for`.

use crate::common::{TestEnv, docker, image, inspect, journal_records, process_uids, unroot_in};
use serde_json::Value;

const PLAN: &str = "ready";

fn plan(dir: &std::path::Path, svc: &str, stable_for: &str) {
    std::fs::write(
        dir.join("plan.toml"),
        format!(
            "[rollout]\nname = \"{PLAN}\"\nstable_for = \"{stable_for}\"\nstop_timeout = \"2s\"\nhealth_timeout = \"2m\"\n\
             [service.{svc}]\nday = 1\nuser = \"1000:1000\"\n"
        ),
    )
    .unwrap();
}

/// The records of the day's journal for `svc`, as (step, ok, detail).
fn steps(dir: &std::path::Path, svc: &str) -> Vec<(String, Value, Value)> {
    journal_records(&dir.join("state"), PLAN)
        .into_iter()
        .filter(|r| r["service"] == svc)
        .map(|r| (r["step"].as_str().unwrap_or("").to_string(), r["ok"].clone(), r["detail"].clone()))
        .collect()
}

#[test]
fn a_check_that_passes_at_once_is_not_kept_waiting_for_dockers_30s_interval() {
    let env = TestEnv::new("ready-fast");
    let svc = env.run(
        "svc",
        &["--health-cmd", "test -d /proc/1", "--health-interval", "30s", &image("busybox"), "sleep", "1000000"],
    );
    let dir = env.tempdir();
    plan(dir.path(), &svc, "2s");
    let run = unroot_in(dir.path(), &["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    // Docker's first check is 30 s away; the gate passed on the container's own check, which
    // unroot ran, then committed.
    let records = steps(dir.path(), &svc);
    let health_end =
        records.iter().position(|(s, ok, _)| s == "health" && ok == &Value::Bool(true)).expect("health ended");
    assert_eq!(records[health_end].2["passed"], "healthcheck-exec", "{:?}", records[health_end]);
    let commit = records.iter().position(|(s, ok, _)| s == "commit" && ok == &Value::Bool(true)).expect("committed");
    assert!(health_end < commit);
    assert!(run.stdout.contains("passed=healthcheck-exec"), "the operator sees which probe passed:\n{}", run.stdout);
    let now = inspect(&svc);
    assert_eq!(now["Config"]["User"], "1000:1000");
    assert_eq!(now["State"]["Health"]["Status"], "starting", "Docker itself has not checked yet");
    assert_eq!(process_uids(&svc), [1000]);
}

#[test]
fn unhealthy_from_docker_within_stable_for_rolls_back_a_check_that_passed_by_exec() {
    let env = TestEnv::new("ready-flaky");
    // As root (the original) the check always passes; as the new user it passes once (the
    // exec unroot runs at the start) and fails from Docker's first run on.
    let check = r#"[ "$(id -u)" = 0 ] || { [ ! -e /tmp/checked ] && touch /tmp/checked; }"#;
    let svc = env.run(
        "svc",
        &[
            "--health-cmd",
            check,
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            &image("busybox"),
            "sleep",
            "1000000",
        ],
    );
    let original = inspect(&svc)["Id"].clone();
    let dir = env.tempdir();
    plan(dir.path(), &svc, "8s");
    let run = unroot_in(dir.path(), &["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"]);
    assert_eq!(run.code, Some(3), "{}{}", run.stdout, run.stderr);
    let failed = steps(dir.path(), &svc)
        .into_iter()
        .find(|(s, ok, _)| s == "health" && ok == &Value::Bool(false))
        .expect("the health step failed");
    let error = journal_records(&dir.path().join("state"), PLAN)
        .into_iter()
        .find(|r| r["service"] == svc.as_str() && r["step"] == "health" && r["ok"] == false)
        .map(|r| r["error"].as_str().unwrap_or("").to_string())
        .unwrap();
    assert!(error.contains("Docker reports it unhealthy during the stability window"), "{failed:?} {error}");
    // The original is back: itself, running, as root, healthy by its check.
    let now = inspect(&svc);
    assert_eq!(now["Id"], original, "the original itself");
    assert_eq!(now["State"]["Running"], true);
    assert_eq!(now["Config"]["User"], "");
    assert_eq!(docker(&["ps", "-aq", "--filter", &format!("name={svc}.unroot-")]), "", "no parked container left");
}

#[test]
fn a_probe_that_outlives_its_limit_is_killed_with_what_it_started() {
    use unroot::docker::DockerPort;
    let env = TestEnv::new("ready-kill");
    let svc = env.run("svc", &[&image("busybox"), "sleep", "1000000"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let port = rt.block_on(unroot::docker::BollardDocker::connect(None)).expect("the daemon answers");
    // A hanging check that also starts a child, as `sh -c` checks do.
    let cmd: Vec<String> = ["sh", "-c", "sleep 601 & sleep 602"].map(String::from).to_vec();
    let started = std::time::Instant::now();
    let f = rt.block_on(port.exec(&svc, &cmd, std::time::Duration::from_secs(1))).unwrap();
    assert_eq!(f.exit_code, unroot::docker::EXEC_TIMED_OUT, "{}", String::from_utf8_lossy(&f.stderr));
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "it returned at its limit, not at the probe's end");
    let left = || docker(&["top", &svc, "-o", "pid,args"]);
    // The kill is immediate, but give the kernel a moment to reap.
    for _ in 0..20 {
        if !left().contains("sleep 60") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let procs = left();
    assert!(!procs.contains("sleep 601") && !procs.contains("sleep 602"), "the probe's processes are left:\n{procs}");
    assert!(procs.contains("sleep 1000000"), "the container's own process stays:\n{procs}");
    // A check that ends in time is untouched.
    let ok = rt.block_on(port.exec(&svc, &["true".to_string()], std::time::Duration::from_secs(5))).unwrap();
    assert_eq!(ok.exit_code, 0);
}
