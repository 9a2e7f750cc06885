//! Hardening, continued: re-owning real files, Ctrl-C during a slow stop, the state
//! directory's mode and the stop's grace, tried against the real daemon.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::common::hardening::*;
use crate::common::{TestEnv, docker, image, inspect, journal_records, process_uids, spawn_until_step, unroot_in};

fn a_single_file_bind_is_reowned_and_restored(ownership: &str) {
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
fn a_single_file_bind_is_reowned_and_restored_host() {
    a_single_file_bind_is_reowned_and_restored("host");
}

#[test]
fn a_single_file_bind_is_reowned_and_restored_helper() {
    a_single_file_bind_is_reowned_and_restored("helper");
}

#[test]
fn ctrl_c_during_a_slow_stop_starts_no_further_step() {
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
fn an_existing_shared_state_dir_keeps_its_mode() {
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
fn a_tree_of_5000_directories_reowns_under_a_low_descriptor_limit() {
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
fn a_stop_grace_longer_than_the_request_timeout_is_waited_for() {
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
