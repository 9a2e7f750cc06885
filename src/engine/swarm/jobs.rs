//! Helper jobs on a swarm's nodes (SPEC §11 step 5): a one-off global service of unroot's own
//! (restart condition none: each node's task runs once; not a `global-job`, whose tasks'
//! containers Docker leaves on every node after the service is removed, moby#44312)
//! runs one task on every node the migrated service may run on (the same placement
//! constraints), holding one of its mounts, as uid 0 with only the six capabilities
//! re-owning needs. What each task prints comes back through the manager's task
//! logs, so nothing has to be copied off a node.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::FutureExt;
use serde_json::{Value, json};

use crate::docker::swarm::{SpecMount, SwarmPort, TaskState};
use crate::docker::{DockerError, Finished};
use crate::engine::orphans;
use crate::engine::reown::{self, HELPER_MOUNT};
use crate::model::mount::MountKind;
use crate::model::owner::{MountChanges, Owner};

/// How often a job's tasks are looked at while it runs.
const POLL: Duration = Duration::from_millis(250);

/// What one node's task of a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOutput {
    pub node_id: String,
    pub state: TaskState,
    /// Swarm's error for the task (`No such image: …`), empty when it ran.
    pub error: String,
    pub exit_code: Option<i64>,
    pub output: Finished,
}

impl NodeOutput {
    /// The node does not have the job's image (nothing is pulled).
    pub fn image_missing(&self) -> bool {
        image_missing(&self.error)
    }

    /// Ran to its end with exit code 0.
    pub fn succeeded(&self) -> bool {
        self.state == TaskState::Complete && self.exit_code.unwrap_or(0) == 0
    }

    /// Why it did not succeed, in Swarm's and the script's words.
    pub fn failure(&self) -> String {
        let said = String::from_utf8_lossy(&self.output.stderr).trim().to_string();
        let state = match &self.state {
            TaskState::Failed(s) | TaskState::Shutdown(s) | TaskState::Pending(s) => s.clone(),
            TaskState::Running => "running".into(),
            TaskState::Complete => "complete".into(),
        };
        let mut why = format!("task {state}");
        if let Some(code) = self.exit_code.filter(|c| *c != 0) {
            why.push_str(&format!(", exit code {code}"));
        }
        for part in [&self.error, &said] {
            if !part.is_empty() {
                why.push_str(&format!(": {part}"));
            }
        }
        why
    }
}

/// Whether a task's error (or a node's failure, which quotes it) says the node does not
/// have the image: Docker's `No such image: …`.
pub fn image_missing(why: &str) -> bool {
    why.contains("No such image")
}

/// Where and as what a re-owning job runs: its name, the run that made it, the image (the
/// service's own, which its nodes have), the mount, the service's placement constraints,
/// and how long its tasks may take.
#[derive(Debug, Clone, Copy)]
pub struct JobSite<'a> {
    pub name: &'a str,
    pub run: &'a str,
    pub image: &'a str,
    pub mount: &'a SpecMount,
    pub constraints: &'a [String],
    pub timeout: Duration,
}

/// A job's service name: a DNS label as Swarm requires (letters, digits, `-`, at most 63),
/// naming what it does and for which service, unique per run and mount.
pub fn job_name(kind: &str, service: &str, run: &str, mount: usize) -> String {
    use sha2::Digest;
    let readable: String = service
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .take(30)
        .collect();
    let hash = hex::encode(sha2::Sha256::digest(format!("{service}\0{run}\0{mount}").as_bytes()));
    format!("unroot-{kind}-{}-{}", readable.trim_matches('-'), &hash[..10])
}

