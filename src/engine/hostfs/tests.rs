//! The in-process walk against real directories (the tests change owners: they need root).

use super::*;
use std::os::unix::fs::{MetadataExt, symlink};

/// An owner from its `uid:gid` text.
fn o(text: &str) -> crate::model::owner::Owner {
    text.parse().unwrap()
}

/// A temporary directory reached through no symlink (the root is opened without one).
fn tempdir() -> std::io::Result<tempfile::TempDir> {
    tempfile::tempdir_in(std::fs::canonicalize(std::env::temp_dir())?)
}

fn own(p: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn scans_and_applies_without_following_links_and_restores_exactly() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to change owners");
        return;
    }
    let tmp = tempdir().unwrap();
    let root = tmp.path().join("vol");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(root.join("a/b/file"), "x").unwrap();
    std::fs::write(root.join("top"), "y").unwrap();
    std::fs::write(outside.join("secret"), "s").unwrap();
    std::fs::write(outside.join("hard"), "h").unwrap();
    symlink(outside.join("secret"), root.join("link")).unwrap();
    symlink(&outside, root.join("dirlink")).unwrap();
    std::fs::hard_link(outside.join("hard"), root.join("hard")).unwrap();
    rustix::fs::chown(root.join("top").as_path(), Some(Uid::from_raw(5)), Some(Gid::from_raw(6))).unwrap();

    let changes = scan(&root, o("1000:1000"), false).unwrap();
    let paths: Vec<&str> = changes.entries.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["./a", "./a/b", "./a/b/file", "./dirlink", "./link", "./top"]);
    assert_eq!(changes.skipped, ["./hard"]);
    assert_eq!(changes.root, Some(o("0:0")));

    let targets: Vec<(String, Owner)> = changes.entries.iter().map(|(p, _)| (p.clone(), o("1000:1000"))).collect();
    assert_eq!(apply(&root, &targets, Some(o("1000:1000"))).unwrap(), 0);
    for p in ["a", "a/b", "a/b/file", "link", "dirlink", "top", ""] {
        assert_eq!(own(&root.join(p)), (1000, 1000), "{p}");
    }
    assert_eq!(own(&outside.join("secret")), (0, 0), "the link was not followed");
    assert_eq!(own(&outside), (0, 0), "the directory link was not followed");
    assert_eq!(own(&outside.join("hard")), (0, 0), "the hard-linked file was set aside");
    assert!(scan(&root, o("1000:1000"), false).unwrap().is_empty(), "a second pass finds nothing");

    // Restore: a directory replaced by a link since is not followed.
    std::fs::rename(root.join("a/b"), tmp.path().join("moved")).unwrap();
    symlink(&outside, root.join("a/b")).unwrap();
    let skipped = apply(&root, &changes.entries, changes.root).unwrap();
    assert_eq!(skipped, 1, "./a/b/file is behind a link now");
    assert_eq!(own(&outside), (0, 0));
    assert_eq!(own(&root.join("top")), (5, 6), "restored exactly");
    assert_eq!(own(&root), (0, 0));
}

/// Set to the root the child run of [`nofile_child`] walks under a low descriptor limit.
const NOFILE_CHILD: &str = "UNROOT_TEST_HOSTFS_NOFILE_ROOT";
/// Subdirectories in that tree: far more than the child may hold open at once.
const MANY: usize = 5_000;

/// The child half of [`walks_many_directories_under_a_low_descriptor_limit`],
/// which runs it (ignored otherwise) with [`NOFILE_CHILD`] set.
#[test]
#[ignore = "the child half of walks_many_directories_under_a_low_descriptor_limit, which runs it"]
fn nofile_child() {
    let root = std::env::var(NOFILE_CHILD).expect("run by walks_many_directories_under_a_low_descriptor_limit");
    let root = Path::new(&root);
    let limit = rustix::process::Rlimit { current: Some(256), maximum: Some(256) };
    rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).unwrap();
    let changes = scan(root, o("1000:1000"), false).unwrap();
    // Every directory, a file in each, and a subdirectory with a file in every tenth.
    assert_eq!(changes.entries.len(), 2 * MANY + 2 * (MANY / 10));
    assert_eq!(changes.root, Some(o("0:0")));
    let targets: Vec<(String, Owner)> = changes.entries.iter().map(|(p, _)| (p.clone(), o("1000:1000"))).collect();
    assert_eq!(apply(root, &targets, Some(o("1000:1000"))).unwrap(), 0);
    assert!(scan(root, o("1000:1000"), false).unwrap().is_empty());
    assert_eq!(apply(root, &changes.entries, changes.root).unwrap(), 0);
    assert!(scan(root, o("0:0"), false).unwrap().is_empty(), "restored");
}

