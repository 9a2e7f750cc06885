//! `unroot apply` of Swarm services against a real multi-node swarm the test builds (SPEC
//! §11): a manager and two workers as Docker-in-Docker nodes on a private network; unroot
//! talks to the manager over tcp as an operator's context would.

use crate::common::dind::Node;
use crate::common::swarm::{ON_WORKERS, Swarm, modes_on, owners_on};
use crate::common::{TestEnv, image};

/// The task container of `service` running on `node`.
fn task_on(node: &Node, service: &str) -> String {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    let ids = node.docker(&["ps", "-q", "--filter", &filter, "--filter", "status=running"]);
    assert_eq!(ids.lines().count(), 1, "one running task of {service} on {}: {ids}", node.name);
    ids
}

/// The uids of the processes of a container on `node`.
fn uids(node: &Node, container: &str) -> Vec<String> {
    let top = node.docker(&["top", container, "-o", "pid,uid"]);
    let mut uids: Vec<String> =
        top.lines().skip(1).filter_map(|l| l.split_whitespace().nth(1)).map(str::to_string).collect();
    uids.dedup();
    uids
}

fn spec_field(swarm: &Swarm, service: &str, field: &str) -> String {
    swarm.manager().docker(&["service", "inspect", "-f", &format!("{{{{{field}}}}}"), service])
}

/// The state directory and plan of a test, the plan written from `body`.
fn plan_in(dir: &tempfile::TempDir, body: &str) -> (String, String) {
    let plan = dir.path().join("plan.toml");
    std::fs::write(&plan, body).unwrap();
    (plan.to_str().unwrap().to_string(), dir.path().join("state").to_str().unwrap().to_string())
}