/// The spec of a global job that runs `script` (with `args`) as uid 0 on every node that
/// `constraints` allow, with `mount` at [`HELPER_MOUNT`] (a volume is never filled from the
/// image), with only CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID and SETFCAP (a restored
/// file's setgid bit whatever its group, and its file capabilities). It joins no network of
/// the service's; Swarm (Engine 20.10) has no `none` network for tasks, so it sits on the
/// node's default bridge, and its script uses no network.
pub fn spec(
    name: &str,
    run: &str,
    image: &str,
    mount: &SpecMount,
    constraints: &[String],
    script: &str,
    args: &[String],
) -> Value {
    let mut m = json!({"Type": mount.kind, "Source": mount.source, "Target": HELPER_MOUNT, "ReadOnly": false});
    if mount.kind == MountKind::Volume {
        // The same volume as the service's (its driver and options), never filled from the
        // helper's image.
        let mut options = mount.volume_options.clone().filter(Value::is_object).unwrap_or_else(|| json!({}));
        options["NoCopy"] = json!(true);
        m["VolumeOptions"] = options;
    }
    let mut command = vec![json!("sh"), json!("-c"), json!(script), json!("unroot-helper")];
    command.extend(args.iter().map(|a| json!(a)));
    json!({
        "Name": name,
        "Labels": {(orphans::LABEL_HELPER): run, (orphans::LABEL_MAKER): orphans::maker()},
        "Mode": {"Global": {}},
        "TaskTemplate": {
            "ContainerSpec": {
                // Its task containers are unroot's own too: not audited, and swept if left.
                "Labels": {(orphans::LABEL_HELPER): run, (orphans::LABEL_MAKER): orphans::maker()},
                "Image": image,
                "Command": command,
                "User": "0:0",
                "Dir": "/",
                "Mounts": [m],
                "CapabilityDrop": ["ALL"],
                "CapabilityAdd": [
                    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_SETFCAP"
                ],
                // Removed, it stops at once: every script can run again from the start.
                "StopGracePeriod": 1_000_000_000u64
            },
            "RestartPolicy": {"Condition": "none"},
            "Placement": {"Constraints": constraints}
        }
    })
}

/// Runs a job made by [`spec`] until every one of `nodes` has a task that ended, returns
/// each node's output, and removes the job (also when waiting fails).
///
/// Guarantees: a job of the same name left by an earlier attempt is removed first, so a
/// retry starts clean; the job never outlives this call unless the manager stops answering.
/// Errors: the manager refuses the job, or a node has no ended task within `timeout` (the
/// node is named: it is down, or cannot start the task).
pub async fn run(
    port: &impl SwarmPort,
    spec: Value,
    nodes: &[String],
    timeout: Duration,
) -> Result<BTreeMap<String, NodeOutput>, DockerError> {
    let name = spec["Name"].as_str().unwrap_or_default().to_string();
    remove_and_wait(port, &name).await?;
    let id = port.create_service(spec).await?;
    let result = wait(port, &id, nodes, timeout).await;
    let _ = remove_and_wait(port, &id).await;
    result
}

/// How long a removed job's tasks may take to stop (their grace is one second).
const REMOVAL_TIMEOUT: Duration = Duration::from_secs(60);

