//! Re-owning mounts (SPEC §4): which bind sources are refused, the helper's scripts, and the
//! ownership manifest that lets a rollback restore every owner exactly.
//!
//! Re-owning runs in two phases so the manifest is durable before any owner changes:
//! a **scan** lists every entry whose uid or gid differs from the target (without following
//! symlinks, without leaving the mount's filesystem, hard-linked files set aside), and an
//! **apply** changes exactly the listed entries, the mount's root last. A restore is an
//! apply with the old owners. Each phase runs in a helper container holding one mount.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

pub use crate::model::owner::{Manifest, MountChanges, MountId, Owner, Privileged};

/// Host paths a bind mount may not be, contain or lie inside.
const PROTECTED_TREES: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib64",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var/lib/docker",
    "/var/run",
];
/// Host paths a bind mount may not be (but may lie inside).
const PROTECTED_EXACT: &[&str] = &["/home", "/var"];

/// The host paths unroot never re-owns: those a bind source may not be, contain or lie in,
/// and those it may only not be (docs/plan.md's list is generated from these).
pub fn protected_paths() -> (&'static [&'static str], &'static [&'static str]) {
    (PROTECTED_TREES, PROTECTED_EXACT)
}

/// Lexically normalises an absolute path: no `.`, no `..`, no trailing slash.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Why a bind-mount source must not be re-owned, or `None` when it may be.
///
/// The path is checked as written and, when it exists here, as it resolves (a symlink to
/// `/etc` is `/etc`).
pub fn protected_bind(source: &str) -> Option<String> {
    let written = normalize(Path::new(source));
    let mut candidates = vec![written.clone()];
    if let Ok(real) = std::fs::canonicalize(&written)
        && real != written
    {
        candidates.push(real);
    }
    candidates.iter().find_map(|p| why_protected(p))
}

/// [`protected_bind`] for a source on another host (a Swarm node): the path as written only,
/// since resolving it here says nothing of that host.
pub fn protected_bind_as_written(source: &str) -> Option<String> {
    why_protected(&normalize(Path::new(source)))
}

/// Why `path` (normalized) must not be re-owned: a docker.sock, a protected path itself, a
/// path inside a protected tree, or one that contains a protected path.
fn why_protected(path: &Path) -> Option<String> {
    if path.file_name().is_some_and(|n| n == "docker.sock") {
        return Some(format!("{} is a docker.sock", path.display()));
    }
    for p in PROTECTED_EXACT {
        if path == Path::new(p) {
            return Some(format!("{} is {p} itself", path.display()));
        }
    }
    for p in PROTECTED_TREES {
        let p = Path::new(p);
        if path == p {
            return Some(format!("{} is a protected system path", path.display()));
        }
        if path.starts_with(p) && p != Path::new("/") {
            return Some(format!("{} lies inside {}", path.display(), p.display()));
        }
        if p.starts_with(path) {
            return Some(format!("{} contains {}", path.display(), p.display()));
        }
    }
    None
}

/// Where the helper mounts the one mount it works on.
pub const HELPER_MOUNT: &str = "/unroot-mount";
/// Where the apply phase's lists are uploaded in the helper.
pub const HELPER_LISTS: &str = "/unroot-lists";

/// Where the scan writes its listing in the helper; read back through the archive API
/// (container logs may be rotated or split, a file is not).
pub const SCAN_OUTPUT: &str = "/unroot-scan.out";

