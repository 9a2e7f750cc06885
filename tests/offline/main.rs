//! The offline tier: what needs no Docker daemon (the command line, the docs against the
//! code, the plan's rules, and the engine's decisions proven on the recording fake). `cargo
//! test` runs it with the library's own tests.

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod decisions;
mod docs;
mod plan_rules;
