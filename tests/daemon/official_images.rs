//! The official-like images (tests/fixtures/build-official-images.sh) behave as the Docker
//! Hub images they stand for, at the points unroot meets: who each process runs as, what
//! the entrypoint re-owns, when it drops root, and when the server refuses to start. The
//! migration tests on them (tests/official_stack_e2e.rs) are worth only what these prove.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::common::official::{
    assert_all_at, exec_ok, logs, official_image, psql, run_redis, top, wait_for_exit, wait_for_postgres,
    wait_for_rabbitmq, wait_for_redis_pong, wait_until,
};
use crate::common::{TestEnv, docker, docker_raw, in_volume, inspect, owners};

const PGDATA: &str = "/var/lib/postgresql/data";

/// A labelled volume of this test.
fn volume(env: &TestEnv, short: &str) -> String {
    let name = env.name(short);
    docker(&["volume", "create", "--label", &env.label(), &name]);
    name
}

/// The uid of each `uid:gid path` line of [`owners`].
fn uids(lines: &[String]) -> Vec<(u32, String)> {
    lines
        .iter()
        .map(|l| {
            let (owner, path) = l.split_once(' ').unwrap();
            (owner.split(':').next().unwrap().parse().unwrap(), path.to_string())
        })
        .collect()
}

#[test]
fn postgres_as_root_reowns_pgdata_drops_to_999_and_takes_passwords_from_the_network() {
    let env = TestEnv::new("off-pg-root");
    let vol = volume(&env, "pgdata");
    // The volume's root as root left it: the entrypoint must give it to postgres.
    in_volume(&env, &format!("{vol}:/d"), "chown 0:0 /d && chmod 0755 /d");
    let secret = "pg-root-pw-5d1e";
    let pg = env.run(
        "pg",
        &["-e", &format!("POSTGRES_PASSWORD={secret}"), "-v", &format!("{vol}:{PGDATA}"), &official_image("postgres")],
    );
    wait_for_postgres(&pg);

    assert_eq!(inspect(&pg)["Config"]["User"], "", "configured as root, as the official image");
    assert_all_at(&pg, 999);
    let files = owners(&env, &vol);
    assert!(files.iter().any(|f| f.ends_with("/d/PG_VERSION")), "initdb ran: {files:?}");
    for (uid, path) in uids(&files) {
        assert_eq!(uid, 999, "{path} is not postgres's: {files:?}");
    }
    assert_eq!(in_volume(&env, &format!("{vol}:/d"), "stat -c '%a %u' /d"), "700 999");

    // Every host may connect with the password, and only with it.
    let hba = docker(&["exec", &pg, "cat", &format!("{PGDATA}/pg_hba.conf")]);
    assert!(hba.lines().any(|l| l.trim() == "host all all all scram-sha-256"), "{hba}");
    let ip = inspect(&pg)["NetworkSettings"]["IPAddress"].as_str().unwrap().to_string();
    let with = |pw: &str| {
        docker_raw(&[
            "exec",
            "-e",
            &format!("PGPASSWORD={pw}"),
            &pg,
            "psql",
            "-h",
            &ip,
            "-U",
            "postgres",
            "-tAc",
            "select 40 + 2",
        ])
    };
    let good = with(secret);
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    assert_eq!(String::from_utf8_lossy(&good.stdout).trim(), "42");
    let bad = with("not-the-password");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("password authentication failed"));
}

#[test]
fn postgres_as_999_initialises_a_fresh_volume_without_chown() {
    let env = TestEnv::new("off-pg-999");
    let vol = volume(&env, "pgdata");
    let pg = env.run(
        "pg",
        &[
            "--user",
            "999:999",
            "-e",
            "POSTGRES_PASSWORD=pw-999",
            "-v",
            &format!("{vol}:{PGDATA}"),
            &official_image("postgres"),
        ],
    );
    wait_for_postgres(&pg);
    assert_all_at(&pg, 999);
    assert_eq!(in_volume(&env, &format!("{vol}:/d"), "cat /d/PG_VERSION"), "15");
    for (uid, path) in uids(&owners(&env, &vol)) {
        assert_eq!(uid, 999, "{path}");
    }
    assert_eq!(psql(&pg, "select current_user"), "postgres");
}

