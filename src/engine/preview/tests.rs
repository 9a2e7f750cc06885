//! The preview's decisions from an observed container: blockers, warnings and the resolved
//! service, with no Docker, no fake and no file system.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::service::{HelperFacts, MountFacts, Observed, derive};
use super::*;
use crate::docker::fake::merge;
use crate::model::user::Accounts;

const PASSWD: &str = "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\nredis:x:999:999::/data:/bin/sh\n";
const GROUP: &str = "root:x:0:\nredis:x:999:\ndocker:x:998:\n";

fn container(patch: Value) -> Inspect {
    let mut c = json!({
        "Id": "c0ffee000000000000000000", "Name": "/svc", "Image": "sha256:1mage0000000000",
        "Config": {"User": "", "Image": "redis:7", "Env": ["A=1"], "Cmd": ["redis-server"]},
        "HostConfig": {"NetworkMode": "default", "AutoRemove": false},
        "Mounts": [{"Type": "volume", "Name": "data", "Source": "/var/lib/docker/volumes/data/_data",
                    "Destination": "/data", "RW": true}],
        "State": {"Running": true, "Status": "running"}
    });
    merge(&mut c, patch);
    Inspect(c)
}

fn facts(method: Result<Method, String>) -> MountFacts {
    MountFacts { root_owner: Some(Owner::ROOT), bind: None, entries: Some(3), method, above: Vec::new() }
}

fn observed(c: Inspect) -> Observed {
    let mounts = c.mounts().into_iter().map(|m| (m.destination, facts(Ok(Method::Helper)))).collect();
    Observed {
        image_ref: c.image().to_string(),
        container: c,
        accounts: Ok(Accounts::parse(Some(PASSWD), Some(GROUP))),
        protected: BTreeMap::new(),
        mounts,
        helper: HelperFacts::default(),
        layer: None,
        seccomp_files: BTreeMap::new(),
    }
}

fn preview(service: &str, obs: &Observed) -> ServicePlan {
    preview_with("", service, obs, &BTreeMap::new())
}

fn preview_with(
    rollout: &str,
    service: &str,
    obs: &Observed,
    volume_users: &BTreeMap<String, Vec<String>>,
) -> ServicePlan {
    let text = format!("[rollout]\nname = \"t\"\n{rollout}\n[service.svc]\nday = 1\n{service}\n");
    let plan = Plan::parse("t.toml", &text).unwrap();
    derive(&plan, plan.service("svc").unwrap(), obs, volume_users)
}

#[test]
fn a_clean_service_resolves_to_numbers() {
    let sp = preview("user = \"redis\"", &observed(container(json!({}))));
    assert!(sp.blockers.is_empty(), "{:?}", sp.blockers);
    assert_eq!(sp.user.from, "(unset) root (0:0)");
    assert_eq!(sp.user.to, "redis (999:999)");
    let r = sp.resolved.as_ref().unwrap();
    assert_eq!(r.target, Some(Owner::new(999, 999)));
    assert_eq!(r.changes.user.as_deref(), Some("999:999"));
    assert_eq!(r.mounts.len(), 1);
    assert_eq!((r.mounts[0].destination.as_str(), r.mounts[0].source.as_str()), ("/data", "data"));
    assert_eq!(sp.chown[0].entries, Some(3));
    assert_eq!(sp.chown[0].method, Method::Helper);
    assert_eq!(r.helper_image, "sha256:1mage0000000000", "the service's own image by id");
    assert_eq!(r.health, HealthMode::Running);
    assert_eq!(sp.warnings, ["no health check and no exec probe: healthy means running for stable_for"]);
}

#[test]
fn a_container_that_cannot_be_stopped_safely_blocks() {
    let c = container(json!({"State": {"Running": false, "Status": "exited"}, "HostConfig": {"AutoRemove": true}}));
    let sp = preview("user = \"redis\"", &observed(c));
    assert_eq!(
        sp.blockers,
        ["svc is not running (exited)", "the container was started with --rm: stopping it would delete it"]
    );
}

