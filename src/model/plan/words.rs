//! toml's and serde's errors in the plan's words. The parser says "invalid type: sequence,
//! expected i64" or "duplicate key"; the plan's reader wants "`day` is one number (the day
//! this service moves on), not a list", at the same place, with the key's section of
//! docs/plan.md.

use std::ops::Range;

use super::{PlanError, PlanErrorKind, Source};
use crate::model::spelling;

/// The keys the durations are set by.
const DURATIONS: [&str; 4] = ["stop_timeout", "health_timeout", "stable_for", "daemon_timeout"];

/// What `key` holds, in the plan's words, and an example of it.
fn shape(key: &str) -> Option<(&'static str, String)> {
    let (shape, example) = match key {
        "day" => ("one number (the day this service moves on)", "day = 2"),
        "parallelism" => ("a whole number from 1 to 64", "parallelism = 4"),
        "name" => ("a string", "name = \"shop-nonroot\""),
        "state_dir" => ("a string (a folder)", "state_dir = \"/var/lib/unroot\""),
        "helper_image" => ("a string (an image)", "helper_image = \"busybox:1.36\""),
        "user" => ("a string: \"uid\", \"uid:gid\", \"name\" or \"name:group\"", "user = \"999:999\""),
        "keep_root" => ("a string (why the service stays root)", "keep_root = \"manages the host's firewall\""),
        "after" => ("a list of strings (service names)", "after = [\"shop-redis-1\"]"),
        "chown" => ("a list of strings (absolute container paths)", "chown = [\"/var/lib/postgresql/data\"]"),
        "group_add" => ("a list of strings (group names or gids)", "group_add = [\"video\"]"),
        "cap_drop" => ("a list of strings (capability names)", "cap_drop = [\"ALL\"]"),
        "cap_add" => ("a list of strings (capability names)", "cap_add = [\"NET_BIND_SERVICE\"]"),
        "security_opt" => ("a list of strings", "security_opt = [\"apparmor=docker-default\"]"),
        "healthcheck" => ("a list of strings (Docker's test)", "healthcheck = [\"CMD\", \"healthcheck.sh\"]"),
        "tmpfs" => ("a list of paths or { path, size, mode } tables", "tmpfs = [\"/run\"]"),
        "env" => ("a table of strings", "env = { HOME = \"/tmp\" }"),
        "on_failure" => ("one of \"rollback-day\", \"rollback-service\", \"pause\"", "on_failure = \"pause\""),
        "ownership" => ("one of \"auto\", \"host\", \"helper\"", "ownership = \"helper\""),
        "read_only" | "no_new_privileges" | "hardlinks" | "swarm" => {
            return Some(("true or false", format!("{key} = true")));
        }
        k if DURATIONS.contains(&k) => return Some(("a duration string", format!("{k} = \"30s\""))),
        _ => return None,
    };
    Some((shape, example.to_string()))
}

/// serde's name of an unexpected value (`sequence`, `integer `5``) in the plan's words.
fn value_words(unexpected: &str) -> String {
    let quoted = |prefix: &str| unexpected.strip_prefix(prefix).map(|v| v.trim_matches('`').to_string());
    if unexpected == "sequence" {
        "a list".into()
    } else if unexpected == "map" {
        "a table".into()
    } else if unexpected.starts_with("string ") {
        "a string".into()
    } else if let Some(n) = quoted("integer ") {
        format!("a number ({n})")
    } else if let Some(n) = quoted("floating point ") {
        format!("a fraction ({n})")
    } else if let Some(b) = quoted("boolean ") {
        format!("`{b}`")
    } else {
        unexpected.to_string()
    }
}

/// The table a key path is in, as the plan writes its header: `[service.db]`.
fn table_name(path: &[String]) -> String {
    match path {
        [] => "the plan".into(),
        [t, rest @ ..] if t == "service" && !rest.is_empty() => {
            let name = rest.join(".");
            let bare = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if bare { format!("[service.{name}]") } else { format!("[service.\"{name}\"]") }
        }
        _ => format!("[{}]", path.join(".")),
    }
}

