//! `unroot report`: the report rendered as Markdown or as one self-contained HTML page (JSON
//! is the report itself, serialized). Both renderers take every fact from
//! [`crate::engine::report::Report`] and word the cells the same way, through the helpers
//! here, so a reader (or a test) finds the same facts in each.

pub mod html;
pub mod md;

use crate::engine::audit::{Class, Posture};
use crate::engine::report::history::{Down, Ended};
use crate::engine::report::{ContainerReport, DayStatus, Report, RunRead, Side, Standing};

/// The columns of the before/now table, in order.
pub const FIELDS: [&str; 9] = [
    "class",
    "user",
    "process uids",
    "cap_add",
    "cap_drop",
    "read-only root",
    "no-new-privileges",
    "privileged",
    "docker.sock",
];

fn yes_no(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

fn list(v: &[String]) -> String {
    if v.is_empty() { "-".into() } else { v.join(",") }
}

/// A configured user as people read it (`(image default)` for an empty one).
pub fn user(u: &str) -> String {
    if u.is_empty() { "(image default)".into() } else { u.to_string() }
}

/// Process uids, `-` for none running, `not recorded` when a run did not record them.
pub fn uids(u: Option<&[u32]>) -> String {
    match u {
        None => "not recorded".into(),
        Some([]) => "-".into(),
        Some(u) => u.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
    }
}

pub fn class(c: Class) -> &'static str {
    c.as_str()
}

/// One side's value of each of [`FIELDS`].
pub fn values(side: &Side) -> [String; 9] {
    let p: &Posture = &side.posture;
    [
        class(side.class).to_string(),
        user(&p.configured_user),
        uids(side.process_uids.as_deref()),
        list(&p.cap_add),
        list(&p.cap_drop),
        yes_no(p.read_only),
        yes_no(p.no_new_privileges),
        yes_no(p.privileged),
        yes_no(p.docker_sock),
    ]
}

/// A cell of the before/now table: `before → now` when they differ, else the one value.
pub fn cell(before: Option<&str>, now: &str) -> String {
    match before {
        Some(b) if b != now => format!("{b} → {now}"),
        _ => now.to_string(),
    }
}

/// The cells of a container's row of the before/now table.
pub fn row(c: &ContainerReport) -> Vec<String> {
    let now = values(&c.now);
    let before = c.before.as_ref().map(values);
    (0..FIELDS.len()).map(|i| cell(before.as_ref().map(|b| b[i].as_str()), &now[i])).collect()
}

/// A CIS id as a cell shows it: `-` for unroot's own rules, which have none.
pub fn cis_cell(id: Option<&str>) -> &str {
    id.unwrap_or("-")
}

/// The CIS ids of a side's findings, e.g. `4.1, 5.13` (accepted ones marked; unroot's own
/// rules, which have none, left out).
pub fn cis_ids(side: &Side) -> String {
    let mut ids: Vec<String> = Vec::new();
    for f in &side.findings {
        let Some(cis) = f.cis else { continue };
        let id = if f.accepted.is_some() { format!("{cis} (accepted)") } else { cis.to_string() };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() { "none".into() } else { ids.join(", ") }
}

pub fn standing(s: Standing) -> &'static str {
    match s {
        Standing::NotPlanned => "not in the plan",
        Standing::Pending => "pending",
        Standing::Migrated => "migrated",
        Standing::Original => "on its original",
        Standing::Exception => "exception",
        Standing::Open => "in an open run",
    }
}

pub fn day_status(s: DayStatus) -> &'static str {
    match s {
        DayStatus::Applied => "applied",
        DayStatus::PartlyApplied => "partly applied",
        DayStatus::NotApplied => "not applied",
    }
}

/// Seconds as people read them: `4.5 s`, `2 min 05 s`.
pub fn seconds(s: f64) -> String {
    if s < 60.0 {
        let t = format!("{s:.1}");
        format!("{} s", t.trim_end_matches(".0"))
    } else {
        let whole = s.round() as u64;
        format!("{} min {:02} s", whole / 60, whole % 60)
    }
}

