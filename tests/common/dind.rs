//! A second, disposable Docker daemon for tests that kill and restart "the daemon": a
//! Docker-in-Docker node (tests/fixtures/build-dind.sh) owned by a `TestEnv`.
//!
//! ```ignore
//! let env = TestEnv::new("crash");
//! let mut node = Node::start(&env, "node");
//! node.load_image(&image("busybox"));
//! node.docker(&["run", "-d", "--restart", "always", &image("busybox")]);
//! node.kill_daemon(); // SIGKILL to the inner dockerd: every inner container dies with it
//! node.start_again(); // dockerd back; `--restart always` containers with it
//! ```
//!
//! Each node sits alone on a network of its own, so its inner daemon can listen on
//! `tcp://IP:2375` without TLS, and it keeps that IP across a restart. Its /var/lib/docker
//! is a volume, so inner images, containers and volumes survive a kill. Dropping the node
//! removes the container, its network, its volume and its cgroups, also when the test
//! panicked.
//!
//! [`Node::start_with`] changes what a test needs changed, [`NodeOptions`] says what: more
//! `docker run` arguments (certificates mounted in), another dockerd command line (TLS on
//! another port), the port and client certificates the node's own CLI calls then use, or a
//! network shared with other nodes (a swarm's). [`Node::spawn`] starts the container without
//! waiting for its daemon, for a test that needs the node's IP first (to issue the daemon a
//! certificate for it).
use super::{TestEnv, docker, docker_raw};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long an inner daemon may take to answer after its node starts (vfs storage; a busy
/// 2-core machine).
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the node container may take to exit once its dockerd got SIGKILL.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The DinD image, built once per machine (see tests/fixtures/build-dind.sh).
pub fn dind_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let script = super::repo_path("tests/fixtures/build-dind.sh");
        let out = Command::new("bash").arg(&script).output().expect("bash runs the DinD fixture script");
        assert!(out.status.success(), "building the DinD image failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("dind="))
            .expect("build-dind.sh prints dind=REF")
            .to_string()
    })
}

/// Client certificates for the docker CLI calls of a node whose daemon verifies clients:
/// `--tlsverify --tlscacert CA --tlscert CERT --tlskey KEY`.
#[derive(Debug, Clone)]
pub struct ClientTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What [`Node::start_with`] does differently from [`Node::start`]; the default is exactly
/// `Node::start`.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// More `docker run` arguments, placed before the image: mounts, `--hostname`, `-e`.
    pub run_args: Vec<String>,
    /// The command in place of the image's dockerd command line. The node's
    /// `--cgroup-parent=…` is appended to it, so a wrapper such as `sh -c '…; exec dockerd
    /// "$@"' sh ARGS…` hands it on to dockerd.
    pub command: Option<Vec<String>>,
    /// The port the inner daemon serves on at the node's IP (the image's: 2375).
    pub port: u16,
    /// Client certificates for that port; `None`: plain tcp.
    pub tls: Option<ClientTls>,
    /// An existing network to join instead of creating one of the node's own. Whoever
    /// created it removes it, after the node.
    pub network: Option<String>,
}

impl Default for NodeOptions {
    fn default() -> NodeOptions {
        NodeOptions { run_args: Vec::new(), command: None, port: 2375, tls: None, network: None }
    }
}

/// One DinD daemon: a container of the shared daemon running dockerd.
pub struct Node {
    /// The node container's name on the shared daemon.
    pub name: String,
    /// Its network and the volume on its /var/lib/docker.
    pub network: String,
    pub volume: String,
    /// Whether `network` is the node's own, removed with it.
    owns_network: bool,
    /// Where and how the docker CLI reaches the inner daemon.
    port: u16,
    tls: Option<ClientTls>,
    /// The relative cgroup parent of the node and of the inner containers.
    cgroup_parent: String,
    /// Cgroup paths (relative to a hierarchy's mount) of `cgroup_parent`, as seen in the
    /// node's /proc/PID/cgroup: `/PARENT`, or nested as the shared daemon is
    /// (`/some/where/PARENT`).
    cgroup_rel: Vec<String>,
    host: String,
}

impl Node {
    /// Starts a node named after `short` in `env` and waits until its daemon answers.
    pub fn start(env: &TestEnv, short: &str) -> Node {
        Node::start_with(env, short, NodeOptions::default())
    }

    /// [`Node::start`] with `options`.
    pub fn start_with(env: &TestEnv, short: &str, options: NodeOptions) -> Node {
        let mut node = Node::spawn(env, short, options);
        node.wait_ready();
        node
    }

