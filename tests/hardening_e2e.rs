//! Hardening: each test is one way a run could lose a service, leak, or stick, tried against
//! the real daemon the way an operator would meet it. Test names carry the item they prove.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{
    Down, TestEnv, compose, containers_named, docker, exists, image, inspect, journal_records, owners, process_uids,
    spawn_until_step, unroot_in,
};
use serde_json::Value;

const FAST: &str = "stable_for = \"1s\"\nhealth_timeout = \"30s\"\nstop_timeout = \"2s\"\n";

/// Writes `dir/plan.toml`: rollout `h` with fast timings, then `body`.
fn write_plan(dir: &Path, body: &str) {
    std::fs::write(dir.join("plan.toml"), format!("[rollout]\nname = \"h\"\n{FAST}{body}")).unwrap();
}

/// A busybox service (`--init`, so it stops at once) and a plan that moves it to uid 1000.
fn one_service(env: &TestEnv) -> (String, tempfile::TempDir) {
    let svc = env.run("svc", &["--init", &image("busybox"), "sleep", "1000000"]);
    let dir = env.tempdir();
    write_plan(dir.path(), &format!("[service.{svc}]\nday = 1\nuser = \"1000\"\n"));
    (svc, dir)
}

fn apply_day(dir: &Path, day: &str, extra: &[&str]) -> common::Run {
    let mut args = vec!["apply", "plan.toml", "--day", day, "--yes", "--state-dir", "state"];
    args.extend_from_slice(extra);
    unroot_in(dir, &args)
}

fn ok(run: &common::Run, code: i32) {
    assert_eq!(run.code, Some(code), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
}

fn ledger(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("state/h/ledger.json")).unwrap()).unwrap()
}

fn first_run(dir: &Path) -> String {
    let s = unroot_in(dir, &["status", "--json", "--state-dir", "state"]);
    let v: Value = serde_json::from_str(&s.stdout).unwrap();
    v["runs"][0]["run"].as_str().unwrap().to_string()
}

fn killed(run: &std::process::Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    run.status.signal() == Some(9)
}

/// `unroot ARGS` in `dir` with extra environment.
fn unroot_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = common::unroot();
    cmd.current_dir(dir).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// `unroot apply` of day 1 that kills itself at the named crash point.
