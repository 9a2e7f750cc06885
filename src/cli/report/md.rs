//! The report as Markdown (GitHub-flavoured tables): for a pull request, a wiki, a ticket.

use super::{
    FIELDS, cis_cell, cis_ids, day_line, day_verdict, down, provenance, row, seconds, standing, uids, verdict, when,
};
use crate::engine::findings::CIS_EDITION;
use crate::engine::report::history::RunHistory;
use crate::engine::report::{DayReport, Report};

/// Text as Markdown shows it literally: no line breaks; `|` and the emphasis, code, link
/// and heading characters escaped; `<`, `>`, `&` and quotes as HTML entities (a
/// `<redacted>` is not taken for a tag).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' => o.push(' '),
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '#' | '~' => {
                o.push('\\');
                o.push(c);
            }
            c => o.push(c),
        }
    }
    super::html::esc(&o)
}

fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    out.push_str(&format!("| {} |\n", head.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(head.len())));
    for r in rows {
        out.push_str(&format!("| {} |\n", r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")));
    }
    out.push('\n');
}

/// The rows of a table: the cells of each item.
fn rows<T>(items: &[T], cells: impl Fn(&T) -> Vec<String>) -> Vec<Vec<String>> {
    items.iter().map(cells).collect()
}

/// The whole report as one Markdown document: each section in turn.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    o.push_str(&format!("# unroot report: {}\n\n", esc(&r.rollout)));
    o.push_str("## Provenance\n\n");
    table(&mut o, &["what", "value"], &rows(&provenance(r), |f| vec![f.label.clone(), f.value.clone()]));
    summary(&mut o, r);
    cis(&mut o, r);
    containers(&mut o, r);
    o.push_str("## Days\n\n");
    for d in &r.days {
        day(&mut o, d);
    }
    exceptions(&mut o, r);
    verify(&mut o, r);
    o
}

/// The summary: the counts and verify's verdict, in one row.
fn summary(o: &mut String, r: &Report) {
    o.push_str("## Summary\n\n");
    let s = &r.summary;
    table(
        o,
        &["containers", "root before", "root now", "migrated", "exceptions", "rollbacks", "downtime", "verify"],
        &[vec![
            s.containers.to_string(),
            s.root_before.to_string(),
            s.root_now.to_string(),
            s.migrated.to_string(),
            s.exceptions.to_string(),
            s.rollbacks.to_string(),
            seconds(s.downtime_seconds),
            verdict(&r.verify),
        ]],
    );
}

/// The CIS table: how many containers have each finding, before and now.
fn cis(o: &mut String, r: &Report) {
    o.push_str(&format!("## {CIS_EDITION}\n\n"));
    o.push_str("Containers each recommendation flags, before unroot and now; a container counts once per id, and one a documented exception accepts counts apart. The audit procedure of each id is docker-bench-security's.\n\n");
    let body = rows(&r.cis, |c| {
        vec![
            cis_cell(c.cis).to_string(),
            c.rules.join(", "),
            c.title.to_string(),
            c.before.to_string(),
            c.now.to_string(),
            c.accepted_now.to_string(),
        ]
    });
    table(o, &["CIS", "rules", "recommendation", "before", "now", "accepted now"], &body);
}

/// The before → now table: one row per container or service.
fn containers(o: &mut String, r: &Report) {
    o.push_str("## Containers, before → now\n\n");
    o.push_str("Before is what the first run of this plan saved; a single value did not change.\n\n");
    let mut head = vec!["container", "kind", "day", "standing"];
    head.extend(FIELDS);
    head.extend(["CIS before", "CIS now"]);
    let body = rows(&r.containers, |c| {
        let mut cells = vec![
            c.name.clone(),
            format!("{:?}", c.kind).to_lowercase(),
            c.day.map_or("-".into(), |d| d.to_string()),
            standing(c.standing).to_string(),
        ];
        cells.extend(row(c));
        cells.push(c.before.as_ref().map_or("(unchanged)".into(), cis_ids));
        cells.push(cis_ids(&c.now));
        cells
    });
    table(o, &head, &body);
}

