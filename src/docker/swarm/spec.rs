//! The spec a Swarm service is updated to (SPEC §11 step 6), and the difference from its
//! original in `docker service inspect`'s field names. Pure: the preview shows exactly the
//! spec apply sends.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::model::caps::normalize_cap;
use crate::model::owner::Owner;
use crate::model::plan::{Service, Timings};

/// What the plan changes in a service's spec, resolved to numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecChanges {
    /// The new `ContainerSpec.User` (`uid:gid`); `None` keeps the user.
    pub user: Option<Owner>,
    /// `ContainerSpec.Groups`, as gids, added to those there.
    pub groups: Vec<u32>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub read_only: Option<bool>,
    /// `ContainerSpec.Privileges.NoNewPrivileges` (API 1.46 and later; the preview blocks it
    /// on older managers).
    pub no_new_privileges: Option<bool>,
    /// Environment keys the plan sets (values come from the plan, never printed).
    pub env: BTreeMap<String, String>,
    /// `UpdateConfig.Parallelism`.
    pub parallelism: u64,
}

impl SpecChanges {
    /// The plan's changes for `s`, with the user and groups already resolved.
    pub fn of(s: &Service, user: Option<Owner>, groups: Vec<u32>, parallelism: u64) -> SpecChanges {
        SpecChanges {
            user,
            groups,
            cap_add: s.cap_add.iter().map(|c| cap_name(c)).collect(),
            cap_drop: s.cap_drop.iter().map(|c| cap_name(c)).collect(),
            read_only: s.read_only,
            no_new_privileges: s.no_new_privileges,
            env: s.env.clone(),
            parallelism,
        }
    }
}

/// Swarm writes capabilities as `CAP_NET_RAW`; `ALL` stays `ALL`.
fn cap_name(cap: &str) -> String {
    let up = cap.trim().to_ascii_uppercase();
    if up == "ALL" || up.starts_with("CAP_") { up } else { format!("CAP_{up}") }
}