/// The child's name as the test harness knows it (the module path without the crate).
fn child_test_name() -> String {
    let module = module_path!().split_once("::").map_or(module_path!(), |(_, rest)| rest);
    format!("{module}::nofile_child")
}

#[test]
fn walks_many_directories_under_a_low_descriptor_limit() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to change owners");
        return;
    }
    let tmp = tempdir().unwrap();
    let root = tmp.path().join("vol");
    for i in 0..MANY {
        let d = root.join(format!("d{i}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("f"), "").unwrap();
        if i % 10 == 0 {
            std::fs::create_dir(d.join("s")).unwrap();
            std::fs::write(d.join("s/f"), "").unwrap();
        }
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &child_test_name(), "--ignored", "--test-threads=1", "--nocapture"])
        .env(NOFILE_CHILD, &root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(own(&root.join("d7/f")), (0, 0));
}

#[test]
fn a_directory_replaced_while_waiting_is_refused_when_reopened() {
    let tmp = tempdir().unwrap();
    let root = tmp.path().join("vol");
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::create_dir_all(tmp.path().join("other")).unwrap();
    let (root_fd, root_st) = open_nofollow(&root).unwrap();
    let (_, listed) = open_below(&root_fd, root_st.st_dev, "./a/b").unwrap();
    let open = AtomicUsize::new(0);
    let walk = Walk { root: &root_fd, dev: root_st.st_dev, target: o("1:1"), hardlinks: false, open: &open };
    let waiting = || Pending { rel: "./a/b".into(), how: Held::Closed(listed.st_dev, listed.st_ino) };
    assert!(walk.dir(waiting(), &mut MountChanges::default()).is_ok());

    std::fs::rename(root.join("a/b"), tmp.path().join("moved")).unwrap();
    std::fs::rename(tmp.path().join("other"), root.join("a/b")).unwrap();
    let Err(err) = walk.dir(waiting(), &mut MountChanges::default()) else { panic!("read a swapped directory") };
    assert!(err.contains("replaced"), "{err}");

    std::fs::remove_dir(root.join("a/b")).unwrap();
    symlink(tmp.path().join("moved"), root.join("a/b")).unwrap();
    assert!(walk.dir(waiting(), &mut MountChanges::default()).is_err(), "not through a link");
    assert!(open_below(&root_fd, root_st.st_dev, "./a/..").is_err(), "never upwards");
}

#[test]
fn the_root_path_is_opened_without_following_any_link() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to change owners");
        return;
    }
    let tmp = tempdir().unwrap();
    let parent = tmp.path().join("parent");
    let other = tmp.path().join("other");
    for d in [&parent, &other] {
        std::fs::create_dir_all(d.join("vol/sub")).unwrap();
        std::fs::write(d.join("vol/sub/file"), "x").unwrap();
    }
    let root = parent.join("vol");
    let id = identity(&root).unwrap();
    let (fd, st) = open_nofollow(&root).unwrap();
    assert_eq!((st.st_dev, st.st_ino), id);
    assert!(Dir::read_from(&fd).is_ok(), "a directory comes back readable");
    assert_eq!(scan_checked(&root, Some(id), o("1000:1000"), false).unwrap().entries.len(), 2);

    // The parent swapped for a link to another directory holding a `vol` too.
    std::fs::rename(&parent, tmp.path().join("parent.old")).unwrap();
    symlink(&other, &parent).unwrap();
    let everything = [("./sub".to_string(), o("1000:1000")), ("./sub/file".into(), o("1000:1000"))];
    let named = |e: String| assert!(e.contains(&format!("{} is a symlink", parent.display())), "{e}");
    named(scan(&root, o("1000:1000"), false).unwrap_err());
    named(apply(&root, &everything, Some(o("1000:1000"))).unwrap_err());
    named(identity(&root).unwrap_err());
    named(open_nofollow(&root).unwrap_err());
    for p in ["vol", "vol/sub", "vol/sub/file"] {
        assert_eq!(own(&other.join(p)), (0, 0), "{p} in the other directory is untouched");
    }

    // The root itself a link.
    let link = tmp.path().join("link");
    symlink(other.join("vol"), &link).unwrap();
    assert!(scan(&link, o("1000:1000"), false).unwrap_err().contains("is a symlink"));
    assert!(apply(&link, &everything, Some(o("1000:1000"))).unwrap_err().contains("is a symlink"));
    assert_eq!(own(&other.join("vol")), (0, 0));

    assert!(identity(Path::new("relative/path")).is_err());
    assert!(identity(&tmp.path().join("parent.old/../other")).unwrap_err().contains("`..`"));
}

