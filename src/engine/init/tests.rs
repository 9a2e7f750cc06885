//! The decision table of `init`, without Docker: each fallback of SPEC §10 in its order, the
//! exceptions and their controls, the days, `after`, and a rendered plan that checks.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::*;
use crate::docker::fake::merge;
use crate::model::owner::Owner;
use crate::model::profiles::Kind;

const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/bash\nredis:x:999:999::/data:/bin/sh\napp:x:1001:1001::/home/app:/bin/sh\n";

fn inspect(name: &str, image: &str, patch: Value) -> Inspect {
    let mut c = json!({
        "Id": format!("{name}000000000000"), "Name": format!("/{name}"), "Image": "sha256:1d",
        "Config": {"User": "", "Image": image, "Labels": {}},
        "HostConfig": {"NetworkMode": "bridge"},
        "Mounts": [{"Type": "volume", "Name": format!("{name}-data"), "Source": "/v", "Destination": "/data", "RW": true}],
        "State": {"Running": true, "Status": "running"}
    });
    merge(&mut c, patch);
    Inspect(c)
}

fn facts(passwd: &str) -> ImageFacts {
    ImageFacts {
        accounts: Ok(Accounts::parse(Some(passwd), Some("root:x:0:\n"))),
        variant: Variant::Debian,
        volumes: Vec::new(),
        paths: BTreeMap::new(),
        commands: BTreeSet::new(),
    }
}

fn seen(c: Inspect, class: Class, uids: &[u32], image: ImageFacts) -> Seen {
    Seen { container: c, class, process_uids: uids.to_vec(), image, protected: BTreeMap::new(), rootfs_changes: None }
}

fn user_of(s: &Seen) -> (String, String) {
    let d = decide(s, &Profiles::builtin());
    let u = d.user.expect("a user");
    (u.value, u.because)
}

#[test]
fn the_user_follows_the_order_of_the_spec() {
    // 1. drops-root: the uid its processes already run as, with the image's group for it.
    let s = seen(inspect("cache", "redis:7", json!({})), Class::DropsRoot, &[999], facts(PASSWD));
    let (u, why) = user_of(&s);
    assert_eq!(u, "999:999");
    assert!(why.contains("already run as uid 999 (redis"), "{why}");
    // 2. the profile's user, by name in the image's /etc/passwd (a root container).
    let s = seen(inspect("cache", "library/redis:7", json!({})), Class::Root, &[0], facts(PASSWD));
    let (u, why) = user_of(&s);
    assert_eq!((u.as_str(), why.contains("profile redis: the image's own user redis")), ("999:999", true), "{why}");
    // 3. the profile's ids for the variant, when the name is absent.
    let mut alpine = facts("root:x:0:0::/root:/bin/sh\n");
    alpine.variant = Variant::Alpine;
    let s = seen(inspect("pg", "registry.example:5000/team/postgres:15-alpine", json!({})), Class::Root, &[0], alpine);
    let (u, why) = user_of(&s);
    assert_eq!(u, "70:70");
    assert!(why.contains("70:70 in alpine images (its /etc/passwd has no postgres)"), "{why}");
    // 4. no profile: the owner of its data path in the image.
    let mut owned = facts(PASSWD);
    owned.paths.insert("/data".into(), (Owner::new(1001, 1001), 0o755));
    let s = seen(inspect("thing", "acme/thing:1", json!({})), Class::Root, &[0], owned);
    assert_eq!(user_of(&s), ("1001:1001".into(), "/data in the image belongs to app (1001)".into()));
    // 5. a user named like the image.
    let s = seen(inspect("thing", "acme/app:1", json!({})), Class::Root, &[0], facts(PASSWD));
    assert_eq!(user_of(&s), ("1001:1001".into(), "the image has a user named app".into()));
    // 6. nothing of its own: 1000:1000, said so.
    let s = seen(inspect("thing", "acme/thing:1", json!({})), Class::Root, &[0], facts(PASSWD));
    assert_eq!(user_of(&s), ("1000:1000".into(), "the image has no user of its own".into()));
}

