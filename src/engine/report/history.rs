//! What a run's journal tells after the fact: when it ran, how long each service was down
//! (from its stop to its replacement, or its original, passing the health gate), which
//! rollbacks happened and why. Pure: read from the journal's entries alone.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::engine::executor::{BEFORE_THIS_STEP, StepError};
use crate::engine::runs::{RunView, ServiceProgress};
use crate::state::{Cause, Entry, Record, RunEvent, RunState, Step, StepDetail};

/// One stretch of time a service was not serving.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Down {
    /// When it went down: its stop step (or a restore of a running replacement) began.
    pub from: String,
    /// When it was up again (`None`: the journal ends with it down).
    pub to: Option<String>,
    /// What brought it back.
    pub ended_by: Ended,
    /// `to - from`, in seconds.
    pub seconds: Option<f64>,
}

/// What ended a service's downtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ended {
    /// The replacement passed its health gate.
    Healthy,
    /// The original was restored and passed its gate.
    Restored,
    /// Nothing yet: the run stopped with it down, or is still working on it.
    Open,
}

/// A step that failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub step: Step,
    pub at: String,
    pub error: String,
    /// The end of the failed container's log, as the run saved it (environment values
    /// redacted); empty when none was saved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
    /// Its error says the run saved the log: `log` may be filled from it.
    #[serde(skip)]
    pub log_saved: bool,
}

/// Where a run left a service, as a report says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// On its planned user.
    Migrated,
    /// A documented `keep_root` exception, recreated with its controls: it still runs as root.
    Exception,
    /// Back on (or never off) its original.
    Original,
    InProgress,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Migrated => "migrated",
            Outcome::Exception => "exception",
            Outcome::Original => "original",
            Outcome::InProgress => "in-progress",
            Outcome::Failed => "failed",
        }
    }

    /// As the journal tells it; a run does not know which of its services are exceptions
    /// (the report, which has the plan, says so).
    pub fn of(progress: ServiceProgress) -> Outcome {
        match progress {
            ServiceProgress::Migrated => Outcome::Migrated,
            ServiceProgress::Original => Outcome::Original,
            ServiceProgress::InProgress => Outcome::InProgress,
            ServiceProgress::Failed => Outcome::Failed,
        }
    }
}

/// One service of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceRun {
    pub name: String,
    /// The run began working on it (its inspect step started).
    pub touched: bool,
    /// Where the run left it.
    pub outcome: Outcome,
    /// Total seconds down in this run (closed stretches only).
    pub downtime_seconds: f64,
    pub down: Vec<Down>,
    /// The first step of it that failed in this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// One rollback of some services of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rollback {
    pub services: Vec<String>,
    pub started: String,
    /// When its last restore ended (`None`: none ended yet).
    pub ended: Option<String>,
    /// Every restore succeeded.
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// Why, for people: the failed step and its error, the operator's rollback, an interrupt.
    pub why: String,
}

/// A run as its journal tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunHistory {
    pub run: String,
    pub day: u32,
    pub state: RunState,
    pub started: String,
    /// The time of its last record.
    pub ended: String,
    pub services: Vec<ServiceRun>,
    pub rollbacks: Vec<Rollback>,
}

/// Parses a journal time (RFC 3339).
pub fn parse_ts(ts: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(ts, &Rfc3339).ok()
}

/// Seconds from `from` to `to`, to the millisecond.
pub fn seconds_between(from: &str, to: &str) -> Option<f64> {
    let d = parse_ts(to)? - parse_ts(from)?;
    Some((d.whole_milliseconds() as f64 / 1000.0).max(0.0))
}

/// Whether the step starting at `entries[at]` was journaled only to say it did not start
/// (Ctrl-C came first): marked in its intent, or, in older journals, by its error.
fn not_started(entries: &[Entry], at: usize) -> bool {
    let Record::Step { service, step, detail, .. } = &entries[at].record else { return false };
    if StepDetail::of(detail).not_started {
        return true;
    }
    let said = StepError::Interrupted(BEFORE_THIS_STEP).to_string();
    entries[at + 1..].iter().find_map(|e| match &e.record {
        Record::Step { service: s, step: t, ok: Some(ok), error, .. } if s == service && t == step => {
            Some(!ok && error.as_deref() == Some(said.as_str()))
        }
        _ => None,
    }) == Some(true)
}

