//! One harness for every kind of workload: a failure (or a panic) injected at every Docker
//! call of a clean day, against the recording fake. Each time the workload must end
//! migrated (running as its planned user, the day committed), or exactly original (running
//! as before, its owners given back when they were changed), with nothing of unroot's left
//! behind. A container and a Swarm service differ only in how their state is read.

use super::*;
use crate::docker::fake::{Call, FakeDocker};
use crate::engine::preview::{self, NameSource};

/// A workload of one kind on the fake, and how a user would check it.
struct Case {
    kind: WorkloadKind,
    /// The world before the day: the workload running as root.
    fake: fn() -> FakeDocker,
    plan: fn() -> Plan,
    /// The users its processes (a container's, a service's running tasks) run as.
    users: fn(&FakeDocker) -> Vec<String>,
    /// The users of the original; the planned users.
    original_users: &'static [&'static str],
    planned_users: &'static [&'static str],
    /// What is exactly the original besides its users (same id, restart policy, spec), as a
    /// failure message when it is not.
    exactly_original: fn(&FakeDocker) -> Result<(), String>,
    /// Whether owners saved in `state` were given back on the fake.
    owners_given_back: fn(&FakeDocker) -> bool,
    /// The owners file of its first mount in the run folder (`services/NAME/…`).
    owners_file: &'static str,
    /// Containers, services and configs of unroot's left on the fake, besides the workload
    /// (and besides a parked original the commit could not remove, which is allowed).
    left_behind: fn(&FakeDocker, &Call) -> Vec<String>,
    /// Whether a failure of this call may leave the day migrated but open (a parked
    /// original the commit could not remove).
    may_leave_open: fn(&Call) -> bool,
    /// What such a day leaves must hold: the parked original stopped, unable to start by
    /// itself.
    left_open_holds: fn(&FakeDocker) -> Result<(), String>,
    /// The fewest calls a clean day makes (fewer means the fake no longer sees the day).
    min_calls: usize,
}

/// How many calls each outcome took.
#[derive(Debug, Default)]
struct Tally {
    applied: usize,
    rolled_back: usize,
    owners_back: usize,
    left_open: usize,
}

/// Runs day 1 of `case` with `inject(k)` at the `k`-th call after the preview (none for 0):
/// the outcome, the state dir and the calls the preview made. Time is paused: waits end as
/// soon as nothing else can happen.
fn run_day(case: &Case, fake: &FakeDocker, k: usize, panic: bool) -> (Outcome, tempfile::TempDir, usize) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let plan = (case.plan)();
    rt.block_on(async {
        let day = preview::compute(fake, &plan, 1, &[], NameSource::Running).await.unwrap();
        let mut day = day.ready().unwrap_or_else(|b| panic!("{b:?}"));
        for w in day.workloads_mut() {
            w.timings_mut().stable_for = Duration::from_millis(5);
            w.timings_mut().health_timeout = Duration::from_millis(300);
        }
        let base = fake.calls().len();
        match (k, panic) {
            (0, _) => {}
            (k, false) => fake.fail_call(base + k),
            (k, true) => fake.panic_call(base + k),
        }
        (super::tests::apply_day(fake, &plan, day, tmp.path()).await, tmp, base)
    })
}

/// Whether the day is recorded as applied in the ledger.
fn committed(tmp: &tempfile::TempDir, plan: &Plan) -> bool {
    Ledger::load(&tmp.path().join("state/t"), "t").unwrap().open_services(plan, 1).is_empty()
}

