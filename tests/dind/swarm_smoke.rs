//! The swarm fixture (tests/common/swarm.rs) makes a working Docker Swarm of Docker-in-Docker
//! nodes: services land where their constraints and modes say, with their volumes on the
//! nodes that run them; and dropping it leaves nothing behind, the shared daemon never
//! joining any swarm.

use crate::common::swarm::Swarm;
use crate::common::{TestEnv, docker, image};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Service options and command of a task that writes its container's hostname into its
/// node's `data` volume and stays up, around the image.
fn writes_its_hostname<'a>(options: &[&'a str], image: &'a str) -> Vec<&'a str> {
    let mount = ["--mount", "type=volume,source=data,target=/data"];
    let command = ["sh", "-c", "echo $(hostname) > /data/who; sleep 1000000"];
    [options, &mount[..], &[image], &command[..]].concat()
}

/// The shared daemon's swarm state (`inactive` here): the fixture must not change it.
fn shared_swarm_state() -> String {
    docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"])
}

/// Containers of `service` on `node`'s daemon, as a user there would list them.
fn tasks_on(node: &crate::common::dind::Node, service: &str) -> Vec<String> {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    node.docker(&["ps", "-q", "--filter", &filter]).lines().map(str::to_string).collect()
}

/// The content of `file` in the volume `volume` of `node`, read on the node's disk once the
/// task that writes it has written it.
fn file_in_volume(node: &crate::common::dind::Node, volume: &str, file: &str) -> String {
    let mountpoint = node.docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", volume]);
    let path = format!("{mountpoint}/{file}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = crate::common::docker_raw(&["exec", &node.name, "cat", &path]);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !text.is_empty() {
            return text;
        }
        assert!(Instant::now() < deadline, "{path} on {} was never written", node.name);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Drops the swarm and checks that nothing of the test is left on the shared daemon or in
/// the host's cgroups, and that the shared daemon's swarm state is what it was.
fn drop_and_check_nothing_left(env: &TestEnv, swarm: Swarm, shared_state: &str) {
    let cgroups: Vec<PathBuf> = swarm.nodes().iter().flat_map(|n| n.cgroup_dirs()).collect();
    assert!(!cgroups.is_empty(), "the nodes' cgroups were found");
    drop(swarm);
    let filter = format!("label={}", env.label());
    for kind in [&["ps", "-a"][..], &["network", "ls"], &["volume", "ls"]] {
        let mut args = kind.to_vec();
        args.extend(["-q", "--filter", &filter]);
        assert_eq!(docker(&args), "", "docker {} still lists the swarm's", kind.join(" "));
    }
    let left: Vec<_> = cgroups.iter().filter(|d| d.exists()).collect();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
    assert_eq!(shared_swarm_state(), shared_state, "the shared daemon's swarm state changed");
}

#[test]
fn a_three_node_swarm_runs_replicas_on_its_workers_with_their_volumes_and_a_global_service_everywhere() {
    let env = TestEnv::new("swarm3");
    let shared_state = shared_swarm_state();
    let swarm = Swarm::start(&env, 2);
    let busybox = image("busybox");
    swarm.load_image(&busybox);
    let manager = swarm.manager();

    let members = swarm.members();
    assert_eq!(members.len(), 3, "{members:?}");
    assert!(members.iter().all(|m| m.status == "Ready" && m.availability == "Active"), "{members:?}");
    let leader: Vec<_> = members.iter().filter(|m| m.manager_status == "Leader").collect();
    assert_eq!(leader.len(), 1, "{members:?}");
    assert_eq!((leader[0].id.as_str(), leader[0].hostname.as_str()), (swarm.node_id(manager), "manager"));
    for node in swarm.nodes() {
        let id = swarm.node_id(node);
        let member = members.iter().find(|m| m.id == id).expect("every node is listed");
        assert_eq!(swarm.node_by_hostname(&member.hostname).name, node.name);
    }

    // Two replicas, at most one per node, workers only, each with a `data` volume of its
    // own node that its task writes its hostname into.
    let options = ["--replicas", "2", "--replicas-max-per-node", "1", "--constraint", "node.role==worker"];
    swarm.create_service("S", &writes_its_hostname(&options, &busybox));
    assert_eq!(swarm.wait_running_tasks("S", 2), ["worker-1", "worker-2"]);
    for worker in swarm.workers() {
        let tasks = tasks_on(worker, "S");
        assert_eq!(tasks.len(), 1, "one task of S on {}: {tasks:?}", worker.name);
        let task_hostname = worker.docker(&["inspect", "-f", "{{.Config.Hostname}}", &tasks[0]]);
        assert_eq!(file_in_volume(worker, "data", "who"), task_hostname, "on {}", worker.name);
    }
    assert!(tasks_on(manager, "S").is_empty(), "no task of S on the manager");
    let manager_volumes = manager.docker(&["volume", "ls", "-q"]);
    assert!(!manager_volumes.lines().any(|v| v == "data"), "the manager has no data volume: {manager_volumes}");

    // A global service: one task on every node, the manager included.
    swarm.create_service("G", &["--mode", "global", &busybox, "sleep", "1000000"]);
    assert_eq!(swarm.wait_running_tasks("G", 3), ["manager", "worker-1", "worker-2"]);
    for node in swarm.nodes() {
        assert_eq!(tasks_on(node, "G").len(), 1, "one task of G on {}", node.name);
    }

    drop_and_check_nothing_left(&env, swarm, &shared_state);
}

#[test]
fn a_single_node_swarm_runs_a_replicated_service() {
    let env = TestEnv::new("swarm1");
    let shared_state = shared_swarm_state();
    let swarm = Swarm::start(&env, 0);
    let busybox = image("busybox");
    swarm.load_image(&busybox);
    let manager = swarm.manager();

    let members = swarm.members();
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!((members[0].id.as_str(), members[0].status.as_str()), (swarm.node_id(manager), "Ready"));
    assert_eq!(members[0].manager_status, "Leader");
    assert!(swarm.workers().is_empty());

    swarm.create_service("S", &writes_its_hostname(&["--replicas", "1"], &busybox));
    assert_eq!(swarm.wait_running_tasks("S", 1), ["manager"]);
    let tasks = tasks_on(manager, "S");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task_hostname = manager.docker(&["inspect", "-f", "{{.Config.Hostname}}", &tasks[0]]);
    assert_eq!(file_in_volume(manager, "data", "who"), task_hostname);

    drop_and_check_nothing_left(&env, swarm, &shared_state);
}
