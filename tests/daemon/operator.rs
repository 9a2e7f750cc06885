//! What a new operator meets: an audit that does not flap while Docker's own probes run as
//! root beside a process that dropped root. (Why a replacement failed, with its log, is
//! proven on the fake: tests/offline/decisions/readiness.rs.)

use crate::common::{TestEnv, docker, image, unroot_in};
use serde_json::Value;

#[test]
fn a_root_probe_beside_a_process_that_dropped_root_audits_drops_root_every_time() {
    let env = TestEnv::new("op-audit");
    // Configured as root; PID 1 drops to 999 (as gosu does). Docker's own health probe runs
    // as the configured user, root, every second.
    let svc = env.run(
        "dropper",
        &[
            "--health-cmd",
            "sleep 2",
            "--health-interval",
            "1s",
            &image("busybox"),
            "drop",
            "999:999",
            "sleep",
            "1000000",
        ],
    );
    // And an operator's shell, as root.
    docker(&["exec", "-d", &svc, "sleep", "120"]);
    let top = docker(&["top", &svc, "-o", "pid,uid,args"]);
    assert!(top.lines().skip(1).any(|l| l.split_whitespace().nth(1) == Some("0")), "a root process runs: {top}");
    let dir = env.tempdir();
    for i in 0..20 {
        let a = unroot_in(dir.path(), &["audit", "--json", "--filter", &format!("name={svc}")]);
        assert_eq!(a.code, Some(0), "{}", a.stderr);
        let v: Value = serde_json::from_str(&a.stdout).unwrap();
        let listed = v["containers"].as_array().unwrap();
        assert_eq!(listed.len(), 1, "the filter keeps this container only: {listed:?}");
        assert_eq!(listed[0]["class"], "drops-root", "audit {i}: {}", listed[0]);
        assert_eq!(listed[0]["process_uids"], serde_json::json!([999]), "audit {i}");
    }
    // --fail-on-root gates on the filtered set: this one is not root.
    let gate = unroot_in(dir.path(), &["audit", "--fail-on-root", "--filter", &format!("label={}", env.label())]);
    assert_eq!(gate.code, Some(0), "{}", gate.stdout);
}
