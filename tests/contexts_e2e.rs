//! The daemon found as the docker CLI finds it: contexts made with the real `docker context
//! create` in a CLI configuration folder of the test's own (`DOCKER_CONFIG`), used through
//! `--context`, `DOCKER_CONTEXT` and `docker context use`; `DOCKER_HOST` winning over a stored
//! context as it does for the CLI; an unknown or dead context is exit 2 naming it.

mod common;

use std::path::Path;
use std::process::Command;

use common::{TestEnv, image, unroot};
use serde_json::Value;

/// The docker CLI with the test's own configuration folder.
fn docker_cli(config: &Path, args: &[&str]) -> String {
    let out = Command::new("docker").env("DOCKER_CONFIG", config).args(args).output().unwrap();
    assert!(out.status.success(), "docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `unroot audit --json` of this test's containers with `env` set (and DOCKER_HOST and
/// DOCKER_CONTEXT cleared unless given); returns the exit code, stdout and stderr.
fn audit(config: &Path, env: &TestEnv, extra_env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = unroot();
    cmd.env("DOCKER_CONFIG", config).env_remove("DOCKER_HOST").env_remove("DOCKER_CONTEXT");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).args(["audit", "--json", "--filter", &format!("label={}", env.label())]).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn names(stdout: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    v["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_context_is_used_by_flag_by_variable_and_by_docker_context_use() {
    let env = TestEnv::new("ctx");
    let svc = env.run("svc", &[&image("busybox"), "sleep", "1000000"]);
    let config = env.tempdir();
    let cfg = config.path();
    let ctx = env.name("local");
    docker_cli(cfg, &["context", "create", &ctx, "--docker", "host=unix:///var/run/docker.sock"]);
    let dead = env.name("dead");
    docker_cli(cfg, &["context", "create", &dead, "--docker", "host=unix:///nonexistent/unroot-ctx.sock"]);

    // --context NAME
    let (code, out, err) = audit(cfg, &env, &[], &["--context", &ctx]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(names(&out), vec![svc.clone()]);
    // DOCKER_CONTEXT
    let (code, out, err) = audit(cfg, &env, &[("DOCKER_CONTEXT", &ctx)], &[]);
    assert_eq!((code, names(&out)), (Some(0), vec![svc.clone()]), "{err}");
    // `docker context use`: the current context of config.json.
    docker_cli(cfg, &["context", "use", &dead]);
    let (code, _, err) = audit(cfg, &env, &[], &[]);
    assert_eq!(code, Some(2), "the current context is the dead one: {err}");
    assert!(
        err.contains("unix:///nonexistent/unroot-ctx.sock")
            && err.contains(&format!("context {dead}, the current context in")),
        "{err}"
    );
    docker_cli(cfg, &["context", "use", &ctx]);
    let (code, out, err) = audit(cfg, &env, &[], &[]);
    assert_eq!((code, names(&out)), (Some(0), vec![svc.clone()]), "{err}");

    // DOCKER_HOST wins over DOCKER_CONTEXT and the current context, as for the CLI; and
    // --context wins over DOCKER_HOST.
    let nowhere = "unix:///nonexistent/unroot-host.sock";
    let both = [("DOCKER_HOST", nowhere), ("DOCKER_CONTEXT", ctx.as_str())];
    let (code, _, err) = audit(cfg, &env, &both, &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains(&format!("{nowhere} (from DOCKER_HOST)")), "{err}");
    let cli = Command::new("docker").env("DOCKER_CONFIG", cfg).envs(both).args(["info"]).output().unwrap();
    assert!(!cli.status.success(), "the docker CLI goes to DOCKER_HOST too");
    let (code, out, err) = audit(cfg, &env, &[("DOCKER_HOST", nowhere)], &["--context", &ctx]);
    assert_eq!((code, names(&out)), (Some(0), vec![svc]), "{err}");

    // An unknown context: exit 2 naming it and where its name came from.
    let (code, out, err) = audit(cfg, &env, &[], &["--context", "no-such-context"]);
    assert_eq!(code, Some(2));
    assert!(out.is_empty());
    assert!(
        err.contains("\"no-such-context\"") && err.contains("from --context") && err.contains("docker context ls"),
        "{err}"
    );
}