/// Removes the job `name` (a name or an id) when it exists, and waits until none of its
/// tasks runs: a removed service's task goes on until its container has stopped, and a job
/// that still changes owners must never overlap the next one on the same mount.
///
/// Guarantees: idempotent (a job that is gone is done).
/// Errors: the manager's answers; a task still running a minute after the removal.
pub async fn remove_and_wait(port: &impl SwarmPort, name: &str) -> Result<(), DockerError> {
    let id = match port.inspect_service(name).await {
        Ok(s) => s.id().to_string(),
        Err(DockerError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    match port.remove_service(&id).await {
        Ok(()) | Err(DockerError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let deadline = tokio::time::Instant::now() + REMOVAL_TIMEOUT;
    loop {
        if port.list_tasks(&id).await?.iter().all(|t| t.state.ended()) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DockerError::Api {
                status: 504,
                message: format!(
                    "the helper job {name} still runs a task {}s after its removal",
                    REMOVAL_TIMEOUT.as_secs()
                ),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn wait(
    port: &impl SwarmPort,
    id: &str,
    nodes: &[String],
    timeout: Duration,
) -> Result<BTreeMap<String, NodeOutput>, DockerError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let tasks = port.list_tasks(id).await?;
        let ended: BTreeMap<&str, _> = tasks
            .iter()
            .filter(|t| t.state.ended() && nodes.contains(&t.node_id))
            .map(|t| (t.node_id.as_str(), t))
            .collect();
        if nodes.iter().all(|n| ended.contains_key(n.as_str())) {
            let mut out = BTreeMap::new();
            for (node, t) in ended {
                // Logs that cannot be read (a log driver without reads) fail the job: an
                // empty output must never stand for an empty mount.
                let output = port.task_logs(&t.id).await?;
                out.insert(
                    node.to_string(),
                    NodeOutput {
                        node_id: node.to_string(),
                        state: t.state.clone(),
                        error: t.error.clone(),
                        exit_code: t.exit_code,
                        output,
                    },
                );
            }
            return Ok(out);
        }
        // A node that cannot take the job's task (down, drained, paused) never will while it
        // stays so: name it now instead of waiting out the timeout.
        let listed = port.list_nodes().await?;
        let blocked: Vec<String> = nodes
            .iter()
            .filter(|n| !ended.contains_key(n.as_str()))
            .filter_map(|n| crate::docker::swarm::unschedulable_node(&listed, n))
            .collect();
        if !blocked.is_empty() {
            return Err(DockerError::Conflict(format!("the helper job cannot run there: {}", blocked.join("; "))));
        }
        if tokio::time::Instant::now() >= deadline {
            let waiting: Vec<String> = nodes
                .iter()
                .filter(|n| !ended.contains_key(n.as_str()))
                .map(|n| {
                    let seen = tasks.iter().find(|t| &t.node_id == n);
                    match seen {
                        Some(t) => format!(
                            "{n} (task {:?}{})",
                            t.state,
                            if t.error.is_empty() { String::new() } else { format!(": {}", t.error) }
                        ),
                        None => format!("{n} (no task)"),
                    }
                })
                .collect();
            return Err(DockerError::Api {
                status: 504,
                message: format!(
                    "helper job did not finish on node(s) {} within {}s",
                    waiting.join(", "),
                    timeout.as_secs()
                ),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The scan of [`reown::SCAN_SCRIPT`], printing its records on stdout instead of a file (a
/// job's output comes back through its logs).
fn scan_script() -> String {
    // In a subshell: the scan of a single file ends early with `exit 0`, and the end line
    // must follow every whole scan and no failed one. Not `( … ) && echo END`: a shell
    // ignores `set -e` inside the left side of `&&`, so a failed find would end in END.
    format!(
        "(\n{})\nrc=$?\n[ \"$rc\" -ne 0 ] || echo {SCAN_END}\nexit \"$rc\"\n",
        reown::SCAN_SCRIPT.replace("exec > /unroot-scan.out\n", "")
    )
}

/// The last line of a whole scan: output without it was cut short (a log rotated away, a
/// task killed) and is never taken for a mount with nothing to change.
const SCAN_END: &str = "END";

/// A scan's records without their end line, or why the output is not a whole scan.
fn whole_scan(output: &[u8]) -> Result<&[u8], String> {
    output
        .strip_suffix(format!("{SCAN_END}\n").as_bytes())
        .ok_or_else(|| "the scan's output came back incomplete (is the service's log driver readable?)".to_string())
}

/// The apply: scans again exactly as the saved manifest was made and refuses (exit 3) when
/// the scan lists an entry the manifest does not list as it is (the mount changed since the
/// manifest was saved: a file was added or re-owned by someone else). An entry already at
/// the target is not listed any more, so a retry after a partial apply goes on. Then it sets
/// every listed entry (`C` lines; a symlink itself, never its target) to `U:G`, the mount's
/// root last. Names with a newline never reach it (the scan refuses them), so the list goes
/// through `tr` to NUL-separated `xargs -0` on a pipe (busybox's `xargs` splices arguments
/// read from a regular file).
fn apply_script() -> String {
    format!(
        r#"set -eu
U=$1; G=$2; HL=$3
{receive}
(
{scan}
) > /unroot-scan.out
NEW=$(awk 'NR == FNR {{ saved[$0] = 1; next }} !($0 in saved) && $0 != "R '"$U:$G"'" {{ n++ }} END {{ print n + 0 }}' /unroot-saved.out /unroot-scan.out)
if [ "$NEW" != 0 ]; then
  echo "the mount changed since its manifest was saved ($NEW entries it does not list as they are now)" >&2
  exit 3
fi
[ ! -d /unroot-mount ] || cd /unroot-mount
sed -n 's/^C [0-9]*:[0-9]* //p' /unroot-scan.out | tr '\n' '\0' | xargs -0 -r chown -h -- "$U:$G"
if grep -q '^R ' /unroot-scan.out && ! grep -qx "R $U:$G" /unroot-scan.out; then
  chown -h -- "$U:$G" /unroot-mount
fi
echo applied
"#,
        receive = RECEIVE,
        scan = scan_script()
    )
}

/// The start of a script that is handed a manifest: its pieces (Swarm configs, in order)
/// put together as `/unroot-saved.out` and checked against the sha256 given as the last
/// argument, so a manifest that did not arrive whole is never acted on.
const RECEIVE: &str = r#"eval "WANT=\${$#}"
cat /unroot-manifest/part-* > /unroot-saved.out
HAVE=$(sha256sum < /unroot-saved.out | cut -d' ' -f1)
if [ "$HAVE" != "$WANT" ]; then
  echo "the manifest did not arrive whole" >&2
  exit 3
fi"#;

/// Changes `mount` on each node of `manifests` to `target`, where what the node's scan lists
/// now is still in the manifest saved for it; per node, done or why not (one node's failure
/// leaves the others' results).
///
/// Guarantees: idempotent: a node whose entries are already at the target has nothing left
/// to change, and a node whose mount changed since its manifest was saved is not touched
/// (its task refuses with exit 3).
pub async fn apply(
    port: &impl SwarmPort,
    site: &JobSite<'_>,
    manifests: &BTreeMap<String, Vec<u8>>,
    target: Owner,
    hardlinks: bool,
) -> BTreeMap<String, Result<(), String>> {
    let hl = if hardlinks { "1" } else { "0" };
    let args = [target.uid.to_string(), target.gid.to_string(), hl.to_string()];
    let mut done = BTreeMap::new();
    for (node, manifest) in manifests {
        let result = with_manifest(port, site, node, manifest, &apply_script(), &args).await.map(|_| ());
        done.insert(node.clone(), result);
    }
    done
}

/// The largest piece of a manifest in one Swarm config (a config holds at most 500 KB).
const CONFIG_PIECE: usize = 400 * 1024;
/// The most pieces one manifest may take (40 MB, about 400,000 entries): configs live in
/// the managers' Raft log, which is not a place for more.
const MAX_PIECES: usize = 100;
/// Where a task finds its manifest's pieces, in order.
const MANIFEST_DIR: &str = "/unroot-manifest";

/// The restore: gives each listed entry (`C` lines) of the manifest it is handed back the
/// owner it had, a list per owner, the mount's root its owner (`R`), and then each setuid
/// or setgid file its mode and each file with capabilities those (`P` lines: the owner change
/// removed them), only while it holds the contents the scan saw, on regular files only,
/// never through a symlink. An entry deleted
/// since (a database removes files all the time) is skipped and counted (`gone N`); any
/// other failure fails the task.
fn restore_script() -> String {
    format!(
        r#"set -eu
{RECEIVE}
[ ! -d /unroot-mount ] || cd /unroot-mount
: > /unroot-errors
for owner in $(sed -n 's/^C \([0-9]*:[0-9]*\) .*/\1/p' /unroot-saved.out | sort -u); do
  grep "^C $owner " /unroot-saved.out | sed "s/^C $owner //" | tr '\n' '\0' | xargs -0 -r chown -h -- "$owner" 2>>/unroot-errors || true
done
root=$(sed -n 's/^R //p' /unroot-saved.out)
[ -z "$root" ] || chown -h -- "$root" /unroot-mount
sed -n 's/^P //p' /unroot-saved.out > /unroot-privileged
while IFS= read -r line; do
  sum=${{line%% *}}; rest=${{line#* }}; m=${{rest%% *}}; rest=${{rest#* }}; c=${{rest%% *}}; p=${{rest#* }}
  if [ -L "$p" ] || [ ! -f "$p" ]; then continue; fi
  h=$(sha256sum < "$p"); [ "${{h%% *}}" = "$sum" ] || continue
  [ "$m" = - ] || chmod -- "$m" "$p" 2>>/unroot-errors || true
  if [ "$c" != - ] && command -v setfattr >/dev/null 2>&1; then
    setfattr -h -n security.capability -v "0x$c" -- "$p" 2>>/unroot-errors || true
  fi
done < /unroot-privileged
gone=0; bad=0
while IFS= read -r line; do
  case "$line" in
    *"No such file or directory"|*"Not a directory") gone=$((gone + 1)) ;;
    *) printf '%s\n' "$line" >&2; bad=1 ;;
  esac
done < /unroot-errors
echo "gone $gone"
[ "$bad" = 0 ]
"#
    )
}

/// The names of the configs that carry one node's manifest to a job: they sort in order up
/// to [`MAX_PIECES`] and more.
fn piece_names(job: &str, node: &str, pieces: usize) -> Vec<String> {
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(format!("{job}\0{node}").as_bytes()));
    (0..pieces).map(|i| format!("unroot-manifest-{}-{i:06}", &hash[..16])).collect()
}

/// Runs `script` (with `args` and the manifest's sha256 last) on `node` alone, with
/// `manifest` handed over as Swarm configs that are removed again afterwards; what the task
/// printed, or why it did not succeed.
async fn with_manifest(
    port: &impl SwarmPort,
    site: &JobSite<'_>,
    node: &str,
    manifest: &[u8],
    script: &str,
    args: &[String],
) -> Result<NodeOutput, String> {
    use sha2::Digest;
    let pieces: Vec<&[u8]> = if manifest.is_empty() { vec![&[][..]] } else { manifest.chunks(CONFIG_PIECE).collect() };
    if pieces.len() > MAX_PIECES {
        return Err(format!(
            "its manifest is {} MB, more than the {} MB unroot hands to a node through Swarm configs",
            manifest.len() >> 20,
            (MAX_PIECES * CONFIG_PIECE) >> 20
        ));
    }
    let names = piece_names(site.name, node, pieces.len());
    // A job of this name left by an interrupted attempt holds the configs: it goes first.
    remove_and_wait(port, site.name).await.map_err(|e| e.to_string())?;
    let labels: BTreeMap<String, String> = [
        (orphans::LABEL_HELPER.to_string(), site.run.to_string()),
        (orphans::LABEL_MAKER.to_string(), orphans::maker()),
    ]
    .into();
    let mut configs = Vec::new();
    let mut result = Ok(());
    for (i, (name, piece)) in names.iter().zip(&pieces).enumerate() {
        let _ = port.remove_config(name).await;
        match port.create_config(name, labels.clone(), piece).await {
            Ok(id) => configs.push(json!({
                "File": {"Name": format!("{MANIFEST_DIR}/part-{i:06}"), "UID": "0", "GID": "0", "Mode": 0o400},
                "ConfigID": id,
                "ConfigName": name
            })),
            Err(e) => {
                result = Err(e.to_string());
                break;
            }
        }
    }
    let job = async {
        result?;
        let mut all = args.to_vec();
        all.push(hex::encode(sha2::Sha256::digest(manifest)));
        // That node alone, whatever the service's placement says now: a node that no
        // longer matches it (a label removed) still holds its copy of the data.
        let on_node = [format!("node.id=={node}")];
        let mut job = spec(site.name, site.run, site.image, site.mount, &on_node, script, &all);
        job["TaskTemplate"]["ContainerSpec"]["Configs"] = json!(configs);
        run(port, job, &[node.to_string()], site.timeout).await.map_err(|e| e.to_string())
    };
    // The configs go whatever happened to the job, a panic included (it is passed on after).
    let out = std::panic::AssertUnwindSafe(job).catch_unwind().await;
    for name in &names {
        let _ = port.remove_config(name).await;
    }
    let out = out.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    match out?.remove(node) {
        Some(o) if o.succeeded() => Ok(o),
        Some(o) => Err(o.failure()),
        None => Err("no task ran".to_string()),
    }
}

/// Gives each node's copy of the mount back the owners its manifest recorded; per node, how
/// many listed entries were gone, or why it failed (one node's failure leaves the others'
/// results).
///
/// Guarantees: idempotent: it sets owners to what the manifest says, so a second run
/// changes nothing more; a job or configs of the same names left by an interrupted attempt
/// are removed first.
pub async fn restore(
    port: &impl SwarmPort,
    site: &JobSite<'_>,
    manifests: &BTreeMap<String, Vec<u8>>,
) -> BTreeMap<String, Result<usize, String>> {
    let mut done = BTreeMap::new();
    for (node, manifest) in manifests {
        let result = with_manifest(port, site, node, manifest, &restore_script(), &[])
            .await
            .map(|o| reown::parse_gone(&o.output.stdout));
        done.insert(node.clone(), result);
    }
    done
}

/// Scans `mount` on each of `nodes`: per node, what would change to `target`, or why the
/// scan failed there.
///
/// Errors: the job cannot be run or does not finish on every node (see [`run`]).
pub async fn scan(
    port: &impl SwarmPort,
    site: &JobSite<'_>,
    nodes: &[String],
    target: Owner,
    hardlinks: bool,
) -> Result<BTreeMap<String, Result<Scanned, String>>, DockerError> {
    let args = [target.uid.to_string(), target.gid.to_string(), if hardlinks { "1" } else { "0" }.to_string()];
    // Only on `nodes`: every other node is ruled out (a job's task would create the volume
    // on a node that never held it).
    // Exactly on `nodes` (each one the service's tasks ran on), ruling out every other
    // node: not the service's placement, which a node may no longer match while its copy of
    // the data is there (a job waiting on it would wait for ever).
    let constraints: Vec<String> = port
        .list_nodes()
        .await?
        .into_iter()
        .filter(|n| !nodes.contains(&n.id))
        .map(|n| format!("node.id!={}", n.id))
        .collect();
    let spec = spec(site.name, site.run, site.image, site.mount, &constraints, &scan_script(), &args);
    let outputs = run(port, spec, nodes, site.timeout).await?;
    Ok(outputs
        .into_iter()
        .map(|(node, o)| {
            let parsed = if o.succeeded() {
                whole_scan(&o.output.stdout)
                    .and_then(|records| reown::parse_scan(records, target))
                    .map(|changes| Scanned { changes, manifest: o.output.stdout.clone() })
            } else {
                Err(o.failure())
            };
            (node, parsed)
        })
        .collect())
}

/// One node's scan: what changes, and the scan's output as it came (the manifest to save
/// and to hand the apply job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    pub changes: MountChanges,
    pub manifest: Vec<u8>,
}

#[cfg(test)]
mod tests;
