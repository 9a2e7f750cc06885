//! The report as one self-contained HTML page: inline CSS and SVG, no script, nothing
//! fetched at view time; it prints on A4 or Letter with every section whole. Cells carry
//! `data-` attributes naming what they hold, so a program can read the page too.

use super::{
    FIELDS, Fact, cis_cell, cis_ids, day_line, day_verdict, down, provenance, row, run_end, seconds, standing, uids,
    verdict, when,
};
use crate::engine::findings::CIS_EDITION;
use crate::engine::report::history::{Ended, Failure, RunHistory, parse_ts};
use crate::engine::report::{ContainerReport, DayReport, ExceptionReport, Report, VerifyReport};

/// Text made safe for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The page's stylesheet, inline.
pub(super) const STYLE: &str = r#"
:root { --ok: #2e7d32; --warn: #b26a00; --bad: #c62828; --muted: #5f6368; --line: #d0d4d9; }
* { box-sizing: border-box; }
body { font: 13px/1.45 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328; margin: 24px auto; max-width: 1180px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; border-bottom: 2px solid #1f2328; padding-bottom: 3px; margin: 28px 0 10px; }
h3 { font-size: 14px; margin: 18px 0 6px; }
section.provenance { break-inside: avoid; }
section.provenance th { width: 13em; }
section.provenance td { overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.chg { font-weight: 600; }
.good { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); font-weight: 600; }
.cards { display: flex; gap: 10px; flex-wrap: wrap; margin: 8px 0 4px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 120px; }
.card b { display: block; font-size: 20px; }
.card span { color: var(--muted); }
ol.timeline { list-style: none; padding: 0 0 0 14px; border-left: 3px solid var(--line); margin: 8px 0 14px; }
ol.timeline li { margin: 0 0 6px; position: relative; }
ol.timeline li::before { content: ""; position: absolute; left: -21px; top: 5px; width: 11px; height: 11px; border-radius: 50%; background: #1f2328; }
ol.timeline li.rollback::before { background: var(--warn); }
ol.timeline li.committed::before { background: var(--ok); }
ol.timeline time { color: var(--muted); font-variant-numeric: tabular-nums; margin-right: 6px; }
svg.gantt { width: 100%; height: auto; margin: 2px 0 8px; }
svg.gantt text { font: 11px "DejaVu Sans", sans-serif; fill: #1f2328; }
svg.gantt .axis { fill: var(--muted); }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 10px; margin-right: 4px; vertical-align: -1px; }
section.day { break-inside: avoid; }
table.wide th, table.wide td { font-size: 11.5px; padding: 3px 4px; overflow-wrap: anywhere; }
td ul { margin: 0; padding-left: 16px; }
.nw { white-space: nowrap; }
@media print {
  body { margin: 0; max-width: none; font-size: 10px; }
  h2 { break-after: avoid; }
  table, svg, ol.timeline li { break-inside: avoid; }
  th { background: #eee !important; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  svg rect { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

fn color(e: Ended) -> &'static str {
    match e {
        Ended::Healthy => "#2e7d32",
        Ended::Restored => "#b26a00",
        Ended::Open => "#c62828",
    }
}

/// A run's services on a time axis from its first to its last record: one bar per stretch a
/// service was down, coloured by what ended it.
fn gantt(run: &RunHistory) -> String {
    let (Some(start), Some(end)) = (parse_ts(&run.started), parse_ts(&run.ended)) else {
        return String::new();
    };
    let span = ((end - start).whole_milliseconds() as f64).max(1.0);
    let (left, width, row_h) = (190.0, 750.0, 20.0);
    let x = |ts: &str| {
        parse_ts(ts)
            .map_or(left + width, |t| left + width * ((t - start).whole_milliseconds() as f64 / span).clamp(0.0, 1.0))
    };
    let height = 24.0 + row_h * run.services.len() as f64;
    let mut s = format!(
        r#"<svg class="gantt" viewBox="0 0 960 {height}" role="img" aria-label="downtime of each service of run {}">"#,
        esc(&run.run)
    );
    for (i, svc) in run.services.iter().enumerate() {
        let y = 4.0 + row_h * i as f64;
        s.push_str(&format!(r#"<text x="0" y="{}">{}</text>"#, y + 13.0, esc(&svc.name)));
        s.push_str(&format!(
            r##"<rect x="{left}" y="{}" width="{width}" height="1" fill="#d0d4d9"/>"##,
            y + row_h / 2.0
        ));
        for d in &svc.down {
            let x0 = x(&d.from);
            let x1 = d.to.as_deref().map_or(left + width, x).max(x0 + 2.0);
            s.push_str(&format!(
                r#"<rect x="{x0:.1}" y="{}" width="{:.1}" height="{}" rx="2" fill="{}"><title>{}: {}</title></rect>"#,
                y + 3.0,
                x1 - x0,
                row_h - 6.0,
                color(d.ended_by),
                esc(&svc.name),
                esc(&down(d))
            ));
        }
    }
    let axis_y = height - 4.0;
    s.push_str(&format!(r#"<text class="axis" x="{left}" y="{axis_y}">{}</text>"#, esc(&when(&run.started))));
    s.push_str(&format!(
        r#"<text class="axis" x="{}" y="{axis_y}" text-anchor="end">{} ({})</text>"#,
        left + width,
        esc(&when(&run.ended)),
        seconds(span / 1000.0)
    ));
    s.push_str("</svg>");
    s
}

/// Every run's start and end and every rollback, in the order they happened.
fn timeline(r: &Report) -> String {
    let mut events: Vec<(String, &'static str, String)> = Vec::new();
    for d in &r.days {
        for run in &d.runs {
            events.push((
                run.started.clone(),
                "",
                format!("Day {}: run <code>{}</code> started", d.day, esc(&run.run)),
            ));
            for b in &run.rollbacks {
                events.push((
                    b.started.clone(),
                    "rollback",
                    format!("Rollback of {}: {}", esc(&b.services.join(", ")), esc(&b.why)),
                ));
            }
            let class = if run.state == crate::state::RunState::Committed { "committed" } else { "" };
            events.push((
                run.ended.clone(),
                class,
                format!("Day {}: run <code>{}</code> {}", d.day, esc(&run.run), esc(&run_end(run))),
            ));
        }
    }
    events.sort_by(|a, b| a.0.cmp(&b.0));
    if events.is_empty() {
        return "<p>No run of this plan yet.</p>".into();
    }
    let mut s = String::from(r#"<ol class="timeline">"#);
    for (ts, class, text) in events {
        s.push_str(&format!(
            r#"<li class="{class}"><time datetime="{}">{}</time>{text}</li>"#,
            esc(&ts),
            esc(&when(&ts))
        ));
    }
    s.push_str("</ol>");
    s
}

fn container_row(c: &ContainerReport) -> String {
    let mut s = format!(r#"<tr data-container="{}">"#, esc(&c.name));
    s.push_str(&format!(r#"<td data-field="name"><b>{}</b><br><small>{}</small></td>"#, esc(&c.name), esc(&c.image)));
    s.push_str(&format!(r#"<td data-field="standing" class="nw">{}</td>"#, standing(c.standing)));
    s.push_str(&format!(r#"<td data-field="day" class="num nw">{}</td>"#, c.day.map_or("-".into(), |d| d.to_string())));
    for (field, value) in FIELDS.iter().zip(row(c)) {
        let class = if value.contains(" → ") { r#" class="chg""# } else { "" };
        s.push_str(&format!(r#"<td data-field="{}"{class}>{}</td>"#, esc(field), esc(&value)));
    }
    let before = c.before.as_ref().map_or("(unchanged)".into(), cis_ids);
    s.push_str(&format!(r#"<td data-field="cis-before">{}</td>"#, esc(&before)));
    s.push_str(&format!(r#"<td data-field="cis-now">{}</td>"#, esc(&cis_ids(&c.now))));
    s.push_str("</tr>");
    s
}

/// The whole report as one HTML page: each section in turn.
pub fn render(r: &Report) -> String {
    let mut o = head(r);
    o.push_str(&summary(r));
    o.push_str("<h2>Timeline</h2>");
    o.push_str(&timeline(r));
    o.push_str(&cis(r));
    o.push_str(&containers(r));
    o.push_str(&days(r));
    o.push_str(&exceptions(r));
    o.push_str(&verify(r));
    o.push_str("</body></html>\n");
    o
}

/// The page's head and title (the rollout), then where the report comes from.
fn head(r: &Report) -> String {
    let mut o = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    o.push_str(&format!("<title>unroot report: {}</title><style>{STYLE}</style></head><body>\n", esc(&r.rollout)));
    o.push_str(&format!("<h1>unroot report: {}</h1>", esc(&r.rollout)));
    o.push_str(r#"<section class="provenance"><h2>Provenance</h2><table>"#);
    for f in provenance(r) {
        o.push_str(&format!(r#"<tr><th scope="row">{}</th>{}</tr>"#, esc(&f.label), fact_cell(&f)));
    }
    o.push_str("</table></section>");
    o
}

/// The value cell of a line of the provenance block; a run's also names the run, its day
/// and, when its journal recorded them, who ran it and where.
fn fact_cell(f: &Fact<'_>) -> String {
    let mut attrs = format!(r#"data-field="{}""#, f.field);
    if let Some(run) = f.run {
        attrs.push_str(&format!(r#" data-run="{}" data-day="{}""#, esc(&run.run), run.day));
        for (name, value) in [("user", &run.user), ("host", &run.host)] {
            if let Some(v) = value {
                attrs.push_str(&format!(r#" data-{name}="{}""#, esc(v)));
            }
        }
    }
    format!("<td {attrs}>{}</td>", esc(&f.value))
}

/// The class verify's verdict is shown in: passed, failed, or not run.
fn verify_class(v: &VerifyReport) -> &'static str {
    match v.ok {
        Some(true) => "good",
        Some(false) => "bad",
        None => "warn",
    }
}

/// The summary: one card per count, and verify's verdict.
fn summary(r: &Report) -> String {
    let s = &r.summary;
    let mut o = String::from(r#"<h2>Summary</h2><div class="cards">"#);
    for (field, value, label) in [
        ("containers", s.containers.to_string(), "containers"),
        ("root-before", s.root_before.to_string(), "root before"),
        ("root-now", s.root_now.to_string(), "root now"),
        ("migrated", s.migrated.to_string(), "migrated"),
        ("exceptions", s.exceptions.to_string(), "exceptions"),
        ("rollbacks", s.rollbacks.to_string(), "rollbacks"),
        ("downtime", seconds(s.downtime_seconds), "downtime, all services"),
    ] {
        o.push_str(&format!(
            r#"<div class="card" data-field="{field}"><b>{}</b><span>{label}</span></div>"#,
            esc(&value)
        ));
    }
    o.push_str(&format!(
        r#"<div class="card" data-field="verify"><b class="{}">{}</b><span>verify</span></div></div>"#,
        verify_class(&r.verify),
        esc(&verdict(&r.verify))
    ));
    o
}

/// The CIS table: how many containers have each finding, before and now.
fn cis(r: &Report) -> String {
    let mut o = format!(
        "<h2>{CIS_EDITION}</h2><p>Containers each recommendation flags, before unroot and now; a container counts once per id, and one a documented exception accepts counts apart. The audit procedure of each id is docker-bench-security's.</p>",
    );
    o.push_str(
        "<table><tr><th>CIS</th><th>rules</th><th>recommendation</th><th>before</th><th>now</th><th>accepted now</th></tr>",
    );
    for c in &r.cis {
        let class = if c.now == 0 { "good" } else { "bad" };
        o.push_str(&format!(
            r#"<tr data-cis="{}"><td data-field="cis">{}</td><td>{}</td><td>{}</td><td class="num" data-field="before">{}</td><td class="num {class}" data-field="now">{}</td><td class="num" data-field="accepted-now">{}</td></tr>"#,
            cis_cell(c.cis),
            cis_cell(c.cis),
            c.rules.join(", "),
            esc(c.title),
            c.before,
            c.now,
            c.accepted_now
        ));
    }
    o.push_str("</table>");
    o
}

/// The before → now table: one row per container or service.
fn containers(r: &Report) -> String {
    let mut o = String::from(
        "<h2>Containers, before → now</h2><p>Before is what the first run of this plan saved; a single value did not change.</p>",
    );
    o.push_str(r#"<table class="wide"><tr><th>container</th><th class="nw">standing</th><th class="nw">day</th>"#);
    for f in FIELDS {
        o.push_str(&format!("<th>{}</th>", esc(f)));
    }
    o.push_str("<th>CIS before</th><th>CIS now</th></tr>");
    for c in &r.containers {
        o.push_str(&container_row(c));
    }
    o.push_str("</table>");
    o
}

/// The days: a legend of the charts' colours, then one section per day.
fn days(r: &Report) -> String {
    let mut o = String::from("<h2>Days</h2>");
    o.push_str(r##"<p class="legend"><span><i style="background:#2e7d32"></i>down until healthy</span><span><i style="background:#b26a00"></i>down until restored</span><span><i style="background:#c62828"></i>still down</span></p>"##);
    for d in &r.days {
        o.push_str(&day(d));
    }
    o
}

/// One day: its status, its last commit, its services and each of its runs.
fn day(d: &DayReport) -> String {
    let gone = if d.in_plan { "" } else { " (no longer in the plan)" };
    let mut o =
        format!(r#"<section class="day" data-day="{}"><h3>Day {}: {}{gone}</h3>"#, d.day, d.day, esc(&day_line(d)));
    if let (Some(at), Some(run)) = (&d.committed, &d.committed_by) {
        o.push_str(&format!("<p>Last committed {} by run <code>{}</code>.</p>", esc(&when(at)), esc(run)));
    }
    o.push_str(&format!("<p>Services: {}.</p>", esc(&d.services.join(", "))));
    for run in &d.runs {
        o.push_str(&run_section(run));
    }
    o.push_str("</section>");
    o
}

/// One run of a day: when it ran, its downtime chart, its services and its rollbacks.
fn run_section(run: &RunHistory) -> String {
    let mut o = format!(
        "<p>Run <code>{}</code> ({}), {} to {}:</p>",
        esc(&run.run),
        run.state.as_str(),
        esc(&when(&run.started)),
        esc(&when(&run.ended))
    );
    o.push_str(&gantt(run));
    o.push_str("<table><tr><th>service</th><th>outcome</th><th>downtime</th><th>down</th><th>failure</th></tr>");
    for s in &run.services {
        o.push_str(&format!(
            r#"<tr data-run="{}" data-service="{}"><td>{}</td><td data-field="outcome">{}</td><td class="num" data-field="downtime" data-seconds="{}">{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(&run.run),
            esc(&s.name),
            esc(&s.name),
            s.outcome.as_str(),
            s.downtime_seconds,
            seconds(s.downtime_seconds),
            esc(&s.down.iter().map(down).collect::<Vec<_>>().join("; ")),
            s.failure.as_ref().map_or(String::new(), failure_cell)
        ));
    }
    o.push_str("</table>");
    o.push_str(&rollbacks(run));
    o
}

/// A failure: the step and its error, and the log the run saved, folded.
fn failure_cell(f: &Failure) -> String {
    let mut o = esc(&format!("{} failed: {}", f.step, f.error));
    if !f.log.is_empty() {
        o.push_str(&format!(
            r#"<details data-field="saved-log"><summary>the saved log ({} lines)</summary><pre>{}</pre></details>"#,
            f.log.len(),
            esc(&f.log.join("\n"))
        ));
    }
    o
}

/// A run's rollbacks, when it had any: what, when, the result and why.
fn rollbacks(run: &RunHistory) -> String {
    if run.rollbacks.is_empty() {
        return String::new();
    }
    let mut o =
        String::from("<table><tr><th>rolled back</th><th>started</th><th>ended</th><th>result</th><th>why</th></tr>");
    for b in &run.rollbacks {
        o.push_str(&format!(
            r#"<tr data-rollback="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td data-field="why">{}</td></tr>"#,
            esc(&b.services.join(",")),
            esc(&b.services.join(", ")),
            esc(&when(&b.started)),
            esc(&b.ended.as_deref().map_or("-".into(), when)),
            if b.ok { "restored" } else { "incomplete" },
            esc(&b.why)
        ));
    }
    o.push_str("</table>");
    o
}

/// The exceptions: each with its reason, its controls in place or missing, its uids.
fn exceptions(r: &Report) -> String {
    let mut o = String::from("<h2>Exceptions</h2>");
    if r.exceptions.is_empty() {
        o.push_str("<p>None: the plan keeps no container on root.</p>");
        return o;
    }
    o.push_str("<table><tr><th>exception</th><th>day</th><th>reason</th><th>controls</th><th>process uids</th></tr>");
    for e in &r.exceptions {
        o.push_str(&exception_row(e));
    }
    o.push_str("</table>");
    o
}

/// One exception's row.
fn exception_row(e: &ExceptionReport) -> String {
    let controls: String = e
        .controls
        .iter()
        .map(|c| {
            let (class, word) = if c.in_place { ("good", "in place") } else { ("bad", "MISSING") };
            format!(
                r#"<li data-control="{}" data-in-place="{}">{} <span class="{class}">{word}</span></li>"#,
                esc(&c.control),
                c.in_place,
                esc(&c.control)
            )
        })
        .collect();
    format!(
        r#"<tr data-exception="{}"><td>{}</td><td class="num">{}</td><td data-field="reason">{}</td><td><ul>{controls}</ul></td><td data-field="process-uids">{}</td></tr>"#,
        esc(&e.name),
        esc(&e.name),
        e.day,
        esc(&e.reason),
        esc(&if e.present { uids(Some(&e.process_uids)) } else { "not on the daemon".into() })
    )
}

/// Verify's verdict for every committed day, and each of its services'.
fn verify(r: &Report) -> String {
    let mut o =
        format!(r#"<h2>Verify: <span class="{}">{}</span></h2>"#, verify_class(&r.verify), esc(&verdict(&r.verify)));
    for d in &r.verify.days {
        let class = match d.ok {
            Some(true) => "good",
            Some(false) => "bad",
            None => "warn",
        };
        o.push_str(&format!(
            r#"<h3 data-verify-day="{}">Day {}: <span class="{class}">{}</span></h3>"#,
            d.day,
            d.day,
            day_verdict(d.ok)
        ));
        if d.ok.is_some() {
            o.push_str(&verify_table(&d.services));
        }
    }
    o
}

/// The verdicts of one day's services.
fn verify_table(verdicts: &[crate::engine::verify::Verdict]) -> String {
    let mut o = String::from("<table><tr><th>service</th><th>verdict</th><th>problems</th></tr>");
    for v in verdicts {
        o.push_str(&format!(
            r#"<tr data-verify="{}"><td>{}</td><td data-field="verdict" class="{}">{}</td><td>{}</td></tr>"#,
            esc(&v.name),
            esc(&v.name),
            if v.ok { "good" } else { "bad" },
            if v.ok { "ok" } else { "FAIL" },
            esc(&v.problems.join("; "))
        ));
    }
    o.push_str("</table>");
    o
}
