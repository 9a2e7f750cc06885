//! The only module that writes the commands' output: human text or one JSON document per
//! command, or one event per line, to the writer given at construction (stdout in `main`).
//! Logs and progress go to stderr elsewhere.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::docker::swarm::ServiceMode;
use crate::engine::audit;
use crate::engine::preview::{Method, ServicePlan, WorkloadPlan};
use crate::model::plan::Plan;

mod errors;
mod events;

pub use errors::JsonAnswer;

pub use events::{Bars, Reporter};

/// Human text or JSON, as the command was asked, written to one shared writer.
#[derive(Clone)]
pub struct Output {
    pub json: bool,
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output").field("json", &self.json).finish_non_exhaustive()
    }
}

impl Output {
    /// Output to `writer` (stdout in `main`), human text unless `json`.
    pub fn new(json: bool, writer: Box<dyn Write + Send>) -> Output {
        Output { json, writer: Arc::new(Mutex::new(writer)) }
    }

    /// The same writer, as `json` says.
    pub fn json(&self, json: bool) -> Output {
        Output { json, writer: Arc::clone(&self.writer) }
    }

    fn print(&self, text: &str) {
        let mut out = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A closed pipe (`unroot graph … | head`) is not an error worth a panic.
        let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    }

    fn print_json<T: Serialize>(&self, value: &T) {
        let text = serde_json::to_string_pretty(value).expect("output types serialize");
        self.print(&format!("{text}\n"));
    }
}

/// Pads `rows` into aligned columns under `header`.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

impl Output {
    /// `unroot init`: the decisions as JSON, or the plan itself when no file was asked for,
    /// or what was written where.
    pub fn init(&self, plan: &crate::engine::init::InitPlan, text: &str, out: Option<&std::path::Path>) {
        use crate::engine::init::Placement;
        if self.json {
            self.print_json(plan);
            return;
        }
        let Some(path) = out else {
            self.print(text);
            return;
        };
        let count = |p: Placement| plan.services.iter().filter(|d| d.placement == p).count();
        let mut lines = format!(
            "Wrote {}: {} service(s) to migrate on {} day(s), {} exception(s), {} not placed, {} left out.\n",
            path.display(),
            count(Placement::Migrate),
            plan.days.len(),
            count(Placement::Exception),
            count(Placement::Unplaced),
            plan.left_out.len()
        );
        for d in plan.services.iter().filter(|d| !d.warnings.is_empty()) {
            lines.push_str(&format!("  ! {}: {}\n", d.name, d.warnings.join("; ")));
        }
        for d in plan.services.iter().filter(|d| d.placement == Placement::Unplaced) {
            lines.push_str(&format!(
                "  NOT PLACED {}: written commented out: {}\n",
                d.name,
                d.unplaced.as_deref().unwrap_or_default()
            ));
        }
        for d in plan.services.iter().filter(|d| !d.blockers.is_empty()) {
            lines.push_str(&format!(
                "  BLOCKED {}: on day {} alone, after the others, until fixed: {}\n",
                d.name,
                d.day,
                d.blockers.join("; ")
            ));
        }
        lines.push_str(&format!("Review it, then `unroot check {0}` and `unroot plan {0} --day 1`.\n", path.display()));
        self.print(&lines);
    }

    /// `unroot init` with no container to move: what was left out and why; no plan.
    pub fn init_nothing(&self, plan: &crate::engine::init::InitPlan) {
        if self.json {
            self.print_json(plan);
            return;
        }
        let mut lines =
            "No running container runs as root that init can place: there is nothing to plan.\n".to_string();
        for d in &plan.services {
            lines.push_str(&format!("  {}: not placed: {}\n", d.name, d.unplaced.as_deref().unwrap_or("")));
        }
        for l in &plan.left_out {
            lines.push_str(&format!("  {}: {}\n", l.name, l.why));
        }
        self.print(&lines);
    }

