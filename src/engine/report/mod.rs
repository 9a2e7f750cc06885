//! `unroot report PLAN`: the evidence an auditor asks for, in one document. For every
//! container (and Swarm service) on the daemon, before (the original the first run of this
//! plan saved) and now; per day when it was applied and by which run, each service's
//! downtime from the journal's timestamps, the rollbacks and why; each exception with its
//! reason and controls; `verify`'s verdict; every finding with its CIS Docker Benchmark id.
//!
//! [`gather`] reads (the daemon, the state directory) and changes nothing; [`build`] is a
//! pure function of what was read, so the rules are tested without a daemon. No environment
//! value gets into a report: free text from journals and Docker is redacted with every value
//! of the containers' (before and now) and the plan's environments.

mod cis;
mod days;
mod gather;
pub mod history;
mod provenance;

pub use cis::CisRow;
pub use days::{DayReport, DayStatus, DayVerify, VerifyReport};
pub use gather::gather;
pub use provenance::{Daemon, PlanFile, Provenance, RunRead};

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::audit::{Class, Controls, Flag, Flags, Missing, Posture, classify};
use crate::engine::findings::findings;
use crate::engine::redact::{env_values, is_long, redact};
use crate::model::plan::{Plan, Service};
use crate::model::user::Accounts;
use crate::state::{Ledger, ServiceState};
pub use history::RunHistory;

/// The whole report: what `--format json` prints, and what Markdown and HTML render.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The rollout's name.
    pub rollout: String,
    /// The plan file as given.
    pub plan: String,
    /// When the report was made (RFC 3339, UTC).
    pub generated: String,
    /// The filters that chose the containers, as given (none: every container on the
    /// daemon); every container and service the plan names is listed whatever they say.
    pub filters: Vec<String>,
    /// Where it comes from: the daemon, the host, unroot, the plan file, the runs read.
    pub provenance: Provenance,
    pub summary: Summary,
    /// Each CIS id (and rule of unroot's own) with how many containers it flags before and
    /// now.
    pub cis: Vec<CisRow>,
    pub containers: Vec<ContainerReport>,
    pub days: Vec<DayReport>,
    pub exceptions: Vec<ExceptionReport>,
    pub verify: VerifyReport,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub containers: usize,
    /// Running as root before unroot, and now (documented exceptions included).
    pub root_before: usize,
    pub root_now: usize,
    /// Migrated by a run of this plan and still so.
    pub migrated: usize,
    pub exceptions: usize,
    pub rollbacks: usize,
    /// Sum of every service's downtime over every run.
    pub downtime_seconds: f64,
}

/// Whether something is a container or a Swarm service.
pub use crate::model::workload::WorkloadKind as Kind;

/// Where a container stands with respect to the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standing {
    /// The plan does not name it.
    NotPlanned,
    /// Planned; no run has committed it yet.
    Pending,
    Migrated,
    /// A run left it on its original (rolled back).
    Original,
    /// A run that has not ended (interrupted, or being worked on) holds it.
    Open,
    /// A documented `keep_root` exception.
    Exception,
}

/// One side (before or now) of a container.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub class: Class,
    #[serde(flatten)]
    pub posture: Posture,
    /// The uids its processes ran as (`None`: not recorded).
    pub process_uids: Option<Vec<u32>>,
    pub findings: Vec<FindingRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingRow {
    pub rule: &'static str,
    pub cis: Option<&'static str>,
    pub title: &'static str,
    pub text: String,
    /// The exception's reason when the plan accepts it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContainerReport {
    pub name: String,
    pub kind: Kind,
    pub image: String,
    /// The day the plan migrates it on.
    pub day: Option<u32>,
    pub standing: Standing,
    /// As the first run that touched it saved it (`None`: no run of this plan touched it,
    /// so it is as it was).
    pub before: Option<Side>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_run: Option<String>,
    pub now: Side,
}

#[derive(Debug, Clone, Serialize)]
pub struct ControlState {
    /// As the plan writes it: `cap_drop ALL`, `read_only`, `no_new_privileges`.
    pub control: String,
    pub in_place: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExceptionReport {
    pub name: String,
    pub day: u32,
    pub reason: String,
    pub controls: Vec<ControlState>,
    /// It runs on the daemon now.
    pub present: bool,
    pub process_uids: Vec<u32>,
}

/// What the first run that touched a service saved of it.
#[derive(Debug, Clone)]
pub struct Original {
    pub run: String,
    pub inspect: crate::docker::Original,
    /// The uids its processes ran as, as the run's inspect step recorded them.
    pub process_uids: Option<Vec<u32>>,
}

/// A container or service as the audit saw it now, with its configuration.
#[derive(Debug, Clone)]
pub struct Now {
    pub kind: Kind,
    pub image: String,
    pub class: Class,
    pub configured_uid: Option<u32>,
    pub process_uids: Vec<u32>,
    /// The audit's flags (controls missing included).
    pub flags: Flags,
    pub exception: Option<String>,
    pub posture: Posture,
}

/// What a container of a `keep_root` exception is configured and runs as now
/// (it is in the report's scope whatever `--filter` says).
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub posture: Posture,
    pub process_uids: Vec<u32>,
}

