//! `unroot init` against the real daemon: on a compose stack of the official-like images
//! started as root, the plan it writes checks, every day of it applies with no hand edit, and
//! every service ends at a non-root uid with its data; it places exceptions with their
//! controls and leaves non-root containers out; it flags a mount the new user cannot reach,
//! as the preview then blocks it; and it changes nothing on the daemon.

use std::path::Path;

use crate::common::official::{assert_all_at, official_image, wait_for_http_200};
use crate::common::stack::{PG_SECRET, StackUp, assert_at_999, assert_data, audit_classes};
use crate::common::{TestEnv, docker, image, inspect, unroot_in};
use serde_json::Value;

/// The filter that limits init to this test's containers (other tests run beside it).
fn only_mine(env: &TestEnv) -> String {
    format!("label={}", env.label())
}

/// Ids and start times of containers: init must leave both alone.
fn identities(names: &[&str]) -> Vec<(Value, Value)> {
    names.iter().map(|n| inspect(n)).map(|v| (v["Id"].clone(), v["State"]["StartedAt"].clone())).collect()
}

/// Volumes that probe containers named after `prefix` mounted between `since` and `until`
/// (unix seconds), as the daemon's events tell.
fn probe_volumes(prefix: &str, since: u64, until: u64) -> Vec<String> {
    let fmt = "{{.Type}} {{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"name\"}} {{index .Actor.Attributes \"container\"}}";
    let events = docker(&["events", "--since", &since.to_string(), "--until", &until.to_string(), "--format", fmt]);
    let probes: Vec<&str> = events
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4
                && f[0] == "container"
                && f[1] == "create"
                && f[3].starts_with(prefix)
                && f[3].ends_with(".unroot-probe"))
            .then_some(f[2])
        })
        .collect();
    assert!(!probes.is_empty(), "init read the images through probe containers:\n{events}");
    events
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[0] == "volume" && f[1] == "mount" && probes.contains(&f[f.len() - 1]))
                .then(|| f[2].to_string())
        })
        .collect()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The days of a plan file.
fn days(plan: &Path) -> Vec<i64> {
    let v: toml::Value = toml::from_str(&std::fs::read_to_string(plan).unwrap()).unwrap();
    let mut days: Vec<i64> =
        v["service"].as_table().unwrap().values().map(|s| s["day"].as_integer().unwrap()).collect();
    days.sort_unstable();
    days.dedup();
    days
}

