//! The command line as clap parses it, under one convention (docs/cli.md): `--format`
//! wherever a command prints data, `--json` its alias; the plan named first or with
//! `--plan`; a plan's services picked with `--service`; `--context` only on the commands
//! that talk to the daemon and `--state-dir` only on those that read or write runs; help
//! on every argument.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::engine::audit;

#[derive(Debug, Parser)]
#[command(name = "unroot", version, about = "Move running Docker containers off root in planned, health-gated stages")]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less logging on stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Never draw progress bars.
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// The old place of the subcommands' --context (`unroot --context X audit`): still
    /// taken, with a note, for one release.
    #[arg(long, value_name = "NAME", hide = true)]
    pub context: Option<String>,
    /// The old place of the subcommands' --state-dir: still taken, with a note.
    #[arg(long, value_name = "DIR", hide = true)]
    pub state_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// `--format human|json`, and `--json`, its alias.
#[derive(Debug, Clone, Default, Args)]
pub struct Format {
    /// human (the default) or json: one JSON document on stdout (JSON lines of events for
    /// apply, resume and rollback), also when the command fails.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<HumanOrJson>,
    /// The same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

impl Format {
    /// JSON was asked for, either way.
    pub fn is_json(&self) -> bool {
        self.json || self.format == Some(HumanOrJson::Json)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HumanOrJson {
    Human,
    Json,
}

/// The plan a command needs: first, or with `--plan`.
#[derive(Debug, Clone, Default, Args)]
pub struct PlanArg {
    /// The plan file (TOML, see docs/plan.md); `--plan PLAN` says the same.
    #[arg(value_name = "PLAN", required_unless_present = "plan_flag")]
    pub plan: Option<PathBuf>,
    /// The plan file (the same as giving it first).
    #[arg(long = "plan", value_name = "PLAN", conflicts_with = "plan")]
    pub plan_flag: Option<PathBuf>,
}

impl PlanArg {
    /// The plan's path, however it was given.
    pub fn path(&self) -> &Path {
        self.plan.as_deref().or(self.plan_flag.as_deref()).expect("clap requires the plan")
    }
}

/// The daemon a command talks to.
#[derive(Debug, Clone, Default, Args)]
pub struct Daemon {
    /// The Docker context to use (as `docker --context`); it wins over DOCKER_HOST,
    /// DOCKER_CONTEXT and `docker context use`.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// Where a command finds the runs.
#[derive(Debug, Clone, Default, Args)]
pub struct StateDir {
    /// The state directory (overrides the plan's `state_dir`; else rollback/).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// The services of a plan a command is limited to.
#[derive(Debug, Clone, Default, Args)]
pub struct Services {
    /// Only this service of the plan (repeatable). `--only` is the old spelling.
    #[arg(long = "service", alias = "only", value_name = "NAME")]
    pub services: Vec<String>,
}

/// The containers on the daemon a command looks at.
#[derive(Debug, Clone, Default, Args)]
pub struct Filters {
    /// Only containers that match, as `docker ps --filter`: name=TEXT, label=KEY[=VALUE],
    /// project=COMPOSE_PROJECT. Repeatable; every service the plan names is still listed
    /// by report.
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<audit::Filter>,
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
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        daemon: Daemon,
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
        /// json: the decisions as one JSON document on stdout (the plan still goes to --out).
        #[command(flatten)]
        format: Format,
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        daemon: Daemon,
    },
    /// Validate a plan offline (no daemon needed).
    Check {
        #[command(flatten)]
        plan: PlanArg,
        #[command(flatten)]
        format: Format,
    },
    /// Print the days, waves and edges of a plan's rollout.
    Graph {
        #[command(flatten)]
        plan: PlanArg,
        /// text (the default), dot (Graphviz) or mermaid.
        #[arg(long, value_enum, default_value_t = GraphFormat::Text, value_name = "FORMAT")]
        format: GraphFormat,
    },
    /// Preview a day against the live daemon; changes nothing (= apply --dry-run).
    Plan {
        #[command(flatten)]
        plan: PlanArg,
        /// The day to preview (a `day` of the plan's services).
        #[arg(long, value_name = "N")]
        day: u32,
        #[command(flatten)]
        services: Services,
        #[command(flatten)]
        format: Format,
        #[command(flatten)]
        daemon: Daemon,
        #[command(flatten)]
        state: StateDir,
    },
    /// Migrate one day of a plan: back up, re-own, recreate, gate on health, roll back on failure.
    Apply {
        #[command(flatten)]
        plan: PlanArg,
        /// The day to migrate (a `day` of the plan's services).
        #[arg(long, value_name = "N")]
        day: u32,
        /// Preview only; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        services: Services,
        /// Services of one wave migrated at once (overrides the plan).
        #[arg(long, value_name = "K", value_parser = clap::value_parser!(u16).range(1..=64))]
        parallelism: Option<u16>,
        /// Do not ask for confirmation (required without a terminal).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        format: Format,
        #[command(flatten)]
        daemon: Daemon,
        #[command(flatten)]
        state: StateDir,
    },
    /// Finish or roll back an interrupted run (all interrupted runs without RUN).
    Resume {
        /// The run to finish (`unroot status` lists them); without it, every interrupted run.
        #[arg(value_name = "RUN")]
        run: Option<String>,
        /// The plan whose `state_dir` holds the run (else --state-dir, else rollback/).
        #[arg(long, value_name = "PLAN")]
        plan: Option<PathBuf>,
        #[command(flatten)]
        format: Format,
        #[command(flatten)]
        daemon: Daemon,
        #[command(flatten)]
        state: StateDir,
    },
    /// Restore the originals of a run (committed or interrupted).
    Rollback {
        /// The run to roll back (`unroot status` lists them).
        #[arg(value_name = "RUN")]
        run: String,
        /// The plan whose `state_dir` holds the run (else --state-dir, else rollback/).
        #[arg(long, value_name = "PLAN")]
        plan: Option<PathBuf>,
        #[command(flatten)]
        services: Services,
        /// Put a Swarm service's original spec back even when someone else changed the
        /// service since unroot's last write (without it, the rollback is refused and the
        /// changed fields are named).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        format: Format,
        #[command(flatten)]
        daemon: Daemon,
        #[command(flatten)]
        state: StateDir,
    },
    /// Runs, and each service's step.
    Status {
        /// Only this run.
        #[arg(value_name = "RUN")]
        run: Option<String>,
        /// The plan whose `state_dir` holds the runs (else --state-dir, else rollback/).
        #[arg(long, value_name = "PLAN")]
        plan: Option<PathBuf>,
        #[command(flatten)]
        format: Format,
        #[command(flatten)]
        state: StateDir,
    },
    /// Check every planned service of the days through N: running, healthy, configured
    /// as planned, every process at the planned uid.
    Verify {
        #[command(flatten)]
        plan: PlanArg,
        /// Check the days up to and including N (a day of the plan); default: every day.
        #[arg(long, value_name = "N")]
        through_day: Option<u32>,
        #[command(flatten)]
        format: Format,
        #[command(flatten)]
        daemon: Daemon,
    },
    /// The evidence for an audit: every container before and now, each day's runs with
    /// their downtime and rollbacks, the exceptions and their controls, verify's verdict,
    /// each finding with its CIS Docker Benchmark id. Changes nothing.
    Report {
        #[command(flatten)]
        plan: PlanArg,
        /// md (Markdown, the default), html (one self-contained page) or json.
        #[arg(long, value_enum, value_name = "FORMAT", conflicts_with = "json")]
        format: Option<ReportFormat>,
        /// The same as --format json.
        #[arg(long)]
        json: bool,
        /// Write the report to FILE and its sha256 to FILE.sha256, for `sha256sum -c`
        /// (refused when either exists, unless --force); else to stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Overwrite the --out file and its .sha256.
        #[arg(long, requires = "out")]
        force: bool,
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        daemon: Daemon,
        #[command(flatten)]
        state: StateDir,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the JSON Schema of the plan format (for editors: see docs/plan.md).
    Schema,
    /// Print a man page (roff): unroot's own, or a subcommand's (`unroot man apply`); with
    /// --dir, write every page there (unroot.1, unroot-audit.1, …).
    Man {
        /// The subcommand whose page to print (`unroot-SUBCOMMAND(1)`).
        #[arg(value_name = "SUBCOMMAND", conflicts_with = "dir")]
        subcommand: Option<String>,
        /// Write every page into DIR (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

impl Command {
    /// The Docker context the command was given (`None`: the docker CLI's own rules).
    pub fn context(&self) -> Option<String> {
        match self {
            Command::Audit { daemon, .. }
            | Command::Init { daemon, .. }
            | Command::Plan { daemon, .. }
            | Command::Apply { daemon, .. }
            | Command::Resume { daemon, .. }
            | Command::Rollback { daemon, .. }
            | Command::Verify { daemon, .. }
            | Command::Report { daemon, .. } => daemon.context.clone(),
            _ => None,
        }
    }

    /// The state directory the command was given.
    pub fn state_dir(&self) -> Option<PathBuf> {
        match self {
            Command::Plan { state, .. }
            | Command::Apply { state, .. }
            | Command::Resume { state, .. }
            | Command::Rollback { state, .. }
            | Command::Status { state, .. }
            | Command::Report { state, .. } => state.state_dir.clone(),
            _ => None,
        }
    }
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

impl ReportFormat {
    /// `--format`, or json for `--json`, else Markdown.
    pub fn of(format: Option<ReportFormat>, json: bool) -> ReportFormat {
        format.unwrap_or(if json { ReportFormat::Json } else { ReportFormat::Md })
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Mermaid,
}
