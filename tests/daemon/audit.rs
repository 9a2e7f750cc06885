//! `unroot audit` against real containers from locally built images.

use crate::common::{TestEnv, docker, image, unroot};
use serde_json::Value;

fn audit_json(extra: &[&str]) -> Value {
    let mut cmd = unroot();
    cmd.arg("audit").arg("--json").args(extra);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "audit failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("audit --json prints one JSON document")
}

fn entry<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in the audit: {report:#}"))
}

fn uids(e: &Value) -> Vec<u64> {
    e["process_uids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect()
}

fn flags(e: &Value) -> Vec<String> {
    e["flags"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

#[test]
fn classifies_each_way_a_container_can_hold_root() {
    let env = TestEnv::new("audit-classes");
    let img = image("busybox");
    let vol = env.name("vol");
    docker(&["volume", "create", "--label", &env.label(), &vol]);
    let data_mount = format!("{vol}:/data");

    let root = env.run("root", &["-v", &data_mount, &img]);
    let drops = env.run("drops", &[&img, "drop", "1000:1000", "sleep", "1000000"]);
    let by_uid = env.run("uid", &["--user", "1000:1000", &img]);
    let by_name = env.run("name", &["--user", "app", &img]);
    let zero = env.run("zero", &["--user", "0:0", &img]);
    let risky = env.run(
        "risky",
        // `--privileged` cannot start in this sandbox; its flag is covered by the unit tests.
        &["--cap-add", "NET_ADMIN", "-v", "/var/run/docker.sock:/var/run/docker.sock", &img],
    );
    let hardened = env.run(
        "hardened",
        &["--user", "999:999", "--read-only", "--security-opt", "no-new-privileges", "--cap-drop", "ALL", &img],
    );

    let report = audit_json(&[]);

    let e = entry(&report, &root);
    assert_eq!(e["class"], "root");
    assert_eq!(e["configured_user"], "");
    assert_eq!(uids(e), [0]);
    assert!(flags(e).contains(&"root-owned-mount:/data".to_string()), "{e}");
    assert!(flags(e).contains(&"rootfs-writable".to_string()));
    assert!(flags(e).contains(&"no-new-privileges-missing".to_string()));
    assert_eq!(e["image"], img);

    let e = entry(&report, &drops);
    assert_eq!(e["class"], "drops-root", "{e}");
    assert_eq!(uids(e), [1000]);

    let e = entry(&report, &by_uid);
    assert_eq!(e["class"], "non-root");
    assert_eq!(e["configured_user"], "1000:1000");
    assert_eq!(uids(e), [1000]);

    let e = entry(&report, &by_name);
    assert_eq!(e["class"], "non-root");
    assert_eq!(e["configured_user"], "app");
    assert_eq!(e["configured_uid"], 1000, "the name is resolved from the image's /etc/passwd");
    assert_eq!(uids(e), [1000]);

    let e = entry(&report, &zero);
    assert_eq!(e["class"], "root", "0:0 is root");
    assert_eq!(e["configured_user"], "0:0");
    assert_eq!(uids(e), [0]);

    let e = entry(&report, &risky);
    let f = flags(e);
    for flag in ["docker.sock", "cap-add:NET_ADMIN"] {
        assert!(f.contains(&flag.to_string()), "{flag} missing from {f:?}");
    }

    let e = entry(&report, &hardened);
    assert_eq!(e["class"], "non-root");
    assert!(flags(e).is_empty(), "a hardened non-root container has no flags: {e}");

    let summary = &report["summary"];
    for class in ["root", "drops-root", "non-root", "exception"] {
        assert!(summary[class].is_u64(), "summary lacks {class}");
    }

    // Our own root containers make --fail-on-root fail, whatever else runs on the daemon.
    unroot().args(["audit", "--fail-on-root"]).assert().code(1);

    // The human table names each container with its class.
    let out = unroot().arg("audit").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with(&drops)).expect("a row for the container");
    assert!(line.contains("drops-root"), "{line}");
    assert!(text.lines().next().unwrap().starts_with("NAME"), "{text}");
}

#[test]
fn plan_exceptions_report_their_controls() {
    let env = TestEnv::new("audit-exception");
    let img = image("busybox");
    let controlled =
        env.run("monitor", &["--cap-drop", "ALL", "--read-only", "--security-opt", "no-new-privileges", &img]);
    let bare = env.run("bare", &[&img]);
    let dir = env.tempdir();
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        format!(
            "[rollout]\nname = \"audit-test\"\n\n\
             [service.{controlled}]\nday = 1\nkeep_root = \"reads host /proc\"\ncap_drop = [\"ALL\"]\nread_only = true\nno_new_privileges = true\n\n\
             [service.{bare}]\nday = 1\nkeep_root = \"needs raw sockets\"\ncap_drop = [\"ALL\"]\nread_only = true\n"
        ),
    )
    .unwrap();

    let report = audit_json(&["--plan", plan.to_str().unwrap()]);
    let e = entry(&report, &controlled);
    assert_eq!(e["class"], "exception");
    assert_eq!(e["exception"], "reads host /proc");
    assert!(!flags(e).iter().any(|f| f.starts_with("control-missing")), "{e}");
    assert_eq!(uids(e), [0]);

    let e = entry(&report, &bare);
    assert_eq!(e["class"], "exception");
    let f = flags(e);
    assert!(f.contains(&"control-missing:cap_drop=ALL".to_string()), "{f:?}");
    assert!(f.contains(&"control-missing:read_only".to_string()), "{f:?}");

    // Without the plan the same container is plain root.
    let report = audit_json(&[]);
    assert_eq!(entry(&report, &controlled)["class"], "root");
}

#[test]
fn a_container_that_restarts_during_the_audit_is_reported_not_fatal() {
    let env = TestEnv::new("audit-flap");
    let img = image("busybox");
    let flapping = env.run("flap", &["--restart", "always", &img, "sh", "-c", "sleep 0.1; exit 3"]);
    let mut seen = 0;
    for _ in 0..5 {
        let report = audit_json(&[]);
        let listed = report["containers"].as_array().unwrap().iter().any(|c| c["name"] == flapping.as_str());
        let gone = report["gone"].as_array().is_some_and(|g| g.iter().any(|c| c["name"] == flapping.as_str()));
        assert!(listed || gone, "{flapping} is neither audited nor reported gone");
        seen += 1;
    }
    assert_eq!(seen, 5);
}

#[test]
fn an_unreachable_daemon_exits_6_naming_the_address() {
    for host in ["unix:///nonexistent/unroot-test.sock", "tcp://127.0.0.1:1"] {
        let out = unroot().arg("audit").env("DOCKER_HOST", host).output().unwrap();
        assert_eq!(out.status.code(), Some(6), "{host}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(host), "stderr does not name {host}: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn an_explicit_docker_host_is_used() {
    let out = unroot().args(["audit", "--json"]).env("DOCKER_HOST", "unix:///var/run/docker.sock").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["containers"].is_array());
}
