//! The model: pure data and rules, no I/O. The plan (parsing and validation), the rollout
//! graph, users as plans and images write them, and `/etc/passwd` parsing.

pub mod caps;
pub mod compose;
pub mod graph;
pub mod layer;
pub mod mount;
pub mod owner;
pub mod passwd;
pub mod plan;
pub mod profiles;
pub mod spelling;
pub mod user;
pub mod workload;
