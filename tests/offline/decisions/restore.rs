//! What a rollback and a plan's names may reach: never a container that is not the run's,
//! and owners given back in exactly the reverse order of the re-owns.

use serde_json::json;
use unroot::docker::fake::{Call, Program};

use super::world::World;

const APPLY: [&str; 7] = ["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"];

#[tokio::test(start_paused = true)]
async fn a_foreign_container_under_the_name_refuses_the_rollback_with_exit_2() {
    let w = World::new();
    w.run("svc", json!({}));
    w.plan("h", "[service.svc]\nday = 1\nuser = \"1000\"\n");
    w.unroot(&APPLY).await.exits(0);
    // Someone puts an unrelated container under the name.
    let migrated = w.id("svc");
    w.fake.with(|s| s.containers.retain(|c| c.id() != migrated));
    let foreign = w.run("svc", json!({"Config": {"Cmd": ["sleep", "999999"]}}));
    let ledger = w.ledger("h");
    let run = w.first_run().await;
    let calls = w.fake.calls().len();
    let rb = w.unroot(&["rollback", &run, "--state-dir", "state"]).await;
    rb.exits(2);
    assert!(rb.stderr.contains(&foreign[..12]), "it names the container: {}", rb.stderr);
    assert_eq!(w.changes_since(calls), [], "nothing was stopped, renamed or removed");
    assert_eq!((w.id("svc"), w.uids("svc")), (foreign, vec![0]), "the foreign container runs on");
    assert_eq!(w.ledger("h"), ledger, "nothing changed");
    assert_eq!(w.status(&["--state-dir", "state"]).await[0]["state"], "committed", "not rollback-incomplete");
}

#[tokio::test(start_paused = true)]
async fn a_service_name_that_is_a_prefix_of_another_containers_id_is_not_that_container() {
    let w = World::new();
    let other = w.run("other", json!({}));
    let prefix = &other[..12];
    w.plan("h", &format!("[service.{prefix}]\nday = 1\nuser = \"1000\"\n"));
    let preview = w.unroot(&["plan", "plan.toml", "--day", "1"]).await;
    preview.exits(1);
    assert!(preview.stdout.contains(&format!("no container is called {prefix}")), "{}", preview.stdout);
    w.unroot(&APPLY).await.exits(1);
    assert_eq!(w.names(), ["other"], "the unrelated container keeps its name");
    assert_eq!((w.id("other"), w.uids("other")), (other, vec![0]), "and runs on as it was");
    assert_eq!(w.changes_since(0), [], "nothing was ever stopped or renamed");
}

#[tokio::test(start_paused = true)]
async fn two_services_sharing_a_volume_are_restored_in_reverse_reown_order() {
    let w = World::new();
    w.volume("shared", &["x", "x/f", "g"]);
    let owners = w.owners("shared");
    // a stops slowly (its program ignores SIGTERM) and cannot run as its user; b stops at
    // once: b re-owns the volume first, a second, then a fails.
    w.run("a", World::mounting("shared"));
    w.run("b", World::mounting("shared"));
    w.programs(|c| {
        let root = c.configured_user().is_empty();
        let exits = (c.name() == "a" && !root).then(|| unroot::docker::Finished { exit_code: 1, ..Default::default() });
        Program { exits, ignores_sigterm: c.name() == "a" }
    });
    w.plan(
        "h",
        "parallelism = 2\nstable_for = \"1s\"\n\
         [service.a]\nday = 1\nuser = \"1000:1000\"\nstop_timeout = \"3s\"\n\
         [service.b]\nday = 1\nuser = \"1001:1001\"\nstop_timeout = \"1s\"\n",
    );
    let ran = w.unroot(&APPLY).await;
    ran.exits(3);
    assert!(ran.stdout.contains("on this day too"), "the preview warns of the shared volume:\n{}", ran.stdout);
    let chowns: Vec<String> = w
        .journal("h")
        .iter()
        .filter(|r| r["step"] == "chown" && r["ok"].is_null())
        .map(|r| r["service"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(chowns, ["b", "a"], "b re-owned first");
    assert_eq!(w.owners("shared"), owners, "the owners found by the first re-own are back");
    assert_eq!(w.uids("a"), [0]);
    assert_eq!(w.uids("b"), [0]);
    let stops = w.fake.calls().iter().filter(|c| matches!(c, Call::Stop(_))).count();
    assert!(stops >= 2, "both originals were stopped");
}
