//! Installing unroot as the README says, on a clean Debian 12 container (apt and
//! ca-certificates, no Rust, no network): the binary `cargo install --locked --path .`
//! installs, and the `.deb` packaging/build-deb.sh makes of it, each check a plan there (exit
//! 0 on a valid one, 2 on an invalid one); the package installs with dpkg, lists its man page
//! and completions, verifies and purges cleanly, and builds to the same bytes twice.
//!
//! One release build serves both tests: it is their cost (minutes cold, seconds when
//! target/release is warm, as `cargo install --path` builds in the workspace's target
//! folder). It installs into target/tmp/cargo-install, which every run replaces.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use crate::common::{Run, TestEnv, debian_base, docker, docker_raw, repo_path};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The unroot that `cargo install --locked --offline --path . --root DIR` installs, built
/// the first time a test of this process asks.
fn installed() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cargo-install");
        let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cargo.current_dir(repo_path("")).args(["install", "--locked", "--offline", "--path", ".", "--root"]).arg(&root);
        // Without what `cargo test` sets for this test binary: ring's build script reruns when
        // CARGO_MANIFEST_DIR changes, and with it every crate above ring, so the release build
        // .ci/run made (or a user's) would be rebuilt for minutes instead of reused.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if ["CARGO_MANIFEST_", "CARGO_PKG_", "CARGO_BIN_", "CARGO_CRATE_", "CARGO_PRIMARY_"]
                .iter()
                .any(|p| key.starts_with(p))
            {
                cargo.env_remove(key.as_ref());
            }
        }
        let started = Instant::now();
        let out = cargo.output().expect("cargo runs");
        assert!(out.status.success(), "cargo install failed:\n{}", String::from_utf8_lossy(&out.stderr));
        eprintln!("cargo install --locked --path . took {:.1?}", started.elapsed());
        root.join("bin/unroot")
    })
}

/// A fresh container of the clean Debian image, this test's, idle until the test ends.
fn clean_debian(env: &TestEnv, short: &str) -> String {
    env.run(short, &["--network", "none", "-w", "/root", debian_base(), "sleep", "infinity"])
}

