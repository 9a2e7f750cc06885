//! A Docker Swarm of the test's own: a manager and N workers, each a Docker-in-Docker node
//! (tests/common/dind.rs) on one private network of the swarm's, owned by a `TestEnv`.
//!
//! ```ignore
//! let env = TestEnv::new("swarm");
//! let swarm = Swarm::start(&env, 2); // manager + 2 workers, every node Ready
//! swarm.load_image(&image("busybox")); // on every node: nothing can be pulled here
//! swarm.manager().docker(&["service", "create", "--detach", "--no-resolve-image", …]);
//! let hosts = swarm.wait_running_tasks("S", 2); // the hostnames of the nodes running them
//! let worker = swarm.node_by_hostname(&hosts[0]);
//! ```
//!
//! Every swarm command goes to a node's own daemon: the shared daemon is never a member of
//! any swarm. Dropping the swarm removes its nodes (containers, volumes, cgroups) and then
//! its network, also when the test panicked.
use super::dind::{Node, NodeOptions};
use super::{TestEnv, docker, docker_raw};
use std::time::{Duration, Instant};

/// How long the nodes may take to show Ready in `docker node ls` once they joined, and a
/// service's tasks to run (a busy 2-core machine; vfs storage).
const SWARM_TIMEOUT: Duration = Duration::from_secs(90);

/// One row of `docker node ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub hostname: String,
    /// `Ready`, `Down`, `Unknown`.
    pub status: String,
    /// `Active`, `Pause`, `Drain`.
    pub availability: String,
    /// `Leader`, `Reachable`, or empty for a worker.
    pub manager_status: String,
}

pub struct Swarm {
    /// The manager first, then the workers.
    nodes: Vec<Node>,
    /// Node ids, in the order of `nodes`.
    ids: Vec<String>,
    /// The swarm's network on the shared daemon, removed after the nodes.
    network: String,
}

impl Swarm {
    /// Starts a manager and `workers` workers (0: a single-node swarm), makes the swarm and
    /// waits until `docker node ls` shows every node Ready.
    pub fn start(env: &TestEnv, workers: usize) -> Swarm {
        let mut swarm = Swarm { nodes: Vec::new(), ids: Vec::new(), network: env.name("swarm-net") };
        // From here on a panic drops `swarm`, which removes whatever exists of it.
        docker(&["network", "create", "--label", &env.label(), &swarm.network]);

        // Starting a node is the cost (its dockerd takes seconds to answer), mostly spent
        // waiting: the nodes start at once, one thread each.
        let shorts: Vec<String> =
            std::iter::once("manager".to_string()).chain((1..=workers).map(|i| format!("worker-{i}"))).collect();
        let started: Vec<std::thread::Result<Node>> = std::thread::scope(|scope| {
            let handles: Vec<_> = shorts
                .iter()
                .map(|short| {
                    let options = NodeOptions {
                        // The hostname is what `docker node ls` and `docker service ps` show.
                        // A swarm task first tries to pull its image from its registry, which
                        // no test can reach (it logs the failure, then uses the local image,
                        // after however long the attempt takes); the variable makes the node
                        // use the image it has, as loaded by `load_image`.
                        run_args: vec![
                            "--hostname".into(),
                            short.clone(),
                            "-e".into(),
                            "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1".into(),
                        ],
                        network: Some(swarm.network.clone()),
                        ..NodeOptions::default()
                    };
                    scope.spawn(move || Node::start_with(env, short, options))
                })
                .collect();
            handles.into_iter().map(|h| h.join()).collect()
        });
        let mut failure = None;
        for result in started {
            match result {
                Ok(node) => swarm.nodes.push(node),
                Err(panic) => failure = Some(panic),
            }
        }
        if let Some(panic) = failure {
            std::panic::resume_unwind(panic);
        }

        let manager_ip = swarm.manager().ip();
        swarm.manager().docker(&["swarm", "init", "--advertise-addr", &manager_ip]);
        let token = swarm.manager().docker(&["swarm", "join-token", "-q", "worker"]);
        let join_addr = format!("{manager_ip}:2377");
        for worker in swarm.workers() {
            worker.docker(&["swarm", "join", "--advertise-addr", &worker.ip(), "--token", &token, &join_addr]);
        }
        swarm.ids = swarm.nodes.iter().map(|n| n.docker(&["info", "--format", "{{.Swarm.NodeID}}"])).collect();
        swarm.wait_ready();
        swarm
    }

    /// The manager node, where services are created.
    pub fn manager(&self) -> &Node {
        &self.nodes[0]
    }

    /// The worker nodes.
    pub fn workers(&self) -> &[Node] {
        &self.nodes[1..]
    }

    /// Every node, the manager first.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The swarm's id of `node` (the ID column of `docker node ls`).
    pub fn node_id(&self, node: &Node) -> &str {
        let at = self.nodes.iter().position(|n| n.name == node.name).expect("a node of this swarm");
        &self.ids[at]
    }

    /// The node `docker node ls` and `docker service ps` call `hostname`.
    pub fn node_by_hostname(&self, hostname: &str) -> &Node {
        let member = self.members().into_iter().find(|m| m.hostname == hostname);
        let member = member.unwrap_or_else(|| panic!("no node {hostname} in the swarm: {:?}", self.members()));
        let at = self.ids.iter().position(|id| *id == member.id).expect("every member is a node of this swarm");
        &self.nodes[at]
    }