fn apply_crashing_at(dir: &Path, point: &str) -> std::process::Output {
    let out = unroot_env(
        dir,
        &[("UNROOT_CRASH_AT", point)],
        &["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"],
    );
    assert!(killed(&out), "killed at {point}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A compose file with busybox services `names` (container_name = env.name(service)).
fn compose_file(env: &TestEnv, services: &[&str]) -> String {
    let mut y = String::from("version: \"2.4\"\nservices:\n");
    for s in services {
        y.push_str(&format!(
            "  {s}:\n    image: {img}\n    command: [\"sleep\", \"1000000\"]\n    init: true\n    stop_grace_period: 1s\n    container_name: {name}\n    labels:\n      {label}: {id}\n",
            img = image("busybox"),
            name = env.name(s),
            label = common::LABEL,
            id = env.id,
        ));
    }
    y
}

#[test]
fn item01_docker_compose_1x_relative_files_get_the_override_beside_them() {
    let env = TestEnv::new("h01");
    let project_dir = env.tempdir();
    let project = env.id.replace('-', "");
    std::fs::write(project_dir.path().join("docker-compose.yml"), compose_file(&env, &["web"])).unwrap();
    std::fs::set_permissions(project_dir.path().join("docker-compose.yml"), std::fs::Permissions::from_mode(0o640))
        .unwrap();
    let _down = Down(project_dir.path(), project.clone());
    let up = compose(project_dir.path(), &project, &["up", "-d"]);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let web = env.name("web");
    assert_eq!(
        inspect(&web)["Config"]["Labels"]["com.docker.compose.project.config_files"],
        "docker-compose.yml",
        "docker-compose 1.x records the file as given, relative"
    );

    // unroot runs from another directory.
    let elsewhere = env.tempdir();
    write_plan(elsewhere.path(), &format!("[service.{web}]\nday = 1\nuser = \"1000:1000\"\n"));
    let run = apply_day(elsewhere.path(), "1", &[]);
    ok(&run, 0);
    assert!(!elsewhere.path().join("docker-compose.unroot.yml").exists(), "nothing lands in unroot's directory");
    let override_file = project_dir.path().join("docker-compose.unroot.yml");
    let text = std::fs::read_to_string(&override_file).expect("the override stands beside the compose file");
    assert!(text.contains("version: \"2.4\""), "1.x refuses an override without the base's version: {text}");
    assert_eq!(std::fs::metadata(&override_file).unwrap().mode() & 0o777, 0o640, "never wider than the base file");
    let base = project_dir.path().join("docker-compose.yml");
    let usage = format!("docker-compose -p {project} -f {} -f {} up -d", base.display(), override_file.display());
    assert!(run.stdout.contains(&usage), "the summary says how, in 1.x syntax ({usage}):\n{}", run.stdout);

    let again = compose(
        project_dir.path(),
        &project,
        &["-f", "docker-compose.yml", "-f", "docker-compose.unroot.yml", "up", "-d"],
    );
    assert!(
        again.status.success(),
        "docker-compose 1.x loads the override: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(inspect(&web)["Config"]["User"], "1000:1000");
    assert_eq!(process_uids(&web), [1000]);
}

#[test]
fn item02_a_kill_during_the_preview_leaves_no_probe_behind() {
    let env = TestEnv::new("h02");
    let svc = env.run("svc", &["--init", &image("busybox"), "sleep", "1000000"]);
    let before = inspect(&svc);
    let dir = env.tempdir();
    write_plan(dir.path(), &format!("[service.{svc}]\nday = 1\nuser = \"app\"\n"));
    apply_crashing_at(dir.path(), "probe-created");
    let probe = format!("{svc}.unroot-probe");
    assert!(exists(&probe), "the kill left the probe container");

    let resume = unroot_in(dir.path(), &["resume", "--state-dir", "state"]);
    ok(&resume, 0);
    assert!(!exists(&probe), "the next command that takes the lock removed it");
    let after = inspect(&svc);
    assert_eq!((&after["Id"], &after["State"]["StartedAt"]), (&before["Id"], &before["State"]["StartedAt"]));
}

#[test]
fn item03_the_hostname_is_kept_so_data_keyed_by_it_is_found() {
    let env = TestEnv::new("h03");
    let vol = env.name("data");
    docker(&["volume", "create", "--label", &env.label(), &vol]);
    // Like RabbitMQ: the node's data lives under its hostname.
    let svc = env.run(
        "node",
        &[
            "--init",
            "-v",
            &format!("{vol}:/data"),
            &image("busybox"),
            "sh",
            "-c",
            "mkdir -p /data/mnesia/rabbit@$(hostname) && exec sleep 1000000",
        ],
    );
    let hostname = docker(&["exec", &svc, "hostname"]);
    assert_eq!(hostname, inspect(&svc)["Id"].as_str().unwrap()[..12], "Docker set it to the short id");
    let dir = env.tempdir();
    write_plan(dir.path(), &format!("[service.{svc}]\nday = 1\nuser = \"1000:1000\"\n"));
    ok(&apply_day(dir.path(), "1", &[]), 0);
    assert_eq!(docker(&["exec", &svc, "hostname"]), hostname, "the replacement keeps the hostname");
    assert_eq!(
        docker(&["exec", &svc, "ls", "/data/mnesia"]),
        format!("rabbit@{hostname}"),
        "no second, empty node beside the old data"
    );
}

#[test]
fn item04_a_service_restored_by_rollback_service_keeps_its_day_open() {
    let env = TestEnv::new("h04");
    let img = image("busybox");
    let a = env.run("a", &["--init", &img, "sleep", "1000000"]);
    let c = env.run("c", &["--init", &img, "sh", "-c", "echo x > /root/state && exec sleep 1000000"]);
    let d = env.run("d", &["--init", &img, "sleep", "1000000"]);
    let d_before = inspect(&d);
    let dir = env.tempdir();
    write_plan(
        dir.path(),
        &format!(
            "on_failure = \"rollback-service\"\n\
             [service.{a}]\nday = 1\nuser = \"1000\"\n[service.{c}]\nday = 1\nuser = \"1000\"\n\
             [service.{d}]\nday = 2\nuser = \"1000\"\n"
        ),
    );
    ok(&apply_day(dir.path(), "1", &[]), 3);
    assert_eq!(process_uids(&c), [0], "c is back on its original");
    let refused = apply_day(dir.path(), "2", &[]);
    ok(&refused, 5);
    assert!(refused.stderr.contains(&format!("{c} (day 1) is on its original")), "{}", refused.stderr);
    assert_eq!(inspect(&d)["State"]["StartedAt"], d_before["State"]["StartedAt"], "day 2 did not start");
}

#[test]
fn item05_rollback_after_docker_compose_up_with_the_override() {
    let env = TestEnv::new("h05");
    let dir = env.tempdir();
    let project = env.id.replace('-', "");
    std::fs::write(dir.path().join("docker-compose.yml"), compose_file(&env, &["web"])).unwrap();
    let _down = Down(dir.path(), project.clone());
    let up = compose(dir.path(), &project, &["up", "-d"]);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let web = env.name("web");
    let config_before = inspect(&web)["Config"].clone();
    write_plan(dir.path(), &format!("[service.{web}]\nday = 1\nuser = \"1000:1000\"\n"));
    ok(&apply_day(dir.path(), "1", &[]), 0);
    let migrated = inspect(&web);
    // What the summary recommends: compose recreates the container from the override.
    let again =
        compose(dir.path(), &project, &["-f", "docker-compose.yml", "-f", "docker-compose.unroot.yml", "up", "-d"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let successor = inspect(&web);
    assert_ne!(successor["Id"], migrated["Id"], "compose recreated it");
    assert!(successor["Config"]["Labels"]["io.unroot.run"].is_null());

    let run = first_run(dir.path());
    let rb = unroot_in(dir.path(), &["rollback", &run, "--state-dir", "state"]);
    ok(&rb, 0);
    let now = inspect(&web);
    assert_eq!(now["Config"]["User"], "");
    assert_eq!(process_uids(&web), [0], "back on root, as before the run");
    assert_eq!(
        now["Config"]["Labels"]["com.docker.compose.service"],
        config_before["Labels"]["com.docker.compose.service"]
    );
    assert!(!dir.path().join("docker-compose.unroot.yml").exists(), "the override is gone with the migration");
    assert_eq!(containers_named(&web).iter().filter(|n| **n == web).count(), 1);
}

#[test]
fn item05_a_foreign_container_under_the_name_refuses_the_rollback_with_exit_2() {
    let env = TestEnv::new("h05f");
    let img = image("busybox");
    let svc = env.run("svc", &["--init", &img, "sleep", "1000000"]);
    let dir = env.tempdir();
    write_plan(dir.path(), &format!("[service.{svc}]\nday = 1\nuser = \"1000\"\n"));
    ok(&apply_day(dir.path(), "1", &[]), 0);
    // Someone puts an unrelated container under the name.
    docker(&["rm", "-f", &svc]);
    env.run("svc", &["--init", &img, "sleep", "999999"]);
    let foreign = inspect(&svc);
    let ledger_before = ledger(dir.path());
    let run = first_run(dir.path());
    let rb = unroot_in(dir.path(), &["rollback", &run, "--state-dir", "state"]);
    ok(&rb, 2);
    assert!(rb.stderr.contains(&foreign["Id"].as_str().unwrap()[..12]), "it names the container: {}", rb.stderr);
    let after = inspect(&svc);
    assert_eq!((&after["Id"], &after["State"]["StartedAt"]), (&foreign["Id"], &foreign["State"]["StartedAt"]));
    assert_eq!(ledger(dir.path()), ledger_before, "nothing changed");
    let st: Value =
        serde_json::from_str(&unroot_in(dir.path(), &["status", "--json", "--state-dir", "state"]).stdout).unwrap();
    assert_eq!(st["runs"][0]["state"], "committed", "the run is as it was, not rollback-incomplete");
}

#[test]
fn item06_entries_deleted_since_the_reown_do_not_stop_a_helper_restore() {
    let env = TestEnv::new("h06");
    let vol = env.name("data");
    docker(&["volume", "create", "--label", &env.label(), &vol]);
    common::in_volume(&env, &format!("{vol}:/d"), "mkdir /d/wal && for i in 1 2 3 4; do echo $i > /d/wal/seg$i; done");
    let owners_before = owners(&env, &vol);
    let svc = env.run("db", &["--init", "-v", &format!("{vol}:/data"), &image("busybox"), "sleep", "1000000"]);
    let dir = env.tempdir();
    write_plan(dir.path(), &format!("ownership = \"helper\"\n[service.{svc}]\nday = 1\nuser = \"1000:1000\"\n"));
    ok(&apply_day(dir.path(), "1", &[]), 0);
    // The migrated database deletes WAL segments, as databases do.
    docker(&["exec", &svc, "rm", "/data/wal/seg1", "/data/wal/seg3"]);
    let run = first_run(dir.path());
    let rb = unroot_in(dir.path(), &["rollback", &run, "--state-dir", "state"]);
    ok(&rb, 0);
    assert!(rb.stdout.contains("vanished=2"), "the skipped entries are reported:\n{}", rb.stdout);
    assert_eq!(process_uids(&svc), [0]);
    let expected: Vec<String> =
        owners_before.into_iter().filter(|l| !l.ends_with("seg1") && !l.ends_with("seg3")).collect();
    assert_eq!(owners(&env, &vol), expected, "every remaining entry has its old owner");
}

#[test]
fn item07_a_service_name_that_is_a_prefix_of_another_containers_id_is_not_that_container() {
    let env = TestEnv::new("h07");
    let other = env.run("other", &["--init", &image("busybox"), "sleep", "1000000"]);
    let before = inspect(&other);
    let prefix = before["Id"].as_str().unwrap()[..12].to_string();
    assert!(!exists(&prefix));
    let dir = env.tempdir();
    write_plan(dir.path(), &format!("[service.{prefix}]\nday = 1\nuser = \"1000\"\n"));
    let preview = unroot_in(dir.path(), &["plan", "plan.toml", "--day", "1"]);
    ok(&preview, 1);
    assert!(preview.stdout.contains(&format!("no container is called {prefix}")), "{}", preview.stdout);
    ok(&apply_day(dir.path(), "1", &[]), 2);
    let after = inspect(&other);
    assert_eq!(after["Name"], before["Name"], "the unrelated container keeps its name");
    assert_eq!(after["State"]["StartedAt"], before["State"]["StartedAt"], "and was never stopped");
    assert_eq!(after["Config"]["User"], "");
}

#[test]
fn item08_a_replacement_created_before_a_crash_gets_every_network() {
    let env = TestEnv::new("h08n");
    let (net_a, net_b) = (env.name("net-a"), env.name("net-b"));
    for n in [&net_a, &net_b] {
        docker(&["network", "create", "--label", &env.label(), n]);
    }
    let svc = env.run(
        "svc",
        &["--init", "--network", &net_a, "--network-alias", "alpha", &image("busybox"), "sleep", "1000000"],
    );
    docker(&["network", "connect", "--alias", "beta", &net_b, &svc]);
    let dir = env.tempdir();
    write_plan(dir.path(), &format!("[service.{svc}]\nday = 1\nuser = \"1000\"\n"));
    apply_crashing_at(dir.path(), "after-create");
    let resume = unroot_in(dir.path(), &["resume", "--state-dir", "state"]);
    ok(&resume, 0);
    let c = inspect(&svc);
    assert_eq!(c["Config"]["User"], "1000:1000");
    let aliases = |net: &str| c["NetworkSettings"]["Networks"][net]["Aliases"].to_string();
    assert!(aliases(&net_a).contains("alpha"), "{}", aliases(&net_a));
    assert!(
        aliases(&net_b).contains("beta"),
        "the replacement reused by resume is on {net_b}: {}",
        c["NetworkSettings"]
    );
    assert_eq!(process_uids(&svc), [1000]);
}

#[test]
fn item08_a_restore_that_recreated_the_original_can_be_run_again() {
    let env = TestEnv::new("h08r");
    let (svc, dir) = one_service(&env);
    ok(&apply_day(dir.path(), "1", &[]), 0);
    let run = first_run(dir.path());
    // The committed run's original is gone: the rollback recreates it, and dies right after.
    let out = unroot_env(
        dir.path(),
        &[("UNROOT_CRASH_AT", "original-recreated")],
        &["rollback", &run, "--state-dir", "state"],
    );
    assert!(killed(&out), "{}", String::from_utf8_lossy(&out.stderr));
    let again = unroot_in(dir.path(), &["rollback", &run, "--state-dir", "state"]);
    ok(&again, 0);
    let c = inspect(&svc);
    assert_eq!(c["Config"]["User"], "");
    assert_eq!(c["State"]["Running"], true);
    assert_eq!(process_uids(&svc), [0]);
    assert_eq!(containers_named(&svc).len(), 1, "one container, no leftover: {:?}", containers_named(&svc));
}

#[test]
fn item09_only_runs_add_up_and_a_migrated_service_is_not_touched_again() {
    let env = TestEnv::new("h09");
    let dir = env.tempdir();
    let project = env.id.replace('-', "");
    std::fs::write(dir.path().join("docker-compose.yml"), compose_file(&env, &["a", "b"])).unwrap();
    let _down = Down(dir.path(), project.clone());
    let up = compose(dir.path(), &project, &["up", "-d"]);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let (a, b) = (env.name("a"), env.name("b"));
    let c = env.run("c", &["--init", &image("busybox"), "sleep", "1000000"]);
    write_plan(
        dir.path(),
        &format!(
            "[service.{a}]\nday = 1\nuser = \"1000\"\n[service.{b}]\nday = 1\nuser = \"1000\"\n[service.{c}]\nday = 2\nuser = \"1000\"\n"
        ),
    );
    ok(&apply_day(dir.path(), "1", &["--only", &a]), 0);
    let refused = apply_day(dir.path(), "2", &[]);
    ok(&refused, 5);
    assert!(refused.stderr.contains(&format!("{b} (day 1) is not migrated yet")), "{}", refused.stderr);
    ok(&apply_day(dir.path(), "1", &["--only", &b]), 0);
    let l = ledger(dir.path());
    assert_eq!(l["days"]["1"]["services"][&a]["state"], "migrated", "the second run kept the first one's record");
    assert_eq!(l["days"]["1"]["services"][&b]["state"], "migrated");
    let text = std::fs::read_to_string(dir.path().join("docker-compose.unroot.yml")).unwrap();
    assert!(text.contains("\"a\":") && text.contains("\"b\":"), "the override keeps both services: {text}");

    // Applying the day again changes nothing: no stop, no new run.
    let a_before = inspect(&a);
    let again = apply_day(dir.path(), "1", &[]);
    ok(&again, 0);
    assert!(again.stdout.contains("already migrated"), "{}", again.stdout);
    let a_now = inspect(&a);
    assert_eq!(a_now["Id"], a_before["Id"], "the same container");
    assert_eq!(a_now["State"]["StartedAt"], a_before["State"]["StartedAt"], "not stopped again");
    ok(&apply_day(dir.path(), "2", &[]), 0);
    assert_eq!(process_uids(&c), [1000]);
}

#[test]
fn item10_the_override_replaces_a_planted_symlink_and_is_never_wider_than_the_base() {
    let env = TestEnv::new("h10");
    let dir = env.tempdir();
    let project = env.id.replace('-', "");
    let base = dir.path().join("docker-compose.yml");
    std::fs::write(&base, compose_file(&env, &["web"])).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o600)).unwrap();
    let _down = Down(dir.path(), project.clone());
    let up = compose(dir.path(), &project, &["up", "-d"]);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "not yours\n").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("docker-compose.unroot.yml")).unwrap();
    let web = env.name("web");
    write_plan(dir.path(), &format!("[service.{web}]\nday = 1\nuser = \"1000:1000\"\n"));
    ok(&apply_day(dir.path(), "1", &[]), 0);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "not yours\n", "the link's target is untouched");
    let meta = std::fs::symlink_metadata(dir.path().join("docker-compose.unroot.yml")).unwrap();
    assert!(meta.file_type().is_file(), "the link was replaced by the file");
    assert_eq!(meta.mode() & 0o777, 0o600, "as private as the base file");
}

