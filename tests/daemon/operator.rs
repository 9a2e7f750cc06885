//! What a new operator meets: why a replacement failed, and an audit that does not flap.

use std::os::unix::fs::MetadataExt;

use crate::common::{TestEnv, docker, image, unroot_in};
use serde_json::Value;

#[test]
fn a_replacement_that_fails_shows_and_keeps_the_end_of_its_log_without_secrets() {
    let env = TestEnv::new("op-log");
    let secret = "pw-9c41f7e2a8";
    let svc = env.run(
        "app",
        &[
            "--init",
            "-e",
            &format!("DB_PASSWORD={secret}"),
            &image("busybox"),
            "sh",
            "-c",
            "echo \"connecting with $DB_PASSWORD\"; echo x > /root/state && exec sleep 1000000",
        ],
    );
    let dir = env.tempdir();
    std::fs::write(
        dir.path().join("plan.toml"),
        format!("[rollout]\nname = \"op\"\nstable_for = \"1s\"\nstop_timeout = \"2s\"\n[service.{svc}]\nday = 1\nuser = \"1000\"\n"),
    )
    .unwrap();
    let run = unroot_in(dir.path(), &["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"]);
    assert_eq!(run.code, Some(3), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("Permission denied"), "the application's own error is shown:\n{}", run.stdout);
    assert!(run.stdout.contains("connecting with <redacted>"), "{}", run.stdout);
    assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "an environment value was printed");
    let runs = dir.path().join("state/op/runs");
    let run_dir = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    let saved = run_dir.join(format!("services/{svc}/failure.log"));
    let text = std::fs::read_to_string(&saved).expect("the log is kept in the run folder");
    assert!(text.contains("Permission denied") && text.contains("connecting with <redacted>"), "{text}");
    assert!(!text.contains(secret), "{text}");
    assert_eq!(std::fs::metadata(&saved).unwrap().mode() & 0o777, 0o600);
}

#[test]
fn a_root_probe_beside_a_process_that_dropped_root_audits_drops_root_every_time() {
    let env = TestEnv::new("op-audit");
    // Configured as root; PID 1 drops to 999 (as gosu does). Docker's own health probe runs
    // as the configured user, root, every second.
    let svc = env.run(
        "dropper",
        &[
            "--health-cmd",
            "sleep 2",
            "--health-interval",
            "1s",
            &image("busybox"),
            "drop",
            "999:999",
            "sleep",
            "1000000",
        ],
    );
    // And an operator's shell, as root.
    docker(&["exec", "-d", &svc, "sleep", "120"]);
    let top = docker(&["top", &svc, "-o", "pid,uid,args"]);
    assert!(top.lines().skip(1).any(|l| l.split_whitespace().nth(1) == Some("0")), "a root process runs: {top}");
    let dir = env.tempdir();
    for i in 0..20 {
        let a = unroot_in(dir.path(), &["audit", "--json", "--filter", &format!("name={svc}")]);
        assert_eq!(a.code, Some(0), "{}", a.stderr);
        let v: Value = serde_json::from_str(&a.stdout).unwrap();
        let listed = v["containers"].as_array().unwrap();
        assert_eq!(listed.len(), 1, "the filter keeps this container only: {listed:?}");
        assert_eq!(listed[0]["class"], "drops-root", "audit {i}: {}", listed[0]);
        assert_eq!(listed[0]["process_uids"], serde_json::json!([999]), "audit {i}");
    }
    // --fail-on-root gates on the filtered set: this one is not root.
    let gate = unroot_in(dir.path(), &["audit", "--fail-on-root", "--filter", &format!("label={}", env.label())]);
    assert_eq!(gate.code, Some(0), "{}", gate.stdout);
}
