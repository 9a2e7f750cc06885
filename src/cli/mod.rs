//! Command-line parsing and dispatch: turns arguments into library calls and errors into
//! reports on stderr and exit codes.

mod args;
pub mod commands;
pub mod init;
mod man;
pub mod output;
pub mod report;
pub mod sarif;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use sha2::Digest;

use clap::{CommandFactory, Parser};

pub use args::{AuditFormat, Cli, Command, Format, GraphFormat, HumanOrJson, PlanArg, ReportFormat};

use crate::cli::output::{JsonAnswer, Output};
use crate::engine::executor::Outcome;
use crate::engine::interrupt::Interrupt;
use crate::engine::runs::{ApplyOptions, RunEnd};
use crate::error::{Error, Exit};
use crate::model::plan::Plan;

use crate::model::plan;

/// How a command ended, before it is an exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Done: what it had to say is in its output.
    Done,
    /// A look that counts findings (audit's root containers, verify's services with
    /// problems, the preview's blockers); `fail`: whether a finding fails the command.
    Looked { found: usize, fail: bool },
    /// How each run of apply, resume or rollback ended (the worst decides).
    Runs(Vec<RunEnd>),
    /// A second Ctrl-C stopped the command at once; `unroot resume` continues the run.
    StoppedAtOnce,
}

/// The one place that decides exit codes (SPEC §1): from how a command ended, or from the
/// error it failed with.
pub fn exit_code(ended: Result<&Ended, &Error>) -> Exit {
    match ended {
        Ok(Ended::Done) => Exit::Ok,
        Ok(Ended::Looked { found, fail }) => {
            if *fail && *found > 0 {
                Exit::Found
            } else {
                Exit::Ok
            }
        }
        Ok(Ended::Runs(runs)) => runs
            .iter()
            .map(|end| match end {
                RunEnd::Ran { outcome: Outcome::Applied, any_failed: false }
                | RunEnd::Restored
                | RunEnd::AlreadyEnded(_) => Exit::Ok,
                RunEnd::Ran { outcome: Outcome::Applied, any_failed: true } => Exit::CommittedWithRestored,
                RunEnd::Ran { outcome: Outcome::RolledBack, .. } => Exit::RolledBack,
                RunEnd::Ran { outcome: Outcome::Incomplete | Outcome::CommitIncomplete, .. } => Exit::Incomplete,
            })
            .max_by_key(|exit| *exit as u8)
            .unwrap_or(Exit::Ok),
        Ok(Ended::StoppedAtOnce) => Exit::Interrupted,
        Err(Error::State(crate::state::StateError::Locked { .. }) | Error::Refused(_)) => Exit::Refused,
        Err(Error::Incomplete(_)) => Exit::Incomplete,
        // Blockers: findings of the preview; apply changed nothing.
        Err(Error::Blocked(_)) => Exit::Found,
        // The daemon did not answer (or stopped answering) before anything changed: retry.
        Err(Error::Docker(e)) if e.is_unreachable() => Exit::Unreachable,
        // Whatever else fails before a run starts changed nothing: "bad input".
        Err(
            Error::Plan(_)
            | Error::Profiles(_)
            | Error::Docker(_)
            | Error::Io { .. }
            | Error::State(_)
            | Error::Usage(_)
            | Error::NameTaken(_),
        ) => Exit::BadInput,
    }
}

/// Parses the arguments, runs the command with its output on stdout and returns its exit
/// code.
pub fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors on stderr; --help and --version on stdout.
            let _ = e.print();
            let ended = if e.use_stderr() { Err(Error::Usage(e.to_string())) } else { Ok(Ended::Done) };
            return exit_code(ended.as_ref()).into();
        }
    };
    init_logging(cli.verbose, cli.quiet);
    deprecation_notes(&cli);
    let answer = json_answer(&cli.command);
    let out = Output::new(false, Box::new(std::io::stdout()));
    let ended = run(cli, &out);
    let exit = exit_code(ended.as_ref());
    if let Err(e) = &ended {
        report(e);
        // Asked for JSON, a failure answers in JSON too.
        if let Some(answer) = answer {
            out.failed(answer, e, exit);
        }
    }
    exit.into()
}

