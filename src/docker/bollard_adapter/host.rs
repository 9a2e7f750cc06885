//! Killing an exec that outlived its limit. Docker has no call that ends an exec, so its
//! process tree is killed by host pid, from this host: only where the daemon's processes
//! are this host's (a `unix://` endpoint), and only processes whose cgroup names the
//! container (a pid reused meanwhile by another process is left alone).

use std::fs;

/// The parent pid of `pid`, from `/proc/PID/stat` (the field after the command, which is
/// in parentheses and may hold spaces).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` runs in the cgroup of container `id`.
fn in_container(pid: i32, id: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| !id.is_empty() && c.contains(id))
}

/// `root` and every process below it, deepest last.
fn tree(root: i32) -> Vec<i32> {
    let all: Vec<(i32, i32)> = fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter_map(|p| Some((p, parent_of(p)?)))
                .collect()
        })
        .unwrap_or_default();
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    out
}

/// Kills (SIGKILL) the exec process `pid` of container `container` and everything it
/// started. Returns whether the exec's own process was killed.
///
/// Guarantees: kills only processes in the container's cgroup; idempotent (a process that
/// is gone is skipped).
pub fn kill_tree(pid: i64, container: &str) -> bool {
    let Ok(root) = i32::try_from(pid) else { return false };
    // Not this host's process, or not the container's: nothing is killed (a `unix://`
    // socket may lead to a daemon in a VM, whose pids are not this host's).
    if root <= 1 || !in_container(root, container) {
        return false;
    }
    let mut killed = false;
    for p in tree(root).into_iter().filter(|p| in_container(*p, container)) {
        if let Some(p) = rustix::process::Pid::from_raw(p) {
            let ok = rustix::process::kill_process(p, rustix::process::Signal::KILL).is_ok();
            killed |= ok && p.as_raw_nonzero().get() == root;
        }
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_of_this_process_holds_itself_and_its_children() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let me = std::process::id() as i32;
        assert_eq!(parent_of(child.id() as i32), Some(me));
        let t = tree(me);
        assert_eq!(t[0], me);
        assert!(t.contains(&(child.id() as i32)), "{t:?}");
        // Not a container's process: never killed.
        assert!(!kill_tree(child.id() as i64, "0123456789abcdef"));
        assert!(child.try_wait().unwrap().is_none(), "still running");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
