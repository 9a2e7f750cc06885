//! `DOCKER_HOST=ssh://…` against an sshd the test starts on this host (Debian's openssh-server,
//! a host key and a port of its own, key-only login, stopped at the end), reaching the
//! shared daemon through `docker system dial-stdio` as the docker CLI does. ssh is pointed at
//! the test's own client key and known_hosts through an `ssh` wrapper first on PATH, so the
//! operator's ~/.ssh is never read or written.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TestEnv, docker, image, inspect, owners, process_uids, unroot};

/// An sshd on 127.0.0.1 with its own keys, and ssh client settings that trust it.
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(path).output().unwrap();
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Sshd {
    fn start(env: &TestEnv) -> Sshd {
        let dir = env.tempdir();
        let d = dir.path().to_path_buf();
        let d = d.as_path();
        for key in ["host_key", "client_key", "stranger_key"] {
            keygen(&d.join(key));
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        // sshd's privilege separation needs this folder; it is empty and harmless.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nAuthorizedKeysFile {dir}/authorized_keys\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             UsePAM no\nStrictModes no\nPidFile {dir}/sshd.pid\n",
            dir = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .expect("sshd runs (openssh-server is installed by .ci/run)");
        let sshd = Sshd { child, port, dir };
        let host_key = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        let mut fields = host_key.split_whitespace();
        let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
        std::fs::write(d.join("known_hosts"), format!("[127.0.0.1]:{port} {kind} {key}\n")).unwrap();
        // A known_hosts that holds another key for the same address: what a reinstalled host
        // or a man in the middle looks like.
        let other = std::fs::read_to_string(d.join("stranger_key.pub")).unwrap();
        let other_key = other.split_whitespace().nth(1).unwrap().to_string();
        std::fs::write(d.join("known_hosts_changed"), format!("[127.0.0.1]:{port} {kind} {other_key}\n")).unwrap();
        sshd.wait_listening();
        sshd
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "sshd never listened: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    fn host(&self) -> String {
        format!("ssh://root@127.0.0.1:{}", self.port)
    }

    /// A folder with an `ssh` that uses `key` and `known_hosts` of the test, to put first on
    /// PATH.
    fn client(&self, name: &str, key: &str, known_hosts: &str) -> PathBuf {
        let d = self.dir.path();
        let bin = d.join(name);
        std::fs::create_dir_all(&bin).unwrap();
        let config = d.join(format!("{name}.config"));
        std::fs::write(
            &config,
            format!(
                "Host *\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n  StrictHostKeyChecking yes\n",
                key = d.join(key).display(),
                kh = d.join(known_hosts).display()
            ),
        )
        .unwrap();
        let wrapper = bin.join("ssh");
        std::fs::write(&wrapper, format!("#!/bin/sh\nexec /usr/bin/ssh -F {} \"$@\"\n", config.display())).unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `unroot ARGS` in `dir` through `ssh` from `bin`, with DOCKER_HOST set to `host`.
fn over_ssh(dir: &Path, bin: &Path, host: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = unroot()
        .current_dir(dir)
        .env("PATH", path)
        .env("DOCKER_HOST", host)
        .env_remove("DOCKER_CONTEXT")
        .args(args)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn audit_and_a_one_service_apply_work_over_ssh() {
    let env = TestEnv::new("ssh-apply");
    let sshd = Sshd::start(&env);
    let bin = sshd.client("ok", "client_key", "known_hosts");
    let vol = env.name("data");
    docker(&["volume", "create", "--label", &env.label(), &vol]);
    let svc = env.run(
        "svc",
        &["-v", &format!("{vol}:/data"), &image("busybox"), "sh", "-c", "echo kept > /data/note; exec sleep 1000000"],
    );
    let dir = env.tempdir();

    let filter = format!("label={}", env.label());
    let (code, out, err) = over_ssh(dir.path(), &bin, &sshd.host(), &["audit", "--json", "--filter", &filter]);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = v["containers"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["name"], svc.as_str());
    assert_eq!(rows[0]["class"], "root");

    std::fs::write(
        dir.path().join("plan.toml"),
        format!(
            "[rollout]\nname = \"ssh\"\nstable_for = \"1s\"\nstop_timeout = \"2s\"\n[service.{svc}]\nday = 1\nuser = \"1000:1000\"\n"
        ),
    )
    .unwrap();
    let (code, out, err) = over_ssh(
        dir.path(),
        &bin,
        &sshd.host(),
        &["apply", "plan.toml", "--day", "1", "--yes", "--state-dir", "state"],
    );
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}\nsshd:\n{}", sshd.log());
    // Over ssh unroot is not beside the daemon: re-owning runs in a helper container.
    assert!(out.contains("in a helper container"), "{out}");
    assert_eq!(inspect(&svc)["Config"]["User"], "1000:1000");
    assert_eq!(process_uids(&svc), [1000]);
    let files = owners(&env, &vol);
    assert!(files.iter().any(|f| f.ends_with("/d/note")), "{files:?}");
    assert!(files.iter().all(|f| f.starts_with("1000:1000 ")), "{files:?}");
    assert_eq!(docker(&["exec", &svc, "cat", "/data/note"]), "kept");
    // Connections are kept: the audit and the whole day logged in a handful of times, where
    // one login per request would be well over a hundred.
    let logins = sshd.log().matches("Accepted publickey").count();
    eprintln!("ssh logins for the audit and the day: {logins}");
    assert!((2..=20).contains(&logins), "{logins} logins:\n{}", sshd.log());
}

#[test]
fn a_changed_host_key_and_a_refused_login_are_exit_2_with_sshs_reason() {
    let env = TestEnv::new("ssh-refused");
    let sshd = Sshd::start(&env);
    let dir = env.tempdir();

    let changed = sshd.client("changed", "client_key", "known_hosts_changed");
    let (code, out, err) = over_ssh(dir.path(), &changed, &sshd.host(), &["audit"]);
    assert_eq!(code, Some(6), "{out}{err}");
    assert!(err.contains(&sshd.host()) && err.contains("from DOCKER_HOST"), "names the endpoint and its origin: {err}");
    assert!(err.contains("Host key verification failed"), "ssh's reason: {err}");

    let stranger = sshd.client("stranger", "stranger_key", "known_hosts");
    let (code, out, err) = over_ssh(dir.path(), &stranger, &sshd.host(), &["audit"]);
    assert_eq!(code, Some(6), "{out}{err}");
    assert!(err.contains(&sshd.host()), "{err}");
    assert!(err.contains("Permission denied (publickey)"), "ssh's reason: {err}");

    // The address itself is checked before ssh runs.
    let (code, _, err) = over_ssh(dir.path(), &changed, "ssh://root:secret@127.0.0.1", &["audit"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("password") && !err.contains("secret"), "{err}");
}
