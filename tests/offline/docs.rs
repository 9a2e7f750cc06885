//! The documentation cannot drift from the parser: docs/plan.md's complete example passes
//! `unroot check`, every plan of the repository validates against `unroot schema`, every
//! error of `check` points into docs/plan.md, the man page renders, and the profiles file of
//! docs/init.md parses.

use crate::common::{repo_path, unroot};
use serde_json::Value;

/// The TOML block that follows the `complete-example` marker in docs/plan.md.
fn complete_example() -> String {
    let doc = std::fs::read_to_string(repo_path("docs/plan.md")).unwrap();
    let after = doc.split("<!-- complete-example").nth(1).expect("docs/plan.md marks its complete example");
    let block = after.split("```toml\n").nth(1).expect("a toml block follows the marker");
    block.split("\n```").next().unwrap().to_string()
}

#[test]
fn the_complete_example_of_the_docs_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("example.toml");
    std::fs::write(&path, complete_example()).unwrap();
    let out = unroot().args(["check", path.to_str().unwrap(), "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["services"].as_u64(), v["exceptions"].as_u64()), (Some(6), Some(1)));
}

/// A TOML plan as JSON, the way an editor checks it against the schema.
fn as_json(text: &str) -> Value {
    let table: toml::Table = text.parse().unwrap();
    serde_json::to_value(table).unwrap()
}

fn schema() -> Value {
    let out = unroot().arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice(&out.stdout).expect("unroot schema prints JSON")
}

#[test]
fn every_plan_of_the_repository_validates_against_the_schema() {
    let validator = jsonschema::validator_for(&schema()).expect("a valid JSON Schema");
    let mut plans = vec![repo_path("plans/sutazai.toml")];
    for e in std::fs::read_dir(repo_path("tests/plans")).unwrap() {
        plans.push(e.unwrap().path());
    }
    assert!(plans.len() >= 3);
    for p in &plans {
        let text = std::fs::read_to_string(p).unwrap();
        let errors: Vec<String> = validator.iter_errors(&as_json(&text)).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", p.display());
        let check = unroot().args(["check", p.to_str().unwrap()]).output().unwrap();
        assert_eq!(check.status.code(), Some(0), "{}: {}", p.display(), String::from_utf8_lossy(&check.stderr));
    }
    let docs = as_json(&complete_example());
    assert!(validator.is_valid(&docs), "the docs' example");
    // The schema is not a rubber stamp: what check refuses for its shape, it refuses too.
    for bad in [
        "[rollout]\nname = \"x\"\n[service.a]\nday = 1\nchwon = [\"/data\"]\n",
        "[rollout]\nname = \"X Y\"\n[service.a]\nday = 1\n",
        "[rollout]\nname = \"x\"\non_failure = \"retry\"\n[service.a]\nday = 1\n",
        "[rollout]\nname = \"x\"\n[service.a]\nday = 1\nhealth = \"sometimes\"\n",
        "[rollout]\nname = \"x\"\nstable_for = \"5 seconds\"\n[service.a]\nday = 1\n",
        "[rollout]\nname = \"x\"\n[service.a]\nuser = \"1000\"\n",
    ] {
        assert!(!validator.is_valid(&as_json(bad)), "the schema accepts:\n{bad}");
    }
}

#[test]
fn every_error_of_check_points_into_the_plan_docs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[rollout]\nname = \"t\"\nstable_for = \"forever\"\n[service.db]\nday = 1\nuser = \"root\"\n[service.web]\nday = 1\nafter = [\"nope\"]\n",
    )
    .unwrap();
    let out = unroot().args(["check", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for anchor in ["docs/plan.md#durations", "docs/plan.md#user", "docs/plan.md#after"] {
        assert!(err.contains(anchor), "{anchor} missing: {err}");
    }
    let doc = std::fs::read_to_string(repo_path("docs/plan.md")).unwrap();
    for heading in ["## Durations", "### `user`", "### `after`", "## Keys at a glance", "## Limits", "### `chown`"] {
        assert!(doc.contains(heading), "docs/plan.md has no {heading}");
    }
}

/// The anchors GitHub gives the headings of a Markdown page: the heading's text lower-cased,
/// punctuation but `-` and `_` dropped, spaces as `-`; a repeated one gets `-1`, `-2` ….
fn heading_anchors(doc: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut in_code = false;
    for line in doc.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        let Some(text) = line.strip_prefix('#').filter(|_| !in_code).map(|t| t.trim_start_matches('#')) else {
            continue;
        };
        let base: String = text
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let repeats = seen.iter().filter(|a| **a == base || a.starts_with(&format!("{base}-"))).count();
        seen.push(if repeats == 0 { base } else { format!("{base}-{repeats}") });
    }
    seen
}

