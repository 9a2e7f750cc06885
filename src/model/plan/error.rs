//! Plan errors: each names the file, line and column, shows the offending text and a hint.

use std::ops::Range;
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};

/// What kind of rule a plan broke; stable for tests and for `--json` consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanErrorKind {
    /// The file could not be read, or is over the size limit.
    File,
    /// TOML syntax, a wrong type, an unknown key or a missing key.
    Syntax,
    UnknownKey,
    InvalidName,
    RootUser,
    KeepRootWithUser,
    InvalidUser,
    UnknownAfter,
    AfterLaterDay,
    Cycle,
    InvalidPath,
    InvalidDuration,
    InvalidDay,
    InvalidValue,
    /// A `tmpfs` entry: its path, size or mode.
    InvalidTmpfs,
    /// A `security_opt` entry.
    InvalidSecurityOpt,
    TooManyServices,
}

impl PlanErrorKind {
    /// Every kind, for tests that look at each.
    pub const ALL: [PlanErrorKind; 17] = [
        PlanErrorKind::File,
        PlanErrorKind::Syntax,
        PlanErrorKind::UnknownKey,
        PlanErrorKind::InvalidName,
        PlanErrorKind::RootUser,
        PlanErrorKind::KeepRootWithUser,
        PlanErrorKind::InvalidUser,
        PlanErrorKind::UnknownAfter,
        PlanErrorKind::AfterLaterDay,
        PlanErrorKind::Cycle,
        PlanErrorKind::InvalidPath,
        PlanErrorKind::InvalidDuration,
        PlanErrorKind::InvalidDay,
        PlanErrorKind::InvalidValue,
        PlanErrorKind::InvalidTmpfs,
        PlanErrorKind::InvalidSecurityOpt,
        PlanErrorKind::TooManyServices,
    ];

    /// The section of the plan format's documentation (docs/plan.md) that explains the rule.
    pub fn doc_anchor(self) -> &'static str {
        match self {
            PlanErrorKind::File | PlanErrorKind::TooManyServices => "limits",
            PlanErrorKind::Syntax | PlanErrorKind::UnknownKey | PlanErrorKind::InvalidValue => "keys-at-a-glance",
            PlanErrorKind::InvalidName => "servicename",
            PlanErrorKind::RootUser | PlanErrorKind::InvalidUser => "user",
            PlanErrorKind::KeepRootWithUser => "keep_root",
            PlanErrorKind::UnknownAfter | PlanErrorKind::AfterLaterDay | PlanErrorKind::Cycle => "after",
            PlanErrorKind::InvalidPath => "chown",
            PlanErrorKind::InvalidDuration => "durations",
            PlanErrorKind::InvalidDay => "day",
            PlanErrorKind::InvalidTmpfs => "tmpfs",
            PlanErrorKind::InvalidSecurityOpt => "security_opt",
        }
    }
}

/// Where the plan format is documented, in the project.
pub const PLAN_DOC: &str = "docs/plan.md";

/// The section of docs/plan.md that documents each key or table, by its GitHub anchor (the
/// heading lower-cased, spaces as `-`, punctuation but `-` and `_` dropped).
const KEY_ANCHORS: &[(&str, &str)] = &[
    ("rollout", "rollout"),
    ("days", "days"),
    ("service", "servicename"),
    ("name", "name"),
    ("state_dir", "state_dir"),
    ("parallelism", "parallelism"),
    ("on_failure", "on_failure"),
    ("stop_timeout", "stop_timeout"),
    ("health_timeout", "health_timeout"),
    ("stable_for", "stable_for"),
    ("daemon_timeout", "daemon_timeout"),
    ("helper_image", "helper_image"),
    ("ownership", "ownership"),
    ("day", "day"),
    ("user", "user"),
    ("keep_root", "keep_root"),
    ("after", "after"),
    ("chown", "chown"),
    ("health", "health"),
    ("healthcheck", "healthcheck"),
    ("group_add", "group_add"),
    ("env", "env"),
    ("cap_drop", "cap_drop-cap_add"),
    ("cap_add", "cap_drop-cap_add"),
    ("read_only", "read_only"),
    ("no_new_privileges", "no_new_privileges"),
    ("tmpfs", "tmpfs"),
    ("security_opt", "security_opt"),
    ("hardlinks", "hardlinks"),
    ("swarm", "swarm"),
];