#[test]
fn users_the_image_cannot_resolve_block_and_unknown_uids_warn() {
    let obs = observed(container(json!({})));
    assert_eq!(preview("user = \"postgres\"", &obs).blockers, ["user `postgres` is not in the image's /etc/passwd"]);
    assert_eq!(preview("user = \"redis:wheel\"", &obs).blockers, ["group `wheel` is not in the image's /etc/group"]);
    assert_eq!(
        preview("user = \"toor\"", &obs).blockers,
        ["user `toor` is uid 0 in the image; use keep_root to keep it on root"]
    );
    let sp = preview("user = \"1234\"", &obs);
    assert!(sp.blockers.is_empty(), "{:?}", sp.blockers);
    assert!(sp.warnings.contains(&"uid 1234 has no /etc/passwd entry in the image; its group is 1234".to_string()));
    let sp = preview("user = \"redis\"\ngroup_add = [\"docker\", \"wheel\"]", &obs);
    assert!(sp.changes.contains(&"group_add: + docker (998)".to_string()), "{:?}", sp.changes);
    assert_eq!(sp.blockers, ["group `wheel` is not in the image's /etc/group"]);
}

#[test]
fn a_probe_that_failed_blocks_but_numbers_still_resolve() {
    let mut obs = observed(container(json!({})));
    obs.accounts = Err("cannot read the image's /etc/passwd: no such image".into());
    let sp = preview("user = \"1000:1000\"", &obs);
    assert_eq!(sp.blockers, ["cannot read the image's /etc/passwd: no such image"]);
    assert_eq!(sp.resolved.unwrap().target, Some(Owner::new(1000, 1000)));
}

#[test]
fn what_is_seen_of_a_mount_warns_or_blocks() {
    let bind = json!({"Mounts": [
        {"Type": "volume", "Name": "data", "Source": "/v/data", "Destination": "/data", "RW": true},
        {"Type": "bind", "Source": "/srv/conf", "Destination": "/conf", "RW": true},
        {"Type": "bind", "Source": "/etc", "Destination": "/host-etc", "RW": true},
        {"Type": "volume", "Name": "logs", "Source": "/v/logs", "Destination": "/logs", "RW": true}
    ]});
    let mut obs = observed(container(bind));
    obs.protected.insert("/etc".into(), "/etc is a protected system path".into());
    obs.mounts.get_mut("/data").unwrap().root_owner = Some(Owner::new(5, 6));
    obs.mounts.get_mut("/conf").unwrap().bind = Some(Err("it is a symlink".into()));
    obs.mounts.get_mut("/conf").unwrap().method = Err("ownership = \"host\" needs unroot as root".into());
    obs.mounts.remove("/logs");
    let sp = preview("user = \"redis\"", &obs);
    assert_eq!(
        sp.blockers,
        [
            "bind mount /etc → /host-etc: /etc is a protected system path; unroot never re-owns it",
            "bind mount /srv/conf → /conf: it is a symlink",
            "ownership = \"host\" needs unroot as root",
            "/logs was not examined; run the preview again",
        ]
    );
    assert!(sp.warnings.contains(&"/data is owned by uid 5:6, neither root nor the target".to_string()));
    // A bind pinned from here is re-owned at its real path, checked by device and inode.
    obs.mounts.get_mut("/conf").unwrap().bind = Some(Ok(("/srv/real-conf".into(), (8, 42))));
    let r = preview("user = \"redis\"", &obs).resolved.unwrap();
    let conf = r.mounts.iter().find(|m| m.destination == "/conf").unwrap();
    assert_eq!(
        (conf.source.as_str(), conf.host_path.as_str(), conf.identity),
        ("/srv/real-conf", "/srv/real-conf", Some((8, 42)))
    );
}

#[test]
fn chown_lists_only_mounts_that_exist_and_can_change() {
    let c = container(json!({"Mounts": [
        {"Type": "volume", "Name": "data", "Source": "/v/data", "Destination": "/data", "RW": true},
        {"Type": "volume", "Name": "ro", "Source": "/v/ro", "Destination": "/ro", "RW": false}
    ]}));
    let sp = preview("user = \"redis\"\nchown = [\"/data\", \"/ro\", \"/nowhere\"]", &observed(c));
    assert_eq!(sp.blockers, ["chown names /nowhere, but the container has no mount there (mounts: /data, /ro)"]);
    assert!(sp.warnings.contains(&"/ro is mounted read-only; it is not re-owned".to_string()));
    assert_eq!(sp.resolved.unwrap().mounts.len(), 1);
    // Without a new user nothing is re-owned.
    assert!(preview("read_only = true", &observed(container(json!({})))).chown.is_empty());
}

