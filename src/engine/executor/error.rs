//! Why a step failed, typed. The text (`Display`) is what the journal records in `error`
//! and the operator reads; it is the same text as before these types existed.

use crate::docker::DockerError;
use crate::state::{StateError, Step};

/// A step that failed, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{step}: {error}")]
pub struct StepFailure {
    pub step: Step,
    pub error: StepError,
}

/// Why a step (or a rollback step) failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepError {
    /// A Docker call failed.
    #[error("{0}")]
    Docker(#[from] DockerError),
    /// The state directory (a saved original, a manifest) could not be read or written.
    #[error("{0}")]
    State(String),
    /// The journal could not be written: the step's outcome is not durable.
    #[error("journal: {0}")]
    Journal(String),
    /// What Docker shows is not what the step may act on: another container under the
    /// name, an original that stopped, a replacement that differs or does not run.
    #[error("{0}")]
    Conflict(String),
    /// Re-owning was refused or failed: a protected or replaced source, a helper that failed,
    /// the host walk.
    #[error("{0}")]
    Reown(String),
    /// The container did not become (or stay) healthy; with the end of its log.
    #[error("{0}")]
    Unhealthy(String),
    /// Ctrl-C: `before this step` or `while waiting for health`.
    #[error("interrupted (Ctrl-C) {0}")]
    Interrupted(&'static str),
    /// A bug: the step panicked (the service is restored as after any failure).
    #[error("unroot failed inside the step ({0})")]
    Panicked(String),
    /// A failure while doing `what`.
    #[error("{what}: {error}")]
    Doing { what: String, error: Box<StepError> },
    /// A restore failed because the daemon stopped answering, and it did not come back.
    #[error("{error}; the daemon did not answer again within {waited}")]
    DaemonGone { error: Box<StepError>, waited: String },
}

impl From<crate::engine::health::Unhealthy> for StepError {
    fn from(e: crate::engine::health::Unhealthy) -> StepError {
        StepError::Unhealthy(e.0)
    }
}

impl From<StateError> for StepError {
    fn from(e: StateError) -> StepError {
        StepError::State(e.to_string())
    }
}

/// Says what was being done when a fallible call failed.
pub(crate) trait Doing<T> {
    fn doing(self, what: &str) -> Result<T, StepError>;
}

impl<T, E: Into<StepError>> Doing<T> for Result<T, E> {
    fn doing(self, what: &str) -> Result<T, StepError> {
        self.map_err(|e| StepError::Doing { what: what.to_string(), error: Box::new(e.into()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_texts_are_the_ones_the_journal_holds() {
        let gone = DockerError::NotFound("No such container: x".into());
        assert_eq!(StepError::from(gone.clone()).to_string(), gone.to_string());
        let doing: Result<(), _> = Err(gone.clone());
        assert_eq!(doing.doing("inspecting svc").unwrap_err().to_string(), format!("inspecting svc: {gone}"));
        assert_eq!(StepError::Interrupted("before this step").to_string(), "interrupted (Ctrl-C) before this step");
        assert_eq!(StepError::Panicked("boom".into()).to_string(), "unroot failed inside the step (boom)");
        let f = StepFailure { step: Step::Chown, error: StepError::Journal("disk full".into()) };
        assert_eq!(f.to_string(), "chown: journal: disk full");
        let e = StepError::DaemonGone { error: Box::new(StepError::Conflict("x".into())), waited: "2m".into() };
        assert_eq!(e.to_string(), "x; the daemon did not answer again within 2m");
    }
}
