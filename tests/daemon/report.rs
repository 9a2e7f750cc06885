//! `unroot report` after days applied on a small stack of real containers: the official-like
//! redis (root that drops to 999 in its entrypoint), a busybox service that runs as root, one
//! that cannot run as its planned user (rolled back), and a documented exception with its
//! controls. The JSON lists every container before and now, each service's downtime as the
//! journal's timestamps give it, the rollback and why, the exception and its controls, and
//! verify's verdict; the Markdown and the HTML carry the same facts; no environment value
//! appears anywhere. A screenshot of the HTML page is taken with headless Chromium.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::official::{run_redis, wait_for_redis_pong};
use crate::common::{TestEnv, docker, image, unroot_in};

const SECRET: &str = "report-secret-5d1c9b77";
const REDIS_SECRET: &str = "redis-secret-a4e8f210";

fn volume(env: &TestEnv, short: &str) -> String {
    let name = env.name(short);
    docker(&["volume", "create", "--label", &env.label(), &name]);
    name
}

/// Seconds between two RFC 3339 times of the journal (`YYYY-MM-DDTHH:MM:SS[.fff]Z`), read
/// here independently of unroot.
fn secs(ts: &str) -> f64 {
    let t = ts.trim_end_matches('Z');
    let (date, time) = t.split_once('T').unwrap();
    let d: Vec<f64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let h: Vec<f64> = time.split(':').map(|x| x.parse().unwrap()).collect();
    // Days since an epoch are enough for differences within a month.
    ((d[0] * 372.0 + d[1] * 31.0 + d[2]) * 86400.0) + h[0] * 3600.0 + h[1] * 60.0 + h[2]
}

/// The downtime of `service` in a run's journal: its stop step's start to its health gate's
/// (or its restore's) successful end.
fn journal_downtime(run_dir: &Path, service: &str) -> f64 {
    let text = std::fs::read_to_string(run_dir.join("journal.jsonl")).unwrap();
    let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let of = |step: &str, ok: Option<bool>| {
        records
            .iter()
            .find(|r| r["service"] == service && r["step"] == step && r.get("ok").and_then(Value::as_bool) == ok)
            .map(|r| r["ts"].as_str().unwrap().to_string())
    };
    let from = of("stop", None).expect("a stop step");
    let to = of("health", Some(true)).or_else(|| of("restore", Some(true))).expect("a gate or a restore");
    secs(&to) - secs(&from)
}

/// `unroot report` in `format`, exit 0.
fn report(dir: &Path, env: &TestEnv, format: &str) -> String {
    let filter = format!("label={}", env.label());
    let r = unroot_in(dir, &["report", "plan.toml", "--state-dir", "state", "--format", format, "--filter", &filter]);
    assert_eq!(r.code, Some(0), "report --format {format}: {}", r.stderr);
    r.stdout
}

/// The cells of a Markdown table line as a reader sees them: split on the `|` that are not
/// escaped, backslash escapes and `&lt;`-style entities undone.
fn md_cells(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut chars = line.trim().trim_start_matches('|').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cells.last_mut().unwrap().extend(chars.next()),
            '|' => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    if cells.last().is_some_and(|c| c.trim().is_empty()) {
        cells.pop();
    }
    cells.iter().map(|c| html_unescape(c.trim())).collect()
}

/// The cells of the Markdown table row whose first cell is `first`.
fn md_row(md: &str, first: &str) -> Vec<String> {
    md.lines()
        .filter(|l| l.starts_with("| "))
        .map(md_cells)
        .find(|cells| cells[0] == first)
        .unwrap_or_else(|| panic!("no Markdown row for {first}:\n{md}"))
}

/// The header cells of the Markdown table the first row of `first` is in.
fn md_header(md: &str, first: &str) -> Vec<String> {
    let lines: Vec<&str> = md.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("| ") && md_cells(l)[0] == first).unwrap();
    let rule = lines[..at].iter().rposition(|l| l.starts_with("|---")).unwrap();
    md_cells(lines[rule - 1])
}

