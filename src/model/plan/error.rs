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

/// One broken rule of a plan, with its place in the file.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{location}: {message}")]
#[diagnostic(code(unroot::plan))]
pub struct PlanError {
    pub kind: PlanErrorKind,
    /// `file:line:column`, or just the file when the error has no place in it.
    pub location: String,
    pub message: String,
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
        let doc = format!("{PLAN_DOC}#{}", kind.doc_anchor());
        let help = Some(match help {
            Some(h) => format!("{h} (see {doc})"),
            None => format!("see {doc}"),
        });
        PlanError {
            kind,
            location,
            message: message.into(),
            src: NamedSource::new(self.name.clone(), self.text.clone()),
            span: span.map(|r| SourceSpan::from(r.start..r.end.max(r.start))),
            label: label.into(),
            help,
        }
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
