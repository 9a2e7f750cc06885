//! A Swarm service's day against the fake manager: restores, drained and departed nodes,
//! removed services and objects, `docker service rollback` after unroot (the failure at
//! every call is in `tests_every_call.rs`, one harness for every kind).

use super::*;
use crate::docker::fake::{Call, FakeDocker};
use crate::docker::fake_swarm::FakeSwarm;
use crate::docker::swarm::{Availability, DesiredState, NodeRef, NodeRole, NodeState, ServiceInspect, TaskState};
use crate::engine::preview::{self, NameSource};

fn node(id: &str, role: &str) -> NodeRef {
    NodeRef {
        id: id.into(),
        hostname: format!("host-{id}"),
        role: NodeRole::parse(role),
        state: NodeState::Ready,
        availability: Availability::Active,
        labels: Default::default(),
        engine_labels: Default::default(),
    }
}

pub(super) fn original_spec() -> Value {
    json!({
        "Name": "db",
        "Mode": {"Replicated": {"Replicas": 2}},
        "UpdateConfig": {"Parallelism": 1, "FailureAction": "rollback", "Order": "start-first"},
        "TaskTemplate": {"ContainerSpec": {
            "Image": "img:1",
            "Healthcheck": {"Test": ["CMD", "true"]},
            "Mounts": [{"Type": "volume", "Source": "data", "Target": "/data"}]
        }}
    })
}

/// A manager with two nodes and `db`, two replicas running as the image's user (root).
pub(super) fn fake() -> FakeDocker {
    let fake = FakeDocker::default();
    fake.with(|s| {
        let mut w = FakeSwarm {
            node_id: "n1".into(),
            nodes: vec![node("n1", "manager"), node("n2", "worker")],
            ..Default::default()
        };
        let at = w.now();
        w.services.push(ServiceInspect(
            json!({"ID": "svc1", "Version": {"Index": 10}, "UpdatedAt": at, "Spec": original_spec()}),
        ));
        w.reconcile("svc1", &original_spec());
        s.swarm = Some(w);
        s.images.insert("img:1".into(), json!({"Id": "sha256:img", "Config": {"User": ""}}));
    });
    fake
}

pub(super) fn plan() -> Plan {
    Plan::parse("t.toml", "[rollout]\nname = \"t\"\n[service.db]\nday = 1\nswarm = true\nuser = \"999:999\"\n").unwrap()
}

/// Runs day 1 with call `k` after the preview failed (none for 0). Returns the outcome, the
/// state dir and the number of calls the preview made.
fn run_day(fake: &FakeDocker, plan: &Plan, k: usize) -> (Outcome, tempfile::TempDir, usize) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let day = preview::compute(fake, plan, 1, &[], NameSource::Running).await.unwrap();
        let day = day.ready().unwrap_or_else(|b| panic!("{b:?}"));
        let base = fake.calls().len();
        if k > 0 {
            fake.fail_call(base + k);
        }
        (super::tests::apply_day(fake, plan, day, tmp.path()).await, tmp, base)
    })
}

/// The calls a clean day makes (the preview's included), for placing a failure.
fn clean_day_calls(plan: &Plan) -> Vec<Call> {
    let clean = fake();
    run_day(&clean, plan, 0);
    clean.calls()
}

/// The users of `db`'s tasks that Swarm wants running and that run.
pub(super) fn running_users(fake: &FakeDocker) -> Vec<String> {
    fake.with(|s| {
        let w = s.swarm.as_ref().unwrap();
        w.tasks
            .iter()
            .filter(|t| t.service_id == "svc1" && t.desired == DesiredState::Running && t.state == TaskState::Running)
            .map(|t| t.user.clone())
            .collect()
    })
}

