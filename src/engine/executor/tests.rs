//! The executor against the recording fake, for a container: who holds a name, removals,
//! rollback-service and pause, Ctrl-C and pruned originals (the failure at every call is
//! in `tests_every_call.rs`, one harness for every kind).

use std::time::Duration;

use super::*;
use crate::docker::fake::{Call, FakeDocker};
use crate::docker::{Finished, Process};
use crate::engine::preview::{self, NameSource};
use crate::model::passwd::tar_of;

pub(super) const ORIGINAL: &str = "0r1g0000000000000000000000000000000000000000000000000000000000000";

pub(super) fn fake() -> FakeDocker {
    let fake = FakeDocker::default();
    fake.add(
        json!({
            "Id": ORIGINAL, "Name": "/svc", "Image": "sha256:img", "Created": "2026-01-01T00:00:00Z",
            "Config": {"User": "", "Image": "img:1", "Env": ["A=1"], "Cmd": ["run"], "Hostname": "web"},
            "HostConfig": {"Binds": ["data:/data"], "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
                           "NetworkMode": "default"},
            "Mounts": [{"Type": "volume", "Name": "data", "Source": "/var/lib/docker/volumes/data/_data",
                        "Destination": "/data", "RW": true}],
            "State": {"Running": true, "Status": "running"},
            "NetworkSettings": {"Networks": {"bridge": {}}}
        }),
        vec![Process { pid: 1, ppid: 0, uid: Some(0), command: "run".into() }],
    );
    fake.archive(
        ORIGINAL,
        "/etc/passwd",
        tar_of("passwd", b"root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n", 0, 0),
    );
    fake.archive(ORIGINAL, "/etc/group", tar_of("group", b"root:x:0:\napp:x:1000:\n", 0, 0));
    fake.archive(ORIGINAL, "/data", tar_of("data", b"", 0, 0));
    for tool in ["sh", "find", "stat", "chown", "xargs"] {
        fake.archive(ORIGINAL, &format!("/bin/{tool}"), tar_of(tool, b"", 0, 0));
    }
    fake.with(|s| {
        for name in ["img:1", "sha256:img"] {
            s.images.insert(name.into(), json!({"Id": "sha256:img"}));
        }
        // The scan finds two entries and the root owned by root; the apply succeeds.
        s.helper = Some(Box::new(|c, _| {
            let line = c.command_line();
            let script = line.get(2).map(String::as_str).unwrap_or_default();
            if script == reown::SCAN_SCRIPT {
                Finished { exit_code: 0, stdout: b"C 0:0 ./a\nC 5:6 ./b\nR 0:0\n".to_vec(), stderr: vec![] }
            } else {
                Finished::default()
            }
        }));
    });
    fake
}

pub(super) fn plan(on_failure: &str) -> Plan {
    Plan::parse(
        "t.toml",
        &format!("[rollout]\nname = \"t\"\non_failure = \"{on_failure}\"\n[service.svc]\nday = 1\nuser = \"app\"\n"),
    )
    .unwrap()
}

/// What goes wrong in the `k`-th Docker call after the preview.
#[derive(Debug, Clone, Copy)]
enum Inject {
    Nothing,
    /// The replacement stops (its daemon restarted) just before call `k` is answered.
    ReplacementStops(usize),
}

/// Runs day 1 against `fake` with `inject`. Returns the outcome, the state dir and the
/// number of calls the preview made.
fn run_day(fake: &FakeDocker, plan: &Plan, inject: Inject) -> (Outcome, tempfile::TempDir, usize) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let day = preview::compute(fake, plan, 1, &[], NameSource::Running).await.unwrap();
        let mut day = day.ready().unwrap();
        for w in day.workloads_mut() {
            w.timings_mut().stable_for = Duration::from_millis(5);
            w.timings_mut().health_timeout = Duration::from_millis(300);
        }
        let base = fake.calls().len();
        match inject {
            Inject::Nothing => {}
            Inject::ReplacementStops(k) => fake.before_call(base + k, |s| {
                if let Some(c) = s.containers.iter_mut().find(|c| c.name() == "svc" && c.id() != ORIGINAL) {
                    c.0["State"] = json!({"Running": false, "Restarting": false, "Status": "exited", "ExitCode": 137});
                }
            }),
        }
        (apply_day(fake, plan, day, tmp.path()).await, tmp, base)
    })
}