#[test]
fn the_risks_of_the_container_warn() {
    let c = container(json!({
        "Config": {"Entrypoint": ["docker-entrypoint.sh"], "Cmd": ["gosu", "redis", "redis-server"],
                   "ExposedPorts": {"80/tcp": {}, "6379/tcp": {}}},
        "HostConfig": {"NetworkMode": "host"},
        "Mounts": [
            {"Type": "volume", "Name": "data", "Source": "/v/data", "Destination": "/data", "RW": true},
            {"Type": "bind", "Source": "/var/run/docker.sock", "Destination": "/var/run/docker.sock", "RW": true}
        ]
    }));
    let users = BTreeMap::from([("data".to_string(), vec!["backup".to_string()])]);
    let sp = preview_with("", "user = \"redis\"\nhealth = \"running\"", &observed(c), &users);
    assert_eq!(
        sp.warnings,
        [
            "docker.sock is mounted: whoever runs in it controls the host",
            "the entrypoint (gosu) may switch user itself; once `user` is set it skips its own chown, so unroot's re-owning must cover its data",
            "host network and ports below 1024 (80/tcp): a non-root user cannot bind them in the host's namespace",
            "volume data is shared with backup, outside this day",
        ]
    );
    let sp = preview("keep_root = \"needs it\"\ncap_drop = [\"ALL\"]", &observed(container(json!({}))));
    assert!(sp.warnings.iter().any(|w| w.starts_with("Redis with cap_drop and no user")), "{:?}", sp.warnings);
}

#[test]
fn the_helper_image_must_have_its_tools() {
    let mut obs = observed(container(json!({})));
    obs.helper.missing_tools = vec!["find", "xargs"];
    assert_eq!(
        preview("user = \"redis\"", &obs).blockers,
        [
            "the image has no find, xargs for the re-owning helper; set [rollout] helper_image to an image that has sh, find, stat, chown and xargs"
        ]
    );
    let mut obs = observed(container(json!({})));
    obs.helper.image_absent = true;
    let sp = preview_with("helper_image = \"tools:1\"", "user = \"redis\"", &obs, &BTreeMap::new());
    assert_eq!(sp.blockers, ["helper_image tools:1 is not on the daemon"]);
    assert_eq!(sp.resolved.unwrap().helper_image, "tools:1");
    // A helper that cannot read file capabilities is said, not blocked.
    let mut obs = observed(container(json!({})));
    obs.helper.no_xattr_tools = true;
    let sp = preview("user = \"redis\"", &obs);
    assert!(sp.blockers.is_empty(), "{:?}", sp.blockers);
    assert!(sp.warnings.iter().any(|w| w.contains("no getfattr/setfattr: file capabilities")), "{:?}", sp.warnings);
}

#[test]
fn a_mount_the_user_cannot_reach_blocks_before_anything_stops() {
    let c = container(json!({"Mounts": [
        {"Type": "volume", "Name": "m", "Source": "/v/m", "Destination": "/root/.ollama", "RW": true}
    ]}));
    let mut obs = observed(c);
    obs.mounts.get_mut("/root/.ollama").unwrap().above = vec![("/root".into(), Owner::ROOT, 0o700)];
    assert_eq!(
        preview("user = \"redis\"", &obs).blockers,
        [
            "/root/.ollama lies inside /root (mode 0700, owner 0:0), which uid 999 cannot pass through: the service cannot reach its data; move the mount or open /root"
        ]
    );
    obs.mounts.get_mut("/root/.ollama").unwrap().above = vec![("/root".into(), Owner::new(0, 998), 0o750)];
    assert!(preview("user = \"redis\"\ngroup_add = [\"docker\"]", &obs).blockers.is_empty(), "its group may pass");
}

