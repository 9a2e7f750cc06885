//! The report's days: each day's status, the services that keep a partly applied day open,
//! its runs, and `verify`'s verdict for every day a run committed. Pure.

use serde::Serialize;

use super::history::{Outcome, RunHistory};
use crate::engine::verify::Verdict;
use crate::model::plan::Plan;
use crate::state::{Ledger, ServiceState};

/// Whether a day's services are all migrated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DayStatus {
    Applied,
    PartlyApplied,
    NotApplied,
}

#[derive(Debug, Clone, Serialize)]
pub struct DayReport {
    pub day: u32,
    /// The plan has this day (a run of a day the plan no longer has is still reported).
    pub in_plan: bool,
    pub services: Vec<String>,
    pub status: DayStatus,
    /// The services that keep a committed day from being applied (on their original, or
    /// never reached); empty unless the day is partly applied.
    pub open: Vec<String>,
    /// When the day's last commit was, and by which run.
    pub committed: Option<String>,
    pub committed_by: Option<String>,
    pub runs: Vec<RunHistory>,
}

/// `verify`'s verdict for one day a run committed.
#[derive(Debug, Clone, Serialize)]
pub struct DayVerify {
    pub day: u32,
    /// Every service of the day passed (`None`: not checked, the plan no longer has the day).
    pub ok: Option<bool>,
    pub services: Vec<Verdict>,
}

/// `verify`'s verdicts: every day a run committed (applied or partly applied), each apart.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub days: Vec<DayVerify>,
    /// Every day checked passed (`None`: no day was checked).
    pub ok: Option<bool>,
}

impl VerifyReport {
    /// The verdicts of `verify` through the last of `days` the plan has, each day's services
    /// apart; a day the plan no longer has is listed, not checked.
    pub fn of(plan: &Plan, days: &[u32], verdicts: Vec<Verdict>) -> VerifyReport {
        let in_plan = plan.day_numbers();
        let mut out: Vec<DayVerify> = days
            .iter()
            .map(|d| DayVerify { day: *d, ok: in_plan.contains(d).then_some(true), services: Vec::new() })
            .collect();
        for v in verdicts {
            let Some(day) = plan.service(&v.name).map(|s| s.day) else { continue };
            if let Some(d) = out.iter_mut().find(|d| d.day == day && d.ok.is_some()) {
                d.ok = Some(d.ok == Some(true) && v.ok);
                d.services.push(v);
            }
        }
        let checked: Vec<bool> = out.iter().filter_map(|d| d.ok).collect();
        let ok = (!checked.is_empty()).then(|| checked.iter().all(|ok| *ok));
        VerifyReport { days: out, ok }
    }

    /// The last day `verify` is to check through: the last of `days` the plan has.
    pub fn through(plan: &Plan, days: &[u32]) -> Option<u32> {
        days.iter().copied().filter(|d| plan.day_numbers().contains(d)).max()
    }
}

/// The days a run committed (the ledger has them), in order, the plan's or not: the days
/// `verify` reports on.
pub fn committed_days(ledger: &Ledger) -> Vec<u32> {
    let mut days: Vec<u32> = ledger.days.keys().filter_map(|d| d.parse().ok()).collect();
    days.sort_unstable();
    days
}

/// The day's status as the ledger tells it.
fn day_status(plan: &Plan, ledger: &Ledger, day: u32) -> DayStatus {
    let recorded = ledger.days.get(&day.to_string());
    // A day the plan no longer has is applied when every service its commits recorded is.
    let done = if plan.day_numbers().contains(&day) {
        ledger.open_services(plan, day).is_empty()
    } else {
        recorded.is_some_and(|d| d.services.values().all(|r| r.state == ServiceState::Migrated))
    };
    match (done, recorded) {
        (true, _) => DayStatus::Applied,
        (false, Some(_)) => DayStatus::PartlyApplied,
        (false, None) => DayStatus::NotApplied,
    }
}

/// The services that keep `day` open, as the ledger tells it.
fn open_services(plan: &Plan, ledger: &Ledger, day: u32) -> Vec<String> {
    if plan.day_numbers().contains(&day) {
        return ledger.open_services(plan, day).into_iter().map(|s| s.name).collect();
    }
    let recorded = ledger.days.get(&day.to_string());
    recorded.map_or_else(Vec::new, |d| {
        d.services.iter().filter(|(_, r)| r.state != ServiceState::Migrated).map(|(n, _)| n.clone()).collect()
    })
}

/// Every day of the plan, and every day a run was of (the plan may no longer have it).
pub fn days(plan: &Plan, ledger: &Ledger, runs: &[RunHistory]) -> Vec<DayReport> {
    let mut day_numbers = plan.day_numbers();
    day_numbers.extend(runs.iter().map(|r| r.day));
    day_numbers.sort_unstable();
    day_numbers.dedup();
    day_numbers.into_iter().map(|day| day_report(plan, ledger, runs, day)).collect()
}

/// One day: its services (the plan's, then those only its runs name), its status, what
/// keeps it open, its last commit and its runs.
fn day_report(plan: &Plan, ledger: &Ledger, runs: &[RunHistory], day: u32) -> DayReport {
    let mut services: Vec<String> = plan.services.iter().filter(|s| s.day == day).map(|s| s.name.clone()).collect();
    for r in runs.iter().filter(|r| r.day == day) {
        for s in &r.services {
            if !services.contains(&s.name) {
                services.push(s.name.clone());
            }
        }
    }
    let applied = ledger.days.get(&day.to_string());
    let status = day_status(plan, ledger, day);
    DayReport {
        day,
        in_plan: plan.day_numbers().contains(&day),
        services,
        open: if status == DayStatus::PartlyApplied { open_services(plan, ledger, day) } else { Vec::new() },
        status,
        committed: applied.map(|a| a.committed.clone()),
        committed_by: applied.map(|a| a.run.clone()),
        runs: runs.iter().filter(|r| r.day == day).cloned().collect(),
    }
}

/// The runs with each `keep_root` exception the plan names said to be one: a run that
/// recreated it with its controls left it running as root, not migrated.
pub fn with_exceptions(plan: &Plan, mut runs: Vec<RunHistory>) -> Vec<RunHistory> {
    for s in runs.iter_mut().flat_map(|r| r.services.iter_mut()) {
        let exception = plan.service(&s.name).is_some_and(|p| p.keep_root.is_some());
        if exception && s.outcome == Outcome::Migrated {
            s.outcome = Outcome::Exception;
        }
    }
    runs
}
