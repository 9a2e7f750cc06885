//! `unroot audit --format sarif` against real containers: the log validates against the SARIF
//! 2.1.0 schema as the serde-sarif crate ships it (found through `cargo metadata`, never a
//! copy in this repository), and says per container and finding what the audit says.

use crate::common::{TestEnv, image, unroot};
use serde_json::Value;

/// Where cargo unpacked the serde-sarif crate (unroot's model of the format): its
/// `src/schema.json` is the SARIF 2.1.0 schema its types are generated from.
fn sarif_schema_path() -> std::path::PathBuf {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "serde-sarif")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("serde-sarif is a dependency");
    let schema = std::path::Path::new(manifest).parent().unwrap().join("src/schema.json");
    let text = std::fs::read_to_string(&schema).unwrap_or_else(|e| panic!("{}: {e}", schema.display()));
    let parsed: Value = serde_json::from_str(&text).unwrap();
    assert!(parsed["$id"].as_str().unwrap_or_default().contains("2.1.0"), "a SARIF 2.1.0 schema: {}", parsed["$id"]);
    schema
}

/// What Python's `jsonschema` (installed by .ci/run) finds wrong in `log` against that
/// schema, one line each; empty when it validates. (The Rust validator refuses to compile
/// the schema: its own `language` pattern ends in a stray `]` that ECMA-262 allows.)
fn sarif_errors(log: &Value) -> String {
    use std::io::Write;
    let script = "import json, sys, jsonschema\n\
                  schema = json.load(open(sys.argv[1]))\n\
                  log = json.load(sys.stdin)\n\
                  for e in jsonschema.Draft7Validator(schema).iter_errors(log):\n    \
                  print('/'.join(map(str, e.absolute_path)) + ': ' + e.message)\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, sarif_schema_path().to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(log.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the validator failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_audit_as_sarif_validates_and_gives_one_result_per_container_and_finding() {
    let env = TestEnv::new("sarif");
    let img = image("busybox");
    let root = env.run("root", &[&img]);
    let risky = env.run("risky", &["--cap-add", "NET_ADMIN", "-v", "/var/run/docker.sock:/var/run/docker.sock", &img]);
    let hardened = env.run(
        "hardened",
        &["--user", "999:999", "--read-only", "--security-opt", "no-new-privileges", "--cap-drop", "ALL", &img],
    );
    let kept = env.run("kept", &["-e", "TOKEN=never-shown-41", &img]);
    let dir = env.tempdir();
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        format!(
            "[rollout]\nname = \"sarif\"\n\n[service.{kept}]\nday = 1\nkeep_root = \"reads host /proc\"\nread_only = true\n"
        ),
    )
    .unwrap();

    let filter = format!("label={}", env.label());
    let out = unroot()
        .args(["audit", "--format", "sarif", "--filter", &filter, "--plan", plan.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("never-shown-41"), "no environment value: {text}");
    let log: Value = serde_json::from_str(&text).expect("one JSON document");

    let errors = sarif_errors(&log);
    assert!(errors.is_empty(), "{errors}\n{text}");
    // The check is not a rubber stamp: a log without its version, or with a level SARIF
    // does not know, is refused.
    let mut broken = log.clone();
    broken.as_object_mut().unwrap().remove("version");
    broken["runs"][0]["results"][0]["level"] = Value::from("fatal");
    let errors = sarif_errors(&broken);
    assert!(errors.contains("version") && errors.contains("fatal"), "{errors}");

    // One rule per kind of finding, each with its CIS id (v1.6.0, as docker-bench-security
    // numbers them) and how unroot fixes it; unroot's own rule has none.
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "unroot");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let cis_of = |id: &str| {
        let r = rules.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("rule {id}"));
        assert!(!r["help"]["text"].as_str().unwrap().is_empty());
        r["properties"]["cis-docker-benchmark"].as_str().unwrap().to_string()
    };
    assert_eq!(
        ["UNROOT001", "UNROOT003", "UNROOT004", "UNROOT005", "UNROOT006", "UNROOT007"].map(cis_of),
        ["4.1", "5.5", "5.4", "5.13", "5.26", "5.32"]
    );
    let own = rules.iter().find(|r| r["id"] == "UNROOT002").unwrap();
    assert!(own["properties"]["cis-docker-benchmark"].is_null(), "{own}");

    // The results, per container, as the audit found them.
    let results = run["results"].as_array().unwrap();
    let of = |name: &str| -> Vec<String> {
        let mut ids: Vec<String> = results
            .iter()
            .filter(|r| r["locations"][0]["logicalLocations"][0]["name"] == name)
            .map(|r| r["ruleId"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(of(&root), ["UNROOT001", "UNROOT005", "UNROOT006"], "root, writable root, no nnp");
    assert_eq!(of(&risky), ["UNROOT001", "UNROOT004", "UNROOT005", "UNROOT006", "UNROOT007"]);
    assert_eq!(of(&hardened), Vec::<String>::new(), "nothing to find");
    // The exception: root, accepted with its reason; its missing control is not accepted.
    let kept_results: Vec<&Value> =
        results.iter().filter(|r| r["locations"][0]["logicalLocations"][0]["name"] == kept.as_str()).collect();
    let accepted = kept_results.iter().find(|r| r["ruleId"] == "UNROOT001").expect("the exception's root result");
    assert_eq!(accepted["suppressions"][0]["justification"], "reads host /proc");
    let missing = kept_results.iter().find(|r| r["ruleId"] == "UNROOT002").expect("its missing control");
    assert!(missing["suppressions"].is_null(), "{missing}");
    assert_eq!(missing["level"], "error");
    // Results of a plan's service point at its entry in the plan.
    let region = &accepted["locations"][0]["physicalLocation"];
    assert_eq!(region["artifactLocation"]["uri"], plan.to_str().unwrap());
    assert_eq!(region["region"]["startLine"], 4);
}
