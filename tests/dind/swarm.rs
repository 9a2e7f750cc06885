//! Swarm services against a real multi-node swarm the test builds (SPEC §11): three
//! Docker-in-Docker nodes, a manager and two workers, on a private network; unroot talks to
//! the manager over tcp as an operator's context would.

use crate::common::swarm::{ON_WORKERS, Swarm, owners_on};
use crate::common::{TestEnv, image};
use serde_json::Value;

/// The `data` volume at /data.
const DATA: [&str; 2] = ["--mount", "type=volume,source=data,target=/data"];

/// The mount of [`DATA`] and the placement of [`ON_WORKERS`], as the engine reads them.
fn data_on_workers() -> (unroot::docker::swarm::SpecMount, Vec<String>) {
    let mount = unroot::docker::swarm::SpecMount {
        kind: unroot::model::mount::MountKind::Volume,
        source: "data".into(),
        target: "/data".into(),
        read_only: false,
        volume_options: None,
    };
    (mount, vec!["node.role==worker".to_string()])
}

#[test]
fn the_audit_covers_services_with_their_users_and_the_uids_the_manager_sees() {
    let env = TestEnv::new("swarm-audit");
    let swarm = Swarm::start(&env, 2);
    let busybox = image("busybox");
    swarm.load_image(&busybox);
    // Root, on the two workers: the manager cannot see its processes.
    swarm.create_service("rooted", &[&ON_WORKERS[..], &[&busybox, "sleep", "1000000"]].concat());
    // Non-root, one task per node: the manager sees its own.
    swarm.create_service("plain", &["--mode", "global", "--user", "1000:1000", &busybox, "sleep", "1000000"]);
    swarm.wait_running_tasks("rooted", 2);
    swarm.wait_running_tasks("plain", 3);

    let (code, out, err) = swarm.unroot(&["audit", "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let services = report["services"].as_array().expect("services listed");
    let by_name = |n: &str| services.iter().find(|s| s["name"] == n).unwrap_or_else(|| panic!("{n} in {out}")).clone();

    let rooted = by_name("rooted");
    assert_eq!(rooted["class"], "root");
    assert_eq!(rooted["mode"], "replicated");
    assert_eq!(rooted["replicas"], 2);
    assert_eq!(rooted["configured_uid"], 0, "busybox has no USER: its tasks start as root");
    assert_eq!((rooted["tasks_running"].as_u64(), rooted["tasks_seen"].as_u64()), (Some(2), Some(0)));
    assert!(rooted["flags"].as_array().unwrap().iter().any(|f| f == "tasks-on-other-nodes:2"), "{rooted}");

    let plain = by_name("plain");
    assert_eq!(plain["class"], "non-root");
    assert_eq!(plain["mode"], "global");
    assert_eq!(plain["configured_user"], "1000:1000");
    assert_eq!((plain["tasks_running"].as_u64(), plain["tasks_seen"].as_u64()), (Some(3), Some(1)));
    assert_eq!(plain["process_uids"], serde_json::json!([1000]), "the manager's own task runs as 1000");

    // The root service fails the gate; a filter on the other one passes it.
    let (code, out, _) = swarm.unroot(&["audit", "--fail-on-root"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("2 Swarm services: 1 root"), "{out}");
    let (code, out, _) = swarm.unroot(&["audit", "--fail-on-root", "--filter", "name=plain"]);
    assert_eq!(code, Some(0), "{out}");

    // A documented exception: the service and its task container on the manager are the
    // plan's exception, and a missing control still fails the gate.
    let dir = env.tempdir();
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        "[rollout]\nname = \"a\"\n[service.rooted]\nday = 1\nkeep_root = \"needs raw sockets\"\ncap_drop = [\"ALL\"]\n\
         [service.plain]\nday = 1\nkeep_root = \"documented\"\n",
    )
    .unwrap();
    let (code, out, err) = swarm.unroot(&["audit", "--json", "--fail-on-root", "--plan", plan.to_str().unwrap()]);
    assert_eq!(code, Some(1), "the exception lacks its control: {out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let rooted = report["services"].as_array().unwrap().iter().find(|s| s["name"] == "rooted").unwrap().clone();
    assert_eq!(rooted["class"], "exception");
    assert_eq!(rooted["exception"], "needs raw sockets");
    assert!(rooted["flags"].as_array().unwrap().iter().any(|f| f == "control-missing:cap_drop=ALL"), "{rooted}");
    // The manager's own task of `plain` is a container too: the plan's exception by its service.
    let task =
        report["containers"].as_array().unwrap().iter().find(|c| c["name"].as_str().unwrap().starts_with("plain."));
    assert_eq!(task.expect("plain's task on the manager")["class"], "exception", "{out}");
}

#[test]
fn plan_previews_services_per_node_with_the_spec_they_get() {
    let env = TestEnv::new("swarm-plan");
    let swarm = Swarm::start(&env, 2);
    let busybox = image("busybox");
    swarm.load_image(&busybox);
    swarm.create_service("db", &[&ON_WORKERS[..], &DATA[..], &[&busybox, "sleep", "1000000"]].concat());
    swarm.create_service("web", &["--mode", "global", &busybox, "sleep", "1000000"]);
    swarm.wait_running_tasks("db", 2);
    swarm.wait_running_tasks("web", 3);
    let version = |name: &str| swarm.manager().docker(&["service", "inspect", "-f", "{{.Version.Index}}", name]);
    let (db_version, web_version) = (version("db"), version("web"));

    let dir = env.tempdir();
    std::fs::write(
        dir.path().join("plan.toml"),
        "[rollout]\nname = \"swarm\"\n[service.db]\nday = 1\nuser = \"999:999\"\n\
         [service.web]\nday = 1\nswarm = true\nuser = \"1000:1000\"\nenv = { TOKEN = \"never-printed-7\" }\n",
    )
    .unwrap();
    let plan = dir.path().join("plan.toml");
    let plan = plan.to_str().unwrap();
    let (code, out, err) = swarm.unroot(&["plan", plan, "--day", "1", "--json"]);
    assert_eq!(code, Some(0), "ready: {out}{err}");
    assert!(!out.contains("never-printed-7") && !err.contains("never-printed-7"), "{out}");
    let day: Value = serde_json::from_str(&out).unwrap();
    let services = day["services"].as_array().expect("the day's services");
    let db = services.iter().find(|s| s["name"] == "db").expect("db, found by name");
    assert_eq!(db["kind"], "service", "{db}");
    assert_eq!(db["blockers"], serde_json::json!([]), "{db}");
    assert_eq!((db["mode"].as_str(), db["replicas"].as_u64()), (Some("replicated"), Some(2)));
    let nodes: Vec<&str> = db["nodes"].as_array().unwrap().iter().map(|n| n["hostname"].as_str().unwrap()).collect();
    assert_eq!(nodes, ["worker-1", "worker-2"], "{db}");
    for n in db["nodes"].as_array().unwrap() {
        assert_eq!(n["mounts"], serde_json::json!(["volume data -> /data"]), "{n}");
        assert_eq!(n["tasks"], 1);
    }
    assert!(
        db["spec_changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "TaskTemplate.ContainerSpec.User: (unset) -> \"999:999\""),
        "{db}"
    );
    let web = services.iter().find(|s| s["name"] == "web").unwrap();
    assert_eq!(web["mode"], "global");
    assert_eq!(web["nodes"].as_array().unwrap().len(), 3);
    assert!(web["spec_changes"].as_array().unwrap().iter().any(|c| c.as_str().unwrap().contains("sets TOKEN")));

    // The human preview says the same, and changes nothing.
    let (code, out, err) = swarm.unroot(&["plan", plan, "--day", "1"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(!out.contains("never-printed-7") && !err.contains("never-printed-7"), "{out}");
    assert!(out.contains("~ db (Swarm service, replicated, 2 replica(s))"), "{out}");
    assert!(out.contains("node:   worker-1 (ready, 1 task(s) now): volume data -> /data"), "{out}");
    assert_eq!((version("db"), version("web")), (db_version, web_version), "neither service was updated");
}

#[test]
fn a_name_both_a_container_and_a_service_hold_must_say_which() {
    let env = TestEnv::new("swarm-both");
    let swarm = Swarm::start(&env, 0);
    let busybox = image("busybox");
    swarm.load_image(&busybox);
    swarm.create_service("both", &[&busybox, "sleep", "1000000"]);
    swarm.wait_running_tasks("both", 1);
    swarm.manager().docker(&["run", "-d", "--name", "both", &busybox, "sleep", "1000000"]);
    let dir = env.tempdir();
    let plan = dir.path().join("plan.toml");
    std::fs::write(&plan, "[rollout]\nname = \"both\"\n[service.both]\nday = 1\nuser = \"1000\"\n").unwrap();
    let (code, out, _) = swarm.unroot(&["plan", plan.to_str().unwrap(), "--day", "1"]);
    assert_eq!(code, Some(1), "a blocker: {out}");
    assert!(out.contains("both a container and a Swarm service are called both"), "{out}");

    std::fs::write(&plan, "[rollout]\nname = \"both\"\n[service.both]\nday = 1\nuser = \"1000\"\nswarm = true\n")
        .unwrap();
    let (_, out, _) = swarm.unroot(&["plan", plan.to_str().unwrap(), "--day", "1"]);
    assert!(out.contains("both (Swarm service, replicated, 1 replica(s))"), "{out}");
    assert!(!out.contains("both a container and a Swarm service are called"), "{out}");
}

/// A connection to the swarm's manager, for the engine's own calls.
fn manager_port(swarm: &Swarm, rt: &tokio::runtime::Runtime) -> unroot::docker::BollardDocker {
    let endpoint = unroot::docker::endpoint::Endpoint {
        host: swarm.manager().host(),
        tls: None,
        origin: unroot::docker::endpoint::Origin::DockerHost,
    };
    rt.block_on(unroot::docker::BollardDocker::connect_to(endpoint)).expect("the manager answers")
}

#[test]
fn scan_apply_and_restore_jobs_work_on_each_nodes_own_copy_and_leave_nothing() {
    use unroot::docker::swarm::SwarmPort;
    use unroot::model::owner::Owner;

    let env = TestEnv::new("swarm-scan");
    let swarm = Swarm::start(&env, 2);
    let busybox = image("busybox");
    swarm.load_image(&busybox);
    // Each worker's `data` volume: files of root, and on one of them a file of 123 too.
    let script = "mkdir -p /data/d; echo x > /data/d/f; [ \"$(hostname)\" != worker-1 ] || { echo y > /data/g; chown 123:123 /data/g; }; sleep 1000000";
    let hostname = ["--hostname", "{{.Node.Hostname}}"];
    swarm.create_service("db", &[&ON_WORKERS[..], &DATA[..], &hostname[..], &[&busybox, "sh", "-c", script]].concat());
    swarm.wait_running_tasks("db", 2);
    swarm.manager().docker(&["service", "scale", "--detach", "db=0"]);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let port = manager_port(&swarm, &rt);
    let workers: Vec<String> = swarm.workers().iter().map(|w| swarm.node_id(w).to_string()).collect();
    let (mount, constraints) = data_on_workers();
    let target = Owner::new(999, 999);
    let scan_name = unroot::engine::swarm::jobs::job_name("scan", "db", "run-1", 0);
    let apply_name = unroot::engine::swarm::jobs::job_name("apply", "db", "run-1", 0);
    let site = |name| unroot::engine::swarm::jobs::JobSite {
        name,
        run: "run-1",
        image: &busybox,
        mount: &mount,
        constraints: &constraints,
        timeout: std::time::Duration::from_secs(90),
    };
    let scans = rt
        .block_on(unroot::engine::swarm::jobs::scan(&port, &site(&scan_name), &workers, target, false))
        .expect("the scan job ran on every worker");
    assert_eq!(scans.keys().cloned().collect::<Vec<_>>(), {
        let mut w = workers.clone();
        w.sort();
        w
    });
    let w1 = swarm.node_id(&swarm.workers()[0]);
    let w2 = swarm.node_id(&swarm.workers()[1]);
    let on_w1 = &scans[w1].as_ref().expect("scanned on worker-1").changes;
    let on_w2 = &scans[w2].as_ref().expect("scanned on worker-2").changes;
    let paths = |c: &unroot::model::owner::MountChanges| {
        let mut p: Vec<String> = c.entries.iter().map(|(p, o)| format!("{o} {p}")).collect();
        p.sort();
        p
    };
    assert_eq!(paths(on_w1), ["0:0 ./d", "0:0 ./d/f", "123:123 ./g"], "worker-1's own copy");
    assert_eq!(paths(on_w2), ["0:0 ./d", "0:0 ./d/f"], "worker-2's own copy");
    assert_eq!(on_w1.root, Some(Owner::new(0, 0)));
    // The scan changed nothing; the job is gone.
    assert!(owners_on(&swarm.workers()[0], "data").contains(&"123:123 ./g".to_string()));
    let services = rt.block_on(port.list_services()).unwrap();
    assert_eq!(services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["db"], "only the user's service is left");

    // The apply job changes each node's copy as its manifest says.
    let manifests: std::collections::BTreeMap<String, Vec<u8>> =
        scans.iter().map(|(n, r)| (n.clone(), r.as_ref().unwrap().manifest.clone())).collect();
    let apply = |manifests: &std::collections::BTreeMap<String, Vec<u8>>| {
        rt.block_on(unroot::engine::swarm::jobs::apply(&port, &site(&apply_name), manifests, target, false))
    };
    let applied = apply(&manifests);
    assert!(applied.values().all(|r| r.is_ok()), "{applied:?}");
    for worker in swarm.workers() {
        let owners = owners_on(worker, "data");
        assert!(!owners.is_empty() && owners.iter().all(|o| o.starts_with("999:999 ")), "{}: {owners:?}", worker.name);
    }
    // Applying again (a retry after a crash) finds every entry at the target: harmless.
    let again = apply(&manifests);
    assert!(again.values().all(|r| r.is_ok()), "{again:?}");
    // A file that appeared since the manifest was saved: that node refuses and is not
    // touched; the other node's result stands.
    let w1_node = &swarm.workers()[0];
    let mountpoint = w1_node.docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", "data"]);
    crate::common::docker(&[
        "exec",
        &w1_node.name,
        "sh",
        "-c",
        &format!("touch {mountpoint}/new && chown 0:0 {mountpoint}/new"),
    ]);
    let changed = apply(&manifests);
    assert!(changed[w1].as_ref().is_err_and(|e| e.contains("changed since its manifest")), "{changed:?}");
    assert_eq!(changed[w2], Ok(()), "{changed:?}");
    assert!(owners_on(w1_node, "data").contains(&"0:0 ./new".to_string()), "the refusing node is untouched");
    crate::common::docker(&["exec", &w1_node.name, "rm", &format!("{mountpoint}/new")]);

    // The restore job gives each node's copy its own owners back, twice harmlessly.
    let restore_name = unroot::engine::swarm::jobs::job_name("restore", "db", "run-1", 0);
    for _ in 0..2 {
        let restored = rt.block_on(unroot::engine::swarm::jobs::restore(&port, &site(&restore_name), &manifests));
        assert!(restored.values().all(|r| r == &Ok(0)), "{restored:?}");
    }
    let worker_1 = owners_on(&swarm.workers()[0], "data");
    assert_eq!(
        worker_1,
        [".", "./d", "./d/f", "./g"].map(|p| format!("{} {p}", if p == "./g" { "123:123" } else { "0:0" }))
    );
    assert!(owners_on(&swarm.workers()[1], "data").iter().all(|o| o.starts_with("0:0 ")));
    assert!(rt.block_on(port.list_services()).unwrap().iter().all(|s| s.name == "db"), "no job left behind");
    let configs = swarm.manager().docker(&["config", "ls", "-q"]);
    assert!(configs.is_empty(), "no config left behind: {configs}");
}

#[test]
fn verify_reports_services_by_their_spec_and_the_tasks_the_manager_sees() {
    let env = TestEnv::new("swarm-verify");
    let swarm = Swarm::start(&env, 0);
    let busybox = image("busybox");
    swarm.load_image(&busybox);
    swarm.create_service("moved", &["--user", "1000:1000", "--cap-drop", "ALL", &busybox, "sleep", "1000000"]);
    swarm.create_service("still", &[&busybox, "sleep", "1000000"]);
    swarm.wait_running_tasks("moved", 1);
    swarm.wait_running_tasks("still", 1);
    let dir = env.tempdir();
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        "[rollout]\nname = \"v\"\n[service.moved]\nday = 1\nuser = \"1000:1000\"\ncap_drop = [\"ALL\"]\n\
         [service.still]\nday = 1\nuser = \"1000:1000\"\ncap_drop = [\"NET_RAW\"]\n",
    )
    .unwrap();
    let (code, out, err) = swarm.unroot(&["verify", plan.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(1), "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let verdict = |n: &str| v["services"].as_array().unwrap().iter().find(|s| s["name"] == n).unwrap().clone();
    assert_eq!(verdict("moved")["ok"], true, "{out}");
    let still = verdict("still");
    assert_eq!(still["ok"], false);
    let problems: Vec<&str> = still["problems"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(problems.iter().any(|p| p.starts_with("configured user is \"\", planned 1000:1000")), "{problems:?}");
    // Named by its program alone: arguments may carry a secret given on the command line.
    assert!(problems.iter().any(|p| p.contains("runs sleep as 0")), "the manager's own task: {problems:?}");
    assert!(!problems.iter().any(|p| p.contains("1000000")), "no argument is shown: {problems:?}");
    assert!(problems.contains(&"cap_drop NET_RAW is not applied"), "{problems:?}");
}

#[test]
fn a_stack_service_gets_an_override_that_stack_deploy_keeps() {
    let env = TestEnv::new("swarm-stack");
    let swarm = Swarm::start(&env, 0);
    let busybox = image("busybox");
    swarm.load_image(&busybox);
    let dir = env.tempdir();
    let base = dir.path().join("docker-compose.yml");
    std::fs::write(
        &base,
        format!(
            "version: \"3.8\"\nservices:\n  cache:\n    image: {busybox}\n    \
             command: [\"sh\", \"-c\", \"echo kept >> /data/log && exec sleep 1000000\"]\n    \
             stop_grace_period: 1s\n    volumes: [\"cachedata:/data\"]\nvolumes:\n  cachedata: {{}}\n"
        ),
    )
    .unwrap();
    let base = base.to_str().unwrap();
    let deploy = |files: &[&str]| {
        let mut args = vec!["stack", "deploy", "--resolve-image", "never"];
        for f in files {
            args.extend(["-c", f]);
        }
        args.push("shop");
        swarm.manager().docker(&args);
    };
    deploy(&[base]);
    swarm.wait_running_tasks("shop_cache", 1);

    std::fs::write(
        dir.path().join("plan.toml"),
        "[rollout]\nname = \"stack\"\n[service.shop_cache]\nday = 1\nuser = \"1000:1000\"\n\
         stable_for = \"1s\"\nhealth_timeout = \"60s\"\n",
    )
    .unwrap();
    let plan = dir.path().join("plan.toml");
    let state = dir.path().join("state");
    let (code, out, err) =
        swarm.unroot(&["apply", plan.to_str().unwrap(), "--day", "1", "--yes", "--state-dir", state.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    let user = || {
        swarm.manager().docker(&["service", "inspect", "-f", "{{.Spec.TaskTemplate.ContainerSpec.User}}", "shop_cache"])
    };
    assert_eq!(user(), "1000:1000");

    // The override is in the plan's stacks folder, private, and its use is printed.
    let path = state.join("stack/stacks/shop.docker-compose.unroot.yml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.contains("services:\n  \"cache\":\n    user: \"1000:1000\"\n"), "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let usage = format!("docker stack deploy -c docker-compose.yml -c {} shop", path.display());
    assert!(out.contains(&usage) || err.contains(&usage), "{out}{err}");

    // Deploying the stack again with the override keeps the user; its task runs as 1000
    // with the data from before.
    deploy(&[base, path.to_str().unwrap()]);
    assert_eq!(user(), "1000:1000");
    swarm.wait_running_tasks("shop_cache", 1);
    assert!(owners_on(swarm.manager(), "shop_cachedata").iter().all(|o| o.starts_with("1000:1000 ")));

    // Rolled back, the service is root's again and the stack's override is gone.
    let runs: Vec<_> = std::fs::read_dir(state.join("stack/runs")).unwrap().flatten().collect();
    let run = runs[0].file_name().to_str().unwrap().to_string();
    let (code, out, err) = swarm.unroot(&["rollback", &run, "--state-dir", state.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(user(), "");
    assert!(!path.exists(), "the override of a stack with nothing migrated is removed");
    assert!(owners_on(swarm.manager(), "shop_cachedata").iter().all(|o| o.starts_with("0:0 ")));
}

#[test]
fn the_preview_names_each_node_without_the_image_or_the_bind_source() {
    let env = TestEnv::new("swarm-check");
    let swarm = Swarm::start(&env, 2);
    let busybox = image("busybox");
    swarm.load_image(&busybox);
    // `only-here` is an image the manager alone has; /srv/shared is on the manager and
    // worker-1, not on worker-2.
    swarm.manager().docker(&["tag", &busybox, "only-here:1"]);
    for node in &swarm.nodes()[..2] {
        crate::common::docker(&["exec", &node.name, "mkdir", "-p", "/srv/shared"]);
    }
    swarm.create_service("img", &["only-here:1", "sleep", "1000000"]);
    // `workers-only` is on the workers alone: its users are read there, by a job.
    for node in swarm.workers() {
        node.docker(&["tag", &busybox, "workers-only:1"]);
    }
    swarm.create_service("wrk", &["--constraint", "node.role==worker", "workers-only:1", "sleep", "1000000"]);
    let bind = ["--mount", "type=bind,source=/srv/shared,target=/data"];
    swarm.create_service("bnd", &[&bind[..], &[&busybox, "sleep", "1000000"]].concat());
    // /srv/link is a directory on the manager and worker-2, and on worker-1 a symlink to /etc:
    // only there is re-owning it re-owning the node's /etc.
    for node in swarm.nodes() {
        let make = if node.name.ends_with("worker-1") { "ln -s /etc /srv/link" } else { "mkdir -p /srv/link" };
        crate::common::docker(&["exec", &node.name, "sh", "-c", &format!("mkdir -p /srv && {make}")]);
    }
    let link = ["--mount", "type=bind,source=/srv/link,target=/data"];
    swarm.create_service("lnk", &[&link[..], &[&busybox, "sleep", "1000000"]].concat());
    swarm.wait_running_tasks("img", 1);
    swarm.wait_running_tasks("bnd", 1);
    swarm.wait_running_tasks("wrk", 1);
    swarm.wait_running_tasks("lnk", 1);

    let dir = env.tempdir();
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        "[rollout]\nname = \"check\"\n[service.img]\nday = 1\nuser = \"1000:1000\"\n\
         [service.bnd]\nday = 1\nuser = \"1000:1000\"\n[service.wrk]\nday = 1\nuser = \"app\"\n\
         [service.lnk]\nday = 1\nuser = \"1000:1000\"\n",
    )
    .unwrap();
    let (code, out, err) = swarm.unroot(&["plan", plan.to_str().unwrap(), "--day", "1", "--json"]);
    assert_eq!(code, Some(1), "blocked: {out}{err}");
    let day: Value = serde_json::from_str(&out).unwrap();
    let blockers = |name: &str| -> Vec<String> {
        let s = day["services"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap();
        s["blockers"].as_array().unwrap().iter().map(|b| b.as_str().unwrap().to_string()).collect()
    };
    let img = blockers("img");
    assert_eq!(img.len(), 2, "{img:?}");
    for (b, host) in img.iter().zip(["worker-1", "worker-2"]) {
        assert!(b.starts_with(&format!("node {host} (")) && b.contains("does not have the image only-here:1"), "{b}");
    }
    let bnd = blockers("bnd");
    assert_eq!(bnd.len(), 1, "{bnd:?}");
    assert!(bnd[0].starts_with("node worker-2 (") && bnd[0].contains("/srv/shared"), "{bnd:?}");
    // The bind that is /etc on worker-1 is blocked there, resolved in that node's own root.
    let lnk = blockers("lnk");
    assert_eq!(lnk.len(), 1, "{lnk:?}");
    assert!(lnk[0].starts_with("node worker-1 (") && lnk[0].contains("bind mount /srv/link is /etc there"), "{lnk:?}");
    // `app` was read in the image on a worker (the manager does not have it): 1000:1000.
    let wrk = day["services"].as_array().unwrap().iter().find(|s| s["name"] == "wrk").unwrap();
    assert_eq!(wrk["blockers"], serde_json::json!([]), "{wrk}");
    assert_eq!(wrk["user"]["to"], "app (1000:1000)", "{wrk}");
    // The check left no job behind, and the services were not touched.
    let mut services: Vec<String> =
        swarm.manager().docker(&["service", "ls", "--format", "{{.Name}}"]).lines().map(str::to_string).collect();
    services.sort();
    assert_eq!(services, ["bnd", "img", "lnk", "wrk"]);
}