/// The names between backticks in serde's message, in order.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The key path toml keeps for an error (`service.db.day`); it only shows it when it has no
/// text to point into.
pub(super) fn key_path(e: &toml::de::Error) -> Vec<String> {
    let mut bare = e.clone();
    bare.set_input(None);
    let shown = bare.to_string();
    let path = shown.lines().find_map(|l| l.strip_prefix("in `").and_then(|l| l.strip_suffix('`')));
    path.map(|p| p.split('.').map(str::to_string).collect()).unwrap_or_default()
}

/// An error the parser found, in the plan's words; `None` when it is not one of serde's.
pub(super) fn in_plan_words(src: &Source, e: &toml::de::Error) -> Option<PlanError> {
    let message = e.message().trim();
    let path = key_path(e);
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        wrong_type(src, rest, &path, e.span())
    } else if let Some(rest) = message.strip_prefix("unknown field ") {
        Some(unknown_key(src, rest, &path, e.span()))
    } else if let Some(rest) = message.strip_prefix("missing field ") {
        Some(missing_key(src, rest, &path, e.span()))
    } else if let Some(rest) = message.strip_prefix("unknown variant ") {
        Some(unknown_value(src, rest, &path, e.span()))
    } else if message == "duplicate key" {
        e.span().map(|span| duplicate(src, span))
    } else {
        None
    }
}

/// `invalid type: sequence, expected i64` at `path`.
fn wrong_type(src: &Source, rest: &str, path: &[String], span: Option<Range<usize>>) -> Option<PlanError> {
    let (unexpected, expected) = rest.rsplit_once(", expected ")?;
    let (key, is) = match path {
        [.., env, _] if env == "env" && path.len() >= 4 => ("env", "an `env` value must be a string"),
        [table, _] if table == "days" => ("days", "a day's title must be a string"),
        [.., key] => (key.as_str(), ""),
        [] => return None,
    };
    let got = value_words(unexpected);
    let text = span.clone().and_then(|s| src.text.get(s)).unwrap_or("").trim().to_string();
    if !is.is_empty() {
        let hint = format!("put it in quotes: \"{}\"", text.trim_matches('"'));
        return Some(src.error(PlanErrorKind::Syntax, span, format!("{is}, not {got}"), got, Some(hint)).about(key));
    }
    let (shape, example) = shape(key)?;
    let list = shape.starts_with("a list");
    let entry = list && expected != "a sequence";
    let verb = if key == "day" { "is" } else { "must be" };
    let message = if entry {
        format!("`{key}` must be {shape}; this entry is {got}")
    } else {
        format!("`{key}` {verb} {shape}, not {got}")
    };
    let unquoted = text.trim_matches(['"', '\'']);
    let hint = match (shape, got.as_str()) {
        _ if entry => format!("put it in quotes: \"{unquoted}\""),
        (s, g) if s.starts_with("a string") && !g.starts_with("a list") && !g.starts_with("a table") => {
            format!("put it in quotes: {key} = \"{unquoted}\"")
        }
        (_, "a string") if list => format!("put it in brackets: {key} = [{text}]"),
        ("a duration string", g) if g.starts_with("a number") => {
            format!("give it a unit, in quotes: {key} = \"{unquoted}s\"")
        }
        ("true or false", "a string") if matches!(unquoted, "true" | "false") => {
            format!("write it without quotes: {key} = {unquoted}")
        }
        (_, "a string") if key == "day" || key == "parallelism" => {
            format!("write it without quotes: {key} = {unquoted}")
        }
        _ if key == "day" => "a service moves on one day, for example: day = 2".to_string(),
        _ => format!("for example: {example}"),
    };
    Some(src.error(PlanErrorKind::Syntax, span, message, got, Some(hint)).about(key))
}