/// The scan: writes `C uid:gid ./path` for each entry to change, `S uid:gid ./path` for each
/// hard-linked file set aside, `M mode ./path` (octal) for each regular file to change that
/// has a setuid or setgid bit or file capabilities (where the image has `getfattr`), which
/// the owner change removes (`P sha256 mode|- caps|- ./path`), and `R uid:gid` for the
/// mount's
/// root to [`SCAN_OUTPUT`] (`H uid:gid` instead when the mount is a single file with more than
/// one hard link, set aside).
/// Arguments: uid, gid, `1` when hard-linked files may be changed. A name holding a newline
/// is reported as `N` and makes [`parse_scan`] refuse: the manifest could not name it
/// unambiguously. A mount that is one file (a config file, an SQLite file) has only a root.
pub const SCAN_SCRIPT: &str = r#"set -eu
U=$1; G=$2; HL=$3
exec > /unroot-scan.out
if [ ! -d /unroot-mount ]; then
  # One file: only its own owner.
  if [ "$HL" != 1 ] && [ "$(stat -c %h /unroot-mount)" -gt 1 ]; then
    stat -c 'H %u:%g' /unroot-mount
  else
    stat -c 'R %u:%g' /unroot-mount
  fi
  exit 0
fi
cd /unroot-mount
nl='
'
# One traversal: names holding a newline are reported (N) and refuse the whole scan; the
# rest that differ from U:G are listed (C), hard-linked files set aside (S) unless HL=1.
# (busybox's find mishandles `-exec {} +` inside parentheses, so none is.)
if [ "$HL" = 1 ]; then
  find . -xdev -mindepth 1 -name "*${nl}*" -exec stat -c 'N %n' {} + -o \
    \( ! -user "$U" -o ! -group "$G" \) -exec stat -c 'C %u:%g %n' {} +
else
  find . -xdev -mindepth 1 -name "*${nl}*" -exec stat -c 'N %n' {} + -o \
    \( ! -user "$U" -o ! -group "$G" \) \( -type d -o -links 1 \) -exec stat -c 'C %u:%g %n' {} + -o \
    \( ! -user "$U" -o ! -group "$G" \) -exec stat -c 'S %u:%g %n' {} +
fi
# Files to change that the owner change strips of privileges: setuid or setgid bits, and
# file capabilities where the image can read them (getfattr, Debian's attr package; busybox
# has none), each with the sha256 of its contents (P sha256 mode|- caps|- ./path).
find . -xdev -mindepth 1 -type f \( ! -user "$U" -o ! -group "$G" \) \
  \( -perm -4000 -o -perm -2000 -o -perm -100 -o -perm -010 -o -perm -001 \) -exec sh -c '
  x=; if command -v getfattr >/dev/null 2>&1; then x=1; fi
  for f; do
    m=-; c=-; a=$(stat -c %a "$f")
    case $a in [2-7][0-7][0-7][0-7]) m=$a ;; esac
    if [ -n "$x" ]; then
      v=$(getfattr -h -n security.capability -e hex -- "$f" 2>/dev/null | sed -n "s/^security\.capability=0x//p")
      [ -z "$v" ] || c=$v
    fi
    if [ "$m" != - ] || [ "$c" != - ]; then h=$(sha256sum < "$f"); echo "P ${h%% *} $m $c $f"; fi
  done' unroot-privileged {} +
stat -c 'R %u:%g' .
"#;

/// The apply: for each uploaded list `/unroot-lists/<uid:gid>` (one relative path a line,
/// backslash-escaped for `xargs`), changes the owner of each path itself (`-h`: a symlink is
/// changed, never followed); then the root from `/unroot-lists/root` if present; then the
/// modes of `/unroot-lists/modes` (`mode ./path` a line: the setuid and setgid bits the
/// owner change cleared) and file capabilities of `/unroot-lists/privileged` (`sha256
/// mode|- caps|- ./path`), on regular files that still hold the same contents only, never
/// through a symlink; capabilities only where the image has `setfattr`. An entry
/// that is gone since the scan (a database deletes files all the time) is skipped and
/// counted: the script prints `gone N`; any other failure fails it. busybox 1.35's `xargs`
/// splices long arguments into each other when its input is a regular file (with or without
/// `-0`) but not when it is a pipe, hence `cat |`.
pub const APPLY_SCRIPT: &str = r#"set -eu
[ ! -d /unroot-mount ] || cd /unroot-mount
: > /unroot-lists/.errors
for list in /unroot-lists/*:*; do
  [ -e "$list" ] || continue
  cat "$list" | xargs -r chown -h -- "${list##*/}" 2>>/unroot-lists/.errors || true
