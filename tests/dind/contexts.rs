//! The daemon found as the docker CLI finds it: contexts made with the real `docker context
//! create` in a CLI configuration folder of the test's own (`DOCKER_CONFIG`), used through
//! `--context`, `DOCKER_CONTEXT` and `docker context use`; `DOCKER_HOST` winning over a stored
//! context as it does for the CLI; an unknown or dead context is exit 2 naming it. A tcp://
//! context with TLS reaches a daemon of the test's own that verifies its clients
//! (Docker-in-Docker, certificates made with openssl); one that skips verification, or
//! trusts another CA, is refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::dind::{ClientTls, Node, NodeOptions};
use crate::common::{TestEnv, image, unroot};
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
    let out = cmd.args(["audit", "--json", "--filter", &format!("label={}", env.label())]).args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// The `outcome` of the JSON error document `audit --json` prints when it fails.
fn failed_as(stdout: &str) -> String {
    let doc: serde_json::Value = serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(doc["errors"][0]["message"].is_string(), "{doc}");
    doc["outcome"].as_str().unwrap().to_string()
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
    assert_eq!(code, Some(6), "the current context is the dead one: {err}");
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
    assert_eq!(code, Some(6));
    assert!(err.contains(&format!("{nowhere} (from DOCKER_HOST)")), "{err}");
    let cli = Command::new("docker").env("DOCKER_CONFIG", cfg).envs(both).args(["info"]).output().unwrap();
    assert!(!cli.status.success(), "the docker CLI goes to DOCKER_HOST too");
    let (code, out, err) = audit(cfg, &env, &[("DOCKER_HOST", nowhere)], &["--context", &ctx]);
    assert_eq!((code, names(&out)), (Some(0), vec![svc]), "{err}");

    // An unknown context: exit 2 naming it and where its name came from.
    let (code, out, err) = audit(cfg, &env, &[], &["--context", "no-such-context"]);
    assert_eq!(code, Some(2));
    assert_eq!(failed_as(&out), "bad-input");
    assert!(
        err.contains("\"no-such-context\"") && err.contains("from --context") && err.contains("docker context ls"),
        "{err}"
    );
}

