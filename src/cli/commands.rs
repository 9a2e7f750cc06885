//! The commands that talk to the daemon, as the command line runs them: each resolves what
//! it needs, calls the engine, renders what the engine returns and says how it ended.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::cli::output::{Bars, Output, Reporter};
use crate::cli::{AuditFormat, Ended, ReportFormat, location, runtime, watch_ctrl_c};
use crate::docker::{BollardDocker, DockerPort, Port, Timed};
use crate::engine::interrupt::Interrupt;
use crate::engine::{audit, runs};
use crate::error::Error;
use crate::model::plan::Plan;
use crate::state::StateLocation;

/// What every command on the daemon is given besides its own arguments: the global flags,
/// and where its output goes.
#[derive(Debug, Clone)]
pub struct Env {
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--no-progress`.
    pub no_progress: bool,
    /// `--context`.
    pub context: Option<String>,
    /// Where the command's output goes.
    pub out: Output,
}

/// Arguments of `apply` (and of `plan`, which is `apply --dry-run`).
#[derive(Debug, Clone)]
pub struct ApplyArgs {
    /// What of the plan the engine works on.
    pub opts: runs::ApplyOptions,
    /// Do not ask for confirmation.
    pub yes: bool,
    /// Preview only.
    pub dry_run: bool,
    /// JSON (lines of events, or the preview as one document).
    pub json: bool,
}

/// Arguments of `report`.
#[derive(Debug, Clone)]
pub struct ReportArgs {
    pub format: ReportFormat,
    /// `--out FILE`: the report goes there instead of the output.
    pub out: Option<PathBuf>,
    /// `--force`: `--out` may replace an existing file.
    pub force: bool,
    /// `--filter`: the containers listed.
    pub filters: Vec<audit::Filter>,
}

/// Asks on the terminal whether to apply `day` to `services` services, unless `yes`. The
/// answer is read off the runtime's threads, so that a second Ctrl-C ends the command at
/// once even while it waits.
///
/// Errors: no terminal and no `--yes`, or an answer other than `yes` (bad input).
async fn confirm(yes: bool, day: u32, services: usize) -> Result<(), Error> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage("apply changes containers: without a terminal to confirm on, pass --yes".into()));
    }
    eprint!("Apply day {day} to {services} service(s)? Type yes to go on: ");
    let _ = std::io::stderr().flush();
    let answer = tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).map(|_| answer)
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    .map_err(Error::io("reading the confirmation"))?;
    if answer.trim() == "yes" { Ok(()) } else { Err(Error::Usage("not confirmed; nothing was changed".into())) }
}

/// Runs a command on the daemon that `connect` reaches: Ctrl-C (when `ctrl_c`, once
/// connected) sets the interrupt: the run starts nothing new and ends with its outcome; a
/// second Ctrl-C ends the command at once as [`Ended::StoppedAtOnce`].
fn watched<D, F>(connect: impl Future<Output = Result<D, Error>>, ctrl_c: bool, f: F) -> Result<Ended, Error>
where
    F: AsyncFnOnce(&D, &'static Interrupt) -> Result<Ended, Error>,
{
    let rt = runtime()?;
    let ended = rt.block_on(async {
        let docker = connect.await?;
        let stop: &'static Interrupt = Box::leak(Box::default());
        if ctrl_c {
            watch_ctrl_c(stop);
        }
        tokio::select! {
            biased;
            () = stop.stopped_at_once() => Ok(Ended::StoppedAtOnce),
            ended = f(&docker, stop) => ended,
        }
    });
    if matches!(ended, Ok(Ended::StoppedAtOnce)) {
        // What the run left in flight is not waited for: `unroot resume` continues it.
        rt.shutdown_background();
    }
    ended
}

impl Env {
    async fn connect(&self) -> Result<BollardDocker, Error> {
        Ok(BollardDocker::connect(self.context.as_deref()).await?)
    }

    /// Events of a run to the output, JSON lines when `json`.
    fn reporter(&self, json: bool, docker_nanos: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>) -> Reporter {
        Reporter::new(self.out.json(json), Bars::for_terminal(self.no_progress), docker_nanos)
    }

    /// `unroot plan` and `unroot apply`: the preview, or the day run.
    ///
    /// Errors: the plan, the daemon, and whatever the engine refuses or fails with.
    pub fn apply(&self, plan: &Path, args: ApplyArgs) -> Result<Ended, Error> {
        let plan = Plan::load(plan)?;
        // What can be checked without the daemon is, before it is asked anything.
        runs::check_day(&plan, &args.opts)?;
        let connect = async { Ok(Timed::new(self.connect().await?)) };
        watched(connect, true, async |docker: &Timed<BollardDocker>, stop| {
            self.apply_on(docker, &plan, args, stop, Some(docker.counter())).await
        })
    }

    /// What `apply` runs once connected, on any port (the offline tests run it on the fake):
    /// the preview, or the day run with its events reported (`docker_nanos`: time spent in
    /// Docker calls, for the summary).
    ///
    /// Errors: whatever the engine refuses or fails with.
    pub async fn apply_on(
        &self,
        docker: &impl Port,
        plan: &Plan,
        args: ApplyArgs,
        stop: &Interrupt,
        docker_nanos: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    ) -> Result<Ended, Error> {
        let loc = StateLocation::resolve(self.state_dir.as_deref(), Some(plan));
        if args.dry_run {
            let day = runs::preview(docker, plan, &loc, &args.opts).await?;
            self.out.json(args.json).preview(&day, plan.days.get(&args.opts.day).map(String::as_str));
            return Ok(Ended::Looked { found: day.blockers().count(), fail: true });
        }
        let reporter = self.reporter(args.json, docker_nanos);
        let ask = async |services| confirm(args.yes, args.opts.day, services).await;
        let report = runs::apply(docker, plan, &loc, &args.opts, &reporter, stop, ask).await?;
        Ok(Ended::Runs(vec![report.end]))
    }

    /// `unroot resume [RUN]`.
    ///
    /// Errors: the `--plan`, the daemon, and whatever the engine refuses or fails with.
    pub fn resume(&self, run: Option<&str>, plan: Option<&Path>, json: bool) -> Result<Ended, Error> {
        let state = location(self.state_dir.as_deref(), plan)?;
        watched(self.connect(), true, async |docker, stop| self.resume_on(docker, &state, run, json, stop).await)
    }

    /// What `resume` runs once connected, on any port.
    ///
    /// Errors: whatever the engine refuses or fails with.
    pub async fn resume_on(
        &self,
        docker: &impl Port,
        state: &StateLocation,
        run: Option<&str>,
        json: bool,
        stop: &Interrupt,
    ) -> Result<Ended, Error> {
        let reports = runs::resume(docker, state, run, &self.reporter(json, None), stop).await?;
        Ok(Ended::Runs(reports.into_iter().map(|r| r.end).collect()))
    }

    /// `unroot rollback RUN`: Ctrl-C is left to the default (a rollback is what the first
    /// Ctrl-C would start).
    ///
    /// Errors: the `--plan`, the daemon, and whatever the engine refuses or fails with.
    pub fn rollback(
        &self,
        run: &str,
        plan: Option<&Path>,
        services: &[String],
        force: bool,
        json: bool,
    ) -> Result<Ended, Error> {
        let state = location(self.state_dir.as_deref(), plan)?;
        watched(self.connect(), false, async |docker, stop| {
            self.rollback_on(docker, &state, run, services, force, json, stop).await
        })
    }

    /// What `rollback` runs once connected, on any port.
    ///
    /// Errors: whatever the engine refuses or fails with.
    #[allow(clippy::too_many_arguments)]
    pub async fn rollback_on(
        &self,
        docker: &impl Port,
        state: &StateLocation,
        run: &str,
        services: &[String],
        force: bool,
        json: bool,
        stop: &Interrupt,
    ) -> Result<Ended, Error> {
        let overwrite = if force { runs::Overwrite::Anyway } else { runs::Overwrite::Refuse };
        let out = self.reporter(json, None);
        let report = runs::rollback(docker, state, run, services, overwrite, &out, stop).await?;
        Ok(Ended::Runs(vec![report.end]))
    }

    /// `unroot verify`.
    ///
    /// Errors: the plan, the daemon.
    pub fn verify(&self, plan: &Path, through_day: Option<u32>, json: bool) -> Result<Ended, Error> {
        let plan = Plan::load(plan)?;
        if let Some(day) = through_day.filter(|d| !plan.day_numbers().contains(d)) {
            let days: Vec<String> = plan.day_numbers().iter().map(u32::to_string).collect();
            return Err(Error::Usage(format!(
                "--through-day {day}: {} has no day {day} (days: {})",
                plan.source.name,
                days.join(", ")
            )));
        }
        runtime()?.block_on(async {
            let docker = self.connect().await?;
            self.verify_on(&docker, &plan, through_day, json).await
        })
    }

    /// What `verify` runs once connected, on any port.
    ///
    /// Errors: the daemon.
    pub async fn verify_on(
        &self,
        docker: &impl Port,
        plan: &Plan,
        through_day: Option<u32>,
        json: bool,
    ) -> Result<Ended, Error> {
        let verdicts = crate::engine::verify::verify(docker, plan, through_day).await?;
        self.out.json(json).verify(&verdicts);
        Ok(Ended::Looked { found: verdicts.iter().filter(|v| !v.ok).count(), fail: true })
    }

    /// `unroot report`: to `--out` with its `.sha256` beside it (both new unless `--force`,
    /// which is checked before connecting), else to the output.
    ///
    /// Errors: the plan, the daemon, the state dir, the file.
    pub fn report(&self, plan: &Path, args: &ReportArgs) -> Result<Ended, Error> {
        let plan = Plan::load(plan)?;
        if let Some(out) = &args.out {
            super::evidence_free(out, args.force)?;
        }
        runtime()?.block_on(async {
            let docker = self.connect().await?;
            self.report_on(&docker, &plan, args).await
        })
    }

    /// What `report` runs once connected, on any port: the report gathered and rendered,
    /// and written to `--out` and its `.sha256` or to the output.
    ///
    /// Errors: the daemon, the state dir, the file.
    pub async fn report_on(&self, docker: &impl Port, plan: &Plan, args: &ReportArgs) -> Result<Ended, Error> {
        let state = StateLocation::resolve(self.state_dir.as_deref(), Some(plan));
        let report = crate::engine::report::gather(docker, plan, &state, &args.filters).await?;
        let text = match args.format {
            ReportFormat::Md => super::report::md::render(&report),
            ReportFormat::Html => super::report::html::render(&report),
            ReportFormat::Json => serde_json::to_string_pretty(&report).expect("the report serializes") + "\n",
        };
        match &args.out {
            Some(path) => {
                let sums = super::write_evidence(path, &text, args.force)?;
                eprintln!("wrote {} and {}", path.display(), sums.display());
            }
            None => self.out.json(args.format == ReportFormat::Json).report(&text),
        }
        Ok(Ended::Done)
    }

    /// `unroot audit`: violations are findings that fail it only with `fail_on_root`.
    ///
    /// Errors: the plan, the daemon.
    pub fn audit(
        &self,
        plan_path: Option<&Path>,
        format: AuditFormat,
        fail_on_root: bool,
        filters: &[audit::Filter],
    ) -> Result<Ended, Error> {
        let plan = plan_path.map(Plan::load).transpose()?;
        let report = runtime()?.block_on(async {
            let docker = self.connect().await?;
            let i = docker.daemon();
            tracing::info!(address = %format!("{} (API {}, Engine {})", i.address, i.api_version, i.server_version), "connected");
            let scope = audit::Scope::filtered(filters);
            let mut report = audit::run(&docker, plan.as_ref(), &scope).await?;
            report.services = audit::services(&docker, plan.as_ref(), &scope).await?;
            Ok::<_, Error>(report)
        })?;
        match format {
            AuditFormat::Sarif => {
                let path = plan_path.map(|p| p.display().to_string());
                let text = plan_path.and_then(|p| std::fs::read_to_string(p).ok());
                let plan = path.as_deref().zip(text.as_deref());
                self.out.json(true).sarif(&super::sarif::log(&report, plan));
            }
            f => self.out.json(f == AuditFormat::Json).audit(&report),
        }
        Ok(Ended::Looked { found: report.violation_count(), fail: fail_on_root })
    }
}