/// Checks one injected run of `case`; counts it in `tally`.
fn check(case: &Case, fake: &FakeDocker, tmp: &tempfile::TempDir, outcome: Outcome, failed: &Call, tally: &mut Tally) {
    let plan = (case.plan)();
    let users = (case.users)(fake);
    let left = (case.left_behind)(fake, failed);
    assert!(left.is_empty(), "{failed:?}: left behind: {left:?}");
    match outcome {
        Outcome::Applied => {
            tally.applied += 1;
            assert_eq!(users, case.planned_users, "{failed:?}: runs as planned");
            assert!(committed(tmp, &plan), "{failed:?}: the day is committed");
        }
        Outcome::CommitIncomplete if (case.may_leave_open)(failed) => {
            tally.left_open += 1;
            assert_eq!(users, case.planned_users, "{failed:?}: runs as planned");
            assert!(!committed(tmp, &plan), "{failed:?}: not committed while an original is parked");
            let journal = Journal::read(&tmp.path().join("state/t/runs/day1-test/journal.jsonl")).unwrap();
            assert!(crate::state::RunState::of(&journal, false).is_open(), "{failed:?}: open for resume");
            if let Err(why) = (case.left_open_holds)(fake) {
                panic!("{failed:?}: {why}");
            }
        }
        Outcome::RolledBack => {
            tally.rolled_back += 1;
            assert_eq!(users, case.original_users, "{failed:?}: runs as before");
            if let Err(why) = (case.exactly_original)(fake) {
                panic!("{failed:?}: {why}");
            }
            assert!(!committed(tmp, &plan), "{failed:?}");
            let saved = tmp.path().join("state/t/runs/day1-test/services").join(case.owners_file).exists();
            assert_eq!((case.owners_given_back)(fake), saved, "{failed:?}: owners given back when they were changed");
            tally.owners_back += usize::from(saved);
        }
        other => panic!("{failed:?}: one failure ended {other:?}"),
    }
}

/// Injects a failure (or a panic) at every call of a clean day of `case`.
fn at_every_call(case: &Case, panic: bool) {
    let calls = {
        let fake = (case.fake)();
        let (outcome, _, base) = run_day(case, &fake, 0, panic);
        assert_eq!(outcome, Outcome::Applied, "{}: a clean day applies", case.kind);
        fake.calls().len() - base
    };
    assert!(calls > case.min_calls, "{}: {calls}", case.kind);
    let mut tally = Tally::default();
    for k in 1..=calls {
        let fake = (case.fake)();
        let (outcome, tmp, base) = run_day(case, &fake, k, panic);
        let failed = fake.calls()[base + k - 1].clone();
        check(case, &fake, &tmp, outcome, &failed, &mut tally);
    }
    assert!(tally.applied > 0 && tally.rolled_back > 0 && tally.owners_back > 0, "{}: {tally:?}", case.kind);
    println!("{}: {} at each of {calls} calls: {tally:?}", case.kind, if panic { "a panic" } else { "a failure" });
}

/// A container `svc` running as root with a volume, moved to `app` (1000:1000).
fn container() -> Case {
    use super::tests::{ORIGINAL, fake, plan};
    Case {
        kind: WorkloadKind::Container,
        fake,
        plan: || plan("rollback-day"),
        users: |fake| fake.with(|s| s.container("svc").map(|c| c.configured_user().to_string()).into_iter().collect()),
        original_users: &[""],
        planned_users: &["1000:1000"],
        exactly_original: |fake| {
            let c = fake.with(|s| s.container("svc").cloned()).ok_or("nobody holds the name")?;
            if c.id() != ORIGINAL || !c.running() {
                return Err(format!("not the original itself, running: {} {}", c.id(), c.running()));
            }
            match c.0["HostConfig"]["RestartPolicy"]["Name"].as_str() {
                Some("always") => Ok(()),
                other => Err(format!("restart policy {other:?}, not restored")),
            }
        },
        owners_given_back: |fake| {
            // A restore list uploaded to a helper holds the old owner 5:6 of ./b.
            fake.with(|s| {
                s.uploads.values().any(|tar| {
                    let mut a = tar::Archive::new(&tar[..]);
                    a.entries().unwrap().any(|e| e.unwrap().path().unwrap().ends_with("5:6"))
                })
            })
        },
        owners_file: "svc/owners",
        left_behind: |fake, failed| {
            let parked_may_stay =
                matches!(failed, Call::Remove(id) if id == ORIGINAL) || *failed == Call::Inspect("svc".into());
            fake.with(|s| {
                s.containers
                    .iter()
                    .filter(|c| c.name() != "svc")
                    .filter(|c| !(parked_may_stay && c.id() == ORIGINAL && !c.running()))
                    .map(|c| c.name().to_string())
                    .collect()
            })
        },
        may_leave_open: |failed| {
            matches!(failed, Call::Remove(id) if id == ORIGINAL) || *failed == Call::Inspect("svc".into())
        },
        left_open_holds: |fake| {
            let parked = fake.with(|s| s.containers.iter().find(|c| c.id() == ORIGINAL).cloned());
            match parked {
                Some(c) if !c.running() && c.0["HostConfig"]["RestartPolicy"]["Name"] == "no" => Ok(()),
                Some(c) => Err(format!("the parked original may start: {}", c.0["HostConfig"]["RestartPolicy"])),
                None => Err("no parked original".into()),
            }
        },
        min_calls: 20,
    }
}

