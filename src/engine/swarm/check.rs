//! The preview's look at each node (SPEC §11 steps 2–3): a one-off global service of unroot's (restart condition none) runs on
//! every node the service may run on, with the service's own image and its bind mounts
//! (read-only), and says whether the image is there, whether each bind's source exists, and
//! whether the image has the tools the re-owning jobs run. It mounts no volume (that would
//! create one on a node that has none) and changes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::jobs::{self, NodeOutput};
use super::placement::NodePlan;
use crate::docker::swarm::{ServiceInspect, SwarmPort};
use crate::engine::orphans;
use crate::model::mount::MountKind;
use crate::model::user::Accounts;

/// The tools the scan, apply and restore jobs run.
pub const TOOLS: [&str; 13] =
    ["sh", "find", "stat", "awk", "sed", "tr", "xargs", "chown", "sort", "sha256sum", "cut", "grep", "cat"];

/// The tools the jobs use, when the image has them, to record and restore file capabilities.
pub const XATTR_TOOLS: [&str; 2] = ["getfattr", "setfattr"];

/// What the check found: blockers and warnings, each naming its node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    pub blockers: Vec<String>,
    pub warnings: Vec<String>,
}

/// How long the check may take on a node.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Arguments: the number of tools N, the N tools, then the bind sources. Prints `missing
/// TOOL` for each tool the image lacks; `bind I PATH` for each bind source I as the node
/// resolves it (its symlinks followed one component at a time in the node's own root,
/// mounted read-only at `/unroot-host`), `bind I ?` when the image has no `readlink`,
/// `bind I loop`, or `bind I denied` (a directory on the way that the unprivileged check
/// cannot look into); then an end line.
const SCRIPT: &str = r#"n=$1; shift
while [ "$n" -gt 0 ]; do command -v "$1" >/dev/null 2>&1 || echo "missing $1"; shift; n=$((n - 1)); done
resolve() {
  out=; rest=${1#/}; hops=0
  while [ -n "$rest" ]; do
    c=${rest%%/*}
    if [ "$c" = "$rest" ]; then rest=; else rest=${rest#*/}; fi
    case $c in ''|.) continue ;; ..) out=${out%/*}; continue ;; esac
    [ -x "/unroot-host$out/" ] || { echo denied; return; }
    if [ -L "/unroot-host$out/$c" ]; then
      hops=$((hops + 1)); [ "$hops" -le 40 ] || { echo loop; return; }
      t=$(readlink "/unroot-host$out/$c")
      case $t in /*) out=; rest=${t#/}${rest:+/$rest} ;; *) rest=$t${rest:+/$rest} ;; esac
    else
      out=$out/$c
    fi
  done
  echo "${out:-/}"
}
i=0
for src in "$@"; do
  if command -v readlink >/dev/null 2>&1; then echo "bind $i $(resolve "$src")"; else echo "bind $i ?"; fi
  i=$((i + 1))
done
echo END"#;

/// Where the check job sees the node's own root (read-only), to resolve bind sources there.
const HOST_ROOT: &str = "/unroot-host";

/// Prints the image's `/etc/passwd`, a separator, its `/etc/group` and an end line.
const ACCOUNTS_SCRIPT: &str =
    r#"cat /etc/passwd 2>/dev/null; echo "--unroot-group--"; cat /etc/group 2>/dev/null; echo "--unroot-end--""#;

/// The image's users and groups, read on a node that has the image (SPEC §11 step 2): a
/// one-off global service with the service's image and placement prints its `/etc/passwd` and
/// `/etc/group`, and the first node whose task printed both whole is taken. For a service
/// whose image is not on the manager. `None` when no node could (no such image anywhere,
/// no shell in it).
pub async fn accounts(port: &impl SwarmPort, svc: &ServiceInspect, nodes: &[String]) -> Option<Accounts> {
    let name = jobs::job_name("users", svc.name(), &std::process::id().to_string(), 0);
    let mut job = spec(&name, svc);
    job["TaskTemplate"]["ContainerSpec"]["Command"] = json!(["sh", "-c", ACCOUNTS_SCRIPT]);
    job["TaskTemplate"]["ContainerSpec"]["Mounts"] = json!([]);
    let outputs = jobs::run(port, job, nodes, TIMEOUT).await.ok()?;
    outputs.values().filter(|o| o.succeeded()).find_map(|o| parse_accounts(&o.output.stdout))
}

/// The accounts from what [`ACCOUNTS_SCRIPT`] printed, when it printed all of it.
fn parse_accounts(out: &[u8]) -> Option<Accounts> {
    let text = String::from_utf8_lossy(out);
    let (passwd, rest) = text.split_once("--unroot-group--\n")?;
    let (group, _) = rest.split_once("--unroot-end--")?;
    Some(Accounts::parse(Some(passwd), Some(group)))
}

/// The check job's spec for `svc` on its placement.
fn spec(name: &str, svc: &ServiceInspect) -> Value {
    let sources = bind_sources(svc);
    let mut binds: Vec<Value> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"Type": "bind", "Source": s, "Target": format!("/unroot-bind-{i}"), "ReadOnly": true}))
        .collect();
    if !binds.is_empty() {
        binds.push(json!({"Type": "bind", "Source": "/", "Target": HOST_ROOT, "ReadOnly": true}));
    }
    let command = command(&sources);
    json!({
        "Name": name,
        "Labels": {(orphans::LABEL_HELPER): "preview", (orphans::LABEL_MAKER): orphans::maker()},
        "Mode": {"Global": {}},
        "TaskTemplate": {
            "ContainerSpec": {
                // Its task containers are unroot's own too: not audited, and swept if left.
                "Labels": {(orphans::LABEL_HELPER): "preview", (orphans::LABEL_MAKER): orphans::maker()},
                "Image": svc.image(),
                "Command": command,
                // Unprivileged: it only looks, and it sees the node's root (read-only) to
                // resolve bind sources; as nobody it cannot read what only root may (keys,
                // the Docker socket).
                "User": "65534:65534",
                "Dir": "/",
                "Mounts": binds,
                "CapabilityDrop": ["ALL"],
                "StopGracePeriod": 1_000_000_000u64
            },
            "RestartPolicy": {"Condition": "none"},
            "Placement": {"Constraints": svc.constraints()}
        }
    })
}

/// The check's command: the tools to look for (those the jobs need, then the optional
/// ones), then the bind sources to resolve.
fn command(sources: &[String]) -> Value {
    let tools: Vec<&str> = TOOLS.iter().chain(&XATTR_TOOLS).copied().collect();
    let mut command =
        vec![json!("sh"), json!("-c"), json!(SCRIPT), json!("unroot-check"), json!(tools.len().to_string())];
    command.extend(tools.iter().map(|t| json!(t)));
    command.extend(sources.iter().map(|s| json!(s)));
    json!(command)
}

/// The sources of the service's bind mounts, in the order the check numbers them.
fn bind_sources(svc: &ServiceInspect) -> Vec<String> {
    svc.mounts().into_iter().filter(|m| m.kind == MountKind::Bind).map(|m| m.source).collect()
}

/// Runs the check on `nodes` and returns what it finds, each naming its node.
/// `reowns`: the service has mounts to re-own, so the tools of the image the re-owning jobs
/// run in matter: `helper_image` when the plan names one (then checked in a second job,
/// with no mount), else the service's own.
pub async fn check(
    port: &impl SwarmPort,
    svc: &ServiceInspect,
    nodes: &[NodePlan],
    reowns: bool,
    helper_image: Option<&str>,
) -> Checked {
    let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
    let run = async |kind: &str, job: Value, image: &str, tools: bool, binds: &[String]| {
        let name = jobs::job_name(kind, svc.name(), &std::process::id().to_string(), 0);
        let mut job = job;
        job["Name"] = json!(name);
        match jobs::run(port, job, &ids, TIMEOUT).await {
            Ok(outputs) => findings(image, nodes, &outputs, tools, binds),
            Err(e) => {
                Checked { blockers: vec![format!("the check of the nodes did not finish: {e}")], ..Default::default() }
            }
        }
    };
    // The bind sources are resolved by the image the re-owning runs in: a distroless service
    // image with a `helper_image` has no shell to resolve them.
    let binds = if reowns { bind_sources(svc) } else { Vec::new() };
    let (own_binds, helper_binds) = match helper_image {
        Some(_) => (Vec::new(), binds),
        None => (binds, Vec::new()),
    };
    let mut found = run("check", spec("", svc), svc.image(), reowns && helper_image.is_none(), &own_binds).await;
    if let Some(helper) = helper_image.filter(|_| reowns) {
        let mut job = spec("", svc);
        job["TaskTemplate"]["ContainerSpec"]["Image"] = json!(helper);
        let more = run("check-helper", job, helper, true, &helper_binds).await;
        found.blockers.extend(more.blockers);
        found.warnings.extend(more.warnings);
    }
    found
}

/// What each node's check says, as blockers (and warnings) naming the node.
fn findings(
    image: &str,
    nodes: &[NodePlan],
    outputs: &BTreeMap<String, NodeOutput>,
    reowns: bool,
    binds: &[String],
) -> Checked {
    let mut out = Vec::new();
    let mut no_xattr = Vec::new();
    for node in nodes {
        let host = format!("node {} ({})", node.hostname, node.id);
        let Some(o) = outputs.get(&node.id) else {
            out.push(format!("{host}: the check ran no task there"));
            continue;
        };
        // An image without a shell: present, but the tools cannot be looked for; that
        // matters only when something is re-owned.
        let no_shell = o.error.contains("executable file not found") || o.error.contains("no such file or directory");
        if !o.succeeded() && no_shell && !o.image_missing() {
            if reowns {
                out.push(format!(
                    "{host}: the image {image} has no shell, which the re-owning jobs run (set helper_image?)"
                ));
            }
            continue;
        }
        if !o.succeeded() {
            out.push(if o.image_missing() {
                format!("{host} does not have the image {image} (nothing is pulled: load it there)")
            } else if o.error.contains("bind source path does not exist") {
                format!("{host}: {}; a bind must be the same path on every node", o.error)
            } else {
                format!("{host}: the check failed: {}", o.failure())
            });
            continue;
        }
        let text = String::from_utf8_lossy(&o.output.stdout);
        if !text.lines().any(|l| l == "END") {
            out.push(format!("{host}: the check's output came back incomplete"));
            continue;
        }
        let (optional, missing): (Vec<&str>, Vec<&str>) =
            text.lines().filter_map(|l| l.strip_prefix("missing ")).partition(|t| XATTR_TOOLS.contains(t));
        if reowns && !missing.is_empty() {
            out.push(format!("{host}: the image {image} has no {}, which the re-owning jobs run", missing.join(", ")));
        }
        if reowns && !optional.is_empty() {
            no_xattr.push(node.hostname.clone());
        }
        out.extend(resolved_binds(&text, binds).into_iter().map(|why| format!("{host}: {why}")));
    }
    let warnings = match no_xattr.is_empty() {
        true => Vec::new(),
        false => vec![format!(
            "the image {image} has no getfattr/setfattr (on {}): file capabilities (setcap) of files in the mounts, if any, are lost on re-owning and not restored by a rollback; set [rollout] helper_image to an image with them (Debian's attr package)",
            no_xattr.join(", ")
        )],
    };
    Checked { blockers: out, warnings }
}

/// What the check's `bind I PATH` lines say of the bind sources re-owned (`binds`): a source
/// that resolves, on that node, into a protected path (a symlink to `/etc`) or cannot be
/// resolved there.
fn resolved_binds(text: &str, binds: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((i, path)) = line.strip_prefix("bind ").and_then(|r| r.split_once(' ')) else { continue };
        let Some(source) = i.parse::<usize>().ok().and_then(|i| binds.get(i)) else { continue };
        match path {
            "?" => out.push(format!(
                "bind mount {source}: the image has no readlink to resolve it on the node (set helper_image?)"
            )),
            "loop" => out.push(format!("bind mount {source}: too many symbolic links on the node")),
            "denied" => out.push(format!(
                "bind mount {source}: a directory on its way cannot be looked into without privileges on the node; unroot does not re-own a source it cannot resolve"
            )),
            real => {
                if let Some(why) = crate::engine::reown::protected_bind_as_written(real) {
                    out.push(format!("bind mount {source} is {real} there: {why}; unroot never re-owns it"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::Finished;
    use crate::docker::swarm::{NodeState, TaskState};

    fn node(id: &str) -> NodePlan {
        NodePlan {
            id: id.into(),
            hostname: format!("host-{id}"),
            state: NodeState::Ready,
            tasks: 1,
            mounts: Vec::new(),
        }
    }

    fn output(state: TaskState, error: &str, stdout: &str) -> NodeOutput {
        NodeOutput {
            node_id: String::new(),
            state,
            error: error.into(),
            exit_code: Some(0),
            output: Finished { exit_code: 0, stdout: stdout.as_bytes().to_vec(), stderr: Vec::new() },
        }
    }

    #[test]
    fn the_accounts_come_from_a_whole_listing_only() {
        let out = b"root:x:0:0::/root:/bin/sh\npostgres:x:999:999::/var/lib/postgresql:/bin/sh\n--unroot-group--\nroot:x:0:\npostgres:x:999:\n--unroot-end--\n";
        let a = parse_accounts(out).expect("whole");
        let spec = crate::model::user::UserSpec::parse("postgres").unwrap();
        assert_eq!(a.owner_of(&spec).map(|o| o.to_string()), Some("999:999".into()));
        assert!(parse_accounts(b"root:x:0:0::/:/bin/sh\n--unroot-group--\nroot:x:0:\n").is_none(), "cut short");
        assert!(parse_accounts(b"").is_none());
    }

    #[test]
    fn each_node_is_named_with_what_it_lacks() {
        let svc =
            ServiceInspect(json!({"Spec": {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "busybox:1"}}}}));
        let nodes = [node("a"), node("b"), node("c"), node("d"), node("f"), node("g")];
        let outputs = BTreeMap::from([
            ("a".to_string(), output(TaskState::Complete, "", "END\n")),
            ("b".to_string(), output(TaskState::Failed("rejected".into()), "No such image: busybox:1", "")),
            (
                "c".to_string(),
                output(
                    TaskState::Failed("rejected".into()),
                    "invalid mount config for type \"bind\": bind source path does not exist: /srv/x",
                    "",
                ),
            ),
            (
                "d".to_string(),
                output(TaskState::Complete, "", "missing awk\nmissing sha256sum\nmissing getfattr\nEND\n"),
            ),
            ("g".to_string(), output(TaskState::Complete, "", "missing getfattr\nmissing setfattr\nEND\n")),
            (
                "f".to_string(),
                output(
                    TaskState::Failed("failed".into()),
                    "starting container failed: exec: \"sh\": executable file not found in $PATH",
                    "",
                ),
            ),
        ]);
        let found = findings(svc.image(), &nodes, &outputs, true, &[]);
        let b = found.blockers;
        assert_eq!(b.len(), 4, "{b:?}");
        // No getfattr/setfattr is said once, for the nodes without them, and blocks nothing.
        assert_eq!(found.warnings.len(), 1, "{:?}", found.warnings);
        assert!(found.warnings[0].contains("no getfattr/setfattr (on host-d, host-g)"), "{:?}", found.warnings);
        assert!(b[3].contains("host-f") && b[3].contains("no shell"), "{b:?}");
        assert!(b[0].starts_with("node host-b (b) does not have the image busybox:1"), "{b:?}");
        assert!(b[1].contains("node host-c (c)") && b[1].contains("/srv/x") && b[1].contains("same path"), "{b:?}");
        assert!(b[2].contains("node host-d (d)") && b[2].contains("no awk, sha256sum"), "{b:?}");
        // Tools (and a shell) only matter when something is re-owned: a distroless image
        // that only changes its user is not blocked.
        assert_eq!(findings(svc.image(), &nodes, &outputs, false, &[]).blockers.len(), 2);
        // A node that ran nothing, or printed no end line, is named too.
        let none = findings(svc.image(), &[node("e")], &outputs, false, &[]).blockers;
        assert!(none[0].contains("host-e") && none[0].contains("no task"), "{none:?}");
        let cut = BTreeMap::from([("a".to_string(), output(TaskState::Complete, "", "missing awk\n"))]);
        assert!(findings(svc.image(), &[node("a")], &cut, true, &[]).blockers[0].contains("incomplete"));
    }
}

#[cfg(test)]
mod resolve_tests {
    use super::*;

    /// Runs the check's script with `root` as the node's root, on `sources`, as nobody (as
    /// the check job runs).
    fn resolved(root: &std::path::Path, sources: &[&str]) -> String {
        use std::os::unix::process::CommandExt;
        let script = SCRIPT.replace(HOST_ROOT, root.to_str().unwrap());
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", &script, "unroot-check", "0"]).args(sources);
        if rustix::process::geteuid().is_root() {
            cmd.uid(65534).gid(65534);
        }
        let out = cmd.output().expect("sh runs");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn a_bind_source_is_resolved_in_the_nodes_own_root_and_a_symlink_into_etc_is_a_blocker() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for d in ["srv/data", "etc/nginx", "opt/real", "home/alice/conf"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::set_permissions(r, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(r.join("home/alice"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = |target: &str, at: &str| std::os::unix::fs::symlink(target, r.join(at)).unwrap();
        link("/etc", "srv/conf"); // absolute: the node's /etc, never this host's
        link("../opt/real", "srv/rel");
        link("/srv/conf/nginx", "srv/deep"); // a link through a link
        link("/srv/b", "srv/a");
        link("/srv/a", "srv/b");
        let sources = [
            "/srv/data",
            "/srv/conf/nginx",
            "/srv/rel/x",
            "/srv/deep",
            "/srv/a",
            "/srv/./data/../data",
            "/home/alice/conf",
        ];
        let text = resolved(r, &sources);
        assert_eq!(
            text,
            "bind 0 /srv/data\nbind 1 /etc/nginx\nbind 2 /opt/real/x\nbind 3 /etc/nginx\nbind 4 loop\nbind 5 /srv/data\nbind 6 denied\nEND\n"
        );
        let binds: Vec<String> = sources.map(String::from).into();
        let said = resolved_binds(&text, &binds);
        assert_eq!(said.len(), 4, "{said:?}");
        assert!(said[0].starts_with("bind mount /srv/conf/nginx is /etc/nginx there: "), "{said:?}");
        assert!(said[1].starts_with("bind mount /srv/deep is /etc/nginx there: "), "{said:?}");
        assert_eq!(said[2], "bind mount /srv/a: too many symbolic links on the node");
        assert!(
            said[3].starts_with("bind mount /home/alice/conf: a directory on its way cannot be looked into"),
            "{said:?}"
        );
    }
}