#[test]
fn item11_a_bind_source_swapped_for_a_link_after_the_preview_is_not_reowned() {
    let env = TestEnv::new("h11");
    let tmp = env.tempdir();
    let (parent, decoy) = (tmp.path().join("parent"), tmp.path().join("decoy"));
    for d in [&parent, &decoy] {
        std::fs::create_dir_all(d.join("data")).unwrap();
        std::fs::write(d.join("data/file"), "x").unwrap();
    }
    // No --init: `sleep` as PID 1 ignores SIGTERM, so the stop takes its whole grace.
    let svc = env.run(
        "svc",
        &["-v", &format!("{}:/data", parent.join("data").display()), &image("busybox"), "sleep", "1000000"],
    );
    let dir = env.tempdir();
    std::fs::write(
        dir.path().join("plan.toml"),
        format!(
            "[rollout]\nname = \"h\"\nownership = \"host\"\nstable_for = \"1s\"\nstop_timeout = \"4s\"\n[service.{svc}]\nday = 1\nuser = \"1000:1000\"\n"
        ),
    )
    .unwrap();
    let child = spawn_until_step(
        dir.path(),
        &["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"],
        "h",
        "stop",
    );
    // While the original stops, its source's parent becomes a link to somewhere else.
    std::fs::rename(&parent, tmp.path().join("parent-was")).unwrap();
    std::os::unix::fs::symlink(&decoy, &parent).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let m = std::fs::symlink_metadata(decoy.join("data/file")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0), "nothing behind the link was re-owned");
    let m = std::fs::symlink_metadata(decoy.join("data")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0));
    let records = journal_records(&dir.path().join("state"), "h");
    let chown = records.iter().find(|r| r["step"] == "chown" && r["ok"] == false).expect("the chown step refused");
    assert!(chown["error"].as_str().unwrap().contains("bind mount"), "{chown}");
}

