//! A Swarm service's preview from what a manager showed: nodes, mounts, the spec diff and
//! blockers, with no Docker.

use serde_json::{Value, json};

use super::*;
use crate::docker::fake::merge;
use crate::docker::swarm::{DesiredState, NodeRole};

fn service(patch: Value) -> ServiceInspect {
    let mut s = json!({
        "ID": "svc0123456789abcdef", "Version": {"Index": 41},
        "Spec": {
            "Name": "db", "Mode": {"Replicated": {"Replicas": 2}},
            "TaskTemplate": {
                "ContainerSpec": {"Image": "redis:7@sha256:abc", "Env": ["A=1"],
                                  "Mounts": [{"Type": "volume", "Source": "data", "Target": "/data"},
                                             {"Type": "volume", "Source": "conf", "Target": "/conf", "ReadOnly": true}]},
                "Placement": {"Constraints": ["node.role==worker"]}
            }
        }
    });
    merge(&mut s, patch);
    ServiceInspect(s)
}

fn node(id: &str, role: &str, state: &str) -> NodeRef {
    NodeRef {
        id: id.into(),
        hostname: format!("host-{id}"),
        role: NodeRole::parse(role),
        state: NodeState::parse(state),
        availability: Availability::Active,
        labels: Default::default(),
        engine_labels: Default::default(),
    }
}

fn task(node: &str) -> TaskRef {
    TaskRef {
        id: format!("task-{node}"),
        service_id: "svc0123456789abcdef".into(),
        node_id: node.into(),
        state: TaskState::Running,
        desired: DesiredState::Running,
        message: String::new(),
        error: String::new(),
        container_id: String::new(),
        exit_code: None,
        created_at: "2026-11-27T10:00:00.123456789Z".into(),
        user: String::new(),
    }
}

fn observed(svc: ServiceInspect) -> Observed {
    Observed {
        membership: SwarmMembership::Manager { node_id: "m".into() },
        service: Ok(svc),
        tasks: vec![task("w1"), task("w2")],
        nodes: vec![node("m", "manager", "ready"), node("w1", "worker", "ready"), node("w2", "worker", "ready")],
        image_user: Some(String::new()),
        accounts: None,
        api_version: "1.41".into(),
    }
}

fn plan(extra: &str) -> Plan {
    Plan::parse("t.toml", &format!("[rollout]\nname = \"t\"\n[service.db]\nday = 1\nswarm = true\n{extra}")).unwrap()
}

#[test]
fn a_replicated_service_moves_on_the_nodes_its_placement_allows() {
    let p = plan("user = \"999:999\"\n");
    let sp = derive(&p, p.service("db").unwrap(), &observed(service(json!({}))));
    assert!(sp.blockers.is_empty(), "{:?}", sp.blockers);
    assert_eq!(sp.mode, Some(ServiceMode::Replicated { replicas: 2 }));
    assert_eq!(sp.user.from, "(unset) root");
    assert_eq!(sp.user.to, "999:999");
    let hosts: Vec<&str> = sp.nodes.iter().map(|n| n.hostname.as_str()).collect();
    assert_eq!(hosts, ["host-w1", "host-w2"], "the manager is not a worker");
    assert_eq!(sp.nodes[0].mounts, ["volume data -> /data"], "the read-only mount is left alone");
    assert!(sp.spec_changes.contains(&"TaskTemplate.ContainerSpec.User: (unset) -> \"999:999\"".to_string()));
    let r = sp.resolved.expect("resolved");
    assert_eq!(r.target, Some(Owner::new(999, 999)));
    assert_eq!(r.spec["Mode"], json!({"Replicated": {"Replicas": 2}}), "the original replicas");
    assert_eq!(r.nodes, ["w1", "w2"]);
}

#[test]
fn a_down_node_a_missing_service_and_a_worker_daemon_are_blockers() {
    let p = plan("user = \"999:999\"\n");
    let mut o = observed(service(json!({})));
    o.nodes[2].state = NodeState::Down;
    let sp = derive(&p, p.service("db").unwrap(), &o);
    assert!(sp.blockers.iter().any(|b| b.contains("node host-w2 (w2) is down")), "{:?}", sp.blockers);
    assert!(sp.resolved.is_none());

    let mut o = observed(service(json!({})));
    o.service = Err("no Swarm service is called db".into());
    assert_eq!(derive(&p, p.service("db").unwrap(), &o).blockers, ["no Swarm service is called db"]);

    let mut o = observed(service(json!({})));
    o.membership = SwarmMembership::Worker { node_id: "w1".into() };
    assert!(derive(&p, p.service("db").unwrap(), &o).blockers[0].contains("not a Swarm manager"));
}

#[test]
fn a_user_name_needs_the_image_on_the_manager() {
    let p = plan("user = \"redis\"\n");
    let mut o = observed(service(json!({})));
    o.image_user = None;
    let sp = derive(&p, p.service("db").unwrap(), &o);
    assert!(sp.blockers.iter().any(|b| b.contains("write the user as uid:gid")), "{:?}", sp.blockers);

    o.accounts = Some(Accounts::parse(Some("root:x:0:0::/root:/bin/sh\nredis:x:999:1000::/data:/bin/sh\n"), None));
    let sp = derive(&p, p.service("db").unwrap(), &o);
    assert!(sp.blockers.is_empty(), "{:?}", sp.blockers);
    assert_eq!(sp.user.to, "redis (999:1000)");
}

