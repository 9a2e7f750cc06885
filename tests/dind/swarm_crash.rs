//! A Swarm day killed (SIGKILL) right after each durable journal write, then resumed (SPEC
//! §11 with §5): each time the services converge, migrated or original, never left scaled to
//! zero, their volumes owned as their user needs, no helper job or config left behind. On a
//! single-node swarm, so that every write point of a two-service day fits in the test's time.

use std::os::unix::process::ExitStatusExt;

use crate::common::swarm::{Swarm, owners_on};
use crate::common::{TestEnv, image};

/// How many kill points run at once (each on services of its own).
const AT_ONCE: usize = 3;

/// One kill point: services `aK` (replicated, volume `vaK`) and `bK` (global, volume
/// `vbK`) moved to 999 and 1000 by a day killed after journal write `k`, then resumed.
/// Returns whether the kill happened (false: the day ended before write `k`).
fn crash_at(swarm: &Swarm, busybox: &str, dir: &std::path::Path, k: usize) -> bool {
    let (a, b) = (format!("a{k}"), format!("b{k}"));
    let script = "echo kept >> /data/log && exec sleep 1000000";
    let grace = ["--stop-grace-period", "1s"];
    let va = format!("type=volume,source=va{k},target=/data");
    let vb = format!("type=volume,source=vb{k},target=/data");
    swarm.create_service(&a, &[&grace[..], &["--mount", &va, busybox, "sh", "-c", script]].concat());
    swarm
        .create_service(&b, &[&grace[..], &["--mode", "global", "--mount", &vb, busybox, "sh", "-c", script]].concat());
    swarm.wait_running_tasks(&a, 1);
    swarm.wait_running_tasks(&b, 1);
    let spec_of = |s: &str| swarm.manager().docker(&["service", "inspect", "-f", "{{json .Spec}}", s]);
    let originals = [spec_of(&a), spec_of(&b)];

    let dir = dir.join(k.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let plan = dir.join("plan.toml");
    std::fs::write(
        &plan,
        format!(
            "[rollout]\nname = \"crash{k}\"\n\
             [service.{a}]\nday = 1\nuser = \"999:999\"\nstable_for = \"1s\"\nhealth_timeout = \"60s\"\n\
             [service.{b}]\nday = 1\nuser = \"1000:1000\"\nstable_for = \"1s\"\nhealth_timeout = \"60s\"\n"
        ),
    )
    .unwrap();
    let state = dir.join("state");
    let (plan, state) = (plan.to_str().unwrap(), state.to_str().unwrap());
    let killed = crate::common::unroot()
        .env("DOCKER_HOST", swarm.manager().host())
        .env_remove("DOCKER_CONTEXT")
        .env("UNROOT_CRASH_AFTER_WRITE", k.to_string())
        .args(["apply", plan, "--day", "1", "--yes", "--state-dir", state])
        .output()
        .unwrap();
    let was_killed = killed.status.signal() == Some(9);
    if !was_killed {
        assert_eq!(killed.status.code(), Some(0), "k={k}: {}", String::from_utf8_lossy(&killed.stderr));
        // The inspect step recorded the uids the tasks on this (the manager's) node ran as:
        // the report's "before".
        let runs = std::path::Path::new(state).join(format!("crash{k}/runs"));
        let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
        let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
        let inspected: Vec<serde_json::Value> = journal
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r["step"] == "inspect" && r["ok"] == true)
            .collect();
        assert_eq!(inspected.len(), 2, "{journal}");
        for r in inspected {
            assert_eq!(r["detail"]["process_uids"], serde_json::json!([0]), "{r}");
        }
    }
    let (code, out, err) = swarm.unroot(&["resume", "--state-dir", state]);
    assert!(matches!(code, Some(0 | 3)), "k={k}: resume {code:?}: {out}{err}");

    for ((service, volume, user), original) in
        [(&a, format!("va{k}"), "999:999"), (&b, format!("vb{k}"), "1000:1000")].iter().zip(&originals)
    {
        let spec = spec_of(service);
        let migrated = spec.contains(&format!("\"User\":\"{user}\""));
        assert!(migrated || &spec == original, "k={k}: {service} is neither migrated nor original: {spec}");
        assert!(
            !spec.contains("io.unroot.parked") && !spec.contains("\"Replicas\":0"),
            "k={k}: {service} left stopped"
        );
        swarm.wait_running_tasks(service, 1);
        let owner = if migrated { *user } else { "0:0" };
        let owners = owners_on(swarm.manager(), volume);
        assert!(
            owners.len() == 2 && owners.iter().all(|o| o.starts_with(&format!("{owner} "))),
            "k={k}: {service} ({}) owners: {owners:?}",
            if migrated { "migrated" } else { "original" }
        );
    }
    let left = swarm.manager().docker(&["service", "ls", "--format", "{{.Name}}"]);
    let ours = |l: &&str| l.starts_with("unroot-") && (l.contains(&format!("-{a}-")) || l.contains(&format!("-{b}-")));
    assert!(!left.lines().any(|l| ours(&l)), "k={k}: a helper job is left: {left}");
    swarm.manager().docker(&["service", "rm", &a, &b]);
    was_killed
}

#[test]
fn a_swarm_day_killed_after_any_journal_write_converges_on_resume() {
    let env = TestEnv::new("swarm-crash");
    let swarm = Swarm::start(&env, 0);
    let busybox = image("busybox");
    swarm.load_image(&busybox);
    let dir = env.tempdir();
    let kills: Vec<Vec<usize>> = std::thread::scope(|scope| {
        let threads: Vec<_> = (1..=AT_ONCE)
            .map(|first| {
                let (swarm, busybox, dir) = (&swarm, &busybox, dir.path());
                scope.spawn(move || {
                    let mut killed = Vec::new();
                    let mut k = first;
                    while crash_at(swarm, busybox, dir, k) {
                        killed.push(k);
                        k += AT_ONCE;
                    }
                    killed
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("a kill point failed")).collect()
    });
    // Other kill points ran beside each one; now that all are done, nothing of unroot's is left.
    assert_eq!(swarm.manager().docker(&["service", "ls", "-q"]), "", "no helper job is left");
    assert_eq!(swarm.manager().docker(&["config", "ls", "-q"]), "", "no config is left");
    assert_eq!(swarm.unroot_containers_left(), Vec::<String>::new(), "no container of a check or helper is left");
    let mut all: Vec<usize> = kills.concat();
    all.sort();
    // Every write of the day was a kill point: a header, the run's start, five steps of two
    // services (ten records each), the commit's two.
    assert!(all.len() >= 20, "killed after {all:?}");
    assert_eq!(all, (1..=all.len()).collect::<Vec<_>>(), "no write point skipped");
}
