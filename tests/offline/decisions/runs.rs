//! Runs: the lock, a rollback of some services, the plan's state directory, and a rollback
//! that died half-way.

use std::sync::Mutex;

use serde_json::{Value, json};
use unroot::docker::fake::Program;
use unroot::engine::interrupt::Interrupt;
use unroot::engine::runs::{self, ApplyOptions};
use unroot::model::plan::Plan;
use unroot::state::StateLocation;

use super::world::World;

#[tokio::test(start_paused = true)]
async fn a_second_apply_is_refused_naming_the_first() {
    let w = World::new();
    for name in ["a", "b"] {
        w.run(name, json!({}));
    }
    w.plan("crash", "[service.a]\nday = 1\nuser = \"1000\"\n[service.b]\nday = 1\nuser = \"1000\"\n");
    let plan = Plan::load(&w.path("plan.toml")).unwrap();
    let loc = StateLocation::resolve(Some(&w.path("state")), Some(&plan));
    let args = ["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"];
    // While the first apply waits for its confirmation, a second one of the same plan.
    let second = Mutex::new(None);
    let confirm = async |_| {
        let ran = w.unroot(&args).await;
        *second.lock().unwrap() = Some(ran);
        Ok(())
    };
    let opts = ApplyOptions { day: 1, ..ApplyOptions::default() };
    let events = unroot::engine::events::Discard;
    let first = runs::apply(&w.fake, &plan, &loc, &opts, &events, &Interrupt::default(), confirm).await.unwrap();
    let second = second.into_inner().unwrap().expect("the second apply ran");
    second.exits(5);
    assert!(second.stderr.contains(&format!("pid {}", std::process::id())), "the holder is named: {}", second.stderr);
    let exit = unroot::cli::exit_code(Ok(&unroot::cli::Ended::Runs(vec![first.end])));
    assert_eq!(exit as u8, 0, "the first apply goes on: {}", first.summary);
    for name in ["a", "b"] {
        assert_eq!(w.uids(name), [1000], "{name} was migrated once, by the first apply");
    }
    assert_eq!(w.status(&["--state-dir", "state"]).await.as_array().unwrap().len(), 1, "one run");
    // The run's header says who ran it, and where.
    let header = &w.journal("crash")[0];
    assert_eq!(header["record"], "header");
    assert_eq!(header["user"], unroot::state::operator().as_str());
    assert_eq!(header["host"], unroot::state::hostname().as_str());
}

#[tokio::test(start_paused = true)]
async fn rollback_of_one_service_leaves_the_others_migrated() {
    let w = World::new();
    for name in ["a", "b"] {
        w.run(name, json!({}));
    }
    w.plan(
        "one",
        "stable_for = \"1s\"\n[service.a]\nday = 1\nuser = \"1000\"\n[service.b]\nday = 1\nuser = \"1000\"\n",
    );
    w.unroot(&["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"]).await.exits(0);
    let run = w.first_run().await;
    w.unroot(&["rollback", &run, "--service", "a", "--state-dir", "state"]).await.exits(0);
    assert_eq!((w.user("a"), w.uids("a")), (String::new(), vec![0]), "a is back on root");
    assert_eq!((w.user("b"), w.uids("b")), ("1000:1000".to_string(), vec![1000]), "b stays migrated");
    assert_eq!(w.status(&["--state-dir", "state"]).await[0]["state"], "committed", "the run itself stays committed");
    let verify = w.unroot(&["verify", "plan.toml", "--json"]).await;
    verify.exits(1);
    let v: serde_json::Value = serde_json::from_str(&verify.stdout).unwrap();
    let ok: Vec<(&str, bool)> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["ok"].as_bool().unwrap()))
        .collect();
    assert_eq!(ok, [("a", false), ("b", true)]);
    let ledger = w.ledger("one");
    assert_eq!(ledger["days"]["1"]["services"]["a"]["state"], "original");
    assert_eq!(ledger["days"]["1"]["services"]["b"]["state"], "migrated");
}

#[tokio::test(start_paused = true)]
async fn resume_rollback_and_status_find_the_plans_state_dir() {
    let w = World::new();
    let before = w.run("svc", json!({}));
    w.need_root(&["svc"], "");
    let state = w.path("custom-state");
    w.plan(
        "h",
        &format!(
            "state_dir = \"{}\"\non_failure = \"pause\"\n[service.svc]\nday = 1\nuser = \"1000\"\n",
            state.display()
        ),
    );
    let plan = w.path("plan.toml").display().to_string();
    let ran = w.unroot(&["apply", "plan.toml", "--day", "1", "--yes"]).await;
    ran.exits(4);
    assert!(ran.stdout.contains(&format!("--plan {plan}`")), "the hint names the plan:\n{}", ran.stdout);
    assert!(state.join("h/runs").is_dir(), "the run is in the plan's state_dir");
    let st = w.status(&["--plan", &plan]).await;
    assert_eq!(st[0]["state"], "interrupted");
    let id = st[0]["run"].as_str().unwrap().to_string();
    w.unroot(&["rollback", &id, "--plan", &plan]).await.exits(0);
    assert_eq!(w.id("svc"), before, "the original itself");
    assert_eq!(w.uids("svc"), [0]);
    let nothing = w.unroot(&["resume", "--plan", &plan]).await;
    nothing.exits(0);
    assert!(nothing.stdout.contains("nothing to resume"), "{}", nothing.stdout);
    assert!(!w.path("state").exists() && !w.path("rollback").exists(), "no other state directory");
}

#[tokio::test(start_paused = true)]
async fn a_committed_run_whose_rollback_was_interrupted_is_open_everywhere() {
    let w = World::new();
    w.run("svc", json!({}));
    // No --init: a stop takes the whole grace.
    w.programs(|_| Program { ignores_sigterm: true, ..Program::default() });
    w.plan("h", "stop_timeout = \"10s\"\n[service.svc]\nday = 1\nuser = \"1000\"\n");
    w.unroot(&["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"]).await.exits(0);
    let run = w.first_run().await;
    // The rollback is stopped at once (as by a second Ctrl-C) while it waits for the
    // replacement to stop: after its first record, before it restored anything.
    let rollback = ["rollback", run.as_str(), "--state-dir", "state"];
    tokio::select! {
        ran = w.unroot(&rollback) => panic!("the rollback ended: {ran:?}"),
        () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
    }
    let events: Vec<Value> =
        w.journal("h").into_iter().filter(|r| r["record"] == "run").map(|r| r["event"].clone()).collect();
    assert_eq!(events.last().unwrap(), "rolling-back", "{events:?}");
    assert_eq!(w.status(&["--state-dir", "state"]).await[0]["state"], "interrupted");
    let refused = w.unroot(&["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"]).await;
    refused.exits(5);
    assert!(refused.stderr.contains(&format!("unroot resume {run}")), "{}", refused.stderr);
    // A resume that ends in a rollback exits 3: every service is back on its original.
    w.unroot(&["resume", "--state-dir", "state"]).await.exits(3);
    assert_eq!(w.uids("svc"), [0], "resume finished the rollback");
    assert_eq!(w.status(&["--state-dir", "state"]).await[0]["state"], "rolled-back");
}