/// One day: its status, its last commit, its services and each of its runs.
fn day(o: &mut String, d: &DayReport) {
    let gone = if d.in_plan { "" } else { " (no longer in the plan)" };
    o.push_str(&format!("### Day {}: {}{gone}\n\n", d.day, esc(&day_line(d))));
    if let (Some(at), Some(run)) = (&d.committed, &d.committed_by) {
        o.push_str(&format!("Last committed {} by run {}.\n\n", when(at), esc(run)));
    }
    o.push_str(&format!("Services: {}.\n\n", esc(&d.services.join(", "))));
    for run in &d.runs {
        o.push_str(&format!(
            "Run {} ({}), {} to {}:\n\n",
            esc(&run.run),
            run.state.as_str(),
            when(&run.started),
            when(&run.ended)
        ));
        run_services(o, run);
        rollbacks(o, run);
    }
}

/// A run's services: each one's outcome, downtime and failure.
fn run_services(o: &mut String, run: &RunHistory) {
    let body = rows(&run.services, |s| {
        vec![
            s.name.clone(),
            s.outcome.as_str().to_string(),
            seconds(s.downtime_seconds),
            s.down.iter().map(down).collect::<Vec<_>>().join("; "),
            s.failure.as_ref().map_or(String::new(), |f| format!("{} failed: {}", f.step, f.error)),
        ]
    });
    table(o, &["service", "outcome", "downtime", "down", "failure"], &body);
    for s in &run.services {
        let Some(f) = s.failure.as_ref().filter(|f| !f.log.is_empty()) else { continue };
        o.push_str(&format!("The end of {}'s log, as the run saved it:\n\n", esc(&s.name)));
        // An indented code block: each line literal, none can end it.
        for line in &f.log {
            o.push_str(&format!("    {}\n", line.replace(['\r', '\t'], " ")));
        }
        o.push('\n');
    }
}

/// A run's rollbacks, when it had any: what, when, the result and why.
fn rollbacks(o: &mut String, run: &RunHistory) {
    if run.rollbacks.is_empty() {
        return;
    }
    let body = rows(&run.rollbacks, |b| {
        vec![
            b.services.join(", "),
            when(&b.started),
            b.ended.as_deref().map_or("-".into(), when),
            if b.ok { "restored".into() } else { "incomplete".into() },
            b.why.clone(),
        ]
    });
    table(o, &["rolled back", "started", "ended", "result", "why"], &body);
}

/// The exceptions: each with its reason, its controls in place or missing, its uids.
fn exceptions(o: &mut String, r: &Report) {
    o.push_str("## Exceptions\n\n");
    if r.exceptions.is_empty() {
        o.push_str("None: the plan keeps no container on root.\n\n");
        return;
    }
    let body = rows(&r.exceptions, |e| {
        let controls: Vec<String> = e
            .controls
            .iter()
            .map(|c| format!("{} {}", c.control, if c.in_place { "in place" } else { "MISSING" }))
            .collect();
        vec![
            e.name.clone(),
            e.day.to_string(),
            e.reason.clone(),
            if controls.is_empty() { "none planned".into() } else { controls.join(", ") },
            if e.present { uids(Some(&e.process_uids)) } else { "not on the daemon".into() },
        ]
    });
    table(o, &["exception", "day", "reason", "controls", "process uids"], &body);
}

/// Verify's verdict for every committed day, and each of its services'.
fn verify(o: &mut String, r: &Report) {
    o.push_str(&format!("## Verify: {}\n\n", esc(&verdict(&r.verify))));
    for d in &r.verify.days {
        o.push_str(&format!("### Day {}: {}\n\n", d.day, day_verdict(d.ok)));
        if d.ok.is_none() {
            continue;
        }
        let body = rows(&d.services, |v| {
            vec![v.name.clone(), if v.ok { "ok".into() } else { "FAIL".into() }, v.problems.join("; ")]
        });
        table(o, &["service", "verdict", "problems"], &body);
    }
}