/// Environment values to keep out of every text: long ones wherever they appear, and each
/// service's own (short ones too, as words) in what is said of that service.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub everywhere: Vec<String>,
    pub by_service: BTreeMap<String, Vec<String>>,
}

impl Secrets {
    /// Adds the `KEY=VALUE` entries of `service`'s environment.
    pub fn add(&mut self, service: &str, env: &[String]) {
        let values = env_values(env);
        self.everywhere.extend(values.iter().filter(|v| is_long(v)).cloned());
        let own = self.by_service.entry(service.to_string()).or_default();
        own.extend(values);
    }

    /// Sorted longest first, without repeats (a value inside another is replaced after it).
    fn settle(&mut self) {
        for list in std::iter::once(&mut self.everywhere).chain(self.by_service.values_mut()) {
            list.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
            list.dedup();
        }
    }

    /// `text` without any value of the environments, said of `services`.
    pub fn clean<'s>(&self, text: &str, services: impl IntoIterator<Item = &'s str>) -> String {
        let mut out = redact(text, &self.everywhere);
        for s in services {
            if let Some(own) = self.by_service.get(s) {
                out = redact(&out, own);
            }
        }
        out
    }
}

/// Everything a report is made of, as read.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub plan: &'a Plan,
    pub generated: String,
    /// The filters as given.
    pub filters: Vec<String>,
    pub provenance: Provenance,
    pub now: BTreeMap<(Kind, String), Now>,
    /// The exceptions' containers as they are now, by name.
    pub exceptions: BTreeMap<String, Seen>,
    pub originals: BTreeMap<String, Original>,
    pub ledger: Ledger,
    /// Oldest first, their errors redacted.
    pub runs: Vec<RunHistory>,
    pub verify: VerifyReport,
}

/// The planned controls of `s` with whether `have` has each.
fn controls(s: &Service, have: &Posture) -> Vec<ControlState> {
    let have = Controls {
        cap_drop: have.cap_drop.clone(),
        cap_add: have.cap_add.clone(),
        read_only: have.read_only,
        no_new_privileges: have.no_new_privileges,
        tmpfs: None,
        security_opt: None,
    };
    let missing = have.missing(s);
    let mut out: Vec<ControlState> = Vec::new();
    let mut add = |control: String, m: Missing| out.push(ControlState { in_place: !missing.contains(&m), control });
    for cap in &s.cap_drop {
        add(format!("cap_drop {cap}"), Missing::CapDrop(cap.clone()));
    }
    for cap in &s.cap_add {
        add(format!("cap_add {cap}"), Missing::CapAdd(cap.clone()));
    }
    if s.read_only == Some(true) {
        add("read_only".into(), Missing::ReadOnly);
    }
    if s.no_new_privileges == Some(true) {
        add("no_new_privileges".into(), Missing::NoNewPrivileges);
    }
    out
}

/// The findings of one side, from its class, posture, uids and flags.
fn rows(class: Class, p: &Posture, uids: &[u32], flags: &[Flag], exception: Option<&str>) -> Vec<FindingRow> {
    findings(class, &p.configured_user, uids, flags, exception)
        .into_iter()
        .map(|f| FindingRow {
            rule: f.rule.id(),
            cis: f.cis,
            title: f.rule.short(),
            text: f.text,
            accepted: f.accepted,
        })
        .collect()
}

/// The before side from a saved original.
fn before_side(o: &Original, now: &Now) -> Side {
    let posture = match &o.inspect {
        crate::docker::Original::Service(s) => Posture::of_service(s),
        crate::docker::Original::Container(c) => Posture::of_container(c),
    };
    // The configured user as a number: root and numbers without the image; a name the same
    // as now's takes now's resolution.
    let configured_uid =
        match crate::model::user::configured(&posture.configured_user) {
            None => Some(0),
            Some(spec) => Accounts::default()
                .uid_of(&spec)
                .or(if posture.configured_user == now.posture.configured_user { now.configured_uid } else { None }),
        };
    let uids = o.process_uids.clone().unwrap_or_default();
    let class = classify(false, configured_uid.map(|u| u == 0), &uids);
    Side {
        class,
        findings: rows(class, &posture, &uids, &posture.flags(), None),
        posture,
        process_uids: o.process_uids.clone(),
    }
}

