//! How a run of apply, resume or rollback ended: the executor's outcome of a day, and the
//! end a command reports in its `done` event. Plain data, below the executor, the runs and
//! the events that carry it.

use crate::state::RunState;

/// How an apply, resume or rollback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every service of the day migrated (or, with rollback-service, restored) and committed.
    Applied,
    /// A failure, and every touched service is back on its original, healthy.
    RolledBack,
    /// Something is not back (or the run paused): the state dir says what.
    Incomplete,
    /// Every service is migrated and healthy, but a parked original could not be removed:
    /// the run stays open until `resume` removes it.
    CommitIncomplete,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::RolledBack => "rolled-back",
            Outcome::Incomplete => "rollback-incomplete",
            Outcome::CommitIncomplete => "commit-incomplete",
        }
    }
}

/// How a run of apply, resume or rollback ended: the `outcome` of its `done` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// The executor ran the day, or rolled it back: its outcome, and whether a service
    /// failed on the way (and is back on its original).
    Ran { outcome: Outcome, any_failed: bool },
    /// `rollback` restored every service it was asked to.
    Restored,
    /// `resume` of a run that is already in this state: nothing to do.
    AlreadyEnded(RunState),
}

impl RunEnd {
    /// The `outcome` field of the `done` event.
    pub fn as_str(self) -> &'static str {
        match self {
            // Committed, with services rollback-service restored: not the same as applied.
            RunEnd::Ran { outcome: Outcome::Applied, any_failed: true } => "committed-with-restored",
            RunEnd::Ran { outcome, .. } => outcome.as_str(),
            RunEnd::Restored => Outcome::RolledBack.as_str(),
            RunEnd::AlreadyEnded(state) => state.as_str(),
        }
    }
}

/// How a run ended, as its `done` event reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub end: RunEnd,
    /// For people: how the run ended, with the commands that continue it.
    pub summary: String,
}
