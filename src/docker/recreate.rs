//! Recreating a container with full fidelity (SPEC §3 step 7), as pure functions of the
//! original inspect: the create request, the networks to connect after create, and the diff
//! of the new inspect against what was expected.
//!
//! The approach is "copy everything, change only what is planned": every `Config` and
//! `HostConfig` field of the original goes into the create body, then the planned changes
//! are applied. The same changes applied to the original's inspect give the expected view,
//! and any difference between that and the new container's view fails the service.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::docker::{Inspect, short_id};
use crate::model::mount::MountKind;

/// Label naming the run that created a replacement.
pub const LABEL_RUN: &str = "io.unroot.run";
/// Label keeping the user the original ran as.
pub const LABEL_ORIGINAL_USER: &str = "io.unroot.original-user";

/// The planned changes to one container, already resolved to numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// The reference to create from: the original's tag when it still names the same image,
    /// else the image id.
    pub image: String,
    /// `uid:gid`, or `None` to keep the user.
    pub user: Option<String>,
    /// Supplementary gids to add.
    pub group_add: Vec<String>,
    /// Environment added or replaced.
    pub env: BTreeMap<String, String>,
    pub cap_drop: Vec<String>,
    pub cap_add: Vec<String>,
    pub read_only: Option<bool>,
    pub no_new_privileges: Option<bool>,
    /// tmpfs mounts added: container path → Docker's mount options (`HostConfig.Tmpfs`).
    pub tmpfs: BTreeMap<String, String>,
    /// Security options added, in the daemon's form (a seccomp profile by its contents).
    pub security_opt: Vec<String>,
    /// A HEALTHCHECK test in place of the original's (`["CMD", …]`); its timings stay.
    pub healthcheck: Option<Vec<String>>,
    /// Labels added (`io.unroot.run`, `io.unroot.original-user`).
    pub labels: BTreeMap<String, String>,
}

