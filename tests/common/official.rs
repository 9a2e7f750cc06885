//! Images that behave like the official Docker Hub images (postgres, redis, rabbitmq,
//! nginx), built once per machine by tests/fixtures/build-official-images.sh, and what a
//! test needs to wait for their servers and read who their processes run as.
//!
//! ```ignore
//! let env = TestEnv::new("pg");
//! let pg = env.run("pg", &["-e", "POSTGRES_PASSWORD=pw", &official_image("postgres")]);
//! wait_for_postgres(&pg);
//! assert!(top(&pg).iter().all(|p| p.uid == 999));
//! ```
use super::{docker, docker_raw};
use std::collections::HashMap;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a server of these images may take to answer after its container starts (a busy
/// 2-core machine, other tests beside).
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Every official-like image by name (`postgres`, `redis`, `rabbitmq`, `nginx`), built the
/// first time a test of this process asks.
pub fn official_images() -> &'static HashMap<String, String> {
    static IMAGES: OnceLock<HashMap<String, String>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let script = super::repo_path("tests/fixtures/build-official-images.sh");
        let out = Command::new("bash").arg(&script).output().expect("bash runs the official images' script");
        assert!(
            out.status.success(),
            "building the official-like images failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect()
    })
}

/// The reference of one official-like image.
pub fn official_image(name: &str) -> String {
    official_images().get(name).unwrap_or_else(|| panic!("no official-like image {name}")).clone()
}

/// One process of a container as `docker top NAME -o pid,uid,args` shows it.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: u32,
    pub uid: u32,
    pub args: String,
}

/// Every process of a running container, as `docker top` lists them.
pub fn top(name: &str) -> Vec<Proc> {
    let out = docker(&["top", name, "-o", "pid,uid,args"]);
    out.lines()
        .skip(1)
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            let pid = cols.next()?.parse().ok()?;
            let uid = cols.next()?.parse().ok()?;
            Some(Proc { pid, uid, args: cols.collect::<Vec<_>>().join(" ") })
        })
        .collect()
}

/// Asserts that every process of `name` runs as `uid`, and that there is at least one.
pub fn assert_all_at(name: &str, uid: u32) {
    let procs = top(name);
    assert!(!procs.is_empty(), "{name} has no process");
    let wrong: Vec<&Proc> = procs.iter().filter(|p| p.uid != uid).collect();
    assert!(wrong.is_empty(), "processes of {name} not at uid {uid}: {wrong:?}\nall: {procs:?}");
}

/// Calls `ready` until it is true; panics with `what` and the container's log after
/// `timeout`, or at once when the container stopped.
pub fn wait_until(name: &str, what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return;
        }
        let running = docker_raw(&["inspect", "-f", "{{.State.Running}}", name]);
        let stopped = String::from_utf8_lossy(&running.stdout).trim() == "false";
        if stopped || Instant::now() >= deadline {
            panic!(
                "{name}: {what} {}\nits log:\n{}",
                if stopped { "never happened: it stopped" } else { "timed out" },
                logs(name)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The container's log, stdout and stderr together (its last 200 lines).
pub fn logs(name: &str) -> String {
    let out = docker_raw(&["logs", "--tail", "200", name]);
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Whether `docker exec NAME ARGS...` exits 0.
pub fn exec_ok(name: &str, args: &[&str]) -> bool {
    let mut full = vec!["exec", name];
    full.extend_from_slice(args);
    docker_raw(&full).status.success()
}

/// Waits until the postgres of `name` accepts connections over TCP: the server for good, not
/// the socket-only one the entrypoint runs while it initialises.
pub fn wait_for_postgres(name: &str) {
    wait_until(name, "postgres accepting TCP connections", START_TIMEOUT, || {
        exec_ok(name, &["pg_isready", "-q", "-h", "127.0.0.1", "-U", "postgres"])
    });
}

/// `psql -U postgres` in `name` over its socket: the rows of `sql`, unaligned, without headers.
pub fn psql(name: &str, sql: &str) -> String {
    docker(&["exec", name, "psql", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-tAc", sql])
}

/// Waits until the redis of `name` answers PING with PONG.
pub fn wait_for_redis_pong(name: &str) {
    wait_until(name, "redis answering PONG", START_TIMEOUT, || {
        let out = docker_raw(&["exec", name, "redis-cli", "ping"]);
        String::from_utf8_lossy(&out.stdout).trim() == "PONG"
    });
}

/// Waits until the RabbitMQ node of `name` has booted (its log says so) and its CLI finds it
/// running. The CLI is not run before the log line: as root it would create a cookie the
/// node, once it dropped to its user, could not read.
pub fn wait_for_rabbitmq(name: &str) {
    wait_until(name, "rabbitmq's startup", START_TIMEOUT, || {
        let out = docker_raw(&["logs", name]);
        String::from_utf8_lossy(&out.stdout).contains("Server startup complete")
            || String::from_utf8_lossy(&out.stderr).contains("Server startup complete")
    });
    wait_until(name, "rabbitmq-diagnostics check_running", START_TIMEOUT, || {
        exec_ok(name, &["rabbitmq-diagnostics", "-q", "check_running"])
    });
}

/// `rabbitmqctl -q ARGS` in `name`; its output.
pub fn rabbitmqctl(name: &str, args: &[&str]) -> String {
    let mut full = vec!["exec", name, "rabbitmqctl", "-q"];
    full.extend_from_slice(args);
    docker(&full)
}

/// Waits until `name` has stopped; its exit code.
pub fn wait_for_exit(name: &str, timeout: Duration) -> i64 {
    let deadline = Instant::now() + timeout;
    loop {
        let out = docker(&["inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", name]);
        if let Some(code) = out.strip_prefix("false ") {
            return code.parse().expect("an exit code");
        }
        assert!(Instant::now() < deadline, "{name} still runs after {timeout:?}; its log:\n{}", logs(name));
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs the official-like redis with its AOF on, open to other containers, its data in
/// `volume`; `docker_args` come before the image (`--cap-drop`, …). Returns its name.
pub fn run_redis(env: &super::TestEnv, short: &str, volume: &str, docker_args: &[&str]) -> String {
    let mount = format!("{volume}:/data");
    let image = official_image("redis");
    let mut args: Vec<&str> = docker_args.to_vec();
    args.extend(["-v", &mount, &image, "redis-server", "--appendonly", "yes", "--protected-mode", "no"]);
    env.run(short, &args)
}

/// The host port that `127.0.0.1::PORT` published for a container's `port`/tcp.
pub fn published_port(name: &str, port: u16) -> u16 {
    let out = docker(&["port", name, &format!("{port}/tcp")]);
    let first = out.lines().next().unwrap_or_default();
    first.rsplit(':').next().and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| panic!("{name}: no port: {out}"))
}

/// The status code of `GET /` over HTTP/1.0 on 127.0.0.1:`port`, or `None` when nothing
/// answers with HTTP.
pub fn http_status(port: u16) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut head = Vec::new();
    let _ = s.take(64).read_to_end(&mut head);
    let text = String::from_utf8_lossy(&head);
    text.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

/// Waits until the web server of `name`, published on 127.0.0.1, answers `GET /` with 200.
pub fn wait_for_http_200(name: &str, port: u16) {
    wait_until(name, "HTTP 200 on its published port", START_TIMEOUT, || {
        http_status(published_port(name, port)) == Some(200)
    });
}