fn item12_a_single_file_bind_is_reowned(ownership: &str) {
    let env = TestEnv::new(&format!("h12{ownership}"));
    let tmp = env.tempdir();
    let file = tmp.path().join("app.conf");
    std::fs::write(&file, "setting = 1\n").unwrap();
    let svc = env.run(
        "svc",
        &["--init", "-v", &format!("{}:/etc/app.conf", file.display()), &image("busybox"), "sleep", "1000000"],
    );
    let dir = env.tempdir();
    write_plan(dir.path(), &format!("ownership = \"{ownership}\"\n[service.{svc}]\nday = 1\nuser = \"1000:1000\"\n"));
    ok(&apply_day(dir.path(), "1", &[]), 0);
    let m = std::fs::metadata(&file).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1000), "the file itself is re-owned");
    assert_eq!(
        docker(&["exec", &svc, "sh", "-c", "echo 'setting = 2' > /etc/app.conf && cat /etc/app.conf"]),
        "setting = 2"
    );
    let run = first_run(dir.path());
    ok(&unroot_in(dir.path(), &["rollback", &run, "--state-dir", "state"]), 0);
    let m = std::fs::metadata(&file).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0), "restored");
}

#[test]
fn item12_a_single_file_bind_is_reowned_host() {
    item12_a_single_file_bind_is_reowned("host");
}