/// A downtime stretch: `4.5 s (healthy)`, `open since T`.
pub fn down(d: &Down) -> String {
    match (d.seconds, d.ended_by) {
        (Some(s), Ended::Healthy) => format!("{} until healthy", seconds(s)),
        (Some(s), Ended::Restored) => format!("{} until restored", seconds(s)),
        _ => format!("down since {}", when(&d.from)),
    }
}

/// A journal time as people read it: `2026-11-27 10:01:00 UTC`.
pub fn when(ts: &str) -> String {
    match crate::engine::report::history::parse_ts(ts) {
        Some(t) => {
            let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
            t.to_offset(time::UtcOffset::UTC).format(&f).unwrap_or_else(|_| ts.to_string())
        }
        None => ts.to_string(),
    }
}

/// Verify's verdict in words: each committed day passed or failed.
pub fn verdict(v: &crate::engine::report::VerifyReport) -> String {
    if v.days.is_empty() {
        return "not run: no day is applied yet".into();
    }
    let each: Vec<String> = v.days.iter().map(|d| format!("day {} {}", d.day, day_verdict(d.ok))).collect();
    each.join(", ")
}

/// One day's verdict in words.
pub fn day_verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "passed",
        Some(false) => "failed",
        None => "not checked (no longer in the plan)",
    }
}

/// What the report covers: the filters, when given, and the plan's services.
pub fn scope(filters: &[String]) -> String {
    if filters.is_empty() {
        return "every container and Swarm service on the daemon".into();
    }
    format!(
        "the containers and Swarm services that match {} (as `docker ps --filter` takes them), and every one the plan names",
        filters.join(" and ")
    )
}

/// How a run ended, for the timeline: its state, and the services a committed run left on
/// their original (`committed; bad restored to its original`).
pub fn run_end(run: &crate::engine::report::history::RunHistory) -> String {
    use crate::engine::report::history::Outcome;
    let restored: Vec<&str> =
        run.services.iter().filter(|s| s.touched && s.outcome == Outcome::Original).map(|s| s.name.as_str()).collect();
    match (run.state, restored.as_slice()) {
        (crate::state::RunState::Committed, [_, ..]) => {
            format!("committed; {} restored to the original (the day stays open)", restored.join(", "))
        }
        (state, _) => state.as_str().to_string(),
    }
}

/// A day's status, with the services that keep a partly applied one open.
pub fn day_line(d: &crate::engine::report::DayReport) -> String {
    match d.open.as_slice() {
        [] => day_status(d.status).to_string(),
        [one] => format!("{}: {one} keeps it open", day_status(d.status)),
        many => format!("{}: {} keep it open", day_status(d.status), many.join(", ")),
    }
}

/// One line of the provenance block: what it is, the `data-field` of its value in the HTML
/// page, the value as worded, and the run it is about (on a run's line).
pub struct Fact<'r> {
    pub label: String,
    pub field: &'static str,
    pub value: String,
    pub run: Option<&'r RunRead>,
}

/// The provenance block, line by line: the daemon, the host, unroot, the plan file, each
/// run read with who ran it and where, when the report was made, the benchmark edition.
pub fn provenance(r: &Report) -> Vec<Fact<'_>> {
    let p = &r.provenance;
    let fact = |label: &str, field, value: &str| Fact {
        label: label.into(),
        field,
        value: if value.is_empty() { "-".into() } else { value.to_string() },
        run: None,
    };
    let mut facts = vec![
        fact("daemon ID", "daemon-id", &p.daemon.id),
        fact("daemon name", "daemon-name", &p.daemon.name),
        fact("Engine version", "engine-version", &p.daemon.engine_version),
        fact("API version", "api-version", &p.daemon.api_version),
        fact("endpoint", "endpoint", &p.daemon.endpoint),
        fact("host unroot ran on", "host", &p.host),
        fact("unroot version", "unroot-version", &p.unroot_version),
        fact("plan", "plan", &p.plan.path),
        fact("plan, absolute path", "plan-absolute-path", &p.plan.absolute_path),
        fact("plan sha256", "plan-sha256", &p.plan.sha256),
    ];
    if p.runs.is_empty() {
        facts.push(fact("runs read", "runs", "none"));
    }
    for run in &p.runs {
        let recorded = |v: &Option<String>| v.clone().unwrap_or_else(|| "not recorded".into());
        let value = format!("day {}, user {}, host {}", run.day, recorded(&run.user), recorded(&run.host));
        facts.push(Fact { label: format!("run {}", run.run), field: "run", value, run: Some(run) });
    }
    facts.push(fact("report made", "generated", &when(&r.generated)));
    facts.push(fact("benchmark", "benchmark", p.benchmark));
    facts.push(fact("containers listed", "scope", &scope(&r.filters)));
    facts
}

