//! `unroot check`, `graph` and `completions` as a user runs them: exit codes and output.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::{repo_path, unroot};
use predicates::prelude::*;

const SUTAZAI: &str = "plans/sutazai.toml";

fn write_plan(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("plan.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn check_accepts_the_reference_plan() {
    unroot()
        .current_dir(repo_path(""))
        .args(["check", SUTAZAI])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("ok: plan `sutazai-nonroot`, 9 services over 5 days"));
    let out = unroot().current_dir(repo_path("")).args(["check", SUTAZAI, "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["services"], 9);
    assert_eq!(v["exceptions"], 1);
}

#[test]
fn check_reports_errors_with_place_text_and_hint_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        &dir,
        "[rollout]\nname = \"t\"\n\n[service.db]\nday = 1\nuser = \"root\"\n\n[service.web]\nday = 1\nchown = [\"data\"]\n",
    );
    let out = unroot().args(["check", &plan]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "errors go to stderr only");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{plan}:6:8: `user` = \"root\" is root")), "{err}");
    assert!(err.contains("user = \"root\""), "the offending line is shown: {err}");
    assert!(err.contains("keep_root"), "the hint is shown: {err}");
    assert!(err.contains(&format!("{plan}:10:10: chown path \"data\" is relative")), "{err}");
    assert!(err.contains("2 errors in the plan; nothing was changed"), "{err}");
    // Each error starts with its place and message, not with a bare diagnostic code.
    assert!(err.lines().next().unwrap().trim_start().starts_with(&format!("× {plan}:6:8:")), "{err}");
    assert!(!err.lines().any(|l| l.trim().starts_with("unroot::")), "{err}");
}

#[test]
fn check_knows_dockers_capabilities_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let head = "[rollout]\nname = \"t\"\n\n[service.web]\nday = 1\nuser = \"101\"\n";
    let plan = write_plan(&dir, &format!("{head}cap_drop = [\"all\"]\ncap_add = [\"cap_net_admin\"]\n"));
    unroot().args(["check", &plan]).assert().code(0).stdout(predicate::str::contains("ok: plan `t`"));
    let plan = write_plan(&dir, &format!("{head}cap_drop = [\"ALL\"]\ncap_add = [\"NET_BIND\"]\n"));
    let out = unroot().args(["check", &plan]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{plan}:8:12: `cap_add` entry \"NET_BIND\" is not a capability Docker knows")),
        "{err}"
    );
    assert!(err.contains("cap_add = [\"NET_BIND\"]"), "the offending line is shown: {err}");
    assert!(err.contains("did you mean NET_BIND_SERVICE?"), "{err}");
    assert!(err.contains("docs/plan.md#cap_drop-cap_add"), "{err}");
}

#[test]
fn check_says_a_service_belongs_to_one_day_and_a_day_is_one_number() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(&dir, "[rollout]\nname = \"t\"\n\n[service.db]\nday = 1\n\n[service.db]\nday = 2\n");
    let out = unroot().args(["check", &plan]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{plan}:7:10: service `db` appears twice; a service belongs to one day")), "{err}");
    assert!(err.contains("the first [service.db] (line 4)") && !err.contains("duplicate key"), "{err}");
    let plan = write_plan(&dir, "[rollout]\nname = \"t\"\n\n[service.db]\nday = [1, 2]\n");
    let out = unroot().args(["check", &plan]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{plan}:5:7: `day` is one number (the day this service moves on), not a list")));
    assert!(err.contains("docs/plan.md#day") && !err.contains("invalid type"), "{err}");
}

#[test]
fn check_of_a_missing_file_exits_2() {
    unroot().args(["check", "/nonexistent/plan.toml"]).assert().code(2).stderr(
        predicate::str::contains("/nonexistent/plan.toml").and(predicate::str::contains("cannot read the plan")),
    );
}

#[test]
fn usage_errors_exit_2() {
    unroot().args(["check"]).assert().code(2);
    unroot().args(["graph", SUTAZAI, "--format", "png"]).assert().code(2);
    unroot().args(["frobnicate"]).assert().code(2);
}

#[test]
fn a_day_the_plan_does_not_have_is_bad_input_before_the_daemon_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(&dir, "[rollout]\nname = \"t\"\n\n[service.db]\nday = 1\nuser = \"999\"\n");
    // No daemon answers at this address: had unroot asked it, the exit would be 6.
    let nowhere = "unix:///nonexistent/unroot-offline.sock";
    for args in [
        vec!["plan", plan.as_str(), "--day", "9"],
        vec!["apply", plan.as_str(), "--day", "9", "--yes"],
        vec!["verify", plan.as_str(), "--through-day", "9"],
    ] {
        let out = unroot().args(&args).env("DOCKER_HOST", nowhere).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("day 9") && err.contains("days: 1") && !err.contains("nonexistent"), "{args:?}: {err}");
    }
    let out = unroot().args(["audit"]).env("DOCKER_HOST", nowhere).output().unwrap();
    assert_eq!(out.status.code(), Some(6), "an unreachable daemon: retry");
}

#[test]
fn graph_prints_days_waves_and_edges_in_three_formats() {
    unroot().current_dir(repo_path("")).args(["graph", SUTAZAI]).assert().code(0).stdout(predicate::str::contains(
        "day 2: cache and queue\n  wave 1: sutazai-redis\n  wave 2: sutazai-rabbitmq (after sutazai-redis)",
    ));
    unroot().current_dir(repo_path("")).args(["graph", SUTAZAI, "--format", "dot"]).assert().code(0).stdout(
        predicate::str::contains("\"sutazai-redis\" -> \"sutazai-rabbitmq\";")
            .and(predicate::str::contains("subgraph cluster_day5")),
    );
    unroot()
        .current_dir(repo_path(""))
        .args(["graph", SUTAZAI, "--format", "mermaid"])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("flowchart TB").and(predicate::str::contains("day4 -. barrier .-> day5")));
}

#[test]
fn graph_of_a_plan_with_a_cycle_exits_2_naming_the_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        &dir,
        "[rollout]\nname = \"t\"\n[service.a]\nday = 1\nafter = [\"b\"]\n[service.b]\nday = 1\nafter = [\"a\"]\n",
    );
    unroot()
        .args(["graph", &plan])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("`after` forms a cycle: a -> b -> a"));
}

#[test]
fn dot_output_renders_with_graphviz() {
    let out = unroot().current_dir(repo_path("")).args(["graph", SUTAZAI, "--format", "dot"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let mut dot = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("graphviz `dot` is installed (.ci/run installs it)");
    dot.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let svg = dot.wait_with_output().unwrap();
    assert!(svg.status.success(), "dot failed: {}", String::from_utf8_lossy(&svg.stderr));
    let svg = String::from_utf8_lossy(&svg.stdout);
    assert!(svg.contains("<svg"), "not an SVG");
    assert!(svg.contains("<title>sutazai&#45;rabbitmq</title>"), "the rabbitmq node is drawn");
    assert!(svg.contains("day 2: cache and queue"), "the day clusters are drawn");
}

#[test]
fn completions_for_bash() {
    unroot()
        .args(["completions", "bash"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("_unroot()").and(predicate::str::contains("audit")));
}