#[test]
fn a_clean_swarm_day_migrates_keeps_the_health_check_and_leaves_no_job() {
    let fake = fake();
    let (outcome, tmp, _) = run_day(&fake, &plan(), 0);
    assert_eq!(outcome, Outcome::Applied);
    assert_eq!(running_users(&fake), ["999:999", "999:999"]);
    let spec = fake.with(|s| s.swarm.as_ref().unwrap().services[0].spec().clone());
    assert_eq!(
        spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"],
        original_spec()["TaskTemplate"]["ContainerSpec"]["Healthcheck"]
    );
    let names: Vec<String> =
        fake.with(|s| s.swarm.as_ref().unwrap().services.iter().map(|v| v.name().to_string()).collect());
    assert_eq!(names, ["db"], "no job is left");
    let owners = tmp.path().join("state/t/runs/day1-test/services/db/owners");
    for n in ["n1", "n2"] {
        assert_eq!(std::fs::read(owners.join(n).join("0")).unwrap(), b"C 0:0 ./a\nR 0:0\nEND\n");
    }
}

#[test]
fn a_service_that_fails_as_its_new_user_is_put_back_with_its_owners() {
    let fake = fake();
    fake.with(|s| s.swarm.as_mut().unwrap().fails_as = Some("999:999".into()));
    let (outcome, _tmp, _) = run_day(&fake, &plan(), 0);
    assert_eq!(outcome, Outcome::RolledBack);
    let (spec, jobs) = fake.with(|s| {
        let w = s.swarm.as_ref().unwrap();
        (w.services[0].spec().clone(), w.jobs.clone())
    });
    assert_eq!(spec, original_spec());
    assert_eq!(running_users(&fake), ["", ""]);
    assert_eq!(jobs.iter().filter(|j| j.starts_with("unroot-restore-db-")).count(), 2, "one per node: {jobs:?}");
}

#[test]
fn a_paused_day_resumed_after_its_cause_is_fixed_migrates() {
    let fake = fake();
    fake.with(|s| s.swarm.as_mut().unwrap().fails_as = Some("999:999".into()));
    let plan = Plan::parse(
        "t.toml",
        "[rollout]\nname = \"t\"\non_failure = \"pause\"\n[service.db]\nday = 1\nswarm = true\nuser = \"999:999\"\n",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let day = preview::compute(&fake, &plan, 1, &[], NameSource::Running).await.unwrap().ready().unwrap();
        let first = super::tests::apply_day(&fake, &plan, day.clone(), tmp.path()).await;
        assert_eq!(first, Outcome::Incomplete, "paused on the failed gate");
        // A `docker service rollback` of the paused service goes to the planned spec, never
        // to unroot's stopped one.
        let svc = fake.with(|s| s.swarm.as_ref().unwrap().services[0].clone());
        assert_eq!(svc.previous_spec(), Some(svc.spec()), "PreviousSpec is the planned spec");
        assert_eq!(svc.spec()["Mode"]["Replicated"]["Replicas"], 2);
        // The operator fixes the cause; Swarm's restart policy starts tasks that now run. The
        // failed ones stay in Swarm's history.
        fake.with(|s| {
            let w = s.swarm.as_mut().unwrap();
            w.fails_as = None;
            let spec = w.services[0].spec().clone();
            w.reconcile("svc1", &spec);
        });
        let resumed = super::tests::apply_day(&fake, &plan, day, tmp.path()).await;
        assert_eq!(resumed, Outcome::Applied, "the old failed tasks are not this gate's");
    });
    assert_eq!(running_users(&fake), ["999:999", "999:999"]);
}

/// Restores `db` of run `day1-test` in `tmp` as `unroot rollback` would.
fn restore_db(fake: &FakeDocker, tmp: &tempfile::TempDir) -> Result<(), StepFailure> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let stop = crate::engine::interrupt::Interrupt::default();
    let (ctx, _) = super::tests::test_ctx(fake, tmp.path(), &stop);
    let timings = crate::model::plan::Timings::default();
    let how = RestoreSpec { timings: &timings, helper_image: None, ownership: Ownership::Helper, expected_user: None };
    rt.block_on(ctx.restore("db", &how))
}

