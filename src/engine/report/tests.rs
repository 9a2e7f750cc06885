use serde_json::json;

use super::history::{Ended, Failure, Outcome, ServiceRun};
use super::*;
use crate::state::{AppliedDay, RunState, ServiceRecord, Step};

/// A plan of two days: two services to migrate and a documented exception.
pub(crate) const PLAN: &str = r#"[rollout]
name = "shop"

[service.db]
day = 1
user = "999:999"

[service.cache]
day = 1
user = "1000"

[service.agent]
day = 2
keep_root = "reads host /proc"
cap_drop = ["ALL"]
read_only = true
"#;

fn now(class: Class, uids: &[u32], posture: Posture, flags: &[Flag], exception: Option<&str>) -> Now {
    Now {
        kind: Kind::Container,
        image: "img".into(),
        class,
        configured_uid: None,
        process_uids: uids.to_vec(),
        flags: flags.to_vec().into(),
        exception: exception.map(str::to_string),
        posture,
    }
}

fn record(state: ServiceState, run: &str) -> ServiceRecord {
    ServiceRecord { state, run: run.into(), compose: None, stack: None, settings: None }
}

/// The one run of [`inputs`]: day 1, db migrated, cache failed its gate and rolled back.
fn runs() -> Vec<RunHistory> {
    let service = |name: &str, outcome, seconds: f64, failure: Option<Failure>| ServiceRun {
        name: name.into(),
        touched: true,
        outcome,
        downtime_seconds: seconds,
        down: vec![history::Down {
            from: "t0".into(),
            to: Some("t1".into()),
            ended_by: Ended::Healthy,
            seconds: Some(seconds),
        }],
        failure,
    };
    vec![RunHistory {
        run: "day1-a".into(),
        day: 1,
        state: RunState::Committed,
        started: "2026-11-27T10:00:00Z".into(),
        ended: "2026-11-27T10:01:00Z".into(),
        services: vec![
            service("db", Outcome::Migrated, 4.5, None),
            service(
                "cache",
                Outcome::Original,
                2.0,
                Some(Failure {
                    step: Step::Health,
                    at: "t".into(),
                    error: "log: pw <redacted>".into(),
                    log: vec!["pw <redacted>".into()],
                    log_saved: true,
                }),
            ),
        ],
        rollbacks: vec![history::Rollback {
            services: vec!["cache".into()],
            started: "t".into(),
            ended: Some("t".into()),
            ok: true,
            cause: Some(crate::state::Cause::StepFailed),
            why: "cache: health failed: log: pw <redacted>".into(),
        }],
    }]
}

/// A fixed provenance of a report of `plan` that read `runs`: the first run's header
/// records who ran it, the others' do not (an older unroot wrote them).
pub(crate) fn provenance(plan: &Plan, runs: &[RunHistory]) -> Provenance {
    let read = runs.iter().enumerate().map(|(i, r)| RunRead {
        run: r.run.clone(),
        day: r.day,
        user: Some("root (sudo from alice)".to_string()).filter(|_| i == 0),
        host: Some("shop-1".to_string()).filter(|_| i == 0),
    });
    Provenance {
        daemon: Daemon {
            id: "7TRN:IPZB:QYBU:VMXW:3CVA:5JMG:CMKY:XH5H:2EBD:QEDZ:LBLW:WLVN".into(),
            name: "shop-1".into(),
            engine_version: "27.3.1".into(),
            api_version: "1.47".into(),
            endpoint: "unix:///var/run/docker.sock".into(),
        },
        host: "shop-1".into(),
        unroot_version: "0.1.0".into(),
        plan: PlanFile {
            path: plan.source.name.clone(),
            absolute_path: format!("/srv/rollout/{}", plan.source.name),
            sha256: plan.sha256.clone(),
        },
        runs: read.collect(),
        benchmark: crate::engine::findings::CIS_EDITION,
    }
}

