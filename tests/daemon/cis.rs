//! `unroot audit --format sarif` held against the CIS Docker Benchmark v1.6.0 as
//! docker-bench-security audits it: on containers that differ from a hardened one in one
//! control each, the containers unroot flags under each CIS id are the ones that id's audit
//! procedure flags. The procedures are written here from docker-bench-security's
//! `tests/4_container_images.sh` and `tests/5_container_runtime.sh` (the docker/
//! docker-bench-security repository): the same `docker inspect` templates and the same
//! comparisons of their text, run through the docker CLI, independently of unroot.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::common::official::run_redis;
use crate::common::{TestEnv, docker, docker_raw, image, unroot};

/// `docker inspect --format TEMPLATE c`, as the benchmark's scripts read it.
fn inspect(c: &str, template: &str) -> String {
    docker(&["inspect", "--format", template, c])
}

/// Docker's default capabilities as 5.4 removes them from the text of `CapAdd`: first with
/// the `CAP_` prefix, then without it.
const DEFAULTS: [&str; 14] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Whether the benchmark's procedure for `id` flags container `c`.
fn bench_flags(id: &str, c: &str) -> bool {
    match id {
        // The configured user is empty, 0 or root.
        "4.1" => {
            let user = inspect(c, "User={{.Config.User}}");
            ["User=0", "User=root", "User=", "User=[]", "User=<no value>"].contains(&user.as_str())
        }
        // CapAdd, upper-cased, the defaults and the blanks taken out of its text, is
        // something other than empty.
        "5.4" => {
            let mut caps = inspect(c, "CapAdd={{ .HostConfig.CapAdd }}").to_uppercase().replacen("CAPADD", "CapAdd", 1);
            for cap in DEFAULTS {
                caps = caps.replace(&format!("CAP_{cap}"), "");
            }
            for cap in DEFAULTS {
                caps = caps.replace(cap, "");
            }
            caps.retain(|ch| !ch.is_whitespace());
            !["CapAdd=", "CapAdd=[]", "CapAdd=<no value>", "CapAdd=<nil>"].contains(&caps.as_str())
        }
        "5.5" => inspect(c, "{{ .HostConfig.Privileged }}") == "true",
        "5.13" => inspect(c, "{{ .HostConfig.ReadonlyRootfs }}") == "false",
        "5.26" => !inspect(c, "SecurityOpt={{.HostConfig.SecurityOpt }}").contains("no-new-privileges"),
        "5.32" => inspect(c, "{{ .Mounts }}").contains("docker.sock"),
        other => panic!("no procedure for {other}"),
    }
}

const IDS: [&str; 6] = ["4.1", "5.4", "5.5", "5.13", "5.26", "5.32"];

