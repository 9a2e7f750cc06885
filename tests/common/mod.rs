//! Helpers for tests against the real daemon: fixture images, uniquely named resources
//! labelled `io.unroot.test=<id>`, and cleanup that runs on drop (so also on failure).
#![allow(dead_code)]

pub mod dind;
pub mod hardening;
pub mod official;
pub mod stack;
pub mod swarm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

pub const LABEL: &str = "io.unroot.test";

/// Runs the docker CLI; panics with its stderr when it fails.
pub fn docker(args: &[&str]) -> String {
    let out = docker_raw(args);
    assert!(out.status.success(), "docker {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs the docker CLI and returns whatever happened.
pub fn docker_raw(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("the docker CLI runs")
}

/// Fixture images by short name (`busybox`), built once per machine.
pub fn images() -> &'static HashMap<String, String> {
    static IMAGES: OnceLock<HashMap<String, String>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/build-images.sh");
        let out = Command::new("bash").arg(&script).output().expect("bash runs the fixture script");
        assert!(out.status.success(), "building fixture images failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect()
    })
}

pub fn image(name: &str) -> String {
    images().get(name).unwrap_or_else(|| panic!("no fixture image {name}")).clone()
}

/// A clean Debian 12 (bookworm) root filesystem: apt and ca-certificates, nothing else
/// (tests/fixtures/build-debian-base.sh), built once per machine.
pub fn debian_base() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let script = repo_path("tests/fixtures/build-debian-base.sh");
        let out = Command::new("bash").arg(&script).output().expect("bash runs the Debian base's script");
        assert!(out.status.success(), "building the Debian base failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("debian-base="))
            .expect("build-debian-base.sh prints debian-base=REF")
            .to_string()
    })
}

/// One test's resources on the shared daemon. Everything it creates carries its label and
/// a name prefix unique to this process and test; dropping it removes them.
pub struct TestEnv {
    pub id: String,
}

impl TestEnv {
    pub fn new(test: &str) -> TestEnv {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let id = format!(
            "ut-{test}-{}-{}-{:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            nanos & 0xfffff
        );
        TestEnv { id }
    }

    /// A unique name for a resource of this test.
    pub fn name(&self, short: &str) -> String {
        format!("{}-{short}", self.id)
    }

    pub fn label(&self) -> String {
        format!("{LABEL}={}", self.id)
    }

    /// `docker run -d` with this test's label and name; returns the container's name.
    pub fn run(&self, short: &str, args: &[&str]) -> String {
        let name = self.name(short);
        let label = self.label();
        let mut full = vec!["run", "-d", "--name", &name, "--label", &label];
        full.extend_from_slice(args);
        docker(&full);
        name
    }

    /// A temporary directory holding files for this test.
    pub fn tempdir(&self) -> tempfile::TempDir {
        tempfile::Builder::new().prefix(&self.id).tempdir().expect("a temp dir")
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let filter = format!("label={}", self.label());
        let ids = docker_raw(&["ps", "-aq", "--filter", &filter]);
        let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout).split_whitespace().map(str::to_string).collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids.iter().map(String::as_str));
            let _ = docker_raw(&args);
        }
        // Containers unroot made for this test's services (helpers, probes) carry the
        // service's name, which starts with this test's id.
        let named = docker_raw(&["ps", "-aq", "--filter", &format!("name={}", self.id)]);
        for id in String::from_utf8_lossy(&named.stdout).split_whitespace() {
            let _ = docker_raw(&["rm", "-f", "-v", id]);
        }
        for kind in ["volume", "network"] {
            let out = docker_raw(&[kind, "ls", "-q", "--filter", &filter]);
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = docker_raw(&[kind, "rm", id]);
            }
        }
    }
}

/// The unroot binary under test.
pub fn unroot() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("unroot").expect("the binary is built");
    cmd.env("NO_COLOR", "1");
    cmd
}

/// The unroot binary as a plain `std::process::Command` (for running it in the background).
pub fn unroot_cmd() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("unroot"));
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Path of a file in the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `docker inspect` of one object as JSON.
pub fn inspect(name: &str) -> serde_json::Value {
    let out = docker(&["inspect", name]);
    let mut v: serde_json::Value = serde_json::from_str(&out).expect("docker inspect prints JSON");
    v[0].take()
}