#[test]
fn every_anchor_a_plan_error_links_is_a_heading_of_the_plan_docs() {
    let doc = std::fs::read_to_string(repo_path("docs/plan.md")).unwrap();
    let anchors = heading_anchors(&doc);
    for a in ["keys-at-a-glance", "servicename", "cap_drop-cap_add", "day", "user", "durations"] {
        assert!(anchors.iter().any(|h| h == a), "the heading parser finds {a}: {anchors:?}");
    }
    for a in unroot::model::plan::error::doc_anchors() {
        assert!(anchors.iter().any(|h| h == a), "docs/plan.md has no heading for #{a}: {anchors:?}");
    }
    // And what `check` prints links them too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let mut linked = 0;
    let bodies = [
        "user = \"root\"",
        "health = \"maybe\"",
        "group_add = [\"a:b\"]",
        "keep_root = \" \"",
        "healthcheck = [\"x\"]",
        "tmpfs = [\"run\"]",
        "security_opt = [\"x\"]",
        "swarm = true\nownership = \"host\"",
        "cap_drop = [\"a b\"]",
        "cap_add = [\"NET_BIND\"]",
        "day = 2",
        "user = 0",
        "read_only = \"yes\"",
        "env = { A = 1 }",
        "[service.a]\nday = 2",
    ];
    for body in bodies {
        let text = format!("[rollout]\nname = \"t\"\n[service.a]\nday = 1\n{body}\n");
        std::fs::write(&path, text).unwrap();
        let out = unroot().args(["check", path.to_str().unwrap()]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{body}");
        let err = String::from_utf8_lossy(&out.stderr);
        for link in err.split("docs/plan.md#").skip(1) {
            let a: String = link.chars().take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_')).collect();
            assert!(anchors.contains(&a), "{body}: #{a} is not a heading of docs/plan.md: {err}");
            assert_ne!(a, "keys-at-a-glance", "{body}: the key's own section, not the table: {err}");
            linked += 1;
        }
    }
    assert!(linked >= bodies.len(), "every error links its section");
}

#[test]
fn the_man_page_renders() {
    let out = unroot().arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.starts_with(".ie") || page.contains(".TH unroot"), "{}", &page[..page.len().min(200)]);
    assert!(page.contains("audit") && page.contains("rollback"), "the subcommands are listed");
}

#[test]
fn the_profiles_example_of_docs_init_parses() {
    let doc = std::fs::read_to_string(repo_path("docs/init.md")).unwrap();
    let block = doc.split("```toml\n").nth(1).expect("docs/init.md shows a profiles file");
    let text = block.split("\n```").next().unwrap();
    let profiles = unroot::model::profiles::Profiles::parse("docs/init.md", text).unwrap();
    let vault = profiles.for_image("hashicorp/vault:1.15").expect("the example profile matches its image");
    assert_eq!(vault.user.as_deref(), Some("vault"));
}

/// docs/plan.md's list of protected host paths, as the code would write it.
fn protected_list() -> String {
    let (trees, exact) = unroot::engine::reown::protected_paths();
    let list = |paths: &[&str]| paths.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ");
    format!(
        "- Never re-owned, nor anything inside, nor anything that contains them: {}\n\
         - Never re-owned themselves (a directory inside may be): {}\n",
        list(trees),
        list(exact)
    )
}

