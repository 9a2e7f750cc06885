//! A docker-compose 1.x stack of the official-like postgres, redis and rabbitmq images, all
//! started as root with data in them, and the checks an operator makes on it: who each
//! process runs as, whether each server answers, whether its rows, keys, vhost and user are
//! still there.

use std::path::Path;

use serde_json::Value;

use super::official::{
    assert_all_at, official_image, psql, rabbitmqctl, wait_for_postgres, wait_for_rabbitmq, wait_for_redis_pong,
};
use super::{LABEL, TestEnv, compose, docker, inspect, unroot_in};

/// The three services of the stack, by container name.
pub struct Stack {
    pub postgres: String,
    pub redis: String,
    pub rabbitmq: String,
}

impl Stack {
    pub fn of(env: &TestEnv) -> Stack {
        Stack { postgres: env.name("postgres"), redis: env.name("redis"), rabbitmq: env.name("rabbitmq") }
    }

    pub fn all(&self) -> [&str; 3] {
        [&self.postgres, &self.redis, &self.rabbitmq]
    }

    pub fn wait(&self) {
        wait_for_postgres(&self.postgres);
        wait_for_redis_pong(&self.redis);
        wait_for_rabbitmq(&self.rabbitmq);
    }
}

pub const PG_SECRET: &str = "stack-pg-pw-7e21c9";
pub const RABBIT_USER: &str = "unroot-user";
pub const RABBIT_PASSWORD: &str = "rabbit-pw-0b4d6a";
pub const RABBIT_VHOST: &str = "unroot-vh";

/// The compose file: each service labelled, named, with a named volume for its data; the
/// volumes and the project's network labelled too. RabbitMQ gets a hostname, as its image's
/// documentation asks: its node, and so its data, is named after it, and compose would give
/// every new container another one.
pub fn compose_file(env: &TestEnv, s: &Stack) -> String {
    let label = format!("      {LABEL}: {}\n", env.id);
    format!(
        r#"version: "2.4"
services:
  postgres:
    image: {pg_img}
    container_name: {pg}
    environment:
      POSTGRES_PASSWORD: {PG_SECRET}
    stop_grace_period: 30s
    labels:
{label}    volumes:
      - pgdata:/var/lib/postgresql/data
  redis:
    image: {redis_img}
    container_name: {redis}
    command: ["redis-server", "--appendonly", "yes", "--protected-mode", "no"]
    stop_grace_period: 30s
    labels:
{label}    volumes:
      - redisdata:/data
  rabbitmq:
    image: {rabbit_img}
    container_name: {rabbit}
    hostname: rabbit-stack
    stop_grace_period: 30s
    labels:
{label}    volumes:
      - rabbitdata:/var/lib/rabbitmq
volumes:
  pgdata:
    labels:
{label}  redisdata:
    labels:
{label}  rabbitdata:
    labels:
{label}networks:
  default:
    labels:
{label}"#,
        pg_img = official_image("postgres"),
        redis_img = official_image("redis"),
        rabbit_img = official_image("rabbitmq"),
        pg = s.postgres,
        redis = s.redis,
        rabbit = s.rabbitmq,
    )
}

/// Rows in postgres, keys in redis (in its AOF), a vhost and a user in rabbitmq.
pub fn put_data(s: &Stack) {
    psql(
        &s.postgres,
        "CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL); \
         INSERT INTO orders SELECT g, 'item-' || g FROM generate_series(1, 1000) g",
    );
    docker(&[
        "exec",
        &s.redis,
        "sh",
        "-c",
        "for i in $(seq 1 200); do echo \"SET key$i value$i\"; done | redis-cli > /dev/null",
    ]);
    rabbitmqctl(&s.rabbitmq, &["add_vhost", RABBIT_VHOST]);
    rabbitmqctl(&s.rabbitmq, &["add_user", RABBIT_USER, RABBIT_PASSWORD]);
    rabbitmqctl(&s.rabbitmq, &["set_permissions", "-p", RABBIT_VHOST, RABBIT_USER, ".*", ".*", ".*"]);
}

/// Everything [`put_data`] wrote is there (plus `extra_rows` rows written since).
pub fn assert_data(s: &Stack, extra_rows: u32, when: &str) {
    let rows = 1000 + extra_rows;
    assert_eq!(
        psql(&s.postgres, "SELECT count(*), min(id) FROM orders"),
        format!("{rows}|1"),
        "{when}: the rows of postgres"
    );
    assert_eq!(psql(&s.postgres, "SELECT item FROM orders WHERE id = 777"), "item-777", "{when}");
    assert_eq!(docker(&["exec", &s.redis, "redis-cli", "dbsize"]), "200", "{when}: the keys of redis");
    assert_eq!(docker(&["exec", &s.redis, "redis-cli", "get", "key137"]), "value137", "{when}");
    assert_eq!(docker(&["exec", &s.redis, "redis-cli", "config", "get", "appendonly"]), "appendonly\nyes", "{when}");
    let vhosts = rabbitmqctl(&s.rabbitmq, &["list_vhosts"]);
    assert!(vhosts.lines().any(|l| l.trim() == RABBIT_VHOST), "{when}: the vhost of rabbitmq: {vhosts}");
    let users = rabbitmqctl(&s.rabbitmq, &["list_users"]);
    assert!(users.lines().any(|l| l.starts_with(RABBIT_USER)), "{when}: the user of rabbitmq: {users}");
    rabbitmqctl(&s.rabbitmq, &["authenticate_user", RABBIT_USER, RABBIT_PASSWORD]);
    let perms = rabbitmqctl(&s.rabbitmq, &["list_permissions", "-p", RABBIT_VHOST]);
    assert!(perms.lines().any(|l| l.starts_with(RABBIT_USER)), "{when}: its permissions: {perms}");
}

/// Each service configured as 999:999, every process at 999.
pub fn assert_at_999(s: &Stack, when: &str) {
    for name in s.all() {
        assert_eq!(inspect(name)["Config"]["User"], "999:999", "{when}: {name}");
        assert_all_at(name, 999);
    }
}

/// `unroot audit --json` of this test's containers: class by name.
pub fn audit_classes(dir: &Path, env: &TestEnv) -> Vec<(String, String)> {
    let run = unroot_in(dir, &["audit", "--json", "--filter", &format!("label={}", env.label())]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    let mut classes: Vec<(String, String)> = v["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["class"].as_str().unwrap().to_string()))
        .collect();
    classes.sort();
    classes
}

/// The stack up under docker-compose in a folder of its own, with its data written; `docker-
/// compose down -v` when dropped (also when the test failed).
pub struct StackUp {
    pub dir: tempfile::TempDir,
    pub project: String,
    pub s: Stack,
}

impl StackUp {
    pub fn start(env: &TestEnv) -> StackUp {
        let up = StackUp { dir: env.tempdir(), project: env.id.replace('-', ""), s: Stack::of(env) };
        std::fs::write(up.dir.path().join("docker-compose.yml"), compose_file(env, &up.s)).unwrap();
        let run = compose(up.dir.path(), &up.project, &["up", "-d"]);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        up.s.wait();
        put_data(&up.s);
        up
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `docker-compose up -d --force-recreate` with unroot's override.
    pub fn up_with_override(&self) {
        let args = ["-f", "docker-compose.yml", "-f", "docker-compose.unroot.yml", "up", "-d", "--force-recreate"];
        let run = compose(self.path(), &self.project, &args);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    }
}

impl Drop for StackUp {
    fn drop(&mut self) {
        let _ = compose(self.dir.path(), &self.project, &["down", "-v", "--remove-orphans"]);
    }
}