/// Where a service stands while its journal is read.
#[derive(Clone, Copy, PartialEq)]
enum Serving {
    /// Its original runs (nothing stopped it yet, or a restore brought it back).
    Original,
    /// Its replacement passed the gate.
    Replacement,
    /// Stopped: from this entry's time.
    Down(usize),
}

/// The downtime of `service` in a journal: from a stop (or the restore of a replacement
/// that was serving) to the next passed gate or finished restore. A step that did not
/// start, and a restore of an original that was never stopped (a resumed rollback, a second
/// `rollback`), take nothing away.
fn downtime(entries: &[Entry], service: &str) -> Vec<Down> {
    let mut out: Vec<Down> = Vec::new();
    let mut serving = Serving::Original;
    for (i, e) in entries.iter().enumerate() {
        let Record::Step { service: s, step, ok, .. } = &e.record else { continue };
        if s != service {
            continue;
        }
        match (step, ok, serving) {
            (Step::Stop, None, Serving::Original | Serving::Replacement) if !not_started(entries, i) => {
                serving = Serving::Down(i)
            }
            (Step::Restore, None, Serving::Replacement) if !not_started(entries, i) => serving = Serving::Down(i),
            (Step::Health | Step::Restore, Some(true), Serving::Down(from)) => {
                let from = &entries[from].ts;
                let ended_by = if *step == Step::Health { Ended::Healthy } else { Ended::Restored };
                out.push(Down {
                    from: from.clone(),
                    to: Some(e.ts.clone()),
                    ended_by,
                    seconds: seconds_between(from, &e.ts),
                });
                serving = if *step == Step::Health { Serving::Replacement } else { Serving::Original };
            }
            (Step::Restore, Some(true), _) => serving = Serving::Original,
            _ => {}
        }
    }
    if let Serving::Down(from) = serving {
        out.push(Down { from: entries[from].ts.clone(), to: None, ended_by: Ended::Open, seconds: None });
    }
    out
}

/// Redacts a text that came from Docker or a journal (an error), said of a service.
pub type Clean<'c> = &'c dyn Fn(&str, &str) -> String;

/// Whether a journal error says Ctrl-C stopped the step (rather than the step failing).
fn interrupted(error: &str) -> bool {
    error.starts_with(StepError::Interrupted("").to_string().trim_end())
}

/// The failed migration steps in `entries` (a failed restore or commit is not one), with
/// their index, service and error.
fn failed_steps(entries: &[Entry]) -> impl Iterator<Item = (usize, &str, Step, &str)> {
    entries.iter().enumerate().filter_map(|(i, e)| match &e.record {
        Record::Step { service, step, ok: Some(false), error, .. } if !matches!(step, Step::Restore | Step::Commit) => {
            Some((i, service.as_str(), *step, error.as_deref().unwrap_or("")))
        }
        _ => None,
    })
}

/// What failed `service` in `entries`: its last failed step that failed of itself (not for
/// Ctrl-C), else its last one. The error is redacted.
fn failure(entries: &[Entry], service: &str, clean: Clean) -> Option<Failure> {
    let mine: Vec<_> = failed_steps(entries).filter(|(_, s, _, _)| *s == service).collect();
    let (i, _, step, error) = mine.iter().rev().find(|f| !interrupted(f.3)).or(mine.last()).copied()?;
    Some(Failure {
        step,
        at: entries[i].ts.clone(),
        log_saved: crate::engine::executor::says_log_saved(error),
        error: clean(error, service),
        log: Vec::new(),
    })
}