fn obj(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Adds `extra` to a list field, keeping the original order and adding only what is new.
fn union(list: &mut Vec<String>, extra: &[String]) {
    for e in extra {
        if !list.contains(e) {
            list.push(e.clone());
        }
    }
}

/// Capabilities of `extra` that `list` lacks, added: `NET_ADMIN`, `net_admin` and Docker's
/// own `CAP_NET_ADMIN` are one capability, listed once.
fn union_caps(list: &mut Vec<String>, extra: &[String]) {
    use crate::model::caps::normalize_cap;
    for e in extra {
        if !list.iter().any(|c| normalize_cap(c) == normalize_cap(e)) {
            list.push(e.clone());
        }
    }
}

/// `Config` with the planned changes, from the original's `Config`.
///
/// The hostname is kept as it was, also when Docker had set it to the old container's short
/// id: RabbitMQ, Erlang nodes and others key their data by hostname.
fn changed_config(original: &Inspect, ch: &Changes) -> Map<String, Value> {
    let mut config = obj(&original.0["Config"]);
    config.insert("Image".into(), json!(ch.image));
    if let Some(user) = &ch.user {
        config.insert("User".into(), json!(user));
    }
    if !ch.env.is_empty() {
        let mut env = strings(config.get("Env"));
        for (k, v) in &ch.env {
            let entry = format!("{k}={v}");
            match env.iter_mut().find(|e| e.split('=').next() == Some(k.as_str())) {
                Some(existing) => *existing = entry,
                None => env.push(entry),
            }
        }
        config.insert("Env".into(), json!(env));
    }
    if let Some(test) = &ch.healthcheck {
        let mut hc = obj(config.get("Healthcheck").unwrap_or(&Value::Null));
        hc.insert("Test".into(), json!(test));
        config.insert("Healthcheck".into(), Value::Object(hc));
    }
    if !ch.labels.is_empty() {
        let mut labels = obj(config.get("Labels").unwrap_or(&Value::Null));
        for (k, v) in &ch.labels {
            labels.insert(k.clone(), json!(v));
        }
        config.insert("Labels".into(), Value::Object(labels));
    }
    config
}

/// Anonymous volumes (in `Mounts`, not named in `HostConfig.Binds` or `HostConfig.Mounts`)
/// as `name:destination[:ro]` binds, so the replacement reuses them instead of getting
/// fresh empty ones.
fn anonymous_volume_binds(original: &Inspect) -> Vec<String> {
    let host = &original.0["HostConfig"];
    let mut declared: BTreeSet<String> = BTreeSet::new();
    for b in strings(host.get("Binds")) {
        let mut parts = b.split(':');
        if let (Some(_), Some(dest)) = (parts.next(), parts.next()) {
            declared.insert(dest.to_string());
        }
    }
    if let Some(ms) = host.get("Mounts").and_then(Value::as_array) {
        for m in ms {
            if let Some(t) = m.get("Target").and_then(Value::as_str) {
                declared.insert(t.to_string());
            }
        }
    }
    original
        .mounts()
        .into_iter()
        .filter(|m| m.kind == MountKind::Volume && !declared.contains(&m.destination))
        .filter_map(|m| {
            let name = m.name?;
            Some(if m.writable { format!("{name}:{}", m.destination) } else { format!("{name}:{}:ro", m.destination) })
        })
        .collect()
}

/// What a security option sets, which a planned option of the same key replaces:
/// `apparmor` of `apparmor=x` (and Docker's older `apparmor:x`), and for SELinux labels the
/// label's own field (`label=type` of `label=type:svirt_t`), so a planned type keeps the
/// original's level.
fn security_opt_key(opt: &str) -> String {
    let mut parts = opt.splitn(2, ['=', ':']);
    let key = parts.next().unwrap_or(opt);
    match (key, parts.next()) {
        ("label", Some(value)) => format!("label={}", value.split(':').next().unwrap_or(value)),
        _ => key.to_string(),
    }
}

/// `HostConfig` with the planned changes, from the original's.
fn changed_host_config(original: &Inspect, ch: &Changes) -> Map<String, Value> {
    let mut host = obj(&original.0["HostConfig"]);
    let anon = anonymous_volume_binds(original);
    if !anon.is_empty() {
        let mut binds = strings(host.get("Binds"));
        union(&mut binds, &anon);
        host.insert("Binds".into(), json!(binds));
    }
    // Legacy links are inspected as "/target:/container/alias" and created as "target:alias".
    let links: Vec<String> = strings(host.get("Links"))
        .into_iter()
        .map(|l| match l.split_once(':') {
            Some((target, alias)) => {
                format!("{}:{}", target.trim_start_matches('/'), alias.rsplit('/').next().unwrap_or(alias))
            }
            None => l,
        })
        .collect();
    if !links.is_empty() {
        host.insert("Links".into(), json!(links));
    }
    if !ch.group_add.is_empty() {
        let mut groups = strings(host.get("GroupAdd"));
        union(&mut groups, &ch.group_add);
        host.insert("GroupAdd".into(), json!(groups));
    }
    if !ch.cap_drop.is_empty() {
        let mut caps = strings(host.get("CapDrop"));
        union_caps(&mut caps, &ch.cap_drop);
        host.insert("CapDrop".into(), json!(caps));
    }
    if !ch.cap_add.is_empty() {
        let mut caps = strings(host.get("CapAdd"));
        union_caps(&mut caps, &ch.cap_add);
        host.insert("CapAdd".into(), json!(caps));
    }
    if let Some(ro) = ch.read_only {
        host.insert("ReadonlyRootfs".into(), json!(ro));
    }
    if ch.no_new_privileges.is_some() || !ch.security_opt.is_empty() {
        let mut opts = strings(host.get("SecurityOpt"));
        if let Some(nnp) = ch.no_new_privileges {
            opts.retain(|o| !o.starts_with("no-new-privileges"));
            if nnp {
                opts.push("no-new-privileges:true".into());
            }
        }
        // A planned option replaces the original's of the same key (one AppArmor profile).
        for planned in &ch.security_opt {
            let key = security_opt_key(planned);
            opts.retain(|o| security_opt_key(o) != key);
            opts.push(planned.clone());
        }
        host.insert("SecurityOpt".into(), if opts.is_empty() { Value::Null } else { json!(opts) });
    }
    if !ch.tmpfs.is_empty() {
        let mut tmpfs = obj(host.get("Tmpfs").unwrap_or(&Value::Null));
        for (path, options) in &ch.tmpfs {
            tmpfs.insert(path.clone(), json!(options));
        }
        host.insert("Tmpfs".into(), Value::Object(tmpfs));
    }
    host
}

/// An endpoint's settings to recreate: aliases (without the ones Docker adds by itself: the
/// container's short id, and its hostname, which stays the old short id), static IPs, links
/// and driver options.
fn endpoint_config(endpoint: &Value, docker_added: &[&str]) -> Value {
    let aliases: Vec<String> =
        strings(endpoint.get("Aliases")).into_iter().filter(|a| !docker_added.contains(&a.as_str())).collect();
    let mut e = Map::new();
    if !aliases.is_empty() {
        e.insert("Aliases".into(), json!(aliases));
    }
    for key in ["IPAMConfig", "Links", "DriverOpts"] {
        if let Some(v) = endpoint.get(key).filter(|v| !v.is_null()) {
            e.insert(key.into(), v.clone());
        }
    }
    Value::Object(e)
}

/// The networks of a container: name → endpoint.
fn networks(c: &Inspect) -> Map<String, Value> {
    obj(&c.0["NetworkSettings"]["Networks"])
}

/// What to send to recreate a container.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    /// The create body: `Config` fields at the top, `HostConfig`, `NetworkingConfig`.
    pub body: Value,
    /// Networks to connect after create, before start (daemons older than API 1.44 take
    /// one network at create).
    pub connect_after: Vec<(String, Value)>,
}

