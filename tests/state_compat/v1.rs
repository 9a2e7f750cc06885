//! The state-v1 fixture (tests/fixtures/state-v1, see its README): a state directory as
//! unroot wrote it at commit f84592b, killed after the chown step of a container's day and
//! of a Swarm service's day. What its placeholders stand for and what its services ran.

use std::path::Path;

use crate::common::{TestEnv, docker, docker_raw, image};

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