#[test]
fn the_plan_init_writes_moves_an_official_stack_off_root_day_by_day() {
    let env = TestEnv::new("init-stack");
    let stack = StackUp::start(&env);
    let (dir, s) = (&stack.dir, &stack.s);
    // Beside the compose stack, nginx as the official image lays it out: master root,
    // workers nginx (101), temp paths and pid file where only root can write.
    let web = env.run("web", &["-p", "127.0.0.1::80", &official_image("nginxinc")]);
    wait_for_http_200(&web, 80);
    let all: Vec<&str> = s.all().into_iter().chain([web.as_str()]).collect();

    // init changes nothing: same containers, same starts, no probe left, no volume made.
    let before = identities(&all);
    let since = now();
    let init = unroot_in(dir.path(), &["init", "--filter", &only_mine(&env), "--out", "p.toml"]);
    assert_eq!(init.code, Some(0), "{}{}", init.stdout, init.stderr);
    let until = now() + 1;
    assert_eq!(identities(&all), before, "init touched a container");
    assert!(
        crate::common::containers_named(&format!("{}-", env.id)).iter().all(|n| !n.contains(".unroot-")),
        "a probe is left"
    );
    for v in probe_volumes(&env.id, since, until) {
        assert!(!docker_ok(&["volume", "inspect", &v]), "the probe's anonymous volume {v} is left");
    }
    let text = std::fs::read_to_string(dir.path().join("p.toml")).unwrap();
    for out in [&text, &init.stdout, &init.stderr] {
        assert!(!out.contains(PG_SECRET), "an environment value was printed:\n{out}");
    }
    // Each decision names its evidence; the entrypoints' own choice of uid is kept.
    assert_eq!(text.matches("already run as uid 999 (").count(), 3, "{text}");
    assert!(text.contains("# profile rabbitmq's probe; rabbitmq-diagnostics is in the image"), "{text}");
    // It refuses to overwrite, and --json carries the same decisions.
    let again = unroot_in(dir.path(), &["init", "--filter", &only_mine(&env), "--out", "p.toml"]);
    assert_eq!(again.code, Some(2), "{}{}", again.stdout, again.stderr);
    assert!(again.stderr.contains("p.toml exists"), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(dir.path().join("p.toml")).unwrap(), text, "not rewritten");
    let json = unroot_in(dir.path(), &["init", "--filter", &only_mine(&env), "--json"]);
    let doc: Value = serde_json::from_str(&json.stdout).unwrap_or_else(|e| panic!("{e}: {}", json.stdout));
    for svc in doc["services"].as_array().unwrap() {
        let name = svc["name"].as_str().unwrap();
        let user = if name == web { "101:101" } else { "999:999" };
        assert_eq!(svc["user"]["value"], user, "{name}");
        assert!(text.contains(&format!("[service.{name}]\n")), "{name} in the plan too");
    }
    // What the nginx profile knows is carried out: its runtime paths on tmpfs, owned by 101.
    let plan: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(
        plan["service"][&web]["tmpfs"],
        toml::Value::Array(vec!["/var/cache/nginx".into(), "/run".into()]),
        "{text}"
    );

    let check = unroot_in(dir.path(), &["check", "p.toml"]);
    assert_eq!(check.code, Some(0), "{}{}\n{text}", check.stdout, check.stderr);
    let days = days(&dir.path().join("p.toml"));
    assert_eq!(days, [1, 2, 3], "stateless, caches and queues, then the database:\n{text}");
    assert_eq!(plan["service"][&web]["day"].as_integer(), Some(1), "{text}");
    for day in days {
        let apply =
            unroot_in(dir.path(), &["apply", "p.toml", "--day", &day.to_string(), "--yes", "--state-dir", "state"]);
        assert_eq!(apply.code, Some(0), "day {day}\n{}\n{}\n{text}", apply.stdout, apply.stderr);
    }
    s.wait();
    assert_at_999(s, "after the days init planned");
    assert_data(s, 0, "after the days init planned");
    assert_all_at(&web, 101);
    wait_for_http_200(&web, 80);
    let verify = unroot_in(dir.path(), &["verify", "p.toml"]);
    assert_eq!(verify.code, Some(0), "{}{}", verify.stdout, verify.stderr);
    // No container of the stack runs as root any more (CIS 4.1): none is an exception here.
    let classes = audit_classes(dir.path(), &env);
    assert_eq!(classes.len(), 4, "{classes:?}");
    assert!(classes.iter().all(|(_, class)| class == "non-root"), "{classes:?}");

    // The next `up` with the override keeps them so.
    stack.up_with_override();
    s.wait();
    assert_at_999(s, "after compose up with the override");
    assert_data(s, 0, "after compose up with the override");
}

fn docker_ok(args: &[&str]) -> bool {
    crate::common::docker_raw(args).status.success()
}

#[test]
fn init_keeps_exceptions_on_root_with_controls_and_leaves_non_root_out() {
    let env = TestEnv::new("init-exc");
    let busybox = image("busybox");
    let vol = env.name("data");
    docker(&["volume", "create", "--label", &env.label(), &vol]);
    let sock = env.run(
        "agent",
        &["-v", "/var/run/docker.sock:/var/run/docker.sock", "--cap-add", "NET_ADMIN", &busybox, "sleep", "1000000"],
    );
    let procs = env.run("exporter", &["-v", "/proc:/host/proc:ro", &busybox, "sleep", "1000000"]);
    let fine = env.run("fine", &["--user", "1000:1000", &busybox, "sleep", "1000000"]);
    let plain = env.run("plain", &["-v", &format!("{vol}:/data"), &busybox, "sleep", "1000000"]);
    let dir = env.tempdir();
    let init = unroot_in(dir.path(), &["init", "--filter", &only_mine(&env), "--json", "--out", "p.toml"]);
    assert_eq!(init.code, Some(0), "{}{}", init.stdout, init.stderr);
    let doc: Value = serde_json::from_str(&init.stdout).unwrap();
    let svc = |n: &str| doc["services"].as_array().unwrap().iter().find(|s| s["name"] == n).cloned();
    let agent = svc(&sock).expect("the agent is in the plan");
    assert_eq!(agent["placement"], "exception");
    assert_eq!(agent["keep_root"], "mounts docker.sock");
    assert_eq!(agent["controls"]["cap_drop"], serde_json::json!(["ALL"]));
    assert_eq!(agent["controls"]["cap_add"], serde_json::json!(["NET_ADMIN"]));
    assert_eq!(agent["controls"]["no_new_privileges"], true);
    assert_eq!(agent["controls"]["read_only"]["value"], true, "sleep writes nothing: {agent}");
    let exporter = svc(&procs).unwrap();
    assert_eq!(exporter["keep_root"], "binds the host's /proc (/proc → /host/proc)");
    assert!(svc(&fine).is_none(), "already non-root");
    let left: Vec<&Value> = doc["left_out"].as_array().unwrap().iter().filter(|l| l["name"] == fine.as_str()).collect();
    assert_eq!(left[0]["why"], "already runs as uid 1000");
    let plain_svc = svc(&plain).unwrap();
    assert_eq!(
        (plain_svc["placement"].as_str(), plain_svc["user"]["value"].as_str()),
        (Some("migrate"), Some("1000:1000"))
    );
    assert_eq!(plain_svc["chown"]["value"], serde_json::json!(["/data"]));
    // Exceptions go on the last day; the plan checks.
    assert_eq!(agent["day"], plain_svc["day"]);
    let check = unroot_in(dir.path(), &["check", "p.toml"]);
    assert_eq!(check.code, Some(0), "{}{}", check.stdout, check.stderr);
}

