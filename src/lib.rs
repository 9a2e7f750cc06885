//! unroot moves running Docker containers off root in planned, health-gated stages.
//!
//! The library holds the engine; `main.rs` only calls [`cli::main`].

pub mod audit;
pub mod cli;
pub mod commands;
pub mod compose;
pub mod docker;
pub mod error;
pub mod events;
pub mod executor;
pub mod failpoint;
pub mod graph;
pub mod health;
pub mod hostfs;
pub mod interrupt;
pub mod orphans;
pub mod output;
pub mod passwd;
pub mod plan;
pub mod preview;
pub mod recreate;
pub mod redact;
pub mod reown;
pub mod runs;
pub mod state;
pub mod user;
pub mod verify;

pub use error::{Error, Exit};