/// The anchor of `key`'s section in docs/plan.md; the table of keys for a key it does not
/// document.
pub fn key_anchor(key: &str) -> &'static str {
    KEY_ANCHORS.iter().find(|(k, _)| *k == key).map_or("keys-at-a-glance", |(_, a)| a)
}

/// Every anchor of docs/plan.md a plan error can link.
pub fn doc_anchors() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = PlanErrorKind::ALL.iter().map(|k| k.doc_anchor()).collect();
    all.extend(KEY_ANCHORS.iter().map(|(_, a)| *a));
    all.push(key_anchor("no such key"));
    all.sort_unstable();
    all.dedup();
    all
}

/// The hint as shown: the rule's own words, then where the docs explain it.
fn help_text(hint: Option<&str>, anchor: &str) -> String {
    let doc = format!("{PLAN_DOC}#{anchor}");
    match hint {
        Some(h) => format!("{h} (see {doc})"),
        None => format!("see {doc}"),
    }
}

/// One broken rule of a plan, with its place in the file.
///
/// It has no diagnostic code: miette would print it alone on the report's first line,
/// above the message (`kind` names the rule for programs).
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{location}: {message}")]
pub struct PlanError {
    pub kind: PlanErrorKind,
    /// `file:line:column`, or just the file when the error has no place in it.
    pub location: String,
    pub message: String,
    /// The anchor in docs/plan.md the hint links: the key's section (`user`,
    /// `cap_drop-cap_add`) or the rule's.
    pub doc: &'static str,
    /// The hint without the link.
    hint: Option<String>,
    #[source_code]
    src: NamedSource<Arc<str>>,
    #[label("{label}")]
    span: Option<SourceSpan>,
    label: String,
    #[help]
    pub help: Option<String>,
}

/// The plan file's name and text, used to place errors.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: Arc<str>,
}

impl Source {
    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// An error at `span` in this file.
    pub fn error(
        &self,
        kind: PlanErrorKind,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        label: impl Into<String>,
        help: Option<String>,
    ) -> PlanError {
        let location = match &span {
            Some(r) => {
                let (line, col) = self.line_col(r.start);
                format!("{}:{line}:{col}", self.name)
            }
            None => self.name.clone(),
        };
        let doc = kind.doc_anchor();
        PlanError {
            kind,
            location,
            message: message.into(),
            doc,
            help: Some(help_text(help.as_deref(), doc)),
            hint: help,
            src: NamedSource::new(self.name.clone(), self.text.clone()),
            span: span.map(|r| SourceSpan::from(r.start..r.end.max(r.start))),
            label: label.into(),
        }
    }
}

impl PlanError {
    /// The same error, its hint linking the section of `key` (`cap_add`, `day`, `service`).
    pub fn about(mut self, key: &str) -> PlanError {
        self.doc = key_anchor(key);
        self.help = Some(help_text(self.hint.as_deref(), self.doc));
        self
    }
}

/// Every rule a plan broke, in file order.
#[derive(Debug, thiserror::Error)]
#[error("{} error(s) in the plan", errors.len())]
pub struct PlanErrors {
    pub errors: Vec<PlanError>,
}

impl PlanErrors {
    /// The kinds, in order; handy for tests.
    pub fn kinds(&self) -> Vec<PlanErrorKind> {
        self.errors.iter().map(|e| e.kind).collect()
    }
}

impl From<PlanError> for PlanErrors {
    fn from(e: PlanError) -> Self {
        PlanErrors { errors: vec![e] }
    }
}
