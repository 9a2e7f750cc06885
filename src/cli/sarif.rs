//! `unroot audit --format sarif`: the audit as a SARIF 2.1.0 log (serde-sarif's model of the
//! format), for CI systems that ingest SARIF. One rule per kind of finding, each with its CIS
//! Docker Benchmark id and how unroot fixes it; one result per container (or Swarm service)
//! and finding. A documented `keep_root` exception is a result too, suppressed with its
//! reason, so an auditor sees it and why it is accepted. Pure: built from the report alone.

use std::collections::BTreeMap;

use serde_json::json;
use serde_sarif::sarif::{
    ArtifactLocation, Location, LogicalLocation, Message, MultiformatMessageString, PhysicalLocation, PropertyBag,
    Region, ReportingConfiguration, ReportingDescriptor, Result as SarifResult, ResultLevel, Run, Sarif, Suppression,
    Tool, ToolComponent,
};

use crate::engine::audit::Report;
use crate::engine::findings::{Finding, RULES, Rule, findings};

/// How severe a result of the rule is, in SARIF's words.
fn level(rule: Rule) -> ResultLevel {
    if rule.is_error() { ResultLevel::Error } else { ResultLevel::Warning }
}

/// The rule as the log's rule list describes it.
fn descriptor(rule: Rule) -> ReportingDescriptor {
    let mut properties = BTreeMap::new();
    properties.insert("cis-docker-benchmark".to_string(), json!(rule.cis()));
    properties.insert("security-severity".to_string(), json!(rule.severity()));
    ReportingDescriptor::builder()
        .id(rule.id())
        .name(rule.name())
        .short_description(MultiformatMessageString::builder().text(rule.short()).build())
        .full_description(
            MultiformatMessageString::builder()
                .text(format!("{} (CIS Docker Benchmark {}).", rule.short(), rule.cis()))
                .build(),
        )
        .help(MultiformatMessageString::builder().text(rule.help()).build())
        .default_configuration(ReportingConfiguration::builder().level(json!(level(rule))).build())
        .properties(
            PropertyBag::builder()
                .tags(vec!["security".to_string(), format!("CIS-{}", rule.cis())])
                .additional_properties(properties)
                .build(),
        )
        .build()
}

/// The line of `[service.NAME]` in a plan's text (1-based).
fn plan_line(text: &str, name: &str) -> Option<i64> {
    let headers = [format!("[service.{name}]"), format!("[service.\"{name}\"]")];
    text.lines().position(|l| headers.iter().any(|h| l.trim() == h)).map(|i| i as i64 + 1)
}

/// Where a finding is: the container or service by name, and the plan's entry for it when a
/// plan was given and names it.
fn location(kind: &str, name: &str, plan: Option<(&str, &str)>) -> Location {
    let logical =
        LogicalLocation::builder().name(name).fully_qualified_name(format!("{kind}/{name}")).kind("resource").build();
    let mut location = Location::builder().logical_locations(vec![logical]).build();
    if let Some((path, text)) = plan {
        let line = plan_line(text, name).unwrap_or(1);
        location.physical_location = Some(
            PhysicalLocation::builder()
                .artifact_location(ArtifactLocation::builder().uri(path).build())
                .region(Region::builder().start_line(line).build())
                .build(),
        );
    }
    location
}

fn result(kind: &str, name: &str, f: Finding, plan: Option<(&str, &str)>) -> SarifResult {
    let rule_index = RULES.iter().position(|r| *r == f.rule).unwrap_or(0) as i64;
    let mut fingerprint = BTreeMap::new();
    fingerprint.insert("unrootFinding/v1".to_string(), format!("{kind}/{name}/{}", f.rule.id()));
    let mut r = SarifResult::builder()
        .rule_id(f.rule.id())
        .rule_index(rule_index)
        .level(level(f.rule))
        .message(Message::builder().text(format!("{kind} {name}: {}", f.text)).build())
        .locations(vec![location(kind, name, plan)])
        .partial_fingerprints(fingerprint)
        .build();
    if let Some(reason) = f.accepted {
        r.suppressions = Some(vec![Suppression::builder().kind(json!("external")).justification(reason).build()]);
    }
    r
}

/// The audit as a SARIF log. `plan` is the plan given with `--plan` (its path as given and
/// its text), whose entries the results point at.
pub fn log(report: &Report, plan: Option<(&str, &str)>) -> Sarif {
    let mut results = Vec::new();
    for e in &report.containers {
        for f in findings(e.class, &e.configured_user, &e.process_uids, &e.flags, e.exception.as_deref()) {
            results.push(result("container", &e.name, f, plan));
        }
    }
    for s in &report.services {
        for f in findings(s.class, &s.configured_user, &s.process_uids, &s.flags, s.exception.as_deref()) {
            results.push(result("service", &s.name, f, plan));
        }
    }
    let driver = ToolComponent::builder()
        .name("unroot")
        .version(env!("CARGO_PKG_VERSION"))
        .rules(RULES.iter().map(|r| descriptor(*r)).collect::<Vec<_>>())
        .build();
    Sarif::builder()
        .schema("https://json.schemastore.org/sarif-2.1.0.json")
        .version(json!("2.1.0"))
        .runs(vec![Run::builder().tool(Tool::builder().driver(driver).build()).results(results).build()])
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_points_at_its_service_in_the_plan() {
        assert_eq!(plan_line("[rollout]\nname = \"x\"\n\n[service.db]\nday = 1\n", "db"), Some(4));
        assert_eq!(plan_line("[service.\"a.b\"]\n", "a.b"), Some(1));
        assert_eq!(level(Rule::RootfsWritable), ResultLevel::Warning);
        assert_eq!(level(Rule::DockerSocket), ResultLevel::Error);
    }
}
