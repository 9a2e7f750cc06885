//! A command that fails in `--format json` still answers in JSON on stdout (SPEC §9): one
//! document `{"errors": [...], "exit_code", "outcome"}` for the commands that print one
//! document, and a last `done` event carrying the same for the JSON-lines commands (apply,
//! resume, rollback). Each error has `file`, `line`, `column`, `message` and `hint` (null
//! where they do not apply). People still get the error on stderr.

use serde_json::{Value, json};

use super::Output;
use crate::error::{Error, Exit};

/// How a command answers in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonAnswer {
    /// One document (audit, check, plan, status, verify, init, report).
    Document,
    /// JSON lines of events, the last a `done` (apply, resume, rollback).
    Lines,
}

/// `file:line:column` (or a file alone) as its parts; a file name may hold `:`.
fn place(location: &str) -> (Value, Value, Value) {
    let mut parts = location.rsplitn(3, ':');
    let (col, line, file) = (parts.next(), parts.next(), parts.next());
    match (file, line.and_then(|l| l.parse::<u64>().ok()), col.and_then(|c| c.parse::<u64>().ok())) {
        (Some(file), Some(line), Some(col)) => (json!(file), json!(line), json!(col)),
        _ => (json!(location), Value::Null, Value::Null),
    }
}

/// Each error of `e` as an object: every error of a plan with its place and hint, else
/// the one error.
pub fn errors(e: &Error) -> Vec<Value> {
    match e {
        Error::Plan(plan) => plan
            .errors
            .iter()
            .map(|p| {
                let (file, line, column) = place(&p.location);
                json!({"file": file, "line": line, "column": column, "message": p.message, "hint": p.help})
            })
            .collect(),
        other => vec![json!({"file": null, "line": null, "column": null, "message": other.to_string(), "hint": null})],
    }
}

impl Output {
    /// The failure of a command as JSON on stdout, as `answer` says it answers.
    pub fn failed(&self, answer: JsonAnswer, e: &Error, exit: Exit) {
        let errors = errors(e);
        match answer {
            JsonAnswer::Document => {
                self.print_json(&json!({"errors": errors, "exit_code": exit as u8, "outcome": exit.name()}))
            }
            JsonAnswer::Lines => {
                let done = json!({"event": "done", "exit_code": exit as u8, "outcome": exit.name(), "errors": errors});
                self.print(&format!("{done}\n"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_is_split_from_the_right_so_a_file_may_hold_colons() {
        assert_eq!(place("plan.toml:3:7"), (json!("plan.toml"), json!(3), json!(7)));
        assert_eq!(place("a:b.toml:12:1"), (json!("a:b.toml"), json!(12), json!(1)));
        assert_eq!(place("plan.toml"), (json!("plan.toml"), Value::Null, Value::Null));
    }

    #[test]
    fn a_failure_is_one_document_or_a_last_done_event() {
        let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct W(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let out = Output::new(true, Box::new(W(printed.clone())));
        out.failed(JsonAnswer::Lines, &Error::Blocked("the day has blockers".into()), Exit::Found);
        let text = String::from_utf8(printed.lock().unwrap().clone()).unwrap();
        let done: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!((done["event"].as_str(), done["exit_code"].as_u64()), (Some("done"), Some(1)));
        assert_eq!(done["outcome"], "found");
        assert_eq!(done["errors"][0]["message"], "the day has blockers");
    }
}
