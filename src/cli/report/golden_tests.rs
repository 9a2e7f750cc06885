//! The report of fixed inputs rendered as HTML, Markdown and JSON, byte for byte as recorded
//! in `golden/`: a change of wording or layout shows here before a reader sees it. Run with
//! `UNROOT_BLESS=1` to record the renderings anew (and review the diff).

use super::{html, md};
use crate::engine::audit::{Class, Flag, Posture};
use crate::engine::report::history::{Down, Ended, Outcome, RunHistory, ServiceRun};
use crate::engine::report::{Kind, Now, Original, Report, VerifyReport, build, tests as fixture};
use crate::engine::verify::Verdict;
use crate::model::plan::Plan;
use crate::state::RunState;

/// A stretch down from `from` to `to` (`None`: still down), ended as `ended_by` says.
fn down(from: &str, to: Option<&str>, ended_by: Ended) -> Down {
    let seconds = to.and_then(|to| crate::engine::report::history::seconds_between(from, to));
    Down { from: from.into(), to: to.map(str::to_string), ended_by, seconds }
}

/// A run of day 3, which the plan no longer has, interrupted with one service still down.
fn day3() -> RunHistory {
    let service = |name: &str, outcome, down: Vec<Down>| ServiceRun {
        name: name.into(),
        touched: true,
        outcome,
        downtime_seconds: down.iter().filter_map(|d| d.seconds).sum(),
        down,
        failure: None,
    };
    RunHistory {
        run: "day3-b".into(),
        day: 3,
        state: RunState::Interrupted,
        started: "2026-11-28T09:00:00Z".into(),
        ended: "2026-11-28T09:03:00.400Z".into(),
        services: vec![
            service(
                "web",
                Outcome::Migrated,
                vec![down("2026-11-28T09:00:05Z", Some("2026-11-28T09:02:10.400Z"), Ended::Healthy)],
            ),
            service(
                "gone",
                Outcome::InProgress,
                vec![
                    down("2026-11-28T09:00:10Z", Some("2026-11-28T09:00:14.500Z"), Ended::Restored),
                    down("2026-11-28T09:01:00Z", None, Ended::Open),
                ],
            ),
        ],
        rollbacks: Vec::new(),
    }
}

/// The Swarm service `queue`, not in the plan, whose saved original ran as root.
fn queue() -> (Now, Original) {
    let posture = Posture { configured_user: "1000".into(), read_only: true, ..Posture::default() };
    let now = Now {
        kind: Kind::Service,
        image: "queue:2".into(),
        class: Class::NonRoot,
        configured_uid: Some(1000),
        process_uids: Vec::new(),
        flags: vec![Flag::NoNewPrivilegesMissing, Flag::NoTaskRunning].into(),
        exception: None,
        posture,
    };
    let inspect = serde_json::json!({"ID": "q1", "Version": {"Index": 3}, "Spec": {"Name": "queue",
        "TaskTemplate": {"ContainerSpec": {"Image": "queue:1", "User": "0", "Env": ["Q=1"]}}}});
    let inspect = crate::docker::Original::Service(crate::docker::swarm::ServiceInspect(inspect));
    (now, Original { run: "day1-a".into(), inspect, process_uids: Some(vec![0]) })
}

/// The engine's fixture with a Swarm service, a day-3 run and verify's verdicts added, built.
fn shop() -> Report {
    let plan = Plan::parse("shop.toml", fixture::PLAN).expect("the fixture's plan parses");
    let mut i = fixture::inputs(&plan);
    let (now, original) = queue();
    i.now.insert((Kind::Service, "queue".into()), now);
    i.originals.insert("queue".into(), original);
    i.runs.push(day3());
    i.filters = vec!["label=shop".into()];
    i.provenance = fixture::provenance(&plan, &i.runs);
    let verdicts = vec![
        Verdict { name: "db".into(), ok: true, problems: Vec::new() },
        Verdict {
            name: "cache".into(),
            ok: false,
            problems: vec!["health is unhealthy".into(), "control missing: read_only".into()],
        },
    ];
    i.verify = VerifyReport::of(&plan, &[1], verdicts);
    build(i)
}

/// A report of a plan with no run and no exception.
fn empty() -> Report {
    let mut r = super::tests::hostile();
    r.rollout = "empty".into();
    r.containers.clear();
    r.days.clear();
    r.exceptions.clear();
    r.provenance.runs.clear();
    r
}

/// Every case rendered by `render`, one after the other under its name.
fn all(render: impl Fn(&Report) -> String) -> String {
    let cases = [("shop", shop()), ("hostile", super::tests::hostile()), ("empty", empty())];
    cases.iter().map(|(name, r)| format!("===== {name} =====\n{}", render(r))).collect()
}

/// `text` is what `golden/NAME` holds (or becomes it, when blessing).
fn matches_golden(name: &str, text: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli/report/golden").join(name);
    if std::env::var_os("UNROOT_BLESS").is_some() {
        std::fs::write(&path, text).expect("the golden file is written");
    }
    let want = std::fs::read_to_string(&path).expect("the golden file is there");
    assert!(want == text, "{name} differs from {}; UNROOT_BLESS=1 records it anew", path.display());
}

#[test]
fn the_html_is_as_recorded() {
    // The stylesheet is a constant: each page holds it whole, once, where the marker is.
    let pages = all(html::render);
    assert_eq!(pages.matches(html::STYLE).count(), 3);
    matches_golden("report.html", &pages.replace(html::STYLE, "/* the stylesheet */"));
}

#[test]
fn the_markdown_is_as_recorded() {
    matches_golden("report.md", &all(md::render));
}

#[test]
fn the_json_is_as_recorded() {
    matches_golden("report.json", &all(|r| serde_json::to_string_pretty(r).expect("the report serializes") + "\n"));
}
