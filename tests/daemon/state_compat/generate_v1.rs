//! Writes tests/fixtures/state-v1 again (ignored: run it by hand, as the fixture's README
//! says, at the commit it names: the fixture stands for what that version wrote).
//!
//! Containers on the shared daemon: plan `compat` migrates `@TEST@-old` on day 1 (committed)
//! and `@TEST@-svc` on day 2, killed right after its chown step ended. Swarm on a one-node
//! Docker-in-Docker swarm: plan `compat-swarm` migrates service `web` on day 1, killed right
//! after its chown step ended. The state directory is kept as unroot wrote it, with
//! placeholders for what each test fills in; `at-crash/` holds what Docker showed then.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use super::v1::{CONTAINER_PLAN, FIXTURE, SCRIPT, SWARM_PLAN, copy_replacing, runs_of, sha256_hex, start_service};
use crate::common::swarm::Swarm;
use crate::common::{TestEnv, docker, image, inspect, repo_path, unroot_in};

/// Journal writes up to the end of the chown step: the header, the run's start, then the
/// start and end of inspect, stop, rename (containers only) and chown.
const CONTAINER_CHOWN_DONE: usize = 10;
const SWARM_CHOWN_DONE: usize = 8;

/// Runs `unroot apply PLAN --day N --yes --state-dir state` in `dir`, killed after journal
/// write `k`; asserts it was killed and the last record is the end of the chown step.
fn apply_killed(dir: &Path, plan: &str, day: &str, k: usize, docker_host: Option<String>) {
    let mut cmd = crate::common::unroot();
    if let Some(host) = docker_host {
        cmd.env("DOCKER_HOST", host).env_remove("DOCKER_CONTEXT");
    }
    let out = cmd
        .current_dir(dir)
        .env("UNROOT_CRASH_AFTER_WRITE", k.to_string())
        .args(["apply", plan, "--day", day, "--yes", "--state-dir", "state"])
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "not killed: {}", String::from_utf8_lossy(&out.stderr));
    let name = std::fs::read_to_string(dir.join(plan)).unwrap();
    let name = name.lines().find_map(|l| l.strip_prefix("name = ")).unwrap().trim_matches('"').to_string();
    let runs = runs_of(&dir.join("state"), &name);
    let journal = std::fs::read_to_string(
        dir.join("state").join(&name).join("runs").join(runs.last().unwrap()).join("journal.jsonl"),
    )
    .unwrap();
    let last: serde_json::Value = serde_json::from_str(journal.lines().last().unwrap()).unwrap();
    assert_eq!((&last["step"], &last["ok"]), (&"chown".into(), &true.into()), "{journal}");
}

/// `GET PATH` of the Engine API at `tcp://IP:PORT`, as unroot reads it. Not `docker service
/// inspect`: the CLI asks the daemon to fill in its defaults (`insertDefaults`), which unroot
/// never sees.
fn api_get(host: &str, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(host.strip_prefix("tcp://").unwrap()).unwrap();
    write!(conn, "GET /v1.41{path} HTTP/1.0\r\nHost: docker\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap()
}

/// The container runs: day 1 committed, day 2 killed after its chown step. Returns the
/// pairs (value, placeholder) for what is volatile in them.
fn container_runs(env: &TestEnv, dir: &Path) -> Vec<(String, String)> {
    let busybox = image("busybox");
    let old = env.run("old", &["--init", &busybox, "sleep", "1000000"]);
    let volume = env.name("data");
    let svc = start_service(env, &volume);
    let plan = format!(
        "[rollout]\nname = \"{CONTAINER_PLAN}\"\nstable_for = \"1s\"\n\n\
         [service.{old}]\nday = 1\nuser = \"1000:1000\"\n\n[service.{svc}]\nday = 2\nuser = \"1000:1000\"\n"
    );
    std::fs::write(dir.join("plan.toml"), &plan).unwrap();
    let day1 = unroot_in(dir, &["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"]);
    assert_eq!(day1.code, Some(0), "{}{}", day1.stdout, day1.stderr);
    // A second apart: the runs of the state directory get ids of their own.
    std::thread::sleep(std::time::Duration::from_secs(1));
    apply_killed(dir, "plan.toml", "2", CONTAINER_CHOWN_DONE, None);
    let run = runs_of(&dir.join("state"), CONTAINER_PLAN).pop().unwrap();
    let parked = inspect(&format!("{svc}.unroot-{run}"));
    let text = serde_json::to_string_pretty(&parked).unwrap() + "\n";
    std::fs::create_dir_all(dir.join("at-crash")).unwrap();
    std::fs::write(dir.join("at-crash/container.json"), text).unwrap();
    let id = parked["Id"].as_str().unwrap().to_string();
    let volpath = docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &volume]);
    let image_id = inspect(&busybox)["Id"].as_str().unwrap().to_string();
    vec![
        (volpath, "@VOLPATH@".into()),
        (id.clone(), "@ID@".into()),
        (id[..12].to_string(), "@ID12@".into()),
        (image_id, "@IMAGE_ID@".into()),
        (busybox, "@IMAGE@".into()),
        (sha256_hex(&plan), "@PLAN_SHA256@".into()),
    ]
}

