//! Where the engine reports what it does: a sink of events that the command line renders
//! (human lines or JSON lines on stdout, spinners on stderr). The engine never prints.

use serde_json::Value;

/// The events of apply, resume and rollback (SPEC §9). Each is reported after the journal
/// record it stands for is durable. `fields` never hold an environment value (callers pass
/// step names, ids, counts and messages built from keys only, or redacted text).
pub trait Events: Send + Sync {
    /// One event: `step-start`, `step-end`, `step-failed`, a run event, `skipped`, …
    fn event(&self, event: &str, service: Option<&str>, step: Option<&str>, fields: Value);
    /// The last event of a run, with its outcome, exit code and a summary for people.
    fn done(&self, outcome: &str, exit_code: u8, summary: &str);
    /// A free-form line for people.
    fn note(&self, text: &str);
}

/// A sink that drops everything (tests of the engine that look at Docker and the state dir).
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl Events for Discard {
    fn event(&self, _: &str, _: Option<&str>, _: Option<&str>, _: Value) {}
    fn done(&self, _: &str, _: u8, _: &str) {}
    fn note(&self, _: &str) {}
}