/// Fixed inputs of a report of [`PLAN`]: one run of day 1 that migrated db and rolled
/// cache back, the exception `agent`, and a container the plan does not name.
pub(crate) fn inputs(plan: &Plan) -> Inputs<'_> {
    let migrated = Posture { configured_user: "999:999".into(), no_new_privileges: true, ..Posture::default() };
    let agent = Posture { cap_drop: vec!["ALL".into()], ..Posture::default() };
    let c = |n: &str| (Kind::Container, n.to_string());
    let now = BTreeMap::from([
        (c("db"), now(Class::NonRoot, &[999], migrated, &[Flag::RootfsWritable], None)),
        (c("cache"), now(Class::Root, &[0], Posture::default(), &[Flag::RootfsWritable], None)),
        (
            c("agent"),
            now(
                Class::Exception,
                &[0],
                agent,
                &[
                    Flag::RootfsWritable,
                    Flag::NoNewPrivilegesMissing,
                    Flag::ControlMissing(crate::engine::audit::Control::ReadOnly),
                ],
                Some("reads host /proc"),
            ),
        ),
        (c("other"), now(Class::NonRoot, &[33], Posture::default(), &[], None)),
    ]);
    let exceptions = BTreeMap::from([(
        "agent".to_string(),
        Seen { posture: now[&c("agent")].posture.clone(), process_uids: vec![0] },
    )]);
    let original = json!({"Id": "abc", "Config": {"User": "", "Env": ["DB_PASSWORD=hunter2-secret"]},
        "HostConfig": {"CapAdd": ["NET_RAW"], "ReadonlyRootfs": false}, "Mounts": []});
    let original = crate::docker::Original::Container(crate::docker::Inspect(original));
    let originals = BTreeMap::from([
        ("db".to_string(), Original { run: "day1-a".into(), inspect: original.clone(), process_uids: Some(vec![0]) }),
        ("cache".to_string(), Original { run: "day1-a".into(), inspect: original, process_uids: None }),
    ]);
    let mut ledger = Ledger { plan: "shop".into(), days: BTreeMap::new() };
    ledger.days.insert(
        "1".into(),
        AppliedDay {
            run: "day1-a".into(),
            committed: "2026-11-27T10:01:00Z".into(),
            services: BTreeMap::from([
                ("db".to_string(), record(ServiceState::Migrated, "day1-a")),
                ("cache".to_string(), record(ServiceState::Original, "day1-a")),
            ]),
        },
    );
    let runs = runs();
    Inputs {
        plan,
        generated: "2026-11-27T11:00:00Z".into(),
        filters: Vec::new(),
        provenance: provenance(plan, &runs),
        now,
        exceptions,
        originals,
        ledger,
        runs,
        verify: VerifyReport::of(plan, &[1], Vec::new()),
    }
}

#[test]
fn each_container_has_its_before_and_now_and_every_finding_its_cis_id() {
    let plan = Plan::parse("shop.toml", PLAN).unwrap();
    let r = build(inputs(&plan));
    let by = |n: &str| r.containers.iter().find(|c| c.name == n).unwrap();
    let db = by("db");
    let before = db.before.as_ref().unwrap();
    assert_eq!((before.class, db.now.class, db.standing), (Class::Root, Class::NonRoot, Standing::Migrated));
    assert_eq!(before.posture.cap_add, ["NET_RAW"]);
    assert_eq!(before.process_uids.as_deref(), Some(&[0][..]));
    let rules = |s: &Side| s.findings.iter().map(|f| (f.rule, f.cis)).collect::<Vec<_>>();
    // NET_RAW is one of Docker's defaults: adding it is no CIS 5.4 finding.
    assert_eq!(rules(before), [("UNROOT001", Some("4.1")), ("UNROOT005", Some("5.13")), ("UNROOT006", Some("5.26"))]);
    assert_eq!(rules(&db.now), [("UNROOT005", Some("5.13"))]);
    let cache = by("cache");
    assert_eq!((cache.standing, cache.before.as_ref().unwrap().process_uids.clone()), (Standing::Original, None));
    let other = by("other");
    assert!(other.before.is_none() && other.standing == Standing::NotPlanned);

    let agent = &by("agent").now;
    assert_eq!(agent.findings[0].accepted.as_deref(), Some("reads host /proc"), "the exception accepts root");
    let missing = agent.findings.iter().find(|f| f.rule == "UNROOT002").unwrap();
    assert!(missing.accepted.is_none());
    let e = &r.exceptions[0];
    let controls: Vec<(&str, bool)> = e.controls.iter().map(|c| (c.control.as_str(), c.in_place)).collect();
    assert_eq!(controls, [("cap_drop ALL", true), ("read_only", false)]);
    assert_eq!((e.reason.as_str(), e.present, e.process_uids.as_slice()), ("reads host /proc", true, &[0][..]));

    let root_row = r.cis.iter().find(|c| c.cis == Some("4.1")).unwrap();
    assert_eq!(root_row.rules, ["UNROOT001", "UNROOT008"], "4.1 is one row, whichever rule finds it");
    // Before: db and cache (originals) and agent (untouched, root now); now: cache; agent accepted.
    assert_eq!((root_row.before, root_row.now, root_row.accepted_now), (3, 1, 1));
    assert_eq!(
        (r.summary.root_before, r.summary.root_now, r.summary.migrated),
        (3, 2, 1),
        "the exception counts as root"
    );
    assert_eq!((r.summary.rollbacks, r.summary.downtime_seconds), (1, 6.5));
    assert_eq!(cache.standing, Standing::Original, "the run that touched it left it on its original");
    assert_eq!(
        r.days.iter().map(|d| (d.day, d.status)).collect::<Vec<_>>(),
        [(1, DayStatus::PartlyApplied), (2, DayStatus::NotApplied)]
    );
    assert_eq!(r.days[0].committed_by.as_deref(), Some("day1-a"));
}