#[cfg(test)]
mod golden_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::report::{
        ContainerReport, Daemon, DayVerify, ExceptionReport, Kind, PlanFile, Provenance, Report, Side, Standing,
        Summary, VerifyReport, history,
    };

    /// A provenance whose every text is hostile too, with one run whose header records
    /// who ran it only in part.
    fn hostile_provenance() -> Provenance {
        Provenance {
            daemon: Daemon {
                id: String::new(),
                name: "d|<b>".into(),
                engine_version: "27.3.1".into(),
                api_version: "1.47".into(),
                endpoint: "ssh://op@h`x`".into(),
            },
            host: "h*1*".into(),
            unroot_version: "0.1.0".into(),
            plan: PlanFile { path: "p_`x`.toml".into(), absolute_path: "/r/p_`x`.toml".into(), sha256: "ab12".into() },
            runs: vec![RunRead {
                run: "day1-x".into(),
                day: 1,
                user: Some("root (sudo from <m|e>)".into()),
                host: None,
            }],
            benchmark: crate::engine::findings::CIS_EDITION,
        }
    }

    /// A report whose every text is hostile to Markdown and HTML.
    pub(super) fn hostile() -> Report {
        let side = |user: &str| Side {
            class: Class::Root,
            posture: Posture { configured_user: user.into(), ..Posture::default() },
            process_uids: Some(vec![0]),
            findings: Vec::new(),
        };
        let run = history::RunHistory {
            run: "day1-x".into(),
            day: 1,
            state: crate::state::RunState::RolledBack,
            started: "2026-11-27T10:00:00Z".into(),
            ended: "2026-11-27T10:00:09Z".into(),
            services: Vec::new(),
            rollbacks: vec![history::Rollback {
                services: vec!["a|b".into()],
                started: "2026-11-27T10:00:01Z".into(),
                ended: None,
                ok: false,
                cause: None,
                why: "log: <redacted> | *bold* `code` <script>x</script>".into(),
            }],
        };
        Report {
            rollout: "r<&>".into(),
            plan: "p_`x`.toml".into(),
            generated: "2026-11-27T10:00:10Z".into(),
            filters: vec!["name=a|b<".into()],
            provenance: hostile_provenance(),
            summary: Summary::default(),
            cis: Vec::new(),
            containers: vec![ContainerReport {
                name: "a|b".into(),
                kind: Kind::Container,
                image: "i<mg>".into(),
                day: Some(1),
                standing: Standing::Open,
                before: Some(side("")),
                before_run: Some("day1-x".into()),
                now: side("<x>"),
            }],
            days: vec![crate::engine::report::DayReport {
                day: 1,
                in_plan: true,
                services: vec!["a|b".into()],
                status: crate::engine::report::DayStatus::NotApplied,
                open: Vec::new(),
                committed: None,
                committed_by: None,
                runs: vec![run],
            }],
            exceptions: vec![ExceptionReport {
                name: "e\"x".into(),
                day: 1,
                reason: "needs </td> & more".into(),
                controls: Vec::new(),
                present: false,
                process_uids: Vec::new(),
            }],
            verify: VerifyReport::default(),
        }
    }

    #[test]
    fn markdown_shows_hostile_text_literally_and_keeps_its_tables_whole() {
        let md = md::render(&hostile());
        assert!(md.contains("log: &lt;redacted&gt; \\| \\*bold\\* \\`code\\` &lt;script&gt;x&lt;/script&gt;"), "{md}");
        assert!(!md.contains("<script>") && !md.contains("<redacted>"));
        let row = md.lines().find(|l| l.starts_with("| a\\|b |")).expect("the container's row");
        assert_eq!(row.matches(" | ").count() + 1, 4 + FIELDS.len() + 2, "one cell per column: {row}");
        assert!(md.contains("# unroot report: r&lt;&amp;&gt;"));
        assert!(md.contains("## Verify: not run: no day is applied yet"));
        assert!(md.contains("name=a\\|b&lt;"), "the filter, literally: {md}");
    }

    #[test]
    fn html_escapes_every_text_and_fetches_nothing() {
        let html = html::render(&hostile());
        for raw in ["<script>", "</td> &", "<x>", "i<mg>", "r<&>", "e\"x"] {
            assert!(!html.contains(raw), "{raw} unescaped");
        }
        assert!(html.contains("needs &lt;/td&gt; &amp; more"));
        assert!(html.contains(r#"data-exception="e&quot;x""#));
        for remote in ["http://", "https://", "<script", "<link", "@import", "url("] {
            assert!(!html.contains(remote), "{remote}: the page must open offline");
        }
        assert!(html.contains(r#"<td data-field="user" class="chg">(image default) → &lt;x&gt;</td>"#), "{html}");
    }

    #[test]
    fn the_provenance_comes_right_after_the_title_in_both() {
        let r = hostile();
        let md = md::render(&r);
        let title =
            "# unroot report: r&lt;&amp;&gt;\n\n## Provenance\n\n| what | value |\n|---|---|\n| daemon ID | - |\n";
        assert!(md.starts_with(title), "{md}");
        for line in [
            "| daemon name | d\\|&lt;b&gt; |",
            "| endpoint | ssh://op@h\\`x\\` |",
            "| plan sha256 | ab12 |",
            "| run day1-x | day 1, user root (sudo from &lt;m\\|e&gt;), host not recorded |",
            "| report made | 2026-11-27 10:00:10 UTC |",
            "| benchmark | CIS Docker Benchmark v1.6.0 |",
        ] {
            assert!(md.lines().any(|l| l == line), "{line} in {md}");
        }
        let html = html::render(&r);
        let after_title = html.split("</h1>").nth(1).unwrap();
        assert!(after_title.starts_with(r#"<section class="provenance"><h2>Provenance</h2><table>"#), "{html}");
        let run = r#"<td data-field="run" data-run="day1-x" data-day="1" data-user="root (sudo from &lt;m|e&gt;)">day 1, user root (sudo from &lt;m|e&gt;), host not recorded</td>"#;
        assert!(html.contains(run), "{html}");
        assert!(html.contains(r#"<th scope="row">daemon name</th><td data-field="daemon-name">d|&lt;b&gt;</td>"#));
        // The same lines in both, in the same order.
        let facts = provenance(&r);
        assert_eq!(
            facts.len(),
            md.split("## Summary").next().unwrap().lines().filter(|l| l.starts_with("| ")).count() - 1
        );
        assert_eq!(facts.len(), after_title.split("</section>").next().unwrap().matches("<tr>").count());
    }

    #[test]
    fn cells_and_numbers_read_the_same_in_both() {
        assert_eq!(cell(Some("0"), "1000"), "0 → 1000");
        assert_eq!(cell(Some("no"), "no"), "no");
        assert_eq!(cell(None, "x"), "x");
        assert_eq!((seconds(4.5), seconds(2.0), seconds(125.4)), ("4.5 s".into(), "2 s".into(), "2 min 05 s".into()));
        assert_eq!(uids(None), "not recorded");
        assert_eq!(uids(Some(&[])), "-");
        let day = |day, ok| DayVerify { day, ok, services: Vec::new() };
        let v = VerifyReport { days: vec![day(1, Some(true)), day(2, Some(false)), day(3, None)], ok: Some(false) };
        assert_eq!(verdict(&v), "day 1 passed, day 2 failed, day 3 not checked (no longer in the plan)");
        assert_eq!(verdict(&VerifyReport::default()), "not run: no day is applied yet");
    }
}
