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
fn json_asked_for_is_json_on_stdout_also_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Three kinds of error: a root user, a dependency on no service, a relative path.
    let plan = write_plan(
        &dir,
        "[rollout]\nname = \"t\"\n\n[service.db]\nday = 1\nuser = \"root\"\n\n\
         [service.web]\nday = 1\nuser = \"1000\"\nafter = [\"nope\"]\nchown = [\"data\"]\n",
    );
    let out = unroot().args(["check", &plan, "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document on stdout");
    let errors = doc["errors"].as_array().unwrap();
    assert!(errors.len() >= 3, "{doc:#}");
    for e in errors {
        assert!(e["file"].as_str().unwrap().ends_with("plan.toml"), "{e}");
        assert!(e["line"].as_u64().is_some() && e["column"].as_u64().is_some(), "{e}");
        assert!(e["message"].is_string() && e["hint"].is_string(), "{e}");
    }
    let said = |word: &str| errors.iter().any(|e| e["message"].as_str().unwrap().contains(word));
    assert!(said("root") && said("nope") && said("data"), "{doc:#}");
    assert_eq!((doc["exit_code"].as_u64(), doc["outcome"].as_str()), (Some(2), Some("bad-input")));
    // A daemon that does not answer, in JSON: the same document, exit 6.
    let out = unroot().args(["audit", "--json"]).env("DOCKER_HOST", "unix:///nonexistent/u.sock").output().unwrap();
    assert_eq!(out.status.code(), Some(6));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outcome"], "daemon-unreachable");
    assert!(doc["errors"][0]["message"].as_str().unwrap().contains("/nonexistent/u.sock"), "{doc}");
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

/// The commands of docs/cli.md's table, each with its cells.
fn cli_table() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(repo_path("docs/cli.md")).unwrap();
    let table = &text[text.find("| Command |").expect("the commands table")..];
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split('|').map(|c| c.trim().trim_matches('`').to_string()).collect())
        .collect()
}

#[test]
fn every_command_follows_the_convention_docs_cli_md_writes_down() {
    use clap::{CommandFactory, Parser};
    let root = unroot::cli::Cli::command();
    let table = cli_table();
    let subcommands: Vec<&clap::Command> = root.get_subcommands().filter(|c| c.get_name() != "help").collect();
    let names: Vec<&str> = subcommands.iter().map(|c| c.get_name()).collect();
    let listed: Vec<&str> = table.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, listed, "docs/cli.md lists every command, in clap's order");
    for (cmd, row) in subcommands.iter().zip(&table) {
        let name = cmd.get_name();
        let long = |flag: &str| cmd.get_arguments().any(|a| a.get_long() == Some(flag) && !a.is_hide_set());
        // Help on every argument.
        for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            assert!(a.get_help().is_some(), "{name}: {} has no help", a.get_id());
        }
        // Output: --format where the table says the command prints data, --json where json.
        let formats = &row[1];
        let prints_data = !matches!(name, "completions" | "schema" | "man");
        assert_eq!(long("format"), prints_data, "{name}: --format");
        assert_eq!(long("json"), formats.contains("json"), "{name}: --json, the alias of --format json");
        // The plan: --plan on every command that reads one; first where it is required.
        let plan = &row[2];
        assert_eq!(long("plan"), !plan.is_empty(), "{name}: --plan");
        let positional = cmd.get_positionals().any(|a| a.get_value_names().is_some_and(|v| v[0] == "PLAN"));
        assert_eq!(positional, plan.starts_with("PLAN"), "{name}: PLAN first");
        // Picking: --service for a plan's services, --filter for containers; no --only.
        assert_eq!(long("service"), row[3].contains("--service"), "{name}: --service");
        assert_eq!(long("filter"), row[3].contains("--filter"), "{name}: --filter");
        assert!(!long("only"), "{name}: --only is an old spelling, not shown");
        // --context and --state-dir only where they apply.
        assert_eq!(long("context"), row[4] == "yes", "{name}: --context");
        assert_eq!(long("state-dir"), row[5] == "yes", "{name}: --state-dir");
    }
    // The old spellings still parse.
    let old = ["unroot", "--context", "c", "plan", "p.toml", "--day", "1", "--only", "web", "--state-dir", "s"];
    let cli = unroot::cli::Cli::try_parse_from(old).expect("old spellings parse");
    assert_eq!(cli.context.as_deref(), Some("c"));
}

#[test]
fn a_man_page_for_every_command_that_the_main_page_names() {
    let dir = tempfile::tempdir().unwrap();
    unroot().args(["man", "--dir", dir.path().to_str().unwrap()]).assert().code(0);
    let main = std::fs::read_to_string(dir.path().join("unroot.1")).unwrap();
    for sub in ["audit", "init", "check", "graph", "plan", "apply", "resume", "rollback", "status", "verify", "report"]
    {
        assert!(main.contains(&format!("unroot\\-{sub}(1)")), "the main page names unroot-{sub}(1)");
        let page = std::fs::read_to_string(dir.path().join(format!("unroot-{sub}.1"))).expect("its page");
        assert!(page.contains(&format!(".TH unroot-{sub} 1")), "{page}");
    }
    unroot().args(["man", "apply"]).assert().code(0).stdout(predicate::str::contains("\\-\\-service"));
    unroot().args(["man", "nope"]).assert().code(2);
}