/// Why a rollback that starts at entry `at` happened, from its record's cause (or, in a
/// journal written before causes were recorded, from what precedes it): for a failure, the
/// first step that failed of itself since the run last started or resumed.
fn why(entries: &[Entry], at: usize, cause: Option<Cause>, detail: Option<&str>, clean: Clean) -> String {
    let since = entries[..at]
        .iter()
        .rposition(|e| matches!(&e.record, Record::Run { event: RunEvent::Started | RunEvent::Resumed, .. }))
        .unwrap_or(0);
    let window: Vec<_> = failed_steps(&entries[..at]).filter(|(i, ..)| *i >= since).collect();
    let failed = window
        .iter()
        .find(|f| !interrupted(f.3))
        .or(window.first())
        .map(|(_, service, step, error)| format!("{service}: {step} failed: {}", clean(error, service)));
    match cause {
        Some(Cause::Operator) => "the operator ran unroot rollback".to_string(),
        Some(Cause::Interrupted) => "the day was interrupted (Ctrl-C or SIGTERM)".to_string(),
        Some(Cause::CannotFinish) => detail.map_or("the day cannot be finished".to_string(), |d| clean(d, "")),
        Some(Cause::StepFailed) | Some(Cause::Continued) | None => match (failed, detail) {
            (Some(f), _) => f,
            (None, Some(d)) if cause.is_none() => clean(d, ""),
            _ => "the day was interrupted".to_string(),
        },
    }
}

/// How a run-level rollback ended.
#[derive(Clone, Copy, PartialEq)]
enum Close {
    /// Its record says every service is back (`true`) or some is not (`false`).
    Record(usize, bool),
    /// Another rollback began before it ended (`resume` went on with it).
    Superseded(usize),
}

/// How the run-level rollback that starts at `entries[at]` ended (`None`: not yet).
fn closed(entries: &[Entry], at: usize) -> Option<Close> {
    entries.iter().enumerate().skip(at + 1).find_map(|(i, e)| match &e.record {
        Record::Run { event: RunEvent::RolledBack | RunEvent::ServicesRolledBack, .. } => Some(Close::Record(i, true)),
        Record::Run { event: RunEvent::RollbackIncomplete, .. } => Some(Close::Record(i, false)),
        Record::Run { event: RunEvent::RollingBack | RunEvent::ServiceRollback, .. } => Some(Close::Superseded(i)),
        _ => None,
    })
}

/// Rollbacks of a run: each run-level rollback (one that `resume` continued counts with the
/// rollback it continues), and each service restored on its own after its failure
/// (`on_failure = "rollback-service"`).
fn rollbacks(entries: &[Entry], touched: &[String], clean: Clean) -> Vec<Rollback> {
    // Restores a run-level rollback covers.
    let mut covered = vec![false; entries.len()];
    let mut out = run_rollbacks(entries, touched, clean, &mut covered);
    out.extend(service_rollbacks(entries, &covered, clean));
    out.sort_by(|a, b| a.started.cmp(&b.started));
    out
}

/// The run-level rollbacks, oldest first, with the restores each covers marked in
/// `covered`. A resumed rollback is merged into the unfinished one it continues.
fn run_rollbacks(entries: &[Entry], touched: &[String], clean: Clean, covered: &mut [bool]) -> Vec<Rollback> {
    let mut out: Vec<Rollback> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let Record::Run { event, detail, services, cause } = &e.record else { continue };
        if !matches!(event, RunEvent::RollingBack | RunEvent::ServiceRollback) {
            continue;
        }
        let end = closed(entries, i);
        let last = match end {
            Some(Close::Record(j, _) | Close::Superseded(j)) => j,
            None => entries.len(),
        };
        let (restored, last_restore) = restores(entries, i + 1, last, covered);
        let (ended, ok) = match end {
            Some(Close::Record(j, ok)) => (Some(entries[j].ts.clone()), ok),
            Some(Close::Superseded(_)) | None => (last_restore, false),
        };
        // A resumed rollback continues the one before it that did not finish: one rollback,
        // with its reason.
        let continued = *cause == Some(Cause::Continued) || (cause.is_none() && detail.as_deref() == Some("resumed"));
        if continued && let Some(prev) = out.last_mut().filter(|p| !p.ok) {
            prev.ended = ended;
            prev.ok = ok;
            for s in restored {
                if !prev.services.contains(&s) {
                    prev.services.push(s);
                }
            }
            continue;
        }
        // The services it was asked to restore; a record that does not say meant every
        // service the run touched, as far as the restores show them.
        let asked = match (services.is_empty(), restored.is_empty()) {
            (false, _) => services.clone(),
            (true, false) => restored,
            (true, true) => touched.to_vec(),
        };
        out.push(Rollback {
            why: why(entries, i, *cause, detail.as_deref(), clean),
            services: asked,
            started: e.ts.clone(),
            ended,
            ok,
            cause: *cause,
        });
    }
    out
}