#[test]
fn a_service_whose_data_is_under_a_0700_root_gets_a_day_alone_and_every_other_moves() {
    let env = TestEnv::new("init-0700");
    let tag = format!("unroot-test/{}:local", env.id);
    let ctx = env.tempdir();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {}\nRUN mkdir -p /root/data && chmod 0700 /root\nLABEL {}\n", image("busybox"), env.label()),
    )
    .unwrap();
    let built = std::process::Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--force-rm", "-q", "-t", &tag, &ctx.path().display().to_string()])
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let _image = RemoveImage(tag.clone());
    let vol = env.name("data");
    docker(&["volume", "create", "--label", &env.label(), &vol]);
    let llm = env.run("llm", &["-v", &format!("{vol}:/root/data"), &tag, "sleep", "1000000"]);
    // Two that can move: a cache by its port, a worker with data of its own.
    let busybox = image("busybox");
    let cache = env.run("cache", &["--expose", "6379", &busybox, "sleep", "1000000"]);
    let wvol = env.name("work");
    docker(&["volume", "create", "--label", &env.label(), &wvol]);
    let worker = env
        .run("worker", &["-v", &format!("{wvol}:/work"), &busybox, "sh", "-c", "echo 1 > /work/f; exec sleep 1000000"]);
    let before = identities(&[&llm]);

    let dir = env.tempdir();
    let init = unroot_in(dir.path(), &["init", "--filter", &only_mine(&env), "--out", "p.toml"]);
    assert_eq!(init.code, Some(0), "{}{}", init.stdout, init.stderr);
    let text = std::fs::read_to_string(dir.path().join("p.toml")).unwrap();
    let why = "/root/data lies inside /root (mode 0700, owner 0:0), which uid 1000 cannot pass through";
    assert!(text.contains(&format!("# BLOCKED: {why}")), "{text}");
    let plan: toml::Value = toml::from_str(&text).unwrap();
    let day = |n: &str| plan["service"][n]["day"].as_integer().unwrap();
    assert_eq!((day(&cache), day(&worker), day(&llm)), (1, 2, 3), "a day of its own, after the others:\n{text}");
    assert!(
        init.stdout.contains(&format!("BLOCKED {llm}: on day 3 alone, after the others, until fixed: {why}")),
        "the summary names it with the reason: {}",
        init.stdout
    );

    // Every other day applies with no edit; the blocked one is refused before anything stops.
    for d in ["1", "2"] {
        let apply = unroot_in(dir.path(), &["apply", "p.toml", "--day", d, "--yes", "--state-dir", "state"]);
        assert_eq!(apply.code, Some(0), "day {d}\n{}{}\n{text}", apply.stdout, apply.stderr);
    }
    assert_eq!(crate::common::process_uids(&cache), [1000]);
    assert_eq!(crate::common::process_uids(&worker), [1000]);
    assert_eq!(docker(&["exec", &worker, "cat", "/work/f"]), "1", "its data moved with it");
    let plan3 = unroot_in(dir.path(), &["plan", "p.toml", "--day", "3", "--state-dir", "state"]);
    assert_eq!(plan3.code, Some(1), "{}{}", plan3.stdout, plan3.stderr);
    assert!(plan3.stdout.contains(why), "{}{}", plan3.stdout, plan3.stderr);
    let apply = unroot_in(dir.path(), &["apply", "p.toml", "--day", "3", "--yes", "--state-dir", "state"]);
    assert_eq!(apply.code, Some(1), "{}{}", apply.stdout, apply.stderr);
    assert_eq!(identities(&[&llm]), before, "it stays as it was: not stopped, not recreated");
    assert_eq!(crate::common::process_uids(&llm), [0]);
}