/// The cell of `column` in the Markdown row of `first`.
fn md_cell(md: &str, first: &str, column: &str) -> String {
    let head = md_header(md, first);
    let i = head.iter().position(|h| h == column).unwrap_or_else(|| panic!("no column {column} in {head:?}"));
    md_row(md, first)[i].clone()
}

/// The HTML of the element that starts at `<tag ATTR="VALUE"` up to its closing tag.
fn html_element<'a>(html: &'a str, tag: &str, attr: &str, value: &str) -> &'a str {
    let open = format!(r#"<{tag} {attr}="{value}""#);
    let start = html.find(&open).unwrap_or_else(|| panic!("no {open} in the HTML"));
    let end = html[start..].find(&format!("</{tag}>")).unwrap() + start;
    &html[start..end]
}

/// The text of `<td data-field="FIELD" …>TEXT</td>` inside `fragment`.
fn html_field(fragment: &str, field: &str) -> String {
    let open = format!(r#"data-field="{field}""#);
    let at = fragment.find(&open).unwrap_or_else(|| panic!("no {open} in {fragment}"));
    let text_start = fragment[at..].find('>').unwrap() + at + 1;
    let text_end = fragment[text_start..].find("</").unwrap() + text_start;
    html_unescape(&fragment[text_start..text_end])
}

fn html_unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// A user cell as both renderers word it: `before → now`, or one value when unchanged.
fn user_cell(c: &Value) -> String {
    let shown = |u: &Value| {
        let u = u.as_str().unwrap();
        if u.is_empty() { "(image default)".to_string() } else { u.to_string() }
    };
    let now = shown(&c["now"]["configured_user"]);
    match c["before"].get("configured_user").map(shown) {
        Some(b) if b != now => format!("{b} → {now}"),
        _ => now,
    }
}

/// Seconds as both renderers word them.
fn seconds(s: f64) -> String {
    let t = format!("{s:.1}");
    format!("{} s", t.trim_end_matches(".0"))
}

#[test]
fn the_report_shows_before_and_now_downtime_rollbacks_and_exceptions_in_json_markdown_and_html() {
    let env = TestEnv::new("report");
    let busybox = image("busybox");
    let redis_vol = volume(&env, "redisdata");
    let redis = run_redis(&env, "redis", &redis_vol, &["-e", &format!("REDIS_EXTRA={REDIS_SECRET}")]);
    let web_vol = volume(&env, "webdata");
    let web = env.run(
        "web",
        &[
            "--init",
            "-e",
            &format!("WEB_TOKEN={SECRET}"),
            "-v",
            &format!("{web_vol}:/data"),
            &busybox,
            "sleep",
            "1000000",
        ],
    );
    // As its user, it prints its token to its log and exits: the log's tail goes into the
    // journal's error, which the report shows.
    let bad = env.run(
        "bad",
        &[
            "--init",
            "-e",
            &format!("BAD_TOKEN={SECRET}"),
            &busybox,
            "sh",
            "-c",
            "if [ \"$(id -u)\" != 0 ]; then echo \"token=$BAD_TOKEN\"; exit 3; fi; sleep 1000000",
        ],
    );
    // The exception carries no label of the test: `--filter` leaves it out of the list, and
    // the report still finds it (the test's cleanup removes it by its name).
    let agent = env.name("agent");
    docker(&["run", "-d", "--name", &agent, "--init", "--cap-add", "NET_ADMIN", &busybox, "sleep", "1000000"]);
    wait_for_redis_pong(&redis);

    let dir = env.tempdir();
    let plan = format!(
        r#"[rollout]
name = "rep"
on_failure = "rollback-service"
stable_for = "1s"
health_timeout = "60s"
stop_timeout = "5s"

[service.{redis}]
day = 1
user = "999:999"
health = {{ exec = ["sh", "-c", 'test "$(redis-cli ping)" = PONG'] }}

[service.{web}]
day = 1
user = "1000"
no_new_privileges = true

[service.{bad}]
day = 2
user = "1000"

[service.{agent}]
day = 2
keep_root = "manages the host's firewall"
cap_drop = ["ALL"]
cap_add = ["NET_ADMIN"]
read_only = true
no_new_privileges = true
"#
    );
    std::fs::write(dir.path().join("plan.toml"), plan).unwrap();
    let apply =
        |day: &str| unroot_in(dir.path(), &["apply", "plan.toml", "--day", day, "--yes", "--state-dir", "state"]);
    let day1 = apply("1");
    assert_eq!(day1.code, Some(0), "day 1: {}", day1.stderr);
    let day2 = apply("2");
    assert_eq!(day2.code, Some(7), "day 2 commits agent, bad is back on its original: {}", day2.stderr);

    // unroot redacts a failed container's log before its journal keeps it; a journal an
    // earlier version wrote may hold the value itself. The report redacts it again.
    let runs_dir = dir.path().join("state/rep/runs");
    let mut journals = 0;
    for run in std::fs::read_dir(&runs_dir).unwrap() {
        let path = run.unwrap().path().join("journal.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("token=<redacted>") {
            std::fs::write(&path, text.replace("token=<redacted>", &format!("token={SECRET}"))).unwrap();
            journals += 1;
        }
    }
    assert_eq!(journals, 1, "day 2's journal kept the failed log's line, redacted");
    let json_text = report(dir.path(), &env, "json");
    let md = report(dir.path(), &env, "md");
    let html = report(dir.path(), &env, "html");
    // The report read files that hold the values (each run's saved originals), and printed
    // none of them.
    let mut saved = String::new();
    for run in std::fs::read_dir(dir.path().join("state/rep/runs")).unwrap() {
        for svc in std::fs::read_dir(run.unwrap().path().join("services")).unwrap() {
            saved.push_str(&std::fs::read_to_string(svc.unwrap().path().join("original.json")).unwrap_or_default());
        }
    }
    assert!(saved.contains(SECRET) && saved.contains(REDIS_SECRET), "the originals hold the values");
    for (format, text) in [("json", &json_text), ("md", &md), ("html", &html)] {
        for secret in [SECRET, REDIS_SECRET] {
            assert!(!text.contains(secret), "{format}: an environment value is in the report");
        }
    }
    let r: Value = serde_json::from_str(&json_text).unwrap();
    let containers = r["containers"].as_array().unwrap();
    let by = |name: &str| containers.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name} listed"));
    assert_eq!(
        containers.len(),
        4,
        "every container the filter matches, and the exception the plan names outside it: {containers:#?}"
    );
    assert_eq!(r["filters"], serde_json::json!([format!("label={}", env.label())]));
    assert!(md.contains(&format!("match label={}", env.label())), "the filter is printed at the top");
    assert!(html.contains(&format!("match label={}", env.label())), "the filter is printed at the top");
    reconciles(&r);

    // Where it comes from, each fact as the operator would check it.
    let p = &r["provenance"];
    assert_eq!(p["daemon"]["id"], docker(&["info", "--format", "{{.ID}}"]));
    assert_eq!(p["daemon"]["name"], docker(&["info", "--format", "{{.Name}}"]));
    assert_eq!(p["daemon"]["engine_version"], docker(&["version", "--format", "{{.Server.Version}}"]));
    assert_eq!(p["benchmark"], "CIS Docker Benchmark v1.6.0");
    let sha = Command::new("sha256sum").arg(dir.path().join("plan.toml")).output().unwrap();
    let sha = String::from_utf8_lossy(&sha.stdout).split_whitespace().next().unwrap().to_string();
    assert_eq!(p["plan"]["sha256"], sha.as_str());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let runs = p["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "both days' runs were read: {runs:?}");
    for run in runs {
        assert_eq!(run["host"], host.as_str(), "{run}");
        assert!(run["user"].as_str().is_some_and(|u| !u.is_empty()), "who ran it: {run}");
    }
    assert!(md.contains("## Provenance") && html.contains(r#"<section class="provenance">"#));

    // Before and now, as the user would check them with docker inspect and docker top.
    let r_redis = by(&redis);
    assert_eq!(r_redis["before"]["class"], "drops-root", "redis started as root and dropped to 999 itself");
    assert_eq!(r_redis["before"]["process_uids"], serde_json::json!([999]));
    assert_eq!(
        (r_redis["now"]["class"].as_str(), r_redis["now"]["configured_user"].as_str()),
        (Some("non-root"), Some("999:999"))
    );
    assert_eq!(docker(&["inspect", "-f", "{{.Config.User}}", &redis]), "999:999");
    let r_web = by(&web);
    assert_eq!(
        (r_web["before"]["class"].as_str(), r_web["before"]["process_uids"].clone()),
        (Some("root"), serde_json::json!([0]))
    );
    assert_eq!(r_web["before"]["findings"][0]["cis"], "4.1");
    assert_eq!(
        (r_web["now"]["class"].as_str(), r_web["now"]["process_uids"].clone()),
        (Some("non-root"), serde_json::json!([1000]))
    );
    assert_eq!(
        (r_web["before"]["no_new_privileges"].as_bool(), r_web["now"]["no_new_privileges"].as_bool()),
        (Some(false), Some(true))
    );
    assert!(r_web["now"]["findings"].as_array().unwrap().iter().all(|f| f["cis"] != "4.1"));
    let r_bad = by(&bad);
    assert_eq!((r_bad["standing"].as_str(), r_bad["now"]["class"].as_str()), (Some("original"), Some("root")));

    // Per day: when, by which run, each service's downtime from the journal's timestamps.
    let days = r["days"].as_array().unwrap();
    assert_eq!((days[0]["status"].as_str(), days[1]["status"].as_str()), (Some("applied"), Some("partly-applied")));
    let state = dir.path().join("state/rep/runs");
    for (day, service) in [(0, &redis), (0, &web), (1, &bad), (1, &agent)] {
        let run = &days[day]["runs"][0];
        let id = run["run"].as_str().unwrap();
        assert_eq!(days[day]["committed_by"].as_str(), Some(id));
        let s = run["services"].as_array().unwrap().iter().find(|s| s["name"] == service.as_str()).unwrap();
        let expected = journal_downtime(&state.join(id), service);
        let got = s["downtime_seconds"].as_f64().unwrap();
        assert!(expected > 0.0 && (got - expected).abs() < 0.0015, "{service}: {got} s, the journal says {expected} s");
        // The same number in the Markdown and the HTML.
        let md_day = &md[md.find(&format!("Run {id} (")).unwrap()..];
        assert_eq!(md_cell(md_day, service, "downtime"), seconds(got), "{service} in the Markdown");
        let tr = html_element(&html, "tr", "data-run", &format!(r#"{id}" data-service="{service}"#));
        assert!(tr.contains(&format!(r#"data-seconds="{got}""#)), "{service} in the HTML: {tr}");
    }

    // The rollback and why.
    let rollbacks = days[1]["runs"][0]["rollbacks"].as_array().unwrap();
    assert_eq!(rollbacks.len(), 1, "{rollbacks:#?}");
    assert_eq!(rollbacks[0]["services"], serde_json::json!([bad]));
    assert_eq!(rollbacks[0]["cause"], "step-failed");
    let why = rollbacks[0]["why"].as_str().unwrap();
    assert!(why.contains("health failed") && why.contains("code 3"), "{why}");
    assert!(why.contains("token=<redacted>"), "the log's line is there, its value not: {why}");
    assert!(!why.contains("failure.log") && !why.contains("state/rep"), "no path the reader cannot open: {why}");
    let bad_run =
        days[1]["runs"][0]["services"].as_array().unwrap().iter().find(|s| s["name"] == bad.as_str()).unwrap();
    let saved_log = bad_run["failure"]["log"].as_array().unwrap();
    assert!(saved_log.iter().any(|l| l == "token=<redacted>"), "the saved log, quoted: {saved_log:?}");
    // The exception was recreated with its controls: it is an exception, never migrated.
    let agent_run = days[1]["runs"][0]["services"].as_array().unwrap().iter().find(|s| s["name"] == agent.as_str());
    assert_eq!(agent_run.unwrap()["outcome"], "exception");
    assert_eq!(by(&agent)["standing"], "exception");
    assert_eq!(days[1]["open"], serde_json::json!([bad]), "the service that keeps day 2 open");
    assert!(md.contains(&format!("### Day 2: partly applied: {} keeps it open", md_esc(&bad))), "{md}");
    assert!(md.contains("health failed: it exited with code 3") && md.contains("token=&lt;redacted&gt;"));
    assert_eq!(html_field(html_element(&html, "tr", "data-rollback", &bad), "why"), why);

    // The exception with its controls, each in place as docker inspect shows.
    let e = &r["exceptions"][0];
    assert_eq!((e["name"].as_str(), e["reason"].as_str()), (Some(agent.as_str()), Some("manages the host's firewall")));
    assert_eq!((e["present"].as_bool(), e["process_uids"].clone()), (Some(true), serde_json::json!([0])));
    let controls: Vec<(String, bool)> = e["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["control"].as_str().unwrap().to_string(), c["in_place"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        controls,
        [
            ("cap_drop ALL".to_string(), true),
            ("cap_add NET_ADMIN".to_string(), true),
            ("read_only".to_string(), true),
            ("no_new_privileges".to_string(), true)
        ]
    );
    assert_eq!(
        docker(&["inspect", "-f", "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}}", &agent]),
        "true [ALL]"
    );
    let md_controls = md_cell(&md[md.find("## Exceptions").unwrap()..], &agent, "controls");
    let html_row = html_element(&html, "tr", "data-exception", &agent);
    for (control, _) in &controls {
        assert!(md_controls.contains(&format!("{control} in place")), "{md_controls}");
        assert!(html_row.contains(&format!(r#"data-control="{control}" data-in-place="true""#)), "{html_row}");
    }
    assert_eq!(html_field(html_row, "reason"), "manages the host's firewall");

    // Verify's verdict for each committed day: day 1 passes; day 2 fails, bad is on its
    // original.
    let verified: Vec<(u64, bool)> = r["verify"]["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["day"].as_u64().unwrap(), d["ok"].as_bool().unwrap()))
        .collect();
    assert_eq!(verified, [(1, true), (2, false)]);
    assert_eq!(r["verify"]["ok"], false);
    assert!(md.contains("## Verify: day 1 passed, day 2 failed"), "{md}");
    assert!(html.contains(r#"<h2>Verify: <span class="bad">day 1 passed, day 2 failed</span></h2>"#));

    // Every container's before/now user and process uids alike in the three.
    for c in containers {
        let name = c["name"].as_str().unwrap();
        let user = user_cell(c);
        assert_eq!(md_cell(&md, name, "user"), user, "{name} in the Markdown");
        assert_eq!(html_field(html_element(&html, "tr", "data-container", name), "user"), user, "{name} in the HTML");
    }

    screenshot(&env, &html);
}

/// Markdown's escape of a name (its `_` and the like), as the renderer writes it.
fn md_esc(s: &str) -> String {
    s.replace('_', "\\_")
}

/// Every headline number of the JSON report is the count (or the sum) of the rows below it.
fn reconciles(r: &Value) {
    let containers = r["containers"].as_array().unwrap();
    let count = |f: &dyn Fn(&Value) -> bool| containers.iter().filter(|c| f(c)).count() as u64;
    let root = |side: &Value| side["class"] == "root" || side["class"] == "exception";
    let before = |c: &Value| if c["before"].is_null() { c["now"].clone() } else { c["before"].clone() };
    let s = &r["summary"];
    assert_eq!(s["containers"].as_u64(), Some(containers.len() as u64), "containers");
    assert_eq!(s["root_before"].as_u64(), Some(count(&|c| root(&before(c)))), "root before");
    assert_eq!(s["root_now"].as_u64(), Some(count(&|c| root(&c["now"]))), "root now");
    assert_eq!(s["migrated"].as_u64(), Some(count(&|c| c["standing"] == "migrated")), "migrated");
    let exceptions = r["exceptions"].as_array().unwrap();
    assert_eq!(s["exceptions"].as_u64(), Some(exceptions.len() as u64), "exceptions");
    assert_eq!(s["exceptions"].as_u64(), Some(count(&|c| c["standing"] == "exception")), "exceptions listed");
    let runs: Vec<&Value> = r["days"].as_array().unwrap().iter().flat_map(|d| d["runs"].as_array().unwrap()).collect();
    let rollbacks: usize = runs.iter().map(|run| run["rollbacks"].as_array().unwrap().len()).sum();
    assert_eq!(s["rollbacks"].as_u64(), Some(rollbacks as u64), "rollbacks");
    let downtime: f64 = runs
        .iter()
        .flat_map(|run| run["services"].as_array().unwrap())
        .map(|svc| svc["downtime_seconds"].as_f64().unwrap())
        .sum();
    assert!((s["downtime_seconds"].as_f64().unwrap() - downtime).abs() < 1e-9, "downtime");
    // Each CIS row: the containers whose findings show its id, before and now.
    for row in r["cis"].as_array().unwrap() {
        // Under an id: the findings that carry it; unroot's own rule (no id): its findings.
        let rules: Vec<&Value> = row["rules"].as_array().unwrap().iter().collect();
        let counted =
            |f: &Value| if row["cis"].is_null() { rules.contains(&&f["rule"]) } else { f["cis"] == row["cis"] };
        let of = |side: &Value| -> Vec<Value> {
            side["findings"].as_array().unwrap().iter().filter(|f| counted(f)).cloned().collect()
        };
        let accepted_only = |side: &Value| !of(side).is_empty() && of(side).iter().all(|f| f["accepted"].is_string());
        let want = (
            count(&|c| !of(&before(c)).is_empty()),
            count(&|c| !of(&c["now"]).is_empty() && !accepted_only(&c["now"])),
            count(&|c| accepted_only(&c["now"])),
        );
        let got =
            (row["before"].as_u64().unwrap(), row["now"].as_u64().unwrap(), row["accepted_now"].as_u64().unwrap());
        assert_eq!(got, want, "CIS row {row}");
    }
    let root_row = r["cis"].as_array().unwrap().iter().find(|c| c["cis"] == "4.1").unwrap();
    assert_eq!(root_row["accepted_now"], 1, "the exception is flagged under 4.1 and accepted");
}

/// The HTML page as headless Chromium draws it: a PNG of the page, written where
/// UNROOT_REPORT_SCREENSHOT says (docs/report.png is made that way), else in a temporary
/// folder.
fn screenshot(env: &TestEnv, html: &str) {
    let dir = env.tempdir();
    let page = dir.path().join("report.html");
    std::fs::write(&page, html).unwrap();
    let png = std::env::var_os("UNROOT_REPORT_SCREENSHOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("report.png"));
    let out = Command::new("chromium-headless-shell")
        .args(["--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,2300"])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium-headless-shell runs (.ci/run installs it)");
    assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    assert!(bytes.len() > 20_000, "a page was drawn, not a blank: {} bytes", bytes.len());

    // Printed (A4, the print styles): a PDF of a few pages, not one page per table row.
    let pdf = dir.path().join("report.pdf");
    let out = Command::new("chromium-headless-shell")
        .args(["--no-sandbox", "--disable-gpu", "--no-pdf-header-footer"])
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium --print-to-pdf: {}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF"), "a PDF");
    let pages = pdf_pages(&bytes);
    assert!((1..=6).contains(&pages), "the report prints on a few pages, not {pages}");
}

/// The page objects of a PDF (`/Type /Page`, not `/Pages`).
fn pdf_pages(pdf: &[u8]) -> usize {
    let mut n = 0;
    for at in 0..pdf.len() {
        let Some(rest) = pdf[at..].strip_prefix(b"/Type") else { continue };
        let rest = &rest[rest.iter().take_while(|b| b.is_ascii_whitespace()).count()..];
        if let Some(after) = rest.strip_prefix(b"/Page") {
            n += usize::from(after.first().is_none_or(|b| !b.is_ascii_alphanumeric()));
        }
    }
    n
}
