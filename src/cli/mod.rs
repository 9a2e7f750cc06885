//! Command-line parsing and dispatch: turns arguments into library calls and errors into
//! reports on stderr and exit codes.

pub mod commands;
pub mod init;
pub mod output;
pub mod report;
pub mod sarif;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::cli::output::Output;
use crate::docker::{BollardDocker, Timed};
use crate::engine::interrupt::Interrupt;
use crate::error::{Error, Exit};
use crate::model::plan::Plan;

use crate::cli::output::{Bars, Reporter};
use crate::{engine::audit, engine::runs, model::plan};

#[derive(Debug, Parser)]
#[command(name = "unroot", version, about = "Move running Docker containers off root in planned, health-gated stages")]
pub struct Cli {
    /// State directory (overrides the plan's `state_dir`).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less logging on stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Never draw progress bars.
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// The Docker context to use (as `docker --context`); it wins over DOCKER_HOST,
    /// DOCKER_CONTEXT and `docker context use`.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Classify every container on the daemon: root, drops-root, non-root or exception.
    Audit {
        /// A plan whose `keep_root` services count as documented exceptions.
        #[arg(long, value_name = "PLAN")]
        plan: Option<PathBuf>,
        /// One JSON document on stdout (the same as --format json).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// human (the default), json, or sarif (a SARIF 2.1.0 log for CI systems: one rule
        /// per kind of finding with its CIS Docker Benchmark id, one result per container
        /// and finding).
        #[arg(long, value_enum, value_name = "FORMAT")]
        format: Option<AuditFormat>,
        /// Exit 1 when a container runs as root without a documented exception.
        #[arg(long)]
        fail_on_root: bool,
        /// Only containers that match, as `docker ps --filter`: name=TEXT, label=KEY[=VALUE],
        /// project=COMPOSE_PROJECT. Repeatable.
        #[arg(long = "filter", value_name = "KEY=VALUE")]
        filters: Vec<audit::Filter>,
    },
    /// Write a plan from what the daemon shows: every running container that runs as root,
    /// with its user, mounts, probe, exception and day decided, each decision's evidence in a
    /// comment. Changes nothing on the daemon.
    Init {
        /// Write the plan to FILE (refused when it exists, unless --force); else to stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Overwrite the --out file.
        #[arg(long, requires = "out")]
        force: bool,
        /// Image profiles (TOML, `[profile.NAME]`) that extend or override the built-in ones.
        #[arg(long, value_name = "FILE")]
        profiles: Option<PathBuf>,
        /// The rollout's name (default: the compose project the containers share).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// The decisions as one JSON document on stdout (the plan still goes to --out).
        #[arg(long)]
        json: bool,
        /// Only containers that match, as `audit --filter`: name=TEXT, label=KEY[=VALUE],
        /// project=COMPOSE_PROJECT. Repeatable.
        #[arg(long = "filter", value_name = "KEY=VALUE")]
        filters: Vec<audit::Filter>,
    },
    /// Validate a plan offline (no daemon needed).
    Check {
        plan: PathBuf,
        /// One JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print the days, waves and edges of a plan's rollout.
    Graph {
        plan: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
    },
    /// Preview a day against the live daemon; changes nothing (= apply --dry-run).
    Plan {
        plan: PathBuf,
        #[arg(long)]
        day: u32,
        /// Only these services of the day.
        #[arg(long, value_name = "NAME")]
        only: Vec<String>,
        /// One JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Migrate one day of a plan: back up, re-own, recreate, gate on health, roll back on failure.
    Apply {
        plan: PathBuf,
        #[arg(long)]
        day: u32,
        /// Preview only; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only these services of the day.
        #[arg(long, value_name = "NAME")]
        only: Vec<String>,
        /// Services of one wave migrated at once (overrides the plan).
        #[arg(long, value_name = "K", value_parser = clap::value_parser!(u16).range(1..=64))]
        parallelism: Option<u16>,
        /// Do not ask for confirmation (required without a terminal).
        #[arg(long)]
        yes: bool,
        /// JSON lines of events on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Finish or roll back an interrupted run (all interrupted runs without RUN).
    Resume {
        run: Option<String>,
        /// The plan whose `state_dir` holds the run (else --state-dir, else rollback/).
        #[arg(long, value_name = "PLAN")]
        plan: Option<PathBuf>,
        /// JSON lines of events on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Restore the originals of a run (committed or interrupted).
    Rollback {
        run: String,
        /// The plan whose `state_dir` holds the run (else --state-dir, else rollback/).
        #[arg(long, value_name = "PLAN")]
        plan: Option<PathBuf>,
        /// Only these services of the run.
        #[arg(long = "service", value_name = "NAME")]
        services: Vec<String>,
        /// Put a Swarm service's original spec back even when someone else changed the
        /// service since unroot's last write (without it, the rollback is refused and the
        /// changed fields are named).
        #[arg(long)]
        force: bool,
        /// JSON lines of events on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Runs, and each service's step.
    Status {
        run: Option<String>,
        /// The plan whose `state_dir` holds the runs (else --state-dir, else rollback/).
        #[arg(long, value_name = "PLAN")]
        plan: Option<PathBuf>,
        /// One JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Check every planned service of the days through N: running, healthy, configured
    /// as planned, every process at the planned uid.
    Verify {
        plan: PathBuf,
        #[arg(long, value_name = "N")]
        through_day: Option<u32>,
        /// One JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// The evidence for an audit: every container before and now, each day's runs with
    /// their downtime and rollbacks, the exceptions and their controls, verify's verdict,
    /// each finding with its CIS Docker Benchmark id. Changes nothing.
    Report {
        plan: PathBuf,
        #[arg(long, value_enum, default_value_t = ReportFormat::Md, value_name = "FORMAT")]
        format: ReportFormat,
        /// Write the report to FILE (refused when it exists, unless --force); else to stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Overwrite the --out file.
        #[arg(long, requires = "out")]
        force: bool,
        /// Only containers that match, as `audit --filter`: name=TEXT, label=KEY[=VALUE],
        /// project=COMPOSE_PROJECT. Repeatable.
        #[arg(long = "filter", value_name = "KEY=VALUE")]
        filters: Vec<audit::Filter>,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the JSON Schema of the plan format (for editors: see docs/plan.md).
    Schema,
    /// Print the man page (roff): `unroot man > /usr/local/share/man/man1/unroot.1`.
    Man,
}

/// How `unroot audit` writes its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Human,
    Json,
    Sarif,
}

/// How `unroot report` writes the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown tables (for a pull request, a wiki, a ticket).
    Md,
    /// One self-contained HTML page with a timeline; prints well.
    Html,
    /// The report as data.
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Mermaid,
}

/// Parses the arguments, runs the command and returns its exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match run(cli) {
        Ok(code) => code.into(),
        Err(e) => {
            report(&e);
            e.exit().into()
        }
    }
}

fn init_logging(verbose: u8, quiet: u8) {
    let level = match (verbose, quiet) {
        (0, 0) => "warn",
        (1, _) => "info",
        (v, _) if v >= 2 => "debug",
        _ => "error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("UNROOT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("unroot={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Writes an error to stderr: plan errors as miette reports with the offending text.
fn report(e: &Error) {
    match e {
        Error::Plan(errors) => {
            let handler = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
                miette::GraphicalReportHandler::new()
            } else {
                miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            };
            for err in &errors.errors {
                let mut text = String::new();
                if handler.render_report(&mut text, err).is_err() {
                    text = format!("{err}\n");
                }
                eprint!("{text}");
            }
            if errors.errors.len() > 1 {
                eprintln!("{} errors in the plan; nothing was changed", errors.errors.len());
            }
        }
        other => eprintln!("error: {other}"),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::io("starting the async runtime"))
}

fn run(cli: Cli) -> Result<Exit, Error> {
    let Cli { state_dir, no_progress, command, context, .. } = cli;
    let context = context.as_deref();
    match command {
        Command::Plan { plan, day, only, json } => {
            let opts =
                commands::ApplyOptions { day, only, parallelism: None, yes: false, dry_run: true, json, state_dir };
            apply(&plan, &opts, no_progress, context)
        }
        Command::Apply { plan, day, dry_run, only, parallelism, yes, json } => {
            let parallelism = parallelism.map(usize::from);
            let opts = commands::ApplyOptions { day, only, parallelism, yes, dry_run, json, state_dir };
            apply(&plan, &opts, no_progress, context)
        }
        Command::Resume { run, plan, json } => {
            let state = location(state_dir.as_deref(), plan.as_deref())?;
            against_a_run((json, no_progress, context), true, async |docker, out, stop| {
                runs::resume(docker, &state, run.as_deref(), out, stop).await
            })
        }
        Command::Rollback { run, plan, services, force, json } => {
            let state = location(state_dir.as_deref(), plan.as_deref())?;
            let overwrite = if force { runs::Overwrite::Anyway } else { runs::Overwrite::Refuse };
            against_a_run((json, no_progress, context), false, async |docker, out, stop| {
                runs::rollback(docker, &state, &run, &services, overwrite, out, stop).await
            })
        }
        Command::Status { run, plan, json } => {
            let state = location(state_dir.as_deref(), plan.as_deref())?;
            let runs = runs::status(&state, run.as_deref())?;
            Output { json }.status(&runs, &state);
            Ok(Exit::Ok)
        }
        Command::Verify { plan, through_day, json } => {
            let plan = Plan::load(&plan)?;
            let verdicts = runtime()?.block_on(async {
                let docker = BollardDocker::connect(context).await?;
                crate::engine::verify::verify(&docker, &plan, through_day).await.map_err(Error::from)
            })?;
            Output { json }.verify(&verdicts);
            Ok(if verdicts.iter().all(|v| v.ok) { Exit::Ok } else { Exit::Found })
        }
        Command::Report { plan, format, out, force, filters } => {
            let plan = Plan::load(&plan)?;
            let state = crate::state::StateLocation::resolve(state_dir.as_deref(), Some(&plan));
            let report = runtime()?.block_on(async {
                let docker = BollardDocker::connect(context).await?;
                crate::engine::report::gather(&docker, &plan, &state, &filters).await
            })?;
            let text = match format {
                ReportFormat::Md => report::md::render(&report),
                ReportFormat::Html => report::html::render(&report),
                ReportFormat::Json => serde_json::to_string_pretty(&report).expect("the report serializes") + "\n",
            };
            match out {
                Some(path) => {
                    write_out(&path, &text, force)?;
                    eprintln!("wrote {}", path.display());
                }
                None => Output { json: format == ReportFormat::Json }.report(&text),
            }
            Ok(Exit::Ok)
        }
        Command::Init { out, force, profiles, name, json, filters } => {
            let opts = init::InitOptions { out, force, profiles, name, json, filters };
            let profiles = init::prepare(&opts)?;
            runtime()?.block_on(async {
                let docker = BollardDocker::connect(context).await?;
                init::init(&docker, &profiles, &opts).await
            })
        }
        Command::Audit { plan: plan_path, json, format, fail_on_root, filters } => {
            let plan = plan_path.as_deref().map(plan::Plan::load).transpose()?;
            let report = runtime()?.block_on(async {
                let docker = BollardDocker::connect(context).await?;
                tracing::info!(address = %docker_address(&docker), "connected");
                let mut report = audit::run(&docker, plan.as_ref(), &filters).await?;
                report.services = audit::services(&docker, plan.as_ref(), &filters).await?;
                Ok::<_, Error>(report)
            })?;
            match format.unwrap_or(if json { AuditFormat::Json } else { AuditFormat::Human }) {
                AuditFormat::Sarif => {
                    let path = plan_path.as_deref().map(|p| p.display().to_string());
                    let text = plan_path.as_deref().and_then(|p| std::fs::read_to_string(p).ok());
                    let plan = path.as_deref().zip(text.as_deref());
                    Output { json: true }.sarif(&sarif::log(&report, plan));
                }
                f => Output { json: f == AuditFormat::Json }.audit(&report),
            }
            let violations = report.violation_count();
            Ok(if fail_on_root && violations > 0 { Exit::Found } else { Exit::Ok })
        }
        offline => run_offline(offline),
    }
}

/// The commands that need no daemon: check, graph, completions, schema, man.
fn run_offline(command: Command) -> Result<Exit, Error> {
    match command {
        Command::Check { plan, json } => Output { json }.check(&Plan::load(&plan)?),
        Command::Graph { plan, format } => {
            let plan = Plan::load(&plan)?;
            let rendered = match format {
                GraphFormat::Text => plan.graph.render_text(&plan.days),
                GraphFormat::Dot => plan.graph.render_dot(&plan.days),
                GraphFormat::Mermaid => plan.graph.render_mermaid(&plan.days),
            };
            Output { json: false }.graph(&rendered);
        }
        Command::Completions { shell } => Output { json: false }.completions(shell, &mut Cli::command()),
        Command::Schema => Output { json: true }.schema(&plan::json_schema()),
        Command::Man => Output { json: false }.man(Cli::command()),
        other => unreachable!("{other:?} needs the daemon"),
    }
    Ok(Exit::Ok)
}

/// `plan` and `apply` (`plan` is `apply --dry-run`).
fn apply(
    plan: &std::path::Path,
    opts: &commands::ApplyOptions,
    no_progress: bool,
    context: Option<&str>,
) -> Result<Exit, Error> {
    let plan = Plan::load(plan)?;
    runtime()?.block_on(async {
        let docker = Timed::new(BollardDocker::connect(context).await?);
        let bars = Bars::for_terminal(no_progress);
        let out = Reporter { json: opts.json, bars, docker_nanos: Some(docker.counter()) };
        let stop: &'static Interrupt = Box::leak(Box::new(Interrupt::default()));
        watch_ctrl_c(stop);
        commands::apply(&docker, &plan, opts, stop, &out).await
    })
}

/// `resume` and `rollback`: a command on a run, with events on stdout; `ctrl_c` watches for
/// Ctrl-C (a rollback is left to finish: it is what Ctrl-C would start).
fn against_a_run<F>((json, no_progress, context): (bool, bool, Option<&str>), ctrl_c: bool, f: F) -> Result<Exit, Error>
where
    F: AsyncFnOnce(&BollardDocker, &Reporter, &'static Interrupt) -> Result<Exit, Error>,
{
    let out = Reporter { json, bars: Bars::for_terminal(no_progress), docker_nanos: None };
    runtime()?.block_on(async {
        let docker = BollardDocker::connect(context).await?;
        let stop: &'static Interrupt = Box::leak(Box::new(Interrupt::default()));
        if ctrl_c {
            watch_ctrl_c(stop);
        }
        f(&docker, &out, stop).await
    })
}

/// The state directory of `resume`, `rollback` and `status`: `--state-dir`, else the
/// `state_dir` of `--plan`, else `rollback/`.
fn location(
    flag: Option<&std::path::Path>,
    plan: Option<&std::path::Path>,
) -> Result<crate::state::StateLocation, Error> {
    let plan = plan.map(Plan::load).transpose()?;
    Ok(crate::state::StateLocation::resolve(flag, plan.as_ref()))
}

/// Ctrl-C once: start nothing new and roll back what is in flight. Twice: stop at once
/// (`unroot resume` continues).
fn watch_ctrl_c(stop: &'static Interrupt) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\nInterrupted: starting nothing new and rolling back what is in flight. Ctrl-C again stops at once."
            );
            stop.set();
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("Stopped at once; `unroot resume` continues the run.");
                std::process::exit(130);
            }
        }
    });
}

fn docker_address(d: &BollardDocker) -> String {
    use crate::docker::DockerPort;
    let i = d.daemon();
    format!("{} (API {}, Engine {})", i.address, i.api_version, i.server_version)
}

/// Writes an `--out` file: a new file (refused if one appeared meanwhile), or with `force` a
/// replacement through a temporary file renamed over it.
pub(crate) fn write_out(out: &std::path::Path, text: &str, force: bool) -> Result<(), Error> {
    let context = format!("cannot write {}", out.display());
    if !force {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(out).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Usage(format!("{} exists; nothing was written (--force overwrites it)", out.display()))
            } else {
                Error::io(context.clone())(e)
            }
        })?;
        return std::io::Write::write_all(&mut f, text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(Error::io(context));
    }
    crate::state::replace_file(out, text.as_bytes(), 0o644, None).map_err(Error::io(context))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
