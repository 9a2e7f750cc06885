//! Crash injection for tests: with `UNROOT_CRASH_AFTER_WRITE=k` in a build with the
//! `failpoints` feature, the process kills itself (SIGKILL) right after the k-th durable
//! journal write. Release builds compile none of it.

use crate::state::Journal;

#[cfg(feature = "failpoints")]
fn after_write(seq: u64) {
    let k = std::env::var("UNROOT_CRASH_AFTER_WRITE").ok().and_then(|v| v.parse::<u64>().ok());
    if k == Some(seq) {
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}

/// A named crash point: with `UNROOT_CRASH_AT=NAME`, the process kills itself here (SIGKILL),
/// for crash tests of moments that no journal write marks (a probe that exists, a
/// container created but not yet connected). A no-op without the `failpoints` feature.
pub fn hit(name: &str) {
    #[cfg(feature = "failpoints")]
    if std::env::var("UNROOT_CRASH_AT").is_ok_and(|v| v == name) {
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

/// Hooks the failpoint into a journal (a no-op without the `failpoints` feature).
pub fn install(journal: &mut Journal) {
    #[cfg(feature = "failpoints")]
    journal.on_write(after_write);
    #[cfg(not(feature = "failpoints"))]
    let _ = journal;
}