/// Runs openssl in `dir`; panics with its stderr when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// A certificate authority in `dir` (`ca.pem`, `ca-key.pem`): P-256 keys, every extension
/// written out rather than left to the system's openssl.cnf, so that both Go (dockerd, the
/// CLI) and rustls (unroot) accept the chain.
fn make_ca(dir: &Path, cn: &str) {
    std::fs::create_dir_all(dir).unwrap();
    openssl(dir, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca-key.pem"]);
    openssl(dir, &["req", "-new", "-key", "ca-key.pem", "-subj", &format!("/CN={cn}"), "-out", "ca.csr"]);
    std::fs::write(
        dir.join("ca.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
    )
    .unwrap();
    let args = ["x509", "-req", "-in", "ca.csr", "-signkey", "ca-key.pem", "-extfile", "ca.ext", "-days", "2"];
    openssl(dir, &[&args[..], &["-out", "ca.pem"]].concat());
}

/// A key and a certificate signed by the CA in `ca_dir`, with the extensions `ext`, written
/// to `out_dir` as `cert_name` and `key_name`: the key last and by rename, because a node's
/// dockerd starts once the key is there.
fn issue(ca_dir: &Path, out_dir: &Path, cn: &str, ext: &str, serial: &str, (cert_name, key_name): (&str, &str)) {
    std::fs::create_dir_all(out_dir).unwrap();
    let work = ca_dir.join(cn);
    std::fs::create_dir_all(&work).unwrap();
    openssl(&work, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "key.pem"]);
    openssl(&work, &["req", "-new", "-key", "key.pem", "-subj", &format!("/CN={cn}"), "-out", "req.csr"]);
    std::fs::write(work.join("ext"), ext).unwrap();
    let ca = ca_dir.join("ca.pem");
    let ca_key = ca_dir.join("ca-key.pem");
    openssl(
        &work,
        &[
            "x509",
            "-req",
            "-in",
            "req.csr",
            "-CA",
            ca.to_str().unwrap(),
            "-CAkey",
            ca_key.to_str().unwrap(),
            "-set_serial",
            serial,
            "-extfile",
            "ext",
            "-days",
            "2",
            "-out",
            "cert.pem",
        ],
    );
    std::fs::copy(work.join("cert.pem"), out_dir.join(cert_name)).unwrap();
    std::fs::rename(work.join("key.pem"), out_dir.join(key_name)).unwrap();
}

/// The server's dockerd: TLS with client verification on 2376 beside the local socket (which
/// `Node::load_image` uses), started once its key is in /certs: the certificate names the
/// node's IP, known only once the node runs.
fn tls_dockerd() -> Vec<String> {
    let wait_then_exec = "until [ -s /certs/server-key.pem ]; do sleep 0.1; done; exec dockerd \"$@\"";
    [
        "sh",
        "-c",
        wait_then_exec,
        "wait-for-certificates",
        "--host=unix:///var/run/docker.sock",
        "--host=tcp://0.0.0.0:2376",
        "--tlsverify",
        "--tlscacert=/certs/ca.pem",
        "--tlscert=/certs/server-cert.pem",
        "--tlskey=/certs/server-key.pem",
        "--storage-driver=vfs",
    ]
    .map(str::to_string)
    .to_vec()
}

#[test]
fn a_tls_context_reaches_a_daemon_that_verifies_clients_and_refuses_skipped_verification_or_another_ca() {
    let env = TestEnv::new("ctx-tls");
    let pki = env.tempdir();
    let pki = pki.path();
    let ca = pki.join("ca");
    let other_ca = pki.join("other-ca");
    let server = pki.join("server"); // mounted into the node as /certs
    let client = pki.join("client");
    make_ca(&ca, "unroot test CA");
    make_ca(&other_ca, "another CA");
    std::fs::create_dir_all(&server).unwrap();
    std::fs::copy(ca.join("ca.pem"), server.join("ca.pem")).unwrap();
    issue(
        &ca,
        &client,
        "unroot-client",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
        "2",
        ("cert.pem", "key.pem"),
    );
    let client_tls = ClientTls { ca: ca.join("ca.pem"), cert: client.join("cert.pem"), key: client.join("key.pem") };

    let options = NodeOptions {
        run_args: vec!["-v".into(), format!("{}:/certs:ro", server.display())],
        command: Some(tls_dockerd()),
        port: 2376,
        tls: Some(client_tls.clone()),
        ..NodeOptions::default()
    };
    let mut node = Node::spawn(&env, "tls", options);
    let ip = node.ip();
    issue(
        &ca,
        &server,
        "unroot-node",
        &format!(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:{ip}\n"
        ),
        "3",
        ("server-cert.pem", "server-key.pem"),
    );
    node.wait_ready();
    let endpoint = format!("tcp://{ip}:2376");
    // The node verifies its clients: the right CA without a client certificate is not let in
    // (the CLI would take one from DOCKER_CONFIG, an empty folder here).
    let empty = env.tempdir();
    let anonymous = Command::new("docker")
        .env("DOCKER_CONFIG", empty.path())
        .env_remove("DOCKER_CERT_PATH")
        .args(["--tls", "--tlscacert", &client_tls.ca.display().to_string(), "-H", &endpoint, "ps"])
        .output()
        .unwrap();
    assert!(!anonymous.status.success(), "a client without a certificate was let in");

    // One container of the test inside the node, and one on the shared daemon with the same
    // label: the audit through the context must show the first and only it.
    let busybox = image("busybox");
    node.load_image(&busybox);
    let inner = env.name("inner");
    node.docker(&["run", "-d", "--name", &inner, "--label", &env.label(), &busybox, "sleep", "1000000"]);
    let outer = env.run("outer", &[&busybox, "sleep", "1000000"]);

    let config = env.tempdir();
    let cfg = config.path();
    let path = |p: &PathBuf| p.display().to_string();
    let good = env.name("tls");
    let tls_files =
        format!("ca={},cert={},key={}", path(&client_tls.ca), path(&client_tls.cert), path(&client_tls.key));
    docker_cli(cfg, &["context", "create", &good, "--docker", &format!("host={endpoint},{tls_files}")]);
    // The docker CLI itself reaches the node with it: the context is right.
    assert_eq!(docker_cli(cfg, &["--context", &good, "ps", "--format", "{{.Names}}"]), inner);

    let (code, out, err) = audit(cfg, &env, &[], &["--context", &good]);
    assert_eq!(code, Some(0), "--context {good} ({endpoint}): {err}");
    assert_eq!(names(&out), vec![inner.clone()], "only the node's container, not {outer} of the shared daemon");
    let (code, out, err) = audit(cfg, &env, &[("DOCKER_CONTEXT", &good)], &[]);
    assert_eq!(code, Some(0), "DOCKER_CONTEXT={good} ({endpoint}): {err}");
    assert_eq!(names(&out), vec![inner.clone()]);

    // The same node and certificates, but told to skip verifying the server: refused, not
    // quietly trusted.
    let skip = env.name("skip");
    let skip_spec = format!("host={endpoint},{tls_files},skip-tls-verify=true");
    docker_cli(cfg, &["context", "create", &skip, "--docker", &skip_spec]);
    let (code, out, err) = audit(cfg, &env, &[], &["--context", &skip]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(failed_as(&out), "bad-input");
    assert!(err.contains(&skip) && err.contains("skips TLS verification"), "{err}");

    // A context that trusts another CA: the node's certificate does not verify, for the CLI
    // and for unroot, which names the endpoint and the context.
    let wrong = env.name("wrong-ca");
    let wrong_files =
        format!("ca={},cert={},key={}", path(&other_ca.join("ca.pem")), path(&client_tls.cert), path(&client_tls.key));
    docker_cli(cfg, &["context", "create", &wrong, "--docker", &format!("host={endpoint},{wrong_files}")]);
    let cli = Command::new("docker").env("DOCKER_CONFIG", cfg).args(["--context", &wrong, "ps"]).output().unwrap();
    assert!(!cli.status.success(), "the docker CLI does not trust the node through {wrong} either");
    let (code, out, err) = audit(cfg, &env, &[], &["--context", &wrong]);
    assert_eq!(code, Some(6), "{err}");
    assert_eq!(failed_as(&out), "daemon-unreachable");
    assert!(err.contains(&endpoint) && err.contains(&format!("context {wrong}")), "{err}");
}

#[test]
fn a_bind_source_that_is_a_link_into_etc_on_a_remote_daemons_host_is_blocked_there() {
    let env = TestEnv::new("ctx-bind");
    let node = Node::start(&env, "remote");
    let busybox = image("busybox");
    node.load_image(&busybox);
    // On the daemon's host (the node): /srv/data a directory, /srv/conf a link to /etc. On
    // this host neither exists, so nothing here could tell.
    crate::common::docker(&["exec", &node.name, "sh", "-c", "mkdir -p /srv/data && ln -s /etc /srv/conf"]);
    assert!(!Path::new("/srv/conf").exists() || std::fs::read_link("/srv/conf").is_err());
    node.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "-v",
        "/srv/conf:/conf",
        "-v",
        "/srv/data:/data",
        &busybox,
        "sleep",
        "1000000",
    ]);
    let dir = env.tempdir();
    let plan = dir.path().join("plan.toml");
    std::fs::write(&plan, "[rollout]\nname = \"remote\"\n[service.web]\nday = 1\nuser = \"1000:1000\"\n").unwrap();
    let out = unroot()
        .env("DOCKER_HOST", node.host())
        .env_remove("DOCKER_CONTEXT")
        .args(["plan", plan.to_str().unwrap(), "--day", "1", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "blocked: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let day: Value = serde_json::from_str(&stdout).unwrap();
    let blockers: Vec<String> =
        day["services"][0]["blockers"].as_array().unwrap().iter().map(|b| b.as_str().unwrap().to_string()).collect();
    assert_eq!(blockers.len(), 1, "{blockers:?}");
    assert!(blockers[0].starts_with("bind mount /srv/conf → /conf: it is /etc on the daemon's host"), "{blockers:?}");
    // The preview's probe is gone again.
    let left = node.docker(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(left, "web", "only the service: {left}");
}
