//! Crash safety end to end: SIGKILL after every durable journal write of a three-service day,
//! then `unroot resume`; killing the container being waited on; `rollback` of a committed
//! day and `verify` after it; a torn journal; Ctrl-C once and twice.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{TestEnv, containers_named, docker, image, inspect, owners, process_uids, unroot_in};
use serde_json::Value;

/// Three services: a real Redis with keys in an AOF volume, and two busybox services with
/// data volumes. Returns their names and the plan's directory.
struct Day {
    dir: tempfile::TempDir,
    redis: String,
    others: [String; 2],
    volumes: [String; 3],
}

fn three_services(env: &TestEnv, extra_rollout: &str) -> Day {
    let volumes = [env.name("redis-data"), env.name("a-data"), env.name("b-data")];
    for v in &volumes {
        docker(&["volume", "create", "--label", &env.label(), v]);
    }
    let redis = env.run("redis", &["-v", &format!("{}:/data", volumes[0]), &image("redis")]);
    crate::common::wait_for_redis(&redis);
    for i in 0..20 {
        docker(&["exec", &redis, "redis-cli", "set", &format!("k{i}"), &format!("v{i}")]);
    }
    let img = image("busybox");
    let a = env.run("a", &["--init", "-v", &format!("{}:/data", volumes[1]), &img, "sleep", "1000000"]);
    let b = env.run("b", &["--init", "-v", &format!("{}:/data", volumes[2]), &img, "sleep", "1000000"]);
    for (c, v) in [(&a, "alpha"), (&b, "beta")] {
        docker(&["exec", c, "sh", "-c", &format!("mkdir -p /data/d && echo {v} > /data/d/file && echo x > /data/top")]);
    }
    let dir = env.tempdir();
    std::fs::write(
        dir.path().join("plan.toml"),
        format!(
            "[rollout]\nname = \"crash\"\nstable_for = \"1s\"\nstop_timeout = \"2s\"\nhealth_timeout = \"30s\"\n{extra_rollout}\
             [service.{redis}]\nday = 1\nuser = \"redis\"\nhealth = {{ exec = [\"redis-cli\", \"ping\"] }}\n\
             [service.{a}]\nday = 1\nuser = \"1000:1000\"\nafter = [\"{redis}\"]\n\
             [service.{b}]\nday = 1\nuser = \"1000:1000\"\n"
        ),
    )
    .unwrap();
    Day { dir, redis, others: [a, b], volumes }
}

/// File contents of a volume with their checksums (owners aside), to prove no byte changed.
fn checksums(env: &TestEnv, volume: &str) -> String {
    crate::common::in_volume(
        env,
        &format!("{volume}:/d:ro"),
        "cd /d && find . -type f ! -name '*.aof' ! -name '*.manifest' ! -name '*.rdb' | sort | xargs md5sum",
    )
}

fn redis_keys(redis: &str) -> Vec<String> {
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    let mut args = vec!["exec", redis, "redis-cli", "mget"];
    args.extend(keys.iter().map(String::as_str));
    docker(&args).lines().map(str::to_string).collect()
}

/// Every entry that existed before has its old owner again (Redis may add a dump on
/// shutdown; new files are not the question).
fn assert_owners_kept(before: &[String], after: &[String], context: &str) {
    for line in before {
        assert!(after.contains(line), "{context}: `{line}` changed; now {after:?}");
    }
}

fn state_dir(dir: &Path) -> String {
    dir.join("state").display().to_string()
}

fn status(dir: &Path) -> Value {
    let s = unroot_in(dir, &["status", "--json", "--state-dir", &state_dir(dir)]);
    assert_eq!(s.code, Some(0), "{}", s.stderr);
    serde_json::from_str(&s.stdout).unwrap()
}

