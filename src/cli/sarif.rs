//! `unroot audit --format sarif`: the audit as a SARIF 2.1.0 log (serde-sarif's model of the
//! format), for CI systems that ingest SARIF. One rule per kind of finding, each with its CIS
//! Docker Benchmark id (of the edition [`CIS_EDITION`] names, also a taxonomy of the run)
//! and how unroot fixes it; one result per container (or Swarm service)
//! and finding. A documented `keep_root` exception is a result too, suppressed with its
//! reason, so an auditor sees it and why it is accepted. Pure: built from the report alone.

use std::collections::BTreeMap;

use serde_json::json;
use serde_sarif::sarif::{
    ArtifactLocation, Location, LogicalLocation, Message, MultiformatMessageString, PhysicalLocation, PropertyBag,
    Region, ReportingConfiguration, ReportingDescriptor, ReportingDescriptorReference, ReportingDescriptorRelationship,
    Result as SarifResult, ResultLevel, Run, Sarif, Suppression, Tool, ToolComponent, ToolComponentReference,
};

use crate::engine::audit::Report;
use crate::engine::findings::{CIS_BENCHMARK, CIS_EDITION, CIS_VERSION, Finding, RULES, Rule, findings};

/// How severe a result of the rule is, in SARIF's words.
fn level(rule: Rule) -> ResultLevel {
    if rule.is_error() { ResultLevel::Error } else { ResultLevel::Warning }
}

/// The rule as the log's rule list describes it: its CIS id, with the edition, in its
/// properties, its tags and its description, and as a relationship to the edition's
/// taxonomy (unroot's own rules have none).
fn descriptor(rule: Rule) -> ReportingDescriptor {
    let mut properties = BTreeMap::new();
    let mut tags = vec!["security".to_string()];
    let mut full = format!("{}.", rule.short());
    let mut relationships = Vec::new();
    if let (Some(id), Some(title)) = (rule.cis(), rule.cis_title()) {
        properties.insert("cis-docker-benchmark".to_string(), json!(id));
        properties.insert("cis-docker-benchmark-edition".to_string(), json!(CIS_EDITION));
        tags.push(format!("CIS-{id}"));
        full = format!("{} ({CIS_EDITION} {id}: {title}).", rule.short());
        let target = ReportingDescriptorReference::builder()
            .id(id)
            .tool_component(ToolComponentReference::builder().name(CIS_BENCHMARK).build())
            .build();
        relationships.push(
            ReportingDescriptorRelationship::builder().target(target).kinds(vec!["relevant".to_string()]).build(),
        );
    }
    properties.insert("security-severity".to_string(), json!(rule.severity()));
    let mut d = ReportingDescriptor::builder()
        .id(rule.id())
        .name(rule.name())
        .short_description(MultiformatMessageString::builder().text(rule.short()).build())
        .full_description(MultiformatMessageString::builder().text(full).build())
        .help(MultiformatMessageString::builder().text(rule.help()).build())
        .default_configuration(ReportingConfiguration::builder().level(json!(level(rule))).build())
        .properties(PropertyBag::builder().tags(tags).additional_properties(properties).build())
        .build();
    if !relationships.is_empty() {
        d.relationships = Some(relationships);
    }
    d
}

/// The benchmark edition as a SARIF taxonomy: one taxon per recommendation the rules name.
fn taxonomy() -> ToolComponent {
    let mut ids: Vec<(&str, &str)> = RULES.iter().filter_map(|r| Some((r.cis()?, r.cis_title()?))).collect();
    ids.dedup();
    let taxa: Vec<ReportingDescriptor> = ids
        .into_iter()
        .map(|(id, title)| {
            ReportingDescriptor::builder()
                .id(id)
                .short_description(MultiformatMessageString::builder().text(title).build())
                .build()
        })
        .collect();
    ToolComponent::builder().name(CIS_BENCHMARK).version(CIS_VERSION).full_name(CIS_EDITION).taxa(taxa).build()
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
    if let Some(id) = f.cis {
        let mut properties = BTreeMap::new();
        properties.insert("cis-docker-benchmark".to_string(), json!(id));
        r.properties = Some(PropertyBag::builder().additional_properties(properties).build());
        let taxon = ReportingDescriptorReference::builder()
            .id(id)
            .tool_component(ToolComponentReference::builder().name(CIS_BENCHMARK).build())
            .build();
        r.taxa = Some(vec![taxon]);
    }
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
    let mut edition = BTreeMap::new();
    edition.insert("cis-docker-benchmark-edition".to_string(), json!(CIS_EDITION));
    let driver = ToolComponent::builder()
        .name("unroot")
        .version(env!("CARGO_PKG_VERSION"))
        .rules(RULES.iter().map(|r| descriptor(*r)).collect::<Vec<_>>())
        .supported_taxonomies(vec![ToolComponentReference::builder().name(CIS_BENCHMARK).build()])
        .properties(PropertyBag::builder().additional_properties(edition).build())
        .build();
    Sarif::builder()
        .schema("https://json.schemastore.org/sarif-2.1.0.json")
        .version(json!("2.1.0"))
        .runs(vec![
            Run::builder()
                .tool(Tool::builder().driver(driver).build())
                .taxonomies(vec![taxonomy()])
                .results(results)
                .build(),
        ])
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
