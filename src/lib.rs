//! unroot moves running Docker containers off root in planned, health-gated stages.
//!
//! The layers, and the one direction their dependencies run:
//!
//! ```text
//! cli ──▶ engine ──▶ docker ──▶ model
//!            │                    ▲
//!            └──────▶ state ──────┘
//! ```
//!
//! - [`model`]: pure data and rules (the plan, the rollout graph, users, `/etc/passwd`).
//! - [`docker`]: the port to Docker (`DockerPort`), its one adapter, and a fake.
//! - [`state`]: the state directory on disk: lock, journal, ledger, run folders.
//! - [`engine`]: acts through the port and the state, never prints; it reports through an
//!   event sink.
//! - [`cli`]: arguments, dispatch, and the only writer to stdout; `main.rs` only calls
//!   [`cli::main`].

pub mod cli;
pub mod docker;
pub mod engine;
pub mod error;
pub mod model;
pub mod state;

pub use error::{Error, Exit};