#[test]
fn no_new_privileges_needs_a_newer_manager_and_env_values_are_never_shown() {
    let p = plan("user = \"999:999\"\nno_new_privileges = true\nenv = { TOKEN = \"s3cret-value\" }\n");
    let sp = derive(&p, p.service("db").unwrap(), &observed(service(json!({}))));
    assert!(sp.blockers.iter().any(|b| b.contains("API 1.46")), "{:?}", sp.blockers);
    let shown = serde_json::to_string(&sp).unwrap();
    assert!(!shown.contains("s3cret-value"), "{shown}");
    assert!(sp.spec_changes.iter().any(|l| l.contains("sets TOKEN")), "{:?}", sp.spec_changes);
}

#[test]
fn a_global_service_covers_every_node_and_a_job_is_refused() {
    let p = plan("user = \"1000:1000\"\n");
    let global = service(json!({"Spec": {"Mode": {"Global": {}}, "TaskTemplate": {"Placement": {"Constraints": []}}}}));
    let global = ServiceInspect(json!({"ID": global.0["ID"], "Spec": {
        "Name": "db", "Mode": {"Global": {}}, "TaskTemplate": global.0["Spec"]["TaskTemplate"].clone()}}));
    let sp = derive(&p, p.service("db").unwrap(), &observed(global));
    assert_eq!(sp.mode, Some(ServiceMode::Global));
    assert_eq!(sp.nodes.len(), 3, "{:?}", sp.nodes);

    let job = ServiceInspect(json!({"ID": "j", "Spec": {"Name": "db", "Mode": {"GlobalJob": {}}}}));
    assert!(derive(&p, p.service("db").unwrap(), &observed(job)).blockers[0].contains("job"));
}

#[test]
fn a_protected_bind_or_an_anonymous_volume_blocks_and_a_paused_node_is_left_out() {
    let p = plan("user = \"999:999\"\n");
    let sock = service(json!({"Spec": {"TaskTemplate": {"ContainerSpec": {"Mounts": [
        {"Type": "bind", "Source": "/var/run/docker.sock", "Target": "/var/run/docker.sock"},
        {"Type": "bind", "Source": "/etc", "Target": "/host-etc", "ReadOnly": true},
        {"Type": "volume", "Source": "", "Target": "/scratch"}]}}}}));
    let mut o = observed(sock);
    o.nodes[2].availability = Availability::Pause;
    let sp = derive(&p, p.service("db").unwrap(), &o);
    assert!(
        sp.blockers.iter().any(|b| b.contains("/var/run/docker.sock") && b.contains("never re-owns")),
        "{:?}",
        sp.blockers
    );
    assert!(!sp.blockers.iter().any(|b| b.contains("/etc")), "a read-only bind is not re-owned: {:?}", sp.blockers);
    assert!(sp.blockers.iter().any(|b| b.contains("anonymous volume")), "{:?}", sp.blockers);
    assert!(sp.resolved.is_none());
    let hosts: Vec<&str> = sp.nodes.iter().map(|n| n.hostname.as_str()).collect();
    assert_eq!(hosts, ["host-w1"], "Swarm places nothing on a paused node");
}

#[test]
fn no_new_privileges_is_set_on_a_manager_that_takes_it() {
    let p = plan("user = \"999:999\"\nno_new_privileges = true\n");
    let mut o = observed(service(json!({})));
    o.api_version = "1.47".into();
    let sp = derive(&p, p.service("db").unwrap(), &o);
    assert!(sp.blockers.is_empty(), "{:?}", sp.blockers);
    let r = sp.resolved.unwrap();
    assert_eq!(r.spec["TaskTemplate"]["ContainerSpec"]["Privileges"]["NoNewPrivileges"], true);
    assert!(sp.spec_changes.iter().any(|c| c.starts_with("TaskTemplate.ContainerSpec.Privileges.NoNewPrivileges")));
}

#[test]
fn only_the_nodes_where_a_task_ran_are_re_owned_and_the_others_are_said() {
    let p = plan("user = \"999:999\"\n");
    let mut o = observed(service(json!({})));
    o.nodes.push(node("w3", "worker", "ready"));
    o.nodes.push(node("w4", "worker", "ready"));
    // w4 ran a task that has ended since (Swarm keeps it in its history): it holds a copy.
    let mut ended = task("w4");
    ended.state = TaskState::Shutdown("shutdown".into());
    o.tasks.push(ended);
    let sp = derive(&p, p.service("db").unwrap(), &o);
    assert!(sp.blockers.is_empty(), "{:?}", sp.blockers);
    let r = sp.resolved.clone().expect("resolved");
    assert_eq!(r.nodes, ["w1", "w2", "w4"], "w3 never ran a task: no volume there is created or re-owned");
    let w3 = sp.nodes.iter().find(|n| n.id == "w3").expect("listed");
    assert!(w3.mounts.is_empty(), "{w3:?}");
    assert!(
        sp.warnings.iter().any(|w| w.contains("node host-w3 (w3) shows no task of the service")),
        "{:?}",
        sp.warnings
    );
}
