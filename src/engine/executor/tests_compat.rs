//! The Swarm run of a state directory written by unroot at commit f84592b
//! (tests/fixtures/state-v1, see its README): service `web` killed right after its chown
//! step. Against the fake manager, set up as the real one was at the crash (its spec then is
//! in the fixture's `at-crash/swarm-service.json`), that run still reads, `resume` finishes
//! it and `rollback` puts the original back.

use std::path::Path;

use super::*;
use crate::docker::fake::FakeDocker;
use crate::docker::fake_swarm::FakeSwarm;
use crate::docker::swarm::{NodeRef, ServiceInspect, TaskState};
use crate::engine::runs::{self, Overwrite, ServiceProgress};
use crate::state::{RunState, StateLocation};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/state-v1");
const PLAN: &str = "compat-swarm";
/// What the fake calls what the fixture leaves as placeholders.
const NODE: &str = "n1";
const SERVICE_ID: &str = "svc1";
const IMAGE: &str = "busybox:fixture";

/// A placeholder of the fixture with the fake's value (the container runs' too: they are
/// in the same state directory, though only read here).
fn fill(text: &str, shas: &[(&str, String)]) -> String {
    let fixed = [
        ("@NODE@", NODE),
        ("@SERVICE_ID@", SERVICE_ID),
        ("@SERVICE_ID12@", SERVICE_ID),
        ("@IMAGE@", IMAGE),
        ("@DIR@", "/nonexistent"),
        ("@TEST@", "t"),
        ("@ID@", "0123456789ab0123456789ab0123456789ab0123456789ab0123456789ab0123"),
        ("@ID12@", "0123456789ab"),
        ("@IMAGE_ID@", "sha256:fixture"),
        ("@VOLPATH@", "/var/lib/docker/volumes/t-data/_data"),
    ];
    let text = fixed.iter().fold(text.to_string(), |t, (k, v)| t.replace(k, v));
    shas.iter().fold(text, |t, (k, v)| t.replace(k, v))
}

/// Copies the fixture's tree `from` to `to`, placeholders filled in names and texts.
fn copy_filled(from: &Path, to: &Path, shas: &[(&str, String)]) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().map(Result::unwrap) {
        let target = to.join(fill(&e.file_name().to_string_lossy(), shas));
        match e.file_type().unwrap().is_dir() {
            true => copy_filled(&e.path(), &target, shas),
            false => std::fs::write(target, fill(&std::fs::read_to_string(e.path()).unwrap(), shas)).unwrap(),
        }
    }
}

/// The fixture's state directory, filled in, in a temporary folder; the Swarm run's id.
fn state_dir() -> (tempfile::TempDir, StateLocation, String) {
    let fixture = Path::new(FIXTURE).join("state");
    let runs = fixture.join(PLAN).join("runs");
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().file_name().to_string_lossy().into_owned();
    // The header holds the sha256 of the plan as given: that plan, filled in.
    let plan = fill(&std::fs::read_to_string(runs.join(&run).join("plan.toml")).unwrap(), &[]);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(plan.as_bytes()))
    };
    let shas = [("@SWARM_PLAN_SHA256@", sha), ("@PLAN_SHA256@", String::new())];
    let tmp = tempfile::tempdir().unwrap();
    copy_filled(&fixture, &tmp.path().join("state"), &shas);
    let loc = StateLocation { dir: tmp.path().join("state"), hint: String::new() };
    (tmp, loc, run)
}

/// What the manager showed of `web` at the crash (`at-crash/swarm-service.json`): its
/// `Spec` is the one unroot stopped it with, its `PreviousSpec` the one from before unroot.
fn shown_at_crash() -> Value {
    let at_crash = std::fs::read_to_string(Path::new(FIXTURE).join("at-crash/swarm-service.json")).unwrap();
    serde_json::from_str(&fill(&at_crash, &[])).unwrap()
}

/// A one-node manager as the real one was at the crash: `web`'s task ran on it as root
/// and was shut down by unroot's stop, which left the spec Docker showed then. Nothing of
/// it comes from the state directory, which only the code under test reads.
fn fake_at_crash() -> FakeDocker {
    let mut at_crash = shown_at_crash();
    let original = at_crash["PreviousSpec"].take();
    let fake = FakeDocker::default();
    fake.with(|s| {
        let node = NodeRef {
            id: NODE.into(),
            hostname: "manager".into(),
            role: crate::docker::swarm::NodeRole::Manager,
            state: crate::docker::swarm::NodeState::Ready,
            availability: crate::docker::swarm::Availability::Active,
            labels: Default::default(),
            engine_labels: Default::default(),
        };
        let mut w = FakeSwarm { node_id: NODE.into(), nodes: vec![node], ..Default::default() };
        let created = w.now();
        // Its version before unroot's first write: any below the one shown at the crash.
        w.services.push(ServiceInspect(json!({"ID": SERVICE_ID, "Version": {"Index": 11}, "CreatedAt": created,
            "UpdatedAt": created, "Spec": original})));
        w.reconcile(SERVICE_ID, &original);
        // The manager's own clock: its last write came after the task it started.
        at_crash["PreviousSpec"] = original;
        at_crash["CreatedAt"] = json!(created);
        at_crash["UpdatedAt"] = json!(w.now());
        let stopped = at_crash["Spec"].clone();
        w.services[0] = ServiceInspect(at_crash);
        w.reconcile(SERVICE_ID, &stopped);
        s.swarm = Some(w);
        s.images.insert(IMAGE.into(), json!({"Id": "sha256:fixture", "Config": {"User": ""}}));
    });
    fake
}