#[test]
fn a_swapped_root_is_refused_when_its_identity_is_expected() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to change owners");
        return;
    }
    let tmp = tempdir().unwrap();
    let root = tmp.path().join("vol");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let id = identity(&root).unwrap();
    let changes = scan_checked(&root, Some(id), o("1000:1000"), false).unwrap();

    std::fs::rename(&root, tmp.path().join("vol.old")).unwrap();
    std::fs::create_dir_all(root.join("sub")).unwrap();
    assert_ne!(identity(&root).unwrap(), id);
    let err = scan_checked(&root, Some(id), o("1000:1000"), false).unwrap_err();
    assert!(err.contains("no longer the object"), "{err}");
    let targets: Vec<(String, Owner)> = changes.entries.iter().map(|(p, _)| (p.clone(), o("1000:1000"))).collect();
    assert!(apply_checked(&root, Some(id), &targets, Some(o("1000:1000"))).unwrap_err().contains("no longer"));
    assert_eq!(own(&root), (0, 0), "nothing changed");
    assert_eq!(own(&root.join("sub")), (0, 0), "nothing changed");

    // Without an expected identity the new directory is simply the mount.
    assert_eq!(scan_checked(&root, None, o("1000:1000"), false).unwrap(), changes);
    assert_eq!(apply_checked(&root, Some(identity(&root).unwrap()), &targets, Some(o("1000:1000"))).unwrap(), 0);
    assert_eq!(own(&root.join("sub")), (1000, 1000));
}

#[test]
fn a_single_file_root_changes_alone_and_restores() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to change owners");
        return;
    }
    let tmp = tempdir().unwrap();
    let file = tmp.path().join("app.conf");
    std::fs::write(&file, "x").unwrap();
    rustix::fs::chown(file.as_path(), Some(Uid::from_raw(5)), Some(Gid::from_raw(6))).unwrap();
    let (_, st) = open_nofollow(&file).unwrap();
    assert_eq!((st.st_dev, st.st_ino), identity(&file).unwrap());

    let changes = scan(&file, o("1000:1000"), false).unwrap();
    let expected = MountChanges { entries: vec![], root: Some(o("5:6")), ..Default::default() };
    assert_eq!(changes, expected);
    assert!(scan(&file, o("5:6"), false).unwrap().is_empty(), "already the target's");
    assert_eq!(apply_checked(&file, Some(identity(&file).unwrap()), &[], Some(o("1000:1000"))).unwrap(), 0);
    assert_eq!(own(&file), (1000, 1000));
    assert!(scan(&file, o("1000:1000"), false).unwrap().is_empty(), "a second pass finds nothing");
    let stray = [("./x".to_string(), o("0:0"))];
    assert!(apply(&file, &stray, Some(o("0:0"))).unwrap_err().contains("is a file"));
    assert_eq!(own(&file), (1000, 1000), "refused before any change");
    // Restore: the old owner.
    assert_eq!(apply(&file, &changes.entries, changes.root).unwrap(), 0);
    assert_eq!(own(&file), (5, 6));
    assert_eq!(std::fs::read(&file).unwrap(), b"x");

    // A link to the file is refused, the file untouched.
    let link = tmp.path().join("link.conf");
    symlink(&file, &link).unwrap();
    assert!(scan(&link, o("1000:1000"), false).unwrap_err().contains("is a symlink"));
    assert!(apply(&link, &[], Some(o("1000:1000"))).unwrap_err().contains("is a symlink"));
    assert_eq!(own(&file), (5, 6));

    // A hard-linked file is set aside unless hard links may change.
    std::fs::hard_link(&file, tmp.path().join("twin.conf")).unwrap();
    let set_aside = scan(&file, o("1000:1000"), false).unwrap();
    assert_eq!(set_aside, MountChanges { skipped: vec![".".into()], ..Default::default() });
    assert!(set_aside.is_empty());
    assert_eq!(scan(&file, o("1000:1000"), true).unwrap().root, Some(o("5:6")));
}