    /// `unroot check`: what the plan holds.
    pub fn check(&self, plan: &Plan) {
        let days = plan.day_numbers();
        let waves: usize = days.iter().map(|d| plan.graph.waves(*d).len()).sum();
        let exceptions = plan.services.iter().filter(|s| s.keep_root.is_some()).count();
        if self.json {
            #[derive(Serialize)]
            struct Check<'a> {
                plan: &'a str,
                ok: bool,
                sha256: &'a str,
                services: usize,
                days: &'a [u32],
                waves: usize,
                exceptions: usize,
            }
            self.print_json(&Check {
                plan: &plan.rollout.name,
                ok: true,
                sha256: &plan.sha256,
                services: plan.services.len(),
                days: &days,
                waves,
                exceptions,
            });
        } else {
            self.print(&format!(
                "{}: ok: plan `{}`, {} services over {} days in {} waves, {} documented exception(s)\n",
                plan.source.name,
                plan.rollout.name,
                plan.services.len(),
                days.len(),
                waves,
                exceptions
            ));
        }
    }

    /// `unroot report`, already rendered (Markdown, HTML or JSON).
    pub fn report(&self, rendered: &str) {
        self.print(rendered);
    }

    /// `unroot graph`, already rendered.
    pub fn graph(&self, rendered: &str) {
        self.print(rendered);
    }

    /// `unroot completions`.
    pub fn completions(&self, shell: clap_complete::Shell, cmd: &mut clap::Command) {
        let mut buf = Vec::new();
        clap_complete::generate(shell, cmd, "unroot", &mut buf);
        self.print(&String::from_utf8_lossy(&buf));
    }

    /// `unroot schema`: the plan format's JSON Schema.
    pub fn schema(&self, schema: &serde_json::Value) {
        self.print_json(schema);
    }

    /// `unroot man`: the man page, in roff.
    pub fn man(&self, roff: &[u8]) {
        self.print(&String::from_utf8_lossy(roff));
    }

    /// `unroot plan` / `apply --dry-run`: the day as apply will run it.
    pub fn preview(&self, day: &crate::engine::preview::DayPlan, title: Option<&str>) {
        if self.json {
            self.print_json(day);
            return;
        }
        let mut out = format!(
            "unroot plan: {}, day {}{}\n\n",
            day.plan,
            day.day,
            title.map(|t| format!(" ({t})")).unwrap_or_default()
        );
        for (i, w) in day.waves.iter().enumerate() {
            out.push_str(&format!("  wave {}: {}\n", i + 1, w.join(", ")));
        }
        out.push('\n');
        for a in &day.already_migrated {
            out.push_str(&format!("= {}: already migrated by run {}; nothing to do\n\n", a.name, a.run));
        }
        for s in &day.services {
            out.push_str(&match s {
                WorkloadPlan::Container(s) => container_service(s),
                WorkloadPlan::Service(s) => swarm_service(s),
            });
        }
        let blocked = day.services.iter().filter(|s| !s.blockers().is_empty()).count();
        let warnings: usize = day.services.iter().map(|s| s.warnings().len()).sum();
        out.push_str(&format!(
            "Plan: {} service(s) to migrate, {blocked} blocked, {warnings} warning(s).\n",
            day.services.len() - blocked
        ));
        self.print(&out);
    }

    /// `unroot status`: runs and each service's step.
    pub fn status(&self, runs: &[crate::engine::runs::RunStatus], loc: &crate::state::StateLocation) {
        let hint = &loc.hint;
        if self.json {
            self.print_json(&serde_json::json!({ "runs": runs }));
            return;
        }
        if runs.is_empty() {
            self.print(&format!(
                "No runs in state directory {}; pass --plan PLAN or --state-dir DIR to look elsewhere.\n",
                loc.dir.display()
            ));
            return;
        }
        let mut out = String::new();
        for r in runs {
            out.push_str(&format!("{}  plan {}  day {}  {}\n", r.run, r.plan, r.day, r.state.as_str()));
            let rows: Vec<Vec<String>> = r
                .services
                .iter()
                .map(|s| {
                    vec![
                        format!("  {}", s.name),
                        s.state.as_str().to_string(),
                        s.step.map_or("-", crate::state::Step::as_str).to_string(),
                    ]
                })
                .collect();
            out.push_str(&table(&["  SERVICE", "STATE", "LAST STEP"], &rows));
            if r.state.is_open() && r.state != crate::state::RunState::InProgress {
                out.push_str(&format!(
                    "  continue with `unroot resume {run}{hint}` or undo with `unroot rollback {run}{hint}`\n",
                    run = r.run
                ));
            }
            out.push('\n');
        }
        self.print(&out);
    }

    /// `unroot verify`: each planned service, ok or its problems.
    pub fn verify(&self, verdicts: &[crate::engine::verify::Verdict]) {
        if self.json {
            self.print_json(&serde_json::json!({ "services": verdicts }));
            return;
        }
        let rows: Vec<Vec<String>> = verdicts
            .iter()
            .map(|v| vec![v.name.clone(), if v.ok { "ok".into() } else { "FAIL".into() }, v.problems.join("; ")])
            .collect();
        let mut out = table(&["SERVICE", "VERDICT", "PROBLEMS"], &rows);
        let bad = verdicts.iter().filter(|v| !v.ok).count();
        out.push_str(&format!("\n{} service(s) checked, {bad} with problems\n", verdicts.len()));
        self.print(&out);
    }

    /// `unroot audit`: a table, the summary and any containers that vanished.
    /// The audit as a SARIF log (always JSON).
    pub fn sarif(&self, log: &serde_sarif::sarif::Sarif) {
        self.print_json(log);
    }

    pub fn audit(&self, report: &audit::Report) {
        if self.json {
            self.print_json(report);
            return;
        }
        let rows: Vec<Vec<String>> = report
            .containers
            .iter()
            .map(|e| {
                let user = match (e.configured_user.as_str(), e.configured_uid) {
                    ("", _) => "(unset: root)".to_string(),
                    (u, Some(uid)) if u.split(':').next() != Some(&uid.to_string()) => {
                        format!("{u} ({uid})")
                    }
                    (u, _) => u.to_string(),
                };
                let uids = if e.process_uids.is_empty() {
                    "-".to_string()
                } else {
                    e.process_uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
                };
                let mut flags = e.flags.join(" ");
                if let Some(n) = &e.note {
                    flags = format!("{flags} [{n}]").trim().to_string();
                }
                if let Some(x) = &e.exception {
                    flags = format!("{flags} [exception: {x}]").trim().to_string();
                }
                vec![e.name.clone(), e.class.as_str().to_string(), user, uids, e.image.clone(), flags]
            })
            .collect();
        let mut out = table(&["NAME", "CLASS", "USER", "UIDS", "IMAGE", "FLAGS"], &rows);
        let s = &report.summary;
        out.push_str(&format!(
            "\n{} containers: {} root, {} drops-root, {} non-root, {} exception\n",
            report.containers.len(),
            s.root,
            s.drops_root,
            s.non_root,
            s.exception
        ));
        for g in &report.gone {
            out.push_str(&format!("{} ({}): {}\n", g.name, g.id, g.note));
        }
        if !report.services.is_empty() {
            out.push('\n');
            out.push_str(&services_table(&report.services));
        }
        self.print(&out);
    }
}

