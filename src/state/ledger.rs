//! The ledger: what the runs of a plan left each service as, by day.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{StateError, load_json, now_rfc3339, write_private};

/// What the runs of a plan left each service as, by day (SPEC §5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub plan: String,
    /// Day number (as text, for JSON) → what the commits of that day recorded.
    pub days: BTreeMap<String, AppliedDay>,
}

/// The commits of one day. Runs add up: each commit adds or updates the records of the
/// services it handled and keeps the others'.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedDay {
    /// The run that committed on this day last.
    pub run: String,
    pub committed: String,
    /// What each service was left as, by the run that last handled it.
    pub services: BTreeMap<String, ServiceRecord>,
}

/// What a run left a service as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceState {
    /// Recreated as planned and committed.
    Migrated,
    /// On its original: `rollback-service` restored it, or `rollback` undid it.
    Original,
}

/// One service of a day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub state: ServiceState,
    /// The run that left it so (ledgers written before this field: the day's run).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<crate::model::compose::ComposeRef>,
    /// The stack of a Swarm service that `docker stack deploy` made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<crate::model::compose::StackRef>,
    /// What the compose override sets for it (from the plan and the resolved user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<crate::model::compose::ServiceOverride>,
}

/// Why a service of an earlier day keeps its day open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenService {
    pub name: String,
    pub day: u32,
    /// The run that left it on its original, when one did.
    pub left_original_by: Option<String>,
}

impl std::fmt::Display for OpenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.left_original_by {
            Some(run) => write!(f, "{} (day {}) is on its original since run {run}", self.name, self.day),
            None => write!(f, "{} (day {}) is not migrated yet", self.name, self.day),
        }
    }
}

impl Ledger {
    pub fn path(plan_dir: &Path) -> PathBuf {
        plan_dir.join("ledger.json")
    }

    /// The ledger of a plan folder; empty when none was written yet.
    pub fn load(plan_dir: &Path, plan: &str) -> Result<Ledger, StateError> {
        let mut ledger: Ledger = load_json(&Ledger::path(plan_dir))?
            .unwrap_or_else(|| Ledger { plan: plan.to_string(), days: BTreeMap::new() });
        for day in ledger.days.values_mut() {
            for rec in day.services.values_mut().filter(|r| r.run.is_empty()) {
                rec.run = day.run.clone();
            }
        }
        Ok(ledger)
    }

    /// Writes the ledger by temp file, fsync and rename.
    pub fn save(&self, plan_dir: &Path) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(self).expect("ledger serializes");
        write_private(&Ledger::path(plan_dir), &bytes)
    }

    /// The record of a service, whatever day it was handled on (a migrated record wins).
    pub fn service(&self, name: &str) -> Option<&ServiceRecord> {
        let mut found = None;
        for day in self.days.values() {
            if let Some(r) = day.services.get(name) {
                if r.state == ServiceState::Migrated {
                    return Some(r);
                }
                found = Some(r);
            }
        }
        found
    }

    /// Whether `service` of `plan` no longer holds its day open: migrated, or left on its
    /// original while the plan now documents it as an exception.
    pub fn is_done(&self, plan: &crate::model::plan::Plan, service: &str) -> bool {
        match self.service(service) {
            Some(r) if r.state == ServiceState::Migrated => true,
            Some(_) => plan.service(service).is_some_and(|s| s.keep_root.is_some()),
            None => false,
        }
    }

    /// The services of `day` in `plan` that keep it open; empty when the day is applied.
    pub fn open_services(&self, plan: &crate::model::plan::Plan, day: u32) -> Vec<OpenService> {
        plan.services
            .iter()
            .filter(|s| s.day == day && !self.is_done(plan, &s.name))
            .map(|s| OpenService {
                name: s.name.clone(),
                day,
                left_original_by: self.service(&s.name).map(|r| r.run.clone()),
            })
            .collect()
    }

    /// Records a commit of `day` by `run`: adds or replaces the records of the services it
    /// handled, keeps every other record of the day.
    pub fn record_commit(&mut self, day: u32, run: &str, services: BTreeMap<String, ServiceRecord>) {
        let now = now_rfc3339();
        let entry = self.days.entry(day.to_string()).or_insert_with(|| AppliedDay {
            run: run.to_string(),
            committed: now.clone(),
            services: BTreeMap::new(),
        });
        entry.run = run.to_string();
        entry.committed = now;
        entry
            .services
            .extend(services.into_iter().map(|(name, rec)| (name, ServiceRecord { run: run.to_string(), ..rec })));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::file_mode as mode;
    use std::fs;

    fn record(state: ServiceState) -> ServiceRecord {
        ServiceRecord { state, run: String::new(), compose: None, stack: None, settings: None }
    }

    #[test]
    fn runs_of_one_day_add_up_and_a_service_left_original_keeps_it_open() {
        let plan = crate::model::plan::Plan::parse(
            "t.toml",
            "[rollout]\nname='p'\n[service.a]\nday=1\nuser='1'\n[service.b]\nday=1\nuser='1'\n[service.c]\nday=2\nuser='1'\n",
        )
        .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let mut l = Ledger::load(tmp.path(), "p").unwrap();
        assert_eq!(l.open_services(&plan, 1).len(), 2);
        l.record_commit(1, "r1", BTreeMap::from([("a".into(), record(ServiceState::Migrated))]));
        let open = l.open_services(&plan, 1);
        assert_eq!(open.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["b"], "an --only run is not the day");
        l.record_commit(1, "r2", BTreeMap::from([("b".into(), record(ServiceState::Original))]));
        assert_eq!(l.days["1"].services["a"].state, ServiceState::Migrated, "a later run keeps a's record");
        assert_eq!(l.open_services(&plan, 1)[0].to_string(), "b (day 1) is on its original since run r2");
        l.record_commit(1, "r3", BTreeMap::from([("b".into(), record(ServiceState::Migrated))]));
        assert!(l.open_services(&plan, 1).is_empty());
        l.save(tmp.path()).unwrap();
        let back = Ledger::load(tmp.path(), "p").unwrap();
        assert!(back.open_services(&plan, 1).is_empty());
        assert_eq!(back.days["1"].services["a"].run, "r1");
        assert_eq!(mode(&Ledger::path(tmp.path())), 0o600);
    }

    #[test]
    fn a_ledger_of_the_earlier_format_loads() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(
            Ledger::path(tmp.path()),
            r#"{"plan":"p","days":{"1":{"run":"day1-x","committed":"t","services":{"a":{"state":"migrated"}}}}}"#,
        )
        .unwrap();
        let l = Ledger::load(tmp.path(), "p").unwrap();
        assert_eq!(l.days["1"].services["a"].run, "day1-x");
        assert_eq!(l.service("a").unwrap().state, ServiceState::Migrated);
    }
}
