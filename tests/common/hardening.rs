//! Helpers of the hardening tests: a plan of rollout `h` in a test's folder, runs of unroot
//! with their exit codes, and what the state directory says.

use std::path::Path;

use serde_json::Value;

use super::{TestEnv, image, unroot_in};

pub const FAST: &str = "stable_for = \"1s\"\nhealth_timeout = \"30s\"\nstop_timeout = \"2s\"\n";

/// Writes `dir/plan.toml`: rollout `h` with fast timings, then `body`.
pub fn write_plan(dir: &Path, body: &str) {
    std::fs::write(dir.join("plan.toml"), format!("[rollout]\nname = \"h\"\n{FAST}{body}")).unwrap();
}

/// A busybox service (`--init`, so it stops at once) and a plan that moves it to uid 1000.
pub fn one_service(env: &TestEnv) -> (String, tempfile::TempDir) {
    let svc = env.run("svc", &["--init", &image("busybox"), "sleep", "1000000"]);
    let dir = env.tempdir();
    write_plan(dir.path(), &format!("[service.{svc}]\nday = 1\nuser = \"1000\"\n"));
    (svc, dir)
}

pub fn apply_day(dir: &Path, day: &str, extra: &[&str]) -> super::Run {
    let mut args = vec!["apply", "plan.toml", "--day", day, "--yes", "--state-dir", "state"];
    args.extend_from_slice(extra);
    unroot_in(dir, &args)
}

pub fn ok(run: &super::Run, code: i32) {
    assert_eq!(run.code, Some(code), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
}

pub fn ledger(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("state/h/ledger.json")).unwrap()).unwrap()
}

pub fn first_run(dir: &Path) -> String {
    let s = unroot_in(dir, &["status", "--json", "--state-dir", "state"]);
    let v: Value = serde_json::from_str(&s.stdout).unwrap();
    v["runs"][0]["run"].as_str().unwrap().to_string()
}

pub fn killed(run: &std::process::Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    run.status.signal() == Some(9)
}

/// `unroot ARGS` in `dir` with extra environment.
pub fn unroot_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = super::unroot();
    cmd.current_dir(dir).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// `unroot apply` of day 1 that kills itself at the named crash point.
pub fn apply_crashing_at(dir: &Path, point: &str) -> std::process::Output {
    let out = unroot_env(
        dir,
        &[("UNROOT_CRASH_AT", point)],
        &["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"],
    );
    assert!(killed(&out), "killed at {point}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A compose file with busybox services `names` (container_name = env.name(service)).
pub fn compose_file(env: &TestEnv, services: &[&str]) -> String {
    let mut y = String::from("version: \"2.4\"\nservices:\n");
    for s in services {
        y.push_str(&format!(
            "  {s}:\n    image: {img}\n    command: [\"sleep\", \"1000000\"]\n    init: true\n    stop_grace_period: 1s\n    container_name: {name}\n    labels:\n      {label}: {id}\n",
            img = image("busybox"),
            name = env.name(s),
            label = super::LABEL,
            id = env.id,
        ));
    }
    y
}
