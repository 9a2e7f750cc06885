//! Swarm services against a real multi-node swarm the test builds (SPEC §11): three
//! Docker-in-Docker nodes, a manager and two workers, on a private network; unroot talks to
//! the manager over tcp as an operator's context would.

mod common;

use common::swarm::Swarm;
use common::{TestEnv, image, unroot};
use serde_json::Value;

/// `unroot ARGS` against the swarm's manager.
fn against(swarm: &Swarm, args: &[&str]) -> (Option<i32>, String, String) {
    let out =
        unroot().env("DOCKER_HOST", swarm.manager().host()).env_remove("DOCKER_CONTEXT").args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn the_audit_covers_services_with_their_users_and_the_uids_the_manager_sees() {
    let env = TestEnv::new("swarm-audit");
    let swarm = Swarm::start(&env, 2);
    let busybox = image("busybox");
    swarm.load_image(&busybox);
    // Root, on the two workers: the manager cannot see its processes.
    let on_workers = ["--replicas", "2", "--replicas-max-per-node", "1", "--constraint", "node.role==worker"];
    swarm.create_service("rooted", &[&on_workers[..], &[&busybox, "sleep", "1000000"]].concat());
    // Non-root, one task per node: the manager sees its own.
    swarm.create_service("plain", &["--mode", "global", "--user", "1000:1000", &busybox, "sleep", "1000000"]);
    swarm.wait_running_tasks("rooted", 2);
    swarm.wait_running_tasks("plain", 3);

    let (code, out, err) = against(&swarm, &["audit", "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let services = report["services"].as_array().expect("services listed");
    let by_name = |n: &str| services.iter().find(|s| s["name"] == n).unwrap_or_else(|| panic!("{n} in {out}")).clone();

    let rooted = by_name("rooted");
    assert_eq!(rooted["class"], "root");
    assert_eq!(rooted["mode"], "replicated");
    assert_eq!(rooted["replicas"], 2);
    assert_eq!(rooted["configured_uid"], 0, "busybox has no USER: its tasks start as root");
    assert_eq!((rooted["tasks_running"].as_u64(), rooted["tasks_seen"].as_u64()), (Some(2), Some(0)));
    assert!(rooted["flags"].as_array().unwrap().iter().any(|f| f == "tasks-on-other-nodes:2"), "{rooted}");

    let plain = by_name("plain");
    assert_eq!(plain["class"], "non-root");
    assert_eq!(plain["mode"], "global");
    assert_eq!(plain["configured_user"], "1000:1000");
    assert_eq!((plain["tasks_running"].as_u64(), plain["tasks_seen"].as_u64()), (Some(3), Some(1)));
    assert_eq!(plain["process_uids"], serde_json::json!([1000]), "the manager's own task runs as 1000");

    // The root service fails the gate; a filter on the other one passes it.
    let (code, out, _) = against(&swarm, &["audit", "--fail-on-root"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("2 Swarm services: 1 root"), "{out}");
    let (code, out, _) = against(&swarm, &["audit", "--fail-on-root", "--filter", "name=plain"]);
    assert_eq!(code, Some(0), "{out}");
}
