//! Swarm services (SPEC §11): the same plan, days and waves, with Swarm's own machinery
//! scheduling and watching the tasks.

pub mod check;
pub mod jobs;
pub mod placement;
pub mod preview;
pub mod steps;

use crate::docker::swarm::{SwarmPort, inspect_service_named};
use crate::docker::{DockerError, DockerPort};
use crate::model::plan::Service;

/// What a plan's name stands for on this daemon.
pub enum Kind {
    Container,
    Swarm,
    /// A container and a service both hold the name and the plan does not say which.
    Both,
}

/// `swarm = true` or `false` as the plan says; else a container of that name if there is
/// one, a service of that name on a manager if there is one, both (refused), or a container
/// (whose absence the container preview reports). A resumed run asks its saved originals
/// instead.
pub async fn kind_of(port: &(impl DockerPort + SwarmPort), s: &Service, manager: bool) -> Result<Kind, DockerError> {
    match s.swarm {
        Some(true) => return Ok(Kind::Swarm),
        Some(false) => return Ok(Kind::Container),
        None if !manager => return Ok(Kind::Container),
        None => {}
    }
    let container = match crate::docker::inspect_named(port, &s.name).await {
        Ok(_) => true,
        Err(DockerError::NotFound(_)) => false,
        Err(e) => return Err(e),
    };
    let service = match inspect_service_named(port, &s.name).await {
        Ok(_) => true,
        Err(DockerError::NotFound(_)) => false,
        Err(e) => return Err(e),
    };
    Ok(match (container, service) {
        (true, true) => Kind::Both,
        (false, true) => Kind::Swarm,
        _ => Kind::Container,
    })
}

pub mod verify;