#[test]
fn postgres_as_a_uid_without_a_passwd_entry_initialises_through_nss_wrapper_where_it_owns_pgdata() {
    // Declared before the environment, so that its containers are gone before it is removed.
    let host_dir = tempfile::Builder::new().prefix("ut-off-pg-nss").tempdir().unwrap();
    let env = TestEnv::new("off-pg-nss");
    let pgdata = host_dir.path().join("pgdata");
    std::fs::create_dir(&pgdata).unwrap();
    std::os::unix::fs::chown(&pgdata, Some(12345), Some(12345)).unwrap();
    std::fs::set_permissions(&pgdata, std::fs::Permissions::from_mode(0o700)).unwrap();
    let img = official_image("postgres");
    let pg = env.run(
        "pg",
        &[
            "--user",
            "12345:12345",
            "-e",
            "POSTGRES_PASSWORD=pw-nss",
            "-v",
            &format!("{}:{PGDATA}", pgdata.display()),
            &img,
        ],
    );
    wait_for_postgres(&pg);
    assert_all_at(&pg, 12345);
    assert_eq!(psql(&pg, "select current_user"), "postgres", "the superuser initdb named through nss_wrapper");

    // A fresh volume belongs to 999 (the image's directory): that uid cannot make it 0700, and
    // initdb stops, as with the official image.
    let vol = volume(&env, "fresh");
    let failed = env.run(
        "pg-fresh",
        &["--user", "12345:12345", "-e", "POSTGRES_PASSWORD=pw-nss", "-v", &format!("{vol}:{PGDATA}"), &img],
    );
    assert_ne!(wait_for_exit(&failed, Duration::from_secs(60)), 0);
    let log = logs(&failed);
    assert!(log.contains("could not change permissions of directory"), "{log}");
}

#[test]
fn redis_as_root_reowns_only_what_redis_does_not_own_and_runs_as_999() {
    let env = TestEnv::new("off-redis-root");
    let vol = volume(&env, "data");
    in_volume(
        &env,
        &format!("{vol}:/d"),
        "chown 0:0 /d && touch /d/left-by-root && mkdir /d/sub && touch /d/sub/by-1000 && chown 1000:1000 /d/sub/by-1000 \
         && touch /d/by-redis && chown 999:1234 /d/by-redis",
    );
    let redis = run_redis(&env, "redis", &vol, &[]);
    wait_for_redis_pong(&redis);
    assert_eq!(inspect(&redis)["Config"]["User"], "");
    assert_all_at(&redis, 999);
    assert_eq!(docker(&["exec", &redis, "redis-cli", "set", "k", "v"]), "OK");

    let files = owners(&env, &vol);
    for (uid, path) in uids(&files) {
        assert_eq!(uid, 999, "{path}: {files:?}");
    }
    // Only the user changes, and only where it was not redis already.
    assert!(files.contains(&"999:0 /d/left-by-root".to_string()), "{files:?}");
    assert!(files.contains(&"999:1000 /d/sub/by-1000".to_string()), "{files:?}");
    assert!(files.contains(&"999:1234 /d/by-redis".to_string()), "{files:?}");
    assert!(files.iter().any(|f| f.contains("/d/appendonlydir/")), "the AOF is there: {files:?}");
}

#[test]
fn redis_without_the_capabilities_to_drop_stays_root_silently() {
    let env = TestEnv::new("off-redis-nocap");
    let img = official_image("redis");
    let redis = env.run("redis", &["--cap-drop", "ALL", &img]);
    wait_for_redis_pong(&redis);
    assert_all_at(&redis, 0);
    let log = logs(&redis);
    for word in ["gosu", "Operation not permitted", "chown"] {
        assert!(!log.contains(word), "the entrypoint says nothing ({word}):\n{log}");
    }

    // Without SETUID and SETGID alone it keeps root too, and (root still overriding file
    // permissions) writes its AOF as root: the hazard of a partial hardening.
    let vol = volume(&env, "data");
    let partial = run_redis(&env, "redis-partial", &vol, &["--cap-drop", "SETUID", "--cap-drop", "SETGID"]);
    wait_for_redis_pong(&partial);
    assert_all_at(&partial, 0);
    let aof: Vec<(u32, String)> =
        uids(&owners(&env, &vol)).into_iter().filter(|(_, p)| p.contains("appendonlydir")).collect();
    assert!(!aof.is_empty());
    assert!(aof.iter().all(|(uid, _)| *uid == 0), "{aof:?}");

    // With a user of its own, it needs no capability at all.
    let as_999 = env.run("redis-999", &["--user", "999:999", "--cap-drop", "ALL", &img]);
    wait_for_redis_pong(&as_999);
    assert_all_at(&as_999, 999);
}

/// A volume for /var/lib/rabbitmq as the image fills a fresh one, plus a cookie owned by
/// `owner` with `mode`, written by root in a throwaway container of the image.
fn volume_with_cookie(env: &TestEnv, short: &str, owner: &str, mode: &str) -> String {
    let vol = volume(env, short);
    let c = "/var/lib/rabbitmq/.erlang.cookie";
    docker(&[
        "run",
        "--rm",
        "--label",
        &env.label(),
        "--entrypoint",
        "sh",
        "-v",
        &format!("{vol}:/var/lib/rabbitmq"),
        &official_image("rabbitmq"),
        "-c",
        &format!("printf SEEDEDCOOKIE{short} > {c} && chown {owner} {c} && chmod {mode} {c}"),
    ]);
    vol
}