#[test]
fn a_day_reads_each_images_users_once() {
    use crate::docker::fake::{Call, FakeDocker};
    let fake = FakeDocker::default();
    for name in ["a", "b", "c"] {
        let mut c = container(json!({"Name": format!("/{name}"), "Id": format!("{name}0000000000000")}));
        c.0["Mounts"] = json!([]);
        fake.add(c.0, vec![]);
    }
    fake.with(|s| {
        s.images.insert("redis:7".into(), json!({"Id": "sha256:1mage0000000000"}));
    });
    let plan = Plan::parse(
        "t.toml",
        "[rollout]\nname = \"t\"\n[service.a]\nday = 1\nuser = \"1000\"\n[service.b]\nday = 1\nuser = \"1000\"\n[service.c]\nday = 1\nuser = \"1000\"\n",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let day = rt.block_on(compute(&fake, &plan, 1, &[], NameSource::ImageProbe)).unwrap();
    assert_eq!(day.services.len(), 3);
    let probes = fake.calls().iter().filter(|c| matches!(c, Call::Create(n) if n.ends_with(".unroot-probe"))).count();
    assert_eq!(probes, 1, "one probe for the one image of three services");
}

#[test]
fn a_tmpfs_is_owned_by_the_target_and_blocked_where_the_container_already_mounts() {
    let sp = preview("user = \"redis\"\ntmpfs = [{ path = \"/run\", size = \"1m\" }]", &observed(container(json!({}))));
    assert!(sp.blockers.is_empty(), "{:?}", sp.blockers);
    let r = sp.resolved.as_ref().unwrap();
    assert_eq!(
        r.changes.tmpfs,
        BTreeMap::from([("/run".to_string(), "size=1m,mode=0755,uid=999,gid=999".to_string())])
    );
    assert!(
        sp.changes.iter().any(|c| c.starts_with("tmpfs: + /run (") && c.ends_with("owned by 999:999)")),
        "{:?}",
        sp.changes
    );

    let sp = preview("user = \"redis\"\ntmpfs = [\"/data\"]", &observed(container(json!({}))));
    assert_eq!(sp.blockers, ["tmpfs /data: the container already has a mount there; remove it from `tmpfs`"]);
    let c = container(json!({"HostConfig": {"Tmpfs": {"/run": ""}}}));
    let sp = preview("user = \"redis\"\ntmpfs = [\"/run\"]", &observed(c));
    assert_eq!(sp.blockers.len(), 1, "an existing --tmpfs counts too: {:?}", sp.blockers);
    // Without `user`, the tmpfs belongs to the user the container already runs as.
    let c = container(json!({"Config": {"User": "redis"}}));
    let sp = preview("tmpfs = [\"/run\"]\ncap_drop = [\"ALL\"]", &observed(c));
    assert_eq!(sp.resolved.unwrap().changes.tmpfs["/run"], "mode=0755,uid=999,gid=999");
    let sp = preview("keep_root = \"x\"\ntmpfs = [\"/run\"]", &observed(container(json!({}))));
    assert_eq!(sp.resolved.unwrap().changes.tmpfs["/run"], "mode=0755", "root's");
}

#[test]
fn writes_in_the_containers_own_layer_are_named_unless_a_tmpfs_or_mount_covers_them() {
    let mut obs = observed(container(json!({})));
    obs.layer = Some(
        ["/run", "/run/app.pid", "/data", "/var", "/var/cache", "/var/cache/app", "/var/cache/app/x", "/etc/app.conf"]
            .map(String::from)
            .to_vec(),
    );
    let sp = preview("user = \"redis\"\ntmpfs = [\"/var/cache/app\"]", &obs);
    let w: Vec<&String> = sp.warnings.iter().filter(|w| w.contains("own layer")).collect();
    assert_eq!(w.len(), 1, "{:?}", sp.warnings);
    assert!(
        w[0].starts_with("it wrote 2 path(s) in its own layer") && w[0].contains("/etc/app.conf, /run/app.pid"),
        "{}",
        w[0]
    );
    obs.layer = Some(vec!["/data".into(), "/run".into(), "/run/app.pid".into()]);
    let sp = preview("user = \"redis\"\ntmpfs = [\"/run\"]", &obs);
    assert!(!sp.warnings.iter().any(|w| w.contains("own layer")), "{:?}", sp.warnings);
}

#[test]
fn a_seccomp_profile_goes_to_the_daemon_by_its_contents_and_the_override_by_its_path() {
    let mut obs = observed(container(json!({})));
    let plan = "user = \"redis\"\nsecurity_opt = [\"apparmor=docker-default\", \"seccomp=/etc/p.json\"]";
    obs.seccomp_files.insert("seccomp=/etc/p.json".into(), Ok("seccomp={\"defaultAction\":\"SCMP_ACT_ERRNO\"}".into()));
    let sp = preview(plan, &obs);
    assert!(sp.blockers.is_empty(), "{:?}", sp.blockers);
    let r = sp.resolved.as_ref().unwrap();
    assert_eq!(r.changes.security_opt, ["apparmor=docker-default", "seccomp={\"defaultAction\":\"SCMP_ACT_ERRNO\"}"]);
    assert_eq!(r.security_opt_as_written, ["apparmor=docker-default", "seccomp=/etc/p.json"]);
    assert!(sp.changes.contains(&"security_opt: + seccomp=<profile of 34 bytes>".to_string()), "{:?}", sp.changes);
    obs.seccomp_files.insert("seccomp=/etc/p.json".into(), Err("security_opt seccomp=/etc/p.json: cannot read".into()));
    assert_eq!(preview(plan, &obs).blockers, ["security_opt seccomp=/etc/p.json: cannot read"]);
}

#[test]
fn a_healthcheck_that_switches_user_blocks_until_the_plan_replaces_it() {
    let c =
        container(json!({"Config": {"Healthcheck": {"Test": ["CMD", "healthcheck.sh", "--su-mysql", "--connect"]}}}));
    let sp = preview("user = \"redis\"", &observed(c.clone()));
    assert_eq!(
        sp.blockers,
        [
            "its HEALTHCHECK (CMD healthcheck.sh --su-mysql --connect) switches user itself, which fails once it is not root (MariaDB/mariadb-docker #648): set healthcheck = [\"CMD\",\"healthcheck.sh\",\"--connect\"]"
        ]
    );
    let sp =
        preview("user = \"redis\"\nhealthcheck = [\"CMD\", \"healthcheck.sh\", \"--connect\"]", &observed(c.clone()));
    assert!(sp.blockers.is_empty(), "{:?}", sp.blockers);
    assert!(
        sp.changes.contains(
            &"healthcheck: CMD healthcheck.sh --su-mysql --connect → CMD healthcheck.sh --connect".to_string()
        )
    );
    let r = sp.resolved.unwrap();
    assert_eq!(r.changes.healthcheck, Some(vec!["CMD".into(), "healthcheck.sh".into(), "--connect".into()]));
    assert!(preview("", &observed(c)).blockers.is_empty(), "a service that stays root may keep it");
}

#[test]
fn a_healthcheck_is_shown_without_the_values_of_the_environment() {
    let c = container(json!({"Config": {"Env": ["PW=s3cr3t-value"],
        "Healthcheck": {"Test": ["CMD-SHELL", "check --su-mysql -ps3cr3t-value"]}}}));
    let sp = preview("user = \"redis\"", &observed(c.clone()));
    assert!(sp.blockers[0].contains("check --su-mysql -p<redacted>"), "{:?}", sp.blockers);
    assert!(!format!("{:?}", sp.blockers).contains("s3cr3t"));
    let sp = preview("user = \"redis\"\nhealthcheck = [\"CMD-SHELL\", \"check -ps3cr3t-value\"]", &observed(c));
    assert!(!format!("{:?}", sp.changes).contains("s3cr3t"), "{:?}", sp.changes);
}

#[test]
fn capabilities_are_applied_by_their_normal_names_whatever_the_plan_s_spelling() {
    let c = container(json!({"HostConfig": {"CapAdd": ["CAP_NET_ADMIN"]}}));
    let sp = preview("user = \"redis\"\ncap_drop = [\"all\"]\ncap_add = [\"net_admin\", \"cap_chown\"]", &observed(c));
    let r = sp.resolved.as_ref().unwrap();
    assert_eq!(
        (r.changes.cap_drop.as_slice(), r.changes.cap_add.as_slice()),
        (&["ALL".to_string()][..], &["NET_ADMIN".to_string(), "CHOWN".to_string()][..])
    );
    // The preview lists what changes: NET_ADMIN, in Docker's spelling, is already added.
    let caps: Vec<&String> = sp.changes.iter().filter(|l| l.starts_with("cap_")).collect();
    assert_eq!(caps, ["cap_drop: + ALL", "cap_add: + CHOWN"]);
    // The recreated container is created with them, each once.
    let req = crate::docker::recreate::create_request(&r.original, &r.changes, false);
    assert_eq!(req.body["HostConfig"]["CapDrop"], json!(["ALL"]));
    assert_eq!(req.body["HostConfig"]["CapAdd"], json!(["CAP_NET_ADMIN", "CHOWN"]));
}