    /// Starts the node container and returns at once, its daemon perhaps not answering yet;
    /// [`Node::wait_ready`] waits for it.
    pub fn spawn(env: &TestEnv, short: &str, options: NodeOptions) -> Node {
        let image = dind_image();
        let name = env.name(short);
        let label = env.label();
        let owns_network = options.network.is_none();
        let node = Node {
            network: options.network.unwrap_or_else(|| format!("{name}-net")),
            volume: format!("{name}-docker"),
            owns_network,
            port: options.port,
            tls: options.tls,
            cgroup_parent: format!("{name}-cg"),
            cgroup_rel: Vec::new(),
            host: String::new(),
            name,
        };
        // From here on a panic drops `node`, which removes whatever exists of it.
        if node.owns_network {
            docker(&["network", "create", "--label", &label, &node.network]);
        }
        docker(&["volume", "create", "--label", &label, &node.volume]);

        // The image's dockerd command, plus the node's cgroup parent for the inner containers.
        // Relative, it nests them under the node's own cgroup in the v1 hierarchies and puts
        // them under /PARENT in the v2 one (runc joins a relative path to the root there);
        // either way they go with the node's cgroups instead of next to the shared daemon's.
        let cmd: Vec<String> = match options.command {
            Some(cmd) => cmd,
            None => serde_json::from_str(&docker(&["image", "inspect", "-f", "{{json .Config.Cmd}}", image]))
                .expect("the DinD image has a CMD"),
        };
        let inner_parent = format!("--cgroup-parent={}", node.cgroup_parent);
        let volume_mount = format!("{}:/var/lib/docker", node.volume);
        let mut args = vec!["run", "-d", "--name", &node.name, "--label", &label, "--network", &node.network];
        // What a dockerd needs short of --privileged (which this machine refuses): every
        // capability, no seccomp or AppArmor filter, fuse, and the host's cgroups to write in.
        args.extend(["--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE"]);
        args.extend(["--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined"]);
        args.extend(["--device", "/dev/fuse", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw"]);
        // /var/run is a symlink to /run in the image: a fresh tmpfs on every start drops the
        // pid file and sockets a killed dockerd leaves behind.
        args.extend(["--tmpfs", "/run"]);
        args.extend(options.run_args.iter().map(String::as_str));
        args.extend(["--cgroup-parent", &node.cgroup_parent, "-v", &volume_mount, image]);
        args.extend(cmd.iter().map(String::as_str));
        args.push(&inner_parent);
        docker(&args);
        node
    }

    /// The node's IP on its network, as the shared daemon shows it now (the node runs).
    pub fn ip(&self) -> String {
        let ip = docker(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", &self.name]);
        assert!(!ip.is_empty(), "node {} has no IP (is it running?):\n{}", self.name, self.logs());
        ip
    }

    /// The inner daemon's address, for `docker -H`.
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// Runs the docker CLI against the inner daemon; panics with its stderr when it fails.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = self.docker_raw(args);
        assert!(
            out.status.success(),
            "docker -H {} {} failed: {}",
            self.host,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs the docker CLI against the inner daemon and returns whatever happened.
    pub fn docker_raw(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("docker");
        if let Some(tls) = &self.tls {
            cmd.arg("--tlsverify").arg("--tlscacert").arg(&tls.ca);
            cmd.arg("--tlscert").arg(&tls.cert).arg("--tlskey").arg(&tls.key);
        }
        cmd.arg("-H").arg(&self.host).args(args).output().expect("the docker CLI runs")
    }

    /// Copies an image of the shared daemon into the node.
    pub fn load_image(&self, image_ref: &str) {
        let mut save = Command::new("docker")
            .args(["save", image_ref])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker save runs");
        let load = Command::new("docker")
            .args(["exec", "-i", &self.name, "docker", "load"])
            .stdin(save.stdout.take().expect("docker save's stdout"))
            .output()
            .expect("docker load runs");
        let saved = save.wait_with_output().expect("docker save finishes");
        assert!(saved.status.success(), "docker save {image_ref} failed: {}", String::from_utf8_lossy(&saved.stderr));
        assert!(
            load.status.success(),
            "docker load of {image_ref} into {} failed: {}",
            self.name,
            String::from_utf8_lossy(&load.stderr)
        );
    }

    /// The host pid of the node's dockerd (its PID 1); 0 when the node is not running.
    pub fn daemon_pid(&self) -> i32 {
        docker(&["inspect", "-f", "{{.State.Pid}}", &self.name]).parse().expect("docker inspect prints a pid")
    }

    /// Whether the node container runs.
    pub fn is_running(&self) -> bool {
        docker(&["inspect", "-f", "{{.State.Running}}", &self.name]) == "true"
    }

    /// SIGKILLs the inner dockerd and waits until the node container has exited. Being PID 1
    /// of the node, its death takes containerd, the shims and every inner container with it.
    pub fn kill_daemon(&self) {
        let pid = self.daemon_pid();
        assert!(pid > 0, "node {} is not running", self.name);
        // This pid is in the shared daemon's pid namespace; make sure it is ours to kill.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            cmdline.starts_with(b"dockerd\0"),
            "pid {pid} is not node {}'s dockerd (does this test run in the daemon's pid namespace?)",
            self.name
        );
        let pid = rustix::process::Pid::from_raw(pid).expect("a positive pid");
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("SIGKILL to the node's dockerd");
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while self.is_running() {
            assert!(Instant::now() < deadline, "node {} still runs {EXIT_TIMEOUT:?} after SIGKILL", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the node container again and waits until its daemon answers.
    pub fn start_again(&mut self) {
        docker(&["start", &self.name]);
        self.wait_ready();
    }

    /// Waits until the inner daemon answers on the node's IP, read afresh: the node is alone
    /// on its network and gets the same IP again after a restart, but nothing promises that.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let state = docker(&[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.Pid}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                &self.name,
            ]);
            let mut fields = state.split_whitespace();
            let (status, pid, ip) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""), fields.next());
            if status == "exited" || status == "dead" {
                panic!("node {} stopped ({status}) before its daemon answered:\n{}", self.name, self.logs());
            }
            if let (Ok(pid), Some(ip)) = (pid.parse::<i32>(), ip)
                && status == "running"
            {
                self.host = format!("tcp://{ip}:{}", self.port);
                self.record_cgroups(pid);
                if self.docker_raw(&["info", "--format", "{{.ServerVersion}}"]).status.success() {
                    return;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "node {}'s daemon did not answer on {} within {READY_TIMEOUT:?}:\n{}",
                    self.name,
                    self.host,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of the node's log (its dockerd's), for failure messages.
    pub fn logs(&self) -> String {
        let out = docker_raw(&["logs", "--tail", "60", &self.name]);
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    /// Notes where the node's cgroups are, from its dockerd's /proc/PID/cgroup.
    fn record_cgroups(&mut self, pid: i32) {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else { return };
        let marker = format!("/{}/", self.cgroup_parent);
        for line in text.lines() {
            // `ID:CONTROLLERS:PATH`, PATH ending in /PARENT/CONTAINER-ID.
            let Some(path) = line.splitn(3, ':').nth(2) else { continue };
            let Some(at) = path.find(&marker) else { continue };
            let rel = path[..at + marker.len() - 1].to_string();
            if !self.cgroup_rel.contains(&rel) {
                self.cgroup_rel.push(rel);
            }
        }
    }

    /// The node's cgroup parent directories that exist right now, in every hierarchy.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut rels = self.cgroup_rel.clone();
        let top = format!("/{}", self.cgroup_parent);
        if !rels.contains(&top) {
            rels.push(top);
        }
        let root = Path::new("/sys/fs/cgroup");
        // v1: one mount per hierarchy under /sys/fs/cgroup (plus `unified` in hybrid mode);
        // v2: /sys/fs/cgroup itself.
        let mut mounts = vec![root.to_path_buf()];
        if let Ok(entries) = std::fs::read_dir(root) {
            mounts.extend(entries.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()));
        }
        let mut dirs = Vec::new();
        for mount in &mounts {
            for rel in &rels {
                let dir = mount.join(rel.trim_start_matches('/'));
                if dir.is_dir() && !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
        }
        dirs
    }
}

/// Removes a cgroup directory and its children, deepest first; a cgroup that still has
/// processes stays (rmdir fails), and so does its ancestry.
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = docker_raw(&["rm", "-f", "-v", &self.name]);
        if self.owns_network {
            let _ = docker_raw(&["network", "rm", &self.network]);
        }
        let _ = docker_raw(&["volume", "rm", &self.volume]);
        // The node's processes are gone, but a cgroup can stay busy for a moment after its
        // last task died.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let dirs = self.cgroup_dirs();
            dirs.iter().for_each(|d| remove_cgroup_tree(d));
            if self.cgroup_dirs().is_empty() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
