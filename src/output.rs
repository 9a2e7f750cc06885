//! The only module that writes to stdout: human text or one JSON document per command.
//! Logs and progress go to stderr elsewhere.

use std::io::Write;

use serde::Serialize;

use crate::audit;
use crate::plan::Plan;

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
    /// `unroot check`: what the plan holds.
    pub fn check(&self, plan: &Plan) {
        let days = plan.day_numbers();
        let waves: usize = days.iter().map(|d| plan.graph.waves(*d).len()).sum();
        let exceptions = plan
            .services
            .iter()
            .filter(|s| s.keep_root.is_some())
            .count();
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

    /// `unroot audit`: a table, the summary and any containers that vanished.
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
                    e.process_uids
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                };
                let mut flags = e.flags.join(" ");
                if let Some(n) = &e.note {
                    flags = format!("{flags} [{n}]").trim().to_string();
                }
                if let Some(x) = &e.exception {
                    flags = format!("{flags} [exception: {x}]").trim().to_string();
                }
                vec![
                    e.name.clone(),
                    e.class.as_str().to_string(),
                    user,
                    uids,
                    e.image.clone(),
                    flags,
                ]
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
        print(&out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["A", "BB"],
            &[
                vec!["long".into(), "x".into()],
                vec!["s".into(), "y".into()],
            ],
        );
        assert_eq!(t, "A     BB\nlong  x\ns     y\n");
    }
}
