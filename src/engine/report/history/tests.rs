use serde_json::Value;

use super::*;
use crate::model::plan::OnFailure;
use crate::state::PlanDir;

/// Leaves every text as it is.
fn keep(text: &str, _: &str) -> String {
    text.to_string()
}

fn at(sec: u32, ms: u32) -> String {
    format!("2026-11-27T10:{:02}:{:02}.{ms:03}Z", sec / 60, sec % 60)
}

struct J(Vec<Entry>);

impl J {
    fn push(&mut self, ts: String, record: Record) {
        let seq = self.0.len() as u64 + 1;
        self.0.push(Entry { seq, ts, record });
    }
    fn step(&mut self, ts: String, service: &str, step: Step, ok: Option<bool>, error: Option<&str>) {
        let record =
            Record::Step { service: service.into(), step, ok, error: error.map(str::to_string), detail: Value::Null };
        self.push(ts, record);
    }
    /// A step that starts at `from` and ends well at `to`.
    fn done(&mut self, from: String, to: String, service: &str, step: Step) {
        self.step(from, service, step, None, None);
        self.step(to, service, step, Some(true), None);
    }
}

fn view(entries: Vec<Entry>) -> RunView {
    RunView {
        plan_dir: PlanDir::new(std::path::Path::new("/nonexistent"), "p"),
        id: "day1-20261127T100000".into(),
        plan_name: "p".into(),
        day: 1,
        waves: vec![vec!["a".into(), "b".into()]],
        plan_sha256: String::new(),
        plan_path: String::new(),
        entries,
    }
}

fn header() -> Record {
    Record::Header {
        run: "day1-20261127T100000".into(),
        plan: "p".into(),
        plan_sha256: String::new(),
        day: 1,
        waves: vec![vec!["a".into(), "b".into()]],
        on_failure: OnFailure::RollbackService,
        version: "0".into(),
        plan_path: String::new(),
        user: String::new(),
        host: String::new(),
    }
}

#[test]
fn downtime_runs_from_the_stop_to_the_gate_and_each_rollback_says_why() {
    let mut j = J(Vec::new());
    j.push(at(0, 0), header());
    j.push(at(0, 0), Record::run(RunEvent::Started));
    // a: migrated, down 4.5 s.
    j.done(at(1, 0), at(1, 100), "a", Step::Inspect);
    j.done(at(10, 0), at(12, 0), "a", Step::Stop);
    j.done(at(12, 0), at(12, 200), "a", Step::Rename);
    j.done(at(12, 200), at(13, 0), "a", Step::Create);
    j.done(at(13, 0), at(14, 500), "a", Step::Health);
    // b: its health gate fails, it is restored on its own: down from 11 s to 25 s.
    j.done(at(1, 0), at(1, 100), "b", Step::Inspect);
    j.done(at(11, 0), at(12, 0), "b", Step::Stop);
    j.step(at(13, 0), "b", Step::Health, None, None);
    j.step(at(20, 0), "b", Step::Health, Some(false), Some("exited with code 1"));
    j.done(at(20, 100), at(25, 0), "b", Step::Restore);
    j.done(at(26, 0), at(26, 500), "a", Step::Commit);
    j.push(at(27, 0), Record::run(RunEvent::Committed));
    // Later the operator rolls a back: down again from the restore's start.
    j.push(
        at(100, 0),
        Record::rollback(RunEvent::ServiceRollback, Cause::Operator, Some("rollback of a".into()), vec!["a".into()]),
    );
    j.done(at(100, 500), at(103, 0), "a", Step::Restore);
    j.push(at(103, 100), Record::run_with(RunEvent::ServicesRolledBack, "a"));

    let h = of(&view(j.0), RunState::Committed, &keep);
    assert_eq!((h.started.as_str(), h.ended.as_str()), ("2026-11-27T10:00:00.000Z", "2026-11-27T10:01:43.100Z"));
    let a = &h.services[0];
    assert_eq!(
        a.down.iter().map(|d| (d.seconds, d.ended_by)).collect::<Vec<_>>(),
        [(Some(4.5), Ended::Healthy), (Some(2.5), Ended::Restored)]
    );
    assert_eq!(a.downtime_seconds, 7.0);
    assert_eq!(a.outcome, super::Outcome::Original, "restored by the later rollback");
    let b = &h.services[1];
    assert_eq!((b.downtime_seconds, b.down[0].ended_by), (14.0, Ended::Restored));
    assert_eq!(b.failure.as_ref().map(|f| (f.step, f.error.as_str())), Some((Step::Health, "exited with code 1")));

    assert_eq!(h.rollbacks.len(), 2);
    let (rb, ra) = (&h.rollbacks[0], &h.rollbacks[1]);
    assert_eq!(
        (rb.services.as_slice(), rb.cause, rb.ok),
        (["b".to_string()].as_slice(), Some(Cause::StepFailed), true)
    );
    assert_eq!(rb.why, "b: health failed: exited with code 1");
    assert_eq!(
        (rb.started.as_str(), rb.ended.as_deref()),
        ("2026-11-27T10:00:20.100Z", Some("2026-11-27T10:00:25.000Z"))
    );
    assert_eq!((ra.cause, ra.ok), (Some(Cause::Operator), true));
    assert_eq!(ra.why, "the operator ran unroot rollback");
}

