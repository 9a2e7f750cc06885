//! The Docker-in-Docker tier: tests that need daemons of their own (a daemon restart, a
//! daemon reached over TCP, three-node Swarms). Built with `--features e2e`.

#[path = "../common/mod.rs"]
mod common;

mod contexts;
mod daemon_restart;
mod dind_smoke;
mod swarm;
mod swarm_apply;
mod swarm_crash;
mod swarm_smoke;