#[test]
fn item12_a_single_file_bind_is_reowned_helper() {
    item12_a_single_file_bind_is_reowned("helper");
}

#[test]
fn item13_two_services_sharing_a_volume_are_restored_in_reverse_reown_order() {
    let env = TestEnv::new("h13");
    let vol = env.name("shared");
    docker(&["volume", "create", "--label", &env.label(), &vol]);
    common::in_volume(&env, &format!("{vol}:/d"), "mkdir /d/x && echo 1 > /d/x/f && echo 2 > /d/g");
    let owners_before = owners(&env, &vol);
    let img = image("busybox");
    // a stops slowly (sleep as PID 1 ignores SIGTERM) and cannot run as its user; b stops
    // at once: b re-owns the volume first, a second, then a fails.
    let a = env.run("a", &["-v", &format!("{vol}:/data"), &img, "sh", "-c", "touch /root/ok && exec sleep 1000000"]);
    let b = env.run("b", &["--init", "-v", &format!("{vol}:/data"), &img, "sleep", "1000000"]);
    let dir = env.tempdir();
    std::fs::write(
        dir.path().join("plan.toml"),
        format!(
            "[rollout]\nname = \"h\"\nparallelism = 2\nstable_for = \"1s\"\nhealth_timeout = \"20s\"\n\
             [service.{a}]\nday = 1\nuser = \"1000:1000\"\nstop_timeout = \"3s\"\n\
             [service.{b}]\nday = 1\nuser = \"1001:1001\"\nstop_timeout = \"1s\"\n"
        ),
    )
    .unwrap();
    let run = apply_day(dir.path(), "1", &[]);
    ok(&run, 3);
    assert!(run.stdout.contains("on this day too"), "the preview warns of the shared volume:\n{}", run.stdout);
    let records = journal_records(&dir.path().join("state"), "h");
    let chowns: Vec<&str> = records
        .iter()
        .filter(|r| r["step"] == "chown" && r["ok"].is_null())
        .map(|r| r["service"].as_str().unwrap())
        .collect();
    assert_eq!(chowns, [b.as_str(), a.as_str()], "b re-owned first");
    assert_eq!(owners(&env, &vol), owners_before, "the owners found by the first re-own are back");
    assert_eq!(process_uids(&a), [0]);
    assert_eq!(process_uids(&b), [0]);
}