#[test]
fn a_replicated_and_a_global_service_move_to_their_users_on_every_node() {
    let env = TestEnv::new("swarm-apply");
    let swarm = Swarm::start(&env, 2);
    let busybox = image("busybox");
    swarm.load_image(&busybox);
    // db appends to its log at each start, so it runs as 999 only once its data is 999's;
    // Swarm calls a task running only once its HEALTHCHECK passes.
    let db = "echo kept >> /data/log && touch /data/alive && exec sleep 1000000";
    let health = ["--health-cmd", "test -f /data/alive", "--health-interval", "1s"];
    let data = ["--mount", "type=volume,source=data,target=/data"];
    // Its own UpdateConfig differs from the one unroot updates with.
    let update = ["--update-order", "start-first", "--update-failure-action", "continue", "--update-parallelism", "2"];
    swarm.create_service(
        "db",
        &[&ON_WORKERS[..], &data[..], &health[..], &update[..], &[&busybox, "sh", "-c", db]].concat(),
    );
    let db_update_config = spec_field(&swarm, "db", "json .Spec.UpdateConfig");
    // agent: one task per node, each with its own `cache`.
    let agent = "mkdir -p /cache/d && echo kept >> /cache/d/log && exec sleep 1000000";
    let cache = ["--mount", "type=volume,source=cache,target=/cache"];
    swarm.create_service("agent", &[&["--mode", "global"][..], &cache[..], &[&busybox, "sh", "-c", agent]].concat());
    swarm.wait_running_tasks("db", 2);
    swarm.wait_running_tasks("agent", 3);

    let dir = env.tempdir();
    let (plan, state) = plan_in(
        &dir,
        "[rollout]\nname = \"swarm-apply\"\n\
         [service.db]\nday = 1\nuser = \"999:999\"\nhealth_timeout = \"90s\"\nstable_for = \"2s\"\n\
         [service.agent]\nday = 1\nuser = \"1000:1000\"\nhealth_timeout = \"90s\"\nstable_for = \"2s\"\n",
    );
    let (code, out, err) = swarm.unroot(&["apply", &plan, "--day", "1", "--yes", "--state-dir", &state]);
    assert_eq!(code, Some(0), "{out}{err}");

    // The specs: the planned users, the original replicas and placement.
    assert_eq!(spec_field(&swarm, "db", ".Spec.TaskTemplate.ContainerSpec.User"), "999:999");
    assert_eq!(spec_field(&swarm, "agent", ".Spec.TaskTemplate.ContainerSpec.User"), "1000:1000");
    assert_eq!(spec_field(&swarm, "db", ".Spec.Mode.Replicated.Replicas"), "2");
    assert_eq!(
        spec_field(&swarm, "db", "json .Spec.TaskTemplate.ContainerSpec.Healthcheck.Test"),
        r#"["CMD-SHELL","test -f /data/alive"]"#,
        "the health check is kept"
    );
    assert_eq!(spec_field(&swarm, "agent", ".Spec.TaskTemplate.Placement.Constraints"), "[]");
    // Every task runs and is healthy, as its user, with the data from before.
    for worker in swarm.workers() {
        let task = task_on(worker, "db");
        assert_eq!(uids(worker, &task), ["999"], "{}", worker.name);
        assert_eq!(worker.docker(&["inspect", "-f", "{{.State.Health.Status}}", &task]), "healthy");
        assert_eq!(worker.docker(&["exec", &task, "cat", "/data/log"]), "kept\nkept", "{}", worker.name);
        let owners = owners_on(worker, "data");
        assert!(owners.len() == 3 && owners.iter().all(|o| o.starts_with("999:999 ")), "{}: {owners:?}", worker.name);
    }
    for node in swarm.nodes() {
        let task = task_on(node, "agent");
        assert_eq!(uids(node, &task), ["1000"], "{}", node.name);
        assert_eq!(node.docker(&["exec", &task, "cat", "/cache/d/log"]), "kept\nkept", "{}", node.name);
        let owners = owners_on(node, "cache");
        assert!(owners.len() == 3 && owners.iter().all(|o| o.starts_with("1000:1000 ")), "{}: {owners:?}", node.name);
    }
    // No helper job or config is left; each node's manifest was kept, private.
    let services = swarm.manager().docker(&["service", "ls", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = services.lines().collect();
    names.sort();
    assert_eq!(names, ["agent", "db"]);
    assert_eq!(swarm.manager().docker(&["config", "ls", "-q"]), "");
    // Nor a container of the preview's checks or of the helpers, on any node.
    assert_eq!(swarm.unroot_containers_left(), Vec::<String>::new());
    let runs: Vec<_> = std::fs::read_dir(dir.path().join("state/swarm-apply/runs")).unwrap().flatten().collect();
    assert_eq!(runs.len(), 1);
    let owners = runs[0].path().join("services/db/owners");
    for worker in swarm.workers() {
        let manifest = owners.join(swarm.node_id(worker)).join("0");
        let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
        assert!(text.contains("C 0:0 ./log") && text.ends_with("END\n"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&manifest).unwrap().permissions().mode() & 0o777, 0o600);
    }

    // verify agrees, and a second apply has nothing left to do.
    let (code, out, err) = swarm.unroot(&["verify", &plan]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = swarm.unroot(&["status", "--state-dir", &state]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("committed"), "{out}");

    // db has its own UpdateConfig back, and an operator's `docker service rollback` keeps its
    // tasks running as they are: Swarm's previous spec is never unroot's stopped one.
    assert_eq!(spec_field(&swarm, "db", "json .Spec.UpdateConfig"), db_update_config);
    assert!(db_update_config.contains("start-first"), "{db_update_config}");
    swarm.manager().docker(&["service", "rollback", "--detach", "db"]);
    assert_eq!(spec_field(&swarm, "db", ".Spec.Mode.Replicated.Replicas"), "2");
    assert_eq!(spec_field(&swarm, "db", ".Spec.TaskTemplate.ContainerSpec.User"), "999:999");
    swarm.wait_running_tasks("db", 2);

    // Someone adds an env to agent by hand: unroot's rollback refuses to overwrite it, names
    // the field, and with --force puts the original back anyway.
    let run = runs[0].file_name().to_string_lossy().to_string();
    swarm.manager().docker(&["service", "update", "--detach", "--env-add", "BY_HAND=1", "agent"]);
    let (code, out, err) = swarm.unroot(&["rollback", &run, "--service", "agent", "--state-dir", &state]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("agent") && err.contains("TaskTemplate.ContainerSpec.Env") && err.contains("BY_HAND"),
        "{err}"
    );
    assert!(!err.contains("BY_HAND=1"), "no value is printed: {err}");
    assert_eq!(spec_field(&swarm, "agent", ".Spec.TaskTemplate.ContainerSpec.User"), "1000:1000", "nothing changed");
    let (code, out, err) = swarm.unroot(&["rollback", &run, "--service", "agent", "--force", "--state-dir", &state]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(spec_field(&swarm, "agent", ".Spec.TaskTemplate.ContainerSpec.User"), "");
    swarm.wait_running_tasks("agent", 3);
    // After the restore, `docker service rollback` has the original to go back to.
    swarm.manager().docker(&["service", "rollback", "--detach", "agent"]);
    assert_eq!(spec_field(&swarm, "agent", ".Spec.TaskTemplate.ContainerSpec.User"), "");
    assert_eq!(spec_field(&swarm, "agent", ".Spec.TaskTemplate.Placement.Constraints"), "[]");
    swarm.wait_running_tasks("agent", 3);
}

#[test]
fn a_service_that_cannot_run_as_its_user_gets_its_exact_spec_and_owners_back() {
    let env = TestEnv::new("swarm-back");
    let swarm = Swarm::start(&env, 2);
    let busybox = image("busybox");
    swarm.load_image(&busybox);
    // Each worker's copy of `data` differs (worker-1 holds a file of 123); as any user but
    // root the task fails: its /root is root's.
    let seed = "[ -e /data/seed ] || { mkdir -p /data/d && echo x > /data/d/f && echo t > /data/tool && chmod 4755 /data/tool && \
                { [ \"$(hostname)\" != worker-1 ] || { echo y > /data/g && chown 123:123 /data/g; }; } && touch /data/seed; }; \
                touch /root/ok && exec sleep 1000000";
    let data = ["--mount", "type=volume,source=data,target=/data"];
    let hostname = ["--hostname", "{{.Node.Hostname}}", "--health-cmd", "true", "--health-interval", "1s"];
    swarm.create_service("bad", &[&ON_WORKERS[..], &data[..], &hostname[..], &[&busybox, "sh", "-c", seed]].concat());
    swarm.wait_running_tasks("bad", 2);
    let spec_before = spec_field(&swarm, "bad", "json .Spec");
    let owners_before: Vec<Vec<String>> = swarm.workers().iter().map(|w| owners_on(w, "data")).collect();
    assert!(owners_before[0].contains(&"123:123 ./g".to_string()), "{owners_before:?}");
    let modes_before: Vec<Vec<String>> = swarm.workers().iter().map(|w| modes_on(w, "data")).collect();
    assert!(modes_before[0].contains(&"4755 ./tool".to_string()), "{modes_before:?}");

    let dir = env.tempdir();
    let (plan, state) = plan_in(
        &dir,
        "[rollout]\nname = \"swarm-back\"\n\
         [service.bad]\nday = 1\nuser = \"1000:1000\"\nhealth_timeout = \"60s\"\nstable_for = \"2s\"\n",
    );
    let (code, out, err) = swarm.unroot(&["apply", &plan, "--day", "1", "--yes", "--state-dir", &state]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(err.contains("bad") && err.contains("health"), "{err}");

    // Exactly the original spec (everything but version and timestamps), its tasks running
    // as before, every node's owners as they were.
    assert_eq!(spec_field(&swarm, "bad", "json .Spec"), spec_before);
    swarm.wait_running_tasks("bad", 2);
    for ((worker, before), modes) in swarm.workers().iter().zip(&owners_before).zip(&modes_before) {
        assert_eq!(uids(worker, &task_on(worker, "bad")), ["0"], "{}", worker.name);
        assert_eq!(&owners_on(worker, "data"), before, "{}", worker.name);
        assert_eq!(&modes_on(worker, "data"), modes, "{}: the setuid bit is back", worker.name);
    }
    let services = swarm.manager().docker(&["service", "ls", "--format", "{{.Name}}"]);
    assert_eq!(services, "bad", "no helper job is left");
    assert_eq!(swarm.unroot_containers_left(), Vec::<String>::new(), "no helper container on any node");
    assert_eq!(swarm.manager().docker(&["config", "ls", "-q"]), "", "no config is left");
    let (code, out, err) = swarm.unroot(&["status", "--state-dir", &state]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("rolled-back"), "{out}");
    // `docker service rollback` after the restore goes to the original itself, never to
    // unroot's stopped spec.
    swarm.manager().docker(&["service", "rollback", "--detach", "bad"]);
    assert_eq!(spec_field(&swarm, "bad", "json .Spec"), spec_before);
    swarm.wait_running_tasks("bad", 2);
}

#[test]
fn a_worker_stopped_mid_day_is_named_and_the_day_rolls_back_on_the_nodes_that_remain() {
    let env = TestEnv::new("swarm-down");
    let mut swarm = Swarm::start(&env, 2);
    let busybox = image("busybox");
    swarm.load_image(&busybox);
    let script = "echo kept >> /data/log && exec sleep 1000000";
    let data = ["--mount", "type=volume,source=data,target=/data", "--stop-grace-period", "1s"];
    swarm.create_service("db", &[&ON_WORKERS[..], &data[..], &[&busybox, "sh", "-c", script]].concat());
    swarm.wait_running_tasks("db", 2);
    let spec_before = spec_field(&swarm, "db", "json .Spec");
    let owners_before: Vec<Vec<String>> = swarm.workers().iter().map(|w| owners_on(w, "data")).collect();

    // A long stability window: worker-2 stops while the gate watches the new tasks.
    let dir = env.tempdir();
    let (_, state) = plan_in(
        &dir,
        "[rollout]\nname = \"swarm-down\"\n\
         [service.db]\nday = 1\nuser = \"999:999\"\nhealth_timeout = \"120s\"\nstable_for = \"90s\"\n",
    );
    let apply = apply_until(&swarm, &dir, "swarm-down", "\"step\":\"health\"");
    swarm.workers()[1].kill_daemon();
    let out = apply.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // The gate names the node; the spec and worker-1's owners come back, worker-2's wait.
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("node worker-2") && err.contains("down"), "{err}");
    assert_eq!(spec_field(&swarm, "db", "json .Spec"), spec_before);
    let worker_1 = &swarm.workers()[0];
    let task = task_on(worker_1, "db");
    assert_eq!(uids(worker_1, &task), ["0"]);
    assert_eq!(owners_on(worker_1, "data"), owners_before[0], "worker-1's owners are back");
    let log = worker_1.docker(&["exec", &task, "cat", "/data/log"]);
    assert!(log.lines().count() >= 3 && log.lines().all(|l| l == "kept"), "worker-1's data: {log}");

    // Once worker-2 is back, resume finishes the rollback there too.
    swarm.start_worker_again(1);
    let (code, out, err) = swarm.unroot(&["resume", "--state-dir", &state]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert_eq!(spec_field(&swarm, "db", "json .Spec"), spec_before);
    swarm.wait_running_tasks("db", 2);
    for (worker, before) in swarm.workers().iter().zip(&owners_before) {
        assert_eq!(&owners_on(worker, "data"), before, "{}", worker.name);
        let task = task_on(worker, "db");
        let log = worker.docker(&["exec", &task, "cat", "/data/log"]);
        assert!(log.lines().all(|l| l == "kept"), "{}: {log}", worker.name);
    }
}

/// Starts `unroot apply` of day 1 of `dir`'s plan (called `plan`) against the manager and
/// returns once the run's journal holds `text` (a step reached), the apply still running.
fn apply_until(swarm: &Swarm, dir: &tempfile::TempDir, plan: &str, text: &str) -> std::process::Child {
    let (plan_file, state) = (dir.path().join("plan.toml"), dir.path().join("state"));
    let apply = crate::common::unroot_cmd()
        .env("DOCKER_HOST", swarm.manager().host())
        .env_remove("DOCKER_CONTEXT")
        .arg("apply")
        .arg(&plan_file)
        .args(["--day", "1", "--yes", "--state-dir"])
        .arg(&state)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while !journal_has(dir.path(), plan, text) {
        assert!(std::time::Instant::now() < deadline, "the run's journal never held {text}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    apply
}

/// Whether a journal under `dir` holds `text`.
fn journal_has(dir: &std::path::Path, plan: &str, text: &str) -> bool {
    let runs = dir.join("state").join(plan).join("runs");
    std::fs::read_dir(runs)
        .into_iter()
        .flatten()
        .flatten()
        .any(|run| std::fs::read_to_string(run.path().join("journal.jsonl")).is_ok_and(|j| j.contains(text)))
}

#[test]
fn a_node_drained_mid_rollback_is_named_at_once_and_resume_finishes_its_copy() {
    let env = TestEnv::new("swarm-drain");
    let swarm = Swarm::start(&env, 2);
    let busybox = image("busybox");
    swarm.load_image(&busybox);
    // As any user but root the task fails (its /root is root's): the day rolls back. Its
    // tasks take their 5 s grace to stop (PID 1 ignores SIGTERM), the time to drain a node.
    let script = "echo kept >> /data/log && touch /root/ok && exec sleep 1000000";
    let data = ["--mount", "type=volume,source=data,target=/data", "--stop-grace-period", "5s"];
    swarm.create_service("db", &[&ON_WORKERS[..], &data[..], &[&busybox, "sh", "-c", script]].concat());
    swarm.wait_running_tasks("db", 2);
    let spec_before = spec_field(&swarm, "db", "json .Spec");
    let owners_before: Vec<Vec<String>> = swarm.workers().iter().map(|w| owners_on(w, "data")).collect();

    let dir = env.tempdir();
    let (_, state) = plan_in(
        &dir,
        "[rollout]\nname = \"swarm-drain\"\n\
         [service.db]\nday = 1\nuser = \"999:999\"\nhealth_timeout = \"60s\"\nstable_for = \"2s\"\n",
    );
    // worker-2 is drained as soon as the rollback starts.
    let apply = apply_until(&swarm, &dir, "swarm-drain", "\"step\":\"restore\"");
    let worker_2 = swarm.node_id(&swarm.workers()[1]).to_string();
    swarm.manager().docker(&["node", "update", "--availability", "drain", &worker_2]);
    let started = std::time::Instant::now();
    let out = apply.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Named at once (not waited for), worker-1's owners and the spec are back.
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(said.contains("node worker-2") && said.contains("is drained"), "{said}");
    assert!(started.elapsed() < std::time::Duration::from_secs(120), "not waited on: {:?}", started.elapsed());
    assert_eq!(spec_field(&swarm, "db", "json .Spec"), spec_before);
    assert_eq!(owners_on(&swarm.workers()[0], "data"), owners_before[0], "worker-1's owners are back");
    assert_ne!(owners_on(&swarm.workers()[1], "data"), owners_before[1], "worker-2's copy waits");

    // Active again: resume finishes worker-2's copy.
    swarm.manager().docker(&["node", "update", "--availability", "active", &worker_2]);
    let (code, out, err) = swarm.unroot(&["resume", "--state-dir", &state]);
    assert_eq!(code, Some(3), "{out}{err}");
    for (worker, before) in swarm.workers().iter().zip(&owners_before) {
        assert_eq!(&owners_on(worker, "data"), before, "{}", worker.name);
    }
    assert_eq!(spec_field(&swarm, "db", "json .Spec"), spec_before);
    assert_eq!(swarm.unroot_containers_left(), Vec::<String>::new());
}
