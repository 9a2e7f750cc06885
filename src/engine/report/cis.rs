//! The report's CIS table: per recommendation of [`CIS_EDITION`], how many containers it
//! flags before unroot and now. A container counts once per id, whichever of unroot's
//! rules finds it (a finding counts under the id its [`Finding`] carries: where the
//! benchmark's procedure flags the container too), so each number is the count of the
//! containers' rows that show the id. Pure.
//!
//! [`Finding`]: crate::engine::findings::Finding
//!
//! [`CIS_EDITION`]: crate::engine::findings::CIS_EDITION

use serde::Serialize;

use super::{ContainerReport, FindingRow, Side};
use crate::engine::findings::{RULES, Rule};

#[derive(Debug, Clone, Serialize)]
pub struct CisRow {
    /// The recommendation's id (`None`: a rule of unroot's own, which the benchmark has not).
    pub cis: Option<&'static str>,
    /// The recommendation's title, or the rule's.
    pub title: &'static str,
    /// unroot's rules that find it.
    pub rules: Vec<&'static str>,
    /// Containers it flagged before unroot (as the first run saved them; one no run
    /// touched, as it is now).
    pub before: usize,
    /// Containers it flags now that no documented exception accepts.
    pub now: usize,
    /// Containers it flags now only for what a documented exception accepts.
    pub accepted_now: usize,
}

/// The rules of one row: those of a CIS id, or one rule of unroot's own.
fn groups() -> Vec<Vec<Rule>> {
    let mut out: Vec<Vec<Rule>> = Vec::new();
    for rule in RULES {
        match out.iter_mut().find(|g| rule.cis().is_some() && g[0].cis() == rule.cis()) {
            Some(g) => g.push(rule),
            None => out.push(vec![rule]),
        }
    }
    // The benchmark's ids first, in its order; unroot's own after them.
    out.sort_by_key(|g| g[0].cis().map_or((1, Vec::new()), |id| (0, id_key(id))));
    out
}

/// `5.13` as `[5, 13]`, so `5.4` sorts before `5.13`.
fn id_key(id: &str) -> Vec<u32> {
    id.split('.').filter_map(|n| n.parse().ok()).collect()
}

/// One row per CIS id (and per rule of unroot's own).
pub fn cis(containers: &[ContainerReport]) -> Vec<CisRow> {
    groups()
        .into_iter()
        .map(|rules| {
            let ids: Vec<&'static str> = rules.iter().map(|r| r.id()).collect();
            let cis = rules[0].cis();
            // Under an id: the findings that carry it; unroot's own rule: its findings.
            let counts = |f: &&FindingRow| if cis.is_some() { f.cis == cis } else { ids.contains(&f.rule) };
            let flagged = |side: &Side| side.findings.iter().any(|f| counts(&f));
            let only_accepted =
                |side: &Side| flagged(side) && side.findings.iter().filter(counts).all(|f| f.accepted.is_some());
            CisRow {
                cis,
                title: rules[0].cis_title().unwrap_or(rules[0].short()),
                before: containers.iter().filter(|c| flagged(c.before.as_ref().unwrap_or(&c.now))).count(),
                now: containers.iter().filter(|c| flagged(&c.now) && !only_accepted(&c.now)).count(),
                accepted_now: containers.iter().filter(|c| only_accepted(&c.now)).count(),
                rules: ids,
            }
        })
        .collect()
}
