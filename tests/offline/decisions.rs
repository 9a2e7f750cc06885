//! The engine's decisions proven on the recording fake daemon, without Docker: refusals,
//! what a failure policy restores, which runs count, what the readiness gate waits for,
//! what a rollback may touch. Each test runs unroot's commands as the command line does
//! (`world`) and checks what a user would: who holds each name as which user, the exit
//! code and the printed text, the journal, the ledger and `status` on disk. What only a
//! real daemon can show (re-owning real files, Docker's own timing, compose) stays in the
//! daemon tier.

mod world;

mod days;
mod on_failure;
mod readiness;
mod report;
mod restore;
mod runs;