/// One container of a day's preview: its user, mounts, changes, warnings and blockers.
fn container_service(s: &ServicePlan) -> String {
    let mark = if s.blockers.is_empty() { "~" } else { "✗" };
    let mut out = format!("{mark} {}\n", s.name);
    out.push_str(&format!("    user:   {} → {}\n", s.user.from, s.user.to));
    for c in &s.chown {
        let n = c.entries.map(|n| format!(", {n} entries to change")).unwrap_or_default();
        let how = if c.method == Method::Host { "on the host" } else { "in a helper container" };
        out.push_str(&format!("    chown:  {} ({} {}, {how}{n})\n", c.target, c.kind, c.source));
    }
    let changes: Vec<String> = s.changes.iter().map(|c| format!("    {c}")).collect();
    out.push_str(&service_tail(&s.health, &changes, &s.warnings, &s.blockers));
    out
}

/// One Swarm service of a day's preview: mode, user, nodes with what is re-owned on each,
/// the spec's changes, warnings and blockers.
fn swarm_service(s: &crate::engine::swarm::preview::SwarmServicePlan) -> String {
    let mark = if s.blockers.is_empty() { "~" } else { "✗" };
    let mode = match s.mode {
        Some(ServiceMode::Replicated { replicas }) => format!("replicated, {replicas} replica(s)"),
        Some(ServiceMode::Global) => "global".to_string(),
        Some(ServiceMode::Job) => "job".to_string(),
        None => "?".to_string(),
    };
    let mut out = format!("{mark} {} (Swarm service, {mode})\n", s.name);
    out.push_str(&format!("    user:   {} → {}\n", s.user.from, s.user.to));
    for n in &s.nodes {
        let mounts = if n.mounts.is_empty() { "nothing to re-own".to_string() } else { n.mounts.join(", ") };
        out.push_str(&format!("    node:   {} ({}, {} task(s) now): {mounts}\n", n.hostname, n.state, n.tasks));
    }
    let changes: Vec<String> = s.spec_changes.iter().map(|c| format!("    spec:   {c}")).collect();
    out.push_str(&service_tail(&s.health, &changes, &s.warnings, &s.blockers));
    out
}

