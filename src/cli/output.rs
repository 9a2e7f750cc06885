//! The only module that writes to stdout: human text or one JSON document per command.
//! Logs and progress go to stderr elsewhere.

use std::io::Write;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::docker::swarm::ServiceMode;
use crate::engine::audit;
use crate::engine::events::{Event, Events};
use crate::engine::preview::Method;
use crate::model::plan::Plan;
use crate::state::Step;

/// Human text or JSON, as the command was asked.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`unroot graph … | head`) is not an error worth a panic.
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

fn print_json<T: Serialize>(value: &T) {
    let text = serde_json::to_string_pretty(value).expect("output types serialize");
    print(&format!("{text}\n"));
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
            print_json(plan);
            return;
        }
        let Some(path) = out else {
            print(text);
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
        print(&lines);
    }

    /// `unroot init` with no container to move: what was left out and why; no plan.
    pub fn init_nothing(&self, plan: &crate::engine::init::InitPlan) {
        if self.json {
            print_json(plan);
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
        print(&lines);
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
            print_json(&Check {
                plan: &plan.rollout.name,
                ok: true,
                sha256: &plan.sha256,
                services: plan.services.len(),
                days: &days,
                waves,
                exceptions,
            });
        } else {
            print(&format!(
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
        print(rendered);
    }

    /// `unroot graph`, already rendered.
    pub fn graph(&self, rendered: &str) {
        print(rendered);
    }

    /// `unroot completions`.
    pub fn completions(&self, shell: clap_complete::Shell, cmd: &mut clap::Command) {
        let mut buf = Vec::new();
        clap_complete::generate(shell, cmd, "unroot", &mut buf);
        print(&String::from_utf8_lossy(&buf));
    }

    /// `unroot schema`: the plan format's JSON Schema.
    pub fn schema(&self, schema: &serde_json::Value) {
        print_json(schema);
    }

    /// `unroot man`: the man page, in roff.
    pub fn man(&self, cmd: clap::Command) {
        let mut buf = Vec::new();
        if clap_mangen::Man::new(cmd).render(&mut buf).is_ok() {
            print(&String::from_utf8_lossy(&buf));
        }
    }

    /// `unroot plan` / `apply --dry-run`: the day as apply will run it.
    pub fn preview(&self, day: &crate::engine::preview::DayPlan, title: Option<&str>) {
        if self.json {
            print_json(day);
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
            let mark = if s.blockers.is_empty() { "~" } else { "✗" };
            out.push_str(&format!("{mark} {}\n", s.name));
            out.push_str(&format!("    user:   {} → {}\n", s.user.from, s.user.to));
            for c in &s.chown {
                let n = c.entries.map(|n| format!(", {n} entries to change")).unwrap_or_default();
                let how = if c.method == Method::Host { "on the host" } else { "in a helper container" };
                out.push_str(&format!("    chown:  {} ({} {}, {how}{n})\n", c.target, c.kind, c.source));
            }
            let changes: Vec<String> = s.changes.iter().map(|c| format!("    {c}")).collect();
            out.push_str(&service_tail(&s.health, &changes, &s.warnings, &s.blockers));
        }
        for s in &day.swarm {
            out.push_str(&swarm_service(s));
        }
        let blocked = day.services.iter().filter(|s| !s.blockers.is_empty()).count()
            + day.swarm.iter().filter(|s| !s.blockers.is_empty()).count();
        let warnings: usize = day.services.iter().map(|s| s.warnings.len()).sum::<usize>()
            + day.swarm.iter().map(|s| s.warnings.len()).sum::<usize>();
        out.push_str(&format!(
            "Plan: {} service(s) to migrate, {blocked} blocked, {warnings} warning(s).\n",
            day.services.len() + day.swarm.len() - blocked
        ));
        print(&out);
    }

    /// `unroot status`: runs and each service's step.
    pub fn status(&self, runs: &[crate::engine::runs::RunStatus], loc: &crate::state::StateLocation) {
        let hint = &loc.hint;
        if self.json {
            print_json(&serde_json::json!({ "runs": runs }));
            return;
        }
        if runs.is_empty() {
            print(&format!(
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
                        if s.step.is_empty() { "-".into() } else { s.step.clone() },
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
        print(&out);
    }

    /// `unroot verify`: each planned service, ok or its problems.
    pub fn verify(&self, verdicts: &[crate::engine::verify::Verdict]) {
        if self.json {
            print_json(&serde_json::json!({ "services": verdicts }));
            return;
        }
        let rows: Vec<Vec<String>> = verdicts
            .iter()
            .map(|v| vec![v.name.clone(), if v.ok { "ok".into() } else { "FAIL".into() }, v.problems.join("; ")])
            .collect();
        let mut out = table(&["SERVICE", "VERDICT", "PROBLEMS"], &rows);
        let bad = verdicts.iter().filter(|v| !v.ok).count();
        out.push_str(&format!("\n{} service(s) checked, {bad} with problems\n", verdicts.len()));
        print(&out);
    }

    /// `unroot audit`: a table, the summary and any containers that vanished.
    /// The audit as a SARIF log (always JSON).
    pub fn sarif(&self, log: &serde_sarif::sarif::Sarif) {
        print_json(log);
    }

    pub fn audit(&self, report: &audit::Report) {
        if self.json {
            print_json(report);
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
        print(&out);
    }
}

/// Spinners on stderr for the steps in flight, one per service (terminals only).
#[derive(Debug, Default)]
pub struct Bars {
    multi: indicatif::MultiProgress,
    active: std::sync::Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
}

impl Bars {
    /// Spinners when stderr is a terminal and progress is wanted.
    pub fn for_terminal(no_progress: bool) -> Option<std::sync::Arc<Bars>> {
        use std::io::IsTerminal;
        (!no_progress && std::io::stderr().is_terminal()).then(|| std::sync::Arc::new(Bars::default()))
    }

    fn start(&self, service: &str, step: &str) {
        let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
        bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("a valid template"));
        bar.set_message(format!("{service}: {step}"));
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        if let Some(old) = self.active.lock().expect("bars lock").insert(service.to_string(), bar) {
            old.finish_and_clear();
        }
    }

    fn end(&self, service: &str) {
        if let Some(bar) = self.active.lock().expect("bars lock").remove(service) {
            bar.finish_and_clear();
        }
    }
}

/// Events of apply, resume and rollback: one line each, human or JSON (SPEC §9). Every
/// event is reported after the journal record it stands for is durable.
#[derive(Debug, Clone, Default)]
pub struct Reporter {
    pub json: bool,
    /// Spinners for the waits (stderr, terminals only).
    pub bars: Option<std::sync::Arc<Bars>>,
    /// Nanoseconds spent waiting on Docker, reported with the last event.
    pub docker_nanos: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

impl Reporter {
    /// Prints a line without tearing the spinners.
    fn line(&self, text: &str) {
        match &self.bars {
            Some(b) => b.multi.suspend(|| print(text)),
            None => print(text),
        }
    }
}

impl Reporter {
    /// One event line: `service: step event k=v…` for people, or a JSON object.
    fn render(&self, event: &str, service: Option<&str>, step: Option<Step>, fields: Map<String, Value>) {
        if self.json {
            let mut obj = Map::new();
            obj.insert("event".into(), event.into());
            if let Some(s) = service {
                obj.insert("service".into(), s.into());
            }
            if let Some(s) = step {
                obj.insert("step".into(), s.as_str().into());
            }
            obj.insert("ts".into(), crate::state::now_rfc3339().into());
            obj.extend(fields);
            self.line(&format!("{}\n", Value::Object(obj)));
            return;
        }
        let mut line = String::new();
        if let Some(s) = service {
            line.push_str(&format!("{s}: "));
        }
        if let Some(s) = step {
            line.push_str(&format!("{s} "));
        }
        line.push_str(event);
        for (k, v) in &fields {
            match v {
                Value::String(s) => line.push_str(&format!(" {k}={s}")),
                Value::Null => {}
                other => line.push_str(&format!(" {k}={other}")),
            }
        }
        self.line(&format!("{line}\n"));
    }
}

/// A step's fields: its error, then its detail's (an object's) keys.
fn step_fields(error: Option<&str>, detail: &Value) -> Map<String, Value> {
    let mut fields = Map::new();
    if let Some(e) = error {
        fields.insert("error".into(), e.into());
    }
    if let Value::Object(d) = detail {
        fields.extend(d.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    fields
}

impl Events for Reporter {
    fn emit(&self, event: Event<'_>) {
        if let Some(bars) = &self.bars {
            match event {
                Event::StepStart { service, step, .. } => bars.start(service, step.as_str()),
                Event::StepEnd { service, .. } | Event::StepFailed { service, .. } => bars.end(service),
                _ => {}
            }
        }
        match event {
            Event::StepStart { service, step, detail } => {
                self.render("step-start", Some(service), Some(step), step_fields(None, detail));
            }
            Event::StepEnd { service, step, detail } => {
                self.render("step-end", Some(service), Some(step), step_fields(None, detail));
            }
            Event::StepFailed { service, step, error, detail } => {
                self.render("step-failed", Some(service), Some(step), step_fields(Some(error), detail));
            }
            Event::Run { event, run, detail } => {
                let fields = Map::from_iter([("run".into(), run.into()), ("detail".into(), json!(detail))]);
                self.render(event.as_str(), None, None, fields);
            }
            Event::Skipped { service } => self.render("skipped", Some(service), None, Map::new()),
            Event::DaemonUnreachable { waiting_up_to } => {
                let waited = crate::model::plan::duration::format(waiting_up_to);
                self.render(
                    "daemon-unreachable",
                    None,
                    None,
                    Map::from_iter([("waiting_up_to".into(), waited.into())]),
                );
            }
            Event::DaemonBack => self.render("daemon-back", None, None, Map::new()),
        }
    }

    fn done(&self, outcome: &str, exit_code: u8, summary: &str) {
        if !self.json {
            self.line(&format!("\n{summary}\n"));
            return;
        }
        let mut fields = Map::new();
        fields.insert("outcome".into(), outcome.into());
        fields.insert("exit_code".into(), exit_code.into());
        if let Some(n) = &self.docker_nanos {
            let secs = n.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9;
            fields.insert("docker_api_seconds".into(), json!((secs * 1000.0).round() / 1000.0));
        }
        self.render("done", None, None, fields);
    }

    fn note(&self, text: &str) {
        if !self.json {
            self.line(&format!("{text}\n"));
        }
    }
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