#[test]
fn a_journal_without_causes_names_the_failed_step_and_an_open_stretch_has_no_end() {
    let mut j = J(Vec::new());
    j.push(at(0, 0), header());
    j.push(at(0, 0), Record::run(RunEvent::Started));
    j.done(at(1, 0), at(2, 0), "a", Step::Stop);
    j.step(at(3, 0), "a", Step::Create, None, None);
    j.step(at(4, 0), "a", Step::Create, Some(false), Some("no such image"));
    j.done(at(1, 0), at(2, 0), "b", Step::Stop);
    // An earlier version wrote the rollback without a cause; b's restore never ends.
    j.push(at(5, 0), Record::run(RunEvent::RollingBack));
    j.step(at(6, 0), "b", Step::Restore, None, None);
    j.done(at(6, 0), at(9, 0), "a", Step::Restore);

    let h = of(&view(j.0), RunState::Interrupted, &keep);
    assert_eq!(h.rollbacks.len(), 1);
    let r = &h.rollbacks[0];
    assert_eq!((r.cause, r.why.as_str()), (None, "a: create failed: no such image"));
    assert_eq!(r.services, ["b", "a"], "the services its restores name");
    assert!(!r.ok, "b's restore has not ended");
    let b = &h.services[1];
    assert_eq!(b.down.len(), 1);
    assert_eq!((b.down[0].to.as_deref(), b.down[0].ended_by, b.down[0].seconds), (None, Ended::Open, None));
    assert_eq!(b.downtime_seconds, 0.0, "an open stretch is not counted as a number");
    assert_eq!(h.services[0].down[0].seconds, Some(8.0));
}

#[test]
fn journal_times_have_milliseconds() {
    let ts = crate::state::now_rfc3339();
    assert!(parse_ts(&ts).is_some(), "{ts}");
    assert_eq!(seconds_between("2026-11-27T10:00:00Z", "2026-11-27T10:00:01.25Z"), Some(1.25));
}

#[test]
fn a_step_ctrl_c_kept_from_starting_and_a_restore_of_a_running_original_are_no_downtime() {
    let mut j = J(Vec::new());
    j.push(at(0, 0), header());
    j.push(at(0, 0), Record::run(RunEvent::Started));
    // a: Ctrl-C came before its stop (as unroot marks it now); b: the same in an older
    // journal, known by its error alone.
    j.push(
        at(1, 0),
        Record::Step {
            service: "a".into(),
            step: Step::Stop,
            ok: None,
            error: None,
            detail: crate::state::StepDetail::not_started(),
        },
    );
    j.step(at(1, 0), "a", Step::Stop, Some(false), Some("interrupted (Ctrl-C) before this step"));
    j.step(at(2, 0), "b", Step::Stop, None, None);
    j.step(at(2, 0), "b", Step::Stop, Some(false), Some("interrupted (Ctrl-C) before this step"));
    j.push(at(3, 0), Record::rollback(RunEvent::RollingBack, Cause::Interrupted, None, Vec::new()));
    // Each is restored though it never stopped (its original ran all along).
    j.done(at(4, 0), at(9, 0), "a", Step::Restore);
    j.done(at(9, 0), at(12, 0), "b", Step::Restore);
    j.push(at(12, 0), Record::run(RunEvent::RolledBack));

    let h = of(&view(j.0), RunState::RolledBack, &keep);
    for s in &h.services {
        assert!(s.down.is_empty(), "{}: {:?}", s.name, s.down);
        assert!(s.failure.is_some(), "the interrupted step is still shown");
    }
    assert_eq!(h.rollbacks.len(), 1);
    let r = &h.rollbacks[0];
    assert_eq!(
        (r.cause, r.ok, r.why.as_str()),
        (Some(Cause::Interrupted), true, "the day was interrupted (Ctrl-C or SIGTERM)")
    );
}