/// After a resume: each service migrated or original, running; one container per name;
/// nothing parked; data unchanged; status agrees with Docker.
fn assert_consistent(env: &TestEnv, day: &Day, sums: &[String; 2], context: &str) {
    let st = status(day.dir.path());
    let run = st["runs"].as_array().unwrap().last().unwrap();
    assert!(
        matches!(run["state"].as_str(), Some("committed" | "rolled-back")),
        "{context}: the run is {}",
        run["state"]
    );
    let targets =
        [(&day.redis, "999:999", 999), (&day.others[0], "1000:1000", 1000), (&day.others[1], "1000:1000", 1000)];
    for (name, target, uid) in targets {
        let holders: Vec<String> = containers_named(name).into_iter().filter(|n| n == name).collect();
        assert_eq!(holders.len(), 1, "{context}: {name} is held by {holders:?}");
        let c = inspect(name);
        assert_eq!(c["State"]["Running"], true, "{context}: {name} is not running");
        let user = c["Config"]["User"].as_str().unwrap();
        let said =
            run["services"].as_array().unwrap().iter().find(|s| s["name"] == name.as_str()).unwrap()["state"].clone();
        if user == target {
            assert_eq!(process_uids(name), [uid], "{context}: {name}");
            assert_eq!(said, "migrated", "{context}: status says {said} for migrated {name}");
        } else {
            assert_eq!(user, "", "{context}: {name} is neither migrated nor original");
            assert_eq!(process_uids(name), [0], "{context}: {name}");
            assert_eq!(said, "original", "{context}: status says {said} for original {name}");
        }
    }
    assert!(
        containers_named(".unroot-").iter().all(|n| !n.starts_with(&env.id)),
        "{context}: a parked original is left"
    );
    assert!(containers_named("unroot-helper.").iter().all(|n| !n.contains(&env.id)), "{context}: a helper is left");
    assert_eq!(redis_keys(&day.redis), (0..20).map(|i| format!("v{i}")).collect::<Vec<_>>(), "{context}: redis data");
    for (v, sum) in day.volumes[1..].iter().zip(sums) {
        assert_eq!(&checksums(env, v), sum, "{context}: the data of {v} changed");
    }
}

/// Runs apply with the crash failpoint at write `k`; true when the process was killed.
fn apply_crashing_at(dir: &Path, k: usize) -> bool {
    let out = crate::common::unroot()
        .current_dir(dir)
        .args(["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", &state_dir(dir)])
        .env("UNROOT_CRASH_AFTER_WRITE", k.to_string())
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    match out.status.signal() {
        Some(9) => true,
        _ => {
            assert_eq!(out.status.code(), Some(0), "k={k}: {}", String::from_utf8_lossy(&out.stderr));
            false
        }
    }
}

/// How many shards the crash matrix is cut into: each runs on a day of its own, side by side
/// with the others, and together they try every write.
const SHARDS: usize = 4;

/// One shard of the crash matrix: SIGKILL after durable write k for k = `shard`,
/// `shard + SHARDS`, … until a k past the last write lets the apply run to its end; after each
/// kill, `resume` must leave a consistent day, a second resume nothing to do, and `rollback`
/// the originals with their owners.
fn crash_matrix_shard(shard: usize) {
    let env = TestEnv::new(&format!("crash-matrix-{shard}"));
    let day = three_services(&env, "");
    let sums = [checksums(&env, &day.volumes[1]), checksums(&env, &day.volumes[2])];
    let owners_before: Vec<Vec<String>> = day.volumes.iter().map(|v| owners(&env, v)).collect();
    let mut last = 0;
    for k in (shard..).step_by(SHARDS) {
        // A fresh state dir per k; the services start from their originals.
        let _ = std::fs::remove_dir_all(day.dir.path().join("state"));
        let crashed = apply_crashing_at(day.dir.path(), k);
        let resume = unroot_in(day.dir.path(), &["resume", "--state-dir", &state_dir(day.dir.path())]);
        assert!(
            matches!(resume.code, Some(0 | 3)),
            "k={k}: resume exited {:?}: {}{}",
            resume.code,
            resume.stdout,
            resume.stderr
        );
        assert_consistent(&env, &day, &sums, &format!("k={k}"));
        // Resuming again is a no-op.
        let again = unroot_in(day.dir.path(), &["resume", "--state-dir", &state_dir(day.dir.path())]);
        assert_eq!(again.code, Some(0), "k={k}");
        assert!(again.stdout.contains("nothing to resume"), "k={k}: {}", again.stdout);
        // Back to the originals for the next k.
        let run = status(day.dir.path())["runs"][0]["run"].as_str().unwrap().to_string();
        let rb = unroot_in(day.dir.path(), &["rollback", &run, "--state-dir", &state_dir(day.dir.path())]);
        assert_eq!(rb.code, Some(0), "k={k}: rollback: {}{}", rb.stdout, rb.stderr);
        for (v, before) in day.volumes.iter().zip(&owners_before) {
            assert_owners_kept(before, &owners(&env, v), &format!("k={k}: owners of {v} after rollback"));
        }
        last = k;
        if !crashed {
            break;
        }
    }
    println!("crash matrix shard {shard}: the apply ran to its end at k={last}");
    assert!(last > 30, "a three-service day makes more than 30 durable writes; shard {shard} ended at k={last}");
}

#[test]
fn a_crash_after_the_first_and_every_fourth_durable_write_resumes_to_a_consistent_day() {
    crash_matrix_shard(1);
}

#[test]
fn a_crash_after_the_second_and_every_fourth_durable_write_resumes_to_a_consistent_day() {
    crash_matrix_shard(2);
}

