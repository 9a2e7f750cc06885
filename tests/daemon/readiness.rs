//! The readiness gate's probes against the real daemon (SPEC §3 step 8): an exec probe that
//! outlives its limit is killed with what it started. What the gate decides on Docker's
//! health status is proven on the fake (tests/offline/decisions/readiness.rs).

use crate::common::{TestEnv, docker, image};

#[test]
fn a_probe_that_outlives_its_limit_is_killed_with_what_it_started() {
    use unroot::docker::DockerPort;
    let env = TestEnv::new("ready-kill");
    let svc = env.run("svc", &[&image("busybox"), "sleep", "1000000"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let port = rt.block_on(unroot::docker::BollardDocker::connect(None)).expect("the daemon answers");
    // A hanging check that also starts a child, as `sh -c` checks do.
    let cmd: Vec<String> = ["sh", "-c", "sleep 601 & sleep 602"].map(String::from).to_vec();
    let started = std::time::Instant::now();
    let f = rt.block_on(port.exec(&svc, &cmd, std::time::Duration::from_secs(1))).unwrap();
    assert_eq!(f.exit_code, unroot::docker::EXEC_TIMED_OUT, "{}", String::from_utf8_lossy(&f.stderr));
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "it returned at its limit, not at the probe's end");
    let left = || docker(&["top", &svc, "-o", "pid,args"]);
    // The kill is immediate, but give the kernel a moment to reap.
    for _ in 0..20 {
        if !left().contains("sleep 60") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let procs = left();
    assert!(!procs.contains("sleep 601") && !procs.contains("sleep 602"), "the probe's processes are left:\n{procs}");
    assert!(procs.contains("sleep 1000000"), "the container's own process stays:\n{procs}");
    // A check that ends in time is untouched.
    let ok = rt.block_on(port.exec(&svc, &["true".to_string()], std::time::Duration::from_secs(5))).unwrap();
    assert_eq!(ok.exit_code, 0);
}