/// Builds the request that recreates `original` with `changes`. `all_networks_at_create`:
/// the daemon speaks API 1.44 or newer.
pub fn create_request(original: &Inspect, ch: &Changes, all_networks_at_create: bool) -> CreateRequest {
    let mut body = changed_config(original, ch);
    let host = changed_host_config(original, ch);
    let mode = host.get("NetworkMode").and_then(Value::as_str).unwrap_or("default").to_string();
    body.insert("HostConfig".into(), Value::Object(host));
    let old_short = short_id(original.id());
    let mut at_create = Map::new();
    let mut connect_after = Vec::new();
    let own_namespace = !(mode == "host" || mode == "none" || mode.starts_with("container:"));
    if own_namespace {
        let primary = if mode == "default" { "bridge".to_string() } else { mode };
        for (name, endpoint) in networks(original) {
            let cfg = endpoint_config(&endpoint, &[old_short]);
            if all_networks_at_create || name == primary {
                at_create.insert(name, cfg);
            } else {
                connect_after.push((name, cfg));
            }
        }
    }
    if !at_create.is_empty() {
        body.insert("NetworkingConfig".into(), json!({ "EndpointsConfig": at_create }));
    }
    CreateRequest { body: Value::Object(body), connect_after }
}

// ---------------------------------------------------------------------------------------
// The diff.

/// `HostConfig` fields Docker fills in per container that say nothing about configuration.
const HOST_VOLATILE: &[&str] = &["ContainerIDFile"];

/// A comparable view of what a container is configured as.
fn view(config: Map<String, Value>, host: Map<String, Value>, c: &Inspect, original: &Inspect) -> Value {
    let mut config = config;
    // Env order is not configuration; compare it as a sorted list.
    let mut env = strings(config.get("Env"));
    env.sort();
    config.insert("Env".into(), json!(env));
    let mut host = host;
    for key in HOST_VOLATILE {
        host.remove(*key);
    }
    for key in ["Binds", "CapAdd", "CapDrop", "GroupAdd", "SecurityOpt"] {
        let mut list = strings(host.get(key));
        list.sort();
        host.insert(key.into(), if list.is_empty() { Value::Null } else { json!(list) });
    }
    let mut mounts: Vec<Value> = c
        .mounts()
        .into_iter()
        .map(|m| json!({"Type": m.kind, "Name": m.name, "Source": m.source, "Destination": m.destination, "RW": m.writable}))
        .collect();
    mounts.sort_by_key(|m| m["Destination"].as_str().unwrap_or("").to_string());
    let short = short_id(c.id()).to_string();
    let nets: Map<String, Value> = networks(c)
        .into_iter()
        .map(|(name, e)| (name, endpoint_config(&e, &[&short, short_id(original.id())])))
        .collect();
    json!({
        "Image": c.image_id(),
        "Config": config,
        "HostConfig": host,
        "Mounts": mounts,
        "Networks": nets,
    })
}

