//! The migration an operator runs on a real stack: a docker-compose 1.x project of the
//! official-like postgres, redis and rabbitmq images (tests/fixtures/build-official-images.sh),
//! all started as root with data in them, moved to their images' own user (999:999) in one
//! day, then brought up again by compose with the override unroot wrote. Every check is one an
//! operator would make: who each process runs as, whether each server answers, whether the
//! rows, keys, vhost and user are still there, and `unroot verify`.

use crate::common::official::{
    assert_all_at, http_status, official_image, psql, published_port, rabbitmqctl, run_redis, top, wait_for_http_200,
    wait_for_rabbitmq, wait_for_redis_pong,
};
use crate::common::stack::{
    PG_SECRET, RABBIT_PASSWORD, RABBIT_USER, RABBIT_VHOST, Stack, StackUp, assert_at_999, assert_data, audit_classes,
};
use crate::common::{TestEnv, docker, inspect, unroot_in};
use serde_json::Value;

/// The plan: all three to 999:999 on day 1, each gated on a check of real readiness.
fn plan(s: &Stack) -> String {
    format!(
        r#"[rollout]
name = "official-stack"
state_dir = "state"
stable_for = "3s"
stop_timeout = "30s"
health_timeout = "2m"

[days]
1 = "postgres, redis and rabbitmq off root"

[service.{pg}]
day = 1
user = "999:999"
chown = ["/var/lib/postgresql/data"]
# Over TCP: the server for good, not a socket-only one.
health = {{ exec = ["pg_isready", "-h", "127.0.0.1", "-U", "postgres"] }}

[service.{redis}]
day = 1
user = "999:999"
chown = ["/data"]
health = {{ exec = ["sh", "-c", 'test "$(redis-cli ping)" = PONG'] }}

[service.{rabbit}]
day = 1
user = "999:999"
chown = ["/var/lib/rabbitmq"]
health = {{ exec = ["rabbitmq-diagnostics", "-q", "check_running"] }}
health_timeout = "3m"
"#,
        pg = s.postgres,
        redis = s.redis,
        rabbit = s.rabbitmq,
    )
}