/// The containers the SARIF log has a result for under each CIS id (a suppressed one, an
/// accepted exception, counts: it is flagged and accepted). A result's id is its own (its
/// property and its taxon), which its rule's names.
fn sarif_flags(log: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let run = &log["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = IDS.iter().map(|id| (id.to_string(), BTreeSet::new())).collect();
    for r in run["results"].as_array().unwrap() {
        let Some(id) = r["properties"]["cis-docker-benchmark"].as_str().map(str::to_string) else { continue };
        assert_eq!(r["taxa"][0]["id"], id.as_str(), "{r}");
        let rule = rules.iter().find(|d| d["id"] == r["ruleId"]).unwrap();
        assert_eq!(rule["properties"]["cis-docker-benchmark"], id.as_str(), "{r}");
        let name = r["locations"][0]["logicalLocations"][0]["name"].as_str().unwrap().to_string();
        out.entry(id).or_default().insert(name);
    }
    out
}

/// What every container but one has: a user, a read-only root, no-new-privileges.
fn hardened(user: &'static str, read_only: bool, nnp: bool) -> Vec<&'static str> {
    let mut args: Vec<&'static str> = Vec::new();
    if !user.is_empty() {
        args.extend(["--user", user]);
    }
    if read_only {
        args.push("--read-only");
    }
    if nnp {
        args.extend(["--security-opt", "no-new-privileges"]);
    }
    args
}

/// The test's containers, each differing from a hardened one in one control.
struct Stack {
    root: String,
    root_by_number: String,
    root_pair: String,
    cap: String,
    writable: String,
    may_gain: String,
    sock: String,
    drops_root: String,
    privileged: String,
    privileged_runs: bool,
    stopped: String,
    all: Vec<String>,
}

fn stack(env: &TestEnv) -> Stack {
    let img = image("busybox");
    let label = env.label();
    let run = |short: &str, hardening: Vec<&'static str>, extra: &[&str]| {
        let mut args: Vec<&str> = hardening;
        args.extend_from_slice(extra);
        args.extend([img.as_str(), "sleep", "1000000"]);
        env.run(short, &args)
    };
    let base = run("hardened", hardened("1000:1000", true, true), &[]);
    let defaults = ["--cap-drop", "ALL", "--cap-add", "chown", "--cap-add", "CAP_NET_RAW"];
    let default_caps = run("defaultcaps", hardened("1000:1000", true, true), &defaults);
    // The official-like redis: started as root, its entrypoint drops to 999.
    let volume = env.name("redisdata");
    docker(&["volume", "create", "--label", &label, &volume]);
    let drops_root = run_redis(env, "redis", &volume, &["--read-only", "--security-opt", "no-new-privileges"]);
    // Privileged where the daemon allows it; this machine's refuses to start one, so it
    // stays created.
    let privileged = env.name("privileged");
    let mut args = vec!["create", "--name", &privileged, "--label", &label, "--privileged"];
    args.extend(hardened("1000:1000", true, true));
    args.extend([img.as_str(), "sleep", "1000000"]);
    docker(&args);
    let privileged_runs = docker_raw(&["start", &privileged]).status.success();
    // A root container that is not running: not in the benchmark's list.
    let stopped = env.name("stopped");
    docker(&["create", "--name", &stopped, "--label", &label, &img, "sleep", "1000000"]);
    let mut s = Stack {
        root: run("root", hardened("", true, true), &[]),
        root_by_number: run("uid0", hardened("0", true, true), &[]),
        // Root that the benchmark's text comparison does not see: unroot flags it, no 4.1.
        root_pair: run("uid00", hardened("0:0", true, true), &[]),
        cap: run("netadmin", hardened("1000:1000", true, true), &["--cap-add", "NET_ADMIN"]),
        writable: run("writable", hardened("1000:1000", false, true), &[]),
        may_gain: run("maygain", hardened("1000:1000", true, false), &[]),
        sock: run("sock", hardened("1000:1000", true, true), &["-v", "/var/run/docker.sock:/var/run/docker.sock:ro"]),
        drops_root,
        privileged,
        privileged_runs,
        stopped,
        all: vec![base, default_caps],
    };
    let named = [&s.root, &s.root_by_number, &s.root_pair, &s.cap, &s.writable, &s.may_gain, &s.sock, &s.drops_root];
    let more: Vec<String> = named.into_iter().chain([&s.privileged, &s.stopped]).cloned().collect();
    s.all.extend(more);
    s
}

/// The rules of `name`'s results in the log.
fn result_rules(log: &Value, name: &str) -> Vec<String> {
    let results = log["runs"][0]["results"].as_array().unwrap();
    let of = results.iter().filter(|r| r["locations"][0]["logicalLocations"][0]["name"] == name);
    of.map(|r| r["ruleId"].as_str().unwrap().to_string()).collect()
}

#[test]
fn each_cis_id_flags_the_containers_docker_bench_security_flags() {
    let env = TestEnv::new("cis");
    let s = stack(&env);
    eprintln!(
        "the privileged container {}",
        if s.privileged_runs { "runs" } else { "could not start; it stays created" }
    );
    let filter = format!("label={}", env.label());
    let out = unroot().args(["audit", "--format", "sarif", "--filter", &filter]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0)), "audit: {stderr}");
    let log: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let unroot_flags = sarif_flags(&log);

    // docker-bench-security lists the running containers (`docker ps`).
    let listed: Vec<&String> = s.all.iter().filter(|c| inspect(c, "{{.State.Running}}") == "true").collect();
    for id in IDS {
        let bench: BTreeSet<String> = listed.iter().filter(|c| bench_flags(id, c)).map(|c| c.to_string()).collect();
        assert_eq!(unroot_flags[id], bench, "CIS {id}: unroot flags what docker-bench-security's procedure flags");
    }
    // Each id flags what its one control says, so the comparison above is not of empty sets.
    let set = |names: &[&String]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<String>>();
    assert_eq!(unroot_flags["4.1"], set(&[&s.root, &s.root_by_number, &s.drops_root]));
    assert_eq!(unroot_flags["5.4"], set(&[&s.cap]), "a default capability, in any spelling, is not flagged");
    assert_eq!(unroot_flags["5.13"], set(&[&s.writable]));
    assert_eq!(unroot_flags["5.26"], set(&[&s.may_gain]));
    assert_eq!(unroot_flags["5.32"], set(&[&s.sock]));
    if s.privileged_runs {
        assert_eq!(unroot_flags["5.5"], set(&[&s.privileged]));
    } else {
        // In no list of the benchmark's; its procedure flags it all the same, and so does
        // unroot, under its rule without the id.
        assert!(bench_flags("5.5", &s.privileged) && unroot_flags["5.5"].is_empty());
        assert!(result_rules(&log, &s.privileged).contains(&"UNROOT003".to_string()));
    }
    // What unroot finds beyond the procedures: results of the same rule, without an id.
    let pair = result_rules(&log, &s.root_pair);
    assert!(pair.contains(&"UNROOT001".to_string()), "0:0 runs as root: {pair:?}");
    assert!(result_rules(&log, &s.stopped).contains(&"UNROOT001".to_string()), "a stopped root container");
    edition_is_named(&log);
}

/// The edition, named in the driver, in each rule and as the run's taxonomy.
fn edition_is_named(log: &Value) {
    let run = &log["runs"][0];
    let edition = "CIS Docker Benchmark v1.6.0";
    assert_eq!(run["tool"]["driver"]["properties"]["cis-docker-benchmark-edition"], edition);
    for rule in run["tool"]["driver"]["rules"].as_array().unwrap() {
        if rule["properties"]["cis-docker-benchmark"].is_string() {
            assert_eq!(rule["properties"]["cis-docker-benchmark-edition"], edition, "{rule}");
            assert!(rule["fullDescription"]["text"].as_str().unwrap().contains(edition), "{rule}");
        }
    }
    let taxonomy = &run["taxonomies"][0];
    assert_eq!(
        (taxonomy["name"].as_str(), taxonomy["version"].as_str()),
        (Some("CIS Docker Benchmark"), Some("1.6.0"))
    );
    let taxa: BTreeSet<&str> = taxonomy["taxa"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(taxa, IDS.into_iter().collect());
}