done
if [ -e /unroot-lists/root ]; then
  chown -h -- "$(cat /unroot-lists/root)" /unroot-mount
fi
if [ -e /unroot-lists/privileged ]; then
  while IFS= read -r line; do
    sum=${line%% *}; rest=${line#* }; m=${rest%% *}; rest=${rest#* }; c=${rest%% *}; p=${rest#* }
    if [ -L "$p" ] || [ ! -f "$p" ]; then continue; fi
    h=$(sha256sum < "$p"); [ "${h%% *}" = "$sum" ] || continue
    [ "$m" = - ] || chmod -- "$m" "$p" 2>>/unroot-lists/.errors || true
    if [ "$c" != - ] && command -v setfattr >/dev/null 2>&1; then
      setfattr -h -n security.capability -v "0x$c" -- "$p" 2>>/unroot-lists/.errors || true
    fi
  done < /unroot-lists/privileged
fi
gone=0; bad=0
while IFS= read -r line; do
  case "$line" in
    *"No such file or directory"|*"Not a directory") gone=$((gone + 1)) ;;
    *) printf '%s\n' "$line" >&2; bad=1 ;;
  esac
done < /unroot-lists/.errors
echo "gone $gone"
[ "$bad" = 0 ]
"#;

/// How many listed entries the apply script found gone (its `gone N` line).
pub fn parse_gone(stdout: &[u8]) -> usize {
    String::from_utf8_lossy(stdout).lines().find_map(|l| l.strip_prefix("gone ")?.trim().parse().ok()).unwrap_or(0)
}

/// A path as one line of an `xargs` list: blanks, quotes and backslashes escaped. Names
/// never hold a newline (the scan refuses them).
fn xargs_escape(path: &str, out: &mut Vec<u8>) {
    for c in path.chars() {
        if matches!(c, ' ' | '\t' | '\'' | '"' | '\\') {
            out.push(b'\\');
        }
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    out.push(b'\n');
}

/// A relative path that stays inside the mount: `./…` without a `..` component.
fn inside(path: &str) -> bool {
    path.starts_with("./") && !path.split('/').any(|c| c == "..")
}

/// Parses the scan's output for a target `uid:gid`.
///
/// Errors: a line that is not a scan record (the helper failed in a way its exit code did
/// not show), or a name that is not UTF-8.
pub fn parse_scan(output: &[u8], target: Owner) -> Result<MountChanges, String> {
    let text = std::str::from_utf8(output).map_err(|_| "a name in the mount is not UTF-8; refusing".to_string())?;
    let mut changes = MountChanges::default();
    if text.lines().any(|l| l.starts_with("N ")) {
        return Err("a name in this mount holds a newline; refusing to re-own it".into());
    }
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (tag, rest) = line.split_once(' ').ok_or_else(|| format!("unexpected scan output: {line:?}"))?;
        if tag == "P" {
            let p = parse_privileged(rest).ok_or_else(|| format!("unexpected scan output: {line:?}"))?;
            changes.privileged.push(p);
            continue;
        }
        let (owner, path) = match rest.split_once(' ') {
            Some((o, p)) => (o, Some(p)),
            None => (rest, None),
        };
        let owner: Owner = owner.parse().map_err(|_| format!("unexpected scan output: {line:?}"))?;
        match (tag, path) {
            ("C", Some(p)) if inside(p) => changes.entries.push((p.to_string(), owner)),
            ("S", Some(p)) if inside(p) => changes.skipped.push(p.to_string()),
            ("R", None) => {
                if owner != target {
                    changes.root = Some(owner);
                }
            }
            ("H", None) => changes.skipped.push(".".to_string()),
            _ => return Err(format!("unexpected scan output: {line:?}")),
        }
    }
    changes.privileged.sort();
    Ok(changes)
}