/// Removes a test's image when dropped.
struct RemoveImage(String);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = crate::common::docker_raw(&["rmi", "-f", &self.0]);
    }
}

#[test]
fn init_refuses_a_bad_profiles_file_before_asking_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.toml"), "[profile.x]\nkind = \"database\"\nsource = \"s\"\ncolour = 1\n")
        .unwrap();
    let run = unroot_in(dir.path(), &["init", "--profiles", "mine.toml"]);
    assert_eq!(run.code, Some(2), "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("mine.toml: line 4: unknown field `colour`"), "{}", run.stderr);
}

/// Waits until Docker reports `name` healthy; panics with its log after two minutes.
fn wait_healthy(name: &str) {
    crate::common::official::wait_until(name, "healthy", crate::common::official::START_TIMEOUT, || {
        inspect(name)["State"]["Health"]["Status"] == "healthy"
    });
}

#[test]
fn mariadb_whose_healthcheck_switches_user_moves_to_999_with_the_check_init_rewrites() {
    let env = TestEnv::new("init-mariadb");
    let vol = env.name("data");
    docker(&["volume", "create", "--label", &env.label(), &vol]);
    let secret = "mdb-root-pw-7c31";
    // As compose files write it (MariaDB/mariadb-docker #573): the check switches to mysql.
    let db = env.run(
        "db",
        &[
            "-e",
            &format!("MARIADB_ROOT_PASSWORD={secret}"),
            "-v",
            &format!("{vol}:/var/lib/mysql"),
            "--health-cmd",
            "healthcheck.sh --su-mysql --connect --innodb_initialized",
            "--health-interval",
            "2s",
            &official_image("mariadb"),
        ],
    );
    wait_healthy(&db);
    let sql = |q: &str| docker(&["exec", &db, "mariadb", "-uroot", &format!("-p{secret}"), "-N", "-B", "-e", q]);
    sql(
        "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY); INSERT INTO shop.orders VALUES (1), (2), (3)",
    );
    assert_eq!(crate::common::process_uids(&db), [999], "the entrypoint dropped to mysql");

    let dir = env.tempdir();
    // Moved with its own check, it could never be healthy: the preview says so and how.
    std::fs::write(
        dir.path().join("bare.toml"),
        format!("[rollout]\nname = \"bare\"\n[service.{db}]\nday = 1\nuser = \"999:999\"\n"),
    )
    .unwrap();
    let bare = unroot_in(dir.path(), &["plan", "bare.toml", "--day", "1", "--state-dir", "state"]);
    assert_eq!(bare.code, Some(1), "{}{}", bare.stdout, bare.stderr);
    assert!(
        bare.stdout.contains("switches user itself, which fails once it is not root (MariaDB/mariadb-docker #648): set healthcheck = [\"CMD-SHELL\",\"healthcheck.sh --connect --innodb_initialized\"]"),
        "{}",
        bare.stdout
    );

    let init = unroot_in(dir.path(), &["init", "--filter", &only_mine(&env), "--out", "p.toml"]);
    assert_eq!(init.code, Some(0), "{}{}", init.stdout, init.stderr);
    let text = std::fs::read_to_string(dir.path().join("p.toml")).unwrap();
    assert!(!text.contains(secret) && !init.stdout.contains(secret), "a password was printed");
    assert!(
        text.contains("healthcheck = [\"CMD-SHELL\", \"healthcheck.sh --connect --innodb_initialized\"]"),
        "{text}"
    );
    let apply = unroot_in(dir.path(), &["apply", "p.toml", "--day", "1", "--yes", "--state-dir", "state"]);
    assert_eq!(apply.code, Some(0), "{}\n{}\n{text}", apply.stdout, apply.stderr);
    assert_eq!(inspect(&db)["Config"]["User"], "999:999");
    assert_eq!(crate::common::process_uids(&db), [999]);
    wait_healthy(&db);
    assert_eq!(sql("SELECT COUNT(*) FROM shop.orders"), "3", "its data");
    sql("INSERT INTO shop.orders VALUES (4)");
    let verify = unroot_in(dir.path(), &["verify", "p.toml"]);
    assert_eq!(verify.code, Some(0), "{}{}", verify.stdout, verify.stderr);
}