/// How `command` answers on stdout when it was asked for JSON (`None`: it was not).
fn json_answer(command: &Command) -> Option<JsonAnswer> {
    match command {
        Command::Apply { format, .. } | Command::Resume { format, .. } | Command::Rollback { format, .. } => {
            format.is_json().then_some(JsonAnswer::Lines)
        }
        Command::Audit { json, format, .. } => {
            (*json || *format == Some(AuditFormat::Json)).then_some(JsonAnswer::Document)
        }
        Command::Report { format, json, .. } => {
            (ReportFormat::of(*format, *json) == ReportFormat::Json).then_some(JsonAnswer::Document)
        }
        Command::Check { format, .. }
        | Command::Plan { format, .. }
        | Command::Status { format, .. }
        | Command::Verify { format, .. }
        | Command::Init { format, .. } => format.is_json().then_some(JsonAnswer::Document),
        Command::Graph { .. } | Command::Completions { .. } | Command::Schema | Command::Man { .. } => None,
    }
}

/// Old spellings that still work for one release, each with a note on stderr: `--only`
/// (now `--service`), and `--context` or `--state-dir` before the subcommand (now after it,
/// on the subcommands they apply to).
fn deprecation_notes(cli: &Cli) {
    if std::env::args().any(|a| a == "--only" || a.starts_with("--only=")) {
        eprintln!("note: --only is deprecated and will be removed in a later release; use --service");
    }
    for (given, flag) in [(cli.context.is_some(), "--context"), (cli.state_dir.is_some(), "--state-dir")] {
        if given {
            eprintln!("note: {flag} before the subcommand is deprecated; give it after the subcommand");
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

fn run(cli: Cli, out: &Output) -> Result<Ended, Error> {
    let Cli { no_progress, command, context: old_context, state_dir: old_state_dir, .. } = cli;
    let (state_dir, context) = (command.state_dir().or(old_state_dir), command.context().or(old_context));
    let env = commands::Env { state_dir, no_progress, context, out: out.clone() };
    match command {
        Command::Plan { plan, day, services, format, .. } => {
            let opts = ApplyOptions { day, only: services.services, parallelism: None };
            env.apply(plan.path(), commands::ApplyArgs { opts, yes: false, dry_run: true, json: format.is_json() })
        }
        Command::Apply { plan, day, dry_run, services, parallelism, yes, format, .. } => {
            let opts = ApplyOptions { day, only: services.services, parallelism: parallelism.map(usize::from) };
            env.apply(plan.path(), commands::ApplyArgs { opts, yes, dry_run, json: format.is_json() })
        }
        Command::Resume { run, plan, format, .. } => env.resume(run.as_deref(), plan.as_deref(), format.is_json()),
        Command::Rollback { run, plan, services, force, format, .. } => {
            env.rollback(&run, plan.as_deref(), &services.services, force, format.is_json())
        }
        Command::Status { run, plan, format, .. } => {
            let state = location(env.state_dir.as_deref(), plan.as_deref())?;
            let runs = crate::engine::runs::status(&state, run.as_deref())?;
            out.json(format.is_json()).status(&runs, &state);
            Ok(Ended::Done)
        }
        Command::Verify { plan, through_day, format, .. } => env.verify(plan.path(), through_day, format.is_json()),
        Command::Report { plan, format, json, out, force, filters, .. } => {
            let format = ReportFormat::of(format, json);
            env.report(plan.path(), &commands::ReportArgs { format, out, force, filters: filters.filters })
        }
        Command::Init { out: file, force, profiles, name, format, filters, .. } => {
            let opts = init::InitOptions {
                out: file,
                force,
                profiles,
                name,
                json: format.is_json(),
                filters: filters.filters,
            };
            let profiles = init::prepare(&opts)?;
            runtime()?.block_on(async {
                let docker = crate::docker::BollardDocker::connect(env.context.as_deref()).await?;
                init::init(&docker, &profiles, &opts, out).await
            })
        }
        Command::Audit { plan, json, format, fail_on_root, filters, .. } => {
            let format = format.unwrap_or(if json { AuditFormat::Json } else { AuditFormat::Human });
            env.audit(plan.as_deref(), format, fail_on_root, &filters.filters)
        }
        offline => run_offline(offline, out),
    }
}

/// The commands that need no daemon: check, graph, completions, schema, man.
fn run_offline(command: Command, out: &Output) -> Result<Ended, Error> {
    match command {
        Command::Check { plan, format } => out.json(format.is_json()).check(&Plan::load(plan.path())?),
        Command::Graph { plan, format } => {
            let plan = Plan::load(plan.path())?;
            let rendered = match format {
                GraphFormat::Text => plan.graph.render_text(&plan.days),
                GraphFormat::Dot => plan.graph.render_dot(&plan.days),
                GraphFormat::Mermaid => plan.graph.render_mermaid(&plan.days),
            };
            out.json(false).graph(&rendered);
        }
        Command::Completions { shell } => out.json(false).completions(shell, &mut Cli::command()),
        Command::Schema => out.json(true).schema(&plan::json_schema()),
        Command::Man { subcommand, dir } => man::man(out, subcommand.as_deref(), dir.as_deref())?,
        other => unreachable!("{other:?} needs the daemon"),
    }
    Ok(Ended::Done)
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
/// (the command ends as [`Ended::StoppedAtOnce`]; `unroot resume` continues).
fn watch_ctrl_c(stop: &'static Interrupt) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\nInterrupted: starting nothing new and rolling back what is in flight. Ctrl-C again stops at once."
            );
            stop.set();
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("Stopped at once; `unroot resume` continues the run.");
                stop.stop_at_once();
            }
        }
    });
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