#[test]
fn item15_resume_rollback_and_status_find_the_plans_state_dir() {
    let env = TestEnv::new("h15");
    let img = image("busybox");
    let svc = env.run("svc", &["--init", &img, "sh", "-c", "echo x > /root/state && exec sleep 1000000"]);
    let before = inspect(&svc);
    let home = env.tempdir();
    let state = home.path().join("custom-state");
    std::fs::write(
        home.path().join("plan.toml"),
        format!(
            "[rollout]\nname = \"h\"\nstate_dir = \"{}\"\non_failure = \"pause\"\n{FAST}[service.{svc}]\nday = 1\nuser = \"1000\"\n",
            state.display()
        ),
    )
    .unwrap();
    let run = unroot_in(home.path(), &["apply", "plan.toml", "--day", "1", "--yes"]);
    ok(&run, 4);
    assert!(run.stdout.contains("--plan plan.toml`"), "the hint names the plan:\n{}", run.stdout);
    // From another directory, with the plan's path.
    let elsewhere = env.tempdir();
    let plan = home.path().join("plan.toml").display().to_string();
    let st = unroot_in(elsewhere.path(), &["status", "--plan", &plan, "--json"]);
    ok(&st, 0);
    let v: Value = serde_json::from_str(&st.stdout).unwrap();
    assert_eq!(v["runs"][0]["state"], "interrupted");
    let id = v["runs"][0]["run"].as_str().unwrap().to_string();
    let rb = unroot_in(elsewhere.path(), &["rollback", &id, "--plan", &plan]);
    ok(&rb, 0);
    assert_eq!(inspect(&svc)["Id"], before["Id"]);
    assert_eq!(process_uids(&svc), [0]);
    let nothing = unroot_in(elsewhere.path(), &["resume", "--plan", &plan]);
    ok(&nothing, 0);
    assert!(nothing.stdout.contains("nothing to resume"), "{}", nothing.stdout);
}