#[test]
fn the_protected_host_paths_of_the_docs_are_the_codes() {
    let doc = std::fs::read_to_string(repo_path("docs/plan.md")).unwrap();
    let begin = "<!-- protected-paths: generated from src/engine/reown.rs, do not edit -->\n";
    let start = doc.find(begin).expect("docs/plan.md marks the generated list") + begin.len();
    let end = doc[start..].find("<!-- protected-paths: end -->").unwrap() + start;
    assert_eq!(&doc[start..end], protected_list(), "docs/plan.md's list is the code's: regenerate it");
    // The other pages link the one list instead of keeping their own.
    for page in ["README.md", "docs/init.md"] {
        let text = std::fs::read_to_string(repo_path(page)).unwrap();
        assert!(text.contains("#protected-host-paths)"), "{page} links the list");
    }
}

/// Every flag `unroot COMMAND --help` shows, as `--name`.
fn help_flags(command: &str) -> Vec<String> {
    let out = unroot().args([command, "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| format!("--{}", w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-')))
        .collect()
}

#[test]
fn the_readmes_command_table_says_what_help_says() {
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    let mut seen = 0;
    for row in readme.lines().filter(|l| l.starts_with("| `unroot ")) {
        let usage = row.split('`').nth(1).unwrap();
        let command = usage.split_whitespace().nth(1).unwrap();
        let flags = help_flags(command);
        for word in usage.split(|c: char| c.is_whitespace() || "[]|\\".contains(c)) {
            let Some(flag) = word.strip_prefix("--").map(|f| format!("--{}", f.split('=').next().unwrap())) else {
                continue;
            };
            assert!(flags.contains(&flag), "README's `{usage}`: {flag} is not in `unroot {command} --help`");
        }
        seen += 1;
    }
    assert!(seen >= 12, "the README's command table: {seen} rows");
}

/// The keys docs/plan.md's "Keys at a glance" table gives for `where` (`[rollout]` or
/// `service`).
fn documented_keys(place: &str) -> std::collections::BTreeSet<String> {
    let doc = std::fs::read_to_string(repo_path("docs/plan.md")).unwrap();
    let table = &doc[doc.find("## Keys at a glance").unwrap()..];
    let table = &table[..table[3..].find("\n## ").unwrap()];
    let mut keys = std::collections::BTreeSet::new();
    for row in table.lines().filter(|l| l.starts_with("| [")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        if !cells[1].contains(place) {
            continue;
        }
        let names = cells[0].split("](").next().unwrap();
        keys.extend(names.split('`').skip(1).step_by(2).filter(|k| !k.contains(' ')).map(str::to_string));
    }
    keys
}

#[test]
fn the_key_table_of_the_docs_is_the_schemas() {
    let schema = schema();
    let defs = schema.get("$defs").or(schema.get("definitions")).unwrap();
    for (def, place) in [("RawRollout", "[rollout]"), ("RawService", "service")] {
        let properties: std::collections::BTreeSet<String> =
            defs[def]["properties"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(documented_keys(place), properties, "docs/plan.md's keys of {place} are the schema's");
    }
}

#[test]
fn the_readmes_exit_code_table_is_the_codes_unroot_exits_with() {
    use unroot::error::Exit;
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    let section = &readme[readme.find("Exit codes, for every command").expect("the exit code table")..];
    let rows: Vec<u8> = section
        .lines()
        .skip_while(|l| !l.starts_with("| code |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_start_matches('|').split('|').next().unwrap().trim().parse().expect("a code"))
        .collect();
    let codes: Vec<u8> = Exit::ALL.iter().map(|e| *e as u8).collect();
    assert_eq!(rows, codes, "one row per exit code, in order");
    // The names --format json carries are the README's.
    let intro = &section[..section.find("| code |").unwrap()];
    for exit in Exit::ALL.iter().filter(|e| !matches!(e, Exit::Ok | Exit::RolledBack | Exit::Incomplete)) {
        let named = intro.contains(&format!("`{}`", exit.name())) || section.contains(&format!("`{}`", exit.name()));
        assert!(named, "the README names the outcome `{}` of exit {}", exit.name(), *exit as u8);
    }
}
