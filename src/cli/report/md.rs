//! The report as Markdown (GitHub-flavoured tables): for a pull request, a wiki, a ticket.

use super::{FIELDS, cis_ids, day_status, down, row, seconds, standing, uids, verdict, when};
use crate::engine::report::Report;

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

/// The whole report as one Markdown document.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    o.push_str(&format!("# unroot report: {}\n\n", esc(&r.rollout)));
    o.push_str(&format!("Plan {}, generated {}.\n\n", esc(&r.plan), when(&r.generated)));

    o.push_str("## Summary\n\n");
    let s = &r.summary;
    table(
        &mut o,
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

    o.push_str("## CIS Docker Benchmark\n\n");
    o.push_str("Containers with each finding, before unroot and now (a documented exception accepts root).\n\n");
    let cis: Vec<Vec<String>> = r
        .cis
        .iter()
        .map(|c| {
            vec![
                c.cis.to_string(),
                c.rule.to_string(),
                c.title.to_string(),
                c.before.to_string(),
                c.now.to_string(),
                c.accepted_now.to_string(),
            ]
        })
        .collect();
    table(&mut o, &["CIS", "rule", "finding", "before", "now", "accepted now"], &cis);

    o.push_str("## Containers, before → now\n\n");
    o.push_str("Before is what the first run of this plan saved; a single value did not change.\n\n");
    let mut head = vec!["container", "kind", "day", "standing"];
    head.extend(FIELDS);
    head.extend(["CIS before", "CIS now"]);
    let rows: Vec<Vec<String>> = r
        .containers
        .iter()
        .map(|c| {
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
        })
        .collect();
    table(&mut o, &head, &rows);

    o.push_str("## Days\n\n");
    for d in &r.days {
        let gone = if d.in_plan { "" } else { " (no longer in the plan)" };
        o.push_str(&format!("### Day {}: {}{gone}\n\n", d.day, day_status(d.status)));
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
            let rows: Vec<Vec<String>> = run
                .services
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.outcome.as_str().to_string(),
                        seconds(s.downtime_seconds),
                        s.down.iter().map(down).collect::<Vec<_>>().join("; "),
                        s.failure.as_ref().map_or(String::new(), |f| format!("{} failed: {}", f.step, f.error)),
                    ]
                })
                .collect();
            table(&mut o, &["service", "outcome", "downtime", "down", "failure"], &rows);
            if !run.rollbacks.is_empty() {
                let rows: Vec<Vec<String>> = run
                    .rollbacks
                    .iter()
                    .map(|b| {
                        vec![
                            b.services.join(", "),
                            when(&b.started),
                            b.ended.as_deref().map_or("-".into(), when),
                            if b.ok { "restored".into() } else { "incomplete".into() },
                            b.why.clone(),
                        ]
                    })
                    .collect();
                table(&mut o, &["rolled back", "started", "ended", "result", "why"], &rows);
            }
        }
    }

    o.push_str("## Exceptions\n\n");
    if r.exceptions.is_empty() {
        o.push_str("None: the plan keeps no container on root.\n\n");
    } else {
        let rows: Vec<Vec<String>> = r
            .exceptions
            .iter()
            .map(|e| {
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
            })
            .collect();
        table(&mut o, &["exception", "day", "reason", "controls", "process uids"], &rows);
    }

    o.push_str(&format!("## Verify: {}\n\n", esc(&verdict(&r.verify))));
    if !r.verify.services.is_empty() {
        let rows: Vec<Vec<String>> = r
            .verify
            .services
            .iter()
            .map(|v| vec![v.name.clone(), if v.ok { "ok".into() } else { "FAIL".into() }, v.problems.join("; ")])
            .collect();
        table(&mut o, &["service", "verdict", "problems"], &rows);
    }
    o
}