#[test]
fn a_resumed_rollback_is_the_same_rollback_with_its_first_reason() {
    let mut j = J(Vec::new());
    j.push(at(0, 0), header());
    j.push(at(0, 0), Record::run(RunEvent::Started));
    j.done(at(1, 0), at(2, 0), "a", Step::Stop);
    j.done(at(2, 0), at(3, 0), "b", Step::Stop);
    j.step(at(3, 0), "b", Step::Create, None, None);
    j.step(at(4, 0), "b", Step::Create, Some(false), Some("port is already allocated"));
    j.push(at(5, 0), Record::rollback(RunEvent::RollingBack, Cause::StepFailed, None, Vec::new()));
    j.done(at(5, 0), at(8, 0), "b", Step::Restore);
    // unroot was killed here; resume restores every service again.
    j.push(at(60, 0), Record::run(RunEvent::Resumed));
    j.push(
        at(60, 0),
        Record::rollback(RunEvent::RollingBack, Cause::Continued, Some("resumed".into()), vec!["b".into(), "a".into()]),
    );
    j.done(at(61, 0), at(63, 0), "b", Step::Restore);
    j.done(at(63, 0), at(70, 0), "a", Step::Restore);
    j.push(at(70, 0), Record::run(RunEvent::RolledBack));

    let h = of(&view(j.0), RunState::RolledBack, &keep);
    assert_eq!(h.rollbacks.len(), 1, "{:#?}", h.rollbacks);
    let r = &h.rollbacks[0];
    assert_eq!(r.why, "b: create failed: port is already allocated");
    assert_eq!((r.cause, r.ok, r.ended.as_deref()), (Some(Cause::StepFailed), true, Some("2026-11-27T10:01:10.000Z")));
    assert_eq!(r.services, ["b", "a"]);
    let down = |n: usize| h.services[n].down.iter().map(|d| d.seconds).collect::<Vec<_>>();
    assert_eq!(down(1), [Some(6.0)], "b: from its stop to its first restore, not again when resumed");
    assert_eq!(down(0), [Some(69.0)], "a: down from its stop until the resumed rollback restored it");
}

#[test]
fn the_errors_are_redacted_for_their_service_and_a_resumed_failure_is_the_reason() {
    let mut j = J(Vec::new());
    j.push(at(0, 0), header());
    j.push(at(0, 0), Record::run(RunEvent::Started));
    // The first attempt: Ctrl-C while a's gate waited; the day paused.
    j.done(at(1, 0), at(2, 0), "a", Step::Stop);
    j.step(at(3, 0), "a", Step::Health, None, None);
    j.step(at(4, 0), "a", Step::Health, Some(false), Some("interrupted (Ctrl-C) while waiting for health"));
    j.push(at(5, 0), Record::run_with(RunEvent::Paused, "continue with resume"));
    // Resumed: b fails of itself, its log naming a's value "db".
    j.push(at(60, 0), Record::run(RunEvent::Resumed));
    j.done(at(61, 0), at(62, 0), "a", Step::Health);
    j.done(at(61, 0), at(62, 0), "b", Step::Stop);
    j.step(at(63, 0), "b", Step::Create, None, None);
    j.step(at(64, 0), "b", Step::Create, Some(false), Some("db said pw=s3cret-value, code 1"));
    j.push(at(65, 0), Record::rollback(RunEvent::RollingBack, Cause::StepFailed, None, Vec::new()));
    j.done(at(65, 0), at(66, 0), "b", Step::Restore);
    j.done(at(66, 0), at(70, 0), "a", Step::Restore);
    j.push(at(70, 0), Record::run(RunEvent::RolledBack));

    // a's environment has A_HOST=db; b's has PW=s3cret-value and CODE=1.
    let clean = |text: &str, service: &str| {
        let own: &[&str] = match service {
            "a" => &["db"],
            "b" => &["1"],
            _ => &[],
        };
        let mut out = text.replace("s3cret-value", "<redacted>");
        for v in own {
            out = out
                .split(' ')
                .map(|w| if w.trim_end_matches(',') == *v { w.replace(v, "<redacted>") } else { w.to_string() })
                .collect::<Vec<_>>()
                .join(" ");
        }
        out
    };
    let h = of(&view(j.0), RunState::RolledBack, &clean);
    let r = &h.rollbacks[0];
    assert_eq!(r.why, "b: create failed: db said pw=<redacted>, code <redacted>", "b's own short value only");
    assert_eq!(h.services[0].failure.as_ref().unwrap().error, "interrupted (Ctrl-C) while waiting for health");
    assert_eq!(h.services[1].failure.as_ref().unwrap().step, Step::Create);
}
