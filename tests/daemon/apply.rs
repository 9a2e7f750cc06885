//! `unroot plan` and `apply` end to end against the real daemon, with locally built images.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::common::{
    Down, TestEnv, compose, containers_named, docker, image, inspect, owners, process_uids, unroot_in,
};
use serde_json::{Value, json};

const FAST: &str = "stable_for = \"1s\"\nhealth_timeout = \"30s\"\nstop_timeout = \"1s\"\n";

fn write_plan(dir: &Path, body: &str) -> String {
    write_plan_with(dir, "auto", body)
}

/// A plan whose re-owning runs `ownership` = "host" (in-process) or "helper" (a container).
fn write_plan_with(dir: &Path, ownership: &str, body: &str) -> String {
    let text = format!("[rollout]\nname = \"e2e\"\nownership = \"{ownership}\"\n{FAST}{body}");
    std::fs::write(dir.join("plan.toml"), text).unwrap();
    "plan.toml".to_string()
}

fn apply(dir: &Path, extra: &[&str]) -> crate::common::Run {
    let mut args = vec!["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"];
    args.extend_from_slice(extra);
    unroot_in(dir, &args)
}

fn labels_without_unroot(c: &Value) -> Value {
    let mut l = c["Config"]["Labels"].as_object().cloned().unwrap_or_default();
    l.retain(|k, _| !k.starts_with("io.unroot."));
    Value::Object(l)
}

