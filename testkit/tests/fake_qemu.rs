//! The fake QEMU itself: it records what it was given and speaks enough QMP for a probe.

use std::io::Write;
use std::process::{Command, Stdio};

fn fake() -> std::path::PathBuf {
    testkit::qemu::fake_qemu()
}

#[test]
fn records_argv_and_descriptors_and_exits_with_the_asked_code() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("rec.json");
    let status = Command::new(fake())
        .args(["-name", "a,,b", "x y"])
        .env("FAKE_QEMU_RECORD", &record)
        .env("FAKE_QEMU_EXIT", "7")
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    // argv[0] is the binary's path (through a runner script when emulated).
    assert!(v["argv"][0].as_str().unwrap().ends_with("fake-qemu"), "{v}");
    assert_eq!(v["argv"][1], "-name");
    assert_eq!(v["argv"][3], "x y");
    let fds: Vec<i64> = v["fds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fd"].as_i64().unwrap())
        .collect();
    // Whatever else the test runner inherited may follow; stdio is always recorded.
    assert_eq!(fds[..3], [0, 1, 2], "{v}");
    assert_eq!(
        v["fds"][0]["target"], "/dev/null",
        "std gives a null stdin: {v}"
    );
}

#[test]
fn answers_a_probe_conversation() {
    let mut child = Command::new(fake())
        .args(["-machine", "none", "-accel", "kvm", "-qmp", "stdio"])
        .env("FAKE_QEMU_VERSION", "8.2.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, r#"{{"execute":"query-version","id":0}}"#).unwrap();
    writeln!(stdin, r#"{{"execute":"qmp_capabilities","id":1}}"#).unwrap();
    writeln!(
        stdin,
        r#"{{"execute":"device-list-properties","arguments":{{"typename":"vfio-ap"}},"id":2}}"#
    )
    .unwrap();
    writeln!(stdin, r#"{{"execute":"query-cpu-model-expansion","arguments":{{"type":"full","model":{{"name":"host"}}}},"id":3}}"#).unwrap();
    writeln!(stdin, r#"{{"execute":"quit","id":4}}"#).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["QMP"]["version"]["qemu"]["minor"], 2);
    assert_eq!(lines[1]["error"]["class"], "CommandNotFound");
    assert_eq!(lines[2]["id"], 1);
    assert_eq!(
        lines[3]["return"].as_array().unwrap().len(),
        1,
        "8.2 vfio-ap has only sysfsdev"
    );
    assert_eq!(lines[4]["return"]["model"]["props"]["appv"], true);
    assert_eq!(lines[5]["id"], 4);
}