#[test]
fn item16_ctrl_c_during_a_slow_stop_starts_no_further_step() {
    let env = TestEnv::new("h16");
    let vol = env.name("data");
    docker(&["volume", "create", "--label", &env.label(), &vol]);
    let svc = env.run("svc", &["-v", &format!("{vol}:/data"), &image("busybox"), "sleep", "1000000"]);
    let before = inspect(&svc);
    let dir = env.tempdir();
    std::fs::write(
        dir.path().join("plan.toml"),
        format!("[rollout]\nname = \"h\"\nstable_for = \"1s\"\nstop_timeout = \"5s\"\n[service.{svc}]\nday = 1\nuser = \"1000\"\n"),
    )
    .unwrap();
    let child = spawn_until_step(
        dir.path(),
        &["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"],
        "h",
        "stop",
    );
    let sent = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let records = journal_records(&dir.path().join("state"), "h");
    let started: Vec<&str> = records
        .iter()
        .filter(|r| r["ok"].is_null() && r["step"].is_string())
        .map(|r| r["step"].as_str().unwrap())
        .collect();
    assert!(!started.contains(&"chown") && !started.contains(&"create"), "nothing new started: {started:?}");
    let after = inspect(&svc);
    assert_eq!(after["Id"], before["Id"], "the original is back");
    assert_eq!(after["State"]["Running"], true);
    assert_eq!(process_uids(&svc), [0]);
}

#[test]
fn item18_an_existing_shared_state_dir_keeps_its_mode() {
    let env = TestEnv::new("h18");
    let svc = env.run("svc", &["--init", &image("busybox"), "sleep", "1000000"]);
    let dir = env.tempdir();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    write_plan(dir.path(), &format!("[service.{svc}]\nday = 1\nuser = \"1000\"\n"));
    let run =
        unroot_in(dir.path(), &["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", shared.to_str().unwrap()]);
    ok(&run, 0);
    assert_eq!(std::fs::metadata(&shared).unwrap().mode() & 0o7777, 0o1777, "not stripped to 0700");
    assert_eq!(std::fs::metadata(shared.join("h")).unwrap().mode() & 0o777, 0o700, "the plan's own folder is");
}