/// One `P` record of the scan: `sha256 mode|- caps|- ./path`.
fn parse_privileged(rest: &str) -> Option<Privileged> {
    let mut parts = rest.splitn(4, ' ');
    let (sha256, mode, caps, path) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let sha_ok = sha256.len() == 64 && hex::decode(sha256).is_ok();
    let mode = match mode {
        "-" => None,
        m => Some(u32::from_str_radix(m, 8).ok().filter(|m| *m <= 0o7777)?),
    };
    let caps = match caps {
        "-" => None,
        c => Some(c.to_string()).filter(|c| hex::decode(c).is_ok_and(|b| !b.is_empty()))?.into(),
    };
    (sha_ok && inside(path) && (mode.is_some() || caps.is_some())).then(|| Privileged {
        path: path.to_string(),
        sha256: sha256.to_string(),
        mode,
        caps,
    })
}

/// The files the apply script reads to set every listed entry to `owner_of(entry)`:
/// one list per owner, `root` for the mount's root, and `privileged` for the setuid and
/// setgid bits and file capabilities a restore gives back after. As a tar stream to upload
/// at [`HELPER_LISTS`]'s parent.
pub fn apply_lists(entries: &[(String, Owner)], root: Option<Owner>, attrs: &MountChanges) -> Vec<u8> {
    let mut by_owner: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (path, owner) in entries {
        xargs_escape(path, by_owner.entry(owner.to_string()).or_default());
    }
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |name: &str, body: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o600);
        h.set_cksum();
        tar.append_data(&mut h, format!("unroot-lists/{name}"), body).expect("writing to a Vec");
    };
    for (owner, list) in &by_owner {
        add(owner, list);
    }
    if let Some(r) = root {
        add("root", r.to_string().as_bytes());
    }
    if !attrs.privileged.is_empty() {
        let list: String = attrs
            .privileged
            .iter()
            .map(|p| {
                let mode = p.mode.map_or("-".to_string(), |m| format!("{m:o}"));
                format!("{} {mode} {} {}\n", p.sha256, p.caps.as_deref().unwrap_or("-"), p.path)
            })
            .collect();
        add("privileged", list.as_bytes());
    }
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o700);
    dir.set_size(0);
    dir.set_cksum();
    let mut out = tar;
    out.append_data(&mut dir, "unroot-lists/", &[][..]).expect("writing to a Vec");
    out.into_inner().expect("writing to a Vec")
}

#[cfg(test)]
mod tests {
    use super::*;
    /// An owner from its `uid:gid` text.
    fn o(text: &str) -> crate::model::owner::Owner {
        text.parse().unwrap()
    }

    #[test]
    fn protected_sources() {
        for (p, why) in [
            ("/", "protected system path"),
            ("/etc", "protected system path"),
            ("/etc/nginx", "lies inside /etc"),
            ("/var/lib/docker/volumes/x", "lies inside /var/lib/docker"),
            ("/var/lib", "contains /var/lib/docker"),
            ("/var", "/var itself"),
            ("/home", "/home itself"),
            ("/srv/app/docker.sock", "is a docker.sock"),
            ("/srv/../etc", "protected system path"),
            ("/usr/", "protected system path"),
        ] {
            let r = protected_bind(p);
            assert!(r.as_deref().is_some_and(|r| r.contains(why)), "{p}: {r:?}");
        }
        for p in ["/home/alice/data", "/srv/data", "/var/lib/app", "/opt/x", "/data"] {
            assert_eq!(protected_bind(p), None, "{p}");
        }
    }

