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
        d.blockers[0]
            .starts_with("/root/.ollama lies inside /root (mode 0700, owner 0:0), which uid 1000 cannot pass through"),
        "{:?}",
        d.blockers
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

#[test]
fn a_profiles_env_never_replaces_what_the_container_sets_itself() {
    let llm = |env: Value| {
        let c = inspect("llm", "ollama/ollama", json!({"Config": {"Env": env}, "Mounts": []}));
        decide(&seen(c, Class::Root, &[0], facts("root:x:0:0:root:/root:/bin/bash\n")), &Profiles::builtin())
    };
    let d = llm(json!(["PATH=/usr/bin"]));
    assert!(d.env.contains_key("OLLAMA_MODELS"), "{:?}", d.env);
    let d = llm(json!(["PATH=/usr/bin", "OLLAMA_MODELS=/models"]));
    assert!(!d.env.contains_key("OLLAMA_MODELS"), "its own models path stays: {:?}", d.env);
}

#[test]
fn nginx_gets_tmpfs_for_the_runtime_paths_its_layout_has() {
    let nginx = |paths: &[&str]| {
        let mut f = facts("root:x:0:0:root:/root:/bin/bash\nnginx:x:101:101::/nonexistent:/bin/false\n");
        for p in paths {
            f.paths.insert(p.to_string(), (Owner::ROOT, 0o755));
        }
        let c = inspect("web", "nginx:1.27", json!({"Mounts": []}));
        decide(&seen(c, Class::Root, &[0, 101], f), &Profiles::builtin())
    };
    let tmpfs = |d: &Decision| d.tmpfs.iter().map(|t| t.value.clone()).collect::<Vec<_>>();
    // nginxinc: temp paths under /var/cache/nginx, the pid file in /var/run (/run).
    let d = nginx(&["/var/cache/nginx", "/run"]);
    assert_eq!(d.user.as_ref().unwrap().value, "101:101");
    assert_eq!(tmpfs(&d), ["/var/cache/nginx", "/run"]);
    assert!(d.tmpfs[0].because.starts_with("profile nginx: "), "{}", d.tmpfs[0].because);
    // Debian's package: /var/lib/nginx/{body,proxy,…} and /run/nginx.pid.
    assert_eq!(tmpfs(&nginx(&["/var/lib/nginx", "/run"])), ["/var/lib/nginx", "/run"]);
    // A path the image gives to the user already needs none.
    let mut f = facts("root:x:0:0:root:/root:/bin/bash\nnginx:x:101:101::/nonexistent:/bin/false\n");
    f.paths.insert("/var/cache/nginx".into(), (Owner::new(101, 101), 0o755));
    let d = decide(&seen(inspect("web", "nginx", json!({"Mounts": []})), Class::Root, &[0], f), &Profiles::builtin());
    assert!(d.tmpfs.is_empty(), "{:?}", d.tmpfs);
}