/// The sums file `--out FILE` of evidence writes beside it: `FILE.sha256`.
pub(crate) fn sums_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// The line of `FILE.sha256` for `text` written as `out`: `<hex sha256>  <file name>`, as
/// `sha256sum` writes it and `sha256sum -c` reads it in that directory (a name holding a
/// backslash or a line break escaped, and the line marked by a leading backslash).
fn sums_line(out: &Path, text: &str) -> String {
    let hex = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.contains(['\\', '\n']) {
        format!("\\{hex}  {}\n", name.replace('\\', "\\\\").replace('\n', "\\n"))
    } else {
        format!("{hex}  {name}\n")
    }
}

/// Refuses, unless `force`, an `--out` of evidence when the file or its sums file exists
/// (bad input, naming it): checked before the daemon is asked, and again before writing.
pub(crate) fn evidence_free(out: &Path, force: bool) -> Result<(), Error> {
    match [out.to_path_buf(), sums_path(out)].iter().find(|p| !force && std::fs::symlink_metadata(p).is_ok()) {
        Some(taken) => Err(Error::Usage(format!(
            "{} exists; nothing was written (--force overwrites {} and its .sha256)",
            taken.display(),
            out.display()
        ))),
        None => Ok(()),
    }
}

/// Writes an `--out` of evidence (`report`): the file as [`write_out`] writes it, and beside
/// it `FILE.sha256` ([`sums_path`]) under the same rules. Without `force` both must be new,
/// and both are checked before either is written; a file whose sums cannot be written is
/// taken back (with `force`, the stale sums file is), so no sums file ever disagrees with
/// its file. Returns the sums file's path.
pub(crate) fn write_evidence(out: &Path, text: &str, force: bool) -> Result<PathBuf, Error> {
    evidence_free(out, force)?;
    write_out(out, text, force)?;
    let sums = sums_path(out);
    if let Err(e) = write_out(&sums, &sums_line(out, text), force) {
        let _ = std::fs::remove_file(if force { &sums } else { out });
        return Err(e);
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sums_line_is_what_sha256sum_writes() {
        // sha256 of "abc" (FIPS 180-2's example).
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sums_line(Path::new("out/report.html"), "abc"), format!("{abc}  report.html\n"));
        assert_eq!(sums_path(Path::new("out/report.html")), Path::new("out/report.html.sha256"));
        assert_eq!(sums_line(Path::new("a\\b\nc"), "abc"), format!("\\{abc}  a\\\\b\\nc\n"));
    }

    #[test]
    fn evidence_and_its_sums_are_both_new_or_forced() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("r.md");
        let sums = write_evidence(&out, "one", false).unwrap();
        assert_eq!(std::fs::read_to_string(&sums).unwrap(), sums_line(&out, "one"));
        assert!(matches!(write_evidence(&out, "two", false), Err(Error::Usage(_))));
        std::fs::remove_file(&out).unwrap();
        let refused = write_evidence(&out, "two", false).unwrap_err().to_string();
        assert!(refused.starts_with(&format!("{} exists; nothing was written", sums.display())), "{refused}");
        assert!(!out.exists(), "nothing is written while the sums file is there");
        write_evidence(&out, "three", true).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "three");
        assert_eq!(std::fs::read_to_string(&sums).unwrap(), sums_line(&out, "three"));
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
