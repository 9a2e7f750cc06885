//! Hardening: each test is one way a run could lose a service, leak, or stick, tried against
//! the real daemon the way an operator would meet it (more in hardening_runs.rs; those that
//! prove a decision of the engine are on the fake, in tests/offline/decisions/).

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::common::hardening::*;
use crate::common::{
    Down, TestEnv, compose, containers_named, docker, exists, image, inspect, journal_records, owners, process_uids,
    spawn_until_step, unroot_in,
};

#[test]
fn docker_compose_1x_relative_files_get_the_override_beside_them() {
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
fn a_kill_during_the_preview_leaves_no_probe_behind() {
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
fn the_hostname_is_kept_so_data_keyed_by_it_is_found() {
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
fn rollback_after_docker_compose_up_with_the_override_puts_the_original_back() {
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
fn entries_deleted_since_the_reown_do_not_stop_a_helper_restore() {
    let env = TestEnv::new("h06");
    let vol = env.name("data");
    docker(&["volume", "create", "--label", &env.label(), &vol]);
    crate::common::in_volume(
        &env,
        &format!("{vol}:/d"),
        "mkdir /d/wal && for i in 1 2 3 4; do echo $i > /d/wal/seg$i; done",
    );
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
fn a_replacement_created_before_a_crash_gets_every_network() {
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
fn a_restore_that_recreated_the_original_can_be_run_again() {
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
fn the_override_replaces_a_planted_symlink_and_is_never_wider_than_the_base() {
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
fn a_bind_source_swapped_for_a_link_after_the_preview_is_not_reowned() {
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
