//! A daemon that dies in the middle of a day (items 22–24 of the hardening): a Docker daemon
//! of the test's own (Docker-in-Docker, reached over tcp://, so re-owning runs in helper
//! containers) is killed during the health gate, the re-own or the commit, and started
//! again. `apply` waits for it to restore what it touched; `resume` converges; every
//! service ends migrated or original, running, alone under its name, its data intact, and
//! no parked original is left. The shared daemon is never restarted.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::dind::Node;
use crate::common::{TestEnv, image, journal_text};

/// Services on the node: `svc-a` (restart unless-stopped) with 2,000 files in its volume,
/// `svc-b` (restart no) with a few.
const SERVICES: [(&str, &str, u32); 2] = [("svc-a", "unless-stopped", 2000), ("svc-b", "no", 3)];

fn checksums(node: &Node, volume: &str) -> String {
    node.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/d:ro"),
        &image("busybox"),
        "sh",
        "-c",
        "cd /d && find . -type f | sort | xargs md5sum | md5sum",
    ])
}

/// Waits until the inner container `name` runs (a restarted daemon starts `unless-stopped`
/// ones by itself, a restore or resume starts the others).
fn wait_running(node: &Node, name: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if node.docker_raw(&["inspect", "-f", "{{.State.Running}}", name]).stdout.starts_with(b"true") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn uids(node: &Node, name: &str) -> Vec<u32> {
    let out = node.docker(&["top", name, "-o", "pid,uid"]);
    let mut u: Vec<u32> = out.lines().skip(1).filter_map(|l| l.split_whitespace().nth(1)?.parse().ok()).collect();
    u.sort_unstable();
    u.dedup();
    u
}

/// Runs a day on a node, kills the node's daemon once the journal shows `marker`, starts
/// it again, then resumes; checks the day converged.
fn daemon_dies_during(test: &str, marker: &str, apply_may_exit: &[i32]) {
    let env = TestEnv::new(test);
    let mut node = Node::start(&env, "node");
    let busybox = image("busybox");
    node.load_image(&busybox);
    let mut sums = Vec::new();
    for (svc, restart, files) in SERVICES {
        let vol = format!("{svc}-data");
        node.docker(&["volume", "create", &vol]);
        node.docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{vol}:/d"),
            &busybox,
            "sh",
            "-c",
            &format!("i=0; while [ $i -lt {files} ]; do i=$((i+1)); echo $i > /d/f$i; done"),
        ]);
        sums.push(checksums(&node, &vol));
        node.docker(&[
            "run",
            "-d",
            "--init",
            "--name",
            svc,
            "--restart",
            restart,
            "-v",
            &format!("{vol}:/data"),
            &busybox,
            "sleep",
            "1000000",
        ]);
    }
    let dir = env.tempdir();
    std::fs::write(
        dir.path().join("plan.toml"),
        "[rollout]\nname = \"d\"\nstable_for = \"2s\"\nstop_timeout = \"2s\"\nhealth_timeout = \"60s\"\ndaemon_timeout = \"90s\"\n\
         [service.svc-a]\nday = 1\nuser = \"1000:1000\"\n[service.svc-b]\nday = 1\nuser = \"1000:1000\"\n",
    )
    .unwrap();
    let host = node.host();
    let mut child = crate::common::unroot_cmd()
        .current_dir(dir.path())
        .env("DOCKER_HOST", &host)
        .args(["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !journal_text(&dir.path().join("state"), "d").contains(marker) {
        if Instant::now() >= deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{marker} never showed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    node.kill_daemon();
    // What unroot had finished while the daemon lived: a service committed by then was done
    // with, and the daemon's death stops it as it stops any container of its restart policy.
    let before_the_kill = journal_text(&dir.path().join("state"), "d");
    std::thread::sleep(Duration::from_secs(2));
    node.start_again();
    assert_eq!(node.host(), host, "the node kept its address");
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let code = out.status.code().unwrap_or(-1);
    assert!(apply_may_exit.contains(&code), "apply exited {code}:\n{stdout}\n{stderr}");
    if code == 3 {
        assert!(
            stdout.contains("daemon-unreachable") && stdout.contains("daemon-back"),
            "apply waited for the daemon before restoring:\n{stdout}"
        );
    }

    let resume = crate::common::unroot()
        .current_dir(dir.path())
        .env("DOCKER_HOST", &host)
        .args(["resume", "--state-dir", "state"])
        .output()
        .unwrap();
    assert!(
        matches!(resume.status.code(), Some(0 | 3)),
        "resume: {}{}",
        String::from_utf8_lossy(&resume.stdout),
        String::from_utf8_lossy(&resume.stderr)
    );

    let names = node.docker(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!names.contains(".unroot-"), "a parked original is left: {names}");
    assert!(!names.contains("unroot-helper"), "a helper is left: {names}");
    let journal = journal_text(&dir.path().join("state"), "d");
    for ((svc, restart, _), sum) in SERVICES.iter().zip(&sums) {
        assert_eq!(names.lines().filter(|n| n == svc).count(), 1, "{svc} is held once: {names}");
        assert_eq!(&checksums(&node, &format!("{svc}-data")), sum, "the data of {svc} is intact");
        let touched = journal.contains(&format!("\"service\":\"{svc}\",\"step\":\"inspect\""));
        if !touched && *restart == "no" {
            // The crash stopped it and nothing may start it but its operator: unroot never
            // touched it.
            assert_eq!(node.docker(&["inspect", "-f", "{{.State.Status}} {{.Config.User}}", svc]), "exited");
            continue;
        }
        let committed_before_the_kill =
            before_the_kill.contains(&format!("\"service\":\"{svc}\",\"step\":\"commit\",\"ok\":true"));
        if committed_before_the_kill && *restart == "no" {
            // Migrated and finished before the daemon died, which stopped it; only its
            // operator starts a container whose restart policy is `no`.
            let state = node.docker(&["inspect", "-f", "{{.State.Status}} {{.Config.User}}", svc]);
            assert!(matches!(state.as_str(), "exited 1000:1000" | "running 1000:1000"), "{svc}: {state}");
            continue;
        }
        assert!(wait_running(&node, svc), "{svc} runs");
        let user = node.docker(&["inspect", "-f", "{{.Config.User}}", svc]);
        match user.as_str() {
            "1000:1000" => assert_eq!(uids(&node, svc), [1000], "{svc} migrated"),
            "" => assert_eq!(uids(&node, svc), [0], "{svc} original"),
            other => panic!("{svc} is neither migrated nor original: {other:?}"),
        }
    }
    let status = crate::common::unroot()
        .current_dir(dir.path())
        .env("DOCKER_HOST", &host)
        .args(["status", "--json", "--state-dir", "state"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(
        matches!(v["runs"][0]["state"].as_str(), Some("committed" | "rolled-back")),
        "the run is finished: {}",
        v["runs"][0]
    );
}

#[test]
fn a_daemon_that_dies_during_the_health_gate_is_waited_for_and_the_day_restored() {
    // apply waits for the daemon and restores what it touched itself: exit 3, not 4.
    daemon_dies_during("dd-health", "\"step\":\"health\"", &[3]);
}

#[test]
fn a_daemon_that_dies_during_the_reown_is_waited_for_and_the_day_restored() {
    daemon_dies_during("dd-chown", "\"step\":\"chown\"", &[3]);
}

#[test]
fn a_daemon_that_dies_during_the_commit_ends_migrated_or_open_for_resume() {
    // The parked originals may not all be removed: the run then stays open (exit 4) and
    // resume finishes the removals.
    daemon_dies_during("dd-commit", "\"step\":\"commit\"", &[0, 4]);
}
