//! Days and previews: days go in order, `--only` runs add up, a migrated service is not
//! touched again, and the preview changes nothing.

use serde_json::{Value, json};

use super::world::World;

fn apply(day: &str, only: Option<&str>) -> Vec<String> {
    let mut args = vec!["apply", "plan.toml", "--day", day, "--yes", "--state-dir", "state"];
    args.extend(only.map(|o| ["--service", o]).into_iter().flatten());
    args.into_iter().map(String::from).collect()
}

async fn run(w: &World, args: Vec<String>) -> super::world::Ran {
    w.unroot(&args.iter().map(String::as_str).collect::<Vec<_>>()).await
}

#[tokio::test(start_paused = true)]
async fn days_go_in_order_and_only_limits_a_day() {
    let w = World::new();
    for name in ["a", "b", "c"] {
        w.run(name, json!({}));
    }
    w.plan(
        "e2e",
        "[service.a]\nday = 1\nuser = \"1000\"\n[service.b]\nday = 2\nuser = \"1000\"\n\
         [service.c]\nday = 2\nuser = \"1000\"\nafter = [\"a\"]\n",
    );
    // Day 2 before day 1: refused, nothing touched.
    let calls = w.fake.calls().len();
    let refused = run(&w, apply("2", None)).await;
    refused.exits(5);
    assert!(refused.stderr.contains("day(s) 1"), "{}", refused.stderr);
    assert_eq!(w.changes_since(calls), [], "nothing was touched");
    // --only a service whose own dependencies are satisfied (none): allowed, and only it.
    let c = w.id("c");
    run(&w, apply("2", Some("b"))).await.exits(0);
    assert_eq!(w.user("b"), "1000:1000");
    assert_eq!(w.id("c"), c, "c was not part of the run");
    // --only c is refused while a (its dependency, on day 1) is not applied.
    let only_c = run(&w, apply("2", Some("c"))).await;
    only_c.exits(5);
    assert!(only_c.stderr.contains("waits for a"), "{}", only_c.stderr);
    assert_eq!(w.user("c"), "");
    // Day 1, then day 2 goes.
    run(&w, apply("1", None)).await.exits(0);
    run(&w, apply("2", Some("c"))).await.exits(0);
    for name in ["a", "b", "c"] {
        assert_eq!(w.user(name), "1000:1000", "{name}");
    }
}

/// A compose project in the world's folder holding services `a` and `b` (containers of those
/// names).
fn compose_labels(w: &World, service: &str) -> Value {
    json!({"Config": {"Labels": {
        "com.docker.compose.project": "proj",
        "com.docker.compose.service": service,
        "com.docker.compose.project.working_dir": w.dir.path().display().to_string(),
        "com.docker.compose.project.config_files": "docker-compose.yml",
    }}})
}

#[tokio::test(start_paused = true)]
async fn only_runs_add_up_and_a_migrated_service_is_not_touched_again() {
    let w = World::new();
    std::fs::write(w.path("docker-compose.yml"), "version: \"2.4\"\nservices:\n  a: {}\n  b: {}\n").unwrap();
    for name in ["a", "b"] {
        w.run(name, compose_labels(&w, name));
    }
    w.run("c", json!({}));
    w.plan(
        "h",
        "[service.a]\nday = 1\nuser = \"1000\"\n[service.b]\nday = 1\nuser = \"1000\"\n[service.c]\nday = 2\nuser = \"1000\"\n",
    );
    run(&w, apply("1", Some("a"))).await.exits(0);
    let refused = run(&w, apply("2", None)).await;
    refused.exits(5);
    assert!(refused.stderr.contains("b (day 1) is not migrated yet"), "{}", refused.stderr);
    run(&w, apply("1", Some("b"))).await.exits(0);
    let ledger = w.ledger("h");
    assert_eq!(ledger["days"]["1"]["services"]["a"]["state"], "migrated", "the second run kept the first one's record");
    assert_eq!(ledger["days"]["1"]["services"]["b"]["state"], "migrated");
    let text = std::fs::read_to_string(w.path("docker-compose.unroot.yml")).unwrap();
    assert!(text.contains("\"a\":") && text.contains("\"b\":"), "the override keeps both services: {text}");

    // Applying the day again changes nothing: no stop, no new run.
    let (a, calls) = (w.id("a"), w.fake.calls().len());
    let again = run(&w, apply("1", None)).await;
    again.exits(0);
    assert!(again.stdout.contains("already migrated"), "{}", again.stdout);
    assert_eq!(w.id("a"), a, "the same container");
    assert_eq!(w.changes_since(calls), [], "nothing was stopped or recreated");
    assert_eq!(w.status(&["--state-dir", "state"]).await.as_array().unwrap().len(), 2, "no new run");
    run(&w, apply("2", None)).await.exits(0);
    assert_eq!(w.uids("c"), [1000]);
}

#[tokio::test(start_paused = true)]
async fn plan_and_dry_run_change_nothing() {
    let w = World::new();
    w.volume("v", &["a", "d", "d/f"]);
    let svc = w.run("svc", World::mounting("v"));
    w.run("other", World::mounting("v"));
    let owners = w.owners("v");
    w.plan("e2e", "[service.svc]\nday = 1\nuser = \"app\"\n");
    let p = w.unroot(&["plan", "plan.toml", "--day", "1", "--state-dir", "state"]).await;
    p.exits(0);
    assert!(p.stdout.contains("chown:  /data (volume"), "{}", p.stdout);
    assert!(p.stdout.contains("is shared with other, outside this day"), "{}", p.stdout);
    let j = w.unroot(&["plan", "plan.toml", "--day", "1", "--json"]).await;
    let doc: Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(doc["day"], 1);
    assert_eq!(doc["waves"], json!([["svc"]]));
    assert_eq!(doc["services"][0]["user"]["to"], "app (1000:1000)", "names and numbers");
    assert_eq!(doc["services"][0]["chown"][0]["kind"], "volume");
    let d = w.unroot(&["apply", "plan.toml", "--day", "1", "--dry-run", "--state-dir", "state"]).await;
    d.exits(0);
    assert_eq!(d.stdout, p.stdout, "apply --dry-run is the same preview");

    assert_eq!(w.changes_since(0), [], "no call changed anything on the daemon");
    assert_eq!(w.names(), ["other", "svc"], "no container was made or left");
    assert_eq!((w.id("svc"), w.uids("svc")), (svc, vec![0]), "the original runs untouched");
    assert_eq!(w.owners("v"), owners);
    assert!(!w.path("state").exists() && !w.path("rollback").exists(), "no state dir");
}
