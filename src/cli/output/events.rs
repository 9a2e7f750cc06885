//! Events of apply, resume and rollback as the operator sees them: one line each, human or
//! JSON (SPEC §9), and spinners on stderr for the steps in flight.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::Output;
use crate::cli::{Ended, exit_code};
use crate::engine::events::{Event, Events};
use crate::engine::runs::RunReport;
use crate::state::Step;

/// Spinners on stderr for the steps in flight, one per service (terminals only).
#[derive(Debug, Default)]
pub struct Bars {
    multi: indicatif::MultiProgress,
    active: std::sync::Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
}

impl Bars {
    /// Spinners when stderr is a terminal and progress is wanted.
    pub fn for_terminal(no_progress: bool) -> Option<std::sync::Arc<Bars>> {
        use std::io::IsTerminal;
        (!no_progress && std::io::stderr().is_terminal()).then(|| std::sync::Arc::new(Bars::default()))
    }

    fn start(&self, service: &str, step: &str) {
        let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
        bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("a valid template"));
        bar.set_message(format!("{service}: {step}"));
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        if let Some(old) = self.active.lock().expect("bars lock").insert(service.to_string(), bar) {
            old.finish_and_clear();
        }
    }

    fn end(&self, service: &str) {
        if let Some(bar) = self.active.lock().expect("bars lock").remove(service) {
            bar.finish_and_clear();
        }
    }
}

/// Events of apply, resume and rollback: one line each, human or JSON (SPEC §9). Every
/// event is reported after the journal record it stands for is durable.
#[derive(Debug, Clone)]
pub struct Reporter {
    out: Output,
    /// Spinners for the waits (stderr, terminals only).
    bars: Option<Arc<Bars>>,
    /// Nanoseconds spent waiting on Docker, reported with the last event.
    docker_nanos: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// The `ts` of a JSON event: the time now (a fixed one in tests).
    clock: fn() -> String,
}

impl Reporter {
    /// Events to `out` (JSON lines when `out.json`), with spinners on `bars`, and the time
    /// spent waiting on Docker in the `done` event when `docker_nanos` counts it.
    pub fn new(
        out: Output,
        bars: Option<Arc<Bars>>,
        docker_nanos: Option<Arc<std::sync::atomic::AtomicU64>>,
    ) -> Reporter {
        Reporter { out, bars, docker_nanos, clock: crate::state::now_rfc3339 }
    }

    /// Prints a line without tearing the spinners.
    fn line(&self, text: &str) {
        match &self.bars {
            Some(b) => b.multi.suspend(|| self.out.print(text)),
            None => self.out.print(text),
        }
    }

    /// One event line: `service: step event k=v…` for people, or a JSON object.
    fn render(&self, event: &str, service: Option<&str>, step: Option<Step>, fields: Map<String, Value>) {
        if self.out.json {
            let mut obj = Map::new();
            obj.insert("event".into(), event.into());
            if let Some(s) = service {
                obj.insert("service".into(), s.into());
            }
            if let Some(s) = step {
                obj.insert("step".into(), s.as_str().into());
            }
            obj.insert("ts".into(), (self.clock)().into());
            obj.extend(fields);
            self.line(&format!("{}\n", Value::Object(obj)));
            return;
        }
        let mut line = String::new();
        if let Some(s) = service {
            line.push_str(&format!("{s}: "));
        }
        if let Some(s) = step {
            line.push_str(&format!("{s} "));
        }
        line.push_str(event);
        for (k, v) in &fields {
            match v {
                Value::String(s) => line.push_str(&format!(" {k}={s}")),
                Value::Null => {}
                other => line.push_str(&format!(" {k}={other}")),
            }
        }
        self.line(&format!("{line}\n"));
    }

    /// The last event of a run: its outcome and exit code, or its summary for people.
    fn done(&self, report: &RunReport) {
        if !self.out.json {
            self.line(&format!("\n{}\n", report.summary));
            return;
        }
        let exit = exit_code(Ok(&Ended::Runs(vec![report.end])));
        let mut fields = Map::new();
        fields.insert("outcome".into(), report.end.as_str().into());
        fields.insert("exit_code".into(), (exit as u8).into());
        if let Some(n) = &self.docker_nanos {
            let secs = n.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9;
            fields.insert("docker_api_seconds".into(), json!((secs * 1000.0).round() / 1000.0));
        }
        self.render("done", None, None, fields);
    }
}

