//! The disposable daemon tests kill and restart (tests/common/dind.rs) behaves like a real
//! host's after a crash, and leaves nothing behind.

use crate::common::dind::Node;
use crate::common::{TestEnv, docker, image};
use std::time::{Duration, Instant};

/// `docker inspect -f {{.State.Status}}` of an inner container.
fn status(node: &Node, container: &str) -> String {
    node.docker(&["inspect", "-f", "{{.State.Status}}", container])
}

#[test]
fn a_killed_daemon_comes_back_with_its_restart_always_containers_and_their_data() {
    let env = TestEnv::new("dind-smoke");
    let mut node = Node::start(&env, "node");
    let busybox = image("busybox");
    node.load_image(&busybox);

    node.docker(&["run", "-d", "--name", "keeper", "--restart", "always", "-v", "keeper-data:/data", &busybox]);
    node.docker(&["run", "-d", "--name", "oneshot", "--restart", "no", &busybox]);
    node.docker(&["exec", "keeper", "sh", "-c", "echo written-before-the-crash > /data/note"]);
    let started_before = node.docker(&["inspect", "-f", "{{.State.StartedAt}}", "keeper"]);
    assert_eq!(node.docker(&["ps", "--format", "{{.Names}}", "--filter", "status=running"]).lines().count(), 2);

    let host_before = node.host();
    node.kill_daemon();
    assert!(!node.is_running(), "the node stops with its daemon");
    node.start_again();
    // Not a promise the helpers rely on (they re-read it), but worth knowing when it changes.
    assert_eq!(node.host(), host_before, "the node, alone on its network, keeps its IP");

    // The restarted daemon brings `--restart always` back on its own.
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(&node, "keeper") != "running" {
        assert!(Instant::now() < deadline, "keeper is not running again: {}", status(&node, "keeper"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let running = node.docker(&["ps", "--format", "{{.Names}}"]);
    assert_eq!(running, "keeper", "only the --restart always container runs after the crash");
    assert_ne!(
        node.docker(&["inspect", "-f", "{{.State.StartedAt}}", "keeper"]),
        started_before,
        "keeper is a new process, not one that survived the kill"
    );
    assert_eq!(node.docker(&["exec", "keeper", "cat", "/data/note"]), "written-before-the-crash");
    assert_eq!(node.docker(&["volume", "ls", "-q"]), "keeper-data");

    // The other one died with the daemon and stays down: exited, not running or restarting.
    assert_eq!(status(&node, "oneshot"), "exited");
    assert_eq!(node.docker(&["ps", "-a", "--format", "{{.Names}}", "--filter", "status=exited"]), "oneshot");

    // Dropping the node removes everything it made on the shared daemon and the host.
    let cgroups = node.cgroup_dirs();
    assert!(!cgroups.is_empty(), "the node's cgroups were found");
    drop(node);
    let filter = format!("label={}", env.label());
    for kind in [&["ps", "-a"][..], &["network", "ls"], &["volume", "ls"]] {
        let mut args = kind.to_vec();
        args.extend(["-q", "--filter", &filter]);
        assert_eq!(docker(&args), "", "docker {} still lists the node's", kind.join(" "));
    }
    let left: Vec<_> = cgroups.iter().filter(|d| d.exists()).collect();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}