/// `unknown field `usr`, expected one of `day`, …` in the table at `path`.
fn unknown_key(src: &Source, rest: &str, path: &[String], span: Option<Range<usize>>) -> PlanError {
    let names = backticked(rest);
    let (name, known) = names.split_first().map_or(("?", &[][..]), |(n, k)| (*n, k));
    let message = match path {
        [] => format!("`{name}` is not a key of the plan; its tables are [rollout], [days] and [service.NAME]"),
        _ => format!("`{name}` is not a key of {}; the keys are {}", table_name(path), known.join(", ")),
    };
    let hint = match spelling::nearest(name, known) {
        Some(k) => format!("did you mean `{k}`?"),
        None => "remove it, or fix its spelling".to_string(),
    };
    src.error(PlanErrorKind::UnknownKey, span, message, "unknown key", Some(hint))
}

/// `missing field `day`` in the table at `path`.
fn missing_key(src: &Source, rest: &str, path: &[String], span: Option<Range<usize>>) -> PlanError {
    let key = backticked(rest).first().copied().unwrap_or("?");
    let (message, hint) = match (path, shape(key)) {
        ([], _) => {
            (format!("the plan has no [{key}] table"), "start the plan with [rollout] and its name = \"…\"".to_string())
        }
        (_, Some((shape, example))) => (
            format!("{} has no `{key}`, which is {shape}", table_name(path)),
            format!("add it, for example: {example}"),
        ),
        (_, None) => (format!("{} has no `{key}`", table_name(path)), "add it; it has no default".to_string()),
    };
    src.error(PlanErrorKind::Syntax, span, message, format!("no `{key}`"), Some(hint)).about(key)
}

/// `unknown variant `retry`, expected one of `rollback-day`, …` at `path`.
fn unknown_value(src: &Source, rest: &str, path: &[String], span: Option<Range<usize>>) -> PlanError {
    let names = backticked(rest);
    let (value, known) = names.split_first().map_or(("?", &[][..]), |(n, k)| (*n, k));
    let key = path.last().map_or("?", String::as_str);
    let choices: Vec<String> = known.iter().map(|k| format!("\"{k}\"")).collect();
    let message = format!("`{key}` = \"{value}\" is not one of {}", choices.join(", "));
    let hint = match spelling::nearest(value, known) {
        Some(k) => format!("did you mean \"{k}\"?"),
        None => "use one of the values listed above".to_string(),
    };
    src.error(PlanErrorKind::InvalidValue, span, message, "not one of them", Some(hint)).about(key)
}

/// The header a line opens (`service.db` for `[service."db"]  # web`), spaces and quotes
/// dropped; `None` for a line that is not a table header.
fn header(line: &str) -> Option<String> {
    let inner = line.trim().strip_prefix('[')?.split(']').next()?;
    (!inner.starts_with('['))
        .then(|| inner.chars().filter(|c| !c.is_whitespace() && !matches!(c, '"' | '\'')).collect())
}