/// The sha256 (hex) of `text`.
fn sha(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

#[test]
fn setuid_and_setgid_bits_the_owner_change_clears_come_back_to_the_same_contents_only() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to change owners");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempdir().unwrap();
    let root = tmp.path().join("vol");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    let mode_of = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap().permissions().mode() & 0o7777;
    let set = |p: &str, mode: u32, gid: u32| {
        std::fs::write(root.join(p), p).unwrap();
        rustix::fs::chown(root.join(p).as_path(), Some(Uid::from_raw(0)), Some(Gid::from_raw(gid))).unwrap();
        std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    set("bin/suid", 0o4755, 0);
    set("bin/sgid", 0o2750, 43); // a group root is not in: only CAP_FSETID sets it again
    set("bin/swapped", 0o4755, 0);
    set("plain", 0o644, 0);
    std::os::unix::fs::symlink(root.join("bin/suid"), root.join("link")).unwrap();
    let changes = scan(&root, o("1000:1000"), false).unwrap();
    let seen: Vec<(&str, Option<u32>, &str)> =
        changes.privileged.iter().map(|p| (p.path.as_str(), p.mode, p.sha256.as_str())).collect();
    let (sgid, suid, swapped) = (sha("bin/sgid"), sha("bin/suid"), sha("bin/swapped"));
    assert_eq!(
        seen,
        [
            ("./bin/sgid", Some(0o2750), sgid.as_str()),
            ("./bin/suid", Some(0o4755), suid.as_str()),
            ("./bin/swapped", Some(0o4755), swapped.as_str())
        ]
    );

    let to: Vec<(String, Owner)> = changes.entries.iter().map(|(p, _)| (p.clone(), o("1000:1000"))).collect();
    apply(&root, &to, None).unwrap();
    assert_eq!((mode_of("bin/suid"), mode_of("bin/sgid")), (0o755, 0o750), "the kernel cleared them");
    // Meanwhile the service (it owns the file now) rewrites one with its own program.
    std::fs::write(root.join("bin/swapped"), "its own program").unwrap();

    // The restore: owners back, then the bits, to the same contents only, never through
    // the link.
    apply(&root, &changes.entries, changes.root).unwrap();
    let mut privileged = changes.privileged.clone();
    privileged.push(Privileged { path: "./link".into(), sha256: suid.clone(), mode: Some(0o6777), caps: None });
    privileged.push(Privileged { path: "./gone".into(), sha256: suid.clone(), mode: Some(0o4755), caps: None });
    assert_eq!(
        set_attrs(&root, None, &privileged).unwrap(),
        3,
        "the rewritten file, the link and the file deleted since"
    );
    assert_eq!((mode_of("bin/suid"), mode_of("bin/sgid"), mode_of("plain")), (0o4755, 0o2750, 0o644));
    assert_eq!(mode_of("bin/swapped"), 0o755, "other contents never become a setuid program");
    assert_eq!(own(&root.join("bin/sgid")), (0, 43));
    assert_eq!(set_attrs(&root, None, &changes.privileged).unwrap(), 1, "again: harmless");
}

#[test]
fn file_capabilities_the_owner_change_removes_come_back_with_the_owners() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to change owners");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempdir().unwrap();
    let root = tmp.path().join("vol");
    std::fs::create_dir_all(&root).unwrap();
    let ping = root.join("ping");
    std::fs::write(&ping, "x").unwrap();
    std::fs::set_permissions(&ping, std::fs::Permissions::from_mode(0o755)).unwrap();
    // cap_net_bind_service=ep, as `setcap` writes it (VFS_CAP_REVISION_2).
    let caps: [u8; 20] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    if let Err(e) = rustix::fs::setxattr(&ping, "security.capability", &caps, rustix::fs::XattrFlags::empty()) {
        eprintln!("skipped: this filesystem takes no file capabilities ({e})");
        return;
    }
    let read = |p: &Path| {
        let mut buf = [0u8; 64];
        rustix::fs::getxattr(p, "security.capability", &mut buf[..]).ok().map(|n| buf[..n].to_vec())
    };
    let changes = scan(&root, o("1000:1000"), false).unwrap();
    let expected = Privileged { path: "./ping".into(), sha256: sha("x"), mode: None, caps: Some(hex::encode(caps)) };
    assert_eq!(changes.privileged, [expected]);
    let to: Vec<(String, Owner)> = changes.entries.iter().map(|(p, _)| (p.clone(), o("1000:1000"))).collect();
    apply(&root, &to, None).unwrap();
    assert_eq!(read(&ping), None, "the kernel removed them with the owner change");
    apply(&root, &changes.entries, changes.root).unwrap();
    assert_eq!(set_attrs(&root, None, &changes.privileged).unwrap(), 0);
    assert_eq!(read(&ping).as_deref(), Some(&caps[..]), "back as they were");
    // The manifest keeps them, and an earlier manifest without them still reads.
    let text = serde_json::to_string(&changes).unwrap();
    assert!(text.contains(&hex::encode(caps)), "{text}");
    let old: MountChanges = serde_json::from_str(r#"{"entries":[["./a","0:0"]],"root":null,"skipped":[]}"#).unwrap();
    assert!(old.privileged.is_empty());
}