#[test]
fn exceptions_keep_root_with_their_reason_and_controls() {
    let sock = json!({"Mounts": [{"Type": "bind", "Source": "/var/run/docker.sock", "Destination": "/var/run/docker.sock", "RW": true}],
                      "HostConfig": {"CapAdd": ["cap_net_admin"]}});
    let mut s = seen(inspect("agent", "acme/agent:1", sock), Class::Root, &[0], facts(PASSWD));
    // Docker made the mount point in its writable layer: not a write of its own.
    s.rootfs_changes = Some(vec!["/var".into(), "/var/run".into(), "/var/run/docker.sock".into()]);
    let d = decide(&s, &Profiles::builtin());
    assert_eq!(d.placement, Placement::Exception);
    assert_eq!(d.keep_root.as_deref(), Some("mounts docker.sock"));
    let c = d.controls.unwrap();
    assert_eq!(
        (c.cap_drop, c.cap_add, c.read_only.value, c.no_new_privileges),
        (vec!["ALL".to_string()], vec!["NET_ADMIN".to_string()], Some(true), true)
    );
    assert!(d.user.is_none());
    let proc = json!({"Mounts": [{"Type": "bind", "Source": "/proc", "Destination": "/host/proc", "RW": false}]});
    let mut s = seen(inspect("exporter", "prom/node-exporter", proc), Class::Root, &[0], facts(PASSWD));
    s.rootfs_changes = Some(vec!["/tmp/x".into()]);
    let d = decide(&s, &Profiles::builtin());
    assert_eq!(d.keep_root.as_deref(), Some("binds the host's /proc (/proc → /host/proc)"));
    assert_eq!(d.controls.unwrap().read_only.value, None, "it writes to its root filesystem");
    let host = json!({"HostConfig": {"NetworkMode": "host", "Privileged": true}, "Config": {"ExposedPorts": {"53/udp": {}, "8080/tcp": {}}}});
    let reasons = exception_reasons(&inspect("dns", "acme/dns", host));
    assert_eq!(reasons, ["runs privileged", "uses the host's network with ports below 1024 (53/udp)"]);
    assert!(exception_reasons(&inspect("web", "nginx", json!({}))).is_empty());
}

#[test]
fn health_mounts_and_home_say_why() {
    let mut f = facts(PASSWD);
    f.commands.insert("redis-cli".into());
    let d = decide(&seen(inspect("cache", "redis", json!({})), Class::Root, &[0], f), &Profiles::builtin());
    assert_eq!(d.health.value, Health::Exec { command: vec!["redis-cli".into(), "ping".into()] });
    assert_eq!(d.chown.value, ["/data"]);
    let d = decide(&seen(inspect("cache", "redis", json!({})), Class::Root, &[0], facts(PASSWD)), &Profiles::builtin());
    assert_eq!(
        (d.health.value, d.stable_for.as_deref()),
        (Health::Running, Some("15s")),
        "redis-cli is not in this image"
    );
    let hc = json!({"Config": {"Healthcheck": {"Test": ["CMD", "true"]}}});
    let d = decide(&seen(inspect("cache", "redis", hc), Class::Root, &[0], facts(PASSWD)), &Profiles::builtin());
    assert_eq!(d.health.value, Health::Docker);
    // ollama's image has no user: its home is /root, 0700, above the model volume.
    let mut f = facts("root:x:0:0:root:/root:/bin/bash\n");
    f.paths.insert("/root".into(), (Owner::ROOT, 0o700));
    let m = json!({"Mounts": [{"Type": "volume", "Name": "m", "Source": "/v", "Destination": "/root/.ollama", "RW": true},
                              {"Type": "bind", "Source": "/etc", "Destination": "/host-etc", "RW": true}]});
    let mut s = seen(inspect("llm", "ollama/ollama", m), Class::Root, &[0], f);
    s.protected.insert("/etc".into(), "/etc is a protected system path".into());
    let d = decide(&s, &Profiles::builtin());
    assert_eq!(d.user.as_ref().unwrap().value, "1000:1000");
    assert_eq!(d.chown.value, ["/root/.ollama"]);
    assert_eq!(d.not_reowned, ["/host-etc: /etc is a protected system path"]);
    assert!(d.env.contains_key("HOME"), "{:?}", d.env);
    assert!(
        d.warnings[0]
            .starts_with("/root/.ollama lies inside /root (mode 0700, owner 0:0), which uid 1000 cannot pass through"),
        "{:?}",
        d.warnings
    );
}

