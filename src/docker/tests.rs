use super::*;

#[test]
fn a_name_that_is_the_prefix_of_several_ids_is_no_container() {
    use fake::{FakeDocker, Script};
    let fake = FakeDocker::default();
    let ambiguous = || DockerError::Api { status: 500, message: "Multiple IDs found with provided prefix: b5".into() };
    fake.script("inspect", Script::Fail(ambiguous()));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert!(matches!(rt.block_on(inspect_named(&fake, "b5")), Err(DockerError::NotFound(_))));
    fake.script("inspect", Script::Fail(DockerError::Api { status: 500, message: "disk full".into() }));
    assert!(matches!(rt.block_on(inspect_named(&fake, "b5")), Err(DockerError::Api { .. })), "other errors stay");
    assert!(is_ambiguous_prefix(&DockerError::Api {
        status: 400,
        message: "service b5 is ambiguous (2 matches found)".into()
    }));
}

fn p(pid: u32, ppid: u32, uid: u32) -> Process {
    Process { pid, ppid, uid: Some(uid), command: String::new() }
}

#[test]
fn only_the_containers_own_process_tree_counts() {
    // PID 1 (host 100) runs as root and drops to 999 in a child; 300 is a health probe
    // that `docker exec` started as root under the runtime (ppid 50).
    let procs = vec![p(100, 90, 0), p(101, 100, 999), p(102, 101, 999), p(300, 50, 0)];
    let own: Vec<u32> = own_tree(procs.clone(), 100).iter().map(|p| p.pid).collect();
    assert_eq!(own, [100, 101, 102]);
    assert_eq!(own_tree(procs.clone(), 0).len(), 4, "no PID 1 known: every process");
    assert_eq!(own_tree(procs, 7).len(), 4, "PID 1 not listed: every process");
}