/// toml's "duplicate key" at `span`: a table given twice, or a key set twice in one table.
fn duplicate(src: &Source, span: Range<usize>) -> PlanError {
    let text = &*src.text;
    let start = text[..span.start.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let key = text.get(span.clone()).unwrap_or("").trim().trim_matches(['"', '\'']).to_string();
    let Some(table) = header(&text[start..end]) else {
        let hint = "keep one of them".to_string();
        let message = format!("`{key}` is set twice in this table");
        return src.error(PlanErrorKind::Syntax, Some(span), message, "set again", Some(hint)).about(&key);
    };
    let first = text[..start].lines().position(|l| header(l).as_deref() == Some(&table)).map(|i| i + 1);
    let first = first.map_or(String::new(), |n| format!(" (line {n})"));
    if table.starts_with("service.") {
        let message = format!("service `{key}` appears twice; a service belongs to one day");
        let hint = format!(
            "merge this table into the first [{table}]{first}, with one `day`: a container moves off root once"
        );
        return src.error(PlanErrorKind::Syntax, Some(span), message, "the second table", Some(hint)).about("service");
    }
    let message = format!("[{table}] appears twice");
    let hint = format!("merge it into the first [{table}]{first}");
    let about = table.split('.').next().unwrap_or("").to_string();
    src.error(PlanErrorKind::Syntax, Some(span), message, "the second table", Some(hint)).about(&about)
}

#[cfg(test)]
mod tests {
    use crate::model::plan::{Plan, PlanError, PlanErrorKind};

    const HEAD: &str = "[rollout]\nname = \"t\"\n";

    #[track_caller]
    fn error(text: &str) -> PlanError {
        let mut e = Plan::parse("p.toml", text).expect_err(text);
        assert_eq!(e.errors.len(), 1, "{:#?}", e.errors);
        e.errors.remove(0)
    }

    /// The one error of a service `db` of day 1 with `body`, as `location: message`, its
    /// hint and the anchor it links.
    #[track_caller]
    fn service(body: &str) -> (String, String, &'static str) {
        let e = error(&format!("{HEAD}[service.db]\nday = 1\n{body}\n"));
        (e.to_string(), e.help.clone().unwrap(), e.doc)
    }

    #[test]
    fn a_day_is_one_number() {
        let e = error(&format!("{HEAD}[service.db]\nday = [1, 2]\n"));
        assert_eq!(e.to_string(), "p.toml:4:7: `day` is one number (the day this service moves on), not a list");
        assert_eq!(e.kind, PlanErrorKind::Syntax);
        assert_eq!(e.doc, "day");
        assert_eq!(e.help.as_deref(), Some("a service moves on one day, for example: day = 2 (see docs/plan.md#day)"));
        let e = error(&format!("{HEAD}[service.db]\nday = \"2\"\n"));
        assert_eq!(e.message, "`day` is one number (the day this service moves on), not a string");
        assert!(e.help.unwrap().starts_with("write it without quotes: day = 2 "));
        let e = error(&format!("{HEAD}[service.db]\nday = 1.5\n"));
        assert_eq!(e.message, "`day` is one number (the day this service moves on), not a fraction (1.5)");
    }

    #[test]
    fn wrong_types_say_what_the_key_holds() {
        let (text, help, doc) = service("user = 1000");
        assert_eq!(
            text,
            "p.toml:5:8: `user` must be a string: \"uid\", \"uid:gid\", \"name\" or \"name:group\", not a number (1000)"
        );
        assert_eq!((help.as_str(), doc), ("put it in quotes: user = \"1000\" (see docs/plan.md#user)", "user"));
        let (text, help, doc) = service("cap_add = \"NET_ADMIN\"");
        assert_eq!(text, "p.toml:5:11: `cap_add` must be a list of strings (capability names), not a string");
        assert!(help.starts_with("put it in brackets: cap_add = [\"NET_ADMIN\"]"), "{help}");
        assert_eq!(doc, "cap_drop-cap_add");
        let (text, help, _) = service("cap_drop = [\"ALL\", 7]");
        assert_eq!(
            text,
            "p.toml:5:20: `cap_drop` must be a list of strings (capability names); this entry is a number (7)"
        );
        assert!(help.starts_with("put it in quotes: \"7\""), "{help}");
        let (text, help, doc) = service("read_only = \"true\"");
        assert_eq!(text, "p.toml:5:13: `read_only` must be true or false, not a string");
        assert_eq!(
            (help.as_str(), doc),
            ("write it without quotes: read_only = true (see docs/plan.md#read_only)", "read_only")
        );
        let (text, help, _) = service("no_new_privileges = 1");
        assert_eq!(text, "p.toml:5:21: `no_new_privileges` must be true or false, not a number (1)");
        assert!(help.starts_with("for example: no_new_privileges = true"), "{help}");
        let (text, help, doc) = service("stop_timeout = 30");
        assert_eq!(text, "p.toml:5:16: `stop_timeout` must be a duration string, not a number (30)");
        assert_eq!(
            (help.as_str(), doc),
            ("give it a unit, in quotes: stop_timeout = \"30s\" (see docs/plan.md#stop_timeout)", "stop_timeout")
        );
        let (text, _, doc) = service("env = { PORT = 8080 }");
        assert_eq!((text.as_str(), doc), ("p.toml:5:16: an `env` value must be a string, not a number (8080)", "env"));
        let e = error("[rollout]\nname = \"t\"\nparallelism = \"4\"\n[service.a]\nday = 1\n");
        assert_eq!(e.message, "`parallelism` must be a whole number from 1 to 64, not a string");
    }

    #[test]
    fn unknown_keys_name_the_keys_of_their_table_and_the_nearest() {
        let (text, help, doc) = service("usr = \"1000\"");
        assert!(
            text.starts_with(
                "p.toml:5:1: `usr` is not a key of [service.db]; the keys are day, user, keep_root, after, chown,"
            ),
            "{text}"
        );
        assert_eq!(
            (help.as_str(), doc),
            ("did you mean `user`? (see docs/plan.md#keys-at-a-glance)", "keys-at-a-glance")
        );
        let e = error("[rollout]\nname = \"t\"\nparalelism = 2\n[service.a]\nday = 1\n");
        assert!(
            e.message.starts_with("`paralelism` is not a key of [rollout]; the keys are name, state_dir, parallelism,"),
            "{}",
            e.message
        );
        assert!(e.help.unwrap().starts_with("did you mean `parallelism`?"));
        let e = error(&format!("colour = \"red\"\n{HEAD}[service.a]\nday = 1\n"));
        assert_eq!(e.message, "`colour` is not a key of the plan; its tables are [rollout], [days] and [service.NAME]");
        assert_eq!(e.kind, PlanErrorKind::UnknownKey);
        let e = error(&format!("{HEAD}[service.\"web.1\"]\nday = 1\nfrobnicate = 1\n"));
        assert!(e.message.starts_with("`frobnicate` is not a key of [service.\"web.1\"];"), "{}", e.message);
        assert!(e.help.unwrap().starts_with("remove it, or fix its spelling"));
    }

    #[test]
    fn missing_keys_and_values_outside_their_set() {
        let e = error(&format!("{HEAD}[service.a]\nuser = \"1000\"\n"));
        assert_eq!(e.message, "[service.a] has no `day`, which is one number (the day this service moves on)");
        assert_eq!(e.doc, "day");
        let e = error("[service.a]\nday = 1\n");
        assert_eq!(e.message, "the plan has no [rollout] table");
        assert_eq!(e.doc, "rollout");
        let e = error("[rollout]\nname = \"t\"\non_failure = \"rollback\"\n[service.a]\nday = 1\n");
        assert_eq!(
            e.to_string(),
            "p.toml:3:14: `on_failure` = \"rollback\" is not one of \"rollback-day\", \"rollback-service\", \"pause\""
        );
        assert_eq!(e.help.as_deref(), Some("did you mean \"rollback-day\"? (see docs/plan.md#on_failure)"));
    }

    #[test]
    fn a_service_given_twice_belongs_to_one_day() {
        let e = error(&format!("{HEAD}[service.db]\nday = 1\n\n[service.web]\nday = 1\n\n[service.db]\nday = 2\n"));
        assert_eq!(e.to_string(), "p.toml:9:10: service `db` appears twice; a service belongs to one day");
        assert_eq!(e.doc, "servicename");
        assert!(
            e.help
                .as_deref()
                .unwrap()
                .starts_with("merge this table into the first [service.db] (line 3), with one `day`")
        );
        let e = error(&format!("{HEAD}[service.\"db\"]\nday = 1\n[ service . db ] # again\nday = 2\n"));
        assert!(e.message.starts_with("service `db` appears twice"), "{}", e.message);
        assert!(e.help.unwrap().contains("(line 3)"));
        let e = error("[rollout]\nname = \"t\"\n[rollout]\nname = \"u\"\n[service.a]\nday = 1\n");
        assert_eq!(e.to_string(), "p.toml:3:2: [rollout] appears twice");
        assert_eq!(e.doc, "rollout");
        let e = error(&format!("{HEAD}[service.db]\nday = 1\nday = 2\n"));
        assert_eq!(e.to_string(), "p.toml:5:1: `day` is set twice in this table");
        assert_eq!(e.doc, "day");
    }
}