/// The aliases an operator gave (Docker adds the container's short id and its hostname).
fn aliases(c: &Value, net: &str) -> Vec<String> {
    let short = &c["Id"].as_str().unwrap()[..12];
    let hostname = c["Config"]["Hostname"].as_str().unwrap_or_default();
    let mut a: Vec<String> = c["NetworkSettings"]["Networks"][net]["Aliases"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    a.retain(|x| x != short && x != hostname);
    a.sort();
    a
}

fn is_healthy_or_running(c: &Value) -> bool {
    c["State"]["Running"] == true && c["State"]["Health"]["Status"].as_str().is_none_or(|h| h == "healthy")
}

/// Every file under `dir` (recursively) as text, for "no secret leaked" checks.
fn all_text(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "original.json") {
                out.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn redis_moves_to_its_user_with_every_key_and_file_host() {
    redis_moves_to_its_user_with_every_key_and_file("host");
}

#[test]
fn redis_moves_to_its_user_with_every_key_and_file_helper() {
    redis_moves_to_its_user_with_every_key_and_file("helper");
}

fn redis_moves_to_its_user_with_every_key_and_file(ownership: &str) {
    let env = TestEnv::new(&format!("apply-redis-{ownership}"));
    let vol = env.name("data");
    docker(&["volume", "create", "--label", &env.label(), &vol]);
    let redis = env.run("redis", &["-v", &format!("{vol}:/data"), &image("redis")]);
    crate::common::wait_for_redis(&redis);
    // Keys into the AOF.
    for i in 0..50 {
        docker(&["exec", &redis, "redis-cli", "set", &format!("key{i}"), &format!("value{i}")]);
    }
    assert_eq!(process_uids(&redis), [0], "it starts as root");
    let dir = env.tempdir();
    write_plan_with(
        dir.path(),
        ownership,
        &format!(
            "[service.{redis}]\nday = 1\nuser = \"redis\"\nhealth = {{ exec = [\"redis-cli\", \"ping\"] }}\ncap_drop = [\"ALL\"]\nno_new_privileges = true\n"
        ),
    );
    let run = apply(dir.path(), &[]);
    assert_eq!(run.code, Some(0), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let how = if ownership == "host" { "on the host" } else { "in a helper container" };
    assert!(run.stdout.contains(how), "the preview says where re-owning runs:\n{}", run.stdout);

    let c = inspect(&redis);
    assert_eq!(c["Config"]["User"], "999:999");
    assert!(is_healthy_or_running(&c));
    assert_eq!(process_uids(&redis), [999], "every process runs as 999");
    for i in 0..50 {
        let v = docker(&["exec", &redis, "redis-cli", "get", &format!("key{i}")]);
        assert_eq!(v, format!("value{i}"));
    }
    let files = owners(&env, &vol);
    assert!(files.len() > 2, "the AOF is there: {files:?}");
    for f in &files {
        assert!(f.starts_with("999:999 "), "not re-owned: {f}");
    }
    // It still writes as its new user.
    assert_eq!(docker(&["exec", &redis, "redis-cli", "set", "after", "yes"]), "OK");
    assert!(containers_named(&format!("{redis}.unroot-")).is_empty(), "the parked original is removed at commit");
}

#[test]
fn every_setting_survives_the_recreate_and_no_secret_is_printed() {
    let env = TestEnv::new("apply-fidelity");
    let img = image("busybox");
    let (net_a, net_b) = (env.name("net-a"), env.name("net-b"));
    for n in [&net_a, &net_b] {
        docker(&["network", "create", "--label", &env.label(), n]);
    }
    let secret = "s3cr3t-value-7f9c2e";
    let web = env.run(
        "web",
        &[
            "--network",
            &net_a,
            "--network-alias",
            "alpha",
            "-p",
            "127.0.0.1::80",
            "--restart",
            "unless-stopped",
            "--label",
            "tier=web",
            "-e",
            &format!("SECRET_TOKEN={secret}"),
            "-e",
            "MODE=prod",
            "--health-cmd",
            "test -d /cache",
            "--health-interval",
            "1s",
            "-v",
            "/cache",
            &img,
            "sleep",
            "1000000",
        ],
    );
    docker(&["network", "connect", "--alias", "beta", &net_b, &web]);
    docker(&["exec", &web, "sh", "-c", "echo precious > /cache/data.txt"]);
    let before = inspect(&web);

    let dir = env.tempdir();
    write_plan(dir.path(), &format!("[service.{web}]\nday = 1\nuser = \"app\"\n"));
    let run = apply(dir.path(), &["--json"]);
    assert_eq!(run.code, Some(0), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    // JSON lines, the last one `done`.
    let last: Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    assert_eq!((&last["event"], &last["outcome"], &last["exit_code"]), (&json!("done"), &json!("applied"), &json!(0)));
    assert!(last["docker_api_seconds"].as_f64().is_some_and(|s| s > 0.0), "{last}");
    for line in run.stdout.lines() {
        let v: Value = serde_json::from_str(line).expect("every line is JSON");
        assert!(v["event"].is_string() && v["ts"].is_string(), "{line}");
    }

    let after = inspect(&web);
    assert_ne!(after["Id"], before["Id"], "it was recreated");
    assert_eq!(after["Config"]["User"], "1000:1000");
    for field in ["Env", "Cmd", "Healthcheck", "ExposedPorts"] {
        assert_eq!(after["Config"][field], before["Config"][field], "Config.{field}");
    }
    assert_eq!(labels_without_unroot(&after), labels_without_unroot(&before));
    assert_eq!(after["Config"]["Labels"]["io.unroot.original-user"], "");
    for field in ["PortBindings", "RestartPolicy", "NetworkMode"] {
        assert_eq!(after["HostConfig"][field], before["HostConfig"][field], "HostConfig.{field}");
    }
    assert_eq!(aliases(&after, &net_a), aliases(&before, &net_a));
    assert_eq!(aliases(&after, &net_b), ["beta"]);
    assert_eq!(after["Image"], before["Image"]);
    let anon = |c: &Value| {
        c["Mounts"].as_array().unwrap().iter().find(|m| m["Destination"] == "/cache").unwrap()["Name"].clone()
    };
    assert_eq!(anon(&after), anon(&before), "the anonymous volume is the same volume");
    assert_eq!(docker(&["exec", &web, "cat", "/cache/data.txt"]), "precious");
    assert!(is_healthy_or_running(&after));
    assert_eq!(process_uids(&web), [1000]);

    // No environment value anywhere it could leak; backups private.
    assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "the secret was printed");
    let state = dir.path().join("state");
    assert!(!all_text(&state).contains(secret), "the secret is in the journal, ledger or another state file");
    assert_eq!(std::fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o700);
    let ledger: Value = serde_json::from_slice(&std::fs::read(state.join("e2e/ledger.json")).unwrap()).unwrap();
    let run_id = ledger["days"]["1"]["run"].as_str().unwrap();
    let original = state.join(format!("e2e/runs/{run_id}/services/{web}/original.json"));
    assert_eq!(std::fs::metadata(&original).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(original.parent().unwrap()).unwrap().mode() & 0o777, 0o700);
}

#[test]
fn a_service_that_cannot_run_as_its_user_is_restored_exactly_host() {
    a_service_that_cannot_run_as_its_user_is_restored_exactly("host");
}

#[test]
fn a_service_that_cannot_run_as_its_user_is_restored_exactly_helper() {
    a_service_that_cannot_run_as_its_user_is_restored_exactly("helper");
}

fn a_service_that_cannot_run_as_its_user_is_restored_exactly(ownership: &str) {
    let env = TestEnv::new(&format!("apply-restore-{ownership}"));
    let img = image("busybox");
    let vol = env.name("data");
    docker(&["volume", "create", "--label", &env.label(), &vol]);
    crate::common::in_volume(
        &env,
        &format!("{vol}:/d"),
        "echo 1 > /d/a && echo 2 > /d/b && chown 1234:5678 /d/b && mkdir /d/sub && chown 42:43 /d/sub && echo 3 > /d/sub/c && echo 4 > \"/d/it's a \\\"q\\\"\" && chown 7:8 /d/it* \
         && echo 5 > /d/tool && chmod 4755 /d/tool && echo 6 > /d/sub/grp && chown 0:43 /d/sub/grp && chmod 2750 /d/sub/grp",
    );
    let owners_before = owners(&env, &vol);
    // The re-own clears the setuid and setgid bits (as chown does); the restore sets them again.
    let modes_before = crate::common::modes(&env, &vol);
    assert!(
        modes_before.contains(&"4755 /d/tool".to_string()) && modes_before.contains(&"2750 /d/sub/grp".to_string())
    );
    // It needs /root, which uid 1000 cannot reach.
    let svc = env.run(
        "needs-root",
        &[
            "-v",
            &format!("{vol}:/data"),
            "--restart",
            "always",
            &img,
            "sh",
            "-c",
            "echo x > /root/state && exec sleep 1000000",
        ],
    );
    let before = inspect(&svc);
    let dir = env.tempdir();
    write_plan_with(dir.path(), ownership, &format!("[service.{svc}]\nday = 1\nuser = \"1000:1000\"\n"));
    let run = apply(dir.path(), &[]);
    assert_eq!(run.code, Some(3), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    // The reason, in the replacement's own words (it exited, or with `--restart always`
    // died during the stability window: which one depends on when the gate looked).
    assert!(run.stdout.contains("can't create /root/state: Permission denied"), "the reason is shown:\n{}", run.stdout);

    let after = inspect(&svc);
    assert_eq!(after["Id"], before["Id"], "the original itself runs again under its name");
    assert!(is_healthy_or_running(&after));
    assert_eq!(after["Config"]["User"], "");
    assert_eq!(process_uids(&svc), [0]);
    assert_eq!(after["HostConfig"]["RestartPolicy"], before["HostConfig"]["RestartPolicy"], "restart policy restored");
    assert_eq!(after["Config"], before["Config"]);
    assert_eq!(owners(&env, &vol), owners_before, "ownership restored exactly from the manifest");
    assert_eq!(crate::common::modes(&env, &vol), modes_before, "setuid and setgid bits restored too");
    assert!(containers_named(".unroot-").iter().all(|n| !n.starts_with(&env.id)), "no parked container is left");
    assert!(containers_named(&format!("unroot-helper.{svc}")).is_empty(), "no helper is left");
}

#[test]
fn links_out_of_a_bind_mount_keep_their_owner_and_protected_binds_are_refused_host() {
    links_out_of_a_bind_mount_keep_their_owner_and_protected_binds_are_refused("host");
}

#[test]
fn links_out_of_a_bind_mount_keep_their_owner_and_protected_binds_are_refused_helper() {
    links_out_of_a_bind_mount_keep_their_owner_and_protected_binds_are_refused("helper");
}

fn links_out_of_a_bind_mount_keep_their_owner_and_protected_binds_are_refused(ownership: &str) {
    let env = TestEnv::new(&format!("apply-links-{ownership}"));
    let img = image("busybox");
    let dir = env.tempdir();
    let bind = dir.path().join("bind");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&bind).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(bind.join("inside.txt"), "in").unwrap();
    std::fs::write(outside.join("target.txt"), "t").unwrap();
    std::fs::write(outside.join("hard.txt"), "h").unwrap();
    std::os::unix::fs::symlink(outside.join("target.txt"), bind.join("link")).unwrap();
    std::fs::hard_link(outside.join("hard.txt"), bind.join("hard")).unwrap();
    let svc = env.run("binds", &["-v", &format!("{}:/data", bind.display()), &img, "sleep", "1000000"]);
    write_plan_with(dir.path(), ownership, &format!("[service.{svc}]\nday = 1\nuser = \"1000:1000\"\n"));
    let run = apply(dir.path(), &[]);
    assert_eq!(run.code, Some(0), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let owner = |p: &Path| {
        let m = std::fs::symlink_metadata(p).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner(&bind.join("inside.txt")), (1000, 1000));
    assert_eq!(owner(&bind.join("link")), (1000, 1000), "the link itself is re-owned");
    assert_eq!(owner(&outside.join("target.txt")), (0, 0), "the symlink was not followed");
    assert_eq!(owner(&outside.join("hard.txt")), (0, 0), "the hard-linked file keeps its owner");
    assert_eq!(owner(&bind), (1000, 1000), "the mount's root is re-owned");

    // A bind of a protected path: a blocker in the preview, refused by apply untouched.
    let protected = format!("/run/{}", env.id);
    std::fs::create_dir_all(&protected).unwrap();
    let guard = scopeguard(protected.clone());
    let svc2 = env.run("protected", &["-v", &format!("{protected}:/data"), &img, "sleep", "1000000"]);
    let before = inspect(&svc2);
    let d2 = env.tempdir();
    write_plan(d2.path(), &format!("[service.{svc2}]\nday = 1\nuser = \"1000:1000\"\n"));
    let preview = unroot_in(d2.path(), &["plan", "plan.toml", "--day", "1"]);
    assert_eq!(preview.code, Some(1), "{}", preview.stdout);
    assert!(preview.stdout.contains("blocker") && preview.stdout.contains("lies inside /run"), "{}", preview.stdout);
    let refused = apply(d2.path(), &[]);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(refused.stderr.contains("nothing was changed"), "{}", refused.stderr);
    // Asked for JSON lines, the refusal ends with its done event, as every run does.
    let json = apply(d2.path(), &["--json"]);
    assert_eq!(json.code, Some(1), "{}", json.stderr);
    let last: Value = serde_json::from_str(json.stdout.lines().last().expect("a line")).unwrap();
    assert_eq!((last["event"].as_str(), last["exit_code"].as_u64()), (Some("done"), Some(1)), "{}", json.stdout);
    assert!(last["errors"][0]["message"].as_str().unwrap().contains("lies inside /run"), "{last}");
    let after = inspect(&svc2);
    assert_eq!(after["Id"], before["Id"]);
    assert_eq!(after["State"]["StartedAt"], before["State"]["StartedAt"], "never stopped");
    assert_eq!(owner(Path::new(&protected)), (0, 0));
    assert!(!d2.path().join("state/e2e/runs").exists(), "no run was started");
    drop(guard);
}

/// Removes a directory when dropped.
fn scopeguard(path: String) -> impl Drop {
    struct G(String);
    impl Drop for G {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    G(path)
}

#[test]
fn a_compose_service_gets_an_override_that_keeps_it_migrated() {
    let env = TestEnv::new("apply-compose");
    let dir = env.tempdir();
    let project = env.id.replace('-', "");
    let name = env.name("web");
    let secret = "compose-secret-913";
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        format!(
            "version: \"2.4\"\nservices:\n  web:\n    image: {img}\n    command: [\"sleep\", \"1000000\"]\n    stop_grace_period: 1s\n    container_name: {name}\n    labels:\n      {label}: {id}\n    environment:\n      DB_PASSWORD: {secret}\n    volumes:\n      - webdata:/data\nvolumes:\n  webdata:\n    labels:\n      {label}: {id}\n",
            img = image("busybox"),
            label = crate::common::LABEL,
            id = env.id,
        ),
    )
    .unwrap();
    let _down = Down(dir.path(), project.clone());
    let up = compose(dir.path(), &project, &["up", "-d"]);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));

    write_plan(
        dir.path(),
        &format!(
            "[service.{name}]\nday = 1\nuser = \"1000:1000\"\nenv = {{ HOME = \"/data\" }}\ncap_drop = [\"ALL\"]\n"
        ),
    );
    let run = apply(dir.path(), &[]);
    assert_eq!(run.code, Some(0), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("docker-compose.unroot.yml"), "the summary says how to use it:\n{}", run.stdout);
    let override_file = dir.path().join("docker-compose.unroot.yml");
    let text = std::fs::read_to_string(&override_file).expect("the override stands beside the compose file");
    assert!(text.contains("version: \"2.4\""), "{text}");
    assert!(text.contains("user: \"1000:1000\""), "{text}");
    assert!(text.contains("\"HOME\": \"/data\""), "the plan's environment is there: {text}");
    assert!(!text.contains(secret), "the container's environment is not: {text}");

    let again =
        compose(dir.path(), &project, &["-f", "docker-compose.yml", "-f", "docker-compose.unroot.yml", "up", "-d"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let c = inspect(&name);
    assert_eq!(c["Config"]["User"], "1000:1000", "compose keeps the new user");
    assert!(is_healthy_or_running(&c));
    assert_eq!(process_uids(&name), [1000]);
    assert_eq!(c["HostConfig"]["CapDrop"], json!(["ALL"]));
}
