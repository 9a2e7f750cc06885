//! The configured user of a container described with its image's names.

use crate::docker::Inspect;
use crate::model::user::Accounts;

pub(super) const HEADER_LIMIT: usize = 512;

/// The configured user of a container as "name (uid:gid)" where it can be told.
pub(super) fn describe_current(c: &Inspect, accounts: &Accounts) -> String {
    let u = c.configured_user();
    match crate::model::user::configured(u) {
        None => "(unset) root (0:0)".to_string(),
        Some(spec) => match accounts.owner_of(&spec) {
            Some(o) if u.split(':').next() == Some(&o.uid.to_string()) => o.to_string(),
            Some(o) => format!("{u} ({o})"),
            None => u.to_string(),
        },
    }
}