#[test]
fn a_restore_retried_while_a_node_is_down_does_not_stop_the_service_again() {
    let fake = fake();
    let (outcome, tmp, _) = run_day(&fake, &plan(), 0);
    assert_eq!(outcome, Outcome::Applied);
    let set_n2 = |state: &str| {
        fake.with(|s| s.swarm.as_mut().unwrap().nodes[1].state = NodeState::parse(state));
    };
    let updates = || fake.with(|s| s.swarm.as_ref().unwrap().updates.len());
    let restores =
        || fake.with(|s| s.swarm.as_ref().unwrap().jobs.iter().filter(|j| j.starts_with("unroot-restore-db-")).count());

    // n2 is down: n1's owners come back, the spec too; the restore names n2 and fails.
    set_n2("down");
    let e = restore_db(&fake, &tmp).unwrap_err();
    assert!(e.to_string().contains("node host-n2 (n2) is down"), "{e}");
    assert_eq!(fake.with(|s| s.swarm.as_ref().unwrap().services[0].spec().clone()), original_spec());
    assert_eq!(restores(), 1, "n1 only");
    // Retried while n2 is still down: nothing is stopped or restored again.
    let before = updates();
    assert!(restore_db(&fake, &tmp).is_err());
    assert_eq!(updates(), before, "the service was not stopped again");
    assert_eq!(restores(), 1);
    // n2 is back: only its copy is restored, and the restore completes.
    set_n2("ready");
    restore_db(&fake, &tmp).expect("restored");
    assert_eq!(restores(), 2, "n2's copy, once");
    assert_eq!(running_users(&fake), ["", ""]);
}

#[test]
fn a_node_drained_before_a_restore_is_named_at_once_and_done_when_it_is_active_again() {
    let fake = fake();
    let (outcome, tmp, _) = run_day(&fake, &plan(), 0);
    assert_eq!(outcome, Outcome::Applied);
    let set_n2 = |availability: &str| {
        fake.with(|s| s.swarm.as_mut().unwrap().nodes[1].availability = Availability::parse(availability));
    };
    let restores =
        || fake.with(|s| s.swarm.as_ref().unwrap().jobs.iter().filter(|j| j.starts_with("unroot-restore-db-")).count());
    set_n2("drain");
    let e = restore_db(&fake, &tmp).unwrap_err();
    assert!(e.to_string().contains("node host-n2 (n2) is drained"), "named, not waited for: {e}");
    assert_eq!(restores(), 1, "n1's copy only");
    set_n2("active");
    restore_db(&fake, &tmp).expect("restored");
    assert_eq!(restores(), 2);
    assert_eq!(running_users(&fake), ["", ""]);
}

#[test]
fn a_node_drained_while_a_job_waits_on_it_fails_the_step_naming_it() {
    let fake = fake();
    let plan = plan();
    // n2 is drained just before the scan job is created: Swarm never schedules it there.
    let scan = clean_day_calls(&plan)
        .iter()
        .position(|c| matches!(c, Call::Swarm("create_service", n) if n.starts_with("unroot-scan-")))
        .expect("a clean day scans");
    fake.before_call(scan + 1, |s| s.swarm.as_mut().unwrap().nodes[1].availability = Availability::Drain);
    let (outcome, tmp, _) = run_day(&fake, &plan, 0);
    assert_eq!(outcome, Outcome::RolledBack);
    let journal = std::fs::read_to_string(tmp.path().join("state/t/runs/day1-test/journal.jsonl")).unwrap();
    assert!(journal.contains("node host-n2 (n2) is drained"), "{journal}");
}

/// What `docker service rm db` does on the fake manager.
fn docker_service_rm(fake: &FakeDocker) {
    fake.with(|s| {
        let w = s.swarm.as_mut().unwrap();
        w.services.retain(|v| v.id() != "svc1");
        w.tasks.retain(|t| t.service_id != "svc1");
    });
}

/// What `docker service rollback` does to `db` on the fake manager.
fn docker_service_rollback(fake: &FakeDocker) {
    fake.with(|s| s.swarm.as_mut().unwrap().rollback("svc1"));
}