#[test]
fn the_secrets_of_a_service_are_its_environments_and_long_values_of_any() {
    let mut s = Secrets::default();
    s.add("a", &["TOKEN=abcdefgh".to_string(), "X=1".to_string()]);
    s.add("b", &["Y=2".to_string(), "DEBUG=0".to_string()]);
    s.settle();
    assert_eq!(s.clean("a=1 b=2 tok=abcdefgh", ["a"]), "a=<redacted> b=2 tok=<redacted>");
    assert_eq!(s.clean("a=1 b=2 tok=abcdefgh", ["b"]), "a=1 b=<redacted> tok=<redacted>");
    assert_eq!(s.clean("uids [0]", ["a"]), "uids [0]", "b's short value is a word like any other elsewhere");
}

#[test]
fn a_saved_original_gives_its_environment_a_containers_or_a_services() {
    use crate::docker::Original;
    use crate::model::workload::WorkloadKind;
    let spec = json!({"TaskTemplate": {"ContainerSpec": {"Env": ["B=2"]}}});
    assert_eq!(Original::new(WorkloadKind::Container, json!({"Config": {"Env": ["A=1"]}})).env(), ["A=1"]);
    let service = json!({"ID": "s", "Version": {"Index": 1}, "Spec": spec});
    assert_eq!(Original::new(WorkloadKind::Service, service).env(), ["B=2"]);
    let container = json!({"Config": {"Env": null}, "Spec": spec});
    assert!(Original::new(WorkloadKind::Container, container).env().is_empty(), "a container's, though empty");
}

#[test]
fn verify_reports_every_committed_day_and_checks_only_the_plans() {
    let plan = Plan::parse("shop.toml", PLAN).unwrap();
    let verdicts = vec![
        crate::engine::verify::Verdict { name: "db".into(), ok: true, problems: Vec::new() },
        crate::engine::verify::Verdict { name: "cache".into(), ok: false, problems: vec!["root".into()] },
    ];
    // Day 1 has db and cache; day 7 is no longer in the plan.
    assert_eq!(VerifyReport::through(&plan, &[1, 7]), Some(1));
    let v = VerifyReport::of(&plan, &[1, 7], verdicts);
    let days: Vec<(u32, Option<bool>, usize)> = v.days.iter().map(|d| (d.day, d.ok, d.services.len())).collect();
    assert_eq!(days, [(1, Some(false), 2), (7, None, 0)]);
    assert_eq!(v.ok, Some(false));
    assert_eq!(VerifyReport::of(&plan, &[7], Vec::new()).ok, None, "nothing was checked");
}
