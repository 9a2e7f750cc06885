use super::*;

#[test]
fn the_scripts_print_their_records_on_stdout() {
    // A job's output comes back only through its logs: a scan that wrote to a file
    // would read as an empty mount.
    assert!(!scan_script().contains("exec >"), "{}", scan_script());
    assert!(apply_script().contains("sha256sum") && !apply_script().contains("exec >"));
    assert!(restore_script().contains("/unroot-manifest/part-*") && restore_script().starts_with("set -eu"));
    assert!(!restore_script().contains('\0') && !apply_script().contains('\0'), "no NUL byte in a script");
}

#[test]
fn a_scan_without_its_end_line_is_refused() {
    assert_eq!(whole_scan(b"C 0:0 ./a\nR 0:0\nEND\n").unwrap(), b"C 0:0 ./a\nR 0:0\n");
    assert!(whole_scan(b"C 0:0 ./a\n").unwrap_err().contains("incomplete"));
    assert!(whole_scan(b"").is_err(), "no output is not an empty mount");
    assert!(scan_script().contains("|| echo END\n"));
}

/// Runs the scan as a job's task would (`sh -c SCRIPT unroot-helper U G HL`) on `dir`
/// mounted at its place, here with the host's `sh`.
fn scan_with_host_sh(dir: &std::path::Path, user: &str) -> std::process::Output {
    let script = scan_script().replace("/unroot-mount", &dir.display().to_string());
    std::process::Command::new("sh").args(["-c", &script, "unroot-helper", user, "0", "0"]).output().expect("sh runs")
}

#[test]
fn a_scan_that_fails_part_way_prints_no_end_line_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(dir.path().join("d/f"), b"x").unwrap();
    let whole = scan_with_host_sh(dir.path(), "0");
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    assert!(String::from_utf8_lossy(&whole.stdout).ends_with("END\n"));
    // find refuses the user: the scan must fail, with no END to pass for a whole one.
    let failed = scan_with_host_sh(dir.path(), "no-such-user-x");
    assert!(!failed.status.success(), "{}", String::from_utf8_lossy(&failed.stdout));
    assert!(!String::from_utf8_lossy(&failed.stdout).contains("END"), "{}", String::from_utf8_lossy(&failed.stdout));
    assert!(whole_scan(&failed.stdout).is_err());
}

#[test]
fn manifest_pieces_sort_in_order_past_a_thousand() {
    let names = piece_names("job", "node", 1200);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, names);
}

#[test]
fn a_job_mounts_the_services_own_volume_never_filled_from_its_image() {
    let nfs = SpecMount {
        kind: crate::model::mount::MountKind::Volume,
        source: "shared".into(),
        target: "/data".into(),
        read_only: false,
        volume_options: Some(
            json!({"DriverConfig": {"Name": "local", "Options": {"type": "nfs", "device": ":/export"}}}),
        ),
    };
    let s = spec("job", "run", "img", &nfs, &[], "true", &[]);
    let m = &s["TaskTemplate"]["ContainerSpec"]["Mounts"][0];
    assert_eq!(m["VolumeOptions"]["DriverConfig"]["Options"]["type"], "nfs", "{m}");
    assert_eq!(m["VolumeOptions"]["NoCopy"], true);
    assert_eq!(m["Target"], HELPER_MOUNT);
}

#[test]
fn job_names_are_dns_labels() {
    let n = job_name("scan", "My_App.db", "20261127-101010-ab12", 0);
    assert!(n.starts_with("unroot-scan-my-app-db-"), "{n}");
    assert!(n.len() <= 63 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{n}");
    assert_ne!(n, job_name("scan", "My_App.db", "20261127-101010-ab12", 1), "one per mount");
    assert!(job_name("apply", &"x".repeat(200), "r", 0).len() <= 63);
}