/// The end of a service's block in a preview: its health gate, its changes (already
/// indented), warnings and blockers, and a blank line.
fn service_tail(health: &str, changes: &[String], warnings: &[String], blockers: &[String]) -> String {
    let mut out = String::new();
    if !health.is_empty() {
        out.push_str(&format!("    health: {health}\n"));
    }
    for c in changes {
        out.push_str(&format!("{c}\n"));
    }
    for w in warnings {
        out.push_str(&format!("    ! warning: {w}\n"));
    }
    for b in blockers {
        out.push_str(&format!("    ✗ blocker: {b}\n"));
    }
    out.push('\n');
    out
}

/// The Swarm services of an audit: the configured user, and the uids of the tasks this
/// manager could see (`seen/running` tasks).
fn services_table(services: &[audit::ServiceEntry]) -> String {
    let rows: Vec<Vec<String>> = services
        .iter()
        .map(|e| {
            let mode = match e.mode {
                ServiceMode::Replicated { replicas } => format!("replicated {replicas}"),
                ServiceMode::Global => "global".to_string(),
                ServiceMode::Job => "job".to_string(),
            };
            let user = match (e.configured_user.as_str(), e.configured_uid) {
                ("", Some(uid)) => format!("(image: {uid})"),
                ("", None) => "(image: ?)".to_string(),
                (u, _) => u.to_string(),
            };
            let uids = e.process_uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            let uids =
                format!("{} ({}/{} tasks)", if uids.is_empty() { "-" } else { &uids }, e.tasks_seen, e.tasks_running);
            let mut flags = e.flags.join(" ");
            if let Some(x) = &e.exception {
                flags = format!("{flags} [exception: {x}]").trim().to_string();
            }
            vec![e.name.clone(), mode, e.class.as_str().to_string(), user, uids, e.image.clone(), flags]
        })
        .collect();
    let mut out = table(&["SERVICE", "MODE", "CLASS", "USER", "UIDS", "IMAGE", "FLAGS"], &rows);
    let root = services.iter().filter(|e| e.is_violation()).count();
    out.push_str(&format!("\n{} Swarm services: {root} root\n", services.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(&["A", "BB"], &[vec!["long".into(), "x".into()], vec!["s".into(), "y".into()]]);
        assert_eq!(t, "A     BB\nlong  x\ns     y\n");
    }
}