/// The users of `web`'s tasks that Swarm wants running and that run.
fn running_users(fake: &FakeDocker) -> Vec<String> {
    fake.with(|s| {
        let tasks = &s.swarm.as_ref().unwrap().tasks;
        let running = tasks
            .iter()
            .filter(|t| t.service_id == SERVICE_ID && t.desired == crate::docker::swarm::DesiredState::Running);
        running.filter(|t| t.state == TaskState::Running).map(|t| t.user.clone()).collect()
    })
}

/// `web`'s spec on the fake manager, and the helper jobs that ran, in order.
fn spec_and_jobs(fake: &FakeDocker) -> (Value, Vec<String>) {
    fake.with(|s| {
        let w = s.swarm.as_ref().unwrap();
        (w.services.iter().find(|v| v.id() == SERVICE_ID).unwrap().spec().clone(), w.jobs.clone())
    })
}

fn run_state(loc: &StateLocation, run: &str) -> (RunState, Vec<(String, String, ServiceProgress)>) {
    let st = runs::status(loc, Some(run)).unwrap().remove(0);
    (
        st.state,
        st.services.into_iter().map(|s| (s.name, s.step.map_or(String::new(), |s| s.to_string()), s.state)).collect(),
    )
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(f)
}

#[test]
fn the_swarm_run_of_state_v1_reads_as_interrupted_after_its_chown() {
    let (_tmp, loc, run) = state_dir();
    assert_eq!(
        run_state(&loc, &run),
        (RunState::Interrupted, vec![("web".into(), "chown".into(), ServiceProgress::InProgress)])
    );
    let all = runs::status(&loc, None).unwrap();
    assert_eq!(all.len(), 3, "the container plan's two runs and this one");
}

#[test]
fn the_swarm_run_of_state_v1_resumes_to_the_planned_user_with_its_saved_manifest() {
    let (_tmp, loc, run) = state_dir();
    let fake = fake_at_crash();
    let stop = crate::engine::interrupt::Interrupt::default();
    let ends = block_on(runs::resume(&fake, &loc, Some(&run), &crate::engine::events::Discard, &stop)).unwrap();
    let ends: Vec<runs::RunEnd> = ends.into_iter().map(|r| r.end).collect();
    assert!(matches!(ends[..], [runs::RunEnd::Ran { outcome: Outcome::Applied, any_failed: false }]), "{ends:?}");
    let (spec, jobs) = spec_and_jobs(&fake);
    assert_eq!(spec["TaskTemplate"]["ContainerSpec"]["User"], "1000:1000");
    assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 1, "its replica back");
    assert_eq!(running_users(&fake), ["1000:1000"]);
    // The owners the run saved before the crash are applied; the node is not scanned again
    // (a scan now would record 1000:1000 as the old owners).
    assert!(!jobs.iter().any(|j| j.starts_with("unroot-scan-")), "{jobs:?}");
    assert_eq!(jobs.iter().filter(|j| j.starts_with("unroot-apply-web-")).count(), 1, "{jobs:?}");
    let ledger = Ledger::load(&loc.dir.join(PLAN), PLAN).unwrap();
    let web = &ledger.days["1"].services["web"];
    assert_eq!((web.state, web.run.as_str()), (ServiceState::Migrated, run.as_str()));
    assert_eq!(run_state(&loc, &run).0, RunState::Committed);
}

#[test]
fn the_swarm_run_of_state_v1_rolls_back_to_its_original_spec_and_owners() {
    let (_tmp, loc, run) = state_dir();
    let fake = fake_at_crash();
    let original = shown_at_crash()["PreviousSpec"].clone();
    let stop = crate::engine::interrupt::Interrupt::default();
    let out = &crate::engine::events::Discard;
    let end = block_on(runs::rollback(&fake, &loc, &run, &[], Overwrite::Refuse, out, &stop)).unwrap().end;
    assert!(matches!(end, runs::RunEnd::Restored), "{end:?}");
    let (spec, jobs) = spec_and_jobs(&fake);
    assert!(crate::engine::swarm::steps::same_spec(&spec, &original), "{spec:#}");
    assert_eq!(running_users(&fake), [""], "its one task, as the image's user (root)");
    // The saved manifest of the node gave the owners back.
    assert_eq!(jobs.iter().filter(|j| j.starts_with("unroot-restore-web-")).count(), 1, "{jobs:?}");
    let ledger = Ledger::load(&loc.dir.join(PLAN), PLAN).unwrap();
    assert!(ledger.days.values().all(|d| !d.services.contains_key("web")), "{ledger:?}");
    assert_eq!(
        run_state(&loc, &run),
        (RunState::RolledBack, vec![("web".into(), "restore".into(), ServiceProgress::Original)])
    );
}