/// A Swarm service `db` with two replicas on two nodes, moved to 999:999.
fn service() -> Case {
    use super::tests_swarm::{fake, original_spec, plan, running_users};
    Case {
        kind: WorkloadKind::Service,
        fake,
        plan,
        users: running_users,
        original_users: &["", ""],
        planned_users: &["999:999", "999:999"],
        exactly_original: |fake| {
            let spec = fake.with(|s| {
                s.swarm.as_ref().unwrap().services.iter().find(|v| v.id() == "svc1").map(|v| v.spec().clone())
            });
            if spec == Some(original_spec()) { Ok(()) } else { Err(format!("not the original spec: {spec:?}")) }
        },
        owners_given_back: |fake| {
            fake.with(|s| s.swarm.as_ref().unwrap().jobs.iter().any(|j| j.starts_with("unroot-restore-db-")))
        },
        owners_file: "db/owners/n1/0",
        left_behind: |fake, failed| {
            fake.with(|s| {
                let w = s.swarm.as_ref().unwrap();
                let services = w.services.iter().map(|v| v.name().to_string()).filter(|n| n != "db");
                // A config is left only where removing it was the call that failed.
                let configs = w.configs.keys().map(|c| format!("config {c}"));
                let configs = configs.filter(|_| !matches!(failed, Call::Swarm("remove_config", _)));
                services.chain(configs).collect()
            })
        },
        may_leave_open: |_| false,
        left_open_holds: |_| Err("a Swarm service parks no original".into()),
        min_calls: 30,
    }
}

#[test]
fn a_failure_at_every_call_ends_migrated_or_exactly_original_for_every_kind() {
    for case in [container(), service()] {
        at_every_call(&case, false);
    }
}

#[test]
fn a_panic_at_every_call_ends_migrated_or_exactly_original_for_every_kind() {
    for case in [container(), service()] {
        at_every_call(&case, true);
    }
}

#[test]
fn each_kind_runs_its_own_steps_in_order() {
    assert_eq!(
        steps::steps_of(WorkloadKind::Container),
        [Step::Inspect, Step::Stop, Step::Rename, Step::Chown, Step::Create, Step::Health]
    );
    assert_eq!(
        steps::steps_of(WorkloadKind::Service),
        [Step::Inspect, Step::Stop, Step::Chown, Step::Update, Step::Health]
    );
    for case in [container(), service()] {
        let fake = (case.fake)();
        let (_, tmp, _) = run_day(&case, &fake, 0, false);
        let journal = Journal::read(&tmp.path().join("state/t/runs/day1-test/journal.jsonl")).unwrap();
        let mut started: Vec<Step> = journal
            .iter()
            .filter_map(|e| match &e.record {
                Record::Step { step, ok: None, .. } if *step != Step::Commit => Some(*step),
                _ => None,
            })
            .collect();
        started.dedup();
        assert_eq!(started, steps::steps_of(case.kind), "{}: the journal holds its steps in order", case.kind);
    }
}
