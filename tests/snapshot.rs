//! `aplaunch host snapshot`: a copy of what aplaunch reads gives the same verdicts.

use serde_json::Value;
use testkit::cli::aplaunch;
use testkit::hosttree::{example_host, HostTree};

fn check(root: &std::path::Path, extra: &[&str]) -> (i32, Value) {
    let out = aplaunch()
        .arg("--host-root")
        .arg(root)
        .args(["check", "--json"])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

fn snapshot(root: &std::path::Path, output: &std::path::Path) -> std::process::Output {
    aplaunch()
        .arg("--host-root")
        .arg(root)
        .args(["host", "snapshot", "--json", "--output"])
        .arg(output)
        .output()
        .unwrap()
}

#[test]
fn a_snapshot_gives_the_same_verdicts() {
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("snap");
    let out = snapshot(&example_host("z16-se"), &output);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    assert!(doc["snapshot"]["files"].as_u64().unwrap() > 10, "{doc}");
    for extra in [
        &[][..],
        &[
            "--smp",
            "300",
            "--mdev",
            "62177883-f1bb-47f0-914d-32a22e3a8804",
        ][..],
    ] {
        assert_eq!(
            check(&output, extra),
            check(&example_host("z16-se"), extra),
            "{extra:?}"
        );
    }
    // What was read is there byte for byte; links stay links.
    assert_eq!(
        std::fs::read(output.join("sys/firmware/uv/keys/all")).unwrap(),
        std::fs::read(example_host("z16-se").join("sys/firmware/uv/keys/all")).unwrap()
    );
    assert!(std::fs::read_to_string(output.join("proc/cmdline"))
        .unwrap()
        .contains("prot_virt=1"));
}

#[test]
fn failing_states_survive_a_snapshot() {
    let tree = HostTree::from_example("z16-se");
    tree.write("sys/firmware/uv/prot_virt_host", "0\n");
    tree.remove("sys/firmware/uv/keys");
    tree.remove("sys/devices/vfio_ap");
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("snap");
    assert_eq!(snapshot(tree.path(), &output).status.code(), Some(0));
    let (code, doc) = check(&output, &[]);
    assert_eq!(code, 1);
    assert_eq!((code, doc), check(tree.path(), &[]));
}

#[test]
fn symlinked_directories_are_recreated_as_links() {
    let tree = HostTree::from_example("z16-se");
    // The ultravisor tree reached through a link, as sysfs often does.
    std::fs::rename(tree.at("sys/firmware/uv"), tree.at("sys/firmware/uv-real")).unwrap();
    tree.link("sys/firmware/uv", "uv-real");
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("snap");
    assert_eq!(snapshot(tree.path(), &output).status.code(), Some(0));
    let link = std::fs::read_link(output.join("sys/firmware/uv")).unwrap();
    assert_eq!(link, std::path::PathBuf::from("uv-real"));
    assert!(output.join("sys/firmware/uv-real/query/max_cpus").is_file());
    assert_eq!(check(&output, &[]), check(tree.path(), &[]));
}

#[test]
fn refuses_an_existing_non_empty_output_and_leaves_it_alone() {
    let out_dir = tempfile::tempdir().unwrap();
    std::fs::write(out_dir.path().join("precious"), "keep").unwrap();
    let out = snapshot(&example_host("z16-se"), out_dir.path());
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "output-exists");
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already exists"));
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 1);
    assert_eq!(
        std::fs::read_to_string(out_dir.path().join("precious")).unwrap(),
        "keep"
    );

    // An empty directory is fine.
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        snapshot(&example_host("z16-se"), empty.path())
            .status
            .code(),
        Some(0)
    );
    assert!(empty.path().join("proc/cpuinfo").is_file());
}