#[test]
fn days_follow_the_kinds_and_after_points_back() {
    let label = |svc: &str, deps: &str| {
        json!({"Config": {"Labels": {"com.docker.compose.project": "stack", "com.docker.compose.service": svc,
                                     "com.docker.compose.depends_on": deps}}})
    };
    let web = inspect("stack_web_1", "nginx:1", label("web", "db:service_started:false,cache:service_healthy:false"));
    let db = inspect("stack_db_1", "postgres:15", label("db", ""));
    let cache = inspect("stack_cache_1", "redis:7", label("cache", "db:service_started:false"));
    let agent = inspect(
        "agent",
        "acme/agent",
        json!({"Mounts": [{"Type": "bind", "Source": "/var/run/docker.sock", "Destination": "/var/run/docker.sock", "RW": true}], "HostConfig": {"Links": ["/stack_cache_1:/agent/cache"]}}),
    );
    let all = [web.clone(), db.clone(), cache.clone(), agent.clone()];
    let decisions: Vec<Decision> =
        all.iter().map(|c| decide(&seen(c.clone(), Class::Root, &[0], facts(PASSWD)), &Profiles::builtin())).collect();
    let plan = lay_out("stack".into(), decisions, Vec::new(), &all);
    let day = |n: &str| plan.services.iter().find(|d| d.name == n).unwrap();
    assert_eq!(day("stack_web_1").kind.value, Kind::Stateless);
    assert_eq!(
        (day("stack_web_1").day, day("stack_cache_1").day, day("stack_db_1").day, day("agent").day),
        (1, 2, 3, 3)
    );
    assert_eq!(plan.days[&1], "stateless services");
    // after only where the other is on the same or an earlier day.
    assert!(day("stack_web_1").after.is_empty(), "db and cache come later");
    let cache_after: Vec<&str> = day("stack_cache_1").after.iter().map(|a| a.value.as_str()).collect();
    assert!(cache_after.is_empty(), "db is on a later day: {cache_after:?}");
    let agent_after: Vec<&str> = day("agent").after.iter().map(|a| a.value.as_str()).collect();
    assert_eq!(agent_after, ["stack_cache_1"]);
    // The rendered plan passes check, and says why.
    let text = toml(&plan);
    let parsed = crate::model::plan::Plan::parse("init.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(parsed.service("agent").unwrap().keep_root.as_deref(), Some("mounts docker.sock"));
    assert!(text.contains("# profile postgres"), "{text}");
    assert!(text.contains("[service.stack_db_1]"));
}

#[test]
fn a_container_init_cannot_place_is_written_commented_out() {
    let mut f = facts(PASSWD);
    f.accounts = Err("No such image: sha256:1d".into());
    let d = decide(&seen(inspect("odd", "acme/odd", json!({})), Class::Root, &[0], f), &Profiles::builtin());
    assert_eq!(d.placement, Placement::Unplaced);
    let plan =
        lay_out("x".into(), vec![d], vec![LeftOut { name: "web".into(), why: "already runs as uid 33".into() }], &[]);
    let text = toml(&plan);
    assert!(
        text.contains("# odd: image acme/odd; init cannot place it: its image's users could not be read"),
        "{text}"
    );
    assert!(text.contains("# [service.odd]"));
    assert!(text.contains("# left out: web (already runs as uid 33)"));
}

#[test]
fn a_container_name_with_dots_is_a_quoted_key() {
    let c = inspect("web.v2", "acme/web", json!({}));
    let d = decide(&seen(c.clone(), Class::Root, &[0], facts(PASSWD)), &Profiles::builtin());
    let text = toml(&lay_out("x".into(), vec![d], vec![], &[c]));
    assert!(text.contains("[service.\"web.v2\"]"), "{text}");
    let plan = crate::model::plan::Plan::parse("x.toml", &text).unwrap();
    assert!(plan.service("web.v2").is_some());
}