#[test]
fn rabbitmq_as_root_reowns_its_data_keeps_the_cookie_mode_and_names_the_node_after_the_hostname() {
    let env = TestEnv::new("off-rabbit-root");
    let vol = volume_with_cookie(&env, "data", "1000:1000", "0400");
    in_volume(&env, &format!("{vol}:/d"), "touch /d/left-by-root && chown 0:0 /d");
    let rabbit = env.run("rabbit", &["-v", &format!("{vol}:/var/lib/rabbitmq"), &official_image("rabbitmq")]);
    wait_for_rabbitmq(&rabbit);
    assert_all_at(&rabbit, 999);
    assert!(top(&rabbit).iter().any(|p| p.args.contains("beam.smp")), "the Erlang VM runs: {:?}", top(&rabbit));

    let files = owners(&env, &vol);
    for (uid, path) in uids(&files) {
        assert_eq!(uid, 999, "{path}: {files:?}");
    }
    assert_eq!(
        in_volume(&env, &format!("{vol}:/d"), "stat -c '%a %u' /d/.erlang.cookie && cat /d/.erlang.cookie"),
        "400 999\nSEEDEDCOOKIEdata",
        "the cookie is re-owned, never rewritten nor re-moded"
    );
    // The node, and so its data, is named after the container's hostname (its short id here).
    let hostname = inspect(&rabbit)["Config"]["Hostname"].as_str().unwrap().to_string();
    assert!(files.iter().any(|f| f.ends_with(&format!("/d/mnesia/rabbit@{hostname}"))), "{hostname}: {files:?}");
    let status = docker(&["exec", &rabbit, "rabbitmq-diagnostics", "-q", "ping"]);
    assert!(status.contains("succeeded") || status.is_empty(), "{status}");
}

#[test]
fn rabbitmq_as_a_uid_refuses_a_cookie_of_another_uid_or_one_others_may_read() {
    let env = TestEnv::new("off-rabbit-cookie");
    let img = official_image("rabbitmq");
    let cases = [
        ("other-owner", "1000:1000", "0400", "Error when reading /var/lib/rabbitmq/.erlang.cookie: eacces"),
        ("world-readable", "999:999", "0644", "must be accessible by owner only"),
        ("good", "999:999", "0400", ""),
    ];
    let mut started = Vec::new();
    for (short, owner, mode, _) in cases {
        let vol = volume_with_cookie(&env, short, owner, mode);
        let name = env.run(short, &["--user", "999:999", "-v", &format!("{vol}:/var/lib/rabbitmq"), &img]);
        started.push((name, vol));
    }
    for ((name, vol), (short, owner, mode, refusal)) in started.iter().zip(cases) {
        let expected_stat = format!("{} {}", mode.trim_start_matches('0'), owner.split(':').next().unwrap());
        if refusal.is_empty() {
            wait_for_rabbitmq(name);
            assert_all_at(name, 999);
        } else {
            wait_for_exit(name, Duration::from_secs(90));
            let log = logs(name);
            assert!(log.contains(refusal), "{short}: the node refuses the cookie ({refusal}):\n{log}");
            assert!(!log.contains("Server startup complete"), "{short}:\n{log}");
        }
        // Nothing papered over it: the cookie is as it was.
        assert_eq!(
            in_volume(&env, &format!("{vol}:/d"), "stat -c '%a %u' /d/.erlang.cookie"),
            expected_stat,
            "{short}"
        );
    }
}

#[test]
fn nginx_master_runs_as_root_and_its_workers_as_www_data() {
    let env = TestEnv::new("off-nginx");
    let nginx = env.run("nginx", &[&official_image("nginx")]);
    wait_until(&nginx, "nginx workers", Duration::from_secs(60), || {
        top(&nginx).iter().any(|p| p.args.contains("worker process"))
    });
    let procs = top(&nginx);
    let master: Vec<_> = procs.iter().filter(|p| p.args.contains("master process")).collect();
    assert_eq!(master.len(), 1, "{procs:?}");
    assert_eq!(master[0].uid, 0, "{procs:?}");
    let workers: Vec<_> = procs.iter().filter(|p| !p.args.contains("master process")).collect();
    assert!(!workers.is_empty(), "{procs:?}");
    assert!(workers.iter().all(|p| p.uid == 33 && p.args.contains("worker process")), "{procs:?}");

    let page = "exec 3<>/dev/tcp/127.0.0.1/80; printf 'GET / HTTP/1.0\\r\\nHost: t\\r\\n\\r\\n' >&3; cat <&3";
    wait_until(&nginx, "the default page", Duration::from_secs(30), || exec_ok(&nginx, &["bash", "-c", page]));
    let reply = docker(&["exec", &nginx, "bash", "-c", page]);
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(reply.contains("Welcome to nginx!"), "{reply}");
}