    #[test]
    fn scan_output_parses_into_changes() {
        let out = b"C 0:0 ./a\nC 0:0 ./a b/c\nS 0:0 ./hard\nR 0:0\n";
        let c = parse_scan(out, o("999:999")).unwrap();
        assert_eq!(c.entries, [("./a".to_string(), o("0:0")), ("./a b/c".into(), o("0:0"))]);
        assert_eq!(c.skipped, ["./hard"]);
        assert_eq!(c.root, Some(o("0:0")));
        assert_eq!(c.count(), 3);
        let file = parse_scan(b"H 0:0\n", o("1:1")).unwrap();
        assert_eq!((file.skipped.as_slice(), file.root), ([".".to_string()].as_slice(), None));
        assert_eq!(parse_gone(b"gone 3\n"), 3);
        assert_eq!(parse_gone(b""), 0);
        let done = parse_scan(b"R 999:999\n", o("999:999")).unwrap();
        assert!(done.is_empty(), "a second run has nothing to change");
        assert!(parse_scan(b"sh: find: not found\n", o("1:1")).is_err());
        assert!(parse_scan(b"C 0:0 /abs\n", o("1:1")).is_err());
        assert!(parse_scan(b"C 0:0 ./a/../../etc\n", o("1:1")).is_err(), "no way out of the mount");
        let sha = "a".repeat(64);
        let line = |rest: &str| format!("C 0:0 ./x\nP {sha} {rest}\nR 0:0\n").into_bytes();
        let suid = parse_scan(&line("4755 - ./bin/s u"), o("1:1")).unwrap();
        let want = Privileged { path: "./bin/s u".into(), sha256: sha.clone(), mode: Some(0o4755), caps: None };
        assert_eq!(suid.privileged, [want]);
        let caps = parse_scan(&line("- 01000002 ./ping"), o("1:1")).unwrap();
        assert_eq!((caps.privileged[0].mode, caps.privileged[0].caps.as_deref()), (None, Some("01000002")));
        for bad in ["4755 - /bin/su", "rwx - ./a", "- zz ./ping", "- - ./plain", "4755 -"] {
            assert!(parse_scan(&line(bad), o("1:1")).is_err(), "{bad}");
        }
        assert!(parse_scan(b"P abc 4755 - ./a\n", o("1:1")).is_err(), "a sha256 is 64 hex digits");
        let forged = b"N ./x\nC 0:0 ./y\nC 0:0 ./z\n";
        assert!(parse_scan(forged, o("1:1")).unwrap_err().contains("newline"), "a newline name refuses it all");
    }

    #[test]
    fn apply_lists_group_paths_by_owner() {
        let tar_bytes = apply_lists(
            &[("./a".into(), o("0:0")), ("./b c".into(), o("5:6")), ("./it's \\ \"x\"".into(), o("0:0"))],
            Some(o("0:0")),
            &MountChanges::default(),
        );
        let mut files = BTreeMap::new();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut body).unwrap();
            files.insert(e.path().unwrap().display().to_string(), body);
        }
        assert_eq!(files["unroot-lists/0:0"], b"./a\n./it\\'s\\ \\\\\\ \\\"x\\\"\n");
        assert_eq!(files["unroot-lists/5:6"], b"./b\\ c\n");
        assert_eq!(files["unroot-lists/root"], b"0:0");
        assert!(!files.contains_key("unroot-lists/privileged"), "none when there are none");
        let su = Privileged { path: "./su id".into(), sha256: "f".repeat(64), mode: Some(0o4755), caps: None };
        let attrs = MountChanges { privileged: vec![su], ..Default::default() };
        let with_modes = apply_lists(&[("./su".into(), o("0:0"))], None, &attrs);
        let mut archive = tar::Archive::new(&with_modes[..]);
        let modes =
            archive.entries().unwrap().map(|e| e.unwrap()).find(|e| e.path().unwrap().ends_with("privileged")).map(
                |mut e| {
                    let mut body = String::new();
                    std::io::Read::read_to_string(&mut e, &mut body).unwrap();
                    body
                },
            );
        assert_eq!(modes, Some(format!("{} 4755 - ./su id\n", "f".repeat(64))));
    }
}

/// The scan and apply scripts themselves, run by this host's `sh` on a directory of its own
/// (the helper's paths rewritten), as a helper image with GNU tools and `attr` runs them.
#[cfg(test)]
mod script_tests {
    use super::*;

