//! `aplaunch host snapshot` copies the AP picture: `ap list`, `ap check` and `ap matrix` on
//! the snapshot give what they give on the host.

use std::path::Path;
use testkit::ap::ApHostSpec;
use testkit::cli::aplaunch;
use testkit::hosttree::example_host;

fn output(root: &Path, args: &[&str]) -> (i32, String) {
    let out = aplaunch()
        .arg("--host-root")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn same_ap_answers(host: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snap");
    let (code, _) = output(
        host,
        &["host", "snapshot", "--output", snap.to_str().unwrap()],
    );
    assert_eq!(code, 0);
    for args in [
        &["ap", "list", "--json"][..],
        &["ap", "check", "--json"],
        &["ap", "matrix"],
        &["ap", "masks"],
        &[
            "ap",
            "mdev",
            "show",
            "62177883-f1bb-47f0-914d-32a22e3a8804",
            "--json",
        ],
    ] {
        let on_host = output(host, args);
        let on_snap = output(&snap, args);
        assert_eq!(on_host, on_snap, "{args:?}");
    }
    let (_, list) = output(&snap, &["ap", "list", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert!(!doc["queues"].as_array().unwrap().is_empty());
    assert!(doc["problems"].as_array().unwrap().is_empty(), "{doc}");
}

#[test]
fn snapshot_of_the_example_host() {
    same_ap_answers(&example_host("z16-se"));
}

#[test]
fn snapshot_of_a_generated_host() {
    let dir = tempfile::tempdir().unwrap();
    ApHostSpec {
        adapters: 6,
        domains: 5,
        mdevs: 7,
    }
    .generate(dir.path());
    same_ap_answers(dir.path());
    let (code, list) = output(dir.path(), &["ap", "list", "--json"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(doc["queues"].as_array().unwrap().len(), 30);
    assert_eq!(doc["mdevs"].as_array().unwrap().len(), 7);
    let (code, _) = output(dir.path(), &["ap", "check"]);
    assert_eq!(code, 0);
}