/// The Swarm run: service `web` (one replica, volume `web-data`) on a one-node swarm, its
/// day killed after its chown step. Returns the pairs (value, placeholder) for what is
/// volatile in it, and the swarm.
fn swarm_run(env: &TestEnv, dir: &Path) -> (Swarm, Vec<(String, String)>) {
    let busybox = image("busybox");
    let swarm = Swarm::start(env, 0);
    swarm.load_image(&busybox);
    let mount = "type=volume,source=web-data,target=/data";
    swarm.create_service("web", &["--stop-grace-period", "1s", "--mount", mount, &busybox, "sh", "-c", SCRIPT]);
    swarm.wait_running_tasks("web", 1);
    let plan = format!(
        "[rollout]\nname = \"{SWARM_PLAN}\"\nstable_for = \"1s\"\n\n[service.web]\nday = 1\nswarm = true\nuser = \"1000:1000\"\n"
    );
    std::fs::write(dir.join("swarm.toml"), &plan).unwrap();
    apply_killed(dir, "swarm.toml", "1", SWARM_CHOWN_DONE, Some(swarm.manager().host()));
    let services = swarm.manager().docker(&["service", "ls", "--format", "{{.Name}}"]);
    assert_eq!(services, "web", "no helper job is left at the crash");
    let service = api_get(&swarm.manager().host(), "/services/web");
    let text = serde_json::to_string_pretty(&service).unwrap() + "\n";
    std::fs::write(dir.join("at-crash/swarm-service.json"), text).unwrap();
    let node = swarm.node_id(swarm.manager()).to_string();
    let id = service["ID"].as_str().unwrap().to_string();
    let pairs = vec![
        (node, "@NODE@".into()),
        (id.clone(), "@SERVICE_ID@".into()),
        (id[..12].to_string(), "@SERVICE_ID12@".into()),
        (sha256_hex(&plan), "@SWARM_PLAN_SHA256@".into()),
    ];
    (swarm, pairs)
}

/// What was written is a state `resume` finishes on the daemons it was written against:
/// both runs end migrated (the tests check the same of the fixture, the Swarm run against
/// the fake manager).
fn resumes_for_real(env: &TestEnv, dir: &Path, swarm: &Swarm) {
    let [run, swarm_run] = [CONTAINER_PLAN, SWARM_PLAN].map(|p| runs_of(&dir.join("state"), p).pop().unwrap());
    let resumed = unroot_in(dir, &["resume", &run, "--state-dir", "state"]);
    assert_eq!(resumed.code, Some(0), "{}{}", resumed.stdout, resumed.stderr);
    assert_eq!(inspect(&env.name("svc"))["Config"]["User"], "1000:1000");
    let (code, out, err) = swarm.unroot(&["resume", &swarm_run, "--state-dir", dir.join("state").to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    let user =
        swarm.manager().docker(&["service", "inspect", "-f", "{{.Spec.TaskTemplate.ContainerSpec.User}}", "web"]);
    assert_eq!(user, "1000:1000");
    swarm.wait_running_tasks("web", 1);
    let owners = crate::common::swarm::owners_on(swarm.manager(), "web-data");
    assert!(owners.len() == 4 && owners.iter().all(|o| o.starts_with("1000:1000 ")), "{owners:?}");
}

#[test]
#[ignore = "writes tests/fixtures/state-v1 anew; run by hand (see its README)"]
fn generate_state_v1() {
    let env = TestEnv::new("gen");
    let dir = env.tempdir();
    let mut pairs = container_runs(&env, dir.path());
    let (swarm, swarm_pairs) = swarm_run(&env, dir.path());
    pairs.extend(swarm_pairs);
    pairs.push((dir.path().to_str().unwrap().to_string(), "@DIR@".into()));
    pairs.push((env.id.clone(), "@TEST@".into()));
    // The longest first: a value inside another (an id's short form, the test id in a
    // name) is replaced only where it stands alone.
    pairs.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
    let out = repo_path(FIXTURE);
    for sub in ["state", "at-crash"] {
        let _ = std::fs::remove_dir_all(out.join(sub));
        copy_replacing(&dir.path().join(sub), &out.join(sub), &pairs);
    }
    resumes_for_real(&env, dir.path(), &swarm);
}
