//! The engine: acts on Docker through the port and on the state directory, never prints
//! (it reports typed [`events::Event`]s through [`events::Events`]). The preview of a day,
//! recreating, re-owning, the health gate, the journaled steps and restores, the entry
//! points of a run (apply, resume, rollback: [`runs`]), audit and verify.

pub mod accounts;
pub mod audit;
pub mod binds;
pub mod compose;
pub mod events;
pub mod executor;
pub mod findings;
pub mod health;
pub mod hostfs;
pub mod init;
pub mod interrupt;
pub mod orphans;
pub mod outcome;
pub mod preview;
pub mod redact;
pub mod reown;
pub mod report;
pub mod runs;
pub mod swarm;
pub mod verify;

use crate::docker::Original;
use crate::state::{RunDir, StateError};

/// The original run `run` saved of `name` (its container's or service's inspect, by the kind
/// the run recorded); `None` when the run never inspected it.
///
/// Errors: the saved file cannot be read or is not JSON.
pub fn load_original(run: &RunDir, name: &str) -> Result<Option<Original>, StateError> {
    Ok(run.load_original(name)?.map(|saved| Original::saved(saved.kind, saved.inspect)))
}
