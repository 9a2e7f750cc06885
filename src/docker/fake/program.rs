//! What the fake knows of the programs its containers run, which it cannot run: how each
//! behaves when started and stopped, and what each command run in it exits with, as a test
//! says.

use super::State;
use crate::docker::{Finished, Inspect};

/// How a container's own program behaves, which the fake cannot run: what a test says of it.
#[derive(Debug, Clone, Default)]
pub struct Program {
    /// It exits as soon as it starts, with this code and output (which go to its log).
    pub exits: Option<Finished>,
    /// It ignores SIGTERM (as `sleep` does as PID 1): a stop takes the whole grace, then
    /// Docker kills it.
    pub ignores_sigterm: bool,
}

/// The program of a container, given its inspect (its user, command, labels).
pub type ProgramFn = Box<dyn Fn(&Inspect) -> Program + Send>;

/// The exit code of a command run in a container, given its inspect: an exec, or Docker's
/// own run of its HEALTHCHECK.
pub type ExecFn = Box<dyn Fn(&Inspect, &[String]) -> i64 + Send>;

impl State {
    /// How the program of container `id` behaves.
    pub(super) fn program_of(&mut self, id: &str) -> Program {
        let Ok(c) = self.lookup(id) else { return Program::default() };
        let c = c.clone();
        self.program.as_ref().map(|p| p(&c)).unwrap_or_default()
    }

    /// The exit code of `cmd` run in container `c` (an exec of unroot's, or Docker's own
    /// health check): the test's answer when it gave one, else `exec_exit`.
    pub(super) fn exec_code(&self, c: &Inspect, cmd: &[String]) -> i64 {
        match &self.exec_answer {
            Some(answer) => answer(c, cmd),
            None => self.exec_exit,
        }
    }
}
