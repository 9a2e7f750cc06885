//! The daemon tier: end to end against the local Docker daemon, with fixture images built
//! locally (tests/fixtures/). Built with `--features e2e` (the README's test command).

#[path = "../common/mod.rs"]
mod common;

mod apply;
mod audit;
mod cis;
mod hardening;
mod hardening_runs;
mod init;
mod install;
mod official_images;
mod official_stack;
mod operator;
mod readiness;
mod report;
mod runs;
mod sarif;
mod ssh;
mod state_compat;
