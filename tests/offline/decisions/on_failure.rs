//! What `on_failure` does when one service of a day cannot run as its user: which services
//! are restored, which stay migrated, what the ledger records and what a later day may do.

use serde_json::json;

use super::world::World;

const APPLY: [&str; 7] = ["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"];

/// Three services of day 1 (each after the previous when `chain`); the last, `c`, cannot
/// run as its user. Returns the ids of the originals.
fn three_service_day(w: &World, on_failure: &str, chain: bool) -> [String; 3] {
    let ids = ["a", "b", "c"].map(|name| w.run(name, json!({})));
    w.need_root(&["c"], "");
    let after = |dep: &str| if chain { format!("after = [\"{dep}\"]\n") } else { String::new() };
    w.plan(
        "e2e",
        &format!(
            "on_failure = \"{on_failure}\"\nstable_for = \"1s\"\n\
             [service.a]\nday = 1\nuser = \"1000:1000\"\n\
             [service.b]\nday = 1\nuser = \"1000:1000\"\n{}\
             [service.c]\nday = 1\nuser = \"1000:1000\"\n{}",
            after("a"),
            after("b")
        ),
    );
    ids
}

#[tokio::test(start_paused = true)]
async fn rollback_day_restores_the_services_that_succeeded_too() {
    let w = World::new();
    let before = three_service_day(&w, "rollback-day", true);
    w.unroot(&APPLY).await.exits(3);
    for (name, id) in ["a", "b", "c"].iter().zip(&before) {
        assert_eq!(&w.id(name), id, "{name} is its original again");
        assert_eq!(w.user(name), "");
        assert_eq!(w.uids(name), [0], "{name} runs as root");
    }
    assert_eq!(w.names(), ["a", "b", "c"], "nothing parked or left over");
    assert!(!w.path("state/e2e/ledger.json").exists(), "the day is not recorded as applied");
}

#[tokio::test(start_paused = true)]
async fn rollback_service_keeps_the_others_migrated() {
    let w = World::new();
    let before = three_service_day(&w, "rollback-service", false);
    w.unroot(&APPLY).await.exits(7);
    for name in ["a", "b"] {
        assert_eq!(w.user(name), "1000:1000", "{name} stays migrated");
        assert_eq!(w.uids(name), [1000]);
    }
    assert_eq!(w.id("c"), before[2], "c is its original again");
    assert_eq!(w.uids("c"), [0]);
    let ledger = w.ledger("e2e");
    assert_eq!(ledger["days"]["1"]["services"]["a"]["state"], "migrated");
    assert_eq!(ledger["days"]["1"]["services"]["c"]["state"], "original");
}

#[tokio::test(start_paused = true)]
async fn pause_leaves_the_run_for_resume_with_exit_4() {
    let w = World::new();
    let before = three_service_day(&w, "pause", true);
    let ran = w.unroot(&APPLY).await;
    ran.exits(4);
    assert!(ran.stdout.contains("unroot resume"), "{}", ran.stdout);
    let parked: Vec<String> = w.names().into_iter().filter(|n| n.starts_with("c.unroot-")).collect();
    assert_eq!(parked.len(), 1, "the original of the failed service is kept, parked: {parked:?}");
    let original = w.container(&parked[0]).unwrap();
    assert_eq!(original.id(), before[2]);
    assert_eq!(original.0["HostConfig"]["RestartPolicy"]["Name"], "no", "it cannot start by itself");
    assert_eq!(w.status(&["--state-dir", "state"]).await[0]["state"], "interrupted");
    // A new apply is refused while the run is interrupted, and changes nothing.
    let calls = w.fake.calls().len();
    let again = w.unroot(&APPLY).await;
    again.exits(5);
    assert!(again.stderr.contains("unroot resume"), "{}", again.stderr);
    assert_eq!(w.changes_since(calls), [], "the refused apply changed nothing");
}

#[tokio::test(start_paused = true)]
async fn a_service_restored_by_rollback_service_keeps_its_day_open() {
    let w = World::new();
    for name in ["a", "c"] {
        w.run(name, json!({}));
    }
    let d = w.run("d", json!({}));
    w.need_root(&["c"], "");
    w.plan(
        "h",
        "on_failure = \"rollback-service\"\n\
         [service.a]\nday = 1\nuser = \"1000\"\n[service.c]\nday = 1\nuser = \"1000\"\n\
         [service.d]\nday = 2\nuser = \"1000\"\n",
    );
    w.unroot(&APPLY).await.exits(7);
    assert_eq!(w.uids("c"), [0], "c is back on its original");
    assert_eq!(w.uids("a"), [1000]);
    let calls = w.fake.calls().len();
    let refused = w.unroot(&["apply", "plan.toml", "--day", "2", "--yes", "--state-dir", "state"]).await;
    refused.exits(5);
    assert!(refused.stderr.contains("c (day 1) is on its original"), "{}", refused.stderr);
    assert_eq!((w.id("d"), w.uids("d")), (d, vec![0]), "day 2 did not start");
    assert_eq!(w.changes_since(calls), [], "the refused day changed nothing");
}