#[test]
fn a_crash_after_the_third_and_every_fourth_durable_write_resumes_to_a_consistent_day() {
    crash_matrix_shard(3);
}

#[test]
fn a_crash_after_the_fourth_and_every_fourth_durable_write_resumes_to_a_consistent_day() {
    crash_matrix_shard(4);
}

#[test]
fn a_torn_last_journal_line_resumes() {
    let env = TestEnv::new("crash-torn");
    let day = three_services(&env, "");
    let sums = [checksums(&env, &day.volumes[1]), checksums(&env, &day.volumes[2])];
    assert!(apply_crashing_at(day.dir.path(), 9), "the crash happened");
    let runs = day.dir.path().join("state/crash/runs");
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    let journal = run.join("journal.jsonl");
    let mut text = std::fs::read_to_string(&journal).unwrap();
    text.push_str("{\"seq\":10,\"ts\":\"2026-01-01T00:00:00Z\",\"record\":\"st");
    std::fs::write(&journal, text).unwrap();
    let resume = unroot_in(day.dir.path(), &["resume", "--state-dir", &state_dir(day.dir.path())]);
    assert!(matches!(resume.code, Some(0 | 3)), "{}{}", resume.stdout, resume.stderr);
    assert_consistent(&env, &day, &sums, "torn journal");
}