#[test]
fn a_compose_stack_of_postgres_redis_and_rabbitmq_moves_to_999_with_its_data() {
    let env = TestEnv::new("off-stack");
    let stack = StackUp::start(&env);
    let (dir, s) = (&stack.dir, &stack.s);
    assert_data(s, 0, "before");

    // As the official images do: configured as root, every process dropped to 999.
    let mut expected: Vec<(String, String)> = s.all().iter().map(|n| (n.to_string(), "drops-root".into())).collect();
    expected.sort();
    assert_eq!(audit_classes(dir.path(), &env), expected, "before");

    std::fs::write(dir.path().join("plan.toml"), plan(s)).unwrap();
    let check = unroot_in(dir.path(), &["check", "plan.toml"]);
    assert_eq!(check.code, Some(0), "{}{}", check.stdout, check.stderr);
    let run = unroot_in(dir.path(), &["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"]);
    assert_eq!(run.code, Some(0), "apply\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains(PG_SECRET) && !run.stderr.contains(PG_SECRET), "a password was printed");

    s.wait();
    assert_at_999(s, "after apply");
    assert_eq!(inspect(&s.rabbitmq)["Config"]["Hostname"], "rabbit-stack");
    assert_data(s, 0, "after apply");
    // The new user writes.
    psql(&s.postgres, "INSERT INTO orders VALUES (1001, 'written as 999')");
    assert_eq!(docker(&["exec", &s.redis, "redis-cli", "set", "key-after", "yes"]), "OK");
    docker(&["exec", &s.redis, "redis-cli", "del", "key-after"]);
    let verify = unroot_in(dir.path(), &["verify", "plan.toml"]);
    assert_eq!(verify.code, Some(0), "verify\nstdout:\n{}\nstderr:\n{}", verify.stdout, verify.stderr);
    let mut migrated: Vec<(String, String)> = s.all().iter().map(|n| (n.to_string(), "non-root".into())).collect();
    migrated.sort();
    assert_eq!(audit_classes(dir.path(), &env), migrated, "after apply");

    // The next `up` keeps it: compose recreates every service from the override.
    let override_file = dir.path().join("docker-compose.unroot.yml");
    let text = std::fs::read_to_string(&override_file).expect("the override stands beside the compose file");
    assert!(run.stdout.contains("docker-compose.unroot.yml"), "the summary names it:\n{}", run.stdout);
    assert!(!text.contains(PG_SECRET), "{text}");
    let ids_before: Vec<Value> = s.all().iter().map(|n| inspect(n)["Id"].clone()).collect();
    stack.up_with_override();
    for (name, before) in s.all().iter().zip(&ids_before) {
        assert_ne!(&inspect(name)["Id"], before, "compose recreated {name}");
    }
    s.wait();
    assert_at_999(s, "after compose up with the override");
    assert_data(s, 1, "after compose up with the override");
    let verify = unroot_in(dir.path(), &["verify", "plan.toml"]);
    assert_eq!(verify.code, Some(0), "verify after up\nstdout:\n{}\nstderr:\n{}", verify.stdout, verify.stderr);
}

#[test]
fn rabbitmq_named_after_its_container_id_keeps_its_node_and_data_through_apply() {
    let env = TestEnv::new("off-rabbit-id");
    let vol = env.name("data");
    docker(&["volume", "create", "--label", &env.label(), &vol]);
    // No --hostname: Docker names the host, and so the node, after the container's short id.
    let rabbit = env.run("rabbit", &["-v", &format!("{vol}:/var/lib/rabbitmq"), &official_image("rabbitmq")]);
    wait_for_rabbitmq(&rabbit);
    let before = inspect(&rabbit);
    let hostname = before["Config"]["Hostname"].as_str().unwrap().to_string();
    assert_eq!(hostname, before["Id"].as_str().unwrap()[..12]);
    rabbitmqctl(&rabbit, &["add_vhost", RABBIT_VHOST]);
    rabbitmqctl(&rabbit, &["add_user", RABBIT_USER, RABBIT_PASSWORD]);

    let dir = env.tempdir();
    std::fs::write(
        dir.path().join("plan.toml"),
        format!(
            "[rollout]\nname = \"rabbit-id\"\nstable_for = \"3s\"\nstop_timeout = \"30s\"\n\
             [service.{rabbit}]\nday = 1\nuser = \"999:999\"\nhealth_timeout = \"3m\"\n\
             health = {{ exec = [\"rabbitmq-diagnostics\", \"-q\", \"check_running\"] }}\n"
        ),
    )
    .unwrap();
    let run = unroot_in(dir.path(), &["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"]);
    assert_eq!(run.code, Some(0), "apply\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);

    let after = inspect(&rabbit);
    assert_ne!(after["Id"], before["Id"], "recreated");
    assert_eq!(after["Config"]["Hostname"], hostname.as_str(), "the old hostname, so the old node");
    wait_for_rabbitmq(&rabbit);
    assert_all_at(&rabbit, 999);
    let node = docker(&["exec", &rabbit, "rabbitmqctl", "-q", "eval", "node()."]);
    assert_eq!(node, format!("rabbit@{hostname}"));
    assert!(rabbitmqctl(&rabbit, &["list_vhosts"]).lines().any(|l| l.trim() == RABBIT_VHOST));
    rabbitmqctl(&rabbit, &["authenticate_user", RABBIT_USER, RABBIT_PASSWORD]);
}

#[test]
fn redis_that_kept_root_gets_its_root_owned_aof_reowned_and_starts_as_999_with_every_key() {
    let env = TestEnv::new("off-redis-kept-root");
    let vol = env.name("data");
    docker(&["volume", "create", "--label", &env.label(), &vol]);
    // A partial hardening: without SETUID and SETGID the entrypoint keeps root, and redis
    // writes its AOF as root, which redis as 999 could not open.
    let redis = run_redis(&env, "redis", &vol, &["--cap-drop", "SETUID", "--cap-drop", "SETGID"]);
    wait_for_redis_pong(&redis);
    assert_all_at(&redis, 0);
    docker(&[
        "exec",
        &redis,
        "sh",
        "-c",
        "for i in $(seq 1 300); do echo \"SET key$i value$i\"; done | redis-cli > /dev/null",
    ]);
    let root_owned = crate::common::owners(&env, &vol).iter().filter(|l| l.starts_with("0:0 /d/appendonlydir")).count();
    assert!(root_owned >= 2, "the AOF is root's: {:?}", crate::common::owners(&env, &vol));

    let dir = env.tempdir();
    std::fs::write(
        dir.path().join("plan.toml"),
        format!(
            "[rollout]\nname = \"redis-kept-root\"\nstable_for = \"3s\"\nstop_timeout = \"30s\"\n\
             [service.{redis}]\nday = 1\nuser = \"999:999\"\ncap_drop = [\"ALL\"]\n\
             health = {{ exec = [\"sh\", \"-c\", 'test \"$(redis-cli ping)\" = PONG'] }}\n"
        ),
    )
    .unwrap();
    let run = unroot_in(dir.path(), &["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"]);
    assert_eq!(run.code, Some(0), "apply\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_all_at(&redis, 999);
    assert_eq!(docker(&["exec", &redis, "redis-cli", "dbsize"]), "300");
    assert_eq!(docker(&["exec", &redis, "redis-cli", "get", "key299"]), "value299");
    assert_eq!(docker(&["exec", &redis, "redis-cli", "set", "after", "yes"]), "OK", "it writes as 999");
    for line in crate::common::owners(&env, &vol) {
        assert!(line.starts_with("999:999 "), "not re-owned: {line}");
    }
}

#[test]
fn nginx_serves_as_www_data_on_tmpfs_and_a_rollback_brings_back_exactly_its_original_config() {
    let env = TestEnv::new("off-nginx-tmpfs");
    let web = env.run("web", &["-p", "127.0.0.1::80", &official_image("nginx")]);
    wait_for_http_200(&web, 80);
    let before = inspect(&web);
    assert!(top(&web).iter().any(|p| p.uid == 0), "the master runs as root, as in the official image");

    let dir = env.tempdir();
    std::fs::write(
        dir.path().join("plan.toml"),
        format!(
            "[rollout]\nname = \"nginx-tmpfs\"\nstable_for = \"2s\"\nstop_timeout = \"10s\"\n\
             [service.{web}]\nday = 1\nuser = \"www-data\"\nchown = []\n\
             tmpfs = [\"/var/lib/nginx\", {{ path = \"/run\", size = \"1m\" }}]\n\
             health = {{ exec = [\"sh\", \"-c\", \"test -s /run/nginx.pid\"] }}\n"
        ),
    )
    .unwrap();
    let preview = unroot_in(dir.path(), &["plan", "plan.toml", "--day", "1", "--state-dir", "state"]);
    assert_eq!(preview.code, Some(0), "{}{}", preview.stdout, preview.stderr);
    assert!(
        preview.stdout.contains("tmpfs: + /run (size=1m,mode=0755,uid=33,gid=33; empty at each start, owned by 33:33)"),
        "the preview names the tmpfs and its owner:\n{}",
        preview.stdout
    );
    let run = unroot_in(dir.path(), &["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"]);
    assert_eq!(run.code, Some(0), "apply\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);

    // Every process at www-data, its runtime paths writable on tmpfs, serving on its port.
    assert_all_at(&web, 33);
    let migrated = inspect(&web);
    assert_eq!(
        migrated["HostConfig"]["Tmpfs"],
        serde_json::json!({"/var/lib/nginx": "mode=0755,uid=33,gid=33", "/run": "size=1m,mode=0755,uid=33,gid=33"})
    );
    assert_eq!(docker(&["exec", &web, "stat", "-c", "%u:%g %a", "/run", "/var/lib/nginx"]), "33:33 755\n33:33 755");
    wait_for_http_200(&web, 80);
    let verify = unroot_in(dir.path(), &["verify", "plan.toml"]);
    assert_eq!(verify.code, Some(0), "verify\nstdout:\n{}\nstderr:\n{}", verify.stdout, verify.stderr);

    // The committed run rolled back: the original recreated from what the run saved.
    let status = unroot_in(dir.path(), &["status", "--json", "--state-dir", "state"]);
    let runs: Value = serde_json::from_str(&status.stdout).unwrap();
    let run_id = runs["runs"][0]["run"].as_str().unwrap().to_string();
    let rb = unroot_in(dir.path(), &["rollback", &run_id, "--state-dir", "state"]);
    assert_eq!(rb.code, Some(0), "rollback\nstdout:\n{}\nstderr:\n{}", rb.stdout, rb.stderr);
    let restored = inspect(&web);
    assert_ne!(restored["Id"], migrated["Id"]);
    assert_eq!(restored["Config"], before["Config"], "Config byte for byte");
    assert_eq!(restored["HostConfig"], before["HostConfig"], "HostConfig byte for byte: no tmpfs left");
    assert!(restored["HostConfig"]["Tmpfs"].is_null());
    assert!(top(&web).iter().any(|p| p.uid == 0), "the master is root again");
    assert_eq!(http_status(published_port(&web, 80)), Some(200));
}