#[test]
fn a_service_already_at_its_planned_spec_is_only_gated_never_stopped() {
    let fake = fake();
    assert_eq!(run_day(&fake, &plan(), 0).0, Outcome::Applied);
    let tasks = || fake.with(|s| s.swarm.as_ref().unwrap().tasks.iter().filter(|t| t.service_id == "svc1").count());
    let before = tasks();
    // A fresh state directory: no ledger says it is migrated (by hand, by another plan).
    let (outcome, tmp, _) = run_day(&fake, &plan(), 0);
    assert_eq!(outcome, Outcome::Applied);
    let journal = Journal::read(&tmp.path().join("state/t/runs/day1-test/journal.jsonl")).unwrap();
    let started: Vec<Step> = journal
        .iter()
        .filter_map(|e| match &e.record {
            Record::Step { step, ok: None, .. } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(started, [Step::Inspect, Step::Health], "not stopped, re-owned or updated again");
    assert_eq!(tasks(), before, "no task was replaced: never scaled to zero");
    assert_eq!(running_users(&fake), ["999:999", "999:999"]);
}

#[test]
fn a_migrated_service_gets_its_own_update_config_back_and_docker_rollback_keeps_it_running() {
    let fake = fake();
    let (outcome, _tmp, _) = run_day(&fake, &plan(), 0);
    assert_eq!(outcome, Outcome::Applied);
    let svc = fake.with(|s| s.swarm.as_ref().unwrap().services[0].clone());
    assert_eq!(svc.spec()["UpdateConfig"], original_spec()["UpdateConfig"], "its own UpdateConfig, not unroot's");
    assert_eq!(svc.previous_spec(), Some(svc.spec()), "written twice: PreviousSpec is the settled spec too");
    let tasks = || fake.with(|s| s.swarm.as_ref().unwrap().tasks.iter().filter(|t| t.service_id == "svc1").count());
    let before = tasks();
    // An operator's `docker service rollback` after unroot: Swarm's PreviousSpec is the
    // migrated spec, so the tasks keep running (none replaced), never at zero.
    docker_service_rollback(&fake);
    assert_eq!(running_users(&fake), ["999:999", "999:999"]);
    assert_eq!(tasks(), before, "no task was replaced");
}

#[test]
fn a_restored_service_has_its_original_as_previous_spec_so_docker_rollback_keeps_it_running() {
    let fake = fake();
    fake.with(|s| s.swarm.as_mut().unwrap().fails_as = Some("999:999".into()));
    let (outcome, _tmp, _) = run_day(&fake, &plan(), 0);
    assert_eq!(outcome, Outcome::RolledBack);
    let svc = fake.with(|s| s.swarm.as_ref().unwrap().services[0].clone());
    assert_eq!(svc.spec(), &original_spec());
    assert_eq!(svc.previous_spec(), Some(&original_spec()), "the restore's last write is over the original");
    docker_service_rollback(&fake);
    assert_eq!(running_users(&fake), ["", ""], "still the original's two tasks");
}

#[test]
fn a_settling_write_that_fails_puts_the_service_back_whole() {
    let fake = fake();
    let plan = plan();
    // The settling write fails once: the health step fails after its gate passed.
    let settle = clean_day_calls(&plan)
        .iter()
        .rposition(|c| matches!(c, Call::Swarm("update_service", _)))
        .expect("a clean day writes");
    fake.fail_call(settle + 1);
    let (outcome, _tmp, _) = run_day(&fake, &plan, 0);
    // The failed write ends the day as a failure does: the service is put back whole.
    assert_eq!(outcome, Outcome::RolledBack);
    assert_eq!(fake.with(|s| s.swarm.as_ref().unwrap().services[0].spec().clone()), original_spec());
}

/// How many restore jobs of `db` ran, and how many spec writes the manager took.
fn restores_and_updates(fake: &FakeDocker) -> (usize, usize) {
    fake.with(|s| {
        let w = s.swarm.as_ref().unwrap();
        (w.jobs.iter().filter(|j| j.starts_with("unroot-restore-db-")).count(), w.updates.len())
    })
}

#[test]
fn a_node_that_left_the_swarm_is_skipped_and_said_and_the_restore_finishes() {
    let fake = fake();
    let (outcome, tmp, _) = run_day(&fake, &plan(), 0);
    assert_eq!(outcome, Outcome::Applied);
    // n2 left the swarm (`docker node rm`): its copy is out of reach for good.
    fake.with(|s| s.swarm.as_mut().unwrap().nodes.retain(|n| n.id != "n2"));
    restore_db(&fake, &tmp).expect("finishes without n2");
    assert_eq!(restores_and_updates(&fake).0, 1, "n1's copy only");
    assert_eq!(fake.with(|s| s.swarm.as_ref().unwrap().services[0].spec().clone()), original_spec());
    let journal = std::fs::read_to_string(tmp.path().join("state/t/runs/day1-test/journal.jsonl")).unwrap();
    assert!(journal.contains("node n2 left the swarm"), "said: {journal}");
    // Done: a second rollback has nothing left to do.
    let (_, updates) = restores_and_updates(&fake);
    restore_db(&fake, &tmp).expect("again");
    assert_eq!(restores_and_updates(&fake), (1, updates));
}

#[test]
fn a_service_removed_since_is_recreated_from_its_saved_original() {
    let fake = fake();
    let (outcome, tmp, _) = run_day(&fake, &plan(), 0);
    assert_eq!(outcome, Outcome::Applied);
    docker_service_rm(&fake);
    restore_db(&fake, &tmp).expect("recreated");
    let (spec, users) = fake.with(|s| {
        let w = s.swarm.as_ref().unwrap();
        let db = w.services.iter().find(|v| v.name() == "db").expect("db is back");
        let users: Vec<String> = w
            .tasks
            .iter()
            .filter(|t| t.service_id == db.id() && t.desired == DesiredState::Running && t.state == TaskState::Running)
            .map(|t| t.user.clone())
            .collect();
        (db.spec().clone(), users)
    });
    assert_eq!(spec, original_spec());
    assert_eq!(users, ["", ""], "its two tasks as before");
    assert_eq!(restores_and_updates(&fake).0, 2, "both nodes' owners came back before it ran");
}

#[test]
fn a_secret_pruned_since_is_left_out_of_the_restored_spec_and_said() {
    let fake = fake();
    let secret =
        json!([{"SecretID": "sec1", "SecretName": "pw", "File": {"Name": "pw", "UID": "0", "GID": "0", "Mode": 256}}]);
    fake.with(|s| {
        let w = s.swarm.as_mut().unwrap();
        w.secrets.push("sec1".into());
        w.services[0].0["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"] = secret.clone();
    });
    let (outcome, tmp, _) = run_day(&fake, &plan(), 0);
    assert_eq!(outcome, Outcome::Applied);
    fake.with(|s| s.swarm.as_mut().unwrap().secrets.clear());
    restore_db(&fake, &tmp).expect("restored without the secret");
    assert_eq!(fake.with(|s| s.swarm.as_ref().unwrap().services[0].spec().clone()), original_spec());
    assert_eq!(running_users(&fake), ["", ""]);
    let journal = std::fs::read_to_string(tmp.path().join("state/t/runs/day1-test/journal.jsonl")).unwrap();
    assert!(journal.contains("secret pw no longer exists"), "said: {journal}");
}

#[test]
fn a_node_without_the_image_any_more_is_skipped_and_the_service_is_not_stopped_again() {
    let fake = fake();
    let (outcome, tmp, _) = run_day(&fake, &plan(), 0);
    assert_eq!(outcome, Outcome::Applied);
    fake.with(|s| s.swarm.as_mut().unwrap().missing_images.push(("n2".into(), "img:1".into())));
    restore_db(&fake, &tmp).expect("finishes: n2's copy is skipped, and said");
    assert_eq!(running_users(&fake), ["", ""]);
    let journal = std::fs::read_to_string(tmp.path().join("state/t/runs/day1-test/journal.jsonl")).unwrap();
    assert!(journal.contains("node n2 does not have the image img:1"), "said: {journal}");
    // A second rollback does not stop the running service for a job that cannot run.
    let before = restores_and_updates(&fake);
    restore_db(&fake, &tmp).expect("again");
    assert_eq!(restores_and_updates(&fake), before);
}

#[test]
fn the_helper_jobs_run_in_the_plans_helper_image() {
    let fake = fake();
    fake.with(|s| s.swarm.as_mut().unwrap().fails_as = Some("999:999".into()));
    let plan = Plan::parse(
        "t.toml",
        "[rollout]\nname = \"t\"\nhelper_image = \"tools:1\"\n[service.db]\nday = 1\nswarm = true\nuser = \"999:999\"\n",
    )
    .unwrap();
    let (outcome, _tmp, _) = run_day(&fake, &plan, 0);
    assert_eq!(outcome, Outcome::RolledBack);
    let (jobs, images) = fake.with(|s| {
        let w = s.swarm.as_ref().unwrap();
        (w.jobs.clone(), w.job_images.clone())
    });
    let helpers: Vec<(&String, &String)> =
        jobs.iter().zip(&images).filter(|(j, _)| !j.starts_with("unroot-check-")).collect();
    assert!(
        ["scan", "apply", "restore"]
            .iter()
            .all(|k| helpers.iter().any(|(j, _)| j.starts_with(&format!("unroot-{k}-"))))
    );
    assert!(helpers.iter().all(|(_, i)| *i == "tools:1"), "{helpers:?}");
}

#[test]
fn the_scan_runs_only_on_nodes_that_ran_a_task_and_a_shared_volume_is_warned_about() {
    let fake = fake();
    // n3 joined after db's tasks were placed: it never ran one, and holds no copy of `data`.
    // Jobs take their time, so two at once would interleave.
    fake.with(|s| {
        let w = s.swarm.as_mut().unwrap();
        w.nodes.push(node("n3", "worker"));
        w.job_looks = 3;
    });
    // cache shares db's volume.
    fake.with(|s| {
        let w = s.swarm.as_mut().unwrap();
        let mut spec = original_spec();
        spec["Name"] = json!("cache");
        spec["Mode"] = json!({"Replicated": {"Replicas": 1}});
        spec["TaskTemplate"]["Placement"] = json!({"Constraints": ["node.id==n1"]});
        let at = w.now();
        w.services.push(ServiceInspect(json!({"ID": "svc2", "Version": {"Index": 3}, "UpdatedAt": at, "Spec": spec})));
        w.reconcile("svc2", &spec);
    });
    let plan = Plan::parse(
        "t.toml",
        "[rollout]\nname = \"t\"\nparallelism = 2\n[service.db]\nday = 1\nswarm = true\nuser = \"999:999\"\n\
         [service.cache]\nday = 1\nswarm = true\nuser = \"999:999\"\n",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let outcome = rt.block_on(async {
        let day = preview::compute(&fake, &plan, 1, &[], NameSource::Running).await.unwrap();
        for sp in &day.services {
            assert_eq!(sp.kind(), WorkloadKind::Service);
            let other = if sp.name() == "db" { "cache" } else { "db" };
            assert!(
                sp.warnings().iter().any(|w| w.starts_with(&format!("data is re-owned by {other} on this day too"))),
                "{}: {:?}",
                sp.name(),
                sp.warnings()
            );
        }
        let day = day.ready().unwrap_or_else(|b| panic!("{b:?}"));
        super::tests::apply_day(&fake, &plan, day, tmp.path()).await
    });
    assert_eq!(outcome, Outcome::Applied);
    let scanned: Vec<String> = fake.with(|s| {
        let w = s.swarm.as_ref().unwrap();
        w.job_tasks.iter().filter(|(j, _)| j.starts_with("unroot-scan-db-")).map(|(_, n)| n.clone()).collect()
    });
    assert_eq!(scanned, ["n1", "n2"], "no job on n3, which would create the volume there");
    // The two re-owns of `data` ran one after the other, never interleaved.
    let owners: Vec<String> = fake.with(|s| {
        let jobs = &s.swarm.as_ref().unwrap().jobs;
        jobs.iter()
            .filter(|j| j.starts_with("unroot-scan-") || j.starts_with("unroot-apply-"))
            .map(|j| if j.contains("-db-") { "db" } else { "cache" }.to_string())
            .collect()
    });
    let mut runs = owners.clone();
    runs.dedup();
    assert_eq!(runs.len(), 2, "one block of jobs per service: {owners:?}");
}

#[test]
fn the_preview_checks_the_helper_image_on_each_node_when_the_plan_names_one() {
    let fake = fake();
    fake.with(|s| s.swarm.as_mut().unwrap().missing_images.push(("n2".into(), "tools:1".into())));
    let plan = Plan::parse(
        "t.toml",
        "[rollout]\nname = \"t\"\nhelper_image = \"tools:1\"\n[service.db]\nday = 1\nswarm = true\nuser = \"999:999\"\n",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let day = rt.block_on(preview::compute(&fake, &plan, 1, &[], NameSource::Running)).unwrap();
    assert_eq!(
        day.services[0].blockers(),
        ["node host-n2 (n2) does not have the image tools:1 (nothing is pulled: load it there)"]
    );
}

#[test]
fn a_stack_removed_since_is_recreated_without_the_networks_that_went_with_it() {
    let fake = fake();
    fake.with(|s| {
        let w = s.swarm.as_mut().unwrap();
        w.networks.push("net1".into());
        w.services[0].0["Spec"]["TaskTemplate"]["Networks"] = json!([{"Target": "net1", "Aliases": ["db"]}]);
    });
    let (outcome, tmp, _) = run_day(&fake, &plan(), 0);
    assert_eq!(outcome, Outcome::Applied);
    // `docker stack rm`: the service and its overlay network are gone.
    docker_service_rm(&fake);
    fake.with(|s| s.swarm.as_mut().unwrap().networks.clear());
    restore_db(&fake, &tmp).expect("recreated without the network");
    let spec =
        fake.with(|s| s.swarm.as_ref().unwrap().services.iter().find(|v| v.name() == "db").unwrap().spec().clone());
    assert_eq!(spec, original_spec(), "the original, less the network that no longer exists");
    let journal = std::fs::read_to_string(tmp.path().join("state/t/runs/day1-test/journal.jsonl")).unwrap();
    assert!(journal.contains("network net1 no longer exists"), "said: {journal}");
}

#[test]
fn a_global_services_node_without_its_image_any_more_is_said_and_the_restore_finishes_on_the_others() {
    let fake = fake();
    fake.with(|s| {
        let w = s.swarm.as_mut().unwrap();
        let mut spec = original_spec();
        spec["Mode"] = json!({"Global": {}});
        w.services[0].0["Spec"] = spec.clone();
        w.reconcile("svc1", &spec);
    });
    let (outcome, tmp, _) = run_day(&fake, &plan(), 0);
    assert_eq!(outcome, Outcome::Applied);
    // `docker image prune` on n2: neither the original's task nor a helper runs there.
    fake.with(|s| s.swarm.as_mut().unwrap().missing_images.push(("n2".into(), "img:1".into())));
    restore_db(&fake, &tmp).expect("finishes where the original can run");
    assert_eq!(running_users(&fake), [""], "n1's task, as the original");
    let journal = std::fs::read_to_string(tmp.path().join("state/t/runs/day1-test/journal.jsonl")).unwrap();
    assert!(journal.contains("no task of the original runs there"), "said: {journal}");
    // Once done, a second rollback neither stops it again nor fails.
    let before = restores_and_updates(&fake);
    restore_db(&fake, &tmp).expect("again");
    assert_eq!(restores_and_updates(&fake).1, before.1, "not stopped again");
}
