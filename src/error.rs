//! The library's errors, and the exit codes of SPEC §1 (which of them a command ends with is
//! decided in one place: [`crate::cli::exit_code`]).

use crate::docker::DockerError;
use crate::model::plan::PlanErrors;

/// Exit codes shared by every command (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Done; for audit/verify: nothing found.
    Ok = 0,
    /// Findings: audit/verify found violations, or `plan` or `apply` found blockers (and
    /// `apply` changed nothing).
    Found = 1,
    /// Bad input: usage, plan error, unknown container, service or run; nothing changed.
    BadInput = 2,
    /// apply failed and every service it touched is back on its original, healthy.
    RolledBack = 3,
    /// apply or rollback failed and something is not back.
    Incomplete = 4,
    /// Refused: lock held, interrupted run, earlier day not applied.
    Refused = 5,
    /// The daemon did not answer before anything changed: retry.
    Unreachable = 6,
    /// The day committed, but services `rollback-service` restored keep it open.
    CommittedWithRestored = 7,
    /// A second Ctrl-C stopped the command at once; `unroot resume` continues the run.
    Interrupted = 130,
}

impl Exit {
    /// Every exit, in the order of the README's table.
    pub const ALL: [Exit; 9] = [
        Exit::Ok,
        Exit::Found,
        Exit::BadInput,
        Exit::RolledBack,
        Exit::Incomplete,
        Exit::Refused,
        Exit::Unreachable,
        Exit::CommittedWithRestored,
        Exit::Interrupted,
    ];

    /// The exit's name, as `--format json` says it (`outcome` of a `done` event, `exit` of
    /// an error document) and the README's table lists it.
    pub fn name(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::Found => "found",
            Exit::BadInput => "bad-input",
            Exit::RolledBack => "rolled-back",
            Exit::Incomplete => "incomplete",
            Exit::Refused => "refused",
            Exit::Unreachable => "daemon-unreachable",
            Exit::CommittedWithRestored => "committed-with-restored",
            Exit::Interrupted => "interrupted",
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Plan(#[from] PlanErrors),
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// A `--profiles` file that cannot be used.
    #[error(transparent)]
    Profiles(#[from] crate::model::profiles::ProfileError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    /// The state directory could not be read or written.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// Refused: lock held, interrupted run, earlier day not applied.
    #[error("{0}")]
    Refused(String),
    /// Bad usage that clap cannot see (no terminal and no --yes, …).
    #[error("{0}")]
    Usage(String),
    /// The preview found blockers; apply does not start.
    #[error("{0}")]
    Blocked(String),
    /// A run failed part-way and something is not back.
    #[error("{0}")]
    Incomplete(String),
    /// A service's name is held by a container unroot must not touch; nothing was changed.
    #[error("{0}")]
    NameTaken(String),
}

impl Error {
    /// Makes an I/O error into [`Error::Io`] saying what was being done (for `map_err`).
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}