    /// `docker node ls` on the manager.
    pub fn members(&self) -> Vec<Member> {
        let format = "{{.ID}}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}";
        let out = self.manager().docker(&["node", "ls", "--format", format]);
        out.lines()
            .map(|line| {
                let mut f = line.split('\t').map(str::to_string);
                let mut next = || f.next().unwrap_or_default();
                Member { id: next(), hostname: next(), status: next(), availability: next(), manager_status: next() }
            })
            .collect()
    }

    /// `docker service create --detach --no-resolve-image --name NAME ARGS…` on the manager
    /// (nothing can be pulled here, so the image is never resolved against a registry).
    pub fn create_service(&self, name: &str, args: &[&str]) {
        let head = ["service", "create", "--detach", "--no-resolve-image", "--name", name];
        self.manager().docker(&[&head[..], args].concat());
    }

    /// Copies an image of the shared daemon into every node, one thread each.
    pub fn load_image(&self, image_ref: &str) {
        std::thread::scope(|scope| {
            for node in &self.nodes {
                scope.spawn(move || node.load_image(image_ref));
            }
        });
    }

    /// Waits until `count` tasks of `service` run and returns the hostnames of their nodes,
    /// sorted (a node twice when it runs two). Panics with `docker service ps` (its ERROR
    /// column says why a task does not start) when they do not within the deadline.
    pub fn wait_running_tasks(&self, service: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + SWARM_TIMEOUT;
        loop {
            let out = self.manager().docker(&[
                "service",
                "ps",
                service,
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Node}}\t{{.CurrentState}}",
            ]);
            let mut running: Vec<String> = out
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .filter(|(_, state)| state.starts_with("Running"))
                .map(|(node, _)| node.to_string())
                .collect();
            if running.len() == count {
                running.sort();
                return running;
            }
            if Instant::now() >= deadline {
                let all = self.manager().docker_raw(&["service", "ps", "--no-trunc", service]);
                panic!(
                    "{} of {count} tasks of {service} run after {SWARM_TIMEOUT:?}:\n{}{}",
                    running.len(),
                    String::from_utf8_lossy(&all.stdout),
                    String::from_utf8_lossy(&all.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The containers of unroot's (its checks, scans and helpers: names `unroot-…`) on any
    /// node, as `NODE: NAME`, once a removed service's tasks had up to 30 s to go.
    pub fn unroot_containers_left(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left: Vec<String> = self
                .nodes
                .iter()
                .flat_map(|node| {
                    node.docker(&["ps", "-a", "--format", "{{.Names}}"])
                        .lines()
                        .filter(|n| n.starts_with("unroot-"))
                        .map(|n| format!("{}: {n}", node.name))
                        .collect::<Vec<_>>()
                })
                .collect();
            if left.is_empty() || Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Starts worker `i` (0-based) again after its daemon was killed, and waits until the
    /// manager sees every node Ready.
    pub fn start_worker_again(&mut self, i: usize) {
        self.nodes[i + 1].start_again();
        self.wait_ready();
    }

    /// `unroot ARGS` against the manager, as an operator's `DOCKER_HOST` would name it:
    /// exit code, stdout, stderr.
    pub fn unroot(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = super::unroot()
            .env("DOCKER_HOST", self.manager().host())
            .env_remove("DOCKER_CONTEXT")
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    }

    /// Waits until the manager lists every node, each Ready.
    fn wait_ready(&self) {
        let deadline = Instant::now() + SWARM_TIMEOUT;
        loop {
            let members = self.members();
            if members.len() == self.nodes.len() && members.iter().all(|m| m.status == "Ready") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the swarm's {} nodes are not all Ready after {SWARM_TIMEOUT:?}: {members:?}",
                self.nodes.len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Two replicas, one on each worker (the manager runs none).
pub const ON_WORKERS: [&str; 6] =
    ["--replicas", "2", "--replicas-max-per-node", "1", "--constraint", "node.role==worker"];

/// `uid:gid path` of everything in `volume` on `node`, sorted.
pub fn owners_on(node: &Node, volume: &str) -> Vec<String> {
    stat_on(node, volume, "%u:%g %n")
}

/// `mode path` (octal, setuid and setgid bits included) of everything in `volume` on
/// `node`, sorted.
pub fn modes_on(node: &Node, volume: &str) -> Vec<String> {
    stat_on(node, volume, "%a %n")
}

fn stat_on(node: &Node, volume: &str, format: &str) -> Vec<String> {
    let mountpoint = node.docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", volume]);
    let out = docker(&[
        "exec",
        &node.name,
        "sh",
        "-c",
        &format!("cd {mountpoint} && find . | sort | xargs stat -c '{format}'"),
    ]);
    out.lines().map(str::to_string).collect()
}

impl Drop for Swarm {
    fn drop(&mut self) {
        // Each node's drop removes its container, volume and cgroups; they go at once, and
        // the network once no node is left on it.
        let nodes = std::mem::take(&mut self.nodes);
        std::thread::scope(|scope| {
            for node in nodes {
                scope.spawn(move || drop(node));
            }
        });
        let _ = docker_raw(&["network", "rm", &self.network]);
    }
}