/// Every difference between what the replacement should be and what it is, as
/// `path: expected …, found …` lines. Environment values are never shown, only the keys.
pub fn diff(original: &Inspect, ch: &Changes, new: &Inspect) -> Vec<String> {
    let mut expected_config = changed_config(original, ch);
    // The replacement is created from the tag or the id; both name the original's image,
    // which the top-level `Image` compares. Its `Config.Image` is the reference given.
    expected_config.insert("Image".into(), json!(ch.image));
    let expected = view(expected_config, changed_host_config(original, ch), original, original);
    let actual = view(obj(&new.0["Config"]), obj(&new.0["HostConfig"]), new, original);
    let mut out = Vec::new();
    compare("", &expected, &actual, &mut out);
    out
}

fn show(path: &str, v: &Value) -> String {
    if path.starts_with("Config.Env") {
        // Only the keys of the environment.
        let keys: Vec<String> =
            strings(Some(v)).iter().map(|e| e.split('=').next().unwrap_or("").to_string()).collect();
        return format!("keys {keys:?}");
    }
    let s = v.to_string();
    match s.char_indices().nth(200) {
        // Cut on a character boundary: a name or label may hold any character.
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn compare(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let keys: BTreeSet<&String> = e.keys().chain(a.keys()).collect();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                compare(&p, e.get(k).unwrap_or(&Value::Null), a.get(k).unwrap_or(&Value::Null), out);
            }
        }
        // Docker reports an unset list or map as null, [] or {} interchangeably.
        (e, a) if is_empty(e) && is_empty(a) => {}
        (e, a) if e != a => out.push(format!("{path}: expected {}, found {}", show(path, e), show(path, a))),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original() -> Inspect {
        Inspect(json!({
            "Id": "0123456789abcdef0000",
            "Name": "/web",
            "Image": "sha256:img",
            "Config": {
                "Hostname": "0123456789ab",
                "User": "",
                "Env": ["PATH=/bin", "SECRET=hunter2"],
                "Cmd": ["httpd", "-f"],
                "Image": "web:1",
                "Labels": {"app": "web"},
                "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000},
                "ExposedPorts": {"80/tcp": {}},
                "Volumes": {"/cache": {}}
            },
            "HostConfig": {
                "Binds": ["webdata:/data"],
                "NetworkMode": "front",
                "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
                "CapAdd": ["NET_ADMIN"],
                "Links": ["/db:/web/database"],
                "ContainerIDFile": ""
            },
            "Mounts": [
                {"Type": "volume", "Name": "webdata", "Source": "/v/webdata", "Destination": "/data", "RW": true},
                {"Type": "volume", "Name": "anon123", "Source": "/v/anon123", "Destination": "/cache", "RW": true}
            ],
            "NetworkSettings": {"Networks": {
                "front": {"Aliases": ["web", "0123456789ab"], "IPAMConfig": {"IPv4Address": "10.5.0.9"}, "IPAddress": "10.5.0.9"},
                "back": {"Aliases": ["api", "0123456789ab"], "IPAMConfig": null}
            }}
        }))
    }

    fn changes() -> Changes {
        Changes {
            image: "web:1".into(),
            user: Some("999:999".into()),
            group_add: vec!["44".into()],
            env: BTreeMap::from([("HOME".into(), "/data".into())]),
            cap_drop: vec!["ALL".into()],
            cap_add: vec![],
            read_only: Some(true),
            no_new_privileges: Some(true),
            tmpfs: BTreeMap::new(),
            security_opt: vec![],
            healthcheck: None,
            labels: BTreeMap::from([(LABEL_RUN.into(), "day1-x".into())]),
        }
    }

    #[test]
    fn the_request_copies_everything_and_changes_only_the_plan() {
        let req = create_request(&original(), &changes(), false);
        let b = &req.body;
        assert_eq!(b["User"], "999:999");
        assert_eq!(b["Cmd"], json!(["httpd", "-f"]));
        assert_eq!(b["Hostname"], "0123456789ab", "the hostname is kept, even the old short id");
        assert_eq!(b["Env"], json!(["PATH=/bin", "SECRET=hunter2", "HOME=/data"]));
        assert_eq!(b["Labels"], json!({"app": "web", LABEL_RUN: "day1-x"}));
        assert_eq!(b["Healthcheck"]["Test"], json!(["CMD", "true"]));
        let h = &b["HostConfig"];
        assert_eq!(h["Binds"], json!(["webdata:/data", "anon123:/cache"]), "the anonymous volume is reused by name");
        assert_eq!(h["PortBindings"]["80/tcp"][0]["HostPort"], "8080");
        assert_eq!(h["RestartPolicy"]["Name"], "unless-stopped");
        assert_eq!(h["CapDrop"], json!(["ALL"]));
        assert_eq!(h["CapAdd"], json!(["NET_ADMIN"]));
        assert_eq!(h["GroupAdd"], json!(["44"]));
        assert_eq!(h["ReadonlyRootfs"], true);
        assert_eq!(h["SecurityOpt"], json!(["no-new-privileges:true"]));
        assert_eq!(h["Links"], json!(["db:database"]));
        let eps = &b["NetworkingConfig"]["EndpointsConfig"];
        assert_eq!(eps["front"]["Aliases"], json!(["web"]), "the old short id is not an alias");
        assert_eq!(eps["front"]["IPAMConfig"]["IPv4Address"], "10.5.0.9");
        assert!(eps.get("back").is_none(), "one network at create before API 1.44");
        assert_eq!(req.connect_after, vec![("back".to_string(), json!({"Aliases": ["api"]}))]);

        let all = create_request(&original(), &changes(), true);
        assert!(all.body["NetworkingConfig"]["EndpointsConfig"].get("back").is_some());
        assert!(all.connect_after.is_empty());
    }

    /// What the daemon would report for a faithful replacement.
    fn faithful() -> Inspect {
        let mut new = original();
        let v = &mut new.0;
        v["Id"] = json!("fedcba98765400000000");
        v["Config"]["User"] = json!("999:999");
        v["Config"]["Env"] = json!(["HOME=/data", "PATH=/bin", "SECRET=hunter2"]);
        v["Config"]["Labels"][LABEL_RUN] = json!("day1-x");
        v["HostConfig"]["Binds"] = json!(["webdata:/data", "anon123:/cache"]);
        v["HostConfig"]["Links"] = json!(["db:database"]);
        v["HostConfig"]["CapDrop"] = json!(["ALL"]);
        v["HostConfig"]["GroupAdd"] = json!(["44"]);
        v["HostConfig"]["ReadonlyRootfs"] = json!(true);
        v["HostConfig"]["SecurityOpt"] = json!(["no-new-privileges:true"]);
        v["NetworkSettings"]["Networks"]["front"]["Aliases"] = json!(["web", "fedcba987654"]);
        v["NetworkSettings"]["Networks"]["back"]["Aliases"] = json!(["api", "fedcba987654"]);
        new
    }

    #[test]
    fn a_long_value_is_cut_on_a_character_boundary() {
        let long = format!("{}é{}", "a".repeat(199), "b".repeat(300));
        let shown = show("Config.Labels.x", &json!(long));
        assert!(shown.ends_with('…') && shown.chars().count() == 201, "{shown}");
        let mut new = faithful();
        new.0["Config"]["Labels"]["note"] = json!(format!("{}ü{}", "x".repeat(198), "y".repeat(50)));
        assert_eq!(diff(&original(), &changes(), &new).len(), 1);
    }

    #[test]
    fn a_planned_capability_the_original_has_in_dockers_spelling_is_listed_once() {
        let mut original = original();
        original.0["HostConfig"]["CapAdd"] = json!(["CAP_NET_ADMIN"]);
        original.0["HostConfig"]["CapDrop"] = json!(["CAP_MKNOD"]);
        let ch =
            Changes { cap_add: vec!["NET_ADMIN".into()], cap_drop: vec!["mknod".into(), "ALL".into()], ..changes() };
        let req = create_request(&original, &ch, false);
        assert_eq!(req.body["HostConfig"]["CapAdd"], json!(["CAP_NET_ADMIN"]));
        assert_eq!(req.body["HostConfig"]["CapDrop"], json!(["CAP_MKNOD", "ALL"]));
    }

    #[test]
    fn planned_tmpfs_and_security_options_go_into_the_request_and_the_expected_view() {
        let mut original = original();
        original.0["HostConfig"]["Tmpfs"] = json!({"/tmp": "size=1m"});
        original.0["HostConfig"]["SecurityOpt"] = json!(["apparmor=old-profile", "label=level:s0", "label=type:old_t"]);
        let ch = Changes {
            tmpfs: BTreeMap::from([("/run".into(), "mode=0755,uid=999,gid=999".into())]),
            security_opt: vec!["apparmor=docker-default".into(), "label:type:svirt_t".into()],
            ..changes()
        };
        let req = create_request(&original, &ch, false);
        let h = &req.body["HostConfig"];
        assert_eq!(h["Tmpfs"], json!({"/tmp": "size=1m", "/run": "mode=0755,uid=999,gid=999"}));
        assert_eq!(
            h["SecurityOpt"],
            json!(["label=level:s0", "no-new-privileges:true", "apparmor=docker-default", "label:type:svirt_t"]),
            "the planned AppArmor profile and label type replace the original's; its level stays"
        );
        let mut new = faithful();
        new.0["HostConfig"]["Tmpfs"] = h["Tmpfs"].clone();
        new.0["HostConfig"]["SecurityOpt"] = h["SecurityOpt"].clone();
        assert_eq!(diff(&original, &ch, &new), Vec::<String>::new());
        // A replacement without the tmpfs, or owned by another uid, is a failure.
        new.0["HostConfig"]["Tmpfs"] = json!({"/tmp": "size=1m", "/run": "mode=0755"});
        let d = diff(&original, &ch, &new);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].starts_with("HostConfig.Tmpfs./run: expected \"mode=0755,uid=999,gid=999\""), "{d:?}");
        // Without planned ones, the original's are copied as they were.
        let plain = create_request(&original, &changes(), false);
        assert_eq!(plain.body["HostConfig"]["Tmpfs"], json!({"/tmp": "size=1m"}));
    }

    #[test]
    fn a_planned_healthcheck_test_replaces_the_originals_and_keeps_its_timings() {
        let test = vec!["CMD".to_string(), "healthcheck.sh".into(), "--connect".into()];
        let ch = Changes { healthcheck: Some(test.clone()), ..changes() };
        let req = create_request(&original(), &ch, false);
        assert_eq!(req.body["Healthcheck"], json!({"Test": test, "Interval": 1000000000}));
        let mut new = faithful();
        new.0["Config"]["Healthcheck"]["Test"] = json!(test);
        assert_eq!(diff(&original(), &ch, &new), Vec::<String>::new());
        assert_eq!(diff(&original(), &ch, &faithful()).len(), 1, "the original's test is a difference");
    }

    #[test]
    fn a_faithful_replacement_has_no_diff() {
        assert_eq!(diff(&original(), &changes(), &faithful()), Vec::<String>::new());
    }

    #[test]
    fn any_unplanned_difference_is_reported_without_env_values() {
        let mut new = faithful();
        new.0["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"] = json!("9090");
        new.0["Config"]["Env"] = json!(["HOME=/data", "PATH=/bin"]);
        new.0["Mounts"][1]["Name"] = json!("fresh-empty-volume");
        new.0["NetworkSettings"]["Networks"]["back"]["Aliases"] = json!(["fedcba987654"]);
        let d = diff(&original(), &changes(), &new);
        let text = d.join("\n");
        assert!(text.contains("HostConfig.PortBindings.80/tcp"), "{text}");
        assert!(text.contains("Config.Env: expected keys [\"HOME\", \"PATH\", \"SECRET\"]"), "{text}");
        assert!(!text.contains("hunter2"), "an environment value leaked: {text}");
        assert!(text.contains("Mounts"), "{text}");
        assert!(text.contains("Networks.back.Aliases"), "{text}");
        assert_eq!(d.len(), 4, "{text}");
    }
}
