//! Swarm services (SPEC §11): the same plan, days and waves, with Swarm's own machinery
//! scheduling and watching the tasks.

pub mod jobs;
pub mod placement;
pub mod preview;
pub mod spec;
pub mod steps;