fn now_side(n: &Now) -> Side {
    Side {
        class: n.class,
        findings: rows(n.class, &n.posture, &n.process_uids, &n.flags, n.exception.as_deref()),
        posture: n.posture.clone(),
        process_uids: Some(n.process_uids.clone()),
    }
}

/// Where `name` stands: the ledger's record when it is migrated, else what the last run
/// that touched it left it as.
fn standing(plan: &Plan, ledger: &Ledger, runs: &[RunHistory], name: &str) -> Standing {
    let Some(s) = plan.service(name) else { return Standing::NotPlanned };
    if s.keep_root.is_some() {
        return Standing::Exception;
    }
    let recorded = ledger.service(name).map(|r| r.state);
    if recorded == Some(ServiceState::Migrated) {
        return Standing::Migrated;
    }
    let last = runs.iter().rev().find_map(|r| Some((r, r.services.iter().find(|s| s.name == name && s.touched)?)));
    match (last, recorded) {
        (Some((r, s)), _) if r.state.is_open() && s.outcome != history::Outcome::Original => Standing::Open,
        (Some(_), _) | (None, Some(ServiceState::Original)) => Standing::Original,
        (None, _) => Standing::Pending,
    }
}

/// The report from what was read. Pure.
pub fn build(mut i: Inputs<'_>) -> Report {
    i.runs = days::with_exceptions(i.plan, std::mem::take(&mut i.runs));
    let containers = containers(&i);
    let exceptions = exceptions(&i);
    let cis = cis::cis(&containers);
    let summary = summary(&containers, &exceptions, &i.runs);
    Report {
        rollout: i.plan.rollout.name.clone(),
        plan: i.plan.source.name.clone(),
        generated: i.generated,
        filters: i.filters,
        provenance: i.provenance,
        summary,
        cis,
        days: days::days(i.plan, &i.ledger, &i.runs),
        containers,
        exceptions,
        verify: i.verify,
    }
}

/// Each container and service seen now, with its original's side when a run saved one.
fn containers(i: &Inputs<'_>) -> Vec<ContainerReport> {
    let mut containers = Vec::new();
    for ((kind, name), n) in &i.now {
        // The original of this very container or service (a name both hold is a blocker).
        let original = i.originals.get(name).filter(|o| o.inspect.kind() == *kind);
        containers.push(ContainerReport {
            name: name.clone(),
            kind: *kind,
            image: n.image.clone(),
            day: i.plan.service(name).map(|s| s.day),
            standing: standing(i.plan, &i.ledger, &i.runs, name),
            before: original.map(|o| before_side(o, n)),
            before_run: original.map(|o| o.run.clone()),
            now: now_side(n),
        });
    }
    containers
}

/// Each `keep_root` exception of the plan, with its controls as it has them now.
fn exceptions(i: &Inputs<'_>) -> Vec<ExceptionReport> {
    i.plan
        .services
        .iter()
        .filter_map(|s| {
            let reason = s.keep_root.clone()?;
            let seen = i.exceptions.get(&s.name);
            Some(ExceptionReport {
                name: s.name.clone(),
                day: s.day,
                reason,
                controls: controls(s, &seen.cloned().unwrap_or_default().posture),
                present: seen.is_some(),
                process_uids: seen.map(|n| n.process_uids.clone()).unwrap_or_default(),
            })
        })
        .collect()
}

/// The counts of the summary.
fn summary(containers: &[ContainerReport], exceptions: &[ExceptionReport], runs: &[RunHistory]) -> Summary {
    // Root whether or not an exception documents it: the exceptions are counted apart.
    let root = |c: &ContainerReport, side: Option<&Side>| {
        matches!(side.unwrap_or(&c.now).class, Class::Root | Class::Exception)
    };
    Summary {
        containers: containers.len(),
        root_before: containers.iter().filter(|c| root(c, c.before.as_ref())).count(),
        root_now: containers.iter().filter(|c| root(c, None)).count(),
        migrated: containers.iter().filter(|c| c.standing == Standing::Migrated).count(),
        exceptions: exceptions.len(),
        rollbacks: runs.iter().map(|r| r.rollbacks.len()).sum(),
        downtime_seconds: runs.iter().flat_map(|r| &r.services).map(|s| s.downtime_seconds).sum(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
