//! The state-v1 fixture (tests/fixtures/state-v1, see its README): a state directory as
//! unroot wrote it at commit f84592b, killed after the chown step of a container's day and
//! of a Swarm service's day. What its placeholders stand for, what its services ran, and
//! how to put the shared daemon back into the state Docker was in at the crash.

use std::path::{Path, PathBuf};

use crate::common::{TestEnv, docker, docker_raw, image, in_volume, inspect, repo_path};

/// The fixture's folder in the repository.
pub const FIXTURE: &str = "tests/fixtures/state-v1";

/// What the container and the Swarm service ran: data written as root, then a long sleep.
pub const SCRIPT: &str = "echo kept > /data/f; mkdir -p /data/d; echo x > /data/d/g; exec sleep 1000000";

/// The plan folders of the fixture's state directory.
pub const CONTAINER_PLAN: &str = "compat";
pub const SWARM_PLAN: &str = "compat-swarm";

/// Copies the tree `from` to `to`, replacing every `(from, to)` pair, in order, in the text
/// of each file and in each file and folder name.
pub fn copy_replacing(from: &Path, to: &Path, pairs: &[(String, String)]) {
    let replace = |s: &str| pairs.iter().fold(s.to_string(), |s, (a, b)| s.replace(a.as_str(), b));
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(replace(&e.file_name().to_string_lossy()));
        if e.file_type().unwrap().is_dir() {
            copy_replacing(&e.path(), &target, pairs);
        } else {
            std::fs::write(&target, replace(&std::fs::read_to_string(e.path()).unwrap())).unwrap();
        }
    }
}

/// The runs of plan folder `plan` in a state directory, oldest first.
pub fn runs_of(state: &Path, plan: &str) -> Vec<String> {
    let mut runs: Vec<String> = std::fs::read_dir(state.join(plan).join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    runs.sort();
    runs
}

/// The sha256 of a text, in hex (as a journal header records its plan's).
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// The fixture filled in for one test, with the shared daemon as it was at the crash.
pub struct AtCrash {
    pub dir: tempfile::TempDir,
    /// The state directory (`DIR/state`); the plan of the container runs is `DIR/plan.toml`.
    pub state: PathBuf,
    /// The service container's name, and the volume it keeps its data in.
    pub svc: String,
    pub volume: String,
    /// The committed day-1 run, the interrupted day-2 run (containers) and the interrupted
    /// Swarm run.
    pub day1_run: String,
    pub run: String,
    pub swarm_run: String,
}

/// The day-2 service container as the generator started it: `SCRIPT` as root with `--init`
/// and its volume on /data; returns its name once the data is written.
pub fn start_service(env: &TestEnv, volume: &str) -> String {
    docker(&["volume", "create", "--label", &env.label(), volume]);
    let mount = format!("{volume}:/data");
    let svc = env.run("svc", &["--init", "-v", &mount, &image("busybox"), "sh", "-c", SCRIPT]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !docker_raw(&["exec", &svc, "test", "-f", "/data/d/g"]).status.success() {
        assert!(std::time::Instant::now() < deadline, "{svc} never wrote its data");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    svc
}

/// Starts the service container, puts it where the generator's apply left its own when it
/// was killed (stopped, restart policy `no`, renamed `NAME.unroot-RUN`, its volume owned by
/// 1000:1000), and fills the fixture in for it: names, ids and host paths of this test.
pub fn at_crash(env: &TestEnv) -> AtCrash {
    let fixture_state = repo_path(FIXTURE).join("state");
    let runs = runs_of(&fixture_state, CONTAINER_PLAN);
    let (day1_run, run) = (runs[0].clone(), runs[1].clone());
    let swarm_run = runs_of(&fixture_state, SWARM_PLAN).remove(0);
    let volume = env.name("data");
    let svc = start_service(env, &volume);
    docker(&["stop", &svc]);
    docker(&["update", "--restart=no", &svc]);
    docker(&["rename", &svc, &format!("{svc}.unroot-{run}")]);
    in_volume(env, &format!("{volume}:/d"), "chown -R 1000:1000 /d");

    let c = inspect(&format!("{svc}.unroot-{run}"));
    let id = c["Id"].as_str().unwrap().to_string();
    let busybox = image("busybox");
    let image_id = inspect(&busybox)["Id"].as_str().unwrap().to_string();
    let volpath = docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &volume]);
    let dir = env.tempdir();
    let mut pairs: Vec<(String, String)> = [
        ("@DIR@", dir.path().to_str().unwrap()),
        ("@TEST@", env.id.as_str()),
        ("@ID@", id.as_str()),
        ("@ID12@", &id[..12]),
        ("@IMAGE@", busybox.as_str()),
        ("@IMAGE_ID@", image_id.as_str()),
        ("@VOLPATH@", volpath.as_str()),
        // The Swarm run is not resumed against this daemon; its ids only need a value.
        ("@NODE@", "n1"),
        ("@SERVICE_ID@", "svc1"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    // Each header holds the sha256 of its plan as given: the plan filled in.
    for (placeholder, plan, run) in
        [("@PLAN_SHA256@", CONTAINER_PLAN, &run), ("@SWARM_PLAN_SHA256@", SWARM_PLAN, &swarm_run)]
    {
        let text = std::fs::read_to_string(fixture_state.join(plan).join("runs").join(run).join("plan.toml")).unwrap();
        let filled = pairs.iter().fold(text, |s, (a, b)| s.replace(a.as_str(), b));
        pairs.push((placeholder.to_string(), sha256_hex(&filled)));
    }
    let state = dir.path().join("state");
    copy_replacing(&fixture_state, &state, &pairs);
    let plan = state.join(CONTAINER_PLAN).join("runs").join(&run).join("plan.toml");
    std::fs::copy(plan, dir.path().join("plan.toml")).unwrap();
    AtCrash { dir, state, svc, volume, day1_run, run, swarm_run }
}