/// `docker exec CONTAINER ARGS` in /root.
fn exec(container: &str, args: &[&str]) -> Run {
    let mut full = vec!["exec", "-e", "NO_COLOR=1", container];
    full.extend_from_slice(args);
    let out = docker_raw(&full);
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What a user checks first with the `unroot` found on the PATH at `expected`: its version,
/// a valid plan (exit 0, summary on stdout) and an invalid one (exit 2, the error with its
/// place on stderr).
fn assert_checks_plans(env: &TestEnv, container: &str, expected: &str) {
    let which = exec(container, &["sh", "-c", "command -v unroot"]);
    assert_eq!(which.stdout.trim(), expected, "unroot on the PATH: {}", which.stderr);
    let version = exec(container, &["unroot", "--version"]);
    assert_eq!((version.code, version.stdout.trim()), (Some(0), format!("unroot {VERSION}").as_str()));

    let dir = env.tempdir();
    std::fs::copy(repo_path("tests/plans/minimal.toml"), dir.path().join("plan.toml")).unwrap();
    std::fs::write(dir.path().join("bad.toml"), "[rollout]\nname = \"t\"\n\n[service.db]\nday = 1\nuser = \"root\"\n")
        .unwrap();
    for f in ["plan.toml", "bad.toml"] {
        docker(&["cp", dir.path().join(f).to_str().unwrap(), &format!("{container}:/root/{f}")]);
    }

    let ok = exec(container, &["unroot", "check", "plan.toml"]);
    assert_eq!(ok.code, Some(0), "check of a valid plan: {}", ok.stderr);
    assert!(ok.stdout.contains("plan.toml: ok: plan `minimal`, 1 services over 1 days"), "{}", ok.stdout);
    let bad = exec(container, &["unroot", "check", "bad.toml"]);
    assert_eq!(bad.code, Some(2), "check of an invalid plan: {}{}", bad.stdout, bad.stderr);
    assert!(bad.stderr.contains("bad.toml:6:8: `user` = \"root\" is root"), "{}", bad.stderr);
}

#[test]
fn cargo_install_gives_an_unroot_that_checks_plans_on_a_clean_debian() {
    let bin = installed();
    let env = TestEnv::new("inst-cargo");
    let debian = clean_debian(&env, "debian");
    // Nothing of Rust there: what runs is the installed binary alone.
    assert_ne!(exec(&debian, &["sh", "-c", "command -v cargo || command -v rustc"]).code, Some(0));
    docker(&["cp", bin.to_str().unwrap(), &format!("{debian}:/usr/local/bin/unroot")]);
    assert_checks_plans(&env, &debian, "/usr/local/bin/unroot");
}

/// `bash packaging/build-deb.sh -o OUT BINARY`; the path of the .deb it printed.
fn build_deb(bin: &Path, out: &Path) -> PathBuf {
    let started = Instant::now();
    let run = Command::new("bash")
        .arg(repo_path("packaging/build-deb.sh"))
        .arg("-o")
        .arg(out)
        .arg(bin)
        .output()
        .expect("bash runs build-deb.sh");
    assert!(run.status.success(), "build-deb.sh failed:\n{}", String::from_utf8_lossy(&run.stderr));
    eprintln!("build-deb.sh took {:.1?}", started.elapsed());
    let deb = PathBuf::from(String::from_utf8_lossy(&run.stdout).trim());
    assert!(deb.starts_with(out) && deb.is_file(), "build-deb.sh printed {}", deb.display());
    deb
}

/// The files the package must install for `man unroot` (and a page per command) and
/// completion in three shells.
const PACKAGED: [&str; 7] = [
    "/usr/bin/unroot",
    "/usr/share/man/man1/unroot.1.gz",
    "/usr/share/man/man1/unroot-apply.1.gz",
    "/usr/share/man/man1/unroot-report.1.gz",
    "/usr/share/bash-completion/completions/unroot",
    "/usr/share/zsh/vendor-completions/_unroot",
    "/usr/share/fish/vendor_completions.d/unroot.fish",
];

#[test]
fn the_deb_installs_on_a_clean_debian_with_its_man_page_and_completions() {
    let bin = installed();
    let env = TestEnv::new("inst-deb");
    let dir = env.tempdir();
    let deb = build_deb(bin, &dir.path().join("a"));
    let arch = Command::new("dpkg").arg("--print-architecture").output().unwrap();
    let arch = String::from_utf8_lossy(&arch.stdout).trim().to_string();
    assert_eq!(deb.file_name().unwrap().to_str().unwrap(), format!("unroot_{VERSION}_{arch}.deb"));
    // Reproducible: built again from the same binary, the same bytes.
    let again = build_deb(bin, &dir.path().join("b"));
    assert!(std::fs::read(&deb).unwrap() == std::fs::read(&again).unwrap(), "two builds of the .deb differ");
    // Every entry root's, folders and the binary 0755, every other file 0644.
    let listing = Command::new("dpkg-deb").arg("-c").arg(&deb).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    for line in listing.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (mode, owner, path) = (f[0], f[1], f[f.len() - 1]);
        let want = match path {
            _ if path.ends_with('/') => "drwxr-xr-x",
            "./usr/bin/unroot" => "-rwxr-xr-x",
            _ => "-rw-r--r--",
        };
        assert_eq!((mode, owner), (want, "root/root"), "{line}");
    }

    let debian = clean_debian(&env, "debian");
    docker(&["cp", deb.to_str().unwrap(), &format!("{debian}:/tmp/unroot.deb")]);
    let install = exec(&debian, &["dpkg", "-i", "/tmp/unroot.deb"]);
    assert_eq!(install.code, Some(0), "dpkg -i: {}{}", install.stdout, install.stderr);
    let status = exec(&debian, &["dpkg", "-s", "unroot"]);
    assert!(status.stdout.contains("Status: install ok installed"), "dpkg -s unroot: {}", status.stdout);
    assert!(status.stdout.contains(&format!("\nVersion: {VERSION}\n")), "{}", status.stdout);
    let files = exec(&debian, &["dpkg", "-L", "unroot"]);
    let files: Vec<&str> = files.stdout.lines().collect();
    for want in PACKAGED.iter().chain(&["/usr/share/doc/unroot/copyright", "/usr/share/doc/unroot/changelog.gz"]) {
        assert!(files.contains(want), "dpkg -L unroot lists no {want}:\n{}", files.join("\n"));
    }
    // Every file as the package's md5sums say.
    let verify = exec(&debian, &["dpkg", "--verify", "unroot"]);
    assert_eq!((verify.code, verify.stdout.as_str()), (Some(0), ""), "dpkg --verify: {}", verify.stderr);

    assert_checks_plans(&env, &debian, "/usr/bin/unroot");
    // The man page is unroot's, and bash takes the completion.
    let man = exec(&debian, &["sh", "-c", "zcat /usr/share/man/man1/unroot.1.gz"]);
    assert!(man.stdout.contains(".TH unroot 1") && man.stdout.contains("unroot \\- Move running"), "{}", man.stdout);
    let complete =
        exec(&debian, &["bash", "-c", ". /usr/share/bash-completion/completions/unroot && complete -p unroot"]);
    assert!(complete.stdout.contains("-F _unroot unroot"), "{}{}", complete.stdout, complete.stderr);
    let license = exec(&debian, &["cat", "/usr/share/doc/unroot/copyright"]);
    assert!(license.stdout.contains("License: MIT or Apache-2.0"), "{}", license.stdout);

    // And it goes without a trace.
    let purge = exec(&debian, &["dpkg", "--purge", "unroot"]);
    assert_eq!(purge.code, Some(0), "dpkg --purge: {}", purge.stderr);
    for path in PACKAGED {
        assert_ne!(exec(&debian, &["test", "-e", path]).code, Some(0), "{path} is left after the purge");
    }
}
