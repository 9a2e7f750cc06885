//! The generated plan as TOML text, every decision preceded by a comment saying what it
//! rests on.

use std::fmt::Write;

use super::decide::{Decision, Health, InitPlan, Placement};

/// A TOML string literal.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key: bare where it may be, quoted otherwise (container names may hold dots).
fn key(s: &str) -> String {
    let bare = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { s.to_string() } else { quote(s) }
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|i| quote(i)).collect::<Vec<_>>().join(", "))
}

/// One comment line (a newline in the text would end the comment).
fn comment(out: &mut String, text: &str) {
    let _ = writeln!(out, "# {}", text.replace(['\n', '\r'], " "));
}

/// The plan as TOML, valid for `unroot check`.
pub fn toml(plan: &InitPlan) -> String {
    let mut out = String::new();
    comment(
        &mut out,
        "Written by `unroot init` from what the Docker daemon shows. Every decision says what it rests on:",
    );
    comment(&mut out, "review them, then run `unroot check` on this file and `unroot plan FILE --day 1`.");
    for l in &plan.left_out {
        comment(&mut out, &format!("left out: {} ({})", l.name, l.why));
    }
    let _ = writeln!(out, "\n[rollout]\nname = {}", quote(&plan.name));
    if !plan.days.is_empty() {
        out.push_str("\n[days]\n");
        for (day, title) in &plan.days {
            let _ = writeln!(out, "{day} = {}", quote(title));
        }
    }
    for d in &plan.services {
        out.push('\n');
        match d.placement {
            Placement::Unplaced => unplaced(&mut out, d),
            _ => service(&mut out, d),
        }
    }
    out
}

fn service(out: &mut String, d: &Decision) {
    let profile = match &d.profile {
        Some(p) => format!("profile {} ({})", p.key, p.source),
        None => "no profile".to_string(),
    };
    comment(out, &format!("{}: image {}, {profile}; {} now", d.name, d.image, d.class.as_str()));
    let _ = writeln!(out, "[service.{}]", key(&d.name));
    comment(out, &format!("{} ({})", d.kind.value.title(), d.kind.because));
    let _ = writeln!(out, "day = {}", d.day);
    if let Some(u) = &d.user {
        comment(out, &u.because);
        let _ = writeln!(out, "user = {}", quote(&u.value));
        comment(out, &d.chown.because);
        for n in &d.not_reowned {
            comment(out, &format!("not re-owned: {n}"));
        }
        let _ = writeln!(out, "chown = {}", list(&d.chown.value));
    }
    if let (Some(reason), Some(c)) = (&d.keep_root, &d.controls) {
        comment(out, "stays root: an exception, with compensating controls");
        let _ = writeln!(out, "keep_root = {}", quote(reason));
        let _ = writeln!(out, "cap_drop = {}", list(&c.cap_drop));
        if !c.cap_add.is_empty() {
            comment(out, "the capabilities it already had added");
            let _ = writeln!(out, "cap_add = {}", list(&c.cap_add));
        }
        comment(out, &c.read_only.because);
        match c.read_only.value {
            Some(ro) => {
                let _ = writeln!(out, "read_only = {ro}");
            }
            None => comment(out, "read_only = true  (set it once its writes go to mounts or tmpfs)"),
        }
        let _ = writeln!(out, "no_new_privileges = {}", c.no_new_privileges);
    }
    comment(out, &d.health.because);
    let _ = match &d.health.value {
        Health::Docker => writeln!(out, "health = \"docker\""),
        Health::Running => writeln!(out, "health = \"running\""),
        Health::Exec { command } => writeln!(out, "health = {{ exec = {} }}", list(command)),
    };
    if let Some(h) = &d.healthcheck {
        comment(out, &h.because);
        let _ = writeln!(out, "healthcheck = {}", list(&h.value));
    }
    if let Some(s) = &d.stable_for {
        let _ = writeln!(out, "stable_for = {}", quote(s));
    }
    if !d.after.is_empty() {
        comment(out, &d.after.iter().map(|a| a.because.as_str()).collect::<Vec<_>>().join("; "));
        let names: Vec<String> = d.after.iter().map(|a| a.value.clone()).collect();
        let _ = writeln!(out, "after = {}", list(&names));
    }
    if !d.tmpfs.is_empty() {
        for t in &d.tmpfs {
            comment(out, &format!("tmpfs {}: {}", t.value, t.because));
        }
        let paths: Vec<String> = d.tmpfs.iter().map(|t| t.value.clone()).collect();
        let _ = writeln!(out, "tmpfs = {}", list(&paths));
    }
    if !d.env.is_empty() {
        for (k, v) in &d.env {
            comment(out, &format!("{k}: {}", v.because));
        }
        let pairs: Vec<String> = d.env.iter().map(|(k, v)| format!("{} = {}", key(k), quote(&v.value))).collect();
        let _ = writeln!(out, "env = {{ {} }}", pairs.join(", "));
    }
    for g in &d.gotchas {
        comment(out, &format!("gotcha: {g}"));
    }
    for w in &d.warnings {
        comment(out, &format!("WARNING: {w}"));
    }
    for b in &d.blockers {
        comment(out, &format!("BLOCKED: {b}; this day stays refused until that is fixed, and no other waits for it"));
    }
}

fn unplaced(out: &mut String, d: &Decision) {
    comment(
        out,
        &format!("{}: image {}; init cannot place it: {}", d.name, d.image, d.unplaced.as_deref().unwrap_or("")),
    );
    comment(out, &format!("[service.{}]", key(&d.name)));
    comment(out, "day = ?");
    comment(out, "user = \"?\"");
}