/// Starts `unroot apply` of `dir/plan.toml` (state in `dir/state`) in the background and
/// returns once its journal shows a health step started. The caller waits for the child.
#[allow(clippy::zombie_processes)]
fn apply_until_health(dir: &Path, plan_name: &str) -> std::process::Child {
    let mut child = crate::common::unroot_cmd()
        .current_dir(dir)
        .args(["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let journal = std::fs::read_dir(dir.join("state").join(plan_name).join("runs"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read_to_string(e.ok()?.path().join("journal.jsonl")).ok())
            .unwrap_or_default();
        if journal.contains("\"step\":\"health\"") {
            return child;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the health step never started");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn killing_the_container_during_its_health_wait_rolls_back() {
    let env = TestEnv::new("kill-health");
    let img = image("busybox");
    let svc = env.run("svc", &["--init", &img, "sleep", "1000000"]);
    let before = inspect(&svc);
    let dir = env.tempdir();
    std::fs::write(
        dir.path().join("plan.toml"),
        format!("[rollout]\nname = \"k\"\nstable_for = \"20s\"\nstop_timeout = \"2s\"\n[service.{svc}]\nday = 1\nuser = \"1000\"\n"),
    )
    .unwrap();
    // Wait for the health step, then kill the replacement it waits on.
    let child = apply_until_health(dir.path(), "k");
    std::thread::sleep(Duration::from_millis(500));
    docker(&["kill", &svc]);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let now = inspect(&svc);
    assert_eq!(now["Id"], before["Id"], "the original is back");
    assert_eq!(now["State"]["Running"], true);
    assert_eq!(process_uids(&svc), [0]);
}

#[test]
fn rollback_of_a_committed_day_restores_every_original_and_verify_then_fails() {
    let env = TestEnv::new("rollback-committed");
    let day = three_services(&env, "");
    let sums = [checksums(&env, &day.volumes[1]), checksums(&env, &day.volumes[2])];
    let owners_before: Vec<Vec<String>> = day.volumes.iter().map(|v| owners(&env, v)).collect();
    let configs_before: Vec<Value> =
        [&day.redis, &day.others[0], &day.others[1]].iter().map(|n| inspect(n)["Config"].clone()).collect();
    let dir = day.dir.path();
    let apply = unroot_in(dir, &["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", &state_dir(dir)]);
    assert_eq!(apply.code, Some(0), "{}{}", apply.stdout, apply.stderr);
    let ok = unroot_in(dir, &["verify", "plan.toml", "--json"]);
    assert_eq!(ok.code, Some(0), "{}", ok.stdout);

    let run = status(dir)["runs"][0]["run"].as_str().unwrap().to_string();
    let rb = unroot_in(dir, &["rollback", &run, "--state-dir", &state_dir(dir)]);
    assert_eq!(rb.code, Some(0), "{}{}", rb.stdout, rb.stderr);
    for ((name, config), (v, owners_then)) in [&day.redis, &day.others[0], &day.others[1]]
        .iter()
        .zip(&configs_before)
        .zip(day.volumes.iter().zip(&owners_before))
    {
        let c = inspect(name);
        assert_eq!(c["State"]["Running"], true, "{name}");
        assert_eq!(process_uids(name), [0], "{name} runs as root again");
        // The recreated original has exactly the original's configuration, hostname included.
        assert_eq!(&c["Config"], config, "{name}: same configuration");
        assert_owners_kept(owners_then, &owners(&env, v), &format!("{name}: ownership as before"));
    }
    assert_eq!(redis_keys(&day.redis), (0..20).map(|i| format!("v{i}")).collect::<Vec<_>>());
    for (v, sum) in day.volumes[1..].iter().zip(&sums) {
        assert_eq!(&checksums(&env, v), sum);
    }
    let st = status(dir);
    assert_eq!(st["runs"][0]["state"], "rolled-back");
    let verify = unroot_in(dir, &["verify", "plan.toml", "--json"]);
    assert_eq!(verify.code, Some(1), "{}", verify.stdout);
    let v: Value = serde_json::from_str(&verify.stdout).unwrap();
    for s in v["services"].as_array().unwrap() {
        assert_eq!(s["ok"], false, "{s}");
        assert!(s["problems"].to_string().contains("configured user"), "{s}");
    }
}

/// Starts `unroot apply` in the background on a two-service day (b after a, a with a long
/// stability window) and waits until a's health step has started.
fn apply_waiting_on_health(env: &TestEnv) -> (tempfile::TempDir, String, String, std::process::Child) {
    let img = image("busybox");
    let a = env.run("a", &["--init", &img, "sleep", "1000000"]);
    let b = env.run("b", &["--init", &img, "sleep", "1000000"]);
    let dir = env.tempdir();
    std::fs::write(
        dir.path().join("plan.toml"),
        format!(
            "[rollout]\nname = \"int\"\nstop_timeout = \"2s\"\nstable_for = \"1s\"\n\
             [service.{a}]\nday = 1\nuser = \"1000\"\nstable_for = \"20s\"\n\
             [service.{b}]\nday = 1\nuser = \"1000\"\nafter = [\"{a}\"]\n"
        ),
    )
    .unwrap();
    let child = apply_until_health(dir.path(), "int");
    std::thread::sleep(Duration::from_millis(300));
    (dir, a, b, child)
}

fn sigint(child: &std::process::Child) {
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn ctrl_c_once_starts_nothing_new_and_rolls_back_what_is_in_flight() {
    let env = TestEnv::new("ctrl-c-once");
    let (dir, a, b, child) = apply_waiting_on_health(&env);
    let b_before = inspect(&b);
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // The 20 s stability wait was cut short: the health step failed as interrupted within
    // seconds of its start (the original's own health gate then ran as usual).
    let journal = std::fs::read_dir(dir.path().join("state/int/runs")).unwrap().next().unwrap().unwrap().path();
    let records: Vec<Value> = std::fs::read_to_string(journal.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let health: Vec<&Value> = records.iter().filter(|r| r["step"] == "health" && r["service"] == a.as_str()).collect();
    assert_eq!(health.len(), 2, "{health:?}");
    assert!(health[1]["error"].as_str().unwrap().contains("interrupted"), "{:?}", health[1]);
    let secs = |r: &Value| {
        let t = r["ts"].as_str().unwrap();
        let hms = &t[11..19];
        let parts: Vec<u64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
        parts[0] * 3600 + parts[1] * 60 + parts[2]
    };
    assert!(secs(health[1]) - secs(health[0]) < 15, "the wait was not cut short: {health:?}");
    assert!(!records.iter().any(|r| r["service"] == b.as_str() && r["step"] == "inspect"), "b was started");
    // a is back on its original; b was never touched.
    assert_eq!(inspect(&a)["Config"]["User"], "");
    assert_eq!(process_uids(&a), [0]);
    let b_now = inspect(&b);
    assert_eq!(b_now["Id"], b_before["Id"]);
    assert_eq!(b_now["State"]["StartedAt"], b_before["State"]["StartedAt"], "b was not stopped");
    let st = unroot_in(dir.path(), &["status", "--json", "--state-dir", "state"]);
    let v: Value = serde_json::from_str(&st.stdout).unwrap();
    assert_eq!(v["runs"][0]["state"], "rolled-back");
}

#[test]
fn ctrl_c_twice_stops_at_once_and_resume_continues() {
    let env = TestEnv::new("ctrl-c-twice");
    let (dir, a, b, child) = apply_waiting_on_health(&env);
    sigint(&child);
    std::thread::sleep(Duration::from_millis(100));
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let resume = unroot_in(dir.path(), &["resume", "--state-dir", "state"]);
    assert!(matches!(resume.code, Some(0 | 3)), "{}{}", resume.stdout, resume.stderr);
    for name in [&a, &b] {
        let c = inspect(name);
        assert_eq!(c["State"]["Running"], true, "{name}");
        let user = c["Config"]["User"].as_str().unwrap().to_string();
        assert!(user.is_empty() || user.starts_with("1000"), "{name}: {user}");
    }
    assert!(containers_named(".unroot-").iter().all(|n| !n.starts_with(&env.id)), "nothing parked is left");
}
