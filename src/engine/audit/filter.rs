//! `audit --filter KEY=VALUE`, as `docker ps` takes them, plus `project=` (a compose
//! project or a stack).

use std::collections::BTreeMap;

use crate::docker::ContainerRef;
use crate::model::plan::Plan;

/// One `--filter KEY=VALUE` of `audit`, as `docker ps` takes them, plus `project=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `name=TEXT`: the name contains TEXT.
    Name(String),
    /// `label=KEY` or `label=KEY=VALUE`.
    Label(String, Option<String>),
    /// `project=NAME`: the compose project (`com.docker.compose.project`).
    Project(String),
}

impl std::str::FromStr for Filter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (key, value) =
            s.split_once('=').ok_or_else(|| format!("`{s}`: a filter is KEY=VALUE (name=, label=, project=)"))?;
        if value.is_empty() {
            return Err(format!("`{s}`: the filter has no value"));
        }
        match key {
            "name" => Ok(Filter::Name(value.to_string())),
            "label" => Ok(match value.split_once('=') {
                Some((k, v)) => Filter::Label(k.to_string(), Some(v.to_string())),
                None => Filter::Label(value.to_string(), None),
            }),
            "project" => Ok(Filter::Project(value.to_string())),
            other => Err(format!("`{other}` is not a filter; use name=, label= or project=")),
        }
    }
}

impl std::fmt::Display for Filter {
    /// As it was given: `name=db`, `label=tier=data`, `project=shop`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Filter::Name(n) => write!(f, "name={n}"),
            Filter::Label(k, Some(v)) => write!(f, "label={k}={v}"),
            Filter::Label(k, None) => write!(f, "label={k}"),
            Filter::Project(p) => write!(f, "project={p}"),
        }
    }
}

/// What an audit looks at: what the filters match (as `docker ps` takes them), and with
/// `planned` also every container or service that plan names, whatever the filters say (a
/// report covers its plan whole).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub filters: &'a [Filter],
    pub planned: Option<&'a Plan>,
}

impl<'a> Scope<'a> {
    /// What the filters match (everything when there are none).
    pub fn filtered(filters: &'a [Filter]) -> Scope<'a> {
        Scope { filters, planned: None }
    }

    /// Whether the container or service called `name`, with `labels`, is in scope.
    pub fn admits(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        Filter::all_match_named(self.filters, name, labels) || self.planned.is_some_and(|p| p.service(name).is_some())
    }
}

impl Filter {
    fn key(&self) -> u8 {
        match self {
            Filter::Name(_) => 0,
            Filter::Label(..) => 1,
            Filter::Project(_) => 2,
        }
    }

    /// `project=` is a compose project or a stack (`com.docker.stack.namespace`).
    fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Filter::Name(n) => name.contains(n.as_str()),
            Filter::Label(k, v) => labels.get(k).is_some_and(|have| v.as_ref().is_none_or(|v| v == have)),
            Filter::Project(p) => {
                labels.get("com.docker.compose.project") == Some(p)
                    || labels.get("com.docker.stack.namespace") == Some(p)
            }
        }
    }

    /// As `docker ps`: filters of one key match when any does (`name=a --filter name=b`),
    /// label filters all must, and different keys all must.
    pub fn all_match(filters: &[Filter], c: &ContainerRef) -> bool {
        Filter::all_match_named(filters, &c.name, &c.labels)
    }

    /// [`Filter::all_match`] for anything with a name and labels (a Swarm service).
    pub fn all_match_named(filters: &[Filter], name: &str, labels: &BTreeMap<String, String>) -> bool {
        let labels_ok = filters.iter().filter(|f| f.key() == 1).all(|f| f.matches(name, labels));
        let any_of = |key: u8| {
            let of_key: Vec<&Filter> = filters.iter().filter(|f| f.key() == key).collect();
            of_key.is_empty() || of_key.iter().any(|f| f.matches(name, labels))
        };
        labels_ok && any_of(0) && any_of(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_as_docker_ps_takes_them() {
        let c = ContainerRef {
            name: "shop-db-1".into(),
            labels: [("com.docker.compose.project", "shop"), ("tier", "data")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..ContainerRef::default()
        };
        let f = |s: &str| s.parse::<Filter>().unwrap();
        assert!(Filter::all_match(&[], &c));
        assert!(Filter::all_match(&[f("project=shop")], &c));
        assert!(!Filter::all_match(&[f("project=blog")], &c));
        assert!(Filter::all_match(&[f("name=db"), f("name=cache")], &c), "one name of several");
        assert!(Filter::all_match(&[f("label=tier"), f("label=tier=data")], &c));
        assert!(!Filter::all_match(&[f("label=tier=web")], &c));
        assert!(!Filter::all_match(&[f("name=db"), f("project=blog")], &c), "every key must match");
        assert!("state=running".parse::<Filter>().unwrap_err().contains("not a filter"));
        assert!("name".parse::<Filter>().is_err());
    }
}