/// A step's fields: its error, then its detail's (an object's) keys.
fn step_fields(error: Option<&str>, detail: &Value) -> Map<String, Value> {
    let mut fields = Map::new();
    if let Some(e) = error {
        fields.insert("error".into(), e.into());
    }
    if let Value::Object(d) = detail {
        fields.extend(d.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    fields
}

impl Events for Reporter {
    fn emit(&self, event: Event<'_>) {
        if let Some(bars) = &self.bars {
            match event {
                Event::StepStart { service, step, .. } => bars.start(service, step.as_str()),
                Event::StepEnd { service, .. } | Event::StepFailed { service, .. } => bars.end(service),
                _ => {}
            }
        }
        match event {
            Event::StepStart { service, step, detail } => {
                self.render("step-start", Some(service), Some(step), step_fields(None, detail));
            }
            Event::StepEnd { service, step, detail } => {
                self.render("step-end", Some(service), Some(step), step_fields(None, detail));
            }
            Event::StepFailed { service, step, error, detail } => {
                self.render("step-failed", Some(service), Some(step), step_fields(Some(error), detail));
            }
            Event::Run { event, run, detail } => {
                let fields = Map::from_iter([("run".into(), run.into()), ("detail".into(), json!(detail))]);
                self.render(event.as_str(), None, None, fields);
            }
            Event::Skipped { service } => self.render("skipped", Some(service), None, Map::new()),
            Event::DaemonUnreachable { waiting_up_to } => {
                let waited = crate::model::plan::duration::format(waiting_up_to);
                self.render(
                    "daemon-unreachable",
                    None,
                    None,
                    Map::from_iter([("waiting_up_to".into(), waited.into())]),
                );
            }
            Event::DaemonBack => self.render("daemon-back", None, None, Map::new()),
            Event::Preview { day, title } if !self.out.json => self.out.preview(day, title),
            Event::Note(text) if !self.out.json => self.line(&format!("{text}\n")),
            Event::Preview { .. } | Event::Note(_) => {}
            Event::Done(report) => self.done(report),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use super::*;
    use crate::engine::executor::Outcome;
    use crate::engine::runs::RunEnd;

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A short run rendered as `json` says: a step started and ended, a service skipped, a
    /// note, the end.
    fn rendered(json: bool) -> String {
        let buf = Shared::default();
        let mut reporter = Reporter::new(Output::new(json, Box::new(buf.clone())), None, None);
        reporter.clock = || "2025-06-01T12:00:00Z".to_string();
        let (intent, detail) = (json!({"user": "999:999"}), json!({"id": "0123456789ab", "gone": null}));
        reporter.emit(Event::StepStart { service: "db", step: Step::Create, detail: &intent });
        reporter.emit(Event::StepEnd { service: "db", step: Step::Create, detail: &detail });
        reporter.emit(Event::Skipped { service: "web" });
        reporter.note("compose: wrote x.unroot.yml");
        let end = RunEnd::Ran { outcome: Outcome::RolledBack, any_failed: true };
        let report = RunReport { end, summary: "Day 1 failed; every service it touched is back.".into() };
        reporter.emit(Event::Done(&report));
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn events_render_as_lines_for_people() {
        assert_eq!(
            rendered(false),
            "db: create step-start user=999:999\n\
             db: create step-end id=0123456789ab\n\
             web: skipped\n\
             compose: wrote x.unroot.yml\n\
             \n\
             Day 1 failed; every service it touched is back.\n"
        );
    }

    #[test]
    fn events_render_as_json_lines_ending_with_done_and_its_exit_code() {
        assert_eq!(
            rendered(true),
            concat!(
                r#"{"event":"step-start","service":"db","step":"create","ts":"2025-06-01T12:00:00Z","user":"999:999"}"#,
                "\n",
                r#"{"event":"step-end","gone":null,"id":"0123456789ab","service":"db","step":"create","ts":"2025-06-01T12:00:00Z"}"#,
                "\n",
                r#"{"event":"skipped","service":"web","ts":"2025-06-01T12:00:00Z"}"#,
                "\n",
                r#"{"event":"done","exit_code":3,"outcome":"rolled-back","ts":"2025-06-01T12:00:00Z"}"#,
                "\n",
            )
        );
    }
}