/// The distinct uids of a container's processes, ascending, from `docker top`.
pub fn process_uids(name: &str) -> Vec<u32> {
    let out = docker(&["top", name, "-o", "pid,uid"]);
    let mut uids: Vec<u32> = out.lines().skip(1).filter_map(|l| l.split_whitespace().nth(1)?.parse().ok()).collect();
    uids.sort_unstable();
    uids.dedup();
    uids
}

/// Runs `sh -c SCRIPT` in a throwaway busybox container with `mount` (`SOURCE:/d[:ro]`),
/// labelled as this test's; returns its stdout.
///
/// Not `--rm`: on a loaded machine fuse-overlayfs can fail to remove a finished container's
/// root filesystem ("directory not empty"), which `--rm` turns into a failed run although
/// the script ran. The removal is tried apart, a few times; a container it leaves is the
/// test's own (labelled) and goes with the `TestEnv`.
pub fn in_volume(env: &TestEnv, mount: &str, script: &str) -> String {
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let name = env.name(&format!("in-volume-{}", CALLS.fetch_add(1, Ordering::SeqCst)));
    let out = docker_raw(&[
        "run",
        "--name",
        &name,
        "--label",
        &env.label(),
        "-v",
        mount,
        &image("busybox"),
        "sh",
        "-c",
        script,
    ]);
    for _ in 0..5 {
        if docker_raw(&["rm", "-f", &name]).status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(out.status.success(), "sh -c {script} on {mount} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `uid:gid path` of every entry under a volume or host directory, sorted.
pub fn owners(env: &TestEnv, mount_source: &str) -> Vec<String> {
    let out = in_volume(env, &format!("{mount_source}:/d"), "find /d -exec stat -c '%u:%g %n' {} +");
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// `mode path` (octal, setuid and setgid bits included) of everything in a volume or bind
/// source, sorted.
pub fn modes(env: &TestEnv, mount_source: &str) -> Vec<String> {
    let out = in_volume(env, &format!("{mount_source}:/d"), "find /d -exec stat -c '%a %n' {} +");
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// A run of `unroot` with its exit code and output.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `unroot ARGS` in `dir`.
pub fn unroot_in(dir: &Path, args: &[&str]) -> Run {
    let out = unroot().current_dir(dir).args(args).output().expect("unroot runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Names of containers whose name holds `part`.
pub fn containers_named(part: &str) -> Vec<String> {
    let out = docker(&["ps", "-a", "--format", "{{.Names}}", "--filter", &format!("name={part}")]);
    out.lines().map(str::to_string).filter(|n| n.contains(part)).collect()
}

/// Waits until the Redis in `container` answers PING (it has just been started).
pub fn wait_for_redis(container: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = docker_raw(&["exec", container, "redis-cli", "ping"]);
        if String::from_utf8_lossy(&out.stdout).trim() == "PONG" {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "redis in {container} never answered");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The journal of the first run of `plan_name` under `state`, as text (empty before it
/// exists).
pub fn journal_text(state: &Path, plan_name: &str) -> String {
    std::fs::read_dir(state.join(plan_name).join("runs"))
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| std::fs::read_to_string(e.ok()?.path().join("journal.jsonl")).ok())
        .unwrap_or_default()
}

/// The records of a run's journal as JSON values.
pub fn journal_records(state: &Path, plan_name: &str) -> Vec<serde_json::Value> {
    journal_text(state, plan_name).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Starts `unroot ARGS` in `dir` in the background and returns once the journal of the
/// first run of `plan_name` under `dir/state` shows `step` started. The caller waits for
/// the child.
#[allow(clippy::zombie_processes)]
pub fn spawn_until_step(dir: &Path, args: &[&str], plan_name: &str, step: &str) -> std::process::Child {
    let mut child = unroot_cmd()
        .current_dir(dir)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let needle = format!("\"step\":\"{step}\"");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        if journal_text(&dir.join("state"), plan_name).contains(&needle) {
            return child;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("the {step} step never started: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Whether a container of that exact name exists.
pub fn exists(name: &str) -> bool {
    containers_named(name).iter().any(|n| n == name)
}

/// Runs `docker-compose -p PROJECT ARGS` in `dir`.
pub fn compose(dir: &Path, project: &str, args: &[&str]) -> Output {
    Command::new("docker-compose")
        .current_dir(dir)
        .arg("-p")
        .arg(project)
        .args(args)
        .output()
        .expect("docker-compose runs (.ci/run installs it)")
}

/// `docker-compose down -v` of a project when dropped (also when the test failed).
pub struct Down<'a>(pub &'a Path, pub String);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = compose(self.0, &self.1, &["down", "-v", "--remove-orphans"]);
    }
}
