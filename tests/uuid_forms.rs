//! One reading of an mdev UUID in every command: 8-4-4-4-12 hex digits in either case,
//! white space around it ignored; every other spelling is a usage error (exit 2) before
//! anything is read from a guest or written to the host.

use serde_json::Value;
use testkit::cli::aplaunch;
use testkit::hosttree::HostTree;

const U: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";

fn json(host: &HostTree, args: &[&str]) -> (i32, Value) {
    let out = aplaunch()
        .arg("--json")
        .arg("--host-root")
        .arg(host.path())
        .args(args)
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not one JSON document ({e}): {} / {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), doc)
}

/// Every place a user names an mdev, with `X` standing for the UUID.
fn commands_naming_an_mdev(config: &str) -> Vec<Vec<String>> {
    [
        "ap mdev show X",
        "ap mdev assign X -a 3",
        "ap mdev unassign X -d 4",
        "ap mdev remove X",
        "ap mdev create --uuid X -a 3 -d 171",
        "check --mdev X",
        "launch --dry-run --mdev X --pv-image /nonexistent.img",
        "qmp hotplug --mdev X --qmp /nonexistent.qmp",
        "qmp unplug --mdev X --qmp /nonexistent.qmp",
    ]
    .iter()
    .map(|c| c.split(' ').map(str::to_string).collect())
    .chain(std::iter::once(vec![
        "launch".to_string(),
        "--dry-run".to_string(),
        "--config".to_string(),
        config.to_string(),
    ]))
    .collect()
}

#[test]
fn every_other_spelling_is_a_usage_error_everywhere() {
    let host = HostTree::from_example("z16-se");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vm.toml");
    let config_text = config.display().to_string();
    for bad in [
        "nope",
        "62177883f1bb47f0914d32a22e3a8804",
        "{62177883-f1bb-47f0-914d-32a22e3a8804}",
        "urn:uuid:62177883-f1bb-47f0-914d-32a22e3a8804",
        "62177883-f1bb-47f0-914d-32a22e3a880g",
    ] {
        std::fs::write(
            &config,
            format!("name = \"g\"\nmdev = \"{bad}\"\npv-image = \"/nonexistent.img\"\n"),
        )
        .unwrap();
        for command in commands_naming_an_mdev(&config_text) {
            let args: Vec<&str> = command
                .iter()
                .map(|a| if a == "X" { bad } else { a.as_str() })
                .collect();
            let (code, doc) = json(&host, &args);
            assert_eq!(code, 2, "{args:?}: {doc}");
            let message = doc["error"]["message"].as_str().unwrap();
            assert!(message.contains(bad), "{args:?} names the input: {doc}");
            assert!(message.contains("not a UUID"), "{args:?}: {doc}");
        }
    }
}

#[test]
fn either_case_and_surrounding_white_space_name_the_same_mdev() {
    let host = HostTree::from_example("z16-se");
    let loud = format!(" {}\n", U.to_ascii_uppercase());
    let (code, shown) = json(&host, &["ap", "mdev", "show", &loud]);
    assert_eq!(code, 0, "{shown}");
    assert_eq!(json(&host, &["ap", "mdev", "show", U]).1, shown);
    let (code, checked) = json(&host, &["check", "--mdev", &loud]);
    let (plain_code, plain) = json(&host, &["check", "--mdev", U]);
    assert_eq!((code, &checked), (plain_code, &plain));
}