    /// Runs `script` with `args`, its fixed paths moved under `base`.
    fn run(script: &str, base: &std::path::Path, args: &[&str]) -> std::process::Output {
        let b = base.to_str().unwrap();
        let script = script
            .replace(HELPER_MOUNT, &format!("{b}/mount"))
            .replace(HELPER_LISTS, &format!("{b}/lists"))
            .replace(SCAN_OUTPUT, &format!("{b}/scan.out"));
        std::process::Command::new("sh").arg("-c").arg(script).arg("unroot-helper").args(args).output().unwrap()
    }

    #[test]
    fn setuid_bits_and_file_capabilities_are_listed_by_the_scan_and_set_again_by_the_apply() {
        use std::os::unix::fs::PermissionsExt;
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root to change owners");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let mount = tmp.path().join("mount");
        std::fs::create_dir_all(mount.join("bin")).unwrap();
        for (name, mode) in [("bin/su", 0o4755), ("bin/ping", 0o755), ("data", 0o644), ("bin/my prog", 0o4755)] {
            std::fs::write(mount.join(name), name).unwrap();
            std::fs::set_permissions(mount.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let caps = [1u8, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // cap_net_raw=ep
        let ping = mount.join("bin/ping");
        if rustix::fs::setxattr(&ping, "security.capability", &caps, rustix::fs::XattrFlags::empty()).is_err() {
            eprintln!("skipped: this filesystem takes no file capabilities");
            return;
        }
        let has_getfattr = std::process::Command::new("sh").args(["-c", "command -v getfattr"]).output().unwrap();
        assert!(has_getfattr.status.success(), "the attr package (getfattr, setfattr) is installed where tests run");

        let out = run(SCAN_SCRIPT, tmp.path(), &["1000", "1000", "0"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let scanned = std::fs::read(tmp.path().join("scan.out")).unwrap();
        let changes = parse_scan(&scanned, Owner::new(1000, 1000)).unwrap();
        let seen: Vec<(&str, Option<u32>, Option<&str>)> =
            changes.privileged.iter().map(|p| (p.path.as_str(), p.mode, p.caps.as_deref())).collect();
        let hex_caps = hex::encode(caps);
        assert_eq!(
            seen,
            [
                ("./bin/my prog", Some(0o4755), None),
                ("./bin/ping", None, Some(hex_caps.as_str())),
                ("./bin/su", Some(0o4755), None)
            ]
        );

        // The re-own clears both (as chown does); the restore's lists set them again.
        let to: Vec<(String, Owner)> =
            changes.entries.iter().map(|(p, _)| (p.clone(), Owner::new(1000, 1000))).collect();
        let apply = |entries: &[(String, Owner)], attrs: &MountChanges| {
            let _ = std::fs::remove_dir_all(tmp.path().join("lists"));
            tar::Archive::new(&apply_lists(entries, None, attrs)[..]).unpack(tmp.path()).unwrap();
            std::fs::rename(tmp.path().join("unroot-lists"), tmp.path().join("lists")).unwrap();
            let out = run(APPLY_SCRIPT, tmp.path(), &[]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        };
        apply(&to, &MountChanges::default());
        let mode = |p: &str| std::fs::metadata(mount.join(p)).unwrap().permissions().mode() & 0o7777;
        let cap = || {
            let mut buf = [0u8; 64];
            rustix::fs::getxattr(&ping, "security.capability", &mut buf[..]).ok().map(|n| buf[..n].to_vec())
        };
        assert_eq!((mode("bin/su"), cap()), (0o755, None), "cleared by the owner change");
        // The service, which owns it now, rewrites one with a program of its own.
        std::fs::write(mount.join("bin/my prog"), "its own program").unwrap();
        apply(&changes.entries, &changes);
        assert_eq!((mode("bin/su"), cap().as_deref()), (0o4755, Some(&caps[..])), "set again by the restore");
        assert_eq!(mode("bin/my prog"), 0o755, "other contents never become a setuid program");
    }
}