/// The context of run `day1-test` of plan `t` in `STATE/state` (its folders made when
/// missing), and the plan's folder.
pub(super) fn test_ctx<'a>(
    fake: &'a FakeDocker,
    state: &std::path::Path,
    stop: &'a crate::engine::interrupt::Interrupt,
) -> (RunCtx<'a, FakeDocker>, PlanDir) {
    let plan_dir = PlanDir::new(&state.join("state"), "t");
    let run = RunDir::create(&plan_dir, "day1-test", "").unwrap();
    let journal = Journal::open(&run.journal_path()).unwrap();
    let out = &crate::engine::events::Discard;
    (RunCtx { port: fake, run, journal: Mutex::new(journal), out, stop, hint: String::new() }, plan_dir)
}

/// Applies `day` of `plan` (called `t`) as run `day1-test` in `STATE/state`.
pub(super) async fn apply_day(fake: &FakeDocker, plan: &Plan, day: ReadyDay, state: &std::path::Path) -> Outcome {
    let stop = crate::engine::interrupt::Interrupt::default();
    let (ctx, plan_dir) = test_ctx(fake, state, &stop);
    Apply::new(ctx, plan, day, plan_dir).run().await.unwrap().0
}

fn container_names(fake: &FakeDocker) -> Vec<String> {
    fake.with(|s| s.containers.iter().map(|c| c.name().to_string()).collect())
}

#[test]
fn who_holds_the_name_of_a_service_being_restored() {
    let original = Inspect(json!({
        "Id": "orig", "Image": "sha256:img",
        "Config": {"User": "", "Cmd": ["run"], "Labels": {"com.docker.compose.project": "p", "com.docker.compose.service": "web"}}
    }));
    let with = |patch: Value| {
        let mut c = original.0.clone();
        c["Id"] = json!("other");
        for (k, v) in patch.as_object().unwrap() {
            c["Config"][k] = v.clone();
        }
        Inspect(c)
    };
    let run = "day1-x";
    assert_eq!(classify_holder(&original, &original, run, Some("1000:1000")), Holder::Original);
    assert_eq!(classify_holder(&with(json!({})), &original, run, Some("1000:1000")), Holder::RecreatedOriginal);
    let ours = with(json!({"User": "1000:1000", "Labels": {LABEL_RUN: run}}));
    assert_eq!(classify_holder(&ours, &original, run, Some("1000:1000")), Holder::Replacement);
    let compose_made = with(json!({"User": "1000:1000", "Labels": {
        "com.docker.compose.project": "p", "com.docker.compose.service": "web", "com.docker.compose.config-hash": "new"
    }}));
    assert_eq!(classify_holder(&compose_made, &original, run, Some("1000:1000")), Holder::Successor);
    assert_eq!(classify_holder(&compose_made, &original, run, Some("999:999")), Holder::Foreign, "another user");
    let other_project = with(
        json!({"User": "1000:1000", "Labels": {"com.docker.compose.project": "q", "com.docker.compose.service": "web"}}),
    );
    assert_eq!(classify_holder(&other_project, &original, run, Some("1000:1000")), Holder::Foreign);
    assert_eq!(classify_holder(&with(json!({"Cmd": ["other"]})), &original, run, None), Holder::Foreign);
    let other_run = with(json!({"User": "1000:1000", "Labels": {LABEL_RUN: "day1-y"}}));
    assert_eq!(classify_holder(&other_run, &original, run, Some("1000:1000")), Holder::Foreign);
}

