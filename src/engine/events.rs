//! Where the engine reports what it does: a sink of typed [`Event`]s that the command line
//! renders (human lines or JSON lines on stdout, spinners on stderr). The engine never prints.

use std::time::Duration;

use serde_json::Value;

use crate::engine::outcome::RunReport;
use crate::engine::preview::DayPlan;
use crate::state::{RunEvent, Step};

/// What apply, resume and rollback report (SPEC §9). Each is reported after the journal
/// record it stands for is durable. No field holds an environment value (details hold step
/// names, ids, counts and messages built from keys only, or redacted text).
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A step of a service starts; `detail` is its intent as journaled.
    StepStart { service: &'a str, step: Step, detail: &'a Value },
    /// A step of a service ended; `detail` is what it did.
    StepEnd { service: &'a str, step: Step, detail: &'a Value },
    /// A step of a service failed with `error`.
    StepFailed { service: &'a str, step: Step, error: &'a str, detail: &'a Value },
    /// Something happened to run `run` as a whole (started, rolling back, committed, …).
    Run { event: RunEvent, run: &'a str, detail: Option<&'a str> },
    /// A service of the day was not started (Ctrl-C, the day stopping, or a failure of a
    /// service it depends on).
    Skipped { service: &'a str },
    /// The daemon stopped answering; the run waits for it at most `waiting_up_to`.
    DaemonUnreachable { waiting_up_to: Duration },
    /// The daemon answers again.
    DaemonBack,
    /// The day as apply will run it, before the first change (rendered for people only).
    Preview { day: &'a DayPlan, title: Option<&'a str> },
    /// A free-form line for people.
    Note(&'a str),
    /// The last event of a run: how it ended, with a summary for people.
    Done(&'a RunReport),
}

/// Where events go.
pub trait Events: Send + Sync {
    /// Reports one event.
    fn emit(&self, event: Event<'_>);

    /// A free-form line for people ([`Event::Note`]).
    fn note(&self, text: &str) {
        self.emit(Event::Note(text));
    }
}

/// A sink that drops everything (tests of the engine that look at Docker and the state dir).
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl Events for Discard {
    fn emit(&self, _: Event<'_>) {}
}