#[test]
fn item19_a_tree_of_5000_directories_reowns_under_a_low_descriptor_limit() {
    let env = TestEnv::new("h19");
    let tmp = env.tempdir();
    let data = tmp.path().join("data");
    for i in 0..5000 {
        std::fs::create_dir_all(data.join(format!("d{}/e{i}", i % 50))).unwrap();
    }
    let svc =
        env.run("svc", &["--init", "-v", &format!("{}:/data", data.display()), &image("busybox"), "sleep", "1000000"]);
    let dir = env.tempdir();
    write_plan(dir.path(), &format!("ownership = \"host\"\n[service.{svc}]\nday = 1\nuser = \"1000:1000\"\n"));
    let bin = assert_cmd::cargo::cargo_bin("unroot");
    let out = std::process::Command::new("sh")
        .current_dir(dir.path())
        .arg("-c")
        .arg(format!("ulimit -n 256 && exec {} apply plan.toml --day 1 --yes --state-dir state", bin.display()))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut checked = 0;
    let mut stack = vec![data.clone()];
    while let Some(d) = stack.pop() {
        let m = std::fs::symlink_metadata(&d).unwrap();
        assert_eq!((m.uid(), m.gid()), (1000, 1000), "{}", d.display());
        checked += 1;
        for e in std::fs::read_dir(&d).unwrap() {
            stack.push(e.unwrap().path());
        }
    }
    assert_eq!(checked, 5051);
}

#[test]
fn item20_a_stop_grace_longer_than_the_request_timeout_is_waited_for() {
    let env = TestEnv::new("h20");
    // No --init: the stop takes its whole grace.
    let svc = env.run("svc", &[&image("busybox"), "sleep", "1000000"]);
    let dir = env.tempdir();
    std::fs::write(
        dir.path().join("plan.toml"),
        format!("[rollout]\nname = \"h\"\nstable_for = \"1s\"\nstop_timeout = \"5s\"\n[service.{svc}]\nday = 1\nuser = \"1000\"\n"),
    )
    .unwrap();
    // Requests time out after 2 s in this run; the stop waits its 5 s grace regardless.
    let out = unroot_env(
        dir.path(),
        &[("UNROOT_TEST_REQUEST_TIMEOUT", "2")],
        &["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let c = inspect(&svc);
    assert_eq!(c["Config"]["User"], "1000:1000");
    assert_eq!(c["State"]["Running"], true);
}

#[test]
fn item21_a_committed_run_whose_rollback_was_interrupted_is_open_everywhere() {
    let env = TestEnv::new("h21");
    let (svc, dir) = one_service(&env);
    ok(&apply_day(dir.path(), "1", &[]), 0);
    let run = first_run(dir.path());
    let written = journal_records(&dir.path().join("state"), "h").len();
    // Killed right after the rollback's first record.
    let out = unroot_env(
        dir.path(),
        &[("UNROOT_CRASH_AFTER_WRITE", &(written + 1).to_string())],
        &["rollback", &run, "--state-dir", "state"],
    );
    assert!(killed(&out));
    let st: Value =
        serde_json::from_str(&unroot_in(dir.path(), &["status", "--json", "--state-dir", "state"]).stdout).unwrap();
    assert_eq!(st["runs"][0]["state"], "interrupted");
    let refused = apply_day(dir.path(), "1", &[]);
    ok(&refused, 5);
    assert!(refused.stderr.contains(&format!("unroot resume {run}")), "{}", refused.stderr);
    // A resume that ends in a rollback exits 3: every service is back on its original.
    ok(&unroot_in(dir.path(), &["resume", "--state-dir", "state"]), 3);
    assert_eq!(process_uids(&svc), [0], "resume finished the rollback");
    let st: Value =
        serde_json::from_str(&unroot_in(dir.path(), &["status", "--json", "--state-dir", "state"]).stdout).unwrap();
    assert_eq!(st["runs"][0]["state"], "rolled-back");
}