#[test]
fn a_removal_already_in_progress_is_waited_for() {
    let fake = fake();
    fake.script(
        "remove",
        crate::docker::fake::Script::Fail(DockerError::Conflict(
            "removal of container x is already in progress".into(),
        )),
    );
    fake.with(|s| {
        s.events.insert("svc".into(), vec!["destroy".into()]);
    });
    let tmp = tempfile::tempdir().unwrap();
    let plan_dir = PlanDir::new(&tmp.path().join("state"), "t");
    let run = RunDir::create(&plan_dir, "day1-test", "").unwrap();
    let journal = Journal::open(&run.journal_path()).unwrap();
    let stop = Interrupt::default();
    let ctx = RunCtx {
        port: &fake,
        run,
        journal: Mutex::new(journal),
        out: &crate::engine::events::Discard,
        stop: &stop,
        hint: String::new(),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(ctx.remove_gone(ORIGINAL)).unwrap();
    assert!(fake.calls().iter().any(|c| matches!(c, Call::Events(_))), "it waited on the container's events");
}

#[test]
fn a_clean_day_migrates_and_commits() {
    let fake = fake();
    let (outcome, tmp, _) = run_day(&fake, &plan("rollback-day"), Inject::Nothing);
    assert_eq!(outcome, Outcome::Applied);
    let c = fake.with(|s| s.container("svc").cloned()).unwrap();
    assert_ne!(c.id(), ORIGINAL);
    assert_eq!(c.configured_user(), "1000:1000");
    assert_eq!(container_names(&fake), ["svc"], "the parked original and helpers are gone");
    assert!(applied(&tmp, &plan("rollback-day")));
}

fn applied(tmp: &tempfile::TempDir, plan: &Plan) -> bool {
    Ledger::load(&tmp.path().join("state/t"), "t").unwrap().open_services(plan, 1).is_empty()
}

#[test]
fn rollback_service_and_pause_end_as_they_say() {
    // Fail the health gate of the replacement: its event subscription is the first one.
    for (policy, expected) in [("rollback-service", Outcome::Applied), ("pause", Outcome::Incomplete)] {
        let fake = fake();
        fake.script(
            "events",
            crate::docker::fake::Script::Fail(DockerError::Api { status: 500, message: "boom".into() }),
        );
        let (outcome, tmp, _) = run_day(&fake, &plan(policy), Inject::Nothing);
        let c = fake.with(|s| s.container("svc").cloned()).unwrap();
        match policy {
            "rollback-service" => {
                assert_eq!(outcome, expected);
                assert_eq!(c.id(), ORIGINAL, "the failed service is back on its original");
                let ledger = Ledger::load(&tmp.path().join("state/t"), "t").unwrap();
                assert_eq!(ledger.days["1"].services["svc"].state, ServiceState::Original);
                assert!(!applied(&tmp, &plan(policy)), "a service left on its original keeps its day open");
            }
            _ => {
                assert_eq!(outcome, expected);
                assert!(
                    container_names(&fake).iter().any(|n| n.starts_with("svc.unroot-")),
                    "pause keeps the parked original for resume or rollback"
                );
            }
        }
    }
}

#[test]
fn a_replacement_stopped_before_the_commit_keeps_its_original() {
    let plan = plan("rollback-day");
    let clean = fake();
    let (_, _, base) = run_day(&clean, &plan, Inject::Nothing);
    let calls = clean.calls();
    let remove = calls.iter().rposition(|c| *c == Call::Remove(ORIGINAL.into())).expect("the commit removes it");
    let k = calls[..remove].iter().rposition(|c| *c == Call::Inspect("svc".into())).unwrap() + 1 - base;

    let fake = fake();
    let (outcome, tmp, _) = run_day(&fake, &plan, Inject::ReplacementStops(k));
    assert!(matches!(outcome, Outcome::CommitIncomplete), "{outcome:?}");
    assert!(fake.with(|s| s.container(ORIGINAL).is_some()), "the parked original is kept");
    assert!(!fake.calls().contains(&Call::Remove(ORIGINAL.into())), "no removal was tried");
    assert!(!applied(&tmp, &plan), "not committed while the replacement is down");
}

#[test]
fn ctrl_c_before_a_step_is_journaled_as_an_interrupt_and_costs_no_downtime() {
    let fake = fake();
    let plan = plan("rollback-day");
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let entries = rt.block_on(async {
        let day = preview::compute(&fake, &plan, 1, &[], NameSource::Running).await.unwrap().ready().unwrap();
        let stop = crate::engine::interrupt::Interrupt::default();
        stop.set();
        let (ctx, plan_dir) = test_ctx(&fake, tmp.path(), &stop);
        let path = ctx.run.journal_path();
        Apply::new(ctx, &plan, day, plan_dir).run().await.unwrap();
        Journal::read(&path).unwrap()
    });
    let cause = entries.iter().find_map(|e| match &e.record {
        Record::Run { event: RunEvent::RollingBack, cause, .. } => Some(*cause),
        _ => None,
    });
    assert_eq!(cause, Some(Some(crate::state::Cause::Interrupted)), "{entries:#?}");
    assert_eq!(fake.with(|s| s.container("svc").map(|c| c.id().to_string())), Some(ORIGINAL.to_string()));
    let view = crate::engine::runs::RunView {
        plan_dir: PlanDir::new(&tmp.path().join("state"), "t"),
        id: "day1-test".into(),
        plan_name: "t".into(),
        day: 1,
        waves: vec![vec!["svc".into()]],
        plan_sha256: String::new(),
        plan_path: String::new(),
        entries,
    };
    let h = crate::engine::report::history::of(&view, view.state(false), &|t, _| t.to_string());
    assert!(h.services.iter().all(|s| !s.touched), "an inspect Ctrl-C kept from starting touched nothing");
    assert!(h.services.iter().all(|s| s.down.is_empty()), "nothing was stopped: {:?}", h.services);
}

#[test]
fn a_parked_original_pruned_while_unroot_was_down_never_commits_an_ungated_replacement() {
    let fake = fake();
    let plan = Plan::parse(
        "t.toml",
        "[rollout]\nname = \"t\"\n[service.svc]\nday = 1\nuser = \"app\"\nhealth = { exec = [\"probe\"] }\n",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let outcome = rt.block_on(async {
        let mut day = preview::compute(&fake, &plan, 1, &[], NameSource::Running).await.unwrap().ready().unwrap();
        for w in day.workloads_mut() {
            w.timings_mut().stable_for = Duration::from_millis(5);
            w.timings_mut().health_timeout = Duration::from_millis(300);
        }
        let stop = crate::engine::interrupt::Interrupt::default();
        let (ctx, plan_dir) = test_ctx(&fake, tmp.path(), &stop);
        // An earlier attempt saved and parked the original and created the replacement, then
        // unroot died before the gate, and `docker container prune` removed the parked
        // original. The replacement would never pass its probe.
        let original = fake.with(|s| s.container(ORIGINAL).cloned()).unwrap();
        ctx.run.save_original("svc", WorkloadKind::Container, &original.0).unwrap();
        for (step, ok) in
            [(Step::Inspect, None), (Step::Inspect, Some(true)), (Step::Create, None), (Step::Create, Some(true))]
        {
            let detail = json!({});
            ctx.record(Record::Step { service: "svc".into(), step, ok, error: None, detail }).unwrap();
        }
        fake.with(|s| {
            s.containers.retain(|c| c.id() != ORIGINAL);
            let mut replacement = original.0.clone();
            replacement["Id"] = json!("r3pl4c3000000000000000000000000000000000000000000000000000000000");
            replacement["Config"]["User"] = json!("1000:1000");
            replacement["Config"]["Labels"] = json!({LABEL_RUN: "day1-test"});
            replacement["State"] = json!({"Running": false, "Status": "created"});
            s.containers.push(Inspect(replacement));
            s.exec_exit = 1;
        });
        Apply::new(ctx, &plan, day, plan_dir).run().await.unwrap().0
    });
    assert!(matches!(outcome, Outcome::RolledBack), "{outcome:?}");
    let c = fake.with(|s| s.container("svc").cloned()).expect("a container holds the name");
    assert_eq!(c.configured_user(), "", "the original, recreated from original.json");
    assert!(c.running());
    assert!(!applied(&tmp, &plan), "never committed");
    assert_eq!(container_names(&fake), ["svc"], "nothing else left");
}