#[test]
fn runtime_state_written_in_the_layer_gets_tmpfs_and_other_writes_a_warning() {
    let mut s = seen(inspect("app", "acme/app:1", json!({})), Class::Root, &[0], facts(PASSWD));
    s.rootfs_changes = Some(
        [
            "/run",
            "/run/app.pid",
            "/var",
            "/var/cache",
            "/var/cache/app",
            "/var/cache/app/x",
            "/srv",
            "/srv/upload.bin",
            "/data",
        ]
        .map(String::from)
        .to_vec(),
    );
    let d = decide(&s, &Profiles::builtin());
    let tmpfs: Vec<(&str, &str)> = d.tmpfs.iter().map(|t| (t.value.as_str(), t.because.as_str())).collect();
    assert_eq!(
        tmpfs,
        [
            ("/run", "it wrote /run/app.pid there (docker diff): runtime state, lost at any restart"),
            ("/var/cache/app", "it wrote /var/cache/app/x there (docker diff): runtime state, lost at any restart"),
        ]
    );
    assert_eq!(
        d.warnings,
        [
            "it wrote /srv/upload.bin in its own layer (docker diff), which a recreate loses: move what must last to a volume"
        ]
    );
    let text = toml(&lay_out("x".into(), vec![d], vec![], std::slice::from_ref(&s.container)));
    let plan = crate::model::plan::Plan::parse("x.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let paths: Vec<&str> = plan.service("app").unwrap().tmpfs.iter().map(|t| t.path.as_str()).collect();
    assert_eq!(paths, ["/run", "/var/cache/app"]);
}

#[test]
fn a_blocked_service_gets_a_day_of_its_own_after_the_others() {
    let root0700 = |name: &str| {
        let mut f = facts("root:x:0:0:root:/root:/bin/bash\n");
        f.paths.insert("/root".into(), (Owner::ROOT, 0o700));
        let m = json!({"Mounts": [{"Type": "volume", "Name": "m", "Source": "/v", "Destination": "/root/.ollama", "RW": true}]});
        seen(inspect(name, "acme/llm", m), Class::Root, &[0], f)
    };
    let llm = root0700("llm");
    let cache = seen(inspect("cache", "redis:7", json!({})), Class::Root, &[0], facts(PASSWD));
    let web = seen(inspect("web", "acme/web", json!({"Mounts": []})), Class::Root, &[0], facts(PASSWD));
    let sock = json!({"Mounts": [{"Type": "bind", "Source": "/var/run/docker.sock", "Destination": "/var/run/docker.sock", "RW": true}]});
    let agent = seen(inspect("agent", "acme/agent", sock), Class::Root, &[0], facts(PASSWD));
    let all: Vec<Seen> = vec![llm, cache, web, agent];
    let decisions = all.iter().map(|s| decide(s, &Profiles::builtin())).collect();
    let containers: Vec<Inspect> = all.iter().map(|s| s.container.clone()).collect();
    let plan = lay_out("x".into(), decisions, vec![], &containers);
    let day = |n: &str| plan.services.iter().find(|d| d.name == n).unwrap().day;
    assert_eq!((day("web"), day("cache"), day("agent"), day("llm")), (1, 2, 2, 3), "{:#?}", plan.days);
    assert_eq!(plan.days[&3], "llm alone: blocked until fixed");
    let text = toml(&plan);
    assert!(text.contains("# BLOCKED: /root/.ollama lies inside /root (mode 0700"), "{text}");
    crate::model::plan::Plan::parse("x.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

#[test]
fn an_image_without_a_profile_is_placed_by_its_port_label_or_name_else_after_the_known_kinds() {
    let kind_of = |patch: Value| {
        let d = decide(&seen(inspect("x", "acme/x", patch), Class::Root, &[0], facts(PASSWD)), &Profiles::builtin());
        (d.kind.value, d.kind.because)
    };
    let (k, why) = kind_of(json!({"Config": {"ExposedPorts": {"8000/tcp": {}, "5432/tcp": {}}}}));
    assert_eq!((k, why.as_str()), (Kind::Database, "no profile; it exposes 5432/tcp, PostgreSQL's port"));
    let (k, why) = kind_of(json!({"Config": {"ExposedPorts": {"11434/tcp": {}}}}));
    assert_eq!((k, why.contains("Ollama")), (Kind::ModelServer, true));
    let (k, why) = kind_of(json!({"Config": {"Labels": {"org.opencontainers.image.title": "Qdrant"}}}));
    assert_eq!((k, why.as_str()), (Kind::SearchVector, "no profile; its OCI title \"Qdrant\" names qdrant"));
    let (k, _) = kind_of(json!({"Config": {"Labels": {"com.docker.compose.service": "queue-rabbit"}}}));
    assert_eq!(k, Kind::CacheQueue);
    assert_eq!(kind_of(json!({})).0, Kind::Unknown, "writable mounts and no evidence");
    assert_eq!(kind_of(json!({"Mounts": []})).0, Kind::Stateless);
    assert!(Kind::Unknown > Kind::ModelServer, "its day comes after the known kinds");
}

#[test]
fn a_healthcheck_that_switches_user_is_rewritten_without_the_switch() {
    let hc = json!({"Config": {"Healthcheck": {"Test": ["CMD", "healthcheck.sh", "--su-mysql", "--connect"], "Interval": 2000000000u64}}});
    let s = seen(inspect("db", "mariadb:11", hc), Class::DropsRoot, &[999], facts(PASSWD));
    let d = decide(&s, &Profiles::builtin());
    let h = d.healthcheck.as_ref().expect("a rewritten check");
    assert_eq!(h.value, ["CMD", "healthcheck.sh", "--connect"]);
    assert!(h.because.contains("MariaDB/mariadb-docker #648"), "{}", h.because);
    assert_eq!(d.health.value, Health::Docker, "still gated on Docker's health, with the new test");
    let text = toml(&lay_out("x".into(), vec![d], vec![], std::slice::from_ref(&s.container)));
    let plan = crate::model::plan::Plan::parse("x.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(plan.service("db").unwrap().healthcheck.as_deref().unwrap(), ["CMD", "healthcheck.sh", "--connect"]);
    let plain = json!({"Config": {"Healthcheck": {"Test": ["CMD", "healthcheck.sh", "--connect"]}}});
    let d = decide(
        &seen(inspect("db", "mariadb:11", plain), Class::DropsRoot, &[999], facts(PASSWD)),
        &Profiles::builtin(),
    );
    assert!(d.healthcheck.is_none());
}

#[test]
fn qdrant_without_a_snapshots_mount_gets_a_tmpfs_there_and_with_one_none() {
    let qdrant = |mounts: Value| {
        let c = inspect("vec", "qdrant/qdrant:v1.12", json!({"Mounts": mounts}));
        decide(&seen(c, Class::Root, &[0], facts(PASSWD)), &Profiles::builtin())
    };
    let storage = json!({"Type": "volume", "Name": "s", "Source": "/v", "Destination": "/qdrant/storage", "RW": true});
    let d = qdrant(json!([storage]));
    let tmpfs: Vec<&str> = d.tmpfs.iter().map(|t| t.value.as_str()).collect();
    assert_eq!(tmpfs, ["/qdrant/snapshots"]);
    assert!(d.tmpfs[0].because.contains("mount a volume there to keep it"), "{}", d.tmpfs[0].because);
    let snaps = json!({"Type": "volume", "Name": "n", "Source": "/w", "Destination": "/qdrant/snapshots", "RW": true});
    let d = qdrant(json!([storage, snaps]));
    assert!(d.tmpfs.is_empty(), "the volume is re-owned instead: {:?}", d.tmpfs);
    assert_eq!(d.chown.value, ["/qdrant/snapshots", "/qdrant/storage"]);
}

#[test]
fn chroma_0x_without_a_mount_for_its_log_file_is_written_commented_out_with_the_fix() {
    let chroma = |dir: Option<(Owner, u32)>, mounts: Value| {
        let mut f = facts("root:x:0:0:root:/root:/bin/bash\n");
        if let Some(d) = dir {
            f.paths.insert("/chroma".into(), d);
        }
        let c = inspect("vec", "chromadb/chroma:0.6.3", json!({"Mounts": mounts}));
        decide(&seen(c, Class::Root, &[0], f), &Profiles::builtin())
    };
    let data = json!({"Type": "volume", "Name": "d", "Source": "/v", "Destination": "/chroma/chroma", "RW": true});
    let d = chroma(Some((Owner::ROOT, 0o755)), json!([data]));
    assert_eq!(d.placement, Placement::Unplaced, "the preview cannot see it: written commented out");
    assert_eq!(
        d.unplaced.as_deref(),
        Some(
            "profile chroma: it writes /chroma/chroma.log, in /chroma (owner 0:0, mode 0755), which uid 1000 cannot write, and no mount covers it: bind-mount a file owned by 1000:1000 there"
        )
    );
    let text = toml(&lay_out("x".into(), vec![d], vec![], &[]));
    assert!(text.contains("# [service.vec]") && text.contains("bind-mount a file owned by 1000:1000 there"), "{text}");
    let log = json!({"Type": "bind", "Source": "/srv/chroma.log", "Destination": "/chroma/chroma.log", "RW": true});
    assert_eq!(chroma(Some((Owner::ROOT, 0o755)), json!([data, log])).placement, Placement::Migrate, "a file mount");
    assert_eq!(chroma(None, json!([])).placement, Placement::Migrate, "1.x images have no /chroma");
    // A group that may write the directory (images run with gid 0) is no blocker.
    assert_eq!(chroma(Some((Owner::new(0, 1000), 0o775)), json!([data])).placement, Placement::Migrate);
}

#[test]
fn a_healthcheck_holding_an_environment_value_is_never_written_into_the_plan() {
    let hc = json!({"Config": {"Env": ["MARIADB_ROOT_PASSWORD=s3cr3t-root-pw"],
        "Healthcheck": {"Test": ["CMD-SHELL", "healthcheck.sh --su-mysql --connect -ps3cr3t-root-pw"]}}});
    let s = seen(inspect("db", "mariadb:11", hc), Class::DropsRoot, &[999], facts(PASSWD));
    let d = decide(&s, &Profiles::builtin());
    assert!(d.healthcheck.is_none());
    assert_eq!(d.blockers.len(), 1, "{:?}", d.blockers);
    let text = toml(&lay_out("x".into(), vec![d], vec![], std::slice::from_ref(&s.container)));
    assert!(!text.contains("s3cr3t-root-pw"), "{text}");
    assert!(text.contains("-p<redacted>") && text.contains("# BLOCKED:"), "{text}");
}