/// The restore steps among `entries[from..to]`, each marked in `covered`: the services they
/// restore, in order, and when the last of them ended.
fn restores(entries: &[Entry], from: usize, to: usize, covered: &mut [bool]) -> (Vec<String>, Option<String>) {
    let mut restored: Vec<String> = Vec::new();
    let mut last_restore = None;
    for (j, r) in entries.iter().enumerate().take(to).skip(from) {
        if let Record::Step { service, step: Step::Restore, ok, .. } = &r.record {
            covered[j] = true;
            if !restored.contains(service) {
                restored.push(service.clone());
            }
            if ok.is_some() {
                last_restore = Some(r.ts.clone());
            }
        }
    }
    (restored, last_restore)
}

/// Each service restored by itself after its failure: a finished restore that no
/// run-level rollback covers, from its start, with the failure as its reason.
fn service_rollbacks(entries: &[Entry], covered: &[bool], clean: Clean) -> Vec<Rollback> {
    let mut out = Vec::new();
    for (j, e) in entries.iter().enumerate() {
        let Record::Step { service, step: Step::Restore, ok: Some(done), .. } = &e.record else { continue };
        if covered[j] {
            continue;
        }
        let started = entries[..j]
            .iter()
            .rev()
            .find(
                |s| matches!(&s.record, Record::Step { service: n, step: Step::Restore, ok: None, .. } if n == service),
            )
            .map_or(e.ts.clone(), |s| s.ts.clone());
        out.push(Rollback {
            services: vec![service.clone()],
            started,
            ended: Some(e.ts.clone()),
            ok: *done,
            cause: Some(Cause::StepFailed),
            why: failure(&entries[..j], service, clean).map_or_else(
                || "its migration failed".to_string(),
                |f| format!("{service}: {} failed: {}", f.step, f.error),
            ),
        });
    }
    out
}

/// The services the run did something to: an inspect that started (one Ctrl-C kept from
/// starting did nothing).
fn touched(entries: &[Entry]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if let Record::Step { service, step: Step::Inspect, ok: None, .. } = &e.record
            && !out.contains(service)
            && !not_started(entries, i)
        {
            out.push(service.clone());
        }
    }
    out
}

/// A run read back: its services' outcomes and downtime, and its rollbacks. `clean`
/// redacts the errors the journal kept.
pub fn of(view: &RunView, state: RunState, clean: Clean) -> RunHistory {
    let entries = &view.entries;
    let touched = touched(entries);
    let services = view
        .services()
        .into_iter()
        .map(|s| {
            let down = downtime(entries, &s.name);
            ServiceRun {
                touched: touched.contains(&s.name),
                downtime_seconds: down.iter().filter_map(|d| d.seconds).sum(),
                failure: failure(entries, &s.name, clean),
                name: s.name,
                outcome: Outcome::of(s.state),
                down,
            }
        })
        .collect();
    RunHistory {
        run: view.id.clone(),
        day: view.day,
        state,
        started: entries.first().map(|e| e.ts.clone()).unwrap_or_default(),
        ended: entries.last().map(|e| e.ts.clone()).unwrap_or_default(),
        services,
        rollbacks: rollbacks(entries, &touched, clean),
    }
}

#[cfg(test)]
mod tests;
