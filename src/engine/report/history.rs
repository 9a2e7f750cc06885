//! What a run's journal tells after the fact: when it ran, how long each service was down
//! (from its stop to its replacement, or its original, passing the health gate), which
//! rollbacks happened and why. Pure: read from the journal's entries alone.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::engine::runs::{RunView, ServiceProgress};
use crate::state::{Cause, Entry, Record, RunEvent, RunState, Step};

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
}

/// One service of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceRun {
    pub name: String,
    /// Where the run left it.
    pub outcome: ServiceProgress,
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

/// The downtime of `service` in a journal: each stop (or restore of a running replacement)
/// to the next passed health gate or finished restore.
fn downtime(entries: &[Entry], service: &str) -> Vec<Down> {
    let mut out: Vec<Down> = Vec::new();
    let mut since: Option<&str> = None;
    for e in entries {
        let Record::Step { service: s, step, ok, .. } = &e.record else { continue };
        if s != service {
            continue;
        }
        match (step, ok) {
            (Step::Stop | Step::Restore, None) if since.is_none() => since = Some(&e.ts),
            (Step::Health, Some(true)) | (Step::Restore, Some(true)) => {
                if let Some(from) = since.take() {
                    let ended_by = if *step == Step::Health { Ended::Healthy } else { Ended::Restored };
                    out.push(Down {
                        from: from.to_string(),
                        to: Some(e.ts.clone()),
                        ended_by,
                        seconds: seconds_between(from, &e.ts),
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(from) = since {
        out.push(Down { from: from.to_string(), to: None, ended_by: Ended::Open, seconds: None });
    }
    out
}

/// The first failed migration step of `service` (a failed restore or commit is not one).
fn first_failure(entries: &[Entry], service: &str) -> Option<Failure> {
    entries.iter().find_map(|e| match &e.record {
        Record::Step { service: s, step, ok: Some(false), error, .. }
            if s == service && !matches!(step, Step::Restore | Step::Commit) =>
        {
            Some(Failure { step: *step, at: e.ts.clone(), error: error.clone().unwrap_or_default() })
        }
        _ => None,
    })
}

/// Why a rollback that starts at entry `at` happened, from its record's cause (or, in a
/// journal written before causes were recorded, from what precedes it).
fn why(entries: &[Entry], at: usize, cause: Option<Cause>, detail: Option<&str>, services: &[String]) -> String {
    let failed = entries[..at].iter().find_map(|e| match &e.record {
        Record::Step { service, step, ok: Some(false), error, .. } if !matches!(step, Step::Restore | Step::Commit) => {
            Some(format!("{service}: {step} failed: {}", error.as_deref().unwrap_or("")))
        }
        _ => None,
    });
    match cause {
        Some(Cause::Operator) => format!("the operator ran unroot rollback ({})", services.join(", ")),
        Some(Cause::Interrupted) => "the day was interrupted (Ctrl-C or SIGTERM)".to_string(),
        Some(Cause::CannotFinish) | Some(Cause::Continued) => detail.unwrap_or("resumed").to_string(),
        Some(Cause::StepFailed) | None => match (failed, detail) {
            (Some(f), _) => f,
            (None, Some(d)) => d.to_string(),
            (None, None) => "the day was interrupted".to_string(),
        },
    }
}

/// Rollbacks of a run: each run-level rollback record, and each service restored on its own
/// after its failure (`on_failure = "rollback-service"`), with the restores that followed.
fn rollbacks(entries: &[Entry], touched: &[String]) -> Vec<Rollback> {
    let mut out: Vec<Rollback> = Vec::new();
    // Restores already counted under a run-level rollback.
    let mut counted = vec![false; entries.len()];
    for (i, e) in entries.iter().enumerate() {
        let Record::Run { event, detail, services, cause } = &e.record else { continue };
        if !matches!(event, RunEvent::RollingBack | RunEvent::ServiceRollback) {
            continue;
        }
        let end = entries[i + 1..]
            .iter()
            .position(|e| matches!(&e.record, Record::Run { event, .. } if *event != RunEvent::Resumed))
            .map_or(entries.len(), |p| i + 1 + p);
        let mut ended = None;
        let mut ok_all = true;
        let mut restored_any = false;
        let mut restored: Vec<String> = Vec::new();
        let mut finished: Vec<String> = Vec::new();
        for (j, r) in entries.iter().enumerate().take(end).skip(i + 1) {
            if let Record::Step { service, step: Step::Restore, ok, .. } = &r.record {
                if !restored.contains(service) {
                    restored.push(service.clone());
                }
                if let Some(done) = ok {
                    finished.push(service.clone());
                    counted[j] = true;
                    restored_any = true;
                    ended = Some(r.ts.clone());
                    ok_all &= *done;
                }
            }
        }
        // The services it was asked to restore; a record that does not say meant every
        // service the run touched, as far as the restores show them.
        let ok = ok_all && restored_any && restored.iter().all(|r| finished.contains(r));
        let asked = match (services.is_empty(), restored.is_empty()) {
            (false, _) => services.clone(),
            (true, false) => restored,
            (true, true) => touched.to_vec(),
        };
        out.push(Rollback {
            services: asked.clone(),
            started: e.ts.clone(),
            ended,
            ok,
            cause: *cause,
            why: why(entries, i, *cause, detail.as_deref(), &asked),
        });
    }
    // A service restored by itself: a restore that no run-level rollback covers.
    for (j, e) in entries.iter().enumerate() {
        let Record::Step { service, step: Step::Restore, ok: Some(done), .. } = &e.record else { continue };
        if counted[j] {
            continue;
        }
        let started = entries[..j]
            .iter()
            .rev()
            .find(
                |s| matches!(&s.record, Record::Step { service: n, step: Step::Restore, ok: None, .. } if n == service),
            )
            .map_or(e.ts.clone(), |s| s.ts.clone());
        let failure = first_failure(&entries[..j], service);
        out.push(Rollback {
            services: vec![service.clone()],
            started,
            ended: Some(e.ts.clone()),
            ok: *done,
            cause: Some(Cause::StepFailed),
            why: failure.map_or_else(
                || "its migration failed".to_string(),
                |f| format!("{service}: {} failed: {}", f.step, f.error),
            ),
        });
    }
    out.sort_by(|a, b| a.started.cmp(&b.started));
    out
}

/// A run read back: its services' outcomes and downtime, and its rollbacks.
pub fn of(view: &RunView, state: RunState) -> RunHistory {
    let entries = &view.entries;
    let services = view
        .services()
        .into_iter()
        .map(|s| {
            let down = downtime(entries, &s.name);
            ServiceRun {
                downtime_seconds: down.iter().filter_map(|d| d.seconds).sum(),
                failure: first_failure(entries, &s.name),
                name: s.name,
                outcome: s.state,
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
        rollbacks: rollbacks(entries, &view.touched()),
    }
}

#[cfg(test)]
mod tests;