/// The original spec with the plan's changes: the user, groups, capabilities, read-only root
/// and environment of its tasks, and an `UpdateConfig` that replaces tasks stop-first, watches
/// each for `stable_for` and pauses on a failure (unroot rolls back itself). Replicas and
/// placement are the original's.
pub fn updated(original: &Value, c: &SpecChanges, timings: &Timings) -> Value {
    let mut spec = original.clone();
    let cs = &mut spec["TaskTemplate"]["ContainerSpec"];
    if let Some(owner) = c.user {
        cs["User"] = json!(owner.to_string());
    }
    if !c.groups.is_empty() {
        let mut groups: Vec<Value> = cs["Groups"].as_array().cloned().unwrap_or_default();
        for g in &c.groups {
            if !groups.iter().any(|x| x.as_str() == Some(&g.to_string())) {
                groups.push(json!(g.to_string()));
            }
        }
        cs["Groups"] = json!(groups);
    }
    for (field, caps) in [("CapabilityAdd", &c.cap_add), ("CapabilityDrop", &c.cap_drop)] {
        if caps.is_empty() {
            continue;
        }
        let mut list: Vec<Value> = cs[field].as_array().cloned().unwrap_or_default();
        for cap in caps {
            // `NET_ADMIN` and Docker's `CAP_NET_ADMIN` are one capability, listed once.
            let same = |x: &Value| x.as_str().map(normalize_cap) == Some(normalize_cap(cap));
            if !list.iter().any(same) {
                list.push(json!(cap));
            }
        }
        cs[field] = json!(list);
    }
    if let Some(ro) = c.read_only {
        cs["ReadOnly"] = json!(ro);
    }
    if let Some(nnp) = c.no_new_privileges {
        cs["Privileges"]["NoNewPrivileges"] = json!(nnp);
    }
    if !c.env.is_empty() {
        let mut env: Vec<String> = cs["Env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str())
            .filter(|e| !c.env.contains_key(e.split('=').next().unwrap_or_default()))
            .map(str::to_string)
            .collect();
        env.extend(c.env.iter().map(|(k, v)| format!("{k}={v}")));
        cs["Env"] = json!(env);
    }
    spec["UpdateConfig"] = json!({
        "Parallelism": c.parallelism,
        "Delay": 0,
        "FailureAction": "pause",
        "Monitor": timings.stable_for.as_nanos() as u64,
        "MaxFailureRatio": 0,
        "Order": "stop-first"
    });
    spec
}

/// The planned spec once its update is done: the original's own `UpdateConfig` back (none
/// when the original had none), everything else as `planned`. The migration's last write
/// (SPEC §11 step 6): later updates by the operator roll out as the service always did.
pub fn settled(planned: &Value, original: &Value) -> Value {
    let mut spec = planned.clone();
    match (original.get("UpdateConfig"), spec.as_object_mut()) {
        (Some(own), Some(m)) => {
            m.insert("UpdateConfig".into(), own.clone());
        }
        (None, Some(m)) => {
            m.remove("UpdateConfig");
        }
        _ => {}
    }
    spec
}

/// The fields that differ, as `docker service inspect` names them under `Spec`
/// (`TaskTemplate.ContainerSpec.User: "" -> "999:999"`); environment values are never shown,
/// only the keys that change.
pub fn diff(original: &Value, updated: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("", original, updated, &mut out);
    out
}

fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    // A command line can carry a secret (`--password …`) as an environment can: that it
    // changed is said, never what it says.
    if path.ends_with("ContainerSpec.Args") || path.ends_with("ContainerSpec.Command") {
        out.push(format!("{path}: changed (values not shown)"));
        return;
    }
    if path.ends_with("ContainerSpec.Env") {
        let keys = |v: &Value| -> BTreeMap<String, String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e.as_str())
                .map(|e| {
                    let (k, v) = e.split_once('=').unwrap_or((e, ""));
                    (k.to_string(), v.to_string())
                })
                .collect()
        };
        let (ka, kb) = (keys(a), keys(b));
        let changed: Vec<&String> = kb.keys().filter(|k| ka.get(*k) != kb.get(*k)).collect();
        let names: Vec<&str> = changed.iter().map(|k| k.as_str()).collect();
        out.push(format!("{path}: sets {} (values not shown)", names.join(", ")));
        return;
    }
    // An object on either side (the other absent) is compared field by field.
    let empty = serde_json::Map::new();
    let fields = |v: &Value| match v {
        Value::Object(m) => Some(m.clone()),
        Value::Null => Some(empty.clone()),
        _ => None,
    };
    match (fields(a), fields(b)) {
        (Some(ma), Some(mb)) if a.is_object() || b.is_object() => {
            let keys: std::collections::BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
            for k in keys {
                let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                walk(&sub, ma.get(k).unwrap_or(&Value::Null), mb.get(k).unwrap_or(&Value::Null), out);
            }
        }
        _ => out.push(format!("{path}: {} -> {}", shown(a), shown(b))),
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::Null => "(unset)".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn original() -> Value {
        json!({
            "Name": "db",
            "Mode": {"Replicated": {"Replicas": 2}},
            "TaskTemplate": {"ContainerSpec": {"Image": "redis:7", "Env": ["A=1", "SECRET=old"], "CapabilityDrop": ["CAP_NET_RAW"]}}
        })
    }

    #[test]
    fn the_update_changes_the_user_and_controls_and_keeps_replicas_and_image() {
        let c = SpecChanges {
            user: Some(Owner::new(999, 999)),
            groups: vec![10],
            cap_add: vec![],
            cap_drop: vec!["net_raw".into(), "ALL".into()],
            read_only: Some(true),
            no_new_privileges: None,
            env: [("SECRET".to_string(), "new-value".to_string())].into(),
            parallelism: 1,
        };
        let timings = Timings { stable_for: Duration::from_secs(5), ..Timings::default() };
        let new = updated(&original(), &c, &timings);
        let cs = &new["TaskTemplate"]["ContainerSpec"];
        assert_eq!(cs["User"], "999:999");
        assert_eq!(cs["Groups"], json!(["10"]));
        assert_eq!(cs["CapabilityDrop"], json!(["CAP_NET_RAW", "ALL"]), "NET_RAW is there in Docker's spelling");
        assert_eq!(cs["ReadOnly"], true);
        assert_eq!(cs["Env"], json!(["A=1", "SECRET=new-value"]));
        assert_eq!(cs["Image"], "redis:7");
        assert_eq!(new["Mode"], original()["Mode"]);
        assert_eq!(new["UpdateConfig"]["Order"], "stop-first");
        assert_eq!(new["UpdateConfig"]["FailureAction"], "pause");
        assert_eq!(new["UpdateConfig"]["Monitor"], 5_000_000_000u64);

        let lines = diff(&original(), &new);
        assert!(lines.contains(&"TaskTemplate.ContainerSpec.User: (unset) -> \"999:999\"".to_string()), "{lines:?}");
        assert!(lines.iter().any(|l| l == "TaskTemplate.ContainerSpec.Env: sets SECRET (values not shown)"));
        assert!(lines.iter().all(|l| !l.contains("new-value") && !l.contains("old")), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("UpdateConfig.Order: (unset) -> \"stop-first\"")));
    }

    #[test]
    fn nothing_planned_changes_only_the_update_config() {
        let c = SpecChanges {
            user: None,
            groups: vec![],
            cap_add: vec![],
            cap_drop: vec![],
            read_only: None,
            no_new_privileges: None,
            env: BTreeMap::new(),
            parallelism: 2,
        };
        let new = updated(&original(), &c, &Timings::default());
        assert_eq!(new["TaskTemplate"], original()["TaskTemplate"]);
        assert!(diff(&original(), &new).iter().all(|l| l.starts_with("UpdateConfig.")));
    }
}
